"""Reusable hypothesis strategies for typed values and node trees, plus a small test model.

Shared by every codec's round-trip tests (TLV, text, opaque, CBOR, OMA JSON, SenML, LwM2M CBOR).
Import them relatively from a test module of this package::

    from .strategies import TEST_MODEL, TEST_OBJECT, objects, paths_and_nodes, values_for

Values follow :mod:`lwm2m.model.values`: floats are finite and never NaN (NaN != NaN breaks
``decode(encode(x)) == x``); strings are valid Unicode without surrogates (so UTF-8 encodable).
Executable resources (type NONE) carry no value and are never generated inside instances.
"""

from __future__ import annotations

import json
from pathlib import Path as FilePath
from typing import Any

from hypothesis import strategies as st

from lwm2m.codec._common import build_node, resource_definition
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectDefinition,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Operations,
    Path,
    ResourceDefinition,
    ResourceInstance,
    ResourceType,
    SingleResource,
    Value,
)
from lwm2m.model.registry import ModelRegistry, ObjectModel

__all__ = [
    "TEST_MODEL",
    "TEST_OBJECT",
    "TEST_OBJECT_ID",
    "VECTORS",
    "ids",
    "load_vectors",
    "multiple_resources",
    "node_from_content",
    "object_instances",
    "objects",
    "paths_and_nodes",
    "resource_instances",
    "resources",
    "single_resources",
    "single_values",
    "values_for",
]

#: Every id a node may have (65535 is reserved, LwM2M-TS-Core §7.1).
ids = st.integers(min_value=0, max_value=65534)

_small_ids = st.one_of(st.integers(0, 300), ids)

_text = st.text(st.characters(codec="utf-8"), max_size=40)


def values_for(type_: ResourceType, *, allow_infinity: bool = False) -> st.SearchStrategy[Value]:
    """Values of ``type_`` in their Python representation (see :mod:`lwm2m.model.values`).

    ``allow_infinity`` adds ``inf``/``-inf`` to FLOAT (formats like text or CBOR carry them,
    JSON does not).
    """
    match type_:
        case ResourceType.STRING | ResourceType.CORELNK:
            return _text
        case ResourceType.INTEGER | ResourceType.TIME:
            return st.integers(min_value=-(2**63), max_value=2**63 - 1)
        case ResourceType.UNSIGNED_INTEGER:
            return st.integers(min_value=0, max_value=2**64 - 1)
        case ResourceType.FLOAT:
            return st.floats(allow_nan=False, allow_infinity=allow_infinity)
        case ResourceType.BOOLEAN:
            return st.booleans()
        case ResourceType.OPAQUE:
            return st.binary(max_size=64)
        case ResourceType.OBJLNK:
            return st.builds(ObjectLink, st.integers(0, 65535), st.integers(0, 65535))
        case _:
            return st.none()


def resource_instances(
    definition: ResourceDefinition, *, instance_id: int | None = None, allow_infinity: bool = False
) -> st.SearchStrategy[ResourceInstance]:
    """One instance of the multiple resource ``definition``."""
    return st.builds(
        ResourceInstance,
        st.just(instance_id) if instance_id is not None else _small_ids,
        st.just(definition.type),
        values_for(definition.type, allow_infinity=allow_infinity),
    )


def single_resources(
    definition: ResourceDefinition, *, allow_infinity: bool = False
) -> st.SearchStrategy[SingleResource]:
    """A single resource of ``definition`` (its id and type) with a random value."""
    return st.builds(
        SingleResource,
        st.just(definition.id),
        st.just(definition.type),
        values_for(definition.type, allow_infinity=allow_infinity),
    )


def multiple_resources(
    definition: ResourceDefinition, *, max_instances: int = 4, allow_infinity: bool = False
) -> st.SearchStrategy[MultipleResource]:
    """A multiple resource of ``definition`` with 0..``max_instances`` instances."""
    return st.dictionaries(
        _small_ids,
        values_for(definition.type, allow_infinity=allow_infinity),
        max_size=max_instances,
    ).map(lambda values: MultipleResource.of(definition.id, definition.type, values))


