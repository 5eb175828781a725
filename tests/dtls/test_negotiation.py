"""Hello negotiation edge cases: every defective ServerHello / ClientHello gets its alert."""

from __future__ import annotations

import pytest

from lwm2m.buffer import Buffer
from lwm2m.dtls import (
    AlertDescription,
    ConnectionClosed,
    DtlsConfiguration,
    DtlsConnection,
    DtlsSession,
)
from lwm2m.dtls import messages as m
from lwm2m.dtls.constants import CipherSuite, ContentType, ExtensionType, HandshakeType
from lwm2m.dtls.handshake import SessionCache
from lwm2m.dtls.record import encode_record, parse_datagram

from .helpers import CLIENT_ADDRESS, dtls_server, psk_client, rpk_pair

CCM8 = CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
EMS = (ExtensionType.EXTENDED_MASTER_SECRET, b"")


def _alert(connection: DtlsConnection) -> int | None:
    while (event := connection.next_event()) is not None:
        if isinstance(event, ConnectionClosed):
            return event.alert
    return None


def _server_hello(hello: m.ServerHello, trailing: bytes = b"") -> bytes:
    body = Buffer()
    m.push_server_hello(body, hello)
    fragment = m.encode_handshake(HandshakeType.SERVER_HELLO, 0, body.data + trailing)
    return encode_record(ContentType.HANDSHAKE, 0xFEFD, 0, 0, fragment)


def _client(**config: object) -> DtlsConnection:
    client = psk_client(**config)
    client.connect(0.0)
    client.datagrams_to_send(0.0)
    return client


R = bytes(32)


@pytest.mark.parametrize(
    ("hello", "alert"),
    [
        (m.ServerHello(R, b"", CCM8, version=0xFEFF), AlertDescription.PROTOCOL_VERSION),
        (m.ServerHello(R, b"", 0x1301), AlertDescription.ILLEGAL_PARAMETER),
        (m.ServerHello(R, b"", 0x00FF), AlertDescription.ILLEGAL_PARAMETER),
        (m.ServerHello(R, b"", CCM8, 1), AlertDescription.ILLEGAL_PARAMETER),
        (
            m.ServerHello(R, b"", CCM8, 0, ((ExtensionType.RENEGOTIATION_INFO, b"\x01\x00"),)),
            AlertDescription.HANDSHAKE_FAILURE,
        ),
        (
            m.ServerHello(R, b"", CCM8, 0, ((ExtensionType.EXTENDED_MASTER_SECRET, b"\x00"),)),
            AlertDescription.DECODE_ERROR,
        ),
        (m.ServerHello(R, b"", CCM8, 0, (EMS, EMS)), AlertDescription.DECODE_ERROR),
    ],
)
def test_defective_server_hello(hello: m.ServerHello, alert: int) -> None:
    client = _client()
    client.receive_datagram(_server_hello(hello), 0.0)
    assert _alert(client) == alert


def test_server_hello_trailing_bytes_and_epoch_rules() -> None:
    client = _client()
    client.receive_datagram(_server_hello(m.ServerHello(R, b"", CCM8), b"\x00\x00\x00"), 0.0)
    assert _alert(client) == AlertDescription.DECODE_ERROR
    # HelloRequest during a handshake is ignored (RFC 5246 §7.4.1.1) ...
    client = _client()
    request = m.encode_handshake(HandshakeType.HELLO_REQUEST, 0, b"")
    client.receive_datagram(encode_record(22, 0xFEFD, 0, 0, request), 0.0)
    assert client.next_event() is None
    # ... a Finished in epoch 0 is not.
    finished = m.encode_handshake(HandshakeType.FINISHED, 1, bytes(12))
    client.receive_datagram(encode_record(22, 0xFEFD, 0, 1, finished), 0.0)
    assert _alert(client) == AlertDescription.UNEXPECTED_MESSAGE


def test_client_requiring_extended_master_secret() -> None:
    client = _client(require_extended_master_secret=True)
    client.receive_datagram(_server_hello(m.ServerHello(R, b"", CCM8)), 0.0)
    assert _alert(client) == AlertDescription.HANDSHAKE_FAILURE


@pytest.mark.parametrize(
    ("suite", "ems", "alert"),
    [
        (CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256, True, AlertDescription.ILLEGAL_PARAMETER),
        (CCM8, False, AlertDescription.HANDSHAKE_FAILURE),
    ],
)
def test_resumption_must_keep_suite_and_ems(suite: int, ems: bool, alert: int) -> None:
    session = DtlsSession(b"s" * 32, CCM8, bytes(48), True, None)
    client = _client(session=session)
    extensions = (EMS,) if ems else None
    client.receive_datagram(_server_hello(m.ServerHello(R, b"s" * 32, suite, 0, extensions)), 0.0)
    assert _alert(client) == alert


