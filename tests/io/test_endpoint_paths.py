"""Error, cancellation and shutdown paths of the asyncio CoAP endpoint that the main endpoint
tests leave out: failed and cancelled observe registrations, handlers that are cancelled or
answer nonsense, closing with work in flight, bind failures, IPv6, session layers that deliver
plaintexts or fail peers on their own. No sleeps: futures and events with timeouts."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from collections.abc import Callable
from typing import Any

import pytest

from lwm2m.coap import (
    CoapConfig,
    Code,
    Message,
    RequestCancelled,
    RequestTimeout,
    TransmissionParameters,
    decode,
)
from lwm2m.io.coap_endpoint import (
    ClientObservation,
    CoapEndpoint,
    CoapRequest,
    Site,
    loop_factory,
    uvloop_available,
)
from lwm2m.io.coap_transport import PeerIdentity, SessionLayer, UdpAddress

FAST = CoapConfig(
    transmission=TransmissionParameters(ack_timeout=0.05, ack_random_factor=1.0, max_retransmit=1),
    response_timeout=0.3,
)


async def dead_address() -> UdpAddress:
    """A loopback address nobody listens on any more."""
    async with await CoapEndpoint.create() as ghost:
        return ghost.local_address


def hanging_site(started: asyncio.Event, count: int = 1) -> Site:
    """A site whose /hang handler never answers; ``started`` is set once ``count`` requests
    reached it."""
    arrived: list[CoapRequest] = []

    async def hang(req: CoapRequest) -> Message:
        arrived.append(req)
        if len(arrived) >= count:
            started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    site = Site()
    site.add("/hang", hang)
    return site


# -- observe registrations --------------------------------------------------------------------


async def test_observe_registration_that_times_out_raises_and_leaves_nothing_behind() -> None:
    dead = await dead_address()
    async with await CoapEndpoint.create(config=FAST) as client:
        with pytest.raises(RequestTimeout):
            async with asyncio.timeout(5):
                await client.observe(Message(Code.GET, uri_path="/obs"), dead)
        assert not client._pending
        assert not client._observations
        assert client.engine.pending_requests == 0


async def test_failed_reregistration_is_raised_once_from_the_iterator() -> None:
    site = Site()
    site.add("/obs", lambda r: Message(Code.CONTENT, b"0", observe=0))
    async with await CoapEndpoint.create(config=FAST) as client:
        server = await CoapEndpoint.create(site=site)
        observation = await client.observe(Message(Code.GET, uri_path="/obs"), server.local_address)
        assert observation.active
        await server.close()  # the server goes away; the re-registration is never answered
        observation.reregister()
        with pytest.raises(RequestTimeout):
            async with asyncio.timeout(5):
                await anext(observation)
        assert not observation.active
        assert observation.final_response is None
        # the failure is reported once; afterwards the iterator just ends
        assert [m async for m in observation] == []
        assert not client._observations


async def test_cancelling_a_pending_observe_cancels_the_registration() -> None:
    started = asyncio.Event()
    async with (
        await CoapEndpoint.create(site=hanging_site(started)) as server,
        await CoapEndpoint.create() as client,
    ):
        task = asyncio.create_task(
            client.observe(Message(Code.GET, uri_path="/hang"), server.local_address)
        )
        async with asyncio.timeout(5):
            await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.engine.pending_requests == 0
        assert not client._pending
        assert not client._observations


async def test_closing_fails_an_observe_that_awaits_its_first_response() -> None:
    started = asyncio.Event()
    async with await CoapEndpoint.create(site=hanging_site(started)) as server:
        client = await CoapEndpoint.create()
        task = asyncio.create_task(
            client.observe(Message(Code.GET, uri_path="/hang"), server.local_address)
        )
        async with asyncio.timeout(5):
            await started.wait()
        await client.close()
        with pytest.raises(RequestCancelled):
            await task
        assert not client._pending
        assert not client._observations


async def test_cancel_of_an_ended_observation_sends_nothing() -> None:
    site = Site()
    site.add("/obs", lambda r: Message(Code.CONTENT, b"0", observe=0))
    async with (
        await CoapEndpoint.create(site=site) as server,
        await CoapEndpoint.create() as client,
    ):
        observation = await client.observe(Message(Code.GET, uri_path="/obs"), server.local_address)
        server.notify("/obs", Message(Code.NOT_FOUND))  # the server ends it
        async with asyncio.timeout(5):
            assert [m async for m in observation] == []
        final = observation.final_response
        assert final is not None
        assert final.code == Code.NOT_FOUND
        sent: list[bytes] = []
        client._sendto = lambda data, addr: sent.append(data)  # type: ignore[assignment]
        await observation.cancel()  # proactive: would send GET Observe=1 if it were active
        await observation.cancel(proactive=False)
        observation._end(Message(Code.CONTENT))  # a late end does not overwrite the first
        assert sent == []
        assert observation.final_response is final


# -- handlers ---------------------------------------------------------------------------------


async def test_handler_task_cancelled_on_its_own_answers_service_unavailable() -> None:
    async def gives_up(req: CoapRequest) -> Message:
        raise asyncio.CancelledError

    site = Site()
    site.add("/x", gives_up)
    async with (
        await CoapEndpoint.create(site=site) as server,
        await CoapEndpoint.create() as client,
    ):
        async with asyncio.timeout(5):
            resp = await client.request(Message(Code.GET, uri_path="/x"), server.local_address)
        assert resp.code == Code.SERVICE_UNAVAILABLE
        assert not server._tasks


async def test_async_handler_with_an_unusable_response_answers_internal_server_error() -> None:
    async def bad(req: CoapRequest) -> Message:
        return Message(Code.GET)  # a request code is not a response

    site = Site()
    site.add("/bad", bad)
    async with (
        await CoapEndpoint.create(site=site) as server,
        await CoapEndpoint.create() as client,
    ):
        async with asyncio.timeout(5):
            resp = await client.request(Message(Code.GET, uri_path="/bad"), server.local_address)
        assert resp.code == Code.INTERNAL_SERVER_ERROR
        assert server.stats.handler_errors == 1


async def test_close_absorbs_a_handler_that_fails_while_being_cancelled() -> None:
    started = asyncio.Event()
    finished: list[str] = []

    async def stubborn(req: CoapRequest) -> Message:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            finished.append("cancelled")
            raise RuntimeError("cleanup failed") from None
        raise AssertionError("unreachable")

    site = Site()
    site.add("/s", stubborn)
    server = await CoapEndpoint.create(site=site)
    async with await CoapEndpoint.create() as client:
        task = asyncio.create_task(
            client.request(Message(Code.GET, uri_path="/s"), server.local_address)
        )
        async with asyncio.timeout(5):
            await started.wait()
        sent: list[bytes] = []
        original = server._sendto

        def spy(data: bytes, addr: Any) -> object:
            sent.append(data)
            return original(data, addr)

        server._sendto = spy
        await server.close()  # must not raise the handler's error
        assert finished == ["cancelled"]
        assert not server._tasks
        assert server.stats.handler_errors == 0
        # no response went out for the request the handler was working on
        assert all(decode(d).code == Code.EMPTY or decode(d).code >> 5 != 5 for d in sent)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# -- lifecycle --------------------------------------------------------------------------------


async def test_bind_failure_raises_and_closes_the_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[socket.socket] = []
    real_socket = socket.socket

    class Recording(real_socket):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    async with await CoapEndpoint.create() as taken:
        monkeypatch.setattr(socket, "socket", Recording)
        with pytest.raises(OSError) as raised:  # noqa: PT011 - the errno is checked below
            await CoapEndpoint.create(taken.local_address)
        assert raised.value.errno == errno.EADDRINUSE
        monkeypatch.undo()
    assert len(created) == 1
    assert created[0].fileno() == -1  # closed, not leaked


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_endpoints_talk_to_each_other() -> None:
    site = Site()
    site.add("/r", lambda r: Message(Code.CONTENT, b"six"))
    async with (
        await CoapEndpoint.create(("::1", 0), site=site) as server,
        await CoapEndpoint.create(("::1", 0)) as client,
    ):
        assert server.local_address[0] == "::1"
        async with asyncio.timeout(5):
            resp = await client.request(Message(Code.GET, uri_path="/r"), server.local_address)
        assert resp.payload == b"six"


async def test_request_on_an_unbound_endpoint_fails_with_request_cancelled() -> None:
    endpoint = CoapEndpoint()  # never bound: create() was not called
    with pytest.raises(RequestCancelled):
        async with asyncio.timeout(5):
            await endpoint.request(Message(Code.GET, uri_path="/x"), ("127.0.0.1", 9))
    await endpoint.close()


async def test_timer_that_fires_while_closing_does_nothing() -> None:
    async with await CoapEndpoint.create() as endpoint:
        handled: list[float] = []
        endpoint.engine.handle_timer = handled.append  # type: ignore[method-assign]
        endpoint._closing = True
        endpoint._on_timer()
        endpoint._closing = False
        assert handled == []
        endpoint._on_timer()
        assert len(handled) == 1


def test_without_uvloop_the_default_loop_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    assert uvloop_available() is False
    assert loop_factory() is asyncio.new_event_loop
    assert loop_factory(prefer_uvloop=False) is asyncio.new_event_loop


# -- session layers ---------------------------------------------------------------------------


class FakeSessions:
    """A SessionLayer without cryptography: peer key = ("s", address), plaintext on the wire.
    Tests push plaintexts and peer failures into it and call the endpoint's wake-up."""

    scheme = "coaps"

    def __init__(self) -> None:
        self.wakeup: Callable[[], None] | None = None
        self.inbox: list[tuple[bytes, Any]] = []
        self.failures: list[tuple[Any, Exception]] = []
        self.closed = False

    def attach(self, wakeup: Callable[[], None]) -> None:
        self.wakeup = wakeup

    def connect(self, remote: UdpAddress, now: float) -> Any:
        return ("s", tuple(remote))

    def unprotect(self, data: bytes, addr: UdpAddress, now: float) -> list[tuple[bytes, Any]]:
        return [(data, ("s", tuple(addr)))]

    def protect(self, data: bytes, peer: Any, now: float) -> list[tuple[bytes, UdpAddress]]:
        return [(data, peer[1])]

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, UdpAddress]]:
        return []

    def peer_identity(self, peer: Any) -> PeerIdentity | None:
        return PeerIdentity("psk", b"fake")

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass

    def received(self, now: float) -> list[tuple[bytes, Any]]:
        out, self.inbox = self.inbox, []
        return out

    def failed_peers(self) -> list[tuple[Any, Exception]]:
        out, self.failures = self.failures, []
        return out

    def close(self, now: float) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        pass


