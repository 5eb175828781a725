"""Behavioural campaign: the sans-IO engine against the message layer of RFC 7252.

Each test names the RFC 7252 section it checks. The engine is driven either through the
in-memory :class:`~tests.coap.helpers.Net` or directly, with hand-built datagrams playing the
peer; time is always a parameter (no sleeps, no sockets).
"""

from __future__ import annotations

import itertools
import random

import pytest

from lwm2m.coap import (
    CoapConfig,
    CoapEngine,
    Code,
    Message,
    MessageType,
    ObserverRemoved,
    RequestFailed,
    RequestReceived,
    RequestTimeout,
    ResponseReceived,
    TransmissionParameters,
)

from .helpers import CLIENT, SERVER, Net, advance, events, exact_config, sent

CON, NON, ACK, RST = MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST
OTHER = ("10.0.0.3", 5683)


def engine(**kw: object) -> CoapEngine:
    return CoapEngine(exact_config(**kw), rng=random.Random(7))  # type: ignore[arg-type]


def feed(eng: CoapEngine, msg: Message, src: object = CLIENT, now: float = 0.0) -> list[Message]:
    """Deliver ``msg`` to ``eng`` and return what it sends in reply."""
    eng.receive_datagram(msg.encode(), src, now)
    return sent(eng, now)


def con_get(mid: int, token: bytes = b"tk", path: str = "/r", **kw: object) -> Message:
    return Message(Code.GET, mtype=CON, mid=mid, token=token, uri_path=path, **kw)  # type: ignore[arg-type]


def request_event(eng: CoapEngine) -> RequestReceived:
    (ev,) = events(eng)
    assert isinstance(ev, RequestReceived)
    return ev


# ---------------------------------------------------------------------------------------------
# §4.2 / §4.8: retransmission
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_retransmissions_stay_within_max_transmit_span_and_wait(seed: int) -> None:
    """RFC 7252 §4.2 and §4.8.2: MAX_RETRANSMIT retransmissions, the last no later than
    MAX_TRANSMIT_SPAN after the first transmission, and giving up no later than
    MAX_TRANSMIT_WAIT; the timeout doubles from an initial value in
    [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR]."""
    tp = TransmissionParameters()
    client = CoapEngine(CoapConfig(), rng=random.Random(seed))
    client.send_request(Message(Code.GET, uri_path="/r"), SERVER, 0.0)
    sends = [0.0] * len(client.datagrams_to_send(0.0))
    failed_at = None
    while (when := client.get_timer()) is not None:
        client.handle_timer(when)
        sends += [when] * len(client.datagrams_to_send(when))
        evs = events(client)
        if evs:
            (ev,) = evs
            assert isinstance(ev, RequestFailed)
            assert isinstance(ev.error, RequestTimeout)
            failed_at = when
            break
    assert len(sends) == 1 + tp.max_retransmit
    initial = sends[1]
    assert tp.ack_timeout <= initial <= tp.ack_timeout * tp.ack_random_factor
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert gaps == pytest.approx([initial * 2**i for i in range(tp.max_retransmit)])
    assert sends[-1] <= tp.max_transmit_span
    assert failed_at is not None
    assert failed_at <= tp.max_transmit_wait
    assert failed_at == pytest.approx(initial * (2 ** (tp.max_retransmit + 1) - 1))


def test_max_retransmit_zero_gives_up_after_one_timeout() -> None:
    """RFC 7252 §4.2: the sender gives up after MAX_RETRANSMIT retransmissions; with 0 the
    single transmission times out after ACK_TIMEOUT."""
    tp = TransmissionParameters(ack_timeout=1.5, ack_random_factor=1.0, max_retransmit=0)
    client = CoapEngine(CoapConfig(transmission=tp), rng=random.Random(1))
    rid = client.send_request(Message(Code.GET, uri_path="/r"), SERVER, 0.0)
    assert len(client.datagrams_to_send(0.0)) == 1
    assert client.get_timer() == 1.5
    client.handle_timer(1.5)
    assert client.datagrams_to_send(1.5) == []
    (ev,) = events(client)
    assert isinstance(ev, RequestFailed)
    assert ev.request_id == rid
    assert isinstance(ev.error, RequestTimeout)


