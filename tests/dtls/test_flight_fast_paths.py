"""The server connection's one-pass handling of the ClientHello and of the client's last flight
agrees with the general record path, on the canonical datagrams and on every one-byte mutation
of them.

Randomness is made deterministic (``os.urandom`` of the handshake and lane modules), so two
servers fed the same datagrams must send the same bytes: one server takes the fast paths, the
other is forced through the general path (:class:`GeneralOnly`), and everything observable is
compared after every datagram: the datagrams sent, the events, the connection and handshake
states, and the newest authenticated record.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import pytest

from lwm2m.dtls import handshake as handshake_module
from lwm2m.dtls import psk_lane
from lwm2m.dtls.config import DtlsConfiguration
from lwm2m.dtls.connection import ConnectionState, DtlsConnection
from lwm2m.dtls.constants import DTLS_1_0, DTLS_1_2, CipherSuite, ContentType, HandshakeType
from lwm2m.dtls.credentials import DtlsCredentials, SoftwarePskStore
from lwm2m.dtls.events import HandshakeCompleted
from lwm2m.dtls.messages import HANDSHAKE_HEADER_LENGTH, InitialHello, encode_handshake
from lwm2m.dtls.record import RECORD_HEADER_LENGTH, RawRecord, RecordProtection, parse_datagram

from .helpers import PSK, PSK_IDENTITY, Link, dtls_server, psk_client, psk_server_credentials

Observed = tuple[object, ...]


class GeneralOnly(DtlsConnection):
    """A connection that never takes the flight fast paths."""

    __slots__ = ()

    def _receive_client_hello(self, data: bytes, now: float, hello: InitialHello | None) -> bool:
        return False

    def _receive_key_exchange_flight(self, data: bytes, now: float) -> bool:
        return False


class Counting(DtlsConnection):
    """A connection that counts the datagrams its fast paths took."""

    __slots__ = ()
    taken: list[str] = []  # a per-test log, reset by the fixture

    def _receive_client_hello(self, data: bytes, now: float, hello: InitialHello | None) -> bool:
        try:
            taken = super()._receive_client_hello(data, now, hello)
        except Exception:  # taken, and failed: the caller turns it into an alert
            Counting.taken.append("hello")
            raise
        if taken:
            Counting.taken.append("hello")
        return taken

    def _receive_key_exchange_flight(self, data: bytes, now: float) -> bool:
        try:
            taken = super()._receive_key_exchange_flight(data, now)
        except Exception:  # taken, and failed: the caller turns it into an alert
            Counting.taken.append("key exchange")
            raise
        if taken:
            Counting.taken.append("key exchange")
        return taken


@pytest.fixture(autouse=True)
def deterministic_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (handshake_module, psk_lane):  # the general path's randoms and the lanes'
        monkeypatch.setattr(module, "os", types.SimpleNamespace(urandom=lambda n: bytes(range(n))))
    Counting.taken = []


def new_server(
    kind: type[DtlsConnection] = DtlsConnection,
    credentials: DtlsCredentials | None = None,
    offers: dict[bytes, Any] | None = None,
    **config: Any,
) -> DtlsConnection:
    return kind(
        configuration=DtlsConfiguration(is_client=False, **config),
        credentials=credentials or psk_server_credentials(),
        _offers=offers,
    )


def client_datagrams() -> list[bytes]:
    """The client's datagrams of a whole handshake against a server connection (no cookie
    exchange: that is the demultiplexer's): the ClientHello, then flight 5."""
    return handshake_client()[1]


def exchange(client: DtlsConnection, server: DtlsConnection) -> list[bytes]:
    """Connect ``client`` and pass the datagrams both ways, four rounds (a whole handshake
    without a cookie exchange); the client's datagrams."""
    client.connect(0.0)
    sent: list[bytes] = []
    for _ in range(4):
        for datagram in client.datagrams_to_send(0.0):
            sent.append(datagram)
            server.receive_datagram(datagram, 0.0)
        for datagram in server.datagrams_to_send(0.0):
            client.receive_datagram(datagram, 0.0)
    return sent


