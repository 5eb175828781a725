"""LwM2M TLV (CoAP Content-Format 11542, application/vnd.oma.lwm2m+tlv): LwM2M-TS-Core 1.1
§7.4.3 (the binary layout and its examples) and Appendix C (value encodings).

Two levels, as Leshan's ``tlv`` and ``node.codec.tlv`` packages:

* **Raw framing** — :class:`Tlv`, :func:`pull_tlv`/:func:`push_tlv`, :func:`decode_tlvs` /
  :func:`encode_tlvs` — knows nothing of the model. Each TLV is a type byte, an 8- or 16-bit
  identifier, a 0 to 24-bit length and a value::

      bits 7-6  00 Object Instance   01 Resource Instance   10 Multiple Resource   11 Resource
      bit  5    identifier width: 0 = 8 bits, 1 = 16 bits
      bits 4-3  length width: 00 = length in bits 2-0, 01 = 8, 10 = 16, 11 = 24 bits

  An Object Instance TLV holds Resource and Multiple Resource TLVs; a Multiple Resource TLV holds
  Resource Instance TLVs; nothing nests deeper.
* **Mapping** — :class:`TlvCodec` — takes the request path and the model:

  - at an object path every instance is wrapped in an Object Instance TLV (mandatory);
  - at an instance path the resources appear without wrapper; a single Object Instance TLV
    with the path's instance id is accepted on decode (as Leshan does);
  - a multiple-instance resource is always a Multiple Resource TLV (also at a resource path);
    on decode, bare Resource Instance TLVs at a resource path are accepted too (Leshan);
  - a resource-instance path carries one Resource Instance TLV.

Value encodings (Appendix C): Integer and Time are two's complement in the smallest of 1/2/4/8
bytes that fits; Unsigned Integer the smallest of 1/2/4/8 unsigned bytes; Float 4 bytes when the
value is exactly a float32, else 8 (both decoded); Boolean one byte 0 or 1; Objlnk two uint16
(object id, instance id); String UTF-8; Opaque and Corelnk raw bytes / UTF-8 text.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from lwm2m.buffer import Buffer
from lwm2m.codec._common import check_node_at, fail, resource_definition, typed
from lwm2m.codec.content_format import ContentFormat
from lwm2m.constants import MAX_ID
from lwm2m.errors import BufferReadError, CodecError
from lwm2m.model.definitions import ResourceDefinition
from lwm2m.model.nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectNode,
    Resource,
    ResourceInstance,
    SingleResource,
    trusted_multiple,
    trusted_object,
    trusted_object_instance,
    trusted_resource_instance,
    trusted_single,
)
from lwm2m.model.path import Path, PathLevel
from lwm2m.model.registry import ObjectModel
from lwm2m.model.values import ObjectLink, ResourceType, Value

__all__ = [
    "MAX_LENGTH",
    "Tlv",
    "TlvCodec",
    "TlvType",
    "decode_tlvs",
    "decode_value",
    "encode_tlvs",
    "encode_value",
    "pull_tlv",
    "push_tlv",
]

#: The largest value a TLV can carry (24-bit length field).
MAX_LENGTH = 0xFFFFFF

_F32 = struct.Struct("!f")
_F64 = struct.Struct("!d")
_OBJLNK = struct.Struct("!HH")


class TlvType(IntEnum):
    """Bits 7-6 of the TLV type byte."""

    OBJECT_INSTANCE = 0
    RESOURCE_INSTANCE = 1
    MULTIPLE_RESOURCE = 2
    RESOURCE_VALUE = 3

    @property
    def label(self) -> str:
        """The TS's name, for messages: ``"Object Instance"``, ``"Resource"``, ..."""
        return _LABELS[self]


_LABELS = {
    TlvType.OBJECT_INSTANCE: "Object Instance",
    TlvType.RESOURCE_INSTANCE: "Resource Instance",
    TlvType.MULTIPLE_RESOURCE: "Multiple Resource",
    TlvType.RESOURCE_VALUE: "Resource",
}

