"""Redis stores: the backend a cluster of server nodes shares (redis-py's :mod:`redis.asyncio`).

Implements :class:`~lwm2m.store.base.RegistrationStore`, :class:`~lwm2m.store.base.SecurityStore`
and :class:`~lwm2m.store.base.BootstrapConfigStore`. Create with ``await
RedisRegistrationStore.open("redis://HOST:PORT/DB")`` (``rediss://`` for TLS,
``unix:///path/redis.sock``); every node opens its own objects on the same server. Nothing is
cached in the process: each call reads Redis, so a node sees another's writes at once.

Records are the JSON documents of :mod:`lwm2m.store.serde` (never pickles); one that does not
parse raises :class:`~lwm2m.store.sqlite.StoreError`. The security and bootstrap hashes hold
PSKs and OSCORE secrets: protect the Redis server (AUTH, TLS, no public port). Keys, under
``prefix`` (``lwm2m:`` by default):

=======================  =====  ==============================================================
``reg``                  hash   registration id → registration
``reg:keys``             hash   registration id → its index fields ``[endpoint, address, identity]``
``reg:endpoint``         hash   endpoint → registration id
``reg:address``          hash   ``HOST:PORT`` → registration id
``reg:identity``         hash   ``KIND:VALUE`` → registration id
``reg:expiry``           zset   registration ids scored by ``updated_at + lifetime``
``obs``                  hash   token (hex) → observation
``obs:owner``            hash   token (hex) → registration id
``obs:reg:<id>``         set    tokens of the registration's observations
``sec``                  hash   endpoint → security entry
``sec:identity``         hash   ``KIND:VALUE`` → endpoint
``sec:keys``             hash   endpoint → ``KIND:VALUE`` (its identity)
``bootstrap``            hash   endpoint → bootstrap configuration
=======================  =====  ==============================================================

Every change touching more than one key (add, update, remove, remove_expired, observations,
security entries) and every lookup through an index is one call of a Lua script (:data:`_LUA`),
which Redis runs atomically: concurrent nodes never see or leave half a change. remove_expired
removes a registration only if its record is still the expired one it read (an Update from
another node wins). The scripts name their keys through ``prefix`` instead of declaring them,
so they need one Redis server (with replicas or Sentinel as Redis offers them), not a Redis
Cluster.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, Self, TypeVar, cast

import redis.asyncio
from redis.exceptions import RedisError

from lwm2m.bootstrap.config import BootstrapConfig
from lwm2m.server.observation import Observation
from lwm2m.server.registration import Address, LinkCache, Registration
from lwm2m.server.security import PeerIdentity, SecurityInfo
from lwm2m.store.base import Deregistration, NonUniqueSecurityInfo, UpdatedRegistration
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
from lwm2m.store.sqlite import StoreError

_log = logging.getLogger("lwm2m.store.redis")

__all__ = ["RedisBootstrapConfigStore", "RedisRegistrationStore", "RedisSecurityStore"]

T = TypeVar("T")
Data = bytes | str
"""A value redis-py returns (bytes: the client does not decode)."""

_EXPIRY_MARGIN = 1.0
"""Seconds added to the expiry query bound; the exact test is ``Registration.is_expired``."""

_LUA = """
local op, P = ARGV[1], ARGV[2]
local REG, RKEYS, EP, ADDR, IDENT = P..'reg', P..'reg:keys', P..'reg:endpoint', P..'reg:address',
  P..'reg:identity'
local EXP, OBS, OWNER = P..'reg:expiry', P..'obs', P..'obs:owner'
local SEC, SID, SKEYS = P..'sec', P..'sec:identity', P..'sec:keys'

local function unindex_if(hash, field, value)
  if type(field) == 'string' and redis.call('HGET', hash, field) == value then
    redis.call('HDEL', hash, field)
  end
end

