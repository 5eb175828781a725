"""More paths of ``lwm2m demo`` (a failing step is one line, exit status 1), of ``lwm2m vse`` /
``lwm2m sc`` card tools (PC/SC is a fake: nothing here starts pcscd or vpcd) and of the VSE state
file (a corrupt file is a clear error and is never overwritten; keys and PINs are never shown)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lwm2m.cli import demo
from lwm2m.cli.client import DemoDevice
from lwm2m.cli.main import main
from lwm2m.io.lwm2m_bootstrap import BootstrapServer
from lwm2m.io.lwm2m_server import LwM2MServer, ObservationHandle, Subscription
from lwm2m.model import Path as Lw
from lwm2m.model import ResourceType, SingleResource
from lwm2m.operations.requests import Read, ReadComposite, Send
from lwm2m.operations.responses import Response
from lwm2m.secure.pcsc import component as pcsc_component
from lwm2m.secure.pcsc.bootstrap_file import parse_bootstrap_file
from lwm2m.secure.pcsc.card import CardIdentification, SmartcardBootstrap
from lwm2m.secure.pcsc.errors import ReaderNotFound
from lwm2m.vse.state import VseState, load_state, save_state

# -- lwm2m demo: each step failing through a fake or a documented constant ---------------------


def answering(kind: type, answer: Callable[[Response], Response], path: Lw | None = None) -> type:
    """A server that replaces its answers to ``kind`` requests (at ``path``) by ``answer``."""

    class Tampering(LwM2MServer):
        async def request(self, endpoint: str, operation: Any) -> Response:
            response = await super().request(endpoint, operation)
            if isinstance(operation, kind) and path in (None, getattr(operation, "path", None)):
                return answer(response)
            return response

    return Tampering


def empty(r: Response) -> Response:
    return Response(r.code, content_format=r.content_format)


class ClosedEvents(LwM2MServer):
    def subscribe(self, maxsize: int = 10_000) -> Subscription[Any]:
        events = super().subscribe(maxsize)
        events.close()  # as when the server stops under the demo
        return events


class ObservationRefused(LwM2MServer):
    async def observe(self, endpoint: str, path: Lw | str, **options: Any) -> ObservationHandle:
        handle = await super().observe(endpoint, path, **options)
        await handle.cancel()  # as a client answering without the Observe option
        return handle


class SendRefused(LwM2MServer):
    def __init__(self, **options: Any) -> None:
        refuse = SimpleNamespace(authorize=lambda request, _: _false_for(Send, request))
        super().__init__(authorizer=refuse, **options)


async def _false_for(kind: type, request: object) -> bool:
    return not isinstance(request, kind)


class MisreportingDevice(DemoDevice):
    def set_battery(self, level: int) -> None:
        super().set_battery(level - 1)


class BusyBootstrapServer(BootstrapServer):
    async def start(self, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EADDRINUSE, "Address already in use")


S1, S3 = "step 1 (Bootstrap (client-initiated) and Register)", "step 3 (Write /1/0/1 (Lifetime)"
S5, S7 = "step 5 (Observe /3/0/9 (Battery Level), two notifications)", "step 7 (Send /3/0/"
A_DAY = SingleResource(1, ResourceType.INTEGER, 86400)
FAILURES = {  # id: (demo attributes replaced, the error line, what was printed before it)
    "no registration event": ({"LwM2MServer": ClosedEvents},
        f"{S1}: registration: it ended before the answer came", "1. Bootstrap (client-init"),
    "Read without content": ({"LwM2MServer": answering(Read, empty, demo.READ_PATH)},
        "step 2 (Read /3/0 (Device)): the response has no content", "<- 2.05 Content, senml-cbor"),
    "read-back without value": ({"LwM2MServer": answering(Read, empty, demo.WRITE_PATH)},
        f"{S3} and read it back): the read-back has no value", "<- 2.04 Changed"),
    "read-back of another value": (
        {"LwM2MServer": answering(Read, lambda r: Response(r.code, A_DAY), demo.WRITE_PATH)},
        f"{S3} and read it back): read back 86400, wrote 120", "<- 2.05 Content: /1/0/1 = 86400"),
    "unobservable path": ({"OBSERVE_PATH": Lw(3, 0, 4)},
        "step 5 (Observe /3/0/4 (Reboot), two notifications): urn:dev:os:lwm2m-demo: error "
        "response 4.05 (/3/0/4 is not readable)", "-> GET /3/0/4, Observe: 0"),
    "observation not established": ({"LwM2MServer": ObservationRefused},
        f"{S5}: the client did not establish the observation", "-> GET /3/0/9, Observe: 0"),
    "wrong notification": ({"DemoDevice": MisreportingDevice}, f"{S5}: notification 1 carries 79",
        "<- notification 1: 2.05 Content, senml-cbor (112): /3/0/9 = 79"),
    "Read-Composite without content": ({"LwM2MServer": answering(ReadComposite, empty)},
        "step 6 (Read-Composite /3/0/9 + /1/0/1): the response has no content", "<- 2.05 Content"),
    "Send of an undefined path": ({"SEND_PATHS": (Lw(3, 0, 99),)},
        f"{S7}99 (client -> server)): no registered server accepts Send for these paths",
        "client -> POST /dp"),
    "Send refused": ({"LwM2MServer": SendRefused},
        f"{S7}9 + /3/0/13 (client -> server)): the server answered 4.03 Forbidden",
        "client <- 4.03 Forbidden from server 101"),
    "whole demo too slow": ({"DEMO_TIMEOUT": 1.0, "BATTERY_LEVELS": (100,)},  # no notification
        "the demo did not finish within 1 s", "device: battery level 100 % -> 100 %"),
    "port in use": ({"BootstrapServer": BusyBootstrapServer},
        "network error: [Errno 98] Address already in use", "lwm2m demo"),
}  # fmt: skip


@pytest.mark.parametrize(("patches", "error", "shown"), FAILURES.values(), ids=FAILURES)
def test_a_failing_step_is_one_line(
    monkeypatch: pytest.MonkeyPatch, patches: dict[str, Any], error: str, shown: str
) -> None:
    for name, value in patches.items():
        monkeypatch.setattr(demo, name, value)
    result = CliRunner().invoke(main, ["demo", "--security", "nosec"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    assert result.stderr.splitlines() == [f"Error: demo failed: {error}"]
    assert shown in result.stdout
    assert "8. De-register" not in result.stdout  # it stopped at the failing step
    assert "demo OK" not in result.stdout


@pytest.mark.parametrize("missing", [ImportError("No module named 'lwm2m.io.coaps'"), None])
def test_a_build_without_dtls(monkeypatch: pytest.MonkeyPatch, missing: Exception | None) -> None:
    def import_module(name: str) -> object:
        if missing is not None:
            raise missing
        return SimpleNamespace()  # the modules are there, their classes are not

    monkeypatch.setattr(demo, "importlib", SimpleNamespace(import_module=import_module))
    demo._dtls_api.cache_clear()
    try:
        result = CliRunner().invoke(main, ["demo", "--security", "psk"])
    finally:
        monkeypatch.undo()
        demo._dtls_api.cache_clear()
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: demo failed: --security psk needs the DTLS transport")
    assert line.endswith("use --security nosec")


# -- lwm2m sc write-bootstrap / read-bootstrap / card-info, lwm2m vse run/init ------------------

PSK_KEY = "5ec2e75ec2e75ec2e75ec2e75ec2e75e"
CARD = f"""[[security]]
uri = "coaps://bootstrap.example.com:5684"
bootstrap = true
psk_identity = "device-1"
psk_key_hex = "{PSK_KEY}"
[[server]]
short_server_id = 101
"""
VERSIONED = CARD + "[[object]]\nid = 3\nversion = '1.1'\n[[object.instance]]\nid = 0\n"
NOT_A_NUMBER = CARD.replace("bootstrap = true", "bootstrap = true\nclient_hold_off = 'soon'")
KEYS = ["000102030405060708090A0B0C0D0E0F", "101112131415161718191A1B1C1D1E1F", "2" * 32]
SHORT_KEY = "00112233445566778899"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def no_secret(result: Result, *secrets: str) -> None:
    for secret in (PSK_KEY, "4711", SHORT_KEY, *KEYS):  # 4711: the PIN of the stored cards
        assert secret.lower() not in result.output.lower()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A description, a personalised card, a corrupt state file, a plain file (no folder)."""
    state = VseState.default()
    state.pin1, state.scp03.sequence_counter = "4711", 7
    state.pkcs15.require_secure_channel = True
    save_state(state, tmp_path / "vse.json")
    for name, text in [("card.toml", CARD), ("versioned.toml", VERSIONED),
                       ("nan.toml", NOT_A_NUMBER), ("corrupt.json", '{"pin1": "4711", '),
                       ("a-file", "x")]:  # fmt: skip
        (tmp_path / name).write_text(text)
    return {p.stem.replace("-", "_"): p for p in tmp_path.iterdir()} | {"tmp": tmp_path}


