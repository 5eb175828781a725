"""Regression tests of reported client bugs (each failed before its fix).

1. An Observe that overtakes the 2.01 of the Register was dropped when the 2.01 was processed.
2. A Bootstrap-Delete that overtakes the 2.04 of the Bootstrap-Request started a spurious
   server-initiated bootstrap (new event, new snapshot).
3. Overlapping Read-Composite paths (``/3/0`` with ``/3/0/11/0``) were answered 5.00.
"""

from __future__ import annotations

from lwm2m.client.events import BootstrapFinished, BootstrapStarted, Registered
from lwm2m.client.objects import Device
from lwm2m.coap.numbers import Code
from lwm2m.codec import composite_codec_for
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.model import ObjectInstance, ObjectNode, Path, ResourceType, SingleResource
from lwm2m.operations.requests import BootstrapRequest, Register, Update

from .helpers import REGISTRY, Harness, bs_table, code, config, decode, encode

INT, STR, BOOL = ResourceType.INTEGER, ResourceType.STRING, ResourceType.BOOLEAN


def battery(h: Harness, level: int) -> None:
    device = h.tree[3]
    assert isinstance(device, Device)
    device.set(9, level)


def harness() -> Harness:
    h = Harness()
    battery(h, 100)
    return h


# -- 1. Observe before the 2.01 of the Register ---------------------------------------------------


def test_observe_overtaking_the_register_response_is_kept() -> None:
    h = harness()
    h.start()
    (register,) = h.take(Register)
    # the server registered us and observes at once; its request arrives before its 2.01
    response = h.request(Code.GET, "/3/0/9", observe=0, token=b"early")
    assert code(response) == "2.05"
    h.respond(register, Code.CREATED, location=("rd", "r1"))
    assert h.take_events(Registered) == [Registered(101, "/rd/r1")]
    assert len(h.engine.observations) == 1
    battery(h, 55)
    h.advance(0)
    (notification,) = h.take_notifications()
    assert notification.token == b"early"
    assert decode(notification.message, "/3/0/9") == SingleResource(9, INT, 55)


def test_a_new_register_still_starts_without_observations() -> None:
    h = harness()
    h.register_all()
    assert code(h.request(Code.GET, "/3/0/9", observe=0, token=b"old")) == "2.05"
    h.engine.request_update(h.now)
    (update,) = h.take(Update)
    h.respond(update, Code.NOT_FOUND)  # the server forgot us: register again
    (register,) = h.take(Register)
    assert len(h.engine.observations) == 0  # cleared when the Register is sent
    assert code(h.request(Code.GET, "/3/0/9", observe=0, token=b"new")) == "2.05"
    h.respond(register, Code.CREATED, location=("rd", "r2"))
    assert [o.token for o in h.engine.observations] == [b"new"]


# -- 2. Bootstrap-Delete before the 2.04 of the Bootstrap-Request ---------------------------------


def test_bootstrap_operation_overtaking_the_request_response_is_no_new_bootstrap() -> None:
    h = Harness(config(bootstrap=bs_table()))
    h.start()
    assert h.take_events(BootstrapStarted) == [BootstrapStarted(server_initiated=False)]
    (request,) = h.take(BootstrapRequest)
    snapshot = h.engine.bootstrap.snapshot
    assert snapshot is not None
    assert code(h.bs(Code.DELETE, "/")) == "2.02"  # before the 2.04 of the request
    assert h.take_events(BootstrapStarted) == []
    assert h.engine.bootstrap.snapshot is snapshot
    h.respond(request, Code.CHANGED)
    security = ObjectInstance(
        1,
        [
            SingleResource(0, STR, "coap://127.0.0.1:5701"),
            SingleResource(1, BOOL, False),
            SingleResource(2, INT, 3),
            SingleResource(10, INT, 101),
        ],
    )
    server_instance = ObjectInstance(
        0, [SingleResource(0, INT, 101), SingleResource(1, INT, 60), SingleResource(7, STR, "U")]
    )
    path = "/0"
    payload = encode(ObjectNode(0, [security]), path)
    assert code(h.bs(Code.PUT, path, payload=payload, cf=CF.TLV)) == "2.04"
    payload = encode(server_instance, "/1/0")
    assert code(h.bs(Code.PUT, "/1/0", payload=payload, cf=CF.TLV)) == "2.04"
    assert code(h.bs(Code.POST, "/bs")) == "2.04"
    assert h.take_events(BootstrapStarted) == []
    assert h.take_events(BootstrapFinished)[-1] == BootstrapFinished()
    (register,) = h.take(Register)
    assert register.connection.short_server_id == 101


