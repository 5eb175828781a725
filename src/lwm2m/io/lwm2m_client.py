"""asyncio runner of the LwM2M client (layer L3 over :mod:`lwm2m.client` and
:mod:`lwm2m.io.coap_endpoint`).

One :class:`~lwm2m.io.coap_endpoint.CoapEndpoint` — one UDP socket — carries everything: the
client registers from port X with every server and is queried on port X. The glue is the
aioquic ``transmit`` pattern: feed an input to the sans-IO
:class:`~lwm2m.client.engine.ClientEngine` with ``loop.time()`` as ``now``, then drain its
outputs (requests, notifications, events) and re-arm one timer.

Seams:

- :class:`Connector` opens the connection of an account: resolves the URI, checks the security
  mode and prepares the transport. :class:`UdpConnector` serves NoSec only (mode 3,
  ``coap://``). :class:`DtlsConnector` (the default) serves modes 0 PSK, 1 RPK, 2 Certificate over
  ``coaps://`` and 3 NoSec, all on the client's one socket: it owns the endpoint's
  :class:`~lwm2m.io.coaps.DtlsSecurityLayer` (its ``security_layer``), builds each account's DTLS
  credentials from the Security instance (:func:`~lwm2m.client.dtls_security.account_security`)
  and hands them to the layer for the server's address; NoSec servers are let through in
  plain CoAP, nobody else. After the first exchange the client binds the account to the
  identity the server authenticated with, so a request over another session is not attributed
  to it.
- **Secure Component** (LwM2M-SCS-4): ``LwM2MClient(..., secure_component=component_or_uri)``
  keeps /0 Security and /21 OSCORE — and /1, /2 unless ``store`` is given, so that a restart
  finds consistent accounts — in a :class:`~lwm2m.secure.SecureInstanceStore` of the component
  (``soft:``, ``pkcs11:``, ``pcsc:`` URI or an open component). Secret resources written by a
  bootstrap are imported into the component and replaced by references; the DTLS connector
  resolves those references to the component's handles, so the PSK or private key never enters
  Python memory with a hardware backend (the master secret is derived, the signature made,
  inside it). ``is_blocking`` components get their handshake steps run in a worker thread.
  The client then uses a :class:`DtlsConnector` unless a connector is given, and exposes the
  component's identification as instance 0 of the Secure Component object (/33000, LwM2M-SCS-2),
  listed in Register; application objects can keep their instances in the component too
  (``StoredObject(definition, client.secure_store)``, SCS-5).
- :class:`CoapDownloader` is the firmware pull downloader (block-wise GET through the endpoint).

Usage::

    async with LwM2MClient(load_config("client.toml"), connector=DtlsConnector()) as client:
        await client.wait_registered()
        client.objects[3].set(9, 80)          # battery level: observers are notified
        await client.send([Path(3, 0, 9)])

    # credentials in a PKCS#11 token (the factory bootstrap of the configuration, or a
    # bootstrap server, provisions it; later runs find the accounts in the token):
    client = LwM2MClient(config, secure_component="pkcs11:token=dev;pin-source=...")
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography import x509

from lwm2m.client.accounts import (
    ConnectionSecurity,
    Peer,
    PeerCredential,
    UnsupportedSecurityMode,
)
from lwm2m.client.bootstrap import BootstrapSource
from lwm2m.client.config import ClientConfig, load_config
from lwm2m.client.dtls_security import AccountSecurity, CredentialError, account_security
from lwm2m.client.engine import (
    ClientEngine,
    OutgoingNotification,
    OutgoingRequest,
    component_unavailable_response,
)
from lwm2m.client.events import BootstrapFinished, ClientEvent, Registered, SendCompleted, Stopped
from lwm2m.client.objects.base import InstanceStore, ObjectHandler
from lwm2m.client.objects.firmware import DownloadSink, UpdateResult
from lwm2m.client.objects.security import (
    Credentials,
    OscoreMaterial,
    OscoreObject,
    SecurityMode,
    SecurityObject,
)
from lwm2m.client.tree import ObjectTree
from lwm2m.coap.config import CoapConfig
from lwm2m.coap.errors import BodyTooLarge, CoapError, RequestTimeout
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.dtls import PskCredential, SigningKey
from lwm2m.errors import (
    Lwm2mError,
    OscoreError,
    SecureComponentError,
    SecureComponentUnavailable,
)
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest, Site
from lwm2m.io.coap_transport import SecurityLayer, UdpAddress
from lwm2m.io.coaps import DtlsLayerConfig, DtlsSecurityLayer, PeerSecurity
from lwm2m.io.oscore import OscoreLayer, sequence_floor
from lwm2m.model.path import Path
from lwm2m.oscore import (
    AeadAlgorithm,
    HkdfAlgorithm,
    MasterSecret,
    OscoreParameters,
    SecurityContext,
    SoftwareMasterSecret,
)
from lwm2m.secure import SecureComponent, SecureInstanceStore, open_component
from lwm2m.secure.admin import AdminScripts
from lwm2m.secure.interfaces import is_reference_form, parse_secret_reference
from lwm2m.secure.object import SECURE_COMPONENT_OBJECT_ID, SecureComponentObject
from lwm2m.secure.ram import ResponseScript

__all__ = [
    "CoapDownloader",
    "Connector",
    "DtlsConnector",
    "EventStream",
    "LwM2MClient",
    "OscoreAccounts",
    "UdpConnector",
    "oscore_context",
]

_DTLS_MODES = (
    SecurityMode.PSK,
    SecurityMode.RPK,
    SecurityMode.CERTIFICATE,
    SecurityMode.NO_SEC,
)

logger = logging.getLogger(__name__)


class Connector(Protocol):
    """Opens the connection of a server account and returns the remote address to use.

    ``credentials`` fetches the account's keying material (from the Security handler, later a
    Secure Component) — called only by connectors that need it, so NoSec never touches keys.
    A DTLS connector sets up the session in the endpoint's security layer and may return the
    authenticated server identity through :meth:`ClientEngine.bind_address`.
    """

    async def connect(
        self, connection: ConnectionSecurity, credentials: Callable[[], Credentials]
    ) -> UdpAddress:
        """Resolve and prepare; raise UnsupportedSecurityMode or OSError when impossible."""
        ...


async def _resolve(connection: ConnectionSecurity, family: int) -> tuple[Any, int]:
    uri = connection.uri
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(uri.host, uri.port, family=family, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:  # the reason then names the host, not only the resolver
        raise OSError(f"cannot resolve host {uri.host!r}: {exc.strerror or exc}") from None
    if not infos:  # pragma: no cover - getaddrinfo raises instead
        raise OSError(f"cannot resolve host {uri.host!r}")
    address: UdpAddress = infos[0][4]
    return (address[0], address[1])


class OscoreAccounts:
    """The client's OSCORE contexts (RFC 8613), one per account whose /0/x/17 names a /21
    instance, in the endpoint's :class:`~lwm2m.io.oscore.OscoreLayer` (``layer``).

    A context is kept while its account's material is unchanged (its replay window and
    sequence numbers live in it). A new one starts its Sender Sequence Number from the clock
    (:func:`~lwm2m.io.oscore.sequence_floor`, RFC 8613 Appendix B.1.1), so a restarted client
    never repeats a Partial IV and the server's replay window takes its requests.
    """

    def __init__(self) -> None:
        self.layer = OscoreLayer()
        self._accounts: dict[int, tuple[OscoreMaterial, SecurityContext]] = {}

    async def connect(
        self,
        connection: ConnectionSecurity,
        credentials: Callable[[], Credentials],
        address: UdpAddress,
        component: SecureComponent | None = None,
    ) -> None:
        """Protect the account's exchanges with ``address`` (or stop protecting them).
        ``component``: where a /21/x/0 reference points (the context's key derivation then
        runs there, in a worker thread for a blocking component)."""
        iid = connection.security_instance_id
        if connection.oscore is None:
            if self._accounts.pop(iid, None) is not None:
                self.layer.remove_peer(address)
            return
        material = credentials().oscore
        if material is None:  # pragma: no cover - the engine fills it in when /0/x/17 is set
            raise UnsupportedSecurityMode(f"no OSCORE material for {connection.uri}")
        cached = self._accounts.get(iid)
        fresh = False
        if cached is not None and cached[0] == material:
            context = cached[1]
        else:
            if component is not None and component.is_blocking:
                context = await asyncio.to_thread(oscore_context, material, connection, component)
            else:
                context = oscore_context(material, connection, component)
            self._accounts[iid] = (material, context)
            # derived anew (a start, a restart): no replay state for the server's requests yet,
            # so the first one must prove its freshness with Echo (RFC 8613 Appendix B.1.2)
            fresh = True
        self.layer.add_peer(address, context, fresh=fresh)


def oscore_context(
    material: OscoreMaterial,
    connection: ConnectionSecurity,
    component: SecureComponent | None = None,
) -> SecurityContext:
    """The RFC 8613 Security Context of a /21 instance (UnsupportedSecurityMode when it cannot
    be used: unknown algorithms, bad ids, a Secure Component reference without the component).

    A /21/x/0 that is a Secure Component reference (``sc-ref:LABEL``) is derived from inside
    the component (:meth:`~lwm2m.secure.interfaces.SecureComponent.oscore_secret`): the Master
    Secret never comes out, only the derived keys do, as the DTLS master secret does."""
    raw = material.master_secret.reveal()
    secret: MasterSecret
    if is_reference_form(raw):
        secret = _component_secret(raw, material, connection, component)
    elif not raw:
        raise UnsupportedSecurityMode(f"OSCORE for {connection.uri}: no Master Secret (/21/x/0)")
    else:
        secret = SoftwareMasterSecret(raw)
    try:
        aead = AeadAlgorithm(10 if material.aead is None else material.aead)
        hkdf = HkdfAlgorithm(-10 if material.hkdf is None else material.hkdf)
    except ValueError as exc:
        raise UnsupportedSecurityMode(f"OSCORE for {connection.uri}: {exc}") from None
    try:
        parameters = OscoreParameters(
            sender_id=material.sender_id,
            recipient_id=material.recipient_id,
            master_salt=material.master_salt,
            aead=aead,
            hkdf=hkdf,
        )
        return SecurityContext(secret, parameters, sender_sequence_number=sequence_floor())
    except (OscoreError, SecureComponentError) as exc:
        raise UnsupportedSecurityMode(f"OSCORE for {connection.uri}: {exc}") from None


def _component_secret(
    reference: bytes,
    material: OscoreMaterial,
    connection: ConnectionSecurity,
    component: SecureComponent | None,
) -> MasterSecret:
    label = parse_secret_reference(reference)
    if label is None:
        raise UnsupportedSecurityMode(
            f"OSCORE for {connection.uri}: /21/x/0 has the sc-ref: form but no valid label"
        )
    if component is None:
        raise UnsupportedSecurityMode(
            f"OSCORE for {connection.uri}: /21/x/0 refers to a Secure Component credential "
            "but the client has no Secure Component"
        )
    try:
        handle = component.oscore_secret(label)
    except SecureComponentError as exc:
        raise UnsupportedSecurityMode(f"OSCORE for {connection.uri}: {exc}") from None
    if handle.master_salt != material.master_salt:
        raise UnsupportedSecurityMode(
            f"OSCORE for {connection.uri}: the Master Salt (/21/x/5) changed since the Master "
            "Secret was written: write the Master Secret again"
        )
    return handle


#: The back-off after a Secure Component failure (``LwM2MClient._engine_step``), in seconds.
COMPONENT_RETRY_FIRST = 1.0
COMPONENT_RETRY_MAX = 60.0


class UdpConnector:
    """Plain UDP (NoSec, ``coap://``), with OSCORE when the account has it (/0/x/17);
    refuses every other mode with :class:`~lwm2m.client.accounts.UnsupportedSecurityMode`
    (use :class:`DtlsConnector`)."""

    def __init__(self, family: int = socket.AF_INET) -> None:
        self.family = family
        self.oscore = OscoreAccounts()
        self.oscore_layer = self.oscore.layer
        """The endpoint's OSCORE layer (the client passes it to its endpoint)."""

    async def connect(
        self, connection: ConnectionSecurity, credentials: Callable[[], Credentials]
    ) -> UdpAddress:
        connection.check_supported(oscore=True)
        address = await _resolve(connection, self.family)
        await self.oscore.connect(connection, credentials, address)
        return address


class DtlsConnector:
    """Modes 0 PSK, 1 RPK, 2 Certificate (``coaps://``) and 3 NoSec (``coap://``) on one socket.

    :param component: the Secure Component that /0/x/5 references point into (set by
        :class:`LwM2MClient` from its ``secure_component``).
    :param trust_anchors: PKIX trust anchors for certificate mode (Certificate Usage 0, 1, 2 or
        no /0/x/4); usage 3 (the default) needs none.
    :param check_server_name: certificate mode with PKIX validation: the server certificate must
        name /0/x/14 SNI, or else the host of the server URI.
    :param layer_config: settings of the DTLS layer (timers, key log, ...).
    :param family: address family to resolve server hosts with.
    """

    def __init__(
        self,
        *,
        component: SecureComponent | None = None,
        trust_anchors: Iterable[x509.Certificate] = (),
        check_server_name: bool = True,
        layer_config: DtlsLayerConfig | None = None,
        family: int = socket.AF_INET,
    ) -> None:
        self.component = component
        self.trust_anchors = tuple(trust_anchors)
        self.check_server_name = check_server_name
        self.family = family
        self.security_layer = DtlsSecurityLayer(config=layer_config)
        """The endpoint's security layer (the client passes it to its endpoint)."""
        self.oscore = OscoreAccounts()
        self.oscore_layer = self.oscore.layer
        """The endpoint's OSCORE layer (OSCORE over ``coap://`` accounts)."""
        self._accounts: dict[int, tuple[Credentials, UdpAddress, PeerSecurity]] = {}

    async def connect(
        self, connection: ConnectionSecurity, credentials: Callable[[], Credentials]
    ) -> UdpAddress:
        connection.check_supported(_DTLS_MODES, oscore=True)
        address = await _resolve(connection, self.family)
        layer = self.security_layer
        iid = connection.security_instance_id
        if connection.mode is SecurityMode.NO_SEC:
            self._accounts.pop(iid, None)
            layer.allow_plain(address)
            await self.oscore.connect(connection, credentials, address, self.component)
            return address
        material = credentials()
        cached = self._accounts.get(iid)
        if cached is not None and cached[0] == material and cached[1] == address:
            security = cached[2]
        else:
            component = self.component
            if component is not None and component.is_blocking:
                # Resolving a reference looks the credential up in the component (I/O).
                account = await asyncio.to_thread(self._account, material, connection)
            else:
                account = self._account(material, connection)
            blocking = account.from_component and component is not None and component.is_blocking
            security = PeerSecurity(account.credentials, account.cipher_suites, blocking)
            self._accounts[iid] = (material, address, security)
        layer.set_peer(address, security)
        return address

    def reset(self, remote: UdpAddress) -> None:
        """An exchange with ``remote`` timed out: drop its DTLS session, so the next attempt
        handshakes again (the server may have lost the session, e.g. restarted)."""
        self.security_layer.reset_peer(remote)

    def _account(self, material: Credentials, connection: ConnectionSecurity) -> AccountSecurity:
        return account_security(
            material,
            connection.uri,
            resolve=self._resolve_reference,
            trust_anchors=self.trust_anchors,
            check_server_name=self.check_server_name,
        )

    def _resolve_reference(
        self, value: bytes, mode: SecurityMode
    ) -> PskCredential | SigningKey | None:
        label = parse_secret_reference(value)
        if label is None:
            if is_reference_form(value):
                raise CredentialError(
                    "/0/x/5 has the sc-ref: form but no valid credential label "
                    "(1..128 printable characters)"
                )
            return None
        component = self.component
        if component is None:
            raise CredentialError(
                "/0/x/5 refers to a Secure Component credential but the client has no "
                "Secure Component"
            )
        if mode is SecurityMode.PSK:
            return component.psk(label)
        return component.key(label)


class CoapDownloader:
    """Firmware pull delivery over CoAP (block-wise GET, LwM2M-TS-Core E.6 / RFC 7959)."""

    def __init__(self, client: LwM2MClient) -> None:
        self._client = client
        self._task: asyncio.Task[None] | None = None

    def start(self, uri: str, sink: DownloadSink) -> None:
        self.cancel()
        self._task = asyncio.get_running_loop().create_task(self._download(uri, sink))

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    async def _download(self, uri: str, sink: DownloadSink) -> None:
        client = self._client
        try:
            parts = urlsplit(uri)
            host = parts.hostname or ""
            port = parts.port or 5683
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM
            )
            remote = infos[0][4][:2]
            security = client.endpoint.security
            if parts.scheme == "coap" and isinstance(security, DtlsSecurityLayer):
                security.allow_plain(remote)
            request = Message(Code.GET, uri_path=parts.path or "/")
            response = await client.endpoint.request(request, remote)
        except BodyTooLarge as exc:
            # /5/0/5 3: "Out of RAM during downloading process" (the package outgrew the
            # CoAP layer's buffer, max_body_size)
            logger.info("firmware download from %s failed: %s", uri, exc)
            sink.download_failed(UpdateResult.OUT_OF_RAM)
        except (CoapError, OSError, ValueError) as exc:
            logger.info("firmware download from %s failed: %s", uri, exc)
            sink.download_failed(UpdateResult.CONNECTION_LOST)
        else:
            if response.code == Code.CONTENT:
                size = len(response.payload)
                sink.download_progress(size, size)
                sink.download_finished(response.payload)
            elif response.code == Code.NOT_FOUND:
                sink.download_failed(UpdateResult.INVALID_URI)
            else:
                sink.download_failed(UpdateResult.CONNECTION_LOST)
        client._pump()


