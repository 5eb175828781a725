"""asyncio CoAP endpoint: client and server on one UDP socket (layer L3 over :mod:`lwm2m.coap`).

An LwM2M client registers from port X and is then queried on port X, so one
:class:`CoapEndpoint` both sends requests (:meth:`CoapEndpoint.request`,
:meth:`CoapEndpoint.observe`) and serves a :class:`Site` of handlers. All protocol work (RFC 7252
reliability, RFC 7641 Observe, RFC 7959 block-wise) happens in the sans-IO
:class:`~lwm2m.coap.engine.CoapEngine`; this module is the glue, in the style of aioquic's
``asyncio/protocol.py``: feed each datagram to the engine with ``loop.time()`` as ``now``, then
dispatch events, send datagrams and re-arm a single ``call_at`` timer.

Transport seam. Between the socket and the engine sits a
:class:`~lwm2m.io.coap_transport.SecurityLayer` (see that module): plain UDP today
(:class:`~lwm2m.io.coap_transport.PlainUdp`, which the endpoint short-circuits on the hot path),
DTLS (``coaps://``, :class:`lwm2m.io.coaps.DtlsSecurityLayer`). The layer maps UDP addresses to
*peer keys* (sessions keyed by address or Connection ID) and reports each peer's authenticated
identity, which handlers receive as :attr:`CoapRequest.peer_identity` (None for plain UDP). A
layer with sessions (:class:`~lwm2m.io.coap_transport.SessionLayer`) may also deliver plaintexts
later (a handshake step that ran in a worker thread) and report failed sessions: the requests
and observations pending towards such a peer then fail at once with the layer's error (e.g. a
DTLS handshake failure) instead of timing out; closing the endpoint closes its sessions
(close_notify).

Handlers. ``Site.add(prefix, handler)`` routes by longest Uri-Path prefix. A handler takes a
:class:`CoapRequest` and returns a response :class:`~lwm2m.coap.message.Message` — directly (the
fast path: answered within the same loop iteration, piggybacked) or as an awaitable (run as a
task; the engine sends an empty ACK if it takes long and the answer becomes separate). Raising
:class:`~lwm2m.coap.errors.ErrorResponse` answers with its code; any other exception answers 5.00
and is logged. A handler accepts an Observe registration by returning a 2.xx response with an
``observe`` value; later states go out with :meth:`CoapEndpoint.notify` (merged while a CON
notification is in flight, RFC 7641 §4.5.2).

Errors. Network errors (e.g. ICMP port unreachable) are logged and counted in
:class:`EndpointStats`, never raised into unrelated coroutines; a request fails only with its own
outcome (:class:`~lwm2m.coap.errors.RequestTimeout`, ``RequestRejected``, ...).

uvloop is optional: :func:`loop_factory` returns ``uvloop.new_event_loop`` when it is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import socket
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lwm2m.coap.config import CoapConfig
from lwm2m.coap.engine import CoapEngine, Exchange, Observation
from lwm2m.coap.errors import (
    BlockwiseError,
    BodyTooLarge,
    CoapError,
    ErrorResponse,
    RequestCancelled,
)
from lwm2m.coap.events import (
    CoapEvent,
    NotificationReceived,
    ObservationEnded,
    ObserverRemoved,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
)
from lwm2m.coap.message import Block, Message
from lwm2m.coap.numbers import Code, MessageType, OptionNumber
from lwm2m.errors import OscoreError
from lwm2m.io.coap_transport import (
    OutputFlagLayer,
    PeerIdentity,
    PlainUdp,
    SecurityLayer,
    SessionLayer,
    UdpAddress,
)
from lwm2m.io.oscore import (
    OscoreLayer,
    UnprotectedResponse,
    echo_request,
    open_response,
    with_echo,
)
from lwm2m.oscore import (
    MAX_SEQUENCE_NUMBER,
    RequestBinding,
    SecurityContext,
    VerificationError,
)

__all__ = [
    "ClientObservation",
    "CoapEndpoint",
    "CoapRequest",
    "EndpointStats",
    "Handler",
    "Site",
    "loop_factory",
    "uvloop_available",
]

logger = logging.getLogger(__name__)

_BATCH = 64  # datagrams read per wake-up before yielding to other callbacks
_GROW_AFTER = 8  # wake-ups in a row that used up a budget of 1 before the budget grows
_GROW_AFTER_MAX = 64  # ... at most, after growing found nothing more again and again
_PROBE_EVERY = 16  # transport path: datagrams flushed one by one before batching is tried again
_CORK_LIMIT = 16  # requests' datagrams held back per loop pass at most (see CoapEndpoint.request)
# socket.IP_RECVERR appears in Python 3.12; the Linux value is 11.
_IP_RECVERR: int | None = getattr(socket, "IP_RECVERR", 11 if sys.platform == "linux" else None)
_MAX_DATAGRAM = 65536
_OSCORE_OPTION = int(OptionNumber.OSCORE)
_OBSERVE_OPTION = int(OptionNumber.OBSERVE)
_INNER_UPLOADS = 64  # Inner Block1 transfers reassembled at once (the oldest gives way)
_REPLAY_JUMP = 1 << 16  # Sender Sequence Numbers skipped after a "Replay detected" refusal


def _refused_as_replay(exc: UnprotectedResponse) -> bool:
    """The peer's unprotected 4.01 "Replay detected" (RFC 8613 §7.4, §8.2)."""
    return exc.code == Code.UNAUTHORIZED and exc.diagnostic == "Replay detected"


@dataclass(frozen=True, slots=True)
class CoapRequest:
    """What a handler receives."""

    message: Message
    """The (reassembled) request."""
    remote: Any
    """The peer: a UDP address for plain CoAP, the security layer's peer key otherwise."""
    peer_identity: PeerIdentity | None
    """The authenticated identity of the peer; None for plain UDP (``coap://``)."""
    path: tuple[str, ...]
    """The Uri-Path segments after the route prefix."""

    @property
    def code(self) -> int:
        return self.message.code

    @property
    def payload(self) -> bytes:
        return self.message.payload

    @property
    def uri_path(self) -> tuple[str, ...]:
        return self.message.uri_path


class _MutableCoapRequest:
    """The layout of :class:`CoapRequest` without the frozen ``__setattr__``: filled in (no
    ``__init__`` call) and then given the class :class:`CoapRequest` (≈ 0.4 µs instead of
    ≈ 1.5 µs per request)."""

    __slots__ = CoapRequest.__slots__


_new_object = object.__new__


Handler = Callable[[CoapRequest], "Message | Awaitable[Message]"]
"""A request handler: returns the response, directly or as an awaitable."""


