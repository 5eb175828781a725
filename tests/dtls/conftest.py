"""Fixtures shared by the DTLS tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from lwm2m.dtls import psk_lane


@pytest.fixture
def lanes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The steps of the plain-PSK lanes (:mod:`lwm2m.dtls.psk_lane`) that served a message:
    answered the hello, made the keys from the key exchange, or checked and answered the
    Finished (a step that declines or raises is not listed)."""
    served: list[str] = []
    for name, label in (
        ("_serve_psk_hello", "hello"),
        ("_serve_psk_key_exchange", "key exchange"),
        ("_serve_finished", "finished"),
    ):
        original = getattr(psk_lane, name)

        def spy(*args: Any, _original: Any = original, _label: str = label) -> Any:
            result = _original(*args)
            if result is not False:
                served.append(_label)
            return result

        monkeypatch.setattr(psk_lane, name, spy)
    return served


@pytest.fixture
def quiet_internal_errors() -> Iterator[None]:
    """The connection logs an internal error with its traceback; tests that expect some."""
    logger = logging.getLogger("lwm2m.dtls.connection")
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = disabled
