"""Shared fixtures for the CoAP tests: missing interop peers fail under CI, skip elsewhere."""

from __future__ import annotations

import os
import shutil
import socket

import pytest


def require_component(what: str, found: object) -> None:
    """Skip (locally) or fail (when ``CI=true``) if an interop component is missing."""
    if found:
        return
    message = f"interop component missing: {what}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: install it, e.g. apt-get install libcoap3-bin)")
    pytest.skip(message)


def find_binary(*names: str) -> str:
    """The first of ``names`` on PATH (Debian's libcoap3-bin ships coap-client-notls etc.)."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    require_component(" or ".join(names), None)
    raise AssertionError("unreachable")  # pragma: no cover


@pytest.fixture
def coap_client_binary() -> str:
    return find_binary(
        "coap-client", "coap-client-notls", "coap-client-openssl", "coap-client-gnutls"
    )


@pytest.fixture
def aiocoap_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiocoap binds with SO_REUSEPORT unless told not to (dependency-notes §1.1)."""
    monkeypatch.setenv("AIOCOAP_REUSE_PORT", "0")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
