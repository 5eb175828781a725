"""Resource data types and typed values (LwM2M-TS-Core §7.3 / Appendix C).

Python representation of each :class:`ResourceType`:

=================  ===============================================
STRING             ``str``
INTEGER            ``int`` (signed 64-bit)
UNSIGNED_INTEGER   ``int`` (0 .. 2**64-1)
FLOAT              ``float`` (an ``int`` is accepted and converted)
BOOLEAN            ``bool``
OPAQUE             ``bytes``
TIME               ``int``: seconds since the Unix epoch (signed)
OBJLNK             :class:`ObjectLink`
CORELNK            ``str`` (RFC 6690 link-format text)
NONE               ``None`` (executable resources carry no value)
=================  ===============================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

from lwm2m.constants import MAX_ID
from lwm2m.errors import ModelError

__all__ = ["ObjectLink", "ResourceType", "Value", "check_value"]


class ResourceType(Enum):
    """The data types of the LwM2M resource model; values are the DDF ``<Type>`` spellings."""

    STRING = "String"
    INTEGER = "Integer"
    UNSIGNED_INTEGER = "Unsigned Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"
    OPAQUE = "Opaque"
    TIME = "Time"
    OBJLNK = "Objlnk"
    CORELNK = "Corelnk"
    NONE = "none"

    # Members are singletons compared by identity, so the identity hash is consistent with
    # equality; Enum's own __hash__ (hash of the name) is Python code, and every dict keyed by
    # a type (check_value's dispatch, the codecs' tables) would pay for it on each look-up.
    __hash__ = object.__hash__

    @classmethod
    def from_ddf(cls, text: str) -> ResourceType:
        """Map a DDF ``<Type>`` text (case-insensitive; empty means NONE) to a type."""
        key = text.strip().lower()
        if key in ("", "none"):
            return cls.NONE
        for member in cls:
            if member.value.lower() == key:
                return member
        raise ModelError(f"unknown resource type {text!r}")


@dataclass(frozen=True, slots=True, order=True)
class ObjectLink:
    """An Objlnk value: a reference to object instance ``/object_id/instance_id``.

    ``65535:65535`` is the null link (LwM2M-TS-Core Appendix C).
    """

    object_id: int
    instance_id: int

    def __post_init__(self) -> None:
        for v in (self.object_id, self.instance_id):
            if type(v) is not int or not 0 <= v <= MAX_ID:
                raise ModelError(f"objlnk id {v!r} is not in 0..{MAX_ID}")

    @classmethod
    def parse(cls, text: str) -> ObjectLink:
        """Parse ``"oid:iid"``."""
        oid, sep, iid = text.partition(":")
        for part in (oid, iid):
            if not (sep and part.isascii() and part.isdigit() and len(part) <= 5):
                raise ModelError(f"objlnk {text!r} is not 'oid:iid' with ids 0..{MAX_ID}")
        return cls(int(oid), int(iid))

    @property
    def is_null(self) -> bool:
        return self.object_id == MAX_ID and self.instance_id == MAX_ID

    def __str__(self) -> str:
        return f"{self.object_id}:{self.instance_id}"


Value: TypeAlias = str | int | float | bool | bytes | ObjectLink | None

_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)


def _bad(type_: ResourceType, value: object) -> ModelError:
    return ModelError(f"{type(value).__name__} is not a valid {type_.value} value")


def _text(type_: ResourceType, value: object) -> Value:
    if isinstance(value, str):
        return value
    raise _bad(type_, value)


def _signed(type_: ResourceType, value: object) -> Value:
    if type(value) is not int:
        raise _bad(type_, value)
    if not _INT64[0] <= value <= _INT64[1]:
        raise ModelError(f"{type_.value} {value} does not fit in 64 signed bits")
    return value


def _unsigned(type_: ResourceType, value: object) -> Value:
    if type(value) is not int:
        raise _bad(type_, value)
    if not _UINT64[0] <= value <= _UINT64[1]:
        raise ModelError(f"{type_.value} {value} is not in 0..2**64-1")
    return value


def _float(type_: ResourceType, value: object) -> Value:
    if type(value) is float:
        return value
    if type(value) is not int:
        raise _bad(type_, value)
    try:
        as_float = float(value)
    except OverflowError:  # beyond the float range: never exact
        as_float = math.inf
    if math.isfinite(as_float) and int(as_float) == value:
        return as_float
    raise ModelError(f"Float {value} cannot be represented exactly")


def _boolean(type_: ResourceType, value: object) -> Value:
    if type(value) is bool:
        return value
    raise _bad(type_, value)


def _opaque(type_: ResourceType, value: object) -> Value:
    if type(value) is bytes:
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise _bad(type_, value)


def _objlnk(type_: ResourceType, value: object) -> Value:
    if isinstance(value, ObjectLink):
        return value
    raise _bad(type_, value)


def _none(type_: ResourceType, value: object) -> Value:
    if value is None:
        return None
    raise _bad(type_, value)


# One checker per type: a dict look-up is much cheaper than matching Enum members (each member
# access costs an attribute look-up on the Enum class), and this runs for every decoded value.
_CHECKERS = {
    ResourceType.STRING: _text,
    ResourceType.CORELNK: _text,
    ResourceType.INTEGER: _signed,
    ResourceType.TIME: _signed,
    ResourceType.UNSIGNED_INTEGER: _unsigned,
    ResourceType.FLOAT: _float,
    ResourceType.BOOLEAN: _boolean,
    ResourceType.OPAQUE: _opaque,
    ResourceType.OBJLNK: _objlnk,
    ResourceType.NONE: _none,
}


def check_value(type_: ResourceType, value: object) -> Value:
    """Return ``value`` as the Python representation of ``type_``, or raise :class:`ModelError`.

    Only loss-free conversions are made: ``int`` to ``float`` for FLOAT, ``bytearray`` and
    ``memoryview`` to ``bytes`` for OPAQUE.
    """
    try:
        checker = _CHECKERS[type_]
    except (KeyError, TypeError):
        raise ModelError(f"{type_!r} is not a ResourceType") from None
    return checker(type_, value)
