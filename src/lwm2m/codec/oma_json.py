"""OMA JSON (CoAP Content-Format 11543, application/vnd.oma.lwm2m+json): the LwM2M 1.0 JSON format
that 1.1 servers must still accept (LwM2M-TS-Core 1.1 §7.4.4; 1.0 §6.4.4).

A payload is an object ``{"bn": base name, "bt": base time, "e": [entries]}``; each entry has a
name ``n`` and one value: ``v`` (number: Integer, Unsigned Integer, Float, Time), ``sv`` (string:
String, Corelnk, and Opaque as standard base64 with padding), ``bv`` (Boolean) or ``ov`` (Objlnk
``"oid:iid"``); ``t`` is the time of the entry relative to ``bt``. Example (GET /3/0)::

    {"bn":"/3/0/","e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"6/0","v":1}]}

Names resolve as Leshan does: ``bn`` + ``n`` when a base name is present (``bn`` "/3/0/1" and
``n`` "1/0" give /3/0/11/0); without ``bn`` a name starting with "/" is absolute and any other
name is relative to the request path (the TS's own examples).

Encoding writes ``bn`` as the request path (with a trailing "/" when the node has children) and
names relative to it; values use the shortest JSON form.

Time: :meth:`OmaJsonCodec.decode` keeps, for each path, the most recent entry;
:meth:`OmaJsonCodec.decode_timestamped` returns every version, grouped by time, for historical
notifications; :meth:`OmaJsonCodec.encode_timestamped` writes them with absolute ``t``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from typing import Any, NoReturn

from lwm2m.codec._common import build_node, fail, flatten, resource_definition, typed
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.errors import CodecError, ModelError
from lwm2m.model.nodes import MultipleResource, Node, ObjectInstance, ObjectNode
from lwm2m.model.path import Path, PathLevel
from lwm2m.model.registry import ObjectModel
from lwm2m.model.values import ObjectLink, ResourceType, Value

__all__ = ["OmaJsonCodec"]

_VALUE_KEYS = ("v", "sv", "bv", "ov")
_NUMBER_TYPES = (
    ResourceType.INTEGER,
    ResourceType.UNSIGNED_INTEGER,
    ResourceType.FLOAT,
    ResourceType.TIME,
)

# (path, value, time) of one entry after name and time resolution
_Entry = tuple[Path, Value, float | None]


class OmaJsonCodec:
    """OMA JSON (CF 11543) for every node kind but the root."""

    content_format = ContentFormat.JSON

    # -- encode ---------------------------------------------------------------------------------

    def encode(self, node: Node, path: Path, model: ObjectModel) -> bytes:
        base = _base_name(node, path)
        entries = self._entries(node, path, model, base, None)
        return _dump(path, {"bn": base, "e": entries})

    def encode_timestamped(
        self, groups: Sequence[TimestampedNodes], path: Path, model: ObjectModel
    ) -> bytes:
        """Historical values of the node at ``path``: one group per time, each holding the node
        at ``path`` (and nothing else); the time goes into ``t`` as absolute seconds."""
        base: str | None = None
        entries: list[dict[str, object]] = []
        for group in groups:
            if set(group.nodes) != {path}:
                fail(path, "each timestamped group must hold exactly the node at the request path")
            node = group.nodes[path]
            base = base or _base_name(node, path)
            entries.extend(self._entries(node, path, model, base, group.timestamp))
        return _dump(path, {"bn": base or str(path), "e": entries})

    def _entries(
        self, node: Node, path: Path, model: ObjectModel, base: str, time: float | None
    ) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = []
        for leaf, type_, value in flatten(node, path, model):
            entry: dict[str, object] = {}
            name = str(leaf)[len(base) :]
            if name:
                entry["n"] = name
            key, json_value = _json_value(leaf, type_, value)
            entry[key] = json_value
            if time is not None:
                if not math.isfinite(time):
                    fail(path, f"timestamp {time} is not a finite number")
                entry["t"] = int(time) if time == int(time) else time
            entries.append(entry)
        return entries

    # -- decode ---------------------------------------------------------------------------------

    def decode(self, data: bytes, path: Path, model: ObjectModel) -> Node:
        """The node at ``path``; when entries carry times, the most recent value of each path."""
        latest: dict[Path, _Entry] = {}
        for entry in self._parse(data, path, model):
            leaf, _, time = entry
            seen = latest.get(leaf)
            if seen is not None:
                if seen[2] == time or seen[2] is None or time is None:
                    fail(leaf, "duplicate value for the same path")
                if seen[2] > time:
                    continue
            latest[leaf] = entry
        return build_node(path, ((p, v) for p, v, _ in latest.values()), model)

    def decode_timestamped(
        self, data: bytes, path: Path, model: ObjectModel
    ) -> list[TimestampedNodes]:
        """Every version of the node at ``path``, one group per time, most recent first (entries
        without time last)."""
        groups: dict[float | None, list[tuple[Path, Value]]] = {}
        for leaf, value, time in self._parse(data, path, model):
            groups.setdefault(time, []).append((leaf, value))
        order = sorted(groups, key=lambda t: (t is None, -(t or 0.0)))
        return [TimestampedNodes(t, {path: build_node(path, groups[t], model)}) for t in order]

    def _parse(self, data: bytes, path: Path, model: ObjectModel) -> list[_Entry]:
        if path.level is PathLevel.ROOT:
            fail(path, "the root path carries no node in OMA JSON")
        document = _load(path, data)
        if not isinstance(document, dict):
            fail(path, "OMA JSON payload must be a JSON object")
        base = document.get("bn")
        if base is not None and not isinstance(base, str):
            fail(path, "'bn' must be a string")
        base_time = document.get("bt")
        if base_time is not None:
            base_time = _number(path, "bt", base_time)
        entries = document.get("e")
        if not isinstance(entries, list):
            fail(path, "OMA JSON payload needs an 'e' array")
        return [self._entry(path, model, base, base_time, e) for e in entries]

    def _entry(
        self,
        path: Path,
        model: ObjectModel,
        base: str | None,
        base_time: float | None,
        entry: object,
    ) -> _Entry:
        if not isinstance(entry, dict):
            fail(path, "each entry of 'e' must be a JSON object")
        name = entry.get("n")
        if name is not None and not isinstance(name, str):
            fail(path, "'n' must be a string")
        leaf = _resolve(path, base, name)
        keys = [k for k in _VALUE_KEYS if k in entry]
        if len(keys) != 1:
            fail(leaf, "an entry needs exactly one of 'v', 'sv', 'bv', 'ov'")
        if leaf.level < PathLevel.RESOURCE:
            fail(leaf, "a value must be at a resource or resource instance path")
        type_ = resource_definition(model, leaf).type
        value = _from_json(leaf, type_, keys[0], entry[keys[0]])
        time: float | None = None
        if "t" in entry:
            time = _number(leaf, "t", entry["t"]) + (base_time or 0)
        elif base_time is not None:
            time = base_time
        return leaf, value, time


# -- helpers ------------------------------------------------------------------------------------


def _base_name(node: Node, path: Path) -> str:
    has_children = isinstance(node, ObjectNode | ObjectInstance | MultipleResource)
    return f"{path}/" if has_children else str(path)


def _dump(path: Path, document: dict[str, object]) -> bytes:
    try:
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except ValueError:  # pragma: no cover - values are checked by _json_value
        fail(path, "value cannot be represented in JSON")


def _json_value(leaf: Path, type_: ResourceType, value: Value) -> tuple[str, object]:
    match type_:
        case ResourceType.STRING | ResourceType.CORELNK:
            assert isinstance(value, str)
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                fail(leaf, "String value is not valid Unicode (lone surrogate)")
            return "sv", value
        case ResourceType.OPAQUE:
            assert isinstance(value, bytes)
            return "sv", base64.b64encode(value).decode("ascii")
        case ResourceType.BOOLEAN:
            return "bv", value
        case ResourceType.OBJLNK:
            return "ov", str(value)
        case ResourceType.FLOAT:
            assert isinstance(value, float)
            if not math.isfinite(value):
                fail(leaf, f"OMA JSON cannot carry the Float value {value}")
            return "v", value
        case ResourceType.NONE:
            fail(leaf, "an executable resource carries no value")
        case _:
            return "v", value


def _from_json(leaf: Path, type_: ResourceType, key: str, raw: object) -> Value:
    """The ``type_`` value of the JSON value ``raw`` found under ``key``."""
    match type_, key:
        case (ResourceType.STRING | ResourceType.CORELNK, "sv") if isinstance(raw, str):
            try:
                raw.encode("utf-8")  # JSON escapes can spell lone surrogates: "\\ud800"
            except UnicodeEncodeError:
                fail(leaf, f"{type_.value} value is not valid Unicode (lone surrogate)")
            return raw
        case (ResourceType.OPAQUE, "sv") if isinstance(raw, str):
            try:
                return base64.b64decode(raw.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                fail(leaf, "invalid Opaque value: not standard base64 with padding")
        case (ResourceType.BOOLEAN, "bv") if isinstance(raw, bool):
            return raw
        case (ResourceType.OBJLNK, "ov") if isinstance(raw, str):
            try:
                return ObjectLink.parse(raw)
            except ModelError as exc:
                fail(leaf, f"invalid Objlnk value: {exc}")
        case (ResourceType.FLOAT, "v") if type(raw) in (int, float):
            return typed(leaf, type_, _number(leaf, "v", raw))
        case (
            ResourceType.INTEGER | ResourceType.UNSIGNED_INTEGER | ResourceType.TIME,
            "v",
        ) if type(raw) in (int, float):
            number = _number(leaf, "v", raw)
            if isinstance(number, float):
                if number != int(number):
                    fail(leaf, f"{type_.value} value {number} has a fraction")
                number = int(number)
            return typed(leaf, type_, number)
    _wrong(leaf, type_, key)


def _wrong(leaf: Path, type_: ResourceType, key: str) -> NoReturn:
    if type_ is ResourceType.NONE:
        fail(leaf, "an executable resource carries no value")
    expected = (
        "v"
        if type_ in _NUMBER_TYPES
        else {ResourceType.BOOLEAN: "bv", ResourceType.OBJLNK: "ov"}.get(type_, "sv")
    )
    fail(leaf, f"wrong type for resource: '{key}' given, a {type_.value} needs '{expected}'")


def _resolve(path: Path, base: str | None, name: str | None) -> Path:
    """The path an entry names: ``bn`` + ``n``, else ``n`` absolute or relative to ``path``."""
    if base is not None:
        text = base + (name or "")
    elif name is None:
        return path
    elif name.startswith("/"):
        text = name
    else:
        text = f"{path}/{name}"
    try:
        return Path.parse(text)
    except ModelError as exc:
        fail(path, f"entry name {text[:80]!r} is not an LwM2M path: {exc}")


def _number(path: Path, key: str, raw: object) -> int | float:
    """A finite JSON number (JSON's 1e400 parses as infinity)."""
    if type(raw) not in (int, float):
        fail(path, f"'{key}' must be a number")
    assert isinstance(raw, int | float)
    if not math.isfinite(raw):
        fail(path, f"'{key}' is out of range")
    return raw


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {key!r}")
        document[key] = value
    return document


def _load(path: Path, data: bytes) -> object:
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(path, f"OMA JSON is not valid UTF-8 (byte {exc.start})")
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, duplicate keys, NaN/Infinity and over-long ints
        raise CodecError(f"invalid JSON: {str(exc)[:80]}", path=str(path)) from None
