// The edge's read-only overview: one card per machine (online state,
// headline values, a CPU and memory sparkline), fed by /ws. Machine ids and
// labels are untrusted: they only ever become text (see dom.js).
import { h, setText, visible } from "./dom.js";

const CPU_KEY = "cpu_usage_percent\u0000cpu=total";
const MEM_KEY = "memory_usage_percent";

const machines = new Map(); // id → Rec
let windowMs = 300000;
let stepMs = 1000;
let publisher = false;
let query = "";
let orderDirty = true; // machine set or filter changed: re-sort the cards
let frame = 0;
const dirty = new Set(); // Recs whose card needs an update

const els = {
  cards: document.getElementById("cards"),
  counts: document.getElementById("counts"),
  conn: document.getElementById("conn"),
  stale: document.getElementById("stale"),
  empty: document.getElementById("empty"),
  search: document.getElementById("search"),
};

// seriesKey identifies a series by name and sorted labels.
function seriesKey(name, labels) {
  const ks = Object.keys(labels || {}).sort();
  return ks.length === 0 ? name : name + "\u0000" + ks.map((k) => k + "=" + labels[k]).join("\u0001");
}

// Rec is one machine: identity, latest values and sparkline points.
class Rec {
  constructor(id) {
    this.id = id;
    this.labels = {};
    this.online = false;
    this.lastSeen = 0; // ms, hub clock
    this.lastTs = 0; // ms, agent clock of the newest values
    this.values = new Map(); // series key → {name, labels, value}
    this.spark = { cpu: [], memory: [] }; // [[ts, value]…], oldest first
    this.search = id.toLowerCase();
    this.card = null;
  }

  setInfo(m) {
    this.labels = m.labels && typeof m.labels === "object" ? m.labels : {};
    this.online = !!m.online;
    this.lastSeen = m.last_seen ? Date.parse(m.last_seen) || 0 : 0;
    const text = this.id + " " + labelList(this.labels).join(" ");
    this.search = (text + " " + visible(text)).toLowerCase();
  }

  // setValues takes [{name, labels, value}] at ts (ms).
  setValues(list, ts, replace) {
    if (replace) this.values.clear();
    for (const v of list) {
      if (typeof v.value !== "number") continue;
      const key = seriesKey(v.name, v.labels);
      this.values.set(key, { name: v.name, labels: v.labels || {}, value: v.value });
      const t = v.ts || ts;
      if (key === CPU_KEY) pushPoint(this.spark.cpu, t, v.value);
      else if (key === MEM_KEY) pushPoint(this.spark.memory, t, v.value);
    }
    if (ts > this.lastTs) this.lastTs = ts;
  }

  // headline derives the card's values from the latest series.
  headline() {
    let cpu = null, mem = null, disk = null, mount = "", load = null, rx = null, tx = null, up = null;
    for (const v of this.values.values()) {
      switch (v.name) {
        case "cpu_usage_percent":
          if (v.labels.cpu === "total") cpu = v.value;
          break;
        case "memory_usage_percent": mem = v.value; break;
        case "filesystem_usage_percent":
          if (disk === null || v.value > disk) { disk = v.value; mount = v.labels.mountpoint || ""; }
          break;
        case "load1": load = v.value; break;
        case "network_receive_bytes_per_second":
          if (v.labels.interface !== "lo") rx = (rx || 0) + v.value;
          break;
        case "network_transmit_bytes_per_second":
          if (v.labels.interface !== "lo") tx = (tx || 0) + v.value;
          break;
        case "uptime_seconds": up = v.value; break;
      }
    }
    return { cpu, mem, disk, mount, load, rx, tx, up };
  }
}

// pushPoint appends a sparkline point; a point in the same bucket replaces
// the last one, and points older than the window fall off.
function pushPoint(pts, ts, v) {
  if (!ts) return;
  const b = Math.floor(ts / stepMs);
  const last = pts[pts.length - 1];
  if (last && Math.floor(last[0] / stepMs) === b) last[1] = v;
  else if (!last || ts > last[0]) pts.push([ts, v]);
  const min = ts - windowMs;
  let drop = 0;
  while (drop < pts.length && pts[drop][0] < min) drop++;
  if (drop > 0) pts.splice(0, drop);
}

function labelList(labels) {
  return Object.keys(labels).sort().map((k) => k + "=" + labels[k]);
}

// --- stream ----------------------------------------------------------------

