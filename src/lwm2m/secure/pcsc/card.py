"""Card-level procedures over a ``Transmit`` callable (bytes in, bytes out): the reader knows no
PC/SC, so it runs against pcscd (:class:`~lwm2m.secure.pcsc.transport.PcscTransport`) or any
in-memory card alike.

* :func:`read_smartcard_bootstrap` — LwM2M-TS-Core Appendix G.2 (with the optional Appendix H
  SCP03 channel): read EF.DIR, find the PKCS #15 application, MANAGE CHANNEL open, SELECT the ADF
  by AID on that channel, [INITIALIZE UPDATE + EXTERNAL AUTHENTICATE 33], READ BINARY EF.ODF,
  the DODF it points to, and the EF LwM2M_Bootstrap the OID 2.23.43.9.1 object points to
  (files are selected by path from the MF through the ADF alias ``7FFF``, ETSI TS 102 221
  §8.4.2), then MANAGE CHANNEL close. The result is a frozen :class:`SmartcardBootstrap`, or an
  error: nothing partial is ever returned.
* :func:`read_identification` — SCS-2 identification data: the ICCID (EF.ICCID ``2FE2``,
  TS 102 221 §13.2, BCD with swapped nibbles), and from the issuer security domain (GP Card
  Spec 2.3 §11.3 GET DATA) the CPLC (``9F7F``), Card Recognition Data (``66``, §H.2), IIN
  (``42``), CIN (``45``) and key information (``E0``, §11.3.3.1), plus the IoT SAFE applet
  information when the applet is present.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from lwm2m.model.registry import ModelRegistry
from lwm2m.secure.pcsc import iotsafe
from lwm2m.secure.pcsc.apdu import CommandApdu, ResponseApdu
from lwm2m.secure.pcsc.ber import BerError, BerTlv, decode_ber_tlvs, find_tlv
from lwm2m.secure.pcsc.bootstrap_file import BootstrapData, Layout, parse_bootstrap_file
from lwm2m.secure.pcsc.errors import (
    ApduError,
    CardDataError,
    Pkcs15Error,
    StatusWordError,
    TransportError,
)
from lwm2m.secure.pcsc.iso7816 import (
    MF,
    Fcp,
    Transmit,
    get_data,
    manage_channel_close,
    manage_channel_open,
    parse_fcp,
    parse_manage_channel_open,
    read_binary,
    read_record,
    select_aid,
    select_fid,
    select_path_from_mf,
    transceive,
)
from lwm2m.secure.pcsc.pkcs15 import (
    PKCS15_AID,
    DirApplication,
    OdfKind,
    decode_oid,
    find_bootstrap_object,
    find_pkcs15_application,
    parse_dodf,
    parse_odf,
)
from lwm2m.secure.pcsc.scp03 import Scp03Host, StaticKeys

__all__ = [
    "EF_DIR",
    "EF_ICCID",
    "GP_ISD_AID",
    "Card",
    "CardIdentification",
    "CardRecognitionData",
    "Cplc",
    "IdentificationError",
    "KeyInformation",
    "SmartcardBootstrap",
    "decode_iccid",
    "encode_iccid",
    "luhn_valid",
    "parse_card_recognition_data",
    "parse_cplc",
    "parse_key_information",
    "read_identification",
    "read_smartcard_bootstrap",
]

EF_DIR = 0x2F00
EF_ICCID = 0x2FE2
#: The default AID of the GlobalPlatform issuer security domain.
GP_ISD_AID = bytes.fromhex("A000000151000000")
#: ETSI TS 102 221 §8.4.2: the file id that stands for the current application's ADF.
ADF_ALIAS = b"\x7f\xff"

T = TypeVar("T")


class IdentificationError(CardDataError):
    """Identification data (ICCID, CPLC, card data) that cannot be parsed."""

    structure = "card identification"


class Card:
    """APDU exchanges with one card: response chaining (``61xx``/``6Cxx``), optional SCP03
    protection per channel, logical channels, file selection and reads."""

    def __init__(self, transmit: Transmit, *, read_chunk: int = 0xE0) -> None:
        self._transmit = transmit
        self.read_chunk = read_chunk
        self._scp: dict[int, Scp03Host] = {}

    def exchange(self, command: CommandApdu) -> ResponseApdu:
        """One command, chained to its whole response; protected if its channel has SCP03."""
        scp = self._scp.get(command.channel)
        if scp is not None:
            command = scp.wrap(command)
        response = transceive(self._transmit, command)
        if scp is not None:
            response = scp.unwrap(response)
        return response

    def send(self, command: CommandApdu, name: str, *, allow_warning: bool = False) -> bytes:
        return self.exchange(command).check(name, allow_warning=allow_warning)

    # channels

    def open_channel(self) -> int:
        return parse_manage_channel_open(self.exchange(manage_channel_open()))

    def close_channel(self, channel: int) -> None:
        self._scp.pop(channel, None)
        self.send(manage_channel_close(channel), "MANAGE CHANNEL close")

    def open_secure_channel(
        self,
        keys: StaticKeys,
        *,
        channel: int,
        level: int = 0x33,
        host_challenge: bytes | None = None,
    ) -> Scp03Host:
        """Mutual authentication with the selected application's security domain (SCP03)."""
        host = Scp03Host(keys, level=level, channel=channel, host_challenge=host_challenge)
        host.process_initialize_update(self.exchange(host.initialize_update()))
        host.process_external_authenticate(self.exchange(host.external_authenticate()))
        self._scp[channel] = host
        return host

    # files

    def _fcp(self, data: bytes) -> Fcp | None:
        return parse_fcp(data) if data else None

    def select_aid(self, aid: bytes, *, channel: int = 0) -> Fcp | None:
        return self._fcp(
            self.send(
                select_aid(aid, channel=channel),
                f"SELECT AID {aid.hex().upper()}",
                allow_warning=True,
            )
        )

    def select_mf(self, *, channel: int = 0) -> Fcp | None:
        return self._fcp(
            self.send(select_fid(MF, channel=channel), "SELECT MF", allow_warning=True)
        )

    def select_fid(self, fid: int, *, channel: int = 0) -> Fcp | None:
        return self._fcp(
            self.send(select_fid(fid, channel=channel), f"SELECT {fid:04X}", allow_warning=True)
        )

    def select_path(self, path: bytes, *, channel: int = 0) -> Fcp | None:
        """SELECT by path from the MF; a relative PKCS #15 path goes under the ADF alias."""
        full = path if path[:2] in (b"\x3f\x00", ADF_ALIAS) else ADF_ALIAS + path
        if full[:2] == b"\x3f\x00":
            full = full[2:]
        return self._fcp(
            self.send(
                select_path_from_mf(full, channel=channel),
                f"SELECT path {full.hex().upper()}",
                allow_warning=True,
            )
        )

    def read_binary_all(self, size: int | None, *, channel: int = 0) -> bytes:
        """The whole selected transparent EF: ``size`` bytes (from its FCP), or until the card
        reports the end of the file (``6282``/``6B00``)."""
        out = bytearray()
        limit = size if size is not None else 0x8000
        while len(out) < limit:
            want = min(self.read_chunk, limit - len(out))
            response = self.exchange(read_binary(len(out), want, channel=channel))
            if size is None and response.sw.value in (0x6B00, 0x6A86) and out:
                break
            data = response.check("READ BINARY", allow_warning=True)
            out += data
            if response.sw.value == 0x6282 or not data:
                if size is not None and len(out) < size:
                    raise ApduError(f"file ended at {len(out)} of {size} bytes")
                break
        return bytes(out)

    def read_records(self, count: int | None, *, channel: int = 0) -> list[bytes]:
        records: list[bytes] = []
        number = 1
        while count is None or number <= count:
            response = self.exchange(read_record(number, channel=channel))
            if response.sw.value in (0x6A83, 0x6A82) and count is None:
                break
            records.append(response.check(f"READ RECORD {number}"))
            number += 1
            if number > 254:
                break
        return records

    def get_data(self, tag: int, *, channel: int = 0, cla: int = 0x80) -> bytes | None:
        """GET DATA value of ``tag`` (the response's own TLV wrapper removed), or None when the
        card does not have it (``6A88``/``6A82``/``6A81``/``6D00``)."""
        response = self.exchange(get_data(tag, cla=cla, channel=channel))
        if response.sw.value in (0x6A88, 0x6A82, 0x6A81, 0x6D00, 0x6985):
            return None
        data = response.check(f"GET DATA {tag:04X}")
        try:
            tlvs = decode_ber_tlvs(data)
        except BerError:
            return data
        if len(tlvs) == 1 and tlvs[0].tag == tag:
            return tlvs[0].value
        return data


