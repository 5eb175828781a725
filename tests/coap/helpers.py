"""In-memory network of sans-IO CoAP engines driven by a FakeClock (no sockets, no sleeps)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lwm2m.coap import CoapConfig, CoapEngine, CoapEvent, Message, TransmissionParameters, decode
from lwm2m.testing import FakeClock

Addr = tuple[str, int]
CLIENT: Addr = ("10.0.0.1", 5683)
SERVER: Addr = ("10.0.0.2", 5683)


def sent(engine: CoapEngine, now: float = 0.0) -> list[Message]:
    """The datagrams ``engine`` sends at ``now``, decoded."""
    return [decode(d) for d, _ in engine.datagrams_to_send(now)]


def advance(engine: CoapEngine, until: float) -> list[Message]:
    """Run every timer of ``engine`` due up to ``until``; the datagrams it sent meanwhile."""
    out: list[Message] = []
    while (when := engine.get_timer()) is not None and when <= until:
        engine.handle_timer(when)
        out += sent(engine, when)
    return out


def events(engine: CoapEngine) -> list[object]:
    """Every event ``engine`` has queued."""
    out = []
    while (e := engine.next_event()) is not None:
        out.append(e)
    return out


def exact_config(**kwargs: Any) -> CoapConfig:
    """A config without retransmission jitter, so timings are exact."""
    tp = kwargs.pop("transmission", None) or TransmissionParameters(ack_random_factor=1.0)
    return CoapConfig(transmission=tp, **kwargs)


class CheckedEngine(CoapEngine):
    """A CoapEngine that checks :meth:`CoapEngine.deadline_added_before` like a driver relies
    on it: ``armed`` is the timer such a driver would have armed (lowered by every
    :meth:`get_timer` result, cleared by :meth:`handle_timer`), and :meth:`check_timer` asserts
    that every deadline earlier than it was reported."""

    armed: float | None = None

    def get_timer(self) -> float | None:
        when = super().get_timer()
        if when is not None and (self.armed is None or when < self.armed):
            self.armed = when
        return when

    def handle_timer(self, now: float) -> None:
        super().handle_timer(now)
        self.armed = None  # a driver calls get_timer after handle_timer

    def check_timer(self) -> None:
        armed = self.armed
        if armed is None:
            self.get_timer()
            return
        reported = self.deadline_added_before(armed)
        when = self.get_timer()
        assert reported or when is None or when >= armed, (
            f"deadline {when} earlier than the armed {armed} was not reported"
        )


@dataclass
class Wire:
    """One datagram seen on the wire."""

    time: float
    src: Addr
    dst: Addr
    data: bytes

    @property
    def msg(self) -> Message:
        return decode(self.data)


@dataclass
class Net:
    clock: FakeClock = field(default_factory=FakeClock)
    engines: dict[Addr, CoapEngine] = field(default_factory=dict)
    wire: list[Wire] = field(default_factory=list)
    events: dict[Addr, list[CoapEvent]] = field(default_factory=dict)
    #: return True to drop a datagram
    drop: Callable[[Wire], bool] | None = None

    def add(self, addr: Addr, config: CoapConfig | None = None, seed: int = 1) -> CoapEngine:
        engine = CheckedEngine(config or exact_config(), rng=random.Random(seed))
        self.engines[addr] = engine
        self.events[addr] = []
        return engine

    @property
    def now(self) -> float:
        return self.clock.now

    def flush(self) -> None:
        """Deliver datagrams until the network is quiet; collect events."""
        for _ in range(10_000):
            moved = False
            for addr, engine in self.engines.items():
                for data, dst in engine.datagrams_to_send(self.now):
                    moved = True
                    w = Wire(self.now, addr, dst, data)
                    self.wire.append(w)
                    if self.drop is not None and self.drop(w):
                        continue
                    target = self.engines.get(dst)
                    if target is not None:
                        target.receive_datagram(data, addr, self.now)
                while (ev := engine.next_event()) is not None:
                    moved = True
                    self.events[addr].append(ev)
            for engine in self.engines.values():
                if isinstance(engine, CheckedEngine):
                    engine.check_timer()
            if not moved:
                return
        raise AssertionError("network did not settle")

    def take(self, addr: Addr) -> list[CoapEvent]:
        events, self.events[addr] = self.events[addr], []
        return events

    def next_timer(self) -> float | None:
        timers = [t for e in self.engines.values() if (t := e.get_timer()) is not None]
        return min(timers) if timers else None

    def run_until(self, until: float) -> None:
        """Advance the clock timer by timer up to ``until``, flushing after each."""
        self.flush()
        while True:
            t = self.next_timer()
            if t is None or t > until:
                break
            self.clock.set(max(t, self.now))
            for engine in self.engines.values():
                engine.handle_timer(self.now)
            self.flush()
        self.clock.set(max(until, self.now))

    def sent_by(self, addr: Addr) -> list[Wire]:
        return [w for w in self.wire if w.src == addr]


class RecordingWaiter:
    """A minimal Waiter (what asyncio.Future offers) that records what it was given."""

    def __init__(self, done: bool = False) -> None:
        self.result: Message | None = None
        self.error: BaseException | None = None
        self._done = done

    def done(self) -> bool:
        return self._done

    def set_result(self, result: Message, /) -> None:
        assert not self._done
        self._done = True
        self.result = result

    def set_exception(self, exception: BaseException, /) -> None:
        assert not self._done
        self._done = True
        self.error = exception
