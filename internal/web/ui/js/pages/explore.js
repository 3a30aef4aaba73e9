// The Explore page: /explore?q=QUERY&range=1h (or &from=MS&to=MS, &step=S,
// &mode=instant). A PromQL box with history and completion of metric names,
// label names and label values from the Prometheus API, and the result as a
// chart (one line per series) and a table. The query and the range live in
// the URL: running pushes a history entry, back and forward run it again.
//
// Series label sets come from agents: they reach the page through h() and
// uPlot's legend (textContent) only, made visible by dom.js.
import { h, setText } from "../dom.js";
import * as fmt from "../format.js";
import { Chart } from "../chart.js";
import { api } from "../session.js";
import { completion, escapeIn, rank, seriesText } from "../promql.js";

const RANGES = [["5m", 300], ["15m", 900], ["1h", 3600], ["6h", 21600], ["24h", 86400], ["7d", 604800], ["30d", 2592000]];
const DEFAULT_RANGE = "1h";
const HISTORY_KEY = "sysmonstm-explore-history";
const HISTORY_MAX = 30;
const SUGGEST_MAX = 40;
const CHART_MAX = 60; // series drawn; the table lists them all
const TABLE_MAX = 2000;
const POINTS = 250; // auto step: about this many points per range

let els = {}, state, chart = null, gen = 0;

export function start(main) {
  document.title = "Explore — sysmonstm";
  els.query = h("textarea", { id: "explore-query", class: "explore-query", rows: 2, spellcheck: false,
    attrs: { "aria-label": "PromQL query", role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": "explore-suggest",
      autocomplete: "off", autocapitalize: "none", placeholder: "PromQL, e.g. cpu_usage_percent{cpu=\"total\"} — Enter runs, Shift+Enter breaks the line" } });
  els.suggest = h("ul", { id: "explore-suggest", class: "explore-suggest", hidden: true, attrs: { role: "listbox", "aria-label": "Completions" } });
  els.run = h("button", { id: "explore-run", class: "btn primary", type: "submit", text: "Run" });
  els.modes = ["range", "instant"].map((m) => h("button", { type: "button", class: "btn", text: m === "range" ? "Range" : "Instant", dataset: { mode: m },
    on: { click: () => { state.mode = m; run(); } } }));
  els.ranges = RANGES.map(([key]) => h("button", { type: "button", class: "btn", text: key, dataset: { range: key },
    on: { click: () => { state.range = { key }; run(); } } }));
  els.from = h("input", { type: "datetime-local", id: "explore-from", attrs: { "aria-label": "From", step: "1" } });
  els.to = h("input", { type: "datetime-local", id: "explore-to", attrs: { "aria-label": "To", step: "1" } });
  els.step = h("input", { type: "text", id: "explore-step", class: "explore-step", attrs: { "aria-label": "Step in seconds (empty: automatic)", inputmode: "decimal", size: "6" } });
  const custom = h("span", { class: "custom" },
    h("label", { class: "field" }, h("span", { text: "From" }), els.from),
    h("label", { class: "field" }, h("span", { text: "To" }), els.to),
    h("label", { class: "field" }, h("span", { text: "Step (s)" }), els.step));
  for (const el of [els.from, els.to]) el.addEventListener("change", () => {
    const f = Date.parse(els.from.value), t = Date.parse(els.to.value);
    if (f < t) { state.range = { from: f, to: t }; run(); }
  });
  els.step.addEventListener("change", () => { state.step = parseStep(els.step.value); run(); });
  els.history = h("div", { id: "explore-history", class: "explore-history" });
  els.error = h("pre", { id: "explore-error", class: "error explore-error", hidden: true, attrs: { role: "alert" } });
  els.info = h("p", { id: "explore-info", class: "muted explore-info", attrs: { "aria-live": "polite" } });
  els.chart = h("div", { id: "explore-chart", class: "explore-chart" });
  els.table = h("table", { id: "explore-table", class: "dtable explore-table" });
  const form = h("form", { class: "explore-form", on: { submit: (e) => { e.preventDefault(); state.query = els.query.value.trim(); run(); } } },
    h("div", { class: "explore-box" }, els.query, els.suggest), els.run);
  main.replaceChildren(h("div", { class: "explore" },
    h("h1", { text: "Explore" }), form,
    h("div", { class: "rangebar explore-bar", attrs: { role: "toolbar", "aria-label": "Query mode and range" } },
      ...els.modes, h("span", { class: "sep-s" }), ...els.ranges, custom),
    els.history, els.error, els.info, els.chart, h("div", { class: "dtable-wrap" }, els.table)));

  els.query.addEventListener("keydown", onKey);
  els.query.addEventListener("input", () => suggestSoon());
  els.query.addEventListener("click", () => suggestSoon());
  els.query.addEventListener("blur", () => setTimeout(closeSuggest, 150));
  window.addEventListener("popstate", () => { readURL(); render(); exec(); });
  window.addEventListener("sysmonstm-theme", () => { if (chart) chart.build(); });
  readURL();
  render();
  renderHistory();
  els.query.focus();
  // The metric names for completion; without a session this is the 401
  // that sends the viewer to the login page.
  values("/api/v1/label/__name__/values").catch(() => {});
  if (state.query) exec();
}

