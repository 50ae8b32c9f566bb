/* serverbench report: every <script type="application/json" class="chart-spec"> becomes a
   Chart.js chart in the canvas it names. Specs come from serverbench/report/charts.py; this
   file only maps them onto Chart.js options, so a new kind of chart needs no new JavaScript.
   After drawing, each canvas carries the values Chart.js holds (data-values), so a headless
   browser test can read back what was drawn. */
(function () {
  "use strict";

  function fmt(value) {
    if (value === null || value === undefined) return "-";
    var digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
    return value.toLocaleString("en-US", { maximumFractionDigits: digits });
  }

  function withUnit(value, unit) {
    return fmt(value) + (unit ? (unit === "%" ? " %" : " " + unit) : "");
  }

  // whiskers (a confidence interval or min-max) over bars that have one; hidden series draw none
  var whiskers = {
    id: "serverbenchWhiskers",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx;
      var horizontal = chart.options.indexAxis === "y";
      var scale = horizontal ? chart.scales.x : chart.scales.y;
      chart.data.datasets.forEach(function (dataset, i) {
        if (!dataset.serverbenchRanges || !chart.isDatasetVisible(i)) return;
        chart.getDatasetMeta(i).data.forEach(function (bar, j) {
          var range = dataset.serverbenchRanges[j];
          if (!range) return;
          var lo = scale.getPixelForValue(range[0]);
          var hi = scale.getPixelForValue(range[1]);
          var centre = horizontal ? bar.y : bar.x;
          var cap = Math.max(2, Math.min(6, (horizontal ? bar.height : bar.width) / 4));
          ctx.save();
          ctx.strokeStyle = "#111";
          ctx.lineWidth = 1.5;
          ctx.beginPath();
          if (horizontal) {
            ctx.moveTo(lo, centre); ctx.lineTo(hi, centre);
            ctx.moveTo(lo, centre - cap); ctx.lineTo(lo, centre + cap);
            ctx.moveTo(hi, centre - cap); ctx.lineTo(hi, centre + cap);
          } else {
            ctx.moveTo(centre, lo); ctx.lineTo(centre, hi);
            ctx.moveTo(centre - cap, lo); ctx.lineTo(centre + cap, lo);
            ctx.moveTo(centre - cap, hi); ctx.lineTo(centre + cap, hi);
          }
          ctx.stroke();
          ctx.restore();
        });
      });
    },
  };

  // a cell with no measurement is a gap with its status written in it, never a zero bar
  var statuses = {
    id: "serverbenchStatuses",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx;
      chart.data.datasets.forEach(function (dataset, i) {
        if (!dataset.serverbenchStatuses || !chart.isDatasetVisible(i)) return;
        chart.getDatasetMeta(i).data.forEach(function (bar, j) {
          var status = dataset.serverbenchStatuses[j];
          if (dataset.data[j] !== null || !status) return;
          ctx.save();
          ctx.fillStyle = "#b00020";
          ctx.font = "bold 11px system-ui, sans-serif";
          ctx.translate(bar.x, chart.chartArea.bottom - 6);
          ctx.rotate(-Math.PI / 2);
          ctx.fillText(status, 0, 4);
          ctx.restore();
        });
      });
    },
  };

  function scaleOptions(axis, isValueAxis, isLine) {
    var options = {
      type: axis.log ? "logarithmic" : isValueAxis || isLine ? "linear" : "category",
      stacked: axis.stacked,
      title: { display: Boolean(axis.title || axis.unit), text: axis.title + (axis.unit ? " (" + axis.unit + ")" : "") },
      ticks: {},
    };
    if (isValueAxis && !axis.log) options.beginAtZero = true;
    if (isValueAxis) {
      // the scale must hold the whiskers of the visible series, not only their medians
      options.afterDataLimits = function (scale) {
        var chart = scale.chart;
        chart.data.datasets.forEach(function (dataset, i) {
          if (!dataset.serverbenchRanges || !chart.isDatasetVisible(i)) return;
          dataset.serverbenchRanges.forEach(function (range) {
            if (range && range[1] > scale.max) scale.max = range[1];
          });
        });
      };
    }
    if (axis.ticks.length) {
      var labels = {};
      axis.ticks.forEach(function (t) { labels[t[0]] = t[1]; });
      options.min = axis.ticks[0][0];
      options.max = axis.ticks[axis.ticks.length - 1][0];
      options.afterBuildTicks = function (scale) {
        scale.ticks = axis.ticks.map(function (t) { return { value: t[0] }; });
      };
      options.ticks.callback = function (value) { return labels[value]; };
    } else if (axis.log) {
      options.ticks.callback = function (value) {
        var mantissa = value / Math.pow(10, Math.floor(Math.log10(value) + 1e-9));
        return [1, 2, 5].indexOf(Math.round(mantissa)) >= 0 ? withUnit(value, axis.unit) : "";
      };
    } else if (isValueAxis) {
      options.ticks.callback = function (value) { return withUnit(value, axis.unit); };
    }
    return options;
  }

  function build(canvas, spec) {
    var isLine = spec.type === "line";
    var valueAxis = spec.horizontal ? spec.x : spec.y;
    var datasets = spec.series.map(function (s) {
      var dataset = {
        label: s.label,
        hidden: s.hidden,
        backgroundColor: s.colour,
        borderColor: s.colour,
        serverbenchKey: s.key,
        serverbenchRanges: s.ranges.length ? s.ranges : null,
        serverbenchRangeLabels: s.range_labels,
        serverbenchStatuses: s.statuses.length ? s.statuses : null,
        serverbenchPointLabels: s.point_labels,
      };
      if (isLine) {
        dataset.data = s.points.map(function (p) { return { x: p[0], y: p[1] }; });
        dataset.borderWidth = 2;
        dataset.pointRadius = s.point_radii.length ? s.point_radii.slice() : 3;
        if (s.point_styles.length) dataset.pointStyle = s.point_styles.slice();
        dataset.fill = false;
        if (s.dashed) {
          // a reference line (an SLO): no marks of its own
          dataset.borderDash = [6, 4];
          dataset.borderWidth = 1.5;
          dataset.pointRadius = 0;
        }
      } else {
        dataset.data = s.values.slice();
      }
      return dataset;
    });
    var tooltip = {
      callbacks: {
        title: function (items) {
          var item = items[0];
          var names = item.dataset.serverbenchPointLabels;
          return names && names.length ? names[item.dataIndex] : item.label;
        },
        label: function (item) {
          var value = spec.horizontal ? item.parsed.x : item.parsed.y;
          var text = item.dataset.label + ": " + withUnit(value, valueAxis.unit);
          var ranges = item.dataset.serverbenchRanges;
          var range = ranges && ranges[item.dataIndex];
          if (range) {
            var what = item.dataset.serverbenchRangeLabels[item.dataIndex];
            text += " [" + fmt(range[0]) + "-" + fmt(range[1]) + (what ? ", " + what : "") + "]";
          }
          return text;
        },
      },
    };
    return new Chart(canvas, {
      type: spec.type,
      data: { labels: spec.categories, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: spec.horizontal ? "y" : "x",
        interaction: isLine ? { mode: "nearest", intersect: false } : { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom" },
          title: { display: false },
          tooltip: tooltip,
        },
        scales: {
          x: scaleOptions(spec.x, spec.horizontal, isLine),
          y: scaleOptions(spec.y, !spec.horizontal, isLine),
        },
      },
      plugins: [whiskers, statuses],
    });
  }

  var rendered = 0;
  document.querySelectorAll("script.chart-spec").forEach(function (node) {
    var canvas = document.getElementById(node.getAttribute("data-canvas"));
    var chart = build(canvas, JSON.parse(node.textContent));
    canvas.setAttribute(
      "data-values",
      JSON.stringify(
        chart.data.datasets.map(function (d, i) {
          return { key: d.serverbenchKey, label: d.label, data: d.data, visible: chart.isDatasetVisible(i) };
        })
      )
    );
    if (chart.chartArea && chart.chartArea.width > 0 && chart.chartArea.height > 0) rendered += 1;
  });
  document.body.setAttribute("data-rendered", String(rendered));
})();
