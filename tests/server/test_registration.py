"""Register / Update validation and the Registration record (LwM2M-TS-Core §6.2.1, §6.2.2)."""

from __future__ import annotations

import doctest

import pytest

from lwm2m.codec.link import Link, parse_links
from lwm2m.errors import BadRequest, PreconditionFailed
from lwm2m.model.registry import default_registry
from lwm2m.operations.requests import Register, Update
from lwm2m.server import registration as registration_module
from lwm2m.server.registration import (
    LinkCache,
    ModelViews,
    ServerConfig,
    apply_update,
    new_registration,
    parse_binding,
    parse_object_links,
)
from lwm2m.server.security import PeerIdentity
from lwm2m.testing import FakeClock

ADDRESS = ("192.0.2.1", 5683)
LINKS = tuple(parse_links('</>;rt="oma.lwm2m";ct="60 110 112 11542",</1/0>,</3/0>,</3>;ver=1.1'))


def register(**kwargs: object) -> Register:
    values: dict[str, object] = {
        "endpoint": "urn:imei:123",
        "lifetime": 300,
        "lwm2m_version": "1.1",
        "binding": "U",
        "objects": LINKS,
    }
    values.update(kwargs)
    return Register(**values)  # type: ignore[arg-type]


def make(request: Register | None = None, **kwargs: object) -> registration_module.Registration:
    return new_registration(
        request or register(),
        registration_id="r1",
        address=ADDRESS,
        identity=None,
        now=1000.0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_doctests() -> None:
    result = doctest.testmod(registration_module)
    assert result.attempted > 0
    assert result.failed == 0


def test_a_valid_register_becomes_a_record() -> None:
    reg = make()
    assert reg.id == "r1"
    assert reg.location == "/rd/r1"
    assert reg.endpoint == "urn:imei:123"
    assert reg.address == ADDRESS
    assert reg.lifetime == 300
    assert (reg.binding, reg.queue_mode, reg.version) == ("U", False, "1.1")
    assert reg.object_versions == {1: "1.0", 3: "1.1"}
    assert reg.content_formats == (60, 110, 112, 11542)
    assert reg.root_path == "/"
    assert reg.objects == LINKS
    assert reg.registered_at == reg.updated_at == 1000.0
    assert reg.expires_at() == 1300.0
    assert reg.expires_at(5) == 1305.0
    assert reg.supports(112)
    assert not reg.supports(11543)
    assert dict(reg.additional) == {}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"endpoint": ""}, BadRequest),
        ({"endpoint": "x" * 256}, BadRequest),
        ({"endpoint": "bad\x01name"}, BadRequest),
        ({"lifetime": 0}, BadRequest),
        ({"lwm2m_version": "1.2"}, PreconditionFailed),
        ({"lwm2m_version": "2.0"}, PreconditionFailed),
        ({"binding": "X"}, BadRequest),
        ({"binding": "UU"}, BadRequest),
        ({"binding": ""}, BadRequest),
        ({"binding": "UQ"}, BadRequest),  # Q is a separate parameter in 1.1
        ({"lwm2m_version": "1.0", "binding": "T"}, BadRequest),
        ({"sms_number": "+33612345678"}, BadRequest),
    ],
)
def test_invalid_registers_are_rejected_with_their_code(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        make(register(**kwargs))
    assert info.value.code in (0x80, 0x8C)  # type: ignore[attr-defined]


def test_lifetime_bounds_and_versions_are_configurable() -> None:
    config = ServerConfig(min_lifetime=60, max_lifetime=3600, supported_versions=frozenset({"1.2"}))
    with pytest.raises(BadRequest, match="below 60"):
        make(register(lifetime=30, lwm2m_version="1.2"), config=config)
    with pytest.raises(BadRequest, match="above 3600"):
        make(register(lifetime=7200, lwm2m_version="1.2"), config=config)
    assert make(register(lifetime=600, lwm2m_version="1.2"), config=config).version == "1.2"
    with pytest.raises(PreconditionFailed):
        make(register(), config=config)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_lifetime": 0},
        {"min_lifetime": 10, "max_lifetime": 5},
        {"awake_time": 0},
        {"hold_timeout": 0},
        {"lifetime_grace": -1},
    ],
)
def test_server_config_is_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        ServerConfig(**kwargs)  # type: ignore[arg-type]


