"""The Device object (/3), Connectivity Monitoring (/4), Location (/6) and Connectivity Statistics
(/7) (LwM2M-TS-Core 1.1 Appendix E.4, E.5, E.7, E.8 and the OMA registry definitions).

All four are :class:`~lwm2m.client.objects.base.SimpleObject` s with one instance (id 0) whose
values the application sets (``device.set(9, 80)`` for the battery level). Engines never read a
clock: the Device's Current Time (/3/0/13) comes from an injected ``wall_clock`` callable (the
asyncio runner passes :func:`time.time`); writing it stores an offset to that clock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from lwm2m.client.arguments import ExecuteArguments
from lwm2m.client.objects.base import ResourceValue, SimpleInstance, SimpleObject
from lwm2m.client.objects.security import _definition
from lwm2m.errors import MethodNotAllowed
from lwm2m.model.definitions import ObjectDefinition

__all__ = [
    "ConnectivityMonitoring",
    "ConnectivityStatistics",
    "Device",
    "DeviceAction",
    "ErrorCode",
    "Location",
]


@dataclass(frozen=True, slots=True)
class DeviceAction:
    """Emitted when a server executes Reboot (/3/0/4) or Factory Reset (/3/0/5):
    ``action`` is ``"reboot"`` or ``"factory_reset"``. The engine's user performs it after the
    response went out."""

    action: str


class ErrorCode:
    """/3/0/11 values (E.4): 0 none, 1 low battery, 2 external power off, 3 GPS failure,
    4 low signal, 5 out of memory, 6 SMS failure, 7 IP connectivity failure, 8 peripheral
    malfunction."""

    NO_ERROR = 0
    LOW_BATTERY = 1
    EXTERNAL_POWER_OFF = 2
    GPS_FAILURE = 3
    LOW_SIGNAL = 4
    OUT_OF_MEMORY = 5
    SMS_FAILURE = 6
    IP_CONNECTIVITY_FAILURE = 7
    PERIPHERAL_MALFUNCTION = 8


_REBOOT, _FACTORY_RESET, _ERROR_CODE, _RESET_ERROR_CODE, _CURRENT_TIME = 4, 5, 11, 12, 13


class _DeviceInstance(SimpleInstance):
    def __init__(
        self,
        values: Mapping[int, object],
        device: Device,
        wall_clock: Callable[[], float] | None,
    ) -> None:
        super().__init__(values)
        self._device = device
        self._wall_clock = wall_clock
        self._offset = 0.0

    def resource_ids(self) -> Collection[int]:
        ids = set(self._values)
        if self._wall_clock is not None:
            ids.add(_CURRENT_TIME)
        return ids

    def read_resource(self, resource_id: int) -> ResourceValue:
        if resource_id == _CURRENT_TIME and self._wall_clock is not None:
            return int(self._wall_clock() + self._offset)
        return super().read_resource(resource_id)

    def write_resource(self, resource_id: int, value: ResourceValue) -> None:
        if resource_id == _CURRENT_TIME and self._wall_clock is not None:
            assert isinstance(value, int)
            self._offset = value - self._wall_clock()
            return
        super().write_resource(resource_id, value)

    def execute(self, resource_id: int, arguments: ExecuteArguments) -> None:
        device = self._device
        if resource_id == _REBOOT:
            device.emit(DeviceAction("reboot"))
            if device.on_reboot is not None:
                device.on_reboot()
        elif resource_id == _FACTORY_RESET:
            device.emit(DeviceAction("factory_reset"))
            if device.on_factory_reset is not None:
                device.on_factory_reset()
        elif resource_id == _RESET_ERROR_CODE:
            self.set(_ERROR_CODE, {0: ErrorCode.NO_ERROR})
        else:
            raise MethodNotAllowed(f"/3/0/{resource_id} is not executable")


class Device(SimpleObject):
    """/3 Device, instance 0.

    ``on_reboot`` / ``on_factory_reset`` run when a server executes /3/0/4 and /3/0/5 (a
    :class:`DeviceAction` event is queued as well). ``values`` sets any other resource by id.

    >>> device = Device(manufacturer="ACME", model_number="R1", wall_clock=lambda: 1000.0)
    >>> device.read(0, [0, 13, 16]).resources[13].value
    1000
    """

    def __init__(
        self,
        *,
        manufacturer: str | None = None,
        model_number: str | None = None,
        serial_number: str | None = None,
        firmware_version: str | None = None,
        device_type: str | None = None,
        hardware_version: str | None = None,
        software_version: str | None = None,
        supported_bindings: str = "UQ",
        wall_clock: Callable[[], float] | None = None,
        on_reboot: Callable[[], None] | None = None,
        on_factory_reset: Callable[[], None] | None = None,
        values: Mapping[int, object] | None = None,
        definition: ObjectDefinition | None = None,
    ) -> None:
        super().__init__(definition or _definition(3), factory=None, deletable=False)
        self.on_reboot = on_reboot
        self.on_factory_reset = on_factory_reset
        initial: dict[int, object] = {_ERROR_CODE: {0: ErrorCode.NO_ERROR}, 16: supported_bindings}
        named = {
            0: manufacturer,
            1: model_number,
            2: serial_number,
            3: firmware_version,
            17: device_type,
            18: hardware_version,
            19: software_version,
        }
        initial.update({rid: v for rid, v in named.items() if v is not None})
        initial.update(values or {})
        self._add(0, _DeviceInstance(initial, self, wall_clock))

    def set(self, resource_id: int, value: object) -> None:
        """Set a resource of /3/0 (observers are notified)."""
        self.instance(0).set(resource_id, value)

    def add_error_code(self, code: int) -> None:
        """Report an error in /3/0/11 (keeps the others; "no error" is replaced)."""
        current = dict(self._error_codes())
        values = [v for v in current.values() if v != ErrorCode.NO_ERROR]
        if code not in values:
            values.append(code)
        self.set(_ERROR_CODE, values)

    def _error_codes(self) -> Mapping[int, object]:
        value = self.instance(0).get(_ERROR_CODE)
        return value if isinstance(value, Mapping) else {}

    @property
    def error_codes(self) -> list[int]:
        return [v for v in self._error_codes().values() if isinstance(v, int)]


class ConnectivityMonitoring(SimpleObject):
    """/4 Connectivity Monitoring, instance 0. Defaults describe a wired IP link (bearer 41,
    Ethernet); pass ``values`` to describe the real one."""

    def __init__(
        self,
        *,
        ip_addresses: tuple[str, ...] = (),
        values: Mapping[int, object] | None = None,
        definition: ObjectDefinition | None = None,
    ) -> None:
        super().__init__(definition or _definition(4), factory=None, deletable=False)
        initial: dict[int, object] = {0: 41, 1: [41], 2: 0, 4: list(ip_addresses)}
        initial.update(values or {})
        self._add(0, initial)

    def set(self, resource_id: int, value: object) -> None:
        self.instance(0).set(resource_id, value)


class Location(SimpleObject):
    """/6 Location, instance 0."""

    def __init__(
        self,
        latitude: float = 0.0,
        longitude: float = 0.0,
        *,
        timestamp: int = 0,
        values: Mapping[int, object] | None = None,
        definition: ObjectDefinition | None = None,
    ) -> None:
        super().__init__(definition or _definition(6), factory=None, deletable=False)
        initial: dict[int, object] = {0: float(latitude), 1: float(longitude), 5: timestamp}
        initial.update(values or {})
        self._add(0, initial)

    def set_position(
        self,
        latitude: float,
        longitude: float,
        timestamp: int,
        *,
        altitude: float | None = None,
        radius: float | None = None,
        speed: float | None = None,
    ) -> None:
        """Update the position (observers of /6/0 are notified once)."""
        inst = self.instance(0)
        changes: dict[int, object] = {0: float(latitude), 1: float(longitude), 5: timestamp}
        for rid, value in ((2, altitude), (3, radius), (6, speed)):
            if value is not None:
                changes[rid] = float(value)
        for rid, new in changes.items():
            inst._values[rid] = inst._typed(rid, new)
        inst.changed(*changes)


class _StatisticsInstance(SimpleInstance):
    def __init__(self, owner: ConnectivityStatistics) -> None:
        super().__init__({2: 0, 3: 0, 4: 0, 5: 0, 0: 0, 1: 0})
        self._owner = owner

    def execute(self, resource_id: int, arguments: ExecuteArguments) -> None:
        if resource_id == 6:  # Start: reset the counters and collect
            for rid in (0, 1, 2, 3, 4, 5):
                self._values[rid] = 0
            self._owner._messages = 0
            self._owner._bytes = {2: 0, 3: 0}
            self._owner.collecting = True
            self.changed(0, 1, 2, 3, 4, 5)
        elif resource_id == 7:  # Stop
            self._owner.collecting = False
        else:
            raise MethodNotAllowed(f"/7/0/{resource_id} is not executable")


class ConnectivityStatistics(SimpleObject):
    """/7 Connectivity Statistics, instance 0: counters collected between Start (/7/0/6) and
    Stop (/7/0/7). Feed it with :meth:`record` (the asyncio runner records its datagrams).
    Tx/Rx Data are in kilobytes, as the object defines."""

    def __init__(self, *, definition: ObjectDefinition | None = None) -> None:
        super().__init__(definition or _definition(7), factory=None, deletable=False)
        self.collecting = False
        self._messages = 0
        self._bytes = {2: 0, 3: 0}
        self._add(0, _StatisticsInstance(self))

    def record(
        self, *, tx_bytes: int = 0, rx_bytes: int = 0, sms_tx: int = 0, sms_rx: int = 0
    ) -> None:
        """Count traffic (ignored unless collecting)."""
        if not self.collecting:
            return
        inst = self.instance(0)
        values = inst._values
        self._bytes[2] += tx_bytes
        self._bytes[3] += rx_bytes
        size = tx_bytes + rx_bytes
        self._messages += 1 if size else 0
        changed = [2, 3]
        values[2] = self._bytes[2] // 1024
        values[3] = self._bytes[3] // 1024
        if size:
            current_max = values.get(4, 0)
            values[4] = max(current_max if isinstance(current_max, int) else 0, size)
            values[5] = (self._bytes[2] + self._bytes[3]) // max(self._messages, 1)
            changed += [4, 5]
        if sms_tx or sms_rx:
            for rid, count in ((0, sms_tx), (1, sms_rx)):
                old = values.get(rid, 0)
                values[rid] = (old if isinstance(old, int) else 0) + count
            changed += [0, 1]
        inst.changed(*changed)
