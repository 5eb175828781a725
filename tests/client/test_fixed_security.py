""":class:`~lwm2m.client.objects.fixed.FixedObject` (a read-only object of fixed instances, e.g. the
Secure Component object of SCS-2) served to a DM server, and the uncommon paths of the Security
object (/0) helpers."""

from __future__ import annotations

import pytest

from lwm2m.client.objects.base import MemoryInstanceStore
from lwm2m.client.objects.fixed import FixedObject
from lwm2m.client.objects.security import SecurityMode, SecurityObject
from lwm2m.coap.numbers import Code
from lwm2m.codec import composite_codec_for
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.codec.link import decode_links
from lwm2m.errors import NotFound
from lwm2m.model import (
    ObjectDefinition,
    ObjectInstance,
    ObjectNode,
    Operations,
    Path,
    ResourceDefinition,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import default_registry
from lwm2m.model.values import ObjectLink
from lwm2m.operations.requests import Update

from .helpers import REGISTRY, Harness, code, decode, encode

STR = ResourceType.STRING
INT = ResourceType.INTEGER

# 0 label R string, 1 level RW int (writable by definition: the object still refuses), 2 act E
FIXED = ObjectDefinition(
    33010,
    "Fixed",
    version="1.0",
    multiple=True,
    resources=[
        ResourceDefinition(0, "label", Operations.R, False, False, STR),
        ResourceDefinition(1, "level", Operations.RW, False, False, INT),
        ResourceDefinition(2, "act", Operations.E, False, False, ResourceType.NONE),
    ],
)
REGISTRY.add(FIXED)
OID = FIXED.id


def component(iid: int, label: str, level: int = 1) -> ObjectInstance:
    return ObjectInstance(iid, [SingleResource(0, STR, label), SingleResource(1, INT, level)])


@pytest.fixture
def fixed() -> FixedObject:
    return FixedObject(FIXED, [component(1, "uicc"), component(0, "tee", 2)])


@pytest.fixture
def h(fixed: FixedObject) -> Harness:
    registry = default_registry()
    registry.add(FIXED)
    harness = Harness(objects=[fixed], registry=registry)
    harness.register_all()
    return harness


def test_instances_and_reads(fixed: FixedObject) -> None:
    assert fixed.instance_ids() == [0, 1]
    assert fixed.read(1) == component(1, "uicc")
    assert list(fixed.read(0, [1]).resources) == [1]
    assert fixed.read(0, [7]).resources == {}
    with pytest.raises(NotFound):
        fixed.read(5)
    assert repr(fixed) == "<FixedObject /33010 instances=[0, 1]>"


def test_dm_server_reads_discovers_and_composite_reads(h: Harness) -> None:
    node = decode(h.request(Code.GET, f"/{OID}"), f"/{OID}")
    assert isinstance(node, ObjectNode)
    assert sorted(node.instances) == [0, 1]
    response = h.request(Code.GET, f"/{OID}/1/0")
    assert (code(response), response.payload) == ("2.05", b"uicc")
    assert code(h.request(Code.GET, f"/{OID}/4")) == "4.04"
    links = decode_links(h.request(Code.GET, f"/{OID}", accept=CF.LINK).payload)
    assert [link.uri for link in links] == [
        f"/{OID}",
        f"/{OID}/0",
        f"/{OID}/0/0",
        f"/{OID}/0/1",
        f"/{OID}/0/2",
        f"/{OID}/1",
        f"/{OID}/1/0",
        f"/{OID}/1/1",
        f"/{OID}/1/2",
    ]
    codec = composite_codec_for(CF.SENML_JSON)
    body = codec.encode_paths([Path(OID, 0, 0), Path(OID, 1, 1)])
    response = h.request(Code.FETCH, "", payload=body, cf=CF.SENML_JSON)
    values = codec.decode_nodes(response.payload, REGISTRY)
    assert values == {
        Path(OID, 0, 0): SingleResource(0, STR, "tee"),
        Path(OID, 1, 1): SingleResource(1, INT, 1),
    }


@pytest.mark.parametrize(
    ("method", "path", "payload", "cf"),
    [
        (Code.PUT, f"/{OID}/0/1", b"5", CF.TEXT),  # writable by definition, refused anyway
        (Code.POST, f"/{OID}/0/2", b"", None),  # Execute
        (Code.DELETE, f"/{OID}/0", b"", None),
        (Code.POST, f"/{OID}", encode(component(0, "x", 3), f"/{OID}/0"), CF.TLV),  # Create
        (
            Code.POST,
            f"/{OID}/0",
            encode(ObjectInstance(0, [SingleResource(1, INT, 9)]), f"/{OID}/0"),
            CF.TLV,
        ),  # partial update
    ],
)
def test_changes_are_not_allowed(
    h: Harness, method: int, path: str, payload: bytes, cf: int | None
) -> None:
    assert code(h.request(method, path, payload=payload, cf=cf)) == "4.05"
    assert h.tree.instance_ids(OID) == [0, 1]
    assert h.tree.value(Path(OID, 0, 1)) == 2


def test_write_composite_on_a_fixed_object_changes_nothing(h: Harness) -> None:
    before = h.tree.read(Path(3, 0))
    body = f'[{{"n":"/3/0/14","vs":"+05"}},{{"n":"/{OID}/0/1","v":7}}]'.encode()
    assert code(h.request(Code.IPATCH, "", payload=body, cf=CF.SENML_JSON)) == "4.05"
    assert h.tree.value(Path(OID, 0, 1)) == 2
    assert h.tree.read(Path(3, 0)).resources.get(14) == before.resources.get(14)


def test_replace_notifies_observers(h: Harness, fixed: FixedObject) -> None:
    response = h.request(Code.GET, f"/{OID}/0/1", observe=0, token=b"o")
    assert (code(response), response.payload) == ("2.05", b"2")
    fixed.replace([component(1, "uicc"), component(0, "tee", 3)])
    h.advance(1)
    (notification,) = h.take_notifications()
    assert notification.message.payload == b"3"
    assert h.take(Update) == []  # same instances: no Registration Update


def test_replace_with_other_instances_updates_the_registration(
    h: Harness, fixed: FixedObject
) -> None:
    fixed.replace([component(0, "tee", 2), component(4, "ese")])
    h.advance(1)
    (update,) = h.take(Update)
    payload = update.message.payload.decode()
    assert f"</{OID}/4>" in payload
    assert f"</{OID}/1>" not in payload
    assert code(h.request(Code.GET, f"/{OID}/1")) == "4.04"


def test_snapshot_and_restore(fixed: FixedObject) -> None:
    state = fixed.snapshot()
    fixed.replace([component(3, "other")])
    assert fixed.instance_ids() == [3]
    fixed.restore(state)
    assert fixed.instance_ids() == [0, 1]
    assert fixed.read(0) == component(0, "tee", 2)
    fixed.replace([])
    assert fixed.instance_ids() == []
    fixed.restore(state)
    assert fixed.instance_ids() == [0, 1]  # the snapshot was not aliased


# -- Security object helpers --------------------------------------------------------------------


def _security(*extra: SingleResource) -> SecurityObject:
    security = SecurityObject(MemoryInstanceStore())
    base = [
        SingleResource(0, STR, "coaps://127.0.0.1:5684"),
        SingleResource(1, ResourceType.BOOLEAN, False),
        SingleResource(2, INT, int(SecurityMode.PSK)),
    ]
    security.create(ObjectInstance(0, base + list(extra)))
    return security


def test_credentials_of_a_missing_account() -> None:
    with pytest.raises(NotFound):
        _security().credentials(3)


def test_oscore_link() -> None:
    link = ObjectLink(21, 0)
    assert _security(SingleResource(17, ResourceType.OBJLNK, link)).oscore_link(0) == link
    null = ObjectLink(65535, 65535)
    assert _security(SingleResource(17, ResourceType.OBJLNK, null)).oscore_link(0) is None
    assert _security().oscore_link(0) is None


def test_key_material_stored_as_text_or_missing() -> None:
    """A store may hand identities back as text (e.g. a PSK identity): it reaches the transport
    as UTF-8 bytes; anything else counts as absent."""
    security = _security(SingleResource(3, STR, "device-1"), SingleResource(4, INT, 7))
    credentials = security.credentials(0)
    assert credentials.identity == b"device-1"
    assert credentials.server_public_key == b""
    assert credentials.mode is SecurityMode.PSK
    assert not credentials.secret_key
