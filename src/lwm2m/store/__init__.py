"""Stores of the server and the bootstrap server (layer L3, ARCHITECTURE.md decision 5):
async Protocols (:mod:`~lwm2m.store.base`), in-memory (:mod:`~lwm2m.store.memory`, the
default) and SQLite (:mod:`~lwm2m.store.sqlite`) backends, and the explicit JSON serialisation
they persist with (:mod:`~lwm2m.store.serde`)."""

from __future__ import annotations

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

__all__ = [
    "BootstrapConfigStore",
    "Deregistration",
    "MemoryBootstrapConfigStore",
    "MemoryRegistrationStore",
    "MemorySecurityStore",
    "NonUniqueSecurityInfo",
    "RegistrationStore",
    "SecurityStore",
    "SqliteBootstrapConfigStore",
    "SqliteRegistrationStore",
    "SqliteSecurityStore",
    "StoreError",
    "UpdatedRegistration",
]
