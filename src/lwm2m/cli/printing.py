"""How the command line shows LwM2M things to people: one line per event, nodes as tables.

Every event of the server (:mod:`lwm2m.server.events`), of the client
(:mod:`lwm2m.client.events`) and of the bootstrap server (:mod:`lwm2m.bootstrap.session`) becomes
**one line**: a wall-clock time, the event name padded to a column, then the facts. The lines are
stable enough to parse (the CLI tests do), e.g.::

    12:00:01.042 registered     urn:dev:demo /rd/Xyz lifetime=300s binding=U lwm2m=1.1
                                from=127.0.0.1:40123 objects: /1/0 /3/0      (one line)
    12:00:03.118 notification   urn:dev:demo /rd/Xyz /3/0/9 = 80 [senml-cbor (112)]
    12:00:03.119 sc-identified  urn:dev:demo /rd/Xyz /33000/0 software (soft) — software, not
                                secure hardware; ids: soft-id:…; dloa: -      (one line)
    12:00:03.120 step 2/4       urn:dev:demo write /0/1 -> 2.04 Changed

Node content is either inline (``/3/0/9 = 80``, for event lines) or a table of resources with
their names from the object model (for the demo's Read). Values: text quoted, Opaque as hex
(shortened), Time with its UTC date, Objlnk as ``oid:iid``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable, Mapping

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lwm2m.bootstrap.session import (
    BootstrapEvent,
    BootstrapFailed,
    BootstrapFinished,
    BootstrapStarted,
    BootstrapStep,
)
from lwm2m.client import events as client_events
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectNode,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
    Value,
)
from lwm2m.model.registry import ObjectModel
from lwm2m.operations.responses import Response
from lwm2m.server import events as server_events
from lwm2m.server.registration import Registration

__all__ = [
    "bootstrap_event_line",
    "client_event_line",
    "code_text",
    "composite_table",
    "content_format_text",
    "format_value",
    "info_line",
    "make_console",
    "node_inline",
    "node_rows",
    "node_table",
    "request_text",
    "response_text",
    "server_event_line",
    "timestamped_table",
]

_EVENT_WIDTH = 14
_MAX_INLINE = 6  # leaves shown in an event line before "…"


class _Console(Console):
    """A console that goes quiet when its reader goes away (``lwm2m server | head``): the
    command keeps running (a server keeps serving, a client de-registers cleanly) instead of
    raising SystemExit from inside an event callback."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self.file.fileno())
        except (OSError, ValueError):  # pragma: no cover - not a real file
            pass
        finally:
            os.close(devnull)


def make_console(*, stderr: bool = False) -> Console:
    """A console for event lines: never wraps a line (so piped output stays one line per
    event), colours only on a terminal, no automatic highlighting of numbers."""
    return _Console(stderr=stderr, soft_wrap=True, highlight=False)


def _clock() -> str:
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"


def info_line(kind: str, *facts: str, style: str = "white") -> str:
    """A line in the format of the event lines for something else the command reports."""
    return _line(kind, style, *facts)


def _line(kind: str, style: str, *facts: str) -> str:
    """``HH:MM:SS.mmm kind  fact fact ...`` as rich markup (facts are escaped here)."""
    shown = [escape(f) for f in facts if f]
    padded = f"{kind:<{_EVENT_WIDTH}}" if shown else kind
    return " ".join([f"[dim]{_clock()}[/dim] [{style}]{padded}[/{style}]", *shown])


# -- values, codes, formats ---------------------------------------------------------------------


def code_text(code: int) -> str:
    """``2.05 Content``, ``4.04 Not Found``."""
    member = Code(code)
    if "." in member.name:
        return member.dotted
    return f"{member.dotted} {member.name.replace('_', ' ').title()}"


def content_format_text(cf: int | None) -> str:
    """``senml-cbor (112)``; ``-`` when absent."""
    if cf is None:
        return "-"
    try:
        return f"{ContentFormat(cf).short_name} ({int(cf)})"
    except ValueError:
        return str(cf)


def _utc(seconds: float) -> str:
    try:
        moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return "?"
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def format_value(value: Value, type_: ResourceType | None = None) -> str:
    """One value for people (see the module docstring)."""
    if isinstance(value, bytes):
        shown = value[:16].hex()
        return f"0x{shown}…({len(value)} bytes)" if len(value) > 16 else f"0x{shown}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if type_ is ResourceType.TIME and isinstance(value, int):
        return f"{value} ({_utc(value)})"
    if value is None:
        return "-"
    return str(value)


# -- nodes --------------------------------------------------------------------------------------


def node_rows(path: Path, node: Node) -> list[tuple[Path, Value, ResourceType]]:
    """The leaves of ``node`` (found at ``path``): (path, value, type), in path order."""
    rows: list[tuple[Path, Value, ResourceType]] = []
    match node:
        case ObjectNode():
            for iid, child in node.instances.items():
                rows.extend(node_rows(Path(*path.ids[:1], iid), child))
        case ObjectInstance():
            base = Path(*path.ids[:2])
            for rid, resource in node.resources.items():
                rows.extend(node_rows(base.child(rid), resource))
        case MultipleResource():
            base = Path(*path.ids[:3])
            for riid, item in node.instances.items():
                rows.append((base.child(riid), item.value, node.type))
        case SingleResource() | ResourceInstance():
            rows.append((path, node.value, node.type))
    return rows


