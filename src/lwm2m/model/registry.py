"""The model registry: "object X at version V", from the bundled definitions and user DDF files.

The bundled definitions (``lwm2m/model/objects/*.xml``) are the project's own, written from the
facts of LwM2M-TS-Core 1.1 — not copies of the OMA registry files. Users add their own objects
with :meth:`ModelRegistry.load` (a DDF file or a folder of them).

A :class:`ModelView` pins one version per object — e.g. the versions a client registered with
(``</3>;ver=1.1``) — and is what codecs receive as their :class:`ObjectModel`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Protocol

from lwm2m.errors import ModelError
from lwm2m.model.definitions import ObjectDefinition, ResourceDefinition

__all__ = ["ModelRegistry", "ModelView", "ObjectModel", "default_registry"]


class ObjectModel(Protocol):
    """What codecs need to know: the definition of an object, if any."""

    def object_definition(self, object_id: int) -> ObjectDefinition | None: ...


def _version_key(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor)


class ModelRegistry:
    """Object definitions by id and version.

    >>> reg = ModelRegistry([ObjectDefinition(3, "Device", version="1.1")])
    >>> reg.get(3).version, reg.get(3, "1.0") is None
    ('1.1', True)
    """

    def __init__(self, definitions: Iterable[ObjectDefinition] = ()) -> None:
        self._by_id: dict[int, dict[str, ObjectDefinition]] = {}
        # the latest version of each object, kept by add(): codecs ask for it per payload, and
        # the max() over version strings costs about 1 µs
        self._latest: dict[int, ObjectDefinition] = {}
        for definition in definitions:
            self.add(definition)

    def add(self, definition: ObjectDefinition, *, replace: bool = True) -> None:
        """Add a definition; an existing one with the same id and version is replaced."""
        versions = self._by_id.setdefault(definition.id, {})
        if not replace and definition.version in versions:
            raise ModelError(f"object {definition.id} version {definition.version} already known")
        versions[definition.version] = definition
        self._latest[definition.id] = versions[max(versions, key=_version_key)]

    def get(self, object_id: int, version: str | None = None) -> ObjectDefinition | None:
        """The definition of ``object_id`` at ``version``, or its latest version if None."""
        if version is None:
            return self._latest.get(object_id)
        versions = self._by_id.get(object_id)
        return versions.get(version) if versions is not None else None

    def versions(self, object_id: int) -> list[str]:
        return sorted(self._by_id.get(object_id, {}), key=_version_key)

    def object_ids(self) -> list[int]:
        return sorted(self._by_id)

    def __iter__(self) -> Iterator[ObjectDefinition]:
        for object_id in self.object_ids():
            for version in self.versions(object_id):
                yield self._by_id[object_id][version]

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_id.values())

    def object_definition(self, object_id: int) -> ObjectDefinition | None:
        """:class:`ObjectModel` view of the registry: the latest version of each object."""
        return self.get(object_id)

    def view(self, versions: Mapping[int, str] | None = None) -> ModelView:
        """A model pinning ``versions`` (object id -> "M.m"); other objects use their latest."""
        return ModelView(self, dict(versions or {}))

    def load(self, path: str | os.PathLike[str]) -> list[ObjectDefinition]:
        """Load a DDF file, or every ``*.xml`` in a folder, and add the definitions.

        Raises :class:`lwm2m.errors.DdfError` naming the file and element on the first bad file.
        """
        from lwm2m.model.ddf import load_ddf  # lazy: keeps XML parsing off import

        paths: list[str]
        if os.path.isdir(path):
            paths = sorted(
                os.path.join(path, name) for name in os.listdir(path) if name.endswith(".xml")
            )
        else:
            paths = [os.fspath(path)]
        loaded: list[ObjectDefinition] = []
        for file in paths:
            loaded.extend(load_ddf(file))
        for definition in loaded:
            self.add(definition)
        return loaded

    def copy(self) -> ModelRegistry:
        return ModelRegistry(self)


class ModelView:
    """An :class:`ObjectModel` with pinned object versions."""

    __slots__ = ("_registry", "_versions")

    def __init__(self, registry: ModelRegistry, versions: dict[int, str]) -> None:
        self._registry = registry
        self._versions = versions

    def object_definition(self, object_id: int) -> ObjectDefinition | None:
        # ModelRegistry.get inlined: codecs ask once or more per payload
        registry = self._registry
        version = self._versions.get(object_id)
        if version is not None:
            versions = registry._by_id.get(object_id)
            if versions is not None:
                pinned = versions.get(version)
                if pinned is not None:
                    return pinned
        return registry._latest.get(object_id)


def resource_definition(
    model: ObjectModel, object_id: int, resource_id: int
) -> ResourceDefinition | None:
    """The definition of ``/object_id/*/resource_id`` in ``model``, if known."""
    definition = model.object_definition(object_id)
    return definition.resource(resource_id) if definition is not None else None


@cache
def _bundled() -> tuple[ObjectDefinition, ...]:
    from lwm2m.model.ddf import parse_ddf  # lazy, as in load()

    found: list[ObjectDefinition] = []
    folder = resources.files("lwm2m.model") / "objects"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".xml"):
            found.extend(parse_ddf(entry.read_bytes(), source=f"lwm2m/model/objects/{entry.name}"))
    return tuple(found)


def default_registry() -> ModelRegistry:
    """A fresh registry holding the project's own definitions of the core objects."""
    return ModelRegistry(_bundled())
