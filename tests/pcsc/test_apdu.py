"""APDUs (ISO/IEC 7816-4 §5): the four cases, short and extended, class bytes and channels,
status words; decoding random bytes raises only ApduError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m.buffer import Buffer
from lwm2m.secure.pcsc.apdu import (
    CommandApdu,
    ResponseApdu,
    StatusWord,
    channel_of,
    has_secure_messaging,
    pull_command_apdu,
    with_channel,
    with_secure_messaging,
)
from lwm2m.secure.pcsc.errors import ApduError, StatusWordError

from .fuzzing import ITERATIONS, fuzz


@pytest.mark.parametrize(
    ("hex_", "case", "le", "extended"),
    [
        ("00A40000", 1, None, False),
        ("00B0000000", 2, 256, False),
        ("00B0000010", 2, 16, False),
        ("00A404000CA000000063504B43532D3135", 3, None, False),
        ("01A404040CA000000063504B43532D313500", 4, 256, False),
        ("00B00000000400", 2, 1024, True),
        ("00B00000000000", 2, 65536, True),
        ("80E20000000003010203", 3, None, True),
        ("80E200000000030102030100", 4, 256, True),
        ("80E200000000030102030000", 4, 65536, True),
    ],
)
def test_cases_round_trip(hex_: str, case: int, le: int | None, extended: bool) -> None:
    raw = bytes.fromhex(hex_)
    apdu = CommandApdu.decode(raw)
    assert (apdu.case, apdu.le, apdu.extended) == (case, le, extended)
    assert apdu.encode() == raw


def test_extended_chosen_automatically() -> None:
    assert CommandApdu(0x00, 0xD6, 0, 0, bytes(300)).encode()[4:7] == b"\x00\x01\x2c"
    assert CommandApdu(0x00, 0xB0, 0, 0, le=257).encode() == bytes.fromhex("00B0000000 0101")
    assert CommandApdu(0x00, 0xB0, 0, 0, le=256).encode() == bytes.fromhex("00B0000000")


@pytest.mark.parametrize(
    "hex_",
    [
        "",
        "00",
        "00A400",
        "FFA40000",
        "00A4000005AABB",
        "00A400000000",
        "00A4000000000203",
        "00A40000000000AA",
    ],
)
def test_malformed_commands(hex_: str) -> None:
    with pytest.raises(ApduError):
        CommandApdu.decode(bytes.fromhex(hex_))


def test_trailing_bytes_after_pull() -> None:
    assert pull_command_apdu(Buffer(bytes.fromhex("00B00000"))).case == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cla": 256}, "CLA"),
        ({"p1": -1}, "P1"),
        ({"le": 0}, "Le"),
        ({"le": 65537}, "Le"),
        ({"data": bytes(65536)}, "65535"),
        ({"ins": True}, "INS"),
    ],
)
def test_invalid_values(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"cla": 0, "ins": 0xA4, "p1": 0, "p2": 0}
    args.update(kwargs)
    with pytest.raises(ApduError, match=message):
        CommandApdu(**args)  # type: ignore[arg-type]


def test_channels_and_secure_messaging() -> None:
    for channel in range(20):
        for base in (0x00, 0x80, 0x84, 0x0C):
            cla = with_channel(base, channel)
            assert channel_of(cla) == channel
            assert has_secure_messaging(cla) == has_secure_messaging(base)
    assert with_channel(0x80, 3) == 0x83
    assert with_channel(0x84, 4) == 0xE0
    assert with_channel(0x10, 4) == 0x50  # command chaining kept
    assert with_secure_messaging(0x80) == 0x84
    assert with_secure_messaging(0xC1) == 0xE1
    assert with_secure_messaging(0xE1, False) == 0xC1
    assert with_secure_messaging(0x84, False) == 0x80
    with pytest.raises(ApduError):
        with_channel(0x00, 20)
    with pytest.raises(ApduError):
        channel_of(0xFF)
    apdu = CommandApdu(0x80, 0xCA, 0x9F, 0x7F, le=256).on_channel(7)
    assert apdu.channel == 7
    assert apdu.cla == 0xC3
    assert not apdu.secure_messaging


def test_status_words() -> None:
    assert StatusWord(0x9000).is_success
    assert StatusWord(0x6282).is_warning
    assert StatusWord(0x6100).more_data == 256
    assert StatusWord(0x6C10).exact_length == 16
    assert StatusWord(0x6A82).more_data is None
    assert StatusWord(0x9000).exact_length is None
    assert StatusWord(0x63C2).meaning == "verification failed, 2 tries left"
    assert StatusWord(0x6123).meaning == "35 more response bytes available"
    assert StatusWord(0x6C05).meaning == "wrong Le, exact length is 5"
    assert StatusWord(0x6799).meaning == "wrong length"
    assert StatusWord(0x9ABC).meaning == "unknown status"
    assert repr(StatusWord(0x6A82)) == "StatusWord(0x6A82)"
    assert StatusWord.of(0x90, 0x00) == StatusWord(0x9000)
    with pytest.raises(ApduError):
        StatusWord(0x10000)


def test_response_check() -> None:
    assert ResponseApdu.of(b"\x01", 0x9000).check("X") == b"\x01"
    assert ResponseApdu.of(b"\x01", 0x6282).check("X", allow_warning=True) == b"\x01"
    with pytest.raises(StatusWordError) as err:
        ResponseApdu.of(b"", 0x6A82).check("SELECT 2F00")
    assert err.value.sw == 0x6A82
    assert str(err.value) == "SELECT 2F00: card answered 6A82 (file or application not found)"
    with pytest.raises(ApduError):
        ResponseApdu.decode(b"\x90")
    assert ResponseApdu.decode(b"\x01\x90\x00").encode() == b"\x01\x90\x00"


def test_repr_hides_data() -> None:
    secret = CommandApdu(0x80, 0xD8, 0, 0, b"secret-key-bytes")
    assert "secret" not in repr(secret)
    assert "16 data bytes" in repr(secret)
    assert "secret" not in repr(ResponseApdu.of(b"secret", 0x9000))


@given(
    cla=st.integers(0, 0xFE),
    ins=st.integers(0, 255),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.binary(max_size=300),
    le=st.none() | st.integers(1, 65536),
    extended=st.booleans(),
)
def test_round_trip_property(
    cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None, extended: bool
) -> None:
    apdu = CommandApdu(cla, ins, p1, p2, data, le, extended)
    assert CommandApdu.decode(apdu.encode()) == apdu


@pytest.mark.fuzz
def test_fuzz_command_and_response_decoding() -> None:
    seeds = [
        bytes.fromhex(h)
        for h in (
            "00A404000CA000000063504B43532D313500",
            "00B00000000400",
            "80E200000000030102030100",
        )
    ]
    accepted, rejected = fuzz(CommandApdu.decode, ApduError, seeds, seed=7)
    assert accepted + rejected == ITERATIONS
    assert accepted
    assert rejected
    accepted, rejected = fuzz(ResponseApdu.decode, ApduError, [b"\x90\x00"], seed=8, max_random=4)
    assert accepted + rejected == ITERATIONS
    assert rejected
