"""Remote APDU scripts in the ETSI TS 102 226 expanded format (GP Amendment B, SERAM): the spec
example both ways, definite and indefinite templates with 1-, 2- and 3-byte lengths, every
refusal with its message and offset, the runner against a fake card, and a seeded fuzz run of
both decoders."""

from __future__ import annotations

import doctest
import random
from collections.abc import Callable

import pytest

import lwm2m.secure.ram as ram_module
from lwm2m.errors import SecureComponentError
from lwm2m.secure.ram import (
    MAX_COMMAND_SCRIPT_SIZE,
    MAX_COMMANDS,
    MAX_RESPONSE_SCRIPT_SIZE,
    BadFormat,
    CommandScript,
    ResponseScript,
    ScriptExecutionError,
    ScriptFormatError,
    continues,
    run_script,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


GET_DATA = h("80 CA FF 21 00")
SPEC_COMMAND = h("AE 80 22 05 80 CA FF 21 00 00 00")
SPEC_RESPONSE = h("AF 80 80 01 01 23 04 01 02 90 00 00 00")


def extended_apdu(size: int) -> bytes:
    """A case-3 extended-length C-APDU of exactly ``size`` bytes (STORE DATA)."""
    data = bytes(range(256)) * (size // 256 + 1)
    length = size - 7
    return h("80 E2 90 00 00") + length.to_bytes(2, "big") + data[:length]


# -- the spec example ----------------------------------------------------------------------------


def test_spec_command_decodes() -> None:
    script = CommandScript.decode(SPEC_COMMAND)
    assert script == CommandScript((GET_DATA,), indefinite=True)
    assert script.commands == (GET_DATA,)


def test_spec_command_encodes() -> None:
    assert CommandScript((GET_DATA,)).encode() == SPEC_COMMAND


def test_spec_response_decodes() -> None:
    response = ResponseScript.decode(SPEC_RESPONSE)
    assert response == ResponseScript(1, (h("01 02 90 00"),), indefinite=True)
    assert response.bad_format is None


def test_spec_response_encodes() -> None:
    assert ResponseScript(1, (h("01 02 90 00"),)).encode() == SPEC_RESPONSE


def test_spec_example_run() -> None:
    sent: list[bytes] = []

    def card(apdu: bytes) -> bytes:
        sent.append(apdu)
        return h("01 02 90 00")

    assert run_script(CommandScript.decode(SPEC_COMMAND), card).encode() == SPEC_RESPONSE
    assert sent == [GET_DATA]


def test_module_docstring_examples() -> None:
    result = doctest.testmod(ram_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10
    assert result.failed == 0


# -- lengths and forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "inner_header", "definite_header"),
    [
        (5, "22 05", "AA 07"),  # 1-byte lengths
        (126, "22 7E", "AA 81 80"),  # outer length needs 81
        (200, "22 81 C8", "AA 81 CB"),  # 2-byte lengths (81 xx)
        (300, "22 82 01 2C", "AA 82 01 30"),  # 3-byte lengths (82 xx xx), extended APDU
    ],
)
def test_command_lengths(size: int, inner_header: str, definite_header: str) -> None:
    command = (
        extended_apdu(size) if size > 255 else bytes([0x80, 0xE2, 0x90, 0x00]) + bytes(size - 4)
    )
    assert len(command) == size
    inner = h(inner_header) + command

    definite = CommandScript((command,), indefinite=False)
    assert definite.encode() == h(definite_header) + inner
    assert CommandScript.decode(h(definite_header) + inner) == definite

    indefinite = CommandScript((command,))
    assert indefinite.encode() == h("AE 80") + inner + h("00 00")
    assert CommandScript.decode(h("AE 80") + inner + h("00 00")) == indefinite


def test_extended_apdu_of_300_bytes_among_others() -> None:
    commands = (h("00 A4 04 00 08 A0 00 00 01 51 00 00 00"), extended_apdu(300), GET_DATA)
    for indefinite in (True, False):
        script = CommandScript(commands, indefinite=indefinite)
        encoded = script.encode()
        assert h("22 82 01 2C") + extended_apdu(300) in encoded
        assert CommandScript.decode(encoded) == script


@pytest.mark.parametrize(
    ("size", "inner_header", "definite_header"),
    [
        (2, "23 02", "AB 07"),
        (200, "23 81 C8", "AB 81 CE"),
        (300, "23 82 01 2C", "AB 82 01 33"),
    ],
)
def test_response_lengths(size: int, inner_header: str, definite_header: str) -> None:
    answer = bytes(size - 2) + h("90 00")
    body = h("80 01 01") + h(inner_header) + answer

    definite = ResponseScript(1, (answer,), indefinite=False)
    assert definite.encode() == h(definite_header) + body
    assert ResponseScript.decode(h(definite_header) + body) == definite

    indefinite = ResponseScript(1, (answer,))
    assert indefinite.encode() == h("AF 80") + body + h("00 00")
    assert ResponseScript.decode(h("AF 80") + body + h("00 00")) == indefinite


def test_non_minimal_lengths_are_accepted_and_reencoded_minimally() -> None:
    data = h("AA 82 00 08 22 81 05 80 CA FF 21 00")
    script = CommandScript.decode(data)
    assert script == CommandScript((GET_DATA,), indefinite=False)
    assert script.encode() == h("AA 07 22 05 80 CA FF 21 00")


def test_several_commands_keep_their_order() -> None:
    commands = tuple(bytes([0x80, 0xCA, 0x00, n, 0x00]) for n in range(10))
    script = CommandScript.decode(CommandScript(commands).encode())
    assert script.commands == commands


def test_255_commands_are_the_maximum() -> None:
    script = CommandScript((h("00 00 00 00"),) * MAX_COMMANDS)
    assert CommandScript.decode(script.encode()) == script
    response = ResponseScript(MAX_COMMANDS, (h("90 00"),) * MAX_COMMANDS, indefinite=False)
    assert ResponseScript.decode(response.encode()) == response


def test_ac_and_ad_are_accepted_as_indefinite_templates() -> None:
    script = CommandScript.decode(h("AC 80 22 05 80 CA FF 21 00 00 00"))
    assert script == CommandScript((GET_DATA,), indefinite=True)
    assert script.encode() == SPEC_COMMAND  # always produced as AE
    response = ResponseScript.decode(h("AD 80 80 01 01 23 04 01 02 90 00 00 00"))
    assert response == ResponseScript(1, (h("01 02 90 00"),))
    assert response.encode() == SPEC_RESPONSE


def test_comprehension_required_tags_are_accepted() -> None:
    assert CommandScript.decode(h("AA 07 A2 05 80 CA FF 21 00")).commands == (GET_DATA,)
    response = ResponseScript.decode(h("AB 07 80 01 01 A3 02 90 00"))
    assert response == ResponseScript(1, (h("90 00"),), indefinite=False)
    assert response.encode() == h("AB 07 80 01 01 23 02 90 00")


def test_indefinite_response_without_count() -> None:
    response = ResponseScript.decode(h("AF 80 23 02 90 00 23 02 6A 82 00 00"))
    assert response == ResponseScript(2, (h("90 00"), h("6A 82")))
    assert response.encode() == h("AF 80 80 01 02 23 02 90 00 23 02 6A 82 00 00")


def test_bad_format_round_trips() -> None:
    for indefinite in (True, False):
        before = ResponseScript(
            1, (h("90 00"),), bad_format=BadFormat.WRONG_LENGTH, indefinite=indefinite
        )
        encoded = before.encode()
        assert encoded.endswith(h("23 02 90 00 90 01 02") + (h("00 00") if indefinite else b""))
        assert ResponseScript.decode(encoded) == before
    only = ResponseScript(0, (), bad_format=BadFormat.UNKNOWN_TAG, indefinite=False)
    assert only.encode() == h("AB 06 80 01 00 90 01 01")
    assert ResponseScript.decode(only.encode()) == only
    assert ResponseScript.decode(h("AB 06 80 01 00 90 01 7F")).bad_format == 0x7F


def test_empty_response_script() -> None:
    assert ResponseScript(0, (), indefinite=False).encode() == h("AB 03 80 01 00")
    assert ResponseScript.decode(h("AB 03 80 01 00")) == ResponseScript(0, (), indefinite=False)
    assert ResponseScript.decode(h("AF 80 00 00")) == ResponseScript(0, ())


def test_values_are_normalised_to_tuples_of_bytes() -> None:
    script = CommandScript([bytearray(GET_DATA)])  # type: ignore[arg-type]
    assert script.commands == (GET_DATA,)
    assert type(script.commands[0]) is bytes
    response = ResponseScript(1, [memoryview(h("90 00"))])  # type: ignore[arg-type]
    assert response.responses == (h("90 00"),)
    assert hash(script) == hash(CommandScript((GET_DATA,)))


def test_decoders_accept_bytes_like() -> None:
    assert CommandScript.decode(bytearray(SPEC_COMMAND)) == CommandScript((GET_DATA,))
    view = memoryview(SPEC_RESPONSE)
    assert ResponseScript.decode(view).executed == 1  # type: ignore[arg-type]


# -- refusals ------------------------------------------------------------------------------------

_MANY_COMMANDS = "AE 80 " + "22 04 00 00 00 00 " * 256 + "00 00"
_MANY_RESPONSES = "AF 80 " + "23 02 90 00 " * 256 + "00 00"

COMMAND_REFUSALS = [
    ("", 0, "empty input, expected a Command Scripting Template"),
    ("30 00", 0, r"expected a Command Scripting Template \(tag AA, AE, AC\), found tag 30"),
    ("AB 00", 0, r"expected a Command Scripting Template \(tag AA, AE, AC\), found tag AB"),
    ("AA", 1, "tag AA has no length"),
    ("AE", 1, "tag AE has no length"),
    ("AA 82 01", 1, "the length field of tag AA is truncated"),
    ("AA 85 00 00 00 00 07", 1, "tag AA has a length field of 6 bytes"),
    ("AA 80 22 05 80 CA FF 21 00 00 00", 1, "tag AA needs a definite length, found 80"),
    ("AE 07 22 05 80 CA FF 21 00", 1, "tag AE needs the indefinite length 80, found 07"),
    ("AC 07 22 05 80 CA FF 21 00", 1, "tag AC needs the indefinite length 80, found 07"),
    (
        "AA 08 22 05 80 CA FF 21 00",
        2,
        r"the Command Scripting Template \(8 bytes\) runs past the end of the input "
        r"\(7 bytes left\)",
    ),
    (
        "AA 06 22 05 80 CA FF 21",
        4,
        r"the value of tag 22 \(5 bytes\) runs past the end of the Command Scripting Template "
        r"\(4 bytes left\)",
    ),
    ("AE 80 22 05 80 CA", 4, r"the value of tag 22 \(5 bytes\) runs past"),
    ("AE 80 22 82 01", 3, "the length field of tag 22 is truncated"),
    ("AE 80 22", 3, "tag 22 has no length"),
    ("AE 80 22 80 80 CA FF 21 00 00 00 00 00", 3, r"tag 22 has the indefinite length \(80\)"),
    ("AE 80 22 84 00 00 00 05 80 CA FF 21 00 00 00", 3, "tag 22 has a length field of 5 bytes"),
    ("AE 80", 2, r"the Command Scripting Template has no end-of-contents \(00 00\)"),
    ("AE 80 22 05 80 CA FF 21 00", 9, r"the Command Scripting Template has no end-of-contents"),
    ("AE 80 22 05 80 CA FF 21 00 00", 9, r"the Command Scripting Template has no end-of-contents"),
    ("AA 07 22 05 80 CA FF 21 00 00", 9, "1 bytes after the end of the Command Scripting"),
    ("AE 80 22 05 80 CA FF 21 00 00 00 FF FF", 11, "2 bytes after the end of the Command"),
    ("AE 80 81 01 00 00 00", 2, r"tag 81 \(immediate action\) is not supported"),
    ("AE 80 22 04 00 00 00 00 82 01 00 00 00", 8, r"tag 82 \(error action\) is not supported"),
    ("AA 03 83 01 01", 2, r"tag 83 \(script chaining\) is not supported"),
    ("AE 80 23 02 90 00 00 00", 2, "unknown tag 23 in the Command Scripting Template"),
    ("AE 80 00 01 00 00 00", 2, "unknown tag 00 in the Command Scripting Template"),
    ("AE 80 9F 7F 01 00 00 00", 2, "unknown tag 9F"),
    ("AE 80 22 03 80 CA FF 00 00", 4, "C-APDU 1 has 3 bytes, fewer than CLA INS P1 P2"),
    ("AA 08 22 04 00 00 00 00 22 00", 10, "C-APDU 2 has 0 bytes, fewer than CLA INS P1 P2"),
    ("AE 80 00 00", 0, "the Command Scripting Template holds no C-APDU"),
    ("AA 00", 0, "the Command Scripting Template holds no C-APDU"),
    (_MANY_COMMANDS, 2 + 255 * 6, "more than 255 C-APDUs in one script"),
]


@pytest.mark.parametrize(("data", "offset", "message"), COMMAND_REFUSALS)
def test_command_refusals(data: str, offset: int, message: str) -> None:
    with pytest.raises(ScriptFormatError, match=f"^offset {offset}: {message}") as caught:
        CommandScript.decode(h(data))
    assert caught.value.offset == offset


RESPONSE_REFUSALS = [
    ("", 0, "empty input, expected a Response Scripting Template"),
    ("AA 00", 0, r"expected a Response Scripting Template \(tag AB, AF, AD\), found tag AA"),
    ("AB", 1, "tag AB has no length"),
    ("AB 81", 1, "the length field of tag AB is truncated"),
    ("AB 80 80 01 00 00 00", 1, "tag AB needs a definite length, found 80"),
    ("AF 03 80 01 00", 1, "tag AF needs the indefinite length 80, found 03"),
    ("AD 03 80 01 00", 1, "tag AD needs the indefinite length 80, found 03"),
    ("AB 06 80 01 01 23 02 90", 7, r"the value of tag 23 \(2 bytes\) runs past"),
    (
        "AB 09 80 01 01 23 02 90 00",
        2,
        r"the Response Scripting Template \(9 bytes\) runs past the end of the input",
    ),
    ("AF 80 80 01 01 23 02 90 00", 9, r"the Response Scripting Template has no end-of-contents"),
    ("AB 03 80 01 00 00", 5, "1 bytes after the end of the Response Scripting Template"),
    ("AF 80 80 01 00 00 00 00", 7, "1 bytes after the end of the Response Scripting Template"),
    ("AB 06 80 01 01 81 01 01", 5, r"tag 81 \(immediate action response\) is not supported"),
    ("AF 80 83 01 01 00 00", 2, r"tag 83 \(script chaining response\) is not supported"),
    ("AB 03 82 01 00", 2, "unknown tag 82 in the Response Scripting Template"),
    ("AB 03 22 01 00", 2, "unknown tag 22 in the Response Scripting Template"),
    ("AB 06 80 01 01 23 01 90", 7, "R-APDU 1 has 1 bytes, fewer than SW1 SW2"),
    ("AF 80 23 00 00 00", 4, "R-APDU 1 has 0 bytes, fewer than SW1 SW2"),
    ("AB 07 80 01 02 23 02 90 00", 4, "executed count 2 but 1 R-APDUs"),
    ("AB 03 80 01 01", 4, "executed count 1 but 0 R-APDUs"),
    ("AF 80 80 01 00 23 02 90 00 00 00", 4, "executed count 0 but 1 R-APDUs"),
    ("AB 04 80 02 00 01", 4, r"the executed count \(tag 80\) has 2 bytes, expected 1"),
    ("AB 02 80 00", 4, r"the executed count \(tag 80\) has 0 bytes, expected 1"),
    ("AB 05 80 01 00 90 00", 7, r"the bad-format object \(tag 90\) has 0 bytes, expected 1"),
    ("AB 07 23 02 90 00 80 01 01", 6, r"the executed count \(tag 80\) must be the first object"),
    ("AB 04 23 02 90 00", 2, r"the Response Scripting Template has no executed count \(tag 80\)"),
    ("AB 00", 2, r"the Response Scripting Template has no executed count \(tag 80\) first$"),
    (
        "AB 0A 80 01 01 90 01 01 23 02 90 00",
        8,
        r"the bad-format object \(tag 90\) must be the last object",
    ),
    ("AB 09 80 01 00 90 01 01 90 01 02", 8, r"the bad-format object \(tag 90\) must be the last"),
    (_MANY_RESPONSES, 2 + 255 * 4, "more than 255 R-APDUs in one response"),
]


@pytest.mark.parametrize(("data", "offset", "message"), RESPONSE_REFUSALS)
def test_response_refusals(data: str, offset: int, message: str) -> None:
    with pytest.raises(ScriptFormatError, match=f"^offset {offset}: {message}") as caught:
        ResponseScript.decode(h(data))
    assert caught.value.offset == offset


def test_size_limits_on_input() -> None:
    command = b"\xaa" + bytes(MAX_COMMAND_SCRIPT_SIZE)
    with pytest.raises(
        ScriptFormatError,
        match=r"^offset 0: Command Scripting Template of 65537 bytes exceeds the 65536-byte",
    ):
        CommandScript.decode(command)
    response = b"\xab" + bytes(MAX_RESPONSE_SCRIPT_SIZE)
    with pytest.raises(ScriptFormatError, match=r"of 1048577 bytes exceeds the 1048576-byte"):
        ResponseScript.decode(response)


@pytest.mark.parametrize("indefinite", [True, False])
def test_largest_command_script_fits_the_limit(indefinite: bool) -> None:
    # AA 82 hi lo (or AE 80 .. 00 00) | 22 82 hi lo | C-APDU: 8 bytes around the C-APDU
    command = extended_apdu(MAX_COMMAND_SCRIPT_SIZE - 8)
    script = CommandScript((command,), indefinite=indefinite)
    assert len(script.encode()) == MAX_COMMAND_SCRIPT_SIZE
    assert CommandScript.decode(script.encode()) == script
    with pytest.raises(ScriptFormatError, match="of 65537 bytes exceeds the 65536-byte limit"):
        CommandScript((extended_apdu(MAX_COMMAND_SCRIPT_SIZE - 7),), indefinite=indefinite)


def test_errors_are_secure_component_and_value_errors() -> None:
    with pytest.raises(ScriptFormatError) as caught:
        CommandScript.decode(b"")
    assert isinstance(caught.value, SecureComponentError)
    assert isinstance(caught.value, ValueError)
    assert issubclass(ScriptExecutionError, SecureComponentError)
    assert not issubclass(ScriptExecutionError, ScriptFormatError)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: CommandScript(()), "needs at least one C-APDU"),
        (lambda: CommandScript((GET_DATA,) * 256), "256 C-APDUs, at most 255 fit in one script"),
        (lambda: CommandScript((GET_DATA, h("80 CA FF"))), "C-APDU 2 has 3 bytes"),
        (lambda: CommandScript((bytes(70000),)), "exceeds the 65536-byte limit"),
        (lambda: ResponseScript(2, (h("90 00"),)), "executed count 2 but 1 R-APDUs"),
        (lambda: ResponseScript(0, (h("90 00"),)), "executed count 0 but 1 R-APDUs"),
        (
            lambda: ResponseScript(0, (h("90 00"),), bad_format=1),
            "executed count 0 but 1 R-APDUs",
        ),
        (lambda: ResponseScript(1, (h("90"),)), "R-APDU 1 has 1 bytes, fewer than SW1 SW2"),
        (lambda: ResponseScript(256, (h("90 00"),) * 256), "256 R-APDUs, at most 255"),
        (lambda: ResponseScript(0, (), bad_format=256), "bad format 256 is not one byte"),
        (lambda: ResponseScript(0, (), bad_format=-1), "bad format -1 is not one byte"),
        (lambda: ResponseScript(0, (), bad_format=True), "bad format True is not an integer"),
        (lambda: ResponseScript(True, (h("90 00"),)), "executed count True is not an integer"),
        (
            lambda: ResponseScript(17, (bytes(65536),) * 17),
            "exceeds the 1048576-byte limit",
        ),
    ],
)
def test_values_built_in_code_are_checked(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ScriptFormatError, match=message) as caught:
        build()
    assert caught.value.offset is None