def test_fake_sessions_is_a_session_layer() -> None:
    assert isinstance(FakeSessions(), SessionLayer)


async def test_a_failed_session_fails_pending_requests_and_observations() -> None:
    started = asyncio.Event()
    layer = FakeSessions()
    async with (
        await CoapEndpoint.create(site=hanging_site(started, count=2)) as server,
        await CoapEndpoint.create(security=layer) as client,
    ):
        request = asyncio.create_task(
            client.request(Message(Code.GET, uri_path="/hang"), server.local_address)
        )
        observe = asyncio.create_task(
            client.observe(Message(Code.GET, uri_path="/hang"), server.local_address)
        )
        async with asyncio.timeout(5):
            await started.wait()
        # The observation is tracked by peer; the request's future is the engine's waiter,
        # which CoapEngine.fail_requests fails.
        assert len(client._peer_of) == 1
        assert client.engine.pending_requests == 2
        error = ConnectionAbortedError("handshake failed")
        layer.failures.append((("s", tuple(server.local_address)), error))
        assert layer.wakeup is not None
        layer.wakeup()
        layer.wakeup()  # a second wake-up before the first ran is merged
        async with asyncio.timeout(5):
            results = await asyncio.gather(request, observe, return_exceptions=True)
        assert results == [error, error]
        assert client.engine.pending_requests == 0
        assert not client._pending
        assert not client._observations
        assert not client._peer_of
    assert layer.closed
    layer.wakeup()  # after close: ignored
    assert not client._security_ready


