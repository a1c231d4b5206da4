// riskmesh web console: one small script over the node's local API, no build step.
// The API key is entered once per browser session (sessionStorage) and sent as a
// bearer token with every call; nothing but the login form works without it.
"use strict";

const KEY = "riskmesh.apiKey";
const PAGES = ["overview", "members", "proposals", "alerts", "appeals", "query"];
const $ = (sel) => document.querySelector(sel);
let alertsStream = null; // AbortController of the live alerts stream
let lastAlertId = 0;

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY) };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  let data = null;
  try {
    data = await resp.json();
  } catch (e) {
    data = null;
  }
  if (!resp.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(resp.status, err.code || "http_error", err.message || resp.statusText);
  }
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function fillTable(table, rows, emptyText) {
  const body = table.querySelector("tbody");
  body.replaceChildren();
  if (!rows.length) {
    const cols = table.querySelectorAll("thead th").length;
    body.append(el("tr", {}, el("td", { class: "empty", colspan: cols }, emptyText)));
    return;
  }
  for (const r of rows) body.append(r);
}

function notice(id, text, bad) {
  const p = $(id);
  p.hidden = !text;
  p.textContent = text || "";
  p.classList.toggle("bad", !!bad);
}

function when(t) {
  return t ? t.replace("T", " ").replace(/\.\d+Z$/, "Z") : "never";
}

// -- login ------------------------------------------------------------------------------

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    const status = await api("GET", "/v1/status");
    showApp(status);
    return true;
  } catch (e) {
    sessionStorage.removeItem(KEY);
    const msg = e.status === 401 ? "Unknown API key." : "The node answered: " + e.message;
    $("#login-error").textContent = msg;
    return false;
  }
}

function showLogin() {
  stopAlerts();
  $("#login").hidden = false;
  $("#nav").hidden = true;
  $("#who").hidden = true;
  for (const p of PAGES) $("#page-" + p).hidden = true;
}

function showApp(status) {
  $("#login").hidden = true;
  $("#nav").hidden = false;
  $("#who").hidden = false;
  $("#who-member").textContent = (status.member.name || "?") + " · " + status.member.id.slice(0, 8);
  route();
}

// -- pages ------------------------------------------------------------------------------

function route() {
  if (!sessionStorage.getItem(KEY)) return showLogin();
  let page = location.hash.replace("#", "") || "overview";
  if (!PAGES.includes(page)) page = "overview";
  for (const p of PAGES) $("#page-" + p).hidden = p !== page;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.page === page);
  }
  if (page !== "alerts") stopAlerts();
  const render = { overview, members, proposals, alerts, appeals, query: () => {} }[page];
  render().catch(onError);
}

function onError(e) {
  if (e instanceof ApiError && e.status === 401) {
    sessionStorage.removeItem(KEY);
    showLogin();
    $("#login-error").textContent = "The API key is no longer valid; sign in again.";
    return;
  }
  console.error(e);
}

async function overview() {
  const s = await api("GET", "/v1/status");
  const c = s.charter || {};
  $("#ov-member").textContent = s.member.name || "?";
  $("#ov-member-id").textContent = s.member.id;
  $("#ov-charter").textContent = c.consortium ? c.consortium + " v" + c.version : "no charter";
  $("#ov-epochs").textContent = "key epochs " + JSON.stringify(s.epochs);
  $("#ov-index").textContent = s.index.count.toLocaleString();
  $("#ov-version").textContent = (s.version && s.version.riskmesh) || "?";
  $("#ov-canon").textContent = s.version ? "canonical forms v" + s.version.canonical_forms : "";
  $("#ov-forks").textContent = s.forks.length;
  $("#forks-box").hidden = !s.forks.length;
  $("#forks-list").replaceChildren(
    ...s.forks.map((f) => el("li", {}, f.log + " at seq " + f.seq)));
  fillTable($("#peers-table"), s.peers.map((p) => {
    const lag = p.lag ? p.lag.we_lack + " / " + p.lag.they_lack : "unknown";
    let state = el("span", { class: "badge ok" }, "in contact");
    if (p.quarantined_until) state = el("span", { class: "badge bad" }, "quarantined");
    else if (p.backoff_until) state = el("span", { class: "badge warn" }, "backing off");
    else if (!p.last_success) state = el("span", { class: "badge" }, "not yet");
    return el("tr", { "data-peer": p.name },
      el("td", {}, p.name), el("td", {}, p.version || "?"), el("td", {}, when(p.last_success)),
      el("td", {}, p.exchanges), el("td", {}, p.failures + " (" + p.consecutive_failures + " in a row)"),
      el("td", {}, lag), el("td", {}, state));
  }), "No other member yet.");
  try {
    const a = await api("GET", "/v1/alerts?after=0&limit=1000");
    $("#ov-alerts").textContent = a.alerts.length + (a.next ? "+" : "");
  } catch (e) {
    $("#ov-alerts").textContent = e.status === 404 ? "n/a" : "–";
  }
}

