"""The bootstrap server's configuration file (TOML, read with :mod:`tomllib`).

Used by ``lwm2m bootstrap-server --config FILE``; an example is ``examples/bootstrap.toml``.
One table per endpoint under ``endpoints``; every key but ``uri`` / ``short_server_id`` /
``object_id`` has a default. Unknown keys are errors (typos must not pass silently).

.. code-block:: toml

    [endpoints."urn:imei:004999010640000"]
    delete = ["/"]            # Bootstrap-Delete first (default ["/"]; [] deletes nothing)
    discover = false          # start with Bootstrap-Discover (default false)
    content_format = "tlv"    # tlv | senml-json | senml-cbor | json (default: client's pct,
                              # if it can carry object instances, else tlv)

    [[endpoints."urn:imei:004999010640000".security]]   # /0 instances, in order
    instance = 1              # default: 1, 2, ... in list order (/0/0 usually holds the
                              # client's own bootstrap account, which Delete "/" keeps)
    uri = "coaps://lwm2m.example.org:5684"              # /0/x/0
    bootstrap_server = false  # /0/x/1
    mode = "psk"              # /0/x/2: psk | rpk | x509 | nosec | est (default nosec)
    psk_identity = "urn:imei:004999010640000"           # /0/x/3 (text)     } PSK mode
    psk_key = "hex:000102030405060708090a0b0c0d0e0f"    # /0/x/5 (secret)   }
    public_key_or_identity = "base64:..."               # /0/x/3 } RPK / X.509 modes
    server_public_key = "base64:..."                    # /0/x/4 }
    secret_key = "base64:..."                           # /0/x/5 } (secret)
    short_server_id = 101     # /0/x/10 (required unless bootstrap_server)
    client_hold_off_time = 0  # /0/x/11
    bootstrap_account_timeout = 0                       # /0/x/12
    # OSCORE (mode nosec, coap:// URI): a /21 instance with this security instance's id,
    # written before it and linked by /0/x/17; named from the client's side
    # oscore = { sender_id = "hex:c1", recipient_id = "hex:51", master_secret = "hex:…",
    #            master_salt = "hex:…", aead = 10, hkdf = -10 }   # salt, aead, hkdf optional

    [[endpoints."urn:imei:004999010640000".servers]]    # /1 instances
    instance = 0              # default: 0, 1, ... in list order (also for acls)
    short_server_id = 101     # /1/x/0 (a security entry must have the same id)
    lifetime = 300            # /1/x/1 (default 86400)
    default_min_period = 1    # /1/x/2
    default_max_period = 60   # /1/x/3
    disable_timeout = 86400   # /1/x/5
    notification_storing = true                         # /1/x/6 (default true)
    binding = "U"             # /1/x/7 (default "U")
    mute_send = false         # /1/x/23

    [[endpoints."urn:imei:004999010640000".acls]]       # /2 instances
    object_id = 3
    object_instance_id = 0
    acl = { "101" = "RWE", "0" = 1 }   # per Short Server ID (0 = default): bits or letters
    owner = 101               # default 65535 (bootstrap only)

    [[endpoints."urn:imei:004999010640000".writes]]     # extra Bootstrap-Writes
    path = "/3/0/14"          # a resource: value (or a table / list for multiple resources)
    value = "+01:00"
    # path = "/3/0" with resources = { "14" = "+01:00", "15" = "Europe/Paris" }
    # path = "/3" with instances = { "0" = { "14" = "+01:00" } }

Byte strings (keys, identities, opaque values) are written ``"hex:…"``, ``"base64:…"`` or as
plain text (its UTF-8 bytes). Extra writes are typed with the object model (the bundled objects
plus any loaded DDF files): opaque values as byte strings, Objlnk as ``"3:0"``, Time as Unix
seconds. ACL letters: R(ead) 1, W(rite) 2, E(xecute) 4, D(elete) 8, C(reate) 16.

Errors are :class:`~lwm2m.bootstrap.config.ConfigError` naming the endpoint and field, never a
secret value.
"""

from __future__ import annotations

