"""Handshakes between our client and our server in memory: PSK, resumption, EMS, CID, alerts."""

from __future__ import annotations

import io

import pytest

from lwm2m.buffer import Buffer
from lwm2m.dtls import (
    AlertDescription,
    AlertReceived,
    ApplicationData,
    CipherSuite,
    ConnectionClosed,
    ConnectionState,
    DtlsConfiguration,
    DtlsConnection,
    DtlsCredentials,
    DtlsStateError,
    HandshakeCompleted,
    PeerAddressChanged,
    PskIdentity,
    SoftwarePsk,
    SoftwarePskStore,
)
from lwm2m.dtls import messages as m
from lwm2m.dtls.constants import ContentType, ExtensionType, HandshakeType
from lwm2m.dtls.record import encode_record, parse_datagram

from .helpers import (
    CLIENT_ADDRESS,
    PSK,
    PSK_IDENTITY,
    PSK_SUITES,
    FakeClock,
    Link,
    dtls_server,
    psk_client,
    psk_server_credentials,
)


def closed(events: list[object]) -> ConnectionClosed | None:
    return next((e for e in events if isinstance(e, ConnectionClosed)), None)


@pytest.mark.parametrize("suite", PSK_SUITES)
def test_psk_handshake_and_application_data(suite: int) -> None:
    link = Link(psk_client(cipher_suites=(suite,)), dtls_server())
    link.run()
    client_done = link.completed(link.client_events)
    server_done = link.completed(link.server_events)
    assert client_done is not None
    assert server_done is not None
    assert client_done.cipher_suite == server_done.cipher_suite == suite
    assert server_done.peer_identity == PskIdentity(PSK_IDENTITY)
    assert client_done.peer_identity == PskIdentity(PSK_IDENTITY)
    assert client_done.extended_master_secret
    assert server_done.extended_master_secret
    assert not client_done.session_resumed
    assert client_done.session is not None
    assert client_done.session.master_secret.hex() not in repr(client_done.session)
    assert " master_secret" not in repr(client_done.session)
    assert link.exchange(b"ping") == (b"ping", b"gnip")
    assert link.client.state is ConnectionState.ESTABLISHED
    assert link.client.peer_identity == PskIdentity(PSK_IDENTITY)
    assert len(link.server) == 1
    # close_notify both ways, then both sides are closed.
    link.client.close()
    link.pump()
    assert closed(link.client_events) == ConnectionClosed(0, False, "closed locally")
    server_closed = closed(link.server_events)
    assert server_closed is not None
    assert server_closed.by_peer
    assert server_closed.alert == AlertDescription.CLOSE_NOTIFY
    assert len(link.server) == 0
    link.client.close()  # idempotent
    with pytest.raises(DtlsStateError):
        link.client.send(b"late")


def test_identity_hint_is_reported() -> None:
    credentials = DtlsCredentials(
        psk_store=SoftwarePskStore({PSK_IDENTITY: PSK}), psk_identity_hint=b"hint"
    )
    link = Link(psk_client(), dtls_server(credentials))
    link.run()
    done = link.completed(link.client_events)
    assert done is not None
    assert done.psk_identity_hint == b"hint"


@pytest.mark.parametrize(
    ("hide", "expected"),
    [(False, AlertDescription.UNKNOWN_PSK_IDENTITY), (True, AlertDescription.DECRYPT_ERROR)],
)
def test_unknown_psk_identity(hide: bool, expected: int) -> None:
    client = DtlsConnection(
        configuration=DtlsConfiguration(),
        credentials=DtlsCredentials(psk=SoftwarePsk(b"stranger", PSK)),
    )
    link = Link(client, dtls_server(hide_unknown_psk_identity=hide))
    link.run()
    assert link.completed(link.server_events) is None
    server_closed = closed(link.server_events)
    assert server_closed is not None
    assert server_closed.alert == expected
    client_closed = closed(link.client_events)
    assert client_closed is not None
    assert client_closed.by_peer
    assert client_closed.alert == expected
    assert AlertReceived(2, expected) in link.client_events
    assert len(link.server) == 0


def test_wrong_psk_fails_finished_with_decrypt_error() -> None:
    client = DtlsConnection(
        configuration=DtlsConfiguration(),
        credentials=DtlsCredentials(psk=SoftwarePsk(PSK_IDENTITY, b"wrong key")),
    )
    link = Link(client, dtls_server())
    link.run()
    server_closed = closed(link.server_events)
    assert server_closed is not None
    assert server_closed.alert == AlertDescription.DECRYPT_ERROR


