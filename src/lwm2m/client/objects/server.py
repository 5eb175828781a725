"""The LwM2M Server object (/1) and the Access Control object (/2) (LwM2M-TS-Core 1.1
Appendix E.2, E.3; §7.3 Access Control).

Both keep their instances in an :class:`~lwm2m.client.objects.base.InstanceStore`. The executable
resources of /1 — 4 Disable, 8 Registration Update Trigger, 9 Bootstrap-Request Trigger — are
forwarded to the client engine through :class:`ServerActions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Protocol

from lwm2m.client.arguments import ExecuteArguments
from lwm2m.client.objects.base import InstanceStore, MemoryInstanceStore, StoredObject
from lwm2m.client.objects.security import _definition
from lwm2m.errors import MethodNotAllowed
from lwm2m.model.definitions import ObjectDefinition
from lwm2m.model.nodes import MultipleResource, ObjectInstance, Resource, SingleResource
from lwm2m.model.values import ResourceType

__all__ = [
    "AccessControlObject",
    "AccessRight",
    "AclEntry",
    "ServerActions",
    "ServerObject",
    "acl_instance",
]

DISABLE = 4
UPDATE_TRIGGER = 8
BOOTSTRAP_TRIGGER = 9


class ServerActions(Protocol):
    """What executing /1/x/4, /1/x/8 and /1/x/9 asks of the engine."""

    def disable_server(self, short_server_id: int) -> None: ...

    def trigger_update(self, short_server_id: int, arguments: ExecuteArguments) -> None: ...

    def trigger_bootstrap(self, short_server_id: int) -> None: ...


class ServerObject(StoredObject):
    """/1 LwM2M Server: one instance per DM server account."""

    def __init__(
        self, store: InstanceStore | None = None, definition: ObjectDefinition | None = None
    ) -> None:
        super().__init__(
            definition or _definition(1), store if store is not None else MemoryInstanceStore()
        )
        self.actions: ServerActions | None = None
        """Set by the engine; Execute is refused (4.05) while None."""

    def short_server_id(self, instance_id: int) -> int | None:
        ssid = self.value(instance_id, 0)
        return ssid if isinstance(ssid, int) else None

    def execute(self, instance_id: int, resource_id: int, arguments: ExecuteArguments) -> None:
        self._get(instance_id)
        ssid = self.short_server_id(instance_id)
        actions = self.actions
        if actions is None or ssid is None:
            raise MethodNotAllowed("server actions are not available")
        if resource_id == DISABLE:
            actions.disable_server(ssid)
        elif resource_id == UPDATE_TRIGGER:
            actions.trigger_update(ssid, arguments)
        elif resource_id == BOOTSTRAP_TRIGGER:
            actions.trigger_bootstrap(ssid)
        else:
            raise MethodNotAllowed(f"/1/{instance_id}/{resource_id} is not executable")


class AccessRight(IntFlag):
    """ACL bits of /2/x/2 (LwM2M-TS-Core 1.1 E.3, §7.3.1): LSB first."""

    NONE = 0
    READ = 1
    """Read, Observe, Write-Attributes (Discover needs no right)."""
    WRITE = 2
    EXECUTE = 4
    DELETE = 8
    CREATE = 16
    FULL = READ | WRITE | EXECUTE | DELETE

    @classmethod
    def parse(cls, text: str | int) -> AccessRight:
        """``"RWE"``-style letters or the number.

        >>> AccessRight.parse("RW") == AccessRight.READ | AccessRight.WRITE
        True
        """
        if isinstance(text, int):
            return cls(text & 31)
        letters = {"R": cls.READ, "W": cls.WRITE, "E": cls.EXECUTE, "D": cls.DELETE}
        letters["C"] = cls.CREATE
        rights = cls.NONE
        for char in text.strip().upper():
            if char not in letters:
                raise ValueError(f"unknown access right {char!r} (use R, W, E, D, C)")
            rights |= letters[char]
        return rights


@dataclass(frozen=True, slots=True)
class AclEntry:
    """One /2 instance, read as a value."""

    instance_id: int
    object_id: int
    object_instance_id: int
    owner: int
    acl: Mapping[int, AccessRight] = field(default_factory=dict)


def acl_instance(
    instance_id: int,
    object_id: int,
    object_instance_id: int,
    owner: int,
    acl: Mapping[int, int] | None = None,
) -> ObjectInstance:
    """A /2 instance as a node (``acl``: short server id (0 = default) -> rights)."""
    resources: list[Resource] = [
        SingleResource(0, ResourceType.INTEGER, object_id),
        SingleResource(1, ResourceType.INTEGER, object_instance_id),
        MultipleResource.of(2, ResourceType.INTEGER, {k: int(v) for k, v in (acl or {}).items()}),
        SingleResource(3, ResourceType.INTEGER, owner),
    ]
    return ObjectInstance(instance_id, resources)


class AccessControlObject(StoredObject):
    """/2 Access Control: per object instance, the rights of each server and its owner (read
    by :class:`lwm2m.client.access.AccessControl`)."""

    def __init__(
        self, store: InstanceStore | None = None, definition: ObjectDefinition | None = None
    ) -> None:
        super().__init__(
            definition or _definition(2), store if store is not None else MemoryInstanceStore()
        )
