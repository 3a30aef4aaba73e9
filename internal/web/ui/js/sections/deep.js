// Shared helpers of the deep sections (services, SMART, sensors, GPUs,
// containers, top processes). A metrics event carries one batch (the agent's
// tick, or one ingest request), so the deep series are kept here between
// events and dropped 5 minutes after their last value, as the hub does.
import { h, setText, setClass } from "../dom.js";

const TTL = 300000;
const DEEP = /^(systemd_|smart_|nvme_|hwmon_|thermal_|fan_|battery_|pressure_|gpu_|container_|directory_)/;
let store = null;

function key(labels) {
  return Object.keys(labels || {}).sort().map((k) => k + "=" + labels[k]).join("\u0000");
}

// deep returns the merged view of the machine's deep series for ctx:
// all(name) → [{labels, value, t}], get(name, match) → the newest value or null.
export function deep(ctx) {
  const id = ctx.machine.id;
  if (!store || store.id !== id) store = { id, map: new Map(), seen: null, by: new Map() };
  if (store.seen !== ctx.metrics) {
    store.seen = ctx.metrics;
    const now = Date.now();
    for (const v of ctx.metrics || []) {
      if (!DEEP.test(v.name) || v.value == null) continue;
      store.map.set(v.name + "\u0001" + key(v.labels), { name: v.name, labels: v.labels || {}, value: v.value, t: v.ts || now });
    }
    store.by = new Map();
    for (const [k, v] of store.map) {
      if (now - v.t > TTL) { store.map.delete(k); continue; }
      if (!store.by.has(v.name)) store.by.set(v.name, []);
      store.by.get(v.name).push(v);
    }
  }
  const by = store.by;
  const all = (name) => by.get(name) || [];
  const get = (name, match) => {
    let best = null;
    for (const v of all(name)) {
      let ok = true;
      for (const k in match) if (v.labels[k] !== match[k]) { ok = false; break; }
      if (ok && (!best || v.t > best.t)) best = v;
    }
    return best ? best.value : null;
  };
  return { all, get, has: (name) => all(name).length > 0 };
}

// show hides the whole section (heading included) when it has nothing.
export function show(el, on) {
  const sec = el.parentElement;
  if (sec && sec.hidden === on) sec.hidden = !on;
  return on;
}

// heading sets the section's h2 text.
export function heading(el, s) {
  const h2 = el.parentElement && el.parentElement.querySelector("h2");
  if (h2) setText(h2, s);
}

// table builds (once) a table in el: cols [[label, class, sortKey]].
// onSort(sortKey) makes the header a button.
export function table(el, cls, cols, onSort) {
  if (el._tbody) return el._tbody;
  const head = h("tr", {}, ...cols.map(([label, c, sk]) => h("th", { class: c || null },
    sk && onSort ? h("button", { type: "button", class: "sortbtn", text: label, dataset: { sort: sk }, on: { click: () => onSort(sk) } }) : label)));
  el._tbody = h("tbody");
  el.replaceChildren(h("div", { class: "dtable-wrap" }, h("table", { class: "dtable " + cls }, h("thead", {}, head), el._tbody)));
  el._rows = new Map();
  return el._tbody;
}

// sync makes tbody's rows match items (in order), reusing rows by key:
// make() → {tr, ...cells}, fill(row, item) updates it.
export function sync(parent, rowsMap, items, keyOf, make, fill) {
  const keep = new Set();
  let i = 0;
  for (const it of items) {
    const k = keyOf(it);
    keep.add(k);
    let r = rowsMap.get(k);
    if (!r) { r = make(it); rowsMap.set(k, r); }
    fill(r, it);
    if (parent.children[i] !== r.tr) parent.insertBefore(r.tr, parent.children[i] || null);
    i++;
  }
  for (const [k, r] of rowsMap) if (!keep.has(k)) { r.tr.remove(); rowsMap.delete(k); }
}

// bar is a small meter: {el, set(pct, warnAt, critAt)}.
export function bar() {
  const i = h("i");
  const el = h("span", { class: "bar dbar" }, i);
  return { el, set(p, warn, crit) {
    const v = p == null || !isFinite(p) ? 0 : Math.max(0, Math.min(100, p));
    i.style.width = v + "%";
    setClass(i, p >= crit ? "crit" : p >= warn ? "warn" : "");
  } };
}

export function td(cls) {
  return h("td", { class: cls || null });
}

export { h, setText, setClass };
