// The admin page: dashboard users (add, change role, reset password,
// remove) and agent tokens (create — the token is shown once, with a copy
// button — and revoke). Admins only; the API enforces it as well.
//
// Token names and machine ids are shown with textContent only.
import { h } from "../dom.js";
import { api, me, loginURL } from "../session.js";

let els = {};
let self = "";

export async function start(main) {
  document.title = "Admin — sysmonstm";
  let m = null;
  try {
    m = await me();
  } catch (e) {
    m = null;
  }
  if (!m || m.anonymous || m.role !== "admin") {
    main.replaceChildren(h("div", { class: "admin-page" },
      h("h1", { text: "Admin" }),
      h("p", { class: "al-hint muted" }, "This page is for admins: ", h("a", { href: loginURL(), text: "log in as an admin" }), ".")));
    return;
  }
  self = m.user;
  els = {
    flash: h("p", { class: "admin-flash", attrs: { role: "status", "aria-live": "polite" } }),
    error: h("p", { class: "error", attrs: { role: "alert" } }),
    users: h("tbody"),
    tokens: h("tbody"),
    secret: h("div", { class: "token-secret", hidden: true }),
  };
  main.replaceChildren(h("div", { class: "admin-page" },
    h("h1", { text: "Admin" }),
    els.flash, els.error,
    h("section", { class: "admin-section", attrs: { "aria-labelledby": "admin-users" } },
      h("h2", { id: "admin-users", text: "Users" }),
      h("p", { class: "muted al-small", text: "Viewers read; admins also change rules, notifiers, tokens and users. A new password ends that user's sessions." }),
      h("div", { class: "dtable-wrap" }, h("table", { class: "dtable admin-table", id: "users-table" },
        head(["User", "Role", "Created", "Updated", ""]), els.users)),
      userForm()),
    h("section", { class: "admin-section", attrs: { "aria-labelledby": "admin-tokens" } },
      h("h2", { id: "admin-tokens", text: "Agent tokens" }),
      h("p", { class: "muted al-small", text: "Agents pass a token with --token. A token bound to a machine id can write only as that machine. Revoked tokens' agents are disconnected within seconds." }),
      tokenForm(),
      els.secret,
      h("div", { class: "dtable-wrap" }, h("table", { class: "dtable admin-table", id: "tokens-table" },
        head(["ID", "Name", "Machine", "Created", "Expires", "Last used", "Status", ""]), els.tokens)))));
  await Promise.all([loadUsers(), loadTokens()]);
}

function head(titles) {
  return h("thead", {}, h("tr", {}, ...titles.map((t) => h("th", { text: t, attrs: { scope: "col" } }))));
}

function when(s) {
  if (!s) return "never";
  const d = new Date(s);
  return isNaN(d) ? s : d.toLocaleString();
}

function flash(msg) {
  els.error.textContent = "";
  els.flash.textContent = msg;
}

function fail(prefix, err) {
  els.flash.textContent = "";
  els.error.textContent = prefix + ": " + (err && err.message ? err.message : err);
}

// armed is a button that asks for a second click within 4 s.
function armed(label, confirmLabel, action) {
  let timer = 0;
  const b = h("button", { class: "btn danger", type: "button", text: label });
  b.addEventListener("click", async function () {
    if (!b.classList.contains("armed")) {
      b.classList.add("armed");
      b.textContent = confirmLabel;
      timer = setTimeout(function () { b.classList.remove("armed"); b.textContent = label; }, 4000);
      return;
    }
    clearTimeout(timer);
    b.disabled = true;
    try {
      await action();
    } finally {
      b.disabled = false;
      b.classList.remove("armed");
      b.textContent = label;
    }
  });
  return b;
}

function roleSelect(value) {
  const s = h("select", { attrs: { "aria-label": "Role" } },
    h("option", { value: "viewer", text: "viewer" }),
    h("option", { value: "admin", text: "admin" }));
  s.value = value;
  return s;
}

// ---- users ----

async function loadUsers() {
  let users;
  try {
    users = (await api("GET", "/api/users")) || [];
  } catch (err) {
    fail("Could not load users", err);
    return;
  }
  els.users.replaceChildren(...users.map(userRow));
}

function userRow(u) {
  const role = roleSelect(u.role);
  role.addEventListener("change", async function () {
    try {
      await api("PUT", "/api/users/" + encodeURIComponent(u.username), { role: role.value });
      flash(u.username + " is now " + role.value + ".");
    } catch (err) {
      role.value = u.role;
      fail("Could not change the role of " + u.username, err);
      return;
    }
    await loadUsers();
  });
  const actions = h("div", { class: "admin-actions" });
  const reset = h("button", { class: "btn", type: "button", text: "Reset password" });
  reset.addEventListener("click", function () { actions.replaceChildren(passwordForm(u, actions, buttons)); });
  const remove = armed("Remove", "Really remove?", async function () {
    try {
      await api("DELETE", "/api/users/" + encodeURIComponent(u.username));
      flash("Removed " + u.username + ".");
    } catch (err) {
      fail("Could not remove " + u.username, err);
      return;
    }
    await loadUsers();
  });
  const buttons = [reset, remove];
  actions.replaceChildren(...buttons);
  const name = h("td", { class: "name" }, u.username);
  if (u.username === self) name.append(h("span", { class: "muted", text: " (you)" }));
  return h("tr", { dataset: { user: u.username } }, name, h("td", {}, role), h("td", { text: when(u.created) }), h("td", { text: when(u.updated) }), h("td", {}, actions));
}

