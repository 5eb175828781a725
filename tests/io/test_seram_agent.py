"""The SERAM 2.0 Local Agent over HTTP (lwm2m.io.seram_agent, LwM2M-SCS-6) against a test
Remote Agent: a FastAPI app with the two routes of GlobalPlatform/SERAM ``spec/gpseram.yaml``
(POST ``/gp/seram/handshake`` and ``/gp/seram/remoteManagement``, ``sessionId`` in the query)
served by a real uvicorn on 127.0.0.1, and the in-memory VSE card behind ``PcscComponent``.

A session: the handshake, a Start Command, GET DATA CPLC on the ISD whose R-APDU comes back in the
next Report, a READ BINARY the relay refuses (UNGRANTED_ACCESS), then the Stop Command; and the
failures: 404/406/500 on the handshake, a 500 mid-session, a body that is not JSON, an answer
that does not come in time, a connection refused. The only pauses are the protocol's delays,
through an injected ``sleep`` that records them; every wait is bounded by :data:`TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import sys
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import httpx
import pytest
from fastapi import Response

from api.chromium import serve
from lwm2m.io.seram_agent import (
    SeramOutcome,
    SeramSessionError,
    run_local_agent,
    run_seram_session,
)
from lwm2m.secure.admin import ISD_AID, AdminScriptRefused
from lwm2m.secure.interfaces import ComponentType
from lwm2m.secure.pcsc import PcscComponent
from lwm2m.secure.pcsc.iotsafe import IOT_SAFE_AID
from lwm2m.secure.ram import CommandScript, ResponseScript
from lwm2m.secure.seram import (
    LocalAgent,
    LocalAgentStatus,
    Report,
    SecureElement,
    SeramError,
    SeType,
)
from pcsc.test_admin_scripts import GET_CPLC, Card
from secure.remote_agent import HANG, READ_BINARY, START, STOP, RemoteAgent, se_ram

TIMEOUT = 10.0
"""Bound on every session and wait."""


@pytest.fixture
async def agent_at() -> AsyncIterator[tuple[RemoteAgent, str]]:
    remote = RemoteAgent()
    try:
        async with serve(remote.app()) as base:
            yield remote, base + "/gp/seram"
            remote.release.set()  # a hanging answer ends before the server stops
    finally:
        remote.release.set()


class Sleeps:
    """The injected protocol pause: records the delays, sleeps for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


async def bounded(awaitable: Awaitable[SeramOutcome]) -> SeramOutcome:
    async with asyncio.timeout(TIMEOUT):
        return await awaitable


def cplc_answer() -> str:
    """The R-APDU of GET DATA CPLC on a fresh in-memory card, run directly."""
    component = PcscComponent(Card().transmit)
    script = CommandScript((GET_CPLC,))
    return component.run_admin_script(script, ISD_AID).responses[0].hex().upper()


async def session(
    base: str, card: Card | None = None, **options: Any
) -> tuple[SeramOutcome, PcscComponent]:
    card = card or Card()
    component = PcscComponent(card.transmit)
    info = await asyncio.to_thread(component.info)
    card.sent.clear()  # what follows is the session's
    options.setdefault("sleep", Sleeps())
    options.setdefault("retry_for", 0.0)
    outcome = await bounded(run_seram_session(base, component, ISD_AID, info, **options))
    return outcome, component


# -- a whole session ------------------------------------------------------------------------------


