// The rules page: every alert rule as one table row with its live state
// counts, and an editor with every field, client-side hints, the server's
// validation message beside the field it names, and a live preview that asks
// the hub which machines the rule would match right now.
import { h, lines } from "../dom.js";
import { api } from "../session.js";
import {
  access, hint, pageHead, sevChip, tag, labelChips, val, field, fieldError, select, errorBox, showError, errText,
  checkDuration, parseKV, kvText, listText, parseList, ruleExpr, machinesText, confirmButton, openAlertFeed, byName,
  flashLine, thead, group,
} from "./alerting.js";

const PREVIEW_MS = 400;
const FIELDS = ["name", "kind", "metric", "matchers", "aggregation", "window", "op", "threshold", "clear", "for",
  "machines", "machine_labels", "severity", "description", "notifiers", "enabled"];

let rules = [];
let notifiers = [];
let metricNames = [];
const counts = new Map(); // rule id → {firing, pending}
const alertState = new Map(); // alert id → [rule id, state]
let canWrite = false;
let els = {};
let editor = null; // the open editor

export async function start(main) {
  document.title = "Rules — sysmonstm";
  const who = await access();
  canWrite = who.canWrite;
  els.newBtn = canWrite ? h("button", { type: "button", class: "btn primary", id: "new-rule", text: "New rule", on: { click: () => openEditor(null) } }) : null;
  els.error = errorBox();
  els.flash = flashLine();
  els.editor = h("div", { class: "al-editor-wrap" });
  els.body = h("tbody");
  els.table = h("table", { class: "dtable al-table", id: "rules-table" },
    thead(["Enabled", "Name", "Expression", "Machines", "Severity", "Firing / pending", ""]),
    els.body);
  els.empty = h("p", { class: "empty muted", hidden: true, text: "No rules yet." });
  main.replaceChildren(h("div", { class: "rules-page" },
    pageHead("Alert rules", els.newBtn, h("a", { href: "/alerts", text: "Alerts" }), h("a", { href: "/silences", text: "Silences" })),
    canWrite ? null : hint(),
    els.error, els.flash, els.editor,
    h("div", { class: "dtable-wrap" }, els.table), els.empty));
  openAlertFeed(onAlert, loadCounts);
  await Promise.all([loadRules(), loadNotifiers(), loadCounts()]);
  const p = new URLSearchParams(location.search);
  if (p.get("edit")) {
    const r = rules.find((x) => x.id === p.get("edit"));
    if (r) openEditor(r);
    else showError(els.error, "No rule with id " + p.get("edit") + ".");
  } else if (p.get("new") && canWrite) openEditor(null);
  loadMetricNames();
}

// --- data ---------------------------------------------------------------------------

async function loadRules() {
  try {
    rules = ((await api("GET", "/api/rules")) || []).sort(byName);
    showError(els.error, "");
  } catch (err) {
    showError(els.error, err.status === 404 ? "Alerting is not enabled on this hub." : "Could not load rules: " + errText(err));
  }
  renderTable();
}

async function loadNotifiers() {
  try {
    notifiers = ((await api("GET", "/api/notifiers")) || []).sort(byName);
  } catch {
    notifiers = [];
  }
}

async function loadCounts() {
  try {
    const list = (await api("GET", "/api/alerts")) || [];
    alertState.clear();
    for (const a of list) alertState.set(String(a.id), [a.rule_id, a.state]);
  } catch {
    return;
  }
  recount();
}

function onAlert(a) {
  if (!a || a.id == null) return;
  if (a.state === "firing" || a.state === "pending") alertState.set(String(a.id), [a.rule_id, a.state]);
  else alertState.delete(String(a.id));
  recount();
}

function recount() {
  counts.clear();
  for (const [rid, st] of alertState.values()) {
    const c = counts.get(rid) || { firing: 0, pending: 0 };
    c[st]++;
    counts.set(rid, c);
  }
  for (const tr of els.body.children) {
    const c = counts.get(tr.dataset.id) || { firing: 0, pending: 0 };
    const cell = tr._counts;
    if (cell) {
      cell.replaceChildren(
        h("a", { href: "/alerts?rule=" + encodeURIComponent(tr.dataset.id), class: c.firing ? "al-n crit" : "al-n", text: String(c.firing), title: "firing" }),
        " / ",
        h("a", { href: "/alerts?tab=pending&rule=" + encodeURIComponent(tr.dataset.id), class: c.pending ? "al-n warn" : "al-n", text: String(c.pending), title: "pending" }));
    }
  }
}

