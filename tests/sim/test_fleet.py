"""The fleet simulator against a real LwM2M server on loopback: every device registers, the
start rate is bounded, the server can Read a simulated device, ``stop()`` de-registers all of
them, a dead server counts failures. Every wait is bounded; nothing sleeps to settle a race."""

from __future__ import annotations

import asyncio
import resource
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lwm2m.coap.config import CoapConfig, TransmissionParameters
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.server import events as server_events
from lwm2m.sim import (
    DeviceState,
    Fleet,
    FleetConfig,
    FleetError,
    FleetStats,
    SimDevice,
    ensure_open_files,
)
from lwm2m.sim import fleet as fleet_module

TIMEOUT = 10.0
FAST = CoapConfig(
    transmission=TransmissionParameters(ack_timeout=0.05, ack_random_factor=1.0, max_retransmit=1)
)


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    server = LwM2MServer(expiry_interval=None)
    await server.start(("127.0.0.1", 0))
    try:
        yield server
    finally:
        await server.stop()


def uri(server: LwM2MServer) -> str:
    host, port = server.local_address[:2]
    return f"coap://{host}:{port}"


def dead_uri() -> str:
    """A loopback port nobody listens on (bound and released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"coap://127.0.0.1:{port}"


async def test_a_fleet_registers_at_a_bounded_rate_is_readable_and_deregisters(
    server: LwM2MServer,
) -> None:
    count, rate = 25, 200.0
    loop = asyncio.get_running_loop()
    registered_at: dict[str, float] = {}
    deregistered: set[str] = set()

    def listen(event: Any) -> None:
        if isinstance(event, server_events.Registered):
            registered_at[event.registration.endpoint] = loop.time()
        elif isinstance(event, server_events.Deregistered):
            deregistered.add(event.registration.endpoint)

    server.add_listener(listen)
    fleet = Fleet(FleetConfig(uri(server), count=count, rate=rate, lifetime=120))
    assert fleet.endpoint(0) == "sim-00"
    assert fleet.endpoint(24) == "sim-24"
    began = loop.time()
    try:
        async with asyncio.timeout(TIMEOUT):
            await fleet.start()
            stats = await fleet.wait_until(lambda s: s.registered == s.total)
        assert stats.registrations == count
        assert stats.failures == 0
        assert stats.started == count
        endpoints = {fleet.endpoint(i) for i in range(count)}
        assert set(registered_at) == endpoints
        assert {r.endpoint for r in await server.registrations()} == endpoints
        # device i starts no earlier than i / rate after start(): the k-th registration the
        # server saw cannot precede began + k / rate (a lower bound only)
        for k, at in enumerate(sorted(registered_at.values())):
            assert at - began >= k / rate - 1e-3
        assert max(registered_at.values()) - began >= (count - 1) / rate - 1e-3
        assert all(d.registered_at is not None for d in fleet.devices)
        # the server reads a simulated device's Device object
        async with asyncio.timeout(TIMEOUT):
            response = await server.read(fleet.endpoint(7), "/3/0/0")
            serial = await server.read(fleet.endpoint(7), "/3/0/2")
        assert response.content is not None
        assert response.content.value == "lwm2m for Python"
        assert serial.content is not None
        assert serial.content.value == "sim-07"
    finally:
        async with asyncio.timeout(TIMEOUT):
            await fleet.stop(grace=2.0)
    final = fleet.stats()
    assert final.deregistered == count
    assert final.registered == 0
    assert deregistered == endpoints
    assert await server.registrations() == []


async def test_a_dead_server_counts_failures_without_crashing() -> None:
    fleet = Fleet(FleetConfig(dead_uri(), count=4, rate=500, retry_count=1, coap=FAST))
    try:
        async with asyncio.timeout(TIMEOUT):
            await fleet.start()
            stats = await fleet.wait_until(lambda s: s.failed == s.total)
        assert stats.registered == 0
        assert stats.failures >= 4
        assert all(d.last_failure for d in fleet.devices)
        assert "failed 4" in stats.line()
        assert "failures" in stats.line()
    finally:
        async with asyncio.timeout(TIMEOUT):
            await fleet.stop(grace=0.5)
    assert fleet.stats().stopped == 4
    assert {repr(d) for d in fleet.devices} == {f"<SimDevice sim-{i} stopped>" for i in range(4)}


async def test_state_changes_and_updates_reach_on_change(server: LwM2MServer) -> None:
    seen: list[tuple[str, DeviceState]] = []
    fleet = Fleet(
        FleetConfig(uri(server), count=2, prefix="q", rate=500, queue_mode=True),
        on_change=lambda d: seen.append((d.endpoint, d.state)),
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            await fleet.start()
            await fleet.wait_until(lambda s: s.registered == 2)
        registration = await server.registration("q0")
        assert registration is not None
        assert registration.queue_mode
        before = len(seen)
        client = fleet.devices[0].client
        assert client is not None
        async with asyncio.timeout(TIMEOUT):
            updates = server.subscribe()
            client.update()
            await updates.wait_for(server_events.Updated)
            updates.close()
            await fleet.wait_until(lambda s: len(seen) > before)
        assert seen[before:] == [("q0", DeviceState.REGISTERED)]
    finally:
        async with asyncio.timeout(TIMEOUT):
            await fleet.stop()
    assert ("q1", DeviceState.DEREGISTERED) in seen


async def test_stop_while_starting_ends_the_start_and_keeps_the_rest_idle(
    server: LwM2MServer,
) -> None:
    fleet = Fleet(FleetConfig(uri(server), count=50, rate=20))
    starting = asyncio.get_running_loop().create_task(fleet.start())
    async with asyncio.timeout(TIMEOUT):
        await fleet.wait_until(lambda s: s.registered >= 2)
        await fleet.stop()
        await starting  # returns: stop() ended it, its caller was not cancelled
    stats = fleet.stats()
    assert stats.idle > 0
    assert stats.deregistered == stats.started >= 2
    assert stats.deregistered + stats.idle == 50


async def test_a_cancelled_start_is_cancelled(server: LwM2MServer) -> None:
    fleet = Fleet(FleetConfig(uri(server), count=50, rate=20))
    starting = asyncio.get_running_loop().create_task(fleet.start())
    try:
        async with asyncio.timeout(TIMEOUT):
            await fleet.wait_until(lambda s: s.started >= 1)
            starting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await starting
    finally:
        async with asyncio.timeout(TIMEOUT):
            await fleet.stop()
    assert fleet.stats().idle > 0


async def test_start_twice_and_stop_before_start(server: LwM2MServer) -> None:
    fleet = Fleet(FleetConfig(uri(server), count=1))
    await fleet.stop()  # nothing started: nothing to do
    assert fleet.stats().idle == 1
    fleet = Fleet(FleetConfig(uri(server), count=1))
    try:
        async with asyncio.timeout(TIMEOUT):
            await fleet.start()
            with pytest.raises(RuntimeError, match="already started"):
                await fleet.start()
    finally:
        await fleet.stop()


async def test_a_socket_that_cannot_be_bound_is_a_fleet_error(server: LwM2MServer) -> None:
    fleet = Fleet(FleetConfig(uri(server), count=3, bind_host="192.0.2.1"))
    try:
        with pytest.raises(FleetError, match=r"device sim-0: cannot bind 192\.0\.2\.1:0: "):
            async with asyncio.timeout(TIMEOUT):
                await fleet.start()
    finally:
        await fleet.stop()
    stats = fleet.stats()
    assert (stats.stopped, stats.idle) == (1, 2)


def test_endpoints_are_zero_padded_to_the_last_index() -> None:
    assert [d.endpoint for d in Fleet(FleetConfig("coap://h", count=10)).devices][-1] == "sim-9"
    names = [d.endpoint for d in Fleet(FleetConfig("coap://h", count=11, prefix="d")).devices]
    assert names[:2] == ["d00", "d01"]
    assert names[-1] == "d10"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"count": 0}, "count must be at least 1, not 0"),
        ({"rate": 0}, "rate must be above 0"),
        ({"rate": float("nan")}, "rate must be above 0"),
        ({"lifetime": 0}, "lifetime must be at least 1 second"),
        ({"server": "http://h"}, "server URI 'http://h': unsupported URI scheme 'http'"),
        ({"server": "coap://"}, "has no host"),
        ({"server": "coap+tcp://h"}, "coap:// or coaps://"),
    ],
)
def test_invalid_configurations(values: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"server": "coap://127.0.0.1", "count": 1, **values}
    with pytest.raises(FleetError, match=message):
        FleetConfig(**arguments)


def test_stats_line_names_the_states_with_devices() -> None:
    stats = FleetStats(10, 1, 2, 3, 0, 4, 0, registrations=3, failures=0)
    assert stats.line() == "registered 3/10, registering 2, deregistered 4, idle 1"
    assert stats.started == 9
    device = SimDevice(3, "x3")
    assert repr(device) == "<SimDevice x3 idle>"
    assert device.client is None


class Limits:
    """A fake RLIMIT_NOFILE: what ``setrlimit`` was asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, soft: int, hard: int) -> None:
        self.limits = (soft, hard)
        self.set: list[tuple[int, int]] = []
        self.fail: Exception | None = None
        monkeypatch.setattr(fleet_module.resource, "getrlimit", self.getrlimit)
        monkeypatch.setattr(fleet_module.resource, "setrlimit", self.setrlimit)

    def getrlimit(self, which: int) -> tuple[int, int]:
        assert which == resource.RLIMIT_NOFILE
        return self.limits

    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        if self.fail is not None:
            raise self.fail
        self.set.append(limits)