async def test_a_management_session(agent_at: tuple[RemoteAgent, str]) -> None:
    remote, base = agent_at
    remote.script = [
        START,
        se_ram(GET_CPLC.hex().upper(), delay=250),
        se_ram(READ_BINARY, delay=None),  # no delay: the binding's default pause, 1 s
        {"delay": 0, "ramCommands": [
            {"ramCommandType": "notificationCommand", "deviceAppNotification": "done"},
            {"ramCommandType": "ramStopCommand"},
        ]},
    ]  # fmt: skip
    card = Card()
    sleeps = Sleeps()
    notified: list[str] = []
    outcome, _ = await session(
        base, card, sleep=sleeps, session_id="0f96af97", on_notification=notified.append
    )

    assert remote.handshakes == [{
        "secureElements": [{"seType": "uicc", "seId": "8988211000000000003"}],
        "supportedTransportProtocols": ["HTTPS"],
        "supportedDataFormats": ["application/json"],
        "supportedVersions": ["2.0.0"],
    }]  # fmt: skip
    assert remote.reports[0] == {
        "localAgentStatus": {"localAgentStatusEnum": "POLLING", "executedSeRamCommands": 0}
    }
    assert remote.reports[1] == {
        "localAgentStatus": {"localAgentStatusEnum": "PROCESSED", "executedSeRamCommands": 0}
    }
    assert remote.reports[2] == {
        "localAgentStatus": {"localAgentStatusEnum": "PROCESSED", "executedSeRamCommands": 1},
        "ramResponses": [{"ramResponseType": "seRamResponse", "listOfRAPDU": [cplc_answer()]}],
    }
    assert remote.reports[2]["ramResponses"][0]["listOfRAPDU"][0].startswith("9F7F")
    refused = Report.decode(json.dumps(remote.reports[3]).encode())
    assert refused.status is LocalAgentStatus.UNGRANTED_ACCESS
    assert refused.executed_se_ram_commands == 0
    assert refused.ram_responses == ()
    assert refused.error_msg == (
        "refused by the Local Agent's relay policy: command 1 (00 B0 00 00): only GlobalPlatform "
        "security-domain commands and SELECT of the target security domain are relayed"
    )
    assert len(remote.reports) == 4  # none after the Stop Command
    assert not any(apdu[1] == 0xB0 for apdu in card.sent)  # READ BINARY never reached the card
    assert card.channels == {0, 1}  # the admin channel is closed at the end
    assert sleeps.delays == [0.0, 0.25, 1.0]
    assert notified == ["done"]
    assert outcome == SeramOutcome(
        session_id="0f96af97",
        rounds=4,
        se_ram_commands=1,
        rapdus=1,
        errors=(refused.error_msg,),
        notifications=("done",),
        last_status=LocalAgentStatus.UNGRANTED_ACCESS,
        completed=True,
    )
    assert remote.sessions == {"0f96af97"}
    assert remote.cookies == ["0f96af97"] * 4  # the cookie set at the handshake comes back
    assert set(remote.content_types) == {"application/json"}


async def test_a_random_session_id_per_session(agent_at: tuple[RemoteAgent, str]) -> None:
    remote, base = agent_at
    remote.script = [START, STOP, START, STOP]
    first, _ = await session(base)
    second, _ = await session(base)
    assert first.session_id != second.session_id
    assert remote.sessions == {first.session_id, second.session_id}
    assert first.completed
    assert second.completed


async def test_a_given_client_in_process(agent_at: tuple[RemoteAgent, str]) -> None:
    """run_local_agent with the caller's client (here over ASGI, no socket): not closed after."""
    remote, _ = agent_at
    remote.script = [START, se_ram(GET_CPLC.hex()), STOP]
    transport = httpx.ASGITransport(app=remote.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://ra") as client:
        agent = LocalAgent([SecureElement(SeType.ESE, "1")], session_id="in-process")
        outcome = await bounded(
            run_local_agent(
                "http://ra/gp/seram/", agent, lambda capdus: ResponseScript(1, (b"\x90\x00",)),
                client=client, sleep=Sleeps(),
            )
        )  # fmt: skip
        assert not client.is_closed
    assert (outcome.rounds, outcome.se_ram_commands, outcome.completed) == (3, 1, True)
    assert remote.reports[2]["ramResponses"] == [
        {"ramResponseType": "seRamResponse", "listOfRAPDU": ["9000"]}
    ]


# -- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "Handshake: HTTP 404, the Remote Agent does not know the session id"),
        (406, "Handshake: HTTP 406, the Remote Agent cannot fulfil the Local Agent's proposal"),
        (500, "Handshake: HTTP 500, unknown server error"),
    ],
)
async def test_handshake_errors(
    agent_at: tuple[RemoteAgent, str], status: int, message: str
) -> None:
    remote, base = agent_at
    remote.handshake_status = status
    with pytest.raises(SeramSessionError) as caught:
        await session(base)
    assert str(caught.value) == message
    assert caught.value.status == status
    assert caught.value.outcome is not None
    assert caught.value.outcome.rounds == 0
    assert not caught.value.outcome.completed
    assert remote.reports == []


async def test_a_server_error_mid_session(agent_at: tuple[RemoteAgent, str]) -> None:
    remote, base = agent_at
    remote.script = [START, se_ram(GET_CPLC.hex()), Response(status_code=500)]
    card = Card()
    with pytest.raises(SeramSessionError) as caught:
        await session(base, card)
    assert str(caught.value) == "Order: HTTP 500, unknown server error"
    assert caught.value.status == 500
    outcome = caught.value.outcome
    assert outcome is not None
    assert (outcome.rounds, outcome.se_ram_commands, outcome.completed) == (3, 1, False)
    assert card.channels == {0, 1}  # the admin channel was opened, and closed at the end


async def test_a_forgotten_session_is_404(agent_at: tuple[RemoteAgent, str]) -> None:
    remote, base = agent_at
    remote.script = [START]
    sleeps = Sleeps()

    async def forget(seconds: float) -> None:
        await sleeps(seconds)
        remote.sessions.clear()

    with pytest.raises(SeramSessionError) as caught:
        await session(base, sleep=forget)
    assert str(caught.value) == "Order: HTTP 404, the Remote Agent does not know the session id"
    assert caught.value.status == 404


