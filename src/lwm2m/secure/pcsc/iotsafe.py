"""GSMA IoT SAFE (IoT.05 "IoT Security Applet Interface Description") command builders and
response parsers, sans-IO.

The applet (default AID ``A0 00 00 05 59 00 10``) is selected on a logical channel; its
commands use CLA ``80`` coded for that channel. Containers are addressed by identifier (at most
20 bytes) **or** label (at most 60 bytes), never both: private keys ``84``/``74``, public keys
``85``/``75``, files ``83``/``73``, secrets ``86``/``76``.

=====  ==========================  ==================================================
INS    command                      data (tags)
=====  ==========================  ==================================================
CB     GET DATA                     P1 00 applet info, 01 object list, C1..C4 one object
B9     GENERATE KEY PAIR            private key ref -> ``34`` public key data
CD     READ PUBLIC KEY              key ref -> ``34``
24/D8  PUT PUBLIC KEY init/update   public key ref / ``34`` (update P1 80 = last)
2A/2B  COMPUTE SIGNATURE init/upd.  init P1 00 open, 01 close, P2 session; ``A1`` mode,
                                    ``91`` hash, ``92`` algorithm; update P1 80 = last,
                                    ``9B`` data or ``9E`` final hash -> ``33`` signature
46     COMPUTE DH                   private ref + public ref -> shared secret (ECKA)
48     COMPUTE PRF                  secret ref, [``D1`` other secret], ``D2`` label+seed,
                                    ``D3`` length -> TLS 1.2 PRF-SHA256 output
4A     COMPUTE HKDF                 secret ref, ``D5`` salt, ``D6`` info, ``D3`` length
84     GET RANDOM                   Le = length
B0     READ FILE                    P1-P2 offset, file ref
=====  ==========================  ==================================================

The INS, tag and attribute values are those of Orange's IoT-SAFE-APDU-library (tested against
two vendors' applets). Where that library is silent this module records its reading, marked
[U]: the PRF premaster (:func:`psk_premaster`: the secret container holds the raw PSK, the
applet forms the RFC 4279 premaster, ``D1`` optionally carrying the other secret), the ``D6``
HKDF info tag, and the public key data ``34 {49 {86 point}}`` (ISO/IEC 7816-8 style; a bare
``86`` or a bare uncompressed point are accepted on input).

**Administrative extension of the project's virtual secure element — not IoT.05.** IoT.05
has no command to create or delete containers or to write a private key, a secret or a file:
issuers personalise cards at the factory or over the air (GlobalPlatform remote application
management). So that a Secure Component on a card can take credentials provisioned by a
Bootstrap-Write (LwM2M-SCS-4) and keep sensitive object instances, the VSE's applet offers three
proprietary commands, announced by tag ``DF70`` (extension version) in GET DATA P1 00; a card
without that tag simply lacks the capabilities that need them:

=====  =====================  ==========================================================
INS    command                P1 / P2 and data
=====  =====================  ==========================================================
E0     CREATE OBJECT           P1 = kind (``C1``..``C4``); id (``84``/``85``/``83``/``86``),
                               optional label; an empty container (6A89 exists, 6A84 full)
E2     PUT OBJECT              P1 b8 = last block, P2 = kind; the first block starts with
                               the container id, every block carries ``D0`` content; the
                               card commits atomically at the last block (a private key:
                               the 32-byte P-256 scalar; a secret: its value; a file: its
                               content)
E4     DELETE OBJECT           P1 = kind; container id
=====  =====================  ==========================================================

Only containers made by CREATE OBJECT can be rewritten or deleted (issuer containers answer
6985); the VSE can require an SCP03 session for the three commands
(``IotSafeState.admin_secure_channel``).

Parsers raise only :class:`~lwm2m.secure.pcsc.errors.IotSafeError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from lwm2m.secure.pcsc.apdu import CommandApdu, with_channel
from lwm2m.secure.pcsc.ber import BerError, BerTlv, decode_ber_tlvs, encode_ber_tlv, find_tlv
from lwm2m.secure.pcsc.errors import ApduError, IotSafeError

__all__ = [
    "ADMIN_EXTENSION_VERSION",
    "IOT_SAFE_AID",
    "AdminIns",
    "AppletInfo",
    "CryptoFunction",
    "FileInfo",
    "HashAlgorithm",
    "Ins",
    "KeyDerivation",
    "KeyInfo",
    "KeyType",
    "ObjectKind",
    "ObjectList",
    "ObjectRef",
    "SecretInfo",
    "SignatureAlgorithm",
    "SignatureMode",
    "Tag",
    "compute_dh",
    "compute_hkdf",
    "compute_prf",
    "compute_signature_close",
    "compute_signature_init",
    "compute_signature_update",
    "create_object",
    "delete_object",
    "encode_public_key_data",
    "generate_key_pair",
    "get_applet_info",
    "get_object_info",
    "get_object_list",
    "get_random",
    "parse_applet_info",
    "parse_object_info",
    "parse_object_info_data",
    "parse_object_list",
    "parse_public_key",
    "parse_secret",
    "parse_signature",
    "psk_premaster",
    "put_object",
    "put_public_key_init",
    "put_public_key_update",
    "read_file",
    "read_public_key",
    "select_applet",
]

IOT_SAFE_AID = bytes.fromhex("A0000005590010")
CLA = 0x80
#: The version of the VSE administrative extension this module speaks (tag ``DF70``).
ADMIN_EXTENSION_VERSION = 1


class Ins(IntEnum):
    PUT_PUBLIC_KEY_INIT = 0x24
    COMPUTE_SIGNATURE_INIT = 0x2A
    COMPUTE_SIGNATURE_UPDATE = 0x2B
    VERIFY_SIGNATURE_INIT = 0x2C
    VERIFY_SIGNATURE_UPDATE = 0x2D
    COMPUTE_DH = 0x46
    COMPUTE_PRF = 0x48
    COMPUTE_HKDF = 0x4A
    GET_RANDOM = 0x84
    READ_FILE = 0xB0
    GENERATE_KEY_PAIR = 0xB9
    GET_DATA = 0xCB
    READ_PUBLIC_KEY = 0xCD
    PUT_PUBLIC_KEY_UPDATE = 0xD8


class Tag(IntEnum):
    SIM_ALLIANCE_VERSION = 0x10
    APPLET_ID = 0x11
    FILE_SIZE = 0x20
    FILE_USAGE = 0x21
    COMPUTED_SIGNATURE = 0x33
    PUBLIC_KEY_DATA = 0x34
    OBJECT_STATE = 0x4A
    KEY_TYPE = 0x4B
    KEY_USAGE = 0x4E
    OBJECT_ACCESS = 0x60
    CRYPTO_FUNCTIONS = 0x61
    KEY_AGREEMENT = 0x6F
    FILE_LABEL = 0x73
    PRIVATE_KEY_LABEL = 0x74
    PUBLIC_KEY_LABEL = 0x75
    SECRET_LABEL = 0x76
    FILE_ID = 0x83
    PRIVATE_KEY_ID = 0x84
    PUBLIC_KEY_ID = 0x85
    SECRET_ID = 0x86
    CRYPTO_FUNCTIONS_APPLET = 0x90
    HASH = 0x91
    SIGNATURE = 0x92
    KEY_AGREEMENT_APPLET = 0x93
    KEY_DERIVATION = 0x94
    LAST_BLOCK_TO_HASH = 0x9A
    DATA_TO_BE_SIGNED = 0x9B
    INTERMEDIATE_HASH = 0x9C
    NUMBER_OF_BYTES_HASHED = 0x9D
    FINAL_HASH = 0x9E
    OPERATION_MODE = 0xA1
    MAX_FILES = 0xB1
    MAX_PRIVATE_KEYS = 0xB2
    MAX_PUBLIC_KEYS = 0xB3
    MAX_SECRETS = 0xB4
    MAX_SESSIONS = 0xB7
    PRIVATE_KEY_INFO = 0xC1
    PUBLIC_KEY_INFO = 0xC2
    FILE_INFO = 0xC3
    SECRET_INFO = 0xC4
    SECRET = 0xD1
    LABEL_AND_SEED = 0xD2
    OUTPUT_LENGTH = 0xD3
    SALT = 0xD5
    INFO = 0xD6
    #: VSE administrative extension (not IoT.05): the content of a PUT OBJECT block.
    CONTENT = 0xD0
    #: VSE administrative extension (not IoT.05): its version, in the applet information.
    ADMIN_EXTENSION = 0xDF70


class AdminIns(IntEnum):
    """The VSE administrative extension (not IoT.05; see the module docstring)."""

    CREATE_OBJECT = 0xE0
    PUT_OBJECT = 0xE2
    DELETE_OBJECT = 0xE4


class KeyType(IntEnum):
    RSA_2K = 0x03
    SECP256R1_PERSISTENT = 0x13
    SECP256R1_VOLATILE = 0x14
    BRAINPOOLP256R1_PERSISTENT = 0x23
    BRAINPOOLP256R1_VOLATILE = 0x24
    HMAC = 0xA0


class HashAlgorithm(IntFlag):
    SHA_256 = 0x01
    SHA_384 = 0x02
    SHA_512 = 0x04


class SignatureAlgorithm(IntFlag):
    RSA_PKCS1_V15 = 0x01
    RSA_PSS = 0x02
    ECDSA = 0x04


class SignatureMode(IntEnum):
    FULL_TEXT = 0x01
    LAST_BLOCK = 0x02
    #: The host hashes; the applet pads and signs the final hash (``9E``).
    PAD_AND_SIGN = 0x03


class CryptoFunction(IntFlag):
    SIGNATURE = 0x01
    KEY_GENERATION = 0x02
    KEY_AGREEMENT = 0x04
    KEY_DERIVATION = 0x08


class KeyDerivation(IntFlag):
    PRF_SHA256 = 0x01
    HKDF = 0x02


class ObjectKind(IntEnum):
    """The container kinds and their GET DATA P1 / info tag."""

    PRIVATE_KEY = 0xC1
    PUBLIC_KEY = 0xC2
    FILE = 0xC3
    SECRET = 0xC4

    @property
    def id_tag(self) -> int:
        return {0xC1: 0x84, 0xC2: 0x85, 0xC3: 0x83, 0xC4: 0x86}[self.value]

    @property
    def label_tag(self) -> int:
        return {0xC1: 0x74, 0xC2: 0x75, 0xC3: 0x73, 0xC4: 0x76}[self.value]


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A container reference: an identifier (1..20 bytes) or a label (1..60 bytes)."""

    id: bytes | None = None
    label: bytes | None = None

    def __post_init__(self) -> None:
        if (self.id is None) == (self.label is None):
            raise ApduError("an IoT SAFE object is addressed by id or by label, exactly one")
        if self.id is not None and not 1 <= len(self.id) <= 20:
            raise ApduError(f"an IoT SAFE object id has 1..20 bytes, not {len(self.id)}")
        if self.label is not None and not 1 <= len(self.label) <= 60:
            raise ApduError(f"an IoT SAFE label has 1..60 bytes, not {len(self.label)}")

    @classmethod
    def by_id(cls, value: bytes | int) -> ObjectRef:
        return cls(id=bytes([value]) if isinstance(value, int) else bytes(value))

    @classmethod
    def by_label(cls, value: str | bytes) -> ObjectRef:
        return cls(label=value.encode() if isinstance(value, str) else bytes(value))

    def encode(self, kind: ObjectKind) -> bytes:
        if self.id is not None:
            return encode_ber_tlv(kind.id_tag, self.id)
        assert self.label is not None
        return encode_ber_tlv(kind.label_tag, self.label)

    def __str__(self) -> str:
        if self.label is not None:
            return f"label {self.label.decode('utf-8', 'replace')!r}"
        assert self.id is not None
        return f"id {self.id.hex().upper()}"