#: What each container TLV may hold (LwM2M-TS-Core §7.4.3, TLV nesting).
_CHILDREN: dict[TlvType, frozenset[TlvType]] = {
    TlvType.OBJECT_INSTANCE: frozenset({TlvType.RESOURCE_VALUE, TlvType.MULTIPLE_RESOURCE}),
    TlvType.MULTIPLE_RESOURCE: frozenset({TlvType.RESOURCE_INSTANCE}),
}
_ANY = frozenset(TlvType)


@dataclass(frozen=True, slots=True)
class Tlv:
    """One TLV record: a container (Object Instance, Multiple Resource) has ``children``, a leaf
    (Resource, Resource Instance) has a raw ``value``.

    >>> encode_tlvs([Tlv(TlvType.RESOURCE_VALUE, 1, b"\\x05")]).hex()
    'c10105'
    """

    type: TlvType
    id: int
    value: bytes = b""
    children: tuple[Tlv, ...] = ()

    def __post_init__(self) -> None:
        if type(self.id) is not int or not 0 <= self.id <= 0xFFFF:
            raise CodecError(f"TLV id {self.id!r} is not a 16-bit unsigned integer")
        if self.is_container and self.value:
            raise CodecError(f"a {self.type.label} TLV holds TLVs, not a value")
        if not self.is_container and self.children:
            raise CodecError(f"a {self.type.label} TLV holds a value, not TLVs")
        for child in self.children:
            if child.type not in _CHILDREN[self.type]:
                raise CodecError(f"a {self.type.label} TLV cannot hold a {child.type.label} TLV")

    @property
    def is_container(self) -> bool:
        return self.type in _CHILDREN


def pull_tlv(buf: Buffer, allowed: frozenset[TlvType] = _ANY) -> Tlv:
    """Read one TLV (and, for a container, its children) from ``buf``.

    ``allowed`` are the kinds that may appear here; any other kind is refused before its content
    is read, which bounds the nesting. Raises BufferReadError when the data ends too early and
    CodecError for a TLV of the wrong kind.
    """
    type_byte = buf.pull_uint8()
    kind = TlvType(type_byte >> 6)
    if kind not in allowed:
        raise CodecError(f"unexpected {kind.label} TLV at offset {buf.tell() - 1}")
    ident = buf.pull_uint16() if type_byte & 0x20 else buf.pull_uint8()
    length_width = (type_byte >> 3) & 0x03
    # With a length field, bits 2-0 are unused (ignored, as Leshan and wakaama do).
    length = buf.pull_uint(length_width) if length_width else type_byte & 0x07
    if kind not in _CHILDREN:
        return Tlv(kind, ident, buf.pull_bytes(length))
    children: list[Tlv] = []
    with buf.pull_block(length):
        while not buf.eof():
            children.append(pull_tlv(buf, _CHILDREN[kind]))
    return Tlv(kind, ident, children=tuple(children))


def push_tlv(buf: Buffer, tlv: Tlv) -> None:
    """Write ``tlv`` with the shortest identifier and length fields."""
    if tlv.is_container:
        inner = Buffer()
        for child in tlv.children:
            push_tlv(inner, child)
        value = inner.data
    else:
        value = tlv.value
    length = len(value)
    if length > MAX_LENGTH:
        raise CodecError(f"a TLV value of {length} bytes exceeds the 24-bit length field")
    type_byte = tlv.type << 6 | (0x20 if tlv.id > 0xFF else 0)
    if length <= 7:
        type_byte |= length
        width = 0
    else:
        width = 1 if length <= 0xFF else 2 if length <= 0xFFFF else 3
        type_byte |= width << 3
    buf.push_uint8(type_byte)
    buf.push_uint(tlv.id, 2 if tlv.id > 0xFF else 1)
    if width:
        buf.push_uint(length, width)
    buf.push_bytes(value)


def decode_tlvs(data: bytes) -> list[Tlv]:
    """Every top-level TLV of ``data``; CodecError (without a path) when it is malformed."""
    buf = Buffer(data)
    tlvs: list[Tlv] = []
    try:
        while not buf.eof():
            tlvs.append(pull_tlv(buf))
    except BufferReadError as exc:
        raise CodecError(f"truncated TLV ({exc})") from None
    return tlvs


