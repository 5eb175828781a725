"""A read-only object whose instances are fixed values (e.g. the Secure Component object of
LwM2M-SCS-2, one instance per component, built from its identification by the adapter).

The server can read, observe, discover and composite-read the instances; Write, Create, Delete
and Execute are 4.05. :meth:`FixedObject.replace` swaps the instances (observers are notified,
a changed instance list leads to a Registration Update).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from lwm2m.client.objects.base import ObjectEnabler
from lwm2m.errors import NotFound
from lwm2m.model.definitions import ObjectDefinition
from lwm2m.model.nodes import ObjectInstance

__all__ = ["FixedObject"]


class FixedObject(ObjectEnabler):
    """Serves ``instances`` of ``definition`` as they are, read-only."""

    def __init__(self, definition: ObjectDefinition, instances: Iterable[ObjectInstance]) -> None:
        super().__init__(definition)
        self._instances = {i.id: i for i in instances}

    def instance_ids(self) -> Sequence[int]:
        return sorted(self._instances)

    def read(self, instance_id: int, resource_ids: Collection[int] | None = None) -> ObjectInstance:
        instance = self._instances.get(instance_id)
        if instance is None:
            raise NotFound(f"no instance /{self.object_id}/{instance_id}")
        if resource_ids is None:
            return instance
        wanted = set(resource_ids)
        return ObjectInstance(
            instance_id, [r for rid, r in instance.resources.items() if rid in wanted]
        )

    def replace(self, instances: Iterable[ObjectInstance]) -> None:
        """New values (the component changed): observers are notified."""
        before = set(self._instances)
        self._instances = {i.id: i for i in instances}
        if set(self._instances) != before:
            self.instances_changed()
        for iid in self._instances:
            self.changed(iid)

    def snapshot(self) -> object:
        return dict(self._instances)

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, dict)
        self._instances = dict(snapshot)

    def __repr__(self) -> str:
        return f"<FixedObject /{self.object_id} instances={self.instance_ids()}>"
