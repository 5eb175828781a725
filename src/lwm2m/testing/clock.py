"""A controllable clock for sans-IO tests: time enters engines only as ``now``.

>>> clock = FakeClock()
>>> clock.advance(2.5); clock()
2.5
"""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Monotonic fake time in seconds. Call it (or read :attr:`now`) to get the time."""

    __slots__ = ("now",)

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        """The current fake time."""

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time forward (never backward) and return the new time."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        self.now += seconds
        return self.now

    def set(self, when: float) -> float:
        """Jump to ``when`` (not earlier than now)."""
        if when < self.now:
            raise ValueError("a monotonic clock cannot go back")
        self.now = when
        return self.now

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now})"
