"""Plain text (CF 0): TS and Leshan examples both ways, value forms, round trips, bad input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec import text
from lwm2m.codec.text import TextCodec
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectLink,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
    Value,
)

from .conftest import make_core_model
from .strategies import TEST_MODEL, TEST_OBJECT, single_values

CODEC = TextCodec()
CORE = make_core_model()


def _node(path: Path, type_: ResourceType, value: Value) -> Node:
    if path.resource_instance_id is not None:
        return ResourceInstance(path.resource_instance_id, type_, value)
    assert path.resource_id is not None
    return SingleResource(path.resource_id, type_, value)


@pytest.mark.parametrize(
    ("path", "type_", "value", "text"),
    [
        # LwM2M-TS-Core 1.1 §7.4.1: GET /3/0/0 answers "Open Mobile Alliance"
        ("/3/0/0", ResourceType.STRING, "Open Mobile Alliance", "Open Mobile Alliance"),
        # Leshan LwM2mNodeDecoderTest.text_battery_resource
        ("/3/0/9", ResourceType.INTEGER, 100, "100"),
        # Leshan LwM2mNodeEncoderTest.text_encode_single_resource_date: Time as seconds
        ("/3/0/13", ResourceType.TIME, 1367491215, "1367491215"),
        # Leshan LwM2mNodeEncoderTest.text_encode_opaque_as_base64_string: padding kept
        ("/5/0/0", ResourceType.OPAQUE, b"\x01\x02\x03\x04\x05", "AQIDBAU="),
        ("/5/0/0", ResourceType.OPAQUE, b"", ""),
        # Leshan LwM2mNodeEncoderTest.text_encode_single_resource_float (56.4 -> "56.4")
        ("/3441/0/3", ResourceType.FLOAT, 56.4, "56.4"),
        ("/3441/0/3", ResourceType.FLOAT, 23.0, "23.0"),
        ("/3441/0/3", ResourceType.FLOAT, 1e16, "1e+16"),
        ("/3441/0/3", ResourceType.FLOAT, -math.inf, "-inf"),
        # Appendix C: Boolean "0"/"1", Objlnk "oid:iid", Unsigned Integer
        ("/1/0/6", ResourceType.BOOLEAN, True, "1"),
        ("/1/0/6", ResourceType.BOOLEAN, False, "0"),
        ("/3/0/22/0", ResourceType.OBJLNK, ObjectLink(66, 0), "66:0"),
        ("/1/0/10", ResourceType.OBJLNK, ObjectLink(65535, 65535), "65535:65535"),
        ("/1/0/11", ResourceType.UNSIGNED_INTEGER, 2**64 - 1, "18446744073709551615"),
        ("/3441/0/1", ResourceType.INTEGER, -(2**63), "-9223372036854775808"),
        ("/3/0/14", ResourceType.STRING, "+02:00 é €", "+02:00 é €"),
        ("/3441/0/8", ResourceType.CORELNK, "</3/0>;ver=1.1", "</3/0>;ver=1.1"),
    ],
)
def test_examples_both_ways(path: str, type_: ResourceType, value: Value, text: str) -> None:
    at = Path.parse(path)
    node = _node(at, type_, value)
    assert CODEC.encode(node, at, CORE) == text.encode()
    assert CODEC.decode(text.encode(), at, CORE) == node


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e3", 1000.0),
        ("-.5", -0.5),
        ("+2.", 2.0),
        ("1E-2", 0.01),
        ("007", 7.0),
        ("Infinity", math.inf),
        ("+inf", math.inf),
        ("-Infinity", -math.inf),
    ],
)
def test_float_forms_accepted(text: str, value: float) -> None:
    node = CODEC.decode(text.encode(), Path(3441, 0, 3), CORE)
    assert isinstance(node, SingleResource)
    assert node.value == value


def test_float_nan() -> None:
    node = CODEC.decode(b"NaN", Path(3441, 0, 3), CORE)
    assert isinstance(node, SingleResource)
    assert isinstance(node.value, float)
    assert math.isnan(node.value)


def test_integer_forms_accepted() -> None:
    assert CODEC.decode(b"+5", Path(3, 0, 9), CORE) == SingleResource(9, ResourceType.INTEGER, 5)
    assert CODEC.decode(b"-0", Path(3, 0, 9), CORE) == SingleResource(9, ResourceType.INTEGER, 0)
    assert CODEC.decode(b"+5", Path(1, 0, 11), CORE).value == 5  # type: ignore[union-attr]


@settings(max_examples=300, deadline=None)
@given(single_values(TEST_OBJECT, allow_infinity=True))
def test_round_trip(path_node: tuple[Path, Node]) -> None:
    path, node = path_node
    assert CODEC.decode(CODEC.encode(node, path, TEST_MODEL), path, TEST_MODEL) == node


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (b"\xff", "/3/0/0", r"^/3/0/0: plain text is not valid UTF-8 \(byte 0\)$"),
        (b"abc", "/3/0/9", r"^/3/0/9: invalid Integer text 'abc'$"),
        (b"1.5", "/3/0/9", r"^/3/0/9: invalid Integer text '1.5'$"),
        (b" 1", "/3/0/9", r"^/3/0/9: invalid Integer text ' 1'$"),
        (b"1_000", "/3/0/9", r"^/3/0/9: invalid Integer text '1_000'$"),
        ("١٢".encode(), "/3/0/9", r"^/3/0/9: invalid Integer text"),  # non-ASCII digits
        (b"9" * 2000, "/3/0/9", r"^/3/0/9: invalid Integer text '9999.*\.\.\.'$"),
        (b"9223372036854775808", "/3/0/9", r"^/3/0/9: wrong type for resource: Integer .* 64"),
        (b"-1", "/1/0/11", r"^/1/0/11: invalid Unsigned Integer text '-1'$"),
        (b"18446744073709551616", "/1/0/11", r"^/1/0/11: wrong type for resource"),
        (b"1,5", "/3441/0/3", r"^/3441/0/3: invalid Float text '1,5'$"),
        (b"1e999", "/3441/0/3", r"^/3441/0/3: Float text '1e999' is out of range$"),
        (b"true", "/1/0/6", r"^/1/0/6: invalid Boolean text 'true': expected 0 or 1$"),
        (b"66", "/3/0/22/0", r"^/3/0/22/0: invalid Objlnk text: objlnk '66' is not 'oid:iid'"),
        (b"70000:1", "/3/0/22/0", r"^/3/0/22/0: invalid Objlnk text: objlnk id 70000"),
        (b"!,-INVALID$_'", "/5/0/0", r"^/5/0/0: invalid Opaque text: not standard base64"),
        (b"AQIDBAU", "/5/0/0", r"^/5/0/0: invalid Opaque text"),  # padding is required
        ("é".encode(), "/5/0/0", r"^/5/0/0: invalid Opaque text"),
        (b"1", "/3/0/6", r"^/3/0/6: plain text cannot carry a multiple-instance resource"),
        (b"1", "/3/0/9/0", r"^/3/0/9/0: resource instance of a single-instance resource$"),
        (b"1", "/3/0", r"^/3/0: plain text carries a single resource value, not the content"),
        (b"1", "/3", r"^/3: plain text carries a single resource value"),
        (b"1", "/3/0/4", r"^/3/0/4: an executable resource carries no value$"),
        (b"1", "/3/0/99", r"^/3/0/99: unknown resource 99 in object 3 \(Device\)$"),
        (b"1", "/4242/0/0", r"^/4242/0/0: unknown object 4242$"),
    ],
)
def test_bad_input_messages(data: bytes, path: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CODEC.decode(data, Path.parse(path), CORE)


@pytest.mark.parametrize(
    ("node", "path", "message"),
    [
        (
            MultipleResource.of(6, ResourceType.INTEGER, {0: 1}),
            "/3/0/6",
            r"^/3/0/6: plain text cannot carry a multiple-instance resource; encode each",
        ),
        (
            SingleResource(6, ResourceType.INTEGER, 1),
            "/3/0/6",
            r"^/3/0/6: a single value for a multiple-instance resource$",
        ),
        (
            SingleResource(0, ResourceType.INTEGER, 1),
            "/3/0/0",
            r"^/3/0/0: wrong type for resource: Integer, the model says String$",
        ),
        (SingleResource(1, ResourceType.STRING, "x"), "/3/0/0", "node id 1 does not match"),
        (ObjectInstance(0), "/3/0", r"^/3/0: plain text carries a single resource value"),
        (SingleResource(4, ResourceType.NONE, None), "/3/0/4", "executable resource carries"),
        (SingleResource(0, ResourceType.STRING, "\udc80"), "/3/0/0", "lone surrogate"),
    ],
)
def test_encode_errors(node: Node, path: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CODEC.encode(node, Path.parse(path), CORE)


def test_encode_resource_unknown_to_the_model() -> None:
    node = SingleResource(77, ResourceType.BOOLEAN, True)
    assert CODEC.encode(node, Path(3, 0, 77), CORE) == b"1"


# -- the fast path agrees with the general path --------------------------------------------------

_FAST_PATHS = [
    Path(TEST_OBJECT.id, 0, rid, *riid)
    for rid in (0, 1, 2, 3, 6, 8, 10, 11, 16, 20, 99)  # every type, single and multiple
    for riid in ((), (0,))
] + [Path(TEST_OBJECT.id + 1, 0, 0), Path(TEST_OBJECT.id, 0)]

_FAST_DATA = st.one_of(
    st.binary(max_size=24),
    st.text(max_size=24).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(0, 10**20).map(lambda i: str(i).encode()),
    st.integers(0, 10**20).map(lambda i: b"0" + str(i).encode()),
    st.sampled_from([b"", b"+5", b"-0", b"1_0", b" 1", "١٢".encode(), b"9" * 19]),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_FAST_PATHS), _FAST_DATA)
def test_fast_path_agrees_with_general_path(path: Path, data: bytes) -> None:
    try:
        general: object = text._decode_general(data, path, TEST_MODEL)
    except CodecError as exc:
        general = exc
    fast = text._fast_decode(data, path, TEST_MODEL)
    if fast is not None:
        assert not isinstance(general, CodecError), f"fast path accepted what fails: {general}"
        assert fast == general
        assert type(fast.value) is type(general.value)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "path", "node"),
    [
        (b"100", Path(3, 0, 9), SingleResource(9, ResourceType.INTEGER, 100)),
        (b"007", Path(3, 0, 9), SingleResource(9, ResourceType.INTEGER, 7)),
        (b"1367491215", Path(3, 0, 13), SingleResource(13, ResourceType.TIME, 1367491215)),
        (b"9" * 18, Path(1, 0, 11), SingleResource(11, ResourceType.UNSIGNED_INTEGER, 10**18 - 1)),
        ("é".encode(), Path(3, 0, 14), SingleResource(14, ResourceType.STRING, "é")),
        (b"", Path(3, 0, 0), SingleResource(0, ResourceType.STRING, "")),
        (b"5", Path(3, 0, 6, 1), ResourceInstance(1, ResourceType.INTEGER, 5)),
    ],
)
def test_fast_path_is_taken_for_usual_payloads(data: bytes, path: Path, node: Node) -> None:
    assert text._fast_decode(data, path, CORE) == node
    assert CODEC.decode(data, path, CORE) == node


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (b"9" * 19, Path(3, 0, 9)),  # may not fit: the general path checks the range
        (b"+5", Path(3, 0, 9)),
        (b"1", Path(3441, 0, 3)),  # Float
        (b"1", Path(1, 0, 6)),  # Boolean
        (b"\xff", Path(3, 0, 0)),  # not UTF-8
        (b"1", Path(3, 0, 6)),  # a multiple resource at a resource path
        (b"1", Path(3, 0, 9, 0)),  # a single resource at a resource-instance path
        (b"1", Path(3, 0, 99)),  # unknown resource
        (b"1", Path(4242, 0, 0)),  # unknown object
        (b"1", Path(3, 0)),  # not a single value
        (bytearray(b"1"), Path(3, 0, 9)),  # not bytes
    ],
)
def test_fast_path_leaves_the_rest_to_the_general_path(data: bytes, path: Path) -> None:
    assert text._fast_decode(data, path, CORE) is None
