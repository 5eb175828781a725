"""Configuration of a DTLS endpoint; every buffer and timer bound lives here.

Defaults follow RFC 6347 §4.2.4.1 (1 s initial retransmission timer, doubling up to 60 s),
RFC 6347 §4.2.4 (the last flight of a handshake kept for twice the TCP MSL, 240 s) and
LwM2M-TS-Transport §5.2.8 (the four mandatory cipher suites, CCM_8 preferred).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .constants import CipherSuite
from .events import DtlsSession

__all__ = ["DEFAULT_CIPHER_SUITES", "DtlsConfiguration", "KeyLogWriter"]

DEFAULT_CIPHER_SUITES: tuple[int, ...] = (
    CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
    CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
)


class KeyLogWriter(Protocol):
    """Where NSS key-log lines go (a text file opened by the adapter, a ``StringIO`` ...)."""

    def write(self, text: str, /) -> object: ...


@dataclass(slots=True)
class DtlsConfiguration:
    """Settings of one DTLS endpoint (client or server)."""

    is_client: bool = True
    """Client (sends the first ClientHello) or server role."""
    cipher_suites: tuple[int, ...] = DEFAULT_CIPHER_SUITES
    """Enabled suites by preference; a suite is used only with the credentials it needs."""
    max_datagram_size: int = 1200
    """Largest datagram sent; handshake messages are fragmented to fit (RFC 6347 §4.1.1.1)."""
    max_record_plaintext: int = 2**14
    """Largest plaintext accepted in a record; larger ones get ``record_overflow``."""
    max_handshake_message_size: int = 16384
    """Largest handshake message accepted (announced length); larger ones are refused."""
    max_handshake_buffer: int = 65536
    """Bound on the bytes buffered for out-of-order handshake messages (RFC 6347 §4.2.3)."""
    initial_retransmit_timeout: float = 1.0
    """First retransmission timer of a flight (RFC 6347 §4.2.4.1)."""
    max_retransmit_timeout: float = 60.0
    """The doubling timer stops growing here."""
    max_retransmissions: int = 7
    """Retransmissions of one flight before the handshake fails with a timeout."""
    final_flight_linger: float = 240.0
    """Seconds the endpoint that sent the last flight of a handshake keeps it to send it again
    when the peer repeats its own last flight (RFC 6347 §4.2.4: at least twice the TCP MSL,
    2 x 120 s). The peer's first authenticated application data ends it early (the peer has
    the flight then)."""
    require_extended_master_secret: bool = False
    """Abort handshakes whose peer does not negotiate RFC 7627 (it is always offered)."""
    connection_id: bytes | None = None
    """RFC 9146: the CID this endpoint wants to receive. None: do not negotiate CIDs; ``b""``:
    support them but ask the peer to send none. A server demultiplexer assigns CIDs itself
    (see ``connection_id_length``)."""
    connection_id_length: int = 0
    """Server demultiplexer: length of the CIDs it assigns (0 disables CIDs)."""
    session: DtlsSession | None = None
    """Client: a session to resume (abbreviated handshake, RFC 5246 §7.3)."""
    session_cache_size: int = 1024
    """Server: most sessions kept for resumption (least recently used evicted; 0 disables)."""
    hide_unknown_psk_identity: bool = False
    """Server: answer an unknown PSK identity as if the key were wrong (``decrypt_error`` at
    Finished) instead of ``unknown_psk_identity`` (both allowed by RFC 4279 §2)."""
    require_cookie: bool = True
    """Server demultiplexer: demand a HelloVerifyRequest round trip (RFC 6347 §4.2.1)."""
    cookie_lifetime: float = 60.0
    """Server demultiplexer: the cookie secret rotates this often (the previous one stays valid
    for one more period)."""
    max_connections: int = 100000
    """Server demultiplexer: most concurrent connections. At the limit, a new client (its
    ClientHello with a valid cookie) takes the place of the least recently active connection if
    that one is stale (see ``stale_connection_threshold``); otherwise it is ignored."""
    stale_connection_threshold: float | None = 1800.0
    """Server demultiplexer: seconds without an authenticated record from the peer after which
    a connection is *stale* and may be evicted for a new client when ``max_connections`` is
    reached (never before: a quiet LwM2M client in queue mode keeps its session). None: never
    evict. The defaults (100,000 connections, 30 minutes) are of the order of Californium's
    (``DTLS_MAX_CONNECTIONS`` 150,000, ``DTLS_STALE_CONNECTION_THRESHOLD`` 30 min, checked in
    its DtlsConfig source), which uses the same rule."""
    key_log: KeyLogWriter | None = None
    """Debugging: write NSS key-log lines (``CLIENT_RANDOM <random> <master secret>``) here.
    Only honoured when every local credential has ``key_log_permitted``."""
