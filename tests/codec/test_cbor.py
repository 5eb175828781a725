"""CBOR (CF 60): one value as one CBOR item (LwM2M-TS-Core 1.1 §7.4 CBOR format, RFC 8949)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings

from lwm2m.codec.cbor import CborCodec
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectLink,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
    Value,
)

from .conftest import make_core_model
from .strategies import TEST_MODEL, TEST_OBJECT, single_values

CODEC = CborCodec()
CORE = make_core_model()


def _node(path: Path, type_: ResourceType, value: Value) -> Node:
    if path.resource_instance_id is not None:
        return ResourceInstance(path.resource_instance_id, type_, value)
    assert path.resource_id is not None
    return SingleResource(path.resource_id, type_, value)


@pytest.mark.parametrize(
    ("path", "type_", "value", "hex_"),
    [
        # text string (major type 3)
        (
            "/3/0/0",
            ResourceType.STRING,
            "Open Mobile Alliance",
            "74" + b"Open Mobile Alliance".hex(),
        ),
        ("/3441/0/8", ResourceType.CORELNK, "</1>", "643c2f313e"),
        # integers (major types 0 and 1)
        ("/3/0/9", ResourceType.INTEGER, 100, "1864"),
        ("/3/0/9", ResourceType.INTEGER, -1, "20"),
        ("/3441/0/1", ResourceType.INTEGER, -(2**63), "3b7fffffffffffffff"),
        ("/1/0/11", ResourceType.UNSIGNED_INTEGER, 2**64 - 1, "1bffffffffffffffff"),
        # floats in their shortest exact width: half, single, double
        ("/3441/0/3", ResourceType.FLOAT, 1.5, "f93e00"),
        ("/3441/0/3", ResourceType.FLOAT, 100000.0, "fa47c35000"),
        ("/3441/0/3", ResourceType.FLOAT, 0.1, "fb3fb999999999999a"),
        ("/3441/0/3", ResourceType.FLOAT, math.inf, "f97c00"),
        # simple values, byte strings
        ("/1/0/6", ResourceType.BOOLEAN, True, "f5"),
        ("/1/0/6", ResourceType.BOOLEAN, False, "f4"),
        ("/5/0/0", ResourceType.OPAQUE, b"\x01\x02\x03", "43010203"),
        # Time: tag 1 (epoch seconds), as Leshan's LwM2mNodeCborEncoder
        ("/3/0/13", ResourceType.TIME, 1367491215, "c11a5182428f"),
        # Objlnk as text "oid:iid"
        ("/3/0/22/0", ResourceType.OBJLNK, ObjectLink(66, 0), "6436363a30"),
    ],
)
def test_examples_both_ways(path: str, type_: ResourceType, value: Value, hex_: str) -> None:
    at = Path.parse(path)
    node = _node(at, type_, value)
    assert CODEC.encode(node, at, CORE).hex() == hex_
    assert CODEC.decode(bytes.fromhex(hex_), at, CORE) == node


@pytest.mark.parametrize(
    ("path", "hex_", "value"),
    [
        ("/3441/0/3", "fa3fc00000", 1.5),  # single
        ("/3441/0/3", "fb3ff8000000000000", 1.5),  # double
        ("/3441/0/3", "f9c400", -4.0),  # half
        ("/3/0/13", "1a5182428f", 1367491215),  # untagged integer
        ("/3/0/13", "c13a00000009", -10),  # tag 1 + negative integer
        ("/3/0/13", "c1fb41d46090a3c00000", 1367491215),  # tag 1 + float without fraction
        ("/3/0/13", "c074" + b"2013-05-02T10:40:15Z".hex(), 1367491215),  # tag 0 (RFC 3339)
        ("/3/0/0", "7f624f70ff", "Op"),  # indefinite-length text
        ("/5/0/0", "5f4101ff", b"\x01"),  # indefinite-length bytes
    ],
)
def test_decode_also_accepts(path: str, hex_: str, value: Value) -> None:
    node = CODEC.decode(bytes.fromhex(hex_), Path.parse(path), CORE)
    assert node.value == value  # type: ignore[union-attr]


@settings(max_examples=300, deadline=None)
@given(single_values(TEST_OBJECT, allow_infinity=True))
def test_round_trip(path_node: tuple[Path, Node]) -> None:
    path, node = path_node
    assert CODEC.decode(CODEC.encode(node, path, TEST_MODEL), path, TEST_MODEL) == node


@pytest.mark.parametrize(
    ("hex_", "path", "message"),
    [
        ("", "/3/0/0", r"^/3/0/0: empty CBOR payload$"),
        ("8101", "/3/0/9", r"^/3/0/9: expected a single CBOR value for a Integer resource, got a"),
        ("a0", "/3/0/9", r"got a map$"),
        ("c249010000000000000000", "/3/0/13", r"^/3/0/13: unexpected CBOR tag for a Time resource"),
        ("c11864", "/3/0/9", r"^/3/0/9: unexpected CBOR tag for a Integer resource$"),
        ("d80164", "/3/0/13", r"^/3/0/13: unexpected CBOR tag"),  # tag 1 in a 2-byte head
        ("c1", "/3/0/13", r"^/3/0/13: CBOR tag without content$"),
        ("c1c11864", "/3/0/13", r"^/3/0/13: expected a single CBOR value for a Time resource, got"),
        ("f6", "/3/0/0", r"^/3/0/0: a CBOR null is not a valid String value$"),
        ("f7", "/3/0/9", r"^/3/0/9: a CBOR undefined is not a valid Integer value$"),
        ("f0", "/1/0/6", r"^/1/0/6: a CBOR simple value is not a valid Boolean value$"),
        ("186401", "/3/0/9", r"^/3/0/9: 1 trailing bytes after the CBOR value$"),
        ("1900", "/3/0/9", r"^/3/0/9: invalid CBOR: CBORDecode"),
        ("62fffe", "/3/0/0", r"^/3/0/0: invalid CBOR: CBORDecodeError$"),
        ("5f6161ff", "/5/0/0", r"^/5/0/0: invalid CBOR"),
        ("6131", "/3/0/9", r"^/3/0/9: a CBOR text string is not a valid Integer value$"),
        ("20", "/1/0/11", r"^/1/0/11: a CBOR negative integer is not a valid Unsigned Integer"),
        ("01", "/3441/0/3", r"^/3441/0/3: a CBOR unsigned integer is not a valid Float value$"),
        ("f5", "/3/0/9", r"^/3/0/9: a CBOR boolean is not a valid Integer value$"),
        ("4101", "/3/0/0", r"^/3/0/0: a CBOR byte string is not a valid String value$"),
        ("6131", "/5/0/0", r"^/5/0/0: a CBOR text string is not a valid Opaque value$"),
        ("4101", "/3/0/22/0", r"^/3/0/22/0: a CBOR byte string is not a valid Objlnk value$"),
        ("626161", "/3/0/22/0", r"^/3/0/22/0: invalid Objlnk text: objlnk 'aa'"),
        ("1bffffffffffffffff", "/3/0/9", r"^/3/0/9: wrong type for resource: Integer .* 64"),
        ("6131", "/3/0/13", r"^/3/0/13: a CBOR text string is not a valid Time value$"),
        ("f93e00", "/3/0/13", r"^/3/0/13: a CBOR float is not a valid Time value$"),
        ("c1f93e00", "/3/0/13", r"^/3/0/13: Time must be a whole number of seconds$"),
        ("c1f97c00", "/3/0/13", r"^/3/0/13: Time must be a whole number of seconds$"),
        ("c1626161", "/3/0/13", r"^/3/0/13: a CBOR text string is not a valid Time value$"),
        ("c01864", "/3/0/13", r"^/3/0/13: CBOR tag 0 needs an RFC 3339 text string, got a"),
        ("c0626161", "/3/0/13", r"^/3/0/13: CBOR tag 0 content is not an RFC 3339 date/time$"),
        (
            "c075" + b"2013-05-02T10:40:15.5".hex(),
            "/3/0/13",
            r"^/3/0/13: CBOR tag 0 date/time has no time zone offset$",
        ),
        (
            "c076" + b"2013-05-02T10:40:15.5Z".hex(),
            "/3/0/13",
            r"^/3/0/13: Time has a fraction of a second$",
        ),
        ("01", "/3/0/6", r"^/3/0/6: CBOR cannot carry a multiple-instance resource"),
        ("01", "/3/0", r"^/3/0: CBOR carries a single resource value, not the content of a object"),
        ("01", "/3/0/99", r"^/3/0/99: unknown resource 99"),
    ],
)
def test_bad_input_messages(hex_: str, path: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CODEC.decode(bytes.fromhex(hex_), Path.parse(path), CORE)


def test_encode_errors() -> None:
    with pytest.raises(CodecError, match=r"^/3/0/0: String value is not valid Unicode"):
        CODEC.encode(SingleResource(0, ResourceType.STRING, "\ud800"), Path(3, 0, 0), CORE)
    with pytest.raises(CodecError, match=r"^/3/0/6: CBOR cannot carry a multiple-instance"):
        CODEC.encode(MultipleResource(6, ResourceType.INTEGER), Path(3, 0, 6), CORE)
