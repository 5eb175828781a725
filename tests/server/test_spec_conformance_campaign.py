"""Spec-conformance campaign: the LwM2M server against LwM2M 1.1 Core / Transport rules.

Each test names the rule it checks (OMA-TS-LightweightM2M_Core-V1_1_1 "Core §x",
OMA-TS-LightweightM2M_Transport-V1_1_1 "Transport §x", and the reference notes in
``/work/shared/reference/spec-reference.md`` "ref §x"). Uplink requests go through
``LwM2MServer.handle_uplink`` with a fake clock wherever no peer is needed; downlink requests use
loopback sockets, as the other server tests do. Known deviations are ``xfail(strict=True)`` with
the rule they break.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.codec import codec_for, composite_codec_for
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest, Site
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.model import ObjectInstance, Path, ResourceType, SingleResource
from lwm2m.operations.requests import Execute, Read
from lwm2m.server.errors import ErrorResponse, InvalidResponse
from lwm2m.server.events import (
    Awake,
    Deregistered,
    Expired,
    Registered,
    SendReceived,
    ServerEvent,
    Updated,
)
from lwm2m.server.queue import QueueMode
from lwm2m.server.registration import ServerConfig
from lwm2m.server.requests import decode_client_response
from lwm2m.server.security import PeerIdentity
from lwm2m.testing import FakeClock

from .devices import MODEL, FakeClient, device_instance

ADDRESS = ("192.0.2.10", 41000)
OTHER_ADDRESS = ("192.0.2.11", 41001)
START = 1_000_000.0
TIMEOUT = 5
INT, BOOL = ResourceType.INTEGER, ResourceType.BOOLEAN


# -- helpers -------------------------------------------------------------------------------------


def register(
    query: list[str], links: bytes = b"</1/0>,</3/0>", content_format: int | None = 40
) -> Message:
    """A Register (``POST /rd``) with exactly ``query`` as its Uri-Query options."""
    return Message(Code.POST, links, uri_path="/rd", uri_query=query, content_format=content_format)


def update(location: tuple[str, ...], query: list[str], links: bytes = b"") -> Message:
    return Message(
        Code.POST,
        links,
        uri_path="/" + "/".join(location),
        uri_query=query,
        content_format=40 if links else None,
    )


def deregister(location: tuple[str, ...]) -> Message:
    return Message(Code.DELETE, uri_path="/" + "/".join(location))


def send_message(
    nodes: dict[Path, SingleResource], content_format: ContentFormat = ContentFormat.SENML_JSON
) -> Message:
    codec = composite_codec_for(content_format)
    payload = codec.encode_timestamped([TimestampedNodes(None, nodes)], MODEL)
    return Message(Code.POST, payload, uri_path="/dp", content_format=int(content_format))


class Clocked:
    """A started server with a fake clock, the events it published, and its clock."""

    def __init__(self, server: LwM2MServer, clock: FakeClock) -> None:
        self.server = server
        self.clock = clock
        self.events: list[ServerEvent] = []
        server.add_listener(self.events.append)

    async def uplink(
        self,
        message: Message,
        address: tuple[str, int] = ADDRESS,
        identity: PeerIdentity | None = None,
    ) -> Message:
        return await self.server.handle_uplink(message, address, identity)

    async def registered(self, query: list[str], links: bytes = b"</1/0>,</3/0>") -> Message:
        answer = await self.uplink(register(query, links))
        assert answer.code == Code.CREATED, answer.payload
        return answer

    def of(self, kind: type) -> list[ServerEvent]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
async def clocked() -> AsyncIterator[Clocked]:
    clock = FakeClock(START)
    server = LwM2MServer(clock=clock, expiry_interval=None)
    await server.start(("127.0.0.1", 0))
    try:
        yield Clocked(server, clock)
    finally:
        await server.stop()


# -- Register (Core §6.2.1, Transport §6.2 Table "Registration Interface") ----------------------


@pytest.mark.parametrize("query", [["lt=60", "lwm2m=1.1"], ["ep=", "lwm2m=1.1"]])
async def test_register_without_endpoint_name_is_4_00(clocked: Clocked, query: list[str]) -> None:
    """Core §6.2.1 / Transport response codes: 4.00 when "the mandatory parameter is not
    specified" — ``ep`` is the Register's mandatory parameter (ref §1.1)."""
    answer = await clocked.uplink(register(query))
    assert answer.code == Code.BAD_REQUEST
    assert await clocked.server.registrations() == []


async def test_register_answers_2_01_with_a_location_under_rd(clocked: Clocked) -> None:
    """Transport §6.2: "The LwM2M Server MUST return a location under the /rd path segment"
    (2.01 Created + Location-Path)."""
    answer = await clocked.registered(["ep=dev", "lwm2m=1.1"])
    assert answer.location_path[0] == "rd"
    assert len(answer.location_path) == 2
    registration = await clocked.server.registration("dev")
    assert registration is not None
    assert registration.location == "/" + "/".join(answer.location_path)


