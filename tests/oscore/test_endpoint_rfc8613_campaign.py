"""RFC 8613 (OSCORE) conformance campaign at the endpoint: two :class:`CoapEndpoint` on loopback.

Written from the RFC texts (RFC 8613; RFC 7641 §3/§4; RFC 7959; RFC 7967; RFC 9175 for Echo and
Request-Tag), not from our code. Each test names the section it checks. A deviation is a strict
xfail whose reason names the section and what is wrong; where the RFC leaves a choice (MAY,
SHOULD), the docstring says which one we made and the test pins it.

Harness:

* :class:`Relay` -- an on-path intermediary between the client endpoint and the server endpoint.
  It forwards every datagram, logs a decoded copy of each (what is on the wire), and lets a test
  rewrite, drop or inject datagrams: what an OSCORE-unaware proxy, or an attacker, can do with
  the unprotected parts of a message.
* :class:`RawPeer` -- a bare UDP socket for a peer our endpoint must not drive: a client that
  replays a datagram, a server that answers with what the test builds (protected with the
  sans-IO :class:`SecurityContext`).
* "spy" contexts -- a second :class:`SecurityContext` with one side's parameters, to decrypt
  captured datagrams without touching that side's replay state.

The Echo (RFC 9175) freshness rules are in ``test_echo_rfc9175_campaign.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lwm2m.coap.config import CoapConfig
from lwm2m.coap.engine import Observation
from lwm2m.coap.errors import ErrorResponse
from lwm2m.coap.message import Block, Message, decode
from lwm2m.coap.numbers import Code, MessageType, OptionNumber
from lwm2m.errors import OscoreError
from lwm2m.io.coap_endpoint import ClientObservation, CoapEndpoint, CoapRequest, Site
from lwm2m.io.oscore import OscoreLayer, UnprotectedResponse
from lwm2m.oscore import (
    MAX_SEQUENCE_NUMBER,
    ContextExhausted,
    DecryptionFailed,
    MalformedPlaintext,
    OscoreParameters,
    RequestBinding,
    SecurityContext,
    SoftwareMasterSecret,
    VerificationError,
    unprotect_request,
)

TIMEOUT = 5.0
"""Bound on every wait that is expected to succeed."""

SECRET = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
SALT = bytes.fromhex("9e7ca92223786340")
CLIENT_ID = b"\xc1"  # the client's Sender ID: the 'kid' of its requests
SERVER_ID = b"\x5e"  # the server's Sender ID
Opt = OptionNumber
CON, NON, ACK, RST = MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST
BIG = bytes(range(256)) * 11 + b"tail"  # 2820 bytes: three 1024-byte blocks


# -- contexts ----------------------------------------------------------------------------------


def client_context(sequence_number: int = 0, *, sender_id: bytes = CLIENT_ID) -> SecurityContext:
    parameters = OscoreParameters(sender_id, SERVER_ID, SALT)
    return SecurityContext(
        SoftwareMasterSecret(SECRET), parameters, sender_sequence_number=sequence_number
    )


def server_context(sequence_number: int = 0) -> SecurityContext:
    parameters = OscoreParameters(SERVER_ID, CLIENT_ID, SALT)
    return SecurityContext(
        SoftwareMasterSecret(SECRET), parameters, sender_sequence_number=sequence_number
    )


# -- an independent reading of the wire (RFC 8613 §3.2.1, §5.2-§5.4, §6.1) ---------------------
# Built from the RFC text with ``cryptography`` and ``cbor2`` rather than with lwm2m.oscore, so
# that what the tests read on the wire does not depend on the code under test.


@dataclass(frozen=True)
class Header:
    """The compressed COSE header carried in an OSCORE option value (RFC 8613 §6.1)."""

    piv: bytes | None
    kid: bytes | None
    kid_context: bytes | None = None


def header(message: Message) -> Header:
    values = message.get_options(Opt.OSCORE)
    assert len(values) == 1, "exactly one OSCORE option (§2)"
    value = values[0]
    if not value:
        return Header(None, None)
    flags = value[0]
    assert not flags & 0xE0, "reserved flag bits"
    end = 1 + (flags & 0x07)
    piv = value[1:end] if flags & 0x07 else None
    kid_context = None
    if flags & 0x10:
        start = end + 1
        end = start + value[end]
        kid_context = value[start:end]
    kid = value[end:] if flags & 0x08 else None
    return Header(piv, kid, kid_context)


def _derive(identifier: bytes, kind: str, length: int) -> bytes:
    """HKDF-SHA-256 with info = [id, id_context (nil), alg_aead (10), type, L] (§3.2.1)."""
    info = cbor2.dumps([identifier, None, 10, kind, length])
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=SALT, info=info).derive(SECRET)


_SENDER_KEYS = {CLIENT_ID: _derive(CLIENT_ID, "Key", 16), SERVER_ID: _derive(SERVER_ID, "Key", 16)}
_COMMON_IV = _derive(b"", "IV", 13)


def _nonce(id_piv: bytes, piv: bytes) -> bytes:
    """§5.2: S || left-padded ID_PIV (nonce length - 6) || left-padded PIV (5), XOR Common IV."""
    block = bytes([len(id_piv)]) + id_piv.rjust(7, b"\0") + piv.rjust(5, b"\0")
    return bytes(a ^ b for a, b in zip(block, _COMMON_IV, strict=True))


def _aad(request_kid: bytes, request_piv: bytes) -> bytes:
    """§5.4: ["Encrypt0", h'', bstr .cbor [1, [alg_aead], request_kid, request_piv, h'']]."""
    external_aad = cbor2.dumps([1, [10], request_kid, request_piv, b""])
    return cbor2.dumps(["Encrypt0", b"", external_aad])


def spy_plaintext(outer: Message, request: Message | None = None) -> bytes:
    """The plaintext (§5.3) of a captured OSCORE request, or of a captured response to the
    captured ``request``: a response's nonce comes from its own Partial IV and the server's
    Sender ID, or is the request's when it has none (§5.2); its AAD is the request's (§5.4)."""
    own = header(outer)
    if request is None:
        assert own.kid is not None
        assert own.piv is not None
        key, nonce, aad = _SENDER_KEYS[own.kid], _nonce(own.kid, own.piv), _aad(own.kid, own.piv)
    else:
        bound = header(request)
        assert bound.kid is not None
        assert bound.piv is not None
        key, aad = _SENDER_KEYS[SERVER_ID], _aad(bound.kid, bound.piv)
        nonce = _nonce(bound.kid, bound.piv) if own.piv is None else _nonce(SERVER_ID, own.piv)
    return AESCCM(key, tag_length=8).decrypt(nonce, outer.payload, aad)


def spy(outer: Message, request: Message | None = None) -> Message:
    """The inner message (Code, Class E options exactly as sent, payload) of a captured OSCORE
    request, or of a captured response to the captured ``request``."""
    plaintext = spy_plaintext(outer, request)
    return decode(b"\x40" + plaintext[:1] + b"\x00\x00" + plaintext[1:])


def numbers(message: Message) -> list[int]:
    return [number for number, _ in message.options]


def reply_to(request: Message, response: Message) -> Message:
    """``response`` as the piggybacked answer to the CON ``request`` (before protection)."""
    response.mtype = ACK
    response.mid = request.mid
    response.token = request.token
    return response


def tamper(message: Message) -> Message:
    """A copy with the last ciphertext byte flipped (the AEAD tag no longer verifies)."""
    copy = message.copy()
    copy.payload = message.payload[:-1] + bytes([message.payload[-1] ^ 1])
    return copy


# -- harness -----------------------------------------------------------------------------------


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, received: Callable[[bytes, Any], None]) -> None:
        self._received = received
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._received(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP "port unreachable" after a close
        pass

    def sendto(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def address(self) -> Any:
        return self.transport.get_extra_info("sockname")


async def _bind(received: Callable[[bytes, Any], None]) -> _Socket:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: _Socket(received), local_addr=("127.0.0.1", 0)
    )
    return protocol


class Log:
    """Decoded datagrams in arrival order, and a way to wait for the next matching one."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self.messages)

    def __getitem__(self, index: int) -> Message:
        return self.messages[index]

    def append(self, message: Message) -> None:
        self.messages.append(message)
        self._changed.set()

    async def wait(self, predicate: Callable[[Message], bool], start: int = 0) -> Message:
        """The first message from index ``start`` on that matches (waits for it, bounded)."""
        index = start
        async with asyncio.timeout(TIMEOUT):
            while True:
                while index < len(self.messages):
                    message = self.messages[index]
                    index += 1
                    if predicate(message):
                        return message
                self._changed.clear()
                await self._changed.wait()

    def matching(self, predicate: Callable[[Message], bool]) -> list[Message]:
        return [message for message in self.messages if predicate(message)]


