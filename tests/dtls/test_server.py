"""The server demultiplexer: stateless cookies (RFC 6347 §4.2.1), floods, routing, limits."""

from __future__ import annotations

import tracemalloc

import pytest

from lwm2m.buffer import Buffer
from lwm2m.dtls import (
    ApplicationData,
    ConnectionClosed,
    ConnectionState,
    CookieGenerator,
    DtlsConfiguration,
    DtlsConnection,
    DtlsServer,
    DtlsStateError,
    HandshakeCompleted,
    ServerEvent,
)
from lwm2m.dtls import messages as m
from lwm2m.dtls.constants import DTLS_1_0, DTLS_1_2, ContentType, HandshakeType
from lwm2m.dtls.record import encode_record, parse_datagram

from .helpers import (
    CLIENT_ADDRESS,
    FakeClock,
    Link,
    dtls_server,
    psk_client,
    psk_server_credentials,
)


def client_hello_datagram(
    random: bytes = bytes(32),
    cookie: bytes = b"",
    *,
    record_seq: int = 0,
    message_seq: int = 0,
    version: int = 0xFEFD,
) -> bytes:
    body = Buffer()
    m.push_client_hello(body, m.ClientHello(random, b"", cookie, (0xC0A8, 0x00FF)))
    return encode_record(
        ContentType.HANDSHAKE,
        version,
        0,
        record_seq,
        m.encode_handshake(HandshakeType.CLIENT_HELLO, message_seq, body.data),
    )


def test_hello_verify_request_echoes_sequence_numbers() -> None:
    server = dtls_server()
    server.receive_datagram(
        client_hello_datagram(record_seq=7, message_seq=0, version=0xFE00), "a", 0
    )
    ((reply, address),) = server.datagrams_to_send(0)
    assert address == "a"
    (record,) = parse_datagram(reply)
    # the record says DTLS 1.2 whatever the hello's record said (old tinydtls drops others),
    # the message DTLS 1.0 (RFC 6347 §4.2.1)
    assert (record.content_type, record.version, record.epoch, record.sequence_number) == (
        ContentType.HANDSHAKE,
        DTLS_1_2,
        0,
        7,
    )
    fragment = m.pull_handshake_fragment(Buffer(record.fragment))
    assert (fragment.msg_type, fragment.message_seq) == (HandshakeType.HELLO_VERIFY_REQUEST, 0)
    request = m.pull_hello_verify_request(Buffer(fragment.fragment))
    assert request.version == DTLS_1_0
    assert len(request.cookie) == 32
    assert len(server) == 0
    # The same hello with that cookie creates the connection (and a ServerHello flight).
    server.receive_datagram(
        client_hello_datagram(cookie=request.cookie, record_seq=8, message_seq=1), "a", 0
    )
    assert len(server) == 1
    replies = server.datagrams_to_send(0)
    first = parse_datagram(replies[0][0])[0]
    assert first.sequence_number == 8  # continues from the ClientHello's record number
    assert m.pull_handshake_fragment(Buffer(first.fragment)).message_seq == 1
    # A cookie is bound to the address and to the hello.
    for other in (
        (client_hello_datagram(cookie=request.cookie), "b"),
        (client_hello_datagram(random=b"\x01" * 32, cookie=request.cookie), "c"),
        (client_hello_datagram(cookie=bytes(32)), "d"),
    ):
        server.receive_datagram(*other, 0)
    assert len(server) == 1
    assert len(server.datagrams_to_send(0)) == 3  # three fresh HelloVerifyRequests


def test_client_hello_flood_leaves_no_state() -> None:
    server = dtls_server()

    def flood(start: int, count: int) -> None:
        for n in range(start, start + count):
            server.receive_datagram(
                client_hello_datagram(random=n.to_bytes(32, "big"), record_seq=n),
                ("198.51.100.1", n),
                n * 1e-4,
            )
            if n % 100 == 99:
                assert len(server.datagrams_to_send(n * 1e-4)) == 100

    tracemalloc.start()
    try:
        flood(0, 2500)  # warm-up: fills interpreter free lists, which tracemalloc counts
        before = tracemalloc.get_traced_memory()[0]
        flood(2500, 5000)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(server) == 0
    assert server.get_timer() is None
    assert server.datagrams_to_send(2.0) == []
    assert after - before < 16 * 1024, after - before  # 5,000 hellos, nothing kept per client


def test_stateless_replies_are_capped_when_not_drained() -> None:
    server = dtls_server()
    for n in range(4100):
        server.receive_datagram(client_hello_datagram(), ("x", n), 0.0)
    assert len(server.datagrams_to_send(0.0)) == 4096


