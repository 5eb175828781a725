"""Bootstrap (client- and server-initiated) and the registration interface, end to end."""

from __future__ import annotations

import pytest

from lwm2m.bootstrap.session import BootstrapFinished, BootstrapStarted, BootstrapStep
from lwm2m.client import events as ce
from lwm2m.errors import LocalProtocolError
from lwm2m.io.lwm2m_client import LwM2MClient
from lwm2m.model import Path, ResourceType, SingleResource
from lwm2m.server.events import Deregistered, Registered, Updated
from lwm2m.server.registration import ServerConfig

from .conftest import (
    ENDPOINT,
    SSID,
    TIMEOUT,
    Stack,
    bootstrap_config,
    bounded,
    client_config,
    running_bootstrap_server,
    start_server,
)


def _bootstrap_client(bootstrap_port: int) -> LwM2MClient:
    config = client_config(bootstrap={"uri": f"coap://127.0.0.1:{bootstrap_port}"})
    return LwM2MClient(config)


async def test_client_initiated_bootstrap_then_register(stack: Stack) -> None:
    async with running_bootstrap_server({ENDPOINT: bootstrap_config(stack.server)}) as bs:
        with bs.subscribe() as session:
            client = _bootstrap_client(bs.local_address[1])
            stack.clients.append(client)
            await client.start()
            started = await bounded(session.wait_for(BootstrapStarted))
            assert started.steps == ("delete /", "write /0/1", "write /1/0", "finish")
            steps = [await bounded(session.wait_for(BootstrapStep)) for _ in started.steps]
            assert [s.dotted_code for s in steps] == ["2.02", "2.04", "2.04", "2.04"]
            await bounded(session.wait_for(BootstrapFinished))
        registered = await bounded(stack.events.wait_for(Registered))
        assert registered.registration.endpoint == ENDPOINT
        assert registered.registration.lifetime == 300
        await bounded(client.wait_registered(SSID))
        # the client kept its bootstrap account and got the DM account
        security = await stack.server.read(ENDPOINT, "/1/0/0")
        assert security.content == SingleResource(0, ResourceType.INTEGER, SSID)
        assert any(
            isinstance(e, ce.BootstrapFinished) and e.source == "server" for e in client.history
        )


async def test_server_initiated_bootstrap_through_execute_1_x_9(stack: Stack) -> None:
    configs = {ENDPOINT: bootstrap_config(stack.server, lifetime=300)}
    async with running_bootstrap_server(configs) as bs:
        client = _bootstrap_client(bs.local_address[1])
        stack.clients.append(client)
        await client.start()
        first = await bounded(stack.events.wait_for(Registered))
        await bounded(client.wait_registered(SSID))
        # the bootstrap server now has a new configuration for the endpoint
        await bs.store.put(ENDPOINT, bootstrap_config(stack.server, lifetime=77))
        with bs.subscribe() as session:
            response = await bounded(stack.server.execute(ENDPOINT, "/1/0/9"))
            assert response.dotted_code == "2.04"
            await bounded(session.wait_for(BootstrapFinished))
        # /1/0/9 starts a client-initiated bootstrap; the bootstrap server's first operation
        # (which may overtake the 2.04 of the Bootstrap-Request) does not start another one
        started = [e for e in client.history if isinstance(e, ce.BootstrapStarted)]
        assert started == [ce.BootstrapStarted(server_initiated=False)] * 2
        again = await bounded(
            stack.events.wait_for(Registered, lambda e: e.registration.lifetime == 77)
        )
        assert again.replaced is not None  # same endpoint: the old registration is replaced
        assert again.replaced.id == first.registration.id


async def test_register_update_trigger_lifetime_change_and_deregister(stack: Stack) -> None:
    client = await stack.start_client()
    registration = await stack.server.registration(ENDPOINT)
    assert registration is not None
    assert {"/3/0", "/1/0"} <= {link.uri for link in registration.objects}
    # Registration Update Trigger
    response = await bounded(stack.server.execute(ENDPOINT, "/1/0/8"))
    assert response.dotted_code == "2.04"
    updated = await bounded(stack.events.wait_for(Updated))
    assert updated.new.id == registration.id
    # a lifetime change: the client sends an Update with the new lt
    await bounded(
        stack.server.write(ENDPOINT, "/1/0/1", SingleResource(1, ResourceType.INTEGER, 120))
    )
    updated = await bounded(stack.events.wait_for(Updated, lambda e: e.new.lifetime == 120))
    assert updated.old.lifetime == 300
    # an Update the client decides on
    client.update()
    await bounded(stack.events.wait_for(Updated))
    # De-register
    await client.stop(grace=TIMEOUT)
    gone = await bounded(stack.events.wait_for(Deregistered))
    assert gone.registration.id == registration.id
    assert await stack.server.registration(ENDPOINT) is None
    assert any(isinstance(e, ce.Deregistered) for e in client.history)


async def test_a_server_of_lwm2m_1_0_only_gets_a_1_0_register() -> None:
    """Our server configured for 1.0 only refuses ``lwm2m=1.1`` with 4.12 (Core §6.2.1); the
    client registers again at once as 1.0, both sides record 1.0, and Send (a 1.1 operation)
    is not offered to that server."""
    server = await start_server(config=ServerConfig(supported_versions=frozenset({"1.0"})))
    stack = Stack(server)
    try:
        client = await stack.start_client()
        registration = await stack.server.registration(ENDPOINT)
        assert registration is not None
        assert registration.version == "1.0"
        assert registration.content_formats == ()  # no 1.1 ct attribute on the root link
        (registered,) = [e for e in client.history if isinstance(e, ce.Registered)]
        assert registered.lwm2m_version == "1.0"
        assert not [e for e in client.history if isinstance(e, ce.RegistrationFailed)]
        with pytest.raises(LocalProtocolError):
            await client.send([Path(3, 0, 9)])
    finally:
        await stack.close()
        await server.stop()
