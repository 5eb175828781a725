"""LwM2M servers on the Redis store, end to end: a restart keeps registrations and observations
(the Redis twin of e2e's SQLite restart test), and a second server node sharing the Redis
answers for a client that registered at the first."""

from __future__ import annotations

from e2e.conftest import ENDPOINT, TIMEOUT, Stack, bounded, start_server
from lwm2m.client.objects import Device
from lwm2m.model import ResourceType, SingleResource
from lwm2m.server.events import Deregistered, NotificationReceived
from lwm2m.store import RedisRegistrationStore

INT, STR = ResourceType.INTEGER, ResourceType.STRING


async def test_restart_with_the_redis_store(redis_url: str) -> None:
    store = await RedisRegistrationStore.open(redis_url)
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
        # stop the server (Redis keeps registrations and observations) and start anew
        stack.events.close()
        await server.stop()
        await store.close()
        store = await RedisRegistrationStore.open(redis_url)
        server = await start_server(port, store=store)
        events = server.subscribe()
        kept = await server.registration(ENDPOINT)
        assert kept == registration
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
        assert await store.count() == 0
        assert await store.all_observations() == []
    finally:
        await stack.close()
        await server.stop()
        await store.close()


async def test_a_second_node_sees_the_registration(redis_url: str) -> None:
    store_a = await RedisRegistrationStore.open(redis_url)
    store_b = await RedisRegistrationStore.open(redis_url)
    server_a = await start_server(store=store_a)
    server_b = await start_server(store=store_b)
    stack = Stack(server_a)
    try:
        await stack.start_client()
        registration = await server_a.registration(ENDPOINT)
        assert registration is not None
        assert await server_b.registration(ENDPOINT) == registration
        handle = await bounded(server_a.observe(ENDPOINT, "/3/0/9"))
        assert [o.token for o in await server_b.observations(ENDPOINT)] == [handle.token]
    finally:
        await stack.close()
        for server in (server_a, server_b):
            await server.stop()
        await store_a.close()
        await store_b.close()
