"""A usability and robustness campaign on the command line, as a new user meets it.

- every command's ``--help`` (exit 0, every option shown) and click's usage errors (exit 2,
  one ``Error:`` line);
- the README's commands: their flags exist, the offline examples run as documented, the
  Secure Component and card-file walk-through works, and the server / bootstrap server / client
  walk-through runs as subprocesses on free ports;
- bad configuration files for ``client``, ``bootstrap-server``, ``server --store``, ``sc`` and
  ``sc write-bootstrap``: one ``Error:`` line, exit status 1 (2 for usage), no traceback, no
  key, and the files left as they were;
- Ctrl-C and SIGTERM of ``lwm2m server`` / ``lwm2m client`` as real processes.

Known bugs are kept as strict xfails whose reason says what happens.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from pathlib import Path as FsPath
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from lwm2m.cli.main import main
from lwm2m.io.lwm2m_server import LwM2MServer

from .conftest import TIMEOUT, Process, environment

ROOT = FsPath(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"

SECRET = "5ec2e75ec2e75ec2e75ec2e75ec2e7aa"
"""A PSK value in hex: it must never show in any output."""
PASSPHRASE = "campaign-passphrase-1"


# -- helpers -------------------------------------------------------------------------------------


def invoke(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def no_traceback(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output


def error_line(result: Result, status: int = 1) -> str:
    """The single ``Error:`` line of a failed command (exit ``status``), never a traceback
    and never the secret."""
    no_traceback(result)
    assert result.exit_code == status, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    if status == 1:  # a ClickException: the error line is all there is on stderr
        assert result.stderr.splitlines() == errors, result.stderr
    else:  # a usage error: click's usage lines (mostly), then the error
        assert result.stderr.rstrip("\n").splitlines()[-1] == errors[0], result.stderr
    assert SECRET not in result.output
    assert SECRET.upper() not in result.output
    assert PASSPHRASE not in result.output
    return errors[0]


class Started:
    """Replaces ``asyncio.run`` of a long-running command: records that it would serve."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        coroutine.close()
        self.count += 1


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Started:
    """``client`` and ``bootstrap-server`` never serve in this process: they are recorded."""
    recorder = Started()
    for module in ("client", "bootstrap"):
        monkeypatch.setattr(f"lwm2m.cli.{module}.asyncio.run", recorder)
    return recorder


def write(path: FsPath, text: str) -> str:
    path.write_text(text)
    return str(path)


# -- --help and usage errors ---------------------------------------------------------------------


def _walk(command: click.Command, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*prefix, name))


def _resolve(names: Sequence[str]) -> click.Command:
    command: click.Command = main
    for name in names:
        assert isinstance(command, click.Group), names
        command = command.commands[name]
    return command


COMMANDS = list(_walk(main))


def test_the_command_tree_is_the_documented_one() -> None:
    names = {" ".join(path) for path in COMMANDS}
    for documented in (
        "demo",
        "server",
        "bootstrap-server",
        "client",
        "model show",
        "model check",
        "decode",
        "encode",
        "sc info",
        "sc keygen",
        "sc import-psk",
        "sc list",
        "sc delete",
        "sc write-bootstrap",
        "sc read-bootstrap",
        "sc card-info",
        "vse run",
        "vse init",
    ):
        assert documented in names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "lwm2m")
def test_help_exits_0_and_shows_every_option(path: tuple[str, ...]) -> None:
    result = invoke([*path, "--help"])
    no_traceback(result)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    command = _resolve(path)
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in (*param.opts, *param.secondary_opts):
                assert opt in result.stdout, f"{opt} missing from {' '.join(path)} --help"
        else:
            assert (param.human_readable_name or "").upper() in result.stdout
    if isinstance(command, click.Group):
        for name in command.commands:
            assert name in result.stdout


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "lwm2m")
def test_an_unknown_option_is_a_one_line_usage_error(path: tuple[str, ...]) -> None:
    line = error_line(invoke([*path, "--no-such-option"]), status=2)
    assert line == "Error: No such option '--no-such-option'."


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        (["nosuch"], "No such command 'nosuch'."),
        (["decode"], "Missing argument 'PAYLOAD'."),
        (["decode", "00"], "Missing option '--format'."),
        (["encode", "--format", "tlv", "{}"], "Missing option '--path'."),
        (["model", "show"], "Missing argument 'OBJECT_REF'."),
        (["model", "check"], "Missing argument 'PATHS...'."),
        (["bootstrap-server"], "Missing option '--config'."),
        (["sc", "keygen"], "Missing option '--label'."),
        (["sc", "write-bootstrap"], "Missing argument 'DESCRIPTION'."),
        (["vse", "init"], "Missing option '--state'."),
        (["vse", "run"], "Missing option '--state'."),
        (["client", "--tick", "-1"], "Invalid value for '--tick'"),
        (["client", "--lifetime", "0"], "Invalid value for '--lifetime'"),
        (["client", "--lifetime", "soon"], "Invalid value for '--lifetime'"),
        (["demo", "--security", "tls"], "Invalid value for '--security'"),
        (["server", "--bind"], "Option '--bind' requires an argument."),
    ],
)
def test_missing_or_invalid_arguments_are_usage_errors(args: list[str], missing: str) -> None:
    assert missing in error_line(invoke(args), status=2)


def test_version() -> None:
    result = invoke(["--version"])
    assert result.exit_code == 0
    assert re.fullmatch(r"\S+, version \d+\.\d+\S*\n", result.stdout), result.stdout


# -- the README ----------------------------------------------------------------------------------


