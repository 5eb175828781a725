"""Choosing a Secure Component backend by URI, with lazy imports (ARCHITECTURE.md decision 4).

=============================================  ==================================================
``soft:PATH[?ATTRS]``                          software component in an encrypted file
                                               (:mod:`lwm2m.secure.soft`); attributes
                                               ``passphrase-env=VAR`` or ``key-env=VAR``
``pkcs11:PATH-ATTRS[?QUERY-ATTRS]``            PKCS#11 token (RFC 7512 URI;
                                               :mod:`lwm2m.secure.pkcs11`)
``pcsc:[ATTRS][?ATTRS]``                       PC/SC smart card (UICC, eSE) with the GSMA IoT
                                               SAFE applet (:mod:`lwm2m.secure.pcsc`; URI
                                               attributes in :mod:`lwm2m.secure.pcsc.uri`)
=============================================  ==================================================

The PKCS#11 URI follows RFC 7512: path attributes (``token``, ``manufacturer``, ``serial``,
``model``, ``library-manufacturer``, ``library-description``, ``library-version``, ``object``,
``type``, ``id``, ``slot-description``, ``slot-manufacturer``, ``slot-id``) are separated by
``;``, query attributes (``pin-source``, ``pin-value``, ``module-name``, ``module-path``) by
``&``; values are percent-decoded (``id`` is binary), an attribute may appear once, and
vendor-specific attributes start with ``x-``. Unknown standard attributes are rejected.
``pin-source`` accepts ``file:PATH`` (or a bare path) and this project's ``env:VAR``.
This project reads one vendor attribute: ``x-component-type`` (``hsm``, ``tee``, ``ese``,
``uicc``, ``euicc``, ``software``) overrides what the component reports itself as.

:func:`missing_modules` tells which optional Python modules each backend lacks; the CLI prints
it as a hint and the tests use it to skip (or, under ``CI=true``, fail).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from lwm2m.secure.interfaces import (
    BackendNotAvailable,
    ComponentType,
    InvalidSecureComponentUri,
    PinRequired,
    SecureComponent,
)
from lwm2m.secure.redact import redact_uri

__all__ = [
    "BACKENDS",
    "ENV_SECURE_COMPONENT",
    "Pkcs11Uri",
    "SoftUri",
    "missing_modules",
    "open_component",
    "scheme_of",
]

#: The environment variable the CLI reads when ``--secure-component`` is not given.
ENV_SECURE_COMPONENT = "LWM2M_SECURE_COMPONENT"

#: Backend scheme -> (module, optional Python modules it needs).
BACKENDS: Mapping[str, tuple[str, tuple[str, ...]]] = MappingProxyType(
    {
        "soft": ("lwm2m.secure.soft", ()),
        "pkcs11": ("lwm2m.secure.pkcs11", ("pkcs11",)),
        "pcsc": ("lwm2m.secure.pcsc", ("smartcard",)),
    }
)

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def scheme_of(uri: str) -> str:
    """The lower-case scheme of ``uri``.

    >>> scheme_of("PKCS11:token=a")
    'pkcs11'
    """
    match = _SCHEME.match(uri)
    if match is None:
        raise InvalidSecureComponentUri(
            f"{redact_uri(uri)!r} is not a Secure Component URI (soft:PATH, pkcs11:…, pcsc:…)"
        )
    return match[1].lower()


def missing_modules() -> dict[str, tuple[str, ...]]:
    """Optional Python modules each backend needs and that are not installed.

    >>> missing_modules()["soft"]
    ()
    """
    return {
        scheme: tuple(name for name in needs if importlib.util.find_spec(name) is None)
        for scheme, (_, needs) in BACKENDS.items()
    }


def open_component(
    uri: str,
    *,
    passphrase: str | None = None,
    pin: str | None = None,
    create: bool = False,
    **options: Any,
) -> SecureComponent:
    """Open the Secure Component named by ``uri``.

    :param uri: ``soft:…``, ``pkcs11:…`` or ``pcsc:…`` (see the module docstring).
    :param passphrase: the ``soft:`` passphrase, instead of a ``passphrase-env`` attribute.
    :param pin: the PKCS#11 user PIN or the card's PIN1, instead of ``pin-source``/``pin-value``.
    :param create: ``soft:`` only — create the file when it does not exist.
    :param options: passed to the backend's constructor (e.g. ``dloa=``, ``scrypt_log2_n=``).
    :raises InvalidSecureComponentUri: the URI is malformed or names an unknown backend.
    :raises BackendNotAvailable: the backend or its Python package is missing.
    """
    scheme = scheme_of(uri)
    if scheme not in BACKENDS:
        raise InvalidSecureComponentUri(
            f"unknown Secure Component backend {scheme!r} (known: {', '.join(BACKENDS)})"
        )
    opener = _opener(scheme)
    _check_installed(scheme)
    component: SecureComponent = opener(
        uri, passphrase=passphrase, pin=pin, create=create, **options
    )
    return component


def _opener(scheme: str) -> Any:
    """The backend module's ``open_uri``; a backend without one is not implemented yet."""
    name = BACKENDS[scheme][0]
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            _check_installed(scheme)
            raise
        module = None
    opener = getattr(module, "open_uri", None)
    if opener is None:
        hint = " (PC/SC smart card with the GSMA IoT SAFE applet)" if scheme == "pcsc" else ""
        raise BackendNotAvailable(
            f"the {scheme}: backend{hint} is not implemented yet; use soft: or pkcs11:"
        )
    return opener


