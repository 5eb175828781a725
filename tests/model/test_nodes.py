"""The node tree as frozen values (LwM2M-TS-Core §7.1)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m.errors import ModelError
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    ResourceInstance,
    ResourceType,
    SingleResource,
)

T = ResourceType


def test_single_resource_checks_and_converts() -> None:
    assert SingleResource(1, T.FLOAT, 2).value == 2.0
    assert type(SingleResource(1, T.FLOAT, 2).value) is float
    assert SingleResource(1, T.OPAQUE, bytearray(b"x")).value == b"x"
    with pytest.raises(ModelError, match="bool is not a valid Integer"):
        SingleResource(1, T.INTEGER, True)
    with pytest.raises(ModelError):
        ResourceInstance(0, T.UNSIGNED_INTEGER, -1)


@pytest.mark.parametrize("bad", [-1, 65535, True, 1.0, "1", None])
def test_bad_ids(bad: object) -> None:
    with pytest.raises(ModelError, match="resource id"):
        SingleResource(bad, T.INTEGER, 1)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="resource instance id"):
        ResourceInstance(bad, T.INTEGER, 1)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="resource id"):
        MultipleResource(bad, T.INTEGER)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="object instance id"):
        ObjectInstance(bad)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="object id"):
        ObjectNode(bad)  # type: ignore[arg-type]


def test_multiple_resource_type_mismatch() -> None:
    with pytest.raises(ModelError, match="resource instance 7/1 is String, not Integer"):
        MultipleResource(
            7, T.INTEGER, [ResourceInstance(0, T.INTEGER, 1), ResourceInstance(1, T.STRING, "x")]
        )


def test_multiple_resource_of_and_values() -> None:
    res = MultipleResource.of(6, T.INTEGER, {2: 5, 0: 1})
    assert list(res.instances) == [0, 2]
    assert res.values == {0: 1, 2: 5}
    assert MultipleResource(6, T.INTEGER).values == {}
    assert repr(res) == "MultipleResource(id=6, type=ResourceType.INTEGER, values={0: 1, 2: 5})"
    with pytest.raises(ModelError):
        MultipleResource.of(6, T.INTEGER, {0: "x"})


def test_duplicate_and_misfiled_ids() -> None:
    with pytest.raises(ModelError, match="duplicate resource instance id"):
        MultipleResource(6, T.INTEGER, [ResourceInstance(0, T.INTEGER, 1)] * 2)
    with pytest.raises(ModelError, match="duplicate resource id"):
        ObjectInstance(0, [SingleResource(1, T.INTEGER, 1), SingleResource(1, T.INTEGER, 2)])
    with pytest.raises(ModelError, match="duplicate object instance id"):
        ObjectNode(3, [ObjectInstance(0), ObjectInstance(0)])
    with pytest.raises(ModelError, match="resource stored under id 2 has id 1"):
        ObjectInstance(0, {2: SingleResource(1, T.INTEGER, 1)})


def test_mappings_and_iterables_are_equivalent() -> None:
    r1, r2 = SingleResource(1, T.STRING, "a"), SingleResource(2, T.BOOLEAN, True)
    assert ObjectInstance(0, [r2, r1]) == ObjectInstance(0, {1: r1, 2: r2})


def test_frozen() -> None:
    single = SingleResource(1, T.INTEGER, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        single.value = 2  # type: ignore[misc]
    inst = ObjectInstance(0, [single])
    with pytest.raises(dataclasses.FrozenInstanceError):
        inst.id = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        inst.resources[2] = single  # type: ignore[index]
    multi = MultipleResource.of(6, T.INTEGER, {0: 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        multi.type = T.STRING  # type: ignore[misc]
    with pytest.raises(TypeError):
        multi.instances[1] = ResourceInstance(1, T.INTEGER, 2)  # type: ignore[index]
    node = ObjectNode(3, [inst])
    with pytest.raises(TypeError):
        del node.instances[0]  # type: ignore[attr-defined]


def test_equality_and_hash() -> None:
    a = ObjectNode(3, [ObjectInstance(0, [SingleResource(0, T.STRING, "x")])])
    b = ObjectNode(3, [ObjectInstance(0, [SingleResource(0, T.STRING, "x")])])
    c = ObjectNode(3, [ObjectInstance(0, [SingleResource(0, T.STRING, "y")])])
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert a != ObjectNode(4, a.instances.values())
    # Different node kinds never compare equal, even with equal content.
    assert MultipleResource(1, T.INTEGER) != ObjectInstance(1)
    assert MultipleResource(1, T.INTEGER) != MultipleResource(1, T.STRING)
    assert SingleResource(1, T.INTEGER, 1) != ResourceInstance(1, T.INTEGER, 1)
    assert a.__eq__(1) is NotImplemented


def test_repr() -> None:
    inst = ObjectInstance(0, [SingleResource(1, T.OBJLNK, ObjectLink(3, 0))])
    assert repr(inst).startswith("ObjectInstance(id=0, resources=[SingleResource(id=1")
    assert repr(ObjectNode(3, [ObjectInstance(0)])) == (
        "ObjectNode(id=3, instances=[ObjectInstance(id=0, resources=[])])"
    )


resource_values = st.dictionaries(st.integers(0, 65534), st.integers(-(2**63), 2**63 - 1))


@given(resource_values, st.randoms(use_true_random=False))
def test_equality_independent_of_insertion_order(values: dict[int, int], rnd: object) -> None:
    items = list(values.items())
    shuffled = items[:]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = MultipleResource.of(5, T.INTEGER, dict(items))
    b = MultipleResource.of(5, T.INTEGER, dict(shuffled))
    assert a == b
    assert hash(a) == hash(b)
    assert list(a.instances) == sorted(values)
    inst_a = ObjectInstance(0, [a, SingleResource(1, T.INTEGER, 0)])
    inst_b = ObjectInstance(0, [SingleResource(1, T.INTEGER, 0), b])
    assert inst_a == inst_b
    assert {ObjectNode(9, [inst_a]), ObjectNode(9, [inst_b])} == {ObjectNode(9, [inst_b])}
