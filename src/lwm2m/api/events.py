"""Server events as Server-Sent Events (``GET /api/events``, ``text/event-stream``).

One SSE event per :mod:`lwm2m.server.events` event: ``event:`` is the kind -- ``registered``,
``updated``, ``deregistered``, ``expired``, ``notification``, ``observe-ended``, ``send``,
``awake``, ``sleeping``, ``sc-identified`` (the names of the CLI's event lines) -- and
``data:`` one line of JSON: the endpoint and registration id, plus per kind the registration
(registered / updated), the observed path(s) and the content as plain node JSON
(notification), the time-stamped values (send), the reason (observe-ended).

Each subscriber gets its own bounded queue (:meth:`LwM2MServer.subscribe`, ``queue_size``
events). A slow subscriber loses the **oldest** events, never blocks the server; before the next
event it is sent ``event: dropped`` with ``{"dropped": n}`` so it knows to re-read state. The
stream opens with a ``: subscribed`` comment (the subscription exists from then on) and sends a
``: keep-alive`` comment after ``keepalive`` idle seconds (proxies; and a write is how a gone
peer is noticed on servers that do not report disconnects).

:class:`EventStreamResponse` watches the connection itself: when the HTTP client disconnects
the stream task is cancelled at once (even with no event to send), the subscription is closed
and the subscriber forgotten -- no task outlives the request. When the LwM2M server stops, the
subscription ends and so does the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeAlias

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.node_json import node_to_json
from lwm2m.io.lwm2m_server import Subscription
from lwm2m.server import events as ev
from lwm2m.server.registration import Registration

__all__ = ["Describe", "EventStreamResponse", "EventStreams", "event_frame", "event_payload"]

Describe: TypeAlias = Callable[[Registration], dict[str, Any]]
"""A registration as JSON (the body of ``GET /api/clients/{endpoint}``)."""


def _base(registration: Registration) -> dict[str, Any]:
    return {"endpoint": registration.endpoint, "registration_id": registration.id}


def _format_name(cf: int | None) -> str | None:
    return None if cf is None else ContentFormat(cf).short_name


def event_payload(event: ev.ServerEvent, describe: Describe) -> tuple[str, dict[str, Any]]:
    """``(kind, data)`` of a server event; ``describe(registration)`` gives the registration's
    JSON (the same as ``GET /api/clients/{endpoint}``)."""
    match event:
        case ev.Registered(registration, replaced):
            data = _base(registration)
            data["registration"] = describe(registration)
            data["replaced"] = None if replaced is None else replaced.id
            return "registered", data
        case ev.Updated(_, new):
            data = _base(new)
            data["registration"] = describe(new)
            return "updated", data
        case ev.Deregistered(registration, _):
            return "deregistered", _base(registration)
        case ev.Expired(registration, _):
            return "expired", _base(registration)
        case ev.NotificationReceived(registration, observation, response):
            data = _base(registration)
            data["token"] = observation.token.hex()
            data["path"] = str(observation.path)
            data["code"] = response.dotted_code
            data["content_format"] = _format_name(response.content_format)
            if response.composite is not None:
                data["content"] = {str(p): node_to_json(n) for p, n in response.composite.items()}
            else:
                data["content"] = (
                    None if response.content is None else node_to_json(response.content)
                )
            return "notification", data
        case ev.ObservationEnded(registration, observation, reason):
            data = _base(registration)
            data["token"] = observation.token.hex()
            data["paths"] = [str(p) for p in observation.paths]
            data["reason"] = reason
            return "observe-ended", data
        case ev.SendReceived(registration, groups, content_format):
            data = _base(registration)
            data["content_format"] = _format_name(content_format)
            data["groups"] = [
                {
                    "timestamp": group.timestamp,
                    "content": {str(p): node_to_json(n) for p, n in group.nodes.items()},
                }
                for group in groups
            ]
            return "send", data
        case ev.Awake(registration):
            return "awake", _base(registration)
        case ev.Sleeping(registration):
            return "sleeping", _base(registration)
        case ev.ComponentIdentified(registration, components):
            data = _base(registration)
            data["components"] = [c.summary for c in components]
            return "sc-identified", data
    raise TypeError(f"not a server event: {type(event).__name__}")  # pragma: no cover


def event_frame(kind: str, data: dict[str, Any]) -> bytes:
    """One SSE event: ``event: kind`` and one ``data:`` line of JSON (no newlines inside)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {kind}\ndata: {text}\n\n".encode()


class EventStreams:
    """The open event streams of an app (for introspection and tests: :attr:`active`)."""

    def __init__(self, queue_size: int, keepalive: float) -> None:
        if queue_size < 1 or keepalive <= 0:
            raise ValueError("queue_size must be >= 1 and keepalive > 0")
        self.queue_size = queue_size
        self.keepalive = keepalive
        self.active: set[Subscription[ev.ServerEvent]] = set()

    async def frames(
        self, subscription: Subscription[ev.ServerEvent], describe: Describe
    ) -> AsyncGenerator[bytes, None]:
        """The SSE frames of ``subscription`` until it ends."""
        yield b": subscribed\n\n"
        dropped = 0
        while True:
            try:
                async with asyncio.timeout(self.keepalive):
                    event = await anext(subscription)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            except StopAsyncIteration:
                return
            if subscription.dropped != dropped:
                yield event_frame("dropped", {"dropped": subscription.dropped - dropped})
                dropped = subscription.dropped
            yield event_frame(*event_payload(event, describe))


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` response that ends when the peer disconnects (whatever the ASGI
    server's spec version) and then closes its subscription."""

    media_type = "text/event-stream"

    def __init__(
        self,
        frames: AsyncGenerator[bytes, None],
        subscription: Subscription[ev.ServerEvent],
        streams: EventStreams,
    ) -> None:
        super().__init__(
            frames,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._frames = frames
        self._subscription = subscription
        self._streams = streams

    async def _send_all(self, send: Send) -> None:
        with contextlib.suppress(OSError):  # the peer went away mid-write
            await self.stream_response(send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.ensure_future(self._send_all(send))
        listening = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait({streaming, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            streaming.cancel()
            listening.cancel()
            results = await asyncio.gather(streaming, listening, return_exceptions=True)
            self._subscription.close()
            self._streams.active.discard(self._subscription)
            await self._frames.aclose()
        for result in results:
            if isinstance(result, Exception):
                raise result
