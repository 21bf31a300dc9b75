// runner ui: table polling, stop with confirmation, live output (server-sent events), metric plots.
// Everything the script produced is put in the page as text (textContent), never as markup.
"use strict";

const POLL_MS = 2000;

function pollTables() {
  for (const body of document.querySelectorAll("tbody[data-poll]")) {
    const url = body.dataset.poll + window.location.search;
    const tick = async () => {
      try {
        const r = await fetch(url, { headers: { "X-Runner-UI": "1" } });
        if (r.ok) {
          body.innerHTML = await r.text(); // rendered (and escaped) by the server's templates
          const state = r.headers.get("x-run-state"), head = document.getElementById("run-state");
          if (state && head) { head.textContent = state; head.className = "state " + state; }
          if (r.headers.get("x-run-active") === "0") { // a run that ended changes no more
            for (const b of document.querySelectorAll("button[data-stop]")) b.disabled = true;
            return;
          }
        }
      } catch (e) { /* the server may be restarting: try again */ }
      setTimeout(tick, POLL_MS);
    };
    setTimeout(tick, POLL_MS);
  }
}

function stopButtons() {
  for (const b of document.querySelectorAll("button[data-stop]")) {
    b.addEventListener("click", async () => {
      const name = b.dataset.stop;
      if (!window.confirm(`Stop ${name}? Artifacts made so far are kept.`)) return;
      const out = document.getElementById("action-result");
      b.disabled = true;
      out.textContent = `stopping ${name}…`;
      try {
        const r = await fetch(`/stop/${encodeURIComponent(name)}`, { method: "POST", headers: { "X-Runner-UI": "1" } });
        const doc = r.ok ? await r.json() : null;
        out.textContent = !doc ? `could not stop ${name} (${r.status})`
          : doc.stopped.length ? `stopped ${doc.stopped.join(", ")}` : `nothing of ${name} was running`;
      } catch (e) {
        out.textContent = `could not stop ${name}: ${e}`;
      }
    });
  }
}

function followLog() {
  const pre = document.getElementById("log");
  if (!pre) return;
  const status = document.getElementById("log-status");
  const source = new EventSource(pre.dataset.stream);
  let count = 0;
  source.onmessage = (ev) => {
    const line = JSON.parse(ev.data);
    const span = document.createElement("span");
    span.className = "line " + line.s;
    span.title = line.t;
    span.textContent = line.x + "\n";
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.appendChild(span);
    count += 1;
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  };
  const finish = (text) => {
    source.close();
    status.textContent = text;
    pre.dataset.ended = "1";
  };
  source.addEventListener("end", (ev) => {
    const state = JSON.parse(ev.data);
    finish(`ended: ${state} (${count} lines)`);
    document.getElementById("exp-state").textContent = state;
    // a page opened while it ran: show its end state, artifacts and metrics
    if (pre.dataset.active === "1") setTimeout(() => window.location.reload(), 500);
  });
  source.addEventListener("fail", (ev) => finish(`cannot read the output: ${JSON.parse(ev.data)}`));
  source.onerror = () => { if (pre.dataset.ended !== "1") finish("disconnected from runner ui"); };
}

function followState() {
  const el = document.getElementById("exp-state");
  const pre = document.getElementById("log");
  if (!el || !pre || pre.dataset.active !== "1") return;
  const tick = async () => {
    try {
      const r = await fetch(pre.dataset.stream.replace(/\/log$/, "/state"));
      if (r.ok) {
        const doc = await r.json();
        el.textContent = doc.state;
        el.className = "state " + doc.state;
        if (!doc.active) return;
      }
    } catch (e) { /* try again */ }
    setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, 500);
}

function loadPlotly() {
  return new Promise((resolve, reject) => {
    if (window.Plotly) return resolve(window.Plotly);
    const s = document.createElement("script");
    s.src = "/static/plotly.min.js"; // from the plotly package, served by runner ui
    s.onload = () => resolve(window.Plotly);
    s.onerror = reject;
    document.head.appendChild(s);
  });
}

// plotly.js reads a few HTML-like tags in names: give it entities, so a name is only ever text
const asText = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

async function drawMetrics() {
  const box = document.getElementById("metrics");
  if (!box) return;
  let doc;
  try {
    const r = await fetch(box.dataset.url);
    doc = await r.json();
  } catch (e) {
    box.textContent = `cannot read metrics: ${e}`;
    return;
  }
  box.replaceChildren();
  if (!doc.metrics.length) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = "no metrics found (read: *.csv with a header, *.jsonl, TensorBoard event files among the artifacts)";
    box.appendChild(p);
    return;
  }
  const Plotly = await loadPlotly();
  doc.metrics.forEach((m, i) => {
    const div = document.createElement("div");
    div.className = "plot";
    div.id = `metric-${i}`;
    div.dataset.metric = m.name;
    box.appendChild(div);
    // a big sweep: plain lines and no legend (a legend of hundreds of names costs seconds); hover names them
    const many = m.series.length > 20;
    const traces = m.series.map((s) => ({ x: s.x, y: s.y, name: asText(s.experiment), type: "scatter",
      mode: many ? "lines" : "lines+markers", line: many ? { width: 1 } : undefined }));
    Plotly.newPlot(div, traces, {
      title: { text: asText(m.name) }, height: 320, margin: { t: 40, r: 20, b: 40, l: 60 },
      xaxis: { title: { text: asText(m.x_label) } }, showlegend: m.series.length > 1 && !many,
      hovermode: "closest",
    }, { responsive: true, displaylogo: false });
  });
  box.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", () => {
  pollTables();
  stopButtons();
  followLog();
  followState();
  drawMetrics();
});