Rewrite = Callable[[Message], "Message | None"]


class Relay:
    """An on-path intermediary: the client talks to ``address``, the relay to ``server``.

    ``up`` / ``down`` log every datagram client->server / server->client as forwarded;
    ``rewrite_up`` / ``rewrite_down`` may change a message or return None to drop it (logged in
    ``dropped``). :meth:`inject_down` / :meth:`inject_up` send a datagram of the test's own.
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        self.up = Log()
        self.down = Log()
        self.dropped = Log()
        self.rewrite_up: Rewrite | None = None
        self.rewrite_down: Rewrite | None = None
        self._client: Any = None
        self._front: _Socket | None = None
        self._back: _Socket | None = None

    @property
    def address(self) -> Any:
        assert self._front is not None
        return self._front.address

    async def __aenter__(self) -> Relay:
        self._front = await _bind(self._from_client)
        self._back = await _bind(self._from_server)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for side in (self._front, self._back):
            if side is not None:
                side.close()

    def _from_client(self, data: bytes, addr: Any) -> None:
        self._client = addr
        self._forward(data, self.rewrite_up, self.up, self._back, self.server)

    def _from_server(self, data: bytes, addr: Any) -> None:
        self._forward(data, self.rewrite_down, self.down, self._front, self._client)

    def _forward(
        self, data: bytes, rewrite: Rewrite | None, log: Log, out: _Socket | None, to: Any
    ) -> None:
        message: Message | None = decode(data)
        assert message is not None
        assert out is not None
        if rewrite is not None:
            original = message
            message = rewrite(message.copy())
            if message is None:
                self.dropped.append(original)
                return
            data = message.encode()
        log.append(message)
        out.sendto(data, to)

    def inject_down(self, message: Message) -> None:
        """Send ``message`` to the client as if the server had sent it."""
        assert self._front is not None
        self.down.append(message)
        self._front.sendto(message.encode(), self._client)

    def inject_up(self, message: Message) -> None:
        """Send ``message`` to the server as if the client had sent it."""
        assert self._back is not None
        self.up.append(message)
        self._back.sendto(message.encode(), self.server)


class RawPeer:
    """A bare UDP socket: sends what the test builds, logs what arrives (and from where)."""

    def __init__(self) -> None:
        self.log = Log()
        self.sender: Any = None
        self._socket: _Socket | None = None

    @property
    def address(self) -> Any:
        assert self._socket is not None
        return self._socket.address

    async def __aenter__(self) -> RawPeer:
        self._socket = await _bind(self._received)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._socket is not None:
            self._socket.close()

    def _received(self, data: bytes, addr: Any) -> None:
        self.sender = addr
        self.log.append(decode(data))

    def send(self, message: Message, to: Any) -> None:
        assert self._socket is not None
        self._socket.sendto(message.encode(), to)

    async def exchange(self, message: Message, to: Any) -> Message:
        """Send ``message`` and wait for the response carrying its token."""
        start = len(self.log)
        self.send(message, to)
        return await self.log.wait(lambda m: m.token == message.token and m.code != 0, start)


class Renumber:
    """``Relay.rewrite_down`` that gives every response carrying an Observe option an Outer
    Observe of the relay's own counting, as a proxy relaying notifications may (RFC 8613
    §4.1.3.5.2: the Outer Observe is there for intermediaries). With values increasing the
    client's CoAP layer never takes a notification for reordered (RFC 7641 §3.4): what orders
    and filters notifications is left to OSCORE's Partial IVs. ``values`` queues explicit
    values for the next notifications (None: the next of the count); ``drop`` the number of
    notifications to drop next (kept in ``Relay.dropped``)."""

    def __init__(self) -> None:
        self.next = 100
        self.values: list[int | None] = []
        self.drop = 0

    def __call__(self, message: Message) -> Message | None:
        if message.get_option(Opt.OBSERVE) is None:
            return message
        if self.drop:
            self.drop -= 1
            return None
        value = self.values.pop(0) if self.values else None
        message.observe = self.take() if value is None else value
        return message

    def take(self) -> int:
        value, self.next = self.next, self.next + 1
        return value


Respond = Callable[[CoapRequest], Message]


def ok(request: CoapRequest) -> Message:
    return Message(Code.CONTENT, b"ok", content_format=0)


@dataclass
class Setup:
    """Our client endpoint -> :class:`Relay` -> our server endpoint, OSCORE end to end."""

    client: CoapEndpoint
    server: CoapEndpoint
    relay: Relay
    client_context: SecurityContext
    server_context: SecurityContext
    server_layer: OscoreLayer
    seen: list[CoapRequest] = field(default_factory=list)
    """The (inner) requests the server's handler was called with."""
    respond: Respond = ok
    removed: Log = field(default_factory=Log)
    """Observers the server removed (the registration request, reason in ``reasons``)."""
    reasons: list[str] = field(default_factory=list)

    def handle(self, request: CoapRequest) -> Message:
        self.seen.append(request)
        return self.respond(request)

    async def request(self, message: Message) -> Message:
        async with asyncio.timeout(TIMEOUT):
            return await self.client.request(message, self.relay.address)

    async def observe(self, path: str = "/obs") -> ClientObservation:
        self.respond = observable
        async with asyncio.timeout(TIMEOUT):
            observation = await self.client.observe(
                Message(Code.GET, uri_path=path), self.relay.address
            )
        assert observation.active
        return observation

    def observer(self) -> Observation:
        (observation,) = self.server.observations()
        return observation

    def notify(self, payload: bytes, *, observe: bool = True, confirmable: bool = False) -> None:
        """A notification from the server's application; ``observe``: the message it hands to
        ``notify_observation`` carries an Observe option (the LwM2M client's do not)."""
        message = Message(Code.CONTENT, payload, content_format=0, observe=0 if observe else None)
        assert self.server.notify_observation(self.observer(), message, confirmable=confirmable)


