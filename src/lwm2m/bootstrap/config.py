"""What the bootstrap server writes to one client: its :class:`BootstrapConfig`.

LwM2M-TS-Core 1.1 §6.1 (Bootstrap interface), §5.2.7 (Bootstrap sequence), Appendix E.1
(/0 Security), E.2 (/1 Server), E.3 (/2 Access Control). A configuration is:

- server accounts: :class:`SecurityInstance` (/0: URI, Bootstrap-Server flag, Security Mode,
  PSK identity and key or RPK / X.509 keys, Short Server ID, Client Hold Off Time,
  Bootstrap-Server Account Timeout) and :class:`ServerInstance` (/1: Short Server ID, Lifetime,
  Default pmin / pmax, Disable Timeout, Notification Storing, Binding, Mute Send);
- access control: :class:`AclInstance` (/2: object, instance, ACL per Short Server ID, owner);
- any extra Bootstrap-Writes (:class:`ObjectWrite`);
- what to Delete first (``/`` by default, Core §6.1.7.5: the client keeps its Bootstrap-Server
  account), and whether to start with a Bootstrap-Discover (§6.1.7.3).

Secrets (the /0 Secret Key, SMS binding keys) are :class:`Secret` values: their ``repr`` and
``str`` never show the bytes, and configuration errors name fields, never values.

The TOML file format is documented in :mod:`lwm2m.bootstrap.config_file`.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType

from lwm2m.codec.content_format import ContentFormat
from lwm2m.errors import Lwm2mError
from lwm2m.model.nodes import MultipleResource, Node, ObjectInstance, Resource, SingleResource
from lwm2m.model.path import ROOT, Path, PathLevel
from lwm2m.model.values import ObjectLink, ResourceType, Value

__all__ = [
    "AclInstance",
    "BootstrapConfig",
    "ConfigError",
    "ObjectWrite",
    "OscoreInstance",
    "Secret",
    "SecurityInstance",
    "SecurityMode",
    "ServerInstance",
]

_INT = ResourceType.INTEGER
_STR = ResourceType.STRING
_BOOL = ResourceType.BOOLEAN
_OPAQUE = ResourceType.OPAQUE
_OSCORE = 21


class ConfigError(Lwm2mError, ValueError):
    """A bootstrap configuration is invalid; the message names the field, never a secret."""


class SecurityMode(IntEnum):
    """/0/x/2 Security Mode (LwM2M-TS-Core Appendix E.1)."""

    PSK = 0
    RPK = 1
    X509 = 2
    NOSEC = 3
    EST = 4


class Secret:
    """Secret bytes (a key): compared in constant time, never shown by ``repr`` / ``str``.

    >>> key = Secret(bytes.fromhex("00112233"))
    >>> key, len(key), key.reveal()[:1]
    (Secret(<4 bytes>), 4, b'\\x00')
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray):
            raise ConfigError("a secret must be bytes")
        self._value = bytes(value)

    def reveal(self) -> bytes:
        """The secret bytes (for writing them to the client, nothing else)."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __repr__(self) -> str:
        return f"Secret(<{len(self._value)} bytes>)"

    __str__ = __repr__


_NO_SECRET = Secret(b"")


def _check_id(what: str, value: int | None, low: int = 0, high: int = 65534) -> None:
    if value is not None and (type(value) is not int or not low <= value <= high):
        raise ConfigError(f"{what} must be an integer in {low}..{high}")


def _single(resource_id: int, type_: ResourceType, value: Value) -> SingleResource:
    return SingleResource(resource_id, type_, value)


@dataclass(frozen=True, slots=True)
class OscoreInstance:
    """A /21 OSCORE instance (Core E.9; RFC 8613 §3.2), named from the client's side: the
    client's Sender ID is what its requests carry as ``kid``. The Master Secret is write-only
    and never logged."""

    sender_id: bytes
    recipient_id: bytes
    master_secret: Secret = field(repr=False)
    master_salt: bytes = b""
    aead: int | None = None
    """/21/x/3, a COSE algorithm (None: the RFC 8613 default, 10 AES-CCM-16-64-128)."""
    hkdf: int | None = None
    """/21/x/4, a COSE algorithm (None: the RFC 8613 default, -10 HKDF SHA-256)."""

    def __post_init__(self) -> None:
        if not isinstance(self.master_secret, Secret) or not self.master_secret:
            raise ConfigError("oscore: a non-empty master_secret is required")
        if self.sender_id == self.recipient_id:
            raise ConfigError("oscore: sender_id and recipient_id must differ (RFC 8613 §3.3)")
        for name in ("sender_id", "recipient_id"):
            if len(getattr(self, name)) > 7:  # nonce length 13 - 6 (RFC 8613 §3.3)
                raise ConfigError(f"oscore: {name} is longer than 7 bytes")

    def to_instance(self, instance_id: int) -> ObjectInstance:
        """The /21 instance to Bootstrap-Write (0 Master Secret, 1 Sender ID, 2 Recipient ID,
        3 AEAD Algorithm, 4 HMAC Algorithm, 5 Master Salt)."""
        resources: list[Resource] = [
            _single(0, _OPAQUE, self.master_secret.reveal()),
            _single(1, _OPAQUE, self.sender_id),
            _single(2, _OPAQUE, self.recipient_id),
            _single(5, _OPAQUE, self.master_salt),
        ]
        if self.aead is not None:
            resources.append(_single(3, _INT, self.aead))
        if self.hkdf is not None:
            resources.append(_single(4, _INT, self.hkdf))
        return ObjectInstance(instance_id, resources)


@dataclass(frozen=True, slots=True)
class SecurityInstance:
    """One /0 Security instance: how the client reaches and authenticates one server."""

    instance_id: int
    uri: str
    """/0/x/0 LwM2M Server URI, e.g. ``coaps://lwm2m.example.org:5684``."""
    bootstrap_server: bool = False
    """/0/x/1: this is the Bootstrap-Server account."""
    mode: SecurityMode = SecurityMode.NOSEC
    """/0/x/2 Security Mode."""
    public_key_or_identity: bytes = b""
    """/0/x/3: the PSK identity (PSK), the client's public key or certificate (RPK, X.509)."""
    server_public_key: bytes = b""
    """/0/x/4: the server's public key or certificate (RPK, X.509)."""
    secret_key: Secret = field(default=_NO_SECRET)
    """/0/x/5: the PSK or the client's private key. Write-only, never logged."""
    short_server_id: int | None = None
    """/0/x/10; required when ``bootstrap_server`` is false (Appendix E.1)."""
    client_hold_off_time: int | None = None
    """/0/x/11, seconds."""
    bootstrap_account_timeout: int | None = None
    """/0/x/12, seconds (0: the account is kept forever)."""
    sms_security_mode: int | None = None
    """/0/x/6."""
    sms_binding_key_parameters: bytes = b""
    """/0/x/7."""
    sms_binding_secret_keys: Secret = field(default=_NO_SECRET)
    """/0/x/8 (secret)."""
    server_sms_number: str | None = None
    """/0/x/9."""
    oscore: OscoreInstance | None = None
    """OSCORE for this account: written as /21 instance ``instance_id``, linked by /0/x/17
    (over ``coap://``, mode NoSec)."""

    def __post_init__(self) -> None:
        _check_id("security instance id", self.instance_id)
        if not isinstance(self.uri, str) or not self.uri or len(self.uri.encode()) > 255:
            raise ConfigError("security uri must be 1..255 bytes of text")
        object.__setattr__(self, "mode", _mode(self.mode))
        _check_id("short_server_id", self.short_server_id, 1, 65534)
        if not self.bootstrap_server and self.short_server_id is None:
            raise ConfigError("short_server_id is required for a server that is not a BS server")
        for name in ("client_hold_off_time", "bootstrap_account_timeout"):
            _check_id(name, getattr(self, name), 0, 2**31 - 1)
        if self.mode is SecurityMode.PSK and not (self.public_key_or_identity and self.secret_key):
            raise ConfigError("PSK mode needs a PSK identity and a key")
        for name in ("secret_key", "sms_binding_secret_keys"):
            if not isinstance(getattr(self, name), Secret):
                raise ConfigError(f"{name} must be a Secret")
        if self.oscore is not None and self.mode is not SecurityMode.NOSEC:
            raise ConfigError("oscore needs mode nosec (OSCORE over coap://)")

    def to_instance(self) -> ObjectInstance:
        """The /0 instance to Bootstrap-Write."""
        resources: list[Resource] = [
            _single(0, _STR, self.uri),
            _single(1, _BOOL, self.bootstrap_server),
            _single(2, _INT, int(self.mode)),
            _single(3, _OPAQUE, self.public_key_or_identity),
            _single(4, _OPAQUE, self.server_public_key),
            _single(5, _OPAQUE, self.secret_key.reveal()),
        ]
        if self.sms_security_mode is not None:
            resources.append(_single(6, _INT, self.sms_security_mode))
        if self.sms_binding_key_parameters:
            resources.append(_single(7, _OPAQUE, self.sms_binding_key_parameters))
        if self.sms_binding_secret_keys:
            resources.append(_single(8, _OPAQUE, self.sms_binding_secret_keys.reveal()))
        if self.server_sms_number is not None:
            resources.append(_single(9, _STR, self.server_sms_number))
        for rid, value in (
            (10, self.short_server_id),
            (11, self.client_hold_off_time),
            (12, self.bootstrap_account_timeout),
        ):
            if value is not None:
                resources.append(_single(rid, _INT, value))
        if self.oscore is not None:  # /0/x/17 OSCORE Security Mode
            link = ObjectLink(_OSCORE, self.instance_id)
            resources.append(_single(17, ResourceType.OBJLNK, link))
        return ObjectInstance(self.instance_id, resources)


