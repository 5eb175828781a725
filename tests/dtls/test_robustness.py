"""Hostile input: random and mutated datagrams in every state, replays, malformed records,
oversize handshake messages. Invariant (h11's fuzz rule): ``receive_datagram`` never raises;
the only outcomes are silent drops and alerts (never ``internal_error``, which would mean an
unexpected exception inside the engine)."""

from __future__ import annotations

import os
import random
import struct
import tracemalloc

import pytest

from lwm2m.buffer import Buffer
from lwm2m.dtls import (
    AlertDescription,
    ApplicationData,
    ConnectionClosed,
    ConnectionState,
    DtlsConfiguration,
    DtlsConnection,
    DtlsServer,
)
from lwm2m.dtls import messages as m
from lwm2m.dtls.constants import ContentType, HandshakeType
from lwm2m.dtls.record import encode_record

from .helpers import (
    CLIENT_ADDRESS,
    Link,
    dtls_server,
    make_pki,
    psk_client,
    psk_server_credentials,
    rpk_pair,
    x509_client_credentials,
    x509_server_credentials,
)

ITERATIONS = int(os.environ.get("LWM2M_FUZZ_ITERATIONS", "20000"))


def _closed_alert(events: list[object]) -> int | None:
    closed = next((e for e in events if isinstance(e, ConnectionClosed)), None)
    return closed.alert if closed else None


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    choice = rng.randrange(9)
    buf = bytearray(data)
    if choice == 0 or not buf:
        return rng.randbytes(rng.randrange(0, 200))
    if choice == 1:
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif choice == 2:
        i = rng.randrange(len(buf))
        buf[i] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    elif choice == 3:
        del buf[rng.randrange(len(buf)) :]
    elif choice == 4:
        buf += rng.randbytes(rng.randrange(1, 40))
    elif choice == 5:  # header fields: type, version, epoch, sequence, length
        offset = rng.choice([0, 1, 3, 5, 11, 13, 14, 17, 22])
        if offset < len(buf):
            buf[offset] = rng.randrange(256)
    elif choice == 6:
        buf = bytearray(data + rng.choice(corpus))
    elif choice == 7:  # handshake body bytes of a plaintext record
        if len(buf) > 26:
            i = rng.randrange(25, len(buf))
            buf[i] = rng.randrange(256)
    else:
        i = rng.randrange(len(buf))
        j = rng.randrange(len(buf))
        buf[i:i] = buf[j : j + rng.randrange(1, 20)]
    return bytes(buf)


def _scenarios() -> dict[str, object]:
    pki = make_pki()
    client_rpk, server_rpk = rpk_pair()
    return {
        "psk": (lambda: psk_client(), lambda: dtls_server()),
        "rpk": (
            lambda: DtlsConnection(configuration=DtlsConfiguration(), credentials=client_rpk),
            lambda: dtls_server(server_rpk),
        ),
        "x509": (
            lambda: DtlsConnection(
                configuration=DtlsConfiguration(),
                credentials=x509_client_credentials(pki, server_name="server.example"),
            ),
            lambda: dtls_server(x509_server_credentials(pki)),
        ),
    }


@pytest.mark.fuzz
def test_fuzzed_datagrams_in_every_state() -> None:
    rng = random.Random(0x5EED)
    scenarios = _scenarios()
    # Record a clean handshake per scenario: the corpus and the stages to stop at.
    plans = []
    for name, (make_client, make_server) in scenarios.items():  # type: ignore[misc]
        clean = Link(make_client(), make_server())
        clean.run()
        clean.exchange()
        plans.append((name, make_client, make_server, [d.data for d in clean.sent], clean.sent))
    count = 0
    rebuilt = 0
    while count < ITERATIONS:
        for name, make_client, make_server, corpus, sent in plans:
            # Stop the genuine exchange after `stage` datagrams, then inject hostile ones.
            stage = rng.randrange(len(sent) + 1)
            link = Link(make_client(), make_server())
            link.mutate = lambda d, stage=stage: [d] if d.index < stage else []
            link.client.connect(link.clock.now)
            link.pump()
            rebuilt += 1
            for _ in range(60):
                target_server = rng.random() < 0.5
                base = rng.choice([d.data for d in sent if d.to_server == target_server] or corpus)
                data = mutate(rng, base, corpus)
                if target_server:
                    link.server.receive_datagram(data, CLIENT_ADDRESS, link.clock.now)
                else:
                    link.client.receive_datagram(data, link.clock.now)
                link.clock.advance(rng.choice([0.0, 0.0, 0.5, 3.0]))
                link.client.handle_timer(link.clock.now)
                link.server.handle_timer(link.clock.now)
                link.pump()
                count += 1
            for events in (link.client_events, link.server_events):
                assert _closed_alert(events) != AlertDescription.INTERNAL_ERROR, name
    assert count >= ITERATIONS
    assert rebuilt > 10


