// The web UI of the LwM2M server: plain DOM over the REST API (/api) and its event stream
// (read by the worker ui/events.js, which posts each event here).
//
// Everything that comes from a device (endpoint names, values, diagnostics) is put in the page
// with textContent / DOM nodes, never as markup. The page is driven by its URL:
//   ?client=<endpoint>            select that client
//   &path=/3/0                    fill the path field
//   &read=/3/0/0 | &discover=/3   run that operation once the client is selected
"use strict";

(function () {
  const LOG_LINES = 200;
  const NOTIFICATION_LINES = 50;
  const PATH = /^\/?[0-9]+(\/[0-9]+){0,3}$/;

  const clients = new Map(); // endpoint -> registration JSON (GET /api/clients/{endpoint})
  let selected = null; // endpoint of the selected client
  let pending = readDeepLink(); // the URL's operation, run once the clients are known
  let held = null; // events received while the clients are being (re-)read
  let reloadWanted = false; // another (re-)read was asked for during one

  const $ = (id) => document.getElementById(id);

  // -- small helpers ---------------------------------------------------------------------------

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function pruneChildren(list, max) {
    while (list.children.length > max) list.removeChild(list.lastElementChild);
  }

  function clientUrl(endpoint, suffix) {
    return "api/clients/" + encodeURIComponent(endpoint) + (suffix || "");
  }

  function pathSegments(path) {
    return path.replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
  }

  function time(iso) {
    const date = new Date(iso);
    return isNaN(date) ? String(iso) : date.toLocaleString();
  }

  function json(value) {
    return JSON.stringify(value, null, 2);
  }

  // An API call: {ok, status, body}; errors carry the API's {"error", "coap_code", ...}.
  async function api(method, url, body) {
    const init = { method: method, headers: { Accept: "application/json" } };
    if (method !== "GET") {
      // the API takes changes only as JSON (a cross-site form cannot send that)
      init.headers["Content-Type"] = "application/json";
    }
    if (body !== undefined) {
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      return { ok: false, status: 0, body: { error: "network error: " + error.message } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = { error: response.statusText || "unreadable answer" };
    }
    return { ok: response.ok, status: response.status, body: data };
  }

  // -- the clients table -----------------------------------------------------------------------

  function queueText(registration) {
    if (!registration.queue_mode) return "no";
    return registration.awake ? "yes (awake)" : "yes (asleep)";
  }

  function clientRow(registration) {
    const row = document.createElement("tr");
    if (registration.endpoint === selected) row.className = "selected";
    const head = document.createElement("th");
    head.scope = "row";
    const button = el("button", registration.endpoint, "link");
    button.type = "button";
    button.addEventListener("click", () => select(registration.endpoint, true));
    head.appendChild(button);
    row.appendChild(head);
    const address = registration.address;
    const cells = [
      address.host.includes(":") ? "[" + address.host + "]:" + address.port
        : address.host + ":" + address.port,
      registration.lifetime,
      registration.binding,
      registration.lwm2m_version,
      queueText(registration),
      time(registration.updated_at),
    ];
    for (const text of cells) row.appendChild(el("td", text));
    return row;
  }

  function renderClients() {
    const body = $("client-rows");
    const endpoints = Array.from(clients.keys()).sort();
    body.replaceChildren(...endpoints.map((endpoint) => clientRow(clients.get(endpoint))));
    $("client-count").textContent = String(endpoints.length);
    $("no-clients").hidden = endpoints.length > 0;
  }

  // (Re-)read the registrations. Events that arrive meanwhile are held and applied after the
  // list, in order, so that a list computed before an event cannot undo it.
  async function loadClients() {
    if (held !== null) {
      reloadWanted = true;
      return;
    }
    held = [];
    const answer = await api("GET", "api/clients");
    if (answer.ok) {
      clients.clear();
      for (const registration of answer.body) clients.set(registration.endpoint, registration);
    } else {
      logLine("error", "", "GET /api/clients: " + errorText(answer));
    }
    const events = held;
    held = null;
    for (const [kind, data] of events) apply(kind, data);
    renderClients();
    if (selected !== null) renderSelected();
    runPending();
    if (reloadWanted) {
      reloadWanted = false;
      loadClients();
    }
  }

  // -- the selected client ---------------------------------------------------------------------

  function select(endpoint, updateUrl) {
    selected = endpoint;
    $("notifications").replaceChildren();
    $("status").textContent = "";
    $("result").textContent = "";
    renderClients();
    renderSelected();
    if (updateUrl) {
      const url = new URL(window.location.href);
      url.search = "";
      url.searchParams.set("client", endpoint);
      window.history.replaceState(null, "", url);
    }
  }

  function renderSelected() {
    const panel = $("panel");
    panel.hidden = selected === null;
    if (selected === null) return;
    $("selected-endpoint").textContent = selected;
    const registration = clients.get(selected);
    const objects = $("objects");
    if (registration === undefined) {
      $("selected-state").textContent = "not registered";
      objects.replaceChildren();
      return;
    }
    $("selected-state").textContent =
      "registered " + time(registration.registered_at) +
      ", expires " + time(registration.expires_at) +
      (registration.identity ? ", " + registration.identity.kind + " " +
        registration.identity.value : ", no security");
    objects.replaceChildren(...registration.objects.map((link) => {
      const item = document.createElement("li");
      const button = el("button", link.uri, "link");
      button.type = "button";
      button.title = "use this path";
      button.addEventListener("click", () => { $("path").value = link.uri; $("path").focus(); });
      item.appendChild(button);
      item.appendChild(el("span", " v" + link.version, "version"));
      return item;
    }));
  }

  // -- operations ------------------------------------------------------------------------------

  function errorText(answer) {
    const body = answer.body || {};
    let text = answer.status ? "HTTP " + answer.status + ": " : "";
    text += body.error !== undefined ? body.error : JSON.stringify(body);
    if (body.coap_code) text += " (CoAP " + body.coap_code + ")";
    if (body.diagnostic) text += " — " + body.diagnostic;
    return text;
  }

  function showAnswer(label, answer, shown) {
    const status = $("status");
    status.className = answer.ok ? "ok" : "error";
    if (answer.ok) {
      status.textContent = label + ": HTTP " + answer.status +
        (answer.body && answer.body.code ? ", CoAP " + answer.body.code : "");
      $("result").textContent = shown === undefined ? "" : json(shown);
    } else {
      status.textContent = label + ": " + errorText(answer);
      $("result").textContent = "";
    }
  }

  async function operate(op, path) {
    if (selected === null) return;
    const endpoint = selected;
    path = (path || $("path").value).trim();
    $("path").value = path;
    const label = op.charAt(0).toUpperCase() + op.slice(1) + " " + path;
    if (!PATH.test(path)) {
      showAnswer(label, { ok: false, status: 0, body: { error: "a path is 1 to 4 ids, e.g. /3/0/0" } });
      return;
    }
    const at = pathSegments(path);
    const format = $("format").value;
    const query = format ? "?format=" + encodeURIComponent(format) : "";
    $("status").className = "";
    $("status").textContent = label + "…";
    let answer;
    switch (op) {
      case "read":
        answer = await api("GET", clientUrl(endpoint, "/" + at + query));
        showAnswer(label, answer, answer.ok ? answer.body.content : undefined);
        break;
      case "discover":
        answer = await api("GET", clientUrl(endpoint, "/" + at + "/discover"));
        showAnswer(label, answer, answer.ok ? answer.body.links : undefined);
        break;
      case "observe":
        answer = await api("POST", clientUrl(endpoint, "/" + at + "/observe" + query));
        showAnswer(label, answer, answer.ok ? answer.body.content : undefined);
        if (answer.ok && !answer.body.active) {
          $("status").textContent += " (the client did not establish the observation)";
        }
        break;
      case "cancel":
        answer = await api("DELETE", clientUrl(endpoint, "/" + at + "/observe"));
        showAnswer("Cancel observation of " + path, answer,
          answer.ok ? answer.body.map((o) => o.token) : undefined);
        break;
      case "write": {
        let value;
        try {
          value = JSON.parse($("write-value").value);
        } catch (error) {
          showAnswer(label, { ok: false, status: 0, body: { error: "not JSON: " + error.message } });
          return;
        }
        const body = { content: value, replace: !$("write-partial").checked };
        answer = await api("PUT", clientUrl(endpoint, "/" + at + query), body);
        showAnswer(label, answer);
        break;
      }
      case "execute":
        answer = await api("POST", clientUrl(endpoint, "/" + at + "/execute"),
          { arguments: $("arguments").value });
        showAnswer(label, answer);
        break;
    }
  }

  // -- deep links ------------------------------------------------------------------------------

  function readDeepLink() {
    const params = new URLSearchParams(window.location.search);
    const client = params.get("client");
    if (client === null) return null;
    const link = { client: client, path: params.get("path"), op: null, at: null };
    for (const op of ["read", "discover"]) {
      if (params.has(op)) {
        link.op = op;
        link.at = params.get(op);
        break;
      }
    }
    return link;
  }

  function runPending() {
    if (pending === null) return;
    const link = pending;
    pending = null;
    select(link.client, false);
    if (link.path !== null) $("path").value = link.path;
    if (link.op !== null) operate(link.op, link.at);
  }

  // -- the event stream ------------------------------------------------------------------------

  function logLine(kind, endpoint, detail) {
    const item = document.createElement("li");
    item.appendChild(el("time", new Date().toLocaleTimeString()));
    item.appendChild(el("span", kind, "kind kind-" + kind));
    if (endpoint) item.appendChild(el("span", endpoint, "endpoint"));
    if (detail) item.appendChild(el("span", detail, "detail"));
    const log = $("log");
    log.insertBefore(item, log.firstChild);
    pruneChildren(log, LOG_LINES);
  }

  function summary(kind, data) {
    switch (kind) {
      case "registered":
      case "updated":
        return data.registration.address.host + ":" + data.registration.address.port +
          " lifetime " + data.registration.lifetime;
      case "notification":
        return data.path + " " + data.code + " " + JSON.stringify(data.content);
      case "observe-ended":
        return data.paths.join(", ") + ": " + data.reason;
      case "send":
        return data.groups.map((g) => JSON.stringify(g.content)).join(" ");
      case "sc-identified":
        return data.components.join("; ");
      case "dropped":
        return data.dropped + " events lost; state re-read";
      default:
        return "";
    }
  }

  function onEvent(kind, data) {
    logLine(kind, data.endpoint, summary(kind, data));
    if (kind === "notification") {
      if (data.endpoint === selected) {
        const item = document.createElement("li");
        item.appendChild(el("time", new Date().toLocaleTimeString()));
        item.appendChild(el("span", data.path + " " + data.code, "kind"));
        item.appendChild(el("span", JSON.stringify(data.content), "detail"));
        const list = $("notifications");
        list.insertBefore(item, list.firstChild);
        pruneChildren(list, NOTIFICATION_LINES);
      }
      return;
    }
    if (held !== null) {
      held.push([kind, data]);
      return;
    }
    if (apply(kind, data)) {
      renderClients();
      if (data.endpoint === selected) renderSelected();
    }
  }

  // Apply an event to the known registrations; true when it changed them.
  function apply(kind, data) {
    switch (kind) {
      case "registered":
      case "updated":
        clients.set(data.endpoint, data.registration);
        return true;
      case "deregistered":
      case "expired":
        return clients.delete(data.endpoint);
      case "awake":
      case "sleeping": {
        const registration = clients.get(data.endpoint);
        if (registration === undefined) return false;
        registration.awake = kind === "awake";
        return true;
      }
      default:
        return false;
    }
  }

  function connect() {
    const connection = $("connection");
    const worker = new Worker("ui/events.js");
    worker.addEventListener("message", (message) => {
      const kind = message.data.kind;
      if (kind === "open") {
        // The subscription exists from now on: re-read the state so that nothing between
        // the first list and the stream is missed.
        connection.textContent = "live";
        connection.dataset.state = "live";
        loadClients();
        return;
      }
      if (kind === "error") {
        connection.textContent = "reconnecting…";
        connection.dataset.state = "down";
        return;
      }
      let data;
      try {
        data = JSON.parse(message.data.data);
      } catch (error) {
        return;
      }
      if (kind === "dropped") {
        logLine("dropped", "", summary("dropped", data));
        loadClients();
        return;
      }
      onEvent(kind, data);
    });
  }

  // -- wiring ----------------------------------------------------------------------------------

  function init() {
    const form = $("operation");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      operate("read");
    });
    for (const button of form.querySelectorAll("button[type=button][data-op]")) {
      button.addEventListener("click", () => operate(button.dataset.op));
    }
    renderClients();
    loadClients();
    connect();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
