"""Shared mapping-level helpers of the codecs: path checks, model look-ups, and the conversion
between node trees and flat leaves (what SenML, OMA JSON and LwM2M CBOR carry).

A *leaf* is a value at a resource path (``/o/i/r``, single resource) or at a resource-instance
path (``/o/i/r/ri``). Flat formats list leaves; :func:`flatten` and :func:`build_node` convert
between a node at a path and its leaves, enforcing LwM2M-TS-Core §7.4 rules (every leaf lies
under the request path, no duplicates, single vs multiple as the model says).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

from lwm2m.errors import CodecError, ModelError
from lwm2m.model.definitions import ResourceDefinition
from lwm2m.model.nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectNode,
    Resource,
    ResourceInstance,
    SingleResource,
)
from lwm2m.model.path import Path, PathLevel
from lwm2m.model.registry import ObjectModel
from lwm2m.model.values import ResourceType, Value, check_value

__all__ = [
    "Leaf",
    "build_node",
    "check_node_at",
    "fail",
    "flatten",
    "resource_definition",
    "typed",
]

Leaf = tuple[Path, ResourceType, Value]


def fail(path: Path | None, message: str) -> NoReturn:
    """Raise a CodecError about ``path``."""
    raise CodecError(message, path=str(path) if path is not None else None)


def resource_definition(model: ObjectModel, path: Path) -> ResourceDefinition:
    """The definition of the resource ``path`` lies in, or CodecError naming what is unknown."""
    object_id, resource_id = path.object_id, path.resource_id
    if object_id is None or resource_id is None:
        fail(path, "not a resource path")
    definition = model.object_definition(object_id)
    if definition is None:
        fail(path, f"unknown object {object_id}")
    resource = definition.resource(resource_id)
    if resource is None:
        fail(path, f"unknown resource {resource_id} in object {object_id} ({definition.name})")
    return resource


def typed(path: Path, type_: ResourceType, value: object) -> Value:
    """``value`` checked as ``type_``; a mismatch is a CodecError naming the path."""
    try:
        return check_value(type_, value)
    except ModelError as exc:
        fail(path, f"wrong type for resource: {exc}")


def check_node_at(node: Node, path: Path) -> None:
    """The node kind and id must match the path (an instance at ``/3/0`` has id 0, ...)."""
    level = path.level
    expected: tuple[type, ...]
    match level:
        case PathLevel.OBJECT:
            expected = (ObjectNode,)
        case PathLevel.OBJECT_INSTANCE:
            expected = (ObjectInstance,)
        case PathLevel.RESOURCE:
            expected = (SingleResource, MultipleResource)
        case PathLevel.RESOURCE_INSTANCE:
            expected = (ResourceInstance,)
        case _:
            fail(path, "the root path carries no node in this format")
    if not isinstance(node, expected):
        fail(path, f"a {type(node).__name__} cannot be the content of a {level.name} path")
    if node.id != path.ids[-1]:
        fail(path, f"node id {node.id} does not match the path")


def _check_model_type(path: Path, type_: ResourceType, model: ObjectModel | None) -> None:
    if model is None or path.object_id is None or path.resource_id is None:
        return
    definition = model.object_definition(path.object_id)
    resource = definition.resource(path.resource_id) if definition else None
    if resource is not None and resource.type is not type_:
        fail(path, f"wrong type for resource: {type_.value}, the model says {resource.type.value}")


def flatten(node: Node, path: Path, model: ObjectModel | None = None) -> list[Leaf]:
    """The leaves of ``node`` (the content of ``path``), in path order.

    With a ``model``, a resource whose definition is known must carry the defined type.
    """
    check_node_at(node, path)
    leaves: list[Leaf] = []

    def resource(res: Resource, at: Path) -> None:
        _check_model_type(at, res.type, model)
        if isinstance(res, SingleResource):
            leaves.append((at, res.type, res.value))
        else:
            leaves.extend((at.child(i), inst.type, inst.value) for i, inst in res.instances.items())

    def instance(inst: ObjectInstance, at: Path) -> None:
        for rid, res in inst.resources.items():
            resource(res, at.child(rid))

    if isinstance(node, ObjectNode):
        for iid, inst in node.instances.items():
            instance(inst, path.child(iid))
    elif isinstance(node, ObjectInstance):
        instance(node, path)
    elif isinstance(node, SingleResource | MultipleResource):
        resource(node, path)
    else:
        _check_model_type(path, node.type, model)
        leaves.append((path, node.type, node.value))
    return leaves


def build_node(path: Path, leaves: Iterable[tuple[Path, Value]], model: ObjectModel) -> Node:
    """The node at ``path`` made of typed ``leaves`` (already converted to their resource type).

    Raises CodecError when a leaf lies outside ``path``, appears twice, or does not fit the
    model (a resource-instance leaf for a single resource and vice versa).
    """
    if path.level is PathLevel.ROOT:
        fail(path, "the root path carries no node in this format")
    seen: set[Path] = set()
    # object instance id -> resource id -> (single value | {ri: value})
    tree: dict[int, dict[int, tuple[ResourceDefinition, dict[int, Value] | list[Value]]]] = {}
    for leaf_path, value in leaves:
        if not path.is_prefix_of(leaf_path):
            fail(leaf_path, f"lies outside the request path {path}")
        if leaf_path.level < PathLevel.RESOURCE:
            fail(leaf_path, "a value must be at a resource or resource instance path")
        if leaf_path in seen:
            fail(leaf_path, "duplicate value for the same path")
        seen.add(leaf_path)
        definition = resource_definition(model, leaf_path)
        iid, rid = leaf_path.ids[1], leaf_path.ids[2]
        _, holder = tree.setdefault(iid, {}).setdefault(
            rid, (definition, {} if definition.multiple else [])
        )
        if leaf_path.level is PathLevel.RESOURCE_INSTANCE:
            if not isinstance(holder, dict):
                fail(leaf_path, "resource instance of a single-instance resource")
            if leaf_path.ids[3] in holder:  # pragma: no cover - excluded by `seen`
                fail(leaf_path, "duplicate value for the same path")
            holder[leaf_path.ids[3]] = value
        else:
            if isinstance(holder, dict):
                fail(leaf_path, "a multiple-instance resource needs resource instance paths")
            holder.append(value)

    def make_resource(rid: int, definition: ResourceDefinition, holder: object) -> Resource:
        at = Path(*path.ids[:2], rid) if path.level >= PathLevel.OBJECT_INSTANCE else None
        try:
            if isinstance(holder, dict):
                return MultipleResource.of(rid, definition.type, holder)
            assert isinstance(holder, list)
            return SingleResource(rid, definition.type, holder[0])
        except ModelError as exc:  # pragma: no cover - values are typed by the caller
            fail(at, str(exc))

    def make_instance(iid: int) -> ObjectInstance:
        resources = tree.get(iid, {})
        return ObjectInstance(iid, [make_resource(r, d, h) for r, (d, h) in resources.items()])

    match path.level:
        case PathLevel.OBJECT:
            return ObjectNode(path.ids[0], [make_instance(iid) for iid in tree])
        case PathLevel.OBJECT_INSTANCE:
            return make_instance(path.ids[1])
        case PathLevel.RESOURCE:
            definition = resource_definition(model, path)
            entry = tree.get(path.ids[1], {}).get(path.ids[2])
            if entry is None:
                if definition.multiple:
                    return MultipleResource(path.ids[2], definition.type)
                fail(path, "no value for the resource")
            return make_resource(path.ids[2], *entry)
        case _:
            definition = resource_definition(model, path)
            if not definition.multiple:
                fail(path, "resource instance of a single-instance resource")
            entry = tree.get(path.ids[1], {}).get(path.ids[2])
            if entry is None:
                fail(path, "no value for the resource instance")
            holder = entry[1]
            assert isinstance(holder, dict)
            return ResourceInstance(path.ids[3], definition.type, holder[path.ids[3]])
