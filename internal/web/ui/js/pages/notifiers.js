// The notifiers page: every notification channel with its routing and
// delivery status, "Send test", and a create/edit form whose fields follow
// the type. The types and their fields come from the hub's channel table
// (GET /api/notifier-types), so a new channel type needs no change here.
// Secrets (URLs, tokens, passwords, header values) come back as
// "<redacted>": their inputs stay empty with a placeholder, and an untouched
// one sends "<redacted>" back, which keeps the stored secret.
import { h } from "../dom.js";
import * as fmt from "../format.js";
import { api } from "../session.js";
import {
  access, hint, pageHead, tag, ms, field, fieldError, select, errorBox, showError, errText, listText, parseList, confirmButton, byName,
  flashLine, thead, group,
} from "./alerting.js";

const REDACTED = "<redacted>";

// types is the hub's channel table: [{type, label, fields: [{name, label,
// kind, required, redacted, help, placeholder, default, min, max, options}]}]
// in the order the form offers them (docs/api.md, "Alerts").
let types = [];
let notifiers = [];
let canWrite = false;
let els = {};
let editor = null;
const testResults = new Map(); // notifier id → {ok, text, at}

export async function start(main) {
  document.title = "Notifiers — sysmonstm";
  const who = await access();
  canWrite = who.canWrite;
  els.error = errorBox();
  els.flash = flashLine();
  els.editor = h("div", {});
  els.body = h("tbody");
  els.table = h("table", { class: "dtable al-table", id: "notifiers-table" },
    thead(["Name", "Type", "Routes", "Target", "Status", ""]), els.body);
  els.empty = h("p", { class: "empty muted", hidden: true, text: "No notifiers yet: alerts only show on the dashboard." });
  main.replaceChildren(h("div", { class: "notifiers-page" },
    pageHead("Notifiers", canWrite ? h("button", { type: "button", class: "btn primary", id: "new-notifier", text: "New notifier", on: { click: () => openEditor(null) } }) : null,
      h("a", { href: "/rules", text: "Rules" }), h("a", { href: "/alerts", text: "Alerts" })),
    h("p", { class: "muted al-small", text: "A rule sends to the notifiers it names; a rule that names none sends to every notifier routing its severity." }),
    canWrite ? null : hint(),
    els.error, els.flash, els.editor,
    h("div", { class: "dtable-wrap" }, els.table), els.empty));
  await load();
  const edit = new URLSearchParams(location.search).get("edit");
  if (edit) {
    const n = notifiers.find((x) => x.id === edit);
    if (n) openEditor(n);
  }
  setInterval(() => { if (!document.hidden) load(); }, 30000);
}

async function load() {
  try {
    if (!types.length) types = (await api("GET", "/api/notifier-types")) || [];
    notifiers = ((await api("GET", "/api/notifiers")) || []).sort(byName);
    showError(els.error, "");
  } catch (err) {
    showError(els.error, err.status === 404 ? "Alerting is not enabled on this hub." : "Could not load notifiers: " + errText(err));
    return;
  }
  render();
}

function readOnly(n) {
  return !canWrite || !!n.provisioned;
}

function render() {
  const now = Date.now();
  els.body.replaceChildren(...notifiers.map((n) => {
    const name = h("td", {}, h("span", { class: "name", text: n.name }));
    if (n.provisioned) name.append(" ", tag("provisioned", "prov"));
    const sev = n.severities && n.severities.length ? n.severities.join(", ") : "only rules naming it";
    const target = n.to
      ? listText(n.to) + (n.smtp_host ? " via " + n.smtp_host + (n.smtp_port ? ":" + n.smtp_port : "") : "")
      : !n.url ? "" : n.url !== REDACTED ? n.url : "URL set (hidden)";
    const st = n.status || {};
    const status = h("td", { class: "al-nstatus" });
    const ok = ms(st.last_success), bad = ms(st.last_error_at);
    status.append(h("div", {}, h("span", { class: "muted", text: "last success " }), h("span", { text: ok ? fmt.ago(ok, now) : "never", title: ok ? fmt.time(ok) : "" })));
    if (st.last_error) {
      status.append(h("div", { class: "error" }, "last error" + (bad ? " " + fmt.ago(bad, now) : "") + ": ", h("span", { text: st.last_error })));
    }
    status.append(h("div", { class: "muted al-small", text: (st.sent || 0) + " sent, " + (st.failed || 0) + " failed" }));
    const tr = testResults.get(n.id);
    if (tr) status.append(h("div", { class: "al-test " + (tr.ok ? "ok" : "error"), attrs: { role: "status" }, text: tr.text }));
    const act = h("td", { class: "al-actions" });
    if (canWrite) act.append(h("button", { type: "button", class: "btn", text: "Send test", dataset: { act: "test" }, on: { click: (e) => sendTest(n, e.currentTarget) } }), " ");
    act.append(h("button", { type: "button", class: "btn", text: readOnly(n) ? "View" : "Edit", dataset: { act: "edit" }, on: { click: () => openEditor(n) } }));
    if (!readOnly(n)) act.append(" ", confirmButton("Delete", "Really delete?", () => remove(n)));
    return h("tr", { dataset: { id: n.id } }, name, h("td", { text: typeName(n.type) }), h("td", { text: sev }), h("td", { class: "al-target", text: target }), status, act);
  }));
  els.table.hidden = notifiers.length === 0;
  els.empty.hidden = notifiers.length > 0;
}