def _resource_name(model: ObjectModel | None, path: Path) -> str:
    if model is None or len(path.ids) < 3:
        return ""
    definition = model.object_definition(path.ids[0])
    resource = definition.resource(path.ids[2]) if definition is not None else None
    if resource is None:
        return ""
    return resource.name if len(path.ids) == 3 else f"{resource.name} [{path.ids[3]}]"


def node_table(
    path: Path, node: Node, model: ObjectModel | None = None, *, title: str | None = None
) -> Table:
    """``node`` as a table: Path, Resource (name from ``model``), Value."""
    return composite_table({path: node}, model, title=title)


def composite_table(
    nodes: Mapping[Path, Node], model: ObjectModel | None = None, *, title: str | None = None
) -> Table:
    """Several nodes (a Read-Composite answer) as one table: Path, Resource, Value."""
    table = Table(title=title, title_justify="left")
    table.add_column("Path", no_wrap=True)
    table.add_column("Resource")
    table.add_column("Value", overflow="fold")
    for path, node in nodes.items():
        for leaf, value, type_ in node_rows(path, node):
            table.add_row(str(leaf), _resource_name(model, leaf), format_value(value, type_))
    return table


def node_inline(path: Path, node: Node) -> str:
    """``/3/0/9 = 80`` or ``/3/0/0 = 'ACME', /3/0/9 = 80, … (12 values)``."""
    rows = node_rows(path, node)
    if not rows:
        return f"{path} (empty)"
    shown = ", ".join(f"{p} = {format_value(v, t)}" for p, v, t in rows[:_MAX_INLINE])
    return shown if len(rows) <= _MAX_INLINE else f"{shown}, … ({len(rows)} values)"


def _composite_inline(nodes: Mapping[Path, Node]) -> str:
    return ", ".join(node_inline(path, node) for path, node in nodes.items())


def timestamped_table(groups: Iterable[TimestampedNodes], title: str | None = None) -> Table:
    """Send / historical records as a table: Time (UTC), Path, Value."""
    table = Table(title=title, title_justify="left")
    table.add_column("Time (UTC)", no_wrap=True)
    table.add_column("Path", no_wrap=True)
    table.add_column("Value", overflow="fold")
    for group in groups:
        when = "-" if group.timestamp is None else _utc(group.timestamp)
        for path, node in group.nodes.items():
            for leaf, value, type_ in node_rows(path, node):
                table.add_row(when, str(leaf), format_value(value, type_))
    return table


# -- CoAP summaries -----------------------------------------------------------------------------


def request_text(message: Message) -> str:
    """``GET /3/0 Accept: tlv (11542)``, ``PUT /1/0/1 Content-Format: …, 3 bytes``."""
    parts = [f"{Code(message.code).name} /{'/'.join(message.uri_path)}"]
    if message.uri_query:
        parts[0] += "?" + "&".join(message.uri_query)
    if message.observe is not None:
        parts.append(f"Observe: {message.observe}")
    if message.content_format is not None:
        parts.append(f"Content-Format: {content_format_text(message.content_format)}")
    if message.accept is not None:
        parts.append(f"Accept: {content_format_text(message.accept)}")
    if message.payload:
        parts.append(f"{len(message.payload)} bytes")
    return ", ".join(parts)


def response_text(response: Response) -> str:
    """``2.05 Content, senml-cbor (112)`` (the format only when there is content)."""
    text = code_text(response.code)
    if response.content_format is not None:
        text += f", {content_format_text(response.content_format)}"
    if response.diagnostic:
        text += f" ({response.diagnostic})"
    return text


# -- event lines --------------------------------------------------------------------------------


def _registration_facts(registration: Registration) -> list[str]:
    mode = " queue-mode" if registration.queue_mode else ""
    objects = " ".join(
        link.uri for link in registration.objects if link.uri.count("/") >= 2
    )  # instances (and objects without instances show as /o)
    host, port = registration.address
    return [
        registration.endpoint,
        registration.location,
        f"lifetime={registration.lifetime}s binding={registration.binding}{mode}",
        f"lwm2m={registration.version} from={host}:{port}",
        f"objects: {objects or '-'}",
    ]


