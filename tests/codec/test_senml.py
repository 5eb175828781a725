"""The shared SenML layer (lwm2m.codec.senml): RFC 8428 resolution, base64url, the fast path,
node construction and the leaf tree."""

from __future__ import annotations

import copy
import doctest
import importlib
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec import senml
from lwm2m.codec.senml import (
    CBOR_LABELS,
    JSON_LABELS,
    LeafTree,
    Resolved,
    b64url_decode,
    b64url_encode,
    cbor_item_to_value,
    check_disjoint,
    group_nodes,
    resolve,
)
from lwm2m.codec.senml_cbor import SenmlCborCodec
from lwm2m.codec.senml_json import SenmlJsonCodec
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectNode,
    Path,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import default_registry

from .senml_strategies import SENML_MODEL, senml_paths_and_nodes

RT = ResourceType
MODEL = SENML_MODEL


@pytest.mark.parametrize(
    "name",
    [
        "lwm2m.codec.senml",
        "lwm2m.codec.senml_json",
        "lwm2m.codec.senml_cbor",
        "lwm2m.codec.lwm2m_cbor",
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


# -- RFC 8428 resolution (§4.5, §4.6) ------------------------------------------------------------

#: RFC 8428 §5.1.2 "Multiple Data Points" (voltage and current), as JSON.
RFC8428_5_1_2 = [
    {"bn": "urn:dev:ow:10e2073a0108006:", "bt": 1.276020076001e09, "bu": "A", "bver": 5,
     "n": "voltage", "u": "V", "v": 120.1},
    {"n": "current", "t": -5, "v": 1.2},
    {"n": "current", "t": -4, "v": 1.3},
    {"n": "current", "t": -3, "v": 1.4},
    {"n": "current", "t": -2, "v": 1.5},
    {"n": "current", "t": -1, "v": 1.6},
    {"n": "current", "v": 1.7},
]  # fmt: skip

#: RFC 8428 §6: the CBOR representation of the §5.1.2 example, byte for byte (half float 1.5).
RFC8428_6_HEX = (
    "87a721781b75726e3a6465763a6f773a3130653230373361303130383030363a22fb41d303a15b001062"
    "23614120050067766f6c7461676501615602fb405e066666666666a3006763757272656e74062402fb3f"
    "f3333333333333a3006763757272656e74062302fb3ff4cccccccccccda3006763757272656e74062202"
    "fb3ff6666666666666a3006763757272656e74062102f93e00a3006763757272656e74062002fb3ff999"
    "999999999aa3006763757272656e74060002fb3ffb333333333333"
)


def _expected_5_1_2() -> list[Resolved]:
    base = 1.276020076001e09
    name = "urn:dev:ow:10e2073a0108006:"
    out = [Resolved(name + "voltage", base, "v", 120.1)]
    for t, v in zip(range(-5, 1), (1.2, 1.3, 1.4, 1.5, 1.6, 1.7), strict=True):
        out.append(Resolved(name + "current", base + t, "v", v))
    return out


def test_rfc8428_5_1_2_json_resolution() -> None:
    """RFC 8428 §5.1.2 example resolved per §4.6 (names bn+n, times bt+t, units ignored)."""
    assert resolve(RFC8428_5_1_2, JSON_LABELS) == _expected_5_1_2()


def test_rfc8428_6_cbor_resolution() -> None:
    """RFC 8428 §6 CBOR bytes decode to the same resolved records as the §5.1.2 JSON."""
    pack = SenmlCborCodec().decode_pack(bytes.fromhex(RFC8428_6_HEX))
    assert resolve(pack, CBOR_LABELS) == _expected_5_1_2()
    json_pack = SenmlJsonCodec().decode_pack(SenmlJsonCodec().encode_pack(RFC8428_5_1_2))
    assert resolve(json_pack, JSON_LABELS) == _expected_5_1_2()


def test_rfc8428_5_1_3_base_time_persists() -> None:
    """RFC 8428 §5.1.3 (humidity with positions): bt applies to every later record."""
    pack = [
        {"bn": "urn:dev:ow:10e2073a01080063", "bt": 1.320067464e09, "bu": "%RH", "v": 20},
        {"u": "lon", "v": 24.30621},
        {"u": "lat", "v": 60.07965},
        {"t": 60, "v": 20.3},
    ]
    times = [r.time for r in resolve(pack, JSON_LABELS)]
    assert times == [1.320067464e09] * 3 + [1.320067464e09 + 60]
    assert {r.name for r in resolve(pack, JSON_LABELS)} == {"urn:dev:ow:10e2073a01080063"}


def test_resolve_errors() -> None:
    with pytest.raises(CodecError, match="record #1: more than one value"):
        resolve([{"n": "a", "v": 1}, {"n": "b", "v": 1, "vb": True}], JSON_LABELS)
    with pytest.raises(CodecError, match="array of records"):
        resolve({"n": "a"}, JSON_LABELS)
    assert resolve([{"n": "a", "s": 5}], JSON_LABELS) == [Resolved("a", 0, None, None)]


# -- base64url -----------------------------------------------------------------------------------


@given(st.binary(max_size=40))
def test_b64url_round_trip(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text
    assert "+" not in text
    assert "/" not in text
    assert b64url_decode(text) == data


@pytest.mark.parametrize("text", ["q83v=", "=q83v", "q8=3v", "a", "abcde", "ab cd", "ab*d", "a=="])
def test_b64url_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="base64"):
        b64url_decode(text)


# -- values --------------------------------------------------------------------------------------


def test_cbor_item_to_value() -> None:
    assert cbor_item_to_value(RT.OBJLNK, "3:0").object_id == 3  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="executable"):
        cbor_item_to_value(RT.NONE, 1)
    with pytest.raises(ValueError, match="not a text string"):
        cbor_item_to_value(RT.STRING, 1)
    with pytest.raises(ValueError, match="without time zone"):
        cbor_item_to_value(RT.TIME, datetime(2020, 1, 1))


# -- the fast path agrees with the general path --------------------------------------------------

_MUTATIONS = ("drop_bn", "swap_names", "retype", "add_time", "dup", "wrong_iid", "bad_name", "list")


@st.composite
def mutated_packs(draw: st.DrawFn) -> tuple[Path, list[Any], bool]:
    path, node = draw(senml_paths_and_nodes())
    cbor = draw(st.booleans())
    codec = SenmlCborCodec() if cbor else SenmlJsonCodec()
    pack: list[Any] = codec.decode_pack(codec.encode(node, path, MODEL))  # type: ignore[assignment]
    labels = codec.labels
    for _ in range(draw(st.integers(0, 2))):
        if not pack:
            break
        i = draw(st.integers(0, len(pack) - 1))
        if not isinstance(pack[i], dict):
            continue
        record = dict(pack[i])
        match draw(st.sampled_from(_MUTATIONS)):
            case "drop_bn":
                record.pop(labels.bn, None)
            case "swap_names":
                j = draw(st.integers(0, len(pack) - 1))
                other = pack[j]
                record[labels.n] = other.get(labels.n, "0") if isinstance(other, dict) else "0"
            case "retype":
                key = next(k for k in record if k not in (labels.bn, labels.n))
                record[key] = draw(st.sampled_from([1, 1.5, "x", True, b"x", None, 2**70]))
            case "add_time":
                record[labels.t] = draw(st.integers(-5, 5))
            case "dup":
                pack.insert(i, copy.deepcopy(record))
            case "wrong_iid":
                record[labels.bn] = draw(
                    st.sampled_from(["/3441/7/", "/3441/", "3441/0/", "/1/0/"])
                )
            case "bad_name":
                record[labels.n] = draw(st.sampled_from(["", "0/", "00", "1/2/3", "/0", "65535"]))
            case "list":
                pack[i] = [record]
                continue
        pack[i] = record
    return path, pack, cbor


@settings(max_examples=120, deadline=None)
@given(mutated_packs())
def test_fast_path_agrees_with_general_path(case: tuple[Path, list[Any], bool]) -> None:
    path, pack, cbor = case
    codec = SenmlCborCodec() if cbor else SenmlJsonCodec()
    try:
        general: Any = codec._decode_general(pack, path, MODEL)
    except CodecError as exc:
        general = exc
    try:
        fast = senml._fast_decode(pack, path, MODEL, codec.labels)
    except senml._Fallback:
        return
    assert not isinstance(general, CodecError), f"fast path accepted what fails: {general}"
    assert fast == general


def test_fast_path_is_taken_for_usual_payloads() -> None:
    codec = SenmlCborCodec()
    node = ObjectNode(
        3,
        [
            ObjectInstance(
                0, [SingleResource(9, RT.INTEGER, 5), MultipleResource.of(7, RT.INTEGER, {0: 1})]
            )
        ],
    )
    pack = codec.decode_pack(codec.encode(node, Path(3), MODEL))
    assert senml._fast_decode(pack, Path(3), MODEL, codec.labels) == node
    assert senml._fast_decode(pack, Path(3, 0), MODEL, codec.labels) == node.instances[0]
    for bad_path in (Path(9999), Path(3, 0, 9)):
        with pytest.raises(senml._Fallback):
            senml._fast_decode(pack, bad_path, MODEL, codec.labels)
    executable = [{-2: "/3/0/", 0: "4", 2: 1}]  # the fast path leaves the error to the general one
    with pytest.raises(senml._Fallback):
        senml._fast_decode(executable, Path(3, 0), MODEL, codec.labels)


def _fast_and_general(pack: list[Any], path: Path) -> tuple[object, object]:
    """The fast path's result (or _Fallback) and the general path's result (or CodecError)."""
    codec = SenmlCborCodec()
    fast: object
    general: object
    try:
        fast = senml._fast_decode(pack, path, MODEL, codec.labels)
    except senml._Fallback as exc:
        fast = exc
    try:
        general = codec._decode_general(pack, path, MODEL)
    except CodecError as exc:
        general = exc
    return fast, general


@pytest.mark.parametrize(
    ("path", "pack"),
    [
        # resources in descending order
        (Path(3, 0), [{-2: "/3/0/", 0: "9", 2: 5}, {0: "1", 3: "x"}, {0: "0", 3: "y"}]),
        # a multiple resource's instances in descending order, and before a lower resource id
        (Path(3, 0), [{-2: "/3/0/", 0: "7/2", 2: 1}, {0: "7/0", 2: 2}, {0: "6/1", 2: 3}]),
        # instances in descending order
        (Path(3), [{-2: "/3/1/", 0: "9", 2: 1}, {-2: "/3/0/", 0: "7/1", 2: 2}, {0: "0", 3: "z"}]),
    ],
)
def test_fast_path_sorts_what_arrives_out_of_order(path: Path, pack: list[Any]) -> None:
    """Out-of-order ids are taken by the fast path and come out sorted, as the general path
    sorts them; the containers are rebuilt, so nothing of the one-pass views remains."""
    fast, general = _fast_and_general(pack, path)
    assert not isinstance(general, CodecError)
    assert fast == general
    assert isinstance(fast, ObjectInstance | ObjectNode)
    instances = fast.instances.values() if isinstance(fast, ObjectNode) else [fast]
    if isinstance(fast, ObjectNode):
        assert list(fast.instances) == sorted(fast.instances)
    for instance in instances:
        assert list(instance.resources) == sorted(instance.resources)
        for resource in instance.resources.values():
            if isinstance(resource, MultipleResource):
                assert list(resource.instances) == sorted(resource.instances)


@pytest.mark.parametrize(
    "pack",
    [
        # a multiple resource split in two runs (valid: the general path decides)
        [{-2: "/3/0/", 0: "7/0", 2: 1}, {0: "9", 2: 5}, {0: "7/1", 2: 2}],
        # the same resource instance twice, and the same single resource twice (errors)
        [{-2: "/3/0/", 0: "7/0", 2: 1}, {0: "7/0", 2: 2}],
        [{-2: "/3/0/", 0: "9", 2: 1}, {0: "9", 2: 2}],
        # no bn before the first value
        [{0: "9", 2: 1}],
        # a 3-item array is no record, even when its items would index like one
        [["9", "/3/0/", 100]],
    ],
)
def test_fast_path_leaves_unusual_packs_to_the_general_path(pack: list[Any]) -> None:
    fast, general = _fast_and_general(pack, Path(3, 0))
    assert isinstance(fast, senml._Fallback)
    codec = SenmlCborCodec()
    if isinstance(general, CodecError):
        with pytest.raises(CodecError):
            codec.decode(codec.encode_pack(pack), Path(3, 0), MODEL)
    else:
        assert codec.decode(codec.encode_pack(pack), Path(3, 0), MODEL) == general


# -- the leaf tree and composite helpers ---------------------------------------------------------


def test_leaf_tree_containers() -> None:
    tree = LeafTree(MODEL)
    tree.add_container((3,))
    tree.add_container((3, 0))
    tree.add_container((3, 0, 7))
    assert tree.holds(Path(3, 0, 7))
    assert not tree.holds(Path(3, 0, 7, 0))
    assert not tree.holds(Path(1))
    assert tree.node(Path(3)) == ObjectNode(
        3, [ObjectInstance(0, [MultipleResource(7, RT.INTEGER)])]
    )
    with pytest.raises(CodecError, match=r"/3/0/9: a single-instance resource needs a value"):
        tree.add_container((3, 0, 9))
    with pytest.raises(CodecError, match=r"/3/0/9: no value for the resource"):
        tree.node(Path(3, 0, 9))
    with pytest.raises(CodecError, match=r"/9999/0/1: unknown object 9999"):
        tree.definition((9999, 0, 1))
    with pytest.raises(CodecError, match=r"/3/0/99: unknown resource 99"):
        tree.definition((3, 0, 99))


def test_group_nodes_and_disjoint_paths() -> None:
    tree = LeafTree(MODEL)
    definition = tree.definition((3, 0, 9))
    tree.add((3, 0, 9), definition, 5)
    grouped = group_nodes(tree, [(3, 0, 9)], {Path(3, 0, 7, 1): None}, [Path(3, 0)])
    assert grouped == {
        Path(3, 0): ObjectInstance(0, [SingleResource(9, RT.INTEGER, 5)]),
        Path(3, 0, 7, 1): None,
    }
    check_disjoint([Path(3, 0, 9), Path(3, 1), Path(1)])
    with pytest.raises(CodecError, match=r"/3/0/9: overlaps the entry /3"):
        check_disjoint([Path(3, 0, 9), Path(3)])


def test_fast_path_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Peers choose names and base names: the caches across calls stay small."""
    monkeypatch.setattr(senml, "_CACHE_LIMIT", 2)
    monkeypatch.setattr(senml, "_BASE_IDS", {})
    codec = SenmlCborCodec()
    node = ObjectNode(
        3441,
        [
            ObjectInstance(
                i,
                [SingleResource(r, RT.CORELNK if r == 8 else RT.STRING, "x") for r in (0, 8, 300)],
            )
            for i in range(3)
        ],
    )
    data = codec.encode(node, Path(3441), MODEL)
    for _ in range(2):
        assert codec.decode(data, Path(3441), MODEL) == node
    assert len(senml._BASE_IDS) <= 2
    assert all(len(names) <= 2 for _, names in codec._names.values())
    other = SenmlCborCodec()
    other._names = {i: (object(), {}) for i in range(2)}  # full, and stale entries
    assert other.decode(data, Path(3441), MODEL) == node
    for bn in ("/3441/0/" + "0" * 20, "/3441/", "/3441/0/0/"):
        with pytest.raises(senml._Fallback):
            senml._fast_decode([{-2: bn, 0: "0", 3: "x"}], Path(3441), MODEL, codec.labels)


@pytest.mark.parametrize(
    "records",
    [
        # a resource again after lower ids (found by test_fast_path_agrees_with_general_path)
        [{"bn": "/3/0/", "n": "0", "vs": "a"}, {"n": "1", "vs": "b"}, {"n": "0", "vs": "c"}],
        [{"bn": "/3/0/", "n": "9", "v": 1}, {"n": "1", "vs": "b"}, {"n": "9", "v": 2}],
        # a resource instance again after lower ones
        [
            {"bn": "/3/0/", "n": "7/5", "v": 1},
            {"n": "7/1", "v": 2},
            {"n": "7/5", "v": 3},
        ],
    ],
)
def test_a_value_twice_for_one_path_is_refused_in_any_order(records: list[dict[str, Any]]) -> None:
    """RFC 8428 §4.6 / Core §7.4: one value per path; the fast path's "above every earlier id"
    shortcut must not let a repeated id through once ids went down (they used to overwrite)."""
    import json

    with pytest.raises(CodecError, match="duplicate value for the same path"):
        SenmlJsonCodec().decode(json.dumps(records).encode(), Path(3, 0), default_registry())