def test_ack_from_another_endpoint_does_not_stop_retransmission() -> None:
    """RFC 7252 §4.4/§4.5: an ACK matches a CON by Message ID *and* endpoint; an ACK with the
    right Message ID from someone else is ignored and the CON is retransmitted."""
    client = engine()
    client.send_request(Message(Code.GET, uri_path="/r"), SERVER, 0.0)
    (req,) = sent(client)
    forged = Message(Code.CONTENT, b"forged", mtype=ACK, mid=req.mid, token=req.token)
    assert feed(client, forged, src=OTHER, now=0.1) == []
    assert events(client) == []
    assert client.stats.unmatched == 1
    again = advance(client, 2.0)
    assert [(m.mtype, m.mid) for m in again] == [(CON, req.mid)]
    # the genuine ACK still completes the request
    real = Message(Code.CONTENT, b"real", mtype=ACK, mid=req.mid, token=req.token)
    feed(client, real, src=SERVER, now=2.5)
    (ev,) = events(client)
    assert isinstance(ev, ResponseReceived)
    assert ev.response.payload == b"real"


def test_reset_with_unknown_mid_is_ignored_and_keeps_observers() -> None:
    """RFC 7252 §4.2 / §4.3: a Reset that matches no message is silently ignored; in particular
    it does not cancel an observation it does not match (RFC 7641 §3.6)."""
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    client.send_request(Message(Code.GET, uri_path="/o", observe=0), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    obs = server.send_response(ev.exchange, Message(Code.CONTENT, b"0", observe=0), net.now)
    assert obs is not None
    net.flush()
    server.notify(obs, Message(Code.CONTENT, b"1"), net.now, confirmable=False)
    net.flush()
    last_non = net.sent_by(SERVER)[-1].msg.mid
    before = server.stats.unmatched
    assert feed(server, Message(mtype=RST, mid=(last_non + 1000) & 0xFFFF)) == []
    assert server.stats.unmatched == before + 1
    assert obs.active
    assert events(server) == []
    assert server.observations() == [obs]


# ---------------------------------------------------------------------------------------------
# §4.5: duplicate detection, EXCHANGE_LIFETIME and NON_LIFETIME
# ---------------------------------------------------------------------------------------------


def test_con_duplicate_remembered_for_exchange_lifetime_then_forgotten() -> None:
    """RFC 7252 §4.5 and §4.8.2: a CON is recognised as a duplicate (and answered with the same
    ACK) for EXCHANGE_LIFETIME; once that is long past, the Message ID may be reused by the
    peer for a new request."""
    server = engine()
    lifetime = TransmissionParameters().exchange_lifetime
    assert feed(server, con_get(0x0100, b"a")) == []
    ev = request_event(server)
    server.send_response(ev.exchange, Message(Code.CONTENT, b"first"), 0.0)
    (answer,) = sent(server)
    assert (answer.mtype, answer.mid, answer.token) == (ACK, 0x0100, b"a")
    advance(server, lifetime - 1)
    (again,) = feed(server, con_get(0x0100, b"a"), now=lifetime - 1)
    assert again == answer
    assert events(server) == []
    # well after EXCHANGE_LIFETIME (the cache keeps at most 1/generations longer)
    later = lifetime * (1 + 1 / 8) + 1
    advance(server, later)
    assert server.remembered_exchanges == 0
    assert feed(server, con_get(0x0100, b"b"), now=later) == []
    fresh = request_event(server)
    assert fresh.exchange.request.token == b"b"


def test_non_duplicate_ignored_for_at_least_non_lifetime() -> None:
    """RFC 7252 §4.5: a duplicate NON is silently ignored; the recipient must remember it for
    NON_LIFETIME (§4.8.2)."""
    server = engine()
    non_lifetime = TransmissionParameters().non_lifetime
    msg = Message(Code.GET, mtype=NON, mid=0x0200, token=b"n", uri_path="/r")
    feed(server, msg)
    ev = request_event(server)
    server.send_response(ev.exchange, Message(Code.CONTENT, b"x"), 0.0)
    (resp,) = sent(server)
    assert resp.mtype == NON
    advance(server, non_lifetime - 1)
    assert feed(server, msg, now=non_lifetime - 1) == []
    assert events(server) == []
    assert server.stats.duplicates == 1


def test_same_message_id_from_two_endpoints_is_not_a_duplicate() -> None:
    """RFC 7252 §4.5: a duplicate has the same Message ID *and* source endpoint."""
    server = engine()
    feed(server, con_get(0x4242, b"a"), src=CLIENT)
    feed(server, con_get(0x4242, b"b"), src=OTHER)
    evs = events(server)
    assert [type(e) for e in evs] == [RequestReceived, RequestReceived]
    assert [e.exchange.remote for e in evs] == [CLIENT, OTHER]  # type: ignore[union-attr]
    assert server.stats.duplicates == 0


def test_duplicate_of_a_separately_answered_con_gets_the_empty_ack_again() -> None:
    """RFC 7252 §4.5: a duplicate CON is acknowledged with the same Acknowledgement; after a
    separate response that is the empty ACK, and the application does not see it again
    (the separate response has its own retransmission, §5.2.2)."""
    server = engine()
    feed(server, con_get(0x0300))
    ev = request_event(server)
    (empty,) = advance(server, 0.5)  # empty_ack_delay
    assert (empty.mtype, empty.code, empty.mid) == (ACK, 0, 0x0300)
    server.send_response(ev.exchange, Message(Code.CONTENT, b"sep"), 1.0)
    (separate,) = sent(server, 1.0)
    assert separate.mtype == CON
    assert separate.mid != 0x0300
    assert separate.token == b"tk"
    (dup_answer,) = feed(server, con_get(0x0300), now=1.2)
    assert dup_answer == empty
    assert events(server) == []


# ---------------------------------------------------------------------------------------------
# §5.2: piggybacked and separate responses, empty ACK
# ---------------------------------------------------------------------------------------------


def test_separate_response_may_be_non() -> None:
    """RFC 7252 §5.2.2: after the empty ACK the separate response may be a NON message (with a
    new Message ID and the request's token); the client takes it and sends no ACK."""
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    rid = client.send_request(Message(Code.GET, uri_path="/r"), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    server.acknowledge(ev.exchange, net.now)
    net.flush()
    request = net.sent_by(CLIENT)[0].msg
    reply = Message(Code.CONTENT, b"late", mtype=NON)
    server.send_response(ev.exchange, reply, net.now)
    net.flush()
    wire = [w.msg for w in net.sent_by(SERVER)]
    assert [(m.mtype, m.code) for m in wire] == [(ACK, 0), (NON, Code.CONTENT)]
    assert wire[1].token == request.token
    assert wire[1].mid != request.mid
    assert len(net.sent_by(CLIENT)) == 1  # no ACK for a NON
    (got,) = net.take(CLIENT)
    assert isinstance(got, ResponseReceived)
    assert got.request_id == rid
    assert got.response.payload == b"late"


def test_only_one_empty_ack_per_confirmable_request() -> None:
    """RFC 7252 §5.2.2: the request is acknowledged once; ``acknowledge`` after the empty ACK
    (or for a NON request) sends nothing, and the empty-ACK timer does not fire a second one."""
    server = engine()
    feed(server, con_get(0x0400))
    ev = request_event(server)
    server.acknowledge(ev.exchange, 0.0)
    assert [(m.mtype, m.code) for m in sent(server)] == [(ACK, 0)]
    server.acknowledge(ev.exchange, 0.1)
    assert sent(server, 0.1) == []
    assert advance(server, 1.0) == []  # the empty_ack_delay deadline is gone
    feed(server, Message(Code.GET, mtype=NON, mid=0x0401, token=b"n"))
    non_ev = request_event(server)
    server.acknowledge(non_ev.exchange, 0.2)
    assert sent(server, 0.2) == []


def test_earliest_deadline_wins_between_retransmission_and_empty_ack() -> None:
    """RFC 7252 §4.2 and §5.2.2: an endpoint acting in both roles must wake for whichever comes
    first, the retransmission of its own CON or the empty ACK of a pending request."""
    tp = TransmissionParameters(ack_timeout=0.2, ack_random_factor=1.0)
    both = CoapEngine(CoapConfig(transmission=tp, empty_ack_delay=0.5), rng=random.Random(3))
    both.send_request(Message(Code.GET, uri_path="/x"), SERVER, 0.0)
    sent(both)
    feed(both, con_get(0x0500), src=SERVER)
    events(both)
    assert both.get_timer() == pytest.approx(0.2)
    both.handle_timer(0.2)
    assert [m.mtype for m in sent(both, 0.2)] == [CON]  # the retransmission
    assert both.get_timer() == pytest.approx(0.5)
    both.handle_timer(0.5)
    assert [(m.mtype, m.code, m.mid) for m in sent(both, 0.5)] == [(ACK, 0, 0x0500)]


# ---------------------------------------------------------------------------------------------
# §4.7: NSTART also covers separate responses; §4.2: Reset of a separate response
# ---------------------------------------------------------------------------------------------


def test_nstart_limits_confirmable_separate_responses_too() -> None:
    """RFC 7252 §4.7: with NSTART=1 only one CON (here a separate response) is outstanding per
    peer; the next one leaves when the first is acknowledged."""
    server = engine()
    feed(server, con_get(1, b"a"))
    feed(server, con_get(2, b"b"))
    first, second = (e.exchange for e in events(server))  # type: ignore[union-attr]
    server.acknowledge(first, 0.0)
    server.acknowledge(second, 0.0)
    assert len(sent(server)) == 2  # two empty ACKs
    server.send_response(first, Message(Code.CONTENT, b"1"), 0.1)
    server.send_response(second, Message(Code.CONTENT, b"2"), 0.1)
    (out,) = sent(server, 0.1)
    assert (out.mtype, out.token, out.payload) == (CON, b"a", b"1")
    (nxt,) = feed(server, Message(mtype=ACK, mid=out.mid), now=0.2)
    assert (nxt.mtype, nxt.token, nxt.payload) == (CON, b"b", b"2")


def test_reset_of_a_separate_response_stops_it_and_frees_the_slot() -> None:
    """RFC 7252 §4.2: a Reset matching a CON ends its retransmission; §4.7: the NSTART slot is
    then free for the next CON to that peer."""
    server = engine()
    feed(server, con_get(1, b"a"))
    feed(server, con_get(2, b"b"))
    first, second = (e.exchange for e in events(server))  # type: ignore[union-attr]
    for exchange in (first, second):
        server.acknowledge(exchange, 0.0)
    sent(server)
    server.send_response(first, Message(Code.CONTENT, b"1"), 0.0)
    server.send_response(second, Message(Code.CONTENT, b"2"), 0.0)
    (out,) = sent(server)
    (nxt,) = feed(server, Message(mtype=RST, mid=out.mid), now=0.5)
    assert nxt.payload == b"2"
    retransmitted = advance(server, 100.0)
    assert out.mid not in {m.mid for m in retransmitted}  # the reset one is never resent
    assert {m.mid for m in retransmitted} == {nxt.mid}


def test_ack_with_unmatched_token_on_a_notification_still_acknowledges_it() -> None:
    """RFC 7252 §4.2: an ACK matches by Message ID; one carrying a response we cannot match by
    token still acknowledges our CON notification (no retransmission follows)."""
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, exact_config(notification_confirmable=True), seed=2)
    client.send_request(Message(Code.GET, uri_path="/o", observe=0), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    obs = server.send_response(ev.exchange, Message(Code.CONTENT, b"0", observe=0), net.now)
    assert obs is not None
    sent(server)  # the piggybacked answer is not delivered: we play the client by hand
    server.notify(obs, Message(Code.CONTENT, b"1"), 0.0)
    (note,) = sent(server)
    assert note.mtype == CON
    odd = Message(Code.CONTENT, mtype=ACK, mid=note.mid, token=b"other")
    assert feed(server, odd, now=0.1) == []
    assert not obs.in_flight
    assert advance(server, 60.0) == []
    assert obs.active
    assert not any(isinstance(e, ObserverRemoved) for e in events(server))


def test_ack_with_unmatched_token_on_a_separate_response_still_acknowledges_it() -> None:
    """RFC 7252 §4.2: the same for a CON separate response."""
    server = engine()
    feed(server, con_get(9, b"a"))
    ev = request_event(server)
    server.acknowledge(ev.exchange, 0.0)
    sent(server)
    server.send_response(ev.exchange, Message(Code.CONTENT, b"x"), 0.0)
    (sep,) = sent(server)
    odd = Message(Code.CONTENT, mtype=ACK, mid=sep.mid, token=b"zz")
    assert feed(server, odd, now=0.1) == []
    assert advance(server, 100.0) == []


# ---------------------------------------------------------------------------------------------
# §5.3: tokens
# ---------------------------------------------------------------------------------------------


def test_empty_tokens_to_two_endpoints_are_matched_by_endpoint() -> None:
    """RFC 7252 §5.3.1/§5.3.2: a zero-length token is fine when no other token is in use with
    that destination; responses are matched by token *and* endpoint."""
    net = Net()
    client = net.add(CLIENT, exact_config(token_length=0), seed=1)
    servers = {SERVER: net.add(SERVER, seed=2), OTHER: net.add(OTHER, seed=3)}
    r1 = client.send_request(Message(Code.GET, uri_path="/a"), SERVER, net.now)
    r2 = client.send_request(Message(Code.GET, uri_path="/b"), OTHER, net.now)
    net.flush()
    for addr, srv in servers.items():
        (ev,) = net.take(addr)
        assert isinstance(ev, RequestReceived)
        assert ev.exchange.request.token == b""
        srv.send_response(ev.exchange, Message(Code.CONTENT, addr[0].encode()), net.now)
    net.flush()
    got = {e.request_id: e.response.payload for e in net.take(CLIENT)}  # type: ignore[union-attr]
    assert got == {r1: SERVER[0].encode(), r2: OTHER[0].encode()}


def test_separate_response_token_must_match_the_request() -> None:
    """RFC 7252 §5.3.2: a CON separate response with another token is rejected with RST; the
    right one is acknowledged and delivered."""
    client = engine()
    rid = client.send_request(Message(Code.GET, uri_path="/r"), SERVER, 0.0)
    (req,) = sent(client)
    feed(client, Message(mtype=ACK, mid=req.mid), src=SERVER)
    wrong = Message(Code.CONTENT, mtype=CON, mid=0x7000, token=bytes(b ^ 0xFF for b in req.token))
    (rst,) = feed(client, wrong, src=SERVER, now=0.1)
    assert (rst.mtype, rst.mid) == (RST, 0x7000)
    assert events(client) == []
    right = Message(Code.CONTENT, b"ok", mtype=CON, mid=0x7001, token=req.token)
    (ack,) = feed(client, right, src=SERVER, now=0.2)
    assert (ack.mtype, ack.code, ack.mid) == (ACK, 0, 0x7001)
    (ev,) = events(client)
    assert isinstance(ev, ResponseReceived)
    assert ev.request_id == rid


# ---------------------------------------------------------------------------------------------
# §5.4: option handling
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "number"),
    [
        ([(3, b"a"), (3, b"b")], 3),  # Uri-Host is critical and not repeatable (§5.4.5)
        ([(7, b"\x00\x01\x02")], 7),  # Uri-Port longer than 2 bytes (§5.4.3)
        ([(23, b"\x00\x00\x00\x10")], 23),  # Block2 longer than 3 bytes
        ([(1, b"123456789")], 1),  # If-Match longer than 8 bytes
    ],
)
def test_malformed_critical_option_in_con_request_gets_4_02(
    options: list[tuple[int, bytes]], number: int
) -> None:
    """RFC 7252 §5.4.3 and §5.4.5: a wrong-length or supernumerary option is treated like an
    unrecognized one; for a critical option in a CON request that is a piggybacked 4.02 — and a
    duplicate of that request gets the same 4.02 (§4.5)."""
    server = engine()
    req = Message(Code.GET, mtype=CON, mid=0x0600, token=b"t", options=options)
    (resp,) = feed(server, req)
    assert (resp.mtype, resp.code, resp.mid, resp.token) == (ACK, Code.BAD_OPTION, 0x0600, b"t")
    assert resp.payload.startswith(b"critical option %d:" % number)  # diagnostic (§5.5.2)
    assert events(server) == []
    (again,) = feed(server, req, now=1.0)
    assert again == resp
    assert server.stats.bad_options == 1