// --- URL and state --------------------------------------------------------

function readURL() {
  const p = new URLSearchParams(location.search);
  const from = Number(p.get("from")), to = Number(p.get("to"));
  let range = { key: DEFAULT_RANGE };
  if (p.has("from") && p.has("to") && isFinite(from) && isFinite(to) && from < to) range = { from, to };
  else if (RANGES.some((r) => r[0] === p.get("range"))) range = { key: p.get("range") };
  state = { query: (p.get("q") || "").trim(), mode: p.get("mode") === "instant" ? "instant" : "range", range, step: parseStep(p.get("step") || "") };
  els.query.value = state.query;
}

function writeURL() {
  const p = new URLSearchParams();
  if (state.query) p.set("q", state.query);
  if (state.mode === "instant") p.set("mode", "instant");
  if (state.range.key) p.set("range", state.range.key);
  else {
    p.set("from", String(Math.round(state.range.from)));
    p.set("to", String(Math.round(state.range.to)));
  }
  if (state.step) p.set("step", String(state.step));
  const url = location.pathname + "?" + p.toString();
  if (url !== location.pathname + location.search) history.pushState(null, "", url);
}

// parseStep reads a step in seconds; "" or an invalid one is 0 (auto).
function parseStep(s) {
  const n = Number(String(s).trim());
  return String(s).trim() !== "" && isFinite(n) && n > 0 ? n : 0;
}

// bounds is the range in ms.
function bounds() {
  if (!state.range.key) return [state.range.from, state.range.to];
  const now = Date.now();
  return [now - RANGES.find((r) => r[0] === state.range.key)[1] * 1000, now];
}

// autoStep is about POINTS points per range, rounded to a whole second
// (Prometheus allows at most 11,000 per series).
function autoStep(spanS) {
  return Math.max(1, Math.round(spanS / POINTS));
}

function render() {
  for (const b of els.modes) toggle(b, b.dataset.mode === state.mode);
  for (const b of els.ranges) toggle(b, b.dataset.range === state.range.key);
  const [f, t] = bounds();
  els.from.value = localInput(f);
  els.to.value = localInput(t);
  els.step.value = state.step ? String(state.step) : "";
  els.step.placeholder = "auto: " + autoStep((t - f) / 1000);
  els.step.disabled = state.mode === "instant";
  els.from.disabled = state.mode === "instant";
}

function toggle(b, on) {
  b.classList.toggle("on", on);
  b.setAttribute("aria-pressed", on ? "true" : "false");
}

function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

// --- running a query ----------------------------------------------------------

// run takes the box's query, records it, updates the URL and runs it.
function run() {
  state.query = els.query.value.trim();
  closeSuggest();
  writeURL();
  render();
  exec(true);
}

