"""Seeded random and mutated inputs for the card-data parsers (h11's invariant: a parser of
untrusted bytes either parses or raises its own layer's error — never anything else).

``LWM2M_FUZZ_ITERATIONS`` sets the count (default 20,000 per parser in the normal run).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence

ITERATIONS = int(os.environ.get("LWM2M_FUZZ_ITERATIONS") or 20_000)


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if op == 0 and data:  # flip a bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and data:  # set a byte to an interesting value
            data[rng.randrange(len(data))] = rng.choice(
                (0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0xFF, 0x30, 0xA1, 0x06, 0x04)
            )
        elif op == 2 and data:  # truncate
            del data[rng.randrange(len(data)) :]
        elif op == 3:  # insert random bytes
            i = rng.randrange(len(data) + 1)
            data[i:i] = rng.randbytes(rng.randint(1, 4))
        elif op == 4 and len(data) > 1:  # delete a span
            i = rng.randrange(len(data))
            del data[i : i + rng.randint(1, 4)]
        else:  # append
            data += rng.randbytes(rng.randint(1, 8))
    return bytes(data)


def fuzz(
    parse: Callable[[bytes], object],
    allowed: type[BaseException] | tuple[type[BaseException], ...],
    seeds: Sequence[bytes],
    *,
    seed: int,
    iterations: int = ITERATIONS,
    max_random: int = 64,
) -> tuple[int, int]:
    """Feed ``iterations`` inputs (half random, half mutated seeds) to ``parse``; anything but
    ``allowed`` propagates. Returns (accepted, rejected) counts."""
    rng = random.Random(seed)
    accepted = rejected = 0
    for n in range(iterations):
        if n % 2 or not seeds:
            data = rng.randbytes(rng.randint(0, max_random))
        else:
            data = mutate(rng, rng.choice(seeds))
        try:
            parse(data)
        except allowed:
            rejected += 1
        else:
            accepted += 1
    return accepted, rejected