def _readme_commands() -> list[list[str]]:
    """The ``lwm2m`` command lines of the README's ``sh`` blocks (comments dropped)."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    out = []
    for block in blocks:
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0].endswith("bin/lwm2m"):
                out.append(words[1:])
    return out


def _command_of(words: Sequence[str]) -> tuple[click.Command, list[str]]:
    command: click.Command = main
    rest = list(words)
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    return command, rest


def _options(command: click.Command) -> set[str]:
    return {
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
    }


def test_every_readme_command_line_names_real_commands_and_options() -> None:
    lines = _readme_commands()
    assert len(lines) >= 12
    for words in lines:
        command, rest = _command_of(words)
        assert not isinstance(command, click.Group), words
        options = _options(command)
        for word in rest:
            if word.startswith("--"):
                assert word.split("=")[0] in options, (word, words)


PROSE_OPTIONS = {
    "server": "--bind --store --observe --ddf --psk --rpk --trust-anchor --cert --key "
    "--security-store --http --http-token-file --http-no-auth",
    "bootstrap-server": "--config --bind",
    "client": "--config --endpoint --server --bootstrap --lifetime --queue-mode --bind --tick "
    "--psk-identity --psk-key-hex-env --secure-component --sc-admin-aid --seram-agent",
    "demo": "--formats --security",
    "decode": "--format --path --ddf",
    "encode": "--format --path --ddf",
}


@pytest.mark.parametrize("name", sorted(PROSE_OPTIONS))
def test_the_options_the_readme_prose_names_exist(name: str) -> None:
    text = README.read_text()
    options = _options(main.commands[name])
    for option in PROSE_OPTIONS[name].split():
        assert f"`{option}" in text or f" {option}" in text  # still documented
        assert option in options, f"lwm2m {name} has no {option}"


def test_readme_payload_examples_print_what_it_says() -> None:
    result = invoke(
        [
            "decode",
            "--format",
            "tlv",
            "--path",
            "/3/0/0",
            "c800144f70656e204d6f62696c6520416c6c69616e6365",
        ]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == '"Open Mobile Alliance"'
    encoded = invoke(
        ["encode", "--format", "senml-json", "--path", "/3/0", '{"0": "Acme", "9": 87}']
    )
    assert encoded.exit_code == 0, encoded.output
    payload = encoded.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]+", payload)
    back = invoke(["decode", "--format", "senml-json", "--path", "/3/0", payload])
    assert back.exit_code == 0, back.output
    assert '"0": "Acme"' in back.stdout
    assert '"9": 87' in back.stdout


def test_readme_model_examples(tmp_path: FsPath) -> None:
    shown = invoke(["model", "show", "3/1.1"])
    assert shown.exit_code == 0, shown.output
    assert "/3 Device" in shown.stdout
    assert "Battery Level" in shown.stdout
    objects = tmp_path / "my-objects"
    objects.mkdir()
    source = ROOT / "src" / "lwm2m" / "model" / "objects" / "3-1_0.xml"
    (objects / "3-1_0.xml").write_bytes(source.read_bytes())
    checked = invoke(["model", "check", f"{objects}/"])
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines()[-1] == "1 valid, 0 invalid, 1 files"


def test_readme_demo_commands_run_offline() -> None:
    tour = invoke(["demo", "--formats"])
    assert tour.exit_code == 0, tour.output
    assert tour.stdout.strip()
    demo = invoke(["demo", "--security", "nosec"])
    no_traceback(demo)
    assert demo.exit_code == 0, demo.output


def test_readme_secure_component_walk_through(
    tmp_path: FsPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``export LWM2M_SECURE_COMPONENT=soft:device.sc?passphrase-env=SC_PASS``, then ``sc
    info``, ``sc keygen``, ``sc import-psk`` as the README lists them."""
    monkeypatch.chdir(tmp_path)
    env = {
        "LWM2M_SECURE_COMPONENT": "soft:device.sc?passphrase-env=SC_PASS",
        "SC_PASS": PASSPHRASE,
    }
    # the README's first command, before any component exists: a clear hint, not a traceback
    first = error_line(invoke(["sc", "info"], env))
    assert "no soft Secure Component at 'device.sc'" in first
    assert "lwm2m sc keygen" in first
    keygen = invoke(["sc", "keygen", "--label", "dtls", "--subject", "CN=urn:dev:1"], env)
    assert keygen.exit_code == 0, keygen.output
    assert "software, not secure hardware" in keygen.stdout
    assert "-----BEGIN PUBLIC KEY-----" in keygen.stdout
    assert "-----BEGIN CERTIFICATE REQUEST-----" in keygen.stdout
    info = invoke(["sc", "info"], env)
    assert info.exit_code == 0, info.output
    assert "software, not secure hardware" in info.stdout
    (tmp_path / "key.hex").write_text(SECRET + "\n")
    imported = invoke(["sc", "import-psk", "--identity", "dev-1", "--psk-file", "key.hex"], env)
    assert imported.exit_code == 0, imported.output
    assert "Imported PSK for identity 'dev-1'" in imported.stdout
    listed = invoke(["sc", "list"], env)
    assert listed.exit_code == 0, listed.output
    assert "identity 'dev-1'" in listed.stdout
    assert "dtls" in listed.stdout
    for result in (keygen, info, imported, listed):
        assert SECRET not in result.output
        assert PASSPHRASE not in result.output
    assert SECRET.encode() not in (tmp_path / "device.sc").read_bytes()  # encrypted at rest


CARD_DESCRIPTION = f"""layout = "1.1"

[[security]]
uri = "coaps://bootstrap.example.com:5684"
bootstrap = true
mode = "psk"
psk_identity = "device-1"
psk_key_hex = "{SECRET}"

[[security]]
uri = "coaps://lwm2m.example.com:5684"
short_server_id = 101
mode = "psk"
psk_identity = "device-1"
psk_key_hex = "{SECRET[::-1]}"

[[server]]
short_server_id = 101
lifetime = 86400
binding = "U"
"""


