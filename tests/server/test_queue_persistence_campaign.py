"""Behavioural campaign: queue mode in the server service, and restarts on the SQLite store.

Queue mode: LwM2M-TS-Transport 1.1 §6.5 / Core 1.1 §6.2.1.1 — requests to a sleeping client are
held and released in order (NSTART = 1) once it is heard from (Register, Update, Send, a
notification, a response), the awake window restarts with each message, held requests fail
``ClientSleeping`` after ``hold_timeout``, a cancelled caller withdraws its request, a 1.0
client leaving queue mode releases everything.

Persistence: a server stopped and a new one started on the same SQLite file keeps the
registrations (object versions, queue flag, identity) and observations, receives notifications
of a surviving observation, sweeps a registration that expired meanwhile, and a second server
on the same file at the same time does not corrupt it (or is refused).

Fixtures reused: ``queue_pair`` (fake-clock server, queue-mode client ``q1`` on loopback) from
the spec-conformance campaign. Known deviations are ``xfail(strict=True)``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path as FilePath

import pytest

from lwm2m.coap.config import CoapConfig, TransmissionParameters
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.model import Path, ResourceType, SingleResource
from lwm2m.operations.requests import Observe, Read
from lwm2m.server.errors import ClientSleeping, RequestFailed
from lwm2m.server.events import Awake, Expired, NotificationReceived
from lwm2m.server.observation import Observation
from lwm2m.server.registration import ServerConfig
from lwm2m.server.security import PeerIdentity
from lwm2m.store.sqlite import SqliteRegistrationStore, StoreError
from lwm2m.testing import FakeClock

from .conftest import FAST_COAP
from .devices import FakeClient, register_message
from .test_spec_conformance_campaign import queue_pair

__all__ = ["queue_pair"]  # the fixture, shared with the spec-conformance campaign

TIMEOUT = 5
START = 1_000_000.0
INT = ResourceType.INTEGER
QueuePair = tuple[LwM2MServer, FakeClient, FakeClock]


async def _yield_to_the_loop(times: int = 10) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


def _read_paths(client: FakeClient) -> list[Path]:
    return [r.path for r in client.received if isinstance(r, Read)]


# -- queue mode: hold and release -----------------------------------------------------------------


async def test_held_requests_are_released_in_order_by_a_notification(queue_pair: QueuePair) -> None:
    """Transport §6.5: a notification shows the client is online; what waited goes out, in the
    order it was asked for, one at a time."""
    server, client, clock = queue_pair
    async with asyncio.timeout(TIMEOUT):
        handle = await server.observe("q1", "/3/0/9")
        clock.advance(94)
        reads = [asyncio.ensure_future(server.read("q1", f"/3/0/{rid}")) for rid in (1, 0, 9)]
        await _yield_to_the_loop()
        assert _read_paths(client) == []
        assert not any(r.done() for r in reads)
        with server.subscribe() as events:
            client.set_resource(Path(3, 0, 9), 42)
            assert client.notify(Path(3, 0, 9)) == 1
            await events.wait_for(Awake)
            results = await asyncio.gather(*reads)
        assert (await anext(handle)).content == SingleResource(9, INT, 42)
        await handle.cancel(proactive=False)
    assert [r.code for r in results] == [Code.CONTENT] * 3
    assert _read_paths(client) == [Path(3, 0, 1), Path(3, 0, 0), Path(3, 0, 9)]


async def test_every_message_restarts_the_awake_window(queue_pair: QueuePair) -> None:
    """Transport §6.5: the client is reachable for the awake time after its *last* message:
    an Update, a response and a Send each restart the window."""
    server, client, clock = queue_pair
    registration = await server.registration("q1")
    assert registration is not None
    async with asyncio.timeout(TIMEOUT):
        clock.advance(60)
        assert (await client.update(server.local_address)).code == Code.CHANGED
        clock.advance(90)  # 150 s after Register, 90 s after the Update
        assert server.is_awake(registration)
        read = asyncio.ensure_future(server.read("q1", "/3/0/9"))
        await _yield_to_the_loop(1)
        assert (await read).code == Code.CONTENT  # straight out, and the response ...
        clock.advance(90)  # ... restarted the window
        assert server.is_awake(registration)
        nodes = {Path(3, 0, 9): SingleResource(9, INT, 1)}
        assert (await client.send(server.local_address, nodes)).code == Code.CHANGED
        clock.advance(92)
        assert server.is_awake(registration)
        clock.advance(1)
        assert not server.is_awake(registration)


def test_the_default_awake_time_is_coap_max_transmit_wait() -> None:
    """Transport §6.5: MAX_TRANSMIT_WAIT (93 s with the RFC 7252 defaults)."""
    assert ServerConfig().awake_time == TransmissionParameters().max_transmit_wait == 93.0


@pytest.mark.parametrize("configured", [False, True])
async def test_the_awake_time_is_the_clients_not_the_servers_coap_parameters(
    configured: bool,
) -> None:
    """Transport §6.5: the awake window is the *client's* MAX_TRANSMIT_WAIT, which the server
    cannot know: its own CoAP parameters (7 s here) do not change the 93 s default; a fleet
    with other parameters sets ``ServerConfig.awake_time``."""
    transmission = TransmissionParameters(ack_timeout=1.0, ack_random_factor=1.0, max_retransmit=2)
    assert transmission.max_transmit_wait == 7.0
    clock = FakeClock(START)
    server = LwM2MServer(
        clock=clock,
        expiry_interval=None,
        coap_config=CoapConfig(transmission=transmission),
        config=ServerConfig(awake_time=7.0) if configured else ServerConfig(),
    )
    await server.start(("127.0.0.1", 0))
    try:
        answer = await server.handle_uplink(
            register_message("q7", queue=True), ("192.0.2.7", 7), None
        )
        assert answer.code == Code.CREATED
        registration = await server.registration("q7")
        assert registration is not None
        clock.advance(8)
        assert server.is_awake(registration) is not configured  # awake at 8 s only with 93 s
    finally:
        await server.stop()


async def test_a_held_request_follows_the_client_to_its_new_address(queue_pair: QueuePair) -> None:
    """Core §6.2.2: an Update from a new address moves the registration; a request held while
    the client slept goes to where the client woke up."""
    server, client, clock = queue_pair
    moved = FakeClient("q1")
    await moved.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            clock.advance(94)
            read = asyncio.ensure_future(server.read("q1", "/3/0/9"))
            await _yield_to_the_loop()
            moved.location = client.location
            assert (await moved.update(server.local_address)).code == Code.CHANGED
            assert (await read).code == Code.CONTENT
    finally:
        await moved.stop()
    assert _read_paths(client) == []
    assert _read_paths(moved) == [Path(3, 0, 9)]


# -- queue mode: timeouts, cancellation, leaving queue mode ---------------------------------------


async def test_a_hold_timeout_is_client_sleeping_and_the_next_held_request_still_goes() -> None:
    """The documented error of a request the client did not wake up for is ClientSleeping (a
    RequestFailed, no code, endpoint named); it is never sent, the ones after it still are."""
    clock = FakeClock(START)
    server = LwM2MServer(
        clock=clock,
        expiry_interval=None,
        coap_config=FAST_COAP,
        config=ServerConfig(hold_timeout=0.1),
    )
    await server.start(("127.0.0.1", 0))
    client = FakeClient("q8")
    await client.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.register(server.local_address, queue=True)
            clock.advance(94)
            with pytest.raises(ClientSleeping) as caught:
                await server.read("q8", "/3/0/1")
            assert isinstance(caught.value, RequestFailed)
            assert caught.value.endpoint == "q8"
            assert caught.value.code is None
            assert "did not wake up" in str(caught.value)
            # a later request, held again, is released by the next wake-up; the first is not
            read = asyncio.ensure_future(server.read("q8", "/3/0/9"))
            await _yield_to_the_loop()
            await client.update(server.local_address)
            assert (await read).code == Code.CONTENT
    finally:
        await client.stop()
        await server.stop()
    assert _read_paths(client) == [Path(3, 0, 9)]


async def test_cancelling_a_held_request_keeps_the_others_in_order(queue_pair: QueuePair) -> None:
    """asyncio cancellation of the caller withdraws its held request only."""
    server, client, clock = queue_pair
    async with asyncio.timeout(TIMEOUT):
        clock.advance(94)
        first, middle, last = (
            asyncio.ensure_future(server.read("q1", f"/3/0/{rid}")) for rid in (0, 1, 9)
        )
        await _yield_to_the_loop()
        middle.cancel()
        with pytest.raises(asyncio.CancelledError):
            await middle
        await client.update(server.local_address)
        assert [r.code for r in await asyncio.gather(first, last)] == [Code.CONTENT] * 2
    assert _read_paths(client) == [Path(3, 0, 0), Path(3, 0, 9)]


async def test_leaving_queue_mode_releases_every_held_request_and_holds_no_more() -> None:
    """Core 1.0 §5.3.2: a 1.0 client's Update with ``b=U`` ends queue mode: all held requests
    go, and later requests are sent at once whatever the time."""
    clock = FakeClock(START)
    server = LwM2MServer(clock=clock, expiry_interval=None, coap_config=FAST_COAP)
    await server.start(("127.0.0.1", 0))
    client = FakeClient("q9")
    await client.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.register(server.local_address, version="1.0", binding="UQ", links="</3/0>")
            clock.advance(94)
            held = [asyncio.ensure_future(server.read("q9", f"/3/0/{rid}")) for rid in (0, 1, 9)]
            await _yield_to_the_loop()
            assert _read_paths(client) == []
            await client.update(server.local_address, binding="U")
            assert [r.code for r in await asyncio.gather(*held)] == [Code.CONTENT] * 3
            clock.advance(10_000)
            assert (await server.read("q9", "/3/0/2")).code == Code.CONTENT
    finally:
        await client.stop()
        await server.stop()
    assert sorted(_read_paths(client)[:3]) == [Path(3, 0, 0), Path(3, 0, 1), Path(3, 0, 9)]
    assert _read_paths(client)[3:] == [Path(3, 0, 2)]


# -- persistence on SQLite ------------------------------------------------------------------------


LINKS = '</>;ct="60 110 112 11542",</1/0>,</3/0>,</3>;ver=1.1'


async def test_a_restart_keeps_versions_queue_flag_and_identity(tmp_path: FilePath) -> None:
    database = tmp_path / "server.sqlite"
    identity = PeerIdentity.psk("sec1")
    clock = FakeClock(START)
    store = await SqliteRegistrationStore.open(database)
    first = LwM2MServer(store=store, clock=clock, expiry_interval=None)
    await first.start(("127.0.0.1", 0))
    try:
        message = register_message("sec1", queue=True, links=LINKS)
        assert (
            await first.handle_uplink(message, ("192.0.2.1", 5684), identity)
        ).code == Code.CREATED
        before = await first.registration("sec1")
    finally:
        await first.stop()
        await store.close()
    assert before is not None

    store = await SqliteRegistrationStore.open(database)
    second = LwM2MServer(store=store, clock=clock, expiry_interval=None)
    await second.start(("127.0.0.1", 0))
    try:
        after = await second.registration("sec1")
        assert after == before
        assert after is not None
        assert after.object_versions == before.object_versions
        assert after.object_versions[3] == "1.1"
        assert after.queue_mode
        assert after.identity == identity
        assert await store.get_by_identity(identity) == after
        assert not second.is_awake(after)  # unknown after a restart: asleep
        # the identity binding is still enforced, and the client's Update wakes it
        update = Message(Code.POST, uri_path=after.location)
        plain = await second.handle_uplink(update, ("192.0.2.1", 5684), None)
        assert plain.code == Code.BAD_REQUEST
        ok = await second.handle_uplink(update, ("192.0.2.1", 5684), identity)
        assert ok.code == Code.CHANGED
        assert second.is_awake(after)
    finally:
        await second.stop()
        await store.close()


async def test_a_surviving_observation_delivers_and_wakes_the_queue_client(
    tmp_path: FilePath,
) -> None:
    """After a restart on the same file the observation is back; its notification reaches the
    new server, counts as the queue-mode client waking up, and releases what was held."""
    database = tmp_path / "server.sqlite"
    store = await SqliteRegistrationStore.open(database)
    first = LwM2MServer(store=store, expiry_interval=None)
    await first.start(("127.0.0.1", 0))
    address = first.local_address
    client = FakeClient("qp")
    await client.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.register(address, queue=True, links=LINKS)
            handle = await first.observe("qp", "/3/0/9")
            registration = await first.registration("qp")
        await first.stop()
        await store.close()
        del first, store

        store = await SqliteRegistrationStore.open(database)
        second = LwM2MServer(store=store, expiry_interval=None)
        await second.start(address)
        try:
            assert await second.registration("qp") == registration
            assert await second.observations("qp") == [handle.observation]
            with second.subscribe() as events:
                async with asyncio.timeout(TIMEOUT):
                    read = asyncio.ensure_future(second.read("qp", "/3/0/0"))
                    await _yield_to_the_loop()
                    assert _read_paths(client) == []  # asleep after the restart: held
                    client.set_resource(Path(3, 0, 9), 7)
                    assert client.notify(Path(3, 0, 9)) == 1
                    await events.wait_for(Awake)  # published before the notification
                    event = await events.wait_for(NotificationReceived)
                    assert (await read).code == Code.CONTENT
            assert event.observation.token == handle.token
            assert event.response.content == SingleResource(9, INT, 7)
        finally:
            await second.stop()
            await store.close()
    finally:
        await client.stop()
    assert _read_paths(client) == [Path(3, 0, 0)]


async def test_a_registration_that_expired_while_down_is_swept_after_restart(
    tmp_path: FilePath,
) -> None:
    database = tmp_path / "server.sqlite"
    clock = FakeClock(START)
    store = await SqliteRegistrationStore.open(database)
    first = LwM2MServer(store=store, clock=clock, expiry_interval=None)
    message = register_message("short", lifetime=60)
    assert (await first.handle_uplink(message, ("192.0.2.2", 2), None)).code == Code.CREATED
    assert (
        await first.handle_uplink(register_message("long", lifetime=600), ("192.0.2.3", 3), None)
    ).code == Code.CREATED
    short = await first.registration("short")
    assert short is not None
    observation = Observation.from_request(b"tok-exp1", short.id, Observe(Path(3, 0, 9)), START)
    assert await store.add_observation(observation)
    await store.close()
    del first, store

    clock.advance(120)
    store = await SqliteRegistrationStore.open(database)
    second = LwM2MServer(store=store, clock=clock, expiry_interval=0.01)
    with second.subscribe() as events:
        await second.start(("127.0.0.1", 0))
        try:
            assert await second.registration("short") is None  # over, even before the sweep
            async with asyncio.timeout(TIMEOUT):
                expired = await events.wait_for(Expired)
            assert expired.registration == short
            assert [o.token for o in expired.observations] == [b"tok-exp1"]
            assert second.observation_handle(b"tok-exp1") is None
            assert await second.registration("long") is not None
        finally:
            await second.stop()
            await store.close()

    store = await SqliteRegistrationStore.open(database)
    try:
        assert [r.endpoint for r in await store.registrations()] == ["long"]
        assert await store.all_observations() == []
    finally:
        await store.close()


def _rows(database: FilePath, endpoint: str) -> int:
    connection = sqlite3.connect(database)
    try:
        (count,) = connection.execute(
            "SELECT count(*) FROM registrations WHERE endpoint = ?", (endpoint,)
        ).fetchone()
        return int(count)
    finally:
        connection.close()


async def test_two_servers_on_one_file_do_not_corrupt_it(tmp_path: FilePath) -> None:
    database = tmp_path / "server.sqlite"
    store_a = await SqliteRegistrationStore.open(database)
    try:
        store_b = await SqliteRegistrationStore.open(database)
    except StoreError:
        await store_a.close()
        return  # refused clearly: acceptable
    server_a = LwM2MServer(store=store_a, expiry_interval=None)
    server_b = LwM2MServer(store=store_b, expiry_interval=None)
    await server_a.start(("127.0.0.1", 0))
    await server_b.start(("127.0.0.1", 0))
    client = FakeClient("twice")
    await client.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            assert (await client.register(server_a.local_address)).code == Code.CREATED
            assert (await client.register(server_b.local_address)).code == Code.CREATED
    finally:
        await client.stop()
        for server in (server_a, server_b):
            await server.stop()
        await store_a.close()
        await store_b.close()
    assert _rows(database, "twice") == 1

    # and what is de-registered stays de-registered across a restart
    store = await SqliteRegistrationStore.open(database)
    try:
        [registration] = await store.registrations()
        assert await store.remove(registration.id) is not None
    finally:
        await store.close()
    store = await SqliteRegistrationStore.open(database)
    try:
        assert await store.registrations() == []
    finally:
        await store.close()
