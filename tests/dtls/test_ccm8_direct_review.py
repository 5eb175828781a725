"""Review of the direct AES-128-CCM_8 record paths and the changes that came with them.

``DtlsConnection.open_record`` / ``seal`` without CID take the AEAD in one function; here they
are held against ``receive_datagram`` / ``send`` at the edges the generated agreement tests
rarely reach: sequence numbers at the 32-bit split and at 2**48 - 1, other epochs sharing the
64-bit epoch||sequence field, explicit nonces other than epoch||sequence, the shortest records,
``max_record_plaintext`` at and around its limit, and the transitions that switch the direct
paths on and off (linger, resumption, alerts, close, clones). Also: the value-compared
eviction queue of :class:`DtlsServer`, IPv6 addresses through
:meth:`DtlsSecurityLayer.unprotect`, and :meth:`CoapEngine.fail_requests`.
"""

from __future__ import annotations

import dataclasses
import os
import random
import struct
from typing import Any

import pytest
from tests.coap.helpers import RecordingWaiter

from lwm2m.coap import (
    Block,
    CoapConfig,
    CoapEngine,
    Code,
    Message,
    MessageType,
    RequestCancelled,
    TransmissionParameters,
    decode,
)
from lwm2m.dtls import (
    ApplicationData,
    ConnectionClosed,
    ConnectionState,
    DtlsConnection,
    DtlsCredentials,
    DtlsStateError,
    SoftwarePsk,
    SoftwarePskStore,
)
from lwm2m.dtls.constants import DTLS_1_0, DTLS_1_2, ContentType
from lwm2m.dtls.record import MAX_FRAGMENT_LENGTH, Ccm8Protection, ReplayWindow
from lwm2m.io.coaps import DtlsLayerConfig, DtlsSecurityLayer, SessionKey

from .helpers import CLIENT_ADDRESS, Link, dtls_server, psk_client
from .test_record_fast_path import (
    CCM8,
    MAX_SEQUENCE,
    clone,
    drain,
    open_both,
    pair,
    writer,
)

# -- helpers --------------------------------------------------------------------------------------


def ccm8_record(
    protection: Any,
    seq: int,
    payload: bytes,
    *,
    epoch: int = 1,
    explicit: bytes | None = None,
    version: int = DTLS_1_2,
    content_type: int = 23,
) -> bytes:
    """A CCM_8 record without CID, sealed by hand: ``explicit`` is the explicit nonce (RFC 6655
    §3 says epoch||sequence, but a receiver takes whatever the record carries)."""
    assert isinstance(protection, Ccm8Protection)
    number = (epoch << 48) | seq
    nonce = number.to_bytes(8, "big") if explicit is None else explicit
    aad = struct.pack("!QBHH", number, content_type, version, len(payload))
    fragment = nonce + protection._aead.encrypt(protection._iv + nonce, payload, aad)
    return struct.pack("!BHQH", content_type, version, number, len(fragment)) + fragment


def agree(fast: DtlsConnection, datagram: bytes) -> bytes | None:
    """``fast.open_record(datagram)`` (then ``receive_datagram`` when it declines) against
    ``receive_datagram`` on a clone (see ``open_both``). Returns what ``open_record`` returned."""
    return open_both(fast, clone(fast), datagram)


def direct_pair(receiver: str, max_record_plaintext: int = 2**14) -> tuple[Any, DtlsConnection]:
    """(the sender's write protection, a receiver on the direct CCM_8 read path)."""
    sender, fast = pair(CCM8, "no-cid", receiver, max_record_plaintext)
    assert fast._open_ccm8 is fast._read_protection is not None
    return writer(sender), fast


# -- record edges ---------------------------------------------------------------------------------


