// The alerts page: firing, pending and resolved alerts with filters, live
// over the hub's alert events; admins acknowledge and silence from here.
// Rows are kept per alert id and updated in place, so live events do not
// steal the keyboard focus or close an open form.
import { h, lines, machineURL } from "../dom.js";
import * as fmt from "../format.js";
import { api } from "../session.js";
import {
  access, hint, pageHead, sevChip, labelChips, ms, val, when, select, errorBox, showError, errText, openAlertFeed, publishAlert, publishFiring, flashLine, localInput,
} from "./alerting.js";

const TABS = [["firing", "Firing"], ["pending", "Pending"], ["history", "History"]];
const SEV_RANK = { critical: 0, warning: 1 };

const state = { tab: "firing", machine: "", rule: "", severity: "" };
const active = new Map(); // id → alert (firing or pending)
let resolved = null; // resolved alerts, newest first; null until loaded
let historyGen = 0;
let rules = []; // for the rule filter
let machineIds = []; // for the machine filter
let filtersLoaded = false;
let canWrite = false;
let els = {};
const rows = new Map(); // alert id → {tr, a, form}
let frame = 0;

export async function start(main) {
  document.title = "Alerts — sysmonstm";
  readURL();
  const who = await access();
  canWrite = who.canWrite;
  main.replaceChildren(build());
  openAlertFeed(onAlert, () => { loadActive(); if (resolved) loadHistory(); });
  loadActive();
  if (state.tab === "history") loadHistory();
  loadFilters();
  setInterval(tickAges, 1000);
}

function build() {
  const tabs = h("div", { class: "al-tabs", attrs: { role: "tablist", "aria-label": "Alert state" } });
  els.tabs = TABS.map(([key, label]) => {
    const n = h("span", { class: "al-count" });
    const b = h("button", {
      type: "button", class: "al-tab", id: "tab-" + key, dataset: { tab: key },
      attrs: { role: "tab", "aria-controls": "alerts-panel" },
      on: { click: () => setTab(key), keydown: onTabKey },
    }, label, " ", n);
    b._n = n;
    tabs.append(b);
    return b;
  });
  els.machine = select([["", "All machines"]], "", { id: "f-machine", on: { change: () => setFilter("machine", els.machine.value) } });
  els.rule = select([["", "All rules"]], "", { id: "f-rule", on: { change: () => setFilter("rule", els.rule.value) } });
  els.severity = select([["", "All severities"], ["critical", "Critical"], ["warning", "Warning"]], state.severity,
    { id: "f-severity", on: { change: () => setFilter("severity", els.severity.value) } });
  ensureOption(els.machine, state.machine);
  ensureOption(els.rule, state.rule);
  const filters = h("div", { class: "toolbar al-filters" },
    h("label", { class: "field" }, h("span", { text: "Machine" }), els.machine),
    h("label", { class: "field" }, h("span", { text: "Rule" }), els.rule),
    h("label", { class: "field" }, h("span", { text: "Severity" }), els.severity));
  els.error = errorBox();
  els.headRow = h("tr");
  els.body = h("tbody");
  els.empty = h("p", { class: "empty muted", hidden: true });
  els.table = h("table", { class: "dtable al-table", id: "alerts-table" }, h("thead", {}, els.headRow), els.body);
  els.panel = h("div", { class: "al-panel", id: "alerts-panel", attrs: { role: "tabpanel" } },
    h("div", { class: "dtable-wrap" }, els.table), els.empty);
  return h("div", { class: "alerts-page" },
    pageHead("Alerts", h("a", { href: "/rules", text: "Rules" }), h("a", { href: "/silences", text: "Silences" }), h("a", { href: "/notifiers", text: "Notifiers" })),
    canWrite ? null : hint(),
    tabs, filters, els.error, els.panel);
}

function ensureOption(sel, v) {
  if (v && ![...sel.options].some((o) => o.value === v)) sel.append(h("option", { value: v, text: v }));
  sel.value = v;
}

function onTabKey(e) {
  const i = TABS.findIndex(([k]) => k === state.tab);
  let j = -1;
  if (e.key === "ArrowRight") j = (i + 1) % TABS.length;
  else if (e.key === "ArrowLeft") j = (i + TABS.length - 1) % TABS.length;
  else if (e.key === "Home") j = 0;
  else if (e.key === "End") j = TABS.length - 1;
  if (j < 0) return;
  e.preventDefault();
  setTab(TABS[j][0]);
  els.tabs[j].focus();
}

