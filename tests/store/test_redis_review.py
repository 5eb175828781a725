"""Review of the Redis stores against the memory store (the reference semantics).

Three tests pin the defects the review found (fixed: URL options that changed the reply type or
were unknown, and strings redis-py could not encode); the others pin behaviour checked sound: a
randomized differential run of memory vs Redis for the same call sequences (return values, index
lookups, sweep order, consistency of every Redis key), float precision of expiry scores, unicode
endpoints and identities, and a connection lost mid-call.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path as FilePath
from typing import Any

import pytest
import redis

from lwm2m.server.security import PeerIdentity, SecurityInfo
from lwm2m.store import (
    Deregistration,
    NonUniqueSecurityInfo,
    RedisBootstrapConfigStore,
    RedisRegistrationStore,
    RedisSecurityStore,
    StoreError,
)
from lwm2m.store.memory import (
    MemoryBootstrapConfigStore,
    MemoryRegistrationStore,
    MemorySecurityStore,
)
from lwm2m.store.serde import loads, registration_from_json
from redis_server import RedisServer

from .test_contract import observation, registration

KEY = b"0123456789abcdef"


@pytest.fixture
def raw(redis_server: RedisServer, redis_url: str) -> Iterator[redis.Redis]:
    with redis_server.client() as client:
        yield client


def assert_indexes_consistent(raw: redis.Redis, prefix: str = "lwm2m:") -> None:
    """Every index entry points at a record holding that value (two records may share an
    address or an identity: the later one owns the index, as in the memory store), the
    expiry scores are the records' exact expiry times, and observations are all owned."""
    records = {
        rid.decode(): registration_from_json(loads(data))
        for rid, data in raw.hgetall(f"{prefix}reg").items()
    }
    assert {k.decode() for k in raw.hkeys(f"{prefix}reg:keys")} == set(records)
    scores = {m.decode(): s for m, s in raw.zrange(f"{prefix}reg:expiry", 0, -1, withscores=True)}
    assert scores == {rid: r.updated_at + r.lifetime for rid, r in records.items()}
    for field, rid in raw.hgetall(f"{prefix}reg:endpoint").items():
        assert records[rid.decode()].endpoint == field.decode()
    for field, rid in raw.hgetall(f"{prefix}reg:address").items():
        host, port = records[rid.decode()].address
        assert f"{host}:{port}" == field.decode()
    for field, rid in raw.hgetall(f"{prefix}reg:identity").items():
        identity = records[rid.decode()].identity
        assert identity is not None
        assert f"{identity.kind.value}:{identity.value}" == field.decode()
    owners = {k.decode(): v.decode() for k, v in raw.hgetall(f"{prefix}obs:owner").items()}
    assert {k.decode() for k in raw.hkeys(f"{prefix}obs")} == set(owners)
    assert set(owners.values()) <= set(records)
    sets = {key.decode() for key in raw.scan_iter(match=f"{prefix}obs:reg:*")}
    assert sets == {f"{prefix}obs:reg:{rid}" for rid in set(owners.values())}


def normal(value: object) -> object:
    """Results with the order the Protocol leaves open (observations, lists) normalised."""
    if isinstance(value, Deregistration):
        return ("D", value.registration, sorted(value.observations, key=lambda o: o.token))
    if isinstance(value, list):
        return sorted((normal(v) for v in value), key=repr)
    return value


ENDPOINTS = ["e1", "é2", "e:3", "日本"]
IDS = ["r1", "r2", "r3", "ü4"]
ADDRESSES = [("192.0.2.1", 1), ("::1", 5683), ("::1:5", 683), ("h", 2)]
IDENTITIES = [None, PeerIdentity.psk("i1"), PeerIdentity.psk("i:2")]
TOKENS = [b"\x01", b"\x10", b"\x20", b"\xff\x00"]