class Site:
    """Routes requests to handlers by the longest matching Uri-Path prefix."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, ...], Handler] = {}
        self._longest = 0

    def add(self, prefix: str | Sequence[str], handler: Handler) -> None:
        """Serve ``prefix`` (``"/3/0"`` or ``("3", "0")``; ``"/"`` for all) with ``handler``."""
        key = tuple(p for p in prefix.split("/") if p) if isinstance(prefix, str) else tuple(prefix)
        self._routes[key] = handler
        self._longest = max(self._longest, len(key))

    def remove(self, prefix: str | Sequence[str]) -> None:
        key = tuple(p for p in prefix.split("/") if p) if isinstance(prefix, str) else tuple(prefix)
        self._routes.pop(key, None)

    def route(self, path: tuple[str, ...]) -> tuple[Handler, tuple[str, ...]] | None:
        """The handler for ``path`` and the rest of the path, or None."""
        routes = self._routes
        # The whole path first (usually a route of its own), then ever shorter prefixes; a plain
        # countdown costs a quarter of min() and range() per request.
        n = len(path)
        if n <= self._longest:
            handler = routes.get(path)
            if handler is not None:
                return handler, ()
            n -= 1
        else:
            n = self._longest
        while n >= 0:
            handler = routes.get(path[:n])
            if handler is not None:
                return handler, path[n:]
            n -= 1
        return None


class EndpointStats:
    """Adapter-level counters (the engine's are in ``endpoint.engine.stats``)."""

    __slots__ = ("handler_errors", "network_errors", "requests_handled", "unrouted")

    def __init__(self) -> None:
        self.network_errors = 0
        """Errors reported by the socket (ICMP unreachable, send failures)."""
        self.handler_errors = 0
        """Handlers that raised something other than ErrorResponse (answered 5.00)."""
        self.requests_handled = 0
        self.unrouted = 0
        """Requests for which no handler matched (answered 4.04)."""


class ClientObservation:
    """An observation we registered (RFC 7641 observer role): an async iterator of notifications.

    ``response`` is the first response. Iterating yields later notifications (fresh ones only, RFC
    7641 §3.4); if the consumer is slower than the notifier, only the newest ``max_queue`` are
    kept. Alternatively :meth:`on_notification` registers a callback. Iteration ends when the
    server ends the observation or after :meth:`cancel`; a failure (e.g. a timeout of a
    re-registration) is raised from the iterator.
    """

    def __init__(self, endpoint: CoapEndpoint, request_id: int, max_queue: int) -> None:
        self._endpoint = endpoint
        self.request_id = request_id
        self.response: Message | None = None
        self._queue: deque[Message] = deque(maxlen=max_queue)
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._error: BaseException | None = None
        self.final_response: Message | None = None
        """The response that ended the observation, if any."""
        self._callback: Callable[[Message], None] | None = None
        self._unprotect: Callable[[Message], Message] | None = None
        """OSCORE: verifies each notification (§4.1.3.5.2); None for plain observations."""
        self._unverified: list[Message] | None = None
        """OSCORE: notifications that overtook the first response, held until it is verified
        (RFC 8613 §7.4.1: once a notification is accepted, the first response would not be)."""

    @property
    def active(self) -> bool:
        return not self._ended

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_notification(self, callback: Callable[[Message], None] | None) -> None:
        """Deliver notifications to ``callback`` (run in the event loop, must not block) instead
        of the async iterator; None switches back. Cheaper than iterating: no task wake-up."""
        self._callback = callback

    def _push(self, message: Message) -> None:
        if self._unprotect is not None:
            if self._unverified is not None:
                self._unverified.append(message)
                return
            try:
                message = self._unprotect(message)
            except OscoreError as exc:  # RFC 8613 §8.4: an unverifiable notification is dropped
                logger.info("notification dropped: %s", exc)
                return
            if message.observe is None:  # the inner response ends it (RFC 7641 §3.2)
                self._endpoint._cancel_observation(self, proactive=False)
                self._end(message, verified=True)
                return
        callback = self._callback
        if callback is not None:
            try:
                callback(message)
            except Exception:
                logger.exception("notification callback failed")
            return
        self._queue.append(message)
        self._wake()

    def _end(
        self,
        response: Message | None,
        error: BaseException | None = None,
        *,
        verified: bool = False,
    ) -> None:
        if self._ended:
            return
        if response is not None and self._unprotect is not None and not verified:
            try:  # OSCORE: the final response is protected too (RFC 8613 §8.4)
                response = self._unprotect(response)
            except OscoreError as exc:
                logger.info("final response of an OSCORE observation dropped: %s", exc)
                response = None
        self._ended = True
        self.final_response = response
        self._error = error
        self._wake()

    def _first_verified(self) -> None:
        """OSCORE: the first response verified; the notifications held meanwhile follow."""
        held, self._unverified = self._unverified or [], None
        for message in held:
            self._push(message)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._ended:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                raise StopAsyncIteration
            self._waiter = self._endpoint._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def cancel(self, *, proactive: bool = True) -> None:
        """End the observation: with GET Observe=1 (proactive, waits for the answer) or by
        forgetting it so the next notification is answered with RST (RFC 7641 §3.6). Wrap in
        ``asyncio.timeout`` to bound the wait."""
        if self._ended:
            return
        if self._unprotect is not None:
            # OSCORE: a GET Observe=1 built from the stored registration would be a replay
            # (lwm2m.io.oscore): forget it instead.
            proactive = False
        self._endpoint._cancel_observation(self, proactive)
        if not proactive:
            self._end(None)
            return
        with contextlib.suppress(StopAsyncIteration, CoapError):
            while True:
                await self.__anext__()

    def reregister(self) -> None:
        """Re-send the registration with the same token (RFC 7641 §3.3.1); not for OSCORE
        observations, whose stored request the server would refuse as a replay."""
        if self._unprotect is not None:
            logger.debug("OSCORE observation %d is not re-registered", self.request_id)
            return
        self._endpoint._reregister(self)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: CoapEndpoint) -> None:
        self._endpoint = endpoint
        self.closed: asyncio.Future[None] = endpoint._loop.create_future()
        # The transport looks the method up on the instance: skip one call per datagram.
        self.datagram_received = endpoint._datagram_received  # type: ignore[method-assign]

    def datagram_received(self, data: bytes, addr: UdpAddress) -> None:
        self._endpoint._datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors and friends: logged and counted, never raised into a coroutine.
        self._endpoint.stats.network_errors += 1
        logger.debug("network error: %r", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class CoapEndpoint:
    """One UDP socket, client and server at once. Create with :meth:`create`."""

    def __init__(
        self,
        *,
        site: Site | None = None,
        config: CoapConfig | None = None,
        security: SecurityLayer | None = None,
        engine: CoapEngine | None = None,
        max_notification_queue: int = 64,
        on_observer_removed: Callable[[Observation, str], None] | None = None,
        oscore: OscoreLayer | None = None,
    ) -> None:
        self._loop = loop = asyncio.get_running_loop()
        # ``loop.time()`` is ``time.monotonic()`` unless the loop says otherwise; calling the
        # latter directly saves a Python call per datagram and per request.
        loop_time = loop.time
        self._time: Callable[[], float] = (
            time.monotonic
            if getattr(loop_time, "__func__", None) is asyncio.BaseEventLoop.time
            else loop_time
        )
        self.engine = engine if engine is not None else CoapEngine(config)
        self.site = site if site is not None else Site()
        self.security: SecurityLayer = security if security is not None else PlainUdp()
        self._plain = type(self.security) is PlainUdp
        self._flag: OutputFlagLayer | None = (
            self.security if isinstance(self.security, OutputFlagLayer) else None
        )
        """The layer, if it keeps ``output_pending``: while that is False, ``datagrams_to_send``
        and ``get_timer`` are not called (see :mod:`lwm2m.io.coap_transport`)."""
        self._security_at: float | None = None
        """What ``security.get_timer()`` returned last (flagged layers)."""
        self._sessions: SessionLayer | None = (
            self.security if isinstance(self.security, SessionLayer) else None
        )
        self._peer_of: dict[int, Any] = {}
        """Session layers: the peer key of each observation (to fail it with its session;
        requests are failed by the engine, ``CoapEngine.fail_requests``)."""
        self._security_ready = False
        self.stats = EndpointStats()
        self._sock: socket.socket | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None
        self._sendto: Callable[[bytes, Any], object] = self._not_bound
        self._local_address: UdpAddress = ()
        self._pending: dict[int, asyncio.Future[Message]] = {}
        """Futures of requests completed through events (observe registrations)."""
        self._waiting = 0
        """Plain requests in flight whose future the engine resolves itself (its waiter)."""
        self._observations: dict[int, ClientObservation] = {}
        self._tasks: set[asyncio.Future[Message]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closing = False
        self._closed = False
        self._max_queue = max_notification_queue
        self._budget = 1
        self._full_wakeups = 0
        self._grow_after = _GROW_AFTER
        self._probing = False
        self._batching = True
        self._batched = 0
        self._unbatched = 0
        self._flush_pending = False
        self._cork: list[tuple[bytes, Any]] | None = None
        """Requests' datagrams held until the end of the loop pass (see :meth:`request`)."""
        self._on_observer_removed = on_observer_removed
        self._inner_uploads: dict[Any, bytearray] = {}
        """OSCORE Inner Block1 transfers being reassembled (see ``_inner_block1``)."""
        self.oscore = oscore
        """OSCORE contexts (RFC 8613, :mod:`lwm2m.io.oscore`); None: requests carrying the
        OSCORE option are answered 4.02 Bad Option."""
        if self._sessions is not None:
            self._sessions.attach(self._security_wakeup)

    @classmethod
    async def create(
        cls,
        bind: tuple[str, int] = ("127.0.0.1", 0),
        *,
        site: Site | None = None,
        config: CoapConfig | None = None,
        security: SecurityLayer | None = None,
        engine: CoapEngine | None = None,
        max_notification_queue: int = 64,
        on_observer_removed: Callable[[Observation, str], None] | None = None,
        oscore: OscoreLayer | None = None,
    ) -> CoapEndpoint:
        """Bind a UDP socket on ``bind`` (port 0 picks a free port) and start serving."""
        self = cls(
            site=site,
            config=config,
            security=security,
            engine=engine,
            max_notification_queue=max_notification_queue,
            on_observer_removed=on_observer_removed,
            oscore=oscore,
        )
        loop = self._loop
        infos = await loop.getaddrinfo(
            bind[0], bind[1], type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
        )
        family, _, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM, proto)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            if _IP_RECVERR is not None and family == socket.AF_INET:
                # Linux: report ICMP errors (port unreachable, ...) so they can be counted.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
            sock.bind(sockaddr)
            if type(loop).__module__.startswith("uvloop"):
                # uvloop's C datagram transport is faster than add_reader polling.
                raise NotImplementedError
            # Read the socket ourselves: a wake-up drains up to _BATCH datagrams and flushes once
            # (asyncio's datagram transport reads one datagram per loop iteration).
            loop.add_reader(sock.fileno(), self._on_readable)
        except NotImplementedError:  # loops without add_reader (Proactor) and uvloop
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), sock=sock
            )
            self._transport = transport
            self._protocol = protocol
            self._local_address = transport.get_extra_info("sockname")
            self._sendto = transport.sendto
            return self
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._local_address = sock.getsockname()
        self._sendto = sock.sendto
        return self

    @staticmethod
    def _not_bound(data: bytes, addr: Any) -> None:
        raise RequestCancelled("the endpoint is not bound")

    async def __aenter__(self) -> CoapEndpoint:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def local_address(self) -> UdpAddress:
        """The bound ``(host, port)``."""
        return self._local_address

    # -- client API -----------------------------------------------------------------------------

    async def request(
        self, message: Message, remote: UdpAddress, *, _protected: bool = False
    ) -> Message:
        """Send ``message`` to ``remote`` and return the response (block-wise reassembled).

        Raises :class:`~lwm2m.coap.errors.RequestTimeout`, ``RequestRejected``,
        ``BlockwiseError`` or ``RequestCancelled``. Cancelling the awaiting task cancels the
        request. Use ``asyncio.timeout`` for a deadline shorter than the protocol's. With an
        OSCORE context for ``remote`` the exchange is protected and the inner response
        returned; :class:`~lwm2m.errors.OscoreError` when it does not verify.
        """
        if self._closing:
            raise RequestCancelled("the endpoint is closed")
        if self.oscore is not None and not _protected:
            context = self.oscore.context_for(remote)
            if context is not None:
                return await self._oscore_request(context, message, remote)
        loop = self._loop
        now = self._time()
        engine = self.engine
        future: asyncio.Future[Message] = loop.create_future()
        if self._plain:
            # The engine resolves the future itself (its waiter): no ResponseReceived or
            # RequestFailed event to build and dispatch, no entry in _pending.
            request_id = engine.send_request(message, remote, now, future)
            # send_request produces datagrams, never events. _send and _arm_timer, inlined.
            out = engine.datagrams_to_send(now)
            cork = self._cork
            if cork is not None:
                cork += out
                if len(cork) >= _CORK_LIMIT:
                    self._uncork()
            elif out and (self._waiting or self._pending):
                # Other requests are in flight: their tasks, resumed in this loop pass, will send
                # too. Their datagrams leave together at the end of the pass (at most
                # _CORK_LIMIT at a time), so the peers wake up once per burst instead of once per
                # datagram — which matters when each task works between sends (an LwM2M server
                # decoding the last answer: 74 -> 63 us of CPU per Read in bench/lwm2m.py, the
                # bare GET unchanged). A lone request goes out at once.
                self._cork = list(out)
                loop.call_soon(self._uncork)
            else:
                self._transmit(out)
            at = self._timer_at
            if at is None or engine.deadline_added_before(at):
                self._rearm_timer(at)
            self._waiting += 1
            try:
                return await future
            except asyncio.CancelledError:
                engine.cancel_request(request_id, self._time())  # a no-op once it completed
                raise
            finally:
                self._waiting -= 1
        # Through a security layer: the engine resolves the future too (its waiter), and fails
        # it when the peer's session fails (_fail_peer: CoapEngine.fail_requests).
        peer = self.security.connect(remote, now)
        request_id = engine.send_request(message, peer, now, future)
        # A flagged layer with nothing to add (an established session) is not asked for more
        # datagrams or its deadline (_send_protected; _timer_moved, inlined).
        self._send_protected(engine.datagrams_to_send(now), now)
        at = self._timer_at
        flag = self._flag
        if (
            at is None
            or engine.deadline_added_before(at)
            or ((flag is None or flag.output_pending) and self._security_earlier(at))
        ):
            self._rearm_timer(at)
        try:
            return await future
        except asyncio.CancelledError:
            engine.cancel_request(request_id, self._time())  # a no-op once it completed
            raise

    async def _oscore_request(
        self, context: SecurityContext, message: Message, remote: UdpAddress
    ) -> Message:
        """``request`` through OSCORE; repeats it once with the Echo value a server that needs
        proof of freshness asked for (RFC 9175 §2.4, :mod:`lwm2m.io.oscore`)."""
        inner = message
        if (
            len(message.payload) > 1 << (self.engine.config.block_szx + 3)
            and message.block1 is None
            and message.request_tag is None
        ):
            # sent in Inner blocks (_send_inner_blocks): a Request-Tag of its own, on every
            # block and on the Block2 follow-ups, so that no block of this operation can be
            # spliced into another one (RFC 9175 §3.4, §3.5.1)
            inner = message.copy()
            inner.request_tag = secrets.token_bytes(4)
        for attempt in range(2):
            try:
                result = await self._send_inner_blocks(context, inner, remote)
            except UnprotectedResponse as exc:
                if attempt or not _refused_as_replay(exc):
                    raise
                # The peer saw our Partial IVs already: this context was made anew (a restart)
                # and its clock-based start (lwm2m.io.oscore) is behind what the previous one
                # sent. Jump ahead and ask again; a forged refusal only costs numbers.
                context.sender_sequence_number = min(
                    context.sender_sequence_number + _REPLAY_JUMP, MAX_SEQUENCE_NUMBER + 1
                )
                continue
            echo = echo_request(result)
            if echo is None or attempt:
                return await self._inner_block2(context, inner, result, remote)
            inner = with_echo(inner, echo)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_inner_blocks(
        self, context: SecurityContext, message: Message, remote: UdpAddress
    ) -> Message:
        """Send a protected request; a body larger than a block is fragmented before
        protection (Inner Block1, RFC 8613 §4.1.3.4.1, RFC 7959 §2.5), so that a peer that
        reads only Inner block-wise (aiocoap 0.4.17) gets it too. The verified answer to the
        last block (or any answer but 2.31 Continue) is returned."""
        body = message.payload
        # half the engine's block size: a protected block (ciphertext, tag, inner options)
        # then still fits one datagram, unfragmented on the outside
        szx = max(0, self.engine.config.block_szx - 1)
        size = 1 << (szx + 4)
        if len(body) <= size or message.block1 is not None:  # small, or blocks of the caller's
            outer, binding = context.protect_request(message)
            return open_response(
                context, binding, await self.request(outer, remote, _protected=True)
            )
        if len(body) > self.engine.config.max_body_size:
            raise BodyTooLarge("request body larger than max_body_size")
        num = 0
        while True:
            start = num * size
            more = start + size < len(body)
            part = message.copy()
            part.payload = body[start : start + size]
            part.block1 = Block(num, more, szx)
            if num == 0:
                part.size1 = len(body)  # RFC 7959 §4
            outer, binding = context.protect_request(part)
            answer = open_response(
                context, binding, await self.request(outer, remote, _protected=True)
            )
            if not more or answer.code != Code.CONTINUE:
                return answer
            num += 1

    async def _inner_block2(
        self, context: SecurityContext, request: Message, response: Message, remote: UdpAddress
    ) -> Message:
        """A response the peer fragmented before protecting it (Inner Block2, RFC 8613
        §4.1.3.4.1): fetch the other blocks, each request protected anew (RFC 7959 §2.4)."""
        block = response.block2
        if block is None or not block.more or response.code >> 5 != 2:
            return response
        if block.num != 0:
            raise BlockwiseError("the first inner block of a response is not block 0")
        body = bytearray(response.payload)
        limit = self.engine.config.max_body_size
        etag = response.etag
        szx = block.szx
        more = True
        while more:
            if len(body) > limit:
                raise BodyTooLarge("inner block-wise body larger than max_body_size")
            following = request.copy()
            if following.code != Code.FETCH:  # a FETCH keeps its body (RFC 8132 §2.3.2)
                following.payload = b""
            following.block1 = None
            following.block2 = Block(len(body) >> (szx + 4), False, szx)
            outer, binding = context.protect_request(following)
            answer = open_response(
                context, binding, await self.request(outer, remote, _protected=True)
            )
            next_block = answer.block2
            if answer.code >> 5 != 2 or next_block is None or answer.etag != etag:
                raise BlockwiseError("the inner block-wise transfer of the response broke off")
            if next_block.start != len(body):
                raise BlockwiseError("an inner block arrived out of order")
            body += answer.payload
            more = next_block.more
        assembled = response.copy()
        assembled.payload = bytes(body)
        assembled.block2 = None
        return assembled

    async def observe(self, message: Message, remote: UdpAddress) -> ClientObservation:
        """Register an observation (GET/FETCH with Observe=0) and wait for the first response.

        If the server declines (no Observe in the response) the returned observation is already
        ended; check :attr:`ClientObservation.active`. With an OSCORE context for ``remote``
        the registration and its notifications are protected (:mod:`lwm2m.io.oscore`).
        """
        message.observe = 0
        if self._closing:
            raise RequestCancelled("the endpoint is closed")
        context = None if self.oscore is None else self.oscore.context_for(remote)
        if context is not None:
            echo: bytes | None = None
            while True:
                inner = message if echo is None else with_echo(message, echo)
                protected, binding = context.protect_request(inner)
                unprotect = functools.partial(open_response, context, binding)
                observation = await self._observe(protected, remote, unprotect)
                first = observation.response
                assert first is not None
                try:
                    observation.response = opened = open_response(context, binding, first)
                except OscoreError:
                    await observation.cancel(proactive=False)
                    raise
                if not observation.active:
                    observation.final_response = opened
                observation._first_verified()
                echo = echo_request(opened) if echo is None else None
                if echo is None:
                    return observation
                await observation.cancel(proactive=False)  # the challenge ended nothing yet
        return await self._observe(message, remote)

    async def _observe(
        self,
        message: Message,
        remote: UdpAddress,
        unprotect: Callable[[Message], Message] | None = None,
    ) -> ClientObservation:
        now = self._time()
        peer = remote if self._plain else self.security.connect(remote, now)
        request_id = self.engine.send_request(message, peer, now)
        observation = ClientObservation(self, request_id, self._max_queue)
        if unprotect is not None:  # OSCORE: verified, and ordered by Partial IV, not Observe
            observation._unprotect = unprotect
            observation._unverified = []
            self.engine.keep_every_notification(request_id)
        future: asyncio.Future[Message] = self._loop.create_future()
        self._pending[request_id] = future
        self._observations[request_id] = observation
        if self._sessions is not None:
            self._track(request_id, peer)
        self._flush(now)
        try:
            response = await future
        except BaseException:
            self._observations.pop(request_id, None)
            if self._pending.pop(request_id, None) is not None:
                self.engine.cancel_request(request_id, self._time())
            raise
        observation.response = response
        if response.observe is None or response.code >> 5 != 2:
            self._observations.pop(request_id, None)
            observation._end(response, verified=True)  # OSCORE: ``observe`` verifies it
        return observation

    def _track(self, request_id: int, peer: Any) -> None:
        """Remember the peer of a request; entries of finished requests are pruned in bulk."""
        peers = self._peer_of
        peers[request_id] = peer
        if len(peers) > 2 * (len(self._pending) + len(self._observations)) + 64:
            live = self._pending.keys() | self._observations.keys()
            self._peer_of = {rid: p for rid, p in peers.items() if rid in live}

    def _security_wakeup(self) -> None:
        if self._security_ready or self._closed:
            return
        self._security_ready = True
        self._loop.call_soon(self._on_security_ready)

    def _on_security_ready(self) -> None:
        """Drain what the session layer produced outside an endpoint call."""
        self._security_ready = False
        layer = self._sessions
        if layer is None or self._closed:
            return
        now = self._time()
        engine = self.engine
        for plaintext, peer in layer.received(now):
            engine.receive_datagram(plaintext, peer, now)
        for peer, error in layer.failed_peers():
            self._fail_peer(peer, error, now)
        self._flush(now)

    def _fail_peer(self, peer: Any, error: Exception, now: float) -> None:
        """Fail every request and observation pending towards ``peer`` with ``error``: the
        engine fails the requests whose future it resolves itself (:meth:`request`), the
        tracked ones (observations) are failed here."""
        self.engine.fail_requests(peer, error, now)
        failed = [rid for rid, p in self._peer_of.items() if p == peer]
        for request_id in failed:
            del self._peer_of[request_id]
            future = self._pending.pop(request_id, None)
            observation = self._observations.pop(request_id, None)
            if future is None and observation is None:
                continue
            self.engine.cancel_request(request_id, now)
            if future is not None and not future.done():
                future.set_exception(error)
            if observation is not None:
                observation._end(None, error)

    def _cancel_observation(self, observation: ClientObservation, proactive: bool) -> None:
        now = self._time()
        if proactive:
            self.engine.cancel_observation(observation.request_id, now)
        else:
            self._observations.pop(observation.request_id, None)
            self.engine.cancel_request(observation.request_id, now)
        self._flush(now)

    def _reregister(self, observation: ClientObservation) -> None:
        now = self._time()
        self.engine.reregister(observation.request_id, now)
        self._flush(now)

    # -- server API -----------------------------------------------------------------------------

    def notify(
        self,
        path: str | Sequence[str],
        response: Message,
        *,
        confirmable: bool | None = None,
    ) -> int:
        """Send ``response`` as a notification to every observer of ``path``; returns their
        number. Pending state is merged while CON notifications are in flight."""
        key = tuple(p for p in path.split("/") if p) if isinstance(path, str) else tuple(path)
        now = self._time()
        count = self.engine.notify_resource(key, response, now, confirmable=confirmable)
        if count:
            self._flush(now)
        return count

    def notify_observation(
        self, observation: Observation, response: Message, *, confirmable: bool | None = None
    ) -> bool:
        """Notify one observer (e.g. with a representation specific to its request)."""
        layer = self.oscore
        final = False
        if layer is not None and layer.observers:
            key = (observation.token, observation.remote)
            bound = layer.observers.get(key)
            if bound is not None:  # each notification with a Partial IV of its own (§8.3)
                response = response.copy()
                if response.code >> 5 == 2:
                    if response.observe is None:  # a notification: Inner Observe (§4.1.3.5.2)
                        response.observe = 0
                else:  # an error ends the observation; it travels as an outer 2.04
                    response.remove_option(_OBSERVE_OPTION)
                    final = True
                    del layer.observers[key]
                response = bound[0].protect_response(response, bound[1], new_partial_iv=True)
        now = self._time()
        sent = self.engine.notify(observation, response, now, confirmable=confirmable, final=final)
        self._flush(now)
        return sent

    def observations(self, path: str | Sequence[str] | None = None) -> list[Observation]:
        if path is None:
            return self.engine.observations()
        key = tuple(p for p in path.split("/") if p) if isinstance(path, str) else tuple(path)
        return self.engine.observations(key)

    # -- lifecycle ------------------------------------------------------------------------------

    async def close(self) -> None:
        """Fail pending requests, end observations, stop handlers, close the socket."""
        if self._closing:
            return
        self._closing = True
        self._cork = None  # requests held back in this pass are cancelled below: not sent
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        now = self._time()
        self.engine.shutdown(now)
        self._dispatch(now)
        self._send(now)
        if self._sessions is not None:
            self._sessions.close(now)  # close_notify to every peer
            self._send(now)
            await self._sessions.wait_closed()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RequestCancelled("the endpoint is closed"))
        self._pending.clear()
        for observation in self._observations.values():
            observation._end(None)
        self._observations.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._closed = True
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        if self._transport is not None:  # pragma: no cover - fallback transport
            self._transport.close()
            assert self._protocol is not None
            await self._protocol.closed

    # -- the glue -------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:  # pragma: no cover - closed between wake-up and call
            return
        recvfrom = sock.recvfrom
        now = self._time()
        engine = self.engine
        plain = self._plain
        unprotect = None if plain else self.security.unprotect
        received = 0
        budget = self._budget
        drained = False
        for _ in range(budget):
            try:
                data, addr = recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                drained = True
                break
            except OSError as exc:  # ICMP errors reported on the socket (IP_RECVERR)
                self.stats.network_errors += 1
                logger.debug("network error: %r", exc)
                continue
            received += 1
            if unprotect is None:
                engine.receive_datagram(data, addr, now)
            else:
                for plaintext, peer in unprotect(data, addr, now):
                    engine.receive_datagram(plaintext, peer, now)
        # Adaptive batch: grow while wake-ups find more datagrams than the budget (load), shrink
        # to what was there otherwise, so a quiet endpoint rarely pays for a failing read. From a
        # budget of 1 it grows only after _GROW_AFTER wake-ups in a row that used it up: a client
        # endpoint with one request in flight gets exactly one datagram per wake-up and would
        # otherwise pay a failing read (a system call and an exception) every other time.
        # Each time growing finds nothing more (the endpoint really gets one datagram per
        # wake-up), the next attempt waits twice as long, up to _GROW_AFTER_MAX wake-ups: the
        # failing read then costs a client endpoint almost nothing per request. One that finds
        # more resets the wait.
        if drained:
            self._budget = received or 1
            self._full_wakeups = 0
            if self._probing:
                self._probing = False
                if received <= 1 and self._grow_after < _GROW_AFTER_MAX:
                    self._grow_after *= 2
        elif budget > 1:
            if self._probing:
                self._probing = False
                self._grow_after = _GROW_AFTER
            if budget < _BATCH:
                self._budget = budget * 2
        else:
            self._full_wakeups += 1
            if self._full_wakeups >= self._grow_after:
                self._full_wakeups = 0
                self._budget = 2
                self._probing = True
        if received:
            # _flush, inlined (two calls less per wake-up): a client endpoint's plain response
            # resolves its future inside receive_datagram and leaves no event and no datagram.
            event = engine.next_event()
            if event is not None:
                self._dispatch(now, event)
            out = engine.datagrams_to_send(now)
            at = self._timer_at
            if plain:
                if out and not self._closed:
                    self._transmit(out)
                if at is None or engine.deadline_added_before(at):
                    self._rearm_timer(at)
                return
            # A flagged layer with nothing to report (a client endpoint's response: no datagram
            # to send, no deadline changed) is not asked (_timer_moved checks the flag too).
            flag = self._flag
            if out or flag is None or flag.output_pending:
                self._send_protected(out, now)
            # _timer_moved, inlined
            if (
                at is None
                or engine.deadline_added_before(at)
                or ((flag is None or flag.output_pending) and self._security_earlier(at))
            ):
                self._rearm_timer(at)

    def _datagram_received(self, data: bytes, addr: UdpAddress) -> None:
        now = self._time()
        engine = self.engine
        if self._plain:
            engine.receive_datagram(data, addr, now)
        else:
            for plaintext, peer in self.security.unprotect(data, addr, now):
                engine.receive_datagram(plaintext, peer, now)
        # The transport (uvloop's) calls us once per datagram, several times in a row when a
        # wake-up finds several. Batching mode: feed them all to the engine and flush once, from
        # one call_soon per batch. A batch of one switches to flushing at once (a client endpoint
        # with one request in flight: no call_soon per datagram); every _PROBE_EVERY datagrams
        # the endpoint tries batching again.
        if self._batching:
            self._batched += 1
            if not self._flush_pending:
                self._flush_pending = True
                self._loop.call_soon(self._batch_flush)
            return
        self._flush(now)
        self._unbatched += 1
        if self._unbatched >= _PROBE_EVERY:
            self._unbatched = 0
            self._batching = True

    def _batch_flush(self) -> None:
        self._flush_pending = False
        if self._batched <= 1:
            self._batching = False
        self._batched = 0
        if not self._closed:
            self._flush(self._time())

    def _flush(self, now: float) -> None:
        """Dispatch events, send datagrams, re-arm the timer (aioquic's ``transmit``)."""
        self._dispatch(now)
        self._send(now)
        self._arm_timer()

    def _send(self, now: float) -> None:
        out = self.engine.datagrams_to_send(now)
        if not self._plain:
            flag = self._flag
            if out or flag is None or flag.output_pending:
                self._send_protected(out, now)
        elif out and not self._closed:
            self._transmit(out)

    def _send_protected(self, out: list[tuple[bytes, Any]], now: float) -> None:
        """Protect and send the engine's datagrams ``out``, then the layer's own (handshake
        flights, what a completed handshake released) unless its flag says it has none.
        Usually one datagram or none: no list of our own."""
        security = self.security
        if len(out) == 1:
            data, peer = out[0]
            out = security.protect(data, peer, now)
        elif out:
            out = self._protect_all(out, now)
        flag = self._flag
        if flag is None or flag.output_pending:
            more = security.datagrams_to_send(now)
            if more:
                out = out + more if out else more
        if out and not self._closed:
            self._transmit(out)

    def _protect_all(self, out: list[tuple[bytes, Any]], now: float) -> list[tuple[bytes, Any]]:
        protect = self.security.protect
        protected: list[tuple[bytes, Any]] = []
        for data, peer in out:
            protected += protect(data, peer, now)
        return protected

    def _uncork(self) -> None:
        """Send the requests held back in this loop pass (see :meth:`request`)."""
        out, self._cork = self._cork, None
        if out and not self._closed:
            self._transmit(out)

    def _transmit(self, out: list[tuple[bytes, Any]]) -> None:
        """Put ``out`` on the socket; a failure is counted and logged, never raised (buffer
        full, unreachable, ...: UDP may drop, CON retransmits)."""
        sendto = self._sendto
        for data, addr in out:
            try:
                sendto(data, addr)
            except OSError as exc:
                self.stats.network_errors += 1
                logger.debug("send to %r failed: %r", addr, exc)

    def _arm_timer(self) -> None:
        at = self._timer_at
        if self._timer_moved(at):
            self._rearm_timer(at)

    def _timer_moved(self, at: float | None) -> bool:
        """Whether the timer armed at ``at`` may be too late now: nothing armed, the engine
        reports an earlier deadline (``deadline_added_before``), or the security layer's next
        deadline (cheap to ask: it caches it) is earlier. Otherwise the armed timer still fits
        (it may fire early, and then finds nothing due)."""
        if at is None or self.engine.deadline_added_before(at):
            return True
        if self._plain:
            return False
        flag = self._flag
        if flag is not None and not flag.output_pending:
            return False  # the armed timer is no later than the deadline the layer gave last
        return self._security_earlier(at)

    def _security_earlier(self, at: float) -> bool:
        """Whether the security layer's deadline (asked now) is earlier than ``at``."""
        self._security_at = other = self.security.get_timer()
        return other is not None and other < at

    def _rearm_timer(self, at: float | None) -> None:
        """Arm the timer at the engine's (and security layer's) next deadline unless the one
        armed at ``at`` comes first."""
        when = self.engine.get_timer()
        if not self._plain:
            flag = self._flag
            if flag is not None and not flag.output_pending:
                other = self._security_at
            else:
                self._security_at = other = self.security.get_timer()
            if other is not None and (when is None or other < when):
                when = other
        if when is None:
            return
        if at is not None and at <= when:
            return  # an earlier (or equal) wake-up is already scheduled
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closing:
            return
        now = self._time()
        self.engine.handle_timer(now)
        if not self._plain:
            self.security.handle_timer(now)
        self._flush(now)

    def _dispatch(self, now: float, event: CoapEvent | None = None) -> None:
        """Handle the engine's events, starting with ``event`` if the caller took it already."""
        next_event = self.engine.next_event
        if event is None:
            event = next_event()
        while event is not None:
            if type(event) is RequestReceived:
                self._on_request(event.exchange, now)
            elif type(event) is ResponseReceived:
                future = self._pending.pop(event.request_id, None)
                if future is not None and not future.done():
                    future.set_result(event.response)
            elif type(event) is NotificationReceived:
                obs = self._observations.get(event.request_id)
                if obs is not None:
                    obs._push(event.response)
            elif type(event) is RequestFailed:
                future = self._pending.pop(event.request_id, None)
                if future is not None and not future.done():
                    future.set_exception(event.error)
                client_obs = self._observations.pop(event.request_id, None)
                if client_obs is not None:
                    client_obs._end(None, event.error)
            elif type(event) is ObservationEnded:
                client_obs = self._observations.pop(event.request_id, None)
                if client_obs is not None:
                    client_obs._end(event.response)
            elif type(event) is ObserverRemoved:
                removed = event.observation
                if self.oscore is not None:
                    self.oscore.observers.pop((removed.token, removed.remote), None)
                if self._on_observer_removed is not None:
                    try:
                        self._on_observer_removed(removed, event.reason)
                    except Exception:
                        logger.exception("on_observer_removed callback failed")
            event = next_event()

    def _on_request(self, exchange: Exchange, now: float) -> None:
        message = exchange.request
        options = message.options
        if options and options[0][0] <= _OSCORE_OPTION and message.has_option(_OSCORE_OPTION):
            self._on_oscore_request(exchange, now)
            return
        oscore = self.oscore
        if oscore is not None and oscore.required and exchange.remote in oscore.required:
            self.stats.requests_handled += 1  # a peer that must use OSCORE (lwm2m.io.oscore)
            self._respond(exchange, Message(Code.UNAUTHORIZED, b"OSCORE required"), now)
            return
        self.stats.requests_handled += 1
        routed = self.site.route(message.uri_path)
        if routed is None:
            self.stats.unrouted += 1
            self.engine.send_response(exchange, Message(Code.NOT_FOUND), now)
            return
        handler, rest = routed
        remote = exchange.remote
        identity = None if self._plain else self.security.peer_identity(remote)
        request: Any = _new_object(_MutableCoapRequest)
        request.message = message
        request.remote = remote
        request.peer_identity = identity
        request.path = rest
        request.__class__ = CoapRequest
        try:
            result = handler(request)
        except Exception as exc:
            self._respond(exchange, self._error_response(exc), now)
            return
        if type(result) is Message:
            try:  # _respond, inlined for the usual direct answer
                self.engine.send_response(exchange, result, now)
            except CoapError:
                self._unusable_response(exchange, now)
            return
        assert not isinstance(result, Message)
        # The handler's coroutine becomes the task itself (no wrapper coroutine), so cancelling it
        # before it starts closes it cleanly.
        task = asyncio.ensure_future(result, loop=self._loop)
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._handler_done, exchange))

    def _on_oscore_request(self, exchange: Exchange, now: float) -> None:
        self.stats.requests_handled += 1
        layer = self.oscore
        if layer is None:  # RFC 8613 §2: a critical option this endpoint does not support
            if exchange.request.mtype == MessageType.NON:
                return  # RFC 7252 §5.4.1: a NON message is rejected, not answered
            self._respond(exchange, Message(Code.BAD_OPTION, b"OSCORE is not supported"), now)
            return
        # RFC 8613 §4.1.3.6: the server ignores an Outer No-Response (the inner one is the
        # client's word; the CoAP engine must still send the protected answer)
        exchange._no_response = 0
        # The usual case runs within this call, like a plain request: a held context and a
        # handler answering directly. A context to load, or an awaitable answer, takes a task.
        result: Message | Awaitable[Message]
        try:
            verified = layer.verify_held(exchange.request)
            if verified is None:
                result = self._serve_oscore(exchange, layer)
            else:
                result = self._oscore_dispatch(exchange, layer, *verified)
        except VerificationError as exc:
            result = self._oscore_refused(exchange, exc)
        except OscoreError:  # the answer cannot be protected (e.g. the context is exhausted)
            self.stats.handler_errors += 1
            logger.exception("OSCORE answer to %s cannot be protected", exchange.remote)
            result = Message(Code.INTERNAL_SERVER_ERROR)
        if type(result) is Message:
            self._respond(exchange, result, now)
            return
        assert not isinstance(result, Message)
        task = asyncio.ensure_future(result, loop=self._loop)
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._handler_done, exchange))

    @staticmethod
    def _oscore_refused(exchange: Exchange, exc: VerificationError) -> Message:
        """The unprotected error response to a request that does not verify (§8.2)."""
        logger.info("OSCORE request from %s refused: %s", exchange.remote, exc)
        return exc.error_response(exchange.request)

    async def _serve_oscore(self, exchange: Exchange, layer: OscoreLayer) -> Message:
        """Load the context, verify, serve and protect one OSCORE request (§8.2, §8.3)."""
        try:
            verified = await layer.verify_request(exchange.request)
        except VerificationError as exc:
            return self._oscore_refused(exchange, exc)
        result = self._oscore_dispatch(exchange, layer, *verified)
        return result if type(result) is Message else await result  # type: ignore[misc]

    def _oscore_dispatch(
        self,
        exchange: Exchange,
        layer: OscoreLayer,
        inner: Message,
        context: SecurityContext,
        binding: RequestBinding,
    ) -> Message | Awaitable[Message]:
        """Serve a verified inner request: its protected answer, or an awaitable of it."""
        challenge = layer.freshness_challenge(context, inner, binding)
        if challenge is not None:
            return challenge
        layer.bind(exchange.remote, context)
        if inner.block1 is not None:  # fragmented before protection (RFC 8613 §4.1.3.4.1)
            whole = self._inner_block1(exchange, context, inner)
            if whole is None or whole.code >> 5 != 0:
                answer = whole if whole is not None else Message(Code.CONTINUE)
                if whole is None:
                    answer.block1 = inner.block1
                return context.protect_response(answer, binding)
            inner = whole
        routed = self.site.route(inner.uri_path)
        if routed is None:
            self.stats.unrouted += 1
            return self._oscore_answer(
                exchange, layer, inner, context, binding, Message(Code.NOT_FOUND)
            )
        handler, rest = routed
        request: Any = _new_object(_MutableCoapRequest)
        request.message = inner
        request.remote = exchange.remote
        request.peer_identity = PeerIdentity("oscore", context.recipient_id)
        request.path = rest
        request.__class__ = CoapRequest
        try:
            result = handler(request)
        except Exception as exc:
            result = self._error_response(exc)
        if type(result) is Message:
            return self._oscore_answer(exchange, layer, inner, context, binding, result)
        assert not isinstance(result, Message)
        return self._oscore_later(exchange, layer, inner, context, binding, result)

    def _inner_block1(
        self, exchange: Exchange, context: SecurityContext, inner: Message
    ) -> Message | None:
        """Reassemble an Inner Block1 transfer (RFC 7959 §2.5 after OSCORE verification):
        None while blocks are missing (answer 2.31 Continue), an error response (4.08, 4.13),
        or the whole request once its last block came."""
        block = inner.block1
        assert block is not None
        key = (exchange.remote, id(context), inner.uri_path, inner.request_tag)
        uploads = self._inner_uploads
        limit = self.engine.config.max_body_size
        if block.num == 0:
            uploads.pop(key, None)
            announced = inner.size1
            if announced is not None and announced > limit:  # RFC 7959 §4: refused at once
                refused = Message(Code.REQUEST_ENTITY_TOO_LARGE)
                refused.size1 = limit
                return refused
            if len(uploads) >= _INNER_UPLOADS:
                del uploads[next(iter(uploads))]  # the oldest transfer gives way
            uploads[key] = bytearray()
        body = uploads.get(key)
        if body is None or len(body) != block.start:
            uploads.pop(key, None)
            return Message(Code.REQUEST_ENTITY_INCOMPLETE)  # RFC 7959 §2.9.2
        body += inner.payload
        if len(body) > limit:
            del uploads[key]
            refused = Message(Code.REQUEST_ENTITY_TOO_LARGE)
            refused.size1 = limit  # RFC 7959 §2.9.3
            return refused
        if block.more:
            return None
        del uploads[key]
        whole = inner.copy()
        whole.payload = bytes(body)
        whole.block1 = None
        whole.size1 = None
        return whole

    async def _oscore_later(
        self,
        exchange: Exchange,
        layer: OscoreLayer,
        inner: Message,
        context: SecurityContext,
        binding: RequestBinding,
        pending: Awaitable[Message],
    ) -> Message:
        try:
            response = await pending
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            response = self._error_response(exc)
        return self._oscore_answer(exchange, layer, inner, context, binding, response)

    @staticmethod
    def _oscore_answer(
        exchange: Exchange,
        layer: OscoreLayer,
        inner: Message,
        context: SecurityContext,
        binding: RequestBinding,
        response: Message,
    ) -> Message:
        """Protect the answer (§8.3); an Observe registration it accepts is remembered, so
        that its notifications are protected too."""
        if (
            exchange._observe == b""  # the engine registers it (the outer Observe 0)
            and inner.observe == 0
            and response.code >> 5 == 2
            and response.observe is not None
        ):
            layer.observers[(exchange.request.token, exchange.remote)] = (context, binding)
        return context.protect_response(response, binding)

    def _handler_done(self, exchange: Exchange, task: asyncio.Future[Message]) -> None:
        self._tasks.discard(task)
        if self._closing:
            if not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" noise
            return
        if task.cancelled():
            response = Message(Code.SERVICE_UNAVAILABLE)
        else:
            exc = task.exception()
            response = task.result() if exc is None else self._error_response(exc)
        now = self._time()
        self._respond(exchange, response, now)
        self._flush(now)

    def _respond(self, exchange: Exchange, response: Message, now: float) -> None:
        try:
            self.engine.send_response(exchange, response, now)
        except CoapError:
            self._unusable_response(exchange, now)

    def _unusable_response(self, exchange: Exchange, now: float) -> None:
        """The engine refused the handler's response (logged from the ``except`` block):
        answer 5.00 instead."""
        self.stats.handler_errors += 1
        logger.exception("handler returned an unusable response")
        exchange._responded = False
        self.engine.send_response(exchange, Message(Code.INTERNAL_SERVER_ERROR), now)

    def _error_response(self, exc: BaseException) -> Message:
        if isinstance(exc, ErrorResponse):
            return Message(exc.code, exc.diagnostic.encode())
        self.stats.handler_errors += 1
        logger.error("request handler failed", exc_info=exc)
        return Message(Code.INTERNAL_SERVER_ERROR)


def uvloop_available() -> bool:
    """Whether uvloop can be imported (it is an optional dependency)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def loop_factory(prefer_uvloop: bool = True) -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory for ``asyncio.Runner``/``asyncio.run(loop_factory=...)``: uvloop's if
    wanted and installed (imported lazily), else the default one."""
    if prefer_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
    return asyncio.new_event_loop
