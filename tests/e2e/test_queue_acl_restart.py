"""Queue mode, two DM servers with access control, and a server restart with the SQLite store,
end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path as FsPath

import pytest

from lwm2m.client import events as ce
from lwm2m.client.objects import Device
from lwm2m.coap.message import Message
from lwm2m.io.lwm2m_client import EventStream, LwM2MClient
from lwm2m.model import MultipleResource, Path, ResourceType, SingleResource
from lwm2m.server.errors import ErrorResponse
from lwm2m.server.events import (
    Awake,
    Deregistered,
    NotificationReceived,
    Registered,
    Sleeping,
)
from lwm2m.store import SqliteRegistrationStore

from .conftest import (
    ENDPOINT,
    TIMEOUT,
    Stack,
    bounded,
    client_config,
    server_account,
    start_server,
)

INT, STR = ResourceType.INTEGER, ResourceType.STRING


async def test_queue_mode_holds_requests_until_the_client_wakes(queue_stack: Stack) -> None:
    stack = queue_stack
    config = stack.config(queue_mode=True, awake_time=0.3)
    client = LwM2MClient(config)
    seen: list[str] = []
    handle_request = client.engine.handle_request

    def recording(message: Message, *args: object, **kwargs: object) -> Message:
        seen.append(f"request {message.path}")
        return handle_request(message, *args, **kwargs)  # type: ignore[arg-type]

    client.engine.handle_request = recording  # type: ignore[method-assign]
    stack.clients.append(client)
    client_events = client.events()  # subscribed before anything happens
    await client.start()
    registered = await bounded(stack.events.wait_for(Registered))
    assert registered.registration.queue_mode
    await bounded(client.wait_registered())
    # awake right after registering: a request goes out at once
    response = await bounded(stack.server.read(ENDPOINT, "/3/0/16"))
    assert response.content == SingleResource(16, STR, "UQ")
    # both sides fall asleep after the awake time
    await bounded(stack.events.wait_for(Sleeping))
    await bounded(_next(client_events, ce.Sleeping))
    seen.clear()
    read = asyncio.ensure_future(stack.server.read(ENDPOINT, "/3/0/0"))
    done, _ = await asyncio.wait({read}, timeout=0.3)
    assert not done, "the request should wait for the client to wake up"
    assert seen == []
    # the client wakes up (an Update): the held request is delivered
    client.update()
    await bounded(stack.events.wait_for(Awake))
    response = await bounded(read)
    assert response.content == SingleResource(0, STR, "ACME")
    assert seen == ["request /3/0/0"]


async def _next(stream: EventStream, kind: type[ce.ClientEvent]) -> ce.ClientEvent:
    async for event in stream:
        if isinstance(event, kind):
            return event
    raise AssertionError("unreachable")  # pragma: no cover - the stream never ends


async def test_two_servers_and_access_control() -> None:
    server_a = await start_server()
    server_b = await start_server()
    a, b = Stack(server_a), Stack(server_b)
    try:
        config = client_config(
            servers=[server_account(server_a, 101), server_account(server_b, 102)],
            acl=[
                # /3/0: server A may read, write and execute, server B nothing (owner A)
                {"object": 3, "instance": 0, "owner": 101, "rights": {"101": "RWE"}},
            ],
        )
        client = LwM2MClient(config)
        a.clients.append(client)
        await client.start()
        await bounded(a.events.wait_for(Registered))
        await bounded(b.events.wait_for(Registered))
        await bounded(client.wait_registered())
        # A may read /3/0; B may not: 4.01 Unauthorized (LwM2M-TS-Core §7.3.2: "Access Right
        # Permission Denied"; 4.03 is not used by an LwM2M client for access control)
        response = await bounded(server_a.read(ENDPOINT, "/3/0"))
        assert response.content is not None
        for path in ("/3/0", "/3/0/0", "/3"):
            with pytest.raises(ErrorResponse) as caught:
                await bounded(server_b.read(ENDPOINT, path))
            assert caught.value.code == 0x81, path
        with pytest.raises(ErrorResponse) as caught:
            await bounded(server_b.execute(ENDPOINT, "/3/0/4"))
        assert caught.value.code == 0x81
        # each server sees its own /1 instance only
        own = await bounded(server_b.read(ENDPOINT, "/1"))
        assert list(own.content.instances) == [1]
        # A, the owner, grants B the read right through /2
        acl = await bounded(server_a.read(ENDPOINT, "/2"))
        (acl_instance,) = acl.content.instances.values()
        await bounded(
            server_a.write(
                ENDPOINT,
                Path(2, acl_instance.id, 2),
                MultipleResource.of(2, INT, {101: 7, 102: 1}),
            )
        )
        response = await bounded(server_b.read(ENDPOINT, "/3/0/0"))
        assert response.content == SingleResource(0, STR, "ACME")
        with pytest.raises(ErrorResponse) as caught:  # read only: no Write
            await bounded(server_b.write(ENDPOINT, "/3/0/14", SingleResource(14, STR, "+01:00")))
        assert caught.value.code == 0x81
    finally:
        await a.close()
        await b.close()
        await server_a.stop()
        await server_b.stop()


async def test_restart_with_the_sqlite_store(tmp_path: FsPath) -> None:
    database = tmp_path / "registrations.db"
    store = await SqliteRegistrationStore.open(database)
    server = await start_server(store=store)
    port = server.local_address[1]
    stack = Stack(server)
    client = await stack.start_client(battery=50)
    device = client.objects[3]
    assert isinstance(device, Device)
    try:
        handle = await bounded(server.observe(ENDPOINT, "/3/0/9"))
        assert handle.active
        registration = await server.registration(ENDPOINT)
        assert registration is not None
        # stop the server (the store keeps registrations and observations) and start anew
        stack.events.close()
        await server.stop()
        await store.close()
        store = await SqliteRegistrationStore.open(database)
        server = await start_server(port, store=store)
        events = server.subscribe()
        kept = await server.registration(ENDPOINT)
        assert kept is not None
        assert kept.id == registration.id
        assert [o.token for o in await server.observations(ENDPOINT)] == [handle.token]
        # the client never noticed; its notifications reach the new server process
        device.set(9, 40)
        notification = await bounded(events.wait_for(NotificationReceived))
        assert notification.response.content == SingleResource(9, INT, 40)
        assert notification.observation.token == handle.token
        restarted = server.observation_handle(handle.token)
        assert restarted is not None
        assert (await bounded(anext(restarted))).content == SingleResource(9, INT, 40)
        # requests work as before, and the client de-registers from the new process
        response = await bounded(server.read(ENDPOINT, "/3/0/0"))
        assert response.content == SingleResource(0, STR, "ACME")
        await client.stop(grace=TIMEOUT)
        await bounded(events.wait_for(Deregistered))
    finally:
        await stack.close()
        await server.stop()
        await store.close()
