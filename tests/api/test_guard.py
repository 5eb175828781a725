"""``lwm2m.api.guard.RequestGuard`` at the ASGI level: the body it read is handed on in one
message, and a disconnect (read while reading the body, or later) reaches the app."""

from __future__ import annotations

from typing import Any

from lwm2m.api.guard import RequestGuard

SCOPE = {"type": "http", "method": "POST", "path": "/api/x", "headers": [
    (b"content-type", b"application/json")]}  # fmt: skip


async def run(messages: list[dict[str, Any]], reads: int) -> list[dict[str, Any]]:
    """What an app that calls receive ``reads`` times sees behind the guard."""
    pending = list(messages)
    seen: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.extend([await receive() for _ in range(reads)])

    async def send(message: Any) -> None:
        raise AssertionError(f"the guard answered itself: {message}")

    await RequestGuard(app, max_body=10)(SCOPE, receive, send)
    return seen


async def test_the_body_is_handed_on_whole_then_the_connection_speaks() -> None:
    seen = await run(
        [
            {"type": "http.request", "body": b"{}", "more_body": True},
            {"type": "http.request", "body": b" ", "more_body": False},
            {"type": "http.disconnect"},
        ],
        reads=2,
    )
    assert seen == [
        {"type": "http.request", "body": b"{} ", "more_body": False},
        {"type": "http.disconnect"},
    ]


async def test_a_disconnect_while_the_body_is_read_reaches_the_app() -> None:
    seen = await run(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}],
        reads=2,
    )
    assert seen == [
        {"type": "http.request", "body": b"{", "more_body": False},
        {"type": "http.disconnect"},
    ]


async def test_other_scopes_pass_untouched() -> None:
    called: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope["type"])

    await RequestGuard(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert called == ["lifespan"]
