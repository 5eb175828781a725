"""Execute arguments: the ``0='v',1`` text of an Execute payload (LwM2M-TS-Core 1.1 §5.4.5).

The argument list is a comma-separated list of arguments; each argument is one digit ``0``-``9``
optionally followed by ``='value'``. The value may hold any printable ASCII character except the
single quote, the double quote and the backslash (the CHAR rule of the TS's ABNF). An empty
payload means "no arguments". Anything else is a 4.00 Bad Request.

>>> args = ExecuteArguments.parse("0='http://x',1")
>>> args[0], args[1], 2 in args
('http://x', None, False)
>>> str(args)
"0='http://x',1"
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from lwm2m.errors import BadRequest

__all__ = ["ExecuteArguments"]


def _is_value_char(char: str) -> bool:
    code = ord(char)
    return 0x21 <= code <= 0x7E and char not in "'\"\\"


class ExecuteArguments(Mapping[int, str | None]):
    """Parsed Execute arguments: digit -> value (None for an argument without value)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[int, str | None] | None = None) -> None:
        checked: dict[int, str | None] = {}
        for key, value in (items or {}).items():
            if type(key) is not int or not 0 <= key <= 9:
                raise BadRequest(f"Execute argument {key!r} is not a digit 0-9")
            if value is not None and not all(_is_value_char(c) for c in value):
                raise BadRequest(f"Execute argument {key} has a character not allowed in a value")
            checked[key] = value
        self._items = MappingProxyType(dict(sorted(checked.items())))

    @classmethod
    def parse(cls, text: str) -> ExecuteArguments:
        """Parse an Execute payload; raises :class:`~lwm2m.errors.BadRequest` when malformed."""
        if not text:
            return cls()
        items: dict[int, str | None] = {}
        pos = 0
        length = len(text)
        while True:
            digit = text[pos] if pos < length else ""
            if not (digit.isascii() and digit.isdigit()):
                raise BadRequest(f"Execute arguments: expected a digit at offset {pos}")
            key = int(digit)
            if key in items:
                raise BadRequest(f"Execute arguments: argument {key} given twice")
            pos += 1
            value: str | None = None
            if pos < length and text[pos] == "=":
                if pos + 1 >= length or text[pos + 1] != "'":
                    raise BadRequest(f"Execute arguments: expected a quoted value at {pos + 1}")
                end = text.find("'", pos + 2)
                if end < 0:
                    raise BadRequest("Execute arguments: unterminated quoted value")
                value = text[pos + 2 : end]
                if not all(_is_value_char(c) for c in value):
                    raise BadRequest(f"Execute arguments: argument {key} has a bad character")
                pos = end + 1
            items[key] = value
            if pos == length:
                return cls(items)
            if text[pos] != ",":
                raise BadRequest(f"Execute arguments: expected ',' at offset {pos}")
            pos += 1

    def __getitem__(self, key: int) -> str | None:
        return self._items[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __str__(self) -> str:
        return ",".join(
            str(key) if value is None else f"{key}='{value}'" for key, value in self._items.items()
        )

    def __repr__(self) -> str:
        return f"ExecuteArguments({dict(self._items)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ExecuteArguments):
            return dict(self._items) == dict(other._items)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))
