"""Events the CoAP engine hands to its user through ``next_event()`` (aioquic style).

Server role: :class:`RequestReceived` (answer it with ``engine.send_response``) and
:class:`ObserverRemoved`. Client role: :class:`ResponseReceived`, :class:`NotificationReceived`,
:class:`ObservationEnded` and :class:`RequestFailed`, each naming the ``request_id`` that
``engine.send_request`` returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from lwm2m.coap.errors import CoapError
from lwm2m.coap.message import Message

if TYPE_CHECKING:
    from lwm2m.coap.engine import Exchange, Observation

__all__ = [
    "CoapEvent",
    "NotificationReceived",
    "ObservationEnded",
    "ObserverRemoved",
    "RequestFailed",
    "RequestReceived",
    "ResponseReceived",
]


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request arrived (after duplicate detection and Block1 reassembly)."""

    exchange: Exchange
    """Pass it to ``engine.send_response``; ``exchange.request`` and ``exchange.remote``."""


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The (final, reassembled) response to a request. For an Observe registration this is the
    first response; if it carries an Observe option, notifications follow."""

    request_id: int
    response: Message
    remote: Any


@dataclass(frozen=True, slots=True)
class NotificationReceived:
    """A fresh notification of an established observation (RFC 7641 §3.2-§3.4)."""

    request_id: int
    response: Message
    remote: Any


@dataclass(frozen=True, slots=True)
class ObservationEnded:
    """An observation ended: the server sent a final response (non-2.xx or without Observe,
    RFC 7641 §3.2), or a proactive cancellation completed (``response`` is its answer, or None
    if it failed)."""

    request_id: int
    response: Message | None


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """The request ended without a response: timeout, Reset, block-wise failure, cancellation."""

    request_id: int
    error: CoapError


@dataclass(frozen=True, slots=True)
class ObserverRemoved:
    """Server role: an observer is gone (RFC 7641 §3.6, §4.5) — ``reason`` is one of
    ``"reset"``, ``"timeout"``, ``"deregistered"``, ``"replaced"``, ``"final"``."""

    observation: Observation
    reason: str


CoapEvent: TypeAlias = (
    RequestReceived
    | ResponseReceived
    | NotificationReceived
    | ObservationEnded
    | RequestFailed
    | ObserverRemoved
)
