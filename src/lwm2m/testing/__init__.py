"""Public helpers for testing code built on lwm2m (fake clock, ...)."""

from __future__ import annotations

from lwm2m.testing.clock import FakeClock

__all__ = ["FakeClock"]
