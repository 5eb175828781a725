"""The plain PSK server handshake, one function per client flight.

Nearly every handshake a DTLS server for LwM2M devices serves is the same one: a ClientHello
with the cookie (RFC 6347 §4.2.1) offering a PSK suite (RFC 4279 §2) for a new session, then
the client's last flight, ClientKeyExchange, ChangeCipherSpec and Finished (RFC 6347 §4.2.4,
flight 5), each one whole record filling one datagram. :class:`~.connection.DtlsConnection`
hands those two datagrams here first; each function below takes one of them from the datagram
bytes to the server's answering datagram in one pass, reading and writing the state of the
connection and of its :class:`~.handshake.Handshake` directly (this module is their friend):

- :func:`receive_client_hello`: the record, the hello's extensions (RFC 5246 §7.4.1.4,
  RFC 7627 §5.1, RFC 5746 §3.6, RFC 9146 §3) and suite, the ServerHello and ServerHelloDone,
  the transcript, and the flight in one datagram kept for retransmission. What a hello offers
  (its bytes after the cookie) is read by :func:`_read_offer`, a pure function of those bytes
  and the configuration; a :class:`~.server.DtlsServer` keeps up to :data:`MAX_OFFERS` of
  them for its connections, so the devices of one model, which send the same offer, have it
  read once;
- :func:`receive_key_exchange_flight`: the three records, the master secret derived inside the
  credential (the engine never sees the PSK), the key block and protections (RFC 5246 §6.3),
  the client's Finished checked and the server's ChangeCipherSpec and Finished sent
  (RFC 5246 §7.4.9), the session cached and the handshake completed.

Why: the general path (records parsed into objects, per-message dispatch, flights built and
packed message by message) costs several times the bytecode of the work itself, and with the
peer's code running between flights every step runs with cold caches (docs/performance.md,
"Ninth session", "Tenth session").

The rule that keeps this honest: for its input, each function either does exactly what the
general path does — the same checks, state, bytes, events, in the same order — or returns
before changing anything (False: the connection parses the datagram the general way) or
hands the message to the general message handler (``_handle_message``) at the point where the
two paths part. ``tests/dtls/test_flight_fast_paths.py`` runs a connection with these
functions and one without on every one-byte change of both client flights and in the
configurations they meet, and requires the same observable results;
``tests/dtls/test_psk_lanes_review.py`` and ``tests/dtls/test_psk_lane_review2.py`` keep two
independent reviews' cases (the second compares every slot of both connections).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import TYPE_CHECKING, Any

from .constants import DTLS_1_2, CipherSuite, ContentType, ExtensionType, HandshakeType
from .errors import AlertDecryptError
from .events import dtls_session, handshake_completed
from .handshake import (
    _CHANGE_CIPHER_SPEC_MESSAGE,
    _EMS,
    _EXTENSION_HEADER,
    _PSK_SUITES,
    _RENEGOTIATION_INFO,
    _USABLE_SUITES,
    HandshakeState,
    OutgoingMessage,
)
from .messages import (
    HANDSHAKE_HEADER_LENGTH,
    InitialHello,
    initial_client_hello,
)
from .messages import (
    HANDSHAKE_RECORD_OVERHEAD as _HANDSHAKE_RECORD_OVERHEAD,
)
from .messages import (
    PLAIN_HANDSHAKE_RECORD as _PLAIN_HANDSHAKE_RECORD,
)
from .prf import (
    CLIENT_FINISHED_LABEL,
    EXTENDED_MASTER_SECRET_LABEL,
    MASTER_SECRET_LABEL,
    SERVER_FINISHED_LABEL,
    VERIFY_DATA_LENGTH,
    HmacSha256,
    finished_verify_data,
)
from .record import (
    MAX_FRAGMENT_LENGTH as _MAX_FRAGMENT,
)
from .record import (
    MAX_SEQUENCE_NUMBER as _MAX_SEQUENCE,
)
from .record import (
    RECORD_HEADER as _RECORD_HEADER,
)
from .record import (
    RECORD_HEADER_LENGTH,
    RawRecord,
    create_protections,
)
from .trust import PskIdentity

if TYPE_CHECKING:
    from .config import DtlsConfiguration
    from .connection import DtlsConnection
    from .handshake import Handshake

__all__ = ["receive_client_hello", "receive_key_exchange_flight"]

_HANDSHAKE = int(ContentType.HANDSHAKE)
_CHANGE_CIPHER_SPEC = int(ContentType.CHANGE_CIPHER_SPEC)
_CLIENT_HELLO = int(HandshakeType.CLIENT_HELLO)
_SERVER_HELLO = int(HandshakeType.SERVER_HELLO)
_SERVER_HELLO_DONE = int(HandshakeType.SERVER_HELLO_DONE)
_CLIENT_KEY_EXCHANGE = int(HandshakeType.CLIENT_KEY_EXCHANGE)
_FINISHED = int(HandshakeType.FINISHED)
_CONNECTION_ID = int(ExtensionType.CONNECTION_ID)
_SCSV = int(CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV)
#: The server's renegotiation_info (empty, RFC 5746 §3.6) and extended_master_secret (RFC 7627
#: §5.1) extensions, encoded.
_RENEGOTIATION_REPLY = _EXTENSION_HEADER.pack(_RENEGOTIATION_INFO, 1) + b"\x00"
_EMS_REPLY = _EXTENSION_HEADER.pack(_EMS, 0)
#: The length and data of an empty renegotiation_info extension (RFC 5746 §3.2).
_EMPTY_RENEGOTIATION_INFO_EXTENSION = b"\x00\x01\x00"
_EXPECT_KEY_EXCHANGE = HandshakeState.SERVER_EXPECT_CLIENT_KEY_EXCHANGE
_EXPECT_FINISHED = HandshakeState.SERVER_EXPECT_FINISHED
_POST_HANDSHAKE = HandshakeState.POST_HANDSHAKE
#: An epoch-0 record holding a whole ServerHello up to its extensions (RFC 5246 §7.4.1.3), by
#: the length of the session_id (32 bytes, or none without a session cache): the record and
#: handshake headers as in _PLAIN_HANDSHAKE_RECORD, then server_version, random, the
#: session_id with its length, cipher_suite, compression_method and the extensions' length.
_SERVER_HELLO_RECORD = {size: struct.Struct(f"!BHHHIHIHHIH32sB{size}sHBH") for size in (0, 32)}
#: A ServerHello body's length without its session_id and extensions.
_SERVER_HELLO_FIXED = 2 + 32 + 1 + 2 + 1 + 2
#: An epoch-0 ChangeCipherSpec record: header (type, version, epoch, seq_hi, seq_lo, length 1)
#: and its one byte (RFC 5246 §7.1).
_CHANGE_CIPHER_SPEC_RECORD = struct.Struct("!BHHHIHB")
#: A handshake header: msg_type+length, message_seq, fragment_offset's high 16 bits, its low
#: byte + fragment_length (RFC 6347 §4.2.2).
_HANDSHAKE_HEADER = struct.Struct("!IHHI")
#: The first six bytes of a handshake header: msg_type+length as one word, message_seq.
_TYPE_LENGTH_SEQ = struct.Struct("!IH")
#: A whole Finished message (RFC 5246 §7.4.9, 12 bytes of verify_data) with its DTLS header.
_WHOLE_FINISHED = HANDSHAKE_HEADER_LENGTH + VERIFY_DATA_LENGTH
_FINISHED_TYPE_AND_LENGTH = (_FINISHED << 24) | VERIFY_DATA_LENGTH
_FINISHED_FRAGMENT = bytes(3) + VERIFY_DATA_LENGTH.to_bytes(3, "big")  # offset 0, length 12
#: ``tuple.__new__``: a named tuple without its generated (Python) ``__new__``.
_new = tuple.__new__
#: What :func:`_read_offer` reads from a hello: (PSK suite, extended master secret offered,
#: reply extensions, connection_id extension data or None).
Offer = tuple[int, bool, bytes, bytes | None]
#: Most offers a server keeps, and the longest one it keeps (real ones are 20 to 100 bytes): a
#: fleet has a few device models; a peer sending many distinct or long hellos only makes the
#: lane read each one again. So the offers kept take at most about 150 KiB.
MAX_OFFERS = 256
MAX_OFFER_BYTES = 512
_UNREAD: Any = object()


def receive_client_hello(
    connection: DtlsConnection, data: bytes, now: float, hello: InitialHello | None
) -> bool:
    """Server: a datagram that is one epoch-0 record holding one whole ClientHello, the next
    message expected (how a hello nearly always arrives), taken without the record list and
    the per-record dispatch, and, in the plain PSK case (:func:`_serve_psk_hello`), answered
    in the same pass. Like the general path, any DTLS record version is accepted on it
    (RFC 6347 §4.1). Any other shape returns False with nothing changed. (``hello`` is the
    server demultiplexer's read of the hello, when it made one.)
    """
    if hello is None:
        hello = initial_client_hello(data)
        if hello is None:
            return False
    end = len(data)
    window = connection._epoch0_window
    record_seq = hello.record_seq
    message_seq = hello.message_seq
    configuration = connection._configuration
    if (
        hello.body_end != end  # the hello fills the record, the record the datagram
        or ((data[11] << 8) | data[12]) != end - RECORD_HEADER_LENGTH
        or end - RECORD_HEADER_LENGTH > configuration.max_record_plaintext
        or end - _HANDSHAKE_RECORD_OVERHEAD > configuration.max_handshake_message_size
        or message_seq != connection._receive_seq
        or connection._reassembler is not None
        or window is None
    ):
        return False
    if window.highest < 0:  # the window of a new connection: its first mark, written out
        window.highest = record_seq
        window.bitmap = 1
    elif window.is_fresh(record_seq):
        window.mark(record_seq)
    else:
        return False
    connection._receive_seq = message_seq + 1
    if not _serve_psk_hello(connection, data, hello, now):
        connection._handle_message(_CLIENT_HELLO, message_seq, data[25:], 0, now)
    return True


def _serve_psk_hello(
    connection: DtlsConnection, data: bytes, hello: InitialHello, now: float
) -> bool:
    """The ClientHello that fills ``data`` when it starts a new session with a PSK suite and the
    server has no identity hint to send (RFC 4279 §2): answered with ServerHello and
    ServerHelloDone in one datagram, as the general path answers it. False, nothing changed,
    for any other hello."""
    handshake = connection._handshake
    assert handshake is not None
    credentials = connection._credentials
    if (
        credentials.psk_store is None
        or credentials.psk_identity_hint
        or data[25] != 0xFE  # client_version: DTLS 1.2 (numerically lower is later)
        or data[26] > 0xFD
        or data[59]  # a session_id: resumption is the general path's
    ):
        return False
    configuration = connection._configuration
    cookie_end = hello.cookie_end
    offers = connection._offers
    if offers is None:
        offer = _read_offer(data, cookie_end, hello.compression_end, configuration)
    else:
        # The server's offers read before, by the hello's bytes after its cookie (see
        # _read_offer): a fleet of one device model sends the same ones every time.
        key = data[cookie_end:]
        offer = offers.get(key, _UNREAD)
        if offer is _UNREAD:
            offer = _read_offer(data, cookie_end, hello.compression_end, configuration)
            if len(offers) < MAX_OFFERS and len(key) <= MAX_OFFER_BYTES:
                offers[key] = offer
    if offer is None:
        return False
    suite, ems, reply, cid_data = offer
    own_cid = handshake._connection_id
    if own_cid is None:
        cid_data = None  # nothing to negotiate
    elif cid_data is not None and (not cid_data or cid_data[0] != len(cid_data) - 1):
        return False
    write_seq = connection._write_seq
    seq = write_seq[0]
    if seq >= _MAX_SEQUENCE:
        return False  # no numbers left for two records: the general path fails alike
    # What Handshake.handle_message and _server_handle_client_hello do in this case.
    message_seq = handshake._send_seq
    handshake._send_seq = message_seq + 2
    handshake.client_random = hello.random
    randoms = os.urandom(64)
    handshake.server_random = server_random = randoms[:32]
    handshake._ems = ems
    handshake.cipher_suite = suite
    if cid_data is not None:
        assert own_cid is not None
        handshake._peer_connection_id = cid_data[1:]
        reply += _EXTENSION_HEADER.pack(_CONNECTION_ID, len(own_cid) + 1)
        reply += bytes([len(own_cid)]) + own_cid
    session_id = (
        randoms[32:]
        if handshake._session_cache is not None and configuration.session_cache_size
        else b""
    )
    handshake._session_id = session_id
    # The flight as one datagram: the ServerHello record, then the ServerHelloDone record (an
    # empty body), numbered on from the hello's record (see .server).
    length = _SERVER_HELLO_FIXED + len(session_id) + len(reply)
    server_hello = (
        _SERVER_HELLO_RECORD[len(session_id)].pack(
            _HANDSHAKE,
            DTLS_1_2,
            0,
            seq >> 32,
            seq & 0xFFFFFFFF,
            HANDSHAKE_HEADER_LENGTH + length,
            (_SERVER_HELLO << 24) | length,
            message_seq,
            0,
            length,
            DTLS_1_2,
            server_random,
            len(session_id),
            session_id,
            suite,
            0,  # compression_method null
            len(reply),
        )
        + reply
    )
    done = seq + 1
    server_hello_done = _PLAIN_HANDSHAKE_RECORD.pack(
        _HANDSHAKE,
        DTLS_1_2,
        0,
        done >> 32,
        done & 0xFFFFFFFF,
        HANDSHAKE_HEADER_LENGTH,
        _SERVER_HELLO_DONE << 24,
        message_seq + 1,
        0,
        0,
    )
    # The transcript (RFC 5246 §7.4.9; RFC 6347 §4.2.6: each message whole, with its DTLS
    # handshake header): the hello as received, then both messages. The byte transcript is
    # kept for signatures only, which no PSK suite makes.
    transcript = hashlib.sha256(data[RECORD_HEADER_LENGTH:])
    transcript.update(server_hello[RECORD_HEADER_LENGTH:])
    transcript.update(server_hello_done[RECORD_HEADER_LENGTH:])
    body = server_hello[_HANDSHAKE_RECORD_OVERHEAD:]
    handshake._transcript_hash = transcript
    handshake._state = _EXPECT_KEY_EXCHANGE
    # What the connection does with a new flight (_start_flight, _transmit_flight).
    connection._flight = [
        _new(OutgoingMessage, (_HANDSHAKE, 0, _SERVER_HELLO, message_seq, body)),
        _new(OutgoingMessage, (_HANDSHAKE, 0, _SERVER_HELLO_DONE, message_seq + 1, b"")),
    ]
    connection._flight_trigger = hello.message_seq
    connection._timeout = timeout = configuration.initial_retransmit_timeout
    connection._retransmissions = 0
    connection._timer = now + timeout
    datagram = server_hello + server_hello_done
    if len(datagram) > configuration.max_datagram_size:
        connection._transmit_flight(now)  # fragments
    else:
        connection._flight_sent_at = now
        write_seq[0] = seq + 2
        connection._datagrams.append(datagram)
    return True


def _read_offer(
    data: bytes, cookie_end: int, compression_end: int, configuration: DtlsConfiguration
) -> Offer | None:
    """What a ClientHello offers, read from ``data[cookie_end:]`` (its cipher suites,
    compression methods and extensions: RFC 5246 §7.4.1.2, §7.4.1.4) for a server of this
    ``configuration``: the PSK suite chosen, whether extended_master_secret was offered
    (RFC 7627 §5.1), the renegotiation_info and extended_master_secret extensions of the reply
    (RFC 5746 §3.6), and the connection_id extension's data if any (RFC 9146 §3, checked by
    the caller when the server uses CIDs). None for a hello that is not the lane's: no null
    compression, a malformed or repeated extension, a required extended master secret missing,
    a non-empty renegotiation_info, or a server choice that is not a PSK suite.

    A pure function of those bytes and the configuration, so a server may keep the results
    (``DtlsServer``: up to :data:`MAX_OFFERS`, by the bytes).
    """
    suites_at = cookie_end + 2
    compression_at = suites_at + ((data[cookie_end] << 8) | data[cookie_end + 1])
    if 0 not in data[compression_at + 1 : compression_end]:
        return None
    end = len(data)
    # The extensions' positions by type: one entry per extension, so a repeated type shows as
    # fewer entries than extensions (a decode error, the general path's).
    found: dict[int, int] = {}
    if compression_end < end:
        pos = compression_end + 2
        if pos > end or pos + ((data[pos - 2] << 8) | data[pos - 1]) != end:
            return None
        count = 0
        try:
            while pos < end:
                ext_type, ext_length = _EXTENSION_HEADER.unpack_from(data, pos)
                found[ext_type] = pos
                pos += 4 + ext_length
                count += 1
        except struct.error:  # a header cut short
            return None
        if pos != end or len(found) != count:
            return None
    ems = _EMS in found
    if ems:
        if data[found[_EMS] + 2 : found[_EMS] + 4] != b"\x00\x00":
            return None  # extended_master_secret is empty (RFC 7627 §5.1)
    elif configuration.require_extended_master_secret:
        return None
    reneg = _RENEGOTIATION_INFO in found
    if reneg and data[found[_RENEGOTIATION_INFO] + 2 : found[_RENEGOTIATION_INFO] + 5] != (
        _EMPTY_RENEGOTIATION_INFO_EXTENSION
    ):
        return None  # renegotiation_info must be empty (RFC 5746 §3.6)
    cid_data = None
    if _CONNECTION_ID in found:
        at = found[_CONNECTION_ID]
        cid_data = data[at + 4 : at + 4 + ((data[at + 2] << 8) | data[at + 3])]
    offered = struct.unpack_from(f"!{(compression_at - suites_at) >> 1}H", data, suites_at)
    for suite in configuration.cipher_suites:
        if suite in offered and suite in _USABLE_SUITES:
            if suite not in _PSK_SUITES:
                return None  # the ECDHE negotiation is the general path's
            break
    else:
        return None
    reply = _RENEGOTIATION_REPLY if reneg or _SCSV in offered else b""
    if ems:
        reply += _EMS_REPLY
    return int(suite), ems, reply, cid_data


def receive_key_exchange_flight(connection: DtlsConnection, data: bytes, now: float) -> bool:
    """Server: the client's last flight as it nearly always arrives (RFC 6347 §4.2.4, flight
    5 without a client certificate): ClientKeyExchange, ChangeCipherSpec and Finished, each
    one whole DTLS 1.2 record, in this order, filling the datagram.

    Any other shape returns False before anything changed, and the connection parses the
    datagram the general way: a record that is not fresh, another version or order, a
    fragment, a message that is not the next one, a size over the limits, a connection ID.
    A key exchange that is not a PSK one goes to the general message handler, and so does a
    Finished record that does not decrypt to one whole Finished (the general record path).
    """
    end = len(data)
    if end < 3 * RECORD_HEADER_LENGTH + HANDSHAKE_HEADER_LENGTH + 1 or connection._deferred:
        return False
    configuration = connection._configuration
    # The three records' headers (RFC 6347 §4.1) and the key exchange's handshake header
    # (§4.2.2), each read in one step.
    (
        type1,
        version1,
        epoch1,
        hi1,
        lo1,
        length1,
        type_and_length,
        message_seq,
        offset_hi,
        offset_lo_and_length,
    ) = _PLAIN_HANDSHAKE_RECORD.unpack_from(data)
    ccs = RECORD_HEADER_LENGTH + length1
    finished = ccs + _CHANGE_CIPHER_SPEC_RECORD.size
    if (
        type1 != _HANDSHAKE
        or version1 != DTLS_1_2
        or epoch1
        or end < finished + RECORD_HEADER_LENGTH
        or length1 > configuration.max_record_plaintext
    ):
        return False
    type2, version2, epoch2, hi2, lo2, length2, body2 = _CHANGE_CIPHER_SPEC_RECORD.unpack_from(
        data, ccs
    )
    type3, version3, epoch3, hi3, lo3, length3 = _RECORD_HEADER.unpack_from(data, finished)
    length = type_and_length & 0xFFFFFF
    if (
        type2 != _CHANGE_CIPHER_SPEC
        or version2 != DTLS_1_2
        or epoch2
        or length2 != 1  # a ChangeCipherSpec is the one byte 1 (RFC 5246 §7.1)
        or body2 != 1
        or type3 != _HANDSHAKE
        or version3 != DTLS_1_2
        or epoch3 != 1
        or finished + RECORD_HEADER_LENGTH + length3 != end
        or length3 > _MAX_FRAGMENT
        # the key exchange record holds exactly one whole message, the next one expected
        or type_and_length >> 24 != _CLIENT_KEY_EXCHANGE
        or message_seq != connection._receive_seq
        or offset_hi  # offset 0, the whole message
        or offset_lo_and_length != length
        or length + HANDSHAKE_HEADER_LENGTH != length1
        or length > configuration.max_handshake_message_size
        or connection._reassembler is not None
    ):
        return False
    window = connection._epoch0_window
    seq1 = (hi1 << 32) | lo1
    seq2 = (hi2 << 32) | lo2
    # The ChangeCipherSpec after the key exchange: then it is fresh once that is marked.
    if window is None or not window.is_fresh(seq1) or seq2 <= seq1:
        return False
    # From here on, what the general path does with these records, in its order.
    window.mark(seq1)
    connection._receive_seq = message_seq + 1
    handshake = connection._handshake
    assert handshake is not None
    if not _serve_psk_key_exchange(connection, handshake, data, ccs, length):
        connection._handle_message(_CLIENT_KEY_EXCHANGE, message_seq, data[25:ccs], 0, now)
        if connection._is_closed():  # pragma: no cover - _handle_message raises instead
            return True
    window.mark(seq2)
    seq3 = (hi3 << 32) | lo3
    fragment = data[finished + RECORD_HEADER_LENGTH :]
    # The Finished: one whole message, the next one, in a record that authenticates, ending a
    # full handshake without client certificates; else the general record path takes the
    # record (and decides on one that does not decrypt).
    protection = connection._read_protection
    mac = handshake._master_mac
    plaintext = (
        protection.open_fragment(_HANDSHAKE, 1, seq3, fragment)
        if protection is not None
        and handshake._state is _EXPECT_FINISHED
        and not handshake._resumed
        and not handshake._certificate_requested
        and mac is not None
        else None
    )
    if (
        plaintext is None
        or len(plaintext) != _WHOLE_FINISHED
        or len(plaintext) > configuration.max_record_plaintext  # record_overflow, the general way
    ):
        connection._receive_record(
            _new(RawRecord, (_HANDSHAKE, DTLS_1_2, 1, seq3, b"", fragment)), now
        )
        return True
    type_and_length, message_seq = _TYPE_LENGTH_SEQ.unpack_from(plaintext)
    if (
        type_and_length != _FINISHED_TYPE_AND_LENGTH
        or message_seq != connection._receive_seq
        or plaintext[6:12] != _FINISHED_FRAGMENT
        or configuration.max_handshake_message_size < VERIFY_DATA_LENGTH
    ):
        connection._receive_record(
            _new(RawRecord, (_HANDSHAKE, DTLS_1_2, 1, seq3, b"", fragment)), now
        )
        return True
    assert mac is not None
    # The first record of the new epoch to authenticate (its keys were made by this datagram,
    # with nothing deferred): the window's first mark, written out.
    read_window = connection._read_window
    read_window.highest = seq3
    read_window.bitmap = 1
    connection._receive_seq = message_seq + 1
    _serve_finished(connection, handshake, mac, plaintext, message_seq, now)
    return True


def _serve_psk_key_exchange(
    connection: DtlsConnection, handshake: Handshake, data: bytes, ccs: int, length: int
) -> bool:
    """The ClientKeyExchange of the PSK suite chosen (RFC 4279 §2), whole in ``data[13:ccs]``
    with a ``length``-byte body: the master secret derived by the credential (the PSK never
    leaves it), with the session hash of RFC 7627 §4 when both sides sent the extension, and
    the new epoch's protections made (RFC 5246 §6.3). False, nothing changed, for any other
    key exchange."""
    if (
        handshake._state is not _EXPECT_KEY_EXCHANGE
        or handshake.cipher_suite not in _PSK_SUITES
        or length < 2
        or ((data[25] << 8) | data[26]) + 2 != length  # psk_identity fills the message
    ):
        return False
    configuration = connection._configuration
    transcript = handshake._transcript_hash
    transcript.update(data[RECORD_HEADER_LENGTH:ccs])
    identity = data[27:ccs]
    store = connection._credentials.psk_store
    assert store is not None  # PSK suites are chosen only with a store
    credential = store.lookup(identity)
    if credential is None or configuration.key_log is not None:
        handshake._server_psk_key_exchange(identity, credential)
    else:
        client_random = handshake.client_random
        server_random = handshake.server_random
        if handshake._ems:
            master = credential.derive_master_secret(
                EXTENDED_MASTER_SECRET_LABEL, transcript.copy().digest()
            )
        else:
            master = credential.derive_master_secret(
                MASTER_SECRET_LABEL, client_random + server_random
            )
        handshake._master_secret = master
        handshake._master_mac = master_mac = HmacSha256(master)
        peer_cid = handshake._peer_connection_id
        handshake.read_protection, handshake.write_protection = create_protections(
            handshake.cipher_suite,
            master_mac,
            client_random,
            server_random,
            is_client=False,
            read_cid=(handshake._connection_id or b"") if peer_cid is not None else b"",
            write_cid=peer_cid or b"",
        )
        handshake._peer_identity = PskIdentity(identity)
    handshake._state = _EXPECT_FINISHED
    connection._read_protection = handshake.read_protection
    connection._write_protection = handshake.write_protection
    return True


def _serve_finished(
    connection: DtlsConnection,
    handshake: Handshake,
    mac: HmacSha256,
    plaintext: bytes,
    message_seq: int,
    now: float,
) -> None:
    """The client's Finished (``plaintext``, the whole message numbered ``message_seq``) of a
    full handshake without client certificates, checked (RFC 5246 §7.4.9); then the server's
    ChangeCipherSpec and Finished, which end the transcript, sent as the final flight, and the
    handshake completed with its session cached (``mac``: the master secret's PRF key)."""
    configuration = connection._configuration
    transcript = handshake._transcript_hash
    verify_data = plaintext[12:]
    if not hmac.compare_digest(
        verify_data, finished_verify_data(mac, CLIENT_FINISHED_LABEL, transcript.copy().digest())
    ):
        raise AlertDecryptError("Finished verify_data mismatch")
    transcript.update(plaintext)
    own = finished_verify_data(mac, SERVER_FINISHED_LABEL, transcript.digest())
    own_seq = handshake._send_seq
    handshake._send_seq = own_seq + 1
    handshake.flight_final = True
    suite = handshake.cipher_suite
    identity_object = handshake._peer_identity
    ems = handshake._ems
    session_id = handshake._session_id
    cache = handshake._session_cache
    if session_id and cache is not None:
        cache.put(
            dtls_session(
                session_id,
                suite,
                handshake._master_secret,
                ems,
                identity_object,
                handshake._key_log_ok,
            )
        )
    peer_cid = handshake._peer_connection_id
    completed = handshake_completed(
        suite,
        identity_object,
        ems,
        (handshake._connection_id or b"") if peer_cid is not None else None,
        peer_cid,
    )
    handshake.completed = completed
    handshake._set_state(_POST_HANDSHAKE)  # the completion is logged as on the general path
    # The final flight (_start_flight with final=True, _transmit_flight): one datagram with the
    # ChangeCipherSpec and the Finished record when the Finished fits whole beside it with the
    # worst-case record overhead; every other case is _transmit_flight's (it splits the flight,
    # or finds the sequence numbers exhausted), decided before anything is numbered.
    connection._flight = [
        _CHANGE_CIPHER_SPEC_MESSAGE,
        _new(OutgoingMessage, (_HANDSHAKE, 1, _FINISHED, own_seq, own)),
    ]
    connection._flight_trigger = message_seq
    connection._timeout = configuration.initial_retransmit_timeout
    connection._retransmissions = 0
    connection._timer = None
    write = connection._write_protection
    assert write is not None
    write_seq = connection._write_seq
    seq0, seq1 = write_seq
    overhead = _HANDSHAKE_RECORD_OVERHEAD + len(write.cid) + write.overhead
    if (
        seq0 > _MAX_SEQUENCE
        or seq1 > _MAX_SEQUENCE
        or configuration.max_datagram_size - _CHANGE_CIPHER_SPEC_RECORD.size - overhead
        < VERIFY_DATA_LENGTH
    ):
        connection._transmit_flight(now)
    else:
        connection._write_epoch = 1  # the server's first record under the new keys
        connection._flight_sent_at = now
        write_seq[0] = seq0 + 1
        write_seq[1] = seq1 + 1
        connection._datagrams.append(
            _CHANGE_CIPHER_SPEC_RECORD.pack(
                _CHANGE_CIPHER_SPEC, DTLS_1_2, 0, seq0 >> 32, seq0 & 0xFFFFFFFF, 1, 1
            )
            + write.encrypt(
                _HANDSHAKE,
                DTLS_1_2,
                1,
                seq1,
                _HANDSHAKE_HEADER.pack(_FINISHED_TYPE_AND_LENGTH, own_seq, 0, VERIFY_DATA_LENGTH)
                + own,
            )
        )
    connection._complete(handshake, completed, now)
    connection._deferred = []