class EventStream:
    """An async iterator over the events of a :class:`LwM2MClient`, subscribed on creation."""

    def __init__(self, client: LwM2MClient) -> None:
        self._client = client
        self._queue: asyncio.Queue[ClientEvent] = asyncio.Queue()
        client._subscribers.append(self._queue)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ClientEvent:
        return await self._queue.get()

    async def aclose(self) -> None:
        """Unsubscribe."""
        with contextlib.suppress(ValueError):
            self._client._subscribers.remove(self._queue)

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _send_completed(request_id: int) -> Callable[[ClientEvent], bool]:
    return lambda e: isinstance(e, SendCompleted) and e.request_id == request_id


class LwM2MClient:
    """An LwM2M client on one UDP socket (see the module docstring).

    :param config: a :class:`~lwm2m.client.config.ClientConfig` or the path of a TOML file.
    :param objects: application object handlers (added to /0-/3, which are created).
    :param store: the instance store of /0, /1, /2 (default in memory).
    :param sources: start-up bootstrap sources (default: factory bootstrap of ``config``).
    :param connector: opens account connections (default :class:`DtlsConnector`: NoSec, PSK,
        RPK and X.509 on one socket; :class:`UdpConnector` for NoSec only); a connector with a
        ``security_layer`` attribute gives the endpoint its security layer.
    :param coap_config: CoAP engine configuration (transmission parameters, block sizes).
    :param on_event: called with every engine event.
    :param secure_component: a Secure Component (or its URI, opened here and closed by
        :meth:`stop`) holding /0 and /21 (and /1, /2 unless ``store`` is given); see the module
        docstring.
    :param admin_targets: AIDs of the security domains of the component's card that servers
        may send remote APDU scripts to through /33000 (resources 30-35,
        :mod:`lwm2m.secure.admin`); empty (the default): the relay is off.
    :param seram_agents: base URLs of GlobalPlatform SERAM 2.0 Remote Agents that servers may
        start a management session with through /33000 (resources 36-38,
        :mod:`lwm2m.io.seram_agent`; needs ``admin_targets`` and the ``seram`` extra).
    """

    def __init__(
        self,
        config: ClientConfig | str | os.PathLike[str],
        objects: Iterable[ObjectHandler] = (),
        *,
        store: InstanceStore | None = None,
        sources: Sequence[BootstrapSource] | None = None,
        connector: Connector | None = None,
        coap_config: CoapConfig | None = None,
        on_event: Callable[[ClientEvent], None] | None = None,
        bootstrap_retry_delay: float = 60.0,
        secure_component: SecureComponent | str | None = None,
        admin_targets: Collection[bytes] = (),
        seram_agents: Collection[str] = (),
    ) -> None:
        self.config = config if isinstance(config, ClientConfig) else load_config(config)
        self.secure_component: SecureComponent | None = None
        """The Secure Component holding the sensitive instances, if any."""
        self.secure_store: SecureInstanceStore | None = None
        self._owns_component = False
        if secure_component is not None:
            if isinstance(secure_component, str):
                secure_component = open_component(secure_component)
                self._owns_component = True
            self.secure_component = secure_component
            self.secure_store = SecureInstanceStore(secure_component)
            objects = list(objects)
            given = {handler.definition.id for handler in objects}
            if 0 not in given:
                objects.append(SecurityObject(self.secure_store))
            if 21 not in given:
                objects.append(OscoreObject(self.secure_store))
            if SECURE_COMPONENT_OBJECT_ID not in given:  # SCS-2: its identification, listed
                objects.append(
                    SecureComponentObject(
                        secure_component,
                        admin_targets=admin_targets,
                        offload=self._offload,
                        seram_agents=seram_agents,
                        seram=self._start_seram,
                    )
                )
            if store is None:
                store = self.secure_store
            if connector is None:
                connector = DtlsConnector(component=secure_component)
        if connector is None:
            connector = DtlsConnector()
        if isinstance(connector, DtlsConnector) and connector.component is None:
            connector.component = self.secure_component
        self.engine = ClientEngine(
            self.config,
            objects,
            store=store,
            sources=sources,
            wall_clock=time.time,
            bootstrap_retry_delay=bootstrap_retry_delay,
        )
        self.connector: Connector = connector
        self._coap_config = coap_config
        self._on_event = on_event
        self._endpoint: CoapEndpoint | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._wakeup_scheduled = False
        # A Secure Component that went away (see _engine_step): when the engine's due work is
        # tried again, and the wait after the next failure.
        self._component_retry_at: float | None = None
        self._component_backoff = COMPONENT_RETRY_FIRST
        self._pump_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiters: list[tuple[Callable[[ClientEvent], bool], asyncio.Future[ClientEvent]]] = []
        self._subscribers: list[asyncio.Queue[ClientEvent]] = []
        self.history: deque[ClientEvent] = deque(maxlen=256)
        """The most recent engine events."""
        self._closed = False
        self._shut = False
        self._stopped = asyncio.Event()  # set once stop() finished (a second stop() waits)
        self._identities: dict[int, tuple[UdpAddress, PeerCredential]] = {}
        self.request_check: Callable[[OutgoingRequest], Awaitable[bool]] | None = None
        """Awaited before each request goes out; False drops it (the smartcard re-check of
        :class:`lwm2m.io.smartcard.SmartcardMonitor` at Register and Update)."""

    # -- properties ----------------------------------------------------------------------------

    @property
    def objects(self) -> ObjectTree:
        """The object tree: ``client.objects[3]`` is the Device handler."""
        return self.engine.tree

    @property
    def endpoint(self) -> CoapEndpoint:
        if self._endpoint is None:
            raise RuntimeError("the client is not started")
        return self._endpoint

    @property
    def local_address(self) -> UdpAddress:
        """The bound ``(host, port)`` of the client's socket."""
        return self.endpoint.local_address

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> LwM2MClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind the socket and start the engine (bootstrap sources, then registration).
        Returns at once; use :meth:`wait_registered` to wait for the servers."""
        if self._closed:
            raise RuntimeError("the client was stopped; make a new LwM2MClient to start again")
        if self._endpoint is not None:
            raise RuntimeError("the client is already started")
        self._loop = asyncio.get_running_loop()
        site = Site()
        site.add("/", self._handle)
        security: SecurityLayer | None = getattr(self.connector, "security_layer", None)
        self._endpoint = await CoapEndpoint.create(
            self.config.bind,
            site=site,
            config=self._coap_config,
            security=security,
            on_observer_removed=self._observer_removed,
            oscore=getattr(self.connector, "oscore_layer", None),
        )
        self.engine.on_change = self._wakeup
        self.engine.start(self._now())
        self._pump()

    async def stop(self, grace: float = 5.0) -> None:
        """De-register from every server (waiting up to ``grace`` seconds), then close. A
        second call while the first runs returns when the client is closed."""
        if self._endpoint is None:
            return
        if self._closed:
            await self._stopped.wait()
            return
        self._closed = True
        try:
            await self._stop(grace)
        finally:
            self._stopped.set()

    async def _stop(self, grace: float) -> None:
        assert self._endpoint is not None
        waiter = self._waiter(lambda e: isinstance(e, Stopped))
        self.engine.stop(self._now())
        self._pump()
        try:
            await asyncio.wait_for(waiter, grace)
        except TimeoutError:  # a De-register (or a Register in flight) got no answer in time
            self.engine.stop_now()
            self._pump()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.engine.on_change = None
        self._shut = True
        await self._endpoint.close()
        for _, future in self._waiters:
            if not future.done():
                future.cancel()
        self._waiters.clear()
        if self._owns_component and self.secure_component is not None:
            self.secure_component.close()

    # -- application API -----------------------------------------------------------------------

    async def send(
        self, paths: Sequence[Path], *, short_server_id: int | None = None
    ) -> list[SendCompleted]:
        """Send the values of ``paths`` (``POST /dp``) to the servers that allow it and wait for
        the answers (bound it with ``asyncio.timeout``). Raises LocalProtocolError when no
        registered server accepts Send."""
        request_ids = self.engine.send(
            paths, self._now(), timestamp=time.time(), short_server_id=short_server_id
        )
        waiters = [self._waiter(_send_completed(i)) for i in request_ids]
        self._pump()
        results = await asyncio.gather(*waiters)
        return [r for r in results if isinstance(r, SendCompleted)]

    async def wait_for(self, match: Callable[[ClientEvent], bool] | type) -> ClientEvent:
        """Wait for the next event matching ``match`` (a predicate or an event class); bound it
        with ``asyncio.timeout``."""
        if isinstance(match, type):
            kind = match
            return await self._waiter(lambda e: isinstance(e, kind))
        return await self._waiter(match)

    async def wait_registered(self, short_server_id: int | None = None) -> None:
        """Wait until registered with ``short_server_id`` (None: with every DM server)."""

        def done() -> bool:
            regs = self.engine.registrations
            if short_server_id is not None:
                reg = regs.get(short_server_id)
                return reg is not None and reg.registered
            return bool(regs) and all(r.registered for r in regs.values())

        while not done():
            await self._waiter(lambda e: isinstance(e, Registered))

    def events(self) -> EventStream:
        """Every engine event from this call on, as an async iterator (``aclose()`` it, or
        use ``async with``)."""
        return EventStream(self)

    def update(self, short_server_id: int | None = None) -> None:
        """Send a Registration Update now."""
        self.engine.request_update(self._now(), short_server_id)
        self._pump()

    # -- the glue ------------------------------------------------------------------------------

    def _now(self) -> float:
        if self._loop is None:
            raise RuntimeError("the client is not started")
        return self._loop.time()

    def _waiter(self, predicate: Callable[[ClientEvent], bool]) -> asyncio.Future[ClientEvent]:
        future: asyncio.Future[ClientEvent] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return future

    def _handle(self, request: CoapRequest) -> Message:
        identity = request.peer_identity
        peer = Peer(
            request.remote,
            PeerCredential(identity.kind, identity.value) if identity is not None else None,
        )
        try:
            response = self.engine.handle_request(request.message, peer, self._now())
        except SecureComponentUnavailable as exc:
            self._component_lost(exc)
            response = component_unavailable_response()
        self._schedule_pump()  # after the endpoint sent the response, outside its dispatch
        return response

    def _engine_step(self, step: Callable[[float], object]) -> None:
        """Run an engine input that may read the instance store: a Secure Component holding
        /0, /1 and /2 (the default with a component) that went away fails it with
        ``SecureComponentUnavailable``. The client keeps running. The engine itself answers
        5.03 to requests and notifications that need the component (with /2 on the card, every
        access decision does); what fails here is the rest of its due work (a registration
        update lists the instances), which is tried again after a back-off, 1 s doubling to
        60 s, instead of at once, for as long as the component is gone."""
        try:
            step(self._now())
        except SecureComponentUnavailable as exc:
            self._component_lost(exc)
            return
        if self._component_retry_at is not None:
            logger.info("the Secure Component is available again")
            self._component_retry_at = None
            self._component_backoff = COMPONENT_RETRY_FIRST

    def _component_lost(self, exc: SecureComponentUnavailable) -> None:
        now = self._now()
        if self._component_retry_at is None:
            # the message names the command and the failure, never data (errors carry no secret)
            logger.warning("the Secure Component is unavailable: %s", exc)
        elif now < self._component_retry_at:
            return  # a request during the outage: the back-off stands
        self._component_retry_at = now + self._component_backoff
        self._component_backoff = min(self._component_backoff * 2, COMPONENT_RETRY_MAX)

    def _observer_removed(self, observation: Any, reason: str) -> None:
        if reason == "replaced":
            return
        self.engine.observation_cancelled(Peer(observation.remote), observation.token, self._now())
        self._schedule_pump()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task of this client (awaited by :meth:`stop`)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _offload(
        self,
        work: Callable[[], ResponseScript | None],
        done: Callable[[ResponseScript | None, Exception | None], None],
    ) -> None:
        """Run a blocking component call in a worker thread, then ``done`` in the loop and pump
        (what the Secure Component object's script runs take, :class:`Offload`)."""

        async def run() -> None:
            try:
                result = await asyncio.to_thread(work)
            except Exception as exc:
                done(None, exc)
            else:
                done(result, None)
            self._pump()

        self._spawn(run())

    def _start_seram(
        self,
        url: str,
        session_id: str | None,
        target: bytes,
        done: Callable[[Exception | None], None],
    ) -> None:
        """Run a SERAM 2.0 session in a task (:class:`~lwm2m.secure.object.SeramStarter`)."""
        held: object = self.secure_component  # the object offers SERAM only for such components
        assert isinstance(held, AdminScripts)
        assert self.secure_component is not None
        component, scripts = self.secure_component, held

        async def run() -> None:
            from lwm2m.io.seram_agent import run_seram_session

            try:
                info = await asyncio.to_thread(component.info)
                await run_seram_session(url, scripts, target, info, session_id=session_id)
            except Exception as exc:
                done(exc)
            else:
                done(None)
            self._pump()

        self._spawn(run())

    def _schedule_pump(self) -> None:
        if self._pump_scheduled or self._loop is None:
            return
        self._pump_scheduled = True
        self._loop.call_soon(self._scheduled_pump)

    def _scheduled_pump(self) -> None:
        self._pump_scheduled = False
        self._pump()

    def _wakeup(self) -> None:
        """An object changed outside an engine input: run the engine soon."""
        if self._wakeup_scheduled or self._loop is None or self._closed:
            return
        self._wakeup_scheduled = True
        self._loop.call_soon(self._on_wakeup)

    def _on_wakeup(self) -> None:
        self._wakeup_scheduled = False
        if self._closed:
            return
        self._engine_step(self.engine.handle_timer)
        self._pump()

    def _pump(self) -> None:
        """Drain the engine's outputs and re-arm the timer."""
        engine = self.engine
        if self._endpoint is None:
            return
        if self._shut:  # after stop(): nothing goes out any more
            engine.requests_to_send()
            engine.notifications_to_send()
            while (event := engine.next_event()) is not None:
                self._dispatch(event)
            return
        for request in engine.requests_to_send():
            self._spawn(self._send_request(request))
        for notification in engine.notifications_to_send():
            self._notify(notification)
        while (event := engine.next_event()) is not None:
            self._dispatch(event)
        self._arm_timer()

    def _dispatch(self, event: ClientEvent) -> None:
        self.history.append(event)
        if isinstance(event, BootstrapFinished) and self.secure_store is not None:
            try:  # credentials the bootstrap replaced are deleted from the component
                self.secure_store.collect_garbage()
            except Lwm2mError:
                logger.exception("Secure Component garbage collection failed")
        logger.debug("client event %s", event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                logger.exception("on_event callback failed")
        for queue in self._subscribers:
            queue.put_nowait(event)
        remaining = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            if predicate(event):
                future.set_result(event)
            else:
                remaining.append((predicate, future))
        self._waiters = remaining

    def _notify(self, notification: OutgoingNotification) -> None:
        endpoint = self.endpoint
        address = self.engine.address_of(notification.connection)
        for observation in endpoint.observations():
            if observation.token == notification.token and observation.remote == address:
                endpoint.notify_observation(observation, notification.message)
                return
        logger.debug("no CoAP observer for token %s", notification.token.hex())

    async def _send_request(self, request: OutgoingRequest) -> None:
        engine = self.engine
        check = self.request_check
        if check is not None and not await check(request):
            self._pump()
            return
        remote: UdpAddress | None = None
        try:
            iid = request.connection.security_instance_id
            remote = await self.connector.connect(
                request.connection, functools.partial(engine.credentials, iid)
            )
            engine.bind_address(iid, remote, self._bound_identity(iid, remote))
            response = await self.endpoint.request(request.message, remote)
        except asyncio.CancelledError:
            raise
        except (CoapError, OSError, UnsupportedSecurityMode, Lwm2mError) as exc:
            logger.info("request to %s failed: %s", request.connection.uri, exc)
            reset = getattr(self.connector, "reset", None)
            if isinstance(exc, RequestTimeout) and remote is not None and reset is not None:
                reset(remote)
            self._engine_step(
                functools.partial(engine.handle_response, request.request_id, None, reason=str(exc))
            )
        else:
            assert remote is not None
            identity = self.endpoint.security.peer_identity(remote)
            if identity is not None:  # the server authenticated: bind the account to it
                credential = PeerCredential(identity.kind, identity.value)
                self._identities[iid] = (remote, credential)
                engine.bind_address(iid, remote, credential)
            elif self._identities.pop(iid, None) is not None:
                engine.bind_address(iid, remote)
            self._engine_step(
                functools.partial(engine.handle_response, request.request_id, response)
            )
        self._pump()

    def _bound_identity(self, iid: int, remote: UdpAddress) -> PeerCredential | None:
        """The server identity recorded for an account at ``remote`` (kept across requests)."""
        known = self._identities.get(iid)
        return known[1] if known is not None and known[0] == remote else None

    def _arm_timer(self) -> None:
        when = self.engine.get_timer()
        retry_at = self._component_retry_at
        if when is not None and retry_at is not None and when < retry_at:
            when = retry_at  # the component failed: its due work waits for the back-off
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None and self._loop is not None and not self._closed:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed:
            return
        self._engine_step(self.engine.handle_timer)
        self._pump()