async function members() {
  const s = await api("GET", "/v1/status");
  fillTable($("#members-table"), s.members.map((m) => el("tr", { "data-member": m.name },
    el("td", {}, m.name + (m.id === s.member.id ? " (this node)" : "")),
    el("td", { class: "mono" }, m.id),
    el("td", {}, m.roles.join(", ")),
    el("td", {}, el("span", { class: "badge status-" + m.status }, m.status)),
    el("td", {}, m.head ? "seq " + m.head.seq : "empty"),
    el("td", {}, m.head ? when(m.head.ts) : "–"),
    el("td", { class: "mono" }, m.endpoint))), "No charter installed.");
}

async function proposals() {
  let list;
  try {
    list = (await api("GET", "/v1/admin/proposals")).proposals;
  } catch (e) {
    if (e.status === 403) {
      notice("#proposals-message", "Proposals need an API key with the admin scope.", true);
      fillTable($("#proposals-table"), [], "–");
      return;
    }
    throw e;
  }
  fillTable($("#proposals-table"), list.slice().reverse().map((p) => {
    const sign = p.status === "pending"
      ? el("button", { class: "small", "data-sign": p.id, onclick: () => signProposal(p.id) }, "Sign")
      : "";
    return el("tr", { "data-proposal": p.id },
      el("td", {}, "v" + p.version),
      el("td", {}, p.changes.map((c) => el("div", {}, c))),
      el("td", {}, p.signers.join(", ") + " (" + p.signers.length + " of " + p.needed + ")"),
      el("td", {}, el("span", { class: "badge status-" + p.status, "data-status": p.status }, p.status)),
      el("td", {}, p.signing_deadline ? when(p.signing_deadline) : "–"),
      el("td", { class: "mono" }, p.id),
      el("td", {}, sign));
  }), "No proposals.");
}

async function signProposal(id) {
  try {
    const p = await api("POST", "/v1/admin/proposals/" + encodeURIComponent(id) + "/sign");
    notice("#proposals-message", "Signed proposal " + id + ": " + p.status +
      (p.status === "final" ? " — charter version " + p.version + " is in force." : "."));
  } catch (e) {
    notice("#proposals-message", "Not signed: " + e.code + ": " + e.message, true);
  }
  await proposals();
}

function alertRow(a) {
  const v = a.verdict || {};
  const verdict = v.match
    ? v.reporters + " reporter(s), " + (v.categories || []).join(", ")
    : "no longer reported";
  const from = a.entry ? a.entry.log.slice(0, 8) + " seq " + a.entry.seq : "";
  return el("tr", { "data-alert": a.id, class: "fresh" },
    el("td", {}, a.id), el("td", {}, when(a.at)),
    el("td", {}, el("span", { class: "badge " + (a.event === "reported" ? "bad" : "ok") }, a.event)),
    el("td", {}, a.kind), el("td", {}, a.ref || "–"), el("td", {}, verdict), el("td", { class: "mono" }, from));
}

function addAlert(a) {
  if (a.id <= lastAlertId) return; // at least once: idempotent by id
  lastAlertId = a.id;
  const body = $("#alerts-table tbody");
  const empty = body.querySelector("td.empty");
  if (empty) body.replaceChildren();
  body.prepend(alertRow(a));
}

function stopAlerts() {
  if (alertsStream) alertsStream.abort();
  alertsStream = null;
}

async function alerts() {
  stopAlerts();
  lastAlertId = 0;
  notice("#alerts-message", "");
  let backlog;
  try {
    backlog = await api("GET", "/v1/alerts?after=0&limit=1000");
  } catch (e) {
    $("#alerts-live").textContent = "unavailable";
    $("#alerts-live").className = "badge bad";
    const text = e.status === 404 ? "This node serves no alerts (no /v1/alerts)." : e.code + ": " + e.message;
    notice("#alerts-message", text, true);
    fillTable($("#alerts-table"), [], "–");
    return;
  }
  fillTable($("#alerts-table"), [], "No alerts yet.");
  for (const a of backlog.alerts) addAlert(a);
  streamAlerts();
}