function typeOf(t) {
  return types.find((x) => x.type === t);
}

function typeName(t) {
  const x = typeOf(t);
  return x ? x.label : t;
}

async function sendTest(n, btn) {
  btn.disabled = true;
  btn.textContent = "Sending…";
  try {
    const res = await api("POST", "/api/notifiers/" + encodeURIComponent(n.id) + "/test");
    testResults.set(n.id, { ok: true, text: "Test sent" + (res && res.message ? ": " + res.message : "") + " (" + new Date().toLocaleTimeString() + ")" });
  } catch (err) {
    testResults.set(n.id, { ok: false, text: "Test failed: " + errText(err) });
  }
  await load();
  render();
  const b = els.body.querySelector('tr[data-id="' + CSS.escape(n.id) + '"] [data-act="test"]');
  if (b) b.focus();
}

async function remove(n) {
  try {
    await api("DELETE", "/api/notifiers/" + encodeURIComponent(n.id));
    if (editor && editor.n && editor.n.id === n.id) closeEditor();
    els.flash.show("Deleted notifier " + n.name + ".");
    await load();
  } catch (err) {
    showError(els.error, "Could not delete " + n.name + ": " + errText(err));
  }
}


// --- editor --------------------------------------------------------------------------

function openEditor(n) {
  closeEditor();
  if (!types.length) return; // load() has shown why
  editor = buildEditor(n);
  els.editor.replaceChildren(editor.el);
  window.history.replaceState(null, "", n ? "?edit=" + encodeURIComponent(n.id) : location.pathname);
  const first = editor.el.querySelector("input:not([disabled]), select:not([disabled])") || editor.el.querySelector("button");
  if (first) first.focus();
  editor.el.scrollIntoView({ block: "nearest" });
}

function closeEditor() {
  editor = null;
  els.editor.replaceChildren();
  window.history.replaceState(null, "", location.pathname);
}

// newValues is a new notifier: the first type, critical alerts, and every
// field's default.
function newValues() {
  const v = { type: types[0].type, severities: ["critical"] };
  for (const t of types) for (const d of t.fields) if (d.default != null && v[d.name] == null) v[d.name] = d.default;
  return v;
}

