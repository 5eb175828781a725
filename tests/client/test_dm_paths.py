"""Device Management edge cases (LwM2M-TS-Core 1.1 §6.3; spec-reference §1.1 "DM & Service
Enablement"): error answers of each operation, replace vs partial update, Create with and
without content, Discover details, Write-Composite record validation.

Most cases go through the engine as CoAP messages; the few that the CoAP decoder already
refuses (so that :class:`~lwm2m.client.dm.DeviceManagement` never sees them from the network)
are fed to ``engine.dm`` directly, as the sans-IO layer below the decoder.
"""

from __future__ import annotations

import pytest

from lwm2m.client import SimpleInstance, SimpleObject
from lwm2m.coap.numbers import Code
from lwm2m.codec import composite_codec_for
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.codec.link import decode_links
from lwm2m.errors import BadRequest, MethodNotAllowed, NotFound, RequestError
from lwm2m.model import (
    MultipleResource,
    ObjectDefinition,
    ObjectInstance,
    ObjectNode,
    Operations,
    Path,
    ResourceDefinition,
    ResourceInstance,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import default_registry
from lwm2m.operations.requests import (
    Create,
    Delete,
    Discover,
    Execute,
    ReadComposite,
    WriteComposite,
)

from .helpers import REGISTRY, Harness, code, config, encode, server
from .test_dm import TEST_OBJECT

INT = ResourceType.INTEGER
STR = ResourceType.STRING
OID = TEST_OBJECT.id


@pytest.fixture
def h() -> Harness:
    test = SimpleObject(TEST_OBJECT, {0: SimpleInstance({0: "first", 1: 20.5, 2: [1, 2], 4: 1})})
    registry = default_registry()
    registry.add(TEST_OBJECT)
    harness = Harness(objects=[test], registry=registry)
    harness.register_all()
    return harness


# -- errors the decoder lets through --------------------------------------------------------------


def test_create_without_content_is_a_bad_request(h: Harness) -> None:
    response = h.request(Code.POST, f"/{OID}", payload=b"", cf=CF.TLV)
    assert code(response) == "4.00"
    assert h.tree.instance_ids(OID) == [0]
    with pytest.raises(BadRequest):
        h.engine.dm.handle(Create(Path(OID)), 101)


def test_create_on_an_object_without_factory_is_not_allowed() -> None:
    test = SimpleObject(TEST_OBJECT, {}, factory=None)
    registry = default_registry()
    registry.add(TEST_OBJECT)
    h = Harness(objects=[test], registry=registry)
    h.register_all()
    payload = encode(ObjectInstance(0, [SingleResource(4, INT, 1)]), f"/{OID}/0")
    assert code(h.request(Code.POST, f"/{OID}", payload=payload, cf=CF.TLV)) == "4.05"
    assert h.tree.instance_ids(OID) == []


def test_create_of_several_instances_is_all_or_nothing(h: Harness) -> None:
    node = ObjectNode(
        OID,
        [
            ObjectInstance(5, [SingleResource(4, INT, 5)]),
            ObjectInstance(0, [SingleResource(4, INT, 6)]),  # id in use
        ],
    )
    response = h.request(Code.POST, f"/{OID}", payload=encode(node, f"/{OID}"), cf=CF.TLV)
    assert code(response) == "4.00"
    assert h.tree.instance_ids(OID) == [0]
    node = ObjectNode(
        OID,
        [
            ObjectInstance(5, [SingleResource(4, INT, 5)]),
            ObjectInstance(6, [SingleResource(4, INT, 6)]),
        ],
    )
    response = h.request(Code.POST, f"/{OID}", payload=encode(node, f"/{OID}"), cf=CF.TLV)
    assert code(response) == "2.01"
    assert response.location_path == ()  # several instances: no single Location
    assert h.tree.instance_ids(OID) == [0, 5, 6]


def test_discover_of_a_resource_instance_is_a_bad_request(h: Harness) -> None:
    assert code(h.request(Code.GET, f"/{OID}/0/2/0", accept=CF.LINK)) == "4.00"
    with pytest.raises(BadRequest):
        h.engine.dm.handle(Discover(Path(OID, 0, 2, 0)), 101)


def test_discover_object_of_version_1_0_has_no_ver_and_shows_instance_attributes(
    h: Harness,
) -> None:
    assert code(h.request(Code.PUT, f"/{OID}/0/2/1", query=["pmin=3"])) == "2.04"
    links = decode_links(h.request(Code.GET, f"/{OID}", accept=CF.LINK).payload)
    by_uri = {link.uri: link for link in links}
    assert links[0].uri == f"/{OID}"
    assert by_uri[f"/{OID}"].version is None  # version 1.0: no ver
    assert by_uri[f"/{OID}/0/2"].dim == 2
    assert by_uri[f"/{OID}/0/2/1"].pmin == 3
    assert f"/{OID}/0/2/0" not in by_uri  # no attributes attached: not listed
    assert f"/{OID}/0/3" in by_uri  # executable resource listed though absent
    assert f"/{OID}/0/5" not in by_uri  # optional resource absent


def test_discover_of_an_absent_resource_is_not_found(h: Harness) -> None:
    assert code(h.request(Code.GET, f"/{OID}/0/5", accept=CF.LINK)) == "4.04"
    response = h.request(Code.GET, f"/{OID}/0/3", accept=CF.LINK)
    assert code(response) == "2.05"
    assert [link.uri for link in decode_links(response.payload)] == [f"/{OID}/0/3"]


def test_write_composite_without_records_is_a_bad_request(h: Harness) -> None:
    assert code(h.request(Code.IPATCH, "", payload=b"[]", cf=CF.SENML_JSON)) == "4.00"
    with pytest.raises(BadRequest):
        h.engine.dm.handle(WriteComposite({}), 101)


def test_write_composite_cannot_remove_a_single_resource(h: Harness) -> None:
    body = f'[{{"n":"/{OID}/0/0"}}]'.encode()
    response = h.request(Code.IPATCH, "", payload=body, cf=CF.SENML_JSON)
    assert code(response) == "4.00"
    assert b"only a resource instance can be removed" in response.payload
    assert h.tree.value(Path(OID, 0, 0)) == "first"


@pytest.mark.parametrize(
    ("path", "node", "error"),
    [
        (Path(OID, 0), ObjectInstance(0, [SingleResource(0, STR, "x")]), BadRequest),
        (Path(OID, 0, 2), SingleResource(2, INT, 3), BadRequest),  # multiple resource
        (Path(OID, 0, 0), ResourceInstance(0, STR, "x"), BadRequest),  # single resource
        (Path(OID, 0, 0), SingleResource(0, INT, 5), BadRequest),  # string expected
        (Path(OID, 0, 2, 0), ResourceInstance(0, STR, "x"), BadRequest),  # integer expected
        (Path(OID, 0, 1), SingleResource(1, ResourceType.FLOAT, 1.0), MethodNotAllowed),
        (Path(OID, 0, 3), SingleResource(3, ResourceType.NONE, None), MethodNotAllowed),
        (Path(OID, 7, 0), SingleResource(0, STR, "x"), NotFound),
        (Path(OID, 0, 9), SingleResource(9, STR, "x"), NotFound),
    ],
)
def test_write_composite_record_validation(
    h: Harness, path: Path, node: object, error: type[RequestError]
) -> None:
    """Records the SenML decoder would already refuse, checked again by the DM layer; a valid
    record next to the bad one is not applied (atomicity)."""
    records = {Path(OID, 0, 4): SingleResource(4, INT, 42), path: node}
    with pytest.raises(error):
        h.engine.dm.handle(WriteComposite(records), 101)  # type: ignore[arg-type]
    assert h.tree.value(Path(OID, 0, 4)) == 1


def test_write_composite_removes_and_adds_resource_instances(h: Harness) -> None:
    records = {
        Path(OID, 0, 2, 0): None,
        Path(OID, 0, 2, 9): ResourceInstance(9, INT, 90),
        Path(OID, 0, 0): SingleResource(0, STR, "z"),
    }
    h.engine.dm.handle(WriteComposite(records), 101)  # type: ignore[arg-type]
    assert h.tree.value(Path(OID, 0, 2)) == {1: 2, 9: 90}
    assert h.tree.value(Path(OID, 0, 0)) == "z"


def test_execute_and_delete_need_their_level(h: Harness) -> None:
    for path in (Path(OID), Path(OID, 0), Path(OID, 0, 2, 0)):
        with pytest.raises(MethodNotAllowed):
            h.engine.dm.handle(Execute(path), 101)
    for path in (Path(OID), Path(OID, 0, 0), Path(OID, 0, 2, 0)):
        with pytest.raises(MethodNotAllowed):
            h.engine.dm.handle(Delete(path), 101)
    assert h.tree.instance_ids(OID) == [0]
    # over CoAP the same requests are refused before reaching the DM layer
    assert code(h.request(Code.POST, f"/{OID}/0/2/0")) == "4.05"
    assert code(h.request(Code.DELETE, f"/{OID}/0/0")) == "4.05"


def test_execute_on_absent_instance_and_missing_resource(h: Harness) -> None:
    assert code(h.request(Code.POST, f"/{OID}/0/3")) == "4.05"  # no Execute action bound
    assert code(h.request(Code.POST, f"/{OID}/3/3")) == "4.04"
    assert code(h.request(Code.POST, f"/{OID}/0/99")) == "4.04"
    assert code(h.request(Code.POST, "/3/0/0")) == "4.05"  # Manufacturer: R only


def test_read_composite_without_paths_is_empty(h: Harness) -> None:
    assert h.engine.dm.handle(ReadComposite(()), 101).composite == {}
    response = h.request(Code.FETCH, "", payload=b"[]", cf=CF.SENML_JSON)
    assert (code(response), response.payload) == ("2.05", b"[]")


def test_read_composite_merges_overlapping_paths(h: Harness) -> None:
    codec = composite_codec_for(CF.SENML_JSON)
    content = h.engine.dm.read_composite(
        101, (Path(OID, 0, 2, 1), Path(OID, 0), Path(OID, 0), Path(OID, 9))
    )
    assert list(content) == [Path(OID, 0)]  # the narrower and the failing paths are gone
    body = codec.encode_paths([Path(OID, 9), Path(OID, 0, 9)])
    assert code(h.request(Code.FETCH, "", payload=body, cf=CF.SENML_JSON)) == "4.04"


def test_readable_follows_read(h: Harness) -> None:
    assert h.engine.dm.readable(101, Path(OID, 0, 0))
    assert not h.engine.dm.readable(101, Path(OID, 0, 3))  # executable: 4.05
    assert not h.engine.dm.readable(101, Path(OID, 8))
    assert not h.engine.dm.readable(101, Path(0, 0))


# -- Write: replace vs partial update -------------------------------------------------------------


def test_replace_instance_replaces_multiple_resources_wholly(h: Harness) -> None:
    node = ObjectInstance(0, [SingleResource(4, INT, 2), MultipleResource.of(2, INT, {5: 50})])
    payload = encode(node, f"/{OID}/0")
    assert code(h.request(Code.PUT, f"/{OID}/0", payload=payload, cf=CF.TLV)) == "2.04"
    assert h.tree.value(Path(OID, 0, 2)) == {5: 50}
    current = h.tree.read(Path(OID, 0))
    assert sorted(current.resources) == [1, 2, 4]  # optional 0 dropped, read-only 1 kept


def test_partial_update_keeps_resources_not_given(h: Harness) -> None:
    node = ObjectInstance(0, [MultipleResource.of(2, INT, {1: 10, 5: 50})])
    payload = encode(node, f"/{OID}/0")
    assert code(h.request(Code.POST, f"/{OID}/0", payload=payload, cf=CF.TLV)) == "2.04"
    assert h.tree.value(Path(OID, 0, 2)) == {0: 1, 1: 10, 5: 50}
    assert h.tree.value(Path(OID, 0, 0)) == "first"


def test_write_replace_on_resource_replaces_its_instances(h: Harness) -> None:
    node = MultipleResource.of(2, INT, {7: 70})
    payload = encode(node, f"/{OID}/0/2")
    assert code(h.request(Code.PUT, f"/{OID}/0/2", payload=payload, cf=CF.TLV)) == "2.04"
    assert h.tree.value(Path(OID, 0, 2)) == {7: 70}


@pytest.mark.parametrize(
    ("method", "path", "node", "at", "expected"),
    [
        # an undefined resource in the body: the payload is refused (the URI is fine)
        (Code.PUT, f"/{OID}/0", ObjectInstance(0, [SingleResource(9, STR, "x")]), None, "4.00"),
        # an instance that does not exist
        (Code.POST, f"/{OID}/4", ObjectInstance(4, [SingleResource(0, STR, "x")]), None, "4.04"),
        # the resource instance of a single resource: a path that cannot exist
        (Code.PUT, f"/{OID}/0/0/1", None, None, "4.00"),
        # a resource instance of a read-only multiple resource (/3/0/11 Error Code)
        (Code.PUT, "/3/0/11/0", None, None, "4.05"),
        # a resource instance of an absent instance
        (Code.PUT, f"/{OID}/4/2/0", None, None, "4.04"),
    ],
)
def test_write_errors_below_the_instance(
    h: Harness, method: int, path: str, node: object, at: str | None, expected: str
) -> None:
    if node is None:
        response = h.request(method, path, payload=b"1", cf=CF.TEXT)
    else:
        payload = encode(node, at or path)  # type: ignore[arg-type]
        response = h.request(method, path, payload=payload, cf=CF.TLV)
    assert code(response) == expected
    assert h.tree.value(Path(OID, 0, 0)) == "first"
    assert h.tree.value(Path(OID, 0, 2)) == {0: 1, 1: 2}


def test_write_attributes_on_absent_targets(h: Harness) -> None:
    assert code(h.request(Code.PUT, f"/{OID}/0/5", query=["pmin=1"])) == "4.04"
    assert code(h.request(Code.PUT, f"/{OID}/0/2/9", query=["pmin=1"])) == "4.04"
    # an executable resource exists but takes no attributes (Core §5.1.2: readable resources)
    assert code(h.request(Code.PUT, f"/{OID}/0/3", query=["pmin=1"])) == "4.05"


def test_delete_removes_the_attributes_below_the_instance(h: Harness) -> None:
    h.tree[OID].add_instance(3, {4: 3, 0: "three"})
    assert code(h.request(Code.PUT, f"/{OID}/3/0", query=["pmax=9"])) == "2.04"
    assert code(h.request(Code.DELETE, f"/{OID}/3")) == "2.02"
    h.tree[OID].add_instance(3, {4: 3, 0: "again"})
    links = decode_links(h.request(Code.GET, f"/{OID}/3/0", accept=CF.LINK).payload)
    assert [(link.uri, link.pmax) for link in links] == [(f"/{OID}/3/0", None)]


def test_two_servers_keep_separate_attributes() -> None:
    test = SimpleObject(TEST_OBJECT, {0: SimpleInstance({0: "a", 4: 1})})
    registry = default_registry()
    registry.add(TEST_OBJECT)
    acls = [{"object": OID, "instance": 0, "owner": 101, "rights": {"102": "R"}}]
    h = Harness(config(server(101), server(102), acl=acls), objects=[test], registry=registry)
    h.register_all()
    assert code(h.request(Code.PUT, f"/{OID}/0/0", query=["pmin=7"], ssid=101)) == "2.04"
    mine = decode_links(h.request(Code.GET, f"/{OID}/0/0", accept=CF.LINK, ssid=101).payload)
    theirs = decode_links(h.request(Code.GET, f"/{OID}/0/0", accept=CF.LINK, ssid=102).payload)
    assert (mine[0].pmin, theirs[0].pmin) == (7, None)


RANGED = ObjectDefinition(
    33020,
    "Ranged",
    version="1.0",
    multiple=True,
    resources=[
        ResourceDefinition(0, "level", Operations.RW, False, False, ResourceType.INTEGER, "0..100"),
        ResourceDefinition(
            1, "label", Operations.RW, False, False, ResourceType.STRING, "0..8 bytes"
        ),
        ResourceDefinition(2, "levels", Operations.RW, True, False, ResourceType.INTEGER, "0..100"),
        ResourceDefinition(3, "mode", Operations.RW, False, False, ResourceType.INTEGER, "8-Bits"),
    ],
)
REGISTRY.add(RANGED)


def test_a_value_outside_the_resource_range_is_4_00() -> None:
    """Core §7.2: a resource's RangeEnumeration bounds its values; a Write outside it is a bad
    request, at any level and in any format, and changes nothing. A range the model does not
    understand (``8-Bits``) checks nothing (lwm2m.model.ranges)."""
    ranged = SimpleObject(RANGED, {0: SimpleInstance({0: 50, 1: "ok", 2: [1, 2], 3: 0})})
    h = Harness(objects=[ranged])
    h.register_all()

    def put(path: str, payload: bytes, cf: int = CF.TEXT) -> tuple[str, bytes]:
        response = h.request(Code.PUT, path, payload=payload, cf=cf)
        return code(response), response.payload

    assert put("/33020/0/0", b"100") == ("2.04", b"")
    assert put("/33020/0/0", b"101") == ("4.00", b"/33020/*/0: 101 is outside the range '0..100'")
    assert put("/33020/0/1", "ÉÉÉÉ".encode()) == ("2.04", b"")  # 8 bytes in UTF-8
    assert put("/33020/0/1", "ÉÉÉÉx".encode()) == (
        "4.00",
        b"/33020/*/1: 9 bytes is outside the range '0..8 bytes'",
    )
    assert put("/33020/0/2/7", b"-1")[0] == "4.00"  # one resource instance
    assert put("/33020/0/3", b"4096") == ("2.04", b"")  # "8-Bits": not checked
    before = h.tree.read(Path(33020, 0))
    instance = ObjectInstance(
        0,
        [
            SingleResource(0, ResourceType.INTEGER, 1),
            MultipleResource(
                2,
                ResourceType.INTEGER,
                [
                    ResourceInstance(0, ResourceType.INTEGER, 5),
                    ResourceInstance(1, ResourceType.INTEGER, 500),
                ],
            ),
        ],
    )
    status, _ = put("/33020/0", encode(instance, "/33020/0"), CF.TLV)
    assert status == "4.00"
    assert h.tree.read(Path(33020, 0)) == before  # all or nothing
