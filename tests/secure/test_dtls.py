"""Secure Component handles drive real DTLS 1.2 handshakes (the credential seam of the engine):
PSK with the master secret derived in the component (both roles), and raw public keys with
ECDSA signatures made in the component. In-memory datagrams, no sockets."""

from __future__ import annotations

import os
from collections.abc import Hashable

import pytest

from lwm2m.dtls import (
    ApplicationData,
    DtlsConfiguration,
    DtlsConnection,
    DtlsCredentials,
    DtlsEvent,
    DtlsServer,
    HandshakeCompleted,
    RawPublicKeyVerifier,
    SoftwarePsk,
    SoftwareSigningKey,
)
from lwm2m.dtls.constants import CipherSuite

from .conftest import Backend

ADDRESS: Hashable = ("192.0.2.1", 5684)


def handshake(
    client: DtlsConnection, server: DtlsServer
) -> tuple[list[DtlsEvent], list[DtlsEvent]]:
    now = 0.0
    client.connect(now)
    client_events: list[DtlsEvent] = []
    server_events: list[DtlsEvent] = []
    for _ in range(100):
        moved = False
        for data in client.datagrams_to_send(now):
            server.receive_datagram(data, ADDRESS, now)
            moved = True
        for data, _address in server.datagrams_to_send(now):
            client.receive_datagram(data, now)
            moved = True
        while (event := client.next_event()) is not None:
            client_events.append(event)
        while (server_event := server.next_event()) is not None:
            server_events.append(server_event.event)  # type: ignore[arg-type]
        if not moved:
            break
    return client_events, server_events


def completed(events: list[DtlsEvent]) -> HandshakeCompleted:
    done = [e for e in events if isinstance(e, HandshakeCompleted)]
    assert done, events
    return done[0]


@pytest.mark.parametrize(
    "suite", [CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256]
)
@pytest.mark.parametrize("extended", [True, False])
def test_psk_handshake_both_roles(backend: Backend, suite: int, extended: bool) -> None:
    psk = os.urandom(16)
    component = backend.open()
    client_psk = component.import_psk(b"urn:imei:1", psk, label="client")
    # The server side: the component itself is the PSK store (lookup by identity).
    server = DtlsServer(
        configuration=DtlsConfiguration(
            is_client=False, cipher_suites=(suite,), require_extended_master_secret=extended
        ),
        credentials=DtlsCredentials(psk_store=component),
    )
    client = DtlsConnection(
        configuration=DtlsConfiguration(cipher_suites=(suite,)),
        credentials=DtlsCredentials(psk=client_psk),
    )
    client_events, server_events = handshake(client, server)
    assert completed(client_events).cipher_suite == suite
    assert completed(server_events).extended_master_secret
    client.send(b"ping")
    for data in client.datagrams_to_send(0.0):
        server.receive_datagram(data, ADDRESS, 0.0)
    received = [e.event for e in iter(server.next_event, None)]
    assert any(isinstance(e, ApplicationData) and e.data == b"ping" for e in received)


def test_psk_mismatch_fails(backend: Backend) -> None:
    component = backend.open()
    server = DtlsServer(
        configuration=DtlsConfiguration(is_client=False),
        credentials=DtlsCredentials(psk_store=component),
    )
    component.import_psk(b"urn:imei:1", os.urandom(16))
    client = DtlsConnection(
        configuration=DtlsConfiguration(cipher_suites=(CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,)),
        credentials=DtlsCredentials(psk=SoftwarePsk(b"urn:imei:1", os.urandom(16))),
    )
    client_events, server_events = handshake(client, server)
    assert not any(isinstance(e, HandshakeCompleted) for e in client_events + server_events)


def test_raw_public_key_handshake(backend: Backend) -> None:
    component = backend.open()
    client_key = component.generate_key("rpk")
    server_key = SoftwareSigningKey.generate()
    server = DtlsServer(
        configuration=DtlsConfiguration(
            is_client=False, cipher_suites=(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,)
        ),
        credentials=DtlsCredentials(
            signing_key=server_key, peer_verifier=RawPublicKeyVerifier([client_key.public_key()])
        ),
    )
    client = DtlsConnection(
        configuration=DtlsConfiguration(
            cipher_suites=(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,)
        ),
        credentials=DtlsCredentials(
            signing_key=client_key, peer_verifier=RawPublicKeyVerifier([server_key.public_key()])
        ),
    )
    client_events, server_events = handshake(client, server)
    completed(client_events)
    assert completed(server_events).peer_identity is not None
