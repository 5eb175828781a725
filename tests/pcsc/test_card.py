"""The Appendix G read procedure against a scripted card built from the nRF transcript of the
spec example, its error paths, and the SCS-2 identification parsers (ICCID, CPLC, card data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lwm2m.secure.pcsc.apdu import CommandApdu
from lwm2m.secure.pcsc.ber import encode_ber_tlv
from lwm2m.secure.pcsc.card import (
    Card,
    IdentificationError,
    decode_iccid,
    encode_iccid,
    luhn_valid,
    parse_card_recognition_data,
    parse_cplc,
    parse_key_information,
    read_identification,
    read_smartcard_bootstrap,
)
from lwm2m.secure.pcsc.errors import ApduError, Pkcs15Error, StatusWordError
from lwm2m.secure.pcsc.pkcs15 import PKCS15_AID, encode_dodf_oid_do, encode_oid

VECTORS = Path(__file__).parents[1] / "vectors" / "pcsc"
NRF = json.loads((VECTORS / "nrf_pkcs15.json").read_text())
CPLC = json.loads((VECTORS / "cplc_safenet.json").read_text())


class ScriptedUicc:
    """A minimal card answering the Appendix G commands from the nRF example data (a test
    double: the real card under test is the VSE, reached through pcscd in tests/vse)."""

    def __init__(self, files: dict[int, bytes], *, ef_dir: list[bytes] | None = None) -> None:
        self.files = files
        self.ef_dir = ef_dir
        self.current: int | None = None
        self.sent: list[str] = []
        self.channels = {0}

    def __call__(self, raw: bytes) -> bytes:
        self.sent.append(raw.hex().upper())
        cmd = CommandApdu.decode(raw)
        if cmd.ins == 0x70:
            if cmd.p1 == 0:
                self.channels.add(1)
                return b"\x01\x90\x00"
            self.channels.discard(cmd.p2)
            return b"\x90\x00"
        if cmd.ins == 0xA4:
            if cmd.p1 == 0x04:
                if cmd.data != PKCS15_AID:
                    return b"\x6a\x82"
                return bytes.fromhex(NRF["select_pkcs15"]["response"])
            fid = int.from_bytes(cmd.data[-2:], "big")
            if fid == 0x3F00:
                return b"\x90\x00"
            if fid == 0x2F00 and self.ef_dir is not None:
                self.current = fid
                return b"\x90\x00"
            if fid not in self.files:
                return b"\x6a\x82"
            self.current = fid
            size = len(self.files[fid]).to_bytes(2, "big").hex()
            return (
                bytes.fromhex(
                    f"621682024121 8302{fid:04X} 8A0105 8B036F0602 8002{size} 8800".replace(" ", "")
                )
                + b"\x90\x00"
            )
        if cmd.ins == 0xB2 and self.ef_dir is not None:
            if cmd.p1 > len(self.ef_dir):
                return b"\x6a\x83"
            return self.ef_dir[cmd.p1 - 1] + b"\x90\x00"
        if cmd.ins == 0xB0 and self.current in self.files:
            data = self.files[self.current]
            offset = (cmd.p1 << 8) | cmd.p2
            return data[offset : offset + (cmd.le or 256)] + b"\x90\x00"
        return b"\x6d\x00"


def nrf_files(**overrides: bytes) -> dict[int, bytes]:
    files = {
        0x5031: bytes.fromhex(NRF["odf"]) + b"\xff" * 24,
        0x6430: bytes.fromhex(NRF["dodf"]) + b"\xff" * 20,
        0x6432: bytes.fromhex(NRF["bootstrap"]),
    }
    files.update({int(k[1:], 16): v for k, v in overrides.items()})
    return files


def test_appendix_g_flow_matches_the_nrf_transcript() -> None:
    card = ScriptedUicc(nrf_files())
    result = read_smartcard_bootstrap(card)
    (instance,) = result.data[0].instances.values()
    assert instance.resources[0].value == NRF["bootstrap_uri"]
    # after EF.DIR is found missing, the commands are those of the nRF transcript
    for step in ("open_channel", "select_pkcs15", "select_odf", "select_dodf"):
        assert NRF[step]["command"] in card.sent
    assert card.sent[-1] == "00708001"
    assert card.channels == {0}
    assert result.label == "LwM2M Bootstrap"
    assert result.dodf_path == b"\x64\x30"


def test_ef_dir_with_records() -> None:
    template = encode_ber_tlv(0x61, encode_ber_tlv(0x4F, PKCS15_AID))
    card = ScriptedUicc(nrf_files(), ef_dir=[b"\xff" * 10, template])
    assert read_smartcard_bootstrap(card).aid == PKCS15_AID
    card = ScriptedUicc(
        nrf_files(), ef_dir=[encode_ber_tlv(0x61, encode_ber_tlv(0x4F, b"\xa0\x01"))]
    )
    with pytest.raises(Pkcs15Error, match="no PKCS#15 application"):
        read_smartcard_bootstrap(card)


@pytest.mark.parametrize(
    ("files", "error", "match"),
    [
        (nrf_files(f5031=b"\xa0\x06\x30\x04\x04\x02\x64\x30"), Pkcs15Error, "no DODF"),
        (
            nrf_files(
                f6430=encode_dodf_oid_do(b"\x64\x32").replace(
                    b"\x67\x2b\x09\x01", b"\x67\x2b\x09\x02"
                )
            ),
            Pkcs15Error,
            "2.23.43.9.1",
        ),
        (nrf_files(f6432=b"\x00\x01\x00\x05\x00"), Exception, "EF LwM2M_Bootstrap"),
        ({0x5031: bytes.fromhex(NRF["odf"])}, StatusWordError, "6A82"),
    ],
)
def test_errors_close_the_channel(
    files: dict[int, bytes], error: type[Exception], match: str
) -> None:
    card = ScriptedUicc(files)
    with pytest.raises(error, match=match):
        read_smartcard_bootstrap(card)
    assert card.sent[-1] == "00708001"
    assert card.channels == {0}


def test_card_helpers() -> None:
    card = Card(ScriptedUicc(nrf_files()))
    assert card.get_data(0x9F7F) is None  # 6D00: not offered
    card2 = Card(lambda raw: b"\x01\x02\x03\x90\x00")
    assert card2.get_data(0x0042) == b"\x01\x02\x03"  # not BER: returned as is
    card3 = Card(lambda raw: b"\x42\x02\xaa\xbb\x90\x00")
    assert card3.get_data(0x0042) == b"\xaa\xbb"
    short = Card(lambda raw: b"\x01\x62\x82")
    with pytest.raises(ApduError, match="ended at 1 of 4"):
        short.read_binary_all(4)
    records = Card(lambda raw: b"\x6a\x83")
    assert records.read_records(None) == []


def test_iccid() -> None:
    assert decode_iccid(bytes.fromhex("98101430121181157002")) == "89014103211118510720"
    assert (
        encode_iccid("8988211000000000003") == bytes.fromhex("98881201000000000030")[:9] + b"\xf3"
    )
    assert decode_iccid(encode_iccid("8988211000000000003")) == "8988211000000000003"
    assert luhn_valid("8988211000000000003")
    assert not luhn_valid("8988211000000000004")
    assert not luhn_valid("1")
    assert not luhn_valid("12a")
    for bad in ("98A0", "98F012"):
        with pytest.raises(IdentificationError, match="ICCID"):
            decode_iccid(bytes.fromhex(bad))
    with pytest.raises(ValueError, match=r"."):
        encode_iccid("1" * 21)


def test_cplc_vector() -> None:
    cplc = parse_cplc(bytes.fromhex(CPLC["cplc"]))
    assert cplc.as_hex() == CPLC["fields"]
    assert parse_cplc(cplc.encode()) == cplc
    for bad in ("9F7F2B" + "00" * 42, "00" * 41):
        with pytest.raises(IdentificationError, match="CPLC"):
            parse_cplc(bytes.fromhex(bad))


def test_card_recognition_data_and_key_information() -> None:
    gp = bytes.fromhex("2A864886FC6B")
    data = encode_ber_tlv(
        0x66,
        encode_ber_tlv(
            0x73,
            (
                encode_ber_tlv(0x06, gp + b"\x01")
                + encode_ber_tlv(0x60, encode_ber_tlv(0x06, encode_oid("1.2.840.114283.2.2.2.1")))
                + encode_ber_tlv(0x63, encode_ber_tlv(0x06, gp + b"\x03"))
                + encode_ber_tlv(0x64, encode_ber_tlv(0x06, bytes.fromhex("2A864886FC6B040370")))
                + encode_ber_tlv(0x64, encode_ber_tlv(0x06, bytes.fromhex("2A864886FC6B040215")))
                + encode_ber_tlv(0x65, b"\x01")
                + encode_ber_tlv(0x66, b"\x02")
            ),
        ),
    )
    crd = parse_card_recognition_data(data)
    assert crd.gp_version == "2.2.1"
    assert crd.secure_channels == ((3, 0x70), (2, 0x15))
    assert crd.card_id_scheme == "1.2.840.114283.3"
    assert (crd.configuration, crd.chip_details) == (b"\x01", b"\x02")
    for bad in (b"\x66\x00", b"\x73\x03\x60\x01", b"\x73\x04\x60\x02\x06\x00"):
        with pytest.raises(IdentificationError):
            parse_card_recognition_data(bad)
    keys = parse_key_information(bytes.fromhex("E00CC00401308810C00402308810"))
    assert [(k.kid, k.kvn, k.key_type, k.length) for k in keys] == [
        (1, 0x30, 0x88, 16),
        (2, 0x30, 0x88, 16),
    ]
    with pytest.raises(IdentificationError):
        parse_key_information(bytes.fromhex("C0020130"))
    with pytest.raises(IdentificationError):
        parse_key_information(bytes.fromhex("E005C0"))


def test_identification_of_a_bare_card() -> None:
    """A card without EF.ICCID, ISD or IoT SAFE gives empty identification, not an error."""
    info = read_identification(lambda raw: b"\x6a\x82", atr=b"\x3b\x00")
    assert info.iccid is None
    assert info.cplc is None
    assert info.iot_safe is None
    assert info.as_dict() == {"atr": "3B00"}
    assert not info.iccid_valid
