"""Drive ``GET /api/events`` as an ASGI server would, to read the stream event by event and
to disconnect at a chosen moment (``httpx.ASGITransport`` buffers a whole response body, so it
cannot read an endless stream)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message

from .conftest import TIMEOUT


class EventStreamPeer:
    """One HTTP client of ``/api/events``: :meth:`next_frame` / :meth:`next_event` read the
    stream; :meth:`disconnect` ends the connection and waits for the app to finish."""

    def __init__(self, app: ASGIApp, send_error: BaseException | None = None) -> None:
        self.app = app
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self._disconnected = asyncio.Event()
        self._request_sent = False
        self._send_error = send_error
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.task: asyncio.Task[None] | None = None

    async def _receive(self) -> Message:
        if not self._request_sent:
            self._request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and self._send_error is not None:
            raise self._send_error
        await self.messages.put(message)

    async def open(self) -> None:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/api/events",
            "raw_path": b"/api/events",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"test"), (b"accept", b"text/event-stream")],
            "client": ("127.0.0.1", 50000),
            "server": ("test", 80),
        }
        self.task = asyncio.ensure_future(self.app(scope, self._receive, self._send))
        async with asyncio.timeout(TIMEOUT):
            start = await self.messages.get()
        assert start["type"] == "http.response.start"
        self.status = start["status"]
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]}

    async def next_frame(self) -> bytes | None:
        """The next chunk of the body; None when the body ended."""
        async with asyncio.timeout(TIMEOUT):
            message = await self.messages.get()
        assert message["type"] == "http.response.body"
        if not message.get("more_body", False):
            assert message["body"] == b""
            return None
        body: bytes = message["body"]
        return body

    async def next_event(self, kind: str | None = None) -> tuple[str, dict[str, Any]]:
        """The next ``(event, data)`` (of ``kind``), skipping comments and other kinds."""
        while True:
            frame = await self.next_frame()
            assert frame is not None, "the stream ended"
            if frame.startswith(b":"):
                continue
            event, data = parse_frame(frame)
            if kind is None or event == kind:
                return event, data

    async def disconnect(self) -> None:
        self._disconnected.set()
        assert self.task is not None
        async with asyncio.timeout(TIMEOUT):
            await self.task


def parse_frame(frame: bytes) -> tuple[str, dict[str, Any]]:
    """``(event, data)`` of one SSE frame (``event:`` and one ``data:`` line)."""
    text = frame.decode()
    assert text.endswith("\n\n"), text
    lines = text[:-2].split("\n")
    assert len(lines) == 2, text
    event_line, data_line = lines
    assert event_line.startswith("event: "), text
    assert data_line.startswith("data: "), text
    data: dict[str, Any] = json.loads(data_line.removeprefix("data: "))
    return event_line.removeprefix("event: "), data
