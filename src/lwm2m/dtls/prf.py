"""The TLS 1.2 pseudo-random function and the secrets derived with it.

- ``PRF(secret, label, seed) = P_SHA256(secret, label + seed)`` (RFC 5246 §5); every cipher suite
  of this engine uses SHA-256.
- The PSK premaster secret ``uint16(N) || N zero bytes || uint16(N) || psk`` (RFC 4279 §2).
- The master secret (RFC 5246 §8.1) and the extended master secret (RFC 7627 §4).
- The key block (RFC 5246 §6.3) and Finished ``verify_data`` (RFC 5246 §7.4.9).

Only the software credentials call :func:`psk_premaster`; the engine itself calls the PRF with
ECDHE premaster secrets (ephemeral) and master secrets, never with a long-term PSK.
"""

from __future__ import annotations

import hmac

__all__ = [
    "EXTENDED_MASTER_SECRET_LABEL",
    "MASTER_SECRET_LABEL",
    "master_secret_seed",
    "p_sha256",
    "prf",
    "psk_premaster",
]

MASTER_SECRET_LABEL = b"master secret"
EXTENDED_MASTER_SECRET_LABEL = b"extended master secret"
KEY_EXPANSION_LABEL = b"key expansion"
CLIENT_FINISHED_LABEL = b"client finished"
SERVER_FINISHED_LABEL = b"server finished"

#: Length of the master secret (RFC 5246 §8.1).
MASTER_SECRET_LENGTH = 48
#: Length of Finished.verify_data (RFC 5246 §7.4.9).
VERIFY_DATA_LENGTH = 12


def p_sha256(secret: bytes, seed: bytes, length: int) -> bytes:
    """``P_SHA256(secret, seed)`` truncated to ``length`` bytes (RFC 5246 §5).

    >>> len(p_sha256(b"k", b"s", 48))
    48
    """
    out = bytearray()
    a = seed
    while len(out) < length:
        a = hmac.digest(secret, a, "sha256")
        out += hmac.digest(secret, a + seed, "sha256")
    return bytes(out[:length])


def prf(secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """The TLS 1.2 PRF with SHA-256: ``P_SHA256(secret, label + seed)`` (RFC 5246 §5)."""
    return p_sha256(secret, label + seed, length)


def psk_premaster(psk: bytes) -> bytes:
    """The plain-PSK premaster secret of RFC 4279 §2.

    >>> psk_premaster(b"\\x01\\x02").hex()
    '0002000000020102'
    """
    n = len(psk)
    return n.to_bytes(2, "big") + bytes(n) + n.to_bytes(2, "big") + psk


def master_secret_seed(
    client_random: bytes, server_random: bytes, session_hash: bytes | None
) -> tuple[bytes, bytes]:
    """``(label, seed)`` of the master secret derivation.

    With ``session_hash`` (the hash of the handshake up to ClientKeyExchange) this is the extended
    master secret of RFC 7627 §4; otherwise RFC 5246 §8.1. A PSK credential is given exactly this
    pair (``derive_master_secret(label, seed)``), so both variants go through one call.
    """
    if session_hash is not None:
        return EXTENDED_MASTER_SECRET_LABEL, session_hash
    return MASTER_SECRET_LABEL, client_random + server_random