# -- builders ----------------------------------------------------------------------------------


def _cla(channel: int) -> int:
    return with_channel(CLA, channel)


def select_applet(*, channel: int, aid: bytes = IOT_SAFE_AID) -> CommandApdu:
    return CommandApdu(with_channel(0x00, channel), 0xA4, 0x04, 0x00, aid)


def get_applet_info(*, channel: int) -> CommandApdu:
    return CommandApdu(_cla(channel), Ins.GET_DATA, 0x00, 0x00, le=256)


def get_object_list(*, channel: int) -> CommandApdu:
    return CommandApdu(_cla(channel), Ins.GET_DATA, 0x01, 0x00, le=256)


def get_object_info(kind: ObjectKind, ref: ObjectRef, *, channel: int) -> CommandApdu:
    return CommandApdu(_cla(channel), Ins.GET_DATA, kind.value, 0x00, ref.encode(kind), le=256)


def generate_key_pair(ref: ObjectRef, *, channel: int) -> CommandApdu:
    return CommandApdu(
        _cla(channel), Ins.GENERATE_KEY_PAIR, 0, 0, ref.encode(ObjectKind.PRIVATE_KEY), le=256
    )


def read_public_key(
    ref: ObjectRef, *, channel: int, kind: ObjectKind = ObjectKind.PRIVATE_KEY
) -> CommandApdu:
    """READ PUBLIC KEY of a key pair (private key ref) or of a public key container."""
    return CommandApdu(_cla(channel), Ins.READ_PUBLIC_KEY, 0, 0, ref.encode(kind), le=256)


