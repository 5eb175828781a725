"""Review of the server's plain-PSK lanes (then ``Handshake.serve_psk_hello``,
``serve_psk_key_exchange``, ``serve_finished`` and the connection's one-datagram flights; since
the tenth session :mod:`lwm2m.dtls.psk_lane`) against the general path, in the cases
tests/dtls/test_flight_fast_paths.py does not reach.

As there, randomness is deterministic and two server connections are fed the same datagrams:
one takes the lanes (:class:`Counting`), the other is forced through the general path
(:class:`GeneralOnly`); everything observable must agree. The first four tests held the
defects the review found (all fixed in the same session) and now hold the fixes.
"""

from __future__ import annotations

import io
import types
from typing import Any

import pytest

from lwm2m.dtls import handshake as handshake_module
from lwm2m.dtls import psk_lane
from lwm2m.dtls import record as record_module
from lwm2m.dtls.config import DtlsConfiguration
from lwm2m.dtls.connection import ConnectionState, DtlsConnection
from lwm2m.dtls.constants import DTLS_1_2, CipherSuite, ContentType
from lwm2m.dtls.credentials import DtlsCredentials, SoftwarePsk, SoftwarePskStore
from lwm2m.dtls.events import ConnectionClosed, HandshakeCompleted
from lwm2m.dtls.handshake import Handshake

from .helpers import (
    CLIENT_ADDRESS,
    PSK,
    PSK_IDENTITY,
    dtls_server,
    psk_client,
    psk_server_credentials,
)
from .test_flight_fast_paths import (
    Counting,
    GeneralOnly,
    Observed,
    client_datagrams,
    client_finished,
    handshake_client,
    new_server,
    observe,
)

CCM_8 = CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
CBC = CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256


@pytest.fixture(autouse=True)
def deterministic_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (handshake_module, psk_lane):  # the general path's randoms and the lanes'
        monkeypatch.setattr(module, "os", types.SimpleNamespace(urandom=lambda n: bytes(range(n))))
    Counting.taken = []
    # the CBC suites' explicit IVs too, so that both servers' records are the same bytes
    monkeypatch.setattr(
        record_module, "os", types.SimpleNamespace(urandom=lambda n: bytes(range(n)))
    )


def pair(
    credentials: DtlsCredentials | None = None, first_record_seq: int = 0, **config: Any
) -> tuple[DtlsConnection, DtlsConnection]:
    """A server connection taking the lanes and one forced through the general path."""
    return (
        Counting(
            configuration=DtlsConfiguration(is_client=False, **config),
            credentials=credentials or psk_server_credentials(),
            _first_record_seq=first_record_seq,
        ),
        GeneralOnly(
            configuration=DtlsConfiguration(is_client=False, **config),
            credentials=credentials or psk_server_credentials(),
            _first_record_seq=first_record_seq,
        ),
    )


def feed(
    servers: tuple[DtlsConnection, DtlsConnection], datagrams: list[bytes]
) -> tuple[list[Observed], list[Observed]]:
    fast, general = servers
    return [observe(fast, d) for d in datagrams], [observe(general, d) for d in datagrams]


# -- defects ------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [5, 12])
@pytest.mark.usefixtures("quiet_internal_errors")
def test_a_short_handshake_datagram_while_awaiting_the_key_exchange_is_dropped(
    length: int,
) -> None:
    """A datagram of fewer bytes than a record header that starts like an epoch-0 handshake
    record holds no record: the general path drops it (parse_datagram) and the handshake
    carries on. (The key exchange lane once read the record length before checking the
    datagram's, and an IndexError ended the handshake with internal_error.)"""
    hello, flight = client_datagrams()
    fast, general = feed(pair(), [hello, flight[:length], flight])
    assert general[1][2] is ConnectionState.HANDSHAKING
    assert general[-1][2] is ConnectionState.ESTABLISHED
    assert fast == general


