"""ECDHE_ECDSA handshakes with raw public keys (RFC 7250) and X.509, and the LwM2M
certificate-usage rules (/0/x/15) of :class:`X509Verifier`."""

from __future__ import annotations

import datetime
import hashlib
from functools import cache

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.dtls import (
    AlertDescription,
    CertificateIdentity,
    CertificateType,
    CertificateUsage,
    ConnectionClosed,
    DtlsConfiguration,
    DtlsConnection,
    DtlsCredentials,
    MatchingType,
    RawPublicKeyIdentity,
    RawPublicKeyVerifier,
    SoftwareSigningKey,
    X509Verifier,
)
from lwm2m.dtls.errors import Alert
from lwm2m.dtls.trust import spki_der

from .helpers import (
    ECDHE_SUITES,
    Link,
    Pki,
    dtls_server,
    make_certificate,
    make_pki,
    rpk_pair,
    x509_client_credentials,
    x509_server_credentials,
)

DER = serialization.Encoding.DER


@cache
def pki() -> Pki:
    return make_pki()


@cache
def pki_with_intermediate() -> Pki:
    return make_pki(intermediate=True)


def client_with(credentials: DtlsCredentials, **config: object) -> DtlsConnection:
    return DtlsConnection(
        configuration=DtlsConfiguration(**({"cipher_suites": ECDHE_SUITES} | config)),  # type: ignore[arg-type]
        credentials=credentials,
    )


def failure(link: Link) -> tuple[int | None, int | None]:
    def alert(events: list[object]) -> int | None:
        closed = next((e for e in events if isinstance(e, ConnectionClosed)), None)
        return closed.alert if closed else None

    return alert(link.client_events), alert(link.server_events)


@pytest.mark.parametrize("suite", ECDHE_SUITES)
def test_raw_public_keys_both_ways(suite: int) -> None:
    client_credentials, server_credentials = rpk_pair()
    link = Link(
        client_with(client_credentials, cipher_suites=(suite,)), dtls_server(server_credentials)
    )
    link.run()
    client_done = link.completed(link.client_events)
    server_done = link.completed(link.server_events)
    assert client_done is not None
    assert server_done is not None
    assert client_done.cipher_suite == suite
    assert server_credentials.signing_key is not None
    assert client_credentials.signing_key is not None
    assert client_done.peer_identity == RawPublicKeyIdentity(
        spki_der(server_credentials.signing_key.public_key())
    )
    assert server_done.peer_identity == RawPublicKeyIdentity(
        spki_der(client_credentials.signing_key.public_key())
    )
    assert isinstance(client_done.peer_identity, RawPublicKeyIdentity)
    assert client_done.peer_identity.public_key() == server_credentials.signing_key.public_key()
    assert "spki_sha256=" in repr(client_done.peer_identity)
    assert link.exchange() == (b"ping", b"gnip")


def test_untrusted_raw_public_key_is_refused() -> None:
    _client_credentials, server_credentials = rpk_pair()
    stranger = DtlsCredentials(
        signing_key=SoftwareSigningKey.generate(),
        peer_verifier=RawPublicKeyVerifier([ec.generate_private_key(ec.SECP256R1()).public_key()]),
    )
    link = Link(client_with(stranger), dtls_server(server_credentials))
    link.run()
    assert failure(link) == (AlertDescription.BAD_CERTIFICATE, AlertDescription.BAD_CERTIFICATE)
    # The server refuses an unknown client key the same way.
    client_credentials2, _ = rpk_pair()
    link = Link(client_with(client_credentials2), dtls_server(server_credentials))
    link.run()
    assert failure(link)[1] == AlertDescription.BAD_CERTIFICATE


def test_server_accepting_any_raw_public_key_reports_it() -> None:
    client_credentials, server_credentials = rpk_pair()
    open_server = DtlsCredentials(
        signing_key=server_credentials.signing_key, peer_verifier=RawPublicKeyVerifier()
    )
    link = Link(client_with(client_credentials), dtls_server(open_server))
    link.run()
    done = link.completed(link.server_events)
    assert done is not None
    assert isinstance(done.peer_identity, RawPublicKeyIdentity)


def test_server_without_client_authentication() -> None:
    client_credentials, server_credentials = rpk_pair()
    anonymous_client = DtlsCredentials(peer_verifier=client_credentials.peer_verifier)
    server = DtlsCredentials(signing_key=server_credentials.signing_key)
    link = Link(client_with(anonymous_client), dtls_server(server))
    link.run()
    done = link.completed(link.server_events)
    assert done is not None
    assert done.peer_identity is None


