"""``lwm2m.codec.node_json``: the value types the end-to-end tests do not reach (Opaque, Objlnk),
and the errors that never echo a value that may be a key."""

from __future__ import annotations

import pytest

from lwm2m.codec.node_json import node_from_json, node_to_json, value_from_json, value_to_json
from lwm2m.errors import CodecError
from lwm2m.model import ObjectLink, Path, ResourceType
from lwm2m.model.registry import default_registry

MODEL = default_registry().view({})


def test_opaque_values_are_hex_both_ways() -> None:
    assert value_to_json(b"\x01\xab") == "01ab"
    assert value_from_json(ResourceType.OPAQUE, "01ab", Path(0, 0, 5)) == b"\x01\xab"


def test_object_links_are_oid_iid_both_ways() -> None:
    link = value_from_json(ResourceType.OBJLNK, "3:0", Path(2, 0, 0))
    assert link == ObjectLink(3, 0)
    assert value_to_json(link) == "3:0"


def test_a_bad_opaque_value_is_not_echoed() -> None:
    with pytest.raises(CodecError) as caught:
        value_from_json(ResourceType.OPAQUE, "5ec2e7zz", Path(0, 0, 5))
    assert "5ec2e7zz" not in str(caught.value)
    assert str(caught.value).startswith("/0/0/5: bad Opaque value:")


def test_an_opaque_resource_in_the_wrong_shape_is_not_echoed() -> None:
    with pytest.raises(CodecError) as caught:
        node_from_json(["5ec2e7a1"], Path(0, 0), MODEL)
    assert "5ec2e7a1" not in str(caught.value)
    assert "got an array" in str(caught.value)


@pytest.mark.parametrize(("data", "shown"), [(None, "null"), (1.5, "a number")])
def test_shapes_are_named_by_json_type(data: object, shown: str) -> None:
    with pytest.raises(CodecError, match=f"got {shown}"):
        node_from_json(data, Path(3, 0), MODEL)


def test_the_root_carries_no_node() -> None:
    with pytest.raises(CodecError, match="the root path carries no node"):
        node_from_json({}, Path(), MODEL)


def test_an_object_round_trips() -> None:
    data = {"0": {"0": "ACME", "11": {"0": 0, "1": 2}}}
    node = node_from_json(data, Path(3), MODEL)
    assert node_to_json(node) == data
