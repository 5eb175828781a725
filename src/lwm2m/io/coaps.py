"""``coaps://``: the DTLS 1.2 :class:`~lwm2m.io.coap_transport.SecurityLayer` of the CoAP endpoint.

:class:`DtlsSecurityLayer` puts the sans-IO DTLS engine (:mod:`lwm2m.dtls`) between the UDP socket
of a :class:`~lwm2m.io.coap_endpoint.CoapEndpoint` and its CoAP engine. One socket carries both
roles, as an LwM2M endpoint needs:

- **Client role** (an LwM2M client registering, a CoAP client): :meth:`~DtlsSecurityLayer.connect`
  opens a :class:`~lwm2m.dtls.DtlsConnection` to the remote on the first request, with the
  credentials given for that remote (:meth:`~DtlsSecurityLayer.set_peer`) or the default client
  credentials. CoAP datagrams sent while the handshake runs are queued (bounded, duplicates of a
  retransmission dropped) and released once it completes. Client sessions are keyed by the
  remote ``(host, port)``. Clients offer RFC 9146 Connection IDs (an empty one: the server may
  ask us to write its CID, which keeps the session across NAT rebinding).
- **Server role** (an LwM2M server, a CoAP server): with ``server_credentials``, incoming
  handshakes go through a :class:`~lwm2m.dtls.DtlsServer` demultiplexer (stateless cookies,
  routing by address or CID). A session is keyed by the client's address, or, when a CID was
  negotiated (``server_connection_id_length``), by a :class:`SessionKey` that stays the same when
  the client's address changes. Requests to a client reuse its session (an LwM2M server reaching
  a device); a server never opens sessions itself.
- **Identity.** Every request carries the authenticated identity of its session as
  ``peer_identity`` (:class:`~lwm2m.io.coap_transport.PeerIdentity`): kind ``"psk"`` with the PSK
  identity, ``"rpk"`` with the DER SubjectPublicKeyInfo, ``"x509"`` with the certificate's common
  name (or first subjectAltName); ``details`` holds the DTLS identity value (the whole chain, every
  subjectAltName). The LwM2M server compares it with ``ep`` (Transport §5.2.8 endpoint binding).
- **Failures.** A handshake that fails (wrong PSK, unknown identity, untrusted certificate,
  timeout), a fatal alert or a close_notify ends the session; the endpoint then fails every
  request and observation pending towards that peer with :class:`DtlsSessionError`, which names
  the cause (never key material) and is a :class:`~lwm2m.coap.errors.RequestFailedError`. The next
  request opens a new session.
- **Records of established sessions** take the fast path of the DTLS core
  (``DtlsConnection.open_record`` / ``seal``; a Connection-ID record to a server session through
  ``DtlsServer.open_record``, from the session's current address only); anything else (other
  content types, replays, records that do not authenticate, a CID record from a new address)
  goes through ``receive_datagram`` and the demultiplexer as before.
- **Resumption.** A client session that ends (the server closed or evicted it, a reset after a
  timeout) leaves its :class:`~lwm2m.dtls.DtlsSession`; the next session to the same remote with
  the same :class:`PeerSecurity` offers it (abbreviated handshake, RFC 5246 §7.3): one round trip
  less and no key operation of the credential (no ECDHE, no signature, no Secure Component
  access). A server that lost the session answers with a full handshake. A session is never
  offered again after a failed handshake or a fatal alert, nor with other credentials; the layer
  keeps the master secret of at most ``max_resumable`` remotes (``resume_sessions=False``: none).
- **Timers.** Flight retransmissions (RFC 6347 §4.2.4) run on the endpoint's single timer.
- **Close.** Closing the endpoint sends close_notify on every session.
- **Plain peers.** :meth:`~DtlsSecurityLayer.allow_plain` lets one remote speak plain CoAP over the
  same socket (an LwM2M client with a NoSec bootstrap server and a PSK DM server). Plaintext is
  accepted only from remotes allowed so, never from others: a spoofed datagram cannot pass for a
  secured server.

**Blocking credential backends** (Secure Components with ``is_blocking``: PKCS#11, PC/SC) may take
milliseconds per key operation. Key operations happen during the handshake only (deriving the PSK
master secret, an ECDSA signature), so the simple, sufficient approach is taken: for a client
session opened with ``PeerSecurity(blocking=True)``, every datagram received while the handshake
runs is processed in a worker thread (``concurrent.futures``), one at a time per connection;
datagrams arriving meanwhile wait in a bounded inbox, timers of that connection wait, application
data to the peer stays queued. Once established, records are processed inline (no key operation
is involved any more). The event loop is never blocked. Server-role credentials are called inline
and must not block (an LwM2M server keeps its PSKs in memory or loads them beforehand, see
:attr:`DtlsSecurityLayer.psk_loader`).

**NSS key log.** ``DtlsLayerConfig.key_log_path`` (like ``SSLKEYLOGFILE``) appends
``CLIENT_RANDOM`` lines for Wireshark — only for handshakes whose credentials all allow it
(software credentials; Secure Component handles refuse), so a hardware-held key never has its
sessions logged.

Usage (a CoAP client and server over DTLS-PSK)::

    server = await CoapEndpoint.create(("127.0.0.1", 5684), site=site, security=DtlsSecurityLayer(
        server_credentials=DtlsCredentials(psk_store=SoftwarePskStore({b"dev1": key}))))
    client = await CoapEndpoint.create(security=DtlsSecurityLayer(
        client_credentials=DtlsCredentials(psk=SoftwarePsk(b"dev1", key))))
    response = await client.request(Message(Code.GET, uri_path="/r"), ("127.0.0.1", 5684))
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TextIO

from lwm2m.coap.errors import NetworkError
from lwm2m.dtls import (
    AlertDescription,
    AlertReceived,
    ApplicationData,
    CertificateIdentity,
    ConnectionClosed,
    ConnectionState,
    DtlsConfiguration,
    DtlsConnection,
    DtlsCredentials,
    DtlsServer,
    DtlsSession,
    DtlsStateError,
    HandshakeCompleted,
    PeerAddressChanged,
    PskCredential,
    PskIdentity,
    RawPublicKeyIdentity,
)
from lwm2m.dtls import PeerIdentity as DtlsPeerIdentity
from lwm2m.dtls.events import DtlsEvent
from lwm2m.errors import DtlsError
from lwm2m.io.coap_transport import PeerIdentity, UdpAddress

__all__ = [
    "DtlsLayerConfig",
    "DtlsSecurityLayer",
    "DtlsSessionError",
    "LayerStats",
    "PeerSecurity",
    "SessionKey",
    "transport_identity",
]

logger = logging.getLogger(__name__)

_HANDSHAKE = 22
_APPLICATION_DATA = 23
_TLS12_CID = 25
_APPLICATION_DATA_BYTE = bytes([_APPLICATION_DATA])
_TLS12_CID_BYTE = bytes([_TLS12_CID])
_CLIENT_HELLO = 1
_CLIENT_KEY_EXCHANGE = 16
_ESTABLISHED = ConnectionState.ESTABLISHED
_CLOSED = ConnectionState.CLOSED
_MAX_INBOX = 32
"""Datagrams kept for a connection whose handshake step runs in a worker thread."""
_MAX_PSK_CACHE = 4096


class DtlsSessionError(NetworkError, DtlsError):
    """The DTLS session with a peer failed or ended; requests pending towards it fail with this.

    ``alert`` is the TLS alert description that ended it (None for a timeout or a local error),
    ``by_peer`` tells who ended it. The message names the peer and the cause, never key material.
    """

    def __init__(self, message: str, *, alert: int | None = None, by_peer: bool = False) -> None:
        super().__init__(message)
        self.alert = alert
        self.by_peer = by_peer


class SessionKey(tuple[Any, ...]):
    """The peer key of a server-side session that negotiated a Connection ID.

    It is the ``(host, port)`` the handshake came from, but compares by identity: it stays the key
    of that one session when the client's address changes (RFC 9146 §6), and a new client at the
    old address gets another key. Use :meth:`DtlsSecurityLayer.address_of` for the current
    address.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return object.__hash__(self)

    def __repr__(self) -> str:
        return f"SessionKey{tuple.__repr__(self)}"


