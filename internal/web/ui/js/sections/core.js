// The core sections: what every agent sends (docs/metrics.md).
import { bytes } from "../format.js";

function byNumber(a, b) {
  const na = Number(a), nb = Number(b);
  return isNaN(na) || isNaN(nb) ? (a < b ? -1 : a > b ? 1 : 0) : na - nb;
}

export const cpu = {
  id: "cpu",
  title: "CPU",
  charts(ctx) {
    if (!ctx.has("cpu_usage_percent")) return [];
    const cores = ctx.values("cpu_usage_percent", "cpu").filter((c) => c !== "total").sort(byNumber);
    const out = [{ key: "cpu-total", title: "CPU usage", sub: "all cores", unit: "pct", max: 100,
      lines: [{ label: "total", metric: "cpu_usage_percent", match: { cpu: "total" } }] }];
    if (cores.length > 1) {
      out.push({ key: "cpu-cores", title: "CPU usage per core", sub: cores.length + " logical CPUs", unit: "pct", max: 100, noBand: true,
        lines: cores.map((c) => ({ label: "cpu" + c, metric: "cpu_usage_percent", match: { cpu: c } })) });
    }
    return out;
  },
};

export const memory = {
  id: "memory",
  title: "Memory",
  charts(ctx) {
    if (!ctx.has("memory_used_bytes")) return [];
    const lines = [
      { label: "used", metric: "memory_used_bytes", match: {} },
      { label: "total", metric: "memory_total_bytes", match: {}, dash: [4, 4] },
    ];
    if (ctx.latest("swap_total_bytes") > 0) lines.push({ label: "swap used", metric: "swap_used_bytes", match: {} });
    const total = ctx.latest("memory_total_bytes");
    return [{ key: "memory", title: "Memory and swap", sub: total ? bytes(total) + " total" : "", unit: "bytes", lines }];
  },
};

export const load = {
  id: "load",
  title: "Load",
  charts(ctx) {
    if (!ctx.has("load1")) return [];
    return [{ key: "load", title: "Load average", unit: "num",
      lines: ["load1", "load5", "load15"].map((n) => ({ label: n.replace("load", "") + " min", metric: n, match: {} })) }];
  },
};

export const filesystems = {
  id: "filesystems",
  title: "Filesystems",
  charts(ctx) {
    return ctx.values("filesystem_usage_percent", "mountpoint").map((mp) => {
      const m = ctx.find("filesystem_usage_percent", { mountpoint: mp });
      const size = ctx.find("filesystem_size_bytes", { mountpoint: mp });
      const used = ctx.find("filesystem_used_bytes", { mountpoint: mp });
      const sub = [m && m.labels.device, m && m.labels.fstype, used && size ? bytes(used.value) + " of " + bytes(size.value) : ""].filter(Boolean).join(" · ");
      return { key: "fs:" + mp, title: mp, sub, unit: "pct", max: 100,
        lines: [{ label: "used", metric: "filesystem_usage_percent", match: { mountpoint: mp } }] };
    });
  },
};

export const disks = {
  id: "disks",
  title: "Disk I/O",
  charts(ctx) {
    return ctx.values("disk_read_bytes_per_second", "device").map((d) => ({
      key: "disk:" + d, title: d, sub: "read / write", unit: "rate",
      lines: [
        { label: "read", metric: "disk_read_bytes_per_second", match: { device: d } },
        { label: "write", metric: "disk_write_bytes_per_second", match: { device: d } },
      ],
    }));
  },
};

export const network = {
  id: "network",
  title: "Network",
  charts(ctx) {
    return ctx.values("network_receive_bytes_per_second", "interface").map((n) => ({
      key: "net:" + n, title: n, sub: "in / out", unit: "rate",
      lines: [
        { label: "in", metric: "network_receive_bytes_per_second", match: { interface: n } },
        { label: "out", metric: "network_transmit_bytes_per_second", match: { interface: n } },
      ],
    }));
  },
};

export const processes = {
  id: "processes",
  title: "Processes",
  charts(ctx) {
    if (!ctx.has("processes_total")) return [];
    const lines = [{ label: "total", metric: "processes_total", match: {} }];
    if (ctx.has("processes_running")) lines.push({ label: "running", metric: "processes_running", match: {} });
    if (ctx.has("processes_blocked")) lines.push({ label: "blocked", metric: "processes_blocked", match: {} });
    return [{ key: "procs", title: "Processes", unit: "num", lines }];
  },
};
