"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

from lwm2m.testing import require_component

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


require = require_component
