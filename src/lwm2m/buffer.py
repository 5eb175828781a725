"""One binary buffer for every wire format of the package (TLV, CoAP, DTLS, APDUs).

Reads past the end raise :class:`lwm2m.errors.BufferReadError`; layers translate it into their own
error. Integers are big-endian (network order), as every format here uses.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager

from lwm2m.errors import BufferReadError

__all__ = ["Buffer", "BufferReadError"]

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")


class Buffer:
    """A read cursor over immutable bytes, or a growable write buffer.

    >>> b = Buffer(data=b"\\x01\\x02\\x03")
    >>> b.pull_uint8(), b.pull_uint16(), b.eof()
    (1, 515, True)
    >>> w = Buffer()
    >>> w.push_uint24(1); w.data
    b'\\x00\\x00\\x01'
    """

    __slots__ = ("_data", "_end", "_out", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview | None = None) -> None:
        self._data = bytes(data) if data is not None else b""
        self._pos = 0
        self._end = len(self._data)
        self._out = bytearray()

    # -- reading --------------------------------------------------------------------------------

    @property
    def data(self) -> bytes:
        """What was pushed so far (write mode), or the whole input (read mode)."""
        return bytes(self._out) if self._out or not self._data else self._data

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int) -> None:
        if not 0 <= pos <= self._end:
            raise BufferReadError(f"seek to {pos} outside 0..{self._end}")
        self._pos = pos

    def eof(self) -> bool:
        return self._pos >= self._end

    def remaining(self) -> int:
        return self._end - self._pos

    def _take(self, n: int) -> int:
        start = self._pos
        if n < 0 or start + n > self._end:
            raise BufferReadError(f"need {n} bytes at offset {start}, {self._end - start} left")
        self._pos = start + n
        return start

    def pull_bytes(self, n: int) -> bytes:
        start = self._take(n)
        return self._data[start : start + n]

    def pull_rest(self) -> bytes:
        return self.pull_bytes(self._end - self._pos)

    def pull_uint8(self) -> int:
        start = self._take(1)
        return self._data[start]

    def pull_uint16(self) -> int:
        start = self._take(2)
        return int(_U16.unpack_from(self._data, start)[0])

    def pull_uint24(self) -> int:
        start = self._take(3)
        return int.from_bytes(self._data[start : start + 3], "big")

    def pull_uint32(self) -> int:
        start = self._take(4)
        return int(_U32.unpack_from(self._data, start)[0])

    def pull_uint48(self) -> int:
        start = self._take(6)
        return int.from_bytes(self._data[start : start + 6], "big")

    def pull_uint64(self) -> int:
        start = self._take(8)
        return int(_U64.unpack_from(self._data, start)[0])

    def pull_uint(self, width: int) -> int:
        """An unsigned big-endian integer of ``width`` bytes (0 gives 0)."""
        start = self._take(width)
        return int.from_bytes(self._data[start : start + width], "big")

    @contextmanager
    def pull_block(self, length: int) -> Iterator[None]:
        """Limit reads to the next ``length`` bytes; the block must be consumed exactly."""
        start = self._take(length)
        outer_end = self._end
        self._pos, self._end = start, start + length
        try:
            yield
            if self._pos != self._end:
                raise BufferReadError(
                    f"block at offset {start} has {self._end - self._pos} unread bytes"
                )
        finally:
            self._end = outer_end
            self._pos = start + length

    # -- writing --------------------------------------------------------------------------------

    def push_bytes(self, value: bytes | bytearray | memoryview) -> None:
        self._out += value

    def push_uint8(self, value: int) -> None:
        self._out.append(value)

    def push_uint16(self, value: int) -> None:
        self._out += _U16.pack(value)

    def push_uint24(self, value: int) -> None:
        self._out += value.to_bytes(3, "big")

    def push_uint32(self, value: int) -> None:
        self._out += _U32.pack(value)

    def push_uint48(self, value: int) -> None:
        self._out += value.to_bytes(6, "big")

    def push_uint64(self, value: int) -> None:
        self._out += _U64.pack(value)

    def push_uint(self, value: int, width: int) -> None:
        self._out += value.to_bytes(width, "big")

    def __len__(self) -> int:
        return len(self._out) if self._out else self._end
