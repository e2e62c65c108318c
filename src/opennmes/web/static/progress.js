// Progress report charts: one Plotly line per outcome instrument (data from the page).
(function () {
  "use strict";
  var el = document.getElementById("progress-data");
  if (!el || typeof Plotly === "undefined") { return; }
  JSON.parse(el.textContent).forEach(function (c) {
    Plotly.newPlot(c.id, [{ x: c.x, y: c.y, mode: "lines+markers", name: c.title }],
      { title: { text: c.title, font: { size: 14 } }, margin: { l: 50, r: 10, t: 30, b: 40 },
        yaxis: { title: c.unit }, xaxis: { type: "date" } },
      { displayModeBar: false, responsive: true });
  });
}());
