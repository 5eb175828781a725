"""The PC/SC transport: the only module of the package that imports pyscard (``smartcard``).

It moves APDU bytes through pcscd (PC/SC Workgroup spec part 5, as pcsc-lite implements it)
with pyscard's ``smartcard.scard`` bindings, and maps every PC/SC failure onto
:mod:`lwm2m.secure.pcsc.errors`:

==============================================  =========================================
PC/SC condition                                  error
==============================================  =========================================
pyscard missing, pcscd not running                :class:`PcscUnavailable`
no such reader                                    :class:`ReaderNotFound`
no card / unresponsive card                       :class:`CardNotPresent`
card removed or reset during a session            :class:`CardRemoved`
anything else                                     :class:`TransportError`
==============================================  =========================================

Everything above this module takes a plain ``Transmit`` callable (bytes in, bytes out), so the
APDU logic stays sans-IO and is tested without a reader.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from lwm2m.secure.pcsc.errors import (
    CardNotPresent,
    CardRemoved,
    PcscUnavailable,
    ReaderNotFound,
    TransportError,
)

try:  # pyscard is the optional extra ``lwm2m[pcsc]``
    from smartcard import scard as _scard
except ImportError:  # pragma: no cover - exercised only without pyscard
    _scard = None

__all__ = ["PcscTransport", "list_readers", "missing_modules"]


def missing_modules() -> list[str]:
    """The Python modules the PC/SC backend needs and cannot import (for hints and skips)."""
    return [] if _scard is not None else ["pyscard (pip install 'lwm2m[pcsc]')"]


def _require() -> Any:
    if _scard is None:
        raise PcscUnavailable("pyscard is not installed: pip install 'lwm2m[pcsc]'")
    return _scard


def _message(sc: Any, hresult: int) -> str:
    try:
        return f"{sc.SCardGetErrorMessage(hresult)} (0x{hresult & 0xFFFFFFFF:08X})"
    except Exception:  # pragma: no cover - defensive: the message is only decoration
        return f"0x{hresult & 0xFFFFFFFF:08X}"


def _error(sc: Any, hresult: int, doing: str) -> TransportError:
    text = f"{doing}: {_message(sc, hresult)}"
    code = hresult & 0xFFFFFFFF
    if code in {sc.SCARD_E_NO_SERVICE & 0xFFFFFFFF, sc.SCARD_E_SERVICE_STOPPED & 0xFFFFFFFF}:
        return PcscUnavailable(text + " — is pcscd running?")
    if code in {
        sc.SCARD_E_UNKNOWN_READER & 0xFFFFFFFF,
        sc.SCARD_E_READER_UNAVAILABLE & 0xFFFFFFFF,
        sc.SCARD_E_NO_READERS_AVAILABLE & 0xFFFFFFFF,
    }:
        return ReaderNotFound(text)
    if code in {
        sc.SCARD_E_NO_SMARTCARD & 0xFFFFFFFF,
        sc.SCARD_W_UNRESPONSIVE_CARD & 0xFFFFFFFF,
        sc.SCARD_W_UNPOWERED_CARD & 0xFFFFFFFF,
    }:
        return CardNotPresent(text)
    if code in {sc.SCARD_W_REMOVED_CARD & 0xFFFFFFFF, sc.SCARD_W_RESET_CARD & 0xFFFFFFFF}:
        return CardRemoved(text)
    return TransportError(text)


def _context(sc: Any) -> Any:
    try:
        hresult, context = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
    except Exception as exc:  # pragma: no cover - pyscard raising instead of returning
        raise PcscUnavailable(f"cannot reach pcscd: {exc}") from None
    if hresult != sc.SCARD_S_SUCCESS:
        raise _error(sc, hresult, "establishing a PC/SC context")
    return context


def list_readers() -> list[str]:
    """The names of the readers pcscd knows (empty when there are none)."""
    sc = _require()
    context = _context(sc)
    try:
        hresult, readers = sc.SCardListReaders(context, [])
        if hresult == sc.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != sc.SCARD_S_SUCCESS:
            raise _error(sc, hresult, "listing readers")
        return list(readers)
    finally:
        sc.SCardReleaseContext(context)


class PcscTransport:
    """One connection to the card in a reader, chosen by name, by a substring of the name, or
    by index; and/or by the card's ATR (``atr``: a predicate, described by ``atr_text`` in
    messages). Without either, the first reader holding a card. :meth:`transmit` is
    thread-safe.

    ``connect(timeout)`` waits (polling, bounded) for a card to appear: pcscd notices a freshly
    inserted virtual card within a few hundred milliseconds.
    """

    def __init__(
        self,
        reader: str | int | None = None,
        *,
        atr: Callable[[bytes], bool] | None = None,
        atr_text: str = "the pattern",
    ) -> None:
        self._sc = _require()
        self.reader_selector = reader
        self._atr_filter = atr
        self._atr_text = atr_text
        self.reader: str | None = None
        self._context: Any = None
        self._card: Any = None
        self._protocol: int = 0
        self.atr = b""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "connected" if self._card is not None else "closed"
        return f"PcscTransport(reader={self.reader or self.reader_selector!r}, {state})"

    def _pick_reader(self) -> str:
        sc = self._sc
        hresult, readers = sc.SCardListReaders(self._context, [])
        if hresult == sc.SCARD_E_NO_READERS_AVAILABLE or (
            hresult == sc.SCARD_S_SUCCESS and not readers
        ):
            raise ReaderNotFound("pcscd has no readers")
        if hresult != sc.SCARD_S_SUCCESS:
            raise _error(sc, hresult, "listing readers")
        selector = self.reader_selector
        if selector is None:
            candidates = [str(name) for name in readers]
        elif isinstance(selector, int):
            if not 0 <= selector < len(readers):
                raise ReaderNotFound(f"no reader #{selector} among {len(readers)}")
            candidates = [str(readers[selector])]
        else:
            exact = [str(name) for name in readers if name == selector]
            candidates = exact or [str(name) for name in readers if selector in name]
            if not candidates:
                raise ReaderNotFound(f"no reader named {selector!r} (have: {', '.join(readers)})")
        if self._atr_filter is None and len(candidates) == 1:
            return candidates[0]
        cards = self._cards(candidates)
        for name in candidates:
            atr = cards.get(name)
            if atr is not None and (self._atr_filter is None or self._atr_filter(atr)):
                return name
        if self._atr_filter is not None:
            raise CardNotPresent(
                f"no card with an ATR matching {self._atr_text} (readers: {', '.join(candidates)})"
            )
        raise CardNotPresent(f"no card in any of the readers {', '.join(candidates)}")

    def _cards(self, readers: list[str]) -> dict[str, bytes]:
        """The ATR of the card in each of ``readers`` that holds one (SCardGetStatusChange with
        a zero timeout: the current state, without waiting)."""
        sc = self._sc
        hresult, states = sc.SCardGetStatusChange(
            self._context, 0, [(name, sc.SCARD_STATE_UNAWARE) for name in readers]
        )
        if hresult not in (sc.SCARD_S_SUCCESS, sc.SCARD_E_TIMEOUT):
            raise _error(sc, hresult, "reading the reader states")
        return {
            str(name): bytes(atr)
            for name, state, atr in states
            if state & sc.SCARD_STATE_PRESENT and not state & sc.SCARD_STATE_MUTE
        }

    def connect(self, timeout: float = 0.0, poll: float = 0.05) -> None:
        """Connect to the card, waiting up to ``timeout`` seconds for one to be present."""
        sc = self._sc
        if self._context is None:
            self._context = _context(sc)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._connect_once()
                return
            except (CardNotPresent, ReaderNotFound, CardRemoved):
                if time.monotonic() >= deadline:
                    self.close()
                    raise
                time.sleep(poll)

    def _connect_once(self) -> None:
        sc = self._sc
        self.reader = self._pick_reader()
        hresult, card, protocol = sc.SCardConnect(
            self._context,
            self.reader,
            sc.SCARD_SHARE_SHARED,
            sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1,
        )
        if hresult != sc.SCARD_S_SUCCESS:
            raise _error(sc, hresult, f"connecting to the card in {self.reader!r}")
        self._card, self._protocol = card, protocol
        hresult, _reader, _state, _proto, atr = sc.SCardStatus(card)
        if hresult != sc.SCARD_S_SUCCESS:  # pragma: no cover - status right after connect
            raise _error(sc, hresult, "reading the card status")
        self.atr = bytes(atr)

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU; return the response APDU (data and SW1 SW2)."""
        sc = self._sc
        if len(apdu) < 4:
            # vpcd would take a 1-byte APDU for a power control message and never answer
            raise TransportError(f"a command APDU has at least 4 bytes, not {len(apdu)}")
        with self._lock:
            if self._card is None:
                raise TransportError("the PC/SC transport is not connected")
            try:
                hresult, response = sc.SCardTransmit(self._card, self._protocol, list(apdu))
            except Exception as exc:  # pyscard raising on a vanished handle
                raise CardRemoved(f"transmit failed: {exc}") from None
            if hresult != sc.SCARD_S_SUCCESS:
                raise _error(sc, hresult, "transmitting an APDU")
            if len(response) < 2:
                # vpcd (and some readers) report success with nothing when the card vanished
                raise CardRemoved(f"the card returned {len(response)} bytes, no status word")
            return bytes(response)

    __call__ = transmit

    def present(self) -> bool:
        """Whether the card this transport connected to is still in the reader (SCardStatus on
        the handle): False once it was removed — or replaced, which is a removal too — or when
        the transport is not connected. A card reset by someone else is still present (the
        next :meth:`transmit` raises :class:`CardRemoved`)."""
        sc = self._sc
        with self._lock:
            if self._card is None:
                return False
            try:
                hresult = sc.SCardStatus(self._card)[0]
            except Exception:  # pyscard raising on a vanished handle
                return False
        return bool(hresult in (sc.SCARD_S_SUCCESS, sc.SCARD_W_RESET_CARD))

    def reset(self) -> None:
        """Warm-reset the card (SCardReconnect with SCARD_RESET_CARD): channels and sessions
        end, as after a power cycle."""
        sc = self._sc
        with self._lock:
            if self._card is None:
                raise TransportError("the PC/SC transport is not connected")
            hresult, protocol = sc.SCardReconnect(
                self._card,
                sc.SCARD_SHARE_SHARED,
                sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1,
                sc.SCARD_RESET_CARD,
            )
            if hresult != sc.SCARD_S_SUCCESS:
                raise _error(sc, hresult, "resetting the card")
            self._protocol = protocol

    def close(self) -> None:
        """Disconnect (leaving the card powered) and release the context; idempotent."""
        sc = self._sc
        with self._lock:
            if self._card is not None:
                try:
                    sc.SCardDisconnect(self._card, sc.SCARD_LEAVE_CARD)
                except Exception:  # pragma: no cover - the card may already be gone
                    pass
                self._card = None
            if self._context is not None:
                try:
                    sc.SCardReleaseContext(self._context)
                except Exception:  # pragma: no cover
                    pass
                self._context = None

    def __enter__(self) -> PcscTransport:
        if self._card is None:
            self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
