"""One DTLS 1.2 association, sans-IO (RFC 6347): datagrams, calls and ``now`` in; datagrams,
events and one timer deadline out.

Call order (aioquic's contract): after every ``connect``, ``receive_datagram``, ``send``,
``handle_timer`` or ``close``, drain ``datagrams_to_send(now)`` and ``next_event()`` and re-arm
one timer at ``get_timer()``.

What this module does on top of :mod:`.handshake` (messages) and :mod:`.record` (protection):

- record processing per epoch with the 64-record anti-replay window (RFC 6347 §4.1.2.6);
  records that fail to authenticate, replays, and malformed framing are dropped silently
  (§4.1.2.7); records of the next epoch that arrive before its keys are buffered (bounded, §4.1);
- handshake fragmentation to ``max_datagram_size`` and reassembly into bounded buffers
  (§4.2.3), in-order delivery by ``message_seq`` (§4.2.2);
- flight retransmission with a doubling timer (§4.2.4, §4.2.4.1) and retransmission of the
  last flight when the peer repeats its previous one, for ``final_flight_linger`` (2 * MSL,
  240 s) after the handshake unless the peer's application data shows it has the flight;
- a ClientHello is always sent whole, in one record and one datagram, even above
  ``max_datagram_size``: servers answer hellos statelessly and do not reassemble them (ours,
  OpenSSL's ``DTLSv1_listen``, Mbed TLS), and hellos are far below real path MTUs;
- alerts (RFC 5246 §7.2) and close_notify; renegotiation refused with ``no_renegotiation``
  (RFC 5246 §7.4.1.1, §7.2.2), a server refusing every ClientHello under epoch 1 (a
  renegotiation hello is numbered from 0 again, RFC 6347 §4.2.2); connection IDs (RFC 9146)
  for record framing.

Record fast paths for established connections (the CoAP adapter's per-request path):
``open_record(datagram)`` takes one application-data record of the current epoch straight from
the datagram (the same checks: framing, CID, epoch, version, replay window, authentication, size)
and returns its plaintext, or None with nothing changed, for ``receive_datagram`` to handle;
``seal(data)`` returns the protected record that ``send`` would have queued (the same size and
sequence-number limits). With AES-128-CCM_8 and no CID in a direction, both take the AEAD in one
function (``_set_fast_paths`` says when); other suites and CID records use the protection's own
methods.

Errors in peer input never escape ``receive_datagram``: they become a fatal alert and a
:class:`~.events.ConnectionClosed` event, or a silent drop.
"""

from __future__ import annotations

import logging
import os
import struct
from enum import Enum, auto

from cryptography.exceptions import InvalidTag

from lwm2m.errors import BufferReadError

