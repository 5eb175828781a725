"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def require(condition: bool, what: str) -> None:
    """Skip when a component is missing on a developer machine; fail under CI=true."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required test component missing under CI=true: {what}")
    pytest.skip(f"missing test component: {what}")
