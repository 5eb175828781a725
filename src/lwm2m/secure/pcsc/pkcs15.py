"""PKCS #15 / ISO/IEC 7816-15 structures that lead to the LwM2M bootstrap data: EF.DIR
application templates (ISO/IEC 7816-4 §8.2.1.1, ETSI TS 102 221 §13.1), EF.ODF (PKCS #15 v1.1
§5.5.1) and EF.DODF (§6.7), as LwM2M-TS-Core Appendix G.1-G.3.2 uses them.

* EF.DIR records hold application templates ``61 {4F AID, 50 label, 51 path}``; the PKCS #15
  application has the AID ``A0 00 00 00 63 50 4B 43 53 2D 31 35`` ("...PKCS-15").
* EF.ODF (default file id ``5031``) is a sequence of ``PKCS15Objects`` choices, context tags
  ``A0``..``A8``; ``A7`` (dataObjects) points to a DODF through a ``PKCS15Path``
  (``30 {04 path [02 index 80 length]}``).
* EF.DODF lists data objects: ``30`` opaqueDO, ``A0`` externalIDO, ``A1`` oidDO; each is
  ``{CommonObjectAttributes 30, CommonDataObjectAttributes 30, [0] subclass, [1] type}``.
  The LwM2M bootstrap object is the oidDO whose ``id`` is OID 2.23.43.9.1 (DER
  ``06 04 67 2B 09 01``). The spec's own example wraps the OID once more (``06 06 06 04 67 2B
  09 01``, as Nordic's nrf ``pkcs15_decode.c`` and AVSystem's Anjay note), so both encodings are
  accepted; so is an opaque object whose ``applicationOID`` is that OID (Appendix G.3.2 names
  CommonDataObjectAttributes.applicationOID). The ``[1]`` type attributes come implicitly tagged
  (``A1 {06 oid, 30 path}``) or, as in the spec example, wrapping the sequence
  (``A1 {30 {06 oid, 30 path}}``); both are read.

Parsers raise only :class:`~lwm2m.secure.pcsc.errors.Pkcs15Error`, naming the byte offset and
the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from lwm2m.secure.pcsc.ber import BerError, BerTlv, decode_ber_tlvs, encode_ber_tlv
from lwm2m.secure.pcsc.errors import Pkcs15Error

__all__ = [
    "LWM2M_BOOTSTRAP_OID",
    "PKCS15_AID",
    "DataObject",
    "DataObjectKind",
    "DirApplication",
    "OdfEntry",
    "OdfKind",
    "decode_oid",
    "encode_dodf_oid_do",
    "encode_odf",
    "encode_oid",
    "find_bootstrap_object",
    "find_pkcs15_application",
    "parse_dir_record",
    "parse_dodf",
    "parse_odf",
]

#: The PKCS #15 application identifier (RID A000000063, PIX "PKCS-15").
PKCS15_AID = bytes.fromhex("A000000063504B43532D3135")
#: OID of the LwM2M bootstrap data object (LwM2M-TS-Core Appendix G).
LWM2M_BOOTSTRAP_OID = "2.23.43.9.1"
_BOOTSTRAP_OID_DER = bytes.fromhex("672B0901")
_BOOTSTRAP_OID_MISENCODED = bytes.fromhex("0604672B0901")


def _wrap(exc: BerError, field: str) -> Pkcs15Error:
    return Pkcs15Error(f"malformed BER-TLV ({exc})", offset=exc.offset, field=field)


# -- OIDs --------------------------------------------------------------------------------------


def decode_oid(content: bytes, *, offset: int = 0) -> str:
    """The dotted form of DER OID content bytes (X.690 §8.19).

    >>> decode_oid(bytes.fromhex("672B0901"))
    '2.23.43.9.1'
    """
    if not content:
        raise Pkcs15Error("empty OBJECT IDENTIFIER", offset=offset, field="OID")
    arcs: list[int] = []
    value = 0
    for i, byte in enumerate(content):
        if value == 0 and byte == 0x80:
            raise Pkcs15Error("OID arc with a leading 80 byte", offset=offset + i, field="OID")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if content[-1] & 0x80:
        raise Pkcs15Error("OID ends inside an arc", offset=offset + len(content) - 1, field="OID")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def encode_oid(dotted: str) -> bytes:
    """DER content bytes of a dotted OID.

    >>> encode_oid("2.23.43.9.1").hex()
    '672b0901'
    """
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"invalid OID {dotted!r}")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


# -- EF.DIR ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DirApplication:
    """An application template of EF.DIR."""

    aid: bytes
    label: str | None = None
    path: bytes | None = None

    @property
    def is_pkcs15(self) -> bool:
        return self.aid.startswith(PKCS15_AID)


def parse_dir_record(record: bytes, *, offset: int = 0) -> DirApplication | None:
    """One EF.DIR record: an application template ``61``, or None for an empty (all-FF) record."""
    try:
        tlvs = decode_ber_tlvs(record, base_offset=offset, padding=True)
    except BerError as exc:
        raise _wrap(exc, "EF.DIR record") from None
    if not tlvs:
        return None
    template = tlvs[0]
    if template.tag != 0x61 or len(tlvs) != 1:
        raise Pkcs15Error(
            f"expected one application template (tag 61), got tag {template.tag:X}",
            offset=template.offset,
            field="EF.DIR record",
        )
    try:
        fields = template.children()
    except BerError as exc:
        raise _wrap(exc, "EF.DIR application template") from None
    aid = label = path = None
    for tlv in fields:
        match tlv.tag:
            case 0x4F:
                if not 1 <= len(tlv.value) <= 16:
                    raise Pkcs15Error(
                        f"AID of {len(tlv.value)} bytes", offset=tlv.offset, field="EF.DIR 4F"
                    )
                aid = tlv.value
            case 0x50:
                label = tlv.value.decode("utf-8", "replace")
            case 0x51:
                path = tlv.value
            case _:
                pass
    if aid is None:
        raise Pkcs15Error(
            "application template without AID (4F)", offset=template.offset, field="EF.DIR record"
        )
    return DirApplication(aid, label, path)


def find_pkcs15_application(
    records: Iterable[bytes], *, record_size: int | None = None
) -> DirApplication | None:
    """The PKCS #15 application among EF.DIR ``records`` (offsets counted as in the file)."""
    for index, record in enumerate(records):
        app = parse_dir_record(record, offset=index * (record_size or len(record)))
        if app is not None and app.is_pkcs15:
            return app
    return None