def test_client_without_key_when_server_requires_one() -> None:
    client_credentials, server_credentials = rpk_pair()
    anonymous_client = DtlsCredentials(peer_verifier=client_credentials.peer_verifier)
    link = Link(client_with(anonymous_client), dtls_server(server_credentials))
    link.run()
    assert failure(link)[1] == AlertDescription.HANDSHAKE_FAILURE


@pytest.mark.parametrize("intermediate", [False, True])
@pytest.mark.parametrize("suite", ECDHE_SUITES)
def test_x509_mutual_authentication(suite: int, intermediate: bool) -> None:
    material = pki_with_intermediate() if intermediate else pki()
    link = Link(
        client_with(
            x509_client_credentials(material, server_name="server.example"), cipher_suites=(suite,)
        ),
        dtls_server(x509_server_credentials(material)),
    )
    link.run()
    client_done = link.completed(link.client_events)
    server_done = link.completed(link.server_events)
    assert client_done is not None
    assert server_done is not None
    server_identity = client_done.peer_identity
    assert isinstance(server_identity, CertificateIdentity)
    assert server_identity.common_name == "server.example"
    assert server_identity.subject_alt_names == ("server.example",)
    assert server_identity.certificates()[0] == material.server
    assert len(server_identity.chain) == (2 if intermediate else 1)
    client_identity = server_done.peer_identity
    assert isinstance(client_identity, CertificateIdentity)
    assert client_identity.common_name == "urn:imei:490154203237518"
    assert "chain" not in repr(client_identity)
    assert link.exchange() == (b"ping", b"gnip")


def test_x509_wrong_server_name_and_unknown_ca() -> None:
    material = pki()
    link = Link(
        client_with(x509_client_credentials(material, server_name="other.example")),
        dtls_server(x509_server_credentials(material)),
    )
    link.run()
    assert failure(link)[0] == AlertDescription.CERTIFICATE_UNKNOWN
    other = make_pki()
    link = Link(
        client_with(x509_client_credentials(material, trust_anchors=(other.ca,))),
        dtls_server(x509_server_credentials(material)),
    )
    link.run()
    assert failure(link)[0] == AlertDescription.UNKNOWN_CA


def _verify(verifier: X509Verifier, *certs: object) -> CertificateIdentity:
    identity = verifier.verify(
        CertificateType.X509,
        tuple(c.public_bytes(DER) for c in certs),  # type: ignore[attr-defined]
    )
    assert isinstance(identity, CertificateIdentity)
    return identity


def test_certificate_usage_3_domain_issued_matches_the_leaf_only() -> None:
    material = pki()
    leaf = material.server.public_bytes(DER)
    for matching, association in [
        (MatchingType.EXACT, leaf),
        (MatchingType.SHA256, hashlib.sha256(leaf).digest()),
        (MatchingType.SHA384, hashlib.sha384(leaf).digest()),
        (MatchingType.SHA512, hashlib.sha512(leaf).digest()),
    ]:
        # No trust anchor, no name check: the provisioned certificate is the trust.
        verifier = X509Verifier(certificate_association=association, matching_type=matching)
        assert _verify(verifier, material.server).common_name == "server.example"
    with pytest.raises(Alert) as info:
        _verify(X509Verifier(certificate_association=leaf), material.client)
    assert info.value.description == AlertDescription.BAD_CERTIFICATE


def test_certificate_usage_2_trust_anchor_assertion() -> None:
    material = pki_with_intermediate()
    assert material.intermediate is not None
    ca = material.ca.public_bytes(DER)
    verifier = X509Verifier(
        certificate_association=ca, certificate_usage=CertificateUsage.TRUST_ANCHOR_ASSERTION
    )
    assert _verify(verifier, material.server, material.intermediate).common_name == "server.example"
    # The asserted anchor may also be the intermediate, by hash, when the peer sends it.
    by_hash = X509Verifier(
        certificate_association=hashlib.sha256(material.intermediate.public_bytes(DER)).digest(),
        matching_type=MatchingType.SHA256,
        certificate_usage=CertificateUsage.TRUST_ANCHOR_ASSERTION,
    )
    _verify(by_hash, material.server, material.intermediate)
    with pytest.raises(Alert):
        _verify(verifier, make_pki().server)


