"""A private ``redis-server`` for tests: started on a Unix socket in a temporary directory (no
TCP port, nothing persisted), ready once it answers PING, stopped by :meth:`RedisServer.stop`."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from lwm2m.testing import require_component

READY_WITHIN = 10.0
"""Seconds a starting server has to answer PING."""


def redis_server_binary() -> str:
    """The ``redis-server`` program; skips the test (fails it under ``CI=true``) without one."""
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")
    require_component(binary is not None, "redis-server (apt-get install redis-server)")
    assert binary is not None
    return binary


class RedisServer:
    """One ``redis-server`` process on a Unix socket."""

    def __init__(self, binary: str, *extra: str) -> None:
        """``extra``: further ``redis-server`` arguments (e.g. ``--requirepass``)."""
        self._extra = extra
        self._directory = tempfile.TemporaryDirectory(prefix="lwm2m-redis-")
        self.socket = Path(self._directory.name) / "redis.sock"
        self.url = f"unix://{self.socket}"
        self._process = subprocess.Popen(
            [
                binary,
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._directory.name,
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def client(self) -> redis.Redis:
        """A synchronous client (for planting and inspecting raw keys)."""
        password = self._extra_value("--requirepass")
        return redis.Redis(unix_socket_path=str(self.socket), password=password)

    def _extra_value(self, name: str) -> str | None:
        args = self._extra
        return args[args.index(name) + 1] if name in args else None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN
        with self.client() as client:
            while True:
                if self._process.poll() is not None:
                    output = self._process.stdout.read() if self._process.stdout else b""
                    raise RuntimeError(f"redis-server exited: {output.decode(errors='replace')}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.01)  # polling interval, not a wait for a race

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=READY_WITHIN)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._directory.cleanup()