def _mode(value: object) -> SecurityMode:
    try:
        return SecurityMode(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise ConfigError("security mode must be one of psk, rpk, x509, nosec, est") from None


@dataclass(frozen=True, slots=True)
class ServerInstance:
    """One /1 Server instance: registration parameters for one LwM2M server."""

    instance_id: int
    short_server_id: int
    """/1/x/0, matches the /0 instance's Short Server ID."""
    lifetime: int = 86400
    """/1/x/1, seconds."""
    default_min_period: int | None = None
    """/1/x/2 default pmin."""
    default_max_period: int | None = None
    """/1/x/3 default pmax."""
    disable_timeout: int | None = None
    """/1/x/5, seconds."""
    notification_storing: bool = True
    """/1/x/6."""
    binding: str = "U"
    """/1/x/7."""
    mute_send: bool | None = None
    """/1/x/23 (LwM2M 1.1): False lets the client Send."""

    def __post_init__(self) -> None:
        _check_id("server instance id", self.instance_id)
        _check_id("short_server_id", self.short_server_id, 1, 65534)
        _check_id("lifetime", self.lifetime, 1, 2**31 - 1)
        for name in ("default_min_period", "default_max_period", "disable_timeout"):
            _check_id(name, getattr(self, name), 0, 2**31 - 1)
        if not self.binding or any(c not in "UTSNQ" for c in self.binding):
            raise ConfigError("binding must be letters of U, T, S, N (Q for 1.0 clients)")

    def to_instance(self) -> ObjectInstance:
        """The /1 instance to Bootstrap-Write."""
        resources: list[Resource] = [
            _single(0, _INT, self.short_server_id),
            _single(1, _INT, self.lifetime),
        ]
        for rid, value in (
            (2, self.default_min_period),
            (3, self.default_max_period),
            (5, self.disable_timeout),
        ):
            if value is not None:
                resources.append(_single(rid, _INT, value))
        resources.append(_single(6, _BOOL, self.notification_storing))
        resources.append(_single(7, _STR, self.binding))
        if self.mute_send is not None:
            resources.append(_single(23, _BOOL, self.mute_send))
        return ObjectInstance(self.instance_id, resources)


@dataclass(frozen=True, slots=True)
class AclInstance:
    """One /2 Access Control instance (Appendix E.3).

    ``acl`` maps a Short Server ID (0: the default for every server) to its rights: a bit mask
    of 1 Read/Observe/Write-Attributes, 2 Write, 4 Execute, 8 Delete, 16 Create.
    """

    instance_id: int
    object_id: int
    object_instance_id: int
    acl: Mapping[int, int] = field(default_factory=dict)
    owner: int = 65535
    """/2/x/3 Access Control Owner; 65535 means managed by the bootstrap server only."""

    def __post_init__(self) -> None:
        _check_id("acl instance id", self.instance_id)
        _check_id("acl object_id", self.object_id, 1, 65534)
        _check_id("acl object_instance_id", self.object_instance_id, 0, 65535)
        _check_id("acl owner", self.owner, 0, 65535)
        acl = dict(self.acl)
        for ssid, rights in acl.items():
            _check_id("acl short server id", ssid, 0, 65534)
            _check_id("acl rights", rights, 0, 31)
        object.__setattr__(self, "acl", MappingProxyType(dict(sorted(acl.items()))))

    def to_instance(self) -> ObjectInstance:
        """The /2 instance to Bootstrap-Write."""
        resources: list[Resource] = [
            _single(0, _INT, self.object_id),
            _single(1, _INT, self.object_instance_id),
        ]
        if self.acl:
            resources.append(MultipleResource.of(2, _INT, dict(self.acl)))
        resources.append(_single(3, _INT, self.owner))
        return ObjectInstance(self.instance_id, resources)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AclInstance):
            return NotImplemented
        return (
            self.instance_id,
            self.object_id,
            self.object_instance_id,
            dict(self.acl),
            self.owner,
        ) == (
            other.instance_id,
            other.object_id,
            other.object_instance_id,
            dict(other.acl),
            other.owner,
        )

    def __hash__(self) -> int:
        return hash((self.instance_id, self.object_id, self.object_instance_id, self.owner))


