"""The Secure Component contract: small capability Protocols, values and errors (LwM2M-SCS-1…5).

A *Secure Component* (SC) holds credentials and performs the operations that need them, so that
long-term secrets never sit in ordinary memory (LwM2M-SCS-1, -4). Callers hold *handles*:

- :class:`PskHandle` — a TLS/DTLS 1.2 pre-shared key: ``identity`` and
  ``derive_master_secret(label, seed)``. The plain-PSK premaster of RFC 4279 §2 embeds the raw
  PSK, so the whole master-secret derivation ``PRF(premaster, label, seed)[:48]`` (RFC 5246 §5,
  §8.1; the extended master secret of RFC 7627 §4 is the same call with its label and the
  session hash as seed) runs inside the component; only the master secret comes out.
- :class:`KeyHandle` — an ECDSA/ECDH P-256 private key: ``public_key()``, ``sign(data)`` (DER
  ECDSA over SHA-256(data), RFC 8422 §5.10 / X9.62; the component hashes) and
  ``exchange(peer_public_key)`` (the ECDH shared secret, SEC 1 §3.3.1).

- :class:`OscoreSecretHandle` — an OSCORE Master Secret (RFC 8613 §3.1) bound to the Master
  Salt it was imported with: ``hkdf(algorithm, salt, info, length)`` is the HKDF of RFC 5869
  keyed with it (RFC 8613 §3.2.1), run inside the component; only the derived keys come out
  (:mod:`lwm2m.secure.hkdf` says how each backend does it).

The handles satisfy the DTLS engine's credential seam (``lwm2m.dtls.credentials``:
``PskCredential`` and ``SigningKey``) and the OSCORE one (``lwm2m.oscore.MasterSecret``)
*structurally*; a :class:`SecureComponent` also has the ``lookup(identity)`` of its
``PskStore``. Nothing here imports the DTLS or OSCORE packages.

A :class:`SecureComponent` adds identification data (:class:`ComponentInfo`, LwM2M-SCS-2: type,
identifiers, versions, services, GlobalPlatform DLOA references), on-board key generation,
one-time import of bootstrap-provisioned secrets, and storage of *sensitive object instances*
(serialised instances of /0 Security, /21 OSCORE, application objects; LwM2M-SCS-4) whose
secret resources are kept as separate credentials and referenced by label
(:func:`secret_reference`).

All calls are synchronous so a sans-IO engine can make them. ``is_blocking`` backends (PKCS#11,
PC/SC) are driven from a worker thread by the asyncio adapters, one call at a time.

Errors are the :class:`SecureComponentError` subtree below; backends translate every foreign
exception into it. Messages carry labels, identities' lengths, paths and mechanism names —
never secret values, PINs or passphrases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, Flag, auto
from typing import Protocol, Self, runtime_checkable

from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.errors import SecureComponentError, SecureComponentUnavailable

__all__ = [
    "AuthenticationError",
    "BackendNotAvailable",
    "Capability",
    "ComponentClosed",
    "ComponentInfo",
    "ComponentNotFound",
    "ComponentType",
    "ComponentUnavailable",
    "CredentialInfo",
    "CredentialKind",
    "DloaReference",
    "Identifier",
    "InvalidSecureComponentUri",
    "KeyExists",
    "KeyHandle",
    "KeyNotFound",
    "KeySizeNotSupported",
    "MechanismNotSupported",
    "ModuleNotFound",
    "ObjectLocked",
    "OperationNotSupported",
    "OscoreSecretHandle",
    "PinIncorrect",
    "PinLocked",
    "PinRequired",
    "PskHandle",
    "SecureComponent",
    "SecureComponentError",
    "StorageCorrupted",
    "TokenNotFound",
    "check_instance_ids",
    "check_label",
    "check_p256",
    "default_psk_label",
    "identity_text",
    "is_reference_form",
    "parse_secret_reference",
    "psk_premaster",
    "secret_reference",
]


# --- errors ------------------------------------------------------------------------------------


class InvalidSecureComponentUri(SecureComponentError, ValueError):
    """A Secure Component URI cannot be parsed or names an unknown backend."""


class ComponentUnavailable(SecureComponentUnavailable):
    """The component cannot be reached: library, module, token or file missing."""


class BackendNotAvailable(ComponentUnavailable):
    """The backend named by the URI is not installed or not implemented yet."""


class ModuleNotFound(ComponentUnavailable):
    """The PKCS#11 module (shared library) cannot be found or loaded."""


