"""SenML JSON (CF 110, LwM2M-TS-Core 1.1.1 §7.4.5): vectors both ways, round trips, bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from lwm2m.codec import ContentFormat, codec_for, composite_codec_for
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.senml_json import SenmlJsonCodec
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    Path,
    ResourceType,
    SingleResource,
)

from .senml_strategies import (
    SENML_MODEL,
    check_vector,
    composite_maps,
    leaf_nodes,
    load_vectors,
    path_lists,
    senml_paths_and_nodes,
    timestamped_groups,
)

CODEC = SenmlJsonCodec()
MODEL = SENML_MODEL
RT = ResourceType


def test_registered() -> None:
    assert isinstance(codec_for(ContentFormat.SENML_JSON), SenmlJsonCodec)
    assert isinstance(composite_codec_for(110), SenmlJsonCodec)


@pytest.mark.parametrize("vector", load_vectors("senml_json"), ids=lambda v: v["id"])
def test_vector(vector: dict[str, object]) -> None:
    payload = str(vector["payload"]).encode("utf-8")
    check_vector(CODEC, vector, MODEL, payload)


# -- round trips ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(senml_paths_and_nodes())
def test_round_trip_node(path_node: tuple[Path, object]) -> None:
    path, node = path_node
    data = CODEC.encode(node, path, MODEL)  # type: ignore[arg-type]
    json.loads(data)  # valid JSON
    assert CODEC.decode(data, path, MODEL) == node


@settings(max_examples=100, deadline=None)
@given(path_lists)
def test_round_trip_paths(paths: list[Path]) -> None:
    assert CODEC.decode_paths(CODEC.encode_paths(paths)) == paths


@settings(max_examples=50, deadline=None)
@given(composite_maps())
def test_round_trip_nodes(nodes: dict[Path, object]) -> None:
    data = CODEC.encode_nodes(nodes, MODEL)  # type: ignore[arg-type]
    assert CODEC.decode_nodes(data, MODEL, paths=list(nodes)) == nodes
    # Without the request paths, every value is its own node (RFC 8428 resolved records).
    assert CODEC.decode_nodes(data, MODEL) == leaf_nodes(nodes)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(timestamped_groups())
def test_round_trip_timestamped(groups: list[TimestampedNodes]) -> None:
    data = CODEC.encode_timestamped(groups, MODEL)
    expected = [TimestampedNodes(g.timestamp, leaf_nodes(g.nodes)) for g in groups]  # type: ignore[arg-type]
    assert CODEC.decode_timestamped(data, MODEL) == expected
    if len(groups) == 1:  # with the request paths, the nodes come back as they were
        assert CODEC.decode_timestamped(data, MODEL, paths=list(groups[0].nodes)) == groups


# -- bad input -----------------------------------------------------------------------------------


def _decode_error(payload: str, path: str = "/3/0") -> str:
    with pytest.raises(CodecError) as info:
        CODEC.decode(payload.encode(), Path.parse(path), MODEL)
    return str(info.value)


@pytest.mark.parametrize(
    ("payload", "path", "fragments"),
    [
        # wrong type for a resource: the message names the path and the expected field
        ('[{"bn":"/3/0/","n":"0","v":1}]', "/3/0", ["/3/0/0", "String", "'vs'"]),
        ('[{"bn":"/3/0/9","vs":"100"}]', "/3/0/9", ["/3/0/9", "Integer", "'v'"]),
        ('[{"bn":"/3/0/9","v":1.5}]', "/3/0/9", ["/3/0/9", "not an integer"]),
        ('[{"bn":"/3/0/9","v":9223372036854775808}]', "/3/0/9", ["/3/0/9", "out of range"]),
        ('[{"bn":"/0/0/13","v":-1}]', "/0/0/13", ["/0/0/13", "out of range"]),
        ('[{"bn":"/0/0/1","v":1}]', "/0/0/1", ["/0/0/1", "Boolean", "'vb'"]),
        ('[{"bn":"/0/0/3","vd":"q83v!"}]', "/0/0/3", ["/0/0/3", "base64"]),
        ('[{"bn":"/0/0/3","vd":3}]', "/0/0/3", ["/0/0/3", "text string"]),
        ('[{"n":"/65/0/0/0","vlo":"66"}]', "/65/0", ["/65/0/0/0", "Objlnk"]),
        ('[{"n":"/65/0/0/0","vlo":"66:65536"}]', "/65/0", ["/65/0/0/0", "Objlnk"]),
        ('[{"n":"/3/0/4","v":1}]', "/3/0", ["/3/0/4", "executable"]),
        # unknown object / resource
        ('[{"n":"/9999/0/1","v":1}]', "/9999", ["/9999/0/1", "unknown object 9999"]),
        ('[{"n":"/3/0/99","v":1}]', "/3/0", ["/3/0/99", "unknown resource 99"]),
        # path/format mismatch
        ('[{"n":"/1/0/1","v":1}]', "/3/0", ["/1/0/1", "outside the request path /3/0"]),
        ('[{"n":"/3/0","v":1}]', "/3/0", ["/3/0", "resource or resource instance"]),
        ('[{"n":"/3/0/7","v":1}]', "/3/0", ["/3/0/7", "resource instance paths"]),
        ('[{"n":"/3/0/9/0","v":1}]', "/3/0", ["/3/0/9/0", "single-instance"]),
        ('[{"n":"/3/0/9"}]', "/3/0", ["/3/0/9", "no value"]),
        ("[]", "/3/0/9", ["/3/0/9", "no value for the resource"]),
        ('[{"n":"/3/0/7/0","v":1}]', "/3/0/7/1", ["/3/0/7/0", "outside"]),
        ("[]", "/3/0/7/1", ["/3/0/7/1", "no value for the resource instance"]),
        ("[]", "/3/0/9/1", ["/3/0/9/1", "single-instance"]),
        # duplicate SenML names
        ('[{"bn":"/3/0/","n":"9","v":1},{"n":"9","v":2}]', "/3/0", ["/3/0/9", "duplicate"]),
        ('[{"n":"/3/0/7/0","v":1},{"bn":"/3/0/7/","n":"0","v":2}]', "/3/0", ["/3/0/7/0", "dup"]),
        # names that are not LwM2M paths, out-of-range ids
        ('[{"n":"temperature","v":1}]', "/3/0", ["'temperature'", "not an LwM2M path"]),
        ('[{"n":"/3/0/65535","v":1}]', "/3/0", ["'/3/0/65535'", "not an LwM2M path"]),
        ('[{"n":"/3/0/1/2/3","v":1}]', "/3/0", ["'/3/0/1/2/3'", "at most 4 ids"]),
        ('[{"n":"/3/0/01","v":1}]', "/3/0", ["'/3/0/01'", "leading zero"]),
        ('[{"n":"/3/-1/0","v":1}]', "/3/0", ["'/3/-1/0'", "not an LwM2M path"]),
        ('[{"v":1}]', "/3/0", ["record #0", "no name"]),
        # RFC 8428 record rules
        ('[{"n":"/3/0/9","v":1,"vs":"1"}]', "/3/0", ["record #0", "more than one value"]),
        ('[{"n":"/3/0/9","v":1,"x_":1}]', "/3/0", ["record #0", "must-understand", "x_"]),
        ('[{"n":"/3/0/9","v":1,"bv":1}]', "/3/0", ["record #0", "base value"]),
        ('[{"n":"/3/0/9","v":1,"bs":1}]', "/3/0", ["record #0", "base sum"]),
        ('[{"n":"/3/0/9","v":1,"bver":11}]', "/3/0", ["record #0", "version 11"]),
        ('[{"n":"/3/0/9","v":1,"bver":"10"}]', "/3/0", ["record #0", "version"]),
        ('[{"n":9,"v":1}]', "/3/0", ["record #0", "n is not a text string"]),
        ('[{"bn":["/3"],"v":1}]', "/3/0", ["record #0", "bn is not a text string"]),
        ('[{"n":"/3/0/9","v":1,"t":"now"}]', "/3/0", ["record #0", "time"]),
        ('[{"n":"/3/0/9","v":1,"bt":true}]', "/3/0", ["record #0", "time"]),
        ('[{"n":"/3/0/9","v":1},[1]]', "/3/0", ["record #1", "a record is a map, not a list"]),
        ('{"n":"/3/0/9","v":1}', "/3/0", ["a SenML pack is an array of records, not a dict"]),
        (
            '[{"n":"/3/0/9","v":1,"t":1},{"n":"/3/0/10","v":1}]',
            "/3/0",
            ["/3/0/10", "different times"],
        ),
        # JSON itself
        ('[{"n":"/3/0/9","v":NaN}]', "/3/0", ["invalid SenML JSON", "NaN"]),
        ('[{"n":"/3/0/9","v":1e999}]', "/3/0", ["invalid SenML JSON", "overflows"]),
        ('[{"n":"/3/0/9","v":1,"v":2}]', "/3/0", ["invalid SenML JSON", "duplicate key"]),
        ('[{"n":"/3/0/9","v":1}', "/3/0", ["invalid SenML JSON"]),
        ("[" * 100000, "/3/0", ["invalid SenML JSON"]),
        ('[{"n":"/3/0/9","v":' + "1" * 5000 + "}]", "/3/0", ["invalid SenML JSON"]),
    ],
)
def test_decode_errors(payload: str, path: str, fragments: list[str]) -> None:
    message = _decode_error(payload, path)
    for fragment in fragments:
        assert fragment in message, message


def test_decode_rejects_bad_utf8_and_root() -> None:
    with pytest.raises(CodecError, match="invalid SenML JSON"):
        CODEC.decode(b'[{"n":"/3/0/0","vs":"\xff"}]', Path(3, 0), MODEL)
    with pytest.raises(CodecError, match="root path"):
        CODEC.decode(b"[]", Path(), MODEL)


def test_decode_accepts_padded_and_standard_base64() -> None:
    for text in ("-_8", "-_8=", "+/8", "+/8="):
        node = CODEC.decode(f'[{{"bn":"/0/0/3","vd":"{text}"}}]'.encode(), Path(0, 0, 3), MODEL)
        assert node == SingleResource(3, RT.OPAQUE, b"\xfb\xff")


def test_decode_numbers_for_float_and_time() -> None:
    float_node = CODEC.decode(b'[{"bn":"/6/0/0","v":23}]', Path(6, 0, 0), MODEL)
    assert float_node == SingleResource(0, RT.FLOAT, 23.0)
    assert type(float_node.value) is float  # type: ignore[union-attr]
    time_node = CODEC.decode(b'[{"bn":"/3/0/13","v":3.0}]', Path(3, 0, 13), MODEL)
    assert time_node.value == 3
    assert type(time_node.value) is int
    with pytest.raises(CodecError, match="Float range"):
        CODEC.decode(b'[{"bn":"/6/0/0","v":' + b"9" * 400 + b"}]", Path(6, 0, 0), MODEL)


def test_ignored_fields_and_one_time() -> None:
    payload = b'[{"bn":"/3/0/","bt":1700000000,"bver":10,"n":"9","u":"%","v":95},{"n":"10","v":1}]'
    node = CODEC.decode(payload, Path(3, 0), MODEL)
    assert node == ObjectInstance(
        0, [SingleResource(9, RT.INTEGER, 95), SingleResource(10, RT.INTEGER, 1)]
    )


def test_decode_paths_errors() -> None:
    for payload, fragment in [
        ('[{"n":"/3/0/9","v":1}]', "carries no value"),
        ('[{"n":"/3/0/9","t":5}]', "carries no time"),
        ('[{"n":"/3/0/9"},{"bn":"/3/0/","n":"9"}]', "duplicate path"),
        ('[{"n":"/3/0/x"}]', "not an LwM2M path"),
    ]:
        with pytest.raises(CodecError, match=fragment):
            CODEC.decode_paths(payload.encode())
    assert CODEC.decode_paths(b'[{"n":"/"}]') == [Path()]
    assert CODEC.decode_paths(b"") == []


def test_decode_nodes_errors() -> None:
    for payload, fragment in [
        ('[{"n":"/3/0/9"},{"n":"/3/0/9","v":1}]', "duplicate"),
        ('[{"n":"/3/0/9"},{"n":"/3/0/9"}]', "duplicate"),
        ('[{"n":"/"}]', "root path cannot be deleted"),
        ('[{"n":"/3/0/9","v":1,"t":1},{"n":"/3/0/10","v":1}]', "different times"),
    ]:
        with pytest.raises(CodecError, match=fragment):
            CODEC.decode_nodes(payload.encode(), MODEL)
    with pytest.raises(CodecError, match="outside every requested path"):
        CODEC.decode_nodes(b'[{"n":"/3/0/9","v":1}]', MODEL, paths=[Path(1, 0)])
    with pytest.raises(CodecError, match="root path"):
        CODEC.decode_nodes(b'[{"n":"/3/0/9","v":1}]', MODEL, paths=[Path()])
    # A requested path without values is absent; None entries stay.
    decoded = CODEC.decode_nodes(
        b'[{"n":"/3/0/9","v":1},{"n":"/3/0/7/0"}]', MODEL, paths=[Path(3, 0), Path(1, 0)]
    )
    assert decoded == {
        Path(3, 0): ObjectInstance(0, [SingleResource(9, RT.INTEGER, 1)]),
        Path(3, 0, 7, 0): None,
    }


def test_decode_timestamped_time_rules() -> None:
    relative = b'[{"bn":"/3/0/9","bt":-5,"v":1},{"v":2,"t":-10}]'
    with pytest.raises(CodecError, match=r"/3/0/9: relative time -5 .*needs a reference"):
        CODEC.decode_timestamped(relative, MODEL)
    groups = CODEC.decode_timestamped(relative, MODEL, now=1_700_000_000)
    assert [g.timestamp for g in groups] == [1_699_999_995, 1_699_999_985]
    with pytest.raises(CodecError, match="has no value"):
        CODEC.decode_timestamped(b'[{"n":"/3/0/9","bt":1700000000}]', MODEL)
    # bt + t == 0 is "now": no timestamp.
    none = CODEC.decode_timestamped(b'[{"n":"/3/0/9","bt":5,"t":-5,"v":1}]', MODEL)
    assert none == [TimestampedNodes(None, {Path(3, 0, 9): SingleResource(9, RT.INTEGER, 1)})]


# -- encoding errors -----------------------------------------------------------------------------


def test_encode_errors() -> None:
    with pytest.raises(CodecError, match=r"/6/0/0: inf cannot travel in SenML JSON"):
        CODEC.encode(SingleResource(0, RT.FLOAT, float("inf")), Path(6, 0, 0), MODEL)
    inst = ObjectInstance(0, [SingleResource(0, RT.FLOAT, float("nan"))])
    with pytest.raises(CodecError, match=r"/6/0/0: nan cannot travel"):
        CODEC.encode(inst, Path(6, 0), MODEL)
    multi = MultipleResource.of(13, RT.FLOAT, {0: float("inf")})
    with pytest.raises(CodecError, match=r"/3441/0/13.*cannot travel"):
        CODEC.encode(multi, Path(3441, 0, 13), MODEL)
    with pytest.raises(CodecError, match=r"/3441/0/13.*cannot travel"):
        CODEC.encode(ObjectInstance(0, [multi]), Path(3441, 0), MODEL)
    with pytest.raises(CodecError, match=r"/3/0/9: wrong type for resource: String"):
        CODEC.encode(SingleResource(9, RT.STRING, "x"), Path(3, 0, 9), MODEL)
    with pytest.raises(CodecError, match=r"/3/0/9: wrong type.*String, the model says Integer"):
        CODEC.encode(ObjectInstance(0, [SingleResource(9, RT.STRING, "x")]), Path(3, 0), MODEL)
    with pytest.raises(CodecError, match=r"/3/0/7: the model says this is a multiple-instance"):
        CODEC.encode(ObjectInstance(0, [SingleResource(7, RT.INTEGER, 1)]), Path(3, 0), MODEL)
    with pytest.raises(CodecError, match=r"/3/0/9: the model says this is a single-instance"):
        CODEC.encode(MultipleResource.of(9, RT.INTEGER, {0: 1}), Path(3, 0, 9), MODEL)
    with pytest.raises(CodecError, match=r"/3/0/4: an executable resource carries no value"):
        CODEC.encode(ObjectInstance(0, [SingleResource(4, RT.NONE, None)]), Path(3, 0), MODEL)
    with pytest.raises(CodecError, match=r"/3/0/4: an executable resource carries no value"):
        CODEC.encode(SingleResource(4, RT.NONE, None), Path(3, 0, 4), MODEL)
    with pytest.raises(CodecError, match="cannot be the content"):
        CODEC.encode(SingleResource(4, RT.INTEGER, 1), Path(3, 0), MODEL)
    with pytest.raises(CodecError, match=r"/3/0/9: duplicate path"):
        CODEC.encode_paths([Path(3, 0, 9), Path(3, 0, 9)])
    with pytest.raises(CodecError, match=r"/3/0/9: overlaps the entry /3/0"):
        CODEC.encode_nodes({Path(3, 0): None, Path(3, 0, 9): None}, MODEL)
    with pytest.raises(CodecError, match="root path cannot be deleted"):
        CODEC.encode_nodes({Path(): None}, MODEL)
    one = {Path(3, 0, 9): SingleResource(9, RT.INTEGER, 1)}
    with pytest.raises(CodecError, match=r"timestamp 500 is below 2\*\*28"):
        CODEC.encode_timestamped([TimestampedNodes(500, one)], MODEL)
    overlapping = {Path(3, 0): ObjectInstance(0), Path(3, 0, 9): SingleResource(9, RT.INTEGER, 1)}
    with pytest.raises(CodecError, match="overlaps"):
        CODEC.encode_timestamped([TimestampedNodes(None, overlapping)], MODEL)
    with pytest.raises(CodecError, match="two groups share the timestamp"):
        CODEC.encode_timestamped([TimestampedNodes(None, one), TimestampedNodes(None, one)], MODEL)
    with pytest.raises(CodecError, match="cannot serialize"):
        CODEC.encode_pack([{"v": object()}])


def test_encode_unknown_resources_as_their_nodes_say() -> None:
    node = ObjectInstance(0, [SingleResource(99, RT.STRING, "x")])
    assert CODEC.encode(node, Path(3, 0), MODEL) == b'[{"bn":"/3/0/","n":"99","vs":"x"}]'


def test_encode_timestamped_resets_base_time() -> None:
    one = {Path(3, 0, 9): SingleResource(9, RT.INTEGER, 1)}
    groups = [TimestampedNodes(268435456, one), TimestampedNodes(None, one)]
    data = CODEC.encode_timestamped(groups, MODEL)
    assert data == (b'[{"bn":"/3/0/9","bt":268435456,"v":1},{"bn":"/3/0/9","bt":0,"v":1}]')
    assert CODEC.decode_timestamped(data, MODEL) == groups
    stamped = CODEC.encode_timestamped([TimestampedNodes(268435456.5, one)], MODEL)
    assert stamped == b'[{"bn":"/3/0/9","bt":268435456.5,"v":1}]'