def test_no_common_cipher_suite() -> None:
    link = Link(
        psk_client(cipher_suites=(CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,)),
        dtls_server(cipher_suites=(CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256,)),
    )
    link.run()
    client_closed = closed(link.client_events)
    assert client_closed is not None
    assert client_closed.alert == AlertDescription.HANDSHAKE_FAILURE


def test_client_without_usable_suite_cannot_connect() -> None:
    client = DtlsConnection(configuration=DtlsConfiguration(), credentials=DtlsCredentials())
    with pytest.raises(DtlsStateError):
        client.connect(0.0)
    server = DtlsConnection(
        configuration=DtlsConfiguration(is_client=False), credentials=psk_server_credentials()
    )
    with pytest.raises(DtlsStateError):
        server.connect(0.0)
    ok = psk_client()
    ok.connect(0.0)
    with pytest.raises(DtlsStateError):
        ok.connect(0.0)
    with pytest.raises(DtlsStateError):
        ok.send(b"too early")


def test_resumption_abbreviated_handshake() -> None:
    server = dtls_server()
    first = Link(psk_client(), server)
    first.run()
    done = first.completed(first.client_events)
    assert done is not None
    assert done.session is not None
    assert len(server.session_cache) == 1
    second = Link(psk_client(session=done.session), server, address=("10.0.0.9", 1))
    second.run()
    client_done = second.completed(second.client_events)
    server_done = second.completed(second.server_events)
    assert client_done is not None
    assert server_done is not None
    assert client_done.session_resumed
    assert server_done.session_resumed
    assert server_done.peer_identity == PskIdentity(PSK_IDENTITY)
    assert client_done.cipher_suite == done.cipher_suite
    assert second.exchange(b"again") == (b"again", b"niaga")


def test_resumption_falls_back_to_full_handshake_when_evicted() -> None:
    server = dtls_server(session_cache_size=1)
    sessions = []
    for n in range(2):
        link = Link(psk_client(), server, address=("10.0.0.1", n))
        link.run()
        done = link.completed(link.client_events)
        assert done is not None
        sessions.append(done.session)
    assert len(server.session_cache) == 1
    link = Link(psk_client(session=sessions[1]), server, address=("10.0.0.1", 9))
    link.run()
    done = link.completed(link.client_events)
    assert done is not None
    assert done.session_resumed
    link = Link(psk_client(session=sessions[0]), server, address=("10.0.0.1", 10))
    link.run()
    done = link.completed(link.client_events)
    assert done is not None
    assert not done.session_resumed


def test_resumption_disabled_cache_gives_no_session() -> None:
    link = Link(psk_client(), dtls_server(session_cache_size=0))
    link.run()
    done = link.completed(link.client_events)
    assert done is not None
    assert done.session is None


@pytest.mark.parametrize("client_cid", [b"", b"\x07\x08"])
def test_connection_id_routing_and_address_change(client_cid: bytes) -> None:
    server = dtls_server(connection_id_length=4)
    link = Link(psk_client(connection_id=client_cid), server)
    link.run()
    client_done = link.completed(link.client_events)
    server_done = link.completed(link.server_events)
    assert client_done is not None
    assert server_done is not None
    assert client_done.peer_connection_id is not None
    assert len(client_done.peer_connection_id) == 4
    assert server_done.connection_id == client_done.peer_connection_id
    assert server_done.peer_connection_id == client_cid
    assert client_done.connection_id == client_cid
    link.client.send(b"via cid")
    (datagram,) = link.client.datagrams_to_send(0.0)
    assert datagram[0] == ContentType.TLS12_CID
    assert datagram[11:15] == client_done.peer_connection_id
    # The client's NAT binding changes: the authenticated CID record moves the connection.
    new_address = ("192.0.2.7", 999)
    server.receive_datagram(datagram, new_address, link.clock.now)
    events = []
    while (event := server.next_event()) is not None:
        events.append(event)
    assert [type(e.event) for e in events] == [PeerAddressChanged, ApplicationData]
    assert events[0].event == PeerAddressChanged(CLIENT_ADDRESS, new_address)
    assert server.connection_for(new_address) is events[0].connection
    assert server.connection_for(CLIENT_ADDRESS) is None
    # A replay of the same record from a third address moves nothing.
    server.receive_datagram(datagram, ("203.0.113.1", 1), link.clock.now)
    assert server.next_event() is None
    assert server.address_of(events[0].connection) == new_address
    # Replies go to the new address, with the client's CID when it asked for one.
    server.send(new_address, b"back")
    ((reply, to),) = server.datagrams_to_send(link.clock.now)
    assert to == new_address
    assert (reply[0] == ContentType.TLS12_CID) == bool(client_cid)
    link.client.receive_datagram(reply, link.clock.now)
    assert link.client.next_event() == ApplicationData(b"back")
    # Unknown CIDs and CID records too short to route are dropped.
    server.receive_datagram(datagram[:11] + b"\x00\x00\x00\x00" + datagram[15:], new_address, 0)
    server.receive_datagram(datagram[:12], new_address, 0)
    assert server.next_event() is None


