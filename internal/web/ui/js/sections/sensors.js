// Sensors: temperatures (hwmon, thermal zones), fans, batteries and
// pressure stall information, as small tiles.
import { temp, pct, num } from "../format.js";
import { deep, h, setText, setClass, show } from "./deep.js";

const WARN = 80, CRIT = 95;

function cmp(a, b) {
  return a.label < b.label ? -1 : a.label > b.label ? 1 : 0;
}

// group renders one titled list of tiles, reusing tiles by key.
function group(el, name, title, items) {
  el._g = el._g || {};
  let g = el._g[name];
  if (!g) {
    g = el._g[name] = { box: h("div", { class: "tiles", dataset: { group: name } }), tiles: new Map() };
    g.wrap = h("div", { class: "tgroup" }, h("h3", { text: title }), g.box);
    el.append(g.wrap);
  }
  g.wrap.hidden = items.length === 0;
  const keep = new Set();
  items.forEach((it, i) => {
    keep.add(it.key);
    let t = g.tiles.get(it.key);
    if (!t) {
      t = { l: h("span", { class: "tl" }), v: h("span", { class: "tv" }) };
      t.el = h("div", { class: "tile" }, t.l, t.v);
      g.tiles.set(it.key, t);
    }
    setText(t.l, it.label);
    setText(t.v, it.value);
    setClass(t.el, "tile" + (it.cls ? " " + it.cls : ""));
    if (g.box.children[i] !== t.el) g.box.insertBefore(t.el, g.box.children[i] || null);
  });
  for (const [k, t] of g.tiles) if (!keep.has(k)) { t.el.remove(); g.tiles.delete(k); }
}

const level = (c) => (c >= CRIT ? "crit" : c >= WARN ? "warn" : "");

export const sensors = {
  id: "sensors",
  title: "Sensors",
  render(el, ctx) {
    const d = deep(ctx);
    const temps = [];
    for (const v of d.all("hwmon_temperature_celsius")) {
      const label = (v.labels.chip || "") + " · " + (v.labels.sensor || "");
      temps.push({ key: "h\u0000" + label, label, value: temp(v.value), cls: level(v.value) });
    }
    for (const v of d.all("thermal_zone_temperature_celsius")) {
      const label = (v.labels.type || "zone") + " (zone " + (v.labels.zone || "?") + ")";
      temps.push({ key: "z\u0000" + label, label, value: temp(v.value), cls: level(v.value) });
    }
    const fans = d.all("fan_speed_rpm").map((v) => {
      const label = (v.labels.chip || "") + " · " + (v.labels.sensor || "");
      return { key: label, label, value: Math.round(v.value) + " RPM" };
    });
    const bats = [...new Set(d.all("battery_capacity_percent").map((v) => v.labels.battery || ""))].map((b) => {
      const c = d.get("battery_capacity_percent", { battery: b });
      const ch = d.get("battery_charging", { battery: b });
      const w = d.get("battery_power_watts", { battery: b });
      const parts = [pct(c)];
      if (ch != null) parts.push(ch === 1 ? "charging" : "not charging");
      if (w != null) parts.push(num(w) + " W");
      return { key: b, label: b, value: parts.join(" · "), cls: c != null && c < 10 && ch !== 1 ? "crit" : "" };
    });
    const psi = [...new Set(d.all("pressure_some_avg10_percent").map((v) => v.labels.resource || ""))].sort().map((r) => {
      const some = d.get("pressure_some_avg10_percent", { resource: r });
      const full = d.get("pressure_full_avg10_percent", { resource: r });
      return { key: r, label: r + " (some / full, 10 s)", value: pct(some) + " / " + pct(full), cls: some >= 50 ? "crit" : some >= 10 ? "warn" : "" };
    });
    if (!show(el, temps.length + fans.length + bats.length + psi.length > 0)) return;
    group(el, "temps", "Temperatures", temps.sort(cmp));
    group(el, "fans", "Fans", fans.sort(cmp));
    group(el, "battery", "Battery", bats.sort(cmp));
    group(el, "pressure", "Pressure", psi);
  },
};
