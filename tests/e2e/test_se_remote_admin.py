"""Remote administration of the Secure Element through /33000 end to end (SCS-3, SCS-6): our
LwM2M server acts as the admin server, writes remote APDU scripts (ETSI TS 102 226 expanded
format) to a real client whose ``pcsc:`` component runs on the VSE card OS (in memory), executes
them, observes the Admin Status and reads the Response Scripting Template; it opens its own
SCP03 secure channel with the card's Issuer Security Domain through the relay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.chromium import serve
from lwm2m.client import MemoryInstanceStore
from lwm2m.client.events import RegistrationUpdated
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.io.se_admin import AdminScriptFailed, end_admin_session, run_admin_script
from lwm2m.model import ResourceType, SingleResource
from lwm2m.model.registry import ModelRegistry
from lwm2m.secure.admin import ISD_AID, AdminStatus
from lwm2m.secure.object import SeramStatus, register_secure_component_object
from lwm2m.secure.pcsc import PcscComponent
from lwm2m.secure.pcsc.errors import CardRemoved
from lwm2m.secure.ram import CommandScript
from lwm2m.server.errors import ErrorResponse
from lwm2m.vse.state import VseState
from lwm2m.vse.uicc import VirtualUicc
from pcsc.test_admin_scripts import GET_CPLC, MISSING_DATA, OTHER_AID, Card, scp03_session
from secure.remote_agent import START, STOP, RemoteAgent, se_ram

from .conftest import ENDPOINT, Stack, bounded, registry, running_stack

OPAQUE, STRING = ResourceType.OPAQUE, ResourceType.STRING


def sc_registry() -> ModelRegistry:
    model = registry()
    register_secure_component_object(model)
    return model


@pytest.fixture
async def admin_stack() -> AsyncIterator[Stack]:
    async with running_stack(registry=sc_registry()) as stack:
        yield stack


async def start_admin_client(stack: Stack, **options: Any) -> Card:
    card = Card()
    await stack.start_client(
        secure_component=PcscComponent(card.transmit),
        admin_targets=(ISD_AID, OTHER_AID),
        **options,
    )
    return card


async def test_the_server_reads_the_cplc_through_the_isd(admin_stack: Stack) -> None:
    await start_admin_client(admin_stack)
    server = admin_stack.server
    listed = await server.read(ENDPOINT, "/33000/0/31")
    assert listed.content == SingleResource(31, STRING, "A000000151000000")
    outcome = await bounded(run_admin_script(server, ENDPOINT, CommandScript((GET_CPLC,))))
    assert outcome.status is AdminStatus.COMPLETED
    assert outcome.response.executed == 1
    assert outcome.response.responses[0][:2] == b"\x9f\x7f"
    assert outcome.response.responses[0][-2:] == b"\x90\x00"
    stopped = await bounded(
        run_admin_script(server, ENDPOINT, CommandScript((GET_CPLC, MISSING_DATA, GET_CPLC)))
    )
    assert stopped.status is AdminStatus.STOPPED
    assert stopped.response.executed == 2
    assert stopped.response.responses[-1] == b"\x6a\x88"
    await bounded(end_admin_session(server, ENDPOINT))


async def test_the_server_runs_scp03_with_the_card_through_the_client(
    admin_stack: Stack,
) -> None:
    await start_admin_client(admin_stack)
    server = admin_stack.server
    session = scp03_session()
    request = next(session)
    runs = 0
    while True:
        outcome = await bounded(run_admin_script(server, ENDPOINT, request, target=ISD_AID))
        assert outcome.status is AdminStatus.COMPLETED
        runs += 1
        try:
            request = session.send(outcome.response)
        except StopIteration as done:
            cplc: bytes = done.value
            break
    assert runs == 3  # INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, GET DATA under SCP03
    assert cplc[:2] == b"\x9f\x7f"
    direct = await bounded(server.read(ENDPOINT, "/33000/0/7"))
    identifiers = direct.content.values.values()  # type: ignore[union-attr]
    assert f"cplc:{cplc[3:].hex().upper()}" in identifiers  # what /33000/0/7 reports


async def test_a_script_that_cannot_run_is_an_admin_failure(admin_stack: Stack) -> None:
    # /1 and /2 in memory, so that the client can still report (see the next test)
    card = await start_admin_client(admin_stack, store=MemoryInstanceStore())
    server = admin_stack.server
    script = CommandScript((GET_CPLC,))
    with pytest.raises(AdminScriptFailed) as unknown:
        await bounded(run_admin_script(server, ENDPOINT, script, target=OTHER_AID))
    assert unknown.value.status is AdminStatus.UNKNOWN_APPLICATION
    assert "could not be selected" in str(unknown.value)
    card.fail_on = b"\xca"  # the card goes away during GET DATA
    with pytest.raises(AdminScriptFailed) as unavailable:
        await bounded(run_admin_script(server, ENDPOINT, script, target=ISD_AID))
    assert unavailable.value.status is AdminStatus.UNAVAILABLE
    assert str(unavailable.value) == f"{ENDPOINT}: the Secure Element is unavailable"


async def test_a_card_that_goes_away_does_not_stop_the_client(admin_stack: Stack) -> None:
    """/0, /1 and /2 on the card (the default with a component), and the card goes away: the
    client cannot decide access any more, so it answers 5.03 to every request and ends the
    observation of the admin status with one; it keeps running, and its registration stays
    alive (an Update lists the instances it last listed: none can change without the card)."""
    card = await start_admin_client(admin_stack)
    client = admin_stack.clients[-1]
    server = admin_stack.server
    card.fail_on = b"\xca"  # the card goes away during GET DATA
    with pytest.raises(AdminScriptFailed) as ended:
        await bounded(run_admin_script(server, ENDPOINT, CommandScript((GET_CPLC,))))
    assert ended.value.status is AdminStatus.UNAVAILABLE
    assert "observation of Admin Status ended" in str(ended.value)
    for path in ("/3/0/0", "/1/0/1", "/33000/0/34"):
        with pytest.raises(ErrorResponse) as refused:
            await bounded(server.read(ENDPOINT, path))
        assert refused.value.code == 0xA3  # 5.03
        assert refused.value.diagnostic == "the Secure Component is unavailable"
    client.update()
    updated = await bounded(client.wait_for(lambda e: isinstance(e, RegistrationUpdated)))
    assert isinstance(updated, RegistrationUpdated)


async def test_engine_work_failing_on_the_component_waits_for_a_back_off(
    admin_stack: Stack, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Due engine work that fails because the component is gone is not retried in a loop: the
    client logs the outage once and tries again after 1 s, then 2 s; once the work runs, it
    logs the recovery and the engine's own deadlines apply again."""
    await start_admin_client(admin_stack)
    client = admin_stack.clients[-1]
    loop = asyncio.get_running_loop()
    caplog.set_level(logging.INFO, logger="lwm2m.io.lwm2m_client")
    engine_timer = client.engine.handle_timer

    def card_gone(now: float) -> None:
        raise CardRemoved("IoT SAFE READ FILE directory: the card went away (TransportError)")

    # The engine's work stays due (a failed step leaves its deadline where it was), and the
    # client's clock is the time its timer was armed for, as when the loop runs it then.
    clock = [loop.time()]
    monkeypatch.setattr(client.engine, "handle_timer", card_gone)
    monkeypatch.setattr(client.engine, "get_timer", lambda: clock[0])
    monkeypatch.setattr(client, "_now", lambda: clock[0])
    waits = []
    for _ in range(3):
        client._on_timer()  # what the loop runs when the engine's work is due
        assert client._timer_at is not None
        waits.append(client._timer_at - clock[0])
        clock[0] = client._timer_at
    assert waits == [1.0, 2.0, 4.0]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Secure Component is unavailable" in m for m in messages) == 1
    monkeypatch.undo()
    assert client.engine.handle_timer == engine_timer
    client._on_timer()
    assert "the Secure Component is available again" in [r.getMessage() for r in caplog.records]
    assert client._timer_at == client.engine.get_timer()


