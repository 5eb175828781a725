"""CoRE Link Format (CoAP Content-Format 40, RFC 6690) and the LwM2M attributes it carries
(LwM2M-TS-Core 1.1 §5.1.2 "Attributes", and the link lists of Bootstrap-Discover §5.2.7,
Register §5.3.1 and Discover §5.4.2).

A payload is a comma-separated list of links ``<uri>;name=value;name="quoted";flag``::

    </>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</5>;ver=1.1           (Register)
    </3/0>;pmin=10,</3/0/1>,</3/0/7>;dim=3                          (Discover)
    </>;lwm2m="1.1",</0/1>;ssid=101;uri="coaps://example.org:5684"  (Bootstrap-Discover)

:class:`Link` is one link: its URI reference and its parameters in order (a parameter without
value — RFC 6690 allows ``;flag`` — has the value None). Names are case-insensitive and kept in
lower case. Quoted strings may hold ``,`` ``;`` and backslash escapes. Typed accessors read the
LwM2M attributes (``ver``, ``dim``, ``ssid``, ``uri``, ``lwm2m``, ``ct``, ``rt`` and the
notification attributes).

:class:`Attributes` holds the notification attributes of Write-Attributes and Discover —
``pmin``, ``pmax``, ``gt``, ``lt``, ``st``, ``epmin``, ``epmax`` — validated as the TS requires
(§5.1.2: numbers; ``lt`` < ``gt``; ``lt`` + 2 * ``st`` < ``gt``; ``pmin`` ≤ ``pmax``;
``epmin`` ≤ ``epmax``), converted to and from CoAP query parameters (a parameter without value
unsets the attribute, §5.4.4).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from lwm2m.errors import CodecError, ModelError
from lwm2m.model.path import Path

__all__ = ["Attributes", "Link", "decode_links", "encode_links", "format_links", "parse_links"]

ParamValue = str | int | float | None

_ALPHA_DIGIT = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# RFC 6690 §2 ptokenchar
_PTOKEN_CHARS = frozenset(_ALPHA_DIGIT + "!#$%&'()*+-./:<=>?@[]^_`{|}~")
# RFC 5987 parmname (plus "*" for the ext-value names such as title*)
_NAME_CHARS = frozenset(_ALPHA_DIGIT + "!#$&+-.^_`|~*")
_WHITESPACE = " \t\r\n"
# Parameters whose value LwM2M and RFC 6690 write as a quoted string even when it is a ptoken.
_ALWAYS_QUOTED = frozenset({"rt", "if", "title", "anchor", "lwm2m", "uri", "rel", "rev"})

_VERSION = re.compile(r"[0-9]+\.[0-9]+")
_CARDINAL = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_NUMBER_TEXT = 100


def _fail(message: str, path: Path | None = None) -> CodecError:
    return CodecError(message, path=str(path) if path is not None else None)


def _format_number(value: int | float) -> str:
    """Plain decimal notation, the shortest that reads back as ``value``: Core §5.1.2 gives the
    attribute values the form ``1*DIGIT ["." 1*DIGIT]`` (with a sign for gt/lt), so no
    exponent (``1e+20`` is ``100000000000000000000``, ``1e-07`` is ``0.0000001``), up to the
    100 characters a value may have here.

    >>> _format_number(1e20), _format_number(-2.5e-7), _format_number(3.0)
    ('100000000000000000000', '-0.00000025', '3')
    """
    if not isinstance(value, float):
        return str(value)
    text = repr(value)  # the shortest round-trip digits
    if "e" in text:
        plain = format(Decimal(text), "f")
        # beyond what any parser here reads (1e-162 has 160 digits): the exponent form stays
        return plain if len(plain) <= _MAX_NUMBER_TEXT else text
    return text[:-2] if text.endswith(".0") else text


def _is_ptoken(value: str) -> bool:
    return bool(value) and all(c in _PTOKEN_CHARS for c in value)


def _check_uri(uri: str) -> None:
    bad = next((c for c in uri if c in '<>"' or ord(c) <= 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise _fail(f"link URI {uri[:60]!r} contains {bad!r}")


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a CoRE link-format document.

    >>> link = Link.parse('</0/1>;ssid=101;uri="coaps://example.org:5684"')
    >>> link.path, link.ssid, link.server_uri
    (Path('/0/1'), 101, 'coaps://example.org:5684')
    >>> str(Link("/3/0/7", {"dim": 3}))
    '</3/0/7>;dim=3'
    """

    uri: str
    params: tuple[tuple[str, str | None], ...]

    def __init__(
        self,
        uri: str,
        params: Mapping[str, ParamValue] | Iterable[tuple[str, ParamValue]] = (),
    ) -> None:
        if not isinstance(uri, str):
            raise _fail(f"link URI must be text, got {type(uri).__name__}")
        _check_uri(uri)
        pairs = params.items() if isinstance(params, Mapping) else params
        normalized: list[tuple[str, str | None]] = []
        for name, value in pairs:
            if not isinstance(name, str) or not name or any(c not in _NAME_CHARS for c in name):
                raise _fail(f"invalid link parameter name {name!r}")
            if isinstance(value, bool) or not isinstance(value, str | int | float | None):
                raise _fail(f"link parameter {name}: unsupported value {value!r}")
            text = value if value is None or isinstance(value, str) else _format_number(value)
            normalized.append((name.lower(), text))
        object.__setattr__(self, "uri", uri)
        object.__setattr__(self, "params", tuple(normalized))

    # -- text -----------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Link:
        """Parse exactly one link."""
        links = parse_links(text)
        if len(links) != 1:
            raise _fail(f"expected one link, found {len(links)}")
        return links[0]

    def __str__(self) -> str:
        parts = [f"<{self.uri}>"]
        for name, value in self.params:
            if value is None:
                parts.append(name)
            elif name in _ALWAYS_QUOTED or not _is_ptoken(value):
                escaped = value.replace("\\", "\\\\").replace('"', '\\"')
                parts.append(f'{name}="{escaped}"')
            else:
                parts.append(f"{name}={value}")
        return ";".join(parts)

    # -- generic access -------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        """True when the parameter ``name`` is present (with or without value)."""
        key = name.lower()
        return any(n == key for n, _ in self.params)

    def get(self, name: str) -> str | None:
        """The value of the first parameter ``name``; None when absent or valueless."""
        key = name.lower()
        return next((v for n, v in self.params if n == key), None)

    @property
    def path(self) -> Path | None:
        """The URI as an LwM2M path (``</>`` is the root), or None if it is not one."""
        try:
            return Path.parse(self.uri) if self.uri.startswith("/") else None
        except ModelError:
            return None

    # -- LwM2M attributes -----------------------------------------------------------------------

    def _required(self, name: str) -> str | None:
        value = self.get(name)
        if value is None and self.has(name):
            raise _fail(f"link <{self.uri}>: attribute {name} has no value")
        return value

    def _version(self, name: str) -> str | None:
        value = self._required(name)
        if value is not None and not _VERSION.fullmatch(value):
            raise _fail(f"link <{self.uri}>: {name}={value[:40]!r} is not a MAJOR.MINOR version")
        return value

    def _cardinal(self, name: str, maximum: int | None = None) -> int | None:
        value = self._required(name)
        if value is None:
            return None
        number = _parse_cardinal(name, value, self._where())
        if maximum is not None and number > maximum:
            raise _fail(f"link <{self.uri}>: {name}={number} is above {maximum}")
        return number

    def _where(self) -> str:
        return f"link <{self.uri[:60]}>"

    @property
    def version(self) -> str | None:
        """``ver``: the object version (Register, Discover), e.g. ``"1.1"``."""
        return self._version("ver")

    @property
    def lwm2m_version(self) -> str | None:
        """``lwm2m``: the enabler version (Bootstrap-Discover ``</>;lwm2m="1.1"``)."""
        return self._version("lwm2m")

    @property
    def dim(self) -> int | None:
        """``dim``: the number of instances of a multiple resource (Discover)."""
        return self._cardinal("dim", 65535)

    @property
    def ssid(self) -> int | None:
        """``ssid``: the Short Server ID of a Security or Server instance (Bootstrap-Discover)."""
        return self._cardinal("ssid", 65535)

    @property
    def server_uri(self) -> str | None:
        """``uri``: the server URI of a Security instance (Bootstrap-Discover)."""
        return self._required("uri")

    @property
    def content_formats(self) -> tuple[int, ...]:
        """``ct``: the content formats (a number, or a quoted space-separated list)."""
        value = self._required("ct")
        if value is None:
            return ()
        numbers = tuple(_parse_cardinal("ct", part, self._where()) for part in value.split(" "))
        if any(n > 65535 for n in numbers):
            raise _fail(f"{self._where()}: ct={value[:40]!r} holds a number above 65535")
        return numbers

    @property
    def resource_types(self) -> tuple[str, ...]:
        """``rt``: the resource types (space-separated), e.g. ``("oma.lwm2m",)``."""
        value = self._required("rt")
        return tuple(value.split()) if value is not None else ()

    @property
    def attributes(self) -> Attributes:
        """The notification attributes of this link (other parameters are ignored)."""
        return Attributes.from_params(self.params, where=self._where())

    @property
    def pmin(self) -> int | None:
        return self._cardinal("pmin")

    @property
    def pmax(self) -> int | None:
        return self._cardinal("pmax")

    @property
    def epmin(self) -> int | None:
        return self._cardinal("epmin")

    @property
    def epmax(self) -> int | None:
        return self._cardinal("epmax")

    @property
    def gt(self) -> float | None:
        return self._decimal("gt")

    @property
    def lt(self) -> float | None:
        return self._decimal("lt")

    @property
    def st(self) -> float | None:
        return self._decimal("st")

    def _decimal(self, name: str) -> float | None:
        value = self._required(name)
        return None if value is None else _parse_decimal(name, value, self._where())


