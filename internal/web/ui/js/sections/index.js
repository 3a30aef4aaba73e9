// The machine page's sections, in page order. A section is a small module
// exporting {id, title, charts(ctx)} and/or {render(el, ctx)}:
//
//   charts(ctx) → chart specs ([] hides the section). A spec is
//     {key, title, sub, unit: "pct"|"bytes"|"rate"|"temp"|"secs"|"num",
//      max, noBand, lines: [{label, metric, match: {label: value}, dash}]};
//     the page fetches each metric's history once per range and appends the
//     live values, so a section never talks to the API itself.
//   render(el, ctx) fills el with anything else (tables, lists) and is called
//     again with a fresh ctx on every live update; build DOM with h() and put
//     agent strings in with textContent only.
//
//   onProcesses(el, machine) (optional) is called when a "processes" or
//     "machine" WebSocket event changed machine.processes / machine.online.
//
// ctx: {machine (API object), metrics ([{name, labels, value}], latest),
//        has(name), values(name, label) → sorted distinct label values}.
// ctx.metrics is one batch (a live event holds only what that agent tick or
// ingest request sent): deep.js's deep(ctx) keeps the deep series between
// events. A render-only section hides itself with show(el, false).
//
// Deep sections: top processes, services (systemd), disk health (SMART /
// NVMe), sensors (hwmon, thermal, fans, battery, PSI), GPUs, containers.
import { cpu, memory, load, filesystems, disks, network, processes } from "./core.js";
import { topProcesses } from "./procs.js";
import { services } from "./services.js";
import { diskHealth } from "./smart.js";
import { sensors } from "./sensors.js";
import { gpus } from "./gpus.js";
import { containers } from "./containers.js";

export const SECTIONS = [cpu, memory, load, filesystems, disks, network, processes];
SECTIONS.push(topProcesses);
SECTIONS.push(services);
SECTIONS.push(diskHealth);
SECTIONS.push(sensors);
SECTIONS.push(gpus);
SECTIONS.push(containers);