async def test_lifetime_defaults_to_86400_seconds(clocked: Clocked) -> None:
    """Core §6.2.1 Register parameters: ``lt`` is optional, default 86400 s (ref §1.1)."""
    await clocked.registered(["ep=dev", "lwm2m=1.1"])
    registration = await clocked.server.registration("dev")
    assert registration is not None
    assert registration.lifetime == 86400
    assert registration.expires_at() == START + 86400


@pytest.mark.parametrize("version", ["1.2", "2.0", "0.9", "1.10"])
async def test_unsupported_enabler_version_is_4_12(clocked: Clocked, version: str) -> None:
    """Core §6.2.1 / Transport response codes: 4.12 Precondition Failed when "Supported LwM2M
    Versions of the Server and the Client are not compatible" (this server: 1.0 and 1.1)."""
    answer = await clocked.uplink(register(["ep=dev", f"lwm2m={version}"]))
    assert answer.code == Code.PRECONDITION_FAILED
    assert await clocked.server.registration("dev") is None


@pytest.mark.parametrize("version", ["1.0", "1.1"])
async def test_supported_enabler_versions_register(clocked: Clocked, version: str) -> None:
    """Core §6.2.1: ``lwm2m`` is the enabler version; a 1.1 server accepts 1.1 and 1.0."""
    await clocked.registered(["ep=dev", f"lwm2m={version}"])
    registration = await clocked.server.registration("dev")
    assert registration is not None
    assert registration.version == version


@pytest.mark.parametrize("binding", ["U", "T", "S", "N", "UT", "US", "UTSN"])
async def test_lwm2m_1_1_bindings_are_accepted(clocked: Clocked, binding: str) -> None:
    """Core 1.1 §6.2.1 (ref §1.1): ``b`` is a set of U (UDP), T (TCP), S (SMS), N (Non-IP)."""
    await clocked.registered(["ep=dev", "lwm2m=1.1", f"b={binding}"])
    registration = await clocked.server.registration("dev")
    assert registration is not None
    assert (registration.binding, registration.queue_mode) == (binding, False)


@pytest.mark.parametrize(
    "binding",
    [
        "M",  # MQTT: LwM2M 1.2 only
        "H",  # HTTP: LwM2M 1.2 only
        "UQ",  # 1.0 queue forms are gone in 1.1
        "SQ",
        "UQS",
        "UU",  # each letter at most once
        "X",
    ],
)
async def test_bindings_outside_lwm2m_1_1_are_4_00(clocked: Clocked, binding: str) -> None:
    """Core 1.1 §6.2.1 (ref §1.1): ``M``/``H`` arrive in 1.2 and ``UQ``/``SQ``/``UQS`` are
    1.0 values; a 1.1 Register with them has an invalid parameter: 4.00."""
    answer = await clocked.uplink(register(["ep=dev", "lwm2m=1.1", f"b={binding}"]))
    assert answer.code == Code.BAD_REQUEST
    assert await clocked.server.registration("dev") is None


async def test_lwm2m_1_1_queue_mode_is_the_q_flag(clocked: Clocked) -> None:
    """Core 1.1 §6.2.1 / Transport §6.5 (ref §1.1, §1.5): queue mode is the valueless ``Q``
    parameter, separate from ``b``."""
    await clocked.registered(["ep=dev", "lwm2m=1.1", "b=U", "Q"])
    registration = await clocked.server.registration("dev")
    assert registration is not None
    assert (registration.binding, registration.queue_mode) == ("U", True)


@pytest.mark.parametrize(
    ("binding", "expected"),
    [("U", ("U", False)), ("UQ", ("U", True)), ("UQS", ("US", True)), ("SQ", ("S", True))],
)
async def test_lwm2m_1_0_queue_mode_is_in_the_binding(
    clocked: Clocked, binding: str, expected: tuple[str, bool]
) -> None:
    """Core 1.0 §5.3.1.1: a 1.0 client signals queue mode inside ``b`` (UQ, SQ, UQS)."""
    await clocked.registered(["ep=old", "lwm2m=1.0", f"b={binding}"])
    registration = await clocked.server.registration("old")
    assert registration is not None
    assert (registration.binding, registration.queue_mode) == expected


async def test_lwm2m_1_0_binding_t_is_4_00(clocked: Clocked) -> None:
    """Core 1.0 §5.3.1.1: TCP (``T``) is not a 1.0 binding mode."""
    answer = await clocked.uplink(register(["ep=old", "lwm2m=1.0", "b=T"]))
    assert answer.code == Code.BAD_REQUEST


async def test_sms_number_is_kept(clocked: Clocked) -> None:
    """Core §6.2.1: ``sms`` carries the client's MSISDN (Transport note: 3GPP TS 23.003 form,
    no leading "+")."""
    await clocked.registered(["ep=dev", "lwm2m=1.1", "b=US", "sms=33612345678"])
    registration = await clocked.server.registration("dev")
    assert registration is not None
    assert registration.sms_number == "33612345678"


