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
// ctx: {machine (API object), metrics ([{name, labels, value}], latest),
//        has(name), values(name, label) → sorted distinct label values}.
//
// Deep metrics (services, SMART, temperatures, GPU, containers, top
// processes) are added here as one file each when their collectors land.
import { cpu, memory, load, filesystems, disks, network, processes } from "./core.js";

export const SECTIONS = [cpu, memory, load, filesystems, disks, network, processes];
