/* Charts of a satisfaction survey's page (templates/admin/survey_details.html; Apache ECharts from
   static/vendor/echarts). Each element with data-chart="<key>" is drawn from the JSON in #kefu-survey-data:
   {dimensions: {names, values}, questions: {names, values}} — the average scores (1–5). */
(function () {
  "use strict";
  var source = document.getElementById("kefu-survey-data");
  if (typeof echarts === "undefined" || !source) { return; }
  var data = JSON.parse(source.textContent);
  var labels = JSON.parse(source.getAttribute("data-labels") || "{}");
  document.querySelectorAll("[data-chart]").forEach(function (element) {
    var item = data[element.getAttribute("data-chart")];
    if (!item || !item.names.length) { return; }
    element.style.height = "240px";
    var chart = echarts.init(element);
    chart.setOption({
      tooltip: {trigger: "axis"}, grid: {left: 40, right: 10, top: 20, bottom: 40, containLabel: true},
      xAxis: {type: "category", data: item.names, axisLabel: {interval: 0, rotate: item.names.length > 5 ? 30 : 0}},
      yAxis: {type: "value", min: 0, max: 5, name: labels.average || ""},
      series: [{type: "bar", data: item.values, label: {show: true, position: "top"}}]
    });
    window.addEventListener("resize", function () { chart.resize(); });
    element.setAttribute("data-rendered", "1");
  });
})();