def test_malformed_elective_options_are_dropped_but_the_first_occurrence_kept() -> None:
    """RFC 7252 §5.4.5: of a repeated non-repeatable elective option only the supernumerary
    occurrences are ignored; §5.4.3: an elective option of wrong length is ignored."""
    server = engine()
    req = Message(
        Code.GET,
        mtype=CON,
        mid=0x0700,
        token=b"t",
        options=[(11, b"r"), (12, b"\x00\x32"), (12, b"\x00\x3c"), (14, b"\x01\x02\x03\x04\x05")],
    )
    assert feed(server, req) == []
    ev = request_event(server)
    got = ev.exchange.request
    assert got.content_format == 50
    assert got.max_age is None  # five bytes: too long for Max-Age, dropped
    assert got.uri_path == ("r",)


def test_observe_of_wrong_length_in_request_does_not_register() -> None:
    """RFC 7252 §5.4.3: an Observe option (elective) longer than 3 bytes is ignored, so the GET is
    an ordinary one and no observer is added (RFC 7641 §4.1)."""
    server = engine()
    req = Message(Code.GET, mtype=CON, mid=0x0800, token=b"o", options=[(6, b"\x00\x00\x00\x00")])
    feed(server, req)
    ev = request_event(server)
    assert ev.exchange.request.observe is None
    assert server.send_response(ev.exchange, Message(Code.CONTENT, b"x", observe=1), 0.0) is None
    (resp,) = sent(server)
    assert resp.observe is None
    assert server.observations() == []


