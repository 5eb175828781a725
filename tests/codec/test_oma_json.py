"""OMA JSON (CF 11543): TS/Leshan examples both ways, names and times, round trips, bad input.

The TS examples (LwM2M-TS-Core 1.1 §7.4.4) live in tests/vectors/oma_json/*.json.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.oma_json import OmaJsonCodec
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectDefinition,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Operations,
    Path,
    ResourceDefinition,
    ResourceInstance,
    ResourceType,
    SingleResource,
)

from .conftest import make_core_model
from .strategies import (
    TEST_MODEL,
    TEST_OBJECT,
    load_vectors,
    node_from_content,
    paths_and_nodes,
)

CODEC = OmaJsonCodec()
CORE = make_core_model()
# The object Leshan's JSON time examples use: 0 String, 1 Float.
CORE.add(
    ObjectDefinition(
        1024,
        "temperature history",
        resources={
            0: ResourceDefinition(0, "label", Operations.R, False, False, ResourceType.STRING),
            1: ResourceDefinition(1, "value", Operations.R, False, False, ResourceType.FLOAT),
        },
    )
)
VECTORS = load_vectors("oma_json")


def _decode(text: str, path: str) -> Node:
    return CODEC.decode(text.encode(), Path.parse(path), CORE)


def _float(rid: int, value: float) -> SingleResource:
    return SingleResource(rid, ResourceType.FLOAT, value)


# -- TS examples, both directions -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "vector"), VECTORS, ids=[n for n, _ in VECTORS])
def test_ts_example_both_ways(name: str, vector: dict[str, Any]) -> None:
    path = Path.parse(vector["path"])
    node = node_from_content(path, vector["content"], CORE)
    assert CODEC.encode(node, path, CORE).decode() == vector["json"]
    assert CODEC.decode(vector["json"].encode(), path, CORE) == node
    for variant in vector.get("also_decodes", []):
        assert _decode(variant["json"], variant["path"]) == node, variant["why"]


def test_vectors_cite_their_section() -> None:
    assert len(VECTORS) >= 4
    for name, vector in VECTORS:
        assert vector["section"].startswith("LwM2M-TS-Core 1.1 §7.4.4"), name


@pytest.mark.parametrize(
    ("path", "node", "text"),
    [
        (
            "/3/0/0",
            SingleResource(0, ResourceType.STRING, "Open Mobile Alliance"),
            '{"bn":"/3/0/0","e":[{"sv":"Open Mobile Alliance"}]}',
        ),
        (
            "/3/0/6",
            MultipleResource.of(6, ResourceType.INTEGER, {0: 1, 1: 5}),
            '{"bn":"/3/0/6/","e":[{"n":"0","v":1},{"n":"1","v":5}]}',
        ),
        ("/3/0/6", MultipleResource(6, ResourceType.INTEGER), '{"bn":"/3/0/6/","e":[]}'),
        (
            "/3/0/6/1",
            ResourceInstance(1, ResourceType.INTEGER, 5),
            '{"bn":"/3/0/6/1","e":[{"v":5}]}',
        ),
        (
            "/5/0/0",
            SingleResource(0, ResourceType.OPAQUE, b"\x01\x02\x03\x04\x05"),
            '{"bn":"/5/0/0","e":[{"sv":"AQIDBAU="}]}',
        ),
        (
            "/1/0/10",
            SingleResource(10, ResourceType.OBJLNK, ObjectLink(11, 0)),
            '{"bn":"/1/0/10","e":[{"ov":"11:0"}]}',
        ),
        (
            "/1/0/11",
            SingleResource(11, ResourceType.UNSIGNED_INTEGER, 2**64 - 1),
            '{"bn":"/1/0/11","e":[{"v":18446744073709551615}]}',
        ),
        ("/1024/0/1", _float(1, 23.0), '{"bn":"/1024/0/1","e":[{"v":23.0}]}'),
        (
            "/1024/0/0",
            SingleResource(0, ResourceType.STRING, 'é"'),
            '{"bn":"/1024/0/0","e":[{"sv":"é\\""}]}',
        ),
        ("/2", ObjectNode(2), '{"bn":"/2/","e":[]}'),
    ],
)
def test_node_kinds_both_ways(path: str, node: Node, text: str) -> None:
    at = Path.parse(path)
    assert CODEC.encode(node, at, CORE).decode() == text
    assert CODEC.decode(text.encode(), at, CORE) == node


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    [
        # Leshan json_cut_basename_name_in_the_middle_of_an_id: bn + n is plain concatenation
        (
            '{"bn":"3/0/1","e":[{"n":"1/0","v":0},{"n":"1/1","v":0}]}',
            "/3/0/11",
            MultipleResource.of(11, ResourceType.INTEGER, {0: 0, 1: 0}),
        ),
        # Leshan json_empty_* : an empty entry list is an empty container
        ('{"e":[]}', "/2", ObjectNode(2)),
        ('{"bn":"2", "e":[]}', "/2", ObjectNode(2)),
        ('{"bn":"2/0", "e":[]}', "/2/0", ObjectInstance(0)),
        ('{"bn":"3/0/6", "e":[]}', "/3/0/6", MultipleResource(6, ResourceType.INTEGER)),
        # Leshan json_custom_object_instance: v for Float, bv for Boolean
        (
            '{"bn":"/1024/0/","e":[{"n":"1","v":10.5}]}',
            "/1024/0",
            ObjectInstance(0, [_float(1, 10.5)]),
        ),
        ('{"e":[{"v":10}]}', "/1024/0/1", _float(1, 10.0)),  # an integer JSON number for Float
        # a Time written as a float without fraction (Leshan senml exponential notation)
        ('{"e":[{"v":1.638435E9}]}', "/3/0/13", SingleResource(13, ResourceType.TIME, 1638435000)),
        # Leshan json_device_object_instance0_without_basename: absolute names, no bn
        (
            '{"e":[{"n":"/3/0/9","v":100},{"n":"/3/0/6/0","v":1}]}',
            "/3/0",
            ObjectInstance(
                0,
                [
                    SingleResource(9, ResourceType.INTEGER, 100),
                    MultipleResource.of(6, ResourceType.INTEGER, {0: 1}),
                ],
            ),
        ),
        # unknown top-level and entry keys are ignored
        ('{"x":1,"e":[{"v":1,"y":2}]}', "/3/0/9", SingleResource(9, ResourceType.INTEGER, 1)),
    ],
)
def test_decode_forms(text: str, path: str, expected: Node) -> None:
    assert _decode(text, path) == expected


# -- time: bt/t (the TS's historical-notification example) ----------------------------------------

# LwM2M-TS-Core 1.1 §7.4.4 example of a notification with historical values (Leshan
# json_timestamped_resources): t is relative to bt.
HISTORY = (
    '{"bn":"/1024/0/1","e":[{"v":22.9,"t":-30},{"v":22.4,"t":-5},{"v":24.1,"t":-50}],"bt":25462634}'
)


def test_timestamped_decode() -> None:
    groups = CODEC.decode_timestamped(HISTORY.encode(), Path(1024, 0, 1), CORE)
    at = Path(1024, 0, 1)
    assert groups == [
        TimestampedNodes(25462634 - 5, {at: _float(1, 22.4)}),
        TimestampedNodes(25462634 - 30, {at: _float(1, 22.9)}),
        TimestampedNodes(25462634 - 50, {at: _float(1, 24.1)}),
    ]


def test_plain_decode_keeps_the_most_recent_value() -> None:
    assert _decode(HISTORY, "/1024/0/1") == _float(1, 22.4)
    text = '{"bn":"/1024/0/","e":[{"n":"1","v":1.5,"t":-5},{"n":"1","v":2.5,"t":-1}]}'
    assert _decode(text, "/1024/0") == ObjectInstance(0, [_float(1, 2.5)])


def test_timestamped_instances_and_bt_alone() -> None:
    # Leshan json_timestamped_instances, and a bt without t applying to every entry
    text = (
        '{"bn":"/1024/0/","e":[{"n":"1","v":22.9,"t":-30},{"n":"1","v":22.4,"t":-5},'
        '{"n":"0","sv":"a string","t":-5},{"n":"1","v":24.1,"t":-50}],"bt":25462634}'
    )
    groups = CODEC.decode_timestamped(text.encode(), Path(1024, 0), CORE)
    assert [g.timestamp for g in groups] == [25462629, 25462604, 25462584]
    first = groups[0].nodes[Path(1024, 0)]
    assert first == ObjectInstance(
        0, [SingleResource(0, ResourceType.STRING, "a string"), _float(1, 22.4)]
    )
    only_bt = '{"bt":100,"e":[{"v":1.0}]}'
    assert CODEC.decode_timestamped(only_bt.encode(), Path(1024, 0, 1), CORE) == [
        TimestampedNodes(100, {Path(1024, 0, 1): _float(1, 1.0)})
    ]
    untimed = '{"e":[{"n":"1","v":1.0,"t":5},{"n":"0","sv":"x"}]}'
    groups = CODEC.decode_timestamped(untimed.encode(), Path(1024, 0), CORE)
    assert [g.timestamp for g in groups] == [5, None]


@pytest.mark.parametrize(
    ("path", "groups", "text"),
    [
        # Leshan json_encode_timestamped_resources
        (
            "/1024/0/1",
            [(500, _float(1, 22.9)), (510, _float(1, 22.4)), (520, _float(1, 24.1))],
            '{"bn":"/1024/0/1","e":[{"v":22.9,"t":500},{"v":22.4,"t":510},{"v":24.1,"t":520}]}',
        ),
        # Leshan json_encode_timestamped_instances
        (
            "/1024/0",
            [
                (110, ObjectInstance(0, [_float(1, 22.9)])),
                (
                    120,
                    ObjectInstance(
                        0, [_float(1, 22.4), SingleResource(0, ResourceType.STRING, "a string")]
                    ),
                ),
                (130, ObjectInstance(0, [_float(1, 24.1)])),
            ],
            '{"bn":"/1024/0/","e":[{"n":"1","v":22.9,"t":110},{"n":"0","sv":"a string","t":120},'
            '{"n":"1","v":22.4,"t":120},{"n":"1","v":24.1,"t":130}]}',
        ),
        # Leshan json_encode_timestamped_Object
        (
            "/1024",
            [
                (210, ObjectNode(1024, [ObjectInstance(0, [_float(1, 22.9)])])),
                (
                    220,
                    ObjectNode(
                        1024,
                        [
                            ObjectInstance(
                                0,
                                [
                                    _float(1, 22.4),
                                    SingleResource(0, ResourceType.STRING, "a string"),
                                ],
                            ),
                            ObjectInstance(1, [_float(1, 23.0)]),
                        ],
                    ),
                ),
                (230, ObjectNode(1024, [ObjectInstance(0, [_float(1, 24.1)])])),
            ],
            '{"bn":"/1024/","e":[{"n":"0/1","v":22.9,"t":210},{"n":"0/0","sv":"a string","t":220},'
            '{"n":"0/1","v":22.4,"t":220},{"n":"1/1","v":23.0,"t":220},{"n":"0/1","v":24.1,"t":230}]}',
        ),
        # a fractional timestamp and an untimed group
        (
            "/1024/0/1",
            [(0.5, _float(1, 1.0)), (None, _float(1, 2.0))],
            '{"bn":"/1024/0/1","e":[{"v":1.0,"t":0.5},{"v":2.0}]}',
        ),
    ],
)
def test_timestamped_encode(path: str, groups: list[tuple[float | None, Node]], text: str) -> None:
    at = Path.parse(path)
    encoded = CODEC.encode_timestamped([TimestampedNodes(t, {at: n}) for t, n in groups], at, CORE)
    assert encoded.decode() == text
    decoded = CODEC.decode_timestamped(encoded, at, CORE)
    expected = sorted(groups, key=lambda g: (g[0] is None, -(g[0] or 0)))
    assert [(g.timestamp, g.nodes[at]) for g in decoded] == expected


def test_timestamped_encode_errors() -> None:
    at = Path(1024, 0, 1)
    other = TimestampedNodes(1, {Path(1024, 0, 0): SingleResource(0, ResourceType.STRING, "x")})
    with pytest.raises(CodecError, match=r"^/1024/0/1: each timestamped group must hold exactly"):
        CODEC.encode_timestamped([other], at, CORE)
    infinite = TimestampedNodes(float("inf"), {at: _float(1, 1.0)})
    with pytest.raises(CodecError, match=r"^/1024/0/1: timestamp inf is not a finite number"):
        CODEC.encode_timestamped([infinite], at, CORE)
    assert CODEC.encode_timestamped([], at, CORE) == b'{"bn":"/1024/0/1","e":[]}'


# -- round trips ----------------------------------------------------------------------------------


def _prune(node: Node) -> Node:
    """What survives a flat format: multiple resources without instances inside an object
    instance vanish, and so do object instances left without resources."""

    def instance(inst: ObjectInstance) -> ObjectInstance:
        kept = [
            r
            for r in inst.resources.values()
            if not (isinstance(r, MultipleResource) and not r.instances)
        ]
        return ObjectInstance(inst.id, kept)

    if isinstance(node, ObjectNode):
        instances = [instance(i) for i in node.instances.values()]
        return ObjectNode(node.id, [i for i in instances if i.resources])
    if isinstance(node, ObjectInstance):
        return instance(node)
    return node


@settings(max_examples=300, deadline=None)
@given(paths_and_nodes(TEST_OBJECT))
def test_round_trip_every_node_kind(path_node: tuple[Path, Node]) -> None:
    path, node = path_node
    data = CODEC.encode(node, path, TEST_MODEL)
    json.loads(data)  # always valid JSON
    assert CODEC.decode(data, path, TEST_MODEL) == _prune(node)


@settings(max_examples=100, deadline=None)
@given(
    paths_and_nodes(TEST_OBJECT, levels=(3, 4)),
    st.lists(st.integers(0, 2**40) | st.floats(0, 1e9), min_size=1, max_size=4, unique=True),
)
def test_round_trip_timestamped(path_node: tuple[Path, Node], times: list[float]) -> None:
    path, node = path_node
    assume(not (isinstance(node, MultipleResource) and not node.instances))  # no entry to time
    groups = [TimestampedNodes(t, {path: node}) for t in times]
    decoded = CODEC.decode_timestamped(
        CODEC.encode_timestamped(groups, path, TEST_MODEL), path, TEST_MODEL
    )
    assert decoded == sorted(groups, key=lambda g: -(g.timestamp or 0))


# -- bad input: CodecError names the path and the problem -----------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("{", "/3/0", r"^/3/0: invalid JSON: Expecting property name"),
        ('{"e":[{"v":NaN}]}', "/3/0/9", r"^/3/0/9: invalid JSON: NaN is not JSON$"),
        ('{"e":[],"e":[]}', "/3/0", r"^/3/0: invalid JSON: duplicate key 'e'$"),
        ('{"e":[{"v":' + "9" * 5000 + "}]}", "/3/0/9", r"^/3/0/9: invalid JSON: Exceeds"),
        ("[" * 100_000 + "]" * 100_000, "/3/0", r"^/3/0: invalid JSON"),
        ("[]", "/3/0", r"^/3/0: OMA JSON payload must be a JSON object$"),
        ("{}", "/2", r"^/2: OMA JSON payload needs an 'e' array$"),
        ('{"bn":3,"e":[]}', "/2", r"^/2: 'bn' must be a string$"),
        ('{"bt":"x","e":[]}', "/2", r"^/2: 'bt' must be a number$"),
        ('{"bt":1e400,"e":[]}', "/2", r"^/2: 'bt' is out of range$"),
        ('{"e":[1]}', "/2", r"^/2: each entry of 'e' must be a JSON object$"),
        ('{"e":[{"n":1,"v":1}]}', "/3/0", r"^/3/0: 'n' must be a string$"),
        ('{"e":[{"n":"9"}]}', "/3/0", r"^/3/0/9: an entry needs exactly one of 'v', 'sv', 'bv'"),
        ('{"e":[{"n":"9","v":1,"sv":"1"}]}', "/3/0", r"^/3/0/9: an entry needs exactly one"),
        ('{"e":[{"n":"9","v":1,"t":"x"}]}', "/3/0", r"^/3/0/9: 't' must be a number$"),
        ('{"e":[{"n":"x","v":1}]}', "/3/0", r"^/3/0: entry name '/3/0/x' is not an LwM2M path"),
        ('{"bn":"/3/0/","e":[{"n":"9/0/0/0","v":1}]}', "/3/0", r"^/3/0: entry name '/3/0/9/0/0/0'"),
        ('{"bn":"/3/","e":[{"n":"65535/9","v":1}]}', "/3", r"^/3: entry name '/3/65535/9' is not"),
        ('{"bn":"/","e":[{"n":"3/0","v":1}]}', "/3", r"^/3/0: a value must be at a resource or"),
        (
            '{"bn":"/","e":[{"n":"4/0/0","v":1}]}',
            "/3",
            r"^/4/0/0: lies outside the request path /3$",
        ),
        ('{"e":[{"v":1}]}', "/", r"^/: the root path carries no node in OMA JSON$"),
        ('{"e":[{"n":"99","v":1}]}', "/3/0", r"^/3/0/99: unknown resource 99 in object 3"),
        ('{"e":[{"n":"4","v":1}]}', "/3/0", r"^/3/0/4: an executable resource carries no value$"),
        (
            '{"e":[{"n":"9","sv":"1"}]}',
            "/3/0",
            r"^/3/0/9: wrong type for resource: 'sv' given, a "
            r"Integer needs 'v'$",
        ),
        ('{"e":[{"n":"9","v":true}]}', "/3/0", r"^/3/0/9: wrong type for resource: 'v' given"),
        ('{"e":[{"n":"9","v":1.5}]}', "/3/0", r"^/3/0/9: Integer value 1.5 has a fraction$"),
        ('{"e":[{"n":"9","v":1e400}]}', "/3/0", r"^/3/0/9: 'v' is out of range$"),
        ('{"e":[{"n":"9","v":9223372036854775808}]}', "/3/0", r"^/3/0/9: wrong type for resource"),
        (
            '{"e":[{"n":"0","v":1}]}',
            "/3/0",
            r"^/3/0/0: wrong type for resource: 'v' given, a "
            r"String needs 'sv'$",
        ),
        (
            '{"e":[{"n":"6","v":1}]}',
            "/1/0",
            r"^/1/0/6: wrong type for resource: 'v' given, a "
            r"Boolean needs 'bv'$",
        ),
        (
            '{"e":[{"n":"10","sv":"1:1"}]}',
            "/1/0",
            r"^/1/0/10: wrong type for resource: 'sv' given, "
            r"a Objlnk needs 'ov'$",
        ),
        ('{"e":[{"sv":"\\ud800"}]}', "/3/0/0", r"^/3/0/0: String value is not valid Unicode"),
        ('{"e":[{"n":"10","ov":"x"}]}', "/1/0", r"^/1/0/10: invalid Objlnk value: objlnk 'x'"),
        (
            '{"e":[{"sv":"AQIDBAU"}]}',
            "/5/0/0",
            r"^/5/0/0: invalid Opaque value: not standard base64",
        ),
        ('{"e":[{"sv":"é"}]}', "/5/0/0", r"^/5/0/0: invalid Opaque value"),
        ('{"e":[{"n":"1","v":1.5}]}', "/1024/0/1", r"^/1024/0/1/1: resource instance of a single"),
        ('{"e":[]}', "/3/0/9", r"^/3/0/9: no value for the resource$"),
        # Leshan json_invalid_instance_2_resources_with_the_same_id and the multi-instance one
        (
            '{"bn":"3/0/","e":[{"n":"1","sv":"a"},{"n":"1","sv":"b"}]}',
            "/3/0",
            r"^/3/0/1: duplicate value for the same path$",
        ),
        (
            '{"bn":"3/0/11/","e":[{"n":"1","v":2},{"n":"1","v":0}]}',
            "/3/0/11",
            r"^/3/0/11/1: duplicate value for the same path$",
        ),
        ('{"e":[{"v":2,"t":1},{"v":0,"t":1}]}', "/3/0/9", r"^/3/0/9: duplicate value"),
        ('{"e":[{"v":2,"t":1},{"v":0}]}', "/3/0/9", r"^/3/0/9: duplicate value"),
    ],
)
def test_bad_input_messages(text: str, path: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        _decode(text, path)


def test_bad_utf8() -> None:
    with pytest.raises(CodecError, match=r"^/3/0: OMA JSON is not valid UTF-8 \(byte 2\)$"):
        CODEC.decode(b'{"\xff', Path(3, 0), CORE)


@pytest.mark.parametrize(
    ("node", "path", "message"),
    [
        (
            _float(1, float("inf")),
            "/1024/0/1",
            r"^/1024/0/1: OMA JSON cannot carry the Float value",
        ),
        (SingleResource(0, ResourceType.STRING, "\ud800"), "/1024/0/0", "lone surrogate"),
        (SingleResource(4, ResourceType.NONE, None), "/3/0/4", r"^/3/0/4: an executable resource"),
        (SingleResource(0, ResourceType.INTEGER, 1), "/3/0/0", r"^/3/0/0: wrong type for resource"),
        (ObjectInstance(0), "/3", r"^/3: a ObjectInstance cannot be the content of a OBJECT path"),
    ],
)
def test_encode_errors(node: Node, path: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CODEC.encode(node, Path.parse(path), CORE)
