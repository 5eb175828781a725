"""APDUs as sans-IO values: ISO/IEC 7816-4:2020 §5.1 (command-response pairs, short and
extended length), §5.4.1 (class byte: logical channels, secure messaging, command chaining) and
§5.6 (status words).

A :class:`CommandApdu` is ``CLA INS P1 P2 [Lc data] [Le]``; the four cases of §5.1 follow from
``data`` and ``le``::

    case 1   CLA INS P1 P2
    case 2   CLA INS P1 P2 Le                     short: Le 1 byte (00 = 256)
    case 3   CLA INS P1 P2 Lc data                extended: Lc = 00 hi lo, Le = [00] hi lo
    case 4   CLA INS P1 P2 Lc data Le             (0000 = 65536)

Extended length is used when the data exceed 255 bytes or Le exceeds 256, or when asked for.
A :class:`ResponseApdu` is ``data SW1 SW2``; :class:`StatusWord` knows what the common status
words mean. Nothing here does I/O: :mod:`lwm2m.secure.pcsc.transport` moves the bytes.

Class byte (§5.4.1): first interindustry values ``000x xxxx`` carry channels 0-3 in b2-b1 and
secure messaging in b4-b3; further interindustry values ``01xx xxxx`` carry channels 4-19 as
b4-b1 + 4 and secure messaging in b6. Proprietary classes (b8 = 1, e.g. GlobalPlatform's 80/84
and IoT SAFE's 80) use the same channel coding (GP Card Spec 2.3 §11.1.4).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Self

from lwm2m.buffer import Buffer
from lwm2m.errors import BufferReadError
from lwm2m.secure.pcsc.errors import ApduError, status_word_error

__all__ = [
    "MAX_CHANNEL",
    "CommandApdu",
    "ResponseApdu",
    "StatusWord",
    "channel_of",
    "has_secure_messaging",
    "pull_command_apdu",
    "pull_response_apdu",
    "push_command_apdu",
    "push_response_apdu",
    "with_channel",
    "with_secure_messaging",
]

#: Logical channels 0..19 (ISO/IEC 7816-4 §5.4.1: 4 basic + 16 further interindustry).
MAX_CHANNEL = 19

_MEANINGS: dict[int, str] = {
    0x9000: "normal processing",
    0x6200: "warning, no information given",
    0x6281: "part of returned data may be corrupted",
    0x6282: "end of file reached before reading Le bytes",
    0x6283: "selected file deactivated",
    0x6300: "verification failed",
    0x6310: "more data available",
    0x63CF: "remote administration session completed",
    0x6400: "execution error, state of memory unchanged",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6883: "last command of the chain expected",
    0x6884: "command chaining not supported",
    0x6981: "command incompatible with file structure",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed, no current EF",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "incorrect secure messaging data objects",
    0x6989: "remote administration session on-going",
    0x6A80: "incorrect parameters in the command data field",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A86: "incorrect parameters P1-P2",
    0x6A88: "referenced data or reference data not found",
    0x6B00: "wrong parameters P1-P2",
    0x6D00: "instruction code not supported or invalid",
    0x6D01: "signature mismatch",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


@dataclass(frozen=True, slots=True, order=True)
class StatusWord:
    """SW1-SW2 of a response (ISO/IEC 7816-4 §5.6).

    >>> sw = StatusWord(0x6A82)
    >>> str(sw), sw.is_success, sw.meaning
    ('6A82', False, 'file or application not found')
    >>> StatusWord(0x6110).more_data, StatusWord(0x6C00).exact_length
    (16, 256)
    """

    value: int

    def __post_init__(self) -> None:
        if type(self.value) is not int or not 0 <= self.value <= 0xFFFF:
            raise ApduError(f"status word {self.value!r} is not two bytes")

    @classmethod
    def of(cls, sw1: int, sw2: int) -> StatusWord:
        return cls((sw1 << 8) | sw2)

    @property
    def sw1(self) -> int:
        return self.value >> 8

    @property
    def sw2(self) -> int:
        return self.value & 0xFF

    @property
    def is_success(self) -> bool:
        """9000: the command completed normally."""
        return self.value == 0x9000

    @property
    def is_warning(self) -> bool:
        """62xx / 63xx: completed with a warning (data may be returned)."""
        return self.sw1 in (0x62, 0x63)

    @property
    def more_data(self) -> int | None:
        """61xx: how many response bytes GET RESPONSE can fetch (xx = 00 means 256 or more)."""
        if self.sw1 != 0x61:
            return None
        return self.sw2 or 256

    @property
    def exact_length(self) -> int | None:
        """6Cxx: the command must be re-issued with Le = xx (00 means 256)."""
        if self.sw1 != 0x6C:
            return None
        return self.sw2 or 256

    @property
    def meaning(self) -> str:
        if self.value in _MEANINGS:
            return _MEANINGS[self.value]
        match self.sw1:
            case 0x61:
                return f"{self.more_data} more response bytes available"
            case 0x6C:
                return f"wrong Le, exact length is {self.exact_length}"
            case 0x63 if self.sw2 & 0xF0 == 0xC0:
                return f"verification failed, {self.sw2 & 0x0F} tries left"
            case 0x67:
                return "wrong length"
        return "unknown status"

    def __str__(self) -> str:
        return f"{self.value:04X}"

    def __repr__(self) -> str:
        return f"StatusWord(0x{self.value:04X})"


def _check_byte(what: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFF:
        raise ApduError(f"{what} {value!r} is not a byte")


# -- class byte --------------------------------------------------------------------------------


def channel_of(cla: int) -> int:
    """The logical channel number coded in ``cla`` (ISO/IEC 7816-4 §5.4.1).

    >>> channel_of(0x00), channel_of(0x83), channel_of(0x4F), channel_of(0xE1)
    (0, 3, 19, 5)
    """
    _check_byte("CLA", cla)
    if cla == 0xFF:
        raise ApduError("CLA FF is invalid")
    if cla & 0x40:
        return (cla & 0x0F) + 4
    return cla & 0x03


def has_secure_messaging(cla: int) -> bool:
    """Whether ``cla`` indicates secure messaging (b4-b3, or b6 for channels 4-19)."""
    _check_byte("CLA", cla)
    if cla & 0x40:
        return bool(cla & 0x20)
    return bool(cla & 0x0C)


def with_channel(cla: int, channel: int) -> int:
    """``cla`` re-coded for ``channel``, keeping its class (interindustry or proprietary), its
    command-chaining bit and whether it indicates secure messaging.

    >>> hex(with_channel(0x80, 2)), hex(with_channel(0x84, 5)), hex(with_channel(0x00, 19))
    ('0x82', '0xe1', '0x4f')
    """
    if type(channel) is not int or not 0 <= channel <= MAX_CHANNEL:
        raise ApduError(f"logical channel {channel!r} is not in 0..{MAX_CHANNEL}")
    sm = has_secure_messaging(cla)
    chaining = cla & 0x10
    proprietary = cla & 0x80
    if channel <= 3:
        sm_bits = (cla & 0x0C if not cla & 0x40 else 0x04) if sm else 0
        return proprietary | chaining | sm_bits | channel
    return proprietary | 0x40 | (0x20 if sm else 0) | chaining | (channel - 4)


def with_secure_messaging(cla: int, on: bool = True) -> int:
    """``cla`` with the secure-messaging indication set (GP: b3, i.e. 80 -> 84) or cleared."""
    _check_byte("CLA", cla)
    if cla & 0x40:
        return (cla | 0x20) if on else (cla & ~0x20 & 0xFF)
    return (cla & ~0x0C & 0xFF) | (0x04 if on else 0)


# -- command APDU ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A command APDU (ISO/IEC 7816-4 §5.1).

    ``le`` is None (no response data expected) or 1..65536: 256 encodes as a short ``00``,
    65536 as an extended ``0000``. ``extended`` forces extended length fields.

    >>> CommandApdu(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A000000063504B43532D3135")).case
    3
    >>> CommandApdu(0x00, 0xB0, 0, 0, le=256).encode().hex()
    '00b0000000'
    >>> CommandApdu.decode(bytes.fromhex("00b00000000400")).le
    1024
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            _check_byte(name.upper(), value)
            object.__setattr__(self, name, int(value))  # IntEnum members become plain ints
        if type(self.data) is not bytes:
            object.__setattr__(self, "data", bytes(self.data))
        if len(self.data) > 0xFFFF:
            raise ApduError(f"command data of {len(self.data)} bytes exceed 65535")
        if self.le is not None and (type(self.le) is not int or not 1 <= self.le <= 65536):
            raise ApduError(f"Le {self.le!r} is not in 1..65536")
        if not self.extended and (len(self.data) > 255 or (self.le or 0) > 256):
            object.__setattr__(self, "extended", True)
        elif self.extended and not self.data and self.le is None:
            object.__setattr__(self, "extended", False)  # case 1 has no length fields

    @property
    def case(self) -> int:
        """The command case 1-4 of ISO/IEC 7816-4 §5.1."""
        return (3 if self.data else 1) + (1 if self.le is not None else 0)

    @property
    def channel(self) -> int:
        return channel_of(self.cla)

    @property
    def secure_messaging(self) -> bool:
        return has_secure_messaging(self.cla)

    def on_channel(self, channel: int) -> CommandApdu:
        """The same command on another logical channel."""
        return replace(self, cla=with_channel(self.cla, channel))

    def with_le(self, le: int | None) -> CommandApdu:
        return replace(self, le=le)

    def encode(self) -> bytes:
        buf = Buffer()
        push_command_apdu(buf, self)
        return buf.data

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Parse raw command bytes; raises :class:`ApduError` on anything malformed."""
        buf = Buffer(data)
        apdu = pull_command_apdu(buf)
        if not buf.eof():
            raise ApduError(f"{buf.remaining()} trailing bytes after the command APDU")
        return cls(apdu.cla, apdu.ins, apdu.p1, apdu.p2, apdu.data, apdu.le, apdu.extended)

    def __repr__(self) -> str:
        # The data field may carry key material (PUT KEY, PSK writes): show only its length.
        le = "" if self.le is None else f", le={self.le}"
        return (
            f"CommandApdu({self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X}, "
            f"{len(self.data)} data bytes{le})"
        )


