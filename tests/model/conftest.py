"""Fixtures of the model tests: the OMA LwM2M registry checkout used as test data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lwm2m.model.registry import ModelRegistry, default_registry

REPO = Path(__file__).resolve().parents[2]
#: The OMA LwM2M registry (OpenMobileAlliance/lwm2m-registry) beside the repository. Test data
#: only: nothing from it is copied into src/.
OMA_REGISTRY = REPO.parent / "shared" / "oma-lwm2m-registry"


@pytest.fixture(scope="session")
def oma_registry() -> Path:
    """The registry folder; skips when absent, but fails under ``CI=true``."""
    if not (OMA_REGISTRY / "version_history").is_dir():
        what = f"OMA LwM2M registry checkout at {OMA_REGISTRY}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"required test data missing under CI=true: {what}")
        pytest.skip(f"missing test data: {what}")
    return OMA_REGISTRY


@pytest.fixture
def bundled() -> ModelRegistry:
    """A fresh registry of the project's own definitions."""
    return default_registry()
