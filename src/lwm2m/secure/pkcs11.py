"""``pkcs11:`` — a Secure Component on a PKCS#11 token (PKCS#11 v2.40; RFC 7512 URIs).

Driven through python-pkcs11. Tested against SoftHSM2 2.6.1; meant for HSMs, OP-TEE's PKCS#11
TA and smart-card tokens. Every python-pkcs11 exception is translated into the
:class:`lwm2m.secure.interfaces.SecureComponentError` tree (:func:`map_pkcs11_error`).

Objects on the token (all CKA_TOKEN, CKA_PRIVATE):

================  =================================================================================
key pair          CKO_PRIVATE_KEY/CKK_EC on P-256, generated on board (CKM_EC_KEY_PAIR_GEN) or
                  imported, CKA_SENSITIVE=TRUE, CKA_EXTRACTABLE=FALSE, CKA_SIGN, CKA_DERIVE; plus
                  its CKO_PUBLIC_KEY. Same CKA_LABEL, same random CKA_ID.
PSK               CKO_SECRET_KEY/CKK_GENERIC_SECRET holding the RFC 4279 §2 *premaster form*
                  ``P = uint16(N) ‖ 0^N ‖ uint16(N) ‖ PSK``, CKA_SENSITIVE, not extractable,
                  CKA_SIGN; CKA_ID = the PSK identity.
secret data       CKO_DATA, CKA_APPLICATION ``lwm2m-sc:secret``, CKA_LABEL = label.
OSCORE Master     CKO_SECRET_KEY/CKK_SHA256_HMAC holding ``PRK = HMAC-SHA256(Master Salt, Master
Secret            Secret)``, CKA_SENSITIVE, not extractable, CKA_SIGN only; CKA_ID =
                  ``lwm2m-oscore`` 01 ‖ uint16(secret length) ‖ Master Salt (no secret).
object instance   CKO_DATA, CKA_APPLICATION ``lwm2m-sc:instance``, CKA_LABEL ``/oid/iid``.
================  =================================================================================

**PSK master secret inside the token.** The TLS 1.2 PRF (RFC 5246 §5) is HMAC-SHA256 keyed with
the premaster secret, so storing P lets the token compute the master secret (RFC 5246 §8.1)
or the extended master secret (RFC 7627 §4) with four CKM_SHA256_HMAC C_Sign calls:
``A1 = HMAC(P, label‖seed)``, ``A2 = HMAC(P, A1)``, ``MS = (HMAC(P, A1‖label‖seed) ‖
HMAC(P, A2‖label‖seed))[:48]``. The PSK never leaves the token; only the master secret does,
as the DTLS record layer runs on the host. The mechanism list is probed when the component
opens: tokens offering CKM_TLS12_MASTER_KEY_DERIVE_DH or CKM_TLS_KDF are reported
(:attr:`Pkcs11Component.tls12_mechanisms`), but python-pkcs11 0.10 cannot call them (its
``Mechanism`` enum lacks them and ``derive_key`` refuses raw mechanism numbers), and they would
bring nothing here: with either construction the PSK stays in the token and the master secret
comes out. **Limit:** the HMAC key is P (2N+4 bytes), and tokens bound HMAC key sizes —
SoftHSM2 needs at least 32 bytes, so PSKs must be at least 14 bytes long there
(:class:`KeySizeNotSupported` otherwise), and at most 254 (512-byte maximum).

**OSCORE Master Secret inside the token** (RFC 8613 §3.2.1: ``HKDF(salt, secret, info, L)``).
PKCS#11 v2.40 has no HKDF mechanism, and HKDF-Extract uses the secret as HMAC *data*
(``PRK = HMAC(salt, secret)``), which no v2.40 mechanism does with a key object.
CKM_HKDF_DERIVE / CKM_HKDF_DATA (0x402A / 0x402B) came with PKCS#11 v3.0; SoftHSM 2.6.1
(cryptoki 2.40) lists neither, nor CKM_CONCATENATE_*, only CKM_SHA256_HMAC (keys of 32..512
bytes) and CKM_GENERIC_SECRET_KEY_GEN (probed through python-pkcs11 0.10, whose Mechanism enum
lacks them too). So :meth:`Pkcs11Component.import_oscore_secret` computes the PRK on the host —
the one moment the host holds the secret anyway — and imports the PRK as a non-extractable
CKK_SHA256_HMAC key; HKDF-Expand then runs as in-token CKM_SHA256_HMAC, ``T(i) = HMAC(PRK,
T(i-1) ‖ info ‖ i)`` (one C_Sign per 32 output bytes: one per OSCORE key or IV). The PRK fixes
the Master Salt and the hash: another salt, or HKDF SHA-512, is
:class:`~lwm2m.secure.interfaces.OperationNotSupported` (import the secret again). The key type
CKK_SHA256_HMAC keeps these keys apart from PSKs (CKK_GENERIC_SECRET).

**ECDSA** is CKM_ECDSA over a SHA-256 digest computed on the host (SoftHSM2 lacks
CKM_ECDSA_SHA256); the raw ``r‖s`` result is DER-encoded (RFC 5480 / X9.62 Ecdsa-Sig-Value).
**ECDH** is CKM_ECDH1_DERIVE with CKD_NULL into a session-only generic secret whose value is
read and the object destroyed.

**Object instances and secret data.** CKA_VALUE of a CKO_DATA object is read-only once created
(SoftHSM2: CKR_ATTRIBUTE_READ_ONLY), so an update creates a new object whose value starts with
a generation number one higher, then destroys the old one; readers take the highest
generation. Object creation is atomic, so a failure at any step leaves the previous value or
the new one, never neither. Keys are replaced the same way through a ``~pending`` label.

**Login.** PKCS#11 login state belongs to the application: a second C_Login on the same token
fails with CKR_USER_ALREADY_LOGGED_IN. Components opened on the same token within a process
therefore share one logged-in session (reference-counted; a second opener must present the
same PIN). Calls are serialised by a lock per token.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self

import pkcs11
import pkcs11.exceptions as p11e
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import KDF, Attribute, KeyType, Mechanism, ObjectClass, SlotFlag

from lwm2m.secure.hkdf import HKDF_SHA_256, check_master_secret, check_request, expand, extract
from lwm2m.secure.interfaces import (
    AuthenticationError,
    Capability,
    ComponentClosed,
    ComponentInfo,
    ComponentType,
    ComponentUnavailable,
    CredentialInfo,
    CredentialKind,
    DloaReference,
    Identifier,
    KeyExists,
    KeyNotFound,
    KeySizeNotSupported,
    MechanismNotSupported,
    ModuleNotFound,
    ObjectLocked,
    OperationNotSupported,
    PinIncorrect,
    PinLocked,
    PinRequired,
    SecureComponentError,
    StorageCorrupted,
    TokenNotFound,
    check_instance_ids,
    check_label,
    check_p256,
    default_psk_label,
    psk_premaster,
)
from lwm2m.secure.redact import redact_uri
from lwm2m.secure.uri import Pkcs11Uri

__all__ = [
    "ENV_PKCS11_MODULE",
    "Pkcs11Component",
    "Pkcs11KeyHandle",
    "Pkcs11OscoreSecretHandle",
    "Pkcs11PskHandle",
    "map_pkcs11_error",
    "open_uri",
]

#: Environment variable naming the PKCS#11 module when the URI has no module-path/-name.
ENV_PKCS11_MODULE = "LWM2M_PKCS11_MODULE"
#: Folders searched for ``module-name=NAME`` (as ``libNAME.so`` or ``NAME.so``).
MODULE_SEARCH_PATH = (
    "/usr/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/local/lib/pkcs11",
    "/usr/local/lib",
    "/usr/lib",
)

_P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")  # OID 1.2.840.10045.3.1.7 (RFC 5480)
_APP_INSTANCE = "lwm2m-sc:instance"
_APP_SECRET = "lwm2m-sc:secret"
_PENDING = "~pending"
_MASTER_SECRET_LENGTH = 48
_OSCORE_ID = b"lwm2m-oscore\x01"  # CKA_ID of an OSCORE PRK: this, uint16 length, the salt
_OSCORE = "stored OSCORE Master Secret"
_PRK_LENGTH = 32  # HKDF SHA-256
# PKCS#11 v2.40 §2.x: TLS 1.2 mechanisms, not in python-pkcs11's Mechanism enum.
CKM_TLS12_MASTER_KEY_DERIVE_DH = 0x3E2
CKM_TLS_KDF = 0x3E5
_TLS12_MECHANISMS = {
    CKM_TLS12_MASTER_KEY_DERIVE_DH: "CKM_TLS12_MASTER_KEY_DERIVE_DH",
    CKM_TLS_KDF: "CKM_TLS_KDF",
}


# --- error translation -------------------------------------------------------------------------

_ERRORS: tuple[tuple[tuple[type[BaseException], ...], type[SecureComponentError], str], ...] = (
    ((p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange), PinIncorrect, "wrong PIN"),
    ((p11e.PinLocked,), PinLocked, "the user PIN is locked"),
    ((p11e.PinExpired,), AuthenticationError, "the user PIN has expired"),
    ((p11e.UserPinNotInitialized,), AuthenticationError, "the token's user PIN is not set"),
    ((p11e.UserNotLoggedIn,), PinRequired, "not logged in"),
    (
        (p11e.UserAlreadyLoggedIn, p11e.AnotherUserAlreadyLoggedIn),
        ObjectLocked,
        "the token is logged in by another user of this process",
    ),
    (
        (
            p11e.NoSuchToken,
            p11e.TokenNotPresent,
            p11e.TokenNotRecognised,
            p11e.DeviceRemoved,
            p11e.SlotIDInvalid,
        ),
        TokenNotFound,
        "token not found",
    ),
    (
        (p11e.MechanismInvalid, p11e.MechanismParamInvalid, p11e.FunctionNotSupported),
        MechanismNotSupported,
        "mechanism not supported by the token",
    ),
    ((p11e.KeySizeRange,), KeySizeNotSupported, "key size not supported by the token"),
    (
        (p11e.NoSuchKey, p11e.ObjectHandleInvalid, p11e.KeyHandleInvalid),
        KeyNotFound,
        "object not found",
    ),
    (
        (
            p11e.AttributeReadOnly,
            p11e.AttributeSensitive,
            p11e.KeyUnextractable,
            p11e.TokenWriteProtected,
            p11e.SessionReadOnly,
        ),
        ObjectLocked,
        "object locked or read-only",
    ),
    ((p11e.SessionClosed, p11e.SessionHandleInvalid), ComponentClosed, "session closed"),
    (
        (p11e.DeviceError, p11e.DeviceMemory, p11e.GeneralError, p11e.FunctionFailed),
        ComponentUnavailable,
        "token failure",
    ),
)


def map_pkcs11_error(exc: BaseException, operation: str) -> SecureComponentError:
    """The :class:`SecureComponentError` for a python-pkcs11 exception raised by ``operation``.

    The message names the operation and the PKCS#11 error class, never data.

    >>> str(map_pkcs11_error(p11e.PinIncorrect(), "log in"))
    'log in: wrong PIN (PinIncorrect)'
    """
    for types, error, text in _ERRORS:
        if isinstance(exc, types):
            return error(f"{operation}: {text} ({type(exc).__name__})")
    return SecureComponentError(f"{operation}: PKCS#11 error {type(exc).__name__}")


@contextlib.contextmanager
def _translated(operation: str) -> Iterator[None]:
    try:
        yield
    except p11e.PKCS11Error as exc:
        raise map_pkcs11_error(exc, operation) from None


# --- the shared, logged-in connection to one token ---------------------------------------------


class _Connection:
    """One logged-in session on one token, shared by the components of this process."""

    def __init__(
        self, key: tuple[str, int], token: Any, session: Any, pin_check: tuple[bytes, bytes]
    ) -> None:
        self.key = key
        self.token = token
        self.session = session
        self.lock = threading.RLock()
        self.users = 1
        self._pin_check = pin_check
        slot = token.slot
        with _translated("read the mechanism list"):
            self.mechanisms: frozenset[int] = frozenset(int(m) for m in slot.get_mechanisms())
        self.hmac_key_range: tuple[int, int] | None = None
        if Mechanism.SHA256_HMAC in self.mechanisms:
            with _translated("read CKM_SHA256_HMAC information"):
                info = slot.get_mechanism_info(Mechanism.SHA256_HMAC)
            self.hmac_key_range = (info.min_key_length or 1, info.max_key_length or 1 << 16)

    def pin_matches(self, pin: str) -> bool:
        salt, digest = self._pin_check
        return hmac.compare_digest(hashlib.sha256(salt + pin.encode()).digest(), digest)


_CONNECTIONS: dict[tuple[str, int], _Connection] = {}
_CONNECTIONS_LOCK = threading.Lock()


def _connect(module: str, token: Any, pin: str) -> _Connection:
    key = (module, int(token.slot.slot_id))
    with _CONNECTIONS_LOCK:
        connection = _CONNECTIONS.get(key)
        if connection is not None:
            if not connection.pin_matches(pin):
                raise PinIncorrect("log in: wrong PIN (differs from the open session's)")
            connection.users += 1
            return connection
        with _translated(f"log in to token {token.label!r}"):
            session = token.open(rw=True, user_pin=pin)
        salt = os.urandom(16)
        connection = _Connection(
            key, token, session, (salt, hashlib.sha256(salt + pin.encode()).digest())
        )
        _CONNECTIONS[key] = connection
        return connection


def _disconnect(connection: _Connection) -> None:
    with _CONNECTIONS_LOCK:
        connection.users -= 1
        if connection.users > 0:
            return
        _CONNECTIONS.pop(connection.key, None)
        with connection.lock, contextlib.suppress(p11e.PKCS11Error):
            connection.session.close()


def _load_module(uri: Pkcs11Uri) -> tuple[str, Any]:
    path = uri.module_path
    if path is None and uri.module_name is not None:
        name = uri.module_name
        candidates = [f"lib{name}.so", f"{name}.so", name]
        path = next(
            (
                os.path.join(folder, c)
                for folder in MODULE_SEARCH_PATH
                for c in candidates
                if os.path.isfile(os.path.join(folder, c))
            ),
            None,
        )
        if path is None:
            raise ModuleNotFound(
                f"PKCS#11 module-name {name!r} not found in {', '.join(MODULE_SEARCH_PATH)}"
            )
    if path is None:
        path = os.environ.get(ENV_PKCS11_MODULE)
    if not path:
        raise ModuleNotFound(
            "no PKCS#11 module: add ?module-path=/path/to/module.so to the URI "
            f"(or set {ENV_PKCS11_MODULE})"
        )
    if not os.path.isfile(path):
        raise ModuleNotFound(f"PKCS#11 module {path!r} not found")
    try:
        return path, pkcs11.lib(path)
    except Exception as exc:  # the Cython loader raises several kinds
        raise ModuleNotFound(
            f"cannot load PKCS#11 module {path!r} ({type(exc).__name__})"
        ) from None


def _find_token(lib: Any, uri: Pkcs11Uri) -> Any:
    for wanted, actual in (
        (uri.library_manufacturer, lib.manufacturer_id),
        (uri.library_description, lib.library_description),
    ):
        if wanted is not None and wanted != actual.strip():
            raise TokenNotFound(f"the PKCS#11 module is {actual.strip()!r}, not {wanted!r}")
    if uri.library_version is not None:
        major, _, minor = uri.library_version.partition(".")
        if (int(major), int(minor or 0)) != tuple(lib.library_version):
            raise TokenNotFound(f"the PKCS#11 module is not version {uri.library_version}")
    with _translated("list the tokens"):
        slots = lib.get_slots(token_present=True)
        found = []
        labels = []
        for slot in slots:
            token = slot.get_token()
            labels.append(token.label)
            checks = (
                (uri.token, token.label),
                (uri.manufacturer, token.manufacturer_id),
                (uri.model, token.model),
                (uri.serial, token.serial.decode("ascii", "replace")),
                (uri.slot_description, slot.slot_description),
                (uri.slot_manufacturer, slot.manufacturer_id),
            )
            if uri.slot_id is not None and uri.slot_id != slot.slot_id:
                continue
            if all(w is None or w == a.strip() for w, a in checks):
                found.append(token)
    if not found:
        shown = ", ".join(repr(label) for label in labels if label) or "none"
        raise TokenNotFound(
            f"no PKCS#11 token matches {redact_uri(str(uri))!r} (initialised tokens: {shown})"
        )
    if len(found) > 1:
        raise TokenNotFound(
            f"{len(found)} PKCS#11 tokens match {redact_uri(str(uri))!r}; add token= or serial="
        )
    return found[0]


# --- handles -----------------------------------------------------------------------------------


def _public_from_point(value: bytes) -> ec.EllipticCurvePublicKey:
    point = bytes(value)
    if len(point) == 67 and point[:2] == b"\x04\x41":  # DER OCTET STRING around the point
        point = point[2:]
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


def _point_of(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class Pkcs11PskHandle:
    """A PSK on a token, stored in its RFC 4279 premaster form; the TLS 1.2 PRF runs inside."""

    __slots__ = ("_component", "_identity", "_key", "_label")

    key_log_permitted = False

    def __init__(self, component: Pkcs11Component, label: str, identity: bytes, key: Any) -> None:
        self._component = component
        self._label = label
        self._identity = identity
        self._key = key

    @property
    def label(self) -> str:
        return self._label

    @property
    def identity(self) -> bytes:
        return self._identity

    def derive_master_secret(self, label: bytes, seed: bytes) -> bytes:
        """``P_SHA256(P, label ‖ seed)[:48]`` as four in-token CKM_SHA256_HMAC (RFC 5246 §5)."""
        label_seed = bytes(label) + bytes(seed)
        with self._component._session("derive a master secret", self._label):
            sign = self._key.sign
            a1 = sign(label_seed, mechanism=Mechanism.SHA256_HMAC)
            a2 = sign(a1, mechanism=Mechanism.SHA256_HMAC)
            out = sign(a1 + label_seed, mechanism=Mechanism.SHA256_HMAC) + sign(
                a2 + label_seed, mechanism=Mechanism.SHA256_HMAC
            )
        return bytes(out[:_MASTER_SECRET_LENGTH])

    def __repr__(self) -> str:
        return f"Pkcs11PskHandle(label={self._label!r}, identity={self._identity!r})"


class Pkcs11OscoreSecretHandle:
    """An OSCORE Master Secret on a token, as its HKDF-SHA256 PRK: HKDF-Expand runs inside
    (CKM_SHA256_HMAC), with the Master Salt it was imported with only."""

    __slots__ = ("_component", "_key", "_label", "_salt")

    def __init__(self, component: Pkcs11Component, label: str, key: Any, salt: bytes) -> None:
        self._component = component
        self._label = label
        self._key = key
        self._salt = salt

    @property
    def label(self) -> str:
        return self._label

    @property
    def master_salt(self) -> bytes:
        return self._salt

    def hkdf(self, algorithm: int, salt: bytes, info: bytes, length: int) -> bytes:
        """HKDF-Expand(PRK, ``info``, ``length``) as in-token CKM_SHA256_HMAC (RFC 5869 §2.3)."""
        check_request(self._label, self._salt, algorithm, salt, length, (HKDF_SHA_256,))
        with self._component._session("derive with OSCORE Master Secret", self._label):
            key = self._key
            return expand(
                lambda data: bytes(key.sign(data, mechanism=Mechanism.SHA256_HMAC)),
                bytes(info),
                length,
            )

    def __repr__(self) -> str:
        return f"Pkcs11OscoreSecretHandle(label={self._label!r}, salt_length={len(self._salt)})"


def _oscore_id(secret_length: int, salt: bytes) -> bytes:
    return _OSCORE_ID + secret_length.to_bytes(2, "big") + salt


def _parse_oscore_id(key: Any) -> tuple[int, bytes]:
    """``(secret length, master salt)`` recorded in an OSCORE PRK's CKA_ID."""
    ident = bytes(key.id)
    if len(ident) < len(_OSCORE_ID) + 2:
        raise StorageCorrupted(f"the OSCORE Master Secret {key.label!r} has a damaged CKA_ID")
    rest = ident[len(_OSCORE_ID) :]
    return int.from_bytes(rest[:2], "big"), rest[2:]