def push_command_apdu(buf: Buffer, apdu: CommandApdu) -> None:
    """Append the encoding of ``apdu`` to ``buf``."""
    for value in (apdu.cla, apdu.ins, apdu.p1, apdu.p2):
        buf.push_uint8(value)
    n = len(apdu.data)
    if apdu.extended:
        if n:
            buf.push_uint8(0)
            buf.push_uint16(n)
            buf.push_bytes(apdu.data)
        if apdu.le is not None:
            if not n:
                buf.push_uint8(0)
            buf.push_uint16(apdu.le & 0xFFFF)
        return
    if n:
        buf.push_uint8(n)
        buf.push_bytes(apdu.data)
    if apdu.le is not None:
        buf.push_uint8(apdu.le & 0xFF)


def pull_command_apdu(buf: Buffer) -> CommandApdu:
    """Read one command APDU spanning the rest of ``buf`` (the body length is not self-framed:
    ISO/IEC 7816-4 §5.1 tells the cases apart by the total length)."""
    try:
        cla, ins, p1, p2 = (buf.pull_uint8() for _ in range(4))
        body = buf.pull_rest()
    except BufferReadError as exc:
        raise ApduError(f"a command APDU needs a 4-byte header: {exc}") from None
    if cla == 0xFF:
        raise ApduError("CLA FF is invalid")
    n = len(body)
    data, le, extended = b"", None, False
    if n == 0:
        pass
    elif n == 1:
        le = body[0] or 256
    elif body[0] != 0:
        lc = body[0]
        if n == 1 + lc:
            data = body[1:]
        elif n == 2 + lc:
            data, le = body[1:-1], body[-1] or 256
        else:
            raise ApduError(f"short Lc {lc} does not match a body of {n} bytes")
    else:
        extended = True
        if n == 3:
            le = int.from_bytes(body[1:3], "big") or 65536
        elif n < 3:
            raise ApduError(f"extended length field truncated ({n} body bytes)")
        else:
            lc = int.from_bytes(body[1:3], "big")
            if lc == 0:
                raise ApduError("extended Lc of 0")
            if n == 3 + lc:
                data = body[3:]
            elif n == 5 + lc:
                data, le = body[3:-2], int.from_bytes(body[-2:], "big") or 65536
            else:
                raise ApduError(f"extended Lc {lc} does not match a body of {n} bytes")
    return CommandApdu(cla, ins, p1, p2, data, le, extended)


