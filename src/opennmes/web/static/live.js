// Live session view: polls /live/<id>/data and draws Plotly charts; submits the control
// forms with fetch. Every control also works as a plain form when this script fails.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) { return; }
  var runId = root.dataset.run;
  var period = parseInt(root.dataset.period, 10) || 50;
  var since = -1;
  var windowS = 20;
  var ended = false;
  var charts = { amp: "chart-amplitude", force: "chart-force", emg: "chart-emg" };
  var traces = null;
  // the page's language: its words (data-words, translated on the server) and number format
  var words = {};
  try { words = JSON.parse(root.dataset.words || "{}"); } catch (e) { words = {}; }
  var lang = root.dataset.lang || "en";
  function w(key, fallback) { return words[key] || fallback; }
  function fixed(value, digits) {
    return value.toLocaleString(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits,
                                        useGrouping: false });
  }

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value; }
  }

  function initCharts(snap) {
    if (typeof Plotly === "undefined") { return; }
    var layout = function (title, unit) {
      return { title: { text: title, font: { size: 14 } }, margin: { l: 50, r: 10, t: 30, b: 30 },
               xaxis: { title: { text: w("time", "time (s)") } }, yaxis: { title: { text: unit } },
               showlegend: true,
               legend: { orientation: "h" } };
    };
    var cfg = { displayModeBar: false, responsive: true, staticPlot: false };
    Plotly.newPlot(charts.amp, snap.channels.map(function (c) {
      return { x: [], y: [], mode: "lines", name: c, line: { shape: "hv" } };
    }), layout(w("amplitude", "Delivered amplitude"), "mA"), cfg);
    Plotly.newPlot(charts.force, [{ x: [], y: [], mode: "lines", name: snap.force_label }],
                   layout(w("response", "How the muscle responds"), snap.force_label), cfg);
    Plotly.newPlot(charts.emg, [{ x: [], y: [], mode: "lines", name: w("muscle activity", "muscle activity") }],
                   layout(w("activity", "Muscle activity (EMG)"), "mV (rms)"), cfg);
    traces = snap.channels.length;
  }

  function showEvents(events) {
    var list = document.getElementById("trigger-events");
    if (!list || !events) { return; }
    var key = events.map(function (e) { return e.t + e.text; }).join("|");
    if (list.dataset.key === key) { return; }
    list.dataset.key = key;
    while (list.firstChild) { list.removeChild(list.firstChild); }
    if (!events.length) {
      var none = document.createElement("li");
      none.className = "none";
      none.textContent = w("none", "Nothing yet.");
      list.appendChild(none);
    }
    events.forEach(function (e) {
      var li = document.createElement("li");
      li.className = "result-" + (e.result || e.kind);
      var t = document.createElement("span");
      t.className = "t";
      t.textContent = fixed(e.t, 1) + " s";
      li.appendChild(t);
      li.appendChild(document.createTextNode(" " + e.text));
      list.appendChild(li);
    });
  }

  function update(snap) {
    showEvents(snap.events);
    text("state", w(snap.state, snap.state));
    text("phase", snap.phase);
    text("contraction", snap.contraction + " " + w("of", "of") + " " + snap.n_contractions);
    text("remaining", Math.max(0, Math.round(snap.remaining)) + " s");
    snap.channels.forEach(function (c, i) {
      text("level-" + i, fixed(snap.levels_mA[i], 1) + " mA");
    });
    var ind = document.getElementById("stimulating");
    if (ind) {
      ind.textContent = snap.stimulating ? w("on", "STIMULATING") : w("off", "output off");
      ind.className = "stim-indicator" + (snap.stimulating ? " on" : "");
    }
    var pb = document.getElementById("pause-action");
    if (pb) {
      pb.value = snap.paused ? "resume" : "pause";
      document.getElementById("pause-button").textContent = snap.paused ? w("resume", "Resume") : w("pause", "Pause");
    }
    if (snap.samples.length && traces !== null && typeof Plotly !== "undefined") {
      var t = snap.samples.map(function (s) { return s.t; });
      var ampX = [], ampY = [];
      for (var i = 0; i < traces; i++) {
        ampX.push(t);
        ampY.push(snap.samples.map(function (s) { return s.amplitude_mA[i]; }));
      }
      var idx = []; for (var k = 0; k < traces; k++) { idx.push(k); }
      var n = Math.ceil(windowS * 1000 / 40);
      Plotly.extendTraces(charts.amp, { x: ampX, y: ampY }, idx, n);
      Plotly.extendTraces(charts.force, { x: [t], y: [snap.samples.map(function (s) { return s.force; })] }, [0], n);
      Plotly.extendTraces(charts.emg, { x: [t], y: [snap.samples.map(function (s) { return s.emg; })] }, [0], n);
    }
    if (snap.samples.length) { since = snap.samples[snap.samples.length - 1].seq; }
    if (snap.state === "ended" && !ended) {
      ended = true;
      root.classList.add("ended");
      Array.prototype.forEach.call(document.querySelectorAll(".trigger-form button"), function (b) {
        b.disabled = true;
      });
      var done = document.getElementById("ended");
      if (done) {
        done.hidden = false;
        var o = snap.outcome || {};
        text("outcome", w(o.status || "ended", o.status || "ended") + (o.reason ? ": " + o.reason : ""));
        if (snap.session_id !== null) {
          var a = document.getElementById("record-link");
          if (a) { a.href = "/sessions/" + snap.session_id; a.hidden = false; }
        }
      }
    }
  }

  function poll() {
    fetch("/live/" + runId + "/data?since=" + since, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (snap) {
        if (traces === null) { initCharts(snap); }
        update(snap);
        if (!ended) { setTimeout(poll, period); }
      })
      .catch(function () { setTimeout(poll, 500); });
  }

  // controls: same forms, sent with fetch (no reload); the stop form too
  Array.prototype.forEach.call(document.querySelectorAll("form.live-control"), function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var data = new FormData(form);
      if (ev.submitter && ev.submitter.name) { data.append(ev.submitter.name, ev.submitter.value); }
      fetch(form.getAttribute("action"), { method: "POST", body: new URLSearchParams(data), credentials: "same-origin",
                           headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          text("live-message", body.error || body.message || "");
          var msg = document.getElementById("live-message");
          if (msg) { msg.className = body.error ? "flash error" : "flash"; }
        })
        .catch(function () { form.submit(); });
    });
  });
  poll();
}());