@pytest.fixture
def card(tmp_path: FsPath) -> FsPath:
    """A VSE personalisation file made by ``lwm2m vse init``."""
    state = tmp_path / "card.json"
    result = invoke(["vse", "init", "--state", str(state)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {state}\n"
    return state


def test_readme_write_bootstrap_into_a_card(tmp_path: FsPath, card: FsPath) -> None:
    description = write(tmp_path / "bootstrap.toml", CARD_DESCRIPTION)
    result = invoke(["sc", "write-bootstrap", description, "--state", str(card)])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        rf"wrote \d+ bytes, layout 1\.1, objects /0 \(2 instances\), /1 \(1 instances\) "
        rf"to {re.escape(str(card))}\n",
        result.stderr,
    )
    assert result.stdout == ""
    assert SECRET not in result.output
    assert SECRET.upper() not in result.output
    as_hex = invoke(["sc", "write-bootstrap", description, "--hex"])
    assert as_hex.exit_code == 0
    assert re.fullmatch(r"[0-9A-F]+\n", as_hex.stdout)


def test_a_bootstrap_server_file_given_to_write_bootstrap_is_named(card: FsPath) -> None:
    """A new user may give ``examples/bootstrap.toml`` (the other format) to write-bootstrap."""
    before = card.read_bytes()
    path = EXAMPLES / "bootstrap.toml"
    line = error_line(invoke(["sc", "write-bootstrap", str(path), "--state", str(card)]))
    assert line == f"Error: {path}: description: unknown top-level keys ['endpoints']"
    assert card.read_bytes() == before


# -- subprocesses --------------------------------------------------------------------------------


class Lwm2m(Process):
    """``python -m lwm2m.cli.main`` with stdout read line by line and stderr kept apart."""

    async def stderr(self) -> str:
        stream = self.process.stderr
        assert stream is not None
        async with asyncio.timeout(TIMEOUT):
            return (await stream.read()).decode(errors="replace")

    async def stop(self, signum: int = signal.SIGINT) -> tuple[int, str]:
        """Send ``signum``; the exit status and what went to stderr."""
        self.process.send_signal(signum)
        code = await self.wait()
        return code, await self.stderr()


@pytest.fixture
async def lwm2m() -> AsyncIterator[Any]:
    started: list[Lwm2m] = []

    async def start(name: str, *args: str) -> Lwm2m:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lwm2m.cli.main",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment(),
        )
        started.append(Lwm2m(name, process))
        return started[-1]

    yield start
    for process in started:
        await process.kill()


LISTENING = r"listening on coaps?://127\.0\.0\.1:(\d+)"


async def test_readme_server_bootstrap_and_client_walk_through(
    lwm2m: Any, tmp_path: FsPath
) -> None:
    """The README's four commands, on free ports: the example bootstrap file provisions
    ``urn:dev:demo-nosec`` with an account on the server, then the example client file
    registers in queue mode."""
    db = tmp_path / "registrations.db"
    server = await lwm2m(
        "server",
        "server",
        "--bind",
        "127.0.0.1:0",
        "--store",
        f"sqlite:{db}",
        "--observe",
        "/3/0/9",
    )
    port = (await server.expect(LISTENING)).group(1)
    config = (EXAMPLES / "bootstrap.toml").read_text()
    assert 'uri = "coap://127.0.0.1:5683"' in config
    bootstrap_file = write(
        tmp_path / "bootstrap.toml",
        config.replace('uri = "coap://127.0.0.1:5683"', f'uri = "coap://127.0.0.1:{port}"'),
    )
    bootstrap = await lwm2m(
        "bootstrap", "bootstrap-server", "--config", bootstrap_file, "--bind", "127.0.0.1:0"
    )
    bs_port = (await bootstrap.expect(LISTENING)).group(1)
    client = await lwm2m(
        "client",
        "client",
        "--endpoint",
        "urn:dev:demo-nosec",
        "--bootstrap",
        f"coap://127.0.0.1:{bs_port}",
        "--bind",
        "127.0.0.1:0",
        "--tick",
        "0.2",
    )
    await bootstrap.expect(r"finished\s+urn:dev:demo-nosec")
    await server.expect(r"registered\s+urn:dev:demo-nosec /rd/\S+ lifetime=300s")
    await server.expect(r"observing\s+urn:dev:demo-nosec /3/0/9 2\.05 Content")
    await server.expect(r"notification\s+urn:dev:demo-nosec")
    assert await client.stop() == (0, "")
    assert client.lines[-1] == "client stopped"
    await server.expect(r"deregistered\s+urn:dev:demo-nosec")
    queued = await lwm2m(
        "client-file",
        "client",
        "--config",
        str(EXAMPLES / "client.toml"),
        "--queue-mode",
        "--server",
        f"coap://127.0.0.1:{port}",
        "--tick",
        "0",
    )
    registered = await server.expect(r"registered\s+urn:dev:demo-nosec .*")
    assert "binding=UQ" in registered.group(0) or "queue" in registered.group(0)
    assert await queued.stop() == (0, "")
    assert await bootstrap.stop() == (0, "")
    assert await server.stop() == (0, "")
    assert server.lines[-1] == "server stopped"
    assert db.stat().st_size > 0