def put_public_key_init(ref: ObjectRef, *, channel: int) -> CommandApdu:
    return CommandApdu(
        _cla(channel), Ins.PUT_PUBLIC_KEY_INIT, 0, 0, ref.encode(ObjectKind.PUBLIC_KEY)
    )


def put_public_key_update(point: bytes, *, channel: int) -> CommandApdu:
    return CommandApdu(
        _cla(channel), Ins.PUT_PUBLIC_KEY_UPDATE, 0x80, 0, encode_public_key_data(point)
    )


def compute_signature_init(
    ref: ObjectRef,
    *,
    channel: int,
    session: int = 1,
    mode: SignatureMode = SignatureMode.PAD_AND_SIGN,
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA_256,
    algorithm: SignatureAlgorithm = SignatureAlgorithm.ECDSA,
) -> CommandApdu:
    data = (
        ref.encode(ObjectKind.PRIVATE_KEY)
        + encode_ber_tlv(Tag.OPERATION_MODE, bytes([mode]))
        + encode_ber_tlv(Tag.HASH, bytes([hash_algorithm]))
        + encode_ber_tlv(Tag.SIGNATURE, bytes([algorithm]))
    )
    return CommandApdu(_cla(channel), Ins.COMPUTE_SIGNATURE_INIT, 0x00, session, data)


