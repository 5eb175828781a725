"""``run_server``, ``run_bootstrap_server`` and ``run_client`` in this process (so coverage sees
them): the lines they print, the clean stop, a port in use, and keys never shown or logged.

Every wait is bounded; the sockets bind port 0 on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import signal
import socket
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path as FsPath
from typing import Any

import click
import pytest
from rich.console import Console

from lwm2m.cli.bootstrap import load_configs, load_file, run_bootstrap_server
from lwm2m.cli.client import build_client_config, run_client
from lwm2m.cli.server import (
    DtlsOptions,
    load_registry,
    parse_psk,
    run_server,
    stop_on_signals,
)
from lwm2m.model import Path

from .conftest import TIMEOUT

LISTENING = r"listening on coap://127\.0\.0\.1:(\d+)"
SECURE_LISTENING = r"listening on coaps://127\.0\.0\.1:(\d+)"
CLOCK = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ")


class Screen(io.StringIO):
    """What a command prints; :meth:`expect` waits (bounded) for a line matching a regex."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.seen = 0
        self.changed = asyncio.Event()
        self.console = Console(file=self, width=500, no_color=True, highlight=False, soft_wrap=True)

    def write(self, text: str) -> int:
        written = super().write(text)
        self.changed.set()
        return written

    @property
    def lines(self) -> list[str]:
        """Complete lines, the clock of the event lines removed."""
        text = self.getvalue()
        complete = text[: text.rfind("\n") + 1]
        return [CLOCK.sub("", line) for line in complete.splitlines()]

    async def expect(self, pattern: str, within: float = TIMEOUT) -> re.Match[str]:
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(within):
                while True:
                    lines = self.lines
                    while self.seen < len(lines):
                        line = lines[self.seen]
                        self.seen += 1
                        match = regex.search(line)
                        if match:
                            return match
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"{self.name} printed no /{pattern}/ within {within} s:\n" + self.getvalue()
            ) from None


class Running:
    """A command coroutine run as a task with its own stop event."""

    def __init__(self, name: str) -> None:
        self.screen = Screen(name)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self.task = asyncio.get_running_loop().create_task(coroutine)

    async def finish(self) -> None:
        """Set the stop event and wait (bounded) for the command to return."""
        self.stop.set()
        assert self.task is not None
        async with asyncio.timeout(TIMEOUT):
            await self.task


@pytest.fixture
async def running() -> AsyncIterator[Any]:
    """``running(name)`` makes a :class:`Running`; whatever still runs at the end is stopped."""
    made: list[Running] = []

    def make(name: str) -> Running:
        made.append(Running(name))
        return made[-1]

    yield make
    for item in reversed(made):
        if item.task is not None and not item.task.done():
            item.stop.set()
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(TIMEOUT):
                    await item.task
            if not item.task.done():  # pragma: no cover - only when a test already failed
                item.task.cancel()
                with contextlib.suppress(BaseException):
                    await item.task


def client_config(endpoint: str, **flags: Any) -> Any:
    return build_client_config(endpoint=endpoint, bind="127.0.0.1:0", **flags)


async def test_server_and_client_print_the_whole_lifecycle(running: Any) -> None:
    server = running("server")
    server.start(
        run_server(
            ("127.0.0.1", 0),
            store_path=None,
            registry=load_registry(()),
            observe=(Path(3, 0, 9), Path(42, 0, 1)),
            console=server.screen.console,
            stop=server.stop,
        )
    )
    port = (await server.screen.expect(LISTENING + r" \(store: memory\) — Ctrl-C to stop$")).group(
        1
    )
    client = running("client")
    config = client_config("inproc-1", server=f"coap://127.0.0.1:{port}", lifetime=120)
    client.start(run_client(config, console=client.screen.console, tick=0.05, stop=client.stop))
    await client.screen.expect(
        rf"^LwM2M client inproc-1 -> coap://127\.0\.0\.1:{port} \(server 101\); "
        r"objects /0 /1 /2 /3 /4 /5 /6 /7$"
    )
    await client.screen.expect(r"^on udp 127\.0\.0\.1:\d+ — Ctrl-C to deregister$")
    registered = await server.screen.expect(
        r"^registered +inproc-1 (/rd/\S+) lifetime=120s binding=UQ? lwm2m=1\.\d "
        r"from=127\.0\.0\.1:\d+ objects: (.*)$"
    )
    location = registered.group(1)
    assert "/3/0 /4/0 /5/0 /6/0 /7/0" in registered.group(2)
    await client.screen.expect(rf"^registered +server=101 {location}$")
    # --observe: each path once the client registered; a path it lacks is reported, not fatal
    observed = {
        m.group(1): m.group(2)
        for m in [
            await server.screen.expect(r"^(?:observing|observe-failed) +inproc-1 (/\S+) (.*)$"),
            await server.screen.expect(r"^(?:observing|observe-failed) +inproc-1 (/\S+) (.*)$"),
        ]
    }
    assert re.fullmatch(r"2\.05 Content.* /3/0/9 = \d+", observed["/3/0/9"]), observed
    assert "4.04" in observed["/42/0/1"], observed
    # the battery drains every tick: the observer gets notifications
    await server.screen.expect(rf"^notification +inproc-1 {location} /3/0/9 = \d+ \[.+\]$")
    await client.finish()
    tail = client.screen.lines[client.screen.lines.index("deregistering") :]
    assert tail == ["deregistering", "deregistered   server=101", "stopped", "client stopped"]
    await server.screen.expect(rf"^deregistered +inproc-1 {location}$")
    await server.finish()
    assert server.screen.lines[-2:] == ["stopping", "server stopped"]


