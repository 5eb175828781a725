"""A fleet of simulated LwM2M devices in one process and one event loop (layer L4).

Each device is a full :class:`~lwm2m.io.lwm2m_client.LwM2MClient` on its own UDP socket (bound
to ``bind_host``, port 0) with the client's standard objects /0 Security, /1 Server, /2 Access
Control and a /3 Device (:class:`~lwm2m.client.objects.Device`: manufacturer, model, the
endpoint as serial number, battery 100 %), registering to one server over plain CoAP
(``coap://``: NoSec, :class:`~lwm2m.io.lwm2m_client.UdpConnector`) or DTLS-PSK (``coaps://``):
then each device has its own random 16-byte PSK with its endpoint name as identity, and
:meth:`Fleet.security_entries` gives the server's security store what it needs (the keys stay
in this process; put them in a store the server reads, such as the same SQLite file).

Endpoints are ``PREFIX`` + the index **zero-padded** to the width of the last index:
``sim-00`` … ``sim-24`` for 25 devices, ``sim-0`` … ``sim-9`` for 10 (:meth:`Fleet.endpoint`).

Devices start at a bounded rate: device *i* starts (binds, sends its Register) no earlier
than ``i / rate`` seconds after :meth:`Fleet.start` began, so a fleet never bursts the server.
One starter task paces them; a device costs nothing else than its client (no task of its own):
its state follows the client's events through a callback.

Usage::

    fleet = Fleet(FleetConfig("coap://127.0.0.1:5683", count=1000, rate=100))
    await fleet.start()                          # returns once every device was started
    async with asyncio.timeout(60):
        await fleet.wait_until(lambda s: s.registered + s.failed == s.total)
    print(fleet.stats())
    await fleet.stop()                           # De-registers every device (bounded)
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import resource
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from lwm2m.client import ClientConfig, Secret, SecurityConfig, SecurityMode, ServerConfig
from lwm2m.client.accounts import ServerUri
from lwm2m.client.events import (
    ClientEvent,
    Deregistered,
    Registered,
    RegistrationFailed,
    RegistrationUpdated,
)
from lwm2m.client.objects import Device, ObjectHandler
from lwm2m.coap.config import CoapConfig
from lwm2m.errors import Lwm2mError
from lwm2m.io.lwm2m_client import LwM2MClient, UdpConnector
from lwm2m.server.security import SecurityInfo

__all__ = [
    "DeviceState",
    "Fleet",
    "FleetConfig",
    "FleetError",
    "FleetStats",
    "SimDevice",
    "default_objects",
    "ensure_open_files",
]

PSK_LENGTH = 16
"""Bytes of each simulated device's PSK (AES-128 suites)."""

RESERVED_FILES = 64
"""Open files kept for the rest of the process (the server socket, logs, imports ...)."""


class FleetError(Lwm2mError):
    """The fleet cannot be configured or started (one line, for the command line)."""


class DeviceState(enum.Enum):
    IDLE = "idle"
    """Not started yet."""
    REGISTERING = "registering"
    """Started; its Register has no outcome yet."""
    REGISTERED = "registered"
    FAILED = "failed"
    """Its last Register (or Update) failed; the client retries as its account says."""
    DEREGISTERED = "deregistered"
    """Stopped after a De-register (answered, or given up on within the grace time)."""
    STOPPED = "stopped"
    """Stopped without a De-register (it was not registered)."""


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """What :class:`Fleet` simulates."""

    server: str
    """The LwM2M server, ``coap://HOST[:PORT]``, or ``coaps://`` for DTLS-PSK devices."""
    count: int
    prefix: str = "sim-"
    rate: float = 50.0
    """Device starts (Registers) per second at most."""
    lifetime: int = 300
    """Registration lifetime in seconds."""
    queue_mode: bool = False
    awake_time: float = 93.0
    """Queue mode: seconds awake after the last exchange."""
    bind_host: str = "127.0.0.1"
    """Every device binds its own UDP socket on this host, port 0."""
    short_server_id: int = 101
    retry_count: int = 5
    """Register attempts per sequence (/1/x/17); ``retry_timer`` (/1/x/18) seconds apart."""
    retry_timer: int = 60
    coap: CoapConfig | None = None
    """CoAP transmission parameters of every device (shorter timeouts detect a dead server
    sooner); None: the RFC 7252 defaults."""

    def __post_init__(self) -> None:
        if self.count < 1:
            raise FleetError(f"count must be at least 1, not {self.count}")
        if not self.rate > 0:
            raise FleetError(f"rate must be above 0 registrations per second, not {self.rate}")
        if self.lifetime < 1:
            raise FleetError(f"lifetime must be at least 1 second, not {self.lifetime}")
        try:
            uri = ServerUri.parse(self.server)
        except ValueError as exc:
            raise FleetError(f"server URI {self.server!r}: {exc}") from None
        if uri.scheme not in ("coap", "coaps"):
            raise FleetError(f"server URI {self.server!r}: coap:// or coaps:// (DTLS-PSK)")

    @property
    def psk(self) -> bool:
        """Whether the devices use DTLS-PSK (a ``coaps://`` server)."""
        return self.server.startswith("coaps:")