@dataclass(frozen=True, slots=True)
class PeerSecurity:
    """How to open a client session to one remote."""

    credentials: DtlsCredentials
    """What to authenticate with and how to judge the server."""
    cipher_suites: tuple[int, ...] | None = None
    """Suites to offer (None: those of the layer's :class:`~lwm2m.dtls.DtlsConfiguration`)."""
    blocking: bool = False
    """The credentials block (a Secure Component with ``is_blocking``): handshake steps run in a
    worker thread, one at a time per connection."""


@dataclass(slots=True)
class DtlsLayerConfig:
    """Settings of a :class:`DtlsSecurityLayer`."""

    dtls: DtlsConfiguration = field(default_factory=DtlsConfiguration)
    """Base DTLS settings (timers, sizes, suites, cookies); ``is_client`` is set per role."""
    server_connection_id_length: int = 0
    """Server role: length of the Connection IDs assigned to clients that offer the extension
    (0: no CIDs; sessions are keyed by address)."""
    client_connection_id: bool = True
    """Client role: offer the CID extension (with an empty CID of our own)."""
    key_log_path: str | os.PathLike[str] | None = None
    """Append NSS key-log lines here (``SSLKEYLOGFILE`` style; software credentials only)."""
    max_queued: int = 16
    """CoAP datagrams kept per peer while its handshake runs (beyond: dropped; CoAP retries)."""
    worker_threads: int = 2
    """Threads for blocking credential backends."""
    resume_sessions: bool = True
    """Client role: offer the last session with a remote when opening a new one (see the module
    docstring, "Resumption")."""
    max_resumable: int = 64
    """Client role: most remotes whose last session is kept for resumption (oldest dropped;
    0: none)."""


class LayerStats:
    """Counters of a :class:`DtlsSecurityLayer`."""

    __slots__ = ("dropped", "handshake_failures", "handshakes", "offloaded", "resumed")

    def __init__(self) -> None:
        self.handshakes = 0
        """Handshakes completed (both roles)."""
        self.handshake_failures = 0
        """Sessions that ended before their handshake completed."""
        self.dropped = 0
        """Datagrams to send that had no session (or did not fit one record)."""
        self.offloaded = 0
        """Handshake steps run in a worker thread."""
        self.resumed = 0
        """Handshakes completed as a resumption (abbreviated; both roles)."""


