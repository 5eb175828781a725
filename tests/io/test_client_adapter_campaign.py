"""Robustness campaign of the client adapter (:class:`~lwm2m.io.lwm2m_client.LwM2MClient`) in
the situations a deployed device meets: the server restarts and forgets the registration (and the
DTLS session), the server is unreachable (ICMP port unreachable, or datagrams silently dropped),
host names that resolve or do not, a wrong PSK, queue mode, and ``stop()`` / ``start()`` at
awkward moments.

Two harnesses:

- **loopback**: our :class:`~lwm2m.io.lwm2m_server.LwM2MServer` and raw UDP sockets on 127.0.0.1,
  with short CoAP transmission parameters (:data:`FAST`: a request gives up after 0.3 s) and
  retry timers of 1 s. A :class:`Relay` stands between client and server where a test needs to
  lose datagrams (a server that crashes sends no close_notify; a black hole drops everything)
  and counts what the client sent.
- **virtual clock**: :class:`VirtualLoop` (the clock jumps to the next timer when nothing is
  ready) with a fake endpoint, for the exact timing of the registration retries (/1/x/17-20)
  over hours of virtual time.

Every wait is bounded with ``asyncio.timeout``; nothing sleeps to let a race settle. The
:func:`no_errors` fixture fails a test that logged an ERROR record or left a task exception to
the loop's exception handler ("Task exception was never retrieved").
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from lwm2m.client import parse_config
from lwm2m.client.accounts import ConnectionSecurity
from lwm2m.client.config import ClientConfig
from lwm2m.client.events import (
    Awake,
    ClientEvent,
    RegistrationFailed,
    RegistrationUpdated,
    Sleeping,
    Stopped,
)
from lwm2m.client.objects import Device
from lwm2m.client.objects.security import Credentials
from lwm2m.coap.config import CoapConfig, TransmissionParameters
from lwm2m.coap.message import Message, decode
from lwm2m.coap.numbers import Code, MessageType
from lwm2m.io import lwm2m_client
from lwm2m.io.coaps import DtlsSessionError
from lwm2m.io.lwm2m_client import LwM2MClient, UdpConnector
from lwm2m.io.lwm2m_server import LwM2MServer, dtls_layer_from_store
from lwm2m.model import ResourceType, SingleResource
from lwm2m.server import events as se
from lwm2m.server.registration import ServerConfig
from lwm2m.server.security import SecurityInfo
from lwm2m.store import MemorySecurityStore
from lwm2m.testing.loop import VirtualLoop

TIMEOUT = 5.0
EP = "urn:dev:os:campaign"
SSID = 101
FAST = CoapConfig(
    transmission=TransmissionParameters(ack_timeout=0.1, ack_random_factor=1.0, max_retransmit=1)
)
"""A CON request is sent twice and given up 0.3 s after the first transmission."""
TRANSMISSIONS = FAST.transmission.max_retransmit + 1


def client_config(uri: str, *, queue_mode: bool = False, **server: Any) -> ClientConfig:
    table: dict[str, Any] = {
        "uri": uri,
        "short_server_id": SSID,
        "lifetime": 300,
        "retry_count": 2,
        "retry_timer": 1,
        "sequence_retry_count": 1,
        "bootstrap_on_failure": False,
    }
    table.update(server)
    data: dict[str, Any] = {
        "endpoint": EP,
        "bind": "127.0.0.1:0",
        "queue_mode": queue_mode,
        "device": {"manufacturer": "ACME", "model_number": "Campaign"},
        "servers": [table],
    }
    if queue_mode:
        data["awake_time"] = 0.3
    return parse_config(data)


def final_failure(event: ClientEvent) -> bool:
    return isinstance(event, RegistrationFailed) and event.retry_at is None


def failures(client: LwM2MClient) -> list[RegistrationFailed]:
    return [e for e in client.history if isinstance(e, RegistrationFailed)]


@pytest.fixture
async def no_errors(caplog: pytest.LogCaptureFixture) -> AsyncIterator[list[dict[str, Any]]]:
    """Collects what reaches the loop's exception handler; the test fails on any of it and on
    ERROR log records."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    caplog.set_level(logging.INFO)
    try:
        yield seen
        gc.collect()  # "Task exception was never retrieved" is reported when the task is freed
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert seen == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


# -- loopback helpers -----------------------------------------------------------------------------


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Any], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass


