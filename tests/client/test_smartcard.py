"""Smartcard bootstrap in the client engine (Core §5.2.3.2/§5.2.4, spec-reference §2.3): the
card as the first bootstrap source, and the re-check at every Register/Update to a server the
card provisioned. Fake card readings and a fake clock; no I/O, no sleeps."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from lwm2m.client import ClientConfig
from lwm2m.client.bootstrap import FactoryBootstrap
from lwm2m.client.events import BootstrapFinished, ObjectEvent
from lwm2m.client.objects.base import MemoryInstanceStore
from lwm2m.client.objects.security import OscoreObject
from lwm2m.client.smartcard import (
    CardAbsent,
    CardCheck,
    CardData,
    CardUnreadable,
    SmartcardApplied,
    SmartcardBootstrap,
    SmartcardRejected,
    SmartcardRemoved,
    SmartcardReplaced,
    apply_reading,
    validate_card_objects,
)
from lwm2m.coap.numbers import Code
from lwm2m.errors import BadRequest
from lwm2m.model.nodes import ObjectInstance, ObjectNode, SingleResource
from lwm2m.model.path import Path
from lwm2m.model.values import ObjectLink, ResourceType
from lwm2m.operations.requests import Deregister, Register, Update

from .helpers import Harness, config, server

S = SingleResource
T = ResourceType


def card(
    *,
    port: int = 5701,
    ssid: int = 101,
    lifetime: int = 300,
    psk: bytes = b"",
    oscore: bool = False,
    extra: tuple[ObjectNode, ...] = (),
) -> CardData:
    """Card data: one NoSec DM server account (/0/0, /1/0), optionally /21/0."""
    security = [
        S(0, T.STRING, f"coap://127.0.0.1:{port}"),
        S(1, T.BOOLEAN, False),
        S(2, T.INTEGER, 3),
        S(3, T.OPAQUE, b""),
        S(4, T.OPAQUE, b""),
        S(5, T.OPAQUE, psk),
        S(10, T.INTEGER, ssid),
    ]
    objects = [
        ObjectNode(0, [ObjectInstance(0, security)]),
        ObjectNode(
            1,
            [
                ObjectInstance(
                    0,
                    [S(0, T.INTEGER, ssid), S(1, T.INTEGER, lifetime), S(7, T.STRING, "U")],
                )
            ],
        ),
    ]
    if oscore:
        objects.append(ObjectNode(21, [ObjectInstance(0, [S(0, T.OPAQUE, b"master-secret")])]))
    objects.extend(extra)
    digest = hashlib.sha256(repr((port, ssid, lifetime, psk, oscore, extra)).encode()).digest()
    return CardData(tuple(objects), digest)


def make(reading: Any, cfg: ClientConfig | None = None, **kw: Any) -> tuple[Harness, Any]:
    source = SmartcardBootstrap(reading)
    cfg = cfg or ClientConfig(endpoint="card-ep")
    h = Harness(cfg, sources=[source, FactoryBootstrap(cfg)], **kw)
    return h, source


def smartcard_events(h: Harness) -> list[Any]:
    return [e.event for e in h.take_events(ObjectEvent)]


def registered(h: Harness) -> Any:
    h.start()
    [register] = h.take(Register)
    assert register.connection.uri.port == 5701
    h.respond(register, Code.CREATED, location=("rd", "a"))
    return register


# -- the first step of the bootstrap sequence ---------------------------------------------------


def test_card_is_applied_before_factory_bootstrap() -> None:
    cfg = config(server(102))  # a factory account the card must win over
    h, source = make(card(), cfg)
    h.start()
    [register] = h.take(Register)
    assert register.connection.uri.port == 5701
    assert register.operation.lifetime == 300
    assert h.tree.instance_ids(0) == [0]
    assert h.take_events(BootstrapFinished) == [BootstrapFinished("smartcard")]
    [applied] = smartcard_events(h)
    assert applied == SmartcardApplied(source.digest.hex(), (101,))
    assert source.active
    assert source.provisioned(0)
    assert not source.provisioned(1)
    assert source.short_server_ids == (101,)


def test_card_replaces_stale_instances_of_the_store() -> None:
    """A persistent store holding another configuration: the card's data is the whole one."""
    stale = ObjectNode(2, [ObjectInstance(7, [S(0, T.INTEGER, 3), S(1, T.INTEGER, 0)])])
    h, _ = make(card())
    h.tree.write(Path(2), stale, bootstrap=True)
    h.start()
    assert h.tree.instance_ids(2) == []


