"""The smartcard re-check of :class:`lwm2m.io.smartcard.SmartcardMonitor` (LwM2M-TS-Core 1.1
§5.2.3.2 Bootstrap from Smartcard; SCS-10): before each Register / Update to a server the card
provisioned, the card is read again (in a worker thread) and the outcome applied.

The card is a scripted :class:`~lwm2m.io.smartcard.BootstrapCard`; the client is the sans-IO
engine of ``tests/client/helpers.py`` with its fake clock set to the event loop's time (the
monitor stamps its actions with the loop's clock). Waits are bounded by ``asyncio.timeout``."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest

from client.helpers import Harness, config, server
from lwm2m.client import ClientConfig
from lwm2m.client.bootstrap import FactoryBootstrap
from lwm2m.client.events import ObjectEvent
from lwm2m.client.smartcard import CardCheck, SmartcardRejected
from lwm2m.io.smartcard import SmartcardMonitor
from lwm2m.model import ObjectInstance, ObjectNode, ResourceType, SingleResource
from lwm2m.operations.requests import Register
from lwm2m.secure.pcsc.errors import BootstrapFileError
from lwm2m.testing import FakeClock

TIMEOUT = 5.0
S = SingleResource
T = ResourceType


def card_objects(*ssids: int, lifetime: int = 300) -> tuple[ObjectNode, ...]:
    """NoSec accounts for ``ssids`` (/0/i and /1/i, i = 0, 1, ...)."""
    security = [
        ObjectInstance(
            iid,
            [
                S(0, T.STRING, f"coap://127.0.0.1:{5600 + ssid}"),
                S(1, T.BOOLEAN, False),
                S(2, T.INTEGER, 3),
                S(3, T.OPAQUE, b""),
                S(4, T.OPAQUE, b""),
                S(5, T.OPAQUE, b""),
                S(10, T.INTEGER, ssid),
            ],
        )
        for iid, ssid in enumerate(ssids)
    ]
    servers = [
        ObjectInstance(iid, [S(0, T.INTEGER, ssid), S(1, T.INTEGER, lifetime), S(7, T.STRING, "U")])
        for iid, ssid in enumerate(ssids)
    ]
    return (ObjectNode(0, security), ObjectNode(1, servers))


class Card:
    """A card holding ``objects``; ``error`` makes the next reads fail; with ``gate`` set a read
    waits in its worker thread until the test releases it (``reading`` tells it started)."""

    def __init__(self, objects: tuple[ObjectNode, ...] | None) -> None:
        self.objects = objects
        self.error: Exception | None = None
        self.gate: threading.Event | None = None
        self.reading = threading.Event()
        self.calls = 0

    def card_present(self) -> bool:
        self.calls += 1
        return self.objects is not None

    def read_bootstrap(self, *, scp03_keys: Any = None, registry: Any = None) -> Any:
        self.calls += 1
        self.reading.set()
        if self.gate is not None:
            self.gate.wait(TIMEOUT)
        if self.error is not None:
            raise self.error
        assert self.objects is not None
        digest = hashlib.sha256(repr(self.objects).encode()).digest()
        return SimpleNamespace(data=[SimpleNamespace(node=n) for n in self.objects], digest=digest)


class Host:
    """What the monitor needs of an ``LwM2MClient``: its engine and the request_check seam."""

    def __init__(self, harness: Harness) -> None:
        self.engine = harness.engine
        self.request_check: Any = None


async def started(card: Card, cfg: ClientConfig | None = None) -> tuple[Harness, SmartcardMonitor]:
    monitor = SmartcardMonitor(card)
    await monitor.load()
    cfg = cfg or ClientConfig(endpoint="card-ep")
    h = Harness(cfg, sources=[monitor.source, FactoryBootstrap(cfg)])
    h.clock = FakeClock(asyncio.get_running_loop().time())
    h.start()
    host = Host(h)
    monitor.attach(cast(Any, host))
    assert host.request_check == monitor.check_request
    return h, monitor


async def test_a_server_the_card_did_not_provision_is_not_re_checked() -> None:
    """No card at start: the factory account registers and the card is not read again."""
    card = Card(None)
    h, monitor = await started(card, config(server(102)))
    assert not monitor.source.active
    [register] = h.take(Register)
    assert register.connection.uri.port == 5702
    calls = card.calls
    async with asyncio.timeout(TIMEOUT):
        assert await monitor.check_request(register) is True
    assert card.calls == calls
    assert monitor.outcomes == []


async def test_unreadable_card_data_keep_the_previous_configuration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A malformed file at a re-check: the request goes out with the configuration already
    applied, never a half-applied one (REJECTED), and a warning names the reason."""
    card = Card(card_objects(101))
    h, monitor = await started(card)
    digest = monitor.source.digest
    [register] = h.take(Register)
    h.take_events()
    card.error = BootstrapFileError("truncated", field="object[0].length")
    with caplog.at_level(logging.WARNING, logger="lwm2m.io.smartcard"):
        async with asyncio.timeout(TIMEOUT):
            assert await monitor.check_request(register) is True
    assert monitor.outcomes == [CardCheck.REJECTED]
    assert "previous configuration kept" in caplog.text
    assert "object[0].length" in caplog.text
    assert h.engine.is_pending(register.request_id)
    assert monitor.source.digest == digest
    assert h.tree.instance_ids(0) == [0]
    assert h.tree.instance_ids(1) == [0]
    [rejected] = [e.event for e in h.take_events(ObjectEvent)]
    assert isinstance(rejected, SmartcardRejected)
    assert "object[0].length" in rejected.reason
    assert h.take(Register) == []


async def test_a_request_superseded_while_waiting_for_the_card_is_dropped_unread() -> None:
    """Two provisioned servers register at once; the first re-check finds new card data and
    re-provisions both, so the second request is dropped without reading the card again."""
    card = Card(card_objects(101, 102))
    h, monitor = await started(card)
    first, second = h.take(Register)
    card.objects = card_objects(101, 102, lifetime=600)
    calls = card.calls
    async with asyncio.timeout(TIMEOUT):
        results = await asyncio.gather(monitor.check_request(first), monitor.check_request(second))
    assert results == [False, False]
    assert monitor.outcomes == [CardCheck.CHANGED]
    assert card.calls == calls + 2  # one card_present() and one read, for the first request
    assert not h.engine.is_pending(first.request_id)
    assert not h.engine.is_pending(second.request_id)
    again = h.take(Register)
    assert sorted(r.connection.short_server_id for r in again) == [101, 102]
    assert {r.operation.lifetime for r in again} == {600}


async def test_a_request_dropped_while_the_card_is_read_is_not_sent() -> None:
    """The engine stops waiting for the Register while the worker thread reads the card: the
    check says drop it and applies nothing."""
    card = Card(card_objects(101))
    h, monitor = await started(card)
    [register] = h.take(Register)
    card.reading.clear()
    card.gate = threading.Event()
    try:
        async with asyncio.timeout(TIMEOUT):
            check = asyncio.ensure_future(monitor.check_request(register))
            assert await asyncio.to_thread(card.reading.wait, TIMEOUT)
            h.fail(register, "the client is stopping")
            assert not h.engine.is_pending(register.request_id)
            card.gate.set()
            assert await check is False
    finally:
        card.gate.set()
    assert monitor.outcomes == []
    assert monitor.source.active