local function drop_observations(rid, out)
  local set = P..'obs:reg:'..rid
  for _, token in ipairs(redis.call('SMEMBERS', set)) do
    local data = redis.call('HGET', OBS, token)
    if data then out[#out + 1] = data end
    redis.call('HDEL', OBS, token)
    redis.call('HDEL', OWNER, token)
  end
  redis.call('DEL', set)
  return out
end

local function unindex(rid)
  local ok, fields = pcall(cjson.decode, redis.call('HGET', RKEYS, rid) or 'null')
  if ok and type(fields) == 'table' then
    unindex_if(EP, fields[1], rid)
    unindex_if(ADDR, fields[2], rid)
    unindex_if(IDENT, fields[3], rid)
  end
  redis.call('HDEL', RKEYS, rid)
  redis.call('ZREM', EXP, rid)
end

-- remove a registration (only if its record is `expected`, when given) and its observations
local function drop(rid, expected)
  local data = redis.call('HGET', REG, rid)
  if not data or (expected and data ~= expected) then return false end
  unindex(rid)
  redis.call('HDEL', REG, rid)
  return drop_observations(rid, {data})
end

-- ARGV[3..8]: id, record, endpoint, address, identity ('' for none), expiry
local function index()
  local rid = ARGV[3]
  redis.call('HSET', REG, rid, ARGV[4])
  redis.call('HSET', RKEYS, rid, cjson.encode({ARGV[5], ARGV[6], ARGV[7]}))
  redis.call('HSET', EP, ARGV[5], rid)
  redis.call('HSET', ADDR, ARGV[6], rid)
  if ARGV[7] ~= '' then redis.call('HSET', IDENT, ARGV[7], rid) end
  redis.call('ZADD', EXP, ARGV[8], rid)
end

local function sec_drop(endpoint)
  local old = redis.call('HGET', SEC, endpoint)
  unindex_if(SID, redis.call('HGET', SKEYS, endpoint), endpoint)
  redis.call('HDEL', SKEYS, endpoint)
  redis.call('HDEL', SEC, endpoint)
  return old
end

if op == 'add' then
  local previous = redis.call('HGET', EP, ARGV[5])
  local replaced = previous and drop(previous) or false
  drop(ARGV[3])
  index()
  return replaced
elseif op == 'update' then
  local old = redis.call('HGET', REG, ARGV[3])
  if old then
    unindex(ARGV[3])
    index()
  end
  return old
elseif op == 'remove' then  -- pairs of id, expected record ('' for any)
  local out = {}
  for i = 3, #ARGV, 2 do
    out[#out + 1] = drop(ARGV[i], ARGV[i + 1] ~= '' and ARGV[i + 1] or nil)
  end
  return out
elseif op == 'observe' then  -- id, token, record
  if redis.call('HEXISTS', REG, ARGV[3]) == 0 then return 0 end
  local owner = redis.call('HGET', OWNER, ARGV[4])
  if owner then redis.call('SREM', P..'obs:reg:'..owner, ARGV[4]) end
  redis.call('HSET', OBS, ARGV[4], ARGV[5])
  redis.call('HSET', OWNER, ARGV[4], ARGV[3])
  redis.call('SADD', P..'obs:reg:'..ARGV[3], ARGV[4])
  return 1
elseif op == 'forget' then  -- token
  local data = redis.call('HGET', OBS, ARGV[3])
  local owner = redis.call('HGET', OWNER, ARGV[3])
  if owner then redis.call('SREM', P..'obs:reg:'..owner, ARGV[3]) end
  redis.call('HDEL', OBS, ARGV[3])
  redis.call('HDEL', OWNER, ARGV[3])
  return data
elseif op == 'forget_all' then  -- id
  return drop_observations(ARGV[3], {})
elseif op == 'observations' then  -- id
  local out = {}
  for _, token in ipairs(redis.call('SMEMBERS', P..'obs:reg:'..ARGV[3])) do
    local data = redis.call('HGET', OBS, token)
    if data then out[#out + 1] = data end
  end
  return out
elseif op == 'lookup' then  -- index hash, field, record hash
  local id = redis.call('HGET', P..ARGV[3], ARGV[4])
  return id and redis.call('HGET', P..ARGV[5], id) or false
elseif op == 'sec_put' then  -- endpoint, identity ('' for none), record
  if ARGV[4] ~= '' then
    local owner = redis.call('HGET', SID, ARGV[4])
    if owner and owner ~= ARGV[3] then return {'taken', owner} end
  end
  local old = sec_drop(ARGV[3])
  redis.call('HSET', SEC, ARGV[3], ARGV[5])
  if ARGV[4] ~= '' then
    redis.call('HSET', SID, ARGV[4], ARGV[3])
    redis.call('HSET', SKEYS, ARGV[3], ARGV[4])
  end
  return {'ok', old}
elseif op == 'sec_delete' then  -- endpoint
  return sec_drop(ARGV[3])
end
return redis.error_reply('unknown operation ' .. op)
"""


def _identity_key(identity: PeerIdentity | None) -> str:
    return "" if identity is None else f"{identity.kind.value}:{identity.value}"


def _address_key(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


def _text(data: Data) -> str:
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


def _parse(what: str, data: Data, parse: Callable[[dict[str, Any]], T]) -> T:
    """A record read back from Redis, or StoreError (the message never shows its content)."""
    try:
        return parse(loads(data))
    except SerdeError as exc:
        raise StoreError(f"Redis holds an unreadable {what}: {exc}") from None


_DECODED_LIMIT = 4096
"""Parsed registrations kept per store object (keyed by their record's bytes)."""


class _RedisStore:
    """A redis-py client, the key prefix and the script, shared by the three stores."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_LUA)
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, prefix: str = "lwm2m:") -> Self:
        """Connect to the Redis server at ``url`` (``redis://HOST:PORT/DB``, ``rediss://…``,
        ``unix:///path/redis.sock``); StoreError when it is unreachable or the URL is not one."""
        try:
            client = redis.asyncio.Redis.from_url(url)
        except (ValueError, TypeError) as exc:  # the messages name schemes or parameters only
            raise StoreError(f"not a Redis URL: {exc}") from None
        # Query parameters of the URL override from_url's keyword arguments in redis-py: pin
        # what the scripts rely on before the first connection is made. Replies stay bytes
        # (a ?decode_responses=1 would turn the scripts' b"taken" into "taken"), and strings
        # any Python str can hold are written (an endpoint the memory store takes is never a
        # UnicodeEncodeError here).
        options = client.connection_pool.connection_kwargs
        options["decode_responses"] = False
        options["encoding_errors"] = "surrogatepass"
        try:
            await client.ping()
        except (RedisError, TypeError) as exc:  # TypeError: an unknown URL parameter
            await client.aclose()
            what = "not a Redis URL" if isinstance(exc, TypeError) else "cannot reach Redis"
            raise StoreError(f"{what}: {exc}") from None
        return cls(client, prefix)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.aclose()

    @contextlib.contextmanager
    def _redis(self) -> Iterator[redis.asyncio.Redis]:
        """The client, with Redis failures as StoreError."""
        if self._closed:
            raise StoreError("the store is closed")
        try:
            yield self._client
        except RedisError as exc:
            raise StoreError(f"Redis: {exc}") from None

    def _key(self, name: str) -> str:
        return self._prefix + name

    async def _run(self, op: str, *args: str | bytes | float) -> Any:
        with self._redis():
            return await self._script(args=[op, self._prefix, *args])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} prefix={self._prefix!r}>"


class RedisRegistrationStore(_RedisStore):
    """Registrations and observations in Redis (see the module doc). Create with ``await
    RedisRegistrationStore.open(url)``; :meth:`close` when done."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str) -> None:
        super().__init__(client, prefix)
        self._links = LinkCache()
        self._decoded: dict[Data, Registration] = {}

    def _registration(self, data: Data) -> Registration:
        # Parsing a record (its link list above all) costs far more than the Redis round trip,
        # and a Read looks its registration up every time: records already parsed are kept,
        # keyed by their own bytes. That is no cache of the store's state (a record another
        # node changed has other bytes), only of a pure function; registrations are immutable.
        found = self._decoded.get(data)
        if found is None:
            found = _parse(
                "registration", data, lambda d: registration_from_json(d, links=self._links)
            )
            if len(self._decoded) >= _DECODED_LIMIT:
                self._decoded.clear()
            self._decoded[data] = found
        return found

    @staticmethod
    def _observation(data: Data) -> Observation:
        return _parse("observation", data, observation_from_json)

    def _deregistration(self, reply: list[Data] | None) -> Deregistration | None:
        if not reply:
            return None
        data, *observations = reply
        return Deregistration(
            self._registration(data), tuple(self._observation(o) for o in observations)
        )

    def _write_args(self, registration: Registration) -> tuple[str, ...]:
        return (
            registration.id,
            dumps(registration_to_json(registration)),
            registration.endpoint,
            _address_key(registration.address),
            _identity_key(registration.identity),
            repr(registration.updated_at + registration.lifetime),
        )

    async def add(self, registration: Registration) -> Deregistration | None:
        return self._deregistration(await self._run("add", *self._write_args(registration)))

    async def update(self, registration: Registration) -> UpdatedRegistration | None:
        old = await self._run("update", *self._write_args(registration))
        return None if old is None else UpdatedRegistration(self._registration(old), registration)

    async def _lookup(self, index: str, field: str) -> Registration | None:
        data = await self._run("lookup", index, field, "reg")
        return None if data is None else self._registration(data)

    async def get(self, registration_id: str) -> Registration | None:
        with self._redis() as client:
            data = await client.hget(self._key("reg"), registration_id)
        return None if data is None else self._registration(data)

    async def get_by_endpoint(self, endpoint: str) -> Registration | None:
        return await self._lookup("reg:endpoint", endpoint)

    async def get_by_address(self, address: Address) -> Registration | None:
        return await self._lookup("reg:address", _address_key(address))

    async def get_by_identity(self, identity: PeerIdentity) -> Registration | None:
        return await self._lookup("reg:identity", _identity_key(identity))

    async def remove(self, registration_id: str) -> Deregistration | None:
        (reply,) = await self._run("remove", registration_id, "")
        return self._deregistration(reply)

    async def registrations(self) -> list[Registration]:
        with self._redis() as client:
            records = await client.hvals(self._key("reg"))
        return [self._registration(data) for data in records]

    async def count(self) -> int:
        with self._redis() as client:
            return int(await client.hlen(self._key("reg")))

    async def _expired(self, now: float, grace: float) -> list[tuple[Data, Registration]]:
        """The expired registrations with the records they were read from."""
        with self._redis() as client:
            bound = now - grace + _EXPIRY_MARGIN
            ids = cast(
                list[bytes], await client.zrangebyscore(self._key("reg:expiry"), "-inf", bound)
            )
            records = await client.hmget(self._key("reg"), ids) if ids else []
        found: list[tuple[Data, Registration]] = []
        unreadable: list[bytes] = []
        for rid, data in zip(ids, records, strict=True):
            if data is None:
                continue
            try:
                registration = self._registration(data)
            except StoreError as exc:
                # One unreadable record must not stop every sweep (SQLite skips such rows too).
                # The record stays in Redis for an operator; it leaves the expiry index, so it
                # is reported once, not at every sweep.
                _log.warning(
                    "expiry sweep skips registration %r: %s", rid.decode(errors="replace"), exc
                )
                unreadable.append(rid)
                continue
            if registration.is_expired(now, grace):
                found.append((data, registration))
        if unreadable:
            with self._redis() as client:
                await client.zrem(self._key("reg:expiry"), *unreadable)
        return found

    async def expired(self, now: float, grace: float = 0.0) -> list[Registration]:
        return [registration for _, registration in await self._expired(now, grace)]

    async def remove_expired(self, now: float, grace: float = 0.0) -> list[Deregistration]:
        expired = await self._expired(now, grace)
        if not expired:
            return []
        pairs = [value for data, r in expired for value in (r.id, data)]
        replies = await self._run("remove", *pairs)
        removed = [self._deregistration(reply) for reply in replies]
        return [gone for gone in removed if gone is not None]

    async def add_observation(self, observation: Observation) -> bool:
        record = dumps(observation_to_json(observation))
        token = observation.token.hex()
        return bool(await self._run("observe", observation.registration_id, token, record))

    async def get_observation(self, token: bytes) -> Observation | None:
        with self._redis() as client:
            data = await client.hget(self._key("obs"), token.hex())
        return None if data is None else self._observation(data)

    async def observations(self, registration_id: str) -> list[Observation]:
        return [self._observation(o) for o in await self._run("observations", registration_id)]

    async def all_observations(self) -> list[Observation]:
        with self._redis() as client:
            records = await client.hvals(self._key("obs"))
        return [self._observation(data) for data in records]

    async def remove_observation(self, token: bytes) -> Observation | None:
        data = await self._run("forget", token.hex())
        return None if data is None else self._observation(data)

    async def remove_observations(self, registration_id: str) -> list[Observation]:
        return [self._observation(o) for o in await self._run("forget_all", registration_id)]


class RedisSecurityStore(_RedisStore):
    """Security entries in Redis (see the module doc; they hold PSKs: protect the server).
    Create with ``await RedisSecurityStore.open(url)``; :meth:`close` when done."""

    @staticmethod
    def _info(data: Data | None) -> SecurityInfo | None:
        return None if data is None else _parse("security entry", data, security_info_from_json)

    async def get_by_endpoint(self, endpoint: str) -> SecurityInfo | None:
        with self._redis() as client:
            return self._info(await client.hget(self._key("sec"), endpoint))

    async def get_by_identity(self, identity: PeerIdentity) -> SecurityInfo | None:
        return self._info(await self._run("lookup", "sec:identity", _identity_key(identity), "sec"))

    async def put(self, info: SecurityInfo) -> SecurityInfo | None:
        record = dumps(security_info_to_json(info))
        outcome, value = await self._run(
            "sec_put", info.endpoint, _identity_key(info.identity), record
        )
        if outcome == b"taken":
            raise NonUniqueSecurityInfo(
                f"identity {info.identity} already belongs to endpoint {_text(value)!r}"
            )
        return self._info(value)

    async def delete(self, endpoint: str) -> SecurityInfo | None:
        return self._info(await self._run("sec_delete", endpoint))

    async def all(self) -> list[SecurityInfo]:
        with self._redis() as client:
            records = await client.hvals(self._key("sec"))
        return [info for info in map(self._info, records) if info is not None]


class RedisBootstrapConfigStore(_RedisStore):
    """Bootstrap configurations in Redis, one hash field per endpoint (they hold secrets:
    protect the server). Create with ``await RedisBootstrapConfigStore.open(url)``."""

    @staticmethod
    def _config(data: Data) -> BootstrapConfig:
        return _parse("bootstrap configuration", data, bootstrap_config_from_json)

    async def get(self, endpoint: str) -> BootstrapConfig | None:
        with self._redis() as client:
            data = await client.hget(self._key("bootstrap"), endpoint)
        return None if data is None else self._config(data)

    async def put(self, endpoint: str, config: BootstrapConfig) -> None:
        record = dumps(bootstrap_config_to_json(config))
        with self._redis() as client:
            await client.hset(self._key("bootstrap"), endpoint, record)

    async def remove(self, endpoint: str) -> bool:
        with self._redis() as client:
            return bool(await client.hdel(self._key("bootstrap"), endpoint))

    async def all(self) -> dict[str, BootstrapConfig]:
        with self._redis() as client:
            records = await client.hgetall(self._key("bootstrap"))
        return {_text(endpoint): self._config(data) for endpoint, data in records.items()}
