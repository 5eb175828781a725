"""Random and mutated datagrams into the receive path (h11's fuzz invariant, for CoAP).

Invariant: ``receive_datagram`` never raises, and everything the engine sends back to a stranger
is an RST, an empty ACK, a 4.xx/5.03 error or a 2.31 Continue for a well-formed Block1 block —
never a crash, never a response the application did not make. Well-formed requests become
``RequestReceived`` events (the fuzz "application" never answers them), and the engine's state
stays bounded.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.coap import (
    Block,
    CoapEngine,
    Code,
    Message,
    MessageType,
    RequestReceived,
    decode,
)

from .helpers import exact_config

pytestmark = pytest.mark.fuzz

PEERS = [(f"192.0.2.{i}", 5683) for i in range(8)]


def seeds() -> list[bytes]:
    corpus = []
    get = Message(Code.GET, mtype=MessageType.CON, mid=1, token=b"\x01\x02", uri_path="/3/0/1")
    get.uri_query = ["a=1"]
    get.accept = 11542
    corpus.append(get.encode())
    obs = Message(Code.GET, mtype=MessageType.NON, mid=2, token=b"o", uri_path="/x", observe=0)
    corpus.append(obs.encode())
    put = Message(Code.PUT, b"x" * 64, mtype=MessageType.CON, mid=3, token=b"p", uri_path="/u")
    put.block1 = Block(0, True, 2)
    put.size1 = 300
    put.request_tag = b"\x07"
    corpus.append(put.encode())
    get2 = Message(Code.GET, mtype=MessageType.CON, mid=4, token=b"b", uri_path="/big")
    get2.block2 = Block(1, False, 6)
    corpus.append(get2.encode())
    resp = Message(Code.CONTENT, b"22.5", mtype=MessageType.CON, mid=5, token=b"r", observe=9)
    resp.block2 = Block(0, True, 0)
    resp.etag = b"\x01"
    corpus.append(resp.encode())
    corpus.append(Message(mtype=MessageType.ACK, mid=6).encode())
    corpus.append(Message(mtype=MessageType.RST, mid=7).encode())
    corpus.append(Message(mtype=MessageType.CON, mid=8).encode())
    fetch = Message(Code.FETCH, b'["/3/0"]', mtype=MessageType.CON, mid=9, content_format=112)
    fetch.no_response = 26
    fetch.echo = b"\x00" * 8
    fetch.oscore = b"\x09"
    fetch.proxy_uri = "coap://x/" + "y" * 20
    corpus.append(fetch.encode())
    return corpus


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and b:  # flip a bit
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # replace a byte
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 2:  # insert
            b.insert(
                rng.randint(0, len(b)), rng.choice((0x00, 0xFF, 0x0D, 0xE0, rng.randrange(256)))
            )
        elif op == 3 and b:  # delete
            del b[rng.randrange(len(b))]
        elif op == 4 and b:  # truncate
            del b[rng.randrange(len(b)) :]
        elif op == 5:  # extend with junk
            b += rng.randbytes(rng.randint(1, 20))
        elif b:  # force the header into a valid shape so the deeper parser is reached
            b[0] = 0x40 | (b[0] & 0x3F)
    return bytes(b)


def check_output(engine: CoapEngine, now: float) -> int:
    sent = 0
    for data, _addr in engine.datagrams_to_send(now):
        sent += 1
        m = decode(data)  # everything we send is well-formed
        if m.mtype == MessageType.RST:
            assert m.is_empty()
        elif m.is_empty():
            assert m.mtype == MessageType.ACK
        else:
            code = Code(m.code)
            assert code.code_class == 4 or code in (Code.SERVICE_UNAVAILABLE, Code.CONTINUE), m
            if code == Code.CONTINUE:
                assert m.block1 is not None
                assert m.block1.more
    while (ev := engine.next_event()) is not None:
        assert isinstance(ev, RequestReceived)
        assert ev.exchange.request.is_request()
    return sent


def test_random_and_mutated_datagrams() -> None:
    rng = random.Random(20240501)
    engine = CoapEngine(exact_config(max_reassemblies=8), rng=random.Random(1))
    corpus = seeds()
    n = 0
    now = 0.0
    answered = 0
    for i in range(24_000):
        if i % 3 == 0:
            data = rng.randbytes(rng.choice((0, 1, 3, 4, 5, 8, 12, 20, 40, 100)))
        else:
            data = mutate(rng, rng.choice(corpus))
        engine.receive_datagram(data, rng.choice(PEERS), now)
        answered += check_output(engine, now)
        n += 1
        if i % 500 == 0:
            now += 1.0
            engine.handle_timer(now)
            answered += check_output(engine, now)
    now += 1000.0
    engine.handle_timer(now)
    check_output(engine, now)
    assert n >= 20_000
    assert answered > 1000  # the test really exercised the answering paths
    stats = engine.stats
    assert stats.malformed > 1000
    assert stats.resets_sent > 100
    assert len(engine._reassemblies) <= 8


def test_mutated_responses_into_a_client_with_pending_requests() -> None:
    """Mutations of real responses (known tokens and MIDs) hit the matching code."""
    rng = random.Random(99)
    server_addr = PEERS[0]
    total = 0
    for round_ in range(40):
        client = CoapEngine(exact_config(), rng=random.Random(round_))
        requests = []
        for i in range(4):
            req = Message(Code.GET, uri_path=f"/r{i}", observe=0 if i == 0 else None)
            client.send_request(req, server_addr, 0.0)
        # NSTART=1: one on the wire; take its token/MID to build plausible answers
        for data, _ in client.datagrams_to_send(0.0):
            requests.append(decode(data))
        base = requests[0]
        answers = []
        for code in (Code.CONTENT, Code.CONTINUE, Code.NOT_FOUND):
            for mtype in (MessageType.ACK, MessageType.CON, MessageType.NON):
                a = Message(code, b"v" * rng.randint(0, 40), mtype=mtype, token=base.token)
                a.mid = base.mid if mtype == MessageType.ACK else rng.randrange(65536)
                a.observe = rng.choice((None, 0, 5, 0xFFFFFF))
                if rng.random() < 0.5:
                    a.block2 = Block(rng.randrange(3), rng.random() < 0.5, rng.randrange(7))
                    a.etag = b"\x01"
                answers.append(a.encode())
        for _ in range(150):
            client.receive_datagram(mutate(rng, rng.choice(answers)), server_addr, 0.1)
            for data, _ in client.datagrams_to_send(0.1):
                decode(data)
            while client.next_event() is not None:
                pass
            total += 1
        client.handle_timer(500.0)
        client.datagrams_to_send(500.0)
    assert total == 6000


message_st = st.builds(
    lambda mtype, code, mid, token, options, payload: Message(
        code, payload, mtype=mtype, mid=mid, token=token, options=options
    ),
    st.integers(0, 3),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.binary(max_size=8),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    1,
                    3,
                    4,
                    5,
                    6,
                    7,
                    8,
                    9,
                    11,
                    12,
                    14,
                    15,
                    17,
                    20,
                    23,
                    27,
                    28,
                    35,
                    39,
                    60,
                    252,
                    258,
                    292,
                    2,
                    13,
                    2048,
                    2049,
                    65001,
                ]
            ),
            st.binary(max_size=12),
        ),
        max_size=6,
    ),
    st.binary(max_size=64),
)


@settings(max_examples=400, deadline=None)
@given(msg=message_st)
def test_structured_messages(msg: Message) -> None:
    engine = CoapEngine(exact_config(), rng=random.Random(5))
    engine.receive_datagram(msg.encode(), PEERS[1], 0.0)
    check_output(engine, 0.0)
    engine.handle_timer(10.0)
    check_output(engine, 10.0)
