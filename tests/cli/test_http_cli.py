"""``lwm2m server --http HOST:PORT``: the REST API served by uvicorn in the server's own event
loop, next to the CoAP endpoint; a clear one-line error when the address is taken or the web
extra is missing; a clean stop."""

from __future__ import annotations

import socket
import sys
from typing import Any

import click
import httpx
import pytest

from lwm2m.cli.client import run_client
from lwm2m.cli.server import load_registry, run_server, start_http
from lwm2m.io.lwm2m_server import LwM2MServer

from .conftest import TIMEOUT
from .test_cli_inprocess import LISTENING, client_config, running  # noqa: F401


async def test_rest_api_beside_the_coap_endpoint(running: Any) -> None:  # noqa: F811
    server = running("server")
    server.start(
        run_server(
            ("127.0.0.1", 0),
            store_path=None,
            registry=load_registry(()),
            observe=(),
            console=server.screen.console,
            stop=server.stop,
            http=("127.0.0.1", 0),
        )
    )
    port = int((await server.screen.expect(LISTENING)).group(1))
    api = (await server.screen.expect(r"^REST API on (http://127\.0\.0\.1:\d+)/api ")).group(1)
    async with httpx.AsyncClient(base_url=api, timeout=TIMEOUT) as http:
        assert (await http.get("/api/clients")).json() == []
        client = running("client")
        config = client_config("inproc-http", server=f"coap://127.0.0.1:{port}")
        client.start(run_client(config, console=client.screen.console, tick=0, stop=client.stop))
        await server.screen.expect(r"^registered +inproc-http ")
        listed = (await http.get("/api/clients")).json()
        assert [c["endpoint"] for c in listed] == ["inproc-http"]
        read = await http.get("/api/clients/inproc-http/3/0/0")
        assert read.status_code == 200
        assert read.json()["content"] == "lwm2m for Python"  # the demo device's manufacturer
        missing = await http.get("/api/clients/nobody")
        assert missing.status_code == 404
        await client.finish()
    await server.finish()
    assert server.screen.lines[-2:] == ["stopping", "server stopped"]
    with pytest.raises(httpx.ConnectError):  # the API stopped with the server
        async with httpx.AsyncClient(base_url=api, timeout=TIMEOUT) as http:
            await http.get("/api/clients")


async def test_a_taken_http_address_is_a_one_line_error() -> None:
    server = LwM2MServer()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(click.ClickException) as error:
            await start_http(server, None, ("127.0.0.1", port))
    assert error.value.message.startswith(
        f"--http: cannot serve on 127.0.0.1:{port}: Address already in use"
    )


async def test_without_the_web_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # the import fails
    with pytest.raises(click.ClickException) as error:
        await start_http(LwM2MServer(), None, ("127.0.0.1", 0))
    assert error.value.message == (
        "--http: the REST API needs FastAPI and uvicorn: pip install 'lwm2m[web]'"
    )
