"""Public helpers for testing code built on lwm2m (fake clock, external components)."""

from __future__ import annotations

from lwm2m.testing.clock import FakeClock
from lwm2m.testing.components import require_component

__all__ = ["FakeClock", "require_component"]
