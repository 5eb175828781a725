"""The Secure Component LwM2M object (SCS-2): its DDF, registration and instance values."""

from __future__ import annotations

from importlib import resources

import pytest

from lwm2m.codec import ContentFormat, codec_for
from lwm2m.model.ddf import dump_ddf, parse_ddf
from lwm2m.model.definitions import Operations
from lwm2m.model.path import Path
from lwm2m.model.registry import ModelRegistry, default_registry
from lwm2m.model.values import ResourceType
from lwm2m.secure import (
    SECURE_COMPONENT_OBJECT_ID,
    Capability,
    ComponentInfo,
    ComponentType,
    DloaReference,
    Identifier,
    register_secure_component_object,
    secure_component_definition,
    secure_component_instance,
)
from lwm2m.secure.object import SecureComponentResource

from .conftest import Backend

FULL = ComponentInfo(
    type=ComponentType.EUICC,
    secure_hardware=True,
    backend="pcsc",
    label="eSIM",
    manufacturer="ACME",
    model="M2M-1",
    serial_number="0042",
    platform_version="JavaCard 3.0.5",
    firmware_version="7.1",
    identifiers=(
        Identifier("eid", "89049032123451234512345678901235"),
        Identifier("cplc", "47904791"),
    ),
    capabilities=Capability.SIGN | Capability.PSK,
    dloa=(
        DloaReference("https://dloa.example/registrar", "PLATFORM-1", "APP-7"),
        DloaReference("https://dloa.example/registrar", "PLATFORM-1"),
    ),
)


def test_ddf_file_parses() -> None:
    data = (resources.files("lwm2m.secure") / "objects" / "33000-1_0.xml").read_bytes()
    (definition,) = parse_ddf(data, "33000-1_0.xml")
    assert definition.id == SECURE_COMPONENT_OBJECT_ID == 33000
    assert definition.urn == "urn:oma:lwm2m:x:33000"
    assert definition.lwm2m_version == "1.1"
    assert definition.multiple
    assert not definition.mandatory
    assert sorted(definition.resources) == [int(r) for r in SecureComponentResource]
    admin = {30: Operations.W, 31: Operations.RW, 32: Operations.E, 33: Operations.R}
    admin |= {34: Operations.R, 35: Operations.E, 36: Operations.RW, 37: Operations.E}
    admin |= {38: Operations.R}
    for rid, res in definition.resources.items():
        assert res.operations is admin.get(rid, Operations.R)  # identification is read-only
        assert res.name
        assert res.description
    assert definition.resources[30].type is ResourceType.OPAQUE
    assert definition.resources[34].range_enumeration == "0..5"
    assert definition.resources[0].type is ResourceType.INTEGER
    assert definition.resources[0].range_enumeration == "0..5"
    assert definition.resources[1].type is ResourceType.BOOLEAN
    assert {rid for rid, r in definition.resources.items() if r.multiple} == {7, 10, 11, 12, 13}
    assert {rid for rid, r in definition.resources.items() if r.mandatory} == {0, 1, 2}
    # The reserved ranges are documented in the object description.
    for text in ("14-19", "SCS-3", "SCS-6", "SCS-7", "SCS-9", "SCS-10", "SCS-11", "32769-42768"):
        assert text in definition.description
    assert parse_ddf(dump_ddf(definition)) == [definition]


def test_id_override_and_registration() -> None:
    assert secure_component_definition() is secure_component_definition()
    other = secure_component_definition(42769)
    assert other.id == 42769
    assert other.urn == "urn:oma:lwm2m:x:42769"
    assert other.resources == secure_component_definition().resources
    registry = ModelRegistry()
    assert register_secure_component_object(registry, object_id=42769) == other
    assert registry.object_ids() == [42769]
    full = default_registry()
    register_secure_component_object(full)
    assert full.get(SECURE_COMPONENT_OBJECT_ID) == secure_component_definition()


def test_instance_from_full_info() -> None:
    instance = secure_component_instance(FULL, instance_id=3)
    assert instance.id == 3
    values = {
        rid: res.value if hasattr(res, "value") else None for rid, res in instance.resources.items()
    }
    assert values[0] == 2  # eUICC
    assert values[1] is True
    assert values[2] == "pcsc"
    assert values[6] == "0042"
    multiple = {
        rid: res.values for rid, res in instance.resources.items() if hasattr(res, "values")
    }
    assert multiple[7] == {0: "eid:89049032123451234512345678901235", 1: "cplc:47904791"}
    assert multiple[10] == {0: "tls12-psk-master-secret", 1: "ecdsa-p256-sha256"}
    assert multiple[11] == {
        0: "https://dloa.example/registrar",
        1: "https://dloa.example/registrar",
    }
    assert multiple[12] == {0: "PLATFORM-1", 1: "PLATFORM-1"}
    assert multiple[13] == {0: "APP-7", 1: ""}
    assert set(instance.resources) == {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}


def test_instance_encodes_with_the_model(backend: Backend) -> None:
    """The instance of a real component is valid for the object: it round-trips through TLV."""
    registry = default_registry()
    register_secure_component_object(registry)
    with backend.open() as component:
        instance = secure_component_instance(component.info())
    assert instance.resources[1].value is backend.secure_hardware  # type: ignore[union-attr]
    for fmt in (ContentFormat.TLV, ContentFormat.SENML_JSON):
        codec = codec_for(fmt)
        path = Path(SECURE_COMPONENT_OBJECT_ID, 0)
        assert codec.decode(codec.encode(instance, path, registry), path, registry) == instance


@pytest.mark.parametrize("kind", list(ComponentType))
def test_component_types(kind: ComponentType) -> None:
    instance = secure_component_instance(
        ComponentInfo(kind, kind is not ComponentType.SOFTWARE, "x")
    )
    assert instance.resources[0].value == kind.value  # type: ignore[union-attr]
    assert 0 <= kind.value <= 5
    assert kind.label
