"""Resource data types and typed values (LwM2M-TS-Core §7.3, Appendix C)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m.errors import ModelError
from lwm2m.model import ObjectLink, ResourceType, check_value

T = ResourceType
INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        (T.STRING, "", ""),
        (T.STRING, "héllo", "héllo"),
        (T.CORELNK, "</3/0>", "</3/0>"),
        (T.INTEGER, 0, 0),
        (T.INTEGER, INT64_MIN, INT64_MIN),
        (T.INTEGER, INT64_MAX, INT64_MAX),
        (T.TIME, -1, -1),
        (T.TIME, 1_700_000_000, 1_700_000_000),
        (T.UNSIGNED_INTEGER, 0, 0),
        (T.UNSIGNED_INTEGER, UINT64_MAX, UINT64_MAX),
        (T.FLOAT, 1.5, 1.5),
        (T.FLOAT, float("inf"), float("inf")),
        (T.BOOLEAN, True, True),
        (T.BOOLEAN, False, False),
        (T.OPAQUE, b"\x00\xff", b"\x00\xff"),
        (T.OBJLNK, ObjectLink(3, 0), ObjectLink(3, 0)),
        (T.NONE, None, None),
    ],
)
def test_accepts(type_: ResourceType, value: object, expected: object) -> None:
    result = check_value(type_, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        (T.INTEGER, True),  # bool is not int
        (T.INTEGER, False),
        (T.UNSIGNED_INTEGER, True),
        (T.TIME, True),
        (T.FLOAT, True),
        (T.INTEGER, 1.0),
        (T.INTEGER, "1"),
        (T.STRING, b"x"),
        (T.STRING, 1),
        (T.BOOLEAN, 1),
        (T.BOOLEAN, "true"),
        (T.OPAQUE, "x"),
        (T.OPAQUE, [1, 2]),
        (T.OBJLNK, "3:0"),
        (T.OBJLNK, (3, 0)),
        (T.CORELNK, b"</3>"),
        (T.NONE, 0),
        (T.NONE, ""),
        (T.FLOAT, "1.0"),
        (T.FLOAT, None),
    ],
)
def test_rejects_wrong_python_type(type_: ResourceType, value: object) -> None:
    with pytest.raises(ModelError, match=f"is not a valid {type_.value} value"):
        check_value(type_, value)


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        (T.INTEGER, INT64_MAX + 1),
        (T.INTEGER, INT64_MIN - 1),
        (T.TIME, 2**64),
        (T.UNSIGNED_INTEGER, -1),
        (T.UNSIGNED_INTEGER, UINT64_MAX + 1),
    ],
)
def test_rejects_out_of_range(type_: ResourceType, value: int) -> None:
    with pytest.raises(ModelError, match=str(value)):
        check_value(type_, value)


def test_int_to_float() -> None:
    assert check_value(T.FLOAT, 3) == 3.0
    assert type(check_value(T.FLOAT, 3)) is float
    assert check_value(T.FLOAT, 2**53) == float(2**53)
    with pytest.raises(ModelError, match="cannot be represented exactly"):
        check_value(T.FLOAT, 2**53 + 1)
    with pytest.raises(ModelError, match="cannot be represented exactly"):
        check_value(T.FLOAT, 10**400)  # beyond the float range


def test_bytes_like_to_bytes() -> None:
    assert check_value(T.OPAQUE, bytearray(b"ab")) == b"ab"
    assert type(check_value(T.OPAQUE, bytearray(b"ab"))) is bytes
    assert check_value(T.OPAQUE, memoryview(b"cd")) == b"cd"


@given(st.integers(min_value=INT64_MIN, max_value=INT64_MAX))
def test_int64_range(value: int) -> None:
    assert check_value(T.INTEGER, value) == value


@given(st.integers().filter(lambda v: not 0 <= v <= UINT64_MAX))
def test_uint64_range(value: int) -> None:
    with pytest.raises(ModelError):
        check_value(T.UNSIGNED_INTEGER, value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("String", T.STRING),
        ("unsigned integer", T.UNSIGNED_INTEGER),
        (" Integer ", T.INTEGER),
        ("OBJLNK", T.OBJLNK),
        ("corelnk", T.CORELNK),
        ("", T.NONE),
        ("none", T.NONE),
    ],
)
def test_type_from_ddf(text: str, expected: ResourceType) -> None:
    assert ResourceType.from_ddf(text) is expected


@pytest.mark.parametrize("text", ["Unsigned", "int", "Integer64", "UnsignedInteger"])
def test_type_from_ddf_rejects(text: str) -> None:
    with pytest.raises(ModelError, match="unknown resource type"):
        ResourceType.from_ddf(text)


def test_objlnk() -> None:
    link = ObjectLink.parse("3:0")
    assert link == ObjectLink(3, 0)
    assert str(link) == "3:0"
    assert not link.is_null
    assert ObjectLink.parse("65535:65535").is_null
    assert not ObjectLink(65535, 0).is_null
    assert ObjectLink(3, 1) < ObjectLink(4, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        link.object_id = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    "text", ["3", "3:", ":0", "3:0:1", "a:0", "3:b", "-1:0", "\u0663:0", "3:\u0663", "9" * 5000]
)
def test_objlnk_parse_rejects(text: str) -> None:
    with pytest.raises(ModelError, match="objlnk"):
        ObjectLink.parse(text)


@pytest.mark.parametrize(("oid", "iid"), [(65536, 0), (0, 65536), (-1, 0), (True, 0), (0, 1.0)])
def test_objlnk_rejects_ids(oid: object, iid: object) -> None:
    with pytest.raises(ModelError, match="objlnk id"):
        ObjectLink(oid, iid)  # type: ignore[arg-type]


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_objlnk_round_trip(oid: int, iid: int) -> None:
    assert ObjectLink.parse(str(ObjectLink(oid, iid))) == ObjectLink(oid, iid)


def test_rejects_unknown_type() -> None:
    with pytest.raises(ModelError, match="'Integer' is not a ResourceType"):
        check_value("Integer", 1)  # type: ignore[arg-type]
