"""The LwM2M client over DTLS on loopback: Security modes 0 PSK, 1 RPK, 2 X.509 (and 3 NoSec next
to them on the same socket) against a minimal LwM2M server on our CoAP endpoint that checks ``ep``
against the identity the handshake authenticated; a wrong PSK; credentials in a Secure Component
(``pkcs11:`` on SoftHSM2, where a memory scan finds no PSK afterwards, and ``soft:``, where the PSK
is only inside the component's key store); the mapping of Security instances to DTLS
credentials."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dtls.helpers import Pki, make_pki
from lwm2m.client import ClientConfig, parse_config
from lwm2m.client.accounts import ServerUri
from lwm2m.client.dtls_security import (
    CredentialError,
    account_security,
    load_certificates,
    load_private_key,
    load_public_key,
)
from lwm2m.client.events import RegistrationFailed
from lwm2m.client.objects.security import Credentials, Secret, SecurityMode
from lwm2m.coap import Code, Message
from lwm2m.dtls import (
    CertificateUsage,
    CipherSuite,
    DtlsCredentials,
    MatchingType,
    RawPublicKeyVerifier,
    SoftwarePsk,
    SoftwarePskStore,
    SoftwareSigningKey,
    X509Verifier,
)
from lwm2m.dtls.trust import spki_der
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest, Site
from lwm2m.io.coaps import DtlsSecurityLayer
from lwm2m.io.lwm2m_client import DtlsConnector, LwM2MClient
from lwm2m.model import ObjectInstance, SingleResource
from lwm2m.model.values import ResourceType
from lwm2m.secure import SecureComponent, SecureInstanceStore, missing_modules, open_component
from secure.memscan import holders, reachable_data

from .helpers import require

TIMEOUT = 5.0
EP = "urn:dev:ops:dtls-client-1"
DER = serialization.Encoding.DER


class Lwm2mServer:
    """A minimal LwM2M server: ``/rd`` with the endpoint binding rule of Transport §5.2.8 (``ep``
    must equal the PSK identity / certificate CN, or the table entry of a raw public key)."""

    def __init__(self, security: DtlsSecurityLayer, rpk_table: dict[bytes, str] | None = None):
        self.security = security
        self.rpk_table = rpk_table or {}
        self.requests: asyncio.Queue[CoapRequest] = asyncio.Queue()
        self.endpoint: CoapEndpoint

    async def start(self) -> Lwm2mServer:
        site = Site()
        site.add("/rd", self._rd)
        self.endpoint = await CoapEndpoint.create(site=site, security=self.security)
        return self

    @property
    def uri(self) -> str:
        return f"coaps://127.0.0.1:{self.endpoint.local_address[1]}"

    def _rd(self, request: CoapRequest) -> Message:
        if request.code == Code.POST and not request.path:
            identity = request.peer_identity
            ep = next(q[3:] for q in request.message.uri_query if q.startswith("ep="))
            if identity is None:
                return Message(Code.BAD_REQUEST, b"no identity")
            if identity.kind == "rpk":
                assert isinstance(identity.value, bytes)
                name = self.rpk_table.get(identity.value)
            else:
                value = identity.value
                name = value.decode() if isinstance(value, bytes) else value
            if name != ep:
                return Message(Code.BAD_REQUEST, b"ep does not match the identity")
            self.requests.put_nowait(request)
            response = Message(Code.CREATED)
            response.location_path = ("rd", "c1")
            return response
        self.requests.put_nowait(request)
        return Message(Code.DELETED if request.code == Code.DELETE else Code.CHANGED)

    async def next_request(self) -> CoapRequest:
        return await asyncio.wait_for(self.requests.get(), TIMEOUT)


def config(endpoint: str, *servers: dict[str, Any]) -> ClientConfig:
    return parse_config(
        {
            "endpoint": endpoint,
            "bind": "127.0.0.1:0",
            "device": {"manufacturer": "ACME", "model_number": "DTLS"},
            "servers": [
                {
                    "short_server_id": 1 + i,
                    "lifetime": 60,
                    "retry_count": 1,
                    "bootstrap_on_failure": False,
                    **table,
                }
                for i, table in enumerate(servers)
            ],
        }
    )


def pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


async def psk_setup(pki: Pki) -> tuple[Lwm2mServer, dict[str, Any], str]:
    key = os.urandom(16)
    layer = DtlsSecurityLayer(
        server_credentials=DtlsCredentials(psk_store=SoftwarePskStore({EP.encode(): key}))
    )
    server = await Lwm2mServer(layer).start()
    table = {"security_mode": "psk", "psk_identity": EP, "psk_key_hex": key.hex()}
    return server, table, EP


async def rpk_setup(pki: Pki) -> tuple[Lwm2mServer, dict[str, Any], str]:
    client_key = ec.generate_private_key(ec.SECP256R1())
    server_key = SoftwareSigningKey.generate()
    client_spki = spki_der(client_key.public_key())
    layer = DtlsSecurityLayer(
        server_credentials=DtlsCredentials(
            signing_key=server_key, peer_verifier=RawPublicKeyVerifier()
        )
    )
    server = await Lwm2mServer(layer, {client_spki: EP}).start()
    table = {
        "security_mode": "rpk",
        "public_key_hex": client_spki.hex(),
        "private_key_hex": pkcs8(client_key).hex(),
        "server_public_key_hex": spki_der(server_key.public_key()).hex(),
    }
    return server, table, EP


def x509_layer(pki: Pki) -> DtlsSecurityLayer:
    return DtlsSecurityLayer(
        server_credentials=DtlsCredentials(
            signing_key=SoftwareSigningKey(pki.server_key),
            certificate_chain=(pki.server,),
            peer_verifier=X509Verifier(trust_anchors=(pki.ca,)),
        )
    )


def x509_client_table(pki: Pki) -> dict[str, Any]:
    return {
        "security_mode": "x509",
        "certificate_hex": pki.client.public_bytes(DER).hex(),
        "private_key_hex": pkcs8(pki.client_key).hex(),
    }


async def x509_ee_setup(pki: Pki) -> tuple[Lwm2mServer, dict[str, Any], str]:
    """Certificate Usage 3 (the default): /0/x/4 is the server's own certificate."""
    server = await Lwm2mServer(x509_layer(pki)).start()
    table = x509_client_table(pki) | {"server_certificate_hex": pki.server.public_bytes(DER).hex()}
    return server, table, "urn:imei:490154203237518"