from . import psk_lane
from .config import DtlsConfiguration
from .constants import (
    DTLS_1_2,
    AlertDescription,
    AlertLevel,
    ContentType,
    HandshakeType,
    member_view,
)
from .credentials import DtlsCredentials
from .errors import (
    Alert,
    AlertDecodeError,
    AlertDecryptError,
    AlertIllegalParameter,
    AlertInternalError,
    AlertRecordOverflow,
    AlertUnexpectedMessage,
    DtlsStateError,
)
from .events import (
    AlertReceived,
    ApplicationData,
    ConnectionClosed,
    DtlsEvent,
    HandshakeCompleted,
)
from .handshake import Handshake, HandshakeState, OutgoingMessage, SessionCache
from .messages import (
    HANDSHAKE_HEADER_LENGTH,
    HandshakeFragment,
    InitialHello,
    encode_handshake,
)
from .messages import (
    HANDSHAKE_RECORD_OVERHEAD as _HANDSHAKE_RECORD_OVERHEAD,
)
from .messages import (
    PLAIN_HANDSHAKE_RECORD as _PLAIN_HANDSHAKE_RECORD,
)
from .record import (
    CCM8_AAD,
    CCM8_EXPANSION,
    CCM8_HEADER,
    CCM8_NONCE,
    RECORD_HEADER_LENGTH,
    Ccm8Protection,
    NullProtection,
    RawRecord,
    RecordProtection,
    ReplayWindow,
    parse_datagram,
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
from .trust import PeerIdentity

__all__ = ["ConnectionState", "DtlsConnection"]

_CT = member_view(ContentType)
_HT = member_view(HandshakeType)
_AD = member_view(AlertDescription)
_AL = member_view(AlertLevel)

logger = logging.getLogger(__name__)

_NULL = NullProtection()
#: How far ahead of the next expected message_seq fragments are buffered (RFC 6347 §4.2.2).
_SEQ_WINDOW = 8
#: Sequence numbers of epoch 1 that can only be the peer's Finished (or its retransmissions).
_FIRST_RECORDS = 16
#: Records of the next epoch kept until its keys exist.
_MAX_DEFERRED = 8
_TYPE_LENGTH_SEQ = struct.Struct("!IH")
_HANDSHAKE = int(ContentType.HANDSHAKE)
_CHANGE_CIPHER_SPEC = int(ContentType.CHANGE_CIPHER_SPEC)
_APPLICATION_DATA = int(ContentType.APPLICATION_DATA)
_TLS12_CID = int(ContentType.TLS12_CID)
_CID_RECORD_HEADER = struct.Struct("!BHHHI")
# The CCM_8 record fast paths (no CID, epoch 1) read and write epoch||sequence_number as one 64-bit
# field: the record's sequence field, the explicit nonce (RFC 6655 §3) and the AAD's seq_num
# (RFC 5246 §6.2.3.3).
_CCM8_NUMBER_LENGTH = struct.Struct("!QH")  # epoch+seq, length: from offset 3 of the header
_CCM8_RECORD_START = bytes([_APPLICATION_DATA]) + struct.pack("!HH", DTLS_1_2, 1)
_CCM8_RECORD_MIN = RECORD_HEADER_LENGTH + CCM8_EXPANSION
_EPOCH_1 = 1 << 48
_WINDOW_SIZE = ReplayWindow.SIZE
#: The few distinct ``max_application_data`` values, shared by the connections (memory).
_SEAL_LIMITS: dict[int, int] = {}
_WINDOW_MASK = (1 << ReplayWindow.SIZE) - 1
_EXPECT_CLIENT_HELLO = HandshakeState.SERVER_EXPECT_CLIENT_HELLO
_EXPECT_KEY_EXCHANGE = HandshakeState.SERVER_EXPECT_CLIENT_KEY_EXCHANGE


def _plain_handshake_record(seq: int, msg_type: int, message_seq: int, body: bytes) -> bytes:
    """An epoch-0 DTLS 1.2 record holding one whole handshake message: record header,
    handshake header and body in one step."""
    length = len(body)
    return (
        _PLAIN_HANDSHAKE_RECORD.pack(
            _HANDSHAKE,
            DTLS_1_2,
            0,
            seq >> 32,
            seq & 0xFFFFFFFF,
            length + HANDSHAKE_HEADER_LENGTH,
            (msg_type << 24) | length,
            message_seq,
            0,
            length,
        )
        + body
    )


class ConnectionState(Enum):
    HANDSHAKING = auto()
    ESTABLISHED = auto()
    CLOSED = auto()


_CS = member_view(ConnectionState)


class _Partial:
    """A handshake message being reassembled (RFC 6347 §4.2.3)."""

    __slots__ = ("data", "epoch", "msg_type", "ranges")

    def __init__(self, msg_type: int, length: int, epoch: int) -> None:
        self.msg_type = msg_type
        self.epoch = epoch
        self.data = bytearray(length)
        self.ranges: list[tuple[int, int]] = []

    def add(self, offset: int, fragment: bytes) -> None:
        end = offset + len(fragment)
        self.data[offset:end] = fragment
        merged: list[tuple[int, int]] = []
        for start, stop in sorted([*self.ranges, (offset, end)]):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
            else:
                merged.append((start, stop))
        self.ranges = merged

    @property
    def complete(self) -> bool:
        return self.ranges == [(0, len(self.data))] or not self.data


class _Reassembler:
    """Handshake fragments buffered by message_seq until messages complete, within bounds.

    A connection makes one only when a message arrives fragmented or ahead of its turn, and
    drops it once empty: whole messages in order, nearly all of them, never touch one. The
    connection keeps the next expected message_seq itself.
    """

    __slots__ = ("_buffered", "_max_buffer", "_pending")

    def __init__(self, max_buffer: int) -> None:
        self._max_buffer = max_buffer
        self._pending: dict[int, _Partial] = {}
        self._buffered = 0

    def add(self, fragment: HandshakeFragment, epoch: int, next_seq: int) -> None:
        """Buffer ``fragment`` (its size checked against the limit by the caller)."""
        seq = fragment.message_seq
        if not next_seq <= seq < next_seq + _SEQ_WINDOW:
            return
        partial = self._pending.get(seq)
        if partial is None:
            if self._buffered + fragment.length > self._max_buffer:
                return
            partial = _Partial(fragment.msg_type, fragment.length, epoch)
            self._pending[seq] = partial
            self._buffered += fragment.length
        elif (
            partial.msg_type != fragment.msg_type
            or len(partial.data) != fragment.length
            or partial.epoch != epoch
        ):
            return  # inconsistent with earlier fragments: drop (could be forged)
        partial.add(fragment.fragment_offset, fragment.fragment)

    def is_empty(self) -> bool:
        return not self._pending

    def pop(self, seq: int) -> tuple[int, bytes, int] | None:
        """Message ``seq`` as ``(msg_type, body, epoch)`` once complete."""
        partial = self._pending.get(seq)
        if partial is None or not partial.complete:
            return None
        del self._pending[seq]
        self._buffered -= len(partial.data)
        return partial.msg_type, bytes(partial.data), partial.epoch


class DtlsConnection:
    """A DTLS 1.2 client or server connection (role from ``configuration.is_client``).

    :param configuration: settings and bounds.
    :param credentials: what this endpoint authenticates with (never raw long-term keys, see
        :mod:`.credentials`).
    :param session_cache: server: sessions shared for resumption (a server demultiplexer
        passes its own); a private cache is made when omitted.
    :param connection_id: overrides ``configuration.connection_id`` (the CID to receive).
    """

    __slots__ = (
        "_client_random",
        "_configuration",
        "_credentials",
        "_datagrams",
        "_deferred",
        "_epoch0_window",
        "_events",
        "_flight",
        "_flight_sent_at",
        "_flight_trigger",
        "_handshake",
        "_linger",
        "_offers",
        "_open_ccm8",
        "_open_limit",
        "_read_protection",
        "_read_window",
        "_reassembler",
        "_receive_seq",
        "_retransmissions",
        "_seal_ccm8",
        "_seal_limit",
        "_state",
        "_timeout",
        "_timer",
        "_write_epoch",
        "_write_protection",
        "_write_seq",
        "connection_id",
        "handshake_result",
    )

    def __init__(
        self,
        *,
        configuration: DtlsConfiguration,
        credentials: DtlsCredentials,
        session_cache: SessionCache | None = None,
        connection_id: bytes | None = None,
        _first_message_seq: int = 0,
        _first_record_seq: int = 0,
        _offers: dict[bytes, psk_lane.Offer | None] | None = None,
    ) -> None:
        self._configuration = configuration
        self._credentials = credentials
        cid = connection_id if connection_id is not None else configuration.connection_id
        self.connection_id: bytes | None = cid
        """The CID this endpoint receives records with (before negotiation: the one offered)."""
        if session_cache is None and not configuration.is_client:
            session_cache = SessionCache(configuration.session_cache_size)
        self._handshake: Handshake | None = Handshake(
            configuration=configuration,
            credentials=credentials,
            session_cache=session_cache,
            connection_id=cid,
            first_message_seq=_first_message_seq,
        )
        self._state = _CS.HANDSHAKING
        # The message_seq of the next handshake message to process (RFC 6347 §4.2.2), and the
        # fragments buffered for later ones (only while there are any).
        self._receive_seq = _first_message_seq
        self._reassembler: _Reassembler | None = None
        self._read_protection: RecordProtection | None = None
        self._read_window = ReplayWindow()
        self._epoch0_window: ReplayWindow | None = ReplayWindow()
        self._write_protection: RecordProtection | None = None
        self._write_epoch = 0
        self._write_seq = [_first_record_seq, 0]
        self._flight: list[OutgoingMessage] | None = None
        self._flight_trigger = -1
        self._flight_sent_at = 0.0
        self._timer: float | None = None
        self._linger: float | None = None
        self._timeout = configuration.initial_retransmit_timeout
        self._retransmissions = 0
        self._deferred: list[RawRecord] = []
        self._events: list[DtlsEvent] = []
        self._datagrams: list[bytes] = []
        self._seal_limit = 0  # max_application_data, fixed once established
        # The CCM_8 protections (without CID) the record fast paths use directly: set while
        # they may (see _set_fast_paths), None otherwise.
        self._open_ccm8: Ccm8Protection | None = None
        self._seal_ccm8: Ccm8Protection | None = None
        self._open_limit = 0
        self._client_random: bytes | None = None  # server: of the hello that made the session
        # Server: the demultiplexer's hellos read before (psk_lane), shared by its connections.
        self._offers = _offers
        self.handshake_result: HandshakeCompleted | None = None
        """The HandshakeCompleted event once the handshake finished."""

    # -- properties --------------------------------------------------------------------------

    @property
    def is_client(self) -> bool:
        return self._configuration.is_client

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def peer_identity(self) -> PeerIdentity | None:
        return self.handshake_result.peer_identity if self.handshake_result else None

    @property
    def peer_connection_id(self) -> bytes | None:
        return self.handshake_result.peer_connection_id if self.handshake_result else None

    @property
    def highest_authenticated_record(self) -> tuple[int, int]:
        """``(epoch, sequence_number)`` of the newest record that authenticated under
        negotiated keys, ``(0, -1)`` before any; a demultiplexer accepts a peer address change
        only when this grew (RFC 9146 §6). Epoch 1 is the only negotiated epoch (renegotiation
        is refused), so this is the top of its replay window."""
        highest = self._read_window.highest
        return (1, highest) if highest >= 0 else (0, -1)

    def _is_closed(self) -> bool:
        return self._state is _CS.CLOSED

    def _handshake_done(self) -> bool:
        return self._handshake is None

    def _peer_random(self) -> bytes | None:
        """Server demultiplexer: the random of the ClientHello being handled, or of the one
        that made the established association."""
        handshake = self._handshake
        return handshake.client_random if handshake is not None else self._client_random

    # -- sans-IO API -------------------------------------------------------------------------

    def connect(self, now: float) -> None:
        """Client: start the handshake (queues the first ClientHello).

        Raises :class:`DtlsStateError` for a server connection or a second call.
        """
        handshake = self._handshake
        if not self.is_client or handshake is None or self._flight is not None:
            raise DtlsStateError("connect() is for a client that has not started")
        try:
            handshake.start()
        except Alert as exc:
            raise DtlsStateError(str(exc)) from exc
        self._after_handshake_step(now, -1)

    def receive_datagram(self, data: bytes, now: float, _hello: InitialHello | None = None) -> None:
        """Process one datagram from the peer.

        Never raises for peer input: invalid records are dropped, protocol violations end the
        connection with a fatal alert and a :class:`ConnectionClosed` event. (``_hello`` is
        :class:`~.server.DtlsServer`'s read of the ClientHello the datagram starts with.)
        """
        if self._state is _CS.CLOSED:
            return
        try:
            # The two flights a server gets in nearly every handshake, in one pass (each falls
            # back to the general path below for any other shape).
            handshake = self._handshake
            if handshake is not None:
                state = handshake._state
                if state is _EXPECT_CLIENT_HELLO and self._receive_client_hello(data, now, _hello):
                    return
                if state is _EXPECT_KEY_EXCHANGE and self._receive_key_exchange_flight(data, now):
                    return
            cid = self.connection_id
            for record in parse_datagram(data, len(cid) if cid else 0):
                self._receive_record(record, now)
                if self._is_closed():
                    break
        except Alert as exc:
            self._fail(exc)
        except BufferReadError as exc:
            self._fail(AlertDecodeError(str(exc)))
        except Exception as exc:  # a credential backend or a bug: never take the caller down
            logger.exception("internal error in DTLS connection")
            self._fail(AlertInternalError(type(exc).__name__))

    def send(self, data: bytes) -> None:
        """Queue ``data`` as one application-data record (one datagram).

        Raises :class:`DtlsStateError` before the handshake completed, after close, or when
        ``data`` does not fit one record of ``max_datagram_size``.
        """
        if self._state is not _CS.ESTABLISHED:
            raise DtlsStateError("application data can be sent only on an established connection")
        if len(data) > self.max_application_data:
            raise DtlsStateError(
                f"{len(data)} bytes exceed the {self.max_application_data}-byte record limit"
            )
        self._datagrams.append(self._protect(_CT.APPLICATION_DATA, data, 1))

    # -- record fast paths (established connections) -----------------------------------------

    def open_record(self, data: bytes) -> bytes | None:
        """The plaintext of ``data`` when it is exactly one application-data record of the
        current epoch that authenticates and is fresh; else None, and nothing changed: pass the
        datagram to :meth:`receive_datagram` then.

        The fast path of an established connection: one header unpack, the CID check, the
        replay window (checked before, updated after authentication, RFC 6347 §4.1.2.6), the
        decryption, and no record list, event or datagram. When it returns the plaintext, the
        connection is in the state :meth:`receive_datagram` would have left it in, with one
        :class:`ApplicationData` event of that plaintext (which is not queued). Everything else
        goes the general way: other content types (also inside a CID record), several records,
        trailing bytes, other epochs or versions, replays, records that do not authenticate (the
        general path drops them, after a second decryption attempt), oversize plaintext, a
        connection still handshaking, closed or keeping its last flight (``linger``).
        """
        protection = self._open_ccm8
        if protection is None:
            return self._open_record(data)
        # AES-128-CCM_8 without CID, written out (the most common suite of LwM2M): the checks
        # of _open_record and Ccm8Protection.open_application_data in one pass, in the same
        # order. The fragment-length bound and the plaintext bound come first: a record over
        # either goes the general way (which decrypts it and drops it or ends the connection).
        end = len(data)
        # content type, version and epoch in one comparison: application_data, DTLS 1.2, 1
        if end < _CCM8_RECORD_MIN or data[:5] != _CCM8_RECORD_START:
            return None
        number, length = _CCM8_NUMBER_LENGTH.unpack_from(data, 3)
        if length + RECORD_HEADER_LENGTH != end or length > self._open_limit:
            return None
        seq = number - _EPOCH_1
        window = self._read_window
        highest = window.highest
        if seq <= highest:  # ReplayWindow.is_fresh, written out
            offset = highest - seq
            if offset >= _WINDOW_SIZE or (window.bitmap >> offset) & 1:
                return None
        try:
            plaintext: bytes = protection._aead.decrypt(
                protection._iv + data[13:21],
                data[21:],
                CCM8_AAD.pack(number, _APPLICATION_DATA, DTLS_1_2, length - CCM8_EXPANSION),
            )
        except InvalidTag:
            return None
        if seq > highest:  # ReplayWindow.mark, written out
            shift = seq - highest
            window.bitmap = (
                1 if shift >= _WINDOW_SIZE else ((window.bitmap << shift) | 1) & _WINDOW_MASK
            )
            window.highest = seq
        else:
            window.bitmap |= 1 << (highest - seq)
        return plaintext

    def _open_record(self, data: bytes) -> bytes | None:
        """:meth:`open_record` for the other suites and for CID records."""
        if self._state is not _CS.ESTABLISHED or self._linger is not None:
            return None
        protection = self._read_protection
        if protection is None:  # pragma: no cover - established connections have keys
            return None
        cid = protection.cid
        end = len(data)
        if cid:
            # RFC 9146 §4: tls12_cid(1) version(2) epoch(2) sequence_number(6) cid length(2)
            start = RECORD_HEADER_LENGTH + len(cid)
            if end < start or data[0] != _TLS12_CID or data[11 : start - 2] != cid:
                return None
            _, version, epoch, seq_hi, seq_lo = _CID_RECORD_HEADER.unpack_from(data)
            length = (data[start - 2] << 8) | data[start - 1]
        else:
            if end < RECORD_HEADER_LENGTH or data[0] != _APPLICATION_DATA:
                return None
            _, version, epoch, seq_hi, seq_lo, length = _RECORD_HEADER.unpack_from(data)
            start = RECORD_HEADER_LENGTH
        if epoch != 1 or version != DTLS_1_2 or start + length != end or length > _MAX_FRAGMENT:
            return None
        seq = (seq_hi << 32) | seq_lo
        window = self._read_window
        if not window.is_fresh(seq):
            return None
        plaintext = protection.open_application_data(data, 1, seq)
        if plaintext is None or len(plaintext) > self._configuration.max_record_plaintext:
            return None
        window.mark(seq)  # authenticated
        return plaintext

    def seal(self, data: bytes) -> bytes:
        """``data`` as one protected application-data record (one datagram), returned instead
        of queued: what :meth:`send` then :meth:`datagrams_to_send` give, without the per-call
        size computation and list. A caller that drains ``datagrams_to_send`` after every call
        (the call-order contract) keeps the order of what it transmits.

        Raises :class:`DtlsStateError` like :meth:`send`: before the handshake completed, after
        close, when ``data`` exceeds :attr:`max_application_data`, when the sequence numbers
        of the epoch are exhausted (2**48 records, RFC 6347 §4.1).
        """
        protection = self._seal_ccm8
        if protection is None:
            return self._seal(data)
        # AES-128-CCM_8 without CID: Ccm8Protection.seal_application_data written out.
        length = len(data)
        if length > self._seal_limit:
            raise DtlsStateError(f"{length} bytes exceed the {self._seal_limit}-byte record limit")
        write_seq = self._write_seq
        seq = write_seq[1]
        if seq > _MAX_SEQUENCE:
            raise DtlsStateError("sequence numbers exhausted")
        write_seq[1] = seq + 1
        number = _EPOCH_1 | seq
        return CCM8_HEADER.pack(
            _APPLICATION_DATA, DTLS_1_2, number, length + CCM8_EXPANSION, number
        ) + protection._aead.encrypt(
            CCM8_NONCE.pack(protection._iv, number),
            data,
            CCM8_AAD.pack(number, _APPLICATION_DATA, DTLS_1_2, length),
        )

    def _seal(self, data: bytes) -> bytes:
        """:meth:`seal` for the other suites and for CID records."""
        if self._state is not _CS.ESTABLISHED:
            raise DtlsStateError("application data can be sent only on an established connection")
        if len(data) > self._seal_limit:
            raise DtlsStateError(
                f"{len(data)} bytes exceed the {self._seal_limit}-byte record limit"
            )
        write_seq = self._write_seq
        seq = write_seq[1]
        if seq > _MAX_SEQUENCE:
            raise DtlsStateError("sequence numbers exhausted")
        write_seq[1] = seq + 1
        protection = self._write_protection
        assert protection is not None
        return protection.seal_application_data(1, seq, data)

    @property
    def max_application_data(self) -> int:
        """Largest payload ``send`` accepts (one record in one datagram)."""
        protection = self._write_protection or _NULL
        overhead = RECORD_HEADER_LENGTH + len(protection.cid) + protection.overhead
        return min(self._configuration.max_datagram_size - overhead, 2**14)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """The datagrams to transmit now, in order."""
        datagrams, self._datagrams = self._datagrams, []
        return datagrams

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called, or None."""
        timer, linger = self._timer, self._linger
        if timer is None:
            return linger
        if linger is None:
            return timer
        return min(timer, linger)

    def handle_timer(self, now: float) -> None:
        """Retransmit the current flight or give up (RFC 6347 §4.2.4.1); expire lingering state."""
        if self._linger is not None and now >= self._linger:
            self._linger = None
            self._release_handshake_state()
            self._set_fast_paths()
        if self._timer is None or now < self._timer:
            return
        config = self._configuration
        if self._retransmissions >= config.max_retransmissions:
            self._close(None, by_peer=False, reason="handshake timeout")
            return
        self._retransmissions += 1
        self._timeout = min(self._timeout * 2, config.max_retransmit_timeout)
        self._timer = now + self._timeout
        try:
            self._transmit_flight(now)
        except DtlsStateError as exc:  # sequence numbers exhausted: no record can be sent
            self._close(None, by_peer=False, reason=str(exc))

    def next_event(self) -> DtlsEvent | None:
        """The next event, or None."""
        return self._events.pop(0) if self._events else None

    def close(self, reason: str = "closed locally") -> None:
        """Send close_notify (RFC 5246 §7.2.1) and end the connection; ``reason`` goes into the
        :class:`ConnectionClosed` event."""
        if self._state is _CS.CLOSED:
            return
        self._send_alert(_AL.WARNING, _AD.CLOSE_NOTIFY)
        self._close(_AD.CLOSE_NOTIFY, by_peer=False, reason=reason)

    def __repr__(self) -> str:
        role = "client" if self.is_client else "server"
        return f"<DtlsConnection {role} {self._state.name}>"

    # -- records -----------------------------------------------------------------------------

    def _protect(self, content_type: int, payload: bytes, epoch: int) -> bytes:
        seq = self._write_seq[epoch]
        if seq > _MAX_SEQUENCE:
            raise DtlsStateError("sequence numbers exhausted")
        self._write_seq[epoch] = seq + 1
        protection = self._write_protection if epoch else _NULL
        assert protection is not None
        return protection.encrypt(content_type, DTLS_1_2, epoch, seq, payload)

    def _receive_record(self, record: RawRecord, now: float) -> None:
        epoch = record.epoch
        if epoch == 0:
            # RFC 6347 §4.1: the record version of an initial ClientHello may be any DTLS one.
            window = self._epoch0_window
            if window is None or record.version >> 8 != 0xFE:
                return
            protection: RecordProtection = _NULL
        elif epoch == 1 and record.version == DTLS_1_2:
            if self._read_protection is None:
                if len(self._deferred) < _MAX_DEFERRED and self._handshake is not None:
                    self._deferred.append(record)
                return
            window = self._read_window
            protection = self._read_protection
        else:
            return
        seq = record.sequence_number
        if not window.is_fresh(seq):
            return
        result = protection.decrypt(record)
        if result is None:
            if epoch and self._handshake is not None and seq < _FIRST_RECORDS:
                # The first records under the new keys (the peer's Finished and its
                # retransmissions) do not authenticate: the peer derived other keys (wrong PSK).
                # Fail now rather than time out; RFC 4279 §2 reports a wrong key as
                # decrypt_error. Later sequence numbers are more likely stray records of an
                # older association on the same addresses and are just dropped.
                raise AlertDecryptError("records of the new epoch do not authenticate")
            return  # bad MAC: silently discarded (RFC 6347 §4.1.2.7)
        window.mark(seq)
        content_type, payload = result
        if len(payload) > self._configuration.max_record_plaintext:
            raise AlertRecordOverflow("record plaintext exceeds the limit")
        match content_type:
            case _CT.HANDSHAKE:
                self._receive_handshake(payload, epoch, now)
            case _CT.CHANGE_CIPHER_SPEC:
                # Epochs are explicit in DTLS records, so CCS only has to be well-formed.
                if payload != b"\x01":
                    raise AlertDecodeError("malformed ChangeCipherSpec")
            case _CT.ALERT:
                self._receive_alert(payload, epoch)
            case _CT.APPLICATION_DATA if epoch:
                if self._state is _CS.ESTABLISHED:
                    if self._linger is not None:
                        # The peer sends data: it has our last flight (RFC 6347 §4.2.4).
                        self._linger = None
                        self._release_handshake_state()
                        self._set_fast_paths()
                    self._events.append(ApplicationData(payload))
            case _:
                if epoch:
                    raise AlertUnexpectedMessage(f"unexpected content type {content_type}")

    # The two client flights of a plain PSK handshake, each in one pass (see .psk_lane); they
    # return False, nothing changed, for a datagram the general path has to parse.
    _receive_client_hello = psk_lane.receive_client_hello
    _receive_key_exchange_flight = psk_lane.receive_key_exchange_flight

    def _receive_alert(self, payload: bytes, epoch: int) -> None:
        if len(payload) != 2:
            raise AlertDecodeError("malformed alert")
        if epoch == 0 and self._state is _CS.ESTABLISHED:
            return  # unauthenticated: cannot end an established association
        level, description = payload[0], payload[1]
        self._events.append(AlertReceived(level, description))
        if description == _AD.CLOSE_NOTIFY:
            self._send_alert(_AL.WARNING, _AD.CLOSE_NOTIFY)
            self._close(description, by_peer=True, reason="close_notify received")
        elif level != _AL.WARNING:
            self._close(description, by_peer=True, reason="fatal alert received")

    def _receive_handshake(self, payload: bytes, epoch: int, now: float) -> None:
        pos = 0
        end = len(payload)
        while pos < end:
            # RFC 6347 §4.2.2: msg_type(1) length(3) message_seq(2) fragment_offset(3)
            # fragment_length(3) fragment
            start = pos + HANDSHAKE_HEADER_LENGTH
            if start > end:
                raise BufferReadError("handshake header truncated")
            type_and_length, message_seq = _TYPE_LENGTH_SEQ.unpack_from(payload, pos)
            offset_and_length = int.from_bytes(payload[pos + 6 : start], "big")
            msg_type = type_and_length >> 24
            length = type_and_length & 0xFFFFFF
            offset = offset_and_length >> 24
            pos = start + (offset_and_length & 0xFFFFFF)
            if pos > end:
                raise BufferReadError("handshake fragment truncated")
            body = payload[start:pos]
            if offset + len(body) > length:
                raise AlertDecodeError("handshake fragment beyond message length")
            if (
                self._state is _CS.ESTABLISHED
                and epoch
                and self._post_handshake_fragment(
                    HandshakeFragment(msg_type, length, message_seq, offset, body)
                )
            ):
                continue
            if message_seq < self._receive_seq:
                # The peer repeats its last flight: ours got lost (RFC 6347 §4.2.4).
                # Copies arriving right after we sent the flight crossed it on the wire: no
                # second copy then, or duplicates would multiply (RFC 6347 §4.2.4 leaves the
                # policy open).
                if (
                    message_seq == self._flight_trigger
                    and offset == 0
                    and self._flight is not None
                    and now - self._flight_sent_at
                    >= self._configuration.initial_retransmit_timeout / 2
                ):
                    self._transmit_flight(now)
                continue
            if self._handshake is None:
                continue
            if length > self._configuration.max_handshake_message_size:
                # RFC 6347 §4.2.3 lets receivers bound buffering; OpenSSL uses illegal_parameter.
                raise AlertIllegalParameter("handshake message exceeds the configured size limit")
            reassembler = self._reassembler
            if (
                message_seq == self._receive_seq
                and offset == 0
                and len(body) == length
                and reassembler is None
            ):
                # The common case, a whole message that is the next one: no reassembly buffer.
                self._receive_seq = message_seq + 1
                self._handle_message(msg_type, message_seq, body, epoch, now)
                continue
            if reassembler is None:
                reassembler = _Reassembler(self._configuration.max_handshake_buffer)
                self._reassembler = reassembler
            reassembler.add(
                HandshakeFragment(msg_type, length, message_seq, offset, body),
                epoch,
                self._receive_seq,
            )
            while (message := reassembler.pop(self._receive_seq)) is not None:
                msg_type, body, msg_epoch = message
                seq = self._receive_seq
                self._receive_seq = seq + 1
                self._handle_message(msg_type, seq, body, msg_epoch, now)
                if self._handshake_done():
                    break
            if self._reassembler is reassembler and reassembler.is_empty():
                self._reassembler = None

    def _post_handshake_fragment(self, fragment: HandshakeFragment) -> bool:
        """Renegotiation is refused (RFC 5746 is implemented for the initial handshake only).

        A server refuses every ClientHello under epoch 1, whatever its message_seq: the
        initial hello is always an epoch-0 message, so none is a retransmission, and a
        renegotiation hello starts a new handshake numbered from 0 (RFC 6347 §4.2.2), below
        ``next_seq``.
        """
        refuse = (fragment.msg_type == _HT.HELLO_REQUEST and self.is_client) or (
            fragment.msg_type == _HT.CLIENT_HELLO and not self.is_client
        )
        if refuse:
            if fragment.message_seq >= self._receive_seq:
                self._receive_seq = fragment.message_seq + 1
            if fragment.fragment_offset == 0:
                self._send_alert(_AL.WARNING, _AD.NO_RENEGOTIATION)
            return True
        if fragment.message_seq >= self._receive_seq:
            raise AlertUnexpectedMessage("handshake message after the handshake")
        return False

    def _handle_message(self, msg_type: int, seq: int, body: bytes, epoch: int, now: float) -> None:
        handshake = self._handshake
        assert handshake is not None
        if msg_type == _HT.HELLO_VERIFY_REQUEST and self._epoch0_window is not None:
            self._epoch0_window = ReplayWindow()  # the stateless server may restart numbering
        handshake.handle_message(msg_type, seq, body, epoch)
        self._after_handshake_step(now, seq)

    def _after_handshake_step(self, now: float, trigger: int) -> None:
        handshake = self._handshake
        assert handshake is not None
        install = handshake.read_protection is not None and self._read_protection is None
        if install:
            self._read_protection = handshake.read_protection
            self._write_protection = handshake.write_protection
        flight = handshake.take_flight()
        if flight:
            self._start_flight(flight, trigger, now, handshake.flight_final)
            self._transmit_flight(now)
        completed = handshake.completed
        if completed is not None:
            self._complete(handshake, completed, now)
        if install and self._deferred:
            deferred, self._deferred = self._deferred, []
            for record in deferred:
                if self._state is _CS.CLOSED:
                    break
                self._receive_record(record, now)
        if completed is not None:
            self._deferred = []

    def _start_flight(
        self, flight: list[OutgoingMessage], trigger: int, now: float, final: bool
    ) -> None:
        """A new flight: the peer's previous one arrived completely (RFC 6347 §4.2.4)."""
        self._flight = flight
        self._flight_trigger = trigger
        self._timeout = timeout = self._configuration.initial_retransmit_timeout
        self._retransmissions = 0
        self._timer = None if final else now + timeout

    def _complete(self, handshake: Handshake, completed: HandshakeCompleted, now: float) -> None:
        configuration = self._configuration
        self._state = _CS.ESTABLISHED
        limit = self.max_application_data  # fixed from now on
        self._seal_limit = _SEAL_LIMITS.setdefault(limit, limit)  # one int object per value
        self.handshake_result = completed
        self._events.append(completed)
        self._timer = None
        self._handshake = None
        self._reassembler = None
        if not configuration.is_client:
            self._client_random = handshake.client_random
        if handshake.flight_final:
            # RFC 6347 §4.2.4: answer the peer's repeated last flight for 2 * MSL.
            self._linger = now + configuration.final_flight_linger
        else:
            self._release_handshake_state()
        self._set_fast_paths()

    def _set_fast_paths(self) -> None:
        """Let :meth:`seal` and :meth:`open_record` use AES-128-CCM_8 directly where the
        connection is established with that suite and no CID in that direction; ``open_record``
        only once no last flight is kept (``linger``: a record then goes the general way, which
        ends the linger)."""
        seal = self._write_protection
        self._seal_ccm8 = seal if type(seal) is Ccm8Protection and not seal.cid else None
        opener = self._read_protection
        if type(opener) is Ccm8Protection and not opener.cid and self._linger is None:
            self._open_ccm8 = opener
            limit = self._configuration.max_record_plaintext + CCM8_EXPANSION
            self._open_limit = min(limit, _MAX_FRAGMENT)
        else:
            self._open_ccm8 = None

    def _release_handshake_state(self) -> None:
        """After the handshake and its linger period, keep only what records need."""
        self._flight = None
        self._epoch0_window = None
        self._reassembler = None

    # -- sending -----------------------------------------------------------------------------

    def _transmit_flight(self, now: float) -> None:
        """Fragment and pack the current flight into datagrams (RFC 6347 §4.1.1, §4.2.3)."""
        assert self._flight is not None
        self._flight_sent_at = now
        max_size = self._configuration.max_datagram_size
        current = b""
        write_seq = self._write_seq
        for content_type, epoch, msg_type, message_seq, body in self._flight:
            if content_type == _CHANGE_CIPHER_SPEC:
                record = self._protect(_CHANGE_CIPHER_SPEC, body, epoch)
                if current and len(current) + len(record) > max_size:
                    self._datagrams.append(current)
                    current = b""
                current += record
                continue
            if epoch:
                protection = self._write_protection
                assert protection is not None
                overhead = _HANDSHAKE_RECORD_OVERHEAD + len(protection.cid) + protection.overhead
                if epoch > self._write_epoch:
                    self._write_epoch = epoch
            else:
                protection = _NULL
                overhead = _HANDSHAKE_RECORD_OVERHEAD
            length = len(body)
            if length <= max_size - len(current) - overhead or (
                msg_type == _HT.CLIENT_HELLO and not current
            ):
                # The whole message fits the datagram being filled: one unfragmented record. A
                # ClientHello, alone in its flight, is sent whole even when it does not fit
                # (see the module docstring).
                if epoch:
                    fragment = encode_handshake(msg_type, message_seq, body)
                    current += self._protect(_HANDSHAKE, fragment, epoch)
                    continue
                # Epoch 0 (no protection): header, handshake header and body in one step.
                seq = write_seq[0]
                if seq > _MAX_SEQUENCE:
                    raise DtlsStateError("sequence numbers exhausted")
                write_seq[0] = seq + 1
                current += _plain_handshake_record(seq, msg_type, message_seq, body)
                continue
            overhead = RECORD_HEADER_LENGTH + len(protection.cid) + protection.overhead
            offset = 0
            while True:
                space = max_size - len(current) - overhead - HANDSHAKE_HEADER_LENGTH
                if current and space < min(len(body) - offset, 64):
                    self._datagrams.append(current)
                    current = b""
                    space = max_size - overhead - HANDSHAKE_HEADER_LENGTH
                chunk = max(min(space, len(body) - offset), 0)
                if chunk == 0 and offset < len(body):
                    chunk = min(64, len(body) - offset)  # absurdly small MTU: still progress
                fragment = encode_handshake(msg_type, message_seq, body, offset, chunk)
                current += self._protect(_HANDSHAKE, fragment, epoch)
                offset += chunk
                if offset >= len(body):
                    break
        if current:
            self._datagrams.append(current)

    def _send_alert(self, level: int, description: int) -> None:
        epoch = self._write_epoch if self._write_protection is not None else 0
        try:
            self._datagrams.append(self._protect(_CT.ALERT, bytes([level, description]), epoch))
        except DtlsStateError:
            pass

    def _fail(self, exc: Alert) -> None:
        logger.debug("DTLS fatal alert %s: %s", exc.description.name, exc)
        self._send_alert(_AL.FATAL, exc.description)
        self._close(exc.description, by_peer=False, reason=str(exc))

    def _close(self, alert: int | None, *, by_peer: bool, reason: str) -> None:
        self._state = _CS.CLOSED
        self._open_ccm8 = self._seal_ccm8 = None
        self._events.append(ConnectionClosed(alert, by_peer, reason))
        self._handshake = None
        self._timer = None
        self._linger = None
        self._deferred = []
        self._release_handshake_state()


def random_connection_id(length: int) -> bytes:
    """A fresh random CID (RFC 9146 §3 leaves the choice to the receiver)."""
    return os.urandom(length)