def test_cookie_rotation() -> None:
    generator = CookieGenerator(lifetime=10.0)
    hello = m.ClientHello(bytes(32), b"", b"", (0xC0A8,))
    cookie = generator.generate(b"a", hello, 0.0)
    assert generator.verify(cookie, b"a", hello, 9.0)
    assert generator.verify(cookie, b"a", hello, 15.0)  # previous secret still accepted
    assert not generator.verify(cookie, b"a", hello, 25.0)  # two rotations later
    assert not generator.verify(cookie[:5], b"a", hello, 25.0)
    fresh = generator.generate(b"a", hello, 100.0)  # long idle: both secrets replaced
    assert not generator.verify(cookie, b"a", hello, 100.0)
    assert generator.verify(fresh, b"a", hello, 100.0)
    with pytest.raises(ValueError, match="positive"):
        CookieGenerator(lifetime=0)
    assert repr(generator) == "CookieGenerator(lifetime=10.0)"


def test_garbage_and_non_hello_datagrams_from_unknown_addresses_are_dropped() -> None:
    server = dtls_server()
    for datagram in (
        b"",
        b"\x16",
        encode_record(ContentType.APPLICATION_DATA, 0xFEFD, 1, 0, b"x" * 40),
        encode_record(ContentType.HANDSHAKE, 0xFEFD, 0, 0, m.encode_handshake(1, 0, b"\x01\x02")),
        client_hello_datagram()[:-3],
        client_hello_datagram(version=0x0303),
        # A fragmented first ClientHello cannot be checked statelessly.
        encode_record(
            ContentType.HANDSHAKE, 0xFEFD, 0, 0, m.encode_handshake(1, 0, bytes(60), 0, 20)
        ),
    ):
        server.receive_datagram(datagram, "z", 0.0)
    assert server.datagrams_to_send(0.0) == []
    assert len(server) == 0
    assert server.next_event() is None


def test_max_connections() -> None:
    server = dtls_server(max_connections=2)
    for n in range(3):
        Link(psk_client(), server, address=("10.0.0.1", n)).run()
    assert len(server) == 2
    assert {server.address_of(c) for c in server} == {("10.0.0.1", 0), ("10.0.0.1", 1)}


class Network:
    """Several clients and one server on an in-memory network, datagrams routed by address."""

    def __init__(self, server: DtlsServer, clock: FakeClock) -> None:
        self.server = server
        self.clock = clock
        self.clients: dict[tuple[str, int], DtlsConnection] = {}
        self.client_events: dict[tuple[str, int], list[object]] = {}
        self.server_events: list[ServerEvent] = []

    def pump(self) -> None:
        now = self.clock.now
        for _ in range(100):
            moved = False
            for address, client in self.clients.items():
                for data in client.datagrams_to_send(now):
                    self.server.receive_datagram(data, address, now)
                    moved = True
                while (event := client.next_event()) is not None:
                    self.client_events[address].append(event)
            for data, address in self.server.datagrams_to_send(now):
                self.clients[address].receive_datagram(data, now)  # type: ignore[index]
                moved = True
            while (server_event := self.server.next_event()) is not None:
                self.server_events.append(server_event)
            if not moved:
                return
        raise AssertionError("datagram storm")

    def connect(self, port: int) -> DtlsConnection:
        address = ("10.0.0.1", port)
        client = self.clients[address] = psk_client()
        self.client_events[address] = []
        client.connect(self.clock.now)
        self.pump()
        return client

    def send(self, port: int, payload: bytes) -> list[bytes]:
        """``payload`` from the client at ``port``; what the server received (this call)."""
        before = len(self.server_events)
        self.clients[("10.0.0.1", port)].send(payload)
        self.pump()
        return [
            e.event.data
            for e in self.server_events[before:]
            if isinstance(e.event, ApplicationData)
        ]


def stale_test_network() -> tuple[Network, FakeClock]:
    clock = FakeClock(1000.0)
    server = dtls_server(max_connections=2, stale_connection_threshold=60.0)
    return Network(server, clock), clock


def test_full_table_refuses_a_new_client_while_no_connection_is_stale() -> None:
    net, clock = stale_test_network()
    a, b = net.connect(1), net.connect(2)
    assert a.state is b.state is ConnectionState.ESTABLISHED
    clock.advance(59.0)  # b idle since its handshake, but not for 60 s
    c = net.connect(3)
    assert c.state is ConnectionState.HANDSHAKING  # its cookie-verified hello was ignored
    assert len(net.server) == 2
    assert net.server.connection_for(("10.0.0.1", 3)) is None
    assert net.send(1, b"a") == [b"a"]
    assert net.send(2, b"b") == [b"b"]