def encode_tlvs(tlvs: Iterable[Tlv]) -> bytes:
    """The concatenated encodings of ``tlvs``."""
    buf = Buffer()
    for tlv in tlvs:
        push_tlv(buf, tlv)
    return buf.data


# -- values (Appendix C) ----------------------------------------------------------------------


def _int_width(value: int, signed: bool) -> int:
    for width in (1, 2, 4):
        bound = 1 << (8 * width - (1 if signed else 0))
        if (-bound if signed else 0) <= value < bound:
            return width
    return 8


def encode_value(path: Path, type_: ResourceType, value: Value) -> bytes:
    """The TLV value bytes of ``value`` (a valid ``type_`` value) for the resource at ``path``."""
    match type_:
        case ResourceType.STRING | ResourceType.CORELNK:
            assert isinstance(value, str)
            try:
                return value.encode("utf-8")
            except UnicodeEncodeError:
                fail(path, "String value is not valid Unicode (lone surrogate)")
        case ResourceType.INTEGER | ResourceType.TIME:
            assert isinstance(value, int)
            return value.to_bytes(_int_width(value, True), "big", signed=True)
        case ResourceType.UNSIGNED_INTEGER:
            assert isinstance(value, int)
            return value.to_bytes(_int_width(value, False), "big")
        case ResourceType.FLOAT:
            assert isinstance(value, float)
            try:
                single = _F32.pack(value)
            except OverflowError:
                return _F64.pack(value)
            exact = _F32.unpack(single)[0] == value or math.isnan(value)
            return single if exact else _F64.pack(value)
        case ResourceType.BOOLEAN:
            return b"\x01" if value else b"\x00"
        case ResourceType.OBJLNK:
            assert isinstance(value, ObjectLink)
            return _OBJLNK.pack(value.object_id, value.instance_id)
        case ResourceType.OPAQUE:
            assert isinstance(value, bytes)
            return value
        case _:
            fail(path, "an executable resource carries no value")


def decode_value(path: Path, type_: ResourceType, raw: bytes) -> Value:
    """The ``type_`` value of TLV value bytes ``raw``; CodecError naming ``path`` if invalid."""
    size = len(raw)
    match type_:
        case ResourceType.STRING | ResourceType.CORELNK:
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                fail(path, f"{type_.value} value is not valid UTF-8 (byte {exc.start})")
        case ResourceType.INTEGER | ResourceType.TIME | ResourceType.UNSIGNED_INTEGER:
            if size not in (1, 2, 4, 8):
                fail(path, f"{type_.value} value of {size} bytes; expected 1, 2, 4 or 8")
            return int.from_bytes(raw, "big", signed=type_ is not ResourceType.UNSIGNED_INTEGER)
        case ResourceType.FLOAT:
            if size == 4:
                return float(_F32.unpack(raw)[0])
            if size == 8:
                return float(_F64.unpack(raw)[0])
            fail(path, f"Float value of {size} bytes; expected 4 or 8")
        case ResourceType.BOOLEAN:
            if raw not in (b"\x00", b"\x01"):
                fail(path, f"Boolean value {raw.hex() or 'of 0 bytes'}; expected one byte 0 or 1")
            return raw == b"\x01"
        case ResourceType.OBJLNK:
            if size != 4:
                fail(path, f"Objlnk value of {size} bytes; expected 4")
            return ObjectLink(*_OBJLNK.unpack(raw))
        case ResourceType.OPAQUE:
            return raw
        case _:
            fail(path, "an executable resource carries no value")


# -- mapping ------------------------------------------------------------------------------------


_RESOURCE_TLVS = frozenset({TlvType.RESOURCE_VALUE, TlvType.MULTIPLE_RESOURCE})


