"""Remote APDU scripts in the *expanded* remote format of ETSI TS 102 226 §5.2, as carried by
GlobalPlatform Amendment B (RAM over HTTP, GPC_SPE_011) and SERAM: a sans-IO codec and runner.

A *Command Scripting Template* carries C-APDUs in order; the card (or the agent in front of it)
runs them and answers with a *Response Scripting Template*::

    command   AA <len> { 22 <len> C-APDU }*              definite length
              AE 80    { 22 <len> C-APDU }*  00 00       indefinite length (end-of-contents)
    response  AB <len> 80 01 <n> { 23 <len> R-APDU }* [90 01 <bad format>]
              AF 80    80 01 <n> { 23 <len> R-APDU }* [90 01 <bad format>]  00 00

An R-APDU is the response data followed by SW1 SW2. The inner objects always have definite
BER lengths (``xx``, ``81 xx``, ``82 xx xx``, ``83 xx xx xx``); only the outer template may use
the indefinite form. The response is encoded in the same form as the command script it answers.

Supported: C-APDU lists only. The other objects of the command template — ``81`` immediate
action, ``82`` error action, ``83`` script chaining — and the matching ``81``/``83`` objects of
the response template are refused with :class:`ScriptFormatError`, which is the only error the
decoders raise on arbitrary bytes (its message names the problem and the byte offset).

Rules chosen here (the TS 102 226 text itself was not at hand):

- ``executed`` always equals the number of R-APDUs. With a *bad format* object (``90``) the
  count and the R-APDUs are those of the commands run before the card met the format error.
- A response script holds at most 255 R-APDUs (the count is one byte) and a command script at
  most 255 C-APDUs; a command script is at most :data:`MAX_COMMAND_SCRIPT_SIZE` bytes and a
  response script at most :data:`MAX_RESPONSE_SCRIPT_SIZE` bytes.
- :func:`run_script` continues after SW1 ``90``, ``91``, ``92`` (success, proactive command
  pending, …) and the warnings ``62``, ``63`` (:func:`continues`); any other status word ends
  the script, and that R-APDU is the last one returned and counted.

>>> script = CommandScript.decode(bytes.fromhex("AE 80 22 05 80 CA FF 21 00 00 00"))
>>> [command.hex() for command in script.commands], script.indefinite
(['80caff2100'], True)
>>> script.encode().hex(" ").upper()
'AE 80 22 05 80 CA FF 21 00 00 00'
>>> response = run_script(script, lambda apdu: bytes.fromhex("01 02 90 00"))
>>> response
ResponseScript(executed=1, responses=(b'\\x01\\x02\\x90\\x00',), bad_format=None, indefinite=True)
>>> response.encode().hex(" ").upper()
'AF 80 80 01 01 23 04 01 02 90 00 00 00'
>>> ResponseScript.decode(response.encode()) == response
True
"""

# Sources. [V] = checked, [U] = unconfirmed.
# - [V] The template and object tags (AA/AB definite, AE/AF indefinite; 22 C-APDU, 81 immediate
#   action, 82 error action, 83 script chaining; 23 R-APDU, 80 number of executed C-APDUs,
#   81 immediate action response, 83 script chaining response, 90 bad format): the project's
#   spec reference §3.2 (Wireshark's packet-card_app_toolkit.c tag list), cross-checked with the
#   `search` tool against a public TS 101 220 §7.2 tag table (tables 7.18-7.20) and pySim-derived
#   code citing TS 102 226 tables 5.2/5.2a/5.10-5.16. The spec example in the module docstring is
#   from the reference.
# - [U] AC/AD as indefinite templates: a pySim TS 101 220 table lists them, Wireshark and card
#   traces use AE/AF. Accepted on input, never produced.
# - [U] A2/A3 (22/23 with the comprehension-required bit of TS 101 220 §7.1.1): seen accepted by
#   a third-party RAM test suite; accepted on input, never produced.
# - [U] The count object 80 in the *indefinite* response: present in the reference's example and
#   in third-party traces, but one pySim-derived comment says TS 102 226 table 5.10a omits it.
#   Always produced; when missing from an indefinite response on input, the count is the number of
#   R-APDUs. The definite form requires it.
# - [U] Bad-format values 01 unknown tag, 02 wrong length, 03 length not found (TS 102 226
#   table 5.12 as cited by pySim-derived code); any byte is accepted.
# - [U] Which status words let a script continue (see run_script): chosen, not read in TS 102 226.

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from lwm2m.buffer import Buffer
from lwm2m.errors import SecureComponentError

