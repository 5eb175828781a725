"""The web UI (:mod:`lwm2m.api.ui`): its files and security headers in-process, then the page
rendered by headless Chromium against a real uvicorn, a real LwM2M server and real clients.

Chromium runs with ``--virtual-time-budget``: it renders until the page has no request pending
and its (virtual) timers have run, then ``--dump-dom`` prints the DOM, which the tests parse
(:mod:`.chromium`). The UI against an API that requires tokens: ``test_ui_auth.py``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from lwm2m.api import create_app
from lwm2m.api.ui import CONTENT_SECURITY_POLICY, STATIC

from .chromium import find_chromium, render, serve
from .conftest import ENDPOINT, Stack

HOSTILE = "<img src=x onerror=alert(1)>"
"""An endpoint name that is markup."""

MANUFACTURER = "ACME"
"""/3/0/0 of the test clients (``Stack.config``)."""


# -- in-process: files and headers -------------------------------------------------------------


async def test_the_page_and_its_files_are_served_with_a_strict_policy(stack: Stack) -> None:
    files = {
        "/": "text/html",
        "/ui/app.js": "text/javascript",
        "/ui/events.js": "text/javascript",
        "/ui/style.css": "text/css",
    }
    async with stack.http() as http:
        for url, media_type in files.items():
            answer = await http.get(url)
            assert answer.status_code == 200, url
            assert answer.headers["content-type"].startswith(media_type), url
            assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "no-referrer"
        page = (await http.get("/")).text
        missing = await http.get("/ui/nothing.js")
        api = await http.get("/api/clients")
        schema = (await http.get("/openapi.json")).json()
    assert page == (STATIC / "index.html").read_text()
    assert missing.status_code == 404
    # the API (and its /docs page, which loads Swagger UI from a CDN) keeps its own headers
    assert api.status_code == 200
    assert "content-security-policy" not in api.headers
    assert "/" not in schema["paths"]
    assert all(path.startswith("/api/") for path in schema["paths"])


def test_the_policy_allows_nothing_inline_and_nothing_from_elsewhere() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert "http" not in CONTENT_SECURITY_POLICY


class _Markup(HTMLParser):
    """The tags, attributes and inline script / style text of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.inline += data.strip()


def test_the_files_have_no_inline_code_and_insert_no_markup() -> None:
    markup = _Markup()
    markup.feed((STATIC / "index.html").read_text())
    assert markup.inline == ""  # no inline <script> or <style> (the policy would block them)
    for tag, attrs in markup.tags:
        assert "style" not in attrs, tag
        assert not any(name.startswith("on") for name in attrs), tag
        if tag == "script":
            assert attrs["src"] == "ui/app.js"
        if tag == "link":
            assert attrs["href"] == "ui/style.css"
    assert {tag for tag, _ in markup.tags} >= {"table", "thead", "tbody", "label", "form"}
    labelled = {attrs["for"] for tag, attrs in markup.tags if tag == "label" and "for" in attrs}
    fields = {attrs["id"] for tag, attrs in markup.tags if tag in ("input", "select", "textarea")}
    assert fields - {"write-partial"} <= labelled  # the checkbox sits inside its label
    for name in ("app.js", "events.js"):
        script = (STATIC / name).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script, (name, sink)
    for name in ("app.js", "events.js", "style.css", "index.html"):
        text = (STATIC / name).read_text()
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(", text), name


async def test_the_ui_can_be_left_out(stack: Stack) -> None:
    async with stack.http(ui=False) as http:
        assert (await http.get("/")).status_code == 404
        assert (await http.get("/ui/app.js")).status_code == 404
        assert (await http.get("/api/clients")).status_code == 200


# -- headless Chromium end to end --------------------------------------------------------------


@pytest.fixture
def chromium() -> str:
    """The Chromium program; skips the test (fails it under ``CI=true``) without one."""
    return find_chromium()


@pytest.fixture
async def web(stack: Stack, chromium: str) -> AsyncIterator[str]:
    """The app over :func:`stack`'s server on a real uvicorn; its base URL."""
    async with serve(create_app(stack.server)) as url:
        yield url


async def test_chromium_lists_the_registered_clients(
    stack: Stack, web: str, chromium: str, tmp_path: Path
) -> None:
    await stack.start_client()
    dom = await render(chromium, web + "/", tmp_path)
    assert dom.text["client-count"] == "1"
    rows = dom.text["client-rows"]
    assert ENDPOINT in rows
    registration = await stack.server.registration(ENDPOINT)
    assert registration is not None
    host, port = registration.address
    # endpoint, address, lifetime, binding, version, queue mode: the cells of its row in order
    assert f"{ENDPOINT}{host}:{port}300U{registration.version}no" in rows
    assert dom.text["selected-endpoint"] == ""  # nothing selected


async def test_chromium_deep_link_reads_a_resource(
    stack: Stack, web: str, chromium: str, tmp_path: Path
) -> None:
    await stack.start_client()
    query = urlencode({"client": ENDPOINT, "read": "/3/0/0"})
    dom = await render(chromium, f"{web}/?{query}", tmp_path)
    assert dom.text["selected-endpoint"] == ENDPOINT
    assert "/3/0" in dom.text["objects"]  # the client's object links
    assert dom.text["status"] == "Read /3/0/0: HTTP 200, CoAP 2.05"
    assert dom.text["result"] == f'"{MANUFACTURER}"'


async def test_chromium_shows_the_api_error(
    stack: Stack, web: str, chromium: str, tmp_path: Path
) -> None:
    await stack.start_client()
    query = urlencode({"client": ENDPOINT, "read": "/3/0/99"})
    dom = await render(chromium, f"{web}/?{query}", tmp_path)
    status = dom.text["status"]
    assert status.startswith("Read /3/0/99: HTTP 404: "), status
    assert "(CoAP 4.04)" in status
    assert dom.text["result"] == ""
    query = urlencode({"client": "nobody", "read": "/3/0/0"})
    dom = await render(chromium, f"{web}/?{query}", tmp_path)
    assert dom.text["status"] == "Read /3/0/0: HTTP 404: client 'nobody' is not registered"


async def test_chromium_shows_a_hostile_endpoint_name_as_text(
    stack: Stack, web: str, chromium: str, tmp_path: Path
) -> None:
    await stack.start_client()
    await stack.start_client(stack.config(HOSTILE))
    for url in (web + "/", f"{web}/?client={quote(HOSTILE, safe='')}&read=/3/0/0"):
        dom = await render(chromium, url, tmp_path)
        assert "img" not in dom.tags
        assert "<img" not in dom.html
        assert "&lt;img src=x onerror=alert(1)&gt;" in dom.html  # escaped by the serializer
        assert dom.text["client-count"] == "2"
        assert HOSTILE in dom.text["client-rows"]  # the name, as text
        assert ENDPOINT in dom.text["client-rows"]
    # the deep link selected the hostile client and read through its percent-encoded URL
    assert dom.text["selected-endpoint"] == HOSTILE
    assert dom.text["result"] == f'"{MANUFACTURER}"'
