"""Fixtures shared by the codec tests (only ever add fixtures here; others rely on the names).

- ``core_model``: the bundled core objects (0 Security, 1 Server, 2 ACL, 3 Device 1.1, ...) plus
  the two objects 65 and 66 of the TS's Objlnk example (LwM2M-TS-Core §7.4.3.3) and the
  all-types test object of :mod:`.strategies`.
- ``test_model``: only the all-types test object.
"""

from __future__ import annotations

import pytest

from lwm2m.model import ObjectDefinition, Operations, ResourceDefinition, ResourceType
from lwm2m.model.registry import ModelRegistry, default_registry

from .strategies import TEST_MODEL, TEST_OBJECT

_R = Operations.R

#: Object 65 of the TS's Objlnk example: 0 multiple Objlnk, 1 String, 2 Integer.
OBJECT_65 = ObjectDefinition(
    65,
    "object link tests 65",
    resources={
        0: ResourceDefinition(0, "res0", _R, True, False, ResourceType.OBJLNK),
        1: ResourceDefinition(1, "res1", _R, False, False, ResourceType.STRING),
        2: ResourceDefinition(2, "res2", _R, False, False, ResourceType.INTEGER),
    },
)

#: Object 66 of the TS's Objlnk example: 0 String, 1 String, 2 Objlnk.
OBJECT_66 = ObjectDefinition(
    66,
    "object link tests 66",
    resources={
        0: ResourceDefinition(0, "res0", _R, False, False, ResourceType.STRING),
        1: ResourceDefinition(1, "res1", _R, False, False, ResourceType.STRING),
        2: ResourceDefinition(2, "res2", _R, False, False, ResourceType.OBJLNK),
    },
)


def make_core_model() -> ModelRegistry:
    """A fresh registry: the bundled objects, objects 65/66 and the test object."""
    registry = default_registry()
    for definition in (OBJECT_65, OBJECT_66, TEST_OBJECT):
        registry.add(definition)
    return registry


@pytest.fixture(scope="session")
def core_model() -> ModelRegistry:
    return make_core_model()


@pytest.fixture(scope="session")
def test_model() -> ModelRegistry:
    return TEST_MODEL
