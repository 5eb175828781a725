"""RFC behaviour of the :class:`DtlsServer` demultiplexer (a test campaign).

RFC 6347 §4.2.1 (stateless cookies; fragmented hellos are not answered, §4.2.3), §4.2.8 (a
ClientHello on an established association), §4.1 (record sequence numbers) and RFC 9146 §6 (peer
address updates with connection IDs). Tests marked ``xfail`` document a deviation found.
"""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from lwm2m.buffer import Buffer
from lwm2m.dtls import (
    AlertDescription,
    ApplicationData,
    ConnectionClosed,
    ConnectionState,
    DtlsServer,
    ServerEvent,
)
from lwm2m.dtls import messages as m
from lwm2m.dtls import server as server_module
from lwm2m.dtls.constants import DTLS_1_2, CipherSuite, ContentType, HandshakeType
from lwm2m.dtls.events import DtlsEvent, PeerAddressChanged
from lwm2m.dtls.record import encode_record, parse_datagram

from .helpers import CLIENT_ADDRESS, Link, dtls_server, psk_client

CCM8 = CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
MAX_SEQUENCE = 2**48 - 1
OTHER: Hashable = ("192.0.2.9", 5683)


def events_of(server: DtlsServer) -> list[tuple[Hashable, DtlsEvent | PeerAddressChanged]]:
    events = []
    while (item := server.next_event()) is not None:
        assert isinstance(item, ServerEvent)
        events.append((item.address, item.event))
    return events


def established(server: DtlsServer, address: Hashable = CLIENT_ADDRESS, **client: object) -> Link:
    link = Link(psk_client(**client), server, address=address)  # type: ignore[arg-type]
    link.run()
    assert link.exchange(b"warm-up") == (b"warm-up", b"pu-mraw")
    return link


def message_types(datagrams: list[bytes]) -> list[int]:
    return [
        m.pull_handshake_fragment(Buffer(record.fragment)).msg_type
        for datagram in datagrams
        for record in parse_datagram(datagram)
        if record.epoch == 0 and record.content_type == ContentType.HANDSHAKE
    ]


# -- a ClientHello on an established association (RFC 6347 §4.2.8) -------------------------------


def test_cookieless_hello_on_an_established_address_keeps_the_association() -> None:
    """RFC 6347 §4.2.8: an epoch-0 ClientHello on an established association is answered (a
    HelloVerifyRequest), but the association is not destroyed before the client demonstrated
    reachability (the cookie exchange)."""
    server = dtls_server()
    link = established(server)
    old = server.connection_for(CLIENT_ADDRESS)
    stranger = psk_client()
    stranger.connect(0.0)
    (hello,) = stranger.datagrams_to_send(0.0)
    server.receive_datagram(hello, CLIENT_ADDRESS, link.clock.now)
    ((reply, address),) = server.datagrams_to_send(link.clock.now)
    assert address == CLIENT_ADDRESS
    assert message_types([reply]) == [HandshakeType.HELLO_VERIFY_REQUEST]
    assert server.connection_for(CLIENT_ADDRESS) is old
    assert len(server) == 1
    assert link.exchange(b"still") == (b"still", b"llits")


def test_a_duplicate_of_the_associations_own_hello_does_not_replace_it() -> None:
    """RFC 6347 §4.2.8: only a new ClientHello starts a new association; a network duplicate
    of the hello that made the current association is not one."""
    server = dtls_server()
    link = established(server)
    old = server.connection_for(CLIENT_ADDRESS)
    second_hello = [d for d in link.sent if d.to_server][1].data
    assert message_types([second_hello]) == [HandshakeType.CLIENT_HELLO]
    server.receive_datagram(second_hello, CLIENT_ADDRESS, link.clock.now)
    link.pump()
    assert server.connection_for(CLIENT_ADDRESS) is old
    assert link.exchange(b"still") == (b"still", b"llits")


def test_an_unverified_hello_does_not_destroy_the_association_without_cookies() -> None:
    """RFC 6347 §4.2.8: without a cookie exchange, the old association lives until the new
    handshake delivered a verifiable Finished."""
    server = dtls_server(require_cookie=False)
    link = established(server)
    old = server.connection_for(CLIENT_ADDRESS)
    body = Buffer()
    m.push_client_hello(body, m.ClientHello(bytes(32), b"", b"", (CCM8,)))
    spoofed = encode_record(
        ContentType.HANDSHAKE,
        DTLS_1_2,
        0,
        0,
        m.encode_handshake(HandshakeType.CLIENT_HELLO, 0, body.data),
    )
    server.receive_datagram(spoofed, CLIENT_ADDRESS, link.clock.now)
    server.datagrams_to_send(link.clock.now)  # the spoofer's ServerHello goes nowhere
    assert server.connection_for(CLIENT_ADDRESS) is old
    assert link.exchange(b"still") == (b"still", b"llits")


