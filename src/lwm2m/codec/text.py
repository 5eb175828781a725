"""Plain text (CoAP Content-Format 0): one resource value as UTF-8 text (LwM2M-TS-Core §7.4.1;
value representations of Appendix C).

Only a single-instance resource (``/o/i/r``) or a resource instance (``/o/i/r/ri``) travels in
this format:

==================  =====================================================================
Type                Text
==================  =====================================================================
String, Corelnk     the text itself
Integer, Time       decimal integer (Time: seconds since the Unix epoch)
Unsigned Integer    decimal integer, no sign
Float               decimal number that reads back to the same double (``repr``); ``inf``,
                    ``-inf`` and ``nan`` (and ``Infinity``/``NaN``) are accepted
Boolean             ``0`` or ``1``
Objlnk              ``oid:iid``
Opaque              standard base64 *with* padding (as Leshan does)
==================  =====================================================================

This module also holds the single-value helpers that the opaque (CF 42) and CBOR (CF 60) codecs
share.
"""

from __future__ import annotations

import base64
import binascii
import math
import re

from lwm2m.codec._common import check_node_at, fail, resource_definition, typed
from lwm2m.codec.content_format import ContentFormat
from lwm2m.errors import ModelError
from lwm2m.model.definitions import ResourceDefinition
from lwm2m.model.nodes import (
    MultipleResource,
    Node,
    ResourceInstance,
    SingleResource,
    trusted_resource_instance,
    trusted_single,
)
from lwm2m.model.path import Path, PathLevel
from lwm2m.model.registry import ObjectModel
from lwm2m.model.values import ObjectLink, ResourceType, Value

__all__ = ["TextCodec", "format_value", "parse_value"]

_INTEGER = re.compile(r"[+-]?[0-9]+")
_UNSIGNED = re.compile(r"\+?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL_FLOATS = {
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-infinity": -math.inf,
    "nan": math.nan,
}
# The longest number text we parse: Python refuses int() on more than 4300 digits, and no LwM2M
# number needs more than a few dozen characters.
_MAX_NUMBER_TEXT = 1000


# -- single-value helpers shared with opaque.py and cbor.py -----------------------------------


def _single_definition(path: Path, model: ObjectModel, fmt: str) -> ResourceDefinition:
    """The definition of the single value at ``path``, which must be a resource or a resource
    instance path whose resource the model knows, with the right multiplicity."""
    if path.level not in (PathLevel.RESOURCE, PathLevel.RESOURCE_INSTANCE):
        fail(path, f"{fmt} carries a single resource value, not the content of a {_level(path)}")
    definition = resource_definition(model, path)
    if path.level is PathLevel.RESOURCE and definition.multiple:
        fail(path, f"{fmt} cannot carry a multiple-instance resource; read a resource instance")
    if path.level is PathLevel.RESOURCE_INSTANCE and not definition.multiple:
        fail(path, "resource instance of a single-instance resource")
    if definition.type is ResourceType.NONE:
        fail(path, "an executable resource carries no value")
    return definition


def _single_node(
    path: Path, type_: ResourceType, value: Value
) -> SingleResource | ResourceInstance:
    """The node for a decoded single ``value`` at a resource or resource-instance ``path``."""
    typed_value = typed(path, type_, value)
    # The value is checked just above and the ids are those of a valid Path: the trusted
    # constructors skip the second check (this runs for every single-value read and
    # notification).
    ids = path.ids
    if len(ids) == 3:
        return trusted_single(ids[2], type_, typed_value)
    return trusted_resource_instance(ids[3], type_, typed_value)


def _single_value(
    node: Node, path: Path, model: ObjectModel, fmt: str
) -> tuple[ResourceType, Value]:
    """The type and value of ``node``, a single resource or a resource instance at ``path``.

    When the model knows the resource, the node must have its type and multiplicity.
    """
    if path.level not in (PathLevel.RESOURCE, PathLevel.RESOURCE_INSTANCE):
        fail(path, f"{fmt} carries a single resource value, not the content of a {_level(path)}")
    check_node_at(node, path)
    if isinstance(node, MultipleResource):
        fail(path, f"{fmt} cannot carry a multiple-instance resource; encode each instance")
    assert isinstance(node, SingleResource | ResourceInstance)
    definition = model.object_definition(path.ids[0])
    resource = definition.resource(path.ids[2]) if definition is not None else None
    if resource is not None:
        if resource.type is not node.type:
            fail(
                path,
                f"wrong type for resource: {node.type.value}, the model says {resource.type.value}",
            )
        if isinstance(node, SingleResource) and resource.multiple:
            fail(path, "a single value for a multiple-instance resource")
    if node.type is ResourceType.NONE:
        fail(path, "an executable resource carries no value")
    return node.type, node.value


def _level(path: Path) -> str:
    return path.level.name.lower().replace("_", " ") + " path"


