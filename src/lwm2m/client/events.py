"""Events the client engine hands to its user through ``next_event()`` (aioquic style).

Lifecycle (LwM2M-TS-Core 1.1 §5.2 bootstrap, §5.3/§6.2 registration, Transport §6.4 queue mode),
Send outcomes (§6.4.6) and application events of objects (:class:`ObjectEvent`, e.g. firmware
progress or a Reboot to perform).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "Awake",
    "BootstrapFailed",
    "BootstrapFinished",
    "BootstrapStarted",
    "ClientEvent",
    "Deregistered",
    "ObjectEvent",
    "Registered",
    "RegistrationFailed",
    "RegistrationUpdated",
    "SendCompleted",
    "ServerDisabled",
    "Sleeping",
    "Stopped",
]


@dataclass(frozen=True, slots=True)
class BootstrapStarted:
    server_initiated: bool
    """True when the bootstrap server started it (or a DM server through /1/x/9)."""


@dataclass(frozen=True, slots=True)
class BootstrapFinished:
    """Bootstrap-Finish succeeded (or a start-up source was applied: ``source``)."""

    source: str = "server"


@dataclass(frozen=True, slots=True)
class BootstrapFailed:
    reason: str
    retry_at: float | None
    """When client-initiated bootstrap is retried (None: it is not)."""


@dataclass(frozen=True, slots=True)
class Registered:
    short_server_id: int
    location: str
    """The registration's Location-Path, e.g. ``/rd/5a3f``."""
    lwm2m_version: str = "1.1"
    """The enabler version the server accepted: ``1.0`` after it refused 1.1 with 4.12."""


@dataclass(frozen=True, slots=True)
class RegistrationUpdated:
    short_server_id: int


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    short_server_id: int
    reason: str
    retry_at: float | None
    """When the next attempt happens; None when the sequences are exhausted."""


@dataclass(frozen=True, slots=True)
class Deregistered:
    short_server_id: int


@dataclass(frozen=True, slots=True)
class ServerDisabled:
    """/1/x/4 Disable was executed: the server is left until ``until``."""

    short_server_id: int
    until: float


@dataclass(frozen=True, slots=True)
class Sleeping:
    """Queue mode: the awake window of a server ended."""

    short_server_id: int


@dataclass(frozen=True, slots=True)
class Awake:
    """Queue mode: the client is reachable again (after the wake-up Update)."""

    short_server_id: int


@dataclass(frozen=True, slots=True)
class SendCompleted:
    """The answer to a Send (``POST /dp``): ``code`` 2.04 on success, None on a transport
    failure."""

    request_id: int
    short_server_id: int
    code: int | None

    @property
    def success(self) -> bool:
        return self.code is not None and self.code >> 5 == 2


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """An application event raised by an object handler (``event``, e.g.
    :class:`~lwm2m.client.objects.firmware.FirmwareProgress`)."""

    event: object


@dataclass(frozen=True, slots=True)
class Stopped:
    """``stop()`` completed: every server was deregistered (or could not be reached)."""


ClientEvent: TypeAlias = (
    BootstrapStarted
    | BootstrapFinished
    | BootstrapFailed
    | Registered
    | RegistrationUpdated
    | RegistrationFailed
    | Deregistered
    | ServerDisabled
    | Sleeping
    | Awake
    | SendCompleted
    | ObjectEvent
    | Stopped
)
