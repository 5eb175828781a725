"""SenML CBOR (CF 112, LwM2M-TS-Core 1.1.1 §7.4.6, RFC 8428 §6): vectors, round trips, bad input."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings

from lwm2m.codec import ContentFormat, codec_for, composite_codec_for
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.senml_cbor import SenmlCborCodec
from lwm2m.errors import CodecError
from lwm2m.model import ObjectInstance, ObjectLink, Path, ResourceType, SingleResource

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

CODEC = SenmlCborCodec()
MODEL = SENML_MODEL
RT = ResourceType
BN, BT, N, V, VS, VB, T, VD = -2, -3, 0, 2, 3, 4, 6, 8


def test_registered() -> None:
    assert isinstance(codec_for(ContentFormat.SENML_CBOR), SenmlCborCodec)
    assert isinstance(composite_codec_for(112), SenmlCborCodec)


@pytest.mark.parametrize("vector", load_vectors("senml_cbor"), ids=lambda v: v["id"])
def test_vector(vector: dict[str, Any]) -> None:
    check_vector(CODEC, vector, MODEL, bytes.fromhex(vector["hex"]))


def test_rfc8428_labels() -> None:
    """RFC 8428 §6 table: the integer labels, and "vlo" as a text key (TS §7.4.6)."""
    labels = CODEC.labels
    assert (labels.bn, labels.bt, labels.n, labels.v, labels.vs, labels.vb, labels.t) == (
        -2, -3, 0, 2, 3, 4, 6,
    )  # fmt: skip
    assert (labels.vd, labels.vlo) == (8, "vlo")


# -- round trips ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(senml_paths_and_nodes(allow_infinity=True))
def test_round_trip_node(path_node: tuple[Path, Any]) -> None:
    path, node = path_node
    assert CODEC.decode(CODEC.encode(node, path, MODEL), path, MODEL) == node


@settings(max_examples=100, deadline=None)
@given(path_lists)
def test_round_trip_paths(paths: list[Path]) -> None:
    assert CODEC.decode_paths(CODEC.encode_paths(paths)) == paths


@settings(max_examples=50, deadline=None)
@given(composite_maps(allow_infinity=True))
def test_round_trip_nodes(nodes: dict[Path, Any]) -> None:
    data = CODEC.encode_nodes(nodes, MODEL)
    assert CODEC.decode_nodes(data, MODEL, paths=list(nodes)) == nodes
    assert CODEC.decode_nodes(data, MODEL) == leaf_nodes(nodes)


@settings(max_examples=25, deadline=None)
@given(timestamped_groups(allow_infinity=True))
def test_round_trip_timestamped(groups: list[TimestampedNodes]) -> None:
    data = CODEC.encode_timestamped(groups, MODEL)
    expected = [TimestampedNodes(g.timestamp, leaf_nodes(g.nodes)) for g in groups]  # type: ignore[arg-type]
    assert CODEC.decode_timestamped(data, MODEL) == expected


def test_non_finite_floats_travel() -> None:
    for value in (math.inf, -math.inf):
        node = SingleResource(0, RT.FLOAT, value)
        assert CODEC.decode(CODEC.encode(node, Path(6, 0, 0), MODEL), Path(6, 0, 0), MODEL) == node
    nan = CODEC.decode(CODEC.encode(SingleResource(0, RT.FLOAT, math.nan), Path(6, 0, 0), MODEL),
                       Path(6, 0, 0), MODEL)  # fmt: skip
    assert math.isnan(nan.value)  # type: ignore[union-attr, arg-type]


# -- decoding what other encoders write ----------------------------------------------------------


def _decode(records: Any, path: str = "/3/0") -> Any:
    return CODEC.decode(cbor2.dumps(records), Path.parse(path), MODEL)


def test_decode_number_encodings() -> None:
    """RFC 8428 §6: numbers may be integers, floats of any width or decimal fractions."""
    half_float = bytes.fromhex("81a221662f362f302f3002f93e00")  # 1.5 as a half float
    assert CODEC.decode(half_float, Path(6, 0, 0), MODEL) == SingleResource(0, RT.FLOAT, 1.5)
    assert _decode([{BN: "/6/0/0", V: Decimal("4.5")}], "/6/0/0").value == 4.5
    assert _decode([{BN: "/3/0/9", V: Decimal("1E+2")}], "/3/0/9").value == 100
    assert _decode([{BN: "/3/0/9", V: 7.0}], "/3/0/9").value == 7
    assert _decode([{BN: "/3/0/9", V: 2**62}], "/3/0/9").value == 2**62


def test_decode_time_tags() -> None:
    """A Time may come as a CBOR date/time (tags 0 and 1), as the TS's SenML CBOR table says."""
    when = datetime(2013, 5, 2, 10, 40, 15, tzinfo=UTC)
    assert _decode([{BN: "/3/0/13", V: when}], "/3/0/13").value == 1367491215
    epoch = bytes.fromhex("81a221672f332f302f313302c11a5182428f")  # 1(1367491215)
    assert CODEC.decode(epoch, Path(3, 0, 13), MODEL).value == 1367491215  # type: ignore[union-attr]
    with pytest.raises(CodecError, match=r"/3/0/13: .*not an integer"):
        _decode([{BN: "/3/0/13", V: datetime(2013, 5, 2, 0, 0, 0, 500, tzinfo=UTC)}], "/3/0/13")
    naive = cbor2.dumps([{BN: "/3/0/13", V: "x"}]).replace(b"\x02ax", b"\x02\xc0ax")
    with pytest.raises(CodecError):
        CODEC.decode(naive, Path(3, 0, 13), MODEL)