class Pkcs11KeyHandle:
    """A P-256 key pair generated on (or imported into) a token; the private key stays there."""

    __slots__ = ("_component", "_label", "_private", "_public")

    key_log_permitted = False

    def __init__(
        self,
        component: Pkcs11Component,
        label: str,
        private: Any,
        public: ec.EllipticCurvePublicKey,
    ) -> None:
        self._component = component
        self._label = label
        self._private = private
        self._public = public

    @property
    def label(self) -> str:
        return self._label

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        """CKM_ECDSA over SHA-256(``data``) (hashed on the host), DER-encoded."""
        digest = hashlib.sha256(bytes(data)).digest()
        with self._component._session("sign", self._label):
            raw = self._private.sign(digest, mechanism=Mechanism.ECDSA)
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half]), int.from_bytes(raw[half:]))

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """CKM_ECDH1_DERIVE (CKD_NULL) into a session object, read and destroyed."""
        check_p256(peer_public_key)
        point = _point_of(peer_public_key)
        with self._component._session("ECDH", self._label):
            secret = self._private.derive_key(
                KeyType.GENERIC_SECRET,
                256,
                mechanism=Mechanism.ECDH1_DERIVE,
                mechanism_param=(KDF.NULL, None, point),
                template={
                    Attribute.TOKEN: False,
                    Attribute.SENSITIVE: False,
                    Attribute.EXTRACTABLE: True,
                },
            )
            try:
                value = bytes(secret[Attribute.VALUE])
            finally:
                secret.destroy()
        return value

    def __repr__(self) -> str:
        spki = self._public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return (
            f"Pkcs11KeyHandle(label={self._label!r}, "
            f"public_sha256={hashlib.sha256(spki).hexdigest()[:16]})"
        )


