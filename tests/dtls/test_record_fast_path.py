"""The record fast paths agree with the general path of an established connection.

:meth:`DtlsConnection.open_record` against :meth:`DtlsConnection.receive_datagram` (its events,
the datagrams it queues, the replay window and the newest authenticated record), and
:meth:`DtlsConnection.seal` against :meth:`~DtlsConnection.send` then
:meth:`~DtlsConnection.datagrams_to_send`, on generated records: fresh ones, replays, tampered
bytes, other epochs, versions, content types and connection IDs, several records in a datagram,
truncations, noise; without and with connection IDs (one or both directions), for both cipher
suites and both roles. Each example runs on two copies of one established connection, one per path.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Hashable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.dtls import (
    ApplicationData,
    ConnectionState,
    DtlsConnection,
    DtlsServer,
    DtlsStateError,
)
from lwm2m.dtls.constants import DTLS_1_0, DTLS_1_2, CipherSuite, ContentType
from lwm2m.dtls.events import DtlsEvent, PeerAddressChanged
from lwm2m.dtls.record import RecordProtection, ReplayWindow

from .helpers import CLIENT_ADDRESS, Link, dtls_server, psk_client

CCM8 = CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
CBC = CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256
#: (client connection_id, server connection_id_length): no CIDs; the client writes the server's
#: CID (and receives plain records); both directions carry CIDs.
CID_MODES = {"no-cid": (None, 0), "cid-to-server": (b"", 4), "cid-both": (b"\x07\x08", 4)}
MAX_SEQUENCE = 2**48 - 1

# -- established pairs ----------------------------------------------------------------------------


@functools.cache
def established(suite: int, cid_mode: str) -> tuple[DtlsConnection, DtlsConnection, DtlsServer]:
    """(client, server-side connection, server) after the handshake and one exchange (which
    ends the server's linger on its last flight)."""
    client_cid, cid_length = CID_MODES[cid_mode]
    server = dtls_server(cipher_suites=(suite,), connection_id_length=cid_length)
    link = Link(psk_client(cipher_suites=(suite,), connection_id=client_cid), server)
    link.run()
    assert link.exchange(b"hello") == (b"hello", b"olleh")
    connection = server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    return link.client, connection, server


def clone(connection: DtlsConnection) -> DtlsConnection:
    """An independent copy of an established connection (keys shared, they are immutable)."""
    twin = copy.copy(connection)
    twin._read_window = copy.copy(connection._read_window)
    twin._write_seq = list(connection._write_seq)
    twin._events = list(connection._events)
    twin._datagrams = list(connection._datagrams)
    return twin


def snapshot(connection: DtlsConnection) -> tuple[Any, ...]:
    window = connection._read_window
    return (
        connection.state,
        window.highest,
        window.bitmap,
        connection.highest_authenticated_record,
        tuple(connection._write_seq),
        connection.get_timer(),
    )


def drain(connection: DtlsConnection) -> list[DtlsEvent]:
    events = []
    while (event := connection.next_event()) is not None:
        events.append(event)
    return events


def pair(
    suite: int, cid_mode: str, receiver: str, max_record_plaintext: int = 2**14
) -> tuple[DtlsConnection, DtlsConnection]:
    """(sender, receiver) copies; ``receiver`` is "client" or "server". A receiver's
    ``max_record_plaintext`` below the default is set after the handshake (whose records would
    not fit it)."""
    client, connection, _ = established(suite, cid_mode)
    sender, reader = (connection, client) if receiver == "client" else (client, connection)
    sender, reader = clone(sender), clone(reader)
    if max_record_plaintext != reader._configuration.max_record_plaintext:
        reader._configuration = dataclasses.replace(
            reader._configuration, max_record_plaintext=max_record_plaintext
        )
        reader._set_fast_paths()
    return sender, reader


def writer(connection: DtlsConnection) -> RecordProtection:
    protection = connection._write_protection
    assert protection is not None
    return protection


def same_datagrams(suite: int, a: list[bytes], b: list[bytes]) -> bool:
    if suite == CBC:  # random explicit IVs: the same framing and length
        return [(d[:11], len(d)) for d in a] == [(d[:11], len(d)) for d in b]
    return a == b


# -- generated datagrams --------------------------------------------------------------------------

sequence_numbers = st.one_of(
    st.integers(0, 300), st.integers(MAX_SEQUENCE - 70, MAX_SEQUENCE), st.integers(0, MAX_SEQUENCE)
)
content_types = st.sampled_from(
    [23, 23, 23, 23, ContentType.ALERT, ContentType.HANDSHAKE, ContentType.CHANGE_CIPHER_SPEC, 99]
)
payloads = st.binary(max_size=80)


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    ops: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(
            st.sampled_from(
                [
                    "record",
                    "record",
                    "record",
                    "replay",
                    "tamper",
                    "epoch",
                    "version",
                    "other-type",
                    "concat",
                    "truncate",
                    "trailing",
                    "noise",
                    "empty-fragment",
                    "other-cid",
                ]
            )
        )
        ops.append(
            (
                kind,
                draw(sequence_numbers),
                draw(payloads),
                draw(st.integers(0, 10**6)),
                draw(content_types),
                draw(st.sampled_from([0, 2, 3, 0xFFFF])),
            )
        )
    return ops


def build(op: tuple[Any, ...], sender: DtlsConnection, sent: list[bytes]) -> tuple[bytes, bool]:
    """The datagram of one operation, and whether it is a fresh-looking application record."""
    kind, seq, payload, pick, content_type, epoch = op
    protection = writer(sender)
    record = protection.encrypt(23, DTLS_1_2, 1, seq, payload)
    if kind == "record":
        return record, True
    if kind == "replay" and sent:
        return sent[pick % len(sent)], False
    if kind == "tamper":
        index = pick % len(record)
        bit = 1 << (pick % 8)
        return record[:index] + bytes([record[index] ^ bit]) + record[index + 1 :], False
    if kind == "epoch":
        return protection.encrypt(23, DTLS_1_2, epoch, seq, payload), False
    if kind == "version":
        return protection.encrypt(23, DTLS_1_0, 1, seq, payload), False
    if kind == "other-type":
        return protection.encrypt(content_type, DTLS_1_2, 1, seq, payload), False
    if kind == "concat":
        second = protection.encrypt(23, DTLS_1_2, 1, seq + 1 if seq < MAX_SEQUENCE else 0, b"2")
        return record + second, False
    if kind == "truncate":
        return record[: pick % len(record)], False
    if kind == "trailing":
        return record + bytes(pick % 13 + 1), False
    if kind == "empty-fragment":
        return record[:-8], False
    if kind == "other-cid":  # authenticates, but under another (or without a) connection ID
        other = copy.copy(protection)
        other.cid = bytes([pick % 256]) * (pick % 5)
        fresh = other.cid == protection.cid
        return other.encrypt(23, DTLS_1_2, 1, seq, payload), fresh
    return payload, False  # noise


def open_both(
    fast: DtlsConnection, general: DtlsConnection, datagram: bytes, suite: int = CCM8
) -> bytes | None:
    """``fast.open_record(datagram)`` (then ``receive_datagram`` when it declines) against
    ``general.receive_datagram(datagram)``: the same events, datagrams and state; a declined
    record changed nothing. Returns what ``open_record`` returned."""
    before = snapshot(fast)
    plaintext = fast.open_record(datagram)
    if plaintext is None:
        assert snapshot(fast) == before, "open_record changed state and returned None"
        fast.receive_datagram(datagram, 0.0)
        fast_events = drain(fast)
        fast_out = fast.datagrams_to_send(0.0)
    else:
        fast_events = [ApplicationData(plaintext)]
        fast_out = []
    general.receive_datagram(datagram, 0.0)
    assert fast_events == drain(general)
    assert same_datagrams(suite, fast_out, general.datagrams_to_send(0.0))
    assert snapshot(fast) == snapshot(general)
    return plaintext


def check_open_record(
    suite: int,
    cid_mode: str,
    receiver: str,
    ops: list[tuple[Any, ...]],
    max_record_plaintext: int = 2**14,
) -> None:
    sender, fast = pair(suite, cid_mode, receiver, max_record_plaintext)
    general = clone(fast)
    sent: list[bytes] = []
    for op in ops:
        datagram, fresh = build(op, sender, sent)
        sent.append(datagram)
        window = fast._read_window
        fresh = fresh and window.is_fresh(op[1]) and fast.state is ConnectionState.ESTABLISHED
        fresh = fresh and len(op[2]) <= max_record_plaintext
        plaintext = open_both(fast, general, datagram, suite)
        assert plaintext is not None or not fresh, "a fresh application record missed the fast path"


@pytest.mark.parametrize("receiver", ["client", "server"])
@pytest.mark.parametrize("cid_mode", list(CID_MODES))
@pytest.mark.parametrize("suite", [CCM8, CBC], ids=["ccm8", "cbc"])
@settings(max_examples=40, deadline=None)
@given(ops=operations())
def test_open_record_agrees_with_receive_datagram(
    suite: int, cid_mode: str, receiver: str, ops: list[tuple[Any, ...]]
) -> None:
    check_open_record(suite, cid_mode, receiver, ops)


@pytest.mark.parametrize("receiver", ["client", "server"])
@pytest.mark.parametrize("cid_mode", list(CID_MODES))
@pytest.mark.parametrize("suite", [CCM8, CBC], ids=["ccm8", "cbc"])
@settings(max_examples=25, deadline=None)
@given(ops=operations())
def test_open_record_agrees_over_a_small_plaintext_limit(
    suite: int, cid_mode: str, receiver: str, ops: list[tuple[Any, ...]]
) -> None:
    """Payloads up to 80 bytes against an 8-byte ``max_record_plaintext``: a record over it is
    left to the general path, which ends the connection with record_overflow."""
    check_open_record(suite, cid_mode, receiver, ops, max_record_plaintext=8)


@pytest.mark.parametrize("receiver", ["client", "server"])
@pytest.mark.parametrize("cid_mode", list(CID_MODES))
def test_open_record_replay_window(cid_mode: str, receiver: str) -> None:
    """In-order, out-of-order within the window, too old, replayed, and a jump."""
    sender, fast = pair(CCM8, cid_mode, receiver)
    protection = writer(sender)
    start = fast._read_window.highest + 1
    records = {
        seq: protection.encrypt(23, DTLS_1_2, 1, seq, seq.to_bytes(8, "big"))
        for seq in (start, start + 1, start + 100, start + 50, start + 20)
    }
    assert fast.open_record(records[start + 1]) == (start + 1).to_bytes(8, "big")
    assert fast.open_record(records[start]) == start.to_bytes(8, "big")  # late, in window
    assert fast.open_record(records[start]) is None  # replay
    assert fast.open_record(records[start + 100]) is not None
    assert fast.open_record(records[start + 1]) is None  # beyond the window now
    assert fast.open_record(records[start + 50]) is not None  # 50 behind: in window
    assert fast.open_record(records[start + 50]) is None
    assert fast.open_record(records[start + 20]) is None  # 80 behind: too old
    assert fast.highest_authenticated_record == (1, start + 100)
    fast.receive_datagram(records[start + 50], 0.0)  # the general path agrees: dropped
    assert fast.next_event() is None


def test_open_record_not_before_establishment_or_after_close() -> None:
    client, connection, _ = established(CCM8, "no-cid")
    record = writer(connection).encrypt(23, DTLS_1_2, 1, 10**6, b"x")
    fresh = psk_client()
    assert fresh.open_record(record) is None
    with pytest.raises(DtlsStateError):
        fresh.seal(b"x")
    closed = clone(client)
    closed.close()
    assert closed.open_record(record) is None
    with pytest.raises(DtlsStateError):
        closed.seal(b"x")


def test_open_record_leaves_lingering_flight_to_the_general_path() -> None:
    """The server keeps its last flight until the client's first record: that record goes the
    general way, which ends the linger (and its timer)."""
    server = dtls_server(cipher_suites=(CCM8,))
    link = Link(psk_client(cipher_suites=(CCM8,)), server)
    link.run()
    connection = server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    assert connection.get_timer() is not None
    record = link.client.seal(b"first")
    assert connection.open_record(record) is None
    assert server.open_record(record, CLIENT_ADDRESS) is None
    server.receive_datagram(record, CLIENT_ADDRESS, 0.0)
    event = server.next_event()
    assert event is not None
    assert event.event == ApplicationData(b"first")
    assert connection.get_timer() is None
    assert connection.open_record(link.client.seal(b"second")) == b"second"


@pytest.mark.parametrize("cid_mode", list(CID_MODES))
@pytest.mark.parametrize("suite", [CCM8, CBC], ids=["ccm8", "cbc"])
def test_the_direct_ccm8_paths_are_taken_where_they_apply(suite: int, cid_mode: str) -> None:
    """``open_record`` and ``seal`` use AES-128-CCM_8 directly exactly where a direction has
    that suite and no CID, and stop at close; records sealed either way read alike."""
    client, connection, _ = established(suite, cid_mode)
    for receiver, sender in (
        (clone(client), clone(connection)),
        (clone(connection), clone(client)),
    ):
        read = receiver._read_protection
        write = receiver._write_protection
        assert read is not None
        assert write is not None
        assert (receiver._open_ccm8 is read) is (suite == CCM8 and not read.cid)
        assert (receiver._seal_ccm8 is write) is (suite == CCM8 and not write.cid)
        general = clone(receiver)
        general._seal_ccm8 = None  # the suite's own sealing
        direct = receiver.seal(b"direct")
        assert same_datagrams(suite, [general.seal(b"direct")], [direct])
        assert snapshot(general) == snapshot(receiver)
        assert sender.open_record(direct) == b"direct"
        receiver.close()
        assert receiver._open_ccm8 is None
        assert receiver._seal_ccm8 is None


def test_the_direct_ccm8_read_waits_for_the_end_of_the_linger() -> None:
    """The server keeps its last flight: its reads go the general way until the client's first
    record ends the linger, or until the linger runs out."""
    for ending in ("record", "timer"):
        server = dtls_server(cipher_suites=(CCM8,))
        link = Link(psk_client(cipher_suites=(CCM8,)), server)
        link.run()
        connection = server.connection_for(CLIENT_ADDRESS)
        assert connection is not None
        assert connection._open_ccm8 is None
        assert connection._seal_ccm8 is connection._write_protection  # writing is not held up
        if ending == "record":
            server.receive_datagram(link.client.seal(b"first"), CLIENT_ADDRESS, 0.0)
        else:
            deadline = connection.get_timer()
            assert deadline is not None
            connection.handle_timer(deadline)
        assert connection.get_timer() is None
        assert connection._open_ccm8 is connection._read_protection
        assert connection.open_record(link.client.seal(b"second")) == b"second"


def test_a_direct_ccm8_record_of_the_wrong_length_goes_the_general_way() -> None:
    """Shorter than header, nonce and tag; a length field that does not match the datagram."""
    sender, fast = pair(CCM8, "no-cid", "server")
    record = writer(sender).encrypt(23, DTLS_1_2, 1, 10**6, b"payload")
    for datagram in (record[:28], record[:13], record[:5], record + b"x", record[:-1]):
        before = snapshot(fast)
        assert fast.open_record(datagram) is None
        assert snapshot(fast) == before
    short = record[:11] + (8).to_bytes(2, "big") + record[13:21]  # a fragment of 8 bytes
    assert fast.open_record(short) is None
    assert fast.open_record(record) == b"payload"


# -- seal -----------------------------------------------------------------------------------------


def attempt(call: Any) -> Any:
    try:
        return call()
    except DtlsStateError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("sender", ["client", "server"])
@pytest.mark.parametrize("cid_mode", list(CID_MODES))
@pytest.mark.parametrize("suite", [CCM8, CBC], ids=["ccm8", "cbc"])
@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(-3, 2), min_size=1, max_size=6),
    small=st.lists(payloads, min_size=1, max_size=6),
    start=st.sampled_from([None, MAX_SEQUENCE - 2, MAX_SEQUENCE]),
)
def test_seal_agrees_with_send(
    suite: int, cid_mode: str, sender: str, sizes: list[int], small: list[bytes], start: int | None
) -> None:
    fast, receiver = pair(suite, cid_mode, "client" if sender == "server" else "server")
    if start is not None:
        fast._write_seq[1] = start
    general = clone(fast)
    limit = fast.max_application_data
    for delta, payload in zip(sizes, small, strict=False):
        data = payload if delta == -3 else bytes(limit + delta)
        sealed = attempt(lambda data=data: [fast.seal(data)])
        assert fast.datagrams_to_send(0.0) == []
        queued = attempt(lambda data=data: (general.send(data), general.datagrams_to_send(0.0))[1])
        if isinstance(sealed, tuple):
            assert sealed == queued
            continue
        assert same_datagrams(suite, sealed, queued)
        assert snapshot(fast) == snapshot(general)
        # The peer reads the sealed record (a fresh sequence number: the fast path takes it).
        peer = clone(receiver)
        peer._read_window = ReplayWindow()
        assert peer.open_record(sealed[0]) == data
        assert len(sealed[0]) <= fast._configuration.max_datagram_size


