// The overview: every machine as one row, live over /ws. Only the rows in
// view exist in the DOM (a virtual list over window scroll); each animation
// frame updates the cells of rows whose machine changed, so a thousand
// machines reporting every second cost a few dozen cell writes per frame.
import { h, setText, setClass, machineURL, visible } from "./dom.js";
import * as fmt from "./format.js";
import { showStatus } from "./live.js";
import { Machine, HEALTH_ORDER, HEALTH_HELP, SPARK, matcher, isState } from "./machines.js";
import { drawSpark } from "./spark.js";

const machines = new Map(); // id → Machine
const alerts = new Map(); // alert id → alert object (firing only)
let alertsKnown = false; // the hub answered /api/alerts

const state = { q: "", status: "all", sort: "status", dir: 1, group: "" };
const collapsed = new Set(); // group keys
let view = []; // Machine or {group, key, n, down}
let viewDirty = true; // rebuild view next frame
let valuesMoved = false; // a value the sort or filter uses changed
let frame = 0;
let els;

// stats: the longest feed batch and render, ms (read by the benchmarks).
const stats = {
  feedMax: 0, renderMax: 0, batches: 0, frames: 0,
  feed(ms) { this.batches++; if (ms > this.feedMax) this.feedMax = ms; },
  render(ms) { this.frames++; if (ms > this.renderMax) this.renderMax = ms; },
};
window.sysmonstmStats = stats;

const COLUMNS = [
  ["status", "", "c-status"], ["name", "Machine", "c-name"], ["cpu", "CPU", "c-cpu"],
  ["mem", "Memory", "c-mem"], ["disk", "Disk", "c-disk"], ["load", "Load", "c-load"],
  ["net", "Net in / out", "c-net"], [null, "CPU, 5 min", "c-spark"], ["seen", "Last seen", "c-seen"],
];

export function start(main) {
  document.title = "sysmonstm — machines";
  readURL();
  main.replaceChildren(build());
  // The feed runs in a worker: parsing a thousand machines' JSON every
  // second would otherwise block this thread.
  const feed = new Worker("/ui/js/feed.worker.js");
  feed.postMessage({ mode: "overview" });
  feed.onmessage = (e) => {
    const t0 = performance.now();
    onFeed(e.data);
    stats.feed(performance.now() - t0);
  };
  loadAlerts();
  window.addEventListener("scroll", schedule, { passive: true });
  window.addEventListener("resize", () => { measure(); schedule(); });
  window.addEventListener("sysmonstm-theme", () => { for (const r of els.shown.values()) { r._ver = -1; r._sparkV = -1; } schedule(); });
  document.addEventListener("keydown", onKey);
  setInterval(tick, 1000);
  measure();
}