def observable(request: CoapRequest) -> Message:
    """Accepts an Observe registration (RFC 7641 §4.1: a 2.05 with an Observe option)."""
    observe = 0 if request.message.observe == 0 else None
    return Message(Code.CONTENT, b"v0", observe=observe, content_format=0)


@contextlib.asynccontextmanager
async def oscore_pair(
    *,
    fresh: bool = False,
    client_sequence: int = 0,
    server_sequence: int = 0,
    server_config: CoapConfig | None = None,
) -> AsyncIterator[Setup]:
    """Both endpoints and the relay; the server's handler serves every path (``respond``).
    ``fresh``: the server's context has no replay state (RFC 9175 Echo first)."""
    server_ctx = server_context(server_sequence)
    client_ctx = client_context(client_sequence)
    server_layer = OscoreLayer()
    server_layer.add_context(server_ctx, fresh=fresh)
    client_layer = OscoreLayer()
    holder: list[Setup] = []

    def removed(observation: Observation, reason: str) -> None:
        holder[0].reasons.append(reason)
        holder[0].removed.append(observation.request)

    site = Site()
    site.add("/", lambda request: holder[0].handle(request))
    async with (
        await CoapEndpoint.create(
            site=site, oscore=server_layer, config=server_config, on_observer_removed=removed
        ) as server,
        Relay(server.local_address) as relay,
        await CoapEndpoint.create(oscore=client_layer) as client,
    ):
        client_layer.add_peer(relay.address, client_ctx)
        holder.append(Setup(client, server, relay, client_ctx, server_ctx, server_layer))
        yield holder[0]


@contextlib.asynccontextmanager
async def towards_raw_server() -> AsyncIterator[tuple[CoapEndpoint, RawPeer]]:
    """Our client endpoint with an OSCORE context for a :class:`RawPeer` playing the server."""
    layer = OscoreLayer()
    async with RawPeer() as raw, await CoapEndpoint.create(oscore=layer) as client:
        layer.add_peer(raw.address, client_context())
        yield client, raw


def is_request(message: Message) -> bool:
    return message.is_request()


async def next_notification(observation: ClientObservation) -> Message:
    async with asyncio.timeout(TIMEOUT):
        return await anext(observation)


# == §4.1, §4.2: which message fields are Inner, which Outer ====================================


async def test_handler_sees_the_inner_request_and_the_wire_only_outer_fields() -> None:
    """RFC 8613 §4.1.1, §4.1.2, §4.1.3.2, §4.2, §8.2 steps 1/7, §8.3, §8.4: the Code, the Class E
    options and the payload travel in the ciphertext; on the wire the request is a POST with the
    Class U options (Uri-Host, Uri-Port) and the OSCORE option only, and the response a 2.04 with
    the OSCORE option only. The handler gets the original request (Uri-Host/Uri-Port kept, the
    OSCORE option removed); the client gets the original response.

    Our choice (§5.2 "should typically use the same nonce"): a response that is not a
    notification reuses the request nonce, so its OSCORE option is empty (no Partial IV)."""
    async with oscore_pair() as s:

        def respond(request: CoapRequest) -> Message:
            response = Message(Code.CREATED, b"secret answer", content_format=0)
            response.location_path = ("new", "7")
            response.etag = b"\xe7"
            response.max_age = 30
            return response

        s.respond = respond
        request = Message(
            Code.PUT,
            b"secret body",
            uri_path="/res/a",
            uri_query=["k=secret"],
            content_format=60,
            accept=60,
        )
        request.if_match = [b"\x01\x02"]
        request.uri_host = "device.example"
        request.uri_port = 5699
        response = await s.request(request)

        (outer_request,) = s.relay.up.messages
        assert outer_request.code == Code.POST
        assert numbers(outer_request) == [Opt.URI_HOST, Opt.URI_PORT, Opt.OSCORE]
        assert header(outer_request) == Header(b"\x00", CLIENT_ID)
        for secret in (b"secret body", b"secret", b"res"):
            assert secret not in outer_request.encode()

        (seen,) = s.seen
        inner = seen.message
        assert inner.code == Code.PUT
        assert inner.payload == b"secret body"
        assert (inner.uri_path, inner.uri_query) == (("res", "a"), ("k=secret",))
        assert (inner.content_format, inner.accept, inner.if_match) == (60, 60, [b"\x01\x02"])
        assert (inner.uri_host, inner.uri_port) == ("device.example", 5699)
        assert inner.oscore is None
        assert seen.peer_identity is not None
        assert seen.peer_identity.kind == "oscore"
        assert seen.peer_identity.value == CLIENT_ID

        (outer_response,) = s.relay.down.messages
        assert outer_response.code == Code.CHANGED
        assert numbers(outer_response) == [Opt.OSCORE]
        assert outer_response.oscore == b""
        assert b"secret answer" not in outer_response.encode()

        assert response.code == Code.CREATED
        assert response.payload == b"secret answer"
        assert response.location_path == ("new", "7")
        assert (response.etag, response.max_age, response.content_format) == (b"\xe7", 30, 0)
        assert response.oscore is None


async def test_outer_class_e_options_are_discarded_by_the_receiver() -> None:
    """RFC 8613 §8.2 step 1 ("an If-Match Outer option is discarded") and §8.4 step 1 ("Max-Age
    Outer option is discarded"), §4.1.3.1: an intermediary adds Outer Uri-Path, If-Match and
    Content-Format to the request and an Outer Max-Age 0 and ETag to the response; the handler
    and the client see only the Inner values."""
    async with oscore_pair() as s:
        s.respond = lambda request: Message(
            Code.CONTENT, b"x", options=[(Opt.MAX_AGE, b"\x1e"), (Opt.ETAG, b"in")]
        )

        def add_up(message: Message) -> Message:
            message.options = sorted(
                [
                    *message.options,
                    (Opt.URI_PATH, b"evil"),
                    (Opt.IF_MATCH, b"\x66"),
                    (Opt.CONTENT_FORMAT, b"\x32"),
                ],
                key=lambda option: option[0],
            )
            return message

        def add_down(message: Message) -> Message:
            message.options = sorted(
                [*message.options, (Opt.MAX_AGE, b""), (Opt.ETAG, b"out")],
                key=lambda option: option[0],
            )
            return message

        s.relay.rewrite_up = add_up
        s.relay.rewrite_down = add_down
        response = await s.request(Message(Code.GET, uri_path="/good"))
        (seen,) = s.seen
        assert seen.message.uri_path == ("good",)
        assert seen.message.if_match == []
        assert seen.message.content_format is None
        assert response.max_age == 30
        assert response.etags == [b"in"]


async def test_proxy_uri_is_decomposed_and_only_scheme_and_authority_stay_outer() -> None:
    """RFC 8613 §4.1.3.3: the client decomposes Proxy-Uri; Uri-Path and Uri-Query go Inner and
    the Outer Proxy-Uri keeps scheme and authority ("coap://example.com"). Our endpoint (not a
    proxy) then routes by the Inner Uri-Path and shows the handler the Outer Proxy-Uri."""
    async with oscore_pair() as s:
        request = Message(Code.GET)
        request.proxy_uri = "coap://example.com/resource?q=1"
        await s.request(request)
        (outer,) = s.relay.up.messages
        assert numbers(outer) == [Opt.OSCORE, Opt.PROXY_URI]
        assert outer.proxy_uri == "coap://example.com"
        inner = spy(outer)
        assert (inner.uri_path, inner.uri_query) == (("resource",), ("q=1",))
        assert inner.proxy_uri is None
        (seen,) = s.seen
        assert seen.path == ("resource",)
        assert seen.message.proxy_uri == "coap://example.com"  # the Outer one, kept (Class U)

        request = Message(Code.GET, uri_path="/other")
        request.proxy_scheme = "coap"
        request.uri_host = "example.com"
        await s.request(request)
        outer = s.relay.up[-1]
        assert numbers(outer) == [Opt.URI_HOST, Opt.OSCORE, Opt.PROXY_SCHEME]
        assert spy(outer).uri_path == ("other",)