async def test_sqlite_store_restores_registrations_across_restarts(
    running: Any, tmp_path: FsPath
) -> None:
    db = str(tmp_path / "registrations.db")
    first = running("server 1")
    registry = load_registry(())
    first.start(
        run_server(
            ("127.0.0.1", 0),
            store_path=db,
            registry=registry,
            observe=(),
            console=first.screen.console,
            stop=first.stop,
        )
    )
    port = int(
        (await first.screen.expect(LISTENING + rf" \(store: sqlite:{re.escape(db)}\)")).group(1)
    )
    client = running("client")
    config = client_config("inproc-db", server=f"coap://127.0.0.1:{port}")
    client.start(run_client(config, console=client.screen.console, tick=0, stop=client.stop))
    location = (await first.screen.expect(r"^registered +inproc-db (/rd/\S+)")).group(1)
    await client.screen.expect(r"^registered +server=101")
    await first.finish()
    again = running("server 2")
    again.start(
        run_server(
            ("127.0.0.1", port),
            store_path=db,
            registry=registry,
            observe=(),
            console=again.screen.console,
            stop=again.stop,
        )
    )
    await again.screen.expect(
        LISTENING + rf" \(store: sqlite:{re.escape(db)}, 1 registrations restored\)"
    )
    await client.finish()
    await again.screen.expect(rf"^deregistered +inproc-db {location}$")
    await again.finish()