// loadMetricNames fills the metric suggestions from one online machine.
async function loadMetricNames() {
  try {
    const res = await fetch("/api/machines");
    if (!res.ok) return;
    const ms = await res.json();
    const m = ms.find((x) => x.online) || ms[0];
    if (!m) return;
    const r2 = await fetch("/api/machines/" + encodeURIComponent(m.id));
    if (!r2.ok) return;
    const d = await r2.json();
    metricNames = [...new Set((d.metrics || []).map((x) => x.name))].sort();
    if (editor) editor.fillMetrics();
  } catch {
    // suggestions only
  }
}

// --- table ------------------------------------------------------------------------------

function readOnly(r) {
  return !canWrite || !!r.provisioned;
}

function renderTable() {
  const rowsOut = rules.map((r) => {
    const ro = readOnly(r);
    const toggle = h("input", {
      type: "checkbox", checked: !!r.enabled, disabled: ro, class: "al-toggle",
      attrs: { "aria-label": (r.enabled ? "Disable" : "Enable") + " rule " + r.name, role: "switch" },
      on: { change: () => setEnabled(r, toggle) },
    });
    const name = h("td", {}, h("span", { class: "name", text: r.name }));
    if (r.builtin) name.append(" ", tag("builtin"));
    if (r.provisioned) name.append(" ", tag("provisioned", "prov"));
    if (!r.enabled) name.append(" ", tag("disabled", "off"));
    if (r.description) name.append(h("div", { class: "al-desc muted" }, ...lines(r.description)));
    const tr = h("tr", { dataset: { id: r.id }, class: r.enabled ? "" : "al-disabled" },
      h("td", {}, toggle), name,
      h("td", { class: "mono al-expr", text: ruleExpr(r), title: ruleExpr(r) }),
      h("td", { text: machinesText(r) }),
      h("td", {}, sevChip(r.severity)));
    tr._counts = h("td", { class: "num" });
    tr.append(tr._counts);
    const act = h("td", { class: "al-actions" },
      h("button", { type: "button", class: "btn", text: ro ? "View" : "Edit", dataset: { act: "edit" }, on: { click: () => openEditor(r) } }));
    if (!ro) act.append(" ", confirmButton("Delete", "Really delete?", () => remove(r)));
    tr.append(act);
    return tr;
  });
  els.body.replaceChildren(...rowsOut);
  els.table.hidden = rules.length === 0;
  els.empty.hidden = rules.length > 0;
  recount();
}

async function setEnabled(r, box) {
  const want = box.checked;
  box.disabled = true;
  try {
    const saved = await api("PUT", "/api/rules/" + encodeURIComponent(r.id), { ...writable(r), enabled: want });
    Object.assign(r, saved && saved.id ? saved : { enabled: want });
    els.flash.show((want ? "Enabled " : "Disabled ") + r.name + ".");
    renderTable();
  } catch (err) {
    box.checked = !want;
    box.disabled = false;
    showError(els.error, "Could not change " + r.name + ": " + errText(err));
  }
}

async function remove(r) {
  try {
    await api("DELETE", "/api/rules/" + encodeURIComponent(r.id));
    if (editor && editor.rule && editor.rule.id === r.id) closeEditor();
    els.flash.show("Deleted rule " + r.name + ".");
    await loadRules();
  } catch (err) {
    showError(els.error, "Could not delete " + r.name + ": " + errText(err));
  }
}


// writable picks the fields a client may send.
function writable(r) {
  const out = {};
  for (const k of FIELDS) if (r[k] !== undefined) out[k] = r[k];
  return out;
}

// --- editor --------------------------------------------------------------------------------

function openEditor(rule) {
  closeEditor();
  editor = new Editor(rule);
  els.editor.replaceChildren(editor.el);
  const p = new URLSearchParams();
  if (rule) p.set("edit", rule.id);
  else p.set("new", "1");
  window.history.replaceState(null, "", "?" + p);
  editor.focus();
  editor.preview();
}

function closeEditor() {
  if (!editor) return;
  editor.dispose();
  editor = null;
  els.editor.replaceChildren();
  window.history.replaceState(null, "", location.pathname);
}

const DEFAULTS = {
  name: "", kind: "threshold", metric: "", matchers: {}, machines: "*", machine_labels: {}, op: ">", threshold: 90, clear: null,
  for: "5m", aggregation: "last", window: "1m", severity: "warning", description: "", notifiers: [], enabled: true,
};

