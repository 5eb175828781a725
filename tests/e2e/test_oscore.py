"""LwM2M over OSCORE (RFC 8613) end to end: our client, server and bootstrap server on loopback.

The client's account has a /21 instance its /0/x/17 links to (from the configuration file's
``oscore_*`` keys); the server knows the client from its security store
(:meth:`SecurityInfo.oscore_context`). Every exchange, both ways, is protected: the server sees
the identity ``oscore:<Sender ID>``, the first Register proves its freshness with Echo
(RFC 9175), and requests without OSCORE are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lwm2m.bootstrap.config import (
    BootstrapConfig,
    OscoreInstance,
    Secret,
    SecurityInstance,
    ServerInstance,
)
from lwm2m.client.events import BootstrapFinished, RegistrationFailed
from lwm2m.client.objects import Device
from lwm2m.client.objects.firmware import FirmwareUpdate
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code, OptionNumber
from lwm2m.codec.content_format import ContentFormat
from lwm2m.io.lwm2m_bootstrap import BootstrapServer
from lwm2m.io.lwm2m_client import LwM2MClient
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.model.nodes import SingleResource
from lwm2m.model.path import Path
from lwm2m.model.values import ObjectLink, ResourceType
from lwm2m.server import events as se
from lwm2m.server.errors import RequestFailed
from lwm2m.server.security import IdentityKind, PeerIdentity, SecurityInfo
from lwm2m.store.memory import MemoryRegistrationStore, MemorySecurityStore

from .conftest import TIMEOUT, client_config, registry, server_account

EP = "urn:dev:os:oscore"
SENDER = bytes.fromhex("c1")  # the client's Sender ID
RECIPIENT = bytes.fromhex("51")  # the client's Recipient ID (the server's Sender ID)
SECRET = bytes(range(1, 17))
SALT = bytes.fromhex("9e7ca92223786340")


def oscore_keys(secret: bytes = SECRET, sender: bytes = SENDER) -> dict[str, Any]:
    return {
        "oscore_sender_id_hex": sender.hex(),
        "oscore_recipient_id_hex": RECIPIENT.hex(),
        "oscore_master_secret_hex": secret.hex(),
        "oscore_master_salt_hex": SALT.hex(),
    }


def oscore_store(endpoint: str = EP) -> MemorySecurityStore:
    info = SecurityInfo.oscore_context(endpoint, SENDER, RECIPIENT, SECRET, master_salt=SALT)
    return MemorySecurityStore([info])


@contextlib.asynccontextmanager
async def running_server(store: MemorySecurityStore) -> AsyncIterator[LwM2MServer]:
    server = LwM2MServer(security_store=store, registry=registry(), expiry_interval=None)
    await server.start(("127.0.0.1", 0))
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def running_client(config: Any) -> AsyncIterator[LwM2MClient]:
    client = LwM2MClient(config)
    device = client.objects[3]
    assert isinstance(device, Device)
    device.set(9, 77)
    await client.start()
    try:
        yield client
    finally:
        await client.stop(grace=1.0)


async def registered(
    server: LwM2MServer, config: Any, objects: Any = ()
) -> tuple[LwM2MClient, Any]:
    """Start a client (callers stop it) and wait until both sides consider it registered."""
    events = server.subscribe()
    client = LwM2MClient(config, objects)
    device = client.objects[3]
    assert isinstance(device, Device)
    device.set(9, 77)
    async with asyncio.timeout(TIMEOUT):
        await client.start()
        event = await events.wait_for(se.Registered)
        await client.wait_registered()
    events.close()
    return client, event


async def test_register_and_manage_over_oscore() -> None:
    """Register (with the Echo round trip), then every kind of server request, protected both
    ways, then a notification pair and a Send, then De-register."""
    async with running_server(oscore_store()) as server:
        config = client_config(EP, [server_account(server, **oscore_keys())])
        client, event = await registered(server, config)
        try:
            registration = event.registration
            assert registration.identity == PeerIdentity(IdentityKind.OSCORE, SENDER.hex())
            layer = server.endpoint.oscore
            assert layer is not None
            # the server loaded the context for the first Register: freshness was proved once
            assert layer.echo_challenges == 1
            # the requests below go protected: the server bound the client's address
            assert layer.context_for(registration.address) is not None
            async with asyncio.timeout(TIMEOUT):
                battery = await server.read(EP, "/3/0/9")
                assert battery.content is not None
                assert battery.content.value == 77  # type: ignore[union-attr]
                # the client's context is new (no replay state for the server's requests): it
                # challenged the server's first request with Echo, the server repeated it
                client_layer = client.connector.oscore_layer  # type: ignore[attr-defined]
                assert client_layer.echo_challenges == 1
                device = await server.read(EP, Path(3, 0))
                assert device.content is not None
                await server.write(EP, "/1/0/1", _lifetime(600))
                handle = await server.observe(EP, "/3/0/9")
                assert handle.active
                for level in (50, 40):
                    dev = client.objects[3]
                    assert isinstance(dev, Device)
                    dev.set(9, level)
                    note = await anext(handle)
                    assert note.content.value == level  # type: ignore[union-attr]
                events = server.subscribe()
                await client.send([Path(3, 0, 9)])
                received = await events.wait_for(se.SendReceived)
                events.close()
                assert received.registration.endpoint == EP
                execute = await server.execute(EP, "/1/0/8")  # Registration Update Trigger
                assert execute.code == Code.CHANGED
                links = await server.discover(EP, "/3/0")
                assert links.links
        finally:
            events = server.subscribe()
            await client.stop(grace=2.0)
            async with asyncio.timeout(TIMEOUT):
                await events.wait_for(se.Deregistered)
            events.close()


def _lifetime(seconds: int) -> Any:
    from lwm2m.model.nodes import SingleResource
    from lwm2m.model.values import ResourceType

    return SingleResource(1, ResourceType.INTEGER, seconds)


async def test_wrong_master_secret_fails_registration_clearly() -> None:
    """A client with another Master Secret: the server cannot decrypt (4.00 "Decryption
    failed", sent in the clear) and the client reports the failure naming it; nothing is
    registered."""
    async with running_server(oscore_store()) as server:
        config = client_config(
            EP, [server_account(server, retry_count=1, **oscore_keys(secret=bytes(16)))]
        )
        async with running_client(config) as client:
            async with asyncio.timeout(TIMEOUT):
                failure = await client.wait_for(RegistrationFailed)
            assert isinstance(failure, RegistrationFailed)
            assert "without OSCORE protection" in failure.reason
            assert "4.00" in failure.reason
            assert await server.registrations() == []


async def test_endpoint_name_must_match_the_oscore_identity() -> None:
    """The store gives Sender ID c1 to another endpoint name: the Register is verified but its
    ``ep`` does not match the identity: 4.00 (Transport §5.2.x), nothing registered."""
    async with running_server(oscore_store("urn:dev:os:someone-else")) as server:
        config = client_config(EP, [server_account(server, retry_count=1, **oscore_keys())])
        async with running_client(config) as client:
            async with asyncio.timeout(TIMEOUT):
                failure = await client.wait_for(RegistrationFailed)
            assert isinstance(failure, RegistrationFailed)
            assert failure.reason.startswith("4.00")
            assert await server.registrations() == []


async def test_the_client_refuses_plain_requests_on_an_oscore_account() -> None:
    """/0/x/17 says OSCORE MUST be used with that server: a plain request from the server's
    address is answered 4.01 by the client, whatever it asks."""
    async with running_server(oscore_store()) as server:
        config = client_config(EP, [server_account(server, **oscore_keys())])
        client, event = await registered(server, config)
        try:
            # a plain GET from the server's own socket (the OSCORE layer bypassed)
            plain = Message(Code.GET, uri_path="/3/0/9")
            answer = await asyncio.wait_for(
                server.endpoint.request(plain, event.registration.address, _protected=True),
                TIMEOUT,
            )
            assert (answer.code, answer.payload) == (Code.UNAUTHORIZED, b"OSCORE required")
        finally:
            await client.stop(grace=1.0)


async def test_a_restarted_client_is_not_taken_for_a_replay() -> None:
    """A client restarts: its new context starts its sequence numbers from the clock (RFC 8613
    Appendix B.1.1), above every Partial IV the server's replay window saw, so its Register is
    served at once, with no second Echo round trip."""
    async with running_server(oscore_store()) as server:
        config = client_config(EP, [server_account(server, **oscore_keys())])
        first, _ = await registered(server, config)
        await first.stop(grace=2.0)
        second, event = await registered(server, config)
        try:
            assert event.registration.identity == PeerIdentity(IdentityKind.OSCORE, SENDER.hex())
            response = await asyncio.wait_for(server.read(EP, "/3/0/9"), TIMEOUT)
            assert response.content is not None
            layer = server.endpoint.oscore
            assert layer is not None
            assert layer.echo_challenges == 1
        finally:
            await second.stop(grace=1.0)


async def test_a_restarted_server_asks_the_client_for_echo_again() -> None:
    """The server restarts (the registration is in its store, the OSCORE replay state is not):
    the client's next Update comes with a context the new server has never used, so it answers
    with 4.01 + Echo, the client repeats the Update with the Echo value, and the server takes
    it; the client stays registered. The observation made before the restart is not restored
    (its notifications are verified against the protected registration, whose state is gone):
    it is removed from the store, and observing again works."""
    store = oscore_store()
    registrations = MemoryRegistrationStore()
    server = LwM2MServer(
        security_store=store, store=registrations, registry=registry(), expiry_interval=None
    )
    await server.start(("127.0.0.1", 0))
    address = server.local_address
    config = client_config(EP, [server_account(server, **oscore_keys())])
    client, _ = await registered(server, config)
    try:
        await asyncio.wait_for(server.observe(EP, "/3/0/9"), TIMEOUT)
        assert len(await registrations.all_observations()) == 1
        await server.stop()
        restarted = LwM2MServer(
            security_store=store, store=registrations, registry=registry(), expiry_interval=None
        )
        await restarted.start(address)
        try:
            # the server's first request after its restart goes protected with the context of
            # the registration's identity (loaded from the store), never in the clear
            first = await asyncio.wait_for(restarted.read(EP, "/3/0/9"), TIMEOUT)
            assert first.content is not None
            events = restarted.subscribe()
            async with asyncio.timeout(TIMEOUT):
                client.update()
                await events.wait_for(se.Updated)
            events.close()
            layer = restarted.endpoint.oscore
            assert layer is not None
            assert layer.echo_challenges == 1
            response = await asyncio.wait_for(restarted.read(EP, "/3/0/9"), TIMEOUT)
            assert response.content is not None
            assert await registrations.all_observations() == []
            handle = await asyncio.wait_for(restarted.observe(EP, "/3/0/9"), TIMEOUT)
            device = client.objects[3]
            assert isinstance(device, Device)
            device.set(9, 33)
            note = await asyncio.wait_for(anext(handle), TIMEOUT)
            assert note.content.value == 33  # type: ignore[union-attr]
        finally:
            await client.stop(grace=1.0)
            await restarted.stop()
    finally:
        await server.stop()


async def test_a_plain_request_with_the_oscore_option_gets_bad_option_without_a_layer() -> None:
    """An endpoint without OSCORE answers a request carrying the (critical) OSCORE option with
    4.02 Bad Option (RFC 8613 §2): the LwM2M server without a security store."""
    server = LwM2MServer(registry=registry(), expiry_interval=None)
    await server.start(("127.0.0.1", 0))
    try:
        async with server:
            from lwm2m.io.coap_endpoint import CoapEndpoint

            async with await CoapEndpoint.create() as peer:
                request = Message(
                    Code.POST, b"\x00" * 12, options=[(OptionNumber.OSCORE, b"\x09\x00\xc1")]
                )
                response = await asyncio.wait_for(
                    peer.request(request, server.local_address), TIMEOUT
                )
                assert response.code == Code.BAD_OPTION
    finally:
        await server.stop()


async def test_bootstrap_over_oscore_then_register() -> None:
    """The bootstrap account has OSCORE: the Bootstrap-Request and every Bootstrap-Write go
    protected, then the client registers with the DM server the bootstrap wrote (plain)."""
    dm = LwM2MServer(registry=registry(), expiry_interval=None)
    await dm.start(("127.0.0.1", 0))
    host, port = dm.local_address
    configs = {
        EP: BootstrapConfig(
            security=(SecurityInstance(1, f"coap://{host}:{port}", short_server_id=7),),
            servers=(ServerInstance(0, 7, lifetime=300),),
        )
    }
    bootstrap = BootstrapServer(configs=configs, registry=registry(), security_store=oscore_store())
    await bootstrap.start(("127.0.0.1", 0))
    try:
        bs_host, bs_port = bootstrap.local_address
        config = client_config(
            EP, bootstrap={"uri": f"coap://{bs_host}:{bs_port}", **oscore_keys()}
        )
        events = dm.subscribe()
        async with running_client(config) as client:
            async with asyncio.timeout(TIMEOUT):
                await client.wait_for(BootstrapFinished)
                await events.wait_for(se.Registered)
        events.close()
    finally:
        await bootstrap.stop()
        await dm.stop()


async def test_the_bootstrap_server_provisions_oscore_for_the_dm_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The bootstrap server writes a /21 instance and a /0 instance linking it (/0/x/17) for
    the DM account; the client then registers with the DM server over OSCORE, as the DM
    server's store expects (identity oscore:c1). No log line, at DEBUG, carries the Master
    Secret, and no repr of the configuration does."""
    caplog.set_level(logging.DEBUG, logger="lwm2m")
    async with running_server(oscore_store()) as dm:
        host, port = dm.local_address
        provisioned = SecurityInstance(
            1,
            f"coap://{host}:{port}",
            short_server_id=7,
            oscore=OscoreInstance(SENDER, RECIPIENT, Secret(SECRET), SALT),
        )
        configs = {
            EP: BootstrapConfig(
                security=(provisioned,), servers=(ServerInstance(0, 7, lifetime=300),)
            )
        }
        bootstrap = BootstrapServer(configs=configs, registry=registry())
        await bootstrap.start(("127.0.0.1", 0))
        try:
            bs_host, bs_port = bootstrap.local_address
            config = client_config(EP, bootstrap={"uri": f"coap://{bs_host}:{bs_port}"})
            events = dm.subscribe()
            async with running_client(config) as client:
                async with asyncio.timeout(TIMEOUT):
                    await client.wait_for(BootstrapFinished)
                    event = await events.wait_for(se.Registered)
                    battery = await dm.read(EP, "/3/0/9")
                events.close()
                assert event.registration.identity == PeerIdentity(
                    IdentityKind.OSCORE, SENDER.hex()
                )
                assert battery.content is not None
                # the client's /0/1/17 links to the /21/1 the bootstrap server wrote
                security = client.engine.tree.get(0)
                assert security is not None
                link = security.oscore_link(1)  # type: ignore[attr-defined]
                assert link == ObjectLink(21, 1)
        finally:
            await bootstrap.stop()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "registered" in logged.lower() or "register" in logged.lower()
    for text in (logged, repr(configs), repr(provisioned)):
        assert SECRET.hex() not in text
        assert repr(SECRET) not in text


async def test_composite_operations_and_block_wise_transfers_over_oscore() -> None:
    """Read-Composite (FETCH), Write-Composite (iPATCH) and Observe-Composite (FETCH with
    Observe) go protected (outer POST / FETCH, RFC 8613 §4.2); a 5 KB firmware package pushed
    to /5/0/0 crosses as outer Block1 (RFC 8613 §4.1.3.4.2: the protected message is split,
    the client reassembles it, then verifies it once)."""
    async with running_server(oscore_store()) as server:
        config = client_config(EP, [server_account(server, **oscore_keys())])
        client, _ = await registered(server, config, [FirmwareUpdate()])
        try:
            async with asyncio.timeout(TIMEOUT):
                composite = await server.read_composite(EP, ["/3/0/9", "/1/0/1"])
                assert composite.composite is not None
                assert composite.composite[Path(3, 0, 9)].value == 77  # type: ignore[union-attr]
                written = await server.write_composite(
                    EP, {Path(1, 0, 1): SingleResource(1, ResourceType.INTEGER, 500)}
                )
                assert written.code == Code.CHANGED
                lifetime = await server.read(EP, "/1/0/1")
                assert lifetime.content.value == 500  # type: ignore[union-attr]
                handle = await server.observe_composite(EP, ["/3/0/9"])
                device = client.objects[3]
                assert isinstance(device, Device)
                device.set(9, 11)
                note = await anext(handle)
                assert note.composite is not None
                assert note.composite[Path(3, 0, 9)].value == 11  # type: ignore[union-attr]
                package = bytes(range(256)) * 20
                pushed = await server.write(
                    EP,
                    "/5/0/0",
                    SingleResource(0, ResourceType.OPAQUE, package),
                    content_format=ContentFormat.OPAQUE,
                )
                assert pushed.code == Code.CHANGED
                state = await server.read(EP, "/5/0/3")
                assert state.content.value == 2  # type: ignore[union-attr]  # Downloaded
        finally:
            await client.stop(grace=1.0)


async def test_the_master_secret_stays_in_the_secure_component(tmp_path: Any) -> None:
    """A client with a ``soft:`` Secure Component: the factory bootstrap seals /21/0/0 into
    the component (LwM2M-SCS-4), the tree keeps only a reference, and the context is derived
    by the component's handle (RFC 5869 inside, only the keys come out); the client registers
    over OSCORE as before."""
    from lwm2m.secure import open_component, parse_secret_reference

    component = open_component(
        f"soft:{tmp_path}/client.sc", passphrase="p", create=True, scrypt_log2_n=10
    )
    try:
        async with running_server(oscore_store()) as server:
            config = client_config(EP, [server_account(server, **oscore_keys())])
            events = server.subscribe()
            client = LwM2MClient(config, secure_component=component)
            try:
                async with asyncio.timeout(TIMEOUT):
                    await client.start()
                    event = await events.wait_for(se.Registered)
                    maker = await server.read(EP, "/3/0/0")
                events.close()
                assert event.registration.identity == PeerIdentity(
                    IdentityKind.OSCORE, SENDER.hex()
                )
                assert maker.content is not None
                stored = client.secure_store
                assert stored is not None
                oscore = stored.get(21, 0)
                assert oscore is not None
                reference = oscore.resources[0].value  # type: ignore[union-attr]
                assert isinstance(reference, bytes)
                label = parse_secret_reference(reference)
                assert label is not None
                assert SECRET not in reference
                handle = component.oscore_secret(label)
                assert handle.master_salt == SALT
            finally:
                await client.stop(grace=1.0)
    finally:
        component.close()


async def test_server_requests_fail_closed_and_name_the_oscore_failure() -> None:
    """The client lost its context (it answers 4.01 "Security context not found" in the
    clear): the server's request fails with that code, not a decode error. The server's
    security entry is removed: nothing more is sent, in the clear or otherwise (RequestFailed
    naming it), instead of the request going out unprotected."""
    store = oscore_store()
    async with running_server(store) as server:
        config = client_config(EP, [server_account(server, **oscore_keys())])
        client, _ = await registered(server, config)
        try:
            client_layer = client.connector.oscore_layer  # type: ignore[attr-defined]
            client_layer.forget(RECIPIENT)  # the client's recipient id: the server's kid
            with pytest.raises(RequestFailed) as refused:
                await asyncio.wait_for(server.read(EP, "/3/0/9"), TIMEOUT)
            assert refused.value.code == Code.UNAUTHORIZED
            assert "without OSCORE protection" in str(refused.value)
            store.remove(EP)
            layer = server.endpoint.oscore
            assert layer is not None
            layer.forget(SENDER)
            with pytest.raises(RequestFailed, match="security entry is gone: not sent"):
                await asyncio.wait_for(server.read(EP, "/3/0/9"), TIMEOUT)
        finally:
            await client.stop(grace=1.0)
