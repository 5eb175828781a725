"""The transport seam under the CoAP endpoint: datagram protection per peer (plain UDP now).

A :class:`SecurityLayer` sits between the UDP socket and the sans-IO CoAP engine. It is shaped like
the other sans-IO cores (bytes and ``now`` in; datagrams, timers out) so that the DTLS 1.2 engine
of a later issue plugs in without touching :mod:`lwm2m.io.coap_endpoint` or :mod:`lwm2m.coap`:

* **Peer keys.** The CoAP engine identifies peers by a hashable *peer key*, not necessarily a UDP
  address. :class:`PlainUdp` uses the ``(host, port)`` tuple itself. A DTLS layer uses its session
  object or a key derived from the RFC 9146 Connection ID, so a NAT rebinding keeps exchanges,
  duplicate detection and observations intact.
* **Inbound.** :meth:`SecurityLayer.unprotect` takes one UDP datagram and returns the application
  plaintexts it carried, each with the peer key (zero for handshake records, which instead
  produce handshake datagrams in :meth:`~SecurityLayer.datagrams_to_send`).
* **Outbound.** :meth:`SecurityLayer.protect` takes a CoAP datagram for a peer key and returns the
  UDP datagrams to send; a layer that is still handshaking queues the plaintext and releases it
  later through :meth:`~SecurityLayer.datagrams_to_send`.
* **Client-initiated sessions.** :meth:`SecurityLayer.connect` maps a remote UDP address (what
  an application passes to ``request``) to the peer key, starting a handshake if needed (an
  LwM2M client registering; an LwM2M server reaching a device reuses the existing session).
* **Identity.** :meth:`SecurityLayer.peer_identity` returns the authenticated identity of a peer
  (PSK identity, raw public key, certificate subject) or None. The endpoint attaches it to every
  incoming request as ``peer_identity``; it is always None for plain UDP.
* **Timers.** Handshake retransmission uses :meth:`get_timer`/:meth:`handle_timer`, merged with
  the CoAP engine's timer by the endpoint.

A layer with sessions that can end or deliver outside those calls (DTLS, see
:mod:`lwm2m.io.coaps`) also implements the optional :class:`SessionLayer` methods:

* :meth:`SessionLayer.attach` gives it a ``wakeup`` callback. The layer calls it, from the event
  loop, when it has output that no endpoint call produced: plaintexts decrypted after a handshake
  step that ran in a worker thread (blocking credential backends), or failed sessions;
* the endpoint then drains :meth:`SessionLayer.received` (plaintexts with their peer keys) and
  :meth:`SessionLayer.failed_peers` (peer keys with the error): every pending request and
  observation to such a peer fails with that error instead of timing out;
* :meth:`SessionLayer.close` ends every session (DTLS close_notify) when the endpoint closes, and
  :meth:`SessionLayer.wait_closed` waits for the layer's worker threads.

A layer may also keep the optional :class:`OutputFlagLayer` attribute ``output_pending``, a
plain bool the endpoint reads instead of calling :meth:`~SecurityLayer.datagrams_to_send` and
:meth:`~SecurityLayer.get_timer` after every datagram and request (two calls and a list per
GET, most of them with nothing to report). The contract: whenever ``datagrams_to_send`` could
return a datagram, or ``get_timer`` could return another value than it last returned, the flag
is True; the layer may clear it only in those two calls. :meth:`~SecurityLayer.protect` and
:meth:`~SecurityLayer.unprotect` return their datagrams and plaintexts directly and need not set
it. While it is False the endpoint skips both calls and keeps using the deadline ``get_timer``
returned last. A layer without the attribute is asked every time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "OutputFlagLayer",
    "PeerIdentity",
    "PlainUdp",
    "SecurityLayer",
    "SessionLayer",
    "UdpAddress",
]

UdpAddress = tuple[Any, ...]
"""``(host, port)`` for IPv4, ``(host, port, flowinfo, scope_id)`` for IPv6."""


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """An authenticated peer identity, as established by the security layer."""

    kind: str
    """``"psk"``, ``"rpk"``, ``"x509"`` or ``"oscore"``."""
    value: bytes | str
    """PSK identity, SubjectPublicKeyInfo bytes, certificate subject, OSCORE recipient id."""
    details: Any = field(default=None, compare=False, repr=False)
    """The layer's own identity value when it has more to say (DTLS: the
    :class:`lwm2m.dtls.CertificateIdentity` with the chain and subjectAltNames, ...); not part
    of equality."""


@runtime_checkable
class SecurityLayer(Protocol):
    """Protects and unprotects datagrams per peer (see the module docstring)."""

    scheme: str
    """URI scheme served: ``"coap"`` or ``"coaps"``."""

    def connect(self, remote: UdpAddress, now: float) -> Any:
        """The peer key for sending to ``remote`` (may start a handshake)."""
        ...

    def unprotect(self, data: bytes, addr: UdpAddress, now: float) -> list[tuple[bytes, Any]]:
        """Application plaintexts carried by one UDP datagram, each with its peer key."""
        ...

    def protect(self, data: bytes, peer: Any, now: float) -> list[tuple[bytes, UdpAddress]]:
        """UDP datagrams carrying ``data`` to ``peer`` (empty while a handshake runs)."""
        ...

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, UdpAddress]]:
        """Handshake records and plaintexts released since the last call."""
        ...

    def peer_identity(self, peer: Any) -> PeerIdentity | None:
        """The authenticated identity of ``peer``, or None."""
        ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


@runtime_checkable
class SessionLayer(SecurityLayer, Protocol):
    """The optional part of the seam for layers with sessions (see the module docstring)."""

    def attach(self, wakeup: Callable[[], None]) -> None:
        """Called once by the endpoint; ``wakeup()`` asks it to drain :meth:`received` and
        :meth:`failed_peers` soon (call it from the event loop thread only)."""
        ...

    def received(self, now: float) -> list[tuple[bytes, Any]]:
        """Application plaintexts produced outside :meth:`unprotect`, with their peer keys."""
        ...

    def failed_peers(self) -> list[tuple[Any, Exception]]:
        """Peer keys whose session failed or closed since the last call, with the error that
        their pending requests fail with."""
        ...

    def close(self, now: float) -> None:
        """End every session (close_notify queued in :meth:`datagrams_to_send`)."""
        ...

    async def wait_closed(self) -> None:
        """Wait for background work (worker threads) to finish after :meth:`close`."""
        ...


@runtime_checkable
class OutputFlagLayer(SecurityLayer, Protocol):
    """The optional output flag of the seam (see the module docstring)."""

    output_pending: bool
    """False: :meth:`datagrams_to_send` has nothing and :meth:`get_timer` would return what it
    returned last (the endpoint skips both calls)."""


class PlainUdp:
    """No protection: the peer key is the UDP address and there is no identity (``coap://``)."""

    scheme = "coap"

    def connect(self, remote: UdpAddress, now: float) -> Any:
        return remote

    def unprotect(self, data: bytes, addr: UdpAddress, now: float) -> list[tuple[bytes, Any]]:
        return [(data, addr)]

    def protect(self, data: bytes, peer: Any, now: float) -> list[tuple[bytes, UdpAddress]]:
        return [(data, peer)]

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, UdpAddress]]:
        return []

    def peer_identity(self, peer: Any) -> PeerIdentity | None:
        return None

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None
