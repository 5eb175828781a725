"""The app served by a real uvicorn ``Server`` in the event loop of the LwM2M server: plain
requests and a streamed ``/api/events`` read over a TCP connection, then a clean shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import uvicorn

from lwm2m.api import create_app

from .chromium import ReadyServer
from .conftest import ENDPOINT, TIMEOUT, Stack


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        yield line


async def test_served_by_uvicorn_in_the_same_loop(stack: Stack) -> None:
    app = create_app(stack.server)
    server = ReadyServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.ensure_future(server.serve())
    try:
        async with asyncio.timeout(TIMEOUT):
            await server.ready.wait()
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
            answer = await http.get("/api/clients")
            assert (answer.status_code, answer.json()) == (200, [])
            async with http.stream("GET", "/api/events") as events:
                assert events.headers["content-type"].startswith("text/event-stream")
                lines = _lines(events)
                async with asyncio.timeout(TIMEOUT):
                    assert await anext(lines) == ": subscribed"
                    await stack.start_client()  # the CoAP side, same loop
                    while await anext(lines) != "event: registered":
                        pass
                    data = await anext(lines)
                assert f'"endpoint":"{ENDPOINT}"' in data
            # the stream is closed: the server notices and lets the subscription go
            answer = await http.get(f"/api/clients/{ENDPOINT}/3/0/9")
            assert answer.json()["content"] == 100
    finally:
        server.should_exit = True
        async with asyncio.timeout(TIMEOUT):
            await serving
    assert not app.state.event_streams.active
