"""More paths of the asyncio LwM2M server: the Secure Component reader (LwM2M-SCS-2), the event
hub, transport seams, and requests racing with the end of a registration (LwM2M-TS-Core §6.2,
§6.4, Transport §6.5), staged with a store whose calls wait on events the test sets."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.io import lwm2m_server as server_module
from lwm2m.io.coap_endpoint import CoapRequest
from lwm2m.io.coap_transport import PeerIdentity as TransportIdentity
from lwm2m.io.lwm2m_server import EventHub, LwM2MServer, PlainOrDtls, peer_identity, remote_address
from lwm2m.model import Path
from lwm2m.operations.responses import Response
from lwm2m.secure.object import secure_component_instance
from lwm2m.server.errors import NotRegistered, RequestRejected
from lwm2m.server.events import ObservationEnded, Registered, SecureComponentReader, ServerEvent
from lwm2m.server.registration import Registration, ServerConfig
from lwm2m.server.security import IdentityKind, PeerIdentity
from lwm2m.store.memory import MemoryRegistrationStore

from .conftest import FAST_COAP
from .devices import FakeClient, register_message
from .test_sc_object import PLAIN, SOFTWARE, WITH_SC, registration

TIMEOUT = 5.0
ADDRESS = ("192.0.2.7", 40000)


async def read_software(endpoint: str, path: Path) -> Response:
    return Response(Code.CONTENT, content=secure_component_instance(SOFTWARE, path.ids[1]))


# -- SecureComponentReader ------------------------------------------------------------------------


async def test_registering_again_forgets_the_identification_of_the_replaced_registration() -> None:
    reader = SecureComponentReader(read_software)  # no publisher: results are only kept
    old = registration(WITH_SC, "old")
    pending = reader(Registered(old))
    assert pending is not None
    (component,) = await pending
    assert reader.identities.get(old.id) == (component,)
    # the client registers again without a component: the old entry must not linger
    assert reader(Registered(registration(PLAIN, "new"), replaced=old)) is None
    assert len(reader.identities) == 0


async def test_a_read_without_content_is_left_out_of_the_identification() -> None:
    async def read(endpoint: str, path: Path) -> Response:
        if path.ids[1] == 0:
            return Response(Code.CONTENT)  # e.g. an empty answer
        return await read_software(endpoint, path)

    reader = SecureComponentReader(read)
    reg = registration(WITH_SC + ",</33000/1>")
    found = await reader.read(reg, (0, 1))
    assert [c.instance_id for c in found] == [1]
    assert reader.identities.get(reg.id) == found


# -- EventHub and transport seams -----------------------------------------------------------------


async def test_closing_the_hub_cancels_running_async_listeners() -> None:
    hub: EventHub[str] = EventHub()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow(event: str) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    hub.add_listener(slow)
    with hub.subscribe() as events:
        hub.publish("first")
        async with asyncio.timeout(TIMEOUT):
            await started.wait()
            hub.close()
            await cancelled.wait()
            assert await events.wait_for(str) == "first"  # queued events are still delivered
            with pytest.raises(LookupError):
                await events.wait_for(str)


def test_transport_seams_identities_and_addresses() -> None:
    """Text RPK / OSCORE identities are kept; X.509 alt names leave out the common name; the
    peer key is the address when the security layer does not know a newer one."""
    rpk, oscore = TransportIdentity("rpk", "ab" * 32), TransportIdentity("oscore", "a1")
    assert peer_identity(rpk) == PeerIdentity(IdentityKind.RPK, "ab" * 32)
    assert peer_identity(oscore) == PeerIdentity(IdentityKind.OSCORE, "a1")
    details = SimpleNamespace(subject_alt_names=("dev1", "urn:dev:1"))
    x509 = peer_identity(TransportIdentity("x509", "dev1", details))
    assert x509 == PeerIdentity(IdentityKind.X509, "dev1")
    assert x509.alt_names == ("urn:dev:1",)
    for known, expected in ((("192.0.2.9", 7), ("192.0.2.9", 7)), (None, ("192.0.2.1", 5684))):
        endpoint = SimpleNamespace(
            security=SimpleNamespace(address_of=lambda peer, known=known: known)
        )
        assert remote_address(cast(Any, endpoint), ("192.0.2.1", 5684)) == expected


class FakeDtls:
    """The DTLS layer as PlainOrDtls sees it: ``secured`` addresses have a session."""

    def __init__(self) -> None:
        self.secured: set[tuple[str, int]] = set()

    def address_of(self, peer: Any) -> Any:
        return peer if peer in self.secured else None

    peer_for = address_of

    def unprotect(self, data: bytes, addr: Any, now: float) -> list[tuple[bytes, Any]]:
        return [(b"decrypted", addr)]

    def protect(self, data: bytes, peer: Any, now: float) -> list[tuple[bytes, Any]]:
        return [(b"encrypted", peer)]


COAP_GET = bytes([0x40, 0x01, 0x12, 0x34])  # CON GET, version 1


def test_plain_coap_beside_dtls(monkeypatch: pytest.MonkeyPatch) -> None:
    dtls = FakeDtls()
    layer = PlainOrDtls(cast(Any, dtls))
    a, b, c, d = (("192.0.2.1", p) for p in (1, 2, 3, 4))
    assert layer.unprotect(bytes([22, 0xFE, 0xFD]), a, 0.0) == [(b"decrypted", a)]  # a record
    assert layer.unprotect(b"\x00\x01", a, 0.0) == layer.unprotect(b"", a, 0.0) == []  # not CoAP
    assert layer.unprotect(COAP_GET, a, 0.0) == [(COAP_GET, a)]
    assert layer.protect(b"reply", a, 0.0) == [(b"reply", a)]
    # a plaintext from an address with a DTLS session cannot pass for that client
    dtls.secured.add(b)
    assert layer.unprotect(COAP_GET, b, 0.0) == []
    assert layer.dropped == 1
    # once a plain peer has a session, replies to it go encrypted
    dtls.secured.add(a)
    assert layer.protect(b"reply", a, 0.0) == [(b"encrypted", a)]
    dtls.secured.discard(a)
    # the table of plain peers is bounded: the oldest is forgotten
    monkeypatch.setattr(server_module, "_MAX_PLAIN_PEERS", 2)
    layer.unprotect(COAP_GET, c, 0.0)
    layer.unprotect(COAP_GET, d, 0.0)
    assert layer.address_of(a) is None
    assert (layer.address_of(c), layer.address_of(d)) == (c, d)
    assert layer.protect(b"reply", a, 0.0) == [(b"encrypted", a)]
    assert (layer.peer_for(b), layer.peer_for(c)) == (b, None)


# -- requests racing with the end of a registration ----------------------------------------------


class SlowStore(MemoryRegistrationStore):
    """A store whose call named ``slow`` (once) waits for :attr:`release`; ``entered`` tells
    the test it is waiting. ``get_by_endpoint`` answers before waiting (a stale answer);
    ``get`` and ``add_observation`` look up after it."""

    def __init__(self) -> None:
        super().__init__()
        self.slow: str | None = None
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def _wait(self, name: str) -> None:
        if self.slow == name:
            self.slow = None
            self.entered.set()
            await self.release.wait()

    async def get_by_endpoint(self, endpoint: str) -> Registration | None:
        found = await super().get_by_endpoint(endpoint)
        await self._wait("get_by_endpoint")
        return found

    async def get(self, registration_id: str) -> Registration | None:
        await self._wait("get")
        return await super().get(registration_id)

    async def add_observation(self, observation: Any) -> bool:
        await self._wait("add_observation")
        return await super().add_observation(observation)


async def started_server(store: MemoryRegistrationStore | None = None) -> LwM2MServer:
    server = LwM2MServer(
        store=store,
        config=ServerConfig(awake_time=30.0),
        coap_config=FAST_COAP,
        expiry_interval=None,
    )
    await server.start(("127.0.0.1", 0))
    return server


@pytest.mark.parametrize(
    ("slow", "queue", "message"),
    [
        ("get_by_endpoint", True, "not registered"),  # gone before the request is queued
        ("get", True, "registration ended"),  # gone between the grant and the send
        ("add_observation", False, "registration ended"),  # gone while the Observe was answered
    ],
)
async def test_a_client_de_registering_during_a_request_fails_it_not_registered(
    slow: str, queue: bool, message: str
) -> None:
    store = SlowStore()
    server = await started_server(store)
    client = FakeClient("dev1")
    await client.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.register(server.local_address, queue=queue)
            store.slow = slow
            operation = server.observe if slow == "add_observation" else server.read
            request = asyncio.ensure_future(operation("dev1", "/3/0/9"))
            await store.entered.wait()
            assert (await client.deregister(server.local_address)).code == Code.DELETED
            store.release.set()
            with pytest.raises(NotRegistered, match=message):
                await request
        assert len(client.received) == (1 if slow == "add_observation" else 0)
        assert await store.all_observations() == []
    finally:
        await client.stop()
        await server.stop()


async def test_an_update_of_a_registration_removed_meanwhile_is_4_04() -> None:
    class VanishingStore(MemoryRegistrationStore):
        async def update(self, registration: Registration) -> Any:
            await self.remove(registration.id)  # e.g. expired by another server instance
            return await super().update(registration)

    server = LwM2MServer(store=VanishingStore(), expiry_interval=None)
    answer = await server.handle_uplink(register_message("dev1"), ADDRESS, None)
    events: list[ServerEvent] = []
    server.add_listener(events.append)
    update = Message(Code.POST, uri_path="/".join(answer.location_path), uri_query=["lt=600"])
    assert (await server.handle_uplink(update, ADDRESS, None)).code == Code.NOT_FOUND
    assert events == []
    assert await server.registrations() == []


class ResettingPeer(asyncio.DatagramProtocol):
    """A client that answers every confirmable message with a Reset (RFC 7252 §4.2)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 4 and data[0] >> 4 == 0x4:  # version 1, CON
            self.transport.sendto(bytes([0x70, 0, data[2], data[3]]), addr)