class Editor {
  constructor(rule) {
    this.rule = rule;
    this.ro = rule ? readOnly(rule) : !canWrite;
    this.seq = 0;
    this.timer = 0;
    const r = { ...DEFAULTS, ...(rule || {}) };
    const f = (this.f = {});
    const dis = this.ro;
    const text = (v, props) => h("input", { type: "text", value: v == null ? "" : String(v), disabled: dis, ...(props || {}) });

    f.name = field("Name", text(r.name, { id: "rule-name", maxLength: 200, required: true, placeholder: "e.g. High CPU" }));
    this.kindInputs = ["threshold", "offline"].map((k) => h("input", { type: "radio", name: "rule-kind", value: k, checked: r.kind === k, disabled: dis, id: "rule-kind-" + k }));
    f.kind = group(h("fieldset", { class: "al-field al-radios" }, h("legend", { text: "Kind" }),
      h("label", { class: "al-radio" }, this.kindInputs[0], " metric threshold"),
      h("label", { class: "al-radio" }, this.kindInputs[1], " machine offline")), this.kindInputs[0]);
    this.metricList = h("datalist", { id: "rule-metrics" });
    f.metric = field("Metric", text(r.metric, { id: "rule-metric", placeholder: "cpu_usage_percent", attrs: { list: "rule-metrics", autocomplete: "off", spellcheck: "false" } }), "the series name, as in the machine's metrics");
    f.matchers = field("Series labels", text(kvText(r.matchers), { id: "rule-matchers", placeholder: "cpu=total, mountpoint=/" }), "label=value, comma separated; empty: every series");
    f.aggregation = field("Aggregation", select([["last", "last value"], ["avg", "average"], ["max", "maximum"], ["min", "minimum"], ["increase", "increase (counters)"]], r.aggregation, { id: "rule-aggregation", disabled: dis }));
    f.window = field("Window", text(r.window, { id: "rule-window", placeholder: "1m" }), "the aggregation's time window");
    f.op = field("Condition", select([[">", ">"], [">=", "≥"], ["<", "<"], ["<=", "≤"]], r.op, { id: "rule-op", disabled: dis }));
    f.threshold = field("Threshold", h("input", { type: "number", step: "any", value: r.threshold == null ? "" : String(r.threshold), disabled: dis, id: "rule-threshold", required: true }));
    f.clear = field("Resolve at", h("input", { type: "number", step: "any", value: r.clear == null ? "" : String(r.clear), disabled: dis, id: "rule-clear" }), "optional hysteresis: resolves only past this value");
    f.for = field("For", text(r.for, { id: "rule-for", placeholder: "5m" }), "pending this long before it fires; 0s fires at once");
    const mtext = r.machines === "*" || r.machines == null ? "*" : listText(r.machines);
    f.machines = field("Machines", text(mtext, { id: "rule-machines", placeholder: "*" }), "* for all, or ids and globs: web-*, db-1");
    f.machine_labels = field("Machine labels", text(kvText(r.machine_labels), { id: "rule-machine-labels", placeholder: "env=prod" }), "only machines with these labels");
    f.severity = field("Severity", select([["warning", "warning"], ["critical", "critical"]], r.severity, { id: "rule-severity", disabled: dis }));
    f.description = field("Description", h("textarea", { rows: 2, maxLength: 2000, disabled: dis, id: "rule-description", value: r.description || "" }), "shown with the alert and in notifications");
    this.notifierBoxes = notifiers.map((n) => {
      const b = h("input", { type: "checkbox", value: n.id, checked: (r.notifiers || []).includes(n.id), disabled: dis });
      return h("label", { class: "al-radio" }, b, " " + n.name + " (" + n.type + ")");
    });
    f.notifiers = group(h("fieldset", { class: "al-field al-radios al-notifiers" }, h("legend", { text: "Notifiers" }),
      ...(this.notifierBoxes.length ? this.notifierBoxes : [h("span", { class: "muted al-small", text: "none configured" })])),
    this.notifierBoxes[0] ? this.notifierBoxes[0].firstChild : h("input"), "none checked: sent to the notifiers that route this severity");
    this.enabledBox = h("input", { type: "checkbox", checked: r.enabled !== false, disabled: dis, id: "rule-enabled" });
    f.enabled = group(h("div", { class: "al-field" }, h("label", { class: "al-radio" }, this.enabledBox, " enabled")), this.enabledBox);
    this.fillMetrics();

    this.error = errorBox();
    this.error.id = "rule-error";
    const buttons = h("div", { class: "al-buttons" });
    if (!this.ro) {
      this.saveBtn = h("button", { type: "submit", class: "btn primary", id: "rule-save", text: rule ? "Save" : "Create rule" });
      buttons.append(this.saveBtn);
    }
    buttons.append(h("button", { type: "button", class: "btn", id: "rule-cancel", text: this.ro ? "Close" : "Cancel", on: { click: closeEditor } }));
    if (rule && !this.ro) buttons.append(confirmButton("Delete", "Really delete?", () => remove(rule)));
    const note = rule && rule.provisioned ? h("p", { class: "muted", text: "Provisioned from the hub's configuration file: change it there." })
      : this.ro ? h("p", { class: "muted", text: "Read-only: log in as an admin to change this." }) : null;

    this.form = h("form", { class: "al-form", id: "rule-form", attrs: { "aria-label": rule ? "Edit rule" : "New rule", novalidate: "" }, on: {
      submit: (e) => { e.preventDefault(); this.save(); },
      input: () => this.changed(),
      change: () => this.changed(),
      keydown: (e) => { if (e.key === "Escape") closeEditor(); },
    } },
    h("h2", { text: rule ? (this.ro ? "Rule " : "Edit rule ") + rule.name : "New rule" }), note,
    h("div", { class: "al-grid" }, f.name, f.kind, f.metric, f.matchers, f.aggregation, f.window, f.op, f.threshold, f.clear, f.for,
      f.machines, f.machine_labels, f.severity, f.enabled, f.description, f.notifiers),
    this.metricList, this.error, buttons);

    this.pvStatus = h("p", { class: "al-pv-status muted", attrs: { "aria-live": "polite" } });
    this.pvNote = h("p", { class: "al-pv-note muted al-small", hidden: true });
    this.pvBody = h("tbody");
    this.pvTable = h("table", { class: "dtable al-pv-table", id: "rule-preview-table", hidden: true },
      thead(["Machine", "Series", "Value", "Now"]), this.pvBody);
    const pv = h("aside", { class: "al-preview", id: "rule-preview", attrs: { "aria-label": "Live preview" } },
      h("h2", { text: "Live preview" }),
      h("p", { class: "muted al-small", text: "Which machines this rule matches now, their current value, and whether it would fire (ignoring For)." }),
      this.pvStatus, this.pvNote, h("div", { class: "dtable-wrap" }, this.pvTable));
    this.el = h("section", { class: "al-editor" }, this.form, pv);
    this.showKind();
  }

