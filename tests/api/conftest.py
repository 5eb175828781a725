"""Fixtures of the REST API tests: a real LwM2M server and a real client on loopback, and the
app driven in-process through ``httpx.ASGITransport``.

Every wait is bounded by :data:`TIMEOUT` and waits on an event; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest

from lwm2m.api import create_app
from lwm2m.client import ClientConfig, SimpleInstance, SimpleObject, parse_config
from lwm2m.client.arguments import ExecuteArguments
from lwm2m.client.objects import Device, ObjectHandler
from lwm2m.io.lwm2m_client import LwM2MClient
from lwm2m.io.lwm2m_server import LwM2MServer, Subscription
from lwm2m.model.ddf import parse_ddf
from lwm2m.model.registry import ModelRegistry, default_registry
from lwm2m.server.events import Registered, ServerEvent
from lwm2m.store.base import SecurityStore

JSON = {"Content-Type": "application/json"}
"""The header every change to the API needs (lwm2m.api.guard); harmless on the reads."""

TIMEOUT = 5.0
"""Bound on every wait."""

ENDPOINT = "urn:dev:os:api"

TEMPERATURE_DDF = b"""<?xml version="1.0" encoding="UTF-8"?>
<LWM2M>
  <Object ObjectType="MODefinition">
    <Name>Temperature</Name><Description1>A test object.</Description1>
    <ObjectID>3303</ObjectID><ObjectURN>urn:oma:lwm2m:ext:3303</ObjectURN>
    <LWM2MVersion>1.0</LWM2MVersion><ObjectVersion>1.0</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="5700"><Name>Sensor Value</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory>
        <Type>Float</Type><RangeEnumeration></RangeEnumeration><Units>Cel</Units>
        <Description>The measured value.</Description></Item>
      <Item ID="5701"><Name>Sensor Units</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>String</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>Units.</Description></Item>
      <Item ID="5605"><Name>Reset</Name><Operations>E</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type></Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>Reset.</Description></Item>
      <Item ID="5750"><Name>Application Type</Name><Operations>RW</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>String</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>What the sensor measures.</Description></Item>
    </Resources>
  </Object>
</LWM2M>
"""

(TEMPERATURE,) = parse_ddf(TEMPERATURE_DDF, "temperature.xml")


def registry() -> ModelRegistry:
    model = default_registry().copy()
    model.add(TEMPERATURE)
    return model


class Thermometer(SimpleObject):
    """/3303 with instance 0; Execute of 5605 records its arguments in :attr:`executed`."""

    def __init__(self) -> None:
        self.executed: list[ExecuteArguments] = []
        super().__init__(TEMPERATURE, factory=self._new_instance)
        self.add_instance(0, self._new_instance())
        self.instance(0).set(5700, 21.5)
        self.instance(0).set(5701, "Cel")

    def _new_instance(self) -> SimpleInstance:
        return SimpleInstance(on_execute={5605: self.executed.append})


async def bounded(awaitable: Any, within: float = TIMEOUT) -> Any:
    async with asyncio.timeout(within):
        return await awaitable


class Stack:
    """A started server, its event subscription, the clients a test starts, and the app."""

    def __init__(self, server: LwM2MServer) -> None:
        self.server = server
        self.events: Subscription[ServerEvent] = server.subscribe()
        self.clients: list[LwM2MClient] = []

    def config(self, endpoint: str = ENDPOINT, **extra: Any) -> ClientConfig:
        host, port = self.server.local_address
        account = {
            "uri": f"coap://{host}:{port}",
            "short_server_id": 101,
            "lifetime": 300,
            "mute_send": False,
            **extra.pop("account", {}),
        }
        data: dict[str, Any] = {
            "endpoint": endpoint,
            "bind": "127.0.0.1:0",
            "device": {"manufacturer": "ACME", "model_number": "API", "serial_number": "42"},
            "servers": [account],
            **extra,
        }
        return parse_config(data)

    async def start_client(
        self,
        config: ClientConfig | None = None,
        objects: Iterable[ObjectHandler] = (),
        *,
        battery: int = 100,
        **options: Any,
    ) -> LwM2MClient:
        """Start a client (``options`` go to :class:`LwM2MClient`) and return once both sides
        consider it registered."""
        config = config if config is not None else self.config()
        client = LwM2MClient(config, objects, **options)
        device = client.objects[3]
        assert isinstance(device, Device)
        device.set(9, battery)
        self.clients.append(client)
        async with asyncio.timeout(TIMEOUT):
            await client.start()
            await self.events.wait_for(
                Registered, lambda e: e.registration.endpoint == config.endpoint
            )
            await client.wait_registered()
        return client

    def http(
        self, security_store: SecurityStore | None = None, **options: Any
    ) -> httpx.AsyncClient:
        """An HTTP client of a new app over this server (in-process, no socket)."""
        app = create_app(self.server, security_store=security_store, **options)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=JSON
        )

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.stop(grace=1.0)
        self.events.close()


async def start_server(**kwargs: Any) -> LwM2MServer:
    kwargs.setdefault("registry", registry())
    kwargs.setdefault("expiry_interval", None)
    server = LwM2MServer(**kwargs)
    await server.start(("127.0.0.1", 0))
    return server


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    server = await start_server()
    stack = Stack(server)
    try:
        yield stack
    finally:
        await stack.close()
        await server.stop()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The app over :func:`stack`'s server, with a client registered (and a Thermometer)."""
    await stack.start_client(objects=[Thermometer()])
    async with stack.http() as http:
        yield http
