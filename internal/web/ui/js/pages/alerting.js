// Shared pieces of the alerting pages (alerts, rules, silences, notifiers):
// who may write, chips, times, label lists, form fields and the alert feed.
// Agent strings (machine ids, labels, descriptions) only reach the page
// through h()'s text and string children, never as markup.
import { h } from "../dom.js";
import * as fmt from "../format.js";
import { showStatus } from "../live.js";
import { me } from "../session.js";

// access resolves to {user, canWrite}: canWrite only for a logged-in admin.
export async function access() {
  let m = null;
  try {
    m = await me();
  } catch {
    m = null;
  }
  const canWrite = !!(m && !m.anonymous && m.role === "admin");
  return { user: m && !m.anonymous ? m.user : "", canWrite };
}

// hint is the "log in as an admin" note, a link to the login page.
export function hint() {
  return h("p", { class: "al-hint muted" }, "Read-only: ", h("a", { href: "/login?next=" + encodeURIComponent(location.pathname + location.search), text: "log in as an admin" }), " to change this.");
}

// pageHead builds the page title row: h1, then any extra nodes.
export function pageHead(title, ...extra) {
  return h("div", { class: "al-head" }, h("h1", { text: title }), ...extra);
}

// sevChip is a severity chip ("warning" or "critical").
export function sevChip(sev) {
  const s = sev === "critical" ? "critical" : "warning";
  return h("span", { class: "sev sev-" + s, text: s });
}

// tag is a small tag such as "provisioned" or "builtin".
export function tag(text, cls) {
  return h("span", { class: "al-tag" + (cls ? " " + cls : ""), text });
}

// labelChips renders labels as chips (text only).
export function labelChips(labels) {
  const wrap = h("span", { class: "labels al-labels" });
  if (!labels) return wrap;
  for (const k of Object.keys(labels).sort()) wrap.append(h("span", { class: "chip", text: k + "=" + labels[k] }));
  return wrap;
}

// ms parses an API time (RFC 3339) to ms since epoch; 0 for none (null, "",
// Go's zero time).
export function ms(s) {
  if (!s) return 0;
  const t = Date.parse(s);
  return isFinite(t) && t > 86400000 ? t : 0;
}

// val formats a metric value: at most 2 decimals, large values scaled.
export function val(v) {
  if (v == null || typeof v !== "number" || !isFinite(v)) return "–";
  if (Math.abs(v) >= 1e5) return fmt.num(v);
  return String(Math.round(v * 100) / 100);
}

// when renders a time as "4 min ago" with the local date and time as title.
export function when(t, now) {
  return h("span", { class: "al-when", text: t ? fmt.ago(t, now) : "–", title: t ? fmt.time(t) : "" });
}

// DURATION matches a Go duration such as "90s", "5m", "1h30m" or "0s".
const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

// checkDuration returns an error text for a bad duration, else "".
export function checkDuration(s, what) {
  if (s === "" || s === "0" || DURATION.test(s)) return "";
  return what + ": use a duration like 30s, 5m or 1h30m";
}

// parseKV reads "k=v, k2=v2" (commas or newlines) into an object; it throws
// an Error naming the bad item.
export function parseKV(text, what) {
  const out = {};
  for (const raw of text.split(/[,\n]/)) {
    const item = raw.trim();
    if (!item) continue;
    const i = item.indexOf("=");
    if (i <= 0) throw new Error(what + ": \"" + item + "\" is not label=value");
    const k = item.slice(0, i).trim();
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k)) throw new Error(what + ": \"" + k + "\" is not a valid label name");
    out[k] = item.slice(i + 1).trim();
  }
  return out;
}

// kvText is the inverse of parseKV.
export function kvText(obj) {
  if (!obj) return "";
  return Object.keys(obj).sort().map((k) => k + "=" + obj[k]).join(", ");
}

// listText renders a list as "a, b"; parseList reads it back.
export function listText(list) {
  return Array.isArray(list) ? list.join(", ") : "";
}

export function parseList(text) {
  return text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
}

// ruleExpr is a rule as one line: avg(1m) metric{k="v"} > 90 for 5m.
export function ruleExpr(r) {
  const dur = r.for && r.for !== "0s" && r.for !== "0" ? " for " + r.for : "";
  if (r.kind === "offline") return "machine offline" + dur;
  const m = r.matchers || {};
  const sel = Object.keys(m).length ? "{" + Object.keys(m).sort().map((k) => k + "=\"" + m[k] + "\"").join(", ") + "}" : "";
  const agg = r.aggregation && r.aggregation !== "last" ? r.aggregation + "(" + (r.window || "") + ") " : "";
  return agg + (r.metric || "") + sel + " " + (r.op || ">") + " " + val(r.threshold) + dur;
}