def handshake_client(
    client_config: dict[str, Any] | None = None, server: DtlsConnection | None = None
) -> tuple[DtlsConnection, list[bytes]]:
    client = psk_client(**(client_config or {}))
    sent = exchange(client, server or new_server())
    assert isinstance(client.next_event(), HandshakeCompleted)
    assert len(sent) == 2
    return client, sent


def observe(server: DtlsConnection, data: bytes) -> Observed:
    server.receive_datagram(data, 0.0)
    events = []
    while (event := server.next_event()) is not None:
        events.append(repr(event))
    handshake = server._handshake
    result = server.handshake_result
    return (
        server.datagrams_to_send(0.0),
        events,
        server.state,
        handshake.state if handshake is not None else None,
        server.highest_authenticated_record,
        server.get_timer(),
        server.max_application_data,
        # what a resumption would find, and what the association keeps
        result.session if result is not None else None,
        server.peer_identity,
        server.peer_connection_id,
    )


def both(
    datagrams: list[bytes],
    credentials: DtlsCredentials | None = None,
    offers: dict[bytes, Any] | None = None,
    **config: Any,
) -> tuple[list[Observed], list[Observed]]:
    """The observations of a connection taking the lanes (keeping what hellos offer in
    ``offers``, as a server's connections do, when given) and of one without them."""
    fast = new_server(Counting, credentials, offers, **config)
    general = new_server(GeneralOnly, credentials, **config)
    return [observe(fast, d) for d in datagrams], [observe(general, d) for d in datagrams]


def test_the_canonical_flights_take_the_fast_paths_and_agree(lanes: list[str]) -> None:
    hello, flight = client_datagrams()
    lanes.clear()
    assert [r.content_type for r in parse_datagram(flight)] == [
        ContentType.HANDSHAKE,
        ContentType.CHANGE_CIPHER_SPEC,
        ContentType.HANDSHAKE,
    ]
    fast, general = both([hello, flight])
    assert Counting.taken == ["hello", "key exchange"]
    assert lanes == ALL_LANES
    assert fast == general
    assert fast[-1][2] is ConnectionState.ESTABLISHED
    assert fast[-1][1][0].startswith("HandshakeCompleted(")


def test_a_split_flight_goes_the_general_way_with_the_same_result() -> None:
    hello, flight = client_datagrams()
    records = [
        flight[start : start + RECORD_HEADER_LENGTH + length]
        for start, length in _record_spans(flight)
    ]
    assert len(records) == 3
    fast, general = both([hello, *records])
    assert Counting.taken == ["hello"]
    assert fast == general
    assert fast[-1][2] is ConnectionState.ESTABLISHED
    # The same keys, sequence numbers and Finished as from the one-datagram flight.
    assert fast[-1][0] == both([hello, flight])[0][-1][0]


def _record_spans(datagram: bytes) -> list[tuple[int, int]]:
    spans = []
    pos = 0
    while pos < len(datagram):
        length = int.from_bytes(datagram[pos + 11 : pos + 13], "big")
        spans.append((pos, length))
        pos += RECORD_HEADER_LENGTH + length
    return spans


def client_finished(
    client: DtlsConnection, flight: bytes
) -> tuple[int, int, RecordProtection, bytes]:
    """Where the client's Finished record starts in its last flight, its sequence number, the
    client's write protection and the record's plaintext (the Finished message)."""
    start = _record_spans(flight)[2][0]
    seq = int.from_bytes(flight[start + 5 : start + 11], "big")
    protection = client._write_protection
    assert protection is not None
    opened = protection.decrypt(
        RawRecord(
            ContentType.HANDSHAKE, DTLS_1_2, 1, seq, b"", flight[start + RECORD_HEADER_LENGTH :]
        )
    )
    assert opened is not None
    return start, seq, protection, opened[1]


def _mutations(data: bytes) -> Iterator[bytes]:
    for position in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            mutated = bytearray(data)
            mutated[position] ^= mask
            yield bytes(mutated)
    yield data + b"\x00"
    yield data[:-1]