@pytest.mark.parametrize("queue", [False, True])
async def test_a_reset_answer_fails_the_request_and_stores_no_observation(queue: bool) -> None:
    server = await started_server()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(ResettingPeer, local_addr=("127.0.0.1", 0))
    try:
        address = transport.get_extra_info("sockname")[:2]
        registered = await server.handle_uplink(register_message("rst", queue=queue), address, None)
        assert registered.code == Code.CREATED
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(RequestRejected):
                await server.observe("rst", "/3/0/9")
            with pytest.raises(RequestRejected):
                await server.read("rst", "/3/0/9")
        assert await server.store.all_observations() == []
        assert await server.registration("rst") is not None  # a Reset does not de-register
    finally:
        transport.close()
        await server.stop()


class StallingClient(FakeClient):
    """Leaves a Cancel Observation (GET with Observe=1) unanswered until :attr:`release`."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.cancel_seen, self.release = asyncio.Event(), asyncio.Event()

    async def handle(self, request: CoapRequest) -> Message:  # type: ignore[override]
        if request.message.observe == 1:
            self.cancel_seen.set()
            await self.release.wait()
        return super().handle(request)


async def test_a_proactive_cancel_given_up_still_ends_the_observation() -> None:
    """§6.4.2 proactive Cancel Observation, abandoned by its caller before the client answers:
    the observation is over all the same (record removed, handle ended)."""
    server = await started_server()
    client = StallingClient("dev1")
    await client.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.register(server.local_address)
            handle = await server.observe("dev1", "/3/0/9")
            cancel = asyncio.ensure_future(handle.cancel())
            await client.cancel_seen.wait()
            cancel.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancel
        assert (handle.active, handle.end_reason) == (False, "cancelled")
        assert server.observation_handle(handle.token) is None
        assert await server.observations("dev1") == []
    finally:
        client.release.set()
        await client.stop()
        await server.stop()


@pytest.mark.parametrize("then_reset", [False, True])
async def test_an_observation_whose_registration_vanished_ends(then_reset: bool) -> None:
    """The registration leaves the store behind this server's back (a shared store, another
    instance's expiry sweep): the next notification ends the observation, and the one after
    is answered with a Reset, as after a De-register, so the client stops notifying."""
    server = await started_server()
    client = FakeClient("dev1")
    await client.start()
    assert client.endpoint is not None
    try:
        events: list[ServerEvent] = []
        server.add_listener(events.append)
        async with asyncio.timeout(TIMEOUT):
            await client.register(server.local_address)
            handle = await server.observe("dev1", "/3/0/9")
            reg = await server.registration("dev1")
            assert reg is not None
            await server.store.remove(reg.id)
            client.set_resource(Path(3, 0, 9), 5)
            assert client.notify(Path(3, 0, 9)) == 1
            assert [r async for r in handle] == []
            assert handle.end_reason == "registration ended"
            assert server.observation_handle(handle.token) is None
            assert await server.cancel_observation(handle.token) is None
            assert not [e for e in events if isinstance(e, ObservationEnded)]
            if not then_reset:
                return
            client.set_resource(Path(3, 0, 9), 6)
            assert client.notify(Path(3, 0, 9)) == 1
            # a round trip on the same socket pair: the server handled the notification first
            probe = Message(Code.POST, uri_path="/rd/none")
            assert (await client.uplink(server.local_address, probe)).code == Code.NOT_FOUND
        assert client.endpoint.observations() == []
    finally:
        await client.stop()
        await server.stop()
