"""Observe, notification timing and cancellation (LwM2M-TS-Core 1.1 §5.1.2, §6.4) with a fake
clock: pmin, pmax, gt, lt, st, epmin, epmax and their precedence."""

from __future__ import annotations

import pytest

from lwm2m.client import SimpleInstance, SimpleObject
from lwm2m.client.accounts import Peer
from lwm2m.client.attributes import AttributeStore, EffectiveAttributes
from lwm2m.coap.numbers import Code
from lwm2m.codec import composite_codec_for
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.codec.link import Attributes
from lwm2m.model import Path
from lwm2m.operations.requests import Register

from .helpers import REGISTRY, Harness, code, config, server
from .test_dm import TEST_OBJECT


class Sensor(SimpleInstance):
    """Resource 1 is computed from ``reading`` (changes without ``changed()``)."""

    reading = 20.0

    def resource_ids(self):  # type: ignore[no-untyped-def]
        return {*self._values, 1}

    def read_resource(self, resource_id):  # type: ignore[no-untyped-def]
        if resource_id == 1:
            return Sensor.reading
        return super().read_resource(resource_id)


def make(**server_extra: object) -> tuple[Harness, SimpleInstance]:
    sensor = Sensor({0: "s", 2: [1], 4: 1})
    test = SimpleObject(TEST_OBJECT, {0: sensor})
    h = Harness(config(server(101, **server_extra)), objects=[test], registry=REGISTRY)
    h.register_all()
    Sensor.reading = 20.0
    return h, sensor


def set_reading(h: Harness, sensor: SimpleInstance, value: float) -> None:
    Sensor.reading = value
    sensor.changed(1)


def observe(h: Harness, path: str, token: bytes = b"tok", **kw: object) -> None:
    response = h.request(Code.GET, path, observe=0, token=token, **kw)  # type: ignore[arg-type]
    assert code(response) == "2.05"
    assert response.observe == 0


def times_of_notifications(
    h: Harness, sensor: SimpleInstance, changes: dict[float, float], until: float
) -> list[float]:
    """Apply ``changes`` (offset -> reading) and return the offsets of notifications."""
    start = h.now
    h.take_notifications()
    first = len(h.timeline)
    for offset in sorted({*changes, until}):
        h.advance(start + offset - h.now)
        if offset in changes:
            set_reading(h, sensor, changes[offset])
            h.advance(0)
    h.take_notifications()
    return [when - start for when, _ in h.timeline[first:]]


def test_notification_on_change() -> None:
    h, sensor = make()
    observe(h, "/33000/0/1")
    set_reading(h, sensor, 21.5)
    h.advance(0)
    (notification,) = h.take_notifications()
    assert (notification.short_server_id, notification.token) == (101, b"tok")
    assert (notification.message.code, notification.message.payload) == (Code.CONTENT, b"21.5")
    # no change, no notification
    h.advance(1000)
    assert h.take_notifications() == []


def test_pmin_delays_and_merges() -> None:
    h, sensor = make()
    h.request(Code.PUT, "/33000/0/1", query=["pmin=10"])
    observe(h, "/33000/0/1")
    seen = times_of_notifications(h, sensor, {1: 21, 2: 22, 12: 23}, until=30)
    assert seen == [10, 20]


def test_pmax_sends_without_change() -> None:
    h, sensor = make()
    h.request(Code.PUT, "/33000/0", query=["pmax=30"])
    observe(h, "/33000/0/1")
    seen = times_of_notifications(h, sensor, {10: 25}, until=70)
    assert seen == [10, 40, 70]


def test_pmax_below_pmin_is_ignored() -> None:
    h, sensor = make()
    h.request(Code.PUT, "/33000/0/1", query=["pmin=20"])
    h.request(Code.PUT, "/33000", query=["pmax=10"])
    observe(h, "/33000/0/1")
    assert times_of_notifications(h, sensor, {}, until=100) == []


def test_server_defaults_and_precedence() -> None:
    h, sensor = make(default_pmin=15, default_pmax=100)
    observe(h, "/33000/0/1")
    assert times_of_notifications(h, sensor, {1: 30}, until=20) == [15]
    # object < instance < resource
    h.request(Code.PUT, "/33000", query=["pmin=40"])
    h.request(Code.PUT, "/33000/0", query=["pmin=30"])
    h.request(Code.PUT, "/33000/0/1", query=["pmin=5"])
    effective = h.engine.observations.get(101, b"tok").attributes  # type: ignore[union-attr]
    assert (effective.pmin, effective.pmax) == (5, 100)
    h.request(Code.PUT, "/33000/0/1", query=["pmin"])  # unset: the instance level applies
    effective = h.engine.observations.get(101, b"tok").attributes  # type: ignore[union-attr]
    assert effective.pmin == 30


def test_resource_instance_attributes_win() -> None:
    store = AttributeStore()
    store.write(1, Path(5, 0, 1), Attributes(pmin=10, gt=3), numeric=True)
    store.write(1, Path(5, 0, 1, 2), Attributes(pmin=2, gt=7), numeric=True)
    store.write(2, Path(5, 0, 1, 2), Attributes(pmin=99), numeric=True)
    assert store.effective(1, Path(5, 0, 1, 2)) == EffectiveAttributes(pmin=2, gt=7)
    assert store.effective(1, Path(5, 0, 1, 0), default_pmax=60) == EffectiveAttributes(
        pmin=10, pmax=60, gt=3
    )
    store.remove_below(Path(5, 0))
    assert store.attached_below(1, Path(5)) == {}
    store.remove_server(2)
    store.clear()


