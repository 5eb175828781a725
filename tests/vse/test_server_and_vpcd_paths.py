"""The vpcd wire protocol (card side) and the VSE server's life cycle without pcscd: the tests
play vpcd themselves, over a socket pair or a loopback TCP listener. Every wait is bounded."""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from lwm2m.vse import vpcd
from lwm2m.vse.server import VpcdUnreachable, VseServer, run
from lwm2m.vse.state import DEFAULT_ATR, VseState, load_state, save_state
from lwm2m.vse.uicc import VirtualUicc
from lwm2m.vse.vpcd import GET_ATR, POWER_OFF, POWER_ON, RESET, VpcdConnection, connect_vpcd

WAIT = 5.0
SELECT_MF = bytes.fromhex("00A4000C023F00")
PIN_STATUS = bytes.fromhex("00200001")  # VERIFY PIN1 without data: verified or tries left
OTHER_ATR = "3B8F8001804F0CA0000003060300030000000068"


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


def verify(pin: str) -> bytes:
    return bytes.fromhex("0020000108") + pin.encode().ljust(8, b"\xff")


class Peer:
    """The vpcd side of one connection (reads bounded by the socket timeout)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(WAIT)

    def send(self, payload: bytes) -> None:
        self.sock.sendall(frame(payload))

    def read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError(f"connection closed after {len(data)} of {n} bytes")
            data += chunk
        return data

    def reply(self) -> bytes:
        return self.read(int.from_bytes(self.read(2), "big"))

    def transmit(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.reply()

    def at_eof(self) -> bool:
        return self.sock.recv(1) == b""


class Background:
    """A blocking call in a thread: its exception is kept, the join is bounded."""

    def __init__(self, target: Callable[[], object]) -> None:
        self.errors: list[BaseException] = []
        self.result: object = None
        self.thread = threading.Thread(target=self._run, args=(target,), daemon=True)
        self.thread.start()

    def _run(self, target: Callable[[], object]) -> None:
        try:
            self.result = target()
        except BaseException as exc:
            self.errors.append(exc)

    def join(self) -> None:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the call did not return"


Pair = tuple[socket.socket, Peer]


class FakeCard:
    def __init__(self) -> None:
        self.apdus: list[bytes] = []
        self.power: list[int] = []
        self.atr_requests = 0

    def process(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        return len(apdu).to_bytes(4, "big") + b"\x90\x00"

    def on_atr_request(self) -> None:
        self.atr_requests += 1

    def connection(self, sock: socket.socket, **kwargs: object) -> VpcdConnection:
        return VpcdConnection(
            sock,
            process=self.process,
            atr=lambda: b"\x3b\x00",
            on_power=self.power.append,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture
def pair() -> Iterator[Pair]:
    card_sock, peer_sock = socket.socketpair()
    try:
        yield card_sock, Peer(peer_sock)
    finally:
        card_sock.close()
        peer_sock.close()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(15.0)
    try:
        yield sock
    finally:
        sock.close()


# -- the vpcd protocol -----------------------------------------------------------------------


def test_control_messages_and_apdus(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    card_sock, peer = pair
    card = FakeCard()
    conn = card.connection(card_sock, on_atr_request=card.on_atr_request)
    serving = Background(conn.serve)
    for code in (POWER_ON, RESET, 0x03, POWER_OFF):  # no answer to any of these
        peer.send(bytes([code]))
    assert peer.transmit(bytes([GET_ATR])) == b"\x3b\x00"
    assert peer.transmit(SELECT_MF) == b"\x00\x00\x00\x07\x90\x00"
    peer.sock.sendall(frame(b"\x00\xb0")[:1])  # vpcd may split a frame: a byte at a time
    peer.sock.sendall(frame(b"\x00\xb0")[1:3])
    peer.sock.sendall(b"\xb0")
    assert peer.reply() == b"\x00\x00\x00\x02\x90\x00"
    peer.sock.shutdown(socket.SHUT_WR)
    serving.join()
    assert serving.errors == []
    assert peer.at_eof()  # no stray reply, card side closed
    assert card_sock.fileno() == -1
    assert card.power == [POWER_ON, RESET, POWER_OFF]
    assert card.apdus == [SELECT_MF, b"\x00\xb0"]
    assert (card.atr_requests, conn.apdus) == (1, 2)
    assert "unknown vpcd control message 03" in caplog.text


@pytest.mark.parametrize(
    "sent",
    [b"\x00", b"\x00\x07\x00\xa4", b"\xff\xff" + bytes(100)],
    ids=["half-header", "half-payload", "oversized-length-truncated"],
)
def test_peer_closes_mid_frame(pair: Pair, sent: bytes) -> None:
    card_sock, peer = pair
    card = FakeCard()
    peer.sock.sendall(sent)
    peer.sock.shutdown(socket.SHUT_WR)
    serving = Background(card.connection(card_sock).serve)
    serving.join()
    assert serving.errors == []
    assert card.apdus == []
    assert peer.at_eof()
    assert card_sock.fileno() == -1


def test_zero_length_and_largest_frames_keep_the_stream_in_step(
    pair: Pair,
) -> None:
    """An empty payload is no control message: the card answers it (wrong length); a frame of
    65535 bytes is read whole. Each gets exactly one answer, then the next command its own."""
    card_sock, peer = pair
    uicc = VirtualUicc(VseState.default())
    conn = VpcdConnection(
        card_sock, process=uicc.process, atr=lambda: uicc.atr, on_power=lambda code: None
    )
    serving = Background(conn.serve)
    assert peer.transmit(b"") == b"\x67\x00"
    big = bytes.fromhex("00A40400") + b"\x00\xff\xf8" + b"\x11" * 0xFFF8
    assert len(big) == 0xFFFF
    assert peer.transmit(big) == b"\x6a\x82"  # no such application
    assert peer.transmit(SELECT_MF) == b"\x90\x00"
    peer.sock.shutdown(socket.SHUT_WR)
    serving.join()
    assert serving.errors == []
    assert conn.apdus == 3


def test_stop_from_another_thread_while_serve_waits(pair: Pair) -> None:
    card_sock, peer = pair
    conn = FakeCard().connection(card_sock)
    serving = Background(conn.serve)
    assert peer.transmit(bytes([GET_ATR])) == b"\x3b\x00"  # serve() is in its loop
    conn.stop()
    serving.join()
    assert serving.errors == []
    assert peer.at_eof()
    conn.stop()  # stopping a finished connection is harmless


def tcp_pair(listener: socket.socket) -> tuple[socket.socket, Peer]:
    card_sock = connect_vpcd("127.0.0.1", listener.getsockname()[1], WAIT)
    return card_sock, Peer(listener.accept()[0])


def reset_close(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as when the vpcd side dies."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_peer_reset_while_serve_waits(listener: socket.socket) -> None:
    card_sock, peer = tcp_pair(listener)
    try:
        assert card_sock.gettimeout() is None
        assert card_sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        serving = Background(FakeCard().connection(card_sock).serve)
        assert peer.transmit(bytes([GET_ATR])) == b"\x3b\x00"
        reset_close(peer.sock)
        serving.join()
        assert serving.errors == []
        assert card_sock.fileno() == -1
    finally:
        card_sock.close()
        peer.sock.close()


def test_peer_gone_before_the_reply(listener: socket.socket) -> None:
    """vpcd dies (RST) after sending a command: serve() must end quietly, socket closed."""
    card_sock, peer = tcp_pair(listener)
    try:
        peer.send(SELECT_MF)
        reset_close(peer.sock)
        serving = Background(FakeCard().connection(card_sock).serve)
        serving.join()
        closed = card_sock.fileno() == -1
    finally:
        card_sock.close()
    assert serving.errors == []
    assert closed


def test_connect_refused_within_timeout() -> None:
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        start = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            connect_vpcd("127.0.0.1", bound.getsockname()[1], 0.3)
        assert 0.3 <= time.monotonic() - start < 1.5


def test_connect_retries_until_vpcd_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))

        def sleep(delay: float) -> None:  # vpcd starts listening during the 6th back-off
            delays.append(delay)
            if len(delays) == 6:
                server.listen()

        monkeypatch.setattr(vpcd, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
        with connect_vpcd("127.0.0.1", server.getsockname()[1], WAIT) as sock:
            assert sock.gettimeout() is None
    assert delays == [0.02, 0.04, 0.08, 0.16, 0.25, 0.25]


def test_fail_after_makes_the_card_vanish(listener: socket.socket, tmp_path: Path) -> None:
    port = str(listener.getsockname()[1])
    args = ["--port", port, "--state", str(tmp_path / "s.json"), "--fail-after", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "lwm2m.vse", *args], stderr=subprocess.PIPE)
    try:
        peer = Peer(listener.accept()[0])
        with peer.sock:
            assert peer.transmit(SELECT_MF) == b"\x90\x00"
            peer.send(SELECT_MF)
            assert peer.at_eof()  # no answer: the card is gone
        assert proc.wait(10) == 3
        assert proc.stderr is not None
        assert b"simulating card removal at APDU 2" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


# -- the VSE server ------------------------------------------------------------------------


class Served:
    def __init__(self, server: VseServer, listener: socket.socket) -> None:
        self.server = server
        server.connect(WAIT)
        self.peer = Peer(listener.accept()[0])
        self.serving = Background(server.serve)

    def finish(self) -> None:
        self.server.stop()
        self.serving.join()
        assert self.serving.errors == []
        assert self.peer.at_eof()  # the card closed its end
        self.peer.sock.close()


Start = Callable[..., Served]


@pytest.fixture
def serve(listener: socket.socket) -> Iterator[Start]:
    started: list[Served] = []

    def start(state_path: Path, **kwargs: object) -> Served:
        port = listener.getsockname()[1]
        started.append(Served(VseServer(state_path, port=port, **kwargs), listener))  # type: ignore[arg-type]
        return started[-1]

    yield start
    for served in started:
        served.server.stop()
        served.serving.join()
        served.peer.sock.close()


def state_file(path: Path, **fields: object) -> Path:
    state = VseState.default()
    for key, value in fields.items():
        setattr(state, key, value)
    save_state(state, path)
    return path


def write_later(state: VseState, path: Path) -> None:
    """save_state until the file's mtime differs (a later write, however coarse the fs clock)."""
    before, deadline = path.stat().st_mtime_ns, time.monotonic() + WAIT
    save_state(state, path)
    while path.stat().st_mtime_ns == before:
        assert time.monotonic() < deadline
        save_state(state, path)


