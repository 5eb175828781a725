"""Interop with aiocoap 0.4.17 on loopback: our client against an aiocoap server, and an aiocoap
client against our server. GET, PUT, POST, DELETE, FETCH, iPATCH, Observe (>= 3 notifications and
cancel), Block2 >= 10 KB, Block1 >= 5 KB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lwm2m.coap import Code, Message
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest, Site

from .conftest import free_udp_port

aiocoap = pytest.importorskip("aiocoap")
aiocoap_resource = pytest.importorskip("aiocoap.resource")

pytestmark = pytest.mark.interop

BIG = bytes(range(256)) * 42  # 10752 bytes
UPLOAD = bytes(reversed(BIG))[:5500]


# -- our client against an aiocoap server ---------------------------------------------------------


class Store(aiocoap_resource.Resource):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.value = b"initial"

    async def render_get(self, request: Any) -> Any:
        return aiocoap.Message(payload=self.value, content_format=0)

    async def render_put(self, request: Any) -> Any:
        self.value = request.payload
        return aiocoap.Message(code=aiocoap.CHANGED)

    async def render_post(self, request: Any) -> Any:
        return aiocoap.Message(code=aiocoap.CREATED, payload=b"posted:" + request.payload)

    async def render_delete(self, request: Any) -> Any:
        self.value = b""
        return aiocoap.Message(code=aiocoap.DELETED)

    async def render_fetch(self, request: Any) -> Any:
        return aiocoap.Message(payload=b"fetched:" + request.payload)

    async def render_ipatch(self, request: Any) -> Any:
        self.value += request.payload
        return aiocoap.Message(code=aiocoap.CHANGED)


class Big(aiocoap_resource.Resource):  # type: ignore[misc]
    async def render_get(self, request: Any) -> Any:
        return aiocoap.Message(payload=BIG)


class Counter(aiocoap_resource.ObservableResource):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def bump(self) -> None:
        self.n += 1
        self.updated_state()

    async def render_get(self, request: Any) -> Any:
        return aiocoap.Message(payload=str(self.n).encode())


@pytest.fixture
async def aiocoap_server(aiocoap_env: None) -> AsyncIterator[tuple[tuple[str, int], Any]]:
    site = aiocoap_resource.Site()
    store, counter = Store(), Counter()
    site.add_resource(["store"], store)
    site.add_resource(["big"], Big())
    site.add_resource(["counter"], counter)
    port = free_udp_port()
    ctx = await aiocoap.Context.create_server_context(
        site, bind=("127.0.0.1", port), transports=["udp6"]
    )
    try:
        yield ("127.0.0.1", port), {"store": store, "counter": counter}
    finally:
        await ctx.shutdown()


async def test_our_client_methods_against_aiocoap(aiocoap_server: Any) -> None:
    remote, resources = aiocoap_server
    async with await CoapEndpoint.create() as client, asyncio.timeout(20):
        get = await client.request(Message(Code.GET, uri_path="/store"), remote)
        assert get.code == Code.CONTENT
        assert get.payload == b"initial"
        put = await client.request(Message(Code.PUT, b"v2", uri_path="/store"), remote)
        assert put.code == Code.CHANGED
        assert resources["store"].value == b"v2"
        post = await client.request(Message(Code.POST, b"x", uri_path="/store"), remote)
        assert (post.code, post.payload) == (Code.CREATED, b"posted:x")
        fetch = await client.request(Message(Code.FETCH, b"q", uri_path="/store"), remote)
        assert fetch.payload == b"fetched:q"
        ipatch = await client.request(Message(Code.IPATCH, b"+p", uri_path="/store"), remote)
        assert ipatch.code == Code.CHANGED
        assert resources["store"].value == b"v2+p"
        delete = await client.request(Message(Code.DELETE, uri_path="/store"), remote)
        assert delete.code == Code.DELETED


async def test_our_client_block_wise_against_aiocoap(aiocoap_server: Any) -> None:
    remote, resources = aiocoap_server
    async with await CoapEndpoint.create() as client, asyncio.timeout(20):
        big = await client.request(Message(Code.GET, uri_path="/big"), remote)
        assert big.payload == BIG
        put = await client.request(Message(Code.PUT, UPLOAD, uri_path="/store"), remote)
        assert put.code == Code.CHANGED
        assert resources["store"].value == UPLOAD
        assert client.engine.stats.retransmissions == 0


async def test_our_client_observes_aiocoap(aiocoap_server: Any) -> None:
    remote, resources = aiocoap_server
    counter = resources["counter"]
    async with await CoapEndpoint.create() as client, asyncio.timeout(20):
        obs = await client.observe(Message(Code.GET, uri_path="/counter"), remote)
        assert obs.active
        assert obs.response is not None
        assert obs.response.payload == b"0"
        got = []
        for _ in range(3):
            counter.bump()
            got.append((await anext(obs)).payload)
        assert got == [b"1", b"2", b"3"]
        await obs.cancel()
        assert not obs.active
        # aiocoap took the GET with Observe=1 as a deregistration: bumps reach nobody now
        counter.bump()
        again = await client.request(Message(Code.GET, uri_path="/counter"), remote)
        assert again.payload == b"4"
        assert client.engine.stats.resets_sent == 0


# -- an aiocoap client against our server ---------------------------------------------------------


class OurStore:
    def __init__(self) -> None:
        self.value = b"initial"
        self.uploads: list[bytes] = []
        self.registered = asyncio.Event()

    def handle(self, req: CoapRequest) -> Message:
        code = req.code
        if req.path == ("big",):
            return Message(Code.CONTENT, BIG)
        if req.path == ("obs",):
            self.registered.set()
            return Message(Code.CONTENT, b"0", observe=0)
        if code == Code.GET:
            return Message(Code.CONTENT, self.value, content_format=0)
        if code == Code.PUT:
            self.value = req.payload
            self.uploads.append(req.payload)
            return Message(Code.CHANGED)
        if code == Code.POST:
            return Message(Code.CREATED, b"posted:" + req.payload)
        if code == Code.DELETE:
            return Message(Code.DELETED)
        if code == Code.FETCH:
            return Message(Code.CONTENT, b"fetched:" + req.payload)
        if code == Code.IPATCH:
            self.value += req.payload
            return Message(Code.CHANGED)
        return Message(Code.METHOD_NOT_ALLOWED)


@pytest.fixture
async def our_server(aiocoap_env: None) -> AsyncIterator[tuple[CoapEndpoint, OurStore, Any]]:
    store = OurStore()
    site = Site()
    site.add("/", store.handle)
    ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
    try:
        async with await CoapEndpoint.create(site=site) as server:
            yield server, store, ctx
    finally:
        await ctx.shutdown()


def uri(server: CoapEndpoint, path: str) -> str:
    host, port = server.local_address[:2]
    return f"coap://{host}:{port}{path}"


async def test_aiocoap_client_methods_against_us(our_server: Any) -> None:
    server, store, ctx = our_server

    async def call(code: Any, path: str, payload: bytes = b"") -> Any:
        msg = aiocoap.Message(code=code, uri=uri(server, path), payload=payload)
        return await ctx.request(msg).response

    async with asyncio.timeout(20):
        r = await call(aiocoap.GET, "/store")
        assert (r.code, r.payload) == (aiocoap.CONTENT, b"initial")
        assert (await call(aiocoap.PUT, "/store", b"v2")).code == aiocoap.CHANGED
        assert store.value == b"v2"
        r = await call(aiocoap.POST, "/store", b"x")
        assert (r.code, r.payload) == (aiocoap.CREATED, b"posted:x")
        assert (await call(aiocoap.FETCH, "/store", b"q")).payload == b"fetched:q"
        assert (await call(aiocoap.numbers.codes.Code.iPATCH, "/store", b"+p")).code == (
            aiocoap.CHANGED
        )
        assert store.value == b"v2+p"
        assert (await call(aiocoap.DELETE, "/store")).code == aiocoap.DELETED


async def test_aiocoap_client_block_wise_against_us(our_server: Any) -> None:
    server, store, ctx = our_server
    async with asyncio.timeout(20):
        big = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri(server, "/big"))).response
        assert big.payload == BIG
        put = aiocoap.Message(code=aiocoap.PUT, uri=uri(server, "/store"), payload=UPLOAD)
        assert (await ctx.request(put).response).code == aiocoap.CHANGED
    assert store.uploads == [UPLOAD]  # reassembled once, delivered once


async def test_aiocoap_client_observes_us(our_server: Any) -> None:
    server, _, ctx = our_server
    removed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server._on_observer_removed = lambda obs, reason: removed.set_result(reason)
    async with asyncio.timeout(20):
        req = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri(server, "/obs"), observe=0))
        first = await req.response
        assert first.payload == b"0"
        assert first.opt.observe is not None
        iterator = req.observation.__aiter__()
        got = []
        for i in range(1, 4):
            assert server.notify("/obs", Message(Code.CONTENT, str(i).encode())) == 1
            got.append((await iterator.__anext__()).payload)
        assert got == [b"1", b"2", b"3"]
        req.observation.cancel()
        # aiocoap 0.4.17 cancels reactively: it still ACKs the next notification, then answers
        # the one after with RST (RFC 7641 §3.6). The second state waits (merged) for the ACK.
        server.notify("/obs", Message(Code.CONTENT, b"4"), confirmable=True)
        server.notify("/obs", Message(Code.CONTENT, b"5"), confirmable=True)
        assert await removed == "reset"
        assert server.observations("/obs") == []
