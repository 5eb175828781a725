"""Bounded duplicate detection (RFC 7252 §4.5): memory per entry, hard cap, expiry."""

from __future__ import annotations

import gc
import random
import tracemalloc

from lwm2m.coap import CoapConfig, CoapEngine, Code, Message, MessageType, RequestReceived
from lwm2m.coap.dedup import DuplicateCache

from .helpers import exact_config


def _serve_many(engine: CoapEngine, n: int, peers: int, first_mid: int = 0) -> None:
    rng = random.Random(7)
    for i in range(n):
        addr = (f"10.1.{i % peers // 256}.{i % peers % 256}", 40000 + i % peers)
        req = Message(
            Code.GET,
            mtype=MessageType.CON,
            mid=first_mid + i // peers,
            token=rng.getrandbits(64).to_bytes(8, "big"),
            uri_path="/3/0/1",
        )
        engine.receive_datagram(req.encode(), addr, 0.001 * i)
        ev = engine.next_event()
        assert isinstance(ev, RequestReceived)
        engine.send_response(ev.exchange, Message(Code.CONTENT, b"12345", content_format=0), 0.0)
        engine.datagrams_to_send(0.0)


def test_memory_per_remembered_exchange_is_under_300_bytes() -> None:
    engine = CoapEngine(exact_config(), rng=random.Random(1))
    _serve_many(engine, 200, 100)  # warm up: peers exist, dicts allocated
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _serve_many(engine, 10_000, 100, first_mid=10)
        engine.get_timer()  # drops answered exchanges from the pending-ACK queue
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    remembered = engine.remembered_exchanges
    assert remembered >= 10_000
    per_entry = (after - before) / 10_000
    assert per_entry <= 300, f"{per_entry:.0f} bytes per remembered exchange"


def test_hard_cap_on_entries() -> None:
    config = exact_config(dedup_max_entries=1000, dedup_generations=4)
    engine = CoapEngine(config, rng=random.Random(1))
    _serve_many(engine, 5000, 50)
    assert engine.remembered_exchanges <= 1000
    assert engine.dedup_evicted >= 4000


def test_entries_live_exchange_lifetime_then_expire() -> None:
    lifetime = 247.0
    cache = DuplicateCache(lifetime, max_entries=100, generations=4)
    cache.put(1, b"a", 0.0)
    cache.put(1, b"b", 1.0)  # update in place
    assert cache.get(1) == b"b"
    assert len(cache) == 1
    cache.put(2, b"c", 70.0)  # rotates: generation 1 closed at 70
    cache.put(2, b"d", 71.0)  # update in an older generation... (2 is current)
    cache.put(3, b"e", 140.0)
    cache.put(1, b"z", 141.0)  # 1 lives in a closed generation: updated there
    assert cache.get(1) == b"z"
    assert cache.next_deadline() is not None
    cache.expire(246.0)
    assert cache.get(1) == b"z"  # still within EXCHANGE_LIFETIME of its arrival
    cache.expire(70.0 + lifetime)
    assert cache.get(1) is None
    assert cache.get(2) == b"d"
    cache.expire(1000.0)
    assert len(cache) == 0
    assert cache.next_deadline() is None
    assert cache.get(3) is None
    assert cache.capacity == 100 // 5 * 5


def test_message_id_reuse_after_lifetime_is_a_new_request() -> None:
    engine = CoapEngine(exact_config(), rng=random.Random(3))
    req = Message(Code.GET, mtype=MessageType.CON, mid=42, token=b"a", uri_path="/x")
    engine.receive_datagram(req.encode(), ("h", 1), 0.0)
    ev = engine.next_event()
    assert isinstance(ev, RequestReceived)
    engine.send_response(ev.exchange, Message(Code.CONTENT), 0.0)
    engine.receive_datagram(req.encode(), ("h", 1), 100.0)
    assert engine.next_event() is None  # duplicate within the lifetime
    t = 0.0
    while (deadline := engine.get_timer()) is not None and deadline < 400:
        t = deadline
        engine.handle_timer(t)
    engine.receive_datagram(req.encode(), ("h", 1), 400.0)
    assert isinstance(engine.next_event(), RequestReceived)
    assert CoapConfig().dedup_max_entries == 200_000
