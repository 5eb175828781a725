"""One client-initiated bootstrap session as a sans-IO task list (after Leshan's
BootstrapSession / BootstrapTaskProvider).

LwM2M-TS-Core 1.1 §5.2.7 (client-initiated bootstrap), §6.1.3 (Bootstrap-Request), §6.1.7
(Bootstrap-Discover, -Delete, -Write, -Finish), Transport §6.1. After the Bootstrap-Request is
answered 2.04, the server runs, one request at a time:

1. an optional **Bootstrap-Discover** of ``/`` (its links are reported; a failure is reported and
   the session goes on). It tells the client's object versions (``</1>;ver=1.1``; an object
   listed without ``ver`` is at 1.0): each later Bootstrap-Write of an object instance then
   leaves out the resources that the client's version of the object does not define (a 1.0
   client answers 4.04 to a write of /1/x/23 Mute Send, say), and its step names them in
   ``omitted``. Without a Discover, or for a version the registry does not hold, the writes
   go as configured;
2. **Bootstrap-Delete** of each configured path (``/`` by default: the client keeps its
   Bootstrap-Server account, §6.1.7.5; a failure is reported and the session goes on);
3. one **Bootstrap-Write** per /0, /1, /2 instance and extra write (a failure ends the session:
   no Finish is sent, so the client discards the partial configuration, §5.2.7);
4. **Bootstrap-Finish** (a 4.06 "inconsistent configuration" ends the session as failed).

Theory of operation: :meth:`BootstrapSession.requests_to_send` hands out the next request once
the previous one has been answered; :meth:`~BootstrapSession.receive_response` and
:meth:`~BootstrapSession.request_failed` report its outcome; :meth:`~BootstrapSession.next_event`
returns the events. Events name operations and paths only — never the written values, which
include keys.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import TypeAlias

from lwm2m.bootstrap.config import BootstrapConfig
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Link
from lwm2m.errors import LocalProtocolError
from lwm2m.model.nodes import ObjectInstance
from lwm2m.model.path import Path
from lwm2m.model.registry import ModelRegistry
from lwm2m.operations.requests import (
    BootstrapDelete,
    BootstrapDiscover,
    BootstrapFinish,
    BootstrapRead,
    BootstrapWrite,
)
from lwm2m.operations.responses import Response

__all__ = [
    "BootstrapEvent",
    "BootstrapFailed",
    "BootstrapFinished",
    "BootstrapSession",
    "BootstrapStarted",
    "BootstrapStep",
    "BootstrapTask",
    "SessionState",
    "write_format",
]

BootstrapTask: TypeAlias = (
    BootstrapDiscover | BootstrapDelete | BootstrapWrite | BootstrapRead | BootstrapFinish
)

# Formats that carry object instances for a Bootstrap-Write (Core §6.1.7.4 / §7.4).
_INSTANCE_FORMATS = frozenset(
    {ContentFormat.TLV, ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR, ContentFormat.JSON}
)


def write_format(config: BootstrapConfig, preferred: ContentFormat | None) -> ContentFormat:
    """The format of the Bootstrap-Writes: the configured one, else the client's ``pct`` when it
    can carry object instances, else TLV (which every 1.0 / 1.1 client supports)."""
    if config.content_format is not None:
        return config.content_format
    if preferred in _INSTANCE_FORMATS:
        assert preferred is not None
        return preferred
    return ContentFormat.TLV


def _describe(task: BootstrapTask) -> tuple[str, Path | None]:
    match task:
        case BootstrapDiscover(path):
            return "discover", path
        case BootstrapDelete(path):
            return "delete", path
        case BootstrapWrite(path, _, _):
            return "write", path
        case BootstrapRead(path, _):
            return "read", path
    return "finish", None


@dataclass(frozen=True, slots=True)
class BootstrapStarted:
    """A session started for ``endpoint``: ``steps`` are the planned ``"write /0/1"`` tasks."""

    endpoint: str
    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BootstrapStep:
    """The outcome of one task: ``code`` is the client's answer (None: no answer, see
    ``error``); ``links`` is what a Bootstrap-Discover returned."""

    endpoint: str
    index: int
    operation: str
    path: Path | None
    code: int | None
    error: str | None = None
    links: tuple[Link, ...] | None = None
    omitted: tuple[Path, ...] = ()
    """Resources a Bootstrap-Write left out: the client's object version lacks them."""

    @property
    def ok(self) -> bool:
        return self.code is not None and self.code >> 5 == 2

    @property
    def dotted_code(self) -> str | None:
        return None if self.code is None else f"{self.code >> 5}.{self.code & 0x1F:02d}"


@dataclass(frozen=True, slots=True)
class BootstrapFinished:
    """The client accepted Bootstrap-Finish: it will now register with its servers."""

    endpoint: str


@dataclass(frozen=True, slots=True)
class BootstrapFailed:
    """The session ended without a successful Finish (``step`` is the failing task's index)."""

    endpoint: str
    reason: str
    step: int | None = None


BootstrapEvent: TypeAlias = BootstrapStarted | BootstrapStep | BootstrapFinished | BootstrapFailed