def server_event_line(event: server_events.ServerEvent) -> str:
    """One line (rich markup) for a server event."""
    match event:
        case server_events.Registered(registration, replaced):
            facts = _registration_facts(registration)
            if replaced is not None:
                facts.append(f"(replaces {replaced.location})")
            return _line("registered", "bold green", *facts)
        case server_events.Updated(old, new):
            changes = []
            if old.lifetime != new.lifetime:
                changes.append(f"lifetime {old.lifetime}s -> {new.lifetime}s")
            if old.address != new.address:
                changes.append(f"address -> {new.address[0]}:{new.address[1]}")
            if old.links != new.links:
                changes.append("objects changed")
            return _line(
                "updated",
                "cyan",
                *_registration_facts(new),
                f"({'; '.join(changes)})" if changes else "",
            )
        case server_events.Deregistered(registration, _):
            return _line("deregistered", "yellow", registration.endpoint, registration.location)
        case server_events.Expired(registration, _):
            return _line(
                "expired",
                "red",
                registration.endpoint,
                registration.location,
                f"lifetime={registration.lifetime}s",
            )
        case server_events.NotificationReceived(registration, observation, response):
            if response.composite is not None:
                content = _composite_inline(response.composite)
            elif response.content is not None:
                content = node_inline(observation.path, response.content)
            else:
                content = "(no content)"
            return _line(
                "notification",
                "magenta",
                registration.endpoint,
                registration.location,
                content,
                f"[{content_format_text(response.content_format)}]",
            )
        case server_events.ObservationEnded(registration, observation, reason):
            paths = " ".join(str(p) for p in observation.paths)
            return _line(
                "observe-ended", "dim", registration.endpoint, registration.location, paths, reason
            )
        case server_events.SendReceived(registration, groups, content_format):
            values = []
            for group in groups:
                when = "" if group.timestamp is None else f" @{_utc(group.timestamp)}"
                values.append(_composite_inline(group.nodes) + when)
            return _line(
                "send",
                "blue",
                registration.endpoint,
                registration.location,
                "; ".join(values),
                f"[{content_format_text(content_format)}]",
            )
        case server_events.Awake(registration):
            return _line("awake", "green", registration.endpoint, registration.location)
        case server_events.Sleeping(registration):
            return _line("sleeping", "dim", registration.endpoint, registration.location)
        case server_events.ComponentIdentified(registration, components):
            shown = " | ".join(c.summary for c in components) or "(could not be read)"
            return _line(
                "sc-identified", "blue", registration.endpoint, registration.location, shown
            )


def client_event_line(event: client_events.ClientEvent) -> str:
    """One line (rich markup) for a client event."""
    ce = client_events
    match event:
        case ce.BootstrapStarted(server_initiated):
            who = "server-initiated" if server_initiated else "client-initiated"
            return _line("bootstrapping", "cyan", who)
        case ce.BootstrapFinished(source):
            return _line("bootstrapped", "green", f"source={source}")
        case ce.BootstrapFailed(reason, retry_at):
            retry = "" if retry_at is None else "(will retry)"
            return _line("bootstrap-fail", "red", reason, retry)
        case ce.Registered(ssid, location):
            return _line("registered", "bold green", f"server={ssid}", location)
        case ce.RegistrationUpdated(ssid):
            return _line("updated", "cyan", f"server={ssid}")
        case ce.RegistrationFailed(ssid, reason, retry_at):
            retry = "(will retry)" if retry_at is not None else "(gave up)"
            return _line("register-fail", "red", f"server={ssid}", reason, retry)
        case ce.Deregistered(ssid):
            return _line("deregistered", "yellow", f"server={ssid}")
        case ce.ServerDisabled(ssid, _):
            return _line("disabled", "yellow", f"server={ssid}")
        case ce.Sleeping(ssid):
            return _line("sleeping", "dim", f"server={ssid}")
        case ce.Awake(ssid):
            return _line("awake", "green", f"server={ssid}")
        case ce.SendCompleted(_, ssid, code):
            outcome = "no answer" if code is None else code_text(code)
            return _line("sent", "blue", f"server={ssid}", outcome)
        case ce.ObjectEvent(inner):
            return _line("object-event", "magenta", _object_event_text(inner))
        case ce.Stopped():
            return _line("stopped", "dim")


def _object_event_text(event: object) -> str:
    action = getattr(event, "action", None)
    if isinstance(action, str):
        return f"{action.replace('_', ' ')} requested"
    return repr(event)


def bootstrap_event_line(event: BootstrapEvent, total: int | None = None) -> str:
    """One line (rich markup) for a bootstrap session event; ``total`` is the number of steps
    (from :class:`BootstrapStarted`) for ``step 2/4``."""
    match event:
        case BootstrapStarted(endpoint, steps):
            return _line("session", "cyan", endpoint, f"{len(steps)} steps: " + ", ".join(steps))
        case BootstrapStep(endpoint, index, operation, path, code, error, links, omitted):
            count = f"step {index + 1}/{total}" if total else f"step {index + 1}"
            target = f"{operation} {path}" if path is not None else operation
            outcome = code_text(code) if code is not None else f"failed: {error}"
            found = f"({len(links)} links)" if links is not None else ""
            if omitted:
                left_out = ", ".join(str(p) for p in omitted)
                found = f"(left out {left_out}: not in the client's object version)"
            style = "green" if event.ok else "red"
            return _line(count, style, endpoint, target, "->", outcome, found)
        case BootstrapFinished(endpoint):
            return _line("finished", "bold green", endpoint, "(the client registers next)")
        case BootstrapFailed(endpoint, reason, _):
            return _line("failed", "bold red", endpoint, reason)
