"""Events a :class:`~lwm2m.dtls.connection.DtlsConnection` reports through ``next_event()``.

All are frozen, slotted dataclasses; secrets never appear in their repr.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

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


# -- fast construction for the server's plain PSK lane ---------------------------------------------
#
# As in lwm2m.coap.events: a frozen dataclass's ``__init__`` stores every field through
# ``object.__setattr__`` (1.3 µs for HandshakeCompleted's eight), so the lane that completes
# nearly every server handshake (.psk_lane) builds these as plain slots objects of the identical
# layout and then assigns ``__class__`` (about a third of that). The result is an ordinary,
# immutable instance of the class (eq, hash and repr included).


class _MutableSession:
    __slots__ = DtlsSession.__slots__


class _MutableHandshakeCompleted:
    __slots__ = HandshakeCompleted.__slots__


_new = object.__new__


def dtls_session(
    session_id: bytes,
    cipher_suite: int,
    master_secret: bytes,
    extended_master_secret: bool,
    peer_identity: PeerIdentity | None,
    key_log_permitted: bool,
) -> DtlsSession:
    """``DtlsSession(...)`` with these fields, built cheaply."""
    session: Any = _new(_MutableSession)
    session.session_id = session_id
    session.cipher_suite = cipher_suite
    session.master_secret = master_secret
    session.extended_master_secret = extended_master_secret
    session.peer_identity = peer_identity
    session.key_log_permitted = key_log_permitted
    session.__class__ = DtlsSession
    return session  # type: ignore[no-any-return]


def handshake_completed(
    cipher_suite: int,
    peer_identity: PeerIdentity | None,
    extended_master_secret: bool,
    connection_id: bytes | None,
    peer_connection_id: bytes | None,
) -> HandshakeCompleted:
    """The ``HandshakeCompleted`` of a server's full handshake (not resumed, no session or
    identity hint to report), built cheaply."""
    event: Any = _new(_MutableHandshakeCompleted)
    event.cipher_suite = cipher_suite
    event.peer_identity = peer_identity
    event.session_resumed = False
    event.extended_master_secret = extended_master_secret
    event.connection_id = connection_id
    event.peer_connection_id = peer_connection_id
    event.session = None
    event.psk_identity_hint = None
    event.__class__ = HandshakeCompleted
    return event  # type: ignore[no-any-return]