def test_a_new_handshake_without_cookies_replaces_the_association_when_it_completes() -> None:
    """RFC 6347 §4.2.8 without cookies: a rebooted client's new handshake runs beside the old
    association, which keeps working meanwhile, and replaces it once the new handshake
    completed (the client proved it holds the keys)."""
    server = dtls_server(require_cookie=False)
    link = established(server)
    old = server.connection_for(CLIENT_ADDRESS)
    now = link.clock.now
    rebooted = psk_client()
    rebooted.connect(now)
    for datagram in rebooted.datagrams_to_send(now):
        server.receive_datagram(datagram, CLIENT_ADDRESS, now)
    for datagram, _ in server.datagrams_to_send(now):
        rebooted.receive_datagram(datagram, now)
    assert server.connection_for(CLIENT_ADDRESS) is old
    assert len(server) == 2  # the association and the handshake beside it
    assert link.exchange(b"old") == (b"old", b"dlo")
    events_of(server)
    for datagram in rebooted.datagrams_to_send(now):  # flight 5: the handshake completes
        server.receive_datagram(datagram, CLIENT_ADDRESS, now)
    new = server.connection_for(CLIENT_ADDRESS)
    assert new is not None
    assert new is not old
    assert new.state is ConnectionState.ESTABLISHED
    assert len(server) == 1
    for datagram, _ in server.datagrams_to_send(now):
        rebooted.receive_datagram(datagram, now)
    assert rebooted.state is ConnectionState.ESTABLISHED
    events_of(server)
    server.receive_datagram(link.client.seal(b"stale"), CLIENT_ADDRESS, now)  # old keys
    rebooted.send(b"fresh")
    for datagram in rebooted.datagrams_to_send(now):
        server.receive_datagram(datagram, CLIENT_ADDRESS, now)
    assert events_of(server) == [(CLIENT_ADDRESS, ApplicationData(b"fresh"))]


def test_an_unproven_handshake_beside_an_association_times_out_alone() -> None:
    """RFC 6347 §4.2.8 without cookies: a spoofed hello's handshake that never completes ends
    by its own timeout; the association stays, and later new hellos are handled as before."""
    server = dtls_server(require_cookie=False)
    link = established(server)
    old = server.connection_for(CLIENT_ADDRESS)
    body = Buffer()
    m.push_client_hello(body, m.ClientHello(bytes(32), b"", b"", (CCM8,)))
    spoofed = encode_record(
        ContentType.HANDSHAKE,
        DTLS_1_2,
        0,
        0,
        m.encode_handshake(HandshakeType.CLIENT_HELLO, 0, body.data),
    )
    now = link.clock.now
    server.receive_datagram(spoofed, CLIENT_ADDRESS, now)
    for _ in range(20):
        timer = server.get_timer()
        if timer is None:
            break
        now = max(now, timer)
        server.handle_timer(now)
    server.datagrams_to_send(now)
    assert server.get_timer() is None
    assert server.connection_for(CLIENT_ADDRESS) is old
    assert len(server) == 1
    assert not server._pending
    link.clock.now = now
    assert link.exchange(b"still") == (b"still", b"llits")


def test_a_handshake_beside_an_association_takes_its_hellos_and_a_newer_one_replaces_it() -> None:
    """Without cookies, the handshake beside an association answers a repetition of its own
    ClientHello (the client's retransmission, RFC 6347 §4.2.4) as a handshake does; a hello
    with yet another random replaces that unproven handshake (one per address), and the
    association keeps working throughout (§4.2.8)."""
    server = dtls_server(require_cookie=False)
    link = established(server)
    old = server.connection_for(CLIENT_ADDRESS)
    now = link.clock.now
    first = psk_client()
    first.connect(now)
    (hello,) = first.datagrams_to_send(now)
    server.receive_datagram(hello, CLIENT_ADDRESS, now)
    answer = server.datagrams_to_send(now)
    assert answer  # ServerHello ... ServerHelloDone
    pending = server._pending[CLIENT_ADDRESS]
    first.handle_timer(now + 1)  # the client did not hear the answer: it sends its hello again
    (retransmitted,) = first.datagrams_to_send(now + 1)
    assert retransmitted != hello  # a new record sequence number (an identical copy is a replay)
    server.receive_datagram(retransmitted, CLIENT_ADDRESS, now + 1)
    again = server.datagrams_to_send(now + 1)
    assert len(again) == len(answer)  # the flight once more (RFC 6347 §4.2.4)
    assert server._pending[CLIENT_ADDRESS] is pending
    second = psk_client()
    second.connect(now + 2)
    (newer,) = second.datagrams_to_send(now + 2)
    server.receive_datagram(newer, CLIENT_ADDRESS, now + 2)
    server.datagrams_to_send(now + 2)
    assert server._pending[CLIENT_ADDRESS] is not pending  # one unproven handshake per address
    assert len(server) == 2
    assert server.connection_for(CLIENT_ADDRESS) is old
    link.clock.now = now + 2
    assert link.exchange(b"still") == (b"still", b"llits")


