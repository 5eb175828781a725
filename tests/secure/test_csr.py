"""PKCS#10 requests built by hand and signed inside the component (RFC 2986)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lwm2m.secure import build_csr, csr_pem
from lwm2m.secure.csr import der_length, encode_oid

from .conftest import Backend


def test_csr_signed_in_the_component(backend: Backend) -> None:
    with backend.open() as component:
        key = component.generate_key("enrol")
        der = build_csr(
            key,
            "CN=urn:imei:490154203237518,O=ACME",
            [
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("dev.example"),
                        x509.UniformResourceIdentifier("urn:imei:490154203237518"),
                    ]
                )
            ],
        )
    csr = x509.load_der_x509_csr(der)
    assert csr.is_signature_valid
    assert csr.public_key() == key.public_key()
    assert csr.signature_hash_algorithm is not None
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    assert (
        csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        == "urn:imei:490154203237518"
    )
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.DNSName) == ["dev.example"]
    pem = csr_pem(der)
    assert pem.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert x509.load_pem_x509_csr(pem.encode()).is_signature_valid


def test_csr_without_extensions_matches_cryptography_structure(backend: Backend) -> None:
    name = x509.Name(  # long enough for two-byte DER lengths
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{i}" * 60) for i in range(5)]
    )
    with backend.open() as component:
        key = component.generate_key("k")
        csr = x509.load_der_x509_csr(build_csr(key, name))
    assert csr.is_signature_valid
    assert list(csr.extensions) == []
    assert csr.subject == name
    # Same To-Be-Signed layout as cryptography's own builder produces for a software key.
    software = ec.generate_private_key(ec.SECP256R1())
    reference = (
        x509.CertificateSigningRequestBuilder().subject_name(name).sign(software, hashes.SHA256())
    )
    assert len(csr.tbs_certrequest_bytes) == len(reference.tbs_certrequest_bytes)


def test_der_helpers() -> None:
    assert der_length(0x7F) == b"\x7f"
    assert der_length(0x80) == b"\x81\x80"
    assert der_length(0x10000) == b"\x83\x01\x00\x00"
    assert encode_oid("2.5.29.17").hex() == "0603551d11"
    assert encode_oid("2.999.1").hex() == "0603883701"
    for bad in ("1", "3.1", "1.40", "x.y"):
        with pytest.raises(ValueError, match=r"object identifier|invalid literal"):
            encode_oid(bad)