# --- the component -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Versioned:
    generation: int
    value: bytes
    handle: Any
    label: str


class Pkcs11Component:
    """A Secure Component on a PKCS#11 token (see the module docstring).

    :param uri: an RFC 7512 URI (text or :class:`Pkcs11Uri`) selecting the module and token.
    :param pin: the user PIN, instead of the URI's ``pin-source``/``pin-value``.
    :param dloa: DLOA references to report in :meth:`info`.
    :raises ModuleNotFound, TokenNotFound, PinRequired, PinIncorrect, PinLocked: as named.
    """

    is_blocking = True

    def __init__(
        self,
        uri: str | Pkcs11Uri,
        *,
        pin: str | None = None,
        dloa: Sequence[DloaReference] = (),
    ) -> None:
        self._uri = uri if isinstance(uri, Pkcs11Uri) else Pkcs11Uri.parse(uri)
        self._dloa = tuple(dloa)
        self._closed = True
        self._module, self._lib = _load_module(self._uri)
        token = _find_token(self._lib, self._uri)
        self._connection = _connect(self._module, token, self._uri.resolve_pin(pin))
        self._closed = False
        mechanisms = self._connection.mechanisms
        capabilities = (
            Capability.KEY_IMPORT
            | Capability.INSTANCE_STORE
            | Capability.SECRET_DATA
            | Capability.NON_EXTRACTABLE
        )
        for mechanism, capability in (
            (Mechanism.SHA256_HMAC, Capability.PSK),
            (Mechanism.ECDSA, Capability.SIGN),
            (Mechanism.ECDH1_DERIVE, Capability.ECDH),
            (Mechanism.EC_KEY_PAIR_GEN, Capability.KEY_GENERATION),
            (Mechanism.SHA256_HMAC, Capability.OSCORE),
        ):
            if mechanism in mechanisms:
                capabilities |= capability
        self.capabilities = capabilities
        self.tls12_mechanisms = tuple(
            name for number, name in _TLS12_MECHANISMS.items() if number in mechanisms
        )
        """TLS 1.2 derivation mechanisms the token offers (reported, not used: see above)."""

    # -- plumbing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self, operation: str, label: str | None = None) -> Iterator[Any]:
        if self._closed:
            raise ComponentClosed("the PKCS#11 Secure Component is closed")
        what = f"{operation} {label!r}" if label is not None else operation
        with self._connection.lock, _translated(what):
            yield self._connection.session

    def _require(self, capability: Capability, mechanism: str) -> None:
        if capability not in self.capabilities:
            raise MechanismNotSupported(f"the token does not offer {mechanism}")

    @staticmethod
    def _objects(session: Any, attrs: dict[Attribute, Any]) -> list[Any]:
        return list(session.get_objects(attrs))

    def _private_keys(self, session: Any, label: str) -> list[Any]:
        return self._objects(
            session,
            {
                Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                Attribute.KEY_TYPE: KeyType.EC,
                Attribute.LABEL: label,
            },
        )

    def _psk_keys(
        self, session: Any, label: str | None = None, identity: bytes | None = None
    ) -> list[Any]:
        attrs: dict[Attribute, Any] = {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
            Attribute.SIGN: True,
        }
        if label is not None:
            attrs[Attribute.LABEL] = label
        if identity is not None:
            attrs[Attribute.ID] = identity
        return self._objects(session, attrs)

    def _oscore_keys(self, session: Any, label: str | None = None) -> list[Any]:
        """OSCORE PRKs: HMAC-SHA256 keys whose CKA_ID starts with ours (other applications'
        HMAC keys on a shared token are not taken for OSCORE Master Secrets)."""
        attrs: dict[Attribute, Any] = {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.SHA256_HMAC,
            Attribute.SIGN: True,
        }
        if label is not None:
            attrs[Attribute.LABEL] = label
        return [k for k in self._objects(session, attrs) if bytes(k.id).startswith(_OSCORE_ID)]

    def _data(self, session: Any, application: str, label: str | None = None) -> list[_Versioned]:
        attrs: dict[Attribute, Any] = {
            Attribute.CLASS: ObjectClass.DATA,
            Attribute.APPLICATION: application,
        }
        if label is not None:
            attrs[Attribute.LABEL] = label
        found = []
        for obj in self._objects(session, attrs):
            value = bytes(obj[Attribute.VALUE])
            if len(value) < 8:
                raise StorageCorrupted(f"PKCS#11 data object {label!r} is damaged")
            found.append(
                _Versioned(int.from_bytes(value[:8]), value[8:], obj, obj[Attribute.LABEL])
            )
        return found

    def _latest(self, session: Any, application: str, label: str) -> _Versioned | None:
        versions = self._data(session, application, label)
        return max(versions, key=lambda v: v.generation) if versions else None

    def _write_data(self, session: Any, application: str, label: str, value: bytes) -> None:
        """Create generation n+1, then destroy the older ones (see the module docstring)."""
        old = self._data(session, application, label)
        generation = max((v.generation for v in old), default=0) + 1
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.DATA,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.APPLICATION: application,
                Attribute.LABEL: label,
                Attribute.VALUE: generation.to_bytes(8, "big") + value,
            }
        )
        for version in old:
            version.handle.destroy()

    def _label_kind(self, session: Any, label: str) -> str | None:
        """What ``label`` is: a :class:`CredentialKind` value, :data:`_OSCORE` or None."""
        if self._private_keys(session, label):
            return CredentialKind.KEY_PAIR.value
        if self._psk_keys(session, label):
            return CredentialKind.PSK.value
        if self._oscore_keys(session, label):
            return _OSCORE
        if self._data(session, _APP_SECRET, label):
            return CredentialKind.SECRET_DATA.value
        return None

    def _claim(self, session: Any, label: str, kind: str, replace: bool) -> str:
        """The label to create under: ``label``, or its pending form when replacing."""
        check_label(label)
        existing = self._label_kind(session, label)
        if existing is None:
            return label
        if replace and existing == kind:
            return label + _PENDING
        raise KeyExists(f"a {existing} labelled {label!r} exists already")

    def _finish_replace(self, session: Any, label: str, new_objects: Sequence[Any]) -> None:
        """Destroy the old credential ``label`` and give the new objects its label."""
        self._destroy_credential(session, label)
        for obj in new_objects:
            obj[Attribute.LABEL] = label

    def _destroy_credential(self, session: Any, label: str) -> bool:
        found = False
        for private in self._private_keys(session, label):
            for public in self._objects(
                session, {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: private.id}
            ):
                public.destroy()
            private.destroy()
            found = True
        for key in self._psk_keys(session, label):
            key.destroy()
            found = True
        for key in self._oscore_keys(session, label):
            key.destroy()
            found = True
        for version in self._data(session, _APP_SECRET, label):
            version.handle.destroy()
            found = True
        return found

    def _public_of(self, session: Any, private: Any) -> ec.EllipticCurvePublicKey:
        publics = self._objects(
            session,
            {
                Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                Attribute.KEY_TYPE: KeyType.EC,
                Attribute.ID: private.id,
            },
        )
        if not publics:
            raise StorageCorrupted(f"the public key of {private.label!r} is missing")
        return _public_from_point(publics[0][Attribute.EC_POINT])

    # -- SecureComponent ------------------------------------------------------------------------

    def info(self) -> ComponentInfo:
        with self._session("read token information"):
            token = self._connection.token
            slot = token.slot
            hardware = bool(slot.flags & SlotFlag.HW_SLOT)
            override = self._uri.component_type
            kind = override or (ComponentType.HSM if hardware else ComponentType.SOFTWARE)
            library = (
                f"{self._lib.manufacturer_id.strip()} {self._lib.library_description.strip()} "
                + ".".join(map(str, self._lib.library_version))
            )
            serial = token.serial.decode("ascii", "replace").strip()
            return ComponentInfo(
                type=kind,
                secure_hardware=hardware or (override not in (None, ComponentType.SOFTWARE)),
                backend="pkcs11",
                label=token.label.strip(),
                manufacturer=token.manufacturer_id.strip(),
                model=token.model.strip(),
                serial_number=serial,
                platform_version=".".join(map(str, token.hardware_version)),
                firmware_version=".".join(map(str, token.firmware_version)),
                identifiers=(
                    Identifier("pkcs11-token-serial", serial),
                    Identifier("pkcs11-token-label", token.label.strip()),
                    Identifier("pkcs11-library", library),
                    Identifier("pkcs11-slot", slot.slot_description.strip()),
                ),
                capabilities=self.capabilities,
                dloa=self._dloa,
            )

    def psk(self, label: str) -> Pkcs11PskHandle:
        with self._session("find PSK", label) as session:
            keys = self._psk_keys(session, label) or self._psk_keys(session, label + _PENDING)
            if not keys:
                raise KeyNotFound(f"no PSK labelled {label!r}")
            key = keys[0]
            return Pkcs11PskHandle(self, label, bytes(key.id), key)

    def lookup(self, identity: bytes) -> Pkcs11PskHandle | None:
        with self._session("find PSK by identity") as session:
            keys = sorted(self._psk_keys(session, identity=bytes(identity)), key=lambda k: k.label)
            if not keys:
                return None
            label = keys[0].label.removesuffix(_PENDING)
            return Pkcs11PskHandle(self, label, bytes(identity), keys[0])

    def import_psk(
        self, identity: bytes, psk: bytes, *, label: str | None = None, replace: bool = False
    ) -> Pkcs11PskHandle:
        label = default_psk_label(identity) if label is None else label
        self._require(Capability.PSK, "CKM_SHA256_HMAC (for the TLS 1.2 PRF)")
        size = 2 * len(psk) + 4
        low, high = self._connection.hmac_key_range or (1, 1 << 16)
        if not low <= size <= high:
            raise KeySizeNotSupported(
                f"this token's CKM_SHA256_HMAC takes keys of {low}..{high} bytes; the RFC 4279 "
                f"premaster of a {len(psk)}-byte PSK is {size} bytes: use a PSK of "
                f"{max(1, (low - 3) // 2)}..{(high - 4) // 2} bytes"
            )
        with self._session("import PSK", label) as session:
            target = self._claim(session, label, CredentialKind.PSK.value, replace)
            template = {
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.VERIFY: False,
                Attribute.DERIVE: False,
                Attribute.ENCRYPT: False,
                Attribute.DECRYPT: False,
                Attribute.WRAP: False,
                Attribute.UNWRAP: False,
                Attribute.LABEL: target,
                Attribute.ID: bytes(identity),
                Attribute.VALUE: psk_premaster(bytes(psk)),
            }
            key = session.create_object(template)
            del template  # the premaster form: drop the host's last reference at once
            if target != label:
                self._finish_replace(session, label, [key])
        return Pkcs11PskHandle(self, label, bytes(identity), key)

    def key(self, label: str) -> Pkcs11KeyHandle:
        with self._session("find key", label) as session:
            keys = self._private_keys(session, label) or self._private_keys(
                session, label + _PENDING
            )
            if not keys:
                raise KeyNotFound(f"no key pair labelled {label!r}")
            return Pkcs11KeyHandle(self, label, keys[0], self._public_of(session, keys[0]))

    def generate_key(self, label: str) -> Pkcs11KeyHandle:
        self._require(Capability.KEY_GENERATION, "CKM_EC_KEY_PAIR_GEN")
        with self._session("generate key pair", label) as session:
            self._claim(session, label, CredentialKind.KEY_PAIR.value, replace=False)
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: _P256_PARAMS}, local=True
            )
            public, private = params.generate_keypair(
                store=True,
                label=label,
                id=os.urandom(16),
                public_template={Attribute.VERIFY: True, Attribute.TOKEN: True},
                private_template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.DERIVE: True,
                },
            )
            return Pkcs11KeyHandle(
                self, label, private, _public_from_point(public[Attribute.EC_POINT])
            )

    def import_key(
        self, label: str, private_key: ec.EllipticCurvePrivateKey, *, replace: bool = False
    ) -> Pkcs11KeyHandle:
        check_p256(private_key)
        public_key = private_key.public_key()
        point = _point_of(public_key)
        key_id = os.urandom(16)
        with self._session("import key pair", label) as session:
            target = self._claim(session, label, CredentialKind.KEY_PAIR.value, replace)
            template = {
                Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                Attribute.KEY_TYPE: KeyType.EC,
                Attribute.EC_PARAMS: _P256_PARAMS,
                Attribute.VALUE: private_key.private_numbers().private_value.to_bytes(32, "big"),
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.DERIVE: True,
                Attribute.LABEL: target,
                Attribute.ID: key_id,
            }
            private = session.create_object(template)
            del template
            public = session.create_object(
                {
                    Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                    Attribute.KEY_TYPE: KeyType.EC,
                    Attribute.EC_PARAMS: _P256_PARAMS,
                    Attribute.EC_POINT: b"\x04" + bytes([len(point)]) + point,
                    Attribute.TOKEN: True,
                    Attribute.VERIFY: True,
                    Attribute.LABEL: target,
                    Attribute.ID: key_id,
                }
            )
            if target != label:
                self._finish_replace(session, label, [private, public])
        return Pkcs11KeyHandle(self, label, private, public_key)

    def put_secret(self, label: str, data: bytes, *, replace: bool = False) -> None:
        with self._session("store secret data", label) as session:
            self._claim(session, label, CredentialKind.SECRET_DATA.value, replace)
            self._write_data(session, _APP_SECRET, label, bytes(data))

    def get_secret(self, label: str) -> bytes:
        with self._session("read secret data", label) as session:
            latest = self._latest(session, _APP_SECRET, label)
            if latest is None and self._oscore_keys(session, label):
                raise OperationNotSupported(
                    f"{label!r} is an OSCORE Master Secret: it is not read back (oscore_secret)"
                )
        if latest is None:
            raise KeyNotFound(f"no secret data labelled {label!r}")
        return latest.value

    def import_oscore_secret(
        self, label: str, master_secret: bytes, master_salt: bytes, *, replace: bool = False
    ) -> Pkcs11OscoreSecretHandle:
        """Import ``PRK = HMAC-SHA256(master_salt, master_secret)`` as a non-extractable HMAC
        key (see the module docstring); neither the secret nor the PRK stays on the host."""
        secret, salt = check_master_secret(master_secret, master_salt)
        self._require(Capability.OSCORE, "CKM_SHA256_HMAC (for HKDF-Expand)")
        low, high = self._connection.hmac_key_range or (1, 1 << 16)
        if not low <= _PRK_LENGTH <= high:
            raise KeySizeNotSupported(
                f"this token's CKM_SHA256_HMAC takes keys of {low}..{high} bytes, not the "
                f"{_PRK_LENGTH}-byte HKDF-SHA256 PRK of an OSCORE Master Secret"
            )
        ident = _oscore_id(len(secret), salt)
        with self._session("import OSCORE Master Secret", label) as session:
            target = self._claim(session, label, _OSCORE, replace)
            template = {
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.SHA256_HMAC,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.VERIFY: False,
                Attribute.DERIVE: False,
                Attribute.ENCRYPT: False,
                Attribute.DECRYPT: False,
                Attribute.WRAP: False,
                Attribute.UNWRAP: False,
                Attribute.LABEL: target,
                Attribute.ID: ident,
                Attribute.VALUE: extract("sha256", salt, secret),
            }
            del secret
            key = session.create_object(template)
            del template  # the PRK: drop the host's last reference at once
            if target != label:
                self._finish_replace(session, label, [key])
        return Pkcs11OscoreSecretHandle(self, label, key, salt)

    def oscore_secret(self, label: str) -> Pkcs11OscoreSecretHandle:
        with self._session("find OSCORE Master Secret", label) as session:
            keys = self._oscore_keys(session, label) or self._oscore_keys(session, label + _PENDING)
            if not keys:
                raise KeyNotFound(f"no {_OSCORE} labelled {label!r}")
            _, salt = _parse_oscore_id(keys[0])
            return Pkcs11OscoreSecretHandle(self, label, keys[0], salt)

    def credentials(self) -> list[CredentialInfo]:
        result: dict[str, CredentialInfo] = {}
        with self._session("list credentials") as session:
            for private in self._objects(
                session, {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC}
            ):
                label = private.label.removesuffix(_PENDING)
                result.setdefault(
                    label,
                    CredentialInfo(
                        label, CredentialKind.KEY_PAIR, public_key=self._public_of(session, private)
                    ),
                )
            for key in self._psk_keys(session):
                label = key.label.removesuffix(_PENDING)
                result.setdefault(
                    label, CredentialInfo(label, CredentialKind.PSK, identity=bytes(key.id))
                )
            latest: dict[str, _Versioned] = {}
            for version in self._data(session, _APP_SECRET):
                label = version.label
                if label not in latest or version.generation > latest[label].generation:
                    latest[label] = version
            for key in self._oscore_keys(session):
                label = key.label.removesuffix(_PENDING)
                length, _ = _parse_oscore_id(key)
                result.setdefault(
                    label,
                    CredentialInfo(label, CredentialKind.SECRET_DATA, size=length, oscore=True),
                )
            for label, version in latest.items():
                result.setdefault(
                    label,
                    CredentialInfo(label, CredentialKind.SECRET_DATA, size=len(version.value)),
                )
        return [result[label] for label in sorted(result)]

    def delete(self, label: str) -> bool:
        with self._session("delete", label) as session:
            found = self._destroy_credential(session, label)
            return self._destroy_credential(session, label + _PENDING) or found

    def put_instance(self, object_id: int, instance_id: int, data: bytes) -> None:
        check_instance_ids(object_id, instance_id)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("a serialised instance is bytes")
        path = f"/{object_id}/{instance_id}"
        with self._session("store object instance", path) as session:
            self._write_data(session, _APP_INSTANCE, path, bytes(data))

    def get_instance(self, object_id: int, instance_id: int) -> bytes | None:
        path = f"/{object_id}/{instance_id}"
        with self._session("read object instance", path) as session:
            latest = self._latest(session, _APP_INSTANCE, path)
        return None if latest is None else latest.value

    def list_instances(self, object_id: int | None = None) -> list[tuple[int, int]]:
        with self._session("list object instances") as session:
            objects = self._objects(
                session,
                {Attribute.CLASS: ObjectClass.DATA, Attribute.APPLICATION: _APP_INSTANCE},
            )
            labels = {obj[Attribute.LABEL] for obj in objects}
        found = set()
        for label in labels:
            _, oid, iid = label.split("/")
            if object_id in (None, int(oid)):
                found.add((int(oid), int(iid)))
        return sorted(found)

    def delete_instance(self, object_id: int, instance_id: int) -> bool:
        path = f"/{object_id}/{instance_id}"
        with self._session("delete object instance", path) as session:
            versions = self._data(session, _APP_INSTANCE, path)
            for version in versions:
                version.handle.destroy()
        return bool(versions)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _disconnect(self._connection)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return f"Pkcs11Component(uri={str(self._uri)!r}{state})"

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def open_uri(
    uri: str,
    *,
    passphrase: str | None = None,
    pin: str | None = None,
    create: bool = False,
    **options: Any,
) -> Pkcs11Component:
    """Open a ``pkcs11:`` URI; ``passphrase`` and ``create`` do not apply to tokens."""
    del passphrase, create
    return Pkcs11Component(uri, pin=pin, **options)
