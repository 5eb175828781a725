"""In-memory harness for the client engine: a fake clock, scripted server answers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lwm2m.client import ClientConfig, ClientEngine, ObjectHandler, Peer, parse_config
from lwm2m.client.engine import OutgoingNotification, OutgoingRequest
from lwm2m.client.events import ClientEvent
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.codec import codec_for
from lwm2m.codec.content_format import ContentFormat
from lwm2m.model import Node, Path
from lwm2m.model.registry import default_registry
from lwm2m.operations.requests import Register
from lwm2m.testing import FakeClock, require_component

WALL = 1_700_000_000.0
START = 1000.0


def server(ssid: int, port: int | None = None, **extra: Any) -> dict[str, Any]:
    """A [[servers]] table for ``ssid`` at 127.0.0.1:(5600 + ssid)."""
    table: dict[str, Any] = {
        "uri": f"coap://127.0.0.1:{port or 5600 + ssid}",
        "short_server_id": ssid,
        "lifetime": 300,
        "mute_send": False,
    }
    table.update(extra)
    return table


def config(*servers: Mapping[str, Any], **extra: Any) -> ClientConfig:
    data: dict[str, Any] = {
        "endpoint": "test-ep",
        "device": {"manufacturer": "ACME", "model_number": "M1", "serial_number": "S1"},
    }
    if servers:
        data["servers"] = list(servers)
    data.update(extra)
    return parse_config(data)


def bs_table(port: int = 5700, **extra: Any) -> dict[str, Any]:
    table: dict[str, Any] = {"uri": f"coap://127.0.0.1:{port}"}
    table.update(extra)
    return table


class Harness:
    """A client engine with a fake clock; answers requests as the test says."""

    def __init__(
        self, cfg: ClientConfig | None = None, objects: Iterable[ObjectHandler] = (), **kw: Any
    ) -> None:
        self.clock = FakeClock(START)
        self.engine = ClientEngine(
            cfg or config(server(101)), objects, wall_clock=lambda: WALL, **kw
        )
        self.events: list[ClientEvent] = []
        self.sent: list[OutgoingRequest] = []
        self.notified: list[OutgoingNotification] = []
        self.timeline: list[tuple[float, OutgoingNotification]] = []
        """Every notification with the fake time it was produced at."""

    @property
    def now(self) -> float:
        return self.clock.now

    @property
    def tree(self) -> Any:
        return self.engine.tree

    # -- driving ---------------------------------------------------------------------------------

    def _drain(self) -> None:
        self.sent.extend(self.engine.requests_to_send())
        notifications = self.engine.notifications_to_send()
        self.notified.extend(notifications)
        self.timeline.extend((self.now, n) for n in notifications)
        while (event := self.engine.next_event()) is not None:
            self.events.append(event)

    def start(self) -> None:
        self.engine.start(self.now)
        self._drain()

    def advance(self, seconds: float) -> None:
        """Move the clock, running every timer that falls due on the way."""
        target = self.now + seconds
        while True:
            timer = self.engine.get_timer()
            if timer is None or timer > target:
                break
            self.clock.set(max(timer, self.now))
            self.engine.handle_timer(self.now)
            self._drain()
        self.clock.set(target)
        self.engine.handle_timer(self.now)
        self._drain()

    def take(self, kind: type | None = None) -> list[OutgoingRequest]:
        """The requests sent since the last take (of ``kind`` operations only, if given)."""
        self._drain()
        out = [r for r in self.sent if kind is None or isinstance(r.operation, kind)]
        self.sent = [r for r in self.sent if r not in out]
        return out

    def take_events(self, kind: type | None = None) -> list[Any]:
        self._drain()
        out = [e for e in self.events if kind is None or isinstance(e, kind)]
        self.events = [e for e in self.events if e not in out]
        return out

    def take_notifications(self) -> list[OutgoingNotification]:
        self._drain()
        out, self.notified = self.notified, []
        return out

    def respond(
        self,
        request: OutgoingRequest,
        code: int = Code.CHANGED,
        *,
        location: tuple[str, ...] | None = None,
        payload: bytes = b"",
    ) -> None:
        message = Message(code, payload)
        if location is not None:
            message.location_path = location
        self.engine.handle_response(request.request_id, message, self.now)
        self._drain()

    def fail(self, request: OutgoingRequest, reason: str = "timeout") -> None:
        self.engine.handle_response(request.request_id, None, self.now, reason=reason)
        self._drain()

    def register_all(self) -> None:
        """Start (if needed) and accept every pending Register with 2.01."""
        if not self.engine._started:
            self.start()
        for request in self.take(Register):
            ssid = request.connection.short_server_id
            self.respond(request, Code.CREATED, location=("rd", f"r{ssid}"))

    # -- requests from a server ------------------------------------------------------------------

    def peer(self, ssid: int | None = 101) -> Peer:
        if ssid is None:
            return Peer(("127.0.0.1", 5700))
        return Peer(("127.0.0.1", 5600 + ssid))

    def request(
        self,
        code: int,
        path: str = "",
        *,
        ssid: int | None = 101,
        payload: bytes = b"",
        cf: int | None = None,
        accept: int | None = None,
        observe: int | None = None,
        token: bytes = b"",
        query: list[str] | None = None,
        peer: Peer | None = None,
    ) -> Message:
        message = Message(
            code,
            payload,
            uri_path=path,
            content_format=cf,
            accept=accept,
            observe=observe,
            uri_query=query,
            token=token,
        )
        response = self.engine.handle_request(message, peer or self.peer(ssid), self.now)
        self._drain()
        return response

    def bs(self, code: int, path: str = "", **kw: Any) -> Message:
        return self.request(code, path, ssid=None, **kw)


REGISTRY = default_registry()
"""Definitions the test codecs use (tests add their own objects)."""


def decode(message: Message, path: str) -> Node:
    """Decode a response payload with our codecs."""
    assert message.content_format is not None
    return codec_for(message.content_format).decode(message.payload, Path.parse(path), REGISTRY)


def encode(node: Node, path: str, cf: ContentFormat = ContentFormat.TLV) -> bytes:
    return codec_for(cf).encode(node, Path.parse(path), REGISTRY)


def code(message: Message) -> str:
    return Code(message.code).dotted


require = require_component