async def test_sms_number_with_plus_is_4_00(clocked: Clocked) -> None:
    """Transport §6.2 note: the MSISDN is not preceded by "+"; an invalid parameter is 4.00."""
    answer = await clocked.uplink(register(["ep=dev", "lwm2m=1.1", "sms=+33612345678"]))
    assert answer.code == Code.BAD_REQUEST


async def test_root_link_carries_content_formats_and_ver_gives_object_versions(
    clocked: Clocked,
) -> None:
    """Core 1.1 §6.2.1 (ref §1.1): ``</>;rt="oma.lwm2m";ct=...`` advertises the supported
    content formats; ``ver`` on an object link gives its version, absent means 1.0."""
    links = b'</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3/0>,</5>'
    await clocked.registered(["ep=dev", "lwm2m=1.1"], links)
    registration = await clocked.server.registration("dev")
    assert registration is not None
    assert registration.root_path == "/"
    assert registration.content_formats == (110,)
    assert registration.object_versions == {1: "1.1", 3: "1.0", 5: "1.0"}
    assert registration.supports(110)
    assert not registration.supports(11542)


async def test_root_link_content_format_list(clocked: Clocked) -> None:
    """Core 1.1 §6.2.1: ``ct`` on the root link may list several formats (quoted, space
    separated, RFC 7252 §7.2.1)."""
    links = b'</>;ct="60 110 112 11542",</3/0>'
    await clocked.registered(["ep=dev", "lwm2m=1.1"], links)
    registration = await clocked.server.registration("dev")
    assert registration is not None
    assert registration.content_formats == (60, 110, 112, 11542)


async def test_alternate_path_is_parsed(clocked: Clocked) -> None:
    """Transport §6.2 "Alternate Path": a link with ``rt="oma.lwm2m"`` declares the path the
    objects live under; the object links are relative to it."""
    links = b'</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/3/0>,</lwm2m/5>'
    await clocked.registered(["ep=dev", "lwm2m=1.1"], links)
    registration = await clocked.server.registration("dev")
    assert registration is not None
    assert registration.root_path == "/lwm2m"
    assert registration.links.instances == (Path(1, 0), Path(3, 0), Path(5))


@pytest.mark.parametrize(
    "links",
    [
        b"</3/0>,garbage",  # not RFC 6690 link-format
        b"<not closed",
        b"</3/0>;",  # parameter without a name
        b"\xff\xfe</3/0>",  # not UTF-8
        b"</3/0/1>",  # deeper than an object instance
        b"</65535/0>",  # 65535 is a reserved id (Core §7.1, MAX_ID)
        b"</3>;ver=1",  # ver is MAJOR.MINOR
        b"</3>;ver=1.1,</3>;ver=1.0",  # one object, two versions
        b'</lwm2m>;rt="oma.lwm2m",</3/0>',  # a link outside the declared alternate path
        b'</a>;rt="oma.lwm2m",</b>;rt="oma.lwm2m",</a/3/0>',  # two alternate paths
        b'</>;ct="60 x",</3/0>',  # ct not a number
    ],
)
async def test_malformed_object_links_are_4_00(clocked: Clocked, links: bytes) -> None:
    """Core §6.2.1 / Transport response codes: a Register whose object links are malformed is
    a bad request (4.00), and nothing is registered."""
    answer = await clocked.uplink(register(["ep=dev", "lwm2m=1.1"], links))
    assert answer.code == Code.BAD_REQUEST
    assert await clocked.server.registrations() == []


@pytest.mark.parametrize("query", [["ep=d", "lt=abc"], ["ep=d", "lt=-5"], ["ep=d", "lt=0"]])
async def test_invalid_lifetime_is_4_00(clocked: Clocked, query: list[str]) -> None:
    """Core §6.2.1: ``lt`` is a number of seconds (a lifetime of 0 s or less is no lifetime);
    invalid values are 4.00."""
    answer = await clocked.uplink(register(query))
    assert answer.code == Code.BAD_REQUEST


async def test_a_repeated_parameter_is_4_00(clocked: Clocked) -> None:
    """Core §6.2.1 / Transport response codes: an ambiguous (repeated) parameter is a bad
    request."""
    answer = await clocked.uplink(register(["ep=d", "lt=60", "lt=70"]))
    assert answer.code == Code.BAD_REQUEST


# -- Update (Core §6.2.2) ------------------------------------------------------------------------


