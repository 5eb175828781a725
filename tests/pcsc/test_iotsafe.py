"""GSMA IoT SAFE (IoT.05) command builders and response parsers; fuzzed responses raise only
IotSafeError."""

from __future__ import annotations

import pytest

from lwm2m.secure.pcsc import iotsafe
from lwm2m.secure.pcsc.ber import encode_ber_tlv
from lwm2m.secure.pcsc.errors import ApduError, IotSafeError
from lwm2m.secure.pcsc.iotsafe import (
    FileInfo,
    KeyInfo,
    ObjectKind,
    ObjectRef,
    SecretInfo,
)

from .fuzzing import ITERATIONS, fuzz

DEVICE = ObjectRef.by_label("device")
POINT = b"\x04" + bytes(range(64))


def test_object_refs() -> None:
    assert ObjectRef.by_id(1).encode(ObjectKind.PRIVATE_KEY) == bytes.fromhex("840101")
    assert ObjectRef.by_id(b"\x01\x02").encode(ObjectKind.FILE) == bytes.fromhex("83020102")
    assert DEVICE.encode(ObjectKind.SECRET) == b"\x76\x06device"
    assert str(DEVICE) == "label 'device'"
    assert str(ObjectRef.by_id(0x1F)) == "id 1F"
    for bad in (
        {},
        {"id": b"\x01", "label": b"x"},
        {"id": bytes(21)},
        {"label": bytes(61)},
        {"id": b""},
    ):
        with pytest.raises(ApduError):
            ObjectRef(**bad)  # type: ignore[arg-type]


def test_builders() -> None:
    assert iotsafe.select_applet(channel=1).encode().hex().upper() == "01A4040007A0000005590010"
    assert iotsafe.get_applet_info(channel=1).encode().hex().upper() == "81CB000000"
    assert iotsafe.get_object_list(channel=5).encode().hex().upper() == "C1CB010000"
    init = iotsafe.compute_signature_init(DEVICE, channel=2)
    assert (
        init.encode().hex().upper()
        == "822A0001117406" + b"device".hex().upper() + "A10103910101920104"
    )
    update = iotsafe.compute_signature_update(channel=2, final_hash=bytes(32))
    assert update.p1 == 0x80
    assert update.data[:2] == b"\x9e\x20"
    assert update.le == 256
    partial = iotsafe.compute_signature_update(channel=2, data=b"abc", last=False)
    assert partial.p1 == 0
    assert partial.data == b"\x9b\x03abc"
    assert partial.le is None
    assert iotsafe.compute_signature_close(channel=2).p1 == 0x01
    with pytest.raises(ApduError):
        iotsafe.compute_signature_update(channel=1)
    prf = iotsafe.compute_prf(
        ObjectRef.by_id(0x20), b"master secret" + bytes(64), 48, channel=1, other_secret=b"\x01"
    )
    assert prf.data.startswith(bytes.fromhex("860120D10101D24D"))
    assert prf.data.endswith(bytes.fromhex("D3020030"))
    hkdf = iotsafe.compute_hkdf(ObjectRef.by_id(0x20), b"s", b"i", 32, channel=1)
    assert hkdf.data == bytes.fromhex("860120D50173D60169D3020020")
    assert iotsafe.get_random(16, channel=3).encode().hex().upper() == "8384000010"
    assert (
        iotsafe.read_file(ObjectRef.by_id(0x30), 0x0102, 50, channel=1).encode().hex().upper()
        == "81B0010203830130" + "32"
    )
    dh = iotsafe.compute_dh(DEVICE, ObjectRef.by_label("peer"), channel=1)
    assert dh.data == b"\x74\x06device\x75\x04peer"
    assert iotsafe.generate_key_pair(DEVICE, channel=1).ins == 0xB9
    assert (
        iotsafe.read_public_key(ObjectRef.by_id(0x10), channel=1, kind=ObjectKind.PUBLIC_KEY).data
        == b"\x85\x01\x10"
    )
    assert iotsafe.put_public_key_init(ObjectRef.by_id(0x10), channel=1).ins == 0x24
    assert iotsafe.put_public_key_update(POINT, channel=1).p1 == 0x80
    assert iotsafe.get_object_info(ObjectKind.FILE, ObjectRef.by_id(0x30), channel=1).p1 == 0xC3
    for bad in (
        lambda: iotsafe.compute_prf(DEVICE, b"", 0, channel=1),
        lambda: iotsafe.compute_hkdf(DEVICE, b"", b"", 9000, channel=1),
        lambda: iotsafe.read_file(DEVICE, 70000, 1, channel=1),
    ):
        with pytest.raises(ApduError):
            bad()


def test_psk_premaster_rfc4279() -> None:
    assert iotsafe.psk_premaster(b"\xaa\xbb") == bytes.fromhex("00020000 0002aabb".replace(" ", ""))
    assert iotsafe.psk_premaster(b"\xaa", b"\x01\x02") == bytes.fromhex("000201020001aa")