def _check_installed(scheme: str) -> None:
    missing = missing_modules()[scheme]
    if missing:
        raise BackendNotAvailable(
            f"the {scheme}: backend needs the Python module(s) {', '.join(missing)}: "
            f"pip install 'lwm2m[{scheme}]'"
        )


# --- soft: -------------------------------------------------------------------------------------

_SOFT_ATTRS = frozenset({"passphrase-env", "key-env"})


@dataclass(frozen=True, slots=True)
class SoftUri:
    """``soft:PATH[?passphrase-env=VAR|key-env=VAR]`` (PATH percent-decoded, ``~`` expanded).

    >>> SoftUri.parse("soft:/var/lib/my%20sc.bin?passphrase-env=SC_PASS")
    SoftUri(path=PosixPath('/var/lib/my sc.bin'), passphrase_env='SC_PASS', key_env=None)
    """

    path: Path
    passphrase_env: str | None = None
    key_env: str | None = None

    @classmethod
    def parse(cls, uri: str) -> SoftUri:
        if scheme_of(uri) != "soft":
            raise InvalidSecureComponentUri("not a soft: URI")
        rest = uri[len("soft:") :]
        path_text, _, query = rest.partition("?")
        path_text = _decode_text(path_text, "path")
        if not path_text:
            raise InvalidSecureComponentUri("a soft: URI needs a file path: soft:PATH")
        attrs = _split_attributes(query, "&", "soft:") if query else {}
        unknown = set(attrs) - _SOFT_ATTRS
        if unknown:
            raise InvalidSecureComponentUri(
                f"unknown soft: attribute(s) {', '.join(sorted(unknown))} "
                "(known: passphrase-env, key-env)"
            )
        if len(attrs) > 1:
            raise InvalidSecureComponentUri("give passphrase-env or key-env, not both")
        decoded = {name: _decode_text(value, name) for name, value in attrs.items()}
        for name, value in decoded.items():
            if not value:
                raise InvalidSecureComponentUri(f"{name} needs an environment variable name")
        return cls(
            Path(path_text).expanduser(),
            passphrase_env=decoded.get("passphrase-env"),
            key_env=decoded.get("key-env"),
        )


# --- pkcs11: (RFC 7512) ------------------------------------------------------------------------

