"""``pcsc:`` — a Secure Component on a UICC / eUICC / eSE reached through PC/SC, its keys and
secrets held by a GSMA IoT SAFE (IoT.05) applet (ARCHITECTURE decision 4).

**Operations stay on the card.** :class:`PcscKeyHandle` signs with COMPUTE SIGNATURE in
pad-and-sign mode (the host hashes, the card signs the SHA-256 digest) and agrees keys with
PUT PUBLIC KEY + COMPUTE DH; :class:`PcscPskHandle` derives TLS 1.2 / DTLS 1.2 master secrets
with COMPUTE PRF over the secret container holding the PSK (the RFC 4279 premaster is formed on
the card). Private keys and PSKs are never read back: the applet has no command for it, hence
:attr:`Capability.NON_EXTRACTABLE`. :class:`PcscOscoreSecretHandle` derives OSCORE keys
(RFC 8613 §3.2.1) with COMPUTE HKDF over the secret container holding the Master Secret.

**COMPUTE HKDF — what was checked and chosen.** Orange's IoT-SAFE-APDU-library (its
``src/iot_safe_internal.h`` and ``src/iot_safe.h``, the source of the command set of
:mod:`~lwm2m.secure.pcsc.iotsafe`, tested against two vendors' applets) confirms INS ``4A``
COMPUTE HKDF, tag ``D5`` salt, key-derivation attribute ``02`` HKDF (RFC 5869) and the secret
container references ``86``/``76``; it implements no function sending the command, so the
``D6`` info tag, ``D3`` (the PRF's output length tag) for the length and the raw output in the
response are this project's reading, marked [U] in :mod:`~lwm2m.secure.pcsc.iotsafe`. Thales'
iot-safe-middleware has no HKDF, and IoT.05's text was not at hand. The PRK + HMAC construction
the PKCS#11 backend uses is not open here: IoT.05 has no HMAC command (COMPUTE SIGNATURE is
RSA/ECDSA over private keys), and COMPUTE PRF keys the TLS PRF with a premaster, not the raw
secret. So the Master Secret goes into a secret container (VSE administrative extension) and
the card runs the whole HKDF, SHA-256 (IoT SAFE's HKDF has no hash parameter); a card whose
applet information lacks HKDF (``94`` bit ``02``) lacks :attr:`Capability.OSCORE`. Check the
``D6``/``D3`` reading against IoT.05 before using a real card's COMPUTE HKDF.

**Credentials on the card.** Two kinds of containers are used:

* *Issuer containers*, personalised by the card issuer (IoT SAFE's model): a private key
  container is listed as a key pair once it holds a key (:meth:`PcscComponent.generate_key`
  with its label fills an empty one — plain IoT.05), a secret container as a PSK whose identity
  is the content of the file container with the same label (else the label itself). Their
  label is the container's label (or ``iot-safe-id:HEX``). They cannot be replaced or deleted
  (:class:`~lwm2m.secure.interfaces.ObjectLocked`).
* *Managed containers* (id ``4C57`` + 6 random bytes), created, written and deleted through the
  VSE administrative extension (CREATE / PUT / DELETE OBJECT, :mod:`~lwm2m.secure.pcsc.iotsafe`
  — not part of IoT.05; a card without it lacks ``KEY_IMPORT``, ``SECRET_DATA`` and
  ``INSTANCE_STORE``): imported and generated key pairs, PSKs (a secret container), secret data
  and sensitive object instances (file containers holding exactly the bytes the other backends
  store: the CBOR instance blob of :mod:`lwm2m.secure.store`).

A *directory* (:mod:`~lwm2m.secure.pcsc.directory`: the file container ``4C57 0000 0000
0000``, an 8-byte change tag and CBOR) maps the contract's labels (1..128 characters; IoT SAFE
labels have at most 60 bytes) to managed containers; it holds no secret. Updates keep the old
value until the new one is complete: a PUT OBJECT is committed by the card at its last block;
a replaced key or PSK goes to a new container, the directory is rewritten, then the old
container is deleted (a stale handle then gets :class:`~lwm2m.secure.interfaces.KeyNotFound`).
Containers no directory entry refers to (an interrupted update) are deleted before a session
creates its first container.

**Sessions** (:mod:`~lwm2m.secure.pcsc.session`). Components opened on the same card and
applet within a process share one connection, one logical channel (MANAGE CHANNEL + SELECT the
applet, optionally SCP03 level 33 on it) and one lock. The directory is cached per session and
used again only while the card's
change tag is the one it was read with (one short READ FILE), so other sessions and processes
see each other's changes; a process may use the card's credentials while another changes
them, but two processes should not change them at the same moment (no lock spans processes:
the later directory write would win).

**Errors.** Every pyscard/pcscd failure is a :class:`~lwm2m.secure.pcsc.errors.TransportError`
(a :class:`~lwm2m.secure.interfaces.ComponentUnavailable`); a pulled or reset card is
:class:`~lwm2m.secure.pcsc.errors.CardRemoved` and ends the session (open the component again);
status words map onto the contract's classes (:mod:`lwm2m.secure.pcsc.errors`) with messages
naming the command and the credential, never data. PIN1 (``pin-source``/``pin-value`` or
``pin=``) is verified with VERIFY PIN when the component opens: a wrong PIN is
:class:`~lwm2m.secure.interfaces.PinIncorrect` (with the tries left), a blocked one
:class:`~lwm2m.secure.interfaces.PinLocked`.

URI: see :mod:`lwm2m.secure.pcsc.uri` — ``pcsc:reader=Virtual%20PCD%2000%2000``,
``pcsc:?atr=3B9F*&pin-source=env:SIM_PIN&scp03-key-env=SCP03_KEYS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lwm2m.model.registry import ModelRegistry
from lwm2m.secure.admin import AdminScriptRefused, TargetNotSelectable, check_script
from lwm2m.secure.hkdf import HKDF_SHA_256, check_master_secret, check_request
from lwm2m.secure.interfaces import (
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
    KeySizeNotSupported,
    ObjectLocked,
    OperationNotSupported,
    StorageCorrupted,
    check_instance_ids,
    check_label,
    check_p256,
    default_psk_label,
)
from lwm2m.secure.pcsc import iotsafe
from lwm2m.secure.pcsc.apdu import CommandApdu
from lwm2m.secure.pcsc.ber import decode_ber_tlvs, find_tlv
from lwm2m.secure.pcsc.bootstrap_file import Layout
from lwm2m.secure.pcsc.card import (
    CardIdentification,
    SmartcardBootstrap,
    read_identification,
    read_smartcard_bootstrap,
)
from lwm2m.secure.pcsc.directory import (
    DIRECTORY_ID,
    MANAGED_PREFIX,
    PEER_ID,
    TAG_LENGTH,
    Directory,
    Entry,
    IssuerContainer,
    is_managed,
    oscore_extra,
)
from lwm2m.secure.pcsc.errors import (
    ApduError,
    CardRemoved,
    IotSafeError,
    ObjectNotFound,
    PcscError,
    StatusWordError,
)
from lwm2m.secure.pcsc.iotsafe import (
    AppletInfo,
    CryptoFunction,
    KeyDerivation,
    ObjectKind,
    ObjectRef,
)
from lwm2m.secure.pcsc.iso7816 import Transmit, select_aid
from lwm2m.secure.pcsc.pkcs15 import PKCS15_AID
from lwm2m.secure.pcsc.scp03 import StaticKeys
from lwm2m.secure.pcsc.session import CardSession, forget, join, register, release
from lwm2m.secure.pcsc.uri import PcscUri, parse_pcsc_uri
from lwm2m.secure.ram import CommandScript, ResponseScript, run_script

__all__ = [
    "DIRECTORY_ID",
    "PEER_ID",
    "KeyNotFound",
    "PcscComponent",
    "PcscKeyHandle",
    "PcscOscoreSecretHandle",
    "PcscPskHandle",
    "open_uri",
    "parse_pcsc_uri",
]

T = TypeVar("T")

_MASTER_SECRET_LENGTH = 48
_DIRECTORY = ObjectRef(id=DIRECTORY_ID)
_CHUNK = 0xE0  # READ FILE / PUT OBJECT block: fits short APDUs even with SCP03 padding + MAC
_MAX_PSK = 255
#: CPLC fields reported as identifiers of their own (what identifies the chip and its OS).
_CPLC_KEY_FIELDS = (
    ("ic-fabricator", "ic_fabricator"),
    ("ic-type", "ic_type"),
    ("os-id", "os_id"),
    ("os-release-date", "os_release_date"),
    ("os-release-level", "os_release_level"),
    ("ic-serial", "ic_serial_number"),
    ("icc-manufacturer", "icc_manufacturer"),
)


def _point(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _public_key(point: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise IotSafeError(
            "public key is not a P-256 point", offset=0, field="public key data"
        ) from None


def _ref(ref: ObjectRef | str | bytes) -> ObjectRef:
    return ref if isinstance(ref, ObjectRef) else ObjectRef.by_label(ref)


# --- handles -----------------------------------------------------------------------------------


class PcscKeyHandle:
    """A P-256 key pair in an IoT SAFE private key container; the private key stays there."""

    __slots__ = ("_component", "_label", "_public", "ref")

    key_log_permitted = False

    def __init__(
        self,
        component: PcscComponent,
        ref: ObjectRef,
        *,
        label: str | None = None,
        public: ec.EllipticCurvePublicKey | None = None,
    ) -> None:
        self._component = component
        self.ref = ref
        self._label = label if label is not None else _ref_label(ref)
        self._public = public

    @property
    def label(self) -> str:
        return self._label

    def public_key(self) -> ec.EllipticCurvePublicKey:
        if self._public is None:
            data = self._component._call(
                lambda ch: iotsafe.read_public_key(self.ref, channel=ch),
                f"IoT SAFE READ PUBLIC KEY {self._label!r}",
            )
            self._public = _public_key(iotsafe.parse_public_key(data))
        return self._public

    def sign(self, data: bytes, *, prehashed: bool = False) -> bytes:
        """DER ECDSA over SHA-256(``data``) (or over the given 32-byte digest): the host
        hashes, the card signs (COMPUTE SIGNATURE, pad-and-sign mode)."""
        digest = bytes(data) if prehashed else hashlib.sha256(bytes(data)).digest()
        if len(digest) != 32:
            raise ValueError("a pre-hashed SHA-256 digest has 32 bytes")
        comp = self._component
        what = f"IoT SAFE COMPUTE SIGNATURE {self._label!r}"
        with comp._lock():
            try:
                comp._call(lambda ch: iotsafe.compute_signature_init(self.ref, channel=ch), what)
                raw = comp._call(
                    lambda ch: iotsafe.compute_signature_update(channel=ch, final_hash=digest),
                    what,
                )
            except ObjectNotFound:
                raise KeyNotFound(f"key pair {self._label!r} was deleted or replaced") from None
            except StatusWordError:
                with contextlib.suppress(PcscError):
                    comp._call(lambda ch: iotsafe.compute_signature_close(channel=ch), what)
                raise
        return iotsafe.parse_signature(raw)

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """ECDH (ECKA) with ``peer_public_key``: the x coordinate of the shared point, computed
        on the card (PUT PUBLIC KEY into the peer container, then COMPUTE DH)."""
        check_p256(peer_public_key)
        point = _point(peer_public_key)
        comp = self._component
        what = f"IoT SAFE COMPUTE DH {self._label!r}"
        with comp._lock():
            peer = comp._peer_container()
            comp._call(lambda ch: iotsafe.put_public_key_init(peer, channel=ch), what)
            comp._call(lambda ch: iotsafe.put_public_key_update(point, channel=ch), what)
            try:
                raw = comp._call(lambda ch: iotsafe.compute_dh(self.ref, peer, channel=ch), what)
            except ObjectNotFound:
                raise KeyNotFound(f"key pair {self._label!r} was deleted or replaced") from None
        return iotsafe.parse_secret(raw, 32)

    def __repr__(self) -> str:
        fingerprint = ""
        if self._public is not None:
            spki = self._public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            fingerprint = f", public_sha256={hashlib.sha256(spki).hexdigest()[:16]}"
        return f"PcscKeyHandle(label={self._label!r}, container={self.ref}{fingerprint})"


class PcscPskHandle:
    """A PSK in an IoT SAFE secret container: the PSK never leaves the card."""

    __slots__ = ("_component", "_identity", "_label", "ref")

    key_log_permitted = False

    def __init__(
        self,
        component: PcscComponent,
        ref: ObjectRef,
        identity: bytes,
        *,
        label: str | None = None,
    ) -> None:
        self._component = component
        self.ref = ref
        self._identity = bytes(identity)
        self._label = label if label is not None else _ref_label(ref)

    @property
    def label(self) -> str:
        return self._label

    @property
    def identity(self) -> bytes:
        return self._identity

    def derive_master_secret(
        self,
        label: bytes,
        seed: bytes,
        *,
        other_secret: bytes | None = None,
        length: int = _MASTER_SECRET_LENGTH,
    ) -> bytes:
        """``PRF(premaster, label, seed)[:length]`` on the card (COMPUTE PRF; RFC 5246 §5, §8.1
        with the RFC 4279 §2 premaster): ``label`` is ``b"master secret"`` or ``b"extended
        master secret"`` (RFC 7627 §4), ``seed`` the randoms or the session hash;
        ``other_secret`` the ECDHE share of ECDHE_PSK (RFC 5489)."""
        label_seed = bytes(label) + bytes(seed)
        try:
            raw = self._component._call(
                lambda ch: iotsafe.compute_prf(
                    self.ref, label_seed, length, channel=ch, other_secret=other_secret
                ),
                f"IoT SAFE COMPUTE PRF {self._label!r}",
            )
        except ObjectNotFound:
            raise KeyNotFound(f"PSK {self._label!r} was deleted or replaced") from None
        return iotsafe.parse_secret(raw, length)

    def __repr__(self) -> str:
        return f"PcscPskHandle(label={self._label!r}, identity={self._identity!r})"


class PcscOscoreSecretHandle:
    """An OSCORE Master Secret in an IoT SAFE secret container: COMPUTE HKDF on the card
    (HKDF SHA-256), with the Master Salt it was imported with only."""

    __slots__ = ("_component", "_label", "_salt", "ref")

    def __init__(
        self, component: PcscComponent, ref: ObjectRef, master_salt: bytes, *, label: str
    ) -> None:
        self._component = component
        self.ref = ref
        self._salt = bytes(master_salt)
        self._label = label

    @property
    def label(self) -> str:
        return self._label

    @property
    def master_salt(self) -> bytes:
        return self._salt

    def hkdf(self, algorithm: int, salt: bytes, info: bytes, length: int) -> bytes:
        """``HKDF(master salt, master secret, info, length)`` on the card (COMPUTE HKDF)."""
        check_request(self._label, self._salt, algorithm, salt, length, (HKDF_SHA_256,))
        try:
            raw = self._component._call(
                lambda ch: iotsafe.compute_hkdf(
                    self.ref, self._salt, bytes(info), length, channel=ch
                ),
                f"IoT SAFE COMPUTE HKDF {self._label!r}",
            )
        except ObjectNotFound:
            raise KeyNotFound(
                f"OSCORE Master Secret {self._label!r} was deleted or replaced"
            ) from None
        return iotsafe.parse_secret(raw, length)

    def __repr__(self) -> str:
        return f"PcscOscoreSecretHandle(label={self._label!r}, salt_length={len(self._salt)})"


def _describe(entry: Entry) -> str:
    return "stored OSCORE Master Secret" if entry.oscore else entry.kind.value


def _issuer_ref(ident: bytes | None, label: bytes | None) -> ObjectRef:
    """An issuer container is addressed by its label when it has one (as IoT SAFE hosts do)."""
    return ObjectRef(label=label) if label is not None else ObjectRef(id=ident)


def _ref_label(ref: ObjectRef) -> str:
    if ref.label is not None:
        return ref.label.decode("utf-8", "replace")
    assert ref.id is not None
    return "iot-safe-id:" + ref.id.hex()


# --- the component -----------------------------------------------------------------------------


class PcscComponent:
    """The ``pcsc:`` Secure Component (see the module docstring).

    Open one with :func:`lwm2m.secure.open_component` (``pcsc:…``) or :meth:`open`; or build
    one over any ``Transmit`` callable (bytes in, bytes out — an in-memory card, a test double).

    :param transmit: sends a command APDU, returns the response APDU.
    :param atr: the card's ATR (for :meth:`info`).
    :param aid: the IoT SAFE applet's AID.
    :param pin: PIN1, verified once (VERIFY PIN) when the component opens.
    :param scp03_keys: run the applet channel under SCP03 (level 33) with these static keys.
    :param component_type: what the card is (UICC, eUICC, eSE).
    :param peer_container: the public key container for COMPUTE DH (default: the card's
        ``peer`` container, else a managed one).
    :param dloa: DLOA references reported by :meth:`info`.
    :param on_close: called once when the last user of the connection closes.
    :raises ComponentNotFound: the card has no IoT SAFE applet with that AID.
    :raises PinIncorrect, PinLocked, AuthenticationError: VERIFY PIN or SCP03 failed.
    """

    is_blocking = True

    def __init__(
        self,
        transmit: Transmit | None = None,
        *,
        atr: bytes = b"",
        aid: bytes = iotsafe.IOT_SAFE_AID,
        pin: str | None = None,
        scp03_keys: StaticKeys | None = None,
        component_type: ComponentType = ComponentType.UICC,
        peer_container: ObjectRef | str | None = None,
        dloa: Sequence[DloaReference] = (),
        on_close: Callable[[], None] | None = None,
        _session: CardSession | None = None,
    ) -> None:
        self._closed = True
        if _session is None:
            if transmit is None:
                raise TypeError("give a transmit callable (or use open_uri)")
            _session = CardSession(
                transmit, atr=atr, aid=aid, scp03_keys=scp03_keys, release=on_close
            )
        self._session = _session
        self._closed = False
        self._type = component_type
        self._peer_option = _ref(peer_container) if peer_container is not None else None
        self._dloa = tuple(dloa)
        self._admin: tuple[int, bytes] | None = None  # the admin session: channel, target AID
        try:
            if pin is not None:
                _session.login(pin)
        except BaseException:
            self.close()
            raise
        applet = _session.applet or AppletInfo()
        capabilities = Capability.NON_EXTRACTABLE if _session.applet else Capability.NONE
        if applet.supports(CryptoFunction.SIGNATURE):
            capabilities |= Capability.SIGN
        if applet.supports(CryptoFunction.KEY_AGREEMENT):
            capabilities |= Capability.ECDH
        if applet.supports(CryptoFunction.KEY_GENERATION):
            capabilities |= Capability.KEY_GENERATION
        if applet.supports(CryptoFunction.KEY_DERIVATION) and applet.key_derivations & 0x01:
            capabilities |= Capability.PSK
        capabilities |= Capability.REMOTE_ADMIN  # any card: the security domains are GP's
        if applet.admin_extension:
            capabilities |= Capability.KEY_IMPORT | Capability.SECRET_DATA
            capabilities |= Capability.INSTANCE_STORE
            if applet.supports(CryptoFunction.KEY_DERIVATION) and (
                applet.key_derivations & KeyDerivation.HKDF
            ):
                capabilities |= Capability.OSCORE
        self.capabilities = capabilities

    @classmethod
    def open(
        cls,
        uri: str = "pcsc:",
        *,
        timeout: float = 5.0,
        require_applet: bool = False,
        **options: Any,
    ) -> PcscComponent:
        """Connect through pcscd to the card the URI names (waiting up to ``timeout`` s) — for
        card tools: a card without the IoT SAFE applet still serves :meth:`read_bootstrap` and
        :meth:`identification` (``require_applet=False``)."""
        return open_uri(uri, timeout=timeout, require_applet=require_applet, **options)

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self._session.atr

    @property
    def aid(self) -> bytes:
        return self._session.aid

    @property
    def applet_info(self) -> AppletInfo | None:
        """The IoT SAFE applet information (GET DATA P1 00) read when the session opened; None
        for a card without the applet (opened with ``require_applet=False``)."""
        return self._session.applet

    def _ensure_open(self) -> None:
        if self._closed:
            raise ComponentClosed("the pcsc Secure Component is closed")

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self._ensure_open()
        with self._session.lock:
            yield

    def _call(self, build: Callable[[int], CommandApdu], name: str) -> bytes:
        self._ensure_open()
        return self._session.call(build, name)

    def _require(self, capability: Capability, what: str) -> None:
        if capability not in self.capabilities:
            raise OperationNotSupported(
                f"{what}: the card's IoT SAFE applet cannot (no {capability.name} capability; "
                "importing credentials and storing data need the VSE administrative extension)"
            )

    # -- managed containers ---------------------------------------------------------------------

    def _read_file(self, ref: ObjectRef, what: str) -> bytes:
        """A file container's content, read in blocks until a short one."""
        out = bytearray()
        while True:
            offset = len(out)
            try:
                command = iotsafe.read_file(ref, offset, _CHUNK, channel=0)
                data = self._call(command.on_channel, f"IoT SAFE READ FILE {what}")
            except StatusWordError as exc:
                if exc.sw == 0x6B00 and offset:
                    break
                raise
            out += data
            if len(data) < _CHUNK:
                return bytes(out)
        return bytes(out)

    def _put(self, kind: ObjectKind, ident: bytes, content: bytes, what: str) -> None:
        for command in iotsafe.put_object(kind, ObjectRef(id=ident), content, channel=0):
            self._call(command.on_channel, f"PUT OBJECT {what}")

    def _create(self, kind: ObjectKind, what: str, ident: bytes | None = None) -> bytes:
        session = self._session
        if not session.collected:  # before this session makes containers of its own
            session.collected = True
            self._collect_orphans(self._directory())
        for _attempt in range(3):
            new = ident or MANAGED_PREFIX + os.urandom(6)
            if new in (DIRECTORY_ID, PEER_ID) and ident is None:
                continue
            try:
                command = iotsafe.create_object(kind, new, channel=0)
                self._call(command.on_channel, f"CREATE OBJECT {what}")
            except StatusWordError as exc:
                if exc.sw != 0x6A89:
                    raise
                if ident is not None:
                    return ident  # a fixed container (directory, peer) another session made
                continue  # the random id is taken: draw again
            return new
        raise StorageCorrupted(f"CREATE OBJECT {what}: no free container id")  # pragma: no cover

    def _delete_container(self, kind: ObjectKind, ident: bytes, what: str) -> None:
        with contextlib.suppress(ObjectNotFound):
            self._call(
                lambda ch: iotsafe.delete_object(kind, ObjectRef(id=ident), channel=ch),
                f"DELETE OBJECT {what}",
            )

    def _discard(self, kind: ObjectKind, ident: bytes, what: str) -> None:
        """Best-effort removal of a container nothing refers to (garbage otherwise)."""
        with contextlib.suppress(StatusWordError):
            self._delete_container(kind, ident, what)

    def _store(self, kind: ObjectKind, content: bytes, what: str) -> bytes:
        """A new managed container holding ``content``; removed again if writing fails."""
        ident = self._create(kind, what)
        try:
            self._put(kind, ident, content, what)
        except StatusWordError:
            self._discard(kind, ident, what)
            raise
        return ident

    def _directory(self) -> Directory:
        """The directory: the session's copy while the card's change tag (its first 8 bytes,
        new at every write) is the same, else read again — another session or process may
        have changed it."""
        session = self._session
        cached = session.directory
        if cached is not None:
            command = iotsafe.read_file(_DIRECTORY, 0, TAG_LENGTH, channel=0)
            try:
                tag = self._call(command.on_channel, "IoT SAFE READ FILE directory")
            except ObjectNotFound:
                tag = b""
            if tag == cached.tag:
                return cached
        try:
            data = self._read_file(_DIRECTORY, "directory")
        except ObjectNotFound:
            session.directory, session.directory_exists = Directory(), False
        else:  # empty: created, but its first PUT OBJECT never completed
            session.directory = Directory.decode(data) if data else Directory()
            session.directory_exists = True
        return session.directory

    def _commit(self, change: Callable[[Directory], T]) -> T:
        """Apply ``change`` to a copy of the directory and write it to the card."""
        session = self._session
        updated = self._directory().copy()
        result = change(updated)
        updated.tag = os.urandom(TAG_LENGTH)
        if not session.directory_exists:
            self._create(ObjectKind.FILE, "directory", DIRECTORY_ID)
            session.directory_exists = True
        self._put(ObjectKind.FILE, DIRECTORY_ID, updated.encode(), "directory")
        session.directory = updated
        return result

    def _collect_orphans(self, directory: Directory) -> None:
        """Delete managed containers the directory does not refer to (left by an interrupted
        update); run once per session, before it creates containers itself."""
        objects = self.objects()
        referenced = directory.containers() | {DIRECTORY_ID, PEER_ID}
        infos: list[tuple[ObjectKind, bytes | None]] = [
            *((ObjectKind.PRIVATE_KEY, k.id) for k in objects.private_keys),
            *((ObjectKind.FILE, f.id) for f in objects.files),
            *((ObjectKind.SECRET, s.id) for s in objects.secrets),
        ]
        for kind, ident in infos:
            if ident is not None and is_managed(ident) and ident not in referenced:
                self._discard(kind, ident, "orphan")

    # -- issuer containers ----------------------------------------------------------------------

    def _issuer(self) -> dict[str, IssuerContainer]:
        session = self._session
        if session.issuer is not None:
            return session.issuer
        objects = self.objects()
        files = {f.label: f for f in objects.files if f.label is not None}
        found: dict[str, IssuerContainer] = {}
        for key in objects.private_keys:
            if not is_managed(key.id):
                ref = _issuer_ref(key.id, key.label)
                found.setdefault(
                    _ref_label(ref),
                    IssuerContainer(
                        _ref_label(ref), CredentialKind.KEY_PAIR, ref, key.state == 0x01
                    ),
                )
        for secret in objects.secrets:
            if is_managed(secret.id):
                continue
            ref = _issuer_ref(secret.id, secret.label)
            label = _ref_label(ref)
            identity = secret.label or secret.id or b""
            if secret.label is not None and secret.label in files:
                with contextlib.suppress(StatusWordError):
                    identity = self._read_file(ObjectRef(label=secret.label), repr(label))
            found.setdefault(label, IssuerContainer(label, CredentialKind.PSK, ref, True, identity))
        session.issuer = found
        return found

    def _issuer_credential(self, label: str) -> IssuerContainer | None:
        issuer = self._issuer().get(label)
        return issuer if issuer is not None and issuer.filled else None

    def _claim(
        self,
        directory: Directory,
        label: str,
        kind: CredentialKind,
        replace: bool,
        *,
        oscore: bool = False,
    ) -> Entry | None:
        """The entry ``label`` replaces (or None); KeyExists / ObjectLocked when it may not."""
        check_label(label)
        entry = directory.creds.get(label)
        if entry is not None:
            if replace and entry.kind is kind and entry.oscore is oscore:
                return entry
            raise KeyExists(f"a {_describe(entry)} labelled {label!r} exists already")
        issuer = self._issuer_credential(label)
        if issuer is not None:
            if replace and issuer.kind is kind:
                raise ObjectLocked(f"{label!r} is an issuer container of the card: not replaced")
            raise KeyExists(f"a {issuer.kind.value} labelled {label!r} exists already")
        return None

    def _peer_container(self) -> ObjectRef:
        session = self._session
        if self._peer_option is not None:
            return self._peer_option
        if session.peer is None:
            objects = self.objects()
            ids = {k.id for k in objects.public_keys}
            if PEER_ID in ids:
                session.peer = ObjectRef(id=PEER_ID)
            elif any(k.label == b"peer" for k in objects.public_keys):
                session.peer = ObjectRef(label=b"peer")
            elif Capability.KEY_IMPORT in self.capabilities:
                self._create(ObjectKind.PUBLIC_KEY, "peer key", PEER_ID)
                session.peer = ObjectRef(id=PEER_ID)
            else:
                raise OperationNotSupported(
                    "ECDH: the card has no public key container for the peer's key: add "
                    "peer=LABEL to the URI"
                )
        return session.peer

    # -- SecureComponent: identification ---------------------------------------------------------

    def identification(self, *, refresh: bool = False) -> CardIdentification:
        """The card's identification data (SCS-2) as read from it, once per session."""
        with self._lock():
            session = self._session
            if session.identification is None or refresh:
                session.identification = session._guard(
                    "read the card identification",
                    lambda: read_identification(session.transmit, atr=session.atr),
                )
            return session.identification

    def info(self) -> ComponentInfo:
        """Identification data (LwM2M-SCS-2) read from the card: ICCID, CPLC (and its key
        fields), GlobalPlatform card data, IIN/CIN, the IoT SAFE applet and its version."""
        ident = self.identification()
        applet = self._session.applet or AppletInfo()
        ids: list[Identifier] = []
        if ident.iccid:
            ids.append(Identifier("iccid", ident.iccid))
        cplc = ident.cplc
        if cplc is not None:
            fields = cplc.as_hex()
            ids.append(Identifier("cplc", cplc.encode().hex().upper()))
            ids.extend(Identifier(f"cplc-{name}", fields[key]) for name, key in _CPLC_KEY_FIELDS)
        if ident.iin is not None:
            ids.append(Identifier("iin", ident.iin.hex().upper()))
        if ident.cin is not None:
            ids.append(Identifier("cin", ident.cin.hex().upper()))
        applet_name = _text(applet.applet_id)
        iot_safe = f"IoT SAFE {applet_name} v{applet.version or 0}" if self._session.applet else ""
        if iot_safe:
            ids.append(Identifier("iot-safe-applet", f"{applet_name} v{applet.version or 0}"))
        if self._session.atr:
            ids.append(Identifier("atr", self._session.atr.hex().upper()))
        platform = ""
        if ident.card_data is not None:
            platform = f"GlobalPlatform {ident.card_data.gp_version or '?'}"
            platform += "".join(
                f", SCP{s:02X} i={i:02X}" for s, i in ident.card_data.secure_channels
            )
        serial = ident.iccid or (ident.cin.hex().upper() if ident.cin else "")
        if not serial and cplc is not None:
            serial = cplc.ic_serial_number.hex().upper()
        return ComponentInfo(
            type=self._type,
            secure_hardware=True,
            backend="pcsc",
            label=applet_name,
            manufacturer=f"ICC manufacturer {cplc.icc_manufacturer.hex().upper()}" if cplc else "",
            model=(
                f"IC {cplc.ic_fabricator.hex().upper()}:{cplc.ic_type.hex().upper()}"
                if cplc
                else ""
            ),
            serial_number=serial,
            platform_version=platform,
            firmware_version=", ".join(
                part
                for part in (
                    f"OS {cplc.os_id.hex().upper()} release {cplc.os_release_level.hex().upper()}"
                    if cplc
                    else "",
                    iot_safe,
                )
                if part
            ),
            identifiers=tuple(ids),
            capabilities=self.capabilities,
            dloa=self._dloa,
        )

    def read_bootstrap(
        self,
        *,
        scp03_keys: StaticKeys | None = None,
        registry: ModelRegistry | None = None,
        layout: Layout = Layout.AUTO,
    ) -> SmartcardBootstrap:
        """The smartcard bootstrap data (SCS-10, LwM2M-TS-Core Appendix G), over SCP03
        (Appendix H) with ``scp03_keys``. Compare :attr:`SmartcardBootstrap.digest` at each
        Register/Update to tell whether the card data changed."""
        with self._lock():
            session = self._session
            return session._guard(
                "read EF LwM2M_Bootstrap",
                lambda: read_smartcard_bootstrap(
                    session.transmit, scp03_keys=scp03_keys, registry=registry, layout=layout
                ),
            )

    # -- remote administration (lwm2m.secure.admin: LwM2M-SCS-3, SCS-6) -----------------------

    def run_admin_script(self, script: CommandScript, aid: bytes) -> ResponseScript:
        """Run a remote APDU script on the security domain ``aid`` over this component's admin
        session: its own logical channel (MANAGE CHANNEL, SELECT ``aid``), opened on first use
        and kept for later scripts, so that a secure channel the server opens with the card
        spans several scripts. Each C-APDU is moved to that channel (all of them before the
        first is sent), response chaining (61xx, 6Cxx) is done here, and the script stops at
        the first error status word (:func:`lwm2m.secure.ram.run_script`). See
        :class:`lwm2m.secure.admin.AdminScripts`.
        """
        self.check_admin_target(aid)
        commands = check_script(script, aid)  # before anything reaches the card
        with self._lock():
            session = self._session
            if self._admin is not None and self._admin[1] != aid:
                self._end_admin()
            if self._admin is None:
                self._open_admin(aid)
            assert self._admin is not None
            channel = self._admin[0]
            try:
                moved = [command.on_channel(channel) for command in commands]
                for command in moved:  # a class that cannot carry the channel (CLA FF)
                    if command.channel != channel:
                        raise ApduError(f"CLA {command.cla:02X} does not name channel {channel}")
            except PcscError as exc:
                raise AdminScriptRefused(
                    f"cannot be sent on logical channel {channel}: {exc}"
                ) from None
            pending = iter(moved)
            card = session.card

            def transmit(raw: bytes) -> bytes:
                command = next(pending)
                return session._guard("admin script", lambda: card.exchange(command)).encode()

            try:
                return run_script(script, transmit)
            except ComponentUnavailable:
                self._admin = None  # the card went away: the session is broken
                raise

    def check_admin_target(self, aid: bytes) -> None:
        """Refuse a target that is, prefixes or extends the AID of the IoT SAFE applet or of
        the PKCS #15 application (they hold the client's credentials and bootstrap keys)."""
        for name, guarded in (("IoT SAFE applet", self._session.aid), ("PKCS #15", PKCS15_AID)):
            if aid.startswith(guarded) or guarded.startswith(aid):
                raise AdminScriptRefused(
                    f"{aid.hex().upper()} would select the {name} application, which holds the "
                    "client's credentials: not an admin target"
                )

    def _open_admin(self, aid: bytes) -> None:
        """MANAGE CHANNEL and SELECT ``aid`` on it; on any failure the channel is closed."""
        session = self._session
        card = session.card
        channel = session._guard("MANAGE CHANNEL", card.open_channel)
        if channel == session.channel or channel in card._scp:
            # The card gave out a channel this process still uses: it was reset behind the
            # transport's back, and every channel state is gone.
            session.broken = "the card was reset (a channel in use was handed out again)"
            forget(session)
            raise CardRemoved(f"admin session: {session.broken}; open the component again")
        self._admin = (channel, aid)
        try:
            selected = session._guard(
                "SELECT the admin target",
                lambda: card.exchange(select_aid(aid, channel=channel)),
            )
            if not (selected.sw.is_success or selected.sw.is_warning):
                raise TargetNotSelectable(
                    f"SELECT {aid.hex().upper()}: the card answered {selected.sw}"
                )
            named = _df_name(selected.data)
            if named is not None and named != aid:
                raise TargetNotSelectable(
                    f"SELECT {aid.hex().upper()}: the card selected {named.hex().upper()}"
                )
        except BaseException:
            self._end_admin()
            raise

    def end_admin_session(self) -> None:
        """Close the admin session's logical channel, if any (idempotent)."""
        with self._lock():
            self._end_admin()

    def _end_admin(self) -> None:
        admin, self._admin = self._admin, None
        session = self._session
        if admin is not None and session.broken is None:
            with contextlib.suppress(PcscError):
                session.card.close_channel(admin[0])

    def card_present(self) -> bool:
        """Whether the card of this session is still there (False once it was removed, and
        after any transport failure): the derived smartcard-bootstrap configuration must then
        be deleted (LwM2M-TS-Core §5.2.3.2)."""
        return not self._closed and self._session.present()

    # -- SecureComponent: credentials -----------------------------------------------------------

    def psk(self, label: str) -> PcscPskHandle:
        with self._lock():
            entry = self._directory().creds.get(label)
            if entry is not None and entry.kind is CredentialKind.PSK:
                ref = ObjectRef(id=entry.container)
                return PcscPskHandle(self, ref, entry.extra or b"", label=label)
            if entry is None:
                issuer = self._issuer_credential(label)
                if issuer is not None and issuer.kind is CredentialKind.PSK:
                    return PcscPskHandle(self, issuer.ref, issuer.identity or b"", label=label)
        raise KeyNotFound(f"no PSK labelled {label!r}")

    def lookup(self, identity: bytes) -> PcscPskHandle | None:
        identity = bytes(identity)
        with self._lock():
            directory = self._directory()
            for label, entry in sorted(directory.creds.items()):
                if entry.kind is CredentialKind.PSK and entry.extra == identity:
                    return PcscPskHandle(self, ObjectRef(id=entry.container), identity, label=label)
            for label, issuer in sorted(self._issuer().items()):
                if (
                    issuer.kind is CredentialKind.PSK
                    and issuer.identity == identity
                    and label not in directory.creds
                ):
                    return PcscPskHandle(self, issuer.ref, identity, label=label)
        return None

    def import_psk(
        self, identity: bytes, psk: bytes, *, label: str | None = None, replace: bool = False
    ) -> PcscPskHandle:
        """Store a PSK in a new secret container (VSE administrative extension); the card forms
        the RFC 4279 premaster at each derivation."""
        label = default_psk_label(identity) if label is None else label
        check_label(label)
        if not 1 <= len(psk) <= _MAX_PSK:
            raise KeySizeNotSupported(
                f"the card's secret containers take PSKs of 1..{_MAX_PSK} bytes, not {len(psk)}"
            )
        self._require(Capability.KEY_IMPORT, "import a PSK")
        identity = bytes(identity)
        what = f"PSK {label!r}"
        with self._lock():
            old = self._claim(self._directory(), label, CredentialKind.PSK, replace)
            ident = self._store(ObjectKind.SECRET, bytes(psk), what)
            self._link(label, Entry(CredentialKind.PSK, ident, identity), old, what)
        return PcscPskHandle(self, ObjectRef(id=ident), identity, label=label)

    def _link(self, label: str, entry: Entry, old: Entry | None, what: str) -> None:
        """Point ``label`` at the new container, then delete the one it replaces."""
        kind = entry.object_kind

        def change(directory: Directory) -> None:
            directory.creds[label] = entry

        try:
            self._commit(change)
        except BaseException:
            self._discard(kind, entry.container, what)
            raise
        if old is not None:
            self._discard(old.object_kind, old.container, what)

    def key(self, label: str) -> PcscKeyHandle:
        with self._lock():
            entry = self._directory().creds.get(label)
            if entry is not None and entry.kind is CredentialKind.KEY_PAIR:
                public = _public_key(entry.extra or b"")
                return PcscKeyHandle(
                    self, ObjectRef(id=entry.container), label=label, public=public
                )
            if entry is None:
                issuer = self._issuer_credential(label)
                if issuer is not None and issuer.kind is CredentialKind.KEY_PAIR:
                    handle = PcscKeyHandle(self, issuer.ref, label=label, public=issuer.public)
                    issuer.public = handle.public_key()
                    return handle
        raise KeyNotFound(f"no key pair labelled {label!r}")

    def generate_key(self, label: str) -> PcscKeyHandle:
        """GENERATE KEY PAIR on the card: into the empty issuer container of that label, else
        into a new managed container."""
        check_label(label)
        what = f"key pair {label!r}"
        with self._lock():
            directory = self._directory()
            self._claim(directory, label, CredentialKind.KEY_PAIR, replace=False)
            issuer = self._issuer().get(label)
            if issuer is not None and issuer.kind is CredentialKind.KEY_PAIR and not issuer.filled:
                ref = issuer.ref
                raw = self._call(
                    lambda ch: iotsafe.get_object_info(ObjectKind.PRIVATE_KEY, ref, channel=ch),
                    f"IoT SAFE GET DATA {what}",
                )
                if iotsafe.parse_object_info_data(raw).state == 0x01:  # filled meanwhile
                    issuer.filled = True
                    raise KeyExists(f"a key-pair labelled {label!r} exists already")
                public = self._generate(issuer.ref, what)
                issuer.filled, issuer.public = True, public
                return PcscKeyHandle(self, issuer.ref, label=label, public=public)
            self._require(Capability.KEY_IMPORT, "generate a key pair in a new container")
            ident = self._create(ObjectKind.PRIVATE_KEY, what)
            try:
                public = self._generate(ObjectRef(id=ident), what)
            except BaseException:
                self._discard(ObjectKind.PRIVATE_KEY, ident, what)
                raise
            entry = Entry(CredentialKind.KEY_PAIR, ident, _point(public))
            self._link(label, entry, None, what)
        return PcscKeyHandle(self, ObjectRef(id=ident), label=label, public=public)

    def _generate(self, ref: ObjectRef, what: str) -> ec.EllipticCurvePublicKey:
        data = self._call(
            lambda ch: iotsafe.generate_key_pair(ref, channel=ch), f"GENERATE KEY PAIR {what}"
        )
        return _public_key(iotsafe.parse_public_key(data))

    def import_key(
        self, label: str, private_key: ec.EllipticCurvePrivateKey, *, replace: bool = False
    ) -> PcscKeyHandle:
        """Write a P-256 private key into a new container (VSE administrative extension)."""
        check_p256(private_key)
        check_label(label)
        self._require(Capability.KEY_IMPORT, "import a key pair")
        public = private_key.public_key()
        what = f"key pair {label!r}"
        with self._lock():
            old = self._claim(self._directory(), label, CredentialKind.KEY_PAIR, replace)
            scalar = private_key.private_numbers().private_value.to_bytes(32, "big")
            ident = self._store(ObjectKind.PRIVATE_KEY, scalar, what)
            del scalar
            self._link(label, Entry(CredentialKind.KEY_PAIR, ident, _point(public)), old, what)
        return PcscKeyHandle(self, ObjectRef(id=ident), label=label, public=public)

    def put_secret(self, label: str, data: bytes, *, replace: bool = False) -> None:
        """Keep ``data`` in a file container (replaced in place, atomically, by the card)."""
        check_label(label)
        self._require(Capability.SECRET_DATA, "store secret data")
        what = f"secret data {label!r}"
        with self._lock():
            old = self._claim(self._directory(), label, CredentialKind.SECRET_DATA, replace)
            if old is not None:
                self._put(ObjectKind.FILE, old.container, bytes(data), what)
                return
            ident = self._store(ObjectKind.FILE, bytes(data), what)
            self._link(label, Entry(CredentialKind.SECRET_DATA, ident), None, what)

    def get_secret(self, label: str) -> bytes:
        with self._lock():
            entry = self._directory().creds.get(label)
            if entry is not None and entry.oscore:
                raise OperationNotSupported(
                    f"{label!r} is an OSCORE Master Secret: it is not read back (oscore_secret)"
                )
            if entry is not None and entry.kind is CredentialKind.SECRET_DATA:
                return self._read_file(ObjectRef(id=entry.container), f"secret data {label!r}")
        raise KeyNotFound(f"no secret data labelled {label!r}")

    def import_oscore_secret(
        self, label: str, master_secret: bytes, master_salt: bytes, *, replace: bool = False
    ) -> PcscOscoreSecretHandle:
        """Write the Master Secret into a new secret container (VSE administrative extension);
        the Master Salt goes to the directory (it is not secret)."""
        secret, salt = check_master_secret(master_secret, master_salt)
        check_label(label)
        if len(secret) > _MAX_PSK:
            raise KeySizeNotSupported(
                f"the card's secret containers take 1..{_MAX_PSK} bytes, not {len(secret)}"
            )
        self._require(Capability.OSCORE, "import an OSCORE Master Secret (COMPUTE HKDF)")
        what = f"OSCORE Master Secret {label!r}"
        kind = CredentialKind.SECRET_DATA
        with self._lock():
            old = self._claim(self._directory(), label, kind, replace, oscore=True)
            extra = oscore_extra(len(secret), salt)
            ident = self._store(ObjectKind.SECRET, secret, what)
            del secret
            entry = Entry(kind, ident, extra, oscore=True)
            self._link(label, entry, old, what)
        return PcscOscoreSecretHandle(self, ObjectRef(id=ident), salt, label=label)

    def oscore_secret(self, label: str) -> PcscOscoreSecretHandle:
        with self._lock():
            entry = self._directory().creds.get(label)
            if entry is not None and entry.oscore:
                ref = ObjectRef(id=entry.container)
                return PcscOscoreSecretHandle(self, ref, entry.master_salt, label=label)
        raise KeyNotFound(f"no OSCORE Master Secret labelled {label!r}")

    def credentials(self) -> list[CredentialInfo]:
        with self._lock():
            directory = self._directory()
            result: dict[str, CredentialInfo] = {}
            sizes: dict[bytes, int] = {}
            if any(
                e.kind is CredentialKind.SECRET_DATA and not e.oscore
                for e in directory.creds.values()
            ):
                sizes = {f.id: f.size or 0 for f in self.objects().files if f.id is not None}
            for label, entry in directory.creds.items():
                if entry.kind is CredentialKind.KEY_PAIR:
                    result[label] = CredentialInfo(
                        label, entry.kind, public_key=_public_key(entry.extra or b"")
                    )
                elif entry.kind is CredentialKind.PSK:
                    result[label] = CredentialInfo(label, entry.kind, identity=entry.extra)
                elif entry.oscore:
                    result[label] = CredentialInfo(
                        label, entry.kind, size=entry.secret_length, oscore=True
                    )
                else:
                    result[label] = CredentialInfo(
                        label, entry.kind, size=sizes.get(entry.container, 0)
                    )
            for label, issuer in self._issuer().items():
                if label in result or not issuer.filled:
                    continue
                if issuer.kind is CredentialKind.KEY_PAIR:
                    public = self.key(label).public_key()
                    result[label] = CredentialInfo(label, issuer.kind, public_key=public)
                else:
                    result[label] = CredentialInfo(label, issuer.kind, identity=issuer.identity)
        return [result[label] for label in sorted(result)]

    def delete(self, label: str) -> bool:
        with self._lock():
            directory = self._directory()
            entry = directory.creds.get(label)
            if entry is None:
                if self._issuer_credential(label) is not None:
                    raise ObjectLocked(
                        f"{label!r} is an issuer container of the card: it cannot be deleted"
                    )
                return False

            def change(directory: Directory) -> None:
                del directory.creds[label]

            self._commit(change)
            self._discard(entry.object_kind, entry.container, repr(label))
        return True

    # -- SecureComponent: sensitive object instances --------------------------------------------

    def put_instance(self, object_id: int, instance_id: int, data: bytes) -> None:
        check_instance_ids(object_id, instance_id)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("a serialised instance is bytes")
        self._require(Capability.INSTANCE_STORE, "store an object instance")
        blob = bytes(data)
        what = f"instance /{object_id}/{instance_id}"
        with self._lock():
            container = self._directory().instances.get((object_id, instance_id))
            if container is not None:
                self._put(ObjectKind.FILE, container, blob, what)
                return
            ident = self._store(ObjectKind.FILE, blob, what)

            def change(directory: Directory) -> None:
                directory.instances[object_id, instance_id] = ident

            try:
                self._commit(change)
            except BaseException:
                self._discard(ObjectKind.FILE, ident, what)
                raise

    def get_instance(self, object_id: int, instance_id: int) -> bytes | None:
        with self._lock():
            container = self._directory().instances.get((object_id, instance_id))
            if container is None:
                return None
            return self._read_file(ObjectRef(id=container), f"instance /{object_id}/{instance_id}")

    def list_instances(self, object_id: int | None = None) -> list[tuple[int, int]]:
        with self._lock():
            keys = self._directory().instances
            return sorted(k for k in keys if object_id in (None, k[0]))

    def delete_instance(self, object_id: int, instance_id: int) -> bool:
        with self._lock():
            container = self._directory().instances.get((object_id, instance_id))
            if container is None:
                return False

            def change(directory: Directory) -> None:
                del directory.instances[object_id, instance_id]

            self._commit(change)
            self._discard(ObjectKind.FILE, container, f"instance /{object_id}/{instance_id}")
        return True

    # -- IoT SAFE extras ------------------------------------------------------------------------

    def objects(self) -> iotsafe.ObjectList:
        """Every container of the applet (GET DATA P1 01)."""
        return iotsafe.parse_object_list(
            self._call(lambda ch: iotsafe.get_object_list(channel=ch), "IoT SAFE GET DATA")
        )

    def random(self, length: int) -> bytes:
        """``length`` random bytes from the card (GET RANDOM)."""
        out = bytearray()
        while len(out) < length:
            want = min(256, length - len(out))
            command = iotsafe.get_random(want, channel=0)
            chunk = self._call(command.on_channel, "IoT SAFE GET RANDOM")
            if not chunk:  # a card answering 9000 without data would loop forever
                raise IotSafeError("GET RANDOM answered no data", offset=len(out), field="random")
            out += chunk
        return bytes(out[:length])

    def read_file(self, ref: ObjectRef | str | bytes) -> bytes:
        """The content of a file container (e.g. a certificate), by label or reference."""
        target = _ref(ref)
        raw = self._call(
            lambda ch: iotsafe.get_object_info(ObjectKind.FILE, target, channel=ch),
            "IoT SAFE GET DATA file",
        )
        info = iotsafe.parse_object_info_data(raw)
        size = getattr(info, "size", None) or 0
        out = bytearray()
        while len(out) < size:
            want = min(_CHUNK, size - len(out))
            command = iotsafe.read_file(target, len(out), want, channel=0)
            chunk = self._call(command.on_channel, "IoT SAFE READ FILE")
            if not chunk:  # below the size GET DATA reported: the card would be asked forever
                raise IotSafeError(
                    f"file ended at {len(out)} of {size} bytes", offset=len(out), field="file"
                )
            out += chunk
        return bytes(out)

    # -- life cycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the component; the card session ends with its last user. Idempotent."""
        if self._closed:
            return
        if self._admin is not None:
            with contextlib.suppress(Exception), self._session.lock:
                self._end_admin()
        self._closed = True
        release(self._session)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        session = getattr(self, "_session", None)
        reader = f"reader={session.reader!r}, " if session and session.reader else ""
        aid = session.aid.hex().upper() if session else "?"
        state = "closed" if self._closed else f"channel={session.channel if session else None}"
        return f"PcscComponent({reader}aid={aid}, {state})"

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _df_name(fci: bytes) -> bytes | None:
    """The DF name (tag 84) of a SELECT answer's FCI template (6F), if it has one."""
    try:
        template = find_tlv(decode_ber_tlvs(fci), 0x6F)
        if template is None:
            return None
        name = find_tlv(decode_ber_tlvs(template.value), 0x84)
    except PcscError:
        return None
    return None if name is None else name.value


