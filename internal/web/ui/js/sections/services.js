// systemd services: state, CPU, memory and restarts per unit; failed first.
import { bytes, pct } from "../format.js";
import { deep, h, setText, setClass, show, heading, table, sync, td } from "./deep.js";

const COLS = [["State", "st"], ["Unit"], ["Sub-state"], ["CPU", "num"], ["Memory", "num"], ["Data", "num"], ["Restarts", "num"]];
const RANK = { crit: 0, ok: 1, off: 2 };

export const services = {
  id: "services",
  title: "Services",
  render(el, ctx) {
    const d = deep(ctx);
    const units = new Map();
    const unit = (u) => {
      if (!units.has(u)) units.set(u, { unit: u, state: "", sub: "", t: -1 });
      return units.get(u);
    };
    for (const v of d.all("systemd_unit_info")) {
      const u = unit(v.labels.unit || "");
      if (v.t >= u.t) { u.t = v.t; u.state = v.labels.active_state || ""; u.sub = v.labels.sub_state || ""; }
    }
    for (const n of ["systemd_unit_active", "systemd_unit_failed", "systemd_unit_cpu_usage_percent", "systemd_unit_memory_bytes"]) {
      for (const v of d.all(n)) unit(v.labels.unit || "");
    }
    units.delete("");
    if (!show(el, units.size > 0)) return;
    const list = [...units.values()];
    let failed = 0;
    for (const u of list) {
      const m = { unit: u.unit };
      if (d.get("systemd_unit_failed", m) === 1) u.state = "failed";
      else if (!u.state) u.state = d.get("systemd_unit_active", m) === 1 ? "active" : "inactive";
      else if (u.state === "failed" && d.get("systemd_unit_failed", m) === 0) u.state = d.get("systemd_unit_active", m) === 1 ? "active" : "inactive";
      u.cls = u.state === "failed" ? "crit" : u.state === "active" || u.state === "reloading" ? "ok" : "off";
      if (u.cls === "crit") failed++;
      u.cpu = d.get("systemd_unit_cpu_usage_percent", m);
      u.mem = d.get("systemd_unit_memory_bytes", m);
      u.restarts = d.get("systemd_unit_restarts_total", m);
    }
    // Opt-in directory sizes (--dir-sizes SERVICE=PATH): summed per service.
    const data = new Map();
    for (const v of d.all("directory_size_bytes")) {
      const s = v.labels.service || "";
      data.set(s, (data.get(s) || 0) + v.value);
    }
    for (const u of list) u.data = data.has(u.unit) ? data.get(u.unit) : null;
    list.sort((a, b) => RANK[a.cls] - RANK[b.cls] || (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0));
    heading(el, "Services · " + failed + " failed / " + list.length + " units");
    el.dataset.failed = String(failed);
    const tbody = table(el, "services", COLS);
    sync(tbody, el._rows, list, (u) => u.unit, () => {
      const r = { badge: h("span", { class: "sbadge" }), st: td("st"), unit: td("name"), sub: td(), cpu: td("num"), mem: td("num"), data: td("num"), rs: td("num") };
      r.st.append(r.badge);
      r.tr = h("tr", {}, r.st, r.unit, r.sub, r.cpu, r.mem, r.data, r.rs);
      return r;
    }, (r, u) => {
      setText(r.badge, u.state);
      setClass(r.badge, "sbadge " + u.cls);
      setText(r.unit, u.unit);
      setText(r.sub, u.sub);
      setText(r.cpu, u.cpu == null ? "–" : pct(u.cpu));
      setText(r.mem, u.mem == null ? "–" : bytes(u.mem));
      setText(r.data, u.data == null ? "–" : bytes(u.data));
      setText(r.rs, u.restarts == null ? "–" : String(Math.round(u.restarts)));
      setClass(r.tr, u.cls === "crit" ? "failed" : "");
    });
  },
};