let retry = 0;

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/ws");
  setConn("connecting", "connecting…");
  ws.onopen = () => { retry = 0; setConn("open", "live"); };
  ws.onmessage = (e) => {
    let msg;
    try { msg = JSON.parse(e.data); } catch { return; }
    onMessage(msg);
  };
  ws.onclose = () => {
    setConn("closed", "reconnecting…");
    const delay = Math.min(30000, 500 * 2 ** retry++) * Math.random() + 250;
    setTimeout(connect, delay);
  };
}

function setConn(state, text) {
  document.documentElement.dataset.conn = state;
  setText(els.conn, text);
  els.conn.className = "conn " + state;
}

function get(id) {
  let r = machines.get(id);
  if (!r) {
    r = new Rec(id);
    machines.set(id, r);
    orderDirty = true;
  }
  return r;
}

function onMessage(msg) {
  if (!msg || typeof msg !== "object") return;
  switch (msg.type) {
    case "snapshot": {
      if (msg.window_ms > 0) windowMs = msg.window_ms;
      if (msg.step_ms > 0) stepMs = msg.step_ms;
      publisher = !!msg.publisher;
      const seen = new Set();
      for (const m of msg.machines || []) {
        if (typeof m.id !== "string") continue;
        const r = get(m.id);
        r.setInfo(m);
        r.spark = { cpu: [], memory: [] };
        r.setValues(m.metrics || [], m.last_ts || 0, true);
        const sp = m.spark || {};
        if (Array.isArray(sp.cpu)) r.spark.cpu = sp.cpu.slice();
        if (Array.isArray(sp.memory)) r.spark.memory = sp.memory.slice();
        seen.add(m.id);
        dirty.add(r);
      }
      for (const [id, r] of machines) if (!seen.has(id)) remove(id, r);
      orderDirty = true;
      break;
    }
    case "metrics": {
      if (typeof msg.machine !== "string" || !Array.isArray(msg.metrics)) return;
      const r = get(msg.machine);
      r.setValues(msg.metrics, msg.ts || 0, false);
      dirty.add(r);
      break;
    }
    case "machine": {
      const m = msg.machine;
      if (!m || typeof m.id !== "string") return;
      const r = get(m.id);
      const before = r.search;
      r.setInfo(m);
      if (r.search !== before) orderDirty = true;
      dirty.add(r);
      break;
    }
    case "remove": {
      const r = machines.get(msg.machine);
      if (r) remove(msg.machine, r);
      break;
    }
    case "status":
      publisher = !!msg.publisher;
      for (const r of machines.values()) dirty.add(r);
      break;
  }
  schedule();
}

// remove drops a machine; the next frame takes its card out of the page
// together with the counts, so the two never disagree.
function remove(id, r) {
  machines.delete(id);
  dirty.delete(r);
  orderDirty = true;
}

// --- rendering -------------------------------------------------------------

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  if (orderDirty) {
    orderDirty = false;
    const ids = [...machines.keys()].sort();
    const frag = document.createDocumentFragment();
    let shown = 0;
    for (const id of ids) {
      const r = machines.get(id);
      if (!r.card) { r.card = buildCard(r); dirty.add(r); }
      const match = !query || r.search.includes(query);
      r.card.el.hidden = !match;
      if (match) shown++;
      frag.append(r.card.el);
    }
    els.cards.replaceChildren(frag);
    els.empty.hidden = shown > 0;
    setText(els.empty, machines.size === 0 ? "No machines yet." : "No machine matches the filter.");
  }
  for (const r of dirty) if (r.card) updateCard(r);
  dirty.clear();
  let on = 0;
  for (const r of machines.values()) if (r.online && publisher) on++;
  setText(els.counts, machines.size + " machines · " + on + " online · " + (machines.size - on) + " offline");
  els.stale.hidden = publisher || document.documentElement.dataset.conn !== "open";
}

function buildCard(r) {
  const dot = h("span", { class: "dot", attrs: { "aria-hidden": "true" } });
  const state = h("span", { class: "state" });
  const chips = h("div", { class: "chips" });
  const cell = (label) => {
    const v = h("span", { class: "v", text: "–" });
    return [h("div", { class: "cell" }, h("span", { class: "k", text: label }), v), v];
  };
  const [cCpu, vCpu] = cell("CPU");
  const [cMem, vMem] = cell("Memory");
  const [cDisk, vDisk] = cell("Disk");
  const [cLoad, vLoad] = cell("Load");
  const [cRx, vRx] = cell("Net in");
  const [cTx, vTx] = cell("Net out");
  const canvas = h("canvas", { class: "spark", attrs: { role: "img", "aria-label": "CPU (blue) and memory (green), last minutes" } });
  const el = h("article", { class: "card", dataset: { id: r.id } },
    h("div", { class: "head" }, dot, h("h2", { class: "id", text: r.id, title: r.id }), state),
    chips,
    h("div", { class: "vals" }, cCpu, cMem, cDisk, cLoad, cRx, cTx),
    canvas);
  return { el, dot, state, chips, vCpu, vMem, vDisk, vLoad, vRx, vTx, canvas, labels: null };
}