def test_certificate_usage_1_service_certificate_constraint() -> None:
    material = pki()
    verifier = X509Verifier(
        trust_anchors=(material.ca,),
        certificate_association=material.server.public_bytes(DER),
        certificate_usage=CertificateUsage.SERVICE_CERTIFICATE_CONSTRAINT,
        server_name="server.example",
    )
    _verify(verifier, material.server)
    # Valid chain, but not the provisioned leaf.
    other_leaf = make_certificate(
        "server.example",
        ec.generate_private_key(ec.SECP256R1()),
        material.ca,
        material.ca_key,
        ca=False,
        san="server.example",
    )
    with pytest.raises(Alert):
        _verify(verifier, other_leaf)
    # The provisioned leaf, but no valid chain.
    lonely = X509Verifier(
        certificate_association=material.server.public_bytes(DER),
        certificate_usage=CertificateUsage.SERVICE_CERTIFICATE_CONSTRAINT,
    )
    with pytest.raises(Alert) as info:
        _verify(lonely, material.server)
    assert info.value.description == AlertDescription.UNKNOWN_CA


def test_certificate_usage_0_ca_constraint() -> None:
    material = pki_with_intermediate()
    assert material.intermediate is not None
    verifier = X509Verifier(
        trust_anchors=(material.ca,),
        certificate_association=material.intermediate.public_bytes(DER),
        certificate_usage=CertificateUsage.CA_CONSTRAINT,
    )
    _verify(verifier, material.server, material.intermediate)
    # The leaf itself does not satisfy a CA constraint.
    leaf_as_ca = X509Verifier(
        trust_anchors=(material.ca,),
        certificate_association=material.server.public_bytes(DER),
        certificate_usage=CertificateUsage.CA_CONSTRAINT,
    )
    with pytest.raises(Alert):
        _verify(leaf_as_ca, material.server, material.intermediate)


def test_expired_certificate_and_validation_time() -> None:
    material = pki()
    expired = make_certificate(
        "old.example",
        material.server_key,
        material.ca,
        material.ca_key,
        ca=False,
        not_after=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1),
    )
    verifier = X509Verifier(trust_anchors=(material.ca,))
    with pytest.raises(Alert) as info:
        _verify(verifier, expired)
    assert info.value.description == AlertDescription.CERTIFICATE_UNKNOWN
    back_then = X509Verifier(
        trust_anchors=(material.ca,),
        validation_time=lambda: datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2),
    )
    assert _verify(back_then, expired).common_name == "old.example"
    assert "usage=DOMAIN_ISSUED_CERTIFICATE" in repr(verifier)


def test_verifiers_reject_wrong_types_and_garbage() -> None:
    rpk = RawPublicKeyVerifier()
    x509v = X509Verifier(trust_anchors=(pki().ca,))
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    cases = [
        (rpk, CertificateType.X509, (spki_der(key),)),
        (rpk, CertificateType.RAW_PUBLIC_KEY, ()),
        (rpk, CertificateType.RAW_PUBLIC_KEY, (b"garbage",)),
        (rpk, CertificateType.RAW_PUBLIC_KEY, (spki_der(p384),)),
        (x509v, CertificateType.RAW_PUBLIC_KEY, (spki_der(key),)),
        (x509v, CertificateType.X509, ()),
        (x509v, CertificateType.X509, (b"garbage",)),
        (X509Verifier(), CertificateType.X509, (pki().server.public_bytes(DER),)),
    ]
    for verifier, kind, certificates in cases:
        with pytest.raises(Alert):
            verifier.verify(kind, certificates)
    assert repr(rpk) == "RawPublicKeyVerifier(trusted=any)"


def test_rpk_client_with_x509_server() -> None:
    """Certificate types are negotiated per direction (RFC 7250 §4)."""
    material = pki()
    client_key = SoftwareSigningKey.generate()
    client = DtlsCredentials(
        signing_key=client_key,
        peer_verifier=X509Verifier(trust_anchors=(material.ca,), server_name="server.example"),
    )
    server = x509_server_credentials(material, client_auth=False)
    server = DtlsCredentials(
        signing_key=server.signing_key,
        certificate_chain=server.certificate_chain,
        peer_verifier=RawPublicKeyVerifier([client_key.public_key()]),
    )
    link = Link(client_with(client), dtls_server(server))
    link.run()
    server_done = link.completed(link.server_events)
    client_done = link.completed(link.client_events)
    assert server_done is not None
    assert client_done is not None
    assert isinstance(server_done.peer_identity, RawPublicKeyIdentity)
    assert isinstance(client_done.peer_identity, CertificateIdentity)


def test_server_without_x509_chain_cannot_serve_x509_only_clients() -> None:
    material = pki()
    _, server_credentials = rpk_pair()  # a raw key only
    link = Link(client_with(x509_client_credentials(material)), dtls_server(server_credentials))
    link.run()
    assert failure(link)[0] == AlertDescription.HANDSHAKE_FAILURE
