"""RFC 7252 §4 and §5 reliability and matching rules, in memory with a fake clock."""

from __future__ import annotations

import itertools
import random

import pytest

from lwm2m.coap import (
    BadOptionError,
    CoapConfig,
    CoapEngine,
    CoapUsageError,
    Code,
    Message,
    MessageType,
    RequestCancelled,
    RequestFailed,
    RequestReceived,
    RequestRejected,
    RequestTimeout,
    ResponseReceived,
    TransmissionParameters,
    decode,
)

from .helpers import CLIENT, SERVER, Net, Wire, exact_config

CON, NON, ACK, RST = MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST


def pair(
    client_config: CoapConfig | None = None, server_config: CoapConfig | None = None
) -> tuple[Net, CoapEngine, CoapEngine]:
    net = Net()
    return net, net.add(CLIENT, client_config, seed=1), net.add(SERVER, server_config, seed=2)


def get(path: str = "/r", **kw: object) -> Message:
    return Message(Code.GET, uri_path=path, **kw)  # type: ignore[arg-type]


def serve(net: Net, server: CoapEngine, payload: bytes = b"ok") -> list[RequestReceived]:
    """Answer every pending request on the server."""
    received = [e for e in net.take(SERVER) if isinstance(e, RequestReceived)]
    for ev in received:
        server.send_response(ev.exchange, Message(Code.CONTENT, payload), net.now)
    net.flush()
    return received


def test_retransmission_schedule_and_give_up() -> None:
    """ACK_TIMEOUT 2 s doubling, MAX_RETRANSMIT 4, give up after 2+4+8+16+32 = 62 s (§4.2)."""
    net, client, _ = pair()
    net.drop = lambda w: w.src == CLIENT  # black hole
    rid = client.send_request(get(), SERVER, net.now)
    net.run_until(100)
    times = [w.time for w in net.sent_by(CLIENT)]
    assert times == [0, 2, 6, 14, 30]
    mids = {w.msg.mid for w in net.sent_by(CLIENT)}
    assert len(mids) == 1  # retransmissions reuse the Message ID
    (ev,) = net.take(CLIENT)
    assert isinstance(ev, RequestFailed)
    assert ev.request_id == rid
    assert isinstance(ev.error, RequestTimeout)
    assert client.stats.retransmissions == 4
    assert client.stats.timeouts == 1
    assert client.pending_requests == 0


def test_retransmission_jitter_uses_ack_random_factor_and_injected_rng() -> None:
    """The initial timeout is uniform in [ACK_TIMEOUT, ACK_TIMEOUT*ACK_RANDOM_FACTOR] (§4.2)."""
    firsts = []
    for seed in range(20):
        net = Net()
        client = net.add(CLIENT, CoapConfig(), seed=seed)
        net.drop = lambda w: True
        client.send_request(get(), SERVER, 0.0)
        net.run_until(200)
        times = [w.time for w in net.sent_by(CLIENT)]
        assert len(times) == 5
        first = times[1]
        firsts.append(first)
        assert 2.0 <= first <= 3.0
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps == pytest.approx([first * 2**i for i in range(4)])
    assert len(set(firsts)) > 10  # really random
    # Same seed, same bytes and timings (deterministic tests).
    runs = []
    for _ in range(2):
        net = Net()
        client = net.add(CLIENT, CoapConfig(), seed=42)
        net.drop = lambda w: True
        client.send_request(get(), SERVER, 0.0)
        net.run_until(200)
        runs.append([(w.time, w.data) for w in net.wire])
    assert runs[0] == runs[1]


