"""PKCS#10 certification requests signed inside a Secure Component (RFC 2986, RFC 5280).

``cryptography``'s CSR builder wants a private key object; a Secure Component only offers a
:class:`~lwm2m.secure.interfaces.KeyHandle` that signs. So the CertificationRequestInfo is
DER-encoded here (X.690) and signed by the handle with ecdsa-with-SHA256 (RFC 5758 §3.2, the
AlgorithmIdentifier without parameters). The subject Name, SubjectPublicKeyInfo and extension
values are encoded by ``cryptography`` itself; this module only assembles them.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lwm2m.secure.interfaces import KeyHandle

__all__ = ["build_csr", "csr_pem", "der_length", "encode_oid"]

_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"  # PKCS #9 (RFC 2985 §5.4.2)


def der_length(length: int) -> bytes:
    """X.690 §8.1.3 definite length.

    >>> der_length(5).hex(), der_length(200).hex(), der_length(300).hex()
    ('05', '81c8', '82012c')
    """
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_length(len(content)) + content


def encode_oid(dotted: str) -> bytes:
    """X.690 §8.19 OBJECT IDENTIFIER, tag included.

    >>> encode_oid("1.2.840.10045.4.3.2").hex()
    '06082a8648ce3d040302'
    """
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"{dotted!r} is not an object identifier")
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _sequence(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def build_csr(
    key: KeyHandle,
    subject: str | x509.Name,
    extensions: Sequence[x509.ExtensionType] = (),
) -> bytes:
    """A DER PKCS#10 request for ``key``'s public key, signed by ``key`` inside its component.

    :param subject: an RFC 4514 string (``"CN=urn:imei:…,O=ACME"``) or an ``x509.Name``.
    :param extensions: requested extensions (e.g. ``x509.SubjectAlternativeName``), sent as a
        PKCS #9 extensionRequest attribute, non-critical.
    """
    name = subject if isinstance(subject, x509.Name) else x509.Name.from_rfc4514_string(subject)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    attributes = b""
    if extensions:
        encoded = b"".join(
            _sequence(encode_oid(ext.oid.dotted_string), _tlv(0x04, ext.public_bytes()))
            for ext in extensions
        )
        attributes = _sequence(encode_oid(_EXTENSION_REQUEST), _tlv(0x31, _sequence(encoded)))
    info = _sequence(
        _tlv(0x02, b"\x00"),  # version v1(0)
        name.public_bytes(),
        spki,
        _tlv(0xA0, attributes),  # [0] IMPLICIT SET OF Attribute
    )
    signature = key.sign(info)
    return _sequence(
        info,
        _sequence(encode_oid(_ECDSA_WITH_SHA256)),
        _tlv(0x03, b"\x00" + signature),  # BIT STRING, no unused bits
    )


def csr_pem(der: bytes) -> str:
    """PEM text of a DER certification request (RFC 7468 §7)."""
    return x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM).decode("ascii")