# -- running -------------------------------------------------------------------------------------


class FakeCard:
    """Answers by C-APDU from a table (default 9000) and records what it was sent."""

    def __init__(self, answers: dict[str, str] | None = None) -> None:
        self.answers = {h(k): h(v) for k, v in (answers or {}).items()}
        self.sent: list[bytes] = []

    def __call__(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return self.answers.get(apdu, h("90 00"))


SELECT_ISD = h("00 A4 04 00 08 A0 00 00 01 51 00 00 00")
GET_STATUS = h("80 F2 80 02 02 4F 00 00")
GET_CPLC = h("80 CA 9F 7F 00")


def test_run_all_succeed() -> None:
    card = FakeCard(
        {
            SELECT_ISD.hex(): "6F 10 84 08 A0 00 00 01 51 00 00 00 A5 04 9F 65 01 FF 90 00",
            GET_STATUS.hex(): "E3 06 4F 04 A0 00 00 01 91 10",  # proactive command pending
            GET_CPLC.hex(): "9F 7F 01 00 92 01",
        }
    )
    script = CommandScript((SELECT_ISD, GET_STATUS, GET_CPLC))
    response = run_script(script, card)
    assert card.sent == [SELECT_ISD, GET_STATUS, GET_CPLC]
    assert response.executed == 3
    assert response.responses == tuple(card.answers[c] for c in card.sent)
    assert response.indefinite is True
    assert ResponseScript.decode(response.encode()) == response


def test_run_warnings_continue() -> None:
    card = FakeCard({GET_CPLC.hex(): "01 02 62 82", GET_STATUS.hex(): "63 10"})
    script = CommandScript((GET_CPLC, GET_STATUS, SELECT_ISD), indefinite=False)
    response = run_script(script, card)
    assert card.sent == [GET_CPLC, GET_STATUS, SELECT_ISD]
    assert response == ResponseScript(
        3, (h("01 02 62 82"), h("63 10"), h("90 00")), indefinite=False
    )


@pytest.mark.parametrize("error", ["6A 82", "69 82", "6D 00", "61 10", "6C 05", "00 00", "FF FF"])
def test_run_error_stops_and_is_counted(error: str) -> None:
    card = FakeCard({GET_STATUS.hex(): error})
    script = CommandScript((SELECT_ISD, GET_STATUS, GET_CPLC))
    response = run_script(script, card)
    assert card.sent == [SELECT_ISD, GET_STATUS]  # GET DATA was never sent
    assert response == ResponseScript(2, (h("90 00"), h(error)))
    assert response.encode() == h("AF 80 80 01 02 23 02 90 00 23 02") + h(error) + h("00 00")


def test_run_error_on_the_first_command() -> None:
    card = FakeCard({SELECT_ISD.hex(): "6A 82"})
    response = run_script(CommandScript((SELECT_ISD, GET_CPLC), indefinite=False), card)
    assert card.sent == [SELECT_ISD]
    assert response.encode() == h("AB 07 80 01 01 23 02 6A 82")


@pytest.mark.parametrize("answer", [b"", b"\x90"])
def test_run_answer_without_status_word(answer: bytes) -> None:
    card = FakeCard({GET_STATUS.hex(): answer.hex()})
    with pytest.raises(
        ScriptExecutionError,
        match=rf"^C-APDU 2 of 3 \(INS F2\): the card answered {len(answer)} bytes, "
        "fewer than SW1 SW2$",
    ):
        run_script(CommandScript((SELECT_ISD, GET_STATUS, GET_CPLC)), card)
    assert card.sent == [SELECT_ISD, GET_STATUS]


def test_run_transmit_errors_propagate() -> None:
    class Gone(SecureComponentError):
        pass

    def transmit(apdu: bytes) -> bytes:
        raise Gone("card removed")

    with pytest.raises(Gone, match="card removed"):
        run_script(CommandScript((GET_CPLC,)), transmit)


def test_run_accepts_bytes_like_answers() -> None:
    response = run_script(CommandScript((GET_CPLC,)), lambda apdu: bytearray(b"\x90\x00"))
    assert response.responses == (b"\x90\x00",)
    assert type(response.responses[0]) is bytes


def test_run_answers_exceeding_the_response_limit() -> None:
    card = FakeCard({GET_CPLC.hex(): (bytes(65534) + h("90 00")).hex()})
    with pytest.raises(
        ScriptExecutionError,
        match=r"^the answers to C-APDUs 1\.\.16 of 20 exceed the 1048576-byte response limit$",
    ):
        run_script(CommandScript((GET_CPLC,) * 20), card)
    assert len(card.sent) == 16


@pytest.mark.parametrize(
    ("sw", "expected"),
    [
        (0x9000, True),
        (0x9101, True),
        (0x9210, True),
        (0x6200, True),
        (0x6282, True),
        (0x63C2, True),
        (0x6100, False),
        (0x6700, False),
        (0x6A82, False),
        (0x6F00, False),
        (0x9300, False),
        (0x0000, False),
    ],
)
def test_continues(sw: int, expected: bool) -> None:
    assert continues(sw) is expected


# -- fuzz ----------------------------------------------------------------------------------------

_VOCABULARY = [
    b"\xaa",
    b"\xab",
    b"\xac",
    b"\xad",
    b"\xae",
    b"\xaf",
    b"\x22",
    b"\x23",
    b"\xa2",
    b"\xa3",
    b"\x80",
    b"\x81",
    b"\x82",
    b"\x83",
    b"\x84",
    b"\x90",
    b"\x00",
    b"\x00\x00",
    b"\x01",
    b"\x02",
    b"\x04",
    b"\x05",
    b"\x7f",
    b"\xff",
    b"\x90\x00",
]


def _random_command_script(rng: random.Random) -> CommandScript:
    count = rng.choice([1, 1, 2, 3, 5, rng.randint(1, 20)])
    commands = tuple(
        rng.randbytes(rng.choice([4, 5, rng.randint(4, 40), 200])) for _ in range(count)
    )
    return CommandScript(commands, indefinite=rng.random() < 0.5)


def _random_response_script(rng: random.Random) -> ResponseScript:
    count = rng.choice([0, 1, 2, 3, rng.randint(0, 20)])
    responses = tuple(
        rng.randbytes(rng.choice([2, 4, rng.randint(2, 40), 140])) for _ in range(count)
    )
    bad = rng.choice([None, None, None, rng.randint(0, 255)])
    return ResponseScript(count, responses, bad_format=bad, indefinite=rng.random() < 0.5)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(6)
        pos = rng.randint(0, len(buf))
        if choice == 0 and buf:  # flip a byte
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif choice == 1:  # truncate
            del buf[pos:]
        elif choice == 2:  # insert from the vocabulary
            buf[pos:pos] = rng.choice(_VOCABULARY)
        elif choice == 3 and buf:  # delete a run
            del buf[pos : pos + rng.randint(1, 4)]
        elif choice == 4:  # append
            buf += rng.choice(_VOCABULARY)
        elif buf:  # nudge a byte
            index = min(pos, len(buf) - 1)
            buf[index] = (buf[index] + rng.choice([-1, 1])) % 256
    return bytes(buf)


def _fuzz_input(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 48))
    if kind == 1:
        return b"".join(rng.choice(_VOCABULARY) for _ in range(rng.randint(0, 16)))
    if kind == 2:
        return _mutate(rng, _random_command_script(rng).encode())
    return _mutate(rng, _random_response_script(rng).encode())


def test_fuzz_decoders_raise_only_script_format_error() -> None:
    rng = random.Random(0x102226)
    decoded = {CommandScript: 0, ResponseScript: 0}
    refused = {CommandScript: 0, ResponseScript: 0}
    for _ in range(25_000):
        data = _fuzz_input(rng)
        for kind in (CommandScript, ResponseScript):
            try:
                value = kind.decode(data)
            except ScriptFormatError:
                refused[kind] += 1
                continue
            decoded[kind] += 1
            assert kind.decode(value.encode()) == value, data.hex()
    # the run reaches the decoders' success paths as well as their refusals
    for kind in (CommandScript, ResponseScript):
        assert decoded[kind] > 500, decoded
        assert refused[kind] > 10_000, refused


def test_fuzz_valid_scripts_round_trip_bytes() -> None:
    rng = random.Random(226)
    for _ in range(2_000):
        script = _random_command_script(rng)
        assert CommandScript.decode(script.encode()) == script
        response = _random_response_script(rng)
        assert ResponseScript.decode(response.encode()).encode() == response.encode()
