"""Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1).

``cookie = HMAC-SHA256(secret, client address || ClientHello parameters)``, the construction the
RFC suggests. The parameters are those a client must repeat unchanged (version, random,
session_id, cipher_suites, compression_methods), so a cookie is bound to one hello from one
address. The secret rotates every ``lifetime`` seconds; cookies made with the previous secret
stay valid for one more period. Nothing per client is stored.
"""

from __future__ import annotations

import hmac
import os

from .messages import ClientHello

__all__ = ["CookieGenerator"]


def _hello_parameters(hello: ClientHello) -> bytes:
    return (
        hello.version.to_bytes(2, "big")
        + hello.random
        + bytes([len(hello.session_id)])
        + hello.session_id
        + b"".join(s.to_bytes(2, "big") for s in hello.cipher_suites)
        + hello.compression_methods
    )


class CookieGenerator:
    """Makes and checks cookies with a rotating random secret.

    >>> from lwm2m.dtls.messages import ClientHello
    >>> gen = CookieGenerator(lifetime=60.0)
    >>> hello = ClientHello(random=bytes(32), session_id=b"", cookie=b"", cipher_suites=(0xC0A8,))
    >>> cookie = gen.generate(b"127.0.0.1:5684", hello, now=0.0)
    >>> gen.verify(cookie, b"127.0.0.1:5684", hello, now=90.0), gen.verify(cookie, b"x", hello, 0.0)
    (True, False)
    >>> gen.verify(cookie, b"127.0.0.1:5684", hello, now=200.0)
    False
    """

    __slots__ = ("_current", "_lifetime", "_previous", "_rotate_at")

    COOKIE_LENGTH = 32

    def __init__(self, lifetime: float = 60.0) -> None:
        if lifetime <= 0:
            raise ValueError("cookie lifetime must be positive")
        self._lifetime = lifetime
        self._current = os.urandom(32)
        self._previous: bytes | None = None
        self._rotate_at: float | None = None

    def _rotate(self, now: float) -> None:
        if self._rotate_at is None:
            self._rotate_at = now + self._lifetime
        elif now >= self._rotate_at:
            if now >= self._rotate_at + self._lifetime:
                self._previous = None  # idle for two periods: both secrets expired
            else:
                self._previous = self._current
            self._current = os.urandom(32)
            self._rotate_at = now + self._lifetime

    @staticmethod
    def _mac(secret: bytes, client: bytes, hello: ClientHello) -> bytes:
        return hmac.digest(
            secret, len(client).to_bytes(2, "big") + client + _hello_parameters(hello), "sha256"
        )

    def generate(self, client: bytes, hello: ClientHello, now: float) -> bytes:
        """The cookie for ``hello`` from the client address ``client``."""
        self._rotate(now)
        return self._mac(self._current, client, hello)

    def verify(self, cookie: bytes, client: bytes, hello: ClientHello, now: float) -> bool:
        """Whether ``cookie`` was made for this hello and address by a live secret."""
        self._rotate(now)
        if len(cookie) != self.COOKIE_LENGTH:
            return False
        if hmac.compare_digest(cookie, self._mac(self._current, client, hello)):
            return True
        previous = self._previous
        return previous is not None and hmac.compare_digest(
            cookie, self._mac(previous, client, hello)
        )

    def __repr__(self) -> str:
        return f"CookieGenerator(lifetime={self._lifetime})"
