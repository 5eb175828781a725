"""Paths (LwM2M-TS-Core §7.1): parsing, formatting, id range, ordering and navigation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m.errors import InvalidPathError, ModelError
from lwm2m.model import Path, PathLevel

ids = st.integers(min_value=0, max_value=65534)
paths = st.lists(ids, max_size=4).map(lambda xs: Path(*xs))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/", ()),
        ("", ()),
        ("/3", (3,)),
        ("3", (3,)),
        ("/3/", (3,)),
        ("/3/0", (3, 0)),
        ("/3/0/1", (3, 0, 1)),
        ("/3/0/1/2", (3, 0, 1, 2)),
        ("/0/0/0/0", (0, 0, 0, 0)),
        ("/65534/65534/65534/65534", (65534, 65534, 65534, 65534)),
    ],
)
def test_parse(text: str, expected: tuple[int, ...]) -> None:
    path = Path.parse(text)
    assert path.ids == expected
    assert path == Path(*expected)


@pytest.mark.parametrize(
    "text",
    [
        "3/x",
        "//",
        "///",
        "/3//0",
        "3//",
        "/01",
        "/3/00",
        "/-1",
        "/+1",
        "/3/0/1/2/3",
        "/65535",
        "/3/65535",
        "/99999999",
        "/" + "9" * 5000,  # would trip int()'s digit limit
        "/3.0",
        "/ 3",
        "/3 ",
        "/\u0663",  # ARABIC-INDIC DIGIT THREE: a digit, but not ASCII
        "/x",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidPathError, match="invalid path"):
        Path.parse(text)


def test_parse_rejects_non_text() -> None:
    with pytest.raises(InvalidPathError, match="must be text"):
        Path.parse(b"/3")  # type: ignore[arg-type]


def test_invalid_path_error_is_a_model_error() -> None:
    assert issubclass(InvalidPathError, ModelError)
    assert issubclass(InvalidPathError, ValueError)


@pytest.mark.parametrize("bad", [-1, 65535, 65536, True, 1.0, "3", None])
def test_constructor_rejects_bad_ids(bad: object) -> None:
    with pytest.raises(InvalidPathError, match=r"is not in 0\.\.65534"):
        Path(3, bad)  # type: ignore[arg-type]


def test_constructor_rejects_five_ids() -> None:
    with pytest.raises(InvalidPathError, match="at most 4 ids"):
        Path(1, 2, 3, 4, 5)


def test_format() -> None:
    assert str(Path()) == "/"
    assert str(Path(3, 0, 1, 2)) == "/3/0/1/2"
    assert repr(Path(3, 0)) == "Path('/3/0')"


def test_levels_and_accessors() -> None:
    root, obj, inst, res, rinst = (Path(), Path(3), Path(3, 0), Path(3, 0, 1), Path(3, 0, 1, 2))
    assert [p.level for p in (root, obj, inst, res, rinst)] == list(PathLevel)
    assert root.is_root
    assert not obj.is_root
    assert obj.is_object
    assert not inst.is_object
    assert inst.is_object_instance
    assert not res.is_object_instance
    assert res.is_resource
    assert not rinst.is_resource
    assert rinst.is_resource_instance
    assert not res.is_resource_instance
    assert (rinst.object_id, rinst.object_instance_id) == (3, 0)
    assert (rinst.resource_id, rinst.resource_instance_id) == (1, 2)
    assert (root.object_id, obj.object_instance_id) == (None, None)
    assert (inst.resource_id, res.resource_instance_id) == (None, None)


def test_parent_and_child() -> None:
    assert Path(3, 0, 1, 2).parent == Path(3, 0, 1)
    assert Path(3).parent == Path()
    assert Path().child(3).child(0) == Path(3, 0)
    with pytest.raises(InvalidPathError, match="no parent"):
        _ = Path().parent
    with pytest.raises(InvalidPathError, match="at most 4 ids"):
        Path(3, 0, 1, 2).child(0)
    with pytest.raises(InvalidPathError):
        Path(3).child(65535)


def test_prefix() -> None:
    assert Path().is_prefix_of(Path(3, 0))
    assert Path(3).is_prefix_of(Path(3))
    assert Path(3).is_prefix_of(Path(3, 0, 1))
    assert not Path(3, 0).is_prefix_of(Path(3))
    assert not Path(3).is_prefix_of(Path(33))
    assert not Path(3, 1).is_prefix_of(Path(3, 10, 1))
    assert Path(3, 0, 1).startswith(Path(3, 0))
    assert not Path(3, 0, 1).startswith(Path(4))


def test_ordering() -> None:
    unsorted = [Path(4), Path(3, 0, 1), Path(), Path(3, 10), Path(3), Path(3, 0), Path(3, 2)]
    assert sorted(unsorted) == [
        Path(),
        Path(3),
        Path(3, 0),
        Path(3, 0, 1),
        Path(3, 2),
        Path(3, 10),  # numeric, not textual order
        Path(4),
    ]


def test_frozen_and_hashable() -> None:
    path = Path(3, 0)
    with pytest.raises(AttributeError):
        path.ids = (4,)  # type: ignore[misc]
    assert {Path(3, 0): 1}[Path.parse("/3/0")] == 1


@given(paths)
def test_round_trip(path: Path) -> None:
    assert Path.parse(str(path)) == path
    assert Path.parse(str(path).lstrip("/")) == path


@given(paths, paths)
def test_order_is_id_tuple_order(a: Path, b: Path) -> None:
    assert (a < b) == (a.ids < b.ids)
    if a.is_prefix_of(b):
        assert a <= b


@given(paths, ids)
def test_child_parent_inverse(path: Path, id_: int) -> None:
    if len(path.ids) < 4:
        child = path.child(id_)
        assert child.parent == path
        assert path.is_prefix_of(child)
        assert child.level == path.level + 1