def test_card_with_oscore_and_extra_objects() -> None:
    """/21 is applied (with an OSCORE handler); objects outside /0 /1 /2 /21 are ignored."""
    extra = (ObjectNode(3, [ObjectInstance(0, [S(0, T.STRING, "X")])]),)
    h, source = make(card(oscore=True, extra=extra), objects=[OscoreObject()])
    h.start()
    assert h.tree.instance_ids(21) == [0]
    assert (21, 0) in source.derived
    assert (3, 0) not in source.derived


@pytest.mark.parametrize(
    "reading",
    [None, CardAbsent("no card"), CardUnreadable("EF LwM2M_Bootstrap: object[0].length")],
)
def test_no_usable_card_falls_back_to_factory(reading: Any) -> None:
    cfg = config(server(102))
    h, source = make(reading, cfg)
    h.start()
    [register] = h.take(Register)
    assert register.connection.uri.port == 5702
    assert h.take_events(BootstrapFinished) == [BootstrapFinished("factory")]
    assert not source.active
    events = smartcard_events(h)
    if isinstance(reading, CardUnreadable):
        assert events == [SmartcardRejected(reading.reason, None)]
    else:
        assert events == []


def test_inconsistent_card_data_is_rejected_at_start() -> None:
    """A /1 instance without its /0 account: not applied at all (factory bootstrap runs)."""
    bad = card()
    data = CardData((bad.objects[1], ObjectNode(0, [])), bad.digest)
    cfg = config(server(102))
    h, source = make(data, cfg)
    h.start()
    assert [r.connection.uri.port for r in h.take(Register)] == [5702]
    [rejected] = smartcard_events(h)
    assert isinstance(rejected, SmartcardRejected)
    assert "Security" in rejected.reason
    assert not source.active


def test_validation() -> None:
    assert validate_card_objects(card().objects) == []
    no_dm = (card().objects[0],)
    assert validate_card_objects(no_dm) != []
    broken = ObjectNode(1, [ObjectInstance(0, [S(1, T.INTEGER, 60)])])  # no SSID
    problems = validate_card_objects((card().objects[0], broken))
    assert problems
    bs_only = ObjectNode(
        0,
        [
            ObjectInstance(
                0,
                [
                    S(0, T.STRING, "coap://127.0.0.1:5700"),
                    S(1, T.BOOLEAN, True),
                    S(2, T.INTEGER, 3),
                    S(3, T.OPAQUE, b""),
                    S(4, T.OPAQUE, b""),
                    S(5, T.OPAQUE, b""),
                ],
            )
        ],
    )
    assert validate_card_objects((bs_only,)) == []  # the bootstrap server completes it
    bad_resource = ObjectNode(0, [ObjectInstance(0, [S(99, T.INTEGER, 1)])])
    [problem] = validate_card_objects((bad_resource,))
    assert problem.startswith("invalid card data")


def test_reprs_hide_secrets() -> None:
    data = card(psk=b"\x13\x37" * 8)
    assert "1337" not in repr(data)
    assert "objects={0: [0], 1: [0]}" in repr(data)
    source = SmartcardBootstrap(data)
    assert "digest=None" in repr(source)


# -- the re-check at Register / Update ----------------------------------------------------------


def test_unchanged_card_changes_nothing() -> None:
    first = card()
    h, source = make(first)
    registered(h)
    assert source.check(first) is CardCheck.UNCHANGED
    assert apply_reading(h.engine, source, first, h.now) is CardCheck.UNCHANGED
    assert h.take() == []
    assert smartcard_events(h) == [SmartcardApplied(first.digest.hex(), (101,))]
    h.engine.request_update(h.now)
    [update] = h.take(Update)
    assert source.provisioned(update.connection.security_instance_id)
    assert h.engine.is_pending(update.request_id)


def test_changed_card_replaces_the_configuration_and_re_registers() -> None:
    first = card()
    h, source = make(first)
    registered(h)
    smartcard_events(h)
    h.clock.advance(10)
    h.engine.request_update(h.now)
    [update] = h.take(Update)
    second = card(port=5711, lifetime=120)
    assert apply_reading(h.engine, source, second, h.now) is CardCheck.CHANGED
    assert not h.engine.is_pending(update.request_id)  # the gated Update is dropped
    [register] = h.take(Register)
    assert register.connection.uri.port == 5711
    assert register.operation.lifetime == 120
    assert h.take(Deregister) == []
    [replaced] = smartcard_events(h)
    assert replaced == SmartcardReplaced(first.digest.hex(), second.digest.hex(), (101,))
    assert source.digest == second.digest
    h.respond(register, Code.CREATED, location=("rd", "b"))
    assert h.engine.registrations[101].registered
    # a late answer to the dropped Update is ignored
    h.respond(update, Code.CHANGED)
    assert h.engine.registrations[101].registered