# -- text representation --------------------------------------------------------------------


def format_value(type_: ResourceType, value: Value) -> str:
    """The plain-text form of ``value`` (a valid value of ``type_``); also used by OMA JSON."""
    match type_:
        case ResourceType.BOOLEAN:
            return "1" if value else "0"
        case ResourceType.OPAQUE:
            assert isinstance(value, bytes)
            return base64.b64encode(value).decode("ascii")
        case ResourceType.FLOAT:
            assert isinstance(value, float)
            return repr(value)
        case _:
            return str(value)


def parse_value(path: Path, type_: ResourceType, text: str) -> Value:
    """Parse the plain-text form of a ``type_`` value; CodecError naming ``path`` if invalid."""
    match type_:
        case ResourceType.STRING | ResourceType.CORELNK:
            return text
        case ResourceType.INTEGER | ResourceType.TIME:
            return typed(path, type_, _parse_int(path, type_, text, _INTEGER))
        case ResourceType.UNSIGNED_INTEGER:
            return typed(path, type_, _parse_int(path, type_, text, _UNSIGNED))
        case ResourceType.FLOAT:
            special = _SPECIAL_FLOATS.get(text.lower())
            if special is not None:
                return special
            if len(text) > _MAX_NUMBER_TEXT or not _FLOAT.fullmatch(text):
                fail(path, f"invalid Float text {_show(text)}")
            number = float(text)
            if math.isinf(number):
                fail(path, f"Float text {_show(text)} is out of range")
            return number
        case ResourceType.BOOLEAN:
            if text not in ("0", "1"):
                fail(path, f"invalid Boolean text {_show(text)}: expected 0 or 1")
            return text == "1"
        case ResourceType.OBJLNK:
            try:
                return ObjectLink.parse(text)
            except ModelError as exc:
                fail(path, f"invalid Objlnk text: {exc}")
        case ResourceType.OPAQUE:
            try:
                return base64.b64decode(text.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                fail(path, "invalid Opaque text: not standard base64 with padding")
        case _:  # pragma: no cover - NONE is refused by the callers
            fail(path, "an executable resource carries no value")


def _parse_int(path: Path, type_: ResourceType, text: str, pattern: re.Pattern[str]) -> int:
    if len(text) > _MAX_NUMBER_TEXT or not pattern.fullmatch(text):
        fail(path, f"invalid {type_.value} text {_show(text)}")
    return int(text)


def _show(text: str) -> str:
    """``text`` quoted for an error message, shortened."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


_FAST_TEXT = frozenset({ResourceType.STRING, ResourceType.CORELNK})
_FAST_DIGITS = frozenset({ResourceType.INTEGER, ResourceType.TIME, ResourceType.UNSIGNED_INTEGER})


def _fast_decode(data: bytes, path: Path, model: ObjectModel) -> Node | None:
    """The node of the usual payloads (text of a String or Corelnk, or at most 18 ASCII digits
    of an Integer, Time or Unsigned Integer: below 2**63, in range for all three) at a known
    resource of the right multiplicity; None for anything else, which the general path decodes
    (and names the error of). Notifications and single-resource reads come here."""
    ids = path.ids
    level = len(ids)
    if level < 3 or type(data) is not bytes:
        return None
    definition = model.object_definition(ids[0])
    resource = definition.resources.get(ids[2]) if definition is not None else None
    if resource is None or resource.multiple is not (level == 4):
        return None
    type_ = resource.type
    value: Value
    if type_ in _FAST_DIGITS:
        if not data.isdigit() or len(data) > 18:  # bytes.isdigit: ASCII digits only
            return None
        value = int(data)
    elif type_ in _FAST_TEXT:
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    else:
        return None
    if level == 3:
        return trusted_single(ids[2], type_, value)
    return trusted_resource_instance(ids[3], type_, value)


class TextCodec:
    """Plain text (CF 0) for a single resource or a resource instance."""

    content_format = ContentFormat.TEXT

    def encode(self, node: Node, path: Path, model: ObjectModel) -> bytes:
        type_, value = _single_value(node, path, model, "plain text")
        try:
            return format_value(type_, value).encode("utf-8")
        except UnicodeEncodeError:
            fail(path, "String value is not valid Unicode (lone surrogate)")

    def decode(self, data: bytes, path: Path, model: ObjectModel) -> Node:
        node = _fast_decode(data, path, model)
        if node is not None:
            return node
        return _decode_general(data, path, model)


def _decode_general(data: bytes, path: Path, model: ObjectModel) -> Node:
    """Every payload and path: the reference the fast path must agree with."""
    definition = _single_definition(path, model, "plain text")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(path, f"plain text is not valid UTF-8 (byte {exc.start})")
    return _single_node(path, definition.type, parse_value(path, definition.type, text))