async def x509_ta_setup(pki: Pki) -> tuple[Lwm2mServer, dict[str, Any], str]:
    """Usage 2 (trust anchor assertion) with /0/x/4 the CA's SHA-256 (Matching Type 1) — the
    server sends its chain with the CA — and the name checked through /0/x/14 SNI."""
    layer = DtlsSecurityLayer(
        server_credentials=DtlsCredentials(
            signing_key=SoftwareSigningKey(pki.server_key),
            certificate_chain=(pki.server, pki.ca),
            peer_verifier=X509Verifier(trust_anchors=(pki.ca,)),
        )
    )
    server = await Lwm2mServer(layer).start()
    table = x509_client_table(pki) | {
        "server_certificate_hex": hashlib.sha256(pki.ca.public_bytes(DER)).hexdigest(),
        "certificate_usage": 2,
        "matching_type": 1,
        "sni": "server.example",
    }
    return server, table, "urn:imei:490154203237518"


SETUPS = {
    "psk": (psk_setup, CipherSuite.TLS_PSK_WITH_AES_128_CCM_8),
    "rpk": (rpk_setup, CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8),
    "x509-domain-issued": (x509_ee_setup, CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8),
    "x509-trust-anchor": (x509_ta_setup, CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8),
}


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.mark.parametrize("mode", list(SETUPS))
async def test_register_read_and_deregister_over_dtls(pki: Pki, mode: str) -> None:
    setup, suite = SETUPS[mode]
    server, table, endpoint = await setup(pki)
    try:
        client = LwM2MClient(
            config(endpoint, {"uri": server.uri, **table}), connector=DtlsConnector()
        )
        async with client:
            await asyncio.wait_for(client.wait_registered(), TIMEOUT)
            register = await server.next_request()
            identity = register.peer_identity
            assert identity is not None
            assert identity.kind == mode[:4]
            assert register.remote == client.local_address  # one socket, session by address
            layer = client.endpoint.security
            assert isinstance(layer, DtlsSecurityLayer)
            result = layer.handshake_result(server.endpoint.local_address)
            assert result is not None
            assert result.cipher_suite == suite
            # the server reads the device over the session the client opened
            response = await asyncio.wait_for(
                server.endpoint.request(Message(Code.GET, uri_path="/3/0/0"), register.remote),
                TIMEOUT,
            )
            assert (response.code, response.payload) == (Code.CONTENT, b"ACME")
        deregister = await server.next_request()
        assert deregister.code == Code.DELETE
        assert deregister.peer_identity == identity
    finally:
        await server.endpoint.close()