class Relay:
    """The address the client knows as its server's. Datagrams from the client go to
    ``target`` (None: dropped, a black hole); datagrams back are relayed only from the current
    ``target``, so a server stopped behind the relay is a crashed one (its close_notify is
    lost). Every datagram from the client is recorded in :attr:`received`."""

    def __init__(self) -> None:
        self.target: tuple[str, int] | None = None
        self.client: Any = None
        self.received: list[bytes] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._front: Any = None
        self._back: Any = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    async def start(self, target: tuple[str, int] | None = None) -> Relay:
        loop = asyncio.get_running_loop()
        self.target = target
        self._front, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_client), local_addr=("127.0.0.1", 0)
        )
        self._back, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_server), local_addr=("127.0.0.1", 0)
        )
        self.address = self._front.get_extra_info("sockname")[:2]
        return self

    @property
    def uri(self) -> str:
        return f"127.0.0.1:{self.address[1]}"

    def _from_client(self, data: bytes, addr: Any) -> None:
        self.client = addr
        self.received.append(data)
        for count, future in self._waiters:
            if len(self.received) >= count and not future.done():
                future.set_result(None)
        if self.target is not None:
            self._back.sendto(data, self.target)

    def _from_server(self, data: bytes, addr: Any) -> None:
        if addr[:2] == self.target and self.client is not None:
            self._front.sendto(data, self.client)

    def send_to_client(self, data: bytes) -> None:
        self._front.sendto(data, self.client)

    async def wait_received(self, count: int) -> None:
        """Until the client has sent ``count`` datagrams in all."""
        if len(self.received) >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, future))
        await future

    def close(self) -> None:
        self._front.close()
        self._back.close()


@contextlib.asynccontextmanager
async def relay(target: tuple[str, int] | None = None) -> AsyncIterator[Relay]:
    r = await Relay().start(target)
    try:
        yield r
    finally:
        r.close()


@contextlib.asynccontextmanager
async def running_server(port: int = 0, **kwargs: Any) -> AsyncIterator[LwM2MServer]:
    kwargs.setdefault("expiry_interval", None)
    server = LwM2MServer(**kwargs)
    await server.start(("127.0.0.1", port))
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def running_client(config: ClientConfig, **kwargs: Any) -> AsyncIterator[LwM2MClient]:
    kwargs.setdefault("coap_config", FAST)
    client = LwM2MClient(config, **kwargs)
    await client.start()
    try:
        yield client
    finally:
        await client.stop(grace=1.0)


def free_udp_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def coap_datagrams(client: LwM2MClient) -> int:
    return client.endpoint.engine.stats.datagrams_sent


def battery(client: LwM2MClient) -> Device:
    device = client.objects[3]
    assert isinstance(device, Device)
    return device


# == the server restarts ==========================================================================


async def test_server_restart_update_gets_404_client_registers_again_and_is_observed_anew(
    no_errors: list[Any],
) -> None:
    """A server restarts at the same address with its registrations lost: the client's next
    Update is answered 4.04, the client registers again at once (§6.2.2) with a full Register;
    the observations of the old server are gone (§6.2.1: a new registration starts without
    observations) and the new server's Observe is the only one notified."""
    async with running_server() as server:
        port = server.local_address[1]
        async with running_client(client_config(f"coap://127.0.0.1:{port}")) as client:
            device = battery(client)
            device.set(9, 90)
            async with asyncio.timeout(TIMEOUT):
                await client.wait_registered()
                await server.observe(EP, "/3/0/9")
            assert len(list(client.engine.observations)) == 1
            await server.stop()

            async with running_server(port) as restarted:
                events = restarted.subscribe()
                async with asyncio.timeout(TIMEOUT):
                    client.update()
                    failure = await client.wait_for(RegistrationFailed)
                    await events.wait_for(se.Registered)
                    await client.wait_registered()
                assert isinstance(failure, RegistrationFailed)
                assert failure.reason.startswith("4.04")
                assert failure.retry_at is not None
                registers = [m for m in sent(client) if m.uri_path == ("rd",)]
                assert len(registers) == 2
                assert f"ep={EP}" in registers[-1].uri_query
                assert b"</3/0>" in registers[-1].payload
                # the old server's observation is gone with the old registration
                assert list(client.engine.observations) == []

                async with asyncio.timeout(TIMEOUT):
                    handle = await restarted.observe(EP, "/3/0/9")
                    device.set(9, 41)
                    notification = await anext(handle)
                assert notification.content == SingleResource(9, ResourceType.INTEGER, 41)
                assert len(list(client.engine.observations)) == 1
                events.close()


