"""An asyncio event loop on a virtual clock, for testing code that awaits timers.

:class:`VirtualLoop` runs real sockets (loopback) but its ``time()`` is virtual: when no
callback is ready and no file descriptor is readable, the clock jumps to the next scheduled
timer instead of waiting. Retry schedules of minutes or days then run in milliseconds and are
exact. Only a worker thread (``run_in_executor``, e.g. address resolution) makes it wait for
real, bounded, and the clock stands still meanwhile.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

__all__ = ["VirtualLoop"]


class VirtualLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock starts at ``start`` and jumps to the next timer."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(selectors.DefaultSelector())
        self.now = start
        self.threads = 0
        selector: Any = self._selector  # type: ignore[attr-defined]
        real_select = selector.select

        def select(timeout: float | None = None) -> list[Any]:
            events: list[Any] = real_select(0)
            if events or timeout == 0:
                return events
            if self.threads:  # the clock stands still while a worker thread runs
                return list(real_select(10.0))
            if timeout is None:  # nothing scheduled: only another thread can wake us up
                events = real_select(10.0)
                if not events:
                    raise RuntimeError("virtual loop: nothing scheduled, nothing to wait for")
                return events
            self.now += timeout
            return []

        selector.select = select

    def time(self) -> float:
        return self.now

    def run_in_executor(  # type: ignore[override]  # the generic signature, untyped here
        self, executor: Any, func: Any, *args: Any
    ) -> Any:
        future = super().run_in_executor(executor, func, *args)
        self.threads += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, future: object) -> None:
        self.threads -= 1
