"""LwM2M CBOR (CF 11544, LwM2M-TS-Core 1.2 §7.4.4): Anjay-derived vectors, round trips, errors."""

from __future__ import annotations

import math
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec import ContentFormat, codec_for, composite_codec_for
from lwm2m.codec.lwm2m_cbor import Lwm2mCborCodec
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Path,
    ResourceType,
    SingleResource,
)

from .senml_strategies import (
    SENML_MODEL,
    check_vector,
    leaf_nodes,
    load_vectors,
    model_from_spec,
)
from .strategies import TEST_OBJECT, paths_and_nodes

CODEC = Lwm2mCborCodec()
MODEL = SENML_MODEL
RT = ResourceType


def test_registered_but_not_composite() -> None:
    """LwM2M CBOR is a node codec; LwM2M 1.1 composite operations are SenML-only."""
    assert isinstance(codec_for(ContentFormat.LWM2M_CBOR), Lwm2mCborCodec)
    with pytest.raises(CodecError, match="no composite form"):
        composite_codec_for(ContentFormat.LWM2M_CBOR)


_VECTORS = load_vectors("lwm2m_cbor")


@pytest.mark.parametrize(
    "vector", [v for v in _VECTORS if v["op"] != "error"], ids=lambda v: v["id"]
)
def test_vector(vector: dict[str, Any]) -> None:
    check_vector(CODEC, vector, model_from_spec(vector["model"]), bytes.fromhex(vector["hex"]))


@pytest.mark.parametrize(
    "vector", [v for v in _VECTORS if v["op"] == "error"], ids=lambda v: v["id"]
)
def test_error_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(CodecError) as info:
        CODEC.decode(
            bytes.fromhex(vector["hex"]),
            Path.parse(vector["path"]),
            model_from_spec(vector["model"]),
        )
    assert vector["error"] in str(info.value), str(info.value)


def test_encoding_shapes() -> None:
    """Objects are keyed by an integer, deeper paths by an array; content nests single ids."""
    device = ObjectInstance(
        0,
        [
            SingleResource(0, RT.STRING, "Open Mobile Alliance"),
            MultipleResource.of(6, RT.INTEGER, {0: 1, 1: 5}),
            MultipleResource(7, RT.INTEGER),
        ],
    )
    assert cbor2.loads(CODEC.encode(device, Path(3, 0), MODEL)) == {
        (3, 0): {0: "Open Mobile Alliance", 6: {0: 1, 1: 5}, 7: {}}
    }
    assert cbor2.loads(CODEC.encode(ObjectNode(3, [device]), Path(3), MODEL)) == {
        3: {0: {0: "Open Mobile Alliance", 6: {0: 1, 1: 5}, 7: {}}}
    }
    link = SingleResource(17, RT.OBJLNK, ObjectLink(21, 0))
    assert cbor2.loads(CODEC.encode(link, Path(0, 0, 17), MODEL)) == {(0, 0, 17): "21:0"}


# -- round trips ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(paths_and_nodes(TEST_OBJECT, allow_infinity=True))
def test_round_trip_node(path_node: tuple[Path, Node]) -> None:
    """Unlike SenML, LwM2M CBOR carries empty containers (an empty map)."""
    path, node = path_node
    assert CODEC.decode(CODEC.encode(node, path, MODEL), path, MODEL) == node


@st.composite
def _composite(draw: st.DrawFn) -> dict[Path, Node | None]:
    pairs = draw(
        st.lists(paths_and_nodes(TEST_OBJECT, levels=(2, 3, 4), allow_infinity=True), max_size=4)
    )
    result: dict[Path, Node | None] = {}
    for path, node in pairs:
        if any(path.is_prefix_of(p) or p.is_prefix_of(path) for p in result):
            continue
        result[path] = None if path.level >= 3 and draw(st.booleans()) else node
    return result


@settings(max_examples=60, deadline=None)
@given(_composite())
def test_round_trip_nodes(nodes: dict[Path, Node | None]) -> None:
    data = CODEC.encode_nodes(nodes, MODEL)
    assert CODEC.decode_nodes(data, MODEL, paths=list(nodes)) == nodes
    assert CODEC.decode_nodes(data, MODEL) == leaf_nodes(nodes)


