/* Charts of the monthly report and the dashboard (Apache ECharts from static/vendor/echarts).
   Each element with data-chart="<key>" is drawn from the JSON in #kefu-report-data or #kefu-dashboard-data. */
(function () {
  "use strict";
  if (typeof echarts === "undefined") { return; }
  var source = document.getElementById("kefu-report-data") || document.getElementById("kefu-dashboard-data");
  if (!source) { return; }
  var data = JSON.parse(source.textContent);
  var labels = JSON.parse(source.getAttribute("data-labels") || "{}");
  var now = labels.now || "本月", before = labels.before || "上月", rate = (labels.rate || "按时率") + " %";

  function bars(item) {
    return {
      tooltip: {trigger: "axis"}, legend: {data: [now, before], top: 0},
      grid: {left: 40, right: 10, top: 30, bottom: 40, containLabel: true},
      xAxis: {type: "category", data: item.names, axisLabel: {interval: 0, rotate: item.names.length > 6 ? 30 : 0}},
      yAxis: {type: "value", minInterval: 1},
      series: [{name: now, type: "bar", data: item.now}, {name: before, type: "bar", data: item.before}]
    };
  }
  var builders = {
    _clocks: function (item) {
      return {tooltip: {trigger: "axis"}, grid: {left: 40, right: 10, top: 20, bottom: 40, containLabel: true},
              xAxis: {type: "category", data: item.names, axisLabel: {interval: 0, rotate: item.names.length > 4 ? 30 : 0}},
              yAxis: {type: "value", max: 100, name: rate},
              series: [{type: "bar", data: item.rates, label: {show: true, position: "top"}}]};
    },
    _satisfaction: function (item) {
      return {tooltip: {trigger: "item"}, legend: {bottom: 0},
              series: [{type: "pie", radius: ["35%", "65%"], data: item}]};
    },
    trend: function (item) {
      return {tooltip: {trigger: "axis"}, legend: {data: item.legend, top: 0},
              grid: {left: 40, right: 10, top: 30, bottom: 30, containLabel: true},
              xAxis: {type: "category", data: item.days}, yAxis: {type: "value", minInterval: 1},
              series: [{name: item.legend[0], type: "line", data: item.created},
                       {name: item.legend[1], type: "line", data: item.closed}]};
    },
    overdue_by_department: function (item) {
      return {tooltip: {trigger: "axis"}, grid: {left: 40, right: 10, top: 10, bottom: 30, containLabel: true},
              xAxis: {type: "value", minInterval: 1}, yAxis: {type: "category", data: item.names},
              series: [{type: "bar", data: item.counts, label: {show: true, position: "right"}}]};
    }
  };
  document.querySelectorAll("[data-chart]").forEach(function (element) {
    var key = element.getAttribute("data-chart"), item = data[key];
    if (!item) { return; }
    var chart = echarts.init(element);
    chart.setOption((builders[key] || bars)(item));
    window.addEventListener("resize", function () { chart.resize(); });
    element.setAttribute("data-rendered", "1");
  });
})();