def test_write_bootstrap_into_a_state_keeps_the_rest(files: dict[str, Path]) -> None:
    path, before = files["vse"], load_state(files["vse"])
    result = invoke("sc", "write-bootstrap", str(files["card"]), "--state", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # no hex unless asked
    no_secret(result)
    after = load_state(path)
    size, objects = len(after.pkcs15.bootstrap) // 2, "/0 (1 instances), /1 (1 instances)"
    assert result.stderr == f"wrote {size} bytes, layout 1.1, objects {objects} to {path}\n"
    assert after.pkcs15.require_secure_channel  # no option given: kept
    assert (after.pin1, after.scp03, after.iot_safe) == (before.pin1, before.scp03, before.iot_safe)
    security = parse_bootstrap_file(bytes.fromhex(after.pkcs15.bootstrap))[0].instances[0]
    assert security.resources[5].value == bytes.fromhex(PSK_KEY)  # type: ignore[union-attr]


class FakeCard:
    """What PcscComponent.open gives: records the reader and the SCP03 keys asked for."""

    def __init__(self, raw: bytes) -> None:
        self.opened: list[str] = []
        self.keys: list[Any] = []
        self.closed = False
        aid, ef, dodf = (bytes.fromhex(h) for h in ("A000000063504B43532D3135", "6432", "6430"))
        digest = hashlib.sha256(raw).digest()
        data = parse_bootstrap_file(raw)
        self.bootstrap = SmartcardBootstrap(data, aid, ef, dodf, None, True, len(raw), digest)

    def __enter__(self) -> FakeCard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closed = True

    def read_bootstrap(self, *, scp03_keys: Any = None) -> SmartcardBootstrap:
        self.keys.append(scp03_keys)
        return self.bootstrap

    def identification(self) -> CardIdentification:
        return CardIdentification(atr=bytes.fromhex("3B00"), iccid="8988211000000000003")


def test_read_bootstrap_and_card_info_print_ids_never_values(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]
) -> None:
    printed = invoke("sc", "write-bootstrap", str(files["card"]), "--hex").stdout
    card = FakeCard(bytes.fromhex(printed))

    def open_(uri: str, **options: Any) -> FakeCard:
        card.opened.append(uri)
        return card

    monkeypatch.setattr(pcsc_component.PcscComponent, "open", open_)
    options = [item for key in KEYS for item in ("--scp03-key", key)]
    result = invoke("sc", "read-bootstrap", "--reader", "vpcd", *options, "--kvn", "49")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [(o["id"], o["instances"]) for o in out["objects"]] == [(0, [0]), (1, [0])]
    assert (out["layout"], out["secured"], out["size"]) == ("1.1", True, card.bootstrap.size)
    no_secret(result)
    (keys,) = card.keys
    assert ([k.hex().upper() for k in (keys.enc, keys.mac, keys.dek)], keys.kvn) == (KEYS, 49)
    result = invoke("sc", "card-info", "--reader", "1")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"atr": "3B00", "iccid": "8988211000000000003"}
    assert card.opened == ["pcsc:?reader=vpcd", "pcsc:?reader=1"]
    assert card.closed


