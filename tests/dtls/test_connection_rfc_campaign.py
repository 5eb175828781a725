"""RFC behaviour of :class:`DtlsConnection` (a test campaign against the RFCs it claims).

RFC 6347 (record layer, epochs, anti-replay §4.1.2.6, invalid records §4.1.2.7, retransmission
§4.2.4, HelloVerifyRequest §4.2.1, message_seq §4.2.2, reassembly §4.2.3), RFC 5246 (alerts §7.2,
unexpected record types §6, renegotiation §7.4.1.1), RFC 7627 §5.3, RFC 5746 §3, RFC 9146
(connection IDs), RFC 6655 / RFC 7251 (CCM_8) and RFC 4279 (PSK identities). Every test drives
the sans-IO API on the fake clock; tests marked ``xfail`` document a deviation found.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import pytest

from lwm2m.buffer import Buffer
from lwm2m.dtls import (
    AlertReceived,
    ApplicationData,
    ConnectionClosed,
    ConnectionState,
    DtlsConfiguration,
    DtlsConnection,
    DtlsCredentials,
    DtlsEvent,
    DtlsServer,
    HandshakeCompleted,
    SoftwarePsk,
    SoftwarePskStore,
)
from lwm2m.dtls import messages as m
from lwm2m.dtls.connection import random_connection_id
from lwm2m.dtls.constants import (
    DTLS_1_0,
    DTLS_1_2,
    AlertDescription,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
)
from lwm2m.dtls.events import DtlsSession
from lwm2m.dtls.record import RawRecord, encode_record, parse_datagram
from lwm2m.dtls.trust import PskIdentity

from .helpers import (
    CLIENT_ADDRESS,
    PSK,
    FakeClock,
    Link,
    dtls_server,
    psk_client,
    psk_server_credentials,
    rpk_pair,
)

CCM8 = CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
CBC = CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256
ECDHE_CCM8 = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8
SCSV = CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV
WARNING, FATAL = 1, 2
AD = AlertDescription
HT = HandshakeType
CT = ContentType


# -- helpers --------------------------------------------------------------------------------------


def drain(connection: DtlsConnection) -> list[DtlsEvent]:
    events = []
    while (event := connection.next_event()) is not None:
        events.append(event)
    return events


def established(**server_config: object) -> tuple[Link, DtlsConnection]:
    """A PSK link after the handshake and one exchange (the server's linger is over)."""
    link = Link(psk_client(), dtls_server(**server_config))  # type: ignore[arg-type]
    link.run()
    assert link.exchange(b"warm-up") == (b"warm-up", b"pu-mraw")
    connection = link.server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    return link, connection


def lingering() -> tuple[Link, DtlsConnection]:
    """A PSK link right after the handshake: the server still keeps its last flight."""
    link = Link(psk_client(), dtls_server())
    link.run()
    connection = link.server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    assert connection.state is ConnectionState.ESTABLISHED
    assert connection._flight is not None  # lingering (RFC 6347 §4.2.4)
    return link, connection


def sealed_at(sender: DtlsConnection, seq: int, data: bytes) -> bytes:
    """An application-data record of ``sender`` with the record sequence number ``seq``."""
    sender._write_seq[1] = seq
    return sender.seal(data)


def handshake_messages(datagrams: Iterable[bytes]) -> list[m.HandshakeFragment]:
    """The epoch-0 handshake fragments of ``datagrams`` in order."""
    fragments = []
    for datagram in datagrams:
        for record in parse_datagram(datagram):
            if record.epoch == 0 and record.content_type == CT.HANDSHAKE:
                buf = Buffer(record.fragment)
                while not buf.eof():
                    fragments.append(m.pull_handshake_fragment(buf))
    return fragments


def closed(events: Iterable[object]) -> ConnectionClosed | None:
    return next((e for e in events if isinstance(e, ConnectionClosed)), None)


# -- record layer: anti-replay (RFC 6347 §4.1.2.6) ------------------------------------------------


def _accepts(connection: DtlsConnection, datagram: bytes, path: str) -> bytes | None:
    if path == "fast":
        return connection.open_record(datagram)
    connection.receive_datagram(datagram, 0.0)
    events = drain(connection)
    data = [e.data for e in events if isinstance(e, ApplicationData)]
    assert len(data) <= 1
    return data[0] if data else None


@pytest.mark.parametrize("path", ["general", "fast"])
def test_replay_window_is_64_records_wide_and_rejects_duplicates(path: str) -> None:
    """RFC 6347 §4.1.2.6: a sliding window of (at least) 32, here 64 records; duplicates and
    records left of the window are rejected, unseen records inside it accepted."""
    link, connection = established()
    client = link.client
    assert _accepts(connection, sealed_at(client, 100, b"100"), path) == b"100"
    duplicate = sealed_at(client, 100, b"100")
    assert _accepts(connection, duplicate, path) is None
    assert _accepts(connection, sealed_at(client, 37, b"37"), path) == b"37"  # 63 behind
    assert _accepts(connection, sealed_at(client, 36, b"36"), path) is None  # 64 behind
    assert _accepts(connection, sealed_at(client, 99, b"99"), path) == b"99"
    assert _accepts(connection, sealed_at(client, 99, b"99"), path) is None
    assert connection.highest_authenticated_record == (1, 100)
    assert connection.state is ConnectionState.ESTABLISHED


@pytest.mark.parametrize("path", ["general", "fast"])
def test_records_failing_authentication_do_not_move_the_window(path: str) -> None:
    """RFC 6347 §4.1.2.6: the window is updated only after the MAC verified; §4.1.2.7: invalid
    records are silently discarded (also with a small sequence number after the handshake)."""
    link, connection = established()
    client = link.client
    for seq in (10_000, 3):
        record = sealed_at(client, seq, b"forged")
        forged = record[:-1] + bytes([record[-1] ^ 0x01])
        assert _accepts(connection, forged, path) is None
    assert connection.highest_authenticated_record < (1, 10_000)
    # Had the forgery advanced the window, seq 5 would now be too old.
    assert _accepts(connection, sealed_at(client, 5, b"five"), path) == b"five"
    assert connection.state is ConnectionState.ESTABLISHED
    assert connection.datagrams_to_send(0.0) == []


def test_records_of_other_epochs_and_versions_are_dropped() -> None:
    """RFC 6347 §4.1: records of an epoch without keys (no renegotiation: epoch 2) and epoch-1
    records whose version is not DTLS 1.2 are discarded, even when they authenticate."""
    link, connection = established()
    protection = link.client._write_protection
    assert protection is not None
    for version, epoch in ((DTLS_1_2, 2), (DTLS_1_0, 1)):
        record = protection.encrypt(CT.APPLICATION_DATA, version, epoch, 700, b"odd")
        connection.receive_datagram(record, 0.0)
        assert drain(connection) == []
    assert connection.highest_authenticated_record < (1, 700)
    assert connection.state is ConnectionState.ESTABLISHED


def test_unknown_content_type_under_the_keys_is_an_encrypted_unexpected_message() -> None:
    """RFC 5246 §6: an unexpected record type gets an unexpected_message alert; on an established
    association the alert is protected under the current epoch (RFC 6347 §4.1), so the peer
    authenticates it and closes."""
    link, connection = established()
    connection.receive_datagram(link.client._protect(99, b"??", 1), 0.0)
    events = drain(connection)
    assert closed(events) == ConnectionClosed(
        AD.UNEXPECTED_MESSAGE, False, "unexpected content type 99"
    )
    (alert,) = connection.datagrams_to_send(0.0)
    (record,) = parse_datagram(alert)
    assert (record.content_type, record.epoch) == (CT.ALERT, 1)
    link.client.receive_datagram(alert, 0.0)
    client_events = drain(link.client)
    assert AlertReceived(FATAL, AD.UNEXPECTED_MESSAGE) in client_events
    client_closed = closed(client_events)
    assert client_closed is not None
    assert (client_closed.alert, client_closed.by_peer) == (AD.UNEXPECTED_MESSAGE, True)
    assert link.client.datagrams_to_send(0.0) == []  # no answer to a fatal alert (§7.2.2)


def test_unauthenticated_application_data_is_ignored_during_the_handshake() -> None:
    """RFC 6347 §4.1.2.7 / RFC 5246 §6.2.1: epoch-0 application data is unprotected and not
    allowed; it is dropped without harming the handshake in progress."""
    link = Link(psk_client(), dtls_server())
    link.client.connect(link.clock.now)
    link.client.receive_datagram(encode_record(CT.APPLICATION_DATA, DTLS_1_2, 0, 0, b"hi"), 0.0)
    assert drain(link.client) == []
    assert link.client.state is ConnectionState.HANDSHAKING
    link.run(connect=False)
    assert link.completed(link.client_events) is not None
    assert not any(isinstance(e, ApplicationData) for e in link.client_events)


def test_application_data_overtaking_the_finished_is_not_delivered() -> None:
    """RFC 5246 §7.4.9: application data only once the peer's Finished verified. In a resumed
    handshake the client may send data right after its Finished; when it overtakes the Finished
    the server drops it (RFC 6347 §4.1 lets it discard), never delivering it unauthenticated."""
    server = dtls_server()
    first = Link(psk_client(), server)
    first.run()
    completed = first.completed(first.client_events)
    assert completed is not None
    assert completed.session is not None
    address = ("10.0.0.2", 1)
    held: list[bytes] = []
    link = Link(psk_client(session=completed.session), server, address=address)
    # The client's final flight of the abbreviated handshake (datagram 4) is held back.
    link.mutate = lambda d: (held.append(d.data), [])[1] if d.index == 4 else [d]
    link.client.connect(link.clock.now)
    link.pump()
    resumed = link.completed(link.client_events)
    assert resumed is not None
    assert resumed.session_resumed
    assert held
    link.client.send(b"early")
    (early,) = link.client.datagrams_to_send(link.clock.now)
    server.receive_datagram(early, address, link.clock.now)
    connection = server.connection_for(address)
    assert connection is not None
    assert connection.state is ConnectionState.HANDSHAKING
    server.receive_datagram(held[0], address, link.clock.now)
    link.pump()
    kinds = [type(e) for e in link.server_events]
    assert HandshakeCompleted in kinds
    assert ApplicationData(b"early") not in link.server_events
    assert link.exchange(b"after") == (b"after", b"retfa")


def test_deferred_records_of_the_next_epoch_are_used_once_its_keys_exist() -> None:
    """RFC 6347 §4.1: a Finished of epoch 1 overtaking the ClientKeyExchange that makes its keys
    may be buffered; the handshake then completes without a retransmission."""
    link = Link(psk_client(), dtls_server())
    flight5: list[bytes] = []
    link.mutate = lambda d: (flight5.append(d.data), [])[1] if d.index == 4 else [d]
    link.client.connect(link.clock.now)
    link.pump()
    (datagram,) = flight5
    records = parse_datagram(datagram)
    assert [(r.content_type, r.epoch) for r in records] == [
        (CT.HANDSHAKE, 0),
        (CT.CHANGE_CIPHER_SPEC, 0),
        (CT.HANDSHAKE, 1),
    ]
    for record in reversed(records):
        wire = encode_record(
            record.content_type,
            record.version,
            record.epoch,
            record.sequence_number,
            record.fragment,
        )
        link.server.receive_datagram(wire, CLIENT_ADDRESS, link.clock.now)
    link.pump()
    assert link.completed(link.server_events) is not None
    assert link.completed(link.client_events) is not None


def test_a_buffered_fatal_alert_ends_the_handshake_once_readable() -> None:
    """RFC 6347 §4.1 (records of the next epoch buffered until its keys exist) and RFC 5246
    §7.2.2: a fatal alert of epoch 1 that overtook the key exchange ends the connection when the
    keys arrive; the buffered records after it are not processed."""
    link = Link(psk_client(), dtls_server())
    flight5: list[bytes] = []
    link.mutate = lambda d: (flight5.append(d.data), [])[1] if d.index == 4 else [d]
    link.client.connect(link.clock.now)
    link.pump()
    (datagram,) = flight5
    key_exchange, change_cipher_spec, _finished = parse_datagram(datagram)
    alert = link.client._protect(CT.ALERT, bytes([FATAL, AD.HANDSHAKE_FAILURE]), 1)
    data = link.client._protect(CT.APPLICATION_DATA, b"after the alert", 1)
    now = link.clock.now
    for wire in (alert, data):
        link.server.receive_datagram(wire, CLIENT_ADDRESS, now)
    assert link.server.datagrams_to_send(now) == []
    for record in (key_exchange, change_cipher_spec):
        wire = encode_record(
            record.content_type,
            record.version,
            record.epoch,
            record.sequence_number,
            record.fragment,
        )
        link.server.receive_datagram(wire, CLIENT_ADDRESS, now)
    events = []
    while (item := link.server.next_event()) is not None:
        events.append(item.event)
    assert events == [
        AlertReceived(FATAL, AD.HANDSHAKE_FAILURE),
        ConnectionClosed(AD.HANDSHAKE_FAILURE, True, "fatal alert received"),
    ]
    assert len(link.server) == 0


# -- alerts (RFC 5246 §7.2) -----------------------------------------------------------------------


def test_epoch_0_alert_cannot_end_a_lingering_association() -> None:
    """RFC 6347 §4.1.2.7: an unprotected alert arriving while the server still keeps its last
    flight (epoch 0 state kept) does not end the authenticated association."""
    _link, connection = lingering()
    for seq, payload in ((50, bytes([FATAL, AD.HANDSHAKE_FAILURE])), (51, b"\x01\x00")):
        connection.receive_datagram(encode_record(CT.ALERT, DTLS_1_2, 0, seq, payload), 0.0)
    assert drain(connection) == []
    assert connection.datagrams_to_send(0.0) == []
    assert connection.state is ConnectionState.ESTABLISHED


def test_close_notify_is_answered_and_later_data_ignored() -> None:
    """RFC 5246 §7.2.1: the receiver of close_notify answers with its own close_notify and
    closes; data after the closure alert is ignored. Both alerts are protected (epoch 1)."""
    link, connection = established()
    late = connection.seal(b"late")
    connection.close("bye")
    assert drain(connection) == [ConnectionClosed(AD.CLOSE_NOTIFY, False, "bye")]
    (notify,) = connection.datagrams_to_send(0.0)
    (record,) = parse_datagram(notify)
    assert (record.content_type, record.epoch) == (CT.ALERT, 1)
    client = link.client
    client.receive_datagram(notify, 0.0)
    assert drain(client) == [
        AlertReceived(WARNING, AD.CLOSE_NOTIFY),
        ConnectionClosed(AD.CLOSE_NOTIFY, True, "close_notify received"),
    ]
    (reply,) = client.datagrams_to_send(0.0)
    (reply_record,) = parse_datagram(reply)
    assert connection._read_protection is not None
    assert connection._read_protection.decrypt(reply_record) == (CT.ALERT, b"\x01\x00")
    client.receive_datagram(late, 0.0)
    assert drain(client) == []
    assert client.state is ConnectionState.CLOSED
    connection.close()  # a second close is a no-op
    assert connection.datagrams_to_send(0.0) == []
    assert drain(connection) == []


def test_fatal_alert_closes_without_an_answer() -> None:
    """RFC 5246 §7.2.2: on a fatal alert both sides close at once; the receiver sends nothing."""
    link, connection = established()
    connection.receive_datagram(link.client._protect(CT.ALERT, b"\x02\x28", 1), 0.0)
    assert drain(connection) == [
        AlertReceived(FATAL, AD.HANDSHAKE_FAILURE),
        ConnectionClosed(AD.HANDSHAKE_FAILURE, True, "fatal alert received"),
    ]
    assert connection.datagrams_to_send(0.0) == []
    assert connection.state is ConnectionState.CLOSED


def test_warning_alert_keeps_the_association() -> None:
    """RFC 5246 §7.2: after a warning alert (here user_canceled) the connection continues."""
    link, connection = established()
    connection.receive_datagram(link.client._protect(CT.ALERT, b"\x01\x5a", 1), 0.0)
    assert drain(connection) == [AlertReceived(WARNING, AD.USER_CANCELED)]
    assert connection.state is ConnectionState.ESTABLISHED
    assert _accepts(connection, link.client.seal(b"more"), "general") == b"more"


def test_close_during_the_handshake_sends_an_unprotected_close_notify() -> None:
    """RFC 5246 §7.2.1: close_notify before any keys exist goes in an epoch-0 record."""
    client = psk_client()
    client.connect(0.0)
    client.datagrams_to_send(0.0)
    client.close()
    (datagram,) = client.datagrams_to_send(0.0)
    assert parse_datagram(datagram) == [RawRecord(CT.ALERT, DTLS_1_2, 0, 1, b"", b"\x01\x00")]
    assert drain(client) == [ConnectionClosed(AD.CLOSE_NOTIFY, False, "closed locally")]
    assert client.get_timer() is None


# -- retransmission (RFC 6347 §4.2.4, §4.2.4.1) ---------------------------------------------------


def _to_flight_4(
    server: DtlsServer, client: DtlsConnection, now: float = 0.0
) -> tuple[bytes, list[bytes]]:
    """Runs the cookie exchange; returns the client's second ClientHello and the server's
    flight 4 (not delivered)."""
    client.connect(now)
    (hello,) = client.datagrams_to_send(now)
    server.receive_datagram(hello, CLIENT_ADDRESS, now)
    ((verify, _),) = server.datagrams_to_send(now)
    client.receive_datagram(verify, now)
    (second,) = client.datagrams_to_send(now)
    server.receive_datagram(second, CLIENT_ADDRESS, now)
    return second, [d for d, _ in server.datagrams_to_send(now)]


def test_server_flight_timer_doubles_up_to_the_maximum_then_gives_up() -> None:
    """RFC 6347 §4.2.4.1: 1 s initial timer, doubled at each retransmission, capped at 60 s;
    the server gives up after ``max_retransmissions`` with a handshake timeout."""
    server = dtls_server()
    clock = FakeClock(0.0)
    _, flight = _to_flight_4(server, psk_client(), clock.now)
    assert flight
    sent_at = [0.0]
    while (timer := server.get_timer()) is not None:
        clock.now = timer
        server.handle_timer(clock.now)
        out = server.datagrams_to_send(clock.now)
        if out:
            # The same messages again (RFC 6347 §4.2.2: the same message_seq), new records.
            assert handshake_messages(d for d, _ in out) == handshake_messages(flight)
            sent_at.append(clock.now)
    assert sent_at == [0, 1, 3, 7, 15, 31, 63, 123]
    events = []
    while (item := server.next_event()) is not None:
        events.append(item.event)
    assert events == [ConnectionClosed(None, False, "handshake timeout")]
    assert len(server) == 0


def test_repeated_peer_flight_gets_the_last_flight_again_with_the_same_message_seq() -> None:
    """RFC 6347 §4.2.4: a retransmitted flight from the peer makes the receiver retransmit its
    last flight; §4.2.2: a retransmitted message keeps its message_seq (new record numbers);
    §4.1.2.6: a network duplicate of the same record is a replay and triggers nothing."""
    server = dtls_server()
    client = psk_client(initial_retransmit_timeout=0.7)
    _, flight = _to_flight_4(server, client)
    client.handle_timer(0.7)  # the client's timer fires before the flight arrived
    (again,) = client.datagrams_to_send(0.7)
    server.receive_datagram(again, CLIENT_ADDRESS, 0.7)
    repeated = [d for d, _ in server.datagrams_to_send(0.7)]
    assert repeated
    first = handshake_messages(flight)
    second = handshake_messages(repeated)
    assert [(f.msg_type, f.message_seq, f.fragment) for f in first] == [
        (f.msg_type, f.message_seq, f.fragment) for f in second
    ]
    old_seqs = {r.sequence_number for d in flight for r in parse_datagram(d)}
    new_seqs = {r.sequence_number for d in repeated for r in parse_datagram(d)}
    assert not old_seqs & new_seqs
    server.receive_datagram(again, CLIENT_ADDRESS, 0.9)  # the same record once more
    assert server.datagrams_to_send(0.9) == []


def _lose_final_flight_until(seconds: float) -> Link:
    link = Link(psk_client(), dtls_server())
    start = link.clock.now
    # Datagram 4 is the client's flight 5; every server datagram after it (flight 6 and its
    # retransmissions) is lost until ``seconds`` after the start.
    link.mutate = lambda d: (
        [] if not d.to_server and d.index > 4 and link.clock.now < start + seconds else [d]
    )
    link.run()
    return link


def test_lost_final_flight_is_retransmitted_on_the_peers_retransmission() -> None:
    """RFC 6347 §4.2.4: the server (in the FINISHED state) answers the client's retransmitted
    flight 5 with its flight 6 again."""
    link = _lose_final_flight_until(20.0)
    assert link.completed(link.client_events) is not None
    assert link.clock.now - 1000.0 == 31.0  # the client's fifth retransmission got through


def test_final_flight_is_kept_for_twice_the_msl() -> None:
    """RFC 6347 §4.2.4: the last flight is kept for at least 2*MSL after the handshake."""
    link = _lose_final_flight_until(32.0)
    assert link.completed(link.client_events) is not None


@pytest.mark.parametrize(("setting", "kept"), [({}, 240.0), ({"final_flight_linger": 5.0}, 5.0)])
def test_final_flight_linger_is_configurable(setting: dict[str, float], kept: float) -> None:
    """RFC 6347 §4.2.4: by default the last flight is kept 2*MSL (240 s) after the handshake,
    ``final_flight_linger`` overrides it; then it is released."""
    link = Link(psk_client(), dtls_server(**setting))
    link.run()
    connection = link.server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    assert connection._flight is not None
    assert connection.get_timer() == link.clock.now + kept
    connection.handle_timer(link.clock.now + kept)
    assert connection._flight is None
    assert connection.get_timer() is None


# -- HelloVerifyRequest (RFC 6347 §4.2.1) ---------------------------------------------------------


def test_client_repeats_its_hello_unchanged_but_for_the_cookie() -> None:
    """RFC 6347 §4.2.1: the ClientHello answering a HelloVerifyRequest uses the same version,
    random, session_id, cipher_suites and compression methods, and carries the cookie;
    §4.2.2: it is the client's next message (message_seq 1) in a new record."""
    server = dtls_server()
    client = psk_client(connection_id=b"\x01")
    client.connect(0.0)
    (first,) = client.datagrams_to_send(0.0)
    server.receive_datagram(first, CLIENT_ADDRESS, 0.0)
    ((verify, _),) = server.datagrams_to_send(0.0)
    (hvr,) = handshake_messages([verify])
    assert hvr.msg_type == HT.HELLO_VERIFY_REQUEST
    cookie = m.pull_hello_verify_request(Buffer(hvr.fragment)).cookie
    client.receive_datagram(verify, 0.0)
    (second,) = client.datagrams_to_send(0.0)
    (h1,) = handshake_messages([first])
    (h2,) = handshake_messages([second])
    assert (h1.message_seq, h2.message_seq) == (0, 1)
    assert parse_datagram(second)[0].sequence_number > parse_datagram(first)[0].sequence_number
    hello1 = m.parse_client_hello(h1.fragment)
    hello2 = m.parse_client_hello(h2.fragment)
    assert hello1.cookie == b""
    assert hello2.cookie == cookie
    assert cookie
    assert hello2 == m.ClientHello(
        hello1.random,
        hello1.session_id,
        cookie,
        hello1.cipher_suites,
        hello1.compression_methods,
        hello1.extensions,
        hello1.version,
    )


# -- fragmentation and reassembly (RFC 6347 §4.1.1, §4.2.2, §4.2.3) -------------------------------


def _rpk_link(server_mtu: int, client_mtu: int = 1200) -> Link:
    client_credentials, server_credentials = rpk_pair()
    client = DtlsConnection(
        configuration=DtlsConfiguration(max_datagram_size=client_mtu),
        credentials=client_credentials,
    )
    return Link(client, dtls_server(server_credentials, max_datagram_size=server_mtu))


def test_fragmented_flight_is_reassembled_in_any_order_and_with_duplicates() -> None:
    """RFC 6347 §4.2.3: fragments may arrive out of order and overlap; §4.2.2: messages ahead
    of the next message_seq are buffered and handled in order."""
    link = _rpk_link(150)
    server = link.server
    _, flight = _to_flight_4(server, link.client, link.clock.now)
    assert len(flight) >= 3
    fragments = handshake_messages(flight)
    assert any(f.fragment_offset for f in fragments)  # really fragmented
    for index, datagram in enumerate(reversed(flight)):
        link.client.receive_datagram(datagram, link.clock.now)
        link.client.receive_datagram(datagram, link.clock.now)  # duplicate: dropped
        if index < len(flight) - 1:
            assert link.client.datagrams_to_send(link.clock.now) == []  # ServerHello missing
    link.pump()
    link.run(connect=False)
    assert link.completed(link.client_events) is not None
    assert link.completed(link.server_events) is not None


@pytest.mark.parametrize(
    ("server_mtu", "client_mtu"),
    [(60, 1200), (80, 1200), (100, 1200), (150, 150), (200, 200), (300, 300)],
)
def test_every_datagram_fits_the_configured_size(server_mtu: int, client_mtu: int) -> None:
    """RFC 6347 §4.1.1: each record fits one datagram; §4.2.3: handshake messages are
    fragmented to the path MTU (``max_datagram_size``); the handshake completes. (The client
    MTU stays above its ClientHello: see the fragmented-hello test of the server campaign.)"""
    link = _rpk_link(server_mtu, client_mtu)
    link.run()
    assert link.completed(link.client_events) is not None
    assert link.completed(link.server_events) is not None
    assert max(len(d.data) for d in link.sent if not d.to_server) <= server_mtu
    assert max(len(d.data) for d in link.sent if d.to_server) <= client_mtu
    # Flight 4 (468 bytes in one datagram at 1200) was split: more than HVR, 4 and 6.
    assert len([d for d in link.sent if not d.to_server]) > 3
    connection = link.server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    payload = b"x" * min(link.client.max_application_data, connection.max_application_data)
    assert link.exchange(payload) == (payload, payload)


@pytest.mark.parametrize(("mtu", "finished_records"), [(40, 1), (48, 2)])
def test_tiny_mtus_still_complete(mtu: int, finished_records: int) -> None:
    """RFC 6347 §4.2.3: even the 12-byte Finished is fragmented when the MTU leaves less room
    (48: two 6-byte fragments, reassembled by the client); with an MTU below one epoch-1 record
    header the sender still makes progress rather than looping (40: one whole fragment). The
    handshake completes and data flows."""
    link = Link(psk_client(), dtls_server(max_datagram_size=mtu))
    link.run()
    assert link.completed(link.client_events) is not None
    assert link.completed(link.server_events) is not None
    epoch1 = [
        r
        for d in link.sent
        if not d.to_server
        for r in parse_datagram(d.data)
        if r.epoch == 1 and r.content_type == CT.HANDSHAKE
    ]
    assert len(epoch1) == finished_records
    assert link.exchange(b"tiny") == (b"tiny", b"ynit")


def test_messages_too_far_ahead_are_not_buffered() -> None:
    """RFC 6347 §4.2.2 / §4.2.3: a receiver bounds how far ahead of the next message_seq it
    buffers; a forged message 8 ahead is dropped and does not disturb the handshake."""
    link = Link(psk_client(), dtls_server())
    link.client.connect(link.clock.now)
    bogus = m.encode_handshake(HT.SERVER_HELLO_DONE, 8, b"")
    link.client.receive_datagram(encode_record(CT.HANDSHAKE, DTLS_1_2, 0, 40, bogus), 0.0)
    assert link.client._reassembler is None
    link.run(connect=False)
    assert link.completed(link.client_events) is not None


# -- renegotiation (RFC 5246 §7.4.1.1, §7.2.2; RFC 5746) ------------------------------------------


def _renegotiation_hello(message_seq: int, offset: int = 0, length: int | None = None) -> bytes:
    body = Buffer()
    m.push_client_hello(body, m.ClientHello(bytes(32), b"", b"", (CCM8, SCSV)))
    return m.encode_handshake(HT.CLIENT_HELLO, message_seq, body.data, offset, length)


def test_renegotiation_hello_fragments_are_refused_with_a_warning_only() -> None:
    """RFC 5246 §7.2.2: no_renegotiation is a warning; the association continues. A fragment
    that does not start the hello is dropped without an alert."""
    link, connection = established()
    next_seq = connection._receive_seq
    tail = _renegotiation_hello(next_seq, offset=10)
    connection.receive_datagram(link.client._protect(CT.HANDSHAKE, tail, 1), 0.0)
    assert connection.datagrams_to_send(0.0) == []
    assert connection.state is ConnectionState.ESTABLISHED
    whole = _renegotiation_hello(next_seq + 1)
    connection.receive_datagram(link.client._protect(CT.HANDSHAKE, whole, 1), 0.0)
    (alert,) = connection.datagrams_to_send(0.0)
    link.client.receive_datagram(alert, 0.0)
    assert drain(link.client) == [AlertReceived(WARNING, AD.NO_RENEGOTIATION)]
    assert connection.state is ConnectionState.ESTABLISHED
    assert _accepts(connection, link.client.seal(b"on"), "general") == b"on"


def test_renegotiation_hello_numbered_from_zero_is_refused() -> None:
    """RFC 5246 §7.2.2 / RFC 6347 §4.2.2: a renegotiation ClientHello (message_seq 0) under
    epoch 1 gets a no_renegotiation warning."""
    link, connection = established()
    connection.receive_datagram(link.client._protect(CT.HANDSHAKE, _renegotiation_hello(0), 1), 0.0)
    alerts = connection.datagrams_to_send(0.0)
    assert alerts
    link.client.receive_datagram(alerts[0], 0.0)
    assert AlertReceived(WARNING, AD.NO_RENEGOTIATION) in drain(link.client)


def test_epoch_0_client_hello_does_not_touch_the_established_association() -> None:
    """RFC 6347 §4.2.8: an epoch-0 ClientHello must not destroy an established association by
    itself (the demultiplexer decides about new associations); the connection ignores it."""
    _link, connection = lingering()
    hello = _renegotiation_hello(7)
    connection.receive_datagram(encode_record(CT.HANDSHAKE, DTLS_1_2, 0, 90, hello), 0.0)
    assert drain(connection) == []
    assert connection.datagrams_to_send(0.0) == []
    assert connection.state is ConnectionState.ESTABLISHED


# -- extended master secret, resumption (RFC 7627 §5.3) and RFC 5746 ------------------------------


def _server_answer(server: DtlsServer, hello: m.ClientHello, address: object) -> list[bytes]:
    body = Buffer()
    m.push_client_hello(body, hello)
    record = encode_record(
        CT.HANDSHAKE, DTLS_1_2, 0, 0, m.encode_handshake(HT.CLIENT_HELLO, 0, body.data)
    )
    server.receive_datagram(record, address, 0.0)  # type: ignore[arg-type]
    return [d for d, _ in server.datagrams_to_send(0.0)]


def _server_hello(datagrams: list[bytes]) -> m.ServerHello:
    fragments = handshake_messages(datagrams)
    assert fragments
    assert fragments[0].msg_type == HT.SERVER_HELLO
    return m.pull_server_hello(Buffer(fragments[0].fragment))


EMS = (ExtensionType.EXTENDED_MASTER_SECRET, b"")


@pytest.mark.parametrize("offer_ems", [True, False])
def test_ems_session_is_resumed_only_by_a_hello_with_ems(offer_ems: bool) -> None:
    """RFC 7627 §5.3: a session made with the extended master secret is not resumed by a
    ClientHello without the extension (the abbreviated handshake is aborted)."""
    server = dtls_server(require_cookie=False)
    link = Link(psk_client(), server)
    link.run()
    completed = link.completed(link.client_events)
    assert completed is not None
    assert completed.session is not None
    session = completed.session
    assert session.extended_master_secret
    hello = m.ClientHello(
        bytes(range(32)),
        session.session_id,
        b"",
        (CCM8, SCSV),
        extensions=(EMS,) if offer_ems else (),
    )
    reply = _server_answer(server, hello, "resumer")
    resumed = _server_hello(reply).session_id == session.session_id
    assert resumed is offer_ems


def test_legacy_session_is_not_resumed_by_a_hello_with_ems() -> None:
    """RFC 7627 §5.3: if the original session did not use the extension but the new ClientHello
    does, the server MUST NOT resume it (a full handshake, and a new session id)."""
    server = dtls_server(require_cookie=False)
    legacy = DtlsSession(b"L" * 32, CCM8, bytes(48), False, PskIdentity(b"x"))
    server.session_cache.put(legacy)
    reply = _server_answer(
        server, m.ClientHello(bytes(32), legacy.session_id, b"", (CCM8,), extensions=(EMS,)), "a"
    )
    hello = _server_hello(reply)
    assert hello.session_id != legacy.session_id
    assert EMS in (hello.extensions or ())
    assert HT.SERVER_HELLO_DONE in [f.msg_type for f in handshake_messages(reply)]


@pytest.mark.parametrize(
    ("suites", "extensions", "answered"),
    [
        ((CCM8, SCSV), (), True),
        ((CCM8,), ((ExtensionType.RENEGOTIATION_INFO, b"\x00"),), True),
        ((CCM8,), (), False),
    ],
)
def test_server_answers_secure_renegotiation_signals(
    suites: tuple[int, ...], extensions: tuple[tuple[int, bytes], ...], answered: bool
) -> None:
    """RFC 5746 §3.6: with the SCSV or an empty renegotiation_info the ServerHello carries an
    empty renegotiation_info; without either it carries none (RFC 5246 §7.4.1.4)."""
    server = dtls_server(require_cookie=False)
    reply = _server_answer(
        server, m.ClientHello(bytes(32), b"", b"", suites, extensions=extensions), "a"
    )
    found = m.find_extension(_server_hello(reply).extensions, ExtensionType.RENEGOTIATION_INFO)
    assert found == (b"\x00" if answered else None)


def test_non_empty_renegotiation_info_in_an_initial_hello_is_a_handshake_failure() -> None:
    """RFC 5746 §3.6: a non-empty renegotiated_connection in an initial handshake aborts it with
    a fatal handshake_failure."""
    server = dtls_server(require_cookie=False)
    info = (ExtensionType.RENEGOTIATION_INFO, b"\x0c" + bytes(12))
    reply = _server_answer(
        server, m.ClientHello(bytes(32), b"", b"", (CCM8,), extensions=(info,)), "a"
    )
    assert [parse_datagram(d)[0].fragment for d in reply] == [bytes([FATAL, AD.HANDSHAKE_FAILURE])]
    item = server.next_event()
    assert item is not None
    assert isinstance(item.event, ConnectionClosed)
    assert item.event.alert == AD.HANDSHAKE_FAILURE


# -- connection IDs (RFC 9146) --------------------------------------------------------------------


@pytest.mark.parametrize("client_cid", [b"", b"\x07\x08"])
def test_connection_id_negotiation_and_record_format(client_cid: bytes) -> None:
    """RFC 9146 §3: extension 54 carries the CID a peer wants to receive (opaque8); a
    zero-length one asks for plain records. §4: records to a peer with a non-empty CID are
    tls12_cid records with the CID after the sequence number."""
    server = dtls_server(connection_id_length=4)
    link = Link(psk_client(connection_id=client_cid), server)
    link.run()
    hellos = [
        f
        for f in handshake_messages(d.data for d in link.sent if d.to_server)
        if f.msg_type == HT.CLIENT_HELLO
    ]
    offered = m.parse_client_hello(hellos[-1].fragment).extensions
    assert m.find_extension(offered, ExtensionType.CONNECTION_ID) == bytes([len(client_cid)]) + (
        client_cid
    )
    connection = server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    assert connection.connection_id is not None
    server_cid = connection.connection_id
    assert len(server_cid) == 4
    answer = _server_hello([d.data for d in link.sent if not d.to_server and d.index > 1])
    assert m.find_extension(answer.extensions, ExtensionType.CONNECTION_ID) == b"\x04" + server_cid
    completed = link.completed(link.client_events)
    assert completed is not None
    assert completed.peer_connection_id == server_cid
    assert completed.connection_id == client_cid
    link.client.send(b"up")
    (up,) = link.client.datagrams_to_send(0.0)
    assert up[0] == CT.TLS12_CID
    assert up[11:15] == server_cid
    assert up[3:5] == b"\x00\x01"
    link.server.send(CLIENT_ADDRESS, b"down")
    ((down, _),) = link.server.datagrams_to_send(0.0)
    if client_cid:
        assert down[0] == CT.TLS12_CID
        assert down[11:13] == client_cid
    else:
        assert down[0] == CT.APPLICATION_DATA
    server.receive_datagram(up, CLIENT_ADDRESS, 0.0)
    link.client.receive_datagram(down, 0.0)
    assert ApplicationData(b"down") in drain(link.client)


def test_plain_record_is_refused_when_a_connection_id_was_negotiated() -> None:
    """RFC 9146 §4, §5: with a CID negotiated for a direction, its records are tls12_cid records
    (the CID is authenticated); a plain record under the same keys is dropped."""
    server = dtls_server(connection_id_length=4)
    link = Link(psk_client(connection_id=b""), server)
    link.run()
    link.exchange()
    connection = server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    protection = copy.copy(link.client._write_protection)
    assert protection is not None
    assert protection.cid
    protection.cid = b""
    plain = protection.encrypt(CT.APPLICATION_DATA, DTLS_1_2, 1, 900, b"plain")
    connection.receive_datagram(plain, 0.0)
    assert drain(connection) == []
    assert connection.state is ConnectionState.ESTABLISHED
    assert connection.highest_authenticated_record < (1, 900)


def test_no_connection_id_when_the_client_does_not_offer_one() -> None:
    """RFC 5246 §7.4.1.4 / RFC 9146 §3: the server includes connection_id only when the client
    did; records stay plain both ways."""
    server = dtls_server(connection_id_length=4)
    link = Link(psk_client(), server)
    link.run()
    answer = _server_hello([d.data for d in link.sent if not d.to_server and d.index > 1])
    assert m.find_extension(answer.extensions, ExtensionType.CONNECTION_ID) is None
    completed = link.completed(link.server_events)
    assert completed is not None
    assert (completed.connection_id, completed.peer_connection_id) == (None, None)
    link.client.send(b"x")
    assert link.client.datagrams_to_send(0.0)[0][0] == CT.APPLICATION_DATA


def test_random_connection_id_has_the_requested_length() -> None:
    """RFC 9146 §3: the receiver chooses its CID; the helper gives fresh random bytes."""
    cids = {random_connection_id(8) for _ in range(4)}
    assert len(cids) == 4
    assert all(len(cid) == 8 for cid in cids)
    assert random_connection_id(0) == b""


# -- CCM_8 (RFC 6655, RFC 7251) -------------------------------------------------------------------


@pytest.mark.parametrize("suite", [CCM8, ECDHE_CCM8])
def test_ccm8_records_use_epoch_and_sequence_as_explicit_nonce(suite: int) -> None:
    """RFC 6655 §3 (and RFC 7251 §2 for ECDHE): the 8-byte nonce_explicit is the record's
    epoch||sequence_number and the tag is 8 bytes (16 bytes of expansion)."""
    if suite == CCM8:
        link = Link(psk_client(cipher_suites=(suite,)), dtls_server(cipher_suites=(suite,)))
    else:
        client_credentials, server_credentials = rpk_pair()
        client = DtlsConnection(
            configuration=DtlsConfiguration(cipher_suites=(suite,)),
            credentials=client_credentials,
        )
        link = Link(client, dtls_server(server_credentials, cipher_suites=(suite,)))
    link.run()
    link.exchange(b"0123456789")
    protected = [
        r
        for d in link.sent
        for r in parse_datagram(d.data)
        if r.epoch == 1 and r.content_type != CT.CHANGE_CIPHER_SPEC
    ]
    assert len(protected) >= 4  # both Finished and both application records
    for record in protected:
        expected = record.epoch.to_bytes(2, "big") + record.sequence_number.to_bytes(6, "big")
        assert record.fragment[:8] == expected
    data = [r for r in protected if r.content_type == CT.APPLICATION_DATA]
    assert data
    assert all(len(r.fragment) == 10 + 16 for r in data)
    assert link.completed(link.client_events).cipher_suite == suite  # type: ignore[union-attr]


# -- PSK (RFC 4279) -------------------------------------------------------------------------------


def test_psk_identity_of_128_octets_is_supported() -> None:
    """RFC 4279 §5.3: identities of up to 128 octets MUST be supported; the server reports the
    identity the client used."""
    identity = bytes(range(128))
    client = DtlsConnection(
        configuration=DtlsConfiguration(cipher_suites=(CCM8,)),
        credentials=DtlsCredentials(psk=SoftwarePsk(identity, PSK)),
    )
    server = dtls_server(DtlsCredentials(psk_store=SoftwarePskStore({identity: PSK})))
    link = Link(client, server)
    link.run()
    completed = link.completed(link.server_events)
    assert completed is not None
    assert completed.peer_identity == PskIdentity(identity)


def test_psk_server_without_hint_omits_the_server_key_exchange() -> None:
    """RFC 4279 §2: without an identity hint the ServerKeyExchange is omitted; flight 4 is
    ServerHello then ServerHelloDone."""
    server = dtls_server(psk_server_credentials())
    _, flight = _to_flight_4(server, psk_client())
    assert [f.msg_type for f in handshake_messages(flight)] == [
        HT.SERVER_HELLO,
        HT.SERVER_HELLO_DONE,
    ]
