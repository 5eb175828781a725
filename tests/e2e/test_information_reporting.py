"""Composite operations, Observe (single and composite) with notifications and cancel, Send
(and Mute Send), end to end."""

from __future__ import annotations

import pytest

from lwm2m.client.objects import Device
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.errors import LocalProtocolError
from lwm2m.io.lwm2m_client import LwM2MClient
from lwm2m.model import MultipleResource, Path, ResourceInstance, ResourceType, SingleResource
from lwm2m.server.errors import ErrorResponse
from lwm2m.server.events import NotificationReceived, ObservationEnded, SendReceived

from .conftest import ENDPOINT, Stack, bounded

STR, INT = ResourceType.STRING, ResourceType.INTEGER


def device(client: LwM2MClient) -> Device:
    handler = client.objects[3]
    assert isinstance(handler, Device)
    return handler


@pytest.mark.parametrize("cf", [CF.SENML_JSON, CF.SENML_CBOR])
async def test_read_composite(stack: Stack, cf: CF) -> None:
    await stack.start_client(battery=77)
    response = await bounded(
        stack.server.read_composite(ENDPOINT, ["/3/0/9", "/1/0/1", "/3/0/11/0"], content_format=cf)
    )
    assert response.content_format is cf
    assert dict(response.composite or {}) == {
        Path(3, 0, 9): SingleResource(9, INT, 77),
        Path(1, 0, 1): SingleResource(1, INT, 300),
        Path(3, 0, 11, 0): ResourceInstance(0, INT, 0),
    }


async def test_read_composite_of_an_instance_and_a_multiple_resource(stack: Stack) -> None:
    await stack.start_client(battery=77)
    response = await bounded(stack.server.read_composite(ENDPOINT, ["/1/0", "/3/0/11"]))
    composite = response.composite or {}
    assert set(composite) == {Path(1, 0), Path(3, 0, 11)}
    assert composite[Path(3, 0, 11)] == MultipleResource.of(11, INT, {0: 0})


async def test_write_composite_is_atomic(stack: Stack) -> None:
    await stack.start_client()
    server = stack.server
    good = {
        Path(3, 0, 14): SingleResource(14, STR, "+03:00"),
        Path(3, 0, 15): SingleResource(15, STR, "Europe/Moscow"),
    }
    response = await bounded(server.write_composite(ENDPOINT, good))
    assert response.dotted_code == "2.04"
    read = await bounded(server.read_composite(ENDPOINT, list(good)))
    assert dict(read.composite or {}) == good
    # one bad record (a read-only resource): nothing is applied
    bad = {
        Path(3, 0, 14): SingleResource(14, STR, "+04:00"),
        Path(3, 0, 0): SingleResource(0, STR, "EVIL"),
    }
    with pytest.raises(ErrorResponse) as caught:
        await bounded(server.write_composite(ENDPOINT, bad, content_format=CF.SENML_JSON))
    assert caught.value.code >> 5 == 4
    read = await bounded(server.read_composite(ENDPOINT, ["/3/0/14", "/3/0/0"]))
    assert read.composite is not None
    assert read.composite[Path(3, 0, 14)] == SingleResource(14, STR, "+03:00")
    assert read.composite[Path(3, 0, 0)] == SingleResource(0, STR, "ACME")
    # one record on an instance that does not exist: nothing is applied either
    missing = {
        Path(3, 0, 14): SingleResource(14, STR, "+05:00"),
        Path(1, 9, 1): SingleResource(1, INT, 10),
    }
    with pytest.raises(ErrorResponse):
        await bounded(server.write_composite(ENDPOINT, missing))
    read = await bounded(server.read(ENDPOINT, "/3/0/14"))
    assert read.content == SingleResource(14, STR, "+03:00")