@pytest.mark.parametrize("receiver", ["client", "server"])
def test_direct_path_agrees_at_sequence_number_boundaries(receiver: str) -> None:
    """The 64-bit epoch||sequence arithmetic at the 32-bit split of the wire fields and at the
    last sequence number; other epochs (0, 2, 0xFFFF) with the same sequence bits never pass."""
    protection, fast = direct_pair(receiver)
    fast._read_window = ReplayWindow()  # from the start of the epoch
    numbers = (0, 1, 0, 2**32 - 1, 2**32, 2**32 - 2, 2**47, MAX_SEQUENCE - 64, MAX_SEQUENCE - 63)
    taken = [agree(fast, ccm8_record(protection, n, n.to_bytes(8, "big"))) for n in numbers]
    assert taken == [
        (0).to_bytes(8, "big"),
        (1).to_bytes(8, "big"),
        None,  # replay
        (2**32 - 1).to_bytes(8, "big"),
        (2**32).to_bytes(8, "big"),
        (2**32 - 2).to_bytes(8, "big"),  # late, in the window
        (2**47).to_bytes(8, "big"),
        (MAX_SEQUENCE - 64).to_bytes(8, "big"),
        (MAX_SEQUENCE - 63).to_bytes(8, "big"),
    ]
    for epoch in (0, 2, 0xFFFF):
        assert agree(fast, ccm8_record(protection, MAX_SEQUENCE, b"e", epoch=epoch)) is None
    assert agree(fast, ccm8_record(protection, MAX_SEQUENCE, b"last")) == b"last"
    assert fast.highest_authenticated_record == (1, MAX_SEQUENCE)
    assert agree(fast, ccm8_record(protection, MAX_SEQUENCE - 63, b"edge")) is None  # replayed
    assert agree(fast, ccm8_record(protection, MAX_SEQUENCE - 64, b"old")) is None  # too old
    assert agree(fast, ccm8_record(protection, MAX_SEQUENCE - 1, b"late")) == b"late"
    assert agree(fast, ccm8_record(protection, MAX_SEQUENCE, b"again")) is None
    # Other versions and content types with an epoch-1 number: the general path's business.
    assert agree(fast, ccm8_record(protection, 5, b"v", version=DTLS_1_0)) is None
    alert = ccm8_record(protection, MAX_SEQUENCE - 2, b"\x01\x00", content_type=21)
    assert agree(fast, alert) is None
    assert fast.state is ConnectionState.CLOSED  # the close_notify was taken the general way


@pytest.mark.parametrize("receiver", ["client", "server"])
def test_explicit_nonce_other_than_epoch_and_sequence(receiver: str) -> None:
    """A peer may put any explicit nonce in the record (RFC 6655 §3 only recommends
    epoch||sequence): both paths decrypt with the record's own, and the AAD still carries the
    header's number; a changed nonce or header number does not authenticate on either path."""
    protection, fast = direct_pair(receiver)
    start = fast._read_window.highest + 1
    for i, explicit in enumerate(
        (os.urandom(8), b"\x00" * 8, b"\xff" * 8, ((1 << 48) | (start + 50)).to_bytes(8, "big"))
    ):
        record = ccm8_record(protection, start + i, b"nonce %d" % i, explicit=explicit)
        assert agree(fast, record) == b"nonce %d" % i
    record = ccm8_record(protection, start + 10, b"x", explicit=b"\x01" * 8)
    other_nonce = record[:13] + b"\x02" * 8 + record[21:]
    assert agree(fast, other_nonce) is None
    other_number = record[:5] + (start + 11).to_bytes(6, "big") + record[11:]
    assert agree(fast, other_number) is None
    assert agree(fast, record) == b"x"


@pytest.mark.parametrize("receiver", ["client", "server"])
def test_shortest_records(receiver: str) -> None:
    """29 bytes (header, nonce, tag: an empty plaintext) is a record on both paths; a length
    field below 16 with a datagram that matches it is not."""
    protection, fast = direct_pair(receiver)
    seq = fast._read_window.highest + 1
    empty = ccm8_record(protection, seq, b"")
    assert len(empty) == 29
    assert agree(fast, empty) == b""
    full = ccm8_record(protection, seq + 1, b"abcdefgh")
    for length in range(16):
        short = full[:11] + length.to_bytes(2, "big") + full[13 : 13 + length]
        assert agree(fast, short) is None
    # A length field that claims more or less than the datagram holds.
    assert agree(fast, full[:11] + (len(full) - 12).to_bytes(2, "big") + full[13:]) is None
    assert agree(fast, full[:11] + (len(full) - 14).to_bytes(2, "big") + full[13:]) is None
    assert agree(fast, full) == b"abcdefgh"


