"""The credential seam: the engine asks credentials to *derive* or *sign*, never for key bytes.

LwM2M-SCS-4 keeps long-term secrets in a Secure Component (SE, TEE, HSM). The engine therefore
holds only small capability objects (:class:`typing.Protocol`\\ s):

- :class:`PskCredential` — the PSK identity and ``derive_master_secret(label, seed)``. The plain
  PSK premaster of RFC 4279 §2 embeds the raw PSK, so the whole derivation
  ``PRF(premaster, label, seed)[:48]`` (RFC 5246 §8.1) must run inside the credential. The
  extended master secret (RFC 7627 §4) is the same call with ``label = b"extended master secret"``
  and the session hash as ``seed``. A PKCS#11 token can do this with four CKM_SHA256_HMAC
  C_Sign calls over a secret object that stores the premaster form instead of the PSK.
- :class:`PskStore` — server side: ``lookup(identity)`` returns a credential or None (unknown
  identity: ``unknown_psk_identity``, RFC 4279 §2).
- :class:`SigningKey` — ``public_key()`` and ``sign(data)``: an ECDSA P-256 signature over
  SHA-256(``data``), DER-encoded (RFC 8422 §5.10). **The credential hashes**: it receives the
  whole message to sign (the ServerKeyExchange signed params or the CertificateVerify transcript
  hash input), so a backend that needs a digest (PKCS#11 CKM_ECDSA) hashes it itself.

Every credential declares ``key_log_permitted``: only software credentials allow the engine to
write an NSS key log (SSLKEYLOGFILE); hardware-backed ones must return False.

All calls are synchronous; an adapter runs blocking backends (PKCS#11, PC/SC) in a thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .prf import MASTER_SECRET_LENGTH, HmacSha256, prf, psk_premaster
from .trust import PeerVerifier

__all__ = [
    "DtlsCredentials",
    "PskCredential",
    "PskStore",
    "SigningKey",
    "SoftwarePsk",
    "SoftwarePskStore",
    "SoftwareSigningKey",
]


@runtime_checkable
class PskCredential(Protocol):
    """A pre-shared key that never leaves its holder."""

    @property
    def identity(self) -> bytes:
        """The PSK identity sent in ClientKeyExchange (RFC 4279 §2)."""
        ...

    @property
    def key_log_permitted(self) -> bool:
        """Whether the engine may write this session's master secret to a key log."""
        ...

    def derive_master_secret(self, label: bytes, seed: bytes) -> bytes:
        """``PRF(premaster, label, seed)[:48]`` with the RFC 4279 §2 premaster of this PSK."""
        ...


@runtime_checkable
class PskStore(Protocol):
    """Server-side lookup of PSK credentials by identity."""

    def lookup(self, identity: bytes) -> PskCredential | None:
        """The credential of ``identity``, or None when unknown."""
        ...


@runtime_checkable
class SigningKey(Protocol):
    """An ECDSA P-256 private key that signs without revealing itself."""

    @property
    def key_log_permitted(self) -> bool:
        """Whether the engine may write master secrets of handshakes using this key to a key log."""
        ...

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half (a ``cryptography`` EC public key on secp256r1)."""
        ...

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA signature over SHA-256(``data``); the credential does the hashing."""
        ...


class SoftwarePsk:
    """A PSK held in process memory (development, tests, the ``soft:`` backend).

    It keeps only the RFC 4279 premaster form (plus the HMAC-SHA256 state keyed with it, so the
    PRF's key schedule is done once, not per handshake) and never shows it:

    >>> SoftwarePsk(b"dev1", bytes(16))
    SoftwarePsk(identity=b'dev1')
    """

    __slots__ = ("_identity", "_premaster", "_prf_key")

    key_log_permitted = True

    def __init__(self, identity: bytes, psk: bytes) -> None:
        if not psk:
            raise ValueError("a PSK must not be empty")
        self._identity = bytes(identity)
        self._premaster = psk_premaster(bytes(psk))
        self._prf_key = HmacSha256(self._premaster)

    @property
    def identity(self) -> bytes:
        return self._identity

    def derive_master_secret(self, label: bytes, seed: bytes) -> bytes:
        return prf(self._prf_key, label, seed, MASTER_SECRET_LENGTH)

    def __repr__(self) -> str:
        return f"SoftwarePsk(identity={self._identity!r})"


class SoftwarePskStore:
    """A dictionary of :class:`SoftwarePsk` by identity.

    >>> store = SoftwarePskStore({b"a": bytes(16)}); store.lookup(b"a"), store.lookup(b"b")
    (SoftwarePsk(identity=b'a'), None)
    """

    __slots__ = ("_credentials",)

    def __init__(self, psks: Mapping[bytes, bytes] | None = None) -> None:
        self._credentials: dict[bytes, PskCredential] = {}
        for identity, psk in (psks or {}).items():
            self.add(SoftwarePsk(identity, psk))

    def add(self, credential: PskCredential) -> None:
        self._credentials[credential.identity] = credential

    def lookup(self, identity: bytes) -> PskCredential | None:
        return self._credentials.get(identity)

    def __repr__(self) -> str:
        return f"SoftwarePskStore({len(self._credentials)} identities)"


class SoftwareSigningKey:
    """An EC P-256 private key held in process memory.

    >>> key = SoftwareSigningKey.generate()
    >>> repr(key).startswith("SoftwareSigningKey(public_sha256=")
    True
    """

    __slots__ = ("_key",)

    key_log_permitted = True

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("only secp256r1 keys are supported")
        self._key = private_key

    @classmethod
    def generate(cls) -> SoftwareSigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def __repr__(self) -> str:
        spki = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"SoftwareSigningKey(public_sha256={hashlib.sha256(spki).hexdigest()[:16]})"


@dataclass(frozen=True, slots=True)
class DtlsCredentials:
    """What one endpoint authenticates with and how it judges its peer.

    A client sets ``psk`` for the PSK suites, and/or ``signing_key`` (with a ``certificate_chain``
    for X.509, without one for a raw public key) plus a ``peer_verifier`` for the ECDHE_ECDSA
    suites. A server sets ``psk_store`` and/or ``signing_key``/``certificate_chain`` and a
    ``peer_verifier`` (which also decides whether a client certificate is requested).
    """

    psk: PskCredential | None = None
    """Client: the PSK credential to use."""
    psk_store: PskStore | None = None
    """Server: PSK credentials by identity."""
    psk_identity_hint: bytes = b""
    """Server: identity hint sent in ServerKeyExchange (omitted when empty, RFC 4279 §2)."""
    signing_key: SigningKey | None = None
    """Own ECDSA key (ECDHE_ECDSA suites; client: only when the server asks for a certificate)."""
    certificate_chain: tuple[x509.Certificate, ...] = field(default=())
    """Own X.509 chain, leaf first; empty with a ``signing_key`` means raw public key (RFC 7250)."""
    peer_verifier: PeerVerifier | None = None
    """Client: verifies the server (required for ECDHE_ECDSA). Server: verifies clients; when set,
    the server sends CertificateRequest in ECDHE_ECDSA handshakes."""

    def local_credentials(self) -> Iterable[PskCredential | SigningKey]:
        """The key-holding credentials (for the key-log permission)."""
        return tuple(c for c in (self.psk, self.signing_key) if c is not None)
