"""LwM2M CBOR (CF 11544, ``application/vnd.oma.lwm2m+cbor``): LwM2M-TS-Core 1.2 §7.4.4.

A payload is one CBOR map whose keys are path fragments: an unsigned integer (one id) or an
array of 1..4 unsigned integers (several ids at once: "path compression"). A value is either a
nested map, continuing the path, or the resource (instance) value. The ids along the way add up
to the path (at most 4 ids, each 0..65534). ``{[3, 0]: {0: "OMA", 6: {0: 1, 1: 5}}}``,
``{3: {0: {0: "OMA"}}}`` and ``{[3, 0, 0]: "OMA"}`` all carry ``/3/0/0``. Facts checked against
Anjay's implementation (``anjay_lwm2m_cbor_in.c``/``_out.c`` and their tests); no code copied.

Values: Integer, Unsigned Integer and Time are CBOR integers (the decoder accepts integral
floats and decimal fractions, and date/time tags for Time); Float a double (half/single and
tag 4 accepted, non-finite values allowed); Boolean; String and Corelnk text strings; Opaque a
byte string; Objlnk the text ``"oid:iid"``; ``null`` a value-less entry (a Write-Composite
delete, LwM2M 1.2). An empty nested map names an empty container (object, instance or
multiple resource), which SenML cannot express.

Encoding (a decision; the TS allows many shapes): a node at request path P is
``{P: content}`` with P written as an integer when it has one id and as an array otherwise,
and content as maps keyed by single ids -- the shape Anjay writes, with definite lengths.
Composite maps (:meth:`Lwm2mCborCodec.encode_nodes`) nest every entry from the root:
``{3: {0: {0: "OMA", 9: 95}}, 1: {0: {1: 86400}}}``.

LwM2M 1.1 has no LwM2M CBOR; this codec serves 1.2 peers. Its composite methods mirror the
SenML ones (a Read-Composite response, Send, Write-Composite); there are no path lists or
timestamps in LwM2M CBOR, so it is not a :class:`~lwm2m.codec.base.CompositeCodec`.
Decoding raises only :class:`~lwm2m.errors.CodecError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cbor2

from lwm2m.codec._common import check_node_at, fail
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.senml import LeafTree, cbor_item_to_value, check_disjoint, group_nodes
from lwm2m.codec.senml_cbor import loads
from lwm2m.constants import MAX_ID
from lwm2m.errors import CodecError
from lwm2m.model.definitions import ResourceDefinition
from lwm2m.model.nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectNode,
    ResourceInstance,
    SingleResource,
)
from lwm2m.model.path import Path, PathLevel
from lwm2m.model.registry import ObjectModel
from lwm2m.model.values import ObjectLink, ResourceType, Value

__all__ = ["Lwm2mCborCodec"]

_RT = ResourceType


def _item(type_: ResourceType, value: Value, at: tuple[int, ...]) -> object:
    """The CBOR item of ``value`` (the resource at ``at``)."""
    if type_ is _RT.OBJLNK:
        assert isinstance(value, ObjectLink)
        return str(value)
    if type_ is _RT.NONE:
        fail(Path(*at), "an executable resource carries no value")
    return value


class _Walk:
    """Collects the leaves, nulls and empty containers of a decoded payload into a tree."""

    __slots__ = ("nones", "terminals", "tree", "within")

    def __init__(self, model: ObjectModel, within: Path | None) -> None:
        self.tree = LeafTree(model)
        self.nones: dict[Path, None] = {}
        self.terminals: list[tuple[int, ...]] = []
        self.within = within

    def _check_within(self, ids: tuple[int, ...]) -> None:
        within = self.within
        if within is not None and ids[: len(within.ids)] != within.ids:
            fail(Path(*ids), f"lies outside the request path {within}")

    def map(self, item: dict[Any, Any], ids: tuple[int, ...]) -> None:
        if not item:
            self.container(ids)
            return
        for key, value in item.items():
            sub = _key_ids(key, ids)
            if type(value) is dict:
                self.map(value, sub)
            else:
                self.leaf(value, sub)

    def container(self, ids: tuple[int, ...]) -> None:
        if not ids:
            return  # {} at the top: an empty payload
        self._check_within(ids)
        if len(ids) == 4:
            fail(Path(*ids), "a resource instance holds a value, not a map")
        if len(ids) == 3:
            self.tree.definition(ids)  # an unknown resource is an error here too
        self.tree.add_container(ids)
        self.terminals.append(ids)

    def leaf(self, item: object, ids: tuple[int, ...]) -> None:
        self._check_within(ids)
        if item is None:
            path = Path(*ids)
            if path in self.nones:
                fail(path, "duplicate value for the same path")
            self.nones[path] = None
            return
        if len(ids) < 3:
            fail(Path(*ids), "a value must be at a resource or resource instance path")
        definition: ResourceDefinition = self.tree.definition(ids)
        try:
            value = cbor_item_to_value(definition.type, item)
        except ValueError as exc:
            fail(Path(*ids), f"wrong type for resource: {exc}")
        self.tree.add(ids, definition, value)
        self.terminals.append(ids)


def _key_ids(key: object, ids: tuple[int, ...]) -> tuple[int, ...]:
    """``ids`` extended by the path fragment ``key`` (an id or a non-empty array of ids)."""
    if type(key) is int:
        fragment: tuple[Any, ...] = (key,)
    elif type(key) is tuple and key:
        fragment = key
    else:
        where = Path(*ids) if ids else Path()
        fail(where, f"a path key is an id or a non-empty array of ids, not {_show(key)}")
    for i in fragment:
        if type(i) is not int or not 0 <= i < MAX_ID:
            fail(Path(*ids) if ids else Path(), f"invalid id {_show(i)} in a path key")
    if len(ids) + len(fragment) > 4:
        text = "/".join(map(str, ids + fragment))
        raise CodecError(f"path /{text[:60]} has more than 4 ids")
    return ids + fragment


def _show(item: object) -> str:
    text = repr(item)
    return text if len(text) <= 40 else text[:37] + "..."


class Lwm2mCborCodec:
    """LwM2M CBOR node codec, plus the composite node maps of LwM2M 1.2."""

    content_format = ContentFormat.LWM2M_CBOR

    # -- encoding --------------------------------------------------------------------------------

    def _content(
        self, node: Node, ids: tuple[int, ...], defs: Mapping[int, ResourceDefinition]
    ) -> Any:
        """The CBOR content of ``node`` at ``ids``: nested maps keyed by single ids."""
        if type(node) is ObjectNode:
            return {
                iid: self._content(inst, (*ids, iid), defs) for iid, inst in node.instances.items()
            }
        if type(node) is ObjectInstance:
            return {
                rid: self._resource(res, (*ids, rid), defs) for rid, res in node.resources.items()
            }
        return self._resource(node, ids, defs)  # type: ignore[arg-type]

    def _resource(
        self,
        node: SingleResource | MultipleResource | ResourceInstance,
        ids: tuple[int, ...],
        defs: Mapping[int, ResourceDefinition],
    ) -> Any:
        definition = defs.get(ids[2])
        multiple = type(node) is not SingleResource
        if definition is not None and (
            definition.type is not node.type or definition.multiple is not multiple
        ):
            if definition.type is not node.type:
                fail(
                    Path(*ids),
                    f"wrong type for resource: {node.type.value}, the model says"
                    f" {definition.type.value}",
                )
            kind = "multiple" if definition.multiple else "single"
            fail(Path(*ids), f"the model says this is a {kind}-instance resource")
        type_ = node.type
        if type(node) is MultipleResource:
            if type_ is _RT.OBJLNK or type_ is _RT.NONE:
                return {
                    riid: _item(type_, ri.value, (*ids, riid))
                    for riid, ri in node.instances.items()
                }
            return {riid: ri.value for riid, ri in node.instances.items()}
        return _item(type_, node.value, ids)  # type: ignore[union-attr]

    def _definitions(self, model: ObjectModel, path: Path) -> Mapping[int, ResourceDefinition]:
        definition = model.object_definition(path.ids[0]) if path.ids else None
        return definition.resources if definition is not None else {}

    def _dumps(self, payload: dict[Any, Any]) -> bytes:
        try:
            return cbor2.dumps(payload)
        except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:  # pragma: no cover
            raise CodecError(f"cannot serialize LwM2M CBOR: {exc}") from None

    def encode(self, node: Node, path: Path, model: ObjectModel) -> bytes:
        """``{P: content}``: P an integer for an object path, else an array of ids."""
        check_node_at(node, path)
        key: Any = path.ids[0] if path.level is PathLevel.OBJECT else path.ids
        return self._dumps({key: self._content(node, path.ids, self._definitions(model, path))})

    def encode_nodes(self, nodes: Mapping[Path, Node | None], model: ObjectModel) -> bytes:
        """A composite node map nested from the root; None is ``null`` (a delete)."""
        check_disjoint(nodes)
        root: dict[int, Any] = {}
        for path, node in nodes.items():
            if path.level is PathLevel.ROOT:
                fail(path, "the root path carries no node in this format")
            content: Any = None
            if node is not None:
                check_node_at(node, path)
                content = self._content(node, path.ids, self._definitions(model, path))
            holder = root
            for i in path.ids[:-1]:
                holder = holder.setdefault(i, {})
            holder[path.ids[-1]] = content
        return self._dumps(root)

    # -- decoding --------------------------------------------------------------------------------

    def _walk(self, data: bytes, model: ObjectModel, within: Path | None = None) -> _Walk:
        walk = _Walk(model, within)
        if not data:
            return walk
        item = loads(data, "LwM2M CBOR")
        if type(item) is not dict:
            raise CodecError(f"LwM2M CBOR is a map, not a {type(item).__name__}")
        walk.map(item, ())
        return walk

    def decode(self, data: bytes, path: Path, model: ObjectModel) -> Node:
        """Decode the content of ``path``; every path in the payload must lie under it."""
        if path.level is PathLevel.ROOT:
            fail(path, "the root path carries no node in this format")
        walk = self._walk(data, model, path)
        if walk.nones:
            fail(next(iter(walk.nones)), "null is only allowed in a composite payload")
        return walk.tree.node(path)

    def decode_nodes(
        self, data: bytes, model: ObjectModel, *, paths: Sequence[Path] | None = None
    ) -> dict[Path, Node | None]:
        """A composite node map; ``null`` decodes to None. See
        :meth:`lwm2m.codec.senml.SenmlCodec.decode_nodes` for ``paths``."""
        walk = self._walk(data, model)
        terminals = set(walk.terminals)
        for path in walk.nones:
            if path.ids in terminals:
                fail(path, "duplicate value for the same path")
        return group_nodes(walk.tree, walk.terminals, walk.nones, paths)