async def test_cancelling_a_request_through_a_session_layer_cancels_it() -> None:
    started = asyncio.Event()
    layer = FakeSessions()
    async with (
        await CoapEndpoint.create(site=hanging_site(started)) as server,
        await CoapEndpoint.create(security=layer) as client,
    ):
        task = asyncio.create_task(
            client.request(Message(Code.GET, uri_path="/hang"), server.local_address)
        )
        async with asyncio.timeout(5):
            await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.engine.pending_requests == 0
        assert not client._pending
        assert not client._peer_of


async def test_a_failed_session_ends_an_active_observation_with_its_error() -> None:
    layer = FakeSessions()
    site = Site()
    site.add("/obs", lambda r: Message(Code.CONTENT, b"0", observe=0))
    async with (
        await CoapEndpoint.create(site=site) as server,
        await CoapEndpoint.create(security=layer) as client,
    ):
        observation = await client.observe(Message(Code.GET, uri_path="/obs"), server.local_address)
        assert observation.active
        error = ConnectionResetError("session closed by peer")
        layer.failures.append((("s", tuple(server.local_address)), error))
        assert layer.wakeup is not None
        layer.wakeup()
        with pytest.raises(ConnectionResetError) as raised:
            async with asyncio.timeout(5):
                await anext(observation)
        assert raised.value is error
        assert not observation.active
        assert [m async for m in observation] == []  # raised once, then the iterator ends
        assert client.engine.pending_requests == 0