function build() {
  const count = (key, label, help) => {
    const v = h("span", { class: "num", text: "0" });
    const b = h("button", { class: "count", type: "button", title: help, dataset: { count: key }, on: { click: () => setStatus(key) } }, v, h("span", { class: "lbl", text: label }));
    return [b, v];
  };
  const [cAll, nAll] = count("all", "machines");
  const [cOn, nOn] = count("online", "online");
  const [cOff, nOff] = count("offline", "offline");
  const [cCrit, nCrit] = count("crit", "critical", HEALTH_HELP.crit);
  const [cWarn, nWarn] = count("warn", "warning", HEALTH_HELP.warn);
  const [cAl, nAl] = count("alert", "firing alerts", HEALTH_HELP.alert);
  // Shown while thresholds alone make machines critical or warning, so the
  // health counts next to "0 firing alerts" explain themselves.
  const note = h("p", { class: "counts-note muted", id: "health-note", hidden: true });

  const q = h("input", {
    type: "search", id: "search", placeholder: "Search: name, label=value, is:offline …  (press /)", value: state.q,
    attrs: { "aria-label": "Search machines", autocomplete: "off" },
    on: { input: () => { state.q = q.value; changed(); }, keydown: onSearchKey },
  });
  const status = select("status", "Status", [["all", "All"], ["online", "Online"], ["offline", "Offline"], ["problem", "Problems"], ["crit", "Critical"], ["warn", "Warning"], ["alert", "Firing alerts"]], state.status, (v) => { state.status = v; changed(); });
  const sort = select("sort", "Sort", [["status", "Health"], ["name", "Name"], ["cpu", "CPU"], ["mem", "Memory"], ["disk", "Disk"], ["load", "Load"], ["net", "Network"], ["seen", "Last seen"]], state.sort, (v) => { state.sort = v; state.dir = defaultDir(v); changed(); });
  const group = select("group", "Group by", [["", "No grouping"]], state.group, (v) => { state.group = v; changed(); });

  const head = h("div", { class: "row head", attrs: { role: "row" } });
  for (const [key, label, cls] of COLUMNS) {
    const cell = h("span", { class: cls, attrs: { role: "columnheader" } });
    if (key && label) {
      cell.append(h("button", { type: "button", class: "sortbtn", text: label, dataset: { sort: key }, on: { click: () => sortBy(key) } }));
    } else cell.textContent = label;
    head.append(cell);
  }
  const spacer = h("div", { class: "vspace" });
  const list = h("div", { class: "vlist", attrs: { role: "rowgroup" } }, spacer);
  const empty = h("p", { class: "empty muted", hidden: true });
  const table = h("div", { class: "mtable", attrs: { role: "table", "aria-label": "Machines" } }, head, list);

  els = {
    nAll, nOn, nOff, nCrit, nWarn, nAl, cAl, note, q, status, sort, group, head, list, spacer, empty,
    shown: new Map(), freeRows: [], freeGroups: [], rowH: 48, top: 0,
  };
  return h("div", { class: "overview" },
    h("div", { class: "counts" }, cAll, cOn, cOff, cCrit, cWarn, cAl),
    note,
    h("div", { class: "toolbar" }, q, status.wrap, sort.wrap, group.wrap),
    table, empty);
}

function select(name, label, options, value, onChange) {
  const sel = h("select", { id: "f-" + name, on: { change: () => onChange(sel.value) } });
  for (const [v, t] of options) sel.append(h("option", { value: v, text: t }));
  sel.value = value;
  const wrap = h("label", { class: "field" }, h("span", { text: label }), sel);
  return { wrap, sel };
}

function defaultDir(key) {
  return key === "name" || key === "status" ? 1 : -1;
}

function sortBy(key) {
  if (state.sort === key) state.dir = -state.dir;
  else {
    state.sort = key;
    state.dir = defaultDir(key);
  }
  els.sort.sel.value = key;
  changed();
}

function setStatus(s) {
  state.status = s === state.status ? "all" : s;
  els.status.sel.value = state.status;
  changed();
}

function changed() {
  viewDirty = true;
  writeURL();
  schedule();
}

function onKey(e) {
  if (e.key === "/" && document.activeElement !== els.q && !/^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName)) {
    e.preventDefault();
    els.q.focus();
    els.q.select();
  }
}

function onSearchKey(e) {
  if (e.key === "Enter") {
    const first = view.find((it) => it instanceof Machine);
    if (first) location.href = machineURL(first.id);
  } else if (e.key === "Escape") {
    els.q.value = "";
    state.q = "";
    changed();
  }
}

// --- live data -------------------------------------------------------------

