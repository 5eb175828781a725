"""ISO/IEC 7816-4 interindustry commands as sans-IO builders and parsers, and the response
chaining rules, as ETSI TS 102 221 (UICC) uses them.

* SELECT (§11.1.1; P1 00 by file identifier, 04 by DF name/AID, 08 by path from the MF,
  09 by path from the current DF; P2 04 asks for the FCP template ``62``), READ BINARY (§11.3.3),
  READ RECORD (§11.4.3), MANAGE CHANNEL (§11.1.2; open with P1 00, close with P1 80 and P2 =
  the channel), GET RESPONSE (§11.7.1) and GET DATA (§11.5.1).
* :class:`ResponseChain` applies §5.3.4/§12.1: SW ``61xx`` means "xx more bytes, fetch them with
  GET RESPONSE" (the data already returned are kept); ``6Cxx`` means "re-issue the same command
  with Le = xx". It is a sans-IO state machine: feed it responses, it tells the next command.
* :func:`chain_command` splits long command data with the command-chaining bit (§5.3.3).
* :func:`parse_fcp` reads the file control parameters template (§7.4.3, TS 102 221 §11.1.1.3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum

from lwm2m.secure.pcsc.apdu import CommandApdu, ResponseApdu, channel_of, with_channel
from lwm2m.secure.pcsc.ber import BerError, decode_ber_tlvs
from lwm2m.secure.pcsc.errors import ApduError, CardDataError

__all__ = [
    "MF",
    "Fcp",
    "FcpError",
    "Ins",
    "ResponseChain",
    "Transmit",
    "chain_command",
    "get_data",
    "get_response",
    "manage_channel_close",
    "manage_channel_open",
    "parse_fcp",
    "parse_manage_channel_open",
    "read_binary",
    "read_record",
    "select_aid",
    "select_fid",
    "select_path_from_current_df",
    "select_path_from_mf",
    "transceive",
    "verify_pin",
]

#: The file identifier of the master file.
MF = 0x3F00

#: Sends one command APDU's bytes to the card and returns the response APDU's bytes.
Transmit = Callable[[bytes], bytes]


class Ins(IntEnum):
    """Instruction bytes used by this package (ISO/IEC 7816-4 Table 4, GP Card Spec §11)."""

    SELECT = 0xA4
    VERIFY = 0x20
    READ_BINARY = 0xB0
    READ_RECORD = 0xB2
    UPDATE_BINARY = 0xD6
    MANAGE_CHANNEL = 0x70
    GET_RESPONSE = 0xC0
    GET_DATA = 0xCA
    INITIALIZE_UPDATE = 0x50
    EXTERNAL_AUTHENTICATE = 0x82


class FcpError(CardDataError):
    """A file control parameters template that cannot be parsed."""

    structure = "FCP"


def _interindustry(channel: int) -> int:
    return with_channel(0x00, channel)


# -- builders ----------------------------------------------------------------------------------


def select_aid(aid: bytes, *, channel: int = 0, p2: int = 0x04) -> CommandApdu:
    """SELECT by DF name (P1 04): direct application selection of TS 102 221 §11.1.1."""
    if not 1 <= len(aid) <= 16:
        raise ApduError(f"an AID has 1..16 bytes, not {len(aid)}")
    return CommandApdu(_interindustry(channel), Ins.SELECT, 0x04, p2, aid, le=256)


def select_fid(fid: int, *, channel: int = 0, p2: int = 0x04) -> CommandApdu:
    """SELECT by file identifier (P1 00) among the children of the current DF (or the MF)."""
    return CommandApdu(
        _interindustry(channel), Ins.SELECT, 0x00, p2, fid.to_bytes(2, "big"), le=256
    )


def select_path_from_mf(path: bytes, *, channel: int = 0, p2: int = 0x04) -> CommandApdu:
    """SELECT by path from the MF (P1 08); ``7FFF`` stands for the current ADF (TS 102 221)."""
    _check_path(path)
    return CommandApdu(_interindustry(channel), Ins.SELECT, 0x08, p2, path, le=256)


def select_path_from_current_df(path: bytes, *, channel: int = 0, p2: int = 0x04) -> CommandApdu:
    """SELECT by path from the current DF (P1 09)."""
    _check_path(path)
    return CommandApdu(_interindustry(channel), Ins.SELECT, 0x09, p2, path, le=256)


def _check_path(path: bytes) -> None:
    if not path or len(path) % 2:
        raise ApduError(f"a path is a non-empty sequence of 2-byte file ids, not {len(path)} bytes")


def read_binary(offset: int, length: int, *, channel: int = 0) -> CommandApdu:
    """READ BINARY of ``length`` (1..256, or up to 65536 extended) bytes at ``offset``
    (0..32767: P1 b8 = 0, offset in P1-P2)."""
    if not 0 <= offset <= 0x7FFF:
        raise ApduError(f"READ BINARY offset {offset} is not in 0..32767")
    return CommandApdu(
        _interindustry(channel), Ins.READ_BINARY, offset >> 8, offset & 0xFF, le=length
    )


def read_record(record: int, *, channel: int = 0, length: int = 256) -> CommandApdu:
    """READ RECORD ``record`` (1..254) of the current EF, absolute mode (P2 04)."""
    if not 1 <= record <= 254:
        raise ApduError(f"record number {record} is not in 1..254")
    return CommandApdu(_interindustry(channel), Ins.READ_RECORD, record, 0x04, le=length)


def manage_channel_open(*, channel: int = 0) -> CommandApdu:
    """MANAGE CHANNEL open: the card assigns a channel number (returned in 1 byte)."""
    return CommandApdu(_interindustry(channel), Ins.MANAGE_CHANNEL, 0x00, 0x00, le=1)


def manage_channel_close(channel: int) -> CommandApdu:
    """MANAGE CHANNEL close of ``channel`` (1..19), sent on the basic channel."""
    if not 1 <= channel <= 19:
        raise ApduError(f"logical channel {channel} cannot be closed")
    return CommandApdu(0x00, Ins.MANAGE_CHANNEL, 0x80, channel)


def parse_manage_channel_open(response: ResponseApdu) -> int:
    """The channel number the card opened."""
    data = response.check("MANAGE CHANNEL")
    if len(data) != 1 or not 1 <= data[0] <= 19:
        raise ApduError(
            f"MANAGE CHANNEL returned {data.hex().upper() or 'no data'}, not 1 byte 1..19"
        )
    return data[0]


def get_response(length: int, *, channel: int = 0) -> CommandApdu:
    """GET RESPONSE for ``length`` (1..256) bytes on ``channel``."""
    return CommandApdu(_interindustry(channel), Ins.GET_RESPONSE, 0, 0, le=length)


def get_data(tag: int, *, cla: int = 0x80, channel: int = 0, le: int = 256) -> CommandApdu:
    """GET DATA for a one- or two-byte ``tag`` in P1-P2 (GP: CLA 80, e.g. 9F7F for CPLC)."""
    if not 0 <= tag <= 0xFFFF:
        raise ApduError(f"GET DATA tag {tag:X} is more than two bytes")
    return CommandApdu(with_channel(cla, channel), Ins.GET_DATA, tag >> 8, tag & 0xFF, le=le)


def verify_pin(pin: bytes | None, *, reference: int = 0x01, channel: int = 0) -> CommandApdu:
    """VERIFY PIN (ISO/IEC 7816-4 §11.5.6, ETSI TS 102 221 §11.1.9): the PIN padded with ``FF``
    to 8 bytes, or no data to ask how many tries are left (``63Cx``). Reference 01 is PIN1."""
    if pin is None:
        return CommandApdu(_interindustry(channel), Ins.VERIFY, 0x00, reference)
    if not 4 <= len(pin) <= 8:
        raise ApduError("a UICC PIN has 4..8 characters")
    return CommandApdu(
        _interindustry(channel), Ins.VERIFY, 0x00, reference, bytes(pin).ljust(8, b"\xff")
    )


def chain_command(command: CommandApdu, max_data: int = 255) -> list[CommandApdu]:
    """Split a command whose data exceed ``max_data`` into a chain (CLA b5 set on all but the
    last, ISO/IEC 7816-4 §5.3.3); the last keeps Le. Short commands come back unchanged."""
    if len(command.data) <= max_data:
        return [command]
    if command.cla & 0x80:
        raise ApduError("command chaining is defined for interindustry classes only")
    parts = [command.data[i : i + max_data] for i in range(0, len(command.data), max_data)]
    chained = replace(command, cla=command.cla | 0x10, le=None, extended=False)
    out = [replace(chained, data=part) for part in parts[:-1]]
    out.append(replace(command, data=parts[-1], extended=False))
    return out


# -- response chaining -------------------------------------------------------------------------


class ResponseChain:
    """Assemble one response across ``61xx`` (GET RESPONSE) and ``6Cxx`` (re-issue with the
    exact Le) status words — sans-IO.

    Call :meth:`first` for the command to send, then :meth:`receive` with each response until it
    returns None; :attr:`result` is the whole response. ``max_steps`` bounds the exchange.

    >>> chain = ResponseChain(read_binary(0, 10))
    >>> chain.receive(ResponseApdu.of(b"", 0x6C04)).le
    4
    >>> chain.receive(ResponseApdu.of(b"ab", 0x6102)).ins == Ins.GET_RESPONSE
    True
    >>> chain.receive(ResponseApdu.of(b"cd", 0x9000)) is None, chain.result.data
    (True, b'abcd')
    """

    def __init__(self, command: CommandApdu, *, max_steps: int = 300, max_size: int = 65536):
        self.command = command
        self._channel = channel_of(command.cla)
        self._pending = command
        self._parts: list[bytes] = []
        self._size = 0
        self._steps = 0
        self._max_steps = max_steps
        self._max_size = max_size
        self._result: ResponseApdu | None = None

    def first(self) -> CommandApdu:
        return self.command

    @property
    def done(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> ResponseApdu:
        if self._result is None:
            raise ApduError("the response is not complete yet")
        return self._result

    def receive(self, response: ResponseApdu) -> CommandApdu | None:
        """Account for ``response``; return the next command to send, or None when complete."""
        if self._result is not None:
            raise ApduError("response received after the exchange completed")
        self._steps += 1
        if self._steps > self._max_steps:
            raise ApduError(f"card kept asking for more exchanges ({self._max_steps} steps)")
        exact = response.sw.exact_length
        more = response.sw.more_data
        if exact is not None:
            # 6Cxx carries no data: repeat the pending command (the original command, or the
            # GET RESPONSE being served) with the exact Le.
            if self._pending.le == exact:
                raise ApduError(f"card asked for Le {exact} again after getting it")
            self._pending = self._pending.with_le(exact)
            return self._pending
        self._size += len(response.data)
        if self._size > self._max_size:
            raise ApduError(f"response exceeds {self._max_size} bytes")
        self._parts.append(response.data)
        if more is not None:
            self._pending = get_response(more, channel=self._channel)
            return self._pending
        self._result = ResponseApdu(b"".join(self._parts), response.sw)
        return None


def transceive(transmit: Transmit, command: CommandApdu) -> ResponseApdu:
    """Send ``command`` through ``transmit`` and follow ``61xx``/``6Cxx`` to the whole response."""
    chain = ResponseChain(command)
    pending: CommandApdu | None = chain.first()
    while pending is not None:
        pending = chain.receive(ResponseApdu.decode(transmit(pending.encode())))
    return chain.result


# -- FCP ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fcp:
    """What the FCP template tells about a selected file (ISO/IEC 7816-4 §7.4.3)."""

    file_id: int | None = None
    df_name: bytes | None = None
    #: File descriptor byte (tag 82, first byte): 01 transparent EF, 02 linear fixed, 38 DF.
    descriptor: int | None = None
    record_length: int | None = None
    record_count: int | None = None
    #: Tag 80: number of data bytes of a transparent EF (or all records).
    size: int | None = None
    lifecycle: int | None = None

    @property
    def is_df(self) -> bool:
        return self.descriptor is not None and self.descriptor & 0x38 == 0x38

    @property
    def is_transparent(self) -> bool:
        return self.descriptor is not None and self.descriptor & 0x07 == 0x01

    @property
    def is_linear_fixed(self) -> bool:
        return self.descriptor is not None and self.descriptor & 0x07 == 0x02


def parse_fcp(data: bytes) -> Fcp:
    """Parse an FCP template (``62 L ...``); raises :class:`FcpError`."""
    try:
        outer = decode_ber_tlvs(data)
        if len(outer) != 1 or outer[0].tag != 0x62:
            raise FcpError("expected one FCP template (tag 62)", offset=0)
        fields: dict[str, int | bytes | None] = {}
        for tlv in outer[0].children():
            value = tlv.value
            match tlv.tag:
                case 0x80 if value:
                    fields["size"] = int.from_bytes(value, "big")
                case 0x81 if value and "size" not in fields:
                    fields["size"] = int.from_bytes(value, "big")
                case 0x82:
                    if not value:
                        raise FcpError("empty file descriptor", offset=tlv.offset, field="82")
                    fields["descriptor"] = value[0]
                    if len(value) >= 4:
                        fields["record_length"] = int.from_bytes(value[2:4], "big")
                    if len(value) >= 5:
                        fields["record_count"] = value[4]
                case 0x83:
                    if len(value) != 2:
                        raise FcpError("file id is not 2 bytes", offset=tlv.offset, field="83")
                    fields["file_id"] = int.from_bytes(value, "big")
                case 0x84:
                    fields["df_name"] = value
                case 0x8A if len(value) == 1:
                    fields["lifecycle"] = value[0]
                case _:
                    pass
    except BerError as exc:
        raise FcpError(str(exc), offset=exc.offset) from None
    return Fcp(**fields)  # type: ignore[arg-type]