async def test_update_changes_only_the_parameters_it_carries(clocked: Clocked) -> None:
    """Core §6.2.2: an Update carries only the parameters that changed; the others keep their
    registered values, and the lifetime counts again from the Update."""
    answer = await clocked.registered(
        ["ep=dev", "lwm2m=1.1", "lt=300", "b=US", "sms=336"], b"</1/0>,</3/0>"
    )
    location = answer.location_path
    before = await clocked.server.registration("dev")
    assert before is not None

    clocked.clock.advance(100)
    assert (await clocked.uplink(update(location, ["lt=600"]))).code == Code.CHANGED
    after = await clocked.server.registration("dev")
    assert after is not None
    assert after.lifetime == 600
    assert (after.binding, after.sms_number, after.objects) == ("US", "336", before.objects)
    assert after.updated_at == START + 100
    assert after.expires_at() == START + 700
    assert after.id == before.id

    assert (await clocked.uplink(update(location, ["b=U"]))).code == Code.CHANGED
    again = await clocked.server.registration("dev")
    assert again is not None
    assert (again.lifetime, again.binding, again.sms_number) == (600, "U", "336")

    new_links = b"</1/0>,</3/0>,</5/0>"
    assert (await clocked.uplink(update(location, [], new_links))).code == Code.CHANGED
    last = await clocked.server.registration("dev")
    assert last is not None
    assert last.links.instances == (Path(1, 0), Path(3, 0), Path(5, 0))
    assert last.lifetime == 600

    updated = clocked.of(Updated)
    assert len(updated) == 3
    first = updated[0]
    assert isinstance(first, Updated)
    assert (first.old.lifetime, first.new.lifetime) == (300, 600)


async def test_update_from_a_new_address_moves_the_registration(clocked: Clocked) -> None:
    """Core §6.2.2 / Transport §6.5 (NAT rebinding): requests go to where the last Update came
    from."""
    location = (await clocked.registered(["ep=dev", "lwm2m=1.1"])).location_path
    answer = await clocked.uplink(update(location, []), address=OTHER_ADDRESS)
    assert answer.code == Code.CHANGED
    registration = await clocked.server.registration("dev")
    assert registration is not None
    assert registration.address == OTHER_ADDRESS


@pytest.mark.parametrize("path", ["/rd/unknown", "/rd/x/y"])
async def test_update_and_deregister_of_an_unknown_location_are_4_04(
    clocked: Clocked, path: str
) -> None:
    """Core §6.2.2, §6.2.3 / Transport response codes: 4.04 "URI of Update / De-register
    operation is not found"."""
    location = tuple(path.strip("/").split("/"))
    assert (await clocked.uplink(update(location, ["lt=60"]))).code == Code.NOT_FOUND
    assert (await clocked.uplink(deregister(location))).code == Code.NOT_FOUND


@pytest.mark.parametrize("query", [["lt=abc"], ["b=UQ"], ["b=M"], ["sms=+1"], ["lt=1", "lt=2"]])
async def test_invalid_update_is_4_00_and_changes_nothing(
    clocked: Clocked, query: list[str]
) -> None:
    """Core §6.2.2 / Transport response codes: an Update with an invalid parameter is 4.00;
    the registration stays as it was."""
    location = (await clocked.registered(["ep=dev", "lwm2m=1.1", "lt=300"])).location_path
    before = await clocked.server.registration("dev")
    answer = await clocked.uplink(update(location, query))
    assert answer.code == Code.BAD_REQUEST
    assert await clocked.server.registration("dev") == before


async def test_lwm2m_1_0_update_of_the_binding_leaves_queue_mode(clocked: Clocked) -> None:
    """Core 1.0 §5.3.2: a 1.0 client changes queue mode with ``b`` in an Update (UQ → U)."""
    location = (await clocked.registered(["ep=old", "lwm2m=1.0", "b=UQ"])).location_path
    assert (await clocked.uplink(update(location, ["b=U"]))).code == Code.CHANGED
    registration = await clocked.server.registration("old")
    assert registration is not None
    assert (registration.binding, registration.queue_mode) == ("U", False)


# -- De-register, lifetime, re-registration -----------------------------------------------------


async def test_deregister_ends_the_registration(clocked: Clocked) -> None:
    """Core §6.2.3: De-register answers 2.02 and removes the registration; its location is
    then unknown (4.04)."""
    location = (await clocked.registered(["ep=dev", "lwm2m=1.1"])).location_path
    assert (await clocked.uplink(deregister(location))).code == Code.DELETED
    assert await clocked.server.registration("dev") is None
    assert [e.registration.endpoint for e in clocked.of(Deregistered)] == ["dev"]
    assert (await clocked.uplink(update(location, []))).code == Code.NOT_FOUND
    assert (await clocked.uplink(deregister(location))).code == Code.NOT_FOUND


