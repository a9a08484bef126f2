// The dashboard's script (plain browser JavaScript, served as is by the Worker): polls
// <base>/data?window=..., fills the tables and draws the charts with uPlot (global `uPlot`), and sends
// the split form with its CSRF token. A 401 (the session ended) reloads the page, which then shows the
// sign-in form.
"use strict";
(() => {
  const body = document.body;
  const base = body.dataset.base;
  const windowName = body.dataset.window;
  const pollMs = Number(body.dataset.pollMs) || 5000;
  const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  const charts = new Map();

  const field = (name) => document.querySelector(`[data-field="${name}"]`);
  const fmt = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
  const label = (s) => `${s.arm ? `${s.arm} ` : ""}${s.model}${s.version ? ` (${s.version})` : ""}`;

  function cell(tr, text, name) {
    const td = document.createElement("td");
    td.textContent = text;
    if (name) td.dataset.field = name;
    tr.appendChild(td);
  }

  /** A table's one row when it has nothing to show, across all its columns. */
  function emptyRow(tbody, text) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = tbody.closest("table").querySelectorAll("thead th").length;
    td.className = "muted";
    td.textContent = text;
    tr.appendChild(td);
    tbody.appendChild(tr);
  }

  function fillRows(data) {
    const tbody = document.getElementById("arm-rows");
    tbody.replaceChildren();
    for (const r of data.report.rows) {
      const tr = document.createElement("tr");
      tr.dataset.arm = r.arm;
      tr.dataset.model = r.model;
      tr.dataset.version = r.version ?? "";
      tr.dataset.reason = r.reason;
      cell(tr, r.arm, "arm");
      cell(tr, r.model, "model");
      cell(tr, r.version ?? "–", "version");
      cell(tr, r.reason, "reason");
      cell(tr, String(r.count), "count");
      cell(tr, String(r.served), "served");
      cell(tr, String(r.errors), "errors");
      cell(tr, pct(r.errorRate), "errorRate");
      cell(tr, fmt(r.latencyMs.p50), "p50");
      cell(tr, fmt(r.latencyMs.p95), "p95");
      cell(tr, fmt(r.latencyMs.p99), "p99");
      if (r.agreementInterval) {
        cell(tr, `${pct(r.agreement.top1)} (${pct(r.agreementInterval.low)}–${pct(r.agreementInterval.high)})`, "agreement");
      } else {
        cell(tr, "–", "agreement");
      }
      cell(tr, r.agreement ? String(r.agreement.pairs) : "–", "pairs");
      tbody.appendChild(tr);
    }
    if (tbody.children.length === 0) emptyRow(tbody, "No measurements in this window yet.");
    field("requests").textContent = String(data.report.requests);
    field("fallbacks").textContent = String(data.report.fallbacks);
    field("window").textContent = `${new Date(data.report.since).toLocaleString()} to ${new Date(data.report.until).toLocaleString()}`;
  }

  function fillFaults(data) {
    const tbody = document.getElementById("fault-rows");
    tbody.replaceChildren();
    for (const r of data.report.rows) {
      if (r.arm !== "teacher") continue;
      for (const [fault, n] of Object.entries(r.faults)) {
        const tr = document.createElement("tr");
        tr.dataset.fault = fault;
        cell(tr, r.model);
        cell(tr, r.version ?? "–");
        cell(tr, r.reason);
        cell(tr, fault);
        cell(tr, String(n), "faultCount");
        tbody.appendChild(tr);
      }
    }
    if (tbody.children.length === 0) emptyRow(tbody, "No teacher faults in this window.");
  }

  const usd = (v) => (v === null || v === undefined ? "–" : `$${v.toPrecision(3)}`);
  const COST_ROWS = [
    ["student", "student"],
    ["teacher", "teacher"],
    ["split", "current split"],
    ["window", "this window, as run"],
  ];

  /** Cost per 1,000 requests: each arm, the split and the window, with what they are priced on. */
  function fillCost(cost) {
    const tbody = document.getElementById("cost-rows");
    tbody.replaceChildren();
    for (const [key, name] of COST_ROWS) {
      const c = cost.perThousandRequests[key];
      const tr = document.createElement("tr");
      tr.dataset.cost = key;
      cell(tr, key === "split" ? `${name} (${cost.split.studentPercent}% student, ${cost.split.shadowPercent}% shadow)` : name);
      cell(tr, c ? usd(c.total) : key === "window" ? "no requests" : "no student run to price", "costTotal");
      cell(tr, usd(c?.workersRequests), "costRequests");
      cell(tr, usd(c?.workersCpu), "costCpu");
      cell(tr, usd(c?.teacherGpu), "costGpu");
      tbody.appendChild(tr);
    }
    const p = cost.prices;
    const studentMs = cost.studentMsPerRun === null ? "no student run in this window" : `${fmt(cost.studentMsPerRun, 2)} ms in the Worker a student run`;
    field("costBasis").textContent =
      `Workers $${p.workersUsdPerMillionRequests} per million requests and $${p.workersUsdPerMillionCpuMs} per million CPU-ms; ` +
      `teacher $${p.teacherUsdPerGpuHour} per GPU-hour at ${p.teacherRequestsPerGpuSecond} requests a second per GPU ` +
      `(${fmt(cost.teacherGpuSecondsPerRun * 1000, 2)} GPU-ms a request); ${studentMs}.`;
  }

  function fillRouting(data) {
    const { settings, overridden } = data.routing;
    field("studentPercent").textContent = String(settings.studentPercent);
    field("shadowPercent").textContent = String(settings.shadowPercent);
    field("overridden").textContent = overridden.length ? `(set at run time: ${overridden.join(", ")})` : "(the Worker's defaults)";
    const form = document.getElementById("split-form");
    // Never overwrite what someone is typing.
    for (const name of ["studentPercent", "shadowPercent"]) {
      const input = form.elements[name];
      input.dataset.current = String(settings[name]);
      if (!form.contains(document.activeElement)) input.value = settings[name];
    }
  }

  /** x: every interval start in the window, in seconds (uPlot's time unit). */
  function intervals(series) {
    const first = Math.floor(series.since / series.intervalMs) * series.intervalMs;
    const xs = [];
    for (let t = first; t < series.until; t += series.intervalMs) xs.push(t);
    return xs;
  }

  function column(xs, points, value) {
    const at = new Map(points.map((p) => [p.t, p]));
    return xs.map((t) => (at.has(t) ? value(at.get(t)) : null));
  }

  function draw(id, options, data) {
    const el = document.getElementById(id);
    charts.get(id)?.destroy();
    el.replaceChildren();
    const width = Math.max(320, el.clientWidth || 560);
    const chart = new uPlot({ width, height: 220, legend: { live: false }, ...options }, data, el);
    charts.set(id, chart);
  }

  const colour = (i) => COLOURS[i % COLOURS.length];

  function drawVolume(series) {
    const xs = intervals(series);
    const data = [xs.map((t) => t / 1000)];
    const lines = [{}];
    series.runs.forEach((s, i) => {
      data.push(column(xs, s.points, (p) => p.count));
      lines.push({ label: `${label(s)} runs`, stroke: colour(i), width: 2, spanGaps: false });
      data.push(column(xs, s.points, (p) => p.errors));
      lines.push({ label: `${label(s)} errors`, stroke: colour(i), dash: [4, 4], width: 1 });
    });
    draw("chart-volume", { series: lines, axes: [{}, { label: "runs" }] }, data);
  }

  function drawLatency(series) {
    const xs = intervals(series);
    const data = [xs.map((t) => t / 1000)];
    const lines = [{}];
    series.runs.forEach((s, i) => {
      for (const [q, dash] of [["p50", undefined], ["p95", [6, 3]], ["p99", [2, 3]]]) {
        data.push(column(xs, s.points, (p) => p[q]));
        lines.push({ label: `${label(s)} ${q}`, stroke: colour(i), width: q === "p50" ? 2 : 1, dash, points: { show: true, size: 4 } });
      }
    });
    draw("chart-latency", { series: lines, axes: [{}, { label: "ms" }] }, data);
  }

  function drawCdf(series) {
    if (series.latencyCdf.length === 0) return draw("chart-cdf", { series: [{}], scales: { x: { time: false } } }, [[]]);
    const joined = uPlot.join(series.latencyCdf.map((s) => [s.points.map((p) => p[0]), s.points.map((p) => p[1])]));
    draw(
      "chart-cdf",
      {
        scales: { x: { time: false, distr: 3 }, y: { range: [0, 1] } },
        series: [{ label: "ms" }, ...series.latencyCdf.map((s, i) => ({ label: `${label(s)} (${s.runs})`, stroke: colour(i), width: 2, spanGaps: true, paths: uPlot.paths.stepped({ align: 1 }) }))],
        axes: [{ label: "ms" }, { label: "share", values: (u, ticks) => ticks.map((v) => `${Math.round(v * 100)}%`) }],
      },
      joined,
    );
  }

  function drawAgreement(series) {
    const xs = intervals(series);
    const data = [xs.map((t) => t / 1000)];
    const lines = [{}];
    const bands = [];
    series.agreement.forEach((a, i) => {
      const at = data.length;
      data.push(column(xs, a.points, (p) => p.top1));
      lines.push({ label: `${label(a)} top-1`, stroke: colour(i), width: 2, points: { show: true, size: 5 } });
      data.push(column(xs, a.points, (p) => p.high));
      lines.push({ label: "CI high", stroke: colour(i), width: 0.5, dash: [2, 2] });
      data.push(column(xs, a.points, (p) => p.low));
      lines.push({ label: "CI low", stroke: colour(i), width: 0.5, dash: [2, 2] });
      bands.push({ series: [at + 1, at + 2], fill: `${colour(i)}33` });
    });
    draw("chart-agreement", { series: lines, bands, scales: { y: { range: [0, 1] } }, axes: [{}, { label: "agreement", values: (u, ticks) => ticks.map((v) => `${Math.round(v * 100)}%`) }] }, data);
  }

  const time = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

  function fillCanary(canary) {
    const step = canary.settings.steps.indexOf(canary.percent);
    const at = canary.status === "off" ? "" : ` ${canary.model} (${canary.version}) at ${canary.percent}%${step >= 0 ? `, step ${step + 1} of ${canary.settings.steps.length}` : ""}, since ${new Date(canary.stepStartedAt).toLocaleString()}`;
    field("canaryState").textContent = `${canary.status.replace("_", " ")}${at}`;
    const s = canary.settings;
    field("canarySettings").textContent =
      `Steps ${s.steps.join(", ")}%; holds while agreement ≥ ${pct(s.minAgreement)}, p99 ≤ ${s.maxP99Ms} ms, errors ≤ ${pct(s.maxErrorRate)}, ` +
      `teacher faults ≤ ${pct(s.maxTeacherFaultRate)} over ${s.windowMinutes} min with at least ${s.minSamples} samples` +
      (canary.overridden.length ? ` (set at run time: ${canary.overridden.join(", ")})` : "");
    for (const form of document.querySelectorAll("#canary form[data-when]")) form.hidden = form.dataset.when !== canary.status;
    const tbody = document.getElementById("canary-rows");
    tbody.replaceChildren();
    for (const d of canary.decisions) {
      const tr = document.createElement("tr");
      tr.dataset.action = d.action;
      const f = d.figures;
      // A step's holds share one row: its first and latest tick, and how many.
      cell(tr, d.firstAt ? `${time(d.firstAt)} – ${time(d.at)}` : time(d.at));
      cell(tr, d.actor);
      cell(tr, d.repeats > 1 ? `${d.action} ×${d.repeats}` : d.action, "canaryAction");
      cell(tr, d.percentFrom === d.percentTo ? String(d.percentTo) : `${d.percentFrom} → ${d.percentTo}`);
      cell(tr, f ? pct(f.agreement) : "–");
      cell(tr, f ? fmt(f.p99Ms) : "–");
      cell(tr, f ? pct(f.errorRate) : "–");
      cell(tr, f ? String(f.pairs) : "–");
      cell(tr, d.reason);
      tbody.appendChild(tr);
    }
    if (tbody.children.length === 0) emptyRow(tbody, "No decisions yet: start the canary with POST /v1/canary/start (docs/ab-testing.md).");
  }

  async function poll() {
    let response;
    try {
      response = await fetch(`${base}/data?window=${encodeURIComponent(windowName)}`, { credentials: "same-origin", cache: "no-store" });
    } catch (err) {
      field("status").textContent = `offline (${err.message}); retrying`;
      return;
    }
    if (response.status === 401) return location.reload();
    if (!response.ok) {
      field("status").textContent = `error ${response.status}: ${(await response.json().catch(() => ({}))).error ?? ""}`;
      return;
    }
    const data = await response.json();
    fillRows(data);
    fillFaults(data);
    fillRouting(data);
    fillCost(data.report.cost);
    fillCanary(data.canary);
    drawVolume(data.series);
    drawLatency(data.series);
    drawCdf(data.series);
    drawAgreement(data.series);
    field("status").textContent = `updated ${new Date().toLocaleTimeString()}, every ${pollMs / 1000} s`;
    body.dataset.updated = String(Date.now());
  }

  // The page's forms post with fetch, so that an error is shown beside the form rather than as a JSON
  // page; the browser still sends its Origin, and the form still carries the CSRF token.
  for (const form of document.querySelectorAll("form.action-form")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = field(form.dataset.error);
      error.textContent = "";
      // Only what was changed is sent: an unchanged studentPercent would be refused while the canary
      // runs (it owns the split then), even beside a change of the shadow share.
      const body = new URLSearchParams();
      for (const [name, value] of new FormData(form)) {
        if (form.elements[name]?.dataset?.current !== value) body.append(name, value);
      }
      const response = await fetch(form.action, { method: "POST", body, credentials: "same-origin" });
      if (response.status === 401) return location.reload();
      if (!response.ok) {
        error.textContent = (await response.json().catch(() => ({}))).error ?? `error ${response.status}`;
        return;
      }
      form.querySelector("button").blur();
      await poll();
    });
  }

  void poll();
  setInterval(poll, pollMs);
})();