@pytest.mark.parametrize(
    "limit",
    [0, 1, 100, 2**14, MAX_FRAGMENT_LENGTH - 17, MAX_FRAGMENT_LENGTH - 16, MAX_FRAGMENT_LENGTH],
)
def test_plaintext_limit_edges(limit: int) -> None:
    """A plaintext exactly at ``max_record_plaintext`` is taken directly; one byte over goes
    the general way (record_overflow), as does a fragment over MAX_FRAGMENT_LENGTH."""
    for size in (limit - 1, limit, limit + 1):
        if size < 0:
            continue
        protection, fast = direct_pair("server", max_record_plaintext=limit)
        record = ccm8_record(protection, fast._read_window.highest + 1, bytes(size))
        plaintext = agree(fast, record)
        fits = size <= limit and size + 16 <= MAX_FRAGMENT_LENGTH
        assert (plaintext is not None) is fits
        if not fits:
            # record_overflow; a fragment over MAX_FRAGMENT_LENGTH is not parsed (dropped)
            overflow = size > limit and size + 16 <= MAX_FRAGMENT_LENGTH
            assert (fast.state is ConnectionState.CLOSED) is overflow


# -- switching the direct paths on and off --------------------------------------------------------


@pytest.mark.parametrize(
    "how", ["fatal alert", "close_notify", "local close", "unexpected handshake"]
)
def test_direct_paths_end_with_the_connection(how: str) -> None:
    protection, fast = direct_pair("client")
    seq = fast._read_window.highest + 1
    record = ccm8_record(protection, seq + 10, b"after")
    if how == "fatal alert":
        fast.receive_datagram(ccm8_record(protection, seq, b"\x02\x28", content_type=21), 0.0)
    elif how == "close_notify":
        fast.receive_datagram(ccm8_record(protection, seq, b"\x01\x00", content_type=21), 0.0)
    elif how == "local close":
        fast.close()
    else:  # a new handshake message after the handshake: unexpected_message
        finished = bytes([20]) + bytes(3) + (100).to_bytes(2, "big") + bytes(6)
        fast.receive_datagram(
            ccm8_record(protection, seq, finished, content_type=ContentType.HANDSHAKE), 0.0
        )
    assert fast.state is ConnectionState.CLOSED
    assert fast._open_ccm8 is None
    assert fast._seal_ccm8 is None
    assert fast.open_record(record) is None
    with pytest.raises(DtlsStateError):
        fast.seal(b"x")
    assert any(isinstance(e, ConnectionClosed) for e in drain(fast))


def test_handshake_timeout_never_enables_the_direct_paths() -> None:
    server = dtls_server(cipher_suites=(CCM8,), require_cookie=False)
    link = Link(psk_client(cipher_suites=(CCM8,)), server)
    link.mutate = lambda d: [] if not d.to_server and d.index > 1 else [d]  # lose the flights
    link.run(max_time=10_000)
    assert link.client.state is ConnectionState.CLOSED
    assert link.client._open_ccm8 is None
    assert link.client._seal_ccm8 is None
    with pytest.raises(DtlsStateError):
        link.client.seal(b"x")


@pytest.mark.parametrize("ending", ["record", "timer"])
def test_resumption_client_sends_the_final_flight_and_reads_directly_after_its_linger(
    ending: str,
) -> None:
    """In an abbreviated handshake the client sends the last flight: it lingers (reads go the
    general way) while the server reads directly at once; the linger ends by the server's
    first record or by the timer, and the direct read takes over."""
    server = dtls_server(cipher_suites=(CCM8,))
    first = Link(psk_client(cipher_suites=(CCM8,)), server)
    first.run()
    done = Link.completed(first.client_events)
    assert done is not None
    again = Link(
        psk_client(cipher_suites=(CCM8,), session=done.session), server, address=("10.0.0.9", 7)
    )
    again.run()
    resumed = Link.completed(again.client_events)
    assert resumed is not None
    assert resumed.session_resumed
    client = again.client
    connection = server.connection_for(("10.0.0.9", 7))
    assert connection is not None
    assert client._open_ccm8 is None  # lingering on its final flight
    assert client._seal_ccm8 is client._write_protection
    assert client.get_timer() is not None
    assert connection._open_ccm8 is connection._read_protection  # no linger on this side
    assert connection.open_record(client.seal(b"up")) == b"up"
    if ending == "record":
        record = connection.seal(b"down")
        assert agree(clone(client), record) is None  # lingering: the general way, agreeing
        assert client.open_record(record) is None  # lingering: the general way
        client.receive_datagram(record, again.clock.now)
        assert drain(client) == [ApplicationData(b"down")]
    else:
        deadline = client.get_timer()
        assert deadline is not None
        client.handle_timer(deadline)
    assert client.get_timer() is None
    assert client._open_ccm8 is client._read_protection
    assert client.open_record(connection.seal(b"direct")) == b"direct"


