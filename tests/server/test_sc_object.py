"""The server side of the Secure Component object (LwM2M-SCS-2): the identification parsed from a
read /33000 instance, kept beside the registration, and shown in one line."""

from __future__ import annotations

import sys

from lwm2m.cli.printing import server_event_line
from lwm2m.coap.numbers import Code
from lwm2m.codec.link import parse_links
from lwm2m.model import ObjectNode, Path
from lwm2m.operations.requests import Register, Update
from lwm2m.operations.responses import Response
from lwm2m.secure.interfaces import (
    ComponentInfo,
    ComponentType,
    DloaReference,
    Identifier,
)
from lwm2m.secure.object import SECURE_COMPONENT_OBJECT_ID, secure_component_instance
from lwm2m.server.errors import ErrorResponse
from lwm2m.server.events import (
    ComponentIdentified,
    Deregistered,
    Registered,
    SecureComponentReader,
    Updated,
)
from lwm2m.server.registration import (
    SECURE_COMPONENT_OBJECT_ID as SERVER_SIDE_ID,
)
from lwm2m.server.registration import (
    ComponentIdentification,
    ComponentIdentities,
    Registration,
    apply_update,
    component_identification,
    new_registration,
    secure_component_instances,
)

ADDRESS = ("192.0.2.1", 5683)
PLAIN = '</>;rt="oma.lwm2m";ct="60 110 112 11542",</1/0>,</3/0>'
WITH_SC = PLAIN + ",</33000/0>"

HARDWARE = ComponentInfo(
    ComponentType.UICC,
    True,
    "pcsc",
    label="IoT SAFE",
    manufacturer="ACME",
    serial_number="0042",
    identifiers=(Identifier("iccid", "89440000000000000001"), Identifier("eid", "8904")),
    dloa=(DloaReference("https://dloa.example/reg", "PLAT-1", "APP-7"),),
)
SOFTWARE = ComponentInfo(
    ComponentType.SOFTWARE, False, "soft", identifiers=(Identifier("soft-id", "c0ffee"),)
)


def registration(links: str, endpoint: str = "dev") -> Registration:
    request = Register(endpoint, lifetime=300, objects=tuple(parse_links(links)))
    return new_registration(
        request, registration_id=f"id-{endpoint}", address=ADDRESS, identity=None, now=0.0
    )


def test_the_server_uses_the_component_object_id() -> None:
    assert SERVER_SIDE_ID == SECURE_COMPONENT_OBJECT_ID


def test_identification_of_secure_hardware() -> None:
    found = component_identification(secure_component_instance(HARDWARE))
    assert found == ComponentIdentification(
        instance_id=0,
        component_type=1,
        secure_hardware=True,
        backend="pcsc",
        label="IoT SAFE",
        manufacturer="ACME",
        serial_number="0042",
        identifiers=("iccid:89440000000000000001", "eid:8904"),
        dloa=(("https://dloa.example/reg", "PLAT-1", "APP-7"),),
    )
    assert found.summary == (
        "/33000/0 UICC (pcsc) 'IoT SAFE' ACME serial=0042 — secure hardware; "
        "ids: iccid:89440000000000000001, eid:8904; dloa: https://dloa.example/reg PLAT-1 APP-7"
    )


def test_identification_of_a_software_component_says_so() -> None:
    node = ObjectNode(SECURE_COMPONENT_OBJECT_ID, [secure_component_instance(SOFTWARE, 3)])
    found = component_identification(node, 3)
    assert (found.instance_id, found.type_name, found.secure_hardware) == (3, "software", False)
    assert "software, not secure hardware" in found.summary
    assert "ids: soft-id:c0ffee; dloa: -" in found.summary


def test_listed_instances_and_lean_records() -> None:
    plain, with_sc = registration(PLAIN), registration(WITH_SC)
    assert secure_component_instances(plain) == ()
    assert secure_component_instances(with_sc) == (0,)
    # nothing was added to the record: a client without a component costs what it did
    assert not hasattr(plain, "__dict__")
    assert sys.getsizeof(plain) == sys.getsizeof(with_sc)
    assert "component" not in Registration.__slots__


def test_identities_are_kept_beside_the_registrations() -> None:
    identities = ComponentIdentities(size=2)
    one = component_identification(secure_component_instance(SOFTWARE))
    identities.set("a", (one,))
    identities.set("b", ())
    identities.set("c", (one,))
    assert (identities.get("a"), identities.get("c"), len(identities)) == ((), (one,), 2)
    identities.discard("c")
    identities.discard("missing")
    assert len(identities) == 1


async def test_the_reader_reads_stores_publishes_and_forgets() -> None:
    reads: list[tuple[str, Path]] = []
    published: list[ComponentIdentified] = []

    async def read(endpoint: str, path: Path) -> Response:
        reads.append((endpoint, path))
        return Response(Code.CONTENT, content=secure_component_instance(HARDWARE))

    reader = SecureComponentReader(read, published.append)
    plain, with_sc = registration(PLAIN), registration(WITH_SC)
    assert reader(Registered(plain)) is None  # no component listed: no request
    pending = reader(Registered(with_sc))
    assert pending is not None
    await pending
    assert reads == [("dev", Path(33000, 0))]
    (event,) = published
    assert event.registration is with_sc
    assert event.components[0].secure_hardware is True
    assert reader.identities.get(with_sc.id) == event.components
    line = server_event_line(event)
    assert "sc-identified" in line
    assert "UICC (pcsc)" in line
    assert "PLAT-1" in line
    # an Update that keeps the listing reads nothing; one that drops it forgets
    same = apply_update(
        with_sc, Update(with_sc.location, lifetime=60), address=ADDRESS, identity=None, now=1.0
    )
    assert reader(Updated(with_sc, same)) is None
    gone = apply_update(
        with_sc,
        Update(with_sc.location, objects=tuple(parse_links(PLAIN))),
        address=ADDRESS,
        identity=None,
        now=2.0,
    )
    assert reader(Updated(same, gone)) is None
    assert reader.identities.get(with_sc.id) == ()
    pending = reader(Updated(gone, same))
    assert pending is not None
    await pending
    assert reader(Deregistered(same)) is None
    assert len(reader.identities) == 0


async def test_a_failed_read_leaves_no_identification() -> None:
    published: list[ComponentIdentified] = []

    async def read(endpoint: str, path: Path) -> Response:
        raise ErrorResponse(Code.NOT_FOUND, "no such instance")

    reader = SecureComponentReader(read, published.append)
    with_sc = registration(WITH_SC)
    assert await reader.read(with_sc, (0,)) == ()
    (event,) = published
    assert event.components == ()
    assert "(could not be read)" in server_event_line(event)
