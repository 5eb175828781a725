"""The asyncio CoAP endpoint on loopback: one socket as client and server, routing, block-wise,
Observe, errors, shutdown, the security seam. No sleeps: futures and events with timeouts."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lwm2m.coap import (
    CoapConfig,
    Code,
    ErrorResponse,
    Message,
    MessageType,
    Observation,
    RequestCancelled,
    RequestTimeout,
    TransmissionParameters,
    decode,
)
from lwm2m.io.coap_endpoint import (
    CoapEndpoint,
    CoapRequest,
    Handler,
    Site,
    _Protocol,
    loop_factory,
    uvloop_available,
)
from lwm2m.io.coap_transport import (
    OutputFlagLayer,
    PeerIdentity,
    PlainUdp,
    SecurityLayer,
    UdpAddress,
)


def spy_datagrams(endpoint: CoapEndpoint) -> asyncio.Queue[bytes]:
    """A queue receiving every datagram that reaches ``endpoint``'s engine."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    engine = endpoint.engine
    original = engine.receive_datagram

    def spy(data: bytes, addr: UdpAddress, now: float) -> None:
        original(data, addr, now)
        queue.put_nowait(data)

    engine.receive_datagram = spy  # type: ignore[method-assign]
    return queue


FAST = CoapConfig(
    transmission=TransmissionParameters(ack_timeout=0.05, ack_random_factor=1.0, max_retransmit=1),
    response_timeout=0.3,
)


