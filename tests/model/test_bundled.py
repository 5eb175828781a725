"""The bundled object definitions: present, well-formed, and stable through dump_ddf/parse_ddf."""

from __future__ import annotations

from importlib import resources

import pytest

from lwm2m.model import ObjectDefinition, Operations, ResourceType
from lwm2m.model.ddf import dump_ddf, parse_ddf
from lwm2m.model.registry import default_registry

FILES = sorted(
    entry.name
    for entry in (resources.files("lwm2m.model") / "objects").iterdir()
    if entry.name.endswith(".xml")
)
BUNDLED = list(default_registry())


def test_expected_files() -> None:
    assert FILES == [
        "0-1_0.xml",
        "0-1_1.xml",
        "1-1_0.xml",
        "1-1_1.xml",
        "2-1_0.xml",
        "2-1_1.xml",
        "21-1_0.xml",
        "3-1_0.xml",
        "3-1_1.xml",
        "4-1_3.xml",
        "5-1_1.xml",
        "6-1_0.xml",
        "7-1_0.xml",
    ]


@pytest.mark.parametrize("name", FILES)
def test_file_name_matches_content(name: str) -> None:
    data = (resources.files("lwm2m.model") / "objects" / name).read_bytes()
    (definition,) = parse_ddf(data, name)
    assert f"{definition.id}-{definition.version.replace('.', '_')}.xml" == name
    assert b"<!DOCTYPE" not in data
    assert b"project's own" in data


@pytest.mark.parametrize("definition", BUNDLED, ids=lambda d: f"{d.id}-{d.version}")
def test_round_trip(definition: ObjectDefinition) -> None:
    assert parse_ddf(dump_ddf(definition)) == [definition]


def test_round_trip_all_in_one_document() -> None:
    assert parse_ddf(dump_ddf(BUNDLED)) == BUNDLED


@pytest.mark.parametrize("definition", BUNDLED, ids=lambda d: f"{d.id}-{d.version}")
def test_every_resource_is_described(definition: ObjectDefinition) -> None:
    assert definition.description
    for resource in definition.resources.values():
        assert resource.description, f"/{definition.id}/{resource.id} has no description"
        if resource.operations.executable:
            assert resource.type is ResourceType.NONE


def test_secret_bearing_objects_are_hidden_from_servers() -> None:
    """/0 Security and /21 OSCORE have no operations: only bootstrap reaches them (§E)."""
    for object_id in (0, 21):
        definition = default_registry().get(object_id)
        assert definition is not None
        assert {r.operations for r in definition.resources.values()} == {Operations.NONE}
