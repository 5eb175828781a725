"""One contract suite for every store backend (ARCHITECTURE.md decision 5): memory, SQLite and
Redis run the same tests through a parametrized fixture. The persistence checks reopen the store
with new objects: SQLite on the same file, Redis on the same server (a restart, or another node
of a cluster)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path as FilePath

import pytest

from lwm2m.bootstrap.config import (
    AclInstance,
    BootstrapConfig,
    ObjectWrite,
    Secret,
    SecurityInstance,
    SecurityMode,
    ServerInstance,
)
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import parse_links
from lwm2m.model import ObjectInstance, Path, ResourceType, SingleResource
from lwm2m.operations.requests import Observe, ObserveComposite, Register
from lwm2m.server.observation import Observation
from lwm2m.server.registration import Registration, new_registration
from lwm2m.server.security import PeerIdentity
from lwm2m.store.base import BootstrapConfigStore, RegistrationStore
from lwm2m.store.memory import MemoryBootstrapConfigStore, MemoryRegistrationStore
from lwm2m.store.redis import RedisBootstrapConfigStore, RedisRegistrationStore
from lwm2m.store.sqlite import SqliteBootstrapConfigStore, SqliteRegistrationStore

LINKS = tuple(parse_links("</>;ct=110,</1/0>,</3/0>,</3>;ver=1.1"))

Opener = Callable[[], Awaitable[RegistrationStore]]


def registration(
    endpoint: str = "dev1",
    rid: str = "r1",
    *,
    now: float = 1000.0,
    lifetime: int = 60,
    address: tuple[str, int] = ("192.0.2.1", 5683),
    identity: PeerIdentity | None = None,
    queue: bool = False,
) -> Registration:
    return new_registration(
        Register(
            endpoint,
            lifetime,
            "1.1",
            "U",
            queue,
            "33612345678",
            LINKS,
            {"apn": "iot", "flag": None},
        ),
        registration_id=rid,
        address=address,
        identity=identity,
        now=now,
    )


def observation(token: bytes, rid: str = "r1", *, composite: bool = False) -> Observation:
    if composite:
        request: Observe | ObserveComposite = ObserveComposite(
            (Path(3, 0, 9), Path(3, 0, 0)), ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR
        )
    else:
        request = Observe(Path(3, 0, 9), ContentFormat.TLV)
    return Observation.from_request(token, rid, request, 1000.5)


BACKENDS = ["memory", "sqlite", "redis"]


@pytest.fixture(params=BACKENDS)
async def opener(request: pytest.FixtureRequest, tmp_path: FilePath) -> AsyncIterator[Opener]:
    """Opens the backend; for SQLite every call opens the same file with new objects, for
    Redis a new client of the same server."""
    opened: list[RegistrationStore] = []
    memory = MemoryRegistrationStore()
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    async def open_store() -> RegistrationStore:
        store: RegistrationStore
        if request.param == "memory":
            return memory
        if request.param == "redis":
            store = await RedisRegistrationStore.open(url)
        else:
            store = await SqliteRegistrationStore.open(tmp_path / "registrations.sqlite")
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture
async def store(opener: Opener) -> RegistrationStore:
    return await opener()


async def reopened(store: RegistrationStore, opener: Opener) -> RegistrationStore:
    """The same store after a restart (SQLite, Redis: closed and opened again; memory:
    itself)."""
    if isinstance(store, SqliteRegistrationStore | RedisRegistrationStore):
        await store.close()
    return await opener()


async def test_add_and_get_by_every_key(store: RegistrationStore, opener: Opener) -> None:
    psk = PeerIdentity.psk("dev1")
    reg = registration(identity=psk)
    assert await store.add(reg) is None
    store = await reopened(store, opener)
    assert await store.get("r1") == reg
    assert await store.get_by_endpoint("dev1") == reg
    assert await store.get_by_address(("192.0.2.1", 5683)) == reg
    assert await store.get_by_identity(psk) == reg
    assert await store.get("nope") is None
    assert await store.get_by_endpoint("nope") is None
    assert await store.get_by_address(("192.0.2.1", 1)) is None
    assert await store.get_by_identity(PeerIdentity.psk("x")) is None
    assert await store.registrations() == [reg]
    assert await store.count() == 1
    loaded = await store.get("r1")
    assert loaded is not None
    assert dict(loaded.additional) == {"apn": "iot", "flag": None}
    assert loaded.object_versions == {1: "1.0", 3: "1.1"}


async def test_a_new_registration_of_an_endpoint_replaces_the_old(
    store: RegistrationStore, opener: Opener
) -> None:
    old = registration(rid="r1")
    await store.add(old)
    await store.add_observation(observation(b"\x01"))
    new = registration(rid="r2", address=("192.0.2.2", 5683))
    replaced = await store.add(new)
    assert replaced is not None
    assert replaced.registration == old
    assert replaced.observations == (observation(b"\x01"),)
    store = await reopened(store, opener)
    assert await store.get("r1") is None
    assert await store.get_by_endpoint("dev1") == new
    assert await store.get_by_address(("192.0.2.1", 5683)) is None
    assert await store.get_observation(b"\x01") is None
    assert await store.count() == 1


async def test_update_returns_old_and_new(store: RegistrationStore, opener: Opener) -> None:
    old = registration()
    await store.add(old)
    new = registration(address=("192.0.2.9", 9), now=1030.0)
    updated = await store.update(new)
    assert updated is not None
    assert (updated.old, updated.new) == (old, new)
    assert await store.update(registration(rid="unknown", endpoint="x")) is None
    store = await reopened(store, opener)
    assert await store.get("r1") == new
    assert await store.get_by_address(("192.0.2.9", 9)) == new
    assert await store.get_by_address(("192.0.2.1", 5683)) is None


async def test_remove_takes_observations_along(store: RegistrationStore, opener: Opener) -> None:
    await store.add(registration())
    await store.add_observation(observation(b"\x01"))
    await store.add_observation(observation(b"\x02", composite=True))
    gone = await store.remove("r1")
    assert gone is not None
    assert gone.registration.id == "r1"
    assert sorted(o.token for o in gone.observations) == [b"\x01", b"\x02"]
    assert await store.remove("r1") is None
    store = await reopened(store, opener)
    assert await store.registrations() == []
    assert await store.all_observations() == []


async def test_observations(store: RegistrationStore, opener: Opener) -> None:
    await store.add(registration())
    await store.add(registration("dev2", "r2", address=("192.0.2.2", 1)))
    single, composite = observation(b"\x01"), observation(b"\x02", composite=True)
    other = observation(b"\x03", "r2")
    assert await store.add_observation(single)
    assert await store.add_observation(composite)
    assert await store.add_observation(other)
    assert not await store.add_observation(observation(b"\x04", "gone"))
    store = await reopened(store, opener)
    assert await store.get_observation(b"\x01") == single
    assert await store.get_observation(b"\x02") == composite
    assert await store.get_observation(b"\x04") is None
    assert sorted(o.token for o in await store.observations("r1")) == [b"\x01", b"\x02"]
    assert len(await store.all_observations()) == 3
    assert await store.remove_observation(b"\x01") == single
    assert await store.remove_observation(b"\x01") is None
    assert await store.observations("r1") == [composite]
    # the same token again replaces the record
    moved = observation(b"\x02", "r2")
    assert await store.add_observation(moved)
    assert await store.observations("r1") == []
    assert sorted(o.token for o in await store.remove_observations("r2")) == [b"\x02", b"\x03"]
    assert await store.remove_observations("r2") == []
    store = await reopened(store, opener)
    assert await store.all_observations() == []


async def test_expiry(store: RegistrationStore, opener: Opener) -> None:
    await store.add(registration("a", "ra", now=1000.0, lifetime=10, address=("h", 1)))
    await store.add(registration("b", "rb", now=1000.0, lifetime=20, address=("h", 2)))
    await store.add(registration("c", "rc", now=1000.0, lifetime=30, address=("h", 3)))
    await store.add_observation(observation(b"\x01", "ra"))
    # b is updated: its lifetime counts from the update
    await store.update(registration("b", "rb", now=1015.0, lifetime=20, address=("h", 2)))
    store = await reopened(store, opener)
    assert {r.endpoint for r in await store.expired(1025.0)} == {"a"}
    assert {r.endpoint for r in await store.expired(1025.0, grace=20.0)} == set()
    assert await store.remove_expired(1005.0) == []
    removed = await store.remove_expired(1031.0)
    assert {d.registration.endpoint for d in removed} == {"a", "c"}
    gone_a = next(d for d in removed if d.registration.endpoint == "a")
    assert [o.token for o in gone_a.observations] == [b"\x01"]
    assert await store.remove_expired(1034.9) == []
    assert [d.registration.endpoint for d in await store.remove_expired(1036.0)] == ["b"]
    store = await reopened(store, opener)
    assert await store.count() == 0


async def test_many_updates_keep_the_expiry_index_small(store: RegistrationStore) -> None:
    await store.add(registration(now=0.0, lifetime=100))
    for step in range(200):
        await store.update(registration(now=float(step), lifetime=100))
    assert await store.remove_expired(250.0) == []
    assert [d.registration.id for d in await store.remove_expired(300.0)] == ["r1"]


async def test_close_is_idempotent(store: RegistrationStore) -> None:
    await store.close()
    await store.close()


# -- bootstrap configurations -------------------------------------------------------------------


def bootstrap_config() -> BootstrapConfig:
    return BootstrapConfig(
        security=(
            SecurityInstance(0, "coap://bs.example.org:5683", bootstrap_server=True),
            SecurityInstance(
                1,
                "coaps://lwm2m.example.org:5684",
                mode=SecurityMode.PSK,
                public_key_or_identity=b"dev1",
                secret_key=Secret(bytes(range(16))),
                short_server_id=101,
                client_hold_off_time=0,
            ),
        ),
        servers=(ServerInstance(0, 101, lifetime=300, default_max_period=60, mute_send=False),),
        acls=(AclInstance(0, 3, 0, {101: 31, 0: 1}, owner=101),),
        writes=(
            ObjectWrite(
                Path(3, 0), ObjectInstance(0, [SingleResource(14, ResourceType.STRING, "+01")])
            ),
        ),
        delete=(Path(), Path(3, 0)),
        discover=True,
        content_format=ContentFormat.SENML_CBOR,
    )


@pytest.fixture(params=BACKENDS)
async def config_store(
    request: pytest.FixtureRequest, tmp_path: FilePath
) -> AsyncIterator[tuple[BootstrapConfigStore, Callable[[], Awaitable[BootstrapConfigStore]]]]:
    opened: list[BootstrapConfigStore] = []
    memory = MemoryBootstrapConfigStore()
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    async def open_store() -> BootstrapConfigStore:
        store: BootstrapConfigStore
        if request.param == "memory":
            return memory
        if request.param == "redis":
            store = await RedisBootstrapConfigStore.open(url)
        else:
            store = await SqliteBootstrapConfigStore.open(tmp_path / "bootstrap.sqlite")
        opened.append(store)
        return store

    yield await open_store(), open_store
    for store in opened:
        await store.close()


async def test_bootstrap_config_store(
    config_store: tuple[BootstrapConfigStore, Callable[[], Awaitable[BootstrapConfigStore]]],
) -> None:
    store, open_store = config_store
    config = bootstrap_config()
    assert await store.get("dev1") is None
    await store.put("dev1", config)
    await store.put("dev2", BootstrapConfig())
    if isinstance(store, SqliteBootstrapConfigStore | RedisBootstrapConfigStore):
        await store.close()
        store = await open_store()
    assert await store.get("dev1") == config
    assert await store.all() == {"dev1": config, "dev2": BootstrapConfig()}
    await store.put("dev2", config)
    assert await store.get("dev2") == config
    assert await store.remove("dev2")
    assert not await store.remove("dev2")
    assert list(await store.all()) == ["dev1"]
    await store.close()
