"""End-to-end fixtures: our LwM2M server, bootstrap server and client on loopback.

Everything waits on events with ``asyncio.timeout`` (:data:`TIMEOUT`); nothing sleeps to let a
race settle. A test's client is started with :meth:`Stack.start_client`, which returns once
*both* sides consider it registered: the server publishes ``Registered`` before its 2.01 reaches
the client, and a request sent in that window can overtake the registration at the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import pytest

from lwm2m.bootstrap.config import BootstrapConfig, SecurityInstance, ServerInstance
from lwm2m.client import ClientConfig, SimpleInstance, SimpleObject, parse_config
from lwm2m.client.arguments import ExecuteArguments
from lwm2m.client.objects import Device, ObjectHandler
from lwm2m.io.lwm2m_bootstrap import BootstrapServer
from lwm2m.io.lwm2m_client import LwM2MClient
from lwm2m.io.lwm2m_server import LwM2MServer, Subscription
from lwm2m.model import ObjectDefinition
from lwm2m.model.ddf import parse_ddf
from lwm2m.model.registry import ModelRegistry, default_registry
from lwm2m.server.events import Registered, ServerEvent
from lwm2m.server.registration import ServerConfig
from lwm2m.testing import require_component

TIMEOUT = 5.0
"""Bound on every wait of the end-to-end tests."""

ENDPOINT = "urn:dev:os:e2e"
SSID = 101

# An application object (after the IPSO Temperature object 3303), written as a DDF: created and
# deleted by the server, with an executable resource that takes arguments.
TEMPERATURE_DDF = b"""<?xml version="1.0" encoding="UTF-8"?>
<LWM2M>
  <Object ObjectType="MODefinition">
    <Name>Temperature</Name>
    <Description1>An e2e test object.</Description1>
    <ObjectID>3303</ObjectID>
    <ObjectURN>urn:oma:lwm2m:ext:3303</ObjectURN>
    <LWM2MVersion>1.0</LWM2MVersion>
    <ObjectVersion>1.0</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances>
    <Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="5700"><Name>Sensor Value</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory>
        <Type>Float</Type><RangeEnumeration></RangeEnumeration><Units>Cel</Units>
        <Description>The measured value.</Description></Item>
      <Item ID="5701"><Name>Sensor Units</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>String</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>Units.</Description></Item>
      <Item ID="5605"><Name>Reset Min and Max Measured Values</Name><Operations>E</Operations>
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
    """The bundled definitions plus :data:`TEMPERATURE`."""
    model = default_registry().copy()
    model.add(TEMPERATURE)
    return model


class Thermometer(SimpleObject):
    """/3303 with one instance; Execute of 5605 records its arguments in :attr:`executed`."""

    def __init__(self, definition: ObjectDefinition = TEMPERATURE) -> None:
        self.executed: list[ExecuteArguments] = []
        super().__init__(definition, factory=self._new_instance)
        self.add_instance(0, self._new_instance())
        inst = self.instance(0)
        inst.set(5700, 21.5)
        inst.set(5701, "Cel")

    def _new_instance(self) -> SimpleInstance:
        return SimpleInstance(on_execute={5605: self.executed.append})


def client_config(
    endpoint: str = ENDPOINT,
    servers: Iterable[Mapping[str, Any]] = (),
    **extra: Any,
) -> ClientConfig:
    data: dict[str, Any] = {
        "endpoint": endpoint,
        "bind": "127.0.0.1:0",
        "device": {"manufacturer": "ACME", "model_number": "E2E", "serial_number": "42"},
    }
    servers = list(servers)
    if servers:
        data["servers"] = servers
    data.update(extra)
    return parse_config(data)


def server_account(server: LwM2MServer, ssid: int = SSID, **extra: Any) -> dict[str, Any]:
    host, port = server.local_address
    table: dict[str, Any] = {
        "uri": f"coap://{host}:{port}",
        "short_server_id": ssid,
        "lifetime": 300,
        "mute_send": False,
    }
    table.update(extra)
    return table


def bootstrap_config(
    server: LwM2MServer, *, lifetime: int = 300, ssid: int = SSID
) -> BootstrapConfig:
    host, port = server.local_address
    return BootstrapConfig(
        security=(SecurityInstance(1, f"coap://{host}:{port}", short_server_id=ssid),),
        servers=(ServerInstance(0, ssid, lifetime=lifetime, mute_send=False),),
    )


require = require_component


def free_udp_port() -> int:
    """A free loopback UDP port, for a peer program that must be given a fixed port (no port
    0). It is bound again at once by that program."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def bounded(awaitable: Any, within: float = TIMEOUT) -> Any:
    """``await awaitable``, bounded by ``within`` seconds."""
    async with asyncio.timeout(within):
        return await awaitable


class Stack:
    """A started server with an event subscription, and the clients a test starts."""

    def __init__(self, server: LwM2MServer) -> None:
        self.server = server
        self.events: Subscription[ServerEvent] = server.subscribe()
        self.clients: list[LwM2MClient] = []

    def config(self, endpoint: str = ENDPOINT, **extra: Any) -> ClientConfig:
        """A client with one account on this server (``extra``: top-level config keys)."""
        account = extra.pop("account", {})
        return client_config(endpoint, [server_account(self.server, **account)], **extra)

    async def start_client(
        self,
        config: ClientConfig | None = None,
        objects: Iterable[ObjectHandler] = (),
        *,
        battery: int | None = 100,
        **kwargs: Any,
    ) -> LwM2MClient:
        """Start a client (its Device with a ``battery`` level, /3/0/9) and return once both
        sides consider it registered."""
        config = config if config is not None else self.config()
        client = LwM2MClient(config, objects, **kwargs)
        if battery is not None:
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

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.stop(grace=1.0)
        self.events.close()


async def start_server(port: int = 0, **kwargs: Any) -> LwM2MServer:
    """A started server on loopback (``port`` 0: any free port)."""
    kwargs.setdefault("registry", registry())
    kwargs.setdefault("expiry_interval", None)
    server = LwM2MServer(**kwargs)
    await server.start(("127.0.0.1", port))
    return server


@contextlib.asynccontextmanager
async def running_stack(**server: Any) -> AsyncIterator[Stack]:
    """A started server (``start_server(**server)``) and its stack, both stopped at the end."""
    started = await start_server(**server)
    stack = Stack(started)
    try:
        yield stack
    finally:
        await stack.close()
        await started.stop()


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with running_stack() as stack:
        yield stack


@pytest.fixture
async def queue_stack() -> AsyncIterator[Stack]:
    """A server whose queue-mode clients sleep 0.3 s after their last message."""
    async with running_stack(config=ServerConfig(awake_time=0.3)) as stack:
        yield stack


@contextlib.asynccontextmanager
async def running_bootstrap_server(
    configs: dict[str, BootstrapConfig],
) -> AsyncIterator[BootstrapServer]:
    bootstrap = BootstrapServer(configs=configs, registry=registry())
    await bootstrap.start(("127.0.0.1", 0))
    try:
        yield bootstrap
    finally:
        await bootstrap.stop()
