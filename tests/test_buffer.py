from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m.buffer import Buffer, BufferReadError
from lwm2m.errors import Lwm2mError


def test_pull_each_width() -> None:
    data = bytes(range(1, 32))
    b = Buffer(data)
    assert b.pull_uint8() == 0x01
    assert b.pull_uint16() == 0x0203
    assert b.pull_uint24() == 0x040506
    assert b.pull_uint32() == 0x0708090A
    assert b.pull_uint48() == 0x0B0C0D0E0F10
    assert b.pull_uint64() == 0x1112131415161718
    assert b.pull_uint(2) == 0x191A
    assert b.pull_uint(0) == 0
    assert b.tell() == 26
    assert b.remaining() == 5
    assert b.pull_rest() == bytes(range(27, 32))
    assert b.eof()


def test_push_each_width_round_trips() -> None:
    w = Buffer()
    w.push_uint8(1)
    w.push_uint16(2)
    w.push_uint24(3)
    w.push_uint32(4)
    w.push_uint48(5)
    w.push_uint64(6)
    w.push_uint(7, 3)
    w.push_bytes(b"xy")
    assert len(w) == 1 + 2 + 3 + 4 + 6 + 8 + 3 + 2
    r = Buffer(w.data)
    assert [r.pull_uint8(), r.pull_uint16(), r.pull_uint24(), r.pull_uint32()] == [1, 2, 3, 4]
    assert [r.pull_uint48(), r.pull_uint64(), r.pull_uint(3)] == [5, 6, 7]
    assert r.pull_bytes(2) == b"xy"


@pytest.mark.parametrize(
    "read",
    [
        lambda b: b.pull_uint16(),
        lambda b: b.pull_uint24(),
        lambda b: b.pull_uint32(),
        lambda b: b.pull_uint48(),
        lambda b: b.pull_uint64(),
        lambda b: b.pull_bytes(2),
        lambda b: b.pull_bytes(-1),
    ],
)
def test_reading_past_the_end_raises_buffer_read_error(read) -> None:
    b = Buffer(b"\x01")
    with pytest.raises(BufferReadError) as info:
        read(b)
    assert isinstance(info.value, Lwm2mError)
    assert isinstance(info.value, ValueError)
    assert b.tell() == 0  # a failed read consumes nothing


def test_seek_bounds() -> None:
    b = Buffer(b"abc")
    b.seek(3)
    assert b.eof()
    b.seek(1)
    assert b.pull_bytes(1) == b"b"
    with pytest.raises(BufferReadError, match="outside"):
        b.seek(4)
    with pytest.raises(BufferReadError):
        b.seek(-1)


def test_pull_block_must_be_consumed_exactly() -> None:
    b = Buffer(b"\x00\x01\x02\x03")
    with b.pull_block(2):
        assert b.pull_uint16() == 1
        with pytest.raises(BufferReadError):
            b.pull_uint8()  # limited to the block
    assert b.pull_uint16() == 0x0203

    b = Buffer(b"\x00\x01\x02")
    with pytest.raises(BufferReadError, match="unread"), b.pull_block(2):
        b.pull_uint8()
    assert b.tell() == 2  # the cursor moved past the block anyway

    with pytest.raises(BufferReadError), Buffer(b"\x00").pull_block(2):
        pass  # pragma: no cover - the block is too long to enter


def test_data_of_read_and_write_buffers() -> None:
    assert Buffer(b"abc").data == b"abc"
    assert Buffer().data == b""
    assert len(Buffer(b"abc")) == 3


@given(st.lists(st.tuples(st.sampled_from([1, 2, 3, 4, 6, 8]), st.integers(min_value=0))))
def test_push_pull_round_trip(items: list[tuple[int, int]]) -> None:
    w = Buffer()
    expected = []
    for width, value in items:
        v = value % (1 << (8 * width))
        w.push_uint(v, width)
        expected.append((width, v))
    r = Buffer(w.data)
    assert [(width, r.pull_uint(width)) for width, _ in expected] == expected
    assert r.eof()