@pytest.mark.usefixtures("quiet_internal_errors")
def test_a_spoofed_runt_datagram_does_not_end_a_server_handshake() -> None:
    """The same through the demultiplexer, with cookies on: one 5-byte datagram from the
    client's address (no cookie, no keys needed) must not end its handshake."""
    server = dtls_server()
    client = psk_client()
    client.connect(0.0)
    for _ in range(2):  # the cookie round trip, then the ServerHello flight
        for datagram in client.datagrams_to_send(0.0):
            server.receive_datagram(datagram, CLIENT_ADDRESS, 0.0)
        for datagram, _address in server.datagrams_to_send(0.0):
            client.receive_datagram(datagram, 0.0)
    server.receive_datagram(b"\x16\xfe\xfd\x00\x00", CLIENT_ADDRESS, 0.0)
    assert server.datagrams_to_send(0.0) == []
    for datagram in client.datagrams_to_send(0.0):
        server.receive_datagram(datagram, CLIENT_ADDRESS, 0.0)
    events = []
    while (event := server.next_event()) is not None:
        events.append(event.event)
    assert not any(isinstance(e, ConnectionClosed) for e in events), events
    assert any(isinstance(e, HandshakeCompleted) for e in events)


@pytest.mark.parametrize(
    ("suite", "max_datagram_size"),
    [
        (CCM_8, 67),  # CCS 14 + Finished 53 bytes; _transmit_flight reserves one byte more
        (CBC, 107),  # CCS 14 + Finished 93 bytes; _transmit_flight reserves 9 bytes more
        (CBC, 115),
    ],
)
def test_the_final_flight_is_split_as_the_general_path_splits_it(
    suite: int, max_datagram_size: int
) -> None:
    """_transmit_flight decides whether the Finished fits with the protection's worst-case
    overhead (the CID inner type byte, the largest CBC padding); psk_lane._serve_finished applies
    the same rule (it once compared the exact datagram length, and just under the general
    path's threshold sent one datagram where the general path sends two)."""
    _, (hello, flight) = handshake_client({"cipher_suites": (suite,)})
    fast, general = feed(pair(max_datagram_size=max_datagram_size), [hello, flight])
    assert Counting.taken == ["hello", "key exchange"]
    assert general[-1][2] is ConnectionState.ESTABLISHED
    assert [len(d) for d in fast[-1][0]] == [len(d) for d in general[-1][0]]
    assert fast == general


@pytest.mark.usefixtures("quiet_internal_errors")
def test_exhausted_epoch0_numbers_at_the_server_hello_fail_alike() -> None:
    """The server's epoch-0 numbers run out inside its ServerHello flight (reachable only with
    ``_first_record_seq`` near 2**48: the demultiplexer keeps 2**32 numbers of room). The
    general path raises DtlsStateError with the numbers spent, and its internal_error alert
    finds none left; the lane leaves that case to it (it once packed a record first and
    raised struct.error)."""
    hello, _ = client_datagrams()
    fast, general = feed(pair(first_record_seq=2**48 - 1), [hello])
    assert general[0][2] is ConnectionState.CLOSED
    assert fast == general


@pytest.mark.usefixtures("quiet_internal_errors")
def test_exhausted_epoch0_numbers_at_the_final_flight_fail_alike() -> None:
    """The ChangeCipherSpec of the final flight would need epoch-0 number 2**48. The general
    path raises DtlsStateError with the write epoch still 0 (so its alert cannot be sent); the
    lane leaves that case to it before changing anything (it once moved the write epoch to 1
    first and sent an epoch-1 internal_error alert)."""
    hello, flight = client_datagrams()
    fast, general = feed(pair(first_record_seq=2**48 - 2), [hello, flight])
    assert general[-1][2] is ConnectionState.CLOSED
    assert fast == general


# -- checked and found in agreement (coverage the existing tests lack) -------------------------


@pytest.mark.parametrize("max_datagram_size", [1200, 70, 69])
def test_a_connection_id_only_the_server_writes_goes_through_all_lanes_and_agrees(
    max_datagram_size: int, lanes: list[str]
) -> None:
    """Server ``connection_id=b""`` (CIDs supported, none wanted) and a client offering one: the
    client's records stay plain, so all three lanes serve, and the final flight's Finished is
    a tls12_cid record (RFC 9146), at and around the size where it stops fitting one datagram.
    """
    server = new_server(connection_id=b"")
    client, (hello, flight) = handshake_client({"connection_id": b"\x07\x08"}, server)
    assert server.peer_connection_id == b"\x07\x08"
    lanes.clear()
    fast, general = feed(
        pair(connection_id=b"", max_datagram_size=max_datagram_size), [hello, flight]
    )
    assert lanes == ["hello", "key exchange", "finished"]
    assert fast == general
    assert fast[-1][2] is ConnectionState.ESTABLISHED
    sent = b"".join(fast[-1][0])
    assert sent[0] == ContentType.CHANGE_CIPHER_SPEC
    assert sent[14] == ContentType.TLS12_CID  # after the 14-byte ChangeCipherSpec record
    for datagram in fast[-1][0]:
        client.receive_datagram(datagram, 0.0)
    assert client.state is ConnectionState.ESTABLISHED


