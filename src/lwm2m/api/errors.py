"""How failures become HTTP answers: always JSON ``{"error": "<specific message>", ...}``.

- bad input (path, node JSON, content format, attributes, body shape) → **400** naming the
  problem (never echoing a submitted secret: validation errors carry location and reason only);
- unknown client → **404**; unknown security entry → **404**; no security store → **404**;
- the client answered a CoAP error → by code: 4.00 → 400, 4.01 / 4.03 → 403, 4.04 → 404,
  4.05 → 405, 4.06 → 406, 4.13 → 413, anything else → 502 (Bad Gateway: the upstream failed);
  with ``"coap_code": "4.04"`` and the client's ``"diagnostic"`` when it sent one;
- no answer (CoAP retransmissions spent, or the API's own ``request_timeout``) → **504**;
- :class:`~lwm2m.server.errors.ClientSleeping` → **503** Service Unavailable: a queue-mode client
  that is asleep. The server first holds the request for ``ServerConfig.hold_timeout`` seconds
  waiting for the client to wake (so an HTTP caller waits that long, unless the API's
  ``request_timeout`` is shorter: then 504); 503 says "try again later" — the condition is
  temporary and the resource exists, unlike 404; too many held requests is a 503 as well;
- a Reset, an undecodable answer or another transport failure → **502**; a request cancelled
  by the server (shutdown, re-registration) → **503**;
- a duplicate PSK identity / public key in the security store → **409**;
- a Secure Element script the client could not run (:mod:`lwm2m.io.se_admin`): the target
  security domain cannot be selected → **422**, the card is unavailable → **503**.

Unexpected exceptions are logged (type and message, no request data) and answered
``500 {"error": "internal error"}`` without a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lwm2m.errors import CodecError, ModelError, RequestError
from lwm2m.io.se_admin import AdminScriptFailed
from lwm2m.secure.admin import AdminStatus
from lwm2m.server.errors import (
    ClientSleeping,
    ErrorResponse,
    NotRegistered,
    RequestCancelled,
    RequestFailed,
    RequestTimeout,
)

__all__ = ["ApiError", "failure", "install_handlers", "status_for_coap"]

log = logging.getLogger("lwm2m.api")

_BY_COAP_CODE = {
    0x80: 400,  # 4.00 Bad Request
    0x81: 403,  # 4.01 Unauthorized (LwM2M access control)
    0x83: 403,  # 4.03 Forbidden
    0x84: 404,  # 4.04 Not Found
    0x85: 405,  # 4.05 Method Not Allowed
    0x86: 406,  # 4.06 Not Acceptable
    0x8D: 413,  # 4.13 Request Entity Too Large
}


class ApiError(Exception):
    """An HTTP error answer: ``status`` and the JSON body ``{"error": message, **extra}``."""

    def __init__(self, status: int, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


def status_for_coap(code: int) -> int:
    """The HTTP status for a CoAP error code of the client (502 when there is no better one)."""
    return _BY_COAP_CODE.get(code, 502)


def failure(exc: Exception, endpoint: str) -> ApiError:
    """The answer for an exception of a server request (see the module docstring); re-raises
    what is not a request failure or a local input error."""
    if isinstance(exc, NotRegistered):
        return ApiError(404, f"client {endpoint!r} is not registered")
    if isinstance(exc, AdminScriptFailed):  # the client answered, the card could not run it
        unknown = exc.status is AdminStatus.UNKNOWN_APPLICATION
        return ApiError(422 if unknown else 503, str(exc))
    if isinstance(exc, ErrorResponse):
        extra = {"coap_code": exc.dotted_code or ""}
        if exc.diagnostic:
            extra["diagnostic"] = exc.diagnostic
        return ApiError(status_for_coap(exc.code), str(exc), **extra)
    if isinstance(exc, RequestTimeout | TimeoutError):
        return ApiError(504, f"{endpoint}: no answer from the client in time")
    if isinstance(exc, ClientSleeping):
        return ApiError(503, str(exc))
    if isinstance(exc, RequestCancelled):
        return ApiError(503, str(exc))
    if isinstance(exc, RequestFailed):
        if exc.code is not None:
            return ApiError(status_for_coap(exc.code), str(exc), coap_code=exc.dotted_code or "")
        return ApiError(502, str(exc))
    if isinstance(exc, CodecError | ModelError | RequestError):
        # a request that cannot be encoded: the caller's path / node / attributes
        return ApiError(400, str(exc))
    raise exc


def _validation_message(exc: RequestValidationError) -> str:
    """``body.content: Field required; query.format: ...`` -- locations and reasons only: the
    submitted input (which may be a key) is never repeated."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    return "invalid request: " + "; ".join(parts)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"error": _validation_message(exc)}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return JSONResponse({"error": "internal error"}, status_code=500)


def install_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as JSON ``{"error": ...}``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