def test_connection_id_not_negotiated_when_server_disables_it() -> None:
    link = Link(psk_client(connection_id=b""), dtls_server())
    link.run()
    done = link.completed(link.client_events)
    assert done is not None
    assert done.peer_connection_id is None
    assert done.connection_id is None


def test_key_log_written_only_when_permitted() -> None:
    client_log, server_log = io.StringIO(), io.StringIO()
    link = Link(
        psk_client(key_log=client_log),
        dtls_server(key_log=server_log),
    )
    link.run()
    line = client_log.getvalue()
    assert line == server_log.getvalue()
    label, client_random, master = line.split()
    assert label == "CLIENT_RANDOM"
    assert len(bytes.fromhex(client_random)) == 32
    assert len(bytes.fromhex(master)) == 48


class _HardwarePsk:
    """A credential that, like a Secure Element, refuses key logging."""

    key_log_permitted = False

    def __init__(self) -> None:
        self._inner = SoftwarePsk(PSK_IDENTITY, PSK)

    @property
    def identity(self) -> bytes:
        return PSK_IDENTITY

    def derive_master_secret(self, label: bytes, seed: bytes) -> bytes:
        return self._inner.derive_master_secret(label, seed)


def test_key_log_refused_by_hardware_credential() -> None:
    client_log, server_log = io.StringIO(), io.StringIO()
    store = SoftwarePskStore()
    store.add(_HardwarePsk())
    client = DtlsConnection(
        configuration=DtlsConfiguration(key_log=client_log),
        credentials=DtlsCredentials(psk=_HardwarePsk()),
    )
    link = Link(client, dtls_server(DtlsCredentials(psk_store=store), key_log=server_log))
    link.run()
    assert link.completed(link.client_events) is not None
    assert client_log.getvalue() == ""
    assert server_log.getvalue() == ""


def _epoch1_handshake(connection: DtlsConnection, msg_type: int, seq: int, body: bytes) -> bytes:
    protection = connection._write_protection
    assert protection is not None
    record_seq = connection._write_seq[1]
    connection._write_seq[1] += 1
    return protection.encrypt(
        ContentType.HANDSHAKE, 0xFEFD, 1, record_seq, m.encode_handshake(msg_type, seq, body)
    )


def test_renegotiation_is_refused_both_ways() -> None:
    link = Link(psk_client(), dtls_server())
    link.run()
    server_connection = link.server.connection_for(CLIENT_ADDRESS)
    assert server_connection is not None
    # Client-initiated renegotiation: a ClientHello under epoch 1.
    hello = Buffer()
    m.push_client_hello(hello, m.ClientHello(bytes(32), b"", b"", (0xC0A8,)))
    link.server.receive_datagram(
        _epoch1_handshake(link.client, HandshakeType.CLIENT_HELLO, 5, hello.data),
        CLIENT_ADDRESS,
        link.clock.now,
    )
    link.pump()
    assert AlertReceived(1, AlertDescription.NO_RENEGOTIATION) in link.client_events
    # Server-initiated: HelloRequest (message_seq 0 in a rehandshake, RFC 6347 §4.2.2).
    link.client.receive_datagram(
        _epoch1_handshake(server_connection, HandshakeType.HELLO_REQUEST, 0, b""), link.clock.now
    )
    link.pump()
    assert AlertReceived(1, AlertDescription.NO_RENEGOTIATION) in link.server_events
    assert link.exchange(b"still fine") == (b"still fine", b"enif llits")
    # Any other new handshake message after the handshake is a fatal unexpected_message.
    link.client.receive_datagram(
        _epoch1_handshake(server_connection, HandshakeType.SERVER_HELLO_DONE, 9, b""),
        link.clock.now,
    )
    link.pump()
    client_closed = closed(link.client_events)
    assert client_closed is not None
    assert client_closed.alert == AlertDescription.UNEXPECTED_MESSAGE


