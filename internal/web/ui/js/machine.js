// The machine page: host info, a range picker and the sections' charts.
// Live mode loads the last 5 minutes and appends each metrics event; other
// ranges ask the history API (which picks the storage tier) for about one
// point per pixel, and draw min–max bands where the hub sends them.
import { h, setText, labelText, visible } from "./dom.js";
import * as fmt from "./format.js";
import { showStatus } from "./live.js";
import { Chart } from "./chart.js";
import { SECTIONS } from "./sections/index.js";
import { me, api } from "./session.js";
import { chartQuery, exploreURL } from "./promql.js";

const LIVE_S = 300; // live window, s
const RANGES = [
  ["live", "Live", LIVE_S], ["15m", "15 m", 900], ["1h", "1 h", 3600], ["6h", "6 h", 21600],
  ["24h", "24 h", 86400], ["7d", "7 d", 604800], ["30d", "30 d", 2592000], ["custom", "Custom", 0],
];

let id, machine, charts = [], sectionEls = [], range, gen = 0, els = {}, zoomStack = [], isAdmin = false;

export async function start(main, machineId) {
  id = machineId;
  document.title = visible(id) + " — sysmonstm";
  let res;
  try {
    res = await fetch("/api/machines/" + encodeURIComponent(id));
  } catch (err) {
    main.replaceChildren(h("p", { class: "error", text: "Could not reach the hub: " + err.message }));
    return;
  }
  if (res.status === 404) {
    main.replaceChildren(h("p", {}, h("a", { href: "/", class: "back", text: "← All machines" })),
      h("p", { class: "error" }, "Unknown machine: ", h("code", { text: id })));
    return;
  }
  machine = await res.json();
  main.replaceChildren(buildHeader(), (els.alerts = h("section", { class: "al-strip", id: "machine-alerts", hidden: true, attrs: { "aria-label": "Firing alerts" } })),
    buildInfo(), buildRangeBar(), (els.sections = h("div", { class: "sections" })));
  range = readURL();
  buildSections();
  // The feed worker parses the WebSocket (its snapshot holds every machine).
  const feed = new Worker("/ui/js/feed.worker.js");
  feed.postMessage({ mode: "machine", id });
  feed.onmessage = (e) => onMessage(e.data);
  window.addEventListener("sysmonstm-theme", () => { for (const c of charts) c.build(); });
  setInterval(updateAges, 1000);
  load();
  loadAlerts();
}

// --- firing alerts ----------------------------------------------------------------

const firing = new Map(); // alert id → alert, this machine's firing alerts

async function loadAlerts() {
  try {
    const res = await fetch("/api/alerts?state=firing&machine=" + encodeURIComponent(id));
    if (!res.ok) return; // alerting off, or login needed: no strip
    const list = await res.json();
    firing.clear();
    for (const a of Array.isArray(list) ? list : []) if (a.machine === id && a.state === "firing") firing.set(String(a.id), a);
  } catch {
    return;
  }
  renderAlerts();
}

function onAlert(a) {
  if (!a || a.id == null) return;
  window.dispatchEvent(new CustomEvent("sysmonstm-alert", { detail: a })); // the header badge
  if (a.machine !== id) return;
  if (a.state === "firing") firing.set(String(a.id), a);
  else firing.delete(String(a.id));
  renderAlerts();
}

// renderAlerts shows the strip of this machine's firing alerts, critical
// first; each links to the alerts page.
function renderAlerts() {
  const list = [...firing.values()].sort((a, b) => (a.severity === "critical" ? 0 : 1) - (b.severity === "critical" ? 0 : 1) || (a.rule_name < b.rule_name ? -1 : 1));
  els.alerts.hidden = list.length === 0;
  els.alerts.classList.toggle("warn", !list.some((a) => a.severity === "critical"));
  const all = "/alerts?machine=" + encodeURIComponent(id);
  const num = (v) => (typeof v === "number" && isFinite(v) ? String(Math.round(v * 100) / 100) : "–");
  els.alerts.replaceChildren(
    h("h2", {}, "Firing alerts (" + list.length + ")", h("a", { href: all, text: "all alerts of this machine" })),
    h("ul", {}, ...list.map((a) => {
      const sev = a.severity === "critical" ? "critical" : "warning";
      const since = Date.parse(a.fired_at || a.started_at);
      return h("li", { dataset: { id: String(a.id) } },
        h("span", { class: "sev sev-" + sev, text: sev }),
        h("a", { href: all + "&rule=" + encodeURIComponent(a.rule_id || ""), text: a.rule_name || a.rule_id || "alert" }),
        labelText(a.labels) ? h("span", { class: "chip", text: labelText(a.labels) }) : null,
        h("span", { class: "muted", text: a.kind === "offline" ? "no data" : num(a.last_value != null ? a.last_value : a.value) + " " + (a.op || "") + " " + num(a.threshold) }),
        h("span", { class: "muted", text: since > 0 ? "since " + fmt.ago(since) : "", title: since > 0 ? fmt.time(since) : "" }),
        a.acknowledged ? h("span", { class: "muted", text: "acknowledged by " + ((a.ack && a.ack.by) || "?") }) : null);
    })));
}

