"""Nodes as plain JSON for people: values typed from the object model.

Not an LwM2M content format: the form in which the command line (``lwm2m decode``/``encode``)
and the REST API (:mod:`lwm2m.api`) show and take nodes, so both show a node alike.

The shape follows the path level:

- resource instance or single resource: the value;
- multiple resource: ``{"<instance id>": value, ...}``;
- object instance: ``{"<resource id>": value-or-instances, ...}``;
- object: ``{"<instance id>": {...}, ...}``.

Values: strings, numbers and booleans as JSON; Opaque as a hex string; Objlnk as ``"oid:iid"``;
Time as integer seconds. The model gives the type back when reading JSON, so the two directions
are inverses. Errors are :class:`~lwm2m.errors.CodecError` naming the path and never echoing an
Opaque value (it may be a key).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lwm2m.codec._common import resource_definition
from lwm2m.errors import CodecError, ModelError
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Path,
    PathLevel,
    ResourceInstance,
    ResourceType,
    SingleResource,
    Value,
    check_value,
)
from lwm2m.model.registry import ObjectModel

__all__ = ["node_from_json", "node_to_json", "value_from_json", "value_to_json"]


def value_to_json(value: Value) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, ObjectLink):
        return str(value)
    return value


def value_from_json(type_: ResourceType, data: Any, path: Path) -> Value:
    try:
        if type_ is ResourceType.OPAQUE and isinstance(data, str):
            return bytes.fromhex(data)
        if type_ is ResourceType.OBJLNK and isinstance(data, str):
            return ObjectLink.parse(data)
        return check_value(type_, data)
    except (ModelError, ValueError) as exc:
        # Opaque values may be keys (/0/x/5): never echo them.
        shown = "" if type_ is ResourceType.OPAQUE else f" {data!r}"
        raise CodecError(f"bad {type_.value} value{shown}: {exc}", path=str(path)) from None


def node_to_json(node: Node) -> Any:
    if isinstance(node, SingleResource | ResourceInstance):
        return value_to_json(node.value)
    if isinstance(node, MultipleResource):
        return {str(i): value_to_json(v.value) for i, v in node.instances.items()}
    if isinstance(node, ObjectInstance):
        return {str(r): node_to_json(res) for r, res in node.resources.items()}
    return {str(i): node_to_json(inst) for i, inst in node.instances.items()}


def _json_type(data: Any) -> str:
    """What a JSON value that is not an object is (the value itself is not shown)."""
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, int | float):
        return "a number"
    return "a string" if isinstance(data, str) else "an array"


def _mapping(data: Any, path: Path) -> Mapping[int, Any]:
    if not isinstance(data, dict):
        # the JSON type only: the value may hold an Opaque key
        raise CodecError(
            f"expected a JSON object keyed by ids, got {_json_type(data)}", path=str(path)
        )
    out: dict[int, Any] = {}
    for key, value in data.items():
        try:
            (out_id,) = Path.parse(f"/{key}").ids  # one id, nothing else
            out[out_id] = value
        except (ModelError, ValueError):
            raise CodecError(f"key {key!r} is not an id", path=str(path)) from None
    return out


def _instance_from_json(items: Mapping[int, Any], path: Path, model: ObjectModel) -> ObjectInstance:
    resources: list[SingleResource | MultipleResource] = []
    for rid, value in items.items():
        node = node_from_json(value, path.child(rid), model)
        assert isinstance(node, SingleResource | MultipleResource)
        resources.append(node)
    return ObjectInstance(path.ids[1], resources)


def node_from_json(data: Any, path: Path, model: ObjectModel) -> Node:
    """The node at ``path`` described by ``data`` (the shape of :func:`node_to_json`)."""
    match path.level:
        case PathLevel.RESOURCE_INSTANCE:
            res = resource_definition(model, path)
            if not res.multiple:
                raise CodecError("resource instance of a single-instance resource", path=str(path))
            return ResourceInstance(path.ids[3], res.type, value_from_json(res.type, data, path))
        case PathLevel.RESOURCE:
            res = resource_definition(model, path)
            if res.multiple:
                items = _mapping(data, path)
                return MultipleResource.of(
                    res.id,
                    res.type,
                    {i: value_from_json(res.type, v, path.child(i)) for i, v in items.items()},
                )
            return SingleResource(res.id, res.type, value_from_json(res.type, data, path))
        case PathLevel.OBJECT_INSTANCE:
            items = _mapping(data, path)
            return _instance_from_json(items, path, model)
        case PathLevel.OBJECT:
            items = _mapping(data, path)
            return ObjectNode(
                path.ids[0],
                [
                    _instance_from_json(_mapping(v, path.child(i)), path.child(i), model)
                    for i, v in items.items()
                ],
            )
    raise CodecError("the root path carries no node", path=str(path))
