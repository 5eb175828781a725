"""Remote administration of the Secure Element through /33000 end to end (SCS-3, SCS-6): our
LwM2M server acts as the admin server, writes remote APDU scripts (ETSI TS 102 226 expanded
format) to a real client whose ``pcsc:`` component runs on the VSE card OS (in memory), executes
them, observes the Admin Status and reads the Response Scripting Template; it opens its own
SCP03 secure channel with the card's Issuer Security Domain through the relay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.model import ResourceType, SingleResource
from lwm2m.model.registry import ModelRegistry
from lwm2m.operations.responses import Response
from lwm2m.secure.admin import ISD_AID, AdminStatus
from lwm2m.secure.object import register_secure_component_object
from lwm2m.secure.pcsc import PcscComponent
from lwm2m.secure.ram import CommandScript, ResponseScript
from lwm2m.server.errors import ErrorResponse
from lwm2m.vse.state import VseState
from lwm2m.vse.uicc import VirtualUicc
from pcsc.test_admin_scripts import GET_CPLC, UNKNOWN_INS, scp03_session

from .conftest import ENDPOINT, Stack, bounded, registry, start_server

OPAQUE, STRING = ResourceType.OPAQUE, ResourceType.STRING


def sc_registry() -> ModelRegistry:
    model = registry()
    register_secure_component_object(model)
    return model


@pytest.fixture
async def admin_stack() -> AsyncIterator[Stack]:
    server = await start_server(registry=sc_registry())
    stack = Stack(server)
    try:
        yield stack
    finally:
        await stack.close()
        await server.stop()


class AdminServer:
    """The server side of one client's admin session: run a script, wait for the outcome."""

    def __init__(self, stack: Stack) -> None:
        self.server = stack.server
        self.runs = 0

    async def run(self, script: CommandScript) -> tuple[AdminStatus, ResponseScript | None]:
        server = self.server
        await bounded(
            server.write(ENDPOINT, "/33000/0/30", SingleResource(30, OPAQUE, script.encode()))
        )
        status = await bounded(server.observe(ENDPOINT, "/33000/0/34", accept=CF.SENML_CBOR))
        try:
            await bounded(server.execute(ENDPOINT, "/33000/0/32"))
            while True:  # the first notification after Running
                notification: Response = await bounded(anext(status))
                outcome = AdminStatus(notification.content.value)  # type: ignore[union-attr]
                if outcome is not AdminStatus.RUNNING:
                    break
        finally:
            await bounded(status.cancel())
        self.runs += 1
        answer = await bounded(server.read(ENDPOINT, "/33000/0/33"))
        raw = answer.content.value  # type: ignore[union-attr]
        return outcome, ResponseScript.decode(raw) if raw else None


async def start_admin_client(stack: Stack) -> None:
    component = PcscComponent(VirtualUicc(VseState.default()).process)
    await stack.start_client(secure_component=component, admin_targets=(ISD_AID,))


async def test_the_server_reads_the_cplc_through_the_isd(admin_stack: Stack) -> None:
    await start_admin_client(admin_stack)
    server = admin_stack.server
    listed = await server.read(ENDPOINT, "/33000/0/31")
    assert listed.content == SingleResource(31, STRING, "A000000151000000")
    admin = AdminServer(admin_stack)
    status, response = await admin.run(CommandScript((GET_CPLC,)))
    assert status is AdminStatus.COMPLETED
    assert response is not None
    assert response.executed == 1
    assert response.responses[0][:2] == b"\x9f\x7f"
    assert response.responses[0][-2:] == b"\x90\x00"
    status, response = await admin.run(CommandScript((GET_CPLC, UNKNOWN_INS, GET_CPLC)))
    assert status is AdminStatus.STOPPED
    assert response is not None
    assert response.executed == 2
    assert response.responses[-1] == b"\x6d\x00"


async def test_the_server_runs_scp03_with_the_card_through_the_client(
    admin_stack: Stack,
) -> None:
    await start_admin_client(admin_stack)
    admin = AdminServer(admin_stack)
    session = scp03_session()
    request = next(session)
    while True:
        status, response = await admin.run(request)
        assert status is AdminStatus.COMPLETED
        assert response is not None
        try:
            request = session.send(response)
        except StopIteration as done:
            cplc: bytes = done.value
            break
    assert admin.runs == 3  # INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, GET DATA under SCP03
    assert cplc[:2] == b"\x9f\x7f"
    direct = await bounded(admin_stack.server.read(ENDPOINT, "/33000/0/7"))
    identifiers = direct.content.values.values()  # type: ignore[union-attr]
    assert f"cplc:{cplc[3:].hex().upper()}" in identifiers  # what /33000/0/7 reports


async def test_refused_writes_and_a_disabled_relay(admin_stack: Stack) -> None:
    await start_admin_client(admin_stack)
    server = admin_stack.server
    read_binary = CommandScript((bytes.fromhex("00B0000000"),))
    with pytest.raises(ErrorResponse) as refused:
        await bounded(
            server.write(ENDPOINT, "/33000/0/30", SingleResource(30, OPAQUE, read_binary.encode()))
        )
    assert refused.value.code == 0x80  # 4.00, with the reason
    assert "only proprietary-class commands" in refused.value.diagnostic
    with pytest.raises(ErrorResponse) as target:
        await bounded(
            server.write(ENDPOINT, "/33000/0/31", SingleResource(31, STRING, "A0000000871002FF"))
        )
    assert target.value.code == 0x80
    assert "not allowed on this client" in target.value.diagnostic
    with pytest.raises(ErrorResponse) as early:
        await bounded(server.execute(ENDPOINT, "/33000/0/32"))
    assert early.value.code == 0x85  # 4.05: no script yet


async def test_without_targets_the_relay_is_off(admin_stack: Stack) -> None:
    component = PcscComponent(VirtualUicc(VseState.default()).process)
    await admin_stack.start_client(secure_component=component)
    server = admin_stack.server
    instance = await bounded(server.read(ENDPOINT, "/33000/0"))
    assert not {30, 31, 32, 33, 34, 35} & set(instance.content.resources)  # type: ignore[union-attr]
    with pytest.raises(ErrorResponse) as refused:
        await bounded(server.execute(ENDPOINT, "/33000/0/32"))
    assert refused.value.code in (0x84, 0x85)
