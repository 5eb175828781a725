"""The LwM2M node tree as frozen values (LwM2M-TS-Core §7.1, "Resource Model").

An :class:`ObjectNode` holds :class:`ObjectInstance` s; an instance holds resources, each a
:class:`SingleResource` or a :class:`MultipleResource` whose :class:`ResourceInstance` s share
the resource's type. Every id is 0..65534. Containers are read-only mappings sorted by id, so two
nodes with the same content compare equal whatever order they were built in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeAlias, TypeVar

from lwm2m.constants import MAX_ID
from lwm2m.errors import ModelError
from lwm2m.model.values import ResourceType, Value, check_value

T = TypeVar("T")

__all__ = [
    "MultipleResource",
    "Node",
    "ObjectInstance",
    "ObjectNode",
    "Resource",
    "ResourceInstance",
    "SingleResource",
]


def _check_id(what: str, id_: object) -> None:
    if type(id_) is not int or not 0 <= id_ < MAX_ID:
        raise ModelError(f"{what} id {id_!r} is not in 0..{MAX_ID - 1}")


def _freeze(what: str, items: Mapping[int, T] | Iterable[T], key: str) -> Mapping[int, T]:
    """A read-only mapping sorted by id; ``items`` is a mapping id->node or an iterable of nodes."""
    pairs: list[tuple[int, T]]
    if isinstance(items, Mapping):
        pairs = list(items.items())
        for k, v in pairs:
            if getattr(v, key) != k:
                raise ModelError(f"{what} stored under id {k} has id {getattr(v, key)}")
    else:
        pairs = [(getattr(v, key), v) for v in items]
    result = dict(sorted(pairs, key=lambda kv: kv[0]))
    if len(result) != len(pairs):
        raise ModelError(f"duplicate {what} id")
    return MappingProxyType(result)


class _Container:
    """Equality and hashing for frozen nodes holding mappings."""

    __slots__ = ()

    def _key(self) -> tuple[object, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))


@dataclass(frozen=True, slots=True)
class ResourceInstance:
    """One instance of a multiple resource (path level 4)."""

    id: int
    type: ResourceType
    value: Value

    def __post_init__(self) -> None:
        _check_id("resource instance", self.id)
        object.__setattr__(self, "value", check_value(self.type, self.value))


@dataclass(frozen=True, slots=True)
class SingleResource:
    """A single-instance resource with its typed value (path level 3)."""

    id: int
    type: ResourceType
    value: Value

    def __post_init__(self) -> None:
        _check_id("resource", self.id)
        object.__setattr__(self, "value", check_value(self.type, self.value))


@dataclass(frozen=True, slots=True, eq=False)
class MultipleResource(_Container):
    """A multiple-instance resource (path level 3); it may have no instances."""

    id: int
    type: ResourceType
    instances: Mapping[int, ResourceInstance]

    def __init__(
        self,
        id: int,
        type: ResourceType,
        instances: Mapping[int, ResourceInstance] | Iterable[ResourceInstance] = (),
    ) -> None:
        _check_id("resource", id)
        frozen = _freeze("resource instance", instances, "id")
        for inst in frozen.values():
            if inst.type is not type:
                raise ModelError(
                    f"resource instance {id}/{inst.id} is {inst.type.value}, not {type.value}"
                )
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "instances", frozen)

    @classmethod
    def of(cls, id: int, type: ResourceType, values: Mapping[int, Value]) -> MultipleResource:
        """Build from a mapping of resource instance id to value."""
        return cls(id, type, [ResourceInstance(i, type, v) for i, v in values.items()])

    @property
    def values(self) -> dict[int, Value]:
        return {i: inst.value for i, inst in self.instances.items()}

    def _key(self) -> tuple[object, ...]:
        return (self.id, self.type, tuple(self.instances.items()))

    def __repr__(self) -> str:
        return f"MultipleResource(id={self.id}, type={self.type}, values={self.values!r})"


Resource: TypeAlias = SingleResource | MultipleResource


@dataclass(frozen=True, slots=True, eq=False)
class ObjectInstance(_Container):
    """An object instance and its resources (path level 2)."""

    id: int
    resources: Mapping[int, Resource]

    def __init__(self, id: int, resources: Mapping[int, Resource] | Iterable[Resource] = ()):
        _check_id("object instance", id)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "resources", _freeze("resource", resources, "id"))

    def _key(self) -> tuple[object, ...]:
        return (self.id, tuple(self.resources.items()))

    def __repr__(self) -> str:
        return f"ObjectInstance(id={self.id}, resources={list(self.resources.values())!r})"


@dataclass(frozen=True, slots=True, eq=False)
class ObjectNode(_Container):
    """An object and its instances (path level 1)."""

    id: int
    instances: Mapping[int, ObjectInstance]

    def __init__(
        self, id: int, instances: Mapping[int, ObjectInstance] | Iterable[ObjectInstance] = ()
    ):
        _check_id("object", id)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "instances", _freeze("object instance", instances, "id"))

    def _key(self) -> tuple[object, ...]:
        return (self.id, tuple(self.instances.items()))

    def __repr__(self) -> str:
        return f"ObjectNode(id={self.id}, instances={list(self.instances.values())!r})"


Node: TypeAlias = ObjectNode | ObjectInstance | SingleResource | MultipleResource | ResourceInstance
