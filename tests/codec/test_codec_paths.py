"""Error paths of the codec registry and the shared mapping helpers: whatever the input (content
format, path, payload), the codec layer raises only CodecError."""

from __future__ import annotations

import json

import pytest

from lwm2m.codec import ContentFormat, codec_for, composite_codec_for, default_codecs
from lwm2m.codec._common import build_node, check_node_at, resource_definition
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.oma_json import OmaJsonCodec
from lwm2m.errors import CodecError
from lwm2m.model import Path, ResourceType, SingleResource
from lwm2m.model.registry import ModelRegistry

RT = ResourceType


@pytest.mark.parametrize("content_format", [[], {}, None, "11542", 1.5, -1, 2**70])
def test_codec_for_odd_arguments_raises_codec_error(content_format: object) -> None:
    with pytest.raises(CodecError, match="unsupported content format"):
        codec_for(content_format)  # type: ignore[arg-type]


def test_codec_for_formats_without_nodes_and_composites() -> None:
    node_formats = set(default_codecs())
    for cf in ContentFormat:
        if cf not in node_formats:
            with pytest.raises(CodecError, match="carries no nodes"):
                codec_for(cf)
    with pytest.raises(CodecError, match="no composite form"):
        composite_codec_for(ContentFormat.TLV)
    assert codec_for(int(ContentFormat.TLV)) is codec_for(ContentFormat.TLV)


PATHS = [Path(), Path(3), Path(3, 0), Path(3, 0, 0), Path(3, 0, 0, 0), Path(3, 0, 11, 0)]
PATHS += [Path(9999, 0, 0), Path(3, 0, 9999), Path(3, 0, 11)]
PAYLOADS = [
    b"",
    b"\x00",
    b"\xff" * 9,
    b"[]",
    b"{}",
    b'{"e":[{"n":"0","sv":"x"}]}',
    b'[{"n":"/3/0/0","vs":"a"},{"n":"/3/0/0","vs":"b"}]',
    b'{"bn":"/3/0/","e":[{"n":"0","v":1},{"n":"0","v":2}]}',
    bytes([0xA1, 0x00, 0x61, 0x78]),  # CBOR {0: "x"}
    bytes([0xC8, 0x00, 0x01, 0x78]),  # a TLV resource record
    b"\x9f" * 64,  # deeply nested indefinite CBOR arrays, never closed
    b"[" * 2000,  # deeply nested JSON
]


@pytest.mark.parametrize("cf", sorted(default_codecs()), ids=lambda cf: cf.short_name)
def test_every_decoder_raises_only_codec_error(
    cf: ContentFormat, core_model: ModelRegistry
) -> None:
    codec = codec_for(cf)
    for path in PATHS:
        for data in PAYLOADS:
            try:
                codec.decode(data, path, core_model)
            except CodecError:
                pass
            except Exception as exc:
                pytest.fail(f"{cf.short_name} decode({data[:16]!r}, {path}) raised {exc!r}")


def test_encoding_at_the_root_path_is_a_codec_error(core_model: ModelRegistry) -> None:
    node = SingleResource(0, RT.STRING, "x")
    with pytest.raises(CodecError, match="root path"):
        check_node_at(node, Path())
    for cf in default_codecs():
        with pytest.raises(CodecError):
            codec_for(cf).encode(node, Path(), core_model)


def test_resource_definition_needs_a_resource_path(core_model: ModelRegistry) -> None:
    with pytest.raises(CodecError, match="not a resource path") as raised:
        resource_definition(core_model, Path(3, 0))
    assert raised.value.path == "/3/0"


def test_build_node_rejects_root_shallow_and_duplicate_leaves(core_model: ModelRegistry) -> None:
    with pytest.raises(CodecError, match="root path"):
        build_node(Path(), [], core_model)
    with pytest.raises(CodecError, match="resource or resource instance path"):
        build_node(Path(3), [(Path(3, 0), "x")], core_model)
    with pytest.raises(CodecError, match="duplicate"):
        build_node(Path(3, 0), [(Path(3, 0, 0), "a"), (Path(3, 0, 0), "b")], core_model)
    with pytest.raises(CodecError, match="single-instance"):
        build_node(Path(3, 0, 0, 0), [], core_model)  # resource 0 (Manufacturer) is single


def test_oma_json_duplicates_with_one_time_are_rejected_in_timestamped_decoding(
    core_model: ModelRegistry,
) -> None:
    data = json.dumps(
        {"bn": "/3/0/", "e": [{"n": "0", "sv": "a", "t": 5}, {"n": "0", "sv": "b", "t": 5}]}
    ).encode()
    with pytest.raises(CodecError, match="duplicate"):
        OmaJsonCodec().decode_timestamped(data, Path(3, 0), core_model)
    empty = json.dumps({"e": []}).encode()
    with pytest.raises(CodecError, match="single-instance"):
        OmaJsonCodec().decode(empty, Path(3, 0, 0, 0), core_model)


def test_timestamped_nodes_equality_and_hash() -> None:
    node = SingleResource(0, RT.STRING, "x")
    a = TimestampedNodes(1.0, {Path(3, 0, 0): node})
    b = TimestampedNodes(1.0, {Path(3, 0, 0): node})
    assert a == b
    assert hash(a) == hash(b)
    assert a != TimestampedNodes(2.0, {Path(3, 0, 0): node})
    assert a != (1.0, {Path(3, 0, 0): node})  # other types: NotImplemented, not an error
    assert len({a, b}) == 1