function onFeed(msg) {
  switch (msg.type) {
    case "status":
      showStatus(msg.state, msg.text);
      return;
    case "snapshot": {
      loadAlerts(); // (re)connected: alerts may have changed meanwhile
      const seen = new Set();
      for (const m of msg.machines) {
        const r = upsert(m);
        r.apply(m.v, m.v[0] !== null ? [m.v[0]] : null);
        seen.add(m.id);
      }
      for (const id of machines.keys()) if (!seen.has(id)) machines.delete(id);
      viewDirty = true;
      updateGroupOptions();
      break;
    }
    case "batch": {
      const now = Date.now();
      for (const [id, ts, v, cpu] of msg.ups) {
        let r = machines.get(id);
        if (!r) {
          r = new Machine(id);
          machines.set(id, r);
          viewDirty = true;
        }
        const before = r.health;
        r.lastSeen = now;
        r.ts = ts;
        if (!r.online) {
          r.online = true;
          viewDirty = true;
        }
        r.apply(v, cpu);
        if (r.health !== before || state.sort !== "name") valuesMoved = true;
      }
      let groups = false;
      for (const ev of msg.events) {
        if (ev.type === "machine" && ev.forgotten && ev.machine && ev.machine.id != null) {
          machines.delete(String(ev.machine.id)); // DELETE /api/machines/{id}
          viewDirty = true;
          groups = true;
        } else if (ev.type === "machine" && ev.machine && ev.machine.id != null) {
          upsert(ev.machine);
          viewDirty = true;
          groups = true;
        } else if (ev.type === "alert") {
          const a = ev.alert || ev;
          onAlert(a);
          window.dispatchEvent(new CustomEvent("sysmonstm-alert", { detail: a })); // the header badge
        }
      }
      if (groups) updateGroupOptions();
      break;
    }
  }
  schedule();
}

function upsert(m) {
  let r = machines.get(m.id);
  if (!r) {
    r = new Machine(String(m.id));
    machines.set(r.id, r);
  }
  r.setInfo(m);
  return r;
}

async function loadAlerts() {
  try {
    const res = await fetch("/api/alerts?state=firing");
    if (!res.ok) return;
    const list = await res.json();
    if (!Array.isArray(list)) return;
    alertsKnown = true;
    alerts.clear(); // the hub's list replaces what the events told
    for (const a of list) if (a && a.id != null && a.state === "firing") alerts.set(a.id, a);
    recountAlerts();
    window.dispatchEvent(new CustomEvent("sysmonstm-alerts", { detail: list })); // the header badge
  } catch {
    // alerting not available: counts show "–"
  }
}

function onAlert(a) {
  if (!a || a.id == null) return;
  alertsKnown = true;
  if (a.state === "firing") alerts.set(a.id, a);
  else alerts.delete(a.id);
  recountAlerts();
}

// recountAlerts updates each machine's firing-alert count and severity.
function recountAlerts() {
  const per = new Map(), crit = new Set();
  for (const x of alerts.values()) {
    per.set(x.machine, (per.get(x.machine) || 0) + 1);
    if (x.severity === "critical") crit.add(x.machine);
  }
  for (const r of machines.values()) {
    const n = per.get(r.id) || 0;
    const c = crit.has(r.id);
    if (n !== r.alerts || c !== !!r.alertsCrit) {
      r.alerts = n;
      r.alertsCrit = c; // the badge is amber while none is critical
      r.updateHealth();
      r.version++;
    }
  }
  viewDirty = true;
}

// --- view ------------------------------------------------------------------

function updateGroupOptions() {
  const keys = new Set();
  for (const r of machines.values()) for (const k in r.labels) keys.add(k);
  const sel = els.group.sel;
  const have = new Set([...sel.options].map((o) => o.value));
  for (const k of [...keys].sort()) {
    if (!have.has(k)) sel.append(h("option", { value: k, text: "Label: " + k }));
  }
  sel.value = state.group;
}

function sortValue(r, key) {
  switch (key) {
    case "cpu": return r.cpu;
    case "mem": return r.mem;
    case "disk": return r.disk;
    case "load": return r.load;
    case "net": return r.rx == null && r.tx == null ? null : (r.rx || 0) + (r.tx || 0);
    case "seen": return r.lastSeen;
  }
  return null;
}