class TlvCodec:
    """LwM2M TLV (CF 11542) for every node kind."""

    content_format = ContentFormat.TLV

    # -- encode ---------------------------------------------------------------------------------

    def encode(self, node: Node, path: Path, model: ObjectModel) -> bytes:
        check_node_at(node, path)
        try:
            return _fast_encode(node, path, model)
        except _Fallback:
            pass
        return self._encode_general(node, path, model)

    def _encode_general(self, node: Node, path: Path, model: ObjectModel) -> bytes:
        """Through :class:`Tlv` records: the reference the fast path must agree with, and what
        raises the errors."""
        tlvs: list[Tlv]
        if isinstance(node, ObjectNode):
            tlvs = [
                Tlv(TlvType.OBJECT_INSTANCE, iid, children=self._instance_tlvs(inst, path, model))
                for iid, inst in node.instances.items()
            ]
        elif isinstance(node, ObjectInstance):
            tlvs = list(self._instance_tlvs(node, path.parent, model))
        elif isinstance(node, ResourceInstance):
            self._check_model(path, node.type, None, model)
            value = encode_value(path, node.type, node.value)
            tlvs = [Tlv(TlvType.RESOURCE_INSTANCE, node.id, value)]
        else:
            tlvs = [self._resource_tlv(node, path, model)]
        return encode_tlvs(tlvs)

    def _instance_tlvs(
        self, instance: ObjectInstance, object_path: Path, model: ObjectModel
    ) -> tuple[Tlv, ...]:
        at = object_path.child(instance.id)
        return tuple(
            self._resource_tlv(res, at.child(rid), model) for rid, res in instance.resources.items()
        )

    def _resource_tlv(self, resource: Resource, path: Path, model: ObjectModel) -> Tlv:
        multiple = isinstance(resource, MultipleResource)
        self._check_model(path, resource.type, multiple, model)
        if isinstance(resource, SingleResource):
            value = encode_value(path, resource.type, resource.value)
            return Tlv(TlvType.RESOURCE_VALUE, resource.id, value)
        children = tuple(
            Tlv(TlvType.RESOURCE_INSTANCE, ri, encode_value(path.child(ri), inst.type, inst.value))
            for ri, inst in resource.instances.items()
        )
        return Tlv(TlvType.MULTIPLE_RESOURCE, resource.id, children=children)

    @staticmethod
    def _check_model(
        path: Path, type_: ResourceType, multiple: bool | None, model: ObjectModel
    ) -> None:
        """A resource the model knows must have its type and multiplicity (``multiple`` is None
        for a resource instance)."""
        definition = model.object_definition(path.ids[0])
        resource = definition.resource(path.ids[2]) if definition is not None else None
        if resource is None:
            return
        if resource.type is not type_:
            fail(
                path,
                f"wrong type for resource: {type_.value}, the model says {resource.type.value}",
            )
        if multiple is None and not resource.multiple:
            fail(path, "resource instance of a single-instance resource")
        if multiple is not None and resource.multiple != multiple:
            if multiple:
                fail(path, "a multiple-instance value for a single-instance resource")
            fail(path, "a single value for a multiple-instance resource")

    # -- decode ---------------------------------------------------------------------------------

    def decode(self, data: bytes, path: Path, model: ObjectModel) -> Node:
        if path.level is PathLevel.ROOT:
            fail(path, "the root path carries no node in TLV")
        data = bytes(data)
        try:
            return _fast_decode(data, path, model)
        except _Fallback:
            pass
        return self._decode_general(data, path, model)

    def decode_known(
        self, data: bytes, path: Path, model: ObjectModel
    ) -> tuple[Node, tuple[Path, ...]]:
        """:meth:`decode` of an object or object instance, leaving out the Resource and
        Multiple Resource TLVs that ``model`` does not define (a Bootstrap-Write ignores the
        optional resources the client does not support, Core §6.1.7.4). Returns the node and
        the resource paths left out."""
        if path.level is PathLevel.ROOT:
            fail(path, "the root path carries no node in TLV")
        tlvs = self._tlvs(data, path)
        definition = model.object_definition(path.ids[0])
        left_out: list[Path] = []
        if definition is None or path.level > PathLevel.OBJECT_INSTANCE:
            return self._node(tlvs, path, model), ()

        def known(children: Sequence[Tlv], at: Path) -> list[Tlv]:
            kept = []
            for tlv in children:
                if tlv.type in _RESOURCE_TLVS and definition.resource(tlv.id) is None:
                    left_out.append(at.child(tlv.id))
                else:
                    kept.append(tlv)
            return kept

        filtered = []
        for tlv in tlvs:
            if tlv.type is TlvType.OBJECT_INSTANCE:
                at = Path(path.ids[0], tlv.id)
                tlv = Tlv(tlv.type, tlv.id, children=tuple(known(tlv.children, at)))
                filtered.append(tlv)
            else:
                filtered.extend(known([tlv], path))
        return self._node(filtered, path, model), tuple(left_out)

    def _decode_general(self, data: bytes, path: Path, model: ObjectModel) -> Node:
        """Through :class:`Tlv` records: the reference the fast path must agree with, and what
        names the errors."""
        return self._node(self._tlvs(data, path), path, model)

    @staticmethod
    def _tlvs(data: bytes, path: Path) -> list[Tlv]:
        try:
            return decode_tlvs(bytes(data))
        except CodecError as exc:
            fail(path, f"invalid TLV: {exc}")

    def _node(self, tlvs: list[Tlv], path: Path, model: ObjectModel) -> Node:
        if model.object_definition(path.ids[0]) is None:
            fail(path, f"unknown object {path.ids[0]}")
        _check_ids(tlvs, path)
        if path.level is PathLevel.OBJECT:
            return self._object(tlvs, path, model)
        tlvs = _unwrap(tlvs, TlvType.OBJECT_INSTANCE, Path(*path.ids[:2]))
        if path.level is PathLevel.OBJECT_INSTANCE:
            return self._instance(tlvs, path, model)
        definition = resource_definition(model, path)
        if path.level is PathLevel.RESOURCE:
            return self._resource_at(tlvs, path, definition)
        if not definition.multiple:
            fail(path, "resource instance of a single-instance resource")
        tlvs = _unwrap(tlvs, TlvType.MULTIPLE_RESOURCE, path.parent)
        match tlvs:
            case [Tlv(type=TlvType.RESOURCE_INSTANCE) as tlv]:
                _same_id(tlv, path)
                return ResourceInstance(tlv.id, definition.type, _value(tlv, path, definition))
            case []:
                fail(path, "no value for the resource instance")
            case _:
                fail(path, "a resource-instance path needs exactly one Resource Instance TLV")

    def _object(self, tlvs: Sequence[Tlv], path: Path, model: ObjectModel) -> ObjectNode:
        instances: dict[int, ObjectInstance] = {}
        for tlv in tlvs:
            if tlv.type is not TlvType.OBJECT_INSTANCE:
                fail(path, f"an object path needs Object Instance TLVs, got a {tlv.type.label} TLV")
            at = path.child(tlv.id)
            if tlv.id in instances:
                fail(at, "duplicate object instance")
            instances[tlv.id] = self._instance(tlv.children, at, model)
        return ObjectNode(path.ids[0], instances)

    def _instance(self, tlvs: Sequence[Tlv], path: Path, model: ObjectModel) -> ObjectInstance:
        resources: dict[int, Resource] = {}
        for tlv in tlvs:
            at = path.child(tlv.id)
            if tlv.type not in (TlvType.RESOURCE_VALUE, TlvType.MULTIPLE_RESOURCE):
                fail(
                    path,
                    "an object instance holds Resource and Multiple Resource TLVs, "
                    f"not a {tlv.type.label} TLV",
                )
            if tlv.id in resources:
                fail(at, "duplicate resource")
            resources[tlv.id] = self._resource_at([tlv], at, resource_definition(model, at))
        return ObjectInstance(path.ids[1], resources)

    def _resource_at(
        self, tlvs: Sequence[Tlv], path: Path, definition: ResourceDefinition
    ) -> Resource:
        if not definition.multiple:
            match tlvs:
                case [Tlv(type=TlvType.RESOURCE_VALUE) as tlv]:
                    _same_id(tlv, path)
                    return SingleResource(tlv.id, definition.type, _value(tlv, path, definition))
                case [Tlv(type=TlvType.MULTIPLE_RESOURCE)]:
                    fail(path, "a Multiple Resource TLV for a single-instance resource")
                case []:
                    fail(path, "no value for the resource")
                case _:
                    fail(path, "a single-instance resource needs exactly one Resource TLV")
        match tlvs:
            case [Tlv(type=TlvType.MULTIPLE_RESOURCE) as tlv]:
                _same_id(tlv, path)
                instances = tlv.children
            case [Tlv(type=TlvType.RESOURCE_VALUE)]:
                fail(path, "a Resource TLV for a multiple-instance resource")
            case _ if all(t.type is TlvType.RESOURCE_INSTANCE for t in tlvs):
                instances = tuple(tlvs)  # bare Resource Instance TLVs (accepted, as Leshan)
            case _:
                fail(path, "a multiple-instance resource needs one Multiple Resource TLV")
        values: dict[int, ResourceInstance] = {}
        for inst in instances:
            at = path.child(inst.id)
            if inst.id in values:
                fail(at, "duplicate resource instance")
            values[inst.id] = ResourceInstance(
                inst.id, definition.type, _value(inst, at, definition)
            )
        return MultipleResource(path.ids[2], definition.type, values)