class Store:
    """A tiny resource store used as the server's site."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, ...], bytes] = {("r",): b"hello"}
        self.seen: list[CoapRequest] = []

    def handle(self, req: CoapRequest) -> Message:
        self.seen.append(req)
        key = req.message.uri_path
        code = req.code
        if code == Code.GET:
            if key not in self.data:
                raise ErrorResponse(Code.NOT_FOUND, "no such resource")
            return Message(Code.CONTENT, self.data[key], content_format=0)
        if code in (Code.PUT, Code.IPATCH, Code.PATCH):
            self.data[key] = req.payload
            return Message(Code.CHANGED)
        if code == Code.POST:
            self.data[(*key, "new")] = req.payload
            return Message(Code.CREATED)
        if code == Code.DELETE:
            self.data.pop(key, None)
            return Message(Code.DELETED)
        if code == Code.FETCH:
            return Message(Code.CONTENT, b"fetched:" + req.payload)
        raise ErrorResponse(Code.METHOD_NOT_ALLOWED)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[CoapEndpoint, CoapEndpoint, Store]]:
    store = Store()
    site = Site()
    site.add("/", store.handle)
    async with (
        await CoapEndpoint.create(site=site) as server,
        await CoapEndpoint.create() as client,
    ):
        yield server, client, store


async def test_methods_round_trip(pair: tuple[CoapEndpoint, CoapEndpoint, Store]) -> None:
    server, client, store = pair
    remote = server.local_address
    resp = await client.request(Message(Code.GET, uri_path="/r"), remote)
    assert (resp.code, resp.payload, resp.content_format) == (Code.CONTENT, b"hello", 0)
    assert (await client.request(Message(Code.PUT, b"v2", uri_path="/r"), remote)).code == (
        Code.CHANGED
    )
    assert (await client.request(Message(Code.GET, uri_path="/r"), remote)).payload == b"v2"
    assert (await client.request(Message(Code.POST, b"p", uri_path="/r"), remote)).code == (
        Code.CREATED
    )
    assert store.data[("r", "new")] == b"p"
    assert (await client.request(Message(Code.IPATCH, b"ip", uri_path="/r"), remote)).code == (
        Code.CHANGED
    )
    fetched = await client.request(Message(Code.FETCH, b"q", uri_path="/r"), remote)
    assert fetched.payload == b"fetched:q"
    assert (await client.request(Message(Code.DELETE, uri_path="/r"), remote)).code == (
        Code.DELETED
    )
    missing = await client.request(Message(Code.GET, uri_path="/r"), remote)
    assert missing.code == Code.NOT_FOUND
    assert missing.payload == b"no such resource"
    non = await client.request(Message(Code.GET, uri_path="/r/new", mtype=MessageType.NON), remote)
    assert non.mtype == MessageType.NON
    assert non.payload == b"p"
    assert all(r.peer_identity is None and r.remote == client.local_address for r in store.seen)


async def test_one_socket_is_client_and_server() -> None:
    """The LwM2M pattern: register from port X, then get queried on port X."""
    registered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def register(req: CoapRequest) -> Message:
        registered.set_result(req.remote)
        return Message(Code.CREATED)

    server_site = Site()
    server_site.add("/rd", register)
    device_site = Site()
    device_site.add(
        "/3/0", lambda req: Message(Code.CONTENT, b"device:" + "/".join(req.path).encode())
    )
    async with (
        await CoapEndpoint.create(site=server_site) as lwm2m_server,
        await CoapEndpoint.create(site=device_site) as device,
    ):
        resp = await device.request(Message(Code.POST, uri_path="/rd"), lwm2m_server.local_address)
        assert resp.code == Code.CREATED
        async with asyncio.timeout(5):
            remote = await registered
        assert remote == device.local_address
        read = await lwm2m_server.request(Message(Code.GET, uri_path="/3/0/1"), remote)
        assert read.payload == b"device:1"
        nothing = await lwm2m_server.request(Message(Code.GET, uri_path="/5"), remote)
        assert nothing.code == Code.NOT_FOUND
        assert device.stats.unrouted == 1


async def test_routing_by_longest_prefix() -> None:
    site = Site()
    site.add("/a", lambda r: Message(Code.CONTENT, b"a:" + "/".join(r.path).encode()))
    site.add(("a", "b"), lambda r: Message(Code.CONTENT, b"ab:" + "/".join(r.path).encode()))
    assert site.route(("a", "b", "c")) is not None
    assert site.route(("x",)) is None
    async with await CoapEndpoint.create(site=site) as server, await CoapEndpoint.create() as c:
        r1 = await c.request(Message(Code.GET, uri_path="/a/x/y"), server.local_address)
        r2 = await c.request(Message(Code.GET, uri_path="/a/b/c"), server.local_address)
        assert (r1.payload, r2.payload) == (b"a:x/y", b"ab:c")
        site.remove("/a/b")
        r3 = await c.request(Message(Code.GET, uri_path="/a/b/c"), server.local_address)
        assert r3.payload == b"a:b/c"


def test_site_route_prefers_the_longest_prefix() -> None:
    def handler(name: str) -> Handler:
        return lambda r: Message(Code.CONTENT, name.encode())

    site = Site()
    a, ab, abcd = handler("a"), handler("ab"), handler("abcd")
    site.add("/a", a)
    site.add("/a/b", ab)
    site.add("/a/b/c/d", abcd)
    assert site.route(("a", "b")) == (ab, ())  # the whole path
    assert site.route(("a", "b", "c")) == (ab, ("c",))
    assert site.route(("a", "b", "c", "d", "e", "f")) == (abcd, ("e", "f"))  # longer than any
    assert site.route(("a", "x", "c", "d")) == (a, ("x", "c", "d"))
    assert site.route(()) is None
    assert site.route(("b",)) is None
    root = handler("root")
    site.add("/", root)
    assert site.route(()) == (root, ())
    assert site.route(("b", "c")) == (root, ("b", "c"))


async def test_async_handlers_and_errors() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(req: CoapRequest) -> Message:
        started.set()
        await release.wait()
        return Message(Code.CONTENT, b"slow")

    def broken(req: CoapRequest) -> Message:
        raise RuntimeError("bug")

    async def broken_async(req: CoapRequest) -> Message:
        raise ErrorResponse(Code.FORBIDDEN, "nope")

    site = Site()
    site.add("/slow", slow)
    site.add("/broken", broken)
    site.add("/denied", broken_async)
    site.add("/bad", lambda r: Message(Code.GET))  # a request code is not a response
    config = CoapConfig(empty_ack_delay=0.0)
    async with (
        await CoapEndpoint.create(site=site, config=config) as s,
        await CoapEndpoint.create() as c,
    ):
        arrivals = spy_datagrams(c)
        task = asyncio.create_task(c.request(Message(Code.GET, uri_path="/slow"), s.local_address))
        async with asyncio.timeout(5):
            await started.wait()
            empty_ack = await arrivals.get()  # the server acknowledged before answering
        assert empty_ack[:2] == b"\x60\x00"
        release.set()
        async with asyncio.timeout(5):
            resp = await task
        assert resp.payload == b"slow"
        assert resp.mtype == MessageType.CON  # a separate response
        broken_resp = await c.request(Message(Code.GET, uri_path="/broken"), s.local_address)
        assert broken_resp.code == Code.INTERNAL_SERVER_ERROR
        denied = await c.request(Message(Code.GET, uri_path="/denied"), s.local_address)
        assert denied.code == Code.FORBIDDEN
        assert denied.payload == b"nope"
        bad = await c.request(Message(Code.GET, uri_path="/bad"), s.local_address)
        assert bad.code == Code.INTERNAL_SERVER_ERROR
        assert s.stats.handler_errors == 2


async def test_block_wise_both_ways(pair: tuple[CoapEndpoint, CoapEndpoint, Store]) -> None:
    server, client, store = pair
    big = bytes(range(256)) * 48  # 12 KB
    store.data[("big",)] = big
    resp = await client.request(Message(Code.GET, uri_path="/big"), server.local_address)
    assert resp.payload == big
    upload = bytes(reversed(big))[:6000]
    put = await client.request(Message(Code.PUT, upload, uri_path="/up"), server.local_address)
    assert put.code == Code.CHANGED
    assert store.data[("up",)] == upload


async def test_observe_with_async_iterator_and_cancel(
    pair: tuple[CoapEndpoint, CoapEndpoint, Store],
) -> None:
    server, client, _ = pair

    def observable(req: CoapRequest) -> Message:
        return Message(Code.CONTENT, b"0", observe=0)

    server.site.add("/obs", observable)
    removed: list[str] = []
    server._on_observer_removed = lambda obs, reason: removed.append(reason)
    observation = await client.observe(Message(Code.GET, uri_path="/obs"), server.local_address)
    assert observation.active
    assert observation.response is not None
    assert observation.response.payload == b"0"
    assert len(server.observations("/obs")) == 1
    assert server.observations()[0].remote == (client.local_address)
    got = []
    async with asyncio.timeout(5):
        for i in range(1, 4):
            assert server.notify("/obs", Message(Code.CONTENT, str(i).encode())) == 1
            got.append((await anext(observation)).payload)
    assert got == [b"1", b"2", b"3"]
    async with asyncio.timeout(5):
        await observation.cancel()
    assert not observation.active
    assert removed == ["deregistered"]
    assert server.observations("/obs") == []
    with pytest.raises(StopAsyncIteration):
        await anext(observation)


async def test_observe_with_a_callback(pair: tuple[CoapEndpoint, CoapEndpoint, Store]) -> None:
    server, client, _ = pair
    server.site.add("/obs", lambda r: Message(Code.CONTENT, b"0", observe=0))
    observation = await client.observe(Message(Code.GET, uri_path="/obs"), server.local_address)
    got: list[bytes] = []
    third = asyncio.Event()

    def collect(message: Message) -> None:
        got.append(message.payload)
        if len(got) == 3:
            third.set()
        if message.payload == b"boom":
            raise RuntimeError("a callback bug is contained")

    observation.on_notification(collect)
    for payload in (b"1", b"boom", b"3"):
        server.notify("/obs", Message(Code.CONTENT, payload))
    async with asyncio.timeout(5):
        await third.wait()
    assert got == [b"1", b"boom", b"3"]
    observation.on_notification(None)
    server.notify("/obs", Message(Code.CONTENT, b"4"))
    async with asyncio.timeout(5):
        assert (await anext(observation)).payload == b"4"


async def test_observe_reactive_cancel_and_declined(
    pair: tuple[CoapEndpoint, CoapEndpoint, Store],
) -> None:
    server, client, _ = pair
    server.site.add("/obs", lambda r: Message(Code.CONTENT, b"0", observe=0))
    gone = asyncio.get_running_loop().create_future()
    server._on_observer_removed = lambda obs, reason: gone.set_result(reason)
    observation = await client.observe(Message(Code.GET, uri_path="/obs"), server.local_address)
    (obs,) = server.observations()
    await observation.cancel(proactive=False)
    server.notify_observation(obs, Message(Code.CONTENT, b"x"), confirmable=True)
    async with asyncio.timeout(5):
        assert await gone == "reset"
    declined = await client.observe(Message(Code.GET, uri_path="/r"), server.local_address)
    assert not declined.active
    assert declined.final_response is not None
    assert [m async for m in declined] == []


async def test_server_ends_observation(pair: tuple[CoapEndpoint, CoapEndpoint, Store]) -> None:
    server, client, _ = pair
    server.site.add("/obs", lambda r: Message(Code.CONTENT, b"0", observe=0))
    observation = await client.observe(Message(Code.GET, uri_path="/obs"), server.local_address)
    server.notify("/obs", Message(Code.CONTENT, b"1"))
    server.notify("/obs", Message(Code.NOT_FOUND))
    async with asyncio.timeout(5):
        got = [m.payload async for m in observation]
    assert got == [b"1"]
    assert observation.final_response is not None
    assert observation.final_response.code == Code.NOT_FOUND


async def test_reregistration(pair: tuple[CoapEndpoint, CoapEndpoint, Store]) -> None:
    server, client, _ = pair
    count = 0

    def observable(req: CoapRequest) -> Message:
        nonlocal count
        count += 1
        return Message(Code.CONTENT, b"reg%d" % count, observe=0)

    server.site.add("/obs", observable)
    observation = await client.observe(Message(Code.GET, uri_path="/obs"), server.local_address)
    observation.reregister()
    async with asyncio.timeout(5):
        assert (await anext(observation)).payload == b"reg2"
    assert len(server.observations()) == 1


async def test_timeouts_and_network_errors_stay_local() -> None:
    async with await CoapEndpoint.create(config=FAST) as client:
        # a port nobody listens on: the request times out (ICMP errors are only counted)
        async with await CoapEndpoint.create() as ghost:
            dead = ghost.local_address
        with pytest.raises(RequestTimeout):
            async with asyncio.timeout(5):
                await client.request(Message(Code.GET, uri_path="/x"), dead)
        if sys.platform == "linux":  # ICMP port unreachable, reported through IP_RECVERR
            assert client.stats.network_errors >= 1
        before = client.stats.network_errors
        _Protocol(client).error_received(ConnectionRefusedError("icmp"))  # fallback transport
        assert client.stats.network_errors == before + 1
        # NON request without answer: response timeout
        with pytest.raises(RequestTimeout):
            async with asyncio.timeout(5):
                await client.request(Message(Code.GET, mtype=MessageType.NON), dead)


async def test_cancelling_the_awaiting_task_cancels_the_request() -> None:
    never = asyncio.Event()
    started = asyncio.Event()

    async def hang(req: CoapRequest) -> Message:
        started.set()
        await never.wait()
        return Message(Code.CONTENT)

    site = Site()
    site.add("/", hang)
    async with await CoapEndpoint.create(site=site) as server, await CoapEndpoint.create() as c:
        task = asyncio.create_task(c.request(Message(Code.GET), server.local_address))
        async with asyncio.timeout(5):
            await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert c.engine.pending_requests == 0
        assert not c._pending


async def test_graceful_shutdown() -> None:
    never = asyncio.Event()
    started = asyncio.Event()

    async def hang(req: CoapRequest) -> Message:
        started.set()
        await never.wait()
        return Message(Code.CONTENT)

    site = Site()
    site.add("/hang", hang)
    site.add("/obs", lambda r: Message(Code.CONTENT, observe=0))
    server = await CoapEndpoint.create(site=site)
    client = await CoapEndpoint.create()
    observation = await client.observe(Message(Code.GET, uri_path="/obs"), server.local_address)
    pending = asyncio.create_task(
        client.request(Message(Code.GET, uri_path="/hang"), server.local_address)
    )
    async with asyncio.timeout(5):
        await started.wait()
    await server.close()
    await server.close()  # idempotent
    await client.close()
    with pytest.raises(RequestCancelled):
        await pending
    assert [m async for m in observation] == []
    with pytest.raises(RequestCancelled):
        await client.request(Message(Code.GET), server.local_address)
    with pytest.raises(RequestCancelled):
        await client.observe(Message(Code.GET), server.local_address)
    assert server.notify("/obs", Message(Code.CONTENT)) == 0


class XorLayer:
    """A toy SecurityLayer: XOR 'protection', peer key = ('xor', addr), identity from a table.
    Proves the seam: peer keys differ from addresses and identities reach the handlers."""

    scheme = "coaps"

    def __init__(self, key: int = 0x5A) -> None:
        self.key = key
        self.timer_calls = 0

    def _x(self, data: bytes) -> bytes:
        return bytes(b ^ self.key for b in data)

    def connect(self, remote: UdpAddress, now: float) -> Any:
        return ("xor", remote)

    def unprotect(self, data: bytes, addr: UdpAddress, now: float) -> list[tuple[bytes, Any]]:
        return [(self._x(data), ("xor", addr))]

    def protect(self, data: bytes, peer: Any, now: float) -> list[tuple[bytes, UdpAddress]]:
        return [(self._x(data), peer[1])]

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, UdpAddress]]:
        return []

    def peer_identity(self, peer: Any) -> PeerIdentity | None:
        return PeerIdentity("psk", f"client-{peer[1][1]}".encode())

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        self.timer_calls += 1


async def test_security_layer_seam_attaches_identity() -> None:
    assert isinstance(XorLayer(), SecurityLayer)
    assert isinstance(PlainUdp(), SecurityLayer)
    seen: list[CoapRequest] = []

    def whoami(req: CoapRequest) -> Message:
        seen.append(req)
        assert req.peer_identity is not None
        return Message(Code.CONTENT, bytes(req.peer_identity.value))

    site = Site()
    site.add("/", whoami)
    async with (
        await CoapEndpoint.create(site=site, security=XorLayer()) as server,
        await CoapEndpoint.create(security=XorLayer()) as client,
        await CoapEndpoint.create() as plain,
    ):
        resp = await client.request(Message(Code.GET, uri_path="/id"), server.local_address)
        assert resp.payload == f"client-{client.local_address[1]}".encode()
        assert seen[0].remote == ("xor", client.local_address)
        # a plain client cannot talk to it: its datagrams unprotect into garbage
        arrivals = spy_datagrams(server)
        task = asyncio.create_task(
            plain.request(Message(Code.GET, mtype=MessageType.NON), server.local_address)
        )
        async with asyncio.timeout(5):
            await arrivals.get()
        assert len(seen) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


class FlagLayer(XorLayer):
    """XorLayer with the optional ``output_pending`` flag, its own queued datagrams (a
    "handshake flight") and a deadline; counts the calls the flag lets the endpoint skip."""

    def __init__(self) -> None:
        super().__init__()
        self.output_pending = False
        self.queued: list[tuple[bytes, UdpAddress]] = []
        self.deadline: float | None = None
        self.drains = 0
        self.timer_asks = 0
        self.fired = asyncio.Event()

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, UdpAddress]]:
        self.drains += 1
        out, self.queued = self.queued, []
        return out

    def get_timer(self) -> float | None:
        self.timer_asks += 1
        self.output_pending = False
        return self.deadline

    def handle_timer(self, now: float) -> None:
        super().handle_timer(now)
        if self.deadline is not None and self.deadline <= now:
            self.deadline = None
            self.output_pending = True
            self.fired.set()


async def test_output_flag_lets_the_endpoint_skip_the_layer_only_while_it_is_false() -> None:
    assert isinstance(FlagLayer(), OutputFlagLayer)
    assert not isinstance(XorLayer(), OutputFlagLayer)
    site = Site()
    site.add("/", lambda r: Message(Code.CONTENT, b"ok"))
    layer = FlagLayer()
    loop = asyncio.get_running_loop()
    async with (
        await CoapEndpoint.create(site=site, security=XorLayer()) as server,
        await CoapEndpoint.create(security=layer) as client,
    ):
        remote = server.local_address
        assert (await client.request(Message(Code.GET), remote)).payload == b"ok"
        # Nothing queued, no deadline changed: a GET round trip never asks the layer.
        drains, asks = layer.drains, layer.timer_asks
        for _ in range(3):
            assert (await client.request(Message(Code.GET), remote)).payload == b"ok"
        assert (layer.drains, layer.timer_asks) == (drains, asks)
        # Queued output (a flight) with the flag set goes out with the next request.
        sink = await CoapEndpoint.create()
        try:
            arrivals = spy_datagrams(sink)
            layer.queued.append((b"\x50\x01\x00\x07", sink.local_address))  # NON GET, mid 7
            layer.output_pending = True
            assert (await client.request(Message(Code.GET), remote)).payload == b"ok"
            async with asyncio.timeout(5):
                assert await arrivals.get() == b"\x50\x01\x00\x07"
            assert layer.drains == drains + 1
            assert not layer.output_pending  # get_timer was asked as well, and cleared it
            # A new deadline earlier than the armed timer: armed, and handle_timer runs then.
            layer.deadline = loop.time() + 0.02
            layer.output_pending = True
            assert (await client.request(Message(Code.GET), remote)).payload == b"ok"
            async with asyncio.timeout(5):
                await layer.fired.wait()
            # The same from a datagram's wake-up: the layer queued output while unprotecting.
            layer.queued.append((b"\x50\x01\x00\x08", sink.local_address))
            original = layer.unprotect

            def unprotect(data: bytes, addr: UdpAddress, now: float) -> list[tuple[bytes, Any]]:
                layer.output_pending = True
                return original(data, addr, now)

            layer.unprotect = unprotect  # type: ignore[method-assign]
            assert (await client.request(Message(Code.GET), remote)).payload == b"ok"
            async with asyncio.timeout(5):
                assert await arrivals.get() == b"\x50\x01\x00\x08"
        finally:
            await sink.close()


async def test_output_flag_timer_uses_the_last_deadline_while_the_flag_is_false() -> None:
    layer = FlagLayer()
    async with await CoapEndpoint.create(security=layer) as endpoint:
        loop = asyncio.get_running_loop()
        layer.deadline = at = loop.time() + 100.0
        layer.output_pending = True
        endpoint._arm_timer()
        assert endpoint._timer_at == at
        assert endpoint._security_at == at
        asks = layer.timer_asks
        # The flag is False: the armed timer fits, and re-arming takes the remembered deadline.
        assert not endpoint._timer_moved(at + 1.0)
        endpoint._rearm_timer(None)
        assert endpoint._timer_at == at
        assert layer.timer_asks == asks
        # Set: asked again.
        layer.deadline = earlier = loop.time() + 50.0
        layer.output_pending = True
        assert endpoint._timer_moved(at)
        assert layer.timer_asks == asks + 1
        layer.output_pending = True
        endpoint._rearm_timer(at)
        assert endpoint._timer_at == earlier


async def test_a_request_protects_every_datagram_the_engine_has() -> None:
    site = Site()
    site.add("/", lambda r: Message(Code.CONTENT, b"ok"))
    async with (
        await CoapEndpoint.create(site=site, security=XorLayer()) as server,
        await CoapEndpoint.create(security=FlagLayer()) as client,
    ):
        arrivals = spy_datagrams(server)
        engine = client.engine
        original = engine.datagrams_to_send
        extra = Message(Code.GET, mtype=MessageType.NON, mid=9, token=b"x").encode()

        def two(now: float) -> list[tuple[bytes, Any]]:
            out = original(now)
            engine.datagrams_to_send = original  # type: ignore[method-assign]
            return [(extra, ("xor", server.local_address)), *out]

        engine.datagrams_to_send = two  # type: ignore[method-assign]
        assert (await client.request(Message(Code.GET), server.local_address)).payload == b"ok"
        async with asyncio.timeout(5):
            assert await arrivals.get() == extra


def test_uvloop_is_optional_and_works_when_present() -> None:
    factory = loop_factory(prefer_uvloop=False)
    assert factory is asyncio.new_event_loop
    if not uvloop_available():
        assert loop_factory() is asyncio.new_event_loop
        return

    async def main() -> bytes:
        site = Site()
        site.add("/", lambda r: Message(Code.CONTENT, b"uv"))
        async with await CoapEndpoint.create(site=site) as s, await CoapEndpoint.create() as c:
            return (await c.request(Message(Code.GET), s.local_address)).payload

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        assert type(runner.get_loop()).__module__.startswith("uvloop")
        assert runner.run(main()) == b"uv"


async def test_observer_removed_callback_errors_are_contained(
    pair: tuple[CoapEndpoint, CoapEndpoint, Store],
) -> None:
    server, client, _ = pair
    server.site.add("/obs", lambda r: Message(Code.CONTENT, observe=0))

    def boom(obs: Observation, reason: str) -> None:
        raise RuntimeError("callback bug")

    server._on_observer_removed = boom
    observation = await client.observe(Message(Code.GET, uri_path="/obs"), server.local_address)
    async with asyncio.timeout(5):
        await observation.cancel()
    assert server.observations() == []


def test_plain_udp_is_the_identity() -> None:
    plain = PlainUdp()
    addr = ("127.0.0.1", 5683)
    assert plain.scheme == "coap"
    assert plain.connect(addr, 0.0) == addr
    assert plain.unprotect(b"x", addr, 0.0) == [(b"x", addr)]
    assert plain.protect(b"y", addr, 0.0) == [(b"y", addr)]
    assert plain.datagrams_to_send(0.0) == []
    assert plain.peer_identity(addr) is None
    assert plain.get_timer() is None
    plain.handle_timer(0.0)


async def test_handlers_get_a_frozen_coap_request() -> None:
    seen: list[CoapRequest] = []

    def handler(req: CoapRequest) -> Message:
        seen.append(req)
        return Message(Code.CONTENT, b"ok")

    site = Site()
    site.add("/a", handler)
    async with await CoapEndpoint.create(site=site) as s, await CoapEndpoint.create() as c:
        resp = await c.request(Message(Code.GET, uri_path="/a/b"), s.local_address)
    assert resp.payload == b"ok"
    (req,) = seen
    assert type(req) is CoapRequest
    assert req == CoapRequest(req.message, req.remote, None, ("b",))
    assert req.path == ("b",)
    assert req.peer_identity is None
    assert req.uri_path == ("a", "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.path = ()  # type: ignore[misc]


async def test_read_budget_grows_under_load_and_shrinks_when_quiet() -> None:
    """One datagram per wake-up keeps the budget at 1 (no failing read each other time); a
    burst grows it; a quiet wake-up shrinks it again."""
    site = Site()
    site.add("/", lambda r: Message(Code.CONTENT, b"x"))
    async with await CoapEndpoint.create(site=site) as server, await CoapEndpoint.create() as c:
        if server._sock is None:  # pragma: no cover - loops without add_reader
            pytest.skip("the endpoint does not read its socket itself")
        for _ in range(5):
            await c.request(Message(Code.GET), server.local_address)
        assert server._budget == 1
        clients = [await CoapEndpoint.create() for _ in range(40)]
        try:
            for _ in range(5):
                await asyncio.gather(
                    *(x.request(Message(Code.GET), server.local_address) for x in clients)
                )
            grown = server._budget
            await c.request(Message(Code.GET), server.local_address)
            assert server._budget == 1
        finally:
            for x in clients:
                await x.close()
    assert grown >= 1


async def test_read_budget_probes_back_off_for_one_datagram_per_wake_up() -> None:
    """A client endpoint with one request in flight gets one datagram per wake-up: each probe
    with a budget of 2 that finds nothing more doubles the wait before the next one (a failing
    read costs a system call and an exception), up to a bound."""
    site = Site()
    site.add("/", lambda r: Message(Code.CONTENT, b"x"))
    async with await CoapEndpoint.create(site=site) as server, await CoapEndpoint.create() as c:
        if c._sock is None:  # pragma: no cover - loops without add_reader
            pytest.skip("the endpoint does not read its socket itself")
        for _ in range(200):
            await c.request(Message(Code.GET), server.local_address)
        assert c._budget == 1
        assert c._grow_after > 8
        assert c._grow_after <= 64
        assert c._waiting == 0


def test_uvloop_round_trip_and_observe() -> None:
    if not uvloop_available():  # pragma: no cover - depends on the machine
        pytest.skip("uvloop is not installed")

    async def main() -> tuple[bytes, list[bytes]]:
        site = Site()
        site.add("/r", lambda r: Message(Code.CONTENT, b"uv"))
        site.add("/o", lambda r: Message(Code.CONTENT, b"0", observe=0))
        config = CoapConfig(notification_confirmable=True)
        async with (
            await CoapEndpoint.create(site=site, config=config) as s,
            await CoapEndpoint.create() as c,
        ):
            payload = (await c.request(Message(Code.GET, uri_path="/r"), s.local_address)).payload
            obs = await c.observe(Message(Code.GET, uri_path="/o"), s.local_address)
            got: list[bytes] = []
            done = asyncio.Event()

            def on(m: Message) -> None:
                got.append(m.payload)
                if len(got) == 3:
                    done.set()

            obs.on_notification(on)
            for i in range(1, 4):
                s.notify("/o", Message(Code.CONTENT, b"%d" % i))
                await asyncio.sleep(0.01)
            async with asyncio.timeout(5):
                await done.wait()
            return payload, got

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        payload, got = runner.run(main())
    assert payload == b"uv"
    assert got == [b"1", b"2", b"3"]


async def test_transport_path_batches_flushes_adaptively() -> None:
    """The per-datagram transport path (uvloop's): a burst is fed to the engine and flushed once
    (one call_soon); a lone datagram switches to flushing at once; batching is probed again."""
    import socket

    site = Site()
    site.add("/", lambda r: Message(Code.CONTENT, b"x"))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)
    addr = peer.getsockname()
    mids = iter(range(1, 1000))

    def request() -> bytes:
        return Message(Code.GET, mtype=MessageType.CON, mid=next(mids), token=b"t").encode()

    try:
        async with await CoapEndpoint.create(site=site) as server:
            assert server._batching
            for _ in range(3):
                server._datagram_received(request(), addr)
            assert server.engine.stats.datagrams_sent == 0  # not flushed yet
            await asyncio.sleep(0)
            assert server.engine.stats.datagrams_sent == 3
            assert server._batching
            for _ in range(3):
                assert decode(peer.recv(100)).code == Code.CONTENT
            server._datagram_received(request(), addr)  # a batch of one
            await asyncio.sleep(0)
            assert not server._batching
            for _ in range(16):
                server._datagram_received(request(), addr)  # flushed at once
            assert server.engine.stats.datagrams_sent == 4 + 16
            assert server._batching  # probing again
            for _ in range(17):
                assert decode(peer.recv(100)).code == Code.CONTENT
    finally:
        peer.close()


def record_sends(endpoint: CoapEndpoint, fail: bool = False) -> list[bytes]:
    """Wrap the endpoint's socket send: what it sent (or, with ``fail``, refused with OSError)."""
    sent: list[bytes] = []
    original = endpoint._sendto

    def sendto(data: bytes, addr: Any) -> object:
        sent.append(data)
        if fail:
            raise OSError("buffer full")
        return original(data, addr)

    endpoint._sendto = sendto
    return sent


async def test_requests_issued_in_one_loop_pass_leave_together() -> None:
    many = CoapConfig(transmission=TransmissionParameters(nstart=64))  # 40 in flight to one peer
    site = Site()
    site.add("/", Store().handle)
    async with (
        await CoapEndpoint.create(site=site) as server,
        await CoapEndpoint.create(config=many) as client,
    ):
        sent = record_sends(client)
        where = server.local_address
        alone = asyncio.ensure_future(client.request(Message(Code.GET, uri_path="/r"), where))
        await asyncio.sleep(0)
        assert len(sent) == 1  # a lone request goes out at once
        assert (await alone).payload == b"hello"
        sent.clear()
        tasks = [
            asyncio.ensure_future(client.request(Message(Code.GET, uri_path="/r"), where))
            for _ in range(40)
        ]
        await asyncio.sleep(0)  # the 40 tasks sent in the pass that just ran
        # the first went alone, the next ones were held and left 16 at a time; 7 still wait for
        # the end of the pass
        assert len(sent) == 1 + 16 + 16
        await asyncio.sleep(0)
        assert len(sent) == 40
        responses = await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert [r.payload for r in responses] == [b"hello"] * 40


async def test_held_requests_are_dropped_on_close_and_send_errors_are_counted() -> None:
    fast = dataclasses.replace(FAST, transmission=dataclasses.replace(FAST.transmission, nstart=8))
    async with await CoapEndpoint.create(config=fast) as client:
        async with await CoapEndpoint.create() as ghost:
            dead = ghost.local_address
        sent = record_sends(client, fail=True)
        tasks = [
            asyncio.ensure_future(client.request(Message(Code.GET, uri_path="/x"), dead))
            for _ in range(3)
        ]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(sent) == 3  # one at once, two held then sent: all refused by the socket
        assert client.stats.network_errors >= 3
        for task in tasks:  # CON requests: retransmitted until they time out, never raised
            assert not task.done()
        more = [
            asyncio.ensure_future(client.request(Message(Code.GET, uri_path="/y"), dead))
            for _ in range(2)
        ]
        await asyncio.sleep(0)  # both held (others in flight)
        assert client._cork is not None
        await client.close()
        assert client._cork is None  # held requests are not sent after close
        await asyncio.sleep(0)  # the end-of-pass send finds nothing
        assert len(sent) == 3
        for task in tasks + more:
            with pytest.raises(RequestCancelled):
                await task