def _parse_cardinal(name: str, value: str, where: str) -> int:
    if len(value) > _MAX_NUMBER_TEXT or not _CARDINAL.fullmatch(value):
        raise _fail(f"{where}: {name}={value[:40]!r} is not a non-negative integer")
    return int(value)


def _parse_decimal(name: str, value: str, where: str) -> float:
    if len(value) > _MAX_NUMBER_TEXT or not _DECIMAL.fullmatch(value):
        raise _fail(f"{where}: {name}={value[:40]!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise _fail(f"{where}: {name}={value[:40]!r} is out of range")
    return number


# -- link lists --------------------------------------------------------------------------------


class _Parser:
    """A cursor over link-format text (RFC 6690 §2 ABNF); whitespace around links is tolerated."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, problem: str) -> CodecError:
        return _fail(f"invalid link format at offset {self.pos}: {problem}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_whitespace(self) -> None:
        while self.peek() and self.peek() in _WHITESPACE:
            self.pos += 1

    def take_while(self, allowed: frozenset[str]) -> str:
        start = self.pos
        while self.peek() and self.peek() in allowed:
            self.pos += 1
        return self.text[start : self.pos]

    def links(self) -> list[Link]:
        self.skip_whitespace()
        if not self.peek():
            return []
        links = [self.link()]
        while self.peek() == ",":
            self.pos += 1
            links.append(self.link())
        if self.peek():
            raise self.error(f"expected ',' between links, found {self.peek()!r}")
        return links

    def link(self) -> Link:
        self.skip_whitespace()
        if self.peek() != "<":
            raise self.error("a link starts with '<'")
        end = self.text.find(">", self.pos)
        if end < 0:
            raise self.error("unterminated '<'")
        uri = self.text[self.pos + 1 : end]
        try:
            _check_uri(uri)
        except CodecError as exc:
            raise self.error(str(exc)) from None
        self.pos = end + 1
        params: list[tuple[str, str | None]] = []
        while self.peek() == ";":
            self.pos += 1
            params.append(self.param())
        self.skip_whitespace()
        return Link(uri, params)

    def param(self) -> tuple[str, str | None]:
        name = self.take_while(_NAME_CHARS)
        if not name:
            raise self.error("expected a parameter name")
        if self.peek() != "=":
            return name, None
        self.pos += 1
        if self.peek() == '"':
            return name, self.quoted()
        value = self.take_while(_PTOKEN_CHARS)
        if not value:
            raise self.error(f"parameter {name} has an empty value")
        return name, value

    def quoted(self) -> str:
        self.pos += 1  # opening quote
        chars: list[str] = []
        while True:
            char = self.peek()
            if not char:
                raise self.error("unterminated quoted string")
            self.pos += 1
            if char == '"':
                return "".join(chars)
            if char == "\\":
                char = self.peek()
                if not char:
                    raise self.error("unterminated quoted string")
                self.pos += 1
            chars.append(char)


def parse_links(text: str) -> list[Link]:
    """Every link of a link-format document (empty text gives no links)."""
    return _Parser(text).links()


def format_links(links: Iterable[Link]) -> str:
    """The link-format text of ``links``."""
    return ",".join(map(str, links))


def decode_links(data: bytes) -> list[Link]:
    """Decode a CF 40 payload; CodecError when it is not UTF-8 link-format text."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"link format is not valid UTF-8 (byte {exc.start})") from None
    return parse_links(text)


def encode_links(links: Iterable[Link]) -> bytes:
    """Encode ``links`` as a CF 40 payload."""
    return format_links(links).encode("utf-8")


# -- notification attributes -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attributes:
    """The notification attributes of LwM2M 1.1 (LwM2M-TS-Core §5.1.2), all optional.

    ``unset`` names attributes a Write-Attributes removes (a query parameter without value).

    >>> a = Attributes.from_query("pmin=10&pmax=60&gt=50&lt=20&st=5")
    >>> a.pmax, a.gt, a.to_query()
    (60, 50.0, 'pmin=10&pmax=60&gt=50&lt=20&st=5')
    >>> Attributes(gt=10, lt=20)
    Traceback (most recent call last):
    ...
    lwm2m.errors.CodecError: attributes: lt (20.0) must be less than gt (10.0)
    """

    pmin: int | None = None
    pmax: int | None = None
    gt: float | None = None
    lt: float | None = None
    st: float | None = None
    epmin: int | None = None
    epmax: int | None = None
    unset: frozenset[str] = field(default=frozenset())

    NAMES: ClassVar[tuple[str, ...]] = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax")
    _INTEGERS: ClassVar[frozenset[str]] = frozenset({"pmin", "pmax", "epmin", "epmax"})

    def __post_init__(self) -> None:
        self._validate("attributes")

    def _validate(self, where: str) -> None:
        for name in self.NAMES:
            value = getattr(self, name)
            if value is None:
                continue
            if name in self._INTEGERS:
                if type(value) is not int or value < 0:
                    raise _fail(f"{where}: {name} must be a non-negative integer, got {value!r}")
            else:
                if type(value) not in (int, float) or not math.isfinite(value):
                    raise _fail(f"{where}: {name} must be a finite number, got {value!r}")
                object.__setattr__(self, name, float(value))
        unset = frozenset(self.unset)
        unknown = sorted(unset - set(self.NAMES))
        if unknown:
            raise _fail(f"{where}: unknown attribute {unknown[0]!r} to unset")
        both = sorted(n for n in unset if getattr(self, n) is not None)
        if both:
            raise _fail(f"{where}: attribute {both[0]} is both set and unset")
        object.__setattr__(self, "unset", unset)
        if self.st is not None and self.st < 0:
            raise _fail(f"{where}: st must not be negative, got {_format_number(self.st)}")
        if self.pmin is not None and self.pmax is not None and self.pmin > self.pmax:
            raise _fail(f"{where}: pmin ({self.pmin}) must not exceed pmax ({self.pmax})")
        if self.epmin is not None and self.epmax is not None and self.epmin > self.epmax:
            raise _fail(f"{where}: epmin ({self.epmin}) must not exceed epmax ({self.epmax})")
        if self.lt is not None and self.gt is not None:
            if not self.lt < self.gt:
                raise _fail(f"{where}: lt ({self.lt}) must be less than gt ({self.gt})")
            if self.st is not None and not self.lt + 2 * self.st < self.gt:
                raise _fail(
                    f"{where}: lt + 2*st ({self.lt} + 2*{self.st}) must be less than gt ({self.gt})"
                )

    @property
    def is_empty(self) -> bool:
        return not self.unset and all(getattr(self, n) is None for n in self.NAMES)

    # -- conversions ----------------------------------------------------------------------------

    @classmethod
    def from_params(
        cls, params: Iterable[tuple[str, str | None]], *, where: str = "attributes"
    ) -> Attributes:
        """The attributes among link parameters (others are ignored; a valueless attribute is
        unset)."""
        values: dict[str, int | float] = {}
        unset: set[str] = set()
        for raw_name, value in params:
            name = raw_name.lower()
            if name not in cls.NAMES:
                continue
            if name in values or name in unset:
                raise _fail(f"{where}: attribute {name} given twice")
            if value is None:
                unset.add(name)
            elif name in cls._INTEGERS:
                values[name] = _parse_cardinal(name, value, where)
            else:
                values[name] = _parse_decimal(name, value, where)
        try:
            return cls(**values, unset=frozenset(unset))  # type: ignore[arg-type]
        except CodecError as exc:
            message = str(exc).removeprefix("attributes: ")
            raise _fail(f"{where}: {message}") from None

    @classmethod
    def from_query(cls, query: str | Iterable[str], *, path: Path | None = None) -> Attributes:
        """Parse Write-Attributes query parameters: a ``"pmin=10&pmax=60"`` string or the
        Uri-Query option values (``["pmin=10", "lt"]``). Unknown parameters are an error."""
        items = [q for q in query.split("&") if q] if isinstance(query, str) else list(query)
        params: list[tuple[str, str | None]] = []
        for item in items:
            name, sep, value = item.partition("=")
            if name not in cls.NAMES:
                raise _fail(f"attributes: unknown attribute {name[:40]!r}", path)
            if sep and not value:
                raise _fail(f"attributes: attribute {name} has an empty value", path)
            params.append((name, value if sep else None))
        try:
            return cls.from_params(params, where="attributes")
        except CodecError as exc:
            raise _fail(str(exc), path) from None

    def to_params(self) -> tuple[tuple[str, str | None], ...]:
        """The attributes as link parameters (set ones with their value, unset ones without)."""
        params: list[tuple[str, str | None]] = []
        for name in self.NAMES:
            value = getattr(self, name)
            if value is not None:
                params.append((name, _format_number(value)))
            elif name in self.unset:
                params.append((name, None))
        return tuple(params)

    def query_options(self) -> list[str]:
        """One Uri-Query option value per attribute: ``["pmin=10", "lt"]``."""
        return [name if value is None else f"{name}={value}" for name, value in self.to_params()]

    def to_query(self) -> str:
        """The query string: ``"pmin=10&pmax=60"``."""
        return "&".join(self.query_options())