def _value(tlv: Tlv, path: Path, definition: ResourceDefinition) -> Value:
    return typed(path, definition.type, decode_value(path, definition.type, tlv.value))


def _same_id(tlv: Tlv, path: Path) -> None:
    if tlv.id != path.ids[-1]:
        fail(path, f"{tlv.type.label} TLV has id {tlv.id}, the path says {path.ids[-1]}")


def _unwrap(tlvs: list[Tlv], kind: TlvType, at: Path) -> list[Tlv]:
    """The children of a single ``kind`` TLV wrapping the content of ``at`` (which must have the
    id of ``at``), or ``tlvs`` when there is no wrapper."""
    if len(tlvs) == 1 and tlvs[0].type is kind:
        _same_id(tlvs[0], at)
        return list(tlvs[0].children)
    if any(t.type is kind for t in tlvs):
        fail(at, f"unexpected {kind.label} TLV among the content")
    return tlvs


def _check_ids(tlvs: Iterable[Tlv], path: Path) -> None:
    """Ids are 0..65534: 65535 (MAX_ID) is reserved (LwM2M-TS-Core §7.1)."""
    for tlv in tlvs:
        if tlv.id == MAX_ID:
            fail(path, f"{tlv.type.label} TLV id {MAX_ID} is reserved")
        _check_ids(tlv.children, path)


