"""``soft:`` — the software Secure Component: credentials in a file encrypted at rest.

**Software, not secure hardware.** Keys live in process memory while the component is open;
the file protects them at rest only. It is the embedded default for development, tests and
``lwm2m demo``; :meth:`SoftComponent.info` reports ``type=SOFTWARE, secure_hardware=False`` and
the CLI says so wherever it shows the component. Use ``pkcs11:`` for keys that must never be
in ordinary memory (LwM2M-SCS-4).

File format (all integers big-endian)::

    magic "LWM2MSC\\x01" | uint16 header length | header (CBOR map) | checksum | ciphertext

- The header holds the key-derivation parameters — ``{"kdf": "scrypt", "n": log2 N, "r", "p",
  "salt"}`` for a passphrase (RFC 7914), or ``{"kdf": "hkdf"}`` with a salt for a raw 256-bit
  key (HKDF-SHA256, RFC 5869) — a 16-byte passphrase check value and the 12-byte GCM nonce.
- 64 bytes are derived: the AES-256-GCM key (NIST SP 800-38D) and a check key; ``check =
  HMAC-SHA256(check key, label)[:16]`` tells a wrong passphrase (:class:`PinIncorrect`) from a
  corrupted file (GCM tag failure: :class:`StorageCorrupted`). An unkeyed checksum
  (SHA-256, 8 bytes) follows the header so that a damaged header is reported as such, and the
  whole prefix is the GCM associated data, so it cannot be altered undetected either.
- The plaintext is CBOR: ``{"v": 1, "id": uuid, "creds": {label: entry}, "inst": {oid: {iid:
  bytes}}}`` with entries ``["key", d]`` (P-256 private scalar), ``["psk", identity,
  premaster]`` (the RFC 4279 §2 premaster form, which the TLS 1.2 PRF of RFC 5246 §5 uses
  directly), ``["data", bytes]`` and ``["oscore", master secret, master salt]`` (an OSCORE
  Master Secret: HKDF SHA-256 or SHA-512 in software, never returned by ``get_secret``).

Writes are atomic (a new file in the same folder, mode 0600, fsync, ``os.replace``, fsync of the
folder) and serialised between processes by ``flock`` on ``PATH.lock``; a file changed by
another process is re-read before it is modified. A file that fails to decrypt or parse is
never overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import platform
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import cbor2
import cryptography
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from lwm2m.secure.hkdf import check_master_secret, check_request, software_hkdf
from lwm2m.secure.interfaces import (
    AuthenticationError,
    Capability,
    ComponentClosed,
    ComponentInfo,
    ComponentNotFound,
    ComponentType,
    ComponentUnavailable,
    CredentialInfo,
    CredentialKind,
    DloaReference,
    Identifier,
    KeyExists,
    KeyNotFound,
    OperationNotSupported,
    PinIncorrect,
    PinRequired,
    StorageCorrupted,
    check_instance_ids,
    check_label,
    check_p256,
    default_psk_label,
    psk_premaster,
)
from lwm2m.secure.uri import SoftUri

__all__ = ["SoftComponent", "SoftKeyHandle", "SoftOscoreSecretHandle", "SoftPskHandle", "open_uri"]

MAGIC = b"LWM2MSC\x01"
_CHECK_LABEL = b"lwm2m soft secure component: passphrase check"
_HKDF_INFO = b"lwm2m soft secure component v1"
_MASTER_SECRET_LENGTH = 48  # RFC 5246 §8.1
DEFAULT_SCRYPT_LOG2_N = 15
"""scrypt cost N = 2**15, r = 8, p = 1: about 32 MiB and 0.1 s per open on a 2020s CPU."""
_HEADER_SUM_LENGTH = 8
_SCRYPT_R = 8
_SCRYPT_P = 1
_CAPABILITIES = (
    Capability.PSK
    | Capability.SIGN
    | Capability.ECDH
    | Capability.KEY_GENERATION
    | Capability.KEY_IMPORT
    | Capability.INSTANCE_STORE
    | Capability.SECRET_DATA
    | Capability.OSCORE
)


def tls12_prf(secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """``P_SHA256(secret, label + seed)`` truncated to ``length`` (RFC 5246 §5).

    >>> len(tls12_prf(b"k", b"master secret", b"s", 48))
    48
    """
    label_seed = label + seed
    out = bytearray()
    a = label_seed
    while len(out) < length:
        a = hmac.digest(secret, a, "sha256")
        out += hmac.digest(secret, a + label_seed, "sha256")
    return bytes(out[:length])


# --- in-memory state ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _KeyEntry:
    private_key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class _PskEntry:
    identity: bytes
    premaster: bytes


@dataclass(frozen=True, slots=True)
class _DataEntry:
    data: bytes


@dataclass(frozen=True, slots=True)
class _OscoreEntry:
    secret: bytes = field(repr=False)
    salt: bytes = b""


_Entry = _KeyEntry | _PskEntry | _DataEntry | _OscoreEntry
#: What each entry is called in messages.
_NAME = {
    _KeyEntry: CredentialKind.KEY_PAIR.value,
    _PskEntry: CredentialKind.PSK.value,
    _DataEntry: CredentialKind.SECRET_DATA.value,
    _OscoreEntry: "stored OSCORE Master Secret",
}


@dataclass(slots=True)
class _State:
    id: str
    creds: dict[str, _Entry]
    instances: dict[tuple[int, int], bytes]

    def copy(self) -> _State:
        return _State(self.id, dict(self.creds), dict(self.instances))


@dataclass(frozen=True, slots=True)
class _Keys:
    """Derived from the passphrase (or raw key) and the salt; fixed for the file's life."""

    header: dict[str, Any]
    aead: AESGCM
    check: bytes