def _text(value: bytes | None) -> str:
    if not value:
        return ""
    text = value.decode("utf-8", "replace")
    return text if text.isprintable() else value.hex().upper()


# --- URI entry point ---------------------------------------------------------------------------


def open_uri(
    uri: str | PcscUri,
    *,
    passphrase: str | None = None,
    pin: str | None = None,
    create: bool = False,
    timeout: float | None = None,
    scp03_keys: StaticKeys | None = None,
    peer_container: ObjectRef | str | None = None,
    dloa: Sequence[DloaReference] = (),
    require_applet: bool = True,
) -> PcscComponent:
    """Open a ``pcsc:`` URI (:mod:`lwm2m.secure.pcsc.uri`) through pcscd.

    ``pin`` overrides the URI's ``pin-source``/``pin-value``, ``scp03_keys`` its
    ``scp03-key-env``, ``timeout`` its ``timeout``; ``passphrase`` and ``create`` do not apply
    to cards. Components on the same card and applet share one session (module docstring).

    :raises BackendNotAvailable: pyscard is missing.
    :raises ComponentUnavailable: pcscd is not running (``PcscUnavailable``).
    :raises ComponentNotFound: no such reader, no (matching) card, or no IoT SAFE applet
        (unless ``require_applet`` is False: then only bootstrap and identification work).
    :raises PinIncorrect, PinLocked, AuthenticationError: VERIFY PIN or SCP03 failed.
    """
    del passphrase, create
    from lwm2m.secure.pcsc.transport import PcscTransport  # the only pyscard user

    parsed = uri if isinstance(uri, PcscUri) else PcscUri.parse(uri)
    keys = scp03_keys if scp03_keys is not None else parsed.scp03_keys()
    pin = parsed.resolve_pin(pin)
    peer = peer_container if peer_container is not None else parsed.peer
    transport = PcscTransport(parsed.reader, atr=parsed.atr_filter, atr_text=repr(parsed.atr))
    transport.connect(parsed.timeout if timeout is None else timeout)
    assert transport.reader is not None
    fingerprint = b"" if keys is None else hashlib.sha256(keys.enc + keys.mac + keys.dek).digest()
    key = (transport.reader, parsed.aid, fingerprint + bytes([keys.kvn if keys else 0]))
    session = join(key)
    if session is not None:
        transport.close()
    else:
        try:
            fresh = CardSession(
                transport.transmit,
                atr=transport.atr,
                aid=parsed.aid,
                scp03_keys=keys,
                reader=transport.reader,
                present=transport.present,
                release=transport.close,
                key=key,
                require_applet=require_applet,
            )
        except BaseException:
            transport.close()
            raise
        session = register(fresh)
        if session is not fresh:  # another thread opened the same card meanwhile
            fresh.close()
    if require_applet and session.missing is not None:
        release(session)
        raise ComponentNotFound(session.missing)
    return PcscComponent(
        pin=pin,
        component_type=parsed.component_type,
        peer_container=peer,
        dloa=dloa,
        _session=session,
    )