class ComponentNotFound(ComponentUnavailable):
    """No component matches the URI (no such file, token or card)."""


class TokenNotFound(ComponentNotFound):
    """No PKCS#11 token matches the URI's token attributes."""


class ComponentClosed(SecureComponentError):
    """The component (or the handle's component) was closed."""


class AuthenticationError(SecureComponentError):
    """Logging in to the component failed."""


class PinRequired(AuthenticationError):
    """The component needs a PIN or passphrase and none was given."""


class PinIncorrect(AuthenticationError):
    """The PIN or passphrase is wrong."""


class PinLocked(AuthenticationError):
    """The PIN is blocked (too many wrong attempts); only the security officer can unblock it."""


class KeyNotFound(SecureComponentError, KeyError):
    """No credential (key pair, PSK, secret data) has the requested label."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else self.__class__.__name__


class KeyExists(SecureComponentError):
    """A credential with this label exists already (and replacing it was not asked for)."""


class OperationNotSupported(SecureComponentError):
    """The component cannot perform the operation."""


class MechanismNotSupported(OperationNotSupported):
    """The token does not offer a mechanism the operation needs."""


class KeySizeNotSupported(OperationNotSupported):
    """The component cannot hold a key of this size (e.g. a PSK too short for in-token HMAC)."""


class ObjectLocked(SecureComponentError):
    """An object is locked or read-only, or the component is in use by someone else."""


class StorageCorrupted(SecureComponentError):
    """Stored data fails its integrity checks; it is left untouched."""


# --- values ------------------------------------------------------------------------------------


class ComponentType(Enum):
    """Kinds of Secure Component (resource 0 of the Secure Component object).

    The values are the integers of the object's enumeration.
    """

    SOFTWARE = 0
    """Software emulation (``soft:``, SoftHSM): **not** secure hardware."""
    UICC = 1
    EUICC = 2
    ESE = 3
    """Embedded Secure Element."""
    TEE = 4
    """Trusted Execution Environment (e.g. OP-TEE's PKCS#11 TA)."""
    HSM = 5
    """Hardware security module or hardware PKCS#11 token."""

    @property
    def label(self) -> str:
        """Human-readable name.

        >>> ComponentType.EUICC.label, ComponentType.SOFTWARE.label
        ('eUICC', 'software')
        """
        return _TYPE_LABELS[self]


_TYPE_LABELS = {
    ComponentType.SOFTWARE: "software",
    ComponentType.UICC: "UICC",
    ComponentType.EUICC: "eUICC",
    ComponentType.ESE: "eSE",
    ComponentType.TEE: "TEE",
    ComponentType.HSM: "HSM",
}


class Capability(Flag):
    """What a component can do; operations outside its capabilities raise
    :class:`OperationNotSupported`."""

    NONE = 0
    PSK = auto()
    """Derive TLS 1.2 (extended) master secrets from stored PSKs, inside the component."""
    SIGN = auto()
    """ECDSA P-256 with SHA-256."""
    ECDH = auto()
    """ECDH on P-256."""
    KEY_GENERATION = auto()
    """Generate P-256 key pairs on board."""
    KEY_IMPORT = auto()
    """Import P-256 private keys and PSKs (e.g. from Bootstrap-Write)."""
    INSTANCE_STORE = auto()
    """Store sensitive object instances (LwM2M-SCS-4)."""
    SECRET_DATA = auto()
    """Keep secret data for the logged-in client (readable by it: see ``OSCORE``)."""
    NON_EXTRACTABLE = auto()
    """Keys are *enforced* non-extractable by the component itself."""
    OSCORE = auto()
    """Keep OSCORE Master Secrets and derive with them (HKDF) inside the component."""
    REMOTE_ADMIN = auto()
    """Relay remote APDU scripts to a security domain (:mod:`lwm2m.secure.admin`)."""

    @property
    def services(self) -> tuple[str, ...]:
        """Service names for the Secure Component object's "Supported Services" resource.

        >>> (Capability.PSK | Capability.SIGN).services
        ('tls12-psk-master-secret', 'ecdsa-p256-sha256')
        """
        return tuple(_SERVICE_NAMES[c] for c in Capability if c in self and c in _SERVICE_NAMES)


_SERVICE_NAMES = {
    Capability.PSK: "tls12-psk-master-secret",
    Capability.SIGN: "ecdsa-p256-sha256",
    Capability.ECDH: "ecdh-p256",
    Capability.KEY_GENERATION: "keygen-p256",
    Capability.KEY_IMPORT: "key-import",
    Capability.INSTANCE_STORE: "object-instance-store",
    Capability.SECRET_DATA: "secret-data",
    Capability.NON_EXTRACTABLE: "non-extractable-keys",
    Capability.OSCORE: "oscore-master-secret",
    Capability.REMOTE_ADMIN: "gp-remote-apdu-scripts",
}


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier of a component: ``scheme`` names what ``value`` is.

    Schemes used: ``iccid``, ``eid``, ``cplc`` (hex), ``card-serial``, ``pkcs11-token-serial``,
    ``pkcs11-token-label``, ``pkcs11-library``, ``tee-device-id``, ``soft-id``.

    >>> str(Identifier("iccid", "89440000000000000001"))
    'iccid:89440000000000000001'
    """

    scheme: str
    value: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"


@dataclass(frozen=True, slots=True)
class DloaReference:
    """Where a server finds a GlobalPlatform Digital Letter of Approval (GP DLOA v1.0).

    :attr:`registrar` is the DLOA Registrar's URL; :attr:`platform_id` identifies the certified
    platform (SE, TEE, device) and :attr:`application_id` the certified application, if any.
    """

    registrar: str
    platform_id: str
    application_id: str = ""


@dataclass(frozen=True, slots=True)
class ComponentInfo:
    """Identification data of a component (LwM2M-SCS-2), shown by ``lwm2m sc info`` and
    published as an instance of the Secure Component object."""

    type: ComponentType
    secure_hardware: bool
    """True only when the component is dedicated security hardware (the PKCS#11 slot reports
    CKF_HW_SLOT, a card, a TEE). Software emulation — ``soft:``, SoftHSM — is False."""
    backend: str
    """The URI scheme of the backend: ``soft``, ``pkcs11``, ``pcsc``."""
    label: str = ""
    manufacturer: str = ""
    model: str = ""
    serial_number: str = ""
    platform_version: str = ""
    firmware_version: str = ""
    identifiers: tuple[Identifier, ...] = ()
    capabilities: Capability = Capability.NONE
    dloa: tuple[DloaReference, ...] = ()

    @property
    def services(self) -> tuple[str, ...]:
        return self.capabilities.services

    @property
    def description(self) -> str:
        """One line saying what the component is, and loudly whether it is secure hardware.

        >>> ComponentInfo(ComponentType.SOFTWARE, False, "soft").description
        'soft: software component — software, not secure hardware'
        """
        what = f"{self.backend}: {self.type.label} component"
        if self.label:
            what += f" {self.label!r}"
        return what + (" (secure hardware)" if self.secure_hardware else _NOT_SECURE_HARDWARE)


_NOT_SECURE_HARDWARE = " — software, not secure hardware"


class CredentialKind(Enum):
    """What a labelled credential is."""

    KEY_PAIR = "key-pair"
    PSK = "psk"
    SECRET_DATA = "secret-data"


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """A credential as listed by :meth:`SecureComponent.credentials` — never its secret."""

    label: str
    kind: CredentialKind
    identity: bytes | None = None
    """The PSK identity (PSKs only)."""
    public_key: ec.EllipticCurvePublicKey | None = field(default=None, compare=False)
    """The public key (key pairs only)."""
    size: int | None = None
    """Length in bytes of the secret data (secret data only)."""
    oscore: bool = False
    """True for an OSCORE Master Secret (:meth:`SecureComponent.import_oscore_secret`), listed
    as secret data of the Master Secret's length: it is used through
    :meth:`SecureComponent.oscore_secret` and never read back (:meth:`~SecureComponent.get_secret`
    raises :class:`OperationNotSupported`)."""


# --- secret references -------------------------------------------------------------------------

_LABEL_MAX = 128
_REF_PREFIX = b"sc-ref:"


def check_label(label: str) -> str:
    """Return ``label`` if it is a valid credential label, else raise :class:`ValueError`.

    Labels are 1..128 printable characters (they become CKA_LABEL on PKCS#11 tokens).

    >>> check_label("lwm2m:/0/1/5")
    'lwm2m:/0/1/5'
    """
    if not isinstance(label, str) or not 0 < len(label) <= _LABEL_MAX or not label.isprintable():
        raise ValueError(f"a credential label must be 1..{_LABEL_MAX} printable characters")
    return label


def secret_reference(label: str) -> bytes:
    """The Opaque value that stands for a secret resource in a stored object instance.

    A sensitive instance (e.g. /0/1) is stored with its secret resources (e.g. /0/1/5 Secret
    Key) replaced by a reference to the component credential holding the secret.

    >>> secret_reference("lwm2m:/0/1/5")
    b'sc-ref:lwm2m:/0/1/5'
    """
    return _REF_PREFIX + check_label(label).encode()


def is_reference_form(value: bytes) -> bool:
    """Whether ``value`` has the form of a secret reference (``sc-ref:`` and anything): a
    value of that form whose label is invalid is an error, never a literal secret.

    >>> is_reference_form(b"sc-ref:\\x00"), is_reference_form(b"\\x01\\x02")
    (True, False)
    """
    return value.startswith(_REF_PREFIX)


def parse_secret_reference(value: bytes) -> str | None:
    """The label a :func:`secret_reference` value refers to, or None for any other value
    (including one of the reference form with an invalid label: see :func:`is_reference_form`).

    >>> parse_secret_reference(b"sc-ref:lwm2m:/0/1/5"), parse_secret_reference(b"\\x01\\x02")
    ('lwm2m:/0/1/5', None)
    """
    if not value.startswith(_REF_PREFIX):
        return None
    try:
        return check_label(value[len(_REF_PREFIX) :].decode())
    except (UnicodeDecodeError, ValueError):
        return None


# --- capability protocols ----------------------------------------------------------------------


@runtime_checkable
class PskHandle(Protocol):
    """A stored PSK; satisfies the DTLS engine's ``PskCredential``."""

    @property
    def label(self) -> str: ...

    @property
    def identity(self) -> bytes:
        """The PSK identity (RFC 4279 §2)."""
        ...

    @property
    def key_log_permitted(self) -> bool:
        """Whether a key log (SSLKEYLOGFILE) may record sessions using this PSK: software only."""
        ...

    def derive_master_secret(self, label: bytes, seed: bytes) -> bytes:
        """``PRF(premaster, label, seed)[:48]`` with the RFC 4279 §2 premaster of this PSK.

        ``label`` is ``b"master secret"`` with ``seed = client_random + server_random``
        (RFC 5246 §8.1) or ``b"extended master secret"`` with the session hash (RFC 7627 §4).
        """
        ...


@runtime_checkable
class KeyHandle(Protocol):
    """A P-256 private key inside the component; satisfies the DTLS engine's ``SigningKey``."""

    @property
    def label(self) -> str: ...

    @property
    def key_log_permitted(self) -> bool: ...

    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign(self, data: bytes) -> bytes:
        """DER-encoded ECDSA signature over SHA-256(``data``); the component hashes."""
        ...

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """The ECDH shared secret (the x coordinate, 32 bytes) with ``peer_public_key``."""
        ...


@runtime_checkable
class OscoreSecretHandle(Protocol):
    """An OSCORE Master Secret inside the component, bound to its Master Salt; satisfies
    ``lwm2m.oscore.MasterSecret`` structurally (its ``HkdfAlgorithm`` is an ``int``)."""

    @property
    def label(self) -> str: ...

    @property
    def master_salt(self) -> bytes:
        """The Master Salt the secret was imported with (not secret, RFC 5869 §3.1)."""
        ...

    def hkdf(self, algorithm: int, salt: bytes, info: bytes, length: int) -> bytes:
        """``HKDF-Expand(HKDF-Extract(salt, master secret), info, length)`` (RFC 5869 §2.2,
        §2.3; RFC 8613 §3.2.1) with the COSE HKDF ``algorithm`` (-10 HKDF SHA-256, -11 HKDF
        SHA-512).

        :raises OperationNotSupported: ``salt`` is not :attr:`master_salt`, or the component
            cannot derive with ``algorithm`` (PKCS#11 and IoT SAFE: HKDF SHA-256 only).
        :raises ValueError: ``length`` outside 1..255 times the hash length.
        :raises KeyNotFound: the secret was deleted or replaced since.
        """
        ...


@runtime_checkable
class SecureComponent(Protocol):
    """A Secure Component backend (``soft:``, ``pkcs11:``, ``pcsc:``).

    Open one with :func:`lwm2m.secure.open_component`; close it with :meth:`close` or a
    ``with`` block. Handles become unusable (:class:`ComponentClosed`) once it is closed.
    """

    @property
    def capabilities(self) -> Capability: ...

    @property
    def is_blocking(self) -> bool:
        """True when calls may block on I/O (a token, a card): run them in a worker thread."""
        ...

    def info(self) -> ComponentInfo:
        """Identification data (LwM2M-SCS-2)."""
        ...

    # credentials

    def psk(self, label: str) -> PskHandle:
        """The PSK stored as ``label``.

        :raises KeyNotFound: no PSK has that label.
        """
        ...

    def lookup(self, identity: bytes) -> PskHandle | None:
        """The PSK whose identity is ``identity`` (a server's ``PskStore``), or None."""
        ...

    def import_psk(
        self, identity: bytes, psk: bytes, *, label: str | None = None, replace: bool = False
    ) -> PskHandle:
        """Store a PSK — the one time the host sees it — and return its handle.

        The default label is ``psk:`` plus the identity in hex.

        :raises KeyExists: the label is taken and ``replace`` is False.
        :raises KeySizeNotSupported: the component cannot hold a PSK of this length.
        """
        ...

    def key(self, label: str) -> KeyHandle:
        """The key pair stored as ``label``.

        :raises KeyNotFound: no key pair has that label.
        """
        ...

    def generate_key(self, label: str) -> KeyHandle:
        """Generate a P-256 key pair on board; the private key is never extractable.

        :raises KeyExists: the label is taken.
        """
        ...

    def import_key(
        self, label: str, private_key: ec.EllipticCurvePrivateKey, *, replace: bool = False
    ) -> KeyHandle:
        """Store a P-256 private key provisioned from outside (e.g. /0/x/5 in RPK mode)."""
        ...

    def put_secret(self, label: str, data: bytes, *, replace: bool = False) -> None:
        """Keep secret data under ``label`` (an OSCORE Master Secret goes to
        :meth:`import_oscore_secret` instead, so that it is never read back)."""
        ...

    def get_secret(self, label: str) -> bytes:
        """Secret data kept by :meth:`put_secret` (returned to the logged-in client only).

        :raises KeyNotFound: no secret data has that label.
        :raises OperationNotSupported: the label is an OSCORE Master Secret (never read back).
        """
        ...

    def import_oscore_secret(
        self, label: str, master_secret: bytes, master_salt: bytes, *, replace: bool = False
    ) -> OscoreSecretHandle:
        """Store an OSCORE Master Secret (/21/x/0) bound to its Master Salt (/21/x/5, ``b""``
        when absent) — the one time the host sees the secret — and return its handle.

        :raises KeyExists: the label is taken and ``replace`` is False (or taken by another
            kind of credential).
        :raises KeySizeNotSupported: the component cannot hold a secret of this length.
        :raises ValueError: an empty Master Secret.
        """
        ...

    def oscore_secret(self, label: str) -> OscoreSecretHandle:
        """The OSCORE Master Secret stored as ``label``.

        :raises KeyNotFound: no OSCORE Master Secret has that label.
        """
        ...

    def credentials(self) -> list[CredentialInfo]:
        """Every credential, sorted by label (no secret values)."""
        ...

    def delete(self, label: str) -> bool:
        """Delete the credential ``label``; False if there was none."""
        ...

    # sensitive object instances (LwM2M-SCS-4)

    def put_instance(self, object_id: int, instance_id: int, data: bytes) -> None:
        """Store (or replace) the serialised object instance ``/object_id/instance_id``.

        A failure never loses the previously stored value.
        """
        ...

    def get_instance(self, object_id: int, instance_id: int) -> bytes | None:
        """The stored serialised instance, or None."""
        ...

    def list_instances(self, object_id: int | None = None) -> list[tuple[int, int]]:
        """``(object_id, instance_id)`` of every stored instance (of one object), sorted."""
        ...

    def delete_instance(self, object_id: int, instance_id: int) -> bool:
        """Delete a stored instance; False if there was none."""
        ...

    def close(self) -> None:
        """Release the component (log out, close sessions); idempotent."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


def default_psk_label(identity: bytes) -> str:
    """The label :meth:`SecureComponent.import_psk` uses when none is given.

    >>> default_psk_label(b"dev1")
    'psk:64657631'
    """
    return "psk:" + bytes(identity).hex()[: _LABEL_MAX - 4]


def psk_premaster(psk: bytes) -> bytes:
    """The plain-PSK premaster secret of RFC 4279 §2: ``uint16(N) ‖ 0^N ‖ uint16(N) ‖ psk``.

    PKCS#11 tokens store a PSK in this form so the TLS 1.2 PRF can run as in-token HMAC.

    >>> psk_premaster(b"\\x01\\x02").hex()
    '0002000000020102'
    """
    n = len(psk)
    if not 0 < n < 65536:
        raise ValueError("a PSK must be 1..65535 bytes long")
    return n.to_bytes(2, "big") + bytes(n) + n.to_bytes(2, "big") + psk


def check_instance_ids(object_id: int, instance_id: int) -> None:
    """Raise :class:`ValueError` unless both are LwM2M ids (0..65534)."""
    for what, value in (("object", object_id), ("object instance", instance_id)):
        if type(value) is not int or not 0 <= value < 65535:
            raise ValueError(f"{what} id {value!r} is not in 0..65534")


def check_p256(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> None:
    """Raise :class:`OperationNotSupported` unless ``key`` is on secp256r1."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise OperationNotSupported(
            f"only P-256 (secp256r1) keys are supported, not {key.curve.name}"
        )


def identity_text(identity: bytes) -> str:
    """A PSK identity for display: text when printable UTF-8, else ``hex:…``.

    >>> identity_text(b"dev1"), identity_text(b"\\x00\\xff")
    ("'dev1'", 'hex:00ff')
    """
    try:
        text = identity.decode()
    except UnicodeDecodeError:
        return "hex:" + identity.hex()
    return repr(text) if text.isprintable() and text else "hex:" + identity.hex()