def test_clones_keep_their_own_windows_and_sequence_numbers() -> None:
    protection, fast = direct_pair("server")
    twin = clone(fast)
    seq = fast._read_window.highest + 1
    record = ccm8_record(protection, seq, b"once")
    assert fast.open_record(record) == b"once"
    assert fast.open_record(record) is None
    assert twin.open_record(record) == b"once"  # its window did not move with the original
    first, second = fast.seal(b"a"), twin.seal(b"a")
    assert first == second  # the same sequence number from the same starting point
    assert fast._write_seq == twin._write_seq
    fast.close()
    assert twin._open_ccm8 is twin._read_protection  # closing one leaves the other's paths
    assert twin.open_record(ccm8_record(protection, seq + 1, b"still")) == b"still"


def test_changed_plaintext_limit_takes_effect_through_set_fast_paths() -> None:
    """The direct read caches its fragment bound; ``_set_fast_paths`` recomputes it."""
    _, fast = direct_pair("server", max_record_plaintext=10)
    assert fast._open_limit == 26
    fast._configuration = dataclasses.replace(fast._configuration, max_record_plaintext=2**15)
    fast._set_fast_paths()
    assert fast._open_limit == MAX_FRAGMENT_LENGTH


# -- highest_authenticated_record and the eviction queue ------------------------------------------


def test_highest_authenticated_record_and_eviction_follow_direct_reads() -> None:
    assert psk_client().highest_authenticated_record == (0, -1)
    server = dtls_server(cipher_suites=(CCM8,), stale_connection_threshold=60.0)
    link = Link(psk_client(cipher_suites=(CCM8,)), server)
    link.run()
    link.exchange(b"warm-up")  # ends the linger: the direct read from now on
    connection = server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    assert connection._open_ccm8 is not None
    now = link.clock.now
    since, _ = server._queued[connection]
    record = link.client.seal(b"busy")
    highest = connection.highest_authenticated_record
    assert server.open_record(record, CLIENT_ADDRESS) == (connection, b"busy")
    assert connection.highest_authenticated_record == (1, highest[1] + 1)
    # A record since it was queued: requeued as active, not evicted.
    assert not server._evict_stale(now + 100)
    assert server._queued[connection] == (now + 100, connection.highest_authenticated_record)
    # A replay moves nothing; later it is stale and goes.
    assert server.open_record(record, CLIENT_ADDRESS) is None
    assert not server._evict_stale(now + 150)
    assert server._evict_stale(now + 161)
    assert connection.state is ConnectionState.CLOSED
    assert server.connection_for(CLIENT_ADDRESS) is None
    assert since <= now


# -- IPv6 addresses through DtlsSecurityLayer.unprotect -------------------------------------------

IDENTITY = b"urn:dev:ops:review"
KEY = bytes(range(16))
SERVER6 = ("::1", 5684, 0, 0)
CLIENT6 = ("::1", 40000, 0, 0)


