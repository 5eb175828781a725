"""Behavioural campaign: the engine against RFC 7641 (Observe) and RFC 7959 (block-wise).

Each test names the section it checks. Where a peer has to misbehave or be precise about bytes,
it is played by hand with datagrams; otherwise two engines talk over the in-memory ``Net``.
"""

from __future__ import annotations

import random

import pytest

from lwm2m.coap import (
    Block,
    BlockwiseError,
    CoapEngine,
    CoapError,
    Code,
    Message,
    MessageType,
    NotificationReceived,
    Observation,
    ObservationEnded,
    ObserverRemoved,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
)

from .helpers import CLIENT, SERVER, Net, advance, events, exact_config, sent

CON, NON, ACK, RST = MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST
OTHER_PEER = ("10.0.0.9", 5683)


def feed(eng: CoapEngine, msg: Message, src: object = SERVER, now: float = 0.0) -> list[Message]:
    """Deliver ``msg`` to ``eng`` and return what it sends in reply."""
    eng.receive_datagram(msg.encode(), src, now)
    return sent(eng, now)


def observed(
    client_kw: dict[str, object] | None = None, server_kw: dict[str, object] | None = None
) -> tuple[Net, CoapEngine, CoapEngine, int, Observation]:
    """Two engines with an established observation of /o (first response "0")."""
    net = Net()
    client = net.add(CLIENT, exact_config(**(client_kw or {})), seed=1)  # type: ignore[arg-type]
    server = net.add(SERVER, exact_config(**(server_kw or {})), seed=2)  # type: ignore[arg-type]
    rid = client.send_request(Message(Code.GET, uri_path="/o", observe=0), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    obs = server.send_response(ev.exchange, Message(Code.CONTENT, b"0", observe=0), net.now)
    assert obs is not None
    net.flush()
    (first,) = net.take(CLIENT)
    assert isinstance(first, ResponseReceived)
    return net, client, server, rid, obs


def raw_client(**kw: object) -> tuple[CoapEngine, int, bytes]:
    """A client engine with an observation established by a hand-made server (Observe 10)."""
    client = CoapEngine(exact_config(**kw), rng=random.Random(11))  # type: ignore[arg-type]
    rid = client.send_request(Message(Code.GET, uri_path="/o", observe=0), SERVER, 0.0)
    (req,) = sent(client)
    ack = Message(Code.CONTENT, b"first", mtype=ACK, mid=req.mid, token=req.token, observe=10)
    feed(client, ack)
    (ev,) = events(client)
    assert isinstance(ev, ResponseReceived)
    return client, rid, req.token


def note(token: bytes, seq: int, mid: int, payload: bytes = b"n", mtype: int = NON) -> Message:
    return Message(Code.CONTENT, payload, mtype=mtype, mid=mid, token=token, observe=seq)


def payloads(evs: list[object]) -> list[bytes]:
    return [e.response.payload for e in evs if isinstance(e, NotificationReceived)]


class FakeWaiter:
    """A Waiter that is already done (a cancelled future): the engine must leave it alone."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def done(self) -> bool:
        return True

    def set_result(self, result: Message, /) -> None:
        self.calls.append(result)

    def set_exception(self, exception: BaseException, /) -> None:
        self.calls.append(exception)


# =============================================================================================
# RFC 7641: Observe
# =============================================================================================


def test_reregistration_answered_piggybacked_frees_the_nstart_slot() -> None:
    """RFC 7641 §3.3.1: re-registering is an ordinary GET with the same token; once its
    piggybacked response arrived it is no longer outstanding (RFC 7252 §4.7), so the next
    request to the server goes out at once."""
    net, client, server, rid, obs = observed()
    client.reregister(rid, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.token == obs.token
    server.send_response(ev.exchange, Message(Code.CONTENT, b"again", observe=0), net.now)
    net.flush()
    assert payloads(net.take(CLIENT)) == [b"again"]
    client.send_request(Message(Code.GET, uri_path="/other"), SERVER, net.now)
    net.flush()
    got = [e for e in net.take(SERVER) if isinstance(e, RequestReceived)]
    assert [e.exchange.request.path for e in got] == ["/other"]


def test_reregistration_with_a_separate_response() -> None:
    """RFC 7641 §3.3.1: the re-registration may be answered after an empty ACK; the separate
    response is the next notification and the client is free for further requests."""
    net, client, server, rid, obs = observed()
    client.reregister(rid, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    server.acknowledge(ev.exchange, net.now)
    net.flush()
    new = server.send_response(ev.exchange, Message(Code.CONTENT, b"sep", observe=0), net.now)
    assert new is not None
    assert not obs.active
    net.flush()
    assert payloads(net.take(CLIENT)) == [b"sep"]
    client.send_request(Message(Code.GET, uri_path="/other"), SERVER, net.now)
    net.flush()
    got = [e for e in net.take(SERVER) if isinstance(e, RequestReceived)]
    assert [e.exchange.request.path for e in got] == ["/other"]
    server.notify(new, Message(Code.CONTENT, b"next"), net.now)
    net.flush()
    assert payloads(net.take(CLIENT)) == [b"next"]


def test_registration_with_observe_0_encoded_with_a_leading_zero_byte() -> None:
    """RFC 7252 §3.2 (uint with leading zeros) applied to RFC 7641 §4.1 registration."""
    server = CoapEngine(exact_config(), rng=random.Random(3))
    req = Message(Code.GET, mtype=CON, mid=1, token=b"ob", uri_path="/o", options=[(6, b"\x00")])
    feed(server, req, src=CLIENT)
    (ev,) = events(server)
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.observe == 0
    obs = server.send_response(ev.exchange, Message(Code.CONTENT, b"v", observe=0), 0.0)
    assert obs is not None
    (resp,) = sent(server)
    assert resp.observe is not None


def test_deregistration_with_observe_1_encoded_with_a_leading_zero_byte() -> None:
    """RFC 7641 §3.6 with RFC 7252 §3.2."""
    net, client, server, _rid, obs = observed()
    dereg = Message(
        Code.GET, mtype=CON, mid=0x5555, token=obs.token, uri_path="/o", options=[(6, b"\x00\x01")]
    )
    feed(server, dereg, src=CLIENT, now=net.now)
    assert not obs.active
    del client


def test_deregistration_with_an_unknown_token_is_an_ordinary_get() -> None:
    """RFC 7641 §3.6: GET with Observe=1 removes the entry with that token, if any; otherwise it
    is an ordinary GET whose response carries no Observe, and other observers stay."""
    net, client, server, _rid, obs = observed()
    req = Message(Code.GET, mtype=CON, mid=0x2222, token=b"nope", uri_path="/o", observe=1)
    feed(server, req, src=CLIENT, now=net.now)
    (ev,) = events(server)
    assert isinstance(ev, RequestReceived)
    assert server.send_response(ev.exchange, Message(Code.CONTENT, b"x", observe=9), 0.0) is None
    (resp,) = sent(server)
    assert (resp.mtype, resp.code, resp.observe) == (ACK, Code.CONTENT, None)
    assert obs.active
    assert server.observations() == [obs]
    del client


def test_stale_con_notification_is_acknowledged_but_not_delivered() -> None:
    """RFC 7641 §3.4: a reordered notification is not delivered; being a CON it is still
    acknowledged (RFC 7252 §4.2), otherwise the server would retransmit and drop us."""
    client, _rid, token = raw_client()
    (ack,) = feed(client, note(token, 9, 0x10, mtype=CON), now=1.0)
    assert (ack.mtype, ack.code, ack.mid) == (ACK, 0, 0x10)
    assert events(client) == []
    assert client.stats.stale_notifications == 1
    (ack2,) = feed(client, note(token, 11, 0x11, b"fresh", mtype=CON), now=2.0)
    assert ack2.mid == 0x11
    assert payloads(events(client)) == [b"fresh"]


def test_freshness_uses_the_time_of_the_last_accepted_notification() -> None:
    """RFC 7641 §3.4: V2 at T2 is newer than V1 at T1 if ... or T2 > T1 + 128 s, where V1/T1
    belong to the most recent *accepted* notification (not the registration)."""
    client, _rid, token = raw_client()  # V1 = 10 at T1 = 0
    feed(client, note(token, 20, 1, b"a"), now=100.0)
    assert payloads(events(client)) == [b"a"]
    feed(client, note(token, 5, 2, b"old"), now=150.0)  # 150 > 0 + 128 but not > 100 + 128
    assert events(client) == []
    feed(client, note(token, 5, 3, b"late"), now=228.0)  # exactly 128 s: still not newer
    assert events(client) == []
    feed(client, note(token, 5, 4, b"after"), now=228.5)
    assert payloads(events(client)) == [b"after"]


@pytest.mark.parametrize(
    ("v2", "fresh"),
    [
        (10 + (1 << 23) - 1, True),  # V2 - V1 < 2^23
        (10 + (1 << 23), False),  # exactly 2^23 ahead is not newer
        ((10 - (1 << 23) - 1) % (1 << 24), True),  # V1 > V2 and V1 - V2 > 2^23 (wrapped)
    ],
)
def test_sequence_distance_boundaries_on_the_client(v2: int, fresh: bool) -> None:
    """RFC 7641 §3.4: the 2^23 window of the 24-bit sequence space."""
    client, _rid, token = raw_client()  # V1 = 10
    feed(client, note(token, v2, 1, b"x"), now=1.0)
    assert payloads(events(client)) == ([b"x"] if fresh else [])


def test_2xx_notification_without_observe_ends_the_observation() -> None:
    """RFC 7641 §3.2: a response without Observe ends the observation; afterwards a
    notification with that token is unknown and rejected with RST (§3.6)."""
    client, rid, token = raw_client()
    final = Message(Code.CONTENT, b"done", mtype=NON, mid=7, token=token)
    feed(client, final, now=1.0)
    (ev,) = events(client)
    assert isinstance(ev, ObservationEnded)
    assert ev.request_id == rid
    assert ev.response is not None
    assert ev.response.payload == b"done"
    (rst,) = feed(client, note(token, 30, 8, mtype=CON), now=2.0)
    assert (rst.mtype, rst.mid) == (RST, 8)
    assert client.pending_requests == 0


def test_deregistration_answered_by_reset_ends_the_observation() -> None:
    """RFC 7641 §3.6 with RFC 7252 §4.2: a Reset to the GET Observe=1 ends the (client-side)
    observation with no response."""
    client, rid, token = raw_client()
    client.cancel_observation(rid, 1.0)
    (dereg,) = sent(client, 1.0)
    assert (dereg.observe, dereg.token) == (1, token)
    feed(client, Message(mtype=RST, mid=dereg.mid), now=1.1)
    (ev,) = events(client)
    assert isinstance(ev, ObservationEnded)
    assert ev.request_id == rid
    assert ev.response is None
    assert client.pending_requests == 0


def test_reset_to_a_recent_non_notification_cancels() -> None:
    """RFC 7641 §3.6: a Reset in reply to a NON notification removes the observer, also when it
    answers one of the last few notifications rather than the very last."""
    net, _client, server, _rid, obs = observed()
    mids = []
    for i in range(3):
        server.notify(obs, Message(Code.CONTENT, b"%d" % i), net.now, confirmable=False)
        (m,) = sent(server)
        mids.append(m.mid)
    feed(server, Message(mtype=RST, mid=mids[0]), src=CLIENT, now=net.now)
    (ev,) = events(server)
    assert isinstance(ev, ObserverRemoved)
    assert ev.reason == "reset"
    assert not obs.active
    assert not server.notify(obs, Message(Code.CONTENT, b"more"), net.now)


def test_deregistered_observer_waiting_for_nstart_gets_nothing() -> None:
    """RFC 7641 §3.6: once deregistered no notification follows, not even one that was waiting
    for an NSTART slot (RFC 7641 §4.5.1 / RFC 7252 §4.7)."""
    net, client, server, rid, obs = observed(server_kw={"notification_confirmable": True})
    server.send_request(Message(Code.GET, uri_path="/1/0"), CLIENT, net.now)  # holds the slot
    server.notify(obs, Message(Code.CONTENT, b"queued"), net.now)
    (req,) = sent(server)
    assert req.code == Code.GET
    client.cancel_observation(rid, net.now)
    for data, _ in client.datagrams_to_send(net.now):
        server.receive_datagram(data, CLIENT, net.now)
    evs = events(server)
    assert [e.reason for e in evs if isinstance(e, ObserverRemoved)] == ["deregistered"]
    (dereg,) = [e for e in evs if isinstance(e, RequestReceived)]
    server.send_response(dereg.exchange, Message(Code.CONTENT, b"bye"), net.now)
    sent(server)
    # the client answers the server's request: the slot frees, and nothing is notified
    feed(server, Message(Code.CONTENT, mtype=ACK, mid=req.mid, token=req.token), src=CLIENT)
    out = sent(server)
    assert [m for m in out if m.payload == b"queued"] == []
    assert out == []


def test_two_observations_queued_behind_nstart_are_sent_one_after_the_other() -> None:
    """RFC 7641 §4.5.1 / RFC 7252 §4.7: CON notifications of two observations of one client
    wait for the NSTART slot and then go out one at a time."""
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, exact_config(notification_confirmable=True), seed=2)
    observations = []
    for path in ("/a", "/b"):
        client.send_request(Message(Code.GET, uri_path=path, observe=0), SERVER, net.now)
        net.flush()
        (ev,) = net.take(SERVER)
        obs = server.send_response(ev.exchange, Message(Code.CONTENT, observe=0), net.now)  # type: ignore[union-attr]
        assert obs is not None
        observations.append(obs)
        net.flush()
    net.take(CLIENT)
    server.send_request(Message(Code.GET, uri_path="/1/0"), CLIENT, net.now)
    for i, obs in enumerate(observations):
        server.notify(obs, Message(Code.CONTENT, b"n%d" % i), net.now)
    out = server.datagrams_to_send(net.now)
    assert len(out) == 1  # only the request
    assert all(o.in_flight for o in observations)
    for data, _ in out:
        client.receive_datagram(data, SERVER, net.now)
    (req,) = [e for e in events(client) if isinstance(e, RequestReceived)]
    client.send_response(req.exchange, Message(Code.CONTENT, b"r"), net.now)
    (piggy,) = client.datagrams_to_send(net.now)
    server.receive_datagram(piggy[0], CLIENT, net.now)
    (first,) = sent(server)
    assert (first.mtype, first.payload) == (CON, b"n0")
    server.receive_datagram(Message(mtype=ACK, mid=first.mid).encode(), CLIENT, net.now)
    (second,) = sent(server)
    assert (second.mtype, second.payload) == (CON, b"n1")


def test_resource_state_supersedes_the_observers_own_pending_state() -> None:
    """RFC 7641 §4.5.2: only the newest state is sent after the ACK; a per-observer pending
    notification older than a later resource-wide one is dropped (counted as merged)."""
    net, client, server, _rid, obs = observed(server_kw={"notification_confirmable": True})
    server.notify(obs, Message(Code.CONTENT, b"in flight"), net.now)
    (flying,) = sent(server)
    server.notify(obs, Message(Code.CONTENT, b"own pending"), net.now)
    server.notify_resource(("o",), Message(Code.CONTENT, b"resource"), net.now)
    assert sent(server) == []
    merged = server.stats.notifications_merged
    (nxt,) = feed(server, Message(mtype=ACK, mid=flying.mid), src=CLIENT)
    assert nxt.payload == b"resource"
    assert nxt.observe == (flying.observe or 0) + 1
    assert server.stats.notifications_merged == merged + 1
    del client


def test_server_observe_numbers_rise_across_con_and_non_and_retransmission() -> None:
    """RFC 7641 §4.4: every notification carries a larger sequence number than the previous one
    to that client; a retransmission repeats the datagram (same Message ID and number)."""
    net, _client, server, _rid, obs = observed()
    seqs = []
    for i, con in enumerate((False, True)):
        server.notify(obs, Message(Code.CONTENT, b"%d" % i), net.now, confirmable=con)
        (m,) = sent(server)
        seqs.append(m.observe)
    con_msg_mid = m.mid
    again = advance(server, 2.0)
    assert [(r.mid, r.observe) for r in again] == [(con_msg_mid, seqs[-1])]
    assert seqs == [2, 3]  # registration response carried 1


# =============================================================================================
# RFC 7959: block-wise
# =============================================================================================


def test_large_con_notification_is_sent_block_wise_and_reassembled() -> None:
    """RFC 7959 §2.6: a notification larger than a block carries Block2 0/M with Observe; the
    client fetches the rest with ordinary GETs (without Observe) and delivers the whole body."""
    body = bytes(range(200)) * 3  # 600 bytes
    net, _client, server, rid, obs = observed(
        server_kw={"notification_confirmable": True, "block_szx": 4}
    )
    server.notify(obs, Message(Code.CONTENT, body), net.now)
    net.flush()
    wire = [w.msg for w in net.sent_by(SERVER)[1:] if w.msg.code == Code.CONTENT]
    assert wire[0].mtype == CON
    assert wire[0].observe is not None
    assert wire[0].block2 == Block(0, True, 4)
    assert wire[0].size2 == len(body)  # RFC 7959 §4
    assert all(m.observe is None for m in wire[1:])
    follow_ups = [w.msg for w in net.sent_by(CLIENT) if w.msg.block2 is not None]
    assert follow_ups
    assert all(m.observe is None for m in follow_ups)
    assert all(m.token != obs.token for m in follow_ups)
    evs = net.take(CLIENT)
    assert [e.request_id for e in evs] == [rid]  # type: ignore[union-attr]
    assert payloads(evs) == [body]


def test_block_fetch_finishing_after_cancel_is_not_delivered() -> None:
    """RFC 7641 §3.6 (the client forgot the observation) with RFC 7959 §2.6: the remaining blocks
    of a notification may still arrive, but nothing is delivered for a cancelled observation."""
    client, rid, token = raw_client()
    first = note(token, 11, 0x30, b"a" * 16)
    first.block2 = Block(0, True, 0)  # 16 bytes
    first.etag = b"e1"
    (fetch,) = feed(client, first, now=1.0)
    assert fetch.block2 == Block(1, False, 0)
    client.cancel_request(rid, 1.1)
    last = Message(Code.CONTENT, b"b" * 5, mtype=ACK, mid=fetch.mid, token=fetch.token)
    last.block2 = Block(1, False, 0)
    last.etag = b"e1"
    feed(client, last, now=1.2)
    assert events(client) == []
    assert client.pending_requests == 0
    assert client.stats.block_errors == 0  # the transfer itself completed


def test_reset_of_a_block_fetch_keeps_the_observation() -> None:
    """RFC 7959 §2.6: if fetching the rest of a notification fails (here a Reset, RFC 7252
    §4.2), that notification is lost but the observation goes on."""
    client, rid, token = raw_client()
    first = note(token, 11, 0x40, b"a" * 16)
    first.block2 = Block(0, True, 0)  # 16 bytes
    (fetch,) = feed(client, first, now=1.0)
    feed(client, Message(mtype=RST, mid=fetch.mid), now=1.1)
    assert events(client) == []
    feed(client, note(token, 12, 0x41, b"small"), now=2.0)
    evs = events(client)
    assert [e.request_id for e in evs] == [rid]  # type: ignore[union-attr]
    assert payloads(evs) == [b"small"]


def test_shutdown_during_a_block_fetch_ends_the_observation_once() -> None:
    """RFC 7959 §2.6 fetches are internal to the observation: per the ``shutdown`` docstring an
    established observation ends with one ObservationEnded, and its block fetch (an ordinary
    request on the wire) reports nothing of its own."""
    client, rid, token = raw_client()
    first = note(token, 11, 0x50, b"a" * 16)
    first.block2 = Block(0, True, 0)  # 16 bytes
    feed(client, first, now=1.0)
    assert client.pending_requests == 2
    client.shutdown(1.5)
    evs = events(client)
    assert evs == [ObservationEnded(rid, None)]
    assert client.pending_requests == 0


def test_single_block1_with_m_0_is_a_complete_request() -> None:
    """RFC 7959 §2.5: a request carrying Block1 0/0 is complete; the application sees it without
    Block1 and the response echoes Block1 with M=0 (§2.3)."""
    server = CoapEngine(exact_config(), rng=random.Random(4))
    req = Message(Code.PUT, b"tiny", mtype=CON, mid=3, token=b"p", uri_path="/f")
    req.block1 = Block(0, False, 2)
    feed(server, req, src=CLIENT)
    (ev,) = events(server)
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.block1 is None
    assert ev.exchange.request.payload == b"tiny"
    server.send_response(ev.exchange, Message(Code.CHANGED), 0.0)
    (resp,) = sent(server)
    assert (resp.code, resp.block1) == (Code.CHANGED, Block(0, False, 2))


def test_block2_keeps_the_applications_etag_and_ignores_the_m_bit_of_requests() -> None:
    """RFC 7959 §2.4: every block carries the representation's ETag (the application's own, if
    it set one); §2.2: the M bit of Block2 in a request MUST be ignored by the server."""
    server = CoapEngine(exact_config(block_szx=2), rng=random.Random(4))
    body = bytes(range(100))
    feed(server, Message(Code.GET, mtype=CON, mid=1, token=b"g", uri_path="/big"), src=CLIENT)
    (ev,) = events(server)
    assert isinstance(ev, RequestReceived)
    resp = Message(Code.CONTENT, body)
    resp.etag = b"app-tag"
    server.send_response(ev.exchange, resp, 0.0)
    (b0,) = sent(server)
    assert (b0.block2, b0.etag, b0.size2, b0.payload) == (
        Block(0, True, 2),
        b"app-tag",
        100,
        body[:64],
    )
    nxt = Message(Code.GET, mtype=CON, mid=2, token=b"h", uri_path="/big")
    nxt.block2 = Block(1, True, 2)  # M set in a request: to be ignored
    (b1,) = feed(server, nxt, src=CLIENT)
    assert (b1.block2, b1.etag, b1.payload) == (Block(1, False, 2), b"app-tag", body[64:])
    assert events(server) == []  # served from the cache


def test_block1_with_a_different_content_format_does_not_continue() -> None:
    """RFC 7959 §2.3/§2.9.2: a later block that does not belong to the transfer in progress
    (here: another Content-Format) is answered with 4.08 Request Entity Incomplete."""
    server = CoapEngine(exact_config(), rng=random.Random(4))
    b0 = Message(Code.PUT, b"x" * 16, mtype=CON, mid=1, token=b"a", uri_path="/f", content_format=0)
    b0.block1 = Block(0, True, 0)
    (cont,) = feed(server, b0, src=CLIENT)
    assert (cont.code, cont.block1) == (Code.CONTINUE, Block(0, True, 0))
    b1 = Message(Code.PUT, b"y" * 4, mtype=CON, mid=2, token=b"b", uri_path="/f", content_format=60)
    b1.block1 = Block(1, False, 0)
    (resp,) = feed(server, b1, src=CLIENT)
    assert resp.code == Code.REQUEST_ENTITY_INCOMPLETE
    assert events(server) == []


def test_block1_after_the_reassembly_timed_out_gets_4_08() -> None:
    """RFC 7959 §2.9.2 (and the bounded reassembly of the engine docstring): a block arriving
    after the partial body was dropped for inactivity gets 4.08."""
    server = CoapEngine(exact_config(reassembly_timeout=10.0), rng=random.Random(4))
    b0 = Message(Code.PUT, b"x" * 16, mtype=CON, mid=1, token=b"a", uri_path="/f")
    b0.block1 = Block(0, True, 0)
    feed(server, b0, src=CLIENT)
    advance(server, 11.0)
    assert server.stats.reassembly_timeouts == 1
    b1 = Message(Code.PUT, b"y", mtype=CON, mid=2, token=b"b", uri_path="/f")
    b1.block1 = Block(1, False, 0)
    (resp,) = feed(server, b1, src=CLIENT, now=11.0)
    assert resp.code == Code.REQUEST_ENTITY_INCOMPLETE
    assert events(server) == []


def test_size1_only_on_the_first_block1_block() -> None:
    """RFC 7959 §4: Size1 announces the total size with the first block."""
    net = Net()
    client = net.add(CLIENT, exact_config(block_szx=2), seed=1)
    server = net.add(SERVER, exact_config(), seed=2)
    body = b"z" * 150
    rid = client.send_request(Message(Code.PUT, body, uri_path="/f"), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.payload == body
    server.send_response(ev.exchange, Message(Code.CHANGED), net.now)
    net.flush()
    puts = [w.msg for w in net.sent_by(CLIENT)]
    assert [m.block1 for m in puts] == [Block(0, True, 2), Block(1, True, 2), Block(2, False, 2)]
    assert [m.size1 for m in puts] == [150, None, None]
    (resp,) = net.take(CLIENT)
    assert isinstance(resp, ResponseReceived)
    assert resp.request_id == rid
    assert resp.response.block1 == Block(2, False, 2)


def test_block2_first_block_in_a_separate_response() -> None:
    """RFC 7959 §2.4 with RFC 7252 §5.2.2: a block-wise response may start as a separate
    response; the client fetches the other blocks and delivers the whole body."""
    net = Net()
    client = net.add(CLIENT, exact_config(), seed=1)
    server = net.add(SERVER, exact_config(block_szx=3), seed=2)
    body = bytes(range(256)) + bytes(range(44))
    rid = client.send_request(Message(Code.GET, uri_path="/big"), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    server.acknowledge(ev.exchange, net.now)
    net.flush()
    server.send_response(ev.exchange, Message(Code.CONTENT, body), net.now)
    net.flush()
    (resp,) = net.take(CLIENT)
    assert isinstance(resp, ResponseReceived)
    assert resp.request_id == rid
    assert resp.response.payload == body
    assert resp.response.block2 is None
    server_msgs = [w.msg for w in net.sent_by(SERVER) if w.msg.code == Code.CONTENT]
    assert [m.block2 for m in server_msgs] == [
        Block(0, True, 3),
        Block(1, True, 3),
        Block(2, False, 3),
    ]


def test_done_waiters_are_left_alone_on_block_wise_success_and_failure() -> None:
    """Engine contract (send_request docstring) on the RFC 7959 §2.4 path: a waiter that is
    already done receives neither the assembled response nor the block-wise failure."""
    client = CoapEngine(exact_config(), rng=random.Random(9))
    ok_waiter, bad_waiter = FakeWaiter(), FakeWaiter()
    client.send_request(Message(Code.GET, uri_path="/a"), SERVER, 0.0, waiter=ok_waiter)
    (r1,) = sent(client)
    b0 = Message(Code.CONTENT, b"a" * 1024, mtype=ACK, mid=r1.mid, token=r1.token)
    b0.block2 = Block(0, True, 6)
    (f1,) = feed(client, b0)
    b1 = Message(Code.CONTENT, b"b", mtype=ACK, mid=f1.mid, token=f1.token)
    b1.block2 = Block(1, False, 6)
    feed(client, b1)
    client.send_request(Message(Code.GET, uri_path="/b"), SERVER, 0.0, waiter=bad_waiter)
    (r2,) = sent(client)
    c0 = Message(Code.CONTENT, b"a" * 1024, mtype=ACK, mid=r2.mid, token=r2.token)
    c0.block2 = Block(0, True, 6)
    (f2,) = feed(client, c0)
    wrong = Message(Code.CONTENT, b"c", mtype=ACK, mid=f2.mid, token=f2.token)
    wrong.block2 = Block(5, False, 6)  # does not continue at offset 1024: a block-wise error
    feed(client, wrong)
    assert ok_waiter.calls == []
    assert bad_waiter.calls == []
    assert events(client) == []
    assert client.pending_requests == 0
    assert client.stats.block_errors == 1


def test_block_wise_failure_reaches_an_open_waiter() -> None:
    """Counterpart of the above: an open waiter gets the BlockwiseError (RFC 7959 §2.4 offsets)."""

    class Open(FakeWaiter):
        def done(self) -> bool:
            return bool(self.calls)

    client = CoapEngine(exact_config(), rng=random.Random(9))
    waiter = Open()
    client.send_request(Message(Code.GET, uri_path="/b"), SERVER, 0.0, waiter=waiter)
    (r,) = sent(client)
    c0 = Message(Code.CONTENT, b"a" * 1024, mtype=ACK, mid=r.mid, token=r.token)
    c0.block2 = Block(0, True, 6)
    (f,) = feed(client, c0)
    wrong = Message(Code.CONTENT, b"c", mtype=ACK, mid=f.mid, token=f.token)
    wrong.block2 = Block(5, False, 6)
    feed(client, wrong)
    (err,) = waiter.calls
    assert isinstance(err, BlockwiseError)
    assert isinstance(err, CoapError)
    assert not any(isinstance(e, RequestFailed) for e in events(client))


def test_reregistration_of_a_block_wise_fetch_resends_the_whole_body() -> None:
    """RFC 7641 §3.3.1 with RFC 7959 §2.5 (and RFC 8132 FETCH)."""
    net = Net()
    client = net.add(CLIENT, exact_config(block_szx=0), seed=1)
    server = net.add(SERVER, exact_config(), seed=2)
    body = bytes(range(40))
    rid = client.send_request(Message(Code.FETCH, body, uri_path="/o", observe=0), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.payload == body
    assert server.send_response(ev.exchange, Message(Code.CONTENT, b"0", observe=0), net.now)
    net.flush()
    net.take(CLIENT)
    client.reregister(rid, net.now)
    net.flush()
    assert not any(isinstance(e, ObservationEnded) for e in net.take(CLIENT))
    (again,) = [e for e in net.take(SERVER) if isinstance(e, RequestReceived)]
    assert again.exchange.request.payload == body
    assert again.exchange.request.token == ev.exchange.request.token


def test_block_wise_notifications_are_merged_like_small_ones() -> None:
    """RFC 7641 §4.5.2 with RFC 7959 §2.6: while a large CON notification is in flight a newer
    large state waits (older pending ones are dropped) and is sent block-wise after the ACK.
    The client ends with the newest state and never with a mix of two representations (the
    ETag changes with the state, RFC 7959 §2.4)."""
    net, _client, server, rid, obs = observed(
        server_kw={"notification_confirmable": True, "block_szx": 0}
    )
    bodies = [bytes([i]) * 40 for i in range(3)]
    for body in bodies:
        server.notify(obs, Message(Code.CONTENT, body), net.now)
    assert server.stats.notifications_merged == 1
    net.flush()
    firsts = [w.msg for w in net.sent_by(SERVER) if w.msg.observe is not None][1:]
    assert [(m.mtype, m.block2, m.payload) for m in firsts] == [
        (CON, Block(0, True, 0), bodies[0][:16]),
        (CON, Block(0, True, 0), bodies[2][:16]),
    ]
    assert firsts[0].etag != firsts[1].etag
    evs = net.take(CLIENT)
    assert {e.request_id for e in evs} == {rid}  # type: ignore[union-attr]
    got = payloads(evs)
    assert got[-1] == bodies[2]
    assert set(got) <= {bodies[0], bodies[2]}
    assert not obs.in_flight


def test_removing_an_observer_twice_is_harmless() -> None:
    """RFC 7641 §3.6: an observer removed by Reset is gone; removing it locally afterwards
    changes nothing and reports nothing."""
    net, client, server, rid, obs = observed()
    client.cancel_request(rid, net.now)
    server.notify(obs, Message(Code.CONTENT, b"x"), net.now, confirmable=True)
    net.flush()
    assert [e.reason for e in net.take(SERVER) if isinstance(e, ObserverRemoved)] == ["reset"]
    server.remove_observation(obs, net.now)
    assert events(server) == []
    assert server.observations() == []
    assert not server.notify(obs, Message(Code.CONTENT, b"y"), net.now)
    assert server.datagrams_to_send(net.now) == []


def test_unanswered_non_reregistration_gives_back_its_nstart_slot() -> None:
    """RFC 7252 §4.7 / RFC 7641 §3.3.1: a NON re-registration that gets no answer ends as an
    interaction when its response timeout passes; a request queued behind it (NSTART 1) then
    goes out, and the observation goes on as it was."""
    client = CoapEngine(exact_config(), rng=random.Random(5))  # type: ignore[arg-type]
    rid = client.send_request(Message(Code.GET, uri_path="/o", observe=0, mtype=NON), SERVER, 0.0)
    (req,) = sent(client)
    first = Message(Code.CONTENT, b"0", mtype=NON, mid=0x100, token=req.token, observe=2)
    feed(client, first)
    (established,) = events(client)
    assert isinstance(established, ResponseReceived)
    assert established.response.payload == b"0"
    client.reregister(rid, 1.0)
    (again,) = sent(client, 1.0)
    assert (again.mtype, again.token) == (NON, req.token)
    client.send_request(Message(Code.GET, uri_path="/other"), SERVER, 1.0)
    assert sent(client, 1.0) == []  # NSTART 1: waits for the re-registration
    out = advance(client, 1000.0)
    gets = [m for m in out if m.code == Code.GET]
    assert gets
    assert {m.path for m in gets} == {"/other"}  # (with its retransmissions: nobody answers)
    later = Message(Code.CONTENT, b"1", mtype=NON, mid=0x101, token=req.token, observe=3)
    feed(client, later, now=1000.0)
    assert payloads(events(client)) == [b"1"]


def test_an_empty_token_held_by_an_observation_is_not_given_to_a_second_request() -> None:
    """RFC 7252 §5.3.1: with ``token_length`` 0 the empty token is used only while no other
    request to that peer holds it; a request made while an observation holds it gets a random
    token of at least 32 bits, and both answers are matched to the right request."""
    client = CoapEngine(exact_config(token_length=0), rng=random.Random(5))  # type: ignore[arg-type]
    rid = client.send_request(Message(Code.GET, uri_path="/o", observe=0), SERVER, 0.0)
    (req,) = sent(client)
    assert req.token == b""
    feed(client, Message(Code.CONTENT, b"0", mtype=ACK, mid=req.mid, token=b"", observe=2))
    (first,) = events(client)
    assert first.request_id == rid  # type: ignore[attr-defined]
    other = client.send_request(Message(Code.GET, uri_path="/x"), SERVER, 0.5)
    (get,) = sent(client, 0.5)
    assert len(get.token) == 4
    feed(client, Message(Code.CONTENT, b"x", mtype=ACK, mid=get.mid, token=get.token), now=0.6)
    feed(client, Message(Code.CONTENT, b"1", mtype=NON, mid=0x200, token=b"", observe=3), now=0.7)
    got = [(e.request_id, e.response.payload) for e in events(client)]  # type: ignore[attr-defined]
    assert got == [(other, b"x"), (rid, b"1")]
    # the token is free again once the request is over: the next request gets the empty one
    client.send_request(Message(Code.GET, uri_path="/y"), OTHER_PEER, 0.8)
    (third,) = sent(client, 0.8)
    assert third.token == b""