async def test_nosec_and_psk_servers_share_the_socket(pki: Pki) -> None:
    secured, table, _ = await psk_setup(pki)
    site = Site()
    plain_requests: list[CoapRequest] = []

    def rd(request: CoapRequest) -> Message:
        plain_requests.append(request)
        response = Message(Code.CREATED if request.code == Code.POST else Code.DELETED)
        response.location_path = ("rd", "p1")
        return response

    site.add("/rd", rd)
    async with await CoapEndpoint.create(site=site) as plain:
        try:
            nosec = {"uri": f"coap://127.0.0.1:{plain.local_address[1]}"}
            cfg = config(EP, {"uri": secured.uri, **table}, nosec)
            async with LwM2MClient(cfg, connector=DtlsConnector()) as client:
                await asyncio.wait_for(client.wait_registered(), TIMEOUT)
                register = await secured.next_request()
                assert register.remote == plain_requests[0].remote == client.local_address
                assert plain_requests[0].peer_identity is None
        finally:
            await secured.endpoint.close()


async def test_wrong_psk_fails_registration_clearly(pki: Pki) -> None:
    server, table, _ = await psk_setup(pki)
    wrong = os.urandom(16).hex()
    table["psk_key_hex"] = wrong
    failures: asyncio.Queue[RegistrationFailed] = asyncio.Queue()

    def on_event(event: object) -> None:
        if isinstance(event, RegistrationFailed):
            failures.put_nowait(event)

    try:
        cfg = config(EP, {"uri": server.uri, **table})
        async with LwM2MClient(cfg, connector=DtlsConnector(), on_event=on_event):
            failed = await asyncio.wait_for(failures.get(), TIMEOUT)
        assert "DTLS handshake with 127.0.0.1" in failed.reason
        assert "decrypt_error" in failed.reason
        assert wrong not in failed.reason
    finally:
        await server.endpoint.close()


async def test_endpoint_name_bound_to_identity(pki: Pki) -> None:
    """A PSK identity that is not the endpoint name: the (minimal) server answers 4.00."""
    server, table, _ = await psk_setup(pki)
    failures: asyncio.Queue[RegistrationFailed] = asyncio.Queue()
    try:
        cfg = config("someone-else", {"uri": server.uri, **table})
        client = LwM2MClient(
            cfg,
            connector=DtlsConnector(),
            on_event=lambda e: (
                failures.put_nowait(e) if isinstance(e, RegistrationFailed) else None
            ),
        )
        async with client:
            failed = await asyncio.wait_for(failures.get(), TIMEOUT)
        assert "4.00" in failed.reason or "BAD_REQUEST" in failed.reason.upper()
    finally:
        await server.endpoint.close()


