"""Device Management end to end: Read at every level in every format, Discover, Write,
Write-Attributes, Execute, Create and Delete, and the error paths."""

from __future__ import annotations

import pytest

from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.codec.link import Attributes
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectNode,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
)
from lwm2m.server.errors import ErrorResponse
from lwm2m.server.events import Updated

from .conftest import ENDPOINT, Stack, Thermometer, bounded

STR, INT, FLOAT = ResourceType.STRING, ResourceType.INTEGER, ResourceType.FLOAT

LEVELS = {
    "object": (Path(3), ObjectNode),
    "instance": (Path(3, 0), ObjectInstance),
    "resource": (Path(3, 0, 0), SingleResource),
    "multiple resource": (Path(3, 0, 11), MultipleResource),
    "resource instance": (Path(3, 0, 11, 0), ResourceInstance),
}


@pytest.mark.parametrize("cf", [CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.JSON])
@pytest.mark.parametrize("level", list(LEVELS))
async def test_read_every_level_in_every_format(stack: Stack, cf: CF, level: str) -> None:
    await stack.start_client()
    path, kind = LEVELS[level]
    response = await bounded(stack.server.read(ENDPOINT, path, accept=cf))
    assert response.dotted_code == "2.05"
    assert response.content_format is cf
    assert isinstance(response.content, kind)
    node = response.content
    if isinstance(node, ObjectNode):
        node = node.instances[0]
    if isinstance(node, ObjectInstance):
        assert node.resources[0] == SingleResource(0, STR, "ACME")
        assert node.resources[1] == SingleResource(1, STR, "E2E")
    elif isinstance(node, SingleResource):
        assert node.value == "ACME"
    elif isinstance(node, MultipleResource):
        assert node.values == {0: 0}
    else:
        assert node == ResourceInstance(0, INT, 0)


@pytest.mark.parametrize("path", [Path(3, 0, 0), Path(3, 0, 11, 0)])
async def test_read_one_value_as_text(stack: Stack, path: Path) -> None:
    await stack.start_client()
    response = await bounded(stack.server.read(ENDPOINT, path, accept=CF.TEXT))
    assert response.content_format is CF.TEXT
    assert response.content is not None
    assert getattr(response.content, "value", None) in ("ACME", 0)


async def test_read_without_accept_uses_the_servers_preferred_format(stack: Stack) -> None:
    await stack.start_client()
    response = await bounded(stack.server.read(ENDPOINT, "/3/0"))
    assert response.content_format is CF.SENML_CBOR  # a 1.1 client that advertised it


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/3/0", CF.TEXT),  # text carries one value
        ("/3/0/0", CF.LWM2M_CBOR),  # a format the client does not support
        ("/3/0/0", CF.OPAQUE),  # not an opaque resource
    ],
)
async def test_unsupported_accept_is_4_06(stack: Stack, path: str, accept: CF) -> None:
    await stack.start_client()
    with pytest.raises(ErrorResponse) as caught:
        await bounded(stack.server.read(ENDPOINT, path, accept=accept))
    assert caught.value.code == 0x86  # 4.06 Not Acceptable


async def test_error_paths(stack: Stack) -> None:
    await stack.start_client()
    server = stack.server
    cases = [
        (server.read(ENDPOINT, "/42"), 0x84),  # unknown object: 4.04
        (server.read(ENDPOINT, "/3/7"), 0x84),  # unknown instance: 4.04
        (server.read(ENDPOINT, "/0"), 0x81),  # Security, by a DM server: 4.01
        (server.read(ENDPOINT, "/0/0/0"), 0x81),
        (server.execute(ENDPOINT, "/3/0/0"), 0x85),  # execute a readable resource: 4.05
        (server.write(ENDPOINT, "/3/0/0", SingleResource(0, STR, "x")), 0x85),  # read-only
        (server.delete(ENDPOINT, "/3/0"), 0x85),  # the Device instance cannot be deleted
    ]
    for request, code in cases:
        with pytest.raises(ErrorResponse) as caught:
            await bounded(request)
        assert caught.value.code == code, caught.value


async def test_write_replace_and_partial(stack: Stack) -> None:
    await stack.start_client()
    server = stack.server
    # partial update of the Device instance: only the given resources change
    await bounded(
        server.write(
            ENDPOINT,
            "/3/0",
            ObjectInstance(0, [SingleResource(14, STR, "+02:00"), SingleResource(15, STR, "X")]),
            replace=False,
        )
    )
    node = (await bounded(server.read(ENDPOINT, "/3/0", accept=CF.TLV))).content
    assert isinstance(node, ObjectInstance)
    assert node.resources[14].value == "+02:00"  # type: ignore[union-attr]
    assert node.resources[15].value == "X"  # type: ignore[union-attr]
    assert node.resources[0].value == "ACME"  # type: ignore[union-attr]
    # replace of one resource, in SenML JSON this time
    await bounded(
        server.write(
            ENDPOINT, "/3/0/14", SingleResource(14, STR, "-05:00"), content_format=CF.SENML_JSON
        )
    )
    response = await bounded(server.read(ENDPOINT, "/3/0/14", accept=CF.TEXT))
    assert response.content == SingleResource(14, STR, "-05:00")
    # replace of the Server instance: the writable resources get the new values
    current = (await bounded(server.read(ENDPOINT, "/1/0", accept=CF.TLV))).content
    assert isinstance(current, ObjectInstance)
    writable = [r for r in current.resources.values() if r.id not in (0,)]
    changed = [SingleResource(1, INT, 600) if r.id == 1 else r for r in writable]
    await bounded(server.write(ENDPOINT, "/1/0", ObjectInstance(0, changed)))
    await bounded(stack.events.wait_for(Updated, lambda e: e.new.lifetime == 600))