@pytest.mark.fuzz
def test_random_bytes_into_fresh_endpoints() -> None:
    rng = random.Random(7)
    server = dtls_server(require_cookie=False)
    plain_server = DtlsConnection(
        configuration=DtlsConfiguration(is_client=False), credentials=psk_server_credentials()
    )
    for n in range(max(ITERATIONS // 10, 100)):
        data = rng.randbytes(rng.randrange(0, 120))
        if data and rng.random() < 0.7:
            data = bytes([rng.choice([20, 21, 22, 23, 25])]) + b"\xfe\xfd" + data[3:]
        client = psk_client()
        client.connect(0.0)
        client.receive_datagram(data, 0.0)
        server.receive_datagram(data, ("r", n), 0.0)
        plain_server.receive_datagram(data, 0.0)
        for connection in (client, plain_server):
            while (event := connection.next_event()) is not None:
                if isinstance(event, ConnectionClosed):
                    assert event.alert != AlertDescription.INTERNAL_ERROR
        if plain_server.state is ConnectionState.CLOSED:
            plain_server = DtlsConnection(
                configuration=DtlsConfiguration(is_client=False),
                credentials=psk_server_credentials(),
            )
        while (server_event := server.next_event()) is not None:
            if isinstance(server_event.event, ConnectionClosed):
                assert server_event.event.alert != AlertDescription.INTERNAL_ERROR


def test_replayed_records_are_dropped() -> None:
    link = Link(psk_client(), dtls_server())
    link.run()
    link.client.send(b"once")
    (datagram,) = link.client.datagrams_to_send(0.0)
    for _ in range(3):
        link.server.receive_datagram(datagram, CLIENT_ADDRESS, link.clock.now)
    link.pump()
    assert [e for e in link.server_events if isinstance(e, ApplicationData)] == [
        ApplicationData(b"once")
    ]
    # Out-of-order records inside the window are still accepted once.
    link.client.send(b"a")
    link.client.send(b"b")
    a, b = link.client.datagrams_to_send(0.0)
    for datagram in (b, a, b, a):
        link.server.receive_datagram(datagram, CLIENT_ADDRESS, link.clock.now)
    link.pump()
    data = [e.data for e in link.server_events if isinstance(e, ApplicationData)]
    assert data == [b"once", b"b", b"a"]


def _server_expecting_key_exchange() -> tuple[Link, int]:
    """A link whose client flight 5 is withheld: the server waits for ClientKeyExchange."""
    link = Link(psk_client(), dtls_server(), mutate=lambda d: [] if d.index >= 4 else [d])
    link.client.connect(link.clock.now)
    link.pump()
    return link, 2  # the client's next message_seq (CH=0, CH+cookie=1, CKE=2)


def test_malformed_handshake_message_gives_decode_error() -> None:
    link, seq = _server_expecting_key_exchange()
    truncated = m.encode_handshake(HandshakeType.CLIENT_KEY_EXCHANGE, seq, b"\x00\x10abc")
    link.server.receive_datagram(
        encode_record(ContentType.HANDSHAKE, 0xFEFD, 0, 10, truncated), CLIENT_ADDRESS, 0.0
    )
    link.mutate = None
    link.pump()
    assert _closed_alert(link.server_events) == AlertDescription.DECODE_ERROR
    assert _closed_alert(link.client_events) == AlertDescription.DECODE_ERROR
    # A fragment header that does not fit its record is a decode error as well.
    link, seq = _server_expecting_key_exchange()
    broken = m.encode_handshake(HandshakeType.CLIENT_KEY_EXCHANGE, seq, b"\x00\x02ab")[:-2]
    link.server.receive_datagram(
        encode_record(ContentType.HANDSHAKE, 0xFEFD, 0, 10, broken), CLIENT_ADDRESS, 0.0
    )
    link.mutate = None
    link.pump()
    assert _closed_alert(link.server_events) == AlertDescription.DECODE_ERROR


@pytest.mark.parametrize(
    ("payload", "content_type", "alert"),
    [
        (b"\x02", ContentType.CHANGE_CIPHER_SPEC, AlertDescription.DECODE_ERROR),
        (b"\x01", ContentType.ALERT, AlertDescription.DECODE_ERROR),
    ],
)
def test_malformed_change_cipher_spec_and_alert(
    payload: bytes, content_type: int, alert: int
) -> None:
    link, _ = _server_expecting_key_exchange()
    link.server.receive_datagram(
        encode_record(content_type, 0xFEFD, 0, 10, payload), CLIENT_ADDRESS, 0.0
    )
    link.mutate = None
    link.pump()
    assert _closed_alert(link.server_events) == alert


def test_unexpected_message_in_state() -> None:
    link, seq = _server_expecting_key_exchange()
    done = m.encode_handshake(HandshakeType.SERVER_HELLO_DONE, seq, b"")
    link.server.receive_datagram(encode_record(22, 0xFEFD, 0, 10, done), CLIENT_ADDRESS, 0.0)
    link.mutate = None
    link.pump()
    assert _closed_alert(link.server_events) == AlertDescription.UNEXPECTED_MESSAGE


def test_sixteen_megabyte_handshake_message_is_refused() -> None:
    link, seq = _server_expecting_key_exchange()
    header = struct.pack("!B", HandshakeType.CLIENT_KEY_EXCHANGE) + (16 * 2**20 - 1).to_bytes(
        3, "big"
    )
    fragment = header + seq.to_bytes(2, "big") + (0).to_bytes(3, "big") + (100).to_bytes(3, "big")
    tracemalloc.start()
    try:
        link.server.receive_datagram(
            encode_record(22, 0xFEFD, 0, 10, fragment + bytes(100)), CLIENT_ADDRESS, 0.0
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    link.mutate = None
    link.pump()
    assert _closed_alert(link.server_events) == AlertDescription.ILLEGAL_PARAMETER


def test_reassembly_buffer_bound_drops_excess_fragments() -> None:
    """Fragments of future messages beyond ``max_handshake_buffer`` are not buffered."""
    server = dtls_server(max_handshake_buffer=1000, max_handshake_message_size=900)
    link = Link(psk_client(), server, mutate=lambda d: [] if d.index >= 4 else [d])
    link.client.connect(link.clock.now)
    link.pump()
    connection = server.connection_for(CLIENT_ADDRESS)
    assert connection is not None
    for seq in range(3, 10):  # future messages, each announcing 800 bytes
        frag = m.encode_handshake(HandshakeType.CERTIFICATE_VERIFY, seq, bytes(800), 0, 10)
        server.receive_datagram(encode_record(22, 0xFEFD, 0, 20 + seq, frag), CLIENT_ADDRESS, 0.0)
    assert connection._reassembler is None or connection._reassembler._buffered <= 1000
    assert connection.state is ConnectionState.HANDSHAKING


def test_server_hello_with_unsolicited_extension_is_refused() -> None:
    client = psk_client()
    client.connect(0.0)
    client.datagrams_to_send(0.0)
    body = Buffer()
    m.push_server_hello(
        body, m.ServerHello(bytes(32), b"", 0xC0A8, 0, ((m.ExtensionType.SESSION_TICKET, b""),))
    )
    client.receive_datagram(
        encode_record(
            22, 0xFEFD, 0, 0, m.encode_handshake(HandshakeType.SERVER_HELLO, 0, body.data)
        ),
        0.0,
    )
    events = []
    while (event := client.next_event()) is not None:
        events.append(event)
    assert _closed_alert(events) == AlertDescription.UNSUPPORTED_EXTENSION


def test_internal_errors_become_internal_error_alerts() -> None:
    class BrokenPsk:
        key_log_permitted = True
        identity = b"x"

        def derive_master_secret(self, label: bytes, seed: bytes) -> bytes:
            raise RuntimeError("token unplugged")

    from lwm2m.dtls import DtlsCredentials

    client = DtlsConnection(
        configuration=DtlsConfiguration(), credentials=DtlsCredentials(psk=BrokenPsk())
    )
    link = Link(client, dtls_server())
    link.run()
    assert _closed_alert(link.client_events) == AlertDescription.INTERNAL_ERROR
    assert isinstance(link.server, DtlsServer)
