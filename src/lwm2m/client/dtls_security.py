"""DTLS credentials of a server account, from its Security (/0) instance (LwM2M-TS-Core 1.1 E.1;
Transport §5.2.8).

:func:`account_security` turns the :class:`~lwm2m.client.objects.security.Credentials` of one
account into what the DTLS engine needs (:class:`~lwm2m.dtls.DtlsCredentials` and the cipher
suites to offer), per Security Mode /0/x/2:

- **0 PSK** — /0/x/3 the PSK identity, /0/x/5 the key; PSK suites (CCM_8 first).
- **1 RPK** — /0/x/5 the own P-256 private key (DER PKCS#8 or SEC 1, or the 32-byte scalar),
  /0/x/3 the own public key (checked against the private key when given), /0/x/4 the server's
  public key, which must match exactly (:class:`~lwm2m.dtls.RawPublicKeyVerifier`); public keys
  are DER SubjectPublicKeyInfo or a SEC 1 point (65/33 bytes, or the 64-byte ``x‖y``).
- **2 Certificate** — /0/x/3 the own certificate (DER; several concatenated DER certificates or
  PEM give a chain, leaf first), /0/x/5 its private key, /0/x/4 the server certificate or trust
  anchor, interpreted with /0/x/13 Matching Type (default 0, exact) and /0/x/15 Certificate Usage
  (default 3, domain-issued certificate) by :class:`~lwm2m.dtls.X509Verifier`. PKIX usages (0, 1,
  2, or no /0/x/4) validate against ``trust_anchors`` (plus /0/x/4 for usage 2) and check the
  server name: /0/x/14 SNI when set, else the host of the server URI.

/0/x/16 DTLS/TLS Ciphersuite, when present, restricts the suites to those listed (of the four
LwM2M ones this engine implements).

**Secure Component credentials.** When the Security instance lives in a Secure Component, /0/x/5
holds a reference to a credential inside it, never the key. ``resolve`` turns that reference into
the component's handle (a PSK handle that derives master secrets, a key handle that signs), which
the DTLS engine uses directly: the key never enters Python memory. This module knows nothing of
Secure Components (layering): the adapter passes ``resolve``.

Errors are :class:`CredentialError` naming the resource at fault, never a secret value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.client.accounts import ServerUri
from lwm2m.client.objects.security import Credentials, SecurityMode
from lwm2m.dtls import (
    DEFAULT_CIPHER_SUITES,
    CertificateUsage,
    CipherSuite,
    DtlsCredentials,
    MatchingType,
    PskCredential,
    RawPublicKeyVerifier,
    SigningKey,
    SoftwarePsk,
    SoftwareSigningKey,
    X509Verifier,
)
from lwm2m.errors import Lwm2mError

__all__ = [
    "AccountSecurity",
    "CredentialError",
    "Resolver",
    "account_security",
    "load_certificates",
    "load_private_key",
    "load_public_key",
]

Resolver = Callable[[bytes, SecurityMode], "PskCredential | SigningKey | None"]
"""``resolve(secret_value, mode)``: the credential handle a /0/x/5 value refers to (a Secure
Component reference), or None when the value is the key itself."""

_PSK_SUITES = frozenset(
    {CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256}
)
_ECDHE_SUITES = frozenset(
    {
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
    }
)


class CredentialError(Lwm2mError, ValueError):
    """The keying material of an account cannot be used (the message names the resource)."""


@dataclass(frozen=True, slots=True)
class AccountSecurity:
    """What the DTLS layer needs to open an account's session."""

    credentials: DtlsCredentials
    cipher_suites: tuple[int, ...]
    from_component: bool = False
    """The private key or PSK is a Secure Component handle (resolved from a reference)."""