@pytest.fixture
async def lwm2m_server() -> AsyncIterator[LwM2MServer]:
    """An in-process server for the client subprocesses."""
    async with LwM2MServer() as server:
        await server.start(("127.0.0.1", 0))
        yield server


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_the_server_stops_cleanly_on_a_signal(lwm2m: Any, signum: int) -> None:
    server = await lwm2m("server", "server", "--bind", "127.0.0.1:0")
    await server.expect(LISTENING)
    code, stderr = await server.stop(signum)
    assert (code, stderr) == (0, ""), server.transcript
    assert server.lines[-2:] == ["stopping", "server stopped"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_the_client_deregisters_and_stops_cleanly_on_a_signal(
    lwm2m: Any, lwm2m_server: LwM2MServer, signum: int
) -> None:
    host, port = lwm2m_server.local_address
    client = await lwm2m(
        "client",
        "client",
        "--endpoint",
        f"campaign-{signum}",
        "--server",
        f"coap://{host}:{port}",
        "--bind",
        "127.0.0.1:0",
        "--tick",
        "0",
    )
    await client.expect(r"registered\s+server=101 /rd/")
    code, stderr = await client.stop(signum)
    assert (code, stderr) == (0, ""), client.transcript
    assert any(re.search(r"deregistered\s+server=101", line) for line in client.lines)
    assert client.lines[-1] == "client stopped"
    assert await lwm2m_server.registrations() == []


async def test_a_second_ctrl_c_during_the_deregistration_exits_without_a_traceback(
    lwm2m: Any, lwm2m_server: LwM2MServer
) -> None:
    """The server goes away, so the De-register after Ctrl-C waits for an answer; a second
    Ctrl-C ends the process at once with ``Aborted!`` and exit status 130, never with a
    traceback (it used to raise KeyboardInterrupt wherever the loop was, which sometimes
    ended in one)."""
    host, port = lwm2m_server.local_address
    client = await lwm2m(
        "client",
        "client",
        "--endpoint",
        "campaign-twice",
        "--server",
        f"coap://{host}:{port}",
        "--bind",
        "127.0.0.1:0",
        "--tick",
        "0",
    )
    await client.expect(r"registered\s+server=101 /rd/")
    await lwm2m_server.stop()
    client.process.send_signal(signal.SIGINT)
    await client.expect(r"^deregistering$")
    code, stderr = await client.stop(signal.SIGINT)
    assert code == 130, client.transcript
    assert "Traceback" not in stderr
    assert stderr.strip() == "Aborted!"


# -- lwm2m client --config -----------------------------------------------------------------------

SERVER = '[[servers]]\nuri = "coap://127.0.0.1:5683"\nshort_server_id = 1\n'
PSK_SERVER = '[[servers]]\nuri = "coaps://127.0.0.1:5684"\nshort_server_id = 1\n'

CLIENT_FILES = {
    "unknown-top-level-key": ('endpoint = "x"\ncolour = 1\n' + SERVER, "unknown key 'colour'"),
    "unknown-server-key": ('endpoint = "x"\n' + SERVER + "port = 1\n", "unknown key 'port'"),
    "no-accounts": ('endpoint = "x"\n', "configure at least one [[servers]] entry"),
    "empty-file": ("", "configure at least one [[servers]] entry"),
    "lifetime-string": ('endpoint = "x"\n' + SERVER + 'lifetime = "1h"\n', "servers[0].lifetime"),
    "lifetime-negative": ('endpoint = "x"\n' + SERVER + "lifetime = -5\n", "servers[0].lifetime"),
    "queue-mode-string": ('endpoint = "x"\nqueue_mode = "yes"\n' + SERVER, "queue_mode"),
    "device-not-a-table": ('endpoint = "x"\ndevice = "acme"\n' + SERVER, "device"),
    "servers-not-an-array": ('endpoint = "x"\n[servers]\nuri = "coap://h:1"\n', "servers"),
    "missing-short-server-id": (
        'endpoint = "x"\n[[servers]]\nuri = "coap://h:1"\n',
        "servers[0].short_server_id",
    ),
    "missing-uri": ('endpoint = "x"\n[[servers]]\nshort_server_id = 1\n', "servers[0].uri"),
    "uri-not-a-uri": (
        'endpoint = "x"\n[[servers]]\nuri = "not a uri"\nshort_server_id = 1\n',
        "servers[0].uri",
    ),
    "uri-http": (
        'endpoint = "x"\n[[servers]]\nuri = "http://h:1"\nshort_server_id = 1\n',
        "servers[0].uri",
    ),
    "uri-without-host": (
        'endpoint = "x"\n[[servers]]\nuri = "coap://:5683"\nshort_server_id = 1\n',
        "servers[0].uri: the server URI has no host",
    ),
    "bootstrap-without-uri": ('endpoint = "x"\n[bootstrap]\nhold_off = 0\n', "bootstrap.uri"),
    "bad-hex-key": (
        'endpoint = "x"\n'
        + PSK_SERVER
        + f'security_mode = "psk"\npsk_identity = "i"\npsk_key_hex = "{SECRET}zz"\n',
        "servers[0].psk_key_hex: not valid hex",
    ),
    "odd-hex-key": (
        'endpoint = "x"\n'
        + PSK_SERVER
        + f'security_mode = "psk"\npsk_identity = "i"\npsk_key_hex = "{SECRET}a"\n',
        "servers[0].psk_key_hex: not valid hex",
    ),
    "key-not-a-string": (
        'endpoint = "x"\n'
        + PSK_SERVER
        + 'security_mode = "psk"\npsk_identity = "i"\npsk_key_hex = 1234\n',
        "servers[0].psk_key_hex: a hex string is expected",
    ),
    "psk-without-identity": (
        'endpoint = "x"\n' + PSK_SERVER + f'security_mode = "psk"\npsk_key_hex = "{SECRET}"\n',
        "servers[0]: PSK mode needs psk_identity and psk_key_hex",
    ),
    "psk-without-key": (
        'endpoint = "x"\n' + PSK_SERVER + 'security_mode = "psk"\npsk_identity = "i"\n',
        "servers[0]: PSK mode needs psk_identity and psk_key_hex",
    ),
    "unknown-security-mode": (
        'endpoint = "x"\n' + PSK_SERVER + 'security_mode = "tls"\n',
        "servers[0].security_mode",
    ),
    "duplicate-short-server-id": (
        'endpoint = "x"\n' + SERVER + SERVER.replace("5683", "5685"),
        "servers: each short_server_id must be unique",
    ),
    "bad-bind": ('endpoint = "x"\nbind = "nowhere"\n' + SERVER, "bind"),
}

CLIENT_SEMANTIC_CASES = [
    "unknown-top-level-key",
    "no-accounts",
    "lifetime-string",
    "uri-not-a-uri",
    "bad-hex-key",
    "psk-without-key",
]


@pytest.mark.parametrize("case", sorted(CLIENT_FILES))
def test_a_bad_client_file_is_one_line_naming_the_problem(
    tmp_path: FsPath, started: Started, case: str
) -> None:
    text, problem = CLIENT_FILES[case]
    path = write(tmp_path / "client.toml", text)
    line = error_line(invoke(["client", "--config", path]))
    assert problem in line
    assert started.count == 0


@pytest.mark.parametrize("case", CLIENT_SEMANTIC_CASES)
def test_a_bad_client_file_error_names_the_file(
    tmp_path: FsPath, started: Started, case: str
) -> None:
    path = write(tmp_path / "client.toml", CLIENT_FILES[case][0])
    assert path in error_line(invoke(["client", "--config", path]))


def test_a_client_file_with_a_syntax_error_names_the_file_and_line(
    tmp_path: FsPath, started: Started
) -> None:
    path = write(tmp_path / "client.toml", f'endpoint = "x"\npsk_key_hex = = "{SECRET}"\n')
    line = error_line(invoke(["client", "--config", path]))
    assert line.startswith(f"Error: {path}: not valid TOML (")
    assert "line 2" in line


@pytest.mark.parametrize("kind", ["missing", "directory", "bad-utf8"])
@pytest.mark.parametrize(
    ("command", "latin1"),
    [("client", b'endpoint = "caf\xe9"\n'), ("bootstrap-server", b'[endpoints."caf\xe9"]\n')],
)
def test_an_unusable_file_is_one_line_naming_it(
    tmp_path: FsPath, started: Started, kind: str, command: str, latin1: bytes
) -> None:
    path = tmp_path / "config.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "bad-utf8":
        path.write_bytes(latin1)
    line = error_line(invoke([command, "--config", str(path)]))
    assert str(path) in line
    reason = {"missing": "No such file", "directory": "Is a directory", "bad-utf8": "not UTF-8"}
    assert reason[kind] in line
    assert started.count == 0


def test_an_unreadable_client_file_is_one_line(
    tmp_path: FsPath, started: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operating system refuses the file (EACCES; the tests run as root, which reads files
    whatever their mode, so the refusal is the one ``open`` would raise)."""
    import errno

    from lwm2m.cli import files

    path = tmp_path / "client.toml"
    path.write_text('endpoint = "x"\n' + SERVER)

    def refuse(name: str, *args: object, **kwargs: object) -> object:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)

    monkeypatch.setattr(files, "open", refuse, raising=False)
    assert error_line(invoke(["client", "--config", str(path)])) == (
        f"Error: cannot read {path}: Permission denied"
    )


@pytest.mark.parametrize(
    "account",
    [
        f'[[servers]]\nuri = "coap://127.0.0.1:5683"\nshort_server_id = 1\nsecurity_mode = "psk"\n'
        f'psk_identity = "i"\npsk_key_hex = "{SECRET}"\n',
        '[[servers]]\nuri = "coaps://127.0.0.1:5684"\nshort_server_id = 1\n',
    ],
    ids=["psk-on-coap", "nosec-on-coaps"],
)
def test_a_scheme_that_does_not_fit_the_security_mode_is_refused(
    tmp_path: FsPath, started: Started, account: str
) -> None:
    path = write(tmp_path / "client.toml", 'endpoint = "x"\n' + account)
    line = error_line(invoke(["client", "--config", path]))
    assert "security_mode" in line or "scheme" in line
    assert started.count == 0


def test_the_example_client_file_is_accepted(started: Started) -> None:
    result = invoke(["client", "--config", str(EXAMPLES / "client.toml"), "--queue-mode"])
    assert result.exit_code == 0, result.output
    assert started.count == 1


# -- lwm2m bootstrap-server --config -------------------------------------------------------------

EP = '[endpoints."e"]\n'
BS_SEC = '[[endpoints."e".security]]\n'
BS_AUTH = '[endpoints."e".bootstrap_security]\n'

BOOTSTRAP_FILES = {
    "syntax": ("[endpoints.\n", "not valid TOML"),
    "unknown-top-level-key": ("colour = 1\n", "unknown top-level key 'colour'"),
    "unknown-endpoint-key": (EP + "nonsense = 1\n", "endpoints.e: unknown key 'nonsense'"),
    "wrong-type": (EP + "discover = 1\n", "endpoints.e.discover: expected true or false"),
    "missing-uri": (BS_SEC + "short_server_id = 1\n", "endpoints.e.security[0]: uri is required"),
    "bad-hex-key": (
        BS_SEC
        + f'uri = "coaps://h"\nmode = "psk"\npsk_identity = "i"\npsk_key = "hex:{SECRET}z"\n',
        "endpoints.e.security[0].psk_key: not valid hex",
    ),
    "psk-without-key": (
        BS_SEC + 'uri = "coaps://h"\nmode = "psk"\npsk_identity = "i"\nshort_server_id = 1\n',
        "endpoints.e.security[0]: PSK mode needs a PSK identity and a key",
    ),
    "client-psk-bad-hex": (
        BS_AUTH + f'mode = "psk"\npsk_identity = "i"\npsk_key = "hex:{SECRET}zz"\n',
        "endpoints.e.bootstrap_security.psk_key: not valid hex",
    ),
    "one-psk-identity-for-two-endpoints": (
        '[endpoints."e".bootstrap_security]\nmode = "psk"\npsk_identity = "i"\n'
        f'psk_key = "hex:{SECRET}"\n'
        '[endpoints."f".bootstrap_security]\nmode = "psk"\npsk_identity = "i"\n'
        f'psk_key = "hex:{SECRET[::-1]}"\n',
        "identity psk:i already belongs to endpoint 'e'",
    ),
}

BOOTSTRAP_SEMANTIC_CASES = [
    "unknown-top-level-key",
    "wrong-type",
    "missing-uri",
    "bad-hex-key",
    "client-psk-bad-hex",
]


def _bootstrap_run(path: str, monkeypatch: pytest.MonkeyPatch) -> Result:
    """``bootstrap-server --config path`` (a file that loads serves in a fake asyncio.run that
    only builds the DTLS layer, so the duplicate-identity check runs)."""
    real_run = asyncio.run

    def run(coroutine: Coroutine[Any, Any, Any]) -> None:
        frame = coroutine.cr_frame
        assert frame is not None
        dtls = frame.f_locals["dtls"]
        coroutine.close()
        if dtls.enabled:
            from lwm2m.cli.server import build_security

            async def check() -> None:
                store, *_ = await build_security(dtls)
                await store.close()

            real_run(check())

    monkeypatch.setattr("lwm2m.cli.bootstrap.asyncio.run", run)
    return invoke(["bootstrap-server", "--config", path, "--bind", "127.0.0.1:0"])


@pytest.mark.parametrize("case", sorted(BOOTSTRAP_FILES))
def test_a_bad_bootstrap_file_is_one_line_naming_the_problem(
    tmp_path: FsPath, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    text, problem = BOOTSTRAP_FILES[case]
    path = write(tmp_path / "bootstrap.toml", text)
    assert problem in error_line(_bootstrap_run(path, monkeypatch))


@pytest.mark.parametrize("case", ["syntax", *BOOTSTRAP_SEMANTIC_CASES])
def test_a_bad_bootstrap_file_error_names_the_file(
    tmp_path: FsPath, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    path = write(tmp_path / "bootstrap.toml", BOOTSTRAP_FILES[case][0])
    assert path in error_line(_bootstrap_run(path, monkeypatch))


@pytest.mark.parametrize("uri", ["not a uri", "http://h:1", "coap://h:99999"])
def test_a_bad_server_uri_in_the_bootstrap_file_is_refused(
    tmp_path: FsPath, started: Started, uri: str
) -> None:
    path = write(tmp_path / "bootstrap.toml", BS_SEC + f'uri = "{uri}"\nshort_server_id = 1\n')
    line = error_line(invoke(["bootstrap-server", "--config", path]))
    assert "endpoints.e.security[0].uri" in line
    assert started.count == 0


def test_a_psk_account_on_a_coap_uri_is_refused_by_the_bootstrap_server(
    tmp_path: FsPath, started: Started
) -> None:
    path = write(
        tmp_path / "bootstrap.toml",
        BS_SEC + 'uri = "coap://h"\nmode = "psk"\npsk_identity = "i"\n'
        f'psk_key = "hex:{SECRET}"\nshort_server_id = 1\n',
    )
    error_line(invoke(["bootstrap-server", "--config", path]))
    assert started.count == 0


# -- lwm2m server --store sqlite:PATH ------------------------------------------------------------


class NeverServes:
    def __init__(self, **options: Any) -> None:
        raise AssertionError("the server was built: the store opened")


@pytest.fixture
def never_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lwm2m.cli.server.LwM2MServer", NeverServes)


def test_a_file_that_is_not_sqlite_is_named_and_kept(tmp_path: FsPath, never_serves: None) -> None:
    path = tmp_path / "notes.db"
    content = b"my notes, not a database\n" * 40
    path.write_bytes(content)
    line = error_line(invoke(["server", "--bind", "127.0.0.1:0", "--store", f"sqlite:{path}"]))
    assert line == f"Error: --store: cannot open {path}: file is not a database"
    assert path.read_bytes() == content
    security = error_line(
        invoke(
            [
                "server",
                "--bind",
                "127.0.0.1:0",
                "--security-store",
                f"sqlite:{path}",
                "--psk",
                f"ep:id:{SECRET}",
            ]
        )
    )
    assert security == f"Error: --security-store: cannot open {path}: file is not a database"
    assert path.read_bytes() == content


@pytest.mark.parametrize("kind", ["directory", "missing-folder", "under-a-file"])
def test_a_store_path_that_cannot_be_a_database_is_one_line(
    tmp_path: FsPath, never_serves: None, kind: str
) -> None:
    path = {
        "directory": tmp_path,
        "missing-folder": tmp_path / "nowhere" / "r.db",
        "under-a-file": tmp_path / "file" / "r.db",
    }[kind]
    (tmp_path / "file").write_text("x")
    line = error_line(invoke(["server", "--bind", "127.0.0.1:0", "--store", f"sqlite:{path}"]))
    assert line.startswith(f"Error: --store: cannot open {path}: ")
    assert (tmp_path / "file").read_text() == "x"
    assert not (tmp_path / "nowhere").exists()


def test_a_store_on_a_read_only_file_system_is_one_line(
    tmp_path: FsPath, never_serves: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite cannot create the database (a read-only mount, a folder the user may not write:
    the tests run as root, which writes whatever the mode, so the refusal is SQLite's own)."""
    import sqlite3

    real = sqlite3.connect

    def refuse(database: object, *args: object, **kwargs: object) -> sqlite3.Connection:
        if str(database).endswith("r.db"):
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return real(database, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", refuse)
    path = tmp_path / "r.db"
    line = error_line(invoke(["server", "--store", f"sqlite:{path}"]))
    assert line.startswith(f"Error: --store: cannot open {path}: ")
    assert "readonly" in line
    assert not path.exists()


def test_another_applications_sqlite_file_keeps_its_data(
    tmp_path: FsPath, never_serves: None
) -> None:
    """A SQLite file of another program with a clashing ``registrations`` table: one line, and
    that program's rows are still there."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE registrations (name TEXT)")
        db.execute("INSERT INTO registrations VALUES ('keep me')")
    db.close()
    line = error_line(invoke(["server", "--store", f"sqlite:{path}"]))
    assert line.startswith(f"Error: --store: cannot open {path}: ")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT * FROM registrations").fetchall()
    db.close()
    assert rows == [("keep me",)]


def test_another_applications_sqlite_file_without_a_clash_is_left_alone(
    tmp_path: FsPath, never_serves: None
) -> None:
    """A SQLite file of another program whose tables do not clash: refused all the same (it
    used to get our tables and WAL mode added), naming its tables; the file is unchanged."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
        db.execute("INSERT INTO customers VALUES ('keep me')")
    db.close()
    before = path.read_bytes()
    line = error_line(invoke(["server", "--store", f"sqlite:{path}"]))
    assert line == (
        f"Error: --store: cannot open {path}: a SQLite database of another application "
        "(tables: customers)"
    )
    assert path.read_bytes() == before


STORE_KINDS = "'memory', 'sqlite:PATH' or a Redis URL (redis://HOST:PORT)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "sqlite:"], f"--store: 'sqlite:' is not {STORE_KINDS}"),
        (["--store", "postgres:x"], f"--store: 'postgres:x' is not {STORE_KINDS}"),
        (["--bind", "localhost"], "--bind: 'localhost' is not HOST:PORT"),
        (["--bind", "127.0.0.1:70000"], "--bind: '127.0.0.1:70000' is not HOST:PORT"),
        (["--observe", "/x"], "--observe: invalid path '/x'"),
        (["--ddf", "/nonexistent/objects.xml"], "/nonexistent/objects.xml"),
        (["--psk", f"ep:id:{SECRET}zz"], "--psk ep: the key is not (non-empty) hex"),
        (["--psk", SECRET], "--psk: expected ENDPOINT:IDENTITY:HEXKEY"),
    ],
)
def test_bad_server_flags_are_one_line(never_serves: None, args: list[str], message: str) -> None:
    assert message in error_line(invoke(["server", *args]))


# -- lwm2m sc (Secure Components) ----------------------------------------------------------------


@pytest.fixture
def component(tmp_path: FsPath) -> dict[str, str]:
    """A soft Secure Component with one key pair; the environment to reach it."""
    env = {"SC_PASS": PASSPHRASE}
    uri = f"soft:{tmp_path / 'device.sc'}?passphrase-env=SC_PASS"
    made = invoke(["sc", "keygen", "--secure-component", uri, "--label", "dtls"], env)
    assert made.exit_code == 0, made.output
    return {"uri": uri, **env}


def sc_run(component: dict[str, str], *args: str, uri: str | None = None) -> Result:
    env = {"SC_PASS": component["SC_PASS"]}
    return invoke(["sc", *args, "--secure-component", uri or component["uri"]], env)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("bogus:x", "unknown Secure Component backend 'bogus' (known: soft, pkcs11, pcsc)"),
        ("soft:", "a soft: URI needs a file path: soft:PATH"),
        ("soft:{dir}?passphrase-env=SC_PASS", "cannot read '{dir}': Is a directory"),
        ("soft:{dir}/missing.sc?passphrase-env=SC_PASS", "no soft Secure Component at"),
        ("soft:{dir}/device.sc?passphrase-env=NO_SUCH_VAR", "NO_SUCH_VAR is not set"),
        ("soft:{dir}/device.sc?passphrase=x", "unknown soft: attribute(s) passphrase"),
        ("pkcs11:token=x", "no PKCS#11 module"),
    ],
)
def test_bad_secure_component_uris_are_one_line(
    tmp_path: FsPath, component: dict[str, str], uri: str, message: str
) -> None:
    before = (tmp_path / "device.sc").read_bytes()
    line = error_line(sc_run(component, "info", uri=uri.format(dir=tmp_path)))
    assert message.format(dir=tmp_path) in line
    assert (tmp_path / "device.sc").read_bytes() == before