# -- response APDU -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: data followed by SW1 SW2.

    >>> r = ResponseApdu.decode(bytes.fromhex("01029000"))
    >>> r.data, str(r.sw)
    (b'\\x01\\x02', '9000')
    """

    data: bytes
    sw: StatusWord

    @classmethod
    def of(cls, data: bytes, sw: int) -> ResponseApdu:
        return cls(bytes(data), StatusWord(sw))

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        buf = Buffer(raw)
        response = pull_response_apdu(buf)
        return cls(response.data, response.sw)

    def encode(self) -> bytes:
        buf = Buffer()
        push_response_apdu(buf, self)
        return buf.data

    def check(self, command: str, *, allow_warning: bool = False) -> bytes:
        """The data when the status is 9000 (or 62xx/63xx with ``allow_warning``), else
        :class:`~lwm2m.secure.pcsc.errors.StatusWordError` (the subclass for the status word,
        :func:`~lwm2m.secure.pcsc.errors.status_word_error`) naming ``command``."""
        if self.sw.is_success or (allow_warning and self.sw.is_warning):
            return self.data
        raise status_word_error(command, self.sw.value, self.sw.meaning)

    def __repr__(self) -> str:
        return f"ResponseApdu({len(self.data)} data bytes, sw={self.sw})"


def pull_response_apdu(buf: Buffer) -> ResponseApdu:
    """Read a response APDU spanning the rest of ``buf``."""
    rest = buf.pull_rest()
    if len(rest) < 2:
        raise ApduError(f"a response APDU needs SW1 SW2, got {len(rest)} bytes")
    return ResponseApdu(rest[:-2], StatusWord.of(rest[-2], rest[-1]))


def push_response_apdu(buf: Buffer, response: ResponseApdu) -> None:
    buf.push_bytes(response.data)
    buf.push_uint16(response.sw.value)
