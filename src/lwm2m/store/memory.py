"""In-memory stores (the default backend): dictionaries and an expiry heap, nothing persisted.

Implements the Protocols of :mod:`lwm2m.store.base`. Every method is a coroutine that completes
without suspending, so the services pay no thread hop; indexes (endpoint, address, identity,
expiry) make every lookup O(1) and :meth:`MemoryRegistrationStore.remove_expired` O(k log n).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from lwm2m.bootstrap.config import BootstrapConfig
from lwm2m.server.observation import Observation
from lwm2m.server.registration import Address, Registration
from lwm2m.server.security import PeerIdentity, SecurityInfo
from lwm2m.store.base import Deregistration, NonUniqueSecurityInfo, UpdatedRegistration

__all__ = ["MemoryBootstrapConfigStore", "MemoryRegistrationStore", "MemorySecurityStore"]


class MemoryRegistrationStore:
    """Registrations and observations in dictionaries (see :class:`~lwm2m.store.base.
    RegistrationStore`)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Registration] = {}
        self._by_endpoint: dict[str, str] = {}
        self._by_address: dict[Address, str] = {}
        self._by_identity: dict[PeerIdentity, str] = {}
        self._expiry: list[tuple[float, str]] = []
        self._observations: dict[bytes, Observation] = {}
        self._by_registration: dict[str, dict[bytes, Observation]] = {}

    # -- synchronous core (shared with the SQLite store's write-through cache) -----------------

    def _index(self, registration: Registration) -> None:
        rid = registration.id
        self._by_id[rid] = registration
        self._by_endpoint[registration.endpoint] = rid
        self._by_address[registration.address] = rid
        if registration.identity is not None:
            self._by_identity[registration.identity] = rid
        heapq.heappush(self._expiry, (registration.updated_at + registration.lifetime, rid))
        if len(self._expiry) > 2 * len(self._by_id) + 64:
            self._expiry = [(r.updated_at + r.lifetime, r.id) for r in self._by_id.values()]
            heapq.heapify(self._expiry)

    def _unindex(self, registration: Registration) -> None:
        rid = registration.id
        del self._by_id[rid]
        if self._by_endpoint.get(registration.endpoint) == rid:
            del self._by_endpoint[registration.endpoint]
        if self._by_address.get(registration.address) == rid:
            del self._by_address[registration.address]
        identity = registration.identity
        if identity is not None and self._by_identity.get(identity) == rid:
            del self._by_identity[identity]

    def _replaced_by(self, registration: Registration) -> set[str]:
        """The ids :meth:`_add` removes for ``registration``: the endpoint's previous
        registration, and the same id again (a client re-using a location is not possible; a
        caller bug)."""
        ids = {self._by_endpoint.get(registration.endpoint), registration.id}
        return {rid for rid in ids if rid is not None and rid in self._by_id}

    def _add(self, registration: Registration) -> Deregistration | None:
        previous_id = self._by_endpoint.get(registration.endpoint)
        replaced = self._remove(previous_id) if previous_id is not None else None
        if registration.id in self._by_id:
            self._remove(registration.id)
        self._index(registration)
        return replaced

    def _update(self, registration: Registration) -> UpdatedRegistration | None:
        old = self._by_id.get(registration.id)
        if old is None:
            return None
        self._unindex(old)
        self._index(registration)
        return UpdatedRegistration(old, registration)

    def _remove(self, registration_id: str) -> Deregistration | None:
        registration = self._by_id.get(registration_id)
        if registration is None:
            return None
        self._unindex(registration)
        return Deregistration(registration, tuple(self._remove_observations(registration_id)))

    def _expired(self, now: float, grace: float) -> list[Registration]:
        return [r for r in self._by_id.values() if r.is_expired(now, grace)]

    def _remove_expired(self, now: float, grace: float) -> list[Deregistration]:
        removed: list[Deregistration] = []
        heap = self._expiry
        while heap and heap[0][0] + grace < now:
            when, rid = heapq.heappop(heap)
            registration = self._by_id.get(rid)
            if registration is None or registration.updated_at + registration.lifetime != when:
                continue  # stale entry: removed or updated since
            gone = self._remove(rid)
            assert gone is not None
            removed.append(gone)
        return removed

    def _add_observation(self, observation: Observation) -> bool:
        rid = observation.registration_id
        if rid not in self._by_id:
            return False
        old = self._observations.get(observation.token)
        if old is not None:
            self._remove_observation(old.token)
        self._observations[observation.token] = observation
        self._by_registration.setdefault(rid, {})[observation.token] = observation
        return True

    def _remove_observation(self, token: bytes) -> Observation | None:
        observation = self._observations.pop(token, None)
        if observation is None:
            return None
        mine = self._by_registration.get(observation.registration_id)
        if mine is not None:
            mine.pop(token, None)
            if not mine:
                del self._by_registration[observation.registration_id]
        return observation

    def _remove_observations(self, registration_id: str) -> list[Observation]:
        mine = self._by_registration.pop(registration_id, None)
        if not mine:
            return []
        for token in mine:
            del self._observations[token]
        return list(mine.values())

    # -- the Protocol ---------------------------------------------------------------------------

    async def add(self, registration: Registration) -> Deregistration | None:
        return self._add(registration)

    async def update(self, registration: Registration) -> UpdatedRegistration | None:
        return self._update(registration)

    async def get(self, registration_id: str) -> Registration | None:
        return self._by_id.get(registration_id)

    async def get_by_endpoint(self, endpoint: str) -> Registration | None:
        rid = self._by_endpoint.get(endpoint)
        return self._by_id.get(rid) if rid is not None else None

    async def get_by_address(self, address: Address) -> Registration | None:
        rid = self._by_address.get(address)
        return self._by_id.get(rid) if rid is not None else None

    async def get_by_identity(self, identity: PeerIdentity) -> Registration | None:
        rid = self._by_identity.get(identity)
        return self._by_id.get(rid) if rid is not None else None

    async def remove(self, registration_id: str) -> Deregistration | None:
        return self._remove(registration_id)

    async def registrations(self) -> list[Registration]:
        return list(self._by_id.values())

    async def count(self) -> int:
        return len(self._by_id)

    async def expired(self, now: float, grace: float = 0.0) -> list[Registration]:
        return self._expired(now, grace)

    async def remove_expired(self, now: float, grace: float = 0.0) -> list[Deregistration]:
        return self._remove_expired(now, grace)

    async def add_observation(self, observation: Observation) -> bool:
        return self._add_observation(observation)

    async def get_observation(self, token: bytes) -> Observation | None:
        return self._observations.get(token)

    async def observations(self, registration_id: str) -> list[Observation]:
        return list(self._by_registration.get(registration_id, {}).values())

    async def all_observations(self) -> list[Observation]:
        return list(self._observations.values())

    async def remove_observation(self, token: bytes) -> Observation | None:
        return self._remove_observation(token)

    async def remove_observations(self, registration_id: str) -> list[Observation]:
        return self._remove_observations(registration_id)

    async def close(self) -> None:
        return None


