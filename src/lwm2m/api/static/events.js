// A dedicated worker that reads the server's event stream (GET /api/events) and posts each
// event to the page as {kind, data} (data: the event's JSON text), plus {kind: "open"} and
// {kind: "error"} for the connection's state. EventSource reconnects by itself.
//
// The stream is read here rather than in the page because it is a request that never ends:
// renderers that wait until a page has no request pending (such as headless Chromium's
// --virtual-time-budget, used by the tests) would otherwise wait forever.
"use strict";

const KINDS = ["registered", "updated", "deregistered", "expired", "notification",
  "observe-ended", "send", "awake", "sleeping", "sc-identified", "dropped"];

const source = new EventSource("../api/events");
source.addEventListener("open", () => postMessage({ kind: "open" }));
source.addEventListener("error", () => postMessage({ kind: "error" }));
for (const kind of KINDS) {
  source.addEventListener(kind, (message) => postMessage({ kind: kind, data: message.data }));
}