def sent(client: LwM2MClient) -> list[Message]:
    """The requests the client's engine handed out, recorded by :func:`_record_requests`."""
    recorded: list[Message] = getattr(client, "_campaign_sent", [])
    return recorded


@pytest.fixture(autouse=True)
def _record_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record every request the adapter sends (on the client, as ``_campaign_sent``)."""
    original = LwM2MClient._send_request

    async def recording(self: LwM2MClient, request: Any) -> None:
        log = self.__dict__.setdefault("_campaign_sent", [])
        log.append(request.message)
        await original(self, request)

    monkeypatch.setattr(LwM2MClient, "_send_request", recording)


# == the server is unreachable ====================================================================


async def test_icmp_port_unreachable_registration_retries_follow_the_retry_timer(
    no_errors: list[Any],
) -> None:
    """Nothing listens at the server's port: every datagram earns an ICMP port unreachable
    (counted by the endpoint, not raised). Each Register attempt gives up after the CoAP
    retransmissions; the second attempt waits the Communication Retry Timer (/1/x/18 = 1 s);
    after /1/x/17 = 2 attempts of the one sequence the registration failed for good. No busy
    loop: exactly 2 attempts x 2 transmissions went out."""
    port = free_udp_port()
    loop = asyncio.get_running_loop()
    async with running_client(client_config(f"coap://127.0.0.1:{port}")) as client:
        began = loop.time()
        async with asyncio.timeout(TIMEOUT):
            await client.wait_for(final_failure)
        took = loop.time() - began
        first, last = failures(client)
        assert first.retry_at is not None
        assert last.retry_at is None
        assert "no ACK" in first.reason or "timeout" in first.reason.lower()
        assert took >= 1.0 + 2 * FAST.transmission.max_transmit_wait - 0.05
        assert len([m for m in sent(client) if m.uri_path == ("rd",)]) == 2
        assert coap_datagrams(client) == 2 * TRANSMISSIONS
        if sys.platform == "linux":
            assert client.endpoint.stats.network_errors >= 1  # the ICMP errors were seen
        assert not client.engine.registrations[SSID].registered


async def test_silently_dropping_server_registration_retries_without_busy_loop(
    no_errors: list[Any],
) -> None:
    """The server's address swallows everything (a black hole): the same retry schedule, and
    the datagrams that reached the address are exactly the Register transmissions."""
    async with relay(None) as hole, running_client(client_config(f"coap://{hole.uri}")) as client:
        loop = asyncio.get_running_loop()
        began = loop.time()
        async with asyncio.timeout(TIMEOUT):
            await client.wait_for(final_failure)
        took = loop.time() - began
        assert took >= 1.0 + 2 * FAST.transmission.max_transmit_wait - 0.05
        assert len(hole.received) == 2 * TRANSMISSIONS
        assert all(decode(d).uri_path == ("rd",) for d in hole.received)
        first, last = failures(client)
        assert first.retry_at is not None
        assert last.retry_at is None


async def test_server_comes_back_after_failed_attempts_the_next_attempt_registers(
    no_errors: list[Any],
) -> None:
    """The first Register goes into the void; the server is back before the retry timer
    ends: the retry registers."""
    async with (
        relay(None) as front,
        running_server() as server,
        running_client(client_config(f"coap://{front.uri}")) as client,
    ):
        async with asyncio.timeout(TIMEOUT):
            first = await client.wait_for(RegistrationFailed)
            front.target = server.local_address
            await client.wait_registered()
        assert isinstance(first, RegistrationFailed)
        assert first.retry_at is not None
        registration = await server.registration(EP)
        assert registration is not None


# == host names ===================================================================================


async def test_server_uri_with_a_host_name_resolves(no_errors: list[Any]) -> None:
    """``coap://localhost:PORT``: resolved, registered; the server sees the client's socket."""
    async with running_server() as server:
        port = server.local_address[1]
        async with running_client(client_config(f"coap://localhost:{port}")) as client:
            async with asyncio.timeout(TIMEOUT):
                await client.wait_registered()
            registration = await server.registration(EP)
            assert registration is not None
            assert tuple(registration.address)[:2] == client.local_address[:2]
            response = await asyncio.wait_for(server.read(EP, "/3/0/0"), TIMEOUT)
            assert response.content == SingleResource(0, ResourceType.STRING, "ACME")