BAD_INPUT = {  # command line: the one error line (a regex)
    "sc write-bootstrap {versioned} --layout 1.0 --state {vse}":
        ".*/versioned.toml: object 3 version 1.1: the 1.0 layout has no version",
    "sc write-bootstrap {nan} --state {vse}":
        r".*/nan.toml: security\[0\]\.client_hold_off: str is not a valid Integer value",
    f"sc read-bootstrap --scp03-key {KEYS[0]} --scp03-key {KEYS[1]}":
        r"give --scp03-key once \(ENC=MAC=DEK\) or three times",
    f"sc read-bootstrap --scp03-key {SHORT_KEY}":
        "SCP03 key: K-ENC must be an AES-128/192/256 key, not 10 bytes",
    f"sc read-bootstrap --scp03-key {KEYS[0]} --kvn 300": "SCP03 key: KVN 300 is not a byte",
    "sc read-bootstrap --reader 7": "no PC/SC reader matches '7'",
    "sc card-info --reader 7": "no PC/SC reader matches '7'",
    "vse init --state {vse}": r".*/vse.json exists \(use --force\)",
}  # fmt: skip
BAD_FILES = {  # a corrupt state file, a state path under a plain file, an output in no folder
    "sc write-bootstrap {card} --state {corrupt}": ".*corrupt.json.*",
    "vse run --state {corrupt} --port 1 --connect-timeout 0.1": ".*corrupt.json.*",
    "vse init --state {a_file}/vse.json": ".*a-file.*",
    "sc write-bootstrap {card} --state {a_file}/vse.json": ".*a-file.*",
    "sc write-bootstrap {card} --out {tmp}/no/bs.bin": ".*bs.bin.*",
}


def run_bad(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path], command: str) -> Result:
    """Run ``command``: it must fail and leave every file as it was."""

    def no_reader(uri: str, **options: Any) -> Any:  # for the key errors: never reached
        raise ReaderNotFound("no PC/SC reader matches '7'")

    monkeypatch.setattr(pcsc_component.PcscComponent, "open", no_reader)
    stored = {name: path.read_bytes() for name, path in files.items() if path.is_file()}
    result = invoke(*(arg.format(**files) for arg in command.split()))
    assert result.exit_code == 1
    assert {name: files[name].read_bytes() for name in stored} == stored  # nothing overwritten
    no_secret(result)
    return result


