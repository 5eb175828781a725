"""The client engine while the Secure Component holding its instances is gone (a card pulled):
requests and notifications that need it get 5.03, a registration update lists the instances it
last listed, and everything works again once the component is back."""

from __future__ import annotations

import pytest

from lwm2m.client import MemoryInstanceStore
from lwm2m.coap.numbers import Code
from lwm2m.errors import SecureComponentUnavailable
from lwm2m.model import ObjectInstance
from lwm2m.operations.requests import Register, Update

from .helpers import Harness, code


class PulledCard(MemoryInstanceStore):
    """An instance store that fails like a component whose card went away, while ``gone``."""

    def __init__(self) -> None:
        super().__init__()
        self.gone = False

    def _check(self) -> None:
        if self.gone:
            raise SecureComponentUnavailable("READ FILE: the card went away")

    def list(self, object_id: int) -> list[int]:
        self._check()
        return super().list(object_id)

    def get(self, object_id: int, instance_id: int) -> ObjectInstance | None:
        self._check()
        return super().get(object_id, instance_id)

    def put(self, object_id: int, instance: ObjectInstance) -> None:
        self._check()
        super().put(object_id, instance)

    def delete(self, object_id: int, instance_id: int) -> None:
        self._check()
        super().delete(object_id, instance_id)


def registered() -> tuple[Harness, PulledCard]:
    card = PulledCard()
    h = Harness(store=card)
    h.register_all()
    return h, card


def test_requests_get_5_03_while_the_component_is_gone() -> None:
    h, card = registered()
    assert code(h.request(Code.GET, "/3/0/0")) == "2.05"
    card.gone = True
    for path in ("/3/0/0", "/1/0/1", "/1"):
        answer = h.request(Code.GET, path)
        assert code(answer) == "5.03"
        assert answer.payload == b"the Secure Component is unavailable"  # no detail of the card
    refused = h.request(Code.PUT, "/1/0/1", payload=b"\xc1\x01\x3c", cf=11542)
    assert code(refused) == "5.03"
    card.gone = False
    assert code(h.request(Code.GET, "/1/0/1")) == "2.05"


def test_an_observation_ends_with_5_03() -> None:
    """RFC 7641 §4.2: an error notification ends the observation; the server learns at once
    that the client cannot report, instead of waiting for notifications that never come."""
    h, card = registered()
    h.request(Code.PUT, "/3/0/0", query=["pmax=10"])
    first = h.request(Code.GET, "/3/0/0", observe=0, token=b"t1")
    assert code(first) == "2.05"
    card.gone = True
    h.advance(11)
    (notification,) = h.take_notifications()
    assert code(notification.message) == "5.03"
    assert notification.message.payload == b"the Secure Component is unavailable"
    assert len(h.engine.observations) == 0
    h.advance(30)
    assert h.take_notifications() == []


def test_a_registration_update_lists_the_instances_last_listed() -> None:
    h, card = registered()
    card.gone = True
    h.engine.request_update(h.now)
    (update,) = h.take(Update)
    assert isinstance(update.operation, Update)
    assert update.operation.objects is None  # nothing changed: the registration stays alive
    h.respond(update, Code.CHANGED)
    card.gone = False
    assert code(h.request(Code.GET, "/3/0/0")) == "2.05"


def test_without_a_list_made_before_the_outage_the_failure_reaches_the_caller() -> None:
    """A Register whose object list was never made: the engine cannot invent one (the I/O
    client catches this and tries again after a back-off)."""
    card = PulledCard()
    h = Harness(store=card)
    h.start()
    (register,) = h.take(Register)
    h.fail(register)
    card.gone = True
    with pytest.raises(SecureComponentUnavailable):
        h.engine._object_links("1.0")
