"""The fleet simulator over DTLS-PSK (``coaps://``): every device has its own random PSK with its
endpoint as identity; the server learns them from :meth:`Fleet.security_entries` through its
security store, registers every device over DTLS and refuses a device whose key it lacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from lwm2m.io.lwm2m_server import LwM2MServer, dtls_layer_from_store
from lwm2m.sim import DeviceState, Fleet, FleetConfig, FleetError
from lwm2m.store.memory import MemorySecurityStore

from .test_fleet import FAST, TIMEOUT


@pytest.fixture
async def dtls_server() -> AsyncIterator[tuple[LwM2MServer, MemorySecurityStore]]:
    store = MemorySecurityStore()
    server = LwM2MServer(
        expiry_interval=None, security_store=store, security=dtls_layer_from_store(store)
    )
    await server.start(("127.0.0.1", 0))
    try:
        yield server, store
    finally:
        await server.stop()


def coaps(server: LwM2MServer) -> str:
    host, port = server.local_address[:2]
    return f"coaps://{host}:{port}"


async def test_a_psk_fleet_registers_over_dtls(
    dtls_server: tuple[LwM2MServer, MemorySecurityStore],
) -> None:
    server, store = dtls_server
    fleet = Fleet(FleetConfig(coaps(server), count=8, rate=500.0, coap=FAST))
    entries = fleet.security_entries()
    assert [e.endpoint for e in entries] == [fleet.endpoint(i) for i in range(8)]
    assert len({d.psk for d in fleet.devices}) == 8  # a key of its own each
    assert all(len(d.psk) == 16 for d in fleet.devices)
    assert all(d.psk.hex() not in repr(d) for d in fleet.devices)
    for entry in entries[1:]:  # the first device's key is not given to the server
        await store.put(entry)
    try:
        async with asyncio.timeout(TIMEOUT):
            await fleet.start()
            stats = await fleet.wait_until(lambda s: s.registered == 7)
        assert stats.registered == 7
        assert fleet.devices[0].state is not DeviceState.REGISTERED
        registrations = await server.registrations()
        assert {r.endpoint for r in registrations} == {fleet.endpoint(i) for i in range(1, 8)}
        for registration in registrations:
            assert registration.identity is not None
            assert registration.identity.value == registration.endpoint  # DTLS-authenticated
        read = await asyncio.wait_for(server.read(fleet.endpoint(3), "/3/0/2"), TIMEOUT)
        assert read.content.value == fleet.endpoint(3)  # type: ignore[union-attr]
    finally:
        async with asyncio.timeout(TIMEOUT):
            await fleet.stop(grace=2.0)
    assert sum(1 for d in fleet.devices if d.state is DeviceState.DEREGISTERED) == 7


async def test_a_plain_fleet_has_no_keys_and_other_schemes_are_refused() -> None:
    fleet = Fleet(FleetConfig("coap://127.0.0.1:5683", count=2))
    assert fleet.security_entries() == []
    assert not FleetConfig("coap://127.0.0.1:5683", count=1).psk
    assert FleetConfig("coaps://127.0.0.1:5684", count=1).psk
    with pytest.raises(FleetError, match="coap:// or coaps:// \\(DTLS-PSK\\)"):
        FleetConfig("coap+tcp://127.0.0.1:5683", count=1)
