"""The SecurityStore contract, run against the memory, the SQLite and the Redis backend (SQLite
reopened on the same file, Redis on the same server, with new objects: entries survive a restart
and are seen by another node), plus the serialisation
of entries and what they never show (the PSK)."""

from __future__ import annotations

import hashlib
import logging
import pickle
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path as FilePath

import pytest

from lwm2m.server.security import IdentityKind, PeerIdentity, SecretKey, SecurityInfo
from lwm2m.store import (
    MemorySecurityStore,
    NonUniqueSecurityInfo,
    RedisSecurityStore,
    SecurityStore,
    SqliteSecurityStore,
)
from lwm2m.store.serde import SerdeError, security_info_from_json, security_info_to_json

KEY = bytes(range(16))
SPKI = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004") + bytes(64)

Reopen = Callable[[], Awaitable[SecurityStore]]


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def security_store(
    request: pytest.FixtureRequest, tmp_path: FilePath
) -> AsyncIterator[tuple[SecurityStore, Reopen]]:
    opened: list[SecurityStore] = []
    memory = MemorySecurityStore()
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    async def reopen() -> SecurityStore:
        store: SecurityStore
        if request.param == "memory":
            return memory
        for store in opened:
            await store.close()
        if request.param == "redis":
            store = await RedisSecurityStore.open(url)
        else:
            store = await SqliteSecurityStore.open(tmp_path / "security.sqlite")
        opened.append(store)
        return store

    yield await reopen(), reopen
    for store in opened:
        await store.close()


def entries() -> list[SecurityInfo]:
    return [
        SecurityInfo.psk("dev-psk", "id-psk", KEY),
        SecurityInfo.psk("dev-bin", b"\xff\x01", KEY[::-1]),
        SecurityInfo.rpk("dev-rpk", SPKI),
        SecurityInfo.x509("dev-x509", "cn-x509"),
        SecurityInfo.oscore_context("dev-oscore", b"\xc1", b"Q", KEY, master_salt=b"s"),
        SecurityInfo.nosec("dev-plain"),
        SecurityInfo.nosec("dev-plain-2"),
    ]


async def test_security_store_contract(security_store: tuple[SecurityStore, Reopen]) -> None:
    store, reopen = security_store
    assert await store.get_by_endpoint("dev-psk") is None
    assert await store.all() == []
    for info in entries():
        assert await store.put(info) is None
    store = await reopen()  # SQLite, Redis: a new object on the same file / server
    assert sorted(await store.all(), key=lambda i: i.endpoint) == sorted(
        entries(), key=lambda i: i.endpoint
    )
    for info in entries():
        assert await store.get_by_endpoint(info.endpoint) == info
        if info.identity is not None:
            assert await store.get_by_identity(info.identity) == info
    psk = await store.get_by_identity(PeerIdentity.psk(b"id-psk"))
    assert psk is not None
    assert psk.psk_key is not None
    assert psk.psk_key.reveal() == KEY
    assert psk.psk_identity == b"id-psk"
    assert await store.get_by_identity(PeerIdentity.psk("unknown")) is None
    rpk = PeerIdentity(IdentityKind.RPK, hashlib.sha256(SPKI).hexdigest())
    found = await store.get_by_identity(rpk)
    assert found is not None
    assert found.public_key == SPKI
    oscore = await store.get_by_identity(PeerIdentity(IdentityKind.OSCORE, "c1"))
    assert oscore is not None
    assert oscore.oscore is not None
    assert oscore.oscore.master_secret.reveal() == KEY
    assert (oscore.oscore.recipient_id, oscore.oscore.master_salt) == (b"Q", b"s")

    # replacing an endpoint's entry frees its old identity
    new = SecurityInfo.psk("dev-psk", "id-psk-2", KEY)
    assert await store.put(new) == entries()[0]
    assert await store.get_by_identity(PeerIdentity.psk("id-psk")) is None
    assert await store.get_by_identity(PeerIdentity.psk("id-psk-2")) == new

    # an identity belongs to one endpoint
    with pytest.raises(NonUniqueSecurityInfo, match="dev-psk"):
        await store.put(SecurityInfo.psk("intruder", "id-psk-2", bytes(16)))
    assert await store.get_by_endpoint("intruder") is None
    assert await store.put(SecurityInfo.psk("dev-psk", "id-psk-2", bytes(16))) == new

    assert await store.delete("dev-rpk") == entries()[2]
    assert await store.delete("dev-rpk") is None
    store = await reopen()
    assert await store.get_by_identity(rpk) is None
    assert len(await store.all()) == len(entries()) - 1
    await store.close()
    await store.close()


