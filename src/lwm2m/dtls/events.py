"""Events a :class:`~lwm2m.dtls.connection.DtlsConnection` reports through ``next_event()``.

All are frozen, slotted dataclasses; secrets never appear in their repr.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from .trust import PeerIdentity

__all__ = [
    "AlertReceived",
    "ApplicationData",
    "ConnectionClosed",
    "DtlsEvent",
    "DtlsSession",
    "HandshakeCompleted",
    "PeerAddressChanged",
]


@dataclass(frozen=True, slots=True)
class DtlsSession:
    """What a client needs to resume a session (RFC 5246 §7.3, abbreviated handshake).

    Pass it as ``DtlsConfiguration.session``. It holds the master secret (not a long-term
    secret); treat it as sensitive. The repr hides it.
    """

    session_id: bytes
    cipher_suite: int
    master_secret: bytes = field(repr=False)
    extended_master_secret: bool
    peer_identity: PeerIdentity | None
    key_log_permitted: bool = False
    """The session was made with software credentials and a key log: a resumption may write
    its master secret to the key log too. False for a session made with a Secure Component's
    credentials (and for one built by hand), so that resuming it never writes the key log."""


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    """The handshake finished; application data may flow."""

    cipher_suite: int
    """The negotiated suite (compare with :class:`~lwm2m.dtls.constants.CipherSuite`)."""
    peer_identity: PeerIdentity | None
    """Who the peer proved to be; None for a client that the server did not authenticate."""
    session_resumed: bool
    """True for an abbreviated handshake."""
    extended_master_secret: bool
    """RFC 7627 was negotiated."""
    connection_id: bytes | None = None
    """The CID this endpoint receives records with (RFC 9146); None when not negotiated."""
    peer_connection_id: bytes | None = None
    """The CID this endpoint writes into records it sends; None when not negotiated."""
    session: DtlsSession | None = None
    """Client: the session to resume later (None when the server gave no session id)."""
    psk_identity_hint: bytes | None = None
    """Client, PSK suites: the server's identity hint, if it sent one."""


@dataclass(frozen=True, slots=True)
class ApplicationData:
    """One record of application data."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AlertReceived:
    """The peer sent an alert (``level``/``description`` as raw ints, RFC 5246 §7.2)."""

    level: int
    description: int


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection ended; nothing more will be sent or received."""

    alert: int | None
    """The alert description that ended it (sent or received), None for a timeout."""
    by_peer: bool
    """True when the peer closed or failed it."""
    reason: str = ""
    """A human-readable cause (never secret)."""


@dataclass(frozen=True, slots=True)
class PeerAddressChanged:
    """Server demultiplexer only: an authenticated CID record came from a new address
    (RFC 9146 §6); later datagrams of this connection go to ``new_address``."""

    old_address: Hashable
    new_address: Hashable


DtlsEvent = HandshakeCompleted | ApplicationData | AlertReceived | ConnectionClosed
