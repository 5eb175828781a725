"""SenML for LwM2M: records, RFC 8428 resolution, and the mapping between records and nodes.

Implements what SenML JSON (LwM2M-TS-Core 1.1.1 §7.4.5, CF 110) and SenML CBOR (§7.4.6, CF 112)
share; :mod:`lwm2m.codec.senml_json` and :mod:`lwm2m.codec.senml_cbor` only add the serializer.
The composite operations (Read-Composite, Observe-Composite §6.4.4, Write-Composite, Send and
historical notifications) are the :class:`~lwm2m.codec.base.CompositeCodec` methods of
:class:`SenmlCodec`. (Section numbers are those of OMA-TS-LightweightM2M_Core-V1_1_1.)

Records are plain dicts keyed by the format's labels (:class:`Labels`: ``"bn"`` in JSON, ``-2``
in CBOR, ``"vlo"`` in both), so the CBOR hot path hands cbor2 exactly what it encodes and decodes.

**Resolution** (RFC 8428 §4.5, §4.6). The name of a record is ``bn + n``, where ``bn`` is the
latest base name (it applies to its own record and all that follow); the time is ``bt + t``.
A resolved name must be an LwM2M path (``/3/0/0``; the leading slash may be missing, as
``Path.parse`` allows), else CodecError naming the name. Values: ``v`` numbers (Integer, Unsigned
Integer, Float, Time), ``vs`` strings (String, Corelnk), ``vb`` booleans, ``vd`` Opaque (base64url
text in JSON, a byte string in CBOR) and LwM2M's ``"vlo"`` for Objlnk (``"oid:iid"``, a *text* key
in CBOR too). Decisions:

- Integer, Unsigned Integer and Time values must be integral (``3.0`` reads as 3, ``3.5`` is an
  error) and in range (64-bit signed / 0..2**64-1); Time is integer seconds.
- Base value ``bv`` and base sum ``bs`` are **rejected**: they would silently change every value
  that follows (``v = bv + v``), and LwM2M never uses them. ``bver`` above 10 (RFC 8428's
  version) is rejected; labels ending in ``_`` (must-understand, RFC 8428 §4.4) are rejected;
  other unknown labels (``u``, ``bu``, ``s``, ``ut``, extensions) are ignored. Labels compare by
  value, so a CBOR key ``0.0`` reads as label 0 -- harmless, and it keeps the hot path lean.
- More than one value field in a record is an error; two records resolving to the same path in
  one time group are an error (duplicate SenML names).
- Time: a resolved time of 0 (no ``bt``/``t``) means "now" and decodes to a ``None`` timestamp;
  ``>= 2**28`` is absolute Unix seconds; anything else is relative to now (RFC 8428 §4.5.3) and
  needs the ``now`` argument of :meth:`SenmlCodec.decode_timestamped`, else CodecError.
  The encoder writes only absolute times, so a timestamp below 2**28 cannot be encoded.
- Non-timestamped decoders (node decode, ``decode_nodes``) accept a time field as long as every
  record resolves to the same time; different times need ``decode_timestamped``.
- An empty payload (``b""``) is an empty pack, as Leshan accepts (OMA LwM2M issue #494).
- Composite decoders return every value as its own node (RFC 8428's resolved records); given
  the request ``paths`` (Read-Composite, Observe-Composite) they group the values under them.

**Encoding** follows Leshan's shapes. A node at a request path gets ``bn`` = that path and
relative names: ``[{"bn":"/3/0/","n":"0",...},{"n":"1",...}]``; a single value at the request path
is ``[{"bn":"/3/0/0","vs":...}]``; an object gets one ``bn`` per instance (``/3/0/``, ``/3/1/``),
so every instance is one contiguous run. Composite maps and time-stamped groups start each entry
with its own ``bn``; the first record of a time group carries ``bt`` (``bt: 0`` when a group
without timestamp follows a timestamped one). Path lists are ``[{"n":"/3/0/0"},...]``. Keys are
emitted in the order ``bn, bt, n, value``. Empty containers below the request path have no
records and so cannot travel in SenML (an empty instance inside an object vanishes).

Decoders of untrusted bytes raise only :class:`~lwm2m.errors.CodecError`.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn, TypeVar

from lwm2m.codec._common import check_node_at, fail, resource_definition
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.constants import MAX_ID
from lwm2m.errors import CodecError, InvalidPathError
from lwm2m.model.definitions import ResourceDefinition
from lwm2m.model.nodes import (
    MultipleBuilder,
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectInstanceBuilder,
    ObjectNode,
    Resource,
    ResourceInstance,
    ResourceInstanceBuilder,
    SingleBuilder,
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
    "CBOR_LABELS",
    "JSON_LABELS",
    "TIME_ABSOLUTE_MIN",
    "Labels",
    "LeafTree",
    "Resolved",
    "SenmlCodec",
    "b64url_decode",
    "b64url_encode",
    "cbor_item_to_value",
    "check_disjoint",
    "group_nodes",
    "resolve",
]

TIME_ABSOLUTE_MIN = 2**28
"""Resolved SenML times at or above this are absolute Unix seconds (RFC 8428 §4.5.3)."""

SENML_VERSION = 10
"""The SenML version of RFC 8428; packs declaring a higher ``bver`` are rejected."""

_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)

# Field codes. 0..4 are the value fields, in this order.
_V, _VS, _VB, _VD, _VLO = 0, 1, 2, 3, 4
_N, _BN, _BT, _T, _BVER, _REJECT, _IGNORE = 5, 6, 7, 8, 9, 10, 11
_NO_VALUE = -1


@dataclass(frozen=True, slots=True)
class Labels:
    """The record keys of one SenML serialization (RFC 8428 §4.3 / §6 table).

    ``text_opaque`` says whether Opaque travels as base64url text (JSON) or bytes (CBOR).
    """

    bn: Hashable
    bt: Hashable
    n: Hashable
    v: Hashable
    vs: Hashable
    vb: Hashable
    t: Hashable
    vd: Hashable
    bver: Hashable
    rejected: tuple[Hashable, ...]
    ignored: tuple[Hashable, ...]
    text_opaque: bool
    vlo: str = "vlo"

    @property
    def value_keys(self) -> tuple[Hashable, ...]:
        """The value labels, indexed by field code (v, vs, vb, vd, vlo)."""
        return (self.v, self.vs, self.vb, self.vd, self.vlo)

    def keymap(self) -> dict[Hashable, int]:
        codes: dict[Hashable, int] = {k: i for i, k in enumerate(self.value_keys)}
        codes.update({self.n: _N, self.bn: _BN, self.bt: _BT, self.t: _T, self.bver: _BVER})
        codes.update(dict.fromkeys(self.rejected, _REJECT))
        codes.update(dict.fromkeys(self.ignored, _IGNORE))
        return codes


JSON_LABELS = Labels(
    bn="bn",
    bt="bt",
    n="n",
    v="v",
    vs="vs",
    vb="vb",
    t="t",
    vd="vd",
    bver="bver",
    rejected=("bv", "bs"),
    ignored=("bu", "u", "s", "ut"),
    text_opaque=True,
)
"""SenML JSON labels (RFC 8428 §4.3)."""

CBOR_LABELS = Labels(
    bn=-2,
    bt=-3,
    n=0,
    v=2,
    vs=3,
    vb=4,
    t=6,
    vd=8,
    bver=-1,
    rejected=(-5, -6),
    ignored=(-4, 1, 5, 7),
    text_opaque=False,
)
"""SenML CBOR integer labels (RFC 8428 §6); ``"vlo"`` stays a text key (LwM2M-TS-Core §7.4.6)."""


# -- values --------------------------------------------------------------------------------------


class _Bad(Exception):
    """A value problem; the caller adds the path and raises CodecError."""


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 8428 §4.3 ``vd``).

    >>> b64url_encode(bytes.fromhex("abcdef")), b64url_encode(b"\\xfb\\xff")
    ('q83v', '-_8')
    """
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url; padding is optional and the standard alphabet (``+/``) is accepted too.

    RFC 8428 sends ``vd`` unpadded in the URL alphabet; accepting padding and ``+/`` costs
    nothing (the alphabets agree on every other character) and tolerates sloppy peers.
    Raises ValueError for anything else (whitespace, bad length, misplaced padding).

    >>> b64url_decode("q83v"), b64url_decode("-_8="), b64url_decode("+/8")
    (b'\\xab\\xcd\\xef', b'\\xfb\\xff', b'\\xfb\\xff')
    """
    stripped = text.rstrip("=")
    if "=" in stripped or (len(stripped) != len(text) and len(text) % 4):
        raise ValueError("misplaced base64 padding")
    if len(stripped) % 4 == 1:
        raise ValueError("impossible base64 length")
    try:
        padded = stripped.replace("-", "+").replace("_", "/") + "=" * (-len(stripped) % 4)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url: {exc}") from None


def _integer(raw: object, lo: int, hi: int) -> int:
    kind = type(raw)
    if kind is int:
        value: int = raw  # type: ignore[assignment]
    elif kind is float:
        if not raw.is_integer():  # type: ignore[attr-defined]
            raise _Bad(f"{raw!r} is not an integer")
        value = int(raw)  # type: ignore[call-overload]
    elif kind is Decimal:
        assert isinstance(raw, Decimal)
        if raw.adjusted() > 20:  # also guards int() against 1E+999999999
            raise _Bad(f"{raw} is out of range")
        if raw != raw.to_integral_value():
            raise _Bad(f"{raw} is not an integer")
        value = int(raw)
    else:
        raise _Bad(f"{kind.__name__} is not a number")
    if not lo <= value <= hi:
        raise _Bad(f"{value} is out of range {lo}..{hi}")
    return value


def _to_int64(raw: object) -> int:
    return _integer(raw, *_INT64)


def _to_uint64(raw: object) -> int:
    return _integer(raw, *_UINT64)


def _to_time(raw: object) -> int:
    if type(raw) is datetime:  # CBOR tags 0/1 (date/time string, epoch); the TS allows them
        assert isinstance(raw, datetime)
        if raw.tzinfo is None:
            raise _Bad("date/time without time zone")
        return _integer(raw.timestamp(), *_INT64)
    return _integer(raw, *_INT64)


def _to_float(raw: object) -> float:
    kind = type(raw)
    if kind is float:
        return raw  # type: ignore[return-value]
    if kind is int or kind is Decimal:
        try:
            value = float(raw)  # type: ignore[arg-type]
        except OverflowError:
            raise _Bad(f"{raw} is out of the Float range") from None
        if math.isinf(value):
            raise _Bad(f"{raw} is out of the Float range")
        return value
    raise _Bad(f"{kind.__name__} is not a number")


def _to_str(raw: object) -> str:
    if type(raw) is not str:
        raise _Bad(f"{type(raw).__name__} is not a text string")
    return raw


def _to_bool(raw: object) -> bool:
    if type(raw) is not bool:
        raise _Bad(f"{type(raw).__name__} is not a boolean")
    return raw


def _to_bytes(raw: object) -> bytes:
    if type(raw) is not bytes:
        raise _Bad(f"{type(raw).__name__} is not a byte string")
    return raw


def _to_bytes_b64(raw: object) -> bytes:
    try:
        return b64url_decode(_to_str(raw))
    except ValueError as exc:
        raise _Bad(f"vd is not base64url: {exc}") from None


def _to_objlnk(raw: object) -> ObjectLink:
    text = _to_str(raw)
    try:
        return ObjectLink.parse(text)
    except ValueError:
        raise _Bad(f"{text[:40]!r} is not an Objlnk 'oid:iid'") from None


_RT = ResourceType


def _tkey(type_: ResourceType) -> str:
    """The key of ``type_`` in the tables below: its DDF spelling. Hashing an Enum member runs
    Python code (``Enum.__hash__``), hashing its value string does not."""
    key: str = type_._value_
    return key


_KIND_BY_TYPE: dict[str, int] = {
    _RT.STRING.value: _VS,
    _RT.CORELNK.value: _VS,
    _RT.INTEGER.value: _V,
    _RT.UNSIGNED_INTEGER.value: _V,
    _RT.FLOAT.value: _V,
    _RT.TIME.value: _V,
    _RT.BOOLEAN.value: _VB,
    _RT.OPAQUE.value: _VD,
    _RT.OBJLNK.value: _VLO,
}
_KIND_NAMES = ("v", "vs", "vb", "vd", "vlo")

_Convert = Callable[[object], Value]
_CBOR_CONVERT: dict[str, _Convert] = {
    _RT.STRING.value: _to_str,
    _RT.CORELNK.value: _to_str,
    _RT.INTEGER.value: _to_int64,
    _RT.UNSIGNED_INTEGER.value: _to_uint64,
    _RT.FLOAT.value: _to_float,
    _RT.TIME.value: _to_time,
    _RT.BOOLEAN.value: _to_bool,
    _RT.OPAQUE.value: _to_bytes,
    _RT.OBJLNK.value: _to_objlnk,
}
_JSON_CONVERT: dict[str, _Convert] = {**_CBOR_CONVERT, _RT.OPAQUE.value: _to_bytes_b64}


def cbor_item_to_value(type_: ResourceType, item: object) -> Value:
    """A decoded CBOR item as a value of ``type_``; ValueError when it does not fit.

    Numbers may be integers, floats or decimal fractions (tag 4); Time also accepts the CBOR
    date/time tags 0 and 1. Shared by SenML CBOR and LwM2M CBOR.
    """
    convert = _CBOR_CONVERT.get(_tkey(type_))
    if convert is None:
        raise ValueError("an executable resource carries no value")
    try:
        return convert(item)
    except _Bad as exc:
        raise ValueError(str(exc)) from None


def _typed(definition: ResourceDefinition, kind: int, raw: object, text_opaque: bool) -> Value:
    """The record value ``raw`` found under value field ``kind``, typed by ``definition``."""
    key = _tkey(definition.type)
    expected = _KIND_BY_TYPE.get(key)
    if expected is None:
        raise _Bad("an executable resource carries no value")
    if kind != expected:
        raise _Bad(
            f"wrong type for resource: {key} travels in {_KIND_NAMES[expected]!r},"
            f" got {_KIND_NAMES[kind]!r}"
        )
    return (_JSON_CONVERT if text_opaque else _CBOR_CONVERT)[key](raw)


def _time_number(raw: object) -> int | float:
    kind = type(raw)
    if kind is int:
        return raw  # type: ignore[return-value]
    if kind is float:
        if not math.isfinite(raw):  # type: ignore[arg-type]
            raise _Bad("time is not finite")
        return raw  # type: ignore[return-value]
    if kind is Decimal:
        assert isinstance(raw, Decimal)
        if raw.adjusted() > 20:
            raise _Bad("time is out of range")
        if raw == raw.to_integral_value():
            return int(raw)
        return float(raw)
    raise _Bad(f"time is a {kind.__name__}, not a number")


# -- node construction ---------------------------------------------------------------------------
# The decoders check every id and type every value themselves, so they build nodes with the
# model's trusted constructors (lwm2m.model.nodes), which skip the public constructors'
# second validation.


def _multiple(rid: int, type_: ResourceType, values: dict[int, Value]) -> MultipleResource:
    return trusted_multiple(
        rid, type_, {i: trusted_resource_instance(i, type_, v) for i, v in values.items()}
    )


# -- a tree of typed leaves ----------------------------------------------------------------------

_Entry = Value | dict[int, Value]  # a single resource's value, or a multiple resource's values


class LeafTree:
    """Typed leaves grouped object -> instance -> resource, plus explicit empty containers.

    Enforces the model: the object and resource must be known, a value at ``/o/i/r`` needs a
    single-instance resource and one at ``/o/i/r/ri`` a multiple one, and no leaf twice.
    Shared by SenML and LwM2M CBOR (which can also name empty containers).
    """

    __slots__ = ("_defs", "model", "objects")

    def __init__(self, model: ObjectModel) -> None:
        self.model = model
        self.objects: dict[int, dict[int, dict[int, _Entry]]] = {}
        self._defs: dict[int, Mapping[int, ResourceDefinition]] = {}

    def definition(self, ids: tuple[int, ...]) -> ResourceDefinition:
        """The definition of the resource ``ids`` lie in (``len(ids) >= 3``)."""
        defs = self._defs.get(ids[0])
        if defs is None:
            obj = self.model.object_definition(ids[0])
            if obj is None:
                resource_definition(self.model, Path(*ids))  # raises, naming the object
            assert obj is not None
            defs = self._defs[ids[0]] = obj.resources
        definition = defs.get(ids[2])
        if definition is None:
            resource_definition(self.model, Path(*ids))  # raises, naming the resource
        assert definition is not None
        return definition

    def add(self, ids: tuple[int, ...], definition: ResourceDefinition, value: Value) -> None:
        """Add the typed ``value`` at ``ids`` (a resource or resource-instance path)."""
        resources = self.objects.setdefault(ids[0], {}).setdefault(ids[1], {})
        rid = ids[2]
        if len(ids) == 3:
            if definition.multiple:
                fail(Path(*ids), "a multiple-instance resource needs resource instance paths")
            if rid in resources:
                fail(Path(*ids), "duplicate value for the same path")
            resources[rid] = value
            return
        if not definition.multiple:
            fail(Path(*ids), "resource instance of a single-instance resource")
        values = resources.get(rid)
        if values is None:
            values = resources[rid] = {}
        assert isinstance(values, dict)
        if ids[3] in values:
            fail(Path(*ids), "duplicate value for the same path")
        values[ids[3]] = value

    def add_container(self, ids: tuple[int, ...]) -> None:
        """Note that the container ``ids`` (object, instance or multiple resource) exists."""
        instances = self.objects.setdefault(ids[0], {})
        if len(ids) >= 2:
            resources = instances.setdefault(ids[1], {})
            if len(ids) == 3:
                definition = self.definition(ids)
                if not definition.multiple:
                    fail(Path(*ids), "a single-instance resource needs a value")
                entry = resources.setdefault(ids[2], {})
                assert isinstance(entry, dict)

    def _resource(self, oid: int, rid: int, entry: _Entry) -> Resource:
        definition = self._defs[oid][rid]
        if isinstance(entry, dict):
            return _multiple(rid, definition.type, entry)
        return trusted_single(rid, definition.type, entry)

    def _instance(self, oid: int, iid: int, resources: dict[int, _Entry]) -> ObjectInstance:
        return trusted_object_instance(
            iid, {rid: self._resource(oid, rid, e) for rid, e in resources.items()}
        )

    def node(self, path: Path) -> Node:
        """The node at ``path`` (object .. resource instance), empty containers included."""
        ids = path.ids
        level = len(ids)
        instances = self.objects.get(ids[0], {})
        if level == 1:
            return trusted_object(
                ids[0], {iid: self._instance(ids[0], iid, r) for iid, r in instances.items()}
            )
        resources = instances.get(ids[1], {})
        if level == 2:
            return self._instance(ids[0], ids[1], resources)
        definition = self.definition(ids)
        entry = resources.get(ids[2])
        if level == 3:
            if entry is None:
                if definition.multiple:
                    return _multiple(ids[2], definition.type, {})
                fail(path, "no value for the resource")
            return self._resource(ids[0], ids[2], entry)
        if not definition.multiple:
            fail(path, "resource instance of a single-instance resource")
        if entry is None or ids[3] not in entry:  # type: ignore[operator]
            fail(path, "no value for the resource instance")
        assert isinstance(entry, dict)
        return trusted_resource_instance(ids[3], definition.type, entry[ids[3]])

    def holds(self, path: Path) -> bool:
        """True when anything (a leaf or a container) lies at or below ``path``."""
        node: object = self.objects
        for i in path.ids:
            if not isinstance(node, dict) or i not in node:
                return False
            node = node[i]
        return True

    def leaf_nodes(self) -> dict[Path, Node]:
        """Every leaf as its own node: a single resource or a resource instance."""
        out: dict[Path, Node] = {}
        for oid, instances in self.objects.items():
            defs = self._defs.get(oid, {})  # not loaded: only empty instances below
            for iid, resources in instances.items():
                for rid, entry in resources.items():
                    type_ = defs[rid].type
                    if isinstance(entry, dict):
                        for riid, value in entry.items():
                            out[Path(oid, iid, rid, riid)] = trusted_resource_instance(
                                riid, type_, value
                            )
                    else:
                        out[Path(oid, iid, rid)] = trusted_single(rid, type_, entry)
        return out


# -- resolution ----------------------------------------------------------------------------------


class Resolved(NamedTuple):
    """One resolved SenML record (RFC 8428 §4.6): full name, time, value field and raw value.

    ``field`` is ``"v"``, ``"vs"``, ``"vb"``, ``"vd"``, ``"vlo"`` or None (no value); ``time`` is
    ``bt + t`` (0 when neither is present).
    """

    name: str
    time: int | float
    field: str | None
    value: object


def _record_error(index: int, message: str) -> NoReturn:
    raise CodecError(f"SenML record #{index}: {message}")


def _relative_ids(name: str) -> tuple[int, ...] | None:
    """``"5"`` or ``"5/0"`` as ids, or None when not in that canonical form."""
    ids = []
    for part in name.split("/"):
        if not (part.isdigit() and part.isascii()) or (part[0] == "0" and len(part) > 1):
            return None
        value = int(part)
        if value >= MAX_ID:
            return None
        ids.append(value)
    return tuple(ids)


def _parse_name(name: str, index: int) -> tuple[int, ...]:
    if not name:
        _record_error(index, "the record has no name (bn + n is empty)")
    try:
        return Path.parse(name).ids
    except InvalidPathError as exc:
        raise CodecError(
            f"SenML record #{index}: name {name[:80]!r} is not an LwM2M path: {exc}"
        ) from None


_Record = tuple[tuple[int, ...], int, object, "int | float"]
"""(path ids, value field code or _NO_VALUE, raw value, resolved time)."""


def _resolve(
    pack: object, keymap: dict[Hashable, int], *, lwm2m: bool = True
) -> list[tuple[Any, int, object, int | float]]:
    """Resolve ``pack`` (RFC 8428 §4.6) into (name, value field, raw value, time) tuples.

    With ``lwm2m`` the name is returned as path ids (CodecError when it is not an LwM2M path);
    else as the resolved text. One loop serves both, so the rules cannot drift apart.
    """
    if type(pack) is not list:
        raise CodecError(f"a SenML pack is an array of records, not a {type(pack).__name__}")
    out: list[tuple[Any, int, object, int | float]] = []
    append = out.append
    base_name = ""
    base_ids: tuple[int, ...] | None = ()
    base_time: int | float = 0
    index = 0
    try:
        for index, record in enumerate(pack):
            if type(record) is not dict:
                _record_error(index, f"a record is a map, not a {type(record).__name__}")
            name = ""
            kind = _NO_VALUE
            raw: object = None
            time: int | float = 0
            for key, item in record.items():
                code = keymap.get(key)
                if code is None:
                    if type(key) is str and key.endswith("_"):
                        _record_error(index, f"must-understand field {key[:40]!r} not supported")
                    continue
                if code < _N:
                    if kind != _NO_VALUE:
                        _record_error(index, "more than one value field")
                    kind = code
                    raw = item
                elif code == _N:
                    if type(item) is not str:
                        _record_error(index, "n is not a text string")
                    name = item
                elif code == _BN:
                    if type(item) is not str:
                        _record_error(index, "bn is not a text string")
                    base_name = item
                    base_ids = None
                    if item.endswith("/"):
                        base_ids = () if item == "/" else _relative_ids(item[1:-1])
                elif code == _BT:
                    base_time = _time_number(item)
                elif code == _T:
                    time = _time_number(item)
                elif code == _BVER:
                    if type(item) is not int or item > SENML_VERSION:
                        _record_error(index, f"unsupported SenML version {item!r}")
                elif code == _REJECT:
                    _record_error(index, "base value and base sum (bv, bs) are not supported")
            resolved_time = base_time + time if base_time or time else 0
            if not lwm2m:
                append((base_name + name, kind, raw, resolved_time))
                continue
            ids = _relative_ids(name) if base_ids is not None and name else None
            if ids is not None and base_ids is not None and len(base_ids) + len(ids) <= 4:
                ids = base_ids + ids
            else:
                ids = _parse_name(base_name + name, index)
            append((ids, kind, raw, resolved_time))
    except _Bad as exc:
        _record_error(index, str(exc))
    return out


def resolve(pack: object, labels: Labels) -> list[Resolved]:
    """Resolve a decoded pack (a list of record maps) per RFC 8428 §4.6, for any names.

    Raises CodecError for what RFC 8428 forbids (two value fields, must-understand labels,
    non-numeric times, ...) and for base value/sum (see the module notes). LwM2M decoders run
    the same resolution and then require each name to be an LwM2M path.

    >>> resolve([{"bn": "/3/0/", "bt": 268435456, "n": "0", "vs": "x"}, {"n": "9", "t": 5}],
    ...         JSON_LABELS)  # doctest: +NORMALIZE_WHITESPACE
    [Resolved(name='/3/0/0', time=268435456, field='vs', value='x'),
     Resolved(name='/3/0/9', time=268435461, field=None, value=None)]
    """
    return [
        Resolved(name, time, None if kind == _NO_VALUE else _KIND_NAMES[kind], raw)
        for name, kind, raw, time in _resolve(pack, labels.keymap(), lwm2m=False)
    ]


def _single_time(records: list[_Record]) -> None:
    """Non-timestamped decoders allow a time field, but only one resolved time."""
    if records:
        first = records[0][3]
        for ids, _kind, _raw, time in records:
            if time != first:
                fail(Path(*ids), "records carry different times; decode them as time-stamped")


# -- the fast path of node decoding --------------------------------------------------------------


class _Fallback(Exception):
    """The fast path met something unusual; the general path decides (and names errors)."""


_MISSING = object()
#: The Python type a value of this resource type arrives as when no conversion is needed
#: (integers still need their range check); other types always convert.
_AS_IS: dict[str, type] = {
    _RT.STRING.value: str,
    _RT.CORELNK.value: str,
    _RT.INTEGER.value: int,
    _RT.UNSIGNED_INTEGER.value: int,
    _RT.TIME.value: int,
    _RT.FLOAT.value: float,
    _RT.BOOLEAN.value: bool,
    _RT.OPAQUE.value: bytes,  # CBOR; in JSON Opaque is base64 text (see _name_info)
}


_CACHE_LIMIT = 4096
_BASE_IDS: dict[str, tuple[int, ...] | None] = {}
"""Canonical base names ``/oid/iid/`` -> (oid, iid), None for other forms; shared, bounded."""


def _base_ids(bn: str) -> tuple[int, ...] | None:
    ids = _BASE_IDS.get(bn, _MISSING)
    if ids is _MISSING:
        if len(bn) > 13:  # longer than "/65534/65534/": not canonical, and not worth a cache slot
            return None
        ids = None
        if bn.startswith("/") and bn.endswith("/"):
            ids = _relative_ids(bn[1:-1])
            if ids is not None and len(ids) != 2:
                ids = None
        if len(_BASE_IDS) >= _CACHE_LIMIT:
            _BASE_IDS.clear()
        _BASE_IDS[bn] = ids
    return ids  # type: ignore[return-value]


_Made = TypeVar("_Made")


def per_definition(
    cache: dict[int, tuple[object, _Made]],
    resources: Mapping[int, ResourceDefinition],
    make: Callable[[Mapping[int, ResourceDefinition]], _Made],
) -> _Made:
    """What ``make`` derives from an object definition's resources, kept in ``cache`` across
    calls: keyed by the identity of the resources mapping, which the entry holds (so the id
    cannot be reused by another mapping), and bounded by clearing."""
    cached = cache.get(id(resources))
    if cached is None or cached[0] is not resources:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cached = cache[id(resources)] = (resources, make(resources))
    return cached[1]


class _Never:
    """A type no decoded value has: values of this resource type always go through the
    converter."""


def _fast_decode(
    pack: object,
    path: Path,
    model: ObjectModel,
    labels: Labels,
    name_cache: dict[int, tuple[object, dict[str, _NameInfo]]] | None = None,
) -> Node:
    """Decode an object or instance written the usual way, or raise _Fallback.

    Handles records made of ``bn`` (``/oid/iid/``), ``n`` (``rid`` or ``rid/riid``) and the
    value label of the resource's type, all valid; anything else (time fields, other name
    splits, an instance or a multiple resource split in two runs, non-map records, any error)
    falls back to the general resolver, so the result is always the general path's result
    (tested). Written for speed: SenML CBOR decoding must stay within a small factor of
    ``cbor2.loads`` (bench/codecs.py), and a server's Read spends most of its time here.
    ``name_cache`` keeps what a relative name means per object definition (keyed by the
    identity of its resources mapping, which the entry holds, so the id cannot be reused)
    across calls.

    One pass builds the nodes: each instance and multiple resource is created when its run
    starts, over a read-only view of the dict the following records fill (the node never
    escapes before the pass ends). Ids in ascending order, the usual case, need no sorting;
    a container whose ids arrive out of order is rebuilt sorted at the end.
    """
    ids = path.ids
    if type(pack) is not list or not pack or len(ids) > 2:
        raise _Fallback
    oid = ids[0]
    object_definition = model.object_definition(oid)
    if object_definition is None:
        raise _Fallback
    rdefs = object_definition.resources
    want_iid = ids[1] if len(ids) == 2 else -1
    names: dict[str, _NameInfo] = (
        {} if name_cache is None else per_definition(name_cache, rdefs, lambda _: {})
    )
    instances: dict[int, ObjectInstance] = {}
    # None until the first bn: a record before it fails on `current` with TypeError
    current: dict[int, Resource] = None  # type: ignore[assignment]
    # the current instance, its last resource id and the highest so far, the last riid and the
    # highest so far: an id above the highest cannot be a duplicate; any other is looked up
    iid = last = top = last_riid = top_riid = -1
    values: dict[int, ResourceInstance] = {}  # the instances of the current multiple resource
    unordered: list[int] = []  # instances whose resource ids are not ascending
    resort: list[tuple[dict[int, Resource], int, ResourceType]] = []  # likewise, multiples
    bn_key, n_key = labels.bn, labels.n
    proxy = MappingProxyType
    try:
        for record in pack:
            if len(record) != 2:
                if len(record) != 3 or type(record) is not dict:
                    raise _Fallback  # also keeps a 3-item list from passing for a record
                base = _BASE_IDS.get(record[bn_key])  # _base_ids' cache, inlined
                if base is None:  # not cached yet (or cached as not canonical: None again)
                    base = _base_ids(record[bn_key])
                if base is None or base[0] != oid or (want_iid >= 0 and base[1] != want_iid):
                    raise _Fallback
                iid = base[1]
                if iid in instances:  # an instance split in two runs: unusual
                    raise _Fallback
                current = {}
                inst = ObjectInstanceBuilder()
                inst.id = iid
                inst.resources = proxy(current)
                inst.__class__ = ObjectInstance
                instances[iid] = inst
                last = top = -1
            try:
                info = names[record[n_key]]
            except KeyError:  # a name not seen yet (or no name: KeyError again, a fallback)
                info = _name_info(record[n_key], rdefs, labels)
                if len(names) >= _CACHE_LIMIT:  # peers choose the names: keep the cache bounded
                    names.clear()
                names[record[n_key]] = info
            rid, riid, value_key, as_is, lo, hi, convert, rtype = info
            value = record[value_key]
            # Values that arrive as the Python type of the resource type are taken as they are
            # (integers after their range check); anything else goes through the converter,
            # which raises _Bad for what does not fit.
            if type(value) is not as_is or (as_is is int and not lo <= value <= hi):  # type: ignore[operator]
                value = convert(value)
            if riid < 0:
                if rid <= top:  # ids above every earlier one (the usual order) are new
                    if rid in current:
                        raise _Fallback
                    if not unordered or unordered[-1] != iid:
                        unordered.append(iid)
                else:
                    top = rid
                last = rid
                single = SingleBuilder()
                single.id = rid
                single.type = rtype
                single.value = value
                single.__class__ = SingleResource
                current[rid] = single
                continue
            if rid != last:  # a multiple resource starts
                if rid <= top:  # ids above every earlier one cannot be in `current` yet
                    if rid in current:  # a duplicate, or split in two runs: unusual
                        raise _Fallback
                    if not unordered or unordered[-1] != iid:
                        unordered.append(iid)
                else:
                    top = rid
                last = rid
                last_riid = top_riid = -1
                values = {}
                multiple = MultipleBuilder()
                multiple.id = rid
                multiple.type = rtype
                multiple.instances = proxy(values)
                multiple.__class__ = MultipleResource
                current[rid] = multiple
            if riid <= top_riid:
                if riid in values:
                    raise _Fallback
                if riid < last_riid:
                    resort.append((current, rid, rtype))
            else:
                top_riid = riid
            last_riid = riid
            instance = ResourceInstanceBuilder()
            instance.id = riid
            instance.type = rtype
            instance.value = value
            instance.__class__ = ResourceInstance
            values[riid] = instance
    except (_Bad, LookupError, TypeError, AttributeError):
        # Not the usual shape (a non-map record, a missing or unhashable key, a bad value):
        # the general path decides, and names the error if there is one.
        raise _Fallback from None
    for resources, rid, rtype in resort:
        old = resources[rid]
        assert isinstance(old, MultipleResource)
        resources[rid] = trusted_multiple(rid, rtype, dict(old.instances))
    for iid in unordered:
        instances[iid] = trusted_object_instance(iid, dict(instances[iid].resources))
    if want_iid >= 0:
        return instances[want_iid]
    return trusted_object(oid, instances)


_NameInfo = tuple[int, int, Hashable, type, int, int, _Convert, ResourceType]


def _name_info(name: str, rdefs: Mapping[int, ResourceDefinition], labels: Labels) -> _NameInfo:
    """What the fast path needs to know about a relative name ``rid`` or ``rid/riid``:
    (rid, riid or -1, value label, the Python type taken as is, its integer range, the
    converter, the resource type)."""
    rel = _relative_ids(name)
    if rel is None or len(rel) > 2:
        raise _Fallback
    definition = rdefs.get(rel[0])
    if definition is None or definition.multiple is not (len(rel) == 2):
        raise _Fallback
    key = _tkey(definition.type)
    expected = _KIND_BY_TYPE.get(key)
    if expected is None:
        raise _Fallback
    convert = (_JSON_CONVERT if labels.text_opaque else _CBOR_CONVERT)[key]
    as_is: type = _AS_IS.get(key, _Never)
    if convert is _to_bytes_b64:  # Opaque in JSON is text, never taken as is
        as_is = _Never
    lo, hi = _UINT64 if key == _RT.UNSIGNED_INTEGER.value else _INT64
    return (
        rel[0],
        rel[1] if len(rel) == 2 else -1,
        labels.value_keys[expected],
        as_is,
        lo,
        hi,
        convert,
        definition.type,
    )


# -- encoding ------------------------------------------------------------------------------------

_Wire = tuple[Hashable, Callable[[Any], object] | None]


def _json_float(value: float) -> float:
    if not math.isfinite(value):
        raise _Bad(f"{value} cannot travel in SenML JSON (JSON numbers are finite)")
    return value


def _wire_table(labels: Labels) -> dict[str, _Wire]:
    """Resource type (its ``_tkey``) -> (value label, converter or None)."""
    return {
        _RT.STRING.value: (labels.vs, None),
        _RT.CORELNK.value: (labels.vs, None),
        _RT.INTEGER.value: (labels.v, None),
        _RT.UNSIGNED_INTEGER.value: (labels.v, None),
        _RT.TIME.value: (labels.v, None),
        _RT.FLOAT.value: (labels.v, _json_float if labels.text_opaque else None),
        _RT.BOOLEAN.value: (labels.vb, None),
        _RT.OPAQUE.value: (labels.vd, b64url_encode if labels.text_opaque else None),
        _RT.OBJLNK.value: (labels.vlo, str),
    }


_ID_TEXT = tuple(str(i) for i in range(1024))


def _model_mismatch(
    definition: ResourceDefinition, res: Resource | ResourceInstance, at: str
) -> NoReturn:
    if definition.type is not res.type:
        raise CodecError(
            f"wrong type for resource: {res.type.value}, the model says {definition.type.value}",
            path=at,
        )
    kind = "multiple" if definition.multiple else "single"
    raise CodecError(f"the model says this is a {kind}-instance resource", path=at)


class _Encoder:
    """Builds the records of nodes as dicts; each run of records starts with its own ``bn``.

    With a model, a resource whose definition is known must have the defined type and
    multiplicity; unknown resources are encoded as their nodes say.
    """

    __slots__ = ("_defs", "bn", "model", "n", "records", "wire")

    def __init__(self, labels: Labels, model: ObjectModel) -> None:
        self.model = model
        self.bn = labels.bn
        self.n = labels.n
        self.wire = _wire_table(labels)
        self.records: list[dict[Hashable, object]] = []
        self._defs: dict[int, Mapping[int, ResourceDefinition]] = {}

    def _definitions(self, oid: int) -> Mapping[int, ResourceDefinition]:
        defs = self._defs.get(oid)
        if defs is None:
            definition = self.model.object_definition(oid)
            defs = self._defs[oid] = definition.resources if definition is not None else {}
        return defs

    def _wire(self, type_: ResourceType, at: str) -> _Wire:
        wire = self.wire.get(_tkey(type_))
        if wire is None:
            raise CodecError("an executable resource carries no value", path=at)
        return wire

    def instance(self, inst: ObjectInstance, prefix: str, oid: int) -> None:
        """Append the records of ``inst``; ``prefix`` is its path with a trailing slash."""
        defs = self._definitions(oid)
        bn_key, n_key, wire = self.bn, self.n, self.wire
        append = self.records.append
        pending: str | None = prefix
        name = ""
        try:
            for rid, res in inst.resources.items():
                name = _ID_TEXT[rid] if rid < 1024 else str(rid)
                cls = type(res)
                definition = defs.get(rid)
                if definition is not None and (
                    definition.type is not res.type
                    or definition.multiple is not (cls is MultipleResource)
                ):
                    _model_mismatch(definition, res, prefix + name)
                key, convert = wire.get(_tkey(res.type)) or self._wire(res.type, prefix + name)
                if cls is SingleResource:
                    value = res.value if convert is None else convert(res.value)  # type: ignore[union-attr]
                    if pending is None:
                        append({n_key: name, key: value})
                    else:
                        append({bn_key: pending, n_key: name, key: value})
                        pending = None
                    continue
                for riid, ri in res.instances.items():  # type: ignore[union-attr]
                    value = ri.value if convert is None else convert(ri.value)
                    rname = name + "/" + (_ID_TEXT[riid] if riid < 1024 else str(riid))
                    if pending is None:
                        append({n_key: rname, key: value})
                    else:
                        append({bn_key: pending, n_key: rname, key: value})
                        pending = None
        except _Bad as exc:
            raise CodecError(str(exc), path=prefix + name) from None

    def node(self, node: Node, path: Path, first: dict[Hashable, object] | None = None) -> None:
        """Append the records of ``node`` at ``path``; ``first`` adds fields to the first one."""
        start = len(self.records)
        text = str(path)
        if isinstance(node, ObjectInstance):
            self.instance(node, text + "/", path.ids[0])
        elif isinstance(node, ObjectNode):
            for iid, inst in node.instances.items():
                self.instance(inst, f"{text}/{iid}/", node.id)
        else:
            self._resource(node, path, text)
        if first and len(self.records) > start:
            self.records[start] = _with_first(self.records[start], first, self.bn)

    def _resource(
        self, node: SingleResource | MultipleResource | ResourceInstance, path: Path, text: str
    ) -> None:
        definition = self._definitions(path.ids[0]).get(path.ids[2])
        if definition is not None and (
            definition.type is not node.type
            or definition.multiple is not isinstance(node, MultipleResource | ResourceInstance)
        ):
            _model_mismatch(definition, node, text)
        key, convert = self._wire(node.type, text)
        try:
            if isinstance(node, MultipleResource):
                prefix = text + "/"
                for riid, ri in node.instances.items():
                    value = ri.value if convert is None else convert(ri.value)
                    record: dict[Hashable, object] = {self.n: str(riid), key: value}
                    self.records.append({self.bn: prefix, **record} if prefix else record)
                    prefix = ""
            else:
                value = node.value if convert is None else convert(node.value)
                self.records.append({self.bn: text, key: value})
        except _Bad as exc:
            raise CodecError(str(exc), path=text) from None


def _with_first(
    record: dict[Hashable, object], first: dict[Hashable, object], bn: Hashable
) -> dict[Hashable, object]:
    """``record`` with ``first``'s fields inserted right after ``bn`` (order bn, bt, n, value)."""
    out: dict[Hashable, object] = {bn: record[bn]} if bn in record else {}
    out.update(first)
    out.update((key, value) for key, value in record.items() if key != bn)
    return out