def compute_signature_close(*, channel: int, session: int = 1) -> CommandApdu:
    return CommandApdu(_cla(channel), Ins.COMPUTE_SIGNATURE_INIT, 0x01, session)


def compute_signature_update(
    *,
    channel: int,
    session: int = 1,
    final_hash: bytes | None = None,
    data: bytes | None = None,
    last: bool = True,
) -> CommandApdu:
    """Send the final hash (pad-and-sign mode) or a block of data (full-text mode)."""
    if (final_hash is None) == (data is None):
        raise ApduError("COMPUTE SIGNATURE UPDATE carries a final hash or data, exactly one")
    body = (
        encode_ber_tlv(Tag.FINAL_HASH, final_hash)
        if final_hash is not None
        else encode_ber_tlv(Tag.DATA_TO_BE_SIGNED, data or b"")
    )
    return CommandApdu(
        _cla(channel),
        Ins.COMPUTE_SIGNATURE_UPDATE,
        0x80 if last else 0x00,
        session,
        body,
        le=256 if last else None,
    )


def compute_dh(private: ObjectRef, public: ObjectRef, *, channel: int) -> CommandApdu:
    data = private.encode(ObjectKind.PRIVATE_KEY) + public.encode(ObjectKind.PUBLIC_KEY)
    return CommandApdu(_cla(channel), Ins.COMPUTE_DH, 0, 0, data, le=256)


