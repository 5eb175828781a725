"""Object and resource definitions: what a DDF file says about an object (LwM2M-TS-Core §7.2,
Appendix D "Object Template").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Flag
from types import MappingProxyType

from lwm2m.constants import MAX_ID
from lwm2m.errors import ModelError
from lwm2m.model.values import ResourceType

__all__ = ["ObjectDefinition", "Operations", "ResourceDefinition"]


class Operations(Flag):
    """Operations a resource supports (DDF ``<Operations>``: R, W, RW, E or empty)."""

    NONE = 0
    R = 1
    W = 2
    E = 4
    RW = R | W

    @classmethod
    def from_ddf(cls, text: str) -> Operations:
        key = text.strip().upper()
        try:
            return {"": cls.NONE, "R": cls.R, "W": cls.W, "RW": cls.RW, "E": cls.E}[key]
        except KeyError:
            msg = f"unknown operations {text!r} (expected R, W, RW, E or empty)"
            raise ModelError(msg) from None

    def to_ddf(self) -> str:
        """The DDF spelling; combinations DDF cannot express (e.g. ``R|E``) raise ModelError."""
        try:
            return {0: "", 1: "R", 2: "W", 3: "RW", 4: "E"}[self.value]
        except KeyError:
            raise ModelError(f"operations {self!r} cannot be written in DDF") from None

    @property
    def readable(self) -> bool:
        return bool(self & Operations.R)

    @property
    def writable(self) -> bool:
        return bool(self & Operations.W)

    @property
    def executable(self) -> bool:
        return bool(self & Operations.E)


@dataclass(frozen=True, slots=True)
class ResourceDefinition:
    """One ``<Item>`` of a DDF file."""

    id: int
    name: str
    operations: Operations
    multiple: bool
    mandatory: bool
    type: ResourceType
    range_enumeration: str = ""
    units: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if type(self.id) is not int or not 0 <= self.id < MAX_ID:
            raise ModelError(f"resource id {self.id!r} is not in 0..{MAX_ID - 1}")
        self.operations.to_ddf()  # only R, W, RW, E or none exist in LwM2M (§7.2)
        if self.operations.executable and self.type is not ResourceType.NONE:
            # Executable resources carry no value (LwM2M-TS-Core §7.2); many registry files
            # still give them a type, which loaders accept and normalise.
            object.__setattr__(self, "type", ResourceType.NONE)


@dataclass(frozen=True, slots=True)
class ObjectDefinition:
    """One ``<Object>`` of a DDF file."""

    id: int
    name: str
    version: str = "1.0"
    lwm2m_version: str = "1.0"
    multiple: bool = True
    mandatory: bool = False
    urn: str = ""
    description: str = ""
    resources: Mapping[int, ResourceDefinition] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if type(self.id) is not int or not 0 <= self.id < MAX_ID:
            raise ModelError(f"object id {self.id!r} is not in 0..{MAX_ID - 1}")
        _check_version("object version", self.version)
        _check_version("LwM2M version", self.lwm2m_version)
        items: Iterable[ResourceDefinition] = (
            self.resources.values() if isinstance(self.resources, Mapping) else self.resources
        )
        by_id: dict[int, ResourceDefinition] = {}
        for res in items:
            if res.id in by_id:
                raise ModelError(f"object {self.id}: resource id {res.id} defined twice")
            by_id[res.id] = res
        object.__setattr__(self, "resources", MappingProxyType(dict(sorted(by_id.items()))))
        if not self.urn:
            object.__setattr__(self, "urn", default_urn(self.id, self.version))

    def resource(self, resource_id: int) -> ResourceDefinition | None:
        return self.resources.get(resource_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectDefinition):
            return NotImplemented
        return _fields(self) == _fields(other)

    def __hash__(self) -> int:
        return hash((self.id, self.version))


def _fields(d: ObjectDefinition) -> tuple[object, ...]:
    return (
        d.id,
        d.name,
        d.version,
        d.lwm2m_version,
        d.multiple,
        d.mandatory,
        d.urn,
        d.description,
        tuple(d.resources.items()),
    )


def _check_version(what: str, text: str) -> None:
    major, sep, minor = text.partition(".")
    if not (sep and major.isdigit() and minor.isdigit() and major.isascii() and minor.isascii()):
        raise ModelError(f"{what} {text!r} is not MAJOR.MINOR")


def default_urn(object_id: int, version: str = "1.0") -> str:
    """The object URN of LwM2M-TS-Core §7.2.2: oma below 2048, ext below 10241, x above.

    The version suffix is added for versions other than 1.0.
    """
    kind = "oma" if object_id < 2048 else "ext" if object_id < 10241 else "x"
    urn = f"urn:oma:lwm2m:{kind}:{object_id}"
    return urn if version == "1.0" else f"{urn}:{version}"
