"""The TLS 1.2 pseudo-random function and the secrets derived with it.

- ``PRF(secret, label, seed) = P_SHA256(secret, label + seed)`` (RFC 5246 §5); every cipher suite
  of this engine uses SHA-256.
- The PSK premaster secret ``uint16(N) || N zero bytes || uint16(N) || psk`` (RFC 4279 §2).
- The master secret (RFC 5246 §8.1) and the extended master secret (RFC 7627 §4).
- The key block (RFC 5246 §6.3) and Finished ``verify_data`` (RFC 5246 §7.4.9).
- :class:`HmacSha256`, HMAC-SHA256 keyed once: the PRF of one secret (a master secret, a PSK
  premaster inside its credential, a cookie secret) runs on it without re-keying per block.

Only the software credentials call :func:`psk_premaster`; the engine itself calls the PRF with
ECDHE premaster secrets (ephemeral) and master secrets, never with a long-term PSK.
"""

from __future__ import annotations

import hashlib

__all__ = [
    "EXTENDED_MASTER_SECRET_LABEL",
    "MASTER_SECRET_LABEL",
    "HmacSha256",
    "finished_verify_data",
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


_IPAD = bytes.maketrans(bytes(range(256)), bytes(x ^ 0x36 for x in range(256)))
_OPAD = bytes.maketrans(bytes(range(256)), bytes(x ^ 0x5C for x in range(256)))


class HmacSha256:
    """HMAC-SHA256 (RFC 2104) with the key schedule done once: the hashes of the inner and outer
    padded keys are kept and copied per message, which is several times faster than a one-shot
    ``hmac.digest`` that re-keys on every call. The key itself is not kept.

    >>> import hmac
    >>> HmacSha256(b"key").digest(b"msg") == hmac.digest(b"key", b"msg", "sha256")
    True
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\x00")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, message: bytes | bytearray) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def __repr__(self) -> str:
        return "<HmacSha256>"


def p_sha256(secret: bytes, seed: bytes, length: int) -> bytes:
    """``P_SHA256(secret, seed)`` truncated to ``length`` bytes (RFC 5246 §5).

    >>> len(p_sha256(b"k", b"s", 48))
    48
    """
    return prf(secret, b"", seed, length)


def prf(secret: bytes | HmacSha256, label: bytes, seed: bytes, length: int) -> bytes:
    """The TLS 1.2 PRF with SHA-256: ``P_SHA256(secret, label + seed)`` (RFC 5246 §5).

    ``secret`` may be a prepared :class:`HmacSha256` of the secret (one key schedule for all
    derivations from one master secret)."""
    mac = secret if isinstance(secret, HmacSha256) else HmacSha256(secret)
    # A(0) = seed, A(i) = HMAC(secret, A(i-1)); output HMAC(secret, A(i) + seed) ... (RFC 5246
    # §5). The HMACs are written out on the prepared inner/outer states: this runs 12 times per
    # handshake (master secret, key block, two Finished), so in one function.
    inner, outer = mac._inner, mac._outer
    seed = label + seed
    a = seed
    out = b""
    while True:  # one block per pass, at least one (the check after it)
        h = inner.copy()
        h.update(a)
        o = outer.copy()
        o.update(h.digest())
        a = o.digest()
        h = inner.copy()
        h.update(a + seed)
        o = outer.copy()
        o.update(h.digest())
        out += o.digest()
        if len(out) >= length:
            return out[:length]


def finished_verify_data(master: HmacSha256, label: bytes, handshake_hash: bytes) -> bytes:
    """Finished.verify_data: ``PRF(master_secret, finished_label, Hash(handshake_messages))``
    truncated to 12 bytes (RFC 5246 §7.4.9), the PRF's first block written out (what
    :func:`prf` gives for 12 bytes) for the two Finished of every handshake.

    >>> mac, digest = HmacSha256(bytes(48)), bytes(32)
    >>> finished_verify_data(mac, b"x", digest) == prf(mac, b"x", digest, 12)
    True
    """
    inner, outer = master._inner, master._outer
    seed = label + handshake_hash
    h = inner.copy()
    h.update(seed)
    o = outer.copy()
    o.update(h.digest())
    h = inner.copy()
    h.update(o.digest() + seed)
    o = outer.copy()
    o.update(h.digest())
    return o.digest()[:VERIFY_DATA_LENGTH]


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
