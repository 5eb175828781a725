"""LwM2M TLV (CF 11542): TS examples both ways, raw framing, value widths, round trips, bad input.

The TS examples (LwM2M-TS-Core 1.1 §7.4.3.1-§7.4.3.3) live in tests/vectors/tlv/*.json, each
naming its section and the source of its bytes.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.buffer import Buffer
from lwm2m.codec import tlv
from lwm2m.codec.tlv import (
    MAX_LENGTH,
    Tlv,
    TlvCodec,
    TlvType,
    decode_tlvs,
    decode_value,
    encode_tlvs,
    encode_value,
    pull_tlv,
    push_tlv,
)
from lwm2m.errors import BufferReadError, CodecError
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import ModelRegistry

from .conftest import make_core_model
from .strategies import TEST_MODEL, TEST_OBJECT, load_vectors, node_from_content, paths_and_nodes

CODEC = TlvCodec()
CORE = make_core_model()
VECTORS = load_vectors("tlv")


def _decode(hex_: str, path: str, model: ModelRegistry = CORE) -> Node:
    return CODEC.decode(bytes.fromhex(hex_), Path.parse(path), model)


# -- TS examples, both directions --------------------------------------------------------------


@pytest.mark.parametrize(("name", "vector"), VECTORS, ids=[n for n, _ in VECTORS])
def test_ts_example_decodes(name: str, vector: dict[str, Any]) -> None:
    path = Path.parse(vector["path"])
    expected = node_from_content(path, vector["content"], CORE)
    assert CODEC.decode(bytes.fromhex(vector["hex"]), path, CORE) == expected
    for variant in vector.get("also_decodes", []):
        assert _decode(variant["hex"], variant["path"]) == expected, variant["why"]


@pytest.mark.parametrize(("name", "vector"), VECTORS, ids=[n for n, _ in VECTORS])
def test_ts_example_encodes(name: str, vector: dict[str, Any]) -> None:
    path = Path.parse(vector["path"])
    node = node_from_content(path, vector["content"], CORE)
    assert CODEC.encode(node, path, CORE).hex().upper() == vector["hex"].upper()


def test_vectors_cite_their_section() -> None:
    assert len(VECTORS) >= 9
    for name, vector in VECTORS:
        assert vector["section"].startswith("LwM2M-TS-Core 1.1 §7.4.3"), name
        assert vector["source"], name


def test_device_instance_is_121_bytes() -> None:
    # LwM2M-TS-Core §7.4.3.1: "The total payload size with the TLV encoding is 121 bytes."
    vector = dict(VECTORS)["device_instance.json"]
    assert len(bytes.fromhex(vector["hex"])) == 121


def test_empty_payloads() -> None:
    # Leshan decode_null_object / _instance / _multi_resource: nothing is an empty container.
    assert _decode("", "/1") == ObjectNode(1)
    assert _decode("", "/3/0") == ObjectInstance(0)
    assert _decode("", "/3/0/7") == MultipleResource(7, ResourceType.INTEGER)
    assert CODEC.encode(ObjectNode(1), Path(1), CORE) == b""
    # ... but a multiple resource is always a Multiple Resource TLV, even with no instance
    # (spec-reference §1.3), and that decodes too.
    empty = MultipleResource(7, ResourceType.INTEGER)
    assert CODEC.encode(empty, Path(3, 0, 7), CORE).hex() == "8007"
    assert _decode("8007", "/3/0/7") == empty


def test_multiple_resource_instance_path_accepts_wrappers() -> None:
    # /3/0/6/1 as a bare Resource Instance TLV, inside its Multiple Resource TLV, or both
    # wrapped in the Object Instance TLV.
    expected = ResourceInstance(1, ResourceType.INTEGER, 5)
    assert _decode("410105", "/3/0/6/1") == expected
    assert _decode("8306410105", "/3/0/6/1") == expected
    assert _decode("05008306410105", "/3/0/6/1") == expected


# -- raw framing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tlv", "hex_"),
    [
        (Tlv(TlvType.RESOURCE_VALUE, 1, b""), "c001"),
        (Tlv(TlvType.RESOURCE_VALUE, 1, b"1234567"), "c7013132333435363" + "7"),
        (Tlv(TlvType.RESOURCE_VALUE, 1, b"x" * 8), "c80108" + "78" * 8),
        (Tlv(TlvType.RESOURCE_VALUE, 255, b"x"), "c1ff78"),
        (Tlv(TlvType.RESOURCE_VALUE, 256, b"x"), "e1010078"),
        (Tlv(TlvType.RESOURCE_INSTANCE, 65534, b"\x01"), "61fffe01"),
        (Tlv(TlvType.RESOURCE_VALUE, 0, b"y" * 256), "d0000100" + "79" * 256),
        (Tlv(TlvType.RESOURCE_VALUE, 0, b"z" * 65536), "d800010000" + "7a" * 65536),
        (Tlv(TlvType.OBJECT_INSTANCE, 0), "0000"),
        (
            Tlv(
                TlvType.OBJECT_INSTANCE,
                3,
                children=(
                    Tlv(TlvType.RESOURCE_VALUE, 0, b"\x01"),
                    Tlv(
                        TlvType.MULTIPLE_RESOURCE, 2, children=(Tlv(TlvType.RESOURCE_INSTANCE, 0),)
                    ),
                ),
            ),
            "0703c1000182024000",
        ),
    ],
)
def test_raw_framing_both_ways(tlv: Tlv, hex_: str) -> None:
    data = bytes.fromhex(hex_)
    assert encode_tlvs([tlv]) == data
    assert decode_tlvs(data) == [tlv]
    buf = Buffer(data)
    assert pull_tlv(buf) == tlv
    assert buf.eof()


def test_raw_length_field_ignores_low_bits() -> None:
    # With a length field (bits 4-3 != 00) bits 2-0 are unused; Leshan and wakaama ignore them.
    assert decode_tlvs(bytes.fromhex("cf010178")) == [Tlv(TlvType.RESOURCE_VALUE, 1, b"x")]


def test_raw_push_rejects_oversized_value() -> None:
    buf = Buffer()
    with pytest.raises(CodecError, match="exceeds the 24-bit length field"):
        push_tlv(buf, Tlv(TlvType.RESOURCE_VALUE, 0, bytes(MAX_LENGTH + 1)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": TlvType.RESOURCE_VALUE, "id": 65536}, "TLV id 65536 is not a 16-bit"),
        ({"type": TlvType.RESOURCE_VALUE, "id": -1}, "TLV id -1"),
        ({"type": TlvType.OBJECT_INSTANCE, "id": 0, "value": b"x"}, "holds TLVs, not a value"),
        (
            {
                "type": TlvType.RESOURCE_VALUE,
                "id": 0,
                "children": (Tlv(TlvType.RESOURCE_VALUE, 1),),
            },
            "holds a value, not TLVs",
        ),
        (
            {
                "type": TlvType.MULTIPLE_RESOURCE,
                "id": 0,
                "children": (Tlv(TlvType.RESOURCE_VALUE, 1),),
            },
            "a Multiple Resource TLV cannot hold a Resource TLV",
        ),
    ],
)
def test_raw_tlv_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(CodecError, match=message):
        Tlv(**kwargs)


@pytest.mark.parametrize(
    ("hex_", "message"),
    [
        ("c4", r"truncated TLV \(need 1 bytes at offset 1, 0 left\)"),
        ("c40100", "truncated TLV"),
        ("e101", "truncated TLV"),  # 16-bit id cut short
        ("c80105", "truncated TLV"),  # length beyond the data
        ("d00001", "truncated TLV"),  # 16-bit length field cut short
        ("0200c10001", "truncated TLV"),  # container shorter than its content
        ("0300c2000102", "truncated TLV"),  # a child spills out of its container
        ("0300000100", "unexpected Object Instance TLV at offset 2"),
        ("0300410001", "unexpected Resource Instance TLV at offset 2"),
        ("8303c10001", "unexpected Resource TLV at offset 2"),
    ],
)
def test_raw_decode_errors(hex_: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode_tlvs(bytes.fromhex(hex_))


def test_raw_pull_raises_buffer_errors_for_truncation() -> None:
    with pytest.raises(BufferReadError):
        pull_tlv(Buffer(b"\xc4\x01"))


# -- values (Appendix C) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hex_"),
    [
        (0, "00"),
        (127, "7f"),
        (-128, "80"),
        (128, "0080"),
        (-129, "ff7f"),
        (32767, "7fff"),
        (-32768, "8000"),
        (32768, "00008000"),
        (2**31 - 1, "7fffffff"),
        (-(2**31), "80000000"),
        (2**31, "0000000080000000"),
        (2**63 - 1, "7fffffffffffffff"),
        (-(2**63), "8000000000000000"),
    ],
)
def test_integer_smallest_twos_complement(value: int, hex_: str) -> None:
    at = Path(3441, 0, 1)
    assert encode_value(at, ResourceType.INTEGER, value).hex() == hex_
    assert decode_value(at, ResourceType.INTEGER, bytes.fromhex(hex_)) == value
    assert encode_value(at, ResourceType.TIME, value).hex() == hex_


@pytest.mark.parametrize(
    ("value", "hex_"),
    [
        (0, "00"),
        (255, "ff"),
        (256, "0100"),
        (65535, "ffff"),
        (65536, "00010000"),
        (2**32 - 1, "ffffffff"),
        (2**32, "0000000100000000"),
        (2**63, "8000000000000000"),  # >= 2**63: 8 bytes, read back unsigned
        (2**64 - 1, "ffffffffffffffff"),
    ],
)
def test_unsigned_smallest_width(value: int, hex_: str) -> None:
    at = Path(3441, 0, 2)
    assert encode_value(at, ResourceType.UNSIGNED_INTEGER, value).hex() == hex_
    assert decode_value(at, ResourceType.UNSIGNED_INTEGER, bytes.fromhex(hex_)) == value


@pytest.mark.parametrize(
    ("value", "size"),
    [(1.5, 4), (-0.0, 4), (math.inf, 4), (-math.inf, 4), (0.1, 8), (1e300, 8), (2.0**-149, 4)],
)
def test_float_is_four_bytes_when_exact(value: float, size: int) -> None:
    at = Path(3441, 0, 3)
    raw = encode_value(at, ResourceType.FLOAT, value)
    assert len(raw) == size
    decoded = decode_value(at, ResourceType.FLOAT, raw)
    assert decoded == value
    assert math.copysign(1, decoded) == math.copysign(1, value)


def test_float_nan_and_both_widths_decode() -> None:
    at = Path(3441, 0, 3)
    assert len(encode_value(at, ResourceType.FLOAT, math.nan)) == 4
    assert decode_value(at, ResourceType.FLOAT, struct.pack("!f", 0.5)) == 0.5
    assert decode_value(at, ResourceType.FLOAT, struct.pack("!d", 0.1)) == 0.1


def test_other_value_encodings() -> None:
    at = Path(3441, 0, 0)
    assert encode_value(at, ResourceType.BOOLEAN, True) == b"\x01"
    assert encode_value(at, ResourceType.BOOLEAN, False) == b"\x00"
    assert encode_value(at, ResourceType.OBJLNK, ObjectLink(66, 1)).hex() == "00420001"
    assert encode_value(at, ResourceType.STRING, "é") == "é".encode()
    assert encode_value(at, ResourceType.CORELNK, "</1>") == b"</1>"
    assert encode_value(at, ResourceType.OPAQUE, b"\x00\xff") == b"\x00\xff"
    assert decode_value(at, ResourceType.OBJLNK, bytes.fromhex("ffffffff")).is_null  # type: ignore[union-attr]


# -- round trips ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(paths_and_nodes(TEST_OBJECT, allow_infinity=True))
def test_round_trip_every_node_kind(path_node: tuple[Path, Node]) -> None:
    path, node = path_node
    data = CODEC.encode(node, path, TEST_MODEL)
    assert CODEC.decode(data, path, TEST_MODEL) == node


@settings(max_examples=100, deadline=None)
@given(paths_and_nodes(CORE.get(3)))  # type: ignore[arg-type]
def test_round_trip_device_object(path_node: tuple[Path, Node]) -> None:
    path, node = path_node
    assert CODEC.decode(CODEC.encode(node, path, CORE), path, CORE) == node


# -- bad input: CodecError names the path and the problem -----------------------------------------


@pytest.mark.parametrize(
    ("hex_", "path", "message"),
    [
        # truncated, trailing, lengths beyond the data
        ("c8001441", "/3/0", r"^/3/0: invalid TLV: truncated TLV"),
        ("c10964ff", "/3/0", r"^/3/0: invalid TLV: truncated TLV"),
        ("c10964", "/3/0/9/0", r"^/3/0/9/0: resource instance of a single-instance resource"),
        ("c10964c10a0f", "/3/0/9", r"^/3/0/9: a single-instance resource needs exactly one"),
        # wrong type for a resource
        ("c309010203", "/3/0", r"^/3/0/9: Integer value of 3 bytes; expected 1, 2, 4 or 8"),
        ("c10602", "/1/0", r"^/1/0/6: Boolean value 02; expected one byte 0 or 1"),
        ("c006", "/1/0", r"^/1/0/6: Boolean value of 0 bytes"),
        ("c20701ff", "/1/0", r"^/1/0/7: String value is not valid UTF-8 \(byte 1\)"),
        ("c303010203", "/3441/0", r"^/3441/0/3: Float value of 3 bytes; expected 4 or 8"),
        ("c30701ff02", "/3441/0", r"^/3441/0/7: Objlnk value of 3 bytes; expected 4"),
        # unknown object / resource
        ("c10001", "/4242/0", r"^/4242/0: unknown object 4242"),
        ("c16301", "/3/0", r"^/3/0/99: unknown resource 99 in object 3 \(Device\)"),
        ("c10401", "/3/0", r"^/3/0/4: an executable resource carries no value"),
        # path/format mismatch
        ("c10964", "/3", r"^/3: an object path needs Object Instance TLVs, got a Resource TLV"),
        ("410001", "/3/0", r"^/3/0: an object instance holds Resource and Multiple Resource TLVs"),
        ("0301c10964", "/3/0", r"^/3/0: Object Instance TLV has id 1, the path says 0"),
        ("0000c10964", "/3/0", r"^/3/0: unexpected Object Instance TLV among the content"),
        ("c10a0f", "/3/0/9", r"^/3/0/9: Resource TLV has id 10, the path says 9"),
        ("8606410001410105", "/3/0/9", r"^/3/0/9: a Multiple Resource TLV for a single-instance"),
        ("c10601", "/3/0/6", r"^/3/0/6: a Resource TLV for a multiple-instance resource"),
        ("c10601c10601", "/3/0/6", r"^/3/0/6: a multiple-instance resource needs one Multiple"),
        ("c10601", "/3/0", r"^/3/0/6: a Resource TLV for a multiple-instance resource"),
        ("8309410001", "/3/0", r"^/3/0/9: a Multiple Resource TLV for a single-instance resource"),
        ("", "/3/0/9", r"^/3/0/9: no value for the resource$"),
        ("", "/3/0/6/0", r"^/3/0/6/0: no value for the resource instance$"),
        ("410001410101", "/3/0/6/0", r"^/3/0/6/0: a resource-instance path needs exactly one"),
        ("410101", "/3/0/6/0", r"^/3/0/6/0: Resource Instance TLV has id 1, the path says 0"),
        ("8305410101", "/3/0/6/1", r"^/3/0/6: Multiple Resource TLV has id 5, the path says 6"),
        ("c10964", "/", r"^/: the root path carries no node in TLV"),
        # duplicate ids
        ("00000000", "/3", r"^/3/0: duplicate object instance"),
        ("c10964c10964", "/3/0", r"^/3/0/9: duplicate resource"),
        ("8606410001410005", "/3/0/6", r"^/3/0/6/0: duplicate resource instance"),
        # out-of-range ids (65535 is reserved)
        ("20ffff", "/3", r"^/3: Object Instance TLV id 65535 is reserved"),
        ("e1ffff01", "/3/0", r"^/3/0: Resource TLV id 65535 is reserved"),
        ("8406" + "61ffff01", "/3/0/6", r"^/3/0/6: Resource Instance TLV id 65535 is reserved"),
    ],
)
def test_bad_input_messages(hex_: str, path: str, message: str) -> None:
    with pytest.raises(CodecError, match=message) as info:
        _decode(hex_, path)
    assert info.value.path is not None


@pytest.mark.parametrize(
    ("node", "path", "message"),
    [
        (SingleResource(0, ResourceType.INTEGER, 1), "/3/0/0", r"^/3/0/0: wrong type for resource"),
        (SingleResource(6, ResourceType.INTEGER, 1), "/3/0/6", "a single value for a multiple"),
        (
            MultipleResource.of(9, ResourceType.INTEGER, {0: 1}),
            "/3/0/9",
            "a multiple-instance value for a single-instance resource",
        ),
        (
            ResourceInstance(0, ResourceType.INTEGER, 1),
            "/3/0/9/0",
            r"^/3/0/9/0: resource instance of a single-instance resource",
        ),
        (
            ResourceInstance(0, ResourceType.STRING, "x"),
            "/3/0/6/0",
            r"^/3/0/6/0: wrong type for resource: String, the model says Integer",
        ),
        (SingleResource(4, ResourceType.NONE, None), "/3/0/4", "executable resource carries no"),
        (SingleResource(0, ResourceType.STRING, "\ud800"), "/3/0/0", "lone surrogate"),
        (ObjectInstance(0), "/3", r"^/3: a ObjectInstance cannot be the content of a OBJECT path"),
        (ObjectInstance(1), "/3/0", r"^/3/0: node id 1 does not match the path"),
    ],
)
def test_encode_errors(node: Node, path: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CODEC.encode(node, Path.parse(path), CORE)


def test_encode_resource_unknown_to_the_model_uses_the_node_type() -> None:
    node = ObjectInstance(0, [SingleResource(77, ResourceType.BOOLEAN, True)])
    data = CODEC.encode(node, Path(3, 0), CORE)
    assert data.hex() == "c14d01"


# -- the fast paths agree with the general (Tlv record) paths ------------------------------------


@st.composite
def _mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few random edits: byte changes, truncation, insertion, duplication."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        edit = draw(st.sampled_from(["set", "cut", "insert", "dup"]))
        pos = draw(st.integers(0, len(out)))
        if edit == "set" and pos < len(out):
            out[pos] = draw(st.integers(0, 255))
        elif edit == "cut":
            del out[pos:]
        elif edit == "insert":
            out[pos:pos] = bytes([draw(st.integers(0, 255))])
        else:
            out += out[pos : pos + draw(st.integers(1, 8))]
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(paths_and_nodes(TEST_OBJECT, allow_infinity=True), st.data())
def test_fast_paths_agree_with_the_general_paths(
    path_node: tuple[Path, Node], data: st.DataObject
) -> None:
    path, node = path_node
    codec = TlvCodec()
    encoded = codec._encode_general(node, path, TEST_MODEL)
    assert codec.encode(node, path, TEST_MODEL) == encoded
    for payload in (encoded, data.draw(_mutated(encoded))):
        try:
            general: Node | None = codec._decode_general(payload, path, TEST_MODEL)
        except CodecError:
            general = None
        try:
            fast = tlv._fast_decode(payload, path, TEST_MODEL)
        except tlv._Fallback:
            continue  # the general path decides
        if general is None:
            assert fast is None
            continue
        # repr shows every value exactly and is NaN-safe: two decodes of a NaN are two float
        # objects, and nan != nan, so node equality cannot hold for them.
        assert repr(fast) == repr(general)
        if "nan" not in repr(general):
            assert fast == general


def test_fast_decode_takes_the_usual_shapes() -> None:
    """Object and instance payloads (also with an instance wrapper) stay on the fast path."""
    device = CORE
    vector = bytes.fromhex("c800144f70656e204d6f62696c6520416c6c69616e6365")
    assert tlv._fast_decode(vector, Path(3, 0), device) == _decode(vector.hex(), "/3/0")
    wrapped = bytes([0x08, 0x00, len(vector)]) + vector
    assert tlv._fast_decode(wrapped, Path(3, 0), device) == _decode(vector.hex(), "/3/0")
    assert tlv._fast_decode(wrapped, Path(3), device) == _decode(wrapped.hex(), "/3")
    for bad_path in (Path(3, 1), Path(3, 0, 0)):
        with pytest.raises(tlv._Fallback):
            tlv._fast_decode(wrapped, bad_path, device)
