"""``lwm2m simulate``: ``run_simulation`` in this process against a real server (its progress
and final lines, a clean stop on SIGINT with every device de-registered), a start that fails,
and one-line errors for bad flags. Every wait is bounded; sockets bind port 0 on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from lwm2m.cli.main import main
from lwm2m.cli.simulate import run_simulation
from lwm2m.io.lwm2m_server import LwM2MServer, dtls_layer_from_store
from lwm2m.sim import FleetConfig
from lwm2m.store.sqlite import SqliteSecurityStore

from .conftest import TIMEOUT

CLOCK = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ")


class Screen(io.StringIO):
    """What the command prints; :meth:`expect` waits (bounded) for a matching line."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0
        self.changed = asyncio.Event()
        self.console = Console(file=self, width=500, no_color=True, highlight=False, soft_wrap=True)

    def write(self, text: str) -> int:
        written = super().write(text)
        self.changed.set()
        return written

    @property
    def lines(self) -> list[str]:
        text = self.getvalue()
        return [CLOCK.sub("", line) for line in text[: text.rfind("\n") + 1].splitlines()]

    async def expect(self, pattern: str) -> str:
        regex = re.compile(pattern)
        async with asyncio.timeout(TIMEOUT):
            while True:
                lines = self.lines
                while self.seen < len(lines):
                    self.seen += 1
                    if regex.search(lines[self.seen - 1]):
                        return lines[self.seen - 1]
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    server = LwM2MServer(expiry_interval=None)
    await server.start(("127.0.0.1", 0))
    try:
        yield server
    finally:
        await server.stop()


def uri(server: LwM2MServer) -> str:
    host, port = server.local_address[:2]
    return f"coap://{host}:{port}"


async def test_simulate_prints_progress_and_deregisters_on_sigint(server: LwM2MServer) -> None:
    screen = Screen()
    config = FleetConfig(uri(server), count=6, rate=20, lifetime=60, queue_mode=True)
    task = asyncio.get_running_loop().create_task(
        run_simulation(config, console=screen.console, progress=0.05)
    )
    try:
        first = await screen.expect(r"^simulate\s")
        assert "6 devices sim-0..sim-5 -> coap://127.0.0.1:" in first
        assert "at 20/s, lifetime 60s, queue mode, bound to 127.0.0.1" in first
        await screen.expect(r"^progress\s+registered \d/6, registering")  # still starting
        await screen.expect(r"^progress\s+registered 6/6$")
        assert len(await server.registrations()) == 6
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the command's handler sets its stop
        async with asyncio.timeout(TIMEOUT):
            await task
    finally:
        task.cancel()
    await screen.expect(r"^stopping\s+de-registering every device$")
    assert screen.lines[-1].split(None, 1) == ["stopped", "registered 0/6, deregistered 6"]
    assert await server.registrations() == []


async def test_simulate_with_a_stop_event_and_a_failed_start(server: LwM2MServer) -> None:
    screen = Screen()
    stop = asyncio.Event()
    config = FleetConfig(uri(server), count=3, rate=1000, bind_host="192.0.2.1")
    with pytest.raises(click.ClickException, match=r"device sim-0: cannot bind 192\.0\.2\.1:0"):
        async with asyncio.timeout(TIMEOUT):
            await run_simulation(config, console=screen.console, progress=0.05, stop=stop)
    assert screen.lines[-1].split(None, 1) == ["stopped", "registered 0/3, stopped 1, idle 2"]


