"""Bearer tokens on the REST API (:mod:`lwm2m.api.auth`): which requests need one, the 401
answers of RFC 6750 §3, the token file, and that no token leaks."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import httpx
import pytest

from lwm2m.api import ApiTokens, TokenScope, create_app
from lwm2m.api.auth import MIN_TOKEN_LENGTH, TokenFileError

from .conftest import ENDPOINT, JSON, Stack, Thermometer

TOKEN = "T0ken-of-the-operator-0123456789abcdef"
OTHER = "another-valid-token-for-a-script-42"


def client(stack: Stack, token: str | None, **options: object) -> httpx.AsyncClient:
    tokens = options.pop("tokens", ApiTokens([TOKEN, OTHER]))
    app = create_app(stack.server, tokens=tokens, **options)  # type: ignore[arg-type]
    headers = dict(JSON)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    )


async def test_every_api_route_and_the_schema_need_the_token(stack: Stack) -> None:
    await stack.start_client(objects=[Thermometer()])
    async with client(stack, None) as anonymous:
        answers = [
            await anonymous.get("/api/clients"),
            await anonymous.get(f"/api/clients/{ENDPOINT}/3/0"),
            await anonymous.post(f"/api/clients/{ENDPOINT}/3303/0/5605/execute"),
            await anonymous.delete(f"/api/clients/{ENDPOINT}/3303/0"),
            await anonymous.get("/api/events"),
            await anonymous.get("/api/nothing-here"),
            await anonymous.get("/openapi.json"),
        ]
    for answer in answers:
        assert answer.status_code == 401, answer.request.url
        assert answer.headers["www-authenticate"] == 'Bearer realm="lwm2m"'
        assert answer.headers["cache-control"] == "no-store"
        assert answer.json() == {"error": "this API needs Authorization: Bearer <token>"}
    # nothing reached the client: the Execute was refused before the route ran
    thermometer = stack.clients[0].objects[3303]
    assert isinstance(thermometer, Thermometer)
    assert thermometer.executed == []
    assert list(thermometer.instance_ids()) == [0]  # and the Delete did not run


async def test_with_a_known_token_the_api_answers(stack: Stack) -> None:
    thermometer = Thermometer()
    await stack.start_client(objects=[thermometer])
    for token in (TOKEN, OTHER):
        async with client(stack, token) as http:
            listed = await http.get("/api/clients")
            executed = await http.post(f"/api/clients/{ENDPOINT}/3303/0/5605/execute")
            schema = await http.get("/openapi.json")
        assert listed.status_code == 200
        assert [c["endpoint"] for c in listed.json()] == [ENDPOINT]
        assert executed.status_code == 200, executed.text
        assert schema.status_code == 200
    assert len(thermometer.executed) == 2


@pytest.mark.parametrize(
    ("header", "error", "message"),
    [
        (f"Bearer {TOKEN}x", "invalid_token", "the token is not valid"),
        (f"Bearer {TOKEN[:-1]}", "invalid_token", "the token is not valid"),
        ("Bearer " + "A" * 40, "invalid_token", "the token is not valid"),
        (f"bearer {TOKEN}", None, None),  # the scheme is case-insensitive (RFC 7235 §2.1)
        (f"Basic {TOKEN}", "invalid_request", "the Authorization header must be: Bearer <token>"),
        ("Bearer", "invalid_request", "the Authorization header must be: Bearer <token>"),
        ("Bearer   ", "invalid_request", "the Authorization header must be: Bearer <token>"),
        (TOKEN, "invalid_request", "the Authorization header must be: Bearer <token>"),
    ],
)
async def test_a_wrong_or_malformed_header_is_refused(
    stack: Stack, header: str, error: str | None, message: str | None
) -> None:
    app = create_app(stack.server, tokens=ApiTokens([TOKEN]))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": header},
    ) as http:
        answer = await http.get("/api/clients")
    if error is None:
        assert answer.status_code == 200
        return
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == f'Bearer realm="lwm2m", error="{error}"'
    assert answer.json() == {"error": message}
    assert TOKEN not in answer.text


async def test_the_ui_files_stay_public(stack: Stack) -> None:
    async with client(stack, None) as anonymous:
        page = await anonymous.get("/")
        script = await anonymous.get("/ui/app.js")
    assert page.status_code == 200
    assert script.status_code == 200


async def test_the_token_is_checked_before_the_body_is_read(stack: Stack) -> None:
    """An anonymous caller cannot make the server read a body (or learn the guard's limits)."""
    async with client(stack, None, max_body=10) as anonymous:
        large = await anonymous.put(
            f"/api/clients/{ENDPOINT}/3/0/14", content=b"x" * 1000, headers=JSON
        )
        form = await anonymous.post(
            f"/api/clients/{ENDPOINT}/3/0/4/execute",
            content=b"a=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert large.status_code == 401
    assert form.status_code == 401


async def test_without_tokens_nothing_is_asked(stack: Stack) -> None:
    async with stack.http() as http:
        answer = await http.get("/api/clients")
    assert answer.status_code == 200


def test_tokens_are_kept_as_digests_and_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = ApiTokens([TOKEN, OTHER])
    assert repr(tokens) == "<ApiTokens: 2, 0 read-only>"
    assert len(tokens) == 2
    held = repr(tokens._digests)
    assert TOKEN not in held
    assert (hashlib.sha256(TOKEN.encode()).digest(), TokenScope.MANAGE) in tokens._digests
    assert tokens.accepts(TOKEN.encode())
    assert tokens.accepts(OTHER.encode())
    assert not tokens.accepts(TOKEN.encode() + b" ")
    assert not tokens.accepts(b"")
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ([], "no API token given"),
        (["short"], f"token 1: a token needs at least {MIN_TOKEN_LENGTH} characters"),
        ([TOKEN, "with a space inside it"], "token 2: a token is visible ASCII characters only"),
        ([TOKEN + "é"], "token 1: a token is visible ASCII characters only"),
    ],
)
def test_unusable_tokens_are_refused(tokens: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ApiTokens(tokens)


def test_a_token_file_holds_one_token_per_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# operators\n\n  {TOKEN}  \n# scripts\n{OTHER}\n")
    tokens = ApiTokens.from_file(path)
    assert len(tokens) == 2
    assert tokens.accepts(TOKEN.encode())
    assert tokens.accepts(OTHER.encode())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read: No such file or directory"),
        (b"", "no token in the file"),
        (b"# only a comment\n\n", "no token in the file"),
        (f"{TOKEN}\nshort-one\n".encode(), "line 2: a token needs at least 16 characters"),
        (f"{TOKEN}\n".encode() + "é".encode() * 20, "tokens must be ASCII text"),
        (b"two tokens-on-one-line-is-wrong\n", "line 1: a token, then optionally read or manage"),
        (f"{TOKEN} read extra\n".encode(), "line 1: a token, then optionally read or manage"),
        (b"short read\n", "line 1: a token needs at least 16 characters"),
    ],
)
def test_an_unusable_token_file_is_named_with_the_problem(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "tokens"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TokenFileError) as caught:
        ApiTokens.from_file(path)
    assert str(caught.value) == f"{path}: {message}"
    assert TOKEN not in str(caught.value)


