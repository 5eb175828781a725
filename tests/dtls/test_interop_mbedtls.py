"""Interop with Mbed TLS 2.28 through python-mbedtls, driven in memory (its ``wrap_buffers``
sans-IO mode): our client with an mbedtls server and an mbedtls client with our server, PSK and
ECDHE-ECDSA with X.509 (mbedtls supports neither raw public keys nor connection IDs), with a
HelloVerifyRequest round trip and application data both ways.

A missing python-mbedtls skips on a developer machine and fails under CI=true.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from lwm2m.dtls import (
    ApplicationData,
    CertificateIdentity,
    DtlsConfiguration,
    DtlsConnection,
    HandshakeCompleted,
    PskIdentity,
)

from .helpers import (
    PSK,
    PSK_IDENTITY,
    Pki,
    dtls_server,
    make_pki,
    psk_client,
    require,
    x509_client_credentials,
    x509_server_credentials,
)

pytestmark = pytest.mark.interop

try:
    from mbedtls import pk as mbedtls_pk
    from mbedtls import tls as mbedtls_tls
    from mbedtls import x509 as mbedtls_x509
except ImportError:  # pragma: no cover - depends on the machine
    mbedtls_tls = None

DER = serialization.Encoding.DER
SUITES = {
    "psk-ccm8": ("TLS-PSK-WITH-AES-128-CCM-8", 0xC0A8),
    "psk-cbc": ("TLS-PSK-WITH-AES-128-CBC-SHA256", 0x00AE),
    "ecdhe-ccm8": ("TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8", 0xC0AE),
    "ecdhe-cbc": ("TLS-ECDHE-ECDSA-WITH-AES-128-CBC-SHA256", 0xC023),
}


@pytest.fixture(autouse=True)
def _need_mbedtls() -> None:
    require(mbedtls_tls is not None, "python-mbedtls (pip install python-mbedtls)")


@cache
def pki() -> Pki:
    return make_pki()


def _mbedtls_key(key: Any) -> Any:
    return mbedtls_pk.ECC.from_DER(
        key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _mbedtls_configuration(name: str, *, server: bool) -> Any:
    cipher = SUITES[name][0]
    if name.startswith("psk"):
        if server:
            return mbedtls_tls.DTLSConfiguration(
                pre_shared_key_store={PSK_IDENTITY.decode(): PSK},
                ciphers=[cipher],
                validate_certificates=False,
            )
        return mbedtls_tls.DTLSConfiguration(
            pre_shared_key=(PSK_IDENTITY.decode(), PSK),
            ciphers=[cipher],
            validate_certificates=False,
        )
    material = pki()
    cert, key = (
        (material.server, material.server_key) if server else (material.client, material.client_key)
    )
    return mbedtls_tls.DTLSConfiguration(
        certificate_chain=((mbedtls_x509.CRT.from_DER(cert.public_bytes(DER)),), _mbedtls_key(key)),
        trust_store=mbedtls_tls.TrustStore(
            [mbedtls_x509.CRT.from_DER(material.ca.public_bytes(DER))]
        ),
        validate_certificates=True,
        ciphers=[cipher],
    )


def _take(buffer: Any) -> bytes:
    data = buffer.peek_outgoing(65536) or b""
    if data:
        buffer.consume_outgoing(len(data))
    return bytes(data)


def _advance(buffer: Any, cookie: bytes | None = None) -> tuple[bytes, bool]:
    """Step the mbedtls handshake (one state per call) until it needs input."""
    out = b""
    for _ in range(64):
        if buffer._handshake_state is mbedtls_tls.HandshakeStep.HANDSHAKE_OVER:
            return out + _take(buffer), True
        try:
            buffer.do_handshake()
        except (mbedtls_tls.WantReadError, mbedtls_tls.WantWriteError) as exc:
            out += _take(buffer)
            if isinstance(exc, mbedtls_tls.WantReadError):
                return out, False
        except mbedtls_tls.HelloVerifyRequest:
            out += _take(buffer)
            buffer._reset()
            buffer.setcookieparam(cookie)
            return out, False
        else:
            out += _take(buffer)
    raise AssertionError("mbedtls made no progress")


def _client_for(name: str) -> DtlsConnection:
    suite = SUITES[name][1]
    if name.startswith("psk"):
        return psk_client(cipher_suites=(suite,))
    return DtlsConnection(
        configuration=DtlsConfiguration(cipher_suites=(suite,)),
        credentials=x509_client_credentials(pki(), server_name="server.example"),
    )


@pytest.mark.parametrize("name", list(SUITES))
def test_our_client_with_mbedtls_server(name: str) -> None:
    server = mbedtls_tls.ServerContext(_mbedtls_configuration(name, server=True)).wrap_buffers()
    server.setcookieparam(b"127.0.0.1:40000")
    client = _client_for(name)
    client.connect(0.0)
    events: list[object] = []
    server_done = False
    for _ in range(30):
        for datagram in client.datagrams_to_send(0.0):
            server.receive_from_network(datagram)
        out, server_done = _advance(server, b"127.0.0.1:40000")
        if out:
            client.receive_datagram(out, 0.0)
        while (event := client.next_event()) is not None:
            events.append(event)
        if server_done and any(isinstance(e, HandshakeCompleted) for e in events):
            break
    assert server_done
    done = next(e for e in events if isinstance(e, HandshakeCompleted))
    assert done.cipher_suite == SUITES[name][1]
    assert done.extended_master_secret  # mbedtls 2.28 negotiates RFC 7627
    if name.startswith("ecdhe"):
        assert isinstance(done.peer_identity, CertificateIdentity)
        assert done.peer_identity.common_name == "server.example"
        assert server.getpeercert() is not None  # mbedtls saw our client certificate
    client.send(b"ping from lwm2m")
    for datagram in client.datagrams_to_send(0.0):
        server.receive_from_network(datagram)
    assert server.read(1024) == b"ping from lwm2m"
    server.write(b"pong from mbedtls")
    client.receive_datagram(_take(server), 0.0)
    assert client.next_event() == ApplicationData(b"pong from mbedtls")


@pytest.mark.parametrize("name", list(SUITES))
def test_mbedtls_client_with_our_server(name: str) -> None:
    if name.startswith("psk"):
        server = dtls_server()
    else:
        server = dtls_server(x509_server_credentials(pki()))
    client = mbedtls_tls.ClientContext(_mbedtls_configuration(name, server=False)).wrap_buffers(
        "server.example"
    )
    address = ("127.0.0.1", 40001)
    events: list[object] = []
    client_done = False
    for _ in range(30):
        out, client_done = _advance(client)
        if out:
            server.receive_datagram(out, address, 0.0)
        for datagram, to in server.datagrams_to_send(0.0):
            assert to == address
            client.receive_from_network(datagram)
        while (event := server.next_event()) is not None:
            events.append(event.event)
        if client_done and any(isinstance(e, HandshakeCompleted) for e in events):
            break
    assert client_done
    done = next(e for e in events if isinstance(e, HandshakeCompleted))
    assert done.cipher_suite == SUITES[name][1]
    if name.startswith("psk"):
        assert done.peer_identity == PskIdentity(PSK_IDENTITY)
    else:
        assert isinstance(done.peer_identity, CertificateIdentity)
        assert done.peer_identity.common_name == "urn:imei:490154203237518"
    client.write(b"hello from mbedtls")
    server.receive_datagram(_take(client), address, 0.0)
    event = server.next_event()
    assert event is not None
    assert event.event == ApplicationData(b"hello from mbedtls")
    server.send(address, b"hello from lwm2m")
    for datagram, _ in server.datagrams_to_send(0.0):
        client.receive_from_network(datagram)
    assert client.read(1024) == b"hello from lwm2m"
