"""The /rd and /dp resources of the server service (LwM2M-TS-Core §6.2, §6.4.6; Transport §6.2),
driven over loopback by a fake client on our CoAP endpoint, or through ``handle_uplink``."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.io.coap_transport import PeerIdentity as TransportIdentity
from lwm2m.io.lwm2m_server import LwM2MServer, peer_identity
from lwm2m.model import Path, ResourceType, SingleResource
from lwm2m.operations.requests import Register, Update, UplinkRequest
from lwm2m.server.events import (
    Deregistered,
    Expired,
    Registered,
    SendReceived,
    ServerEvent,
    Updated,
)
from lwm2m.server.registration import ServerConfig
from lwm2m.server.security import IdentityKind, PeerIdentity, RequestContext, SecurityInfo
from lwm2m.store.memory import MemorySecurityStore
from lwm2m.testing import FakeClock

from .devices import FakeClient, register_message

ADDRESS = ("192.0.2.7", 40000)
PSK = PeerIdentity.psk("dev1")


async def test_register_update_deregister_over_loopback(
    server: LwM2MServer, client: FakeClient
) -> None:
    address = server.local_address
    with server.subscribe() as events:
        async with asyncio.timeout(5):
            response = await client.register(address, lifetime=120)
            assert response.code == Code.CREATED
            assert response.location_path[0] == "rd"
            registered = await events.wait_for(Registered)
            reg = registered.registration
            assert registered.replaced is None
            assert reg.location == client.location
            assert reg.address == client.address
            assert reg.object_versions == {1: "1.0", 3: "1.1"}
            assert await server.registration("dev1") == reg
            assert await server.registrations() == [reg]

            assert (await client.update(address, lifetime=600)).code == Code.CHANGED
            updated = await events.wait_for(Updated)
            assert (updated.old, updated.new.lifetime) == (reg, 600)
            assert updated.registration is updated.new

            assert (await client.deregister(address)).code == Code.DELETED
            gone = await events.wait_for(Deregistered)
            assert gone.registration.id == reg.id
            assert await server.registration("dev1") is None
            assert (await client.update(address)).code == Code.NOT_FOUND
            assert (await client.deregister(address)).code == Code.NOT_FOUND


async def test_registering_again_replaces_the_registration(
    server: LwM2MServer, registered: FakeClient
) -> None:
    first = await server.registration("dev1")
    with server.subscribe() as events:
        async with asyncio.timeout(5):
            await registered.register(server.local_address)
            event = await events.wait_for(Registered)
    assert event.replaced == first
    assert event.registration.id != first.id  # type: ignore[union-attr]
    assert len(await server.registrations()) == 1


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (Message(Code.POST, uri_path="/rd", uri_query=["lt=60"]), Code.BAD_REQUEST),
        (register_message("d", version="1.2"), Code.PRECONDITION_FAILED),
        (register_message("d", version="0.9"), Code.PRECONDITION_FAILED),
        (register_message("d", binding="UQ"), Code.BAD_REQUEST),
        (register_message("d", lifetime=0), Code.BAD_REQUEST),
        (register_message("d", links="</3/0/1/2>"), Code.BAD_REQUEST),
        (register_message("d", links="<not closed"), Code.BAD_REQUEST),
        (Message(Code.POST, uri_path="/rd", uri_query=["ep=d", "lt=x"]), Code.BAD_REQUEST),
        (Message(Code.GET, uri_path="/rd"), Code.METHOD_NOT_ALLOWED),
        (Message(Code.POST, uri_path="/rd/a/b"), Code.NOT_FOUND),
        (Message(Code.POST, uri_path="/bs", uri_query=["ep=d"]), Code.NOT_FOUND),
        (Message(Code.GET, uri_path="/dp"), Code.NOT_FOUND),  # no registration from there
    ],
)
async def test_invalid_requests_get_their_code(
    server: LwM2MServer, message: Message, code: int
) -> None:
    answer = await server.handle_uplink(message, ADDRESS, None)
    assert answer.code == code
    assert await server.registrations() == []


async def test_lwm2m_1_0_clients_are_accepted(server: LwM2MServer) -> None:
    answer = await server.handle_uplink(
        register_message("old", version="1.0", binding="UQ", links="</3/0>"), ADDRESS, None
    )
    assert answer.code == Code.CREATED
    reg = await server.registration("old")
    assert reg is not None
    assert (reg.version, reg.binding, reg.queue_mode) == ("1.0", "U", True)


class Allow:
    def __init__(self, *allowed: str) -> None:
        self.allowed = set(allowed)
        self.seen: list[tuple[type, RequestContext]] = []

    async def authorize(self, request: UplinkRequest, context: RequestContext) -> bool:
        self.seen.append((type(request), context))
        return context.endpoint in self.allowed


async def test_the_authorizer_refuses_with_4_03() -> None:
    allow = Allow("good")
    server = LwM2MServer(authorizer=allow, expiry_interval=None)
    answer = await server.handle_uplink(register_message("evil"), ADDRESS, None)
    assert answer.code == Code.FORBIDDEN
    answer = await server.handle_uplink(register_message("good"), ADDRESS, None)
    assert answer.code == Code.CREATED
    location = "/".join(answer.location_path)
    update = Message(Code.POST, uri_path=location)
    assert (await server.handle_uplink(update, ADDRESS, None)).code == Code.CHANGED
    kinds = [kind for kind, _ in allow.seen]
    assert kinds == [Register, Register, Update]
    context = allow.seen[2][1]
    assert context.registration is not None
    assert (context.endpoint, context.address, context.identity) == ("good", ADDRESS, None)
    allow.allowed.clear()
    assert (await server.handle_uplink(update, ADDRESS, None)).code == Code.FORBIDDEN
    delete = Message(Code.DELETE, uri_path=location)
    assert (await server.handle_uplink(delete, ADDRESS, None)).code == Code.FORBIDDEN


async def test_endpoint_must_match_the_dtls_identity(caplog: pytest.LogCaptureFixture) -> None:
    server = LwM2MServer(expiry_interval=None)
    with caplog.at_level(logging.WARNING):
        answer = await server.handle_uplink(
            register_message("dev1"), ADDRESS, PeerIdentity.psk("intruder")
        )
    assert answer.code == Code.BAD_REQUEST
    assert "does not match the authenticated identity" in caplog.text
    answer = await server.handle_uplink(register_message("dev1"), ADDRESS, PSK)
    assert answer.code == Code.CREATED
    reg = await server.registration("dev1")
    assert reg is not None
    assert reg.identity == PSK
    location = "/".join(answer.location_path)
    # Update / De-register from another authenticated identity: 4.00
    other = PeerIdentity.psk("intruder")
    update = Message(Code.POST, uri_path=location)
    assert (await server.handle_uplink(update, ADDRESS, other)).code == Code.BAD_REQUEST
    delete = Message(Code.DELETE, uri_path=location)
    assert (await server.handle_uplink(delete, ADDRESS, other)).code == Code.BAD_REQUEST
    assert (await server.handle_uplink(update, ADDRESS, PSK)).code == Code.CHANGED
    assert (await server.handle_uplink(delete, ADDRESS, PSK)).code == Code.DELETED


async def test_security_store_maps_identities_that_are_not_names() -> None:
    rpk = PeerIdentity(IdentityKind.RPK, "ab" * 32)
    store = MemorySecurityStore([SecurityInfo("dev1", rpk)])
    server = LwM2MServer(security_store=store, expiry_interval=None)
    answer = await server.handle_uplink(register_message("dev1"), ADDRESS, rpk)
    assert answer.code == Code.CREATED
    answer = await server.handle_uplink(register_message("dev2"), ADDRESS, rpk)
    assert answer.code == Code.BAD_REQUEST
    assert await store.get_by_identity(rpk) == SecurityInfo("dev1", rpk)
    store.add(SecurityInfo("dev1", PSK))
    assert await store.get_by_identity(rpk) is None
    assert store.remove("dev1") == SecurityInfo("dev1", PSK)
    assert store.remove("dev1") is None


def test_transport_identities_are_converted() -> None:
    assert peer_identity(None) is None
    assert peer_identity(TransportIdentity("psk", b"dev1")) == PSK
    rpk = peer_identity(TransportIdentity("rpk", b"\x30\x59"))
    assert rpk is not None
    assert rpk.kind is IdentityKind.RPK
    assert len(rpk.value) == 64
    assert peer_identity(TransportIdentity("oscore", b"\x01")) == PeerIdentity(
        IdentityKind.OSCORE, "01"
    )
    assert peer_identity(TransportIdentity("x509", "CN=dev1")) == PeerIdentity(
        IdentityKind.X509, "CN=dev1"
    )
    assert peer_identity(TransportIdentity("weird", b"")) is None


async def test_send_is_published_and_answered_2_04(
    server: LwM2MServer, registered: FakeClient
) -> None:
    nodes = {Path(3, 0, 9): SingleResource(9, ResourceType.INTEGER, 12)}
    with server.subscribe() as events:
        async with asyncio.timeout(5):
            answer = await registered.send(server.local_address, nodes, timestamp=1.7e9)
            assert answer.code == Code.CHANGED
            event = await events.wait_for(SendReceived)
    assert event.registration.endpoint == "dev1"
    assert len(event.groups) == 1
    assert event.groups[0].timestamp == 1.7e9
    assert dict(event.groups[0].nodes) == nodes


async def test_send_from_strangers_and_bad_payloads(server: LwM2MServer) -> None:
    stranger = FakeClient("nobody")
    await stranger.start()
    try:
        async with asyncio.timeout(5):
            nodes = {Path(3, 0, 9): SingleResource(9, ResourceType.INTEGER, 1)}
            answer = await stranger.send(server.local_address, nodes)
            assert answer.code == Code.NOT_FOUND
            await stranger.register(server.local_address)
            bad = Message(Code.POST, b"\xff\x00", uri_path="/dp", content_format=112)
            answer = await stranger.uplink(server.local_address, bad)
            assert answer.code == Code.BAD_REQUEST
    finally:
        await stranger.stop()


async def test_send_with_an_identity_finds_the_registration_by_identity() -> None:
    server = LwM2MServer(expiry_interval=None)
    await server.handle_uplink(register_message("dev1"), ADDRESS, PSK)
    client = FakeClient("dev1")
    payload_message = await _send_message(client)
    answer = await server.handle_uplink(payload_message, ("192.0.2.99", 1), PSK)
    assert answer.code == Code.CHANGED
    answer = await server.handle_uplink(payload_message, ADDRESS, PeerIdentity.psk("x"))
    assert answer.code == Code.NOT_FOUND


async def _send_message(client: FakeClient) -> Message:
    from lwm2m.codec.base import TimestampedNodes
    from lwm2m.operations.coap_mapping import encode_request
    from lwm2m.operations.requests import Send

    nodes = {Path(3, 0, 9): SingleResource(9, ResourceType.INTEGER, 3)}
    return encode_request(Send((TimestampedNodes(None, nodes),)), client.model)


async def test_lifetime_expiry_with_a_fake_clock() -> None:
    clock = FakeClock(1_000_000.0)
    server = LwM2MServer(clock=clock, expiry_interval=None, config=ServerConfig(lifetime_grace=2.0))
    events: list[ServerEvent] = []
    server.add_listener(events.append)
    await server.handle_uplink(register_message("a", lifetime=60), ADDRESS, None)
    answer = await server.handle_uplink(register_message("b", lifetime=100), ADDRESS, None)
    location = "/".join(answer.location_path)
    clock.advance(61)
    assert await server.expire_registrations() == []  # within the grace
    clock.advance(2)
    expired = await server.expire_registrations()
    assert [r.endpoint for r in expired] == ["a"]
    assert isinstance(events[-1], Expired)
    assert events[-1].registration.endpoint == "a"
    # an Update restarts the lifetime
    await server.handle_uplink(Message(Code.POST, uri_path=location), ADDRESS, None)
    clock.advance(90)
    assert await server.expire_registrations() == []
    assert [r.endpoint for r in await server.expire_registrations(clock() + 20)] == ["b"]
    assert await server.registrations() == []


async def test_the_sweep_runs_on_its_own() -> None:
    clock = FakeClock(1_000_000.0)
    server = LwM2MServer(clock=clock, expiry_interval=0.01)
    await server.start(("127.0.0.1", 0))
    try:
        with server.subscribe() as events:
            await server.handle_uplink(register_message("a", lifetime=1), ADDRESS, None)
            clock.advance(5)
            async with asyncio.timeout(5):
                event = await events.wait_for(Expired)
        assert event.registration.endpoint == "a"
    finally:
        await server.stop()


async def test_listeners_sync_async_and_failing(caplog: pytest.LogCaptureFixture) -> None:
    server = LwM2MServer(expiry_interval=None)
    seen: list[str] = []
    done = asyncio.Event()

    def broken(event: ServerEvent) -> None:
        raise RuntimeError("boom")

    async def later(event: ServerEvent) -> None:
        seen.append("async")
        done.set()

    async def broken_later(event: ServerEvent) -> None:
        raise RuntimeError("boom later")

    remove = server.add_listener(lambda e: seen.append("sync"))
    server.add_listener(broken)
    server.add_listener(later)
    server.add_listener(broken_later)
    with caplog.at_level(logging.ERROR):
        await server.handle_uplink(register_message("a"), ADDRESS, None)
        async with asyncio.timeout(5):
            await done.wait()
        for _ in range(3):
            await asyncio.sleep(0)  # let the failing task's done-callback run
    assert seen == ["sync", "async"]
    assert "event listener failed" in caplog.text
    remove()
    remove()  # removing twice is harmless
    await server.handle_uplink(register_message("b"), ADDRESS, None)
    assert seen.count("sync") == 1


async def test_subscriptions_are_bounded_and_end() -> None:
    server = LwM2MServer(expiry_interval=None)
    subscription = server.subscribe(maxsize=2)
    for name in ("a", "b", "c"):
        await server.handle_uplink(register_message(name), ADDRESS, None)
    assert subscription.dropped == 1
    first = await anext(subscription)
    assert isinstance(first, Registered)
    assert first.registration.endpoint == "b"
    subscription.close()
    remaining = [event async for event in subscription]
    assert len(remaining) == 1
    with pytest.raises(LookupError):
        await subscription.wait_for(Registered)


async def test_a_subscription_waits_for_later_events() -> None:
    server = LwM2MServer(expiry_interval=None)
    with server.subscribe() as events:
        waiter = asyncio.ensure_future(events.wait_for(Registered, lambda e: True))
        await asyncio.sleep(0)
        await server.handle_uplink(register_message("a"), ADDRESS, None)
        async with asyncio.timeout(5):
            event = await waiter
    assert event.registration.endpoint == "a"


async def test_lifecycle_errors() -> None:
    server = LwM2MServer(expiry_interval=None)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.endpoint
    await server.stop()  # not started: nothing to do
    async with server:
        await server.start(("127.0.0.1", 0))
        with pytest.raises(RuntimeError, match="already started"):
            await server.start(("127.0.0.1", 0))
    assert server._endpoint is None


class PskLayer:
    """A security layer stand-in: plain UDP, but every peer is authenticated as PSK ``dev1``
    (what the DTLS layer will report)."""

    scheme = "coaps"

    def __init__(self) -> None:
        from lwm2m.io.coap_transport import PlainUdp

        self._plain = PlainUdp()

    def __getattr__(self, name: str) -> object:
        return getattr(self._plain, name)

    def peer_identity(self, peer: object) -> TransportIdentity:
        return TransportIdentity("psk", b"dev1")


async def test_the_transport_identity_reaches_the_registration() -> None:
    server = LwM2MServer(expiry_interval=None, security=PskLayer())  # type: ignore[arg-type]
    await server.start(("127.0.0.1", 0))
    good, bad = FakeClient("dev1"), FakeClient("intruder")
    await good.start()
    await bad.start()
    try:
        async with asyncio.timeout(5):
            assert (await good.register(server.local_address)).code == Code.CREATED
            assert (await bad.register(server.local_address)).code == Code.BAD_REQUEST
            registration = await server.registration("dev1")
            assert registration is not None
            assert registration.identity == PSK
            assert (await server.read("dev1", "/3/0/9")).code == Code.CONTENT
    finally:
        await good.stop()
        await bad.stop()
        await server.stop()
