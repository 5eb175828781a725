"""The sans-IO CoAP endpoint engine: one state machine for every peer of one UDP endpoint.

Implements, over datagrams in and datagrams out:

* messaging and reliability — RFC 7252 §4: Confirmable retransmission with ACK_TIMEOUT,
  ACK_RANDOM_FACTOR, MAX_RETRANSMIT and exponential back-off (§4.2, §4.8), ACK/RST matching by
  Message ID, rejection of messages that cannot be processed (§4.2, §4.3), duplicate detection
  (§4.5, see :mod:`lwm2m.coap.dedup`), NSTART outstanding interactions per peer (§4.7);
* request/response — RFC 7252 §5.2 (piggybacked, separate and empty ACK), matching by token and
  endpoint (§5.3.2; with ``token_length`` 0 the empty token is used with a peer only while no
  other request to it holds it, §5.3.1), option rules (§5.4.1: 4.02 for unrecognized critical
  options in CON requests, rejection in responses), and No-Response (RFC 7967 §2);
* Observe — RFC 7641 both roles: registration (§3.1, §4.1), sequence numbers (§4.4), CON at
  least every 24 h (§4.5), merging of pending state while a CON notification is in flight
  (§4.5.2: the newest state replaces older pending state and is what retransmissions carry),
  cancellation by RST or GET with Observe=1 (§3.6; Observe values with leading zero bytes are
  accepted, RFC 7252 §3.2), reordering detection (§3.4), re-registration (§3.3.1: the same
  request again, a block-wise one from block 0; its response frees the NSTART slot);
* block-wise — RFC 7959 both roles: Block2 (§2.4, including notifications, §2.6), Block1
  (§2.5) with 2.31 Continue, 4.08 and 4.13 + Size1 (§2.9), Size1/Size2 (§4), early negotiation of
  smaller blocks (§2.4/§2.5), bounded reassembly, Request-Tag awareness (RFC 9175 §3.3); FETCH,
  PATCH and iPATCH (RFC 8132) are ordinary methods.

The engine never reads a clock or touches a socket. Inputs: :meth:`CoapEngine.receive_datagram`,
API calls (:meth:`~CoapEngine.send_request`, :meth:`~CoapEngine.send_response`,
:meth:`~CoapEngine.notify`, ...) and :meth:`~CoapEngine.handle_timer`, each with ``now``. Outputs:
:meth:`~CoapEngine.datagrams_to_send`, :meth:`~CoapEngine.next_event` and
:meth:`~CoapEngine.get_timer`. After any input, drain both outputs and re-arm the timer; a
driver with a timer armed may ask :meth:`~CoapEngine.deadline_added_before` first and skip
:meth:`~CoapEngine.get_timer` when no earlier deadline appeared (the usual case per datagram).

Peers are identified by whatever hashable address the caller passes (``(host, port)`` for UDP,
a session key for DTLS). Randomness (Message IDs, tokens, retransmission jitter) comes from an
injectable :class:`random.Random`.
"""

from __future__ import annotations

import heapq
import itertools
import random
import struct
import zlib
from collections import deque
from typing import Any, Final, Protocol

from lwm2m.coap.config import CoapConfig
from lwm2m.coap.dedup import DuplicateCache
from lwm2m.coap.errors import (
    BlockwiseError,
    BodyTooLarge,
    CoapError,
    CoapUsageError,
    MessageFormatError,
    RequestCancelled,
    RequestRejected,
    RequestTimeout,
)
from lwm2m.coap.events import (
    CoapEvent,
    ObservationEnded,
    ObserverRemoved,
    RequestFailed,
    notification_received,
    request_received,
    response_received,
)
from lwm2m.coap.message import Block, Message, check_options, decode, encode_uint
from lwm2m.coap.numbers import OPTION_FORMATS, Code
from lwm2m.coap.observe import is_fresh, next_sequence

__all__ = ["CoapEngine", "EngineStats", "Exchange", "Observation", "Waiter"]

_FORMATS_GET: Final = OPTION_FORMATS.get
_CON: Final = 0
_NON: Final = 1
_ACK: Final = 2
_RST: Final = 3
_HEADER: Final = struct.Struct("!BBH")
_EMPTY_ACK_BYTE: Final = 0x60  # version 1, type ACK, TKL 0
_RST_BYTE: Final = 0x70
_UINT_CACHE_1: Final = tuple(bytes((v,)) for v in range(256))
_OBSERVE: Final = 6
_BLOCK1: Final = 27
_BLOCK2: Final = 23
_SIZE1: Final = 60
_SIZE2: Final = 28
_ETAG: Final = 4
_NO_RESPONSE: Final = 258
_REQUEST_TAG: Final = 292
_CONTINUE: Final = int(Code.CONTINUE)
_FETCH: Final = int(Code.FETCH)
_GET: Final = int(Code.GET)
_INF: Final = float("inf")
_FALLBACK_TOKEN_LENGTH: Final = 4  # token_length 0 and the empty token in use with the peer
_REQUEST_ACTED: Final = frozenset({_OBSERVE, _BLOCK2, _BLOCK1})  # what send_request looks at

# request states (client role)
_QUEUED: Final = 0  # waiting for an NSTART slot
_SENT: Final = 1  # transmitted, waiting for ACK or response
_WAITING: Final = 2  # ACKed (or NON), waiting for a separate response
_OBSERVING: Final = 3  # observation established, notifications arrive
_CANCELLING: Final = 4  # proactive deregistration in progress
_DONE: Final = 5


def _no_response_suppresses(mask: int, code: int) -> bool:
    """RFC 7967 §2.1: bit 2 suppresses 2.xx, bit 8 4.xx, bit 16 5.xx."""
    cls = code >> 5
    return bool((cls == 2 and mask & 2) or (cls == 4 and mask & 8) or (cls == 5 and mask & 16))


def _acted_on(
    options: list[tuple[int, bytes]],
) -> tuple[bytes | None, bytes | None, bytes | None, bytes | None]:
    """The raw Observe, Block1, Block2 and No-Response values of a request's (checked)
    options; the last occurrence wins, as in the inline pass of ``_on_request``."""
    observe = block1_raw = block2_raw = no_response = None
    for number, value in options:
        if number == _OBSERVE:
            observe = value
        elif number == _BLOCK2:
            block2_raw = value
        elif number == _BLOCK1:
            block1_raw = value
        elif number == _NO_RESPONSE:
            no_response = value
    return observe, block1_raw, block2_raw, no_response


class EngineStats:
    """Counters for monitoring (plain ints)."""

    __slots__ = (
        "bad_options",
        "block_errors",
        "datagrams_received",
        "datagrams_sent",
        "duplicates",
        "malformed",
        "notifications_merged",
        "notifications_sent",
        "pings",
        "reassembly_timeouts",
        "rejected",
        "resets_sent",
        "retransmissions",
        "stale_notifications",
        "timeouts",
        "unmatched",
    )

    bad_options: int
    """unrecognized/invalid critical options (4.02 or rejection)"""
    block_errors: int
    """block-wise failures (4.08, 4.13, 5.03, inconsistent blocks)"""
    datagrams_received: int
    """datagrams passed to receive_datagram"""
    datagrams_sent: int
    """datagrams handed out by datagrams_to_send"""
    duplicates: int
    """duplicate CON/NON messages answered from the cache"""
    malformed: int
    """message format errors (dropped or RST)"""
    notifications_merged: int
    """pending notification states replaced by newer ones"""
    notifications_sent: int
    """notifications built (not counting retransmissions)"""
    pings: int
    """CoAP pings answered with RST"""
    reassembly_timeouts: int
    """Block1 reassemblies dropped for inactivity"""
    rejected: int
    """messages with a reserved code class"""
    resets_sent: int
    """RST messages sent"""
    retransmissions: int
    """CON retransmissions"""
    stale_notifications: int
    """reordered notifications dropped (RFC 7641 section 3.4)"""
    timeouts: int
    """transmissions given up / requests timed out"""
    unmatched: int
    """ACK/RST/responses matching nothing"""

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class _Peer:
    __slots__ = (
        "addr",
        "empty_token",
        "id",
        "last_seen",
        "next_mid",
        "observations",
        "outstanding",
        "queue",
        "refs",
    )

    def __init__(self, addr: Any, peer_id: int, mid: int, now: float) -> None:
        self.addr = addr
        self.id = peer_id
        self.next_mid = mid
        self.outstanding = 0
        self.queue: deque[_Reliable] | None = None
        self.last_seen = now
        self.refs = 0
        self.observations: dict[bytes, Observation] | None = None
        #: the request using the empty token with this peer (token_length 0), if any: the
        #: empty token is matched per peer (RFC 7252 §5.3.2), the others through ``_by_token``
        self.empty_token: _ClientRequest | None = None


