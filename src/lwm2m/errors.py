"""The one exception tree of the package, rooted in :class:`Lwm2mError`.

Every layer raises only its own branch of this tree (decoders of untrusted bytes raise only their
layer's error), so callers can catch exactly what a layer can fail with. Layers add subclasses in
their own modules; the roots live here so that no layer has to import another to catch its errors.

Secrets never appear in messages: errors carry paths, ids and lengths, never values of secret
resources or key material.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "BufferReadError",
    "CoapError",
    "CodecError",
    "DdfError",
    "DtlsError",
    "Forbidden",
    "InternalServerError",
    "InvalidPathError",
    "LocalProtocolError",
    "Lwm2mError",
    "MethodNotAllowed",
    "ModelError",
    "NotAcceptable",
    "NotFound",
    "OscoreError",
    "PreconditionFailed",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestEntityTooLarge",
    "RequestError",
    "SecureComponentError",
    "SecureComponentUnavailable",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedContentFormat",
]


class Lwm2mError(Exception):
    """Root of every error raised by this package."""


class BufferReadError(Lwm2mError, ValueError):
    """A read ran past the end of a :class:`lwm2m.buffer.Buffer` or a block was not consumed."""


class ModelError(Lwm2mError, ValueError):
    """An object model (definition, path, value) is invalid."""


class InvalidPathError(ModelError):
    """A string or id sequence is not a valid LwM2M path (LwM2M-TS-Core §7.1 / ids 0..65534)."""


class DdfError(ModelError):
    """A DDF XML file cannot be loaded; names the file and the offending element."""

    def __init__(self, message: str, *, file: str | None = None, element: str | None = None):
        self.file = file
        self.element = element
        where = ", ".join(
            part for part in (file, f"element <{element}>" if element else None) if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class CodecError(Lwm2mError, ValueError):
    """A payload cannot be encoded or decoded in the requested content format.

    ``path`` is the LwM2M path the error concerns (as text), when known. The message always names
    the path and the problem.
    """

    def __init__(self, message: str, *, path: str | None = None):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class ProtocolError(Lwm2mError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """The local application misused an API (a bug on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke a protocol rule."""


class RequestError(Lwm2mError):
    """An LwM2M request cannot be served: rendered as the CoAP error response ``code``.

    Object handlers raise the subclasses (``NotFound()``, ``MethodNotAllowed()``, ...); the
    client's object tree turns them into the response. ``code`` is the CoAP code as an int
    (class << 5 | detail), so this module needs no CoAP import.
    """

    code: int = 0xA0  # 5.00

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__name__)


class BadRequest(RequestError):
    code = 0x80  # 4.00


class Unauthorized(RequestError):
    code = 0x81  # 4.01


class Forbidden(RequestError):
    code = 0x83  # 4.03


class NotFound(RequestError):
    code = 0x84  # 4.04


class MethodNotAllowed(RequestError):
    code = 0x85  # 4.05


class NotAcceptable(RequestError):
    code = 0x86  # 4.06


class PreconditionFailed(RequestError):
    code = 0x8C  # 4.12


class RequestEntityTooLarge(RequestError):
    code = 0x8D  # 4.13


class UnsupportedContentFormat(RequestError):
    code = 0x8F  # 4.15


class InternalServerError(RequestError):
    code = 0xA0  # 5.00


class ServiceUnavailable(RequestError):
    code = 0xA3  # 5.03


class CoapError(Lwm2mError):
    """Root of the CoAP layer's errors (message decoding, exchanges, transport)."""


class DtlsError(Lwm2mError):
    """Root of the DTLS layer's errors (alerts, handshake failures)."""


class OscoreError(Lwm2mError):
    """Root of the OSCORE layer's errors (RFC 8613: option decoding, security contexts,
    decryption, replay)."""


class SecureComponentError(Lwm2mError):
    """Root of the Secure Component layer's errors."""


class SecureComponentUnavailable(SecureComponentError):
    """A Secure Component an operation needs cannot be reached: its library, module, token or
    card is missing, or the card went away. Defined here, below the engines, so that the client
    engine can answer 5.03 for the objects a component holds without knowing the component
    layer (:class:`lwm2m.secure.interfaces.ComponentUnavailable` is the component layer's
    name for it)."""