def test_bindings_of_both_versions() -> None:
    assert parse_binding("U", "1.1") == ("U", False)
    assert parse_binding("UTSN", "1.1") == ("UTSN", False)
    for binding, queue in [("U", False), ("UQ", True), ("S", False), ("SQ", True)]:
        assert parse_binding(binding, "1.0") == (binding.replace("Q", ""), queue)
    assert parse_binding("UQS", "1.0") == ("US", True)
    reg = make(register(lwm2m_version="1.0", binding="UQ"))
    assert (reg.binding, reg.queue_mode) == ("U", True)
    assert make(register(queue_mode=True)).queue_mode


def test_extra_parameters_and_sms_are_kept() -> None:
    reg = make(register(sms_number="33612345678", additional={"apn": "iot"}))
    assert reg.sms_number == "33612345678"
    assert dict(reg.additional) == {"apn": "iot"}


@pytest.mark.parametrize(
    "text",
    [
        "</3/0/1>",  # deeper than an instance
        "<coap://elsewhere/3/0>",  # not a path
        "</3>;ver=1.0,</3>;ver=1.1",  # conflicting versions
        "</3>;ver=x",  # bad version syntax
        '</>;ct="60 abc"',  # bad ct
        '</a>;rt="oma.lwm2m",</b>;rt="oma.lwm2m"',  # two alternate roots
        '<a>;rt="oma.lwm2m"',  # relative alternate root
        "</lwm2m/3/0>",  # below a root that was not declared
    ],
)
def test_malformed_object_links_are_4_00(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_object_links(tuple(parse_links(text)))


def test_alternate_root_path() -> None:
    links = tuple(parse_links('</lwm2m>;rt="oma.lwm2m";ct=110,</lwm2m/1/0>,</lwm2m/3>;ver=1.1'))
    parsed = parse_object_links(links)
    assert parsed.root == "/lwm2m"
    assert parsed.versions == ((1, "1.0"), (3, "1.1"))
    assert parsed.content_formats == (110,)
    assert [str(p) for p in parsed.instances] == ["/1/0", "/3"]
    with pytest.raises(BadRequest):
        parse_object_links(tuple(parse_links('</lwm2m>;rt="oma.lwm2m",</3/0>')))


def test_no_links_and_versions_without_ver() -> None:
    assert parse_object_links(()).links == ()
    parsed = parse_object_links(tuple(parse_links("</3/0>,</5>,</3>;ver=1.1,</3/1>")))
    assert parsed.object_versions == {3: "1.1", 5: "1.0"}
    assert parsed.content_formats == ()
    assert [str(p) for p in parsed.instances] == ["/3/0", "/5", "/3", "/3/1"]


def test_link_cache_shares_identical_link_lists() -> None:
    cache = LinkCache(size=2)
    a = cache.get(LINKS)
    b = cache.get(
        tuple(
            parse_links(
                b'</>;rt="oma.lwm2m";ct="60 110 112 11542",</1/0>,</3/0>,</3>;ver=1.1'.decode()
            )
        )
    )
    assert a is b
    cache.get((Link("/1/0"),))
    cache.get((Link("/2/0"),))
    assert len(cache) == 2
    assert cache.get(LINKS) is not a  # evicted, parsed again
    first = make(links=cache)
    second = new_registration(
        register(endpoint="other"),
        registration_id="r2",
        address=ADDRESS,
        identity=None,
        now=0,
        links=cache,
    )
    assert first.links is second.links


def test_model_views_are_shared_by_version_set() -> None:
    views = ModelViews(default_registry())
    a = views.for_registration(make())
    b = views.for_registration(make(register(endpoint="b")))
    c = views.for_versions(((3, "1.0"),))
    assert a is b
    assert c is not a
    assert len(views) == 2
    assert views.registry is not None
    device = a.object_definition(3)
    assert device is not None
    assert device.version == "1.1"


def test_update_changes_what_it_names_and_keeps_the_rest() -> None:
    clock = FakeClock(1000.0)
    reg = make()
    clock.advance(100)
    new = apply_update(
        reg,
        Update("/rd/r1", lifetime=600, binding="UT", sms_number="123", additional={"x": "1"}),
        address=("192.0.2.9", 1234),
        identity=None,
        now=clock(),
    )
    assert (new.id, new.endpoint, new.registered_at) == (reg.id, reg.endpoint, 1000.0)
    assert (new.lifetime, new.binding, new.sms_number) == (600, "UT", "123")
    assert new.address == ("192.0.2.9", 1234)
    assert new.updated_at == 1100.0
    assert new.expires_at() == 1700.0
    assert dict(new.additional) == {"x": "1"}
    assert new.links is reg.links
    again = apply_update(new, Update("/rd/r1"), address=ADDRESS, identity=None, now=1200.0)
    assert (again.lifetime, again.binding, again.sms_number) == (600, "UT", "123")
    relinked = apply_update(
        again,
        Update("/rd/r1", objects=(Link("/3/0"), Link("/5/0"))),
        address=ADDRESS,
        identity=None,
        now=1300.0,
        links=LinkCache(),
    )
    assert relinked.object_versions == {3: "1.0", 5: "1.0"}
    relinked = apply_update(
        again, Update("/rd/r1", objects=(Link("/6/0"),)), address=ADDRESS, identity=None, now=1
    )
    assert relinked.object_versions == {6: "1.0"}


def test_update_of_a_1_0_binding_changes_queue_mode() -> None:
    reg = make(register(lwm2m_version="1.0", binding="U"))
    new = apply_update(reg, Update("/rd/r1", binding="UQ"), address=ADDRESS, identity=None, now=1)
    assert (new.binding, new.queue_mode) == ("U", True)


@pytest.mark.parametrize(
    "update",
    [
        Update("/rd/r1", lifetime=0),
        Update("/rd/r1", binding="Z"),
        Update("/rd/r1", sms_number="abc"),
        Update("/rd/r1", objects=(Link("/3/0/1"),)),
    ],
)
def test_invalid_updates_are_4_00(update: Update) -> None:
    with pytest.raises(BadRequest):
        apply_update(make(), update, address=ADDRESS, identity=None, now=1)


def test_update_from_another_identity_is_4_00() -> None:
    psk = PeerIdentity.psk("urn:imei:123")
    reg = new_registration(register(), registration_id="r", address=ADDRESS, identity=psk, now=0)
    with pytest.raises(BadRequest, match="another identity"):
        apply_update(reg, Update("/rd/r"), address=ADDRESS, identity=PeerIdentity.psk("x"), now=1)
    same = apply_update(reg, Update("/rd/r"), address=ADDRESS, identity=psk, now=1)
    assert same.identity == psk
    with pytest.raises(BadRequest, match="another identity"):  # a plain request
        apply_update(reg, Update("/rd/r"), address=ADDRESS, identity=None, now=1)


def test_lifetime_expiry_with_a_fake_clock() -> None:
    clock = FakeClock(1000.0)
    reg = make()
    assert not reg.is_expired(clock())
    clock.advance(300)
    assert not reg.is_expired(clock())  # exactly at the end: still alive
    clock.advance(0.5)
    assert reg.is_expired(clock())
    assert not reg.is_expired(clock(), grace=1.0)
    updated = apply_update(reg, Update("/rd/r1"), address=ADDRESS, identity=None, now=clock())
    assert not updated.is_expired(clock.advance(299))


def test_records_are_immutable_and_lean() -> None:
    reg = make()
    with pytest.raises(AttributeError):
        reg.lifetime = 5  # type: ignore[misc]
    assert not hasattr(reg, "__dict__")