# -- smartcard bootstrap -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmartcardBootstrap:
    """What :func:`read_smartcard_bootstrap` found: the decoded data and where they came from.

    ``digest`` is the SHA-256 of the file content, so a client can tell at each Register/Update
    whether the card data changed (Core §5.2.3.2) without keeping the secrets around.
    """

    data: BootstrapData
    aid: bytes
    file_path: bytes
    dodf_path: bytes
    label: str | None
    secured: bool
    size: int
    digest: bytes
    private: bool = False

    def __repr__(self) -> str:
        return (
            f"SmartcardBootstrap(aid={self.aid.hex().upper()}, "
            f"file={self.file_path.hex().upper()}, "
            f"{self.size} bytes, layout={self.data.layout.value}, secured={self.secured}, "
            f"objects={sorted(o.object_id for o in self.data)})"
        )


def _read_ef_dir(card: Card) -> list[bytes]:
    card.select_mf()
    fcp = card.select_fid(EF_DIR)
    if fcp is not None and fcp.is_transparent:
        return [card.read_binary_all(fcp.size)]
    return card.read_records(fcp.record_count if fcp is not None else None)


def _find_application(card: Card) -> DirApplication:
    try:
        records = _read_ef_dir(card)
    except StatusWordError as exc:
        if exc.sw == 0x6A82:  # no EF.DIR: fall back to the default PKCS #15 AID
            return DirApplication(PKCS15_AID)
        raise
    app = find_pkcs15_application(records)
    if app is None:
        raise Pkcs15Error("EF.DIR has no PKCS#15 application template", field="EF.DIR")
    return app


