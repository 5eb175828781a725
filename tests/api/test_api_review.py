"""Findings of a security / robustness review of the REST API and its web UI.

Four tests pin the defects the review found, all fixed: cross-site form posts that ran Execute
and Observe, no request body limit, and /docs loading a CDN's script (lwm2m.api.guard, the app's
options); the others pin down what the review found sound, so that it stays so.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from lwm2m.api import create_app
from lwm2m.api.ui import STATIC
from lwm2m.store.memory import MemorySecurityStore

from .conftest import ENDPOINT, JSON, Stack, Thermometer

CLIENT = "/api/clients/" + ENDPOINT.replace(":", "%3A")
KEY_HEX = "5ec2e7a1b0c4d9f8e6a7b3c2d1e0f9a8"
EVIL = "http://evil.example"

# Requests a page of another origin can send without a CORS preflight (HTML forms, or fetch
# with mode "no-cors"): POST with one of these content types, or without a body.
SIMPLE_CONTENT_TYPES = ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]


def http(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=JSON
    )


# -- confirmed defects ---------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", SIMPLE_CONTENT_TYPES)
async def test_a_cross_origin_form_post_does_not_execute(stack: Stack, content_type: str) -> None:
    thermometer = Thermometer()
    await stack.start_client(objects=[thermometer])
    async with stack.http() as api:
        answer = await api.post(
            f"{CLIENT}/3303/0/5605/execute",
            content=b"",
            headers={"Content-Type": content_type, "Origin": EVIL},
        )
    assert thermometer.executed == []
    assert answer.status_code in (400, 403, 415), answer.text


async def test_a_cross_origin_form_post_does_not_observe(stack: Stack) -> None:
    await stack.start_client(objects=[Thermometer()])
    async with stack.http() as api:
        answer = await api.post(
            f"{CLIENT}/3303/0/5700/observe",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": EVIL},
        )
        observations = (await api.get(f"{CLIENT}/observations")).json()
    assert observations == []
    assert answer.status_code in (400, 403, 415), answer.text


async def test_an_oversized_body_is_refused_before_it_is_read(stack: Stack) -> None:
    app = create_app(stack.server, security_store=MemorySecurityStore())
    chunk = b"x" * (1 << 20)
    chunks = [b'{"mode": "x509", "name": "', *([chunk] * 16), b'"}']
    total = sum(len(c) for c in chunks)
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not chunks:
            return {"type": "http.disconnect"}
        body = chunks.pop(0)
        read += len(body)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": "/api/security/big",
        "raw_path": b"/api/security/big",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    assert start["status"] == 413
    assert read < total


async def test_pages_served_by_the_app_load_nothing_from_elsewhere(stack: Stack) -> None:
    async with stack.http() as api:
        for url in ("/", "/docs", "/redoc"):
            answer = await api.get(url)
            if answer.status_code == 404:
                continue
            assert not re.search(r"(src|href)=[\"']?(https?:)?//", answer.text), url
            assert "Content-Security-Policy" in answer.headers, url


# -- found sound ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "psk", "identity": "i", "key_hex": KEY_HEX, "extra": KEY_HEX},  # extra field
        {"mode": "psk", "identity": KEY_HEX, "key_hex": [KEY_HEX]},  # wrong type
        {"mode": "psk", "identity": "i", "key_hex": {"k": KEY_HEX}},
        {"mode": "rpk", "key_hex": KEY_HEX},  # field of another mode
        {"mode": "bogus", "key_hex": KEY_HEX},
        {"mode": "psk", "identity": "i", "key_hex": KEY_HEX + "zz"},  # not hex
        {"mode": "psk", "key_hex": KEY_HEX},  # no identity
    ],
)
async def test_a_key_is_never_repeated_in_an_error(stack: Stack, body: dict[str, Any]) -> None:
    async with http(create_app(stack.server, security_store=MemorySecurityStore())) as api:
        answer = await api.put("/api/security/dev", json=body)
        raw = await api.put(
            "/api/security/dev",
            content=repr(body).encode(),  # not JSON (single quotes)
            headers={"Content-Type": "application/json"},
        )
    for response in (answer, raw):
        assert response.status_code == 400, response.text
        assert KEY_HEX not in response.text
        assert KEY_HEX[:8] not in response.text


@pytest.mark.parametrize(
    ("suffix", "status", "message"),
    [
        ("/3/0/9/0/1", 400, "at most 4 ids"),
        ("/3/65535", 400, "not in 0..65534"),
        ("/" + "9" * 400, 400, "is not in 0..65534"),
        ("/3/-1", 400, "is not a decimal id"),
        ("/3/%2E%2E/0", 400, "is not a decimal id"),
        ("/..%2F..%2Fsecurity", 400, "is not a decimal id"),
        ("/3/0/%00", 400, "is not a decimal id"),
        ("/3/0/%E0%A5%AF", 400, "is not a decimal id"),  # a Devanagari digit
        ("/3//0", 400, "is not a decimal id"),
        ("/3/0/9?format=" + "x" * 300, 400, "unknown content format"),
        ("/3/0/9?format=99999999999999999999", 400, "not a valid ContentFormat"),
    ],
)
async def test_paths_and_formats_are_parsed_strictly(
    stack: Stack, suffix: str, status: int, message: str
) -> None:
    await stack.start_client(objects=[Thermometer()])
    async with stack.http() as api:
        answer = await api.get(CLIENT + suffix)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"content": NaN}',
        b'{"content": Infinity}',
        b'{"content": -Infinity}',
        b'{"content": 1e400}',
        b'{"content": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"content": ' + b'{"1":' * 50_000 + b"1" + b"}" * 50_000 + b"}",
        b'{"content": 99999999999999999999999999999}',
    ],
)
async def test_odd_json_is_a_400(stack: Stack, body: bytes) -> None:
    await stack.start_client(objects=[Thermometer()])
    async with stack.http() as api:
        for url in (f"{CLIENT}/3/0/13", f"{CLIENT}/3/0", f"{CLIENT}/3303/0/5750"):
            answer = await api.put(url, content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 400, (url, answer.text)
            assert answer.json()["error"]


@pytest.mark.parametrize("content_type", [*SIMPLE_CONTENT_TYPES, None])
async def test_json_bodies_are_not_taken_from_simple_requests(
    stack: Stack, content_type: str | None
) -> None:
    """Every change (Execute, Create, Write, the security routes) needs ``application/json``: a
    JSON text sent as a form or plain text, or with no type (what another origin can send
    without a preflight) is refused with 415 before the route runs (lwm2m.api.guard)."""
    thermometer = Thermometer()
    await stack.start_client(objects=[thermometer])
    headers = {"Origin": EVIL} | ({} if content_type is None else {"Content-Type": content_type})
    app = create_app(stack.server, security_store=MemorySecurityStore())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as api:
        for method, url, body in [
            ("POST", f"{CLIENT}/3303/0/5605/execute", b'{"arguments": "0"}'),
            ("POST", f"{CLIENT}/3303", b'{"content": {"7": {"5700": 1.0}}}'),
            ("POST", f"{CLIENT}/3303/0/5605/execute", b"arguments=0"),
            ("PUT", f"{CLIENT}/3303/0/5750", b'{"content": "x"}'),
            ("PUT", "/api/security/dev", b'{"mode": "nosec"}'),
        ]:
            answer = await api.request(method, url, content=body, headers=headers)
            assert answer.status_code == 415, (method, url, answer.text)
            assert "Content-Type: application/json" in answer.json()["error"]
        assert (await api.get("/api/security")).json() == []
        assert (await api.get(f"{CLIENT}/3303/7")).status_code == 404
        assert (await api.get(f"{CLIENT}/3303/0/5750")).status_code == 404  # never written
    assert thermometer.executed == []


async def test_no_cors_is_granted_to_other_origins(stack: Stack) -> None:
    async with stack.http() as api:
        preflight = await api.options(
            "/api/security/dev",
            headers={"Origin": EVIL, "Access-Control-Request-Method": "PUT"},
        )
        answer = await api.get("/api/clients", headers={"Origin": EVIL})
    assert preflight.status_code == 405
    for response in (preflight, answer):
        assert not any(h.lower().startswith("access-control-") for h in response.headers)


def test_the_ui_runs_only_reads_from_its_url() -> None:
    """Deep links (``?client=&read=&discover=&path=``) only Read or Discover, never a write."""
    script = (STATIC / "app.js").read_text()
    (deep_link,) = re.findall(r"function readDeepLink\(\) \{.*?\n  \}\n", script, re.S)
    assert 'for (const op of ["read", "discover"])' in deep_link
    assert "searchParams" not in script.replace("url.searchParams.set", "")
    # readDeepLink, replaceState in select(), and takeFragmentToken (#token=, removed at once)
    assert script.count("window.location") == 3


async def test_a_declared_oversized_body_is_refused_unread(stack: Stack) -> None:
    async with stack.http(max_body=100) as api:
        answer = await api.put("/api/security/dev", content=b"{" + b" " * 200 + b"}", headers=JSON)
    assert answer.status_code == 413
    assert answer.json() == {"error": "the request body is over 100 bytes"}


async def test_event_streams_are_bounded(stack: Stack) -> None:
    app = create_app(stack.server, max_event_streams=0)
    async with http(app) as api:
        answer = await api.get("/api/events")
    assert answer.status_code == 503
    assert answer.json() == {"error": "too many open event streams (at most 0)"}


async def test_only_allowed_host_names_are_served(stack: Stack) -> None:
    app = create_app(stack.server, allowed_hosts=["127.0.0.1"])  # names; the port is not checked
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as api:
        assert (await api.get("/api/clients")).status_code == 200
        # a page of evil.example re-bound to 127.0.0.1 sends its own name as Host
        rebound = await api.get("/api/clients", headers={"Host": "evil.example:8080"})
    assert rebound.status_code == 400
