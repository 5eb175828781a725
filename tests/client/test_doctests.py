"""The examples in the client's docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "lwm2m.client.arguments",
    "lwm2m.client.accounts",
    "lwm2m.client.objects.base",
    "lwm2m.client.objects.device",
    "lwm2m.client.objects.security",
    "lwm2m.client.objects.server",
    "lwm2m.client.registration",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
