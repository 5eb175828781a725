"""Paths of :class:`~lwm2m.io.coaps.DtlsSecurityLayer` a production server/client needs, driven
sans-IO (no sockets; time is passed explicitly as ``now``): server-side flight retransmission on
the layer's timer, a Connection-ID session moving to another session's address, a session
replaced by a new handshake, queueing while a client handshake runs, oversize datagrams, close,
close while a blocking-credential step runs in a worker thread, and the PSK loader's failures.

The :class:`Net` below delivers datagrams between layers the way the endpoint drives them: it
reads ``output_pending`` before ``datagrams_to_send`` and ``get_timer`` (so the
:class:`~test_coaps.CheckedLayer` of ``psk_server``/``psk_client`` checks that contract), and it
collects what ``received`` hands out of band.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from test_coaps import IDENTITY, KEY, TIMEOUT, BlockingPsk, psk_client, psk_server

import lwm2m.io.coaps as coaps
from lwm2m.dtls import (
    ConnectionState,
    DtlsConfiguration,
    DtlsCredentials,
    PskCredential,
    SoftwarePsk,
    SoftwarePskStore,
)
from lwm2m.io.coaps import (
    DtlsLayerConfig,
    DtlsSecurityLayer,
    DtlsSessionError,
    PeerSecurity,
    SessionKey,
)

SERVER = ("192.0.2.1", 5684)
CLIENT = ("198.51.100.7", 40001)
OTHER = ("198.51.100.8", 40002)

_HANDSHAKE = 22
_SERVER_HELLO = 2
_CLIENT_KEY_EXCHANGE = 16


def handshake_type(data: bytes) -> int | None:
    """The type of the first handshake message of an epoch-0 datagram (else None)."""
    if len(data) > 13 and data[0] == _HANDSHAKE and data[3:5] == b"\x00\x00":
        return data[13]
    return None


Lose = Callable[[tuple[Any, ...], tuple[Any, ...], bytes], bool]


class Net:
    """Layers at UDP addresses, datagrams delivered until nothing moves."""

    def __init__(self) -> None:
        self.layers: dict[tuple[Any, ...], DtlsSecurityLayer] = {}
        self.received: dict[tuple[Any, ...], list[tuple[bytes, Any]]] = defaultdict(list)
        self.lost: list[tuple[tuple[Any, ...], bytes]] = []

    def add(self, address: tuple[Any, ...], layer: DtlsSecurityLayer) -> DtlsSecurityLayer:
        self.layers[address] = layer
        return layer

    def move(self, old: tuple[Any, ...], new: tuple[Any, ...]) -> None:
        """The host at ``old`` now sends from and is reached at ``new`` (NAT rebinding)."""
        self.layers[new] = self.layers.pop(old)

    def flush(self, address: tuple[Any, ...], now: float) -> list[tuple[bytes, Any]]:
        """What the endpoint does after every call into its layer."""
        layer = self.layers[address]
        self.received[address] += layer.received(now)
        out = layer.datagrams_to_send(now) if layer.output_pending else []
        if layer.output_pending:
            layer.get_timer()
        return out

    def run(self, now: float, lose: Lose | None = None) -> int:
        """Deliver until quiet; ``lose(source, destination, datagram)`` drops a datagram.
        Returns how many datagrams were sent."""
        sent = 0
        for _ in range(50):
            moved = False
            for source in list(self.layers):
                if source not in self.layers:
                    continue
                for data, where in self.flush(source, now):
                    moved = True
                    sent += 1
                    destination = tuple(where)
                    if lose is not None and lose(source, destination, data):
                        self.lost.append((destination, data))
                        continue
                    target = self.layers.get(destination)
                    if target is not None:
                        self.received[destination] += target.unprotect(data, source, now)
            if not moved:
                return sent
        raise AssertionError("the layers never went quiet")

    def fire(self, address: tuple[Any, ...], now: float) -> None:
        """The endpoint's timer of the layer at ``address`` fires at ``now``."""
        self.layers[address].handle_timer(now)


def unchecked_server(**layer: Any) -> DtlsSecurityLayer:
    """A PSK server layer without the ``output_pending`` checks, for tests that close it (see
    ``test_close_leaves_no_stale_server_timer``)."""
    return DtlsSecurityLayer(
        server_credentials=DtlsCredentials(psk_store=SoftwarePskStore({IDENTITY: KEY})), **layer
    )


