"""Headless Chromium for the web UI tests, against a real uvicorn.

Two ways to drive it:

- :func:`render` -- ``--virtual-time-budget`` and ``--dump-dom``: Chromium renders until the
  page has no request pending and its (virtual) timers have run, then prints the DOM;
- :class:`Browser` -- the DevTools protocol over a pipe (``--remote-debugging-pipe``), for
  what happens after the page has loaded: :meth:`Page.wait_for` waits (bounded, on DOM
  mutations, never by sleeping) until a script expression holds, :meth:`Page.evaluate` runs
  one, :meth:`Page.dom` reads the DOM.

A DOM is parsed into :class:`Dom`: its tags and the text inside each element with an id.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from lwm2m.testing import require_component

from .conftest import TIMEOUT

CHROMIUM = "/usr/bin/chromium"

RENDER_WITHIN = 60.0
"""Bound on one Chromium run (it takes about a second)."""

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run")


def find_chromium() -> str:
    """The Chromium program; skips the test (fails it under ``CI=true``) without one."""
    require_component(os.access(CHROMIUM, os.X_OK), "Chromium (apt-get install chromium)")
    return CHROMIUM


class Dom(HTMLParser):
    """A dumped DOM: its text, the tags present and the text inside each element with an id
    (:attr:`text`), and the ids of the elements with a ``hidden`` attribute (:attr:`hidden`)."""

    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                      "source", "track", "wbr"})  # fmt: skip

    def __init__(self, html: str) -> None:
        super().__init__()
        self.html = html
        self.tags: set[str] = set()
        self.text: dict[str, str] = {}
        self.hidden: set[str] = set()
        self._open: list[tuple[str, str | None]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        attributes = dict(attrs)
        ident = attributes.get("id")
        if ident is not None and "hidden" in attributes:
            self.hidden.add(ident)
        if tag in self.VOID:
            return
        if ident is not None:
            self.text.setdefault(ident, "")
        self._open.append((tag, ident))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident is not None:
                self.text[ident] += data


class ReadyServer(uvicorn.Server):
    """uvicorn's server with an event set once its sockets listen."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        await super().startup(sockets)  # type: ignore[arg-type]
        self.ready.set()


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """``app`` on a real uvicorn on loopback; its base URL."""
    server = ReadyServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.ensure_future(server.serve())
    try:
        async with asyncio.timeout(TIMEOUT):
            await server.ready.wait()
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(TIMEOUT):
            await serving


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:  # pragma: no cover - only when Chromium hangs
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


async def render(chromium: str, url: str, profile: Path) -> Dom:
    """The DOM of ``url`` once headless Chromium has run the page (bounded by RENDER_WITHIN)."""
    process = await asyncio.create_subprocess_exec(
        chromium,
        *FLAGS,
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group: all of it can be stopped
    )
    try:
        async with asyncio.timeout(RENDER_WITHIN):
            out, err = await process.communicate()
    finally:
        await _stop(process)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    html = out.decode()
    assert "<html" in html, html[:500]
    return Dom(html)


# -- the DevTools protocol ---------------------------------------------------------------------


class DevToolsError(Exception):
    """An error answer of the DevTools protocol, or an exception thrown by a page script."""