def test_critical_option_unknown_in_non_response_is_ignored() -> None:
    """RFC 7252 §5.4.1 / §4.3: a NON response with an unrecognized critical option is rejected
    (ignored); the request keeps waiting and takes a later valid response."""
    client = engine()
    rid = client.send_request(Message(Code.GET, uri_path="/r", mtype=NON), SERVER, 0.0)
    (req,) = sent(client)
    bad = Message(Code.CONTENT, b"bad", mtype=NON, mid=1, token=req.token, options=[(65001, b"")])
    feed(client, bad, src=SERVER)
    assert events(client) == []
    assert client.pending_requests == 1
    good = Message(Code.CONTENT, b"good", mtype=NON, mid=2, token=req.token)
    feed(client, good, src=SERVER, now=0.1)
    (ev,) = events(client)
    assert isinstance(ev, ResponseReceived)
    assert ev.request_id == rid
    assert ev.response.payload == b"good"


def test_unknown_version_con_is_silently_ignored_and_no_reset() -> None:
    """RFC 7252 §3: messages with an unknown version number MUST be silently ignored (no RST
    even for a CON: the type field cannot be trusted)."""
    server = engine()
    data = bytearray(con_get(0x0900).encode())
    data[0] = (data[0] & 0x3F) | 0x80  # version 2
    server.receive_datagram(bytes(data), CLIENT, 0.0)
    assert sent(server) == []
    assert events(server) == []


