"""Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1).

``cookie = HMAC-SHA256(secret, client address || ClientHello parameters)``, the construction the
RFC suggests. The parameters are those a client must repeat unchanged (version, random,
session_id, cipher_suites, compression_methods), taken as their wire bytes with length prefixes
(the hello without its cookie field, :func:`~.messages.client_hello_parameters`), so a cookie is
bound to one hello from one address. The secret rotates every ``lifetime`` seconds; cookies made
with the previous secret stay valid for one more period. Nothing per client is stored.

The server demultiplexer calls :meth:`CookieGenerator.generate_for` /
:meth:`~CookieGenerator.verify_for` with the parameter bytes cut from the received hello, so a
hello is parsed once; ``generate``/``verify`` take a parsed :class:`~.messages.ClientHello`.
"""

from __future__ import annotations

import hmac
import os

from .messages import ClientHello, client_hello_parameters
from .prf import HmacSha256

__all__ = ["CookieGenerator"]


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
        # The secrets are kept only as keyed HMAC states (one key schedule per secret).
        self._current = HmacSha256(os.urandom(32))
        self._previous: HmacSha256 | None = None
        self._rotate_at: float | None = None

    def _rotate(self, now: float) -> None:
        if self._rotate_at is None:
            self._rotate_at = now + self._lifetime
        elif now >= self._rotate_at:
            if now >= self._rotate_at + self._lifetime:
                self._previous = None  # idle for two periods: both secrets expired
            else:
                self._previous = self._current
            self._current = HmacSha256(os.urandom(32))
            self._rotate_at = now + self._lifetime

    @staticmethod
    def _mac(secret: HmacSha256, client: bytes, parameters: bytes) -> bytes:
        return secret.digest(len(client).to_bytes(2, "big") + client + parameters)

    def generate(self, client: bytes, hello: ClientHello, now: float) -> bytes:
        """The cookie for ``hello`` from the client address ``client``."""
        return self.generate_for(client, client_hello_parameters(hello), now)

    def verify(self, cookie: bytes, client: bytes, hello: ClientHello, now: float) -> bool:
        """Whether ``cookie`` was made for this hello and address by a live secret."""
        return self.verify_for(cookie, client, client_hello_parameters(hello), now)

    def generate_for(self, client: bytes, parameters: bytes, now: float) -> bytes:
        """The cookie for the hello whose cookie-less wire bytes are ``parameters``."""
        self._rotate(now)
        return self._mac(self._current, client, parameters)

    def verify_for(self, cookie: bytes, client: bytes, parameters: bytes, now: float) -> bool:
        """:meth:`verify` with the hello's cookie-less wire bytes; comparisons are
        constant-time."""
        self._rotate(now)
        if len(cookie) != self.COOKIE_LENGTH:
            return False
        if hmac.compare_digest(cookie, self._mac(self._current, client, parameters)):
            return True
        previous = self._previous
        return previous is not None and hmac.compare_digest(
            cookie, self._mac(previous, client, parameters)
        )

    def check(self, cookie: bytes, client: bytes, parameters: bytes, now: float) -> bytes | None:
        """None when ``cookie`` verifies (:meth:`verify_for`), else the cookie to send in a
        HelloVerifyRequest (:meth:`generate_for`): what a server does with every hello, in one
        call."""
        rotate_at = self._rotate_at
        if rotate_at is None or now >= rotate_at:
            self._rotate(now)
        current = self._current
        inner = len(client).to_bytes(2, "big") + client + parameters
        expected = current.digest(inner)
        if len(cookie) == self.COOKIE_LENGTH:
            if hmac.compare_digest(cookie, expected):
                return None
            previous = self._previous
            if previous is not None and hmac.compare_digest(cookie, previous.digest(inner)):
                return None
        return expected

    def __repr__(self) -> str:
        return f"CookieGenerator(lifetime={self._lifetime})"