# -- stateless hello handling (RFC 6347 §4.2.1, §4.2.3, §4.1) -------------------------------------


def test_our_client_sends_its_hello_whole_above_its_datagram_size() -> None:
    """The server answers only unfragmented hellos (see the next test), so the client never
    fragments its ClientHello, not even above ``max_datagram_size``: both hellos (before and
    after the HelloVerifyRequest) go in one record of one datagram, the rest of its flights is
    fragmented to the limit (RFC 6347 §4.2.3), and the handshake completes."""
    server = dtls_server()
    link = Link(psk_client(max_datagram_size=60), server)
    link.run()
    assert link.completed(link.server_events) is not None
    assert link.completed(link.client_events) is not None
    hellos = [
        d.data
        for d in link.sent
        if d.to_server and message_types([d.data])[:1] == [HandshakeType.CLIENT_HELLO]
    ]
    assert len(hellos) == 2
    for datagram in hellos:
        (record,) = parse_datagram(datagram)
        fragment = m.pull_handshake_fragment(Buffer(record.fragment))
        assert fragment.msg_type == HandshakeType.CLIENT_HELLO
        assert (fragment.fragment_offset, len(fragment.fragment)) == (0, fragment.length)
        assert len(datagram) > 60
    others = [d.data for d in link.sent if d.to_server and d.data not in hellos]
    assert others
    assert max(len(d) for d in others) <= 60
    assert link.exchange(b"small") == (b"small", b"llams")


def test_a_fragmented_client_hello_is_dropped_without_state() -> None:
    """RFC 6347 §4.2.1: the server keeps no state for a peer before its cookie; so it answers a
    ClientHello only when it is one unfragmented record (as OpenSSL's DTLSv1_listen and Mbed TLS
    do) and drops a fragmented one without state, rather than buffering fragments (§4.2.3) for
    any spoofed address."""
    server = dtls_server()
    client = psk_client()
    client.connect(0.0)
    (datagram,) = client.datagrams_to_send(0.0)
    (record,) = parse_datagram(datagram)
    hello = m.pull_handshake_fragment(Buffer(record.fragment))
    half = hello.length // 2
    for seq, (offset, length) in enumerate([(0, half), (half, hello.length - half)]):
        piece = m.encode_handshake(HandshakeType.CLIENT_HELLO, 0, hello.fragment, offset, length)
        server.receive_datagram(
            encode_record(ContentType.HANDSHAKE, DTLS_1_2, 0, seq, piece), CLIENT_ADDRESS, 0.0
        )
    assert server.datagrams_to_send(0.0) == []
    assert len(server) == 0
    assert events_of(server) == []


def test_a_hello_with_the_last_record_sequence_number_is_no_internal_error() -> None:
    """RFC 6347 §4.1, §4.2.1: the record sequence number of a ClientHello is the client's; the
    server's own numbering must not run out because of it."""
    server = dtls_server()
    client = psk_client()
    client._write_seq[0] = MAX_SEQUENCE - 1  # the client's first hello is numbered 2**48-2
    link = Link(client, server)
    link.client.connect(link.clock.now)
    link.pump()
    assert message_types([link.sent[1].data]) == [HandshakeType.HELLO_VERIFY_REQUEST]
    assert parse_datagram(link.sent[2].data)[0].sequence_number == MAX_SEQUENCE
    closed = [e for e in link.server_events if isinstance(e, ConnectionClosed)]
    assert all(e.alert != AlertDescription.INTERNAL_ERROR for e in closed), closed


# -- connection IDs (RFC 9146 §6) -----------------------------------------------------------------


def _cid_pair(server: DtlsServer, address: Hashable) -> Link:
    return established(server, address, connection_id=b"")