async def test_echo_and_request_tag_are_inner_and_independent_of_outer_ones() -> None:
    """RFC 9175 §2.2.1 and §3.2.1: with OSCORE, Echo and Request-Tag may be Inner or Outer and
    the Inner and Outer values are independent. An application's Echo / Request-Tag goes Inner
    (encrypted); Outer ones an intermediary adds do not reach the handler."""
    async with oscore_pair() as s:
        request = Message(Code.POST, b"p", uri_path="/act")
        request.echo = b"app-echo"
        request.request_tag = b"\x07"

        def add_outer(message: Message) -> Message:
            message.options = sorted(
                [*message.options, (Opt.ECHO, b"proxy-echo"), (Opt.REQUEST_TAG, b"\x99")],
                key=lambda option: option[0],
            )
            return message

        s.relay.rewrite_up = add_outer
        await s.request(request)
        (outer,) = s.relay.up.messages
        assert outer.get_options(Opt.ECHO) == [b"proxy-echo"]  # only the relay's
        assert outer.get_options(Opt.REQUEST_TAG) == [b"\x99"]
        (seen,) = s.seen
        assert seen.message.get_options(Opt.ECHO) == [b"app-echo"]
        assert seen.message.get_options(Opt.REQUEST_TAG) == [b"\x07"]


# == §4.1.3.4: block-wise ======================================================================


async def test_a_large_protected_response_goes_with_outer_block2() -> None:
    """RFC 8613 §4.1.3.4.2, §8.4.1; RFC 7959 §2.4: the server protects the whole response once and
    sends the OSCORE message in Outer Block2 blocks (each a 2.04 with the OSCORE option); the
    client fetches the blocks, reassembles, then verifies: the handler runs once and the client
    gets the whole body without any Block option.

    Our choice (RFC 7959 §2.4 for a POST): the follow-up requests repeat the outer request's
    options, the OSCORE option included, without its payload; the server answers them from its
    block cache, before any OSCORE processing."""
    async with oscore_pair() as s:
        s.respond = lambda request: Message(Code.CONTENT, BIG, content_format=42)
        response = await s.request(Message(Code.GET, uri_path="/big"))
        assert response.payload == BIG
        assert response.content_format == 42
        assert response.block2 is None
        assert response.size2 is None
        assert len(s.seen) == 1

        first, *follow_ups = s.relay.up.messages
        assert [m.block2.num for m in follow_ups if m.block2] == [1, 2]
        for message in follow_ups:
            assert message.code == Code.POST
            assert message.oscore == first.oscore
            assert message.payload == b""
        blocks = s.relay.down.messages
        assert [m.block2.num for m in blocks if m.block2] == [0, 1, 2]
        for message in blocks:
            assert message.code == Code.CHANGED
            assert message.oscore == b""
        ciphertext = b"".join(m.payload for m in blocks)
        assert BIG not in ciphertext
        assert len(ciphertext) > len(BIG)  # the code, options and the 8-byte tag


async def test_a_large_protected_request_goes_with_inner_block1() -> None:
    """RFC 8613 §4.1.3.4.1, RFC 7959 §2.5: the client fragments a body larger than a block
    before protecting it (Inner Block1), each block a protected request of its own (its own
    Partial IV); the server verifies each, answers protected 2.31 Continue, reassembles, and
    the handler sees the whole body, without Block options, once.

    Our choice: requests go Inner (aiocoap 0.4.17's server reads only Inner block-wise, and
    answers an Outer one "Decryption failed"); responses go Outer (the CoAP engine fragments
    the protected message), and Inner Block2 responses from a peer are fetched (tested with
    aiocoap below)."""
    async with oscore_pair() as s:
        s.respond = lambda request: Message(Code.CHANGED, b"got %d" % len(request.payload))
        response = await s.request(Message(Code.POST, BIG, uri_path="/upload", content_format=42))
        assert response.payload == b"got %d" % len(BIG)
        (seen,) = s.seen
        assert seen.message.payload == BIG
        assert seen.message.block1 is None
        assert seen.message.size1 is None
        assert seen.message.content_format == 42
        blocks = s.relay.up.messages
        assert len(blocks) == 6  # 512-byte Inner blocks: each protected one fits a datagram
        assert all(m.block1 is None for m in blocks)  # no Outer Block1: the blocks are Inner
        assert len({m.oscore for m in blocks}) == 6  # six Partial IVs
        assert BIG[:64] not in b"".join(m.payload for m in blocks)


async def test_max_unfragmented_size_is_the_endpoints_max_body_size() -> None:
    """RFC 8613 §4.1.3.4.2 asks for a MAX_UNFRAGMENTED_SIZE. Our policy: it is
    ``CoapConfig.max_body_size`` (1 MiB by default), for Outer and Inner block-wise alike. An
    Inner Block1 transfer beyond it is refused with a protected 4.13 and Size1 (RFC 7959
    §2.9.3), and the handler sees nothing."""
    async with oscore_pair(server_config=CoapConfig(max_body_size=2048)) as s:
        response = await s.request(Message(Code.POST, BIG, uri_path="/upload"))
        assert response.code == Code.REQUEST_ENTITY_TOO_LARGE
        assert response.size1 == 2048
        assert s.seen == []
        assert all(m.oscore is not None for m in s.relay.down.messages)


async def test_inner_block1_is_reassembled_or_refused() -> None:
    """RFC 8613 §4.1.3.4.1: a sender MAY fragment before OSCORE (Inner Block options; §4.1.3.4.2
    says it SHOULD above MAX_UNFRAGMENTED_SIZE); "the receiving CoAP endpoint SHALL process the
    OSCORE message before processing Block-wise as defined in RFC 7959". The first block of an
    Inner Block1 transfer must be answered 2.31 Continue (reassembly) or, by an endpoint that
    does not do Inner block-wise, 4.02 Bad Option (Block1 is critical, RFC 7252 §5.4.1) -- never
    handed to the handler as a complete request."""
    async with oscore_pair() as s:
        first = Message(Code.POST, BIG[:1024], uri_path="/upload")
        first.block1 = Block(0, True, 6)
        first.size1 = len(BIG)
        response = await s.request(first)
        assert s.seen == []
        assert response.code in (Code.CONTINUE, Code.BAD_OPTION)


