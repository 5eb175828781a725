"""Explicit JSON serialisation of stored records (style anchors §2.9, Leshan's ``*SerDes``).

Persistent stores keep JSON documents, never pickles: the format is readable, stable across
Python versions, and a corrupt or hostile row cannot run code. Each document carries ``"v"``,
the :data:`SCHEMA_VERSION` it was written with; readers reject versions they do not know
(:class:`SerdeError`).

- :func:`registration_to_json` / :func:`registration_from_json` — the object links are kept as
  their link-format text and re-validated on load.
- :func:`observation_to_json` / :func:`observation_from_json` — token in hex.
- :func:`bootstrap_config_to_json` / :func:`bootstrap_config_from_json` — **secrets are
  included** (base64): a bootstrap store is the place the keys live; protect its file. Nodes of
  extra writes are written with their resource types so they load back exactly.
- :func:`security_info_to_json` / :func:`security_info_from_json` — a server's security entry;
  **the PSK is included** (base64) for the same reason.

Every ``*_to_json`` returns plain ``dict`` / ``list`` / ``str`` / numbers; :func:`dumps` and
:func:`loads` add the compact text form.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from lwm2m.bootstrap.config import (
    AclInstance,
    BootstrapConfig,
    ObjectWrite,
    Secret,
    SecurityInstance,
    SecurityMode,
    ServerInstance,
)
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import format_links, parse_links
from lwm2m.errors import Lwm2mError
from lwm2m.model.nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectNode,
    ResourceInstance,
    SingleResource,
)
from lwm2m.model.path import Path
from lwm2m.model.values import ObjectLink, ResourceType, Value
from lwm2m.server.observation import Observation
from lwm2m.server.registration import LinkCache, Registration, parse_object_links
from lwm2m.server.security import (
    IdentityKind,
    OscoreInfo,
    PeerIdentity,
    SecretKey,
    SecurityInfo,
)

__all__ = [
    "SCHEMA_VERSION",
    "SerdeError",
    "bootstrap_config_from_json",
    "bootstrap_config_to_json",
    "dumps",
    "loads",
    "node_from_json",
    "node_to_json",
    "observation_from_json",
    "observation_to_json",
    "registration_from_json",
    "registration_to_json",
    "security_info_from_json",
    "security_info_to_json",
]

SCHEMA_VERSION = 1
"""Version of the JSON documents written by this module."""


class SerdeError(Lwm2mError, ValueError):
    """A stored document cannot be read (corrupt, or written by an unknown schema version)."""


def dumps(document: Mapping[str, Any]) -> str:
    """Compact JSON text."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> dict[str, Any]:
    """Parse JSON text into a document (a JSON object); SerdeError otherwise."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerdeError(f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SerdeError("a stored document is a JSON object")
    return document


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise SerdeError("expected base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SerdeError("invalid base64") from None


def _check_version(document: Mapping[str, Any], what: str) -> None:
    version = document.get("v")
    if version != SCHEMA_VERSION:
        raise SerdeError(f"{what}: unknown schema version {version!r} (this code reads 1)")


def _guard(what: str) -> _Guard:
    return _Guard(what)


class _Guard:
    """Turns malformed-document exceptions into SerdeError naming ``what``."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        if exc is None or isinstance(exc, SerdeError):
            return
        if isinstance(exc, KeyError | TypeError | ValueError | AttributeError | Lwm2mError):
            raise SerdeError(f"{self.what}: malformed document ({type(exc).__name__})") from exc


# -- identities ---------------------------------------------------------------------------------


def _identity_to_json(identity: PeerIdentity | None) -> dict[str, str] | None:
    if identity is None:
        return None
    return {"kind": identity.kind.value, "value": identity.value}


def _identity_from_json(data: Any) -> PeerIdentity | None:
    if data is None:
        return None
    return PeerIdentity(IdentityKind(data["kind"]), str(data["value"]))


# -- registrations ------------------------------------------------------------------------------


