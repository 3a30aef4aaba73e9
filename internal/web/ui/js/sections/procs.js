// Top processes: the agent's latest list (GET /api/machines/{id} "processes",
// then each "processes" WebSocket event), sortable by CPU or memory.
import { bytes, pct } from "../format.js";
import { h, setText, show, table, sync, td } from "./deep.js";

const COLS = [["PID", "num"], ["Name"], ["User"], ["Command", "cmd"], ["CPU", "num", "cpu"], ["Memory", "num", "mem"], ["State", "st"]];
const STATES = { R: "running", S: "sleeping", D: "disk sleep", Z: "zombie", T: "stopped", t: "traced", I: "idle", X: "dead" };
let sortBy = "cpu";

function draw(el, m) {
  const list = m && m.online !== false && Array.isArray(m.processes) ? m.processes : [];
  if (!show(el, list.length > 0)) return;
  const tbody = table(el, "procs", COLS, (k) => { sortBy = k; el._last = null; draw(el, el._m); });
  el._m = m;
  for (const b of el.querySelectorAll(".sortbtn")) b.className = "sortbtn" + (b.dataset.sort === sortBy ? " sorted desc" : "");
  const items = list.slice().sort(sortBy === "mem" ? (a, b) => b.rss_bytes - a.rss_bytes || a.pid - b.pid
    : (a, b) => b.cpu_percent - a.cpu_percent || b.rss_bytes - a.rss_bytes || a.pid - b.pid);
  sync(tbody, el._rows, items, (p) => p.pid + "\u0000" + p.name, () => {
    const r = { pid: td("num"), name: td("name"), user: td(), cmd: td("cmd"), cpu: td("num"), mem: td("num"), st: td("st") };
    r.tr = h("tr", {}, r.pid, r.name, r.user, r.cmd, r.cpu, r.mem, r.st);
    return r;
  }, (r, p) => {
    setText(r.pid, String(p.pid));
    setText(r.name, String(p.name || ""));
    setText(r.user, String(p.user || ""));
    const cmd = String(p.command || "");
    setText(r.cmd, cmd.length > 80 ? cmd.slice(0, 79) + "…" : cmd);
    if (r.cmd.getAttribute("title") !== cmd) r.cmd.setAttribute("title", cmd);
    setText(r.cpu, pct(p.cpu_percent));
    setText(r.mem, bytes(p.rss_bytes));
    setText(r.st, String(p.state || ""));
    const st = STATES[p.state] || "";
    if (r.st.getAttribute("title") !== st) r.st.setAttribute("title", st);
  });
  el.dataset.ts = String(m.processes_ts || "");
}

export const topProcesses = {
  id: "top-processes",
  title: "Top processes",
  render(el, ctx) {
    if (el._drawnTs === undefined || ctx.machine.online !== el._online || ctx.machine.processes_ts !== el._drawnTs) {
      el._online = ctx.machine.online;
      el._drawnTs = ctx.machine.processes_ts;
      draw(el, ctx.machine);
    }
  },
  // onProcesses: a "processes" WebSocket event updated machine.processes.
  onProcesses(el, machine) {
    el._online = machine.online;
    el._drawnTs = machine.processes_ts;
    draw(el, machine);
  },
};