# --- handles -----------------------------------------------------------------------------------


class SoftPskHandle:
    """A PSK of a :class:`SoftComponent` (its premaster form is in process memory)."""

    __slots__ = ("_component", "_entry", "_label")

    key_log_permitted = True

    def __init__(self, component: SoftComponent, label: str, entry: _PskEntry) -> None:
        self._component = component
        self._label = label
        self._entry = entry

    @property
    def label(self) -> str:
        return self._label

    @property
    def identity(self) -> bytes:
        return self._entry.identity

    def derive_master_secret(self, label: bytes, seed: bytes) -> bytes:
        self._component._check_entry(self._label, self._entry)
        return tls12_prf(self._entry.premaster, label, seed, _MASTER_SECRET_LENGTH)

    def __repr__(self) -> str:
        return f"SoftPskHandle(label={self._label!r}, identity={self._entry.identity!r})"


class SoftKeyHandle:
    """A P-256 key pair of a :class:`SoftComponent` (the private key is in process memory)."""

    __slots__ = ("_component", "_entry", "_label")

    key_log_permitted = True

    def __init__(self, component: SoftComponent, label: str, entry: _KeyEntry) -> None:
        self._component = component
        self._label = label
        self._entry = entry

    @property
    def label(self) -> str:
        return self._label

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._entry.private_key.public_key()

    def sign(self, data: bytes) -> bytes:
        self._component._check_entry(self._label, self._entry)
        return self._entry.private_key.sign(bytes(data), ec.ECDSA(hashes.SHA256()))

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        self._component._check_entry(self._label, self._entry)
        check_p256(peer_public_key)
        return self._entry.private_key.exchange(ec.ECDH(), peer_public_key)

    def __repr__(self) -> str:
        return f"SoftKeyHandle(label={self._label!r}, public_sha256={_fingerprint(self)})"


class SoftOscoreSecretHandle:
    """An OSCORE Master Secret of a :class:`SoftComponent` (in process memory): HKDF SHA-256
    or SHA-512 in software, with the Master Salt it was imported with."""

    __slots__ = ("_component", "_entry", "_label")

    def __init__(self, component: SoftComponent, label: str, entry: _OscoreEntry) -> None:
        self._component = component
        self._label = label
        self._entry = entry

    @property
    def label(self) -> str:
        return self._label

    @property
    def master_salt(self) -> bytes:
        return self._entry.salt

    def hkdf(self, algorithm: int, salt: bytes, info: bytes, length: int) -> bytes:
        self._component._check_entry(self._label, self._entry)
        check_request(self._label, self._entry.salt, algorithm, salt, length)
        return software_hkdf(self._entry.secret, algorithm, self._entry.salt, info, length)

    def __repr__(self) -> str:
        return f"SoftOscoreSecretHandle(label={self._label!r}, salt_length={len(self._entry.salt)})"


