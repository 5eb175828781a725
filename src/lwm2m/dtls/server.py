"""The server-side demultiplexer: one object for every datagram of a DTLS server socket.

- ClientHellos from unknown addresses are answered statelessly with a HelloVerifyRequest
  (RFC 6347 §4.2.1); only a ClientHello with a valid cookie creates a :class:`DtlsConnection`,
  so a flood of spoofed hellos leaves no per-client state.
- Datagrams are routed by connection ID when they carry one (``tls12_cid`` records, RFC 9146 §4)
  and by address otherwise. A CID record that authenticates and is the newest one seen moves the
  connection to the datagram's address (RFC 9146 §6), reported as ``PeerAddressChanged``.
- A new ClientHello from the address of an established connection starts a new handshake once
  its cookie verifies, replacing the old association (RFC 6347 §4.2.8).
- Closed connections are forgotten after their last datagram was handed out.

Addresses are opaque hashable values (for UDP: ``(host, port)``).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterator
from dataclasses import dataclass

from lwm2m.buffer import Buffer
from lwm2m.errors import BufferReadError

from .config import DtlsConfiguration
from .connection import ConnectionState, DtlsConnection
from .constants import DTLS_1_0, ContentType, HandshakeType
from .cookie import CookieGenerator
from .credentials import DtlsCredentials
from .errors import Alert, DtlsStateError
from .events import DtlsEvent, PeerAddressChanged
from .handshake import SessionCache
from .messages import (
    ClientHello,
    HelloVerifyRequest,
    encode_handshake,
    pull_client_hello,
    pull_handshake_fragment,
    push_hello_verify_request,
)
from .record import RECORD_HEADER_LENGTH, RawRecord, encode_record, parse_datagram

__all__ = ["DtlsServer", "ServerEvent"]

#: Most queued stateless replies; beyond it HelloVerifyRequests are not sent (drain often).
_MAX_STATELESS_REPLIES = 4096


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """An event of one connection of a :class:`DtlsServer`."""

    address: Hashable
    connection: DtlsConnection
    event: DtlsEvent | PeerAddressChanged


def _initial_client_hello(data: bytes) -> tuple[RawRecord, int, ClientHello] | None:
    """``(record, message_seq, hello)`` when ``data`` starts with an unfragmented epoch-0
    ClientHello, else None."""
    if len(data) < RECORD_HEADER_LENGTH + 12 or data[0] != ContentType.HANDSHAKE:
        return None
    if data[3:5] != b"\x00\x00" or data[13] != HandshakeType.CLIENT_HELLO:
        return None
    records = parse_datagram(data)
    if not records:
        return None
    record = records[0]
    try:
        buf = Buffer(record.fragment)
        fragment = pull_handshake_fragment(buf)
        if fragment.fragment_offset or len(fragment.fragment) != fragment.length:
            return None
        hello_buf = Buffer(fragment.fragment)
        hello = pull_client_hello(hello_buf)
    except (BufferReadError, Alert):
        return None
    if record.version >> 8 != 0xFE:
        return None
    return record, fragment.message_seq, hello


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
        self._by_address: dict[Hashable, DtlsConnection] = {}
        self._addresses: dict[DtlsConnection, Hashable] = {}
        self._by_cid: dict[bytes, DtlsConnection] = {}
        self._timers: dict[DtlsConnection, float] = {}
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

    def receive_datagram(self, data: bytes, address: Hashable, now: float) -> None:
        """Route one datagram received from ``address``; never raises for peer input."""
        if not data:
            return
        cid_length = self._configuration.connection_id_length
        if data[0] == ContentType.TLS12_CID:
            if cid_length and len(data) >= 11 + cid_length:
                connection = self._by_cid.get(data[11 : 11 + cid_length])
                if connection is not None:
                    self._receive_cid(connection, data, address, now)
            return
        connection = self._by_address.get(address)
        if connection is not None and not self._is_new_hello(connection, data):
            connection.receive_datagram(data, now)
            self._service(connection)
            return
        initial = _initial_client_hello(data)
        if initial is None:
            return
        record, message_seq, hello = initial
        client = repr(address).encode()
        if self._configuration.require_cookie and not self._cookies.verify(
            hello.cookie, client, hello, now
        ):
            if len(self._outgoing) < _MAX_STATELESS_REPLIES:
                cookie = self._cookies.generate(client, hello, now)
                self._outgoing.append(
                    (self._hello_verify_request(record, message_seq, cookie), address)
                )
            return
        if connection is None and len(self._addresses) >= self._configuration.max_connections:
            return
        if connection is not None:
            self._forget(connection)
        cid = self._new_connection_id()
        connection = DtlsConnection(
            configuration=self._configuration,
            credentials=self._credentials,
            session_cache=self._sessions,
            connection_id=cid,
            _first_message_seq=message_seq,
            _first_record_seq=record.sequence_number,
        )
        self._by_address[address] = connection
        self._addresses[connection] = address
        if cid:
            self._by_cid[cid] = connection
        connection.receive_datagram(data, now)
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
        connection.send(data)
        self._service(connection)

    def close(self, address: Hashable) -> None:
        """Close the connection at ``address`` with close_notify (no-op when there is none)."""
        connection = self._by_address.get(address)
        if connection is not None:
            connection.close()
            self._service(connection)

    # -- internals ---------------------------------------------------------------------------

    def _is_new_hello(self, connection: DtlsConnection, data: bytes) -> bool:
        """An epoch-0 ClientHello that starts a new association on a known address."""
        if len(data) < RECORD_HEADER_LENGTH + 1 or data[0] != ContentType.HANDSHAKE:
            return False
        if data[3:5] != b"\x00\x00" or data[13] != HandshakeType.CLIENT_HELLO:
            return False
        if connection.state is not ConnectionState.HANDSHAKING:
            return True
        initial = _initial_client_hello(data)
        return initial is not None and initial[2].random != connection._peer_random()

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
            and connection.state is not ConnectionState.CLOSED
        ):
            # RFC 9146 §6: only an authenticated, newest record may move the peer.
            if self._by_address.get(old) is connection:
                del self._by_address[old]
            displaced = self._by_address.get(address)
            if displaced is not None:
                self._forget(displaced)
            self._by_address[address] = connection
            self._addresses[connection] = address
            self._events.append(ServerEvent(address, connection, PeerAddressChanged(old, address)))
        self._service(connection)

    def _service(self, connection: DtlsConnection) -> None:
        address = self._addresses.get(connection)
        for datagram in connection.datagrams_to_send(0.0):
            self._outgoing.append((datagram, address))
        while (event := connection.next_event()) is not None:
            self._events.append(ServerEvent(address, connection, event))
        deadline = connection.get_timer()
        if connection.state is ConnectionState.CLOSED:
            self._forget(connection)
        elif deadline is None:
            self._timers.pop(connection, None)
        else:
            self._timers[connection] = deadline

    def _forget(self, connection: DtlsConnection) -> None:
        address = self._addresses.pop(connection, None)
        if address is not None and self._by_address.get(address) is connection:
            del self._by_address[address]
        cid = connection.connection_id
        if cid and self._by_cid.get(cid) is connection:
            del self._by_cid[cid]
        self._timers.pop(connection, None)

    def _new_connection_id(self) -> bytes | None:
        length = self._configuration.connection_id_length
        if not length:
            return None
        while True:
            cid = os.urandom(length)
            if cid not in self._by_cid:
                return cid

    @staticmethod
    def _hello_verify_request(record: RawRecord, message_seq: int, cookie: bytes) -> bytes:
        # RFC 6347 §4.2.1: version DTLS 1.0 in the HelloVerifyRequest; the record and message
        # sequence numbers of the ClientHello are echoed.
        buf = Buffer()
        push_hello_verify_request(buf, HelloVerifyRequest(DTLS_1_0, cookie))
        fragment = encode_handshake(HandshakeType.HELLO_VERIFY_REQUEST, message_seq, buf.data)
        return encode_record(ContentType.HANDSHAKE, DTLS_1_0, 0, record.sequence_number, fragment)