function setTab(key) {
  if (state.tab === key) return;
  state.tab = key;
  writeURL();
  if (key === "history") loadHistory();
  schedule();
}

function setFilter(k, v) {
  state[k] = v;
  writeURL();
  if (state.tab === "history" || resolved) loadHistory();
  schedule();
}

// --- data ----------------------------------------------------------------------

let activeGen = 0;
const buffers = new Set(); // per load in flight: the alert events it may have missed

// loadActive replaces the firing and pending alerts with the hub's list,
// then replays the events that came while it loaded (onAlert keeps the
// newer of two states by updated_at).
async function loadActive() {
  const my = ++activeGen;
  const missed = [];
  buffers.add(missed);
  let list;
  try {
    list = (await api("GET", "/api/alerts")) || [];
  } catch (err) {
    buffers.delete(missed);
    if (my === activeGen) showError(els.error, err.status === 404 ? "Alerting is not enabled on this hub." : "Could not load alerts: " + errText(err));
    return;
  }
  buffers.delete(missed);
  if (my !== activeGen) return; // a newer load answers
  showError(els.error, "");
  active.clear();
  for (const a of list) if (a.state === "firing" || a.state === "pending") active.set(String(a.id), a);
  for (const a of missed) onAlert(a);
  publishFiring([...active.values()]);
  schedule();
}

async function loadHistory() {
  const my = ++historyGen;
  const p = new URLSearchParams({ state: "resolved" });
  if (state.machine) p.set("machine", state.machine);
  if (state.rule) p.set("rule", state.rule);
  if (state.severity) p.set("severity", state.severity);
  try {
    const list = await api("GET", "/api/alerts?" + p);
    if (my !== historyGen) return;
    resolved = (list || []).filter((a) => a.state === "resolved");
    sortHistory();
  } catch (err) {
    if (my !== historyGen) return;
    resolved = [];
    showError(els.error, "Could not load the alert history: " + errText(err));
  }
  schedule();
}

function sortHistory() {
  resolved.sort((a, b) => (ms(b.resolved_at) || ms(b.updated_at)) - (ms(a.resolved_at) || ms(a.updated_at)));
}

async function loadFilters() {
  try {
    rules = (await api("GET", "/api/rules")) || [];
  } catch {
    rules = [];
  }
  try {
    const res = await fetch("/api/machines");
    machineIds = res.ok ? (await res.json()).map((m) => String(m.id)) : [];
  } catch {
    machineIds = [];
  }
  filtersLoaded = true;
  fillFilters();
}

function fillFilters() {
  const ids = new Set(machineIds);
  for (const a of active.values()) ids.add(a.machine);
  if (resolved) for (const a of resolved) ids.add(a.machine);
  const sorted = [...ids].filter((x) => x != null).sort().slice(0, 5000);
  els.machine.replaceChildren(h("option", { value: "", text: "All machines" }), ...sorted.map((id) => h("option", { value: id, text: id })));
  ensureOption(els.machine, state.machine);
  const rs = [...rules].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  els.rule.replaceChildren(h("option", { value: "", text: "All rules" }), ...rs.map((r) => h("option", { value: r.id, text: r.name })));
  ensureOption(els.rule, state.rule);
}

function onAlert(a) {
  if (!a || a.id == null) return;
  for (const b of buffers) b.push(a);
  const id = String(a.id);
  const cur = active.get(id);
  if (cur && ms(cur.updated_at) > ms(a.updated_at)) return; // an older state
  if (a.state === "firing" || a.state === "pending") {
    active.set(id, a);
    if (resolved) resolved = resolved.filter((x) => String(x.id) !== id);
  } else {
    active.delete(id);
    if (resolved && a.state === "resolved") {
      resolved = resolved.filter((x) => String(x.id) !== id);
      resolved.unshift(a);
    }
  }
  schedule();
}

// apply takes an alert an ack call answered with (or reloads when the
// answer was empty).
function apply(a, fallbackID) {
  if (a && a.id != null) {
    publishAlert(a);
    onAlert(a);
  } else {
    const r = rows.get(fallbackID);
    if (r) r.a = null; // force a redraw after the reload
    loadActive();
  }
}

// --- view ------------------------------------------------------------------------

function matches(a) {
  return (!state.machine || a.machine === state.machine) && (!state.rule || a.rule_id === state.rule) &&
    (!state.severity || a.severity === state.severity);
}

