"""Errors of the server side: what a request to a registered client can end with.

The tree hangs below :class:`lwm2m.errors.Lwm2mError` (style anchors §2.6, after Leshan's
``RequestFailed``/``ClientSleepingException``)::

    Lwm2mError
     └─ RequestFailed                 code: the CoAP response code, or None (no response)
         ├─ ErrorResponse             the client answered 4.xx / 5.xx (``code`` set)
         ├─ RequestTimeout            no answer within the timeout (CoAP retransmissions spent)
         ├─ ClientSleeping            queue mode: the client stayed asleep (LwM2M-TS-Transport
         │                            §6.5 "Queue Mode"); alias PeerSleeping
         ├─ NotRegistered             no registration for that endpoint (or it went away while
         │                            the request was held)
         ├─ RequestCancelled          the caller or the service cancelled the request
         ├─ RequestRejected           the client answered with a CoAP Reset
         └─ InvalidResponse           a 2.xx whose payload does not decode with the client's model

Messages carry endpoint names, paths and codes, never payload values.
"""

from __future__ import annotations

from lwm2m.errors import Lwm2mError

__all__ = [
    "ClientSleeping",
    "ErrorResponse",
    "InvalidResponse",
    "NotRegistered",
    "PeerSleeping",
    "RequestCancelled",
    "RequestFailed",
    "RequestRejected",
    "RequestTimeout",
]


def _dotted(code: int) -> str:
    return f"{code >> 5}.{code & 0x1F:02d}"


class RequestFailed(Lwm2mError):
    """A request to a client did not succeed.

    ``code`` is the CoAP response code (an int, ``class << 5 | detail``) when the client
    answered, None otherwise; ``endpoint`` names the client when known.
    """

    code: int | None = None

    def __init__(
        self, message: str = "", *, endpoint: str | None = None, code: int | None = None
    ) -> None:
        self.endpoint = endpoint
        if code is not None:
            self.code = code
        text = message or self.__class__.__name__
        super().__init__(f"{endpoint}: {text}" if endpoint else text)

    @property
    def dotted_code(self) -> str | None:
        """``"4.04"`` style code, or None when there was no response."""
        return None if self.code is None else _dotted(self.code)


class ErrorResponse(RequestFailed):
    """The client answered with an error code (4.xx, 5.xx); ``diagnostic`` is its payload text."""

    code: int

    def __init__(self, code: int, diagnostic: str = "", *, endpoint: str | None = None) -> None:
        self.diagnostic = diagnostic
        detail = f" ({diagnostic[:120]})" if diagnostic else ""
        super().__init__(f"error response {_dotted(code)}{detail}", endpoint=endpoint, code=code)


class RequestTimeout(RequestFailed):
    """No response: retransmissions exhausted or the response timeout passed."""


class ClientSleeping(RequestFailed):
    """The client is in queue mode and asleep, and the request was not (or no longer) held."""


PeerSleeping = ClientSleeping


class NotRegistered(RequestFailed):
    """No registration for the endpoint (or it ended while the request waited)."""


class RequestCancelled(RequestFailed):
    """The request was cancelled before it completed (caller, shutdown, re-registration)."""


class RequestRejected(RequestFailed):
    """The client answered with a CoAP Reset (RFC 7252 §4.2)."""


class InvalidResponse(RequestFailed):
    """A success response whose payload cannot be decoded with the client's model."""
