"""Opaque (CF 42): raw bytes of Opaque resources only (LwM2M-TS-Core 1.1 §7.4.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from lwm2m.codec.opaque import OpaqueCodec
from lwm2m.errors import CodecError
from lwm2m.model import Node, Path, ResourceInstance, ResourceType, SingleResource

from .conftest import make_core_model
from .strategies import TEST_MODEL, TEST_OBJECT, single_values

CODEC = OpaqueCodec()
CORE = make_core_model()


@pytest.mark.parametrize(
    ("path", "node"),
    [
        # §7.4.2: firmware packages travel as opaque (/5/0/0 Package)
        ("/5/0/0", SingleResource(0, ResourceType.OPAQUE, b"\x7fELF\x00\xff")),
        ("/5/0/0", SingleResource(0, ResourceType.OPAQUE, b"")),
        ("/3441/0/15/3", ResourceInstance(3, ResourceType.OPAQUE, b"\x01\x02")),
    ],
)
def test_both_ways(path: str, node: Node) -> None:
    at = Path.parse(path)
    data = node.value  # type: ignore[union-attr]
    assert CODEC.encode(node, at, CORE) == data
    assert CODEC.decode(data, at, CORE) == node


def test_decode_accepts_any_bytes_like() -> None:
    node = CODEC.decode(memoryview(b"ab"), Path(5, 0, 0), CORE)  # type: ignore[arg-type]
    assert node == SingleResource(0, ResourceType.OPAQUE, b"ab")


@settings(max_examples=100, deadline=None)
@given(single_values(TEST_OBJECT, types=(ResourceType.OPAQUE,)))
def test_round_trip(path_node: tuple[Path, Node]) -> None:
    path, node = path_node
    assert CODEC.decode(CODEC.encode(node, path, TEST_MODEL), path, TEST_MODEL) == node


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/3/0/0", r"^/3/0/0: opaque format carries only Opaque resources, not String$"),
        ("/5/0", r"^/5/0: opaque carries a single resource value, not the content of a object"),
        ("/3441/0/15", r"^/3441/0/15: opaque cannot carry a multiple-instance resource"),
        ("/5/0/99", r"^/5/0/99: unknown resource 99 in object 5"),
    ],
)
def test_bad_input_messages(path: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CODEC.decode(b"\x00", Path.parse(path), CORE)


def test_encode_refuses_other_types() -> None:
    with pytest.raises(CodecError, match=r"^/3/0/0: opaque format carries only Opaque resources"):
        CODEC.encode(SingleResource(0, ResourceType.STRING, "x"), Path(3, 0, 0), CORE)