@pytest.mark.interop
async def test_inner_block2_from_aiocoap_is_reassembled() -> None:
    """RFC 8613 §4.1.3.4.1 with an independent peer: aiocoap's OSCORE server fragments a large
    response Inner (before protection). The receiving endpoint "SHALL process the OSCORE message
    before processing Block-wise": our client must fetch the remaining blocks (each request
    protected anew) and return the whole representation."""
    import aiocoap
    import aiocoap.resource

    from .aiocoap_peer import AiocoapOscoreServer, OscoreMaterial, default_site

    class Big(aiocoap.resource.Resource):  # type: ignore[misc]
        async def render_get(self, request: Any) -> Any:
            return aiocoap.Message(payload=BIG)

    site, _ = default_site()
    site.add_resource(["big"], Big())
    material = OscoreMaterial(SECRET, sender_id=SERVER_ID, recipient_id=CLIENT_ID, master_salt=SALT)
    async with AiocoapOscoreServer(material, site=site) as peer:
        layer = OscoreLayer()
        async with await CoapEndpoint.create(oscore=layer) as client:
            layer.add_peer(peer.address, client_context())
            async with asyncio.timeout(TIMEOUT):
                response = await client.request(Message(Code.GET, uri_path="/big"), peer.address)
    assert response.code == Code.CONTENT
    assert response.payload == BIG


# == §4.1.3.6: No-Response =====================================================================


async def test_inner_no_response_reaches_the_handler_and_the_answer_is_still_sent() -> None:
    """RFC 8613 §4.1.3.6: No-Response, if used, MUST be Inner; the Outer one SHOULD NOT be
    present (the client MAY set an Outer 26 when the Inner is 26).

    Our choices: the client sends no Outer No-Response; the server hands the Inner one to the
    handler and does not act on it (§4.1.3.6: an implementation MAY support OSCORE without RFC
    7967), so the protected answer is sent."""
    async with oscore_pair() as s:
        request = Message(Code.POST, b"fire and forget", uri_path="/log")
        request.no_response = 26
        response = await s.request(request)
        assert response.code == Code.CONTENT
        (outer,) = s.relay.up.messages
        assert outer.no_response is None
        (seen,) = s.seen
        assert seen.message.no_response == 26


async def test_the_server_ignores_an_outer_no_response() -> None:
    """RFC 8613 §4.1.3.6: "The server SHALL ignore the Outer No-Response option." An intermediary
    adds an Outer No-Response 26 (suppress all) to a protected request: the server must still
    answer it (here the answer would be piggybacked on the ACK)."""
    async with oscore_pair() as s:

        def add_no_response(message: Message) -> Message:
            message.no_response = 26
            return message

        s.relay.rewrite_up = add_no_response
        task = asyncio.ensure_future(
            s.client.request(Message(Code.GET, uri_path="/x"), s.relay.address)
        )
        try:
            request = await s.relay.up.wait(is_request)
            answer = await s.relay.down.wait(lambda m: m.mid == request.mid)
            assert answer.code != Code.EMPTY, "the server suppressed the response"
            async with asyncio.timeout(TIMEOUT):
                assert (await task).code == Code.CONTENT
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OscoreError):
                await task


# == §4.1.3.5, §7.4.1, §8.3.1, §8.4.2: Observe =================================================


async def test_registration_and_notifications_on_the_wire() -> None:
    """RFC 8613 §4.1.3.5 (Outer Code FETCH / 2.05 with Observe), §4.1.3.5.1 (Inner and Outer
    Observe 0 in the registration), §4.1.3.5.2 (a Partial IV in every notification but the first,
    the Inner Observe of a notification empty), §8.3.1 (each later notification a new Partial IV).

    Our choices: the first response reuses the request nonce (no Partial IV, "MAY be omitted");
    the Outer Observe is the CoAP engine's own sequence number; the client delivers notifications
    with Observe = (Partial IV + 1) mod 2^24 and 0 for the first response (§4.1.3.5.2 MAY derive
    it from the Partial IV, "the notification without Partial IV is considered the oldest")."""
    async with oscore_pair() as s:
        observation = await s.observe()
        s.notify(b"n1")
        first_note = await next_notification(observation)
        s.notify(b"n2")
        second_note = await next_notification(observation)

        (registration,) = s.relay.up.messages
        assert registration.code == Code.FETCH
        assert registration.observe == 0
        assert spy(registration).observe == 0

        response, n1, n2 = s.relay.down.messages
        assert response.code == Code.CONTENT
        assert response.observe is not None
        assert response.oscore == b""  # first response: request nonce
        assert spy(response, registration).get_option(Opt.OBSERVE) == b""
        pivs = []
        for note in (n1, n2):
            assert note.code == Code.CONTENT
            assert note.observe is not None
            cose = header(note)
            assert cose.piv is not None
            assert cose.kid is None
            pivs.append(int.from_bytes(cose.piv, "big"))
            assert spy(note, registration).get_option(Opt.OBSERVE) == b""
        assert pivs[0] < pivs[1]
        assert n1.observe is not None
        assert n2.observe is not None
        assert n1.observe < n2.observe

        assert observation.response is not None
        assert observation.response.observe == 0
        assert (first_note.payload, first_note.observe) == (b"n1", pivs[0] + 1)
        assert (second_note.payload, second_note.observe) == (b"n2", pivs[1] + 1)


async def test_a_notification_is_a_2_05_with_an_empty_inner_observe_however_it_is_built() -> None:
    """RFC 8613 §4.1.3.5 "for messages with the Observe option, the Outer Code MUST be set to ...
    2.05 (Content) for responses"; §4.1.3.5.2 "For notifications, the Inner Observe option value
    MUST be empty", and a client that gets a response without Inner Observe "verifies the
    response as a non-Observe response". The application's notification message does not
    carry the Observe option (the engine numbers notifications, RFC 7641 §4.4); what goes on
    the wire must still be an OSCORE notification."""
    async with oscore_pair() as s:
        observation = await s.observe()
        s.notify(b"n1", observe=False)
        await next_notification(observation)
        registration = s.relay.up[0]
        note = s.relay.down[-1]
        assert note.code == Code.CONTENT
        assert spy(note, registration).get_option(Opt.OBSERVE) == b""


async def test_an_error_notification_ends_the_observation_on_both_sides() -> None:
    """RFC 7641 §3.2: when the resource would answer a GET with a non-2.xx code, the server
    "sends a notification with an appropriate response code (such as 4.04 Not Found) and removes
    the client's entry from the list of observers". RFC 8613 §4.1.3.5.2: the error notification
    carries a Partial IV; without Inner Observe the client verifies it "as a non-Observe
    response", i.e. the final response: the observation ends at the client too."""
    async with oscore_pair() as s:
        observation = await s.observe()
        assert s.server.notify_observation(s.observer(), Message(Code.NOT_FOUND, b"gone"))
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(StopAsyncIteration):
                await anext(observation)
        assert observation.final_response is not None
        assert observation.final_response.code == Code.NOT_FOUND
        assert s.server.observations() == []
        assert header(s.relay.down[-1]).piv is not None


async def test_the_client_orders_notifications_by_partial_iv() -> None:
    """RFC 8613 §4.1.3.5.2 "A client MUST consider the notification with the highest Partial IV as
    the freshest, regardless of the order of arrival", §7.4.1: notification n1 arrives after n2
    (the relay holds it back and renumbers the Outer Observe so the CoAP layer cannot tell):
    the client does not deliver the older one.

    Our choice (§7.4.1 "Applications MAY decide that a client only processes notifications that
    have a greater Partial IV than the Notification Number"): an older one is dropped."""
    async with oscore_pair() as s:
        renumber = Renumber()
        s.relay.rewrite_down = renumber
        observation = await s.observe()
        renumber.drop = 1
        s.notify(b"n1")
        held = await s.relay.dropped.wait(lambda m: True)
        s.notify(b"n2")
        assert (await next_notification(observation)).payload == b"n2"
        late = held.copy()
        late.mid = (held.mid + 1000) & 0xFFFF
        late.observe = renumber.take()
        s.relay.inject_down(late)
        s.notify(b"n3")
        assert (await next_notification(observation)).payload == b"n3"


