"""Less travelled paths of the engine: crafted peers, races and failures."""

from __future__ import annotations

import pytest

from lwm2m.coap import (
    Block,
    BlockwiseError,
    CoapEngine,
    Code,
    Message,
    MessageType,
    NotificationReceived,
    ObservationEnded,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
)
from lwm2m.testing import FakeClock

from .helpers import CLIENT, SERVER, Net, events, exact_config, sent

CON, NON, ACK, RST = MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST


def test_fake_clock() -> None:
    clock = FakeClock(10.0)
    assert clock() == 10.0
    assert clock.advance(2.5) == 12.5
    assert clock.set(20.0) == 20.0
    assert "20.0" in repr(clock)
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="back"):
        clock.set(5.0)


def test_client_chosen_block1_size() -> None:
    client = CoapEngine(exact_config())
    req = Message(Code.PUT, b"x" * 100, uri_path="/a")
    req.block1 = Block(0, False, 1)  # ask for 32-byte blocks
    client.send_request(req, SERVER, 0.0)
    (first,) = sent(client)
    assert first.block1 == Block(0, True, 1)
    assert len(first.payload) == 32


def test_continue_without_block1_and_wrong_block2_offset_fail() -> None:
    client = CoapEngine(exact_config())
    rid = client.send_request(Message(Code.PUT, b"x" * 3000, uri_path="/a"), SERVER, 0.0)
    (first,) = sent(client)
    bad = Message(Code.CONTINUE, mtype=ACK, mid=first.mid, token=first.token)
    client.receive_datagram(bad.encode(), SERVER, 0.0)
    (ev,) = events(client)
    assert isinstance(ev, RequestFailed)
    assert ev.request_id == rid
    assert isinstance(ev.error, BlockwiseError)

    rid = client.send_request(Message(Code.GET, uri_path="/b"), SERVER, 0.0)
    (get,) = sent(client)
    block0 = Message(Code.CONTENT, b"a" * 64, mtype=ACK, mid=get.mid, token=get.token)
    block0.block2 = Block(0, True, 2)
    client.receive_datagram(block0.encode(), SERVER, 0.0)
    (follow,) = sent(client)
    assert follow.block2 == Block(1, False, 2)
    wrong = Message(Code.CONTENT, b"b" * 64, mtype=ACK, mid=follow.mid, token=follow.token)
    wrong.block2 = Block(3, True, 2)  # not the block that was asked for
    client.receive_datagram(wrong.encode(), SERVER, 0.0)
    (ev,) = events(client)
    assert isinstance(ev, RequestFailed)
    assert "offset" in str(ev.error)