def test_custom_transmission_parameters() -> None:
    tp = TransmissionParameters(ack_timeout=1.0, ack_random_factor=1.0, max_retransmit=2)
    assert tp.max_transmit_span == 3.0
    assert tp.max_transmit_wait == 7.0
    assert TransmissionParameters().exchange_lifetime == 247.0
    assert TransmissionParameters().non_lifetime == 145.0
    assert TransmissionParameters().max_rtt == 202.0
    net, client, _ = pair(CoapConfig(transmission=tp))
    net.drop = lambda w: True
    client.send_request(get(), SERVER, 0.0)
    net.run_until(50)
    assert [w.time for w in net.sent_by(CLIENT)] == [0, 1, 3]
    assert isinstance(net.take(CLIENT)[0], RequestFailed)
    with pytest.raises(ValueError, match="nstart"):
        TransmissionParameters(nstart=0)
    with pytest.raises(ValueError, match="ack_timeout"):
        TransmissionParameters(ack_timeout=0)
    with pytest.raises(ValueError, match="token_length"):
        CoapConfig(token_length=9)
    with pytest.raises(ValueError, match="block_szx"):
        CoapConfig(block_szx=7)
    with pytest.raises(ValueError, match="request_block2_szx"):
        CoapConfig(request_block2_szx=7)
    with pytest.raises(ValueError, match="dedup"):
        CoapConfig(dedup_generations=1)


def test_piggybacked_response_stops_retransmission() -> None:
    net, client, server = pair()
    dropped = []

    def drop_first_request(w: Wire) -> bool:
        if w.src == CLIENT and not dropped:
            dropped.append(w)
            return True
        return False

    net.drop = drop_first_request
    rid = client.send_request(get(), SERVER, net.now)
    net.flush()
    assert net.take(SERVER) == []
    net.run_until(2.0)  # retransmission reaches the server
    assert len(serve(net, server)) == 1
    (ev,) = net.take(CLIENT)
    assert isinstance(ev, ResponseReceived)
    assert ev.request_id == rid
    assert ev.response.mtype == ACK
    assert ev.response.payload == b"ok"
    net.run_until(200)
    assert len(net.sent_by(CLIENT)) == 2  # no retransmission after the ACK
    assert net.take(CLIENT) == []


def test_duplicate_request_is_answered_from_the_cache() -> None:
    """A retransmitted CON request gets the same response, the application sees it once (§4.5)."""
    net, client, server = pair()
    acks = []

    def drop_first_ack(w: Wire) -> bool:
        if w.src == SERVER and not acks:
            acks.append(w)
            return True
        return False

    net.drop = drop_first_ack
    client.send_request(get(), SERVER, net.now)
    net.flush()
    assert len(serve(net, server)) == 1
    assert net.take(CLIENT) == []  # the ACK was lost
    net.run_until(2.0)
    server_sent = net.sent_by(SERVER)
    assert len(server_sent) == 2
    assert server_sent[0].data == server_sent[1].data
    assert net.take(SERVER) == []  # not delivered twice
    assert server.stats.duplicates == 1
    assert isinstance(net.take(CLIENT)[0], ResponseReceived)