async def test_a_replayed_notification_is_dropped() -> None:
    """RFC 8613 §7.4.1 "The client MUST stop processing notifications with a Partial IV that has
    been previously received": a notification replayed with its Message ID is a CoAP duplicate
    (RFC 7252 §4.5); replayed later with a new Message ID and a fresh Outer Observe, OSCORE drops
    it. The observation goes on (§8.4.2: an error does not cancel it, and the client "MUST NOT
    react to failure by re-registering the observation immediately")."""
    async with oscore_pair() as s:
        renumber = Renumber()
        s.relay.rewrite_down = renumber
        observation = await s.observe()
        s.notify(b"n1")
        assert (await next_notification(observation)).payload == b"n1"
        forwarded = s.relay.down[-1]
        s.relay.inject_down(forwarded)  # the same datagram again
        replay = forwarded.copy()
        replay.mid = (forwarded.mid + 1000) & 0xFFFF
        replay.observe = renumber.take()
        s.relay.inject_down(replay)
        s.notify(b"n2")
        assert (await next_notification(observation)).payload == b"n2"
        assert observation.active
        assert len(s.relay.up.matching(is_request)) == 1


async def test_a_second_notification_without_partial_iv_is_dropped() -> None:
    """RFC 8613 §7.4.1 "A client MUST only accept at most one Observe notification without
    Partial IV", §8.4.2: the first response (request nonce, no Partial IV) replayed later as a
    notification (new Message ID, fresh Outer Observe) is not delivered."""
    async with oscore_pair() as s:
        renumber = Renumber()
        s.relay.rewrite_down = renumber
        observation = await s.observe()
        first = s.relay.down[0]
        assert first.oscore == b""
        replay = first.copy()
        replay.mtype = NON
        replay.mid = (first.mid + 1000) & 0xFFFF
        replay.observe = renumber.take()
        s.relay.inject_down(replay)
        s.notify(b"n1")
        assert (await next_notification(observation)).payload == b"n1"


async def test_the_client_ignores_the_outer_observe_value() -> None:
    """RFC 8613 §4.1.3.5.2: "The client performs ordering of notifications and replay protection
    by comparing their Partial IVs and SHALL ignore the Outer Observe option value." An
    intermediary renumbers: n2 (a higher Partial IV than n1) arrives with a lower Outer Observe;
    the client must deliver it."""
    async with oscore_pair() as s:
        renumber = Renumber()
        s.relay.rewrite_down = renumber
        observation = await s.observe()
        s.notify(b"n1")
        assert (await next_notification(observation)).payload == b"n1"
        renumber.values = [5, None]  # n2: an Outer Observe below n1's; n3: above
        s.notify(b"n2")
        s.notify(b"n3")
        assert (await next_notification(observation)).payload == b"n2"


async def test_a_forged_notification_does_not_hide_the_genuine_ones() -> None:
    """RFC 8613 §8.4 step 8: a response that fails verification is not processed ("stop
    processing": not passed up to the request/response layer, §1.1) and §8.4.2 B: it "does not
    cancel the observation". An attacker who saw the token sends a notification with garbage
    ciphertext and a high Outer Observe: the next genuine notification is still delivered."""
    async with oscore_pair() as s:
        renumber = Renumber()
        s.relay.rewrite_down = renumber
        observation = await s.observe()
        s.notify(b"n1")
        assert (await next_notification(observation)).payload == b"n1"
        genuine = s.relay.down[-1]
        forged = Message(
            Code.CONTENT,
            bytes(16),
            mtype=NON,
            mid=(genuine.mid + 1000) & 0xFFFF,
            token=genuine.token,
            options=[(Opt.OBSERVE, b"\x03\xe8"), (Opt.OSCORE, b"\x01\x63")],
        )
        s.relay.inject_down(forged)
        renumber.values = [None, 2000]  # n2: the next of the count; n3: above the forged one
        s.notify(b"n2")
        s.notify(b"n3")
        assert (await next_notification(observation)).payload == b"n2"


async def test_a_reactively_cancelled_observation_answers_the_next_notification_with_rst() -> None:
    """RFC 7641 §3.6: a client that forgets an observation rejects the next notification with a
    Reset, and the server removes the observer (and, RFC 8613 §8, the association of the token
    with the context and request Partial IV).

    Our choice (RFC 7641 §3.6 "MAY" deregister with GET Observe=1): OSCORE observations are
    cancelled reactively only, since re-sending the stored registration would be a replay
    (§7.4); so ``cancel()`` sends nothing."""
    async with oscore_pair() as s:
        observation = await s.observe()
        assert s.server_layer.observers
        async with asyncio.timeout(TIMEOUT):
            await observation.cancel()
        assert not observation.active
        sent_before = len(s.relay.up)
        s.notify(b"after cancel", confirmable=True)
        reset = await s.relay.up.wait(lambda m: m.mtype == RST, sent_before)
        assert reset.code == Code.EMPTY
        await s.removed.wait(lambda m: True)
        assert s.reasons == ["reset"]
        assert s.server.observations() == []
        assert not s.server_layer.observers
        assert s.relay.up.matching(is_request) == s.relay.up.messages[:1]  # no deregistration


async def test_an_unverified_outer_cancellation_ends_the_observation() -> None:
    """RFC 8613 §4.1.3.5.1: an intermediary cannot make a cancellation (Observe 1) that verifies
    as the client's, but "An application MAY decide to allow intermediaries to cancel Observe
    registrations, e.g., to send the Observe option with value 1" (as anyone on path can with a
    Reset, RFC 7641 §3.6).

    Our choice (as is): the server's CoAP engine acts on the Outer Observe 1 with the
    observation's token before OSCORE verification, so even a request that then fails
    verification (answered 4.00 unprotected) removes the observer."""
    async with oscore_pair() as s:
        await s.observe()
        registration = s.relay.up[0]
        forged = Message(
            Code.FETCH,
            bytes(16),
            mid=(registration.mid + 1000) & 0xFFFF,
            token=registration.token,
            options=[
                (Opt.OBSERVE, b"\x01"),
                (Opt.OSCORE, b"\x09\x70" + CLIENT_ID),
            ],
        )
        observer = s.observer()
        s.relay.inject_up(forged)
        answer = await s.relay.down.wait(lambda m: m.mid == forged.mid)
        assert answer.code == Code.BAD_REQUEST
        assert answer.oscore is None
        await s.removed.wait(lambda m: True)
        assert s.reasons == ["deregistered"]
        assert not s.server.notify_observation(observer, Message(Code.CONTENT, b"n"))


async def test_a_large_notification_goes_with_outer_block2() -> None:
    """RFC 7959 §2.6 with RFC 8613 §4.1.3.4.2: a notification larger than a block is sent as
    its first Outer Block2 block; the client fetches the rest (with a new token) and verifies
    the reassembled OSCORE notification against the registration's binding."""
    async with oscore_pair() as s:
        observation = await s.observe()
        s.notify(BIG)
        note = await next_notification(observation)
        assert note.payload == BIG
        blocks = s.relay.down.matching(lambda m: m.block2 is not None)
        assert [m.block2.num for m in blocks if m.block2] == [0, 1, 2]