class SessionState(enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BootstrapSession:
    """The task list of one bootstrap session and its progress.

    :param endpoint: the client's endpoint name (from the Bootstrap-Request).
    :param config: what to write.
    :param preferred_format: the client's ``pct`` (Core §6.1.3), if any.
    :param registry: the object definitions by version, to fit the writes to the versions a
        Bootstrap-Discover reports (no fitting without it).
    """

    def __init__(
        self,
        endpoint: str,
        config: BootstrapConfig,
        *,
        preferred_format: ContentFormat | None = None,
        registry: ModelRegistry | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.registry = registry
        self.config = config
        self.content_format = write_format(config, preferred_format)
        tasks: list[BootstrapTask] = []
        if config.discover:
            tasks.append(BootstrapDiscover())
        tasks.extend(BootstrapDelete(path) for path in config.delete)
        tasks.extend(
            BootstrapWrite(path, node, self.content_format)
            for path, node in config.writes_in_order()
        )
        tasks.append(BootstrapFinish())
        self.tasks: tuple[BootstrapTask, ...] = tuple(tasks)
        self.state = SessionState.RUNNING
        self.discovered: tuple[Link, ...] | None = None
        self._omitted: tuple[Path, ...] = ()
        self._index = 0
        self._in_flight = False
        self._events: deque[BootstrapEvent] = deque()
        steps = []
        for task in self.tasks:
            operation, path = _describe(task)
            steps.append(operation if path is None else f"{operation} {path}")
        self._events.append(BootstrapStarted(endpoint, tuple(steps)))

    @property
    def current(self) -> BootstrapTask | None:
        """The task being run (or about to be), None when the session is over."""
        if self.state is not SessionState.RUNNING:
            return None
        return self.tasks[self._index]

    def requests_to_send(self) -> list[BootstrapTask]:
        """The next request, once the previous one is answered; empty while one is in flight
        and when the session is over."""
        task = self.current
        if task is None or self._in_flight:
            return []
        self._in_flight = True
        self._omitted = ()
        if isinstance(task, BootstrapWrite):
            task = self._fit(task)
        return [task]

    def _fit(self, task: BootstrapWrite) -> BootstrapWrite:
        """``task`` without the resources the client's version of the object lacks."""
        node, path = task.node, task.path
        if self.discovered is None or self.registry is None or not isinstance(node, ObjectInstance):
            return task
        oid = path.ids[0]
        definition = self.registry.get(oid, _object_version(self.discovered, oid))
        if definition is None:
            return task
        known = definition.resources
        kept = [r for r in node.resources.values() if r.id in known]
        if len(kept) == len(node.resources):
            return task
        self._omitted = tuple(Path(oid, node.id, rid) for rid in node.resources if rid not in known)
        return BootstrapWrite(path, ObjectInstance(node.id, kept), task.content_format)

    def next_event(self) -> BootstrapEvent | None:
        return self._events.popleft() if self._events else None

    def receive_response(self, response: Response) -> None:
        """The client answered the request in flight."""
        task = self._take()
        operation, path = _describe(task)
        links = response.links if isinstance(task, BootstrapDiscover) else None
        step = BootstrapStep(
            self.endpoint, self._index, operation, path, response.code, None, links, self._omitted
        )
        self._events.append(step)
        if step.ok:
            if links is not None:
                self.discovered = links
            self._advance()
            return
        if isinstance(task, BootstrapDiscover | BootstrapDelete):
            self._advance()  # best effort: reported, the session goes on
            return
        reason = f"{operation}{'' if path is None else f' {path}'} answered {step.dotted_code}"
        if response.diagnostic:
            reason += f" ({response.diagnostic[:120]})"
        self._fail(reason)

    def request_failed(self, error: str) -> None:
        """The request in flight got no answer (timeout, Reset, transport error)."""
        task = self._take()
        operation, path = _describe(task)
        self._events.append(
            BootstrapStep(
                self.endpoint, self._index, operation, path, None, error, None, self._omitted
            )
        )
        self._fail(f"{operation}{'' if path is None else f' {path}'}: {error}")

    def abort(self, reason: str) -> None:
        """End the session (e.g. a new Bootstrap-Request from the same client)."""
        if self.state is SessionState.RUNNING:
            self._in_flight = False
            self._fail(reason)

    def _take(self) -> BootstrapTask:
        task = self.current
        if task is None or not self._in_flight:
            raise LocalProtocolError("no bootstrap request in flight")
        self._in_flight = False
        return task

    def _advance(self) -> None:
        self._index += 1
        if self._index == len(self.tasks):
            self._index -= 1
            self.state = SessionState.SUCCEEDED
            self._events.append(BootstrapFinished(self.endpoint))

    def _fail(self, reason: str) -> None:
        self.state = SessionState.FAILED
        self._events.append(BootstrapFailed(self.endpoint, reason, self._index))


def _object_version(links: tuple[Link, ...], object_id: int) -> str:
    """The version of ``object_id`` a Bootstrap-Discover listed: ``ver`` on its object link,
    else 1.0 (Core §6.2.1: ``ver`` belongs on object links and is left out for 1.0, the rule
    the server's ``parse_object_links`` applies to a Register). An object not listed at all is
    taken at 1.0 too, the version every client knows."""
    uri = f"/{object_id}"
    return next((link.version for link in links if link.uri == uri and link.version), "1.0")
