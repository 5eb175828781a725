"""Client configuration and the factory bootstrap file (LwM2M-TS-Core 1.1 §5.2.3.1 "Factory
Bootstrap"; Appendix E.1/E.2 for the resources it fills).

A TOML file (read with :mod:`tomllib`; :func:`parse_config` takes the parsed mapping, so the
engine itself does no file I/O beyond :func:`load_config`)::

    endpoint = "urn:dev:ops:acme-sensor-1"   # required: the Endpoint Client Name
    queue_mode = false                       # register with the Q flag
    awake_time = 93                          # queue mode: seconds awake after the last message
    bind = "0.0.0.0:0"                       # the asyncio runner's UDP socket

    [formats]                                # content formats (see lwm2m.client.formats)
    single = "text"                          # one value, no Accept
    multiple = "tlv"                         # several values, no Accept
    send = "senml-cbor"                      # Send (POST /dp)
    bootstrap_preferred = "tlv"              # pct of the Bootstrap-Request ("" to omit)

    [device]                                 # /3/0
    manufacturer = "ACME"
    model_number = "S-1"
    serial_number = "0001"
    firmware_version = "1.0.0"

    [bootstrap]                              # the bootstrap server account (/0/x/1 true)
    uri = "coap://bs.example.org:5783"
    security_mode = "nosec"                  # nosec | psk | rpk | x509 (or 0..4)
    hold_off = 0                             # /0/x/11 Client Hold Off Time
    account_timeout = 0                      # /0/x/12

    [[servers]]                              # one DM server account: /0 + /1 instance
    uri = "coap://127.0.0.1:5683"
    short_server_id = 101
    lifetime = 300
    binding = "U"
    default_pmin = 1                         # /1/x/2
    default_pmax = 60                        # /1/x/3
    notification_storing = true              # /1/x/6
    mute_send = false                        # /1/x/23 (absent = muted)
    security_mode = "psk"
    psk_identity = "device-1"                # or psk_identity_hex
    psk_key_hex = "00112233445566778899aabbccddeeff"
    # rpk: public_key_hex (own SPKI), private_key_hex, server_public_key_hex;
    # x509: certificate_hex (own DER certificate), private_key_hex, server_certificate_hex
    # (/0/x/4), certificate_usage (/0/x/15, default 3), matching_type (/0/x/13), sni (/0/x/14)
    # optional /1/x/13-20: priority, initial_delay, failure_block, bootstrap_on_failure,
    # retry_count, retry_timer, sequence_delay, sequence_retry_count; disable_timeout (/1/x/5)
    # OSCORE (RFC 8613; coap:// URI, security_mode nosec): a /21 instance linked by /0/x/17
    # oscore_sender_id_hex = "c1", oscore_recipient_id_hex = "51",
    # oscore_master_secret_hex = "…" (secret), oscore_master_salt_hex = "…" (optional),
    # oscore_aead = 10, oscore_hkdf = -10 (optional COSE algorithm ids)

    [[acl]]                                  # /2 instances (needed with several servers)
    object = 3
    instance = 0
    owner = 101
    rights = { "101" = "RWE", "102" = "R", "0" = "R" }   # "0" = default rights

Key material (``psk_key_hex``, ``private_key_hex``, ``oscore_master_secret_hex``) is kept as
:class:`~lwm2m.client.objects.security.Secret` and never appears in a repr or an error message.

A server URI must be ``coap[s][+tcp]://host[:port]`` whose scheme fits the account's security
mode (``coap`` for nosec, ``coaps`` for the others); :func:`check_server_uri` is that check, also
used for the server accounts of the bootstrap server's file and of a smart card's bootstrap
description.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lwm2m.client.accounts import ServerUri
from lwm2m.client.formats import FormatPolicy
from lwm2m.client.objects.security import Secret, SecurityMode
from lwm2m.client.objects.server import AccessRight
from lwm2m.codec.content_format import ContentFormat
from lwm2m.errors import Lwm2mError

__all__ = [
    "AclConfig",
    "BootstrapServerConfig",
    "ClientConfig",
    "ConfigError",
    "DeviceConfig",
    "OscoreConfig",
    "SecurityConfig",
    "ServerConfig",
    "check_server_uri",
    "load_config",
    "parse_config",
]


class ConfigError(Lwm2mError, ValueError):
    """The configuration is invalid; the message names the key (never a secret value)."""


@dataclass(frozen=True, slots=True)
class OscoreConfig:
    """The OSCORE part of an account: a /21 instance its /0/x/17 links to (RFC 8613 §3.2)."""

    sender_id: bytes
    recipient_id: bytes
    master_secret: Secret = field(repr=False)
    master_salt: bytes = b""
    aead: int | None = None
    hkdf: int | None = None


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """The security part of an account (/0/x/2..5, 14, 16)."""

    mode: SecurityMode = SecurityMode.NO_SEC
    identity: bytes = b""
    """/0/x/3: the PSK identity, own raw public key or own certificate."""
    server_public_key: bytes = b""
    """/0/x/4."""
    secret_key: Secret = field(default_factory=lambda: Secret(b""), repr=False)
    """/0/x/5: the PSK or the private key."""
    sni: str | None = None
    ciphersuites: tuple[int, ...] = ()
    matching_type: int | None = None
    """/0/x/13 (certificate mode): 0 exact, 1 SHA-256, 2 SHA-384, 3 SHA-512."""
    certificate_usage: int | None = None
    """/0/x/15 (certificate mode): 0..3 (RFC 6698 usages; absent means 3)."""
    oscore: OscoreConfig | None = None
    """OSCORE over ``coap://`` (a /21 instance, /0/x/17)."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """A DM server account."""

    uri: str
    short_server_id: int
    lifetime: int = 86400
    binding: str = "U"
    default_pmin: int | None = None
    default_pmax: int | None = None
    notification_storing: bool = True
    mute_send: bool | None = None
    disable_timeout: int | None = None
    priority: int | None = None
    initial_delay: int | None = None
    failure_block: bool | None = None
    bootstrap_on_failure: bool | None = None
    retry_count: int | None = None
    retry_timer: int | None = None
    sequence_delay: int | None = None
    sequence_retry_count: int | None = None
    security: SecurityConfig = field(default_factory=SecurityConfig)