def read_smartcard_bootstrap(
    transmit: Transmit,
    *,
    scp03_keys: StaticKeys | None = None,
    registry: ModelRegistry | None = None,
    layout: Layout = Layout.AUTO,
    host_challenge: bytes | None = None,
) -> SmartcardBootstrap:
    """Run the Appendix G.2 procedure (with Appendix H when ``scp03_keys`` are given) and return
    the decoded bootstrap data. Raises a :class:`~lwm2m.secure.pcsc.errors.PcscError`:
    ``Pkcs15Error``/``BootstrapFileError`` for bad card data, ``StatusWordError`` for refused
    commands, ``Scp03Error`` for the secure channel, ``TransportError`` when the card goes away.
    """
    card = Card(transmit)
    app = _find_application(card)
    channel = card.open_channel()
    try:
        card.select_aid(app.aid, channel=channel)
        if scp03_keys is not None:
            card.open_secure_channel(scp03_keys, channel=channel, host_challenge=host_challenge)
        fcp = card.select_path(b"\x50\x31", channel=channel)
        odf = card.read_binary_all(fcp.size if fcp else None, channel=channel)
        dodf_paths = [e.path for e in parse_odf(odf) if e.kind is OdfKind.DATA_OBJECTS]
        if not dodf_paths:
            raise Pkcs15Error("EF.ODF points to no DODF (dataObjects, A7)", field="EF.ODF")
        for dodf_path in dodf_paths:  # in priority order (Appendix G.1)
            fcp = card.select_path(dodf_path, channel=channel)
            dodf = card.read_binary_all(fcp.size if fcp else None, channel=channel)
            found = find_bootstrap_object(parse_dodf(dodf))
            if found is not None and found.path is not None:
                break
        else:
            raise Pkcs15Error("no DODF holds a data object with OID 2.23.43.9.1", field="EF.DODF")
        fcp = card.select_path(found.path, channel=channel)
        content = card.read_binary_all(fcp.size if fcp else None, channel=channel)
        data = parse_bootstrap_file(content, registry=registry, layout=layout)
        result = SmartcardBootstrap(
            data=data,
            aid=app.aid,
            file_path=found.path,
            dodf_path=dodf_path,
            label=found.label or found.application_name,
            secured=scp03_keys is not None,
            size=len(content),
            digest=hashlib.sha256(content).digest(),
            private=found.private,
        )
    except BaseException:
        _close_quietly(card, channel)
        raise
    card.close_channel(channel)
    return result


