"""LwM2M paths: root, object, object instance, resource, resource instance (LwM2M-TS-Core §7.1).

A path is written ``/3/0/1/2``; the root is ``/``. Every id is 0..65534 — 65535 (MAX_ID) is
reserved and rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from lwm2m.constants import MAX_ID
from lwm2m.errors import InvalidPathError

__all__ = ["Path", "PathLevel"]


class PathLevel(IntEnum):
    """How deep a path goes: the number of ids it has."""

    ROOT = 0
    OBJECT = 1
    OBJECT_INSTANCE = 2
    RESOURCE = 3
    RESOURCE_INSTANCE = 4


_LEVELS = tuple(PathLevel)


@dataclass(frozen=True, slots=True, order=True)
class Path:
    """An LwM2M path, ordered like its id tuple (a prefix sorts before what it prefixes).

    >>> Path.parse("/3/0/1")
    Path('/3/0/1')
    >>> str(Path(3, 0).child(1))
    '/3/0/1'
    >>> Path(3).is_prefix_of(Path(3, 0, 1))
    True
    """

    ids: tuple[int, ...]

    def __init__(self, *ids: int) -> None:
        if len(ids) > 4:
            raise InvalidPathError(f"a path has at most 4 ids, got {len(ids)}")
        for i in ids:
            if type(i) is not int or not 0 <= i < MAX_ID:
                raise InvalidPathError(f"id {i!r} is not in 0..{MAX_ID - 1}")
        object.__setattr__(self, "ids", tuple(ids))

    @classmethod
    def parse(cls, text: str) -> Path:
        """Parse ``/o/i/r/ri`` (leading slash optional, one trailing slash allowed).

        ``"/"`` and ``""`` are the root; empty segments (``"//"``, ``"/3//0"``) are rejected.
        """
        if not isinstance(text, str):
            raise InvalidPathError(f"path must be text, got {type(text).__name__}")
        if text in ("", "/"):
            return ROOT
        stripped = text.removeprefix("/").removesuffix("/")
        ids: list[int] = []
        for part in stripped.split("/"):
            if not part.isascii() or not part.isdigit():
                raise InvalidPathError(f"invalid path {text!r}: {part!r} is not a decimal id")
            if len(part) > 1 and part[0] == "0":
                raise InvalidPathError(f"invalid path {text!r}: {part!r} has a leading zero")
            if len(part) > 5:  # also keeps int() away from its digit-count limit
                raise InvalidPathError(f"invalid path {text!r}: id {part} is not in 0..65534")
            ids.append(int(part))
        try:
            return cls(*ids)
        except InvalidPathError as exc:
            raise InvalidPathError(f"invalid path {text!r}: {exc}") from None

    def __str__(self) -> str:
        return "/" + "/".join(map(str, self.ids))

    def __repr__(self) -> str:
        return f"Path({str(self)!r})"

    @property
    def level(self) -> PathLevel:
        # A tuple index, not PathLevel(n): an Enum call costs about half a microsecond, and the
        # codecs ask every path they handle (ids are at most four, see __post_init__).
        return _LEVELS[len(self.ids)]

    def _id(self, index: int) -> int | None:
        return self.ids[index] if len(self.ids) > index else None

    @property
    def object_id(self) -> int | None:
        return self._id(0)

    @property
    def object_instance_id(self) -> int | None:
        return self._id(1)

    @property
    def resource_id(self) -> int | None:
        return self._id(2)

    @property
    def resource_instance_id(self) -> int | None:
        return self._id(3)

    @property
    def is_root(self) -> bool:
        return not self.ids

    @property
    def is_object(self) -> bool:
        return len(self.ids) == 1

    @property
    def is_object_instance(self) -> bool:
        return len(self.ids) == 2

    @property
    def is_resource(self) -> bool:
        return len(self.ids) == 3

    @property
    def is_resource_instance(self) -> bool:
        return len(self.ids) == 4

    @property
    def parent(self) -> Path:
        if not self.ids:
            raise InvalidPathError("the root path has no parent")
        return Path(*self.ids[:-1])

    def child(self, id_: int) -> Path:
        return Path(*self.ids, id_)

    def is_prefix_of(self, other: Path) -> bool:
        """True when ``other`` is this path or lies below it."""
        return other.ids[: len(self.ids)] == self.ids

    def startswith(self, prefix: Path) -> bool:
        return prefix.is_prefix_of(self)


ROOT = Path()