def test_full_table_evicts_the_least_recently_active_stale_connection() -> None:
    net, clock = stale_test_network()
    net.connect(1)
    net.connect(2)
    old_b = net.server.connection_for(("10.0.0.1", 2))
    clock.advance(30.0)
    net.connect(3)  # refused; a and b are requeued as active now (t = 1030)
    clock.advance(40.0)
    assert net.send(1, b"a") == [b"a"]  # a is active at t = 1070, b is not
    clock.advance(35.0)  # t = 1105: b idle for 75 s since it was requeued
    del net.clients[("10.0.0.1", 3)]
    c = net.connect(4)
    assert c.state is ConnectionState.ESTABLISHED
    assert {net.server.address_of(x) for x in net.server} == {("10.0.0.1", 1), ("10.0.0.1", 4)}
    closed = [
        e.event
        for e in net.server_events
        if e.connection is old_b and isinstance(e.event, ConnectionClosed)
    ]
    assert len(closed) == 1
    assert closed[0].reason == "evicted: no record for 75 s"
    # the evicted client was told (close_notify), so it can handshake again at once
    b_closed = [e for e in net.client_events[("10.0.0.1", 2)] if isinstance(e, ConnectionClosed)]
    assert len(b_closed) == 1
    assert b_closed[0].by_peer
    assert net.clients[("10.0.0.1", 2)].state is ConnectionState.CLOSED
    assert net.send(1, b"still") == [b"still"]
    assert net.send(4, b"new") == [b"new"]


def test_a_busy_full_table_costs_one_pass_then_refuses_at_once() -> None:
    """Each requeue is paid for by a record: a second hello right after finds the head fresh."""
    net, clock = stale_test_network()
    net.connect(1)
    net.connect(2)
    clock.advance(100.0)
    assert net.send(1, b"x") == [b"x"]
    assert net.send(2, b"y") == [b"y"]
    queued = net.server._queued
    net.connect(3)  # both requeued (active since queued), nothing evicted
    assert [since for since, _ in queued.values()] == [1100.0, 1100.0]
    first = list(queued)
    net.connect(5)  # no record since: the head is fresh, refused without moving anything
    assert list(queued) == first
    assert len(net.server) == 2


def test_eviction_can_be_disabled() -> None:
    clock = FakeClock(1000.0)
    net = Network(dtls_server(max_connections=1, stale_connection_threshold=None), clock)
    net.connect(1)
    clock.advance(10**6)
    assert net.connect(2).state is ConnectionState.HANDSHAKING
    assert net.send(1, b"a") == [b"a"]


def test_new_client_hello_replaces_established_association() -> None:
    """RFC 6347 §4.2.8: a client that lost state reconnects from the same address."""
    server = dtls_server()
    first = Link(psk_client(), server)
    first.run()
    old = server.connection_for(CLIENT_ADDRESS)
    second = Link(psk_client(), server)
    second.run()
    new = server.connection_for(CLIENT_ADDRESS)
    assert new is not None
    assert new is not old
    assert second.completed(second.server_events) is not None
    assert len(server) == 1
    assert second.exchange(b"new") == (b"new", b"wen")


def test_restarted_client_mid_handshake_gets_a_fresh_handshake() -> None:
    server = dtls_server()
    abandoned = psk_client()
    abandoned.connect(0.0)
    Link(abandoned, server).pump()  # cookie exchange done, server waits for flight 5
    for _d in abandoned.datagrams_to_send(0.0):
        pass
    assert len(server) == 1
    link = Link(psk_client(), server)
    link.run()
    assert link.completed(link.server_events) is not None


def test_server_api_errors_and_timers() -> None:
    with pytest.raises(ValueError, match="server configuration"):
        DtlsServer(configuration=DtlsConfiguration(), credentials=psk_server_credentials())
    server = dtls_server()
    with pytest.raises(DtlsStateError):
        server.send(("nobody", 1), b"x")
    server.close(("nobody", 1))  # no-op
    clock = FakeClock(0.0)
    client = psk_client()
    # Everything after the client's second ClientHello is lost.
    link = Link(client, server, clock=clock, mutate=lambda d: [d] if d.index <= 2 else [])
    link.run(max_time=1000)
    assert server.get_timer() is None
    events = [e for e in link.server_events if isinstance(e, ConnectionClosed)]
    assert events == [ConnectionClosed(None, False, "handshake timeout")]
    assert len(server) == 0
    assert isinstance(link.client_events[-1], ConnectionClosed)


def test_server_close_sends_close_notify() -> None:
    server = dtls_server()
    link = Link(psk_client(), server)
    link.run()
    server.close(CLIENT_ADDRESS)
    link.pump()
    assert isinstance(link.client_events[-1], ConnectionClosed)
    assert len(server) == 0


def test_retransmitted_client_finished_gets_server_flight_again() -> None:
    """The server's last flight is lost: the client's retransmission brings it back."""
    link = Link(psk_client(), dtls_server())
    link.client.connect(link.clock.now)
    last_server_flight: list[int] = []

    def lose_final(datagram):  # type: ignore[no-untyped-def]
        if not datagram.to_server and datagram.index >= 5 and not last_server_flight:
            last_server_flight.append(datagram.index)
            return []
        return [datagram]

    link.mutate = lose_final
    link.run(connect=False)
    assert link.completed(link.client_events) is not None
    assert last_server_flight
    # The server got app data: its lingering flight is released.
    link.exchange()
    connection = link.server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    assert connection._flight is None
    assert [type(e) for e in link.server_events].count(HandshakeCompleted) == 1
    assert [type(e) for e in link.server_events].count(ApplicationData) == 1