def test_non_finite_floats() -> None:
    node = SingleResource(3, RT.FLOAT, math.inf)
    assert (
        CODEC.decode(CODEC.encode(node, Path(3441, 0, 3), MODEL), Path(3441, 0, 3), MODEL) == node
    )


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "path", "fragments"),
    [
        ({(3, 0, 9): "x"}, "/3/0/9", ["/3/0/9", "wrong type for resource", "str is not a number"]),
        ({(3, 0, 9): 2**63}, "/3/0/9", ["/3/0/9", "out of range"]),
        ({(3, 0, 99): 1}, "/3/0", ["/3/0/99", "unknown resource 99"]),
        ({(9999, 0, 1): 1}, "/9999", ["/9999/0/1", "unknown object 9999"]),
        ({(3, 0, 7): 1}, "/3/0", ["/3/0/7", "resource instance paths"]),
        ({(3, 0, 9, 0): 1}, "/3/0", ["/3/0/9/0", "single-instance"]),
        ({(3, 0, 9): {}}, "/3/0", ["/3/0/9", "single-instance resource needs a value"]),
        ({(3, 0, 99): {}}, "/3/0", ["/3/0/99", "unknown resource"]),
        ({(3, 0, 7, 0): {}}, "/3/0", ["/3/0/7/0", "holds a value, not a map"]),
        ({(3, 0, 9): 1, 3: {0: {9: 2}}}, "/3/0", ["/3/0/9", "duplicate"]),
        ({(3, 0): 5}, "/3/0", ["/3/0", "resource or resource instance"]),
        ({(3, 0, 9): None}, "/3/0/9", ["/3/0/9", "null is only allowed in a composite"]),
        ({(3, 0, 4): 1}, "/3/0", ["/3/0/4", "executable"]),
        ({(3, 0, 65535): 1}, "/3/0", ["invalid id 65535"]),
        ({(3, -1): {}}, "/3", ["invalid id -1"]),
        ({True: {}}, "/3", ["path key", "True"]),
        ({(): 1}, "/3", ["path key"]),
        ({"3": 1}, "/3", ["path key"]),
        ({(3, 0, 9): 1}, "/3/0/9/1", ["/3/0/9", "outside"]),
        ({}, "/3/0/9", ["/3/0/9", "no value for the resource"]),
        ([], "/3/0", ["is a map, not a list"]),
    ],
)
def test_decode_errors(item: Any, path: str, fragments: list[str]) -> None:
    with pytest.raises(CodecError) as info:
        CODEC.decode(cbor2.dumps(item), Path.parse(path), MODEL)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_decode_root_and_empty() -> None:
    with pytest.raises(CodecError, match="root path"):
        CODEC.decode(b"", Path(), MODEL)
    assert CODEC.decode(b"", Path(3, 0, 7), MODEL) == MultipleResource(7, RT.INTEGER)
    assert CODEC.decode(cbor2.dumps({}), Path(3), MODEL) == ObjectNode(3)
    with pytest.raises(CodecError, match="bytes after the item"):
        CODEC.decode(cbor2.dumps({}) + b"\x00", Path(3), MODEL)


def test_decode_nodes_errors_and_nulls() -> None:
    with pytest.raises(CodecError, match=r"/3/0/9: duplicate"):
        CODEC.decode_nodes(cbor2.dumps({(3, 0, 9): None, 3: {0: {9: 1}}}), MODEL)
    with pytest.raises(CodecError, match=r"/3/0/9: duplicate"):
        CODEC.decode_nodes(cbor2.dumps({(3, 0, 9): None, 3: {0: {9: None}}}), MODEL)
    with pytest.raises(CodecError, match="outside every requested path"):
        CODEC.decode_nodes(cbor2.dumps({(3, 0, 9): 1}), MODEL, paths=[Path(1)])
    assert CODEC.decode_nodes(cbor2.dumps({(3, 0): None}), MODEL) == {Path(3, 0): None}


def test_encode_errors() -> None:
    with pytest.raises(CodecError, match=r"/3/0/9: wrong type for resource: String"):
        CODEC.encode(ObjectInstance(0, [SingleResource(9, RT.STRING, "x")]), Path(3, 0), MODEL)
    with pytest.raises(CodecError, match=r"/3/0/7: the model says this is a multiple-instance"):
        CODEC.encode(SingleResource(7, RT.INTEGER, 1), Path(3, 0, 7), MODEL)
    with pytest.raises(CodecError, match=r"/3/0/4: an executable resource carries no value"):
        CODEC.encode(SingleResource(4, RT.NONE, None), Path(3, 0, 4), MODEL)
    with pytest.raises(CodecError, match="cannot be the content"):
        CODEC.encode(SingleResource(4, RT.INTEGER, 1), Path(3, 0), MODEL)
    with pytest.raises(CodecError, match="overlaps"):
        CODEC.encode_nodes({Path(3): None, Path(3, 0, 9): None}, MODEL)
    with pytest.raises(CodecError, match="root path"):
        CODEC.encode_nodes({Path(): None}, MODEL)
    unknown = ObjectInstance(0, [SingleResource(1, RT.STRING, "x")])
    assert cbor2.loads(CODEC.encode(unknown, Path(9999, 0), MODEL)) == {(9999, 0): {1: "x"}}
