"""Peer identities and how a peer's certificate or raw public key is judged.

Identity values (frozen) reported on ``HandshakeCompleted.peer_identity``:

- :class:`PskIdentity` — the PSK identity bytes (RFC 4279 §2).
- :class:`RawPublicKeyIdentity` — the peer's DER SubjectPublicKeyInfo (RFC 7250 §3).
- :class:`CertificateIdentity` — the peer's chain (DER, leaf first) plus the leaf's subject
  common name and subjectAltName values, the names LwM2M binds an endpoint to
  (LwM2M-TS-Transport §5.2.8.4).

Verifiers (the :class:`PeerVerifier` protocol):

- :class:`RawPublicKeyVerifier` — RFC 7250: accept a listed key (LwM2M RPK mode: the server key
  of /0/x/4 must match exactly), or any key when no list is given (a server then authorizes the
  reported key itself).
- :class:`X509Verifier` — PKIX path validation with ``cryptography.x509.verification`` and the
  LwM2M Certificate Usage resource (/0/x/15), whose values are those of DANE TLSA (RFC 6698 §2.1.1,
  RFC 7671). Interpretation, with *the provisioned certificate* being /0/x/4 (compared by the
  Matching Type /0/x/13: 0 full DER, 1 SHA-256, 2 SHA-384, 3 SHA-512 of the DER certificate):

  - 0 *CA constraint*: the chain must validate against ``trust_anchors`` **and** the provisioned
    certificate must be one of the CA certificates of the validated chain (not the leaf).
  - 1 *service certificate constraint*: the chain must validate against ``trust_anchors`` **and**
    the leaf must be the provisioned certificate.
  - 2 *trust anchor assertion*: the provisioned certificate is the (only required) trust anchor:
    the chain must validate up to it (``trust_anchors`` are added to the store).
  - 3 *domain-issued certificate* (LwM2M default): the leaf must be the provisioned certificate;
    no path validation, validity period or name check (RFC 7671 §5.1, DANE-EE).

  Without a provisioned certificate the usage is ignored and plain PKIX validation against
  ``trust_anchors`` applies. Validation checks ``server_name`` (DNS name or IP address) when
  given; otherwise no name is checked and the application matches the reported CN/SAN (LwM2M
  endpoint binding). Validation time is ``validation_time()`` when given, else the current
  system time as read by ``cryptography`` (the engine itself never reads the clock).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from .constants import CertificateType
from .errors import (
    AlertBadCertificate,
    AlertUnsupportedCertificate,
)

__all__ = [
    "CertificateIdentity",
    "CertificateUsage",
    "MatchingType",
    "PeerIdentity",
    "PeerVerifier",
    "PskIdentity",
    "RawPublicKeyIdentity",
    "RawPublicKeyVerifier",
    "X509Verifier",
    "spki_der",
]


def spki_der(key: ec.EllipticCurvePublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo of ``key`` (the RFC 7250 certificate payload)."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True, slots=True)
class PskIdentity:
    """The peer authenticated with the PSK of this identity."""

    identity: bytes


@dataclass(frozen=True, slots=True, repr=False)
class RawPublicKeyIdentity:
    """The peer proved possession of this raw public key (DER SubjectPublicKeyInfo)."""

    subject_public_key_info: bytes

    def __repr__(self) -> str:
        digest = hashlib.sha256(self.subject_public_key_info).hexdigest()[:16]
        return f"RawPublicKeyIdentity(spki_sha256={digest})"

    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = serialization.load_der_public_key(self.subject_public_key_info)
        assert isinstance(key, ec.EllipticCurvePublicKey)  # checked when the key was accepted
        return key


@dataclass(frozen=True, slots=True)
class CertificateIdentity:
    """The peer's X.509 chain (DER, leaf first) and the names of its leaf."""

    chain: tuple[bytes, ...] = field(repr=False)
    common_name: str | None
    subject_alt_names: tuple[str, ...] = ()

    def certificates(self) -> tuple[x509.Certificate, ...]:
        return tuple(x509.load_der_x509_certificate(der) for der in self.chain)


PeerIdentity = PskIdentity | RawPublicKeyIdentity | CertificateIdentity


