"""The PC/SC test environment as pytest fixtures: pcscd with the vpcd reader (started by
``scripts/pcsc-env.sh``, stopped only if this session started it) and virtual secure elements
serving the vpcd ports. Every card exchange of these tests goes through pcscd and pyscard.

Missing pieces (pcscd, vsmartcard-vpcd, pyscard) skip the tests on a developer machine and fail
them under CI=true (``require`` of tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwm2m.testing import require_component

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "pcsc-env.sh"
READER_0 = "Virtual PCD 00 00"
READER_1 = "Virtual PCD 00 01"


_require = require_component


def _have_pyscard() -> bool:
    from lwm2m.secure.pcsc.transport import missing_modules

    return not missing_modules()


def script(*args: str, env_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PCSC_ENV_DIR=str(env_dir), PYTHON=sys.executable)
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


@pytest.fixture(scope="session")
def pcsc_env_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pcsc-env")


@pytest.fixture(scope="session")
def pcscd(pcsc_env_dir: Path) -> Iterator[None]:
    """pcscd running with the vpcd reader for the whole session."""
    _require(shutil.which("pcscd") is not None, "pcscd (apt-get install pcscd)")
    _require(Path("/etc/reader.conf.d/vpcd").exists(), "vsmartcard-vpcd (apt-get install)")
    _require(_have_pyscard(), "pyscard (pip install 'lwm2m[pcsc]')")
    result = script("start-pcscd", env_dir=pcsc_env_dir, check=False)
    if result.returncode != 0:
        pytest.fail(f"pcscd did not start: {result.stderr}")
    try:
        yield
    finally:
        script("stop", env_dir=pcsc_env_dir, check=False)


class RunningVse:
    """A VSE served from a thread of the test process (so coverage sees it)."""

    def __init__(self, state_path: Path, port: int) -> None:
        from lwm2m.vse.server import VseServer

        self.state_path = state_path
        self.port = port
        self.server = VseServer(state_path, port=port)
        self.server.connect(10.0)
        self.thread = threading.Thread(target=self.server.serve, name=f"vse-{port}", daemon=True)
        self.thread.start()
        if not self.server.ready.wait(15.0):
            self.stop()
            pytest.fail(f"pcscd did not read the VSE card on port {port} within 15 s")
        try:
            self.wait_present()
        except Exception:
            self.stop()
            raise

    @property
    def reader(self) -> str:
        return READER_0 if self.port == 35963 else READER_1

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(10.0)

    def wait_present(self, timeout: float = 15.0) -> None:
        """Until pcscd reports the card present in its reader (bounded): ``ready`` says pcscd
        read the card, its reader state may follow a poll later."""
        open_transport(self.reader, timeout).close()

    def wait_absent(self, timeout: float = 10.0) -> None:
        """Until pcscd notices the card is gone (bounded)."""
        from lwm2m.secure.pcsc.errors import TransportError
        from lwm2m.secure.pcsc.transport import PcscTransport

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            transport = PcscTransport(self.reader)
            try:
                transport.connect()
            except TransportError:
                return
            finally:
                transport.close()
            time.sleep(0.05)
        raise AssertionError("card still present")


def start_vse(state_path: Path, port: int = 35963) -> RunningVse:
    return RunningVse(state_path, port)


def open_transport(reader: str = READER_0, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    from lwm2m.secure.pcsc.transport import PcscTransport

    transport = PcscTransport(reader)
    transport.connect(timeout)
    return transport