async def test_the_openapi_document_declares_the_bearer_scheme(stack: Stack) -> None:
    async with client(stack, TOKEN) as http:
        schema = (await http.get("/openapi.json")).json()
        again = (await http.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    assert schema["security"] == [{"bearer": []}]
    assert again == schema
    assert "/api/clients" in schema["paths"]
    async with stack.http() as open_api:  # without tokens, no scheme is declared
        plain = (await open_api.get("/openapi.json")).json()
    assert "security" not in plain
    assert "securitySchemes" not in plain.get("components", {})


async def test_a_read_only_token_reads_and_changes_nothing(stack: Stack) -> None:
    thermometer = Thermometer()
    await stack.start_client(objects=[thermometer])
    tokens = ApiTokens([TOKEN, (OTHER, TokenScope.READ)])
    assert repr(tokens) == "<ApiTokens: 2, 1 read-only>"
    async with client(stack, OTHER, tokens=tokens) as reader:
        listed = await reader.get("/api/clients")
        read = await reader.get(f"/api/clients/{ENDPOINT}/3303/0/5700")
        schema = await reader.get("/openapi.json")
        refused = [
            await reader.post(f"/api/clients/{ENDPOINT}/3303/0/5605/execute"),
            await reader.put(f"/api/clients/{ENDPOINT}/3303/0/5750", json={"content": "x"}),
            await reader.delete(f"/api/clients/{ENDPOINT}/3303/0"),
            await reader.post(f"/api/clients/{ENDPOINT}/3303/0/5700/observe"),
        ]
    assert listed.status_code == 200
    assert read.status_code == 200
    assert read.json()["content"] == 21.5
    assert schema.status_code == 200
    for answer in refused:
        assert answer.status_code == 403, answer.request.url
        assert answer.headers["www-authenticate"] == (
            'Bearer realm="lwm2m", error="insufficient_scope", scope="manage"'
        )
        method = answer.request.method
        assert answer.json() == {
            "error": f"a read-only token cannot {method}: this needs a manage token"
        }
    assert thermometer.executed == []
    assert list(thermometer.instance_ids()) == [0]
    async with client(stack, TOKEN, tokens=tokens) as manager:
        executed = await manager.post(f"/api/clients/{ENDPOINT}/3303/0/5605/execute")
    assert executed.status_code == 200
    assert len(thermometer.executed) == 1


def test_a_token_file_gives_scopes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{TOKEN} manage\n{OTHER}   read\n")
    tokens = ApiTokens.from_file(path)
    assert tokens.accepts(TOKEN.encode()) is TokenScope.MANAGE
    assert tokens.accepts(OTHER.encode()) is TokenScope.READ
    assert tokens.accepts(b"read") is None
