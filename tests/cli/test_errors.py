"""Bad input to the network commands: one line on stderr and exit status 1."""

from __future__ import annotations

import socket
from collections.abc import Coroutine
from pathlib import Path as FsPath
from typing import Any

import pytest
from click.testing import CliRunner

from lwm2m.cli.main import main

from .conftest import Spawn


@pytest.fixture(autouse=True)
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input must fail before anything starts (a started command would run forever)."""

    def refuse(coroutine: Coroutine[Any, Any, Any]) -> None:
        coroutine.close()
        raise AssertionError("the command started instead of failing")

    for module in ("server", "client", "bootstrap"):
        monkeypatch.setattr(f"lwm2m.cli.{module}.asyncio.run", refuse)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr


def one_line_error(args: list[str], expected: str) -> None:
    code, stderr = run(*args)
    assert code == 1, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ")
    assert expected in lines[0], lines[0]


@pytest.fixture
def bad_files(tmp_path: FsPath) -> dict[str, str]:
    files = {
        "not-toml": "endpoint = \n",
        "unknown-key": 'endpoint = "x"\ncolour = "blue"\n[[servers]]\nuri = "coap://h:1"\n'
        "short_server_id = 1\n",
        "no-server": 'endpoint = "x"\n',
        "bad-bootstrap": '[endpoints."x"]\nnonsense = 1\n',
        "bad-bootstrap-toml": "[endpoints.\n",
    }
    paths = {}
    for name, text in files.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        paths[name] = str(path)
    paths["missing"] = str(tmp_path / "missing.toml")
    return paths


def test_client_config_errors(bad_files: dict[str, str]) -> None:
    one_line_error(["client", "--config", bad_files["missing"]], "cannot read")
    one_line_error(["client", "--config", bad_files["not-toml"]], "not valid TOML")
    one_line_error(["client", "--config", bad_files["unknown-key"]], "unknown key 'colour'")
    one_line_error(["client", "--config", bad_files["no-server"]], "at least one")


def test_client_flag_errors() -> None:
    one_line_error(["client", "--server", "http://example.org"], "servers[0].uri")
    one_line_error(["client", "--server", "coap://"], "servers[0].uri")
    one_line_error(["client", "--bootstrap", "127.0.0.1:5783"], "bootstrap.uri")
    one_line_error(["client", "--server", "coap://a:1", "--bootstrap", "coap://b:2"], "not both")
    one_line_error(["client", "--bind", "nowhere"], "bind")


def test_server_errors() -> None:
    one_line_error(["server", "--store", "redis:localhost"], "--store")
    one_line_error(["server", "--store", "sqlite:"], "--store")
    one_line_error(["server", "--bind", "localhost"], "--bind")
    one_line_error(["server", "--observe", "/x/y"], "--observe")
    one_line_error(["server", "--ddf", "/nonexistent/objects.xml"], "cannot read")


def test_bootstrap_server_errors(bad_files: dict[str, str]) -> None:
    one_line_error(["bootstrap-server", "--config", bad_files["missing"]], "cannot read")
    one_line_error(["bootstrap-server", "--config", bad_files["bad-bootstrap"]], "nonsense")
    one_line_error(["bootstrap-server", "--config", bad_files["bad-bootstrap-toml"]], "TOML")
    one_line_error(
        ["bootstrap-server", "--config", bad_files["no-server"], "--bind", "x"], "--bind"
    )


async def test_a_port_in_use_is_one_line(spawn: Spawn, tmp_path: FsPath) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        config = tmp_path / "bs.toml"
        config.write_text("")
        for args in (
            ["server", "--bind", f"127.0.0.1:{port}"],
            ["bootstrap-server", "--config", str(config), "--bind", f"127.0.0.1:{port}"],
            ["client", "--server", "coap://127.0.0.1:5683", "--bind", f"127.0.0.1:{port}"],
        ):
            process = await spawn(args[0], args)
            assert await process.wait() == 1, process.transcript
            errors = [line for line in process.lines if line.startswith("Error: ")]
            assert len(errors) == 1, process.transcript
            assert f"cannot bind 127.0.0.1:{port}" in errors[0]