@pytest.mark.parametrize(
    ("data", "alert"),
    [(b"\x02\x02", AlertDescription.DECODE_ERROR), (b"\x00", AlertDescription.ILLEGAL_PARAMETER)],
)
def test_certificate_type_answers(data: bytes, alert: int) -> None:
    client_credentials, _ = rpk_pair()
    client = DtlsConnection(configuration=DtlsConfiguration(), credentials=client_credentials)
    client.connect(0.0)
    client.datagrams_to_send(0.0)
    hello = m.ServerHello(
        R,
        b"",
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
        0,
        ((ExtensionType.SERVER_CERTIFICATE_TYPE, data),),
    )
    client.receive_datagram(_server_hello(hello), 0.0)
    assert _alert(client) == alert


def _client_hello(hello: m.ClientHello) -> bytes:
    body = Buffer()
    m.push_client_hello(body, hello)
    fragment = m.encode_handshake(HandshakeType.CLIENT_HELLO, 0, body.data)
    return encode_record(ContentType.HANDSHAKE, 0xFEFD, 0, 0, fragment)


def _server_reply(hello: m.ClientHello, credentials: object = None) -> bytes:
    server = dtls_server(credentials, require_cookie=False)  # type: ignore[arg-type]
    server.receive_datagram(_client_hello(hello), CLIENT_ADDRESS, 0.0)
    ((reply, _),) = server.datagrams_to_send(0.0)
    return reply


ECDHE = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8


@pytest.mark.parametrize(
    ("hello", "alert"),
    [
        (m.ClientHello(R, b"", b"", (CCM8,), version=0xFEFF), AlertDescription.PROTOCOL_VERSION),
        (m.ClientHello(R, b"", b"", (CCM8,), version=0x0303), AlertDescription.PROTOCOL_VERSION),
        (m.ClientHello(R, b"", b"", (CCM8,), b"\x01"), AlertDescription.ILLEGAL_PARAMETER),
        (
            m.ClientHello(
                R, b"", b"", (CCM8,), b"\x00", ((ExtensionType.RENEGOTIATION_INFO, b"\x01\x00"),)
            ),
            AlertDescription.HANDSHAKE_FAILURE,
        ),
        (
            m.ClientHello(
                R, b"", b"", (CCM8,), b"\x00", ((ExtensionType.EXTENDED_MASTER_SECRET, b"\x01"),)
            ),
            AlertDescription.DECODE_ERROR,
        ),
        (m.ClientHello(R, b"", b"", (0x1301, 0xFFFF)), AlertDescription.HANDSHAKE_FAILURE),
    ],
)
def test_defective_client_hello(hello: m.ClientHello, alert: int) -> None:
    (record,) = parse_datagram(_server_reply(hello))
    assert record.fragment == bytes([2, alert])


@pytest.mark.parametrize(
    "extension",
    [
        (ExtensionType.SUPPORTED_GROUPS, m.encode_uint16_list((24,))),
        (ExtensionType.EC_POINT_FORMATS, b"\x01\x01"),
        (ExtensionType.SIGNATURE_ALGORITHMS, m.encode_uint16_list((0x0503,))),
        (ExtensionType.SERVER_CERTIFICATE_TYPE, b"\x01\x00"),  # X.509 wanted, raw key only here
        (ExtensionType.CLIENT_CERTIFICATE_TYPE, b"\x01\x00"),  # X.509 offered, raw key verifier
    ],
)
def test_ecdhe_not_possible_without_common_parameters(extension: tuple[int, bytes]) -> None:
    _, server_credentials = rpk_pair()
    hello = m.ClientHello(
        R,
        b"",
        b"",
        (ECDHE,),
        b"\x00",
        ((ExtensionType.SERVER_CERTIFICATE_TYPE, b"\x01\x02"), extension)
        if extension[0] != ExtensionType.SERVER_CERTIFICATE_TYPE
        else (extension,),
    )
    (record,) = parse_datagram(_server_reply(hello, server_credentials))
    assert record.fragment == bytes([2, AlertDescription.HANDSHAKE_FAILURE])


def test_session_cache_lru() -> None:
    cache = SessionCache(2)
    sessions = [DtlsSession(bytes([n]) * 32, CCM8, bytes(48), True, None) for n in range(3)]
    cache.put(sessions[0])
    cache.put(sessions[1])
    assert cache.get(sessions[0].session_id) is sessions[0]  # now most recently used
    cache.put(sessions[2])
    assert cache.get(sessions[1].session_id) is None
    assert len(cache) == 2
    assert repr(cache) == "SessionCache(2/2)"
    cache.put(sessions[0])  # stored again: most recently used, nothing evicted
    cache.put(sessions[1])
    assert cache.get(sessions[2].session_id) is None
    assert cache.get(sessions[0].session_id) is sessions[0]
    disabled = SessionCache(0)
    disabled.put(sessions[0])
    assert len(disabled) == 0