def test_every_one_byte_change_of_the_hello_agrees() -> None:
    hello, flight = client_datagrams()
    for mutated in _mutations(hello):
        fast, general = both([mutated, flight])
        assert fast == general, mutated.hex()


def test_every_one_byte_change_of_the_last_flight_agrees() -> None:
    hello, flight = client_datagrams()
    for mutated in _mutations(flight):
        fast, general = both([hello, mutated])
        assert fast == general, mutated.hex()


def _with_record(flight: bytes, index: int, **changes: int) -> bytes:
    """``flight`` with header fields of record ``index`` replaced."""
    start, _ = _record_spans(flight)[index]
    out = bytearray(flight)
    if "version" in changes:
        out[start + 1 : start + 3] = changes["version"].to_bytes(2, "big")
    if "seq" in changes:
        out[start + 5 : start + 11] = changes["seq"].to_bytes(6, "big")
    if "epoch" in changes:
        out[start + 3 : start + 5] = changes["epoch"].to_bytes(2, "big")
    return bytes(out)


@pytest.mark.parametrize(
    ("index", "changes", "taken"),
    [
        (0, {"version": DTLS_1_0}, False),  # epoch 0 accepts any DTLS version: general path
        (1, {"seq": 0}, False),  # ChangeCipherSpec numbered before the key exchange
        (1, {"seq": 0xFFFF}, True),  # a gap in the numbering is fine
        (2, {"epoch": 2}, False),
        (2, {"version": DTLS_1_0}, False),
    ],
)
def test_unusual_headers_agree(index: int, changes: dict[str, int], taken: bool) -> None:
    hello, flight = client_datagrams()
    mutated = _with_record(flight, index, **changes)
    fast, general = both([hello, mutated])
    assert Counting.taken == ["hello", "key exchange"] if taken else ["hello"]
    assert fast == general


def test_reordered_records_agree() -> None:
    hello, flight = client_datagrams()
    (a, la), (b, lb), (c, lc) = _record_spans(flight)
    cke = flight[a : a + RECORD_HEADER_LENGTH + la]
    ccs = flight[b : b + RECORD_HEADER_LENGTH + lb]
    fin = flight[c : c + RECORD_HEADER_LENGTH + lc]
    for datagram in (ccs + cke + fin, cke + fin + ccs, cke + fin):
        fast, general = both([hello, datagram])
        assert fast == general


def test_a_retransmitted_hello_is_not_taken_twice() -> None:
    hello, flight = client_datagrams()
    fast, general = both([hello, hello, flight])
    assert Counting.taken == ["hello", "key exchange"]
    assert fast == general
    assert fast[-1][2] is ConnectionState.ESTABLISHED


def test_an_unknown_identity_fails_alike() -> None:
    hello, flight = client_datagrams()
    start = flight.index(b"\x00" + bytes([len(PSK_IDENTITY)]) + PSK_IDENTITY)
    mutated = bytearray(flight)
    mutated[start + 2] ^= 0x20  # same length, another identity
    fast, general = both([hello, bytes(mutated)])
    assert Counting.taken == ["hello", "key exchange"]
    assert fast == general
    assert fast[-1][2] is ConnectionState.CLOSED


def test_the_key_exchange_message_type_is_checked() -> None:
    hello, flight = client_datagrams()
    mutated = bytearray(flight)
    mutated[RECORD_HEADER_LENGTH] = HandshakeType.CERTIFICATE
    fast, general = both([hello, bytes(mutated)])
    assert Counting.taken == ["hello"]
    assert fast == general