async def test_sqlite_security_store_survives_reopen(tmp_path: FilePath) -> None:
    path = tmp_path / "shared.sqlite"
    store = await SqliteSecurityStore.open(path)
    await store.put(SecurityInfo.psk("dev1", "dev1", KEY))
    await store.close()
    again = await SqliteSecurityStore.open(path)
    try:
        info = await again.get_by_endpoint("dev1")
        assert info == SecurityInfo.psk("dev1", "dev1", KEY)
        assert repr(again) == "<SqliteSecurityStore>"
    finally:
        await again.close()


async def test_corrupt_rows_are_skipped_by_all(
    tmp_path: FilePath, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "corrupt.sqlite"
    store = await SqliteSecurityStore.open(path)
    await store.put(SecurityInfo.x509("good"))
    await store.close()
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO security_infos (endpoint, kind, identity, data) VALUES (?,?,?,?)",
            ("bad", "psk", "bad", '{"v":1,"endpoint":"bad","identity":{"kind":"nope"}}'),
        )
    connection.close()
    store = await SqliteSecurityStore.open(path)
    try:
        with caplog.at_level(logging.WARNING, logger="lwm2m.store.sqlite"):
            assert await store.all() == [SecurityInfo.x509("good")]
        assert "'bad' skipped" in caplog.text
        with pytest.raises(SerdeError):
            await store.get_by_endpoint("bad")
    finally:
        await store.close()


def test_entries_never_show_the_key() -> None:
    info = SecurityInfo.psk("dev1", "dev1", KEY)
    assert KEY.hex() not in repr(info)
    assert "SecretKey" not in repr(info)
    assert repr(SecretKey(KEY)) == "SecretKey(<16 bytes>)"
    assert str(SecretKey(KEY)) == "SecretKey(<16 bytes>)"
    assert SecretKey(KEY) != SecretKey(bytes(16))
    assert SecretKey(KEY).__eq__(KEY) is NotImplemented
    assert hash(SecretKey(KEY)) == hash(SecretKey(bytes(16)))
    assert repr(MemorySecurityStore([info])) == "<MemorySecurityStore 1 endpoints>"
    with pytest.raises(TypeError):
        SecretKey("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        SecretKey(b"")
    with pytest.raises(TypeError):
        pickle.dumps(SecretKey(KEY))


def test_entries_are_checked() -> None:
    assert SecurityInfo.psk("d", "i", KEY).mode == "psk"
    assert SecurityInfo.rpk("d", SPKI).mode == "rpk"
    assert SecurityInfo.x509("d").identity == PeerIdentity(IdentityKind.X509, "d")
    assert SecurityInfo.nosec("d").mode == "nosec"
    assert SecurityInfo.nosec("d").psk_identity is None
    with pytest.raises(ValueError, match="endpoint"):
        SecurityInfo.nosec("")
    with pytest.raises(ValueError, match="PSK identity"):
        SecurityInfo("d", PeerIdentity(IdentityKind.X509, "d"), SecretKey(KEY))
    with pytest.raises(ValueError, match="SHA-256"):
        SecurityInfo("d", PeerIdentity(IdentityKind.RPK, "00"), None, SPKI)
    with pytest.raises(ValueError, match="public key"):
        SecurityInfo.rpk("d", b"")


def test_security_info_serialisation() -> None:
    for info in entries():
        assert security_info_from_json(security_info_to_json(info)) == info
    with pytest.raises(SerdeError, match="schema version"):
        security_info_from_json({"v": 99})
    with pytest.raises(SerdeError, match="malformed"):
        security_info_from_json({"v": 1, "endpoint": "d", "psk_key": "AAAA"})
