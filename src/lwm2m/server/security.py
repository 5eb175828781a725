"""Who a client is: peer identities, the endpoint-name binding rule and the authorizer hook.

LwM2M-TS-Transport 1.1 §5.2.x "Endpoint Client Name" (and Core §6.2.1): the ``ep`` a client
registers with is not authenticated by LwM2M itself, so a server MUST check it against the
identity the (D)TLS handshake authenticated — the PSK identity, the certificate's subject name or
the raw public key — by equality or through a lookup table, and answer **4.00 Bad Request** on
a mismatch. :func:`check_endpoint_identity` is that rule, applied to every Register, Update,
De-register and Send whose peer has an authenticated identity. Plain UDP (NoSec) peers have no
identity (None) and pass, unless the lookup table says the endpoint must authenticate (or the
server accepts NoSec clients only with a NoSec entry); the network-access identity check belongs
to a later transport.

:class:`SecurityInfo` is the lookup-table entry a :class:`lwm2m.store.SecurityStore` keeps per
endpoint: the identity the endpoint must authenticate with and what the server needs to
authenticate it — a PSK identity and key (:class:`SecretKey`, never shown), a raw public key
(its SubjectPublicKeyInfo, the identity being its SHA-256), the certificate name (CN or a
subjectAltName) an X.509 client must carry, or nothing (NoSec). :class:`Authorizer` is the
optional application hook: returning False answers **4.03 Forbidden** (Core §6.2.1 "Register":
the server may refuse an endpoint).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from lwm2m.errors import BadRequest

if TYPE_CHECKING:
    from lwm2m.operations.requests import UplinkRequest
    from lwm2m.server.registration import Address, Registration

__all__ = [
    "Authorizer",
    "IdentityKind",
    "OscoreInfo",
    "PeerIdentity",
    "RequestContext",
    "SecretKey",
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
    alt_names: tuple[str, ...] = field(default=(), compare=False, repr=False)
    """X.509: the certificate's subjectAltName values (names the endpoint may bind to besides
    ``value``, the common name); not part of equality."""

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

    @property
    def names(self) -> tuple[str, ...]:
        """Every name this identity carries: the value, then (X.509) the subjectAltNames."""
        return (self.value, *self.alt_names)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.value}"


class SecretKey:
    """Secret bytes (a PSK): compared in constant time, never shown by ``repr`` / ``str``.

    >>> key = SecretKey(bytes(16))
    >>> key, len(key)
    (SecretKey(<16 bytes>), 16)
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray):
            raise TypeError("a secret key must be bytes")
        if not value:
            raise ValueError("a secret key must not be empty")
        self._value = bytes(value)

    def reveal(self) -> bytes:
        """The key bytes (for the DTLS credential or a store, nothing else)."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretKey):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(len(self._value))

    def __repr__(self) -> str:
        return f"SecretKey(<{len(self._value)} bytes>)"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a SecretKey is not pickled")


@dataclass(frozen=True, slots=True)
class OscoreInfo:
    r"""A client's OSCORE input parameters as its server keeps them (RFC 8613 §3.2), named from
    the client's side, as in its /21 instance: the server's Sender ID is the client's
    ``recipient_id``. ``aead`` and ``hkdf`` are COSE algorithm ids (RFC 8613 §3.2 defaults).

    >>> OscoreInfo(b"\x01", b"\x02", SecretKey(bytes(16)))
    OscoreInfo(sender_id=b'\x01', recipient_id=b'\x02', master_salt=b'', aead=10, hkdf=-10)
    """

    sender_id: bytes
    """The client's Sender ID: the ``kid`` of its requests, its identity at the server."""
    recipient_id: bytes
    """The client's Recipient ID: the server's Sender ID."""
    master_secret: SecretKey = field(repr=False)
    master_salt: bytes = b""
    aead: int = 10
    hkdf: int = -10

    def __post_init__(self) -> None:
        if self.sender_id == self.recipient_id:
            raise ValueError("the OSCORE Sender and Recipient IDs must differ (RFC 8613 §3.3)")


