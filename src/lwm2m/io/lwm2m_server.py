"""The LwM2M server as an asyncio service on the CoAP endpoint (layer L3).

Implements, over :class:`~lwm2m.io.coap_endpoint.CoapEndpoint`:

- the Client Registration interface (LwM2M-TS-Core 1.1 §6.2, Transport §6.2): ``/rd`` Register,
  ``/rd/{id}`` Update and De-register, validated by :mod:`lwm2m.server.registration`, with the
  endpoint/identity rule and the authorizer hook of :mod:`lwm2m.server.security`; lifetimes
  expire with an :class:`~lwm2m.server.events.Expired` event (a sweep every
  ``expiry_interval`` seconds, or :meth:`LwM2MServer.expire_registrations`);
- the Device Management and Service Enablement interface (§6.3) and Information Reporting
  (§6.4) as coroutines: :meth:`~LwM2MServer.read`, :meth:`~LwM2MServer.discover`,
  :meth:`~LwM2MServer.write`, :meth:`~LwM2MServer.write_attributes`,
  :meth:`~LwM2MServer.execute`, :meth:`~LwM2MServer.create`, :meth:`~LwM2MServer.delete`,
  :meth:`~LwM2MServer.read_composite`, :meth:`~LwM2MServer.write_composite`,
  :meth:`~LwM2MServer.observe`, :meth:`~LwM2MServer.observe_composite`,
  :meth:`~LwM2MServer.cancel_observation`. They return the
  :class:`~lwm2m.operations.responses.Response` with nodes decoded with the object versions the
  client registered, and raise :mod:`lwm2m.server.errors` (``ErrorResponse`` with the 4.xx code,
  ``RequestTimeout``, ``ClientSleeping``, ``NotRegistered``, ...);
- Send (§6.4.6): ``POST /dp`` → :class:`~lwm2m.server.events.SendReceived`, 2.04; 4.04 from a
  client that is not registered;
- queue mode (Transport §6.5): requests to a sleeping client are held and released one at a time
  once it is heard from (:mod:`lwm2m.server.queue`), with awake / sleeping events.

Events go to subscribers (:meth:`LwM2MServer.subscribe`, an async iterator with
:meth:`Subscription.wait_for`) and to callbacks (:meth:`LwM2MServer.add_listener`).

State lives in a :class:`~lwm2m.store.base.RegistrationStore` (memory by default). With a
persistent store the server survives a restart: :meth:`LwM2MServer.start` re-adopts every stored
observation's token in the CoAP layer, so notifications of observations made before the restart
are recognised (see :func:`adopt_observation` — the seam the CoAP endpoint should provide).

Time: registration times come from ``clock`` (wall-clock seconds by default, so they survive a
restart); the CoAP layer keeps its own monotonic time.

**DTLS clients from a security store.** :func:`dtls_layer_from_store` builds the server's
``coaps://`` layer (:class:`~lwm2m.io.coaps.DtlsSecurityLayer`) from a
:class:`~lwm2m.store.base.SecurityStore` (memory or SQLite): a PSK identity is looked up in the
store when its ClientKeyExchange arrives (an unknown identity fails the handshake); raw public
keys (RFC 7250) and X.509 chains (validated against ``trust_anchors``) are accepted when the
server has a signing key (and a certificate), and the store decides at Register time whether the
key or the certificate name belongs to ``ep``. With ``allow_plain=True`` the one socket also
serves NoSec clients (:class:`PlainOrDtls`). The same store goes to ``LwM2MServer(
security_store=...)``: a Register (Update, De-register, Send) whose ``ep`` does not match the
authenticated identity per the store — the entry of ``ep``, or the entry that owns the identity,
or else equality with the PSK identity / certificate CN or subjectAltName — is answered 4.00 and
logged on one WARNING line naming ``ep`` and the identity (:func:`check_endpoint`). A NoSec
client passes only when ``ep`` has a NoSec entry, or has no entry and ``allow_plain`` is set;
an endpoint with a secured entry never registers in plain CoAP. Usage::

    store = MemorySecurityStore([SecurityInfo.psk("dev1", "dev1", key)])
    server = LwM2MServer(security_store=store, security=dtls_layer_from_store(store))
    await server.start(("0.0.0.0", 5684))
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
import inspect
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.coap.config import CoapConfig
from lwm2m.coap.errors import CoapError
from lwm2m.coap.errors import RequestCancelled as CoapRequestCancelled
from lwm2m.coap.errors import RequestRejected as CoapRequestRejected
from lwm2m.coap.errors import RequestTimeout as CoapRequestTimeout
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Attributes
from lwm2m.dtls import (
    CertificateType,
    DtlsCredentials,
    PeerVerifier,
    PskCredential,
    RawPublicKeyVerifier,
    SigningKey,
    SoftwarePsk,
    SoftwarePskStore,
    X509Verifier,
)
from lwm2m.dtls import PeerIdentity as DtlsPeerIdentity
from lwm2m.dtls.errors import AlertUnsupportedCertificate
from lwm2m.errors import (
    BadRequest,
    CodecError,
    Forbidden,
    NotFound,
    OscoreError,
    RequestError,
)
from lwm2m.io.coap_endpoint import ClientObservation, CoapEndpoint, CoapRequest
from lwm2m.io.coap_transport import PeerIdentity as TransportIdentity
from lwm2m.io.coap_transport import SecurityLayer, UdpAddress
from lwm2m.io.coaps import DtlsLayerConfig, DtlsSecurityLayer
from lwm2m.io.oscore import OscoreLayer, UnprotectedResponse, context_loader
from lwm2m.model.nodes import Node, ObjectInstance, Resource
from lwm2m.model.path import Path
from lwm2m.model.registry import ModelRegistry, ObjectModel, default_registry
from lwm2m.operations.coap_mapping import decode_response, decode_uplink, encode_request
from lwm2m.operations.requests import (
    Create,
    Delete,
    Deregister,
    Discover,
    DownlinkRequest,
    Execute,
    Observe,
    ObserveComposite,
    Read,
    ReadComposite,
    Register,
    Send,
    Update,
    Write,
    WriteAttributes,
    WriteComposite,
)
from lwm2m.operations.responses import Response
from lwm2m.server.errors import (
    ClientSleeping,
    InvalidResponse,
    NotRegistered,
    RequestCancelled,
    RequestFailed,
    RequestRejected,
    RequestTimeout,
)
from lwm2m.server.events import (
    Awake,
    Deregistered,
    Expired,
    NotificationReceived,
    ObservationEnded,
    Registered,
    SendReceived,
    ServerEvent,
    Sleeping,
    Updated,
)
from lwm2m.server.observation import Observation
from lwm2m.server.queue import QueueFull, QueueMode
from lwm2m.server.registration import (
    Address,
    LinkCache,
    ModelViews,
    Registration,
    ServerConfig,
    apply_update,
    new_registration,
)
from lwm2m.server.requests import check_response, decode_client_response, operation_name
from lwm2m.server.security import (
    Authorizer,
    IdentityKind,
    OscoreInfo,
    PeerIdentity,
    RequestContext,
    SecurityInfo,
    check_endpoint_identity,
)
from lwm2m.store.base import Deregistration, RegistrationStore, SecurityStore
from lwm2m.store.memory import MemoryRegistrationStore

__all__ = [
    "ClientVerifier",
    "EventHub",
    "LwM2MServer",
    "ObservationHandle",
    "PlainOrDtls",
    "Subscription",
    "adopt_observation",
    "check_endpoint",
    "dtls_layer_from_store",
    "oscore_layer_from_store",
    "peer_identity",
    "public_key_spki",
    "remote_address",
]

log = logging.getLogger("lwm2m.server")

_FROM_ENDPOINT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "lwm2m_server_from_endpoint", default=False
)
"""Set while a request from the CoAP endpoint is handled: ``Registered`` is then published
after the 2.01 is sent; ``handle_uplink`` called directly publishes at once."""

E = TypeVar("E")
Ev = TypeVar("Ev")
T = TypeVar("T")

_LINK = int(ContentFormat.LINK)


# -- events -------------------------------------------------------------------------------------


class Subscription(Generic[E]):
    """An async iterator over the events published after it was created.

    Bounded: when the consumer lags more than ``maxsize`` events, the oldest are dropped and
    counted in :attr:`dropped`. Iteration ends when the service stops or :meth:`close` is called.
    """

    def __init__(self, hub: EventHub[E], maxsize: int) -> None:
        self._hub = hub
        self._queue: deque[E] = deque()
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0
        """Events dropped because the consumer lagged."""

    def _put(self, event: E) -> None:
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        """Stop receiving events; iteration ends once the queued ones are consumed."""
        self._closed = True
        self._hub._subscriptions.discard(self)
        self._wake()

    def __aiter__(self) -> AsyncIterator[E]:
        return self

    async def __anext__(self) -> E:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    async def wait_for(
        self,
        kind: type[Ev] | tuple[type[Ev], ...],
        predicate: Callable[[Ev], bool] | None = None,
    ) -> Ev:
        """The next event of type ``kind`` (matching ``predicate``); other events are consumed
        and skipped. Bound the wait with ``asyncio.timeout``. Raises LookupError when the
        subscription ends first."""
        async for event in self:
            if isinstance(event, kind) and (predicate is None or predicate(event)):
                return event
        raise LookupError("the subscription ended")

    def __enter__(self) -> Subscription[E]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class EventHub(Generic[E]):
    """Publishes events to subscriptions and callbacks (sync, or async run as tasks)."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription[E]] = set()
        self._listeners: list[Callable[[E], object]] = []
        self._tasks: set[asyncio.Future[Any]] = set()

    def subscribe(self, maxsize: int = 10_000) -> Subscription[E]:
        subscription = Subscription(self, maxsize)
        self._subscriptions.add(subscription)
        return subscription

    def add_listener(self, callback: Callable[[E], object]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that removes it."""
        self._listeners.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return remove

    def publish(self, event: E) -> None:
        for callback in list(self._listeners):
            try:
                result = callback(event)
            except Exception:
                log.exception("event listener failed on %s", type(event).__name__)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._listener_done)
        for subscription in self._subscriptions:
            subscription._put(event)

    def _listener_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("event listener failed", exc_info=task.exception())

    def close(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.close()
        for task in self._tasks:
            task.cancel()


# -- CoAP seams ---------------------------------------------------------------------------------


def peer_identity(identity: TransportIdentity | None) -> PeerIdentity | None:
    """The server's view of the identity the transport authenticated (None for plain UDP).

    PSK identities become text, raw public keys their SHA-256 fingerprint (hex), certificate
    subjects stay text, other byte values become hex.
    """
    if identity is None:
        return None
    try:
        kind = IdentityKind(identity.kind)
    except ValueError:
        log.warning("unknown identity kind %r: treated as no identity", identity.kind)
        return None
    value = identity.value
    if kind is IdentityKind.PSK:
        return PeerIdentity.psk(value)
    if isinstance(value, bytes):
        text = hashlib.sha256(value).hexdigest() if kind is IdentityKind.RPK else value.hex()
        return PeerIdentity(kind, text)
    if kind is IdentityKind.X509:
        sans = getattr(identity.details, "subject_alt_names", ())
        alt_names = tuple(str(name) for name in sans if name != value)
        return PeerIdentity(kind, value, alt_names)
    return PeerIdentity(kind, value)


def _address(remote: Any) -> Address:
    if isinstance(remote, tuple) and len(remote) >= 2:
        return (str(remote[0]), int(remote[1]))
    raise TypeError(f"no UDP address for peer {remote!r}")  # pragma: no cover - DTLS later


def remote_address(endpoint: CoapEndpoint, remote: Any) -> Address:
    """The current ``(host, port)`` of a request's peer key: with RFC 9146 Connection IDs the
    key is a :class:`~lwm2m.io.coaps.SessionKey` that keeps the handshake's address, and the
    security layer knows where the client is now."""
    address_of = getattr(endpoint.security, "address_of", None)
    if address_of is not None:
        current = address_of(remote)
        if current is not None:
            return _address(current)
    return _address(remote)


# -- DTLS clients from a security store -----------------------------------------------------------


async def check_endpoint(
    store: Any,
    endpoint: str,
    identity: PeerIdentity | None,
    *,
    plain_allowed: bool = True,
) -> SecurityInfo | None:
    """The endpoint binding rule with a :class:`~lwm2m.store.base.SecurityStore` (``store``,
    None: equality only): the entry of ``endpoint`` decides; without one, an identity that the
    store gives to another endpoint is refused; otherwise :func:`~lwm2m.server.security.
    check_endpoint_identity` applies (equality; NoSec when ``plain_allowed``). Raises
    BadRequest (4.00, logged); returns the entry used."""
    info: SecurityInfo | None = None
    if store is not None:
        info = await store.get_by_endpoint(endpoint)
        if info is None and identity is not None:
            info = await store.get_by_identity(identity)
    check_endpoint_identity(endpoint, identity, info, plain_allowed=plain_allowed)
    return info


def public_key_spki(data: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo in ``data``: a PEM or DER public key, or the public key of
    a PEM or DER certificate, which must be a P-256 key (the only curve of the DTLS stack's
    ECDHE_ECDSA suites: another key could never authenticate). Raises ValueError (naming no
    content)."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            if b"CERTIFICATE" in data.split(b"\n", 1)[0]:
                key: Any = x509.load_pem_x509_certificate(data).public_key()
            else:
                key = serialization.load_pem_public_key(data)
        else:
            try:
                key = serialization.load_der_public_key(data)
            except ValueError:
                key = x509.load_der_x509_certificate(data).public_key()
        der: bytes = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, TypeError, AttributeError):
        raise ValueError("not a public key or certificate (PEM or DER)") from None
    if not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)):
        raise ValueError("not a P-256 (secp256r1) key: the only curve DTLS uses here")
    return der


class ClientVerifier:
    """A DTLS server's judge of client certificates: raw public keys (any well-formed P-256 key:
    possession is proved by the handshake, the security store decides at Register time whether
    it belongs to ``ep``) and/or X.509 chains validated against ``trust_anchors`` (the store, or
    equality with ``ep``, decides on the CN / subjectAltName)."""

    __slots__ = ("_rpk", "_x509", "certificate_types")

    def __init__(
        self,
        *,
        trust_anchors: Sequence[x509.Certificate] = (),
        raw_public_keys: bool = True,
        validation_time: Callable[[], datetime] | None = None,
    ) -> None:
        self._x509 = (
            X509Verifier(trust_anchors=tuple(trust_anchors), validation_time=validation_time)
            if trust_anchors
            else None
        )
        self._rpk = RawPublicKeyVerifier() if raw_public_keys else None
        types: list[int] = []
        if self._x509 is not None:
            types.append(CertificateType.X509)
        if self._rpk is not None:
            types.append(CertificateType.RAW_PUBLIC_KEY)
        self.certificate_types: tuple[int, ...] = tuple(types)

    def verify(self, certificate_type: int, certificates: tuple[bytes, ...]) -> DtlsPeerIdentity:
        if certificate_type == CertificateType.X509 and self._x509 is not None:
            return self._x509.verify(certificate_type, certificates)
        if certificate_type == CertificateType.RAW_PUBLIC_KEY and self._rpk is not None:
            return self._rpk.verify(certificate_type, certificates)
        raise AlertUnsupportedCertificate("certificate type not accepted")

    def __repr__(self) -> str:
        kinds = ", ".join(CertificateType(t).name for t in self.certificate_types)
        return f"ClientVerifier({kinds})"


_DTLS_CONTENT_TYPES = range(20, 26)  # change_cipher_spec .. tls12_cid (RFC 9146)
_MAX_PLAIN_PEERS = 65536


class PlainOrDtls:
    """A server's ``coaps://`` layer that also serves NoSec clients on the same socket.

    DTLS records (content types 20-25) go to the :class:`~lwm2m.io.coaps.DtlsSecurityLayer`;
    CoAP datagrams (version 1) from an address without a DTLS session are plain CoAP, with no
    identity. A plaintext from an address that has a DTLS session is dropped (it cannot pass for
    that secured client), and replies to an address with a DTLS session always go encrypted.
    Whether a NoSec client may register is the server's decision (``allow_plain``, NoSec
    entries of the security store).
    """

    scheme = "coaps"

    def __init__(self, dtls: DtlsSecurityLayer) -> None:
        self.dtls = dtls
        self._plain: dict[tuple[Any, ...], None] = {}
        self.dropped = 0
        """Plaintexts dropped because their address has a DTLS session."""

    def _secured(self, peer: Any) -> bool:
        return self.dtls.address_of(peer) is not None or self.dtls.peer_for(peer) is not None

    def connect(self, remote: UdpAddress, now: float) -> Any:
        key = (remote[0], remote[1])
        if key in self._plain and not self._secured(key):
            return key
        return self.dtls.connect(remote, now)

    def unprotect(self, data: bytes, addr: UdpAddress, now: float) -> list[tuple[bytes, Any]]:
        if data and data[0] in _DTLS_CONTENT_TYPES:
            return self.dtls.unprotect(data, addr, now)
        if not data or data[0] >> 6 != 1:
            return []
        key = (addr[0], addr[1])
        if self.dtls.peer_for(key) is not None:
            self.dropped += 1
            return []
        plain = self._plain
        if key not in plain:
            if len(plain) >= _MAX_PLAIN_PEERS:
                del plain[next(iter(plain))]
            plain[key] = None
        return [(data, key)]

    def protect(self, data: bytes, peer: Any, now: float) -> list[tuple[bytes, UdpAddress]]:
        if peer in self._plain and not self._secured(peer):
            return [(data, peer)]
        return self.dtls.protect(data, peer, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, UdpAddress]]:
        return self.dtls.datagrams_to_send(now)

    def peer_identity(self, peer: Any) -> TransportIdentity | None:
        return self.dtls.peer_identity(peer)

    def get_timer(self) -> float | None:
        return self.dtls.get_timer()

    def handle_timer(self, now: float) -> None:
        self.dtls.handle_timer(now)

    def attach(self, wakeup: Callable[[], None]) -> None:
        self.dtls.attach(wakeup)

    def received(self, now: float) -> list[tuple[bytes, Any]]:
        return self.dtls.received(now)

    def failed_peers(self) -> list[tuple[Any, Exception]]:
        return self.dtls.failed_peers()

    def close(self, now: float) -> None:
        self.dtls.close(now)

    async def wait_closed(self) -> None:
        await self.dtls.wait_closed()

    def address_of(self, peer: Any) -> UdpAddress | None:
        current = self.dtls.address_of(peer)
        if current is None and peer in self._plain:
            return peer  # type: ignore[no-any-return]
        return current

    def peer_for(self, address: UdpAddress) -> Any | None:
        return self.dtls.peer_for(address)

    def __repr__(self) -> str:
        return f"<PlainOrDtls {self.dtls!r} plain_peers={len(self._plain)}>"


def dtls_layer_from_store(
    store: Any,
    *,
    signing_key: SigningKey | None = None,
    certificate_chain: Sequence[x509.Certificate] = (),
    trust_anchors: Sequence[x509.Certificate] = (),
    raw_public_keys: bool | None = None,
    allow_plain: bool = False,
    config: DtlsLayerConfig | None = None,
) -> DtlsSecurityLayer | PlainOrDtls:
    """The server-role ``coaps://`` layer of an LwM2M (bootstrap) server whose clients are in
    ``store`` (a :class:`~lwm2m.store.base.SecurityStore`), see the module docstring.

    :param signing_key: the server's own ECDSA P-256 key, needed for RPK and X.509 clients (the
        ECDHE_ECDSA suites); without ``certificate_chain`` the server authenticates with its raw
        public key.
    :param certificate_chain: the server's certificate chain, leaf first.
    :param trust_anchors: accept X.509 clients whose chain validates against these.
    :param raw_public_keys: accept RPK clients (default: when there is a ``signing_key``).
    :param allow_plain: serve NoSec clients on the same socket (:class:`PlainOrDtls`).
    :param config: layer settings (timers, Connection IDs, key log, ...).

    PSK credentials loaded from the store are cached by the layer (bounded): a changed key
    takes effect for identities not loaded yet, or with a new layer.
    """
    if certificate_chain and signing_key is None:
        raise ValueError("a certificate chain needs the server's signing key")
    rpk = signing_key is not None if raw_public_keys is None else raw_public_keys
    if (rpk or trust_anchors) and signing_key is None:
        raise ValueError("RPK and X.509 clients need the server's signing key")
    verifier: PeerVerifier | None = None
    if rpk or trust_anchors:
        verifier = ClientVerifier(trust_anchors=trust_anchors, raw_public_keys=rpk)
    elif signing_key is not None:
        raise ValueError("a signing key without RPK or X.509 clients to accept")

    async def psk_loader(identity: bytes) -> PskCredential | None:
        info: SecurityInfo | None = await store.get_by_identity(PeerIdentity.psk(identity))
        if info is None or info.psk_key is None:
            log.info("DTLS handshake with unknown PSK identity %s", PeerIdentity.psk(identity))
            return None
        return SoftwarePsk(identity, info.psk_key.reveal())

    credentials = DtlsCredentials(
        psk_store=SoftwarePskStore(),
        signing_key=signing_key,
        certificate_chain=tuple(certificate_chain),
        peer_verifier=verifier,
    )
    layer = DtlsSecurityLayer(server_credentials=credentials, config=config, psk_loader=psk_loader)
    return PlainOrDtls(layer) if allow_plain else layer


def oscore_layer_from_store(store: SecurityStore) -> OscoreLayer:
    """The OSCORE layer of an LwM2M (bootstrap) server whose clients are in ``store``: a
    request's ``kid`` is looked up as the identity ``oscore:<Sender ID hex>``, and its entry's
    :class:`~lwm2m.server.security.OscoreInfo` gives the context (RFC 8613 §3.2). A context
    loaded once is kept; the first request of each must prove freshness with Echo (RFC 9175,
    :mod:`lwm2m.io.oscore`)."""

    async def lookup(kid: bytes) -> OscoreInfo | None:
        info = await store.get_by_identity(PeerIdentity(IdentityKind.OSCORE, kid.hex()))
        return None if info is None else info.oscore

    return OscoreLayer(context_loader(lookup))


def adopt_observation(
    endpoint: CoapEndpoint, request: Message, remote: Address
) -> ClientObservation:
    """Make the CoAP endpoint accept notifications for ``request.token``, an observation this
    process did not send (it was made before a restart and kept in a persistent store).

    Uses ``endpoint.adopt_observation(request, remote) -> ClientObservation`` when the CoAP
    adapter offers it (the seam asked of :mod:`lwm2m.io.coap_endpoint`, backed by an engine call
    registering an established observer-role request for an existing token, whose first
    notification is fresh whatever its sequence number). Until then this fallback does exactly
    that on the engine's internals; the restart tests (``tests/server``) exercise it.
    """
    adopt = getattr(endpoint, "adopt_observation", None)
    if adopt is not None:  # pragma: no cover - used once the CoAP layer provides it
        adopted: ClientObservation = adopt(request, remote)
        return adopted
    from lwm2m.coap import engine as engine_module
    from lwm2m.coap.observe import OBSERVE_FRESHNESS

    engine = endpoint.engine
    now = endpoint._loop.time()
    peer = engine._peer_for(remote, now)
    request.observe = 0
    pending = engine_module._ClientRequest(next(engine._request_ids), peer, request, request.token)
    pending.observing = True
    pending.established = True
    pending.delivered = True
    pending.state = engine_module._OBSERVING
    pending.obs_seq = 0
    pending.obs_time = now - 2 * OBSERVE_FRESHNESS  # any sequence number counts as fresh
    peer.refs += 1
    engine._by_token[pending.token] = pending
    engine._requests[pending.id] = pending
    observation = ClientObservation(endpoint, pending.id, endpoint._max_queue)
    endpoint._observations[pending.id] = observation
    return observation


# -- observations -------------------------------------------------------------------------------


class ObservationHandle:
    """An observation made by :meth:`LwM2MServer.observe` / :meth:`~LwM2MServer.
    observe_composite`: the initial :attr:`response` and an async iterator of notifications
    (decoded :class:`Response` s; the newest ``maxsize`` are kept if the consumer lags).
    Notifications are also published as :class:`NotificationReceived` events."""

    def __init__(
        self,
        server: LwM2MServer,
        observation: Observation,
        registration: Registration,
        response: Response | None,
        maxsize: int = 64,
    ) -> None:
        self._server = server
        self.observation = observation
        """The observation record (token, paths, registration id)."""
        self.registration = registration
        self.response = response
        """The first response (None for an observation re-adopted after a restart)."""
        self._queue: deque[Response] = deque(maxlen=maxsize)
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self.end_reason: str | None = None
        self._coap: ClientObservation | None = None
        self._pump: asyncio.Future[None] | None = None

    @property
    def token(self) -> bytes:
        return self.observation.token

    @property
    def active(self) -> bool:
        return not self._ended

    def _push(self, response: Response) -> None:
        self._queue.append(response)
        self._wake()

    def _end(self, reason: str) -> None:
        if not self._ended:
            self._ended = True
            self.end_reason = reason
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> AsyncIterator[Response]:
        return self

    async def __anext__(self) -> Response:
        while not self._queue:
            if self._ended:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    async def cancel(self, *, proactive: bool = True) -> None:
        """Cancel the observation (see :meth:`LwM2MServer.cancel_observation`)."""
        await self._server.cancel_observation(self.token, proactive=proactive)


class _Held:
    """A request waiting for a queue-mode client (hashable by identity)."""

    __slots__ = ("future", "granted")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future
        self.granted = False


# -- the service --------------------------------------------------------------------------------


class LwM2MServer:
    """An LwM2M server: ``/rd`` and ``/dp`` resources plus a request API (see module doc).

    :param store: registrations and observations (memory by default).
    :param registry: object definitions; payloads are decoded with :meth:`ModelRegistry.view`
        of the versions each client registered.
    :param config: registration policy and queue-mode timing.
    :param authorizer: optional hook; refusing answers 4.03.
    :param security_store: optional endpoint → identity table for the endpoint/identity check
        (and, through :func:`dtls_layer_from_store`, the DTLS credentials of the clients).
    :param allow_plain: with a ``security_store``: whether a NoSec client without an entry may
        register (one with a NoSec entry always may, one with a secured entry never does).
    :param clock: wall-clock seconds for registration times and expiry.
    :param expiry_interval: seconds between lifetime sweeps (None: only on demand).
    :param coap_config: configuration of the CoAP engine the server creates.
    :param security: the CoAP endpoint's security layer (plain UDP by default).

    Usage::

        async with LwM2MServer() as server:
            await server.start(("0.0.0.0", 5683))
            with server.subscribe() as events:
                registered = await events.wait_for(Registered)
            response = await server.read(registered.registration.endpoint, Path(3, 0))
    """

    def __init__(
        self,
        *,
        store: RegistrationStore | None = None,
        registry: ModelRegistry | None = None,
        config: ServerConfig | None = None,
        authorizer: Authorizer | None = None,
        security_store: SecurityStore | None = None,
        allow_plain: bool = True,
        clock: Callable[[], float] = time.time,
        expiry_interval: float | None = 1.0,
        coap_config: CoapConfig | None = None,
        security: SecurityLayer | None = None,
    ) -> None:
        self.store: RegistrationStore = store if store is not None else MemoryRegistrationStore()
        self.registry = registry if registry is not None else default_registry()
        self.config = config if config is not None else ServerConfig()
        self.authorizer = authorizer
        self.security_store = security_store
        self.allow_plain = allow_plain
        self.clock = clock
        self.models = ModelViews(self.registry)
        self.links = LinkCache()
        self.events: EventHub[ServerEvent] = EventHub()
        self._expiry_interval = expiry_interval
        self._coap_config = coap_config
        self._security = security
        self._endpoint: CoapEndpoint | None = None
        self._queue: QueueMode[_Held] = QueueMode(
            self.config.awake_time, self.config.max_held_requests
        )
        self._queue_timer: asyncio.TimerHandle | None = None
        self._queue_timer_at: float | None = None
        self._handles: dict[bytes, ObservationHandle] = {}
        self._pumps: set[asyncio.Task[None]] = set()
        self._expiry_task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def endpoint(self) -> CoapEndpoint:
        """The CoAP endpoint (after :meth:`start`)."""
        if self._endpoint is None:
            raise RuntimeError("the server is not started")
        return self._endpoint

    @property
    def local_address(self) -> Address:
        """The bound ``(host, port)``."""
        return _address(self.endpoint.local_address)

    async def start(self, bind: tuple[str, int] = ("127.0.0.1", 5683)) -> None:
        """Bind the UDP socket, serve ``/rd`` and ``/dp``, re-adopt stored observations (their
        notifications are recognised after a restart) and start the lifetime sweep."""
        if self._endpoint is not None:
            raise RuntimeError("the server is already started")
        self._stopping = False
        store = self.security_store
        endpoint = await CoapEndpoint.create(
            bind,
            config=self._coap_config,
            security=self._security,
            oscore=None if store is None else oscore_layer_from_store(store),
        )
        self._endpoint = endpoint
        endpoint.site.add("rd", self._handle_request)
        endpoint.site.add("dp", self._handle_request)
        now = self.clock()
        for registration in await self.store.registrations():
            if registration.queue_mode:
                # Unknown after a restart: asleep until the client is heard from.
                self._queue.track(registration.id, now, awake=False)
        for observation in await self.store.all_observations():
            owner = await self.store.get(observation.registration_id)
            if owner is None:  # pragma: no cover - stores remove them together
                continue
            if owner.identity is not None and owner.identity.kind is IdentityKind.OSCORE:
                # Its notifications are verified against the protected registering request
                # (RFC 8613 §8.4), whose state did not survive the restart: observe again.
                log.info(
                    "%s: observation of %s over OSCORE not restored after the restart",
                    owner.endpoint,
                    ", ".join(str(path) for path in observation.paths),
                )
                await self.store.remove_observation(observation.token)
                continue
            model = self.models.for_registration(owner)
            message = _downlink(owner, observation.request(), model)
            message.token = observation.token
            coap = adopt_observation(endpoint, message, owner.address)
            self._start_pump(ObservationHandle(self, observation, owner, None), coap)
        if self._expiry_interval is not None:
            self._expiry_task = asyncio.create_task(self._expiry_loop(self._expiry_interval))

    async def stop(self) -> None:
        """Stop serving: held requests fail RequestCancelled, the socket closes, subscriptions
        end. Registrations and observations stay in the store (a persistent store keeps them
        for the next start). The store itself is not closed."""
        if self._endpoint is None:
            return
        self._stopping = True
        if self._expiry_task is not None:
            self._expiry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry_task
            self._expiry_task = None
        if self._queue_timer is not None:
            self._queue_timer.cancel()
            self._queue_timer = None
            self._queue_timer_at = None
        for registration_id in self._queue.clients():
            self._fail_held(self._queue.forget(registration_id), RequestCancelled("server stopped"))
        await self._endpoint.close()
        if self._pumps:
            await asyncio.gather(*self._pumps, return_exceptions=True)
        for handle in self._handles.values():
            handle._end("server stopped")
        self._handles.clear()
        self._endpoint = None
        self.events.close()

    async def __aenter__(self) -> LwM2MServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- events ---------------------------------------------------------------------------------

    def subscribe(self, maxsize: int = 10_000) -> Subscription[ServerEvent]:
        """Events from now on, as an async iterator (use as a context manager to close it)."""
        return self.events.subscribe(maxsize)

    def add_listener(self, callback: Callable[[ServerEvent], object]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (an async callback runs as a task);
        returns a function that removes it."""
        return self.events.add_listener(callback)

    # -- registrations --------------------------------------------------------------------------

    async def registration(self, endpoint: str) -> Registration | None:
        """The client's registration; None also once its lifetime ran out (before the sweep)."""
        registration = await self.store.get_by_endpoint(endpoint)
        return None if registration is None or self._over(registration) else registration

    def _over(self, registration: Registration) -> bool:
        """Past its lifetime (and the grace): over, even before the expiry sweep removes it."""
        return registration.is_expired(self.clock(), self.config.lifetime_grace)

    async def registrations(self) -> list[Registration]:
        return await self.store.registrations()

    def model_for(self, registration: Registration) -> ObjectModel:
        """The model ``registration``'s payloads decode with (shared per version set)."""
        return self.models.for_registration(registration)

    def is_awake(self, registration: Registration) -> bool:
        """Queue mode: whether requests go out now (always True for other clients)."""
        return not registration.queue_mode or self._queue.is_awake(registration.id, self.clock())

    async def expire_registrations(self, now: float | None = None) -> list[Registration]:
        """Remove registrations whose lifetime ended (plus the configured grace) and publish
        :class:`Expired` for each; returns them."""
        now = self.clock() if now is None else now
        removed = await self.store.remove_expired(now, self.config.lifetime_grace)
        for gone in removed:
            log.info("registration of %s expired", gone.registration.endpoint)
            self._end_registration(gone, "registration expired")
            self.events.publish(Expired(gone.registration, gone.observations))
        return [gone.registration for gone in removed]

    async def _expiry_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_registrations()
            except Exception:  # pragma: no cover - a store failure must not end the sweep
                log.exception("lifetime sweep failed")

    def _end_registration(self, gone: Deregistration, reason: str) -> None:
        """Forget a removed registration's local state: its observations (the next notification
        is answered with a Reset) and its held requests."""
        for observation in gone.observations:
            handle = self._handles.pop(observation.token, None)
            if handle is not None:
                handle._end(reason)
                if handle._coap is not None and handle._coap.active:
                    task = asyncio.ensure_future(handle._coap.cancel(proactive=False))
                    self._pumps.add(task)
                    task.add_done_callback(self._pumps.discard)
        error = NotRegistered(reason, endpoint=gone.registration.endpoint)
        self._fail_held(self._queue.forget(gone.registration.id), error)

    @staticmethod
    def _fail_held(held: Iterable[_Held], error: RequestFailed) -> None:
        for item in held:
            if not item.future.done():
                item.future.set_exception(error)

    # -- uplink: /rd and /dp --------------------------------------------------------------------

    async def _handle_request(self, request: CoapRequest) -> Message:
        token = _FROM_ENDPOINT.set(True)  # the endpoint runs this coroutine as its own task
        try:
            return await self.handle_uplink(
                request.message,
                remote_address(self.endpoint, request.remote),
                peer_identity(request.peer_identity),
            )
        finally:
            _FROM_ENDPOINT.reset(token)

    async def handle_uplink(
        self, message: Message, address: Address, identity: PeerIdentity | None
    ) -> Message:
        """Answer a client's ``/rd`` or ``/dp`` request (what the CoAP resource calls; public
        for tests and for other transports)."""
        try:
            if message.uri_path[:1] == ("dp",):
                return await self._send_received(message, address, identity)
            operation = decode_uplink(message)
            match operation:
                case Register():
                    return await self._register(operation, address, identity)
                case Update():
                    return await self._update(operation, address, identity)
                case Deregister():
                    return await self._deregister(operation, address, identity)
            raise NotFound("not a registration interface resource")
        except RequestError as exc:
            return Message(exc.code, str(exc).encode())

    async def _authorize(
        self, request: Register | Update | Deregister | Send, context: RequestContext
    ) -> None:
        await check_endpoint(
            self.security_store,
            context.endpoint,
            context.identity,
            plain_allowed=self.allow_plain or self.security_store is None,
        )
        if self.authorizer is not None and not await self.authorizer.authorize(request, context):
            log.info("%s refused by the authorizer", context.endpoint)
            raise Forbidden("endpoint not allowed")

    async def _register(
        self, request: Register, address: Address, identity: PeerIdentity | None
    ) -> Message:
        await self._authorize(request, RequestContext(request.endpoint, address, identity))
        if identity is None:
            # A registration made over (D)TLS is bound to its identity (Update and De-register
            # must carry it); a plain Register must not take it over either, whatever the
            # security store allows for the endpoint (with none, plain CoAP is allowed).
            current = await self.store.get_by_endpoint(request.endpoint)
            if current is not None and current.identity is not None and not self._over(current):
                log.warning(
                    "plain Register of %r, which is registered as %s: 4.00",
                    request.endpoint,
                    current.identity,
                )
                raise BadRequest("this endpoint is registered over a secured connection")
        oscore = None if self._endpoint is None else self._endpoint.oscore
        if oscore is not None and (identity is None or identity.kind is not IdentityKind.OSCORE):
            oscore.unbind(address)  # requests to this address go as the Register came
        now = self.clock()
        registration = new_registration(
            request,
            registration_id=secrets.token_urlsafe(9),
            address=address,
            identity=identity,
            now=now,
            config=self.config,
            links=self.links,
        )
        replaced = await self.store.add(registration)
        if replaced is not None:
            self._end_registration(replaced, "client registered again")
        if registration.queue_mode:
            self._queue.track(registration.id, now)
            self._arm_queue_timer()
        log.debug("registered %s at %s", registration.endpoint, registration.location)
        event = Registered(registration, replaced.registration if replaced is not None else None)
        task = asyncio.current_task()
        if _FROM_ENDPOINT.get() and task is not None:
            # After the 2.01 is sent (by the endpoint's done callback of this handler task, added
            # before ours): a request made on the event cannot overtake the registration.
            task.add_done_callback(lambda _: self.events.publish(event))
        else:
            self.events.publish(event)
        response = Message(Code.CREATED)
        response.location_path = ("rd", registration.id)
        return response

    async def _located(self, location: str) -> Registration:
        parts = location.strip("/").split("/")
        registration = await self.store.get(parts[1]) if len(parts) == 2 else None
        if registration is None or self._over(registration):
            raise NotFound("no such registration")
        return registration

    async def _update(
        self, request: Update, address: Address, identity: PeerIdentity | None
    ) -> Message:
        registration = await self._located(request.location)
        context = RequestContext(registration.endpoint, address, identity, registration)
        await self._authorize(request, context)
        now = self.clock()
        new = apply_update(
            registration,
            request,
            address=address,
            identity=identity,
            now=now,
            config=self.config,
            links=self.links,
        )
        updated = await self.store.update(new)
        if updated is None:
            raise NotFound("no such registration")
        self.events.publish(Updated(updated.old, updated.new))
        if new.queue_mode and new.id not in self._queue:
            self._queue.track(new.id, now)
        elif not new.queue_mode and new.id in self._queue:
            # A 1.0 client left queue mode: whatever waited may go now.
            self._release_all(self._queue.forget(new.id))
        self._heard_from(new, now)
        return Message(Code.CHANGED)

    async def _deregister(
        self, request: Deregister, address: Address, identity: PeerIdentity | None
    ) -> Message:
        registration = await self._located(request.location)
        if not registration.accepts(identity):
            raise BadRequest("De-register from another identity than the registration's")
        context = RequestContext(registration.endpoint, address, identity, registration)
        await self._authorize(request, context)
        gone = await self.store.remove(registration.id)
        if gone is None:  # pragma: no cover - removed concurrently
            raise NotFound("no such registration")
        self._end_registration(gone, "client de-registered")
        log.debug("de-registered %s", registration.endpoint)
        self.events.publish(Deregistered(gone.registration, gone.observations))
        return Message(Code.DELETED)

    async def _send_received(
        self, message: Message, address: Address, identity: PeerIdentity | None
    ) -> Message:
        if identity is not None:
            registration = await self.store.get_by_identity(identity)
        else:
            registration = await self.store.get_by_address(address)
        if registration is None:
            raise NotFound("Send from a client that is not registered")
        operation = decode_uplink(message, self.models.for_registration(registration))
        assert isinstance(operation, Send)
        registered = registration.object_versions  # every object the client listed
        for group in operation.groups:
            for path in group.nodes:
                if path.ids and path.ids[0] not in registered:
                    # Core §6.4.6 Send response codes: 4.04, "Reported Object was not registered
                    # to the LwM2M Server"
                    raise NotFound(f"Send reports object {path.ids[0]}, which is not registered")
        context = RequestContext(registration.endpoint, address, identity, registration)
        await self._authorize(operation, context)
        self._heard_from(registration, self.clock())
        self.events.publish(SendReceived(registration, operation.groups, operation.content_format))
        return Message(Code.CHANGED)

    # -- queue mode -----------------------------------------------------------------------------

    def _heard_from(self, registration: Registration, now: float) -> None:
        """Any message from a queue-mode client extends its awake window (Transport §6.5)."""
        if not registration.queue_mode:
            return
        if self._queue.message_received(registration.id, now):
            self.events.publish(Awake(registration))
            released = self._queue.release(registration.id, now)
            if released is not None:
                self._grant(released)
        self._arm_queue_timer()

    @staticmethod
    def _grant(held: _Held) -> None:
        held.granted = True
        if not held.future.done():
            held.future.set_result(None)

    def _release_all(self, held: Iterable[_Held]) -> None:
        for item in held:
            self._grant(item)

    def _arm_queue_timer(self) -> None:
        when = self._queue.get_timer()
        if when is None or self._stopping:
            return
        if self._queue_timer_at is not None and self._queue_timer_at <= when:
            return
        if self._queue_timer is not None:
            self._queue_timer.cancel()
        loop = asyncio.get_running_loop()
        self._queue_timer_at = when
        self._queue_timer = loop.call_later(max(0.0, when - self.clock()), self._on_queue_timer)

    def _on_queue_timer(self) -> None:
        self._queue_timer = None
        self._queue_timer_at = None
        asleep = self._queue.handle_timer(self.clock())
        if asleep:
            task = asyncio.ensure_future(self._publish_sleeping(asleep))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)
        self._arm_queue_timer()

    async def _publish_sleeping(self, registration_ids: list[str]) -> None:
        for registration_id in registration_ids:
            registration = await self.store.get(registration_id)
            if registration is not None:
                self.events.publish(Sleeping(registration))

    # -- downlink: the request API --------------------------------------------------------------

    async def _registration(self, endpoint: str) -> Registration:
        registration = await self.store.get_by_endpoint(endpoint)
        if registration is None:
            raise NotRegistered("not registered", endpoint=endpoint)
        return registration

    async def request(self, endpoint: str, operation: DownlinkRequest) -> Response:
        """Send any DM / Information Reporting operation to ``endpoint`` and return its
        successful response (payload decoded with the client's model).

        The CoAP layer bounds the exchange (MAX_TRANSMIT_WAIT, RFC 7252 §4.8.2); a request
        held for a sleeping client waits at most ``config.hold_timeout``. Bound the whole call
        with ``asyncio.timeout`` (cancelling withdraws a held request).

        :raises ErrorResponse: the client answered 4.xx / 5.xx (``code``).
        :raises RequestTimeout: no answer in time.
        :raises ClientSleeping: queue mode: the client did not wake up in time (or requests are
            not held and it sleeps).
        :raises NotRegistered: ``endpoint`` is not registered (or went away while waiting).
        :raises InvalidResponse: the answer does not decode with the client's model.
        """
        return await self._request(await self._registration(endpoint), operation)

    async def _request(self, registration: Registration, operation: DownlinkRequest) -> Response:
        model = self.models.for_registration(registration)
        message = _downlink(registration, operation, model)
        if registration.queue_mode:  # binds OSCORE to the address it sends to
            answer = await self._queued_exchange(registration, message, self.endpoint.request)
        else:
            # _exchange inlined: one coroutine less on every request (the Read hot path)
            identity = registration.identity
            if identity is not None and identity.kind is IdentityKind.OSCORE:
                await self._oscore_bind(registration, registration.address)
            try:
                answer = await self.endpoint.request(message, registration.address)
            except CoapError as exc:
                raise _request_failed(exc, registration.endpoint) from None
            except OscoreError as exc:
                raise _oscore_failed(exc, registration.endpoint) from None
        return decode_client_response(operation, answer, model, endpoint=registration.endpoint)

    async def _oscore_bind(self, registration: Registration, address: Address) -> None:
        """Requests to a client registered over OSCORE go protected with the context of its
        identity, whoever else sent from that address and whatever this process knows (after
        a restart, the context is loaded again); without a context nothing is sent in the
        clear: RequestFailed."""
        layer = self.endpoint.oscore
        assert registration.identity is not None
        kid = bytes.fromhex(registration.identity.value)
        context = None if layer is None else await layer.find(kid, None)
        if layer is None or context is None:
            raise RequestFailed(
                "registered over OSCORE, but its security entry is gone: not sent",
                endpoint=registration.endpoint,
            )
        layer.bind(address, context, replace=True)

    async def _exchange(
        self,
        registration: Registration,
        message: Message,
        send: Callable[[Message, Any], Awaitable[T]],
    ) -> T:
        """Send ``message`` with ``send`` (the endpoint's ``request`` or ``observe``), through
        the queue-mode hold when the client uses queue mode; maps failures to server errors."""
        if registration.queue_mode:  # binds OSCORE to the address it sends to
            return await self._queued_exchange(registration, message, send)
        identity = registration.identity
        if identity is not None and identity.kind is IdentityKind.OSCORE:
            await self._oscore_bind(registration, registration.address)
        try:
            return await send(message, registration.address)
        except CoapError as exc:
            raise _request_failed(exc, registration.endpoint) from None
        except OscoreError as exc:
            raise _oscore_failed(exc, registration.endpoint) from None

    async def _queued_exchange(
        self,
        registration: Registration,
        message: Message,
        send: Callable[[Message, Any], Awaitable[T]],
    ) -> T:
        name = registration.endpoint
        rid = registration.id
        held = _Held(asyncio.get_running_loop().create_future())
        try:
            try:
                send_now = self._queue.submit(rid, held, self.clock())
            except QueueFull:
                raise ClientSleeping("too many requests held", endpoint=name) from None
            except KeyError:
                raise NotRegistered("not registered", endpoint=name) from None
            if send_now:
                held.granted = True
            elif not self.config.hold_requests:
                raise ClientSleeping("the client is sleeping", endpoint=name)
            else:
                log.debug("request to %s held until it wakes up", name)
                try:
                    async with asyncio.timeout(self.config.hold_timeout):
                        await held.future
                except TimeoutError:
                    raise ClientSleeping(
                        "the client did not wake up in time", endpoint=name
                    ) from None
            current = await self.store.get(rid)
            if current is None:
                raise NotRegistered("registration ended", endpoint=name)
            identity = current.identity
            if identity is not None and identity.kind is IdentityKind.OSCORE:
                await self._oscore_bind(current, current.address)  # it may have moved
            answer = await send(message, current.address)
            self._heard_from(current, self.clock())
            return answer
        except CoapRequestTimeout:
            self._client_silent(registration)
            raise RequestTimeout("no response", endpoint=name) from None
        except CoapError as exc:
            raise _request_failed(exc, name) from None
        except OscoreError as exc:
            raise _oscore_failed(exc, name) from None
        finally:
            if held.granted:
                following = self._queue.completed(rid, self.clock())
                if following is not None:
                    self._grant(following)
            else:
                self._queue.withdraw(rid, held)

    def _client_silent(self, registration: Registration) -> None:
        """A request timed out: the queue-mode client is asleep now."""
        if self._queue.timed_out(registration.id, self.clock()):
            self.events.publish(Sleeping(registration))

    # -- operations (LwM2M-TS-Core §6.3, §6.4) ---------------------------------------------------

    @staticmethod
    def preferred_format(registration: Registration) -> ContentFormat | None:
        """The Accept of reads and observations when the caller names none: SenML CBOR when a
        1.1 client advertised it on its root link (``</>;ct=...``, Core §6.2.1) — compact and
        the cheapest to decode — else None (the client picks, TLV for most 1.0 clients)."""
        if registration.version != "1.0" and 112 in registration.content_formats:
            return ContentFormat.SENML_CBOR
        return None

    def _write_format(self, registration: Registration, requested: ContentFormat | None) -> int:
        if requested is not None:
            return requested
        if registration.version == "1.0" or registration.supports(ContentFormat.TLV):
            return ContentFormat.TLV
        return self._composite_format(registration, None)

    @staticmethod
    def _composite_format(registration: Registration, requested: ContentFormat | None) -> int:
        if requested is not None:
            return requested
        if registration.supports(ContentFormat.SENML_CBOR):
            return ContentFormat.SENML_CBOR
        return ContentFormat.SENML_JSON

    async def read(
        self,
        endpoint: str,
        path: Path | str,
        *,
        accept: ContentFormat | None = None,
    ) -> Response:
        """Read (Core §6.3.1): ``response.content`` is the decoded node.

        ``accept`` defaults to :meth:`preferred_format` (SenML CBOR for a 1.1 client that
        advertised it, else the client's choice)."""
        # _registration inlined: one coroutine less per Read (the request API's hot path)
        registration = await self.store.get_by_endpoint(endpoint)
        if registration is None:
            raise NotRegistered("not registered", endpoint=endpoint)
        if accept is None:
            accept = self.preferred_format(registration)
        return await self._request(registration, Read(_path(path), accept))

    async def discover(self, endpoint: str, path: Path | str) -> Response:
        """Discover (Core §6.3.2): ``response.links`` with attributes, ``dim`` and ``ver``."""
        return await self.request(endpoint, Discover(_path(path)))

    async def write(
        self,
        endpoint: str,
        path: Path | str,
        node: Node,
        *,
        replace: bool = True,
        content_format: ContentFormat | None = None,
    ) -> Response:
        """Write (Core §6.3.3): replace (PUT) or partial update (POST, ``replace=False``).
        The format defaults to TLV, or SenML for 1.1 clients that did not list TLV."""
        registration = await self._registration(endpoint)
        cf = ContentFormat(self._write_format(registration, content_format))
        return await self._request(registration, Write(_path(path), node, replace, cf))

    async def write_attributes(
        self,
        endpoint: str,
        path: Path | str,
        attributes: Attributes,
    ) -> Response:
        """Write-Attributes (Core §6.3.4)."""
        return await self.request(endpoint, WriteAttributes(_path(path), attributes))

    async def execute(
        self,
        endpoint: str,
        path: Path | str,
        arguments: str = "",
    ) -> Response:
        """Execute (Core §6.3.5)."""
        return await self.request(endpoint, Execute(_path(path), arguments))

    async def create(
        self,
        endpoint: str,
        path: Path | str,
        instances: Iterable[ObjectInstance] = (),
        *,
        resources: Iterable[Resource] | None = None,
        content_format: ContentFormat | None = None,
    ) -> Response:
        """Create (Core §6.3.6): ``instances`` with their ids, or ``resources`` of one new
        instance whose id the client picks (``response.location``)."""
        registration = await self._registration(endpoint)
        cf = ContentFormat(self._write_format(registration, content_format))
        operation = Create(
            _path(path),
            tuple(instances),
            None if resources is None else tuple(resources),
            cf,
        )
        return await self._request(registration, operation)

    async def delete(self, endpoint: str, path: Path | str) -> Response:
        """Delete an object instance (Core §6.3.7)."""
        return await self.request(endpoint, Delete(_path(path)))

    async def read_composite(
        self,
        endpoint: str,
        paths: Iterable[Path | str],
        *,
        content_format: ContentFormat | None = None,
        accept: ContentFormat | None = None,
    ) -> Response:
        """Read-Composite (Core §6.3.8): ``response.composite`` maps paths to nodes."""
        registration = await self._registration(endpoint)
        cf = ContentFormat(self._composite_format(registration, content_format))
        operation = ReadComposite(tuple(_path(p) for p in paths), cf, accept or cf)
        return await self._request(registration, operation)

    async def write_composite(
        self,
        endpoint: str,
        nodes: Mapping[Path, Node | None],
        *,
        content_format: ContentFormat | None = None,
    ) -> Response:
        """Write-Composite (Core §6.3.9), atomic at the client."""
        registration = await self._registration(endpoint)
        cf = ContentFormat(self._composite_format(registration, content_format))
        return await self._request(registration, WriteComposite(nodes, cf))

    async def observe(
        self,
        endpoint: str,
        path: Path | str,
        *,
        accept: ContentFormat | None = None,
    ) -> ObservationHandle:
        """Observe (Core §6.4.1): the handle holds the first response and yields notifications
        (also published as :class:`NotificationReceived`). A client that answers without the
        Observe option gives an inactive handle (nothing is stored). ``accept`` defaults to
        :meth:`preferred_format`."""
        registration = await self._registration(endpoint)
        if accept is None:
            accept = self.preferred_format(registration)
        return await self._observe(registration, Observe(_path(path), accept))

    async def observe_composite(
        self,
        endpoint: str,
        paths: Iterable[Path | str],
        *,
        content_format: ContentFormat | None = None,
        accept: ContentFormat | None = None,
    ) -> ObservationHandle:
        """Observe-Composite (Core §6.4.3): notifications carry ``response.composite``."""
        registration = await self._registration(endpoint)
        cf = ContentFormat(self._composite_format(registration, content_format))
        operation = ObserveComposite(tuple(_path(p) for p in paths), cf, accept or cf)
        return await self._observe(registration, operation)

    async def _observe(
        self, registration: Registration, operation: Observe | ObserveComposite
    ) -> ObservationHandle:
        endpoint = registration.endpoint
        model = self.models.for_registration(registration)
        message = _downlink(registration, operation, model)
        coap = await self._exchange(registration, message, self.endpoint.observe)
        assert coap.response is not None
        answer = coap.response
        try:
            response = decode_response(operation, answer, model)
        except CodecError as exc:
            await coap.cancel(proactive=False)
            raise InvalidResponse(
                f"{operation_name(operation)}: undecodable response: {exc}", endpoint=endpoint
            ) from None
        check_response(operation, response, endpoint=endpoint)
        observation = Observation.from_request(
            message.token, registration.id, operation, self.clock()
        )
        handle = ObservationHandle(self, observation, registration, response)
        if not coap.active:
            handle._end("the client did not establish the observation")
            return handle
        if not await self.store.add_observation(observation):
            await coap.cancel(proactive=False)
            raise NotRegistered("registration ended", endpoint=endpoint)
        self._start_pump(handle, coap)
        return handle

    def _start_pump(self, handle: ObservationHandle, coap: ClientObservation) -> None:
        handle._coap = coap
        self._handles[handle.token] = handle
        task = asyncio.ensure_future(self._pump(handle, coap))
        handle._pump = task
        self._pumps.add(task)
        task.add_done_callback(self._pumps.discard)

    async def _pump(self, handle: ObservationHandle, coap: ClientObservation) -> None:
        """Decode the notifications of one observation and publish them."""
        observation = handle.observation
        request = observation.request()
        reason = "the client ended the observation"
        try:
            async for message in coap:
                registration = await self.store.get(observation.registration_id)
                if registration is None:
                    # gone from the store behind our back (a shared store, another server's
                    # sweep): forget the observation, so the client's next notification gets
                    # a Reset (RFC 7641 §3.6) instead of a queue nobody reads
                    reason = "registration ended"
                    if coap.active:
                        await coap.cancel(proactive=False)
                    break
                model = self.models.for_registration(registration)
                try:
                    response = decode_response(request, message, model)
                except CodecError as exc:
                    log.warning("%s: undecodable notification: %s", registration.endpoint, exc)
                    continue
                self._heard_from(registration, self.clock())
                handle._push(response)
                self.events.publish(NotificationReceived(registration, observation, response))
        except CoapError as exc:
            reason = f"observation failed: {type(exc).__name__}"
        if self._stopping:
            return  # kept in the store for the next start
        if self._handles.get(observation.token) is handle:
            del self._handles[observation.token]
            handle._end(reason)
            removed = await self.store.remove_observation(observation.token)
            registration = await self.store.get(observation.registration_id)
            if removed is not None and registration is not None:
                self.events.publish(ObservationEnded(registration, observation, reason))

    async def cancel_observation(
        self, token: bytes, *, proactive: bool = True
    ) -> Observation | None:
        """Cancel an observation by token (Core §6.4.2, §6.4.4): proactively (GET / FETCH
        Observe=1, answered by the client) or reactively (forget it; the next notification is
        answered with a Reset). Returns the removed record, None if unknown."""
        observation = await self.store.remove_observation(token)
        handle = self._handles.pop(token, None)
        if handle is not None:
            handle._end("cancelled")
            pump = handle._pump
            if pump is not None and not pump.done():
                # The pump iterates the CoAP observation; stop it so that the cancellation
                # below is the observation's only consumer.
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            coap = handle._coap
            if coap is not None and coap.active:
                try:
                    await coap.cancel(proactive=proactive)
                except asyncio.CancelledError:
                    await coap.cancel(proactive=False)
                    raise
        if observation is not None:
            registration = await self.store.get(observation.registration_id)
            if registration is not None:
                self.events.publish(ObservationEnded(registration, observation, "cancelled"))
        return observation

    async def observations(self, endpoint: str) -> list[Observation]:
        """The observations of ``endpoint``'s registration."""
        registration = await self._registration(endpoint)
        return await self.store.observations(registration.id)

    def observation_handle(self, token: bytes) -> ObservationHandle | None:
        """The live handle of an observation (also for observations re-adopted at start)."""
        return self._handles.get(token)