@pytest.mark.parametrize(
    ("query", "changes", "expected"),
    [
        (["gt=50"], {1: 45, 2: 55, 3: 60, 4: 45}, [2, 4]),  # crossing gt, both ways
        (["lt=10"], {1: 15, 2: 5, 3: 8, 4: 12}, [2, 4]),
        (["st=5"], {1: 23, 2: 26, 3: 28, 4: 20}, [2, 4]),  # |v - last notified| >= st
        (["gt=50", "lt=10", "st=19"], {1: 60, 2: 55, 3: 5}, [1, 3]),
    ],
)
def test_change_value_conditions(
    query: list[str], changes: dict[float, float], expected: list[float]
) -> None:
    h, sensor = make()
    assert code(h.request(Code.PUT, "/33000/0/1", query=query)) == "2.04"
    observe(h, "/33000/0/1")
    assert times_of_notifications(h, sensor, changes, until=10) == expected


def test_epmin_delays_evaluation() -> None:
    h, sensor = make()
    h.request(Code.PUT, "/33000/0/1", query=["epmin=10"])
    observe(h, "/33000/0/1")
    assert times_of_notifications(h, sensor, {1: 25, 11: 26}, until=30) == [10, 20]


def test_epmax_evaluates_without_change_signal() -> None:
    h, _sensor = make()
    h.request(Code.PUT, "/33000/0/1", query=["epmax=15"])
    observe(h, "/33000/0/1")
    start = h.now
    Sensor.reading = 99.0  # no changed() call
    h.advance(14)
    assert h.take_notifications() == []
    h.advance(1)
    assert [when - start for when, _ in h.timeline[-1:]] == [15]
    h.take_notifications()
    h.advance(15)
    assert h.take_notifications() == []  # evaluated, unchanged


def test_observe_instance_notifies_on_any_resource() -> None:
    h, sensor = make()
    observe(h, "/33000/0", accept=CF.SENML_JSON)
    sensor.set(0, "renamed")
    h.advance(0)
    (notification,) = h.take_notifications()
    assert notification.message.content_format == CF.SENML_JSON
    assert b"renamed" in notification.message.payload
    # a change elsewhere does not touch it
    h.tree[3].set(9, 50)
    h.advance(0)
    assert h.take_notifications() == []


def test_cancel_with_observe_1_and_with_reset() -> None:
    h, sensor = make()
    observe(h, "/33000/0/1", token=b"a")
    observe(h, "/33000/0/0", token=b"b")
    response = h.request(Code.GET, "/33000/0/1", observe=1, token=b"a")
    assert code(response) == "2.05"
    assert response.observe is None
    assert h.engine.observations.get(101, b"a") is None
    h.engine.observation_cancelled(Peer(("127.0.0.1", 5701)), b"b", h.now)
    assert h.engine.observations.get(101, b"b") is None
    set_reading(h, sensor, 1.0)
    h.advance(0)
    assert h.take_notifications() == []


def test_deleted_instance_ends_the_observation() -> None:
    h, _ = make()
    observe(h, "/33000/0/0")
    h.tree[33000].remove_instance(0)
    h.advance(0)
    (notification,) = h.take_notifications()
    assert code(notification.message) == "4.04"
    assert len(h.engine.observations) == 0


def test_observe_errors() -> None:
    h, _ = make()
    assert code(h.request(Code.GET, "/33000/0/9", observe=0)) == "4.04"
    assert code(h.request(Code.GET, "/33000/0", observe=0, accept=CF.TEXT)) == "4.06"
    assert code(h.request(Code.GET, "/0/0", observe=0)) == "4.01"
    assert len(h.engine.observations) == 0


def test_observe_composite() -> None:
    h, sensor = make()
    codec = composite_codec_for(CF.SENML_CBOR)
    body = codec.encode_paths([Path(33000, 0, 1), Path(3, 0, 0)])
    response = h.request(Code.FETCH, "", payload=body, cf=CF.SENML_CBOR, observe=0, token=b"c")
    assert code(response) == "2.05"
    assert response.observe == 0
    set_reading(h, sensor, 42.0)
    h.advance(0)
    (notification,) = h.take_notifications()
    nodes = codec.decode_nodes(notification.message.payload, REGISTRY)
    assert nodes[Path(33000, 0, 1)].value == 42.0  # type: ignore[union-attr]
    assert Path(3, 0, 0) in nodes
    response = h.request(Code.FETCH, "", payload=body, cf=CF.SENML_CBOR, observe=1, token=b"c")
    assert code(response) == "2.05"
    assert len(h.engine.observations) == 0


def test_new_registration_drops_observations() -> None:
    h, _ = make()
    observe(h, "/33000/0/0")
    h.engine.request_update(h.now)
    (update,) = h.take()
    h.respond(update, Code.NOT_FOUND)
    (register,) = h.take(Register)
    h.respond(register, Code.CREATED, location=("rd", "new"))
    assert len(h.engine.observations) == 0


def test_attribute_change_applies_to_running_observation() -> None:
    h, sensor = make()
    observe(h, "/33000/0/1")
    h.request(Code.PUT, "/33000/0/1", query=["pmin=50"])
    assert times_of_notifications(h, sensor, {1: 30}, until=60) == [50]
