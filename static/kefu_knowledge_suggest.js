// Knowledge-base suggestions (知识库): under a record form's question input (marked data-knowledge-answer by
// admin_views.knowledge.suggest_attributes, from the type's knowledge: section), the published entries matching
// what is typed are listed (GET /api/v1/knowledge?q=…, debounced), narrowed to the project typed in the input
// named by data-knowledge-project when the form has one (&project=…: entries for every project and for that one).
// Choosing one fills the answer input named by
// data-knowledge-answer and counts a use (POST /api/v1/knowledge/<id>/use, CSRF token from
// <meta name="csrf-token">). The list's words come from the input's data-knowledge-* attributes (translated).
(function () {
  "use strict";
  var WAIT_MS = 300;
  var SHORTEST = 2;  // characters typed before asking
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function entryItem(input, answer, entry, box) {
    var item = document.createElement("button");
    item.type = "button";
    item.className = "list-group-item list-group-item-action kefu-knowledge-item";
    var question = document.createElement("div");
    question.className = "font-weight-bold";
    question.textContent = entry.question;
    var text = document.createElement("div");
    text.className = "small text-muted";
    text.textContent = entry.answer.length > 120 ? entry.answer.slice(0, 120) + "…" : entry.answer;
    var uses = document.createElement("span");
    uses.className = "badge badge-light float-right";
    uses.textContent = (input.dataset.knowledgeCount || "{n}").replace("{n}", entry.use_count);
    item.appendChild(uses);
    item.appendChild(question);
    item.appendChild(text);
    item.addEventListener("click", function () {
      answer.value = entry.answer;
      answer.dispatchEvent(new Event("input", {bubbles: true}));
      box.hidden = true;
      fetch("/api/v1/knowledge/" + encodeURIComponent(entry.id) + "/use", {
        method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrfToken()}
      });
    });
    return item;
  }
  function attach(input) {
    var answer = document.getElementById(input.dataset.knowledgeAnswer);
    if (!answer) { return; }
    var box = document.createElement("div");
    box.className = "kefu-knowledge-suggestions mt-1";
    box.hidden = true;
    var title = document.createElement("div");
    title.className = "small text-muted mb-1";
    title.textContent = input.dataset.knowledgeTitle || "";
    var list = document.createElement("div");
    list.className = "list-group";
    box.appendChild(title);
    box.appendChild(list);
    input.parentNode.insertBefore(box, input.nextSibling);
    var project = input.dataset.knowledgeProject ? document.getElementById(input.dataset.knowledgeProject) : null;
    var timer = null;
    var asked = 0;
    function ask() {
      clearTimeout(timer);
      var text = input.value.trim();
      if (text.length < SHORTEST) { box.hidden = true; return; }
      timer = setTimeout(function () {
        var mine = ++asked;
        var url = "/api/v1/knowledge?per_page=5&q=" + encodeURIComponent(text);
        if (project && project.value.trim()) { url += "&project=" + encodeURIComponent(project.value.trim()); }
        fetch(url, {credentials: "same-origin"})
          .then(function (r) { return r.ok ? r.json() : {items: []}; })
          .then(function (body) {
            if (mine !== asked) { return; }  // an answer to an older text: a newer one is on its way
            list.innerHTML = "";
            body.items.forEach(function (entry) { list.appendChild(entryItem(input, answer, entry, box)); });
            box.hidden = body.items.length === 0;
          });
      }, WAIT_MS);
    }
    input.addEventListener("input", ask);
    if (project) { project.addEventListener("change", ask); }  // another project: other entries may hold
  }
  document.querySelectorAll("[data-knowledge-answer]").forEach(attach);
})();