def resources(
    definition: ResourceDefinition, *, allow_infinity: bool = False
) -> st.SearchStrategy[SingleResource | MultipleResource]:
    """A single or multiple resource, as ``definition`` says."""
    if definition.multiple:
        return multiple_resources(definition, allow_infinity=allow_infinity)
    return single_resources(definition, allow_infinity=allow_infinity)


def _valued(object_definition: ObjectDefinition) -> list[ResourceDefinition]:
    return [r for r in object_definition.resources.values() if r.type is not ResourceType.NONE]


def object_instances(
    object_definition: ObjectDefinition,
    *,
    instance_id: int | None = None,
    allow_infinity: bool = False,
) -> st.SearchStrategy[ObjectInstance]:
    """An instance of ``object_definition`` holding a random subset of its valued resources."""
    per_resource = {
        d.id: resources(d, allow_infinity=allow_infinity) for d in _valued(object_definition)
    }
    chosen = (
        st.lists(st.sampled_from(sorted(per_resource)), unique=True)
        if per_resource
        else st.just([])
    )
    iids = st.just(instance_id) if instance_id is not None else _small_ids

    @st.composite
    def build(draw: st.DrawFn) -> ObjectInstance:
        iid = draw(iids)
        return ObjectInstance(iid, [draw(per_resource[rid]) for rid in draw(chosen)])

    return build()


def objects(
    object_definition: ObjectDefinition, *, max_instances: int = 3, allow_infinity: bool = False
) -> st.SearchStrategy[ObjectNode]:
    """An object node of ``object_definition`` with 0..``max_instances`` instances."""
    instances = object_instances(object_definition, allow_infinity=allow_infinity)
    return st.lists(instances, unique_by=lambda i: i.id, max_size=max_instances).map(
        lambda insts: ObjectNode(object_definition.id, insts)
    )


def paths_and_nodes(
    object_definition: ObjectDefinition,
    *,
    levels: tuple[int, ...] = (1, 2, 3, 4),
    allow_infinity: bool = False,
) -> st.SearchStrategy[tuple[Path, Node]]:
    """A request path of one of ``levels`` (1 object .. 4 resource instance) and a node for it.

    Level 4 is only drawn when the object has a multiple resource.
    """
    oid = object_definition.id
    inf = allow_infinity
    defs = _valued(object_definition)
    choices: list[st.SearchStrategy[tuple[Path, Node]]] = []
    if 1 in levels:
        choices.append(objects(object_definition, allow_infinity=inf).map(lambda o: (Path(oid), o)))
    if 2 in levels:
        choices.append(
            object_instances(object_definition, allow_infinity=inf).map(
                lambda i: (Path(oid, i.id), i)
            )
        )
    if 3 in levels and defs:
        choices.append(
            st.tuples(_small_ids, st.one_of([resources(d, allow_infinity=inf) for d in defs])).map(
                lambda t: (Path(oid, t[0], t[1].id), t[1])
            )
        )
    multi = [d for d in defs if d.multiple]
    if 4 in levels and multi:
        choices.append(
            st.tuples(
                _small_ids,
                st.one_of(
                    [
                        st.tuples(st.just(d.id), resource_instances(d, allow_infinity=inf))
                        for d in multi
                    ]
                ),
            ).map(lambda t: (Path(oid, t[0], t[1][0], t[1][1].id), t[1][1]))
        )
    return st.one_of(choices)


def single_values(
    object_definition: ObjectDefinition,
    *,
    types: tuple[ResourceType, ...] | None = None,
    allow_infinity: bool = False,
) -> st.SearchStrategy[tuple[Path, SingleResource | ResourceInstance]]:
    """One value of ``object_definition``: a single resource at ``/o/i/r``, or a resource
    instance at ``/o/i/r/ri`` of a multiple resource (what text, opaque and CBOR carry).

    ``types`` restricts the resource types drawn from.
    """
    oid = object_definition.id
    defs = [d for d in _valued(object_definition) if types is None or d.type in types]
    return st.one_of([_single_value(oid, d, allow_infinity) for d in defs])


