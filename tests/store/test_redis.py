"""The Redis backend's own rules (the Protocol contract is in test_contract /
test_security_store): several nodes on one server see each other's writes at once, concurrent
changes leave consistent indexes, corrupt records and Redis failures are StoreErrors that never
show a secret, and keys stay under their prefix."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path as FilePath

import pytest
import redis

from lwm2m.bootstrap.config import BootstrapConfig
from lwm2m.server.security import PeerIdentity, SecurityInfo
from lwm2m.store import (
    Deregistration,
    NonUniqueSecurityInfo,
    RedisBootstrapConfigStore,
    RedisRegistrationStore,
    RedisSecurityStore,
    StoreError,
)
from lwm2m.store.serde import loads, registration_from_json
from redis_server import RedisServer

from .test_contract import bootstrap_config, observation, registration
from .test_security_store import KEY

Nodes = tuple[RedisRegistrationStore, RedisRegistrationStore]


@pytest.fixture
async def nodes(redis_url: str) -> AsyncIterator[Nodes]:
    """Two server nodes' stores on one Redis."""
    a = await RedisRegistrationStore.open(redis_url)
    b = await RedisRegistrationStore.open(redis_url)
    yield a, b
    await a.close()
    await b.close()


@pytest.fixture
def raw(redis_server: RedisServer, redis_url: str) -> Iterator[redis.Redis]:
    """A plain client, to inspect and plant keys."""
    with redis_server.client() as client:
        yield client


def text(values: object) -> set[str]:
    assert isinstance(values, list | set | dict)
    return {v.decode() for v in values}


def assert_consistent(raw: redis.Redis, prefix: str = "lwm2m:") -> None:
    """Every index entry points at a stored record that holds it, and nothing is left over."""
    records = {
        rid.decode(): registration_from_json(loads(data))
        for rid, data in raw.hgetall(f"{prefix}reg").items()
    }
    assert text(raw.hkeys(f"{prefix}reg:keys")) == set(records)
    assert text(raw.zrange(f"{prefix}reg:expiry", 0, -1)) == set(records)
    by_endpoint = {k.decode(): v.decode() for k, v in raw.hgetall(f"{prefix}reg:endpoint").items()}
    assert by_endpoint == {r.endpoint: rid for rid, r in records.items()}
    by_address = {k.decode(): v.decode() for k, v in raw.hgetall(f"{prefix}reg:address").items()}
    assert by_address == {f"{r.address[0]}:{r.address[1]}": rid for rid, r in records.items()}
    identities = {k.decode(): v.decode() for k, v in raw.hgetall(f"{prefix}reg:identity").items()}
    assert identities == {
        f"{r.identity.kind.value}:{r.identity.value}": rid
        for rid, r in records.items()
        if r.identity is not None
    }
    owners = {k.decode(): v.decode() for k, v in raw.hgetall(f"{prefix}obs:owner").items()}
    assert text(raw.hkeys(f"{prefix}obs")) == set(owners)
    assert set(owners.values()) <= set(records)
    sets = {key.decode() for key in raw.scan_iter(match=f"{prefix}obs:reg:*")}
    assert sets == {f"{prefix}obs:reg:{rid}" for rid in set(owners.values())}
    for rid in set(owners.values()):
        mine = {token for token, owner in owners.items() if owner == rid}
        assert text(raw.smembers(f"{prefix}obs:reg:{rid}")) == mine


async def test_two_nodes_see_each_others_writes(nodes: Nodes, raw: redis.Redis) -> None:
    a, b = nodes
    psk = PeerIdentity.psk("dev1")
    first = registration(identity=psk)
    assert await a.add(first) is None
    assert await b.get_by_endpoint("dev1") == first
    assert await b.get_by_identity(psk) == first
    assert await b.add_observation(observation(b"\x01"))
    assert await a.observations("r1") == [observation(b"\x01")]
    moved = registration(identity=psk, address=("192.0.2.7", 7), now=1010.0)
    updated = await b.update(moved)
    assert updated is not None
    assert updated.old == first
    assert await a.get_by_address(("192.0.2.7", 7)) == moved
    assert await a.get_by_address(("192.0.2.1", 5683)) is None
    assert_consistent(raw)
    gone = await a.remove("r1")
    assert gone is not None
    assert gone.observations == (observation(b"\x01"),)
    assert await b.get("r1") is None
    assert await b.get_by_identity(psk) is None
    assert (await b.count(), await b.all_observations()) == (0, [])
    assert_consistent(raw)


async def test_security_and_bootstrap_entries_are_shared(redis_url: str) -> None:
    a, b = await RedisSecurityStore.open(redis_url), await RedisSecurityStore.open(redis_url)
    c, d = (
        await RedisBootstrapConfigStore.open(redis_url),
        await RedisBootstrapConfigStore.open(redis_url),
    )
    try:
        info = SecurityInfo.psk("dev1", "id1", KEY)
        await a.put(info)
        assert await b.get_by_identity(PeerIdentity.psk("id1")) == info
        with pytest.raises(NonUniqueSecurityInfo, match="'dev1'"):
            await b.put(SecurityInfo.psk("dev2", "id1", KEY))
        assert await b.delete("dev1") == info
        assert await a.get_by_endpoint("dev1") is None
        await b.put(SecurityInfo.psk("dev2", "id1", KEY))  # the identity is free again
        await c.put("dev1", bootstrap_config())
        assert await d.get("dev1") == bootstrap_config()
        assert await d.remove("dev1")
        assert await c.all() == {}
    finally:
        for store in (a, b, c, d):
            await store.close()


