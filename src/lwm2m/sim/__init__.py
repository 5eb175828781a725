"""The fleet simulator (layer L4): thousands of LwM2M devices in one process.

:class:`Fleet` runs ``count`` full :class:`~lwm2m.io.lwm2m_client.LwM2MClient` s in one event
loop, started at a bounded rate, and counts their registrations (:mod:`lwm2m.sim.fleet`). The
command line is ``lwm2m simulate`` (:mod:`lwm2m.cli.simulate`).
"""

from lwm2m.sim.fleet import (
    DeviceState,
    Fleet,
    FleetConfig,
    FleetError,
    FleetStats,
    SimDevice,
    default_objects,
    ensure_open_files,
)

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