def test_the_open_file_limit_is_raised_up_to_the_hard_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = Limits(monkeypatch, 1024, 4096)
    assert ensure_open_files(100) == 1024
    assert limits.set == []
    assert ensure_open_files(2000) == 2064
    assert limits.set == [(2064, 4096)]
    assert ensure_open_files(4032) == 4096
    with pytest.raises(FleetError, match="5000 devices need about 5064 open files but the hard"):
        ensure_open_files(5000)
    limits.fail = ValueError("not allowed")
    with pytest.raises(FleetError, match="cannot raise the open-file limit to 2064: not allowed"):
        ensure_open_files(2000)


def test_unlimited_open_files(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = Limits(monkeypatch, resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    assert ensure_open_files(10**6) == resource.RLIM_INFINITY
    limits.limits = (1024, resource.RLIM_INFINITY)
    assert ensure_open_files(10**6) == 10**6 + 64
    assert limits.set == [(10**6 + 64, resource.RLIM_INFINITY)]


async def test_start_fails_when_the_sockets_cannot_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    Limits(monkeypatch, 256, 256)
    fleet = Fleet(FleetConfig("coap://127.0.0.1", count=1000))
    with pytest.raises(FleetError, match="hard limit is 256"):
        await fleet.start()
    assert fleet.stats().idle == 1000