async def test_concurrent_registrations_of_one_endpoint_leave_one(
    nodes: Nodes, raw: redis.Redis
) -> None:
    """Two nodes register the same endpoint at once, while both observe the previous winner
    (the calls issued in a shuffled order): each round leaves exactly one registration, every
    replaced one is reported once, and an observation is either refused or removed with its
    registration."""
    a, b = nodes
    psk = PeerIdentity.psk("dev1")
    winner: str | None = None
    offered: set[bytes] = set()
    accepted: set[bytes] = set()
    released: list[bytes] = []
    winners: set[str] = set()
    for step in range(60):
        ours = registration(rid=f"a{step}", address=("10.0.0.1", step), identity=psk)
        theirs = registration(rid=f"b{step}", address=("10.0.0.2", step))
        calls: list[Awaitable[object]] = [a.add(ours), b.add(theirs)]
        tokens = [f"a{step}".encode(), f"b{step}".encode()] if winner is not None else []
        if winner is not None:
            calls.append(a.add_observation(observation(tokens[0], winner)))
            calls.append(b.add_observation(observation(tokens[1], winner)))
        order = list(range(len(calls)))
        random.Random(step).shuffle(order)
        results: dict[int, object] = dict(
            zip(order, await asyncio.gather(*(calls[i] for i in order)), strict=True)
        )
        current = await b.get_by_endpoint("dev1")
        assert current in (ours, theirs)
        assert current is not None
        loser = theirs if current == ours else ours
        replaced = [d for d in (results[0], results[1]) if isinstance(d, Deregistration)]
        expected = {loser.id} | ({winner} if winner is not None else set())
        assert sorted(d.registration.id for d in replaced) == sorted(expected)
        released += [o.token for d in replaced for o in d.observations]
        offered |= set(tokens)
        accepted |= {token for i, token in enumerate(tokens) if results[2 + i] is True}
        assert await a.count() == 1
        assert await a.get(loser.id) is None
        winner = current.id
        winners.add(winner[0])
    assert winners == {"a", "b"}
    assert set() < accepted < offered  # some observations came too late, some in time
    assert sorted(released) == sorted(accepted)  # each one reported once, none left behind
    assert await a.all_observations() == []
    assert_consistent(raw)


async def test_concurrent_sweeps_remove_each_registration_once(
    nodes: Nodes, raw: redis.Redis
) -> None:
    a, b = nodes
    for i in range(40):
        await a.add(registration(f"dev{i}", f"r{i}", address=("h", i), lifetime=10 + i))
        await b.add_observation(observation(bytes([i]), f"r{i}"))
    swept_a, swept_b = await asyncio.gather(a.remove_expired(1100.0), b.remove_expired(1100.0))
    ids_a = {d.registration.id for d in swept_a}
    ids_b = {d.registration.id for d in swept_b}
    assert not ids_a & ids_b
    assert ids_a | ids_b == {f"r{i}" for i in range(40)}
    assert sorted(o.token for d in swept_a + swept_b for o in d.observations) == [
        bytes([i]) for i in range(40)
    ]
    assert await a.count() == 0
    assert_consistent(raw)


