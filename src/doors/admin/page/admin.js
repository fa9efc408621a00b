// The admin page: one view per section, each filled from /admin/api/. The credentials (an
// Authorization value) live in this tab's sessionStorage only; every call sends them with
// credentials "omit", so the browser adds none of its own and never asks for any. Every
// text from the server goes into the page as text (textContent), never as markup: the
// Content-Security-Policy requires Trusted Types for that, and allows none.
"use strict";

const KEY = "openpush-admin";
const VIEWS = ["status", "users", "topics", "tokens", "phone"];
const STATUS_REFRESH_MS = 5000;
let statusTimer = null;
let users = [];

const $ = (id) => document.getElementById(id);
// A form's field by name (form.name would be the form's own name).
const field = (form, name) => form.elements.namedItem(name);

// An element with attributes (on… handlers as functions, others as attributes) and
// children (nodes or text).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else if (value !== false && value != null) el.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child != null) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function show(message, bad) {
  const el = $("message");
  el.textContent = message;
  el.className = bad ? "bad" : "";
  el.hidden = !message;
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// A call of the admin API; the answer's JSON, or an ApiError with the server's detail.
async function api(method, path, body) {
  const headers = { Authorization: sessionStorage.getItem(KEY) || "" };
  const init = { method, headers, credentials: "omit", cache: "no-store", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch("api/" + path, init);
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    json = null;
  }
  if (!response.ok) {
    if (response.status === 401) logout("Logged out: the name, password or token was not accepted.");
    throw new ApiError(response.status, (json && json.detail) || response.statusText);
  }
  return json;
}

// Runs a change, reports its outcome and shows the view again.
async function change(what, method, path, body) {
  try {
    const answer = await api(method, path, body);
    show(what, false);
    await route();
    return answer;
  } catch (e) {
    show(e.message, true);
    return null;
  }
}

function basic(user, secret) {
  const bytes = new TextEncoder().encode(user + ":" + secret);
  return "Basic " + btoa(String.fromCharCode(...bytes));
}

async function login(event) {
  event.preventDefault();
  const form = event.target;
  const user = field(form, "user").value.trim();
  const secret = field(form, "secret").value;
  const header = user === "" && secret.startsWith("tk_") ? "Bearer " + secret : basic(user, secret);
  sessionStorage.setItem(KEY, header);
  try {
    await api("GET", "status");
  } catch (e) {
    sessionStorage.removeItem(KEY);
    show(e.status === 403 ? "This user is not an administrator." : e.message, true);
    return;
  }
  form.reset();
  show("", false);
  sessionStorage.setItem(KEY + "-user", user || "(access token)");
  if (!VIEWS.includes(location.hash.slice(1))) location.hash = "#status";
  await route();
}

function logout(message) {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(KEY + "-user");
  show(message || "", Boolean(message));
  route();
}

// Shows the view the URL's fragment names, or the login form.
async function route() {
  clearInterval(statusTimer);
  statusTimer = null;
  const loggedIn = Boolean(sessionStorage.getItem(KEY));
  const view = loggedIn ? (VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "status") : "login";
  $("nav").hidden = !loggedIn;
  $("who").textContent = loggedIn ? sessionStorage.getItem(KEY + "-user") : "";
  for (const id of ["login"].concat(VIEWS)) $(id).hidden = id !== view;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", a.hash === "#" + view);
  try {
    if (view === "status") {
      await loadStatus();
      statusTimer = setInterval(() => loadStatus().catch((e) => show(e.message, true)), STATUS_REFRESH_MS);
    } else if (view === "users") await loadUsers();
    else if (view === "topics") await loadTopics();
    else if (view === "tokens") await loadTokens();
    else if (view === "phone") await loadPhone();
  } catch (e) {
    show(e.message, true);
  }
}