# == §8.2, §8.3: the server's errors ===========================================================


def unknown_kid(raw_request: Message) -> Message:
    outer, _ = client_context(sender_id=b"\x99").protect_request(raw_request)
    return outer


def undecodable_option(raw_request: Message) -> Message:
    outer, _ = client_context().protect_request(raw_request)
    outer.oscore = b"\xe9\x00\xc1"  # reserved flag bits (§6.1)
    return outer


def without_payload(raw_request: Message) -> Message:
    outer, _ = client_context().protect_request(raw_request)
    outer.payload = b""
    return outer


def undecryptable(raw_request: Message) -> Message:
    outer, _ = client_context().protect_request(raw_request)
    return tamper(outer)


@pytest.mark.parametrize(
    ("make", "code", "diagnostic"),
    [
        (unknown_kid, Code.UNAUTHORIZED, b"Security context not found"),
        (undecodable_option, Code.BAD_OPTION, b"Failed to decode COSE"),
        (without_payload, Code.BAD_OPTION, b"Failed to decode COSE"),
        (undecryptable, Code.BAD_REQUEST, b"Decryption failed"),
    ],
    ids=["unknown-kid", "undecodable-option", "no-payload", "decryption-failed"],
)
async def test_verification_errors_are_answered_unprotected_with_max_age_0(
    make: Callable[[Message], Message], code: int, diagnostic: bytes
) -> None:
    """RFC 8613 §8.2 step 2 (4.02 "Failed to decode COSE", 4.01 "Security context not found"),
    §2 (a message with the OSCORE option and no payload is malformed), step 6 (4.00 "Decryption
    failed"); §8.3: these OSCORE errors are "sent as simple CoAP responses, without OSCORE
    processing"; §4.1.3.1: with an Outer Max-Age 0. The request is not processed.

    Our choice: every "MAY respond", "MAY set an Outer Max-Age option with value zero" and "MAY
    contain the string" is taken."""
    async with oscore_pair() as s, RawPeer() as raw:
        request = make(Message(Code.GET, mid=0x4242, token=b"err", uri_path="/x"))
        answer = await raw.exchange(request, s.server.local_address)
        assert answer.code == code
        assert answer.oscore is None
        assert answer.max_age == 0
        assert answer.payload == diagnostic
        assert s.seen == []


async def test_coap_errors_of_a_verified_request_are_protected() -> None:
    """RFC 8613 §2 (a response to an OSCORE request carries the OSCORE option) and §8.3 ("CoAP
    error responses derived from CoAP processing (step 8 in Section 8.2) are protected"): a path
    without handler (4.04), a handler's ErrorResponse (4.03) and a failing handler (5.00) all go
    back as 2.04 with the OSCORE option; the client sees the inner codes."""
    async with oscore_pair() as s:
        s.server.site.remove("/")
        s.server.site.add("/forbidden", _forbidden)
        s.server.site.add("/broken", _broken)
        paths = ("/missing", "/forbidden", "/broken")
        codes = [(await s.request(Message(Code.GET, uri_path=path))).code for path in paths]
        assert codes == [Code.NOT_FOUND, Code.FORBIDDEN, Code.INTERNAL_SERVER_ERROR]
        for outer in s.relay.down.messages:
            assert outer.code == Code.CHANGED
            assert outer.oscore == b""


def _forbidden(request: CoapRequest) -> Message:
    raise ErrorResponse(Code.FORBIDDEN, "no")


def _broken(request: CoapRequest) -> Message:
    raise RuntimeError("handler bug (expected by the test)")


async def test_an_endpoint_without_oscore_answers_bad_option() -> None:
    """RFC 8613 §2: the OSCORE option is critical; RFC 7252 §5.4.1: an unrecognized critical
    option in a Confirmable request is answered 4.02 (Bad Option)."""
    async with await CoapEndpoint.create() as plain, RawPeer() as raw:
        outer, _ = client_context().protect_request(
            Message(Code.GET, mid=7, token=b"c", uri_path="/x")
        )
        answer = await raw.exchange(outer, plain.local_address)
        assert answer.code == Code.BAD_OPTION
        assert answer.oscore is None


async def test_an_endpoint_without_oscore_rejects_a_non_confirmable_oscore_request() -> None:
    """RFC 7252 §5.4.1: "Unrecognized options of class 'critical' that occur in a Non-confirmable
    message MUST cause the message to be rejected (Section 4.3)", i.e. ignored, optionally with
    a Reset -- not answered. A CoAP ping sent after it is the barrier: its Reset comes after
    anything the endpoint answered the request with."""
    async with await CoapEndpoint.create() as plain, RawPeer() as raw:
        outer, _ = client_context().protect_request(
            Message(Code.GET, mtype=NON, mid=7, token=b"n", uri_path="/x")
        )
        raw.send(outer, plain.local_address)
        raw.send(Message(Code.EMPTY, mtype=CON, mid=8), plain.local_address)
        await raw.log.wait(lambda m: m.mtype == RST and m.mid == 8)
        assert raw.log.matching(lambda m: m.token == b"n") == []


# == §8.4: the client's checks =================================================================


def tampered_response(request: Message, server: SecurityContext) -> Message:
    _, _, binding = unprotect_request(request, lambda kid, kid_context: server)
    answer = reply_to(request, Message(Code.CONTENT, b"fake"))
    return tamper(server.protect_response(answer, binding))


def response_to_another_request(request: Message, server: SecurityContext) -> Message:
    unprotect_request(request, lambda kid, kid_context: server)
    other = RequestBinding(CLIENT_ID, b"\x77", None)  # §7.1: bound to another request
    return server.protect_response(reply_to(request, Message(Code.CONTENT, b"fake")), other)


def inner_observe_in_a_plain_response(request: Message, server: SecurityContext) -> Message:
    _, _, binding = unprotect_request(request, lambda kid, kid_context: server)
    answer = reply_to(request, Message(Code.CONTENT, b"fake", observe=5))
    return server.protect_response(answer, binding)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (tampered_response, DecryptionFailed),
        (response_to_another_request, DecryptionFailed),
        (inner_observe_in_a_plain_response, MalformedPlaintext),
    ],
    ids=["tampered", "bound-to-another-request", "inner-observe-to-a-non-observe-request"],
)
async def test_the_client_refuses_a_response_that_does_not_verify(
    make: Callable[[Message, SecurityContext], Message], error: type[VerificationError]
) -> None:
    """RFC 8613 §8.4 steps 5/8 (decryption fails: stop processing), §7.1 (the response is bound to
    its request through the AAD), §4.1.3.5.2 (an Inner Observe in a response to a non-Observe
    request: stop processing). Our choice: the request then fails with the verification error
    (the CoAP exchange is over, the content is never returned)."""
    async with towards_raw_server() as (client, raw):
        task = asyncio.ensure_future(client.request(Message(Code.GET, uri_path="/x"), raw.address))
        request = await raw.log.wait(is_request)
        raw.send(make(request, server_context()), raw.sender)
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(error):
                await task


async def test_an_unprotected_answer_to_a_protected_request_is_not_accepted() -> None:
    """RFC 8613 §2 ("A successful response to a request with the OSCORE option SHALL contain the
    OSCORE option") and §8.4: an unprotected 2.05 (spoofed, or from a server that lost OSCORE)
    is never returned as the response; the request fails naming the code."""
    async with towards_raw_server() as (client, raw):
        task = asyncio.ensure_future(client.request(Message(Code.GET, uri_path="/x"), raw.address))
        request = await raw.log.wait(is_request)
        raw.send(reply_to(request, Message(Code.CONTENT, b"plain")), raw.sender)
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(UnprotectedResponse) as refused:
                await task
        assert refused.value.code == Code.CONTENT


