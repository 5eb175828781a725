"""Handshakes over a lossy link on a fake clock (RFC 6347 §4.2.4): every datagram of every flight
is in turn dropped, duplicated and delayed past the next one; the handshake still completes."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache

import pytest

from lwm2m.dtls import DtlsConfiguration, DtlsConnection, DtlsServer, DtlsSession
from lwm2m.dtls.constants import CipherSuite

from .helpers import (
    Datagram,
    Link,
    dtls_server,
    make_pki,
    psk_client,
    rpk_pair,
    x509_client_credentials,
    x509_server_credentials,
)

Scenario = Callable[[], tuple[DtlsConnection, DtlsServer]]


@cache
def _pki():  # type: ignore[no-untyped-def]
    return make_pki(intermediate=True)


def psk_scenario() -> tuple[DtlsConnection, DtlsServer]:
    return psk_client(), dtls_server()


def psk_cbc_scenario() -> tuple[DtlsConnection, DtlsServer]:
    return psk_client(cipher_suites=(CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256,)), dtls_server()


@cache
def _resumable() -> tuple[DtlsServer, DtlsSession]:
    server = dtls_server()
    link = Link(psk_client(), server, address=("198.51.100.1", 1))
    link.run()
    done = link.completed(link.client_events)
    assert done is not None
    assert done.session is not None
    return server, done.session


def resumption_scenario() -> tuple[DtlsConnection, DtlsServer]:
    server, session = _resumable()
    return psk_client(session=session), server


def x509_scenario() -> tuple[DtlsConnection, DtlsServer]:
    # A small datagram size fragments the certificate flights over several datagrams.
    pki = _pki()
    client = DtlsConnection(
        configuration=DtlsConfiguration(
            cipher_suites=(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,), max_datagram_size=380
        ),
        credentials=x509_client_credentials(pki, server_name="server.example"),
    )
    return client, dtls_server(x509_server_credentials(pki), max_datagram_size=380)


def rpk_scenario() -> tuple[DtlsConnection, DtlsServer]:
    client_credentials, server_credentials = rpk_pair()
    client = DtlsConnection(
        configuration=DtlsConfiguration(
            cipher_suites=(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,)
        ),
        credentials=client_credentials,
    )
    return client, dtls_server(server_credentials)


SCENARIOS: dict[str, Scenario] = {
    "psk-ccm8": psk_scenario,
    "psk-cbc": psk_cbc_scenario,
    "psk-resumption": resumption_scenario,
    "ecdhe-x509-fragmented": x509_scenario,
    "ecdhe-rpk": rpk_scenario,
}


def _run(scenario: Scenario, **link_options: object) -> Link:
    client, server = scenario()
    link = Link(client, server, **link_options)  # type: ignore[arg-type]
    link.run()
    return link


def _assert_completed(link: Link, what: str) -> None:
    assert link.completed(link.client_events) is not None, what
    assert link.completed(link.server_events) is not None, what
    assert link.exchange(b"after " + what.encode()) == (
        b"after " + what.encode(),
        (b"after " + what.encode())[::-1],
    ), what


@pytest.mark.parametrize("mutation", ["drop", "duplicate", "reorder"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_handshake_datagram_dropped_duplicated_or_reordered(name: str, mutation: str) -> None:
    scenario = SCENARIOS[name]
    clean = _run(scenario)
    _assert_completed(clean, "clean run")
    handshake_datagrams = len(clean.sent) - 2  # minus the two application-data datagrams
    assert handshake_datagrams >= 3
    if name == "ecdhe-x509-fragmented":
        assert handshake_datagrams >= 8  # the flights really are split over datagrams
    for index in range(handshake_datagrams):

        def mutate(datagram: Datagram, index: int = index) -> list[Datagram]:
            if datagram.index != index:
                return [datagram]
            return [] if mutation == "drop" else [datagram, datagram]

        if mutation == "reorder":
            link = _run(scenario, hold=index)
        else:
            link = _run(scenario, mutate=mutate)
        _assert_completed(link, f"{name}: datagram {index} {mutation}")


@pytest.mark.parametrize("name", ["psk-ccm8", "ecdhe-x509-fragmented"])
@pytest.mark.parametrize("seed", range(8))
def test_random_loss_duplication_and_reordering(name: str, seed: int) -> None:
    rng = random.Random(seed)
    pending: list[Datagram] = []

    def chaos(datagram: Datagram) -> list[Datagram]:
        roll = rng.random()
        if roll < 0.25:
            return []
        if roll < 0.35:
            return [datagram, datagram]
        if roll < 0.45:
            pending.append(datagram)  # released with the next datagram: reordered
            return []
        released = [*pending, datagram] if rng.random() < 0.5 else [datagram, *pending]
        pending.clear()
        return released

    link = _run(SCENARIOS[name], mutate=chaos)
    link.mutate = None  # application data after the handshake travels cleanly
    _assert_completed(link, f"{name} seed {seed}")