async def test_unresolvable_host_fails_the_attempt_and_retries(no_errors: list[Any]) -> None:
    """``coap://no-such-host.invalid`` (RFC 6761: never resolves): the attempt fails with a
    RegistrationFailed that will be retried, nothing is sent, the client keeps running; the
    retry resolves again and fails again, then the registration failed for good."""
    config = client_config("coap://no-such-host.invalid:5683")
    async with running_client(config) as client:
        async with asyncio.timeout(TIMEOUT):
            await client.wait_for(final_failure)
        first, last = failures(client)
        assert first.retry_at is not None
        assert last.retry_at is None
        assert coap_datagrams(client) == 0
        assert len(sent(client)) == 2  # two attempts, none reached the socket


async def test_unresolvable_host_reason_names_the_host(no_errors: list[Any]) -> None:
    config = client_config("coap://no-such-host.invalid:5683", retry_count=1)
    async with running_client(config) as client:
        async with asyncio.timeout(TIMEOUT):
            await client.wait_for(final_failure)
        [failure] = failures(client)
        assert "no-such-host.invalid" in failure.reason


# == DTLS (PSK) ===================================================================================


PSK_KEY = bytes(range(16))


def psk_server(store: MemorySecurityStore) -> dict[str, Any]:
    return {"security_store": store, "security": dtls_layer_from_store(store)}


@pytest.mark.parametrize("crash", [True, False], ids=["crash", "graceful"])
async def test_dtls_server_restart_client_handshakes_again_and_registers(
    no_errors: list[Any], crash: bool
) -> None:
    """A DTLS server restarts and forgets the session (and the registration). ``crash``: it
    sends nothing, the client's Update records are dropped by the new server, the exchange times
    out, the client drops its session (the connector's reset) and the next request
    handshakes again. ``graceful``: the server's close_notify ends the session, the Update
    handshakes at once and is answered 4.04. Either way the client registers again, authenticated
    with its PSK identity, on a second full handshake."""
    store = MemorySecurityStore([SecurityInfo.psk(EP, EP, PSK_KEY)])
    async with relay() as front, running_server(**psk_server(store)) as server:
        front.target = server.local_address
        config = client_config(
            f"coaps://{front.uri}",
            security_mode="psk",
            psk_identity=EP,
            psk_key_hex=PSK_KEY.hex(),
        )
        async with running_client(config) as client:
            async with asyncio.timeout(TIMEOUT):
                await client.wait_registered()
            layer = client.connector.security_layer  # type: ignore[attr-defined]
            assert layer.stats.handshakes == 1
            if crash:
                front.target = None  # whatever the stopping server says is lost
            await server.stop()
            async with running_server(**psk_server(store)) as restarted:
                front.target = restarted.local_address
                events = restarted.subscribe()
                async with asyncio.timeout(TIMEOUT):
                    client.update()
                    failure = await client.wait_for(RegistrationFailed)
                    registered = await events.wait_for(se.Registered)
                    await client.wait_registered()
                assert isinstance(failure, RegistrationFailed)
                if crash:
                    assert "no ACK" in failure.reason
                else:
                    assert failure.reason.startswith("4.04")
                assert registered.registration.identity is not None
                assert registered.registration.identity.value == EP
                assert layer.stats.handshakes == 2
                response = await asyncio.wait_for(restarted.read(EP, "/3/0/0"), TIMEOUT)
                assert response.content is not None
                events.close()


