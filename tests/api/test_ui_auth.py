"""The web UI against an API that requires a bearer token (``create_app(..., tokens=...)``):
headless Chromium against a real uvicorn, a real LwM2M server and real clients.

The page takes the token from the URL's fragment (then removes it), else from the tab's
``sessionStorage``, else from its sign-in form, shown when the API answers 401; it sends the
token with every call, its event stream included (a worker reading ``/api/events`` with
``fetch``, which is also tested here against a stand-in stream with awkward framing).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from lwm2m.api import ApiTokens, create_app
from lwm2m.api.ui import STATIC, mount_ui

from .chromium import Browser, Page, find_chromium, render, serve
from .conftest import ENDPOINT, Stack

TOKEN = "ui+test/token=5Qm2xT0vL8"
"""With the characters URL decoding could change."""
WRONG = "not-the-token-0000000000"
KEY = "lwm2m-api-token"
"""The page's sessionStorage key."""

MANUFACTURER = "ACME"
"""/3/0/0 of the test clients (``Stack.config``)."""

NEEDED = "This server requires an API token. Enter it to sign in."
REJECTED = "The API token was not accepted. Enter a valid token."


@pytest.fixture
def chromium() -> str:
    """The Chromium program; skips the test (fails it under ``CI=true``) without one."""
    return find_chromium()


@pytest.fixture
async def web(stack: Stack, chromium: str) -> AsyncIterator[str]:
    """The app over :func:`stack`'s server, requiring :data:`TOKEN`, on a real uvicorn."""
    async with serve(create_app(stack.server, tokens=ApiTokens([TOKEN]))) as url:
        yield url


def js(value: object) -> str:
    """A script literal of ``value``."""
    return json.dumps(value)


def shown(ident: str) -> str:
    """The script condition: the element ``ident`` is not hidden."""
    return f"!document.getElementById({js(ident)}).hidden"


def text_of(ident: str) -> str:
    """The script expression: the text of the element ``ident``."""
    return f"document.getElementById({js(ident)}).textContent"


async def submit_token(page: Page, token: str) -> None:
    await page.evaluate(
        f"document.getElementById('token').value = {js(token)};"
        "document.getElementById('sign-in-form').requestSubmit()"
    )


# -- the first render (--dump-dom) -------------------------------------------------------------


async def test_a_token_in_the_fragment_opens_the_api(
    stack: Stack, web: str, chromium: str, tmp_path: Path
) -> None:
    await stack.start_client()
    query = urlencode({"client": ENDPOINT, "read": "/3/0/0"})
    dom = await render(chromium, f"{web}/?{query}#token={TOKEN}", tmp_path)
    assert dom.text["client-count"] == "1"
    assert ENDPOINT in dom.text["client-rows"]
    assert dom.text["selected-endpoint"] == ENDPOINT
    assert dom.text["status"] == "Read /3/0/0: HTTP 200, CoAP 2.05"
    assert dom.text["result"] == f'"{MANUFACTURER}"'
    assert {"sign-in", "panel", "data", "signed-in", "openapi"} & dom.hidden == {
        "sign-in",
        "openapi",  # a link cannot carry the token
    }
    assert TOKEN not in dom.html


async def test_without_a_token_the_page_shows_the_sign_in_form_and_no_data(
    stack: Stack, web: str, chromium: str, tmp_path: Path
) -> None:
    await stack.start_client()
    query = urlencode({"client": ENDPOINT, "read": "/3/0/0"})
    dom = await render(chromium, f"{web}/?{query}", tmp_path)
    assert "sign-in" not in dom.hidden
    assert dom.text["sign-in-message"] == NEEDED
    assert {"data", "signed-in"} <= dom.hidden
    assert dom.text["client-count"] == "0"
    assert ENDPOINT not in dom.html  # nothing of the client, the deep link not run
    assert dom.text["result"] == ""
    assert dom.text["status"] == ""