# -- fast paths ---------------------------------------------------------------------------------
# TLV is what 1.0 clients send by default, so decoding and encoding must be cheap. The fast
# paths work on the bytes directly (no Tlv records, no Buffer) and build nodes with the model's
# trusted constructors, the values being decoded and checked here. They handle object and
# instance payloads (and, when encoding, resources) of the usual shape; on anything unusual or
# invalid they raise _Fallback and the general path above decides, names the error if there is
# one. Property tests (tests/codec/test_tlv.py) check that both paths agree.


class _Fallback(Exception):
    """The fast path met something unusual; the general path decides."""


_RT = ResourceType


def _decode_signed(raw: bytes) -> int:
    if len(raw) not in (1, 2, 4, 8):
        raise ValueError
    return int.from_bytes(raw, "big", signed=True)


def _decode_unsigned(raw: bytes) -> int:
    if len(raw) not in (1, 2, 4, 8):
        raise ValueError
    return int.from_bytes(raw, "big")


def _decode_float(raw: bytes) -> float:
    if len(raw) == 8:
        return float(_F64.unpack(raw)[0])
    return float(_F32.unpack(raw)[0])  # struct.error unless 4 bytes


def _decode_objlnk(raw: bytes) -> ObjectLink:
    return ObjectLink(*_OBJLNK.unpack(raw))


_BOOLEANS = {b"\x00": False, b"\x01": True}

# Resource type -> raw value bytes to a checked value; raises ValueError (UnicodeDecodeError),
# LookupError or struct.error for an invalid value. No entry for NONE (no value).
_DECODERS: dict[ResourceType, Callable[[bytes], Value]] = {
    _RT.STRING: bytes.decode,
    _RT.CORELNK: bytes.decode,
    _RT.INTEGER: _decode_signed,
    _RT.TIME: _decode_signed,
    _RT.UNSIGNED_INTEGER: _decode_unsigned,
    _RT.FLOAT: _decode_float,
    _RT.BOOLEAN: _BOOLEANS.__getitem__,
    _RT.OBJLNK: _decode_objlnk,
    _RT.OPAQUE: bytes,
}
_DECODE_ERRORS = (ValueError, LookupError, struct.error, TypeError)


