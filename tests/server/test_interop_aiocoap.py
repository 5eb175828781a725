"""The server against aiocoap acting as a registering LwM2M client, on loopback.

aiocoap is an independent CoAP implementation: it registers, updates, de-registers and sends
from its server context's port and answers reads and observes of /3/0 there. The last test
restarts the server on a persistent SQLite store: the registration and its observation survive
and notifications made for the old process's token still arrive.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path as FilePath
from typing import Any

import pytest

from conftest import require
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.model import Path, ResourceType, SingleResource
from lwm2m.server.events import (
    Deregistered,
    NotificationReceived,
    Registered,
    SendReceived,
    Updated,
)
from lwm2m.store.sqlite import SqliteRegistrationStore

from .devices import aiocoap_device_class, device_instance

pytestmark = pytest.mark.interop

TIMEOUT = 10
INT = ResourceType.INTEGER


@pytest.fixture
async def device(aiocoap_env: None) -> AsyncIterator[Any]:
    require(importlib.util.find_spec("aiocoap") is not None, "aiocoap (pip install aiocoap)")
    dev = aiocoap_device_class()("urn:dev:aiocoap-1")
    await dev.start()
    try:
        yield dev
    finally:
        await dev.stop()


async def test_register_update_deregister(server: LwM2MServer, device: Any) -> None:
    import aiocoap

    address = server.local_address
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            response = await device.register(address)
            assert response.code == aiocoap.CREATED
            registered = await events.wait_for(Registered)
            reg = registered.registration
            assert reg.endpoint == device.name
            assert reg.address == ("127.0.0.1", device.port)
            assert reg.location == device.location
            assert reg.content_formats == (60, 110, 112, 11542)

            response = await device.update(address, "lt=900")
            assert response.code == aiocoap.CHANGED
            updated = await events.wait_for(Updated)
            assert updated.new.lifetime == 900

            response = await device.deregister(address)
            assert response.code == aiocoap.DELETED
            await events.wait_for(Deregistered)
            assert await server.registrations() == []


async def test_invalid_registers_from_aiocoap(server: LwM2MServer, device: Any) -> None:
    import aiocoap

    address = server.local_address
    async with asyncio.timeout(TIMEOUT):
        assert (await device.register(address, query="lt=60")).code == aiocoap.BAD_REQUEST
        response = await device.register(address, query=f"ep={device.name}&lwm2m=1.3")
        assert response.code == aiocoap.PRECONDITION_FAILED
        response = await device.register(address, query=f"ep={device.name}&b=X")
        assert response.code == aiocoap.BAD_REQUEST
        response = await device.register(address, links=b"</3/0/0/0/0>")
        assert response.code == aiocoap.BAD_REQUEST


async def test_read_device_object_decoded(server: LwM2MServer, device: Any) -> None:
    async with asyncio.timeout(TIMEOUT):
        await device.register(server.local_address)
        response = await server.read(device.name, "/3/0")
    assert response.content_format is ContentFormat.TLV
    assert response.content == device_instance()


async def test_observe_with_notifications(server: LwM2MServer, device: Any) -> None:
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            await device.register(server.local_address)
            handle = await server.observe(device.name, "/3/0/9")
            assert handle.response is not None
            assert handle.response.content == SingleResource(9, INT, 87)
            for level in (60, 59, 58):
                device.set_battery(level)
                event = await events.wait_for(NotificationReceived)
                assert event.response.content == SingleResource(9, INT, level)
                assert (await anext(handle)).content == SingleResource(9, INT, level)
            await handle.cancel()
            assert await server.observations(device.name) == []


async def test_send(server: LwM2MServer, device: Any) -> None:
    nodes = {Path(3, 0, 9): SingleResource(9, INT, 33)}
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            import aiocoap

            response = await device.send(server.local_address, [TimestampedNodes(1.7e9, nodes)])
            assert response.code == aiocoap.NOT_FOUND  # not registered yet
            await device.register(server.local_address)
            response = await device.send(server.local_address, [TimestampedNodes(1.7e9, nodes)])
            assert response.code == aiocoap.CHANGED
            event = await events.wait_for(SendReceived)
    assert event.content_format is ContentFormat.SENML_JSON
    assert event.groups == (TimestampedNodes(1.7e9, nodes),)


async def test_sqlite_restart_keeps_registrations_and_observations(
    device: Any, tmp_path: FilePath
) -> None:
    database = tmp_path / "server.sqlite"
    store = await SqliteRegistrationStore.open(database)
    first = LwM2MServer(store=store, expiry_interval=None)
    await first.start(("127.0.0.1", 0))
    address = first.local_address
    try:
        async with asyncio.timeout(TIMEOUT):
            await device.register(address)
            handle = await first.observe(device.name, "/3/0/9")
            registration = await first.registration(device.name)
    finally:
        await first.stop()
        await store.close()
    del first, store  # nothing of the first run survives but the file

    store = await SqliteRegistrationStore.open(database)
    second = LwM2MServer(store=store, expiry_interval=None)
    await second.start(address)
    try:
        assert await second.registration(device.name) == registration
        (observation,) = await second.observations(device.name)
        assert observation == handle.observation
        with second.subscribe() as events:
            async with asyncio.timeout(TIMEOUT):
                device.set_battery(12)
                event = await events.wait_for(NotificationReceived)
                assert event.observation.token == handle.token
                assert event.response.content == SingleResource(9, INT, 12)
                assert event.registration == registration
                # the restarted server also reaches the client
                response = await second.read(device.name, "/3/0")
                assert response.content == device_instance(12)
    finally:
        await second.stop()
        await store.close()
