"""Bearer-token authentication of the REST API (RFC 6750 §2.1, the ``Authorization`` header).

With :class:`ApiTokens` given to :func:`lwm2m.api.create_app`, every request under ``/api/``
and the OpenAPI document must carry ``Authorization: Bearer <token>`` with one of the tokens;
otherwise the answer is 401 with ``WWW-Authenticate: Bearer realm="lwm2m"`` (plus
``error="invalid_token"`` when a token was given but is not one of them, RFC 6750 §3) and the
API's JSON error body. The web UI's own files (``/``, ``/ui/...``) hold no device data and stay
public, so that the page can load and ask the operator for a token.

Each token has a :class:`TokenScope`: ``manage`` (everything) or ``read`` (the GET routes only:
registrations, Read, Discover, observations, the event stream, security entries without keys),
for dashboards and monitoring. A ``read`` token on any other method gets 403 with
``error="insufficient_scope"`` (RFC 6750 §3.1).

Only the header is accepted: a token in the query string would be written to access logs, and a
cookie would be sent by the browser on requests other sites make it send. The UI keeps the
token in its tab's ``sessionStorage`` and sends the header itself, its event stream included
(read with ``fetch``, as ``EventSource`` cannot send headers).

Tokens are compared as SHA-256 digests with :func:`hmac.compare_digest` against every known
token, so the time taken does not depend on how much of a guess matched. The tokens themselves
are not kept, and never appear in a ``repr``, a log line or an error.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from lwm2m.api.guard import refuse

__all__ = [
    "MIN_TOKEN_LENGTH",
    "ApiTokens",
    "BearerAuth",
    "TokenFileError",
    "TokenScope",
    "declare_bearer",
]

MIN_TOKEN_LENGTH = 16
"""Shortest token accepted: ``secrets.token_urlsafe(32)`` gives 43 characters."""

_REALM = b'Bearer realm="lwm2m"'
#: What needs a token: the API and its OpenAPI document (the UI's files do not).
_PROTECTED = ("/api", "/openapi")


class TokenScope(Enum):
    """What a token may do."""

    READ = "read"
    """The GET (and HEAD) routes only."""
    MANAGE = "manage"
    """Everything."""


_READ_METHODS = frozenset({"GET", "HEAD"})


class TokenFileError(ValueError):
    """A token file that cannot be used; the message names the file and the line, never a
    token."""


class ApiTokens:
    """The accepted bearer tokens, kept as SHA-256 digests, each with its :class:`TokenScope`
    (a plain string: :attr:`TokenScope.MANAGE`).

    :raises ValueError: for no tokens, or a token shorter than :data:`MIN_TOKEN_LENGTH` or with
        characters outside visible ASCII (RFC 6750 §2.1 ``b64token`` is narrower still).
    """

    __slots__ = ("_digests",)

    def __init__(self, tokens: Iterable[str | tuple[str, TokenScope]]) -> None:
        digests = []
        for number, item in enumerate(tokens, 1):
            token, scope = (item, TokenScope.MANAGE) if isinstance(item, str) else item
            _check(token, f"token {number}")
            digests.append((hashlib.sha256(token.encode("ascii")).digest(), TokenScope(scope)))
        if not digests:
            raise ValueError("no API token given")
        self._digests = tuple(digests)

    @classmethod
    def from_file(cls, path: str | Path) -> ApiTokens:
        """One token per line, optionally followed by its scope (``read`` or ``manage``, the
        default); blank lines and lines starting with ``#`` are skipped.

        :raises TokenFileError: the file cannot be read, holds no token, or a line is not a
            usable token (the message gives its line number).
        """
        try:
            text = Path(path).read_text(encoding="ascii")
        except UnicodeDecodeError:
            raise TokenFileError(f"{path}: tokens must be ASCII text") from None
        except OSError as exc:
            raise TokenFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
        tokens: list[tuple[str, TokenScope]] = []
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            scope = TokenScope.MANAGE
            if len(words) == 2 and words[1] in _SCOPE_NAMES:
                scope = _SCOPE_NAMES[words[1]]
            elif len(words) > 1:
                raise TokenFileError(
                    f"{path}: line {number}: a token, then optionally read or manage"
                )
            try:
                _check(words[0], f"line {number}")
            except ValueError as exc:
                raise TokenFileError(f"{path}: {exc}") from None
            tokens.append((words[0], scope))
        if not tokens:
            raise TokenFileError(f"{path}: no token in the file")
        return cls(tokens)

    def __len__(self) -> int:
        return len(self._digests)

    def accepts(self, token: bytes) -> TokenScope | None:
        """The scope of ``token``, or None when it is not one of the tokens."""
        digest = hashlib.sha256(token).digest()
        found = None
        for known, scope in self._digests:  # every one compared: the time does not tell which
            if hmac.compare_digest(digest, known):
                found = scope
        return found

    def __repr__(self) -> str:
        read = sum(1 for _, scope in self._digests if scope is TokenScope.READ)
        return f"<ApiTokens: {len(self._digests)}, {read} read-only>"


_SCOPE_NAMES = {scope.value: scope for scope in TokenScope}


def _check(token: str, where: str) -> None:
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{where}: a token needs at least {MIN_TOKEN_LENGTH} characters")
    if not all(" " < c < "\x7f" for c in token):
        raise ValueError(f"{where}: a token is visible ASCII characters only")


class BearerAuth:
    """Pure ASGI middleware: the check of the module docstring, before anything else runs."""

    def __init__(self, app: ASGIApp, tokens: ApiTokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_PROTECTED):
            await self.app(scope, receive, send)
            return
        credentials = None
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                credentials = value
                break
        if credentials is None:
            await _challenge(send, _REALM, "this API needs Authorization: Bearer <token>")
            return
        scheme, _, token = credentials.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            await _challenge(
                send,
                _REALM + b', error="invalid_request"',
                "the Authorization header must be: Bearer <token>",
            )
            return
        granted = self.tokens.accepts(token.strip())
        if granted is None:
            await _challenge(send, _REALM + b', error="invalid_token"', "the token is not valid")
            return
        if granted is TokenScope.READ and scope["method"] not in _READ_METHODS:
            await _challenge(
                send,
                _REALM + b', error="insufficient_scope", scope="manage"',
                f"a read-only token cannot {scope['method']}: this needs a manage token",
                status=403,
            )
            return
        await self.app(scope, receive, send)


async def _challenge(send: Send, challenge: bytes, message: str, status: int = 401) -> None:
    await refuse(
        send,
        status,
        message,
        ((b"www-authenticate", challenge), (b"cache-control", b"no-store")),
    )


def declare_bearer(app: FastAPI) -> None:
    """Say in ``app``'s OpenAPI document that every operation needs a bearer token (an HTTP
    ``bearer`` security scheme, required globally), so that generated clients send it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
