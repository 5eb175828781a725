"""Observations and notification timing (LwM2M-TS-Core 1.1 §6.4 "Information Reporting
Interface", §5.1.2 notification attributes; RFC 7641 for the CoAP side, done by the CoAP layer).

An :class:`Observation` is one Observe (or Observe-Composite) of one server, keyed by
``(short server id, token)``. Its timing follows the attributes in force
(:class:`~lwm2m.client.attributes.EffectiveAttributes`):

- a value change marks the observation *dirty*; the value is *evaluated* no earlier than
  ``epmin`` after the previous evaluation, and at least every ``epmax`` even without a change
  signal (values that change without the application calling ``changed``);
- an evaluation makes a notification *pending* when the value changed — or, with ``gt``/``lt``/
  ``st`` on a numeric value, when it crossed ``gt`` or ``lt`` or moved by ``st`` or more since
  the last notified value;
- a pending notification goes out no earlier than ``pmin`` after the previous one;
- with ``pmax`` (ignored when below ``pmin``) a notification goes out ``pmax`` after the previous
  one even without any change.

The state machine is driven by ``now``: :meth:`Observation.deadline` says when it next needs
attention and :meth:`Observation.step` runs it, reading the current content through a callback.
An Observe-Composite uses the server-level defaults (pmin /1/x/2, pmax /1/x/3) and notifies on
any change of any of its paths.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from lwm2m.client.attributes import EffectiveAttributes
from lwm2m.coap.message import Message
from lwm2m.codec.content_format import ContentFormat
from lwm2m.model.nodes import Node, ResourceInstance, SingleResource
from lwm2m.model.path import Path

__all__ = ["Content", "Observation", "ObservationRegistry"]

Content = Node | dict[Path, Node]
"""What a notification carries: a node, or path -> node for a composite observation."""


def _overlaps(a: Path, b: Path) -> bool:
    return a.is_prefix_of(b) or b.is_prefix_of(a)


def _number(content: Content | None) -> float | None:
    if isinstance(content, SingleResource | ResourceInstance):
        value = content.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


@dataclass(eq=False)
class Observation:
    """One observation and its notification state."""

    ssid: int
    """The observing server's Short Server ID."""
    token: bytes
    """The CoAP token of the Observe request (identifies the observation)."""
    paths: tuple[Path, ...]
    """The observed path (one, or several for an Observe-Composite)."""
    content_format: ContentFormat
    """Format of the notifications (that of the first response)."""
    attributes: EffectiveAttributes
    """The attributes in force (refreshed when attributes or server defaults change)."""
    started: float
    composite: bool = False
    last_sent: float = 0.0
    last_eval: float = 0.0
    last_content: Content | None = None
    dirty: bool = False
    dirty_at: float = 0.0
    pending: bool = False
    stored: list[Message] = field(default_factory=list)
    """Notifications kept while the server is unreachable (queue mode, Notification Storing)."""

    def __post_init__(self) -> None:
        self.last_sent = self.last_eval = self.started

    @property
    def key(self) -> tuple[int, bytes]:
        return (self.ssid, self.token)

    @property
    def path(self) -> Path:
        return self.paths[0]

    def touches(self, changed: Path) -> bool:
        return any(_overlaps(p, changed) for p in self.paths)

    def mark_dirty(self, now: float) -> None:
        if not self.dirty:
            self.dirty = True
            self.dirty_at = now

    def sent(self, content: Content, now: float) -> None:
        """Record a notification (or the first response) as sent at ``now``."""
        self.last_content = content
        self.last_sent = now
        self.last_eval = now
        self.pending = False
        self.dirty = False

    def _evaluation_time(self) -> float | None:
        times: list[float] = []
        epmin = self.attributes.epmin or 0
        if self.dirty:
            times.append(max(self.dirty_at, self.last_eval + epmin))
        if self.attributes.epmax:
            times.append(self.last_eval + self.attributes.epmax)
        return min(times) if times else None

    def deadline(self) -> float | None:
        """When :meth:`step` must run next (None: only after the next change)."""
        times: list[float] = []
        evaluation = self._evaluation_time()
        if evaluation is not None:
            times.append(evaluation)
        if self.pending:
            times.append(self.last_sent + self.attributes.pmin)
        if self.attributes.max_period is not None:
            times.append(self.last_sent + self.attributes.max_period)
        return min(times) if times else None

    def worthy(self, content: Content) -> bool:
        """Whether ``content`` deserves a notification compared with the last one sent."""
        attrs = self.attributes
        new = _number(content)
        if attrs.has_change_conditions and new is not None and not self.composite:
            old = _number(self.last_content)
            if old is None:
                return True
            if attrs.gt is not None and (old > attrs.gt) != (new > attrs.gt):
                return True
            if attrs.lt is not None and (old < attrs.lt) != (new < attrs.lt):
                return True
            return attrs.st is not None and abs(new - old) >= attrs.st
        return content != self.last_content

    def step(self, now: float, read: Callable[[], Content]) -> Content | None:
        """Run the timing rules at ``now``; returns the content to notify, if any.

        ``read`` returns the current content; it may raise a RequestError, which the caller
        turns into an error notification.
        """
        evaluation = self._evaluation_time()
        if evaluation is not None and now >= evaluation:
            content = read()
            self.last_eval = now
            self.dirty = False
            if self.worthy(content):
                self.pending = True
        send = self.pending and now >= self.last_sent + self.attributes.pmin
        pmax = self.attributes.max_period
        if pmax is not None and now >= self.last_sent + pmax:
            send = True
        if not send:
            return None
        content = read()
        self.sent(content, now)
        return content


class ObservationRegistry:
    """The client's observations by ``(ssid, token)``."""

    def __init__(self) -> None:
        self._items: dict[tuple[int, bytes], Observation] = {}

    def __iter__(self) -> Iterator[Observation]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def add(self, observation: Observation) -> None:
        """Add (or replace: same server and token means a re-registration, RFC 7641 §3.3.1)."""
        self._items[observation.key] = observation

    def get(self, ssid: int, token: bytes) -> Observation | None:
        return self._items.get((ssid, token))

    def remove(self, ssid: int, token: bytes) -> Observation | None:
        return self._items.pop((ssid, token), None)

    def remove_path(self, ssid: int, paths: tuple[Path, ...]) -> list[Observation]:
        """Remove the observations of ``ssid`` on exactly ``paths`` (Cancel Observation)."""
        gone = [o for o in self._items.values() if o.ssid == ssid and o.paths == paths]
        for observation in gone:
            del self._items[observation.key]
        return gone

    def remove_server(self, ssid: int) -> list[Observation]:
        """Remove every observation of a server (new registration, deregistration)."""
        gone = [o for o in self._items.values() if o.ssid == ssid]
        for observation in gone:
            del self._items[observation.key]
        return gone

    def of_server(self, ssid: int) -> list[Observation]:
        return [o for o in self._items.values() if o.ssid == ssid]

    def changed(
        self, object_id: int, instance_id: int | None, resource_ids: Collection[int], now: float
    ) -> None:
        """Mark the observations touching the changed paths dirty."""
        if instance_id is None:
            changed = [Path(object_id)]
        elif not resource_ids:
            changed = [Path(object_id, instance_id)]
        else:
            changed = [Path(object_id, instance_id, rid) for rid in resource_ids]
        for observation in self._items.values():
            if any(observation.touches(p) for p in changed):
                observation.mark_dirty(now)

    def deadline(self) -> float | None:
        times = [d for o in self._items.values() if (d := o.deadline()) is not None]
        return min(times) if times else None
