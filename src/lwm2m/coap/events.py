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


# -- fast construction for the engine's hot path ------------------------------------------------
#
# A frozen dataclass's ``__init__`` stores every field through ``object.__setattr__`` (≈ 1.3 µs for
# three fields). The engine builds one event per request and per notification, so it builds them
# as plain slots objects of the identical layout and then assigns ``__class__`` (≈ 0.45 µs). The
# result is an ordinary, immutable instance of the event class (eq, hash and repr included).


class _MutableRequestReceived:
    __slots__ = RequestReceived.__slots__


class _MutableResponse:
    __slots__ = ResponseReceived.__slots__


assert NotificationReceived.__slots__ == ResponseReceived.__slots__

# The builders fill a bare instance (no ``__init__`` call: one Python call per event, not two).
_new = object.__new__


def request_received(exchange: Exchange) -> RequestReceived:
    """``RequestReceived(exchange)``, built cheaply."""
    event: Any = _new(_MutableRequestReceived)
    event.exchange = exchange
    event.__class__ = RequestReceived
    return event  # type: ignore[no-any-return]


def response_received(request_id: int, response: Message, remote: Any) -> ResponseReceived:
    """``ResponseReceived(request_id, response, remote)``, built cheaply."""
    event: Any = _new(_MutableResponse)
    event.request_id = request_id
    event.response = response
    event.remote = remote
    event.__class__ = ResponseReceived
    return event  # type: ignore[no-any-return]


def notification_received(request_id: int, response: Message, remote: Any) -> NotificationReceived:
    """``NotificationReceived(request_id, response, remote)``, built cheaply."""
    event: Any = _new(_MutableResponse)
    event.request_id = request_id
    event.response = response
    event.remote = remote
    event.__class__ = NotificationReceived
    return event  # type: ignore[no-any-return]
