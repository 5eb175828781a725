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

from lwm2m.api import ApiTokens
from lwm2m.cli.client import run_client
from lwm2m.cli.server import is_loopback, load_api_tokens, load_registry, run_server, start_http
from lwm2m.io.lwm2m_server import LwM2MServer

from .conftest import TIMEOUT
from .test_cli_inprocess import LISTENING, client_config, running  # noqa: F401


def start_with_api(running: Any, tokens: ApiTokens | None = None) -> Any:  # noqa: F811
    """``lwm2m server --http 127.0.0.1:0`` in-process (with ``tokens``: --http-token-file)."""
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
            http_tokens=tokens,
        )
    )
    return server


async def test_rest_api_beside_the_coap_endpoint(running: Any) -> None:  # noqa: F811
    server = start_with_api(running)
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


TOKEN = "cli-token-0123456789-abcdefghij"


async def test_with_a_token_file_the_api_needs_the_token(
    running: Any,  # noqa: F811
    tmp_path: Any,
) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# the operators\n{TOKEN}\n")
    server = start_with_api(running, load_api_tokens(str(path), ("127.0.0.1", 0), False))
    await server.screen.expect(LISTENING)
    line = await server.screen.expect(
        r"^REST API on (http://127\.0\.0\.1:\d+)/api .*; bearer token required, 1 known\)$"
    )
    async with httpx.AsyncClient(base_url=line.group(1), timeout=TIMEOUT) as http:
        anonymous = await http.get("/api/clients")
        wrong = await http.get("/api/clients", headers={"Authorization": f"Bearer {TOKEN}-"})
        right = await http.get("/api/clients", headers={"Authorization": f"Bearer {TOKEN}"})
    assert anonymous.status_code == 401
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert right.json() == []
    await server.finish()
    assert not any(TOKEN in line for line in server.screen.lines)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--http", "0.0.0.0:0"],
            "--http 0.0.0.0:0 is not a loopback address: give --http-token-file to require a "
            "bearer token, or --http-no-auth when a proxy in front authenticates",
        ),
        (["--http-token-file", "tokens"], "--http-token-file and --http-no-auth go with --http"),
        (["--http-no-auth"], "--http-token-file and --http-no-auth go with --http"),
        (
            ["--http", "127.0.0.1:0", "--http-no-auth", "--http-token-file", "tokens"],
            "give --http-token-file or --http-no-auth, not both",
        ),
        (
            ["--http", "127.0.0.1:0", "--http-token-file", "missing"],
            "--http-token-file: missing: cannot read: No such file or directory",
        ),
        (
            ["--http", "127.0.0.1:0", "--http-token-file", "short"],
            "--http-token-file: short: line 1: a token needs at least 16 characters",
        ),
    ],
)
def test_the_http_authentication_options_are_checked_first(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, arguments: list[str], message: str
) -> None:
    from click.testing import CliRunner

    from lwm2m.cli.main import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tokens").write_text(TOKEN + "\n")
    (tmp_path / "short").write_text("too-short\n")
    result = CliRunner().invoke(main, ["server", "--bind", "127.0.0.1:0", *arguments])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split()), result.output
    assert "listening" not in result.output
    assert TOKEN not in result.output


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.1", False),
        ("example.com", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_no_auth_beyond_loopback_is_a_choice() -> None:
    assert load_api_tokens(None, ("0.0.0.0", 8080), True) is None
    assert load_api_tokens(None, ("127.0.0.1", 8080), False) is None
    assert load_api_tokens(None, None, False) is None


def test_a_token_file_without_the_web_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    path = tmp_path / "tokens"
    path.write_text(TOKEN)
    monkeypatch.setitem(sys.modules, "lwm2m.api", None)  # the import fails
    with pytest.raises(click.ClickException) as error:
        load_api_tokens(str(path), ("127.0.0.1", 0), False)
    assert error.value.message == (
        "--http: the REST API needs FastAPI and uvicorn: pip install 'lwm2m[web]'"
    )
