"""Observe helpers (RFC 7641): sequence numbers and the reordering rule.

* Sequence numbers are 24-bit and wrap (RFC 7641 §4.4): :func:`next_sequence`.
* :func:`is_fresh` is the client-side reordering detection of RFC 7641 §3.4: a notification with
  value V2 received at T2 is newer than the one with V1 received at T1 if
  ``(V1 < V2 and V2 - V1 < 2**23) or (V1 > V2 and V1 - V2 > 2**23) or T2 > T1 + 128 s``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["OBSERVE_FRESHNESS", "SEQUENCE_MODULUS", "is_fresh", "next_sequence"]

#: Observe values are 24-bit (RFC 7641 §2: the option is 0-3 bytes).
SEQUENCE_MODULUS: Final = 1 << 24
_HALF: Final = 1 << 23
#: After this many seconds any notification counts as newer (RFC 7641 §3.4, 128 s).
OBSERVE_FRESHNESS: Final = 128.0


def next_sequence(value: int) -> int:
    """The sequence number after ``value``, wrapping at 2^24 (RFC 7641 §4.4).

    >>> next_sequence(5), next_sequence(0xFFFFFF)
    (6, 0)
    """
    return (value + 1) & 0xFFFFFF


def is_fresh(v1: int, t1: float, v2: int, t2: float) -> bool:
    """Whether a notification (V2 at T2) is newer than the last one (V1 at T1), RFC 7641 §3.4.

    >>> is_fresh(10, 0.0, 11, 1.0), is_fresh(11, 0.0, 10, 1.0), is_fresh(0xFFFFFF, 0.0, 0, 1.0)
    (True, False, True)
    >>> is_fresh(11, 0.0, 10, 129.0)
    True
    """
    return (
        (v1 < v2 and v2 - v1 < _HALF)
        or (v1 > v2 and v1 - v2 > _HALF)
        or t2 > t1 + OBSERVE_FRESHNESS
    )