@pytest.mark.parametrize(
    ("msg_type", "seq_delta", "fragment_length"),
    [
        (HandshakeType.FINISHED, 1, 12),  # a later message: buffered, not handled
        (HandshakeType.FINISHED, 0, 6),  # a fragment of the Finished
        (HandshakeType.CERTIFICATE_VERIFY, 0, 12),  # another message in the new epoch
    ],
)
def test_an_unusual_finished_record_goes_the_general_way(
    msg_type: int, seq_delta: int, fragment_length: int
) -> None:
    """A Finished record that authenticates but is not one whole next Finished message."""
    client, (hello, flight) = handshake_client()
    start, seq, protection, plaintext = client_finished(client, flight)
    verify_data = plaintext[HANDSHAKE_HEADER_LENGTH:]
    message_seq = int.from_bytes(plaintext[4:6], "big") + seq_delta
    body = encode_handshake(msg_type, message_seq, verify_data, 0, fragment_length)
    record = protection.encrypt(ContentType.HANDSHAKE, DTLS_1_2, 1, seq, body)
    fast, general = both([hello, flight[:start] + record])
    assert Counting.taken == ["hello", "key exchange"]
    assert fast == general
    assert fast[-1][2] is not ConnectionState.ESTABLISHED


def hinting_credentials() -> DtlsCredentials:
    return DtlsCredentials(
        psk_store=SoftwarePskStore({PSK_IDENTITY: PSK}), psk_identity_hint=b"lwm2m"
    )


ALL_LANES = ["hello", "key exchange", "finished"]


@pytest.mark.parametrize(
    ("client_config", "server_config", "credentials", "taken", "served"),
    [
        ({}, {"require_extended_master_secret": True}, None, ["hello", "key exchange"], ALL_LANES),
        ({}, {"session_cache_size": 0}, None, ["hello", "key exchange"], ALL_LANES),
        # a connection ID offered and accepted: the hello is the plain case, the client's last
        # flight then arrives in tls12_cid records, which are the general path's
        (
            {"connection_id": b"\x07\x08"},
            {"connection_id": b"\x01\x02\x03"},
            None,
            ["hello"],
            ["hello"],
        ),
        # offered, but the server uses none: nothing to negotiate
        ({"connection_id": b"\x07\x08"}, {}, None, ["hello", "key exchange"], ALL_LANES),
        # an identity hint to send: the ServerKeyExchange is the general path's
        ({}, {}, hinting_credentials(), ["hello", "key exchange"], ["key exchange", "finished"]),
    ],
)
def test_configurations_agree(
    client_config: dict[str, Any],
    server_config: dict[str, Any],
    credentials: DtlsCredentials | None,
    taken: list[str],
    served: list[str],
    lanes: list[str],
) -> None:
    """The lanes in the server configurations and client offers they meet, or not."""
    server = new_server(DtlsConnection, credentials, **server_config)
    client, (hello, flight) = handshake_client(client_config, server)
    assert client.state is ConnectionState.ESTABLISHED
    lanes.clear()
    fast, general = both([hello, flight], credentials, **server_config)
    assert Counting.taken == taken
    assert lanes == served
    assert fast == general
    assert fast[-1][2] is ConnectionState.ESTABLISHED


def test_a_resumption_offer_goes_the_general_way(lanes: list[str]) -> None:
    """A hello with a session_id (RFC 5246 §7.4.1.2) is not the lane's: the cached session is
    resumed, or, unknown, a new one made, by the general path."""
    client, _ = handshake_client()
    result = client.handshake_result
    assert result is not None
    assert result.session is not None
    resuming = psk_client(session=result.session)
    resuming.connect(0.0)
    (hello,) = resuming.datagrams_to_send(0.0)
    lanes.clear()
    fast, general = both([hello])
    assert lanes == []
    assert fast == general
    assert fast[-1][3] is not None  # a new full handshake: the server does not know the session


