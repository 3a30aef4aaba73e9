// Disk health (SMART / NVMe): one row per device and model.
import { temp, duration, pct, num } from "../format.js";
import { deep, h, setText, setClass, show, table, sync, td, bar } from "./deep.js";

const NAMES = ["smart_health_passed", "smart_temperature_celsius", "smart_power_on_seconds", "nvme_wear_percent",
  "nvme_available_spare_percent", "smart_reallocated_sectors", "smart_pending_sectors", "nvme_media_errors_total", "nvme_critical_warning"];
const COLS = [["Device"], ["Model"], ["Health"], ["Temp", "num"], ["Power-on", "num"], ["Wear", "wear"], ["Spare", "num"], ["Problems", "num"]];

export const diskHealth = {
  id: "disk-health",
  title: "Disk health",
  render(el, ctx) {
    const d = deep(ctx);
    const devs = new Map();
    for (const n of NAMES) for (const v of d.all(n)) {
      const k = (v.labels.device || "") + "\u0000" + (v.labels.model || "");
      if (!devs.has(k)) devs.set(k, { key: k, device: v.labels.device || "", model: v.labels.model || "" });
    }
    if (!show(el, devs.size > 0)) return;
    const list = [...devs.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
    const tbody = table(el, "smart", COLS);
    sync(tbody, el._rows, list, (x) => x.key, () => {
      const r = { dev: td("name"), model: td(), health: td(), badge: h("span", { class: "sbadge" }), t: td("num"), on: td("num"),
        wear: td("wear"), wbar: bar(), wtxt: h("span", { class: "wtxt" }), spare: td("num"), prob: td("num") };
      r.health.append(r.badge);
      r.wear.append(r.wbar.el, r.wtxt);
      r.tr = h("tr", {}, r.dev, r.model, r.health, r.t, r.on, r.wear, r.spare, r.prob);
      return r;
    }, (r, x) => {
      const m = { device: x.device, model: x.model };
      const g = (n) => d.get(n, m);
      setText(r.dev, x.device);
      setText(r.model, x.model);
      const ok = g("smart_health_passed");
      setText(r.badge, ok == null ? "–" : ok === 1 ? "PASSED" : "FAILED");
      setClass(r.badge, "sbadge " + (ok == null ? "off" : ok === 1 ? "ok" : "crit"));
      const t = g("smart_temperature_celsius");
      setText(r.t, temp(t));
      setClass(r.t, "num" + (t >= 70 ? " crit" : t >= 55 ? " warn" : ""));
      const on = g("smart_power_on_seconds");
      setText(r.on, on == null ? "–" : duration(on));
      const w = g("nvme_wear_percent");
      r.wbar.el.hidden = w == null;
      r.wbar.set(w, 60, 80.0001);
      setText(r.wtxt, w == null ? "–" : pct(w));
      setClass(r.wtxt, "wtxt" + (w > 80 ? " crit" : ""));
      setText(r.spare, pct(g("nvme_available_spare_percent")));
      const probs = [];
      for (const [n, label] of [["smart_reallocated_sectors", "reallocated"], ["smart_pending_sectors", "pending"],
        ["nvme_media_errors_total", "media errors"], ["nvme_critical_warning", "critical warning"]]) {
        const v = g(n);
        if (v) probs.push(num(v) + " " + label);
      }
      setText(r.prob, probs.length ? probs.join(", ") : "none");
      setClass(r.prob, "num" + (probs.length ? " crit" : " muted"));
    });
  },
};