def test_an_older_authenticated_record_does_not_move_the_peer() -> None:
    """RFC 9146 §6: the peer address is updated only for an authenticated record that is newer
    than the newest one received; an older (unseen, in-window) one is delivered but moves
    nothing, a newer one then moves the connection."""
    server = dtls_server(connection_id_length=4)
    link = _cid_pair(server, CLIENT_ADDRESS)
    events_of(server)
    connection = server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    client = link.client
    base = client._write_seq[1]
    client._write_seq[1] = base + 5
    newest = client.seal(b"newest")
    client._write_seq[1] = base + 2
    older = client.seal(b"older")
    server.receive_datagram(newest, CLIENT_ADDRESS, 0.0)
    server.receive_datagram(older, OTHER, 0.0)
    assert events_of(server) == [
        (CLIENT_ADDRESS, ApplicationData(b"newest")),
        (CLIENT_ADDRESS, ApplicationData(b"older")),
    ]
    assert server.address_of(connection) == CLIENT_ADDRESS
    client._write_seq[1] = base + 6
    server.receive_datagram(client.seal(b"newer"), OTHER, 0.0)
    assert events_of(server) == [
        (OTHER, PeerAddressChanged(CLIENT_ADDRESS, OTHER)),
        (OTHER, ApplicationData(b"newer")),
    ]
    assert server.connection_for(OTHER) is connection
    assert server.connection_for(CLIENT_ADDRESS) is None


def test_a_peer_moving_onto_an_address_in_use_takes_it_over() -> None:
    """RFC 9146 §6: an authenticated, newest CID record moves its connection to the datagram's
    address, also when another connection was known there (NAT rebinding reuses addresses)."""
    server = dtls_server(connection_id_length=4)
    mover = _cid_pair(server, CLIENT_ADDRESS)
    _cid_pair(server, OTHER)
    events_of(server)
    moving = server.connection_for(CLIENT_ADDRESS)
    assert moving is not None
    assert server.connection_for(OTHER) is not moving
    server.receive_datagram(mover.client.seal(b"here now"), OTHER, 0.0)
    assert events_of(server) == [
        (OTHER, PeerAddressChanged(CLIENT_ADDRESS, OTHER)),
        (OTHER, ApplicationData(b"here now")),
    ]
    assert server.connection_for(OTHER) is moving
    assert server.connection_for(CLIENT_ADDRESS) is None
    server.send(OTHER, b"reply")
    ((reply, address),) = server.datagrams_to_send(0.0)
    assert address == OTHER
    mover.client.receive_datagram(reply, 0.0)
    assert mover.client.next_event() == ApplicationData(b"reply")


def test_a_closed_connection_is_no_longer_reachable_by_its_cid() -> None:
    """RFC 9146 §6 / RFC 5246 §7.2.1: after close_notify the CID no longer routes; a record
    with it (even one that would authenticate) is dropped."""
    server = dtls_server(connection_id_length=4)
    link = _cid_pair(server, CLIENT_ADDRESS)
    late = link.client.seal(b"late")
    server.close(CLIENT_ADDRESS)
    events_of(server)
    server.datagrams_to_send(0.0)
    assert len(server) == 0
    assert server.open_record(late, CLIENT_ADDRESS) is None
    server.receive_datagram(late, OTHER, 0.0)
    assert events_of(server) == []
    assert server.datagrams_to_send(0.0) == []


def test_connection_ids_are_unique(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 9146 §3: the CID identifies the connection to its receiver; a collision with a CID in
    use is never handed out (the random draw is repeated)."""
    server = dtls_server(connection_id_length=2)
    draws = iter([b"\x01\x01", b"\x01\x01", b"\x02\x02"])
    real = server_module.os.urandom
    monkeypatch.setattr(server_module.os, "urandom", lambda n: next(draws) if n == 2 else real(n))
    first = _cid_pair(server, CLIENT_ADDRESS)
    second = _cid_pair(server, OTHER)
    a = server.connection_for(CLIENT_ADDRESS)
    b = server.connection_for(OTHER)
    assert a is not None
    assert b is not None
    assert (a.connection_id, b.connection_id) == (b"\x01\x01", b"\x02\x02")
    assert first.exchange(b"a") == (b"a", b"a")
    assert second.exchange(b"b") == (b"b", b"b")


def test_records_for_no_connection_take_no_path() -> None:
    """RFC 6347 §4.1.2.7: records that belong to no association are dropped; ``open_record``
    offers no fast path for them (unknown address, or CID records on a server without CIDs)."""
    server = dtls_server()
    link = established(server)
    record = link.client.seal(b"x")
    assert server.open_record(record, OTHER) is None
    assert server.open_record(b"", CLIENT_ADDRESS) is None
    cid_record = bytes([ContentType.TLS12_CID]) + record[1:]
    assert server.open_record(cid_record, CLIENT_ADDRESS) is None
    server.receive_datagram(record, OTHER, 0.0)
    server.receive_datagram(cid_record, CLIENT_ADDRESS, 0.0)
    assert events_of(server) == []
    connection = server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    assert connection.state is ConnectionState.ESTABLISHED
