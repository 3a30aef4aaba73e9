// DOM helpers of the hub's dashboard and the edge's page (one file, served
// by both). Every string that came from a machine (ids, hostnames, labels,
// unit, process and container names, alert text) reaches the page through
// textContent or a title only, never through markup, and shows its control
// and bidi characters visibly: the "text" and "title" props, string
// children and setText all pass through visible().

// h builds an element. props: class, text, title, attrs (object, set
// as-is), on (events), dataset; other props are set as properties (value,
// href, type…), unchanged. Children are nodes or strings (text nodes).
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const k in props) {
      const v = props[k];
      if (v == null) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = visible(v);
      else if (k === "title") el.title = visible(v);
      else if (k === "attrs") for (const a in v) el.setAttribute(a, v[a]);
      else if (k === "on") for (const ev in v) el.addEventListener(ev, v[ev]);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el[k] = v;
    }
  }
  for (const c of children) {
    if (c == null || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(visible(c)) : c);
  }
  return el;
}

// setText updates an element's text (made visible) only when it changed,
// which avoids layout work.
export function setText(el, s) {
  if (el._t !== s) {
    el._t = s;
    el.textContent = visible(s);
  }
}

// setClass sets el.className only when it changed.
export function setClass(el, c) {
  if (el._c !== c) {
    el._c = c;
    el.className = c;
  }
}

// HIDDEN matches the characters that would hide or disguise text: C0 and C1
// controls (newline and tab included), the bidi embeddings, overrides,
// isolates and marks, zero-width spaces and joiners, and the BOM.
const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/;
const HIDDEN_ALL = new RegExp(HIDDEN.source, "g");

// visible shows the characters HIDDEN matches as [U+XXXX], so "\u202egnp.exe"
// cannot pose as "exe.png", "web-1\n" cannot pose as "web-1" and a bell is
// not an empty box. Other text, right-to-left scripts included, is unchanged.
export function visible(s) {
  s = String(s);
  return HIDDEN.test(s) ? s.replace(HIDDEN_ALL, (c) => "[U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "]") : s;
}

// machineURL is the dashboard page of a machine; ids are percent-encoded.
export function machineURL(id) {
  return "/machines/" + encodeURIComponent(id);
}

// labelText renders labels as "k=v k2=v2" (for search and titles).
export function labelText(labels) {
  if (!labels) return "";
  return Object.keys(labels).sort().map((k) => k + "=" + labels[k]).join(" ");
}

// lines splits multi-line text (a rule's description) into text and <br>
// children for h, so its newlines break lines instead of showing [U+000A].
export function lines(s) {
  const out = [];
  String(s).split(/\r?\n/).forEach((l, i) => {
    if (i) out.push(document.createElement("br"));
    out.push(l);
  });
  return out;
}
