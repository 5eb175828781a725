"""Bootstrap from Smartcard end to end (SCS-10; LwM2M-TS-Core §5.2.3.2, Appendix G): pcscd, the
virtual UICC (VSE) on vpcd, our LwM2M server over DTLS-PSK and a client started with nothing but
``pcsc:`` and an endpoint name, on loopback.

The card holds EF LwM2M_Bootstrap (built from a TOML description, as ``lwm2m sc
write-bootstrap`` does) whose PSK account refers to the card's issuer PSK container
(``sc-ref:psk``): the PSK is used through the component's PskHandle and never leaves the card.

pcscd, vpcd or pyscard missing: skipped, and failed under CI=true (``vse.pcsc_env``).
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from lwm2m.cli.vse import nodes_from_description
from lwm2m.client import ClientConfig
from lwm2m.client.events import BootstrapFinished, ClientEvent, ObjectEvent
from lwm2m.client.smartcard import SmartcardApplied, SmartcardRemoved, SmartcardReplaced
from lwm2m.dtls import DtlsCredentials
from lwm2m.io.coaps import DtlsSecurityLayer
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.io.smartcard import open_smartcard_client
from lwm2m.secure.pcsc.bootstrap_file import build_bootstrap_file
from lwm2m.server.events import Registered
from secure.conftest import reference_master_secret
from secure.memscan import scan_for
from vse.pcsc_env import (  # the fixtures start pcscd for the session
    READER_0,
    RunningVse,
    pcsc_env_dir,
    pcscd,
    script,
    start_vse,
)

from .conftest import TIMEOUT, registry

ENDPOINT = "urn:dev:os:smartcard-e2e"
IDENTITY = ENDPOINT.encode()
PORT = 35963
__all__ = ["pcsc_env_dir", "pcscd"]
URI = f"pcsc:reader={READER_0.replace(' ', '%20')};timeout=5"

DESCRIPTION = """
layout = "1.1"

[[security]]
uri = "coaps://127.0.0.1:{port}"
short_server_id = 101
mode = "psk"
psk_identity = "{identity}"
psk_key = "sc-ref:psk"

[[server]]
short_server_id = 101
lifetime = {lifetime}
binding = "U"
"""


def card_file(port: int, lifetime: int = 300) -> bytes:
    text = DESCRIPTION.format(port=port, identity=ENDPOINT, lifetime=lifetime)
    layout, objects = nodes_from_description(tomllib.loads(text))
    return build_bootstrap_file(objects, layout=layout)


def write_card(path: Path, bootstrap: bytes, mask: bytes, masked: bytes) -> None:
    """Personalise the card: the issuer PSK container ``psk`` (identity = the endpoint name)
    and EF LwM2M_Bootstrap. Only this function's frame ever holds the PSK in clear."""
    from lwm2m.vse.state import VseState, save_state

    state = VseState.default()
    state.iot_safe.secrets = [
        {
            "id": "20",
            "label": "psk",
            "value": bytes(a ^ b for a, b in zip(mask, masked, strict=True)).hex(),
        }
    ]
    state.iot_safe.files[0]["data"] = IDENTITY.hex()
    state.pkcs15.bootstrap = bootstrap.hex()
    save_state(state, path)


class MaskedPsk:
    """The server's side of the PSK, kept masked: the clear PSK exists only while a handshake
    derives its master secret (the memory scan must not find the server's copy)."""

    label = "server"
    key_log_permitted = False

    def __init__(self, mask: bytes, masked: bytes) -> None:
        self.identity = IDENTITY
        self._mask, self._masked = mask, masked

    def derive_master_secret(self, label: bytes, seed: bytes) -> bytes:
        return reference_master_secret(
            bytes(a ^ b for a, b in zip(self._mask, self._masked, strict=True)), label, seed
        )


class MaskedStore:
    def __init__(self, psk: MaskedPsk) -> None:
        self.psk = psk

    def lookup(self, identity: bytes) -> MaskedPsk | None:
        return self.psk if identity == IDENTITY else None


@pytest.fixture
def masked_psk() -> tuple[bytes, bytes]:
    mask = os.urandom(16)
    return mask, bytes(a ^ b for a, b in zip(mask, os.urandom(16), strict=True))


@pytest.fixture
async def dtls_server(masked_psk: tuple[bytes, bytes]) -> AsyncIterator[LwM2MServer]:
    layer = DtlsSecurityLayer(
        server_credentials=DtlsCredentials(psk_store=MaskedStore(MaskedPsk(*masked_psk)))
    )
    server = LwM2MServer(registry=registry(), expiry_interval=None, security=layer)
    await server.start(("127.0.0.1", 0))
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def card_in_thread(
    pcscd: None, tmp_path: Path, dtls_server: LwM2MServer, masked_psk: tuple[bytes, bytes]
) -> Iterator[RunningVse]:
    """The VSE served from a thread of this process (so a test can update its file)."""
    path = tmp_path / "card.json"
    write_card(path, card_file(dtls_server.local_address[1]), *masked_psk)
    card = start_vse(path, PORT)
    try:
        yield card
    finally:
        card.stop()


