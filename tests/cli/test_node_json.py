"""``lwm2m.cli.node_json``: nodes as plain JSON and back, typed by the object model, for every
node level and value type, and the errors for JSON that does not fit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lwm2m.codec.node_json import node_from_json, node_to_json, value_from_json, value_to_json
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import default_registry

MODEL = default_registry()
T = ResourceType


@pytest.mark.parametrize(
    ("path", "data", "type_", "value"),
    [
        ("/3/0/0", "ACME", T.STRING, "ACME"),
        ("/3/0/9", -5, T.INTEGER, -5),
        ("/1/0/13", 2**64 - 1, T.UNSIGNED_INTEGER, 2**64 - 1),
        ("/6/0/0", 48.8584, T.FLOAT, 48.8584),
        ("/1/0/6", False, T.BOOLEAN, False),
        ("/0/1/5", "00ff10", T.OPAQUE, b"\x00\xff\x10"),
        ("/0/1/5", "", T.OPAQUE, b""),
        ("/3/0/13", 1_700_000_000, T.TIME, 1_700_000_000),
        ("/3/0/4", None, T.NONE, None),
    ],
)
def test_single_resources_of_every_type_round_trip(
    path: str, data: Any, type_: ResourceType, value: Any
) -> None:
    at = Path.parse(path)
    node = node_from_json(data, at, MODEL)
    assert node == SingleResource(at.ids[2], type_, value)
    assert node_to_json(node) == data
    assert json.loads(json.dumps(node_to_json(node))) == data  # plain JSON


def test_a_float_resource_takes_an_integer() -> None:
    node = node_from_json(1, Path(6, 0, 0), MODEL)
    assert node == SingleResource(0, T.FLOAT, 1.0)
    assert isinstance(node_to_json(node), float)


def test_objlnk_values_are_oid_colon_iid() -> None:
    node = node_from_json({"0": "3:0", "1": "65535:65535"}, Path(3, 0, 22), MODEL)
    assert node == MultipleResource.of(
        22, T.OBJLNK, {0: ObjectLink(3, 0), 1: ObjectLink(65535, 65535)}
    )
    assert node_to_json(node) == {"0": "3:0", "1": "65535:65535"}
    assert value_to_json(ObjectLink(21, 4)) == "21:4"
    assert value_from_json(T.OBJLNK, "21:4", Path(3, 0, 22, 0)) == ObjectLink(21, 4)


def test_every_level_round_trips() -> None:
    instance = {"0": "ACME", "6": {"0": 1, "1": 5}, "9": 80, "13": 0}
    cases: list[tuple[Path, Any, type]] = [
        (Path(3, 0, 6, 1), 5, ResourceInstance),
        (Path(3, 0, 6), {"0": 1, "1": 5}, MultipleResource),
        (Path(3, 0, 6), {}, MultipleResource),
        (Path(3, 0), instance, ObjectInstance),
        (Path(3, 0), {}, ObjectInstance),
        (Path(3), {"0": instance, "1": {}}, ObjectNode),
        (Path(3), {}, ObjectNode),
    ]
    for path, data, kind in cases:
        node = node_from_json(data, path, MODEL)
        assert type(node) is kind, path
        assert node_to_json(node) == data, path
        assert node_from_json(node_to_json(node), path, MODEL) == node, path


def test_levels_are_typed_by_the_model() -> None:
    node = node_from_json({"0": {"5": "0a0b", "0": "coap://h"}}, Path(0), MODEL)
    assert isinstance(node, ObjectNode)
    (instance,) = node.instances.values()
    assert instance.resources[5] == SingleResource(5, T.OPAQUE, b"\n\x0b")
    assert instance.resources[0] == SingleResource(0, T.STRING, "coap://h")


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        # values of the wrong JSON type: the message names the path, type and value
        ("/3/0/9", "80", "/3/0/9: bad Integer value '80'"),
        ("/3/0/9", True, "/3/0/9: bad Integer value True"),
        ("/3/0/9", 1.0, "/3/0/9: bad Integer value 1.0"),
        ("/3/0/9", 2**70, "does not fit in 64 signed bits"),
        ("/1/0/13", -1, "/1/0/13: bad Unsigned Integer value -1"),
        ("/1/0/6", 1, "/1/0/6: bad Boolean value 1"),
        ("/3/0/13", 1.5, "/3/0/13: bad Time value 1.5"),
        ("/3/0/0", 5, "/3/0/0: bad String value 5"),
        ("/6/0/0", "NaN", "/6/0/0: bad Float value 'NaN'"),
        ("/3/0/22/0", "3-0", "/3/0/22/0: bad Objlnk value '3-0'"),
        ("/3/0/22/0", "70000:0", "objlnk id 70000 is not in 0..65535"),
        ("/3/0/22/0", 3, "/3/0/22/0: bad Objlnk value 3"),
        ("/3/0/4", "", "/3/0/4: bad none value ''"),
        # shapes
        ("/3/0/6", [1, 5], "/3/0/6: expected a JSON object keyed by ids, got an array"),
        ("/3/0", "ACME", "/3/0: expected a JSON object keyed by ids, got a string"),
        ("/3", {"0": 5}, "/3/0: expected a JSON object keyed by ids, got a number"),
        ("/3/0", {"x": 1}, "/3/0: key 'x' is not an id"),
        ("/3/0", {"-1": 1}, "/3/0: key '-1' is not an id"),
        ("/3/0", {"65536": 1}, "/3/0: key '65536' is not an id"),
        ("/3/0", {"": 1}, "/3/0: key '' is not an id"),
        ("/3/0/6", {"a": 1}, "/3/0/6: key 'a' is not an id"),
        ("/3/0/9/0", 5, "/3/0/9/0: resource instance of a single-instance resource"),
        ("/", {}, "/: the root path carries no node"),
        # the model
        ("/4242/0/0", 1, "/4242/0/0: unknown object 4242"),
        ("/3/0", {"999": 1}, "/3/0/999"),
    ],
)
def test_json_that_does_not_fit_is_a_specific_error(path: str, data: Any, message: str) -> None:
    with pytest.raises(CodecError) as error:
        node_from_json(data, Path.parse(path), MODEL)
    assert message in str(error.value)


@pytest.mark.parametrize("data", ["zz-5ec2e7", 12345, "0"])
def test_a_bad_opaque_value_is_never_echoed(data: Any) -> None:
    """Opaque resources hold keys (/0/x/5): the error names the path, not the value."""
    with pytest.raises(CodecError) as error:
        node_from_json({"5": data}, Path(0, 1), MODEL)
    text = str(error.value)
    assert text.startswith("/0/1/5: bad Opaque value: ")
    assert repr(data) not in text


@pytest.mark.parametrize(("path", "data"), [("/3/0", {"9/1": 80}), ("/3", {"1/9": {"9": 80}})])
def test_a_key_with_a_slash_is_not_an_id(path: str, data: dict[str, Any]) -> None:
    with pytest.raises(CodecError, match="is not an id"):
        node_from_json(data, Path.parse(path), MODEL)