function compare(a, b) {
  const key = state.sort, dir = state.dir;
  let c = 0;
  if (key === "status") c = dir * (HEALTH_ORDER[a.health] - HEALTH_ORDER[b.health]);
  else if (key !== "name") {
    const va = sortValue(a, key), vb = sortValue(b, key);
    if (va == null && vb != null) return 1; // unknown values last
    if (vb == null && va != null) return -1;
    if (va != null) c = dir * (va - vb);
  }
  if (c === 0) c = (key === "name" ? dir : 1) * (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return c;
}

function rebuild() {
  const match = matcher(state.q);
  const list = [];
  let on = 0, off = 0, crit = 0, warn = 0, byThreshold = 0;
  for (const r of machines.values()) {
    if (r.online) on++;
    else off++;
    if (r.health === "crit") crit++;
    else if (r.health === "warn") warn++;
    if ((r.health === "crit" || r.health === "warn") && r.alerts === 0) byThreshold++;
    if (isState(r, state.status) && match(r)) list.push(r);
  }
  list.sort(compare);
  if (state.group) {
    const groups = new Map();
    for (const r of list) {
      const k = Object.prototype.hasOwnProperty.call(r.labels, state.group) ? r.labels[state.group] : null;
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(r);
    }
    const keys = [...groups.keys()].sort((a, b) => (a === null) - (b === null) || (a < b ? -1 : a > b ? 1 : 0));
    view = [];
    for (const k of keys) {
      const ms = groups.get(k);
      const gkey = state.group + "\u0000" + k;
      view.push({ group: true, key: gkey, label: k === null ? "(no " + state.group + ")" : state.group + " = " + k, n: ms.length, down: ms.filter((m) => !m.online).length });
      if (!collapsed.has(gkey)) view.push(...ms);
    }
  } else view = list;

  setText(els.nAll, String(machines.size));
  setText(els.nOn, String(on));
  setText(els.nOff, String(off));
  setText(els.nCrit, String(crit));
  setText(els.nWarn, String(warn));
  setText(els.nAl, alertsKnown ? String(alerts.size) : "–");
  els.cAl.title = alertsKnown ? HEALTH_HELP.alert : "alerting is not enabled on this hub";
  els.note.hidden = byThreshold === 0;
  setText(els.note, (byThreshold === 1 ? "1 machine is" : byThreshold + " machines are") +
    " critical or warning by a CPU, memory or disk threshold, not by an alert rule; the status dot's tooltip says which.");
  for (const b of document.querySelectorAll(".count")) b.classList.toggle("active", b.dataset.count === state.status);
  for (const b of els.head.querySelectorAll(".sortbtn")) {
    const on = b.dataset.sort === state.sort;
    b.parentNode.setAttribute("aria-sort", on ? (state.dir > 0 ? "ascending" : "descending") : "none");
    b.classList.toggle("sorted", on);
    b.classList.toggle("desc", on && state.dir < 0);
  }
  els.empty.hidden = view.length > 0;
  els.empty.textContent = machines.size === 0 ? "No machines yet. Start an agent: sysmonstm agent --hub HOST:50051" : "No machine matches.";
  els.spacer.style.height = view.length * els.rowH + "px";
  // Rows whose index now holds another item are rebound by render().
}

function measure() {
  const v = parseFloat(getComputedStyle(els.list).getPropertyValue("--row-h"));
  if (v > 0 && v !== els.rowH) {
    els.rowH = v;
    viewDirty = true;
  }
}

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

// tick runs every second: ages, and re-sorting when live values moved.
function tick() {
  if (valuesMoved && (state.sort !== "name" || state.status !== "all" || /is:/.test(state.q))) viewDirty = true;
  valuesMoved = false;
  for (const el of els.shown.values()) el._ver = -1; // refresh "last seen"
  schedule();
}

function render() {
  const t0 = performance.now();
  renderFrame();
  stats.render(performance.now() - t0);
}

function renderFrame() {
  frame = 0;
  if (viewDirty) {
    viewDirty = false;
    rebuild();
  }
  // Read layout first, then write.
  const rect = els.list.getBoundingClientRect();
  const rowH = els.rowH;
  const over = 4;
  const a = Math.max(0, Math.floor(-rect.top / rowH) - over);
  const b = Math.min(view.length, Math.ceil((window.innerHeight - rect.top) / rowH) + over);
  for (const [i, el] of els.shown) {
    if (i < a || i >= b || el._item !== view[i]) {
      release(el);
      els.shown.delete(i);
    }
  }
  const now = Date.now();
  for (let i = a; i < b; i++) {
    const it = view[i];
    let el = els.shown.get(i);
    if (!el) {
      el = it instanceof Machine ? takeRow() : takeGroup();
      el._item = it;
      el._ver = -1;
      if (it instanceof Machine) bindRow(el, it);
      else bindGroup(el, it);
      el.hidden = false;
      els.shown.set(i, el);
    }
    if (el._y !== i * rowH) {
      el._y = i * rowH; // also after the row height changed (phone layout)
      el.style.transform = "translateY(" + el._y + "px)";
    }
    if (it instanceof Machine && el._ver !== it.version) {
      el._ver = it.version;
      updateRow(el, it, now);
    }
  }
}

function release(el) {
  el.hidden = true;
  el._item = null;
  (el._group ? els.freeGroups : els.freeRows).push(el);
}

// --- rows ------------------------------------------------------------------

function takeRow() {
  const el = els.freeRows.pop();
  if (el) return el;
  const c = (cls, ...kids) => h("span", { class: cls, attrs: { role: "cell" } }, ...kids);
  const bar = () => { const i = h("i"); return [h("span", { class: "bar" }, i), i]; };
  const row = h("a", { class: "row", attrs: { role: "row" } });
  row._dot = h("span", { class: "dot" });
  row._id = h("span", { class: "id" });
  row._host = h("span", { class: "host" });
  row._labels = h("span", { class: "labels" });
  row._alerts = h("span", { class: "badge alert", hidden: true });
  const metric = (key) => {
    const v = h("span", { class: "v" });
    const [b, fill] = bar();
    row["_" + key] = v;
    row["_" + key + "Bar"] = fill;
    return c("c-" + key, h("span", { class: "k", text: key === "mem" ? "mem" : key }), v, b);
  };
  row._load = h("span", { class: "v" });
  row._rx = h("span", { class: "rx" });
  row._tx = h("span", { class: "tx" });
  row._canvas = h("canvas", { width: 100, height: 28, attrs: { "aria-hidden": "true" } });
  row._seen = h("span", {});
  row.append(
    c("c-status", row._dot),
    c("c-name", h("span", { class: "nameline" }, row._id, row._alerts), row._host, row._labels),
    metric("cpu"), metric("mem"), metric("disk"),
    c("c-load", h("span", { class: "k", text: "load" }), row._load),
    c("c-net", row._rx, row._tx),
    c("c-spark", row._canvas),
    c("c-seen", row._seen),
  );
  els.list.append(row);
  return row;
}

function bindRow(el, r) {
  el.href = machineURL(r.id);
  setText(el._id, r.id);
  setText(el._host, r.hostname && r.hostname !== r.id ? r.hostname : "");
  const chips = [];
  for (const k of Object.keys(r.labels).sort()) chips.push(h("span", { class: "chip", text: k + "=" + r.labels[k] }));
  el._labels.replaceChildren(...chips);
  el.title = visible(r.id);
  delete el.dataset.ts;
  el.dataset.id = r.id;
  if (!r.sparkFilled) fillSpark(r);
}

function updateRow(el, r, now) {
  setClass(el, "row h-" + r.health);
  setClass(el._dot, "dot " + r.health);
  el._dot.title = r.online ? (r.health === "ok" ? "online" : (r.health === "warn" ? "online, warning: " : "online, critical: ") + r.why) : "offline";
  metricCell(el._cpu, el._cpuBar, r.cpu, fmt.pct(r.cpu));
  metricCell(el._mem, el._memBar, r.mem, fmt.pct(r.mem));
  metricCell(el._disk, el._diskBar, r.disk, fmt.pct(r.disk));
  el._disk.title = visible(r.diskMount);
  setText(el._load, fmt.num(r.load));
  if (r.ts && el.dataset.ts !== String(r.ts)) el.dataset.ts = r.ts; // batch time: tests see values move
  setText(el._rx, "↓ " + fmt.rate(r.rx));
  setText(el._tx, "↑ " + fmt.rate(r.tx));
  setText(el._seen, r.online ? fmt.ago(r.lastSeen, now) : "offline · " + fmt.ago(r.lastSeen, now));
  el._alerts.hidden = r.alerts === 0;
  if (r.alerts) {
    setText(el._alerts, r.alerts + (r.alerts === 1 ? " alert" : " alerts"));
    setClass(el._alerts, r.alertsCrit ? "badge alert" : "badge alert warn");
    el._alerts.title = r.alerts + " firing" + (r.alertsCrit ? ", critical" : "");
  }
  if (el._sparkN !== r.sparkN || el._sparkHead !== r.sparkHead || el._sparkV !== r.version) {
    el._sparkN = r.sparkN;
    el._sparkHead = r.sparkHead;
    el._sparkV = r.version;
    drawSpark(el._canvas, r.spark, r.sparkHead, r.sparkN, SPARK, r.online);
  }
}

function metricCell(v, bar, value, text) {
  setText(v, text);
  const w = value == null ? 0 : Math.max(0, Math.min(100, value));
  if (bar._w !== w) {
    bar._w = w;
    bar.style.width = w + "%";
  }
  const c = value == null ? "" : value >= 90 ? "crit" : value >= 75 ? "warn" : "ok";
  setClass(bar, c);
}

function takeGroup() {
  const el = els.freeGroups.pop();
  if (el) return el;
  const g = h("button", { type: "button", class: "row group", attrs: { role: "row" } });
  g._group = true;
  g._label = h("span", { class: "glabel" });
  g._count = h("span", { class: "gcount" });
  g.append(g._label, g._count);
  g.addEventListener("click", () => {
    const k = g._item && g._item.key;
    if (k == null) return;
    if (collapsed.has(k)) collapsed.delete(k);
    else collapsed.add(k);
    viewDirty = true;
    schedule();
  });
  els.list.append(g);
  return g;
}

function bindGroup(el, it) {
  setText(el._label, (collapsed.has(it.key) ? "▸ " : "▾ ") + it.label);
  setText(el._count, it.n + (it.n === 1 ? " machine" : " machines") + (it.down ? ", " + it.down + " offline" : ""));
  el.setAttribute("aria-expanded", collapsed.has(it.key) ? "false" : "true");
}

// fillSpark loads the last 5 minutes of CPU for a row shown for the first
// time, at most 4 requests at once.
let spFlight = 0;
const spQueue = [];
function fillSpark(r) {
  r.sparkFilled = true;
  spQueue.push(r);
  pumpSpark();
}
function pumpSpark() {
  while (spFlight < 4 && spQueue.length) {
    const r = spQueue.shift();
    spFlight++;
    const u = "/api/machines/" + encodeURIComponent(r.id) + "/history?metric=cpu_usage_percent&from=-5m&step=1s";
    fetch(u).then((res) => (res.ok ? res.json() : null)).then((d) => {
      const s = d && d.series && d.series.find((x) => x.labels && x.labels.cpu === "total");
      if (!s || !s.points.length) return;
      const firstLive = Date.now() - r.sparkN * 1000;
      r.fillSpark(s.points.filter((p) => p[0] < firstLive && p[1] != null).map((p) => p[1]));
      schedule();
    }).catch(() => {}).finally(() => {
      spFlight--;
      pumpSpark();
    });
  }
}

// --- URL state ---------------------------------------------------------------

function readURL() {
  const p = new URLSearchParams(location.search);
  state.q = p.get("q") || "";
  state.status = p.get("status") || "all";
  state.sort = p.get("sort") || "status";
  state.dir = p.get("dir") === "desc" ? -1 : p.get("dir") === "asc" ? 1 : defaultDir(state.sort);
  state.group = p.get("group") || "";
}

function writeURL() {
  const p = new URLSearchParams();
  if (state.q) p.set("q", state.q);
  if (state.status !== "all") p.set("status", state.status);
  if (state.sort !== "status") p.set("sort", state.sort);
  if (state.dir !== defaultDir(state.sort)) p.set("dir", state.dir > 0 ? "asc" : "desc");
  if (state.group) p.set("group", state.group);
  const s = p.toString();
  history.replaceState(null, "", s ? "?" + s : location.pathname);
}
