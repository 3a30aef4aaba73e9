// The silences page: active and expired silences, a form to create one (by
// rule, machine glob and series labels, for a duration or until a time) and
// Expire. /silences?rule=ID&machine=X prefills the form.
import { h } from "../dom.js";
import * as fmt from "../format.js";
import { api } from "../session.js";
import {
  access, hint, pageHead, labelChips, ms, field, fieldError, select, errorBox, showError, errText, parseKV, confirmButton, byName,
  flashLine, localInput, thead,
} from "./alerting.js";

const REFRESH_MS = 30000;
const DURATIONS = [["1h", "1 hour"], ["4h", "4 hours"], ["24h", "24 hours"], ["168h", "7 days"], ["custom", "until a time…"]];

let silences = [];
let rules = [];
let canWrite = false;
let els = {};

export async function start(main) {
  document.title = "Silences — sysmonstm";
  const who = await access();
  canWrite = who.canWrite;
  els.error = errorBox();
  els.flash = flashLine();
  els.activeBody = h("tbody");
  els.expiredBody = h("tbody");
  els.activeTable = table("silences-active", els.activeBody, canWrite);
  els.expiredTable = table("silences-expired", els.expiredBody, false);
  els.activeEmpty = h("p", { class: "empty muted", text: "No active silences." });
  els.expiredSum = h("summary", { text: "Expired" });
  els.expired = h("details", { class: "al-expired" }, els.expiredSum, h("div", { class: "dtable-wrap" }, els.expiredTable));
  main.replaceChildren(h("div", { class: "silences-page" },
    pageHead("Silences", h("a", { href: "/alerts", text: "Alerts" }), h("a", { href: "/rules", text: "Rules" })),
    h("p", { class: "muted al-small", text: "A silence mutes the notifications of matching alerts; the alerts still show as silenced." }),
    canWrite ? null : hint(),
    els.error, els.flash,
    (els.formWrap = h("div", {})),
    h("h2", { text: "Active" }),
    h("div", { class: "dtable-wrap" }, els.activeTable), els.activeEmpty,
    els.expired));
  try {
    rules = ((await api("GET", "/api/rules")) || []).sort(byName);
  } catch {
    rules = [];
  }
  if (canWrite) els.formWrap.replaceChildren(buildForm());
  await load();
  setInterval(load, REFRESH_MS);
}

function table(id, body, actions) {
  const heads = ["Matches", "Starts", "Ends", "Comment", "Created by"];
  if (actions) heads.push("");
  return h("table", { class: "dtable al-table", id }, thead(heads), body);
}

async function load() {
  try {
    silences = (await api("GET", "/api/silences")) || [];
    showError(els.error, "");
  } catch (err) {
    showError(els.error, err.status === 404 ? "Alerting is not enabled on this hub." : "Could not load silences: " + errText(err));
    return;
  }
  render();
}

function ruleName(id) {
  const r = rules.find((x) => x.id === id);
  return r ? r.name : id;
}

function render() {
  const now = Date.now();
  // Active or still to start; expired once ends_at passed (Expire sets it
  // to now) or the hub says inactive for a silence that already started.
  const isActive = (s) => {
    const en = ms(s.ends_at);
    if (en && en <= now) return false;
    return s.active !== false || ms(s.starts_at) > now;
  };
  const act = silences.filter(isActive).sort((a, b) => ms(a.ends_at) - ms(b.ends_at));
  const exp = silences.filter((s) => !isActive(s)).sort((a, b) => ms(b.ends_at) - ms(a.ends_at));
  els.activeBody.replaceChildren(...act.map((s) => row(s, canWrite, now)));
  els.expiredBody.replaceChildren(...exp.map((s) => row(s, false, now)));
  els.activeTable.hidden = act.length === 0;
  els.activeEmpty.hidden = act.length > 0;
  els.expiredSum.textContent = "Expired (" + exp.length + ")";
  els.expired.hidden = exp.length === 0;
}

function row(s, withExpire, now) {
  const m = s.matchers || {};
  const what = h("td", { class: "al-match" });
  what.append(h("span", { class: "muted", text: "rule " }), m.rule_id ? h("a", { href: "/rules?edit=" + encodeURIComponent(m.rule_id), text: ruleName(m.rule_id) }) : h("span", { text: "any" }));
  what.append(h("span", { class: "muted", text: " · machine " }), h("span", { class: "name", text: m.machine || "*" }));
  if (m.labels && Object.keys(m.labels).length) what.append(" ", labelChips(m.labels));
  const st = ms(s.starts_at), en = ms(s.ends_at);
  const ends = h("td", {}, h("span", { text: en ? fmt.time(en) : "–" }));
  if (en) ends.append(h("div", { class: "muted al-small", text: en > now ? "in " + fmt.duration((en - now) / 1000) : fmt.ago(en, now) }));
  const tr = h("tr", { dataset: { id: s.id } }, what,
    h("td", { text: st ? fmt.time(st) : "–" }), ends,
    h("td", { class: "al-comment-cell", text: s.comment || "" }),
    h("td", { text: s.created_by || "" }));
  if (withExpire) tr.append(h("td", { class: "al-actions" }, confirmButton("Expire", "Really expire?", () => expire(s))));
  return tr;
}

