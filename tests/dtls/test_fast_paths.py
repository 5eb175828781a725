"""The hand-optimised hot paths of the server handshake agree with straightforward references.

Each fast path (prepared HMAC states in the PRF and the cookie, index-arithmetic ClientHello
parsing, one-step encoders of handshake headers, ServerHello and HelloVerifyRequest, the enum
member views, the whole-message shortcut of the reassembler) is compared with the plain
``hmac``/:class:`Buffer` code it replaced, on generated inputs.
"""

from __future__ import annotations

import dataclasses
import hmac
import struct
from enum import Enum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.buffer import Buffer
from lwm2m.dtls import AlertDescription, AlertReceived, constants
from lwm2m.dtls import messages as m
from lwm2m.dtls import server as server_module
from lwm2m.dtls.connection import ConnectionState
from lwm2m.dtls.constants import DTLS_1_0, DTLS_1_2, ContentType, HandshakeType, member_view
from lwm2m.dtls.cookie import CookieGenerator
from lwm2m.dtls.credentials import SoftwarePsk
from lwm2m.dtls.errors import Alert, AlertDecodeError
from lwm2m.dtls.events import DtlsSession, HandshakeCompleted, dtls_session, handshake_completed
from lwm2m.dtls.handshake import HandshakeState
from lwm2m.dtls.messages import initial_client_hello, pull_handshake_fragment
from lwm2m.dtls.prf import HmacSha256, p_sha256, prf, psk_premaster
from lwm2m.dtls.record import MAX_CIPHERTEXT_EXPANSION, MAX_PLAINTEXT_LENGTH, encode_record
from lwm2m.dtls.server import DtlsServer, ServerEvent
from lwm2m.dtls.trust import PskIdentity
from lwm2m.errors import BufferReadError

from .helpers import PSK, PSK_IDENTITY, Link, dtls_server, psk_client

# -- references (the code the fast paths replaced) -----------------------------------------------


def reference_p_sha256(secret: bytes, seed: bytes, length: int) -> bytes:
    out = bytearray()
    a = seed
    while len(out) < length:
        a = hmac.digest(secret, a, "sha256")
        out += hmac.digest(secret, a + seed, "sha256")
    return bytes(out[:length])


def reference_pull_client_hello(buf: Buffer) -> m.ClientHello:
    def opaque(width: int) -> bytes:
        return buf.pull_bytes(buf.pull_uint(width))

    version = buf.pull_uint16()
    random = buf.pull_bytes(32)
    session_id = opaque(1)
    cookie = opaque(1)
    suites_data = opaque(2)
    if len(suites_data) % 2 or not suites_data:
        raise AlertDecodeError("cipher_suites length")
    suites = tuple(
        int.from_bytes(suites_data[i : i + 2], "big") for i in range(0, len(suites_data), 2)
    )
    compression = opaque(1)
    if len(session_id) > 32 or not compression:
        raise AlertDecodeError("ClientHello field length")
    extensions = m._pull_extensions(buf)
    if not buf.eof():
        raise AlertDecodeError("trailing bytes in handshake message")
    return m.ClientHello(random, session_id, cookie, suites, compression, extensions, version)


def reference_encode_handshake(
    msg_type: int, seq: int, body: bytes, offset: int = 0, length: int | None = None
) -> bytes:
    if length is None:
        length = len(body) - offset
    return (
        bytes([msg_type])
        + len(body).to_bytes(3, "big")
        + seq.to_bytes(2, "big")
        + offset.to_bytes(3, "big")
        + length.to_bytes(3, "big")
        + body[offset : offset + length]
    )


def reference_server_hello(msg: m.ServerHello) -> bytes:
    buf = Buffer()
    buf.push_uint16(msg.version)
    buf.push_bytes(msg.random)
    buf.push_uint8(len(msg.session_id))
    buf.push_bytes(msg.session_id)
    buf.push_uint16(msg.cipher_suite)
    buf.push_uint8(msg.compression_method)
    m._push_extensions(buf, msg.extensions)
    return buf.data


def outcome(parse: object, data: bytes) -> object:
    """The parse result, or the kind of failure (both kinds become a decode_error alert)."""
    try:
        return parse(data)  # type: ignore[operator]
    except (BufferReadError, Alert):
        return "error"


# -- strategies -----------------------------------------------------------------------------------

extensions = st.none() | st.lists(
    st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)),
    max_size=6,
    unique_by=lambda e: e[0],
).map(tuple)

