"""What every request to the REST API passes first (pure ASGI, before FastAPI reads anything).

- **Body size**: a request body is read up to ``max_body`` bytes (a ``Content-Length`` above it
  is refused before reading); more is a 413, so one HTTP caller cannot make the server buffer
  and parse without bound. The body read is handed on to the app as one message.
- **JSON only for requests that change something**: a POST, PUT or PATCH under ``/api`` must say
  ``Content-Type: application/json``, even when it has no body (Execute, Observe); anything else
  is a 415. A web page of another site can make the operator's browser send a "simple" request
  (an auto-submitted ``<form>``: url-encoded, multipart or text/plain) without asking first, but
  not a JSON one, so this refuses cross-site request forgery of Execute (Reboot, Factory Reset),
  Observe, Write or Create. DELETE and PUT need a CORS preflight, which this app never grants.

Both answers are the API's JSON errors ``{"error": ...}``.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_MAX_BODY", "RequestGuard"]

DEFAULT_MAX_BODY = 1 << 20
"""1 MiB: far above any LwM2M payload a person or a script sends through the API."""

_CHANGING = frozenset({"POST", "PUT", "PATCH"})


class RequestGuard:
    """The ASGI middleware of the module docstring."""

    def __init__(self, app: ASGIApp, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        method = scope["method"]
        if method in _CHANGING and scope["path"].startswith("/api/"):
            media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if media != b"application/json":
                await refuse(
                    send,
                    415,
                    f"a {method} needs Content-Type: application/json (also without a body)",
                )
                return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await refuse(send, 413, f"the request body is over {self.max_body} bytes")
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # a disconnect: let the app see it
                await self.app(scope, _replay(bytes(body), receive, message), send)
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.max_body:
                await refuse(send, 413, f"the request body is over {self.max_body} bytes")
                return
        await self.app(scope, _replay(bytes(body), receive, None), send)


def _replay(body: bytes, receive: Receive, pending: Message | None) -> Receive:
    """A ``receive`` that hands over ``body`` in one message, then ``pending`` (a disconnect
    already read) or what the connection says next (an event stream waits on it to learn that
    its client went away)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent, pending
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if pending is not None:
            message, pending = pending, None
            return message
        return await receive()

    return replay


async def refuse(
    send: Send, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Answer an ASGI request from middleware: ``{"error": message}`` with ``status`` (and
    ``headers``), the API's error shape, before the application sees it."""
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