def registration_to_json(registration: Registration) -> dict[str, Any]:
    """A registration as a JSON document."""
    return {
        "v": SCHEMA_VERSION,
        "id": registration.id,
        "endpoint": registration.endpoint,
        "address": [registration.address[0], registration.address[1]],
        "identity": _identity_to_json(registration.identity),
        "lifetime": registration.lifetime,
        "binding": registration.binding,
        "queue_mode": registration.queue_mode,
        "version": registration.version,
        "links": format_links(registration.links.links),
        "registered_at": registration.registered_at,
        "updated_at": registration.updated_at,
        "sms_number": registration.sms_number,
        "additional": dict(registration.additional),
    }


def registration_from_json(
    document: Mapping[str, Any], *, links: LinkCache | None = None
) -> Registration:
    """The registration a document holds; ``links`` shares parsed link lists."""
    _check_version(document, "registration")
    with _guard("registration"):
        parsed = tuple(parse_links(document["links"]))
        object_links = links.get(parsed) if links is not None else parse_object_links(parsed)
        host, port = document["address"]
        additional = document.get("additional") or {}
        return Registration(
            id=str(document["id"]),
            endpoint=str(document["endpoint"]),
            address=(str(host), int(port)),
            identity=_identity_from_json(document.get("identity")),
            lifetime=int(document["lifetime"]),
            binding=str(document["binding"]),
            queue_mode=bool(document["queue_mode"]),
            version=str(document["version"]),
            links=object_links,
            registered_at=float(document["registered_at"]),
            updated_at=float(document["updated_at"]),
            sms_number=document.get("sms_number"),
            additional={str(k): (None if v is None else str(v)) for k, v in additional.items()},
        )


# -- observations -------------------------------------------------------------------------------


def observation_to_json(observation: Observation) -> dict[str, Any]:
    """An observation as a JSON document."""
    return {
        "v": SCHEMA_VERSION,
        "token": observation.token.hex(),
        "registration_id": observation.registration_id,
        "paths": [str(p) for p in observation.paths],
        "composite": observation.composite,
        "accept": None if observation.accept is None else int(observation.accept),
        "content_format": int(observation.content_format),
        "created_at": observation.created_at,
    }


def observation_from_json(document: Mapping[str, Any]) -> Observation:
    """The observation a document holds."""
    _check_version(document, "observation")
    with _guard("observation"):
        accept = document.get("accept")
        return Observation(
            token=bytes.fromhex(document["token"]),
            registration_id=str(document["registration_id"]),
            paths=tuple(Path.parse(p) for p in document["paths"]),
            composite=bool(document["composite"]),
            accept=None if accept is None else ContentFormat(accept),
            created_at=float(document["created_at"]),
            content_format=ContentFormat(document.get("content_format", 112)),
        )


# -- nodes (extra bootstrap writes) -------------------------------------------------------------


def _value_to_json(type_: ResourceType, value: Value) -> Any:
    if isinstance(value, bytes):
        return _b64(value)
    if isinstance(value, ObjectLink):
        return str(value)
    return value


def _value_from_json(type_: ResourceType, data: Any) -> Value:
    if type_ is ResourceType.OPAQUE:
        return _unb64(data)
    if type_ is ResourceType.OBJLNK:
        return ObjectLink.parse(data)
    if type_ is ResourceType.FLOAT and type(data) is int:
        return float(data)
    value: Value = data
    return value


def node_to_json(node: Node) -> dict[str, Any]:
    """A node with its resource types (values of opaque resources in base64)."""
    match node:
        case ObjectNode():
            return {
                "object": node.id,
                "instances": [node_to_json(i) for i in node.instances.values()],
            }
        case ObjectInstance():
            return {
                "instance": node.id,
                "resources": [node_to_json(r) for r in node.resources.values()],
            }
        case SingleResource():
            return {
                "resource": node.id,
                "type": node.type.value,
                "value": _value_to_json(node.type, node.value),
            }
        case MultipleResource():
            return {
                "resource": node.id,
                "type": node.type.value,
                "instances": {str(i): _value_to_json(node.type, v) for i, v in node.values.items()},
            }
        case ResourceInstance():
            return {
                "resource_instance": node.id,
                "type": node.type.value,
                "value": _value_to_json(node.type, node.value),
            }
    raise TypeError(f"not a node: {node!r}")  # pragma: no cover


