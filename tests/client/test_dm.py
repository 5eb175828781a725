"""Device Management requests fed as CoAP messages through decode_downlink into the engine
(LwM2M-TS-Core 1.1 §6.3), checking response codes and payloads."""

from __future__ import annotations

import pytest

from lwm2m.client import SimpleInstance, SimpleObject
from lwm2m.coap.numbers import Code
from lwm2m.codec import composite_codec_for
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.codec.link import decode_links
from lwm2m.errors import BadRequest
from lwm2m.model import (
    MultipleResource,
    ObjectDefinition,
    ObjectInstance,
    Operations,
    Path,
    ResourceDefinition,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import default_registry

from .helpers import REGISTRY, WALL, Harness, code, decode, encode

# A test object: 0 name RW string, 1 value R float, 2 setpoints RW multiple int,
# 3 reset E, 4 mandatory RW int, 5 optional RW opaque.
TEST_OBJECT = ObjectDefinition(
    33000,
    "Test",
    version="1.0",
    multiple=True,
    resources=[
        ResourceDefinition(0, "name", Operations.RW, False, False, ResourceType.STRING),
        ResourceDefinition(1, "value", Operations.R, False, False, ResourceType.FLOAT),
        ResourceDefinition(2, "setpoints", Operations.RW, True, False, ResourceType.INTEGER),
        ResourceDefinition(3, "reset", Operations.E, False, False, ResourceType.NONE),
        ResourceDefinition(4, "mode", Operations.RW, False, True, ResourceType.INTEGER),
        ResourceDefinition(5, "blob", Operations.RW, False, False, ResourceType.OPAQUE),
    ],
)
REGISTRY.add(TEST_OBJECT)


class Recorder(SimpleInstance):
    calls: list[tuple[int, dict[int, str | None]]] = []

    def execute(self, resource_id, arguments):  # type: ignore[no-untyped-def]
        Recorder.calls.append((resource_id, dict(arguments)))


@pytest.fixture
def h() -> Harness:
    test = SimpleObject(
        TEST_OBJECT,
        {0: Recorder({0: "first", 1: 20.5, 2: [1, 2], 4: 1})},
        factory=SimpleInstance,
    )
    registry = default_registry()
    registry.add(TEST_OBJECT)
    harness = Harness(objects=[test], registry=registry)
    harness.register_all()
    Recorder.calls = []
    return harness


def test_read_instance_defaults_to_tlv(h: Harness) -> None:
    response = h.request(Code.GET, "/3/0")
    assert code(response) == "2.05"
    assert response.content_format == CF.TLV
    node = decode(response, "/3/0")
    assert isinstance(node, ObjectInstance)
    assert node.resources[0].value == "ACME"  # type: ignore[union-attr]
    assert node.resources[13].value == int(WALL)  # type: ignore[union-attr]
    assert 4 not in node.resources  # executable resources are not read


def test_read_single_resource_defaults_to_text_and_opaque(h: Harness) -> None:
    response = h.request(Code.GET, "/3/0/0")
    assert (response.content_format, response.payload) == (CF.TEXT, b"ACME")
    h.request(Code.PUT, "/33000/0/5", payload=b"\x01\x02", cf=CF.OPAQUE)
    response = h.request(Code.GET, "/33000/0/5")
    assert (response.content_format, response.payload) == (CF.OPAQUE, b"\x01\x02")


@pytest.mark.parametrize("cf", [CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.JSON])
def test_read_with_accept(h: Harness, cf: CF) -> None:
    response = h.request(Code.GET, "/3/0", accept=cf)
    assert response.content_format == cf
    assert decode(response, "/3/0").resources[1].value == "M1"  # type: ignore[union-attr]


def test_read_object_and_resource_instance(h: Harness) -> None:
    node = decode(h.request(Code.GET, "/33000"), "/33000")
    assert list(node.instances) == [0]  # type: ignore[union-attr]
    response = h.request(Code.GET, "/33000/0/2/1")
    assert (response.content_format, response.payload) == (CF.TEXT, b"2")
    multi = decode(h.request(Code.GET, "/33000/0/2"), "/33000/0/2")
    assert isinstance(multi, MultipleResource)
    assert multi.values == {0: 1, 1: 2}


@pytest.mark.parametrize(
    ("path", "accept", "expected"),
    [
        ("/3/0", CF.TEXT, "4.06"),  # text carries one value
        ("/3/0", CF.LWM2M_CBOR, "4.06"),  # 1.2 only: not offered
        ("/3/0/0", CF.OPAQUE, "4.06"),  # a string is not opaque
        ("/3/0", 9999, "4.06"),  # unknown content format in Accept (RFC 7252 §5.10.4)
        ("/3/0/4", None, "4.05"),  # executable
        ("/33000/0/9", None, "4.04"),  # unknown resource
        ("/33000/7", None, "4.04"),
        ("/33000/0/2/9", None, "4.04"),
        ("/4444", None, "4.04"),  # object not implemented
        ("/0", None, "4.01"),  # bootstrap-only object
        ("/0/0/5", None, "4.01"),
        ("/21", None, "4.01"),
        ("/", None, "4.05"),
    ],
)
def test_read_errors(h: Harness, path: str, accept: int | None, expected: str) -> None:
    assert code(h.request(Code.GET, path, accept=accept)) == expected


def test_unknown_peer_is_unauthorized(h: Harness) -> None:
    from lwm2m.client import Peer

    assert code(h.request(Code.GET, "/3/0", peer=Peer(("10.0.0.9", 1)))) == "4.01"


def test_write_replace_resource_and_instance(h: Harness) -> None:
    assert code(h.request(Code.PUT, "/33000/0/0", payload=b"renamed", cf=CF.TEXT)) == "2.04"
    assert h.tree.value(Path(33000, 0, 0)) == "renamed"
    # replace the instance: optional writable resources not given (0, 2) are removed
    node = ObjectInstance(0, [SingleResource(4, ResourceType.INTEGER, 7)])
    assert code(h.request(Code.PUT, "/33000/0", payload=encode(node, "/33000/0"), cf=CF.TLV)) == (
        "2.04"
    )
    current = h.tree.read(Path(33000, 0))
    assert sorted(current.resources) == [1, 4]
    assert current.resources[4].value == 7


def test_write_partial_update_merges_multiple_resources(h: Harness) -> None:
    node = ObjectInstance(
        0,
        [
            SingleResource(0, ResourceType.STRING, "p"),
            MultipleResource.of(2, ResourceType.INTEGER, {1: 20, 5: 50}),
        ],
    )
    payload = encode(node, "/33000/0", CF.SENML_JSON)
    assert code(h.request(Code.POST, "/33000/0", payload=payload, cf=CF.SENML_JSON)) == "2.04"
    assert h.tree.value(Path(33000, 0, 2)) == {0: 1, 1: 20, 5: 50}
    assert h.tree.value(Path(33000, 0, 0)) == "p"


def test_write_replace_multiple_resource_and_resource_instance(h: Harness) -> None:
    multi = MultipleResource.of(2, ResourceType.INTEGER, {3: 30})
    assert code(h.request(Code.PUT, "/33000/0/2", payload=encode(multi, "/33000/0/2"), cf=CF.TLV))
    assert h.tree.value(Path(33000, 0, 2)) == {3: 30}
    assert code(h.request(Code.PUT, "/33000/0/2/4", payload=b"40", cf=CF.TEXT)) == "2.04"
    assert h.tree.value(Path(33000, 0, 2)) == {3: 30, 4: 40}


@pytest.mark.parametrize(
    ("path", "payload", "cf", "expected"),
    [
        ("/33000/0/1", b"3.5", CF.TEXT, "4.05"),  # read-only resource
        ("/3/0/0", b"x", CF.TEXT, "4.05"),
        ("/33000/0/0", b"x", None, "4.00"),  # no content format
        ("/33000/0/0", b"x", 9999, "4.15"),
        ("/33000/0/4", b"abc", CF.TEXT, "4.00"),  # not an integer
        ("/33000/9/0", b"x", CF.TEXT, "4.04"),
        ("/33000/0/9", b"x", CF.TEXT, "4.04"),
        ("/0/0/0", b"coap://x", CF.TEXT, "4.01"),
    ],
)
def test_write_errors(h: Harness, path: str, payload: bytes, cf: int | None, expected: str) -> None:
    assert code(h.request(Code.PUT, path, payload=payload, cf=cf)) == expected


def test_write_to_object_is_refused(h: Harness) -> None:
    from lwm2m.model import ObjectNode

    node = ObjectNode(33000, [ObjectInstance(0, [SingleResource(0, ResourceType.STRING, "a")])])
    assert code(h.request(Code.PUT, "/33000", payload=encode(node, "/33000"), cf=CF.TLV)) == "4.05"


def test_instance_write_with_read_only_resource_changes_nothing(h: Harness) -> None:
    node = ObjectInstance(
        0,
        [SingleResource(0, ResourceType.STRING, "new"), SingleResource(1, ResourceType.FLOAT, 1.0)],
    )
    response = h.request(Code.POST, "/33000/0", payload=encode(node, "/33000/0"), cf=CF.TLV)
    assert code(response) == "4.05"
    assert h.tree.value(Path(33000, 0, 0)) == "first"


def test_execute_with_arguments(h: Harness) -> None:
    assert code(h.request(Code.POST, "/33000/0/3", payload=b"0='on',3")) == "2.04"
    assert Recorder.calls == [(3, {0: "on", 3: None})]
    assert code(h.request(Code.POST, "/33000/0/3", payload=b"0=on")) == "4.00"
    assert code(h.request(Code.POST, "/33000/0/0")) == "4.05"
    assert code(h.request(Code.POST, "/33000/4/3")) == "4.04"


def test_create_with_and_without_instance_id(h: Harness) -> None:
    node = ObjectInstance(0, [SingleResource(4, ResourceType.INTEGER, 2)])
    payload = encode(node, "/33000/0")
    response = h.request(Code.POST, "/33000", payload=payload, cf=CF.TLV)
    assert code(response) == "2.01"
    assert response.location_path == ("33000", "1")  # the client chose the lowest free id
    from lwm2m.model import ObjectNode

    explicit = ObjectNode(33000, [ObjectInstance(9, [SingleResource(4, ResourceType.INTEGER, 3)])])
    response = h.request(Code.POST, "/33000", payload=encode(explicit, "/33000"), cf=CF.TLV)
    assert code(response) == "2.01"
    assert h.tree.instance_ids(33000) == [0, 1, 9]
    # Updates announce the new instances (the second waits for the first to be answered)
    (first,) = h.take()
    assert "</33000/1>" in first.message.payload.decode()
    h.respond(first)
    (second,) = h.take()
    assert "</33000/9>" in second.message.payload.decode()


def test_create_errors(h: Harness) -> None:
    from lwm2m.model import ObjectNode

    missing = ObjectInstance(0, [SingleResource(0, ResourceType.STRING, "no mode")])
    assert code(h.request(Code.POST, "/33000", payload=encode(missing, "/33000/0"), cf=CF.TLV)) == (
        "4.00"
    )
    taken = ObjectNode(33000, [ObjectInstance(0, [SingleResource(4, ResourceType.INTEGER, 1)])])
    assert code(h.request(Code.POST, "/33000", payload=encode(taken, "/33000"), cf=CF.TLV)) == (
        "4.00"
    )
    device = ObjectInstance(0, [SingleResource(14, ResourceType.STRING, "+01")])
    assert code(h.request(Code.POST, "/3", payload=encode(device, "/3/0"), cf=CF.TLV)) in (
        "4.00",
        "4.05",
    )
    assert h.tree.instance_ids(33000) == [0]


def test_create_ignores_read_only_values(h: Harness) -> None:
    node = ObjectInstance(
        0, [SingleResource(4, ResourceType.INTEGER, 5), SingleResource(1, ResourceType.FLOAT, 9.0)]
    )
    assert code(h.request(Code.POST, "/33000", payload=encode(node, "/33000/0"), cf=CF.TLV)) == (
        "2.01"
    )
    assert 1 not in h.tree.read(Path(33000, 1)).resources


def test_delete(h: Harness) -> None:
    assert code(h.request(Code.DELETE, "/33000/0")) == "2.02"
    assert h.tree.instance_ids(33000) == []
    assert code(h.request(Code.DELETE, "/33000/0")) == "4.04"
    assert code(h.request(Code.DELETE, "/33000")) == "4.05"
    assert code(h.request(Code.DELETE, "/3/0")) == "4.05"  # the device object refuses


def test_discover(h: Harness) -> None:
    h.request(Code.PUT, "/3/0", query=["pmin=10"])
    h.request(Code.PUT, "/3/0/11", query=["pmax=60"])
    response = h.request(Code.GET, "/3", accept=CF.LINK)
    assert response.content_format == CF.LINK
    links = {link.uri: link for link in decode_links(response.payload)}
    assert links["/3"].version == "1.1"
    assert links["/3/0"].pmin == 10
    assert links["/3/0/11"].dim == 1
    assert links["/3/0/11"].pmax == 60
    assert "/3/0/4" in links  # executable resources are listed
    response = h.request(Code.GET, "/33000/0", accept=CF.LINK)
    uris = [link.uri for link in decode_links(response.payload)]
    assert uris[0] == "/33000/0"
    assert "/33000" not in uris
    response = h.request(Code.GET, "/33000/0/2", accept=CF.LINK)
    (link,) = decode_links(response.payload)
    assert (link.uri, link.dim) == ("/33000/0/2", 2)
    assert code(h.request(Code.GET, "/0", accept=CF.LINK)) == "4.01"
    assert code(h.request(Code.GET, "/33000/5", accept=CF.LINK)) == "4.04"


def test_write_attributes(h: Harness) -> None:
    ok = ["pmin=1", "pmax=30", "gt=25", "lt=10", "st=2", "epmin=1", "epmax=20"]
    assert code(h.request(Code.PUT, "/33000/0/1", query=ok)) == "2.04"
    # unset one attribute, keep the others
    assert code(h.request(Code.PUT, "/33000/0/1", query=["st"])) == "2.04"
    links = decode_links(h.request(Code.GET, "/33000/0/1", accept=CF.LINK).payload)
    assert links[0].st is None
    assert links[0].gt == 25.0
    # a change that makes the merged set inconsistent: 4.00 and nothing changes
    assert code(h.request(Code.PUT, "/33000/0/1", query=["lt=30"])) == "4.00"
    assert code(h.request(Code.PUT, "/33000/0/1", query=["pmin=40"])) == "4.00"
    assert decode_links(h.request(Code.GET, "/33000/0/1", accept=CF.LINK).payload)[0].lt == 10.0


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("/33000/0", ["gt=5"], "4.00"),  # change-value attributes on an instance
        ("/33000/0/0", ["gt=5"], "4.00"),  # on a string
        ("/33000/0/2", ["gt=5"], "4.00"),  # on a multiple resource
        ("/33000/0/2/0", ["gt=5"], "2.04"),  # on a numeric resource instance
        ("/33000/0/1", ["gt=5", "lt=6"], "4.00"),
        ("/33000/0/1", ["bogus=1"], "4.00"),
        ("/33000", ["pmin=5"], "2.04"),
        ("/33000/3", ["pmin=5"], "4.04"),
        ("/0", ["pmin=5"], "4.01"),
    ],
)
def test_write_attributes_checks(h: Harness, path: str, query: list[str], expected: str) -> None:
    assert code(h.request(Code.PUT, path, query=query)) == expected


