"""Failures that are not the caller's input: a client that stopped answering (504), a sleeping
queue-mode client (503), other request failures (by CoAP code or 502), an unexpected error
(500 without a traceback) -- and the OpenAPI document."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from lwm2m.api import create_app
from lwm2m.api.errors import ApiError, failure, status_for_coap
from lwm2m.coap.config import CoapConfig, TransmissionParameters
from lwm2m.coap.message import Message, decode
from lwm2m.coap.numbers import Code
from lwm2m.errors import BadRequest
from lwm2m.server.errors import (
    ClientSleeping,
    ErrorResponse,
    InvalidResponse,
    RequestCancelled,
    RequestFailed,
    RequestRejected,
)
from lwm2m.server.events import Sleeping
from lwm2m.server.registration import ServerConfig

from .conftest import ENDPOINT, JSON, TIMEOUT, Stack, bounded, start_server

FAST = CoapConfig(
    transmission=TransmissionParameters(ack_timeout=0.05, ack_random_factor=1.0, max_retransmit=1),
    response_timeout=0.3,
)
"""A request to a silent client is given up after about 0.15 s."""

SILENT = "urn:dev:silent"


def http(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=JSON
    )  # type: ignore[arg-type]


async def register_and_fall_silent(address: tuple[str, int]) -> socket.socket:
    """Register ``SILENT`` from a bare UDP socket that never answers anything afterwards."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    register = Message(
        Code.POST,
        b"</3/0>",
        mid=1,
        token=b"\x01\x02",
        uri_path="/rd",
        uri_query=[f"ep={SILENT}", "lt=300", "lwm2m=1.1", "b=U"],
        content_format=40,
    )
    await loop.sock_sendto(sock, register.encode(), address)
    async with asyncio.timeout(TIMEOUT):
        answer = decode(await loop.sock_recv(sock, 2048))
    assert answer.code == Code.CREATED
    return sock


@pytest.fixture
async def silent() -> AsyncIterator[Stack]:
    server = await start_server(coap_config=FAST)
    stack = Stack(server)
    sock = await register_and_fall_silent(server.local_address)
    try:
        yield stack
    finally:
        sock.close()
        stack.events.close()
        await server.stop()


async def test_no_answer_is_504(silent: Stack) -> None:
    async with http(create_app(silent.server)) as api:
        answer = await bounded(api.get(f"/api/clients/{SILENT}/3/0/9"))
    assert answer.status_code == 504
    assert answer.json() == {"error": f"{SILENT}: no answer from the client in time"}


async def test_the_apis_request_timeout_is_504(silent: Stack) -> None:
    # well below the CoAP layer's own give-up time
    async with http(create_app(silent.server, request_timeout=0.01)) as api:
        answer = await bounded(api.post(f"/api/clients/{SILENT}/3/0/4/execute"))
    assert answer.status_code == 504


async def test_a_sleeping_client_is_503() -> None:
    server = await start_server(config=ServerConfig(awake_time=0.2, hold_requests=False))
    stack = Stack(server)
    try:
        await stack.start_client(stack.config(queue_mode=True, awake_time=0.2))
        async with http(create_app(server)) as api:
            entry = (await api.get(f"/api/clients/{ENDPOINT}")).json()
            # awake until 0.2 s after its last message: a loaded machine may be past that here,
            # so only the field's presence is checked before the Sleeping event
            assert entry["queue_mode"] is True
            assert isinstance(entry["awake"], bool)
            await bounded(stack.events.wait_for(Sleeping))
            entry = (await api.get(f"/api/clients/{ENDPOINT}")).json()
            assert entry["awake"] is False
            answer = await api.get(f"/api/clients/{ENDPOINT}/3/0/9")
        assert answer.status_code == 503
        assert answer.json() == {"error": f"{ENDPOINT}: the client is sleeping"}
    finally:
        await stack.close()
        await server.stop()


@pytest.mark.parametrize(
    ("exc", "status", "body"),
    [
        (ErrorResponse(0x8D, endpoint="e"), 413, {"coap_code": "4.13"}),
        (ErrorResponse(0x83, endpoint="e"), 403, {"coap_code": "4.03"}),
        (
            ErrorResponse(0xA0, "boom", endpoint="e"),
            502,
            {"coap_code": "5.00", "diagnostic": "boom"},
        ),
        (RequestRejected("reset", endpoint="e"), 502, {}),
        (InvalidResponse("bad payload", endpoint="e"), 502, {}),
        (RequestCancelled("stopping", endpoint="e"), 503, {}),
        (ClientSleeping("too many requests held", endpoint="e"), 503, {}),
        (RequestFailed("not protected", endpoint="e", code=0x81), 403, {"coap_code": "4.01"}),
        (BadRequest("cannot write the root path"), 400, {}),
    ],
)
def test_failure_mapping(exc: Exception, status: int, body: dict[str, str]) -> None:
    error = failure(exc, "e")
    assert error.status == status
    assert error.body() == {"error": str(exc), **body}


def test_other_exceptions_are_not_mapped() -> None:
    with pytest.raises(KeyError):
        failure(KeyError("bug"), "e")
    assert status_for_coap(0x80) == 400
    assert isinstance(failure(TimeoutError(), "e"), ApiError)


async def test_an_unexpected_error_is_a_plain_500(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> list[object]:
        raise RuntimeError("store on fire")

    monkeypatch.setattr(stack.server, "registrations", broken)
    app = create_app(stack.server)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=JSON) as api:
        answer = await api.get("/api/clients")
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error"}
    assert "GET /api/clients failed: RuntimeError: store on fire" in caplog.text


async def test_openapi_lists_the_routes_with_models(stack: Stack) -> None:
    async with http(create_app(stack.server)) as api:
        answer = await api.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    paths = document["paths"]
    expected = {
        "/api/clients": {"get"},
        "/api/clients/{endpoint}": {"get"},
        "/api/clients/{endpoint}/observations": {"get"},
        "/api/clients/{endpoint}/{path}": {"get", "put", "delete"},
        "/api/clients/{endpoint}/{path}/execute": {"post"},
        "/api/clients/{endpoint}/{object_id}": {"post"},
        "/api/clients/{endpoint}/{path}/discover": {"get"},
        "/api/clients/{endpoint}/{path}/attributes": {"put"},
        "/api/clients/{endpoint}/{path}/observe": {"post", "delete"},
        "/api/clients/{endpoint}/composite": {"post", "put"},
        "/api/clients/{endpoint}/composite/observe": {"post", "delete"},
        "/api/clients/{endpoint}/admin-script": {"post"},
        "/api/events": {"get"},
        "/api/security": {"get"},
        "/api/security/{endpoint}": {"put", "delete"},
    }
    assert {path: set(ops) for path, ops in paths.items()} == expected
    schemas = document["components"]["schemas"]
    for model in ("RegistrationModel", "ContentAnswer", "ErrorAnswer", "SecurityEntryModel"):
        assert model in schemas
    assert "key_hex" not in schemas["SecurityEntryModel"]["properties"]
    read = paths["/api/clients/{endpoint}/{path}"]["get"]
    assert read["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorAnswer"
    }
    assert "text/event-stream" in paths["/api/events"]["get"]["responses"]["200"]["content"]