def test_a_wrong_finished_that_authenticates_fails_alike() -> None:
    """A Finished record under the right keys with wrong verify_data: the lane raises
    decrypt_error (RFC 5246 §7.4.9) as _check_finished does, after the same state changes."""
    client, (hello, flight) = handshake_client()
    start, seq, protection, plaintext = client_finished(client, flight)
    message = bytearray(plaintext)
    message[-1] ^= 0x01
    record = protection.encrypt(ContentType.HANDSHAKE, DTLS_1_2, 1, seq, bytes(message))
    fast, general = feed(pair(), [hello, flight[:start] + record])
    assert Counting.taken == ["hello", "key exchange"]
    assert fast == general
    assert fast[-1][1] == [
        "ConnectionClosed(alert=<AlertDescription.DECRYPT_ERROR: 51>, by_peer=False, "
        "reason='Finished verify_data mismatch')"
    ]


class _NoKeyLogPsk(SoftwarePsk):
    __slots__ = ()
    key_log_permitted = False


def _store(*credentials: SoftwarePsk) -> SoftwarePskStore:
    store = SoftwarePskStore()
    for credential in credentials:
        store.add(credential)
    return store


@pytest.mark.parametrize(
    ("store", "config", "logged", "outcome"),
    [
        (_store(SoftwarePsk(PSK_IDENTITY, PSK)), {}, True, ConnectionState.ESTABLISHED),
        (_store(_NoKeyLogPsk(PSK_IDENTITY, PSK)), {}, False, ConnectionState.ESTABLISHED),
        (
            _store(SoftwarePsk(b"someone else", PSK)),
            {"hide_unknown_psk_identity": True},
            False,
            ConnectionState.CLOSED,
        ),
        (_store(SoftwarePsk(b"someone else", PSK)), {}, False, ConnectionState.CLOSED),
    ],
)
def test_key_log_and_unknown_identities_agree(
    store: SoftwarePskStore, config: dict[str, Any], logged: bool, outcome: ConnectionState
) -> None:
    """The key log line (only when the identity's credential permits it, never for the random
    secret of a hidden unknown identity, RFC 4279 §2) and the outcome, lane or not."""
    hello, flight = client_datagrams()
    credentials = DtlsCredentials(psk_store=store)
    logs = (io.StringIO(), io.StringIO())
    fast = Counting(
        configuration=DtlsConfiguration(is_client=False, key_log=logs[0], **config),
        credentials=credentials,
    )
    general = GeneralOnly(
        configuration=DtlsConfiguration(is_client=False, key_log=logs[1], **config),
        credentials=credentials,
    )
    observed = feed((fast, general), [hello, flight])
    assert Counting.taken == ["hello", "key exchange"]
    assert observed[0] == observed[1]
    assert observed[0][-1][2] is outcome
    assert logs[0].getvalue() == logs[1].getvalue()
    assert bool(logs[0].getvalue()) is logged


def test_handshake_class_defaults_are_immutable_and_fields_unshared() -> None:
    """Handshake lost its __slots__ for class-level defaults: none may be a shared mutable
    object, and the per-handshake containers are made per instance."""
    mutable = (list, dict, set, bytearray)
    for name, value in vars(Handshake).items():
        if name.startswith("__") or callable(value) or isinstance(value, property):
            continue
        assert not isinstance(value, mutable), name
    configuration = DtlsConfiguration(is_client=False)
    one, two = (
        Handshake(
            configuration=configuration,
            credentials=psk_server_credentials(),
            session_cache=None,
            connection_id=None,
            first_message_seq=0,
        )
        for _ in range(2)
    )
    assert one._flight is not two._flight
    assert one._transcript is not two._transcript
    assert one._transcript_hash is not two._transcript_hash
