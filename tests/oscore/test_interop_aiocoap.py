"""OSCORE interop with aiocoap 0.4.17 (an independent RFC 8613 implementation), both ways, on
loopback: our :class:`~lwm2m.io.coap_endpoint.CoapEndpoint` as client against aiocoap's OSCORE
server, and aiocoap's OSCORE client against our endpoint serving a site; plus an aiocoap OSCORE
client registering with our LwM2M server as a raw LwM2M client would.

The harness (``aiocoap_peer``) is proved aiocoap against aiocoap in
``test_aiocoap_peer_selfcheck.py``, so a failure here is ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiocoap
import aiocoap.oscore
import pytest

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code, OptionNumber
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.io.oscore import OscoreLayer, UnprotectedResponse
from lwm2m.oscore import OscoreParameters, SecurityContext, SoftwareMasterSecret
from lwm2m.server import events as se
from lwm2m.server.security import IdentityKind, PeerIdentity, SecurityInfo
from lwm2m.store.memory import MemorySecurityStore

from .aiocoap_peer import (
    AiocoapOscoreClient,
    AiocoapOscoreServer,
    OscoreMaterial,
    forget_client_state,
    mirrored,
)

pytestmark = pytest.mark.interop

TIMEOUT = 10.0
SECRET = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
SALT = bytes.fromhex("9e7ca92223786340")
#: aiocoap's side (server in the first group of tests, client in the second)
PEER = OscoreMaterial(SECRET, sender_id=b"\x01", recipient_id=b"\x02", master_salt=SALT)


@pytest.fixture(autouse=True)
def _fresh_client_state() -> Iterator[None]:
    forget_client_state()
    yield
    forget_client_state()


def our_context(material: OscoreMaterial) -> SecurityContext:
    """Our context for the side of ``material`` (its sender id is ours)."""
    parameters = OscoreParameters(
        sender_id=material.sender_id,
        recipient_id=material.recipient_id,
        master_salt=material.master_salt,
        id_context=material.id_context,
    )
    return SecurityContext(SoftwareMasterSecret(material.master_secret), parameters)


async def our_client(peer: AiocoapOscoreServer) -> tuple[CoapEndpoint, SecurityContext]:
    layer = OscoreLayer()
    context = our_context(mirrored(peer.material))
    endpoint = await CoapEndpoint.create(oscore=layer)
    layer.add_peer(peer.address, context)
    return endpoint, context


# -- our client, aiocoap's server ------------------------------------------------------------------


@pytest.mark.parametrize("window", ["empty", "unknown"])
async def test_our_client_gets_and_posts_through_aiocoap_server(window: str) -> None:
    """GET, POST with payload and Content-Format, Uri-Query: aiocoap's resources see the inner
    requests and answer; our client verifies each answer. ``unknown``: aiocoap's context lost
    its replay state and answers the first request with 4.01 + Echo, which our client repeats
    with the Echo value (RFC 9175) without the caller seeing it."""
    async with AiocoapOscoreServer(PEER, replay_window=window) as peer:  # type: ignore[arg-type]
        endpoint, context = await our_client(peer)
        async with endpoint:
            async with asyncio.timeout(TIMEOUT):
                hello = await endpoint.request(Message(Code.GET, uri_path="/hello"), peer.address)
                assert (hello.code, hello.payload) == (Code.CONTENT, b"hello oscore")
                echo = await endpoint.request(
                    Message(Code.POST, b"\x01\x02payload", uri_path="/echo", content_format=42),
                    peer.address,
                )
                assert (echo.code, echo.payload, echo.content_format) == (
                    Code.CHANGED,
                    b"\x01\x02payload",
                    42,
                )
                query = await endpoint.request(
                    Message(Code.GET, uri_path="/query", uri_query=["a=1", "b=two"]),
                    peer.address,
                )
                assert query.payload == b"a=1&b=two"
        assert peer.requests_seen == [("GET", "/hello"), ("POST", "/echo"), ("GET", "/query")]
        # with Echo, the first request was sent twice: four sequence numbers in all
        assert context.sender_sequence_number == (4 if window == "unknown" else 3)


async def test_our_client_observes_an_aiocoap_resource() -> None:
    """Observe over OSCORE: the registration and two notifications, each verified against the
    registration with aiocoap's own Partial IVs (RFC 8613 §4.1.3.5)."""
    async with AiocoapOscoreServer(PEER) as peer:
        endpoint, _ = await our_client(peer)
        async with endpoint:
            async with asyncio.timeout(TIMEOUT):
                observation = await endpoint.observe(
                    Message(Code.GET, uri_path="/obs"), peer.address
                )
                assert observation.active
                assert observation.response is not None
                first = observation.response.payload
                await peer.wait_observers(1)
                seen = []
                for value in ("one", "two"):
                    await peer.notify(value)
                    note = await anext(observation)
                    seen.append(note.payload)
                assert seen == [b"one", b"two"]
                assert first != b""
                await observation.cancel()
                assert not observation.active