// machinesText shows a rule's machine selection.
export function machinesText(r) {
  let s = r.machines === "*" || r.machines == null ? "all machines" : Array.isArray(r.machines) ? r.machines.join(", ") : String(r.machines);
  const ml = kvText(r.machine_labels);
  if (ml) s += " with " + ml;
  return s;
}

// field is a labelled form control with a hint line under it; the hint
// doubles as the control's error message (aria-describedby).
let fieldSeq = 0;
export function field(label, control, help) {
  const id = control.id || "al-f" + ++fieldSeq;
  control.id = id;
  const msg = h("span", { class: "al-msg", id: id + "-msg", text: help || "" });
  msg._help = help || "";
  control.setAttribute("aria-describedby", msg.id);
  const wrap = h("div", { class: "al-field" }, h("label", { attrs: { for: id }, text: label }), control, msg);
  wrap._control = control;
  wrap._msg = msg;
  return wrap;
}

// group makes a fieldset or checkbox wrapper behave like field(): control is
// what gets focus and aria-invalid, help the line under it.
export function group(el, control, help) {
  el._control = control;
  el._msg = h("span", { class: "al-msg", text: help || "" });
  el._msg._help = help || "";
  el.append(el._msg);
  return el;
}

// thead is a table head with the column names.
export function thead(names) {
  return h("thead", {}, h("tr", {}, ...names.map((t) => h("th", { text: t, attrs: { scope: "col" } }))));
}

// flashLine is a status line; .show(text) shows text for 8 s.
export function flashLine() {
  const el = h("p", { class: "al-flash", attrs: { role: "status" } });
  let timer = 0;
  el.show = (text) => {
    el.textContent = text;
    clearTimeout(timer);
    timer = setTimeout(() => { el.textContent = ""; }, 8000);
  };
  return el;
}

// localInput formats ms since epoch for a datetime-local input.
export function localInput(t) {
  const d = new Date(t - new Date(t).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

// fieldError marks a field invalid with text, or clears it ("").
export function fieldError(f, text) {
  f.classList.toggle("invalid", !!text);
  f._control.setAttribute("aria-invalid", text ? "true" : "false");
  f._msg.textContent = text || f._msg._help;
}

// select builds a <select> from [value, text] pairs.
export function select(options, value, props) {
  const s = h("select", props || {});
  for (const [v, t] of options) s.append(h("option", { value: v, text: t }));
  if (value != null) s.value = value;
  return s;
}

// errorBox is the form's error line (role=alert, announced).
export function errorBox() {
  return h("p", { class: "al-error error", attrs: { role: "alert" }, hidden: true });
}

export function showError(box, text) {
  box.textContent = text || "";
  box.hidden = !text;
}

// errText is an API error as text.
export function errText(err) {
  return err && err.message ? err.message : String(err);
}

// confirmButton is a button that asks once more ("Delete" → "Really
// delete?") before it runs act; it resets after 4 s.
export function confirmButton(text, confirmText, act, cls) {
  let armed = false, timer = 0;
  const b = h("button", { type: "button", class: "btn " + (cls || "danger"), text, dataset: { act: text.toLowerCase() } });
  b.addEventListener("click", () => {
    if (!armed) {
      armed = true;
      b.textContent = confirmText;
      b.classList.add("armed");
      timer = setTimeout(reset, 4000);
      return;
    }
    reset();
    act();
  });
  function reset() {
    clearTimeout(timer);
    armed = false;
    b.textContent = text;
    b.classList.remove("armed");
  }
  return b;
}

// openAlertFeed runs the hub's live feed in the page's worker, subscribed to
// no machine's metrics (the id "-" is not a machine): only alert and
// machine events come through. onAlert gets each alert object; onConnect
// runs once the socket is up, after every (re)connect, so the page reloads
// what changed before the socket could tell it (the hub subscribes the
// socket before it sends the snapshot: nothing falls in between).
export function openAlertFeed(onAlert, onConnect) {
  const feed = new Worker("/ui/js/feed.worker.js");
  feed.postMessage({ mode: "machine", id: "-" });
  feed.onmessage = (e) => {
    const msg = e.data;
    if (msg.type === "status") showStatus(msg.state, msg.text);
    else if (msg.type === "snapshot") {
      if (onConnect) onConnect();
    } else if (msg.type === "alert" && msg.alert) {
      publishAlert(msg.alert);
      onAlert(msg.alert);
    }
  };
  return feed;
}

// publishAlert tells the header badge (alertbadge.js) about an alert change.
export function publishAlert(a) {
  window.dispatchEvent(new CustomEvent("sysmonstm-alert", { detail: a }));
}

// publishFiring hands the header badge a fresh list of the active alerts
// (from GET /api/alerts): it replaces what the badge counted.
export function publishFiring(list) {
  window.dispatchEvent(new CustomEvent("sysmonstm-alerts", { detail: list }));
}

// byName sorts objects by their name, then id.
export function byName(a, b) {
  const x = (a.name || "").toLowerCase(), y = (b.name || "").toLowerCase();
  return x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
