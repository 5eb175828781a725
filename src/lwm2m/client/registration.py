"""Registration with one LwM2M server, as a sans-IO state machine (LwM2M-TS-Core 1.1 §6.2
"Client Registration Interface", §6.2.1.1 registration procedure and retries; Transport §6.4
queue mode).

Inputs: :meth:`Registration.start`, :meth:`~Registration.handle_timer`, the outcome of each
request (:meth:`~Registration.register_done`, :meth:`~Registration.update_done`,
:meth:`~Registration.deregister_done`) and API calls (:meth:`~Registration.request_update`,
:meth:`~Registration.stop`, :meth:`~Registration.disable`, :meth:`~Registration.wake`). Outputs: a
list of effects per input — :class:`Send` markers (the engine builds and sends Register, Update
or De-register) and :mod:`lwm2m.client.events` values — and :attr:`~Registration.deadline`.

Every transition is listed in :data:`TRANSITIONS`::

    IDLE ──start──▶ WAITING ──timer──▶ REGISTERING ──2.01──▶ REGISTERED ◀──2.04── UPDATING
                      ▲                    │ failure                │ timer/trigger  ▲
                      └──── back-off ──────┘                        └────────────────┘
    REGISTERED/UPDATING ──stop──▶ DEREGISTERING ──▶ DEREGISTERED
    REGISTERED ──disable──▶ DEREGISTERING ──▶ DISABLED ──timer──▶ WAITING
    REGISTERING ──retries and sequences exhausted──▶ FAILED
    UPDATING ──failure──▶ WAITING (a new Register follows at once)

Retries (/1/x/17-20): after a failed attempt the next one waits Communication Retry Timer
* 2^(n-1); after Communication Retry Count attempts the sequence failed and the next sequence
starts after the Communication Sequence Delay Timer; after Communication Sequence Retry Count
sequences the registration FAILED (the engine may then bootstrap, /1/x/16).

Update timing (a project decision, documented in docs/design.md): an Update is due
``max(lifetime / 2, lifetime - max(MAX_TRANSMIT_WAIT, lifetime / 10))`` after the last
successful Register or Update — 93 s or 10 % of the lifetime before expiry, whichever is
earlier, but never earlier than half-way.

Queue mode: the client stays awake ``awake_time`` (MAX_TRANSMIT_WAIT, 93 s) after the last
exchange with the server, then sleeps; :meth:`Registration.wake` sends the CON Update that makes
it reachable again (the engine then flushes stored notifications).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from lwm2m.client.accounts import ServerAccount
from lwm2m.client.events import (
    Awake,
    ClientEvent,
    Deregistered,
    Registered,
    RegistrationFailed,
    RegistrationUpdated,
    ServerDisabled,
    Sleeping,
)
from lwm2m.constants import LWM2M_VERSION
from lwm2m.errors import LocalProtocolError

__all__ = [
    "MAX_TRANSMIT_WAIT",
    "TRANSITIONS",
    "Registration",
    "RegistrationParameters",
    "RegistrationState",
    "Send",
    "update_delay",
]

MAX_TRANSMIT_WAIT = 93.0
"""RFC 7252 §4.8.2 with default parameters."""


def update_delay(lifetime: float) -> float:
    """Seconds after a successful Register/Update when the next Update is sent.

    >>> update_delay(86400), update_delay(300), update_delay(60)
    (77760.0, 207.0, 30.0)
    """
    margin = max(MAX_TRANSMIT_WAIT, lifetime / 10)
    return float(max(lifetime / 2, lifetime - margin))


class RegistrationState(Enum):
    IDLE = "idle"
    WAITING = "waiting"
    REGISTERING = "registering"
    REGISTERED = "registered"
    UPDATING = "updating"
    DEREGISTERING = "deregistering"
    DEREGISTERED = "deregistered"
    DISABLED = "disabled"
    FAILED = "failed"


class Send(Enum):
    """A request the engine must build and send for this registration."""

    REGISTER = "register"
    UPDATE = "update"
    DEREGISTER = "deregister"


Effect = Send | ClientEvent

_R = RegistrationState
TRANSITIONS: dict[RegistrationState, frozenset[RegistrationState]] = {
    _R.IDLE: frozenset({_R.WAITING, _R.DEREGISTERED}),
    _R.WAITING: frozenset({_R.REGISTERING, _R.DEREGISTERED, _R.DISABLED}),
    _R.REGISTERING: frozenset({_R.REGISTERED, _R.WAITING, _R.FAILED, _R.DEREGISTERED}),
    _R.REGISTERED: frozenset({_R.UPDATING, _R.DEREGISTERING, _R.WAITING}),
    _R.UPDATING: frozenset({_R.REGISTERED, _R.WAITING, _R.DEREGISTERING}),
    _R.DEREGISTERING: frozenset({_R.DEREGISTERED, _R.DISABLED}),
    _R.DEREGISTERED: frozenset({_R.WAITING}),
    _R.DISABLED: frozenset({_R.WAITING, _R.DEREGISTERED}),
    _R.FAILED: frozenset({_R.WAITING, _R.DEREGISTERED}),
}
"""Allowed transitions; any other is a bug (:class:`~lwm2m.errors.LocalProtocolError`)."""


@dataclass(frozen=True, slots=True)
class RegistrationParameters:
    """What the server last acknowledged, to send only changed Update parameters."""

    lifetime: int
    binding: str
    objects: str


class Registration:
    """The registration of the client with one server account."""

    def __init__(self, account: ServerAccount, *, queue_mode: bool, awake_time: float) -> None:
        self.account = account
        self.queue_mode = queue_mode or account.queue_binding
        self.awake_time = awake_time
        self.state = RegistrationState.IDLE
        self.version = LWM2M_VERSION
        """The enabler version of the next Register: 1.1, or 1.0 once the server refused 1.1
        (see :meth:`version_refused`)."""
        self.plain_links = False
        """Object links without attributes (``ver``): set when a 1.0 server refused them (see
        :meth:`form_refused`)."""
        self._lowered_by_bad_request = False
        self.stopping = False
        """Stopped while the Register was in flight: De-register once it is accepted."""
        self.deadline: float | None = None
        self.location: str | None = None
        self.attempt = 0
        self.sequence = 0
        self.update_wanted = False
        self.sent: RegistrationParameters | None = None
        self.in_flight: RegistrationParameters | None = None
        self.sleeping = False
        self.last_activity = 0.0
        self._disable_after = False
        self._waking = False
        self._after_deregister: RegistrationState | None = None

    @property
    def ssid(self) -> int:
        ssid = self.account.short_server_id
        assert ssid is not None
        return ssid

    @property
    def legacy(self) -> bool:
        """Registering or registered as LwM2M 1.0 (the server refused 1.1)."""
        return self.version == "1.0"

    @property
    def registered(self) -> bool:
        """Registered (possibly with an Update in flight)."""
        return self.state in (RegistrationState.REGISTERED, RegistrationState.UPDATING)

    def _move(self, target: RegistrationState) -> None:
        if target not in TRANSITIONS[self.state]:
            raise LocalProtocolError(
                f"registration {self.account.short_server_id}: "
                f"{self.state.value} -> {target.value} is not a valid transition"
            )
        self.state = target

    # -- inputs ----------------------------------------------------------------------------------

    def start(self, now: float, *, delay: float | None = None) -> list[Effect]:
        """Begin registering after the Initial Registration Delay (/1/x/14) or ``delay``."""
        if self.state in (
            RegistrationState.IDLE,
            RegistrationState.DEREGISTERED,
            RegistrationState.FAILED,
            RegistrationState.DISABLED,
        ):
            self._move(RegistrationState.WAITING)
            self.attempt = self.sequence = 0
            # a new registration tries the highest version and the full links again
            self.version = LWM2M_VERSION
            self.plain_links = self._lowered_by_bad_request = False
            self.deadline = now + (self.account.initial_delay if delay is None else delay)
        return []

    def handle_timer(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        state = self.state
        if state is RegistrationState.DISABLED and self._due(now):
            self._move(RegistrationState.WAITING)
            self.attempt = self.sequence = 0
            self.deadline = now
            state = self.state
        if state is RegistrationState.WAITING and self._due(now):
            self._move(RegistrationState.REGISTERING)
            self.deadline = None
            effects.append(Send.REGISTER)
        elif state is RegistrationState.REGISTERED:
            if self._due(now) or self.update_wanted:
                effects += self._send_update()
            elif self.queue_mode and not self.sleeping and now >= self.awake_until:
                self.sleeping = True
                effects.append(Sleeping(self.ssid))
        return effects

    def _due(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    @property
    def awake_until(self) -> float:
        return self.last_activity + self.awake_time

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` needs to run next."""
        if self.state is RegistrationState.REGISTERED:
            times = [t for t in (self.deadline,) if t is not None]
            if self.queue_mode and not self.sleeping:
                times.append(self.awake_until)
            return min(times) if times else None
        if self.state in (RegistrationState.WAITING, RegistrationState.DISABLED):
            return self.deadline
        return None

    def _send_update(self) -> list[Effect]:
        self._move(RegistrationState.UPDATING)
        self.update_wanted = False
        self.deadline = None
        if self.sleeping:  # any Update ends queue-mode sleep: Awake once it succeeded
            self._waking = True
        return [Send.UPDATE]

    def register_done(
        self, now: float, *, success: bool, location: str | None = None, reason: str = ""
    ) -> list[Effect]:
        """The outcome of the Register request."""
        if self.state is not RegistrationState.REGISTERING:
            return []
        if success and location:
            self._move(RegistrationState.REGISTERED)
            self.location = location
            self.attempt = self.sequence = 0
            self.update_wanted = False
            self.deadline = now + update_delay(self.account.lifetime)
            self.activity(now)
            self.sleeping = False
            registered: list[Effect] = [Registered(self.ssid, location, self.version)]
            if self.stopping:  # stopped while the Register was on its way: De-register now
                self.stopping = False
                return registered + self.stop(now)
            return registered
        if self.stopping:
            self.stopping = False
            self._move(RegistrationState.DEREGISTERED)
            self.deadline = None
            return []
        return self._retry(now, reason or "Register failed")

    def version_refused(self, minimum: str) -> list[Effect]:
        """The server answered the Register with 4.12 (Core §6.2.1: a server refuses an enabler
        version it does not support; Transport Table 6.7-2 names the code). If a lower version
        is allowed (``minimum``), the Register goes again at once as 1.0, not counted as a
        retry; otherwise it is an ordinary failure (the caller then calls
        :meth:`register_done`)."""
        if (
            self.state is not RegistrationState.REGISTERING
            or self.stopping
            or self.version <= minimum
        ):
            return []
        self.version = "1.0"
        return [Send.REGISTER]

    def form_refused(self, minimum: str, *, attributes: bool) -> list[Effect]:
        """The server answered the Register with 4.00 Bad Request.

        Some LwM2M 1.0 servers refuse what they do not parse instead of answering 4.12:
        Wakaama's of 2018 answers 4.00 to any object link with an attribute other than the
        root's ``rt``/``ct=11543``, so it refuses ``</>;ct="..."`` (1.1) and even
        ``</3>;ver=1.1``, which LwM2M 1.0 §5.3.1 defines, before it looks at ``lwm2m=``. The
        Register goes again at once in a simpler form, one step per 4.00 and not counted as a
        retry: first as 1.0 (if ``minimum`` allows it), then, for a 1.0 Register whose object
        links carry attributes (``attributes``), with plain links (the server then takes every
        object at version 1.0). When the simplest form is refused as well, the 4.00 was about
        something else: the steps taken for a 4.00 are undone (the next attempt starts from
        the full form again, a version lowered by 4.12 stays) and it is an ordinary failure
        (the caller then calls :meth:`register_done`).
        """
        if self.state is not RegistrationState.REGISTERING or self.stopping:
            return []
        if self.version > minimum:
            self.version = "1.0"
            self._lowered_by_bad_request = True
            return [Send.REGISTER]
        if self.legacy and attributes and not self.plain_links:
            self.plain_links = True
            return [Send.REGISTER]
        if self._lowered_by_bad_request:
            self.version = LWM2M_VERSION
        self.plain_links = self._lowered_by_bad_request = False
        return []

    def _retry(self, now: float, reason: str) -> list[Effect]:
        account = self.account
        self.attempt += 1
        if self.attempt < account.retry_count:
            delay = account.retry_timer * 2 ** (self.attempt - 1)
        else:
            self.sequence += 1
            self.attempt = 0
            if self.sequence >= account.sequence_retry_count:
                self._move(RegistrationState.FAILED)
                self.deadline = None
                return [RegistrationFailed(self.ssid, reason, None)]
            delay = account.sequence_delay
        self._move(RegistrationState.WAITING)
        self.deadline = now + delay
        return [RegistrationFailed(self.ssid, reason, self.deadline)]

    def update_done(self, now: float, *, success: bool, reason: str = "") -> list[Effect]:
        """The outcome of an Update: on failure the client registers again at once
        (§6.2.2: an unknown registration is answered 4.04)."""
        if self.state is not RegistrationState.UPDATING:
            return []
        if success:
            self._move(RegistrationState.REGISTERED)
            self.deadline = now + update_delay(self.account.lifetime)
            self.activity(now)
            effects: list[Effect] = [RegistrationUpdated(self.ssid)]
            if self._waking:
                self._waking = False
                effects.append(Awake(self.ssid))
            self.sleeping = False
            if self.update_wanted:
                effects += self._send_update()
            return effects
        self._move(RegistrationState.WAITING)
        self.location = None
        self.sent = None
        self._waking = False
        self.deadline = now
        return [RegistrationFailed(self.ssid, reason or "Update failed", now)]

    def request_update(self, now: float) -> list[Effect]:
        """Send an Update as soon as possible (trigger /1/x/8, changed objects, lifetime or
        binding). Sent at once when registered; remembered while an Update is in flight."""
        self.update_wanted = True
        if self.state is RegistrationState.REGISTERED:
            return self._send_update()
        return []

    def wake(self, now: float) -> list[Effect]:
        """Queue mode: leave sleep with a CON Update (Transport §6.4)."""
        if self.state is RegistrationState.REGISTERED and self.sleeping:
            self._waking = True
            return self._send_update()
        return []

    def activity(self, now: float) -> list[Effect]:
        """Something was exchanged with the server (it restarts the awake window)."""
        self.last_activity = now
        if self.sleeping and self.state is RegistrationState.REGISTERED:
            self.sleeping = False
            return [Awake(self.ssid)]
        return []

    def stop(self, now: float) -> list[Effect]:
        """De-register (when registered) and stay stopped."""
        if self.registered:
            self._after_deregister = RegistrationState.DEREGISTERED
            self._move(RegistrationState.DEREGISTERING)
            self.deadline = None
            return [Send.DEREGISTER]
        if self.state is RegistrationState.DEREGISTERING:
            self._after_deregister = RegistrationState.DEREGISTERED
            return []
        if self.state is RegistrationState.REGISTERING:
            # the Register is on its way: if the server accepts it, it must hear a De-register
            # (else a stale registration waits for its lifetime); see register_done
            self.stopping = True
            return []
        if self.state is not RegistrationState.DEREGISTERED:
            self._move(RegistrationState.DEREGISTERED)
            self.deadline = None
        return []

    def disable(self, now: float) -> list[Effect]:
        """/1/x/4 Disable: de-register and stay away for the Disable Timeout (/1/x/5)."""
        until = now + self.account.disable_timeout
        if self.registered:
            self._after_deregister = RegistrationState.DISABLED
            self._move(RegistrationState.DEREGISTERING)
            self.deadline = until
            return [Send.DEREGISTER, ServerDisabled(self.ssid, until)]
        if self.state is RegistrationState.WAITING:
            self._move(RegistrationState.DISABLED)
            self.deadline = until
            return [ServerDisabled(self.ssid, until)]
        return []

    def deregister_done(self, now: float) -> list[Effect]:
        """The De-register was answered (or failed: the client leaves anyway)."""
        if self.state is not RegistrationState.DEREGISTERING:
            return []
        target = self._after_deregister or RegistrationState.DEREGISTERED
        self._move(target)
        self.location = None
        self.sent = None
        if target is RegistrationState.DEREGISTERED:
            self.deadline = None
        return [Deregistered(self.ssid)]

    def abandon(self) -> None:
        """Forget the registration without a De-register (new bootstrap configuration, or a
        stop whose grace ran out)."""
        self.state = RegistrationState.DEREGISTERED
        self.stopping = False
        self.deadline = None
        self.location = None
        self.sent = None