async def test_aiocoap_server_refuses_our_request_under_another_secret() -> None:
    """Our client with another Master Secret: aiocoap answers 4.00 "Decryption failed" in
    the clear, and our client raises instead of taking the unprotected answer."""
    async with AiocoapOscoreServer(PEER) as peer:
        layer = OscoreLayer()
        wrong = OscoreMaterial(bytes(16), sender_id=b"\x02", recipient_id=b"\x01", master_salt=SALT)
        async with await CoapEndpoint.create(oscore=layer) as endpoint:
            layer.add_peer(peer.address, our_context(wrong))
            with pytest.raises(UnprotectedResponse) as refused:
                await asyncio.wait_for(
                    endpoint.request(Message(Code.GET, uri_path="/hello"), peer.address), TIMEOUT
                )
        assert refused.value.code == Code.BAD_REQUEST
        assert "Decryption failed" in str(refused.value)
        assert peer.requests_seen == []


# -- aiocoap's client, our server ------------------------------------------------------------------


class _OurServer:
    """Our endpoint serving /hello, /echo and an observable /obs, OSCORE only."""

    def __init__(self, endpoint: CoapEndpoint, layer: OscoreLayer) -> None:
        self.endpoint = endpoint
        self.layer = layer
        self.identities: list[PeerIdentity | object] = []
        self.value = b"zero"
        endpoint.site.add("hello", self.hello)
        endpoint.site.add("echo", self.echo)
        endpoint.site.add("obs", self.obs)

    def hello(self, request: CoapRequest) -> Message:
        self.identities.append(request.peer_identity)
        return Message(Code.CONTENT, b"hello from lwm2m", content_format=0)

    async def echo(self, request: CoapRequest) -> Message:  # an awaitable handler
        await asyncio.sleep(0)
        message = request.message
        return Message(Code.CHANGED, message.payload, content_format=message.content_format)

    def obs(self, request: CoapRequest) -> Message:
        observe = 0 if request.message.observe == 0 else None
        return Message(Code.CONTENT, self.value, observe=observe)

    def notify(self, value: bytes) -> int:
        self.value = value
        sent = 0
        for observation in self.endpoint.observations():
            self.endpoint.notify_observation(observation, Message(Code.CONTENT, value))
            sent += 1
        return sent


@pytest.fixture
async def our_server() -> AsyncIterator[_OurServer]:
    layer = OscoreLayer()
    layer.add_context(our_context(mirrored(PEER)), fresh=True)
    async with await CoapEndpoint.create(oscore=layer) as endpoint:
        yield _OurServer(endpoint, layer)


async def test_aiocoap_client_gets_and_posts_through_our_server(our_server: _OurServer) -> None:
    """aiocoap's client against our endpoint: our context is fresh, so the first request is
    answered 4.01 + Echo and aiocoap repeats it (RFC 9175); then GET and POST are served, and
    the handlers see the identity ``oscore`` with aiocoap's Sender ID."""
    address = our_server.endpoint.local_address
    async with AiocoapOscoreClient(PEER) as client:
        code, payload, cf = await client.request(address, "GET", "/hello")
        assert (code, payload, cf) == (Code.CONTENT, b"hello from lwm2m", 0)
        code, payload, cf = await client.request(
            address, "POST", "/echo", b"ping", content_format=60
        )
        assert (code, payload, cf) == (Code.CHANGED, b"ping", 60)
    assert our_server.layer.echo_challenges == 1
    assert len(our_server.identities) == 1
    identity = our_server.identities[0]
    assert getattr(identity, "kind", None) == "oscore"
    assert getattr(identity, "value", None) == PEER.sender_id


