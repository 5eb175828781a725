"""More notification timing paths (LwM2M-TS-Core 1.1 §5.1.2, §6.4): attribute precedence down to
the resource instance, change conditions on non-numeric values, repeated change signals and
Cancel Observation by path. Driven by the fake-clock Harness or directly on ``Observation``."""

from __future__ import annotations

from lwm2m.client.attributes import EffectiveAttributes
from lwm2m.client.notify import Content, Observation, ObservationRegistry
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.model import Path, ResourceType
from lwm2m.model.nodes import ResourceInstance, SingleResource

from .helpers import code
from .test_notify import make, observe, set_reading, times_of_notifications


def observation(attributes: EffectiveAttributes, *, started: float = 0.0) -> Observation:
    return Observation(101, b"t", (Path(33000, 0, 1),), CF.TEXT, attributes, started)


def reader(content: Content) -> tuple[list[int], object]:
    calls: list[int] = []

    def read() -> Content:
        calls.append(1)
        return content

    return calls, read


def test_resource_instance_pmin_beats_resource_instance_and_object() -> None:
    h, sensor = make(default_pmin=50)
    h.request(Code.PUT, "/33000", query=["pmin=40"])
    h.request(Code.PUT, "/33000/0", query=["pmin=30"])
    h.request(Code.PUT, "/33000/0/2", query=["pmin=20"])
    h.request(Code.PUT, "/33000/0/2/0", query=["pmin=5"])
    observe(h, "/33000/0/2/0")
    start = h.now
    h.take_notifications()
    h.advance(1)
    sensor.set(2, [7])
    h.advance(0)
    assert h.take_notifications() == []  # pmin of the resource instance (5) not yet elapsed
    h.advance(start + 5 - h.now)
    (notification,) = h.take_notifications()
    assert h.timeline[-1][0] - start == 5
    assert notification.message.code == Code.CONTENT
    assert notification.message.payload == b"7"


def test_resource_level_applies_to_its_instances_when_instance_has_none() -> None:
    h, sensor = make()
    h.request(Code.PUT, "/33000/0", query=["pmin=30"])
    h.request(Code.PUT, "/33000/0/2", query=["pmin=12"])
    observe(h, "/33000/0/2/0")
    effective = h.engine.observations.get(101, b"tok").attributes  # type: ignore[union-attr]
    assert effective.pmin == 12
    start = h.now
    h.take_notifications()
    h.advance(1)
    sensor.set(2, [3])
    h.advance(20)
    assert [when - start for when, _ in h.timeline[-1:]] == [12]


def test_object_level_pmax_with_server_default_pmin() -> None:
    # pmax from the object, pmin from the server account default (/1/x/2)
    h, sensor = make(default_pmin=10)
    h.request(Code.PUT, "/33000", query=["pmax=25"])
    observe(h, "/33000/0/1")
    assert times_of_notifications(h, sensor, {3: 21}, until=60) == [10, 35, 60]


def test_epmax_and_pmin_together_merge_an_unsignalled_change() -> None:
    h, _sensor = make()
    h.request(Code.PUT, "/33000/0/1", query=["pmin=20", "epmax=5"])
    observe(h, "/33000/0/1")
    start = h.now
    h.take_notifications()
    from .test_notify import Sensor

    Sensor.reading = 77.0  # changes without changed(): found by the epmax evaluation at 5
    h.advance(19)
    assert h.take_notifications() == []  # pending, but pmin (20) holds it back
    h.advance(1)
    (notification,) = h.take_notifications()
    assert h.timeline[-1][0] - start == 20
    assert notification.message.payload == b"77.0"


def test_repeated_change_signals_keep_the_first_change_time() -> None:
    ob = observation(EffectiveAttributes(epmin=10), started=0.0)
    ob.mark_dirty(12.0)
    ob.mark_dirty(15.0)  # already dirty: the first change still decides
    assert ob.deadline() == 12.0
    _calls, read = reader(SingleResource(1, ResourceType.FLOAT, 1.0))
    assert ob.step(12.0, read) is not None  # type: ignore[arg-type]
    assert ob.last_sent == 12.0
    assert ob.deadline() is None  # nothing dirty, no pmax, no epmax