async def test_dtls_wrong_psk_gives_a_clear_failure_and_no_tight_retry_loop(
    no_errors: list[Any],
) -> None:
    """The client's PSK is not the server's: every handshake fails (decrypt_error). Each failure
    is a RegistrationFailed naming the DTLS handshake; the attempts follow the retry timer
    (/1/x/18 = 1 s), one handshake each, and stop after /1/x/17 attempts."""
    store = MemorySecurityStore([SecurityInfo.psk(EP, EP, PSK_KEY)])
    async with relay() as front, running_server(**psk_server(store)) as server:
        front.target = server.local_address
        config = client_config(
            f"coaps://{front.uri}",
            security_mode="psk",
            psk_identity=EP,
            psk_key_hex=bytes(16).hex(),
        )
        loop = asyncio.get_running_loop()
        async with running_client(config) as client:
            began = loop.time()
            async with asyncio.timeout(TIMEOUT):
                await client.wait_for(final_failure)
            took = loop.time() - began
            first, last = failures(client)
            for failure in (first, last):
                assert "DTLS handshake" in failure.reason
                assert "decrypt_error" in failure.reason
                assert PSK_KEY.hex() not in failure.reason
            assert first.retry_at is not None
            assert last.retry_at is None
            assert took >= 1.0
            layer = client.connector.security_layer  # type: ignore[attr-defined]
            assert layer.stats.handshake_failures == 2
            assert layer.stats.handshakes == 0
            server_layer: Any = server.endpoint.security
            assert server_layer.stats.handshake_failures == 2
            # a handshake is ClientHello, ClientHello with the cookie, the key exchange flight
            assert len(front.received) <= 2 * 4
            assert coap_datagrams(client) <= 2 * TRANSMISSIONS


# == queue mode ===================================================================================


async def test_queue_mode_held_request_is_answered_after_the_next_update(
    no_errors: list[Any],
) -> None:
    """A queue-mode client (awake time 0.3 s) falls asleep; the server holds a Read meanwhile.
    The client's next Update (due by its lifetime: 2 s, so 1 s after the Register) wakes it and
    the held Read is answered; the client saw Sleeping, then RegistrationUpdated and Awake."""
    async with running_server(config=ServerConfig(awake_time=0.3)) as server:
        port = server.local_address[1]
        config = client_config(f"coap://127.0.0.1:{port}", queue_mode=True, lifetime=2)
        events = server.subscribe()
        async with running_client(config) as client:
            received: list[str] = []
            handle = client.engine.handle_request

            def recording(message: Message, *args: Any, **kwargs: Any) -> Message:
                updates = [m for m in sent(client) if m.uri_path[:1] == ("rd",) and m.uri_path[1:]]
                received.append(f"{message.path} after {len(updates)} Update(s)")
                return handle(message, *args, **kwargs)

            client.engine.handle_request = recording  # type: ignore[method-assign]
            async with asyncio.timeout(TIMEOUT):
                registered = await events.wait_for(se.Registered)
                assert registered.registration.queue_mode
                await client.wait_for(Sleeping)
                await events.wait_for(se.Sleeping)
                assert not [e for e in client.history if isinstance(e, RegistrationUpdated)]
                read = asyncio.ensure_future(server.read(EP, "/3/0/0"))
                await client.wait_for(RegistrationUpdated)
                response = await read
            assert response.content == SingleResource(0, ResourceType.STRING, "ACME")
            assert received == ["/3/0/0 after 1 Update(s)"]
            kinds = [
                type(e)
                for e in client.history
                if isinstance(e, Sleeping | Awake | RegistrationUpdated)
            ]
            assert kinds[:3] == [Sleeping, RegistrationUpdated, Awake]
            updates = [m for m in sent(client) if m.uri_path[:1] == ("rd",) and m.uri_path[1:]]
            assert updates
            assert updates[0].mtype == MessageType.CON
        events.close()


# == stop() and start() ===========================================================================


async def test_stop_while_register_is_in_flight(no_errors: list[Any]) -> None:
    """The Register is unanswered when stop() is called: stop() waits for it within its grace
    (it may be retransmitted: a late 2.01 would need a De-register), then gives up: Stopped is
    reported, nothing but that Register was transmitted, no task exception, and the socket is
    closed."""
    async with relay(None) as hole:
        client = LwM2MClient(client_config(f"coap://{hole.uri}"), coap_config=FAST)
        await client.start()
        async with asyncio.timeout(TIMEOUT):
            await hole.wait_received(1)
            await client.stop(grace=1.0)
        assert any(isinstance(e, Stopped) for e in client.history)
        assert {decode(d).uri_path for d in hole.received} == {("rd",)}
        assert len({decode(d).mid for d in hole.received}) == 1  # retransmissions of one Register
        assert client.endpoint._closing  # the socket is closed
        assert not client._tasks