__all__ = [
    "MAX_COMMANDS",
    "MAX_COMMAND_SCRIPT_SIZE",
    "MAX_RESPONSE_SCRIPT_SIZE",
    "BadFormat",
    "CommandScript",
    "ResponseScript",
    "ScriptExecutionError",
    "ScriptFormatError",
    "continues",
    "run_script",
]

#: At most this many C-APDUs in a script (and R-APDUs in a response): the count is one byte.
MAX_COMMANDS = 255
#: The largest command script accepted or produced, in bytes.
MAX_COMMAND_SCRIPT_SIZE = 64 * 1024
#: The largest response script accepted or produced, in bytes (255 answers of 256 bytes already
#: exceed 64 KiB, and extended-length answers may be far larger).
MAX_RESPONSE_SCRIPT_SIZE = 1024 * 1024

_COMMAND_DEFINITE = 0xAA
_COMMAND_INDEFINITE = (0xAE, 0xAC)
_RESPONSE_DEFINITE = 0xAB
_RESPONSE_INDEFINITE = (0xAF, 0xAD)
_C_APDU = (0x22, 0xA2)
_R_APDU = (0x23, 0xA3)
_EXECUTED = 0x80
_BAD_FORMAT = 0x90
_INDEFINITE_LENGTH = 0x80
_END_OF_CONTENTS = b"\x00\x00"

_UNSUPPORTED_IN_COMMAND = {
    0x81: "immediate action",
    0x82: "error action",
    0x83: "script chaining",
}
_UNSUPPORTED_IN_RESPONSE = {
    0x81: "immediate action response",
    0x83: "script chaining response",
}

#: SW1 values after which the next C-APDU is sent [U]: 90 normal ending, 91 normal ending with a
#: proactive command pending, 92 normal ending with extra information (the UICC's normal-processing
#: status words, ETSI TS 102 221 §10.2.1; meaning of 92 not checked), 62/63 warnings.
_CONTINUE_SW1 = frozenset({0x90, 0x91, 0x92, 0x62, 0x63})

_COMMAND_NAME = "Command Scripting Template"
_RESPONSE_NAME = "Response Scripting Template"


