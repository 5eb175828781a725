"""Stores of the server and the bootstrap server (layer L3, ARCHITECTURE.md decision 5):
async Protocols (:mod:`~lwm2m.store.base`), in-memory (:mod:`~lwm2m.store.memory`, the
default), SQLite (:mod:`~lwm2m.store.sqlite`) and Redis (:mod:`~lwm2m.store.redis`) backends,
and the explicit JSON serialisation they persist with (:mod:`~lwm2m.store.serde`).

The Redis classes are imported on first use (redis-py is optional): ``from lwm2m.store import
RedisRegistrationStore`` raises ImportError only where redis-py is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lwm2m.store.base import (
    BootstrapConfigStore,
    Deregistration,
    NonUniqueSecurityInfo,
    RegistrationStore,
    SecurityStore,
    UpdatedRegistration,
)
from lwm2m.store.memory import (
    MemoryBootstrapConfigStore,
    MemoryRegistrationStore,
    MemorySecurityStore,
)
from lwm2m.store.sqlite import (
    SqliteBootstrapConfigStore,
    SqliteRegistrationStore,
    SqliteSecurityStore,
    StoreError,
)

if TYPE_CHECKING:
    from lwm2m.store.redis import (
        RedisBootstrapConfigStore,
        RedisRegistrationStore,
        RedisSecurityStore,
    )

_REDIS = ("RedisBootstrapConfigStore", "RedisRegistrationStore", "RedisSecurityStore")

__all__ = [
    "BootstrapConfigStore",
    "Deregistration",
    "MemoryBootstrapConfigStore",
    "MemoryRegistrationStore",
    "MemorySecurityStore",
    "NonUniqueSecurityInfo",
    "RedisBootstrapConfigStore",
    "RedisRegistrationStore",
    "RedisSecurityStore",
    "RegistrationStore",
    "SecurityStore",
    "SqliteBootstrapConfigStore",
    "SqliteRegistrationStore",
    "SqliteSecurityStore",
    "StoreError",
    "UpdatedRegistration",
]


def __getattr__(name: str) -> Any:
    if name in _REDIS:
        from lwm2m.store import redis

        return getattr(redis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
