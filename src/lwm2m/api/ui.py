"""The small web UI of the LwM2M server (decision 6 of ARCHITECTURE.md): plain HTML, CSS and
JavaScript in ``static/`` (no build step, nothing fetched from elsewhere) over the REST API.

- ``GET /`` -- the page (``index.html``); its URL drives it: ``/?client=<endpoint>`` selects a
  client, ``&read=/3/0/0`` or ``&discover=/3`` runs that operation on load, ``&path=`` only
  fills the path field; ``#token=<token>`` hands it the API's bearer token (a fragment is never
  sent to the server; the page removes it from the address bar at once);
- ``GET /ui/{file}`` -- its script, its event-stream worker and style sheet.

These files are public also when the API needs a token (:mod:`lwm2m.api.auth`): the page then
takes the token from the fragment, the tab's ``sessionStorage`` or its sign-in form (shown on a
401) and sends it as ``Authorization: Bearer`` with every call, its event stream included.

The page lists the registered clients and keeps the table live from ``/api/events``; a selected
client gets an operation panel (Read, Write, Execute, Observe / cancel, Discover). Everything a
device sends (endpoint names, values, diagnostics) is put in the page as text, never as markup,
and every UI response carries :data:`CONTENT_SECURITY_POLICY` (scripts and styles only from the
server's own files, nothing inline) and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "STATIC", "mount_ui"]

STATIC = Path(__file__).parent / "static"
"""The UI's files."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
"""Only the server's own files; no inline script or style, no plugins, no framing."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
"""The headers of every UI response."""


class _WithHeaders:
    """An ASGI app that adds :data:`SECURITY_HEADERS` to the responses of ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_secured)


def mount_ui(app: FastAPI) -> None:
    """Serve the UI: the page at ``/``, its files under ``/ui/`` (outside the OpenAPI
    document)."""
    index = STATIC / "index.html"

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    app.mount("/ui", _WithHeaders(StaticFiles(directory=STATIC)), name="ui")
