"""More rarely taken engine paths, each checked as a peer sees it on the wire."""

from __future__ import annotations

from lwm2m.coap import (
    Block,
    CoapEngine,
    Code,
    Message,
    MessageType,
    NotificationReceived,
    ObservationEnded,
    RequestFailed,
    RequestReceived,
    RequestTimeout,
    ResponseReceived,
)

from .helpers import CLIENT, SERVER, Net, events, exact_config, sent

CON, NON, ACK, RST = MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST


def observe(net: Net, client: CoapEngine, server: CoapEngine) -> tuple[int, object]:
    rid = client.send_request(Message(Code.GET, uri_path="/o", observe=0), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    obs = server.send_response(ev.exchange, Message(Code.CONTENT, b"0", observe=0), net.now)
    net.flush()
    return rid, obs


def test_separate_response_implies_the_lost_ack() -> None:
    """RFC 7252 §5.2.2: a separate CON response stands for the lost empty ACK; the client ACKs
    it (echoing its MID) and stops retransmitting the request."""
    client = CoapEngine(exact_config())
    rid = client.send_request(Message(Code.GET, uri_path="/a"), SERVER, 0.0)
    (req,) = sent(client)
    resp = Message(Code.CONTENT, b"late", mtype=CON, mid=(req.mid + 7) & 0xFFFF, token=req.token)  # type: ignore[attr-defined]
    client.receive_datagram(resp.encode(), SERVER, 0.5)
    (ack,) = sent(client, 0.5)
    assert (ack.mtype, ack.code, ack.mid, ack.payload) == (ACK, 0, resp.mid, b"")
    (ev,) = events(client)
    assert isinstance(ev, ResponseReceived)
    assert ev.request_id == rid
    assert ev.response.payload == b"late"
    # a duplicate of the separate response is ACKed again from the cache (§4.5), no new event
    client.receive_datagram(resp.encode(), SERVER, 1.0)
    assert [(m.mtype, m.mid) for m in sent(client, 1.0)] == [(ACK, resp.mid)]
    assert events(client) == []
    # no retransmission at ACK_TIMEOUT (2 s) or later
    t = client.get_timer()
    while t is not None and t < 300:
        client.handle_timer(t)
        assert [m for m in sent(client, t) if m.code == Code.GET] == []
        t = client.get_timer()


def test_response_with_unknown_critical_option_is_rejected() -> None:
    """RFC 7252 §5.4.1: an unrecognized critical option in a CON response makes the client
    reject it with RST; in a NON response it is silently dropped. No event either way."""
    for mtype in (CON, NON):
        client = CoapEngine(exact_config())
        client.send_request(Message(Code.GET, uri_path="/a", mtype=NON), SERVER, 0.0)  # type: ignore[attr-defined]
        (req,) = sent(client)
        resp = Message(Code.CONTENT, b"x", mtype=mtype, mid=4242, token=req.token)  # type: ignore[attr-defined]
        resp.options.append((65001, b"\x01"))  # odd = critical, unknown
        client.receive_datagram(resp.encode(), SERVER, 0.1)
        out = sent(client, 0.1)
        if mtype == CON:
            assert [(m.mtype, m.mid, m.code) for m in out] == [(RST, 4242, 0)]
        else:
            assert out == []
        assert events(client) == []


def test_non_request_is_not_retransmitted_and_times_out() -> None:
    """RFC 7252 §4.3: a NON request is never retransmitted; without a response the request
    fails with RequestTimeout once the response timeout elapses."""
    client = CoapEngine(exact_config(response_timeout=10.0))
    rid = client.send_request(Message(Code.GET, uri_path="/a", mtype=NON), SERVER, 0.0)  # type: ignore[attr-defined]
    (req,) = sent(client)
    assert req.mtype == NON
    assert client.get_timer() == 10.0
    client.handle_timer(9.99)
    assert sent(client, 9.99) == []
    assert events(client) == []
    client.handle_timer(10.0)
    assert sent(client, 10.0) == []
    (ev,) = events(client)
    assert isinstance(ev, RequestFailed)
    assert ev.request_id == rid
    assert isinstance(ev.error, RequestTimeout)


def test_empty_ack_deadlines_are_per_request() -> None:
    """RFC 7252 §5.2.2: a CON request not answered within empty_ack_delay gets an empty ACK;
    each request's own deadline counts, a later request is not ACKed early."""
    server = CoapEngine(exact_config(empty_ack_delay=0.5))
    a = Message(Code.GET, uri_path="/a", mtype=CON, mid=100, token=b"a")  # type: ignore[attr-defined]
    b = Message(Code.GET, uri_path="/b", mtype=CON, mid=101, token=b"b")  # type: ignore[attr-defined]
    server.receive_datagram(a.encode(), CLIENT, 0.0)
    server.receive_datagram(b.encode(), CLIENT, 0.3)
    assert len(events(server)) == 2
    assert server.get_timer() == 0.5
    server.handle_timer(0.5)
    assert [(m.mtype, m.mid) for m in sent(server, 0.5)] == [(ACK, 100)]
    assert server.get_timer() == 0.8
    server.handle_timer(0.8)
    assert [(m.mtype, m.mid) for m in sent(server, 0.8)] == [(ACK, 101)]
    # a duplicate of the ACKed request is answered with the same empty ACK (§4.5)
    server.receive_datagram(a.encode(), CLIENT, 0.9)
    assert [(m.mtype, m.mid, m.code) for m in sent(server, 0.9)] == [(ACK, 100, 0)]
    assert events(server) == []


def test_single_block_notification_is_delivered() -> None:
    """RFC 7959 §2.6: a notification carrying Block2 with M=0 is complete; it is delivered as
    is, without fetching further blocks."""
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    rid, obs = observe(net, client, server)
    net.take(CLIENT)
    n = Message(Code.CONTENT, b"tail", mtype=NON, mid=998, token=obs.token, observe=77)  # type: ignore[attr-defined]
    n.block2 = Block(0, False, 2)
    client.receive_datagram(n.encode(), SERVER, net.now)
    assert sent(client, net.now) == []  # no Block2 GET for more
    (ev,) = events(client)
    assert isinstance(ev, NotificationReceived)
    assert ev.request_id == rid
    assert ev.response.payload == b"tail"


def test_reordered_notification_is_dropped() -> None:
    """RFC 7641 §3.4/§4.4: a notification with an older sequence number (within 128 s) than the
    last one is stale and not delivered; a newer one is."""
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    rid, obs = observe(net, client, server)
    net.take(CLIENT)
    token = obs.token  # type: ignore[attr-defined]
    for mid, seq, body in ((500, 40, b"new"), (501, 30, b"old"), (502, 41, b"newer")):
        m = Message(Code.CONTENT, body, mtype=NON, mid=mid, token=token, observe=seq)  # type: ignore[attr-defined]
        client.receive_datagram(m.encode(), SERVER, net.now + 1)
    got = [e.response.payload for e in events(client) if isinstance(e, NotificationReceived)]
    assert got == [b"new", b"newer"]
    assert client.stats.stale_notifications == 1
    del rid


def test_shutdown_ends_observations_in_both_roles() -> None:
    """Shutdown ends an established observation with ObservationEnded(None) and fails a pending
    request with RequestCancelled; the server forgets its observers (no more notifications)."""
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    rid, obs = observe(net, client, server)
    net.take(CLIENT)
    pending = client.send_request(Message(Code.GET, uri_path="/p"), SERVER, net.now)
    assert [m.code for m in sent(client, net.now)] == [Code.GET]
    client.shutdown(net.now)
    evs = events(client)
    assert ObservationEnded(rid, None) in evs
    failed = [e for e in evs if isinstance(e, RequestFailed)]
    assert [e.request_id for e in failed] == [pending]
    client.handle_timer(net.now + 300)  # nothing left to retransmit
    assert sent(client, net.now + 300) == []
    server.shutdown(net.now)
    assert server.observations() == []
    assert server.notify(obs, Message(Code.CONTENT, b"1"), net.now) is False  # type: ignore[arg-type]
    assert sent(server, net.now) == []