async def test_a_body_that_is_not_json(agent_at: tuple[RemoteAgent, str]) -> None:
    remote, base = agent_at
    remote.script = [START, Response(b"<html>busy</html>", media_type="text/html")]
    with pytest.raises(SeramSessionError) as caught:
        await session(base)
    assert str(caught.value) == "Order: the body is not JSON (Expecting value: line 1 column 1)"
    assert caught.value.status is None


async def test_a_malformed_order_names_the_member(agent_at: tuple[RemoteAgent, str]) -> None:
    remote, base = agent_at
    remote.script = [START, {"ramCommands": [{"ramCommandType": "seRamCommand",
                                              "listOfCAPDU": ["80CA9F7F0"]}]}]  # fmt: skip
    card = Card()
    with pytest.raises(SeramSessionError) as caught:
        await session(base, card)
    assert str(caught.value) == (
        "Order.ramCommands[0].listOfCAPDU[0] is not hexadecimal (an even number of 0-9 A-F)"
    )
    assert not any(apdu[1] == 0xCA for apdu in card.sent)


async def test_an_answer_that_does_not_come(agent_at: tuple[RemoteAgent, str]) -> None:
    remote, base = agent_at
    remote.script = [START, HANG]
    with pytest.raises(SeramSessionError) as caught:
        await session(base, request_timeout=0.3)
    assert str(caught.value) == "Order 2: no answer from the Remote Agent within 0.3 s"
    outcome = caught.value.outcome
    assert outcome is not None
    assert outcome.rounds == 2


async def test_an_answer_too_large(agent_at: tuple[RemoteAgent, str]) -> None:
    remote, base = agent_at
    remote.script = [START, Response(b" " * (3 * 1024 * 1024), media_type="application/json")]
    with pytest.raises(SeramSessionError, match="Order 2: the answer exceeds 2097152 bytes"):
        await session(base)


async def test_no_stop_command(agent_at: tuple[RemoteAgent, str]) -> None:
    remote, base = agent_at
    remote.script = [START]  # then void Orders, for ever
    with pytest.raises(SeramSessionError, match="no Stop Command within 5 rounds"):
        await session(base, max_rounds=5)
    assert len(remote.reports) == 5


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_connection_refused() -> None:
    base = f"http://127.0.0.1:{closed_port()}/gp/seram"
    with pytest.raises(SeramSessionError) as caught:
        await session(base)
    assert str(caught.value).startswith(
        "Handshake: cannot connect to the Remote Agent (ConnectError: "
    )
    sleeps = Sleeps()
    with pytest.raises(SeramSessionError, match=r"retried for 7 s$"):
        await session(base, sleep=sleeps, retry_for=10.0)
    assert sleeps.delays == [1.0, 2.0, 4.0]  # then 8 s more would exceed the 10 s


async def test_a_target_the_relay_refuses_is_refused_first() -> None:
    base = f"http://127.0.0.1:{closed_port()}/gp/seram"
    component = PcscComponent(Card().transmit)
    info = component.info()
    with pytest.raises(AdminScriptRefused, match="would select the IoT SAFE applet"):
        await run_seram_session(base, component, IOT_SAFE_AID, info)


async def test_without_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    component = PcscComponent(Card().transmit)
    with pytest.raises(SeramSessionError, match=r"pip install 'lwm2m\[seram\]'"):
        await run_seram_session("http://ra", component, ISD_AID, component.info())
    agent = LocalAgent([SecureElement(SeType.UICC, "1")])
    with pytest.raises(SeramError, match=r"needs httpx: pip install 'lwm2m\[seram\]'"):
        await run_local_agent("http://ra", agent, lambda capdus: ResponseScript(0, ()))


async def test_a_connection_lost_after_sending() -> None:
    def lost(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    agent = LocalAgent([SecureElement(SeType.UICC, "1")])
    async with httpx.AsyncClient(transport=httpx.MockTransport(lost)) as client:
        with pytest.raises(SeramSessionError) as caught:
            await run_local_agent(
                "http://ra/gp/seram", agent, lambda capdus: ResponseScript(0, ()), client=client
            )
    assert str(caught.value) == (
        "Handshake: HTTP failure (RemoteProtocolError: peer closed connection)"
    )


async def test_a_component_that_is_no_secure_element() -> None:
    component = PcscComponent(Card().transmit)
    info = dataclasses.replace(component.info(), type=ComponentType.SOFTWARE)
    with pytest.raises(SeramSessionError, match="a software component is not a Secure Element"):
        await run_seram_session("http://ra", component, ISD_AID, info)