def _header(data: bytes, pos: int, limit: int) -> tuple[int, int, int, int]:
    """The TLV at ``pos``: (kind, id, value start, value end); _Fallback when it does not fit
    before ``limit`` (IndexError when the data ends inside the header)."""
    type_byte = data[pos]
    if type_byte & 0x20:
        ident = data[pos + 1] << 8 | data[pos + 2]
        pos += 3
    else:
        ident = data[pos + 1]
        pos += 2
    width = type_byte & 0x18
    if not width:
        length = type_byte & 0x07
    elif width == 0x08:
        length = data[pos]
        pos += 1
    elif width == 0x10:
        length = data[pos] << 8 | data[pos + 1]
        pos += 2
    else:
        length = data[pos] << 16 | data[pos + 1] << 8 | data[pos + 2]
        pos += 3
    end = pos + length
    if end > limit or ident == MAX_ID:  # beyond its container, or the reserved id
        raise _Fallback
    return type_byte >> 6, ident, pos, end


def _fast_instance(
    data: bytes, pos: int, end: int, iid: int, rdefs: Mapping[int, ResourceDefinition]
) -> ObjectInstance:
    """The Resource and Multiple Resource TLVs in ``data[pos:end]`` as instance ``iid``."""
    resources: dict[int, Resource] = {}
    last = -1
    ordered = True
    while pos < end:
        kind, rid, start, stop = _header(data, pos, end)
        if rid in resources:
            raise _Fallback
        definition = rdefs[rid]
        rtype = definition.type
        decode = _DECODERS[rtype]
        if kind == 3 and not definition.multiple:
            resources[rid] = trusted_single(rid, rtype, decode(data[start:stop]))
        elif kind == 2 and definition.multiple:
            instances: dict[int, ResourceInstance] = {}
            while start < stop:
                kind, riid, value_start, value_end = _header(data, start, stop)
                if kind != 1 or riid in instances:
                    raise _Fallback
                value = decode(data[value_start:value_end])
                instances[riid] = trusted_resource_instance(riid, rtype, value)
                start = value_end
            resources[rid] = trusted_multiple(rid, rtype, instances)
        else:
            raise _Fallback
        if rid < last:
            ordered = False
        last = rid
        pos = stop
    return trusted_object_instance(iid, resources, ordered)


def _fast_decode(data: bytes, path: Path, model: ObjectModel) -> Node:
    """Decode an object or instance payload, or raise _Fallback."""
    ids = path.ids
    if len(ids) > 2:
        raise _Fallback
    definition = model.object_definition(ids[0])
    if definition is None:
        raise _Fallback
    rdefs = definition.resources
    end = len(data)
    try:
        if len(ids) == 2:
            pos = 0
            if end and data[0] >> 6 == 0:  # one Object Instance TLV around the content
                _, iid, pos, stop = _header(data, 0, end)
                if iid != ids[1] or stop != end:
                    raise _Fallback
            return _fast_instance(data, pos, end, ids[1], rdefs)
        instances: dict[int, ObjectInstance] = {}
        pos = 0
        while pos < end:
            kind, iid, start, pos = _header(data, pos, end)
            if kind != 0 or iid in instances:
                raise _Fallback
            instances[iid] = _fast_instance(data, start, pos, iid, rdefs)
        return trusted_object(ids[0], instances)
    except _DECODE_ERRORS:
        raise _Fallback from None


_BB = struct.Struct("!BB").pack
_BH = struct.Struct("!BH").pack
_BBB = struct.Struct("!BBB").pack
_BHB = struct.Struct("!BHB").pack
_BBH = struct.Struct("!BBH").pack
_BHH = struct.Struct("!BHH").pack


