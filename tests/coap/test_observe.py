"""RFC 7641 Observe in both roles, in memory with a fake clock."""

from __future__ import annotations

import pytest

from lwm2m.coap import (
    CoapEngine,
    CoapUsageError,
    Code,
    Message,
    MessageType,
    NotificationReceived,
    Observation,
    ObservationEnded,
    ObserverRemoved,
    RequestReceived,
    ResponseReceived,
    is_fresh,
    next_sequence,
)

from .helpers import CLIENT, SERVER, Net, Wire, exact_config

CON, NON, ACK, RST = MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST


def observe_setup(**server_kw: object) -> tuple[Net, CoapEngine, CoapEngine, int, Observation]:
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, exact_config(**server_kw), seed=2)  # type: ignore[arg-type]
    rid = client.send_request(Message(Code.GET, uri_path="/3/0/9", observe=0), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.observe == 0
    obs = server.send_response(ev.exchange, Message(Code.CONTENT, b"v0", observe=0), net.now)
    assert obs is not None
    net.flush()
    (first,) = net.take(CLIENT)
    assert isinstance(first, ResponseReceived)
    assert first.response.observe == 1  # the first number is 1, never 0 (see engine)
    return net, client, server, rid, obs


def notifications(net: Net) -> list[bytes]:
    return [e.response.payload for e in net.take(CLIENT) if isinstance(e, NotificationReceived)]


def test_register_and_receive_notifications_with_rising_sequence() -> None:
    net, _client, server, rid, obs = observe_setup()
    assert obs.resource == ("3", "0", "9")
    assert obs.remote == CLIENT
    assert obs.active
    assert server.observations() == [obs]
    assert server.observations(("3", "0", "9")) == [obs]
    for i in range(1, 4):
        assert server.notify(obs, Message(Code.CONTENT, b"v%d" % i), net.now)
        net.flush()
    evs = net.take(CLIENT)
    assert [e.request_id for e in evs] == [rid] * 3  # type: ignore[union-attr]
    assert [e.response.observe for e in evs] == [2, 3, 4]  # type: ignore[union-attr]
    assert [e.response.payload for e in evs] == [b"v1", b"v2", b"v3"]  # type: ignore[union-attr]
    # NON by default (configurable)
    assert {w.msg.mtype for w in net.sent_by(SERVER)[1:]} == {NON}
    assert "3/0/9" in repr(obs)


def test_notifications_can_be_confirmable() -> None:
    net, _client, server, _, obs = observe_setup(notification_confirmable=True)
    server.notify(obs, Message(Code.CONTENT, b"a"), net.now)
    server.notify(obs, Message(Code.CONTENT, b"b"), net.now, confirmable=False)  # merged
    net.flush()
    kinds = [(w.msg.mtype, w.msg.payload) for w in net.sent_by(SERVER)[1:]]
    assert kinds == [(CON, b"a"), (NON, b"b")]
    client_acks = [w.msg for w in net.sent_by(CLIENT)[1:]]
    assert [m.mtype for m in client_acks] == [ACK]
    assert notifications(net) == [b"a", b"b"]


def test_at_least_one_con_notification_every_24_hours() -> None:
    net, client, server, _, obs = observe_setup()
    server.notify(obs, Message(Code.CONTENT, b"early"), net.now)
    net.run_until(86_399.0)
    server.notify(obs, Message(Code.CONTENT, b"still NON"), net.now)
    net.run_until(86_401.0)
    server.notify(obs, Message(Code.CONTENT, b"CON now"), net.now)
    net.flush()
    server.notify(obs, Message(Code.CONTENT, b"NON again"), net.now)
    net.flush()
    kinds = [(w.msg.mtype, w.msg.payload) for w in net.sent_by(SERVER) if w.msg.payload]
    assert kinds[1:] == [
        (NON, b"early"),
        (NON, b"still NON"),
        (CON, b"CON now"),
        (NON, b"NON again"),
    ]
    del client


def test_merging_while_a_con_notification_is_in_flight() -> None:
    """Newer state replaces pending state: nothing queues (RFC 7641 §4.5.2)."""
    net, client, server, _, obs = observe_setup(notification_confirmable=True)
    for i in range(100):
        server.notify(obs, Message(Code.CONTENT, b"%d" % i), net.now)
    assert obs.in_flight
    assert obs.has_pending
    assert server.stats.notifications_merged == 98
    net.flush()
    assert notifications(net) == [b"0", b"99"]
    assert not obs.in_flight
    assert not obs.has_pending
    del client


def test_retransmission_carries_the_newest_state() -> None:
    net, client, server, _, obs = observe_setup(notification_confirmable=True)
    net.drop = lambda w: w.src == CLIENT  # ACKs get lost
    server.notify(obs, Message(Code.CONTENT, b"old"), net.now)
    net.flush()
    server.notify(obs, Message(Code.CONTENT, b"new"), net.now)
    net.run_until(2.0)
    sent = [w.msg for w in net.sent_by(SERVER)[1:]]
    assert [(m.mtype, m.payload) for m in sent] == [(CON, b"old"), (CON, b"new")]
    assert sent[1].observe == sent[0].observe + 1
    assert sent[1].mid != sent[0].mid
    net.drop = None
    net.run_until(6.0)  # next retransmission of "new" is acknowledged
    assert notifications(net)[-1] == b"new"
    assert not obs.in_flight
    del client


def test_unacknowledged_con_notification_removes_the_observer() -> None:
    net, _client, server, _, obs = observe_setup(notification_confirmable=True)
    net.drop = lambda w: w.src == CLIENT
    server.notify(obs, Message(Code.CONTENT, b"x"), net.now)
    net.run_until(100)
    assert len([w for w in net.sent_by(SERVER) if w.msg.payload == b"x"]) == 5
    (ev,) = net.take(SERVER)
    assert isinstance(ev, ObserverRemoved)
    assert ev.reason == "timeout"
    assert ev.observation is obs
    assert not obs.active
    assert server.observations() == []
    assert not server.notify(obs, Message(Code.CONTENT), net.now)


@pytest.mark.parametrize("confirmable", [True, False])
def test_reset_cancels_the_observation(confirmable: bool) -> None:
    """Reactive cancellation: the client forgets and answers the next notification with RST."""
    net, client, server, rid, obs = observe_setup()
    client.cancel_request(rid, net.now)
    server.notify(obs, Message(Code.CONTENT, b"x"), net.now, confirmable=confirmable)
    net.flush()
    assert net.sent_by(CLIENT)[-1].msg.mtype == RST
    (ev,) = net.take(SERVER)
    assert isinstance(ev, ObserverRemoved)
    assert ev.reason == "reset"
    assert net.take(CLIENT) == []


def test_get_with_observe_1_deregisters() -> None:
    net, client, server, rid, obs = observe_setup()
    client.cancel_observation(rid, net.now)
    client.cancel_observation(rid, net.now)  # already cancelling: no-op
    net.flush()
    events = net.take(SERVER)
    removed = [e for e in events if isinstance(e, ObserverRemoved)]
    assert [r.reason for r in removed] == ["deregistered"]
    assert not obs.active
    (req,) = [e for e in events if isinstance(e, RequestReceived)]
    assert req.exchange.request.observe == 1
    assert req.exchange.request.token == obs.token
    # the answer to a deregistration carries no Observe even if the app put one in
    server.send_response(req.exchange, Message(Code.CONTENT, b"last", observe=5), net.now)
    net.flush()
    (end,) = net.take(CLIENT)
    assert isinstance(end, ObservationEnded)
    assert end.request_id == rid
    assert end.response is not None
    assert end.response.payload == b"last"
    assert end.response.observe is None
    with pytest.raises(CoapUsageError):
        client.cancel_observation(rid, net.now)
    with pytest.raises(CoapUsageError):
        client.reregister(rid, net.now)


def test_deregistration_without_answer_ends_the_observation() -> None:
    net, client, server, rid, _ = observe_setup()
    net.drop = lambda w: w.src == CLIENT
    client.cancel_observation(rid, net.now)
    net.run_until(200)
    (end,) = net.take(CLIENT)
    assert isinstance(end, ObservationEnded)
    assert end.response is None
    del server


def test_error_notification_ends_the_observation_on_both_sides() -> None:
    net, client, server, rid, obs = observe_setup()
    server.notify(obs, Message(Code.NOT_FOUND), net.now)
    net.flush()
    (removed,) = net.take(SERVER)
    assert isinstance(removed, ObserverRemoved)
    assert removed.reason == "final"
    (end,) = net.take(CLIENT)
    assert isinstance(end, ObservationEnded)
    assert end.response is not None
    assert end.response.code == Code.NOT_FOUND
    assert end.request_id == rid
    # CON final notification is sent reliably
    net2, _c2, server2, _, obs2 = observe_setup()
    server2.notify(obs2, Message(Code.SERVICE_UNAVAILABLE), net2.now, confirmable=True)
    net2.flush()
    assert net2.sent_by(SERVER)[-1].msg.mtype == CON
    assert net2.sent_by(CLIENT)[-1].msg.mtype == ACK
    del client


def test_server_may_decline_an_observation() -> None:
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    client.send_request(Message(Code.GET, uri_path="/x", observe=0), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert server.send_response(ev.exchange, Message(Code.CONTENT, b"plain"), net.now) is None  # type: ignore[union-attr]
    net.flush()
    (resp,) = net.take(CLIENT)
    assert isinstance(resp, ResponseReceived)
    assert resp.response.observe is None
    assert client.pending_requests == 0
    # a non-observe request never registers even if the response has Observe
    client.send_request(Message(Code.GET, uri_path="/y"), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert server.send_response(ev.exchange, Message(Code.CONTENT, observe=3), net.now) is None  # type: ignore[union-attr]
    net.flush()
    (resp,) = net.take(CLIENT)
    assert resp.response.observe is None  # type: ignore[union-attr]


def test_reordered_notifications_are_dropped() -> None:
    """RFC 7641 §3.4 on the client: only fresh notifications are delivered."""
    _net, client, server, rid, obs = observe_setup()
    token = obs.token

    def feed(seq: int, mid: int, t: float) -> list[object]:
        msg = Message(Code.CONTENT, b"%d" % seq, mtype=NON, mid=mid, token=token, observe=seq)
        client.receive_datagram(msg.encode(), SERVER, t)
        client.datagrams_to_send(t)
        out = []
        while (e := client.next_event()) is not None:
            out.append(e)
        return out

    assert len(feed(5, 100, 1.0)) == 1
    assert feed(3, 101, 2.0) == []  # older
    assert feed(5, 102, 3.0) == []  # same value is not newer
    assert len(feed(0x800006, 103, 4.0)) == 0  # 2^23+1 ahead counts as older
    assert len(feed(3, 104, 200.0)) == 1  # > 128 s later anything is fresh
    assert client.stats.stale_notifications == 3
    assert len(feed(0xFFFFFF, 105, 201.0)) == 0  # 3 -> 0xFFFFFF is "older" (wrap rule)
    del server, rid


def test_freshness_rule_and_sequence_wrap() -> None:
    assert next_sequence(0xFFFFFF) == 0
    assert is_fresh(0xFFFFFF, 0.0, 0, 0.1)
    assert is_fresh(0, 0.0, 0x7FFFFF, 0.1)
    assert not is_fresh(0, 0.0, 0x800000, 0.1)
    assert not is_fresh(10, 0.0, 9, 128.0)
    assert is_fresh(10, 0.0, 9, 128.1)


def test_server_sequence_wraps_at_24_bits() -> None:
    net, client, server, _, obs = observe_setup()
    obs.sequence = 0x7FFFFE  # jumps of less than 2^23 keep the client's rule happy
    server.notify(obs, Message(Code.CONTENT, b"mid"), net.now)
    obs.sequence = 0xFFFFFD
    for i in range(4):
        server.notify(obs, Message(Code.CONTENT, b"%d" % i), net.now)
        net.flush()
    seqs = [e.response.observe for e in net.take(CLIENT)]  # type: ignore[union-attr]
    assert seqs == [0x7FFFFF, 0xFFFFFE, 0xFFFFFF, 0, 1]  # and the client accepted all
    del client


def test_reregistration_keeps_the_token_and_replaces_the_entry() -> None:
    net, client, server, rid, obs = observe_setup()
    server.notify(obs, Message(Code.CONTENT, b"a"), net.now)
    net.flush()
    client.reregister(rid, net.now)
    client.reregister(rid, net.now)  # already in transit: no second request
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.token == obs.token
    obs2 = server.send_response(ev.exchange, Message(Code.CONTENT, b"b", observe=0), net.now)
    assert obs2 is not None
    assert obs2 is not obs
    assert not obs.active
    assert obs2.sequence > obs.sequence
    assert server.observations() == [obs2]
    net.flush()
    assert notifications(net) == [b"a", b"b"]  # the re-registration answer is fresh
    server.notify(obs2, Message(Code.CONTENT, b"c"), net.now)
    net.flush()
    assert notifications(net) == [b"c"]


def test_failed_reregistration_removes_the_old_entry() -> None:
    net, client, server, rid, obs = observe_setup()
    client.reregister(rid, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    server.send_response(ev.exchange, Message(Code.CONTENT, b"no more"), net.now)  # type: ignore[union-attr]
    net.flush()
    (removed,) = net.take(SERVER)
    assert isinstance(removed, ObserverRemoved)
    assert removed.reason == "replaced"
    (end,) = net.take(CLIENT)
    assert isinstance(end, ObservationEnded)  # answer without Observe ends it (§3.2)
    del obs


def test_notification_waits_for_nstart_slot_and_merges() -> None:
    net, client, server, _, obs = observe_setup(notification_confirmable=True)
    # the server has its own request outstanding to the client (the LwM2M direction)
    server.send_request(Message(Code.GET, uri_path="/1/0"), CLIENT, net.now)
    server.notify(obs, Message(Code.CONTENT, b"first"), net.now)
    server.notify(obs, Message(Code.CONTENT, b"second"), net.now)
    out = server.datagrams_to_send(net.now)
    assert len(out) == 1  # only the request: NSTART=1
    for data, _dst in out:
        client.receive_datagram(data, SERVER, net.now)
    net.flush()
    (req,) = [e for e in net.take(CLIENT) if isinstance(e, RequestReceived)]
    client.send_response(req.exchange, Message(Code.CONTENT, b"r"), net.now)
    net.flush()
    assert notifications(net) == [b"second"]


def test_notify_resource_reaches_every_observer_and_remove() -> None:
    net = Net()
    server = net.add(SERVER, seed=2)
    others = [(f"10.0.0.{10 + i}", 5683) for i in range(3)]
    for i, addr in enumerate(others):
        c = net.add(addr, seed=10 + i)
        c.send_request(Message(Code.GET, uri_path="/temp", observe=0), SERVER, net.now)
        net.flush()
        (ev,) = net.take(SERVER)
        server.send_response(ev.exchange, Message(Code.CONTENT, b"0", observe=0), net.now)  # type: ignore[union-attr]
        net.flush()
    assert len(server.observations(("temp",))) == 3
    assert server.notify_resource(("temp",), Message(Code.CONTENT, b"21"), net.now) == 3
    assert server.notify_resource(("nothing",), Message(Code.CONTENT), net.now) == 0
    net.flush()
    for addr in others:
        evs = [e for e in net.take(addr) if isinstance(e, NotificationReceived)]
        assert [e.response.payload for e in evs] == [b"21"]
    server.remove_observation(server.observations()[0], net.now)
    assert len(server.observations(("temp",))) == 2
    assert net.take(SERVER) == []  # local removal: no event


def test_ack_loss_of_notification_is_recovered() -> None:
    net, client, server, _, obs = observe_setup(notification_confirmable=True)
    lost: list[Wire] = []

    def drop_one_ack(w: Wire) -> bool:
        if w.src == CLIENT and not lost:
            lost.append(w)
            return True
        return False

    net.drop = drop_one_ack
    server.notify(obs, Message(Code.CONTENT, b"x"), net.now)
    net.run_until(10)
    assert notifications(net) == [b"x"]  # the duplicate is not delivered twice
    assert client.stats.duplicates == 1
    assert not obs.in_flight


def test_resource_level_merging_touches_only_idle_observers() -> None:
    """notify_resource sends to idle observers only; in-flight ones take the newest on ACK."""
    net = Net()
    server = net.add(SERVER, exact_config(notification_confirmable=True), seed=2)
    clients = [(f"10.0.1.{i}", 5683) for i in range(3)]
    for i, addr in enumerate(clients):
        c = net.add(addr, seed=20 + i)
        c.send_request(Message(Code.GET, uri_path="/temp", observe=0), SERVER, net.now)
        net.flush()
        (ev,) = net.take(SERVER)
        server.send_response(ev.exchange, Message(Code.CONTENT, b"-", observe=0), net.now)  # type: ignore[union-attr]
        net.flush()
        net.take(addr)
    for i in range(100):
        assert server.notify_resource(("temp",), Message(Code.CONTENT, b"%d" % i), net.now) == 3
    first = server.datagrams_to_send(net.now)
    assert sorted(dst for _, dst in first) == sorted(clients)  # one CON each, then merging
    assert all(o.has_pending and o.in_flight for o in server.observations())
    for data, dst in first:
        net.engines[dst].receive_datagram(data, SERVER, net.now)
    net.flush()
    for addr in clients:
        got = [e.response.payload for e in net.take(addr) if isinstance(e, NotificationReceived)]
        assert got == [b"0", b"99"]
    assert server.stats.notifications_merged == 3 * 98
    assert not any(o.in_flight for o in server.observations())