function updateCard(r) {
  const c = r.card;
  const online = r.online && publisher;
  const v = r.headline();
  c.el.classList.toggle("off", !online);
  c.dot.className = "dot " + (online ? "on" : "off");
  setText(c.state, online ? (v.up === null ? "online" : "up " + duration(v.up)) : "offline" + (r.lastSeen ? " · seen " + ago(r.lastSeen) : ""));
  const ls = labelList(r.labels); // h shows their control and bidi characters
  const lsKey = ls.join("\u0000");
  if (c.labels !== lsKey) {
    c.labels = lsKey;
    c.chips.replaceChildren(...ls.map((l) => h("span", { class: "chip", text: l, title: l })));
  }
  setText(c.vCpu, pct(v.cpu));
  setText(c.vMem, pct(v.mem));
  setText(c.vDisk, pct(v.disk));
  c.vDisk.parentNode.title = v.mount ? "fullest filesystem: " + visible(v.mount) : "";
  setText(c.vLoad, v.load === null ? "–" : v.load.toFixed(2));
  setText(c.vRx, rate(v.rx));
  setText(c.vTx, rate(v.tx));
  c.el.dataset.ts = String(r.lastTs);
  drawSpark(c.canvas, r, online);
}

// --- sparkline ---------------------------------------------------------------

let colours = null;

function drawSpark(canvas, r, online) {
  if (!colours) {
    const cs = getComputedStyle(document.documentElement);
    colours = {
      cpu: cs.getPropertyValue("--spark-cpu").trim() || "#2563eb",
      mem: cs.getPropertyValue("--spark-mem").trim() || "#16a34a",
      off: cs.getPropertyValue("--muted").trim() || "#888",
    };
  }
  const dpr = window.devicePixelRatio || 1;
  const W = Math.max(1, Math.round((canvas.clientWidth || 240) * dpr));
  const H = Math.max(1, Math.round((canvas.clientHeight || 36) * dpr));
  if (canvas.width !== W || canvas.height !== H) {
    canvas.width = W;
    canvas.height = H;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, W, H);
  const end = Math.max(r.lastTs, last(r.spark.cpu), last(r.spark.memory));
  if (!end) return;
  const x = (t) => W - ((end - t) / windowMs) * W;
  const y = (v) => H - 1 - (Math.max(0, Math.min(100, v)) / 100) * (H - 2);
  const line = (pts, colour) => {
    if (pts.length < 2) return;
    ctx.beginPath();
    let gap = true;
    for (let i = 0; i < pts.length; i++) {
      const [t, v] = pts[i];
      if (i > 0 && t - pts[i - 1][0] > 5 * stepMs) gap = true; // missing data: break the line
      if (gap) ctx.moveTo(x(t), y(v));
      else ctx.lineTo(x(t), y(v));
      gap = false;
    }
    ctx.lineWidth = Math.max(1, dpr);
    ctx.strokeStyle = online ? colour : colours.off;
    ctx.stroke();
  };
  line(r.spark.memory, colours.mem);
  line(r.spark.cpu, colours.cpu);
}

function last(pts) {
  return pts.length ? pts[pts.length - 1][0] : 0;
}

// --- formatting --------------------------------------------------------------

function pct(v) {
  return v === null ? "–" : v.toFixed(v >= 10 ? 0 : 1) + "%";
}

function rate(v) {
  if (v === null) return "–";
  const units = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return (v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
}

function duration(s) {
  if (s === null) return "–";
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d > 0) return d + "d " + hh + "h";
  if (hh > 0) return hh + "h " + m + "m";
  return m + "m";
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
}

// --- start -------------------------------------------------------------------

els.search.addEventListener("input", () => {
  query = els.search.value.trim().toLowerCase();
  orderDirty = true;
  schedule();
});
setInterval(() => {
  // "seen … ago" of offline machines.
  for (const r of machines.values()) if (!(r.online && publisher)) dirty.add(r);
  if (dirty.size) schedule();
}, 5000);
connect();
