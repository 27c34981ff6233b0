// Autocomplete for reference fields (项目、户位、客户、用户、部门): inputs marked data-ref-kind
// get a <datalist> filled from GET /api/v1/refs/<kind>?q=… as the person types. Customers are
// looked up with POST (JSON body, CSRF token from <meta name="csrf-token">): what is typed may be
// a phone number, which must never appear in a URL (access logs keep URLs).
(function () {
  "use strict";
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function suggestions(kind, text) {
    var project = projectId();
    if (kind === "customer") {
      return fetch("/api/v1/refs/customer", {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
        body: JSON.stringify({q: text, project: project || null})
      });
    }
    var url = "/api/v1/refs/" + kind + "?q=" + encodeURIComponent(text);
    if (project) { url += "&project=" + project; }
    return fetch(url, {credentials: "same-origin"});
  }
  function projectId() {
    var project = document.getElementById("project");
    return project && /^[0-9a-f]{24}$/i.test(project.value) ? project.value : "";
  }
  function attach(input) {
    var list = document.createElement("datalist");
    list.id = input.getAttribute("list");
    input.parentNode.appendChild(list);
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        suggestions(input.dataset.refKind, input.value)
          .then(function (r) { return r.ok ? r.json() : {items: []}; })
          .then(function (body) {
            list.innerHTML = "";
            body.items.forEach(function (item) {
              var option = document.createElement("option");
              option.value = item.value;
              option.label = item.label;
              list.appendChild(option);
            });
          });
      }, 200);
    });
  }
  document.querySelectorAll("input[data-ref-kind]").forEach(attach);
})();
