"""Runs the virtual secure element against a vpcd reader: loads the state file, connects,
serves until the connection ends or SIGTERM/SIGINT arrives, persists the state on the way out.

A running VSE re-reads its state file at each power-on or reset when the file changed on disk
(``lwm2m sc write-bootstrap --state``), like a card re-personalised between sessions.
:class:`VseServer` also runs inside another program (a thread of a test session, a benchmark).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

from lwm2m.errors import Lwm2mError
from lwm2m.vse.state import VseState, load_state, save_state
from lwm2m.vse.uicc import VirtualUicc
from lwm2m.vse.vpcd import VpcdConnection, connect_vpcd

__all__ = ["VpcdUnreachable", "VseServer", "run"]

log = logging.getLogger(__name__)


class VpcdUnreachable(Lwm2mError, ConnectionError):
    """No vpcd (pcscd's virtual reader driver) accepted the connection: the message names the
    address and the reason, for the command line to print as it is."""


_Signature = tuple[int, int, int, int] | None


class _StateFile:
    """The state file with change detection (our own writes do not count as changes).

    A change is any new (device, inode, size, mtime): ``save_state`` renames a new file into
    place, so every write has a new inode even when the clock or the file system gives it the
    same mtime as the one before (1 s timestamps, ``cp -p``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = load_state(path)
        self._seen = self._signature()

    def _signature(self) -> _Signature:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def rewritten(self) -> bool:
        """Written or replaced (not deleted) since our last load or save: a newer
        personalisation that the card's state must not overwrite."""
        signature = self._signature()
        return signature is not None and signature != self._seen

    def save(self, state: VseState) -> None:
        save_state(state, self.path)
        self._seen = self._signature()

    def reload_if_changed(self) -> VseState | None:
        """The state as now on disk if the file was written, replaced or deleted since our
        last load or save (deleted: a fresh card), else None."""
        signature = self._signature()
        if signature == self._seen:
            return None
        self._seen = signature
        self.state = load_state(self.path)
        return self.state


class VseServer:
    """One emulated card on one vpcd port.

    :meth:`connect` (bounded retries while pcscd starts), then :meth:`serve` (blocks until the
    connection ends or :meth:`stop`). :attr:`ready` is set once pcscd has read the ATR, i.e. the
    card is present for PC/SC clients.
    """

    def __init__(
        self,
        state_path: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 35963,
        ready_file: str | os.PathLike[str] | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.store = _StateFile(Path(state_path))
        self.card = VirtualUicc(self.store.state, save=self.store.save)
        self.ready = threading.Event()
        self._ready_file = Path(ready_file) if ready_file else None
        self._fail_after = fail_after
        self._connection: VpcdConnection | None = None
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"VseServer({self.host}:{self.port}, ready={self.ready.is_set()})"

    def connect(self, timeout: float = 10.0) -> None:
        sock = connect_vpcd(self.host, self.port, timeout)
        self._connection = VpcdConnection(
            sock,
            process=self.card.process,
            atr=lambda: self.card.atr,
            on_power=self._on_power,
            on_atr_request=self._on_atr_request,
            fail_after=self._fail_after,
        )
        if self._stop.is_set():
            self._connection.stop()
        log.info("VSE connected to vpcd at %s:%d", self.host, self.port)

    def _on_power(self, code: int) -> None:
        changed = self.store.reload_if_changed()
        if changed is not None:
            log.info("state file changed: card re-personalised")
            self.card.load(changed)
        else:
            self.card.reset()

    def _on_atr_request(self) -> None:
        if not self.ready.is_set():
            self.ready.set()
            if self._ready_file is not None:
                self._ready_file.write_text(f"{os.getpid()}\n")

    def serve(self) -> None:
        if self._connection is None:
            raise RuntimeError("connect() first")
        try:
            self._connection.serve()
        finally:
            # A file written meanwhile (``lwm2m sc write-bootstrap --state``) is the newer
            # personalisation: keep it rather than overwrite it with the card as it ran.
            if self.store.rewritten():
                log.info("state file changed while serving: kept as written")
            else:
                self.store.save(self.card.state)
            self.ready.clear()
            if self._ready_file is not None:
                self._ready_file.unlink(missing_ok=True)

    def stop(self) -> None:
        """Make :meth:`serve` return (the card disappears from the reader)."""
        self._stop.set()
        if self._connection is not None:
            self._connection.stop()


def run(
    *,
    state_path: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 35963,
    connect_timeout: float = 10.0,
    ready_file: str | os.PathLike[str] | None = None,
    fail_after: int | None = None,
) -> int:
    """Serve one vpcd connection in this process; returns the exit status (0). Raises
    VpcdUnreachable when vpcd cannot be reached, and ValueError or OSError for a state file
    that cannot be used."""
    server = VseServer(
        state_path, host=host, port=port, ready_file=ready_file, fail_after=fail_after
    )
    try:
        server.connect(connect_timeout)
    except OSError as exc:
        raise VpcdUnreachable(f"cannot connect to vpcd at {host}:{port}: {exc}") from None

    def stop(signum: int, frame: FrameType | None) -> None:
        server.stop()

    if threading.current_thread() is not threading.main_thread():
        server.serve()
        return 0
    previous = signal.signal(signal.SIGTERM, stop), signal.signal(signal.SIGINT, stop)
    try:
        server.serve()
    finally:  # the handlers stop this server only: restore the caller's
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    return 0