def _fingerprint(handle: SoftKeyHandle) -> str:
    spki = handle.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()[:16]


# --- the component -----------------------------------------------------------------------------


class SoftComponent:
    """A software Secure Component kept in one encrypted file (see the module docstring).

    :param path: the file.
    :param passphrase: protects the file (scrypt); or give ``key``.
    :param key: a raw 256-bit key (HKDF), e.g. injected by a secrets manager.
    :param create: create the file if it does not exist.
    :param scrypt_log2_n: scrypt cost for a *new* file (10..22); existing files record theirs.
    :param dloa: DLOA references to report in :meth:`info` (a software component has none
        unless configured).
    :raises PinRequired: neither ``passphrase`` nor ``key`` was given.
    :raises ComponentNotFound: the file does not exist and ``create`` is False.
    :raises PinIncorrect: wrong passphrase or key.
    :raises StorageCorrupted: the file is damaged (it is left untouched).
    """

    is_blocking = False
    capabilities = _CAPABILITIES

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        passphrase: str | None = None,
        key: bytes | None = None,
        create: bool = False,
        scrypt_log2_n: int = DEFAULT_SCRYPT_LOG2_N,
        dloa: Sequence[DloaReference] = (),
    ) -> None:
        self._path = Path(path)
        self._lock_path = self._path.with_name(self._path.name + ".lock")
        self._lock = threading.RLock()
        self._dloa = tuple(dloa)
        self._closed = False
        if (passphrase is None) == (key is None):
            if passphrase is None:
                raise PinRequired(
                    f"soft Secure Component {str(self._path)!r} needs a passphrase: add "
                    "?passphrase-env=VAR (or ?key-env=VAR) to the URI"
                )
            raise ValueError("give a passphrase or a key, not both")
        if key is not None and len(key) != 32:
            raise AuthenticationError("a soft Secure Component key must be 32 bytes (256 bits)")
        if not 10 <= scrypt_log2_n <= 22:
            raise ValueError("scrypt_log2_n must be in 10..22")
        secret = passphrase.encode() if passphrase is not None else bytes(key or b"")
        self._kdf = "scrypt" if passphrase is not None else "hkdf"
        with self._file_lock():
            try:
                data = self._path.read_bytes()
            except FileNotFoundError:
                if not create:
                    raise ComponentNotFound(
                        f"no soft Secure Component at {str(self._path)!r} (create one with "
                        "`lwm2m sc keygen` or `lwm2m sc import-psk`)"
                    ) from None
                self._keys = self._new_keys(secret, scrypt_log2_n)
                self._state = _State(str(uuid.uuid4()), {}, {})
                self._write(self._state)
            except OSError as exc:
                raise ComponentUnavailable(
                    f"cannot read {str(self._path)!r}: {exc.strerror}"
                ) from None
            else:
                self._keys, self._state = self._load(data, secret)
                self._stamp = self._stat()

    # -- file format ----------------------------------------------------------------------------

    def _new_keys(self, secret: bytes, log2_n: int) -> _Keys:
        salt = os.urandom(16)
        header: dict[str, Any] = {"kdf": self._kdf, "salt": salt}
        if self._kdf == "scrypt":
            header.update(n=log2_n, r=_SCRYPT_R, p=_SCRYPT_P)
        return self._derive(header, secret)

    @staticmethod
    def _derive(header: dict[str, Any], secret: bytes) -> _Keys:
        if header["kdf"] == "scrypt":
            material = Scrypt(
                salt=header["salt"], length=64, n=2 ** header["n"], r=header["r"], p=header["p"]
            ).derive(secret)
        else:
            material = HKDF(hashes.SHA256(), 64, header["salt"], _HKDF_INFO).derive(secret)
        check = hmac.digest(material[32:], _CHECK_LABEL, "sha256")[:16]
        header = {**header, "check": check}
        return _Keys(header, AESGCM(material[:32]), check)

    def _split(self, data: bytes) -> tuple[dict[str, Any], bytes, bytes, bytes]:
        """``(header without nonce, nonce, associated data, ciphertext)`` of the file bytes."""
        where = str(self._path)
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 2:
            raise StorageCorrupted(f"{where!r} is not a soft Secure Component file")
        header_end = len(MAGIC) + 2 + int.from_bytes(data[len(MAGIC) : len(MAGIC) + 2], "big")
        aad_end = header_end + _HEADER_SUM_LENGTH
        if _header_sum(data[:header_end]) != data[header_end:aad_end]:
            raise StorageCorrupted(f"{where!r}: damaged header (checksum)")
        try:
            header = cbor2.loads(data[len(MAGIC) + 2 : header_end])
            _check_header(header)
        except (cbor2.CBORDecodeError, ValueError, TypeError, KeyError) as exc:
            raise StorageCorrupted(f"{where!r}: damaged header ({exc})") from None
        nonce = header.pop("nonce")
        return header, nonce, data[:aad_end], data[aad_end:]

    def _load(self, data: bytes, secret: bytes) -> tuple[_Keys, _State]:
        where = str(self._path)
        header, nonce, aad, ciphertext = self._split(data)
        if header["kdf"] != self._kdf:
            wants = "a passphrase" if header["kdf"] == "scrypt" else "a raw key (key-env)"
            raise PinIncorrect(f"soft Secure Component {where!r} is protected by {wants}")
        keys = self._derive({k: v for k, v in header.items() if k != "check"}, secret)
        if not hmac.compare_digest(keys.check, header["check"]):
            what = "passphrase" if self._kdf == "scrypt" else "key"
            raise PinIncorrect(f"wrong {what} for soft Secure Component {where!r}")
        return keys, self._decrypt(keys, nonce, aad, ciphertext)

    def _decrypt(self, keys: _Keys, nonce: bytes, aad: bytes, ciphertext: bytes) -> _State:
        where = str(self._path)
        try:
            plain = keys.aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise StorageCorrupted(
                f"{where!r} fails its integrity check (corrupted or modified); left untouched"
            ) from None
        try:
            return _decode_state(plain)
        except (cbor2.CBORDecodeError, ValueError, TypeError, KeyError) as exc:
            raise StorageCorrupted(f"{where!r}: damaged content ({exc})") from None

    def _encode(self, state: _State) -> bytes:
        nonce = os.urandom(12)
        header = cbor2.dumps({**self._keys.header, "nonce": nonce}, canonical=True)
        prefix = MAGIC + len(header).to_bytes(2, "big") + header
        aad = prefix + _header_sum(prefix)
        return aad + self._keys.aead.encrypt(nonce, _encode_state(state), aad)

    def _write(self, state: _State) -> None:
        data = self._encode(state)
        folder = self._path.parent
        tmp = folder / f".{self._path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self._path)
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ComponentUnavailable(
                f"cannot write {str(self._path)!r}: {exc.strerror or exc}"
            ) from None
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int]:
        st = os.stat(self._path)
        return st.st_ino, st.st_mtime_ns, st.st_size

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        with self._lock:
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:
                raise ComponentNotFound(f"folder of {str(self._path)!r} does not exist") from None
            except OSError as exc:
                raise ComponentUnavailable(
                    f"cannot lock {str(self._path)!r}: {exc.strerror}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the lock

    def _refresh(self) -> None:
        """Re-read the file if another process replaced it since we read or wrote it."""
        try:
            changed = self._stat() != self._stamp
        except FileNotFoundError:
            raise ComponentNotFound(f"{str(self._path)!r} was removed") from None
        if changed:
            self._keys, self._state = self._reread()
            self._stamp = self._stat()

    def _reread(self) -> tuple[_Keys, _State]:
        header, nonce, aad, ciphertext = self._split(self._path.read_bytes())
        # Same file lineage: the header (salt, kdf) must not change, so the keys still apply.
        if header != self._keys.header:
            raise StorageCorrupted(
                f"{str(self._path)!r} was replaced by a different component; reopen it"
            )
        return self._keys, self._decrypt(self._keys, nonce, aad, ciphertext)

    def _commit(self, change: Callable[[_State], None]) -> None:
        """Apply ``change`` to a copy of the state and write it; memory follows the file."""
        self._ensure_open()
        with self._file_lock():
            self._refresh()
            state = self._state.copy()
            change(state)
            self._write(state)
            self._state = state

    # -- helpers --------------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise ComponentClosed(f"soft Secure Component {str(self._path)!r} is closed")

    def _check_entry(self, label: str, entry: _Entry) -> None:
        self._ensure_open()
        if self._state.creds.get(label) is not entry:
            raise KeyNotFound(f"credential {label!r} was deleted or replaced")

    def _lookup(self, label: str, kind: type[_Entry]) -> _Entry:
        self._ensure_open()
        with self._lock:
            self._refresh()
        entry = self._state.creds.get(label)
        if not isinstance(entry, kind):
            raise KeyNotFound(f"no {_NAME[kind]} labelled {label!r}")
        return entry

    def _put(self, label: str, entry: _Entry, replace: bool) -> None:
        check_label(label)

        def change(state: _State) -> None:
            old = state.creds.get(label)
            if old is not None and not (replace and type(old) is type(entry)):
                raise KeyExists(f"a {_NAME[type(old)]} labelled {label!r} exists already")
            state.creds[label] = entry

        self._commit(change)

    # -- SecureComponent ------------------------------------------------------------------------

    def info(self) -> ComponentInfo:
        self._ensure_open()
        return ComponentInfo(
            type=ComponentType.SOFTWARE,
            secure_hardware=False,
            backend="soft",
            label=self._path.name,
            manufacturer="lwm2m project",
            model="soft (AES-256-GCM file)",
            serial_number=self._state.id,
            platform_version=(
                f"Python {platform.python_version()}, cryptography {cryptography.__version__}"
            ),
            firmware_version=_package_version(),
            identifiers=(Identifier("soft-id", self._state.id),),
            capabilities=self.capabilities,
            dloa=self._dloa,
        )

    def psk(self, label: str) -> SoftPskHandle:
        entry = self._lookup(label, _PskEntry)
        assert isinstance(entry, _PskEntry)
        return SoftPskHandle(self, label, entry)

    def lookup(self, identity: bytes) -> SoftPskHandle | None:
        self._ensure_open()
        with self._lock:
            self._refresh()
        for label, entry in sorted(self._state.creds.items()):
            if isinstance(entry, _PskEntry) and entry.identity == identity:
                return SoftPskHandle(self, label, entry)
        return None

    def import_psk(
        self, identity: bytes, psk: bytes, *, label: str | None = None, replace: bool = False
    ) -> SoftPskHandle:
        label = default_psk_label(identity) if label is None else label
        entry = _PskEntry(bytes(identity), psk_premaster(bytes(psk)))
        self._put(label, entry, replace)
        return SoftPskHandle(self, label, entry)

    def key(self, label: str) -> SoftKeyHandle:
        entry = self._lookup(label, _KeyEntry)
        assert isinstance(entry, _KeyEntry)
        return SoftKeyHandle(self, label, entry)

    def generate_key(self, label: str) -> SoftKeyHandle:
        entry = _KeyEntry(ec.generate_private_key(ec.SECP256R1()))
        self._put(label, entry, replace=False)
        return SoftKeyHandle(self, label, entry)

    def import_key(
        self, label: str, private_key: ec.EllipticCurvePrivateKey, *, replace: bool = False
    ) -> SoftKeyHandle:
        check_p256(private_key)
        entry = _KeyEntry(private_key)
        self._put(label, entry, replace)
        return SoftKeyHandle(self, label, entry)

    def put_secret(self, label: str, data: bytes, *, replace: bool = False) -> None:
        self._put(label, _DataEntry(bytes(data)), replace)

    def get_secret(self, label: str) -> bytes:
        self._ensure_open()
        with self._lock:
            self._refresh()
        if isinstance(self._state.creds.get(label), _OscoreEntry):
            raise OperationNotSupported(
                f"{label!r} is an OSCORE Master Secret: it is not read back (oscore_secret)"
            )
        entry = self._lookup(label, _DataEntry)
        assert isinstance(entry, _DataEntry)
        return entry.data

    def import_oscore_secret(
        self, label: str, master_secret: bytes, master_salt: bytes, *, replace: bool = False
    ) -> SoftOscoreSecretHandle:
        secret, salt = check_master_secret(master_secret, master_salt)
        entry = _OscoreEntry(secret, salt)
        self._put(label, entry, replace)
        return SoftOscoreSecretHandle(self, label, entry)

    def oscore_secret(self, label: str) -> SoftOscoreSecretHandle:
        entry = self._lookup(label, _OscoreEntry)
        assert isinstance(entry, _OscoreEntry)
        return SoftOscoreSecretHandle(self, label, entry)

    def credentials(self) -> list[CredentialInfo]:
        self._ensure_open()
        with self._lock:
            self._refresh()
        result = []
        for label, entry in sorted(self._state.creds.items()):
            match entry:
                case _KeyEntry(private_key=key):
                    result.append(
                        CredentialInfo(label, CredentialKind.KEY_PAIR, public_key=key.public_key())
                    )
                case _PskEntry(identity=identity):
                    result.append(CredentialInfo(label, CredentialKind.PSK, identity=identity))
                case _DataEntry(data=data):
                    result.append(CredentialInfo(label, CredentialKind.SECRET_DATA, size=len(data)))
                case _OscoreEntry(secret=secret):
                    result.append(
                        CredentialInfo(
                            label, CredentialKind.SECRET_DATA, size=len(secret), oscore=True
                        )
                    )
        return result

    def delete(self, label: str) -> bool:
        found: list[bool] = []

        def change(state: _State) -> None:
            found.append(state.creds.pop(label, None) is not None)

        self._commit(change)
        return found[0]

    def put_instance(self, object_id: int, instance_id: int, data: bytes) -> None:
        check_instance_ids(object_id, instance_id)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("a serialised instance is bytes")
        blob = bytes(data)

        def change(state: _State) -> None:
            state.instances[object_id, instance_id] = blob

        self._commit(change)

    def get_instance(self, object_id: int, instance_id: int) -> bytes | None:
        self._ensure_open()
        with self._lock:
            self._refresh()
        return self._state.instances.get((object_id, instance_id))

    def list_instances(self, object_id: int | None = None) -> list[tuple[int, int]]:
        self._ensure_open()
        with self._lock:
            self._refresh()
        return sorted(k for k in self._state.instances if object_id in (None, k[0]))

    def delete_instance(self, object_id: int, instance_id: int) -> bool:
        found: list[bool] = []

        def change(state: _State) -> None:
            found.append(state.instances.pop((object_id, instance_id), None) is not None)

        self._commit(change)
        return found[0]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._state = _State(self._state.id, {}, {})

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed or not hasattr(self, "_state"):
            return f"SoftComponent(path={str(self._path)!r}, closed)"
        return (
            f"SoftComponent(path={str(self._path)!r}, credentials={len(self._state.creds)}, "
            f"instances={len(self._state.instances)}, software-not-secure-hardware)"
        )


# --- (de)serialisation ---------------------------------------------------------------------------


def _header_sum(prefix: bytes) -> bytes:
    """Unkeyed checksum of the header: tells a damaged header from a wrong passphrase."""
    return hashlib.sha256(prefix).digest()[:_HEADER_SUM_LENGTH]


def _check_header(header: object) -> None:
    if not isinstance(header, dict):
        raise ValueError("header is not a map")
    kdf = header["kdf"]
    for name, length in (("salt", 16), ("check", 16), ("nonce", 12)):
        if not isinstance(header[name], bytes) or len(header[name]) != length:
            raise ValueError(f"bad {name}")
    if kdf == "scrypt":
        if not (10 <= header["n"] <= 22 and header["r"] == _SCRYPT_R and header["p"] == _SCRYPT_P):
            raise ValueError("unsupported scrypt parameters")
    elif kdf != "hkdf":
        raise ValueError(f"unknown kdf {kdf!r}")


def _encode_state(state: _State) -> bytes:
    creds: dict[str, list[Any]] = {}
    for label, entry in state.creds.items():
        match entry:
            case _KeyEntry(private_key=key):
                creds[label] = ["key", key.private_numbers().private_value.to_bytes(32, "big")]
            case _PskEntry(identity=identity, premaster=premaster):
                creds[label] = ["psk", identity, premaster]
            case _DataEntry(data=data):
                creds[label] = ["data", data]
            case _OscoreEntry(secret=secret, salt=salt):
                creds[label] = ["oscore", secret, salt]
    instances: dict[int, dict[int, bytes]] = {}
    for (oid, iid), blob in state.instances.items():
        instances.setdefault(oid, {})[iid] = blob
    encoded: bytes = cbor2.dumps({"v": 1, "id": state.id, "creds": creds, "inst": instances})
    return encoded


def _decode_state(plain: bytes) -> _State:
    doc = cbor2.loads(plain)
    if doc["v"] != 1 or not isinstance(doc["id"], str):
        raise ValueError("unknown content version")
    creds: dict[str, _Entry] = {}
    for label, item in doc["creds"].items():
        check_label(label)
        match item:
            case ["key", bytes(d)] if len(d) == 32:
                creds[label] = _KeyEntry(ec.derive_private_key(int.from_bytes(d), ec.SECP256R1()))
            case ["psk", bytes(identity), bytes(premaster)]:
                creds[label] = _PskEntry(identity, premaster)
            case ["data", bytes(data)]:
                creds[label] = _DataEntry(data)
            case ["oscore", bytes(secret), bytes(salt)] if secret:
                creds[label] = _OscoreEntry(secret, salt)
            case _:
                raise ValueError(f"bad credential entry {label!r}")
    instances: dict[tuple[int, int], bytes] = {}
    for oid, items in doc["inst"].items():
        for iid, blob in items.items():
            check_instance_ids(oid, iid)
            if not isinstance(blob, bytes):
                raise ValueError("bad instance entry")
            instances[oid, iid] = blob
    return _State(doc["id"], creds, instances)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"lwm2m {version('lwm2m')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "lwm2m (source tree)"


# --- URI entry point ---------------------------------------------------------------------------


def open_uri(
    uri: str,
    *,
    passphrase: str | None = None,
    pin: str | None = None,
    create: bool = False,
    **options: Any,
) -> SoftComponent:
    """Open a ``soft:`` URI (see :class:`lwm2m.secure.uri.SoftUri`); ``pin`` is ignored.

    The passphrase comes from ``passphrase``, else the ``passphrase-env`` variable; a raw key
    from the ``key-env`` variable (64 hex digits).
    """
    del pin
    parsed = SoftUri.parse(uri)
    key: bytes | None = None
    if passphrase is None and parsed.passphrase_env is not None:
        passphrase = os.environ.get(parsed.passphrase_env)
        if passphrase is None:
            raise PinRequired(f"environment variable {parsed.passphrase_env} is not set")
    elif passphrase is None and parsed.key_env is not None:
        text = os.environ.get(parsed.key_env)
        if text is None:
            raise PinRequired(f"environment variable {parsed.key_env} is not set")
        try:
            key = bytes.fromhex(text.strip())
        except ValueError:
            key = b""
        if len(key) != 32:
            raise AuthenticationError(
                f"environment variable {parsed.key_env} must hold 64 hex digits (a 256-bit key)"
            )
    return SoftComponent(parsed.path, passphrase=passphrase, key=key, create=create, **options)