# == §7.4: replay ==============================================================================


async def test_a_coap_duplicate_is_answered_from_the_cache_not_as_a_replay() -> None:
    """RFC 7252 §4.5 below RFC 8613 §7.4: the same datagram again (same Message ID, a CoAP
    retransmission) is a duplicate for the messaging layer: it gets the same response bytes
    from the cache, the handler runs once, and OSCORE never sees it as a replay."""
    async with oscore_pair() as s, RawPeer() as raw:
        outer, _ = client_context().protect_request(
            Message(Code.GET, mid=0x1111, token=b"dup", uri_path="/x")
        )
        first = await raw.exchange(outer, s.server.local_address)
        again = await raw.exchange(outer, s.server.local_address)
        assert first.code == Code.CHANGED
        assert first.oscore == b""
        assert again.encode() == first.encode()
        assert len(s.seen) == 1
        assert s.server.engine.stats.duplicates == 1


async def test_a_replayed_request_with_a_new_message_id_is_refused() -> None:
    """RFC 8613 §7.4: the same protected request with another Message ID and Token (an attacker's
    replay, not a retransmission) has a Partial IV received before: the server stops processing
    it and answers 4.01 "Replay detected", unprotected, with an Outer Max-Age 0."""
    async with oscore_pair() as s, RawPeer() as raw:
        outer, _ = client_context().protect_request(
            Message(Code.POST, b"open", mid=0x2222, token=b"one", uri_path="/door")
        )
        assert (await raw.exchange(outer, s.server.local_address)).code == Code.CHANGED
        replay = outer.copy()
        replay.mid, replay.token = 0x2223, b"two"
        answer = await raw.exchange(replay, s.server.local_address)
        assert answer.code == Code.UNAUTHORIZED
        assert answer.payload == b"Replay detected"
        assert answer.oscore is None
        assert answer.max_age == 0
        assert len(s.seen) == 1


async def test_the_replay_window_takes_late_requests_within_32() -> None:
    """RFC 8613 §7.4 and §3.2.2: the default replay window is RFC 6347's sliding window of 32: a
    request that arrives late (Partial IV below the highest seen) is served once if it is within
    the window, refused if seen before or older than the window."""
    async with oscore_pair() as s, RawPeer() as raw:

        async def send(piv: int, mid: int) -> int:
            outer, _ = client_context(piv).protect_request(
                Message(Code.GET, mid=mid, token=mid.to_bytes(2, "big"), uri_path="/x")
            )
            return (await raw.exchange(outer, s.server.local_address)).code

        assert await send(40, 1) == Code.CHANGED
        assert await send(20, 2) == Code.CHANGED  # late, within the window
        assert await send(20, 3) == Code.UNAUTHORIZED  # seen
        assert await send(8, 4) == Code.UNAUTHORIZED  # 32 or more below 40
        assert await send(9, 5) == Code.CHANGED  # 31 below 40: the oldest the window holds
        assert len(s.seen) == 3


# == §7.2.1: the Sender Sequence Number limit ==================================================


async def test_the_last_sequence_number_is_used_then_the_context_refuses_to_protect() -> None:
    """RFC 8613 §7.2.1: the Sender Sequence Number "SHALL be less than 2^40"; past the maximum
    "the endpoint MUST NOT process any more messages with the given Sender Context". The request
    with 2^40 - 1 (Partial IV ff ff ff ff ff) is the last one; the next fails at once with
    :class:`ContextExhausted` (an :class:`OscoreError`), nothing is sent, and the endpoint
    keeps working."""
    async with oscore_pair(client_sequence=MAX_SEQUENCE_NUMBER) as s:
        assert (await s.request(Message(Code.GET, uri_path="/x"))).code == Code.CONTENT
        assert header(s.relay.up[0]).piv == b"\xff" * 5
        for _ in range(2):
            with pytest.raises(ContextExhausted) as exhausted:
                await s.request(Message(Code.GET, uri_path="/x"))
            assert isinstance(exhausted.value, OscoreError)
            assert "2^40" in str(exhausted.value)
        assert len(s.relay.up) == 1
        assert len(s.seen) == 1
        async with RawPeer() as raw:  # the endpoint still serves
            answer = await raw.exchange(
                Message(Code.GET, mid=9, token=b"p"), s.client.local_address
            )
            assert answer.code == Code.NOT_FOUND


async def test_an_exhausted_server_context_refuses_to_notify() -> None:
    """RFC 8613 §7.2.1 on the server: a notification needs a new Partial IV (§8.3.1); with the
    Sender Sequence Number past 2^40 - 1, ``notify_observation`` raises
    :class:`ContextExhausted` and sends nothing.

    Our reading of "MUST NOT process any more messages with the given Sender Context": no new
    Partial IV is taken; a response that reuses the request nonce (§5.2) takes none, so the
    registration itself is still answered."""
    async with oscore_pair(server_sequence=MAX_SEQUENCE_NUMBER + 1) as s:
        observation = await s.observe()
        sent = len(s.relay.down)
        with pytest.raises(ContextExhausted):
            s.server.notify_observation(s.observer(), Message(Code.CONTENT, b"n", observe=0))
        assert len(s.relay.down) == sent
        assert observation.active


async def test_an_unverified_final_response_does_not_end_the_observation() -> None:
    """RFC 8613 §8.4: what does not verify is discarded. A plain NON 4.04 with the
    observation's token (a forged "final response": no Observe, an error code) reaches the
    client's CoAP engine; it must not end the protected observation, and the next genuine
    notification is delivered (found by review: the engine ended it before verification)."""
    async with oscore_pair() as s:
        observation = await s.observe()
        s.notify(b"n1")
        assert (await next_notification(observation)).payload == b"n1"
        genuine = s.relay.down[-1]
        forged = Message(
            Code.NOT_FOUND, b"", mtype=NON, mid=(genuine.mid + 1000) & 0xFFFF, token=genuine.token
        )
        s.relay.inject_down(forged)
        s.notify(b"n2")
        assert (await next_notification(observation)).payload == b"n2"
        assert observation.active


async def test_a_large_request_carries_one_request_tag_on_every_inner_block() -> None:
    """RFC 9175 §3.5.1: the blocks of one Inner Block1 operation carry a Request-Tag of their
    own, so that a block of another operation cannot be spliced in; the reassembled request
    reaches the handler once, with its tag."""
    async with oscore_pair() as s:
        s.respond = lambda request: Message(Code.CHANGED)
        first = asyncio.ensure_future(s.request(Message(Code.POST, BIG, uri_path="/upload")))
        second = asyncio.ensure_future(s.request(Message(Code.POST, BIG[::-1], uri_path="/upload")))
        answers = await asyncio.gather(first, second)
        assert [a.code for a in answers] == [Code.CHANGED, Code.CHANGED]
        bodies = sorted(seen.message.payload for seen in s.seen)
        assert bodies == sorted([BIG, BIG[::-1]])  # no body is a mix of the two
        tags = {seen.message.request_tag for seen in s.seen}
        assert len(tags) == 2
        assert None not in tags
