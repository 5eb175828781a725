"""The store Protocols of the server and the bootstrap server (ARCHITECTURE.md decision 5).

Registrations and observations (:class:`RegistrationStore`, after Leshan's RegistrationStore),
bootstrap configurations (:class:`BootstrapConfigStore`) and endpoint security information
(:class:`SecurityStore`) live behind async :class:`typing.Protocol` s so that the services do not
care whether state is in memory (default), in SQLite (a persistent single node) or, later, in
Redis (a cluster). Every backend passes the same contract suite (``tests/store``).

Rules every backend follows:

- Values are the immutable records of :mod:`lwm2m.server` / :mod:`lwm2m.bootstrap`; a backend
  returns equal values to those it was given (persistent backends through
  :mod:`lwm2m.store.serde`, never pickle).
- One registration per endpoint: :meth:`RegistrationStore.add` replaces the endpoint's previous
  registration and returns it with its observations (:class:`Deregistration`).
- Observations belong to a registration and go away with it.
- Updates return ``(old, new)`` (:class:`UpdatedRegistration`, Leshan's UpdatedRegistration).
- Security entries: one per endpoint, and an identity belongs to one endpoint at most
  (:class:`NonUniqueSecurityInfo` otherwise, after Leshan's NonUniqueSecurityInfoException).
  Persistent backends keep PSKs in the file (protect it) and never log them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lwm2m.bootstrap.config import BootstrapConfig
from lwm2m.errors import Lwm2mError
from lwm2m.server.observation import Observation
from lwm2m.server.registration import Address, Registration
from lwm2m.server.security import PeerIdentity, SecurityInfo

__all__ = [
    "BootstrapConfigStore",
    "Deregistration",
    "NonUniqueSecurityInfo",
    "RegistrationStore",
    "SecurityStore",
    "UpdatedRegistration",
]


class NonUniqueSecurityInfo(Lwm2mError, ValueError):
    """A security entry's identity already belongs to another endpoint."""


@dataclass(frozen=True, slots=True)
class UpdatedRegistration:
    """A registration before and after an Update."""

    old: Registration
    new: Registration


@dataclass(frozen=True, slots=True)
class Deregistration:
    """A removed registration and the observations removed with it."""

    registration: Registration
    observations: tuple[Observation, ...] = ()


class RegistrationStore(Protocol):
    """Registrations and their observations."""

    async def add(self, registration: Registration) -> Deregistration | None:
        """Store a new registration; returns the endpoint's previous one (removed, with its
        observations), if any."""
        ...

    async def update(self, registration: Registration) -> UpdatedRegistration | None:
        """Replace the registration with the same id; None when there is none."""
        ...

    async def get(self, registration_id: str) -> Registration | None: ...

    async def get_by_endpoint(self, endpoint: str) -> Registration | None: ...

    async def get_by_address(self, address: Address) -> Registration | None:
        """The registration whose client last spoke from ``address``."""
        ...

    async def get_by_identity(self, identity: PeerIdentity) -> Registration | None: ...

    async def remove(self, registration_id: str) -> Deregistration | None:
        """Remove a registration and its observations."""
        ...

    async def registrations(self) -> list[Registration]:
        """Every registration (in no particular order)."""
        ...

    async def count(self) -> int: ...

    async def expired(self, now: float, grace: float = 0.0) -> list[Registration]:
        """Registrations whose lifetime (plus ``grace``) ended before ``now`` (not removed)."""
        ...

    async def remove_expired(self, now: float, grace: float = 0.0) -> list[Deregistration]:
        """Remove and return the expired registrations (checked again while removing, so a
        concurrent Update wins)."""
        ...

    async def add_observation(self, observation: Observation) -> bool:
        """Store an observation of an existing registration; False when the registration is
        gone (the observation is not stored)."""
        ...

    async def get_observation(self, token: bytes) -> Observation | None: ...

    async def observations(self, registration_id: str) -> list[Observation]: ...

    async def all_observations(self) -> list[Observation]: ...

    async def remove_observation(self, token: bytes) -> Observation | None: ...

    async def remove_observations(self, registration_id: str) -> list[Observation]: ...

    async def close(self) -> None:
        """Release resources (files, threads); the store is unusable afterwards."""
        ...


class BootstrapConfigStore(Protocol):
    """Bootstrap configurations by endpoint name."""

    async def get(self, endpoint: str) -> BootstrapConfig | None: ...

    async def put(self, endpoint: str, config: BootstrapConfig) -> None:
        """Add or replace the endpoint's configuration."""
        ...

    async def remove(self, endpoint: str) -> bool: ...

    async def all(self) -> dict[str, BootstrapConfig]: ...

    async def close(self) -> None: ...


class SecurityStore(Protocol):
    """Endpoint security information: which identity an endpoint must authenticate with and
    what authenticates it (the lookup table of LwM2M-TS-Transport §5.2.x "Endpoint Client
    Name"; the PSKs a DTLS server looks identities up in)."""

    async def get_by_endpoint(self, endpoint: str) -> SecurityInfo | None: ...

    async def get_by_identity(self, identity: PeerIdentity) -> SecurityInfo | None:
        """The entry whose identity equals ``identity`` (X.509: whose name is ``identity``'s
        value, the certificate CN)."""
        ...

    async def put(self, info: SecurityInfo) -> SecurityInfo | None:
        """Add or replace the endpoint's entry; returns the replaced one. Raises
        :class:`NonUniqueSecurityInfo` when another endpoint has the identity."""
        ...

    async def delete(self, endpoint: str) -> SecurityInfo | None:
        """Remove and return the endpoint's entry."""
        ...

    async def all(self) -> list[SecurityInfo]:
        """Every entry (in no particular order)."""
        ...

    async def close(self) -> None: ...