  fillMetrics() {
    this.metricList.replaceChildren(...metricNames.map((n) => h("option", { value: n })));
  }

  kind() {
    return this.kindInputs[1].checked ? "offline" : "threshold";
  }

  showKind() {
    const th = this.kind() === "threshold";
    for (const k of ["metric", "matchers", "aggregation", "op", "threshold", "clear"]) this.f[k].hidden = !th;
    this.f.window.hidden = !th || this.f.aggregation._control.value === "last";
  }

  focus() {
    const c = this.f.name._control;
    if (!c.disabled) c.focus();
    else this.el.querySelector("#rule-cancel").focus();
    this.el.scrollIntoView({ block: "nearest" });
  }

  dispose() {
    clearTimeout(this.timer);
    this.seq++;
  }

  changed() {
    this.showKind();
    this.check(false);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.preview(), PREVIEW_MS);
  }

  // body reads the form into a rule; errors maps field → hint for what the
  // client can tell is wrong.
  body() {
    const f = this.f, errors = {};
    const v = (k) => f[k]._control.value.trim();
    const b = { name: v("name"), kind: this.kind(), severity: v("severity"), for: v("for") || "0s", description: f.description._control.value.trim(), enabled: this.enabledBox.checked };
    if (!b.name) errors.name = "name: required";
    const fe = checkDuration(b.for, "for");
    if (fe) errors.for = fe;
    const m = v("machines");
    b.machines = m === "" || m === "*" ? "*" : parseList(m);
    try {
      b.machine_labels = parseKV(v("machine_labels"), "machine labels");
    } catch (e) {
      errors.machine_labels = e.message;
    }
    b.notifiers = this.notifierBoxes.map((l) => l.firstChild).filter((x) => x.checked).map((x) => x.value);
    if (b.kind === "threshold") {
      b.metric = v("metric");
      if (!b.metric) errors.metric = "metric: required, e.g. cpu_usage_percent";
      else if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?$/.test(b.metric)) errors.metric = "metric: a name of letters, digits, _ and :, optionally with {label=\"value\"}";
      try {
        b.matchers = parseKV(v("matchers"), "series labels");
      } catch (e) {
        errors.matchers = e.message;
      }
      b.op = v("op");
      b.aggregation = v("aggregation");
      if (b.aggregation !== "last") {
        b.window = v("window") || "1m"; // "last" takes no window
        const we = checkDuration(b.window, "window");
        if (we) errors.window = we;
      }
      const t = v("threshold");
      b.threshold = Number(t);
      if (t === "" || !isFinite(b.threshold)) errors.threshold = "threshold: a number is required";
      const c = v("clear");
      b.clear = c === "" ? null : Number(c);
      if (c !== "" && !isFinite(b.clear)) errors.clear = "resolve at: a number, or empty";
    }
    return { b, errors };
  }

  // check shows the client-side hints and returns them; unless all is set,
  // empty fields (not reached yet) stay quiet.
  check(all) {
    const { errors } = this.body();
    for (const k of FIELDS) {
      const fld = this.f[k];
      if (!fld || !fld._msg) continue;
      const c = fld._control;
      const show = all || (c.value !== "" && c.value != null);
      fieldError(fld, show ? errors[k] || "" : "");
    }
    return errors;
  }

  async preview() {
    const { b, errors } = this.body();
    const my = ++this.seq;
    const bad = Object.values(errors);
    this.pvNote.hidden = true;
    if (bad.length) {
      this.pvStatus.textContent = "Fix the form to see a preview: " + bad[0];
      this.pvStatus.classList.remove("error");
      this.pvTable.hidden = true;
      return;
    }
    this.pvStatus.textContent = "Checking…";
    let res;
    try {
      res = await api("POST", "/api/rules/preview", b);
    } catch (err) {
      if (my !== this.seq) return;
      this.pvStatus.textContent = "Preview failed: " + errText(err);
      this.pvStatus.classList.add("error");
      this.pvTable.hidden = true;
      return;
    }
    if (my !== this.seq) return;
    this.pvStatus.classList.remove("error");
    const matches = (res && res.matches) || [];
    const fire = matches.filter((x) => x.state === "would fire").length;
    const n = res && res.machines != null ? res.machines : new Set(matches.map((x) => x.machine)).size;
    this.pvStatus.textContent = n + (n === 1 ? " machine" : " machines") + ", " + matches.length + (matches.length === 1 ? " series" : " series") +
      " · " + fire + " would fire" + (res && res.truncated ? " · list truncated" : "");
    // For windowed aggregations the hub says what the values are.
    this.pvNote.textContent = (res && res.note) || "";
    this.pvNote.hidden = !this.pvNote.textContent;
    this.pvBody.replaceChildren(...matches.map((x) => {
      const st = x.state === "would fire" ? "fire" : x.state === "ok" ? "ok" : "nodata";
      return h("tr", { class: "pv-" + st },
        h("td", { class: "name", text: x.machine }),
        h("td", {}, labelChips(x.labels)),
        h("td", { class: "num", text: val(x.value) }),
        h("td", {}, h("span", { class: "pv-state " + st, text: x.state })));
    }));
    this.pvTable.hidden = matches.length === 0;
  }

  async save() {
    const errors = this.check(true);
    const keys = Object.keys(errors);
    if (keys.length) {
      showError(this.error, errors[keys[0]]);
      this.f[keys[0]]._control.focus();
      return;
    }
    const { b } = this.body();
    this.saveBtn.disabled = true;
    showError(this.error, "");
    try {
      const saved = this.rule
        ? await api("PUT", "/api/rules/" + encodeURIComponent(this.rule.id), b)
        : await api("POST", "/api/rules", b);
      const name = (saved && saved.name) || b.name;
      closeEditor();
      els.flash.show((this.rule ? "Saved rule " : "Created rule ") + name + ".");
      await loadRules();
    } catch (err) {
      this.saveBtn.disabled = false;
      const msg = errText(err);
      showError(this.error, msg);
      // The hub names the field first ("threshold: …").
      const m = /^([a-z_]+)[:.[ ]/.exec(msg);
      const fld = m && this.f[m[1]];
      if (fld && fld._msg) {
        fieldError(fld, msg);
        if (!fld.hidden) fld._control.focus();
      }
    }
  }
}