hellos = st.builds(
    m.ClientHello,
    random=st.binary(min_size=32, max_size=32),
    session_id=st.binary(max_size=32),
    cookie=st.binary(max_size=32),
    cipher_suites=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=8).map(tuple),
    compression_methods=st.binary(min_size=1, max_size=3),
    extensions=extensions,
    version=st.sampled_from([0xFEFD, 0xFEFF, 0xFE00, 0x0303]),
)


def encode_hello(hello: m.ClientHello) -> bytes:
    buf = Buffer()
    m.push_client_hello(buf, hello)
    return buf.data


# -- PRF and HMAC ---------------------------------------------------------------------------------


@given(key=st.binary(max_size=200), message=st.binary(max_size=300))
def test_prepared_hmac_equals_hmac(key: bytes, message: bytes) -> None:
    mac = HmacSha256(key)
    assert mac.digest(message) == hmac.digest(key, message, "sha256")
    assert mac.digest(message) == mac.digest(message)  # the prepared states are not consumed
    assert repr(mac) == "<HmacSha256>"  # the key never shows


@given(
    secret=st.binary(max_size=130),
    seed=st.binary(max_size=100),
    length=st.integers(0, 130),
)
def test_p_sha256_equals_reference(secret: bytes, seed: bytes, length: int) -> None:
    assert p_sha256(secret, seed, length) == reference_p_sha256(secret, seed, length)
    assert prf(HmacSha256(secret), b"label", seed, length) == reference_p_sha256(
        secret, b"label" + seed, length
    )


def test_software_psk_derivation_is_the_rfc_4279_prf() -> None:
    credential = SoftwarePsk(PSK_IDENTITY, PSK)
    seed = bytes(range(32))
    expected = reference_p_sha256(psk_premaster(PSK), b"extended master secret" + seed, 48)
    assert credential.derive_master_secret(b"extended master secret", seed) == expected


# -- ClientHello parsing and cookies --------------------------------------------------------------


@settings(max_examples=300)
@given(hello=hellos)
def test_client_hello_parser_matches_reference(hello: m.ClientHello) -> None:
    body = encode_hello(hello)
    parsed = m.parse_client_hello(body)
    assert parsed == reference_pull_client_hello(Buffer(body))
    assert parsed == hello
    assert m.pull_client_hello(Buffer(body)) == hello
    random, cookie, parameters = m.client_hello_cookie_fields(body)
    assert (random, cookie) == (hello.random, hello.cookie)
    assert parameters == m.client_hello_parameters(hello)


@settings(max_examples=300)
@given(hello=hellos, cut=st.integers(0, 400), junk=st.binary(min_size=1, max_size=3))
def test_client_hello_parser_fails_like_reference(
    hello: m.ClientHello, cut: int, junk: bytes
) -> None:
    body = encode_hello(hello)
    # A truncated hello is an error — except when the cut removes exactly an empty extensions
    # block, which leaves a valid hello without extensions: the fast parser must agree with the
    # reference either way.
    truncated = body[: min(cut, len(body) - 1)]
    assert outcome(m.parse_client_hello, truncated) == outcome(
        lambda d: reference_pull_client_hello(Buffer(d)), truncated
    )
    # Junk after the hello is an error, or (after a hello without extensions) an extensions
    # block: either way, the same outcome as the reference.
    longer = body + junk
    assert outcome(m.parse_client_hello, longer) == outcome(
        lambda d: reference_pull_client_hello(Buffer(d)), longer
    )


@given(data=st.binary(max_size=120))
def test_client_hello_parser_on_random_bytes(data: bytes) -> None:
    assert outcome(m.parse_client_hello, data) == outcome(
        lambda d: reference_pull_client_hello(Buffer(d)), data
    )


def test_duplicate_extension_is_a_decode_error() -> None:
    hello = m.ClientHello(bytes(32), b"", b"", (0xC0A8,), extensions=((23, b""), (23, b"")))
    with pytest.raises(AlertDecodeError):
        m.parse_client_hello(encode_hello(hello))


@given(hello=hellos)
def test_cookie_binds_the_wire_parameters(hello: m.ClientHello) -> None:
    generator = CookieGenerator()
    cookie = generator.generate(b"peer", hello, 0.0)
    _, _, parameters = m.client_hello_cookie_fields(encode_hello(hello))
    assert generator.verify_for(cookie, b"peer", parameters, 1.0)
    assert generator.generate_for(b"peer", parameters, 1.0) == cookie
    assert not generator.verify_for(cookie, b"peer2", parameters, 1.0)
    other = m.ClientHello(
        hello.random,
        hello.session_id,
        hello.cookie,
        (*hello.cipher_suites, 0x00FF),
        hello.compression_methods,
    )
    assert not generator.verify(cookie, b"peer", other, 1.0)