function buildEditor(n) {
  const ro = n ? readOnly(n) : !canWrite;
  const v = n || newValues();
  const dis = ro;
  const input = (id, value, props) => h("input", { type: "text", id, value: value == null ? "" : String(value), disabled: dis, ...(props || {}) });
  const secret = (id, value, props) => {
    const kept = value === REDACTED;
    return input(id, kept ? "" : value, { ...(props || {}), placeholder: kept ? REDACTED + " (unchanged)" : (props && props.placeholder) || "", dataset: { kept: kept ? "1" : "" } });
  };
  // control builds the form field of descriptor d, holding value.
  const control = (d, value) => {
    const id = "n-" + d.name.replace(/_/g, "-");
    const ph = d.placeholder || "";
    switch (d.kind) {
      case "url":
        return field(d.label, (d.redacted ? secret : input)(id, value, { type: "url", placeholder: ph, attrs: { autocomplete: "off", spellcheck: "false" } }), d.help);
      case "secret":
        return field(d.label, secret(id, value, { type: "password", placeholder: ph, attrs: { autocomplete: "new-password" } }), d.help);
      case "number":
        return field(d.label, h("input", { type: "number", id, min: String(d.min), max: String(d.max), disabled: dis, value: value ? String(value) : "", placeholder: ph }), d.help);
      case "list":
        return field(d.label, input(id, listText(value), { placeholder: ph }), d.help);
      case "headers":
        return field(d.label, h("textarea", { id, rows: 2, disabled: dis, value: Object.keys(value || {}).sort().map((k) => k + ": " + value[k]).join("\n"), placeholder: ph }), d.help);
      case "choice":
        return field(d.label, select((d.options || []).map((o) => [o.value, o.label]), value || d.default, { id, disabled: dis }), d.help);
      case "bool": {
        const box = h("input", { type: "checkbox", id, checked: !!value, disabled: dis });
        return group(h("div", { class: "al-field" }, h("label", { class: "al-radio" }, box, " " + d.label)), box, d.help);
      }
      default:
        return field(d.label, (d.redacted ? secret : input)(id, value, { placeholder: ph, attrs: { autocomplete: "off" } }), d.help);
    }
  };
  const f = {
    name: field("Name", input("n-name", v.name, { maxLength: 200, placeholder: "e.g. ops team" })),
    type: field("Type", select(types.map((t) => [t.type, t.label]), v.type, { id: "n-type", disabled: dis || !!n })),
  };
  // Every type's fields, each name once (the first type using it builds
  // it); showType shows those of the chosen type.
  const own = [];
  for (const t of types) {
    for (const d of t.fields) {
      if (f[d.name]) continue;
      f[d.name] = control(d, v[d.name]);
      own.push(d.name);
    }
  }
  const sevBoxes = ["warning", "critical"].map((s) => h("input", { type: "checkbox", value: s, checked: (v.severities || []).includes(s), disabled: dis }));
  f.severities = group(h("fieldset", { class: "al-field al-radios" }, h("legend", { text: "Route by severity" }),
    ...sevBoxes.map((b) => h("label", { class: "al-radio" }, b, " " + b.value))), sevBoxes[0], "alerts of rules that name no notifier");

  const err = errorBox();
  err.id = "notifier-error";
  const saveBtn = ro ? null : h("button", { type: "submit", class: "btn primary", id: "notifier-save", text: n ? "Save" : "Create notifier" });
  const typeFields = () => (typeOf(f.type._control.value) || types[0]).fields;
  const showType = () => {
    const here = new Map(typeFields().map((d) => [d.name, d]));
    for (const k of own) {
      const d = here.get(k);
      f[k].hidden = !d;
      if (!d) continue;
      f[k]._msg._help = (d.help || "") + (d.kind === "url" && f[k]._control.dataset.kept ? "; leave empty to keep the stored URL" : "");
      if (!f[k].classList.contains("invalid")) f[k]._msg.textContent = f[k]._msg._help;
    }
  };

  const read = () => {
    const t = f.type._control.value;
    const errors = {};
    const val = (k) => f[k]._control.value.trim();
    const b = { name: val("name"), type: t, severities: sevBoxes.filter((x) => x.checked).map((x) => x.value) };
    if (!b.name) errors.name = "name: required";
    for (const d of typeFields()) {
      const k = d.name;
      const c = f[k]._control;
      if (d.kind === "bool") b[k] = c.checked;
      else if (d.kind === "number") {
        b[k] = Number(c.value);
        if (!Number.isInteger(b[k]) || b[k] < d.min || b[k] > d.max) errors[k] = k + ": " + d.min + " to " + d.max;
      } else if (d.kind === "list") {
        b[k] = parseList(c.value);
        if (d.required && !b[k].length) errors[k] = k + ": at least one value";
      } else if (d.kind === "headers") {
        b[k] = {};
        for (const line of c.value.split("\n")) {
          if (!line.trim()) continue;
          const i = line.indexOf(":");
          if (i <= 0) {
            errors[k] = k + ": \"" + line.trim() + "\" is not Name: value";
            break;
          }
          b[k][line.slice(0, i).trim()] = line.slice(i + 1).trim();
        }
      } else {
        const s = c.value.trim();
        b[k] = s === "" && c.dataset.kept ? REDACTED : s;
        if (d.required && !b[k]) errors[k] = k + ": required";
        else if (d.kind === "url" && b[k] && b[k] !== REDACTED && !/^https?:\/\/[^\s]+$/i.test(b[k])) errors[k] = k + ": must be an http or https URL";
      }
    }
    return { b, errors };
  };

  const form = h("form", { class: "al-form", id: "notifier-form", attrs: { "aria-label": n ? "Edit notifier" : "New notifier", novalidate: "" }, on: {
    change: showType,
    keydown: (e) => { if (e.key === "Escape") closeEditor(); },
    submit: async (e) => {
      e.preventDefault();
      for (const k in f) if (f[k]._msg) fieldError(f[k], "");
      showError(err, "");
      const { b, errors } = read();
      const order = Object.keys(f); // form order
      const keys = Object.keys(errors).sort((a, b) => order.indexOf(a) - order.indexOf(b));
      if (keys.length) {
        for (const k of keys) fieldError(f[k], errors[k]);
        showError(err, errors[keys[0]]);
        f[keys[0]]._control.focus();
        return;
      }
      saveBtn.disabled = true;
      try {
        const saved = n ? await api("PUT", "/api/notifiers/" + encodeURIComponent(n.id), b) : await api("POST", "/api/notifiers", b);
        closeEditor();
        els.flash.show((n ? "Saved notifier " : "Created notifier ") + ((saved && saved.name) || b.name) + ".");
        await load();
      } catch (ex) {
        saveBtn.disabled = false;
        const msg = errText(ex);
        showError(err, msg);
        const m = /^([a-z_]+)[:.[ ]/.exec(msg);
        if (m && f[m[1]] && f[m[1]]._msg) fieldError(f[m[1]], msg);
      }
    },
  } },
  h("h2", { text: n ? (ro ? "Notifier " : "Edit notifier ") + n.name : "New notifier" }),
  n && n.provisioned ? h("p", { class: "muted", text: "Provisioned from the hub's configuration file: change it there." })
    : ro ? h("p", { class: "muted", text: "Read-only: log in as an admin to change this." }) : null,
  h("div", { class: "al-grid" }, f.name, f.type, f.severities, ...own.map((k) => f[k])),
  err,
  h("div", { class: "al-buttons" }, saveBtn, h("button", { type: "button", class: "btn", text: ro ? "Close" : "Cancel", on: { click: closeEditor } })));
  showType();
  return { n, el: h("section", { class: "al-editor al-editor-single" }, form) };
}