def node_from_json(data: Mapping[str, Any]) -> Node:
    """Inverse of :func:`node_to_json`."""
    with _guard("node"):
        if "object" in data:
            return ObjectNode(int(data["object"]), [_instance(i) for i in data["instances"]])
        if "instance" in data:
            return _instance(data)
        if "resource_instance" in data:
            type_ = ResourceType(data["type"])
            return ResourceInstance(
                int(data["resource_instance"]), type_, _value_from_json(type_, data["value"])
            )
        type_ = ResourceType(data["type"])
        if "instances" in data:
            values = {int(k): _value_from_json(type_, v) for k, v in data["instances"].items()}
            return MultipleResource.of(int(data["resource"]), type_, values)
        return SingleResource(int(data["resource"]), type_, _value_from_json(type_, data["value"]))


def _instance(data: Mapping[str, Any]) -> ObjectInstance:
    resources = []
    for item in data["resources"]:
        node = node_from_json(item)
        if not isinstance(node, SingleResource | MultipleResource):
            raise SerdeError("an instance holds resources")
        resources.append(node)
    return ObjectInstance(int(data["instance"]), resources)


# -- bootstrap configurations -------------------------------------------------------------------


def _security_to_json(s: SecurityInstance) -> dict[str, Any]:
    return {
        "instance_id": s.instance_id,
        "uri": s.uri,
        "bootstrap_server": s.bootstrap_server,
        "mode": int(s.mode),
        "public_key_or_identity": _b64(s.public_key_or_identity),
        "server_public_key": _b64(s.server_public_key),
        "secret_key": _b64(s.secret_key.reveal()),
        "short_server_id": s.short_server_id,
        "client_hold_off_time": s.client_hold_off_time,
        "bootstrap_account_timeout": s.bootstrap_account_timeout,
        "sms_security_mode": s.sms_security_mode,
        "sms_binding_key_parameters": _b64(s.sms_binding_key_parameters),
        "sms_binding_secret_keys": _b64(s.sms_binding_secret_keys.reveal()),
        "server_sms_number": s.server_sms_number,
    }


def _security_from_json(d: Mapping[str, Any]) -> SecurityInstance:
    return SecurityInstance(
        instance_id=int(d["instance_id"]),
        uri=str(d["uri"]),
        bootstrap_server=bool(d["bootstrap_server"]),
        mode=SecurityMode(d["mode"]),
        public_key_or_identity=_unb64(d["public_key_or_identity"]),
        server_public_key=_unb64(d["server_public_key"]),
        secret_key=Secret(_unb64(d["secret_key"])),
        short_server_id=d.get("short_server_id"),
        client_hold_off_time=d.get("client_hold_off_time"),
        bootstrap_account_timeout=d.get("bootstrap_account_timeout"),
        sms_security_mode=d.get("sms_security_mode"),
        sms_binding_key_parameters=_unb64(d.get("sms_binding_key_parameters", "")),
        sms_binding_secret_keys=Secret(_unb64(d.get("sms_binding_secret_keys", ""))),
        server_sms_number=d.get("server_sms_number"),
    )


def _server_to_json(s: ServerInstance) -> dict[str, Any]:
    return {
        "instance_id": s.instance_id,
        "short_server_id": s.short_server_id,
        "lifetime": s.lifetime,
        "default_min_period": s.default_min_period,
        "default_max_period": s.default_max_period,
        "disable_timeout": s.disable_timeout,
        "notification_storing": s.notification_storing,
        "binding": s.binding,
        "mute_send": s.mute_send,
    }


def _server_from_json(d: Mapping[str, Any]) -> ServerInstance:
    return ServerInstance(
        instance_id=int(d["instance_id"]),
        short_server_id=int(d["short_server_id"]),
        lifetime=int(d["lifetime"]),
        default_min_period=d.get("default_min_period"),
        default_max_period=d.get("default_max_period"),
        disable_timeout=d.get("disable_timeout"),
        notification_storing=bool(d["notification_storing"]),
        binding=str(d["binding"]),
        mute_send=d.get("mute_send"),
    )


