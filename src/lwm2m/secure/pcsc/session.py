"""The card session of the ``pcsc:`` backend: one logical channel to the IoT SAFE applet of one
card (MANAGE CHANNEL + SELECT, optionally SCP03 at level 33 on it), PIN1 verification, and the
per-session caches (directory, issuer containers, identification data).

Components opened on the same card, applet and SCP03 keys within a process share one session
(a registry keyed by reader, AID and a key fingerprint), reference-counted; a transport failure
marks the session broken (the card was pulled or reset) and drops it from the registry, so the
next opener starts afresh. Nothing talks to a card while holding the registry lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from lwm2m.secure.interfaces import (
    AuthenticationError,
    ComponentClosed,
    ComponentNotFound,
    PinIncorrect,
    PinLocked,
    PinRequired,
)
from lwm2m.secure.pcsc import iotsafe
from lwm2m.secure.pcsc.apdu import CommandApdu
from lwm2m.secure.pcsc.card import Card, CardIdentification
from lwm2m.secure.pcsc.directory import Directory, IssuerContainer
from lwm2m.secure.pcsc.errors import (
    CardRemoved,
    ObjectNotFound,
    PcscError,
    Scp03Error,
    SecurityStatusNotSatisfied,
    StatusWordError,
    TransportError,
)
from lwm2m.secure.pcsc.iotsafe import AppletInfo, ObjectRef
from lwm2m.secure.pcsc.iso7816 import Transmit, verify_pin
from lwm2m.secure.pcsc.scp03 import StaticKeys

__all__ = ["CardSession", "SessionKey", "forget", "join", "register", "release"]

T = TypeVar("T")
SessionKey = tuple[str, bytes, bytes]
_PIN_TRIES_SW = 0x63C0


class CardSession:
    """One logical channel to the IoT SAFE applet of one card (see the module docstring)."""

    def __init__(
        self,
        transmit: Transmit,
        *,
        atr: bytes = b"",
        aid: bytes = iotsafe.IOT_SAFE_AID,
        scp03_keys: StaticKeys | None = None,
        reader: str | None = None,
        present: Callable[[], bool] | None = None,
        release: Callable[[], None] | None = None,
        key: SessionKey | None = None,
        require_applet: bool = True,
    ) -> None:
        self.transmit = transmit
        self.card = Card(transmit)
        self.atr = atr
        self.aid = aid
        self.reader = reader
        self.scp03 = scp03_keys is not None
        self.key = key
        self.lock = threading.RLock()
        self.users = 1
        self.broken: str | None = None
        self.channel: int | None = None
        self.pin_check: tuple[bytes, bytes] | None = None
        self.directory: Directory | None = None
        self.directory_exists = False
        self.issuer: dict[str, IssuerContainer] | None = None
        self.peer: ObjectRef | None = None
        self.identification: CardIdentification | None = None
        self.collected = False
        self.applet: AppletInfo | None = None
        self.missing: str | None = None
        self._present = present
        self.release = release
        with self.lock:
            self.channel = self._guard("MANAGE CHANNEL open", self.card.open_channel)
            try:
                self._select(scp03_keys)
                self.applet = iotsafe.parse_applet_info(
                    self.call(lambda ch: iotsafe.get_applet_info(channel=ch), "IoT SAFE GET DATA")
                )
            except ComponentNotFound as exc:
                if require_applet:
                    self.close()
                    raise
                self.missing = str(exc)  # a card for bootstrap and identification only
                self._close_channel()
            except BaseException:
                self.close()
                raise

    def _select(self, scp03_keys: StaticKeys | None) -> None:
        assert self.channel is not None
        channel = self.channel
        aid = self.aid.hex().upper()
        try:
            self._guard(
                "SELECT IoT SAFE",
                lambda: self.card.send(
                    iotsafe.select_applet(channel=channel, aid=self.aid), f"SELECT IoT SAFE {aid}"
                ),
            )
        except ObjectNotFound:
            raise ComponentNotFound(f"the card has no IoT SAFE applet with AID {aid}") from None
        if scp03_keys is not None:
            try:
                self._guard(
                    "SCP03",
                    lambda: self.card.open_secure_channel(scp03_keys, channel=channel),
                )
            except (Scp03Error, StatusWordError) as exc:
                raise AuthenticationError(
                    f"SCP03 mutual authentication with the IoT SAFE applet failed ({exc}); "
                    "check the keys of scp03-key-env"
                ) from None

    def _guard(self, what: str, call: Callable[[], T]) -> T:
        """Run ``call``; a transport failure ends the session for good."""
        if self.broken is not None:
            raise CardRemoved(f"{what}: {self.broken}; open the component again")
        try:
            return call()
        except TransportError as exc:
            self.broken = f"the card went away ({type(exc).__name__})"
            forget(self)
            raise type(exc)(f"{what}: {exc}") from None

    def call(self, build: Callable[[int], CommandApdu], name: str) -> bytes:
        """One IoT SAFE command on the applet channel; its data, or the mapped error."""
        with self.lock:
            channel = self.channel
            if self.missing is not None:
                raise ComponentNotFound(f"{name}: {self.missing}")
            if channel is None:
                raise ComponentClosed(f"{name}: the card session is closed")
            try:
                return self._guard(name, lambda: self.card.send(build(channel), name))
            except SecurityStatusNotSatisfied as exc:
                if exc.sw == 0x6982 and self.pin_check is None:
                    raise PinRequired(
                        f"{name}: the card needs PIN1 (add pin-source=env:VAR to the URI)"
                        + ("" if self.scp03 else " or an SCP03 session (scp03-key-env=VAR)")
                    ) from None
                raise

    def login(self, pin: str) -> None:
        """VERIFY PIN1 once per session; later openers must present the same PIN."""
        with self.lock:
            if self.pin_check is not None:
                salt, digest = self.pin_check
                if not hmac.compare_digest(hashlib.sha256(salt + pin.encode()).digest(), digest):
                    raise PinIncorrect("wrong PIN (differs from the PIN this process verified)")
                return
            try:
                command = verify_pin(pin.encode())
            except PcscError as exc:
                raise PinIncorrect(f"wrong PIN: {exc}") from None
            response = self._guard("VERIFY PIN", lambda: self.card.exchange(command))
            sw = response.sw.value
            if sw == 0x9000:
                salt = os.urandom(16)
                self.pin_check = (salt, hashlib.sha256(salt + pin.encode()).digest())
            elif sw & 0xFFF0 == _PIN_TRIES_SW:
                left = sw & 0x0F
                if left == 0:
                    raise PinLocked("wrong PIN: PIN1 is now blocked (unblock it with the PUK)")
                raise PinIncorrect(f"wrong PIN for the card ({left} tries left)")
            elif sw == 0x6983:
                raise PinLocked("PIN1 of the card is blocked (unblock it with the PUK)")
            elif sw == 0x6984:
                raise AuthenticationError(
                    "PIN1 is disabled on this card: remove pin-source/pin-value from the URI"
                )
            else:
                raise AuthenticationError(f"VERIFY PIN: card answered {response.sw}")

    def present(self) -> bool:
        if self.broken is not None:
            return False
        return True if self._present is None else self._present()

    def _close_channel(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None and self.broken is None:
            with contextlib.suppress(PcscError):
                self.card.close_channel(channel)

    def close(self) -> None:
        with self.lock:
            self._close_channel()
            self.directory = None
            self.issuer = None
            if self.release is not None:
                release, self.release = self.release, None
                with contextlib.suppress(Exception):
                    release()


_SESSIONS: dict[SessionKey, CardSession] = {}
# Reentrant: a component's __del__ may release a session while this thread holds the lock.
# Nothing talks to a card while holding it.
_SESSIONS_LOCK = threading.RLock()


def join(key: SessionKey) -> CardSession | None:
    """The live session for ``key``, with one more user; or None."""
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None or session.broken is not None or session.channel is None:
            return None
        session.users += 1
        return session


def register(session: CardSession) -> CardSession:
    """Make ``session`` the shared one for its key — unless another thread registered a live
    session meanwhile: that one is returned (with one more user) and ``session`` is not used."""
    assert session.key is not None
    with _SESSIONS_LOCK:
        existing = join(session.key)
        if existing is not None:
            return existing
        _SESSIONS[session.key] = session
        return session


def forget(session: CardSession) -> None:
    with _SESSIONS_LOCK:
        if session.key is not None and _SESSIONS.get(session.key) is session:
            del _SESSIONS[session.key]


def release(session: CardSession) -> None:
    with _SESSIONS_LOCK:
        session.users -= 1
        if session.users > 0:
            return
        if session.key is not None and _SESSIONS.get(session.key) is session:
            del _SESSIONS[session.key]
    session.close()