# -- EF.ODF ------------------------------------------------------------------------------------


class OdfKind(IntEnum):
    """The PKCS15Objects choices of EF.ODF (context tags A0..A8)."""

    PRIVATE_KEYS = 0xA0
    PUBLIC_KEYS = 0xA1
    TRUSTED_PUBLIC_KEYS = 0xA2
    SECRET_KEYS = 0xA3
    CERTIFICATES = 0xA4
    TRUSTED_CERTIFICATES = 0xA5
    USEFUL_CERTIFICATES = 0xA6
    DATA_OBJECTS = 0xA7
    AUTH_OBJECTS = 0xA8


@dataclass(frozen=True, slots=True)
class OdfEntry:
    kind: OdfKind
    path: bytes


def _pull_path(tlv: BerTlv, field: str) -> bytes:
    """The ``path`` OCTET STRING of a ``PKCS15Path`` SEQUENCE."""
    if tlv.tag != 0x30:
        raise Pkcs15Error(
            f"expected a Path SEQUENCE (30), got tag {tlv.tag:X}", offset=tlv.offset, field=field
        )
    try:
        parts = tlv.children()
    except BerError as exc:
        raise _wrap(exc, field) from None
    if not parts or parts[0].tag != 0x04:
        raise Pkcs15Error("Path without its OCTET STRING (04)", offset=tlv.offset, field=field)
    path = parts[0].value
    if not path or len(path) % 2:
        raise Pkcs15Error(
            f"path of {len(path)} bytes is not a sequence of file ids",
            offset=parts[0].offset,
            field=field,
        )
    return path


