"""The model registry: bundled definitions, versions, pinned views and user DDF files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwm2m.errors import DdfError, ModelError
from lwm2m.model import ObjectDefinition, Operations, ResourceDefinition, ResourceType
from lwm2m.model.ddf import dump_ddf
from lwm2m.model.registry import ModelRegistry, ObjectModel, default_registry, resource_definition

from .ddfdocs import doc, obj


def definition(object_id: int, version: str = "1.0", name: str = "X") -> ObjectDefinition:
    res = ResourceDefinition(0, "r", Operations.R, False, False, ResourceType.STRING)
    return ObjectDefinition(object_id, name, version=version, resources={0: res})


def test_bundled_definitions(bundled: ModelRegistry) -> None:
    assert bundled.object_ids() == [0, 1, 2, 3, 4, 5, 6, 7, 21]
    assert bundled.versions(2) == ["1.0", "1.1"]
    assert len(bundled) == 13
    assert [(d.id, d.version) for d in bundled][:6] == [
        (0, "1.0"),
        (0, "1.1"),
        (1, "1.0"),
        (1, "1.1"),
        (2, "1.0"),
        (2, "1.1"),
    ]
    for oid in (0, 1, 3):  # the 1.0 versions are for 1.0 clients; 1.1 stays the latest
        latest = bundled.get(oid)
        assert latest is not None
        assert latest.version == "1.1"
    security = bundled.get(0)
    assert security is not None
    assert all(r.operations is Operations.NONE for r in security.resources.values())
    oscore = bundled.get(21)
    assert oscore is not None
    assert oscore.resources[0].type is ResourceType.OPAQUE
    assert default_registry() is not bundled  # fresh each time


def test_get_latest_and_specific(bundled: ModelRegistry) -> None:
    latest = bundled.get(2)
    assert latest is not None
    assert latest.version == "1.1"
    old = bundled.get(2, "1.0")
    assert old is not None
    assert old.version == "1.0"
    assert bundled.get(2, "9.9") is None
    assert bundled.get(9999) is None
    assert bundled.versions(9999) == []
    assert bundled.object_definition(2) is latest


def test_versions_sort_numerically() -> None:
    reg = ModelRegistry(
        [definition(9, "1.10"), definition(9, "1.9"), definition(9, "2.0"), definition(9, "1.2")]
    )
    assert reg.versions(9) == ["1.2", "1.9", "1.10", "2.0"]
    got = reg.get(9)
    assert got is not None
    assert got.version == "2.0"


def test_latest_version_follows_every_add() -> None:
    """The latest version is kept by add(): an older version added later does not replace it,
    a replaced latest version is seen at once, by the registry and by its views."""
    reg = ModelRegistry([definition(9, "1.10")])
    view = reg.view({9: "1.2", 4242: "1.0"})  # a pin for an unknown version, one for no object
    reg.add(definition(9, "1.9"))
    assert reg.get(9) is view.object_definition(9) is reg.get(9, "1.10")
    reg.add(definition(9, "1.10", name="replaced"))
    got = view.object_definition(9)
    assert got is not None
    assert got.name == "replaced"
    reg.add(definition(9, "1.2"))
    assert view.object_definition(9) is reg.get(9, "1.2")  # the pin now exists
    assert view.object_definition(4242) is None
    assert reg.get(4242, "1.0") is None


def test_add_replace() -> None:
    reg = ModelRegistry([definition(9, name="old")])
    reg.add(definition(9, name="new"))
    got = reg.get(9)
    assert got is not None
    assert got.name == "new"
    with pytest.raises(ModelError, match=r"object 9 version 1\.0 already known"):
        reg.add(definition(9), replace=False)
    reg.add(definition(9, "1.1"), replace=False)
    assert reg.versions(9) == ["1.0", "1.1"]


def test_view_pinning(bundled: ModelRegistry) -> None:
    view = bundled.view({2: "1.0", 3: "9.9"})
    pinned = view.object_definition(2)
    assert pinned is not None
    assert pinned.version == "1.0"
    # Unknown pinned versions and objects without a pin fall back to the latest version.
    unknown = view.object_definition(3)
    assert unknown is not None
    assert unknown.version == "1.1"
    assert view.object_definition(1) is bundled.get(1)
    assert view.object_definition(4242) is None
    assert bundled.view().object_definition(2) is bundled.get(2)
    model: ObjectModel = view  # a view is an ObjectModel, as is the registry itself
    assert resource_definition(model, 2, 2) is not None
    assert resource_definition(bundled, 3, 4) is not None
    assert resource_definition(bundled, 3, 999) is None
    assert resource_definition(bundled, 4242, 0) is None


def test_view_is_live_but_registry_copy_is_not(bundled: ModelRegistry) -> None:
    view = bundled.view()
    copy = bundled.copy()
    bundled.add(definition(3, "1.5", name="Newer"))
    newer = view.object_definition(3)
    assert newer is not None
    assert newer.version == "1.5"
    original = copy.get(3)
    assert original is not None
    assert original.version == "1.1"
    assert len(copy) == len(bundled) - 1


def test_load_file(tmp_path: Path, bundled: ModelRegistry) -> None:
    file = tmp_path / "30000.xml"
    file.write_bytes(dump_ddf(definition(30000, "1.0", name="Mine")))
    loaded = bundled.load(file)
    assert [(d.id, d.version) for d in loaded] == [(30000, "1.0")]
    mine = bundled.get(30000)
    assert mine is not None
    assert mine.name == "Mine"
    assert bundled.load(str(file)) == loaded


def test_load_folder(tmp_path: Path) -> None:
    (tmp_path / "b.xml").write_bytes(dump_ddf(definition(20001)))
    (tmp_path / "a.xml").write_bytes(dump_ddf([definition(20000), definition(20000, "1.1")]))
    (tmp_path / "notes.txt").write_text("not a DDF file")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.xml").write_bytes(b"not even XML")  # subfolders are not searched
    reg = ModelRegistry()
    loaded = reg.load(tmp_path)
    assert [(d.id, d.version) for d in loaded] == [(20000, "1.0"), (20000, "1.1"), (20001, "1.0")]
    assert reg.object_ids() == [20000, 20001]


def test_user_ddf_overrides_bundled(tmp_path: Path, bundled: ModelRegistry) -> None:
    # Same id and version: the user's definition replaces ours.
    (tmp_path / "3.xml").write_bytes(
        doc(obj(ObjectID="3", ObjectVersion="1.1", Name="Vendor Device"))
    )
    # A newer version becomes the latest; the older ones stay reachable.
    (tmp_path / "4.xml").write_bytes(doc(obj(ObjectID="4", ObjectVersion="2.0", Name="CM 2")))
    bundled.load(tmp_path)
    device = bundled.get(3, "1.1")
    assert device is not None
    assert device.name == "Vendor Device"
    assert bundled.versions(3) == ["1.0", "1.1"]
    latest = bundled.get(4)
    assert latest is not None
    assert latest.name == "CM 2"
    assert bundled.versions(4) == ["1.3", "2.0"]
    assert default_registry().get(3, "1.1") != device  # the bundled definitions are untouched


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "1-good.xml"
    good.write_bytes(dump_ddf(definition(20000)))
    bad = tmp_path / "2-bad.xml"
    bad.write_bytes(doc(obj(ObjectID="3", MultipleInstances="Sometimes")))
    reg = ModelRegistry()
    with pytest.raises(DdfError) as info:
        reg.load(tmp_path)
    assert info.value.file == str(bad)
    assert info.value.element == "Object/MultipleInstances"
    assert str(info.value).startswith(f"{bad}, element <Object/MultipleInstances>: ")
    assert len(reg) == 0  # nothing is added from a folder with a bad file
    with pytest.raises(DdfError, match="cannot read file") as info:
        reg.load(tmp_path / "missing.xml")
    assert info.value.file == str(tmp_path / "missing.xml")


def test_bundled_folder_skips_non_xml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only ``*.xml`` entries of the objects folder are definitions (README files and the like
    are skipped); the loader names each file by its package path."""
    from lwm2m.model import registry

    folder = tmp_path / "objects"
    folder.mkdir()
    (folder / "20000-1_0.xml").write_bytes(dump_ddf(definition(20000)))
    (folder / "README.md").write_text("notes")
    (folder / "9-1_0.xml").write_bytes(b"<LWM2M/>")

    class FakeResources:
        @staticmethod
        def files(package: str) -> Path:
            assert package == "lwm2m.model"
            return tmp_path

    monkeypatch.setattr(registry, "resources", FakeResources)
    with pytest.raises(DdfError) as info:
        registry._bundled.__wrapped__()
    assert info.value.file == "lwm2m/model/objects/9-1_0.xml"
    (folder / "9-1_0.xml").unlink()
    assert [d.id for d in registry._bundled.__wrapped__()] == [20000]