@pytest.mark.parametrize("command", BAD_FILES)  # what the one-line errors below must keep
def test_bad_state_paths_lose_nothing(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, Path], command: str
) -> None:
    run_bad(monkeypatch, files, command)


@pytest.mark.parametrize(
    ("command", "error"),
    [
        *(pytest.param(*case, id=case[0]) for case in BAD_INPUT.items()),
        *(pytest.param(*case, id=case[0]) for case in BAD_FILES.items()),
    ],
)
def test_bad_input_is_one_line_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, Path], command: str, error: str
) -> None:
    result = run_bad(monkeypatch, files, command)
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not a traceback
    (line,) = result.stderr.splitlines()
    assert re.fullmatch(f"Error: {error}", line), line


def test_vse_run_without_vpcd_creates_a_fresh_card(tmp_path: Path) -> None:
    path = tmp_path / "new" / "vse.json"
    with socket.socket() as sock:  # bound, not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = invoke(
            "vse", "run", "--state", str(path), "--port", str(port), "--connect-timeout", "0.2"
        )
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: cannot connect to vpcd at 127.0.0.1:{port}: ")
    assert "refused" in line  # the reason
    assert load_state(path) == VseState.default()
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "program", [["-m", "lwm2m.cli.main", "vse", "run"], ["-m", "lwm2m.vse"]], ids=["cli", "module"]
)
def test_vpcd_unreachable_is_one_line_in_a_real_process(tmp_path: Path, program: list[str]) -> None:
    """In a real process (logging to the real stderr, unlike CliRunner), the missing vpcd is
    reported once: ``lwm2m vse run`` prints one ``Error:`` line (it used to print a log line as
    well), ``python -m lwm2m.vse`` one log line, exit status 1 and 2."""
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        options = ["--state", str(tmp_path / "vse.json"), "--port", str(port)]
        done = subprocess.run(
            [sys.executable, *program, *options, "--connect-timeout", "0.2"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    (line,) = done.stderr.splitlines()
    prefix = "Error: " if program[1] == "lwm2m.cli.main" else "vse: ERROR "
    assert line.startswith(f"{prefix}cannot connect to vpcd at 127.0.0.1:{port}: "), line
    assert done.returncode == (1 if prefix == "Error: " else 2)
    assert done.stdout == ""


def test_vse_run_until_vpcd_goes_away(files: dict[str, Path]) -> None:
    path, before, ready = files["vse"], load_state(files["vse"]), files["tmp"] / "ready"
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10.0)
        vpcd = threading.Thread(target=lambda: listener.accept()[0].close())  # then goes away
        vpcd.start()
        try:
            port = str(listener.getsockname()[1])
            args = ["--state", str(path), "--port", port, "--ready-file", str(ready)]
            result = invoke("vse", "run", *args)
        finally:
            vpcd.join(10.0)
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert load_state(path) == before  # the card's memory survives
    assert not ready.exists()


# -- the state file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        pytest.param(b'{"pin1": "4711", ', "JSONDecodeError", id="not JSON"),
        pytest.param(b"\xff\xfe{}", "UnicodeDecodeError", id="not UTF-8"),
        pytest.param(b"null", "TypeError", id="null"),
        pytest.param(b'{"format": 2, "pin1": "4711"}', "TypeError", id="newer version"),
        pytest.param(b'{"scp03": ["4711"]}', "TypeError", id="bad section"),
        pytest.param(b"[]", "TypeError", id="array"),  # dict([]) would be the default card
    ],
)  # fmt: skip
def test_a_corrupt_state_file_is_named_and_kept(tmp_path: Path, content: bytes, kind: str) -> None:
    path = tmp_path / "vse.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a VSE state file") as raised:
        load_state(path)
    assert str(raised.value) == f"{path}: not a VSE state file ({kind})"  # no content shown
    assert path.read_bytes() == content


def test_a_failed_save_keeps_the_stored_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vse.json"
    save_state(VseState.default(), path)
    stored = path.read_bytes()
    broken = VseState.default()
    broken.iot_safe.files = [{"id": "30", "data": b"not JSON"}]
    with pytest.raises(TypeError):
        save_state(broken, path)
    assert (path.read_bytes(), os.listdir(tmp_path)) == (stored, ["vse.json"])  # no temporary

    def vanish_then_fail(source: str, target: object) -> None:  # the temporary file is gone
        os.unlink(source)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", vanish_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_state(VseState(), path)
    monkeypatch.undo()
    assert (path.read_bytes(), os.listdir(tmp_path)) == (stored, ["vse.json"])
