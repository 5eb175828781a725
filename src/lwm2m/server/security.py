"""Who a client is: peer identities, the endpoint-name binding rule and the authorizer hook.

LwM2M-TS-Transport 1.1 §5.2.x "Endpoint Client Name" (and Core §6.2.1): the ``ep`` a client
registers with is not authenticated by LwM2M itself, so a server MUST check it against the
identity the (D)TLS handshake authenticated — the PSK identity, the certificate's subject name or
the raw public key — by equality or through a lookup table, and answer **4.00 Bad Request** on
a mismatch. :func:`check_endpoint_identity` is that rule, applied to every Register, Update,
De-register and Send whose peer has an authenticated identity. Plain UDP (NoSec) peers have no
identity (None) and pass; the network-access identity check belongs to a later transport.

:class:`SecurityInfo` is the lookup-table entry a :class:`lwm2m.store.SecurityStore` returns for
an endpoint. :class:`Authorizer` is the optional application hook: returning False answers
**4.03 Forbidden** (Core §6.2.1 "Register": the server may refuse an endpoint).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from lwm2m.errors import BadRequest

if TYPE_CHECKING:
    from lwm2m.operations.requests import UplinkRequest
    from lwm2m.server.registration import Address, Registration

__all__ = [
    "Authorizer",
    "IdentityKind",
    "PeerIdentity",
    "RequestContext",
    "SecurityInfo",
    "check_endpoint_identity",
]

log = logging.getLogger("lwm2m.server.security")


class IdentityKind(Enum):
    """How a peer was authenticated (LwM2M-TS-Core §E.1 Security Mode)."""

    PSK = "psk"
    RPK = "rpk"
    X509 = "x509"
    OSCORE = "oscore"


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """An authenticated peer identity, as the security layer reports it.

    ``value`` is the PSK identity (text), the certificate's subject common name, the SHA-256
    fingerprint of a raw public key (hex) or the OSCORE Sender ID (hex). Identities are public
    values (never key material), so they may be logged and stored.

    >>> PeerIdentity.psk(b"dev-1").name
    'dev-1'
    >>> PeerIdentity(IdentityKind.RPK, "ab01").name is None
    True
    """

    kind: IdentityKind
    value: str

    @classmethod
    def psk(cls, identity: bytes | str) -> PeerIdentity:
        """A PSK identity (bytes are decoded as UTF-8, or written in hex when they are not)."""
        if isinstance(identity, bytes):
            try:
                text = identity.decode("utf-8")
            except UnicodeDecodeError:
                text = identity.hex()
            return cls(IdentityKind.PSK, text)
        return cls(IdentityKind.PSK, identity)

    @property
    def name(self) -> str | None:
        """The endpoint name this identity stands for by equality (PSK identity, certificate
        common name); None for kinds that need a lookup table (RPK, OSCORE)."""
        if self.kind in (IdentityKind.PSK, IdentityKind.X509):
            return self.value
        return None

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.value}"


@dataclass(frozen=True, slots=True)
class SecurityInfo:
    """What the security configuration says about one endpoint: the identity it must use."""

    endpoint: str
    identity: PeerIdentity


def check_endpoint_identity(
    endpoint: str, identity: PeerIdentity | None, expected: SecurityInfo | None = None
) -> None:
    """Raise :class:`~lwm2m.errors.BadRequest` (4.00) when ``endpoint`` does not match the
    authenticated ``identity`` (Transport §5.2.x), and log one line saying so.

    - ``identity`` None (NoSec): nothing to compare, accepted.
    - ``expected`` given (a lookup-table entry for ``endpoint``): identities must be equal.
    - otherwise the identity's own name (PSK identity, certificate CN) must equal ``endpoint``.
    """
    if identity is None:
        return
    if expected is not None:
        ok = expected.endpoint == endpoint and expected.identity == identity
    else:
        ok = identity.name == endpoint
    if not ok:
        log.warning(
            "endpoint name %r does not match the authenticated identity %s: 4.00",
            endpoint,
            identity,
        )
        raise BadRequest("endpoint name does not match the authenticated identity")


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the server knows about an incoming request besides the request itself."""

    endpoint: str
    """The endpoint name (from ``ep`` for a Register, from the registration otherwise)."""
    address: Address
    """The peer's transport address."""
    identity: PeerIdentity | None
    """The authenticated identity, None for plain UDP."""
    registration: Registration | None = None
    """The existing registration (Update, De-register, Send); None for a Register."""


class Authorizer(Protocol):
    """Application hook deciding whether a client may register / update / send.

    Returning False answers the request with 4.03 Forbidden.
    """

    async def authorize(self, request: UplinkRequest, context: RequestContext) -> bool: ...