function visible() {
  if (state.tab === "history") return (resolved || []).filter(matches);
  const list = [...active.values()].filter((a) => a.state === state.tab && matches(a));
  list.sort((a, b) => (SEV_RANK[a.severity] ?? 2) - (SEV_RANK[b.severity] ?? 2) || since(b) - since(a) ||
    (a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0));
  return list;
}

function since(a) {
  return a.state === "firing" ? ms(a.fired_at) || ms(a.started_at) : ms(a.started_at);
}

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

const HEADS = {
  active: ["Severity", "Rule", "Machine", "Series", "Value", "Since", "Acknowledged"],
  history: ["Severity", "Rule", "Machine", "Series", "Value", "Fired", "Resolved", "Duration", "Acknowledged"],
};

function render() {
  frame = 0;
  const hist = state.tab === "history";
  // Tabs and counts.
  let nf = 0, np = 0;
  for (const a of active.values()) if (matches(a)) { if (a.state === "firing") nf++; else np++; }
  for (const b of els.tabs) {
    const on = b.dataset.tab === state.tab;
    b.setAttribute("aria-selected", on ? "true" : "false");
    b.tabIndex = on ? 0 : -1;
    b.classList.toggle("on", on);
    const n = b.dataset.tab === "firing" ? nf : b.dataset.tab === "pending" ? np : null;
    b._n.textContent = n == null ? "" : String(n);
    b._n.hidden = n == null;
  }
  els.panel.setAttribute("aria-labelledby", "tab-" + state.tab);
  // Header (per mode).
  const mode = (hist ? "history" : "active") + (canWrite && !hist ? "+w" : "");
  if (els.headMode !== mode) {
    els.headMode = mode;
    const heads = [...HEADS[hist ? "history" : "active"]];
    if (canWrite && !hist) heads.push("Actions");
    els.headRow.replaceChildren(...heads.map((t) => h("th", { text: t, attrs: { scope: "col" } })));
    for (const r of rows.values()) r.a = null; // cells differ per mode
  }
  const list = visible();
  const keep = new Set();
  const nodes = [];
  const now = Date.now();
  for (const a of list) {
    const id = String(a.id);
    keep.add(id);
    let r = rows.get(id);
    if (!r) {
      r = { tr: h("tr", { dataset: { id } }), a: null, form: null };
      rows.set(id, r);
    }
    if (r.a !== a) {
      r.a = a;
      fillRow(r, a, hist, now);
    }
    nodes.push(r.tr);
    if (r.form) nodes.push(r.form);
  }
  for (const id of rows.keys()) if (!keep.has(id)) rows.delete(id);
  const cur = els.body.children;
  let same = cur.length === nodes.length;
  for (let i = 0; same && i < nodes.length; i++) same = cur[i] === nodes[i];
  if (!same) els.body.replaceChildren(...nodes);
  els.table.hidden = list.length === 0;
  els.empty.hidden = list.length > 0;
  const filtered = state.machine || state.rule || state.severity ? " match the filters" : "";
  els.empty.textContent = hist ? (resolved ? "No resolved alerts" + (filtered ? filtered : " yet") + "." : "Loading…")
    : "No " + state.tab + " alerts" + (filtered || " right now") + ".";
  if (filtersLoaded) maybeRefillFilters();
}

let filterSize = -1;
function maybeRefillFilters() {
  const n = active.size + (resolved ? resolved.length : 0);
  if (n !== filterSize) {
    filterSize = n;
    fillFilters();
  }
}

function fillRow(r, a, hist, now) {
  const focused = r.tr.contains(document.activeElement) ? document.activeElement.dataset.act : null;
  const td = (...kids) => h("td", {}, ...kids);
  const ruleCell = td(h("a", { href: "/rules?edit=" + encodeURIComponent(a.rule_id || ""), class: "name", text: a.rule_name || a.rule_id || "?" }));
  if (a.description) ruleCell.append(h("div", { class: "al-desc muted" }, ...lines(a.description)));
  const machineCell = td(a.machine != null && a.machine !== "" ? h("a", { href: machineURL(a.machine), class: "al-machine", text: a.machine }) : "–");
  const series = td(a.metric ? h("span", { class: "mono", text: a.metric }) : null, labelChips(a.labels));
  // Active alerts show the latest value; offline alerts' value is the
  // seconds without data.
  const v = a.state !== "resolved" && a.last_value != null ? a.last_value : a.value;
  const value = td(a.kind === "offline" ? "no data for " + fmt.duration(v) : val(v) + (a.op ? " " + a.op + " " + val(a.threshold) : ""));
  value.className = "num";
  const cells = [td(sevChip(a.severity)), ruleCell, machineCell, series, value];
  if (hist) {
    const f = ms(a.fired_at) || ms(a.started_at), t = ms(a.resolved_at);
    cells.push(td(timeSpan(f, now)), td(timeSpan(t, now)), td(f && t ? fmt.duration((t - f) / 1000) : "–"));
  } else {
    cells.push(td(timeSpan(since(a), now, a.state === "firing" ? "firing since " : "pending since ")));
  }
  cells.push(ackCell(a));
  if (canWrite && !hist) cells.push(actions(r, a));
  r.tr.replaceChildren(...cells);
  r.tr.className = "al-row st-" + a.state + (a.acknowledged ? " acked" : "") + (a.silenced ? " silenced" : "");
  if (focused) {
    const b = r.tr.querySelector('[data-act="' + focused + '"]') || r.tr.querySelector("[data-act]");
    if (b) b.focus();
  }
}