// --- header and host info ---------------------------------------------------

function buildHeader() {
  els.state = h("span", { class: "state" });
  els.seen = h("span", { class: "muted" });
  const chips = Object.keys(machine.labels || {}).sort().map((k) => h("span", { class: "chip", text: k + "=" + machine.labels[k] }));
  const head = h("div", { class: "mhead" },
    h("a", { href: "/", class: "back", text: "← All machines" }),
    h("h1", { id: "machine-id", text: id }),
    machine.hostname && machine.hostname !== id ? h("span", { class: "muted", text: machine.hostname }) : null,
    els.state, els.seen, h("span", { class: "labels" }, ...chips), buildForget());
  updateState();
  me().then((m) => {
    isAdmin = !!(m && m.role === "admin" && !m.anonymous);
    updateState();
  }).catch(() => {});
  return head;
}

function updateState() {
  setText(els.state, machine.forgotten ? "forgotten" : machine.online ? "online" : "offline");
  els.state.className = "state " + (machine.online ? "online" : "offline");
  // Admins may forget an offline machine (DELETE /api/machines/{id}).
  els.forget.hidden = !isAdmin || machine.online || !!machine.forgotten;
  updateAges();
}

// buildForget is the admin's "Forget machine" button: a second click
// within 4 s confirms; the machine's stored history stays.
function buildForget() {
  let timer = 0;
  const label = "Forget machine";
  const b = h("button", { class: "btn danger", type: "button", id: "machine-forget", hidden: true, text: label,
    attrs: { title: "Remove this machine from the list and end its alerts; its stored history stays. It reappears if it sends data again." } });
  els.forgetError = h("span", { class: "error", role: "alert" });
  b.addEventListener("click", async () => {
    if (!b.classList.contains("armed")) {
      b.classList.add("armed");
      b.textContent = "Really forget?";
      timer = setTimeout(() => { b.classList.remove("armed"); b.textContent = label; }, 4000);
      return;
    }
    clearTimeout(timer);
    b.disabled = true;
    try {
      await api("DELETE", "/api/machines/" + encodeURIComponent(id));
      location.assign("/");
    } catch (err) {
      setText(els.forgetError, "Could not forget the machine: " + err.message);
    } finally {
      b.disabled = false;
      b.classList.remove("armed");
      b.textContent = label;
    }
  });
  els.forget = b;
  return h("span", {}, b, " ", els.forgetError);
}

function updateAges() {
  const ls = machine.last_seen ? Date.parse(machine.last_seen) : 0;
  setText(els.seen, "last seen " + fmt.ago(ls));
  if (els.uptime && machine.info.boot_time) setText(els.uptime, fmt.duration((Date.now() - Date.parse(machine.info.boot_time)) / 1000));
}

function buildInfo() {
  const i = machine.info || {};
  const dl = h("dl", { class: "info" });
  const add = (k, v) => {
    if (v == null || v === "") return null;
    const dd = h("dd", { text: String(v) });
    dl.append(h("div", {}, h("dt", { text: k }), dd));
    return dd;
  };
  add("Hostname", machine.hostname);
  add("System", [i.platform, i.os].filter(Boolean).join(" · "));
  add("Kernel", i.kernel_version);
  add("Architecture", i.arch);
  add("CPU", [i.cpu_model, i.cpu_cores ? i.cpu_cores + " cores" : "", i.cpu_threads ? i.cpu_threads + " threads" : ""].filter(Boolean).join(", "));
  add("Memory", i.memory_total_bytes ? fmt.bytes(i.memory_total_bytes) : "");
  add("Booted", i.boot_time ? fmt.time(Date.parse(i.boot_time)) : "");
  els.uptime = i.boot_time ? add("Uptime", "") : null;
  add("Agent", i.agent_version);
  add("Interval", i.interval_ms ? i.interval_ms / 1000 + " s" : "");
  add("Labels", labelText(machine.labels) || "none");
  return dl;
}