def cid_server(**layer: Any) -> DtlsSecurityLayer:
    return psk_server(config=DtlsLayerConfig(server_connection_id_length=4), **layer)


def established(
    net: Net, client_at: tuple[Any, ...], payload: bytes, now: float = 1.0
) -> tuple[Any, Any]:
    """Open the session of the client layer at ``client_at`` with ``payload`` as its first
    datagram; (the client's peer key, the server's peer key)."""
    client = net.layers[client_at]
    peer = client.connect(SERVER, now)
    assert client.protect(payload, peer, now) == []
    before = len(net.received[SERVER])
    net.run(now)
    ((data, key),) = net.received[SERVER][before:]
    assert data == payload
    return peer, key


# -- 1. server-side retransmission -----------------------------------------------------------


def test_lost_server_flight_is_resent_when_the_layer_timer_fires() -> None:
    """The server's flight 4 (ServerHello ... ServerHelloDone) is lost: only the server's own
    retransmission timer (the client's never fires here) recovers the handshake."""
    net = Net()
    server = net.add(SERVER, psk_server())
    client = net.add(CLIENT, psk_client())
    peer = client.connect(SERVER, 1.0)
    client.protect(b"queued request", peer, 1.0)

    def lose_flight_4(source: Any, destination: Any, data: bytes) -> bool:
        return source == SERVER and handshake_type(data) == _SERVER_HELLO and not net.lost

    net.run(1.0, lose=lose_flight_4)
    assert len(net.lost) == 1
    assert net.received[SERVER] == []
    deadline = server.get_timer()
    assert deadline is not None
    assert 1.0 < deadline <= 1.0 + 1.0  # RFC 6347 §4.2.4.1: 1 s initial timer
    server.handle_timer(deadline - 0.001)  # not due yet: nothing resent
    assert net.flush(SERVER, deadline - 0.001) == []
    assert server.get_timer() == deadline
    net.fire(SERVER, deadline)
    resent = net.flush(SERVER, deadline)
    assert [handshake_type(data) for data, _ in resent][:1] == [_SERVER_HELLO]
    assert {tuple(address) for _, address in resent} == {CLIENT}
    for data, _ in resent:
        assert client.unprotect(data, SERVER, deadline) == []
    net.run(deadline)
    key = client.peer_for(SERVER)
    assert key == peer
    ((data, server_key),) = net.received[SERVER]
    assert data == b"queued request"
    assert server_key == CLIENT
    assert (client.stats.handshakes, server.stats.handshakes) == (1, 1)
    assert server.stats.handshake_failures == 0
    ((reply, address),) = server.protect(b"reply", server_key, deadline)
    assert tuple(address) == CLIENT
    assert client.unprotect(reply, SERVER, deadline) == [(b"reply", peer)]


