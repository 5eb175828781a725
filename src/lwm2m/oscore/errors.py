"""Errors of the OSCORE layer, all below :class:`lwm2m.errors.OscoreError`.

* :class:`InvalidParameters` — the input of a Security Context is unusable (RFC 8613 §3.2, §3.3:
  equal or too long Sender/Recipient IDs, an unknown algorithm, an empty Master Secret).
* :class:`OscoreUsageError` — the local application misused the API (protecting a message that
  already carries an OSCORE option, §4.1.3.7; a request binding of another context).
* :class:`ContextExhausted` — the Sender Sequence Number passed its maximum, 2^40 - 1
  (§7.2.1, §12.6): the Sender Context must not protect any more messages.
* :class:`VerificationError` — a received message fails OSCORE verification (§7.4, §8.2, §8.4).
  Each subclass carries the unprotected CoAP error response a server sends for it (§8.2):
  ``response_code`` (an int such as ``Code.BAD_OPTION``) and ``diagnostic`` (the diagnostic
  payload the RFC suggests). A client that fails to verify a response just drops it (§8.4).

Messages name the rule that was broken and public identifiers only (Sender/Recipient IDs,
Partial IVs, lengths); never keys, the Common IV or the Master Secret.
"""

from __future__ import annotations

from typing import ClassVar

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code, OptionNumber
from lwm2m.errors import LocalProtocolError, OscoreError, RemoteProtocolError

__all__ = [
    "ContextExhausted",
    "ContextNotFound",
    "DecryptionFailed",
    "InvalidParameters",
    "MalformedPlaintext",
    "NotProtected",
    "OptionDecodeError",
    "OscoreError",
    "OscoreUsageError",
    "ReplayDetected",
    "VerificationError",
]


class InvalidParameters(OscoreError, ValueError):
    """Security Context input parameters break RFC 8613 §3.2/§3.3."""


class OscoreUsageError(OscoreError, LocalProtocolError):
    """The API was called with arguments that cannot be right (a bug in the caller)."""


class ContextExhausted(OscoreError):
    """The Sender Sequence Number would exceed 2^40 - 1 (RFC 8613 §7.2.1): establish a new
    Security Context."""


class VerificationError(OscoreError, RemoteProtocolError):
    """A received OSCORE message was rejected; stop processing it (RFC 8613 §8.2, §8.4).

    ``response_code`` and ``diagnostic`` describe the *unprotected* error response a server may
    send (§8.2; the RFC makes sending it optional). :meth:`error_response` builds it.
    """

    response_code: ClassVar[int] = Code.BAD_REQUEST
    diagnostic: ClassVar[str] = "Decryption failed"

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{self.diagnostic}: {detail}" if detail else self.diagnostic)
        self.detail = detail

    def error_response(self, request: Message) -> Message:
        """The unprotected error response to ``request`` (RFC 8613 §8.2): ``response_code``,
        an Outer Max-Age of 0 (§4.1.3.1, so that proxies do not cache it) and ``diagnostic`` as
        payload. The token is the request's; the CoAP engine sets type and Message ID."""
        return Message(
            self.response_code,
            self.diagnostic.encode(),
            token=request.token,
            options=[(OptionNumber.MAX_AGE, b"")],
        )


class NotProtected(VerificationError):
    """The message carries no OSCORE option although OSCORE was required (RFC 8613 §2)."""

    response_code = Code.UNAUTHORIZED
    diagnostic = "OSCORE required"


class OptionDecodeError(VerificationError):
    """The OSCORE option or the compressed COSE object cannot be decoded (RFC 8613 §6.1, §2
    "a message without payload with an OSCORE option is malformed", §8.2 step 2)."""

    response_code = Code.BAD_OPTION
    diagnostic = "Failed to decode COSE"


class ContextNotFound(VerificationError):
    """No Recipient Context matches the 'kid' (and 'kid context') of a request (§8.2 step 2)."""

    response_code = Code.UNAUTHORIZED
    diagnostic = "Security context not found"


class ReplayDetected(VerificationError):
    """The Partial IV of a request was received before (§7.4), or a response/notification is not
    newer than one already accepted for the same request (§7.4.1, §8.4.2)."""

    response_code = Code.UNAUTHORIZED
    diagnostic = "Replay detected"


class DecryptionFailed(VerificationError):
    """AEAD decryption / integrity verification failed (§8.2 step 6, §8.4 step 5)."""

    response_code = Code.BAD_REQUEST
    diagnostic = "Decryption failed"


class MalformedPlaintext(VerificationError):
    """The decrypted plaintext is not a valid inner message (§5.3): unparseable options, a Code
    of the wrong class, a nested OSCORE option (§4.1.3.7), or an Inner Observe option in a
    response to a request that did not register (§4.1.3.5.2)."""

    response_code = Code.BAD_REQUEST
    diagnostic = "Malformed plaintext"