APPLET_INFO = bytes.fromhex(
    "100101 1109"
    + b"LWM2M-VSE".hex()
    + "B10102 B20102 B30101 B40101 90010F 910101 920104 930101 940103 B70104".replace(" ", "")
)
OBJECT_LIST = (
    encode_ber_tlv(
        0xC1,
        bytes.fromhex("840101 7406")
        + b"device"
        + bytes.fromhex("4A0101 4B0113 4E0102 600101 610107 910101 920104 6F0101"),
    )
    + encode_ber_tlv(0xC2, bytes.fromhex("850110 4A0102 4B0113 600103 610105"))
    + encode_ber_tlv(0xC3, bytes.fromhex("830130 4A0101 20020010 210101 600101"))
    + encode_ber_tlv(
        0xC4, bytes.fromhex("860120 7603") + b"psk" + bytes.fromhex("4A0101 4B01A0 610108 940103")
    )
    + encode_ber_tlv(0xC9, b"")
)


def test_parse_applet_info_and_object_list() -> None:
    info = iotsafe.parse_applet_info(APPLET_INFO)
    assert info.applet_id == b"LWM2M-VSE"
    assert info.max_sessions == 4
    assert info.supports(iotsafe.CryptoFunction.KEY_DERIVATION)
    assert info.key_derivations == iotsafe.KeyDerivation.PRF_SHA256 | iotsafe.KeyDerivation.HKDF
    objects = iotsafe.parse_object_list(OBJECT_LIST)
    assert objects.private_keys == (
        KeyInfo(ObjectKind.PRIVATE_KEY, b"\x01", b"device", 1, 0x13, 2, 1, 7, 1, 4, 1),
    )
    assert objects.public_keys[0].ref == ObjectRef(id=b"\x10")
    assert objects.files == (FileInfo(b"\x30", None, 1, 16, 1, 1),)
    assert objects.secrets == (SecretInfo(b"\x20", b"psk", 1, 0xA0, None, 8, 3),)
    assert objects.secrets[0].ref == ObjectRef(id=b"\x20")
    assert objects.files[0].ref.id == b"\x30"
    assert objects.unknown_tags == (0xC9,)
    assert iotsafe.parse_object_info_data(encode_ber_tlv(0xC3, b"\x73\x01x")).ref.label == b"x"


def test_parse_crypto_responses() -> None:
    nested = iotsafe.encode_public_key_data(POINT)
    assert iotsafe.parse_public_key(nested) == POINT
    assert iotsafe.parse_public_key(encode_ber_tlv(0x34, encode_ber_tlv(0x86, POINT))) == POINT
    assert iotsafe.parse_public_key(encode_ber_tlv(0x34, POINT)) == POINT
    assert iotsafe.parse_signature(b"\x33\x02\x30\x00") == b"\x30\x00"
    assert iotsafe.parse_secret(bytes(32), 32) == bytes(32)


@pytest.mark.parametrize(
    ("parse", "data"),
    [
        (iotsafe.parse_public_key, b""),
        (iotsafe.parse_public_key, encode_ber_tlv(0x34, encode_ber_tlv(0x49, b""))),
        (iotsafe.parse_public_key, encode_ber_tlv(0x34, encode_ber_tlv(0x86, b"\x04\x01"))),
        (iotsafe.parse_public_key, encode_ber_tlv(0x34, b"\x86\x05")),
        (iotsafe.parse_signature, b"\x33\x00"),
        (iotsafe.parse_applet_info, b"\x10\x02\x01\x02"),
        (iotsafe.parse_object_list, encode_ber_tlv(0xC1, b"\x4a\x01\x01")),
        (iotsafe.parse_object_list, encode_ber_tlv(0xC1, b"\x84\x00")),
        (iotsafe.parse_object_list, encode_ber_tlv(0xC3, b"\x83\x01\x01\x20\x05" + bytes(5))),
        (iotsafe.parse_object_list, b"\xc1\x05\x84"),
        (iotsafe.parse_object_info_data, b""),
        (lambda d: iotsafe.parse_secret(d, 32), bytes(31)),
    ],
)
def test_parse_errors(parse, data: bytes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IotSafeError):
        parse(data)


def test_parse_object_info_wrong_tag() -> None:
    from lwm2m.secure.pcsc.ber import BerTlv

    with pytest.raises(IotSafeError):
        iotsafe.parse_object_info(BerTlv(0xC9, b""))


@pytest.mark.fuzz
@pytest.mark.parametrize(
    ("parse", "seeds", "seed"),
    [
        (iotsafe.parse_applet_info, [APPLET_INFO], 51),
        (iotsafe.parse_object_list, [OBJECT_LIST], 52),
        (iotsafe.parse_public_key, [iotsafe.encode_public_key_data(POINT)], 53),
        (iotsafe.parse_signature, [b"\x33\x02\x30\x00"], 54),
    ],
)
def test_fuzz_iot_safe_responses(parse, seeds: list[bytes], seed: int) -> None:  # type: ignore[no-untyped-def]
    accepted, rejected = fuzz(parse, IotSafeError, seeds, seed=seed)
    assert accepted + rejected == ITERATIONS
    assert rejected
