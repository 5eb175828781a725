// The web UI of the LwM2M server: plain DOM over the REST API (/api) and its event stream
// (read by the worker ui/events.js, which posts each event here).
//
// Everything that comes from a device (endpoint names, values, diagnostics) is put in the page
// with textContent / DOM nodes, never as markup. The page is driven by its URL:
//   ?client=<endpoint>            select that client
//   &path=/3/0                    fill the path field
//   &read=/3/0/0 | &discover=/3   run that operation once the client is selected
//   #token=<token>                the API's bearer token (taken, then removed from the URL)
//
// When the API requires a bearer token, the page sends "Authorization: Bearer <token>" with
// every call (and hands the token to the event worker). The token comes from the URL's
// fragment (never sent to the server; removed from the address bar and history at once), else
// from this tab's sessionStorage, else from the sign-in form shown when the API answers 401.
"use strict";

(function () {
  const LOG_LINES = 200;
  const NOTIFICATION_LINES = 50;
  const PATH = /^\/?[0-9]+(\/[0-9]+){0,3}$/;
  const TOKEN_KEY = "lwm2m-api-token"; // in sessionStorage

  const clients = new Map(); // endpoint -> registration JSON (GET /api/clients/{endpoint})
  let selected = null; // endpoint of the selected client
  let pending = readDeepLink(); // the URL's operation, run once the clients are known
  let held = null; // events received while the clients are being (re-)read
  let reloadWanted = false; // another (re-)read was asked for during one
  let token = null; // the API's bearer token, when one is known
  let worker = null; // the event stream's worker (ui/events.js)
  let workerToken = null; // the token it was last given
  let epoch = 0; // counts the tokens given to the worker: its messages carry the epoch

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
  // A 401 shows the sign-in form. An answer to a call made with another token than the
  // current one (signed in or out meanwhile) is {ok: false, status: 0, stale: true}.
  async function api(method, url, body) {
    const sent = token;
    const init = { method: method, headers: { Accept: "application/json" } };
    if (sent !== null) init.headers.Authorization = "Bearer " + sent;
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
    if (sent !== token) {
      return { ok: false, status: 0, stale: true, body: { error: "the API token changed" } };
    }
    if (response.status === 401) unauthorized(sent);
    return { ok: response.ok, status: response.status, body: data };
  }

  // -- the token -------------------------------------------------------------------------------

  function storedToken() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY);
    } catch (error) {
      return null; // storage disabled
    }
  }

  function storeToken(value) {
    try {
      if (value === null) window.sessionStorage.removeItem(TOKEN_KEY);
      else window.sessionStorage.setItem(TOKEN_KEY, value);
    } catch (error) {
      // storage disabled: the token lasts as long as the page
    }
  }

  // The token of the URL's fragment (#token=...), removed from the URL (and so from the
  // history and from bookmarks); undefined when the fragment has none.
  function takeFragmentToken() {
    // (not URLSearchParams, which would turn a "+" of the token into a space)
    const url = new URL(window.location.href);
    const parts = url.hash.replace(/^#/, "").split("&");
    const at = parts.findIndex((part) => part === "token" || part.startsWith("token="));
    if (at < 0) return undefined;
    let value = parts[at].slice("token=".length);
    try {
      value = decodeURIComponent(value);
    } catch (error) {
      // not percent-encoding: the text as it is
    }
    const rest = parts.filter((part, index) => index !== at && part !== "");
    url.hash = rest.length > 0 ? "#" + rest.join("&") : "";
    window.history.replaceState(window.history.state, "", url);
    return value.trim();
  }

  // Use this token (null: none) from now on, for the page and the event stream.
  function useToken(value) {
    token = value === "" ? null : value;
    storeToken(token);
    $("signed-in").hidden = token === null;
    $("openapi").hidden = token !== null; // a link cannot send the token: it would answer 401
    if (worker !== null && workerToken !== token) tellWorker();
  }

  // The API answered 401 to a request made with `sent` (a token or null).
  function unauthorized(sent) {
    if (sent !== token) return; // an answer to an older token: the current one decides
    const form = $("sign-in");
    if (sent !== null) {
      useToken(null); // not accepted: forget it
      $("sign-in-message").textContent = "The API token was not accepted. Enter a valid token.";
    } else if (form.hidden) {
      $("sign-in-message").textContent = "This server requires an API token. Enter it to sign in.";
    } // else: the form is up already, with its message
    clients.clear();
    renderClients();
    $("data").hidden = true;
    if (form.hidden) {
      form.hidden = false;
      $("token").focus();
    }
  }

  function signIn(value) {
    useToken(value);
    $("sign-in").hidden = true;
    $("data").hidden = false;
    $("sign-in-message").textContent = "";
    loadClients();
  }

  function signOut() {
    useToken(null);
    clients.clear();
    renderClients();
    if (selected !== null) renderSelected();
    loadClients(); // answers 401 (and shows the sign-in form) where the API needs a token
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
    } else if (answer.status !== 401 && !answer.stale) {
      logLine("error", "", "GET /api/clients: " + errorText(answer));
    }
    const events = held;
    held = null;
    if (answer.status !== 401 && !answer.stale) {
      for (const [kind, data] of events) apply(kind, data);
      renderClients();
      if (selected !== null) renderSelected();
      runPending(); // (after a 401: once signed in)
    }
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

  // Give the worker the token (it starts, or restarts, the stream once told).
  function tellWorker() {
    workerToken = token;
    epoch += 1;
    worker.postMessage({ token: token, epoch: epoch });
  }

  function connect() {
    const connection = $("connection");
    worker = new Worker("ui/events.js");
    tellWorker();
    worker.addEventListener("message", (message) => {
      if (message.data.epoch !== epoch) return; // read with a previous token
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
      if (kind === "unauthorized") {
        // the worker waits for another token
        connection.textContent = "not signed in";
        connection.dataset.state = "down";
        unauthorized(workerToken);
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
    const fromUrl = takeFragmentToken();
    useToken(fromUrl !== undefined ? fromUrl : storedToken());
    window.addEventListener("hashchange", () => {
      const value = takeFragmentToken();
      if (value !== undefined && value !== "") signIn(value);
    });
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const field = $("token");
      const value = field.value.trim();
      field.value = "";
      if (value === "") {
        $("sign-in-message").textContent = "Enter the API token.";
        return;
      }
      signIn(value);
    });
    $("sign-out").addEventListener("click", signOut);
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