def test_state_loaded_ready_file_and_stop(serve: Start, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    served = serve(state_file(tmp_path / "s.json", atr=OTHER_ATR), ready_file=ready)
    assert not served.server.ready.is_set()
    assert not ready.exists()
    assert served.peer.transmit(bytes([GET_ATR])) == bytes.fromhex(OTHER_ATR)
    assert served.server.ready.wait(WAIT)
    served.peer.transmit(bytes([GET_ATR]))  # the first request's callback has returned
    assert ready.read_text() == f"{os.getpid()}\n"
    assert "ready=True" in repr(served.server)
    served.finish()
    assert not served.server.ready.is_set()
    assert not ready.exists()


@pytest.mark.parametrize("code", [POWER_ON, RESET])
def test_change_on_disk_picked_up_at_power_on_or_reset(
    serve: Start, tmp_path: Path, code: int
) -> None:
    path = state_file(tmp_path / "s.json")
    served = serve(path)
    assert served.peer.transmit(bytes([GET_ATR])) == bytes.fromhex(DEFAULT_ATR)
    changed = load_state(path)
    changed.atr = OTHER_ATR
    write_later(changed, path)
    assert served.peer.transmit(bytes([GET_ATR])) == bytes.fromhex(DEFAULT_ATR)  # not yet
    served.peer.send(bytes([code]))
    assert served.peer.transmit(bytes([GET_ATR])) == bytes.fromhex(OTHER_ATR)
    served.finish()


def test_own_saves_are_no_change_and_reset_clears_pin(serve: Start, tmp_path: Path) -> None:
    served = serve(state_file(tmp_path / "s.json", pin1="2468"))
    state = served.server.card.state
    peer = served.peer
    assert peer.transmit(verify("0000")) == b"\x63\xc2"  # the card saves the tries left
    assert peer.transmit(verify("2468")) == b"\x90\x00"  # and saves again (tries back to 3)
    assert peer.transmit(PIN_STATUS) == b"\x90\x00"
    peer.send(bytes([RESET]))
    assert peer.transmit(PIN_STATUS) == b"\x63\xc3"  # the reset cleared the verification
    assert served.server.card.state is state  # reset, not re-personalised from the file
    served.finish()


def test_change_with_unchanged_mtime_is_picked_up(serve: Start, tmp_path: Path) -> None:
    path = state_file(tmp_path / "s.json")
    served = serve(path)
    before = path.stat()
    changed = load_state(path)
    changed.atr = OTHER_ATR
    save_state(changed, path)
    # the same mtime, as a write within one timestamp tick gets (1 s granularity on ext3/HFS+,
    # coarse clocks before Linux 6.13), or `cp -p` / `rsync -t` of another state file
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    served.peer.send(bytes([RESET]))
    assert served.peer.transmit(bytes([GET_ATR])) == bytes.fromhex(OTHER_ATR)
    served.finish()


@pytest.mark.parametrize("then", ["stop", "reset"])
def test_deleted_state_file(serve: Start, tmp_path: Path, then: str) -> None:
    """On the way out the card's state is saved; at a reset a missing file is a fresh card."""
    path = state_file(tmp_path / "s.json", pin1="2468", atr=OTHER_ATR)
    served = serve(path)
    assert served.peer.transmit(verify("0000")) == b"\x63\xc2"
    path.unlink()
    if then == "reset":
        served.peer.send(bytes([RESET]))
        assert served.peer.transmit(bytes([GET_ATR])) == bytes.fromhex(DEFAULT_ATR)
        assert path.exists()
    served.finish()
    saved = load_state(path)
    expected = (None, 3) if then == "reset" else ("2468", 2)
    assert (saved.pin1, saved.pin1_tries) == expected


def test_offline_write_survives_the_vse_stopping(serve: Start, tmp_path: Path) -> None:
    path = state_file(tmp_path / "s.json")
    served = serve(path)
    assert served.peer.transmit(SELECT_MF) == b"\x90\x00"
    changed = load_state(path)
    changed.pkcs15.bootstrap = "a1b2c3"
    write_later(changed, path)
    served.finish()
    assert load_state(path).pkcs15.bootstrap == "a1b2c3"


def test_repr_and_logs_reveal_no_secrets(
    serve: Start, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state = VseState.default()
    state.pin1 = "73915"
    key = "5A1B2C3D4E5F60718293A4B5C6D7E8F9"
    state.scp03.enc = state.scp03.mac = state.scp03.dek = key
    state.iot_safe.secrets[0]["value"] = "C0FFEE1234567890DEADBEEF"
    save_state(state, tmp_path / "s.json")
    served = serve(tmp_path / "s.json")
    assert served.peer.transmit(verify("73915")) == b"\x90\x00"
    served.peer.send(bytes([RESET]))
    texts = [repr(served.server), repr(served.server.store.state), caplog.text]
    served.finish()
    texts.append(repr(served.server))
    assert texts[0].startswith("VseServer(127.0.0.1:")
    for text in texts:
        for secret in ("73915", key, "C0FFEE1234567890DEADBEEF"):
            assert secret.lower() not in text.lower()


def test_fresh_card_and_stop_before_connect(listener: socket.socket, tmp_path: Path) -> None:
    """A missing state file is created (0600) as a fresh card; serve() needs connect(); a
    server stopped before it connected serves nothing, even a command already waiting."""
    path = tmp_path / "new" / "vse.json"
    server = VseServer(path, port=listener.getsockname()[1])
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_state(path).to_json() == VseState.default().to_json()
    with pytest.raises(RuntimeError, match="connect"):
        server.serve()
    server.stop()
    server.connect(WAIT)
    peer = Peer(listener.accept()[0])
    with peer.sock:
        peer.send(SELECT_MF)
        serving = Background(server.serve)
        serving.join()
        assert peer.at_eof()  # no answer
    assert serving.errors == []


# -- run() -----------------------------------------------------------------------------------


def saved_handlers() -> tuple[object, object]:
    return signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)


def test_run_nothing_listening(tmp_path: Path) -> None:
    before = saved_handlers()
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with pytest.raises(VpcdUnreachable, match=f"cannot connect to vpcd at 127.0.0.1:{port}: "):
            run(state_path=tmp_path / "s.json", port=port, connect_timeout=0.1)
    assert saved_handlers() == before


def test_run_in_a_thread_ends_with_the_connection(listener: socket.socket, tmp_path: Path) -> None:
    before = saved_handlers()
    port = listener.getsockname()[1]
    running = Background(lambda: run(state_path=tmp_path / "s.json", port=port))
    peer = Peer(listener.accept()[0])
    with peer.sock:
        assert peer.transmit(bytes([GET_ATR])) == bytes.fromhex(DEFAULT_ATR)
        peer.sock.shutdown(socket.SHUT_WR)
        running.join()
    assert (running.errors, running.result) == ([], 0)
    assert saved_handlers() == before  # not the main thread: no handlers installed
    assert (tmp_path / "s.json").exists()


def test_run_stops_on_sigterm(listener: socket.socket, tmp_path: Path) -> None:
    """In the main thread run() handles SIGTERM/SIGINT; the signal goes to the main thread
    only once the handler is in place (checked first); run() restores the handlers after."""
    before = saved_handlers()
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    seen: dict[str, object] = {}

    def vpcd_side() -> None:
        peer = Peer(listener.accept()[0])
        with peer.sock:
            seen["atr"] = peer.transmit(bytes([GET_ATR]))  # serve() runs: handlers installed
            handlers = saved_handlers()
            seen["installed"] = handlers[0] is handlers[1] and handlers[0] not in before
            if seen["installed"]:
                assert main is not None
                signal.pthread_kill(main, signal.SIGTERM)
                seen["eof"] = peer.at_eof()

    helper = Background(vpcd_side)
    try:
        status = run(state_path=tmp_path / "s.json", port=listener.getsockname()[1])
        assert saved_handlers() == before  # run() restored the caller's handlers
    finally:
        signal.signal(signal.SIGTERM, before[0])  # type: ignore[arg-type]
        signal.signal(signal.SIGINT, before[1])  # type: ignore[arg-type]
        helper.join()
    assert helper.errors == []
    assert seen == {"atr": bytes.fromhex(DEFAULT_ATR), "installed": True, "eof": True}
    assert status == 0


# -- python -m lwm2m.vse ---------------------------------------------------------------------------


def test_module_main_reports_a_missing_vpcd_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from lwm2m.vse.__main__ import main as vse_main

    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        arguments = ["--state", str(tmp_path / "s.json"), "--port", str(port)]
        status = vse_main([*arguments, "--connect-timeout", "0.2"])
    assert status == 2
    (record,) = caplog.records
    assert record.levelname == "ERROR"
    assert record.getMessage().startswith(f"cannot connect to vpcd at 127.0.0.1:{port}: ")


def test_module_main_names_an_unusable_state_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from lwm2m.vse.__main__ import main as vse_main

    state = tmp_path / "state.json"
    state.write_text("[1, 2]")  # JSON, but not a card state
    status = vse_main(["--state", str(state), "--port", "1"])
    assert status == 1
    (record,) = caplog.records
    assert record.getMessage().startswith(f"state file {state}: ")
    assert state.read_text() == "[1, 2]"  # left as it was


def test_module_main_serves_until_vpcd_goes(listener: socket.socket, tmp_path: Path) -> None:
    from lwm2m.vse.__main__ import main as vse_main

    port = listener.getsockname()[1]
    ready = tmp_path / "ready"
    arguments = ["--state", str(tmp_path / "s.json"), "--port", str(port), "-v"]
    running = Background(lambda: vse_main([*arguments, "--ready-file", str(ready)]))
    peer = Peer(listener.accept()[0])
    with peer.sock:
        assert peer.transmit(bytes([GET_ATR])) == bytes.fromhex(DEFAULT_ATR)
        # the ready file is written right after the ATR went out, before the next request is
        # read: once a second exchange is answered, it is there
        assert peer.transmit(bytes([GET_ATR])) == bytes.fromhex(DEFAULT_ATR)
        assert ready.read_text() == f"{os.getpid()}\n"
        peer.sock.shutdown(socket.SHUT_WR)
        running.join()
    assert (running.errors, running.result) == ([], 0)
    assert (tmp_path / "s.json").exists()
    assert not ready.exists()  # removed when the card goes
