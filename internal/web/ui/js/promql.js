// PromQL text helpers of the dashboard: quoting label values, the query that
// shows a chart's data, the Explore page's URL, and what the cursor of the
// Explore box is completing. Pure functions: no DOM, no fetch.

// quote is s as a PromQL double-quoted string. JSON's escapes (\" \\ \n
// \uXXXX) are PromQL's too, so any label value round-trips.
export function quote(s) {
  return JSON.stringify(String(s));
}

// regexLiteral escapes s for an RE2 regular expression (=~, !~).
export function regexLiteral(s) {
  return String(s).replace(/[\\.+*?()|[\]{}^$]/g, "\\$&");
}

// selector is metric{k="v",…}: machine first, then the other labels sorted.
// match values are strings (k="v") or arrays of strings (k=~"v1|v2").
export function selector(metric, match) {
  const keys = Object.keys(match || {}).sort((a, b) => (a === "machine" ? -1 : b === "machine" ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const parts = keys.map((k) => {
    const v = match[k];
    if (Array.isArray(v)) return v.length === 1 ? k + "=" + quote(v[0]) : k + "=~" + quote(v.map(regexLiteral).join("|"));
    return k + "=" + quote(v);
  });
  return metric + (parts.length ? "{" + parts.join(",") + "}" : "");
}

// chartQuery is the PromQL that selects a machine chart's lines
// ([{metric, match}]): one selector per metric, its label values joined
// into a regex where lines differ, the selectors joined with "or".
export function chartQuery(machine, lines) {
  const byMetric = new Map();
  for (const l of lines) {
    if (!byMetric.has(l.metric)) byMetric.set(l.metric, []);
    byMetric.get(l.metric).push(l.match || {});
  }
  const sels = [];
  for (const [metric, matches] of byMetric) {
    const match = { machine };
    const keys = new Set(matches.flatMap((m) => Object.keys(m)));
    for (const k of keys) {
      if (k === "machine" || !matches.every((m) => k in m)) continue;
      match[k] = [...new Set(matches.map((m) => String(m[k])))];
    }
    sels.push(selector(metric, match));
  }
  return sels.join(" or ");
}

// exploreURL is the Explore page showing query over a range: {key} for the
// last key (5m, 1h…) or {from, to} in ms.
export function exploreURL(query, range) {
  const p = new URLSearchParams({ q: query });
  if (range && range.from != null && range.to != null) {
    p.set("from", String(Math.round(range.from)));
    p.set("to", String(Math.round(range.to)));
  } else if (range && range.key) {
    p.set("range", range.key);
  }
  return "/explore?" + p.toString();
}

// seriesText renders a series' labels as Prometheus does:
// name{k="v", …} with the values quoted.
export function seriesText(labels) {
  const name = labels && labels.__name__ ? labels.__name__ : "";
  const keys = Object.keys(labels || {}).filter((k) => k !== "__name__").sort();
  if (!keys.length) return name || "{}";
  return name + "{" + keys.map((k) => k + "=" + quote(labels[k])).join(", ") + "}";
}

const IDENT_END = /[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_END = /[a-zA-Z_][a-zA-Z0-9_]*$/;

// completion tells what the text before the cursor is typing:
//   {kind: "metric", prefix, from}: a metric (or function) name;
//   {kind: "label", prefix, from, scope, selector}: a label name inside a
//     selector's braces (selector true), or in by (…) / without (…)
//     (scope "");
//   {kind: "value", label, prefix, from, quote, scope}: a label value inside
//     the quotes after label= (prefix is the raw text typed so far);
//   null: nothing to complete (inside a number, a duration, a closed string).
// from is the offset where the completed word starts; scope is the selector
// of what is already typed (metric{complete matchers}) for match[], or "".
export function completion(text) {
  let brace = -1, str = null, strStart = -1;
  const parens = []; // offsets of the open parentheses
  let bracket = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (str) {
      if (c === "\\") i++;
      else if (c === str) str = null;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") { str = c; strStart = i; }
    else if (c === "{") brace = i;
    else if (c === "}") brace = -1;
    else if (c === "(") parens.push(i);
    else if (c === ")") parens.pop();
    else if (c === "[") bracket = true;
    else if (c === "]") bracket = false;
    else if (c === "#") { // a comment to the end of the line
      const nl = text.indexOf("\n", i);
      if (nl < 0) return null;
      i = nl;
    }
  }
  if (bracket) return null;
  if (brace >= 0) {
    const metric = (text.slice(0, brace).match(IDENT_END) || [""])[0];
    if (str) {
      const before = text.slice(brace + 1, strStart);
      const m = before.match(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*$/);
      if (!m || str === "`") return null;
      const done = before.slice(0, m.index).replace(/,\s*$/, "");
      return { kind: "value", label: m[1], prefix: text.slice(strStart + 1), from: strStart + 1, quote: str, scope: scopeOf(metric, done) };
    }
    const inside = text.slice(brace + 1);
    const word = (inside.match(LABEL_END) || [""])[0];
    const lead = inside.slice(0, inside.length - word.length);
    if (!/(^|,)\s*$/.test(lead)) return null;
    return { kind: "label", prefix: word, from: text.length - word.length, selector: true, scope: scopeOf(metric, lead.replace(/,\s*$/, "")) };
  }
  if (str) return null;
  const open = parens.length ? parens[parens.length - 1] : -1;
  if (open >= 0 && /\b(by|without|on|ignoring|group_left|group_right)\s*$/.test(text.slice(0, open))) {
    const word = (text.slice(open + 1).match(LABEL_END) || [""])[0];
    const lead = text.slice(open + 1, text.length - word.length);
    if (!/(^|,)\s*$/.test(lead)) return null;
    return { kind: "label", prefix: word, from: text.length - word.length, scope: "" };
  }
  const m = text.match(IDENT_END);
  if (!m) return null;
  const from = text.length - m[0].length;
  if (from > 0 && /[0-9.]/.test(text[from - 1])) return null; // 5m, 1e3
  return { kind: "metric", prefix: m[0], from };
}

// scopeOf is the match[] selector of a metric name and the complete
// matchers typed before the cursor, or "" when there is neither.
function scopeOf(metric, matchers) {
  matchers = matchers.trim();
  if (!metric && !matchers) return "";
  return metric + "{" + matchers + "}";
}

// escapeIn escapes a label value for a PromQL string quoted with q.
export function escapeIn(v, q) {
  const s = JSON.stringify(String(v)).slice(1, -1); // escapes " \ and controls
  if (q === "'") return s.replace(/\\"/g, '"').replace(/'/g, "\\'");
  return s;
}

// rank orders candidates for a typed prefix: names that start with it
// first, then names that contain it, each alphabetically; at most max.
export function rank(candidates, prefix, max) {
  const p = prefix.toLowerCase();
  const starts = [], has = [];
  for (const c of candidates) {
    const l = c.toLowerCase();
    if (l === p && c === prefix) continue; // already typed
    if (l.startsWith(p)) starts.push(c);
    else if (p && l.includes(p)) has.push(c);
  }
  starts.sort();
  has.sort();
  return starts.concat(has).slice(0, max);
}