def compute_prf(
    secret: ObjectRef,
    label_and_seed: bytes,
    length: int,
    *,
    channel: int,
    other_secret: bytes | None = None,
) -> CommandApdu:
    """TLS 1.2 PRF-SHA256 (RFC 5246 §5) keyed with the premaster formed from the secret
    container (RFC 4279 §2), over ``label_and_seed``, ``length`` output bytes."""
    if not 1 <= length <= 0xFFFF:
        raise ApduError(f"PRF output length {length} out of range")
    data = secret.encode(ObjectKind.SECRET)
    if other_secret is not None:
        data += encode_ber_tlv(Tag.SECRET, other_secret)
    data += encode_ber_tlv(Tag.LABEL_AND_SEED, label_and_seed)
    data += encode_ber_tlv(Tag.OUTPUT_LENGTH, length.to_bytes(2, "big"))
    return CommandApdu(_cla(channel), Ins.COMPUTE_PRF, 0, 0, data, le=min(length, 65536))


def compute_hkdf(
    secret: ObjectRef, salt: bytes, info: bytes, length: int, *, channel: int
) -> CommandApdu:
    """HKDF-SHA256 (RFC 5869) keyed with the secret container."""
    if not 1 <= length <= 255 * 32:
        raise ApduError(f"HKDF output length {length} out of range")
    data = (
        secret.encode(ObjectKind.SECRET)
        + encode_ber_tlv(Tag.SALT, salt)
        + encode_ber_tlv(Tag.INFO, info)
        + encode_ber_tlv(Tag.OUTPUT_LENGTH, length.to_bytes(2, "big"))
    )
    return CommandApdu(_cla(channel), Ins.COMPUTE_HKDF, 0, 0, data, le=length)


def get_random(length: int, *, channel: int) -> CommandApdu:
    return CommandApdu(_cla(channel), Ins.GET_RANDOM, 0, 0, le=length)


def read_file(ref: ObjectRef, offset: int, length: int, *, channel: int) -> CommandApdu:
    if not 0 <= offset <= 0xFFFF:
        raise ApduError(f"READ FILE offset {offset} out of range")
    return CommandApdu(
        _cla(channel),
        Ins.READ_FILE,
        offset >> 8,
        offset & 0xFF,
        ref.encode(ObjectKind.FILE),
        le=length,
    )


# -- VSE administrative extension (not IoT.05) --------------------------------------------------


def create_object(
    kind: ObjectKind, ident: bytes, *, channel: int, label: bytes | None = None
) -> CommandApdu:
    """CREATE OBJECT (VSE extension): an empty container of ``kind`` with id ``ident``."""
    data = ObjectRef(id=ident).encode(kind)
    if label is not None:
        data += ObjectRef(label=label).encode(kind)
    return CommandApdu(_cla(channel), AdminIns.CREATE_OBJECT, kind.value, 0x00, data)


def put_object(
    kind: ObjectKind, ref: ObjectRef, content: bytes, *, channel: int, block: int = 0xE0
) -> list[CommandApdu]:
    """PUT OBJECT (VSE extension): the blocks writing ``content`` into the container ``ref``;
    each block's data are at most ``block`` bytes (the card commits at the last one)."""
    if kind not in (ObjectKind.PRIVATE_KEY, ObjectKind.FILE, ObjectKind.SECRET):
        raise ApduError(f"PUT OBJECT does not write {kind.name.lower()} containers")
    head = ref.encode(kind)
    overhead = 4  # tag D0 and a length of up to 3 bytes
    if block < len(head) + overhead + 1:
        raise ApduError(f"PUT OBJECT blocks of {block} bytes are too small")
    commands: list[CommandApdu] = []
    offset = 0
    first = True
    while first or offset < len(content):
        room = block - overhead - (len(head) if first else 0)
        chunk = content[offset : offset + room]
        offset += len(chunk)
        last = offset >= len(content)
        data = (head if first else b"") + encode_ber_tlv(Tag.CONTENT, chunk)
        commands.append(
            CommandApdu(
                _cla(channel), AdminIns.PUT_OBJECT, 0x80 if last else 0x00, kind.value, data
            )
        )
        first = False
    return commands


