"""The errors of the PC/SC backend, all under :class:`lwm2m.errors.SecureComponentError`.

Each parser of card data raises only its own class (``ApduError`` for APDU bytes,
``Pkcs15Error`` for EF.DIR/ODF/DODF, ``BootstrapFileError`` for EF LwM2M_Bootstrap,
``IotSafeError`` for IoT SAFE responses, ``Scp03Error`` for the secure channel), so callers can
catch exactly what a layer fails with. A card that answers with an error status word raises
:class:`StatusWordError`; a card, reader or pcscd that goes away raises :class:`TransportError`.

Messages name offsets, fields, tags and status words — never key material, PSKs or file content.
"""

from __future__ import annotations

from lwm2m.errors import SecureComponentError

__all__ = [
    "ApduError",
    "BootstrapFileError",
    "CardDataError",
    "CardNotPresent",
    "CardRemoved",
    "IotSafeError",
    "PcscError",
    "PcscUnavailable",
    "Pkcs15Error",
    "ReaderNotFound",
    "Scp03Error",
    "SecureChannelClosed",
    "StatusWordError",
    "TransportError",
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


class TransportError(PcscError):
    """The PC/SC stack (pcscd, reader, card) failed underneath an exchange."""


class PcscUnavailable(TransportError):
    """pyscard is not installed, or pcscd is not running."""


class ReaderNotFound(TransportError):
    """No reader of that name or index."""


class CardNotPresent(TransportError):
    """The reader has no card (or the card does not answer to reset)."""


class CardRemoved(TransportError):
    """The card went away in the middle of an operation; nothing read so far is used."""
