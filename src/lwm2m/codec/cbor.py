"""CBOR (CoAP Content-Format 60, application/cbor): one resource value as a single CBOR data item
(LwM2M-TS-Core 1.1 §7.4, the CBOR format new in 1.1; RFC 8949).

Only a single-instance resource (``/o/i/r``) or a resource instance (``/o/i/r/ri``) travels in
this format:

================  =========================================  ================================
Type              Encoded as                                 Also accepted on decode
================  =========================================  ================================
String, Corelnk   text string (major type 3)
Integer           integer (major type 0/1), -2**63..2**63-1
Unsigned Integer  unsigned integer (major type 0)
Float             shortest float that is exact (half, single  any float width
                  or double)
Boolean           true / false
Opaque            byte string (major type 2)
Time              tag 1 + integer seconds (as Leshan)        untagged integer; tag 1 + a float
                                                             with no fraction; tag 0 + RFC 3339
Objlnk            text string ``"oid:iid"``
================  =========================================  ================================

Anything else (arrays, maps, other tags, null, undefined, simple values, trailing bytes, a major
type that does not fit the resource type) is a CodecError naming the path.
"""

from __future__ import annotations

import io
import math
from datetime import datetime
from typing import cast

import cbor2

from lwm2m.codec._common import fail
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.text import _single_definition, _single_node, _single_value
from lwm2m.errors import ModelError
from lwm2m.model.nodes import Node
from lwm2m.model.path import Path
from lwm2m.model.registry import ObjectModel
from lwm2m.model.values import ObjectLink, ResourceType, Value

__all__ = ["CborCodec"]

_MAJOR_NAMES = (
    "unsigned integer",
    "negative integer",
    "byte string",
    "text string",
    "array",
    "map",
    "tag",
    "simple value",
)
_TAG_DATETIME = 0xC0  # tag 0: RFC 3339 date/time text
_TAG_EPOCH = 0xC1  # tag 1: epoch-based date/time
_FLOATS = (0xF9, 0xFA, 0xFB)  # half, single, double
_BOOLS = (0xF4, 0xF5)


def _describe(initial: int) -> str:
    if initial in _FLOATS:
        return "float"
    if initial in _BOOLS:
        return "boolean"
    return {0xF6: "null", 0xF7: "undefined"}.get(initial, _MAJOR_NAMES[initial >> 5])


class CborCodec:
    """CBOR (CF 60) for a single resource or resource instance."""

    content_format = ContentFormat.CBOR

    def encode(self, node: Node, path: Path, model: ObjectModel) -> bytes:
        type_, value = _single_value(node, path, model, "CBOR")
        item: object = value
        if type_ is ResourceType.TIME:
            item = cbor2.CBORTag(1, value)
        elif type_ is ResourceType.OBJLNK:
            item = str(value)
        try:
            # canonical: floats in the shortest width that keeps the value exactly
            return cbor2.dumps(item, canonical=type_ is ResourceType.FLOAT)
        except (cbor2.CBOREncodeError, UnicodeEncodeError, ValueError):
            fail(path, "String value is not valid Unicode (lone surrogate)")

    def decode(self, data: bytes, path: Path, model: ObjectModel) -> Node:
        definition = _single_definition(path, model, "CBOR")
        type_ = definition.type
        data = bytes(data)
        if not data:
            fail(path, "empty CBOR payload")
        tag: int | None = None
        body = data
        if data[0] >> 5 == 6:
            if data[0] not in (_TAG_DATETIME, _TAG_EPOCH) or type_ is not ResourceType.TIME:
                fail(path, f"unexpected CBOR tag for a {type_.value} resource")
            tag, body = data[0], data[1:]
            if not body:
                fail(path, "CBOR tag without content")
        initial = body[0]
        kind = _describe(initial)
        if initial >> 5 in (4, 5, 6):
            fail(path, f"expected a single CBOR value for a {type_.value} resource, got a {kind}")
        item = _load(path, body)
        return _single_node(path, type_, _convert(path, type_, tag, kind, item))


def _load(path: Path, body: bytes) -> object:
    """The one CBOR item of ``body``; trailing bytes are an error."""
    stream = io.BytesIO(body)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except Exception as exc:  # cbor2 raises many exception types on hostile input
        fail(path, f"invalid CBOR: {type(exc).__name__}")
    if stream.tell() != len(body):
        fail(path, f"{len(body) - stream.tell()} trailing bytes after the CBOR value")
    return item


def _convert(path: Path, type_: ResourceType, tag: int | None, kind: str, item: object) -> Value:
    """The LwM2M value of decoded CBOR ``item`` (of CBOR ``kind``) for a ``type_`` resource."""
    wrong = f"a CBOR {kind} is not a valid {type_.value} value"
    match type_:
        case ResourceType.STRING | ResourceType.CORELNK:
            if kind == "text string":
                return cast(Value, item)
        case ResourceType.INTEGER:
            if kind in ("unsigned integer", "negative integer"):
                return cast(Value, item)
        case ResourceType.UNSIGNED_INTEGER:
            if kind == "unsigned integer":
                return cast(Value, item)
        case ResourceType.FLOAT:
            if kind == "float":
                return cast(Value, item)
        case ResourceType.BOOLEAN:
            if kind == "boolean":
                return cast(Value, item)
        case ResourceType.OPAQUE:
            if kind == "byte string":
                return cast(Value, item)
        case ResourceType.OBJLNK:
            if kind == "text string":
                assert isinstance(item, str)
                try:
                    return ObjectLink.parse(item)
                except ModelError as exc:
                    fail(path, f"invalid Objlnk text: {exc}")
        case ResourceType.TIME:
            return _time(path, tag, kind, item)
        case _:  # pragma: no cover - NONE is refused by _single_definition
            pass
    fail(path, wrong)


def _time(path: Path, tag: int | None, kind: str, item: object) -> Value:
    """Time: integer seconds, tag 1 (integer or float without fraction) or tag 0 (RFC 3339)."""
    if tag == _TAG_DATETIME:
        if kind != "text string":
            fail(path, f"CBOR tag 0 needs an RFC 3339 text string, got a {kind}")
        assert isinstance(item, str)
        try:
            moment = datetime.fromisoformat(item)
        except ValueError:
            fail(path, "CBOR tag 0 content is not an RFC 3339 date/time")
        if moment.tzinfo is None:
            fail(path, "CBOR tag 0 date/time has no time zone offset")
        seconds = moment.timestamp()
        if seconds != int(seconds):
            fail(path, "Time has a fraction of a second")
        return int(seconds)
    if kind in ("unsigned integer", "negative integer"):
        return cast(Value, item)
    if kind == "float" and tag == _TAG_EPOCH:
        assert isinstance(item, float)
        if not math.isfinite(item) or item != int(item):
            fail(path, "Time must be a whole number of seconds")
        return int(item)
    fail(path, f"a CBOR {kind} is not a valid Time value")
