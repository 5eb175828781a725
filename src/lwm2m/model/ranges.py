"""The ``RangeEnumeration`` of a resource definition as a check on written values.

LwM2M-TS-Core 1.1 §7.2 (Resource Model, "Range or Enumeration") gives each resource an
optional range; Appendix D's DDF schema carries it as free text, and the OMA registry writes it
many ways: ``0..100``, ``-1..1``, ``0.000001..1.0``, ``0..247, 255``, ``0; 3.8..20.5`` for
numbers, ``0..255 bytes``, ``6 bytes``, ``16, 32 or 48 bytes`` for lengths, and prose
(``8-Bits``, ``2 Instances``, ``0: RELEASED 1: PRESSED ...``, "The possible values are those
listed in the LwM2M Core Specification").

:func:`value_range` understands the forms that can only mean one thing and answers None for
the rest (no check, rather than a guess that refuses valid writes):

- Integer, Unsigned Integer and Float: a union of closed intervals ``a..b`` (or ``a...b``) and
  single numbers, separated by ``,`` or ``;``, with at least one interval (a lone ``255`` might
  be a maximum or the only value). A reversed interval (``-30..-120``) is not guessed at.
- String and Opaque: lengths in bytes (UTF-8 for strings): ``a..b`` with or without ``bytes``,
  or single lengths ``N bytes`` / ``N, M or K bytes`` (the unit is required there, as a bare
  ``64`` could be anything).

>>> value_range("0..247, 255", ResourceType.INTEGER).admits(255)
True
>>> value_range("0..247, 255", ResourceType.INTEGER).admits(250)
False
>>> value_range("16, 32 or 48 bytes", ResourceType.OPAQUE).admits(bytes(32))
True
>>> value_range("8-Bits", ResourceType.INTEGER) is None
True
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from lwm2m.model.values import ResourceType

__all__ = ["ValueRange", "value_range"]

_NUMBER = r"-?\d+(?:\.\d+)?"
# ".." and, as some registry files write it, "..."
_PART = re.compile(rf"\s*({_NUMBER})\s*(?:\.\.\.?\s*({_NUMBER})\s*)?")
_SEPARATORS = re.compile(r"\s*(?:,|;|\bor\b)\s*")
_BYTES = re.compile(r"\s*bytes?\s*$", re.IGNORECASE)
_NUMERIC = frozenset({ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.FLOAT})
_LENGTH = frozenset({ResourceType.STRING, ResourceType.OPAQUE})


@dataclass(frozen=True, slots=True)
class ValueRange:
    """Closed intervals of admitted numbers, or of admitted lengths in bytes (``length``)."""

    intervals: tuple[tuple[float, float], ...]
    length: bool
    text: str
    """The range as the definition writes it (for error messages)."""

    def admits(self, value: object) -> bool:
        """Whether ``value`` lies in the range; values of another kind are not this check's
        business (the type check comes first) and pass."""
        if self.length:
            if isinstance(value, str):
                measure: float = len(value.encode("utf-8"))
            elif isinstance(value, bytes | bytearray):
                measure = len(value)
            else:
                return True
        elif isinstance(value, int | float) and not isinstance(value, bool):
            measure = value
        else:
            return True
        return any(lo <= measure <= hi for lo, hi in self.intervals)

    def describe(self, value: object) -> str:
        """Why ``value`` is refused, without the value itself when it is a length (a key must
        not reach an error message)."""
        if self.length:
            size = len(value.encode("utf-8")) if isinstance(value, str) else len(value)  # type: ignore[arg-type]
            return f"{size} bytes is outside the range {self.text!r}"
        return f"{value!r} is outside the range {self.text!r}"


@functools.lru_cache(maxsize=512)
def value_range(text: str, type_: ResourceType) -> ValueRange | None:
    """The range ``text`` describes for a resource of ``type_``, or None when it is empty, not
    understood, or of a type that has no range check."""
    text = text.strip()
    if not text or (type_ not in _NUMERIC and type_ not in _LENGTH):
        return None
    body = text
    unit = _BYTES.search(body)
    if unit is not None:
        if type_ not in _LENGTH:
            return None
        body = body[: unit.start()]
    intervals: list[tuple[float, float]] = []
    has_interval = False
    for part in _SEPARATORS.split(body):
        match = _PART.fullmatch(part)
        if match is None:
            return None
        lo_text, hi_text = match.groups()
        if type_ is not ResourceType.FLOAT and ("." in lo_text or "." in (hi_text or "")):
            return None  # a decimal bound on an integer or a length: not a form we know
        lo = float(lo_text) if type_ is ResourceType.FLOAT else int(lo_text)
        hi = (
            lo
            if hi_text is None
            else (float(hi_text) if type_ is ResourceType.FLOAT else int(hi_text))
        )
        if hi < lo:
            return None
        has_interval = has_interval or hi_text is not None
        intervals.append((lo, hi))
    if type_ in _LENGTH:
        if unit is None and not (has_interval and len(intervals) == 1):
            return None  # a bare "64" or "10,26" for a string: ambiguous
        if any(lo < 0 for lo, _ in intervals):
            return None
    elif not has_interval:
        return None
    return ValueRange(tuple(intervals), type_ in _LENGTH, text)