def test_read_composite(h: Harness) -> None:
    codec = composite_codec_for(CF.SENML_JSON)
    body = codec.encode_paths([Path(3, 0, 0), Path(33000, 0, 2), Path(33000, 5)])
    response = h.request(Code.FETCH, "", payload=body, cf=CF.SENML_JSON)
    assert code(response) == "2.05"
    assert response.content_format == CF.SENML_JSON
    nodes = codec.decode_nodes(response.payload, REGISTRY)
    assert nodes[Path(3, 0, 0)] == SingleResource(0, ResourceType.STRING, "ACME")
    assert Path(33000, 5) not in nodes  # best effort
    # Accept SenML CBOR; an Accept that cannot carry composite content is a 4.06
    assert h.request(Code.FETCH, "", payload=body, cf=CF.SENML_JSON, accept=CF.SENML_CBOR)
    assert code(h.request(Code.FETCH, "", payload=body, cf=CF.SENML_JSON, accept=CF.TLV)) == "4.06"
    only_bad = codec.encode_paths([Path(0, 0)])
    assert code(h.request(Code.FETCH, "", payload=only_bad, cf=CF.SENML_JSON)) == "4.01"


def _composite(records: str) -> bytes:
    return records.encode()


def test_write_composite_applies_all(h: Harness) -> None:
    body = b'[{"n":"/33000/0/0","vs":"x"},{"n":"/33000/0/2/7","v":70},{"n":"/3/0/14","vs":"+02"}]'
    assert code(h.request(Code.IPATCH, "", payload=body, cf=CF.SENML_JSON)) == "2.04"
    assert h.tree.value(Path(33000, 0, 0)) == "x"
    assert h.tree.value(Path(33000, 0, 2)) == {0: 1, 1: 2, 7: 70}
    assert h.tree.value(Path(3, 0, 14)) == "+02"
    # a record without value removes a resource instance
    body = b'[{"n":"/33000/0/2/0"}]'
    assert code(h.request(Code.IPATCH, "", payload=body, cf=CF.SENML_JSON)) == "2.04"
    assert h.tree.value(Path(33000, 0, 2)) == {1: 2, 7: 70}


