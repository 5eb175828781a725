"""``lwm2m demo``: the three parties in one process, every step printed; failures are one line."""

from __future__ import annotations

import re
import subprocess

import pytest
from click.testing import CliRunner

from lwm2m.cli import demo
from lwm2m.cli.main import main
from lwm2m.model import Path

from .conftest import Spawn, environment, lwm2m_command

STEPS = [
    r"1\. Bootstrap \(client-initiated\) and Register",
    r"bootstrap .* step (\d)/\1 +urn:dev:os:lwm2m-demo finish -> 2\.04 Changed",
    r"server .* registered +urn:dev:os:lwm2m-demo /rd/\S+ lifetime=300s",
    r"2\. Read /3/0 \(Device\)",
    r"-> GET /3/0, Accept: senml-cbor \(112\)",
    r"<- 2\.05 Content, senml-cbor \(112\)",
    r"/3/0/0 .* Manufacturer .* 'lwm2m for Python'",
    r"/3/0/9 .* Battery Level .* 100",
    r"3\. Write /1/0/1 \(Lifetime\) and read it back",
    r"-> PUT /1/0/1, Content-Format: tlv \(11542\)",
    r"<- 2\.04 Changed",
    r"<- 2\.05 Content, text \(0\): /1/0/1 = 120",
    r"effect: the client sent an Update with lt=120 \(was 300\)",
    r"4\. Execute /3/0/4",
    r"-> POST /3/0/4",
    r"effect: the device was asked to reboot",
    r"5\. Observe /3/0/9",
    r"-> GET /3/0/9, Observe: 0",
    r"<- 2\.05 Content, senml-cbor \(112\): /3/0/9 = 100",
    r"<- notification 1: 2\.05 Content, senml-cbor \(112\): /3/0/9 = 80",
    r"<- notification 2: 2\.05 Content, senml-cbor \(112\): /3/0/9 = 65",
    r"observation cancelled",
    r"6\. Read-Composite /3/0/9 \+ /1/0/1",
    r"-> FETCH /, Content-Format: senml-json \(110\), Accept: senml-json \(110\)",
    r"/1/0/1 .* Lifetime .* 120",
    r"7\. Send /3/0/9 \+ /3/0/13 \(client -> server\)",
    r"client <- 2\.04 Changed from server 101",
    r"server received 2 values",
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ .* /3/0/9 .* 65",
    r"8\. De-register",
    r"server .* deregistered +urn:dev:os:lwm2m-demo",
    r"demo OK: every step succeeded in \d+\.\d\d s",
]


DTLS = demo.TRANSPORTS["psk"].available() is None


def in_order(text: str, steps: list[str]) -> None:
    position = 0
    for step in steps:
        match = re.compile(step).search(text, position)
        assert match is not None, f"/{step}/ missing after:\n{text[position:]}"
        position = match.end()


async def test_demo_runs_every_step_in_a_subprocess(spawn: Spawn) -> None:
    process = await spawn("demo", ["demo"])
    scheme = "coaps" if DTLS else "coap"  # auto: DTLS-PSK when the DTLS transport is there
    await process.expect(rf"LwM2M server +{scheme}://127\.0\.0\.1:\d+")
    for step in STEPS:  # in this order
        await process.expect(step)
    assert await process.wait() == 0, process.transcript


@pytest.mark.parametrize("security", ["nosec", "psk", "oscore"])
def test_demo_in_process_with_each_transport(security: str) -> None:
    result = CliRunner().invoke(main, ["demo", "--security", security])
    if security == "psk" and not DTLS:
        assert result.exit_code == 1
        (line,) = result.stderr.splitlines()
        assert "needs the DTLS transport" in line
        return
    assert result.exit_code == 0, result.output
    in_order(result.stdout, [rf"LwM2M server +{demo.TRANSPORTS[security].scheme}://", *STEPS])


def test_psk_without_the_dtls_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "_dtls_api", lambda: None)
    result = CliRunner().invoke(main, ["demo", "--security", "psk"])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: demo failed: --security psk needs the DTLS transport")
    # auto falls back to plain CoAP
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "security          plain CoAP over UDP (NoSec)" in result.stdout


def test_a_failing_step_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "EXECUTE_PATH", Path(3, 0, 9))  # readable, not executable
    result = CliRunner().invoke(main, ["demo", "--security", "nosec"])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: demo failed: step 4 (Execute /3/0/9")
    assert "4.05" in line
    assert "De-register" not in result.stdout  # it stopped at the failing step


def test_a_step_that_gets_no_answer_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "STEP_TIMEOUT", 0.2)
    monkeypatch.setattr(demo, "BATTERY_LEVELS", (100,))  # no change: no notification
    result = CliRunner().invoke(main, ["demo", "--security", "nosec"])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "notification 1: no answer within 0.2 s" in line


def test_the_formats_tour_is_kept() -> None:
    result = CliRunner().invoke(main, ["demo", "--formats"])
    assert result.exit_code == 0, result.output
    assert "content formats" in result.stdout
    assert "senml-cbor" in result.stdout
    assert "CodecError" in result.stdout


def test_a_reader_that_goes_away_does_not_break_the_demo() -> None:
    """``lwm2m demo | head -1``: no traceback, the demo finishes and cleans up."""
    process = subprocess.Popen(
        [*lwm2m_command(), "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
    )
    try:
        assert process.stdout is not None
        assert b"lwm2m demo" in process.stdout.readline()
        process.stdout.close()
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


def test_demo_over_oscore_provisions_21_and_never_prints_the_secret() -> None:
    """``--security oscore``: the bootstrap server writes /21/1 before /0/1, both links run
    OSCORE over coap://, the cancel is reactive, and the demo's master secret is not shown."""
    result = CliRunner().invoke(main, ["demo", "--security", "oscore"])
    assert result.exit_code == 0, result.output
    in_order(
        result.stdout,
        [
            r"security +OSCORE \(RFC 8613\)",
            r"write /21/1 -> 2\.04 Changed",
            r"write /0/1 -> 2\.04 Changed",
            r"observation cancelled \(OSCORE: forgotten",
        ],
    )
    oscore = demo.TRANSPORTS["oscore"].oscore
    assert oscore is not None
    assert oscore.master_secret.reveal().hex() not in result.output
