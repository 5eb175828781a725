"""More paths of :class:`~lwm2m.io.coaps.DtlsSecurityLayer`: peers that misbehave (garbage
datagrams, an alert the layer has no name for), two requests sharing one failing handshake,
several records in one datagram (RFC 6347 §4.1.1: application data with a close_notify, with the
server's Finished), the single timer of both roles, sessions ended by ``allow_plain`` /
``forget_peer`` (also while a blocking-credential step runs in a worker thread), the bounded inbox
of such a connection, credentials that fit no cipher suite and the PSK loader's edge cases.

Reuses :class:`~test_coaps_paths.Net` (sans-IO, explicit time) and the ``output_pending``-checking
layers of :mod:`test_coaps`; loopback tests run real :class:`CoapEndpoint` sockets.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, cast

import pytest
from test_coaps import IDENTITY, KEY, TIMEOUT, get, psk_client, psk_server
from test_coaps_paths import (
    CLIENT,
    OTHER,
    SERVER,
    Net,
    blocked_handshake,
    both_roles,
    cid_server,
    established,
    handshake_type,
)

import lwm2m.io.coaps as coaps
from lwm2m.dtls import (
    CipherSuite,
    ConnectionState,
    DtlsCredentials,
    PskCredential,
    SoftwarePsk,
    SoftwarePskStore,
)
from lwm2m.io.coap_endpoint import CoapEndpoint
from lwm2m.io.coap_transport import PeerIdentity
from lwm2m.io.coaps import DtlsSecurityLayer, DtlsSessionError, PeerSecurity, SessionKey

_CHANGE_CIPHER_SPEC = 20
_ALERT = 21
_CLIENT_KEY_EXCHANGE = 16


def test_session_key_compares_by_identity_not_by_address() -> None:
    """A new client at the old address gets another key (module docstring, SessionKey)."""
    first, second = SessionKey(CLIENT), SessionKey(CLIENT)
    assert first == first
    assert first != second
    assert (first == CLIENT, first != CLIENT) == (False, True)
    assert tuple(first) == CLIENT
    assert repr(first) == "SessionKey('198.51.100.7', 40001)"


# -- a peer that misbehaves, two requests waiting on its handshake ---------------------------


# A fatal alert with the unassigned description 250, in a plaintext epoch-0 record (seq 1).
ALERT_250 = bytes.fromhex("15fefd0000000000000001000202fa")


class RudeServer(asyncio.DatagramProtocol):
    """Answers each ClientHello with garbage, then a fatal alert of an unassigned code."""

    GARBAGE = (b"", b"\x17", b"\x17" + os.urandom(40), b"\x19" + os.urandom(40), os.urandom(7))

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.hello_randoms: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        assert self.transport is not None
        if handshake_type(data) == 1:  # ClientHello: random after 13 + 12 + 2 bytes
            self.hello_randoms.append(data[27:59])
            for garbage in self.GARBAGE:
                self.transport.sendto(garbage, addr)
            self.transport.sendto(ALERT_250, addr)


async def test_garbage_then_an_unknown_alert_fails_both_requests_sharing_the_handshake() -> None:
    loop = asyncio.get_running_loop()
    transport, rude = await loop.create_datagram_endpoint(RudeServer, local_addr=("127.0.0.1", 0))
    remote = transport.get_extra_info("sockname")
    layer = psk_client()
    try:
        async with await CoapEndpoint.create(security=layer) as client:
            request = asyncio.ensure_future(client.request(get("/who"), remote))
            observe = asyncio.ensure_future(client.observe(get("/obs"), remote))
            async with asyncio.timeout(TIMEOUT):  # far below the CoAP exchange lifetime
                outcomes = await asyncio.gather(request, observe, return_exceptions=True)
            assert len(set(rude.hello_randoms)) == 1  # both requests waited on one handshake
            for error in outcomes:
                assert isinstance(error, DtlsSessionError)
                assert str(error) == (
                    f"DTLS handshake with 127.0.0.1:{remote[1]} failed: the peer sent alert 250"
                )
                assert (error.alert, error.by_peer) == (250, True)
            assert layer.stats.handshake_failures == 1
            assert layer.session_count == 0
            assert layer.get_timer() is None  # no retransmission timer left behind
            # The next request opens a new session (and fails the same way).
            with pytest.raises(DtlsSessionError, match="alert 250"):
                async with asyncio.timeout(TIMEOUT):
                    await client.request(get("/who"), remote)
            assert len(set(rude.hello_randoms)) == 2
    finally:
        transport.close()


def test_garbage_to_an_established_client_session_changes_nothing() -> None:
    net = Net()
    server = net.add(SERVER, psk_server())
    client = net.add(CLIENT, psk_client())
    peer, key = established(net, CLIENT, b"hello")
    for garbage in (b"", b"\x17" + os.urandom(60), b"\x19" + os.urandom(60), b"\x14\x01"):
        assert client.unprotect(garbage, SERVER, 1.0) == []
        assert client.unprotect(garbage, OTHER, 1.0) == []  # no session there: dropped
    assert client.failed_peers() == []
    assert net.flush(CLIENT, 1.0) == []
    ((record, _),) = server.protect(b"still there", key, 1.0)
    assert client.unprotect(record, SERVER, 1.0) == [(b"still there", peer)]


# -- several records in one datagram (RFC 6347 §4.1.1) ---------------------------------------


@pytest.mark.parametrize("make_server", [psk_server, cid_server], ids=["by-address", "cid"])
def test_two_records_in_one_datagram_are_both_delivered_in_order(make_server: Any) -> None:
    net = Net()
    server = net.add(SERVER, make_server())
    client = net.add(CLIENT, psk_client())
    peer, key = established(net, CLIENT, b"hello")
    ((one, _),) = client.protect(b"one", peer, 1.0)
    ((two, _),) = client.protect(b"two", peer, 1.0)
    assert server.unprotect(one + two, CLIENT, 1.0) == [(b"one", key), (b"two", key)]
    ((three, _),) = server.protect(b"three", key, 1.0)
    ((four, _),) = server.protect(b"four", key, 1.0)
    assert client.unprotect(three + four, SERVER, 1.0) == [(b"three", peer), (b"four", peer)]
    assert (server.failed_peers(), client.failed_peers()) == ([], [])


@pytest.mark.parametrize("make_server", [psk_server, cid_server], ids=["by-address", "cid"])
def test_last_record_and_close_notify_in_one_datagram(make_server: Any) -> None:
    """The client's last request and its close_notify share a datagram: the request is
    delivered, the session ends (waiters fail), the server answers close_notify once and its
    demultiplexer forgets the connection; a server never reopens the session itself."""
    net = Net()
    server = net.add(SERVER, make_server())
    client = net.add(CLIENT, psk_client())
    peer, key = established(net, CLIENT, b"hello")
    ((last, _),) = client.protect(b"last", peer, 1.0)
    client.forget_peer(SERVER)
    ((notify, _),) = net.flush(CLIENT, 1.0)
    assert server.unprotect(last + notify, CLIENT, 1.0) == [(b"last", key)]
    ((failed, error),) = server.failed_peers()
    assert failed == key
    assert isinstance(error, DtlsSessionError)
    assert str(error) == "DTLS session with 198.51.100.7:40001 closed by the peer (close_notify)"
    assert server.session_count == 0
    assert server.address_of(key) is None
    assert server._server is not None
    assert len(server._server) == 0
    answer = net.flush(SERVER, 1.0)
    assert [(data[0], tuple(address)) for data, address in answer] == [(_ALERT, CLIENT)]
    assert server.get_timer() is None
    with pytest.raises(DtlsSessionError, match="no client credentials"):
        server.connect(CLIENT, 1.0)


def test_server_request_in_the_datagram_of_the_servers_finished() -> None:
    """The server's last flight (lost once) arrives together with its first request to the
    device: the handshake completes, then the request is delivered; the client's queued
    request is released."""
    net = Net()
    server = net.add(SERVER, psk_server())
    client = net.add(CLIENT, psk_client())
    peer = client.connect(SERVER, 1.0)
    assert client.protect(b"queued", peer, 1.0) == []
    net.run(1.0, lose=lambda source, _, data: source == SERVER and data[0] == _CHANGE_CIPHER_SPEC)
    ((_, flight_6),) = net.lost
    assert client.stats.handshakes == 0
    key = server.peer_for(CLIENT)
    ((request, _),) = server.protect(b"server request", key, 1.0)
    assert client.unprotect(flight_6 + request, SERVER, 1.0) == [(b"server request", peer)]
    assert client.stats.handshakes == 1
    identity = client.peer_identity(peer)
    assert identity == PeerIdentity("psk", IDENTITY)
    net.run(1.0)
    assert net.received[SERVER] == [(b"queued", CLIENT)]


# -- timers ----------------------------------------------------------------------------------


def test_the_layer_timer_is_the_earliest_deadline_of_both_roles() -> None:
    """A host with both roles: a client of ours handshakes with our server (its flight 5 is
    lost: our server's timer), and we handshake with another server (our ClientHello is lost:
    our client's timer). The endpoint's single timer is the earlier of the two, each time."""
    net = Net()
    ours = net.add(SERVER, both_roles())
    net.add(CLIENT, psk_client())
    net.layers[CLIENT].connect(SERVER, 1.0)
    net.run(1.0, lose=lambda _, __, data: handshake_type(data) == _CLIENT_KEY_EXCHANGE)
    assert ours.get_timer() == 2.0  # the server's 1 s initial retransmission timer
    net.add(OTHER, psk_server())
    ours.connect(OTHER, 1.5)
    net.run(1.5, lose=lambda source, destination, _: (source, destination) == (SERVER, OTHER))
    assert ours.get_timer() == 2.0  # the server's deadline is earlier than the client's (2.5)
    net.fire(SERVER, 2.0)
    resent = net.flush(SERVER, 2.0)
    assert {tuple(address) for _, address in resent} == {CLIENT}  # only the server's flight
    assert ours.get_timer() == 2.5  # now the client's deadline is the earlier one (server: 4)
    net.fire(SERVER, 2.5)
    assert [tuple(address) for _, address in net.flush(SERVER, 2.5)] == [OTHER]


# -- ending client sessions from our side ----------------------------------------------------


def test_allow_plain_ends_the_dtls_session_with_close_notify() -> None:
    net = Net()
    server = net.add(SERVER, psk_server())
    client = net.add(CLIENT, psk_client())
    peer, key = established(net, CLIENT, b"hello")
    client.allow_plain(SERVER)
    ((failed, error),) = client.failed_peers()
    assert failed == peer
    assert str(error) == "DTLS session with 192.0.2.1:5684: peer switched to plain CoAP"
    ((notify, address),) = net.flush(CLIENT, 1.0)
    assert (notify[0], tuple(address)) == (_ALERT, SERVER)
    assert server.unprotect(notify, CLIENT, 1.0) == []
    assert "close_notify" in str(dict(server.failed_peers())[key])
    # From now on the remote speaks plain CoAP, both ways.
    assert client.connect(SERVER, 1.0) == SERVER
    assert client.protect(b"plain", SERVER, 1.0) == [(b"plain", SERVER)]
    assert client.unprotect(b"plain reply", SERVER, 1.0) == [(b"plain reply", SERVER)]
    assert client.session_count == 0


async def test_credentials_that_fit_no_cipher_suite_fail_the_request_at_once() -> None:
    layer = DtlsSecurityLayer()
    psk_only = DtlsCredentials(psk=SoftwarePsk(IDENTITY, KEY))
    ecdhe = (CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,)
    async with await CoapEndpoint.create(security=layer) as client:
        remote = ("127.0.0.1", 9)
        layer.set_peer(remote, PeerSecurity(psk_only, cipher_suites=ecdhe))
        with pytest.raises(DtlsSessionError) as failure:
            async with asyncio.timeout(TIMEOUT):
                await client.request(get("/who"), remote)
        assert str(failure.value) == (
            "cannot start a DTLS handshake with 127.0.0.1:9: "
            "no cipher suite usable with these credentials"
        )
        assert layer.session_count == 0
        assert layer.get_timer() is None
        assert layer.datagrams_to_send(0.0) == []
        # Without a session: reset_peer does nothing, forget_peer still drops the settings.
        layer.reset_peer(remote)
        layer.forget_peer(remote)
        assert layer.failed_peers() == []
        with pytest.raises(DtlsSessionError, match="no client credentials"):
            await client.request(get("/who"), remote)


# -- blocking credentials --------------------------------------------------------------------


def test_blocking_credentials_without_an_event_loop_run_inline() -> None:
    """A layer not attached to an endpoint has no loop to hand a worker's result back to: the
    handshake steps run inline and the session works."""
    net = Net()
    net.add(SERVER, psk_server())
    client = net.add(CLIENT, DtlsSecurityLayer())
    client.set_peer(
        SERVER, PeerSecurity(DtlsCredentials(psk=SoftwarePsk(IDENTITY, KEY)), blocking=True)
    )
    peer = client.connect(SERVER, 1.0)
    client.protect(b"request", peer, 1.0)
    net.run(1.0)
    assert net.received[SERVER] == [(b"request", CLIENT)]
    assert (client.stats.handshakes, client.stats.offloaded) == (1, 0)
    assert client._executor is None  # no worker thread was started


async def test_datagrams_during_a_worker_step_wait_in_a_bounded_inbox() -> None:
    """While a handshake step runs in a worker thread, the server's retransmitted flight and
    more datagrams wait (at most _MAX_INBOX), the connection's timer waits too; afterwards the
    inbox is worked off and the handshake completes, the queued request arriving once."""
    net, client, psk, session = await blocked_handshake()
    server = net.layers[SERVER]
    deadline = server.get_timer()
    assert deadline is not None
    net.fire(SERVER, deadline)
    (retransmitted,) = [data for data, _ in net.flush(SERVER, deadline)]
    assert client.unprotect(retransmitted, SERVER, deadline) == []
    for _ in range(coaps._MAX_INBOX + 8):
        assert client.unprotect(b"\x17" + os.urandom(30), SERVER, deadline) == []
    assert session.inbox[0] == retransmitted
    assert len(session.inbox) == coaps._MAX_INBOX
    late = asyncio.get_running_loop().time() + 3600.0  # past every deadline of the handshake
    client.handle_timer(late)  # the connection's timer waits for the step
    assert net.flush(CLIENT, late) == []
    assert session.connection.state is ConnectionState.HANDSHAKING
    woken = asyncio.Event()
    client.attach(woken.set)
    psk.release.set()
    async with asyncio.timeout(TIMEOUT):
        while not net.received[SERVER]:
            woken.clear()
            net.run(deadline)
            if not net.received[SERVER]:
                await woken.wait()
    assert net.received[SERVER] == [(b"request", CLIENT)]
    assert session.inbox == []
    assert client.stats.handshakes == 1
    assert client.failed_peers() == []
    client.close(deadline)
    await asyncio.wait_for(client.wait_closed(), TIMEOUT)


async def test_a_connection_busy_in_a_worker_asks_for_no_wakeup_it_would_ignore() -> None:
    """While a step runs in a worker, "timers of that connection wait" (module docstring):
    handle_timer skips the connection. Its deadline, passed, must then not be what get_timer
    reports, or the endpoint calls handle_timer again at once, and again: with a real endpoint
    about 10^5 calls a second, a CPU busy for as long as the key operation takes. Once the step
    is done, the connection's retransmission deadline is back."""
    net, client, psk, _ = await blocked_handshake()
    try:
        (step,) = client._inflight
        late = asyncio.get_running_loop().time() + 3600.0
        client.handle_timer(late)
        assert net.flush(CLIENT, late) == []  # nothing done: the worker owns the connection
        deadline = client.get_timer()
        assert deadline is None or deadline > late
        psk.release.set()
        await asyncio.wait_for(asyncio.wrap_future(step), TIMEOUT)
        assert client.get_timer() is not None  # waiting for the server's flight again
    finally:
        psk.release.set()
        client.close(0.0)
        await asyncio.wait_for(client.wait_closed(), TIMEOUT)


async def test_forget_peer_while_a_step_runs_closes_the_connection_after_it() -> None:
    """forget_peer() during an offloaded step fails the waiters at once; the connection, which
    the worker is using, is closed (close_notify after the step's flight) once the step ends."""
    net, client, psk, session = await blocked_handshake()
    (step,) = client._inflight
    client.forget_peer(SERVER)
    ((peer, error),) = client.failed_peers()
    assert peer == SERVER
    assert str(error) == "DTLS session with 192.0.2.1:5684: peer forgotten"
    assert session.closing
    assert session.connection.state is ConnectionState.HANDSHAKING  # left to the worker
    psk.release.set()
    await asyncio.wait_for(asyncio.wrap_future(step), TIMEOUT)
    assert not session.busy  # _offloaded ran before the wrapped future resolved
    assert session.connection.state.name == "CLOSED"
    out = net.flush(CLIENT, 2.0)
    assert [(data[0], handshake_type(data)) for data, _ in out] == [
        (22, _CLIENT_KEY_EXCHANGE),
        (_ALERT, None),
    ]
    with pytest.raises(DtlsSessionError, match="no client credentials"):
        client.connect(SERVER, 2.0)  # the settings went with it
    client.close(3.0)
    await asyncio.wait_for(client.wait_closed(), TIMEOUT)


# -- the PSK loader --------------------------------------------------------------------------


def loader_server(calls: list[bytes], **credentials: Any) -> DtlsSecurityLayer:
    """A PSK server layer whose loader knows the identity b"late" only."""

    async def loader(identity: bytes) -> PskCredential | None:
        calls.append(identity)
        return SoftwarePsk(identity, KEY) if identity == b"late" else None

    return DtlsSecurityLayer(server_credentials=DtlsCredentials(**credentials), psk_loader=loader)


async def test_a_server_whose_only_psk_source_is_the_loader() -> None:
    calls: list[bytes] = []
    woken = asyncio.Event()
    net = Net()
    server = net.add(SERVER, loader_server(calls))  # no PSK store at all
    server.attach(woken.set)
    for address, identity in ((CLIENT, b"late"), (OTHER, b"never")):
        client = net.add(address, psk_client(identity=identity))
        client.protect(identity, client.connect(SERVER, 1.0), 1.0)
        woken.clear()
        net.run(1.0)
        await asyncio.wait_for(woken.wait(), TIMEOUT)  # the loader answered
        net.run(1.0)
    assert calls == [b"late", b"never"]
    assert net.received[SERVER] == [(b"late", CLIENT)]
    assert server.peer_identity(CLIENT) == PeerIdentity("psk", b"late")
    ((peer, error),) = net.layers[OTHER].failed_peers()
    assert peer == SERVER
    assert "unknown_psk_identity" in str(error)
    assert server.session_count == 1


def test_without_an_event_loop_the_loader_is_not_asked() -> None:
    """A server layer not attached to an endpoint cannot wait for the loader: an unknown
    identity fails at once (no task, nothing parked), a stored one succeeds."""
    calls: list[bytes] = []
    net = Net()
    server = net.add(SERVER, loader_server(calls, psk_store=SoftwarePskStore({IDENTITY: KEY})))
    for address, identity in ((CLIENT, b"late"), (OTHER, IDENTITY)):
        client = net.add(address, psk_client(identity=identity))
        client.protect(identity, client.connect(SERVER, 1.0), 1.0)
        net.run(1.0)
    assert calls == []
    assert server._tasks == set()
    assert server._parked == {}
    assert "unknown_psk_identity" in str(dict(net.layers[CLIENT].failed_peers())[SERVER])
    assert net.received[SERVER] == [(IDENTITY, OTHER)]


async def test_a_malformed_client_key_exchange_is_not_parked() -> None:
    """A ClientKeyExchange whose PSK identity overruns its record names no identity to load:
    the loader is not asked, the handshake fails at the server."""
    calls: list[bytes] = []
    net = Net()
    server = net.add(SERVER, loader_server(calls, psk_store=SoftwarePskStore()))
    server.attach(lambda: None)
    client = net.add(CLIENT, psk_client(identity=b"late"))
    client.connect(SERVER, 1.0)
    net.run(1.0, lose=lambda _, __, data: handshake_type(data) == _CLIENT_KEY_EXCHANGE)
    ((_, flight_5),) = net.lost
    malformed = flight_5[:25] + b"\xff\xff" + flight_5[27:]
    assert server.unprotect(malformed, CLIENT, 1.0) == []
    net.run(1.0)
    assert calls == []
    assert server._parked == {}
    assert server._tasks == set()
    assert server.stats.handshake_failures == 1
    assert server.session_count == 0
    ((_, error),) = client.failed_peers()
    assert "the peer sent decode_error" in str(error)