def _close_quietly(card: Card, channel: int) -> None:
    try:
        card.close_channel(channel)
    except (TransportError, StatusWordError, ApduError):
        pass
    except Exception:
        pass


# -- identification ----------------------------------------------------------------------------


def decode_iccid(raw: bytes) -> str:
    """The digits of EF.ICCID: BCD with swapped nibbles, ``F`` padded (ITU-T E.118).

    >>> decode_iccid(bytes.fromhex("984900000000000000F1"))
    '8994000000000000001'
    """
    digits: list[str] = []
    for offset, byte in enumerate(raw):
        for nibble in (byte & 0x0F, byte >> 4):
            if nibble == 0xF:
                if any(b != 0xFF for b in raw[offset + 1 :]):
                    raise IdentificationError(
                        "digits after the F filler", offset=offset, field="ICCID"
                    )
                return "".join(digits)
            if nibble > 9:
                raise IdentificationError(
                    f"nibble {nibble:X} is not a digit", offset=offset, field="ICCID"
                )
            digits.append(str(nibble))
    return "".join(digits)


def encode_iccid(digits: str) -> bytes:
    """The EF.ICCID bytes of ``digits`` (at most 20), ``F`` padded to 10 bytes."""
    if not digits.isdigit() or len(digits) > 20:
        raise ValueError("an ICCID is up to 20 decimal digits")
    padded = digits + "F" * (20 - len(digits))
    return bytes(int(padded[i + 1] + padded[i], 16) for i in range(0, 20, 2))


def luhn_valid(digits: str) -> bool:
    """Whether the last digit is the Luhn check digit of the others (ISO/IEC 7812-1)."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_CPLC_FIELDS = (
    ("ic_fabricator", 2),
    ("ic_type", 2),
    ("os_id", 2),
    ("os_release_date", 2),
    ("os_release_level", 2),
    ("ic_fabrication_date", 2),
    ("ic_serial_number", 4),
    ("ic_batch_id", 2),
    ("ic_module_fabricator", 2),
    ("ic_module_packaging_date", 2),
    ("icc_manufacturer", 2),
    ("ic_embedding_date", 2),
    ("ic_pre_personalizer", 2),
    ("ic_pre_personalization_date", 2),
    ("ic_pre_personalization_equipment_id", 4),
    ("ic_personalizer", 2),
    ("ic_personalization_date", 2),
    ("ic_personalization_equipment_id", 4),
)


@dataclass(frozen=True, slots=True)
class Cplc:
    """Card Production Life Cycle data (GET DATA ``9F7F``): 18 fields in 42 bytes, as in
    GlobalPlatformPro's CPLC table. Dates are ``YDDD`` BCD (year digit, day of year)."""

    ic_fabricator: bytes
    ic_type: bytes
    os_id: bytes
    os_release_date: bytes
    os_release_level: bytes
    ic_fabrication_date: bytes
    ic_serial_number: bytes
    ic_batch_id: bytes
    ic_module_fabricator: bytes
    ic_module_packaging_date: bytes
    icc_manufacturer: bytes
    ic_embedding_date: bytes
    ic_pre_personalizer: bytes
    ic_pre_personalization_date: bytes
    ic_pre_personalization_equipment_id: bytes
    ic_personalizer: bytes
    ic_personalization_date: bytes
    ic_personalization_equipment_id: bytes

    def as_hex(self) -> dict[str, str]:
        return {name: getattr(self, name).hex().upper() for name, _ in _CPLC_FIELDS}

    def encode(self) -> bytes:
        return b"".join(getattr(self, name) for name, _ in _CPLC_FIELDS)


