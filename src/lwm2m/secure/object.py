"""The Secure Component LwM2M object: its definition and the value of its instances
(LwM2M-SCS-2 now; SCS-3, -6…-11 management resources in a later issue).

No registered OMA object covers a Secure Element, TEE or secure boot, so the project defines
its own (``objects/33000-1_0.xml``, loadable with :func:`lwm2m.model.ddf.parse_ddf`). Its id is
:data:`SECURE_COMPONENT_OBJECT_ID`, in the range the OMNA LwM2M registry leaves for private
objects that are not published (32769-42768, "Company Reserved", allocated to a company as a
bulk reservation of up to 50 ids). Reserve a block with OMA before shipping; until then the id
can be changed by passing ``object_id=`` to every function here.

One instance per component; resources 0-13 are the identification data a server needs to
check the component through GlobalPlatform DLOA (Digital Letter of Approval v1.0): type,
secure-hardware flag, backend, label, manufacturer, model, serial, ``scheme:value``
identifiers (ICCID, EID, CPLC, token serial…), platform and firmware versions, supported
services and the DLOA references as three parallel multiple resources (registrar URL, platform
id, application id — resource instance *i* of each belongs together). Resource ids 14-19 are
kept for identification data; 20-79 for the management resources planned per requirement
(see the DDF description and ``docs/secure-component.md``).
"""

from __future__ import annotations

import dataclasses
from enum import IntEnum
from functools import cache
from importlib import resources

from lwm2m.model.ddf import parse_ddf
from lwm2m.model.definitions import ObjectDefinition, default_urn
from lwm2m.model.nodes import MultipleResource, ObjectInstance, Resource, SingleResource
from lwm2m.model.registry import ModelRegistry
from lwm2m.model.values import ResourceType
from lwm2m.secure.interfaces import ComponentInfo

__all__ = [
    "SECURE_COMPONENT_OBJECT_ID",
    "SecureComponentResource",
    "register_secure_component_object",
    "secure_component_definition",
    "secure_component_instance",
]

SECURE_COMPONENT_OBJECT_ID = 33000
"""The object id of the Secure Component object (OMNA private range 32769-42768)."""

_DDF_FILE = "33000-1_0.xml"


class SecureComponentResource(IntEnum):
    """Resource ids of the Secure Component object."""

    COMPONENT_TYPE = 0
    SECURE_HARDWARE = 1
    BACKEND = 2
    LABEL = 3
    MANUFACTURER = 4
    MODEL = 5
    SERIAL_NUMBER = 6
    IDENTIFIERS = 7
    PLATFORM_VERSION = 8
    FIRMWARE_VERSION = 9
    SUPPORTED_SERVICES = 10
    DLOA_REGISTRAR = 11
    DLOA_PLATFORM_ID = 12
    DLOA_APPLICATION_ID = 13


@cache
def _bundled() -> ObjectDefinition:
    data = (resources.files("lwm2m.secure") / "objects" / _DDF_FILE).read_bytes()
    (definition,) = parse_ddf(data, source=f"lwm2m/secure/objects/{_DDF_FILE}")
    return definition


def secure_component_definition(
    object_id: int = SECURE_COMPONENT_OBJECT_ID,
) -> ObjectDefinition:
    """The object definition, under ``object_id`` (the DDF's id unless overridden).

    >>> d = secure_component_definition(); d.id, d.urn, d.name
    (33000, 'urn:oma:lwm2m:x:33000', 'Secure Component')
    >>> secure_component_definition(42769).urn
    'urn:oma:lwm2m:x:42769'
    """
    definition = _bundled()
    if object_id == definition.id:
        return definition
    return dataclasses.replace(
        definition, id=object_id, urn=default_urn(object_id, definition.version)
    )


def register_secure_component_object(
    registry: ModelRegistry, object_id: int = SECURE_COMPONENT_OBJECT_ID
) -> ObjectDefinition:
    """Add the Secure Component object to ``registry``; return its definition.

    >>> from lwm2m.model.registry import default_registry
    >>> registry = default_registry()
    >>> register_secure_component_object(registry).id in registry.object_ids()
    True
    """
    definition = secure_component_definition(object_id)
    registry.add(definition)
    return definition


def secure_component_instance(info: ComponentInfo, instance_id: int = 0) -> ObjectInstance:
    """The read-only instance describing a component, from its :class:`ComponentInfo`.

    Empty texts and empty lists are left out (the resources are optional).

    >>> from lwm2m.secure.interfaces import ComponentType
    >>> inst = secure_component_instance(ComponentInfo(ComponentType.SOFTWARE, False, "soft"))
    >>> {rid: r.value for rid, r in inst.resources.items()}
    {0: 0, 1: False, 2: 'soft'}
    """
    r = SecureComponentResource
    items: list[Resource] = [
        SingleResource(int(r.COMPONENT_TYPE), ResourceType.INTEGER, info.type.value),
        SingleResource(int(r.SECURE_HARDWARE), ResourceType.BOOLEAN, info.secure_hardware),
        SingleResource(int(r.BACKEND), ResourceType.STRING, info.backend),
    ]
    for rid, text in (
        (r.LABEL, info.label),
        (r.MANUFACTURER, info.manufacturer),
        (r.MODEL, info.model),
        (r.SERIAL_NUMBER, info.serial_number),
        (r.PLATFORM_VERSION, info.platform_version),
        (r.FIRMWARE_VERSION, info.firmware_version),
    ):
        if text:
            items.append(SingleResource(int(rid), ResourceType.STRING, text))
    for rid, texts in (
        (r.IDENTIFIERS, [str(i) for i in info.identifiers]),
        (r.SUPPORTED_SERVICES, list(info.services)),
        (r.DLOA_REGISTRAR, [d.registrar for d in info.dloa]),
        (r.DLOA_PLATFORM_ID, [d.platform_id for d in info.dloa]),
        (r.DLOA_APPLICATION_ID, [d.application_id for d in info.dloa]),
    ):
        if texts:
            items.append(MultipleResource.of(int(rid), ResourceType.STRING, dict(enumerate(texts))))
    return ObjectInstance(instance_id, items)
