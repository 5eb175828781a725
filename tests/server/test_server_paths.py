"""Registration-interface paths of the server service driven through ``handle_uplink`` with a
fake clock (LwM2M-TS-Core §6.2; spec-reference §1.1): validation codes, rejected requests that
must leave the stored registration untouched, the endpoint / identity check, lifetime expiry."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.server.errors import NotRegistered
from lwm2m.server.events import Registered, ServerEvent, Updated
from lwm2m.server.registration import ServerConfig
from lwm2m.server.security import PeerIdentity, SecurityInfo
from lwm2m.store.memory import MemorySecurityStore
from lwm2m.store.sqlite import SqliteRegistrationStore
from lwm2m.testing import FakeClock

from .devices import FakeClient, register_message
from .test_queue_mode import TIMEOUT, sleepy

__all__ = ["sleepy"]  # the fixture, shared with the queue-mode tests

ADDRESS = ("192.0.2.7", 40000)
OTHER_ADDRESS = ("192.0.2.8", 40001)
PSK = PeerIdentity.psk("dev1")


def _register(*query: str, payload: bytes = b"</3/0>", content_format: int | None = 40) -> Message:
    return Message(
        Code.POST, payload, uri_path="/rd", uri_query=list(query), content_format=content_format
    )


async def _registered(server: LwM2MServer, endpoint: str = "dev1", **kwargs: object) -> str:
    identity = kwargs.pop("identity", None)
    answer = await server.handle_uplink(
        register_message(endpoint, **kwargs),  # type: ignore[arg-type]
        ADDRESS,
        identity,  # type: ignore[arg-type]
    )
    assert answer.code == Code.CREATED
    return "/".join(answer.location_path)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (_register("lt=60", "lwm2m=1.1"), Code.BAD_REQUEST),  # no ep
        (_register("ep=", "lwm2m=1.1"), Code.BAD_REQUEST),
        (_register("ep=" + "x" * 256, "lwm2m=1.1"), Code.BAD_REQUEST),
        (_register("ep=a\x01b", "lwm2m=1.1"), Code.BAD_REQUEST),
        (_register("ep=d", "ep=e", "lwm2m=1.1"), Code.BAD_REQUEST),
        (_register("ep=d", "lt=-5", "lwm2m=1.1"), Code.BAD_REQUEST),
        (_register("ep=d", "lt=1.5", "lwm2m=1.1"), Code.BAD_REQUEST),
        (_register("ep=d", "lwm2m=1.1", "b=UU"), Code.BAD_REQUEST),
        (_register("ep=d", "lwm2m=1.1", "b=M"), Code.BAD_REQUEST),  # 1.2 only
        (_register("ep=d", "lwm2m=1.0", "b=UT"), Code.BAD_REQUEST),  # not a 1.0 binding
        (_register("ep=d", "lwm2m=1.1", "sms=+33612345678"), Code.BAD_REQUEST),
        (_register("ep=d", "lwm2m=1.1", payload=b"\xff\xfe"), Code.BAD_REQUEST),
        (_register("ep=d", "lwm2m=1.1", content_format=0), Code.UNSUPPORTED_CONTENT_FORMAT),
        (_register("ep=d", "lwm2m=2.0"), Code.PRECONDITION_FAILED),
        (_register("ep=d", "lwm2m=x"), Code.PRECONDITION_FAILED),
    ],
)
async def test_invalid_registers_get_their_code_and_store_nothing(
    message: Message, code: int
) -> None:
    server = LwM2MServer(expiry_interval=None)
    events: list[ServerEvent] = []
    server.add_listener(events.append)
    answer = await server.handle_uplink(message, ADDRESS, None)
    assert answer.code == code
    assert answer.location_path == ()
    assert await server.registrations() == []
    assert events == []


async def test_lifetime_bounds_of_the_server_config() -> None:
    server = LwM2MServer(
        expiry_interval=None, config=ServerConfig(min_lifetime=30, max_lifetime=3600)
    )
    for lifetime, code in ((29, Code.BAD_REQUEST), (3601, Code.BAD_REQUEST), (30, Code.CREATED)):
        answer = await server.handle_uplink(register_message("d", lifetime=lifetime), ADDRESS, None)
        assert answer.code == code, lifetime
    reg = await server.registration("d")
    assert reg is not None
    assert reg.lifetime == 30


async def test_missing_lifetime_defaults_to_86400() -> None:
    server = LwM2MServer(expiry_interval=None)
    answer = await server.handle_uplink(_register("ep=d", "lwm2m=1.1"), ADDRESS, None)
    assert answer.code == Code.CREATED
    reg = await server.registration("d")
    assert reg is not None
    assert reg.lifetime == 86400


@pytest.mark.parametrize(
    "query",
    [
        ["lt=0"],
        ["lt=abc"],
        ["b=UQ"],  # a 1.0 binding from a 1.1 client
        ["b=UU"],
        ["sms=+4912"],
        ["lt=60", "lt=70"],
    ],
)
async def test_a_rejected_update_leaves_the_registration_untouched(query: list[str]) -> None:
    clock = FakeClock(1_000.0)
    server = LwM2MServer(clock=clock, expiry_interval=None)
    location = await _registered(server, lifetime=120)
    before = await server.registration("dev1")
    events: list[ServerEvent] = []
    server.add_listener(events.append)
    clock.advance(10)
    answer = await server.handle_uplink(
        Message(Code.POST, uri_path=location, uri_query=query), OTHER_ADDRESS, None
    )
    assert answer.code == Code.BAD_REQUEST
    assert await server.registration("dev1") == before  # lifetime not restarted, address kept
    assert events == []


async def test_an_update_with_bad_object_links_keeps_the_old_links() -> None:
    server = LwM2MServer(expiry_interval=None)
    location = await _registered(server)
    before = await server.registration("dev1")
    assert before is not None
    bad = Message(Code.POST, b"</3/0/1/2>", uri_path=location, content_format=40)
    assert (await server.handle_uplink(bad, ADDRESS, None)).code == Code.BAD_REQUEST
    after = await server.registration("dev1")
    assert after is not None
    assert after.links == before.links
    good = Message(Code.POST, b"</3/0>,</5/0>", uri_path=location, content_format=40)
    assert (await server.handle_uplink(good, ADDRESS, None)).code == Code.CHANGED
    updated = await server.registration("dev1")
    assert updated is not None
    assert [link.uri for link in updated.objects] == ["/3/0", "/5/0"]


async def test_an_update_changes_lifetime_binding_sms_and_address() -> None:
    clock = FakeClock(1_000.0)
    server = LwM2MServer(clock=clock, expiry_interval=None)
    location = await _registered(server, lifetime=120)
    clock.advance(50)
    update = Message(Code.POST, uri_path=location, uri_query=["lt=600", "b=UT", "sms=4912"])
    with server.subscribe() as events:
        assert (await server.handle_uplink(update, OTHER_ADDRESS, None)).code == Code.CHANGED
        event = await events.wait_for(Updated)
    new = event.new
    assert (new.lifetime, new.binding, new.sms_number, new.address) == (
        600,
        "UT",
        "4912",
        OTHER_ADDRESS,
    )
    assert (new.registered_at, new.updated_at) == (1_000.0, 1_050.0)
    assert await server.store.get_by_address(OTHER_ADDRESS) == new
    assert await server.store.get_by_address(ADDRESS) is None


@pytest.mark.parametrize("location", ["rd/nope", "rd/a/b"])
async def test_update_and_deregister_of_unknown_locations_get_4_04(location: str) -> None:
    server = LwM2MServer(expiry_interval=None)
    await _registered(server)
    for code in (Code.POST, Code.DELETE):
        answer = await server.handle_uplink(Message(code, uri_path=location), ADDRESS, None)
        assert answer.code == Code.NOT_FOUND
    assert [r.endpoint for r in await server.registrations()] == ["dev1"]


async def test_a_rejected_register_does_not_replace_the_existing_registration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = LwM2MServer(expiry_interval=None)
    await _registered(server, identity=PSK)
    before = await server.registration("dev1")
    # invalid Register of the same endpoint: 4.00, the old registration stays
    answer = await server.handle_uplink(register_message("dev1", lifetime=0), ADDRESS, PSK)
    assert answer.code == Code.BAD_REQUEST
    assert await server.registration("dev1") == before
    # a Register of dev1 under another authenticated identity: 4.00, logged, nothing replaced
    with caplog.at_level(logging.WARNING, logger="lwm2m"):
        answer = await server.handle_uplink(
            register_message("dev1"), OTHER_ADDRESS, PeerIdentity.psk("mallory")
        )
    assert answer.code == Code.BAD_REQUEST
    assert "'dev1' does not match the authenticated identity" in caplog.text
    assert "mallory" in caplog.text
    assert await server.registration("dev1") == before


async def test_plain_requests_cannot_touch_a_registration_with_a_security_entry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemorySecurityStore([SecurityInfo("dev1", PSK)])
    server = LwM2MServer(security_store=store, expiry_interval=None)
    location = await _registered(server, identity=PSK)
    before = await server.registration("dev1")
    with caplog.at_level(logging.WARNING, logger="lwm2m"):
        for code in (Code.POST, Code.DELETE):
            answer = await server.handle_uplink(Message(code, uri_path=location), ADDRESS, None)
            assert answer.code == Code.BAD_REQUEST
        answer = await server.handle_uplink(register_message("dev1"), ADDRESS, None)
        assert answer.code == Code.BAD_REQUEST
    assert "NoSec" in caplog.text
    assert await server.registration("dev1") == before


async def test_without_allow_plain_an_unknown_nosec_client_is_refused() -> None:
    store = MemorySecurityStore([SecurityInfo.nosec("open")])
    server = LwM2MServer(security_store=store, allow_plain=False, expiry_interval=None)
    answer = await server.handle_uplink(register_message("stranger"), ADDRESS, None)
    assert answer.code == Code.BAD_REQUEST
    answer = await server.handle_uplink(register_message("open"), ADDRESS, None)
    assert answer.code == Code.CREATED
    # a NoSec entry accepts plain CoAP only
    answer = await server.handle_uplink(register_message("open"), ADDRESS, PeerIdentity.psk("open"))
    assert answer.code == Code.BAD_REQUEST
    assert [r.endpoint for r in await server.registrations()] == ["open"]


async def test_plain_requests_cannot_touch_a_dtls_registration_without_a_store() -> None:
    server = LwM2MServer(expiry_interval=None)
    location = await _registered(server, identity=PSK)
    before = await server.registration("dev1")
    update = Message(Code.POST, uri_path=location, uri_query=["lt=999"])
    assert (await server.handle_uplink(update, OTHER_ADDRESS, None)).code == Code.BAD_REQUEST
    delete = Message(Code.DELETE, uri_path=location)
    assert (await server.handle_uplink(delete, OTHER_ADDRESS, None)).code == Code.BAD_REQUEST
    assert await server.registration("dev1") == before


async def test_registering_again_replaces_and_the_old_location_is_gone() -> None:
    server = LwM2MServer(expiry_interval=None)
    first = await _registered(server)
    with server.subscribe() as events:
        second = await _registered(server, lifetime=90)
        event = await events.wait_for(Registered)
    assert first != second
    assert event.replaced is not None
    assert event.replaced.location == "/" + first
    answer = await server.handle_uplink(Message(Code.POST, uri_path=first), ADDRESS, None)
    assert answer.code == Code.NOT_FOUND
    assert (
        await server.handle_uplink(Message(Code.DELETE, uri_path=second), ADDRESS, None)
    ).code == (Code.DELETED)
    assert await server.registrations() == []


async def test_expiry_is_exact_at_the_lifetime_boundary() -> None:
    clock = FakeClock(1_000.0)
    server = LwM2MServer(clock=clock, expiry_interval=None)
    await _registered(server, lifetime=60)
    clock.advance(60)
    assert await server.expire_registrations() == []  # not before lt has fully elapsed
    clock.advance(0.5)
    assert [r.endpoint for r in await server.expire_registrations()] == ["dev1"]
    assert await server.expire_registrations() == []


async def test_an_update_after_the_lifetime_is_4_04() -> None:
    clock = FakeClock(1_000.0)
    server = LwM2MServer(clock=clock, expiry_interval=None)
    location = await _registered(server, lifetime=60)
    clock.advance(120)
    answer = await server.handle_uplink(Message(Code.POST, uri_path=location), ADDRESS, None)
    assert answer.code == Code.NOT_FOUND
    assert await server.registration("dev1") is None


async def test_a_huge_lifetime_survives_a_sqlite_restart(tmp_path: object) -> None:
    path = f"{tmp_path}/s.sqlite"
    store = await SqliteRegistrationStore.open(path)
    server = LwM2MServer(store=store, expiry_interval=None)
    answer = await server.handle_uplink(
        _register("ep=big", "lt=99999999999999999999999", "lwm2m=1.1"), ADDRESS, None
    )
    assert answer.code == Code.CREATED
    await store.close()
    store = await SqliteRegistrationStore.open(path)
    try:
        [reg] = await store.registrations()
        assert (reg.endpoint, reg.lifetime) == ("big", 99999999999999999999999)
        assert await store.expired(1e12) == []
    finally:
        await store.close()


async def test_a_new_register_fails_requests_held_for_the_old_registration(
    sleepy: tuple[LwM2MServer, FakeClient],
) -> None:
    server, client = sleepy
    async with asyncio.timeout(TIMEOUT):
        held = asyncio.ensure_future(server.read("q1", "/3/0/9"))
        await asyncio.sleep(0)
        assert not held.done()
        await client.register(server.local_address, queue=True)
        with pytest.raises(NotRegistered, match="registered again"):
            await held
    assert client.received == []  # the held request never went out
