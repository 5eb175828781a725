"""Helpers of the command-line tests: ``lwm2m`` as a subprocess whose lines are awaited with
bounded timeouts, and killed on teardown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest

TIMEOUT = 10.0
"""Bound on every wait for a line or an exit (a subprocess imports the package first)."""


def lwm2m_command() -> list[str]:
    """How to run the ``lwm2m`` entry point of this environment."""
    script = Path(sys.executable).with_name("lwm2m")
    if script.exists():
        return [os.fspath(script)]
    found = shutil.which("lwm2m")  # pragma: no cover - an installed entry point elsewhere
    if found:  # pragma: no cover
        return [found]
    return [sys.executable, "-c", "from lwm2m.cli.main import main; main()"]  # pragma: no cover


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


class Process:
    """A running ``lwm2m`` subcommand; :meth:`expect` reads lines until one matches."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.lines: list[str] = []

    @property
    def transcript(self) -> str:
        return f"--- {self.name} ---\n" + "\n".join(self.lines)

    async def expect(self, pattern: str, within: float = TIMEOUT) -> re.Match[str]:
        """The first new line matching ``pattern`` (a regex, searched)."""
        regex = re.compile(pattern)
        stream = self.process.stdout
        assert stream is not None
        try:
            async with asyncio.timeout(within):
                while True:
                    raw = await stream.readline()
                    if not raw:
                        raise AssertionError(
                            f"{self.name} ended before printing /{pattern}/\n{self.transcript}"
                        )
                    line = raw.decode(errors="replace").rstrip("\n")
                    self.lines.append(line)
                    match = regex.search(line)
                    if match:
                        return match
        except TimeoutError:
            raise AssertionError(
                f"{self.name} printed no /{pattern}/ within {within} s\n{self.transcript}"
            ) from None

    async def interrupt(self) -> int:
        """Ctrl-C: SIGINT, then the exit status (the rest of the output is kept)."""
        self.process.send_signal(signal.SIGINT)
        return await self.wait()

    async def wait(self) -> int:
        """The exit status (bounded by :data:`TIMEOUT`); the rest of the output is kept."""
        stream = self.process.stdout
        assert stream is not None
        async with asyncio.timeout(TIMEOUT):
            rest = await stream.read()
            code = await self.process.wait()
        self.lines.extend(rest.decode(errors="replace").splitlines())
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TIMEOUT):
                    await self.process.wait()


Spawn = Callable[[str, Sequence[str]], Awaitable[Process]]


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """``await spawn(name, args)`` starts ``lwm2m *args``; every process is killed at the end."""
    started: list[Process] = []

    async def start(name: str, args: Sequence[str]) -> Process:
        process = await asyncio.create_subprocess_exec(
            *lwm2m_command(),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=environment(),
        )
        started.append(Process(name, process))
        return started[-1]

    yield start
    for process in started:
        await process.kill()
