"""Failure paths of the bootstrap server service on loopback (LwM2M-TS-Core §5.2.7, §6.1): a
client whose answers cannot be decoded, or that rejects the Finish with 4.06, fails its session
without crashing the server, and nothing is sent after the failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lwm2m.bootstrap.config import BootstrapConfig
from lwm2m.bootstrap.session import BootstrapFailed, BootstrapFinished, SessionState
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.io.coap_endpoint import CoapRequest
from lwm2m.io.lwm2m_bootstrap import BootstrapServer
from lwm2m.operations.requests import (
    BootstrapDelete,
    BootstrapDiscover,
    BootstrapFinish,
    BootstrapWrite,
)

from .test_bootstrap_server import CONFIG, TIMEOUT, OurClient

DISCOVERING = BootstrapConfig(security=CONFIG.security, servers=CONFIG.servers, discover=True)


class GarbledDiscover(OurClient):
    """Answers Bootstrap-Discover 2.05 with a link-format payload that is not UTF-8."""

    def handle(self, request: CoapRequest) -> Any:
        answer = super().handle(request)
        if isinstance(self.received[-1], BootstrapDiscover):
            return Message(Code.CONTENT, b"\xff\xfe</>", content_format=40)
        return answer


@pytest.fixture
async def server() -> AsyncIterator[BootstrapServer]:
    bootstrap = BootstrapServer(configs={"dev": DISCOVERING, "plain": CONFIG})
    await bootstrap.start(("127.0.0.1", 0))
    try:
        yield bootstrap
    finally:
        await bootstrap.stop()


async def _run(server: BootstrapServer, client: OurClient, endpoint: str) -> BootstrapFailed:
    await client.start()
    try:
        with server.subscribe() as events:
            async with asyncio.timeout(TIMEOUT):
                answer = await client.request_bootstrap(server, [f"ep={endpoint}"])
                assert answer.code == Code.CHANGED
                return await events.wait_for(BootstrapFailed)
    finally:
        assert client.endpoint is not None
        await client.endpoint.close()


async def test_an_undecodable_answer_fails_the_session(server: BootstrapServer) -> None:
    client = GarbledDiscover()
    failed = await _run(server, client, "dev")
    assert failed.reason.startswith("discover /: undecodable response")
    assert [type(r) for r in client.received] == [BootstrapDiscover]  # nothing after it
    session = server.session("dev")
    assert session is not None
    assert session.state is SessionState.FAILED


async def test_a_4_06_finish_fails_the_session(server: BootstrapServer) -> None:
    client = OurClient()
    client.answers[BootstrapFinish] = Code.NOT_ACCEPTABLE
    failed = await _run(server, client, "plain")
    assert failed.reason.startswith("finish answered 4.06")
    kinds = [type(r) for r in client.received]
    assert kinds[0] is BootstrapDelete
    assert kinds[-1] is BootstrapFinish
    assert BootstrapWrite in kinds


async def test_the_server_serves_the_next_client_after_a_failure(server: BootstrapServer) -> None:
    await _run(server, GarbledDiscover(), "dev")
    client = OurClient()
    await client.start()
    try:
        with server.subscribe() as events:
            async with asyncio.timeout(TIMEOUT):
                answer = await client.request_bootstrap(server, ["ep=dev"])
                assert answer.code == Code.CHANGED
                finished = await events.wait_for(BootstrapFinished)
        assert finished.endpoint == "dev"
        assert type(client.received[-1]) is BootstrapFinish
    finally:
        assert client.endpoint is not None
        await client.endpoint.close()
