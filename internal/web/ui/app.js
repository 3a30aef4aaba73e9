// Placeholder page: lists machines. Every string from the hub came from an
// agent and is untrusted, so it is only ever set as textContent.
"use strict";

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

async function load() {
  const status = document.getElementById("status");
  try {
    const res = await fetch("/api/machines");
    if (!res.ok) {
      throw new Error("HTTP " + res.status);
    }
    const machines = await res.json();
    const body = document.querySelector("#machines tbody");
    body.replaceChildren();
    for (const m of machines) {
      const row = document.createElement("tr");
      const id = cell(row, "");
      const a = document.createElement("a");
      a.href = "/api/machines/" + encodeURIComponent(m.id);
      a.textContent = m.id;
      id.appendChild(a);
      cell(row, m.hostname);
      cell(row, m.online ? "online" : "offline");
      cell(row, m.last_seen || "never");
      body.appendChild(row);
    }
    status.textContent = machines.length + " machine(s)";
  } catch (err) {
    status.textContent = "could not load machines: " + err.message;
  }
}

load();
setInterval(load, 5000);