def transport_identity(identity: DtlsPeerIdentity | None) -> PeerIdentity | None:
    """The endpoint's view of a DTLS peer identity (see the module docstring).

    >>> transport_identity(PskIdentity(b"dev1"))
    PeerIdentity(kind='psk', value=b'dev1')
    """
    if identity is None:
        return None
    if isinstance(identity, PskIdentity):
        return PeerIdentity("psk", identity.identity, identity)
    if isinstance(identity, RawPublicKeyIdentity):
        return PeerIdentity("rpk", identity.subject_public_key_info, identity)
    assert isinstance(identity, CertificateIdentity)
    name = identity.common_name
    if name is None:
        name = identity.subject_alt_names[0] if identity.subject_alt_names else ""
    return PeerIdentity("x509", name, identity)


class _KeyLog:
    """A line-buffered, thread-safe NSS key-log file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file: TextIO = open(path, "a", buffering=1, encoding="ascii")  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, text: str, /) -> object:
        with self._lock:
            if not self._file.closed:
                self._file.write(text)
        return None

    def close(self) -> None:
        with self._lock:
            self._file.close()


class _Session:
    """One DTLS association and what the layer keeps about it."""

    __slots__ = (
        "address",
        "busy",
        "client",
        "closing",
        "connection",
        "established",
        "identity",
        "inbox",
        "key",
        "pending",
        "security",
    )

    def __init__(
        self,
        connection: DtlsConnection,
        address: tuple[Any, ...],
        key: Any,
        *,
        client: bool,
        security: PeerSecurity | None = None,
    ) -> None:
        self.connection = connection
        self.address = address
        """Where datagrams go (the current address of the peer)."""
        self.key = key
        """The peer key the CoAP engine knows the peer by."""
        self.client = client
        self.security = security
        self.established = False
        self.identity: PeerIdentity | None = None
        self.pending: list[bytes] = []
        """CoAP datagrams waiting for the handshake."""
        self.busy = False
        """A handshake step runs in a worker thread: do not touch ``connection``."""
        self.inbox: list[bytes] = []
        self.closing = False

    @property
    def blocking(self) -> bool:
        return self.security is not None and self.security.blocking


def _address_key(address: UdpAddress) -> tuple[Any, ...]:
    return address if len(address) == 2 else (address[0], address[1])


def _describe(address: tuple[Any, ...]) -> str:
    host = str(address[0])
    return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"


def _alert_name(alert: int | None) -> str:
    if alert is None:
        return "no alert"
    try:
        return AlertDescription(alert).name.lower()
    except ValueError:
        return f"alert {alert}"


def _is_client_hello(data: bytes) -> bool:
    return (
        len(data) > 13
        and data[0] == _HANDSHAKE
        and data[3] == 0
        and data[4] == 0
        and data[13] == _CLIENT_HELLO
    )


def _client_key_exchange_identity(data: bytes) -> bytes | None:
    """The PSK identity of an epoch-0 ClientKeyExchange that starts ``data`` (RFC 4279 §2)."""
    if (
        len(data) < 27
        or data[0] != _HANDSHAKE
        or data[3] != 0
        or data[4] != 0
        or data[13] != _CLIENT_KEY_EXCHANGE
        or data[19:22] != b"\x00\x00\x00"  # fragment_offset 0
    ):
        return None
    length = (data[25] << 8) | data[26]
    end = 27 + length
    record_end = 13 + ((data[11] << 8) | data[12])
    if end > record_end or end > len(data):
        return None
    return bytes(data[27:end])


class _CachingPskStore:
    """The server's PSK store: identities loaded by ``psk_loader``, then the configured store."""

    __slots__ = ("cache", "store")

    def __init__(self, store: Any) -> None:
        self.store = store
        self.cache: dict[bytes, PskCredential] = {}

    def lookup(self, identity: bytes) -> PskCredential | None:
        credential = self.cache.get(identity)
        if credential is not None:
            return credential
        if self.store is None:
            return None
        found: PskCredential | None = self.store.lookup(identity)
        return found

    def __repr__(self) -> str:
        return f"<PskStore {len(self.cache)} cached, then {self.store!r}>"