def test_the_retransmitted_final_flight_agrees(lanes: list[str]) -> None:
    """After the lanes completed the handshake, the client's repeated last flight (our Finished
    was lost) gets the same repeated server flight (RFC 6347 §4.2.4) as after the general
    path."""
    client = psk_client()
    servers = [new_server(Counting), new_server(GeneralOnly)]
    client.connect(0.0)
    lanes.clear()
    replies: list[list[bytes]] = [[], []]
    for _ in range(2):  # the hello, then the key exchange flight
        sent = client.datagrams_to_send(0.0)
        for index, server in enumerate(servers):
            for datagram in sent:
                server.receive_datagram(datagram, 0.0)
            replies[index] = server.datagrams_to_send(0.0)
        assert replies[0] == replies[1]
        if client.state is not ConnectionState.HANDSHAKING:
            break
        if _ == 0:
            for datagram in replies[0]:
                client.receive_datagram(datagram, 0.0)
    # Our final flight is lost: the client repeats its flight when its timer fires.
    timer = client.get_timer()
    assert timer is not None
    client.handle_timer(timer)
    repeated = client.datagrams_to_send(timer)
    assert repeated
    again = []
    for server in servers:
        for datagram in repeated:
            server.receive_datagram(datagram, timer)
        again.append((server.datagrams_to_send(timer), server.get_timer(), server.state))
    assert lanes == ALL_LANES
    assert again[0] == again[1]
    assert again[0][0]  # ChangeCipherSpec + Finished again
    assert again[0][2] is ConnectionState.ESTABLISHED
    for datagram in again[0][0]:
        client.receive_datagram(datagram, timer)
    assert client.state is ConnectionState.ESTABLISHED


def _with_extensions(hello: bytes, extra: bytes) -> bytes:
    """``hello`` (one record holding one whole ClientHello with extensions) with ``extra``
    appended to its extension block, every length that covers it grown to match."""
    grown = len(extra)
    out = bytearray(hello + extra)
    record_length = int.from_bytes(hello[11:13], "big") + grown
    out[11:13] = record_length.to_bytes(2, "big")
    body_length = int.from_bytes(hello[14:17], "big") + grown
    out[14:17] = body_length.to_bytes(3, "big")  # the message's length
    out[22:25] = body_length.to_bytes(3, "big")  # its one fragment's length
    # The extension block's length: where the compression methods end in the body.
    body = hello[25:]
    pos = 2 + 32
    pos += 1 + body[pos]  # session_id
    pos += 1 + body[pos]  # cookie
    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")  # cipher_suites
    pos += 1 + body[pos]  # compression_methods
    block = int.from_bytes(body[pos : pos + 2], "big") + grown
    out[25 + pos : 25 + pos + 2] = block.to_bytes(2, "big")
    return bytes(out)


@pytest.mark.parametrize(
    ("extra", "server_config"),
    [
        # an extension header cut short at the end of the block: a decode error
        (b"\x00\x17", {}),
        # a connection_id extension whose CID length disagrees with its data (RFC 9146 §3),
        # to a server that uses CIDs
        (b"\x00\x36\x00\x03\x05\x01\x02", {"connection_id": b"\x01\x02\x03"}),
        # the same extension, well formed: the lane serves it
        (b"\x00\x36\x00\x03\x02\x01\x02", {"connection_id": b"\x01\x02\x03"}),
    ],
    ids=["cut-header", "bad-cid-length", "good-cid"],
)
def test_unusual_hello_extensions_agree(
    extra: bytes, server_config: dict[str, Any], lanes: list[str]
) -> None:
    hello, _ = client_datagrams()
    lanes.clear()
    fast, general = both([_with_extensions(hello, extra)], **server_config)
    assert Counting.taken == ["hello"]  # the record is the lane's; the hello decides the rest
    well_formed = len(extra) > 4 and extra[4] == len(extra) - 5
    assert lanes == (["hello"] if well_formed else [])
    assert fast == general
    # the malformed ones end the handshake with an alert, the other is answered
    assert fast[-1][2] is (ConnectionState.HANDSHAKING if well_formed else ConnectionState.CLOSED)