@runtime_checkable
class PeerVerifier(Protocol):
    """Judges the peer's Certificate message and names the authenticated identity."""

    @property
    def certificate_types(self) -> tuple[int, ...]:
        """The :class:`CertificateType` values this verifier accepts, preferred first."""
        ...

    def verify(self, certificate_type: int, certificates: tuple[bytes, ...]) -> PeerIdentity:
        """The identity, or raise an ``Alert`` (bad_certificate, unknown_ca, ...)."""
        ...


def _load_ec_spki(der: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise AlertBadCertificate("malformed SubjectPublicKeyInfo") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise AlertUnsupportedCertificate("only secp256r1 keys are supported")
    return key


class RawPublicKeyVerifier:
    """Accepts raw public keys (RFC 7250): those in ``trusted``, or any when it is None."""

    __slots__ = ("_trusted",)

    certificate_types = (CertificateType.RAW_PUBLIC_KEY,)

    def __init__(self, trusted: Iterable[ec.EllipticCurvePublicKey] | None = None) -> None:
        self._trusted = None if trusted is None else frozenset(spki_der(k) for k in trusted)

    def verify(self, certificate_type: int, certificates: tuple[bytes, ...]) -> PeerIdentity:
        if certificate_type != CertificateType.RAW_PUBLIC_KEY or len(certificates) != 1:
            raise AlertUnsupportedCertificate("expected one raw public key")
        key = _load_ec_spki(certificates[0])
        der = spki_der(key)
        if self._trusted is not None and der not in self._trusted:
            raise AlertBadCertificate("raw public key is not trusted")
        return RawPublicKeyIdentity(der)

    def __repr__(self) -> str:
        count = "any" if self._trusted is None else len(self._trusted)
        return f"RawPublicKeyVerifier(trusted={count})"


class CertificateUsage(IntEnum):
    """LwM2M Security /0/x/15 Certificate Usage (values of RFC 6698 §2.1.1)."""

    CA_CONSTRAINT = 0
    SERVICE_CERTIFICATE_CONSTRAINT = 1
    TRUST_ANCHOR_ASSERTION = 2
    DOMAIN_ISSUED_CERTIFICATE = 3


class MatchingType(IntEnum):
    """LwM2M Security /0/x/13 Matching Type (RFC 6698 §2.1.3) over the DER certificate."""

    EXACT = 0
    SHA256 = 1
    SHA384 = 2
    SHA512 = 3

    def matches(self, association: bytes, certificate_der: bytes) -> bool:
        """Whether ``certificate_der`` is the certificate ``association`` designates.

        >>> MatchingType.SHA256.matches(hashlib.sha256(b"x").digest(), b"x")
        True
        """
        match self:
            case MatchingType.EXACT:
                return association == certificate_der
            case MatchingType.SHA256:
                return association == hashlib.sha256(certificate_der).digest()
            case MatchingType.SHA384:
                return association == hashlib.sha384(certificate_der).digest()
            case _:
                return association == hashlib.sha512(certificate_der).digest()


def _names(leaf: x509.Certificate) -> tuple[str | None, tuple[str, ...]]:
    cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = cns[0].value if cns else None
    common_name = cn if isinstance(cn, str) else None
    sans: list[str] = []
    try:
        ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        ext = None
    if ext is not None:
        for name in ext:
            if isinstance(name, x509.DNSName | x509.UniformResourceIdentifier | x509.RFC822Name):
                sans.append(name.value)
            elif isinstance(name, x509.IPAddress):
                sans.append(str(name.value))
    return common_name, tuple(sans)


@dataclass(frozen=True, slots=True)
class X509Verifier:
    """Validates X.509 chains; see the module docstring for the certificate-usage rules."""

    trust_anchors: tuple[x509.Certificate, ...] = ()
    """Trust anchors of PKIX validation (usages 0, 1, 2 and the no-association case)."""
    certificate_association: bytes | None = None
    """The provisioned certificate /0/x/4 (DER), or its hash per ``matching_type``."""
    certificate_usage: CertificateUsage = CertificateUsage.DOMAIN_ISSUED_CERTIFICATE
    matching_type: MatchingType = MatchingType.EXACT
    server_name: str | None = None
    """Expected DNS name or IP address of a server's certificate; None checks no name."""
    validation_time: Callable[[], datetime] | None = field(default=None, compare=False)
    """Wall-clock time of validation; None lets ``cryptography`` use the current time."""

    certificate_types = (CertificateType.X509,)

    def verify(self, certificate_type: int, certificates: tuple[bytes, ...]) -> PeerIdentity:
        try:
            return self._verify(certificate_type, certificates)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise AlertBadCertificate("certificate cannot be processed") from exc

    def _verify(self, certificate_type: int, certificates: tuple[bytes, ...]) -> PeerIdentity:
        if certificate_type != CertificateType.X509:
            raise AlertUnsupportedCertificate("expected an X.509 certificate")
        if not certificates:
            raise AlertBadCertificate("empty certificate chain")
        try:
            chain = [x509.load_der_x509_certificate(der) for der in certificates]
        except ValueError as exc:
            raise AlertBadCertificate("malformed certificate") from exc
        leaf = chain[0]
        _load_ec_spki(spki_der_of(leaf))
        association = self.certificate_association
        usage = self.certificate_usage
        match_ = self.matching_type.matches
        if association is not None and usage == CertificateUsage.DOMAIN_ISSUED_CERTIFICATE:
            if not match_(association, certificates[0]):
                raise AlertBadCertificate("certificate does not match the provisioned one")
        else:
            anchors = list(self.trust_anchors)
            if association is not None and usage == CertificateUsage.TRUST_ANCHOR_ASSERTION:
                anchors += [
                    c for c in chain if match_(association, c.public_bytes(_DER))
                ] or self._association_certificates()
            validated = self._validate(chain, anchors)
            if association is not None and usage == CertificateUsage.SERVICE_CERTIFICATE_CONSTRAINT:
                if not match_(association, certificates[0]):
                    raise AlertBadCertificate("certificate does not match the provisioned one")
            elif (
                association is not None
                and usage == CertificateUsage.CA_CONSTRAINT
                and not any(match_(association, c.public_bytes(_DER)) for c in validated[1:])
            ):
                raise AlertBadCertificate("provisioned CA is not in the validated chain")
        common_name, sans = _names(leaf)
        return CertificateIdentity(tuple(certificates), common_name, sans)

    def _association_certificates(self) -> list[x509.Certificate]:
        if self.certificate_association is None or self.matching_type != MatchingType.EXACT:
            return []
        try:
            return [x509.load_der_x509_certificate(self.certificate_association)]
        except ValueError:
            return []

    def _validate(
        self, chain: list[x509.Certificate], anchors: list[x509.Certificate]
    ) -> list[x509.Certificate]:
        from .errors import AlertCertificateUnknown, AlertUnknownCa

        if not anchors:
            raise AlertUnknownCa("no trust anchor configured")
        builder = verification.PolicyBuilder().store(verification.Store(anchors))
        if self.validation_time is not None:
            builder = builder.time(self.validation_time())
        try:
            if self.server_name is not None:
                subject: verification.Subject
                try:
                    subject = x509.IPAddress(ipaddress.ip_address(self.server_name))
                except ValueError:
                    subject = x509.DNSName(self.server_name)
                return list(builder.build_server_verifier(subject).verify(chain[0], chain[1:]))
            builder = builder.extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=verification.ExtensionPolicy.permit_all(),
            )
            return list(builder.build_client_verifier().verify(chain[0], chain[1:]).chain)
        except verification.VerificationError as exc:
            message = str(exc)
            if "issuer" in message or "candidates exhausted" in message:
                raise AlertUnknownCa("certificate chain does not reach a trust anchor") from exc
            raise AlertCertificateUnknown("certificate chain validation failed") from exc

    def __repr__(self) -> str:
        return (
            f"X509Verifier(anchors={len(self.trust_anchors)}, usage={self.certificate_usage.name},"
            f" server_name={self.server_name!r})"
        )


_DER = serialization.Encoding.DER


def spki_der_of(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        _DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
