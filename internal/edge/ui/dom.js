// DOM helpers. Every string that came from a machine (ids, labels) reaches
// the page through textContent or an attribute value only, never through
// markup.

// h builds an element. props: class, text, title, dataset, attrs; children
// are nodes or strings (which become text nodes).
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const k in props) {
      const v = props[k];
      if (v == null) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k === "title") el.title = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k === "attrs") for (const a in v) el.setAttribute(a, v[a]);
      else el[k] = v;
    }
  }
  for (const c of children) {
    if (c == null || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

// setText updates an element's text only when it changed.
export function setText(el, s) {
  if (el._t !== s) {
    el._t = s;
    el.textContent = s;
  }
}

// visible shows the characters that would hide or disguise text: control
// characters and bidi and zero-width format characters become [U+XXXX], so
// "\u202egnp.exe" cannot pose as "exe.png" and a bell is not an empty box.
export function visible(s) {
  return String(s).replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g,
    (c) => "[U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "]");
}
