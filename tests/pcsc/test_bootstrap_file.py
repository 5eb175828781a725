"""EF LwM2M_Bootstrap (LwM2M-TS-Core Appendix G.3.3): the Anjay and nRF example files, both
layouts, explicit object versions, errors naming offset and field; fuzzed and mutated files
raise only BootstrapFileError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lwm2m.model import ObjectInstance, ObjectNode, ResourceType, SingleResource
from lwm2m.model.registry import default_registry
from lwm2m.secure.pcsc.bootstrap_file import (
    MAX_FILE_SIZE,
    BootstrapObject,
    Layout,
    build_bootstrap_file,
    decode_framing,
    encode_framing,
    parse_bootstrap_file,
)
from lwm2m.secure.pcsc.errors import BootstrapFileError

from .fuzzing import ITERATIONS, fuzz

VECTORS = Path(__file__).parents[1] / "vectors" / "pcsc"
ANJAY = json.loads((VECTORS / "anjay_bootstrap.json").read_text())
NRF = json.loads((VECTORS / "nrf_pkcs15.json").read_text())
ANJAY_FILE = bytes.fromhex(ANJAY["file"])


def test_anjay_example_both_ways() -> None:
    data = parse_bootstrap_file(ANJAY_FILE)
    assert data.layout is Layout.V1_1
    assert data.order == (0, 1)
    assert data.versions == {0: None, 1: None}
    security = data[0].instances[1].resources
    expected = ANJAY["security"]
    assert security[0].value == expected["uri"]
    assert security[1].value is False
    assert security[2].value == expected["mode"]
    assert security[3].value == expected["identity"].encode()
    assert security[5].value == expected["key"].encode()
    assert security[10].value == expected["short_server_id"]
    server = data[1].instances[1].resources
    assert (server[0].value, server[1].value, server[6].value, server[7].value) == (
        1,
        86400,
        False,
        "U",
    )
    assert build_bootstrap_file(list(data)) == ANJAY_FILE
    assert build_bootstrap_file([o.node for o in data]) == ANJAY_FILE
    assert expected["key"] not in repr(data)
    assert 0 in data
    assert 5 not in data
    assert len(data) == 2
    assert data == parse_bootstrap_file(ANJAY_FILE)
    assert hash(data) == hash(parse_bootstrap_file(ANJAY_FILE))
    assert data != parse_bootstrap_file(ANJAY_FILE, layout=Layout.V1_1).objects


def test_nrf_example_with_ff_padding() -> None:
    data = parse_bootstrap_file(bytes.fromhex(NRF["bootstrap"]))
    (instance,) = data[0].instances.values()
    assert instance.resources[0].value == NRF["bootstrap_uri"]
    assert instance.resources[1].value is True
    assert instance.resources[2].value == 3


def test_1_0_layout_auto_and_explicit() -> None:
    data = parse_bootstrap_file(ANJAY_FILE)
    legacy = build_bootstrap_file(list(data), layout=Layout.V1_0)
    assert len(legacy) == len(ANJAY_FILE) - 2
    auto = parse_bootstrap_file(legacy)
    assert auto.layout is Layout.V1_0
    assert [o.node for o in auto] == [o.node for o in data]
    assert parse_bootstrap_file(legacy, layout=Layout.V1_0) == auto
    with pytest.raises(BootstrapFileError):
        parse_bootstrap_file(legacy, layout=Layout.V1_1)


def test_explicit_versions() -> None:
    registry = default_registry()
    acl = ObjectNode(
        2,
        [
            ObjectInstance(
                0,
                [
                    SingleResource(0, ResourceType.INTEGER, 3),
                    SingleResource(1, ResourceType.INTEGER, 0),
                    SingleResource(3, ResourceType.INTEGER, 101),
                ],
            )
        ],
    )
    raw = build_bootstrap_file(
        [(acl, "1.0"), BootstrapObject(1, "1.1", parse_bootstrap_file(ANJAY_FILE)[1])],
        registry=registry,
    )
    assert raw[4:7] == b"\x00\x02\x01"
    assert raw[7] == 0x00
    data = parse_bootstrap_file(raw, registry=registry)
    assert data.versions == {2: "1.0", 1: "1.1"}
    assert repr(data.objects[2]) == "BootstrapObject(object_id=2, version='1.0', instances=[0])"
    unknown = raw[:6] + b"\x07\x00" + raw[8:]  # object 2 version 7.0
    with pytest.raises(BootstrapFileError, match=r"object\[0\].version.*7.0.*known versions"):
        parse_bootstrap_file(unknown, registry=registry)


def frame(
    *objects: tuple[int, bytes],
    count: int | None = None,
    version: bytes = b"\x00",
    size: int | None = None,
) -> bytes:
    body = b"".join(
        oid.to_bytes(2, "big") + version + len(t).to_bytes(2, "big") + t for oid, t in objects
    )
    n = len(objects) if count is None else count
    return n.to_bytes(2, "big") + (len(body) if size is None else size).to_bytes(2, "big") + body


@pytest.mark.parametrize(
    ("raw", "field", "offset"),
    [
        (b"\x00", "header.nb_objects", 0),
        (b"\x00\x01", "header.size", 0),
        (bytes.fromhex("00010010"), "header.size", 2),
        (frame(count=1), "object[0].object_id", 4),
        (bytes.fromhex("0001000300000000"), "object[0].length", 7),
        (frame((0, b"\x08\x00\x00")) + b"\x01", "padding", 12),
        (frame((0, b"\x08\x00\x00"), size=9) + b"\xff", "header.size", 12),
        (frame((0xFFFF, b"\x08\x00\x00")), "object[0].object_id", 4),
        (frame((0, b"\xc8\x00")), "object[0].instances", 9),
        (frame((0, b"\x08\x00\x03\xc1\x63\x01")), "object[0].instances", 9),
        (frame((0, b"\x08\x00\x00"), (0, b"\x08\x01\x00")), "object[1].object_id", 12),
        (frame((4242, b"\x08\x00\x00")), "object[0].object_id", 4),
    ],
)
def test_errors_name_field_and_offset(raw: bytes, field: str, offset: int) -> None:
    with pytest.raises(BootstrapFileError) as err:
        parse_bootstrap_file(raw, layout=Layout.V1_1)
    assert (err.value.field, err.value.offset) == (field, offset), str(err.value)
    assert str(err.value).startswith(f"EF LwM2M_Bootstrap: {field}, offset {offset}: ")


def test_auto_reports_the_1_1_error() -> None:
    with pytest.raises(BootstrapFileError, match="object\\[0\\]"):
        parse_bootstrap_file(frame((0, b"\xc8\x00")))


def test_size_limits_and_builder_checks() -> None:
    with pytest.raises(BootstrapFileError, match="exceeds"):
        decode_framing(bytes(MAX_FILE_SIZE + 1))
    with pytest.raises(ValueError, match="exceeds"):
        encode_framing([(0, None, bytes(40000))], Layout.V1_1)
    with pytest.raises(ValueError, match="65535"):
        encode_framing([(0, None, bytes(70000))], Layout.V1_1)
    with pytest.raises(ValueError, match="Layout"):
        encode_framing([], Layout.AUTO)
    with pytest.raises(ValueError, match="no version"):
        encode_framing([(0, "1.1", b"")], Layout.V1_0)
    for bad in ("1", "0.1", "256.0", "1.x"):
        with pytest.raises(ValueError, match=r"."):
            encode_framing([(0, bad, b"")], Layout.V1_1)
    assert encode_framing([(3, "1.0", b"")], Layout.V1_0) == bytes.fromhex(
        "00010004 00030000".replace(" ", "")
    )
    assert (
        repr(decode_framing(frame((0, b"")))[1][0])
        == "RawObject(object_id=0, version=None, 0 TLV bytes at 4)"
    )


@pytest.mark.fuzz
def test_fuzz_bootstrap_files() -> None:
    legacy = build_bootstrap_file(list(parse_bootstrap_file(ANJAY_FILE)), layout=Layout.V1_0)
    seeds = [ANJAY_FILE, bytes.fromhex(NRF["bootstrap"]), legacy]
    accepted, rejected = fuzz(
        parse_bootstrap_file, BootstrapFileError, seeds, seed=31, max_random=40
    )
    assert accepted + rejected == ITERATIONS
    assert accepted
    assert rejected