// --- range picker -------------------------------------------------------------

function buildRangeBar() {
  els.rangeBtns = RANGES.map(([key, label]) => h("button", { type: "button", class: "btn", text: label, dataset: { range: key },
    on: { click: () => (key === "custom" ? showCustom() : setRange({ key })) } }));
  els.from = h("input", { type: "datetime-local", attrs: { "aria-label": "From", step: "1" } });
  els.to = h("input", { type: "datetime-local", attrs: { "aria-label": "To", step: "1" } });
  els.custom = h("form", { class: "custom", hidden: true, on: { submit: (e) => { e.preventDefault(); applyCustom(); } } },
    h("label", { class: "field" }, h("span", { text: "From" }), els.from),
    h("label", { class: "field" }, h("span", { text: "To" }), els.to),
    h("button", { type: "submit", class: "btn", text: "Apply" }));
  els.zoomOut = h("button", { type: "button", id: "zoom-out", class: "btn", text: "Zoom out", hidden: true, on: { click: zoomOut } });
  els.rangeInfo = h("span", { class: "rangeinfo", attrs: { "aria-live": "polite" } });
  const exp = (format) => h("a", { class: "btn", text: format.toUpperCase(), attrs: { download: "" }, dataset: { export: format },
    on: { click: (e) => { e.currentTarget.href = exportURL(format); } } });
  els.exportCSV = exp("csv");
  els.exportJSON = exp("json");
  return h("div", { class: "rangebar", attrs: { role: "toolbar", "aria-label": "Time range" } },
    ...els.rangeBtns, els.zoomOut, els.custom, h("span", { class: "sep" }), els.rangeInfo,
    h("span", { class: "muted", text: "Export" }), els.exportCSV, els.exportJSON);
}

function showCustom() {
  const [f, t] = bounds();
  els.from.value = localInput(f);
  els.to.value = localInput(t);
  els.custom.hidden = !els.custom.hidden;
  if (!els.custom.hidden) els.from.focus();
}

function applyCustom() {
  const f = Date.parse(els.from.value), t = Date.parse(els.to.value); // local time
  if (!(f < t)) {
    setText(els.rangeInfo, "custom range: From must be before To");
    return;
  }
  zoomStack = [];
  setRange({ key: "custom", from: f, to: t });
}

function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

function setRange(r, keepZoom) {
  if (!keepZoom) zoomStack = [];
  range = r;
  if (r.key !== "custom") els.custom.hidden = true;
  writeURL();
  load();
}

function onZoom(from, to) {
  if (to - from < 2000) return;
  // Synced charts each report the same selection: take it once.
  if (range.key === "custom" && Math.abs(range.from - from) < 1 && Math.abs(range.to - to) < 1) return;
  zoomStack.push(range);
  setRange({ key: "custom", from, to }, true);
}

function zoomOut() {
  const prev = zoomStack.pop();
  if (prev) setRange(prev, true);
}

// bounds: the current range in ms.
function bounds() {
  const now = Date.now();
  if (range.key === "custom") return [range.from, range.to];
  const r = RANGES.find((x) => x[0] === range.key) || RANGES[0];
  return [now - r[2] * 1000, now];
}

function exportURL(format) {
  const [f, t] = bounds();
  const p = new URLSearchParams({ machine: id, from: (f / 1000).toFixed(3), to: (t / 1000).toFixed(3), format });
  return "/api/export?" + p.toString();
}

// --- sections and data ----------------------------------------------------------

function context(m) {
  const metrics = m.metrics || [];
  const byName = new Map();
  for (const v of metrics) {
    if (!byName.has(v.name)) byName.set(v.name, []);
    byName.get(v.name).push(v);
  }
  const find = (name, match) => (byName.get(name) || []).find((v) => matches(v.labels, match));
  return {
    machine: m, metrics,
    has: (name) => byName.has(name),
    values: (name, label) => [...new Set((byName.get(name) || []).map((v) => v.labels[label]).filter((x) => x != null))].sort(),
    find,
    latest: (name) => { const v = find(name, {}); return v ? v.value : null; },
  };
}

