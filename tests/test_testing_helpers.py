from __future__ import annotations

import pytest

from lwm2m.testing import require_component


def test_a_present_component_lets_the_test_run() -> None:
    require_component(True, "anything")


def test_a_missing_component_skips_on_a_developer_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="missing test component: libcoap"):
        require_component(False, "libcoap")


def test_a_missing_component_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing under CI=true: SoftHSM2"):
        require_component(False, "SoftHSM2")