async def test_lifetime_expiry(clocked: Clocked) -> None:
    """Core §6.2.1 / §6.2.2: without an Update within ``lt`` seconds the registration ends
    (the server removes it); an Update before that restarts the lifetime."""
    location = (await clocked.registered(["ep=dev", "lwm2m=1.1", "lt=60"])).location_path
    clocked.clock.advance(59)
    assert (await clocked.uplink(update(location, []))).code == Code.CHANGED
    clocked.clock.advance(59)  # 118 s after the Register, 59 s after the Update
    assert await clocked.server.registration("dev") is not None
    assert await clocked.server.expire_registrations() == []

    clocked.clock.advance(2)  # 61 s after the Update
    assert await clocked.server.registration("dev") is None
    assert (await clocked.uplink(update(location, []))).code == Code.NOT_FOUND
    expired = await clocked.server.expire_registrations()
    assert [r.endpoint for r in expired] == ["dev"]
    assert [e.registration.endpoint for e in clocked.of(Expired)] == ["dev"]
    assert await clocked.server.registrations() == []


async def test_registering_again_replaces_the_old_registration(clocked: Clocked) -> None:
    """Core §6.2.1 (ref §1.1: a new session forces a new Register): a Register with an
    endpoint name already registered replaces that registration; the old location is gone."""
    old_location = (await clocked.registered(["ep=dev", "lwm2m=1.1", "lt=300"])).location_path
    old = await clocked.server.registration("dev")
    new_location = (
        await clocked.registered(["ep=dev", "lwm2m=1.1", "lt=900"], b"</3/0>")
    ).location_path
    assert new_location != old_location
    current = await clocked.server.registration("dev")
    assert current is not None
    assert current.lifetime == 900
    assert [r.id for r in await clocked.server.registrations()] == [current.id]
    last = clocked.of(Registered)[-1]
    assert isinstance(last, Registered)
    assert last.replaced == old
    assert (await clocked.uplink(update(old_location, []))).code == Code.NOT_FOUND
    assert (await clocked.uplink(update(new_location, []))).code == Code.CHANGED


# -- endpoint name vs authenticated identity (Transport §5.2.x "Endpoint Client Name") ----------


async def test_register_with_an_endpoint_name_not_matching_the_identity_is_4_00(
    clocked: Clocked, caplog: pytest.LogCaptureFixture
) -> None:
    """Transport §5.2 (ref §1.6 "Endpoint binding"): the server MUST compare ``ep`` with the
    (D)TLS identity and answer 4.00 on mismatch (Transport response codes: "Endpoint Client
    Name does not match ...")."""
    with caplog.at_level(logging.WARNING):
        answer = await clocked.uplink(
            register(["ep=dev1", "lwm2m=1.1"]), identity=PeerIdentity.psk("dev2")
        )
    assert answer.code == Code.BAD_REQUEST
    assert await clocked.server.registration("dev1") is None
    assert "'dev1'" in caplog.text
    assert "psk:dev2" in caplog.text
    ok = await clocked.uplink(register(["ep=dev1", "lwm2m=1.1"]), identity=PeerIdentity.psk("dev1"))
    assert ok.code == Code.CREATED


async def test_update_from_another_identity_is_4_00(clocked: Clocked) -> None:
    """Transport §5.2 / Core §6.2.2: only the authenticated client may update its
    registration; a request from another identity is 4.00."""
    psk = PeerIdentity.psk("dev1")
    answer = await clocked.uplink(register(["ep=dev1", "lwm2m=1.1"]), identity=psk)
    location = answer.location_path
    other = await clocked.uplink(update(location, ["lt=5"]), identity=PeerIdentity.psk("intruder"))
    assert other.code == Code.BAD_REQUEST
    plain = await clocked.uplink(deregister(location))
    assert plain.code == Code.BAD_REQUEST
    registration = await clocked.server.registration("dev1")
    assert registration is not None
    assert registration.lifetime == 86400


async def test_a_plain_register_does_not_take_over_a_secured_registration(
    clocked: Clocked, caplog: pytest.LogCaptureFixture
) -> None:
    """Transport §5.2: a registration made over (D)TLS is bound to its identity. Without a
    security store plain CoAP is allowed, but a plain Register of the same endpoint name must
    not replace the authenticated registration (4.00, logged); once that registration is gone,
    a plain Register is accepted again, and an authenticated one may always replace it."""
    psk = PeerIdentity.psk("dev1")
    first = await clocked.uplink(register(["ep=dev1", "lwm2m=1.1"]), identity=psk)
    assert first.code == Code.CREATED
    with caplog.at_level(logging.WARNING):
        hijack = await clocked.uplink(register(["ep=dev1", "lwm2m=1.1"]), address=OTHER_ADDRESS)
    assert hijack.code == Code.BAD_REQUEST
    assert "plain Register of 'dev1', which is registered as" in caplog.text
    registration = await clocked.server.registration("dev1")
    assert registration is not None
    assert registration.identity == psk
    again = await clocked.uplink(register(["ep=dev1", "lwm2m=1.1"]), identity=psk)
    assert again.code == Code.CREATED
    assert (
        await clocked.uplink(deregister(again.location_path), identity=psk)
    ).code == Code.DELETED
    plain = await clocked.uplink(register(["ep=dev1", "lwm2m=1.1"]), address=OTHER_ADDRESS)
    assert plain.code == Code.CREATED