def account_security(
    credentials: Credentials,
    uri: ServerUri,
    *,
    resolve: Resolver | None = None,
    trust_anchors: Sequence[x509.Certificate] = (),
    check_server_name: bool = True,
) -> AccountSecurity:
    """The DTLS credentials and suites of one account (see the module docstring).

    :raises CredentialError: missing or unusable material, or no usable cipher suite.
    """
    iid = credentials.security_instance_id
    where = f"/0/{iid}"
    mode = credentials.mode
    if mode is SecurityMode.PSK:
        allowed = _PSK_SUITES
    elif mode in (SecurityMode.RPK, SecurityMode.CERTIFICATE):
        allowed = _ECDHE_SUITES
    else:
        raise CredentialError(  # NoSec has none; certificates via EST (4) are not supported
            f"{where}: security mode {mode.name} has no DTLS credentials here"
        )
    suites = _suites(credentials.ciphersuites, allowed, where)
    raw = credentials.secret_key.reveal()
    handle = resolve(raw, mode) if resolve is not None and raw else None
    if mode is SecurityMode.PSK:
        identity = credentials.identity
        if not identity:
            raise CredentialError(f"{where}/3: PSK mode needs the PSK identity")
        if handle is not None:
            if not isinstance(handle, PskCredential):
                raise CredentialError(f"{where}/5 refers to a credential that is not a PSK")
            if handle.identity != identity:
                raise CredentialError(f"{where}/5 refers to the PSK of another identity")
            psk: PskCredential = handle
        else:
            if not raw:
                raise CredentialError(f"{where}/5: PSK mode needs the key")
            psk = SoftwarePsk(identity, raw)
        return AccountSecurity(DtlsCredentials(psk=psk), suites, handle is not None)
    if handle is not None:
        if not isinstance(handle, SigningKey):
            raise CredentialError(f"{where}/5 refers to a credential that is not a key pair")
        key: SigningKey = handle
    else:
        if not raw:
            raise CredentialError(f"{where}/5: the private key is missing")
        key = SoftwareSigningKey(load_private_key(raw, f"{where}/5"))
    own = _spki(key.public_key())
    if mode is SecurityMode.RPK:
        if (
            credentials.identity
            and _spki(load_public_key(credentials.identity, f"{where}/3")) != own
        ):
            raise CredentialError(f"{where}/3 is not the public key of the private key in /5")
        if not credentials.server_public_key:
            raise CredentialError(f"{where}/4: RPK mode needs the server's public key")
        server_key = load_public_key(credentials.server_public_key, f"{where}/4")
        verifier = RawPublicKeyVerifier([server_key])
        return AccountSecurity(
            DtlsCredentials(signing_key=key, peer_verifier=verifier), suites, handle is not None
        )
    if not credentials.identity:
        raise CredentialError(f"{where}/3: certificate mode needs the own certificate")
    chain = load_certificates(credentials.identity, f"{where}/3")
    leaf_key = chain[0].public_key()
    if not isinstance(leaf_key, ec.EllipticCurvePublicKey) or _spki(leaf_key) != own:
        raise CredentialError(f"{where}/3: the certificate is not that of the private key in /5")
    usage = _enum(CertificateUsage, credentials.certificate_usage, 3, f"{where}/15")
    matching = _enum(MatchingType, credentials.matching_type, 0, f"{where}/13")
    association = credentials.server_public_key or None
    server_name = None
    if check_server_name:
        server_name = credentials.sni or uri.host
    verifier509 = X509Verifier(
        trust_anchors=tuple(trust_anchors),
        certificate_association=association,
        certificate_usage=CertificateUsage(usage),
        matching_type=MatchingType(matching),
        server_name=server_name,
    )
    return AccountSecurity(
        DtlsCredentials(signing_key=key, certificate_chain=chain, peer_verifier=verifier509),
        suites,
        handle is not None,
    )


def _suites(listed: tuple[int, ...], allowed: frozenset[int], where: str) -> tuple[int, ...]:
    ours = tuple(s for s in DEFAULT_CIPHER_SUITES if s in allowed)
    if not listed:
        return ours
    chosen = tuple(s for s in ours if s in listed)
    if not chosen:
        names = ", ".join(f"0x{s:04X}" for s in listed)
        raise CredentialError(f"{where}/16: none of the cipher suites {names} fits this mode")
    return chosen


def _enum(
    kind: type[MatchingType] | type[CertificateUsage], value: int | None, default: int, where: str
) -> int:
    if value is None:
        return default
    try:
        return int(kind(value))
    except ValueError:
        raise CredentialError(f"{where}: unknown value {value}") from None


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(raw: bytes, where: str = "/0/x/5") -> ec.EllipticCurvePrivateKey:
    """A P-256 private key: DER (PKCS#8 or SEC 1), PEM, or the 32-byte big-endian scalar.

    :raises CredentialError: anything else (the message never shows the value).
    """
    try:
        if raw.startswith(b"-----BEGIN"):
            key: object = serialization.load_pem_private_key(raw, password=None)
        elif len(raw) == 32:
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        else:
            key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CredentialError(f"{where}: not a usable P-256 private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CredentialError(f"{where}: only P-256 private keys are supported")
    return key


def load_public_key(raw: bytes, where: str = "/0/x/4") -> ec.EllipticCurvePublicKey:
    """A P-256 public key: DER SubjectPublicKeyInfo, PEM, a SEC 1 point (65 or 33 bytes) or the
    64-byte ``x‖y``."""
    try:
        if raw.startswith(b"-----BEGIN"):
            key: object = serialization.load_pem_public_key(raw)
        elif len(raw) == 64:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw)
        elif len(raw) in (33, 65) and raw[0] in (2, 3, 4):
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        else:
            key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CredentialError(f"{where}: not a usable P-256 public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CredentialError(f"{where}: only P-256 public keys are supported")
    return key


def load_certificates(raw: bytes, where: str = "/0/x/3") -> tuple[x509.Certificate, ...]:
    """One or more certificates, leaf first: concatenated DER, or PEM."""
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            certificates = tuple(x509.load_pem_x509_certificates(raw))
        else:
            certificates = tuple(x509.load_der_x509_certificate(der) for der in _der_items(raw))
    except ValueError:
        raise CredentialError(f"{where}: not a DER or PEM certificate") from None
    if not certificates:
        raise CredentialError(f"{where}: no certificate")
    return certificates


def _der_items(raw: bytes) -> list[bytes]:
    """Split concatenated DER SEQUENCEs (X.690 §8.1.3 definite lengths)."""
    items: list[bytes] = []
    pos = 0
    while pos < len(raw):
        if raw[pos] != 0x30 or pos + 2 > len(raw):
            raise ValueError("not a DER SEQUENCE")
        first = raw[pos + 1]
        if first < 0x80:
            header, length = 2, first
        else:
            count = first & 0x7F
            if not 1 <= count <= 4 or pos + 2 + count > len(raw):
                raise ValueError("bad DER length")
            header = 2 + count
            length = int.from_bytes(raw[pos + 2 : pos + header], "big")
        end = pos + header + length
        if end > len(raw):
            raise ValueError("truncated DER")
        items.append(raw[pos:end])
        pos = end
    return items
