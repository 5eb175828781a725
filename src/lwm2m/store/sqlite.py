"""SQLite stores: a persistent single-node backend (stdlib :mod:`sqlite3`).

Implements :class:`~lwm2m.store.base.RegistrationStore`,
:class:`~lwm2m.store.base.BootstrapConfigStore` and :class:`~lwm2m.store.base.SecurityStore` on
one SQLite file (they may share it; the security table holds PSKs: protect the file). Records
are the JSON documents of :mod:`lwm2m.store.serde` — never pickles — in a schema whose version
is kept in the ``meta`` table (:data:`SCHEMA_VERSION`); opening a file written by an unknown
schema version fails with :class:`StoreError`.

sqlite3 blocks, so every statement runs on one dedicated thread (a single-worker executor):
statements run in the order the coroutines issued them and the event loop never waits on disk.

The registration store is a **write-through cache**: on :meth:`SqliteRegistrationStore.open`
every row is loaded into a :class:`~lwm2m.store.memory.MemoryRegistrationStore`; reads are served
from memory (no thread hop on the request path) and each change is applied in memory and then
written, the coroutine returning once the row is committed. So after a restart (a new process
and new objects on the same file) every registration and observation is back. One process owns
a file at a time (a cluster needs the Redis backend).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from lwm2m.bootstrap.config import BootstrapConfig
from lwm2m.errors import Lwm2mError
from lwm2m.server.observation import Observation
from lwm2m.server.registration import Address, LinkCache, Registration
from lwm2m.server.security import PeerIdentity, SecurityInfo
from lwm2m.store.base import Deregistration, NonUniqueSecurityInfo, UpdatedRegistration
from lwm2m.store.memory import MemoryRegistrationStore
from lwm2m.store.serde import (
    SerdeError,
    bootstrap_config_from_json,
    bootstrap_config_to_json,
    dumps,
    loads,
    observation_from_json,
    observation_to_json,
    registration_from_json,
    registration_to_json,
    security_info_from_json,
    security_info_to_json,
)

__all__ = [
    "SCHEMA_VERSION",
    "SqliteBootstrapConfigStore",
    "SqliteRegistrationStore",
    "SqliteSecurityStore",
    "StoreError",
]

log = logging.getLogger("lwm2m.store.sqlite")

SCHEMA_VERSION = 1
"""Version of the table layout (``meta.schema_version``)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS registrations (
    id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    expires_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS registrations_by_expiry ON registrations(expires_at);
CREATE TABLE IF NOT EXISTS observations (
    token BLOB PRIMARY KEY,
    registration_id TEXT NOT NULL REFERENCES registrations(id) ON DELETE CASCADE,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS observations_by_registration ON observations(registration_id);
CREATE TABLE IF NOT EXISTS bootstrap_configs (endpoint TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS security_infos (
    endpoint TEXT PRIMARY KEY,
    kind TEXT,
    identity TEXT,
    data TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS security_infos_by_identity ON security_infos(kind, identity);
"""

T = TypeVar("T")


class StoreError(Lwm2mError):
    """A store cannot be opened or used (unknown schema version, closed store)."""


def _own(path: str, owner: str) -> int:
    """Take the exclusive advisory lock of ``path`` (``PATH.lock``) or raise StoreError."""
    import fcntl

    try:
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"unable to open database file: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(f"in use by another {owner} (another server on the same file?)") from None
    return fd


class _Database:
    """One sqlite3 connection used only from its own thread."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)
        self._lock: int | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lwm2m-sqlite")
        self._connection: sqlite3.Connection | None = None
        self._closed = False

    async def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, function)

    def _call(self, function: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._connect()
        return function(connection)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None)
        try:
            tables = {
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
            if tables and "meta" not in tables:
                # another application's database: neither our tables nor WAL mode go into it
                listed = ", ".join(sorted(tables)[:5])
                raise StoreError(f"a SQLite database of another application (tables: {listed})")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.executescript(_SCHEMA)
            row = connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif row[0] != str(SCHEMA_VERSION):
                raise StoreError(
                    f"{self._path}: schema version {row[0]} (this code reads {SCHEMA_VERSION})"
                )
        except BaseException:
            connection.close()
            raise
        return connection

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self.run(self._close_connection)
        finally:
            self._closed = True
            self._executor.shutdown(wait=True)
            if self._lock is not None:
                os.close(self._lock)  # releases the flock
                self._lock = None

    def own(self, owner: str) -> None:
        """Take the exclusive advisory lock of the file (``PATH.lock``, held until
        :meth:`close`) or raise StoreError: one ``owner`` per file at a time."""
        self._lock = _own(self._path, owner)

    def _close_connection(self, connection: sqlite3.Connection) -> None:
        connection.close()
        self._connection = None


def _transaction(
    connection: sqlite3.Connection, statements: Iterable[tuple[str, tuple[Any, ...]]]
) -> None:
    connection.execute("BEGIN")
    try:
        for sql, params in statements:
            connection.execute(sql, params)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _put_registration(registration: Registration) -> tuple[str, tuple[Any, ...]]:
    return (
        "INSERT OR REPLACE INTO registrations (id, endpoint, expires_at, data) VALUES (?,?,?,?)",
        (
            registration.id,
            registration.endpoint,
            registration.updated_at + registration.lifetime,
            dumps(registration_to_json(registration)),
        ),
    )


def _delete_registration(registration_id: str) -> tuple[str, tuple[Any, ...]]:
    return ("DELETE FROM registrations WHERE id = ?", (registration_id,))


class SqliteRegistrationStore:
    """Registrations and observations in SQLite, served from memory (see the module doc).

    Create with ``await SqliteRegistrationStore.open(path)``; :meth:`close` when done.
    """

    def __init__(self, database: _Database, cache: MemoryRegistrationStore) -> None:
        self._db = database
        self._cache = cache
        # Each change is written first and applied to the cache once the transaction
        # committed, so a failed write leaves both as they were; the lock keeps the changes in
        # one order across the awaits.
        self._writing = asyncio.Lock()

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, links: LinkCache | None = None
    ) -> SqliteRegistrationStore:
        """Open (or create) the store in ``path`` and load it into memory. The store works from
        that copy, so one store owns the file's registrations at a time: a second one (another
        server on the same file) is refused with StoreError (an advisory lock on ``PATH.lock``,
        released on close or when the process ends)."""
        database = _Database(path)
        try:
            rows = await database.run(_load_rows)  # first: a path that is no database fails here
            database.own("registration store")
        except BaseException:
            await database.close()
            raise
        cache = MemoryRegistrationStore()
        links = links if links is not None else LinkCache()
        for rid, data in rows[0]:
            try:
                cache._add(registration_from_json(loads(data), links=links))
            except SerdeError as exc:
                log.warning("%s: registration %s skipped: %s", os.fspath(path), rid, exc)
        for token, data in rows[1]:
            try:
                cache._add_observation(observation_from_json(loads(data)))
            except SerdeError as exc:
                log.warning("%s: observation %s skipped: %s", os.fspath(path), token.hex(), exc)
        return cls(database, cache)

    async def _write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        if statements:
            await self._db.run(lambda c: _transaction(c, statements))

    async def add(self, registration: Registration) -> Deregistration | None:
        async with self._writing:
            cache = self._cache
            statements = [_delete_registration(rid) for rid in cache._replaced_by(registration)]
            statements.append(_put_registration(registration))
            await self._write(statements)
            return cache._add(registration)

    async def update(self, registration: Registration) -> UpdatedRegistration | None:
        async with self._writing:
            if registration.id not in self._cache._by_id:
                return None
            await self._write([_put_registration(registration)])
            return self._cache._update(registration)

    async def get(self, registration_id: str) -> Registration | None:
        return await self._cache.get(registration_id)

    async def get_by_endpoint(self, endpoint: str) -> Registration | None:
        return await self._cache.get_by_endpoint(endpoint)

    async def get_by_address(self, address: Address) -> Registration | None:
        return await self._cache.get_by_address(address)

    async def get_by_identity(self, identity: PeerIdentity) -> Registration | None:
        return await self._cache.get_by_identity(identity)

    async def remove(self, registration_id: str) -> Deregistration | None:
        async with self._writing:
            if registration_id not in self._cache._by_id:
                return None
            await self._write([_delete_registration(registration_id)])
            return self._cache._remove(registration_id)

    async def registrations(self) -> list[Registration]:
        return await self._cache.registrations()

    async def count(self) -> int:
        return await self._cache.count()

    async def expired(self, now: float, grace: float = 0.0) -> list[Registration]:
        return await self._cache.expired(now, grace)

    async def remove_expired(self, now: float, grace: float = 0.0) -> list[Deregistration]:
        async with self._writing:
            expired = self._cache._expired(now, grace)
            await self._write([_delete_registration(r.id) for r in expired])
            removed = [self._cache._remove(r.id) for r in expired]
            return [gone for gone in removed if gone is not None]

    async def add_observation(self, observation: Observation) -> bool:
        async with self._writing:
            if observation.registration_id not in self._cache._by_id:
                return False
            await self._write(
                [
                    (
                        "INSERT OR REPLACE INTO observations (token, registration_id, data) "
                        "VALUES (?,?,?)",
                        (
                            observation.token,
                            observation.registration_id,
                            dumps(observation_to_json(observation)),
                        ),
                    )
                ]
            )
            return self._cache._add_observation(observation)

    async def get_observation(self, token: bytes) -> Observation | None:
        return await self._cache.get_observation(token)

    async def observations(self, registration_id: str) -> list[Observation]:
        return await self._cache.observations(registration_id)

    async def all_observations(self) -> list[Observation]:
        return await self._cache.all_observations()

    async def remove_observation(self, token: bytes) -> Observation | None:
        async with self._writing:
            if token not in self._cache._observations:
                return None
            await self._write([("DELETE FROM observations WHERE token = ?", (token,))])
            return self._cache._remove_observation(token)

    async def remove_observations(self, registration_id: str) -> list[Observation]:
        async with self._writing:
            if not self._cache._by_registration.get(registration_id):
                return []
            await self._write(
                [("DELETE FROM observations WHERE registration_id = ?", (registration_id,))]
            )
            return self._cache._remove_observations(registration_id)

    async def close(self) -> None:
        await self._db.close()


def _load_rows(
    connection: sqlite3.Connection,
) -> tuple[list[tuple[str, str]], list[tuple[bytes, str]]]:
    registrations = connection.execute("SELECT id, data FROM registrations").fetchall()
    observations = connection.execute("SELECT token, data FROM observations").fetchall()
    return registrations, observations


class SqliteBootstrapConfigStore:
    """Bootstrap configurations in SQLite (queried on each call: Bootstrap-Requests are rare).

    Create with ``await SqliteBootstrapConfigStore.open(path)``; :meth:`close` when done.
    """

    def __init__(self, database: _Database) -> None:
        self._db = database

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SqliteBootstrapConfigStore:
        database = _Database(path)
        try:
            await database.run(lambda c: None)
        except BaseException:
            await database.close()
            raise
        return cls(database)

    async def get(self, endpoint: str) -> BootstrapConfig | None:
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT data FROM bootstrap_configs WHERE endpoint = ?", (endpoint,)
            ).fetchone()
        )
        if row is None:
            return None
        return bootstrap_config_from_json(loads(row[0]))

    async def put(self, endpoint: str, config: BootstrapConfig) -> None:
        data = dumps(bootstrap_config_to_json(config))
        sql = "INSERT OR REPLACE INTO bootstrap_configs (endpoint, data) VALUES (?, ?)"
        await self._db.run(lambda c: _transaction(c, [(sql, (endpoint, data))]))

    async def remove(self, endpoint: str) -> bool:
        def delete(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "DELETE FROM bootstrap_configs WHERE endpoint = ?", (endpoint,)
            )
            return cursor.rowcount > 0

        return await self._db.run(delete)

    async def all(self) -> dict[str, BootstrapConfig]:
        rows = await self._db.run(
            lambda c: c.execute("SELECT endpoint, data FROM bootstrap_configs").fetchall()
        )
        return {endpoint: bootstrap_config_from_json(loads(data)) for endpoint, data in rows}

    async def close(self) -> None:
        await self._db.close()


class SqliteSecurityStore:
    """Security entries in SQLite (queried on each call: a DTLS layer caches the PSKs it
    loads, and the endpoint check runs once per Register).

    Create with ``await SqliteSecurityStore.open(path)``; :meth:`close` when done. The file holds
    the PSKs (see :mod:`lwm2m.store.serde`): protect it.
    """

    def __init__(self, database: _Database) -> None:
        self._db = database

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SqliteSecurityStore:
        database = _Database(path)
        try:
            await database.run(lambda c: None)
        except BaseException:
            await database.close()
            raise
        return cls(database)

    @staticmethod
    def _info(row: tuple[str] | None) -> SecurityInfo | None:
        return None if row is None else security_info_from_json(loads(row[0]))

    async def get_by_endpoint(self, endpoint: str) -> SecurityInfo | None:
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT data FROM security_infos WHERE endpoint = ?", (endpoint,)
            ).fetchone()
        )
        return self._info(row)

    async def get_by_identity(self, identity: PeerIdentity) -> SecurityInfo | None:
        key = (identity.kind.value, identity.value)
        row = await self._db.run(
            lambda c: c.execute(
                "SELECT data FROM security_infos WHERE kind = ? AND identity = ?", key
            ).fetchone()
        )
        return self._info(row)

    async def put(self, info: SecurityInfo) -> SecurityInfo | None:
        data = dumps(security_info_to_json(info))
        identity = info.identity
        kind = None if identity is None else identity.kind.value
        value = None if identity is None else identity.value

        def put(connection: sqlite3.Connection) -> str | None:
            connection.execute("BEGIN IMMEDIATE")
            try:
                if identity is not None:
                    owner = connection.execute(
                        "SELECT endpoint FROM security_infos "
                        "WHERE kind = ? AND identity = ? AND endpoint != ?",
                        (kind, value, info.endpoint),
                    ).fetchone()
                    if owner is not None:
                        raise NonUniqueSecurityInfo(
                            f"identity {identity} already belongs to endpoint {owner[0]!r}"
                        )
                old = connection.execute(
                    "SELECT data FROM security_infos WHERE endpoint = ?", (info.endpoint,)
                ).fetchone()
                connection.execute(
                    "INSERT OR REPLACE INTO security_infos (endpoint, kind, identity, data) "
                    "VALUES (?,?,?,?)",
                    (info.endpoint, kind, value, data),
                )
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return None if old is None else str(old[0])

        old = await self._db.run(put)
        return None if old is None else security_info_from_json(loads(old))

    async def delete(self, endpoint: str) -> SecurityInfo | None:
        def delete(connection: sqlite3.Connection) -> str | None:
            row = connection.execute(
                "SELECT data FROM security_infos WHERE endpoint = ?", (endpoint,)
            ).fetchone()
            if row is None:
                return None
            connection.execute("DELETE FROM security_infos WHERE endpoint = ?", (endpoint,))
            return str(row[0])

        old = await self._db.run(delete)
        return None if old is None else security_info_from_json(loads(old))

    async def all(self) -> list[SecurityInfo]:
        rows = await self._db.run(
            lambda c: c.execute("SELECT endpoint, data FROM security_infos").fetchall()
        )
        infos = []
        for endpoint, data in rows:
            try:
                infos.append(security_info_from_json(loads(data)))
            except SerdeError as exc:
                log.warning("security entry of %r skipped: %s", endpoint, exc)
        return infos

    async def close(self) -> None:
        await self._db.close()

    def __repr__(self) -> str:
        return "<SqliteSecurityStore>"