def test_change_conditions_notify_first_numeric_after_non_numeric() -> None:
    # gt applies to numbers; with no numeric value notified yet, any number is worth notifying
    ob = observation(EffectiveAttributes(gt=50.0))
    ob.sent(SingleResource(0, ResourceType.STRING, "n/a"), 0.0)
    ob.mark_dirty(1.0)
    _, read = reader(SingleResource(1, ResourceType.FLOAT, 10.0))
    sent = ob.step(1.0, read)  # type: ignore[arg-type]
    assert isinstance(sent, SingleResource)
    assert sent.value == 10.0
    # then the gt rule applies: 10 -> 20 does not cross 50
    ob.mark_dirty(2.0)
    _, read = reader(SingleResource(1, ResourceType.FLOAT, 20.0))
    assert ob.step(2.0, read) is None  # type: ignore[arg-type]


def test_change_conditions_ignore_booleans_and_compare_values() -> None:
    # a boolean is not numeric for gt/lt/st: any change notifies, no change does not
    ob = observation(EffectiveAttributes(st=5.0))
    ob.sent(ResourceInstance(0, ResourceType.BOOLEAN, False), 0.0)
    ob.mark_dirty(1.0)
    _, read = reader(ResourceInstance(0, ResourceType.BOOLEAN, True))
    assert ob.step(1.0, read) is not None  # type: ignore[arg-type]
    ob.mark_dirty(2.0)
    assert ob.step(2.0, read) is None  # type: ignore[arg-type]


def test_change_conditions_do_not_apply_to_composite() -> None:
    ob = Observation(
        101,
        b"c",
        (Path(33000, 0, 1),),
        CF.SENML_CBOR,
        EffectiveAttributes(st=100.0),
        0.0,
        composite=True,
    )
    ob.sent(SingleResource(1, ResourceType.FLOAT, 1.0), 0.0)
    ob.mark_dirty(1.0)
    _, read = reader(SingleResource(1, ResourceType.FLOAT, 2.0))
    assert ob.step(1.0, read) is not None  # type: ignore[arg-type]


def test_pmax_zero_means_no_maximum_period() -> None:
    ob = observation(EffectiveAttributes(pmax=0))
    ob.sent(SingleResource(1, ResourceType.FLOAT, 1.0), 0.0)
    assert ob.deadline() is None
    calls, read = reader(SingleResource(1, ResourceType.FLOAT, 1.0))
    assert ob.step(1000.0, read) is None  # type: ignore[arg-type]
    assert calls == []


def test_cancel_observation_by_path_with_another_token() -> None:
    h, sensor = make()
    observe(h, "/33000/0/1", token=b"a")
    observe(h, "/33000/0/0", token=b"b")
    # Observe=1 with an unknown token cancels the observation of that path (§6.4.2)
    response = h.request(Code.GET, "/33000/0/1", observe=1, token=b"zz")
    assert code(response) == "2.05"
    assert response.observe is None
    assert h.engine.observations.get(101, b"a") is None
    assert h.engine.observations.get(101, b"b") is not None
    set_reading(h, sensor, 5.0)
    h.advance(0)
    assert h.take_notifications() == []


def test_registry_remove_path_only_matches_server_and_exact_paths() -> None:
    registry = ObservationRegistry()
    a = Observation(1, b"a", (Path(3, 0),), CF.TLV, EffectiveAttributes(), 0.0)
    b = Observation(2, b"b", (Path(3, 0),), CF.TLV, EffectiveAttributes(), 0.0)
    c = Observation(1, b"c", (Path(3, 0, 1),), CF.TLV, EffectiveAttributes(), 0.0)
    for item in (a, b, c):
        registry.add(item)
    assert registry.remove_path(1, (Path(3, 0),)) == [a]
    assert registry.remove_path(1, (Path(4),)) == []
    assert sorted(o.token for o in registry) == [b"b", b"c"]
    # a change of the object marks the observations below it dirty
    registry.changed(3, None, (), 7.0)
    assert b.dirty
    assert c.dirty
    assert registry.deadline() == 7.0
