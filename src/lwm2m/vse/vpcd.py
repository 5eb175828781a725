"""The vpcd socket protocol of vsmartcard's virtual reader (Debian ``vsmartcard-vpcd``), card
side: the VSE connects to the reader's TCP port (35963 for ``Virtual PCD 00 00``, 35964 for
``00 01``) on 127.0.0.1 and answers what pcscd asks.

Every message is a 2-byte big-endian length and a payload. A 1-byte payload is a control
message — ``00`` power off, ``01`` power on, ``02`` reset, ``04`` "send the ATR" (answered with
the ATR) — and anything longer is a command APDU, answered with the response APDU.

vpcd writes the length and the payload with separate ``send()`` calls; with Nagle on its side
and delayed ACKs on ours every APDU would wait ~40 ms, so ``TCP_QUICKACK`` is set before each
``recv`` (and replies go out in one ``sendall``, with ``TCP_NODELAY``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

__all__ = ["VpcdConnection", "connect_vpcd"]

log = logging.getLogger(__name__)

POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4


def connect_vpcd(host: str, port: int, timeout: float) -> socket.socket:
    """Connect to vpcd, retrying (bounded by ``timeout``) while pcscd is still starting."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=max(0.1, timeout))
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
            continue
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


class VpcdConnection:
    """Serves one vpcd connection until it closes or :meth:`stop` is called.

    ``process`` turns a command APDU into a response APDU; ``atr`` gives the ATR;
    ``on_power`` is told about power off/on/reset (the card resets). ``fail_after`` makes the
    card vanish (the process exits without answering) at that APDU — a card pulled out in
    the middle of an operation, for robustness tests.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        process: Callable[[bytes], bytes],
        atr: Callable[[], bytes],
        on_power: Callable[[int], None],
        on_atr_request: Callable[[], None] | None = None,
        fail_after: int | None = None,
    ) -> None:
        self._sock = sock
        self._process = process
        self._atr = atr
        self._on_power = on_power
        self._on_atr_request = on_atr_request
        self._fail_after = fail_after
        self._stopped = threading.Event()
        self.apdus = 0

    def _quickack(self) -> None:
        quickack = getattr(socket, "TCP_QUICKACK", None)
        if quickack is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            except OSError:  # pragma: no cover - the socket is closing
                pass

    def _recv_exact(self, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            self._quickack()
            try:
                chunk = self._sock.recv(n - len(buf))
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _send(self, payload: bytes) -> None:
        self._sock.sendall(len(payload).to_bytes(2, "big") + payload)

    def serve(self) -> None:
        """Answer vpcd until it closes the connection, vanishes (a failed send ends the
        connection too) or :meth:`stop`; the socket is closed on the way out, whatever ends
        the loop."""
        try:
            self._serve()
        except OSError as exc:  # vpcd went away before our reply: the end of the connection
            log.info("vpcd connection ended: %s", exc)
        finally:
            self.close()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            header = self._recv_exact(2)
            if header is None:
                break
            payload = self._recv_exact(int.from_bytes(header, "big"))
            if payload is None:
                break
            if len(payload) == 1:
                code = payload[0]
                if code == GET_ATR:
                    self._send(self._atr())
                    if self._on_atr_request is not None:
                        self._on_atr_request()
                elif code in (POWER_OFF, POWER_ON, RESET):
                    self._on_power(code)
                else:
                    log.warning("unknown vpcd control message %02X", code)
                continue
            self.apdus += 1
            if self._fail_after is not None and self.apdus >= self._fail_after:
                log.warning("simulating card removal at APDU %d", self.apdus)
                os._exit(3)
            self._send(self._process(payload))

    def stop(self) -> None:
        self._stopped.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:  # pragma: no cover
            pass