function matches(labels, match) {
  for (const k in match) if (!labels || labels[k] !== match[k]) return false;
  return true;
}

function buildSections() {
  const ctx = context(machine);
  for (const c of charts) c.destroy();
  charts = [];
  sectionEls = [];
  const opts = { xRange: xRange, onZoom, explore: true };
  const nodes = [];
  for (const s of SECTIONS) {
    const specs = s.charts ? s.charts(ctx) : [];
    const custom = s.render ? h("div", { class: "custom-section" }) : null;
    if (!specs.length && !custom) continue;
    const grid = h("div", { class: "charts" });
    for (const spec of specs) {
      const c = new Chart(spec, opts);
      charts.push(c);
      grid.append(c.el);
    }
    const el = h("section", { class: "section", dataset: { section: s.id } }, h("h2", { text: s.title }), custom, specs.length ? grid : null);
    if (custom) sectionEls.push({ s, el: custom });
    nodes.push(el);
  }
  els.sections.replaceChildren(...nodes);
  for (const c of charts) c.build();
  for (const { s, el } of sectionEls) s.render(el, ctx);
}

let liveX = null; // [from, to] s while live
function xRange() {
  if (range.key === "live") return liveX;
  const [f, t] = bounds();
  return [f / 1000, t / 1000];
}

// load fetches every metric the charts need for the range, once each.
async function load() {
  const my = ++gen;
  for (const b of els.rangeBtns) {
    const on = b.dataset.range === range.key;
    b.classList.toggle("on", on);
    b.setAttribute("aria-pressed", on ? "true" : "false");
  }
  els.zoomOut.hidden = zoomStack.length === 0;
  const [f, t] = bounds();
  const span = (t - f) / 1000;
  const interval = (machine.info && machine.info.interval_ms ? machine.info.interval_ms : 1000) / 1000;
  const width = charts.length ? charts[0].width() - 80 : 600;
  const step = range.key === "live" ? interval : Math.max(interval, Math.ceil(span / Math.max(200, width)));
  const metrics = [...new Set(charts.flatMap((c) => c.spec.lines.map((l) => l.metric)))];
  els.sections.classList.add("loading");
  setText(els.rangeInfo, "loading…");
  const t0 = performance.now();
  const results = new Map();
  let tier = "", failed = "";
  await Promise.all(metrics.map(async (name) => {
    const p = new URLSearchParams({ metric: name, from: (f / 1000).toFixed(3), to: (t / 1000).toFixed(3), step: step + "s" });
    try {
      const res = await fetch("/api/machines/" + encodeURIComponent(id) + "/history?" + p);
      const body = await res.json();
      if (!res.ok) throw new Error(body.error || "HTTP " + res.status);
      results.set(name, body);
      tier = body.tier || tier;
    } catch (err) {
      failed = name + ": " + err.message;
    }
  }));
  if (my !== gen) return; // a newer range won
  liveX = range.key === "live" ? [f / 1000, t / 1000] : null;
  // Explore shows a chart's series over its range: the relative one, or
  // the custom one's bounds.
  const exploreRange = range.key === "live" ? { key: "5m" } : range.key === "custom" ? { from: f, to: t } : { key: range.key };
  for (const c of charts) {
    const d = chartData(c.spec, results);
    c.setData(d.xs, d.ys, d.bands);
    c.setExplore(exploreURL(chartQuery(id, c.spec.lines), exploreRange));
  }
  els.sections.classList.remove("loading");
  const ms = Math.round(performance.now() - t0);
  setText(els.rangeInfo, failed ? "error: " + failed
    : (range.key === "live" ? "live, last 5 min" : fmt.time(f) + " – " + fmt.time(t)) + " · " + (tier ? tier + " tier, " : "") + "step " + step + " s · " + ms + " ms");
  els.rangeInfo.classList.toggle("error", !!failed);
  document.documentElement.dataset.loadedMs = String(Math.round(performance.now())); // since navigation, for benchmarks
  document.documentElement.dataset.loaded = range.key + ":" + my;
}