async def test_write_attributes_and_discover(stack: Stack) -> None:
    await stack.start_client()
    server = stack.server
    response = await bounded(
        server.write_attributes(ENDPOINT, "/3/0/9", Attributes(pmin=5, pmax=60, gt=50.0))
    )
    assert response.dotted_code == "2.04"
    await bounded(server.write_attributes(ENDPOINT, "/3/0", Attributes(pmax=120)))
    links = {
        link.uri: dict(link.params)
        for link in (await bounded(server.discover(ENDPOINT, "/3/0"))).links or ()
    }
    assert links["/3/0/9"] == {"pmin": "5", "pmax": "60", "gt": "50"}
    assert links["/3/0"] == {"pmax": "120"}
    assert links["/3/0/11"] == {"dim": "1"}
    # object-level Discover lists the version, the instance and its resources
    object_links = (await bounded(server.discover(ENDPOINT, "/3"))).links
    assert object_links is not None
    assert ("ver", "1.1") in object_links[0].params
    # unsetting an attribute
    await bounded(server.write_attributes(ENDPOINT, "/3/0/9", Attributes(unset=frozenset({"gt"}))))
    links = {
        link.uri: dict(link.params)
        for link in (await bounded(server.discover(ENDPOINT, "/3/0/9"))).links or ()
    }
    assert links["/3/0/9"] == {"pmin": "5", "pmax": "60"}


async def test_inconsistent_write_attributes_is_4_00(stack: Stack) -> None:
    await stack.start_client()
    server = stack.server
    await bounded(server.write_attributes(ENDPOINT, "/3/0/9", Attributes(gt=50.0)))
    # lt above the gt already attached: the merged set is inconsistent (Core §5.1.2)
    with pytest.raises(ErrorResponse) as caught:
        await bounded(server.write_attributes(ENDPOINT, "/3/0/9", Attributes(lt=60.0)))
    assert caught.value.code == 0x80
    # gt / lt / st on a non-numeric resource
    with pytest.raises(ErrorResponse) as caught:
        await bounded(server.write_attributes(ENDPOINT, "/3/0/0", Attributes(gt=1.0)))
    assert caught.value.code == 0x80


async def test_execute_with_arguments(stack: Stack) -> None:
    thermometer = Thermometer()
    await stack.start_client(objects=[thermometer])
    response = await bounded(stack.server.execute(ENDPOINT, "/3303/0/5605", "0='now',3"))
    assert response.dotted_code == "2.04"
    (arguments,) = thermometer.executed
    assert dict(arguments) == {0: "now", 3: None}
    with pytest.raises(ErrorResponse) as caught:  # malformed arguments
        await bounded(stack.server.execute(ENDPOINT, "/3303/0/5605", "x=1"))
    assert caught.value.code == 0x80


async def test_create_and_delete_an_application_object(stack: Stack) -> None:
    thermometer = Thermometer()
    await stack.start_client(objects=[thermometer])
    server = stack.server
    # Create with the instance id chosen by the server
    response = await bounded(
        server.create(ENDPOINT, "/3303", [ObjectInstance(5, [SingleResource(5750, STR, "room")])])
    )
    assert response.dotted_code == "2.01"
    updated = await bounded(stack.events.wait_for(Updated))
    assert "/3303/5" in {link.uri for link in updated.new.objects}
    # Create with the id chosen by the client
    response = await bounded(
        server.create(ENDPOINT, "/3303", resources=[SingleResource(5750, STR, "hall")])
    )
    assert response.location is not None
    new_id = int(response.location[-1])
    node = (await bounded(server.read(ENDPOINT, "/3303", accept=CF.SENML_JSON))).content
    assert isinstance(node, ObjectNode)
    assert set(node.instances) == {0, 5, new_id}
    assert node.instances[5].resources[5750].value == "room"  # type: ignore[union-attr]
    # Delete
    assert (await bounded(server.delete(ENDPOINT, "/3303/5"))).dotted_code == "2.02"
    with pytest.raises(ErrorResponse) as caught:
        await bounded(server.delete(ENDPOINT, "/3303/5"))
    assert caught.value.code == 0x84
    node = (await bounded(server.read(ENDPOINT, "/3303", accept=CF.TLV))).content
    assert isinstance(node, ObjectNode)
    assert set(node.instances) == {0, new_id}
    # creating an existing instance is refused
    with pytest.raises(ErrorResponse) as caught:
        await bounded(
            server.create(ENDPOINT, "/3303", [ObjectInstance(0, [SingleResource(5750, STR, "x")])])
        )
    assert caught.value.code == 0x80
