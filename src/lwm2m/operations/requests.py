"""LwM2M operations as frozen values, one class per operation of the four interfaces
(LwM2M-TS-Core 1.1 §6; LwM2M-TS-Transport 1.1 §6 for their CoAP mapping, see
:mod:`lwm2m.operations.coap_mapping`).

- Bootstrap interface (§6.1): :class:`BootstrapRequest` (uplink), :class:`BootstrapWrite`,
  :class:`BootstrapRead`, :class:`BootstrapDiscover`, :class:`BootstrapDelete`,
  :class:`BootstrapFinish` (downlink).
- Client Registration interface (§6.2): :class:`Register`, :class:`Update`,
  :class:`Deregister`.
- Device Management and Service Enablement interface (§6.3): :class:`Read`, :class:`Discover`,
  :class:`Write`, :class:`WriteAttributes`, :class:`Execute`, :class:`Create`, :class:`Delete`,
  :class:`ReadComposite`, :class:`WriteComposite`.
- Information Reporting interface (§6.4): :class:`Observe`, :class:`CancelObservation`,
  :class:`ObserveComposite`, :class:`CancelObserveComposite`, :class:`Send`.

Payload-carrying requests hold typed nodes; the mapping encodes them with a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias, TypeVar

from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Attributes, Link
from lwm2m.constants import LWM2M_VERSION
from lwm2m.model.nodes import Node, ObjectInstance, Resource
from lwm2m.model.path import ROOT, Path

K = TypeVar("K")
V = TypeVar("V")

__all__ = [
    "BootstrapDelete",
    "BootstrapDiscover",
    "BootstrapFinish",
    "BootstrapRead",
    "BootstrapRequest",
    "BootstrapWrite",
    "CancelObservation",
    "CancelObserveComposite",
    "Create",
    "Delete",
    "Deregister",
    "Discover",
    "DownlinkRequest",
    "Execute",
    "Observe",
    "ObserveComposite",
    "Read",
    "ReadComposite",
    "Register",
    "Send",
    "Update",
    "UplinkRequest",
    "Write",
    "WriteAttributes",
    "WriteComposite",
]


def _frozen_map(items: Mapping[K, V]) -> Mapping[K, V]:
    return MappingProxyType(dict(items))


# -- Bootstrap interface (LwM2M-TS-Core §6.1) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class BootstrapRequest:
    """``POST /bs?ep=…[&pct=…]`` (§6.1.3): the client asks the bootstrap server for its config."""

    endpoint: str
    preferred_content_format: ContentFormat | None = None


@dataclass(frozen=True, slots=True)
class BootstrapWrite:
    """``PUT /o[/i[/r]]`` from the bootstrap server (§6.1.7.4): applied regardless of ACLs."""

    path: Path
    node: Node
    content_format: ContentFormat = ContentFormat.TLV


@dataclass(frozen=True, slots=True)
class BootstrapRead:
    """``GET /1[/i]`` or ``/2[/i]`` from the bootstrap server (§6.1.7.2, new in 1.1)."""

    path: Path
    accept: ContentFormat | None = None


@dataclass(frozen=True, slots=True)
class BootstrapDiscover:
    """``GET /[o]`` with Accept: link-format from the bootstrap server (§6.1.7.3)."""

    path: Path = ROOT


@dataclass(frozen=True, slots=True)
class BootstrapDelete:
    """``DELETE /[o[/i]]`` from the bootstrap server (§6.1.7.5)."""

    path: Path = ROOT


@dataclass(frozen=True, slots=True)
class BootstrapFinish:
    """``POST /bs`` from the bootstrap server (§6.1.7.6)."""


# -- Client Registration interface (§6.2) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Register:
    """``POST /rd?ep=&lt=&lwm2m=&b=&sms=&Q`` with the object links (§6.2.1)."""

    endpoint: str
    lifetime: int = 86400
    lwm2m_version: str = LWM2M_VERSION
    binding: str = "U"
    queue_mode: bool = False
    sms_number: str | None = None
    objects: tuple[Link, ...] = ()
    additional: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))
        object.__setattr__(self, "additional", _frozen_map(self.additional))


@dataclass(frozen=True, slots=True)
class Update:
    """``POST /{location}?lt=&b=&sms=`` with optional object links (§6.2.2)."""

    location: str
    lifetime: int | None = None
    binding: str | None = None
    sms_number: str | None = None
    objects: tuple[Link, ...] | None = None
    additional: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.objects is not None:
            object.__setattr__(self, "objects", tuple(self.objects))
        object.__setattr__(self, "additional", _frozen_map(self.additional))


@dataclass(frozen=True, slots=True)
class Deregister:
    """``DELETE /{location}`` (§6.2.3)."""

    location: str


# -- Device Management and Service Enablement interface (§6.3) --------------------------------


@dataclass(frozen=True, slots=True, init=False)
class Read:
    """``GET /o[/i[/r[/ri]]]`` [Accept] (§6.3.1)."""

    path: Path
    accept: ContentFormat | None = None

    def __init__(self, path: Path, accept: ContentFormat | None = None) -> None:
        # Hand-written rather than the dataclass __init__ (object.__setattr__ per field): the
        # slot setters cost less, and a server builds a Read per request.
        _READ_PATH(self, path)
        _READ_ACCEPT(self, accept)


@dataclass(frozen=True, slots=True)
class Discover:
    """``GET /o[/i[/r]]`` with Accept: link-format (§6.3.2)."""

    path: Path


@dataclass(frozen=True, slots=True)
class Write:
    """``PUT`` (replace) or ``POST`` (partial update) of a node (§6.3.3)."""

    path: Path
    node: Node
    replace: bool = True
    content_format: ContentFormat = ContentFormat.TLV


@dataclass(frozen=True, slots=True)
class WriteAttributes:
    """``PUT /o[/i[/r[/ri]]]?pmin=&pmax=&…`` without payload (§6.3.4)."""

    path: Path
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class Execute:
    """``POST /o/i/r`` with optional arguments text ``0='v',1`` (§6.3.5)."""

    path: Path
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Create:
    """``POST /o`` (§6.3.6): new instances with their ids, or one set of ``resources`` for
    which the client chooses the instance id (then ``instances`` is empty)."""

    path: Path
    instances: tuple[ObjectInstance, ...] = ()
    resources: tuple[Resource, ...] | None = None
    content_format: ContentFormat = ContentFormat.TLV

    def __post_init__(self) -> None:
        object.__setattr__(self, "instances", tuple(self.instances))
        if self.resources is not None:
            object.__setattr__(self, "resources", tuple(self.resources))


@dataclass(frozen=True, slots=True)
class Delete:
    """``DELETE /o/i`` (§6.3.7)."""

    path: Path


@dataclass(frozen=True, slots=True)
class ReadComposite:
    """``FETCH /`` with a SenML list of paths (§6.3.8)."""

    paths: tuple[Path, ...]
    content_format: ContentFormat = ContentFormat.SENML_CBOR
    accept: ContentFormat | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", tuple(self.paths))


@dataclass(frozen=True, slots=True)
class WriteComposite:
    """``iPATCH /`` with SenML records (§6.3.9); atomic at the client. A None value deletes."""

    nodes: Mapping[Path, Node | None]
    content_format: ContentFormat = ContentFormat.SENML_CBOR

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", _frozen_map(self.nodes))


# -- Information Reporting interface (§6.4) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observe:
    """``GET`` with Observe=0 (§6.4.1)."""

    path: Path
    accept: ContentFormat | None = None


@dataclass(frozen=True, slots=True)
class CancelObservation:
    """``GET`` with Observe=1 (§6.4.2); RST to a notification cancels too (at the CoAP level)."""

    path: Path
    accept: ContentFormat | None = None


@dataclass(frozen=True, slots=True)
class ObserveComposite:
    """``FETCH /`` with Observe=0 and a SenML list of paths (§6.4.3)."""

    paths: tuple[Path, ...]
    content_format: ContentFormat = ContentFormat.SENML_CBOR
    accept: ContentFormat | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", tuple(self.paths))


@dataclass(frozen=True, slots=True)
class CancelObserveComposite:
    """``FETCH /`` with Observe=1 and the same list of paths (§6.4.4)."""

    paths: tuple[Path, ...]
    content_format: ContentFormat = ContentFormat.SENML_CBOR
    accept: ContentFormat | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", tuple(self.paths))


@dataclass(frozen=True, slots=True)
class Send:
    """``POST /dp`` with time-stamped SenML records (§6.4.6)."""

    groups: tuple[TimestampedNodes, ...]
    content_format: ContentFormat = ContentFormat.SENML_CBOR

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))


DownlinkRequest: TypeAlias = (
    BootstrapWrite
    | BootstrapRead
    | BootstrapDiscover
    | BootstrapDelete
    | BootstrapFinish
    | Read
    | Discover
    | Write
    | WriteAttributes
    | Execute
    | Create
    | Delete
    | ReadComposite
    | WriteComposite
    | Observe
    | CancelObservation
    | ObserveComposite
    | CancelObserveComposite
)

UplinkRequest: TypeAlias = BootstrapRequest | Register | Update | Deregister | Send

_READ_PATH: Callable[[object, object], None] = vars(Read)["path"].__set__
_READ_ACCEPT: Callable[[object, object], None] = vars(Read)["accept"].__set__