def test_a_hello_after_another_epoch0_record_agrees() -> None:
    """A ClientHello whose connection already took an epoch-0 record (a warning alert): the
    hello lane checks the replay window as the record path does (a fresh number is served,
    the alert's number again is a replay, dropped)."""
    hello, flight = client_datagrams()
    seq = int.from_bytes(hello[5:11], "big") + 10  # above the client's next few numbers
    alert = bytes([ContentType.ALERT]) + DTLS_1_2.to_bytes(2, "big") + bytes(2)
    alert += seq.to_bytes(6, "big") + b"\x00\x02\x01\x5a"  # warning, user_canceled
    replayed = hello[:5] + seq.to_bytes(6, "big") + hello[11:]
    fast, general = both([alert, replayed])
    assert Counting.taken == []
    assert fast == general
    assert fast[-1][0] == []  # nothing answered
    assert fast[-1][2] is ConnectionState.HANDSHAKING
    Counting.taken = []
    fast, general = both([alert, hello, flight])
    assert Counting.taken == ["hello", "key exchange"]
    assert fast == general
    assert fast[-1][2] is ConnectionState.ESTABLISHED


@pytest.mark.parametrize(
    "config",
    [{}, {"require_extended_master_secret": True}, {"connection_id": b"\x01\x02\x03"}],
    ids=["default", "ems-required", "server-cid"],
)
def test_offers_kept_across_hellos_agree(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the offers kept between connections (a server's ``_offers``): every one-byte change
    of the hello, each on a new connection sharing one ``offers``, the canonical hello between
    them, agrees with the general path, whether its offer was read then or found kept (a kept
    refusal included)."""
    hello, flight = client_datagrams()
    reads: list[bytes] = []
    original = psk_lane._read_offer

    def counting_read(data: bytes, *args: Any) -> Any:
        reads.append(data)
        return original(data, *args)

    monkeypatch.setattr(psk_lane, "_read_offer", counting_read)
    offers: dict[bytes, Any] = {}
    for mutated in [hello, *_mutations(hello), hello]:
        fast, general = both([mutated, flight], None, offers, **config)
        assert fast == general, mutated.hex()
        assert both([mutated, flight], None, offers, **config)[0] == fast  # kept this time
    assert offers  # read once each, then found: fewer reads than hellos served
    assert len(reads) == len(offers) < 2 * (3 * len(hello) + 4)
    assert any(offer is None for offer in offers.values())  # refusals are kept too


def test_a_long_offer_is_read_and_not_kept() -> None:
    """An offer longer than ``MAX_OFFER_BYTES`` (a long unknown extension) is read and served,
    and not kept: the offers kept stay small whatever the peers send."""
    hello, _ = client_datagrams()
    long_hello = _with_extensions(hello, b"\xfe\x00\x02\x58" + bytes(600))
    offers: dict[bytes, Any] = {}
    fast, general = both([long_hello], None, offers)
    assert fast == general
    assert fast[-1][0]  # answered: ServerHello, ServerHelloDone
    assert offers == {}
    both([hello], None, offers)
    assert len(offers) == 1


def test_the_offers_kept_are_bounded() -> None:
    """At ``MAX_OFFERS`` no more are kept, and a new offer is still read and served."""
    hello, flight = client_datagrams()
    offers: dict[bytes, Any] = {bytes([n]) * 3 + n.to_bytes(2, "big"): None for n in range(256)}
    assert len(offers) == psk_lane.MAX_OFFERS
    fast, general = both([hello, flight], None, offers)
    assert fast == general
    assert fast[-1][2] is ConnectionState.ESTABLISHED
    assert len(offers) == psk_lane.MAX_OFFERS


def test_a_server_reads_one_offer_for_a_fleet_of_one_model() -> None:
    """``DtlsServer`` shares one ``_offers`` with its connections: clients configured alike send
    the same offer, read once and found for every later hello; each handshake completes."""
    server = dtls_server()
    for port in range(3):
        link = Link(psk_client(), server, address=("192.0.2.7", 5684 + port))
        link.run()
        assert link.client.state is ConnectionState.ESTABLISHED
        assert any(isinstance(e, HandshakeCompleted) for e in link.server_events)
    assert len(server._offers) == 1
    (offer,) = server._offers.values()
    assert offer is not None
    assert offer[0] == CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