function passwordForm(u, cell, buttons) {
  const pw = h("input", { type: "password", required: true, attrs: { autocomplete: "new-password", minlength: "8", maxlength: "72", placeholder: "new password (8+ characters)", "aria-label": "New password for " + u.username } });
  const cancel = h("button", { class: "btn ghost", type: "button", text: "Cancel", on: { click: function () { cell.replaceChildren(...buttons); } } });
  const form = h("form", { class: "admin-inline" }, pw, h("button", { class: "btn primary", type: "submit", text: "Save" }), cancel);
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    try {
      await api("PUT", "/api/users/" + encodeURIComponent(u.username), { password: pw.value });
    } catch (err) {
      fail("Could not set the password of " + u.username, err);
      return;
    }
    if (u.username === self) {
      location.assign(loginURL()); // our own sessions ended
      return;
    }
    flash("New password set for " + u.username + "; their sessions ended.");
    cell.replaceChildren(...buttons);
  });
  setTimeout(function () { pw.focus(); }, 0);
  return form;
}

function userForm() {
  const name = h("input", { type: "text", required: true, attrs: { autocomplete: "off", maxlength: "64", "aria-label": "Username" } });
  const pw = h("input", { type: "password", required: true, attrs: { autocomplete: "new-password", minlength: "8", maxlength: "72", "aria-label": "Password" } });
  const role = roleSelect("viewer");
  const form = h("form", { class: "admin-form", id: "user-form" },
    h("label", { class: "field" }, "Username", name),
    h("label", { class: "field" }, "Password (8+ characters)", pw),
    h("label", { class: "field" }, "Role", role),
    h("button", { class: "btn primary", type: "submit", text: "Add user" }));
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    try {
      await api("POST", "/api/users", { username: name.value, password: pw.value, role: role.value });
    } catch (err) {
      fail("Could not add the user", err);
      return;
    }
    flash("Added " + name.value + " (" + role.value + ").");
    form.reset();
    await loadUsers();
  });
  return form;
}

// ---- tokens ----

async function loadTokens() {
  let tokens;
  try {
    tokens = (await api("GET", "/api/tokens")) || [];
  } catch (err) {
    fail("Could not load tokens", err);
    return;
  }
  els.tokens.replaceChildren(...tokens.map(tokenRow));
  if (!tokens.length) els.tokens.replaceChildren(h("tr", {}, h("td", { class: "muted", text: "No tokens yet.", attrs: { colspan: "8" } })));
}

function tokenRow(t) {
  const state = t.revoked ? "revoked" : t.expired ? "expired" : "active";
  const machine = t.machine ? t.machine : "any (" + t.machines + " used)";
  const actions = h("div", { class: "admin-actions" });
  if (state === "active") {
    actions.append(armed("Revoke", "Really revoke?", async function () {
      try {
        await api("DELETE", "/api/tokens/" + encodeURIComponent(t.id));
        flash("Revoked token " + t.id + "; its agents are disconnected within seconds.");
      } catch (err) {
        fail("Could not revoke " + t.id, err);
        return;
      }
      await loadTokens();
    }));
  }
  return h("tr", { dataset: { token: t.id } },
    h("td", { class: "mono", text: t.id }),
    h("td", { text: t.name }),
    h("td", { class: t.machine ? "mono" : "muted", text: machine }),
    h("td", { text: when(t.created) }),
    h("td", { text: when(t.expires) }),
    h("td", { text: when(t.last_used) }),
    h("td", {}, h("span", { class: "tok-state " + state, text: state })),
    h("td", {}, actions));
}

function tokenForm() {
  const name = h("input", { type: "text", attrs: { maxlength: "200", placeholder: "e.g. rack 4 web servers", "aria-label": "Name" } });
  const machine = h("input", { type: "text", attrs: { maxlength: "256", placeholder: "any", "aria-label": "Machine id" } });
  const expires = h("select", { attrs: { "aria-label": "Expires" } },
    ...[["", "never"], ["30d", "in 30 days"], ["90d", "in 90 days"], ["365d", "in 1 year"]].map(([v, t]) => h("option", { value: v, text: t })));
  const form = h("form", { class: "admin-form", id: "token-form" },
    h("label", { class: "field" }, "Name", name),
    h("label", { class: "field" }, "Bind to machine id (optional)", machine),
    h("label", { class: "field" }, "Expires", expires),
    h("button", { class: "btn primary", type: "submit", text: "Create token" }));
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const body = { name: name.value.trim() };
    if (machine.value.trim()) body.machine = machine.value.trim();
    if (expires.value) body.expires = expires.value;
    let t;
    try {
      t = await api("POST", "/api/tokens", body);
    } catch (err) {
      fail("Could not create the token", err);
      return;
    }
    showSecret(t);
    form.reset();
    await loadTokens();
  });
  return form;
}

// showSecret shows a new token once, with a copy button.
function showSecret(t) {
  const value = h("input", { type: "text", readOnly: true, value: t.token, class: "mono", attrs: { "aria-label": "New agent token", id: "new-token" } });
  const copied = h("span", { class: "muted", attrs: { role: "status" } });
  const copy = h("button", { class: "btn primary", type: "button", text: "Copy" });
  copy.addEventListener("click", async function () {
    value.select();
    try {
      await navigator.clipboard.writeText(t.token);
      copied.textContent = "Copied.";
    } catch (e) {
      copied.textContent = document.execCommand && document.execCommand("copy") ? "Copied." : "Select the text and copy it.";
    }
  });
  const done = h("button", { class: "btn ghost", type: "button", text: "Done", on: { click: function () { els.secret.hidden = true; els.secret.replaceChildren(); } } });
  els.secret.replaceChildren(
    h("p", {}, h("strong", { text: "Token " + t.id + " created. " }), "It is shown only now: copy it to the agent (--token or SYSMONSTM_TOKEN)."),
    h("div", { class: "token-line" }, value, copy, done, copied));
  els.secret.hidden = false;
  value.focus();
  value.select();
}