async def test_simulate_stops_on_its_stop_event(server: LwM2MServer) -> None:
    screen = Screen()
    stop = asyncio.Event()
    config = FleetConfig(uri(server), count=2, rate=1000)
    task = asyncio.get_running_loop().create_task(
        run_simulation(config, console=screen.console, progress=0.05, stop=stop)
    )
    await screen.expect(r"^progress\s+registered 2/2$")
    stop.set()
    async with asyncio.timeout(TIMEOUT):
        await task
    assert screen.lines[-1].split(None, 1) == ["stopped", "registered 0/2, deregistered 2"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--count", "0"], "Error: count must be at least 1, not 0"),
        (["--count", "2", "--rate", "0"], "Error: rate must be above 0 registrations per second"),
        (["--count", "2", "--rate", "-3"], "Error: rate must be above 0"),
        (["--count", "2", "--lifetime", "0"], "Error: lifetime must be at least 1 second"),
        (["--count", "2", "--server", "http://h:1"], "unsupported URI scheme 'http'"),
        (["--count", "2", "--server", "coap+tcp://h"], "coap:// or coaps:// (DTLS-PSK)"),
        (["--count", "2", "--server", "coap://h:99999"], "Error: server URI 'coap://h:99999'"),
        (
            ["--count", "2", "--bind", "192.0.2.1", "--progress", "0.05"],
            "Error: device sim-0: cannot bind 192.0.2.1:0",
        ),
    ],
)
def test_bad_flags_are_one_line_errors(flags: list[str], message: str) -> None:
    args = ["simulate", "--server", "coap://127.0.0.1:9", *flags]
    if flags.count("--server"):
        args = ["simulate", *flags]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, result.output
    assert message in lines[0], result.output
    assert "Traceback" not in result.output


def test_missing_flags_are_usage_errors() -> None:
    result = CliRunner().invoke(main, ["simulate", "--count", "3"])
    assert result.exit_code == 2
    assert "Missing option '--server'" in result.output
    result = CliRunner().invoke(main, ["simulate", "--server", "coap://h", "--count", "x"])
    assert result.exit_code == 2
    assert "'x' is not a valid integer" in result.output


async def test_a_psk_fleet_shares_its_keys_through_the_servers_sqlite_store(tmp_path: Path) -> None:
    """``lwm2m simulate --server coaps://… --security-store sqlite:PATH`` with a server reading
    the same SQLite file: the keys go in, every device registers over DTLS, the keys go out."""
    path = str(tmp_path / "security.db")
    server_store = await SqliteSecurityStore.open(path)
    server = LwM2MServer(
        expiry_interval=None,
        security_store=server_store,
        security=dtls_layer_from_store(server_store),
    )
    await server.start(("127.0.0.1", 0))
    host, port = server.local_address[:2]
    screen = Screen()
    stop = asyncio.Event()
    config = FleetConfig(f"coaps://{host}:{port}", count=3, rate=1000)
    task = asyncio.get_running_loop().create_task(
        run_simulation(
            config, console=screen.console, progress=0.05, stop=stop, security_store=path
        )
    )
    try:
        await screen.expect(r"^progress\s+registered 3/3$")
        assert sorted(e.endpoint for e in await server_store.all()) == ["sim-0", "sim-1", "sim-2"]
        registrations = await server.registrations()
        assert all(r.identity is not None for r in registrations)  # authenticated over DTLS
        stop.set()
        async with asyncio.timeout(TIMEOUT):
            await task
        assert screen.lines[-1].split(None, 1) == ["stopped", "registered 0/3, deregistered 3"]
        assert await server_store.all() == []  # the fleet's keys were removed
    finally:
        task.cancel()
        await server.stop()
        await server_store.close()


def test_a_psk_fleet_needs_a_shared_security_store() -> None:
    runner = CliRunner()
    missing = runner.invoke(
        main, ["simulate", "--server", "coaps://127.0.0.1:5684", "--count", "1"]
    )
    assert missing.exit_code == 2
    assert "a coaps:// fleet needs --security-store" in " ".join(missing.output.split())
    memory = runner.invoke(
        main,
        [
            "simulate",
            "--server",
            "coaps://127.0.0.1:5684",
            "--count",
            "1",
            "--security-store",
            "memory",
        ],
    )
    assert memory.exit_code == 2
    assert "memory is not shared with a server" in memory.output