class DtlsSecurityLayer:
    """DTLS 1.2 sessions for one CoAP endpoint, both roles (see the module docstring).

    :param server_credentials: accept handshakes with these (None: this endpoint is a client
        only and ignores ClientHellos).
    :param client_credentials: default credentials for sessions this endpoint opens to remotes
        without :meth:`set_peer` settings (None: such remotes cannot be reached).
    :param config: layer settings.
    :param psk_loader: server role, optional: ``await psk_loader(identity)`` is called for a PSK
        identity the server does not know yet, when its ClientKeyExchange arrives (the datagram
        waits meanwhile); the credential it returns is cached (bounded) and the handshake goes
        on. This is how an asynchronous security store (SQLite, Redis) feeds the handshake,
        which itself cannot wait.
    """

    scheme = "coaps"

    def __init__(
        self,
        *,
        server_credentials: DtlsCredentials | None = None,
        client_credentials: DtlsCredentials | None = None,
        config: DtlsLayerConfig | None = None,
        psk_loader: Callable[[bytes], Awaitable[PskCredential | None]] | None = None,
    ) -> None:
        self.config = config = config if config is not None else DtlsLayerConfig()
        self.stats = LayerStats()
        self.psk_loader = psk_loader
        self._key_log: _KeyLog | None = (
            _KeyLog(config.key_log_path) if config.key_log_path is not None else None
        )
        self._default = PeerSecurity(client_credentials) if client_credentials is not None else None
        self._peers: dict[tuple[Any, ...], PeerSecurity] = {}
        # Client role: the last session per remote and the settings it was made with.
        self._resumable: dict[tuple[Any, ...], tuple[PeerSecurity, DtlsSession]] = {}
        self._plain: set[tuple[Any, ...]] = set()
        self._clients: dict[tuple[Any, ...], _Session] = {}
        self._by_key: dict[Any, _Session] = {}
        self._by_address: dict[tuple[Any, ...], _Session] = {}
        self._by_connection: dict[DtlsConnection, _Session] = {}
        self._live: dict[tuple[Any, ...], _Session] = {}
        """Established sessions (both roles) by the peer's current address."""
        self._server: DtlsServer | None = None
        self._psk_store: _CachingPskStore | None = None
        self._parked: dict[tuple[Any, ...], list[bytes]] = {}
        if server_credentials is not None:
            if psk_loader is not None:
                self._psk_store = _CachingPskStore(server_credentials.psk_store)
                server_credentials = dataclasses.replace(
                    server_credentials, psk_store=self._psk_store
                )
            self._server = DtlsServer(
                configuration=dataclasses.replace(
                    config.dtls,
                    is_client=False,
                    connection_id_length=config.server_connection_id_length,
                    key_log=self._key_log,
                ),
                credentials=server_credentials,
            )
        self._out: list[tuple[bytes, UdpAddress]] = []
        self._received: list[tuple[bytes, Any]] = []
        self._failed: list[tuple[Any, Exception]] = []
        self._timers: dict[_Session, float] = {}
        self._client_timer: float | None = None
        self._client_timer_dirty = False
        self._server_timer: float | None = None
        self._server_timer_dirty = True
        self.output_pending = True
        """The :class:`~lwm2m.io.coap_transport.OutputFlagLayer` flag: set wherever output is
        queued (``_out``) or a timer becomes dirty, cleared by :meth:`datagrams_to_send` and
        :meth:`get_timer` when neither is left. The server's own output never lingers in the
        :class:`~lwm2m.dtls.DtlsServer` past a layer call (every call that can make some
        drains it into ``_out``)."""
        self._wakeup: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._inflight: set[concurrent.futures.Future[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- configuration -----------------------------------------------------------------------

    def set_peer(self, remote: UdpAddress, security: PeerSecurity) -> None:
        """Open sessions to ``remote`` with ``security`` (replaces earlier settings; a session
        opened with other settings is closed, its pending requests fail)."""
        key = _address_key(remote)
        self._plain.discard(key)
        previous = self._peers.get(key)
        self._peers[key] = security
        session = self._clients.get(key)
        if session is not None and previous is not security and session.security is not security:
            # No close_notify: a new handshake follows at once, and the peer's close_notify
            # answer (a record of the old epoch) would reach the new connection. The peer
            # replaces the old association when the new ClientHello arrives (RFC 6347 §4.2.8).
            self._end_session(session, "credentials changed", close=False)

    def allow_plain(self, remote: UdpAddress) -> None:
        """Let ``remote`` speak plain CoAP (NoSec) over this socket."""
        key = _address_key(remote)
        self._peers.pop(key, None)
        session = self._clients.get(key)
        if session is not None:
            self._end_session(session, "peer switched to plain CoAP", close=True)
        self._plain.add(key)

    def reset_peer(self, remote: UdpAddress) -> None:
        """Drop the client session to ``remote``; the next request opens a new one. For a peer
        that stopped answering (it may have lost the session: a restarted server drops our
        records silently). No close_notify is sent (see :meth:`set_peer`)."""
        session = self._clients.get(_address_key(remote))
        if session is not None:
            self._end_session(session, "session reset after a failed exchange", close=False)

    def forget_peer(self, remote: UdpAddress) -> None:
        """Drop the settings of ``remote`` and close its client session."""
        key = _address_key(remote)
        self._peers.pop(key, None)
        self._plain.discard(key)
        self._resumable.pop(key, None)
        session = self._clients.get(key)
        if session is not None:
            self._end_session(session, "peer forgotten", close=True)

    # -- inspection --------------------------------------------------------------------------

    def address_of(self, peer: Any) -> UdpAddress | None:
        """The current UDP address of a peer key (None: no session and not a plain peer)."""
        session = self._by_key.get(peer)
        if session is not None:
            return session.address
        return peer if peer in self._plain else None

    def peer_for(self, address: UdpAddress) -> Any | None:
        """The peer key of the session at ``address`` (either role), or None."""
        key = _address_key(address)
        session = self._by_address.get(key) or self._clients.get(key)
        return session.key if session is not None else None

    def handshake_result(self, peer: Any) -> HandshakeCompleted | None:
        """The completed handshake of a peer's session (cipher suite, CID, ...), or None."""
        session = self._by_key.get(peer)
        return session.connection.handshake_result if session is not None else None

    @property
    def session_count(self) -> int:
        """Sessions known to the layer (client sessions, established server sessions)."""
        return len(self._by_key)

    # -- SecurityLayer -----------------------------------------------------------------------

    def connect(self, remote: UdpAddress, now: float) -> Any:
        known = self._by_key.get(remote)  # a peer key handed out before (e.g. a SessionKey)
        if known is not None:
            return known.key
        key = _address_key(remote)
        if key in self._plain:
            return key
        session = self._by_address.get(key) or self._clients.get(key)
        if session is not None:
            return session.key
        if self._closed:
            raise DtlsSessionError("the DTLS layer is closed")
        security = self._peers.get(key, self._default)
        if security is None:
            raise DtlsSessionError(
                f"no DTLS session with {_describe(key)} and no client credentials to open one"
            )
        base = self.config.dtls
        last = self._resumable.get(key)
        configuration = dataclasses.replace(
            base,
            is_client=True,
            cipher_suites=security.cipher_suites or base.cipher_suites,
            connection_id=b"" if self.config.client_connection_id else None,
            key_log=self._key_log,
            session=last[1] if last is not None and last[0] is security else None,
        )
        connection = DtlsConnection(configuration=configuration, credentials=security.credentials)
        try:
            connection.connect(now)
        except DtlsStateError as exc:
            raise DtlsSessionError(
                f"cannot start a DTLS handshake with {_describe(key)}: {exc}"
            ) from None
        session = _Session(connection, key, key, client=True, security=security)
        self._clients[key] = session
        self._by_key[key] = session
        logger.debug("DTLS handshake with %s started", _describe(key))
        self._service_client(session, now)
        return key

    def unprotect(self, data: bytes, addr: UdpAddress, now: float) -> list[tuple[bytes, Any]]:
        # The hot path first: a record of an established session. An IPv4 address arrives as
        # its (host, port) key; an IPv6 one carries flowinfo and scope_id as well.
        session = self._live.get(addr)
        key = addr
        if session is None and len(addr) != 2:
            key = (addr[0], addr[1])
            session = self._live.get(key)
        if session is not None:
            if session.client or data[:1] == _APPLICATION_DATA_BYTE:
                # Any record of a client session, a plain one of a server session.
                plaintext = session.connection.open_record(data)
                if plaintext is not None:
                    return [(plaintext, session.key)]
                if data[:1] == _APPLICATION_DATA_BYTE:
                    return self._record(session, data, now)
            elif data[:1] == _TLS12_CID_BYTE:
                # A CID record to a server session: the demultiplexer routes it by CID and
                # takes it only from the connection's current address.
                server = self._server
                assert server is not None
                opened = server.open_record(data, key)
                if opened is not None:
                    owner = self._by_connection.get(opened[0])
                    return [(opened[1], owner.key)] if owner is not None else []
        if key in self._plain:
            return [(data, key)]
        if not data:
            return []
        session = self._clients.get(key)
        server = self._server
        if session is not None and not _is_client_hello(data):
            # Ours unless the peer is in its own handshake with our server: the peer's
            # handshake wins (its completion ends our client session, _server_established).
            rival = server.connection_for(key) if server is not None else None
            if rival is None or rival.state is not ConnectionState.HANDSHAKING:
                return self._client_input(session, data, now)
        if server is None:
            return []
        if self.psk_loader is not None and self._park(data, key):
            return []
        server.receive_datagram(data, key, now)
        self._server_timer_dirty = True
        self.output_pending = True
        return self._drain_server(now)

    def protect(self, data: bytes, peer: Any, now: float) -> list[tuple[bytes, UdpAddress]]:
        session = self._by_key.get(peer)
        if session is None:
            if peer in self._plain:
                return [(data, peer)]
            self.stats.dropped += 1
            return []
        if session.established and not session.busy:
            # Every other call drains the connection's datagrams: the sealed record goes alone.
            try:
                return [(session.connection.seal(data), session.address)]
            except DtlsStateError as exc:
                self.stats.dropped += 1
                logger.warning("DTLS to %s: datagram dropped (%s)", _describe(session.address), exc)
                return []
        pending = session.pending
        if data not in pending:  # a CoAP retransmission of what already waits
            if len(pending) < self.config.max_queued:
                pending.append(data)
            else:
                self.stats.dropped += 1
        return []

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, UdpAddress]]:
        out, self._out = self._out, []
        server = self._server
        if server is not None:
            out.extend(server.datagrams_to_send(now))  # type: ignore[arg-type]
        self.output_pending = self._server_timer_dirty or self._client_timer_dirty
        return out

    def peer_identity(self, peer: Any) -> PeerIdentity | None:
        session = self._by_key.get(peer)
        return session.identity if session is not None else None

    def get_timer(self) -> float | None:
        if self._server_timer_dirty:
            self._server_timer_dirty = False
            server = self._server
            self._server_timer = server.get_timer() if server is not None else None
        if self._client_timer_dirty:
            self._client_timer_dirty = False
            self._client_timer = min(self._timers.values(), default=None)
        self.output_pending = bool(self._out)
        a, b = self._server_timer, self._client_timer
        if a is None:
            return b
        if b is None:
            return a
        return a if a < b else b

    def handle_timer(self, now: float) -> None:
        server = self._server
        if server is not None and self._server_timer is not None and self._server_timer <= now:
            server.handle_timer(now)
            self._server_timer_dirty = True
            self.output_pending = True
            self._received.extend(self._drain_server(now))
        for session, deadline in list(self._timers.items()):
            if deadline <= now and not session.busy:
                session.connection.handle_timer(now)
                self._received.extend(self._service_client(session, now))
        if self._received:
            self._wake()

    # -- SessionLayer ------------------------------------------------------------------------

    def attach(self, wakeup: Callable[[], None]) -> None:
        self._wakeup = wakeup
        self._loop = asyncio.get_running_loop()

    def received(self, now: float) -> list[tuple[bytes, Any]]:
        received, self._received = self._received, []
        return received

    def failed_peers(self) -> list[tuple[Any, Exception]]:
        failed, self._failed = self._failed, []
        return failed

    def close(self, now: float) -> None:
        """Send close_notify on every session and stop accepting new ones."""
        if self._closed:
            return
        self._closed = True
        for session in list(self._clients.values()):
            if session.busy:
                session.closing = True
            else:
                session.connection.close()
                self._take(session, now)
        server = self._server
        if server is not None:
            self._server_timer_dirty = True
            for connection in server:
                address = server.address_of(connection)
                if address is not None:
                    server.close(address)
            self._drain_server(now)
        self._clients.clear()
        self._by_key.clear()
        self._by_address.clear()
        self._by_connection.clear()
        self._live.clear()
        self._timers.clear()
        self._client_timer_dirty = True
        self.output_pending = True
        for task in self._tasks:
            task.cancel()

    async def wait_closed(self) -> None:
        if self._inflight:
            futures = [asyncio.wrap_future(f) for f in self._inflight]
            await asyncio.wait(futures, timeout=5.0)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._key_log is not None:
            self._key_log.close()

    # -- client role -------------------------------------------------------------------------

    def _client_input(self, session: _Session, data: bytes, now: float) -> list[tuple[bytes, Any]]:
        if session.busy:
            if len(session.inbox) < _MAX_INBOX:
                session.inbox.append(data)
            return []
        connection = session.connection
        if session.blocking and connection.state is ConnectionState.HANDSHAKING:
            self._offload(session, data, now)
            return []
        connection.receive_datagram(data, now)
        return self._service_client(session, now)

    def _service_client(self, session: _Session, now: float) -> list[tuple[bytes, Any]]:
        """Collect a client connection's datagrams, events and timer."""
        connection = session.connection
        self._take(session, now)
        out: list[tuple[bytes, Any]] = []
        while (event := connection.next_event()) is not None:
            if type(event) is ApplicationData:
                out.append((event.data, session.key))
            else:
                self._session_event(session, event, now)
        if self._clients.get(session.address) is session:
            self._update_timer(session)
        return out

    def _update_timer(self, session: _Session) -> None:
        deadline = session.connection.get_timer()
        if deadline is None:
            if self._timers.pop(session, None) is not None:
                self._client_timer_dirty = True
                self.output_pending = True
        elif self._timers.get(session) != deadline:
            self._timers[session] = deadline
            self._client_timer_dirty = True
            self.output_pending = True

    def _take(self, session: _Session, now: float) -> None:
        datagrams = session.connection.datagrams_to_send(now)
        if datagrams:
            address = session.address
            self._out.extend((datagram, address) for datagram in datagrams)
            self.output_pending = True

    def _offload(self, session: _Session, data: bytes, now: float) -> None:
        """Run one handshake step of a blocking-credential connection in a worker thread."""
        loop = self._loop
        if loop is None:  # not attached to an endpoint: run inline
            session.connection.receive_datagram(data, now)
            self._received.extend(self._service_client(session, now))
            return
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=max(1, self.config.worker_threads), thread_name_prefix="lwm2m-dtls"
            )
        session.busy = True
        # While the step runs, handle_timer skips this connection: report no deadline for it
        # (one that passed would re-arm the endpoint's timer at once, again and again, and
        # spin the loop for as long as the key operation takes). _offloaded puts it back.
        if self._timers.pop(session, None) is not None:
            self._client_timer_dirty = True
            self.output_pending = True
        self.stats.offloaded += 1
        future = self._executor.submit(session.connection.receive_datagram, data, now)
        self._inflight.add(future)

        def done(finished: concurrent.futures.Future[None]) -> None:
            try:
                loop.call_soon_threadsafe(self._offloaded, session, finished)
            except RuntimeError:  # the loop is closed: nothing left to deliver to
                pass

        future.add_done_callback(done)

    def _offloaded(self, session: _Session, future: concurrent.futures.Future[None]) -> None:
        self._inflight.discard(future)
        session.busy = False
        if future.cancelled():
            return
        if session.closing:
            session.connection.close()
            self._take(session, 0.0)
            return
        if self._clients.get(session.address) is not session:
            return  # ended meanwhile (set_peer, forget_peer)
        assert self._loop is not None
        now = self._loop.time()
        self._received.extend(self._service_client(session, now))
        while session.inbox and not session.busy and self._clients.get(session.address) is session:
            data = session.inbox.pop(0)
            self._received.extend(self._client_input(session, data, now))
        self._wake()

    # -- server role -------------------------------------------------------------------------

    def _record(self, session: _Session, data: bytes, now: float) -> list[tuple[bytes, Any]]:
        """An application-data record of an established session (either role): straight to its
        connection, past the demultiplexer. No key operation happens here, so a session with
        blocking credentials is served inline too."""
        connection = session.connection
        connection.receive_datagram(data, now)
        event = connection.next_event()
        if type(event) is ApplicationData:  # the usual outcome: one record, one plaintext
            out = [(event.data, session.key)]
            event = connection.next_event()
        else:
            out = []
        while event is not None:
            if type(event) is ApplicationData:
                out.append((event.data, session.key))
            else:
                self._session_event(session, event, now)
            event = connection.next_event()
        datagrams = connection.datagrams_to_send(now)
        if datagrams:
            address = session.address
            self._out.extend((datagram, address) for datagram in datagrams)
            self.output_pending = True
        if session.client and session in self._timers:  # e.g. a lingering last flight ended
            self._update_timer(session)
        return out

    def _drain_server(self, now: float) -> list[tuple[bytes, Any]]:
        server = self._server
        assert server is not None
        datagrams = server.datagrams_to_send(now)
        if datagrams:
            self._out.extend(datagrams)  # type: ignore[arg-type]
            self.output_pending = True
        out: list[tuple[bytes, Any]] = []
        while (item := server.next_event()) is not None:
            event = item.event
            kind = type(event)
            if kind is ApplicationData:
                session = self._by_connection.get(item.connection)
                if session is not None:
                    assert isinstance(event, ApplicationData)
                    out.append((event.data, session.key))
            elif kind is HandshakeCompleted:
                assert isinstance(event, HandshakeCompleted)
                self._server_established(item.connection, item.address, event)
            elif kind is PeerAddressChanged:
                assert isinstance(event, PeerAddressChanged)
                self._server_moved(item.connection, event)
            elif kind is ConnectionClosed:
                session = self._by_connection.get(item.connection)
                if session is not None:
                    assert isinstance(event, ConnectionClosed)
                    self._session_event(session, event, now)
                elif isinstance(event, ConnectionClosed) and not self._closed:
                    self.stats.handshake_failures += 1
                    logger.info(
                        "DTLS handshake from %s failed: %s (%s)",
                        _describe(item.address),  # type: ignore[arg-type]
                        event.reason,
                        _alert_name(event.alert),
                    )
            elif kind is AlertReceived:
                assert isinstance(event, AlertReceived)
                logger.debug(
                    "DTLS alert %s from %s",
                    _alert_name(event.description),
                    _describe(item.address),  # type: ignore[arg-type]
                )
        return out

    def _server_established(
        self, connection: DtlsConnection, address: Hashable, event: HandshakeCompleted
    ) -> None:
        assert isinstance(address, tuple)
        self.stats.handshakes += 1
        if event.session_resumed:
            self.stats.resumed += 1
        key: Any = SessionKey(address) if event.connection_id else address
        session = _Session(connection, address, key, client=False)
        session.established = True
        session.identity = transport_identity(event.peer_identity)
        previous = self._by_address.get(address)
        if previous is not None and previous.connection is not connection:
            self._forget(previous)
            if previous.key != key:
                self._fail(
                    previous.key,
                    DtlsSessionError(
                        f"the DTLS session with {_describe(address)} was replaced by a new one"
                    ),
                )
        client = self._clients.get(address)
        if client is not None:  # one association per address: the peer's handshake wins
            self._end_session(client, "the peer opened its own session", close=False)
        self._by_address[address] = session
        self._by_connection[connection] = session
        self._by_key[key] = session
        self._live[address] = session
        logger.debug("DTLS session from %s established (%s)", _describe(address), session.identity)

    def _server_moved(self, connection: DtlsConnection, event: PeerAddressChanged) -> None:
        session = self._by_connection.get(connection)
        if session is None:
            return
        old, new = event.old_address, event.new_address
        assert isinstance(old, tuple)
        assert isinstance(new, tuple)
        if self._by_address.get(old) is session:
            del self._by_address[old]
        if self._live.get(old) is session:
            del self._live[old]
        displaced = self._by_address.get(new)
        if displaced is not None and displaced is not session:
            self._forget(displaced)
            self._fail(
                displaced.key,
                DtlsSessionError(
                    f"the DTLS session with {_describe(new)} was displaced by another session"
                ),
            )
        self._by_address[new] = session
        self._live[new] = session
        session.address = new
        logger.debug("DTLS session moved from %s to %s", old, _describe(new))

    def _park(self, data: bytes, key: tuple[Any, ...]) -> bool:
        """Hold a ClientKeyExchange whose PSK identity must be loaded first (``psk_loader``)."""
        parked = self._parked.get(key)
        if parked is not None:
            if len(parked) < _MAX_INBOX:
                parked.append(data)
            return True
        identity = _client_key_exchange_identity(data)
        store = self._psk_store
        if identity is None or store is None or store.lookup(identity) is not None:
            return False
        if self._loop is None or self._closed:
            return False
        self._parked[key] = [data]
        task = self._loop.create_task(self._load_psk(identity, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _load_psk(self, identity: bytes, key: tuple[Any, ...]) -> None:
        loader = self.psk_loader
        store = self._psk_store
        assert loader is not None
        assert store is not None
        try:
            credential = await loader(identity)
        except Exception:
            logger.exception("psk_loader failed")
            credential = None
        if credential is not None:
            if len(store.cache) >= _MAX_PSK_CACHE:
                store.cache.pop(next(iter(store.cache)))
            store.cache[identity] = credential
        datagrams = self._parked.pop(key, [])
        server = self._server
        if self._closed or server is None or self._loop is None:
            return
        now = self._loop.time()
        for data in datagrams:
            server.receive_datagram(data, key, now)
        self._server_timer_dirty = True
        self.output_pending = True
        self._received.extend(self._drain_server(now))
        self._wake()

    # -- both roles --------------------------------------------------------------------------

    def _session_event(self, session: _Session, event: DtlsEvent, now: float) -> None:
        kind = type(event)
        if kind is HandshakeCompleted:
            assert isinstance(event, HandshakeCompleted)
            self.stats.handshakes += 1
            if event.session_resumed:
                self.stats.resumed += 1
            session.established = True
            if session.client and session.security is not None:
                self._keep_resumable(session.address, session.security, event.session)
            session.identity = transport_identity(event.peer_identity)
            if session.client and self._clients.get(session.address) is session:
                self._live[session.address] = session
            logger.debug(
                "DTLS session with %s established (%s)",
                _describe(session.address),
                session.identity,
            )
            pending, session.pending = session.pending, []
            connection = session.connection
            for data in pending:
                try:
                    connection.send(data)
                except DtlsStateError as exc:
                    self.stats.dropped += 1
                    logger.warning(
                        "DTLS to %s: datagram dropped (%s)", _describe(session.address), exc
                    )
            self._take(session, now)
        elif kind is ConnectionClosed:
            assert isinstance(event, ConnectionClosed)
            self._closed_event(session, event)
        elif kind is AlertReceived:
            assert isinstance(event, AlertReceived)
            logger.debug(
                "DTLS alert %s from %s", _alert_name(event.description), _describe(session.address)
            )

    def _keep_resumable(
        self, remote: tuple[Any, ...], security: PeerSecurity, session: DtlsSession | None
    ) -> None:
        resumable = self._resumable
        resumable.pop(remote, None)
        limit = self.config.max_resumable
        if session is None or not self.config.resume_sessions or limit <= 0:
            return
        while len(resumable) >= limit:
            del resumable[next(iter(resumable))]
        resumable[remote] = (security, session)

    def _closed_event(self, session: _Session, event: ConnectionClosed) -> None:
        where = _describe(session.address)
        if session.client and (
            not session.established
            or not (event.alert is None or event.alert == AlertDescription.CLOSE_NOTIFY)
        ):
            # A failed handshake (perhaps of a resumption) or a fatal alert: start afresh.
            self._resumable.pop(session.address, None)
        if not session.established:
            self.stats.handshake_failures += 1
            if event.alert is None:
                message = f"DTLS handshake with {where} failed: {event.reason}"
            elif event.by_peer:
                message = (
                    f"DTLS handshake with {where} failed: the peer sent {_alert_name(event.alert)}"
                )
            else:
                message = (
                    f"DTLS handshake with {where} failed: {event.reason} "
                    f"({_alert_name(event.alert)})"
                )
        elif event.alert == AlertDescription.CLOSE_NOTIFY and event.by_peer:
            message = f"DTLS session with {where} closed by the peer (close_notify)"
        else:
            cause = f"the peer sent {_alert_name(event.alert)}" if event.by_peer else event.reason
            message = f"DTLS session with {where} ended: {cause}"
        self._forget(session)
        server = self._server
        if (
            not session.client
            and server is not None
            and server.connection_for(session.address) is session.connection
        ):
            server.close(session.address)  # the demultiplexer forgets the closed connection
            self._out.extend(server.datagrams_to_send(0.0))  # type: ignore[arg-type]
            self._server_timer_dirty = True
            self.output_pending = True
        if self._closed:  # our own close(): nobody is waiting any more
            logger.debug("%s", message)
            return
        routine = session.established and event.alert == AlertDescription.CLOSE_NOTIFY
        logger.log(logging.DEBUG if routine else logging.INFO, "%s", message)
        self._fail(session.key, DtlsSessionError(message, alert=event.alert, by_peer=event.by_peer))

    def _end_session(self, session: _Session, reason: str, *, close: bool) -> None:
        """End a client session on our side (settings changed)."""
        if close and not session.busy:
            session.connection.close()
            self._take(session, 0.0)
        elif close:
            session.closing = True
        self._forget(session)
        self._fail(
            session.key,
            DtlsSessionError(f"DTLS session with {_describe(session.address)}: {reason}"),
        )

    def _forget(self, session: _Session) -> None:
        if self._live.get(session.address) is session:
            del self._live[session.address]
        if session.client:
            if self._clients.get(session.address) is session:
                del self._clients[session.address]
        else:
            if self._by_address.get(session.address) is session:
                del self._by_address[session.address]
            self._by_connection.pop(session.connection, None)
        if self._by_key.get(session.key) is session:
            del self._by_key[session.key]
        if self._timers.pop(session, None) is not None:
            self._client_timer_dirty = True
            self.output_pending = True

    def _fail(self, key: Any, error: Exception) -> None:
        self._failed.append((key, error))
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup()

    def __repr__(self) -> str:
        roles = ("server+" if self._server is not None else "") + "client"
        return f"<DtlsSecurityLayer {roles} sessions={len(self._by_key)}>"