async def test_memory_and_redis_agree_on_random_call_sequences(
    redis_url: str, raw: redis.Redis
) -> None:
    for seed in range(25):
        raw.flushall()
        rnd = random.Random(seed)
        memory = MemoryRegistrationStore()
        store = await RedisRegistrationStore.open(redis_url)
        now = 1000.0
        try:
            for _ in range(60):
                reg = registration(
                    rnd.choice(ENDPOINTS),
                    rnd.choice(IDS),
                    now=now + rnd.choice([0.0, 0.1, 0.3, 7.25]),
                    lifetime=rnd.choice([1, 5, 60]),
                    address=rnd.choice(ADDRESSES),
                    identity=rnd.choice(IDENTITIES),
                )
                rid, token = rnd.choice(IDS), rnd.choice(TOKENS)
                when, grace = now + rnd.choice([0, 2, 6, 61]), rnd.choice([0.0, 0.5, 3.0])
                calls: dict[str, Callable[[Any], Awaitable[object]]] = {
                    "add": lambda s, r=reg: s.add(r),
                    "update": lambda s, r=reg: s.update(r),
                    "remove": lambda s, i=rid: s.remove(i),
                    "observe": lambda s, t=token, i=rid: s.add_observation(observation(t, i)),
                    "forget": lambda s, t=token: s.remove_observation(t),
                    "forget_all": lambda s, i=rid: s.remove_observations(i),
                    "sweep": lambda s, w=when, g=grace: s.remove_expired(w, g),
                }
                op = rnd.choice(list(calls))
                expected, got = await calls[op](memory), await calls[op](store)
                assert normal(got) == normal(expected), (seed, op)
                if op == "sweep":  # both remove in (expiry, id) order
                    assert isinstance(got, list)
                    assert isinstance(expected, list)
                    assert [d.registration.id for d in got] == [d.registration.id for d in expected]
                now += rnd.choice([0.0, 0.5, 3.0])
                for endpoint in ENDPOINTS:
                    assert await store.get_by_endpoint(endpoint) == await memory.get_by_endpoint(
                        endpoint
                    )
                for address in ADDRESSES:
                    assert await store.get_by_address(address) == await memory.get_by_address(
                        address
                    )
                for identity in IDENTITIES[1:]:
                    assert identity is not None
                    assert await store.get_by_identity(identity) == await memory.get_by_identity(
                        identity
                    )
                for token in TOKENS:
                    assert await store.get_observation(token) == await memory.get_observation(token)
                assert normal(await store.registrations()) == normal(await memory.registrations())
                assert normal(await store.all_observations()) == normal(
                    await memory.all_observations()
                )
                assert normal(await store.expired(now + 5, 0.5)) == normal(
                    await memory.expired(now + 5, 0.5)
                )
            assert_indexes_consistent(raw)
        finally:
            await store.close()


def _security_info(kind: str, endpoint: str, rnd: random.Random) -> SecurityInfo:
    if kind == "psk":
        return SecurityInfo.psk(endpoint, "id1", KEY)
    if kind == "other":
        return SecurityInfo.psk(endpoint, rnd.choice(["日", "a:b"]), KEY)
    if kind == "x509":
        return SecurityInfo.x509(endpoint, "cn")
    return SecurityInfo(endpoint, None)


async def test_memory_and_redis_security_stores_agree(redis_url: str, raw: redis.Redis) -> None:
    for seed in range(25):
        raw.flushall()
        rnd = random.Random(seed)
        memory = MemorySecurityStore()
        store = await RedisSecurityStore.open(redis_url)
        try:
            for _ in range(40):
                endpoint = rnd.choice(ENDPOINTS)
                kind = rnd.choice(["psk", "other", "x509", "none", "delete"])
                if kind == "delete":
                    expected: object = await memory.delete(endpoint)
                    got: object = await store.delete(endpoint)
                else:
                    info = _security_info(kind, endpoint, rnd)
                    results = []
                    for target in (memory, store):
                        try:
                            results.append(await target.put(info))
                        except NonUniqueSecurityInfo as exc:
                            results.append(("NonUniqueSecurityInfo", str(exc)))
                    expected, got = results
                assert got == expected
                assert sorted(map(repr, await store.all())) == sorted(map(repr, await memory.all()))
                for identity in {i.identity for i in await memory.all()} - {None}:
                    assert identity is not None
                    assert await store.get_by_identity(identity) == await memory.get_by_identity(
                        identity
                    )
        finally:
            await store.close()


async def test_expiry_times_keep_their_float_precision(redis_url: str, raw: redis.Redis) -> None:
    store = await RedisRegistrationStore.open(redis_url)
    try:
        reg = registration(now=1_700_000_000.123_456_7, lifetime=86_400)
        await store.add(reg)
        assert await store.get("r1") == reg
        assert raw.zscore("lwm2m:reg:expiry", "r1") == reg.updated_at + reg.lifetime
        end = reg.updated_at + reg.lifetime
        assert await store.expired(end) == []
        assert await store.remove_expired(end) == []
        (gone,) = await store.remove_expired(end + 1e-6)
        assert gone.registration == reg
    finally:
        await store.close()


async def test_closed_stores_refuse_every_call(redis_url: str) -> None:
    store = await RedisRegistrationStore.open(redis_url)
    security = await RedisSecurityStore.open(redis_url)
    configs = await RedisBootstrapConfigStore.open(redis_url)
    for closing in (store, security, configs):
        await closing.close()
    calls: list[Awaitable[object]] = [
        store.add(registration()),
        store.get_by_endpoint("dev1"),
        store.remove_expired(2000.0),
        store.add_observation(observation(b"\x01")),
        security.put(SecurityInfo.psk("dev1", "id1", KEY)),
        security.get_by_identity(PeerIdentity.psk("id1")),
        configs.get("dev1"),
        configs.all(),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="closed"):
            await call


