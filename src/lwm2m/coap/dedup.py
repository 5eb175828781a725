"""Duplicate detection with bounded memory (RFC 7252 §4.5, §4.8.2 EXCHANGE_LIFETIME).

A recipient remembers each Confirmable and Non-confirmable message it received, by (peer, Message
ID), for EXCHANGE_LIFETIME, and answers a duplicate CON with the same response (RFC 7252 §4.5).

Memory design. An entry is one slot in a ``dict[int, object]``: the key is ``peer_id << 16 | mid``
(one int, no tuple, no address string), the value is the *encoded* response datagram (``bytes``),
``b""`` for "seen, nothing to resend", or — while the application is still working on a request —
the engine's exchange object (replaced by bytes once answered). That is about 28-32 bytes of key,
33 + len(response) bytes of value, ~50-70 bytes of dict slot (with the dict's spare capacity) and
8 bytes in its generation's key list: ≈150 bytes for a small piggybacked response, measured in
``tests/coap/test_dedup.py`` to stay under 300 bytes per entry.

Expiry without per-entry timestamps: entries are kept in ``generations``, each covering an
EXCHANGE_LIFETIME / ``generations`` slice of arrival times. A generation is dropped once its newest
possible entry is EXCHANGE_LIFETIME old, so an entry lives between EXCHANGE_LIFETIME and
EXCHANGE_LIFETIME x (1 + 1/generations). A hard cap: each generation holds at most
``max_entries // (generations + 1)`` entries and at most ``generations + 1`` generations exist, so
the cache never exceeds ``max_entries``; if traffic fills generations faster than time rotates them,
the oldest one is evicted early and counted in :attr:`DuplicateCache.evicted`.

Every entry lives in one dict, whatever its generation; a generation is the list of the keys it
added. A look-up is thus one dict access however many generations exist (every new request misses,
and with one dict per generation a miss looked through all of them), and dropping a generation
deletes its keys from the dict. A key is in at most one generation's list: it is added only when
absent, an update leaves it where it is, and it leaves the dict only with its generation.
"""

from __future__ import annotations

from collections import deque

__all__ = ["DuplicateCache"]


class DuplicateCache:
    """Remembered exchanges keyed by ``peer_id << 16 | mid``."""

    __slots__ = (
        "_closed",
        "_current",
        "_entries",
        "_lifetime",
        "_max_gens",
        "_per_gen",
        "_rotate_at",
        "_slice",
        "deadline_added",
        "evicted",
    )

    def __init__(self, lifetime: float, max_entries: int, generations: int = 8) -> None:
        self._lifetime = lifetime
        self._slice = lifetime / generations
        self._max_gens = generations + 1
        self._per_gen = max(1, max_entries // self._max_gens)
        self._entries: dict[int, object] = {}
        #: the keys added to the current generation
        self._current: list[int] = []
        #: closed generations, oldest first, with the time they were closed
        self._closed: deque[tuple[float, list[int]]] = deque()
        self._rotate_at: float | None = None
        self.evicted = 0
        """Entries dropped before EXCHANGE_LIFETIME because of the cap."""
        self.deadline_added = False
        """Set when :meth:`next_deadline` may have moved earlier (the first entry of a
        generation makes its rotation time a deadline); the owner clears it when it reads
        :meth:`next_deadline`."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def capacity(self) -> int:
        return self._per_gen * self._max_gens

    def get(self, key: int) -> object | None:
        return self._entries.get(key)

    def put(self, key: int, value: object, now: float) -> None:
        """Remember (or update) ``key``. Updating keeps the entry in its generation."""
        entries = self._entries
        if key in entries:
            entries[key] = value
            return
        self.add(key, value, now)

    def add(self, key: int, value: object, now: float) -> None:
        """Remember ``key``, known to be absent (:meth:`get` returned None and nothing
        remembered it since): :meth:`put` without the membership test."""
        current = self._current
        rotate_at = self._rotate_at
        if rotate_at is None or not current or now >= rotate_at or len(current) >= self._per_gen:
            # Rare: the first entry of a generation makes its rotation time a deadline again.
            self.deadline_added = True
            if rotate_at is None:
                self._rotate_at = now + self._slice
            elif now >= rotate_at or len(current) >= self._per_gen:
                self._rotate(now)
                current = self._current
        self._entries[key] = value
        current.append(key)

    def _drop(self, keys: list[int]) -> None:
        pop = self._entries.pop
        for key in keys:
            pop(key, None)

    def _rotate(self, now: float) -> None:
        if self._current:
            self._closed.append((now, self._current))
            self._current = []
        self._rotate_at = now + self._slice
        while len(self._closed) >= self._max_gens:
            _, keys = self._closed.popleft()
            self._drop(keys)
            self.evicted += len(keys)

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
            self._drop(closed.popleft()[1])
        if not self._current and not closed:
            self._rotate_at = None
