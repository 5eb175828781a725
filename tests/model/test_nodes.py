"""The node tree as frozen values (LwM2M-TS-Core §7.1)."""

from __future__ import annotations

import copy
import dataclasses
import pickle

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
from lwm2m.model.nodes import (
    Resource,
    trusted_multiple,
    trusted_object,
    trusted_object_instance,
    trusted_resource_instance,
    trusted_single,
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


# -- trusted construction (for codecs with checked ids and typed values) -------------------------

_ids = st.integers(0, 65534)
_typed_values = st.one_of(
    st.tuples(st.just(T.STRING), st.text(max_size=8)),
    st.tuples(st.just(T.INTEGER), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just(T.UNSIGNED_INTEGER), st.integers(0, 2**64 - 1)),
    st.tuples(st.just(T.FLOAT), st.floats(allow_nan=False)),
    st.tuples(st.just(T.BOOLEAN), st.booleans()),
    st.tuples(st.just(T.OPAQUE), st.binary(max_size=8)),
    st.tuples(st.just(T.TIME), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just(T.OBJLNK), st.builds(ObjectLink, _ids, _ids)),
)


def _same(fast: object, slow: object) -> None:
    assert type(fast) is type(slow)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)


@given(_ids, _typed_values)
def test_trusted_leaves_equal_public_ones(id_: int, typed: tuple[ResourceType, object]) -> None:
    type_, value = typed
    _same(trusted_single(id_, type_, value), SingleResource(id_, type_, value))  # type: ignore[arg-type]
    _same(
        trusted_resource_instance(id_, type_, value),  # type: ignore[arg-type]
        ResourceInstance(id_, type_, value),  # type: ignore[arg-type]
    )
    single = trusted_single(id_, type_, value)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        single.value = value  # type: ignore[misc]
    assert dataclasses.replace(single) == single
    assert copy.deepcopy(single) == single
    assert pickle.loads(pickle.dumps(single)) == single


@given(
    st.dictionaries(_ids, st.integers(-5, 5), max_size=6),
    st.dictionaries(_ids, st.text(max_size=3), max_size=6),
    st.lists(_ids, max_size=4, unique=True),
)
def test_trusted_containers_equal_public_ones(
    multi: dict[int, int], singles: dict[int, str], iids: list[int]
) -> None:
    fast_mr = trusted_multiple(
        7, T.INTEGER, {i: trusted_resource_instance(i, T.INTEGER, v) for i, v in multi.items()}
    )
    slow_mr = MultipleResource.of(7, T.INTEGER, multi)
    _same(fast_mr, slow_mr)
    assert list(fast_mr.instances) == sorted(multi)
    resources: dict[int, Resource] = {
        r: trusted_single(r, T.STRING, v) for r, v in singles.items() if r != 7
    }
    resources[7] = fast_mr
    fast_oi = trusted_object_instance(3, dict(resources))
    slow_oi = ObjectInstance(3, resources.values())
    _same(fast_oi, slow_oi)
    assert list(fast_oi.resources) == sorted(resources)
    ordered = dict(sorted(resources.items()))
    _same(trusted_object_instance(3, ordered, ordered=True), slow_oi)
    fast_on = trusted_object(9, {i: trusted_object_instance(i, {}) for i in iids})
    _same(fast_on, ObjectNode(9, [ObjectInstance(i) for i in iids]))
    assert list(fast_on.instances) == sorted(iids)
    with pytest.raises(TypeError):
        fast_oi.resources[1] = fast_mr  # type: ignore[index]  # still read-only
    for frozen in (fast_mr, fast_oi, fast_on):  # built as builders, genuine frozen nodes now
        with pytest.raises(dataclasses.FrozenInstanceError):
            frozen.id = 1  # type: ignore[misc]


def test_resource_type_hash_is_identity_based() -> None:
    """ResourceType hashes by identity (cheap, C-level); members still work as dict keys and
    survive pickling as the same singletons."""
    table = {t: t.value for t in ResourceType}
    assert table[ResourceType("String")] == "String"
    assert pickle.loads(pickle.dumps(T.FLOAT)) is T.FLOAT
    assert hash(T.FLOAT) == object.__hash__(T.FLOAT)