def test_decode_rejects_the_token_length_bits_9_to_15() -> None:
    """RFC 7252 §3: TKL 9-15 are reserved and a message format error; a CON is rejected with a
    Reset carrying its Message ID (§4.2)."""
    server = engine()
    for tkl in range(9, 16):
        server.receive_datagram(bytes((0x40 | tkl, 0x01, 0x0A, tkl)) + b"x" * 15, CLIENT, 0.0)
    out = sent(server)
    assert [(m.mtype, m.mid, m.code, m.token) for m in out] == [
        (RST, 0x0A00 | tkl, 0, b"") for tkl in range(9, 16)
    ]
    assert events(server) == []


def test_message_id_of_a_new_request_differs_from_outstanding_ones() -> None:
    """RFC 7252 §4.4: a new CON gets a Message ID not in use with that endpoint; the
    retransmission of a CON keeps its Message ID."""
    tp = TransmissionParameters(ack_random_factor=1.0, nstart=4)
    client = CoapEngine(CoapConfig(transmission=tp), rng=random.Random(5))
    for i in range(4):
        client.send_request(Message(Code.GET, uri_path=f"/{i}"), SERVER, 0.0)
    first = sent(client)
    assert len({m.mid for m in first}) == 4
    assert len({m.token for m in first}) == 4  # §5.3.1: distinct tokens too
    again = advance(client, 2.0)
    assert sorted(m.mid for m in again) == sorted(m.mid for m in first)
    assert sorted(m.token for m in again) == sorted(m.token for m in first)


def test_peer_forgotten_after_exchange_lifetime_may_reuse_its_message_ids() -> None:
    """RFC 7252 §4.5 / §4.8.2: state about a peer is only needed for EXCHANGE_LIFETIME; once the
    engine has forgotten the peer, a datagram with an old Message ID is a new message, and the
    returning peer's housekeeping deadline is armed again."""
    server = engine(reassembly_timeout=60.0)
    b0 = Message(Code.PUT, b"x" * 16, mtype=CON, mid=1, token=b"a", uri_path="/f")
    b0.options.append((27, b"\x08"))  # Block1 0/1/16: leaves a reassembly (and its timer)
    (cont,) = feed(server, b0)
    assert cont.code == Code.CONTINUE
    assert server.peer_count == 1
    server.handle_timer(400.0)  # one late wake-up: reassembly, cache and peer all expire
    assert server.peer_count == 0
    assert feed(server, con_get(1, b"b"), now=400.0) == []
    ev = request_event(server)
    assert ev.exchange.request.token == b"b"
    assert server.peer_count == 1
    when = server.get_timer()
    assert when is not None
    assert 400.0 < when <= 400.0 + TransmissionParameters().exchange_lifetime
