"""CoAP messages: the wire format and option values (RFC 7252 §3, §3.1, §3.2, §5.4, §5.10).

:class:`Message` is the one message class for requests, responses and empty messages. Options are
kept as a list of ``(number, raw value)`` pairs sorted by number (RFC 7252 §3.1: the encoding is
delta-based and requires that order; repeated options keep their relative order); typed accessors
(``uri_path``, ``content_format``, ``block2``, ...) convert on demand. Keeping raw values means
unknown options survive a decode/encode round trip and decoding does no per-option conversion
work, which matters on the hot path.

:func:`decode` raises only :class:`~lwm2m.coap.errors.MessageFormatError` (RFC 7252 §3 format
rules: version, token length 9-15, reserved option nibble 15, truncated options, a payload marker
with no payload, and an Empty message with bytes after the Message ID, §4.1).
:func:`check_options` applies RFC 7252 §5.4.1/§5.4.3/§5.4.5 (unrecognized, wrong length and
repeated non-repeatable options): elective offenders are dropped, a critical one is reported.

:class:`Block` is the Block1/Block2 option value (RFC 7959 §2.2).

``Message`` is a plain ``__slots__`` class rather than a frozen dataclass on purpose: it is built
and parsed for every datagram, and the engine fills in Message ID and token before sending.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from lwm2m.coap.errors import BadOptionError, CoapUsageError, MessageFormatError
from lwm2m.coap.numbers import OPTION_FORMATS, Code, MessageType, OptionNumber

__all__ = [
    "Block",
    "Message",
    "check_options",
    "decode",
    "decode_uint",
    "encode_uint",
]

_HEADER: Final = struct.Struct("!BBH")
_HEADER_PACK: Final = _HEADER.pack
_PAYLOAD_MARKER: Final = 0xFF
_PAYLOAD_MARKER_BYTE: Final = b"\xff"
_BYTE: Final = tuple(bytes((v,)) for v in range(256))
_new_object: Final = object.__new__

# Option numbers as plain ints for the hot path (IntEnum attribute access is slower).
_IF_MATCH: Final = 1
_URI_HOST: Final = 3
_ETAG: Final = 4
_IF_NONE_MATCH: Final = 5
_OBSERVE: Final = 6
_URI_PORT: Final = 7
_LOCATION_PATH: Final = 8
_OSCORE: Final = 9
_URI_PATH: Final = 11
_CONTENT_FORMAT: Final = 12
_MAX_AGE: Final = 14
_URI_QUERY: Final = 15
_ACCEPT: Final = 17
_LOCATION_QUERY: Final = 20
_BLOCK2: Final = 23
_BLOCK1: Final = 27
_SIZE2: Final = 28
_PROXY_URI: Final = 35
_PROXY_SCHEME: Final = 39
_SIZE1: Final = 60
_ECHO: Final = 252
_NO_RESPONSE: Final = 258
_REQUEST_TAG: Final = 292

#: Options that do not identify the resource/operation of a block-wise transfer (RFC 7959 §2.4
#: "the same options except Block*"; RFC 9175 §3.3 adds Request-Tag into the operation key
#: separately; transport-level options such as Echo and No-Response are left out).
_NOT_OPERATION_KEY: Final = frozenset(
    {_BLOCK1, _BLOCK2, _SIZE1, _SIZE2, _OBSERVE, _ECHO, _NO_RESPONSE, _REQUEST_TAG, _ETAG}
)

_UINT_CACHE: Final = tuple(b"" if v == 0 else bytes((v,)) for v in range(256))


def encode_uint(value: int) -> bytes:
    """Minimal big-endian encoding of an unsigned option value (RFC 7252 §3.2; 0 is empty).

    >>> encode_uint(0), encode_uint(255), encode_uint(256)
    (b'', b'\\xff', b'\\x01\\x00')
    """
    if value < 256:
        if value < 0:
            raise CoapUsageError(f"uint option value {value} is negative")
        return _UINT_CACHE[value]
    return value.to_bytes((value.bit_length() + 7) >> 3, "big")


def decode_uint(value: bytes) -> int:
    """Inverse of :func:`encode_uint` (leading zero bytes are tolerated, RFC 7252 §3.2)."""
    return int.from_bytes(value, "big")


@dataclass(frozen=True, slots=True)
class Block:
    """A Block1/Block2 option value: block number, more flag, size exponent (RFC 7959 §2.2).

    >>> Block.decode(0x1E), Block(2, True, 6).size, Block(2, True, 6).encode()
    (Block(num=1, more=True, szx=6), 1024, 46)
    """

    num: int
    """Block number (0 … 2^20-1)."""
    more: bool
    """M bit: more blocks follow (Block2/Block1 in requests) or the server wants more (Block1)."""
    szx: int
    """Size exponent: the block size is ``2 ** (szx + 4)``; 7 is reserved (BERT on TCP only)."""

    @property
    def size(self) -> int:
        return 1 << (self.szx + 4)

    @property
    def start(self) -> int:
        """Byte offset of this block in the body."""
        return self.num << (self.szx + 4)

    def encode(self) -> int:
        return (self.num << 4) | (8 if self.more else 0) | self.szx

    @classmethod
    def decode(cls, value: int) -> Block:
        return cls(value >> 4, bool(value & 8), value & 7)


def _split_path(path: str | Sequence[str]) -> list[str]:
    if isinstance(path, str):
        stripped = path.strip("/")
        return stripped.split("/") if stripped else []
    return list(path)


class Message:
    """A CoAP message (RFC 7252 §3).

    ``code`` and ``mtype`` are ints (compare them with :class:`Code` / :class:`MessageType`);
    ``options`` is a list of ``(number, value)`` sorted by number. Construct requests and
    responses with keywords for the common options and use the properties for the rest:

    >>> m = Message(Code.GET, uri_path="/3/0/1", observe=0, token=b"\\x01")
    >>> m.uri_path, m.observe, m.path
    (('3', '0', '1'), 0, '/3/0/1')
    >>> decode(m.encode()) == m
    True
    """

    __slots__ = ("code", "mid", "mtype", "options", "payload", "token")

    code: int
    mid: int
    mtype: int
    options: list[tuple[int, bytes]]
    payload: bytes
    token: bytes

    def __init__(
        self,
        code: int = Code.EMPTY,
        payload: bytes = b"",
        *,
        mtype: int = MessageType.CON,
        mid: int = 0,
        token: bytes = b"",
        options: Iterable[tuple[int, bytes]] = (),
        uri_path: str | Sequence[str] | None = None,
        uri_query: Sequence[str] | None = None,
        content_format: int | None = None,
        accept: int | None = None,
        observe: int | None = None,
    ) -> None:
        self.code = code
        self.payload = payload
        self.mtype = mtype
        self.mid = mid
        self.token = token
        # Sorting is skipped when a single keyword supplied every option (then they are in order).
        # Plain loops rather than comprehensions: a comprehension is a function call of its own,
        # which costs more than the one to three segments of a usual path.
        if options:
            opts = [(int(n), bytes(v)) for n, v in options]
            sources = 1 if opts else 0
        else:
            opts = []
            sources = 0
        if uri_path is not None:
            if isinstance(uri_path, str):
                uri_path = _split_path(uri_path)
            if uri_path:
                for part in uri_path:
                    opts.append((_URI_PATH, part.encode()))
                sources += 1
        if uri_query:
            for query in uri_query:
                opts.append((_URI_QUERY, query.encode()))
            sources += 1
        if content_format is not None:
            opts.append((_CONTENT_FORMAT, encode_uint(content_format)))
            sources += 1
        if accept is not None:
            opts.append((_ACCEPT, encode_uint(accept)))
            sources += 1
        if observe is not None:
            opts.append((_OBSERVE, encode_uint(observe)))
            sources += 1
        if sources > 1 or (options and len(opts) > 1):
            opts.sort(key=_option_number)
        self.options = opts

    # -- wire format ----------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The datagram bytes (RFC 7252 §3)."""
        # The pieces are joined once at the end: cheaper than growing a bytearray piece by piece
        # and copying it into bytes.
        token = self.token
        tkl = len(token)
        if tkl > 8:
            raise CoapUsageError(f"token of {tkl} bytes (at most 8, RFC 7252 §3)")
        try:
            header = _HEADER_PACK(0x40 | (self.mtype << 4) | tkl, self.code, self.mid)
        except struct.error as exc:
            raise CoapUsageError(f"bad header field: {exc}") from None
        parts = [header, token]
        last = 0
        for number, value in self.options:
            delta = number - last
            last = number
            length = len(value)
            if delta < 13 and length < 13:
                parts.append(_BYTE[(delta << 4) | length])
            else:
                parts.append(_extended_header(delta, length))
            parts.append(value)
        payload = self.payload
        if payload:
            parts.append(_PAYLOAD_MARKER_BYTE)
            parts.append(payload)
        return b"".join(parts)

    # -- generic option access ------------------------------------------------------------------

    def get_option(self, number: int) -> bytes | None:
        """The first value of option ``number``, or None."""
        for n, v in self.options:
            if n == number:
                return v
            if n > number:
                break
        return None

    def get_options(self, number: int) -> list[bytes]:
        """All values of option ``number`` in order."""
        return [v for n, v in self.options if n == number]

    def has_option(self, number: int) -> bool:
        return self.get_option(number) is not None

    def set_option(self, number: int, value: bytes | Sequence[bytes] | None) -> None:
        """Replace every occurrence of ``number`` with ``value`` (a list for repeatable ones)."""
        opts = [o for o in self.options if o[0] != number]
        if value is not None:
            values = [value] if isinstance(value, bytes) else list(value)
            at = bisect_right(opts, number, key=_option_number)
            opts[at:at] = [(number, bytes(v)) for v in values]
        self.options = opts

    def add_option(self, number: int, value: bytes) -> None:
        """Append one occurrence of ``number`` after existing ones."""
        at = bisect_right(self.options, number, key=_option_number)
        self.options.insert(at, (number, bytes(value)))

    def remove_option(self, number: int) -> None:
        self.set_option(number, None)

    def _get_uint(self, number: int) -> int | None:
        value = self.get_option(number)
        return None if value is None else int.from_bytes(value, "big")

    def _set_uint(self, number: int, value: int | None) -> None:
        self.set_option(number, None if value is None else encode_uint(value))

    def _get_strings(self, number: int) -> tuple[str, ...]:
        # A plain loop that stops past ``number`` (the options are sorted): the server reads
        # ``uri_path`` of every request.
        values = []
        for n, v in self.options:
            if n == number:
                values.append(v.decode("utf-8", "replace"))
            elif n > number:
                break
        return tuple(values)

    def _set_strings(self, number: int, values: Iterable[str] | None) -> None:
        self.set_option(number, None if values is None else [s.encode() for s in values])

    def _get_string(self, number: int) -> str | None:
        value = self.get_option(number)
        return None if value is None else value.decode("utf-8", "replace")

    def _set_string(self, number: int, value: str | None) -> None:
        self.set_option(number, None if value is None else value.encode())

    # -- typed options (RFC 7252 §5.10 and extensions) -----------------------------------------

    @property
    def uri_path(self) -> tuple[str, ...]:
        """Uri-Path segments (RFC 7252 §5.10.1)."""
        return self._get_strings(_URI_PATH)

    @uri_path.setter
    def uri_path(self, value: str | Sequence[str]) -> None:
        self._set_strings(_URI_PATH, _split_path(value))

    @property
    def path(self) -> str:
        """The Uri-Path as one string, ``"/3/0/1"``."""
        return "/" + "/".join(self.uri_path)

    @property
    def uri_query(self) -> tuple[str, ...]:
        return self._get_strings(_URI_QUERY)

    @uri_query.setter
    def uri_query(self, value: Sequence[str]) -> None:
        self._set_strings(_URI_QUERY, value)

    @property
    def uri_host(self) -> str | None:
        return self._get_string(_URI_HOST)

    @uri_host.setter
    def uri_host(self, value: str | None) -> None:
        self._set_string(_URI_HOST, value)

    @property
    def uri_port(self) -> int | None:
        return self._get_uint(_URI_PORT)

    @uri_port.setter
    def uri_port(self, value: int | None) -> None:
        self._set_uint(_URI_PORT, value)

    @property
    def location_path(self) -> tuple[str, ...]:
        return self._get_strings(_LOCATION_PATH)

    @location_path.setter
    def location_path(self, value: str | Sequence[str]) -> None:
        self._set_strings(_LOCATION_PATH, _split_path(value))

    @property
    def location_query(self) -> tuple[str, ...]:
        return self._get_strings(_LOCATION_QUERY)

    @location_query.setter
    def location_query(self, value: Sequence[str]) -> None:
        self._set_strings(_LOCATION_QUERY, value)

    @property
    def content_format(self) -> int | None:
        return self._get_uint(_CONTENT_FORMAT)

    @content_format.setter
    def content_format(self, value: int | None) -> None:
        self._set_uint(_CONTENT_FORMAT, value)

    @property
    def accept(self) -> int | None:
        return self._get_uint(_ACCEPT)

    @accept.setter
    def accept(self, value: int | None) -> None:
        self._set_uint(_ACCEPT, value)

    @property
    def max_age(self) -> int | None:
        """Max-Age in seconds; absent means 60 (RFC 7252 §5.10.5)."""
        return self._get_uint(_MAX_AGE)

    @max_age.setter
    def max_age(self, value: int | None) -> None:
        self._set_uint(_MAX_AGE, value)

    @property
    def etag(self) -> bytes | None:
        return self.get_option(_ETAG)

    @etag.setter
    def etag(self, value: bytes | None) -> None:
        self.set_option(_ETAG, value)

    @property
    def etags(self) -> list[bytes]:
        """All ETag values (a request may list several, RFC 7252 §5.10.6.2)."""
        return self.get_options(_ETAG)

    @property
    def if_match(self) -> list[bytes]:
        return self.get_options(_IF_MATCH)

    @if_match.setter
    def if_match(self, value: Sequence[bytes]) -> None:
        self.set_option(_IF_MATCH, list(value) or None)

    @property
    def if_none_match(self) -> bool:
        return self.get_option(_IF_NONE_MATCH) is not None

    @if_none_match.setter
    def if_none_match(self, value: bool) -> None:
        self.set_option(_IF_NONE_MATCH, b"" if value else None)

    @property
    def observe(self) -> int | None:
        """Observe (RFC 7641 §2): 0 register / 1 deregister in requests, a sequence number in
        notifications."""
        return self._get_uint(_OBSERVE)

    @observe.setter
    def observe(self, value: int | None) -> None:
        self._set_uint(_OBSERVE, value)

    @property
    def block1(self) -> Block | None:
        value = self._get_uint(_BLOCK1)
        return None if value is None else Block.decode(value)

    @block1.setter
    def block1(self, value: Block | None) -> None:
        self._set_uint(_BLOCK1, None if value is None else value.encode())

    @property
    def block2(self) -> Block | None:
        value = self._get_uint(_BLOCK2)
        return None if value is None else Block.decode(value)

    @block2.setter
    def block2(self, value: Block | None) -> None:
        self._set_uint(_BLOCK2, None if value is None else value.encode())

    @property
    def size1(self) -> int | None:
        return self._get_uint(_SIZE1)

    @size1.setter
    def size1(self, value: int | None) -> None:
        self._set_uint(_SIZE1, value)

    @property
    def size2(self) -> int | None:
        return self._get_uint(_SIZE2)

    @size2.setter
    def size2(self, value: int | None) -> None:
        self._set_uint(_SIZE2, value)

    @property
    def proxy_uri(self) -> str | None:
        return self._get_string(_PROXY_URI)

    @proxy_uri.setter
    def proxy_uri(self, value: str | None) -> None:
        self._set_string(_PROXY_URI, value)

    @property
    def proxy_scheme(self) -> str | None:
        return self._get_string(_PROXY_SCHEME)

    @proxy_scheme.setter
    def proxy_scheme(self, value: str | None) -> None:
        self._set_string(_PROXY_SCHEME, value)

    @property
    def echo(self) -> bytes | None:
        """Echo (RFC 9175 §2)."""
        return self.get_option(_ECHO)

    @echo.setter
    def echo(self, value: bytes | None) -> None:
        self.set_option(_ECHO, value)

    @property
    def request_tag(self) -> bytes | None:
        """Request-Tag (RFC 9175 §3); the first value."""
        return self.get_option(_REQUEST_TAG)

    @request_tag.setter
    def request_tag(self, value: bytes | None) -> None:
        self.set_option(_REQUEST_TAG, value)

    @property
    def no_response(self) -> int | None:
        """No-Response bit mask (RFC 7967 §2.1): 2 suppresses 2.xx, 8 4.xx, 16 5.xx."""
        return self._get_uint(_NO_RESPONSE)

    @no_response.setter
    def no_response(self, value: int | None) -> None:
        self._set_uint(_NO_RESPONSE, value)

    @property
    def oscore(self) -> bytes | None:
        """The OSCORE option, opaque to this layer (RFC 8613 §2)."""
        return self.get_option(_OSCORE)

    @oscore.setter
    def oscore(self, value: bytes | None) -> None:
        self.set_option(_OSCORE, value)

    # -- helpers --------------------------------------------------------------------------------

    def is_request(self) -> bool:
        return 0 < self.code < 0x20

    def is_response(self) -> bool:
        return (self.code >> 5) in (2, 4, 5)

    def is_empty(self) -> bool:
        return self.code == 0

    def operation_key(self) -> tuple[object, ...]:
        """What identifies the operation a block belongs to: the code and every option except
        Block1/2, Size1/2, Observe, ETag, Echo, No-Response and Request-Tag (RFC 7959 §2.4,
        RFC 9175 §3.3). Request-Tag values are appended separately."""
        return (
            self.code,
            tuple(o for o in self.options if o[0] not in _NOT_OPERATION_KEY),
            tuple(self.get_options(_REQUEST_TAG)),
        )

    def copy(self) -> Message:
        """A shallow copy with its own option list."""
        m = Message.__new__(Message)
        m.code = self.code
        m.payload = self.payload
        m.mtype = self.mtype
        m.mid = self.mid
        m.token = self.token
        m.options = list(self.options)
        return m

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (
            self.code == other.code
            and self.mtype == other.mtype
            and self.mid == other.mid
            and self.token == other.token
            and self.options == other.options
            and self.payload == other.payload
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        try:
            mtype = MessageType(self.mtype).name
        except ValueError:
            mtype = str(self.mtype)
        opts = ", ".join(f"{OptionNumber(n).name}={v!r}" for n, v in self.options)
        return (
            f"<Message {mtype} {Code(self.code)} mid={self.mid} token={self.token.hex()}"
            f" [{opts}] payload={len(self.payload)}B>"
        )


def _option_number(option: tuple[int, bytes]) -> int:
    return option[0]


def _extended_header(delta: int, length: int) -> bytes:
    """Option header with extended delta/length fields (RFC 7252 §3.1)."""
    if delta < 13:
        dn, dext = delta, b""
    elif delta < 269:
        dn, dext = 13, bytes((delta - 13,))
    elif delta <= 0xFFFF:
        dn, dext = 14, (delta - 269).to_bytes(2, "big")
    else:
        raise CoapUsageError(f"option delta {delta} too large")
    if length < 13:
        ln, lext = length, b""
    elif length < 269:
        ln, lext = 13, bytes((length - 13,))
    elif length <= 0xFFFF + 269:
        ln, lext = 14, (length - 269).to_bytes(2, "big")
    else:
        raise CoapUsageError(f"option value of {length} bytes too long")
    return bytes(((dn << 4) | ln,)) + dext + lext


def decode(data: bytes) -> Message:
    """Parse one datagram (RFC 7252 §3). Raises :class:`MessageFormatError` only.

    The index arithmetic below deliberately bypasses :class:`lwm2m.buffer.Buffer`: this runs for
    every datagram and a method call per field costs more than the parse itself.
    """
    n = len(data)
    if n < 4:
        raise MessageFormatError(f"{n} bytes is shorter than the 4-byte header")
    first = data[0]
    if first >> 6 != 1:
        # RFC 7252 §3: unknown version numbers MUST be silently ignored (so: no mid for a RST).
        raise MessageFormatError(f"version {first >> 6}")
    mtype = (first >> 4) & 3
    tkl = first & 0x0F
    code = data[1]
    mid = (data[2] << 8) | data[3]
    if tkl > 8:
        raise MessageFormatError(f"token length {tkl}", mtype=mtype, mid=mid)
    pos = 4 + tkl
    if pos > n:
        raise MessageFormatError("truncated token", mtype=mtype, mid=mid)
    if code == 0 and (tkl or n > 4):
        # RFC 7252 §4.1: an Empty message has no token and no bytes after the Message ID.
        raise MessageFormatError("bytes after an Empty message header", mtype=mtype, mid=mid)
    msg = _new_object(Message)
    msg.mtype = mtype
    msg.code = code
    msg.mid = mid
    msg.token = data[4:pos]
    options: list[tuple[int, bytes]] = []
    msg.options = options
    msg.payload = b""
    number = 0
    while pos < n:
        byte = data[pos]
        pos += 1
        if byte < 0xD0 and byte & 0x0F < 13:
            # The usual option: delta and length fit in the first byte.
            number += byte >> 4
            end = pos + (byte & 0x0F)
        else:
            if byte == _PAYLOAD_MARKER:
                if pos >= n:
                    raise MessageFormatError("payload marker without payload", mtype=mtype, mid=mid)
                msg.payload = data[pos:]
                return msg
            delta = byte >> 4
            length = byte & 0x0F
            if delta >= 13:
                if delta == 13:
                    if pos >= n:
                        raise MessageFormatError("truncated option delta", mtype=mtype, mid=mid)
                    delta = data[pos] + 13
                    pos += 1
                elif delta == 14:
                    if pos + 2 > n:
                        raise MessageFormatError("truncated option delta", mtype=mtype, mid=mid)
                    delta = ((data[pos] << 8) | data[pos + 1]) + 269
                    pos += 2
                else:
                    raise MessageFormatError("option delta nibble 15", mtype=mtype, mid=mid)
            if length >= 13:
                if length == 13:
                    if pos >= n:
                        raise MessageFormatError("truncated option length", mtype=mtype, mid=mid)
                    length = data[pos] + 13
                    pos += 1
                elif length == 14:
                    if pos + 2 > n:
                        raise MessageFormatError("truncated option length", mtype=mtype, mid=mid)
                    length = ((data[pos] << 8) | data[pos + 1]) + 269
                    pos += 2
                else:
                    raise MessageFormatError("option length nibble 15", mtype=mtype, mid=mid)
            number += delta
            end = pos + length
        if number > 0xFFFF:
            raise MessageFormatError(f"option number {number}", mtype=mtype, mid=mid)
        if end > n:
            raise MessageFormatError("truncated option value", mtype=mtype, mid=mid)
        options.append((number, data[pos:end]))
        pos = end
    return msg


def check_options(msg: Message) -> BadOptionError | None:
    """Apply the option rules of RFC 7252 §5.4 to a received message.

    Unrecognized elective options are ignored (§5.4.1); an option of the wrong length (§5.4.3) or a
    supernumerary occurrence of a non-repeatable option (§5.4.5) is "treated like an unrecognized
    option": elective ones are removed from ``msg.options``, the first critical one is returned as
    a :class:`BadOptionError` (the caller answers 4.02 or rejects, §5.4.1).
    """
    bad: list[int] | None = None
    previous = -1
    for index, (number, value) in enumerate(msg.options):
        spec = OPTION_FORMATS.get(number)
        if spec is None:
            problem = "unrecognized"
        elif not spec[1] <= len(value) <= spec[2]:
            problem = f"length {len(value)} outside {spec[1]}..{spec[2]}"
        elif number == previous and not spec[3]:
            problem = "repeated"
        else:
            previous = number
            continue
        previous = number
        if number & 1:
            return BadOptionError(number, problem)
        if bad is None:
            bad = []
        bad.append(index)
    if bad is not None:
        drop = set(bad)
        msg.options = [o for i, o in enumerate(msg.options) if i not in drop]
    return None
