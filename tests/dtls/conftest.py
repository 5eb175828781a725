"""Fixtures shared by the DTLS tests."""

from __future__ import annotations

from typing import Any

import pytest

from lwm2m.dtls import handshake as handshake_module


@pytest.fixture
def lanes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The plain-PSK lanes of the handshake that served a message (returned a result)."""
    served: list[str] = []
    for name, label in (
        ("serve_psk_hello", "hello"),
        ("serve_psk_key_exchange", "key exchange"),
        ("serve_finished", "finished"),
    ):
        original = getattr(handshake_module.Handshake, name)

        def spy(self: Any, *args: Any, _original: Any = original, _label: str = label) -> Any:
            result = _original(self, *args)
            if result:
                served.append(_label)
            return result

        monkeypatch.setattr(handshake_module.Handshake, name, spy)
    return served
