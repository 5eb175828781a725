"""Events of an LwM2M server, as frozen values (after Leshan's RegistrationListener,
ObservationListener, SendListener and PresenceListener).

- Client Registration interface (LwM2M-TS-Core §6.2): :class:`Registered`, :class:`Updated`,
  :class:`Deregistered`, :class:`Expired` (the lifetime ran out, §6.2.1).
- Information Reporting (§6.4): :class:`NotificationReceived` (Notify, §6.4.5),
  :class:`ObservationEnded`, :class:`SendReceived` (Send, §6.4.6).
- Queue mode (Transport §6.5): :class:`Awake`, :class:`Sleeping`.

The asyncio service publishes them on an async stream and to callbacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.operations.responses import Response
from lwm2m.server.observation import Observation
from lwm2m.server.registration import Registration

__all__ = [
    "Awake",
    "Deregistered",
    "Expired",
    "NotificationReceived",
    "ObservationEnded",
    "Registered",
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
)