@pytest.mark.parametrize(
    "body",
    [
        b'[{"n":"/33000/0/0","vs":"x"},{"n":"/33000/0/1","v":1.5}]',  # read-only
        b'[{"n":"/33000/0/0","vs":"x"},{"n":"/33000/8/0","vs":"y"}]',  # missing instance
        b'[{"n":"/33000/0/0","vs":"x"},{"n":"/0/0/0","vs":"coap://h"}]',  # bootstrap-only
        b'[{"n":"/33000/0/0","vs":"x"},{"n":"/33000/0/2/9"}]',  # absent resource instance
        b'[{"n":"/33000/0/0","vs":"x"},{"n":"/33000/0/0"}]',  # delete a single resource
    ],
)
def test_write_composite_is_atomic_on_validation(h: Harness, body: bytes) -> None:
    assert code(h.request(Code.IPATCH, "", payload=body, cf=CF.SENML_JSON)).startswith("4.")
    assert h.tree.value(Path(33000, 0, 0)) == "first"


def test_write_composite_rolls_back_on_handler_failure(h: Harness) -> None:
    class Picky(SimpleInstance):
        def write_resource(self, resource_id, value):  # type: ignore[no-untyped-def]
            if value == "boom":
                raise BadRequest("refused by the device")
            super().write_resource(resource_id, value)

    h.tree[33000].add_instance(1, Picky({0: "one", 4: 1}))
    body = (
        b'[{"n":"/33000/0/0","vs":"changed"},{"n":"/3/0/15","vs":"Europe/Paris"},'
        b'{"n":"/33000/1/0","vs":"boom"}]'
    )
    assert code(h.request(Code.IPATCH, "", payload=body, cf=CF.SENML_JSON)) == "4.00"
    assert h.tree.value(Path(33000, 0, 0)) == "first"
    assert h.tree.value(Path(33000, 1, 0)) == "one"
    assert 15 not in h.tree.read(Path(3, 0)).resources


def test_fetch_on_a_path_is_refused(h: Harness) -> None:
    body = composite_codec_for(CF.SENML_JSON).encode_paths([Path(3, 0, 0)])
    assert code(h.request(Code.FETCH, "/3", payload=body, cf=CF.SENML_JSON)) == "4.05"


def test_bootstrap_server_operations_from_a_dm_server_are_refused(h: Harness) -> None:
    assert code(h.request(Code.POST, "/bs")) == "4.04"
    assert Code.CHANGED  # keep the import used
