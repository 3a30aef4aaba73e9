// DOM helpers. Agent strings only ever reach the page through textContent
// (the "text" prop and string children): never through markup.

// h builds an element. props: class, text, attrs (object), on (events),
// title; children are nodes or strings (become text nodes).
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const k in props) {
      const v = props[k];
      if (v == null) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k === "title") el.title = v;
      else if (k === "attrs") for (const a in v) el.setAttribute(a, v[a]);
      else if (k === "on") for (const ev in v) el.addEventListener(ev, v[ev]);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el[k] = v;
    }
  }
  for (const c of children) {
    if (c == null || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

// setText updates an element's text only when it changed (avoids layout work).
export function setText(el, s) {
  if (el._t !== s) {
    el._t = s;
    el.textContent = s;
  }
}

// setClass sets el.className only when it changed.
export function setClass(el, c) {
  if (el._c !== c) {
    el._c = c;
    el.className = c;
  }
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