_PATH_ATTRS = {
    "token": "token",
    "manufacturer": "manufacturer",
    "serial": "serial",
    "model": "model",
    "library-manufacturer": "library_manufacturer",
    "library-description": "library_description",
    "library-version": "library_version",
    "object": "object",
    "type": "type",
    "id": "id",
    "slot-description": "slot_description",
    "slot-manufacturer": "slot_manufacturer",
    "slot-id": "slot_id",
}
_QUERY_ATTRS = {
    "pin-source": "pin_source",
    "pin-value": "pin_value",
    "module-name": "module_name",
    "module-path": "module_path",
}
_OBJECT_TYPES = frozenset({"public", "private", "cert", "secret-key", "data"})
_LIBRARY_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
# RFC 7512 §2.3 pk11-pchar / pk11-qchar: characters left unencoded when formatting.
_PATH_SAFE = "-._~:[]@!$'()*+,="
_QUERY_SAFE = "-._~:[]@!$'()*+,=/?|"
_COMPONENT_TYPES = {
    "software": ComponentType.SOFTWARE,
    "uicc": ComponentType.UICC,
    "euicc": ComponentType.EUICC,
    "ese": ComponentType.ESE,
    "tee": ComponentType.TEE,
    "hsm": ComponentType.HSM,
}


@dataclass(frozen=True, slots=True)
class Pkcs11Uri:
    """A parsed RFC 7512 PKCS#11 URI.

    >>> uri = Pkcs11Uri.parse(
    ...     "pkcs11:token=My%20Token;id=%01%02?module-path=/usr/lib/p11.so&pin-value=1234")
    >>> uri.token, uri.id, uri.module_path
    ('My Token', b'\\x01\\x02', '/usr/lib/p11.so')
    >>> str(uri)
    'pkcs11:token=My%20Token;id=%01%02?pin-value=REDACTED&module-path=/usr/lib/p11.so'
    """

    token: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    model: str | None = None
    library_manufacturer: str | None = None
    library_description: str | None = None
    library_version: str | None = None
    object: str | None = None
    type: str | None = None
    id: bytes | None = None
    slot_description: str | None = None
    slot_manufacturer: str | None = None
    slot_id: int | None = None
    pin_source: str | None = None
    pin_value: str | None = field(default=None, repr=False)
    module_name: str | None = None
    module_path: str | None = None
    vendor: Mapping[str, str] = field(default_factory=dict)
    """Vendor-specific (``x-``) attributes, path and query alike."""

    @classmethod
    def parse(cls, uri: str) -> Pkcs11Uri:
        """Parse ``uri``; raises :class:`InvalidSecureComponentUri` naming the problem."""
        if scheme_of(uri) != "pkcs11":
            raise InvalidSecureComponentUri("not a pkcs11: URI")
        rest = uri[len("pkcs11:") :]
        path, _, query = rest.partition("?")
        values: dict[str, Any] = {}
        vendor: dict[str, str] = {}
        for part, sep, known in ((path, ";", _PATH_ATTRS), (query, "&", _QUERY_ATTRS)):
            for name, raw in _split_attributes(part, sep, "pkcs11:").items():
                if name in known:  # duplicates were refused by _split_attributes
                    values[known[name]] = _pkcs11_value(name, raw)
                elif name.startswith("x-"):
                    if name in vendor:
                        raise InvalidSecureComponentUri(f"attribute {name!r} given twice")
                    vendor[name] = _decode_text(raw, name)
                else:
                    where = "path" if sep == ";" else "query"
                    raise InvalidSecureComponentUri(
                        f"unknown PKCS#11 URI {where} attribute {name!r} (RFC 7512)"
                    )
        if "pin_source" in values and "pin_value" in values:
            raise InvalidSecureComponentUri("give pin-source or pin-value, not both")
        kind = vendor.get("x-component-type")
        if kind is not None and kind.lower() not in _COMPONENT_TYPES:
            raise InvalidSecureComponentUri(
                f"x-component-type must be one of {', '.join(_COMPONENT_TYPES)}"
            )
        return cls(**values, vendor=MappingProxyType(vendor))

    @property
    def component_type(self) -> ComponentType | None:
        """The ``x-component-type`` override, if given."""
        kind = self.vendor.get("x-component-type")
        return _COMPONENT_TYPES[kind.lower()] if kind is not None else None

    def __str__(self) -> str:
        """The URI again, percent-encoded, with ``pin-value`` redacted."""
        path: list[str] = []
        query: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or f.name == "vendor":
                continue
            name = f.name.replace("_", "-")
            if f.name == "pin_value":
                query.append("pin-value=REDACTED")
            elif f.name in _QUERY_ATTRS.values():
                query.append(f"{name}={quote(str(value), safe=_QUERY_SAFE)}")
            elif isinstance(value, bytes):
                path.append(f"{name}=" + "".join(f"%{b:02X}" for b in value))
            else:
                path.append(f"{name}={quote(str(value), safe=_PATH_SAFE)}")
        path.extend(f"{k}={quote(v, safe=_PATH_SAFE)}" for k, v in self.vendor.items())
        text = "pkcs11:" + ";".join(path)
        return redact_uri(text + ("?" + "&".join(query) if query else ""))

    def __repr__(self) -> str:
        return f"Pkcs11Uri({str(self)!r})"

    def resolve_pin(self, pin: str | None = None) -> str:
        """The user PIN: ``pin`` if given, else ``pin-value``, else read from ``pin-source``.

        :raises PinRequired: no PIN anywhere, or ``pin-source`` cannot be read.
        """
        if pin is not None:
            return pin
        if self.pin_value is not None:
            return self.pin_value
        if self.pin_source is None:
            raise PinRequired(
                "the PKCS#11 token needs a user PIN: add pin-source=file:PATH, "
                "pin-source=env:VAR or pin-value=… to the URI"
            )
        source = self.pin_source
        if source.startswith("env:"):
            value = os.environ.get(source[4:])
            if value is None:
                raise PinRequired(f"pin-source: environment variable {source[4:]} is not set")
            return value
        path = source[5:] if source.startswith("file:") else source
        if path.startswith("//"):  # file://host/path: only the local host is supported
            host, _, rest = path[2:].partition("/")
            if host not in ("", "localhost"):
                raise PinRequired(f"pin-source: cannot read a PIN from host {host!r}")
            path = "/" + rest
        try:
            with open(path, encoding="utf-8") as file:
                return file.read().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise PinRequired(f"pin-source: cannot read the PIN file {path!r}: {exc}") from None