async def test_a_wrong_token_shows_the_form_with_an_error(
    stack: Stack, web: str, chromium: str, tmp_path: Path
) -> None:
    await stack.start_client()
    dom = await render(chromium, f"{web}/#token={WRONG}", tmp_path)
    assert "sign-in" not in dom.hidden
    assert dom.text["sign-in-message"] == REJECTED
    assert {"data", "signed-in"} <= dom.hidden  # the token is forgotten
    assert ENDPOINT not in dom.html
    assert WRONG not in dom.html


# -- after the load (DevTools protocol) --------------------------------------------------------


async def test_the_token_leaves_the_url_and_events_arrive_with_it(
    stack: Stack, web: str, chromium: str, tmp_path: Path
) -> None:
    async with Browser.launch(chromium, tmp_path) as browser:
        page = await browser.open(f"{web}/?client={ENDPOINT}#token={TOKEN}")
        # the stream is open: the server has subscribed the page's worker
        await page.wait_for(f"{text_of('connection')} === 'live'")
        assert await page.evaluate("location.href") == f"{web}/?client={ENDPOINT}"
        assert await page.evaluate(f"sessionStorage.getItem({js(KEY)})") == TOKEN
        assert await page.evaluate(text_of("client-count")) == "0"

        await stack.start_client()  # registers after the page has loaded: known by the event
        await page.wait_for(
            "Array.from(document.querySelectorAll('#log li')).some((line) =>"
            f" line.querySelector('.kind-registered') && line.textContent.includes({js(ENDPOINT)}))"
        )
        await page.wait_for(f"{text_of('client-count')} === '1'")
        dom = await page.dom()
    assert ENDPOINT in dom.text["client-rows"]
    assert dom.text["selected-state"].startswith("registered ")  # the selected client's panel
    assert "/3/0" in dom.text["objects"]
    assert "sign-in" in dom.hidden
    assert "signed-in" not in dom.hidden


async def test_signing_in_with_the_form_and_out(
    stack: Stack, web: str, chromium: str, tmp_path: Path
) -> None:
    await stack.start_client()
    async with Browser.launch(chromium, tmp_path) as browser:
        page = await browser.open(web + "/")
        await page.wait_for(  # the page's calls and its event stream were refused
            f"{shown('sign-in')} && {text_of('sign-in-message')} === {js(NEEDED)}"
            f" && {text_of('connection')} === 'not signed in'"
        )

        await submit_token(page, WRONG)
        await page.wait_for(
            f"{shown('sign-in')} && {text_of('sign-in-message')} === {js(REJECTED)}"
        )
        assert await page.evaluate(f"sessionStorage.getItem({js(KEY)})") is None

        await submit_token(page, TOKEN)  # the data, and the event stream restarted
        await page.wait_for(
            f"!{shown('sign-in')} && {text_of('client-count')} === '1'"
            f" && {text_of('connection')} === 'live'"
        )
        assert ENDPOINT in await page.evaluate(text_of("client-rows"))
        assert await page.evaluate(f"sessionStorage.getItem({js(KEY)})") == TOKEN

        await page.goto(web + "/")  # the tab keeps the token
        await page.wait_for(
            f"{text_of('client-count')} === '1' && {text_of('connection')} === 'live'"
        )
        assert await page.evaluate(shown("signed-in")) is True

        await page.evaluate("document.getElementById('sign-out').click()")
        await page.wait_for(f"{shown('sign-in')} && {text_of('sign-in-message')} === {js(NEEDED)}")
        assert await page.evaluate(f"sessionStorage.getItem({js(KEY)})") is None
        assert await page.evaluate(text_of("client-count")) == "0"
        assert ENDPOINT not in await page.evaluate("document.body.innerHTML")


# -- the worker's reading of the stream --------------------------------------------------------

