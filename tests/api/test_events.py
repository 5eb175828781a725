"""Observe through the API and ``GET /api/events`` (Server-Sent Events): every event kind,
the bounded queue, keep-alives, and a clean end on disconnect and on server stop."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from lwm2m.api import create_app
from lwm2m.client.objects import Device
from lwm2m.io.lwm2m_client import LwM2MClient
from lwm2m.model import Path
from lwm2m.operations.responses import Response
from lwm2m.server.events import (
    Awake,
    ComponentIdentified,
    NotificationReceived,
    Sleeping,
)
from lwm2m.server.observation import Observation

from .conftest import ENDPOINT, JSON, TIMEOUT, Stack, Thermometer, bounded, start_server
from .sse import EventStreamPeer

BASE = f"/api/clients/{ENDPOINT}"


def device(client: LwM2MClient) -> Device:
    found = client.objects[3]
    assert isinstance(found, Device)
    return found


async def test_observe_list_and_cancel(stack: Stack, api: httpx.AsyncClient) -> None:
    answer = await api.post(f"{BASE}/3/0/9/observe?format=senml-json")
    assert answer.status_code == 200
    body = answer.json()
    token = body.pop("token")
    assert body == {
        "path": "/3/0/9",
        "code": "2.05",
        "content": 100,
        "content_format": "senml-json",
        "active": True,
    }
    listed = (await api.get(f"{BASE}/observations")).json()
    assert [(o["token"], o["paths"], o["composite"], o["accept"]) for o in listed] == [
        (token, ["/3/0/9"], False, "senml-json")
    ]
    with stack.server.subscribe() as events:
        device(stack.clients[0]).set(9, 80)
        notified = await bounded(events.wait_for(NotificationReceived))
    assert notified.observation.token.hex() == token
    cancelled = await api.delete(f"{BASE}/3/0/9/observe")
    assert cancelled.status_code == 200
    assert [o["token"] for o in cancelled.json()] == [token]
    assert (await api.get(f"{BASE}/observations")).json() == []
    assert len(stack.clients[0].engine.observations) == 0
    again = await api.delete(f"{BASE}/3/0/9/observe")
    assert again.status_code == 404
    assert again.json() == {"error": f"{ENDPOINT}: no observation of /3/0/9"}


async def test_observe_errors(api: httpx.AsyncClient) -> None:
    answer = await api.post(f"{BASE}/42/observe")
    assert (answer.status_code, answer.json()["coap_code"]) == (404, "4.04")
    answer = await api.post(f"{BASE}/3/x/observe")
    assert answer.status_code == 400


async def test_events_of_a_clients_life(stack: Stack) -> None:
    app = create_app(stack.server)
    streams = app.state.event_streams
    before = asyncio.all_tasks()
    peer = EventStreamPeer(app)
    await peer.open()
    assert peer.status == 200
    assert peer.headers["content-type"].startswith("text/event-stream")
    assert peer.headers["cache-control"] == "no-cache"
    assert await peer.next_frame() == b": subscribed\n\n"
    assert len(streams.active) == 1

    client = await stack.start_client(objects=[Thermometer()])
    kind, data = await peer.next_event()
    assert kind == "registered"
    assert data["endpoint"] == ENDPOINT
    assert data["replaced"] is None
    assert data["registration"]["registration_id"] == data["registration_id"]
    assert data["registration"]["lwm2m_version"] == "1.1"

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=JSON
    ) as http:
        observed = await http.post(f"{BASE}/3/0/9/observe")
        assert observed.status_code == 200
        device(client).set(9, 80)
        kind, data = await peer.next_event()
        assert kind == "notification"
        assert (data["endpoint"], data["path"], data["code"]) == (ENDPOINT, "/3/0/9", "2.05")
        assert (data["content"], data["token"]) == (80, observed.json()["token"])
        assert data["content_format"] == "senml-cbor"

        # Observe-Composite (server API): the content is keyed by path
        await bounded(stack.server.observe_composite(ENDPOINT, ["/3/0/9", "/3/0/0"]))
        device(client).set(9, 70)
        composite = None
        while composite is None:
            kind, data = await peer.next_event("notification")
            if isinstance(data["content"], dict):
                composite = data["content"]
        assert composite == {"/3/0/9": 70, "/3/0/0": "ACME"}

        assert (await http.delete(f"{BASE}/3/0/9/observe")).status_code == 200
        kind, data = await peer.next_event("observe-ended")
        assert (data["paths"], data["reason"]) == (["/3/0/9"], "cancelled")

    await bounded(client.send([Path(3, 0, 9)]))
    kind, data = await peer.next_event("send")
    (group,) = data["groups"]
    assert group["content"] == {"/3/0/9": 70}
    assert isinstance(group["timestamp"], float | int)

    client.update()
    kind, data = await peer.next_event("updated")
    assert data["registration"]["endpoint"] == ENDPOINT

    await bounded(client.stop(grace=TIMEOUT))
    kind, data = await peer.next_event()
    assert (kind, data["endpoint"]) == ("deregistered", ENDPOINT)

    await peer.disconnect()
    assert not streams.active
    assert not stack.server.events._subscriptions - {stack.events}
    assert not asyncio.all_tasks() - before  # nothing of the stream outlives it


async def test_expired_and_queue_mode_events(stack: Stack) -> None:
    app = create_app(stack.server)
    peer = EventStreamPeer(app)
    await peer.open()
    await peer.next_frame()
    await stack.start_client()
    _, registered = await peer.next_event("registered")
    registration = await stack.server.registration(ENDPOINT)
    assert registration is not None
    # presence and identification events, published as the server would
    stack.server.events.publish(Awake(registration))
    stack.server.events.publish(Sleeping(registration))
    stack.server.events.publish(ComponentIdentified(registration, ()))
    assert (await peer.next_event())[0] == "awake"
    assert (await peer.next_event())[0] == "sleeping"
    kind, data = await peer.next_event()
    assert (kind, data["components"]) == ("sc-identified", [])
    # the lifetime runs out
    await stack.server.expire_registrations(now=registration.expires_at() + 1)
    kind, data = await peer.next_event()
    assert (kind, data) == (
        "expired",
        {"endpoint": ENDPOINT, "registration_id": registered["registration_id"]},
    )
    await peer.disconnect()


async def test_a_slow_subscriber_loses_the_oldest_events(stack: Stack) -> None:
    app = create_app(stack.server, event_queue_size=2)
    peer = EventStreamPeer(app)
    await peer.open()
    assert await peer.next_frame() == b": subscribed\n\n"
    await stack.start_client()
    await peer.next_event("registered")
    registration = await stack.server.registration(ENDPOINT)
    assert registration is not None
    observation = Observation(b"\x01", registration.id, (Path(3, 0, 9),), False, None, 0.0)
    # five events at once: the consumer cannot keep up with a queue of two
    for _ in range(3):
        stack.server.events.publish(Awake(registration))
    stack.server.events.publish(Sleeping(registration))
    stack.server.events.publish(
        NotificationReceived(registration, observation, Response(0x45))  # no content
    )
    assert await peer.next_event() == ("dropped", {"dropped": 3})
    assert (await peer.next_event())[0] == "sleeping"
    kind, data = await peer.next_event()
    assert (kind, data["content"], data["content_format"]) == ("notification", None, None)
    await peer.disconnect()
    assert not app.state.event_streams.active


async def test_keepalive_comments_while_idle(stack: Stack) -> None:
    app = create_app(stack.server, event_keepalive=0.05)
    peer = EventStreamPeer(app)
    await peer.open()
    assert await peer.next_frame() == b": subscribed\n\n"
    assert await peer.next_frame() == b": keep-alive\n\n"
    await peer.disconnect()


async def test_the_stream_ends_when_the_server_stops() -> None:
    server = await start_server()
    app = create_app(server)
    peer = EventStreamPeer(app)
    try:
        await peer.open()
        assert await peer.next_frame() == b": subscribed\n\n"
    finally:
        await server.stop()
    assert await peer.next_frame() is None  # the body ended: the subscription closed
    assert peer.task is not None
    await bounded(peer.task)
    assert not app.state.event_streams.active


async def test_a_peer_gone_mid_write_ends_the_stream(stack: Stack) -> None:
    app = create_app(stack.server)
    peer = EventStreamPeer(app, send_error=ConnectionResetError("gone"))
    await peer.open()
    await bounded(peer.task)
    assert not app.state.event_streams.active


async def test_a_failing_send_is_not_swallowed(stack: Stack) -> None:
    app = create_app(stack.server)
    peer = EventStreamPeer(app, send_error=RuntimeError("broken ASGI server"))
    await peer.open()
    with pytest.raises(RuntimeError, match="broken ASGI server"):
        await bounded(peer.task)
    assert not app.state.event_streams.active


def test_stream_options_are_checked() -> None:
    from lwm2m.api.events import EventStreams

    with pytest.raises(ValueError, match="queue_size"):
        EventStreams(0, 1.0)
    with pytest.raises(ValueError, match="keepalive"):
        EventStreams(1, 0)