def _single_value(
    oid: int, definition: ResourceDefinition, allow_infinity: bool
) -> st.SearchStrategy[tuple[Path, SingleResource | ResourceInstance]]:
    rid = definition.id

    def at_instance(t: tuple[int, ResourceInstance]) -> tuple[Path, ResourceInstance]:
        return Path(oid, t[0], rid, t[1].id), t[1]

    def at_resource(t: tuple[int, SingleResource]) -> tuple[Path, SingleResource]:
        return Path(oid, t[0], rid), t[1]

    if definition.multiple:
        instance = resource_instances(definition, allow_infinity=allow_infinity)
        return st.tuples(_small_ids, instance).map(at_instance)
    single = single_resources(definition, allow_infinity=allow_infinity)
    return st.tuples(_small_ids, single).map(at_resource)


# -- the test model ----------------------------------------------------------------------------

TEST_OBJECT_ID = 3441
"""Id of :data:`TEST_OBJECT` (the id OMA gives its "LwM2M v1.1 Test Object")."""

_TYPES = [
    ResourceType.STRING,
    ResourceType.INTEGER,
    ResourceType.UNSIGNED_INTEGER,
    ResourceType.FLOAT,
    ResourceType.BOOLEAN,
    ResourceType.OPAQUE,
    ResourceType.TIME,
    ResourceType.OBJLNK,
    ResourceType.CORELNK,
]


def _res(rid: int, type_: ResourceType, multiple: bool) -> ResourceDefinition:
    name = f"{'Multiple' if multiple else 'Single'} {type_.value}"
    return ResourceDefinition(rid, name, Operations.RW, multiple, False, type_)


TEST_OBJECT = ObjectDefinition(
    TEST_OBJECT_ID,
    "Test object (all types)",
    version="1.1",
    lwm2m_version="1.1",
    multiple=True,
    resources={
        r.id: r
        for r in [
            # 0..8: one single resource of each type; 10..18: one multiple resource of each type;
            # 300 and 65534: ids needing the 16-bit id field of TLV; 20: executable (no value).
            *(_res(i, t, False) for i, t in enumerate(_TYPES)),
            *(_res(10 + i, t, True) for i, t in enumerate(_TYPES)),
            _res(300, ResourceType.STRING, False),
            _res(65534, ResourceType.INTEGER, True),
            ResourceDefinition(20, "Execute", Operations.E, False, False, ResourceType.NONE),
        ]
    },
)
"""An object with a single and a multiple resource of every data type."""

TEST_MODEL = ModelRegistry([TEST_OBJECT])
"""An :class:`~lwm2m.model.registry.ObjectModel` holding only :data:`TEST_OBJECT`."""


# -- spec vectors (tests/vectors/<format>/*.json) -------------------------------------------------

VECTORS = FilePath(__file__).resolve().parent.parent / "vectors"
"""The folder of the test vectors, one sub-folder per format."""


def load_vectors(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """``(file name, vector)`` for every ``tests/vectors/<kind>/*.json``, sorted by name."""
    return [
        (f.name, json.loads(f.read_text(encoding="utf-8")))
        for f in sorted((VECTORS / kind).glob("*.json"))
    ]


def node_from_content(path: Path, content: Any, model: ObjectModel) -> Node:
    """The node at ``path`` described by a vector's ``content``.

    ``content`` nests dicts keyed by id text down to values: ``{"0": {"6": {"0": 1}}}`` at an
    object path, a bare value at a single-resource or resource-instance path. Values are JSON:
    Objlnk as ``"oid:iid"``, Opaque as hex text; the model gives each leaf its type.
    """
    leaves: list[tuple[Path, Value]] = []

    def walk(at: Path, item: Any) -> None:
        if isinstance(item, dict):
            for key, child in item.items():
                walk(at.child(int(key)), child)
            return
        type_ = resource_definition(model, at).type
        if type_ is ResourceType.OBJLNK:
            item = ObjectLink.parse(item)
        elif type_ is ResourceType.OPAQUE:
            item = bytes.fromhex(item)
        elif type_ is ResourceType.FLOAT:
            item = float(item)
        leaves.append((at, item))

    walk(path, content)
    return build_node(path, leaves, model)