import base64
import binascii
import tomllib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from lwm2m.bootstrap.config import (
    AclInstance,
    BootstrapConfig,
    ConfigError,
    ObjectWrite,
    OscoreInstance,
    Secret,
    SecurityInstance,
    SecurityMode,
    ServerInstance,
)
from lwm2m.codec.content_format import ContentFormat
from lwm2m.errors import Lwm2mError
from lwm2m.model.nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectNode,
    Resource,
    SingleResource,
)
from lwm2m.model.path import Path, PathLevel
from lwm2m.model.registry import ObjectModel, default_registry, resource_definition
from lwm2m.model.values import ObjectLink, ResourceType, Value

__all__ = ["parse_bootstrap_toml", "parse_bytes", "parse_endpoint_config"]

_MODES = {
    "psk": SecurityMode.PSK,
    "rpk": SecurityMode.RPK,
    "x509": SecurityMode.X509,
    "nosec": SecurityMode.NOSEC,
    "est": SecurityMode.EST,
}
_RIGHTS = {"R": 1, "W": 2, "E": 4, "D": 8, "C": 16}
_WRITE_FORMATS = (
    ContentFormat.TLV,
    ContentFormat.SENML_JSON,
    ContentFormat.SENML_CBOR,
    ContentFormat.JSON,
)
_ENDPOINT_KEYS = frozenset(
    {"delete", "discover", "content_format", "security", "servers", "acls", "writes"}
)
_SECURITY_KEYS = frozenset(
    {
        "instance",
        "uri",
        "bootstrap_server",
        "mode",
        "psk_identity",
        "psk_key",
        "public_key_or_identity",
        "server_public_key",
        "secret_key",
        "short_server_id",
        "client_hold_off_time",
        "bootstrap_account_timeout",
        "sms_security_mode",
        "sms_binding_key_parameters",
        "sms_binding_secret_keys",
        "server_sms_number",
        "oscore",
    }
)
_OSCORE_KEYS = frozenset(
    {"sender_id", "recipient_id", "master_secret", "master_salt", "aead", "hkdf"}
)
_SERVER_KEYS = frozenset(
    {
        "instance",
        "short_server_id",
        "lifetime",
        "default_min_period",
        "default_max_period",
        "disable_timeout",
        "notification_storing",
        "binding",
        "mute_send",
    }
)
_ACL_KEYS = frozenset({"instance", "object_id", "object_instance_id", "acl", "owner"})
_WRITE_KEYS = frozenset({"path", "value", "resources", "instances"})