def test_a_wrong_passphrase_is_named_not_shown(tmp_path: FsPath, component: dict[str, str]) -> None:
    before = (tmp_path / "device.sc").read_bytes()
    wrong = "wrong-" + PASSPHRASE
    for args in (["info"], ["import-psk", "--identity", "x", "--psk-hex-env", "SC_KEY"]):
        result = invoke(
            ["sc", *args, "--secure-component", component["uri"]],
            {"SC_PASS": wrong, "SC_KEY": SECRET},
        )
        line = error_line(result)
        assert line == f"Error: wrong passphrase for soft Secure Component '{tmp_path}/device.sc'"
        assert wrong not in result.output
    assert (tmp_path / "device.sc").read_bytes() == before


def test_a_file_that_is_not_a_component_is_named_and_kept(
    tmp_path: FsPath, component: dict[str, str]
) -> None:
    other = tmp_path / "notes.txt"
    other.write_bytes(b"not a component\n")
    (tmp_path / "key.hex").write_text(SECRET)
    uri = f"soft:{other}?passphrase-env=SC_PASS"
    for args in (
        ["info"],
        ["keygen", "--label", "k"],
        ["import-psk", "--identity", "x", "--psk-file", str(tmp_path / "key.hex")],
    ):
        line = error_line(sc_run(component, *args, uri=uri))
        assert line == f"Error: '{other}' is not a soft Secure Component file"
    assert other.read_bytes() == b"not a component\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f"zz{SECRET}", "the PSK is not hexadecimal"),
        ("", "the PSK is empty"),
    ],
)
def test_a_bad_psk_file_is_a_usage_error_that_never_shows_it(
    tmp_path: FsPath, component: dict[str, str], content: str, message: str
) -> None:
    key = tmp_path / "key.hex"
    key.write_text(content)
    result = sc_run(component, "import-psk", "--identity", "dev-1", "--psk-file", str(key))
    assert message in error_line(result, status=2)


