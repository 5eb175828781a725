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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["PeerIdentity", "PlainUdp", "SecurityLayer", "UdpAddress"]

UdpAddress = tuple[Any, ...]
"""``(host, port)`` for IPv4, ``(host, port, flowinfo, scope_id)`` for IPv6."""


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """An authenticated peer identity, as established by the security layer."""

    kind: str
    """``"psk"``, ``"rpk"``, ``"x509"`` or ``"oscore"``."""
    value: bytes | str
    """PSK identity, SubjectPublicKeyInfo bytes, certificate subject, OSCORE recipient id."""


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
