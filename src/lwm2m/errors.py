"""The one exception tree of the package, rooted in :class:`Lwm2mError`.

Every layer raises only its own branch of this tree (decoders of untrusted bytes raise only their
layer's error), so callers can catch exactly what a layer can fail with. Layers add subclasses in
their own modules; the roots live here so that no layer has to import another to catch its errors.

Secrets never appear in messages: errors carry paths, ids and lengths, never values of secret
resources or key material.
"""

from __future__ import annotations

__all__ = [
    "BufferReadError",
    "CoapError",
    "CodecError",
    "DdfError",
    "DtlsError",
    "InvalidPathError",
    "LocalProtocolError",
    "Lwm2mError",
    "ModelError",
    "ProtocolError",
    "RemoteProtocolError",
    "SecureComponentError",
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


class CoapError(Lwm2mError):
    """Root of the CoAP layer's errors (message decoding, exchanges, transport)."""


class DtlsError(Lwm2mError):
    """Root of the DTLS layer's errors (alerts, handshake failures)."""


class SecureComponentError(Lwm2mError):
    """Root of the Secure Component layer's errors."""
