// sysmonstm dashboard boot: theme, route, then the page module.
//
// Every string the hub sends came from an agent and is untrusted: pages build
// the DOM with createElement and set agent text with textContent only (see
// js/dom.js); nothing is ever parsed as markup. The hub's CSP forbids inline
// script, so this file and the modules under /ui/js/ are all there is.
"use strict";

(function () {
  const root = document.documentElement;
  const saved = localStorage.getItem("sysmonstm-theme");
  const prefersDark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  root.dataset.theme = saved || (prefersDark ? "dark" : "light");

  const btn = document.getElementById("theme");
  function label() {
    btn.textContent = root.dataset.theme === "dark" ? "Light theme" : "Dark theme";
  }
  label();
  btn.addEventListener("click", function () {
    root.dataset.theme = root.dataset.theme === "dark" ? "light" : "dark";
    localStorage.setItem("sysmonstm-theme", root.dataset.theme);
    label();
    window.dispatchEvent(new Event("sysmonstm-theme"));
  });

  // Pages: "/" is the overview, "/machines/{id}" a machine; the others are
  // modules under /ui/js/pages/ that export start(main).
  const path = location.pathname;
  const main = document.getElementById("main");
  function fail(err) {
    main.textContent = "Could not load the dashboard: " + (err && err.message ? err.message : err);
  }
  const pages = { "/alerts": "alerts", "/rules": "rules", "/silences": "silences", "/notifiers": "notifiers", "/login": "login", "/admin": "admin", "/explore": "explore" };
  const charted = { "/explore": true }; // pages that draw uPlot charts
  for (const a of document.querySelectorAll("nav.nav a")) {
    if (a.getAttribute("href") === path) a.setAttribute("aria-current", "page");
  }
  if (path.indexOf("/machines/") === 0) {
    const id = decodeURIComponent(path.slice("/machines/".length));
    loadScript("/ui/vendor/uPlot.iife.min.js")
      .then(function () { return import("/ui/js/machine.js"); })
      .then(function (mod) { mod.start(main, id); })
      .catch(fail);
  } else if (Object.prototype.hasOwnProperty.call(pages, path)) {
    (charted[path] ? loadScript("/ui/vendor/uPlot.iife.min.js") : Promise.resolve())
      .then(function () { return import("/ui/js/pages/" + pages[path] + ".js"); })
      .then(function (mod) { mod.start(main); })
      .catch(fail);
  } else {
    import("/ui/js/overview.js").then(function (mod) { mod.start(main); }).catch(fail);
  }
  import("/ui/js/alertbadge.js").then(function (mod) { mod.start(document.getElementById("alert-badge")); }).catch(function () {});
  import("/ui/js/session.js").then(function (mod) { mod.start(document.getElementById("session")); }).catch(function () {});

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      const s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("load " + src)); };
      document.head.appendChild(s);
    });
  }
})();