function timeSpan(t, now, prefix) {
  const s = when(t, now);
  if (t) {
    s.dataset.t = String(t);
    if (prefix) s.title = prefix + fmt.time(t);
  }
  return s;
}

function tickAges() {
  const now = Date.now();
  for (const s of els.body.querySelectorAll(".al-when[data-t]")) {
    const t = fmt.ago(Number(s.dataset.t), now);
    if (s.textContent !== t) s.textContent = t;
  }
}

function ackCell(a) {
  const td = h("td", { class: "al-ack" });
  if (a.acknowledged) {
    const k = a.ack || {};
    const at = ms(k.at);
    td.append(h("span", { class: "al-acked", text: "acknowledged by " + (k.by || "?") }));
    if (at) td.append(" · ", when(at));
    if (k.comment) td.append(h("div", { class: "al-comment muted", text: "“" + k.comment + "”" }));
  } else td.append(h("span", { class: "muted", text: "–" }));
  if (a.silenced) td.append(" ", h("a", { href: "/silences", class: "al-tag silenced", text: "silenced" }));
  return td;
}

function actions(r, a) {
  const td = h("td", { class: "al-actions" });
  const id = String(a.id);
  if (a.acknowledged) {
    td.append(h("button", { type: "button", class: "btn", text: "Un-ack", dataset: { act: "unack" }, on: { click: () => unack(id) } }));
  } else {
    td.append(h("button", { type: "button", class: "btn", text: "Ack", dataset: { act: "ack" }, on: { click: () => openForm(r, "ack") } }));
  }
  td.append(" ", h("button", { type: "button", class: "btn", text: "Silence…", dataset: { act: "silence" }, on: { click: () => openForm(r, "silence") } }));
  return td;
}

// --- ack and silence forms ---------------------------------------------------------

function openForm(r, kind) {
  if (r.form && r.form.dataset.kind === kind) {
    closeForm(r);
    return;
  }
  const cols = els.headRow.children.length;
  const body = kind === "ack" ? ackForm(r) : silenceForm(r);
  r.form = h("tr", { class: "al-formrow", dataset: { kind } }, h("td", { attrs: { colspan: String(cols) } }, body));
  schedule();
  requestAnimationFrame(() => {
    const f = r.form && r.form.querySelector("input, select");
    if (f) f.focus();
  });
}

function closeForm(r, focusAct) {
  r.form = null;
  schedule();
  if (focusAct) requestAnimationFrame(() => { const b = r.tr.querySelector('[data-act="' + focusAct + '"]'); if (b) b.focus(); });
}

function ackForm(r) {
  const id = String(r.a.id);
  const comment = h("input", { type: "text", maxLength: 1000, placeholder: "optional, e.g. looking into it", attrs: { "aria-label": "Acknowledgement comment" } });
  const err = errorBox();
  const submit = h("button", { type: "submit", class: "btn primary", text: "Acknowledge" });
  const form = h("form", { class: "al-inline", on: {
    submit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      try {
        const a = await api("POST", "/api/alerts/" + encodeURIComponent(id) + "/ack", { comment: comment.value.trim() });
        r.form = null;
        apply(a, id);
      } catch (ex) {
        showError(err, "Could not acknowledge: " + errText(ex));
        submit.disabled = false;
      }
    },
    keydown: (e) => { if (e.key === "Escape") closeForm(r, "ack"); },
  } },
  h("label", { class: "al-inl" }, h("span", { text: "Comment" }), comment), submit,
  h("button", { type: "button", class: "btn", text: "Cancel", on: { click: () => closeForm(r, "ack") } }), err);
  return form;
}