@pytest.mark.parametrize("cid_length", [0, 4])
def test_ipv6_four_tuples_reach_established_sessions_of_both_roles(
    cid_length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = DtlsSecurityLayer(
        server_credentials=DtlsCredentials(psk_store=SoftwarePskStore({IDENTITY: KEY})),
        config=DtlsLayerConfig(server_connection_id_length=cid_length),
    )
    client = DtlsSecurityLayer(client_credentials=DtlsCredentials(psk=SoftwarePsk(IDENTITY, KEY)))
    peer = client.connect(SERVER6, 1.0)
    assert peer == SERVER6[:2]
    assert client.protect(b"first", peer, 1.0) == []
    got: list[tuple[bytes, Any]] = []
    for _ in range(10):
        for data, address in client.datagrams_to_send(1.0):
            assert address == SERVER6[:2]
            got += server.unprotect(data, CLIENT6, 1.0)
        for data, address in server.datagrams_to_send(1.0):
            assert address == CLIENT6[:2]
            assert client.unprotect(data, SERVER6, 1.0) == []
    ((payload, key),) = got
    assert payload == b"first"
    assert isinstance(key, SessionKey) == bool(cid_length)
    general = {"n": 0}
    original = DtlsConnection.receive_datagram

    def counted(self: DtlsConnection, *args: Any) -> None:
        general["n"] += 1
        original(self, *args)

    monkeypatch.setattr(DtlsConnection, "receive_datagram", counted)
    for i in range(3):
        request = b"request %d" % i
        ((record, _),) = client.protect(request, peer, 1.0)
        assert server.unprotect(record, CLIENT6, 1.0) == [(request, key)]
        assert server.unprotect(record, CLIENT6, 1.0) == []  # replay
        ((answer, address),) = server.protect(request[::-1], key, 1.0)
        assert address == CLIENT6[:2]
        assert client.unprotect(answer, SERVER6, 1.0) == [(request[::-1], peer)]
        assert client.unprotect(answer, SERVER6, 1.0) == []
    assert general["n"] == 2 * 3  # only the replays went the general way
    # The same records from the 2-tuple form of the address are the same sessions.
    ((record, _),) = client.protect(b"two", peer, 1.0)
    assert server.unprotect(record, CLIENT6[:2], 1.0) == [(b"two", key)]
    # Another IPv6 address (another port) is not the session: a plain record is dropped there.
    ((record, _),) = client.protect(b"elsewhere", peer, 1.0)
    moved = ("::1", 40001, 0, 0)
    if cid_length:
        assert server.unprotect(record, moved, 1.0) == [(b"elsewhere", key)]
        assert server.address_of(key) == moved[:2]
    else:
        assert server.unprotect(record, moved, 1.0) == []


# -- CoapEngine.fail_requests ---------------------------------------------------------------------

PEER = ("10.0.0.2", 5683)


def exact_engine() -> CoapEngine:
    """An engine without retransmission jitter (NSTART 1, the default)."""
    config = CoapConfig(transmission=TransmissionParameters(ack_random_factor=1.0))
    return CoapEngine(config, rng=random.Random(1))


OTHER = ("10.9.9.9", 5683)


def test_fail_requests_counts_a_cancelled_waiter_and_spares_the_rest() -> None:
    engine = exact_engine()
    cancelled, live, elsewhere = RecordingWaiter(done=True), RecordingWaiter(), RecordingWaiter()
    engine.send_request(Message(Code.GET, uri_path="/a"), PEER, 0.0, cancelled)
    engine.send_request(Message(Code.GET, uri_path="/b"), PEER, 0.0, live)
    observation = engine.send_request(Message(Code.GET, uri_path="/o", observe=0), PEER, 0.0)
    engine.send_request(Message(Code.GET, uri_path="/c"), OTHER, 0.0, elsewhere)
    engine.datagrams_to_send(0.0)
    error = RequestCancelled("session failed")
    assert engine.fail_requests(PEER, error, 1.0) == 2
    assert cancelled.error is None
    assert live.error is error
    assert elsewhere.error is None
    assert engine.pending_requests == 2
    assert observation in engine._requests  # no waiter: the driver's to end
    assert engine.fail_requests(PEER, error, 1.0) == 0  # nothing with a waiter left


def test_fail_requests_sends_nothing_for_a_request_requeued_for_its_next_block() -> None:
    """A request that gave up its NSTART slot (empty ACK) and queued again for its next Block2
    block is older than the slot's holder: ending the holder first would start it (the review
    found this; requests holding no slot now end first)."""
    engine = exact_engine()
    first, second = RecordingWaiter(), RecordingWaiter()
    engine.send_request(Message(Code.GET, uri_path="/a"), PEER, 0.0, first)
    engine.send_request(Message(Code.GET, uri_path="/b"), PEER, 0.0, second)  # NSTART 1: queued
    ((data, _),) = engine.datagrams_to_send(0.0)
    request = decode(data)
    # An empty ACK frees the slot (RFC 7252 §4.7): /b starts.
    engine.receive_datagram(Message(0, mtype=MessageType.ACK, mid=request.mid).encode(), PEER, 0.1)
    assert [decode(d).uri_path for d, _ in engine.datagrams_to_send(0.1)] == [("b",)]
    # The separate response is block 0 of more: /a queues for block 1 behind /b.
    response = Message(Code.CONTENT, bytes(16), mtype=MessageType.CON, mid=999, token=request.token)
    response.block2 = Block(0, True, 0)
    engine.receive_datagram(response.encode(), PEER, 0.2)
    engine.datagrams_to_send(0.2)  # the ACK of the separate response
    error = RequestCancelled("session failed")
    assert engine.fail_requests(PEER, error, 0.3) == 2
    assert first.error is error
    assert second.error is error
    assert engine.pending_requests == 0
    assert engine.datagrams_to_send(0.3) == []  # nothing for the ended requests