def config() -> ClientConfig:
    return ClientConfig(endpoint=ENDPOINT, bind=("127.0.0.1", 0))


def smartcard_events(history: Any) -> list[Any]:
    return [e.event for e in history if isinstance(e, ObjectEvent)]


async def next_event(client: Any, kind: type) -> Any:
    async with asyncio.timeout(TIMEOUT):
        event: ClientEvent = await client.wait_for(
            lambda e: isinstance(e, ObjectEvent) and isinstance(e.event, kind)
        )
    assert isinstance(event, ObjectEvent)
    return event.event


async def test_boots_from_the_card_over_dtls_psk_without_the_psk_in_memory(
    pcscd: None,
    pcsc_env_dir: Path,
    tmp_path: Path,
    dtls_server: LwM2MServer,
    masked_psk: tuple[bytes, bytes],
) -> None:
    """The card in its own process (a card served from a thread of this process would hold the
    PSK here): the client boots from it, registers over DTLS-PSK, and no copy of the PSK is
    reachable in this process."""
    path = tmp_path / "card.json"
    write_card(path, card_file(dtls_server.local_address[1]), *masked_psk)
    script("start-vse", "--port", str(PORT), "--state", str(path), env_dir=pcsc_env_dir)
    events = dtls_server.subscribe()
    try:
        client, monitor = await open_smartcard_client(config(), URI)
        try:
            async with asyncio.timeout(TIMEOUT):
                await client.start()
                registered = await events.wait_for(Registered)
                await client.wait_registered()
            registration = registered.registration
            assert registration.endpoint == ENDPOINT
            assert registration.identity is not None
            assert registration.identity.value == ENDPOINT  # authenticated with the card's PSK
            assert registration.lifetime == 300
            assert BootstrapFinished("smartcard") in client.history
            [applied] = smartcard_events(client.history)
            assert isinstance(applied, SmartcardApplied)
            assert applied.short_server_ids == (101,)
            # /0/0/5 is a reference to the card's container, in the card's instance store
            assert monitor.store is not None
            instance = monitor.store.get(0, 0)
            assert instance is not None
            assert instance.resources[5].value == b"sc-ref:psk"  # type: ignore[union-attr]
            # an Update re-checks the card: unchanged
            async with asyncio.timeout(TIMEOUT):
                client.update()
                await client.wait_for(lambda e: type(e).__name__ == "RegistrationUpdated")
            assert monitor.outcomes[-1].value == "unchanged"
            assert scan_for(*masked_psk) == []
        finally:
            await client.stop(grace=2.0)
    finally:
        events.close()
        script("stop-vse", "--port", str(PORT), env_dir=pcsc_env_dir)


async def test_card_change_and_removal_follow_at_the_next_update(
    card_in_thread: RunningVse, dtls_server: LwM2MServer
) -> None:
    events = dtls_server.subscribe()
    client, monitor = await open_smartcard_client(config(), URI)
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.start()
            first = await events.wait_for(Registered)
            await client.wait_registered()
        assert first.registration.lifetime == 300

        # the issuer updates EF LwM2M_Bootstrap over the air (the VSE's file, in place)
        port = dtls_server.local_address[1]
        card_in_thread.server.card.adf.children[0x6432].data = card_file(port, lifetime=120)
        client.update()
        replaced = await next_event(client, SmartcardReplaced)
        assert replaced.previous_digest != replaced.digest
        async with asyncio.timeout(TIMEOUT):
            second = await events.wait_for(Registered)
            await client.wait_registered()
        assert second.registration.lifetime == 120  # the new configuration, re-registered
        assert client.engine.registrations[101].account.lifetime == 120

        # the card is pulled out: the next Update deletes the derived configuration
        card_in_thread.stop()
        card_in_thread.wait_absent()
        client.update()
        removed = await next_event(client, SmartcardRemoved)
        assert removed.short_server_ids == (101,)
        assert client.engine.registrations == {}
        assert client.objects.instance_ids(0) == []
        assert client.objects.instance_ids(1) == []
        # every Register and Update to the card's server re-checked the card
        outcomes = [o.value for o in monitor.outcomes]
        assert outcomes == ["unchanged", "changed", "unchanged", "removed"]
    finally:
        await client.stop(grace=1.0)
        events.close()
