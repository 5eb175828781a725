"""Duplicate detection with bounded memory (RFC 7252 §4.5, §4.8.2 EXCHANGE_LIFETIME).

A recipient remembers each Confirmable and Non-confirmable message it received, by (peer, Message
ID), for EXCHANGE_LIFETIME, and answers a duplicate CON with the same response (RFC 7252 §4.5).

Memory design. An entry is one slot in a ``dict[int, object]``: the key is ``peer_id << 16 | mid``
(one int, no tuple, no address string), the value is the *encoded* response datagram (``bytes``),
``b""`` for "seen, nothing to resend", or — while the application is still working on a request —
the engine's exchange object (replaced by bytes once answered). That is about 28-32 bytes of key,
33 + len(response) bytes of value and ~50-70 bytes of dict slot (with the dict's spare capacity):
≈140 bytes for a small piggybacked response, measured in ``tests/coap/test_dedup.py`` to stay under
300 bytes per entry.

Expiry without per-entry timestamps: entries are kept in ``generations`` dicts, each covering an
EXCHANGE_LIFETIME / ``generations`` slice of arrival times. A generation is dropped once its newest
possible entry is EXCHANGE_LIFETIME old, so an entry lives between EXCHANGE_LIFETIME and
EXCHANGE_LIFETIME x (1 + 1/generations). A hard cap: each generation holds at most
``max_entries // (generations + 1)`` entries and at most ``generations + 1`` generations exist, so
the cache never exceeds ``max_entries``; if traffic fills generations faster than time rotates them,
the oldest one is evicted early and counted in :attr:`DuplicateCache.evicted`.
"""

from __future__ import annotations

from collections import deque

__all__ = ["DuplicateCache"]


class DuplicateCache:
    """Remembered exchanges keyed by ``peer_id << 16 | mid``."""

    __slots__ = (
        "_closed",
        "_current",
        "_lifetime",
        "_max_gens",
        "_per_gen",
        "_rotate_at",
        "_slice",
        "evicted",
    )

    def __init__(self, lifetime: float, max_entries: int, generations: int = 8) -> None:
        self._lifetime = lifetime
        self._slice = lifetime / generations
        self._max_gens = generations + 1
        self._per_gen = max(1, max_entries // self._max_gens)
        self._current: dict[int, object] = {}
        #: closed generations, oldest first, with the time they were closed
        self._closed: deque[tuple[float, dict[int, object]]] = deque()
        self._rotate_at: float | None = None
        self.evicted = 0
        """Entries dropped before EXCHANGE_LIFETIME because of the cap."""

    def __len__(self) -> int:
        return len(self._current) + sum(len(g) for _, g in self._closed)

    @property
    def capacity(self) -> int:
        return self._per_gen * self._max_gens

    def get(self, key: int) -> object | None:
        value = self._current.get(key)
        if value is not None:
            return value
        for _, gen in reversed(self._closed):
            value = gen.get(key)
            if value is not None:
                return value
        return None

    def put(self, key: int, value: object, now: float) -> None:
        """Remember (or update) ``key``. Updating keeps the entry in its generation."""
        current = self._current
        if key in current:
            current[key] = value
            return
        for _, gen in reversed(self._closed):
            if key in gen:
                gen[key] = value
                return
        if self._rotate_at is None:
            self._rotate_at = now + self._slice
        elif now >= self._rotate_at or len(current) >= self._per_gen:
            self._rotate(now)
            current = self._current
        current[key] = value

    def _rotate(self, now: float) -> None:
        if self._current:
            self._closed.append((now, self._current))
            self._current = {}
        self._rotate_at = now + self._slice
        while len(self._closed) >= self._max_gens:
            _, gen = self._closed.popleft()
            self.evicted += len(gen)

    def next_deadline(self) -> float | None:
        """When :meth:`expire` has work: the current generation closes or the oldest expires."""
        deadline = self._rotate_at if self._current else None
        if self._closed:
            expiry = self._closed[0][0] + self._lifetime
            if deadline is None or expiry < deadline:
                deadline = expiry
        return deadline

    def expire(self, now: float) -> None:
        if self._current and self._rotate_at is not None and now >= self._rotate_at:
            self._rotate(now)
        closed = self._closed
        while closed and closed[0][0] + self._lifetime <= now:
            closed.popleft()
        if not self._current and not closed:
            self._rotate_at = None
