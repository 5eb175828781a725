"""The OSCORE option value: the compressed COSE header (RFC 8613 §2, §6.1, §6.3).

::

     0 1 2 3 4 5 6 7 <----------- n bytes ----------->
    +-+-+-+-+-+-+-+-+----------------------------------
    |0 0 0|h|k|  n  |      Partial IV (if any) ...
    +-+-+-+-+-+-+-+-+----------------------------------
    | s (if h) | kid context (s bytes, if h) | kid (the rest, if k) |

* ``n`` is the Partial IV length; 6 and 7 are reserved, so a Partial IV has 1 to 5 bytes.
* ``k`` flags a 'kid' (it takes the remaining bytes, possibly none), ``h`` a 'kid context'
  preceded by its one-byte length ``s``.
* The three most significant bits are reserved and must be zero, and a value whose flag byte is
  0x00 must be empty (§2) — both are decoding failures here, so :meth:`OscoreOption.decode` is
  the exact inverse of :meth:`OscoreOption.encode`.

:meth:`OscoreOption.decode` raises only :class:`~lwm2m.oscore.errors.OptionDecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import OptionNumber

from .errors import OptionDecodeError, OscoreUsageError

__all__ = ["MAX_PARTIAL_IV_LENGTH", "OscoreOption", "oscore_option"]

#: n = 6 and 7 are reserved (RFC 8613 §6.1): a Partial IV is at most 5 bytes (40 bits, §12.6).
MAX_PARTIAL_IV_LENGTH = 5

_FLAG_KID = 0x08
_FLAG_KID_CONTEXT = 0x10
_RESERVED_FLAGS = 0xE0
_PIV_LENGTH_MASK = 0x07


@dataclass(frozen=True, slots=True)
class OscoreOption:
    """The decoded OSCORE option: Partial IV, 'kid' and 'kid context', each None when absent.

    >>> OscoreOption(partial_iv=b"\\x05", kid=b"\\x25").encode().hex()  # RFC 8613 §6.3 ex. 1
    '090525'
    >>> OscoreOption.decode(bytes.fromhex("19050544616c656b"))  # §6.3 example 3
    OscoreOption(partial_iv=b'\\x05', kid=b'', kid_context=b'Dalek')
    >>> OscoreOption().encode()  # a response without Partial IV: the value is empty (§2)
    b''
    """

    partial_iv: bytes | None = None
    kid: bytes | None = None
    kid_context: bytes | None = None

    def __post_init__(self) -> None:
        if self.partial_iv is not None and not 1 <= len(self.partial_iv) <= 5:
            raise OscoreUsageError(
                f"a Partial IV has 1 to 5 bytes, not {len(self.partial_iv)} (RFC 8613 §6.1)"
            )
        if self.kid_context is not None and len(self.kid_context) > 255:
            raise OscoreUsageError(
                f"a 'kid context' has at most 255 bytes, not {len(self.kid_context)} (§6.1)"
            )

    def encode(self) -> bytes:
        """The option value (RFC 8613 §6.1); empty when nothing is present (§2)."""
        flags = 0
        parts = [b""]
        if self.partial_iv is not None:
            flags |= len(self.partial_iv)
            parts.append(self.partial_iv)
        if self.kid_context is not None:
            flags |= _FLAG_KID_CONTEXT
            parts.append(bytes((len(self.kid_context),)))
            parts.append(self.kid_context)
        if self.kid is not None:
            flags |= _FLAG_KID
            parts.append(self.kid)
        if not flags:
            return b""
        parts[0] = bytes((flags,))
        return b"".join(parts)

    @classmethod
    def decode(cls, value: bytes) -> OscoreOption:
        """Parse an option value; raises :class:`OptionDecodeError` only."""
        if not value:
            return cls()
        flags = value[0]
        if flags & _RESERVED_FLAGS:
            raise OptionDecodeError(f"reserved flag bits set in 0x{flags:02x} (RFC 8613 §6.1)")
        if not flags:
            raise OptionDecodeError("flag byte 0x00 in a non-empty option value (RFC 8613 §2)")
        n = flags & _PIV_LENGTH_MASK
        if n > MAX_PARTIAL_IV_LENGTH:
            raise OptionDecodeError(f"reserved Partial IV length {n} (RFC 8613 §6.1)")
        end = 1 + n
        if end > len(value):
            raise OptionDecodeError(f"truncated Partial IV of {n} bytes")
        partial_iv = value[1:end] if n else None
        kid_context = None
        if flags & _FLAG_KID_CONTEXT:
            if end >= len(value):
                raise OptionDecodeError("missing 'kid context' length")
            start = end + 1
            end = start + value[end]
            if end > len(value):
                raise OptionDecodeError("truncated 'kid context'")
            kid_context = value[start:end]
        kid = None
        if flags & _FLAG_KID:
            kid = value[end:]
        elif end != len(value):
            raise OptionDecodeError(f"{len(value) - end} bytes after the last field")
        return cls(partial_iv, kid, kid_context)


def oscore_option(message: Message) -> OscoreOption | None:
    """The decoded OSCORE option of an outer message, None if it has none.

    Raises :class:`OptionDecodeError` for an undecodable value or a repeated option (the OSCORE
    option is not repeatable, RFC 8613 §2).
    """
    values = message.get_options(OptionNumber.OSCORE)
    if not values:
        return None
    if len(values) > 1:
        raise OptionDecodeError(f"{len(values)} OSCORE options (not repeatable, RFC 8613 §2)")
    return OscoreOption.decode(values[0])