def parse_odf(data: bytes) -> list[OdfEntry]:
    """The entries of EF.ODF that point to files by path (``objects`` given inline are skipped).

    >>> parse_odf(bytes.fromhex("A706300404026430"))[0].path.hex()
    '6430'
    """
    try:
        tlvs = decode_ber_tlvs(data, padding=True)
    except BerError as exc:
        raise _wrap(exc, "EF.ODF") from None
    entries: list[OdfEntry] = []
    for tlv in tlvs:
        if tlv.tag not in OdfKind.__members__.values():
            continue  # a future PKCS15Objects choice
        kind = OdfKind(tlv.tag)
        try:
            inner = tlv.children()
        except BerError as exc:
            raise _wrap(exc, f"EF.ODF {kind.name.lower()}") from None
        if not inner:
            raise Pkcs15Error("empty ODF entry", offset=tlv.offset, field=f"EF.ODF {kind.name}")
        if inner[0].tag == 0x30:
            entries.append(OdfEntry(kind, _pull_path(inner[0], f"EF.ODF {kind.name} path")))
    return entries


def encode_odf(entries: Sequence[OdfEntry]) -> bytes:
    return b"".join(
        encode_ber_tlv(e.kind, encode_ber_tlv(0x30, encode_ber_tlv(0x04, e.path))) for e in entries
    )


# -- EF.DODF -----------------------------------------------------------------------------------


class DataObjectKind(IntEnum):
    """The PKCS15Data choices of a DODF."""

    OPAQUE = 0x30
    EXTERNAL = 0xA0
    OID = 0xA1


@dataclass(frozen=True, slots=True)
class DataObject:
    """One data object of a DODF."""

    kind: DataObjectKind
    offset: int
    label: str | None = None
    private: bool = False
    modifiable: bool = False
    application_name: str | None = None
    application_oid: str | None = None
    #: For an oidDO: the dotted ``id``; ``misencoded_oid`` when it came wrapped in ``06 04``.
    oid: str | None = None
    misencoded_oid: bool = False
    path: bytes | None = None

    @property
    def is_lwm2m_bootstrap(self) -> bool:
        return LWM2M_BOOTSTRAP_OID in (self.oid, self.application_oid)


def _text(tlv: BerTlv) -> str:
    return tlv.value.decode("utf-8", "replace")


def _flags(tlv: BerTlv, field: str) -> tuple[bool, bool]:
    """PKCS #15 CommonObjectAttributes.flags BIT STRING: bit 0 private, bit 1 modifiable."""
    if not tlv.value or tlv.value[0] > 7:
        raise Pkcs15Error("invalid BIT STRING", offset=tlv.offset, field=field)
    bits = tlv.value[1] if len(tlv.value) > 1 else 0
    return bool(bits & 0x80), bool(bits & 0x40)


def _parse_oid_value(content: BerTlv, field: str) -> tuple[str, bool, bytes | None]:
    """``{06 oid, value}`` of a PKCS15OidDO: the OID, whether it was wrapped, and the path."""
    try:
        parts = content.children()
    except BerError as exc:
        raise _wrap(exc, field) from None
    if not parts or parts[0].tag != 0x06:
        raise Pkcs15Error("oidDO without its OBJECT IDENTIFIER", offset=content.offset, field=field)
    raw = parts[0].value
    misencoded = False
    if raw == _BOOTSTRAP_OID_MISENCODED:
        raw, misencoded = _BOOTSTRAP_OID_DER, True
    oid = decode_oid(raw, offset=parts[0].value_offset)
    path = None
    if len(parts) > 1 and parts[1].tag == 0x30:
        path = _pull_path(parts[1], field + " value")
    return oid, misencoded, path


