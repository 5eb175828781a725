"""``POST /api/clients/{endpoint}/admin-script``: a remote APDU script run on a real client's
Secure Element (the VSE card OS in memory behind a ``pcsc:`` component) through /33000/x/30-35,
with every way it can fail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from lwm2m.client import MemoryInstanceStore
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.secure.admin import ISD_AID
from lwm2m.secure.object import register_secure_component_object
from lwm2m.secure.pcsc import PcscComponent
from pcsc.test_admin_scripts import GET_CPLC, MISSING_DATA, OTHER_AID, Card

from .conftest import ENDPOINT, JSON, Stack, registry, start_server

URL = f"/api/clients/{ENDPOINT}/admin-script"


@pytest.fixture
async def card_stack() -> AsyncIterator[tuple[Stack, Card]]:
    model = registry()
    register_secure_component_object(model)
    server: LwM2MServer = await start_server(registry=model)
    stack = Stack(server)
    card = Card()
    try:
        await stack.start_client(
            secure_component=PcscComponent(card.transmit),
            admin_targets=(ISD_AID, OTHER_AID),
            store=MemoryInstanceStore(),  # /1, /2 off the card: the client outlives a lost card
        )
        yield stack, card
    finally:
        await stack.close()
        await server.stop()


@pytest.fixture
async def http(card_stack: tuple[Stack, Card]) -> AsyncIterator[httpx.AsyncClient]:
    async with card_stack[0].http() as client:
        yield client


async def test_a_script_runs_and_answers_its_r_apdus(
    card_stack: tuple[Stack, Card], http: httpx.AsyncClient
) -> None:
    answer = await http.post(URL, json={"commands": [GET_CPLC.hex(), MISSING_DATA.hex()]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "stopped"
    assert body["executed"] == 2
    cplc, unknown = body["responses"]
    assert cplc["sw"] == "9000"
    assert cplc["data"].startswith("9F7F")
    assert unknown == {"data": "", "sw": "6A88"}
    complete = await http.post(
        URL, json={"commands": [GET_CPLC.hex()], "target": "a000000151000000"}
    )
    assert complete.json()["status"] == "completed"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"commands": ["00B0000000"]}, 400, "only GlobalPlatform security-domain commands"),
        ({"commands": ["80CA"]}, 400, "commands: "),  # shorter than a C-APDU header
        ({"commands": ["80CA9F7F0"]}, 400, "invalid request: body.commands.0"),
        ({"commands": []}, 400, "invalid request: body.commands"),
        ({"commands": [GET_CPLC.hex()], "target": "A0000000041010"}, 400, "not allowed"),
        ({"commands": [GET_CPLC.hex()], "target": OTHER_AID.hex()}, 422, "could not be selected"),
        ({"commands": [GET_CPLC.hex()], "instance": 1}, 404, "4.04"),
    ],
)
async def test_what_cannot_run_is_answered_specifically(
    http: httpx.AsyncClient, body: dict[str, object], status: int, message: str
) -> None:
    answer = await http.post(URL, json=body, headers=JSON)
    assert answer.status_code == status, answer.text
    assert message in answer.text


async def test_a_lost_card_is_503(card_stack: tuple[Stack, Card], http: httpx.AsyncClient) -> None:
    card_stack[1].fail_on = b"\xca"
    answer = await http.post(URL, json={"commands": [GET_CPLC.hex()]})
    assert answer.status_code == 503
    assert answer.json() == {"error": f"{ENDPOINT}: the Secure Element is unavailable"}


async def test_an_unknown_client_is_404(http: httpx.AsyncClient) -> None:
    answer = await http.post("/api/clients/nobody/admin-script", json={"commands": ["80CA9F7F00"]})
    assert answer.status_code == 404