def test_an_existing_label_is_refused_and_the_component_kept(
    tmp_path: FsPath, component: dict[str, str]
) -> None:
    before = (tmp_path / "device.sc").read_bytes()
    result = sc_run(component, "keygen", "--label", "dtls")
    assert error_line(result) == "Error: a key-pair labelled 'dtls' exists already"
    assert (tmp_path / "device.sc").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (["delete", "--label", "nothere"], "no credential 'nothere' in soft:", 1),
        (["delete", "--instance", "/x/y"], "invalid path '/x/y'", 1),
        (["delete", "--instance", "/3"], "--instance must be an object instance path", 2),
        (["delete"], "give exactly one of --label and --instance", 2),
        (["keygen", "--label", "k", "--dns", "a.example"], "need --subject", 2),
    ],
)
def test_bad_sc_arguments_are_one_line(
    component: dict[str, str], args: list[str], message: str, status: int
) -> None:
    assert message in error_line(sc_run(component, *args), status=status)


def test_a_csr_out_that_cannot_be_written_is_one_line(
    tmp_path: FsPath, component: dict[str, str]
) -> None:
    out = tmp_path / "missing" / "x.csr"
    result = sc_run(
        component, "keygen", "--label", "k2", "--subject", "CN=x", "--csr-out", str(out)
    )
    assert str(out) in error_line(result)


