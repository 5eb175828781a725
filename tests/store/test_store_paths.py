"""Store failure paths: a failed write must neither corrupt the SQLite file nor leave the store
answering with data it did not persist; unusable files are refused without being touched."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path as FilePath

import pytest

from lwm2m.store.memory import MemoryRegistrationStore
from lwm2m.store.sqlite import (
    SqliteBootstrapConfigStore,
    SqliteRegistrationStore,
    SqliteSecurityStore,
    StoreError,
)

from .test_contract import bootstrap_config, observation, registration

#: A text value SQLite cannot bind (a lone surrogate is not UTF-8): makes the write fail.
UNWRITABLE = "\udcff"


async def test_a_failed_write_rolls_back_and_keeps_the_file(tmp_path: FilePath) -> None:
    path = tmp_path / "s.sqlite"
    store = await SqliteRegistrationStore.open(path)
    old = registration()
    await store.add(old)
    await store.add_observation(observation(b"\x01"))
    bad = dataclasses.replace(registration(rid="r2"), sms_number=UNWRITABLE)
    with pytest.raises(UnicodeEncodeError):
        await store.add(bad)  # DELETE r1 ran first in the same transaction: rolled back
    # the connection is usable afterwards (no transaction left open)
    await store.add(registration("dev9", "r9", address=("h", 9)))
    await store.close()
    store = await SqliteRegistrationStore.open(path)
    try:
        assert {r.id for r in await store.registrations()} == {"r1", "r9"}
        assert await store.get("r1") == old
        assert [o.token for o in await store.observations("r1")] == [b"\x01"]
    finally:
        await store.close()


async def test_a_failed_write_leaves_the_cache_unchanged(tmp_path: FilePath) -> None:
    store = await SqliteRegistrationStore.open(tmp_path / "s.sqlite")
    try:
        old = registration()
        await store.add(old)
        bad = dataclasses.replace(registration(rid="r2"), sms_number=UNWRITABLE)
        with pytest.raises(UnicodeEncodeError):
            await store.add(bad)
        assert await store.get_by_endpoint("dev1") == old
        assert await store.get("r2") is None
    finally:
        await store.close()


async def test_a_failed_bootstrap_config_write_keeps_the_old_config(tmp_path: FilePath) -> None:
    store = await SqliteBootstrapConfigStore.open(tmp_path / "b.sqlite")
    try:
        config = bootstrap_config()
        await store.put("dev", config)
        with pytest.raises(UnicodeEncodeError):
            await store.put(UNWRITABLE, config)
        assert await store.all() == {"dev": config}
        assert await store.remove("nope") is False
        assert await store.remove("dev") is True
        assert await store.get("dev") is None
    finally:
        await store.close()


@pytest.mark.parametrize(
    "opener",
    [SqliteRegistrationStore.open, SqliteBootstrapConfigStore.open, SqliteSecurityStore.open],
)
async def test_a_file_that_is_not_a_database_is_refused_untouched(
    tmp_path: FilePath, opener: object
) -> None:
    path = tmp_path / "notes.txt"
    content = b"these are not the rows you are looking for\n" * 100
    path.write_bytes(content)
    with pytest.raises(sqlite3.DatabaseError):
        await opener(path)  # type: ignore[operator]
    assert path.read_bytes() == content


async def test_the_security_store_checks_the_schema_version(tmp_path: FilePath) -> None:
    path = tmp_path / "s.sqlite"
    store = await SqliteSecurityStore.open(path)
    await store.close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '99'")
    with pytest.raises(StoreError, match="schema version 99"):
        await SqliteSecurityStore.open(path)
    with sqlite3.connect(path) as connection:  # refused, not migrated nor wiped
        assert connection.execute("SELECT value FROM meta").fetchone() == ("99",)


async def test_re_adding_an_id_under_another_endpoint_drops_the_old_indexes() -> None:
    store = MemoryRegistrationStore()
    await store.add(registration("dev1", "r1", address=("h", 1)))
    await store.add_observation(observation(b"\x01"))
    moved = registration("dev2", "r1", address=("h", 2))
    assert await store.add(moved) is None  # no registration of dev2 was replaced
    assert await store.get_by_endpoint("dev1") is None
    assert await store.get_by_address(("h", 1)) is None
    assert await store.get_by_endpoint("dev2") == moved
    assert await store.get("r1") == moved
    assert await store.count() == 1
    assert await store.observations("r1") == []  # the old record's observations went with it


async def test_an_update_of_an_unknown_registration_changes_nothing() -> None:
    store = MemoryRegistrationStore()
    await store.add(registration())
    assert await store.update(registration("ghost", "r404")) is None
    assert await store.get("r404") is None
    assert await store.get_by_endpoint("ghost") is None
    assert await store.remove("r404") is None
    assert await store.remove_observation(b"\x99") is None
    assert await store.count() == 1