@dataclass(frozen=True, slots=True)
class BootstrapServerConfig:
    """The bootstrap server account."""

    uri: str
    hold_off: int = 0
    account_timeout: int = 0
    security: SecurityConfig = field(default_factory=SecurityConfig)


@dataclass(frozen=True, slots=True)
class AclConfig:
    """One /2 instance: rights per Short Server ID (0 = default) on ``/object/instance``
    (instance 65535: Create rights on the object)."""

    object_id: int
    instance_id: int
    owner: int
    rights: Mapping[int, AccessRight] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """Identification values of /3/0."""

    manufacturer: str | None = None
    model_number: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None
    device_type: str | None = None
    hardware_version: str | None = None
    software_version: str | None = None


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything the client engine needs beyond its objects."""

    endpoint: str
    """The Endpoint Client Name (``ep``)."""
    servers: tuple[ServerConfig, ...] = ()
    bootstrap: BootstrapServerConfig | None = None
    acls: tuple[AclConfig, ...] = ()
    device: DeviceConfig = field(default_factory=DeviceConfig)
    queue_mode: bool = False
    """Register with the ``Q`` flag and sleep ``awake_time`` after the last exchange."""
    awake_time: float = 93.0
    """Queue mode awake window: MAX_TRANSMIT_WAIT (93 s) by default (Transport §6.4)."""
    formats: FormatPolicy = field(default_factory=FormatPolicy)
    bootstrap_preferred_format: ContentFormat | None = ContentFormat.TLV
    """The ``pct`` of the Bootstrap-Request; None omits it."""
    bind: tuple[str, int] = ("0.0.0.0", 0)
    """Local UDP address of the asyncio runner."""
    minimum_lwm2m_version: str = "1.0"
    """The lowest enabler version to register with: a server that refuses 1.1 with 4.12 gets
    a 1.0 Register when this is ``1.0`` (the default), none when it is ``1.1``."""


# -- parsing -----------------------------------------------------------------------------------


def load_config(path: str | os.PathLike[str]) -> ClientConfig:
    """Read a TOML configuration file (a ConfigError names the file)."""
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{os.fspath(path)}: not valid TOML ({exc})") from None
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{os.fspath(path)}: {exc}") from None


_TOP = {"endpoint", "servers", "bootstrap", "acl", "device", "queue_mode", "awake_time"}
_TOP |= {"formats", "bind", "minimum_lwm2m_version"}
_SECURITY = {
    "security_mode",
    "psk_identity",
    "psk_identity_hex",
    "psk_key_hex",
    "public_key_hex",
    "server_public_key_hex",
    "private_key_hex",
    "certificate_hex",
    "server_certificate_hex",
    "matching_type",
    "certificate_usage",
    "sni",
    "ciphersuites",
    "oscore_sender_id_hex",
    "oscore_recipient_id_hex",
    "oscore_master_secret_hex",
    "oscore_master_salt_hex",
    "oscore_aead",
    "oscore_hkdf",
}
_SERVER = {f for f in ServerConfig.__dataclass_fields__ if f != "security"} | _SECURITY
_BOOTSTRAP = {"uri", "hold_off", "account_timeout"} | _SECURITY


def parse_config(data: Mapping[str, Any]) -> ClientConfig:
    """Build a :class:`ClientConfig` from the parsed TOML mapping."""
    _known("configuration", data, _TOP)
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise ConfigError("endpoint: a non-empty string is required")
    servers = tuple(
        _server(f"servers[{i}]", item) for i, item in enumerate(_tables("servers", data))
    )
    ssids = [s.short_server_id for s in servers]
    if len(set(ssids)) != len(ssids):
        raise ConfigError("servers: each short_server_id must be unique")
    bootstrap = None
    if "bootstrap" in data:
        table = data["bootstrap"]
        if not isinstance(table, Mapping):
            raise ConfigError("bootstrap: a table is expected")
        _known("bootstrap", table, _BOOTSTRAP)
        security = _security("bootstrap", table)
        bootstrap = BootstrapServerConfig(
            uri=_uri("bootstrap.uri", table.get("uri"), security.mode),
            hold_off=_uint("bootstrap.hold_off", table.get("hold_off", 0)),
            account_timeout=_uint("bootstrap.account_timeout", table.get("account_timeout", 0)),
            security=security,
        )
    if not servers and bootstrap is None:
        raise ConfigError("configure at least one [[servers]] entry or a [bootstrap] server")
    acls = tuple(_acl(f"acl[{i}]", item) for i, item in enumerate(_tables("acl", data)))
    device_table = data.get("device", {})
    if not isinstance(device_table, Mapping):
        raise ConfigError("device: a table is expected")
    _known("device", device_table, set(DeviceConfig.__dataclass_fields__))
    for key, value in device_table.items():
        if not isinstance(value, str):
            raise ConfigError(f"device.{key}: a string is expected")
    return ClientConfig(
        endpoint=endpoint,
        servers=servers,
        bootstrap=bootstrap,
        acls=acls,
        device=DeviceConfig(**device_table),
        queue_mode=_bool("queue_mode", data.get("queue_mode", False)),
        awake_time=_number("awake_time", data.get("awake_time", 93.0)),
        formats=_formats(data.get("formats", {})),
        bootstrap_preferred_format=_preferred(data.get("formats", {})),
        bind=_bind(data.get("bind", "0.0.0.0:0")),
        minimum_lwm2m_version=_version(data.get("minimum_lwm2m_version", "1.0")),
    )


def _version(value: object) -> str:
    if value not in ("1.0", "1.1"):
        raise ConfigError(f'minimum_lwm2m_version: "1.0" or "1.1" expected, not {value!r}')
    return value


def _known(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")


def _tables(key: str, data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ConfigError(f"{key}: an array of tables ([[{key}]]) is expected")
    return items


def check_server_uri(where: str, value: object, mode: SecurityMode | None = None) -> ServerUri:
    """``value`` as a server URI (:class:`~lwm2m.client.accounts.ServerUri`) whose scheme fits
    ``mode`` (:meth:`~lwm2m.client.accounts.ServerUri.fits`; not checked when None). Raises
    ConfigError naming ``where`` otherwise."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: a coap:// or coaps:// URI is required")
    try:
        uri = ServerUri.parse(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if mode is not None and not uri.fits(mode):
        plain = uri.scheme.replace("coaps", "coap")  # coap or coap+tcp
        fitting = plain if mode is SecurityMode.NO_SEC else plain.replace("coap", "coaps")
        raise ConfigError(
            f"{where}: the {uri.scheme}:// scheme does not fit security mode {mode.name} "
            f"({fitting}:// expected)"
        )
    return uri


def _uri(where: str, value: Any, mode: SecurityMode) -> str:
    check_server_uri(where, value, mode)
    return str(value)


def _uint(where: str, value: Any, maximum: int = 2**32 - 1) -> int:
    if type(value) is not int or not 0 <= value <= maximum:
        raise ConfigError(f"{where}: an integer in 0..{maximum} is expected")
    return value


def _opt_uint(where: str, value: Any) -> int | None:
    return None if value is None else _uint(where, value)


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: true or false is expected")
    return value


def _opt_bool(where: str, value: Any) -> bool | None:
    return None if value is None else _bool(where, value)


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: a non-negative number is expected")
    return float(value)


def _hex(where: str, value: Any, *, secret: bool = False) -> bytes:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: a hex string is expected")
    try:
        return bytes.fromhex(value)
    except ValueError:
        shown = "" if secret else f" ({value[:20]!r})"
        raise ConfigError(f"{where}: not valid hex{shown}") from None


def _security(where: str, table: Mapping[str, Any]) -> SecurityConfig:
    try:
        mode = SecurityMode.parse(table.get("security_mode", "nosec"))
    except ValueError as exc:
        raise ConfigError(f"{where}.security_mode: {exc}") from None
    identity = b""
    if "psk_identity" in table:
        text = table["psk_identity"]
        if not isinstance(text, str):
            raise ConfigError(f"{where}.psk_identity: a string is expected")
        identity = text.encode()
    elif "psk_identity_hex" in table:
        identity = _hex(f"{where}.psk_identity_hex", table["psk_identity_hex"])
    elif "public_key_hex" in table:
        identity = _hex(f"{where}.public_key_hex", table["public_key_hex"])
    elif "certificate_hex" in table:
        identity = _hex(f"{where}.certificate_hex", table["certificate_hex"])
    secret = b""
    for key in ("psk_key_hex", "private_key_hex"):
        if key in table:
            secret = _hex(f"{where}.{key}", table[key], secret=True)
    server_key = b""
    for key in ("server_public_key_hex", "server_certificate_hex"):
        if key in table:
            server_key = _hex(f"{where}.{key}", table[key])
    if mode is SecurityMode.PSK and (not identity or not secret):
        raise ConfigError(f"{where}: PSK mode needs psk_identity and psk_key_hex")
    sni = table.get("sni")
    if sni is not None and not isinstance(sni, str):
        raise ConfigError(f"{where}.sni: a string is expected")
    suites = table.get("ciphersuites", [])
    if not isinstance(suites, list) or not all(type(s) is int and s >= 0 for s in suites):
        raise ConfigError(f"{where}.ciphersuites: a list of integers is expected")
    matching = table.get("matching_type")
    if matching is not None and (type(matching) is not int or not 0 <= matching <= 3):
        raise ConfigError(f"{where}.matching_type: an integer in 0..3 is expected")
    usage = table.get("certificate_usage")
    if usage is not None and (type(usage) is not int or not 0 <= usage <= 3):
        raise ConfigError(f"{where}.certificate_usage: an integer in 0..3 is expected")
    return SecurityConfig(
        mode,
        identity,
        server_key,
        Secret(secret),
        sni,
        tuple(suites),
        matching,
        usage,
        _oscore(where, table, mode),
    )


def _oscore(where: str, table: Mapping[str, Any], mode: SecurityMode) -> OscoreConfig | None:
    keys = [k for k in table if k.startswith("oscore_")]
    if not keys:
        return None
    for key in ("oscore_sender_id_hex", "oscore_recipient_id_hex", "oscore_master_secret_hex"):
        if key not in table:
            raise ConfigError(f"{where}: OSCORE needs {key} (given: {', '.join(sorted(keys))})")
    if mode is not SecurityMode.NO_SEC:
        raise ConfigError(f"{where}: OSCORE is supported over coap:// (security_mode nosec) only")
    sender = _hex(f"{where}.oscore_sender_id_hex", table["oscore_sender_id_hex"])
    recipient = _hex(f"{where}.oscore_recipient_id_hex", table["oscore_recipient_id_hex"])
    if sender == recipient:
        raise ConfigError(f"{where}: the OSCORE sender and recipient ids must differ")
    secret = _hex(
        f"{where}.oscore_master_secret_hex", table["oscore_master_secret_hex"], secret=True
    )
    if not secret:
        raise ConfigError(f"{where}.oscore_master_secret_hex: must not be empty")
    salt = _hex(f"{where}.oscore_master_salt_hex", table.get("oscore_master_salt_hex", ""))
    algorithms: list[int | None] = []
    for key in ("oscore_aead", "oscore_hkdf"):
        value = table.get(key)
        if value is not None and type(value) is not int:
            raise ConfigError(f"{where}.{key}: a COSE algorithm number is expected")
        algorithms.append(value)
    return OscoreConfig(sender, recipient, Secret(secret), salt, algorithms[0], algorithms[1])


def _server(where: str, table: Mapping[str, Any]) -> ServerConfig:
    _known(where, table, _SERVER)
    ssid = table.get("short_server_id")
    if type(ssid) is not int or not 1 <= ssid <= 65534:
        raise ConfigError(f"{where}.short_server_id: an integer in 1..65534 is required")
    binding = table.get("binding", "U")
    if not isinstance(binding, str) or not binding or set(binding) - set("UTSNQ"):
        raise ConfigError(f"{where}.binding: letters among U, T, S, N (and Q) are expected")
    pmin = _opt_uint(f"{where}.default_pmin", table.get("default_pmin"))
    pmax = _opt_uint(f"{where}.default_pmax", table.get("default_pmax"))
    security = _security(where, table)
    return ServerConfig(
        uri=_uri(f"{where}.uri", table.get("uri"), security.mode),
        short_server_id=ssid,
        lifetime=_uint(f"{where}.lifetime", table.get("lifetime", 86400)),
        binding=binding,
        default_pmin=pmin,
        default_pmax=pmax,
        notification_storing=_bool(
            f"{where}.notification_storing", table.get("notification_storing", True)
        ),
        mute_send=_opt_bool(f"{where}.mute_send", table.get("mute_send")),
        disable_timeout=_opt_uint(f"{where}.disable_timeout", table.get("disable_timeout")),
        priority=_opt_uint(f"{where}.priority", table.get("priority")),
        initial_delay=_opt_uint(f"{where}.initial_delay", table.get("initial_delay")),
        failure_block=_opt_bool(f"{where}.failure_block", table.get("failure_block")),
        bootstrap_on_failure=_opt_bool(
            f"{where}.bootstrap_on_failure", table.get("bootstrap_on_failure")
        ),
        retry_count=_opt_uint(f"{where}.retry_count", table.get("retry_count")),
        retry_timer=_opt_uint(f"{where}.retry_timer", table.get("retry_timer")),
        sequence_delay=_opt_uint(f"{where}.sequence_delay", table.get("sequence_delay")),
        sequence_retry_count=_opt_uint(
            f"{where}.sequence_retry_count", table.get("sequence_retry_count")
        ),
        security=security,
    )


def _acl(where: str, table: Mapping[str, Any]) -> AclConfig:
    _known(where, table, {"object", "instance", "owner", "rights"})
    object_id = _uint(f"{where}.object", table.get("object"), 65534)
    instance_id = _uint(f"{where}.instance", table.get("instance"), 65535)
    owner = _uint(f"{where}.owner", table.get("owner", 65535), 65535)
    rights_table = table.get("rights", {})
    if not isinstance(rights_table, Mapping):
        raise ConfigError(f"{where}.rights: a table of short server id = rights is expected")
    rights: dict[int, AccessRight] = {}
    for key, value in rights_table.items():
        if not str(key).isdigit() or not 0 <= int(key) <= 65534:
            raise ConfigError(f"{where}.rights: {key!r} is not a short server id")
        try:
            rights[int(key)] = AccessRight.parse(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}.rights.{key}: {exc}") from None
    return AclConfig(object_id, instance_id, owner, rights)


def _format(where: str, value: Any) -> ContentFormat:
    try:
        return ContentFormat.from_name(str(value))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _formats(table: Any) -> FormatPolicy:
    if not isinstance(table, Mapping):
        raise ConfigError("formats: a table is expected")
    _known("formats", table, {"single", "multiple", "send", "composite", "bootstrap_preferred"})
    policy = FormatPolicy()
    values = {
        key: _format(f"formats.{key}", table[key])
        for key in ("single", "multiple", "send", "composite")
        if key in table
    }
    return FormatPolicy(
        single=values.get("single", policy.single),
        multiple=values.get("multiple", policy.multiple),
        composite=values.get("composite", policy.composite),
        send=values.get("send", policy.send),
    )


def _preferred(table: Any) -> ContentFormat | None:
    if not isinstance(table, Mapping) or "bootstrap_preferred" not in table:
        return ContentFormat.TLV
    value = table["bootstrap_preferred"]
    if value in ("", None):
        return None
    return _format("formats.bootstrap_preferred", value)


def _bind(value: Any) -> tuple[str, int]:
    if not isinstance(value, str):
        raise ConfigError("bind: 'host:port' is expected")
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError("bind: 'host:port' is expected")
    return (host.strip("[]") or "0.0.0.0", int(port))
