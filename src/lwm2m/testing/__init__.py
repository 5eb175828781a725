"""Public helpers for testing code built on lwm2m (fake clock, virtual-time event loop,
external components)."""

from __future__ import annotations

from lwm2m.testing.clock import FakeClock
from lwm2m.testing.components import require_component
from lwm2m.testing.loop import VirtualLoop

__all__ = ["FakeClock", "VirtualLoop", "require_component"]