def parse_cplc(data: bytes) -> Cplc:
    """The 42 CPLC bytes, with or without their ``9F 7F 2A`` header."""
    raw = bytes(data)
    if raw[:2] == b"\x9f\x7f":
        if len(raw) < 3 or raw[2] != len(raw) - 3:
            raise IdentificationError("9F7F length does not match", offset=2, field="CPLC")
        raw = raw[3:]
    if len(raw) != 42:
        raise IdentificationError(f"CPLC of {len(raw)} bytes, expected 42", offset=0, field="CPLC")
    values: dict[str, bytes] = {}
    pos = 0
    for name, width in _CPLC_FIELDS:
        values[name] = raw[pos : pos + width]
        pos += width
    return Cplc(**values)


_GP_OID = "1.2.840.114283"


@dataclass(frozen=True, slots=True)
class CardRecognitionData:
    """Card Recognition Data (GET DATA ``66``, GP Card Spec 2.3 §H.2)."""

    gp_version: str | None = None
    card_id_scheme: str | None = None
    #: (SCP identifier, i parameter) pairs, e.g. ``(3, 0x70)``.
    secure_channels: tuple[tuple[int, int], ...] = ()
    configuration: bytes | None = None
    chip_details: bytes | None = None


def _oid_inside(tlv: BerTlv | None) -> str | None:
    if tlv is None:
        return None
    oid = find_tlv(tlv.children(), 0x06)
    return decode_oid(oid.value, offset=oid.value_offset) if oid is not None else None


def _ident_errors(func: Callable[[], T], field: str) -> T:
    try:
        return func()
    except BerError as exc:
        raise IdentificationError(
            f"malformed BER-TLV ({exc})", offset=exc.offset, field=field
        ) from None
    except Pkcs15Error as exc:  # decode_oid
        raise IdentificationError(str(exc), offset=exc.offset, field=field) from None


def parse_card_recognition_data(data: bytes) -> CardRecognitionData:
    def parse() -> CardRecognitionData:
        tlvs = decode_ber_tlvs(data)
        if len(tlvs) == 1 and tlvs[0].tag == 0x66:
            tlvs = tlvs[0].children()
        template = find_tlv(tlvs, 0x73)
        if template is None:
            raise IdentificationError(
                "no Card Recognition Data template (73)", offset=0, field="card data"
            )
        inner = template.children()
        version_oid = _oid_inside(find_tlv(inner, 0x60))
        version = None
        if version_oid and version_oid.startswith(_GP_OID + ".2."):
            version = version_oid[len(_GP_OID) + 3 :]
        scps: list[tuple[int, int]] = []
        for tlv in inner:
            if tlv.tag == 0x64:
                oid = find_tlv(tlv.children(), 0x06)
                if oid is not None and oid.value.startswith(bytes.fromhex("2A864886FC6B04")):
                    tail = oid.value[7:]
                    if len(tail) >= 2:
                        scps.append((tail[0], tail[1]))
        config = find_tlv(inner, 0x65)
        chip = find_tlv(inner, 0x66)
        return CardRecognitionData(
            gp_version=version,
            card_id_scheme=_oid_inside(find_tlv(inner, 0x63)),
            secure_channels=tuple(scps),
            configuration=config.value if config else None,
            chip_details=chip.value if chip else None,
        )

    return _ident_errors(parse, "card data")


@dataclass(frozen=True, slots=True)
class KeyInformation:
    """One key of the Key Information Template (GET DATA ``E0``): id, version, type, length."""

    kid: int
    kvn: int
    key_type: int
    length: int


