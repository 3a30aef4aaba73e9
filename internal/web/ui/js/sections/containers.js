// Containers: CPU, memory, I/O, network and restarts per container, busiest
// first.
import { bytes, pct, rate } from "../format.js";
import { deep, h, setText, show, table, sync, td } from "./deep.js";

const COLS = [["Container"], ["Runtime"], ["ID"], ["CPU", "num"], ["Memory", "num"], ["Disk read / write", "num"], ["Net in / out", "num"], ["Restarts", "num"]];

export const containers = {
  id: "containers",
  title: "Containers",
  render(el, ctx) {
    const d = deep(ctx);
    const cs = new Map();
    for (const n of ["container_cpu_usage_percent", "container_memory_usage_bytes"]) for (const v of d.all(n)) {
      const k = (v.labels.runtime || "") + "\u0000" + (v.labels.id || "") + "\u0000" + (v.labels.container || "");
      if (!cs.has(k)) cs.set(k, { key: k, labels: v.labels });
    }
    if (!show(el, cs.size > 0)) return;
    const list = [...cs.values()];
    for (const c of list) {
      const m = { id: c.labels.id || "", runtime: c.labels.runtime || "", container: c.labels.container || "" };
      for (const k in m) if (c.labels[k] == null) delete m[k];
      const g = (n) => d.get("container_" + n, m);
      c.cpu = g("cpu_usage_percent");
      c.mem = g("memory_usage_bytes");
      c.io = rate(g("io_read_bytes_per_second")) + " / " + rate(g("io_write_bytes_per_second"));
      const rx = g("network_receive_bytes_per_second"), tx = g("network_transmit_bytes_per_second");
      c.net = rx == null && tx == null ? "host" : rate(rx) + " / " + rate(tx);
      c.restarts = g("restarts_total");
    }
    list.sort((a, b) => (b.cpu || 0) - (a.cpu || 0) || (b.mem || 0) - (a.mem || 0));
    const tbody = table(el, "containers", COLS);
    sync(tbody, el._rows, list, (c) => c.key, () => {
      const r = { name: td("name"), rt: td(), id: td("mono"), cpu: td("num"), mem: td("num"), io: td("num"), net: td("num"), restarts: td("num") };
      r.tr = h("tr", {}, r.name, r.rt, r.id, r.cpu, r.mem, r.io, r.net, r.restarts);
      return r;
    }, (r, c) => {
      setText(r.name, c.labels.container || c.labels.id || "");
      setText(r.rt, c.labels.runtime || "");
      setText(r.id, c.labels.id || "");
      setText(r.cpu, pct(c.cpu));
      setText(r.mem, bytes(c.mem));
      setText(r.io, c.io);
      setText(r.net, c.net);
      // Restarts the agent has seen since it started (docs/metrics.md).
      setText(r.restarts, c.restarts == null || !isFinite(c.restarts) ? "–" : String(Math.round(c.restarts)));
      r.restarts.title = "restarts seen by the agent since it started";
    });
  },
};
