"""Fixtures: pcscd for the session, a VSE per module on reader 0, a PC/SC connection per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vse.pcsc_env import RunningVse, open_transport, pcsc_env_dir, pcscd, start_vse

__all__ = ["pcsc_env_dir", "pcscd"]


@pytest.fixture(scope="module")
def vse_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vse") / "vse.json"


@pytest.fixture(scope="module")
def vse(pcscd: None, vse_state: Path) -> Iterator[RunningVse]:
    running = start_vse(vse_state, 35963)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def transport(vse: RunningVse):  # type: ignore[no-untyped-def]
    conn = open_transport(vse.reader)
    try:
        yield conn
    finally:
        conn.close()