async def test_psk_over_coaps_never_shows_or_logs_the_key(
    running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = os.urandom(16)
    server = running("server")
    dtls = DtlsOptions(entries=[parse_psk(f"inproc-psk:psk-id:{key.hex()}")])
    server.start(
        run_server(
            ("127.0.0.1", 0),
            store_path=None,
            registry=load_registry(()),
            observe=(),
            console=server.screen.console,
            stop=server.stop,
            dtls=dtls,
        )
    )
    port = (await server.screen.expect(SECURE_LISTENING + r" .*; DTLS: PSK 1, RPK 0\)")).group(1)
    uri = f"coaps://127.0.0.1:{port}"
    good = running("client")
    config = client_config("inproc-psk", server=uri, psk_identity="psk-id", psk_key=key)
    good.start(run_client(config, console=good.screen.console, tick=0, stop=good.stop))
    await server.screen.expect(r"^registered +inproc-psk /rd/")
    await good.screen.expect(r"^registered +server=101 /rd/")
    # the right key but another endpoint name: 4.00, reported without the key
    intruder = running("intruder")
    config = client_config("inproc-other", server=uri, psk_identity="psk-id", psk_key=key)
    intruder.start(run_client(config, console=intruder.screen.console, tick=0, stop=intruder.stop))
    await intruder.screen.expect(r"^register-fail +server=101 .*4\.00")
    assert "inproc-other" not in "\n".join(server.screen.lines)
    await intruder.finish()
    await good.finish()
    await server.finish()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "inproc-other" in logged  # the mismatch is logged...
    for text in (server.screen.getvalue(), good.screen.getvalue(), intruder.screen.getvalue()):
        assert key.hex() not in text.lower()
    assert key.hex() not in logged.lower()  # ...and no key is
    assert repr(key) not in logged


async def test_bootstrap_over_coaps_prints_steps_but_no_written_key(
    running: Any, tmp_path: FsPath
) -> None:
    bs_key, dm_key = os.urandom(16), os.urandom(16)
    registry = load_registry(())
    server = running("server")
    server.start(
        run_server(
            ("127.0.0.1", 0),
            store_path=None,
            registry=registry,
            observe=(),
            console=server.screen.console,
            stop=server.stop,
        )
    )
    port = (await server.screen.expect(LISTENING)).group(1)
    config_file = tmp_path / "bootstrap.toml"
    config_file.write_text(
        f"""
[endpoints."inproc-bs".bootstrap_security]
mode = "psk"
psk_identity = "bs-id"
psk_key = "hex:{bs_key.hex()}"
[[endpoints."inproc-bs".security]]
uri = "coap://127.0.0.1:{port}"
psk_key = "hex:{dm_key.hex()}"
short_server_id = 7
[[endpoints."inproc-bs".servers]]
short_server_id = 7
lifetime = 99
[endpoints."plain-one"]
"""
    )
    loaded = load_file(str(config_file), registry)
    assert sorted(load_configs(str(config_file), registry)) == ["inproc-bs", "plain-one"]
    assert (loaded.secured, loaded.plain) == (True, True)
    bootstrap = running("bootstrap")
    bootstrap.start(
        run_bootstrap_server(
            ("127.0.0.1", 0),
            loaded.configs,
            registry=registry,
            console=bootstrap.screen.console,
            stop=bootstrap.stop,
            dtls=DtlsOptions(entries=list(loaded.security)),
        )
    )
    bs_port = (
        await bootstrap.screen.expect(
            SECURE_LISTENING + r" \(2 endpoints: inproc-bs, plain-one; "
            r"DTLS: PSK 1, RPK 0, NoSec entries\) — Ctrl-C to stop$"
        )
    ).group(1)
    client = running("client")
    config = client_config(
        "inproc-bs",
        bootstrap=f"coaps://127.0.0.1:{bs_port}",
        psk_identity="bs-id",
        psk_key=bs_key,
    )
    client.start(run_client(config, console=client.screen.console, tick=0, stop=client.stop))
    await client.screen.expect(r"\(bootstrap\); objects")
    await bootstrap.screen.expect(
        r"^session +inproc-bs 4 steps: delete /, write /0/1, write /1/0, finish$"
    )
    await bootstrap.screen.expect(r"^step 1/4 +inproc-bs delete / -> 2\.02 Deleted$")
    await bootstrap.screen.expect(r"^step 2/4 +inproc-bs write /0/1 -> 2\.04 Changed$")
    await bootstrap.screen.expect(r"^step 4/4 +inproc-bs finish -> 2\.04 Changed$")
    await bootstrap.screen.expect(r"^finished +inproc-bs \(the client registers next\)$")
    await client.screen.expect(r"^bootstrapped +source=server$")
    await client.screen.expect(r"^registered +server=7 /rd/")
    await server.screen.expect(r"^registered +inproc-bs /rd/\S+ lifetime=99s")
    await client.finish()
    await bootstrap.finish()
    assert bootstrap.screen.lines[-2:] == ["stopping", "bootstrap server stopped"]
    await server.finish()
    for screen in (server.screen, bootstrap.screen, client.screen):
        for key in (bs_key, dm_key):
            assert key.hex() not in screen.getvalue().lower()


@pytest.fixture
def taken_port() -> Any:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        yield taken.getsockname()[1]


async def test_a_port_in_use_is_the_shared_cannot_bind_message(
    taken_port: int, tmp_path: FsPath
) -> None:
    registry = load_registry(())
    console = Console(file=io.StringIO())
    expected = f"cannot bind 127.0.0.1:{taken_port}: Address already in use"
    with pytest.raises(click.ClickException) as server_error:
        await run_server(
            ("127.0.0.1", taken_port),
            store_path=str(tmp_path / "r.db"),
            registry=registry,
            observe=(),
            console=console,
            stop=asyncio.Event(),
            dtls=DtlsOptions(entries=[parse_psk("ep::00ff")]),
        )
    assert server_error.value.message == expected
    with pytest.raises(click.ClickException) as bootstrap_error:
        await run_bootstrap_server(
            ("127.0.0.1", taken_port), {}, registry=registry, console=console, stop=asyncio.Event()
        )
    assert bootstrap_error.value.message == expected
    config = build_client_config(endpoint="e", bind=f"127.0.0.1:{taken_port}")
    with pytest.raises(click.ClickException) as client_error:
        await run_client(config, console=console, tick=0, stop=asyncio.Event())
    assert client_error.value.message == expected


async def test_a_bad_store_fails_before_serving(tmp_path: FsPath) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 64)
    console = Console(file=io.StringIO())
    with pytest.raises(click.ClickException) as error:
        await run_server(
            ("127.0.0.1", 0),
            store_path=str(garbage),
            registry=load_registry(()),
            observe=(),
            console=console,
            stop=asyncio.Event(),
            dtls=DtlsOptions(entries=[parse_psk("ep::00ff")]),
        )
    assert error.value.message == f"--store: cannot open {garbage}: file is not a database"
    assert "listening" not in console.file.getvalue()  # type: ignore[attr-defined]


async def test_stop_on_signals_sets_the_event_once_and_restores_the_handlers() -> None:
    stop = asyncio.Event()
    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals(stop):
        assert signal.getsignal(signal.SIGINT) is not before
        os.kill(os.getpid(), signal.SIGINT)
        async with asyncio.timeout(TIMEOUT):
            await stop.wait()
        # the handlers stay: a second signal ends the process (tested in a real process,
        # tests/cli/test_cli_usability_campaign.py)
        assert signal.getsignal(signal.SIGINT) is not before
    assert stop.is_set()
    with stop_on_signals(asyncio.Event()):
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


async def test_an_observe_that_fails_is_one_red_line_not_a_crash() -> None:
    from lwm2m.cli.server import _Observer
    from lwm2m.io.lwm2m_server import LwM2MServer

    screen = Screen("server")
    observer = _Observer(LwM2MServer(registry=load_registry(())), (Path(3, 0, 9),), screen.console)
    await observer._observe("nobody")
    (line,) = screen.lines
    assert line == "observe-failed nobody /3/0/9 nobody: not registered"
    await observer.close()
