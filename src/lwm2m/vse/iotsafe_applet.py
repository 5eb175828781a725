"""The card side of a GSMA IoT SAFE applet (IoT.05) for the virtual secure element.

Containers live in :class:`~lwm2m.vse.state.IotSafeState`: P-256 private keys are generated on
the card (GENERATE KEY PAIR) and never leave it; signatures (COMPUTE SIGNATURE, pad-and-sign or
full-text mode), key agreement (COMPUTE DH with a public key container filled by PUT PUBLIC
KEY), TLS 1.2 PRF-SHA256 over the RFC 4279 premaster of a PSK secret container (COMPUTE PRF),
HKDF-SHA256 (COMPUTE HKDF), GET RANDOM and READ FILE. Command and tag values are those of
:mod:`lwm2m.secure.pcsc.iotsafe`.

**Administrative extension (VSE only, not IoT.05)** — CREATE OBJECT (``E0``), PUT OBJECT
(``E2``, block-wise, committed atomically at the last block) and DELETE OBJECT (``E4``), see
:mod:`lwm2m.secure.pcsc.iotsafe`. A real card is personalised by its issuer (factory or OTA
remote application management); the extension stands in for that path so the ``pcsc:``
backend can import PSKs and keys, keep secret data and store sensitive object instances.
Containers it creates carry ``"admin": true``; issuer containers cannot be rewritten or deleted
(6985). With ``admin_secure_channel`` the three commands need an SCP03 session at level 33.

**Access.** The card (:class:`~lwm2m.vse.uicc.VirtualUicc`) tells :meth:`IotSafeApplet.process`
whether PIN1 is satisfied and whether the channel is secured: with PIN1 enabled and not
verified, everything but the applet information (GET DATA P1 00) answers 6982.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lwm2m.secure.pcsc.apdu import CommandApdu, ResponseApdu, channel_of
from lwm2m.secure.pcsc.ber import BerError, BerTlv, decode_ber_tlvs, encode_ber_tlv, find_tlv
from lwm2m.secure.pcsc.errors import IotSafeError
from lwm2m.secure.pcsc.iotsafe import (
    ADMIN_EXTENSION_VERSION,
    AdminIns,
    Ins,
    KeyDerivation,
    ObjectKind,
    SignatureMode,
    Tag,
    encode_public_key_data,
    parse_public_key,
    psk_premaster,
)
from lwm2m.vse.state import IotSafeState

__all__ = ["IotSafeApplet", "tls12_prf"]

_LISTS = {
    ObjectKind.PRIVATE_KEY: "private_keys",
    ObjectKind.PUBLIC_KEY: "public_keys",
    ObjectKind.FILE: "files",
    ObjectKind.SECRET: "secrets",
}


def tls12_prf(secret: bytes, label_and_seed: bytes, length: int) -> bytes:
    """The TLS 1.2 PRF with SHA-256 (RFC 5246 §5): P_SHA256(secret, label || seed)."""
    out = bytearray()
    a = label_and_seed
    while len(out) < length:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + label_and_seed, hashlib.sha256).digest()
    return bytes(out[:length])


class _Reject(Exception):
    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


@dataclass(slots=True)
class _SignSession:
    key: dict[str, Any]
    mode: int
    data: bytearray = field(default_factory=bytearray)


@dataclass(slots=True)
class _ChannelState:
    """What the applet remembers between the commands of one logical channel."""

    sessions: dict[int, _SignSession] = field(default_factory=dict)
    put_target: dict[str, Any] | None = None
    write: _Write | None = None


@dataclass(slots=True)
class _Write:
    """A PUT OBJECT in progress (administrative extension)."""

    kind: ObjectKind
    entry: dict[str, Any]
    content: bytearray = field(default_factory=bytearray)


_CAPACITY = {
    ObjectKind.PRIVATE_KEY: "max_private_keys",
    ObjectKind.PUBLIC_KEY: "max_public_keys",
    ObjectKind.FILE: "max_files",
    ObjectKind.SECRET: "max_secrets",
}
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_MAX_SECRET = 255


class IotSafeApplet:
    """Processes IoT SAFE commands (plain, after any secure messaging) for one card."""

    def __init__(self, state: IotSafeState, on_change: Callable[[], None]) -> None:
        self.state = state
        self._on_change = on_change
        self._channels: dict[int, _ChannelState] = {}
        self._cur = _ChannelState()

    def reset(self, channel: int | None = None) -> None:
        """Forget the transient state (signature sessions, writes in progress) of one logical
        channel (the applet was selected again there, or the channel closed), or of all."""
        if channel is None:
            self._channels.clear()
        else:
            self._channels.pop(channel, None)

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _tlvs(cmd: CommandApdu) -> list[BerTlv]:
        try:
            return decode_ber_tlvs(cmd.data)
        except BerError:
            raise _Reject(0x6A80) from None

    def _find(
        self, kind: ObjectKind, tlvs: list[BerTlv], *, required: bool = True
    ) -> dict[str, Any] | None:
        ident = find_tlv(tlvs, kind.id_tag)
        label = find_tlv(tlvs, kind.label_tag)
        if (ident is None) == (label is None):
            if required:
                raise _Reject(0x6A80)
            return None
        # IoT.05: ids are 1..20 bytes, labels 1..60 (as _create enforces); an empty one would
        # match every object created without one
        if (ident is not None and not 0 < len(ident.value) <= 20) or (
            label is not None and not 0 < len(label.value) <= 60
        ):
            raise _Reject(0x6A80)
        entries: list[dict[str, Any]] = getattr(self.state, _LISTS[kind])
        for entry in entries:
            if ident is not None and entry.get("id") and bytes.fromhex(entry["id"]) == ident.value:
                return entry
            if label is not None and entry.get("label") and entry["label"].encode() == label.value:
                return entry
        raise _Reject(0x6A88)

    @staticmethod
    def _private_key(entry: dict[str, Any]) -> ec.EllipticCurvePrivateKey:
        if not entry.get("key"):
            raise _Reject(0x6985)  # the container is empty
        return ec.derive_private_key(int(entry["key"], 16), ec.SECP256R1())

    @staticmethod
    def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

    def _template(self, kind: ObjectKind, entry: dict[str, Any]) -> bytes:
        body = b""
        if entry.get("id"):
            body += encode_ber_tlv(kind.id_tag, bytes.fromhex(entry["id"]))
        if entry.get("label"):
            body += encode_ber_tlv(kind.label_tag, entry["label"].encode())
        if kind is ObjectKind.PRIVATE_KEY:
            filled = bool(entry.get("key"))
            body += (
                encode_ber_tlv(Tag.OBJECT_STATE, bytes([0x01 if filled else 0x02]))
                + encode_ber_tlv(Tag.KEY_TYPE, bytes([entry.get("type", 0x13)]))
                + encode_ber_tlv(Tag.KEY_USAGE, bytes([entry.get("usage", 0x01)]))
                + encode_ber_tlv(Tag.OBJECT_ACCESS, b"\x01")
                + encode_ber_tlv(Tag.CRYPTO_FUNCTIONS, b"\x07")
                + encode_ber_tlv(Tag.HASH, b"\x01")
                + encode_ber_tlv(Tag.SIGNATURE, b"\x04")
                + encode_ber_tlv(Tag.KEY_AGREEMENT, b"\x01")
            )
        elif kind is ObjectKind.PUBLIC_KEY:
            body += (
                encode_ber_tlv(Tag.OBJECT_STATE, bytes([0x01 if entry.get("point") else 0x02]))
                + encode_ber_tlv(Tag.KEY_TYPE, b"\x13")
                + encode_ber_tlv(Tag.OBJECT_ACCESS, b"\x03")
                + encode_ber_tlv(Tag.CRYPTO_FUNCTIONS, b"\x05")
            )
        elif kind is ObjectKind.FILE:
            size = len(bytes.fromhex(entry.get("data", "")))
            body += (
                encode_ber_tlv(Tag.OBJECT_STATE, b"\x01")
                + encode_ber_tlv(Tag.FILE_SIZE, size.to_bytes(2, "big"))
                + encode_ber_tlv(Tag.FILE_USAGE, bytes([entry.get("usage", 0x01)]))
                + encode_ber_tlv(Tag.OBJECT_ACCESS, b"\x01")
            )
        else:
            body += (
                encode_ber_tlv(Tag.OBJECT_STATE, b"\x01")
                + encode_ber_tlv(Tag.KEY_TYPE, b"\xa0")
                + encode_ber_tlv(Tag.OBJECT_ACCESS, b"\x00")
                + encode_ber_tlv(Tag.CRYPTO_FUNCTIONS, b"\x08")
                + encode_ber_tlv(Tag.KEY_DERIVATION, bytes([self.state.key_derivations]))
            )
        return encode_ber_tlv(kind.value, body)

    # -- dispatch -------------------------------------------------------------------------------

    def process(
        self, cmd: CommandApdu, *, user_verified: bool = True, secured: bool = False
    ) -> ResponseApdu:
        """One command; ``user_verified``: PIN1 is disabled or verified; ``secured``: the
        channel has an SCP03 session at level 33."""
        if not cmd.cla & 0x80:
            return ResponseApdu.of(b"", 0x6E00)
        self._cur = self._channels.setdefault(channel_of(cmd.cla), _ChannelState())
        if not user_verified and not (cmd.ins == Ins.GET_DATA and cmd.p1 == 0x00):
            return ResponseApdu.of(b"", 0x6982)
        if cmd.ins in (AdminIns.CREATE_OBJECT, AdminIns.PUT_OBJECT, AdminIns.DELETE_OBJECT):
            if not self.state.admin_extension:
                return ResponseApdu.of(b"", 0x6D00)
            if self.state.admin_secure_channel and not secured:
                return ResponseApdu.of(b"", 0x6982)
        handlers: dict[int, Callable[[CommandApdu], bytes]] = {
            Ins.GET_DATA: self._get_data,
            Ins.GENERATE_KEY_PAIR: self._generate,
            Ins.READ_PUBLIC_KEY: self._read_public_key,
            Ins.PUT_PUBLIC_KEY_INIT: self._put_init,
            Ins.PUT_PUBLIC_KEY_UPDATE: self._put_update,
            Ins.COMPUTE_SIGNATURE_INIT: self._sign_init,
            Ins.COMPUTE_SIGNATURE_UPDATE: self._sign_update,
            Ins.COMPUTE_DH: self._dh,
            Ins.COMPUTE_PRF: self._prf,
            Ins.COMPUTE_HKDF: self._hkdf,
            Ins.GET_RANDOM: self._random,
            Ins.READ_FILE: self._read_file,
            AdminIns.CREATE_OBJECT: self._create,
            AdminIns.PUT_OBJECT: self._put_object,
            AdminIns.DELETE_OBJECT: self._delete,
        }
        handler = handlers.get(cmd.ins)
        if handler is None:
            return ResponseApdu.of(b"", 0x6D00)
        try:
            return ResponseApdu.of(handler(cmd), 0x9000)
        except _Reject as rejected:
            return ResponseApdu.of(b"", rejected.sw)

    def _get_data(self, cmd: CommandApdu) -> bytes:
        s = self.state
        if cmd.p1 == 0x00:
            return (
                encode_ber_tlv(Tag.SIM_ALLIANCE_VERSION, b"\x01")
                + encode_ber_tlv(Tag.APPLET_ID, bytes.fromhex(s.applet_id))
                + encode_ber_tlv(Tag.MAX_FILES, bytes([self._capacity(ObjectKind.FILE)]))
                + encode_ber_tlv(
                    Tag.MAX_PRIVATE_KEYS, bytes([self._capacity(ObjectKind.PRIVATE_KEY)])
                )
                + encode_ber_tlv(
                    Tag.MAX_PUBLIC_KEYS, bytes([self._capacity(ObjectKind.PUBLIC_KEY)])
                )
                + encode_ber_tlv(Tag.MAX_SECRETS, bytes([self._capacity(ObjectKind.SECRET)]))
                + encode_ber_tlv(
                    Tag.CRYPTO_FUNCTIONS_APPLET, bytes([0x07 | (0x08 if s.key_derivations else 0)])
                )
                + encode_ber_tlv(Tag.HASH, b"\x01")
                + encode_ber_tlv(Tag.SIGNATURE, b"\x04")
                + encode_ber_tlv(Tag.KEY_AGREEMENT_APPLET, b"\x01")
                + encode_ber_tlv(Tag.KEY_DERIVATION, bytes([s.key_derivations]))
                + encode_ber_tlv(Tag.MAX_SESSIONS, b"\x04")
                + (
                    encode_ber_tlv(Tag.ADMIN_EXTENSION, bytes([ADMIN_EXTENSION_VERSION]))
                    if s.admin_extension
                    else b""
                )
            )
        if cmd.p1 == 0x01:
            return b"".join(
                self._template(kind, entry)
                for kind, name in _LISTS.items()
                for entry in getattr(s, name)
            )
        if cmd.p1 in (0xC1, 0xC2, 0xC3, 0xC4):
            kind = ObjectKind(cmd.p1)
            entry = self._find(kind, self._tlvs(cmd))
            assert entry is not None
            return self._template(kind, entry)
        raise _Reject(0x6A86)

    def _generate(self, cmd: CommandApdu) -> bytes:
        entry = self._find(ObjectKind.PRIVATE_KEY, self._tlvs(cmd))
        assert entry is not None
        key = ec.generate_private_key(ec.SECP256R1())
        entry["key"] = format(key.private_numbers().private_value, "064x")
        self._on_change()
        return encode_public_key_data(self._point(key))

    def _read_public_key(self, cmd: CommandApdu) -> bytes:
        tlvs = self._tlvs(cmd)
        entry = self._find(ObjectKind.PRIVATE_KEY, tlvs, required=False)
        if entry is not None:
            return encode_public_key_data(self._point(self._private_key(entry)))
        entry = self._find(ObjectKind.PUBLIC_KEY, tlvs)
        assert entry is not None
        if not entry.get("point"):
            raise _Reject(0x6985)
        return encode_public_key_data(bytes.fromhex(entry["point"]))

    def _put_init(self, cmd: CommandApdu) -> bytes:
        self._cur.put_target = self._find(ObjectKind.PUBLIC_KEY, self._tlvs(cmd))
        return b""

    def _put_update(self, cmd: CommandApdu) -> bytes:
        if self._cur.put_target is None:
            raise _Reject(0x6985)
        try:
            point = parse_public_key(cmd.data)
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except (IotSafeError, ValueError):
            raise _Reject(0x6A80) from None
        if cmd.p1 & 0x80:
            self._cur.put_target["point"] = point.hex()
            self._cur.put_target = None
        return b""

    def _sign_init(self, cmd: CommandApdu) -> bytes:
        session = cmd.p2
        if not 1 <= session <= 4:
            raise _Reject(0x6A86)
        if cmd.p1 == 0x01:
            self._cur.sessions.pop(session, None)
            return b""
        if cmd.p1 != 0x00:
            raise _Reject(0x6A86)
        tlvs = self._tlvs(cmd)
        entry = self._find(ObjectKind.PRIVATE_KEY, tlvs)
        assert entry is not None
        self._private_key(entry)
        mode = find_tlv(tlvs, Tag.OPERATION_MODE)
        hash_alg = find_tlv(tlvs, Tag.HASH)
        algorithm = find_tlv(tlvs, Tag.SIGNATURE)
        if mode is None or mode.value not in (b"\x01", b"\x03"):
            raise _Reject(0x6A80)
        if hash_alg is not None and hash_alg.value != b"\x01":
            raise _Reject(0x6A80)
        if algorithm is not None and algorithm.value != b"\x04":
            raise _Reject(0x6A80)
        self._cur.sessions[session] = _SignSession(entry, mode.value[0])
        return b""

    def _sign_update(self, cmd: CommandApdu) -> bytes:
        session = self._cur.sessions.get(cmd.p2)
        if session is None:
            raise _Reject(0x6985)
        tlvs = self._tlvs(cmd)
        last = bool(cmd.p1 & 0x80)
        if session.mode == SignatureMode.PAD_AND_SIGN:
            final = find_tlv(tlvs, Tag.FINAL_HASH)
            if final is None or len(final.value) != 32 or not last:
                raise _Reject(0x6A80)
            digest = final.value
        else:
            block = find_tlv(tlvs, Tag.DATA_TO_BE_SIGNED)
            if block is None:
                raise _Reject(0x6A80)
            session.data += block.value
            if not last:
                return b""
            digest = hashlib.sha256(session.data).digest()
        del self._cur.sessions[cmd.p2]
        key = self._private_key(session.key)
        signature = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return encode_ber_tlv(Tag.COMPUTED_SIGNATURE, signature)

    def _dh(self, cmd: CommandApdu) -> bytes:
        tlvs = self._tlvs(cmd)
        private = self._find(ObjectKind.PRIVATE_KEY, tlvs)
        public = self._find(ObjectKind.PUBLIC_KEY, tlvs)
        assert private is not None
        assert public is not None
        if not public.get("point"):
            raise _Reject(0x6985)
        peer = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), bytes.fromhex(public["point"])
        )
        return self._private_key(private).exchange(ec.ECDH(), peer)

    @staticmethod
    def _length(tlvs: list[BerTlv]) -> int:
        tlv = find_tlv(tlvs, Tag.OUTPUT_LENGTH)
        if tlv is None or not 1 <= len(tlv.value) <= 2:
            raise _Reject(0x6A80)
        length = int.from_bytes(tlv.value, "big")
        if not 1 <= length <= 1024:
            raise _Reject(0x6A80)
        return length

    def _prf(self, cmd: CommandApdu) -> bytes:
        if not self.state.key_derivations & KeyDerivation.PRF_SHA256:
            raise _Reject(0x6D00)
        tlvs = self._tlvs(cmd)
        secret = self._find(ObjectKind.SECRET, tlvs)
        assert secret is not None
        if not secret.get("value"):
            raise _Reject(0x6985)  # an empty secret container
        label_seed = find_tlv(tlvs, Tag.LABEL_AND_SEED)
        if label_seed is None:
            raise _Reject(0x6A80)
        other = find_tlv(tlvs, Tag.SECRET)
        premaster = psk_premaster(
            bytes.fromhex(secret["value"]), other.value if other is not None else None
        )
        return tls12_prf(premaster, label_seed.value, self._length(tlvs))

    def _hkdf(self, cmd: CommandApdu) -> bytes:
        if not self.state.key_derivations & KeyDerivation.HKDF:
            raise _Reject(0x6D00)
        tlvs = self._tlvs(cmd)
        secret = self._find(ObjectKind.SECRET, tlvs)
        assert secret is not None
        if not secret.get("value"):
            raise _Reject(0x6985)
        salt = find_tlv(tlvs, Tag.SALT)
        info = find_tlv(tlvs, Tag.INFO)
        length = self._length(tlvs)
        if length > 255 * 32:
            raise _Reject(0x6A80)
        hkdf = HKDF(
            hashes.SHA256(), length, salt.value if salt else None, info.value if info else b""
        )
        return hkdf.derive(bytes.fromhex(secret["value"]))

    def _random(self, cmd: CommandApdu) -> bytes:
        if cmd.le is None:
            raise _Reject(0x6700)
        return os.urandom(min(cmd.le, 256))

    def _read_file(self, cmd: CommandApdu) -> bytes:
        entry = self._find(ObjectKind.FILE, self._tlvs(cmd))
        assert entry is not None
        data = bytes.fromhex(entry.get("data", ""))
        offset = (cmd.p1 << 8) | cmd.p2
        if offset > len(data):
            raise _Reject(0x6B00)
        return data[offset : offset + (cmd.le or 256)]

    # -- administrative extension (VSE only, not IoT.05) ----------------------------------------

    def _capacity(self, kind: ObjectKind) -> int:
        entries = len(getattr(self.state, _LISTS[kind]))
        return min(255, max(entries, int(getattr(self.state, _CAPACITY[kind]))))

    @staticmethod
    def _kind(value: int) -> ObjectKind:
        if value not in (0xC1, 0xC2, 0xC3, 0xC4):
            raise _Reject(0x6A86)
        return ObjectKind(value)

    def _create(self, cmd: CommandApdu) -> bytes:
        kind = self._kind(cmd.p1)
        tlvs = self._tlvs(cmd)
        ident = find_tlv(tlvs, kind.id_tag)
        label = find_tlv(tlvs, kind.label_tag)
        if ident is None or not 1 <= len(ident.value) <= 20:
            raise _Reject(0x6A80)
        if label is not None and not 1 <= len(label.value) <= 60:
            raise _Reject(0x6A80)
        entries: list[dict[str, Any]] = getattr(self.state, _LISTS[kind])
        for entry in entries:
            if bytes.fromhex(entry.get("id") or "") == ident.value or (
                label is not None and (entry.get("label") or "").encode() == label.value
            ):
                raise _Reject(0x6A89)  # already exists
        if len(entries) >= self._capacity(kind):
            raise _Reject(0x6A84)
        try:
            text = label.value.decode() if label is not None else ""
        except UnicodeDecodeError:
            raise _Reject(0x6A80) from None
        new: dict[str, Any] = {"id": ident.value.hex().upper(), "label": text, "admin": True}
        if kind is ObjectKind.PRIVATE_KEY:
            new.update(key=None, type=0x13, usage=0x01)
        elif kind is ObjectKind.PUBLIC_KEY:
            new.update(point=None)
        elif kind is ObjectKind.FILE:
            new.update(data="", usage=0x01)
        else:
            new.update(value="")
        entries.append(new)
        self._on_change()
        return b""

    def _put_object(self, cmd: CommandApdu) -> bytes:
        kind = self._kind(cmd.p2)
        if kind is ObjectKind.PUBLIC_KEY:
            raise _Reject(0x6A86)  # public keys are written with PUT PUBLIC KEY
        tlvs = self._tlvs(cmd)
        starts = bool(tlvs) and tlvs[0].tag in (kind.id_tag, kind.label_tag)
        if starts:
            entry = self._find(kind, tlvs)
            assert entry is not None
            if not entry.get("admin"):
                self._cur.write = None
                raise _Reject(0x6985)  # an issuer container
            self._cur.write = _Write(kind, entry)
        write = self._cur.write
        if write is None or write.kind is not kind:
            raise _Reject(0x6985)  # no write in progress
        content = find_tlv(tlvs, Tag.CONTENT)
        if content is None:
            self._cur.write = None
            raise _Reject(0x6A80)
        write.content += content.value
        if len(write.content) > self.state.max_file_size:
            self._cur.write = None
            raise _Reject(0x6A84)
        if not cmd.p1 & 0x80:
            return b""
        self._cur.write = None
        entries: list[dict[str, Any]] = getattr(self.state, _LISTS[kind])
        if not any(e is write.entry for e in entries):
            raise _Reject(0x6A88)  # deleted meanwhile
        value = bytes(write.content)
        if kind is ObjectKind.PRIVATE_KEY:
            if len(value) != 32 or not 0 < int.from_bytes(value, "big") < _P256_ORDER:
                raise _Reject(0x6A80)
            write.entry["key"] = value.hex()
        elif kind is ObjectKind.SECRET:
            if not 1 <= len(value) <= _MAX_SECRET:
                raise _Reject(0x6A80)
            write.entry["value"] = value.hex()
        else:
            write.entry["data"] = value.hex()
        self._on_change()
        return b""

    def _delete(self, cmd: CommandApdu) -> bytes:
        kind = self._kind(cmd.p1)
        entry = self._find(kind, self._tlvs(cmd))
        assert entry is not None
        if not entry.get("admin"):
            raise _Reject(0x6985)
        entries: list[dict[str, Any]] = getattr(self.state, _LISTS[kind])
        entries[:] = [e for e in entries if e is not entry]
        for channel in self._channels.values():
            channel.sessions = {n: s for n, s in channel.sessions.items() if s.key is not entry}
            if channel.put_target is entry:
                channel.put_target = None
        self._on_change()
        return b""