# -- Send (Core §6.4.6: POST /dp, SenML JSON / CBOR) ---------------------------------------------


@pytest.mark.parametrize("content_format", [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR])
async def test_send_with_composite_paths_is_2_04(
    clocked: Clocked, content_format: ContentFormat
) -> None:
    """Core §6.4.6 (ref §1.1): Send is ``POST /dp`` with SenML JSON (110) or CBOR (112)
    carrying any set of paths; the server answers 2.04 and reports the data."""
    await clocked.registered(["ep=dev", "lwm2m=1.1"], b"</1/0>,</3/0>")
    nodes = {
        Path(3, 0, 9): SingleResource(9, INT, 42),
        Path(1, 0, 1): SingleResource(1, INT, 300),
    }
    answer = await clocked.uplink(send_message(nodes, content_format))
    assert answer.code == Code.CHANGED
    (event,) = clocked.of(SendReceived)
    assert isinstance(event, SendReceived)
    assert event.registration.endpoint == "dev"
    assert event.content_format == content_format
    (group,) = event.groups
    assert dict(group.nodes) == nodes


async def test_send_from_an_unregistered_peer_is_4_04(clocked: Clocked) -> None:
    """Core §6.4.6 / ref §1.1: a Send from a client without a registration is 4.04."""
    nodes = {Path(3, 0, 9): SingleResource(9, INT, 42)}
    assert (await clocked.uplink(send_message(nodes))).code == Code.NOT_FOUND
    location = (await clocked.registered(["ep=dev", "lwm2m=1.1"])).location_path
    assert (await clocked.uplink(send_message(nodes), address=OTHER_ADDRESS)).code == (
        Code.NOT_FOUND
    )
    assert (await clocked.uplink(deregister(location))).code == Code.DELETED
    assert (await clocked.uplink(send_message(nodes))).code == Code.NOT_FOUND
    assert clocked.of(SendReceived) == []


async def test_send_of_an_object_the_client_did_not_register_is_4_04(clocked: Clocked) -> None:
    """Core §6.4.6 response codes: 4.04 when a reported object is not registered."""
    await clocked.registered(["ep=dev", "lwm2m=1.1"], b"</1/0>,</3/0>")
    nodes = {Path(5, 0, 3): SingleResource(3, INT, 1)}
    answer = await clocked.uplink(send_message(nodes))
    assert answer.code == Code.NOT_FOUND
    assert clocked.of(SendReceived) == []


@pytest.mark.parametrize(
    "message",
    [
        Message(Code.POST, b"[{", uri_path="/dp", content_format=110),  # bad SenML JSON
        Message(Code.POST, b"\xff", uri_path="/dp", content_format=112),  # bad SenML CBOR
        Message(
            Code.POST,
            codec_for(ContentFormat.TLV).encode(device_instance(), Path(3, 0), MODEL),
            uri_path="/dp",
            content_format=11542,  # not a Send format
        ),
        Message(Code.POST, b'[{"n":"/3/0/9","v":1}]', uri_path="/dp"),  # no Content-Format
    ],
)
async def test_invalid_send_is_4_00(clocked: Clocked, message: Message) -> None:
    """Core §6.4.6 response codes: 4.00 for a Send the server cannot take (the payload must be
    SenML JSON or CBOR with a Content-Format)."""
    await clocked.registered(["ep=dev", "lwm2m=1.1"])
    answer = await clocked.uplink(message)
    assert answer.code == Code.BAD_REQUEST
    assert clocked.of(SendReceived) == []


# -- queue mode (Transport §6.5 "Queue Mode Operation") -----------------------------------------


def test_queue_mode_holds_requests_and_releases_them_one_at_a_time() -> None:
    """Transport §6.5: the server does not send to a sleeping queue-mode client, and since
    CoAP NSTART=1 it waits for each response before sending the next request; the client is
    reachable for a while (MAX_TRANSMIT_WAIT, 93 s) after its last message."""
    queue: QueueMode[str] = QueueMode(awake_time=93.0)
    queue.track("c", now=0.0)  # just registered: awake
    assert queue.is_awake("c", 92.9)
    assert queue.submit("c", "r1", now=1.0) is True  # awake, nothing in flight: send now
    assert queue.submit("c", "r2", now=1.0) is False  # one in flight: held
    assert queue.completed("c", now=2.0) == "r2"  # the response came: the next goes
    assert queue.completed("c", now=3.0) is None
    assert queue.get_timer() == 93.0
    assert queue.handle_timer(93.0) == ["c"]  # the awake window ended
    assert not queue.is_awake("c", 93.0)
    assert queue.submit("c", "r3", now=100.0) is False  # asleep: held
    assert queue.submit("c", "r4", now=100.0) is False
    assert queue.held("c") == 2
    assert queue.message_received("c", now=200.0) is True  # woke up (an Update, a Send ...)
    assert queue.release("c", now=200.0) == "r3"
    assert queue.release("c", now=200.0) is None  # one at a time
    assert queue.completed("c", now=201.0) == "r4"
    assert queue.message_received("c", now=202.0) is False  # already awake
    assert queue.awake_until("c") == 202.0 + 93.0