async def test_stop_while_register_in_flight_deregisters_if_the_register_succeeds(
    no_errors: list[Any],
) -> None:
    """stop() means "De-register from every server (waiting up to grace seconds)": a Register
    the server accepts while stop() waits is followed by a De-register of its location."""
    async with relay(None) as fake:
        client = LwM2MClient(client_config(f"coap://{fake.uri}"), coap_config=FAST)
        await client.start()
        async with asyncio.timeout(TIMEOUT):
            await fake.wait_received(1)
            register = decode(fake.received[0])
            stopping = asyncio.ensure_future(client.stop(grace=2.0))
            await asyncio.sleep(0)  # stop() has begun
            answer = Message(Code.CREATED, mtype=MessageType.ACK, mid=register.mid)
            answer.token = register.token
            answer.location_path = ("rd", "x1")
            fake.send_to_client(answer.encode())
            await stopping
        assert len(fake.received) >= 2, "no De-register was sent"
        message = decode(fake.received[1])
        assert message.code == Code.DELETE
        assert message.uri_path == ("rd", "x1")


async def test_stop_twice_in_a_row(no_errors: list[Any]) -> None:
    """A second stop() after the first returned does nothing: one De-register only."""
    async with running_server() as server:
        port = server.local_address[1]
        events = server.subscribe()
        client = LwM2MClient(client_config(f"coap://127.0.0.1:{port}"), coap_config=FAST)
        await client.start()
        async with asyncio.timeout(TIMEOUT):
            await client.wait_registered()
            await client.stop()
            await client.stop()
            await events.wait_for(se.Deregistered)
        assert len([m for m in sent(client) if m.code == Code.DELETE]) == 1
        assert [type(e) for e in client.history].count(Stopped) == 1
        events.close()


async def test_concurrent_stop_returns_when_the_client_is_stopped(no_errors: list[Any]) -> None:
    """Two tasks stop the client at the same time (e.g. a signal handler and the main task):
    each returns only once the client is stopped and its socket closed."""
    async with running_server() as server:
        port = server.local_address[1]
        client = LwM2MClient(client_config(f"coap://127.0.0.1:{port}"), coap_config=FAST)
        await client.start()
        async with asyncio.timeout(TIMEOUT):
            await client.wait_registered()
            first = asyncio.ensure_future(client.stop())
            await asyncio.sleep(0)  # the first stop() has begun
            await client.stop()
            stopped_when_second_returned = any(isinstance(e, Stopped) for e in client.history)
            closed_when_second_returned = client.endpoint._closing
            await first
        assert stopped_when_second_returned
        assert closed_when_second_returned


async def test_start_after_stop_is_refused_cleanly(no_errors: list[Any]) -> None:
    """start() on a stopped client does not half-start it: it raises RuntimeError, nothing is
    sent, no timer or task is left (a stopped client is not restartable; make a new one)."""
    async with running_server() as server:
        port = server.local_address[1]
        client = LwM2MClient(client_config(f"coap://127.0.0.1:{port}"), coap_config=FAST)
        await client.start()
        async with asyncio.timeout(TIMEOUT):
            await client.wait_registered()
            await client.stop()
        count = len(sent(client))
        with pytest.raises(RuntimeError):
            await client.start()
        assert len(sent(client)) == count
        assert not client._tasks
        assert client._timer is None


async def test_start_after_stop_error_says_the_client_was_stopped(no_errors: list[Any]) -> None:
    async with running_server() as server:
        port = server.local_address[1]
        client = LwM2MClient(client_config(f"coap://127.0.0.1:{port}"), coap_config=FAST)
        await client.start()
        async with asyncio.timeout(TIMEOUT):
            await client.wait_registered()
            await client.stop()
        with pytest.raises(RuntimeError, match="stopped"):
            await client.start()


# == virtual clock: retry schedules ===============================================================


START = 1000.0
HOST, PORT = "127.0.0.1", 5683