def test_initial_client_hello_reads_the_datagram_directly() -> None:
    hello = m.ClientHello(bytes(range(32)), b"\x07" * 4, b"\x01" * 32, (0xC0A8, 0x00FF))
    body = encode_hello(hello)
    datagram = encode_record(
        ContentType.HANDSHAKE, DTLS_1_0, 0, 0x123456789A, m.encode_handshake(1, 3, body)
    )
    initial = initial_client_hello(datagram)
    assert initial is not None
    assert (initial.record_seq, initial.message_seq) == (0x123456789A, 3)
    assert (initial.random, initial.cookie) == (hello.random, hello.cookie)
    assert initial.parameters == m.client_hello_parameters(hello)
    fragmented = encode_record(
        ContentType.HANDSHAKE, DTLS_1_0, 0, 1, m.encode_handshake(1, 3, body, 0, 40)
    )
    assert initial_client_hello(fragmented) is None
    assert initial_client_hello(datagram[:-1]) is None  # record longer than the datagram
    epoch1 = datagram[:3] + b"\x00\x01" + datagram[5:]
    assert initial_client_hello(epoch1) is None


def _reference_initial(datagram: bytes) -> tuple[int, int, bytes, bytes, bytes] | None:
    """What initial_client_hello reads, the straightforward way: the first record's header, one
    whole ClientHello fragment in it, client_hello_cookie_fields."""
    buf = Buffer(datagram)
    try:
        content_type = buf.pull_uint8()
        version = buf.pull_uint16()
        epoch = buf.pull_uint16()
        record_seq = int.from_bytes(buf.pull_bytes(6), "big")
        fragment = buf.pull_bytes(buf.pull_uint16())
        header = pull_handshake_fragment(Buffer(fragment))
        fields = m.client_hello_cookie_fields(header.fragment)
    except (BufferReadError, Alert):
        return None
    if (
        content_type != ContentType.HANDSHAKE
        or version >> 8 != 0xFE
        or epoch
        or len(fragment) > MAX_PLAINTEXT_LENGTH + MAX_CIPHERTEXT_EXPANSION
        or header.msg_type != HandshakeType.CLIENT_HELLO
        or header.fragment_offset
        or len(header.fragment) != header.length
    ):
        return None
    return (record_seq, header.message_seq, *fields)


def _read(datagram: bytes) -> tuple[int, int, bytes, bytes, bytes] | None:
    initial = initial_client_hello(datagram)
    if initial is None:
        return None
    return (
        initial.record_seq,
        initial.message_seq,
        initial.random,
        initial.cookie,
        initial.parameters,
    )


@settings(max_examples=300)
@given(hello=hellos, position=st.integers(0, 300), value=st.integers(0, 255))
def test_initial_client_hello_agrees_with_the_reference(
    hello: m.ClientHello, position: int, value: int
) -> None:
    """On a hello's datagram and on a one-byte change of it (lengths, types, versions)."""
    datagram = encode_record(
        ContentType.HANDSHAKE, DTLS_1_0, 0, 5, m.encode_handshake(1, 2, encode_hello(hello))
    )
    changed = bytearray(datagram)
    if position < len(changed):
        changed[position] = value
    for candidate in (datagram, bytes(changed)):
        assert _read(candidate) == _reference_initial(candidate), candidate.hex()


@given(data=st.binary(max_size=200))
def test_initial_client_hello_on_random_bytes(data: bytes) -> None:
    assert _read(data) == _reference_initial(data)


@given(
    cookie=st.binary(max_size=40),
    client=st.binary(max_size=30),
    parameters=st.binary(max_size=80),
    now=st.floats(0, 500),
)
def test_cookie_check_is_verify_then_generate(
    cookie: bytes, client: bytes, parameters: bytes, now: float
) -> None:
    generator = CookieGenerator(lifetime=60.0)
    good = generator.generate_for(client, parameters, 0.0)
    for candidate in (cookie, good):
        valid = generator.verify_for(candidate, client, parameters, now)
        answer = generator.check(candidate, client, parameters, now)
        if valid:
            assert answer is None
        else:
            assert answer == generator.generate_for(client, parameters, now)


# -- encoders -------------------------------------------------------------------------------------


@given(
    msg_type=st.integers(0, 255),
    seq=st.integers(0, 0xFFFF),
    body=st.binary(max_size=600),
    data=st.data(),
)
def test_encode_handshake_matches_reference(
    msg_type: int, seq: int, body: bytes, data: st.DataObject
) -> None:
    offset = data.draw(st.integers(0, len(body)))
    length = data.draw(st.none() | st.integers(0, len(body) - offset))
    assert m.encode_handshake(msg_type, seq, body, offset, length) == reference_encode_handshake(
        msg_type, seq, body, offset, length
    )