@dataclass(frozen=True, slots=True)
class ObjectWrite:
    """An extra Bootstrap-Write of ``node`` at ``path`` (an object, instance or resource).

    The ``repr`` shows only the path: extra writes may carry secrets (e.g. /21 OSCORE).
    """

    path: Path
    node: Node

    def __post_init__(self) -> None:
        if self.path.is_root or self.path.level > PathLevel.RESOURCE:
            raise ConfigError("an extra write addresses an object, an instance or a resource")
        if self.node.id != self.path.ids[-1]:
            raise ConfigError(f"write {self.path}: the node id does not match the path")

    def __repr__(self) -> str:
        return f"ObjectWrite(path={self.path})"


def _tuple(items: Iterable[object]) -> tuple[object, ...]:
    return tuple(items)


@dataclass(frozen=True, slots=True)
class BootstrapConfig:
    """Everything the bootstrap server does for one endpoint, in task order:
    [Discover] → Delete ``delete`` paths → Write /0, /1, /2, extra writes → Finish."""

    security: tuple[SecurityInstance, ...] = ()
    servers: tuple[ServerInstance, ...] = ()
    acls: tuple[AclInstance, ...] = ()
    writes: tuple[ObjectWrite, ...] = ()
    delete: tuple[Path, ...] = (ROOT,)
    """Paths to Bootstrap-Delete first (``/`` by default; empty: delete nothing)."""
    discover: bool = False
    """Start with a Bootstrap-Discover of ``/`` (its links are reported in the step event)."""
    content_format: ContentFormat | None = None
    """Format of the writes; None: the client's preferred format (``pct``) when it can carry
    object instances, else TLV."""

    def __post_init__(self) -> None:
        for name in ("security", "servers", "acls", "writes", "delete"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        for name, ids in (
            ("security", [s.instance_id for s in self.security]),
            ("servers", [s.instance_id for s in self.servers]),
            ("acls", [a.instance_id for a in self.acls]),
        ):
            if len(set(ids)) != len(ids):
                raise ConfigError(f"two {name} entries have the same instance id")
        for path in self.delete:
            if not isinstance(path, Path) or path.level > PathLevel.OBJECT_INSTANCE:
                raise ConfigError("delete paths are /, an object or an object instance")
        ssids = {s.short_server_id for s in self.security if not s.bootstrap_server}
        for server in self.servers:
            if server.short_server_id not in ssids:
                raise ConfigError(
                    f"server instance {server.instance_id}: no security entry has "
                    f"short_server_id {server.short_server_id}"
                )

    def writes_in_order(self) -> list[tuple[Path, Node]]:
        """The Bootstrap-Writes to send, in order: /21 instances the /0 instances link to, /0,
        /1, /2 instances, then extra writes."""
        out: list[tuple[Path, Node]] = []
        out.extend(
            (Path(_OSCORE, s.instance_id), s.oscore.to_instance(s.instance_id))
            for s in self.security
            if s.oscore is not None
        )
        out.extend((Path(0, s.instance_id), s.to_instance()) for s in self.security)
        out.extend((Path(1, s.instance_id), s.to_instance()) for s in self.servers)
        out.extend((Path(2, a.instance_id), a.to_instance()) for a in self.acls)
        out.extend((w.path, w.node) for w in self.writes)
        return out