async def test_observe_notifications_and_cancel(stack: Stack) -> None:
    client = await stack.start_client(battery=100)
    handle = await bounded(stack.server.observe(ENDPOINT, "/3/0/9", accept=CF.SENML_JSON))
    assert handle.active
    assert handle.response is not None
    assert handle.response.content == SingleResource(9, INT, 100)
    for level in (90, 80):
        device(client).set(9, level)
        notification = await bounded(anext(handle))
        assert notification.content == SingleResource(9, INT, level)
        assert notification.content_format is CF.SENML_JSON
        event = await bounded(stack.events.wait_for(NotificationReceived))
        assert event.response == notification
        assert event.registration.endpoint == ENDPOINT
    assert [o.token for o in await stack.server.observations(ENDPOINT)] == [handle.token]
    # cancel (proactive GET with Observe=1): the client stops notifying
    await bounded(handle.cancel())
    ended = await bounded(stack.events.wait_for(ObservationEnded))
    assert ended.reason == "cancelled"
    assert await stack.server.observations(ENDPOINT) == []
    assert len(client.engine.observations) == 0
    device(client).set(9, 70)
    # a Read now shows the new value while no notification arrived
    assert (await bounded(stack.server.read(ENDPOINT, "/3/0/9"))).content == SingleResource(
        9, INT, 70
    )
    with pytest.raises(StopAsyncIteration):
        await bounded(anext(handle))


async def test_observe_an_instance_notifies_on_any_resource(stack: Stack) -> None:
    client = await stack.start_client(battery=50)
    handle = await bounded(stack.server.observe(ENDPOINT, "/3/0", accept=CF.TLV))
    device(client).set(9, 40)
    notification = await bounded(anext(handle))
    assert notification.content_format is CF.TLV
    assert notification.content.resources[9].value == 40
    # reactive cancel: forgotten at once; the next notification is answered with a Reset
    await bounded(handle.cancel(proactive=False))
    assert not handle.active
    assert await stack.server.observations(ENDPOINT) == []


async def test_observe_composite(stack: Stack) -> None:
    client = await stack.start_client(battery=60)
    handle = await bounded(
        stack.server.observe_composite(
            ENDPOINT, ["/3/0/9", "/3/0/16"], content_format=CF.SENML_CBOR
        )
    )
    assert handle.observation.composite
    assert handle.response is not None
    assert handle.response.composite is not None
    assert handle.response.composite[Path(3, 0, 9)] == SingleResource(9, INT, 60)
    device(client).set(9, 55)
    notification = await bounded(anext(handle))
    assert notification.composite is not None
    assert notification.composite[Path(3, 0, 9)] == SingleResource(9, INT, 55)
    assert notification.composite[Path(3, 0, 16)] == SingleResource(16, STR, "UQ")
    await bounded(handle.cancel())
    assert await stack.server.observations(ENDPOINT) == []


async def test_send_reaches_the_server_with_timestamps(stack: Stack) -> None:
    client = await stack.start_client(battery=42)
    (completed,) = await bounded(client.send([Path(3, 0, 9), Path(3, 0, 13)]))
    assert completed.success
    received = await bounded(stack.events.wait_for(SendReceived))
    assert received.registration.endpoint == ENDPOINT
    assert received.content_format is CF.SENML_CBOR
    (group,) = received.groups
    assert group.timestamp is not None
    assert group.nodes[Path(3, 0, 9)] == SingleResource(9, INT, 42)
    assert group.nodes[Path(3, 0, 13)].type is ResourceType.TIME


async def test_mute_send_is_respected(stack: Stack) -> None:
    muted = stack.config(account={"mute_send": True})
    client = await stack.start_client(muted)
    with pytest.raises(LocalProtocolError):
        await bounded(client.send([Path(3, 0, 9)]))
    # the server lifts the mute (/1/0/23): Send goes through
    unmute = SingleResource(23, ResourceType.BOOLEAN, False)
    await bounded(stack.server.write(ENDPOINT, "/1/0/23", unmute))
    (completed,) = await bounded(client.send([Path(3, 0, 9)]))
    assert completed.success
    received = await bounded(stack.events.wait_for(SendReceived))
    assert Path(3, 0, 9) in received.groups[0].nodes