# -- 3. Overlapping Read-Composite paths ----------------------------------------------------------


def composite(h: Harness, *paths: Path, observe: int | None = None) -> tuple[str, dict]:  # type: ignore[type-arg]
    codec = composite_codec_for(CF.SENML_CBOR)
    response = h.request(
        Code.FETCH,
        "",
        payload=codec.encode_paths(list(paths)),
        cf=CF.SENML_CBOR,
        observe=observe,
        token=b"c",
    )
    if response.code >> 5 != 2:
        return code(response), {}
    return code(response), dict(codec.decode_nodes(response.payload, REGISTRY))


def test_overlapping_composite_paths_are_merged() -> None:
    h = harness()
    h.register_all()
    status, nodes = composite(h, Path(3, 0), Path(3, 0, 11, 0), Path(1, 0, 1))
    assert status == "2.05"
    assert Path(3, 0, 11, 0) in nodes  # carried once, inside /3/0
    assert nodes[Path(3, 0, 0)] == SingleResource(0, STR, "ACME")
    assert nodes[Path(1, 0, 1)] == SingleResource(1, INT, 300)
    # the narrower path first changes nothing
    status, again = composite(h, Path(3, 0, 11, 0), Path(3, 0))
    assert status == "2.05"
    assert again == {p: n for p, n in nodes.items() if p.object_id == 3}


def test_overlap_with_a_failing_wider_path_reads_the_narrower_one() -> None:
    h = harness()
    h.register_all()
    status, nodes = composite(h, Path(3, 7), Path(3, 0, 9))  # /3/7 does not exist
    assert status == "2.05"
    assert set(nodes) == {Path(3, 0, 9)}


def test_observe_composite_with_overlapping_paths() -> None:
    h = harness()
    h.register_all()
    status, nodes = composite(h, Path(3, 0), Path(3, 0, 9), observe=0)
    assert status == "2.05"
    assert Path(3, 0, 9) in nodes
    battery(h, 12)
    h.advance(0)
    (notification,) = h.take_notifications()
    notified = composite_codec_for(CF.SENML_CBOR).decode_nodes(
        notification.message.payload, REGISTRY
    )
    assert notified[Path(3, 0, 9)] == SingleResource(9, INT, 12)


# -- 1, end to end: Observe from the server's Registered listener ---------------------------------


async def test_observe_made_on_registered_is_not_lost() -> None:
    import asyncio

    from lwm2m.client import parse_config
    from lwm2m.io.lwm2m_client import LwM2MClient
    from lwm2m.io.lwm2m_server import LwM2MServer
    from lwm2m.server import events as server_events

    server = LwM2MServer(expiry_interval=None)
    await server.start(("127.0.0.1", 0))
    host, port = server.local_address
    cfg = parse_config(
        {
            "endpoint": "race",
            "bind": "127.0.0.1:0",
            "servers": [{"uri": f"coap://{host}:{port}", "short_server_id": 1, "lifetime": 300}],
        }
    )
    client = LwM2MClient(cfg)
    device = client.objects[3]
    assert isinstance(device, Device)
    device.set(9, 80)
    observing: list[asyncio.Task[object]] = []
    started = asyncio.Event()

    def on_event(event: object) -> None:
        if isinstance(event, server_events.Registered):  # observe at once
            observing.append(asyncio.ensure_future(server.observe("race", "/3/0/9")))
            started.set()

    server.add_listener(on_event)
    try:
        with server.subscribe() as events:
            async with asyncio.timeout(5):
                await client.start()
                await client.wait_registered()
                await started.wait()
                await observing[0]
                device.set(9, 42)
                notification = await events.wait_for(server_events.NotificationReceived)
        assert notification.response.content == SingleResource(9, INT, 42)
    finally:
        await client.stop(grace=1.0)
        await server.stop()
