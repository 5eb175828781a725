"""Every XML file of the OMA LwM2M registry either loads or is rejected with a precise DdfError.

The registry (OpenMobileAlliance/lwm2m-registry, see spec-reference §1.7) is test data: the root
``N.xml`` files are the latest version of each object, ``version_history/N-M_m.xml`` every
version. Three root files are not object definitions at all and one object has a genuine defect;
the outcome of each file is pinned below so that a change of the loader's rules, or of the
registry snapshot, is noticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lwm2m.errors import DdfError
from lwm2m.model import ObjectDefinition
from lwm2m.model.ddf import load_ddf

#: Files that are rejected, with the element named and the reason (a substring of the message).
EXPECTED_REJECTIONS: dict[str, tuple[str | None, str]] = {
    # The registry index (<DDFList> of all objects), not an object file.
    "DDF.xml": (None, "root element is <DDFList>"),
    # The registry's extra SenML units (<units>), not an object file.
    "LWM2M_senml_units.xml": (None, "root element is <units>"),
    # Reusable resources (ObjectType="CommonResources", no ObjectID), not an object definition.
    "Common.xml": ("Object", "ObjectType 'CommonResources' is not MODefinition"),
    # A genuine defect: resource 5 "Read data" is Operations R with an empty <Type>, and its
    # description says "Execute read operation" — a mis-marked executable or a value of unknown
    # type; the loader does not guess (strict rule 7 of lwm2m.model.ddf).
    "10482.xml": ('Item ID="5"/Type', "(not executable) needs a type"),
    "version_history/10482-1_0.xml": ('Item ID="5"/Type', "(not executable) needs a type"),
}
#: Files that load: 330 root files + 424 version_history files - 5 rejected above.
EXPECTED_LOADED = 749
#: Object definitions in the loaded files (one <Object> each).
EXPECTED_DEFINITIONS = 749


@dataclass(frozen=True)
class Outcome:
    loaded: dict[str, list[ObjectDefinition]]
    rejected: dict[str, DdfError]


def _xml_files(folder: Path) -> Iterator[Path]:
    yield from sorted(folder.glob("*.xml"))
    yield from sorted((folder / "version_history").glob("*.xml"))


@pytest.fixture(scope="module")
def outcome(oma_registry: Path) -> Outcome:
    loaded: dict[str, list[ObjectDefinition]] = {}
    rejected: dict[str, DdfError] = {}
    for path in _xml_files(oma_registry):
        name = path.relative_to(oma_registry).as_posix()
        try:
            loaded[name] = load_ddf(path)
        except DdfError as exc:
            rejected[name] = exc
    return Outcome(loaded, rejected)


def test_file_counts(oma_registry: Path, outcome: Outcome) -> None:
    assert len(list(oma_registry.glob("*.xml"))) == 330
    assert len(list((oma_registry / "version_history").glob("*.xml"))) == 424
    assert len(outcome.loaded) == EXPECTED_LOADED
    assert len(outcome.rejected) == len(EXPECTED_REJECTIONS) == 5
    assert sum(len(defs) for defs in outcome.loaded.values()) == EXPECTED_DEFINITIONS


def test_rejections_are_the_expected_ones(oma_registry: Path, outcome: Outcome) -> None:
    assert sorted(outcome.rejected) == sorted(EXPECTED_REJECTIONS)
    for name, error in outcome.rejected.items():
        element, reason = EXPECTED_REJECTIONS[name]
        assert error.file == str(oma_registry / name), name
        assert error.element == element, f"{name}: {error}"
        assert reason in str(error), f"{name}: {error}"
        assert str(error).startswith(str(oma_registry / name)), name


def test_the_xsd_files_are_not_object_files(oma_registry: Path) -> None:
    for name in ("LWM2M.xsd", "LWM2M-v1_1.xsd"):
        with pytest.raises(DdfError, match=r"root element is <schema>"):
            load_ddf(oma_registry / name)


def test_version_history_files_match_their_names(outcome: Outcome) -> None:
    """``version_history/N-M_m.xml`` defines object N at version M.m (checks ids and versions)."""
    for name, (definition,) in outcome.loaded.items():
        stem = name.removesuffix(".xml").rpartition("/")[2]
        if name.startswith("version_history/"):
            object_id, _, version = stem.partition("-")
            assert (str(definition.id), definition.version) == (
                object_id,
                version.replace("_", "."),
            ), name
        else:
            assert str(definition.id) == stem, name


def test_latest_equals_newest_history_version(outcome: Outcome) -> None:
    """The root ``N.xml`` is the newest version of N in version_history (spec-reference §1.7)."""
    history: dict[int, list[ObjectDefinition]] = {}
    for name, defs in outcome.loaded.items():
        if name.startswith("version_history/"):
            history.setdefault(defs[0].id, []).extend(defs)
    for name, (latest,) in outcome.loaded.items():
        if not name.startswith("version_history/") and latest.id in history:
            newest = max(history[latest.id], key=lambda d: tuple(map(int, d.version.split("."))))
            assert newest.version == latest.version, name


def test_core_objects_as_in_spec_reference(outcome: Outcome) -> None:
    """Spot checks against spec-reference §1.7 (version / LWM2MVersion / number of resources)."""
    expected = {
        "version_history/0-1_1.xml": (0, "1.1", "1.1", 18),
        "version_history/1-1_1.xml": (1, "1.1", "1.1", 24),
        "version_history/2-1_1.xml": (2, "1.1", "1.0", 4),
        "version_history/3-1_1.xml": (3, "1.1", "1.1", 23),
        "version_history/0-1_0.xml": (0, "1.0", "1.0", 13),  # LwM2M.xsd file: versions default
        "version_history/21-1_0.xml": (21, "1.0", "1.1", 6),
        "0.xml": (0, "1.2", "1.1", 31),
    }
    for name, (object_id, version, lwm2m_version, count) in expected.items():
        (d,) = outcome.loaded[name]
        assert (d.id, d.version, d.lwm2m_version, len(d.resources)) == (
            object_id,
            version,
            lwm2m_version,
            count,
        ), name
