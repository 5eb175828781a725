"""The examples in the Secure Component modules' docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

from conftest import require
from lwm2m.secure import missing_modules

MODULES = [
    "lwm2m.secure.interfaces",
    "lwm2m.secure.redact",
    "lwm2m.secure.hkdf",
    "lwm2m.secure.uri",
    "lwm2m.secure.soft",
    "lwm2m.secure.store",
    "lwm2m.secure.object",
    "lwm2m.secure.csr",
    "lwm2m.secure.admin",
    "lwm2m.secure.ram",
    "lwm2m.secure.seram",
    "lwm2m.secure.pkcs11",
    "lwm2m.secure.pcsc.apdu",
    "lwm2m.secure.pcsc.ber",
    "lwm2m.secure.pcsc.card",
    "lwm2m.secure.pcsc.errors",
    "lwm2m.secure.pcsc.iso7816",
    "lwm2m.secure.pcsc.uri",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    if name.endswith("pkcs11"):
        require(not missing_modules()["pkcs11"], "python-pkcs11")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
