// The header badge next to "Alerts": how many alerts fire now. Hidden when
// none; red while any is critical, amber ("warn") when all are warnings.
//
// It loads the firing alerts once, then follows what pages with a live feed
// publish on window (see pages/alerting.js): "sysmonstm-alert" for each
// alert event, "sysmonstm-alerts" with a fresh list of active alerts. It
// reloads every 15 s for pages without a feed. It reads with plain fetch,
// not session.js's api(): a 401 must not send the login page itself to
// /login.

const POLL_MS = 15000;

const firing = new Map(); // alert id → severity, firing alerts only
let el = null;
let gen = 0; // bumped by every event: a reload that started before it is stale

// start keeps el (#alert-badge) up to date.
export function start(badge) {
  if (!badge) return;
  el = badge;
  window.addEventListener("sysmonstm-alert", (e) => {
    gen++;
    apply(e.detail);
    render();
  });
  window.addEventListener("sysmonstm-alerts", (e) => {
    if (!Array.isArray(e.detail)) return;
    gen++;
    firing.clear();
    for (const a of e.detail) apply(a);
    render();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) load();
  });
  load();
  setInterval(() => {
    if (!document.hidden) load();
  }, POLL_MS);
}

function apply(a) {
  if (!a || a.id == null) return;
  if (a.state === "firing") firing.set(String(a.id), a.severity);
  else firing.delete(String(a.id));
}

async function load() {
  const my = gen;
  let list;
  try {
    const res = await fetch("/api/alerts?state=firing", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!res.ok) {
      if (res.status === 401 || res.status === 403 || res.status === 404) {
        firing.clear();
        render();
      }
      return;
    }
    list = await res.json();
  } catch {
    return; // hub unreachable: keep what is shown
  }
  if (!Array.isArray(list) || my !== gen) return;
  firing.clear();
  for (const a of list) apply(a);
  render();
}

function render() {
  const n = firing.size;
  let crit = false;
  for (const s of firing.values()) if (s === "critical") crit = true;
  el.hidden = n === 0;
  el.textContent = n ? String(n) : "";
  el.classList.toggle("warn", n > 0 && !crit);
  el.title = n ? n + (n === 1 ? " firing alert" : " firing alerts") + (crit ? ", critical" : "") : "";
  el.setAttribute("aria-label", n ? n + " firing" : "");
  el.dataset.count = String(n);
}
