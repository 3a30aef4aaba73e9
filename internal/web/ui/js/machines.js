// Client-side machine records for the overview: latest headline values, a
// bounded sparkline buffer and the health derived from thresholds.
import { pct } from "./format.js";

// SPARK is the sparkline length in points (5 minutes at 1 s).
export const SPARK = 300;

// THRESHOLDS: [warning, critical] in percent.
export const THRESHOLDS = { cpu: [75, 90], mem: [80, 90], disk: [80, 90] };

// HEALTH_ORDER sorts the worst live machines first and offline ones last,
// below every machine still reporting.
export const HEALTH_ORDER = { crit: 0, warn: 1, ok: 2, off: 3 };

export class Machine {
  constructor(id) {
    this.id = id;
    this.hostname = "";
    this.labels = {};
    this.labelStr = "";
    this.search = id.toLowerCase();
    this.online = false;
    this.lastSeen = 0; // ms, local clock
    this.ts = 0; // ms, agent clock of the latest batch
    this.cpu = null; // % total
    this.mem = null; // %
    this.disk = null; // % of the fullest filesystem
    this.diskMount = "";
    this.load = null;
    this.rx = null; // bytes/s, all interfaces
    this.tx = null;
    this.alerts = 0; // firing alerts
    this.alertsCrit = false; // one of them is critical
    this.health = "off";
    this.why = ""; // what made health warn or crit, e.g. "CPU 97 % ≥ 90 %"
    this.version = 0; // bumped on every change the row shows
    this.spark = new Float32Array(SPARK); // ring buffer of CPU %
    this.sparkHead = 0; // next write position
    this.sparkN = 0;
    this.sparkFilled = false; // history fetched once
  }

  // setInfo takes a machine object of the API (without metrics).
  setInfo(m) {
    this.hostname = m.hostname || "";
    this.labels = m.labels || {};
    this.labelStr = Object.keys(this.labels).sort().map((k) => k + "=" + this.labels[k]).join(" ");
    this.search = (this.id + " " + this.hostname + " " + this.labelStr).toLowerCase();
    this.online = !!m.online;
    if (m.last_seen) this.lastSeen = Date.parse(m.last_seen) || this.lastSeen;
    this.updateHealth();
    this.version++;
  }

  // apply takes the headline values [cpu, mem, disk, mount, load, rx, tx]
  // of the live feed (null: not in the batch, keep the last value) and the
  // CPU points for the sparkline.
  apply(v, cpuPoints) {
    if (v[0] !== null) this.cpu = v[0];
    if (v[1] !== null) this.mem = v[1];
    if (v[2] !== null) {
      this.disk = v[2];
      this.diskMount = v[3];
    }
    if (v[4] !== null) this.load = v[4];
    if (v[5] !== null) this.rx = v[5];
    if (v[6] !== null) this.tx = v[6];
    if (cpuPoints) for (const c of cpuPoints) this.pushSpark(c);
    this.updateHealth();
    this.version++;
  }

  pushSpark(v) {
    this.spark[this.sparkHead] = v;
    this.sparkHead = (this.sparkHead + 1) % SPARK;
    if (this.sparkN < SPARK) this.sparkN++;
  }

  // fillSpark puts older points (oldest first) before the live ones.
  fillSpark(values) {
    const live = [];
    for (let i = 0; i < this.sparkN; i++) live.push(this.spark[(this.sparkHead - this.sparkN + i + SPARK) % SPARK]);
    const all = values.concat(live).slice(-SPARK);
    this.sparkHead = 0;
    this.sparkN = 0;
    for (const v of all) this.pushSpark(v);
    this.version++;
  }

  // updateHealth: off when offline; else the worst of the thresholds
  // (THRESHOLDS) and the firing alerts (critical if one is critical, else
  // warning), with why saying which. Returns whether health changed.
  updateHealth() {
    let h = "off", why = [];
    if (this.online) {
      let lvl = this.alerts > 0 ? (this.alertsCrit ? 2 : 1) : 0;
      if (lvl) why.push(this.alerts + (this.alerts === 1 ? " firing alert" : " firing alerts"));
      for (const [k, name] of [["cpu", "CPU"], ["mem", "memory"], ["disk", "disk"]]) {
        const v = this[k], th = THRESHOLDS[k], l = level(v, th);
        if (l) why.push(name + " " + pct(v) + " ≥ " + th[l - 1] + " %");
        lvl = Math.max(lvl, l);
      }
      h = lvl === 2 ? "crit" : lvl === 1 ? "warn" : "ok";
    }
    this.why = why.join(", ");
    const changed = h !== this.health;
    this.health = h;
    return changed;
  }
}

// level: 0 below the warning threshold th[0], 1 from it, 2 from the
// critical one th[1].
function level(v, th) {
  if (v == null) return 0;
  return v >= th[1] ? 2 : v >= th[0] ? 1 : 0;
}

// HEALTH_HELP says what the health counts and a machine's dot mean.
export const HEALTH_HELP = {
  crit: "Machines in critical health: CPU, memory or disk at " + THRESHOLDS.cpu[1] + " % or more, or a critical alert firing",
  warn: "Machines in warning health: CPU from " + THRESHOLDS.cpu[0] + " %, memory or disk from " + THRESHOLDS.mem[0] + " %, or a warning alert firing",
  alert: "Alerts firing now, from the rules on the Rules page; health also counts the CPU, memory and disk thresholds, so a machine can be critical without one",
};

// matcher compiles the search box: words match id, hostname and labels
// (substring, any case); "k=v" matches a label (value substring); "is:" picks
// a state (online, offline, crit, warn, ok, problem, alert). All must match.
export function matcher(query) {
  const tests = [];
  for (const tok of query.toLowerCase().split(/\s+/)) {
    if (!tok) continue;
    if (tok.startsWith("is:")) {
      const s = tok.slice(3);
      tests.push((m) => isState(m, s));
    } else if (tok.includes("=") && tok.indexOf("=") > 0) {
      const k = tok.slice(0, tok.indexOf("=")), v = tok.slice(tok.indexOf("=") + 1);
      tests.push((m) => {
        for (const lk in m.labels) if (lk.toLowerCase() === k && m.labels[lk].toLowerCase().includes(v)) return true;
        return false;
      });
    } else tests.push((m) => m.search.includes(tok));
  }
  return (m) => tests.every((t) => t(m));
}

// isState tests a status filter name.
export function isState(m, s) {
  switch (s) {
    case "": case "all": return true;
    case "online": case "up": return m.online;
    case "offline": case "off": case "down": return !m.online;
    case "crit": case "critical": return m.health === "crit";
    case "warn": case "warning": return m.health === "warn";
    case "ok": case "healthy": return m.health === "ok";
    case "problem": case "problems": case "failing": return m.health !== "ok";
    case "alert": case "alerts": case "firing": return m.alerts > 0;
  }
  return true;
}