def _head(bits: int, ident: int, length: int) -> bytes:
    """The type, identifier and length fields of a TLV (``bits``: the kind in bits 7-6), each
    as short as possible, as :func:`push_tlv` writes them."""
    wide = ident > 0xFF
    if length <= 7:
        return _BH(bits | 0x20 | length, ident) if wide else _BB(bits | length, ident)
    if length <= 0xFF:
        return _BHB(bits | 0x28, ident, length) if wide else _BBB(bits | 0x08, ident, length)
    if length <= 0xFFFF:
        return _BHH(bits | 0x30, ident, length) if wide else _BBH(bits | 0x10, ident, length)
    if length > MAX_LENGTH:
        raise _Fallback
    head = _BH(bits | 0x38, ident) if wide else _BB(bits | 0x18, ident)
    return head + length.to_bytes(3, "big")


def _encode_signed(value: int) -> bytes:
    if -0x80 <= value < 0x80:
        width = 1
    elif -0x8000 <= value < 0x8000:
        width = 2
    elif -0x80000000 <= value < 0x80000000:
        width = 4
    else:
        width = 8
    return value.to_bytes(width, "big", signed=True)


def _encode_unsigned(value: int) -> bytes:
    width = 1 if value <= 0xFF else 2 if value <= 0xFFFF else 4 if value <= 0xFFFFFFFF else 8
    return value.to_bytes(width, "big")


def _encode_float(value: float) -> bytes:
    try:
        single = _F32.pack(value)
    except OverflowError:
        return _F64.pack(value)
    if _F32.unpack(single)[0] == value or value != value:  # exact, or NaN
        return single
    return _F64.pack(value)


def _encode_bool(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def _encode_objlnk(value: ObjectLink) -> bytes:
    return _OBJLNK.pack(value.object_id, value.instance_id)


# Resource type -> value to TLV value bytes (what encode_value returns); no entry for NONE.
_ENCODERS: dict[ResourceType, Callable[[Any], bytes]] = {
    _RT.STRING: str.encode,  # UnicodeEncodeError for a lone surrogate: the general path says so
    _RT.CORELNK: str.encode,
    _RT.INTEGER: _encode_signed,
    _RT.TIME: _encode_signed,
    _RT.UNSIGNED_INTEGER: _encode_unsigned,
    _RT.FLOAT: _encode_float,
    _RT.BOOLEAN: _encode_bool,
    _RT.OBJLNK: _encode_objlnk,
    _RT.OPAQUE: bytes,
}


def _fast_resource(
    resource: Resource, rdefs: Mapping[int, ResourceDefinition], out: list[bytes]
) -> None:
    rid = resource.id
    definition = rdefs.get(rid)
    multiple = type(resource) is MultipleResource
    if definition is not None and (
        definition.type is not resource.type or definition.multiple is not multiple
    ):
        raise _Fallback  # the model disagrees: the general path names the error
    encode = _ENCODERS[resource.type]
    if not multiple:
        value = encode(resource.value)  # type: ignore[union-attr]
        out.append(_head(0xC0, rid, len(value)))
        out.append(value)
        return
    parts = []
    for riid, instance in resource.instances.items():  # type: ignore[union-attr]
        value = encode(instance.value)
        parts.append(_head(0x40, riid, len(value)))
        parts.append(value)
    body = b"".join(parts)
    out.append(_head(0x80, rid, len(body)))
    out.append(body)


def _fast_encode(node: Node, path: Path, model: ObjectModel) -> bytes:
    """Encode an object, instance or resource, or raise _Fallback."""
    definition = model.object_definition(path.ids[0])
    rdefs: Mapping[int, ResourceDefinition] = definition.resources if definition else {}
    out: list[bytes] = []
    try:
        if type(node) is ObjectInstance:
            for resource in node.resources.values():
                _fast_resource(resource, rdefs, out)
        elif type(node) is ObjectNode:
            for iid, instance in node.instances.items():
                parts: list[bytes] = []
                for resource in instance.resources.values():
                    _fast_resource(resource, rdefs, parts)
                body = b"".join(parts)
                out.append(_head(0x00, iid, len(body)))
                out.append(body)
        elif type(node) is SingleResource or type(node) is MultipleResource:
            _fast_resource(node, rdefs, out)
        else:
            raise _Fallback
    except (LookupError, ValueError, TypeError, AttributeError, OverflowError, struct.error):
        raise _Fallback from None
    return b"".join(out)
