"""``pcsc:`` URIs: which card, which applet, which secrets (sans-IO; no pyscard needed).

::

    pcsc:[ATTR=VALUE[;ATTR=VALUE…]][?ATTR=VALUE[&ATTR=VALUE…]]

Attributes may stand before the ``?`` (separated by ``;``, like RFC 7512 path attributes) or
after it (separated by ``&``); each may appear once; values are percent-decoded.

=================  =================================================================
``reader``         the reader: its full name, a part of it, or its index (``0``, ``1``)
``atr``            the card's ATR: hex digits, ``.`` or ``X`` for any nibble, a final
                   ``*`` for any rest (``3B9F*``); among the readers ``reader`` allows
``aid``            the IoT SAFE applet's AID (hex; default ``A0000005590010``)
``type``           what the card is: ``uicc`` (default), ``euicc`` or ``ese``
``pin-source``     PIN1 from ``env:VAR`` or ``file:PATH`` (as in RFC 7512)
``pin-value``      PIN1 itself (redacted in every display)
``scp03-key-env``  run the applet channel under SCP03 (GP Amd D, level 33) with the static
                   keys in environment variable VAR: one hex AES key for ENC = MAC = DEK, or
                   ``ENC:MAC:DEK``
``scp03-kvn``      the key version number of those keys (hex, default ``30``)
``peer``           the label of the public key container COMPUTE DH uses for peer keys
``timeout``        seconds to wait for a card to appear (default 0)
=================  =================================================================

Without ``reader`` and ``atr``, the first reader holding a card is used.

>>> uri = PcscUri.parse("pcsc:reader=Virtual%20PCD%2000%2001;type=ese?pin-value=1234")
>>> uri.reader, uri.component_type.label, str(uri)
('Virtual PCD 00 01', 'eSE', 'pcsc:reader=Virtual%20PCD%2000%2001;type=ese;pin-value=REDACTED')
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from urllib.parse import quote, unquote_to_bytes

from lwm2m.secure.interfaces import ComponentType, InvalidSecureComponentUri, PinRequired
from lwm2m.secure.pcsc import iotsafe
from lwm2m.secure.pcsc.scp03 import StaticKeys

__all__ = ["PcscUri", "atr_matcher", "parse_pcsc_uri"]

_TYPES = {"uicc": ComponentType.UICC, "euicc": ComponentType.EUICC, "ese": ComponentType.ESE}
_NAMES = {
    "reader": "reader",
    "atr": "atr",
    "aid": "aid",
    "type": "type",
    "pin-source": "pin_source",
    "pin-value": "pin_value",
    "scp03-key-env": "scp03_key_env",
    "scp03-kvn": "scp03_kvn",
    "peer": "peer",
    "timeout": "timeout",
}
_ATR = re.compile(r"(?:[0-9A-F.X]{2})*\*?", re.ASCII)
_SAFE = "-._~:[]@!$'()*+,"


def atr_matcher(pattern: str) -> Callable[[bytes], bool]:
    """A predicate on ATRs for ``pattern`` (see the module docstring).

    >>> match = atr_matcher("3b 9f ..*")
    >>> match(bytes.fromhex("3B9F9680")), match(bytes.fromhex("3B8F80"))
    (True, False)
    """
    text = re.sub(r"[\s:]", "", pattern).upper()
    if not text or not _ATR.fullmatch(text):
        raise InvalidSecureComponentUri(
            "atr must be hex digits, '.' or 'X' for any nibble, and an optional final '*'"
        )
    regex = re.compile(
        "".join("[0-9A-F]" if c in ".X" else ".*" if c == "*" else c for c in text), re.ASCII
    )
    return lambda atr: regex.fullmatch(bytes(atr).hex().upper()) is not None


@dataclass(frozen=True, slots=True)
class PcscUri:
    """A parsed ``pcsc:`` URI (see the module docstring)."""

    reader: str | int | None = None
    atr: str | None = None
    aid: bytes = iotsafe.IOT_SAFE_AID
    type: str = "uicc"
    pin_source: str | None = None
    pin_value: str | None = field(default=None, repr=False)
    scp03_key_env: str | None = None
    scp03_kvn: int = 0x30
    peer: str | None = None
    timeout: float = 0.0

    @classmethod
    def parse(cls, uri: str) -> PcscUri:
        """Parse ``uri``; :class:`InvalidSecureComponentUri` (a ``ValueError``) names the
        problem."""
        if not uri[:5].lower() == "pcsc:":
            raise InvalidSecureComponentUri("not a pcsc: URI")
        path, _, query = uri[5:].partition("?")
        raw: dict[str, str] = {}
        for part, sep in ((path, ";"), (query, "&")):
            for item in part.split(sep) if part else ():
                name, eq, value = item.partition("=")
                name = name.lower()
                if not eq or not name:
                    raise InvalidSecureComponentUri(
                        f"pcsc: URI attribute {item!r} is not name=value"
                    )
                if name not in _NAMES:
                    raise InvalidSecureComponentUri(
                        f"unknown pcsc: URI attribute {name!r} (known: {', '.join(_NAMES)})"
                    )
                if name in raw:
                    raise InvalidSecureComponentUri(f"attribute {name!r} given twice")
                raw[name] = _decode(value, name)
        values: dict[str, object] = {}
        for name, text in raw.items():
            values[_NAMES[name]] = _value(name, text)
        if "pin_source" in values and "pin_value" in values:
            raise InvalidSecureComponentUri("give pin-source or pin-value, not both")
        return cls(**values)  # type: ignore[arg-type]

    @property
    def component_type(self) -> ComponentType:
        return _TYPES[self.type]

    @property
    def atr_filter(self) -> Callable[[bytes], bool] | None:
        return atr_matcher(self.atr) if self.atr is not None else None

    def __str__(self) -> str:
        """The URI again, percent-encoded, with ``pin-value`` redacted."""
        parts: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            name = f.name.replace("_", "-")
            if f.name == "pin_value":
                text = "REDACTED"
            elif isinstance(value, bytes):
                text = value.hex().upper()
            elif f.name == "scp03_kvn":
                text = f"{value:02X}"
            else:
                text = quote(str(value), safe=_SAFE)
            parts.append(f"{name}={text}")
        return "pcsc:" + ";".join(parts)

    def __repr__(self) -> str:
        return f"PcscUri({str(self)!r})"

    def resolve_pin(self, pin: str | None = None) -> str | None:
        """PIN1: ``pin`` if given, else ``pin-value``, else read from ``pin-source``; None when
        the URI names none (a card with PIN1 disabled).

        :raises PinRequired: ``pin-source`` cannot be read.
        """
        if pin is not None:
            return pin
        if self.pin_value is not None:
            return self.pin_value
        source = self.pin_source
        if source is None:
            return None
        if source.startswith("env:"):
            value = os.environ.get(source[4:])
            if value is None:
                raise PinRequired(f"pin-source: environment variable {source[4:]} is not set")
            return value
        path = source[5:] if source.startswith("file:") else source
        try:
            with open(path, encoding="utf-8") as file:
                return file.read().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise PinRequired(f"pin-source: cannot read the PIN file {path!r}: {exc}") from None

    def scp03_keys(self) -> StaticKeys | None:
        """The SCP03 static keys named by ``scp03-key-env``, or None.

        :raises PinRequired: the variable is not set.
        :raises InvalidSecureComponentUri: its value is not one or three AES keys in hex.
        """
        if self.scp03_key_env is None:
            return None
        text = os.environ.get(self.scp03_key_env)
        if text is None:
            raise PinRequired(
                f"scp03-key-env: environment variable {self.scp03_key_env} is not set"
            )
        keys = [k for k in re.split(r"[\s:,]+", text.strip()) if k]
        if len(keys) == 1:
            keys *= 3
        try:
            if len(keys) != 3:
                raise ValueError("three keys")
            return StaticKeys.from_hex(keys[0], keys[1], keys[2], kvn=self.scp03_kvn)
        except ValueError:
            raise InvalidSecureComponentUri(
                f"environment variable {self.scp03_key_env} must hold one AES key (hex) for "
                "ENC = MAC = DEK, or ENC:MAC:DEK"
            ) from None


def _decode(raw: str, name: str) -> str:
    if re.search(r"%(?![0-9A-Fa-f]{2})", raw):
        raise InvalidSecureComponentUri(f"{name}: malformed percent-encoding")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSecureComponentUri(f"{name}: value is not UTF-8") from None


def _value(name: str, text: str) -> object:
    if name == "reader":
        if not text:
            raise InvalidSecureComponentUri("reader needs a name or an index")
        return int(text) if text.isascii() and text.isdigit() else text
    if name == "atr":
        atr_matcher(text)
        return text
    if name == "aid":
        try:
            aid = bytes.fromhex(text)
        except ValueError:
            aid = b""
        if not 5 <= len(aid) <= 16:
            raise InvalidSecureComponentUri("aid must be 5..16 bytes in hex")
        return aid
    if name == "type":
        if text.lower() not in _TYPES:
            raise InvalidSecureComponentUri(f"type must be one of {', '.join(_TYPES)}")
        return text.lower()
    if name == "scp03-kvn":
        try:
            kvn = int(text, 16)
        except ValueError:
            kvn = -1
        if not 0 <= kvn <= 0xFF:
            raise InvalidSecureComponentUri("scp03-kvn must be one byte in hex")
        return kvn
    if name == "timeout":
        try:
            seconds = float(text)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= 3600:
            raise InvalidSecureComponentUri("timeout must be 0..3600 seconds")
        return seconds
    if name == "peer":
        if not 1 <= len(text.encode()) <= 60:
            raise InvalidSecureComponentUri("peer must be an IoT SAFE label of 1..60 bytes")
        return text
    if not text:
        raise InvalidSecureComponentUri(f"{name} needs a value")
    return text


def parse_pcsc_uri(uri: str) -> PcscUri:
    """:meth:`PcscUri.parse`.

    >>> parse_pcsc_uri("pcsc:?reader=1").reader
    1
    """
    return PcscUri.parse(uri)
