"""The engine's inlined hot paths agree with the general code they short-cut."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from lwm2m.coap import (
    BadOptionError,
    Block,
    CoapEngine,
    Code,
    Message,
    MessageType,
    NotificationReceived,
    RequestCancelled,
    RequestFailed,
    RequestReceived,
    RequestTimeout,
    ResponseReceived,
    decode,
)
from lwm2m.coap.dedup import DuplicateCache
from lwm2m.coap.events import notification_received, request_received, response_received

from .helpers import CLIENT, SERVER, Net, RecordingWaiter, exact_config
from .test_observe import observe_setup


def test_fast_events_equal_the_dataclass_events() -> None:
    msg = Message(Code.CONTENT, b"x")
    for fast, slow in (
        (response_received(3, msg, CLIENT), ResponseReceived(3, msg, CLIENT)),
        (notification_received(3, msg, CLIENT), NotificationReceived(3, msg, CLIENT)),
    ):
        assert type(fast) is type(slow)
        assert fast == slow
        assert repr(fast) == repr(slow)
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.request_id = 4  # type: ignore[misc]
    sentinel: object = object()
    event = request_received(sentinel)  # type: ignore[arg-type]
    assert type(event) is RequestReceived
    assert event == RequestReceived(sentinel)  # type: ignore[arg-type]
    assert hash(event) == hash(RequestReceived(sentinel))  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.exchange = sentinel  # type: ignore[misc]


def _random_response(rng: random.Random) -> Message:
    numbers = rng.sample([1, 4, 5, 6, 8, 12, 14, 17, 20, 35, 60, 258, 2049], rng.randint(0, 6))
    options = [(n, rng.randbytes(rng.choice([0, 1, 2, 12, 13, 14, 300]))) for n in numbers]
    return Message(
        rng.choice([Code.CONTENT, Code.CHANGED, Code.VALID]),
        rng.randbytes(rng.choice([0, 1, 5, 100])),
        options=options,
    )


@pytest.mark.parametrize("sequence", [0, 1, 254, 255, 256, 65_535, 65_536, (1 << 24) - 1])
def test_notification_datagram_equals_the_general_encoding(sequence: int) -> None:
    """``_transmit_notification`` (cached option blocks) builds the bytes that
    ``_notification_message`` + ``Message.encode`` build, for any options and sequence."""
    _net, _client, server, _rid, obs = observe_setup(notification_confirmable=True)
    rng = random.Random(sequence)
    for _ in range(40):
        response = _random_response(rng)
        obs.sequence = sequence
        reference = server._notification_message(obs, response)
        reference.mid = obs.peer.next_mid
        expected = reference.encode()
        obs.sequence = sequence
        server._transmit_notification(obs, response, 0.0)
        assert obs.datagram == expected
        assert decode(obs.datagram) == reference
        server._stop_transmission(obs)
    server.datagrams_to_send(0.0)


def test_notification_cache_follows_a_changed_response() -> None:
    """The same Message object, changed after a notification, is encoded afresh."""
    net, _client, server, _rid, obs = observe_setup(notification_confirmable=True)
    response = Message(Code.CONTENT, b"one", content_format=0)
    server.notify(obs, response, net.now)
    net.flush()
    response.payload = b"two"
    server.notify(obs, response, net.now)
    net.flush()
    response.content_format = 60
    server.notify(obs, response, net.now)
    net.flush()
    got = [e.response for e in net.take(CLIENT) if isinstance(e, NotificationReceived)]
    assert [(m.payload, m.content_format) for m in got] == [(b"one", 0), (b"two", 0), (b"two", 60)]
    assert [m.observe for m in got] == [2, 3, 4]  # after the registration response's 1


def test_con_notifications_are_retransmitted_from_the_fast_path() -> None:
    net, _client, server, _rid, obs = observe_setup(notification_confirmable=True)
    net.drop = lambda w: w.src == SERVER and decode(w.data).mtype == MessageType.CON
    server.notify(obs, Message(Code.CONTENT, b"lost"), net.now)
    net.flush()
    first = [w for w in net.sent_by(SERVER) if decode(w.data).mtype == MessageType.CON]
    net.drop = None
    net.run_until(net.now + 2.5)  # exact_config: ACK_TIMEOUT 2 s, no jitter
    again = [w for w in net.sent_by(SERVER) if decode(w.data).mtype == MessageType.CON]
    assert len(first) == 1
    assert len(again) == 2
    assert again[1].data == first[0].data  # the same datagram, same Message ID
    assert server.stats.retransmissions == 1
    got = [e for e in net.take(CLIENT) if isinstance(e, NotificationReceived)]
    assert [e.response.payload for e in got] == [b"lost"]
    assert not obs.in_flight


def test_plain_request_fast_path_releases_nstart_and_cleans_up() -> None:
    """NSTART = 1: the second request waits for the first; the inlined piggybacked-response path
    frees the slot, forgets the token and fires exactly one event per request."""
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    first = client.send_request(Message(Code.GET, uri_path="/a"), SERVER, net.now)
    second = client.send_request(Message(Code.GET, uri_path="/b"), SERVER, net.now)
    assert client.pending_requests == 2
    answered = []
    for _ in range(2):
        net.flush()
        (ev,) = net.take(SERVER)
        assert isinstance(ev, RequestReceived)
        answered.append(ev.exchange.request.uri_path)
        server.send_response(ev.exchange, Message(Code.CONTENT, b"r"), net.now)
    net.flush()
    events = net.take(CLIENT)
    assert [(type(e), e.request_id) for e in events] == [  # type: ignore[union-attr]
        (ResponseReceived, first),
        (ResponseReceived, second),
    ]
    assert answered == [("a",), ("b",)]
    assert client.pending_requests == 0
    assert not client._by_token
    assert not client._con_out
    net.run_until(net.now + 300)
    assert client.stats.retransmissions == 0
    assert client.stats.timeouts == 0


def test_fast_request_path_matches_the_wire_format() -> None:
    engine = CoapEngine(exact_config(), rng=random.Random(5))
    request = Message(Code.GET, uri_path="/3/0", uri_query=["x=1"])
    rid = engine.send_request(request, SERVER, 0.0)
    ((data, addr),) = engine.datagrams_to_send(0.0)
    assert addr == SERVER
    assert data == request.encode()
    sent = decode(data)
    assert sent.mtype == MessageType.CON
    assert sent.uri_path == ("3", "0")
    assert engine.get_timer() == pytest.approx(2.0)
    engine.cancel_request(rid, 0.0)
    assert engine.pending_requests == 0


def test_first_transmission_timers_fifo_with_jitter_keep_rfc_timing() -> None:
    """First-transmission deadlines go to a FIFO, or to the heap when jitter puts one before the
    FIFO's tail; either way every request keeps its own ACK_TIMEOUT*jitter doubling schedule
    (RFC 7252 §4.2) and timers fire in deadline order."""
    engine = CoapEngine(rng=random.Random(7))  # default ACK_RANDOM_FACTOR 1.5: jitter
    peers = [("192.0.2.1", 5000 + i) for i in range(40)]
    sent: dict[object, list[float]] = {peer: [] for peer in peers}
    for i, peer in enumerate(peers):
        now = i * 0.05
        engine.send_request(Message(Code.GET, uri_path="r"), peer, now)
        for _, addr in engine.datagrams_to_send(now):
            sent[addr].append(now)
    assert engine._fifo
    assert engine._timers
    fired: list[float] = []
    while (when := engine.get_timer()) is not None and when < 200:
        engine.handle_timer(when)
        for _, addr in engine.datagrams_to_send(when):
            sent[addr].append(when)
            fired.append(when)
        while engine.next_event() is not None:
            pass
    assert fired == sorted(fired)
    for times in sent.values():
        assert len(times) == 5  # first transmission and MAX_RETRANSMIT = 4
        first = times[1] - times[0]
        assert 2.0 <= first <= 3.0
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps == pytest.approx([first * 2**i for i in range(4)])
    assert engine.pending_requests == 0


def test_message_keyword_options_are_sorted() -> None:
    msg = Message(Code.GET, uri_path="/a/b", uri_query=["x=1"], observe=0, accept=0)
    assert [n for n, _ in msg.options] == [6, 11, 11, 15, 17]
    assert Message(Code.GET, uri_path=("a", "b")).options == [(11, b"a"), (11, b"b")]
    opts = [(12, b"\x00"), (11, b"p"), (11, b"q")]
    assert Message(Code.GET, options=opts).options == [(11, b"p"), (11, b"q"), (12, b"\x00")]
    assert Message(Code.GET, options=[(11, b"z")], uri_path="a").options == [
        (11, b"z"),
        (11, b"a"),
    ]


def _piggybacked(engine: CoapEngine, options: list[tuple[int, bytes]]) -> object:
    engine.send_request(Message(Code.GET, uri_path="r"), SERVER, 0.0)
    ((data, _),) = engine.datagrams_to_send(0.0)
    req = decode(data)
    response = Message(
        Code.CONTENT,
        b"x" * 16,
        mtype=MessageType.ACK,
        mid=req.mid,
        token=req.token,
        options=options,
    )
    engine.receive_datagram(response.encode(), SERVER, 0.0)
    return engine.next_event()


def test_piggybacked_response_option_checks() -> None:
    """The inlined option check of piggybacked responses applies RFC 7252 §5.4 like
    check_options: elective offenders dropped, a critical one rejects the response."""
    engine = CoapEngine(exact_config(), rng=random.Random(1))
    ev = _piggybacked(engine, [(12, b"\x00")])
    assert isinstance(ev, ResponseReceived)
    assert ev.response.options == [(12, b"\x00")]
    # repeated non-repeatable elective, unknown elective, wrong-length elective: dropped
    ev = _piggybacked(engine, [(12, b"\x00"), (12, b"\x01"), (14, b"\x01\x02\x03\x04\x05")])
    assert isinstance(ev, ResponseReceived)
    assert ev.response.options == [(12, b"\x00")]
    ev = _piggybacked(engine, [(12, b"\x00"), (1000, b"z")])
    assert isinstance(ev, ResponseReceived)
    assert ev.response.options == [(12, b"\x00")]
    assert engine.stats.bad_options == 0
    # unknown critical option: the request fails
    ev = _piggybacked(engine, [(12, b"\x00"), (1001, b"z")])
    assert isinstance(ev, RequestFailed)
    assert isinstance(ev.error, BadOptionError)
    assert engine.stats.bad_options == 1
    # Block2 behind a dropped elective option still starts the block-wise fetch
    ev = _piggybacked(engine, [(1000, b"z"), (23, bytes([Block(0, True, 0).encode()]))])
    assert ev is None
    ((data, _),) = engine.datagrams_to_send(0.0)
    assert decode(data).block2 == Block(1, False, 0)
    assert engine.pending_requests == 1


def test_deadline_added_before_reports_every_earlier_deadline() -> None:
    """A driver whose timer is armed may skip get_timer() while deadline_added_before() is
    False: each source of deadlines (first transmissions, retransmission timers, empty ACKs, the
    duplicate cache, the peer sweep) reports, and answered requests leave the timer queues."""
    client = CoapEngine(exact_config(), rng=random.Random(1))
    assert client.get_timer() is None
    client.send_request(Message(Code.GET, uri_path="/a"), SERVER, 0.0)
    assert client.deadline_added_before(float("inf"))  # first transmission and peer sweep
    armed = client.get_timer()
    assert armed == pytest.approx(2.0)  # ACK_TIMEOUT
    assert not client.deadline_added_before(armed)  # get_timer() took everything into account
    ((data, _),) = client.datagrams_to_send(0.0)
    request = decode(data)
    response = Message(Code.CONTENT, b"x", mtype=MessageType.ACK, mid=request.mid)
    response.token = request.token
    client.receive_datagram(response.encode(), SERVER, 0.1)
    assert isinstance(client.next_event(), ResponseReceived)
    assert not client.deadline_added_before(armed)
    assert not client._fifo  # the answered request is not kept alive until the timer fires
    # The timer fires (nothing due), the driver re-arms at the peer sweep; a new request's
    # first transmission is earlier and must be reported.
    client.handle_timer(armed)
    armed = client.get_timer()
    assert armed is not None
    assert armed > 10.0
    client.send_request(Message(Code.GET, uri_path="/b"), SERVER, 3.0)
    assert client.deadline_added_before(armed)
    assert client.get_timer() == pytest.approx(5.0)
    assert not client.deadline_added_before(5.0)

    server = CoapEngine(exact_config(), rng=random.Random(2))
    con = Message(Code.GET, mtype=MessageType.CON, mid=7, token=b"t", uri_path="/r")
    server.receive_datagram(con.encode(), CLIENT, 0.0)
    assert server.deadline_added_before(float("inf"))  # duplicate cache, peer sweep
    armed = server.get_timer()
    assert armed == pytest.approx(0.5)  # the empty ACK of the unanswered request
    (event,) = [server.next_event()]
    assert isinstance(event, RequestReceived)
    server.send_response(event.exchange, Message(Code.CONTENT), 0.1)
    far = 100.0
    assert not server.deadline_added_before(far)  # answered: no empty ACK due any more
    con2 = Message(Code.GET, mtype=MessageType.CON, mid=8, token=b"u", uri_path="/r")
    server.receive_datagram(con2.encode(), CLIENT, 0.2)
    assert server.deadline_added_before(far)  # unanswered: its empty ACK is due at 0.7
    assert not server.deadline_added_before(0.7)
    assert server.get_timer() == pytest.approx(0.7)


def test_duplicate_cache_is_one_dict_across_generations() -> None:
    """Entries of every generation are found with one look-up; dropping a generation (expiry or
    the hard cap) removes exactly its keys, also after they were updated."""
    cache = DuplicateCache(80.0, max_entries=15, generations=4)  # 3 per generation, 5 generations
    assert not cache.deadline_added
    cache.add(1, b"a", 0.0)
    assert cache.deadline_added  # the first entry of a generation
    cache.deadline_added = False
    cache.add(2, b"b", 1.0)
    assert not cache.deadline_added
    cache.put(3, b"c", 25.0)  # rotates (slice of 20 s): 1 and 2 are closed at 25
    cache.put(1, b"A", 26.0)  # updated in its closed generation
    assert [cache.get(k) for k in (1, 2, 3)] == [b"A", b"b", b"c"]
    assert len(cache) == 3
    cache.expire(25.0 + 80.0)
    assert [cache.get(k) for k in (1, 2, 3)] == [None, None, b"c"]
    cache.add(1, b"again", 106.0)  # a key that expired comes back into a new generation
    assert cache.get(1) == b"again"
    for key in range(100, 140):  # the cap evicts whole generations, oldest first
        cache.add(key, b"", 107.0)
    assert len(cache) <= cache.capacity
    assert cache.evicted > 0
    assert cache.get(139) == b""
    assert cache.get(3) is None


def _answer(net: Net, server: CoapEngine, response: Message) -> None:
    net.flush()
    for ev in net.take(SERVER):
        assert isinstance(ev, RequestReceived)
        server.send_response(ev.exchange, response, net.now)
    net.flush()


def test_waiter_takes_the_piggybacked_response_instead_of_an_event() -> None:
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    waiter = RecordingWaiter()
    client.send_request(Message(Code.GET, uri_path="/a"), SERVER, net.now, waiter)
    _answer(net, server, Message(Code.CONTENT, b"r", content_format=0))
    assert net.take(CLIENT) == []
    assert waiter.result is not None
    assert waiter.result.payload == b"r"
    assert waiter.result.content_format == 0
    assert client.pending_requests == 0
    assert not client._by_token


def test_waiter_takes_a_block_wise_response_and_a_separate_one() -> None:
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, exact_config(block_szx=0), seed=2)
    body = bytes(range(100))
    waiter = RecordingWaiter()
    client.send_request(Message(Code.GET, uri_path="/big"), SERVER, net.now, waiter)
    _answer(net, server, Message(Code.CONTENT, body))
    assert net.take(CLIENT) == []
    assert waiter.result is not None
    assert waiter.result.payload == body
    # A separate response (empty ACK first, RFC 7252 §5.2.2).
    separate = RecordingWaiter()
    client.send_request(Message(Code.GET, uri_path="/slow"), SERVER, net.now, separate)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    server.acknowledge(ev.exchange, net.now)
    net.flush()
    assert separate.result is None
    server.send_response(ev.exchange, Message(Code.CONTENT, b"late"), net.now)
    net.flush()
    assert net.take(CLIENT) == []
    assert separate.result is not None
    assert separate.result.payload == b"late"
    assert client.pending_requests == 0


def test_waiter_takes_failures_and_a_done_waiter_is_left_alone() -> None:
    net = Net()
    net.drop = lambda w: True  # a black hole: every request times out
    client = net.add(CLIENT, seed=1)
    timed_out = RecordingWaiter()
    client.send_request(Message(Code.GET, uri_path="/a"), SERVER, net.now, timed_out)
    net.run_until(net.now + 300)
    assert net.take(CLIENT) == []
    assert isinstance(timed_out.error, RequestTimeout)
    # Already done (a cancelled future): neither set_result nor set_exception is called.
    net.drop = None
    server = net.add(SERVER, seed=2)
    cancelled = RecordingWaiter(done=True)
    client.send_request(Message(Code.GET, uri_path="/a"), SERVER, net.now, cancelled)
    _answer(net, server, Message(Code.CONTENT))
    assert net.take(CLIENT) == []
    assert client.pending_requests == 0
    # Shutdown fails a pending request through its waiter.
    pending = RecordingWaiter()
    client.send_request(Message(Code.GET, uri_path="/a"), SERVER, net.now, pending)
    client.shutdown(net.now)
    assert net.take(CLIENT) == []
    assert isinstance(pending.error, RequestCancelled)


def test_fail_requests_ends_the_waiting_requests_to_one_peer() -> None:
    """A driver whose transport lost a peer (a secure session that failed) fails the requests
    to it that wait on a waiter, queued ones (NSTART) included; an event-driven request and the
    requests to other peers go on."""
    other = ("10.9.9.9", 5683)
    net = Net()
    net.drop = lambda w: True  # nothing is answered
    client = net.add(CLIENT, seed=1)
    error = RequestCancelled("session failed")
    assert client.fail_requests(SERVER, error, net.now) == 0  # an unknown peer
    sent, queued, elsewhere = RecordingWaiter(), RecordingWaiter(), RecordingWaiter()
    client.send_request(Message(Code.GET, uri_path="/a"), SERVER, net.now, sent)
    client.send_request(Message(Code.GET, uri_path="/b"), SERVER, net.now, queued)  # NSTART 1
    evented = client.send_request(Message(Code.GET, uri_path="/c"), SERVER, net.now)
    client.send_request(Message(Code.GET, uri_path="/d"), other, net.now, elsewhere)
    assert client.pending_requests == 4
    client.datagrams_to_send(net.now)  # the three requests' first transmissions
    assert client.fail_requests(SERVER, error, net.now) == 2
    assert sent.error is error
    assert queued.error is error
    assert elsewhere.error is None
    assert client.pending_requests == 2
    # Only the event-driven request goes out: the queued one ended before the slot came free.
    (started,) = client.datagrams_to_send(net.now)
    assert started[1] == SERVER
    assert decode(started[0]).uri_path == ("c",)
    # The event-driven request took the freed NSTART slot; it and the other peer's request time out.
    net.run_until(net.now + 300)
    failures = {ev.request_id: ev.error for ev in net.take(CLIENT)}
    assert list(failures) == [evented]
    assert isinstance(failures[evented], RequestTimeout)
    assert isinstance(elsewhere.error, RequestTimeout)
    assert client.pending_requests == 0
    assert client.fail_requests(SERVER, error, net.now) == 0  # nothing pending any more
