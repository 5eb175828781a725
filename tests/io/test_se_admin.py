"""lwm2m.io.se_admin against a scripted stand-in of the server's operations: the order of the
requests, and the failures a real client rarely produces (a run that never ends, an observation
that ends first, an answer that is no Response Scripting Template). The real exchange runs in
tests/e2e/test_se_remote_admin.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lwm2m.io.se_admin import AdminScriptFailed, end_admin_session, run_admin_script
from lwm2m.model import ObjectInstance, ResourceType, SingleResource
from lwm2m.operations.responses import Response
from lwm2m.secure.admin import AdminStatus
from lwm2m.secure.ram import CommandScript, ResponseScript
from lwm2m.server.errors import RequestTimeout

SCRIPT = CommandScript((bytes.fromhex("80CA9F7F00"),))
ANSWER = ResponseScript(1, (b"\x90\x00",))


def status(value: int) -> Response:
    return Response(0x45, SingleResource(34, ResourceType.INTEGER, value))


class Handle:
    def __init__(self, notifications: list[Response], end: bool) -> None:
        self.notifications = notifications
        self.end = end
        self.active = True
        self.cancelled = False

    def __aiter__(self) -> AsyncIterator[Response]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Response]:
        for notification in self.notifications:
            yield notification
        if not self.end:
            await asyncio.Event().wait()  # never ends (the test's bound cancels it)
        self.active = False

    async def cancel(self) -> None:
        self.cancelled = True
        self.active = False


class Server:
    def __init__(self, notifications: list[Response], answer: Any, *, end: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.handle = Handle(notifications, end)
        self.answer = answer

    async def write(self, endpoint: str, path: str, node: Any) -> Response:
        self.calls.append(("write", path))
        return Response(0x44)

    async def observe(self, endpoint: str, path: str, **_: Any) -> Handle:
        self.calls.append(("observe", path))
        return self.handle

    async def execute(self, endpoint: str, path: str) -> Response:
        self.calls.append(("execute", path))
        return Response(0x44)

    async def read(self, endpoint: str, path: str) -> Response:
        self.calls.append(("read", path))
        return Response(0x45, self.answer)


async def run(server: Server, **options: Any) -> Any:
    async with asyncio.timeout(5):
        return await run_admin_script(server, "ep", SCRIPT, **options)  # type: ignore[arg-type]


async def test_the_requests_in_order() -> None:
    notifications = [
        Response(0x45, ObjectInstance(0, [])),  # not a single resource: skipped
        status(int(AdminStatus.RUNNING)),
        status(int(AdminStatus.STOPPED)),
    ]
    server = Server(notifications, SingleResource(33, ResourceType.OPAQUE, ANSWER.encode()))
    outcome = await run(server, target=bytes.fromhex("A000000151000000"))
    assert outcome.status is AdminStatus.STOPPED
    assert outcome.response == ANSWER
    assert server.calls == [
        ("write", "/33000/0/31"),
        ("write", "/33000/0/30"),
        ("observe", "/33000/0/34"),
        ("execute", "/33000/0/32"),
        ("read", "/33000/0/33"),
    ]
    assert server.handle.cancelled


async def test_a_run_that_does_not_end_in_time() -> None:
    server = Server([status(int(AdminStatus.RUNNING))], None)
    with pytest.raises(RequestTimeout, match=r"ep: the admin script did not end within 0\.05 s"):
        await run(server, within=0.05)
    assert server.handle.cancelled
    assert ("read", "/33000/0/33") not in server.calls


async def test_an_observation_that_ends_first() -> None:
    server = Server([status(int(AdminStatus.RUNNING))], None, end=True)
    with pytest.raises(AdminScriptFailed) as failed:
        await run(server)
    assert failed.value.status is AdminStatus.UNAVAILABLE
    assert "ended before the run did" in str(failed.value)
    assert not server.handle.cancelled  # it had ended by itself


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (SingleResource(33, ResourceType.OPAQUE, b"\xab\x01"), "Admin Response: "),
        (SingleResource(33, ResourceType.STRING, "AB00"), "Admin Response is not opaque"),
        (None, "Admin Response is not opaque"),
    ],
)
async def test_an_answer_that_is_no_response_script(answer: Any, message: str) -> None:
    server = Server([status(int(AdminStatus.COMPLETED))], answer)
    with pytest.raises(AdminScriptFailed, match=message) as failed:
        await run(server)
    assert failed.value.status is AdminStatus.UNAVAILABLE


async def test_ending_the_session_executes_its_resource() -> None:
    server = Server([], None)
    await end_admin_session(server, "ep", instance=1)  # type: ignore[arg-type]
    assert server.calls == [("execute", "/33000/1/35")]
