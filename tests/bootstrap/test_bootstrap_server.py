"""The bootstrap server service on loopback (LwM2M-TS-Core §5.2.7, §6.1; Transport §6.1).

aiocoap acts as a bootstrapping client (``interop``): it sends the Bootstrap-Request and records
every request of the session in order. Failure paths use a client on our own CoAP endpoint.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import AsyncIterator
from pathlib import Path as FilePath
from typing import Any

import pytest

from conftest import require
from lwm2m.bootstrap.config import (
    BootstrapConfig,
    Secret,
    SecurityInstance,
    SecurityMode,
    ServerInstance,
)
from lwm2m.bootstrap.session import (
    BootstrapEvent,
    BootstrapFailed,
    BootstrapFinished,
    BootstrapStarted,
    BootstrapStep,
    SessionState,
)
from lwm2m.coap.config import CoapConfig, TransmissionParameters
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.codec import codec_for
from lwm2m.codec.content_format import ContentFormat
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest, Site
from lwm2m.io.lwm2m_bootstrap import BootstrapServer
from lwm2m.model import Path
from lwm2m.model.registry import default_registry
from lwm2m.operations.coap_mapping import decode_downlink
from lwm2m.operations.requests import (
    BootstrapDelete,
    BootstrapDiscover,
    BootstrapFinish,
    BootstrapWrite,
)
from lwm2m.server.security import PeerIdentity, SecurityInfo
from lwm2m.store.memory import MemoryBootstrapConfigStore, MemorySecurityStore

TIMEOUT = 10
MODEL = default_registry()
KEY = Secret(bytes(range(16)))
REPO = FilePath(__file__).resolve().parents[2]

CONFIG = BootstrapConfig(
    security=(
        SecurityInstance(
            1,
            "coaps://lwm2m.example.org:5684",
            mode=SecurityMode.PSK,
            public_key_or_identity=b"urn:dev:bs-1",
            secret_key=KEY,
            short_server_id=101,
        ),
    ),
    servers=(ServerInstance(0, 101, lifetime=300),),
)


@pytest.fixture
async def bootstrap_server() -> AsyncIterator[BootstrapServer]:
    server = BootstrapServer(configs={"urn:dev:bs-1": CONFIG})
    await server.start(("127.0.0.1", 0))
    try:
        yield server
    finally:
        await server.stop()


def aiocoap_bootstrap_client() -> Any:
    import aiocoap
    import aiocoap.resource as resource

    class Root(resource.Resource, resource.PathCapable):  # type: ignore[misc]
        """Records every request of the bootstrap session, in order."""

        def __init__(self) -> None:
            super().__init__()
            self.log: list[tuple[str, str, int | None, bytes]] = []
            self.finished = asyncio.Event()

        def _record(self, request: Any) -> None:
            path = "/" + "/".join(request.opt.uri_path)
            self.log.append((str(request.code), path, request.opt.content_format, request.payload))

        async def render_put(self, request: Any) -> Any:
            self._record(request)
            return aiocoap.Message(code=aiocoap.CHANGED)

        async def render_delete(self, request: Any) -> Any:
            self._record(request)
            return aiocoap.Message(code=aiocoap.DELETED)

        async def render_get(self, request: Any) -> Any:
            self._record(request)
            return aiocoap.Message(payload=b'</>;lwm2m="1.1",</0/0>,</3/0>', content_format=40)

        async def render_post(self, request: Any) -> Any:
            self._record(request)
            self.finished.set()
            return aiocoap.Message(code=aiocoap.CHANGED)

    return aiocoap, Root


@pytest.fixture
async def aiocoap_client(aiocoap_env: None) -> AsyncIterator[tuple[Any, Any, Any]]:
    require(importlib.util.find_spec("aiocoap") is not None, "aiocoap (pip install aiocoap)")
    aiocoap, root_class = aiocoap_bootstrap_client()
    root = root_class()
    context = await aiocoap.Context.create_server_context(
        root, bind=("127.0.0.1", _free_port()), transports=["udp6"]
    )
    try:
        yield aiocoap, context, root
    finally:
        await context.shutdown()


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def aiocoap_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOCOAP_REUSE_PORT", "0")


async def bootstrap_request(aiocoap: Any, context: Any, server: BootstrapServer, query: str) -> Any:
    host, port = server.local_address
    message = aiocoap.Message(code=aiocoap.POST, uri=f"coap://{host}:{port}/bs?{query}")
    return await context.request(message).response


@pytest.mark.interop
async def test_aiocoap_client_is_bootstrapped_in_order(
    bootstrap_server: BootstrapServer, aiocoap_client: tuple[Any, Any, Any]
) -> None:
    aiocoap, context, root = aiocoap_client
    with bootstrap_server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            response = await bootstrap_request(
                aiocoap, context, bootstrap_server, "ep=urn:dev:bs-1"
            )
            assert response.code == aiocoap.CHANGED
            finished = await events.wait_for(BootstrapFinished)
            await root.finished.wait()
    assert finished.endpoint == "urn:dev:bs-1"
    assert [(code, path) for code, path, _, _ in root.log] == [
        ("DELETE", "/"),
        ("PUT", "/0/1"),
        ("PUT", "/1/0"),
        ("POST", "/bs"),
    ]
    _, _, cf, payload = root.log[1]
    assert cf == ContentFormat.TLV
    written = codec_for(ContentFormat.TLV).decode(payload, Path(0, 1), MODEL)
    assert written == CONFIG.security[0].to_instance()
    session = bootstrap_server.session("urn:dev:bs-1")
    assert session is not None
    assert session.state is SessionState.SUCCEEDED


@pytest.mark.interop
async def test_aiocoap_client_with_discover_and_preferred_format(
    aiocoap_client: tuple[Any, Any, Any],
) -> None:
    aiocoap, context, root = aiocoap_client
    config = BootstrapConfig(security=CONFIG.security, servers=CONFIG.servers, discover=True)
    server = BootstrapServer(configs={"dev": config})
    await server.start(("127.0.0.1", 0))
    try:
        with server.subscribe() as events:
            async with asyncio.timeout(TIMEOUT):
                response = await bootstrap_request(aiocoap, context, server, "ep=dev&pct=110")
                assert response.code == aiocoap.CHANGED
                started = await events.wait_for(BootstrapStarted)
                discover = await events.wait_for(BootstrapStep)
                await events.wait_for(BootstrapFinished)
        assert started.steps[0] == "discover /"
        assert discover.operation == "discover"
        assert discover.links is not None
        assert [str(link.path) for link in discover.links] == ["/", "/0/0", "/3/0"]
        assert [code for code, _, _, _ in root.log] == ["GET", "DELETE", "PUT", "PUT", "POST"]
        assert {cf for code, _, cf, _ in root.log if code == "PUT"} == {110}
    finally:
        await server.stop()


@pytest.mark.interop
async def test_unknown_endpoints_get_4_00(
    bootstrap_server: BootstrapServer,
    aiocoap_client: tuple[Any, Any, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    aiocoap, context, root = aiocoap_client
    with caplog.at_level(logging.WARNING, logger="lwm2m.bootstrap"):
        async with asyncio.timeout(TIMEOUT):
            response = await bootstrap_request(aiocoap, context, bootstrap_server, "ep=stranger")
    assert response.code == aiocoap.BAD_REQUEST
    assert "unknown endpoint 'stranger'" in caplog.text
    assert root.log == []


class OurClient:
    """A bootstrapping client on our endpoint; ``answers`` overrides codes per operation."""

    def __init__(self) -> None:
        self.answers: dict[type, int] = {}
        self.received: list[object] = []
        self.hang = False
        self.endpoint: CoapEndpoint | None = None

    async def start(self) -> None:
        site = Site()
        site.add("/", self.handle)
        self.endpoint = await CoapEndpoint.create(site=site)

    def handle(self, request: CoapRequest) -> Any:
        operation = decode_downlink(request.message, MODEL, from_bootstrap_server=True)
        self.received.append(operation)
        if self.hang:
            return asyncio.Event().wait()
        code = self.answers.get(type(operation))
        if code is not None:
            return Message(code)
        if isinstance(operation, BootstrapDelete):
            return Message(Code.DELETED)
        if isinstance(operation, BootstrapDiscover):
            return Message(Code.CONTENT, b"</>", content_format=40)
        return Message(Code.CHANGED)

    async def request_bootstrap(self, server: BootstrapServer, query: list[str]) -> Message:
        assert self.endpoint is not None
        message = Message(Code.POST, uri_path="/bs", uri_query=query)
        return await self.endpoint.request(message, server.local_address)


@pytest.fixture
async def our_client() -> AsyncIterator[OurClient]:
    client = OurClient()
    await client.start()
    try:
        yield client
    finally:
        assert client.endpoint is not None
        await client.endpoint.close()


async def test_a_failed_write_ends_the_session(
    bootstrap_server: BootstrapServer, our_client: OurClient
) -> None:
    our_client.answers[BootstrapWrite] = Code.BAD_REQUEST
    with bootstrap_server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            answer = await our_client.request_bootstrap(bootstrap_server, ["ep=urn:dev:bs-1"])
            assert answer.code == Code.CHANGED
            failed = await events.wait_for(BootstrapFailed)
    assert failed.reason == "write /0/1 answered 4.00"
    assert not any(isinstance(r, BootstrapFinish) for r in our_client.received)


async def test_a_silent_client_fails_the_session() -> None:
    fast = CoapConfig(
        transmission=TransmissionParameters(
            ack_timeout=0.05, ack_random_factor=1.0, max_retransmit=1
        ),
        response_timeout=0.2,
    )
    server = BootstrapServer(configs={"dev": CONFIG}, coap_config=fast)
    await server.start(("127.0.0.1", 0))
    client = OurClient()
    client.hang = True
    await client.start()
    try:
        with server.subscribe() as events:
            async with asyncio.timeout(TIMEOUT):
                answer = await client.request_bootstrap(server, ["ep=dev"])
                assert answer.code == Code.CHANGED
                failed = await events.wait_for(BootstrapFailed)
        assert failed.reason == "delete /: RequestTimeout"
    finally:
        assert client.endpoint is not None
        await client.endpoint.close()
        await server.stop()


async def test_bad_requests(bootstrap_server: BootstrapServer, our_client: OurClient) -> None:
    async with asyncio.timeout(TIMEOUT):
        assert (await our_client.request_bootstrap(bootstrap_server, [])).code == Code.BAD_REQUEST
        answer = await our_client.request_bootstrap(bootstrap_server, ["ep=urn:dev:bs-1", "pct=9"])
        assert answer.code == Code.UNSUPPORTED_CONTENT_FORMAT
        assert our_client.endpoint is not None
        other = await our_client.endpoint.request(
            Message(Code.POST, uri_path="/rd", uri_query=["ep=x"]), bootstrap_server.local_address
        )
        assert other.code == Code.NOT_FOUND
    message = Message(Code.POST, uri_path="/rd", uri_query=["ep=x"])
    answer = await bootstrap_server.handle_bootstrap_request(message, ("h", 1), None)
    assert answer.code == Code.BAD_REQUEST


async def test_endpoint_must_match_the_identity(bootstrap_server: BootstrapServer) -> None:
    message = Message(Code.POST, uri_path="/bs", uri_query=["ep=urn:dev:bs-1"])
    other = PeerIdentity.psk("someone-else")
    answer = await bootstrap_server.handle_bootstrap_request(message, ("h", 1), other)
    assert answer.code == Code.BAD_REQUEST
    table = MemorySecurityStore([SecurityInfo("urn:dev:bs-1", other)])
    mapped = BootstrapServer(configs={"urn:dev:bs-1": CONFIG}, security_store=table)
    await mapped.start(("127.0.0.1", 0))
    try:
        answer = await mapped.handle_bootstrap_request(message, ("127.0.0.1", 9), other)
        assert answer.code == Code.CHANGED
    finally:
        await mapped.stop()


async def test_a_new_request_aborts_the_running_session(
    bootstrap_server: BootstrapServer, our_client: OurClient
) -> None:
    our_client.hang = True
    seen: list[BootstrapEvent] = []
    bootstrap_server.add_listener(seen.append)
    with bootstrap_server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            await our_client.request_bootstrap(bootstrap_server, ["ep=urn:dev:bs-1"])
            await events.wait_for(BootstrapStarted)
            first = bootstrap_server.session("urn:dev:bs-1")
            our_client.hang = False
            await our_client.request_bootstrap(bootstrap_server, ["ep=urn:dev:bs-1"])
            failed = await events.wait_for(BootstrapFailed)
            await events.wait_for(BootstrapFinished)
    assert failed.reason == "a new Bootstrap-Request arrived"
    assert first is not None
    assert first.state is SessionState.FAILED
    second = bootstrap_server.session("urn:dev:bs-1")
    assert second is not first
    assert second is not None
    assert second.state is SessionState.SUCCEEDED


async def test_from_config_file_and_lifecycle(tmp_path: FilePath) -> None:
    server = BootstrapServer.from_config_file(REPO / "examples" / "bootstrap.toml")
    assert set(await server.store.all()) == {"urn:dev:demo-nosec", "urn:imei:004999010640000"}
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.endpoint
    await server.stop()  # not started: nothing to do
    async with server:
        await server.start(("127.0.0.1", 0))
        with pytest.raises(RuntimeError, match="already started"):
            await server.start(("127.0.0.1", 0))
    with pytest.raises(ValueError, match="either"):
        BootstrapServer(store=MemoryBootstrapConfigStore(), configs={"a": CONFIG})


async def test_stopping_aborts_sessions(our_client: OurClient) -> None:
    server = BootstrapServer(configs={"dev": CONFIG})
    await server.start(("127.0.0.1", 0))
    our_client.hang = True
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            await our_client.request_bootstrap(server, ["ep=dev"])
            await events.wait_for(BootstrapStarted)
            await server.stop()
            after = [event async for event in events]  # what was published up to the end
    session = server.session("dev")
    assert session is not None
    assert session.state is SessionState.FAILED  # aborted mid-way: failed, and reported
    assert [(type(e), e.reason) for e in after if isinstance(e, BootstrapFailed)] == [
        (BootstrapFailed, "the bootstrap server stopped")
    ]


async def test_the_2_04_precedes_the_first_bootstrap_request(
    bootstrap_server: BootstrapServer, our_client: OurClient
) -> None:
    from lwm2m.coap.message import decode

    endpoint = our_client.endpoint
    assert endpoint is not None
    wire: list[int] = []
    receive = endpoint.engine.receive_datagram

    def spy(data: bytes, addr: Any, now: float) -> None:
        wire.append(decode(data).code)
        receive(data, addr, now)

    endpoint.engine.receive_datagram = spy  # type: ignore[method-assign]
    with bootstrap_server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            await our_client.request_bootstrap(bootstrap_server, ["ep=urn:dev:bs-1"])
            await events.wait_for(BootstrapFinished)
    assert wire[:2] == [Code.CHANGED, Code.DELETE]