def test_a_bad_subject_is_named(component: dict[str, str]) -> None:
    line = error_line(sc_run(component, "keygen", "--label", "k3", "--subject", "garbage"), 2)
    assert line.removeprefix("Error: --subject:").strip()


# -- lwm2m sc write-bootstrap / lwm2m vse --------------------------------------------------------

CARD_FILES = {
    "syntax": ("x = = 1\n", "Invalid value (at line 1, column 5)"),
    "layout": ('layout = "2"\n', "layout: '2' is not 1.1 or 1.0"),
    "unknown-top-level-key": ("colour = 1\n", "unknown top-level keys ['colour']"),
    "unknown-security-key": (
        '[[security]]\nuri = "coaps://h"\ncolour = 1\n',
        "security[0]: unknown keys ['colour']",
    ),
    "missing-uri": ('[[security]]\nmode = "nosec"\nbootstrap = true\n', "uri is required"),
    "bad-hex-key": (
        f'[[security]]\nuri = "coaps://h"\nbootstrap = true\npsk_identity = "i"\n'
        f'psk_key_hex = "{SECRET}zz"\n',
        "security[0]: psk_key_hex is not hexadecimal",
    ),
    "psk-without-key": (
        '[[security]]\nuri = "coaps://h"\nbootstrap = true\npsk_identity = "i"\n',
        "security[0]: PSK mode needs psk_identity(_hex) and psk_key(_hex)",
    ),
    "dm-account-without-ssid": (
        '[[security]]\nuri = "coap://h"\nmode = "nosec"\n',
        "needs short_server_id",
    ),
    "server-without-ssid": ("[[server]]\nlifetime = 5\n", "server[0]: short_server_id is required"),
    "unknown-object": (
        "[[object]]\nid = 99999\n",
        "object 99999 version latest is not in the model",
    ),
    "no-objects": ("", "description: no objects"),
}