async def test_refused_writes_and_a_disabled_relay(admin_stack: Stack) -> None:
    await start_admin_client(admin_stack)
    server = admin_stack.server
    read_binary = CommandScript((bytes.fromhex("00B0000000"),))
    with pytest.raises(ErrorResponse) as refused:
        await bounded(
            server.write(ENDPOINT, "/33000/0/30", SingleResource(30, OPAQUE, read_binary.encode()))
        )
    assert refused.value.code == 0x80  # 4.00, with the reason
    assert "only GlobalPlatform security-domain commands" in refused.value.diagnostic
    with pytest.raises(ErrorResponse) as target:
        await bounded(
            server.write(ENDPOINT, "/33000/0/31", SingleResource(31, STRING, "A0000000041010"))
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


async def test_the_server_starts_a_seram_session_with_a_remote_agent(admin_stack: Stack) -> None:
    """SCS-6: the server points the client's Local Agent at a GP SERAM 2.0 Remote Agent and
    starts the session through /33000/0/36-38; the Remote Agent's GET DATA CPLC runs on the
    card through the relay, its R-APDU comes back in the next Report."""
    remote = RemoteAgent(script=[START, se_ram(GET_CPLC.hex().upper()), STOP])
    async with serve(remote.app()) as base:
        url = base + "/gp/seram"
        await start_admin_client(admin_stack, seram_agents=(url,))
        server = admin_stack.server
        assert (await bounded(server.read(ENDPOINT, "/33000/0/36"))).content == SingleResource(
            36, STRING, url
        )
        status = await bounded(server.observe(ENDPOINT, "/33000/0/38", accept=CF.SENML_CBOR))
        await bounded(server.execute(ENDPOINT, "/33000/0/37", "0='e2e-session'"))
        while True:
            notification = await bounded(anext(status))
            value = SeramStatus(notification.content.value)  # type: ignore[union-attr]
            if value is not SeramStatus.RUNNING:
                break
        await bounded(status.cancel())
    assert value is SeramStatus.COMPLETED
    assert remote.sessions == {"e2e-session"}
    (handshake,) = remote.handshakes
    assert handshake["secureElements"][0]["seType"] == "uicc"
    returned = [r for report in remote.reports for r in report.get("ramResponses", [])]
    assert len(returned) == 1
    (rapdu,) = returned[0]["listOfRAPDU"]
    assert rapdu.startswith("9F7F")
    assert rapdu.endswith("9000")


async def test_a_remote_agent_must_be_one_the_client_knows(admin_stack: Stack) -> None:
    await start_admin_client(admin_stack, seram_agents=("https://ras.example/gp/seram",))
    with pytest.raises(ErrorResponse) as refused:
        await bounded(
            admin_stack.server.write(
                ENDPOINT,
                "/33000/0/36",
                SingleResource(36, STRING, "https://attacker.example/gp/seram"),
            )
        )
    assert refused.value.code == 0x80
    assert "not a URL this client is configured for" in refused.value.diagnostic