def delete_object(kind: ObjectKind, ref: ObjectRef, *, channel: int) -> CommandApdu:
    """DELETE OBJECT (VSE extension): remove the container ``ref`` and wipe its content."""
    return CommandApdu(_cla(channel), AdminIns.DELETE_OBJECT, kind.value, 0x00, ref.encode(kind))


def psk_premaster(psk: bytes, other_secret: bytes | None = None) -> bytes:
    """The RFC 4279 §2 premaster: ``uint16(len(other)) other uint16(len(psk)) psk``, where the
    other secret of plain PSK is as many zero bytes as the PSK [U: IoT.05 reading]."""
    other = bytes(len(psk)) if other_secret is None else other_secret
    return len(other).to_bytes(2, "big") + other + len(psk).to_bytes(2, "big") + psk


def encode_public_key_data(point: bytes) -> bytes:
    """``34 {49 {86 point}}`` for an uncompressed X9.62 EC point."""
    return encode_ber_tlv(Tag.PUBLIC_KEY_DATA, encode_ber_tlv(0x49, encode_ber_tlv(0x86, point)))


# -- parsers -----------------------------------------------------------------------------------


def _tlvs(data: bytes, what: str) -> list[BerTlv]:
    try:
        return decode_ber_tlvs(data)
    except BerError as exc:
        raise IotSafeError(f"malformed BER-TLV ({exc})", offset=exc.offset, field=what) from None


def _byte(tlv: BerTlv | None, what: str) -> int | None:
    if tlv is None:
        return None
    if len(tlv.value) != 1:
        raise IotSafeError(f"expected 1 byte, got {len(tlv.value)}", offset=tlv.offset, field=what)
    return tlv.value[0]


@dataclass(frozen=True, slots=True)
class AppletInfo:
    """GET DATA P1 00: what the applet supports."""

    version: int | None = None
    applet_id: bytes | None = None
    max_files: int | None = None
    max_private_keys: int | None = None
    max_public_keys: int | None = None
    max_secrets: int | None = None
    max_sessions: int | None = None
    crypto_functions: int = 0
    hash_algorithms: int = 0
    signature_algorithms: int = 0
    key_agreements: int = 0
    key_derivations: int = 0
    #: The VSE administrative extension's version (tag ``DF70``), None on other cards.
    admin_extension: int | None = None

    def supports(self, function: CryptoFunction) -> bool:
        return bool(self.crypto_functions & function)


def parse_applet_info(data: bytes) -> AppletInfo:
    tlvs = _tlvs(data, "applet info")
    byte_fields = {
        Tag.SIM_ALLIANCE_VERSION: "version",
        Tag.MAX_FILES: "max_files",
        Tag.MAX_PRIVATE_KEYS: "max_private_keys",
        Tag.MAX_PUBLIC_KEYS: "max_public_keys",
        Tag.MAX_SECRETS: "max_secrets",
        Tag.MAX_SESSIONS: "max_sessions",
        Tag.CRYPTO_FUNCTIONS_APPLET: "crypto_functions",
        Tag.HASH: "hash_algorithms",
        Tag.SIGNATURE: "signature_algorithms",
        Tag.KEY_AGREEMENT_APPLET: "key_agreements",
        Tag.KEY_DERIVATION: "key_derivations",
        Tag.ADMIN_EXTENSION: "admin_extension",
    }
    values: dict[str, int | bytes | None] = {}
    for tlv in tlvs:
        if tlv.tag == Tag.APPLET_ID:
            values["applet_id"] = tlv.value
        elif tlv.tag in byte_fields:
            values[byte_fields[Tag(tlv.tag)]] = _byte(tlv, f"applet info {tlv.tag:02X}")
    return AppletInfo(
        version=_int_or_none(values.get("version")),
        applet_id=_bytes_or_none(values.get("applet_id")),
        max_files=_int_or_none(values.get("max_files")),
        max_private_keys=_int_or_none(values.get("max_private_keys")),
        max_public_keys=_int_or_none(values.get("max_public_keys")),
        max_secrets=_int_or_none(values.get("max_secrets")),
        max_sessions=_int_or_none(values.get("max_sessions")),
        crypto_functions=_int_or_none(values.get("crypto_functions")) or 0,
        hash_algorithms=_int_or_none(values.get("hash_algorithms")) or 0,
        signature_algorithms=_int_or_none(values.get("signature_algorithms")) or 0,
        key_agreements=_int_or_none(values.get("key_agreements")) or 0,
        key_derivations=_int_or_none(values.get("key_derivations")) or 0,
        admin_extension=_int_or_none(values.get("admin_extension")),
    )