def test_error_responses_are_not_split_into_blocks() -> None:
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    client.send_request(Message(Code.GET, uri_path="/x"), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    server.send_response(ev.exchange, Message(Code.NOT_FOUND, b"d" * 2000), net.now)
    net.flush()
    (resp,) = net.take(CLIENT)
    assert isinstance(resp, ResponseReceived)
    assert resp.response.block2 is None
    assert len(resp.response.payload) == 2000


def test_queued_request_cancelled_before_its_turn_is_skipped() -> None:
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    client.send_request(Message(Code.GET, uri_path="/1"), SERVER, net.now)
    second = client.send_request(Message(Code.GET, uri_path="/2"), SERVER, net.now)
    client.send_request(Message(Code.GET, uri_path="/3"), SERVER, net.now)
    client.cancel_request(second, net.now)
    net.flush()
    seen = []
    for _ in range(3):
        evs = [e for e in net.take(SERVER) if isinstance(e, RequestReceived)]
        for e in evs:
            seen.append(e.exchange.request.path)
            server.send_response(e.exchange, Message(Code.CONTENT), net.now)
        net.flush()
    assert seen == ["/1", "/3"]


def observe(
    net: Net, client: CoapEngine, server: CoapEngine, body: bytes = b"0"
) -> tuple[int, object]:
    rid = client.send_request(Message(Code.GET, uri_path="/o", observe=0), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    obs = server.send_response(ev.exchange, Message(Code.CONTENT, body, observe=0), net.now)
    net.flush()
    return rid, obs


def test_cancel_while_reregistration_is_in_flight() -> None:
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    rid, _ = observe(net, client, server)
    net.take(CLIENT)
    net.drop = lambda w: True
    client.reregister(rid, net.now)
    net.flush()
    net.drop = None
    client.cancel_observation(rid, net.now)  # holds the slot: sent at once
    net.flush()
    evs = [e for e in net.take(SERVER) if isinstance(e, RequestReceived)]
    assert [e.exchange.request.observe for e in evs] == [1]
    server.acknowledge(evs[0].exchange, net.now)  # empty ACK, answer later
    net.flush()
    # a notification racing the deregistration is ignored
    token = evs[0].exchange.request.token
    racing = Message(Code.CONTENT, b"late", mtype=NON, mid=4242, token=token, observe=77)
    client.receive_datagram(racing.encode(), SERVER, net.now)
    assert events(client) == []
    server.send_response(evs[0].exchange, Message(Code.CONTENT, b"bye"), net.now)
    net.flush()
    (end,) = net.take(CLIENT)
    assert isinstance(end, ObservationEnded)
    assert end.response is not None
    assert end.response.payload == b"bye"


def test_stale_block_wise_notification_is_dropped() -> None:
    """A newer notification overtakes the block-wise fetch of an older one (RFC 7641 §3.4)."""
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, exact_config(block2_cache_entries=0), seed=2)
    rid, obs = observe(net, client, server)
    net.take(CLIENT)
    # hold the follow-up GETs of the big notification back
    held = []

    def hold(w: object) -> bool:
        m = w.msg  # type: ignore[attr-defined]
        if w.src == CLIENT and m.block2 is not None:  # type: ignore[attr-defined]
            held.append(w)
            return True
        return False

    net.drop = hold
    server.notify(obs, Message(Code.CONTENT, b"B" * 3000), net.now)  # type: ignore[arg-type]
    net.flush()
    assert held
    server.notify(obs, Message(Code.CONTENT, b"small"), net.now)  # type: ignore[arg-type]
    net.flush()
    assert [e.response.payload for e in net.take(CLIENT)] == [b"small"]  # type: ignore[attr-defined]
    net.drop = None
    for w in held:
        server.receive_datagram(w.data, CLIENT, net.now)
    for _ in range(5):
        for ev in [e for e in net.take(SERVER) if isinstance(e, RequestReceived)]:
            server.send_response(ev.exchange, Message(Code.CONTENT, b"B" * 3000), net.now)
        net.flush()
    assert [e for e in net.take(CLIENT) if isinstance(e, NotificationReceived)] == []
    assert client.stats.stale_notifications == 1
    del rid


def test_notification_starting_with_a_later_block_is_ignored() -> None:
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    _, obs = observe(net, client, server)
    net.take(CLIENT)
    bad = Message(Code.CONTENT, b"x" * 64, mtype=NON, mid=999, token=obs.token, observe=50)  # type: ignore[attr-defined]
    bad.block2 = Block(2, True, 2)
    client.receive_datagram(bad.encode(), SERVER, net.now)
    assert events(client) == []
    assert client.stats.block_errors == 1


def test_failed_block_fetch_of_a_notification_keeps_the_observation() -> None:
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, exact_config(block2_cache_entries=0), seed=2)
    rid, obs = observe(net, client, server)
    net.take(CLIENT)
    net.drop = lambda w: w.src == CLIENT and w.msg.block2 is not None
    server.notify(obs, Message(Code.CONTENT, b"B" * 3000), net.now)  # type: ignore[arg-type]
    net.run_until(net.now + 200)
    assert [e for e in net.take(CLIENT) if not isinstance(e, NotificationReceived)] == []
    net.drop = None
    server.notify(obs, Message(Code.CONTENT, b"ok"), net.now)  # type: ignore[arg-type]
    net.flush()
    assert [e.response.payload for e in net.take(CLIENT)] == [b"ok"]  # type: ignore[attr-defined]
    assert client.stats.block_errors >= 1
    del rid
