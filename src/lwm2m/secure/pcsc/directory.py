"""The credential directory of the ``pcsc:`` backend, on the card (sans-IO).

IoT SAFE containers are addressed by an id (at most 20 bytes) or a label (at most 60 bytes);
the contract's labels have up to 128 characters and several kinds share a namespace. The
directory — the file container :data:`DIRECTORY_ID` — maps them to the *managed* containers the
backend creates (ids :data:`MANAGED_PREFIX` + 6 random bytes)::

    change tag (8 random bytes, new at every write) ‖ CBOR {
        "v": 1,
        "creds": {label: [kind ("key" | "psk" | "data" | "oscore"), container id, extra]},
        "inst": [[object id, instance id, container id], …]}

``extra`` is the PSK identity, the uncompressed public key of a key pair, for an OSCORE Master
Secret (a secret container) the secret's length (1 byte) followed by the Master Salt, or null.
It holds no secret. A damaged directory raises
:class:`~lwm2m.secure.interfaces.StorageCorrupted` and is never overwritten by the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.secure.interfaces import (
    CredentialKind,
    StorageCorrupted,
    check_instance_ids,
    check_label,
)
from lwm2m.secure.pcsc.iotsafe import ObjectKind, ObjectRef

__all__ = [
    "DIRECTORY_ID",
    "MANAGED_PREFIX",
    "OBJECT_KINDS",
    "PEER_ID",
    "TAG_LENGTH",
    "Directory",
    "Entry",
    "IssuerContainer",
    "is_managed",
    "oscore_extra",
]

MANAGED_PREFIX = b"LW"
#: The managed file container holding the directory.
DIRECTORY_ID = MANAGED_PREFIX + bytes(6)
#: The managed public key container COMPUTE DH uses when the card has no issuer ``peer``.
PEER_ID = MANAGED_PREFIX + bytes(5) + b"\x01"
#: Bytes of the directory's change tag.
TAG_LENGTH = 8


def is_managed(ident: bytes | None) -> bool:
    """Whether a container id is one the backend made (``4C57`` + 6 bytes)."""
    return ident is not None and len(ident) == 8 and ident[:2] == MANAGED_PREFIX


@dataclass(frozen=True, slots=True)
class Entry:
    """A managed credential: its kind, its container, its identity or public key."""

    kind: CredentialKind
    container: bytes
    extra: bytes | None = None
    """The PSK identity, the public key point of a key pair, or :func:`oscore_extra`."""
    oscore: bool = False
    """An OSCORE Master Secret (listed as secret data, held in a secret container)."""

    @property
    def object_kind(self) -> ObjectKind:
        """The kind of container holding the credential."""
        return ObjectKind.SECRET if self.oscore else OBJECT_KINDS[self.kind]

    @property
    def master_salt(self) -> bytes:
        """The Master Salt of an OSCORE Master Secret."""
        return (self.extra or b"")[1:]

    @property
    def secret_length(self) -> int:
        """The length of an OSCORE Master Secret."""
        return (self.extra or b"\x00")[0]


def oscore_extra(secret_length: int, master_salt: bytes) -> bytes:
    """The ``extra`` of an OSCORE Master Secret entry: its length (1..255), its Master Salt."""
    return bytes([secret_length]) + master_salt


_KINDS = {
    CredentialKind.KEY_PAIR: "key",
    CredentialKind.PSK: "psk",
    CredentialKind.SECRET_DATA: "data",
}
_KINDS_BACK = {v: k for k, v in _KINDS.items()}
_OSCORE = "oscore"
OBJECT_KINDS = {
    CredentialKind.KEY_PAIR: ObjectKind.PRIVATE_KEY,
    CredentialKind.PSK: ObjectKind.SECRET,
    CredentialKind.SECRET_DATA: ObjectKind.FILE,
}


@dataclass(slots=True)
class Directory:
    """The decoded directory (see the module docstring)."""

    creds: dict[str, Entry] = field(default_factory=dict)
    instances: dict[tuple[int, int], bytes] = field(default_factory=dict)
    tag: bytes = b""
    """The change tag this content was written with (empty: no directory on the card)."""

    def copy(self) -> Directory:
        return Directory(dict(self.creds), dict(self.instances), self.tag)

    def containers(self) -> set[bytes]:
        return {e.container for e in self.creds.values()} | set(self.instances.values())

    def encode(self) -> bytes:
        creds = {
            label: [_OSCORE if e.oscore else _KINDS[e.kind], e.container, e.extra]
            for label, e in sorted(self.creds.items())
        }
        inst = [[oid, iid, c] for (oid, iid), c in sorted(self.instances.items())]
        data: bytes = cbor2.dumps({"v": 1, "creds": creds, "inst": inst})
        return self.tag + data

    @classmethod
    def decode(cls, data: bytes) -> Directory:
        try:
            if len(data) <= TAG_LENGTH:
                raise ValueError("too short")
            doc = cbor2.loads(data[TAG_LENGTH:])
            if doc["v"] != 1:
                raise ValueError(f"unknown version {doc['v']!r}")
            creds: dict[str, Entry] = {}
            for label, (kind, container, extra) in doc["creds"].items():
                check_label(label)
                if not (is_managed(container) and (extra is None or isinstance(extra, bytes))):
                    raise ValueError(f"bad entry {label!r}")
                if kind == _KINDS[CredentialKind.KEY_PAIR]:  # its public point must be usable
                    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), extra or b"")
                if kind == _OSCORE:
                    if not extra or not extra[0]:
                        raise ValueError(f"bad OSCORE entry {label!r}")
                    creds[label] = Entry(CredentialKind.SECRET_DATA, container, extra, True)
                    continue
                creds[label] = Entry(_KINDS_BACK[kind], container, extra)
            instances: dict[tuple[int, int], bytes] = {}
            for oid, iid, container in doc["inst"]:
                check_instance_ids(oid, iid)
                if not is_managed(container):
                    raise ValueError("bad instance entry")
                instances[oid, iid] = container
        except (cbor2.CBORDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise StorageCorrupted(
                f"the card's credential directory (file container {DIRECTORY_ID.hex().upper()}) "
                f"is damaged ({type(exc).__name__}); it is left untouched"
            ) from None
        return cls(creds, instances, data[:TAG_LENGTH])


@dataclass(slots=True)
class IssuerContainer:
    """An issuer container, as the component presents it."""

    label: str
    kind: CredentialKind
    ref: ObjectRef
    filled: bool = True
    identity: bytes | None = None
    public: ec.EllipticCurvePublicKey | None = None
