"""Run the examples in module docstrings (enum helpers, small values) as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "lwm2m.buffer",
    "lwm2m.codec",
    "lwm2m.codec.content_format",
    "lwm2m.codec.link",
    "lwm2m.codec.tlv",
    "lwm2m.model.path",
    "lwm2m.model.registry",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
