"""Queue mode on the server side: who is awake, and which requests wait for whom.

LwM2M-TS-Core 1.1 §6.2.1.1 / LwM2M-TS-Transport 1.1 §6.5 "Queue Mode Operation": a client
registered with ``Q`` is reachable only for a while after it sent something (a Register, an
Update, a Send, a notification, a response...) — MAX_TRANSMIT_WAIT (93 s) by default. The server
must not send to a sleeping client: it holds requests until the client is heard from again, then
releases them one at a time (NSTART = 1, Transport §6.5).

Theory of operation (sans-IO, ``now`` is a parameter):

- :meth:`QueueMode.message_received` — the client was heard: it is awake until
  ``now + awake_time``; returns True when it was asleep (the caller emits *awake* and calls
  :meth:`QueueMode.release`).
- :meth:`QueueMode.submit` — a request for the client: True means "send it now" (awake and
  nothing in flight); False means it is held (:class:`QueueFull` when the hold is full).
- :meth:`QueueMode.completed` — the request in flight finished; returns the next held request
  to send, if the client is still awake.
- :meth:`QueueMode.get_timer` / :meth:`QueueMode.handle_timer` — awake windows ending; the
  latter returns the clients that fell asleep (the caller emits *sleeping*).
- :meth:`QueueMode.timed_out` — a request to the client timed out: it is asleep now.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["QueueFull", "QueueMode"]

T = TypeVar("T", bound=Hashable)


class QueueFull(Exception):
    """The client's hold is full (the caller fails the request as ClientSleeping)."""


class _Client(Generic[T]):
    __slots__ = ("awake_until", "held", "in_flight")

    def __init__(self) -> None:
        self.awake_until: float | None = None
        self.in_flight = False
        self.held: deque[T] = deque()


class QueueMode(Generic[T]):
    """Awake windows and held requests of every queue-mode client, keyed by registration id.

    :param awake_time: seconds a client stays awake after its last message.
    :param max_held: requests held per client.
    """

    def __init__(self, awake_time: float = 93.0, max_held: int = 64) -> None:
        self.awake_time = awake_time
        self.max_held = max_held
        self._clients: dict[str, _Client[T]] = {}
        self._timers: list[tuple[float, str]] = []

    def __contains__(self, client: str) -> bool:
        return client in self._clients

    def __len__(self) -> int:
        return len(self._clients)

    def clients(self) -> list[str]:
        """The tracked clients."""
        return list(self._clients)

    def track(self, client: str, now: float, *, awake: bool = True) -> None:
        """Start tracking ``client`` (a queue-mode registration); awake when it just registered."""
        state = self._clients.get(client)
        if state is None:
            state = self._clients[client] = _Client()
        if awake:
            self._wake(client, state, now)

    def forget(self, client: str) -> list[T]:
        """Stop tracking ``client`` (deregistered, expired); returns its held requests."""
        state = self._clients.pop(client, None)
        return list(state.held) if state is not None else []

    def is_awake(self, client: str, now: float) -> bool:
        state = self._clients.get(client)
        return state is not None and state.awake_until is not None and now < state.awake_until

    def awake_until(self, client: str) -> float | None:
        state = self._clients.get(client)
        return state.awake_until if state is not None else None

    def held(self, client: str) -> int:
        """How many requests wait for ``client``."""
        state = self._clients.get(client)
        return len(state.held) if state is not None else 0

    def in_flight(self, client: str) -> bool:
        state = self._clients.get(client)
        return state is not None and state.in_flight

    def _wake(self, client: str, state: _Client[T], now: float) -> bool:
        was_asleep = state.awake_until is None or now >= state.awake_until
        state.awake_until = until = now + self.awake_time
        heapq.heappush(self._timers, (until, client))
        return was_asleep

    def message_received(self, client: str, now: float) -> bool:
        """The client sent something; returns True when this woke it up."""
        state = self._clients.get(client)
        if state is None:
            return False
        return self._wake(client, state, now)

    def submit(self, client: str, item: T, now: float) -> bool:
        """A request for ``client``: True = send it now, False = held until it wakes.

        Raises :class:`QueueFull` when ``max_held`` requests already wait, KeyError when the
        client is not tracked.
        """
        state = self._clients[client]
        awake = state.awake_until is not None and now < state.awake_until
        if awake and not state.in_flight and not state.held:
            state.in_flight = True
            return True
        if len(state.held) >= self.max_held:
            raise QueueFull(client)
        state.held.append(item)
        return False

    def withdraw(self, client: str, item: T) -> bool:
        """Remove a held request (its caller gave up); False when it was not held."""
        state = self._clients.get(client)
        if state is None:
            return False
        try:
            state.held.remove(item)
        except ValueError:
            return False
        return True

    def release(self, client: str, now: float) -> T | None:
        """The next held request to send now, if the client is awake and has none in flight."""
        state = self._clients.get(client)
        if state is None or state.in_flight or not state.held:
            return None
        if state.awake_until is None or now >= state.awake_until:
            return None
        state.in_flight = True
        return state.held.popleft()

    def completed(self, client: str, now: float) -> T | None:
        """The request in flight to ``client`` is done; returns the next one to send, if any."""
        state = self._clients.get(client)
        if state is None:
            return None
        state.in_flight = False
        return self.release(client, now)

    def timed_out(self, client: str, now: float) -> bool:
        """A request to ``client`` got no answer: consider it asleep. True if it was awake."""
        state = self._clients.get(client)
        if state is None:
            return False
        state.in_flight = False
        was_awake = state.awake_until is not None and now < state.awake_until
        state.awake_until = None
        return was_awake

    def get_timer(self) -> float | None:
        """When the next awake window may end (call :meth:`handle_timer` then)."""
        timers = self._timers
        while timers:
            when, client = timers[0]
            state = self._clients.get(client)
            if state is not None and state.awake_until == when:
                return when
            heapq.heappop(timers)
        return None

    def handle_timer(self, now: float) -> list[str]:
        """Clients whose awake window ended by ``now`` (each reported once)."""
        asleep: list[str] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, client = heapq.heappop(timers)
            state = self._clients.get(client)
            if state is not None and state.awake_until == when:
                state.awake_until = None
                asleep.append(client)
        return asleep
