// Autocomplete for reference fields (项目、户位、客户、用户、部门): inputs marked data-ref-kind
// get a <datalist> filled from GET /api/v1/refs/<kind>?q=… as the person types.
(function () {
  "use strict";
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
        var url = "/api/v1/refs/" + input.dataset.refKind + "?q=" + encodeURIComponent(input.value);
        if (projectId()) { url += "&project=" + projectId(); }
        fetch(url, {credentials: "same-origin"}).then(function (r) { return r.ok ? r.json() : {items: []}; })
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
