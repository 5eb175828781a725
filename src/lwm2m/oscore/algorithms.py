"""COSE algorithms used by OSCORE (RFC 8613 §3.2, §5; RFC 8152 §10, §11 / RFC 9053).

Registries (IANA "COSE Algorithms"):

* AEAD algorithms — AES-CCM-16-64-128 (10, mandatory to implement, RFC 8613 §5),
  AES-CCM-16-128-128 (30) and A128GCM (1). Key, nonce and tag lengths are those of the registry
  (RFC 8152 §10.1, §10.2). RFC 8613 §5.2 needs nonces of at least 7 bytes; all three qualify.
* HKDF algorithms — HKDF SHA-256 (-10, mandatory, RFC 8613 §3.2.1) and HKDF SHA-512 (-11).

:class:`Aead` wraps one key for one algorithm (the ``cryptography`` cipher object); it never shows
the key.
"""

from __future__ import annotations

import enum
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM

__all__ = ["Aead", "AeadAlgorithm", "HkdfAlgorithm", "InvalidTag"]


class AeadAlgorithm(enum.IntEnum):
    """COSE AEAD algorithm identifiers usable with OSCORE.

    >>> a = AeadAlgorithm.AES_CCM_16_64_128
    >>> a.key_length, a.nonce_length, a.tag_length, a.max_id_length
    (16, 13, 8, 7)
    """

    A128GCM = 1
    AES_CCM_16_64_128 = 10
    AES_CCM_16_128_128 = 30

    @property
    def key_length(self) -> int:
        return _AEAD_PARAMETERS[self][0]

    @property
    def nonce_length(self) -> int:
        return _AEAD_PARAMETERS[self][1]

    @property
    def tag_length(self) -> int:
        return _AEAD_PARAMETERS[self][2]

    @property
    def max_id_length(self) -> int:
        """Longest Sender/Recipient ID: the nonce length minus 6 (RFC 8613 §3.3, §5.2)."""
        return self.nonce_length - 6


#: key length, nonce length, tag length (bytes) per algorithm (RFC 8152 §10.1, §10.2).
_AEAD_PARAMETERS: Final[dict[AeadAlgorithm, tuple[int, int, int]]] = {
    AeadAlgorithm.A128GCM: (16, 12, 16),
    AeadAlgorithm.AES_CCM_16_64_128: (16, 13, 8),
    AeadAlgorithm.AES_CCM_16_128_128: (16, 13, 16),
}


class HkdfAlgorithm(enum.IntEnum):
    """COSE HKDF algorithm identifiers (RFC 8152 §11.1).

    >>> HkdfAlgorithm.HKDF_SHA_256.hash_algorithm.name
    'sha256'
    """

    HKDF_SHA_512 = -11
    HKDF_SHA_256 = -10

    @property
    def hash_algorithm(self) -> hashes.HashAlgorithm:
        return hashes.SHA512() if self is HkdfAlgorithm.HKDF_SHA_512 else hashes.SHA256()


class Aead:
    """One AEAD key of one algorithm: ``encrypt`` returns ciphertext || tag, ``decrypt`` raises
    :class:`cryptography.exceptions.InvalidTag` on any failure (including a too short input)."""

    __slots__ = ("_cipher", "algorithm")

    def __init__(self, algorithm: AeadAlgorithm, key: bytes) -> None:
        self.algorithm = algorithm
        self._cipher: AESCCM | AESGCM
        if algorithm is AeadAlgorithm.A128GCM:
            self._cipher = AESGCM(key)
        else:
            self._cipher = AESCCM(key, tag_length=algorithm.tag_length)

    def encrypt(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._cipher.encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        if len(ciphertext) < self.algorithm.tag_length:
            raise InvalidTag
        return self._cipher.decrypt(nonce, ciphertext, aad)

    def __repr__(self) -> str:
        return f"Aead({self.algorithm.name})"
