"""Events of an LwM2M server, as frozen values (after Leshan's RegistrationListener,
ObservationListener, SendListener and PresenceListener).

- Client Registration interface (LwM2M-TS-Core §6.2): :class:`Registered`, :class:`Updated`,
  :class:`Deregistered`, :class:`Expired` (the lifetime ran out, §6.2.1).
- Information Reporting (§6.4): :class:`NotificationReceived` (Notify, §6.4.5),
  :class:`ObservationEnded`, :class:`SendReceived` (Send, §6.4.6).
- Queue mode (Transport §6.5): :class:`Awake`, :class:`Sleeping`.
- Secure Component identification (LwM2M-SCS-2): :class:`ComponentIdentified`, published by a
  :class:`SecureComponentReader` listener, which reads the Secure Component object (/33000)
  of every client that lists it in Register (or newly in an Update) and keeps the result in
  :class:`~lwm2m.server.registration.ComponentIdentities`.

The asyncio service publishes them on an async stream and to callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.errors import Lwm2mError
from lwm2m.model.path import Path
from lwm2m.operations.responses import Response
from lwm2m.server.observation import Observation
from lwm2m.server.registration import (
    SECURE_COMPONENT_OBJECT_ID,
    ComponentIdentification,
    ComponentIdentities,
    Registration,
    component_identification,
    secure_component_instances,
)

__all__ = [
    "Awake",
    "ComponentIdentified",
    "Deregistered",
    "Expired",
    "NotificationReceived",
    "ObservationEnded",
    "Registered",
    "SecureComponentReader",
    "SendReceived",
    "ServerEvent",
    "Sleeping",
    "Updated",
]


@dataclass(frozen=True, slots=True)
class Registered:
    """A client registered; ``replaced`` is its previous registration (same endpoint), whose
    observations ended with it."""

    registration: Registration
    replaced: Registration | None = None


@dataclass(frozen=True, slots=True)
class Updated:
    """A client sent an Update: ``old`` and ``new`` registration (Leshan UpdatedRegistration)."""

    old: Registration
    new: Registration

    @property
    def registration(self) -> Registration:
        return self.new


@dataclass(frozen=True, slots=True)
class Deregistered:
    """A client de-registered; its observations ended."""

    registration: Registration
    observations: tuple[Observation, ...] = ()


@dataclass(frozen=True, slots=True)
class Expired:
    """A registration's lifetime ran out without an Update; it was removed with its
    observations."""

    registration: Registration
    observations: tuple[Observation, ...] = ()


@dataclass(frozen=True, slots=True)
class NotificationReceived:
    """A notification of an observation: ``response.content`` (or ``.composite``) holds the
    decoded node(s)."""

    registration: Registration
    observation: Observation
    response: Response


@dataclass(frozen=True, slots=True)
class ObservationEnded:
    """An observation ended: cancelled, or the client answered an error / Reset."""

    registration: Registration
    observation: Observation
    reason: str


@dataclass(frozen=True, slots=True)
class SendReceived:
    """Data a client sent with Send (``POST /dp``): time-stamped groups of nodes."""

    registration: Registration
    groups: tuple[TimestampedNodes, ...]
    content_format: ContentFormat


@dataclass(frozen=True, slots=True)
class Awake:
    """A queue-mode client was heard from and is reachable (held requests go out now)."""

    registration: Registration


@dataclass(frozen=True, slots=True)
class Sleeping:
    """A queue-mode client's awake window ended (or a request to it timed out)."""

    registration: Registration


@dataclass(frozen=True, slots=True)
class ComponentIdentified:
    """The Secure Component identification of a client was read (LwM2M-SCS-2): one entry per
    /33000 instance it listed (empty when none could be read)."""

    registration: Registration
    components: tuple[ComponentIdentification, ...]


ServerEvent: TypeAlias = (
    Registered
    | Updated
    | Deregistered
    | Expired
    | NotificationReceived
    | ObservationEnded
    | SendReceived
    | Awake
    | Sleeping
    | ComponentIdentified
)


log = logging.getLogger(__name__)

ReadFunction: TypeAlias = Callable[[str, Path], Awaitable[Response]]
"""``read(endpoint, path)``: the server's Read (``LwM2MServer.read``)."""


class SecureComponentReader:
    """A server event listener that reads the Secure Component object of the clients that list
    it, keeps the identification in :attr:`identities` and publishes
    :class:`ComponentIdentified` (LwM2M-SCS-2).

    Wiring, with an asyncio server (the server's registry must know object 33000 —
    ``lwm2m.secure.register_secure_component_object``)::

        reader = SecureComponentReader(server.read, server.events.publish)
        server.add_listener(reader)

    It reacts to :class:`Registered` and to an :class:`Updated` whose listed instances changed;
    :class:`Deregistered` and :class:`Expired` drop the entry. Read failures are logged, the
    client simply has no identification then.
    """

    def __init__(
        self,
        read: ReadFunction,
        publish: Callable[[ComponentIdentified], object] | None = None,
        *,
        identities: ComponentIdentities | None = None,
        object_id: int = SECURE_COMPONENT_OBJECT_ID,
    ) -> None:
        self._read = read
        self._publish = publish
        self.identities = identities if identities is not None else ComponentIdentities()
        self.object_id = object_id

    def __call__(self, event: object) -> Awaitable[object] | None:
        match event:
            case Registered(registration, replaced):
                if replaced is not None:
                    self.identities.discard(replaced.id)
                return self._changed(registration, ())
            case Updated(old, new):
                before = secure_component_instances(old, self.object_id)
                return self._changed(new, before)
            case Deregistered(registration, _) | Expired(registration, _):
                self.identities.discard(registration.id)
        return None

    def _changed(
        self, registration: Registration, before: tuple[int, ...]
    ) -> Awaitable[object] | None:
        listed = secure_component_instances(registration, self.object_id)
        if listed == before:
            return None
        if not listed:
            self.identities.discard(registration.id)
            return None
        return self.read(registration, listed)

    async def read(
        self, registration: Registration, instance_ids: tuple[int, ...]
    ) -> tuple[ComponentIdentification, ...]:
        """Read ``instance_ids`` of the client, store and publish what was found."""
        found: list[ComponentIdentification] = []
        for iid in instance_ids:
            path = Path(self.object_id, iid)
            try:
                response = await self._read(registration.endpoint, path)
                if response.content is None:
                    continue
                found.append(component_identification(response.content, iid))
            except (Lwm2mError, ValueError) as exc:
                log.info("%s: cannot read %s: %s", registration.endpoint, path, exc)
        components = tuple(found)
        self.identities.set(registration.id, components)
        if self._publish is not None:
            self._publish(ComponentIdentified(registration, components))
        return components
