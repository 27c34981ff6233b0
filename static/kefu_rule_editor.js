// The rule editors of the record-type page (templates/admin/_rule_editor.html): one form per rule section, built
// from the sections' JSON Schemas (titles, and x-kefu-picker hints saying which control a setting gets) and from
// the page's field grid (fields-N-key …, re-read on kefu:fields-changed). On submit the editors' state is written
// into the rules box (#rules) as JSON (valid YAML); the box stays editable behind 高级（YAML）. Problems of a
// refused save (path → message) are shown at the control whose data-path matches, else at the nearest one.
(function () {
  "use strict";
  var root = document.getElementById("kefu-rule-editor");
  var box = document.getElementById("rules");
  if (!root || !box) { return; }
  var config = JSON.parse(document.getElementById("kefu-rule-editor-config").textContent);
  var W = config.words;
  var holder = root.querySelector("[data-kefu-rule-sections]");
  var banner = root.querySelector("[data-kefu-rules-error]");
  var advancedButton = root.querySelector("[data-kefu-rules-advanced]");
  var boxGroup = box.closest(".form-group") || box.parentNode;
  var schemas = {};
  config.sections.forEach(function (s) { schemas[s.key] = s.schema; });
  var state = config.rules || {};
  var fields = [];
  var mode = "form";
  var previewTimers = {};

  // -- small DOM helpers ------------------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) { return; }
      if (name === "text") { node.textContent = value; } else if (name === "on") {
        Object.keys(value).forEach(function (event) { node.addEventListener(event, value[event]); });
      } else { node.setAttribute(name, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }
  function labelled(text, control) {
    return el("label", {}, [text, control]);
  }
  function button(text, onClick, cls) {
    return el("button", {type: "button", "class": "btn btn-sm " + (cls || "btn-outline-secondary"), text: text,
                         on: {click: onClick}});
  }
  function arrow(text, title, onClick) {
    var node = button(text, onClick);
    node.title = title;
    node.setAttribute("aria-label", title);
    return node;
  }
  function select(options, value, onChange, path, blank) {
    var node = el("select", {"class": "form-control form-control-sm", "data-path": path || null});
    var values = options.map(function (o) { return o[0]; });
    if (blank !== undefined) { options = [["", blank]].concat(options); }
    if (value !== undefined && value !== null && value !== "" && values.indexOf(value) < 0) {
      options = options.concat([[value, fmt(W.missing, {value: value})]]);
    }
    options.forEach(function (o) {
      node.appendChild(el("option", {value: o[0], selected: o[0] === (value === null || value === undefined ? "" : value),
                                     text: o[1]}));
    });
    node.addEventListener("change", function () { onChange(node.value); });
    return node;
  }
  function input(type, value, onInput, path, attrs) {
    var node = el("input", Object.assign({type: type, "class": "form-control form-control-sm",
                                          "data-path": path || null}, attrs || {}));
    node.value = value === null || value === undefined ? "" : value;
    node.addEventListener("input", function () { onInput(node.value); });
    return node;
  }
  function checks(options, chosen, onChange, path) {
    var wrap = el("div", {"class": "kefu-checks", "data-path": path || null});
    chosen = chosen || [];
    options.forEach(function (o) {
      var box = el("input", {type: "checkbox", checked: chosen.indexOf(o[0]) >= 0, value: o[0]});
      box.addEventListener("change", function () {
        var now = Array.prototype.filter.call(wrap.querySelectorAll("input"), function (b) { return b.checked; })
          .map(function (b) { return b.value; });
        onChange(now);
      });
      wrap.appendChild(el("label", {}, [box, " " + o[1]]));
    });
    return wrap;
  }
  function fmt(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (m, name) { return values[name]; });
  }
  function setOrDrop(obj, key, value) {
    if (value === "" || value === null || value === undefined || (Array.isArray(value) && !value.length)) {
      delete obj[key];
    } else { obj[key] = value; }
  }
  function resolve(schema, section) {
    var defs = schemas[section].$defs || {};
    if (schema && schema.$ref) { return defs[schema.$ref.split("/").pop()]; }
    if (schema && schema.anyOf) {
      var real = schema.anyOf.filter(function (s) { return s.type !== "null"; })[0];
      return resolve(real, section);
    }
    return schema;
  }

  // -- what the pickers offer ---------------------------------------------------------------------------------
  function readFields() {
    fields = [];
    document.querySelectorAll("[data-kefu-field-row]").forEach(function (row) {
      function part(name) { return row.querySelector("[name$='-" + name + "'][name^='fields-']"); }
      var key = part("key"), label = part("label"), type = part("type"), choices = part("choices");
      var sensitive = part("sensitive"), labelEn = part("label_en");
      if (!key || !key.value.trim()) { return; }
      // The pickers name fields in the page's language (kefu_admin.js sets <html lang>).
      var shown = (document.documentElement.lang === "en" && labelEn && labelEn.value.trim()) ||
        (label && label.value.trim()) || key.value.trim();
      fields.push({key: key.value.trim(), label: shown,
                   type: type ? type.value : "", sensitive: !!(sensitive && sensitive.checked),
                   choices: choices ? choices.value.split("\n").map(function (c) {
                     return c.split(/\s*(?:→|->|=>)\s*/).pop().trim();
                   }).filter(Boolean) : []});
    });
  }
  function fieldOptions(kind, core) {
    var types = kind ? config.kinds[kind] || [] : null;
    var options = fields.filter(function (f) { return !types || types.indexOf(f.type) >= 0; })
      .map(function (f) { return [f.key, f.label]; });
    if (core) {
      config.core_fields.forEach(function (c) { if (c[0] === core) { options.unshift(c); } });
    }
    return options;
  }
  function fieldByKey(key) { return fields.filter(function (f) { return f.key === key; })[0]; }
  function statuses() {
    return state.workflow && state.workflow.statuses ? state.workflow.statuses.filter(Boolean)
      : config.default_statuses;
  }
  function statusOptions() { return statuses().map(function (s) { return [s, s]; }); }
  function levelOrder() {
    if (state.levels && state.levels.order && state.levels.order.length) { return state.levels.order; }
    var level = fieldByKey("level");
    return level ? level.choices : [];
  }

  // -- generic controls by schema ------------------------------------------------------------------------------
  function windowControl(value, onChange, path, units) {
    value = value || {};
    var unit = Object.keys(value)[0] || (units || Object.keys(config.units))[units ? 0 : 3];
    var amount = Object.keys(value).length ? value[unit] : "";
    var number = input("number", amount, function (v) { changed(); }, path, {min: "0", style: "width:6rem"});
    var unitSelect = select((units || Object.keys(config.units)).map(function (u) { return [u, config.units[u]]; }),
                            unit, function () { changed(); });
    function changed() {
      var n = parseInt(number.value, 10);
      var out = {};
      if (!isNaN(n)) { out[unitSelect.value] = n; }
      onChange(isNaN(n) ? null : out);
    }
    return el("div", {"class": "kefu-inline"}, [number, unitSelect]);
  }
  function wordsOf(text) { return text.split(/[、,，\n]/).map(function (w) { return w.trim(); }).filter(Boolean); }
  function control(prop, value, onChange, path, required, section) {
    var picker = prop["x-kefu-picker"];
    var real = resolve(prop, section) || {};
    var blank = required ? undefined : W.none;
    if (picker === "status") { return select(statusOptions(), value, onChange, path, blank); }
    if (picker === "statuses") { return checks(statusOptions(), value, onChange, path); }
    if (picker === "level") {
      return select(levelOrder().map(function (l) { return [l, l]; }), value, onChange, path, blank);
    }
    if (picker === "field") {
      return select(fieldOptions(prop["x-kefu-kind"], prop["x-kefu-core"]), value, onChange, path, blank);
    }
    if (picker === "fields") { return checks(fieldOptions(prop["x-kefu-kind"]), value, onChange, path); }
    if (picker === "window") { return windowControl(value, onChange, path, prop["x-kefu-units"]); }
    if (picker === "event_kinds") { return checks(config.event_kinds, value, onChange, path); }
    if (picker === "record_type") { return select(config.record_types, value, onChange, path, blank); }
    if (picker === "time") { return input("time", value, onChange, path); }
    if (picker === "pairs") {
      var text = Object.keys(value || {}).map(function (k) {
        return k + " = " + (Array.isArray(value[k]) ? value[k].join("、") : value[k]);  // a list of titles
      }).join("\n");
      var area = el("textarea", {"class": "form-control form-control-sm", rows: "2", "data-path": path,
                                 placeholder: W.pairs_hint});
      area.value = text;
      area.addEventListener("input", function () {
        var out = {};
        area.value.split("\n").forEach(function (line) {
          var parts = line.split("=");
          if (parts.length >= 2 && parts[0].trim()) { out[parts[0].trim()] = parts.slice(1).join("=").trim(); }
        });
        onChange(out);
      });
      return area;
    }
    if (picker === "words" || (real.type === "array" && real.items && real.items.type === "string")) {
      return input("text", (value || []).join("、"), function (v) { onChange(wordsOf(v)); }, path,
                   {placeholder: W.words_hint});
    }
    if (real.type === "integer") {
      return input("number", value, function (v) { onChange(v === "" ? null : parseInt(v, 10)); }, path,
                   {min: real.minimum !== undefined ? String(real.minimum) : null, style: "width:7rem"});
    }
    if (real.type === "boolean") {
      var tick = el("input", {type: "checkbox", checked: !!value, "data-path": path});
      tick.addEventListener("change", function () { onChange(tick.checked); });
      return tick;
    }
    var numeric = (prop.anyOf || []).some(function (s) { return s.type === "number"; });
    if (numeric) {
      return input("number", value, function (v) { onChange(v === "" ? null : Number(v)); }, path,
                   {min: "0", step: "any", style: "width:9rem"});
    }
    return input("text", value, onChange, path);
  }
  // The properties of an object schema as labelled controls writing into ``obj``.
  function propsRow(schema, obj, path, section, skip, onAny, last) {
    var row = el("div", {"class": "kefu-rule-row"});
    var required = schema.required || [];
    var names = Object.keys(schema.properties || {}).filter(function (n) { return (last || []).indexOf(n) < 0; });
    names.concat((last || []).filter(function (n) { return n in (schema.properties || {}); })).forEach(function (name) {
      if ((skip || []).indexOf(name) >= 0) { return; }
      var prop = schema.properties[name];
      var real = resolve(prop, section) || {};
      var here = path + "." + name;
      if (real.type === "object" && real.properties && !prop["x-kefu-picker"]) {
        row.appendChild(nestedObject(prop, real, obj, name, here, section, required.indexOf(name) >= 0, onAny));
        return;
      }
      if (prop["x-kefu-picker"] === "table") {
        row.appendChild(table(real, obj, name, here, section, prop.title || name));
        return;
      }
      if (prop["x-kefu-picker"] === "conditions") {  // field = value rows, as a clock's 适用条件 (routing, computed)
        row.appendChild(conditions(obj, name, prop.title || name, path));
        return;
      }
      var node = control(prop, obj[name], function (v) { setOrDrop(obj, name, v); if (onAny) { onAny(); } },
                         here, required.indexOf(name) >= 0, section);
      var label = labelled(prop.title || name, node);
      if (prop.description) { label.title = prop.description; }
      row.appendChild(label);
    });
    return row;
  }
  function nestedObject(prop, real, obj, name, path, section, required, onAny) {
    var wrap = el("div", {"class": "kefu-rule-item w-100", "data-path": path});
    var optional = !required && (prop.anyOf || []).some(function (s) { return s.type === "null"; });
    if (obj[name] === undefined && prop.default && typeof prop.default === "object") {
      obj[name] = Object.assign({}, prop.default);  // absent means the default (the reminder ladder is on)
    }
    var on = obj[name] !== null && obj[name] !== false && (obj[name] !== undefined || !optional);
    if (on && (obj[name] === undefined || obj[name] === null)) { obj[name] = {}; }
    var head = el("div", {"class": "small font-weight-bold mb-1"}, [prop.title || name]);
    if (optional) {
      var tick = el("input", {type: "checkbox", checked: on});
      tick.addEventListener("change", function () {
        if (tick.checked) { obj[name] = {}; } else if (prop.default && typeof prop.default === "object") {
          obj[name] = false;  // a default that is on (the reminder ladder): off is written false
        } else { delete obj[name]; }
        render();
      });
      head = el("label", {"class": "small font-weight-bold mb-1"}, [tick, " " + (prop.title || name)]);
    }
    wrap.appendChild(head);
    if (prop.description) { wrap.appendChild(el("div", {"class": "small text-muted", text: prop.description})); }
    if (on) { wrap.appendChild(propsRow(real, obj[name], path, section, [], onAny)); }
    return wrap;
  }
  function table(listSchema, obj, name, path, section, title) {
    var itemSchema = resolve(listSchema.items || listSchema, section);  // the rows' model (a band …)
    var list = obj[name] = obj[name] || [];
    var wrap = el("div", {"class": "w-100", "data-path": path}, [el("div", {"class": "small font-weight-bold",
                                                                         text: title})]);
    list.forEach(function (item, index) {
      var row = propsRow(itemSchema, item, path + "." + index, section);
      row.classList.add("kefu-rule-item");
      row.appendChild(button(W.remove, function () { list.splice(index, 1); render(); }, "btn-outline-danger"));
      wrap.appendChild(row);
    });
    wrap.appendChild(button(W.add_band, function () { list.push({}); render(); }));
    return wrap;
  }

  // -- 流程 ------------------------------------------------------------------------------------------------
  function renameStatus(old, now) {
    var wf = state.workflow;
    ["closed", "pausing"].forEach(function (k) {
      wf[k] = (wf[k] || []).map(function (s) { return s === old ? now : s; });
    });
    ["initial", "rework"].forEach(function (k) { if (wf[k] === old) { wf[k] = now; } });
    if (wf.transitions) {
      var moved = {};
      Object.keys(wf.transitions).forEach(function (from) {
        moved[from === old ? now : from] = (wf.transitions[from] || []).map(function (s) { return s === old ? now : s; });
      });
      wf.transitions = moved;
    }
    (state.sla || []).forEach(function (clock) {
      if (clock.start === "status:" + old) { clock.start = "status:" + now; }
      ["when", "done_when"].forEach(function (part) {
        var cond = clock[part] || {};
        if (cond.status === old) { cond.status = now; }
        if (Array.isArray(cond.status)) { cond.status = cond.status.map(function (s) { return s === old ? now : s; }); }
      });
    });
    [state.approvals, state.callback].forEach(function (section) {
      if (!section) { return; }
      ["on_status", "approved_status", "rejected_status"].forEach(function (k) { if (section[k] === old) { section[k] = now; } });
      if (section.requires_approval) {
        section.requires_approval = section.requires_approval.map(function (s) { return s === old ? now : s; });
      }
    });
  }
  function workflowEditor() {
    var body = el("div");
    if (!state.workflow) {
      body.appendChild(el("p", {"class": "small text-muted mb-1", text: W.default_workflow}));
      body.appendChild(button(W.customise, function () {
        state.workflow = {statuses: config.default_statuses.slice(), closed: config.default_statuses.slice(-1)};
        render();
      }));
      return body;
    }
    var wf = state.workflow;
    wf.statuses = wf.statuses || [];
    var kindOf = function (s) {
      return (wf.closed || []).indexOf(s) >= 0 ? "closed" : (wf.pausing || []).indexOf(s) >= 0 ? "pausing" : "open";
    };
    wf.statuses.forEach(function (name, index) {
      var nameInput = input("text", name, function () {}, "workflow.statuses." + index, {style: "width:10rem"});
      nameInput.addEventListener("change", function () {
        var now = nameInput.value.trim();
        wf.statuses[index] = now;
        if (name) { renameStatus(name, now); }
        render();
      });
      var kind = select([["open", W.open], ["pausing", W.pausing], ["closed", W.closed]], kindOf(name), function (v) {
        wf.closed = (wf.closed || []).filter(function (s) { return s !== name; });
        wf.pausing = (wf.pausing || []).filter(function (s) { return s !== name; });
        if (v !== "open") { wf[v] = wf[v].concat([name]); }
      });
      body.appendChild(el("div", {"class": "kefu-rule-row"}, [
        labelled(W.status_name, nameInput), labelled(W.kind, kind),
        arrow("↑", W.up, function () { move(wf.statuses, index, -1); render(); }),
        arrow("↓", W.down, function () { move(wf.statuses, index, 1); render(); }),
        button(W.remove, function () {
          wf.statuses.splice(index, 1);
          ["closed", "pausing"].forEach(function (k) { wf[k] = (wf[k] || []).filter(function (s) { return s !== name; }); });
          if (wf.transitions) { delete wf.transitions[name]; }
          render();
        }, "btn-outline-danger")]));
    });
    body.appendChild(button(W.add_status, function () { wf.statuses.push(""); render(); }));
    var schema = schemas.workflow;
    body.appendChild(propsRow({properties: {initial: schema.properties.initial, rework: schema.properties.rework}},
                              wf, "workflow", "workflow"));
    body.appendChild(transitionsGrid(wf));
    return body;
  }
  function move(list, index, step) {
    var to = index + step;
    if (to < 0 || to >= list.length) { return; }
    var item = list.splice(index, 1)[0];
    list.splice(to, 0, item);
  }
  function transitionsGrid(wf) {
    var names = wf.statuses.filter(Boolean);
    var grid = el("table", {"class": "table table-bordered kefu-grid mb-1", "data-path": "workflow.transitions"});
    grid.appendChild(el("tr", {}, [el("th", {text: ""})].concat(names.map(function (n) { return el("th", {text: n}); }))));
    names.forEach(function (from) {
      var row = el("tr", {}, [el("th", {text: from})]);
      names.forEach(function (to) {
        var cell = el("td");
        if (from !== to) {
          var tick = el("input", {type: "checkbox", title: from + " → " + to,
                                  checked: !!(wf.transitions && (wf.transitions[from] || []).indexOf(to) >= 0)});
          tick.addEventListener("change", function () { tickMove(wf, from, to, tick.checked); });
          cell.appendChild(tick);
        }
        row.appendChild(cell);
      });
      grid.appendChild(row);
    });
    return el("div", {}, [el("div", {"class": "small font-weight-bold", text: W.transitions}), grid,
                          el("div", {"class": "small text-muted", text: W.any_move})]);
  }
  function tickMove(wf, from, to, on) {
    var moves = wf.transitions || {};
    var list = (moves[from] || []).filter(function (s) { return s !== to; });
    if (on) { list.push(to); }
    moves[from] = list;
    var any = Object.keys(moves).some(function (k) { return (moves[k] || []).length; });
    if (any) { wf.transitions = moves; } else { delete wf.transitions; }
  }

  // -- 时限 ------------------------------------------------------------------------------------------------
  function startOptions() {
    var options = [["created", W.created]];
    fieldOptions("moment").forEach(function (f) { options.push([f[0], W.field_prefix + f[1]]); });
    statuses().forEach(function (s) { options.push(["status:" + s, fmt(W.status_became, {status: s})]); });
    // Field events (kefu.rules.clock_start): a choice field taking a value, any field first filled in.
    fields.filter(function (f) { return !f.sensitive; }).forEach(function (f) {
      (f.choices || []).forEach(function (c) {
        options.push(["field:" + f.key + "=" + c, fmt(W.field_became, {field: f.label, value: c})]);
      });
      options.push(["field:" + f.key, fmt(W.field_filled, {field: f.label})]);
    });
    return options;
  }
  function slaEditor() {
    state.sla = state.sla || [];
    var body = el("div");
    var clockSchema = schemas.sla.$defs.Clock;
    state.sla.forEach(function (clock, index) {
      var path = "sla." + index;
      var card = el("div", {"class": "kefu-rule-item", "data-path": path, "data-kefu-clock": String(index)});
      var refresh = function () { schedulePreview(index); };
      var nameInput = input("text", clock.name, function (v) { clock.name = v; }, path + ".name", {style: "width:12rem"});
      var keyText = el("span", {"class": "small text-muted text-monospace", "data-path": path + ".key",
                                text: W.key + ": " + (clock.key || W.auto_key)});
      nameInput.addEventListener("change", function () { newClockKey(clock, keyText); });
      card.appendChild(el("div", {"class": "kefu-rule-row"}, [
        labelled(W.clock_name, nameInput), labelled(W.start, select(startOptions(), clock.start || "created",
          function (v) { clock.start = v; refresh(); }, path + ".start")),
        labelled(W.within, windowControl(clock.within, function (v) { setOrDrop(clock, "within", v); refresh(); },
                                         path + ".within")),
        keyText,
        button(W.remove, function () { state.sla.splice(index, 1); render(); }, "btn-outline-danger ml-auto")]));
      card.appendChild(byLevel(clock, path, refresh));
      card.appendChild(conditions(clock, "when", W.when, path));
      card.appendChild(conditions(clock, "done_when", W.done_when, path));
      card.appendChild(el("div", {"class": "kefu-rule-row"}, [
        labelled(W.until, control(clockSchema.properties.until, clock.until, function (v) { setOrDrop(clock, "until", v); },
                                  path + ".until", false, "sla")),
        labelled(W.due_soon, windowControl(clock.due_soon, function (v) { setOrDrop(clock, "due_soon", v); },
                                           path + ".due_soon", clockSchema.properties.due_soon["x-kefu-units"])),
        labelled(W.notify_at_start, control(clockSchema.properties.notify_at_start, clock.notify_at_start,
                                            function (v) { setOrDrop(clock, "notify_at_start", v); },
                                            path + ".notify_at_start", false, "sla"))]));
      card.appendChild(previewBlock(clock, index));
      body.appendChild(card);
    });
    body.appendChild(button(W.add_clock, function () {
      state.sla.push({name: "", start: "created", within: {working_days: 2}, _new: true});
      render();
    }));
    return body;
  }
  // A new clock's key, made from its name as a new field's is (the field grid's route: pinyin, else clock_N at
  // save); a stored clock keeps its key (its records hold their deadlines under it).
  function newClockKey(clock, keyText) {
    var grid = document.querySelector("[data-kefu-field-key-url]");
    if (!clock._new || !grid || !clock.name) { return; }
    var taken = (state.sla || []).filter(function (c) { return c !== clock; }).map(function (c) { return c.key; });
    var url = grid.getAttribute("data-kefu-field-key-url") + "?label=" + encodeURIComponent(clock.name) +
      "&taken=" + encodeURIComponent(taken.filter(Boolean).join(","));
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.ok ? r.json() : {}; }).then(function (body) {
      if (body.key && /^[a-z][a-z0-9_]*$/.test(body.key)) {
        clock.key = body.key;
        keyText.textContent = W.key + ": " + body.key;
      }
    });
  }
  function byLevel(clock, path, refresh) {
    var wrap = el("div", {"class": "mb-1", "data-path": path + ".by_level"});
    var levels = clock.by_level = clock.by_level || {};
    var levelField = clock.level_field || "level";
    var field = fieldByKey(levelField);
    var head = el("div", {"class": "kefu-rule-row"}, [el("span", {"class": "small font-weight-bold", text: W.by_level}),
      labelled(schemas.sla.$defs.Clock.properties.level_field.title, select(fieldOptions("choice"), levelField,
        function (v) {
          if (v === "level") { delete clock.level_field; } else { clock.level_field = v; }
          render();
        }, path + ".level_field"))]);
    wrap.appendChild(head);
    Object.keys(levels).forEach(function (level) {
      wrap.appendChild(el("div", {"class": "kefu-rule-row"}, [
        select((field ? field.choices : []).map(function (c) { return [c, c]; }), level, function (v) {
          var window = levels[level];
          delete levels[level];
          levels[v] = window;
          render();
        }, path + ".by_level." + level),
        windowControl(levels[level], function (v) { levels[level] = v; refresh(); }),
        button(W.remove, function () { delete levels[level]; render(); }, "btn-outline-danger")]));
    });
    var free = (field ? field.choices : []).filter(function (c) { return !(c in levels); });
    if (free.length) {
      wrap.appendChild(button(W.add_level_window, function () {
        levels[free[0]] = Object.assign({}, clock.within || {hours: 4});
        render();
      }));
    }
    return wrap;
  }
  function conditions(clock, part, title, path) {
    var cond = clock[part] = clock[part] || {};
    var wrap = el("div", {"class": "mb-1", "data-path": path + "." + part},
                  [el("div", {"class": "small font-weight-bold", text: title})]);
    var options = config.core_fields.filter(function (c) { return c[0] === "status"; })
      .concat(fields.filter(function (f) { return !f.sensitive; }).map(function (f) { return [f.key, f.label]; }));
    Object.keys(cond).forEach(function (name) {
      var field = fieldByKey(name);
      var choices = name === "status" ? statuses() : field && field.choices.length ? field.choices : null;
      var value = cond[name];
      var valueControl;
      if (choices) {
        var chosen = value === "*" ? ["*"] : Array.isArray(value) ? value : [value];
        valueControl = checks(choices.map(function (c) { return [c, c]; }).concat([["*", W.filled]]), chosen, function (now) {
          cond[name] = now.indexOf("*") >= 0 ? "*" : now.length === 1 ? now[0] : now;
        });
      } else {
        valueControl = input("text", Array.isArray(value) ? value.join("、") : value, function (v) {
          var words = wordsOf(v);
          cond[name] = words.length > 1 ? words : (words[0] || "");
        }, null, {placeholder: "* = " + W.filled});
      }
      wrap.appendChild(el("div", {"class": "kefu-rule-row"}, [
        select(options, name, function (v) { var old = cond[name]; delete cond[name]; cond[v] = old; render(); },
               path + "." + part + "." + name),
        labelled(W.field_value, valueControl),
        button(W.remove, function () { delete cond[name]; render(); }, "btn-outline-danger")]));
    });
    var free = options.filter(function (o) { return !(o[0] in cond); });
    if (free.length) {
      wrap.appendChild(button(W.add_condition, function () { cond[free[0][0]] = "*"; render(); }));
    }
    return wrap;
  }
  function previewBlock(clock, index) {
    var sample = input("datetime-local", clock._sample || config.sample, function (v) {
      clock._sample = v;
      schedulePreview(index);
    }, null, {style: "width:14rem", "data-kefu-sample": ""});
    var out = el("div", {"data-kefu-preview-text": ""});
    var block = el("div", {"class": "kefu-preview", "data-kefu-preview": String(index)},
                   [el("div", {"class": "kefu-inline small"}, [W.sample, sample]), out]);
    setTimeout(function () { schedulePreview(index); }, 0);
    return block;
  }
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function post(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin",
                       headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
                       body: JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (data) { return {ok: r.ok, data: data}; }); });
  }
  function schedulePreview(index) {
    clearTimeout(previewTimers[index]);
    previewTimers[index] = setTimeout(function () { preview(index); }, 250);
  }
  function preview(index) {
    var clock = (state.sla || [])[index];
    var block = root.querySelector("[data-kefu-preview='" + index + "'] [data-kefu-preview-text]");
    if (!clock || !block) { return; }
    var start = clock.start || "created";
    var field = fieldByKey(start.indexOf("field:") === 0 ? start.slice(6).split("=")[0] : start);
    post(config.urls.preview, {start: start, start_label: field ? field.label : null, within: clock.within,
                               by_level: clock.by_level, sample: clock._sample || config.sample})
      .then(function (answer) {
        block.innerHTML = "";
        if (!answer.ok) {
          block.appendChild(el("div", {"class": "kefu-preview-error", text: answer.data.error || W.preview_failed}));
          return;
        }
        answer.data.lines.forEach(function (line) { block.appendChild(el("div", {text: line.text})); });
      })
      .catch(function () { block.textContent = W.preview_failed; });
  }

  // -- 等级 ------------------------------------------------------------------------------------------------
  function ruleDef(kind) {
    var defs = schemas.levels.$defs;
    return Object.keys(defs).map(function (k) { return defs[k]; }).filter(function (d) {
      return d.properties && d.properties.rule && d.properties.rule.const === kind;
    })[0];
  }
  function levelsEditor() {
    var lv = state.levels;
    var body = el("div");
    var schema = schemas.levels;
    body.appendChild(propsRow({properties: {field: schema.properties.field}, required: ["field"]}, lv, "levels",
                              "levels", [], render));
    lv.order = lv.order || [];
    var field = fieldByKey(lv.field);
    var orderBox = el("div", {"class": "mb-2", "data-path": "levels.order"},
                      [el("div", {"class": "small font-weight-bold", text: W.order})]);
    lv.order.forEach(function (level, index) {
      orderBox.appendChild(el("div", {"class": "kefu-rule-row"}, [
        el("span", {"class": "badge badge-light", text: (index + 1) + ". " + level}),
        arrow("↑", W.up, function () { move(lv.order, index, -1); render(); }),
        arrow("↓", W.down, function () { move(lv.order, index, 1); render(); }),
        button(W.remove, function () { lv.order.splice(index, 1); render(); }, "btn-outline-danger")]));
    });
    var free = (field ? field.choices : []).filter(function (c) { return lv.order.indexOf(c) < 0; });
    if (free.length) {
      orderBox.appendChild(el("div", {"class": "kefu-rule-row"}, free.map(function (c) {
        return button("+ " + c, function () { lv.order.push(c); render(); });
      })));
    }
    body.appendChild(orderBox);
    lv.rules = lv.rules || [];
    var rulesBox = el("div", {"data-path": "levels.rules"});
    lv.rules.forEach(function (rule, index) {
      var path = "levels.rules." + index;
      var item = el("div", {"class": "kefu-rule-item", "data-path": path, "data-kefu-level-rule": String(index)});
      var kinds = Object.keys(config.rule_titles).map(function (k) { return [k, config.rule_titles[k]]; });
      var head = el("div", {"class": "kefu-rule-row"}, [
        labelled(W.rule_kind, select(kinds, rule.rule, function (v) {
          lv.rules[index] = {rule: v, level: rule.level};
          render();
        }, path + ".rule")),
        button(W.remove, function () { lv.rules.splice(index, 1); render(); }, "btn-outline-danger ml-auto")]);
      item.appendChild(head);
      var def = ruleDef(rule.rule);
      if (def) { item.appendChild(propsRow(def, rule, path, "levels", ["rule"], null, ["level", "reason"])); }
      rulesBox.appendChild(item);
    });
    rulesBox.appendChild(button(W.add_rule, function () {
      lv.rules.push({rule: "at_least", level: lv.order[lv.order.length - 1]});
      render();
    }));
    body.appendChild(rulesBox);
    body.appendChild(propsRow({properties: {on_rejected: schema.properties.on_rejected}}, lv, "levels", "levels"));
    return body;
  }

  // -- the sections ---------------------------------------------------------------------------------------
  var SKELETONS = {
    levels: function () {
      var level = fieldByKey("level");
      return {field: level ? "level" : "", order: level ? level.choices.slice() : [], rules: []};
    },
    approvals: function () { return {bands: [{approver: ""}]}; },
    callback: function () { return {within: {working_days: 7}, rejected_values: []}; },
    reminders: function () { return {ladder: {at: "09:00", manager_after: 2}}; },
    report: function () { return {}; }
  };
  // A section that is a list of entries with no editor of its own (computed:, spawn: …): each entry's settings from
  // the item schema — for a tagged union (``discriminator``), a kind picker first, then the chosen kind's settings.
  function listEditor(key) {
    var schema = schemas[key], items = schema.items || {}, union = items.discriminator;
    var list = state[key] = state[key] || [];
    var body = el("div");
    function kindOf(tag) { return resolve({$ref: union.mapping[tag]}, key); }
    list.forEach(function (item, index) {
      var path = key + "." + index;
      var wrap = el("div", {"class": "kefu-rule-item", "data-path": path});
      if (union) {
        var tagName = union.propertyName;
        var kinds = Object.keys(union.mapping).map(function (tag) {
          var def = kindOf(tag), own = (def.properties || {})[tagName] || {};
          return [tag, own.title || def.title || tag];  // the kind's own title ("低于阈值"), not its class name
        });
        wrap.appendChild(el("div", {"class": "kefu-rule-row"}, [labelled(W.rule_kind, select(kinds, item[tagName],
          function (tag) { var fresh = {}; fresh[tagName] = tag; list[index] = fresh; render(); }, path + "." + tagName))]));
        if (item[tagName] && union.mapping[item[tagName]]) {
          wrap.appendChild(propsRow(kindOf(item[tagName]), item, path, key, [tagName]));
        }
      } else {
        wrap.appendChild(propsRow(resolve(items, key), item, path, key));
      }
      wrap.appendChild(button(W.remove, function () { list.splice(index, 1); render(); }, "btn-outline-danger"));
      body.appendChild(wrap);
    });
    body.appendChild(button(W.add_entry, function () {
      var item = {};
      if (union) { item[union.propertyName] = Object.keys(union.mapping)[0]; }
      list.push(item);
      render();
    }));
    return body;
  }
  function sectionCard(section) {
    var key = section.key;
    var card = el("div", {"class": "card mb-2", "data-kefu-section": key, "data-path": key});
    var header = el("div", {"class": "card-header font-weight-bold"}, [section.title]);
    card.appendChild(header);
    var body = el("div", {"class": "card-body"});
    card.appendChild(body);
    // An object section is off until ticked (one with no skeleton of its own starts empty); the workflow always is.
    var skeleton = SKELETONS[key] || (section.schema.type === "object" && key !== "workflow" ?
      function () { return {}; } : null);
    if (skeleton) {
      var on = state[key] !== undefined && state[key] !== null;
      var tick = el("input", {type: "checkbox", checked: on, "data-kefu-enable": key});
      tick.addEventListener("change", function () {
        if (tick.checked) { state[key] = skeleton(); } else { delete state[key]; }
        render();
      });
      header.insertBefore(el("label", {"class": "float-right font-weight-normal small mb-0"}, [tick, " " + W.enabled]),
                          header.firstChild);
      if (!on) { return card; }
    }
    if (key === "workflow") { body.appendChild(workflowEditor()); } else if (key === "sla") {
      body.appendChild(slaEditor());
    } else if (key === "levels") { body.appendChild(levelsEditor()); } else if (section.schema.type === "array") {
      body.appendChild(listEditor(key));
    } else {
      body.appendChild(propsRow(section.schema, state[key], key, key));
    }
    return card;
  }
  function showProblems() {
    Object.keys(config.problems).forEach(function (path) {
      var message = config.problems[path];
      var parts = path.split(".");
      var target = null;
      while (parts.length && !target) {
        var at = parts.join(".");
        target = holder.querySelector("[data-path='" + at.replace(/'/g, "\\'") + "']");
        parts.pop();
      }
      var note = el("div", {"class": "kefu-problem", "data-kefu-problem": path, text: message});
      if (!target) {
        banner.hidden = false;
        banner.appendChild(el("div", {text: message}));
        return;
      }
      if (target.matches("input, select, textarea")) {
        target.classList.add("is-invalid");
        (target.closest("label") || target).insertAdjacentElement("afterend", note);
      } else {
        target.classList.add("is-invalid-box");
        if (target.matches("[data-kefu-section]")) {
          note.textContent = W.section_problem + message;
          target.querySelector(".card-body").insertAdjacentElement("afterbegin", note);
        } else { target.insertAdjacentElement("afterbegin", note); }
      }
    });
  }
  // One section shown at a time, under a tab per section (the 投诉 rules are several screens tall otherwise); the
  // other cards stay in the page, hidden, so a problem finds its control wherever it is. A refused save opens on
  // the first section with a problem; each such tab carries a "!".
  // Built aside and swapped in at once: a change event re-renders while the click that caused it (on 保存, say) is
  // still under way, and an emptied holder for a moment would shorten the page, scroll it and lose the click.
  var activeSection = null;
  function render() {
    readFields();
    var frame = document.createDocumentFragment();
    var troubled = Object.keys(config.problems).map(function (path) { return path.split(".")[0]; });
    var keys = config.sections.map(function (section) { return section.key; });
    if (!activeSection) {
      activeSection = troubled.filter(function (key) { return keys.indexOf(key) >= 0; })[0] || keys[0];
    }
    var tabs = el("ul", {"class": "nav nav-tabs kefu-rule-tabs mb-2"});
    frame.appendChild(tabs);
    config.sections.forEach(function (section) {
      var link = el("a", {"class": "nav-link" + (section.key === activeSection ? " active" : ""), href: "#",
                          "data-kefu-tab": section.key, on: {click: function (event) {
                            event.preventDefault();
                            activeSection = section.key;
                            render();
                          }}}, [section.title]);
      if (troubled.indexOf(section.key) >= 0) {
        link.appendChild(el("span", {"class": "badge badge-danger ml-1", text: "!"}));
      }
      tabs.appendChild(el("li", {"class": "nav-item"}, [link]));
      var card = sectionCard(section);
      card.hidden = section.key !== activeSection;
      frame.appendChild(card);
    });
    holder.replaceChildren(frame);
    showProblems();
  }

  // -- what is saved -----------------------------------------------------------------------------------------
  function clean(value) {
    if (Array.isArray(value)) {
      return value.map(clean).filter(function (v) { return v !== undefined; });
    }
    if (value && typeof value === "object") {
      var out = {};
      Object.keys(value).forEach(function (k) {
        if (k.charAt(0) === "_") { return; }
        var v = clean(value[k]);
        if (v === undefined || v === "" || v === null) { return; }
        if (typeof v === "object" && !Array.isArray(v) && !Object.keys(v).length) { return; }
        out[k] = v;
      });
      return out;
    }
    return value;
  }
  function saved() {
    var taken = (state.sla || []).map(function (c) { return c.key; }).filter(Boolean);
    (state.sla || []).forEach(function (clock) {
      var n = 1;
      while (!clock.key) {
        if (taken.indexOf("clock_" + n) < 0) { clock.key = "clock_" + n; taken.push(clock.key); }
        n += 1;
      }
    });
    var out = {};
    config.sections.forEach(function (s) {
      var v = clean(state[s.key]);
      var empty = v && typeof v === "object" && !Object.keys(v).length;  // [] or {}: the section is not written
      if (v !== undefined && !empty) { out[s.key] = v; }
    });
    return out;
  }

  // -- 高级（YAML） ------------------------------------------------------------------------------------------
  var yamlHint = el("small", {"class": "form-text text-muted", text: W.yaml_hint});
  boxGroup.insertBefore(yamlHint, box);
  function showForm(on) {
    mode = on ? "form" : "yaml";
    holder.hidden = !on;
    boxGroup.hidden = on;
    advancedButton.textContent = on ? W.advanced : W.back_to_form;
  }
  advancedButton.addEventListener("click", function () {
    banner.hidden = true;
    banner.innerHTML = "";
    if (mode === "form") {
      post(config.urls.text, {rules: saved()}).then(function (answer) {
        if (answer.ok) { box.value = answer.data.text; }
        showForm(false);
      });
      return;
    }
    post(config.urls.text, {text: box.value}).then(function (answer) {
      if (!answer.ok) {
        banner.hidden = false;
        banner.textContent = answer.data.error || W.yaml_broken;
        return;
      }
      state = answer.data.rules || {};
      config.problems = {};
      showForm(true);
      render();
    });
  });
  box.closest("form").addEventListener("submit", function () {
    if (mode === "form") { box.value = JSON.stringify(saved(), null, 1); }
  });
  document.addEventListener("kefu:fields-changed", function () { if (mode === "form") { render(); } });

  if (config.rules === null || box.classList.contains("is-invalid")) {
    // The text itself was refused (not YAML, an unknown section): shown as typed, with why, in the 高级 box.
    var why = boxGroup.querySelector(".invalid-feedback");
    banner.hidden = false;
    banner.textContent = (why && why.textContent) || config.broken || W.yaml_broken;
    showForm(false);
    return;
  }
  showForm(true);
  render();
})();