// chartData aligns the chart's lines on the union of their timestamps.
function chartData(spec, results) {
  const found = spec.lines.map((l) => {
    const r = results.get(l.metric);
    return r && r.series ? r.series.find((s) => matches(s.labels, l.match)) : null;
  });
  let xsMs;
  const first = found.find((s) => s);
  if (!first) xsMs = [];
  else if (found.every((s) => !s || s.points === first.points || sameTimes(s.points, first.points))) xsMs = first.points.map((p) => p[0]);
  else {
    const set = new Set();
    for (const s of found) if (s) for (const p of s.points) set.add(p[0]);
    xsMs = [...set].sort((a, b) => a - b);
  }
  const idx = new Map(xsMs.map((x, i) => [x, i]));
  const col = (pts) => {
    const arr = new Array(xsMs.length).fill(null);
    if (pts) for (const p of pts) { const i = idx.get(p[0]); if (i !== undefined) arr[i] = p[1]; }
    return arr;
  };
  const ys = found.map((s) => col(s && s.points));
  const bands = [];
  if (!spec.noBand) {
    found.forEach((s, i) => {
      if (s && s.min && s.max && !spec.lines[i].dash) bands.push({ i, min: col(s.min), max: col(s.max) });
    });
  }
  return { xs: xsMs.map((x) => x / 1000), ys, bands };
}

function sameTimes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i][0] !== b[i][0]) return false;
  return true;
}

// --- live ---------------------------------------------------------------------

function onMessage(msg) {
  if (msg.type === "status") {
    showStatus(msg.state, msg.text);
    return;
  }
  if (msg.type === "snapshot") {
    loadAlerts(); // (re)connected: what changed while the socket was down
    const m = msg.machine;
    if (m) {
      Object.assign(machine, m);
      updateState();
    }
    return;
  }
  if (msg.type === "machine" && msg.machine && msg.machine.id === id) {
    Object.assign(machine, msg.machine);
    machine.forgotten = !!msg.forgotten;
    if (!machine.online) machine.processes = []; // the hub drops the list
    updateState();
    onProcesses();
    return;
  }
  if (msg.type === "alert") {
    onAlert(msg.alert);
    return;
  }
  if (msg.type === "processes" && msg.machine === id) {
    machine.processes = msg.processes || [];
    machine.processes_ts = msg.ts;
    onProcesses();
    return;
  }
  if (msg.type !== "metrics" || msg.machine !== id) return;
  machine.last_seen = new Date().toISOString();
  if (!machine.online) {
    machine.online = true;
    updateState();
  }
  const byName = new Map();
  for (const v of msg.metrics) {
    if (!byName.has(v.name)) byName.set(v.name, []);
    byName.get(v.name).push(v);
  }
  if (sectionEls.length) {
    const ctx = context({ ...machine, metrics: msg.metrics });
    for (const { s, el } of sectionEls) s.render(el, ctx);
  }
  if (range.key !== "live" || !liveX) return;
  const x = msg.ts / 1000;
  const now = Date.now() / 1000;
  liveX = [Math.max(now, x) - LIVE_S, Math.max(now, x)];
  for (const c of charts) {
    const vals = c.spec.lines.map((l) => {
      const v = (byName.get(l.metric) || []).find((m) => matches(m.labels, l.match));
      return v ? v.value : null;
    });
    c.append(x, vals, liveX[0]);
  }
}

// onProcesses tells the sections that show the top-process list.
function onProcesses() {
  for (const { s, el } of sectionEls) if (s.onProcesses) s.onProcesses(el, machine);
}

// --- URL state ---------------------------------------------------------------------

function readURL() {
  const p = new URLSearchParams(location.search);
  const key = p.get("range");
  if (key === "custom" && Number(p.get("from")) < Number(p.get("to"))) return { key, from: Number(p.get("from")), to: Number(p.get("to")) };
  if (RANGES.some((r) => r[0] === key && key !== "custom")) return { key };
  return { key: "live" };
}

function writeURL() {
  const p = new URLSearchParams();
  if (range.key !== "live") p.set("range", range.key);
  if (range.key === "custom") {
    p.set("from", String(Math.round(range.from)));
    p.set("to", String(Math.round(range.to)));
  }
  const s = p.toString();
  history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
}
