"""A minimal BER-TLV reader and writer over :class:`lwm2m.buffer.Buffer`: ISO/IEC 7816-4 §6.3
(BER-TLV data objects) and the DER subset of ITU-T X.690 §8.1 that smart cards use.

Tags are one to three bytes (a first byte with b5-b1 = 11111 continues while b8 is set);
lengths are definite, one to four bytes (``81 xx``, ``82 xx xx``, ``83 xx xx xx``). Bytes
``00`` and ``FF`` before a tag are padding (ISO/IEC 7816-4 §6.3) and skipped where a caller
allows it. Every decoded object records its absolute offset, so errors about nested content name
the byte in the original file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lwm2m.buffer import Buffer
from lwm2m.errors import BufferReadError
from lwm2m.secure.pcsc.errors import CardDataError

__all__ = [
    "BerError",
    "BerTlv",
    "decode_ber_tlvs",
    "encode_ber_length",
    "encode_ber_tlv",
    "find_tlv",
    "pull_ber_tlv",
    "push_ber_tlv",
]


class BerError(CardDataError):
    """Bytes that are not well-formed BER-TLV."""

    structure = "BER-TLV"


@dataclass(frozen=True, slots=True)
class BerTlv:
    """One BER-TLV data object: ``tag`` as an int (``0x9F7F``), its value, and where it started."""

    tag: int
    value: bytes
    offset: int = 0

    @property
    def constructed(self) -> bool:
        """b6 of the first tag byte: the value is itself a sequence of BER-TLV objects."""
        first = self.tag
        while first > 0xFF:
            first >>= 8
        return bool(first & 0x20)

    @property
    def value_offset(self) -> int:
        """The absolute offset of the value's first byte."""
        return self.offset + len(_tag_bytes(self.tag)) + len(encode_ber_length(len(self.value)))

    def children(self, *, padding: bool = False) -> list[BerTlv]:
        """The nested objects of a constructed value (with absolute offsets)."""
        return decode_ber_tlvs(self.value, base_offset=self.value_offset, padding=padding)

    def __repr__(self) -> str:
        return f"BerTlv(tag=0x{self.tag:X}, {len(self.value)} bytes at {self.offset})"


def _tag_bytes(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def _fail(message: str, offset: int) -> BerError:
    return BerError(message, offset=offset)


def pull_ber_tlv(buf: Buffer, base_offset: int = 0) -> BerTlv:
    """Read one BER-TLV object at the cursor (``base_offset`` is added to reported offsets)."""
    start = buf.tell()
    at = base_offset + start
    try:
        first = buf.pull_uint8()
        tag = first
        if first & 0x1F == 0x1F:
            for count in range(2):
                byte = buf.pull_uint8()
                tag = (tag << 8) | byte
                if not byte & 0x80:
                    break
                if count == 1:
                    raise _fail("tag longer than 3 bytes", at)
        length_start = base_offset + buf.tell()
        length = buf.pull_uint8()
        if length == 0x80:
            raise _fail("indefinite length is not allowed", length_start)
        if length > 0x80:
            width = length & 0x7F
            if width > 3:
                raise _fail(f"length field of {width} bytes", length_start)
            length = buf.pull_uint(width)
        value = buf.pull_bytes(length)
    except BufferReadError:
        raise _fail(
            f"object with tag starting {buf.data[start : start + 1].hex().upper() or 'nothing'} "
            "runs past the end",
            at,
        ) from None
    return BerTlv(tag, value, at)


def decode_ber_tlvs(data: bytes, *, base_offset: int = 0, padding: bool = False) -> list[BerTlv]:
    """All objects of ``data`` in order; with ``padding``, ``00``/``FF`` bytes before a tag (and
    at the end, as in a UICC record or a padded file) are skipped."""
    return list(iter_ber_tlvs(data, base_offset=base_offset, padding=padding))


def iter_ber_tlvs(data: bytes, *, base_offset: int = 0, padding: bool = False) -> Iterator[BerTlv]:
    buf = Buffer(data)
    while not buf.eof():
        if padding:
            pos = buf.tell()
            if data[pos] in (0x00, 0xFF):
                buf.seek(pos + 1)
                continue
        yield pull_ber_tlv(buf, base_offset)


def find_tlv(tlvs: Iterable[BerTlv], tag: int) -> BerTlv | None:
    """The first object with ``tag``, or None."""
    for tlv in tlvs:
        if tlv.tag == tag:
            return tlv
    return None


def encode_ber_length(length: int) -> bytes:
    """The definite length field for ``length`` (DER: shortest form).

    >>> encode_ber_length(5).hex(), encode_ber_length(200).hex(), encode_ber_length(300).hex()
    ('05', '81c8', '82012c')
    """
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return bytes([0x81, length])
    if length <= 0xFFFF:
        return bytes([0x82]) + length.to_bytes(2, "big")
    if length <= 0xFFFFFF:
        return bytes([0x83]) + length.to_bytes(3, "big")
    raise ValueError(f"BER length {length} too large")


def push_ber_tlv(buf: Buffer, tag: int, value: bytes) -> None:
    buf.push_bytes(_tag_bytes(tag))
    buf.push_bytes(encode_ber_length(len(value)))
    buf.push_bytes(value)


def encode_ber_tlv(tag: int, value: bytes) -> bytes:
    """``tag`` (one to three bytes) ``length`` ``value``.

    >>> encode_ber_tlv(0x9F7F, b"\\x01").hex()
    '9f7f0101'
    """
    buf = Buffer()
    push_ber_tlv(buf, tag, value)
    return buf.data
