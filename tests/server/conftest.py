"""Fixtures of the server tests: a started LwM2MServer and fake clients on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from lwm2m.coap.config import CoapConfig, TransmissionParameters
from lwm2m.io.lwm2m_server import LwM2MServer

from .devices import FakeClient

#: CoAP timings that make a mute peer time out in a fraction of a second.
FAST_COAP = CoapConfig(
    transmission=TransmissionParameters(ack_timeout=0.05, ack_random_factor=1.0, max_retransmit=1),
    response_timeout=0.3,
)


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    lwm2m_server = LwM2MServer(expiry_interval=None)
    await lwm2m_server.start(("127.0.0.1", 0))
    try:
        yield lwm2m_server
    finally:
        await lwm2m_server.stop()


@pytest.fixture
async def client() -> AsyncIterator[FakeClient]:
    fake = FakeClient("dev1")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def registered(server: LwM2MServer, client: FakeClient) -> FakeClient:
    """``client`` registered with ``server``."""
    async with asyncio.timeout(5):
        response = await client.register(server.local_address)
    assert response.code == 0x41
    return client


@pytest.fixture
def aiocoap_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiocoap binds with SO_REUSEPORT unless told not to (dependency-notes §1.1)."""
    monkeypatch.setenv("AIOCOAP_REUSE_PORT", "0")
