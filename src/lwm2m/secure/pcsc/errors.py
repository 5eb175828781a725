"""The errors of the PC/SC backend, all under :class:`lwm2m.errors.SecureComponentError`.

Every class also sits under the matching class of the Secure Component contract
(:mod:`lwm2m.secure.interfaces`), so callers that know only the contract catch them too:

==============================  ==========================================================
PC/SC error                      contract class
==============================  ==========================================================
:class:`TransportError`          :class:`~lwm2m.secure.interfaces.ComponentUnavailable`
:class:`ReaderNotFound`,         :class:`~lwm2m.secure.interfaces.ComponentNotFound`
:class:`CardNotPresent`
:class:`CardRemoved`             ``ComponentUnavailable`` (the card was pulled or reset)
status word 6A82/6A88            :class:`~lwm2m.secure.interfaces.KeyNotFound`
status word 6982/6983            :class:`~lwm2m.secure.interfaces.AuthenticationError`
status word 6985/6986            :class:`~lwm2m.secure.interfaces.ObjectLocked`
status word 6D00/6E00/6A81       :class:`~lwm2m.secure.interfaces.OperationNotSupported`
status word 6A84                 :class:`CardMemoryFull` (``OperationNotSupported``)
==============================  ==========================================================

Each parser of card data raises only its own class (``ApduError`` for APDU bytes,
``Pkcs15Error`` for EF.DIR/ODF/DODF, ``BootstrapFileError`` for EF LwM2M_Bootstrap,
``IotSafeError`` for IoT SAFE responses, ``Scp03Error`` for the secure channel), so callers can
catch exactly what a layer fails with. A card that answers with an error status word raises
:class:`StatusWordError`; a card, reader or pcscd that goes away raises :class:`TransportError`.

Messages name offsets, fields, tags and status words — never key material, PSKs or file content.
"""

from __future__ import annotations

from lwm2m.errors import SecureComponentError
from lwm2m.secure.interfaces import (
    AuthenticationError,
    ComponentNotFound,
    ComponentUnavailable,
    KeyNotFound,
    ObjectLocked,
    OperationNotSupported,
)

__all__ = [
    "ApduError",
    "BootstrapFileError",
    "CardDataError",
    "CardMemoryFull",
    "CardNotPresent",
    "CardRemoved",
    "CommandNotSupported",
    "ConditionsNotSatisfied",
    "IotSafeError",
    "ObjectNotFound",
    "PcscError",
    "PcscUnavailable",
    "Pkcs15Error",
    "ReaderNotFound",
    "Scp03Error",
    "SecureChannelClosed",
    "SecurityStatusNotSatisfied",
    "StatusWordError",
    "TransportError",
    "status_word_error",
]


class PcscError(SecureComponentError):
    """Root of the PC/SC backend's errors."""


class ApduError(PcscError, ValueError):
    """Bytes that are not a well-formed command or response APDU (ISO/IEC 7816-4 §5)."""


class CardDataError(PcscError, ValueError):
    """Malformed data read from a card; names the structure, the byte offset and the field."""

    structure = "card data"

    def __init__(self, message: str, *, offset: int | None = None, field: str | None = None):
        self.offset = offset
        self.field = field
        where = []
        if field:
            where.append(field)
        if offset is not None:
            where.append(f"offset {offset}")
        prefix = f"{self.structure}: " + (f"{', '.join(where)}: " if where else "")
        super().__init__(prefix + message)


class Pkcs15Error(CardDataError):
    """EF.DIR, EF.ODF or EF.DODF content that cannot be parsed (ISO/IEC 7816-15 / PKCS #15)."""

    structure = "PKCS#15"


class BootstrapFileError(CardDataError):
    """EF LwM2M_Bootstrap content that cannot be parsed (LwM2M-TS-Core Appendix G.3.3)."""

    structure = "EF LwM2M_Bootstrap"


class IotSafeError(CardDataError):
    """A GSMA IoT SAFE (IoT.05) response that cannot be parsed."""

    structure = "IoT SAFE"


class Scp03Error(PcscError):
    """The SCP03 secure channel failed: bad response, cryptogram or MAC (GP Amd D)."""


class SecureChannelClosed(Scp03Error):
    """The secure channel was closed after an error; a new session must be opened."""


class StatusWordError(PcscError):
    """The card answered a command with an error status word (ISO/IEC 7816-4 §5.6)."""

    def __init__(self, command: str, sw: int, meaning: str = "") -> None:
        self.command = command
        self.sw = sw
        self.meaning = meaning
        text = f"{command}: card answered {sw:04X}"
        super().__init__(f"{text} ({meaning})" if meaning else text)


class ObjectNotFound(StatusWordError, KeyNotFound):
    """6A82/6A88: the file, application, container or referenced data does not exist."""


class SecurityStatusNotSatisfied(StatusWordError, AuthenticationError):
    """6982/6983: the command needs a verified PIN or a secure channel (or the PIN is blocked)."""


class ConditionsNotSatisfied(StatusWordError, ObjectLocked):
    """6985/6986: the object refuses the command in its current state (e.g. an issuer
    container that may not be rewritten, an empty key container)."""


class CommandNotSupported(StatusWordError, OperationNotSupported):
    """6D00/6E00/6A81: the card or applet does not offer the command."""


class CardMemoryFull(StatusWordError, OperationNotSupported):
    """6A84: no room left on the card (containers or memory)."""


_STATUS_CLASSES: dict[int, type[StatusWordError]] = {
    0x6A82: ObjectNotFound,
    0x6A88: ObjectNotFound,
    0x6982: SecurityStatusNotSatisfied,
    0x6983: SecurityStatusNotSatisfied,
    0x6985: ConditionsNotSatisfied,
    0x6986: ConditionsNotSatisfied,
    0x6D00: CommandNotSupported,
    0x6E00: CommandNotSupported,
    0x6A81: CommandNotSupported,
    0x6A84: CardMemoryFull,
}


def status_word_error(command: str, sw: int, meaning: str = "") -> StatusWordError:
    """The :class:`StatusWordError` (sub)class for ``sw``, naming ``command`` — never data.

    >>> error = status_word_error("IoT SAFE COMPUTE DH", 0x6A88, "not found")
    >>> isinstance(error, KeyNotFound), str(error)
    (True, 'IoT SAFE COMPUTE DH: card answered 6A88 (not found)')
    """
    return _STATUS_CLASSES.get(sw, StatusWordError)(command, sw, meaning)


class TransportError(PcscError, ComponentUnavailable):
    """The PC/SC stack (pcscd, reader, card) failed underneath an exchange."""


class PcscUnavailable(TransportError):
    """pyscard is not installed, or pcscd is not running."""


class ReaderNotFound(TransportError, ComponentNotFound):
    """No reader of that name or index."""


class CardNotPresent(TransportError, ComponentNotFound):
    """The reader has no card (or the card does not answer to reset)."""


class CardRemoved(TransportError):
    """The card went away (or was reset by someone else) in the middle of a session; nothing
    read so far is used. Open the component again once a card is back."""