def _acl_to_json(a: AclInstance) -> dict[str, Any]:
    return {
        "instance_id": a.instance_id,
        "object_id": a.object_id,
        "object_instance_id": a.object_instance_id,
        "acl": {str(k): v for k, v in a.acl.items()},
        "owner": a.owner,
    }


def _acl_from_json(d: Mapping[str, Any]) -> AclInstance:
    return AclInstance(
        instance_id=int(d["instance_id"]),
        object_id=int(d["object_id"]),
        object_instance_id=int(d["object_instance_id"]),
        acl={int(k): int(v) for k, v in d["acl"].items()},
        owner=int(d["owner"]),
    )


def bootstrap_config_to_json(config: BootstrapConfig) -> dict[str, Any]:
    """A bootstrap configuration as a JSON document (secrets included, see the module doc)."""
    return {
        "v": SCHEMA_VERSION,
        "security": [_security_to_json(s) for s in config.security],
        "servers": [_server_to_json(s) for s in config.servers],
        "acls": [_acl_to_json(a) for a in config.acls],
        "writes": [{"path": str(w.path), "node": node_to_json(w.node)} for w in config.writes],
        "delete": [str(p) for p in config.delete],
        "discover": config.discover,
        "content_format": None if config.content_format is None else int(config.content_format),
    }


def bootstrap_config_from_json(document: Mapping[str, Any]) -> BootstrapConfig:
    """The bootstrap configuration a document holds."""
    _check_version(document, "bootstrap config")
    with _guard("bootstrap config"):
        cf = document.get("content_format")
        return BootstrapConfig(
            security=tuple(_security_from_json(s) for s in document["security"]),
            servers=tuple(_server_from_json(s) for s in document["servers"]),
            acls=tuple(_acl_from_json(a) for a in document["acls"]),
            writes=tuple(
                ObjectWrite(Path.parse(w["path"]), node_from_json(w["node"]))
                for w in document["writes"]
            ),
            delete=tuple(Path.parse(p) for p in document["delete"]),
            discover=bool(document["discover"]),
            content_format=None if cf is None else ContentFormat(cf),
        )


# -- security entries ---------------------------------------------------------------------------


def security_info_to_json(info: SecurityInfo) -> dict[str, Any]:
    """A security entry as a JSON document (the PSK included, see the module doc)."""
    return {
        "v": SCHEMA_VERSION,
        "endpoint": info.endpoint,
        "identity": _identity_to_json(info.identity),
        "psk_key": None if info.psk_key is None else _b64(info.psk_key.reveal()),
        "public_key": _b64(info.public_key),
        "oscore": None if info.oscore is None else _oscore_to_json(info.oscore),
    }


def _oscore_to_json(oscore: OscoreInfo) -> dict[str, Any]:
    return {
        "sender_id": _b64(oscore.sender_id),
        "recipient_id": _b64(oscore.recipient_id),
        "master_secret": _b64(oscore.master_secret.reveal()),
        "master_salt": _b64(oscore.master_salt),
        "aead": oscore.aead,
        "hkdf": oscore.hkdf,
    }


def _oscore_from_json(document: Mapping[str, Any] | None) -> OscoreInfo | None:
    if document is None:
        return None
    return OscoreInfo(
        sender_id=_unb64(document["sender_id"]),
        recipient_id=_unb64(document["recipient_id"]),
        master_secret=SecretKey(_unb64(document["master_secret"])),
        master_salt=_unb64(document.get("master_salt", "")),
        aead=int(document.get("aead", 10)),
        hkdf=int(document.get("hkdf", -10)),
    )


def security_info_from_json(document: Mapping[str, Any]) -> SecurityInfo:
    """The security entry a document holds."""
    _check_version(document, "security info")
    with _guard("security info"):
        key = document.get("psk_key")
        return SecurityInfo(
            endpoint=str(document["endpoint"]),
            identity=_identity_from_json(document.get("identity")),
            psk_key=None if key is None else SecretKey(_unb64(key)),
            public_key=_unb64(document.get("public_key", "")),
            oscore=_oscore_from_json(document.get("oscore")),
        )
