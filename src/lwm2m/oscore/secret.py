"""The credential seam of OSCORE: the Master Secret derives, it is never read (RFC 8613 §3.2.1,
§12.3; RFC 5869).

A Security Context needs the Master Secret only as the input keying material of HKDF (RFC 8613
§3.2.1: ``output = HKDF(salt = Master Salt, IKM = Master Secret, info, L)``). The context therefore
holds a :class:`MasterSecret` capability that runs the whole HKDF (Extract and Expand) inside its
holder, so that a Secure Component (SE, TEE, HSM — LwM2M-SCS-4) can keep the Master Secret. The
derived Sender Key, Recipient Key and Common IV live in the context (RFC 8613 §3.1 lets an
endpoint drop the Master Secret once they are derived).

:class:`SoftwareMasterSecret` is the in-memory implementation; it never shows the secret.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .algorithms import HkdfAlgorithm
from .errors import InvalidParameters

__all__ = ["MasterSecret", "SoftwareMasterSecret"]


@runtime_checkable
class MasterSecret(Protocol):
    """The credential seam: the OSCORE Master Secret never leaves its holder."""

    def hkdf(self, algorithm: HkdfAlgorithm, salt: bytes, info: bytes, length: int) -> bytes:
        """``HKDF-Expand(HKDF-Extract(salt, master secret), info, length)`` (RFC 5869 §2.2,
        §2.3); an empty ``salt`` means a string of hash-length zeros (RFC 5869 §2.2, RFC 8613
        §3.2.1)."""
        ...


class SoftwareMasterSecret:
    """A Master Secret held in process memory (development, tests, the ``soft:`` backend).

    >>> secret = SoftwareMasterSecret(bytes.fromhex("0102030405060708090a0b0c0d0e0f10"))
    >>> secret
    SoftwareMasterSecret(<16 bytes>)
    >>> salt, info = bytes.fromhex("9e7ca92223786340"), bytes.fromhex("8540f60a634b657910")
    >>> secret.hkdf(HkdfAlgorithm.HKDF_SHA_256, salt, info, 16).hex()  # RFC 8613 C.1.1
    'f0910ed7295e6ad4b54fc793154302ff'
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise InvalidParameters("the Master Secret must not be empty (RFC 8613 §12.3)")
        self._secret = bytes(secret)

    def hkdf(self, algorithm: HkdfAlgorithm, salt: bytes, info: bytes, length: int) -> bytes:
        kdf = HKDF(HkdfAlgorithm(algorithm).hash_algorithm, length, salt or None, info)
        return kdf.derive(self._secret)

    def __repr__(self) -> str:
        return f"SoftwareMasterSecret(<{len(self._secret)} bytes>)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a SoftwareMasterSecret cannot be pickled")