def test_changed_card_with_another_server() -> None:
    h, source = make(card())
    registered(h)
    assert apply_reading(h.engine, source, card(ssid=202, port=5712), h.now) is CardCheck.CHANGED
    assert set(h.engine.registrations) == {202}
    [register] = h.take(Register)
    assert register.connection.short_server_id == 202
    assert source.short_server_ids == (202,)
    assert source.provisioned(0)


def test_removed_card_deletes_the_configuration() -> None:
    h, source = make(card())
    registered(h)
    smartcard_events(h)
    assert apply_reading(h.engine, source, CardAbsent("card removed"), h.now) is CardCheck.REMOVED
    [deregister] = h.take(Deregister)  # best effort
    assert deregister.operation.location == "/rd/a"
    assert h.tree.instance_ids(0) == []
    assert h.tree.instance_ids(1) == []
    assert h.engine.registrations == {}
    assert smartcard_events(h) == [SmartcardRemoved("card removed", (101,))]
    assert not source.active
    assert not source.provisioned(0)
    h.fail(deregister)  # its failure changes nothing
    assert h.engine.registrations == {}
    # once removed, another absent reading is nothing new
    assert source.check(CardAbsent("still no card")) is CardCheck.UNCHANGED


def test_removed_before_registration_sends_no_deregister() -> None:
    h, source = make(card())
    h.start()
    [register] = h.take(Register)
    assert apply_reading(h.engine, source, CardAbsent("gone"), h.now) is CardCheck.REMOVED
    assert h.take() == []
    assert not h.engine.is_pending(register.request_id)


@pytest.mark.parametrize("kind", ["unreadable", "inconsistent"])
def test_malformed_card_keeps_the_previous_configuration(kind: str) -> None:
    first = card()
    h, source = make(first)
    registered(h)
    smartcard_events(h)
    before = h.tree.read(Path(0))
    if kind == "unreadable":
        reading: Any = CardUnreadable("EF LwM2M_Bootstrap: header.size runs past the end")
    else:
        bad = card(port=5799)
        reading = CardData((bad.objects[1],), bad.digest)  # /1 without /0
    assert apply_reading(h.engine, source, reading, h.now) is CardCheck.REJECTED
    assert h.tree.read(Path(0)) == before
    assert h.engine.registrations[101].registered
    assert h.take() == []
    [rejected] = smartcard_events(h)
    assert isinstance(rejected, SmartcardRejected)
    assert rejected.kept_digest == first.digest.hex()
    assert rejected.reason
    assert source.digest == first.digest


class FlakyStore(MemoryInstanceStore):
    """An instance store refusing the /1 instance of a lifetime of 120 s (as a Secure
    Component may refuse an import)."""

    def put(self, object_id: int, instance: ObjectInstance) -> None:
        lifetime = instance.resources.get(1)
        if object_id == 1 and isinstance(lifetime, S) and lifetime.value == 120:
            raise BadRequest("the store refuses the write")
        super().put(object_id, instance)


def test_failure_while_replacing_restores_the_snapshot() -> None:
    """Data that passes validation but fails on the client's store is not half-applied."""
    first = card()
    store = FlakyStore()
    h, source = make(first, store=store)
    registered(h)
    smartcard_events(h)
    before = (h.tree.read(Path(0)), h.tree.read(Path(1)))
    second = card(port=5711, lifetime=120)
    assert source.check(second) is CardCheck.CHANGED
    assert apply_reading(h.engine, source, second, h.now) is CardCheck.CHANGED
    assert (h.tree.read(Path(0)), h.tree.read(Path(1))) == before
    [rejected] = smartcard_events(h)
    assert isinstance(rejected, SmartcardRejected)
    assert "not applied" in rejected.reason
    assert source.digest == first.digest


def test_inconsistent_after_write_restores_the_snapshot() -> None:
    first = card()
    h, source = make(first)
    registered(h)
    smartcard_events(h)
    second = card(port=5711)
    # OSCORE link to a missing /21 instance: writable, but the Finish check fails on the tree
    security = second.objects[0].instances[0]
    linked = ObjectInstance(0, [*security.resources.values(), S(17, T.OBJLNK, ObjectLink(21, 5))])
    data = CardData((ObjectNode(0, [linked]), second.objects[1]), second.digest)
    source.replace(h.tree, data)
    [rejected] = smartcard_events(h)
    assert isinstance(rejected, SmartcardRejected)
    assert h.tree.value(Path(0, 0, 0)) == "coap://127.0.0.1:5701"