function bytes(n) {
  if (n == null) return "unknown";
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function duration(secs) {
  const d = Math.floor(secs / 86400);
  const hours = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  return (d ? d + " d " : "") + (d || hours ? hours + " h " : "") + m + " min";
}

function count(n, what) {
  return n + " " + what + (n === 1 ? "" : "s");
}

function date(secs) {
  return secs ? new Date(secs * 1000).toLocaleString() : "never";
}

function rows(table, head, items, row) {
  table.replaceChildren(h("tr", {}, head.map((t) => h("th", {}, t))));
  if (!items.length) table.append(h("tr", {}, h("td", { colspan: head.length, class: "muted" }, "none")));
  for (const item of items) table.append(h("tr", {}, row(item).map((cell) => h("td", {}, cell))));
}

function pairs(dl, entries) {
  dl.replaceChildren(...entries.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function usage(used, max) {
  return [h("meter", { min: 0, max: max, value: used || 0, high: max * 0.9 }), bytes(used) + " of " + bytes(max)];
}

async function loadStatus() {
  const s = await api("GET", "status");
  $("status-time").textContent = "updated " + new Date().toLocaleTimeString();
  const cert = s.certificate_expires;
  const days = cert ? Math.floor((cert - s.now) / 86400) : null;
  pairs($("status-server"), [
    ["Version", s.version],
    ["Up for", duration(s.uptime_secs)],
    ["Connections", s.connections + " of " + s.max_connections],
    ["Streams", String(s.streams)],
    ["Memory", bytes(s.resident_bytes)],
    ["Certificate", cert ? h("span", { class: days < 14 ? "warn" : "" }, "expires " + date(cert) + " (" + days + " days)") : "no TLS here"],
  ]);
  pairs($("status-store"), [
    ["Queued messages", String(s.queued_messages)],
    ["Budget", usage(s.store.used_bytes, s.store.max_bytes)],
    ["Without an account", usage(s.store.anonymous_bytes, s.store.max_anonymous_bytes)],
    ["Firefox and Sunup", usage(s.store.user_agent_bytes, s.store.max_user_agent_bytes)],
    ["Posts", s.posts_accepted + " accepted, " + s.posts_refused + " refused"],
  ]);
  rows($("status-doors"), ["Door", "Streams"], s.doors, (d) => [d.door, String(d.streams)]);
  const others = [];
  if (s.user_agent_streams) others.push({ name: "Firefox and Sunup (no user)", streams: s.user_agent_streams, doors: [] });
  if (s.anonymous_streams) others.push({ name: "without a user", streams: s.anonymous_streams, doors: [] });
  rows($("status-users"), ["User", "Streams", "By door"], s.users.concat(others), (u) => [
    u.name,
    h("span", { class: u.streams ? "live" : "muted", "data-streams": u.name }, String(u.streams)),
    u.doors.filter((d) => d.streams).map((d) => d.door + " " + d.streams).join(", "),
  ]);
}

async function loadUsers() {
  users = await api("GET", "users");
  const list = $("users-list");
  list.replaceChildren();
  for (const u of users) list.append(userCard(u));
}

function userCard(u) {
  const card = h("details", { "data-user": u.name });
  const devices = h("table");
  rows(devices, ["Device", "Apps", "Connected", "Queued", ""], u.devices, (d) => [
    d.name,
    d.apps.join(", ") || h("span", { class: "muted" }, "none"),
    d.live ? h("span", { class: "live" }, "yes") : "no",
    String(d.queued),
    h("button", { type: "button", class: "danger", onclick: () => confirm("Delete the device " + d.name + "?") && change("Device deleted.", "DELETE", "users/" + u.id + "/devices/" + d.id) }, "Delete"),
  ]);
  const password = h("form", { class: "actions", onsubmit: (e) => {
    e.preventDefault();
    change("Password changed.", "PUT", "users/" + u.id + "/password", { password: field(e.target, "password").value });
  } }, h("label", {}, "New password", h("input", { name: "password", type: "password", required: true, autocomplete: "new-password" })), h("button", { type: "submit" }, "Change password"));
  const device = h("form", { class: "actions", onsubmit: async (e) => {
    e.preventDefault();
    const made = await change("", "POST", "users/" + u.id + "/devices", { name: field(e.target, "name").value });
    if (made) show("Device " + made.name + " added. Its key, shown this once: " + made.key, false);
  } }, h("label", {}, "New OpenPush device", h("input", { name: "name", required: true, autocomplete: "off" })), h("button", { type: "submit", class: "quiet" }, "Add device"));
  const remove = h("button", { type: "button", class: "danger", onclick: () => confirm("Delete the user " + u.name + " with its devices, topics and messages?") && change("User " + u.name + " deleted.", "DELETE", "users/" + u.id) }, "Delete user");
  card.append(
    h("summary", {}, u.name, " ", h("span", { class: "role" }, [u.admin ? "administrator" : "user", count(u.devices.length, "device"), count(u.topics.length, "topic"), count(u.tokens, "token")].join(", "))),
    h("h3", {}, "Devices (OpenPush and NextPush)"),
    devices,
    h("p", { class: "hint" }, "Topics: ", u.topics.join(", ") || "none", ". ntfy apps log in with the user's name and password: see Add a phone."),
    password,
    device,
    h("div", { class: "actions" }, remove),
  );
  return card;
}

async function loadTopics() {
  const [topics, list] = await Promise.all([api("GET", "topics"), api("GET", "users")]);
  users = list;
  rows($("topics-list"), ["Topic", "Owner", "Grants", "Queued", "Subscribed", ""], topics, (t) => [
    h("code", {}, t.name),
    t.owner || h("span", { class: "muted" }, "nobody yet"),
    t.grants.map((g) => g.user + " " + (g.read ? "r" : "") + (g.write ? "w" : "")).join(", ") || "",
    String(t.queued),
    String(t.streams),
    h("button", { type: "button", class: "danger", onclick: () => confirm("Delete the topic " + t.name + " and its messages?") && change("Topic deleted.", "DELETE", "topics", { topic: t.name }) }, "Delete"),
  ]);
  fillUsers(field($("grant"), "user"));
}

function fillUsers(select) {
  const chosen = select.value;
  select.replaceChildren(...users.map((u) => h("option", { value: u.name }, u.name)));
  if (users.some((u) => u.name === chosen)) select.value = chosen;
}

async function grant(event) {
  event.preventDefault();
  const f = event.target;
  await change("Grant changed.", "PUT", "grants", { topic: field(f, "topic").value.trim(), user: field(f, "user").value, read: field(f, "read").checked, write: field(f, "write").checked });
}

async function loadTokens() {
  const tokens = await api("GET", "tokens");
  rows($("tokens-list"), ["User", "Token", "Label", "Last used", "From", "Expires", ""], tokens, (t) => [
    t.user,
    "#" + t.id,
    t.label,
    date(t.last_access),
    t.last_origin,
    date(t.expires),
    h("button", { type: "button", class: "danger", onclick: () => confirm("Revoke token #" + t.id + " of " + t.user + "?") && change("Token revoked.", "DELETE", "users/" + t.user_id + "/tokens/" + t.id) }, "Revoke"),
  ]);
}

async function loadPhone() {
  const [setup, list] = await Promise.all([api("GET", "setup"), api("GET", "users")]);
  users = list;
  $("server-url").textContent = setup.server_url;
  const qr = qrSvg(setup.server_url);
  $("server-qr").replaceChildren(qr || h("p", { class: "warn" }, "This URL is too long for a QR code."));
  const warnings = [];
  if (setup.server_url.startsWith("http://")) warnings.push("Phones away from home need an https:// address (see Expose it to the internet in the docs).");
  if (!setup.public_url_set) warnings.push("public_url is not set: this is the address this browser reached, which phones may not reach.");
  $("setup-warnings").replaceChildren(...warnings.map((w) => h("span", { class: "warn" }, w, h("br"))));
  fillUsers($("phone-user"));
  $("setup-ntfy").hidden = !setup.ntfy;
  $("setup-nextpush").hidden = !setup.nextpush;
  $("setup-autopush").hidden = !setup.autopush_url;
  $("insecure-ws").hidden = !(setup.autopush_url || "").startsWith("ws://");
  for (const el of document.querySelectorAll("#phone code.url")) el.textContent = setup.server_url;
  for (const el of document.querySelectorAll("#phone code.ws")) el.textContent = setup.autopush_url || "";
  showUser();
}

function showUser() {
  for (const el of document.querySelectorAll("#phone code.user")) el.textContent = $("phone-user").value;
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout(""));
  $("grant").addEventListener("submit", grant);
  $("phone-user").addEventListener("change", showUser);
  $("user-add").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target;
    const name = field(f, "name").value.trim();
    if (await change("User " + name + " added.", "POST", "users", { name, password: field(f, "password").value, admin: field(f, "admin").checked })) f.reset();
  });
  window.addEventListener("hashchange", () => {
    show("", false);
    route();
  });
  route();
});
