// 导入 (templates/admin/import_detail.html): polls the import's progress while its dry run or its writes run in the
// background, and reloads the page once they finish.
(function () {
  "use strict";
  var box = document.querySelector(".kefu-import-progress");
  if (!box) { return; }
  var bar = box.querySelector(".progress-bar");
  var rows = box.querySelector(".kefu-import-rows");
  var status = document.querySelector(".kefu-import-status");
  function poll() {
    fetch(box.getAttribute("data-status-url"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (job) {
        if (!job) { window.setTimeout(poll, 5000); return; }
        bar.style.width = job.percent + "%";
        bar.textContent = job.percent + "%";
        rows.textContent = job.rows_done + " / " + job.total;
        status.textContent = job.status_label;
        if (job.status === "checking" || job.status === "importing") {
          window.setTimeout(poll, 1500);
        } else {
          window.location.reload();
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
}());
