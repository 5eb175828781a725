"""The LwM2M Security object (/0) and the OSCORE object (/21): server accounts and keying material
(LwM2M-TS-Core 1.1 Appendix E.1 "LwM2M Object: LwM2M Security", E.9 OSCORE; Transport §5.2
security modes).

Both objects are :class:`~lwm2m.client.objects.base.StoredObject` s over an
:class:`~lwm2m.client.objects.base.InstanceStore` — the seam where a Secure Component backend
takes over their storage later (SCS-4/SCS-5). Only the bootstrap interface writes them; DM servers
never see them (4.01) and no interface reads the secret resources back (/0/x/5 Secret Key,
/0/x/8 SMS Binding Secret Keys, /21/x/0 OSCORE Master Secret).

:meth:`SecurityObject.credentials` is what the transport (the DTLS issue) asks for when it opens a
connection: the mode and the keying material of one account, the secret wrapped in
:class:`Secret` so that it never appears in a repr, a log line or an exception.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import IntEnum

from lwm2m.client.objects.base import InstanceStore, MemoryInstanceStore, StoredObject
from lwm2m.errors import NotFound
from lwm2m.model.definitions import ObjectDefinition
from lwm2m.model.registry import default_registry
from lwm2m.model.values import ObjectLink

__all__ = [
    "Credentials",
    "OscoreMaterial",
    "OscoreObject",
    "Secret",
    "SecurityMode",
    "SecurityObject",
]


class SecurityMode(IntEnum):
    """/0/x/2 Security Mode (LwM2M-TS-Core 1.1 E.1)."""

    PSK = 0
    RPK = 1
    CERTIFICATE = 2
    NO_SEC = 3
    CERTIFICATE_EST = 4

    @classmethod
    def parse(cls, text: str | int) -> SecurityMode:
        """A mode from its number or a name (``psk``, ``rpk``, ``x509``/``certificate``,
        ``nosec``, ``est``).

        >>> SecurityMode.parse("nosec"), SecurityMode.parse(0)
        (<SecurityMode.NO_SEC: 3>, <SecurityMode.PSK: 0>)
        """
        if isinstance(text, int):
            return cls(text)
        key = text.strip().lower().replace("-", "").replace("_", "")
        names = {
            "psk": cls.PSK,
            "rpk": cls.RPK,
            "x509": cls.CERTIFICATE,
            "certificate": cls.CERTIFICATE,
            "nosec": cls.NO_SEC,
            "est": cls.CERTIFICATE_EST,
            "certificateest": cls.CERTIFICATE_EST,
        }
        if key.isdigit():
            return cls(int(key))
        try:
            return names[key]
        except KeyError:
            raise ValueError(f"unknown security mode {text!r}") from None


class Secret:
    """Secret bytes that never show in a repr or str (compare with ``==`` in constant time).

    >>> Secret(b"k" * 16)
    <Secret 16 bytes>
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = bytes(value)

    def reveal(self) -> bytes:
        """The secret bytes (for the DTLS engine or a Secure Component import only)."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(self._value, other._value)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(len(self._value))

    def __repr__(self) -> str:
        return f"<Secret {len(self._value)} bytes>"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class OscoreMaterial:
    """The OSCORE input parameters of an account: its /21 instance (Core E.9, RFC 8613 §3.2).

    The Master Secret stays a :class:`Secret`; ``aead`` and ``hkdf`` are COSE algorithm ids
    (None: the RFC 8613 §3.2 defaults, AES-CCM-16-64-128 and HKDF SHA-256).
    """

    master_secret: Secret = field(repr=False)
    sender_id: bytes
    recipient_id: bytes
    aead: int | None = None
    hkdf: int | None = None
    master_salt: bytes = b""


@dataclass(frozen=True, slots=True)
class Credentials:
    """The keying material of one account, as the transport needs it (Transport §5.2.x).

    - PSK: ``identity`` = PSK identity, ``secret_key`` = the PSK;
    - RPK: ``identity`` = own SubjectPublicKeyInfo, ``server_public_key`` = the server's,
      ``secret_key`` = private key (RFC 5958);
    - Certificate: ``identity`` = own certificate (DER), ``server_public_key`` = server
      certificate or trust anchor, ``secret_key`` = private key.
    """

    security_instance_id: int
    mode: SecurityMode
    identity: bytes = b""
    server_public_key: bytes = b""
    secret_key: Secret = field(default_factory=lambda: Secret(b""), repr=False)
    sni: str | None = None
    ciphersuites: tuple[int, ...] = ()
    matching_type: int | None = None
    certificate_usage: int | None = None
    oscore: OscoreMaterial | None = None
    """/0/x/17 names a /21 instance: its OSCORE material (the client fills it in)."""


class SecurityObject(StoredObject):
    """/0 LwM2M Security: one instance per server account (and one for the bootstrap server)."""

    secret_resources = frozenset({5, 8})

    def __init__(
        self, store: InstanceStore | None = None, definition: ObjectDefinition | None = None
    ) -> None:
        super().__init__(
            definition or _definition(0), store if store is not None else MemoryInstanceStore()
        )

    def credentials(self, instance_id: int) -> Credentials:
        """The keying material of account ``instance_id`` (NotFound when it does not exist)."""
        instance = self.store.get(self.object_id, instance_id)
        if instance is None:
            raise NotFound(f"no security instance {instance_id}")
        mode = self.value(instance_id, 2, int(SecurityMode.NO_SEC))
        sni = self.value(instance_id, 14)
        matching = self.value(instance_id, 13)
        usage = self.value(instance_id, 15)
        suites = self.values(instance_id, 16)
        return Credentials(
            security_instance_id=instance_id,
            mode=SecurityMode(mode) if isinstance(mode, int) else SecurityMode.NO_SEC,
            identity=_bytes(self.value(instance_id, 3, b"")),
            server_public_key=_bytes(self.value(instance_id, 4, b"")),
            secret_key=Secret(_bytes(self.value(instance_id, 5, b""))),
            sni=sni if isinstance(sni, str) else None,
            ciphersuites=tuple(v for v in suites.values() if isinstance(v, int)),
            matching_type=matching if isinstance(matching, int) else None,
            certificate_usage=usage if isinstance(usage, int) else None,
        )

    def oscore_link(self, instance_id: int) -> ObjectLink | None:
        """/0/x/17 OSCORE Security Mode: the /21 instance to use, if any."""
        link = self.value(instance_id, 17)
        return link if isinstance(link, ObjectLink) and not link.is_null else None


class OscoreObject(StoredObject):
    """/21 OSCORE: keying material referenced from /0/x/17 (bootstrap-only, like /0)."""

    secret_resources = frozenset({0})

    def __init__(
        self, store: InstanceStore | None = None, definition: ObjectDefinition | None = None
    ) -> None:
        super().__init__(
            definition or _definition(21), store if store is not None else MemoryInstanceStore()
        )

    def material(self, instance_id: int) -> OscoreMaterial:
        """The OSCORE input parameters of instance ``instance_id`` (NotFound when it does not
        exist). The Master Secret is read as stored: a Secure Component reference stays one."""
        if self.store.get(self.object_id, instance_id) is None:
            raise NotFound(f"no OSCORE instance {instance_id}")
        aead = self.value(instance_id, 3)
        hkdf = self.value(instance_id, 4)
        return OscoreMaterial(
            master_secret=Secret(_bytes(self.value(instance_id, 0, b""))),
            sender_id=_bytes(self.value(instance_id, 1, b"")),
            recipient_id=_bytes(self.value(instance_id, 2, b"")),
            aead=aead if isinstance(aead, int) else None,
            hkdf=hkdf if isinstance(hkdf, int) else None,
            master_salt=_bytes(self.value(instance_id, 5, b"")),
        )


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return b""


def _definition(object_id: int) -> ObjectDefinition:
    definition = default_registry().get(object_id)
    assert definition is not None, f"bundled definition of /{object_id} missing"
    return definition
