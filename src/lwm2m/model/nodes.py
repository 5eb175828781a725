"""The LwM2M node tree as frozen values (LwM2M-TS-Core §7.1, "Resource Model").

An :class:`ObjectNode` holds :class:`ObjectInstance` s; an instance holds resources, each a
:class:`SingleResource` or a :class:`MultipleResource` whose :class:`ResourceInstance` s share
the resource's type. Every id is 0..65534. Containers are read-only mappings sorted by id, so two
nodes with the same content compare equal whatever order they were built in.

The public constructors validate everything (ids, value types, container contents). Decoders
that have already checked every id and typed every value build nodes through the *trusted
constructors* at the end of this module (``trusted_single``, ``trusted_multiple``, ...): same
objects, no second validation. They are internal to the ``lwm2m`` package (not in ``__all__``),
and a property test checks that they build exactly what the public constructors build.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
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
    if type(id_) is not int or not 0 <= id_ < MAX_ID:  # type(): bool is not an id
        raise ModelError(f"{what} id {id_!r} is not in 0..{MAX_ID - 1}")


def _freeze(what: str, items: Mapping[int, T] | Iterable[T]) -> Mapping[int, T]:
    """A read-only mapping sorted by id; ``items`` is a mapping id->node or an iterable of nodes
    (each with an ``id``)."""
    result: dict[int, T]
    if isinstance(items, Mapping):
        result = dict(items)
        for k, v in result.items():
            if v.id != k:  # type: ignore[attr-defined]
                raise ModelError(f"{what} stored under id {k} has id {v.id}")  # type: ignore[attr-defined]
    else:
        nodes = list(items)
        result = {v.id: v for v in nodes}  # type: ignore[attr-defined]
        if len(result) != len(nodes):
            raise ModelError(f"duplicate {what} id")
    return _sorted_proxy(result)


def _sorted_proxy(items: dict[int, T], ordered: bool = False) -> Mapping[int, T]:
    """``items`` (which the caller hands over) as a read-only mapping sorted by id; ``ordered``
    says the caller knows the ids are ascending already."""
    if not ordered:
        keys = list(items)
        if keys != sorted(keys):
            # ids are unique, so sorting the pairs never compares two nodes
            items = dict(sorted(items.items()))
    return MappingProxyType(items)


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


@dataclass(frozen=True, slots=True, init=False)
class ResourceInstance:
    """One instance of a multiple resource (path level 4)."""

    id: int
    type: ResourceType
    value: Value

    def __init__(self, id: int, type: ResourceType, value: Value) -> None:
        # Hand-written rather than the dataclass __init__ (object.__setattr__ per field and a
        # __post_init__): the slot setters are several times cheaper, and this runs per value.
        _check_id("resource instance", id)
        _RI_ID(self, id)
        _RI_TYPE(self, type)
        _RI_VALUE(self, check_value(type, value))


@dataclass(frozen=True, slots=True, init=False)
class SingleResource:
    """A single-instance resource with its typed value (path level 3)."""

    id: int
    type: ResourceType
    value: Value

    def __init__(self, id: int, type: ResourceType, value: Value) -> None:
        _check_id("resource", id)  # hand-written __init__: see ResourceInstance
        _SR_ID(self, id)
        _SR_TYPE(self, type)
        _SR_VALUE(self, check_value(type, value))


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
        frozen = _freeze("resource instance", instances)
        for inst in frozen.values():
            if inst.type is not type:
                raise ModelError(
                    f"resource instance {id}/{inst.id} is {inst.type.value}, not {type.value}"
                )
        _MR_ID(self, id)
        _MR_TYPE(self, type)
        _MR_INSTANCES(self, frozen)

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
        _OI_ID(self, id)
        _OI_RESOURCES(self, _freeze("resource", resources))

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
        _ON_ID(self, id)
        _ON_INSTANCES(self, _freeze("object instance", instances))

    def _key(self) -> tuple[object, ...]:
        return (self.id, tuple(self.instances.items()))

    def __repr__(self) -> str:
        return f"ObjectNode(id={self.id}, instances={list(self.instances.values())!r})"


Node: TypeAlias = ObjectNode | ObjectInstance | SingleResource | MultipleResource | ResourceInstance


# -- slot stores ---------------------------------------------------------------------------------
# The frozen nodes are set up through their slot descriptors' setters: the same stores as
# object.__setattr__, without its attribute-name look-up (several times cheaper per field).

_Setter = Callable[[object, object], None]


def _setters(cls: type, *names: str) -> tuple[_Setter, ...]:
    assert tuple(f.name for f in fields(cls)) == names, cls
    return tuple(vars(cls)[name].__set__ for name in names)


_SR_ID, _SR_TYPE, _SR_VALUE = _setters(SingleResource, "id", "type", "value")
_RI_ID, _RI_TYPE, _RI_VALUE = _setters(ResourceInstance, "id", "type", "value")
_MR_ID, _MR_TYPE, _MR_INSTANCES = _setters(MultipleResource, "id", "type", "instances")
_OI_ID, _OI_RESOURCES = _setters(ObjectInstance, "id", "resources")
_ON_ID, _ON_INSTANCES = _setters(ObjectNode, "id", "instances")


# -- trusted construction ------------------------------------------------------------------------
# For codecs whose ids are already checked (0..65534) and whose values are already typed and
# checked (exactly what check_value returns for the type). They build the same objects as the
# public constructors without validating anything a second time; the public constructors cost
# several times more per node, which matters when decoding thousands of values. Internal to the
# lwm2m package; tests/model/test_nodes.py checks the equivalence.


def _builder(cls: type) -> type:
    """A plain slots class with the memory layout of the node class ``cls``.

    A trusted node is built as an instance of this class, whose slots are set with ordinary
    attribute stores, and then becomes a ``cls`` by ``__class__`` assignment (allowed between
    classes of the same layout; the object is then a genuine ``cls``). That is markedly cheaper
    than ``object.__new__(cls)`` and a slot-descriptor call per field, and decoders build one
    node per value. The builder shares ``cls``'s bases (``_Container`` adds no slots), which
    the layout check requires. The probe below makes a layout change fail at import rather than
    at run time.
    """
    names = tuple(f.name for f in fields(cls))
    namespace = {"__slots__": names, "__module__": __name__}
    builder = type(f"_{cls.__name__}Builder", cls.__bases__, namespace)
    probe = builder()
    for name in names:
        setattr(probe, name, None)
    probe.__class__ = cls  # TypeError here if the layouts ever diverge
    return builder


# The builders, for decoders that inline the construction of their (many) nodes exactly as the
# trusted constructors below do it: ``node = SingleBuilder(); node.id = ...; node.type = ...;
# node.value = ...; node.__class__ = SingleResource``. Containers get a MappingProxyType over a
# dict sorted by id, as ``_sorted_proxy`` makes it. Internal to the lwm2m package.
SingleBuilder = _builder(SingleResource)
ResourceInstanceBuilder = _builder(ResourceInstance)
MultipleBuilder = _builder(MultipleResource)
ObjectInstanceBuilder = _builder(ObjectInstance)
ObjectBuilder = _builder(ObjectNode)


def trusted_single(id: int, type: ResourceType, value: Value) -> SingleResource:
    """``SingleResource(id, type, value)`` for a checked id and a checked ``type`` value."""
    node = SingleBuilder()
    node.id = id
    node.type = type
    node.value = value
    node.__class__ = SingleResource
    return node  # type: ignore[no-any-return]


def trusted_resource_instance(id: int, type: ResourceType, value: Value) -> ResourceInstance:
    """``ResourceInstance(id, type, value)`` for a checked id and a checked ``type`` value."""
    node = ResourceInstanceBuilder()
    node.id = id
    node.type = type
    node.value = value
    node.__class__ = ResourceInstance
    return node  # type: ignore[no-any-return]


def trusted_multiple(
    id: int, type: ResourceType, instances: dict[int, ResourceInstance], ordered: bool = False
) -> MultipleResource:
    """``MultipleResource(id, type, instances)``: ``instances`` maps each instance's id to it,
    all of ``type``; the node takes the dict over. ``ordered``: the ids are ascending."""
    node = MultipleBuilder()
    node.id = id
    node.type = type
    node.instances = _sorted_proxy(instances, ordered)
    node.__class__ = MultipleResource
    return node  # type: ignore[no-any-return]


def trusted_object_instance(
    id: int, resources: dict[int, Resource], ordered: bool = False
) -> ObjectInstance:
    """``ObjectInstance(id, resources)``: ``resources`` maps each resource's id to it; the node
    takes the dict over. ``ordered``: the ids are ascending."""
    node = ObjectInstanceBuilder()
    node.id = id
    node.resources = _sorted_proxy(resources, ordered)
    node.__class__ = ObjectInstance
    return node  # type: ignore[no-any-return]


def trusted_object(
    id: int, instances: dict[int, ObjectInstance], ordered: bool = False
) -> ObjectNode:
    """``ObjectNode(id, instances)``: ``instances`` maps each instance's id to it; the node takes
    the dict over. ``ordered``: the ids are ascending."""
    node = ObjectBuilder()
    node.id = id
    node.instances = _sorted_proxy(instances, ordered)
    node.__class__ = ObjectNode
    return node  # type: ignore[no-any-return]