def check_disjoint(paths: Iterable[Path]) -> None:
    """Composite entries must not overlap: ``/3/0`` and ``/3/0/1`` would carry a value twice."""
    ids = {p.ids for p in paths}
    for p in ids:
        for k in range(1, len(p)):
            if p[:k] in ids:
                fail(Path(*p), f"overlaps the entry {Path(*p[:k])}")


def group_nodes(
    tree: LeafTree,
    terminals: Iterable[tuple[int, ...]],
    nones: Mapping[Path, None],
    paths: Sequence[Path] | None,
) -> dict[Path, Node | None]:
    """The composite result of a decoded tree (see :meth:`SenmlCodec.decode_nodes`).

    ``terminals`` are the ids of every value (and empty container) in ``tree``; ``nones`` the
    paths that carried no value (Write-Composite deletes).
    """
    result: dict[Path, Node | None]
    if paths is None:
        result = dict(tree.leaf_nodes())
    else:
        result = {}
        wanted = [p.ids for p in paths]
        for ids in terminals:
            if not any(ids[: len(w)] == w for w in wanted):
                fail(Path(*ids), "lies outside every requested path")
        for path in paths:
            if path.level is PathLevel.ROOT:
                fail(path, "the root path carries no node in this format")
            if path not in result and tree.holds(path):
                result[path] = tree.node(path)
    result.update(nones)
    return result


