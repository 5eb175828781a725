"""Failures mid-operation through pcscd: the card vanishing during a read (VSE process killed
or stopped), tampered secure-messaging MACs. Each gives one clear error and no partial result."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lwm2m.model import ObjectInstance, ObjectNode, ResourceType, SingleResource
from lwm2m.secure.pcsc import (
    Scp03Error,
    StaticKeys,
    TransportError,
    build_bootstrap_file,
    read_smartcard_bootstrap,
)
from lwm2m.secure.pcsc.errors import CardRemoved
from lwm2m.vse.state import VseState, save_state
from vse.pcsc_env import READER_1, open_transport, script

GP_TEST_KEYS = StaticKeys.from_hex(*["404142434445464748494A4B4C4D4E4F"] * 3)


def big_bootstrap() -> bytes:
    """A 3 KB file: many server URIs, so the read takes a dozen READ BINARY commands."""
    instances = [
        ObjectInstance(
            i,
            [
                SingleResource(
                    0, ResourceType.STRING, f"coaps://server-{i}.example.com:5684/" + "x" * 60
                ),
                SingleResource(1, ResourceType.BOOLEAN, False),
                SingleResource(2, ResourceType.INTEGER, 3),
                SingleResource(3, ResourceType.OPAQUE, b""),
                SingleResource(4, ResourceType.OPAQUE, b""),
                SingleResource(5, ResourceType.OPAQUE, b""),
                SingleResource(10, ResourceType.INTEGER, 100 + i),
            ],
        )
        for i in range(30)
    ]
    return build_bootstrap_file([ObjectNode(0, instances)])


def state_file(tmp_path: Path, **pkcs15: object) -> Path:
    state = VseState.default()
    state.pkcs15.bootstrap = big_bootstrap().hex()
    for key, value in pkcs15.items():
        setattr(state.pkcs15, key, value)
    path = tmp_path / "vse1.json"
    save_state(state, path)
    return path


def test_card_removed_mid_read_process_exit(pcscd: None, tmp_path: Path) -> None:
    """The VSE process dies (as a pulled card) at the 20th APDU, inside the bootstrap read."""
    path = state_file(tmp_path)
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lwm2m.vse",
            "--port",
            "35964",
            "--state",
            str(path),
            "--ready-file",
            str(ready),
            "--fail-after",
            "20",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        transport = open_transport(READER_1, timeout=15)
        try:
            with pytest.raises(TransportError) as removed:
                read_smartcard_bootstrap(transport.transmit)
            assert isinstance(removed.value, CardRemoved | TransportError)
            assert "APDU" in str(removed.value) or "card" in str(removed.value).lower()
        finally:
            transport.close()
        assert proc.wait(10) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_card_stopped_during_reads_then_back(
    pcscd: None, pcsc_env_dir: Path, tmp_path: Path
) -> None:
    """stop-vse (SIGTERM) while reads run in a loop: the loop ends with a TransportError; a
    restarted card serves the complete, correct file again."""
    path = state_file(tmp_path)
    script("start-vse", "--port", "35964", "--state", str(path), env_dir=pcsc_env_dir)
    results: list[object] = []
    errors: list[BaseException] = []
    started = threading.Event()

    def reader() -> None:
        transport = open_transport(READER_1)
        try:
            while True:
                results.append(read_smartcard_bootstrap(transport.transmit))
                started.set()
        except TransportError as exc:
            errors.append(exc)
        finally:
            started.set()
            transport.close()

    thread = threading.Thread(target=reader)
    thread.start()
    assert started.wait(15)
    script("stop-vse", "--port", "35964", env_dir=pcsc_env_dir)
    thread.join(30)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], TransportError)
    expected = big_bootstrap()
    assert all(r.size == len(expected) for r in results)  # type: ignore[attr-defined]
    script("start-vse", "--port", "35964", "--state", str(path), env_dir=pcsc_env_dir)
    try:
        transport = open_transport(READER_1)
        try:
            again = read_smartcard_bootstrap(transport.transmit)
            assert again.size == len(expected)
        finally:
            transport.close()
    finally:
        script("stop-vse", "--port", "35964", env_dir=pcsc_env_dir)


def test_tampered_r_mac_through_pcsc(pcscd: None, pcsc_env_dir: Path, tmp_path: Path) -> None:
    """A response whose R-MAC does not verify (one bit flipped on the way) is rejected; the
    result is an Scp03Error, not data."""
    path = state_file(tmp_path, require_secure_channel=True)
    script("start-vse", "--port", "35964", "--state", str(path), env_dir=pcsc_env_dir)
    try:
        transport = open_transport(READER_1)
        authenticated = False

        def flipping(apdu: bytes) -> bytes:
            nonlocal authenticated
            response = transport.transmit(apdu)
            authenticated = authenticated or apdu[1] == 0x82
            # flip a bit in the first data-carrying GET RESPONSE after EXTERNAL AUTHENTICATE
            if authenticated and apdu[1] == 0xC0 and len(response) > 10:
                authenticated = False
                return bytes([response[0] ^ 1]) + response[1:]
            return response

        try:
            with pytest.raises(Scp03Error, match="R-MAC"):
                read_smartcard_bootstrap(flipping, scp03_keys=GP_TEST_KEYS)
            good = read_smartcard_bootstrap(transport.transmit, scp03_keys=GP_TEST_KEYS)
            assert good.secured
        finally:
            transport.close()
    finally:
        script("stop-vse", "--port", "35964", env_dir=pcsc_env_dir)


def test_script_status_and_idempotent_start(pcscd: None, pcsc_env_dir: Path) -> None:
    again = script("start-pcscd", env_dir=pcsc_env_dir)
    assert "already running" in again.stderr
    status = script("status", env_dir=pcsc_env_dir)
    assert "pcscd: running" in status.stdout


def test_script_pid_helpers(tmp_path: Path) -> None:
    """The pid-file helpers strip NUL bytes and treat zombies and dead pids as not running."""
    pidfile = tmp_path / "pcscd.pid"
    pidfile.write_bytes(b"123\x00\x00\n")
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [
            "bash",
            "-c",
            f"source {repo}/scripts/pcsc-env.sh; echo $(read_pid {pidfile}); "
            "alive 999999999 && echo alive || echo dead; alive $$ && echo self-alive",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={"PCSC_ENV_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.split() == ["123", "dead", "self-alive"]
    assert json.dumps(out.stderr) is not None