@dataclass(frozen=True, slots=True)
class FleetStats:
    """A snapshot of the fleet's counters: devices per :class:`DeviceState` and events."""

    total: int
    idle: int
    registering: int
    registered: int
    failed: int
    deregistered: int
    stopped: int
    registrations: int
    """Registered events so far (a device that registers again counts again)."""
    failures: int
    """RegistrationFailed events so far."""

    @property
    def started(self) -> int:
        return self.total - self.idle

    def line(self) -> str:
        """``registered 20/25, registering 3, failed 2, ...`` (states with devices only)."""
        parts = [f"registered {self.registered}/{self.total}"]
        for name in ("registering", "failed", "deregistered", "stopped", "idle"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name} {value}")
        if self.failures:
            parts.append(f"failures {self.failures}")
        return ", ".join(parts)


class SimDevice:
    """One simulated device: its endpoint, client (None until started) and state."""

    __slots__ = ("client", "endpoint", "index", "last_failure", "psk", "registered_at", "state")

    def __init__(self, index: int, endpoint: str, psk: bytes = b"") -> None:
        self.index = index
        self.endpoint = endpoint
        self.psk = psk
        """Its DTLS PSK (empty over plain CoAP); never in a repr."""
        self.client: LwM2MClient | None = None
        self.state = DeviceState.IDLE
        self.registered_at: float | None = None
        """``loop.time()`` of its first Registered event."""
        self.last_failure: str | None = None

    def __repr__(self) -> str:
        return f"<SimDevice {self.endpoint} {self.state.value}>"


ObjectsFactory = Callable[[SimDevice], Iterable[ObjectHandler]]


def default_objects(device: SimDevice) -> list[ObjectHandler]:
    """The /3 Device of a simulated device (the client adds /0, /1 and /2)."""
    return [
        Device(
            manufacturer="lwm2m for Python",
            model_number="Fleet Simulator",
            serial_number=device.endpoint,
            firmware_version="1.0.0",
            supported_bindings="UQ",
            wall_clock=time.time,
            values={9: 100},  # battery level, %
        )
    ]


