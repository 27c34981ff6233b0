// The field grid of the record-type form (templates/admin/record_type_edit.html): one row per field, in the
// form's InlineFieldList names (fields-N-…). Rows are dragged by their handle (SortableJS) and added at the end or
// after a row; every change of order writes fields-N-position (10, 20, …) in the order shown, which is the order
// the server saves. A new row's key is filled in from its label as it is typed (GET <view>/field_key) until the
// user types a key; a stored field's key is read-only. Removing a row asks first, naming the rules that use the
// field (the server's scan of the rules at page load, or the rules text mentioning the key since). Whenever rows
// are added, removed or reordered, or a key, label, type or choices changes, "kefu:fields-changed" is dispatched
// on the document (the rule editors list the fields from the grid).
(function () {
  "use strict";
  var grid = document.querySelector("[data-kefu-field-grid]");
  if (!grid) {
    return;
  }
  var rows = grid.querySelector("[data-kefu-field-rows]");
  var template = document.getElementById("kefu-field-template");
  var data = JSON.parse(document.getElementById("kefu-field-grid-data").textContent);
  var dialog = document.getElementById("kefu-remove-field");
  var rulesBox = document.getElementById("rules");
  var rulesAtLoad = rulesBox ? rulesBox.value : "";
  var WATCHED = /-(key|label|type|choices)$/;
  var lookups = {};

  function changed() {
    document.dispatchEvent(new CustomEvent("kefu:fields-changed"));
  }

  function fieldRows() {
    return Array.prototype.slice.call(rows.querySelectorAll("[data-kefu-field-row]"));
  }

  function input(row, name) {
    return row.querySelector("[name$='-" + name + "']");
  }

  function renumber() {
    fieldRows().forEach(function (row, index) {
      row.querySelector("[data-kefu-position]").value = String((index + 1) * 10);
    });
  }

  // The options the row's type takes are shown; the others are hidden unless they hold a value or an error.
  function showOptions(row) {
    var taken = data.type_options[input(row, "type").value] || [];
    row.querySelectorAll("[data-kefu-option]").forEach(function (group) {
      var name = group.dataset.kefuOption;
      var control = group.querySelector("input, textarea, select");
      var general = name === "label_en" || name === "help";
      group.hidden = !(general || taken.indexOf(name) >= 0 || (control && control.value) ||
                       group.querySelector(".invalid-feedback"));
    });
  }

  function nextIndex() {
    var highest = -1;
    rows.querySelectorAll("[name^='fields-']").forEach(function (control) {
      var match = /^fields-(\d+)-/.exec(control.name);
      if (match) {
        highest = Math.max(highest, parseInt(match[1], 10));
      }
    });
    return highest + 1;
  }

  function addRow(after) {
    var index = String(nextIndex());
    var holder = document.createElement("div");
    holder.innerHTML = template.innerHTML.replace(/__index__/g, index);
    var row = holder.querySelector("[data-kefu-field-row]");
    row.dataset.kefuKeyAuto = "1";
    if (after) {
      after.parentNode.insertBefore(row, after.nextSibling);
    } else {
      rows.appendChild(row);
    }
    showOptions(row);
    renumber();
    input(row, "label").focus();
    changed();
    return row;
  }

  function takenKeys(except) {
    var keys = data.stored_keys.slice();
    fieldRows().forEach(function (row) {
      var key = input(row, "key").value.trim();
      if (row !== except && key) {
        keys.push(key);
      }
    });
    return keys;
  }

  // A new row's key follows its label (debounced) while the user has not typed a key of their own.
  function suggestKey(row) {
    var label = input(row, "label").value.trim();
    var key = input(row, "key");
    clearTimeout(lookups[key.name]);
    lookups[key.name] = setTimeout(function () {
      var query = new URLSearchParams({label: label, taken: takenKeys(row).join(",")});
      fetch(grid.dataset.kefuFieldKeyUrl + "?" + query.toString(), {credentials: "same-origin"})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (answer) {
          if (answer && row.dataset.kefuKeyAuto === "1" && input(row, "label").value.trim() === label) {
            key.value = label ? answer.key : "";
            changed();
          }
        });
    }, 250);
  }

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  // The rules using the field: the server's findings, and — when the rules text changed since the page loaded —
  // that text naming the key as a word.
  function usesOf(key) {
    var uses = (data.uses[key] || []).slice();
    if (key && rulesBox && rulesBox.value !== rulesAtLoad &&
        new RegExp("(^|[^a-z0-9_])" + escapeRegExp(key) + "([^a-z0-9_]|$)").test(rulesBox.value)) {
      uses.push(rulesBox.labels.length ? rulesBox.labels[0].textContent.trim() : "rules");
    }
    return uses;
  }

  function askRemove(row) {
    var label = input(row, "label").value.trim() || grid.dataset.kefuUnnamed;
    var uses = usesOf(input(row, "key").value.trim());
    dialog.querySelector("[data-kefu-remove-title]").textContent =
      grid.dataset.kefuDeleteMessage.replace("__LABEL__", label);
    var list = dialog.querySelector("[data-kefu-remove-list]");
    list.textContent = "";
    uses.forEach(function (use) {
      var item = document.createElement("li");
      item.textContent = use;
      list.appendChild(item);
    });
    dialog.querySelector("[data-kefu-remove-uses]").hidden = uses.length === 0;
    dialog.returnValue = "";
    dialog.kefuRow = row;
    dialog.showModal();
  }

  dialog.addEventListener("close", function () {
    if (dialog.returnValue === "remove" && dialog.kefuRow) {
      dialog.kefuRow.parentNode.removeChild(dialog.kefuRow);
      renumber();
      changed();
    }
    dialog.kefuRow = null;
  });

  grid.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    var row = button && button.closest("[data-kefu-field-row]");
    if (!button) {
      return;
    }
    if (button.hasAttribute("data-kefu-add-field")) {
      addRow(null);
    } else if (row && button.hasAttribute("data-kefu-insert-after")) {
      addRow(row);
    } else if (row && button.hasAttribute("data-kefu-remove")) {
      askRemove(row);
    } else if (row && button.hasAttribute("data-kefu-options-toggle")) {
      var options = row.querySelector(".kefu-field-options");
      options.hidden = !options.hidden;
      button.setAttribute("aria-expanded", options.hidden ? "false" : "true");
    }
  });

  grid.addEventListener("input", function (event) {
    var row = event.target.closest("[data-kefu-field-row]");
    if (!row || !WATCHED.test(event.target.name || "")) {
      return;
    }
    if (/-key$/.test(event.target.name)) {
      row.dataset.kefuKeyAuto = event.target.value.trim() ? "0" : "1";
    } else if (/-label$/.test(event.target.name) && row.dataset.kefuKeyAuto === "1") {
      suggestKey(row);
    }
    changed();
  });

  grid.addEventListener("change", function (event) {
    var row = event.target.closest("[data-kefu-field-row]");
    if (row && /-type$/.test(event.target.name || "")) {
      showOptions(row);
      changed();
    }
  });

  fieldRows().forEach(function (row) {
    // A row not saved yet follows its label while its key is empty (a refused save shows the key it was given).
    row.dataset.kefuKeyAuto = row.dataset.kefuStored === "0" && !input(row, "key").value.trim() ? "1" : "0";
    showOptions(row);
  });
  renumber();

  window.Sortable.create(rows, {
    handle: ".kefu-drag",
    draggable: "[data-kefu-field-row]",
    ghostClass: "kefu-sortable-ghost",
    animation: 150,
    onEnd: function () {
      renumber();
      changed();
    }
  });
})();