// exec runs state's query and shows the answer; record puts a query that
// ran into the history.
async function exec(record) {
  const my = ++gen;
  document.documentElement.dataset.explore = "running:" + my; // for the browser tests
  if (!state.query) {
    clearResult();
    setText(els.info, "Type a PromQL query and press Enter.");
    return;
  }
  const [f, t] = bounds();
  const span = (t - f) / 1000;
  const step = state.step || autoStep(span);
  const p = new URLSearchParams({ query: state.query });
  let path;
  if (state.mode === "range") {
    path = "/api/v1/query_range";
    p.set("start", (f / 1000).toFixed(3));
    p.set("end", (t / 1000).toFixed(3));
    p.set("step", String(step));
  } else {
    path = "/api/v1/query";
    p.set("time", (t / 1000).toFixed(3));
  }
  setText(els.info, "running…");
  els.info.classList.remove("error");
  const t0 = performance.now();
  let body;
  try {
    body = await api("GET", path + "?" + p.toString());
  } catch (err) {
    if (my !== gen) return;
    clearResult();
    els.error.hidden = false;
    setText(els.error, err.status ? "Error (HTTP " + err.status + "): " + err.message : "Could not reach the hub: " + err.message);
    setText(els.info, "");
    document.documentElement.dataset.explore = "error:" + my;
    return;
  }
  if (my !== gen) return;
  const ms = Math.round(performance.now() - t0);
  if (record) remember(state.query);
  els.error.hidden = true;
  const data = (body && body.data) || {};
  const n = showResult(data, f, t, step);
  const warn = [].concat(body.warnings || [], body.infos || []);
  setText(els.info, n + " series · " + (state.mode === "range" ? fmt.time(f) + " – " + fmt.time(t) + " · step " + step + " s" : "at " + fmt.time(t)) +
    " · " + ms + " ms" + (warn.length ? " · " + warn.join("; ") : ""));
  document.documentElement.dataset.explore = "ok:" + my;
}

function clearResult() {
  if (chart) chart.destroy();
  chart = null;
  els.chart.replaceChildren();
  els.table.replaceChildren();
  els.error.hidden = true;
}

// showResult draws data ({resultType, result}) and returns the number of
// series (rows).
function showResult(data, f, t, step) {
  clearResult();
  const type = data.resultType;
  const result = data.result;
  if (type === "scalar" || type === "string") {
    tableRows([[type, fmtValue(result && result[1], "num")]]);
    return 1;
  }
  const list = Array.isArray(result) ? result : [];
  const unit = unitOf(list);
  if (type === "matrix") {
    if (state.mode === "range") drawChart(list, unit, f, t, step);
    tableRows(list.map((s) => {
      const last = s.values && s.values.length ? s.values[s.values.length - 1] : null;
      return [seriesText(s.metric), last ? fmtValue(last[1], unit) : "–", s.values ? s.values.length + (s.values.length === 1 ? " point" : " points") : ""];
    }), state.mode === "range" ? "Last value" : "Last of");
  } else {
    tableRows(list.map((s) => [seriesText(s.metric), fmtValue(s.value && s.value[1], unit)]));
  }
  if (!list.length) els.chart.replaceChildren(h("p", { class: "muted explore-empty", text: "No data: the query matched no series in this range." }));
  return list.length;
}

// unitOf guesses the chart unit from the series' metric names.
function unitOf(list) {
  const units = new Set(list.map((s) => {
    const n = (s.metric && s.metric.__name__) || "";
    if (/_bytes_per_second$/.test(n)) return "rate";
    if (/_percent$/.test(n)) return "pct";
    if (/_bytes$/.test(n)) return "bytes";
    if (/_celsius$/.test(n)) return "temp";
    if (/_seconds$/.test(n)) return "secs";
    return "num";
  }));
  return units.size === 1 ? [...units][0] : "num";
}

function fmtValue(v, unit) {
  if (v == null) return "–";
  const n = Number(v);
  if (!isFinite(n)) return String(v);
  const human = fmt.byUnit(unit)(n);
  return unit === "num" ? String(n) : human + " (" + n + ")";
}