// Server-Sent Events read through fetch, so that the API key goes in a header
// (EventSource cannot send one). Reconnects with Last-Event-ID.
async function streamAlerts() {
  const ctl = new AbortController();
  alertsStream = ctl;
  const badge = $("#alerts-live");
  while (alertsStream === ctl) {
    try {
      const resp = await fetch("/v1/alerts/stream", {
        headers: {
          Authorization: "Bearer " + sessionStorage.getItem(KEY),
          Accept: "text/event-stream",
          "Last-Event-ID": String(lastAlertId),
        },
        signal: ctl.signal,
      });
      if (!resp.ok) throw new ApiError(resp.status, "http_error", resp.statusText);
      badge.textContent = "live";
      badge.className = "badge ok";
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).trimStart()).join("\n");
          if (data) {
            try {
              addAlert(JSON.parse(data));
            } catch (e) {
              console.error("bad alert event", e);
            }
          }
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (e instanceof ApiError && e.status === 401) return onError(e);
    }
    if (alertsStream !== ctl) return;
    badge.textContent = "reconnecting…";
    badge.className = "badge warn";
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function appeals() {
  const box = $("#appeals-box");
  let data;
  try {
    data = await api("GET", "/v1/appeals");
  } catch (e) {
    const text = e.status === 404 ? "This node serves no appeals (no /v1/appeals)."
      : e.status === 403 ? "Appeals need an API key with the report scope." : e.code + ": " + e.message;
    notice("#appeals-message", text, true);
    box.replaceChildren();
    return;
  }
  notice("#appeals-message", "");
  const groups = Array.isArray(data.appeals) ? { appeals: data.appeals }
    : { inbound: data.inbound || [], outbound: data.outbound || [] };
  box.replaceChildren();
  for (const [name, list] of Object.entries(groups)) {
    box.append(el("h2", {}, name[0].toUpperCase() + name.slice(1) + " (" + list.length + ")"));
    const cols = [...new Set(list.flatMap((a) => Object.keys(a)))]
      .filter((k) => typeof list[0][k] !== "object" || list[0][k] === null);
    const table = el("table", { "data-appeals": name },
      el("thead", {}, el("tr", {}, cols.length ? cols.map((c) => el("th", {}, c)) : el("th", {}, ""))),
      el("tbody", {}));
    box.append(table);
    fillTable(table, list.map((a) => el("tr", {}, cols.map((c) =>
      el("td", {}, a[c] === null || a[c] === undefined ? "–" : String(a[c]))))), "None.");
  }
}

async function runQuery(ev) {
  ev.preventDefault();
  const out = $("#query-result");
  const item = { kind: $("#query-kind").value, value: $("#query-value").value };
  try {
    const [r] = (await api("POST", "/v1/query", { items: [item] })).results;
    if (r.error) {
      out.replaceChildren(el("p", { class: "notice bad verdict" }, r.error.code + ": " + r.error.message));
    } else if (!r.match) {
      out.replaceChildren(el("div", { class: "card verdict nomatch", "data-match": "false" },
        el("strong", {}, "No match"), el("div", { class: "muted" }, "No member reports this " + r.kind + ".")));
    } else {
      const rows = [
        ["Reporters", r.reporters + (r.reported_by ? " (" + r.reported_by.join(", ") + ")" : "")],
        ["Categories", r.categories.join(", ")], ["Max severity", r.max_severity],
        ["First reported", when(r.first_reported)], ["Last reported", when(r.last_reported)],
        ["Expires", when(r.expires)],
      ];
      for (const k of ["sightings", "disputes", "confidence"]) if (k in r) rows.push([k, r[k]]);
      out.replaceChildren(el("div", { class: "card verdict match", "data-match": "true" },
        el("strong", {}, "MATCH"),
        el("table", {}, el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))))));
    }
  } catch (e) {
    out.replaceChildren(el("p", { class: "notice bad" }, e.code + ": " + e.message));
    onError(e);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    $("#login-error").textContent = "";
    signIn($("#api-key").value.trim()).then((ok) => { if (ok) $("#api-key").value = ""; });
  });
  $("#logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    location.hash = "";
    showLogin();
  });
  $("#query-form").addEventListener("submit", runQuery);
  window.addEventListener("hashchange", route);
  const key = sessionStorage.getItem(KEY);
  if (key) signIn(key);
  else showLogin();
});