def test_record_size_limits() -> None:
    link = Link(psk_client(max_datagram_size=300), dtls_server(max_record_plaintext=100))
    link.run()
    limit = link.client.max_application_data
    assert limit == 300 - 13 - 17
    with pytest.raises(DtlsStateError):
        link.client.send(bytes(limit + 1))
    link.client.send(bytes(limit))  # fits the datagram, exceeds the server's plaintext limit
    link.pump()
    server_closed = closed(link.server_events)
    assert server_closed is not None
    assert server_closed.alert == AlertDescription.RECORD_OVERFLOW


def test_handshake_timeout_after_doubling_retransmissions() -> None:
    clock = FakeClock(0.0)
    client = psk_client(max_retransmissions=7)
    client.connect(clock.now)
    sent_at = []
    while client.state is not ConnectionState.CLOSED:
        if client.datagrams_to_send(clock.now):
            sent_at.append(clock.now)
        timer = client.get_timer()
        assert timer is not None
        clock.now = timer
        client.handle_timer(clock.now)
    assert sent_at == [0, 1, 3, 7, 15, 31, 63, 123]  # 1 s doubling, capped at 60 s
    event = None
    while (e := client.next_event()) is not None:
        event = e
    assert event == ConnectionClosed(None, False, "handshake timeout")
    assert client.get_timer() is None
    client.handle_timer(10_000.0)
    client.receive_datagram(b"ignored", 10_000.0)


def test_alert_from_peer_during_handshake_closes() -> None:
    client = psk_client()
    client.connect(0.0)
    client.datagrams_to_send(0.0)
    client.receive_datagram(encode_record(ContentType.ALERT, 0xFEFD, 0, 0, b"\x01\x5a"), 0.0)
    assert client.next_event() == AlertReceived(1, 90)  # a warning: carry on
    client.receive_datagram(encode_record(ContentType.ALERT, 0xFEFD, 0, 1, b"\x02\x28"), 0.0)
    assert client.next_event() == AlertReceived(2, 40)
    assert client.next_event() == ConnectionClosed(40, True, "fatal alert received")


def test_established_connection_ignores_unauthenticated_alerts() -> None:
    link = Link(psk_client(), dtls_server())
    link.run()
    link.client.receive_datagram(encode_record(ContentType.ALERT, 0xFEFD, 0, 77, b"\x02\x28"), 0)
    assert link.client.state is ConnectionState.ESTABLISHED


def test_server_without_ems_support_from_client() -> None:
    """A ClientHello without extended_master_secret gets a ServerHello without it (RFC 7627),
    or handshake_failure when the server requires it."""
    hello = Buffer()
    m.push_client_hello(
        hello,
        m.ClientHello(
            bytes(32), b"", b"", (CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,), b"\x00", None
        ),
    )
    datagram = encode_record(
        ContentType.HANDSHAKE, 0xFE00, 0, 0, m.encode_handshake(1, 0, hello.data)
    )
    for required, expect_alert in ((False, None), (True, AlertDescription.HANDSHAKE_FAILURE)):
        server = dtls_server(require_cookie=False, require_extended_master_secret=required)
        server.receive_datagram(datagram, CLIENT_ADDRESS, 0.0)
        ((reply, _),) = server.datagrams_to_send(0.0)
        (record, *_rest) = parse_datagram(reply)
        if expect_alert is None:
            fragment = m.pull_handshake_fragment(Buffer(record.fragment))
            assert fragment.msg_type == HandshakeType.SERVER_HELLO
            server_hello = m.pull_server_hello(Buffer(fragment.fragment))
            assert (
                m.find_extension(server_hello.extensions, ExtensionType.EXTENDED_MASTER_SECRET)
                is None
            )
            assert (
                m.find_extension(server_hello.extensions, ExtensionType.RENEGOTIATION_INFO) is None
            )
        else:
            assert record.content_type == ContentType.ALERT
            assert record.fragment == bytes([2, expect_alert])


def test_completed_event_fields_for_plain_server_connection() -> None:
    """A server DtlsConnection can be used without the demultiplexer (no cookie exchange)."""
    server = DtlsConnection(
        configuration=DtlsConfiguration(is_client=False), credentials=psk_server_credentials()
    )
    client = psk_client()
    client.connect(0.0)
    for _ in range(5):
        for d in client.datagrams_to_send(0.0):
            server.receive_datagram(d, 0.0)
        for d in server.datagrams_to_send(0.0):
            client.receive_datagram(d, 0.0)
    assert isinstance(server.next_event(), HandshakeCompleted)
    assert server.peer_connection_id is None
    assert repr(server) == "<DtlsConnection server ESTABLISHED>"