function tableRows(rows, lastLabel) {
  const shown = rows.slice(0, TABLE_MAX);
  const head = h("tr", {}, h("th", { text: "Series" }), h("th", { text: lastLabel || "Value" }), rows.length && rows[0].length > 2 ? h("th", { text: "" }) : null);
  els.table.replaceChildren(h("thead", {}, head), h("tbody", {}, ...shown.map((r) =>
    h("tr", {}, h("td", { class: "explore-series" }, h("code", { text: r[0] })), ...r.slice(1).map((c) => h("td", { class: "num", text: c }))))));
  if (rows.length > shown.length) els.table.append(h("caption", { text: "first " + shown.length + " of " + rows.length + " series" }));
}

// drawChart draws up to CHART_MAX series on the grid start + k·step.
function drawChart(list, unit, f, t, step) {
  const series = list.slice(0, CHART_MAX);
  const times = new Set();
  for (const s of series) for (const v of s.values || []) times.add(v[0]);
  const xs = [...times].sort((a, b) => a - b);
  const idx = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const col = new Array(xs.length).fill(null);
    for (const v of s.values || []) {
      const n = Number(v[1]);
      col[idx.get(v[0])] = isFinite(n) ? n : null;
    }
    return col;
  });
  const spec = { key: "explore", title: "", unit, noBand: true, autoPoints: true, lines: series.map((s) => ({ label: seriesText(s.metric), metric: "" })) };
  chart = new Chart(spec, {
    xRange: () => [f / 1000, t / 1000],
    onZoom: (from, to) => {
      if (to - from < 1000) return;
      state.range = { from, to };
      run();
    },
  });
  els.chart.replaceChildren(chart.el);
  if (list.length > series.length) els.chart.append(h("p", { class: "muted", text: "Chart shows the first " + series.length + " of " + list.length + " series." }));
  chart.setData(xs, ys, []);
}

// --- history ----------------------------------------------------------------

function loadHistory() {
  try {
    const v = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
    return Array.isArray(v) ? v.filter((q) => typeof q === "string" && q) : [];
  } catch (e) {
    return [];
  }
}

// remember puts q first in the history, once.
function remember(q) {
  const list = [q, ...loadHistory().filter((x) => x !== q)].slice(0, HISTORY_MAX);
  try { localStorage.setItem(HISTORY_KEY, JSON.stringify(list)); } catch (e) { /* storage full or off */ }
  renderHistory();
}

function renderHistory() {
  const list = loadHistory();
  els.history.hidden = list.length === 0;
  els.history.replaceChildren(h("span", { class: "muted", text: "Recent:" }), ...list.slice(0, 10).map((q) =>
    h("button", { type: "button", class: "btn ghost explore-recent", title: q, text: q.length > 80 ? q.slice(0, 79) + "…" : q,
      on: { click: () => { els.query.value = q; run(); } } })));
}

// --- completion -------------------------------------------------------------

let sugg = { items: [], active: -1, ctx: null }, suggestTimer = 0, suggestGen = 0;
const cache = new Map(); // API path → {at: ms, list: Promise<string[]>}
const CACHE_MS = 60000; // names and values are fetched again after a minute

function suggestSoon() {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(suggest, 120);
}

// values fetches a list (label names or values) for path, at most once a
// minute.
function values(path) {
  const c = cache.get(path);
  if (c && Date.now() - c.at < CACHE_MS) return c.list;
  const list = api("GET", path).then((b) => (b && Array.isArray(b.data) ? b.data : [])).catch((err) => {
    cache.delete(path);
    throw err;
  });
  cache.set(path, { at: Date.now(), list });
  return list;
}

// scoped fetches path with match[]=scope, or unscoped when the API refuses
// the scope (e.g. a matcher that matches the empty string).
async function scoped(path, scope) {
  if (!scope) return values(path);
  try {
    return await values(path + "?" + new URLSearchParams({ "match[]": scope }).toString());
  } catch (e) {
    return values(path);
  }
}

