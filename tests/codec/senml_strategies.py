"""Hypothesis strategies and vector helpers for the SenML and LwM2M CBOR tests.

Builds on :mod:`.strategies` (values and nodes from a model). SenML cannot carry empty
containers below the request path (they have no records), so :func:`prune` removes them and the
SenML strategies draw pruned nodes: then ``decode(encode(x)) == x`` holds exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from hypothesis import strategies as st

from lwm2m.codec._common import build_node, flatten
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.senml import TIME_ABSOLUTE_MIN
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
from lwm2m.model.registry import ModelRegistry

from .conftest import make_core_model
from .strategies import TEST_OBJECT, paths_and_nodes

__all__ = [
    "OBJECT_3303",
    "SENML_MODEL",
    "VECTORS",
    "check_vector",
    "composite_maps",
    "leaf_map",
    "leaf_nodes",
    "load_vectors",
    "model_from_spec",
    "path_lists",
    "prune",
    "senml_paths_and_nodes",
    "timestamped_groups",
    "typed_leaves",
]

VECTORS = FsPath(__file__).resolve().parent.parent / "vectors" / "senml"

#: IPSO Temperature (3303), enough of it for the Leshan time-stamp vectors: 5700 Sensor Value.
OBJECT_3303 = ObjectDefinition(
    3303,
    "Temperature",
    resources=[
        ResourceDefinition(5700, "Sensor Value", Operations.R, False, True, ResourceType.FLOAT),
        ResourceDefinition(5701, "Sensor Units", Operations.R, False, False, ResourceType.STRING),
    ],
)


def _senml_model() -> ModelRegistry:
    registry = make_core_model()
    registry.add(OBJECT_3303)
    return registry


SENML_MODEL = _senml_model()
"""The bundled objects, objects 65/66 and the all-types object of :mod:`.strategies`, and 3303."""


# -- pruning -------------------------------------------------------------------------------------


def _prune_instance(inst: ObjectInstance) -> ObjectInstance:
    return ObjectInstance(
        inst.id,
        [
            r
            for r in inst.resources.values()
            if not (isinstance(r, MultipleResource) and not r.instances)
        ],
    )


def prune(node: Node) -> Node:
    """``node`` without the empty containers below it (what SenML can carry)."""
    if isinstance(node, ObjectNode):
        kept = [_prune_instance(i) for i in node.instances.values()]
        return ObjectNode(node.id, [i for i in kept if i.resources])
    if isinstance(node, ObjectInstance):
        return _prune_instance(node)
    return node


def has_values(node: Node) -> bool:
    """True when ``node`` carries at least one value."""
    if isinstance(node, ObjectNode):
        return any(has_values(i) for i in node.instances.values())
    if isinstance(node, ObjectInstance):
        return any(has_values(r) for r in node.resources.values())
    if isinstance(node, MultipleResource):
        return bool(node.instances)
    return True


# -- strategies ----------------------------------------------------------------------------------


def senml_paths_and_nodes(*, allow_infinity: bool = False) -> st.SearchStrategy[tuple[Path, Node]]:
    """A request path and a node SenML can carry exactly (test object, every type)."""
    return paths_and_nodes(TEST_OBJECT, allow_infinity=allow_infinity).map(
        lambda pn: (pn[0], prune(pn[1]))
    )


def _overlaps(a: Path, b: Path) -> bool:
    return a.is_prefix_of(b) or b.is_prefix_of(a)


@st.composite
def composite_maps(
    draw: st.DrawFn, *, allow_none: bool = True, allow_infinity: bool = False, min_size: int = 0
) -> dict[Path, Node | None]:
    """A Read-Composite response / Write-Composite map: disjoint paths, non-empty nodes."""
    pairs = draw(
        st.lists(
            paths_and_nodes(TEST_OBJECT, levels=(2, 3, 4), allow_infinity=allow_infinity),
            min_size=min_size,
            max_size=5,
        )
    )
    result: dict[Path, Node | None] = {}
    for path, node in pairs:
        node = prune(node)
        if not has_values(node) or any(_overlaps(path, p) for p in result):
            continue
        delete = allow_none and path.level >= 3 and draw(st.booleans())
        result[path] = None if delete else node
    return result


@st.composite
def timestamped_groups(draw: st.DrawFn, *, allow_infinity: bool = False) -> list[TimestampedNodes]:
    """Send / historical notification groups: unique timestamps (None or >= 2**28)."""
    stamps = draw(
        st.lists(
            st.one_of(
                st.none(),
                st.integers(TIME_ABSOLUTE_MIN, 2**40),
                st.floats(TIME_ABSOLUTE_MIN, 2.0**40, allow_nan=False, allow_infinity=False),
            ),
            unique=True,
            max_size=4,
        )
    )
    groups = []
    for stamp in stamps:
        nodes = draw(composite_maps(allow_none=False, allow_infinity=allow_infinity, min_size=1))
        if nodes:
            groups.append(TimestampedNodes(stamp, nodes))  # type: ignore[arg-type]
    return groups


_ids = st.integers(0, 65534)
path_lists = st.lists(
    st.lists(_ids, max_size=4).map(lambda ids: Path(*ids)), unique=True, max_size=8
)
"""Read-/Observe-Composite path lists (any level, the root included)."""


# -- vectors -------------------------------------------------------------------------------------


def load_vectors(name: str) -> list[dict[str, Any]]:
    """The vectors of ``tests/vectors/senml/<name>.json``."""
    with (VECTORS / f"{name}.json").open(encoding="utf-8") as f:
        data = json.load(f)
    vectors: list[dict[str, Any]] = data["vectors"]
    for vector in vectors:
        assert vector.get("source"), f"vector {vector['id']} cites no source"
    return vectors


def _typed(type_: ResourceType, raw: Any) -> Value:
    if type_ is ResourceType.OPAQUE:
        return bytes.fromhex(raw)
    if type_ is ResourceType.OBJLNK:
        return ObjectLink.parse(raw)
    if type_ is ResourceType.FLOAT:
        return float(raw)
    value: Value = raw
    return value


def typed_leaves(leaves: Mapping[str, Any], model: Any) -> dict[Path, Value]:
    """JSON leaves (path text -> JSON value) typed by ``model`` (hex Opaque, "a:b" Objlnk)."""
    out: dict[Path, Value] = {}
    for text, raw in leaves.items():
        path = Path.parse(text)
        assert path.object_id is not None
        assert path.resource_id is not None
        definition = model.object_definition(path.object_id).resource(path.resource_id)
        out[path] = None if raw is None else _typed(definition.type, raw)
    return out


def leaf_map(
    leaves: Mapping[str, Any], model: Any, paths: list[str] | None
) -> dict[Path, Node | None]:
    """The composite map of ``leaves``: per leaf, or grouped under ``paths`` (build_node)."""
    typed = typed_leaves(leaves, model)
    nones = {p: None for p, v in typed.items() if v is None}
    values = {p: v for p, v in typed.items() if v is not None}
    result: dict[Path, Node | None] = {}
    if paths is None:
        for path, value in values.items():
            definition = model.object_definition(path.object_id).resource(path.resource_id)
            if path.is_resource_instance:
                result[path] = ResourceInstance(path.ids[3], definition.type, value)
            else:
                result[path] = SingleResource(path.ids[2], definition.type, value)
    else:
        for text in paths:
            path = Path.parse(text)
            below = [(p, v) for p, v in values.items() if path.is_prefix_of(p)]
            if below:
                result[path] = build_node(path, below, model)
    result.update(nones)
    return result


def model_from_spec(spec: Mapping[str, Mapping[str, list[Any]]]) -> ModelRegistry:
    """A model from ``{"13": {"1": ["Integer", false]}}`` (object -> resource -> type, multiple)."""
    objects = []
    for oid, resources in spec.items():
        defs = [
            ResourceDefinition(
                int(rid), f"r{rid}", Operations.RW, multiple, False, ResourceType.from_ddf(t)
            )
            for rid, (t, multiple) in resources.items()
        ]
        objects.append(ObjectDefinition(int(oid), f"object {oid}", resources=defs))
    return ModelRegistry(objects)


def check_vector(codec: Any, vector: Mapping[str, Any], model: Any, payload: bytes) -> None:
    """Check ``vector`` both ways: decode(payload) == expected, encode(expected) == payload."""
    op = vector["op"]
    directions = vector["directions"]
    paths = vector.get("paths")
    if op == "node":
        path = Path.parse(vector["path"])
        expected_node = build_node(path, typed_leaves(vector["leaves"], model).items(), model)
        if "decode" in directions:
            assert codec.decode(payload, path, model) == expected_node
        if "encode" in directions:
            assert codec.encode(expected_node, path, model) == payload
    elif op == "paths":
        expected_paths = [Path.parse(p) for p in paths]
        if "decode" in directions:
            assert codec.decode_paths(payload) == expected_paths
        if "encode" in directions:
            assert codec.encode_paths(expected_paths) == payload
    elif op == "nodes":
        expected_map = leaf_map(vector["leaves"], model, paths)
        wanted = [Path.parse(p) for p in paths] if paths else None
        if "decode" in directions:
            assert codec.decode_nodes(payload, model, paths=wanted) == expected_map
        if "encode" in directions:
            assert codec.encode_nodes(expected_map, model) == payload
    else:
        assert op == "timestamped"
        groups = [
            TimestampedNodes(g["time"], leaf_map(g["leaves"], model, paths))  # type: ignore[arg-type]
            for g in vector["groups"]
        ]
        wanted = [Path.parse(p) for p in paths] if paths else None
        if "decode" in directions:
            assert codec.decode_timestamped(payload, model, paths=wanted) == groups
        if "encode" in directions:
            assert codec.encode_timestamped(groups, model) == payload


def leaf_nodes(nodes: Mapping[Path, Node | None]) -> dict[Path, Node | None]:
    """``nodes`` as RFC 8428 resolution sees them: every value its own node, None kept."""
    out: dict[Path, Node | None] = {}
    for path, node in nodes.items():
        if node is None:
            out[path] = None
            continue
        for leaf, type_, value in flatten(node, path):
            leaf_id = leaf.ids[-1]
            out[leaf] = (
                ResourceInstance(leaf_id, type_, value)
                if leaf.is_resource_instance
                else SingleResource(leaf_id, type_, value)
            )
    return out
