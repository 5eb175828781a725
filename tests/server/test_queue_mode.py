"""Queue mode in the server service (LwM2M-TS-Transport §6.5): awake / sleeping events, requests
held while the client sleeps and released once it is heard from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from lwm2m.coap.numbers import Code
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.model import Path, ResourceType, SingleResource
from lwm2m.operations.requests import Read
from lwm2m.server.errors import ClientSleeping, NotRegistered, RequestCancelled, RequestTimeout
from lwm2m.server.events import Awake, Registered, Sleeping
from lwm2m.server.registration import ServerConfig

from .conftest import FAST_COAP
from .devices import FakeClient

TIMEOUT = 5
INT = ResourceType.INTEGER


async def queue_server(**config: object) -> LwM2MServer:
    values: dict[str, object] = {"awake_time": 0.2}
    values.update(config)
    server = LwM2MServer(
        config=ServerConfig(**values),  # type: ignore[arg-type]
        expiry_interval=None,
        coap_config=FAST_COAP,
    )
    await server.start(("127.0.0.1", 0))
    return server


@pytest.fixture
async def sleepy() -> AsyncIterator[tuple[LwM2MServer, FakeClient]]:
    """A queue-mode client registered with a server whose awake window is 0.2 s; it is asleep
    when the fixture hands it over."""
    server = await queue_server()
    client = FakeClient("q1")
    await client.start()
    try:
        with server.subscribe() as events:
            async with asyncio.timeout(TIMEOUT):
                await client.register(server.local_address, queue=True)
                registration = (await events.wait_for(Registered)).registration
                assert registration.queue_mode
                assert server.is_awake(registration)
                await events.wait_for(Sleeping)
                assert not server.is_awake(registration)
        yield server, client
    finally:
        await client.stop()
        await server.stop()


async def test_held_requests_go_out_when_the_client_wakes_up(
    sleepy: tuple[LwM2MServer, FakeClient],
) -> None:
    server, client = sleepy
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            reads = [asyncio.ensure_future(server.read("q1", f"/3/0/{rid}")) for rid in (9, 0, 1)]
            for _ in range(5):
                await asyncio.sleep(0)
            assert client.received == []  # held: nothing reached the sleeping client
            assert not any(r.done() for r in reads)
            assert (await client.update(server.local_address)).code == Code.CHANGED
            awake = await events.wait_for(Awake)
            assert awake.registration.endpoint == "q1"
            results = await asyncio.gather(*reads)
    assert [r.content.id for r in results] == [9, 0, 1]  # type: ignore[union-attr]
    assert [r.path for r in client.received] == [Path(3, 0, 9), Path(3, 0, 0), Path(3, 0, 1)]  # type: ignore[union-attr]
    assert all(isinstance(r, Read) for r in client.received)


async def test_a_send_wakes_the_client_too(sleepy: tuple[LwM2MServer, FakeClient]) -> None:
    server, client = sleepy
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            read = asyncio.ensure_future(server.read("q1", "/3/0/9"))
            await asyncio.sleep(0)
            nodes = {Path(3, 0, 9): SingleResource(9, INT, 1)}
            assert (await client.send(server.local_address, nodes)).code == Code.CHANGED
            await events.wait_for(Awake)
            assert (await read).content == SingleResource(9, INT, 87)
            # the answer kept it awake; the window ends again later
            await events.wait_for(Sleeping)


async def test_requests_while_awake_go_straight_out() -> None:
    server = await queue_server(awake_time=30.0)
    client = FakeClient("q2")
    await client.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.register(server.local_address, queue=True)
            results = await asyncio.gather(server.read("q2", "/3/0/9"), server.read("q2", "/3/0/0"))
            assert [r.code for r in results] == [Code.CONTENT, Code.CONTENT]
            handle = await server.observe("q2", "/3/0/9")
            assert handle.active
            client.set_resource(Path(3, 0, 9), 3)
            client.notify(Path(3, 0, 9))
            assert (await anext(handle)).content == SingleResource(9, INT, 3)
    finally:
        await client.stop()
        await server.stop()


async def test_not_holding_fails_at_once() -> None:
    server = await queue_server(hold_requests=False)
    client = FakeClient("q3")
    await client.start()
    try:
        with server.subscribe() as events:
            async with asyncio.timeout(TIMEOUT):
                await client.register(server.local_address, queue=True)
                await events.wait_for(Sleeping)
                with pytest.raises(ClientSleeping, match="sleeping"):
                    await server.read("q3", "/3/0/9")
        assert client.received == []
    finally:
        await client.stop()
        await server.stop()


async def test_hold_timeout_and_full_hold() -> None:
    server = await queue_server(hold_timeout=0.1, max_held_requests=1)
    client = FakeClient("q4")
    await client.start()
    try:
        with server.subscribe() as events:
            async with asyncio.timeout(TIMEOUT):
                await client.register(server.local_address, queue=True)
                await events.wait_for(Sleeping)
                first = asyncio.ensure_future(server.read("q4", "/3/0/9"))
                await asyncio.sleep(0)
                with pytest.raises(ClientSleeping, match="too many"):
                    await server.read("q4", "/3/0/9")
                with pytest.raises(ClientSleeping, match="did not wake up"):
                    await first
                # withdrawn: a later wake-up sends nothing
                await client.update(server.local_address)
                await events.wait_for(Awake)
        assert client.received == []
    finally:
        await client.stop()
        await server.stop()


async def test_cancelling_the_caller_withdraws_a_held_request(
    sleepy: tuple[LwM2MServer, FakeClient],
) -> None:
    server, client = sleepy
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await server.read("q1", "/3/0/9")
            await client.update(server.local_address)
            await events.wait_for(Awake)
            assert (await server.read("q1", "/3/0/0")).code == Code.CONTENT
    assert [r.path for r in client.received] == [Path(3, 0, 0)]  # type: ignore[union-attr]


async def test_deregistration_fails_held_requests(
    sleepy: tuple[LwM2MServer, FakeClient],
) -> None:
    server, client = sleepy
    async with asyncio.timeout(TIMEOUT):
        held = asyncio.ensure_future(server.read("q1", "/3/0/9"))
        await asyncio.sleep(0)
        await client.deregister(server.local_address)
        with pytest.raises(NotRegistered, match="de-registered"):
            await held


async def test_stopping_the_server_cancels_held_requests(
    sleepy: tuple[LwM2MServer, FakeClient],
) -> None:
    server, _ = sleepy
    async with asyncio.timeout(TIMEOUT):
        held = asyncio.ensure_future(server.read("q1", "/3/0/9"))
        await asyncio.sleep(0)
        await server.stop()
        with pytest.raises(RequestCancelled):
            await held


async def test_a_timeout_puts_the_client_to_sleep() -> None:
    server = await queue_server(awake_time=30.0)
    client = FakeClient("q5")
    await client.start()
    try:
        with server.subscribe() as events:
            async with asyncio.timeout(TIMEOUT):
                await client.register(server.local_address, queue=True)
                registration = (await events.wait_for(Registered)).registration
                client.errors.clear()
                assert client.endpoint is not None
                client.endpoint.site.add("/", lambda request: _never())
                with pytest.raises(RequestTimeout):
                    await server.read("q5", "/3/0/9")
                sleeping = await events.wait_for(Sleeping)
                assert sleeping.registration.id == registration.id
                assert not server.is_awake(registration)
    finally:
        await client.stop()
        await server.stop()


async def _never() -> None:
    await asyncio.Event().wait()


async def test_a_1_0_client_leaving_queue_mode_releases_held_requests() -> None:
    server = await queue_server()
    client = FakeClient("q6")
    await client.start()
    try:
        with server.subscribe() as events:
            async with asyncio.timeout(TIMEOUT):
                await client.register(
                    server.local_address, version="1.0", binding="UQ", links="</3/0>"
                )
                await events.wait_for(Sleeping)
                held = asyncio.ensure_future(server.read("q6", "/3/0/9"))
                await asyncio.sleep(0)
                await client.update(server.local_address, binding="U")
                assert (await held).code == Code.CONTENT
                registration = await server.registration("q6")
                assert registration is not None
                assert not registration.queue_mode
                assert server.is_awake(registration)
                await client.update(server.local_address, binding="UQ")
                registration = await server.registration("q6")
                assert registration is not None
                assert registration.queue_mode
    finally:
        await client.stop()
        await server.stop()
