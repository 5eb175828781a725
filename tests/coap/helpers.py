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


def exact_config(**kwargs: Any) -> CoapConfig:
    """A config without retransmission jitter, so timings are exact."""
    tp = kwargs.pop("transmission", None) or TransmissionParameters(ack_random_factor=1.0)
    return CoapConfig(transmission=tp, **kwargs)


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
        engine = CoapEngine(config or exact_config(), rng=random.Random(seed))
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