async function unack(id) {
  try {
    const a = await api("DELETE", "/api/alerts/" + encodeURIComponent(id) + "/ack");
    apply(a, id);
  } catch (ex) {
    showError(els.error, "Could not remove the acknowledgement: " + errText(ex));
  }
}

const DURATIONS = [["1h", "1 h"], ["4h", "4 h"], ["24h", "24 h"], ["custom", "Until…"]];

function silenceForm(r) {
  const a = r.a;
  const name = "sd-" + String(a.id).replace(/[^A-Za-z0-9_-]/g, "_");
  const radios = DURATIONS.map(([v, t], i) => {
    const input = h("input", { type: "radio", name, value: v, checked: i === 1 });
    return h("label", { class: "al-radio" }, input, " " + t);
  });
  const until = h("input", { type: "datetime-local", attrs: { "aria-label": "Silence until", step: "60" }, hidden: true });
  const hasLabels = a.labels && Object.keys(a.labels).length > 0;
  const series = hasLabels ? h("input", { type: "checkbox" }) : null;
  const comment = h("input", { type: "text", maxLength: 1000, placeholder: "why, e.g. maintenance", attrs: { "aria-label": "Silence comment" } });
  const err = errorBox();
  const submit = h("button", { type: "submit", class: "btn primary", text: "Create silence" });
  const choice = () => { const c = radios.map((l) => l.firstChild).find((x) => x.checked); return c ? c.value : "4h"; };
  const form = h("form", { class: "al-inline al-silence", on: {
    change: () => {
      until.hidden = choice() !== "custom";
      if (!until.hidden && !until.value) until.value = localInput(Date.now() + 2 * 3600e3);
    },
    submit: async (e) => {
      e.preventDefault();
      const body = { matchers: { rule_id: a.rule_id, machine: a.machine }, comment: comment.value.trim() };
      if (series && series.checked) body.matchers.labels = a.labels;
      const c = choice();
      if (c === "custom") {
        const t = Date.parse(until.value);
        if (!(t > Date.now())) {
          showError(err, "until: pick a time in the future");
          until.focus();
          return;
        }
        body.ends_at = new Date(t).toISOString();
      } else body.duration = c;
      submit.disabled = true;
      try {
        const s = await api("POST", "/api/silences", body);
        r.form = null;
        showError(els.error, "");
        schedule();
        setTimeout(loadActive, 500); // the engine marks the alert silenced
        flash("Silenced " + (a.rule_name || "rule") + " on " + a.machine + (s && s.ends_at ? " until " + fmt.time(ms(s.ends_at)) : "") + ".");
      } catch (ex) {
        showError(err, "Could not create the silence: " + errText(ex));
        submit.disabled = false;
      }
    },
    keydown: (e) => { if (e.key === "Escape") closeForm(r, "silence"); },
  } },
  h("span", { class: "al-what" }, "Silence ", h("strong", { text: a.rule_name || a.rule_id || "rule" }), " on ", h("strong", { text: a.machine })),
  h("fieldset", { class: "al-radios" }, h("legend", { text: "For" }), ...radios, until),
  series ? h("label", { class: "al-radio", title: Object.keys(a.labels).sort().map((k) => k + "=" + a.labels[k]).join(" ") }, series, " only this series") : null,
  h("label", { class: "al-inl" }, h("span", { text: "Comment" }), comment), submit,
  h("button", { type: "button", class: "btn", text: "Cancel", on: { click: () => closeForm(r, "silence") } }), err);
  return form;
}

function flash(text) {
  if (!els.flash) els.panel.before((els.flash = flashLine()));
  els.flash.show(text);
}


// --- URL state ---------------------------------------------------------------------------

function readURL() {
  const p = new URLSearchParams(location.search);
  const tab = p.get("tab");
  state.tab = TABS.some(([k]) => k === tab) ? tab : "firing";
  state.machine = p.get("machine") || "";
  state.rule = p.get("rule") || "";
  const sev = p.get("severity");
  state.severity = sev === "critical" || sev === "warning" ? sev : "";
}

function writeURL() {
  const p = new URLSearchParams();
  if (state.tab !== "firing") p.set("tab", state.tab);
  if (state.machine) p.set("machine", state.machine);
  if (state.rule) p.set("rule", state.rule);
  if (state.severity) p.set("severity", state.severity);
  const s = p.toString();
  window.history.replaceState(null, "", s ? "?" + s : location.pathname);
}

