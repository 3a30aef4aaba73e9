// Session: who is logged in, the header's "NAME (role) · Log out" / "Log in"
// widget, and api(), the one way pages call the JSON API (it sends the CSRF
// token and turns {"error"} answers into thrown Errors).
//
// User names come from the server and are rendered with textContent only.

import { h } from "/ui/js/dom.js";

let mePromise = null;
let csrf = "";

// me returns the current principal {user, role, anonymous, csrf_token}, or
// null when nobody is logged in and anonymous access is off (401). The
// answer is cached for the page's lifetime; logout clears it.
export async function me() {
  if (!mePromise) {
    mePromise = fetch("/api/auth/me", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(async function (res) {
        if (res.status === 401) return null;
        if (!res.ok) throw new Error("GET /api/auth/me: HTTP " + res.status);
        const m = await res.json();
        csrf = m.csrf_token || "";
        return m;
      })
      .catch(function (err) {
        mePromise = null;
        throw err;
      });
  }
  return mePromise;
}

// loginURL is /login?next=<the current page>.
export function loginURL() {
  const next = location.pathname + location.search;
  if (location.pathname === "/login") return "/login";
  return "/login?next=" + encodeURIComponent(next);
}

// api sends method path with body as JSON (when given) and the session's
// X-CSRF-Token header. It returns the parsed JSON answer, or null for 204.
// On an error status it throws an Error whose message is the server's
// {"error"} text and whose .status is the HTTP status; a 401 also sends the
// browser to the login page.
export async function api(method, path, body) {
  method = (method || "GET").toUpperCase();
  if (method !== "GET" && method !== "HEAD" && !csrf) {
    try { await me(); } catch (e) { /* the request below reports the error */ }
  }
  const headers = { Accept: "application/json" };
  const init = { method: method, credentials: "same-origin", headers: headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const res = await fetch(path, init);
  if (res.status === 401 && location.pathname !== "/login") {
    location.assign(loginURL());
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = null; }
  }
  if (!res.ok) {
    const msg = data && typeof data.error === "string" ? data.error : method + " " + path + ": HTTP " + res.status;
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return data;
}

// forget drops the cached principal (after login or logout).
export function forget() {
  mePromise = null;
  csrf = "";
}

// logout ends the session on the server and goes to the login page.
export async function logout() {
  try {
    await api("POST", "/api/auth/logout");
  } catch (e) { /* the session is gone either way */ }
  forget();
  location.assign("/login");
}

// start renders the session widget into el (the header's #session span) and
// reveals the Admin link for admins.
export function start(el) {
  if (!el) return;
  me().then(function (m) {
    el.textContent = "";
    if (m && !m.anonymous && m.user) {
      const out = h("button", { class: "btn ghost", type: "button", text: "Log out", on: { click: logout } });
      el.append(h("span", { class: "session-user", text: m.user + " (" + m.role + ")" }), " · ", out);
    } else if (location.pathname !== "/login") {
      el.append(h("a", { href: loginURL(), text: "Log in" }));
    }
    const admin = document.getElementById("nav-admin");
    if (admin) admin.hidden = !(m && m.role === "admin" && !m.anonymous);
  }).catch(function () {
    el.textContent = "";
  });
}
