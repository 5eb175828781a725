"""CoAP (RFC 7252) with Observe (RFC 7641), block-wise transfer (RFC 7959), FETCH/PATCH/iPATCH
(RFC 8132), No-Response (RFC 7967) and Echo/Request-Tag (RFC 9175): a sans-IO core.

Layer L1: stdlib and :mod:`lwm2m.errors` only; no sockets, no asyncio, no clock (``now`` is a
parameter). The asyncio adapter is :mod:`lwm2m.io.coap_endpoint`.

Modules: :mod:`~lwm2m.coap.numbers` (registries), :mod:`~lwm2m.coap.message` (wire format),
:mod:`~lwm2m.coap.engine` (reliability, matching, Observe, block-wise),
:mod:`~lwm2m.coap.dedup` (bounded duplicate cache), :mod:`~lwm2m.coap.observe` (sequence rules),
:mod:`~lwm2m.coap.config`, :mod:`~lwm2m.coap.events`, :mod:`~lwm2m.coap.errors`.
"""

from __future__ import annotations

from lwm2m.coap.config import CoapConfig, TransmissionParameters
from lwm2m.coap.engine import CoapEngine, EngineStats, Exchange, Observation
from lwm2m.coap.errors import (
    BadOptionError,
    BlockwiseError,
    BodyTooLarge,
    CoapError,
    CoapUsageError,
    ErrorResponse,
    MessageFormatError,
    NetworkError,
    RequestCancelled,
    RequestFailedError,
    RequestRejected,
    RequestTimeout,
)
from lwm2m.coap.events import (
    CoapEvent,
    NotificationReceived,
    ObservationEnded,
    ObserverRemoved,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
)
from lwm2m.coap.message import Block, Message, check_options, decode, decode_uint, encode_uint
from lwm2m.coap.numbers import Code, MessageType, OptionNumber
from lwm2m.coap.observe import is_fresh, next_sequence

__all__ = [
    "BadOptionError",
    "Block",
    "BlockwiseError",
    "BodyTooLarge",
    "CoapConfig",
    "CoapEngine",
    "CoapError",
    "CoapEvent",
    "CoapUsageError",
    "Code",
    "EngineStats",
    "ErrorResponse",
    "Exchange",
    "Message",
    "MessageFormatError",
    "MessageType",
    "NetworkError",
    "NotificationReceived",
    "Observation",
    "ObservationEnded",
    "ObserverRemoved",
    "OptionNumber",
    "RequestCancelled",
    "RequestFailed",
    "RequestFailedError",
    "RequestReceived",
    "RequestRejected",
    "RequestTimeout",
    "ResponseReceived",
    "TransmissionParameters",
    "check_options",
    "decode",
    "decode_uint",
    "encode_uint",
    "is_fresh",
    "next_sequence",
]