async function expire(s) {
  try {
    await api("DELETE", "/api/silences/" + encodeURIComponent(s.id));
    els.flash.show("Silence expired.");
    await load();
  } catch (err) {
    showError(els.error, "Could not expire the silence: " + errText(err));
  }
}


// --- create form ---------------------------------------------------------------------

function buildForm() {
  const p = new URLSearchParams(location.search);
  const rule = select([["", "any rule"], ...rules.map((r) => [r.id, r.name])], "", { id: "silence-rule" });
  if (p.get("rule")) {
    if (![...rule.options].some((o) => o.value === p.get("rule"))) rule.append(h("option", { value: p.get("rule"), text: p.get("rule") }));
    rule.value = p.get("rule");
  }
  const f = {
    rule: field("Rule", rule),
    machine: field("Machine", h("input", { type: "text", id: "silence-machine", value: p.get("machine") || "", placeholder: "* or web-*", maxLength: 256 }), "an id or a glob; empty: every machine"),
    labels: field("Series labels", h("input", { type: "text", id: "silence-labels", value: p.get("labels") || "", placeholder: "mountpoint=/data" }), "label=value, comma separated; optional"),
    duration: field("Duration", select(DURATIONS, "4h", { id: "silence-duration" })),
    until: field("Until", h("input", { type: "datetime-local", id: "silence-until", attrs: { step: "60" } })),
    comment: field("Comment", h("input", { type: "text", id: "silence-comment", maxLength: 1000, placeholder: "why, e.g. planned maintenance" })),
  };
  f.until.hidden = true;
  const err = errorBox();
  const submit = h("button", { type: "submit", class: "btn primary", id: "silence-create", text: "Create silence" });
  const form = h("form", { class: "al-form al-silence-form", id: "silence-form", attrs: { "aria-label": "New silence", novalidate: "" }, on: {
    change: () => {
      f.until.hidden = f.duration._control.value !== "custom";
      if (!f.until.hidden && !f.until._control.value) f.until._control.value = localInput(Date.now() + 2 * 3600e3);
    },
    submit: async (e) => {
      e.preventDefault();
      for (const k in f) fieldError(f[k], "");
      showError(err, "");
      const body = { matchers: {}, comment: f.comment._control.value.trim() };
      if (rule.value) body.matchers.rule_id = rule.value;
      const m = f.machine._control.value.trim();
      if (m) body.matchers.machine = m;
      try {
        const l = parseKV(f.labels._control.value, "labels");
        if (Object.keys(l).length) body.matchers.labels = l;
      } catch (ex) {
        fieldError(f.labels, ex.message);
        f.labels._control.focus();
        return;
      }
      if (!body.matchers.rule_id && !body.matchers.machine && !body.matchers.labels) {
        showError(err, "Pick a rule, a machine or labels: a silence of everything is not allowed here.");
        rule.focus();
        return;
      }
      const d = f.duration._control.value;
      if (d === "custom") {
        const t = Date.parse(f.until._control.value);
        if (!(t > Date.now())) {
          fieldError(f.until, "until: pick a time in the future");
          f.until._control.focus();
          return;
        }
        body.ends_at = new Date(t).toISOString();
      } else body.duration = d;
      submit.disabled = true;
      try {
        const s = await api("POST", "/api/silences", body);
        els.flash.show("Silence created" + (s && s.ends_at ? ", until " + fmt.time(ms(s.ends_at)) : "") + ".");
        f.comment._control.value = "";
        await load();
      } catch (ex) {
        const msg = errText(ex);
        showError(err, msg);
        const k = /^(?:matchers\.)?([a-z_]+)[:.[ ]/.exec(msg);
        const map = { rule_id: "rule", machine: "machine", labels: "labels", duration: "duration", ends_at: "until", comment: "comment" };
        if (k && map[k[1]]) fieldError(f[map[k[1]]], msg);
      } finally {
        submit.disabled = false;
      }
    },
  } },
  h("h2", { text: "New silence" }),
  h("div", { class: "al-grid" }, f.rule, f.machine, f.labels, f.duration, f.until, f.comment),
  err, h("div", { class: "al-buttons" }, submit));
  return form;
}