def parse_bytes(text: object, where: str) -> bytes:
    """``"hex:…"``, ``"base64:…"`` or plain text (UTF-8). The error never repeats the value.

    >>> parse_bytes("hex:0a0B", "k"), parse_bytes("base64:AQI=", "k"), parse_bytes("id", "k")
    (b'\\n\\x0b', b'\\x01\\x02', b'id')
    """
    if not isinstance(text, str):
        raise ConfigError(f"{where}: expected a string")
    kind, sep, rest = text.partition(":")
    if sep and kind == "hex":
        try:
            return bytes.fromhex(rest)
        except ValueError:
            raise ConfigError(f"{where}: not valid hex") from None
    if sep and kind == "base64":
        try:
            return base64.b64decode(rest, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{where}: not valid base64") from None
    return text.encode("utf-8")


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a table")
    return value


def _check_keys(table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")


def _int(table: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int | None:
    value = table.get(key, default)
    if value is not None and (type(value) is not int):
        raise ConfigError(f"{where}.{key}: expected an integer")
    return value


def _required_int(table: Mapping[str, Any], key: str, where: str) -> int:
    value = _int(table, key, where)
    if value is None:
        raise ConfigError(f"{where}: {key} is required")
    return value


def _bool(table: Mapping[str, Any], key: str, where: str, default: bool | None) -> bool | None:
    value = table.get(key, default)
    if value is not None and type(value) is not bool:
        raise ConfigError(f"{where}.{key}: expected true or false")
    return value


def _str(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: expected a string")
    return value


def _list(table: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{where}.{key}: expected an array of tables")
    return [_table(item, f"{where}.{key}[{i}]") for i, item in enumerate(value)]


T = TypeVar("T")


def _build(cls: Callable[..., T], fields: dict[str, Any], where: str) -> T:
    try:
        return cls(**fields)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _security(table: Mapping[str, Any], index: int, where: str) -> SecurityInstance:
    _check_keys(table, _SECURITY_KEYS, where)
    mode_name = _str(table, "mode", where) or "nosec"
    mode = _MODES.get(mode_name.lower())
    if mode is None:
        raise ConfigError(f"{where}.mode: one of {', '.join(_MODES)}")
    uri = _str(table, "uri", where)
    if uri is None:
        raise ConfigError(f"{where}: uri is required")
    identity = b""
    secret = b""
    if "psk_identity" in table:
        identity = parse_bytes(table["psk_identity"], f"{where}.psk_identity")
    if "psk_key" in table:
        secret = parse_bytes(table["psk_key"], f"{where}.psk_key")
    if "public_key_or_identity" in table:
        if identity:
            raise ConfigError(f"{where}: psk_identity and public_key_or_identity both given")
        identity = parse_bytes(table["public_key_or_identity"], f"{where}.public_key_or_identity")
    if "secret_key" in table:
        if secret:
            raise ConfigError(f"{where}: psk_key and secret_key both given")
        secret = parse_bytes(table["secret_key"], f"{where}.secret_key")
    server_key = b""
    if "server_public_key" in table:
        server_key = parse_bytes(table["server_public_key"], f"{where}.server_public_key")
    sms_params = b""
    if "sms_binding_key_parameters" in table:
        sms_params = parse_bytes(
            table["sms_binding_key_parameters"], f"{where}.sms_binding_key_parameters"
        )
    sms_keys = b""
    if "sms_binding_secret_keys" in table:
        sms_keys = parse_bytes(table["sms_binding_secret_keys"], f"{where}.sms_binding_secret_keys")
    fields: dict[str, Any] = {
        "instance_id": _int(table, "instance", where, index + 1),
        "uri": uri,
        "bootstrap_server": bool(_bool(table, "bootstrap_server", where, False)),
        "mode": mode,
        "public_key_or_identity": identity,
        "server_public_key": server_key,
        "secret_key": Secret(secret),
        "short_server_id": _int(table, "short_server_id", where),
        "client_hold_off_time": _int(table, "client_hold_off_time", where),
        "bootstrap_account_timeout": _int(table, "bootstrap_account_timeout", where),
        "sms_security_mode": _int(table, "sms_security_mode", where),
        "sms_binding_key_parameters": sms_params,
        "sms_binding_secret_keys": Secret(sms_keys),
        "server_sms_number": _str(table, "server_sms_number", where),
        "oscore": _oscore(table, where),
    }
    return _build(SecurityInstance, fields, where)


def _oscore(table: Mapping[str, Any], where: str) -> OscoreInstance | None:
    if "oscore" not in table:
        return None
    where = f"{where}.oscore"
    oscore = _table(table["oscore"], where)
    _check_keys(oscore, _OSCORE_KEYS, where)
    for key in ("sender_id", "recipient_id", "master_secret"):
        if key not in oscore:
            raise ConfigError(f"{where}: {key} is required")
    fields: dict[str, Any] = {
        "sender_id": parse_bytes(oscore["sender_id"], f"{where}.sender_id"),
        "recipient_id": parse_bytes(oscore["recipient_id"], f"{where}.recipient_id"),
        "master_secret": Secret(parse_bytes(oscore["master_secret"], f"{where}.master_secret")),
        "master_salt": parse_bytes(oscore.get("master_salt", ""), f"{where}.master_salt"),
        "aead": _int(oscore, "aead", where),
        "hkdf": _int(oscore, "hkdf", where),
    }
    return _build(OscoreInstance, fields, where)


def _server(table: Mapping[str, Any], index: int, where: str) -> ServerInstance:
    _check_keys(table, _SERVER_KEYS, where)
    fields: dict[str, Any] = {
        "instance_id": _int(table, "instance", where, index),
        "short_server_id": _required_int(table, "short_server_id", where),
        "lifetime": _int(table, "lifetime", where, 86400),
        "default_min_period": _int(table, "default_min_period", where),
        "default_max_period": _int(table, "default_max_period", where),
        "disable_timeout": _int(table, "disable_timeout", where),
        "notification_storing": bool(_bool(table, "notification_storing", where, True)),
        "binding": _str(table, "binding", where) or "U",
        "mute_send": _bool(table, "mute_send", where, None),
    }
    return _build(ServerInstance, fields, where)


def _rights(value: object, where: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str) and all(c in _RIGHTS for c in value.upper()):
        return sum({_RIGHTS[c] for c in value.upper()})
    raise ConfigError(f"{where}: rights are an integer 0..31 or letters of RWEDC")


def _acl(table: Mapping[str, Any], index: int, where: str) -> AclInstance:
    _check_keys(table, _ACL_KEYS, where)
    acl: dict[int, int] = {}
    for ssid, rights in _table(table.get("acl", {}), f"{where}.acl").items():
        if not ssid.isdigit():
            raise ConfigError(f"{where}.acl: keys are Short Server IDs")
        acl[int(ssid)] = _rights(rights, f"{where}.acl.{ssid}")
    fields: dict[str, Any] = {
        "instance_id": _int(table, "instance", where, index),
        "object_id": _required_int(table, "object_id", where),
        "object_instance_id": _required_int(table, "object_instance_id", where),
        "acl": acl,
        "owner": _int(table, "owner", where, 65535),
    }
    return _build(AclInstance, fields, where)


def _typed(type_: ResourceType, value: object, where: str) -> Value:
    match type_:
        case ResourceType.OPAQUE:
            return parse_bytes(value, where)
        case ResourceType.OBJLNK:
            if isinstance(value, str):
                try:
                    return ObjectLink.parse(value)
                except Lwm2mError:
                    pass
            raise ConfigError(f"{where}: an Objlnk is written 'oid:iid'")
        case ResourceType.FLOAT if type(value) is int:
            return float(value)
    ok = {
        ResourceType.STRING: str,
        ResourceType.CORELNK: str,
        ResourceType.INTEGER: int,
        ResourceType.UNSIGNED_INTEGER: int,
        ResourceType.TIME: int,
        ResourceType.FLOAT: float,
        ResourceType.BOOLEAN: bool,
    }.get(type_)
    if ok is None or type(value) is not ok:
        raise ConfigError(f"{where}: expected a {type_.value} value")
    assert isinstance(value, str | int | float | bool)
    return value


def _resource(model: ObjectModel, path: Path, value: object, where: str) -> Resource:
    definition = resource_definition(model, path.ids[0], path.ids[2])
    if definition is None:
        raise ConfigError(f"{where}: resource {path} is not in the object model")
    rid = path.ids[2]
    if definition.multiple:
        items: dict[int, object]
        if isinstance(value, list):
            items = dict(enumerate(value))
        elif isinstance(value, Mapping):
            items = {}
            for key, item in value.items():
                if not key.isdigit():
                    raise ConfigError(f"{where}: resource instance ids are numbers")
                items[int(key)] = item
        else:
            raise ConfigError(f"{where}: {path} is a multiple resource (a list or a table)")
        typed = {i: _typed(definition.type, v, f"{where}[{i}]") for i, v in items.items()}
        return MultipleResource.of(rid, definition.type, typed)
    return SingleResource(rid, definition.type, _typed(definition.type, value, where))


def _instance(model: ObjectModel, path: Path, resources: object, where: str) -> ObjectInstance:
    out: list[Resource] = []
    for key, value in _table(resources, where).items():
        if not key.isdigit():
            raise ConfigError(f"{where}: resource ids are numbers")
        out.append(_resource(model, path.child(int(key)), value, f"{where}.{key}"))
    return ObjectInstance(path.ids[1], out)


def _write(model: ObjectModel, table: Mapping[str, Any], where: str) -> ObjectWrite:
    _check_keys(table, _WRITE_KEYS, where)
    text = _str(table, "path", where)
    if text is None:
        raise ConfigError(f"{where}: path is required")
    try:
        path = Path.parse(text)
        node: Node
        match path.level:
            case PathLevel.RESOURCE if "value" in table:
                node = _resource(model, path, table["value"], f"{where}.value")
            case PathLevel.OBJECT_INSTANCE if "resources" in table:
                node = _instance(model, path, table["resources"], f"{where}.resources")
            case PathLevel.OBJECT if "instances" in table:
                instances = []
                for key, resources in _table(table["instances"], f"{where}.instances").items():
                    if not key.isdigit():
                        raise ConfigError(f"{where}.instances: instance ids are numbers")
                    instances.append(
                        _instance(model, path.child(int(key)), resources, f"{where}.{key}")
                    )
                node = ObjectNode(path.ids[0], instances)
            case _:
                raise ConfigError(
                    f"{where}: a resource path takes value, an instance path resources, "
                    "an object path instances"
                )
        return ObjectWrite(path, node)
    except ConfigError:
        raise
    except Lwm2mError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _content_format(value: object, where: str) -> ContentFormat | None:
    if value is None:
        return None
    try:
        cf = ContentFormat.from_name(str(value))
    except ValueError:
        cf = None
    if cf not in _WRITE_FORMATS:
        raise ConfigError(f"{where}: one of tlv, senml-json, senml-cbor, json")
    return cf


def parse_endpoint_config(
    table: Mapping[str, Any], *, where: str = "endpoint", model: ObjectModel | None = None
) -> BootstrapConfig:
    """One endpoint's table (the format above) as a :class:`BootstrapConfig`."""
    _check_keys(table, _ENDPOINT_KEYS, where)
    model = model if model is not None else default_registry()
    delete_value = table.get("delete", ["/"])
    if not isinstance(delete_value, list) or not all(isinstance(p, str) for p in delete_value):
        raise ConfigError(f"{where}.delete: expected a list of paths")
    try:
        delete = tuple(Path.parse(p) for p in delete_value)
    except Lwm2mError:
        raise ConfigError(f"{where}.delete: not an LwM2M path") from None
    security = tuple(
        _security(t, i, f"{where}.security[{i}]")
        for i, t in enumerate(_list(table, "security", where))
    )
    servers = tuple(
        _server(t, i, f"{where}.servers[{i}]") for i, t in enumerate(_list(table, "servers", where))
    )
    acls = tuple(
        _acl(t, i, f"{where}.acls[{i}]") for i, t in enumerate(_list(table, "acls", where))
    )
    writes = tuple(
        _write(model, t, f"{where}.writes[{i}]")
        for i, t in enumerate(_list(table, "writes", where))
    )
    fields: dict[str, Any] = {
        "security": security,
        "servers": servers,
        "acls": acls,
        "writes": writes,
        "delete": delete,
        "discover": bool(_bool(table, "discover", where, False)),
        "content_format": _content_format(table.get("content_format"), f"{where}.content_format"),
    }
    return _build(BootstrapConfig, fields, where)


def parse_bootstrap_toml(
    text: str, *, model: ObjectModel | None = None
) -> dict[str, BootstrapConfig]:
    """Every endpoint's configuration in a bootstrap TOML document.

    Raises :class:`ConfigError` for TOML syntax errors (with line and column) and for invalid
    configurations (naming the endpoint and field).
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    unknown = sorted(set(document) - {"endpoints"})
    if unknown:
        raise ConfigError(f"unknown top-level key {unknown[0]!r} (expected [endpoints.NAME])")
    endpoints = _table(document.get("endpoints", {}), "endpoints")
    model = model if model is not None else default_registry()
    configs: dict[str, BootstrapConfig] = {}
    for name, table in endpoints.items():
        if not name:
            raise ConfigError("endpoints: an endpoint name is empty")
        configs[name] = parse_endpoint_config(
            _table(table, f"endpoints.{name}"), where=f"endpoints.{name}", model=model
        )
    return configs