class Browser:
    """Headless Chromium driven over ``--remote-debugging-pipe``: the protocol's JSON messages,
    NUL-terminated, on file descriptors 3 (to Chromium) and 4 (from it)."""

    def __init__(self, process: asyncio.subprocess.Process, writer: asyncio.WriteTransport,
                 reader: asyncio.StreamReader) -> None:  # fmt: skip
        self.process = process
        self._writer = writer
        self._reader = reader
        self._ids = 0
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: list[tuple[str | None, str, dict[str, Any]]] = []
        self._event_arrived = asyncio.Condition()
        self._reading = asyncio.ensure_future(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(cls, chromium: str, profile: Path) -> AsyncIterator[Browser]:
        loop = asyncio.get_running_loop()
        to_chromium, commands = os.pipe()
        answers, from_chromium = os.pipe()
        # above the descriptors the child's redirections write to (3 and 4)
        child_in = fcntl.fcntl(to_chromium, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_chromium, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chromium)
        os.close(from_chromium)
        script = f'exec "$0" "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
        try:
            process = await asyncio.create_subprocess_exec(
                "/bin/bash",  # (dash takes no descriptor number above 9)
                "-c",
                script,
                chromium,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
                pass_fds=(child_in, child_out),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(child_in)
            os.close(child_out)
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(answers, "rb", buffering=0)
        )
        write_transport, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(commands, "wb", buffering=0)
        )
        browser = cls(process, write_transport, reader)
        try:
            yield browser
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(TIMEOUT):
                    await browser.call("Browser.close")
            try:
                async with asyncio.timeout(TIMEOUT):
                    await process.wait()
            finally:
                await _stop(process)
                browser._reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await browser._reading
                write_transport.close()
                read_transport.close()

    async def _read(self) -> None:
        while True:
            try:
                raw = await self._reader.readuntil(b"\0")
            except asyncio.IncompleteReadError:
                break
            message = json.loads(raw[:-1])
            if "id" in message:
                future = self._answers.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            else:
                async with self._event_arrived:
                    self._events.append(
                        (message.get("sessionId"), message["method"], message.get("params", {}))
                    )
                    self._event_arrived.notify_all()
        for future in self._answers.values():
            if not future.done():
                future.set_exception(DevToolsError("Chromium closed the pipe"))

    async def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send a command and return its result (bounded by RENDER_WITHIN)."""
        self._ids += 1
        message: dict[str, Any] = {"id": self._ids, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[self._ids] = future
        self._writer.write(json.dumps(message).encode() + b"\0")
        async with asyncio.timeout(RENDER_WITHIN):
            answer = await future
        if "error" in answer:
            raise DevToolsError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    async def event(self, session: str, method: str) -> dict[str, Any]:
        """The first event ``method`` of ``session`` not yet taken (waits for it)."""
        async with asyncio.timeout(RENDER_WITHIN), self._event_arrived:
            while True:
                for index, (at, name, params) in enumerate(self._events):
                    if at == session and name == method:
                        del self._events[index]
                        return params
                await self._event_arrived.wait()

    async def open(self, url: str | None) -> Page:
        """A new tab that has loaded ``url`` (None: a blank one)."""
        target = await self.call("Target.createTarget", {"url": "about:blank"})
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        await page.call("Page.enable")
        if url is not None:
            await page.goto(url)
        return page


class Page:
    """A tab of a :class:`Browser` (a DevTools session)."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.call(method, params, self.session)

    async def goto(self, url: str) -> None:
        """Load ``url`` and wait for its ``load`` event."""
        await self.call("Page.navigate", {"url": url})
        await self.browser.event(self.session, "Page.loadEventFired")

    async def evaluate(self, expression: str) -> Any:
        """The value of a script expression (awaited when it is a promise)."""
        answer = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in answer:
            raise DevToolsError(answer["exceptionDetails"])
        return answer["result"].get("value")

    async def wait_for(self, condition: str, within: float = TIMEOUT) -> None:
        """Wait until the script expression ``condition`` is true: checked now and after every
        change of the DOM; fails after ``within`` seconds (with the page's text)."""
        script = (
            "new Promise((resolve) => {"
            f"  const holds = () => Boolean({condition});"
            "  if (holds()) { resolve(true); return; }"
            "  const watch = new MutationObserver(() => {"
            "    if (holds()) { watch.disconnect(); resolve(true); }"
            "  });"
            "  watch.observe(document, {subtree: true, childList: true, characterData: true,"
            "    attributes: true});"
            "})"
        )
        try:
            async with asyncio.timeout(within):
                await self.evaluate(script)
        except TimeoutError:
            text = await self.evaluate("document.body.innerText")
            raise AssertionError(f"not within {within} s: {condition}\n{text}") from None

    async def dom(self) -> Dom:
        return Dom(await self.evaluate("document.documentElement.outerHTML"))