async function suggest() {
  const my = ++suggestGen;
  const pos = els.query.selectionStart;
  if (pos !== els.query.selectionEnd) return closeSuggest();
  const ctx = completion(els.query.value.slice(0, pos));
  if (!ctx) return closeSuggest();
  let list = [];
  try {
    if (ctx.kind === "metric") list = await values("/api/v1/label/__name__/values");
    else if (ctx.kind === "label") list = (await scoped("/api/v1/labels", ctx.scope)).filter((n) => n !== "__name__");
    else list = await scoped("/api/v1/label/" + encodeURIComponent(ctx.label) + "/values", ctx.scope);
  } catch (e) {
    return closeSuggest();
  }
  if (my !== suggestGen) return;
  const prefix = ctx.kind === "value" ? unescapePrefix(ctx.prefix) : ctx.prefix;
  if (ctx.kind === "metric" && !prefix) return closeSuggest();
  sugg = { items: rank(list, prefix, SUGGEST_MAX), active: 0, ctx };
  if (!sugg.items.length) return closeSuggest();
  els.suggest.replaceChildren(...sugg.items.map((v, i) => h("li", { id: "explore-opt-" + i, class: "explore-opt", text: v, dataset: { value: v, kind: ctx.kind },
    attrs: { role: "option", "aria-selected": i === 0 ? "true" : "false" },
    on: { mousedown: (e) => { e.preventDefault(); sugg.active = i; accept(); } } })));
  els.suggest.hidden = false;
  els.query.setAttribute("aria-expanded", "true");
  markActive();
}

// unescapePrefix is a partly typed string's text without its escapes.
function unescapePrefix(s) {
  return s.replace(/\\(.)/g, "$1");
}

function closeSuggest() {
  suggestGen++;
  clearTimeout(suggestTimer);
  els.suggest.hidden = true;
  els.suggest.replaceChildren();
  els.query.setAttribute("aria-expanded", "false");
  els.query.removeAttribute("aria-activedescendant");
  sugg = { items: [], active: -1, ctx: null };
}

function markActive() {
  [...els.suggest.children].forEach((li, i) => li.setAttribute("aria-selected", i === sugg.active ? "true" : "false"));
  const li = els.suggest.children[sugg.active];
  if (li) {
    els.query.setAttribute("aria-activedescendant", li.id);
    li.scrollIntoView({ block: "nearest" });
  }
}

// accept replaces the word being completed with the active entry: a label
// name gets ="" with the cursor between the quotes (and completes its
// values next), a value is escaped and closed.
function accept() {
  const ctx = sugg.ctx, v = sugg.items[sugg.active];
  if (!ctx || v == null) return;
  const text = els.query.value, pos = els.query.selectionStart;
  let insert = v, caret, after = text.slice(pos), reopen = false;
  if (ctx.kind === "label") {
    after = after.replace(/^[a-zA-Z0-9_]*/, ""); // the rest of the word
    if (ctx.selector && !/^\s*(=|!=|=~|!~)/.test(after)) {
      insert = v + '=""';
      caret = ctx.from + v.length + 2;
      reopen = true;
    }
  } else if (ctx.kind === "value") {
    insert = escapeIn(v, ctx.quote);
    const rest = after.match(/^([^"'`\\]|\\.)*/)[0]; // the rest of the typed value
    after = after.slice(rest.length);
    if (after.startsWith(ctx.quote)) after = after.slice(1);
    insert += ctx.quote;
  } else {
    after = after.replace(/^[a-zA-Z0-9_:]*/, ""); // the rest of the word
  }
  els.query.value = text.slice(0, ctx.from) + insert + after;
  if (caret == null) caret = ctx.from + insert.length;
  els.query.setSelectionRange(caret, caret);
  closeSuggest();
  if (reopen) suggest();
}

function onKey(e) {
  const open = !els.suggest.hidden && sugg.items.length > 0;
  if (open && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
    e.preventDefault();
    const n = sugg.items.length;
    sugg.active = (sugg.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
    markActive();
    return;
  }
  if (open && (e.key === "Tab" || e.key === "Enter") && !e.shiftKey) {
    e.preventDefault();
    accept();
    return;
  }
  if (open && e.key === "Escape") {
    e.preventDefault();
    closeSuggest();
    return;
  }
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    run();
  }
}