def _int_or_none(value: int | bytes | None) -> int | None:
    return value if isinstance(value, int) else None


def _bytes_or_none(value: int | bytes | None) -> bytes | None:
    return value if isinstance(value, bytes) else None


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A private or public key container (``C1``/``C2``)."""

    kind: ObjectKind
    id: bytes | None = None
    label: bytes | None = None
    state: int | None = None
    key_type: int | None = None
    usage: int | None = None
    access: int | None = None
    crypto_functions: int = 0
    hash_algorithms: int = 0
    signature_algorithms: int = 0
    key_agreements: int = 0

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(id=self.id) if self.id is not None else ObjectRef(label=self.label)


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file container (``C3``)."""

    id: bytes | None = None
    label: bytes | None = None
    state: int | None = None
    size: int | None = None
    usage: int | None = None
    access: int | None = None

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(id=self.id) if self.id is not None else ObjectRef(label=self.label)


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A secret container (``C4``)."""

    id: bytes | None = None
    label: bytes | None = None
    state: int | None = None
    key_type: int | None = None
    access: int | None = None
    crypto_functions: int = 0
    key_derivations: int = 0

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(id=self.id) if self.id is not None else ObjectRef(label=self.label)


@dataclass(frozen=True, slots=True)
class ObjectList:
    private_keys: tuple[KeyInfo, ...] = ()
    public_keys: tuple[KeyInfo, ...] = ()
    files: tuple[FileInfo, ...] = ()
    secrets: tuple[SecretInfo, ...] = ()
    unknown_tags: tuple[int, ...] = field(default=())


def _identity(
    tlvs: list[BerTlv], kind: ObjectKind, where: str
) -> tuple[bytes | None, bytes | None]:
    ident = find_tlv(tlvs, kind.id_tag)
    label = find_tlv(tlvs, kind.label_tag)
    if ident is None and label is None:
        raise IotSafeError("object without id or label", field=where)
    for tlv, limit in ((ident, 20), (label, 60)):
        if tlv is not None and not 1 <= len(tlv.value) <= limit:
            raise IotSafeError(
                f"id/label of {len(tlv.value)} bytes", offset=tlv.offset, field=where
            )
    return (ident.value if ident else None), (label.value if label else None)


def parse_object_info(tlv: BerTlv) -> KeyInfo | FileInfo | SecretInfo:
    """One ``C1``..``C4`` object template."""
    if tlv.tag not in (0xC1, 0xC2, 0xC3, 0xC4):
        raise IotSafeError(
            f"unexpected object tag {tlv.tag:02X}", offset=tlv.offset, field="object list"
        )
    kind = ObjectKind(tlv.tag)
    where = f"{kind.name.lower()} info"
    try:
        inner = tlv.children()
    except BerError as exc:
        raise IotSafeError(f"malformed BER-TLV ({exc})", offset=exc.offset, field=where) from None
    ident, label = _identity(inner, kind, where)

    def one(tag: int) -> int | None:
        return _byte(find_tlv(inner, tag), f"{where} {tag:02X}")

    if kind is ObjectKind.FILE:
        size_tlv = find_tlv(inner, Tag.FILE_SIZE)
        size = None
        if size_tlv is not None:
            if not 1 <= len(size_tlv.value) <= 4:
                raise IotSafeError(
                    "file size of more than 4 bytes", offset=size_tlv.offset, field=where
                )
            size = int.from_bytes(size_tlv.value, "big")
        return FileInfo(
            ident, label, one(Tag.OBJECT_STATE), size, one(Tag.FILE_USAGE), one(Tag.OBJECT_ACCESS)
        )
    if kind is ObjectKind.SECRET:
        return SecretInfo(
            ident,
            label,
            one(Tag.OBJECT_STATE),
            one(Tag.KEY_TYPE),
            one(Tag.OBJECT_ACCESS),
            one(Tag.CRYPTO_FUNCTIONS) or 0,
            one(Tag.KEY_DERIVATION) or 0,
        )
    return KeyInfo(
        kind,
        ident,
        label,
        one(Tag.OBJECT_STATE),
        one(Tag.KEY_TYPE),
        one(Tag.KEY_USAGE),
        one(Tag.OBJECT_ACCESS),
        one(Tag.CRYPTO_FUNCTIONS) or 0,
        one(Tag.HASH) or 0,
        one(Tag.SIGNATURE) or 0,
        one(Tag.KEY_AGREEMENT) or 0,
    )


def parse_object_info_data(data: bytes) -> KeyInfo | FileInfo | SecretInfo:
    """The response of GET DATA P1 C1..C4: exactly one object template."""
    tlvs = _tlvs(data, "object info")
    if len(tlvs) != 1:
        raise IotSafeError(
            f"expected one object template, got {len(tlvs)}", offset=0, field="object info"
        )
    return parse_object_info(tlvs[0])


def parse_object_list(data: bytes) -> ObjectList:
    """GET DATA P1 01: every container."""
    private: list[KeyInfo] = []
    public: list[KeyInfo] = []
    files: list[FileInfo] = []
    secrets: list[SecretInfo] = []
    unknown: list[int] = []
    for tlv in _tlvs(data, "object list"):
        if tlv.tag not in (0xC1, 0xC2, 0xC3, 0xC4):
            unknown.append(tlv.tag)
            continue
        info = parse_object_info(tlv)
        if isinstance(info, FileInfo):
            files.append(info)
        elif isinstance(info, SecretInfo):
            secrets.append(info)
        elif info.kind is ObjectKind.PRIVATE_KEY:
            private.append(info)
        else:
            public.append(info)
    return ObjectList(tuple(private), tuple(public), tuple(files), tuple(secrets), tuple(unknown))


def parse_public_key(data: bytes) -> bytes:
    """The uncompressed EC point of a ``34`` public key data object."""
    tlvs = _tlvs(data, "public key data")
    outer = find_tlv(tlvs, Tag.PUBLIC_KEY_DATA)
    if outer is None:
        raise IotSafeError("no public key data (34)", offset=0, field="public key data")
    value = outer.value
    if value[:1] == b"\x04":
        point = value
    else:
        try:
            inner = outer.children()
            template = find_tlv(inner, 0x49)
            if template is not None:
                inner = template.children()
        except BerError as exc:
            raise IotSafeError(
                f"malformed BER-TLV ({exc})", offset=exc.offset, field="public key data"
            ) from None
        point_tlv = find_tlv(inner, 0x86)
        if point_tlv is None:
            raise IotSafeError("no EC point (86)", offset=outer.offset, field="public key data")
        point = point_tlv.value
    if len(point) < 3 or point[0] != 0x04 or len(point) % 2 == 0:
        raise IotSafeError(
            f"not an uncompressed EC point ({len(point)} bytes)",
            offset=outer.offset,
            field="public key data",
        )
    return point


def parse_signature(data: bytes) -> bytes:
    """The DER ECDSA (or RSA) signature of a ``33`` object."""
    sig = find_tlv(_tlvs(data, "signature"), Tag.COMPUTED_SIGNATURE)
    if sig is None or not sig.value:
        raise IotSafeError("no computed signature (33)", offset=0, field="signature")
    return sig.value


def parse_secret(data: bytes, expected_length: int) -> bytes:
    """A derived secret (COMPUTE DH/PRF/HKDF output) of exactly ``expected_length`` bytes."""
    if len(data) != expected_length:
        raise IotSafeError(
            f"expected {expected_length} bytes, got {len(data)}", offset=0, field="derived secret"
        )
    return bytes(data)