class ScriptFormatError(SecureComponentError, ValueError):
    """Bytes or values that are not a supported expanded-format script; ``offset`` is the byte
    the problem was found at (None for values built in code)."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(message if offset is None else f"offset {offset}: {message}")


class ScriptExecutionError(SecureComponentError, ValueError):
    """:func:`run_script` could not build a response: the card's answer had no status word, or
    the answers outgrew :data:`MAX_RESPONSE_SCRIPT_SIZE`."""


class BadFormat(IntEnum):
    """Error types of the bad-format object ``90`` (TS 102 226 table 5.12) [U]."""

    UNKNOWN_TAG = 0x01
    WRONG_LENGTH = 0x02
    LENGTH_NOT_FOUND = 0x03


# -- lengths -------------------------------------------------------------------------------------


def _length_field(length: int) -> bytes:
    """The shortest definite BER length field (X.690 §8.1.3)."""
    if length < 0x80:
        return bytes([length])
    width = (length.bit_length() + 7) // 8
    return bytes([0x80 | width]) + length.to_bytes(width, "big")


def _tlv_size(length: int) -> int:
    return 1 + len(_length_field(length)) + length


def _template_size(body: int, indefinite: bool) -> int:
    return 2 + body + len(_END_OF_CONTENTS) if indefinite else _tlv_size(body)


def _push_tlv(buf: Buffer, tag: int, value: bytes) -> None:
    buf.push_uint8(tag)
    buf.push_bytes(_length_field(len(value)))
    buf.push_bytes(value)


def _wrap(tag: int, body: bytes, indefinite: bool) -> bytes:
    buf = Buffer()
    if indefinite:
        buf.push_uint8(tag)
        buf.push_uint8(_INDEFINITE_LENGTH)
        buf.push_bytes(body)
        buf.push_bytes(_END_OF_CONTENTS)
    else:
        _push_tlv(buf, tag, body)
    return buf.data


# -- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Item:
    tag: int
    offset: int
    value_offset: int
    value: bytes


def _pull_length(buf: Buffer, end: int, what: str) -> int:
    """A definite length field of at most 4 bytes for ``what``, not reading past ``end``."""
    at = buf.tell()
    if at >= end:
        raise ScriptFormatError(f"{what} has no length", at)
    first = buf.pull_uint8()
    if first < 0x80:
        return first
    if first == _INDEFINITE_LENGTH:
        raise ScriptFormatError(f"{what} has the indefinite length (80)", at)
    width = first & 0x7F
    if width > 3:
        raise ScriptFormatError(f"{what} has a length field of {width + 1} bytes", at)
    if end - buf.tell() < width:
        raise ScriptFormatError(f"the length field of {what} is truncated", at)
    return buf.pull_uint(width)


def _pull_item(buf: Buffer, end: int, check_tag: Callable[[int, int], None], name: str) -> _Item:
    at = buf.tell()
    tag = buf.pull_uint8()
    check_tag(tag, at)
    length = _pull_length(buf, end, f"tag {tag:02X}")
    value_at = buf.tell()
    if length > end - value_at:
        raise ScriptFormatError(
            f"the value of tag {tag:02X} ({length} bytes) runs past the end of the {name} "
            f"({end - value_at} bytes left)",
            value_at,
        )
    return _Item(tag, at, value_at, buf.pull_bytes(length))


def _pull_template(
    data: bytes,
    *,
    name: str,
    definite: int,
    indefinite: tuple[int, ...],
    limit: int,
    check_tag: Callable[[int, int], None],
) -> tuple[list[_Item], bool]:
    """The inner objects of the one template ``data`` must be, and whether it was indefinite."""
    if len(data) > limit:
        raise ScriptFormatError(f"{name} of {len(data)} bytes exceeds the {limit}-byte limit", 0)
    if not data:
        raise ScriptFormatError(f"empty input, expected a {name}", 0)
    buf = Buffer(data)
    tag = buf.pull_uint8()
    if tag != definite and tag not in indefinite:
        tags = ", ".join(f"{t:02X}" for t in (definite, *indefinite))
        raise ScriptFormatError(f"expected a {name} (tag {tags}), found tag {tag:02X}", 0)
    items: list[_Item] = []
    if tag == definite:
        if len(data) > 1 and data[1] == _INDEFINITE_LENGTH:
            raise ScriptFormatError(f"tag {tag:02X} needs a definite length, found 80", 1)
        length = _pull_length(buf, len(data), f"tag {tag:02X}")
        end = buf.tell() + length
        if end > len(data):
            raise ScriptFormatError(
                f"the {name} ({length} bytes) runs past the end of the input "
                f"({len(data) - buf.tell()} bytes left)",
                buf.tell(),
            )
        while buf.tell() < end:
            items.append(_pull_item(buf, end, check_tag, name))
        indefinite_form = False
    else:
        if buf.eof():
            raise ScriptFormatError(f"tag {tag:02X} has no length", 1)
        if buf.pull_uint8() != _INDEFINITE_LENGTH:
            raise ScriptFormatError(
                f"tag {tag:02X} needs the indefinite length 80, found {data[1]:02X}", 1
            )
        while True:
            at = buf.tell()
            if data[at : at + 2] == _END_OF_CONTENTS:
                buf.seek(at + 2)
                break
            if buf.eof() or data[at:] == b"\x00":
                raise ScriptFormatError(f"the {name} has no end-of-contents (00 00)", at)
            items.append(_pull_item(buf, len(data), check_tag, name))
        indefinite_form = True
    if not buf.eof():
        raise ScriptFormatError(f"{buf.remaining()} bytes after the end of the {name}", buf.tell())
    return items, indefinite_form


def _tag_checker(
    allowed: frozenset[int], unsupported: dict[int, str], name: str
) -> Callable[[int, int], None]:
    """The check of one template's item tags: ``allowed`` pass, ``unsupported`` (TS 102 226
    tags this codec does not implement) and every other tag raise, naming the tag."""

    def check(tag: int, at: int) -> None:
        if tag in allowed:
            return
        if tag in unsupported:
            raise ScriptFormatError(f"tag {tag:02X} ({unsupported[tag]}) is not supported", at)
        raise ScriptFormatError(f"unknown tag {tag:02X} in the {name}", at)

    return check


_check_command_tag = _tag_checker(frozenset(_C_APDU), _UNSUPPORTED_IN_COMMAND, _COMMAND_NAME)
_check_response_tag = _tag_checker(
    frozenset((*_R_APDU, _EXECUTED, _BAD_FORMAT)), _UNSUPPORTED_IN_RESPONSE, _RESPONSE_NAME
)


def _one_byte(item: _Item, what: str) -> int:
    if len(item.value) != 1:
        raise ScriptFormatError(
            f"{what} (tag {item.tag:02X}) has {len(item.value)} bytes, expected 1",
            item.value_offset,
        )
    return item.value[0]


# -- values --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandScript:
    """A Command Scripting Template: C-APDUs (``CLA INS P1 P2 [...]``, short or extended
    length, sent as they are) to run in order, and whether it is coded with the indefinite
    length (``AE``) or a definite one (``AA``).

    >>> CommandScript((bytes.fromhex("00A4040000"),), indefinite=False).encode().hex()
    'aa07220500a4040000'
    >>> CommandScript(())
    Traceback (most recent call last):
    ...
    lwm2m.secure.ram.ScriptFormatError: a Command Scripting Template needs at least one C-APDU
    """

    commands: tuple[bytes, ...]
    indefinite: bool = True

    def __repr__(self) -> str:
        # Headers only: the data of PUT KEY or STORE DATA may be keys (as CommandApdu's repr).
        headers = ", ".join(c[:4].hex(" ").upper() for c in self.commands)
        return f"CommandScript([{headers}], indefinite={self.indefinite})"

    def __post_init__(self) -> None:
        commands = tuple(bytes(command) for command in self.commands)
        object.__setattr__(self, "commands", commands)
        if not commands:
            raise ScriptFormatError(f"a {_COMMAND_NAME} needs at least one C-APDU")
        if len(commands) > MAX_COMMANDS:
            raise ScriptFormatError(
                f"{len(commands)} C-APDUs, at most {MAX_COMMANDS} fit in one script"
            )
        for index, command in enumerate(commands):
            if len(command) < 4:
                raise ScriptFormatError(
                    f"C-APDU {index + 1} has {len(command)} bytes, fewer than CLA INS P1 P2"
                )
        size = _template_size(sum(_tlv_size(len(c)) for c in commands), self.indefinite)
        if size > MAX_COMMAND_SCRIPT_SIZE:
            raise ScriptFormatError(
                f"{_COMMAND_NAME} of {size} bytes exceeds the {MAX_COMMAND_SCRIPT_SIZE}-byte limit"
            )

    def encode(self) -> bytes:
        """``AE 80 {22 len C-APDU}* 00 00``, or ``AA len {22 len C-APDU}*``."""
        body = Buffer()
        for command in self.commands:
            _push_tlv(body, _C_APDU[0], command)
        return _wrap(
            _COMMAND_INDEFINITE[0] if self.indefinite else _COMMAND_DEFINITE,
            body.data,
            self.indefinite,
        )

    @classmethod
    def decode(cls, data: bytes) -> CommandScript:
        """The one Command Scripting Template that ``data`` must be (``AA``, ``AE`` or ``AC``),
        with nothing after it; raises only :class:`ScriptFormatError`."""
        items, indefinite = _pull_template(
            bytes(data),
            name=_COMMAND_NAME,
            definite=_COMMAND_DEFINITE,
            indefinite=_COMMAND_INDEFINITE,
            limit=MAX_COMMAND_SCRIPT_SIZE,
            check_tag=_check_command_tag,
        )
        if not items:
            raise ScriptFormatError(f"the {_COMMAND_NAME} holds no C-APDU", 0)
        if len(items) > MAX_COMMANDS:
            raise ScriptFormatError(
                f"more than {MAX_COMMANDS} C-APDUs in one script", items[MAX_COMMANDS].offset
            )
        for index, item in enumerate(items):
            if len(item.value) < 4:
                raise ScriptFormatError(
                    f"C-APDU {index + 1} has {len(item.value)} bytes, fewer than CLA INS P1 P2",
                    item.value_offset,
                )
        return cls(tuple(item.value for item in items), indefinite)


@dataclass(frozen=True, slots=True)
class ResponseScript:
    """A Response Scripting Template: how many C-APDUs were executed, their R-APDUs (response
    data + SW1 SW2, one per executed command, in order), the optional bad-format error type
    (:class:`BadFormat`), and whether it is coded with the indefinite length (``AF``) or a
    definite one (``AB``). ``executed`` always equals ``len(responses)``.

    >>> ResponseScript(1, (bytes.fromhex("9000"),), indefinite=False).encode().hex()
    'ab0780010123029000'
    >>> ResponseScript(0, (), bad_format=BadFormat.UNKNOWN_TAG).encode().hex()
    'af808001009001010000'
    """

    executed: int
    responses: tuple[bytes, ...]
    bad_format: int | None = None
    indefinite: bool = True

    def __post_init__(self) -> None:
        responses = tuple(bytes(response) for response in self.responses)
        object.__setattr__(self, "responses", responses)
        if isinstance(self.executed, bool) or not isinstance(self.executed, int):
            raise ScriptFormatError(f"executed count {self.executed!r} is not an integer")
        if self.executed != len(responses):
            raise ScriptFormatError(f"executed count {self.executed} but {len(responses)} R-APDUs")
        if len(responses) > MAX_COMMANDS:
            raise ScriptFormatError(
                f"{len(responses)} R-APDUs, at most {MAX_COMMANDS} fit in one response"
            )
        for index, response in enumerate(responses):
            if len(response) < 2:
                raise ScriptFormatError(
                    f"R-APDU {index + 1} has {len(response)} bytes, fewer than SW1 SW2"
                )
        if self.bad_format is not None:
            if isinstance(self.bad_format, bool) or not isinstance(self.bad_format, int):
                raise ScriptFormatError(f"bad format {self.bad_format!r} is not an integer")
            if not 0 <= self.bad_format <= 0xFF:
                raise ScriptFormatError(f"bad format {self.bad_format} is not one byte")
        size = _template_size(self._body_size(), self.indefinite)
        if size > MAX_RESPONSE_SCRIPT_SIZE:
            raise ScriptFormatError(
                f"{_RESPONSE_NAME} of {size} bytes exceeds the "
                f"{MAX_RESPONSE_SCRIPT_SIZE}-byte limit"
            )

    def _body_size(self) -> int:
        size = _tlv_size(1) + sum(_tlv_size(len(r)) for r in self.responses)
        return size + (_tlv_size(1) if self.bad_format is not None else 0)

    def encode(self) -> bytes:
        """``AF 80 80 01 n {23 len R-APDU}* [90 01 x] 00 00``, or the same body after
        ``AB len``."""
        body = Buffer()
        _push_tlv(body, _EXECUTED, bytes([self.executed]))
        for response in self.responses:
            _push_tlv(body, _R_APDU[0], response)
        if self.bad_format is not None:
            _push_tlv(body, _BAD_FORMAT, bytes([self.bad_format]))
        return _wrap(
            _RESPONSE_INDEFINITE[0] if self.indefinite else _RESPONSE_DEFINITE,
            body.data,
            self.indefinite,
        )

    @classmethod
    def decode(cls, data: bytes) -> ResponseScript:
        """The one Response Scripting Template that ``data`` must be (``AB``, ``AF`` or
        ``AD``), with nothing after it: the count ``80`` first (optional in the indefinite form),
        then the R-APDUs, then at most one bad-format object; raises only
        :class:`ScriptFormatError`."""
        items, indefinite = _pull_template(
            bytes(data),
            name=_RESPONSE_NAME,
            definite=_RESPONSE_DEFINITE,
            indefinite=_RESPONSE_INDEFINITE,
            limit=MAX_RESPONSE_SCRIPT_SIZE,
            check_tag=_check_response_tag,
        )
        executed: int | None = None
        count_offset = 0
        responses: list[bytes] = []
        bad_format: int | None = None
        for index, item in enumerate(items):
            if item.tag == _EXECUTED:
                if index != 0:
                    raise ScriptFormatError(
                        "the executed count (tag 80) must be the first object", item.offset
                    )
                executed = _one_byte(item, "the executed count")
                count_offset = item.value_offset
            elif bad_format is not None:
                raise ScriptFormatError(
                    "the bad-format object (tag 90) must be the last object", item.offset
                )
            elif item.tag == _BAD_FORMAT:
                bad_format = _one_byte(item, "the bad-format object")
            else:
                if len(item.value) < 2:
                    raise ScriptFormatError(
                        f"R-APDU {len(responses) + 1} has {len(item.value)} bytes, "
                        "fewer than SW1 SW2",
                        item.value_offset,
                    )
                if len(responses) == MAX_COMMANDS:
                    raise ScriptFormatError(
                        f"more than {MAX_COMMANDS} R-APDUs in one response", item.offset
                    )
                responses.append(item.value)
        if executed is None:
            if not indefinite:
                raise ScriptFormatError(
                    f"the {_RESPONSE_NAME} has no executed count (tag 80) first",
                    items[0].offset if items else 2,
                )
            executed = len(responses)
        elif executed != len(responses):
            raise ScriptFormatError(
                f"executed count {executed} but {len(responses)} R-APDUs", count_offset
            )
        return cls(executed, tuple(responses), bad_format, indefinite)


# -- running -------------------------------------------------------------------------------------


def continues(sw: int) -> bool:
    """Whether a script goes on after a command answered with status word ``sw`` (SW1 SW2 as
    one integer): SW1 ``90``, ``91``, ``92`` or the warnings ``62``, ``63`` [U].

    >>> continues(0x9000), continues(0x9110), continues(0x6310), continues(0x6A82)
    (True, True, True, False)
    """
    return (sw >> 8) in _CONTINUE_SW1


def run_script(script: CommandScript, transmit: Callable[[bytes], bytes]) -> ResponseScript:
    """Send the C-APDUs of ``script`` in order through ``transmit`` and collect the R-APDUs.

    ``transmit`` sends one C-APDU and returns the whole R-APDU (data + SW1 SW2) with response
    chaining (61xx / GET RESPONSE, 6Cxx) already done; its own exceptions propagate unchanged.
    The script stops after the first command whose SW1 is not ``90``, ``91``, ``92``, ``62`` or
    ``63`` (:func:`continues`); that R-APDU is included and counted. The response uses the
    script's length form.

    Raises :class:`ScriptExecutionError` when an answer is shorter than SW1 SW2 (the commands
    sent so far were executed by the card) or the answers exceed
    :data:`MAX_RESPONSE_SCRIPT_SIZE`.

    >>> answers = {"00a4040000": "9000", "80ca00fe00": "6a88", "80ca00ff00": "9000"}
    >>> script = CommandScript(tuple(bytes.fromhex(c) for c in answers), indefinite=False)
    >>> response = run_script(script, lambda apdu: bytes.fromhex(answers[apdu.hex()]))
    >>> response.executed, response.encode().hex()
    (2, 'ab0b8001022302900023026a88')
    """
    responses: list[bytes] = []
    body = _tlv_size(1)
    total = len(script.commands)
    for index, command in enumerate(script.commands):
        response = bytes(transmit(command))
        if len(response) < 2:
            raise ScriptExecutionError(
                f"C-APDU {index + 1} of {total} (INS {command[1]:02X}): the card answered "
                f"{len(response)} bytes, fewer than SW1 SW2"
            )
        body += _tlv_size(len(response))
        if _template_size(body, script.indefinite) > MAX_RESPONSE_SCRIPT_SIZE:
            raise ScriptExecutionError(
                f"the answers to C-APDUs 1..{index + 1} of {total} exceed the "
                f"{MAX_RESPONSE_SCRIPT_SIZE}-byte response limit"
            )
        responses.append(response)
        if not continues(int.from_bytes(response[-2:], "big")):
            break
    return ResponseScript(len(responses), tuple(responses), indefinite=script.indefinite)