# -- Secure Component ----------------------------------------------------------------------------


def provision(component: SecureComponent, uri: str, identity: bytes) -> tuple[bytes, bytes]:
    """Write /0/0 (PSK mode, the key imported into the component) and /1/0 through a
    SecureInstanceStore, as a bootstrap would; only a masked copy of the PSK is returned."""
    psk = os.urandom(16)
    mask = os.urandom(16)
    masked = bytes(a ^ b for a, b in zip(mask, psk, strict=True))
    store = SecureInstanceStore(component)
    opaque, integer = ResourceType.OPAQUE, ResourceType.INTEGER
    store.put(
        0,
        ObjectInstance(
            0,
            [
                SingleResource(0, ResourceType.STRING, uri),
                SingleResource(1, ResourceType.BOOLEAN, False),
                SingleResource(2, integer, 0),
                SingleResource(3, opaque, identity),
                SingleResource(4, opaque, b""),
                SingleResource(5, opaque, psk),
                SingleResource(10, integer, 1),
            ],
        ),
    )
    store.put(
        1,
        ObjectInstance(
            0,
            [
                SingleResource(0, integer, 1),
                SingleResource(1, integer, 60),
                SingleResource(6, ResourceType.BOOLEAN, True),
                SingleResource(7, ResourceType.STRING, "U"),
            ],
        ),
    )
    del psk
    return mask, masked


def import_server_psk(component: SecureComponent, mask: bytes, masked: bytes) -> None:
    component.import_psk(EP.encode(), bytes(a ^ b for a, b in zip(mask, masked, strict=True)))


