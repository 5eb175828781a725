"""Typing of the server's requests and their outcomes (LwM2M-TS-Core 1.1 §6.3, §6.4, §6.1.7).

Each downlink operation has the success code the TS gives it (:data:`SUCCESS_CODES`);
:func:`check_response` turns a client's answer into the :class:`~lwm2m.operations.responses.
Response` (with decoded nodes) or raises :class:`~lwm2m.server.errors.ErrorResponse` carrying
the 4.xx / 5.xx code, and :func:`decode_client_response` adds the payload decoding with the
client's model (a payload that does not decode is :class:`~lwm2m.server.errors.InvalidResponse`).
"""

from __future__ import annotations

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.errors import CodecError
from lwm2m.model.registry import ObjectModel
from lwm2m.operations.coap_mapping import decode_response
from lwm2m.operations.requests import (
    BootstrapDelete,
    BootstrapDiscover,
    BootstrapFinish,
    BootstrapRead,
    BootstrapWrite,
    CancelObservation,
    CancelObserveComposite,
    Create,
    Delete,
    Discover,
    DownlinkRequest,
    Execute,
    Observe,
    ObserveComposite,
    Read,
    ReadComposite,
    Write,
    WriteAttributes,
    WriteComposite,
)
from lwm2m.operations.responses import Response
from lwm2m.server.errors import ErrorResponse, InvalidResponse

__all__ = ["SUCCESS_CODES", "check_response", "decode_client_response", "operation_name"]

_CONTENT = int(Code.CONTENT)
_CHANGED = int(Code.CHANGED)
_CREATED = int(Code.CREATED)
_DELETED = int(Code.DELETED)

SUCCESS_CODES: dict[type, int] = {
    Read: _CONTENT,
    Discover: _CONTENT,
    Write: _CHANGED,
    WriteAttributes: _CHANGED,
    Execute: _CHANGED,
    Create: _CREATED,
    Delete: _DELETED,
    ReadComposite: _CONTENT,
    WriteComposite: _CHANGED,
    Observe: _CONTENT,
    CancelObservation: _CONTENT,
    ObserveComposite: _CONTENT,
    CancelObserveComposite: _CONTENT,
    BootstrapWrite: _CHANGED,
    BootstrapRead: _CONTENT,
    BootstrapDiscover: _CONTENT,
    BootstrapDelete: _DELETED,
    BootstrapFinish: _CHANGED,
}
"""The success code of each downlink operation (Core §6.1.7, §6.3, §6.4 response tables).
Any 2.xx is accepted as success; this table documents what a conforming client answers."""


def operation_name(request: DownlinkRequest) -> str:
    """A short name for logs and errors, e.g. ``"Read /3/0"``."""
    path = getattr(request, "path", None)
    return f"{type(request).__name__} {path}" if path is not None else type(request).__name__


def check_response(
    request: DownlinkRequest, response: Response, *, endpoint: str | None = None
) -> Response:
    """``response`` when it is a success, else :class:`ErrorResponse` with its code."""
    if response.is_success:
        return response
    raise ErrorResponse(response.code, response.diagnostic, endpoint=endpoint)


def decode_client_response(
    request: DownlinkRequest, message: Message, model: ObjectModel, *, endpoint: str | None = None
) -> Response:
    """Decode a client's CoAP answer to ``request`` with the client's ``model``.

    Raises ErrorResponse for 4.xx / 5.xx, InvalidResponse for an undecodable 2.xx payload.
    """
    try:
        response = decode_response(request, message, model)
    except CodecError as exc:
        raise InvalidResponse(
            f"{operation_name(request)}: undecodable response: {exc}", endpoint=endpoint
        ) from None
    if response.code >> 5 == 2:  # a success (check_response's test, without two calls)
        return response
    return check_response(request, response, endpoint=endpoint)