@dataclass(frozen=True, slots=True)
class SecurityInfo:
    """What the security configuration says about one endpoint: the identity it must use and
    what authenticates it. Build with :meth:`psk`, :meth:`rpk`, :meth:`x509` or :meth:`nosec`.

    >>> SecurityInfo.psk("dev1", "dev1", bytes(16))
    SecurityInfo(endpoint='dev1', identity=PeerIdentity(kind=<IdentityKind.PSK: 'psk'>, \
value='dev1'), public_key=b'', oscore=None)
    """

    endpoint: str
    identity: PeerIdentity | None
    """The identity the endpoint authenticates with; None: NoSec (plain CoAP)."""
    psk_key: SecretKey | None = field(default=None, repr=False)
    """PSK mode: the key of the PSK identity."""
    public_key: bytes = b""
    """RPK mode: the DER SubjectPublicKeyInfo (``identity`` is its SHA-256, hex)."""
    oscore: OscoreInfo | None = None
    """OSCORE: the client's input parameters (``identity`` is its Sender ID, hex)."""

    def __post_init__(self) -> None:
        if not self.endpoint:
            raise ValueError("a security entry needs an endpoint name")
        identity = self.identity
        if self.oscore is not None and identity != PeerIdentity(
            IdentityKind.OSCORE, self.oscore.sender_id.hex()
        ):
            raise ValueError(f"{self.endpoint}: the OSCORE identity is not the Sender ID")
        if self.psk_key is not None and (identity is None or identity.kind is not IdentityKind.PSK):
            raise ValueError(f"{self.endpoint}: a PSK key needs a PSK identity")
        if self.public_key and (
            identity is None
            or identity.kind is not IdentityKind.RPK
            or identity.value != hashlib.sha256(self.public_key).hexdigest()
        ):
            raise ValueError(f"{self.endpoint}: the RPK identity is not the key's SHA-256")

    @classmethod
    def psk(cls, endpoint: str, identity: bytes | str, key: bytes | SecretKey) -> SecurityInfo:
        """Mode 0: the endpoint authenticates with this PSK identity and key."""
        secret = key if isinstance(key, SecretKey) else SecretKey(key)
        return cls(endpoint, PeerIdentity.psk(identity), secret)

    @classmethod
    def rpk(cls, endpoint: str, public_key: bytes) -> SecurityInfo:
        """Mode 1: the endpoint proves possession of this raw public key (DER SPKI)."""
        if not public_key:
            raise ValueError(f"{endpoint}: an RPK entry needs the public key")
        digest = hashlib.sha256(public_key).hexdigest()
        return cls(endpoint, PeerIdentity(IdentityKind.RPK, digest), None, bytes(public_key))

    @classmethod
    def x509(cls, endpoint: str, name: str | None = None) -> SecurityInfo:
        """Mode 2: the endpoint's certificate (validated against the server's trust anchors)
        must name ``name`` (default: the endpoint name) as its CN or a subjectAltName."""
        return cls(endpoint, PeerIdentity(IdentityKind.X509, name or endpoint))

    @classmethod
    def oscore_context(
        cls,
        endpoint: str,
        sender_id: bytes,
        recipient_id: bytes,
        master_secret: bytes | SecretKey,
        *,
        master_salt: bytes = b"",
        aead: int = 10,
        hkdf: int = -10,
    ) -> SecurityInfo:
        """OSCORE (/0/x/17): the endpoint protects its messages with these parameters,
        ``sender_id`` and ``recipient_id`` as in the client's /21 instance."""
        secret = master_secret if isinstance(master_secret, SecretKey) else SecretKey(master_secret)
        info = OscoreInfo(bytes(sender_id), bytes(recipient_id), secret, master_salt, aead, hkdf)
        identity = PeerIdentity(IdentityKind.OSCORE, info.sender_id.hex())
        return cls(endpoint, identity, oscore=info)

    @classmethod
    def nosec(cls, endpoint: str) -> SecurityInfo:
        """Mode 3: the endpoint may use plain CoAP."""
        return cls(endpoint, None)

    @property
    def mode(self) -> str:
        """``"psk"``, ``"rpk"``, ``"x509"``, ``"oscore"`` or ``"nosec"``."""
        return "nosec" if self.identity is None else self.identity.kind.value

    @property
    def psk_identity(self) -> bytes | None:
        """PSK mode: the identity bytes as sent in the handshake (text identities as UTF-8)."""
        identity = self.identity
        if identity is None or identity.kind is not IdentityKind.PSK:
            return None
        return identity.value.encode("utf-8")

    def accepts(self, identity: PeerIdentity | None) -> bool:
        """Whether ``identity`` (None: plain CoAP) is the one this entry requires."""
        expected = self.identity
        if expected is None or identity is None:
            return expected is None and identity is None
        if expected.kind is IdentityKind.X509 and identity.kind is IdentityKind.X509:
            return expected.value in identity.names
        return expected == identity


def check_endpoint_identity(
    endpoint: str,
    identity: PeerIdentity | None,
    expected: SecurityInfo | None = None,
    *,
    plain_allowed: bool = True,
) -> None:
    """Raise :class:`~lwm2m.errors.BadRequest` (4.00) when ``endpoint`` does not match the
    authenticated ``identity`` (Transport §5.2.x), and log one WARNING line saying so (the
    endpoint and the identity, never key material).

    - ``expected`` given (the lookup-table entry for ``endpoint``, or the entry that owns
      ``identity``): its endpoint must be ``endpoint`` and it must accept ``identity`` (equal
      identities; an X.509 name may be the CN or a subjectAltName; a NoSec entry accepts plain
      CoAP only).
    - otherwise, ``identity`` None (NoSec): accepted when ``plain_allowed``.
    - otherwise the identity's own names (PSK identity, certificate CN or subjectAltName) must
      include ``endpoint``; an RPK needs a table entry.
    """
    if expected is not None:
        ok = expected.endpoint == endpoint and expected.accepts(identity)
    elif identity is None:
        ok = plain_allowed
    elif identity.kind is IdentityKind.X509:
        ok = endpoint in identity.names
    else:
        ok = identity.name == endpoint
    if ok:
        return
    if identity is None:
        log.warning(
            "endpoint name %r without security (NoSec) is not allowed: 4.00",
            endpoint,
        )
        raise BadRequest("this endpoint must use a secured connection")
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