@pytest.mark.parametrize("case", sorted(CARD_FILES))
def test_a_bad_card_description_is_one_line_and_keeps_the_card(
    tmp_path: FsPath, card: FsPath, case: str
) -> None:
    text, message = CARD_FILES[case]
    description = write(tmp_path / "bad.toml", text)
    out = tmp_path / "ef.bin"
    before = card.read_bytes()
    line = error_line(
        invoke(["sc", "write-bootstrap", description, "--state", str(card), "--out", str(out)])
    )
    assert message in line
    assert card.read_bytes() == before
    assert not out.exists()


@pytest.mark.parametrize("case", ["unknown-top-level-key", "bad-hex-key", "server-without-ssid"])
def test_a_bad_card_description_error_names_the_file(tmp_path: FsPath, case: str) -> None:
    description = write(tmp_path / "bad.toml", CARD_FILES[case][0])
    assert description in error_line(invoke(["sc", "write-bootstrap", description]))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[security]]\nuri = "coap://h"\nmode = "nosec"\nshort_server_id = "abc"\n', "security"),
        ('[[server]]\nshort_server_id = "x"\n', "server"),
        ("security = 5\n", "security"),
        ('[[object]]\nid = "three"\n', "object"),
    ],
    ids=["security-ssid-string", "server-ssid-string", "security-not-an-array", "object-id-text"],
)
def test_a_wrong_type_in_a_card_description_names_the_key(
    tmp_path: FsPath, card: FsPath, text: str, key: str
) -> None:
    description = write(tmp_path / "bad.toml", text)
    before = card.read_bytes()
    line = error_line(invoke(["sc", "write-bootstrap", description, "--state", str(card)]))
    assert card.read_bytes() == before
    assert re.search(rf"\b{key}(\[0\])?\b", line), line


def test_a_card_description_that_is_not_utf8_is_one_line(tmp_path: FsPath) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[[security]]\nuri = "coap://caf\xe9"\nmode = "nosec"\nbootstrap = true\n')
    assert str(path) in error_line(invoke(["sc", "write-bootstrap", str(path)]))


@pytest.mark.parametrize("uri", ["5", '"not a uri"', '"http://h:1"'])
def test_a_bad_uri_in_a_card_description_is_refused(tmp_path: FsPath, uri: str) -> None:
    description = write(
        tmp_path / "bad.toml", f'[[security]]\nuri = {uri}\nmode = "nosec"\nbootstrap = true\n'
    )
    assert "uri" in error_line(invoke(["sc", "write-bootstrap", description]))


@pytest.mark.parametrize("target", ["directory", "missing"])
def test_a_description_that_is_not_a_file_is_a_usage_error(tmp_path: FsPath, target: str) -> None:
    path = tmp_path if target == "directory" else tmp_path / "missing.toml"
    line = error_line(invoke(["sc", "write-bootstrap", str(path)]), status=2)
    assert f"Invalid value for 'DESCRIPTION': File '{path}'" in line


def test_vse_init_keeps_an_existing_card(card: FsPath) -> None:
    before = card.read_bytes()
    assert error_line(invoke(["vse", "init", "--state", str(card)])) == (
        f"Error: {card} exists (use --force)"
    )
    assert card.read_bytes() == before
    assert "Invalid value for '--state'" in error_line(
        invoke(["vse", "init", "--state", str(card.parent)]), status=2
    )


def test_an_endpoint_given_twice_with_psk_is_refused_naming_it() -> None:
    """The security store keeps one entry per endpoint: a second ``--psk`` (or ``--rpk``) for
    the same endpoint would silently replace the first, so it is a usage error naming the
    endpoint and never the keys."""
    key1, key2 = "11" * 16, "22" * 16
    result = invoke(
        ["server", "--bind", "127.0.0.1:0", "--psk", f"a:id:{key1}", "--psk", f"a:id2:{key2}"]
    )
    line = error_line(result, status=2)
    assert "endpoint 'a' is given twice" in line
    assert key1 not in result.output
    assert key2 not in result.output
