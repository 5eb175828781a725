"""Edge paths of :mod:`lwm2m.client.dtls_security` and :mod:`lwm2m.dtls.credentials`: every
Security Mode mapped to its DTLS credentials, key references into a Secure Component (the
``pcsc:`` component over the VSE card OS in memory, resolved by the client's own resolver), and
the clear :class:`CredentialError` of bad or missing resources — never a secret in a message."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from lwm2m.client.accounts import ServerUri
from lwm2m.client.dtls_security import (
    CredentialError,
    account_security,
    load_certificates,
    load_private_key,
    load_public_key,
)
from lwm2m.client.objects.security import Credentials, Secret, SecurityMode
from lwm2m.dtls import (
    CipherSuite,
    MatchingType,
    RawPublicKeyVerifier,
    SoftwarePsk,
    SoftwarePskStore,
    SoftwareSigningKey,
    X509Verifier,
)
from lwm2m.dtls.constants import CertificateType
from lwm2m.dtls.errors import AlertBadCertificate
from lwm2m.dtls.trust import RawPublicKeyIdentity, spki_der
from lwm2m.errors import Lwm2mError
from lwm2m.io.lwm2m_client import DtlsConnector
from lwm2m.secure import KeyNotFound, secret_reference
from lwm2m.secure.pcsc import PcscComponent
from lwm2m.secure.pcsc.component import PcscKeyHandle, PcscPskHandle
from lwm2m.vse.iotsafe_applet import tls12_prf
from lwm2m.vse.state import VseState
from lwm2m.vse.uicc import VirtualUicc

URI = ServerUri.parse("coaps://lwm2m.example:5684")
DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
PSK_SUITES = (
    CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,
    CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256,
)
ECDHE_SUITES = (
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
)


def credentials(mode: SecurityMode, **values: Any) -> Credentials:
    secret = values.pop("secret_key", b"")
    return Credentials(7, mode, secret_key=Secret(secret), **values)


def pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def certificate(
    public_key: Any, signer: Any, cn: str = "urn:dev:ops:card", algorithm: Any = None
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(signer, algorithm)
    )


# -- Security Mode -> DTLS credentials ------------------------------------------------------------


@pytest.mark.parametrize(
    "mode", [SecurityMode.NO_SEC, SecurityMode.CERTIFICATE_EST], ids=["nosec", "est"]
)
def test_modes_without_dtls_credentials_are_refused_by_name(mode: SecurityMode) -> None:
    key = os.urandom(16)
    with pytest.raises(CredentialError, match=rf"^/0/7: security mode {mode.name} ") as error:
        account_security(credentials(mode, identity=b"id", secret_key=key), URI)
    assert isinstance(error.value, Lwm2mError)
    assert key.hex() not in str(error.value)


def test_psk_mode_gives_a_software_psk_that_derives_like_rfc_4279() -> None:
    psk = os.urandom(16)
    account = account_security(credentials(SecurityMode.PSK, identity=b"ep", secret_key=psk), URI)
    assert account.cipher_suites == PSK_SUITES
    assert not account.from_component
    assert account.credentials.signing_key is None
    assert account.credentials.peer_verifier is None
    handle = account.credentials.psk
    assert isinstance(handle, SoftwarePsk)
    assert handle.identity == b"ep"
    n = len(psk).to_bytes(2, "big")
    premaster = n + bytes(len(psk)) + n + psk
    seed = os.urandom(64)
    wanted = tls12_prf(premaster, b"master secret" + seed, 48)
    assert handle.derive_master_secret(b"master secret", seed) == wanted
    assert psk.hex() not in repr(account)


def test_rpk_mode_without_own_public_key_and_with_a_pem_server_key() -> None:
    own = ec.generate_private_key(ec.SECP256R1())
    server = ec.generate_private_key(ec.SECP256R1()).public_key()
    server_pem = server.public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    sec1 = own.private_bytes(
        DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    account = account_security(
        credentials(SecurityMode.RPK, secret_key=sec1, server_public_key=server_pem), URI
    )
    assert account.cipher_suites == ECDHE_SUITES
    assert account.credentials.certificate_chain == ()  # raw public key, RFC 7250
    key = account.credentials.signing_key
    assert isinstance(key, SoftwareSigningKey)
    assert spki_der(key.public_key()) == spki_der(own.public_key())
    verifier = account.credentials.peer_verifier
    assert isinstance(verifier, RawPublicKeyVerifier)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    identity = verifier.verify(CertificateType.RAW_PUBLIC_KEY, (spki_der(server),))
    assert isinstance(identity, RawPublicKeyIdentity)
    with pytest.raises(AlertBadCertificate, match="not trusted"):
        verifier.verify(CertificateType.RAW_PUBLIC_KEY, (spki_der(other),))


def test_certificate_mode_without_name_check_and_with_a_matching_type() -> None:
    own = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(own.public_key(), own, algorithm=hashes.SHA256())
    server = certificate(own.public_key(), own, "server", hashes.SHA256())
    account = account_security(
        credentials(
            SecurityMode.CERTIFICATE,
            identity=leaf.public_bytes(DER),
            secret_key=pkcs8(own),
            server_public_key=server.public_bytes(DER),
            matching_type=1,
            sni="ignored.example",
        ),
        URI,
        check_server_name=False,
    )
    assert account.cipher_suites == ECDHE_SUITES
    assert account.credentials.certificate_chain == (leaf,)
    verifier = account.credentials.peer_verifier
    assert isinstance(verifier, X509Verifier)
    assert verifier.server_name is None  # not the SNI, not the URI host
    assert verifier.matching_type is MatchingType.SHA256
    assert verifier.certificate_association == server.public_bytes(DER)


@pytest.mark.parametrize(
    ("values", "resource"),
    [
        ({"identity": b"x", "server_public_key": b"x"}, r"/0/7/5: the private key is missing"),
        ({"secret_key": b"\x30\x03\x02\x01\x01"}, r"/0/7/5: not a usable P-256 private key"),
    ],
)
def test_rpk_and_certificate_modes_need_a_usable_private_key(
    values: dict[str, Any], resource: str
) -> None:
    for mode in (SecurityMode.RPK, SecurityMode.CERTIFICATE):
        with pytest.raises(CredentialError, match=resource):
            account_security(credentials(mode, **values), URI)


def test_certificate_mode_needs_its_own_certificate() -> None:
    own = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CredentialError, match=r"^/0/7/3: certificate mode needs the own cert"):
        account_security(credentials(SecurityMode.CERTIFICATE, secret_key=pkcs8(own)), URI)
    with pytest.raises(CredentialError, match=r"^/0/7/3: not a DER or PEM certificate"):
        account_security(
            credentials(SecurityMode.CERTIFICATE, identity=b"\x30\x01\x00", secret_key=pkcs8(own)),
            URI,
        )


def test_a_certificate_without_an_ec_key_is_refused() -> None:
    signer = ed25519.Ed25519PrivateKey.generate()
    leaf = certificate(signer.public_key(), signer)
    own = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CredentialError, match=r"/0/7/3: the certificate is not that of the priv"):
        account_security(
            credentials(
                SecurityMode.CERTIFICATE, identity=leaf.public_bytes(DER), secret_key=pkcs8(own)
            ),
            URI,
        )


@pytest.mark.parametrize(
    ("field", "resource"), [("matching_type", "13"), ("certificate_usage", "15")]
)
def test_unknown_matching_type_or_usage_names_its_resource(field: str, resource: str) -> None:
    own = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(own.public_key(), own, algorithm=hashes.SHA256())
    material = credentials(
        SecurityMode.CERTIFICATE,
        identity=leaf.public_bytes(DER),
        secret_key=pkcs8(own),
        **{field: 9},
    )
    with pytest.raises(CredentialError, match=rf"^/0/7/{resource}: unknown value 9$"):
        account_security(material, URI)


def test_cipher_suite_resource_restricts_ecdhe_suites() -> None:
    own = ec.generate_private_key(ec.SECP256R1())
    peer = spki_der(ec.generate_private_key(ec.SECP256R1()).public_key())
    material = credentials(
        SecurityMode.RPK,
        secret_key=pkcs8(own),
        server_public_key=peer,
        ciphersuites=(0xC023, 0x00AE),
    )
    assert account_security(material, URI).cipher_suites == (0xC023,)
    psk_only = credentials(
        SecurityMode.RPK, secret_key=pkcs8(own), server_public_key=peer, ciphersuites=(0xC0A8,)
    )
    with pytest.raises(CredentialError, match=r"^/0/7/16: none of the cipher suites 0xC0A8"):
        account_security(psk_only, URI)


# -- key loaders ---------------------------------------------------------------------------------


def test_private_key_loader_edge_cases() -> None:
    own = ec.generate_private_key(ec.SECP256R1())
    pem = own.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert load_private_key(pem).private_numbers() == own.private_numbers()
    encrypted = own.private_bytes(
        PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    for bad in (encrypted, bytes(32), order.to_bytes(32, "big")):
        with pytest.raises(CredentialError, match=r"^/0/9/5: not a usable P-256 private key$"):
            load_private_key(bad, "/0/9/5")
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CredentialError, match=r"only P-256 private keys") as error:
        load_private_key(ed)
    assert ed.hex() not in str(error.value)


def test_public_key_loader_edge_cases() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    compressed = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    for form in (pem, compressed):
        assert spki_der(load_public_key(form)) == spki_der(key)
    with pytest.raises(CredentialError, match=r"^/0/7/4: not a usable P-256 public key$"):
        load_public_key(bytes(64), "/0/7/4")  # x‖y not on the curve
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    for other in (p384, ed):
        der = other.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        with pytest.raises(CredentialError, match=r"only P-256 public keys"):
            load_public_key(der)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x30\x80\x00\x00",  # indefinite length: not DER
        b"\x30\x85\x00\x00\x00\x00\x01",  # five length octets
        b"\x30\x82\x01",  # the length octets run past the end
        b"\x30\x05\x00",  # the content runs past the end
    ],
)
def test_concatenated_der_splitter_refuses_bad_lengths(raw: bytes) -> None:
    with pytest.raises(CredentialError, match=r"^/0/7/3: not a DER or PEM certificate$"):
        load_certificates(raw, "/0/7/3")


def test_pem_chain_with_leading_whitespace() -> None:
    own = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(own.public_key(), own, algorithm=hashes.SHA256())
    ca = certificate(own.public_key(), own, "ca", hashes.SHA256())
    text = b"\n  " + leaf.public_bytes(PEM) + ca.public_bytes(PEM)
    assert load_certificates(text) == (leaf, ca)


# -- credentials.py ------------------------------------------------------------------------------


def test_software_credentials_refuse_bad_keys_and_hide_secrets() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        SoftwarePsk(b"id", b"")
    with pytest.raises(ValueError, match="only secp256r1"):
        SoftwareSigningKey(ec.generate_private_key(ec.SECP384R1()))
    psk = os.urandom(16)
    store = SoftwarePskStore({b"a": psk, b"b": os.urandom(16)})
    assert repr(store) == "SoftwarePskStore(2 identities)"
    found = store.lookup(b"a")
    assert found is not None
    assert psk.hex() not in repr(found)
    assert store.lookup(b"c") is None


# -- key references into a Secure Component ------------------------------------------------------


@pytest.fixture
def card() -> Iterator[PcscComponent]:
    component = PcscComponent(VirtualUicc(VseState()).process)
    yield component
    component.close()


def resolver(component: PcscComponent | None) -> Any:
    return DtlsConnector(component=component)._resolve_reference


def test_psk_reference_resolves_to_the_card_psk(card: PcscComponent) -> None:
    psk = os.urandom(16)
    card.import_psk(b"card-ep", psk, label="lwm2m:/0/7/5")
    ref = secret_reference("lwm2m:/0/7/5")
    account = account_security(
        credentials(SecurityMode.PSK, identity=b"card-ep", secret_key=ref),
        URI,
        resolve=resolver(card),
    )
    assert account.from_component
    handle = account.credentials.psk
    assert isinstance(handle, PcscPskHandle)
    assert handle.key_log_permitted is False
    seed = os.urandom(64)
    n = len(psk).to_bytes(2, "big")
    wanted = tls12_prf(n + bytes(16) + n + psk, b"extended master secret" + seed, 48)
    assert handle.derive_master_secret(b"extended master secret", seed) == wanted
    # the identity of the Security instance must be the card PSK's
    with pytest.raises(CredentialError, match=r"^/0/7/5 refers to the PSK of another identity"):
        account_security(
            credentials(SecurityMode.PSK, identity=b"other", secret_key=ref),
            URI,
            resolve=resolver(card),
        )
    # a reference to a key pair in PSK mode is no PSK
    card.generate_key("lwm2m:/0/8/5")

    def wrong_kind(value: bytes, mode: SecurityMode) -> Any:
        return card.key("lwm2m:/0/8/5")

    with pytest.raises(CredentialError, match=r"^/0/7/5 refers to a credential that is not a PSK"):
        account_security(
            credentials(SecurityMode.PSK, identity=b"card-ep", secret_key=ref),
            URI,
            resolve=wrong_kind,
        )


def test_rpk_and_certificate_references_sign_on_the_card(card: PcscComponent) -> None:
    handle = card.generate_key("lwm2m:/0/7/5")
    ref = secret_reference("lwm2m:/0/7/5")
    server = spki_der(ec.generate_private_key(ec.SECP256R1()).public_key())
    rpk = account_security(
        credentials(
            SecurityMode.RPK,
            identity=spki_der(handle.public_key()),
            secret_key=ref,
            server_public_key=server,
        ),
        URI,
        resolve=resolver(card),
    )
    key = rpk.credentials.signing_key
    assert rpk.from_component
    assert isinstance(key, PcscKeyHandle)
    key.public_key().verify(key.sign(b"transcript"), b"transcript", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(CredentialError, match=r"^/0/7/3 is not the public key of the private"):
        account_security(
            credentials(
                SecurityMode.RPK, identity=server, secret_key=ref, server_public_key=server
            ),
            URI,
            resolve=resolver(card),
        )
    ca = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(handle.public_key(), ca, algorithm=hashes.SHA256())
    x509_account = account_security(
        credentials(SecurityMode.CERTIFICATE, identity=leaf.public_bytes(DER), secret_key=ref),
        URI,
        resolve=resolver(card),
    )
    assert x509_account.from_component
    assert x509_account.credentials.certificate_chain == (leaf,)
    assert isinstance(x509_account.credentials.signing_key, PcscKeyHandle)
    verifier = x509_account.credentials.peer_verifier
    assert isinstance(verifier, X509Verifier)
    assert verifier.server_name == "lwm2m.example"
    other = certificate(ca.public_key(), ca, algorithm=hashes.SHA256())
    with pytest.raises(CredentialError, match=r"^/0/7/3: the certificate is not that of the priv"):
        account_security(
            credentials(SecurityMode.CERTIFICATE, identity=other.public_bytes(DER), secret_key=ref),
            URI,
            resolve=resolver(card),
        )


def test_references_without_a_component_or_credential(card: PcscComponent) -> None:
    ref = secret_reference("lwm2m:/0/7/5")
    with pytest.raises(CredentialError, match="no Secure Component"):
        account_security(
            credentials(SecurityMode.PSK, identity=b"ep", secret_key=ref),
            URI,
            resolve=resolver(None),
        )
    with pytest.raises(KeyNotFound, match=r"no PSK labelled 'lwm2m:/0/7/5'"):
        account_security(
            credentials(SecurityMode.PSK, identity=b"ep", secret_key=ref),
            URI,
            resolve=resolver(card),
        )
    with pytest.raises(KeyNotFound, match=r"no key pair labelled 'lwm2m:/0/7/5'"):
        account_security(
            credentials(SecurityMode.RPK, secret_key=ref, server_public_key=b"x"),
            URI,
            resolve=resolver(card),
        )
    # a value that is not a reference is the key itself, and the resolver is not asked
    seen: list[bytes] = []

    def spy(value: bytes, mode: SecurityMode) -> Any:
        seen.append(value)
        return None

    account = account_security(
        credentials(SecurityMode.PSK, identity=b"ep", secret_key=b"k" * 16), URI, resolve=spy
    )
    assert isinstance(account.credentials.psk, SoftwarePsk)
    assert not account.from_component
    assert seen == [b"k" * 16]
    with pytest.raises(CredentialError, match=r"^/0/7/5: PSK mode needs the key"):
        account_security(credentials(SecurityMode.PSK, identity=b"ep"), URI, resolve=spy)
    assert seen == [b"k" * 16]  # an empty /0/x/5 is not looked up