# The factory configuration is not used: the accounts come from the component.
UNUSED = {
    "endpoint": EP,
    "bind": "127.0.0.1:0",
    "servers": [{"uri": "coap://127.0.0.1:9", "short_server_id": 1}],
}


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A SoftHSM2 with a client and a server token (see tests/secure/softhsm.py)."""
    from secure.softhsm import SoftHsm, find_module, find_util

    require(find_module() is not None and find_util() is not None, "SoftHSM2 (Debian softhsm2)")
    require(not missing_modules()["pkcs11"], "python-pkcs11")
    hsm = SoftHsm.create(tmp_path_factory.mktemp("softhsm"), ("client", "server"))
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
    import pkcs11

    loaded = pkcs11._loaded.get(hsm.module)  # loaded earlier in this process: re-read the config
    if loaded is not None:
        loaded.reinitialize()
    yield hsm
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous
        loaded = pkcs11._loaded.get(hsm.module)
        if loaded is not None:
            loaded.reinitialize()


async def test_pkcs11_component_registers_and_no_psk_in_memory(softhsm: Any) -> None:
    client_uri = softhsm.uri("client")
    with open_component(softhsm.uri("server")) as server_component:
        layer = DtlsSecurityLayer(server_credentials=DtlsCredentials(psk_store=server_component))
        server = await Lwm2mServer(layer).start()
        try:
            with open_component(client_uri) as setup:
                mask, masked = provision(setup, server.uri, EP.encode())
            import_server_psk(server_component, mask, masked)
            client = LwM2MClient(parse_config(UNUSED), secure_component=client_uri)
            async with client:
                await asyncio.wait_for(client.wait_registered(), TIMEOUT)
                register = await server.next_request()
                assert register.peer_identity is not None
                assert register.peer_identity.value == EP.encode()
                connector = client.connector
                assert isinstance(connector, DtlsConnector)
                assert connector.security_layer.stats.offloaded >= 1  # token calls off the loop
                # /0/0/5 is a reference inside the component; DM servers cannot read /0
                assert client.secure_store is not None
                assert client.secure_store.reference(0, 0, 5) is not None
                assert holders(mask, masked) == []
            assert holders(mask, masked) == []
        finally:
            await server.endpoint.close()


async def test_soft_component_keeps_the_psk_in_its_key_store(tmp_path: Path) -> None:
    client_component = open_component(
        f"soft:{tmp_path}/client.sc", passphrase="p", create=True, scrypt_log2_n=10
    )
    server_component = open_component(
        f"soft:{tmp_path}/server.sc", passphrase="p", create=True, scrypt_log2_n=10
    )
    layer = DtlsSecurityLayer(server_credentials=DtlsCredentials(psk_store=server_component))
    server = await Lwm2mServer(layer).start()
    try:
        mask, masked = provision(client_component, server.uri, EP.encode())
        import_server_psk(server_component, mask, masked)
        async with LwM2MClient(parse_config(UNUSED), secure_component=client_component) as client:
            await asyncio.wait_for(client.wait_registered(), TIMEOUT)
            register = await server.next_request()
            assert register.peer_identity is not None
            found = holders(mask, masked)
            assert found  # a software component keeps the PSK (premaster form) in memory...
            inside = reachable_data(client_component) | reachable_data(server_component)
            outside = [type(h).__name__ for h in found if id(h) not in inside]
            assert outside == []  # ...but only inside its key store
            del found
    finally:
        await server.endpoint.close()
        client_component.close()
        server_component.close()


# -- Security instance -> DTLS credentials -------------------------------------------------------

URI = ServerUri.parse("coaps://127.0.0.1:5684")


def credentials(mode: SecurityMode, **values: Any) -> Credentials:
    secret = values.pop("secret_key", b"")
    return Credentials(3, mode, secret_key=Secret(secret), **values)


def test_psk_account_and_cipher_suite_resource() -> None:
    key = os.urandom(16)
    account = account_security(credentials(SecurityMode.PSK, identity=b"id", secret_key=key), URI)
    assert account.cipher_suites == (
        CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,
        CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256,
    )
    assert isinstance(account.credentials.psk, SoftwarePsk)
    only_cbc = credentials(
        SecurityMode.PSK, identity=b"id", secret_key=key, ciphersuites=(0x00AE, 0xC02B)
    )
    assert account_security(only_cbc, URI).cipher_suites == (0x00AE,)
    with pytest.raises(CredentialError, match=r"/0/3/16.*0xC02B"):
        account_security(
            credentials(SecurityMode.PSK, identity=b"id", secret_key=key, ciphersuites=(0xC02B,)),
            URI,
        )
    for broken, match in (
        (credentials(SecurityMode.PSK, secret_key=key), "/0/3/3"),
        (credentials(SecurityMode.PSK, identity=b"id"), "/0/3/5"),
        (credentials(SecurityMode.NO_SEC), "has no DTLS credentials"),
    ):
        with pytest.raises(CredentialError, match=match) as error:
            account_security(broken, URI)
        assert key.hex() not in str(error.value)


def test_psk_reference_resolves_to_a_handle() -> None:
    handle = SoftwarePsk(b"id", os.urandom(16))
    seen: list[tuple[bytes, SecurityMode]] = []

    def resolve(value: bytes, mode: SecurityMode) -> Any:
        seen.append((value, mode))
        return handle

    account = account_security(
        credentials(SecurityMode.PSK, identity=b"id", secret_key=b"sc-ref:x"), URI, resolve=resolve
    )
    assert account.credentials.psk is handle
    assert account.from_component
    assert seen == [(b"sc-ref:x", SecurityMode.PSK)]
    with pytest.raises(CredentialError, match="another identity"):
        account_security(
            credentials(SecurityMode.PSK, identity=b"other", secret_key=b"r"), URI, resolve=resolve
        )
    with pytest.raises(CredentialError, match="not a key pair"):
        account_security(
            credentials(SecurityMode.RPK, secret_key=b"r", server_public_key=b"k"),
            URI,
            resolve=resolve,
        )


def test_rpk_account_key_formats() -> None:
    own = ec.generate_private_key(ec.SECP256R1())
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = peer.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    scalar = own.private_numbers().private_value.to_bytes(32, "big")
    for secret in (pkcs8(own), scalar):
        for server_key in (spki_der(peer), point, point[1:]):
            account = account_security(
                credentials(
                    SecurityMode.RPK,
                    identity=spki_der(own.public_key()),
                    secret_key=secret,
                    server_public_key=server_key,
                ),
                URI,
            )
            assert isinstance(account.credentials.peer_verifier, RawPublicKeyVerifier)
            assert account.cipher_suites[0] == CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8
    with pytest.raises(CredentialError, match=r"/0/3/3 is not the public key"):
        account_security(
            credentials(
                SecurityMode.RPK,
                identity=spki_der(peer),
                secret_key=pkcs8(own),
                server_public_key=point,
            ),
            URI,
        )
    with pytest.raises(CredentialError, match="/0/3/4"):
        account_security(credentials(SecurityMode.RPK, secret_key=pkcs8(own)), URI)
    with pytest.raises(CredentialError, match="P-256 private key"):
        load_private_key(b"\x01\x02\x03")
    with pytest.raises(CredentialError, match="P-256 public key"):
        load_public_key(b"\x30\x00")
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(CredentialError, match="only P-256"):
        load_private_key(pkcs8(p384))


def test_certificate_account(pki: Pki) -> None:
    chain_der = pki.client.public_bytes(DER) + pki.ca.public_bytes(DER)
    account = account_security(
        credentials(
            SecurityMode.CERTIFICATE,
            identity=chain_der,
            secret_key=pkcs8(pki.client_key),
            server_public_key=pki.ca.public_bytes(DER),
            certificate_usage=2,
            sni="server.example",
        ),
        URI,
    )
    assert account.credentials.certificate_chain == (pki.client, pki.ca)
    verifier = account.credentials.peer_verifier
    assert isinstance(verifier, X509Verifier)
    assert verifier.certificate_usage is CertificateUsage.TRUST_ANCHOR_ASSERTION
    assert verifier.matching_type is MatchingType.EXACT
    assert verifier.server_name == "server.example"
    default = account_security(
        credentials(
            SecurityMode.CERTIFICATE,
            identity=pki.client.public_bytes(serialization.Encoding.PEM),
            secret_key=pkcs8(pki.client_key),
        ),
        URI,
    )
    assert isinstance(default.credentials.peer_verifier, X509Verifier)
    assert default.credentials.peer_verifier.certificate_usage is (
        CertificateUsage.DOMAIN_ISSUED_CERTIFICATE
    )
    assert default.credentials.peer_verifier.server_name == "127.0.0.1"
    with pytest.raises(CredentialError, match="not that of the private key"):
        account_security(
            credentials(
                SecurityMode.CERTIFICATE,
                identity=pki.client.public_bytes(DER),
                secret_key=pkcs8(pki.server_key),
            ),
            URI,
        )
    with pytest.raises(CredentialError, match="/0/3/15"):
        account_security(
            credentials(
                SecurityMode.CERTIFICATE,
                identity=pki.client.public_bytes(DER),
                secret_key=pkcs8(pki.client_key),
                certificate_usage=7,
            ),
            URI,
        )
    for bad in (b"\x30\x82\x05", b"\x02\x01\x00", b""):
        with pytest.raises(CredentialError):
            load_certificates(bad)
    assert isinstance(load_certificates(chain_der)[1], x509.Certificate)


def test_the_default_connector_speaks_dtls() -> None:
    """The default connector speaks DTLS; an explicit one is kept."""
    cfg = config(
        EP,
        {
            "uri": "coaps://127.0.0.1:5684",
            "security_mode": "psk",
            "psk_identity": EP,
            "psk_key_hex": "00" * 16,
        },
    )
    assert isinstance(LwM2MClient(cfg).connector, DtlsConnector)
    assert isinstance(LwM2MClient(cfg, connector=DtlsConnector()).connector, DtlsConnector)
