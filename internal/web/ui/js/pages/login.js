// The login page: /login?next=PATH. Posts the credentials to
// /api/auth/login (the hub sets the session cookie) and goes to next, which
// must be a path on this site.
import { h } from "../dom.js";
import { me, forget, logout } from "../session.js";

// safeNext returns the ?next= path when it is a same-origin path ("/…",
// not "//…" or "/\…"), else "/".
export function safeNext(search) {
  const next = new URLSearchParams(search).get("next") || "";
  if (!next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  try {
    const u = new URL(next, location.origin);
    if (u.origin !== location.origin || u.pathname === "/login") return "/";
    return u.pathname + u.search + u.hash;
  } catch (e) {
    return "/";
  }
}

export async function start(main) {
  document.title = "Log in — sysmonstm";
  const next = safeNext(location.search);
  const user = h("input", { name: "username", type: "text", required: true, attrs: { autocomplete: "username", autocapitalize: "none", spellcheck: "false", maxlength: "64" } });
  const pass = h("input", { name: "password", type: "password", required: true, attrs: { autocomplete: "current-password", maxlength: "1024" } });
  const err = h("p", { class: "error auth-error", attrs: { role: "alert" } });
  const submit = h("button", { class: "btn primary", type: "submit", text: "Log in" });
  const status = h("p", { class: "muted auth-status" });
  const form = h("form", { class: "auth-form", attrs: { method: "post", action: "/api/auth/login" } },
    h("h1", { text: "Log in" }),
    status,
    h("label", { class: "field" }, "Username", user),
    h("label", { class: "field" }, "Password", pass),
    err,
    h("div", { class: "auth-buttons" }, submit));
  main.replaceChildren(h("div", { class: "auth-page" }, form,
    h("p", { class: "muted auth-note", text: "The first admin's password is in the hub's data directory (admin-password) or was set with SYSMONSTM_ADMIN_PASSWORD. Forgot it? Run `sysmonstm user passwd NAME` on the hub." })));

  me().then(function (m) {
    if (m && !m.anonymous) {
      status.replaceChildren("Logged in as ", h("strong", { text: m.user }), " (" + m.role + "). ",
        h("a", { href: next, text: "Continue" }), " · ",
        h("button", { class: "btn ghost", type: "button", text: "Log out", on: { click: logout } }));
    } else if (m && m.anonymous) {
      status.textContent = "Anyone on this machine may read without logging in; log in to make changes.";
    }
  }).catch(function () {});
  user.focus();

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    err.textContent = "";
    if (!user.value || !pass.value) {
      err.textContent = "Enter a username and a password.";
      return;
    }
    submit.disabled = true;
    try {
      const res = await fetch("/api/auth/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ username: user.value, password: pass.value }),
      });
      let data = null;
      try { data = await res.json(); } catch (e) { data = null; }
      if (!res.ok) {
        let msg = data && typeof data.error === "string" ? data.error : "Login failed (HTTP " + res.status + ").";
        if (res.status === 401) msg = "Wrong username or password.";
        err.textContent = msg;
        pass.value = "";
        pass.focus();
        return;
      }
      forget();
      location.assign(next);
    } catch (e) {
      err.textContent = "Could not reach the hub: " + (e && e.message ? e.message : e);
    } finally {
      submit.disabled = false;
    }
  });
}
