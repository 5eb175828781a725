"""Errors of the CoAP layer, all below :class:`lwm2m.errors.CoapError`.

* :class:`MessageFormatError` — bytes that are not a CoAP message (RFC 7252 §3, §4.1-§4.3). It
  carries the message type and Message ID when the 4-byte header could be read, so a receiver can
  reject a Confirmable message with a Reset as RFC 7252 §4.2 requires.
* :class:`BadOptionError` — an unrecognized critical option or a critical option with an invalid
  length or repetition (RFC 7252 §5.4.1, §5.4.3, §5.4.5).
* Request outcomes raised by the adapter and carried by ``RequestFailed`` events:
  :class:`RequestTimeout`, :class:`RequestRejected` (a Reset), :class:`RequestCancelled`,
  :class:`BlockwiseError`.
* :class:`CoapUsageError` — the local application misused an API.
"""

from __future__ import annotations

from lwm2m.errors import CoapError, LocalProtocolError, RemoteProtocolError

__all__ = [
    "BadOptionError",
    "BlockwiseError",
    "BodyTooLarge",
    "CoapError",
    "CoapUsageError",
    "ErrorResponse",
    "MessageFormatError",
    "NetworkError",
    "RequestCancelled",
    "RequestFailedError",
    "RequestRejected",
    "RequestTimeout",
]


class MessageFormatError(CoapError, RemoteProtocolError, ValueError):
    """The datagram is not a well-formed CoAP message (RFC 7252 §3).

    ``mtype`` and ``mid`` are set when the fixed header was readable and the version was 1;
    otherwise the datagram must be silently ignored.
    """

    def __init__(self, message: str, *, mtype: int | None = None, mid: int | None = None) -> None:
        super().__init__(message)
        self.mtype = mtype
        self.mid = mid


class BadOptionError(CoapError, RemoteProtocolError):
    """A critical option was not recognized or not valid (RFC 7252 §5.4.1)."""

    def __init__(self, number: int, reason: str = "unrecognized") -> None:
        super().__init__(f"critical option {number}: {reason}")
        self.number = number


class RequestFailedError(CoapError):
    """Root of the ways a request can end without a response."""


class RequestTimeout(RequestFailedError):
    """No ACK after MAX_RETRANSMIT retransmissions, or no response within the response timeout."""


class RequestRejected(RequestFailedError):
    """The peer answered with a Reset message (RFC 7252 §4.2)."""


class RequestCancelled(RequestFailedError):
    """The local application cancelled the request, or the endpoint shut down."""


class BlockwiseError(RequestFailedError):
    """A block-wise transfer failed: inconsistent blocks, changed ETag, or body too large."""


class BodyTooLarge(BlockwiseError):
    """A block-wise response grew beyond ``CoapConfig.max_body_size`` (the client's buffer)."""


class NetworkError(RequestFailedError):
    """The transport reported an error for the peer (e.g. ICMP port unreachable)."""


class ErrorResponse(CoapError):
    """Raised by a request handler to answer with ``code`` (a 4.xx/5.xx) and a diagnostic
    payload (RFC 7252 §5.5.2)."""

    def __init__(self, code: int, diagnostic: str = "") -> None:
        super().__init__(f"{code >> 5}.{code & 0x1F:02d} {diagnostic}".rstrip())
        self.code = code
        self.diagnostic = diagnostic


class CoapUsageError(CoapError, LocalProtocolError):
    """An API was called in a state that does not allow it (a bug in the caller)."""