async def test_aiocoap_client_observes_our_resource(our_server: _OurServer) -> None:
    """aiocoap observes /obs on our endpoint: two notifications, each protected with our own
    Partial IV, verified by aiocoap."""
    address = our_server.endpoint.local_address
    async with AiocoapOscoreClient(PEER) as client:
        await client.request(address, "GET", "/hello")  # the Echo round trip first
        stream = client.observe(address, "/obs")
        first = await asyncio.wait_for(anext(stream), TIMEOUT)
        assert first[:2] == (Code.CONTENT, b"zero")
        values = []
        for value in (b"one", b"two"):
            assert our_server.notify(value) == 1
            code, payload, _ = await asyncio.wait_for(anext(stream), TIMEOUT)
            values.append((code, payload))
        await stream.aclose()
    assert values == [(Code.CONTENT, b"one"), (Code.CONTENT, b"two")]


async def test_our_server_refuses_aiocoap_with_an_unknown_kid_or_secret(
    our_server: _OurServer,
) -> None:
    """A kid we have no context for: 4.01 "Security context not found"; our kid under another
    secret: 4.00 "Decryption failed" — both unprotected, as RFC 8613 §8.2 has them, which
    aiocoap reports as an unprotected answer."""
    address = our_server.endpoint.local_address
    stranger = OscoreMaterial(SECRET, sender_id=b"\x09", recipient_id=b"\x02", master_salt=SALT)
    forger = OscoreMaterial(bytes(16), sender_id=b"\x01", recipient_id=b"\x02", master_salt=SALT)
    for material, code, text in (
        (stranger, Code.UNAUTHORIZED, b"Security context not found"),
        (forger, Code.BAD_REQUEST, b"Decryption failed"),
    ):
        async with AiocoapOscoreClient(material) as client:
            with pytest.raises(aiocoap.oscore.NotAProtectedMessage) as refused:
                await client.request(address, "GET", "/hello")
        plain = refused.value.plain_message
        assert (int(plain.code), plain.payload) == (code, text)
    assert our_server.identities == []


async def test_our_server_refuses_a_replayed_request(our_server: _OurServer) -> None:
    """The same protected datagram twice (new Message ID, so not a CoAP duplicate): the second
    is a replay (RFC 8613 §7.4), answered 4.01 "Replay detected", not served."""
    address = our_server.endpoint.local_address
    async with AiocoapOscoreClient(PEER) as client:
        await client.request(address, "GET", "/hello")  # past the Echo round trip
    client_context = our_context(PEER)
    client_context.sender_sequence_number = 1000
    protected, _ = client_context.protect_request(Message(Code.GET, uri_path="/hello"))
    async with await CoapEndpoint.create() as raw:
        first = await asyncio.wait_for(raw.request(protected, address), TIMEOUT)
        again = Message(protected.code, protected.payload, options=protected.options)
        second = await asyncio.wait_for(raw.request(again, address), TIMEOUT)
    assert first.has_option(OptionNumber.OSCORE)
    assert (second.code, second.payload) == (Code.UNAUTHORIZED, b"Replay detected")
    assert len(our_server.identities) == 2


# -- aiocoap's client as an LwM2M client -----------------------------------------------------------


async def test_aiocoap_oscore_client_registers_with_our_lwm2m_server() -> None:
    """aiocoap's OSCORE client sends a Register (``POST /rd?ep=..``) to our LwM2M server,
    whose security store knows its Sender ID: after the Echo round trip the server registers
    it with the identity ``oscore:01``, and answers 2.01 with the location."""
    store = MemorySecurityStore(
        [
            SecurityInfo.oscore_context(
                "aio-dev", PEER.sender_id, PEER.recipient_id, SECRET, master_salt=SALT
            )
        ]
    )
    server = LwM2MServer(security_store=store, expiry_interval=None)
    await server.start(("127.0.0.1", 0))
    try:
        events = server.subscribe()
        async with AiocoapOscoreClient(PEER) as client:
            msg = aiocoap.Message(
                code=aiocoap.POST,
                uri=f"coap://127.0.0.1:{server.local_address[1]}/rd?ep=aio-dev&lt=60&lwm2m=1.1",
                payload=b"</3/0>",
                content_format=40,
            )
            response = await client.request_message(msg)
            assert int(response.code) == Code.CREATED
            assert tuple(response.opt.location_path)[:1] == ("rd",)
            async with asyncio.timeout(TIMEOUT):
                registered = await events.wait_for(se.Registered)
        events.close()
        assert registered.registration.endpoint == "aio-dev"
        assert registered.registration.identity == PeerIdentity(IdentityKind.OSCORE, "01")
    finally:
        await server.stop()


