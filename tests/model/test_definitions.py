"""Object and resource definitions (LwM2M-TS-Core §7.2, Appendix D)."""

from __future__ import annotations

import dataclasses

import pytest

from lwm2m.errors import ModelError
from lwm2m.model import ObjectDefinition, Operations, ResourceDefinition, ResourceType
from lwm2m.model.definitions import default_urn

T = ResourceType


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Operations.NONE),
        ("R", Operations.R),
        ("w", Operations.W),
        (" RW ", Operations.RW),
        ("E", Operations.E),
    ],
)
def test_operations_from_ddf(text: str, expected: Operations) -> None:
    assert Operations.from_ddf(text) is expected
    assert Operations.from_ddf(expected.to_ddf()) is expected


@pytest.mark.parametrize("text", ["WR", "RE", "RWE", "X", "read"])
def test_operations_from_ddf_rejects(text: str) -> None:
    with pytest.raises(ModelError, match="unknown operations"):
        Operations.from_ddf(text)


def test_operations_flags() -> None:
    assert Operations.RW.readable
    assert Operations.RW.writable
    assert not Operations.RW.executable
    assert Operations.E.executable
    assert not Operations.E.readable
    assert not Operations.NONE.readable
    assert not Operations.W.readable
    with pytest.raises(ModelError, match="cannot be written in DDF"):
        (Operations.R | Operations.E).to_ddf()


def res(
    id_: int = 0, ops: Operations = Operations.R, type_: ResourceType = T.INTEGER
) -> ResourceDefinition:
    return ResourceDefinition(id_, "r", ops, multiple=False, mandatory=False, type=type_)


def test_resource_definition() -> None:
    r = res(5, Operations.RW, T.STRING)
    assert (r.id, r.type, r.range_enumeration, r.units, r.description) == (5, T.STRING, "", "", "")
    # Executable resources carry no value: a type given anyway is dropped.
    assert res(4, Operations.E, T.STRING).type is T.NONE
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("bad", [-1, 65535, True, "1"])
def test_resource_definition_rejects_ids(bad: object) -> None:
    with pytest.raises(ModelError, match="resource id"):
        res(bad)  # type: ignore[arg-type]


def test_resource_definition_rejects_inexpressible_operations() -> None:
    with pytest.raises(ModelError, match="cannot be written in DDF"):
        res(0, Operations.R | Operations.E)


def test_object_definition_defaults_and_lookup() -> None:
    d = ObjectDefinition(3, "Device", resources={0: res(0), 4: res(4, Operations.E)})
    assert (d.version, d.lwm2m_version, d.multiple, d.mandatory) == ("1.0", "1.0", True, False)
    assert d.urn == "urn:oma:lwm2m:oma:3"
    assert d.resource(4) is d.resources[4]
    assert d.resource(99) is None
    assert ObjectDefinition(3, "Device", version="1.1").urn == "urn:oma:lwm2m:oma:3:1.1"
    assert ObjectDefinition(3, "D", urn="urn:oma:lwm2m:oma:3:1.0").urn == "urn:oma:lwm2m:oma:3:1.0"


def test_object_definition_sorts_and_freezes_resources() -> None:
    d = ObjectDefinition(3, "Device", resources=[res(9), res(1)])  # type: ignore[arg-type]
    assert list(d.resources) == [1, 9]
    with pytest.raises(TypeError):
        d.resources[2] = res(2)  # type: ignore[index]


def test_object_definition_rejects() -> None:
    with pytest.raises(ModelError, match="object id"):
        ObjectDefinition(65535, "x")
    with pytest.raises(ModelError, match="defined twice"):
        ObjectDefinition(3, "x", resources=[res(1), res(1)])  # type: ignore[arg-type]
    with pytest.raises(ModelError, match=r"object version '1' is not MAJOR\.MINOR"):
        ObjectDefinition(3, "x", version="1")
    with pytest.raises(ModelError, match="LwM2M version"):
        ObjectDefinition(3, "x", lwm2m_version="1.x")


def test_object_definition_equality() -> None:
    a = ObjectDefinition(3, "Device", resources={0: res(0)})
    b = ObjectDefinition(3, "Device", resources=[res(0)])  # type: ignore[arg-type]
    assert a == b
    assert hash(a) == hash(b)
    assert a != ObjectDefinition(3, "Device", resources={0: res(0, Operations.RW)})
    assert a != ObjectDefinition(3, "Device", description="x", resources={0: res(0)})
    assert a.__eq__("Device") is NotImplemented


@pytest.mark.parametrize(
    ("object_id", "version", "urn"),
    [
        (0, "1.0", "urn:oma:lwm2m:oma:0"),
        (2047, "1.2", "urn:oma:lwm2m:oma:2047:1.2"),
        (2048, "1.0", "urn:oma:lwm2m:ext:2048"),
        (10240, "2.0", "urn:oma:lwm2m:ext:10240:2.0"),
        (10241, "1.0", "urn:oma:lwm2m:x:10241"),
        (42000, "1.1", "urn:oma:lwm2m:x:42000:1.1"),
    ],
)
def test_default_urn(object_id: int, version: str, urn: str) -> None:
    assert default_urn(object_id, version) == urn
