"""The server-side demultiplexer: one object for every datagram of a DTLS server socket.

- ClientHellos from unknown addresses are answered statelessly with a HelloVerifyRequest
  (RFC 6347 §4.2.1); only a ClientHello with a valid cookie creates a :class:`DtlsConnection`,
  so a flood of spoofed hellos leaves no per-client state. A hello is answered only when it
  is one unfragmented epoch-0 record: reassembling it (RFC 6347 §4.2.3) would mean state for
  peers that proved nothing. OpenSSL's ``DTLSv1_listen`` (``SSL_R_FRAGMENTED_CLIENT_HELLO``) and
  Mbed TLS refuse fragmented hellos too; our client never fragments its hello (see
  :mod:`.connection`).
- The server's epoch-0 records continue the record numbering of the ClientHello that made the
  connection, as OpenSSL and Mbed TLS do: the HelloVerifyRequest echoes the number of the hello
  it answers (§4.2.1), and a client's epoch-0 replay window then accepts what follows. A
  ClientHello numbered within 2**32 of the last sequence number (2**48 - 1, §4.1) would leave
  the server no numbers for its flights and is dropped (no real client gets there).
- Datagrams are routed by connection ID when they carry one (``tls12_cid`` records, RFC 9146 §4)
  and by address otherwise. A CID record that authenticates and is the newest one seen moves the
  connection to the datagram's address (RFC 9146 §6), reported as ``PeerAddressChanged``.
- A new ClientHello (another client random) from the address of an established connection
  starts a new handshake once its cookie verifies, replacing the old association (RFC 6347
  §4.2.8: the cookie exchange demonstrated reachability). Without cookies
  (``require_cookie=False``) the new handshake runs beside the old association, which keeps
  working and is replaced only when the new handshake completes (§4.2.8: "by completing a
  complete handshake"); datagrams from the address go to the old association first and to the
  new handshake when nothing in them authenticated under the old keys. One such handshake per
  address: a further new hello replaces it. A duplicate of the association's own hello (the
  same client random, RFC 6347 §4.2.8 is about a *new* hello) goes to the connection, which
  ignores it (or, holding its last flight, answers a repeated last flight, §4.2.4).
- Closed connections are forgotten after their last datagram was handed out.
- At ``max_connections``, a new client takes the place of the least recently active connection
  when that one is stale (no authenticated record for ``stale_connection_threshold`` seconds);
  the evicted peer gets a close_notify and its :class:`ConnectionClosed` event says why. Peers
  that moved (NAT rebinding without a CID) or vanished so cannot fill the table for good.
  Activity is read off ``DtlsConnection.highest_authenticated_record`` when it matters (a
  "second chance" queue), so the record fast paths, which adapters may call on the connection
  directly, pay nothing for it.
- Fast path: a datagram that is one application-data record of an established connection, from
  the connection's current address, goes straight to :meth:`DtlsConnection.open_record` (no
  per-datagram service step: such a record queues no datagram, changes no timer and ends nothing).
  :meth:`DtlsServer.open_record` offers the same to adapters without the :class:`ServerEvent`.
  Everything else, a CID record from a new address included, takes the general path.

Addresses are opaque hashable values (for UDP: ``(host, port)``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from struct import Struct
from typing import Any

from .config import DtlsConfiguration
from .connection import ConnectionState, DtlsConnection
from .constants import DTLS_1_0, DTLS_1_2, ContentType, HandshakeType, member_view
from .cookie import CookieGenerator
from .credentials import DtlsCredentials
from .errors import DtlsStateError
from .events import ApplicationData, DtlsEvent, PeerAddressChanged
from .handshake import SessionCache
from .messages import HANDSHAKE_HEADER_LENGTH, initial_client_hello
from .psk_lane import Offer
from .record import MAX_SEQUENCE_NUMBER, RECORD_HEADER_LENGTH

__all__ = ["DtlsServer", "ServerEvent"]

logger = logging.getLogger(__name__)

_CT = member_view(ContentType)
_HT = member_view(HandshakeType)
_CS = member_view(ConnectionState)

_APPLICATION_DATA = int(ContentType.APPLICATION_DATA)
_TLS12_CID = int(ContentType.TLS12_CID)
_HANDSHAKE = int(ContentType.HANDSHAKE)
_CLIENT_HELLO = int(HandshakeType.CLIENT_HELLO)
#: A HelloVerifyRequest's msg_type in the top byte of its type+length word.
_HELLO_VERIFY_REQUEST_TYPE = int(HandshakeType.HELLO_VERIFY_REQUEST) << 24
#: Most queued stateless replies; beyond it HelloVerifyRequests are not sent (drain often).
_MAX_STATELESS_REPLIES = 4096
#: Highest record sequence number of a ClientHello that may make a connection: the server's
#: epoch-0 records continue from it and need room (2**32 numbers, far more than any flight
#: and its retransmissions take; RFC 6347 §4.1 ends the sequence space at 2**48 - 1).
_LAST_HELLO_RECORD_SEQ = MAX_SEQUENCE_NUMBER - 2**32
#: The first 6 bytes of a handshake header: msg_type+length as one word, message_seq.
_TYPE_LENGTH_SEQ = Struct("!IH")
#: A HelloVerifyRequest up to its cookie: record header (type, version, epoch, seq_hi, seq_lo,
#: length), handshake header (type+length, message_seq, offset_hi, offset_lo+fragment_length),
#: server_version and the cookie length.
_HVR_HEADER = Struct("!BHHHIHIHHIHB")


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """An event of one connection of a :class:`DtlsServer`."""

    address: Hashable
    connection: DtlsConnection
    event: DtlsEvent | PeerAddressChanged


class _MutableServerEvent:
    __slots__ = ServerEvent.__slots__


_new = object.__new__


def _server_event(
    address: Hashable, connection: DtlsConnection, event: DtlsEvent | PeerAddressChanged
) -> ServerEvent:
    """``ServerEvent(address, connection, event)``, built as :mod:`.events` builds the
    handshake's events (a slots object of the same layout given the class), for the events of
    every datagram."""
    built: Any = _new(_MutableServerEvent)
    built.address = address
    built.connection = connection
    built.event = event
    built.__class__ = ServerEvent
    return built  # type: ignore[no-any-return]


class DtlsServer:
    """Demultiplexes a server socket's datagrams into :class:`DtlsConnection`\\ s (sans-IO).

    :param configuration: the server configuration (``is_client`` must be False); its
        ``require_cookie``, ``cookie_lifetime``, ``connection_id_length``, ``max_connections`` and
        ``session_cache_size`` apply here.
    :param credentials: the server's credentials, shared by all connections.
    """

    def __init__(
        self,
        *,
        configuration: DtlsConfiguration,
        credentials: DtlsCredentials,
        cookie_generator: CookieGenerator | None = None,
    ) -> None:
        if configuration.is_client:
            raise ValueError("DtlsServer needs a server configuration (is_client=False)")
        self._configuration = configuration
        self._credentials = credentials
        self._cookies = cookie_generator or CookieGenerator(configuration.cookie_lifetime)
        self._sessions = SessionCache(configuration.session_cache_size)
        # What the hellos of this server's peers offer, read once per distinct offer (psk_lane).
        self._offers: dict[bytes, Offer | None] = {}
        self._by_address: dict[Hashable, DtlsConnection] = {}
        # Without cookies: a new handshake beside the established association at its address,
        # replacing it once complete (RFC 6347 §4.2.8); also in _addresses.
        self._pending: dict[Hashable, DtlsConnection] = {}
        self._addresses: dict[DtlsConnection, Hashable] = {}
        self._by_cid: dict[bytes, DtlsConnection] = {}
        self._timers: dict[DtlsConnection, float] = {}
        # Connections by when they were queued, oldest first, with the newest authenticated
        # record they had then (compared by value): see _evict_stale.
        self._queued: dict[DtlsConnection, tuple[float, tuple[int, int]]] = {}
        self._outgoing: list[tuple[bytes, Hashable]] = []
        self._events: list[ServerEvent] = []

    # -- inspection --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._addresses)

    def __iter__(self) -> Iterator[DtlsConnection]:
        return iter(list(self._addresses))

    def connection_for(self, address: Hashable) -> DtlsConnection | None:
        return self._by_address.get(address)

    def address_of(self, connection: DtlsConnection) -> Hashable | None:
        return self._addresses.get(connection)

    @property
    def session_cache(self) -> SessionCache:
        return self._sessions

    # -- sans-IO API -------------------------------------------------------------------------

    def open_record(self, data: bytes, address: Hashable) -> tuple[DtlsConnection, bytes] | None:
        """``(connection, plaintext)`` when ``data`` is one application-data record (plain or
        CID) of the established connection at ``address`` (see
        :meth:`DtlsConnection.open_record`); else None, nothing changed, and the datagram goes
        to :meth:`receive_datagram`. No :class:`ServerEvent` is made for the plaintext returned.

        A CID record routes by its CID but is taken here only from the connection's current
        address: a record from another one may move the connection (RFC 9146 §6), which the
        general path decides.
        """
        if not data:
            return None
        first = data[0]
        if first == _APPLICATION_DATA:
            connection = self._by_address.get(address)
        elif first == _TLS12_CID:
            cid_length = self._configuration.connection_id_length
            if not cid_length:
                return None
            connection = self._by_cid.get(data[11 : 11 + cid_length])
            if connection is None or self._addresses.get(connection) != address:
                return None
        else:
            return None
        if connection is None:
            return None
        plaintext = connection.open_record(data)
        return None if plaintext is None else (connection, plaintext)

    def receive_datagram(self, data: bytes, address: Hashable, now: float) -> None:
        """Route one datagram received from ``address``; never raises for peer input."""
        if not data:
            return
        first = data[0]
        if first != _HANDSHAKE:  # handshake records go past the record fast path
            opened = self.open_record(data, address)
            if opened is not None:  # the fast path of established connections
                known, plaintext = opened
                self._events.append(
                    _server_event(self._addresses.get(known), known, ApplicationData(plaintext))
                )
                return
            if first == _TLS12_CID:
                cid_length = self._configuration.connection_id_length
                if cid_length and len(data) >= 11 + cid_length:
                    connection = self._by_cid.get(data[11 : 11 + cid_length])
                    if connection is not None:
                        self._receive_cid(connection, data, address, now)
                return
        connection = self._by_address.get(address)
        if connection is not None:
            if self._pending:
                pending = self._pending.get(address)
                if pending is not None and self._receive_beside(connection, pending, data, now):
                    return
            if (
                first != _HANDSHAKE
                or len(data) <= RECORD_HEADER_LENGTH
                or data[RECORD_HEADER_LENGTH] != _CLIENT_HELLO  # _is_new_hello's quick no
                or not self._is_new_hello(connection, data)
            ):
                connection.receive_datagram(data, now)
                self._service(connection)
                return
        initial = initial_client_hello(data)
        if initial is None:
            return
        if self._configuration.require_cookie:
            cookie = self._cookies.check(
                initial.cookie, repr(address).encode(), initial.parameters, now
            )
            if cookie is not None:
                if len(self._outgoing) >= _MAX_STATELESS_REPLIES:
                    return
                self._outgoing.append(
                    (
                        self._hello_verify_request(initial.record_seq, initial.message_seq, cookie),
                        address,
                    )
                )
                return
        if initial.record_seq > _LAST_HELLO_RECORD_SEQ:
            return  # no room left for the server's own epoch-0 numbers (see the docstring)
        beside = False
        if connection is None:
            if len(self._addresses) >= self._configuration.max_connections and not (
                self._evict_stale(now)
            ):
                return
        elif connection.state is _CS.ESTABLISHED and not self._configuration.require_cookie:
            # RFC 6347 §4.2.8: nothing proved the peer yet; the association stays until the new
            # handshake completes. An earlier unproven one is replaced.
            beside = True
            earlier = self._pending.get(address)
            if earlier is not None:
                self._forget(earlier)
        else:
            self._forget(connection)
        cid = self._new_connection_id() if self._configuration.connection_id_length else None
        connection = DtlsConnection(
            configuration=self._configuration,
            credentials=self._credentials,
            session_cache=self._sessions,
            connection_id=cid,
            _first_message_seq=initial.message_seq,
            _first_record_seq=initial.record_seq,
            _offers=self._offers,
        )
        if beside:
            self._pending[address] = connection
        else:
            self._by_address[address] = connection
        self._addresses[connection] = address
        self._queued[connection] = (now, connection.highest_authenticated_record)
        if cid:
            self._by_cid[cid] = connection
        connection.receive_datagram(data, now, initial)
        self._service(connection)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Hashable]]:
        """``(datagram, address)`` pairs to transmit now."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def get_timer(self) -> float | None:
        return min(self._timers.values(), default=None)

    def handle_timer(self, now: float) -> None:
        for connection, deadline in list(self._timers.items()):
            if deadline <= now:
                connection.handle_timer(now)
                self._service(connection)

    def next_event(self) -> ServerEvent | None:
        return self._events.pop(0) if self._events else None

    def send(self, address: Hashable, data: bytes) -> None:
        """Send application data to the connection at ``address``.

        Raises :class:`DtlsStateError` when there is no established connection there.
        """
        connection = self._by_address.get(address)
        if connection is None:
            raise DtlsStateError(f"no DTLS connection with {address!r}")
        # seal() raises what send() would; it queues nothing and changes no timer or event.
        self._outgoing.append((connection.seal(data), address))

    def close(self, address: Hashable) -> None:
        """Close the connection at ``address`` with close_notify (no-op when there is none)."""
        connection = self._by_address.get(address)
        if connection is not None:
            connection.close()
            self._service(connection)

    # -- internals ---------------------------------------------------------------------------

    def _is_new_hello(self, connection: DtlsConnection, data: bytes) -> bool:
        """An epoch-0 ClientHello that starts a new association on a known address: one with
        another client random than the hello that made (or is making) the connection. A hello
        that cannot be read goes to a connection still handshaking (its reassembler), else to
        the hello path (which drops it)."""
        if len(data) < RECORD_HEADER_LENGTH + 1 or data[0] != _CT.HANDSHAKE:
            return False
        if data[3:5] != b"\x00\x00" or data[13] != _HT.CLIENT_HELLO:
            return False
        initial = initial_client_hello(data)
        if initial is None:
            return connection.state is not _CS.HANDSHAKING
        return initial.random != connection._peer_random()

    def _receive_beside(
        self, old: DtlsConnection, pending: DtlsConnection, data: bytes, now: float
    ) -> bool:
        """Route a datagram from an address where a handshake runs beside the established
        association ``old`` (no cookies, RFC 6347 §4.2.8); False for a ClientHello that is not
        the pending handshake's (the caller's hello rules apply to it).

        The old association sees the datagram first; the new handshake gets it when no record
        in it authenticated under the old keys (its own records never do: other keys, and
        epoch 0 authenticates nothing).
        """
        if (
            data[0] == _CT.HANDSHAKE
            and data[3:5] == b"\x00\x00"
            and len(data) > RECORD_HEADER_LENGTH
            and data[13] == _HT.CLIENT_HELLO
        ):
            initial = initial_client_hello(data)
            if initial is None or initial.random != pending._peer_random():
                return False
            pending.receive_datagram(data, now)
            self._service(pending)
            return True
        before = old.highest_authenticated_record
        old.receive_datagram(data, now)
        self._service(old)
        if old.highest_authenticated_record == before and pending.state is not _CS.CLOSED:
            pending.receive_datagram(data, now)
            self._service(pending)
        return True

    def _receive_cid(
        self, connection: DtlsConnection, data: bytes, address: Hashable, now: float
    ) -> None:
        before = connection.highest_authenticated_record
        connection.receive_datagram(data, now)
        old = self._addresses.get(connection)
        if (
            old is not None
            and old != address
            and connection.highest_authenticated_record > before
            and connection.state is not _CS.CLOSED
        ):
            # RFC 9146 §6: only an authenticated, newest record may move the peer.
            self._unmap(old, connection)
            unproven = self._pending.get(address)
            if unproven is not None:
                self._forget(unproven)
            displaced = self._by_address.get(address)
            if displaced is not None:
                self._forget(displaced)
            self._by_address[address] = connection
            self._addresses[connection] = address
            self._events.append(ServerEvent(address, connection, PeerAddressChanged(old, address)))
        self._service(connection)

    def _service(self, connection: DtlsConnection) -> None:
        # The connection's output and timer (get_timer()), read in place: this runs after every
        # datagram that is not an application-data record of an established connection.
        address = self._addresses.get(connection)
        datagrams = connection._datagrams
        if datagrams:
            connection._datagrams = []
            outgoing = self._outgoing
            for datagram in datagrams:
                outgoing.append((datagram, address))
        events = connection._events
        if events:
            connection._events = []
            for event in events:
                self._events.append(_server_event(address, connection, event))
        state = connection._state
        if state is _CS.CLOSED:
            self._forget(connection)
            return
        deadline, linger = connection._timer, connection._linger
        if linger is not None:
            deadline = linger if deadline is None else min(deadline, linger)
        if deadline is None:
            self._timers.pop(connection, None)
        else:
            self._timers[connection] = deadline
        if self._pending and state is _CS.ESTABLISHED and self._pending.get(address) is connection:
            # The handshake beside an association completed: it replaces the old one (§4.2.8).
            old = self._by_address.get(address)
            if old is not None:
                self._forget(old)  # maps the new connection in its place (_unmap)
            else:  # pragma: no cover - _unmap keeps a handshake beside an association only
                del self._pending[address]
                self._by_address[address] = connection

    def _unmap(self, address: Hashable, connection: DtlsConnection) -> None:
        """``connection`` is no longer reached at ``address``; a handshake running beside it
        there takes its place."""
        if self._by_address.get(address) is connection:
            pending = self._pending.pop(address, None) if self._pending else None
            if pending is None:
                del self._by_address[address]
            else:
                self._by_address[address] = pending
        elif self._pending.get(address) is connection:
            del self._pending[address]

    def _forget(self, connection: DtlsConnection) -> None:
        address = self._addresses.pop(connection, None)
        if address is not None:
            self._unmap(address, connection)
        cid = connection.connection_id
        if cid and self._by_cid.get(cid) is connection:
            del self._by_cid[cid]
        self._timers.pop(connection, None)
        self._queued.pop(connection, None)

    def _evict_stale(self, now: float) -> bool:
        """Close the least recently active connection if it is stale; whether one was.

        The queue is in the order connections were (re)queued. A head that received an
        authenticated record since it was queued goes to the back as if active now (a second
        chance), so each move is paid for by a record and a full table of busy peers costs one
        pass, not one per new hello. A head without such a record was last active before it
        was queued; if that is not stale, nothing behind it is (queued later, or active since).
        """
        threshold = self._configuration.stale_connection_threshold
        if threshold is None:
            return False
        queued = self._queued
        for _ in range(len(queued)):
            connection = next(iter(queued))
            since, seen = queued[connection]
            newest = connection.highest_authenticated_record
            if newest != seen:
                del queued[connection]
                queued[connection] = (now, newest)
                continue
            if now - since < threshold:
                return False
            address = self._addresses.get(connection)
            logger.info("DTLS connection with %r evicted: idle for %.0f s", address, now - since)
            connection.close(reason=f"evicted: no record for {now - since:.0f} s")
            self._service(connection)
            return True
        return False

    def _new_connection_id(self) -> bytes | None:
        length = self._configuration.connection_id_length
        if not length:
            return None
        while True:
            cid = os.urandom(length)
            if cid not in self._by_cid:
                return cid

    @staticmethod
    def _hello_verify_request(record_seq: int, message_seq: int, cookie: bytes) -> bytes:
        # RFC 6347 §4.2.1: server_version DTLS 1.0 in the HelloVerifyRequest message; the record
        # and message sequence numbers of the ClientHello are echoed. The record layer says
        # DTLS 1.2, the version this server speaks (§4.2.1 rules the message field only):
        # tinydtls before 0.8 (Wakaama's tree, and the devices built on it) drops every record
        # whose version is not 1.2, this one included (its is_record()), and then never
        # completes a handshake. Built in one step: it is the reply to every cookie-less hello.
        body_length = 3 + len(cookie)
        return (
            _HVR_HEADER.pack(
                _HANDSHAKE,
                DTLS_1_2,
                0,
                record_seq >> 32,
                record_seq & 0xFFFFFFFF,
                HANDSHAKE_HEADER_LENGTH + body_length,
                _HELLO_VERIFY_REQUEST_TYPE | body_length,
                message_seq,
                0,
                body_length,
                DTLS_1_0,
                len(cookie),
            )
            + cookie
        )