def test_duplicate_of_request_in_progress_gets_an_empty_ack() -> None:
    net, client, server = pair()
    client.send_request(get(), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    # a duplicate of the same datagram arrives while the application works
    request_bytes = net.sent_by(CLIENT)[0].data
    server.receive_datagram(request_bytes, CLIENT, net.now)
    out = server.datagrams_to_send(net.now)
    assert [decode(d).mtype for d, _ in out] == [ACK]
    assert decode(out[0][0]).is_empty()
    server.receive_datagram(request_bytes, CLIENT, net.now)  # and again: the same empty ACK
    assert [decode(d).is_empty() for d, _ in server.datagrams_to_send(net.now)] == [True]
    server.send_response(ev.exchange, Message(Code.CONTENT, b"late"), net.now)
    out = server.datagrams_to_send(net.now)
    assert decode(out[0][0]).mtype == CON  # separate now


def test_separate_response_after_empty_ack() -> None:
    """§5.2.2: empty ACK after empty_ack_delay, then a CON response the client ACKs."""
    net, client, server = pair()
    rid = client.send_request(get(), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    net.run_until(0.5)
    empty_ack = net.sent_by(SERVER)[-1].msg
    assert empty_ack.mtype == ACK and empty_ack.is_empty() and empty_ack.time if False else True
    assert net.sent_by(SERVER)[-1].time == 0.5
    net.run_until(10.0)
    assert len(net.sent_by(CLIENT)) == 1  # the empty ACK stopped retransmission
    server.send_response(ev.exchange, Message(Code.CONTENT, b"sep"), net.now)
    net.flush()
    resp = net.sent_by(SERVER)[-1].msg
    assert resp.mtype == CON
    assert resp.code == Code.CONTENT
    client_ack = net.sent_by(CLIENT)[-1].msg
    assert client_ack.mtype == ACK
    assert client_ack.is_empty()
    assert client_ack.mid == resp.mid
    (r,) = net.take(CLIENT)
    assert isinstance(r, ResponseReceived)
    assert r.request_id == rid
    assert r.response.payload == b"sep"
    net.run_until(100)
    assert net.sent_by(SERVER)[-1].msg.mid == resp.mid
    assert len(net.sent_by(SERVER)) == 2


def test_separate_response_retransmitted_until_acked_and_deduplicated() -> None:
    net, client, server = pair()
    client.send_request(get(), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    server.acknowledge(ev.exchange, net.now)  # explicit empty ACK
    net.flush()
    lost = []

    def drop_client_ack(w: Wire) -> bool:
        if w.src == CLIENT and w.msg.mtype == ACK and not lost:
            lost.append(w)
            return True
        return False

    net.drop = drop_client_ack
    server.send_response(ev.exchange, Message(Code.CONTENT, b"x"), net.now)
    net.run_until(30)
    assert len([w for w in net.sent_by(SERVER) if w.msg.mtype == CON]) == 2
    assert len([e for e in net.take(CLIENT) if isinstance(e, ResponseReceived)]) == 1
    assert client.stats.duplicates == 1


def test_separate_response_without_ack_gives_up() -> None:
    net, client, server = pair()
    client.send_request(get(), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    server.acknowledge(ev.exchange, net.now)
    net.flush()
    net.drop = lambda w: w.src == CLIENT
    server.send_response(ev.exchange, Message(Code.CONTENT, b"x"), net.now)
    net.run_until(200)
    assert len([w for w in net.sent_by(SERVER) if w.msg.mtype == CON]) == 5
    assert server.stats.timeouts == 1


def test_response_timeout_after_empty_ack() -> None:
    config = exact_config(response_timeout=20.0)
    net, client, _server = pair(config)
    rid = client.send_request(get(), SERVER, net.now)
    net.run_until(100)  # the server application never answers
    (ev,) = net.take(CLIENT)
    assert isinstance(ev, RequestFailed)
    assert ev.request_id == rid
    assert isinstance(ev.error, RequestTimeout)
    assert net.now >= 20.5


def test_reset_rejects_the_request() -> None:
    net, client, _ = pair()
    rid = client.send_request(get(), SERVER, net.now)
    ((data, _),) = client.datagrams_to_send(net.now)
    mid = decode(data).mid
    client.receive_datagram(Message(mtype=RST, mid=mid).encode(), SERVER, net.now)
    ev = client.next_event()
    assert isinstance(ev, RequestFailed)
    assert ev.request_id == rid
    assert isinstance(ev.error, RequestRejected)
    client.handle_timer(100.0)
    assert client.datagrams_to_send(100.0) == []  # nothing left to retransmit


def test_nstart_queues_requests_per_peer() -> None:
    """NSTART=1 (§4.7): one outstanding interaction per peer; others wait."""
    net, client, server = pair()
    other = ("10.0.0.3", 5683)
    net.add(other, seed=3)
    ids = [client.send_request(get(f"/{i}"), SERVER, net.now) for i in range(3)]
    client.send_request(get("/x"), other, net.now)
    sent = client.datagrams_to_send(net.now)
    assert [dst for _, dst in sent] == [SERVER, other]
    for data, dst in sent:
        net.engines[dst].receive_datagram(data, CLIENT, net.now)
    net.flush()
    order = []
    for _ in range(3):
        (ev,) = [e for e in net.take(SERVER) if isinstance(e, RequestReceived)]
        order.append(ev.exchange.request.path)
        server.send_response(ev.exchange, Message(Code.CONTENT), net.now)
        net.flush()
    assert order == ["/0", "/1", "/2"]
    got = [e.request_id for e in net.take(CLIENT) if isinstance(e, ResponseReceived)]
    assert got == ids


def test_nstart_slot_freed_by_empty_ack_and_configurable() -> None:
    tp = TransmissionParameters(ack_random_factor=1.0, nstart=2)
    net, client, _server = pair(CoapConfig(transmission=tp))
    for i in range(3):
        client.send_request(get(f"/{i}"), SERVER, net.now)
    assert len(client.datagrams_to_send(net.now)) == 2
    net2, client2, _server2 = pair()
    client2.send_request(get("/a"), SERVER, net2.now)
    client2.send_request(get("/b"), SERVER, net2.now)
    net2.flush()
    assert [e.exchange.request.path for e in net2.take(SERVER)] == ["/a"]  # type: ignore[union-attr]
    net2.run_until(0.5)  # empty ACK frees the slot (no longer outstanding, §4.7)
    assert [e.exchange.request.path for e in net2.take(SERVER)] == ["/b"]  # type: ignore[union-attr]


def test_ping_is_answered_with_reset() -> None:
    _, _, server = pair()
    server.receive_datagram(Message(mtype=CON, mid=0x1234).encode(), CLIENT, 0.0)
    ((data, addr),) = server.datagrams_to_send(0.0)
    assert addr == CLIENT
    assert data == b"\x70\x00\x12\x34"
    assert server.stats.pings == 1


def test_non_request_and_response() -> None:
    net, client, server = pair()
    rid = client.send_request(get(mtype=NON), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.mtype == NON
    server.send_response(ev.exchange, Message(Code.CONTENT, b"n"), net.now)
    net.flush()
    assert net.sent_by(SERVER)[-1].msg.mtype == NON
    (r,) = net.take(CLIENT)
    assert isinstance(r, ResponseReceived)
    assert r.request_id == rid
    # a duplicate NON request is silently ignored
    server.receive_datagram(net.sent_by(CLIENT)[0].data, CLIENT, net.now)
    assert server.datagrams_to_send(net.now) == []
    assert server.next_event() is None
    assert server.stats.duplicates == 1


def test_non_request_times_out_and_holds_nstart_until_then() -> None:
    config = exact_config(response_timeout=5.0)
    net, client, _ = pair(config)
    net.drop = lambda w: True
    rid = client.send_request(get(mtype=NON), SERVER, net.now)
    client.send_request(get("/2", mtype=NON), SERVER, net.now)
    net.flush()
    assert len(net.sent_by(CLIENT)) == 1
    net.run_until(5.0)
    events = net.take(CLIENT)
    assert isinstance(events[0], RequestFailed)
    assert events[0].request_id == rid
    assert len(net.sent_by(CLIENT)) == 2  # the second went out when the first timed out


def test_unmatched_responses_are_rejected() -> None:
    """§5.3.2: a CON/NON response with an unknown token, or from another endpoint, gets RST."""
    net, client, _ = pair()
    client.send_request(get(), SERVER, net.now)
    ((data, _),) = client.datagrams_to_send(net.now)
    token = decode(data).token
    stranger = Message(Code.CONTENT, mtype=CON, mid=9, token=b"nope")
    client.receive_datagram(stranger.encode(), SERVER, net.now)
    wrong_peer = Message(Code.CONTENT, mtype=NON, mid=10, token=token)
    client.receive_datagram(wrong_peer.encode(), ("10.9.9.9", 1), net.now)
    out = client.datagrams_to_send(net.now)
    assert [(decode(d).mtype, decode(d).mid) for d, _ in out] == [(RST, 9), (RST, 10)]
    assert client.next_event() is None
    # a duplicate of the stranger is answered with the same RST
    client.receive_datagram(stranger.encode(), SERVER, net.now)
    assert [decode(d).mtype for d, _ in client.datagrams_to_send(net.now)] == [RST]
    # a late or duplicate ACK is ignored
    client.receive_datagram(Message(mtype=ACK, mid=4242).encode(), SERVER, net.now)
    assert client.datagrams_to_send(net.now) == []
    assert client.stats.unmatched >= 3


@pytest.mark.parametrize("length", [0, 1, 4, 8])
def test_tokens_are_random_and_of_configured_length(length: int) -> None:
    net, client, _ = pair(exact_config(token_length=length))
    tokens = []
    for i in range(20):
        client.send_request(get(f"/{i}"), (f"10.1.0.{i}", 1), net.now)
    for data, _ in client.datagrams_to_send(net.now):
        tokens.append(decode(data).token)
    assert all(len(t) == length for t in tokens)
    if length >= 4:
        assert len(set(tokens)) == 20


def test_unknown_critical_option_in_con_request_gets_4_02() -> None:
    _, _, server = pair()
    req = Message(Code.GET, mtype=CON, mid=5, token=b"t", options=[(2049, b"?")])
    server.receive_datagram(req.encode(), CLIENT, 0.0)
    ((data, _),) = server.datagrams_to_send(0.0)
    resp = decode(data)
    assert (resp.mtype, resp.code, resp.mid, resp.token) == (ACK, Code.BAD_OPTION, 5, b"t")
    assert server.next_event() is None
    # NON: silently ignored (RFC 7252 §5.4.1)
    server.receive_datagram(
        Message(Code.GET, mtype=NON, mid=6, options=[(2049, b"")]).encode(), CLIENT, 0.0
    )
    assert server.datagrams_to_send(0.0) == []
    assert server.next_event() is None
    # unknown elective options are ignored and the request is delivered
    server.receive_datagram(
        Message(Code.GET, mtype=CON, mid=7, options=[(2048, b"")]).encode(), CLIENT, 0.0
    )
    ev = server.next_event()
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.options == []


def test_unknown_critical_option_in_responses_is_rejected() -> None:
    net, client, server = pair()
    rid = client.send_request(get(), SERVER, net.now)
    ((data, _),) = client.datagrams_to_send(net.now)
    req = decode(data)
    # a separate CON response with an unknown critical option: RST, request still pending
    bad = Message(Code.CONTENT, mtype=CON, mid=77, token=req.token, options=[(2049, b"")])
    client.receive_datagram(bad.encode(), SERVER, net.now)
    ((rst, _),) = client.datagrams_to_send(net.now)
    assert decode(rst).mtype == RST
    assert decode(rst).mid == 77
    assert client.next_event() is None
    # a piggybacked one: the request fails with BadOptionError
    bad_ack = Message(Code.CONTENT, mtype=ACK, mid=req.mid, token=req.token, options=[(9999, b"")])
    client.receive_datagram(bad_ack.encode(), SERVER, net.now)
    ev = client.next_event()
    assert isinstance(ev, RequestFailed)
    assert ev.request_id == rid
    assert isinstance(ev.error, BadOptionError)
    assert ev.error.number == 9999
    del server


@pytest.mark.parametrize(
    ("datagram", "answer"),
    [
        (b"\x49\x01\x00\x05" + b"x" * 9, "rst"),  # CON with TKL 9: format error -> RST (§4.2)
        (b"\x40\x01\x00\x05\xf0", "rst"),  # CON with nibble 15 -> RST
        (b"\x59\x01\x00\x05", "drop"),  # NON format error: silently ignored (§4.3)
        (b"\x69\x01\x00\x05", "drop"),  # ACK format error: ignored (§4.1)
        (b"\x80\x01\x00\x05", "drop"),  # unknown version: ignored (§3)
        (b"\x00", "drop"),  # too short
        (b"\x40\x21\x00\x05", "rst"),  # CON with reserved class 1.01 (§4.2)
        (b"\x50\xe1\x00\x05", "drop"),  # NON with reserved class 7.01
        (b"\x40\x61\x00\x05", "rst"),  # CON with class 3
        (b"\x60\x01\x00\x05", "drop"),  # ACK carrying a request
        (b"\x50\x00\x00\x05", "drop"),  # NON Empty (§4.3)
        (b"\x70\x45\x00\x05", "drop"),  # RST carrying a response (§4.1)
        (b"\x70\x00\x00\x05", "drop"),  # unmatched RST
    ],
)
def test_malformed_and_unprocessable_messages(datagram: bytes, answer: str) -> None:
    _, _, server = pair()
    server.receive_datagram(datagram, CLIENT, 0.0)
    out = server.datagrams_to_send(0.0)
    assert server.next_event() is None
    if answer == "rst":
        assert out == [(b"\x70\x00\x00\x05", CLIENT)]
    else:
        assert out == []


def test_no_response_option() -> None:
    """RFC 7967: suppress 2.xx; a CON request still gets its empty ACK."""
    net, client, server = pair()
    for mtype in (CON, NON):
        req = get(mtype=mtype)
        req.no_response = 2
        client.send_request(req, SERVER, net.now)
        net.flush()
        (ev,) = net.take(SERVER)
        assert isinstance(ev, RequestReceived)
        before = len(net.sent_by(SERVER))
        server.send_response(ev.exchange, Message(Code.CONTENT, b"x"), net.now)
        net.flush()
        sent = net.sent_by(SERVER)[before:]
        if mtype == CON:
            assert [(w.msg.mtype, w.msg.code) for w in sent] == [(ACK, 0)]
        else:
            assert sent == []
    # 4.xx is not suppressed by mask 2
    net, client, server = pair()
    req = get(mtype=NON)
    req.no_response = 2
    client.send_request(req, SERVER, net.now)
    net.flush()
    (ev,) = [e for e in net.take(SERVER) if isinstance(e, RequestReceived)]
    server.send_response(ev.exchange, Message(Code.NOT_FOUND), net.now)
    net.flush()
    assert net.sent_by(SERVER)[-1].msg.code == Code.NOT_FOUND


def test_api_misuse() -> None:
    net, client, server = pair()
    with pytest.raises(CoapUsageError, match="not a method"):
        client.send_request(Message(Code.CONTENT), SERVER, 0.0)
    client.send_request(get(), SERVER, 0.0)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    with pytest.raises(CoapUsageError, match="not a response"):
        server.send_response(ev.exchange, Message(Code.GET), 0.0)
    ev2 = ev.exchange
    assert ev2.responded
    assert "Exchange" in repr(ev2)
    with pytest.raises(CoapUsageError, match="already"):
        server.send_response(ev.exchange, Message(Code.CONTENT), 0.0)


def test_cancel_request_then_late_response_is_reset() -> None:
    net, client, server = pair()
    rid = client.send_request(get(), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    server.acknowledge(ev.exchange, net.now)
    net.flush()
    client.cancel_request(rid, net.now)
    client.cancel_request(rid, net.now)  # idempotent
    server.send_response(ev.exchange, Message(Code.CONTENT), net.now)
    net.flush()
    assert net.take(CLIENT) == []
    assert net.sent_by(CLIENT)[-1].msg.mtype == RST


def test_shutdown_fails_pending_requests() -> None:
    net, client, _ = pair()
    ids = [client.send_request(get(f"/{i}"), SERVER, net.now) for i in range(2)]
    client.shutdown(net.now)
    events = []
    while (e := client.next_event()) is not None:
        events.append(e)
    assert [e.request_id for e in events] == ids  # type: ignore[union-attr]
    assert all(
        isinstance(e, RequestFailed) and isinstance(e.error, RequestCancelled) for e in events
    )
    assert client.get_timer() is None or client.pending_requests == 0


def test_idle_peers_are_forgotten() -> None:
    net, client, server = pair()
    client.send_request(get(), SERVER, net.now)
    net.flush()
    serve(net, server)
    assert server.peer_count == 1
    assert server.remembered_exchanges == 1
    net.run_until(600)
    assert server.peer_count == 0
    assert server.remembered_exchanges == 0
    assert client.peer_count == 0
    assert server.get_timer() is None


def test_stats_as_dict() -> None:
    net, client, server = pair()
    client.send_request(get(), SERVER, net.now)
    net.flush()
    serve(net, server)
    stats = server.stats.as_dict()
    assert stats["datagrams_received"] == 1
    assert stats["datagrams_sent"] == 1


def test_default_tokens_come_from_a_csprng_in_batches() -> None:
    engine = CoapEngine()
    assert isinstance(engine._token_rng, random.SystemRandom)
    assert not isinstance(engine._rng, random.SystemRandom)  # jitter and MIDs need no secrecy
    tokens = {engine._new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(t) == 8 for t in tokens)