def ensure_open_files(count: int, reserve: int = RESERVED_FILES) -> int:
    """Make room for ``count`` sockets (plus ``reserve``): raise the soft open-file limit up to
    the hard one when needed. Returns the soft limit; FleetError when they cannot fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = count + reserve
    if soft == resource.RLIM_INFINITY or soft >= need:
        return soft
    if hard != resource.RLIM_INFINITY and hard < need:
        raise FleetError(
            f"{count} devices need about {need} open files but the hard limit is {hard} "
            "(raise it, e.g. ulimit -Hn, or simulate fewer devices)"
        )
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    except (ValueError, OSError) as exc:
        raise FleetError(f"cannot raise the open-file limit to {need}: {exc}") from None
    return need


class Fleet:
    """``config.count`` LwM2M clients in this event loop (see the module docstring).

    :param objects: makes the application objects of a device (default :func:`default_objects`).
    :param on_change: called with a device after each change of its state.
    """

    def __init__(
        self,
        config: FleetConfig,
        *,
        objects: ObjectsFactory = default_objects,
        on_change: Callable[[SimDevice], None] | None = None,
    ) -> None:
        self.config = config
        self._objects = objects
        self._on_change = on_change
        width = len(str(config.count - 1))
        self.devices: Sequence[SimDevice] = [
            SimDevice(
                i,
                f"{config.prefix}{i:0{width}d}",
                secrets.token_bytes(PSK_LENGTH) if config.psk else b"",
            )
            for i in range(config.count)
        ]
        self._template = ClientConfig(
            endpoint=config.prefix,
            servers=(
                ServerConfig(
                    uri=config.server,
                    short_server_id=config.short_server_id,
                    lifetime=config.lifetime,
                    retry_count=config.retry_count,
                    retry_timer=config.retry_timer,
                ),
            ),
            queue_mode=config.queue_mode,
            awake_time=config.awake_time,
            bind=(config.bind_host, 0),
        )
        self._family = socket.AF_INET6 if ":" in config.bind_host else socket.AF_INET
        self._states: Counter[DeviceState] = Counter({DeviceState.IDLE: config.count})
        self._registrations = 0
        self._failures = 0
        self._changed = asyncio.Event()
        self._starter: asyncio.Task[None] | None = None
        self._stopping = False

    def endpoint(self, index: int) -> str:
        """The endpoint name of device ``index``."""
        return self.devices[index].endpoint

    def security_entries(self) -> list[SecurityInfo]:
        """The server-side security entries of the devices (DTLS-PSK: identity = endpoint);
        empty over plain CoAP."""
        return [
            SecurityInfo.psk(d.endpoint, d.endpoint.encode(), d.psk) for d in self.devices if d.psk
        ]

    def stats(self) -> FleetStats:
        states = self._states
        return FleetStats(
            total=self.config.count,
            idle=states[DeviceState.IDLE],
            registering=states[DeviceState.REGISTERING],
            registered=states[DeviceState.REGISTERED],
            failed=states[DeviceState.FAILED],
            deregistered=states[DeviceState.DEREGISTERED],
            stopped=states[DeviceState.STOPPED],
            registrations=self._registrations,
            failures=self._failures,
        )

    async def wait_until(self, predicate: Callable[[FleetStats], bool]) -> FleetStats:
        """Wait until ``predicate(stats)`` holds (bound it with ``asyncio.timeout``)."""
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats
            self._changed.clear()
            await self._changed.wait()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every device at the configured rate; returns once the last one was started
        (its Register sent), not when they are registered (see :meth:`wait_until`). FleetError
        when the open files do not suffice or a socket cannot be bound (the devices started
        so far keep running until :meth:`stop`). A :meth:`stop` meanwhile ends it early."""
        if self._starter is not None:
            raise RuntimeError("the fleet was already started")
        ensure_open_files(self.config.count)
        self._starter = asyncio.get_running_loop().create_task(self._start_all())
        try:
            await self._starter
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            if self._stopping and not task.cancelling():
                return  # stop() ended the starting, this caller was not cancelled
            raise

    async def _start_all(self) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        interval = 1.0 / self.config.rate
        for device in self.devices:
            delay = began + device.index * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            config = dataclasses.replace(self._template, endpoint=device.endpoint)
            if device.psk:
                (account,) = config.servers
                security = SecurityConfig(
                    mode=SecurityMode.PSK,
                    identity=device.endpoint.encode(),
                    secret_key=Secret(device.psk),
                )
                config = dataclasses.replace(
                    config, servers=(dataclasses.replace(account, security=security),)
                )
            client = LwM2MClient(
                config,
                self._objects(device),
                connector=None if device.psk else UdpConnector(self._family),
                coap_config=self.config.coap,
                on_event=functools.partial(self._on_event, device),
            )
            self._move(device, DeviceState.REGISTERING)
            try:
                await client.start()
            except OSError as exc:
                self._move(device, DeviceState.STOPPED)
                raise FleetError(
                    f"device {device.endpoint}: cannot bind {self.config.bind_host}:0: "
                    f"{exc.strerror or exc}"
                ) from None
            device.client = client

    async def stop(self, grace: float = 5.0) -> None:
        """Stop starting devices, then de-register every started one at once, each waiting up
        to ``grace`` seconds for its server's answer."""
        self._stopping = True
        if self._starter is not None and not self._starter.done():
            self._starter.cancel()
            await asyncio.gather(self._starter, return_exceptions=True)
        await asyncio.gather(
            *(self._stop_device(d, grace) for d in self.devices if d.client is not None)
        )

    async def _stop_device(self, device: SimDevice, grace: float) -> None:
        assert device.client is not None
        await device.client.stop(grace)
        if device.state is not DeviceState.DEREGISTERED:
            self._move(device, DeviceState.STOPPED)

    # -- events ----------------------------------------------------------------------------------

    def _on_event(self, device: SimDevice, event: ClientEvent) -> None:
        match event:
            case Registered():
                self._registrations += 1
                if device.registered_at is None:
                    device.registered_at = asyncio.get_running_loop().time()
                self._move(device, DeviceState.REGISTERED)
            case RegistrationUpdated():
                self._move(device, DeviceState.REGISTERED)
            case RegistrationFailed(reason=reason):
                self._failures += 1
                device.last_failure = reason
                self._move(device, DeviceState.FAILED)
            case Deregistered():
                self._move(device, DeviceState.DEREGISTERED)
            case _:
                pass

    def _move(self, device: SimDevice, state: DeviceState) -> None:
        if device.state is not state:
            self._states[device.state] -= 1
            self._states[state] += 1
            device.state = state
        self._changed.set()
        if self._on_change is not None:
            self._on_change(device)