CHUNKS = [
    b"\xef\xbb\xbf: a comment after a byte order mark\r\n\r\n",
    b'event: deregistered\r\ndata: {"endpoint":\r\ndata: "one"}\r\n\r\n',  # data on two lines
    b"event: awake\r",  # a CRLF split over two chunks
    b'\ndata:{"endpoint":"two"}\r',  # no space after the colon
    b"\n\r\n",
    b'event: sleeping\ndata: {"endpoint":"three"}\n\n',  # LF
    b'event: expired\rdata: {"endpoint":"four"}\r\r',  # CR
    b"event: deregistered\nid: 7\nretry: 10\n\n",  # no data: no event
    b"data\ndata\n\n",  # no kind, two empty data lines
    b'event: deregistered\ndata: {"endpoint":"f\xc3',  # UTF-8 split over two chunks
    b'\xbcnf"}\n',
    b"\n",
    b'event: deregistered\ndata: {"endpoint":"unfinished"}\n',  # the stream ends mid-event
]
PARSED = [
    ["deregistered", '{"endpoint":\n"one"}'],
    ["awake", '{"endpoint":"two"}'],
    ["sleeping", '{"endpoint":"three"}'],
    ["expired", '{"endpoint":"four"}'],
    ["message", "\n"],
    ["deregistered", '{"endpoint":"fünf"}'],
]


async def test_the_worker_parses_server_sent_events(chromium: str, tmp_path: Path) -> None:
    """events.js's parser, run in a page on a stream of exactly these chunks."""
    source = (STATIC / "events.js").read_text()
    script = (
        "(async () => {"
        f"  const read = (() => {{ {source}\n; return read; }})();"
        f"  const chunks = {js([list(chunk) for chunk in CHUNKS])};"
        "  const body = new ReadableStream({ start(stream) {"
        "    for (const chunk of chunks) stream.enqueue(new Uint8Array(chunk));"
        "    stream.close();"
        "  } });"
        "  const events = [];"
        "  await read(body, (kind, data) => events.push([kind, data]));"
        "  return events;"
        "})()"
    )
    async with Browser.launch(chromium, tmp_path) as browser:
        page = await browser.open(None)
        assert await page.evaluate(script) == PARSED


FIRST_STREAM = [
    b": subscribed\n\n",
    b'event: deregistered\r\ndata: {"endpoint":\r\ndata: "one"}\r\n\r\n',
    b'event: open\ndata: {"endpoint":"spoof"}\n\n',  # not an event kind of the server
    b'data: {"endpoint":"message"}\n\n',  # no kind
    b": keep-alive\n\n",
    b'event: awake\ndata: {"endpoint":"two"}\n\n',
]
SECOND_STREAM = [b": subscribed\n\n", b'event: deregistered\ndata: {"endpoint":"three"}\n\n']


def stand_in() -> tuple[FastAPI, list[str | None]]:
    """The UI over a stand-in API: no clients, and an event stream that sends
    :data:`FIRST_STREAM` and ends, then :data:`SECOND_STREAM` and stays open; the
    ``Authorization`` header of each stream request."""
    app = FastAPI()
    authorizations: list[str | None] = []

    @app.get("/api/clients")
    async def clients() -> JSONResponse:
        return JSONResponse([])

    @app.get("/api/events")
    async def events(request: Request) -> StreamingResponse:
        authorizations.append(request.headers.get("authorization"))
        first = len(authorizations) == 1

        async def frames() -> AsyncIterator[bytes]:
            for chunk in FIRST_STREAM if first else SECOND_STREAM:
                yield chunk
            if not first:
                await asyncio.Event().wait()  # open until the browser goes

        return StreamingResponse(frames(), media_type="text/event-stream")

    mount_ui(app)
    return app, authorizations


async def test_the_worker_posts_the_server_events_and_reconnects_with_the_token(
    chromium: str, tmp_path: Path
) -> None:
    app, authorizations = stand_in()
    async with serve(app) as url, Browser.launch(chromium, tmp_path) as browser:
        page = await browser.open(f"{url}/#token={TOKEN}")
        # after the first stream ends, the worker reconnects (after a second)
        await page.wait_for(f"{text_of('log')}.includes('three')", within=10.0)
        lines = await page.evaluate(
            "Array.from(document.querySelectorAll('#log li'),"
            " (line) => [line.querySelector('.kind').textContent,"
            " line.querySelector('.endpoint').textContent])"
        )
        assert await page.evaluate(text_of("connection")) == "live"
    assert lines == [  # the newest first; only the server's event kinds
        ["deregistered", "three"],
        ["awake", "two"],
        ["deregistered", "one"],
    ]
    assert authorizations == [f"Bearer {TOKEN}"] * 2
