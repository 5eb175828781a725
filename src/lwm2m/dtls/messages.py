"""Handshake messages of DTLS 1.2 as frozen dataclasses with ``pull_``/``push_`` functions.

Structures (wire fields stay raw ``int``/``bytes``; compare with :mod:`.constants` enums):

- Handshake header with fragmentation fields (RFC 6347 §4.2.2).
- ClientHello with cookie (RFC 6347 §4.2.1, §4.3.2), ServerHello, ServerHelloDone, Finished,
  CertificateVerify, CertificateRequest (RFC 5246 §7.4), HelloVerifyRequest (RFC 6347 §4.2.1).
- Certificate with X.509 chains (RFC 5246 §7.4.2) or a raw SubjectPublicKeyInfo (RFC 7250 §3).
- ServerKeyExchange / ClientKeyExchange for PSK (RFC 4279 §2) and ECDHE_ECDSA (RFC 8422 §5.4,
  §5.7).
- Extensions as ``(type, data)`` pairs (RFC 5246 §7.4.1.4); helpers for the ones used here.

``pull_*`` raise :class:`lwm2m.errors.BufferReadError` on truncation; the connection turns that
into a ``decode_error`` alert. The messages on every server handshake's path (ClientHello in,
ServerHello and handshake headers out) are parsed and built with index arithmetic and
``struct`` rather than per-field :class:`Buffer` calls; ``tests/dtls/test_fast_paths.py`` holds
them to the straightforward versions.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from lwm2m.buffer import Buffer
from lwm2m.errors import BufferReadError

from .constants import (
    DTLS_1_2,
    NAMED_CURVE,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    member_view,
)
from .errors import AlertDecodeError
from .record import MAX_FRAGMENT_LENGTH, RECORD_HEADER_LENGTH

__all__ = [
    "HANDSHAKE_HEADER_LENGTH",
    "HANDSHAKE_RECORD_OVERHEAD",
    "PLAIN_HANDSHAKE_RECORD",
    "Certificate",
    "CertificateRequest",
    "CertificateVerify",
    "ClientHello",
    "ClientKeyExchange",
    "Finished",
    "HandshakeFragment",
    "HelloVerifyRequest",
    "InitialHello",
    "ServerHello",
    "ServerKeyExchangeEcdhe",
    "ServerKeyExchangePsk",
    "client_hello_cookie_fields",
    "client_hello_parameters",
    "encode_handshake",
    "find_extension",
    "initial_client_hello",
    "parse_client_hello",
    "pull_handshake_fragment",
]

_ET = member_view(ExtensionType)
_NG = member_view(NamedGroup)

#: msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3), RFC 6347 §4.2.2.
HANDSHAKE_HEADER_LENGTH = 12
#: An epoch-0 record holding one whole handshake message: the record header (type, version,
#: epoch, seq_hi, seq_lo, length), then the handshake header as msg_type+length, message_seq,
#: fragment_offset's high 16 bits, its low byte + fragment_length (RFC 6347 §4.1, §4.2.2).
PLAIN_HANDSHAKE_RECORD = struct.Struct("!BHHHIHIHHI")
#: The record and handshake headers before a whole handshake message's body.
HANDSHAKE_RECORD_OVERHEAD = RECORD_HEADER_LENGTH + HANDSHAKE_HEADER_LENGTH
_HANDSHAKE = int(ContentType.HANDSHAKE)
_CLIENT_HELLO = int(HandshakeType.CLIENT_HELLO)
#: That header as msg_type+length (4), message_seq (2), then fragment_offset's high 16 bits (2)
#: and its low byte + fragment_length (4).
_HANDSHAKE_HEADER = struct.Struct("!IHHI")
_EXTENSION_HEADER = struct.Struct("!HH")
_SUITE_COMPRESSION = struct.Struct("!HB")
_DTLS_1_2_BYTES = DTLS_1_2.to_bytes(2, "big")

Extensions = tuple[tuple[int, bytes], ...]


def _pull_opaque(buf: Buffer, width: int) -> bytes:
    return buf.pull_bytes(buf.pull_uint(width))


def _push_opaque(buf: Buffer, width: int, value: bytes) -> None:
    buf.push_uint(len(value), width)
    buf.push_bytes(value)


def _pull_extensions(buf: Buffer) -> Extensions | None:
    """Extensions are optional at the end of a hello (RFC 5246 §7.4.1.2)."""
    if buf.eof():
        return None
    seen: set[int] = set()
    result: list[tuple[int, bytes]] = []
    with buf.pull_block(buf.pull_uint16()):
        while not buf.eof():
            ext_type = buf.pull_uint16()
            if ext_type in seen:
                raise AlertDecodeError("duplicate extension")
            seen.add(ext_type)
            result.append((ext_type, _pull_opaque(buf, 2)))
    return tuple(result)


def _parse_extensions(data: bytes, pos: int) -> Extensions | None:
    """Like :func:`_pull_extensions` over ``data[pos:]``, which must hold exactly the block."""
    end = len(data)
    if pos >= end:
        return None
    if end - pos < 2:
        raise BufferReadError("extensions length truncated")
    block_end = pos + 2 + ((data[pos] << 8) | data[pos + 1])
    if block_end > end:
        raise BufferReadError("extensions block truncated")
    if block_end < end:
        raise AlertDecodeError("trailing bytes in handshake message")
    pos += 2
    result: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    while pos < block_end:
        if block_end - pos < 4:
            raise BufferReadError("extension header truncated")
        ext_type = (data[pos] << 8) | data[pos + 1]
        start = pos + 4
        pos = start + ((data[pos + 2] << 8) | data[pos + 3])
        if pos > block_end:
            raise BufferReadError("extension data truncated")
        if ext_type in seen:
            raise AlertDecodeError("duplicate extension")
        seen.add(ext_type)
        result.append((ext_type, data[start:pos]))
    return tuple(result)


def _push_extensions(buf: Buffer, extensions: Extensions | None) -> None:
    if extensions is None:
        return
    inner = Buffer()
    for ext_type, data in extensions:
        inner.push_uint16(ext_type)
        _push_opaque(inner, 2, data)
    _push_opaque(buf, 2, inner.data)


def find_extension(extensions: Extensions | None, ext_type: int) -> bytes | None:
    """The data of extension ``ext_type``, or None when absent."""
    for kind, data in extensions or ():
        if kind == ext_type:
            return data
    return None


def _uint16_list(data: bytes) -> tuple[int, ...]:
    buf = Buffer(data)
    values: list[int] = []
    with buf.pull_block(buf.pull_uint16()):
        while not buf.eof():
            values.append(buf.pull_uint16())
    if not buf.eof():
        raise AlertDecodeError("trailing bytes in extension")
    return tuple(values)


def encode_uint16_list(values: tuple[int, ...]) -> bytes:
    return (2 * len(values)).to_bytes(2, "big") + b"".join(v.to_bytes(2, "big") for v in values)


def decode_uint16_list(data: bytes) -> tuple[int, ...]:
    """supported_groups / signature_algorithms bodies (RFC 8422 §5.1.1, RFC 5246 §7.4.1.4.1)."""
    return _uint16_list(data)


def decode_uint8_list(data: bytes) -> bytes:
    """ec_point_formats and certificate-type lists (RFC 8422 §5.1.2, RFC 7250 §3)."""
    buf = Buffer(data)
    values = _pull_opaque(buf, 1)
    if not buf.eof():
        raise AlertDecodeError("trailing bytes in extension")
    return values


def decode_opaque8(data: bytes) -> bytes:
    """renegotiation_info (RFC 5746 §3.2) and connection_id (RFC 9146 §3) bodies."""
    return decode_uint8_list(data)


# -- handshake framing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandshakeFragment:
    """One handshake fragment as carried in a record (RFC 6347 §4.2.2)."""

    msg_type: int
    length: int
    message_seq: int
    fragment_offset: int
    fragment: bytes


def pull_handshake_fragment(buf: Buffer) -> HandshakeFragment:
    msg_type = buf.pull_uint8()
    length = buf.pull_uint24()
    message_seq = buf.pull_uint16()
    offset = buf.pull_uint24()
    fragment = _pull_opaque(buf, 3)
    if offset + len(fragment) > length:
        raise AlertDecodeError("handshake fragment beyond message length")
    return HandshakeFragment(msg_type, length, message_seq, offset, fragment)


def encode_handshake(
    msg_type: int, message_seq: int, body: bytes, offset: int = 0, length: int | None = None
) -> bytes:
    """A handshake header plus ``body[offset:offset+length]`` (whole message by default)."""
    total = len(body)
    if length is None:
        length = total - offset
    header = _HANDSHAKE_HEADER.pack(
        (msg_type << 24) | total, message_seq, offset >> 8, ((offset & 0xFF) << 24) | length
    )
    if offset == 0 and length == total:
        return header + body
    return header + body[offset : offset + length]


# -- hello messages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientHello:
    """ClientHello (RFC 6347 §4.2.1 adds ``cookie``)."""

    random: bytes
    session_id: bytes
    cookie: bytes
    cipher_suites: tuple[int, ...]
    compression_methods: bytes = b"\x00"
    extensions: Extensions | None = None
    version: int = DTLS_1_2


def _client_hello_layout(data: bytes) -> tuple[int, int, int]:
    """Check a ClientHello body up to its compression methods and return the offsets
    ``(session_id_end, cookie_end, compression_end)``; the extensions are not looked at.

    Index arithmetic on the body rather than :class:`Buffer` calls: the server looks at every
    ClientHello it receives, spoofed or not, so this is on the path of every handshake.
    """
    end = len(data)
    if end < 35:
        raise BufferReadError("ClientHello truncated")
    pos = 35 + data[34]
    if pos + 1 > end:
        raise BufferReadError("ClientHello session_id truncated")
    session_id_end = pos
    pos += 1 + data[pos]
    if pos + 2 > end:
        raise BufferReadError("ClientHello cookie truncated")
    cookie_end = pos
    suites_length = (data[pos] << 8) | data[pos + 1]
    pos += 2 + suites_length
    if pos + 1 > end:
        raise BufferReadError("ClientHello cipher_suites truncated")
    if suites_length % 2 or not suites_length:
        raise AlertDecodeError("cipher_suites length")
    compression_length = data[pos]
    pos += 1 + compression_length
    if pos > end:
        raise BufferReadError("ClientHello compression_methods truncated")
    if session_id_end > 67 or not compression_length:
        raise AlertDecodeError("ClientHello field length")
    return session_id_end, cookie_end, pos


def client_hello_cookie_fields(data: bytes) -> tuple[bytes, bytes, bytes]:
    """``(random, cookie, parameters)`` of a ClientHello body, where ``parameters`` is the body
    up to the compression methods without the cookie field (what a cookie binds, see
    :mod:`.cookie`). Enough to answer or check a cookie: the rest is parsed once it verified.
    Raises like :func:`pull_client_hello` for a malformed body up to the compression methods.
    """
    session_id_end, cookie_end, compression_end = _client_hello_layout(data)
    return (
        data[2:34],
        data[session_id_end + 1 : cookie_end],
        data[:session_id_end] + data[cookie_end:compression_end],
    )


class InitialHello(NamedTuple):
    """The layout of a datagram starting with one whole epoch-0 ClientHello
    (:func:`initial_client_hello`); offsets are into the datagram."""

    record_seq: int
    message_seq: int
    random: bytes
    cookie: bytes
    parameters: bytes
    """The hello's wire bytes up to the compression methods without the cookie field (what the
    cookie binds)."""
    cookie_end: int
    """Where the cookie field ends in the datagram (the cipher suites' length follows)."""
    compression_end: int
    """Where the compression methods end in the datagram (the extensions, if any, follow)."""
    body_end: int
    """Where the hello ends in the datagram."""


#: The record header and the handshake header of an epoch-0 record starting with a whole
#: handshake message: type, version's first byte (its second is skipped), epoch, seq_hi, seq_lo,
#: record length, msg_type+length, message_seq, fragment_offset's high 16 bits, its low byte +
#: fragment_length (RFC 6347 §4.1, §4.2.2).
_HELLO_HEADERS = struct.Struct("!BBxHHIHIHHI")
_MAX_RECORD = MAX_FRAGMENT_LENGTH
#: The record and handshake headers, the hello's version and random, its session_id length.
_HELLO_MINIMUM = RECORD_HEADER_LENGTH + HANDSHAKE_HEADER_LENGTH + 35


_new_hello = tuple.__new__


def initial_client_hello(data: bytes) -> InitialHello | None:
    """The unfragmented epoch-0 ClientHello that starts ``data``, else None.

    Only the first record is looked at, straight from the datagram (no record or fragment
    objects), and the hello only up to its compression methods, with the checks of
    :func:`client_hello_cookie_fields`: the server runs this for every hello, spoofed or not,
    and the cookie needs no more. The connection parses the rest once the cookie verified.
    """
    if len(data) < _HELLO_MINIMUM:
        return None
    (
        content_type,
        version_major,
        epoch,
        seq_hi,
        seq_lo,
        record_length,
        type_and_length,
        message_seq,
        offset_hi,
        offset_lo_and_length,
    ) = _HELLO_HEADERS.unpack_from(data)
    length = type_and_length & 0xFFFFFF
    body_end = 25 + length
    if (
        content_type != _HANDSHAKE
        or version_major != 0xFE  # any DTLS record version (RFC 6347 §4.1)
        or epoch
        or type_and_length >> 24 != _CLIENT_HELLO
        or record_length > _MAX_RECORD  # what parse_datagram drops
        or RECORD_HEADER_LENGTH + record_length > len(data)
        or offset_hi  # offset 0 and one whole fragment:
        or offset_lo_and_length != length
        or body_end > RECORD_HEADER_LENGTH + record_length
        or body_end < _HELLO_MINIMUM
    ):
        return None
    # The body up to the compression methods (RFC 5246 §7.4.1.2, RFC 6347 §4.2.1).
    session_id_end = _HELLO_MINIMUM + data[_HELLO_MINIMUM - 1]
    if session_id_end + 1 > body_end or session_id_end > 25 + 67:  # session_id <= 32 bytes
        return None
    cookie_end = session_id_end + 1 + data[session_id_end]
    if cookie_end + 2 > body_end:
        return None
    suites_length = (data[cookie_end] << 8) | data[cookie_end + 1]
    compression_at = cookie_end + 2 + suites_length
    if compression_at + 1 > body_end or suites_length & 1 or not suites_length:
        return None
    compression_end = compression_at + 1 + data[compression_at]
    if compression_end > body_end or compression_end == compression_at + 1:
        return None
    return _new_hello(  # InitialHello(...) without its generated (Python) __new__
        InitialHello,
        (
            (seq_hi << 32) | seq_lo,
            message_seq,
            data[27:59],
            data[session_id_end + 1 : cookie_end],
            data[25:session_id_end] + data[cookie_end:compression_end],
            cookie_end,
            compression_end,
            body_end,
        ),
    )


def _parse_client_hello(data: bytes) -> ClientHello:
    """The ClientHello in ``data`` (the whole body)."""
    session_id_end, cookie_end, compression_end = _client_hello_layout(data)
    suites_end = cookie_end + 2 + ((data[cookie_end] << 8) | data[cookie_end + 1])
    return ClientHello(
        data[2:34],
        data[35:session_id_end],
        data[session_id_end + 1 : cookie_end],
        struct.unpack_from(f"!{(suites_end - cookie_end - 2) >> 1}H", data, cookie_end + 2),
        data[suites_end + 1 : compression_end],
        _parse_extensions(data, compression_end),
        (data[0] << 8) | data[1],
    )


def parse_client_hello(data: bytes) -> ClientHello:
    """A whole ClientHello body; trailing bytes after the extensions are a decode error."""
    return _parse_client_hello(bytes(data))


def pull_client_hello(buf: Buffer) -> ClientHello:
    """The ClientHello that is the rest of ``buf`` (a hello ends its message)."""
    return _parse_client_hello(buf.pull_rest())


def client_hello_parameters(hello: ClientHello) -> bytes:
    """The wire bytes of ``hello`` without its cookie field: version, random, session_id,
    cipher_suites and compression_methods with their length prefixes (what a cookie binds)."""
    return (
        hello.version.to_bytes(2, "big")
        + hello.random
        + bytes([len(hello.session_id)])
        + hello.session_id
        + encode_uint16_list(hello.cipher_suites)
        + bytes([len(hello.compression_methods)])
        + hello.compression_methods
    )


def push_client_hello(buf: Buffer, hello: ClientHello) -> None:
    buf.push_uint16(hello.version)
    buf.push_bytes(hello.random)
    _push_opaque(buf, 1, hello.session_id)
    _push_opaque(buf, 1, hello.cookie)
    _push_opaque(buf, 2, b"".join(s.to_bytes(2, "big") for s in hello.cipher_suites))
    _push_opaque(buf, 1, hello.compression_methods)
    _push_extensions(buf, hello.extensions)


@dataclass(frozen=True, slots=True)
class HelloVerifyRequest:
    """HelloVerifyRequest (RFC 6347 §4.2.1); servers send version DTLS 1.0 there."""

    version: int
    cookie: bytes


def pull_hello_verify_request(buf: Buffer) -> HelloVerifyRequest:
    version = buf.pull_uint16()
    return HelloVerifyRequest(version, _pull_opaque(buf, 1))


def push_hello_verify_request(buf: Buffer, msg: HelloVerifyRequest) -> None:
    buf.push_uint16(msg.version)
    _push_opaque(buf, 1, msg.cookie)


@dataclass(frozen=True, slots=True)
class ServerHello:
    """ServerHello (RFC 5246 §7.4.1.3)."""

    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int = 0
    extensions: Extensions | None = None
    version: int = DTLS_1_2


def pull_server_hello(buf: Buffer) -> ServerHello:
    version = buf.pull_uint16()
    random = buf.pull_bytes(32)
    session_id = _pull_opaque(buf, 1)
    if len(session_id) > 32:
        raise AlertDecodeError("session_id length")
    suite = buf.pull_uint16()
    compression = buf.pull_uint8()
    extensions = _pull_extensions(buf)
    return ServerHello(random, session_id, suite, compression, extensions, version)


def encode_server_hello(msg: ServerHello) -> bytes:
    """The ServerHello body (what :func:`push_server_hello` writes), built in one expression."""
    extensions = b""
    if msg.extensions is not None:
        inner = b""
        for ext_type, data in msg.extensions:
            inner += _EXTENSION_HEADER.pack(ext_type, len(data)) + data
        extensions = len(inner).to_bytes(2, "big") + inner
    return (
        msg.version.to_bytes(2, "big")
        + msg.random
        + bytes([len(msg.session_id)])
        + msg.session_id
        + _SUITE_COMPRESSION.pack(msg.cipher_suite, msg.compression_method)
        + extensions
    )


def server_hello_body(
    random: bytes, session_id: bytes, cipher_suite: int, extensions: list[tuple[int, bytes]]
) -> bytes:
    """A server's ServerHello body: DTLS 1.2, null compression, ``extensions`` (the block is
    written even when empty); the bytes of :func:`encode_server_hello` of that message, without
    building the :class:`ServerHello`.
    """
    inner = b"".join([_EXTENSION_HEADER.pack(t, len(data)) + data for t, data in extensions])
    return server_hello_bytes(random, session_id, cipher_suite, inner)


def server_hello_bytes(
    random: bytes, session_id: bytes, cipher_suite: int, extensions: bytes
) -> bytes:
    """:func:`server_hello_body` with the extensions already encoded (their block's content)."""
    return (
        _DTLS_1_2_BYTES
        + random
        + bytes([len(session_id)])
        + session_id
        + _SUITE_COMPRESSION.pack(cipher_suite, 0)
        + len(extensions).to_bytes(2, "big")
        + extensions
    )


def push_server_hello(buf: Buffer, msg: ServerHello) -> None:
    buf.push_bytes(encode_server_hello(msg))


# -- authentication and key exchange --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Certificate:
    """Certificate: an X.509 chain (RFC 5246 §7.4.2) or, with ``raw_public_key``, exactly one
    DER SubjectPublicKeyInfo (RFC 7250 §3). An empty tuple is "no certificate"."""

    certificates: tuple[bytes, ...]
    raw_public_key: bool = False


def pull_certificate(buf: Buffer, raw_public_key: bool) -> Certificate:
    if raw_public_key:
        spki = _pull_opaque(buf, 3)
        return Certificate((spki,) if spki else (), True)
    certs: list[bytes] = []
    with buf.pull_block(buf.pull_uint24()):
        while not buf.eof():
            cert = _pull_opaque(buf, 3)
            if not cert:
                raise AlertDecodeError("empty certificate")
            certs.append(cert)
    return Certificate(tuple(certs), False)


def push_certificate(buf: Buffer, msg: Certificate) -> None:
    if msg.raw_public_key:
        _push_opaque(buf, 3, msg.certificates[0] if msg.certificates else b"")
        return
    inner = Buffer()
    for cert in msg.certificates:
        _push_opaque(inner, 3, cert)
    _push_opaque(buf, 3, inner.data)


@dataclass(frozen=True, slots=True)
class ServerKeyExchangePsk:
    """ServerKeyExchange of plain PSK: the identity hint (RFC 4279 §2)."""

    identity_hint: bytes


def pull_server_key_exchange_psk(buf: Buffer) -> ServerKeyExchangePsk:
    return ServerKeyExchangePsk(_pull_opaque(buf, 2))


def push_server_key_exchange_psk(buf: Buffer, msg: ServerKeyExchangePsk) -> None:
    _push_opaque(buf, 2, msg.identity_hint)


@dataclass(frozen=True, slots=True)
class ServerKeyExchangeEcdhe:
    """ServerKeyExchange of ECDHE_ECDSA (RFC 8422 §5.4): named curve, point, signature."""

    named_curve: int
    public: bytes
    signature_scheme: int
    signature: bytes

    @property
    def params(self) -> bytes:
        """ServerECDHParams, the signed part after the randoms."""
        return ecdh_params(self.named_curve, self.public)


def ecdh_params(named_curve: int, public: bytes) -> bytes:
    return bytes([NAMED_CURVE]) + named_curve.to_bytes(2, "big") + bytes([len(public)]) + public


def pull_server_key_exchange_ecdhe(buf: Buffer) -> ServerKeyExchangeEcdhe:
    if buf.pull_uint8() != NAMED_CURVE:
        raise AlertDecodeError("only named curves are supported")
    curve = buf.pull_uint16()
    public = _pull_opaque(buf, 1)
    scheme = buf.pull_uint16()
    signature = _pull_opaque(buf, 2)
    return ServerKeyExchangeEcdhe(curve, public, scheme, signature)


def push_server_key_exchange_ecdhe(buf: Buffer, msg: ServerKeyExchangeEcdhe) -> None:
    buf.push_bytes(msg.params)
    buf.push_uint16(msg.signature_scheme)
    _push_opaque(buf, 2, msg.signature)


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """CertificateRequest (RFC 5246 §7.4.4)."""

    certificate_types: bytes
    signature_algorithms: tuple[int, ...]
    certificate_authorities: bytes = b""


def pull_certificate_request(buf: Buffer) -> CertificateRequest:
    types = _pull_opaque(buf, 1)
    data = _pull_opaque(buf, 2)
    if len(data) % 2:
        raise AlertDecodeError("signature_algorithms length")
    schemes = tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    authorities = _pull_opaque(buf, 2)
    return CertificateRequest(types, schemes, authorities)


def push_certificate_request(buf: Buffer, msg: CertificateRequest) -> None:
    _push_opaque(buf, 1, msg.certificate_types)
    _push_opaque(buf, 2, b"".join(s.to_bytes(2, "big") for s in msg.signature_algorithms))
    _push_opaque(buf, 2, msg.certificate_authorities)


@dataclass(frozen=True, slots=True)
class ClientKeyExchange:
    """ClientKeyExchange: the PSK identity (RFC 4279 §2) or the ECDH point (RFC 8422 §5.7)."""

    psk_identity: bytes | None = None
    ecdh_public: bytes | None = None


def pull_client_key_exchange(buf: Buffer, psk: bool) -> ClientKeyExchange:
    if psk:
        return ClientKeyExchange(psk_identity=_pull_opaque(buf, 2))
    return ClientKeyExchange(ecdh_public=_pull_opaque(buf, 1))


def push_client_key_exchange(buf: Buffer, msg: ClientKeyExchange) -> None:
    if msg.psk_identity is not None:
        _push_opaque(buf, 2, msg.psk_identity)
    else:
        _push_opaque(buf, 1, msg.ecdh_public or b"")


@dataclass(frozen=True, slots=True)
class CertificateVerify:
    """CertificateVerify (RFC 5246 §7.4.8): a digitally-signed transcript."""

    signature_scheme: int
    signature: bytes


def pull_certificate_verify(buf: Buffer) -> CertificateVerify:
    scheme = buf.pull_uint16()
    return CertificateVerify(scheme, _pull_opaque(buf, 2))


def push_certificate_verify(buf: Buffer, msg: CertificateVerify) -> None:
    buf.push_uint16(msg.signature_scheme)
    _push_opaque(buf, 2, msg.signature)


@dataclass(frozen=True, slots=True)
class Finished:
    """Finished (RFC 5246 §7.4.9); verify_data is 12 bytes for every suite here."""

    verify_data: bytes


def pull_finished(buf: Buffer) -> Finished:
    return Finished(buf.pull_bytes(12))


def push_finished(buf: Buffer, msg: Finished) -> None:
    buf.push_bytes(msg.verify_data)


def connection_id_extension(cid: bytes) -> tuple[int, bytes]:
    """The connection_id extension (RFC 9146 §3)."""
    return _ET.CONNECTION_ID, bytes([len(cid)]) + cid


def supported_groups_extension() -> tuple[int, bytes]:
    return _ET.SUPPORTED_GROUPS, encode_uint16_list((_NG.SECP256R1,))