class MemoryBootstrapConfigStore:
    """Bootstrap configurations in a dictionary (see :class:`~lwm2m.store.base.
    BootstrapConfigStore`)."""

    def __init__(self, configs: dict[str, BootstrapConfig] | None = None) -> None:
        self._configs: dict[str, BootstrapConfig] = dict(configs or {})

    async def get(self, endpoint: str) -> BootstrapConfig | None:
        return self._configs.get(endpoint)

    async def put(self, endpoint: str, config: BootstrapConfig) -> None:
        self._configs[endpoint] = config

    async def remove(self, endpoint: str) -> bool:
        return self._configs.pop(endpoint, None) is not None

    async def all(self) -> dict[str, BootstrapConfig]:
        return dict(self._configs)

    async def close(self) -> None:
        return None


class MemorySecurityStore:
    """Endpoint → security entry, in dictionaries (see :class:`~lwm2m.store.base.
    SecurityStore`). :meth:`add` / :meth:`remove` are the synchronous forms of :meth:`put` /
    :meth:`delete`."""

    def __init__(self, infos: Iterable[SecurityInfo] | None = None) -> None:
        self._by_endpoint: dict[str, SecurityInfo] = {}
        self._by_identity: dict[PeerIdentity, SecurityInfo] = {}
        for info in infos or ():
            self.add(info)

    def add(self, info: SecurityInfo) -> SecurityInfo | None:
        identity = info.identity
        if identity is not None:
            owner = self._by_identity.get(identity)
            if owner is not None and owner.endpoint != info.endpoint:
                raise NonUniqueSecurityInfo(
                    f"identity {identity} already belongs to endpoint {owner.endpoint!r}"
                )
        old = self._by_endpoint.get(info.endpoint)
        if old is not None and old.identity is not None:
            self._by_identity.pop(old.identity, None)
        self._by_endpoint[info.endpoint] = info
        if identity is not None:
            self._by_identity[identity] = info
        return old

    def remove(self, endpoint: str) -> SecurityInfo | None:
        info = self._by_endpoint.pop(endpoint, None)
        if info is not None and info.identity is not None:
            self._by_identity.pop(info.identity, None)
        return info

    async def get_by_endpoint(self, endpoint: str) -> SecurityInfo | None:
        return self._by_endpoint.get(endpoint)

    async def get_by_identity(self, identity: PeerIdentity) -> SecurityInfo | None:
        return self._by_identity.get(identity)

    async def put(self, info: SecurityInfo) -> SecurityInfo | None:
        return self.add(info)

    async def delete(self, endpoint: str) -> SecurityInfo | None:
        return self.remove(endpoint)

    async def all(self) -> list[SecurityInfo]:
        return list(self._by_endpoint.values())

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"<MemorySecurityStore {len(self._by_endpoint)} endpoints>"
