"""ISO/IEC 7816-4 builders, FCP parsing and the 61xx/6Cxx response chaining."""

from __future__ import annotations

import pytest

from lwm2m.secure.pcsc.apdu import CommandApdu, ResponseApdu
from lwm2m.secure.pcsc.errors import ApduError
from lwm2m.secure.pcsc.iso7816 import (
    FcpError,
    Ins,
    ResponseChain,
    chain_command,
    get_data,
    get_response,
    manage_channel_close,
    manage_channel_open,
    parse_fcp,
    parse_manage_channel_open,
    read_binary,
    read_record,
    select_aid,
    select_fid,
    select_path_from_current_df,
    select_path_from_mf,
    transceive,
)

from .fuzzing import ITERATIONS, fuzz


def test_builders_match_the_nrf_transcript() -> None:
    # nrfconnect/sdk-nrf tests/lib/uicc_lwm2m: the commands of the Appendix G flow
    assert manage_channel_open().encode().hex().upper() == "0070000001"
    assert (
        select_aid(bytes.fromhex("A000000063504B43532D3135"), channel=1).encode().hex().upper()
        == "01A404040CA000000063504B43532D313500"
    )
    assert (
        select_path_from_mf(bytes.fromhex("7FFF5031"), channel=1).encode().hex().upper()
        == "01A40804047FFF503100"
    )
    assert read_binary(0, 0x80, channel=1).encode().hex().upper() == "01B0000080"
    assert manage_channel_close(1).encode().hex().upper() == "00708001"


def test_other_builders() -> None:
    assert select_fid(0x2F00).encode().hex().upper() == "00A40004022F0000"
    assert select_path_from_current_df(b"\x50\x31", channel=5).cla == 0x41
    assert read_record(2).encode().hex().upper() == "00B2020400"
    assert get_response(16, channel=2).encode().hex().upper() == "02C0000010"
    assert get_data(0x9F7F).encode().hex().upper() == "80CA9F7F00"
    assert read_binary(0x1234, 16).p1 == 0x12
    for bad in (
        lambda: select_aid(b""),
        lambda: select_path_from_mf(b"\x3f"),
        lambda: read_binary(0x8000, 1),
        lambda: read_record(0),
        lambda: manage_channel_close(0),
        lambda: get_data(0x10000),
    ):
        with pytest.raises(ApduError):
            bad()


def test_manage_channel_response() -> None:
    assert parse_manage_channel_open(ResponseApdu.of(b"\x03", 0x9000)) == 3
    for data in (b"", b"\x00", b"\x14", b"\x01\x02"):
        with pytest.raises(ApduError):
            parse_manage_channel_open(ResponseApdu.of(data, 0x9000))


def test_chain_command() -> None:
    command = CommandApdu(0x00, 0xD6, 0, 0, bytes(600), le=16)
    parts = chain_command(command)
    assert [len(p.data) for p in parts] == [255, 255, 90]
    assert [p.cla for p in parts] == [0x10, 0x10, 0x00]
    assert parts[-1].le == 16
    assert parts[0].le is None
    assert chain_command(CommandApdu(0, 0xD6, 0, 0, b"ab")) == [CommandApdu(0, 0xD6, 0, 0, b"ab")]
    with pytest.raises(ApduError):
        chain_command(CommandApdu(0x80, 0xE2, 0, 0, bytes(300)))


def scripted(*answers: str) -> tuple[list[bytes], object]:
    sent: list[bytes] = []
    queue = [bytes.fromhex(a) for a in answers]

    def transmit(apdu: bytes) -> bytes:
        sent.append(apdu)
        return queue.pop(0)

    return sent, transmit


def test_transceive_get_response_and_exact_le() -> None:
    sent, transmit = scripted("6C05", "01026103", "0304059000")
    response = transceive(transmit, get_data(0x9F7F, channel=2, le=2))  # type: ignore[arg-type]
    assert response.data == bytes.fromhex("0102030405")
    assert response.sw.is_success
    assert [s.hex().upper() for s in sent] == ["82CA9F7F02", "82CA9F7F05", "02C0000003"]


def test_response_chain_limits() -> None:
    chain = ResponseChain(read_binary(0, 4), max_steps=1)
    chain.receive(ResponseApdu.of(b"a", 0x6101))
    with pytest.raises(ApduError, match="more exchanges"):
        chain.receive(ResponseApdu.of(b"a", 0x6101))
    chain = ResponseChain(read_binary(0, 4), max_size=3)
    with pytest.raises(ApduError, match="exceeds"):
        chain.receive(ResponseApdu.of(b"abcd", 0x9000))
    chain = ResponseChain(read_binary(0, 8))
    chain.receive(ResponseApdu.of(b"", 0x6C04))
    with pytest.raises(ApduError, match="again"):
        chain.receive(ResponseApdu.of(b"", 0x6C04))
    chain = ResponseChain(read_binary(0, 4))
    with pytest.raises(ApduError, match="not complete"):
        _ = chain.result
    assert chain.receive(ResponseApdu.of(b"ab", 0x6282)) is None
    assert chain.done
    assert chain.result.sw.value == 0x6282
    with pytest.raises(ApduError, match="after"):
        chain.receive(ResponseApdu.of(b"", 0x9000))


NRF_EF_FCP = "621682024121830250318A01058B036F06028002002088009000"[:-4]
NRF_ADF_FCP = "622582027821840CA000000063504B43532D31358A01058B032F060CC60990014083010183010A"


def test_parse_fcp() -> None:
    ef = parse_fcp(bytes.fromhex(NRF_EF_FCP))
    assert (ef.file_id, ef.size, ef.is_transparent, ef.is_df) == (0x5031, 0x20, True, False)
    adf = parse_fcp(bytes.fromhex(NRF_ADF_FCP))
    assert adf.is_df
    assert adf.df_name == bytes.fromhex("A000000063504B43532D3135")
    linear = parse_fcp(bytes.fromhex("620E8205422100300283022F008A0105"))
    assert linear.is_linear_fixed
    assert linear.record_length == 0x30
    assert linear.record_count == 2
    assert parse_fcp(bytes.fromhex("62048102 1088".replace(" ", ""))).size == 0x1088
    for bad in ("", "6F00", "62028200", "6204830101AA", "62", "62006200"):
        with pytest.raises(FcpError):
            parse_fcp(bytes.fromhex(bad))


@pytest.mark.fuzz
def test_fuzz_fcp() -> None:
    accepted, rejected = fuzz(
        parse_fcp, FcpError, [bytes.fromhex(NRF_EF_FCP), bytes.fromhex(NRF_ADF_FCP)], seed=11
    )
    assert accepted + rejected == ITERATIONS
    assert accepted
    assert rejected


def test_ins_values() -> None:
    assert Ins.GET_RESPONSE == 0xC0
    assert Ins.MANAGE_CHANNEL == 0x70