async def test_an_update_from_another_node_wins_over_the_sweep(
    nodes: Nodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node B's Update lands between node A's expiry query and its removal: the registration
    stays (remove_expired removes only the record it found expired)."""
    a, b = nodes
    await a.add(registration(now=1000.0, lifetime=10))
    query = a._expired

    async def interleaved(now: float, grace: float) -> object:
        found = await query(now, grace)
        await b.update(registration(now=1015.0, lifetime=10))
        return found

    monkeypatch.setattr(a, "_expired", interleaved)
    assert [r.id for r in await a.expired(1020.0)] == ["r1"]
    assert await a.remove_expired(1020.0) == []
    kept = await b.get("r1")
    assert kept is not None
    assert kept.updated_at == 1015.0


async def test_records_are_json_under_the_prefix(redis_url: str, raw: redis.Redis) -> None:
    store = await RedisRegistrationStore.open(redis_url, prefix="site-a:")
    other = await RedisRegistrationStore.open(redis_url)
    try:
        await store.add(registration())
        await store.add_observation(observation(b"\x01"))
        assert await other.count() == 0
        assert await other.get_by_endpoint("dev1") is None
        keys = list(raw.scan_iter())
        assert keys
        assert all(key.startswith(b"site-a:") for key in keys)
        assert json.loads(raw.hget("site-a:reg", "r1"))["endpoint"] == "dev1"
        assert json.loads(raw.hget("site-a:obs", "01"))["token"] == "01"
        assert_consistent(raw, "site-a:")
        assert repr(store) == "<RedisRegistrationStore prefix='site-a:'>"
    finally:
        await store.close()
        await other.close()


@pytest.mark.parametrize(
    "planted",
    [b"\xff\xfe not JSON", b"[1, 2]", b'{"v": 99, "id": "r1"}', b'{"v": 1, "id": "r1"}'],
)
async def test_a_corrupt_registration_is_a_store_error(
    nodes: Nodes, raw: redis.Redis, planted: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = nodes
    await a.add(registration())
    await a.add_observation(observation(b"\x01"))
    raw.hset("lwm2m:reg", "r1", planted)
    for call in (
        b.get("r1"),
        b.get_by_endpoint("dev1"),
        b.get_by_address(("192.0.2.1", 5683)),
        b.registrations(),
    ):
        with pytest.raises(StoreError, match="unreadable registration"):
            await call
    # the expiry sweep skips it with one warning (naming the id, never the content) and goes
    # on; the record stays for an operator, out of the expiry index
    with caplog.at_level("WARNING", logger="lwm2m.store.redis"):
        assert await b.expired(2000.0) == []
        assert await b.remove_expired(2000.0) == []
    assert [r.getMessage()[:46] for r in caplog.records] == [
        "expiry sweep skips registration 'r1': Redis ho"
    ]
    assert raw.hget("lwm2m:reg", "r1") == planted
    assert raw.zscore("lwm2m:reg:expiry", "r1") is None
    # an Update replaces the record, and reports that the old one was unreadable
    with pytest.raises(StoreError, match="unreadable registration"):
        await b.update(registration(now=1010.0))
    assert await a.get("r1") == registration(now=1010.0)
    raw.hset("lwm2m:reg", "r1", planted)
    # it can still be removed (the removal reports the corruption), leaving nothing behind
    with pytest.raises(StoreError, match="unreadable registration"):
        await b.remove("r1")
    assert await a.count() == 0
    assert await a.all_observations() == []
    assert_consistent(raw)


async def test_corrupt_observations_configs_and_entries_are_store_errors(
    redis_url: str, raw: redis.Redis
) -> None:
    store = await RedisRegistrationStore.open(redis_url)
    security = await RedisSecurityStore.open(redis_url)
    configs = await RedisBootstrapConfigStore.open(redis_url)
    try:
        await store.add(registration())
        await store.add_observation(observation(b"\x01"))
        raw.hset("lwm2m:obs", "01", '{"v": 1, "token": "zz"}')
        for call in (
            store.get_observation(b"\x01"),
            store.observations("r1"),
            store.all_observations(),
            store.remove_observation(b"\x01"),
        ):
            with pytest.raises(StoreError, match="unreadable observation"):
                await call
        assert await store.remove_observations("r1") == []  # removed by the failed call

        secret = b"do-not-show-me!!"
        await security.put(SecurityInfo.psk("dev1", "id1", secret))
        planted = json.loads(raw.hget("lwm2m:sec", "dev1"))
        planted["identity"] = None  # a PSK without an identity: refused on load
        raw.hset("lwm2m:sec", "dev1", json.dumps(planted))
        for call in (
            security.get_by_endpoint("dev1"),
            security.get_by_identity(PeerIdentity.psk("id1")),
            security.all(),
        ):
            with pytest.raises(StoreError, match="unreadable security entry") as caught:
                await call
            assert caught.value.__cause__ is None
            assert secret.hex() not in str(caught.value)
            assert planted["psk_key"] not in str(caught.value)

        await configs.put("dev1", BootstrapConfig())
        raw.hset("lwm2m:bootstrap", "dev1", b"{")
        for call in (configs.get("dev1"), configs.all()):
            with pytest.raises(StoreError, match="unreadable bootstrap configuration"):
                await call
    finally:
        for closing in (store, security, configs):
            await closing.close()


async def test_redis_failures_are_store_errors(redis_url: str, raw: redis.Redis) -> None:
    store = await RedisRegistrationStore.open(redis_url)
    raw.set("lwm2m:reg", "not a hash")
    with pytest.raises(StoreError, match="WRONGTYPE"):
        await store.get("r1")
    with pytest.raises(StoreError, match="WRONGTYPE"):
        await store.add(registration())
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.count()
    await store.close()


async def test_open_failures_never_show_the_password(tmp_path: FilePath) -> None:
    with pytest.raises(StoreError, match="not a Redis URL"):
        await RedisSecurityStore.open("http://:hunter2@localhost/")
    with pytest.raises(StoreError, match="cannot reach Redis") as caught:
        await RedisSecurityStore.open(f"unix://{tmp_path}/missing.sock?password=hunter2")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(StoreError, match="cannot reach Redis") as caught:
        await RedisRegistrationStore.open("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in str(caught.value)


def test_the_package_exports_the_redis_stores_lazily() -> None:
    import lwm2m.store

    assert lwm2m.store.RedisSecurityStore is RedisSecurityStore
    with pytest.raises(AttributeError, match="RedisNothing"):
        lwm2m.store.RedisNothing  # noqa: B018
