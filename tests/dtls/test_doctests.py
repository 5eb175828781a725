"""Run the examples in the DTLS modules' docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "lwm2m.dtls.constants",
    "lwm2m.dtls.cookie",
    "lwm2m.dtls.credentials",
    "lwm2m.dtls.prf",
    "lwm2m.dtls.record",
    "lwm2m.dtls.trust",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