def test_decode_decimal_fraction_times() -> None:
    data = cbor2.dumps([{BN: "/3/0/9", BT: Decimal("268435456.5"), V: 1}])
    assert CODEC.decode_timestamped(data, MODEL)[0].timestamp == 268435456.5
    with pytest.raises(CodecError, match="time is out of range"):
        CODEC.decode_timestamped(cbor2.dumps([{BN: "/3/0/9", BT: Decimal("1E+99"), V: 1}]), MODEL)


@pytest.mark.parametrize(
    ("records", "path", "fragments"),
    [
        ([{BN: "/3/0/0", V: 1}], "/3/0/0", ["/3/0/0", "'vs'"]),
        ([{BN: "/3/0/0", VS: b"x"}], "/3/0/0", ["/3/0/0", "text string"]),
        ([{BN: "/0/0/3", VD: "q83v"}], "/0/0/3", ["/0/0/3", "byte string"]),
        ([{BN: "/3/0/9", V: Decimal("1E+999999999")}], "/3/0/9", ["/3/0/9", "out of range"]),
        ([{BN: "/3/0/9", V: Decimal("1.5")}], "/3/0/9", ["/3/0/9", "not an integer"]),
        ([{BN: "/6/0/0", V: Decimal("1E+999")}], "/6/0/0", ["/6/0/0", "Float range"]),
        ([{BN: "/6/0/0", V: 2**2000}], "/6/0/0", ["/6/0/0", "Float range"]),
        ([{BN: "/3/0/9", V: 2**64}], "/3/0/9", ["/3/0/9", "out of range"]),
        ([{BN: "/3/0/9", V: True}], "/3/0/9", ["/3/0/9", "bool is not a number"]),
        ([{BN: "/3/0/9", V: None}], "/3/0/9", ["/3/0/9", "NoneType is not a number"]),
        ([{BN: "/65/0/0/0", "vlo": b"66:0"}], "/65/0/0/0", ["/65/0/0/0", "text string"]),
        ([{BN: "/3/0/", N: "9", V: 1}, {N: "9", V: 2}], "/3/0", ["/3/0/9", "duplicate"]),
        ([{N: "/3/0/9", V: 1, "x_": 1}], "/3/0", ["must-understand"]),
        ([{N: "/3/0/9", V: 1, -5: 1}], "/3/0", ["base value"]),
        ([{N: "/3/0/9", V: 1, -1: 11}], "/3/0", ["version 11"]),
        ([{N: "/3/0/9", V: 1, T: math.nan}], "/3/0", ["not finite"]),
        ([{N: "/3/0/9", V: 1, "n": "/1/0/1"}], "/3/0", []),  # text labels are unknown: ignored
        ([{N: "/3/0/9", V: 1, VS: "1"}], "/3/0", ["more than one value"]),
        ([{N: b"/3/0/9", V: 1}], "/3/0", ["n is not a text string"]),
        ({N: "/3/0/9"}, "/3/0", ["not a dict"]),
        ([{N: "/1/0/1", V: 1}], "/3/0", ["/1/0/1", "outside the request path"]),
    ],
)
def test_decode_errors(records: Any, path: str, fragments: list[str]) -> None:
    if not fragments:
        assert _decode(records, path) == ObjectInstance(0, [SingleResource(9, RT.INTEGER, 1)])
        return
    with pytest.raises(CodecError) as info:
        _decode(records, path)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (cbor2.dumps([{N: "/3/0/9", V: 1}]).hex() + "00", "1 bytes after the item"),
        ("81a3" + cbor2.dumps("/3/0/9").hex().join(["00", "02010201"]), "Duplicate map key"),
        ("81a2", "invalid SenML CBOR"),  # truncated
        ("81a200633f332f", "invalid SenML CBOR"),  # truncated text
        ("81a10062ff00", "invalid SenML CBOR"),  # invalid UTF-8
        ("81a1a1000000", "no name"),  # a map as a map key: an unknown label
        ("9f" * 2000 + "ff" * 2000, "invalid SenML CBOR"),  # nesting beyond max_depth
        ("5b7fffffffffffffff00", "invalid SenML CBOR"),  # a huge byte string length
        ("1f", "invalid SenML CBOR"),  # reserved additional info
        ("ff", "invalid SenML CBOR"),  # a lone break
    ],
)
def test_decode_malformed_cbor(payload: str, fragment: str) -> None:
    with pytest.raises(CodecError) as info:
        CODEC.decode(bytes.fromhex(payload), Path(3, 0), MODEL)
    assert fragment in str(info.value), str(info.value)


def test_encode_objlnk_and_opaque_items() -> None:
    node = ObjectInstance(
        0, [SingleResource(17, RT.OBJLNK, ObjectLink(21, 0)), SingleResource(3, RT.OPAQUE, b"\x01")]
    )
    records = cbor2.loads(CODEC.encode(node, Path(0, 0), MODEL))
    assert records == [{BN: "/0/0/", N: "3", VD: b"\x01"}, {N: "17", "vlo": "21:0"}]


def test_encode_pack_rejects_unencodable() -> None:
    with pytest.raises(CodecError, match="cannot serialize"):
        CODEC.encode_pack([{V: object()}])