def parse_key_information(data: bytes) -> tuple[KeyInformation, ...]:
    def parse() -> tuple[KeyInformation, ...]:
        tlvs = decode_ber_tlvs(data)
        if len(tlvs) == 1 and tlvs[0].tag == 0xE0:
            tlvs = tlvs[0].children()
        keys = []
        for tlv in tlvs:
            if tlv.tag != 0xC0:
                continue
            v = tlv.value
            if len(v) < 4:
                raise IdentificationError(
                    "key information shorter than 4 bytes",
                    offset=tlv.offset,
                    field="key information",
                )
            keys.append(KeyInformation(v[0], v[1], v[2], v[3]))
        return tuple(keys)

    return _ident_errors(parse, "key information")


@dataclass(frozen=True, slots=True)
class CardIdentification:
    """SCS-2 identification data of a card, as read from it."""

    atr: bytes
    iccid: str | None = None
    cplc: Cplc | None = None
    card_data: CardRecognitionData | None = None
    iin: bytes | None = None
    cin: bytes | None = None
    key_information: tuple[KeyInformation, ...] = ()
    iot_safe: iotsafe.AppletInfo | None = None

    @property
    def iccid_valid(self) -> bool:
        return self.iccid is not None and luhn_valid(self.iccid)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (hex strings), for display and for the SC object."""
        out: dict[str, Any] = {"atr": self.atr.hex().upper()}
        if self.iccid is not None:
            out["iccid"] = self.iccid
        if self.cplc is not None:
            out["cplc"] = self.cplc.as_hex()
        if self.card_data is not None:
            out["gp_version"] = self.card_data.gp_version
            out["secure_channels"] = [
                f"SCP{s:02X} i={i:02X}" for s, i in self.card_data.secure_channels
            ]
        if self.iin is not None:
            out["iin"] = self.iin.hex().upper()
        if self.cin is not None:
            out["cin"] = self.cin.hex().upper()
        if self.key_information:
            out["keys"] = [
                f"KID {k.kid:02X} KVN {k.kvn:02X} type {k.key_type:02X} {k.length} bytes"
                for k in self.key_information
            ]
        if self.iot_safe is not None:
            out["iot_safe_applet_id"] = (self.iot_safe.applet_id or b"").hex().upper()
        return out


def _optional(func: Callable[[], T]) -> T | None:
    """Run a read that a card may legitimately not support."""
    try:
        return func()
    except StatusWordError:
        return None


def read_identification(
    transmit: Transmit, *, atr: bytes = b"", isd_aid: bytes = GP_ISD_AID
) -> CardIdentification:
    """Read the identification data of the card; fields the card does not offer are None."""
    card = Card(transmit)

    def iccid() -> str:
        card.select_mf()
        fcp = card.select_fid(EF_ICCID)
        return decode_iccid(card.read_binary_all(fcp.size if fcp and fcp.size else 10))

    iccid_value = _optional(iccid)
    cplc = card_data = iin = cin = None
    keys: tuple[KeyInformation, ...] = ()
    if _selected(card, isd_aid):
        raw_cplc = card.get_data(0x9F7F)
        cplc = parse_cplc(raw_cplc) if raw_cplc is not None else None
        raw_cd = card.get_data(0x0066)
        card_data = parse_card_recognition_data(raw_cd) if raw_cd is not None else None
        iin = card.get_data(0x0042)
        cin = card.get_data(0x0045)
        raw_keys = card.get_data(0x00E0)
        keys = parse_key_information(raw_keys) if raw_keys is not None else ()
    applet = _optional(lambda: _iot_safe_info(card))
    return CardIdentification(atr, iccid_value, cplc, card_data, iin, cin, keys, applet)


def _selected(card: Card, aid: bytes) -> bool:
    """Whether the card has (and selected) the application ``aid``."""
    response = card.exchange(select_aid(aid))
    return response.sw.is_success or response.sw.is_warning


def _iot_safe_info(card: Card) -> iotsafe.AppletInfo:
    channel = card.open_channel()
    try:
        card.send(iotsafe.select_applet(channel=channel), "SELECT IoT SAFE")
        return iotsafe.parse_applet_info(
            card.send(iotsafe.get_applet_info(channel=channel), "IoT SAFE GET DATA")
        )
    finally:
        _close_quietly(card, channel)
