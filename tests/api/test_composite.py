"""Write-Composite and Observe-Composite through the REST API against a real client, and their
error answers; the composite routes are not taken for a path named "composite"."""

from __future__ import annotations

import httpx

from lwm2m.server.events import NotificationReceived

from .conftest import ENDPOINT, Stack, bounded

BASE = f"/api/clients/{ENDPOINT}"


async def test_write_composite_then_read_back(api: httpx.AsyncClient) -> None:
    answer = await api.put(
        f"{BASE}/composite",
        json={"content": {"/3303/0/5750": "living room", "/1/0/1": 600}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"paths": ["/3303/0/5750", "/1/0/1"], "code": "2.04"}
    read = await api.post(f"{BASE}/composite", json={"paths": ["/3303/0/5750", "/1/0/1"]})
    assert read.json()["content"] == {"/3303/0/5750": "living room", "/1/0/1": 600}


async def test_write_composite_refusals(api: httpx.AsyncClient) -> None:
    bad_node = await api.put(f"{BASE}/composite", json={"content": {"/1/0/1": "long"}})
    assert bad_node.status_code == 400
    assert bad_node.json()["error"].startswith("bad node JSON: /1/0/1")
    bad_path = await api.put(f"{BASE}/composite", json={"content": {"/1/x": 1}})
    assert bad_path.status_code == 400
    assert "'/1/x'" in bad_path.json()["error"]
    empty = await api.put(f"{BASE}/composite", json={"content": {}})
    assert empty.status_code == 400
    # a read-only resource: the client refuses the whole (atomic) write
    kept = await api.put(f"{BASE}/composite", json={"content": {"/3303/0/5750": "kitchen"}})
    assert kept.status_code == 200
    refused = await api.put(
        f"{BASE}/composite", json={"content": {"/3303/0/5750": "x", "/3303/0/5700": 1.5}}
    )
    assert refused.status_code == 405, refused.text
    assert refused.json()["coap_code"] == "4.05"
    unchanged = await api.get(f"{BASE}/3303/0/5750")
    assert unchanged.json()["content"] == "kitchen"
    unknown = await api.put("/api/clients/nobody/composite", json={"content": {"/1/0/1": 1}})
    assert unknown.status_code == 404


async def test_observe_composite_notifies_and_cancels(stack: Stack, api: httpx.AsyncClient) -> None:
    answer = await api.post(f"{BASE}/composite/observe", json={"paths": ["/3303/0/5700"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["content"] == {"/3303/0/5700": 21.5}
    assert body["active"] is True
    listed = (await api.get(f"{BASE}/observations")).json()
    assert [(o["token"], o["composite"], o["paths"]) for o in listed] == [
        (body["token"], True, ["/3303/0/5700"])
    ]
    thermometer = stack.clients[0].objects[3303]  # type: ignore[attr-defined]
    thermometer.instance(0).set(5700, 22.0)
    note = await bounded(
        stack.events.wait_for(NotificationReceived, lambda e: e.observation.composite)
    )
    assert note.response.composite is not None
    cancelled = await api.delete(f"{BASE}/composite/observe")
    assert cancelled.status_code == 200
    assert [o["token"] for o in cancelled.json()] == [body["token"]]
    assert (await api.get(f"{BASE}/observations")).json() == []
    again = await api.delete(f"{BASE}/composite/observe")
    assert again.status_code == 404
    assert again.json() == {"error": f"{ENDPOINT}: no composite observation"}