def _downlink(
    registration: Registration, operation: DownlinkRequest, model: ObjectModel
) -> Message:
    """The CoAP request of ``operation`` for ``registration``: under the alternate path the
    client declared with ``rt="oma.lwm2m"`` (Transport §6.2: the server puts it in front of the
    path of every Device Management and Information Reporting request, ``/lwm2m/3/0``)."""
    message = encode_request(operation, model)
    root = registration.root_path
    if root != "/":
        message.uri_path = (*root.strip("/").split("/"), *message.uri_path)
    return message


def _path(path: Path | str) -> Path:
    return path if isinstance(path, Path) else _parse_path(path)


@functools.lru_cache(maxsize=1024)
def _parse_path(text: str) -> Path:
    return Path.parse(text)


def _oscore_failed(exc: OscoreError, endpoint: str) -> RequestFailed:
    """A request over OSCORE whose answer did not verify, or came unprotected."""
    if isinstance(exc, UnprotectedResponse):  # e.g. 4.01 "Security context not found"
        return RequestFailed(str(exc), endpoint=endpoint, code=exc.code)
    return InvalidResponse(f"the OSCORE answer does not verify: {exc}", endpoint=endpoint)


def _request_failed(exc: CoapError, endpoint: str) -> RequestFailed:
    if isinstance(exc, CoapRequestTimeout):
        return RequestTimeout("no response", endpoint=endpoint)
    if isinstance(exc, CoapRequestRejected):
        return RequestRejected("the client answered with a Reset", endpoint=endpoint)
    if isinstance(exc, CoapRequestCancelled):
        return RequestCancelled(str(exc) or "cancelled", endpoint=endpoint)
    return RequestFailed(f"{type(exc).__name__}: {exc}", endpoint=endpoint)