def test_server_handshake_that_times_out_is_counted_and_forgotten(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that goes silent after its cookie round trip: the server resends its flight on
    its timer ``max_retransmissions`` times, then gives up: a handshake failure, logged, no
    session, no timer left, nobody to fail (no peer key was handed out)."""
    quick = DtlsConfiguration(initial_retransmit_timeout=0.5, max_retransmissions=2)
    net = Net()
    server = net.add(SERVER, psk_server(config=DtlsLayerConfig(dtls=quick)))
    client = net.add(CLIENT, psk_client())
    client.connect(SERVER, 1.0)
    net.run(1.0, lose=lambda source, _, data: handshake_type(data) == _SERVER_HELLO)
    assert [handshake_type(data) for _, data in net.lost][:1] == [_SERVER_HELLO]
    del net.layers[CLIENT]  # silent from now on
    resends = 0
    with caplog.at_level(logging.INFO, logger="lwm2m.io.coaps"):
        while (deadline := server.get_timer()) is not None:
            assert resends < 5
            net.fire(SERVER, deadline)
            flight = net.flush(SERVER, deadline)
            if flight:
                assert handshake_type(flight[0][0]) == _SERVER_HELLO
                resends += 1
    assert resends == 2
    assert server.stats.handshake_failures == 1
    assert server.stats.handshakes == 0
    assert server.session_count == 0
    assert server.failed_peers() == []
    assert any(
        "DTLS handshake from 198.51.100.7:40001 failed: handshake timeout" in r.getMessage()
        for r in caplog.records
    )


# -- 2. a CID session whose client changes address -------------------------------------------


def two_cid_clients() -> tuple[Net, DtlsSecurityLayer, tuple[Any, Any], tuple[Any, Any]]:
    """A CID server with two established sessions: A (CID) at CLIENT, B (no CID) at OTHER."""
    net = Net()
    server = net.add(SERVER, cid_server())
    net.add(CLIENT, psk_client())
    net.add(OTHER, psk_client(config=DtlsLayerConfig(client_connection_id=False)))
    a = established(net, CLIENT, b"a: hello")
    b = established(net, OTHER, b"b: hello")
    assert isinstance(a[1], SessionKey)
    assert b[1] == OTHER  # no CID: keyed by address
    assert server.session_count == 2
    return net, server, a, b


def test_cid_session_moving_onto_another_sessions_address_displaces_it() -> None:
    """A's NAT rebinding hands it the address B had (B is gone): A's authenticated CID record
    from there moves A; B's session is forgotten; the old address maps to nothing."""
    net, server, (a_peer, a_key), (b_peer, b_key) = two_cid_clients()
    a_client, b_client = net.layers[CLIENT], net.layers[OTHER]
    del net.layers[OTHER]
    net.move(CLIENT, OTHER)
    ((record, _),) = a_client.protect(b"a: after rebinding", a_peer, 2.0)
    assert server.unprotect(record, OTHER, 2.0) == [(b"a: after rebinding", a_key)]
    # A lives at OTHER now; CLIENT maps to no session, B's session is gone.
    assert server.address_of(a_key) == OTHER
    assert server.peer_for(OTHER) is a_key
    assert server.connect(OTHER, 2.0) is a_key  # a request to the address reaches A's session
    assert server.peer_for(CLIENT) is None
    assert server.address_of(b_key) is None
    assert server.session_count == 1
    dropped = server.stats.dropped
    assert server.protect(b"to b", b_key, 2.0) == []
    assert server.stats.dropped == dropped + 1
    # Replies to A go to its new address; A's next records take the fast path from there.
    ((reply, address),) = server.protect(b"a: reply", a_key, 2.0)
    assert tuple(address) == OTHER
    assert a_client.unprotect(reply, SERVER, 2.0) == [(b"a: reply", a_peer)]
    ((record, _),) = a_client.protect(b"a: next", a_peer, 2.0)
    assert server.unprotect(record, OTHER, 2.0) == [(b"a: next", a_key)]
    # A stale record of B's session from that address delivers nothing and harms nothing.
    ((stale, _),) = b_client.protect(b"b: stale", b_peer, 2.0)
    assert server.unprotect(stale, OTHER, 2.0) == []
    # The next rebinding (a newer authenticated record from a third address) moves A on, and
    # OTHER in turn maps to nothing.
    third = ("203.0.113.9", 50003)
    ((record, _),) = a_client.protect(b"a: rebinding again", a_peer, 2.0)
    assert server.unprotect(record, third, 2.0) == [(b"a: rebinding again", a_key)]
    assert server.address_of(a_key) == third
    assert server.peer_for(OTHER) is None
    assert server.peer_for(CLIENT) is None
    assert net.flush(SERVER, 2.0) == []


def test_displaced_session_fails_its_waiters() -> None:
    net, server, (a_peer, a_key), (_, b_key) = two_cid_clients()
    assert server.failed_peers() == []
    a_client = net.layers[CLIENT]
    del net.layers[OTHER]
    net.move(CLIENT, OTHER)
    ((record, _),) = a_client.protect(b"a: after rebinding", a_peer, 2.0)
    assert server.unprotect(record, OTHER, 2.0) == [(b"a: after rebinding", a_key)]
    failed = dict(server.failed_peers())
    assert list(failed) == [b_key]
    assert isinstance(failed[b_key], DtlsSessionError)


# -- 3. a server session replaced by a new handshake from the same address -------------------


def test_cid_session_replaced_by_a_new_handshake_fails_its_waiters() -> None:
    """The device at CLIENT restarts and handshakes again: the old CID session (its own
    SessionKey) is replaced; whoever waits on it fails with "replaced by a new one"."""
    net = Net()
    server = net.add(SERVER, cid_server())
    net.add(CLIENT, psk_client())
    _, old_key = established(net, CLIENT, b"first life")
    assert server.failed_peers() == []
    restarted = net.add(CLIENT, psk_client())  # new layer, same address: all state lost
    new_peer, new_key = established(net, CLIENT, b"second life", now=2.0)
    assert isinstance(new_key, SessionKey)
    assert new_key is not old_key
    ((key, error),) = server.failed_peers()
    assert key is old_key
    assert isinstance(error, DtlsSessionError)
    assert str(error) == "the DTLS session with 198.51.100.7:40001 was replaced by a new one"
    assert server.address_of(old_key) is None
    assert server.peer_for(CLIENT) is new_key
    assert server.session_count == 1
    assert server.protect(b"to the old session", old_key, 2.0) == []
    ((reply, _),) = server.protect(b"to the new one", new_key, 2.0)
    assert restarted.unprotect(reply, SERVER, 2.0) == [(b"to the new one", new_peer)]


def test_address_keyed_session_replaced_by_a_new_handshake_keeps_its_key() -> None:
    """Without CIDs the key is the address: the new session takes it over, nothing fails (the
    endpoint's exchanges with that address continue over the new session)."""
    net = Net()
    server = net.add(SERVER, psk_server())
    net.add(CLIENT, psk_client())
    _, old_key = established(net, CLIENT, b"first life")
    restarted = net.add(CLIENT, psk_client())
    new_peer, new_key = established(net, CLIENT, b"second life", now=2.0)
    assert old_key == new_key == CLIENT
    assert server.failed_peers() == []
    assert server.session_count == 1
    assert server.stats.handshakes == 2
    ((reply, _),) = server.protect(b"reply", new_key, 2.0)
    assert restarted.unprotect(reply, SERVER, 2.0) == [(b"reply", new_peer)]


def both_roles() -> DtlsSecurityLayer:
    return DtlsSecurityLayer(
        server_credentials=DtlsCredentials(psk_store=SoftwarePskStore({IDENTITY: KEY})),
        client_credentials=DtlsCredentials(psk=SoftwarePsk(IDENTITY, KEY)),
    )


def test_peer_opening_its_own_session_ends_our_client_session() -> None:
    """Both hosts have both roles. Ours (at SERVER) opened a session to the peer; the peer
    restarts and opens its own session to us: one association per address, the peer's wins."""
    net = Net()
    ours = net.add(SERVER, both_roles())
    net.add(CLIENT, both_roles())
    peer = ours.connect(CLIENT, 1.0)
    ours.protect(b"ours: hello", peer, 1.0)
    net.run(1.0)
    assert net.received[CLIENT] == [(b"ours: hello", SERVER)]
    restarted = net.add(CLIENT, both_roles())
    theirs = restarted.connect(SERVER, 2.0)
    restarted.protect(b"theirs: hello", theirs, 2.0)
    for now in (2.0, 3.0, 5.0, 9.0, 17.0):  # give retransmissions their chance too
        net.fire(SERVER, now)
        net.fire(CLIENT, now)
        net.run(now)
    assert net.received[SERVER] == [(b"theirs: hello", CLIENT)]
    failed = dict(ours.failed_peers())
    assert "the peer opened its own session" in str(failed[CLIENT])


# -- 4. client-side queueing while the handshake runs ----------------------------------------


def test_datagrams_queue_while_the_handshake_runs(caplog: pytest.LogCaptureFixture) -> None:
    """Queued in order, a CoAP retransmission of the same bytes once, beyond ``max_queued``
    dropped and counted; released once established (one that cannot fit a record: dropped,
    counted and logged at release)."""
    net = Net()
    net.add(SERVER, psk_server())
    client = net.add(CLIENT, psk_client(config=DtlsLayerConfig(max_queued=3)))
    peer = client.connect(SERVER, 1.0)
    oversize = b"o" * 3000  # more than one record of a 1200-byte datagram
    assert client.protect(b"one", peer, 1.0) == []
    assert client.protect(b"two", peer, 1.0) == []
    assert client.protect(b"one", peer, 1.0) == []  # a retransmission: not queued twice
    assert client.stats.dropped == 0
    assert client.protect(oversize, peer, 1.0) == []
    assert client.protect(b"four", peer, 1.0) == []  # the queue is full: dropped
    assert client.protect(b"five", peer, 1.0) == []
    assert client.stats.dropped == 2
    with caplog.at_level(logging.WARNING, logger="lwm2m.io.coaps"):
        net.run(1.0)
    assert net.received[SERVER] == [(b"one", CLIENT), (b"two", CLIENT)]
    assert client.stats.dropped == 3
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "datagram dropped" in caplog.records[0].getMessage()
    assert "192.0.2.1:5684" in caplog.records[0].getMessage()
    # Established: straight out, duplicates included (the CoAP engine decides what to resend).
    server = net.layers[SERVER]
    for _ in range(2):
        ((record, address),) = client.protect(b"one", peer, 1.0)
        assert tuple(address) == SERVER
        assert server.unprotect(record, CLIENT, 1.0) == [(b"one", CLIENT)]
    assert net.flush(CLIENT, 1.0) == []


# -- 5. an established session that cannot seal a datagram -----------------------------------


@pytest.mark.parametrize("role", ["client", "server"])
def test_datagram_too_large_for_a_record_is_dropped_not_raised(
    role: str, caplog: pytest.LogCaptureFixture
) -> None:
    net = Net()
    server = net.add(SERVER, psk_server())
    client = net.add(CLIENT, psk_client())
    client_peer, server_key = established(net, CLIENT, b"hello")
    layer, key = (client, client_peer) if role == "client" else (server, server_key)
    with caplog.at_level(logging.WARNING, logger="lwm2m.io.coaps"):
        assert layer.protect(b"x" * 3000, key, 1.0) == []
    assert layer.stats.dropped == 1
    (record,) = [r for r in caplog.records if r.name == "lwm2m.io.coaps"]
    assert record.levelno == logging.WARNING
    assert "datagram dropped" in record.getMessage()
    assert "record limit" in record.getMessage()
    # The session is intact: the next datagram goes through.
    ((sealed, _),) = layer.protect(b"small", key, 1.0)
    other = server if role == "client" else client
    source = CLIENT if role == "client" else SERVER
    ((plaintext, _),) = other.unprotect(sealed, source, 1.0)
    assert plaintext == b"small"


# -- 6. close ---------------------------------------------------------------------------------


def test_close_twice_sends_close_notify_once() -> None:
    net = Net()
    server = net.add(SERVER, unchecked_server())
    client = net.add(CLIENT, psk_client())
    established(net, CLIENT, b"hello")
    server.close(5.0)
    notify = net.flush(SERVER, 5.0)
    assert [tuple(address) for _, address in notify] == [CLIENT]  # one close_notify
    assert server.session_count == 0
    server.close(6.0)  # a no-op
    assert net.flush(SERVER, 6.0) == []
    assert server.session_count == 0
    assert server.failed_peers() == []  # our own close: nobody is waiting any more
    with pytest.raises(DtlsSessionError, match="closed"):
        server.connect(OTHER, 6.0)
    ((data, _),) = notify
    client.unprotect(data, SERVER, 6.0)
    ((peer, error),) = client.failed_peers()
    assert peer == SERVER
    assert "close_notify" in str(error)


@pytest.mark.parametrize("state", ["handshaking", "established"])
def test_close_leaves_no_stale_server_timer(state: str) -> None:
    net = Net()
    server = net.add(SERVER, unchecked_server())
    client = net.add(CLIENT, psk_client())
    if state == "established":
        established(net, CLIENT, b"hello")
    else:  # waiting for the client's flight 5, which is lost
        client.connect(SERVER, 1.0)
        net.run(1.0, lose=lambda _, __, data: handshake_type(data) == _CLIENT_KEY_EXCHANGE)
        assert server.session_count == 0
        assert server._server is not None
        assert len(server._server) == 1
    assert server.get_timer() is not None
    server.close(2.0)
    server.datagrams_to_send(2.0)
    assert server._server is not None
    assert server._server.get_timer() is None  # the demultiplexer has no connection left
    assert server.get_timer() is None


async def first_of(*events: asyncio.Event) -> None:
    """Wait until one of ``events`` is set (at most TIMEOUT)."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        assert done, "timed out"
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def blocked_handshake() -> tuple[Net, DtlsSecurityLayer, BlockingPsk, Any]:
    """A client layer attached to the loop (no endpoint) whose handshake step is blocked in a
    worker thread (its credential waits for ``psk.release``)."""
    psk = BlockingPsk(IDENTITY, KEY)
    woken = asyncio.Event()
    net = Net()
    net.add(SERVER, psk_server())
    client = net.add(CLIENT, DtlsSecurityLayer())
    client.attach(woken.set)
    client.set_peer(SERVER, PeerSecurity(DtlsCredentials(psk=psk), blocking=True))
    peer = client.connect(SERVER, 1.0)
    client.protect(b"request", peer, 1.0)
    # Every handshake datagram the client receives is processed in the worker thread; its
    # output comes back through the wakeup. Up to the step that derives the master secret.
    for _ in range(10):
        woken.clear()
        net.run(1.0)
        if psk.started.is_set():
            break
        await first_of(woken, psk.started)
    assert psk.started.is_set()
    session = client._clients[SERVER]
    assert session.busy
    assert client.stats.offloaded >= 2  # the HelloVerifyRequest, then flight 4
    return net, client, psk, session


async def test_close_while_a_handshake_step_runs_in_a_worker_thread() -> None:
    """close() does not touch the connection a worker thread is using; once the step is done,
    the connection is closed there (after the flight the step made), nobody is failed."""
    net, client, psk, session = await blocked_handshake()
    client.close(2.0)
    assert session.closing
    assert session.connection.state is ConnectionState.HANDSHAKING  # left to the worker
    assert client.session_count == 0
    psk.release.set()
    await asyncio.wait_for(client.wait_closed(), TIMEOUT)
    assert not session.busy
    assert session.connection.state is ConnectionState.CLOSED
    # The step's output (flight 5) was made before the close: it goes out, then close_notify
    # (epoch 1). The server completes the handshake and ends the session at once, leaving
    # neither a session nor a half-open connection to time out.
    out = net.flush(CLIENT, 2.0)
    assert [(data[0], handshake_type(data)) for data, _ in out] == [
        (_HANDSHAKE, _CLIENT_KEY_EXCHANGE),
        (21, None),  # alert
    ]
    assert out[1][0][3:5] == b"\x00\x01"  # epoch 1
    server = net.layers[SERVER]
    for data, _ in out:
        assert server.unprotect(data, CLIENT, 2.0) == []
    assert server.session_count == 0
    assert server._server is not None
    assert len(server._server) == 0
    ((key, error),) = server.failed_peers()
    assert key == CLIENT
    assert "close_notify" in str(error)
    net.run(2.0)
    assert net.received[SERVER] == []  # the queued request never left
    assert client.received(2.0) == []
    assert client.failed_peers() == []  # our own close
    assert client.stats.handshakes == 0


async def test_reset_while_a_handshake_step_runs_discards_its_outcome() -> None:
    """reset_peer() during an offloaded step fails the session's waiters at once; the step's
    result (flight 5) is dropped when it arrives."""
    net, client, psk, session = await blocked_handshake()
    (step,) = client._inflight
    client.reset_peer(SERVER)
    ((peer, error),) = client.failed_peers()
    assert peer == SERVER
    assert "session reset" in str(error)
    assert client.session_count == 0
    psk.release.set()
    await asyncio.wait_for(asyncio.wrap_future(step), TIMEOUT)  # resolves after _offloaded ran
    assert not session.busy
    assert [handshake_type(data) for data, _ in net.flush(CLIENT, 2.0)] == []
    assert client.received(2.0) == []
    assert client.stats.handshakes == 0
    client.close(3.0)
    await asyncio.wait_for(client.wait_closed(), TIMEOUT)


# -- 7. the PSK loader -----------------------------------------------------------------------


async def loader_net(
    loader: Callable[[bytes], Any], identity: bytes = b"late"
) -> tuple[Net, DtlsSecurityLayer, DtlsSecurityLayer, asyncio.Event]:
    """A server with an empty store and ``loader``, attached to the loop; a client of
    ``identity`` whose ClientKeyExchange has just been parked."""
    woken = asyncio.Event()
    net = Net()
    server = net.add(
        SERVER,
        DtlsSecurityLayer(
            server_credentials=DtlsCredentials(psk_store=SoftwarePskStore()), psk_loader=loader
        ),
    )
    server.attach(woken.set)
    client = net.add(CLIENT, psk_client(identity=identity))
    peer = client.connect(SERVER, 1.0)
    client.protect(b"request", peer, 1.0)
    net.run(1.0)
    assert net.received[SERVER] == []
    return net, server, client, woken


async def test_psk_loader_that_raises_fails_the_handshake_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[bytes] = []

    async def loader(identity: bytes) -> PskCredential | None:
        calls.append(identity)
        raise ConnectionError("the security store is down")

    with caplog.at_level(logging.INFO, logger="lwm2m.io.coaps"):
        net, server, client, woken = await loader_net(loader)
        await asyncio.wait_for(woken.wait(), TIMEOUT)  # the loader is done, the layer woke
        net.run(1.0)
    assert calls == [b"late"]
    (logged,) = [r for r in caplog.records if r.getMessage() == "psk_loader failed"]
    assert logged.levelno == logging.ERROR
    assert logged.exc_info is not None
    assert isinstance(logged.exc_info[1], ConnectionError)
    assert net.received[SERVER] == []
    ((peer, error),) = client.failed_peers()
    assert peer == SERVER
    assert isinstance(error, DtlsSessionError)
    assert "unknown_psk_identity" in str(error)
    assert server.stats.handshake_failures == 1
    assert server.session_count == 0
    assert server._parked == {}
    assert server._psk_store is not None
    assert server._psk_store.cache == {}  # a failure is not cached: the next attempt asks again


async def test_psk_loader_retransmissions_wait_with_the_first_and_the_cache_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ClientKeyExchange retransmitted while its identity loads waits too (the handshake goes
    on once, with both); loaded credentials are cached, the oldest evicted at the bound."""
    monkeypatch.setattr(coaps, "_MAX_PSK_CACHE", 1)
    gate, asked = asyncio.Event(), asyncio.Event()
    calls: list[bytes] = []

    async def loader(identity: bytes) -> PskCredential | None:
        calls.append(identity)
        asked.set()
        await gate.wait()
        return SoftwarePsk(identity, KEY)

    net, server, client, woken = await loader_net(loader)
    await asyncio.wait_for(asked.wait(), TIMEOUT)
    net.fire(CLIENT, 3.0)  # the client's flight 5 timer: a retransmission, parked as well
    net.run(3.0)
    assert len(server._parked[CLIENT]) == 2
    assert calls == [b"late"]
    gate.set()
    await asyncio.wait_for(woken.wait(), TIMEOUT)
    net.run(3.0)
    assert net.received[SERVER] == [(b"request", CLIENT)]
    assert server.stats.handshakes == 1
    assert server.stats.handshake_failures == 0
    assert client.failed_peers() == []
    # A second identity pushes the first out of the one-entry cache.
    woken.clear()
    second = net.add(OTHER, psk_client(identity=b"later"))
    second.protect(b"second", second.connect(SERVER, 4.0), 4.0)
    net.run(4.0)
    await asyncio.wait_for(woken.wait(), TIMEOUT)
    net.run(4.0)
    assert net.received[SERVER][1:] == [(b"second", OTHER)]
    assert server._psk_store is not None
    assert list(server._psk_store.cache) == [b"later"]
    assert calls == [b"late", b"later"]


async def test_closing_while_the_psk_loader_runs() -> None:
    """close() cancels a pending load; the parked handshake does not go on; wait_closed()
    returns."""
    started = asyncio.Event()
    cancelled: list[bytes] = []

    async def loader(identity: bytes) -> PskCredential | None:
        started.set()
        try:
            await asyncio.Event().wait()  # a store that never answers
        except asyncio.CancelledError:
            cancelled.append(identity)
            raise
        return None

    net, server, client, _ = await loader_net(loader)
    await asyncio.wait_for(started.wait(), TIMEOUT)
    server.close(2.0)
    await asyncio.wait_for(server.wait_closed(), TIMEOUT)
    assert cancelled == [b"late"]
    net.run(2.0)
    assert net.received[SERVER] == []
    assert server.stats.handshakes == 0
    assert client.stats.handshakes == 0


async def test_a_load_that_finishes_after_close_is_not_fed_to_the_closed_server() -> None:
    """A loader that swallows the cancellation and returns a credential anyway (a store client
    that catches it): the result comes after close() and is ignored; nothing more is sent."""
    started = asyncio.Event()

    async def loader(identity: bytes) -> PskCredential | None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return SoftwarePsk(identity, KEY)
        return None

    net, server, client, woken = await loader_net(loader)
    await asyncio.wait_for(started.wait(), TIMEOUT)
    server.close(2.0)
    net.flush(SERVER, 2.0)
    woken.clear()
    await asyncio.wait_for(server.wait_closed(), TIMEOUT)
    assert server._psk_store is not None
    assert list(server._psk_store.cache) == [b"late"]  # the load did finish after close()
    assert server._parked == {}
    assert not woken.is_set()  # nothing was fed to the server, nobody was woken
    assert net.flush(SERVER, 2.0) == []
    assert server.stats.handshakes == 0
    assert client.stats.handshakes == 0