class _DroppingProxy:
    """A Unix-socket proxy to the Redis server that, when armed, forwards one script call
    and drops the connection instead of returning the reply (a connection lost mid-call)."""

    def __init__(self, target: str, path: str) -> None:
        self.target, self.path = target, path
        self.armed: bytes | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream = await asyncio.open_unix_connection(self.target)
        dropping = False

        async def up() -> None:
            nonlocal dropping
            while data := await reader.read(65536):
                if self.armed is not None and b"EVALSHA" in data and self.armed in data:
                    dropping = True
                upstream.write(data)
                await upstream.drain()
            upstream.close()

        async def down() -> None:
            nonlocal dropping
            while data := await upstream_reader.read(65536):
                if dropping and not data.startswith(b"-NOSCRIPT"):
                    self.armed = None
                    writer.transport.abort()
                    upstream.close()
                    return
                dropping = False
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(up(), down(), return_exceptions=True)


@pytest.fixture
async def proxy(redis_server: RedisServer, redis_url: str) -> AsyncIterator[_DroppingProxy]:
    directory = FilePath(redis_server.socket).parent
    dropping = _DroppingProxy(str(redis_server.socket), str(directory / "proxy.sock"))
    server = await asyncio.start_unix_server(dropping.handle, dropping.path)
    yield dropping
    server.close()
    await server.wait_closed()


async def test_a_connection_lost_mid_call_is_a_store_error(proxy: _DroppingProxy) -> None:
    """The reply is lost after Redis ran the script: a StoreError (redis-py does not retry a
    from_url client, so the script never runs twice), the change is made, the store reconnects."""
    store = await RedisRegistrationStore.open(f"unix://{proxy.path}")
    try:
        proxy.armed = b"\r\nadd\r\n"
        with pytest.raises(StoreError, match=r"^Redis: "):
            await store.add(registration())
        assert await store.get("r1") == registration()
        proxy.armed = b"\r\nremove\r\n"
        with pytest.raises(StoreError, match=r"^Redis: "):
            await store.remove("r1")
        assert await store.count() == 0
        assert await store.add(registration()) is None
    finally:
        await store.close()


# -- defects ----------------------------------------------------------------------------------


async def test_a_decoding_url_still_reports_a_taken_identity(redis_url: str) -> None:
    store = await RedisSecurityStore.open(redis_url + "?decode_responses=1")
    try:
        await store.put(SecurityInfo.psk("dev1", "id1", KEY))
        with pytest.raises(NonUniqueSecurityInfo, match="'dev1'"):
            await store.put(SecurityInfo.psk("dev2", "id1", KEY))
    finally:
        await store.close()


async def test_an_unknown_url_parameter_is_a_store_error(redis_url: str) -> None:
    with pytest.raises(StoreError) as caught:
        await RedisSecurityStore.open(redis_url + "?passwd=hunter2")
    assert "hunter2" not in str(caught.value)


async def test_an_unencodable_endpoint_is_not_found_like_in_memory(redis_url: str) -> None:
    endpoint = "dev\udc801"
    assert await MemoryBootstrapConfigStore().get(endpoint) is None
    store = await RedisBootstrapConfigStore.open(redis_url)
    try:
        assert await store.get(endpoint) is None
    finally:
        await store.close()


async def test_parsed_records_are_kept_within_their_bound(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lwm2m.store import redis as module

    monkeypatch.setattr(module, "_DECODED_LIMIT", 2)
    store = await RedisRegistrationStore.open(redis_url)
    try:
        regs = [registration(f"dev{i}", f"r{i}", address=("192.0.2.1", i)) for i in range(3)]
        for reg in regs:
            await store.add(reg)
        for _ in range(2):
            assert [await store.get_by_endpoint(f"dev{i}") for i in range(3)] == regs
            assert len(store._decoded) <= 2
        # a record changed by another node is parsed again: the memo is keyed by the bytes
        moved = registration("dev0", "r0", now=1500.0, address=("192.0.2.9", 1))
        await store.update(moved)
        assert await store.get_by_endpoint("dev0") == moved
    finally:
        await store.close()


async def test_an_expiry_entry_without_its_record_is_ignored(
    redis_url: str, raw: redis.Redis
) -> None:
    store = await RedisRegistrationStore.open(redis_url)
    try:
        await store.add(registration())
        raw.zadd("lwm2m:reg:expiry", {"ghost": 1.0})  # left by hand, or a half-restored dump
        assert [r.id for r in await store.expired(2000.0)] == ["r1"]
    finally:
        await store.close()