def test_seal_refuses_exhausted_sequence_numbers() -> None:
    client, _, _ = established(CCM8, "no-cid")
    connection = clone(client)
    connection._write_seq[1] = MAX_SEQUENCE
    record = connection.seal(b"last")
    assert record[5:11] == MAX_SEQUENCE.to_bytes(6, "big")
    with pytest.raises(DtlsStateError, match="exhausted"):
        connection.seal(b"one too many")
    with pytest.raises(DtlsStateError, match="exhausted"):
        connection.send(b"one too many")


# -- the server demultiplexer ---------------------------------------------------------------------


def server_events(server: DtlsServer) -> list[tuple[Hashable, DtlsEvent | PeerAddressChanged]]:
    events = []
    while (item := server.next_event()) is not None:
        events.append((item.address, item.event))
    return events


@pytest.mark.parametrize("client_cid", [None, b"", b"\x07\x08"])
def test_server_fast_path_and_cid_address_change(client_cid: bytes | None) -> None:
    server = dtls_server(cipher_suites=(CCM8,), connection_id_length=0 if client_cid is None else 4)
    link = Link(psk_client(cipher_suites=(CCM8,), connection_id=client_cid), server)
    link.run()
    link.exchange(b"warm-up")  # ends the linger
    server_events(server)
    connection = server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    client = link.client
    # From the current address: the fast path, by address or by CID.
    record = client.seal(b"one")
    assert server.open_record(record, CLIENT_ADDRESS) == (connection, b"one")
    assert server.open_record(record, CLIENT_ADDRESS) is None  # replay
    server.receive_datagram(record, CLIENT_ADDRESS, 0.0)
    assert server_events(server) == []
    record = client.seal(b"two")
    server.receive_datagram(record, CLIENT_ADDRESS, 0.0)
    assert server_events(server) == [(CLIENT_ADDRESS, ApplicationData(b"two"))]
    # From another address: never the fast path. A CID record moves the connection once it
    # authenticated (RFC 9146 §6); a record without CID from an unknown address is dropped.
    new_address = ("192.0.2.7", 999)
    record = client.seal(b"moved")
    assert server.open_record(record, new_address) is None
    tampered = record[:-1] + bytes([record[-1] ^ 1])
    server.receive_datagram(tampered, new_address, 0.0)
    assert server_events(server) == []
    assert server.address_of(connection) == CLIENT_ADDRESS
    server.receive_datagram(record, new_address, 0.0)
    if client_cid is None:
        assert server_events(server) == []
        assert server.address_of(connection) == CLIENT_ADDRESS
        return
    assert server_events(server) == [
        (new_address, PeerAddressChanged(CLIENT_ADDRESS, new_address)),
        (new_address, ApplicationData(b"moved")),
    ]
    # The replay from a third address moves nothing; the old address is no longer the fast path.
    server.receive_datagram(record, ("203.0.113.1", 1), 0.0)
    assert server_events(server) == []
    record = client.seal(b"after")
    assert server.open_record(record, CLIENT_ADDRESS) is None
    assert server.open_record(record, new_address) == (connection, b"after")