async def test_plaintexts_a_session_layer_delivers_later_reach_the_engine() -> None:
    layer = FakeSessions()
    site = Site()
    seen: list[CoapRequest] = []

    def handle(req: CoapRequest) -> Message:
        seen.append(req)
        return Message(Code.CONTENT, b"late")

    site.add("/late", handle)
    async with (
        await CoapEndpoint.create(site=site, security=layer),
        await CoapEndpoint.create() as client,
    ):
        # A request the layer decrypted in a worker thread: handed over via received().
        # It is answered to the peer key, i.e. to the client's socket.
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[bytes] = loop.create_future()
        client.engine.receive_datagram = lambda data, addr, now: (  # type: ignore[method-assign]
            answered.done() or answered.set_result(data)
        )
        request = Message(Code.GET, uri_path="/late", token=b"tk", mid=0x1234)
        layer.inbox.append((request.encode(), ("s", tuple(client.local_address))))
        assert layer.wakeup is not None
        layer.wakeup()
        async with asyncio.timeout(5):
            reply = decode(await answered)
        assert (reply.code, reply.payload, reply.token, reply.mid) == (
            Code.CONTENT,
            b"late",
            b"tk",
            0x1234,
        )
        assert seen[0].peer_identity == PeerIdentity("psk", b"fake")


async def test_peer_bookkeeping_of_finished_observe_registrations_is_pruned() -> None:
    layer = FakeSessions()
    site = Site()
    site.add("/r", lambda r: Message(Code.CONTENT, b"no observe"))
    async with (
        await CoapEndpoint.create(site=site) as server,
        await CoapEndpoint.create(security=layer) as client,
    ):
        for _ in range(70):  # declined registrations: each leaves a stale _peer_of entry
            obs = await client.observe(Message(Code.GET, uri_path="/r"), server.local_address)
            assert not obs.active
        assert len(client._peer_of) <= 65
        # a failure of that peer after the fact touches nothing (stale entries are skipped)
        layer.failures.append((("s", tuple(server.local_address)), ConnectionResetError()))
        assert layer.wakeup is not None
        layer.wakeup()
        done = asyncio.Event()
        asyncio.get_running_loop().call_soon(done.set)
        await done.wait()
        assert not client._peer_of
        assert isinstance(obs, ClientObservation)