def test_a_request_that_times_out_puts_the_client_to_sleep() -> None:
    """Transport §6.5: when CoAP retransmissions fail the client is taken as offline; later
    requests wait for it to come back."""
    queue: QueueMode[str] = QueueMode(awake_time=93.0)
    queue.track("c", now=0.0)
    assert queue.submit("c", "r1", now=1.0)
    assert queue.timed_out("c", now=50.0) is True
    assert not queue.is_awake("c", 50.0)
    assert queue.submit("c", "r2", now=51.0) is False


async def test_queue_mode_client_awake_after_register_update_and_send(clocked: Clocked) -> None:
    """Transport §6.5: a queue-mode client is awake after each message it sends (Register,
    Update, Send) for the awake time (MAX_TRANSMIT_WAIT = 93 s by default), asleep after;
    the server reports it awake again when it is heard from."""
    location = (await clocked.registered(["ep=q", "lwm2m=1.1", "Q"])).location_path
    registration = await clocked.server.registration("q")
    assert registration is not None
    assert clocked.server.config.awake_time == 93.0
    assert clocked.server.is_awake(registration)
    clocked.clock.advance(92)
    assert clocked.server.is_awake(registration)
    clocked.clock.advance(2)
    assert not clocked.server.is_awake(registration)

    assert (await clocked.uplink(update(location, []))).code == Code.CHANGED
    assert clocked.server.is_awake(registration)
    assert len(clocked.of(Awake)) == 1

    clocked.clock.advance(100)
    assert not clocked.server.is_awake(registration)
    nodes = {Path(3, 0, 9): SingleResource(9, INT, 1)}
    assert (await clocked.uplink(send_message(nodes))).code == Code.CHANGED
    assert clocked.server.is_awake(registration)
    assert len(clocked.of(Awake)) == 2


async def test_a_client_without_queue_mode_is_always_reachable(clocked: Clocked) -> None:
    """Transport §6.5: only a client registered with ``Q`` is treated as sleeping."""
    await clocked.registered(["ep=u", "lwm2m=1.1"])
    registration = await clocked.server.registration("u")
    assert registration is not None
    clocked.clock.advance(10_000)
    assert clocked.server.is_awake(registration)


@pytest.fixture
async def queue_pair() -> AsyncIterator[tuple[LwM2MServer, FakeClient, FakeClock]]:
    """A queue-mode client on loopback registered with a fake-clock server."""
    clock = FakeClock(START)
    server = LwM2MServer(clock=clock, expiry_interval=None, config=ServerConfig())
    await server.start(("127.0.0.1", 0))
    client = FakeClient("q1")
    await client.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            assert (await client.register(server.local_address, queue=True)).code == Code.CREATED
        yield server, client, clock
    finally:
        await client.stop()
        await server.stop()


async def _yield_to_the_loop(times: int = 10) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


async def test_requests_to_a_sleeping_client_wait_for_its_update(
    queue_pair: tuple[LwM2MServer, FakeClient, FakeClock],
) -> None:
    """Transport §6.5: the server "does not immediately send downlink requests ... but waits
    until the LwM2M Client is online"; the client announces it is awake with an Update."""
    server, client, clock = queue_pair
    clock.advance(94)  # the awake window after the Register is over
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            read = asyncio.ensure_future(server.read("q1", "/3/0/9"))
            await _yield_to_the_loop()
            assert not read.done()
            assert client.received == []
            assert (await client.update(server.local_address)).code == Code.CHANGED
            await events.wait_for(Awake)
            response = await read
    assert response.content == SingleResource(9, INT, 87)
    assert [type(r) for r in client.received] == [Read]


async def test_a_notification_opens_an_awake_window(
    queue_pair: tuple[LwM2MServer, FakeClient, FakeClock],
) -> None:
    """Transport §6.5: any message from the client (a notification too, Information
    Reporting in queue mode) shows it is online."""
    server, client, clock = queue_pair
    async with asyncio.timeout(TIMEOUT):
        handle = await server.observe("q1", "/3/0/9")
        registration = await server.registration("q1")
        assert registration is not None
        clock.advance(94)
        assert not server.is_awake(registration)
        with server.subscribe() as events:
            client.set_resource(Path(3, 0, 9), 50)
            assert client.notify(Path(3, 0, 9)) == 1
            awake = await events.wait_for(Awake)
        assert awake.registration.endpoint == "q1"
        assert server.is_awake(registration)
        await handle.cancel(proactive=False)


# -- responses: the client's object versions and error codes (Core §6.3, §6.1.7 / Transport) ----


def _server_instance_1_1() -> ObjectInstance:
    return ObjectInstance(
        0,
        [SingleResource(0, INT, 1), SingleResource(1, INT, 300), SingleResource(23, BOOL, False)],
    )