async def test_aiocoap_client_posts_a_large_body_in_inner_blocks(our_server: _OurServer) -> None:
    """aiocoap fragments a 3,000-byte POST before protecting it (Inner Block1, RFC 8613
    §4.1.3.4.1): our endpoint answers each block with a protected 2.31 and hands the handler
    the whole body once the last block came."""
    address = our_server.endpoint.local_address
    body = bytes(range(256)) * 11 + b"tail"
    async with AiocoapOscoreClient(PEER) as client:
        await client.request(address, "GET", "/hello")  # the Echo round trip first
        code, payload, cf = await client.request(address, "POST", "/echo", body, content_format=42)
    assert (code, cf) == (Code.CHANGED, 42)
    assert payload == body


async def test_inner_blocks_out_of_order_or_too_large_are_refused() -> None:
    """Our own client sends Inner Block1 blocks by hand: a block that does not follow gets a
    protected 4.08 (RFC 7959 §2.9.2); a body beyond max_body_size a protected 4.13 with Size1
    (§2.9.3); the handler never sees either."""
    from lwm2m.coap.config import CoapConfig
    from lwm2m.coap.message import Block

    seen: list[bytes] = []

    def upload(request: CoapRequest) -> Message:
        seen.append(request.payload)
        return Message(Code.CHANGED)

    server_layer, client_layer = OscoreLayer(), OscoreLayer()
    server_layer.add_context(our_context(mirrored(PEER)))
    small = CoapConfig(max_body_size=1500)
    async with (
        await CoapEndpoint.create(oscore=server_layer, config=small) as server,
        await CoapEndpoint.create(oscore=client_layer) as client,
    ):
        server.site.add("up", upload)
        client_layer.add_peer(server.local_address, our_context(PEER))

        async def send(num: int, more: bool, data: bytes, tag: bytes = b"") -> Message:
            message = Message(Code.POST, data, uri_path="/up")
            message.block1 = Block(num, more, 2)  # 64-byte blocks
            if tag:
                message.request_tag = tag
            return await asyncio.wait_for(client.request(message, server.local_address), TIMEOUT)

        assert (await send(0, True, bytes(64))).code == Code.CONTINUE
        assert (await send(2, True, bytes(64))).code == Code.REQUEST_ENTITY_INCOMPLETE
        assert (await send(1, False, bytes(64))).code == Code.REQUEST_ENTITY_INCOMPLETE
        # a whole transfer, then one too large for max_body_size
        assert (await send(0, True, b"a" * 64, b"t1")).code == Code.CONTINUE
        done = await send(1, False, b"b" * 10, b"t1")
        assert done.code == Code.CHANGED
        assert seen == [b"a" * 64 + b"b" * 10]
        for num in range(23):
            assert (await send(num, True, bytes(64), b"t2")).code == Code.CONTINUE
        refused = await send(23, True, bytes(64), b"t2")
        assert refused.code == Code.REQUEST_ENTITY_TOO_LARGE
        assert refused.size1 == 1500
        assert len(seen) == 1


async def test_our_client_posts_a_large_body_to_aiocoap_in_inner_blocks() -> None:
    """A 2,820-byte POST from our client: fragmented before protection (Inner Block1, 512-byte
    blocks), which aiocoap's server reassembles after verifying each block; its echo of the
    whole body comes back fragmented before protection too (Inner Block2), and our client
    fetches the other blocks, each request protected anew, and returns the body whole."""
    body = bytes(range(256)) * 11 + b"tail"
    async with AiocoapOscoreServer(PEER) as peer:
        endpoint, _ = await our_client(peer)
        async with endpoint:
            response = await asyncio.wait_for(
                endpoint.request(
                    Message(Code.POST, body, uri_path="/echo", content_format=42), peer.address
                ),
                TIMEOUT,
            )
    assert (response.code, response.content_format) == (Code.CHANGED, 42)
    assert response.payload == body
    # aiocoap's resource layer sees each block: six Inner Block1 blocks up, then our two
    # requests for the rest of its Inner Block2 answer (1,024-byte blocks)
    assert peer.requests_seen == [("POST", "/echo")] * 8