@given(
    random=st.binary(min_size=32, max_size=32),
    session_id=st.binary(max_size=32),
    suite=st.integers(0, 0xFFFF),
    extensions=extensions,
)
def test_server_hello_encoder_matches_reference(
    random: bytes, session_id: bytes, suite: int, extensions: m.Extensions | None
) -> None:
    msg = m.ServerHello(random, session_id, suite, 0, extensions)
    encoded = m.encode_server_hello(msg)
    assert encoded == reference_server_hello(msg)
    assert m.pull_server_hello(Buffer(encoded)) == msg


@given(record_seq=st.integers(0, 2**48 - 1), message_seq=st.integers(0, 0xFFFF))
def test_hello_verify_request_matches_reference(record_seq: int, message_seq: int) -> None:
    cookie = bytes(range(32))
    buf = Buffer()
    m.push_hello_verify_request(buf, m.HelloVerifyRequest(DTLS_1_0, cookie))
    fragment = reference_encode_handshake(HandshakeType.HELLO_VERIFY_REQUEST, message_seq, buf.data)
    # the message says DTLS 1.0 (RFC 6347 §4.2.1), the record DTLS 1.2 (old tinydtls drops
    # records of any other version)
    expected = encode_record(ContentType.HANDSHAKE, DTLS_1_2, 0, record_seq, fragment)
    assert DtlsServer._hello_verify_request(record_seq, message_seq, cookie) == expected


# -- enum views and the reassembler shortcut ------------------------------------------------------


@pytest.mark.parametrize(
    "enum",
    [
        *(
            value
            for value in vars(constants).values()
            if isinstance(value, type)
            and issubclass(value, Enum)
            and value.__module__.endswith("constants")
        ),
        HandshakeState,
        ConnectionState,
    ],
)
def test_member_view_holds_the_same_members(enum: type[Enum]) -> None:
    view = member_view(enum)
    for name, member in enum.__members__.items():
        assert getattr(view, name) is member


@pytest.mark.parametrize("mtu", [1200, 120])
def test_handshake_records_split_and_joined_alike(mtu: int) -> None:
    """Whole messages take the shortcut past the reassembly buffers, fragments do not (a small
    MTU fragments the flights); the outcome is the same handshake."""
    link = Link(psk_client(max_datagram_size=mtu), dtls_server(max_datagram_size=mtu))
    link.run()
    assert link.completed(link.server_events) is not None
    assert link.exchange() == (b"ping", b"gnip")


def test_whole_message_over_the_size_limit_is_refused() -> None:
    """The shortcut keeps the size bound: the ClientHello with its 32-byte cookie is longer
    than 64 bytes and arrives whole."""
    link = Link(psk_client(), dtls_server(max_handshake_message_size=64))
    link.run()
    assert link.completed(link.server_events) is None
    alerts = [e for e in link.client_events if isinstance(e, AlertReceived)]
    assert [a.description for a in alerts] == [AlertDescription.ILLEGAL_PARAMETER]


def test_handshake_header_layout() -> None:
    assert struct.calcsize("!IHHI") == m.HANDSHAKE_HEADER_LENGTH


def test_the_cheaply_built_events_equal_the_dataclass_ones() -> None:
    """``dtls_session``, ``handshake_completed`` and the server's ``_server_event`` give the
    instances the dataclass constructors give: the same type, equality, hash and repr (the
    master secret hidden), and as immutable."""
    identity = PskIdentity(b"device")
    pairs: list[tuple[Any, Any]] = [
        (
            dtls_session(b"i" * 32, 0xC0A8, b"m" * 48, True, identity, False),
            DtlsSession(b"i" * 32, 0xC0A8, b"m" * 48, True, identity, False),
        ),
        (
            handshake_completed(0xC0A8, identity, True, b"\x01", b"\x02"),
            HandshakeCompleted(0xC0A8, identity, False, True, b"\x01", b"\x02", None, None),
        ),
        (
            handshake_completed(0xC0A8, None, False, None, None),
            HandshakeCompleted(0xC0A8, None, False, False),
        ),
    ]
    connection = psk_client()
    pairs.append(
        (
            server_module._server_event(("h", 1), connection, pairs[1][1]),
            ServerEvent(("h", 1), connection, pairs[1][1]),
        )
    )
    for fast, slow in pairs:
        assert type(fast) is type(slow)
        assert fast == slow
        assert hash(fast) == hash(slow)
        assert repr(fast) == repr(slow)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(fast, dataclasses.fields(fast)[0].name, 0)
    assert "m" * 48 not in repr(pairs[0][0])
