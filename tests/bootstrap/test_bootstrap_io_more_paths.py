"""More paths of the asyncio bootstrap server (LwM2M-TS-Core §5.2.7, §6.1): a request the
server cannot encode fails the session before anything is sent, a crashing session is logged
and does not stop the server, a Bootstrap-Request after a finished session starts afresh, and
errors from the client end the session with the failing step."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

import lwm2m.io.lwm2m_bootstrap as module
from lwm2m.bootstrap.session import (
    BootstrapFailed,
    BootstrapFinished,
    BootstrapStarted,
    BootstrapStep,
    SessionState,
)
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.errors import CodecError
from lwm2m.io.lwm2m_bootstrap import BootstrapServer
from lwm2m.operations.requests import BootstrapDelete, BootstrapFinish, BootstrapWrite

from .test_bootstrap_server import CONFIG, TIMEOUT, OurClient


@pytest.fixture
async def server() -> AsyncIterator[BootstrapServer]:
    bootstrap = BootstrapServer(configs={"dev": CONFIG})
    await bootstrap.start(("127.0.0.1", 0))
    try:
        yield bootstrap
    finally:
        await bootstrap.stop()


@pytest.fixture
async def client() -> AsyncIterator[OurClient]:
    ours = OurClient()
    await ours.start()
    try:
        yield ours
    finally:
        assert ours.endpoint is not None
        await ours.endpoint.close()


def failing_encoder(kind: type, error: Exception) -> Any:
    real = module.encode_request

    def encode(task: Any, model: Any) -> Message:
        if isinstance(task, kind):
            raise error
        return real(task, model)

    return encode


async def test_an_unencodable_write_fails_the_session_before_sending_it(
    server: BootstrapServer, client: OurClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        module, "encode_request", failing_encoder(BootstrapWrite, CodecError("no codec"))
    )
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            answer = await client.request_bootstrap(server, ["ep=dev"])
            assert answer.code == Code.CHANGED
            failed = await events.wait_for(BootstrapFailed)
    assert "cannot encode the request: no codec" in failed.reason
    assert [type(r) for r in client.received] == [BootstrapDelete]  # the write never went out
    session = server.session("dev")
    assert session is not None
    assert session.state is SessionState.FAILED


async def test_a_crashing_session_is_logged_reported_and_the_server_keeps_serving(
    server: BootstrapServer,
    client: OurClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(
        module, "encode_request", failing_encoder(BootstrapDelete, RuntimeError("boom"))
    )
    with server.subscribe() as events, caplog.at_level(logging.ERROR):
        async with asyncio.timeout(TIMEOUT):
            answer = await client.request_bootstrap(server, ["ep=dev"])
            assert answer.code == Code.CHANGED
            await events.wait_for(BootstrapStarted)
            # subscribers learn of the crash too, not only the log
            failed = await events.wait_for(BootstrapFailed)
    assert failed.reason == "internal error: RuntimeError"
    session = server.session("dev")
    assert session is not None
    assert session.state is SessionState.FAILED
    (record,) = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert record.getMessage() == "bootstrap session of dev crashed"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert client.received == []
    monkeypatch.undo()
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            answer = await client.request_bootstrap(server, ["ep=dev"])
            assert answer.code == Code.CHANGED
            finished = await events.wait_for(BootstrapFinished)
    assert finished.endpoint == "dev"
    assert type(client.received[-1]) is BootstrapFinish


async def test_a_request_after_a_finished_session_starts_a_new_one(
    server: BootstrapServer, client: OurClient
) -> None:
    seen: list[object] = []
    server.add_listener(seen.append)
    for _ in range(2):
        with server.subscribe() as events:
            async with asyncio.timeout(TIMEOUT):
                answer = await client.request_bootstrap(server, ["ep=dev"])
                assert answer.code == Code.CHANGED
                await events.wait_for(BootstrapFinished)
    # the first session finished normally: nothing aborted it
    assert [type(e) for e in seen].count(BootstrapStarted) == 2
    assert [type(e) for e in seen].count(BootstrapFinished) == 2
    assert not any(isinstance(e, BootstrapFailed) for e in seen)
    assert [type(r) for r in client.received].count(BootstrapDelete) == 2


@pytest.mark.parametrize(
    ("kind", "answer", "reason"),
    [
        (BootstrapWrite, Code.METHOD_NOT_ALLOWED, "write /0/1 answered 4.05"),
        (BootstrapFinish, Code.BAD_REQUEST, "finish answered 4.00"),
    ],
)
async def test_client_errors_fail_the_session_at_that_step(
    server: BootstrapServer, client: OurClient, kind: type, answer: int, reason: str
) -> None:
    client.answers[kind] = answer
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            response = await client.request_bootstrap(server, ["ep=dev"])
            assert response.code == Code.CHANGED
            failed = await events.wait_for(BootstrapFailed)
    assert failed.reason.startswith(reason)
    assert type(client.received[-1]) is kind  # nothing is sent after the failing step


async def test_a_failed_delete_is_reported_and_the_session_goes_on(
    server: BootstrapServer, client: OurClient
) -> None:
    client.answers[BootstrapDelete] = Code.UNAUTHORIZED
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            response = await client.request_bootstrap(server, ["ep=dev"])
            assert response.code == Code.CHANGED
            step = await events.wait_for(BootstrapStep)
            await events.wait_for(BootstrapFinished)
    assert (step.operation, step.code, step.ok) == ("delete", Code.UNAUTHORIZED, False)
    assert type(client.received[-1]) is BootstrapFinish


async def test_unknown_endpoint_gets_4_00_and_no_session(server: BootstrapServer) -> None:
    message = Message(Code.POST, uri_path="/bs", uri_query=["ep=stranger"])
    answer = await server.handle_bootstrap_request(message, ("127.0.0.1", 9), None)
    assert answer.code == Code.BAD_REQUEST
    assert answer.payload == b"unknown endpoint"
    assert server.session("stranger") is None


async def test_a_session_answered_after_stop_is_not_started(client: OurClient) -> None:
    bootstrap = BootstrapServer(configs={"dev": CONFIG})
    await bootstrap.start(("127.0.0.1", 0))
    message = Message(Code.POST, uri_path="/bs", uri_query=["ep=dev"])
    answer = await bootstrap.handle_bootstrap_request(message, client_address(client), None)
    assert answer.code == Code.CHANGED
    await bootstrap.stop()  # before the scheduled session start runs
    await asyncio.sleep(0)
    assert bootstrap.session("dev") is None
    assert client.received == []


def client_address(client: OurClient) -> tuple[str, int]:
    assert client.endpoint is not None
    host, port = client.endpoint.local_address[:2]
    return (str(host), int(port))