@pytest.mark.parametrize(("links", "decodes"), [(b"</1>;ver=1.1,</1/0>", True), (b"</1/0>", False)])
async def test_responses_decode_with_the_object_versions_the_client_registered(
    clocked: Clocked, links: bytes, decodes: bool
) -> None:
    """Core 1.1 §6.2.1 (ref §1.1): ``ver`` tells the object version the client implements
    (absent: 1.0); the server interprets the client's payloads with that version. /1/x/23
    (Mute Send) exists in Server object 1.1, not in 1.0."""
    await clocked.registered(["ep=dev", "lwm2m=1.1"], links)
    registration = await clocked.server.registration("dev")
    assert registration is not None
    model = clocked.server.model_for(registration)
    payload = codec_for(ContentFormat.TLV).encode(
        _server_instance_1_1(), Path(1, 0), MODEL.view({1: "1.1"})
    )
    message = Message(Code.CONTENT, payload, content_format=int(ContentFormat.TLV))
    if decodes:
        response = decode_client_response(Read(Path(1, 0)), message, model, endpoint="dev")
        assert response.content == _server_instance_1_1()
    else:
        with pytest.raises(InvalidResponse, match="unknown resource 23"):
            decode_client_response(Read(Path(1, 0)), message, model, endpoint="dev")


@pytest.mark.parametrize(
    ("code", "dotted"),
    [
        (Code.BAD_REQUEST, "4.00"),
        (Code.UNAUTHORIZED, "4.01"),
        (Code.NOT_FOUND, "4.04"),
        (Code.METHOD_NOT_ALLOWED, "4.05"),
        (Code.NOT_ACCEPTABLE, "4.06"),
        (Code.UNSUPPORTED_CONTENT_FORMAT, "4.15"),
        (Code.INTERNAL_SERVER_ERROR, "5.00"),
    ],
)
def test_error_codes_become_typed_errors(code: int, dotted: str) -> None:
    """Transport response-code tables (Read: 4.00, 4.01, 4.04, 4.05, 4.06; 5.00 generic): a
    client's error answer is an ErrorResponse carrying the exact code and its diagnostic."""
    message = Message(code, b"why")
    with pytest.raises(ErrorResponse) as caught:
        decode_client_response(Read(Path(3, 0)), message, MODEL, endpoint="dev")
    assert caught.value.code == code
    assert caught.value.dotted_code == dotted
    assert caught.value.diagnostic == "why"
    assert caught.value.endpoint == "dev"


async def test_error_answer_over_loopback_is_an_error_response(
    clocked: Clocked,
) -> None:
    """Transport response codes: an Execute answered 4.01 (access right denied) reaches the
    caller as ErrorResponse(4.01)."""
    client = FakeClient("dev")
    await client.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            assert (await client.register(clocked.server.local_address)).code == Code.CREATED
            client.errors[Execute] = Code.UNAUTHORIZED
            with pytest.raises(ErrorResponse) as caught:
                await clocked.server.execute("dev", "/3/0/4")
    finally:
        await client.stop()
    assert caught.value.dotted_code == "4.01"


# -- alternate path on downlink requests (Transport §6.2 "Alternate Path") ----------------------


class AlternatePathClient:
    """A client whose objects live under ``/lwm2m`` only: every request's Uri-Path is kept;
    ``/lwm2m/3/0`` is served, anything else is 4.04."""

    def __init__(self) -> None:
        self.paths: list[tuple[str, ...]] = []
        self.endpoint: CoapEndpoint | None = None

    async def start(self) -> None:
        site = Site()
        site.add("/", self.handle)
        self.endpoint = await CoapEndpoint.create(site=site)

    def handle(self, request: CoapRequest) -> Message:
        path = tuple(request.message.uri_path)
        self.paths.append(path)
        if path != ("lwm2m", "3", "0"):
            return Message(Code.NOT_FOUND)
        payload = codec_for(ContentFormat.TLV).encode(device_instance(), Path(3, 0), MODEL)
        return Message(Code.CONTENT, payload, content_format=int(ContentFormat.TLV))


async def test_downlink_requests_use_the_alternate_path(clocked: Clocked) -> None:
    """Transport §6.2 "Alternate Path": requests go under the path the client declared."""
    client = AlternatePathClient()
    await client.start()
    assert client.endpoint is not None
    try:
        async with asyncio.timeout(TIMEOUT):
            links = b'</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/3/0>'
            message = register(["ep=alt", "lwm2m=1.1"], links)
            answer = await client.endpoint.request(message, clocked.server.local_address)
            assert answer.code == Code.CREATED
            response = await clocked.server.read("alt", "/3/0", accept=ContentFormat.TLV)
    finally:
        await client.endpoint.close()
    assert client.paths == [("lwm2m", "3", "0")]
    assert response.content == device_instance()
