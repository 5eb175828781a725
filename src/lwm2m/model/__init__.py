"""The LwM2M object model: paths, typed values, node trees and object definitions
(LwM2M-TS-Core §7)."""

from lwm2m.model.definitions import ObjectDefinition, Operations, ResourceDefinition
from lwm2m.model.nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectNode,
    Resource,
    ResourceInstance,
    SingleResource,
)
from lwm2m.model.path import Path, PathLevel
from lwm2m.model.values import ObjectLink, ResourceType, Value, check_value

__all__ = [
    "MultipleResource",
    "Node",
    "ObjectDefinition",
    "ObjectInstance",
    "ObjectLink",
    "ObjectNode",
    "Operations",
    "Path",
    "PathLevel",
    "Resource",
    "ResourceDefinition",
    "ResourceInstance",
    "ResourceType",
    "SingleResource",
    "Value",
    "check_value",
]
