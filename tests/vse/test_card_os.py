"""The VSE's card OS answered through pcscd: status words for malformed or refused commands,
file selection variants, IoT SAFE refusals — each as ISO/IEC 7816-4 / IoT.05 say."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwm2m.secure.pcsc.apdu import ResponseApdu
from lwm2m.vse.state import VseState, load_state, save_state


def send(transport, hex_: str) -> ResponseApdu:  # type: ignore[no-untyped-def]
    return ResponseApdu.decode(transport.transmit(bytes.fromhex(hex_.replace(" ", ""))))


@pytest.mark.parametrize(
    ("commands", "sw"),
    [
        (["00A4000402 2F00 00", "00B0000010"], 0x6981),  # READ BINARY on a record file
        (["00A4000402 2FE2 00", "00B2010400"], 0x6981),  # READ RECORD on a transparent file
        (["00A4000402 2F00 00", "00B2090400"], 0x6A83),
        (["00A4000402 2F00 00", "00B2010500"], 0x6A86),
        (["00A4000402 2FE2 00", "00B0800000"], 0x6A81),  # short EF id
        (["00A4000402 2FE2 00", "00B0002000"], 0x6B00),
        (["00A4000402 2FE2 00", "00B0000020"], 0x6282),
        (["00A4000402 3F00 00", "00B0000010"], 0x6986),
        (["00A4000402 3F00 00", "00B2010400"], 0x6986),
        (["00A4000402 1234 00"], 0x6A82),
        (["00A4000401 12 00"], 0x6700),
        (["00A4080402 1234 00"], 0x6A82),
        (["00A4080403 123400 00"], 0x6A80),
        (["00A4080404 7FFF 5031 00"], 0x6A82),  # no ADF selected on this channel
        (["00A4030400"], 0x6700),
        (["00A40404 04 A0000000 00", "00A4090402 5031 00"], 0x9000),
        (["00A40404 04 A0000000 00", "00A4080402 7FFF 00"], 0x9000),
        (["00A40404 04 A0000000 00", "00A4080404 7FF0 5031 00"], 0x9000),
        (["00A40404 04 A0000000 00", "00A4000402 7FFF 00"], 0x9000),
        (["00A40404 04 A0000000 00", "00A4000C02 5031"], 0x9000),
        (["00A4050402 1234 00"], 0x6A86),
        (["00A4040005 A000000099 00"], 0x6A82),
        (["00C0000010"], 0x6985),  # GET RESPONSE with nothing pending
        (["0070000100"], 0x6A86),
        (["0070800000"], 0x6A86),
        (["0070400000"], 0x6A86),
        (["00708013"], 0x6A88),
        (["03B0000010"], 0x6881),  # channel not open
        (["FFA40000"], 0x6700),
        (["00DA000000"], 0x6D00),
        (["00CA9F7F00"], 0x6985),
        (["80500000 08 0000000000000000 00"], 0x6E00),  # no security domain selected
        (["00A4040008 A000000151000000 00", "80CA00FF00"], 0x6A88),
        (["00A4040008 A000000151000000 00", "8482330010" + "00" * 16], 0x6985),
        (["00A4040008 A000000151000000 00", "80CA00C100"], 0x9000),
    ],
)
def test_status_words(transport, commands: list[str], sw: int) -> None:  # type: ignore[no-untyped-def]
    transport.reset()
    response = None
    for command in commands:
        response = send(transport, command)
        if response.sw.sw1 == 0x61:
            response = send(transport, f"00C00000{response.sw.sw2:02X}")
    assert response is not None
    assert response.sw.value == sw, response


@pytest.mark.parametrize(
    ("command", "sw"),
    [
        ("81CB020000", 0x6A86),
        ("81CBC30003 830199 00", 0x6A88),
        ("81CBC30002 AA00 00", 0x6A80),
        ("81B9000003 840102 00", 0x9000),
        ("81CD000003 850110 00", 0x6985),  # peer container empty
        ("81CD000003 840199 00", 0x6A88),
        ("81D8800002 3400", 0x6985),  # PUT PUBLIC KEY UPDATE without INIT
        ("812A000500", 0x6A86),
        ("812A020100", 0x6A86),
        ("812B800100", 0x6985),  # no session
        ("8146000006 840101 850110 00", 0x6985),
        ("8148000007 860120 D30200FF 00", 0x6A80),
        ("8148000008 860120 D202AAAA 00", 0x6A80),
        ("814A000006 860120 D30100 00", 0x6A80),
        ("8184000000", 0x9000),
        ("81840000", 0x6700),
        ("81B0100003 830130 00", 0x6B00),
        ("81EE000000", 0x6D00),
        ("01CB000000", 0x6985),
        ("81CBC10003 AA0500 00", 0x6A80),
    ],
)
def test_iot_safe_status_words(transport, command: str, sw: int) -> None:  # type: ignore[no-untyped-def]
    transport.reset()
    assert send(transport, "0070000001").data == b"\x01"
    assert send(transport, "01A4040007 A0000005590010").sw.is_success
    response = send(transport, command)
    if response.sw.sw1 == 0x61:
        response = send(transport, f"01C00000{response.sw.sw2:02X}")
    assert response.sw.value == sw, response


def test_signature_sessions(transport) -> None:  # type: ignore[no-untyped-def]
    transport.reset()
    send(transport, "0070000001")
    send(transport, "01A4040007 A0000005590010")
    assert send(transport, "81B9000003 840101 00").sw.sw1 == 0x61
    send(transport, "01C0000000")
    # full-text mode: data in two blocks
    assert send(transport, "812A00010C 840101 A10101 910101 920104").sw.is_success
    assert send(transport, "812B000105 9B03616263").sw.is_success
    last = send(transport, "812B800105 9B03646566 00")
    assert last.sw.sw1 == 0x61
    signature = send(transport, f"01C00000{last.sw.sw2:02X}")
    assert signature.data[0] == 0x33
    # bad parameters are refused at INIT
    for init in (
        "812A00010C 840101 A10109 910101 920104",
        "812A00010C 840101 A10103 910102 920104",
        "812A00010C 840101 A10103 910101 920101",
        "812A00010C 840199 A10103 910101 920104",
    ):
        assert send(transport, init).sw.value in (0x6A80, 0x6A88, 0x6985)
    assert send(transport, "812A00010C 840101 A10103 910101 920104").sw.is_success
    assert send(transport, "812B800104 9E020000 00").sw.value == 0x6A80
    assert send(transport, "812B800104 9B020000 00").sw.value == 0x6A80
    assert send(transport, "812A00010C 840101 A10101 910101 920104").sw.is_success
    assert send(transport, "812B800104 9E020000 00").sw.value == 0x6A80
    assert send(transport, "812A0101").sw.is_success
    assert send(transport, "81D8800004 34 02 8601").sw.value == 0x6985


def test_state_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    state = load_state(path)  # created with defaults
    assert path.exists()
    assert state.iccid == VseState.default().iccid
    state.pkcs15.bootstrap = "00"
    save_state(state, path)
    assert load_state(path).pkcs15.bootstrap == "00"
    assert "keys redacted" in repr(state)
    assert "404142" not in repr(state)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a VSE state file"):
        load_state(path)