def _parse_data_object(tlv: BerTlv) -> DataObject:
    kind = DataObjectKind(tlv.tag)
    field = f"EF.DODF {kind.name.lower()} data object"
    try:
        parts = tlv.children()
    except BerError as exc:
        raise _wrap(exc, field) from None
    if len(parts) < 2 or parts[0].tag != 0x30 or parts[1].tag != 0x30:
        raise Pkcs15Error(
            "expected common and class attribute sequences", offset=tlv.offset, field=field
        )
    label = None
    private = modifiable = False
    try:
        for attr in parts[0].children():
            if attr.tag == 0x0C:
                label = _text(attr)
            elif attr.tag == 0x03:
                private, modifiable = _flags(attr, field + " flags")
        app_name = app_oid = None
        for attr in parts[1].children():
            if attr.tag == 0x0C:
                app_name = _text(attr)
            elif attr.tag == 0x06:
                app_oid = decode_oid(attr.value, offset=attr.value_offset)
    except BerError as exc:
        raise _wrap(exc, field + " attributes") from None
    type_attrs = next((p for p in parts[2:] if p.tag == 0xA1), None)
    if type_attrs is None and kind is DataObjectKind.OID:
        raise Pkcs15Error("oidDO without its type attributes [1]", offset=tlv.offset, field=field)
    oid = None
    misencoded = False
    path = None
    if type_attrs is not None:
        try:
            inner = type_attrs.children()
        except BerError as exc:
            raise _wrap(exc, field + " type attributes") from None
        if kind is DataObjectKind.OID:
            if inner and inner[0].tag == 0x30:  # [1] wrapping the PKCS15OidDO sequence
                oid, misencoded, path = _parse_oid_value(inner[0], field)
            else:  # implicitly tagged: [1] {06 oid, value}
                oid, misencoded, path = _parse_oid_value(type_attrs, field)
        elif inner and inner[0].tag == 0x30:
            path = _pull_path(inner[0], field + " value")
    return DataObject(
        kind,
        tlv.offset,
        label=label,
        private=private,
        modifiable=modifiable,
        application_name=app_name,
        application_oid=app_oid,
        oid=oid,
        misencoded_oid=misencoded,
        path=path,
    )


def parse_dodf(data: bytes) -> list[DataObject]:
    """The data objects of an EF.DODF, in file order."""
    try:
        tlvs = decode_ber_tlvs(data, padding=True)
    except BerError as exc:
        raise _wrap(exc, "EF.DODF") from None
    return [_parse_data_object(t) for t in tlvs if t.tag in (0x30, 0xA0, 0xA1)]


def find_bootstrap_object(objects: Iterable[DataObject]) -> DataObject | None:
    """The first data object marked with OID 2.23.43.9.1 that has a path."""
    for obj in objects:
        if obj.is_lwm2m_bootstrap and obj.path is not None:
            return obj
    return None


def encode_dodf_oid_do(
    path: bytes,
    *,
    label: str = "LwM2M Bootstrap",
    misencoded_oid: bool = False,
    private: bool = False,
) -> bytes:
    """An oidDO pointing to ``path``, laid out like the spec example: empty or flagged common
    attributes, the label as applicationName, and ``[1]`` wrapping the PKCS15OidDO sequence.
    ``misencoded_oid`` reproduces the example's ``06 06 06 04 67 2B 09 01``."""
    oid = _BOOTSTRAP_OID_MISENCODED if misencoded_oid else _BOOTSTRAP_OID_DER
    common = encode_ber_tlv(0x03, bytes([0x07, 0x80])) if private else b""
    body = (
        encode_ber_tlv(0x30, common)
        + encode_ber_tlv(0x30, encode_ber_tlv(0x0C, label.encode()))
        + encode_ber_tlv(
            0xA1,
            encode_ber_tlv(
                0x30,
                encode_ber_tlv(0x06, oid) + encode_ber_tlv(0x30, encode_ber_tlv(0x04, path)),
            ),
        )
    )
    return encode_ber_tlv(0xA1, body)
