// The pages' live feed, in a Web Worker: it owns the /ws connection and
// parses every message off the page's main thread. With a thousand machines
// reporting in the same instant (and a snapshot of several megabytes after
// each connect) the page would otherwise stall in long tasks.
//
// The page starts it with one message:
//   {mode: "overview"}: only the headline values of every machine, handed
//     over in one batch every 250 ms;
//   {mode: "machine", id}: subscribe to that machine; its snapshot entry,
//     metrics, processes, machine and alert events are passed through as they come.
"use strict";

let mode = null, only = null;

const FLUSH_MS = 250;
let delay = 500;
let pending = new Map(); // machine id → {ts, v, cpu: [points]}
let events = []; // machine and alert events, in order

// headline picks [cpu, mem, disk, mount, load, rx, tx] from a metrics list;
// null where the batch has no value.
function headline(list) {
  let cpu = null, mem = null, disk = null, mount = null, load = null, rx = null, tx = null;
  for (let i = 0; i < list.length; i++) {
    const m = list[i];
    const v = m.value;
    if (v == null) continue;
    switch (m.name) {
      case "cpu_usage_percent":
        if (m.labels && m.labels.cpu === "total") cpu = v;
        break;
      case "memory_usage_percent":
        mem = v;
        break;
      case "filesystem_usage_percent":
        if (disk === null || v > disk) {
          disk = v;
          mount = (m.labels && m.labels.mountpoint) || "";
        }
        break;
      case "load1":
        load = v;
        break;
      case "network_receive_bytes_per_second":
        rx = (rx || 0) + v;
        break;
      case "network_transmit_bytes_per_second":
        tx = (tx || 0) + v;
        break;
    }
  }
  return [cpu, mem, disk, mount, load, rx, tx];
}

function status(state, text) {
  postMessage({ type: "status", state, text });
}

function connect() {
  const proto = self.location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + self.location.host + "/ws");
  status("connecting", "Connecting…");
  ws.onopen = () => {
    delay = 500;
    status("open", "Live");
    if (mode === "machine") ws.send(JSON.stringify({ subscribe: [only] }));
  };
  ws.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (mode === "machine") {
      passThrough(msg);
      return;
    }
    switch (msg.type) {
      case "snapshot":
        pending = new Map();
        events = [];
        postMessage({
          type: "snapshot",
          machines: (msg.machines || []).map((m) => ({
            id: m.id, hostname: m.hostname, labels: m.labels, online: m.online, last_seen: m.last_seen,
            v: headline(m.metrics || []),
          })),
        });
        break;
      case "metrics": {
        const v = headline(msg.metrics || []);
        let p = pending.get(msg.machine);
        if (!p) {
          p = { ts: 0, v, cpu: [] };
          pending.set(msg.machine, p);
        } else {
          for (let i = 0; i < v.length; i++) if (v[i] !== null) p.v[i] = v[i];
        }
        p.ts = msg.ts;
        if (v[0] !== null) p.cpu.push(v[0]);
        break;
      }
      case "machine":
      case "alert":
        events.push(msg);
        break;
    }
  };
  ws.onclose = () => {
    const wait = delay;
    delay = Math.min(delay * 2, 5000);
    status("down", "Disconnected — reconnecting in " + Math.ceil(wait / 1000) + " s");
    setTimeout(connect, wait);
  };
}

function passThrough(msg) {
  switch (msg.type) {
    case "snapshot":
      postMessage({ type: "snapshot", machine: (msg.machines || []).find((m) => m.id === only) || null });
      break;
    case "metrics":
    case "processes":
      if (msg.machine === only) postMessage(msg);
      break;
    case "machine":
      if (msg.machine && msg.machine.id === only) postMessage(msg);
      break;
    case "alert":
      postMessage(msg);
      break;
  }
}

function flush() {
  if (pending.size === 0 && events.length === 0) return;
  const ups = [];
  for (const [id, p] of pending) ups.push([id, p.ts, p.v, p.cpu]);
  pending = new Map();
  postMessage({ type: "batch", ups, events });
  events = [];
}

onmessage = (e) => {
  if (mode) return;
  mode = e.data.mode;
  only = e.data.id;
  if (mode === "overview") setInterval(flush, FLUSH_MS);
  connect();
};
