"""PKCS #15 (ISO/IEC 7816-15) structures of the smartcard bootstrap, LwM2M-TS-Core Appendix G:
the nRF transcript of the spec example (with the mis-encoded DODF OID), both encodings of the
OID, implicit and explicit type attributes, EF.DIR; fuzzed parsers raise only Pkcs15Error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lwm2m.secure.pcsc.ber import (
    BerError,
    BerTlv,
    decode_ber_tlvs,
    encode_ber_length,
    encode_ber_tlv,
)
from lwm2m.secure.pcsc.errors import Pkcs15Error
from lwm2m.secure.pcsc.pkcs15 import (
    PKCS15_AID,
    DataObjectKind,
    DirApplication,
    OdfEntry,
    OdfKind,
    decode_oid,
    encode_dodf_oid_do,
    encode_odf,
    encode_oid,
    find_bootstrap_object,
    find_pkcs15_application,
    parse_dir_record,
    parse_dodf,
    parse_odf,
)

from .fuzzing import ITERATIONS, fuzz

NRF = json.loads((Path(__file__).parents[1] / "vectors/pcsc/nrf_pkcs15.json").read_text())


def test_nrf_odf_and_misencoded_dodf() -> None:
    odf = parse_odf(bytes.fromhex(NRF["odf"]))
    assert odf == [OdfEntry(OdfKind.DATA_OBJECTS, b"\x64\x30")]
    objects = parse_dodf(bytes.fromhex(NRF["dodf"]))
    assert len(objects) == 1
    obj = objects[0]
    assert obj.kind is DataObjectKind.OID
    assert obj.oid == "2.23.43.9.1"
    assert obj.misencoded_oid
    assert obj.path == b"\x64\x32"
    assert obj.application_name == "LwM2M Bootstrap"
    assert find_bootstrap_object(objects) is obj


def test_encodings_round_trip() -> None:
    for misencoded in (False, True):
        for private in (False, True):
            raw = encode_dodf_oid_do(b"\x64\x32", misencoded_oid=misencoded, private=private)
            (obj,) = parse_dodf(raw)
            assert (obj.oid, obj.misencoded_oid, obj.private, obj.path) == (
                "2.23.43.9.1",
                misencoded,
                private,
                b"\x64\x32",
            )
    assert encode_dodf_oid_do(b"\x64\x32", misencoded_oid=True) == bytes.fromhex(NRF["dodf"])
    assert encode_odf([OdfEntry(OdfKind.DATA_OBJECTS, b"\x64\x30")]) == bytes.fromhex(NRF["odf"])


def test_implicitly_tagged_oid_do_and_application_oid() -> None:
    implicit = encode_ber_tlv(
        0xA1,
        encode_ber_tlv(0x30, encode_ber_tlv(0x0C, b"bs"))
        + encode_ber_tlv(0x30, b"")
        + encode_ber_tlv(
            0xA1,
            encode_ber_tlv(0x06, encode_oid("2.23.43.9.1"))
            + encode_ber_tlv(0x30, encode_ber_tlv(0x04, b"\x64\x33")),
        ),
    )
    opaque = encode_ber_tlv(
        0x30,
        encode_ber_tlv(0x30, encode_ber_tlv(0x03, b"\x06\x40"))
        + encode_ber_tlv(0x30, encode_ber_tlv(0x06, encode_oid("2.23.43.9.1")))
        + encode_ber_tlv(0xA1, encode_ber_tlv(0x30, encode_ber_tlv(0x04, b"\x64\x34"))),
    )
    other = encode_dodf_oid_do(b"\x64\x35").replace(
        bytes.fromhex("672B0901"), bytes.fromhex("672B0902")
    )
    objects = parse_dodf(other + implicit + opaque + b"\xff\xff")
    assert [o.path for o in objects] == [b"\x64\x35", b"\x64\x33", b"\x64\x34"]
    assert objects[0].oid == "2.23.43.9.2"
    assert not objects[0].is_lwm2m_bootstrap
    assert objects[1].label == "bs"
    assert objects[2].kind is DataObjectKind.OPAQUE
    assert objects[2].modifiable
    assert find_bootstrap_object(objects) is objects[1]
    assert find_bootstrap_object(objects[:1]) is None


def test_ef_dir() -> None:
    template = encode_ber_tlv(
        0x61,
        encode_ber_tlv(0x4F, PKCS15_AID)
        + encode_ber_tlv(0x50, b"PKCS#15")
        + encode_ber_tlv(0x51, b"\x3f\x00\x7f\xf0"),
    )
    record = template + b"\xff" * (48 - len(template))
    usim = encode_ber_tlv(0x61, encode_ber_tlv(0x4F, bytes.fromhex("A0000000871002")))
    app = find_pkcs15_application([usim + b"\xff" * 10, b"\xff" * 48, record])
    assert app == DirApplication(PKCS15_AID, "PKCS#15", b"\x3f\x00\x7f\xf0")
    assert app.is_pkcs15
    assert parse_dir_record(b"\xff" * 20) is None
    assert find_pkcs15_application([usim]) is None
    for bad in (
        encode_ber_tlv(0x62, b""),
        encode_ber_tlv(0x61, encode_ber_tlv(0x50, b"x")),
        encode_ber_tlv(0x61, encode_ber_tlv(0x4F, b"")),
        b"\x61\x05\x4f",
    ):
        with pytest.raises(Pkcs15Error, match=r"EF\.DIR"):
            parse_dir_record(bad)


def test_oid_codec() -> None:
    assert decode_oid(encode_oid("1.2.840.114283.1")) == "1.2.840.114283.1"
    assert decode_oid(b"\x06") == "0.6"
    assert decode_oid(b"\x2a") == "1.2"
    for bad in (b"", b"\x80\x01", b"\x81"):
        with pytest.raises(Pkcs15Error):
            decode_oid(bad)
    with pytest.raises(ValueError, match=r"."):
        encode_oid("3.1")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("A7", "EF.ODF"),
        ("A700", "EF.ODF DATA_OBJECTS"),
        ("A70430020401", "EF.ODF DATA_OBJECTS path"),
        ("A704300204 00", "EF.ODF DATA_OBJECTS path"),
        ("A703300104", "EF.ODF DATA_OBJECTS path"),
    ],
)
def test_odf_errors_name_field_and_offset(data: str, field: str) -> None:
    with pytest.raises(Pkcs15Error) as err:
        parse_odf(bytes.fromhex(data.replace(" ", "")))
    assert err.value.field is not None
    assert err.value.field.startswith(field.split()[0])
    assert err.value.offset is not None


def test_dodf_errors() -> None:
    for bad in (
        "A100",
        "A1023000",
        "A104300030 00",
        "A1063000300 0A100",
        "A10A30003000A10430020601",
        "A10730033001 003000",
        "A1083000300430020601",
    ):
        with pytest.raises(Pkcs15Error):
            parse_dodf(bytes.fromhex(bad.replace(" ", "")))


def test_ber_reader() -> None:
    tlvs = decode_ber_tlvs(bytes.fromhex("9F7F01AA 5F2002 4142 7F4903 860101".replace(" ", "")))
    assert [t.tag for t in tlvs] == [0x9F7F, 0x5F20, 0x7F49]
    assert tlvs[2].constructed
    assert not tlvs[0].constructed
    assert tlvs[2].children()[0] == BerTlv(0x86, b"\x01", tlvs[2].value_offset)
    assert repr(tlvs[0]) == "BerTlv(tag=0x9F7F, 1 bytes at 0)"
    long = decode_ber_tlvs(b"\x04\x82\x01\x00" + bytes(256))[0]
    assert len(long.value) == 256
    assert long.value_offset == 4
    assert encode_ber_length(0x10000) == b"\x83\x01\x00\x00"
    with pytest.raises(ValueError, match=r"."):
        encode_ber_length(1 << 24)
    for bad in ("04", "0480", "0484000000010000", "1FFFFF0100", "0402AA"):
        with pytest.raises(BerError):
            decode_ber_tlvs(bytes.fromhex(bad))


@pytest.mark.fuzz
@pytest.mark.parametrize(
    ("parser", "seeds", "seed"),
    [
        (parse_odf, [NRF["odf"]], 21),
        (parse_dodf, [NRF["dodf"], encode_dodf_oid_do(b"\x64\x32", private=True).hex()], 22),
        (
            parse_dir_record,
            [
                (
                    encode_ber_tlv(
                        0x61, encode_ber_tlv(0x4F, PKCS15_AID) + encode_ber_tlv(0x51, b"\x3f\x00")
                    )
                ).hex()
            ],
            23,
        ),
    ],
)
def test_fuzz_pkcs15(parser, seeds: list[str], seed: int) -> None:  # type: ignore[no-untyped-def]
    accepted, rejected = fuzz(parser, Pkcs15Error, [bytes.fromhex(s) for s in seeds], seed=seed)
    assert accepted + rejected == ITERATIONS
    assert accepted
    assert rejected
