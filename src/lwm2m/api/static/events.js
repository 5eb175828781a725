// A dedicated worker that reads the server's event stream (GET /api/events) and posts each
// event to the page as {kind, data} (data: the event's JSON text), plus {kind: "open"} and
// {kind: "error"} for the connection's state, and {kind: "unauthorized"} when the API refuses
// the token (401).
//
// The page first posts {token: <string or null>, epoch}; nothing is fetched before that. Every
// later such message restarts the stream with that token. Each message to the page carries the
// epoch of the token it was read with, so that the page can tell those of a previous token.
//
// The stream is read with fetch (so that it can carry "Authorization: Bearer <token>", which
// EventSource cannot send) and parsed here as Server-Sent Events. After an error or the end of
// the stream the worker reconnects after 1 s, doubling up to 30 s (back to 1 s once a stream
// opens); after a 401 it waits for a new token.
//
// The stream is read here rather than in the page because it is a request that never ends:
// renderers that wait until a page has no request pending (such as headless Chromium's
// --virtual-time-budget, used by the tests) would otherwise wait forever.
"use strict";

const KINDS = new Set(["registered", "updated", "deregistered", "expired", "notification",
  "observe-ended", "send", "awake", "sleeping", "sc-identified", "dropped"]);
const FIRST_DELAY = 1000; // ms before the first reconnection
const LAST_DELAY = 30000; // and at most

let token = null; // the bearer token, or null
let epoch = null; // the page's tag of it
let generation = 0; // of the current stream: a superseded one stops quietly
let controller = null; // aborts the current fetch
let timer = null; // the pending reconnection
let delay = FIRST_DELAY;

self.addEventListener("message", (message) => {
  const order = message.data;
  if (order === null || typeof order !== "object" || !("token" in order)) return;
  token = typeof order.token === "string" && order.token !== "" ? order.token : null;
  epoch = order.epoch;
  generation += 1;
  if (controller !== null) controller.abort();
  clearTimeout(timer);
  delay = FIRST_DELAY;
  connect(generation);
});

// (only called for the current generation)
function post(kind, data) {
  postMessage(data === undefined ? { kind: kind, epoch: epoch }
    : { kind: kind, data: data, epoch: epoch });
}

function retry(current) {
  if (current !== generation) return;
  post("error");
  timer = setTimeout(() => connect(current), delay);
  delay = Math.min(delay * 2, LAST_DELAY);
}

async function connect(current) {
  if (current !== generation) return;
  controller = new AbortController();
  const headers = { Accept: "text/event-stream" };
  if (token !== null) headers.Authorization = "Bearer " + token;
  let response;
  try {
    response = await fetch("../api/events",
      { headers: headers, cache: "no-store", signal: controller.signal });
  } catch (error) {
    retry(current);
    return;
  }
  if (current !== generation) {
    response.body?.cancel().catch(() => {});
    return;
  }
  if (response.status === 401) {
    response.body?.cancel().catch(() => {});
    post("unauthorized"); // and wait for a new token
    return;
  }
  const type = response.headers.get("Content-Type") || "";
  if (!response.ok || response.body === null || !type.startsWith("text/event-stream")) {
    response.body?.cancel().catch(() => {});
    retry(current);
    return;
  }
  post("open");
  delay = FIRST_DELAY;
  try {
    await read(response.body, (kind, data) => {
      if (current === generation && KINDS.has(kind)) post(kind, data);
    });
  } catch (error) {
    // aborted, or the connection broke: reconnect below (unless superseded)
  }
  retry(current);
}

// Parse a text/event-stream body (the HTML standard's rules): lines end with CRLF, LF or CR;
// "field: value" lines (one space after the colon dropped); lines starting with ":" are
// comments; "data" lines are joined with "\n"; a blank line dispatches the event (none when
// it has no data). "id" and "retry" are not used by this server and are ignored. An event not
// ended by a blank line when the stream ends is dropped.
async function read(body, dispatch) {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8"); // replaces bad bytes, drops a leading BOM
  let buffer = "";
  let kind = "";
  let data = [];

  function line(text) {
    if (text === "") {
      if (data.length > 0) dispatch(kind || "message", data.join("\n"));
      kind = "";
      data = [];
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") kind = value;
    else if (field === "data") data.push(value);
  }

  for (;;) {
    const { done, value } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    const ends = /\r\n|\r|\n/g;
    let start = 0;
    let end;
    while ((end = ends.exec(buffer)) !== null) {
      // a CR that ends the data read so far may be the first half of a CRLF
      if (end[0] === "\r" && ends.lastIndex === buffer.length && !done) break;
      line(buffer.slice(start, end.index));
      start = ends.lastIndex;
    }
    buffer = buffer.slice(start);
    if (done) return;
  }
}