# -- the codec -----------------------------------------------------------------------------------


class SenmlCodec:
    """The SenML mapping of LwM2M nodes; subclasses give the serializer and the labels.

    Implements :class:`~lwm2m.codec.base.NodeCodec` and
    :class:`~lwm2m.codec.base.CompositeCodec`. ``encode_pack``/``decode_pack`` are the raw
    framing level (records as dicts keyed by :attr:`labels`), knowing nothing of the model.
    """

    content_format: ContentFormat
    labels: Labels

    def __init__(self) -> None:
        self._keymap = self.labels.keymap()
        self._names: dict[int, tuple[object, dict[str, _NameInfo]]] = {}

    # raw framing, per serialization

    def encode_pack(self, records: Sequence[Mapping[Hashable, object]]) -> bytes:
        """Serialize records (dicts keyed by :attr:`labels`)."""
        raise NotImplementedError

    def decode_pack(self, data: bytes) -> object:
        """Parse ``data`` into a pack (a list of record dicts, unchecked); only CodecError."""
        raise NotImplementedError

    # helpers

    def _records(self, data: bytes) -> list[_Record]:
        return _resolve(self.decode_pack(data), self._keymap)

    def _tree(self, records: Iterable[_Record], model: ObjectModel, tree: LeafTree) -> None:
        text_opaque = self.labels.text_opaque
        definition_of = tree.definition
        add = tree.add
        for ids, kind, raw, _time in records:
            if len(ids) < 3:
                fail(Path(*ids), "a value must be at a resource or resource instance path")
            if kind == _NO_VALUE:
                fail(Path(*ids), "the record has no value")
            definition = definition_of(ids)
            try:
                value = _typed(definition, kind, raw, text_opaque)
            except _Bad as exc:
                fail(Path(*ids), str(exc))
            add(ids, definition, value)

    # NodeCodec

    def encode(self, node: Node, path: Path, model: ObjectModel) -> bytes:
        """Encode ``node``, the content of ``path`` (LwM2M-TS-Core §7.4.5/§7.4.6)."""
        check_node_at(node, path)
        encoder = _Encoder(self.labels, model)
        encoder.node(node, path)
        return self.encode_pack(encoder.records)

    def decode(self, data: bytes, path: Path, model: ObjectModel) -> Node:
        """Decode the content of ``path``: every name must resolve to a path under it."""
        if not path.ids:  # the root (``path.level`` is an Enum call, dear on this hot path)
            fail(path, "the root path carries no node in this format")
        pack = self.decode_pack(data)
        try:
            return _fast_decode(pack, path, model, self.labels, self._names)
        except _Fallback:
            pass
        return self._decode_general(pack, path, model)

    def decode_known(
        self, data: bytes, path: Path, model: ObjectModel
    ) -> tuple[Node, tuple[Path, ...]]:
        """:meth:`decode`, leaving out the values of resources that ``model`` does not define
        in an object it knows (a Bootstrap-Write ignores the optional resources the client does
        not support, Core §6.1.7.4; a newer minor version of an object only adds optional
        ones). Returns the node and the resource paths left out."""
        if not path.ids:
            fail(path, "the root path carries no node in this format")
        records = _resolve(self.decode_pack(data), self._keymap)
        kept: list[_Record] = []
        left_out: dict[Path, None] = {}
        for record in records:
            ids = record[0]
            definition = model.object_definition(ids[0]) if len(ids) >= 3 else None
            if definition is not None and definition.resource(ids[2]) is None:
                left_out[Path(*ids[:3])] = None
            else:
                kept.append(record)
        return self._node(kept, path, model), tuple(left_out)

    def _decode_general(self, pack: object, path: Path, model: ObjectModel) -> Node:
        """RFC 8428 resolution, then the tree: the reference the fast path must agree with."""
        return self._node(_resolve(pack, self._keymap), path, model)

    def _node(self, records: list[_Record], path: Path, model: ObjectModel) -> Node:
        _single_time(records)
        prefix = path.ids
        depth = len(prefix)
        for ids, *_ in records:
            if ids[:depth] != prefix:
                fail(Path(*ids), f"lies outside the request path {path}")
        tree = LeafTree(model)
        self._tree(records, model, tree)
        return tree.node(path)

    # CompositeCodec

    def encode_paths(self, paths: Sequence[Path]) -> bytes:
        """A Read-/Observe-Composite request body: one name-only record per path."""
        seen: set[Path] = set()
        records: list[dict[Hashable, object]] = []
        for path in paths:
            if path in seen:
                fail(path, "duplicate path in the path list")
            seen.add(path)
            records.append({self.labels.n: str(path)})
        return self.encode_pack(records)

    def decode_paths(self, data: bytes) -> list[Path]:
        """Parse a Read-/Observe-Composite request body; records must hold names only."""
        out: list[Path] = []
        seen: set[tuple[int, ...]] = set()
        pack = self.decode_pack(data)
        for ids, kind, _raw, time in _resolve(pack, self._keymap):
            if kind != _NO_VALUE:
                fail(Path(*ids), "a path list record carries no value")
            if time:
                fail(Path(*ids), "a path list record carries no time")
            if ids in seen:
                fail(Path(*ids), "duplicate path in the path list")
            seen.add(ids)
            out.append(Path(*ids))
        return out

    def encode_nodes(self, nodes: Mapping[Path, Node | None], model: ObjectModel) -> bytes:
        """A Read-Composite response or Write-Composite body; None is a record without value."""
        check_disjoint(nodes)
        encoder = _Encoder(self.labels, model)
        for path, node in nodes.items():
            if node is None:
                if path.level is PathLevel.ROOT:
                    fail(path, "the root path cannot be deleted")
                encoder.records.append({self.labels.bn: str(path)})
                continue
            check_node_at(node, path)
            encoder.node(node, path)
        return self.encode_pack(encoder.records)

    def decode_nodes(
        self, data: bytes, model: ObjectModel, *, paths: Sequence[Path] | None = None
    ) -> dict[Path, Node | None]:
        """Decode a path -> node map; a record without value decodes to None.

        Without ``paths`` every value is its own node (a single resource or a resource
        instance, as RFC 8428 resolution gives them). With ``paths`` (the paths of the
        Read-Composite request) each requested path maps to the node of the values below it;
        a value below no requested path is an error, a requested path without values is
        absent from the result.
        """
        records = self._records(data)
        _single_time(records)
        return self._group(records, model, paths, allow_none=True)

    def _group(
        self,
        records: list[_Record],
        model: ObjectModel,
        paths: Sequence[Path] | None,
        *,
        allow_none: bool,
    ) -> dict[Path, Node | None]:
        tree = LeafTree(model)
        nones: dict[Path, None] = {}
        valued: list[_Record] = []
        seen: set[tuple[int, ...]] = set()
        for record in records:
            ids = record[0]
            if record[1] == _NO_VALUE:
                path = Path(*ids)
                if not allow_none:
                    fail(path, "the record has no value")
                if not ids:
                    fail(path, "the root path cannot be deleted")
                if ids in seen:
                    fail(path, "duplicate value for the same path")
                seen.add(ids)
                nones[path] = None
            else:
                valued.append(record)
        for record in valued:
            if record[0] in seen:
                fail(Path(*record[0]), "duplicate value for the same path")
        self._tree(valued, model, tree)
        return group_nodes(tree, (record[0] for record in valued), nones, paths)

    def encode_timestamped(self, groups: Sequence[TimestampedNodes], model: ObjectModel) -> bytes:
        """Send / historical notifications: each group's first record carries ``bt``."""
        encoder = _Encoder(self.labels, model)
        bt = self.labels.bt
        current: int | float = 0
        seen: set[float | None] = set()
        for group in groups:
            stamp = group.timestamp
            if stamp in seen:
                raise CodecError(f"two groups share the timestamp {stamp}")
            seen.add(stamp)
            first: dict[Hashable, object] = {}
            if stamp is not None:
                if not (math.isfinite(stamp) and stamp >= TIME_ABSOLUTE_MIN):
                    raise CodecError(
                        f"timestamp {stamp} is below 2**28 and would read as a relative time"
                        " (RFC 8428 §4.5.3)"
                    )
                wire: int | float = int(stamp) if float(stamp).is_integer() else stamp
                first[bt] = current = wire
            elif current:
                first[bt] = current = 0
            check_disjoint(group.nodes)
            start = len(encoder.records)
            for path, node in group.nodes.items():
                check_node_at(node, path)
                encoder.node(node, path, first if len(encoder.records) == start else None)
        return self.encode_pack(encoder.records)

    def decode_timestamped(
        self,
        data: bytes,
        model: ObjectModel,
        *,
        paths: Sequence[Path] | None = None,
        now: float | None = None,
    ) -> list[TimestampedNodes]:
        """Group records by resolved time (first appearance order); time 0 is None.

        ``now`` (Unix seconds) resolves relative times (below 2**28, RFC 8428 §4.5.3); without
        it a relative time is a CodecError. ``paths`` groups values as in :meth:`decode_nodes`.
        """
        groups: dict[int | float, list[_Record]] = {}
        for record in self._records(data):
            groups.setdefault(record[3], []).append(record)
        out: list[TimestampedNodes] = []
        for time, records in groups.items():
            stamp: float | None
            if time == 0:
                stamp = None
            elif time >= TIME_ABSOLUTE_MIN:
                stamp = time
            elif now is None:
                fail(
                    Path(*records[0][0]),
                    f"relative time {time} (below 2**28) needs a reference time (now)",
                )
            else:
                stamp = now + time
            nodes = self._group(records, model, paths, allow_none=False)
            out.append(TimestampedNodes(stamp, nodes))  # type: ignore[arg-type]
        return out
