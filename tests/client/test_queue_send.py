"""Queue mode (Transport §6.4; LwM2M-TS-Core 1.1 §6.5 awake window, Notification Storing /1/x/6)
and Send (§6.4.6, Mute Send /1/x/23)."""

from __future__ import annotations

import pytest

from lwm2m.client.events import Awake, SendCompleted, Sleeping
from lwm2m.coap.numbers import Code
from lwm2m.codec import composite_codec_for
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.errors import LocalProtocolError
from lwm2m.model import Path
from lwm2m.model.registry import default_registry
from lwm2m.operations.requests import Register, Send, Update

from .helpers import WALL, Harness, code, config, server


def queued(**extra: object) -> Harness:
    h = Harness(config(server(101, lifetime=3600, **extra), queue_mode=True, awake_time=93))
    h.register_all()
    return h


def test_sleeps_after_the_awake_window() -> None:
    h = queued()
    h.advance(92)
    assert h.take_events(Sleeping) == []
    # a request from the server restarts the window
    assert code(h.request(Code.GET, "/3/0/0")) == "2.05"
    h.advance(92)
    assert h.take_events(Sleeping) == []
    h.advance(1)
    assert h.take_events(Sleeping) == [Sleeping(101)]
    assert h.engine.registrations[101].sleeping


def test_notifications_are_stored_and_sent_after_the_wake_up_update() -> None:
    h = queued()
    assert code(h.request(Code.GET, "/3/0/9", observe=0, token=b"t")) == "4.04"
    h.tree[3].set(9, 80)
    assert code(h.request(Code.GET, "/3/0/9", observe=0, token=b"t")) == "2.05"
    h.advance(93)
    assert h.take_events(Sleeping) == [Sleeping(101)]
    h.tree[3].set(9, 70)
    h.advance(0)
    h.tree[3].set(9, 60)
    h.advance(0)
    assert h.take_notifications() == []  # stored
    (update,) = h.take(Update)  # the CON Update that wakes the client up
    h.tree[3].set(9, 50)
    h.advance(0)
    h.respond(update)
    assert h.take_events(Awake) == [Awake(101)]
    payloads = [n.message.payload for n in h.take_notifications()]
    assert payloads == [b"70", b"60", b"50"]


def test_notifications_dropped_without_notification_storing() -> None:
    h = queued(notification_storing=False)
    h.tree[3].set(9, 80)
    h.request(Code.GET, "/3/0/9", observe=0, token=b"t")
    h.advance(93)
    h.tree[3].set(9, 70)
    h.advance(0)
    (update,) = h.take(Update)
    h.respond(update)
    assert h.take_notifications() == []


def test_update_due_wakes_the_client() -> None:
    h = queued()
    h.advance(93)
    assert h.engine.registrations[101].sleeping
    h.advance(3600)
    (update,) = h.take(Update)[:1]
    h.respond(update)
    assert not h.engine.registrations[101].sleeping


def test_register_carries_the_queue_flag_from_a_1_0_binding() -> None:
    h = Harness(config(server(101, binding="UQ")))
    h.start()
    (register,) = h.take(Register)
    assert register.message.uri_query[-2:] == ("b=U", "Q")


def test_send() -> None:
    acl = [{"object": 3, "instance": 0, "owner": 101, "rights": {"0": "R"}}]
    h = Harness(config(server(101), server(102, mute_send=True), server(103), acl=acl))
    h.register_all()
    ids = h.engine.send([Path(3, 0, 0), Path(3, 0, 1), Path(0, 0)], h.now, timestamp=WALL)
    requests = h.take(Send)
    assert sorted(r.connection.short_server_id for r in requests) == [101, 103]
    assert [r.request_id for r in requests] == ids
    message = requests[0].message
    assert (message.code, message.uri_path, message.content_format) == (
        Code.POST,
        ("dp",),
        CF.SENML_CBOR,
    )
    (group,) = composite_codec_for(CF.SENML_CBOR).decode_timestamped(
        message.payload, default_registry()
    )
    assert group.timestamp == WALL
    assert set(group.nodes) == {Path(3, 0, 0), Path(3, 0, 1)}  # /0 is never sent
    h.respond(requests[0])
    h.fail(requests[1])
    completed = h.take_events(SendCompleted)
    assert [(e.short_server_id, e.success) for e in completed] == [(101, True), (103, False)]


def test_send_is_muted_by_default_and_needs_registration() -> None:
    h = Harness(config(server(101, mute_send=None)))
    h.start()
    with pytest.raises(LocalProtocolError):
        h.engine.send([Path(3, 0, 0)], h.now)
    h.register_all()
    with pytest.raises(LocalProtocolError):
        h.engine.send([Path(3, 0, 0)], h.now)  # /1/x/23 absent: muted
    assert code(h.request(Code.PUT, "/1/0/23", payload=b"0", cf=CF.TEXT)) == "2.04"
    assert len(h.engine.send([Path(3, 0, 0)], h.now, short_server_id=101)) == 1


def test_send_while_sleeping_wakes_first() -> None:
    h = queued()
    h.advance(93)
    h.engine.send([Path(3, 0, 0)], h.now)
    kinds = [type(r.operation) for r in h.take()]
    assert kinds == [Update, Send]


def test_send_skips_a_server_registered_as_1_0() -> None:
    """Send is a 1.1 operation (Core §6.4.6): a server that accepted only a 1.0 Register gets
    none, the others still do."""
    acl = [{"object": 3, "instance": 0, "owner": 101, "rights": {"0": "R"}}]
    h = Harness(config(server(101, mute_send=False), server(102, mute_send=False), acl=acl))
    h.start()
    for request in h.take(Register):
        if request.connection.short_server_id == 101:
            h.respond(request, Code.PRECONDITION_FAILED)
            (request,) = h.take(Register)
        h.respond(request, Code.CREATED, location=("rd", f"r{request.connection.short_server_id}"))
    assert h.engine.registrations[101].version == "1.0"
    assert len(h.engine.send([Path(3, 0, 0)], h.now)) == 1
    (sent,) = h.take(Send)
    assert sent.connection.short_server_id == 102
    with pytest.raises(LocalProtocolError):
        h.engine.send([Path(3, 0, 0)], h.now, short_server_id=101)