def run_virtual(main: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[Any, list[Any]]:
    """Run ``main`` on a :class:`VirtualLoop`; also return what reached its exception handler."""
    loop = VirtualLoop(START)
    seen: list[Any] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        result = loop.run_until_complete(main())
        gc.collect()
        loop.run_until_complete(asyncio.sleep(0))
        return result, seen
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


class FakeEndpoint:
    """Stands for the CoAP endpoint: each request is logged with the virtual time and fails
    with ``error`` (an exception class instance) at once."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.log: list[tuple[float, Message]] = []
        self.local_address = (HOST, 56830)
        self.closed = False
        self.security: Any = None

    async def request(self, message: Message, remote: Any) -> Message:
        self.log.append((asyncio.get_running_loop().time(), message))
        raise self.error

    def observations(self) -> list[Any]:
        return []

    async def close(self) -> None:
        self.closed = True


class Fakes:
    """The fake endpoints the client created, and the error their requests fail with."""

    def __init__(self) -> None:
        self.made: list[FakeEndpoint] = []
        self.error: BaseException = AssertionError("nothing may be sent")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    fakes = Fakes()

    class Factory:
        @staticmethod
        async def create(bind: Any, **kwargs: Any) -> FakeEndpoint:
            fakes.made.append(FakeEndpoint(fakes.error))
            return fakes.made[-1]

    monkeypatch.setattr(lwm2m_client, "CoapEndpoint", Factory)
    return fakes


class AddressConnector:
    """Resolves an account to its URI's address without DNS."""

    async def connect(
        self, connection: ConnectionSecurity, credentials: Callable[[], Credentials]
    ) -> Any:
        return (connection.uri.host, connection.uri.port)


RETRIES = {
    "retry_count": 3,
    "retry_timer": 10,
    "sequence_delay": 100,
    "sequence_retry_count": 2,
    "bootstrap_on_failure": False,
}
SCHEDULE = [START, START + 10, START + 30, START + 130, START + 140, START + 160]
"""3 attempts per sequence spaced 10 s and 20 s, 100 s between the 2 sequences."""


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        DtlsSessionError(
            f"DTLS handshake with {HOST}:{PORT} failed: the peer sent decrypt_error",
            alert=51,
            by_peer=True,
        ),
    ],
    ids=["icmp-refused", "dtls-wrong-psk"],
)
def test_immediate_failures_follow_retry_timer_and_sequence_delay(
    fakes: Fakes, error: BaseException
) -> None:
    """Requests that fail at once (the socket reports ConnectionRefusedError; the DTLS
    handshake is refused) are not retried in a tight loop: the attempts follow /1/x/17-20 to the
    second (virtual clock), then nothing more is sent during a day, and no task exception is
    left behind."""
    fakes.error = error
    config = client_config(f"coap://{HOST}:{PORT}", **RETRIES)

    async def main() -> list[ClientEvent]:
        client = LwM2MClient(config, connector=AddressConnector())
        await client.start()
        async with asyncio.timeout(10**6):
            await client.wait_for(final_failure)
        await asyncio.sleep(86400)
        await client.stop()
        return list(client.history)

    history, seen = run_virtual(main)
    [endpoint] = fakes.made
    assert [t for t, _ in endpoint.log] == pytest.approx(SCHEDULE)
    assert all(m.uri_path == ("rd",) for _, m in endpoint.log)
    failed = [e for e in history if isinstance(e, RegistrationFailed)]
    assert [f.retry_at for f in failed] == pytest.approx([*SCHEDULE[1:], None])
    assert all(str(error) in f.reason for f in failed)
    assert seen == []


def test_unresolvable_host_retries_on_the_retry_timer(fakes: Fakes) -> None:
    """The real UDP connector with a host that never resolves (RFC 6761 ``.invalid``): each
    attempt resolves again and fails without sending; the attempts follow /1/x/17-20."""
    config = client_config("coap://no-such-host.invalid:5683", **RETRIES)
    resolved: list[str] = []

    async def main() -> list[ClientEvent]:
        loop = asyncio.get_running_loop()
        getaddrinfo = loop.getaddrinfo

        async def counting(host: Any, *args: Any, **kwargs: Any) -> Any:
            resolved.append(host)
            return await getaddrinfo(host, *args, **kwargs)

        loop.getaddrinfo = counting  # type: ignore[method-assign]
        client = LwM2MClient(config, connector=UdpConnector())
        await client.start()
        async with asyncio.timeout(10**6):
            await client.wait_for(final_failure)
        await client.stop()
        return list(client.history)

    history, seen = run_virtual(main)
    [endpoint] = fakes.made
    assert endpoint.log == []
    assert resolved == ["no-such-host.invalid"] * 6
    failed = [e for e in history if isinstance(e, RegistrationFailed)]
    assert [f.retry_at for f in failed] == pytest.approx([*SCHEDULE[1:], None])
    assert seen == []
