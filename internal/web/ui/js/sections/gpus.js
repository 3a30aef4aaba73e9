// GPUs: one card per GPU with utilisation and memory bars, temperature,
// power against its limit and, where reported (Intel), the GT frequency.
import { bytes, pct, temp, num } from "../format.js";
import { deep, h, setText, setClass, show, bar } from "./deep.js";

const NAMES = ["gpu_utilization_percent", "gpu_memory_used_bytes", "gpu_memory_total_bytes", "gpu_temperature_celsius", "gpu_power_watts", "gpu_frequency_mhz"];

export const gpus = {
  id: "gpus",
  title: "GPUs",
  render(el, ctx) {
    const d = deep(ctx);
    const ids = new Map();
    for (const n of NAMES) for (const v of d.all(n)) if (!ids.has(v.labels.gpu)) ids.set(v.labels.gpu, v.labels);
    if (!show(el, ids.size > 0)) return;
    if (!el._cards) {
      el._cards = new Map();
      el._box = h("div", { class: "gpus" });
      el.replaceChildren(el._box);
    }
    const list = [...ids.keys()].sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : 1));
    list.forEach((g, i) => {
      const labels = ids.get(g);
      let c = el._cards.get(g);
      if (!c) {
        c = { title: h("h3"), vendor: h("span", { class: "muted" }), util: bar(), utilT: h("span", { class: "tv" }),
          mem: bar(), memT: h("span", { class: "tv" }), t: h("span", { class: "tv" }), p: h("span", { class: "tv" }), f: h("span", { class: "tv" }) };
        const line = (k, b, v) => h("div", { class: "gline" }, h("span", { class: "tl", text: k }), b ? b.el : null, v);
        c.el = h("div", { class: "gpu", dataset: { gpu: String(g) } }, h("div", { class: "ghead" }, c.title, c.vendor),
          line("Utilisation", c.util, c.utilT), line("Memory", c.mem, c.memT), line("Temperature", null, c.t), line("Power", null, c.p),
          (c.fLine = line("Frequency", null, c.f)));
        el._cards.set(g, c);
      }
      const m = { gpu: g };
      setText(c.title, "GPU " + g + (labels.name ? " · " + labels.name : ""));
      setText(c.vendor, labels.vendor || "");
      const u = d.get("gpu_utilization_percent", m);
      c.util.set(u, 80, 95);
      setText(c.utilT, pct(u));
      const used = d.get("gpu_memory_used_bytes", m), total = d.get("gpu_memory_total_bytes", m);
      const mp = used != null && total ? (used / total) * 100 : null;
      c.mem.set(mp, 80, 95);
      setText(c.memT, bytes(used) + " / " + bytes(total));
      const t = d.get("gpu_temperature_celsius", m);
      setText(c.t, temp(t));
      setClass(c.t, "tv" + (t >= 95 ? " crit" : t >= 80 ? " warn" : ""));
      const w = d.get("gpu_power_watts", m), lim = d.get("gpu_power_limit_watts", m);
      setText(c.p, (w == null ? "–" : num(w) + " W") + (lim ? " / " + num(lim) + " W" : ""));
      const f = d.get("gpu_frequency_mhz", m);
      if (c.fLine.hidden !== (f == null)) c.fLine.hidden = f == null;
      setText(c.f, f == null ? "" : Math.round(f) + " MHz");
      if (el._box.children[i] !== c.el) el._box.insertBefore(c.el, el._box.children[i] || null);
    });
    for (const [g, c] of el._cards) if (!ids.has(g)) { c.el.remove(); el._cards.delete(g); }
  },
};