def _split_attributes(text: str, sep: str, what: str) -> dict[str, str]:
    """``name=value`` pairs of one URI part (values still percent-encoded)."""
    result: dict[str, str] = {}
    if not text:
        return result
    for item in text.split(sep):
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise InvalidSecureComponentUri(f"{what} URI attribute {item!r} is not name=value")
        name = name.lower()
        if name in result:
            raise InvalidSecureComponentUri(f"attribute {name!r} given twice")
        result[name] = value
    return result


def _decode_bytes(raw: str, name: str) -> bytes:
    if re.search(r"%(?![0-9A-Fa-f]{2})", raw):
        raise InvalidSecureComponentUri(f"{name}: malformed percent-encoding")
    return unquote_to_bytes(raw)


def _decode_text(raw: str, name: str) -> str:
    try:
        return _decode_bytes(raw, name).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSecureComponentUri(f"{name}: value is not UTF-8") from None


def _pkcs11_value(name: str, raw: str) -> str | bytes | int:
    if name == "id":
        return _decode_bytes(raw, name)
    value = _decode_text(raw, name)
    if name == "slot-id":
        if not (value.isascii() and value.isdigit()):
            raise InvalidSecureComponentUri("slot-id must be a decimal number")
        return int(value)
    if name == "type" and value not in _OBJECT_TYPES:
        raise InvalidSecureComponentUri(f"type must be one of {', '.join(sorted(_OBJECT_TYPES))}")
    if name == "library-version" and not _LIBRARY_VERSION.fullmatch(value):
        raise InvalidSecureComponentUri("library-version must be MAJOR[.MINOR]")
    return value