class Waiter(Protocol):
    """Where :meth:`CoapEngine.send_request` may deliver a request's outcome directly (an
    :class:`asyncio.Future` fits): ``set_result(response)`` or ``set_exception(error)`` instead of
    a :class:`ResponseReceived` or :class:`RequestFailed` event. A waiter that is already done
    (e.g. a cancelled future) is left alone."""

    def done(self) -> bool: ...

    def set_result(self, result: Message, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


class _Reliable:
    """Something that may be sent as a Confirmable message and hold an NSTART slot."""

    __slots__ = ("counted", "datagram", "deadline", "mid", "peer", "retries", "timeout")

    def __init__(self, peer: _Peer) -> None:
        self.peer = peer
        self.mid = -1
        self.datagram = b""
        self.retries = 0
        self.timeout = 0.0
        self.deadline: float | None = None
        self.counted = False


class _ClientRequest(_Reliable):
    __slots__ = (
        "b1_body",
        "b1_next",
        "b1_sent_end",
        "b1_szx",
        "b2_body",
        "b2_etag",
        "b2_template",
        "confirmable",
        "delivered",
        "established",
        "id",
        "in_flight",
        "obs_seq",
        "obs_time",
        "observing",
        "parent",
        "raw_block2",
        "remote",
        "state",
        "template",
        "token",
        "unordered",
        "waiter",
    )

    def __init__(
        self,
        request_id: int,
        peer: _Peer,
        template: Message,
        token: bytes,
        waiter: Waiter | None = None,
    ) -> None:
        # _Reliable.__init__, inlined (one per request)
        self.peer = peer
        self.mid = -1
        self.datagram = b""
        self.retries = 0
        self.timeout = 0.0
        self.deadline: float | None = None
        self.counted = False
        self.id = request_id
        self.remote = peer.addr
        self.template = template
        self.token = token
        self.confirmable = template.mtype != _NON
        self.state = _QUEUED
        self.in_flight = False  # a CON of ours awaits its ACK
        self.observing = False
        self.established = False
        self.delivered = False
        self.obs_seq = 0
        self.obs_time = 0.0
        self.unordered = False
        self.b1_body: bytes | None = None
        self.b1_szx = 6
        self.b1_next = 0
        self.b1_sent_end = 0
        self.b2_body: bytearray | None = None
        self.b2_etag: bytes | None = None
        self.b2_template: Message | None = None
        self.raw_block2 = False
        self.parent: _ClientRequest | None = None
        self.waiter = waiter


class _SeparateResponse(_Reliable):
    __slots__ = ("done", "message")

    def __init__(self, peer: _Peer, message: Message) -> None:
        super().__init__(peer)
        self.message = message
        self.done = False


class Exchange:
    """An incoming request waiting for the application's response (server role).

    ``request`` is the (reassembled) request message and ``remote`` the peer address. Answer with
    :meth:`CoapEngine.send_response` once; until then a Confirmable request is acknowledged with
    an empty ACK after ``config.empty_ack_delay`` and the response becomes a separate one.
    """

    __slots__ = (
        "_ack_deadline",
        "_acked",
        "_block1",
        "_block2",
        "_key",
        "_no_response",
        "_observe",
        "_peer",
        "_responded",
        "request",
    )

    def __init__(
        self,
        request: Message,
        peer: _Peer,
        key: int,
        block1: Block | None = None,
        block2: Block | None = None,
        observe: bytes | None = None,
        no_response: int = 0,
    ) -> None:
        self.request = request
        self._peer = peer
        self._key = key
        self._acked = False
        self._responded = False
        self._ack_deadline = 0.0
        self._block1 = block1
        self._block2 = block2
        self._observe = observe
        self._no_response = no_response

    @property
    def remote(self) -> Any:
        return self._peer.addr

    @property
    def responded(self) -> bool:
        return self._responded

    def __repr__(self) -> str:
        return f"<Exchange {self.request!r} from {self._peer.addr!r}>"


class Observation(_Reliable):
    """A registered observer of one of our resources (server role, RFC 7641 §4.1).

    Public attributes: ``remote``, ``token``, ``request`` (the registering request),
    ``resource`` (its Uri-Path tuple), ``sequence`` (last Observe value sent) and ``active``.
    """

    __slots__ = (
        "_closing",
        "_inflight",
        "_key",
        "_last_con",
        "_pending",
        "_pending_con",
        "_queued",
        "_recent_non",
        "_state",
        "_version",
        "active",
        "request",
        "resource",
        "sequence",
        "token",
    )

    def __init__(
        self, peer: _Peer, request: Message, sequence: int, now: float, state: _ResourceState
    ) -> None:
        super().__init__(peer)
        self.request = request
        self.token = request.token
        self.resource: tuple[str, ...] = request.uri_path
        self.sequence = sequence
        self.active = True
        self._key = (peer.id, request.token)
        self._inflight = False
        self._queued = False
        self._pending: Message | None = None
        self._pending_con: bool | None = None
        self._closing = False
        self._last_con = now
        self._recent_non: tuple[int, ...] = ()
        self._state = state
        self._version = state.version

    @property
    def remote(self) -> Any:
        return self.peer.addr

    @property
    def in_flight(self) -> bool:
        """A CON notification awaits its ACK (or an NSTART slot)."""
        return self._inflight

    @property
    def has_pending(self) -> bool:
        """A newer state waits for the in-flight notification to be acknowledged."""
        return self._pending is not None or self._state.version > self._version

    def __repr__(self) -> str:
        return f"<Observation {'/'.join(self.resource)} by {self.peer.addr!r} seq={self.sequence}>"


class _ResourceState:
    """The newest representation notified for one resource, shared by its observers.

    ``notify_resource`` bumps ``version`` and sends only to ``idle`` observers; an observer with a
    CON notification in flight compares its own ``_version`` when the ACK arrives and sends the
    newest state then. Merging costs nothing per in-flight observer (RFC 7641 §4.5.2).
    """

    __slots__ = ("confirmable", "idle", "observers", "response", "version")

    def __init__(self) -> None:
        self.version = 0
        self.response: Message | None = None
        self.confirmable: bool | None = None
        self.observers: dict[tuple[int, bytes], Observation] = {}
        self.idle: dict[tuple[int, bytes], Observation] = {}


class _Reassembly:
    """A Block1 body being received (RFC 7959 §2.5)."""

    __slots__ = ("body", "deadline", "key")

    def __init__(self, key: tuple[Any, ...]) -> None:
        self.key = key
        self.body = bytearray()
        self.deadline: float | None = None


class _Block2Entry:
    """A representation whose remaining blocks are served from memory (RFC 7959 §2.4)."""

    __slots__ = ("body", "deadline", "key", "response")

    def __init__(self, key: tuple[Any, ...], response: Message, body: bytes) -> None:
        self.key = key
        self.response = response  # code and options of the full response (with ETag)
        self.body = body
        self.deadline: float | None = None


class CoapEngine:
    """Sans-IO CoAP endpoint, client and server at once, for any number of peers.

    :param config: limits and transmission parameters.
    :param rng: the source of Message IDs, tokens and retransmission jitter; defaults to
        :class:`random.SystemRandom` (tokens must be hard to guess, RFC 7252 §5.3.1 / §11.4).
    """

    def __init__(self, config: CoapConfig | None = None, *, rng: random.Random | None = None):
        self.config = config = config or CoapConfig()
        tp = config.transmission
        self._tp = tp
        if rng is not None:
            self._rng = self._token_rng = rng
        else:
            # Tokens must be unguessable (RFC 7252 §5.3.1, RFC 9175 §4): a CSPRNG, drawn in batches
            # so a request costs no system call. Message IDs and jitter need no secrecy.
            self._token_rng = random.SystemRandom()
            self._rng = random.Random(self._token_rng.getrandbits(64))
        self._token_pool = b""
        self._token_at = 0
        self._lifetime = tp.exchange_lifetime
        self._response_timeout = (
            config.response_timeout if config.response_timeout is not None else tp.max_transmit_wait
        )
        self._nstart = tp.nstart
        self._token_bits = config.token_length * 8
        self._token_length = config.token_length
        self._out: list[tuple[bytes, Any]] = []
        self._events: deque[CoapEvent] = deque()
        self._peers: dict[Any, _Peer] = {}
        self._peer_ids = itertools.count(1)
        self._timers: list[tuple[float, int, Any]] = []
        # First transmissions of CON requests: deadlines are now + ACK_TIMEOUT * jitter, nearly
        # always non-decreasing, so a FIFO takes them (append/popleft instead of a heap push/pop);
        # an entry earlier than the FIFO's tail goes to the heap. Both hold (when, seq, obj):
        # the merged order is exactly the heap's.
        self._fifo: deque[tuple[float, int, Any]] = deque()
        self._timer_seq = itertools.count()
        self._ack_timeout = tp.ack_timeout
        self._ack_span = tp.ack_timeout * (tp.ack_random_factor - 1.0)
        self._block_szx = config.block_szx
        self._block_size = 1 << (config.block_szx + 4)
        self._empty_ack_delay = config.empty_ack_delay
        self._request_block2_szx = config.request_block2_szx
        self._con_out: dict[int, _Reliable] = {}
        self._by_token: dict[bytes, _ClientRequest] = {}
        self._requests: dict[int, _ClientRequest] = {}
        self._request_ids = itertools.count(1)
        self._dedup = DuplicateCache(
            self._lifetime, config.dedup_max_entries, config.dedup_generations
        )
        self._pending_acks: deque[Exchange] = deque()
        self._reassemblies: dict[tuple[Any, ...], _Reassembly] = {}
        self._block2_cache: dict[tuple[Any, ...], _Block2Entry] = {}
        self._observations: dict[tuple[int, bytes], Observation] = {}
        self._by_resource: dict[tuple[str, ...], _ResourceState] = {}
        self._sweep_interval = self._lifetime / config.dedup_generations
        self._sweep_at: float | None = None
        # The earliest deadline created since the last get_timer() (inf: none), for
        # deadline_added_before(): every place that creates a deadline lowers it.
        self._added = _INF
        self._note_parts: tuple[Any, ...] | None = None
        self.stats = EngineStats()

    # ==========================================================================================
    # outputs
    # ==========================================================================================

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        """Datagrams produced since the last call, with their destination."""
        out = self._out
        if out:
            self._out = []
            self.stats.datagrams_sent += len(out)
        return out

    def next_event(self) -> CoapEvent | None:
        """The next event, or None when there are none left."""
        events = self._events
        return events.popleft() if events else None

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should be called next (None: no timer needed)."""
        self._added = _INF
        self._dedup.deadline_added = False
        deadline: float | None = None
        timers = self._timers
        while timers:
            when, _, obj = timers[0]
            if obj.deadline == when:
                deadline = when
                break
            heapq.heappop(timers)
        fifo = self._fifo
        while fifo:
            when, _, obj = fifo[0]
            if obj.deadline == when:
                if deadline is None or when < deadline:
                    deadline = when
                break
            fifo.popleft()
        acks = self._pending_acks
        while acks:
            head = acks[0]
            if head._responded or head._acked:
                acks.popleft()
                continue
            if deadline is None or head._ack_deadline < deadline:
                deadline = head._ack_deadline
            break
        dd = self._dedup.next_deadline()
        if dd is not None and (deadline is None or dd < deadline):
            deadline = dd
        sweep = self._sweep_at
        if sweep is not None and (deadline is None or sweep < deadline):
            deadline = sweep
        return deadline

    def deadline_added_before(self, when: float) -> bool:
        """Whether a deadline earlier than ``when`` may have appeared since the last
        :meth:`get_timer` call.

        A driver whose timer is armed at ``when`` (a value :meth:`get_timer` returned, or any
        earlier time) may skip :meth:`get_timer` after an input when this is False: the deadlines
        known at that call were all at ``when`` or later, later inputs only added deadlines
        (reported here) or removed some, so the armed timer is still early enough. It fires at
        worst too early, and :meth:`handle_timer` then finds nothing due. After
        :meth:`handle_timer` call :meth:`get_timer` itself.

        Like :meth:`get_timer` it drops entries that are no longer due (cancelled or
        rescheduled timers, answered requests) from the heads of the timer queues, so that
        answered requests and acknowledged notifications are not kept alive until the timer
        fires. Empty-ACK deadlines are not reported when created: they are ``now`` plus a
        constant, so the head of their queue is the earliest, and it is checked here; a server
        that answers every request at once thus skips :meth:`get_timer` as well.
        """
        fifo = self._fifo
        while fifo and fifo[0][2].deadline != fifo[0][0]:
            fifo.popleft()
        timers = self._timers
        while timers and timers[0][2].deadline != timers[0][0]:
            heapq.heappop(timers)
        acks = self._pending_acks
        while acks:
            head = acks[0]
            if not (head._responded or head._acked):
                if head._ack_deadline < when:
                    return True
                break
            acks.popleft()
        return self._added < when or self._dedup.deadline_added

    def handle_timer(self, now: float) -> None:
        """Run everything that is due at ``now``."""
        timers = self._timers
        fifo = self._fifo
        while True:
            # The earlier of both heads, ties by sequence number (the heap's order).
            if fifo and fifo[0][0] <= now and (not timers or fifo[0] < timers[0]):
                when, _, obj = fifo.popleft()
            elif timers and timers[0][0] <= now:
                when, _, obj = heapq.heappop(timers)
            else:
                break
            if obj.deadline != when:
                continue  # rescheduled or cancelled
            obj.deadline = None
            kind = type(obj)
            if kind is _ClientRequest:
                self._request_timer(obj, now)
            elif kind is Observation:
                self._observation_timer(obj, now)
            elif kind is _SeparateResponse:
                if not self._retransmit(obj, now):
                    self._con_out.pop((obj.peer.id << 16) | obj.mid, None)
                    self.stats.timeouts += 1
                    obj.done = True
                    self._release(obj, now)
            elif kind is _Reassembly:
                op_key: tuple[Any, ...] = obj.key
                if self._reassemblies.get(op_key) is obj:
                    del self._reassemblies[op_key]
                    self.stats.reassembly_timeouts += 1
            else:
                cache_key: tuple[Any, ...] = obj.key
                if self._block2_cache.get(cache_key) is obj:
                    del self._block2_cache[cache_key]
        acks = self._pending_acks
        while acks:
            head = acks[0]
            if head._responded or head._acked:
                acks.popleft()
            elif head._ack_deadline <= now:
                acks.popleft()
                self._send_empty_ack(head)
            else:
                break
        self._dedup.expire(now)
        if self._sweep_at is not None and now >= self._sweep_at:
            self._sweep_peers(now)

    # ==========================================================================================
    # input
    # ==========================================================================================

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None:
        """Process one datagram from ``addr``. Never raises for bad input: malformed messages are
        rejected with RST (CON, RFC 7252 §4.2) or silently dropped (§4.1, §4.3)."""
        stats = self.stats
        stats.datagrams_received += 1
        try:
            msg = decode(data)
        except MessageFormatError as exc:
            stats.malformed += 1
            if exc.mtype == _CON and exc.mid is not None:
                self._send_rst(exc.mid, addr)
            return
        peer = self._peers.get(addr)
        if peer is None:
            peer = self._new_peer(addr, now)
        peer.last_seen = now
        code = msg.code
        mtype = msg.mtype
        if code == 0:
            if mtype >= _ACK:
                self._on_ack_or_rst(peer, msg, now)
            elif mtype == _CON:
                # CoAP ping: a CON Empty message is answered with RST (RFC 7252 §4.2, §4.3).
                stats.pings += 1
                self._send_rst(msg.mid, addr)
            else:
                stats.malformed += 1  # NON must not be Empty (RFC 7252 §4.3)
            return
        cls = code >> 5
        if cls == 0:
            if mtype <= _NON:
                self._on_request(peer, msg, now)
            else:
                stats.malformed += 1  # ACK/RST carrying a request (§4.2, §4.1): ignore
        elif cls == 2 or cls == 4 or cls == 5:
            if mtype == _RST:
                stats.malformed += 1  # a Reset must be Empty (RFC 7252 §4.1)
            else:
                self._on_response(peer, msg, now)
        else:
            # Reserved code class: reject a CON (RFC 7252 §4.2), ignore others (§4.3).
            stats.rejected += 1
            if mtype == _CON:
                self._send_rst(msg.mid, addr)

    # ==========================================================================================
    # client role API
    # ==========================================================================================

    def send_request(
        self, request: Message, remote: Any, now: float, waiter: Waiter | None = None
    ) -> int:
        """Send ``request`` (CON unless its ``mtype`` is NON) to ``remote``; returns its id.

        The engine sets token and Message ID on the message (do not reuse it). A payload larger
        than the block size is sent with Block1 (RFC 7959 §2.5); a response with Block2 is
        fetched completely before :class:`ResponseReceived` (§2.4). ``observe=0`` registers an
        observation (RFC 7641 §3.1): notifications follow as :class:`NotificationReceived`.

        With a ``waiter`` (e.g. an :class:`asyncio.Future`) the response is handed to
        ``waiter.set_result`` and a failure to ``waiter.set_exception``, from within the input
        call that completes the request, instead of :class:`ResponseReceived` and
        :class:`RequestFailed` events (other events of the request are unchanged). A driver that
        waits on a future per request saves building, queueing and dispatching one event per
        response. The waiter must not call back into the engine.
        """
        if not 0 < request.code < 0x20:
            raise CoapUsageError(f"code {Code(request.code)} is not a method")
        peer = self._peers.get(remote)
        if peer is None:
            peer = self._new_peer(remote, now)
        # _new_token, inlined for the common case (a fresh token from the pool)
        at = self._token_at
        length = self._token_length
        pool = self._token_pool
        token = pool[at : at + length]
        if length and at + length <= len(pool) and token not in self._by_token:
            self._token_at = at + length
        else:
            token = self._new_token(peer)
        rid = next(self._request_ids)
        req = _ClientRequest(rid, peer, request, token, waiter)
        request.token = token
        observe = block1_raw = block2_raw = None
        for number, value in request.options:  # one pass instead of three property look-ups
            if number in _REQUEST_ACTED:
                if number == _OBSERVE:
                    observe = value
                elif number == _BLOCK2:
                    block2_raw = value
                else:
                    block1_raw = value
        if observe == b"" or (observe and not int.from_bytes(observe, "big")):
            req.observing = True  # Observe=0: the empty uint, or zero bytes (RFC 7252 §3.2)
        if block2_raw is not None:
            req.raw_block2 = Block.decode(int.from_bytes(block2_raw, "big")).num > 0
        elif self._request_block2_szx is not None:
            request.block2 = Block(0, False, self._request_block2_szx)
        payload = request.payload
        if block1_raw is None:
            szx = self._block_szx
            blockwise = len(payload) > self._block_size
        else:
            szx = min(self._block_szx, Block.decode(int.from_bytes(block1_raw, "big")).szx)
            request.remove_option(_BLOCK1)
            blockwise = len(payload) > (1 << (szx + 4))
        if blockwise:
            req.b1_body = payload
            req.b1_szx = szx
            if self._concurrent_block1(peer, request):
                request.request_tag = encode_uint(self._rng.getrandbits(32)) or b"\x00"
        peer.refs += 1
        if token:
            self._by_token[token] = req
        else:
            peer.empty_token = req
        self._requests[rid] = req
        if peer.outstanding < self._nstart:  # _start_or_queue, inlined for the common case
            peer.outstanding += 1
            req.counted = True
            if not blockwise and req.confirmable:
                # _send_request_message and _transmit_con, inlined for a plain CON request.
                req.state = _SENT
                req.in_flight = True
                mid = peer.next_mid
                peer.next_mid = (mid + 1) & 0xFFFF
                request.mid = mid
                request.mtype = _CON
                req.mid = mid
                req.datagram = data = request.encode()
                span = self._ack_span  # _initial_timeout, inlined
                timeout = self._ack_timeout
                if span:
                    timeout += self._rng.random() * span
                req.timeout = timeout
                self._con_out[(peer.id << 16) | mid] = req
                self._out.append((data, peer.addr))
                req.deadline = when = now + timeout
                if when < self._added:
                    self._added = when
                fifo = self._fifo
                if not fifo or fifo[-1][0] <= when:
                    fifo.append((when, next(self._timer_seq), req))
                else:  # jitter put it before the FIFO's tail
                    heapq.heappush(self._timers, (when, next(self._timer_seq), req))
            else:
                self._send_request_message(req, now)
        else:
            self._start_or_queue(req, now)
        return rid

    def cancel_request(self, request_id: int, now: float) -> None:
        """Forget a request (no event). For an observation this is the *reactive* cancellation of
        RFC 7641 §3.6: the next notification is answered with RST."""
        req = self._requests.get(request_id)
        if req is not None:
            self._finish(req, now)

    def fail_requests(self, remote: Any, error: BaseException, now: float) -> int:
        """End every request to ``remote`` that has a waiter (:meth:`send_request`), handing
        it ``error``: for a driver whose transport lost the peer (a secure session that failed
        or closed). Requests without a waiter are left to the driver, which keeps track of them
        itself. Returns how many ended."""
        peer = self._peers.get(remote)
        if peer is None or not peer.refs:
            return 0
        ended = [r for r in self._requests.values() if r.peer is peer and r.waiter is not None]
        # Those holding no NSTART slot first (queued, or back in the queue for their next
        # block): the slots given back then start none of them (nothing of theirs is sent).
        ended.sort(key=lambda r: r.counted)
        for req in ended:
            self._finish(req, now)
            waiter = req.waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
        return len(ended)

    def cancel_observation(self, request_id: int, now: float) -> None:
        """Proactively cancel an observation with GET/FETCH Observe=1 and the same token
        (RFC 7641 §3.6). :class:`ObservationEnded` follows when the server answered."""
        req = self._requests.get(request_id)
        if req is None or not req.observing or req.state == _DONE:
            raise CoapUsageError(f"request {request_id} is not an active observation")
        if req.state == _CANCELLING:
            return
        self._stop_transmission(req)
        req.in_flight = False
        dereg = req.template.copy()
        dereg.observe = 1
        dereg.remove_option(_BLOCK2)
        req.template = dereg
        req.b1_body = None
        req.state = _CANCELLING
        if req.counted:
            self._send_request_message(req, now)
        else:
            self._start_or_queue(req, now)

    def reregister(self, request_id: int, now: float) -> None:
        """Re-send the registering request with the same token (RFC 7641 §3.3.1), e.g. when
        Max-Age of the last notification runs out. A block-wise (Block1) registration is sent
        again from block 0 (RFC 7959 §2.5). The response arrives as a notification; it ends
        the interaction and frees its NSTART slot (RFC 7252 §4.7)."""
        req = self._requests.get(request_id)
        if req is None or not req.observing or req.state in (_DONE, _CANCELLING):
            raise CoapUsageError(f"request {request_id} is not an active observation")
        if req.counted:
            return  # a (re-)registration is already in transit
        if req.b1_body is not None:
            req.b1_next = req.b1_sent_end = 0  # the same request again: from block 0 (§2.5)
        self._start_or_queue(req, now)

    # ==========================================================================================
    # server role API
    # ==========================================================================================

    def send_response(
        self, exchange: Exchange, response: Message, now: float
    ) -> Observation | None:
        """Answer a :class:`RequestReceived`. Piggybacked on the ACK if the request is CON and not
        yet acknowledged, else a separate response (CON or NON like the request, RFC 7252
        §5.2.2/§5.2.3). A payload beyond the negotiated block size is sent with Block2.

        If the request was an Observe registration (Observe=0), the response is 2.xx and carries an
        Observe option (any value), the peer becomes an observer: the :class:`Observation` is
        returned (RFC 7641 §4.1). Otherwise returns None.
        """
        if exchange._responded:
            raise CoapUsageError("this exchange was already answered")
        exchange._responded = True
        acks = self._pending_acks
        while acks and acks[0]._responded:
            acks.popleft()  # keep the empty-ACK queue short without waiting for get_timer()
        req = exchange.request
        peer = exchange._peer
        response.token = req.token
        code = response.code
        cls = code >> 5
        if cls != 2 and cls != 4 and cls != 5:  # Message.is_response, inlined
            raise CoapUsageError(f"code {Code(code)} is not a response code")
        mask = exchange._no_response
        if mask and _no_response_suppresses(mask, code):
            if req.mtype == _CON and not exchange._acked:
                self._send_empty_ack(exchange)
            else:
                self._dedup.put(exchange._key, b"", now)
            return None
        observation: Observation | None = None
        if exchange._observe is not None:
            observation = self._observe_registration(exchange, response, now)
        elif (
            response.options
            and response.options[0][0] <= _OBSERVE  # sorted: else no Observe
            and response.get_option(_OBSERVE) is not None
        ):
            response.remove_option(_OBSERVE)
        if exchange._block1 is not None:
            response.block1 = exchange._block1  # RFC 7959 §2.3: echo on the final response
        if len(response.payload) > 16 or exchange._block2 is not None:
            self._block2_response(peer, req, exchange._block2, response, now)
        if req.mtype == _CON:
            if not exchange._acked:
                response.mtype = _ACK
                response.mid = req.mid
                data = response.encode()
                self._out.append((data, peer.addr))
                self._dedup.put(exchange._key, data, now)
                return observation
            self._dedup.put(exchange._key, self._empty_ack_bytes(req.mid), now)
            if response.mtype != _NON:
                sep = _SeparateResponse(peer, response)
                self._start_or_queue(sep, now)
                return observation
        else:
            self._dedup.put(exchange._key, b"", now)
        response.mtype = _NON
        response.mid = self._next_mid(peer)
        self._out.append((response.encode(), peer.addr))
        return observation

    def acknowledge(self, exchange: Exchange, now: float) -> None:
        """Send the empty ACK now (the response will be separate, RFC 7252 §5.2.2)."""
        if exchange.request.mtype == _CON and not exchange._acked and not exchange._responded:
            self._send_empty_ack(exchange)

    def notify(
        self,
        observation: Observation,
        response: Message,
        now: float,
        *,
        confirmable: bool | None = None,
        final: bool = False,
    ) -> bool:
        """Send ``response`` as the observer's next notification (RFC 7641 §4.2).

        If a CON notification is still in flight, ``response`` becomes the pending state,
        replacing any older pending one (merging, RFC 7641 §4.5.2); it is sent when the ACK
        arrives or with the next retransmission. ``confirmable`` None follows the configured
        policy with a CON at least every ``observe_con_interval`` (RFC 7641 §4.5). A non-2.xx
        response ends the observation, and so does one sent with ``final`` (whatever its code:
        an OSCORE-protected error travels as an outer 2.04, RFC 8613 §4.2). ``response`` is not
        modified (it may be shared between observers). Returns False if the observation is no
        longer active or its final notification is already on its way.
        """
        if not observation.active or observation._closing:
            return False
        if final:
            observation._closing = True
        observation._version = observation._state.version  # this state supersedes older ones
        if observation._inflight:
            if observation._pending is not None:
                self.stats.notifications_merged += 1
            observation._pending = response
            observation._pending_con = confirmable
            return True
        self._send_notification(observation, response, confirmable, now)
        return True

    def notify_resource(
        self,
        resource: tuple[str, ...],
        response: Message,
        now: float,
        *,
        confirmable: bool | None = None,
    ) -> int:
        """:meth:`notify` every observer of ``resource`` (a Uri-Path tuple) with the same
        representation; returns how many observers there are.

        Only observers without a CON notification in flight are sent to now; the others take the
        newest state when their ACK arrives, so the cost does not grow with in-flight observers.
        """
        state = self._by_resource.get(resource)
        if state is None:
            return 0
        count = len(state.observers)
        state.version += 1
        state.response = response
        state.confirmable = confirmable
        if state.idle:
            version = state.version
            for observation in list(state.idle.values()):
                observation._version = version
                self._send_notification(observation, response, confirmable, now)
        return count

    def observations(self, resource: tuple[str, ...] | None = None) -> list[Observation]:
        """Active observations, of one resource or all."""
        if resource is None:
            return list(self._observations.values())
        state = self._by_resource.get(resource)
        return [] if state is None else list(state.observers.values())

    def keep_every_notification(self, request_id: int) -> None:
        """Deliver every message of observation ``request_id`` as a notification, leaving
        their order and the end of the observation to the caller: OSCORE orders them by
        Partial IV and ignores the outer Observe value (RFC 8613 §4.1.3.5.2), so the RFC 7641
        §3.4 freshness check must not drop any, and only a verified final response ends the
        observation (the caller cancels it, :meth:`cancel_request`)."""
        req = self._requests.get(request_id)
        if req is not None:
            req.unordered = True

    def remove_observation(self, observation: Observation, now: float) -> None:
        """Forget an observer locally (no message is sent, no event)."""
        self._remove_observation(observation, None, now)

    # ==========================================================================================
    # lifecycle
    # ==========================================================================================

    def shutdown(self, now: float) -> None:
        """Fail every pending request with :class:`RequestCancelled` and drop all state."""
        for req in list(self._requests.values()):
            if req.parent is None:
                if req.observing and req.established:
                    self._events.append(ObservationEnded(req.id, None))
                else:
                    self._failed(req, RequestCancelled("engine shut down"))
            self._finish(req, now)
        for observation in list(self._observations.values()):
            self._remove_observation(observation, None, now)
        self._timers.clear()
        self._fifo.clear()
        self._pending_acks.clear()
        self._reassemblies.clear()
        self._block2_cache.clear()
        self._con_out.clear()

    @property
    def peer_count(self) -> int:
        return len(self._peers)

    @property
    def remembered_exchanges(self) -> int:
        """Entries in the duplicate-detection cache."""
        return len(self._dedup)

    @property
    def dedup_evicted(self) -> int:
        return self._dedup.evicted

    @property
    def pending_requests(self) -> int:
        return len(self._requests)

    # ==========================================================================================
    # peers, ids, tokens
    # ==========================================================================================

    def _new_peer(self, addr: Any, now: float) -> _Peer:
        peer = _Peer(addr, next(self._peer_ids), self._rng.getrandbits(16), now)
        self._peers[addr] = peer
        if self._sweep_at is None:
            self._sweep_at = when = now + self._sweep_interval
            if when < self._added:
                self._added = when
        return peer

    def _peer_for(self, addr: Any, now: float) -> _Peer:
        peer = self._peers.get(addr)
        if peer is None:
            peer = self._new_peer(addr, now)
        return peer

    def _sweep_peers(self, now: float) -> None:
        """Forget peers without state whose duplicate-cache entries have all expired."""
        horizon = now - self._lifetime - 2 * self._sweep_interval
        dead = [
            addr
            for addr, p in self._peers.items()
            if p.refs == 0 and p.outstanding == 0 and not p.queue and p.last_seen < horizon
        ]
        for addr in dead:
            del self._peers[addr]
        self._sweep_at = when = now + self._sweep_interval if self._peers else None
        if when is not None and when < self._added:
            self._added = when

    @staticmethod
    def _next_mid(peer: _Peer) -> int:
        mid = peer.next_mid
        peer.next_mid = (mid + 1) & 0xFFFF
        return mid

    def _new_token(self, peer: _Peer | None = None) -> bytes:
        """A token not in use: random, of ``config.token_length`` bytes, unique among our
        requests. With length 0 the empty token while no other request to ``peer`` uses it,
        else a random 4-byte one (RFC 7252 §5.3.1: the empty token only when no other token is
        in use with that destination; at least 32 bits of randomness otherwise)."""
        length = self._token_length
        by_token = self._by_token
        if not length:
            if peer is None or peer.empty_token is None:
                return b""
            while True:
                token = self._token_rng.randbytes(_FALLBACK_TOKEN_LENGTH)
                if token not in by_token:
                    return token
        while True:
            at = self._token_at
            pool = self._token_pool
            if at >= len(pool):
                pool = self._token_pool = self._token_rng.randbytes(length * 64)
                at = 0
            self._token_at = at + length
            token = pool[at : at + length]
            if token not in by_token:
                return token

    def _concurrent_block1(self, peer: _Peer, request: Message) -> bool:
        """Another Block1 operation to the same resource is running (RFC 9175 §3.4)."""
        path = request.options
        return any(
            r.peer is peer and r.b1_body is not None and r.template.options == path
            for r in self._requests.values()
        )

    # ==========================================================================================
    # reliability (RFC 7252 §4)
    # ==========================================================================================

    def _arm(self, obj: Any, when: float) -> None:
        obj.deadline = when
        if when < self._added:
            self._added = when
        heapq.heappush(self._timers, (when, next(self._timer_seq), obj))

    def _initial_timeout(self) -> float:
        """ACK_TIMEOUT times a random factor in [1, ACK_RANDOM_FACTOR] (RFC 7252 §4.2)."""
        span = self._ack_span
        if not span:
            return self._ack_timeout
        return self._ack_timeout + self._rng.random() * span

    def _transmit_con(self, obj: _Reliable, msg: Message, now: float) -> None:
        """Send ``msg`` as CON with a fresh Message ID and start retransmission (§4.2)."""
        peer = obj.peer
        mid = peer.next_mid
        peer.next_mid = (mid + 1) & 0xFFFF
        msg.mid = mid
        msg.mtype = _CON
        data = msg.encode()
        obj.mid = mid
        obj.datagram = data
        obj.retries = 0
        obj.timeout = timeout = self._initial_timeout()
        self._con_out[(peer.id << 16) | mid] = obj
        self._out.append((data, peer.addr))
        self._arm(obj, now + timeout)

    def _retransmit(self, obj: _Reliable, now: float) -> bool:
        """Retransmit with doubled timeout (§4.2); False when MAX_RETRANSMIT is exhausted."""
        if obj.retries >= self._tp.max_retransmit:
            return False
        obj.retries += 1
        obj.timeout *= 2
        self.stats.retransmissions += 1
        self._out.append((obj.datagram, obj.peer.addr))
        self._arm(obj, now + obj.timeout)
        return True

    def _start_or_queue(self, obj: _Reliable, now: float) -> None:
        """NSTART (RFC 7252 §4.7): start now if the peer has a free slot, else queue."""
        peer = obj.peer
        if peer.outstanding < self._nstart:
            peer.outstanding += 1
            obj.counted = True
            self._start(obj, now)
        else:
            if peer.queue is None:
                peer.queue = deque()
            peer.queue.append(obj)

    def _release(self, obj: _Reliable, now: float) -> None:
        """Give back an NSTART slot and start queued work."""
        if not obj.counted:
            return
        obj.counted = False
        peer = obj.peer
        peer.outstanding -= 1
        queue = peer.queue
        while queue and peer.outstanding < self._nstart:
            nxt = queue.popleft()
            if isinstance(nxt, _ClientRequest):
                if nxt.state == _DONE:
                    continue
            elif isinstance(nxt, Observation) and (not nxt.active or not nxt._queued):
                continue
            peer.outstanding += 1
            nxt.counted = True
            self._start(nxt, now)

    def _start(self, obj: _Reliable, now: float) -> None:
        if isinstance(obj, _ClientRequest):
            self._send_request_message(obj, now)
        elif isinstance(obj, Observation):
            obj._queued = False
            pending, con = self._take_pending(obj)
            if pending is None:  # pragma: no cover - queued observations always hold state
                self._notification_idle(obj, now)
                return
            self._send_notification(obj, pending, True if con is None else con, now)
        elif isinstance(obj, _SeparateResponse):
            self._transmit_con(obj, obj.message, now)

    def _stop_transmission(self, obj: _Reliable) -> None:
        """Stop retransmitting (an ACK/response arrived or we gave up)."""
        if obj.mid >= 0:
            key = (obj.peer.id << 16) | obj.mid
            if self._con_out.get(key) is obj:
                del self._con_out[key]
        obj.deadline = None

    def _on_ack_or_rst(self, peer: _Peer, msg: Message, now: float) -> None:
        obj = self._con_out.pop((peer.id << 16) | msg.mid, None)
        is_rst = msg.mtype == _RST
        if obj is None:
            if is_rst and peer.observations:
                # A Reset to a NON notification cancels the observation (RFC 7641 §3.6).
                for observation in list(peer.observations.values()):
                    if msg.mid in observation._recent_non:
                        self._remove_observation(observation, "reset", now)
                        return
            self.stats.unmatched += 1
            return
        obj.deadline = None
        if isinstance(obj, _ClientRequest):
            obj.in_flight = False
            if is_rst:
                self._fail(obj, RequestRejected("the peer answered with Reset"), now)
                return
            self._release(obj, now)
            self._await_separate(obj, now)
        elif isinstance(obj, Observation):
            if is_rst:
                self._remove_observation(obj, "reset", now)
            else:
                self._notification_acked(obj, now)
        elif isinstance(obj, _SeparateResponse):
            obj.done = True
            self._release(obj, now)

    def _send_rst(self, mid: int, addr: Any) -> None:
        self.stats.resets_sent += 1
        self._out.append((_HEADER.pack(_RST_BYTE, 0, mid), addr))

    @staticmethod
    def _empty_ack_bytes(mid: int) -> bytes:
        return _HEADER.pack(_EMPTY_ACK_BYTE, 0, mid)

    def _send_empty_ack(self, exchange: Exchange) -> None:
        exchange._acked = True
        data = self._empty_ack_bytes(exchange.request.mid)
        self._out.append((data, exchange._peer.addr))

    # ==========================================================================================
    # server role: incoming requests
    # ==========================================================================================

    def _reply(
        self, peer: _Peer, request: Message, response: Message, key: int, now: float
    ) -> None:
        """Answer directly from the engine (errors, 2.31, cached blocks): piggybacked on the ACK
        of a CON request, as NON for a NON request; remembered for duplicates."""
        response.token = request.token
        if request.mtype == _CON:
            response.mtype = _ACK
            response.mid = request.mid
            data = response.encode()
            self._dedup.put(key, data, now)
        else:
            response.mtype = _NON
            response.mid = self._next_mid(peer)
            data = response.encode()
            self._dedup.put(key, b"", now)
        self._out.append((data, peer.addr))

    def _on_request(self, peer: _Peer, msg: Message, now: float) -> None:
        key = (peer.id << 16) | msg.mid
        dedup = self._dedup
        cached = dedup.get(key)
        if cached is not None:
            self.stats.duplicates += 1
            if type(cached) is bytes:
                if cached:
                    self._out.append((cached, peer.addr))
            elif msg.mtype == _CON:
                # Still being processed: acknowledge now so the peer stops retransmitting.
                exchange = cached
                assert isinstance(exchange, Exchange)
                if not exchange._acked:
                    self._send_empty_ack(exchange)
                else:
                    self._out.append((self._empty_ack_bytes(msg.mid), peer.addr))
            return
        options = msg.options
        if options:
            # One pass for the options the engine acts on, applying check_options' rules (RFC
            # 7252 §5.4) on the way; the first offender hands over to check_options itself.
            observe = block1_raw = block2_raw = no_response = None
            previous = -1
            for number, value in options:
                spec = _FORMATS_GET(number)
                if (
                    spec is None
                    or not spec[1] <= len(value) <= spec[2]
                    or (number == previous and not spec[3])
                ):
                    bad = check_options(msg)
                    if bad is not None:
                        self.stats.bad_options += 1
                        if msg.mtype == _CON:
                            # RFC 7252 §5.4.1: 4.02 (Bad Option) for a CON request ...
                            reply = Message(Code.BAD_OPTION, str(bad).encode())
                            self._reply(peer, msg, reply, key, now)
                        else:
                            dedup.put(key, b"", now)  # ... and silently ignore a NON one.
                        return
                    observe, block1_raw, block2_raw, no_response = _acted_on(msg.options)
                    break
                previous = number
                if number < _BLOCK2:
                    if number == _OBSERVE:
                        observe = value
                elif number == _BLOCK2:
                    block2_raw = value
                elif number == _BLOCK1:
                    block1_raw = value
                elif number == _NO_RESPONSE:
                    no_response = value
            exchange_block1: Block | None = None
            if block1_raw is not None:
                full = self._on_block1(peer, msg, key, now)
                if full is None:
                    return
                msg, exchange_block1 = full
            block2: Block | None = None
            if block2_raw is not None:
                block2 = Block.decode(int.from_bytes(block2_raw, "big"))
                if block2.szx == 7:
                    # RFC 7959 §2.2: SZX 7 is reserved; 4.00 in a request.
                    self._reply(peer, msg, Message(Code.BAD_REQUEST, b"SZX 7"), key, now)
                    return
                if block2.num > 0 and self._serve_cached_block(peer, msg, block2, key, now):
                    return
            if observe is not None:
                if observe and not observe[0]:
                    # RFC 7252 §3.2: a uint may come with leading zero bytes; the engine
                    # compares Observe minimally encoded (0 empty, 1 b"\x01").
                    observe = encode_uint(int.from_bytes(observe, "big"))
                if observe == b"\x01":
                    # Deregistration: GET/FETCH, Observe=1, the same token (RFC 7641 §3.6).
                    old = self._observations.get((peer.id, msg.token))
                    if old is not None:
                        self._remove_observation(old, "deregistered", now)
            exchange = Exchange(
                msg,
                peer,
                key,
                exchange_block1,
                block2,
                observe,
                0 if no_response is None else int.from_bytes(no_response, "big"),
            )
        else:
            exchange = Exchange(msg, peer, key)
        dedup.add(key, exchange, now)  # get() missed above and nothing remembered it since
        if msg.mtype == _CON:
            # Not reported to deadline_added_before: that looks at the queue's head itself.
            exchange._ack_deadline = now + self._empty_ack_delay
            self._pending_acks.append(exchange)
        self._events.append(request_received(exchange))

    def _on_block1(
        self, peer: _Peer, msg: Message, key: int, now: float
    ) -> tuple[Message, Block] | None:
        """Block1 reassembly (RFC 7959 §2.5, §2.9). Returns the full request once complete."""
        block1 = msg.block1
        assert block1 is not None
        config = self.config
        if block1.szx == 7:
            self._reply(peer, msg, Message(Code.BAD_REQUEST, b"SZX 7"), key, now)
            return None
        size = block1.size
        payload = msg.payload
        if (block1.more and len(payload) != size) or len(payload) > size:
            self.stats.block_errors += 1
            self._reply(peer, msg, Message(Code.BAD_REQUEST, b"block size mismatch"), key, now)
            return None
        op_key = (peer.id, msg.operation_key())
        reassemblies = self._reassemblies
        entry = reassemblies.get(op_key)
        max_body = config.max_body_size
        if block1.num == 0:
            size1 = msg.size1
            if size1 is not None and size1 > max_body:
                self._too_large(peer, msg, key, op_key, now)
                return None
            if entry is None:
                if len(reassemblies) >= config.max_reassemblies:
                    self.stats.block_errors += 1
                    busy = Message(Code.SERVICE_UNAVAILABLE, b"too many block-wise uploads")
                    busy.max_age = int(config.reassembly_timeout)
                    self._reply(peer, msg, busy, key, now)
                    return None
                entry = _Reassembly(op_key)
            else:
                entry.body.clear()  # a new transfer of the same operation starts over
        elif entry is None or len(entry.body) != block1.start:
            # RFC 7959 §2.9.2: 4.08 for a block that does not continue a known transfer.
            self.stats.block_errors += 1
            if entry is not None:
                del reassemblies[op_key]
                entry.deadline = None
            incomplete = Message(Code.REQUEST_ENTITY_INCOMPLETE, b"unexpected block")
            self._reply(peer, msg, incomplete, key, now)
            return None
        if len(entry.body) + len(payload) > max_body:
            self._too_large(peer, msg, key, op_key, now)
            return None
        entry.body += payload
        if block1.more:
            reassemblies[op_key] = entry
            self._arm(entry, now + config.reassembly_timeout)
            # 2.31 Continue; a smaller SZX asks the client for smaller blocks (§2.5).
            cont = Message(Code.CONTINUE)
            cont.block1 = Block(block1.num, True, min(block1.szx, config.block_szx))
            self._reply(peer, msg, cont, key, now)
            return None
        if reassemblies.get(op_key) is entry:
            del reassemblies[op_key]
        entry.deadline = None
        full = msg.copy()
        full.payload = bytes(entry.body)
        full.options = [o for o in msg.options if o[0] != _BLOCK1 and o[0] != _SIZE1]
        return full, Block(block1.num, False, block1.szx)

    def _too_large(
        self, peer: _Peer, msg: Message, key: int, op_key: tuple[Any, ...], now: float
    ) -> None:
        """4.13 with Size1 = the largest body we accept (RFC 7959 §2.9.3, §4)."""
        self.stats.block_errors += 1
        entry = self._reassemblies.pop(op_key, None)
        if entry is not None:
            entry.deadline = None
        reply = Message(Code.REQUEST_ENTITY_TOO_LARGE)
        reply.size1 = self.config.max_body_size
        self._reply(peer, msg, reply, key, now)

    def _serve_cached_block(
        self, peer: _Peer, msg: Message, block2: Block, key: int, now: float
    ) -> bool:
        entry = self._block2_cache.get((peer.id, msg.operation_key()))
        if entry is None:
            return False
        body = entry.body
        szx = min(block2.szx, self.config.block_szx)
        start = block2.num << (szx + 4)
        if start >= len(body):
            self._reply(peer, msg, Message(Code.BAD_OPTION, b"block beyond the end"), key, now)
            return True
        end = start + (1 << (szx + 4))
        response = entry.response.copy()
        response.payload = body[start:end]
        response.block2 = Block(block2.num, end < len(body), szx)
        self._reply(peer, msg, response, key, now)
        return True

    def _block2_response(
        self, peer: _Peer, req: Message, req_b2: Block | None, response: Message, now: float
    ) -> None:
        """Slice a large response into Block2 blocks (RFC 7959 §2.4), keeping the body for the
        follow-up requests; honours a Block2 option in the request (early negotiation)."""
        szx = self.config.block_szx
        num = 0
        if req_b2 is not None:
            szx = min(szx, req_b2.szx)
            num = req_b2.num
        size = 1 << (szx + 4)
        body = response.payload
        if len(body) <= size and num == 0:
            return
        if response.code >> 5 != 2:
            return
        start = num * size
        if start >= len(body):
            response.code = Code.BAD_OPTION
            response.options = []
            response.payload = b"block beyond the end"
            return
        if response.get_option(_ETAG) is None:
            response.etag = zlib.crc32(body).to_bytes(4, "big")
        response.size2 = len(body)
        end = start + size
        template = response.copy()
        template.remove_option(_OBSERVE)
        template.payload = b""
        response.payload = body[start:end]
        response.block2 = Block(num, end < len(body), szx)
        if end < len(body):
            self._cache_block2(peer, req, template, body, now)

    def _cache_block2(
        self, peer: _Peer, req: Message, template: Message, body: bytes, now: float
    ) -> None:
        limit = self.config.block2_cache_entries
        if limit <= 0:
            return
        cache = self._block2_cache
        cache_key = (peer.id, req.operation_key())
        old = cache.pop(cache_key, None)
        if old is not None:
            old.deadline = None
        while len(cache) >= limit:
            oldest = cache.pop(next(iter(cache)))
            oldest.deadline = None
        entry = _Block2Entry(cache_key, template, body)
        cache[cache_key] = entry
        self._arm(entry, now + self.config.block2_cache_timeout)

    # ==========================================================================================
    # server role: Observe (RFC 7641 §4)
    # ==========================================================================================

    def _observe_registration(
        self, exchange: Exchange, response: Message, now: float
    ) -> Observation | None:
        req = exchange.request
        peer = exchange._peer
        key = (peer.id, req.token)
        old = self._observations.get(key)
        wants = exchange._observe == b""  # Observe=0 encodes as the empty value
        if not wants or response.code >> 5 != 2 or response.get_option(_OBSERVE) is None:
            response.remove_option(_OBSERVE)
            if old is not None and wants:
                self._remove_observation(old, "replaced", now)
            return None
        # The first number is 1, not 0: RFC 7641 allows any start, and node-coap (under
        # lwm2m-node-lib's server) drops a response whose Observe is not above 0 as stale.
        sequence = 1
        if old is not None:
            # Same endpoint and token: replace the entry (RFC 7641 §4.1), keep numbers rising.
            sequence = next_sequence(old.sequence)
            self._remove_observation(old, None, now)
        resource = req.uri_path
        state = self._by_resource.get(resource)
        if state is None:
            state = self._by_resource[resource] = _ResourceState()
        observation = Observation(peer, req, sequence, now, state)
        self._observations[key] = observation
        state.observers[key] = observation
        state.idle[key] = observation
        if peer.observations is None:
            peer.observations = {}
        peer.observations[req.token] = observation
        peer.refs += 1
        response.observe = sequence
        return observation

    def _remove_observation(self, observation: Observation, reason: str | None, now: float) -> None:
        if not observation.active:
            return
        observation.active = False
        peer = observation.peer
        key = observation._key
        if self._observations.get(key) is observation:
            del self._observations[key]
        state = observation._state
        if state.observers.get(key) is observation:
            del state.observers[key]
            state.idle.pop(key, None)
            if not state.observers and self._by_resource.get(observation.resource) is state:
                del self._by_resource[observation.resource]
        if peer.observations is not None and peer.observations.get(observation.token) is (
            observation
        ):
            del peer.observations[observation.token]
        peer.refs -= 1
        self._stop_transmission(observation)
        observation._pending = None
        observation._queued = False
        observation._inflight = False
        self._release(observation, now)
        if reason is not None:
            self._events.append(ObserverRemoved(observation, reason))

    def _notification_message(self, observation: Observation, response: Message) -> Message:
        """A per-observer copy of ``response`` with token and the next sequence number."""
        observation.sequence = seq = next_sequence(observation.sequence)
        msg = Message.__new__(Message)
        msg.code = response.code
        msg.payload = response.payload
        msg.token = observation.token
        msg.mid = 0
        msg.mtype = _CON
        observe: tuple[int, bytes] | None = (_OBSERVE, encode_uint(seq))
        options: list[tuple[int, bytes]] = []
        for option in response.options:
            number = option[0]
            if number >= _OBSERVE and observe is not None:
                options.append(observe)
                observe = None
            if number != _OBSERVE:
                options.append(option)
        if observe is not None:
            options.append(observe)
        msg.options = options
        return msg

    def _notification_parts(self, response: Message) -> tuple[Any, ...]:
        """The encoded options of ``response`` around Observe, cached for the last response:
        ``(response, options, payload, code, before, last, after, tail)`` where ``before`` holds
        the options numbered below Observe, ``last`` the number of the last of them, ``after``
        the options above Observe (delta-encoded from Observe) and ``tail`` the payload marker
        and payload."""
        parts = self._note_parts
        options = response.options
        payload = response.payload
        if (
            parts is not None
            and parts[0] is response
            and parts[1] is options
            and parts[2] is payload
            and parts[3] == response.code
            and parts[8] == len(options)
        ):
            return parts
        before = Message.__new__(Message)
        before.options = [o for o in options if o[0] < _OBSERVE]
        after = Message.__new__(Message)
        after.options = [(_OBSERVE, b"")] + [o for o in options if o[0] > _OBSERVE]
        for part in (before, after):
            part.token = b""
            part.payload = b""
            part.mtype = part.code = part.mid = 0
        last = before.options[-1][0] if before.options else 0
        parts = (
            response,
            options,
            payload,
            response.code,
            before.encode()[4:],
            last,
            after.encode()[5:],  # without the header and the empty Observe option
            b"\xff" + payload if payload else b"",
            len(options),
        )
        self._note_parts = parts
        return parts

    def _transmit_notification(
        self, observation: Observation, response: Message, now: float
    ) -> None:
        """``_transmit_con(observation, _notification_message(observation, response))`` without
        the intermediate Message: header, token, cached options, Observe, payload."""
        _, _, _, code, before, last, after, tail, _ = self._notification_parts(response)
        observation.sequence = seq = next_sequence(observation.sequence)
        value = encode_uint(seq)
        token = observation.token
        peer = observation.peer
        mid = peer.next_mid
        peer.next_mid = (mid + 1) & 0xFFFF
        data = b"".join(
            (
                _HEADER.pack(0x40 | len(token), code, mid),  # version 1, CON
                token,
                before,
                _UINT_CACHE_1[((_OBSERVE - last) << 4) | len(value)],
                value,
                after,
                tail,
            )
        )
        observation.mid = mid
        observation.datagram = data
        observation.retries = 0
        observation.timeout = timeout = self._initial_timeout()
        self._con_out[(peer.id << 16) | mid] = observation
        self._out.append((data, peer.addr))
        self._arm(observation, now + timeout)

    def _send_notification(
        self, observation: Observation, response: Message, confirmable: bool | None, now: float
    ) -> None:
        if confirmable is None:
            confirmable = self._is_con_default(observation, now)
        peer = observation.peer
        self.stats.notifications_sent += 1
        if response.code >> 5 != 2 or observation._closing:
            # RFC 7641 §3.2/§4.2: a non-2.xx notification ends the observation; no Observe.
            msg = response.copy()
            msg.token = observation.token
            msg.remove_option(_OBSERVE)
            self._remove_observation(observation, "final", now)
            if confirmable:
                self._start_or_queue(_SeparateResponse(peer, msg), now)
            else:
                msg.mtype = _NON
                msg.mid = self._next_mid(peer)
                self._out.append((msg.encode(), peer.addr))
            return
        if confirmable and not observation.counted:
            if peer.outstanding >= self._nstart:
                # NSTART reached (RFC 7641 §4.5.1): wait for a slot; newer state replaces this.
                observation._inflight = True
                observation._state.idle.pop(observation._key, None)
                observation._queued = True
                observation._pending = response
                observation._pending_con = True
                if peer.queue is None:
                    peer.queue = deque()
                peer.queue.append(observation)
                return
            peer.outstanding += 1
            observation.counted = True
        if confirmable and len(response.payload) <= (1 << (self.config.block_szx + 4)):
            # The usual case: one CON datagram built from the cached encoded option blocks of
            # ``response`` (shared by every observer of the resource), no per-observer Message.
            observation._last_con = now
            if not observation._inflight:
                observation._inflight = True
                observation._state.idle.pop(observation._key, None)
            self._transmit_notification(observation, response, now)
            return
        msg = self._notification_message(observation, response)
        if len(msg.payload) > (1 << (self.config.block_szx + 4)):
            registration = observation.request
            self._block2_response(peer, registration, registration.block2, msg, now)
        if confirmable:
            observation._last_con = now
            if not observation._inflight:
                observation._inflight = True
                observation._state.idle.pop(observation._key, None)
            self._transmit_con(observation, msg, now)
        else:
            mid = self._next_mid(peer)
            msg.mid = mid
            msg.mtype = _NON
            observation._recent_non = (mid, *observation._recent_non[:3])
            self._out.append((msg.encode(), peer.addr))

    def _take_pending(self, observation: Observation) -> tuple[Message | None, bool | None]:
        """The newest state not yet sent to ``observation``: its own pending one or the
        resource's, whichever is newer (RFC 7641 §4.5.2 merging)."""
        state = observation._state
        if state.version > observation._version and state.response is not None:
            skipped = state.version - observation._version - 1
            if observation._pending is not None:
                skipped += 1
            self.stats.notifications_merged += skipped
            observation._version = state.version
            observation._pending = observation._pending_con = None
            return state.response, state.confirmable
        pending, con = observation._pending, observation._pending_con
        observation._pending = observation._pending_con = None
        return pending, con

    def _notification_idle(self, observation: Observation, now: float) -> None:
        observation._inflight = False
        if observation.active:
            observation._state.idle[observation._key] = observation
        self._release(observation, now)

    def _notification_acked(self, observation: Observation, now: float) -> None:
        pending, con = self._take_pending(observation)
        if pending is None:
            self._notification_idle(observation, now)
            return
        if con or (con is None and self._is_con_default(observation, now)):
            # Keep the NSTART slot and the in-flight state for the next CON notification.
            self._send_notification(observation, pending, True, now)
            return
        self._notification_idle(observation, now)
        self._send_notification(observation, pending, con, now)

    def _is_con_default(self, observation: Observation, now: float) -> bool:
        config = self.config
        return (
            config.notification_confirmable
            or now - observation._last_con >= config.observe_con_interval
        )

    def _observation_timer(self, observation: Observation, now: float) -> None:
        if not observation.active:
            return
        if observation.has_pending and observation.retries < self._tp.max_retransmit:
            # RFC 7641 §4.5.2: retransmit the newest state instead of the outdated one, keeping
            # the retransmission counter and timeout.
            pending, _ = self._take_pending(observation)
            assert pending is not None
            self._stop_transmission(observation)
            retries, timeout = observation.retries, observation.timeout
            msg = self._notification_message(observation, pending)
            self.stats.notifications_sent += 1
            self._transmit_con(observation, msg, now)
            observation.retries = retries + 1
            observation.timeout = timeout * 2
            observation.deadline = None
            self.stats.retransmissions += 1
            self._arm(observation, now + observation.timeout)
            return
        if not self._retransmit(observation, now):
            # RFC 7641 §4.5: no ACK after the last retransmission removes the observer.
            self.stats.timeouts += 1
            self._remove_observation(observation, "timeout", now)

    # ==========================================================================================
    # client role: responses
    # ==========================================================================================

    def _on_response(self, peer: _Peer, msg: Message, now: float) -> None:
        mtype = msg.mtype
        if mtype == _ACK:
            obj = self._con_out.pop((peer.id << 16) | msg.mid, None)
            if obj is None:
                self.stats.unmatched += 1  # duplicate or late ACK
                return
            obj.deadline = None
            if type(obj) is not _ClientRequest or obj.token != msg.token:
                # The ACK acknowledges obj but carries a response we cannot match (RFC 7252
                # §5.3.2: the token is that of the request the ACK's Message ID names).
                self.stats.unmatched += 1
                self._on_ack_or_rst_matched(obj, now)
                return
            req = obj
            req.in_flight = False
            block2 = False
            options = msg.options
            if options:
                # check_options' rules (RFC 7252 §5.4) inlined for options that pass them all,
                # noting Block2 on the way; anything else takes check_options itself.
                previous = -1
                for number, value in options:
                    spec = _FORMATS_GET(number)
                    if (
                        spec is None
                        or not spec[1] <= len(value) <= spec[2]
                        or (number == previous and not spec[3])
                    ):
                        bad = check_options(msg)
                        if bad is not None:
                            # RFC 7252 §5.4.1: the piggybacked response is rejected.
                            self.stats.bad_options += 1
                            self._fail(req, bad, now)
                            return
                        block2 = msg.get_option(_BLOCK2) is not None
                        break
                    if number == _BLOCK2:
                        block2 = True
                    previous = number
            if (
                req.state == _SENT
                and req.b1_body is None
                and not req.observing
                and req.parent is None
                and (not block2 or req.raw_block2 or msg.code >> 5 != 2)
            ):
                # The usual case, inlined (_handle_response, _deliver, _finish): a piggybacked
                # final response, no block-wise transfer, no observation.
                req.state = _DONE
                token = req.token
                if token:
                    del self._by_token[token]
                else:
                    peer.empty_token = None
                self._requests.pop(req.id, None)
                peer.refs -= 1
                if req.counted:
                    if peer.queue:
                        self._release(req, now)  # and start queued work
                    else:
                        req.counted = False
                        peer.outstanding -= 1
                waiter = req.waiter
                if waiter is None:
                    self._events.append(response_received(req.id, msg, req.remote))
                elif not waiter.done():
                    waiter.set_result(msg)
                return
            self._handle_response(req, msg, now)
            return
        key = (peer.id << 16) | msg.mid
        cached = self._dedup.get(key)
        if cached is not None:
            self.stats.duplicates += 1
            if type(cached) is bytes and cached and mtype == _CON:
                self._out.append((cached, peer.addr))
            return
        token = msg.token
        found = self._by_token.get(token) if token else peer.empty_token
        if found is None or found.peer is not peer or found.state == _QUEUED:
            # RFC 7252 §5.3.2 / RFC 7641 §3.6: reject a response we cannot match.
            self.stats.unmatched += 1
            self.stats.resets_sent += 1
            rst = _HEADER.pack(_RST_BYTE, 0, msg.mid)
            self._out.append((rst, peer.addr))
            self._dedup.put(key, rst, now)
            return
        req = found
        if msg.options:
            bad = check_options(msg)
            if bad is not None:
                self.stats.bad_options += 1
                if mtype == _CON:
                    self._send_rst(msg.mid, peer.addr)  # RFC 7252 §5.4.1: reject
                self._dedup.put(key, b"", now)
                return
        if mtype == _CON:
            ack = self._empty_ack_bytes(msg.mid)
            self._out.append((ack, peer.addr))
            self._dedup.put(key, ack, now)
        else:
            self._dedup.put(key, b"", now)
        if req.in_flight:
            # A separate response implies the lost ACK (RFC 7252 §5.2.2).
            self._stop_transmission(req)
            req.in_flight = False
            self._release(req, now)
        self._handle_response(req, msg, now)

    def _on_ack_or_rst_matched(self, obj: _Reliable, now: float) -> None:
        if isinstance(obj, _ClientRequest):
            obj.in_flight = False
            self._release(obj, now)
            self._await_separate(obj, now)
        elif isinstance(obj, Observation):
            self._notification_acked(obj, now)
        elif isinstance(obj, _SeparateResponse):
            obj.done = True
            self._release(obj, now)

    def _await_separate(self, req: _ClientRequest, now: float) -> None:
        """An empty ACK arrived: the response will be separate (RFC 7252 §5.2.2)."""
        if req.state == _SENT:
            req.state = _WAITING
            self._arm(req, now + self._response_timeout)
        elif req.state == _CANCELLING:
            self._arm(req, now + self._response_timeout)

    def _handle_response(self, req: _ClientRequest, msg: Message, now: float) -> None:
        state = req.state
        if state == _DONE:
            return
        code = msg.code
        if state == _OBSERVING:
            body = req.b1_body
            if body is not None and req.b1_sent_end < len(body):
                # A block-wise re-registration is being uploaded (RFC 7641 §3.3.1, RFC 7959
                # §2.5): continue on 2.31, anything else ends the upload.
                if code == _CONTINUE:
                    b1 = msg.block1
                    if b1 is None:
                        self._fail(req, BlockwiseError("2.31 without Block1"), now)
                        return
                    if b1.szx < req.b1_szx:
                        req.b1_szx = b1.szx
                    req.b1_next = req.b1_sent_end
                    if req.counted:
                        self._send_request_message(req, now)  # the state stays _OBSERVING
                    else:
                        self._start_or_queue(req, now)
                    return
                req.b1_sent_end = len(body)
            if req.counted:
                # The response to a re-registration (or a notification racing it): the
                # interaction is over, its NSTART slot is free (RFC 7641 §3.3.1, RFC 7252 §4.7).
                self._release(req, now)
            self._on_notification(req, msg, now)
            return
        if state == _CANCELLING:
            if msg.mtype != _ACK and code >> 5 == 2 and msg.get_option(_OBSERVE) is not None:
                return  # a notification racing the deregistration (RFC 7641 §3.6)
            self._events.append(ObservationEnded(req.id, msg))
            self._finish(req, now)
            return
        req.deadline = None
        # Block1 (RFC 7959 §2.5): continue on 2.31 while blocks remain.
        # Any other answer ends the transfer early (4.13, 4.08, an early 2.xx, ...).
        body = req.b1_body
        if body is not None and req.b1_sent_end < len(body) and code == _CONTINUE:
            b1 = msg.block1
            if b1 is None:
                self._fail(req, BlockwiseError("2.31 without Block1"), now)
                return
            if b1.szx < req.b1_szx:
                req.b1_szx = b1.szx  # the server asked for smaller blocks (§2.5)
            req.b1_next = req.b1_sent_end
            self._continue(req, now)
            return
        # Block2 (RFC 7959 §2.4): fetch the remaining blocks before delivering.
        if code >> 5 == 2 and not req.raw_block2:
            b2raw = msg.get_option(_BLOCK2)
            if b2raw is not None:
                block = Block.decode(int.from_bytes(b2raw, "big"))
                collected = self._collect_block2(req, msg, block, now)
                if collected is None:
                    return
                msg = collected
        self._release(req, now)
        self._deliver(req, msg, now)

    def _continue(self, req: _ClientRequest, now: float) -> None:
        """Send the next block, keeping the NSTART slot if the request holds one."""
        req.state = _QUEUED
        if req.counted:
            self._send_request_message(req, now)
        else:
            self._start_or_queue(req, now)

    def _collect_block2(
        self, req: _ClientRequest, msg: Message, block: Block, now: float
    ) -> Message | None:
        """Append one Block2 block; request the next one or return the assembled response."""
        if req.observing and req.parent is None and block.more:
            # Notifications and the first response of an observation: fetch the rest with a
            # separate request so the observation's token stays free (RFC 7959 §2.6).
            if block.num != 0:
                self._fail(req, BlockwiseError("first block of a notification is not 0"), now)
                return None
            self._establish(req, msg, now)
            self._release(req, now)
            self._spawn_block2_fetch(req, msg, block, now)
            return None
        body = req.b2_body
        if body is None:
            if block.num != 0 or not block.more:
                return msg if block.num == 0 else self._block2_error(req, "unexpected block", now)
            body = req.b2_body = bytearray()
            req.b2_etag = msg.etag
        elif block.start != len(body):
            return self._block2_error(req, f"block {block.num} at the wrong offset", now)
        elif msg.etag != req.b2_etag:
            return self._block2_error(req, "representation changed (ETag)", now)
        if len(body) + len(msg.payload) > self.config.max_body_size:
            self.stats.block_errors += 1
            self._fail(req, BodyTooLarge("body larger than max_body_size"), now)
            return None
        body += msg.payload
        if block.more:
            if req.b2_template is None:
                req.b2_template = self._block2_follow_up(req.template)
            nxt = req.b2_template.copy()
            nxt.block2 = Block(len(body) >> (block.szx + 4), False, block.szx)
            req.template = nxt
            req.b1_body = None
            self._continue(req, now)
            return None
        full = msg.copy()
        full.payload = bytes(body)
        full.remove_option(_BLOCK2)
        req.b2_body = None
        return full

    @staticmethod
    def _block2_follow_up(template: Message) -> Message:
        follow = template.copy()
        follow.options = [
            o for o in template.options if o[0] not in (_BLOCK1, _SIZE1, _OBSERVE, _REQUEST_TAG)
        ]
        if template.code != _FETCH:
            follow.payload = b""
        return follow

    def _block2_error(self, req: _ClientRequest, reason: str, now: float) -> Message | None:
        """Fail ``req``; returns None so callers can ``return self._block2_error(...)``."""
        self.stats.block_errors += 1
        self._fail(req, BlockwiseError(reason), now)
        return None

    def _spawn_block2_fetch(
        self, parent: _ClientRequest, first: Message, block: Block, now: float
    ) -> None:
        template = self._block2_follow_up(parent.template)
        template.block2 = Block(1, False, block.szx)
        template.mtype = _CON
        peer = parent.peer
        token = self._new_token(peer)
        child = _ClientRequest(next(self._request_ids), peer, template, token)
        template.token = token
        child.parent = parent
        child.b2_body = bytearray(first.payload)
        child.b2_etag = first.etag
        child.b2_template = self._block2_follow_up(template)
        child.obs_seq = parent.obs_seq
        peer.refs += 1
        if token:
            self._by_token[token] = child
        else:
            peer.empty_token = child
        self._requests[child.id] = child
        self._start_or_queue(child, now)

    def _deliver(self, req: _ClientRequest, msg: Message, now: float) -> None:
        parent = req.parent
        if parent is not None:
            self._finish(req, now)
            if parent.state == _DONE:
                return
            if parent.obs_seq != req.obs_seq and parent.delivered:
                self.stats.stale_notifications += 1  # a newer notification overtook this one
                return
            if msg.get_option(_OBSERVE) is None:
                # reassembled from the follow-up blocks, which carry no Observe: the value is
                # the first block's (the registration's answer is one, RFC 7641 §3.1)
                msg.observe = req.obs_seq
            if not parent.delivered:
                # the first response completes the registration even when a newer
                # notification overtook its blocks (that one follows as a notification)
                parent.delivered = True
                self._response(parent, msg)
            else:
                self._events.append(notification_received(parent.id, msg, parent.remote))
            return
        if req.observing:
            if not req.established and msg.code >> 5 == 2 and msg.get_option(_OBSERVE) is not None:
                self._establish(req, msg, now)
                req.delivered = True
                self._response(req, msg)
                return
            if req.established:
                self._on_notification(req, msg, now)
                return
        self._response(req, msg)
        self._finish(req, now)

    def _response(self, req: _ClientRequest, msg: Message) -> None:
        """Hand the response of ``req`` to its waiter or queue :class:`ResponseReceived`."""
        waiter = req.waiter
        if waiter is None:
            self._events.append(response_received(req.id, msg, req.remote))
        elif not waiter.done():
            waiter.set_result(msg)

    def _failed(self, req: _ClientRequest, error: CoapError) -> None:
        """Hand the failure of ``req`` to its waiter or queue :class:`RequestFailed`."""
        waiter = req.waiter
        if waiter is None:
            self._events.append(RequestFailed(req.id, error))
        elif not waiter.done():
            waiter.set_exception(error)

    @staticmethod
    def _establish(req: _ClientRequest, msg: Message, now: float) -> None:
        """The first 2.xx response with Observe: the observation exists (RFC 7641 §3.1)."""
        req.established = True
        req.state = _OBSERVING
        req.deadline = None
        req.obs_seq = msg.observe or 0
        req.obs_time = now

    def _on_notification(self, req: _ClientRequest, msg: Message, now: float) -> None:
        seq = msg.observe
        if req.unordered and (seq is None or msg.code >> 5 != 2):
            # OSCORE: what ends the observation is decided after verification (RFC 8613 §8.4:
            # an unverified message changes nothing); the caller cancels it then
            self._events.append(notification_received(req.id, msg, req.remote))
            return
        if seq is None or msg.code >> 5 != 2:
            # RFC 7641 §3.2: a response without Observe or with an error code ends it.
            self._events.append(ObservationEnded(req.id, msg))
            self._finish(req, now)
            return
        if not req.unordered and not is_fresh(req.obs_seq, req.obs_time, seq, now):
            self.stats.stale_notifications += 1  # RFC 7641 §3.4: reordered, drop
            return
        req.obs_seq = seq
        req.obs_time = now
        req.deadline = None
        b2raw = msg.get_option(_BLOCK2)
        if b2raw is not None:
            block = Block.decode(int.from_bytes(b2raw, "big"))
            if block.more:
                if block.num != 0:
                    self.stats.block_errors += 1
                    return
                self._spawn_block2_fetch(req, msg, block, now)
                return
        self._events.append(notification_received(req.id, msg, req.remote))

    def _send_request_message(self, req: _ClientRequest, now: float) -> None:
        """Transmit the current message of ``req`` (next Block1 block if uploading)."""
        msg = req.template
        body = req.b1_body
        if body is not None and req.state != _CANCELLING:
            msg = msg.copy()
            szx = req.b1_szx
            start = req.b1_next
            end = start + (1 << (szx + 4))
            more = end < len(body)
            msg.payload = body[start:end]
            msg.block1 = Block(start >> (szx + 4), more, szx)
            if start == 0:
                msg.size1 = len(body)  # RFC 7959 §4: announce the total size up front
            req.b1_sent_end = min(end, len(body))
        msg.token = req.token
        if req.state == _QUEUED:
            req.state = _SENT
        if req.confirmable:
            req.in_flight = True
            self._transmit_con(req, msg, now)
        else:
            msg.mtype = _NON
            msg.mid = self._next_mid(req.peer)
            self._out.append((msg.encode(), req.peer.addr))
            self._arm(req, now + self._response_timeout)

    def _request_timer(self, req: _ClientRequest, now: float) -> None:
        if req.state == _DONE:
            return
        if req.in_flight:
            if self._retransmit(req, now):
                return
            self._stop_transmission(req)
            req.in_flight = False
            self.stats.timeouts += 1
            self._fail(req, RequestTimeout("no ACK after MAX_RETRANSMIT retransmissions"), now)
            return
        if req.state in (_SENT, _WAITING, _CANCELLING):
            self.stats.timeouts += 1
            self._fail(req, RequestTimeout("no response"), now)
        elif req.state == _OBSERVING:
            # A NON re-registration went unanswered: the observation goes on as it was, but
            # the interaction is over and gives back its NSTART slot (RFC 7252 §4.7).
            self._release(req, now)

    def _fail(self, req: _ClientRequest, error: CoapError, now: float) -> None:
        parent = req.parent
        ended = req.state == _CANCELLING
        self._finish(req, now)
        if parent is not None:
            if parent.state != _DONE and isinstance(error, BlockwiseError | RequestTimeout):
                self.stats.block_errors += 1
            return  # the observation itself goes on
        if ended:
            self._events.append(ObservationEnded(req.id, None))
        else:
            self._failed(req, error)

    def _finish(self, req: _ClientRequest, now: float) -> None:
        if req.state == _DONE:
            return
        req.state = _DONE
        self._stop_transmission(req)
        req.in_flight = False
        token = req.token
        if token:
            if self._by_token.get(token) is req:
                del self._by_token[token]
        elif req.peer.empty_token is req:
            req.peer.empty_token = None
        self._requests.pop(req.id, None)
        req.peer.refs -= 1
        self._release(req, now)
