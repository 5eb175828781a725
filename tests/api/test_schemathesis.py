"""Property-based fuzzing of every route of the OpenAPI document with schemathesis.

The cases are generated from the app's own OpenAPI document (positive and negative data) and sent
in-process, over ``httpx.ASGITransport``, to an app over the real server with a real client
registered (:mod:`.conftest`). Schemathesis' pytest plugin and its ASGI transport run the app in
another thread with another event loop, where the server's sockets and futures do not belong, so
Hypothesis runs in a worker thread here and each request is sent on the test's own loop.

Checks: no 5xx (``not_a_server_error``), and every answer is one the document declares, with a
body of its schema (``status_code_conformance``, ``content_type_conformance``,
``response_schema_conformance``). Deterministic (``derandomize``), bounded (:data:`EXAMPLES`).
``GET /api/events`` is left out: a stream never ends (``test_events`` covers it).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import schemathesis  # a dev dependency: never skipped
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lwm2m.api import create_app
from lwm2m.store.memory import MemorySecurityStore

from .conftest import ENDPOINT, Stack, Thermometer

EXAMPLES = 25
"""Generated cases per operation and generation mode."""

BASE_URL = "http://test"
REQUEST_TIMEOUT = 2.0
"""The app's bound on a request to the client (a lost one is a 504, not a hang)."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

SKIPPED = {("GET", "/api/events")}


PATHS = ["3", "3/0", "3/0/9", "3/0/14", "3/0/7/0", "1/0/1", "3303", "3303/0/5700", "3303/0/5605"]
"""Paths the client of :mod:`.conftest` has (Device, Server, the Thermometer)."""


def at_client(operation: Any, mode: Any, name: str) -> st.SearchStrategy[Any]:
    """Cases for the registered client at one of :data:`PATHS`."""
    return st.sampled_from(PATHS).flatmap(
        lambda path: operation.as_strategy(
            generation_mode=mode, path_parameters={"endpoint": ENDPOINT, name: path}
        )
    )


def strategies_for(operation: Any, mode: Any) -> st.SearchStrategy[Any]:
    """Cases of ``operation``; for a client's route also for the registered client, and at
    paths it has, so that requests reach it."""
    strategies = [operation.as_strategy(generation_mode=mode)]
    if operation.path.startswith("/api/clients/{endpoint}"):
        fixed = {"endpoint": ENDPOINT}
        strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
        strategies.extend(
            at_client(operation, mode, name)
            for name in ("path", "object_id")
            if "{" + name + "}" in operation.path
        )
    return st.one_of(strategies)


def httpx_request(case: Any) -> dict[str, Any]:
    """The generated case as ``httpx.AsyncClient.request`` arguments."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": {k: str(v) for k, v in (kwargs.get("headers") or {}).items()},
        "params": kwargs.get("params") or None,
    }
    if "json" in kwargs:
        request["content"] = json.dumps(kwargs["json"], allow_nan=True).encode()
        request["headers"].setdefault("Content-Type", "application/json")
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        request["content"] = data if isinstance(data, bytes | str) else json.dumps(data).encode()
    return request


async def test_every_route_answers_generated_requests_as_documented(stack: Stack) -> None:
    await stack.start_client(objects=[Thermometer()])
    app = create_app(
        stack.server,
        security_store=MemorySecurityStore(),
        request_timeout=REQUEST_TIMEOUT,
        ui=False,
    )
    schema = schemathesis.openapi.from_dict(app.openapi())
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if (result.ok().method.upper(), result.ok().path) not in SKIPPED
    ]
    assert len(operations) == 20  # every route but the event stream
    loop = asyncio.get_running_loop()

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:

        def send(case: Any) -> httpx.Response:
            request = http.request(**httpx_request(case))
            return asyncio.run_coroutine_threadsafe(request, loop).result(timeout=30)

        def fuzz() -> None:
            for operation in operations:
                for mode in (
                    schemathesis.GenerationMode.POSITIVE,
                    schemathesis.GenerationMode.NEGATIVE,
                ):
                    strategies = strategies_for(operation, mode)

                    @settings(
                        max_examples=EXAMPLES,
                        derandomize=True,
                        database=None,
                        deadline=None,
                        suppress_health_check=list(HealthCheck),
                    )
                    @given(case=strategies)
                    def check(case: Any) -> None:
                        case.validate_response(send(case), checks=CHECKS)

                    try:
                        check()
                    except Unsatisfiable:
                        # no input of the operation can be made invalid: it has none, or
                        # only unconstrained strings (GET /api/clients/{endpoint}, ...)
                        assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
                        continue
                    ran.append((operation.label, mode))

        ran: list[tuple[str, Any]] = []
        await asyncio.to_thread(fuzz)
        # every operation ran with valid data; those with a body or a query with invalid data too
        assert {label for label, mode in ran if mode.is_positive} == {o.label for o in operations}
        assert sum(1 for _, mode in ran if not mode.is_positive) >= 8
