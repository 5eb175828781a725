"""The object handler API of the client: how application objects plug into the object tree
(LwM2M-TS-Core 1.1 §6.3 "Device Management and Service Enablement Interface", §7 resource model).

Every path ``/o/...`` of the client routes to the :class:`ObjectHandler` registered for object
``o``. A handler is a small *internal* interface: it reads and writes typed nodes without any
policy. The object tree (:mod:`lwm2m.client.tree`) and the DM layer (:mod:`lwm2m.client.dm`)
enforce the rules — supported operations, access control, secret resources, atomicity — so that
a handler stays a plain data source. Handlers raise :class:`~lwm2m.errors.RequestError`
subclasses (``NotFound()``, ``BadRequest()``, ``MethodNotAllowed()``...) and the tree turns them
into the response code.

Three ways to write a handler:

- :class:`SimpleObject` + :class:`SimpleInstance`: dict-backed instances for quick objects;
  subclass :class:`SimpleInstance` to compute values (``read_resource``), react to writes
  (``write_resource``) or implement Execute (``execute``). Call :meth:`SimpleInstance.set` when a
  value changes on the device so observers fire.
- :class:`StoredObject`: instances kept as whole :class:`~lwm2m.model.nodes.ObjectInstance`
  values in an :class:`InstanceStore`. This is the **storage seam** of the Security (/0) and
  OSCORE (/21) objects: a later Secure Component backend implements :class:`InstanceStore` and
  the engine does not change (what ``get`` returns for a secret resource — the key itself or a
  reference to it — is the store's business; the tree never hands secret resources out).
- Any class implementing :class:`ObjectHandler` (for example over a database).

Change notification: the tree attaches a :class:`ChangeListener` to each handler; a handler calls
``resources_changed`` when a value changes (observations are re-evaluated), ``instances_changed``
when instances appear or disappear (a Registration Update follows) and ``object_event`` to hand
an application-level event (firmware progress, ...) to the engine's event queue.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Protocol, TypeAlias, runtime_checkable

from lwm2m.client.arguments import ExecuteArguments
from lwm2m.errors import MethodNotAllowed, ModelError, NotFound
from lwm2m.model.definitions import ObjectDefinition, ResourceDefinition
from lwm2m.model.nodes import MultipleResource, ObjectInstance, Resource, SingleResource
from lwm2m.model.values import ResourceType, Value, check_value

__all__ = [
    "ChangeListener",
    "InstanceStore",
    "MemoryInstanceStore",
    "ObjectEnabler",
    "ObjectHandler",
    "ResourceValue",
    "SimpleInstance",
    "SimpleObject",
    "StoredObject",
    "resource_node",
    "resource_value",
]

ResourceValue: TypeAlias = Value | Mapping[int, Value]
"""The Python value of a resource: a value, or resource instance id -> value for a multiple one."""


# -- listener ----------------------------------------------------------------------------------


class ChangeListener(Protocol):
    """What a handler tells the engine (attached by the object tree)."""

    def resources_changed(
        self, object_id: int, instance_id: int, resource_ids: Collection[int]
    ) -> None:
        """Values changed (an empty ``resource_ids`` means: anything in the instance)."""
        ...

    def instances_changed(self, object_id: int) -> None:
        """Instances were created or deleted (the registered object links change)."""
        ...

    def object_event(self, event: object) -> None:
        """An application-level event to hand to the engine's user (e.g. firmware progress)."""
        ...


class _NullListener:
    def resources_changed(
        self, object_id: int, instance_id: int, resource_ids: Collection[int]
    ) -> None:
        return None

    def instances_changed(self, object_id: int) -> None:
        return None

    def object_event(self, event: object) -> None:
        return None


_NULL_LISTENER = _NullListener()


# -- the handler protocol ----------------------------------------------------------------------


@runtime_checkable
class ObjectHandler(Protocol):
    """Serves every path under ``/{definition.id}`` (internal access: no policy here).

    Handlers may raise :class:`~lwm2m.errors.RequestError` subclasses from every method. Values
    arrive typed as the definition says (the tree checks them before calling ``write`` or
    ``create``).
    """

    @property
    def definition(self) -> ObjectDefinition:
        """The object definition (id, version, resources) this handler implements."""
        ...

    def instance_ids(self) -> Sequence[int]:
        """The existing instance ids, ascending."""
        ...

    def read(self, instance_id: int, resource_ids: Collection[int] | None = None) -> ObjectInstance:
        """The instance with the requested resources that exist (all of them when None).

        Raises NotFound when the instance does not exist. Resources asked for but absent are
        simply left out.
        """
        ...

    def write(
        self, instance_id: int, resources: Sequence[Resource], remove: Collection[int] = ()
    ) -> None:
        """Replace each resource in ``resources`` wholly and remove the ``remove`` ones."""
        ...

    def execute(self, instance_id: int, resource_id: int, arguments: ExecuteArguments) -> None:
        """Execute a resource."""
        ...

    def create(self, instance: ObjectInstance) -> None:
        """Create a new instance (its id is free; the tree checked it)."""
        ...

    def delete(self, instance_id: int) -> None:
        """Delete an instance."""
        ...

    def snapshot(self) -> object:
        """An opaque copy of every instance, for :meth:`restore` (bootstrap and Write-Composite
        rollback)."""
        ...

    def restore(self, snapshot: object) -> None:
        """Put the state of :meth:`snapshot` back (without notifying application callbacks)."""
        ...

    def attach(self, listener: ChangeListener) -> None:
        """Receive the tree's listener (called when the handler is added to a tree)."""
        ...


# -- value helpers ------------------------------------------------------------------------------


def resource_node(definition: ResourceDefinition, value: object) -> Resource:
    """The node of ``definition`` holding ``value`` (a mapping or sequence for a multiple
    resource). Raises :class:`~lwm2m.errors.ModelError` on a type mismatch."""
    if definition.multiple:
        items: Mapping[int, object]
        if isinstance(value, Mapping):
            items = value
        elif isinstance(value, list | tuple):
            items = dict(enumerate(value))
        else:
            raise ModelError(f"resource {definition.id} is multiple: give a mapping or a list")
        return MultipleResource.of(
            definition.id,
            definition.type,
            {i: check_value(definition.type, v) for i, v in items.items()},
        )
    return SingleResource(definition.id, definition.type, check_value(definition.type, value))


def resource_value(resource: Resource) -> ResourceValue:
    """The Python value of a resource node (a dict for a multiple resource)."""
    if isinstance(resource, SingleResource):
        return resource.value
    return resource.values


def _readable_definitions(definition: ObjectDefinition) -> dict[int, ResourceDefinition]:
    return {
        rid: rdef
        for rid, rdef in definition.resources.items()
        if rdef.type is not ResourceType.NONE
    }


# -- base class ---------------------------------------------------------------------------------


class ObjectEnabler:
    """A convenient base for handlers: keeps the definition and the listener; every operation
    is refused until a subclass implements it; :meth:`snapshot`/:meth:`restore` go through
    :meth:`read`, :meth:`write`, :meth:`create` and :meth:`delete`.

    ``secret_resources`` names resources that are never read back over any interface (e.g. the
    Secret Key of the Security object).
    """

    secret_resources: frozenset[int] = frozenset()

    def __init__(self, definition: ObjectDefinition) -> None:
        self._definition = definition
        self._listener: ChangeListener = _NULL_LISTENER

    @property
    def definition(self) -> ObjectDefinition:
        return self._definition

    @property
    def object_id(self) -> int:
        return self._definition.id

    def attach(self, listener: ChangeListener) -> None:
        self._listener = listener

    # -- notifications to the engine -----------------------------------------------------------

    def changed(self, instance_id: int, *resource_ids: int) -> None:
        """Tell observers that values changed (no ids: anything in the instance)."""
        self._listener.resources_changed(self._definition.id, instance_id, resource_ids)

    def instances_changed(self) -> None:
        """Tell the engine that instances were created or deleted locally."""
        self._listener.instances_changed(self._definition.id)

    def emit(self, event: object) -> None:
        """Hand an application event to the engine's event queue."""
        self._listener.object_event(event)

    # -- operations ----------------------------------------------------------------------------

    def instance_ids(self) -> Sequence[int]:
        return []

    def read(self, instance_id: int, resource_ids: Collection[int] | None = None) -> ObjectInstance:
        raise NotFound(f"no instance /{self.object_id}/{instance_id}")

    def write(
        self, instance_id: int, resources: Sequence[Resource], remove: Collection[int] = ()
    ) -> None:
        raise MethodNotAllowed(f"/{self.object_id} cannot be written")

    def execute(self, instance_id: int, resource_id: int, arguments: ExecuteArguments) -> None:
        raise MethodNotAllowed(f"/{self.object_id}/{instance_id}/{resource_id} cannot be executed")

    def create(self, instance: ObjectInstance) -> None:
        raise MethodNotAllowed(f"instances of /{self.object_id} cannot be created")

    def delete(self, instance_id: int) -> None:
        raise MethodNotAllowed(f"instances of /{self.object_id} cannot be deleted")

    def snapshot(self) -> object:
        return {iid: self.read(iid) for iid in self.instance_ids()}

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, dict)
        for iid in list(self.instance_ids()):
            if iid not in snapshot:
                self.delete(iid)
        current = set(self.instance_ids())
        for iid, instance in snapshot.items():
            if iid in current:
                existing = self.read(iid)
                gone = [rid for rid in existing.resources if rid not in instance.resources]
                self.write(iid, list(instance.resources.values()), gone)
            else:
                self.create(instance)


# -- dict-backed objects ------------------------------------------------------------------------


class SimpleInstance:
    """One object instance backed by a dict of resource values.

    ``values`` maps resource ids to values (a mapping or list for multiple resources); they are
    typed against the object definition when the instance is added to a :class:`SimpleObject`.
    ``on_execute`` maps executable resource ids to callbacks taking the parsed arguments.

    Subclass and override :meth:`read_resource`, :meth:`write_resource`, :meth:`execute` or
    :meth:`resource_ids` for computed values and behaviour; call :meth:`set` (or
    :meth:`changed`) when a value changes on the device so that observers are notified.
    """

    def __init__(
        self,
        values: Mapping[int, object] | None = None,
        *,
        on_execute: Mapping[int, Callable[[ExecuteArguments], None]] | None = None,
    ) -> None:
        self._values: dict[int, ResourceValue] = {}
        self._pending: dict[int, object] = dict(values or {})
        self._on_execute = dict(on_execute or {})
        self._object: SimpleObject | None = None
        self.id: int = -1

    # -- wiring --------------------------------------------------------------------------------

    def _bind(self, owner: SimpleObject, instance_id: int) -> None:
        self._object = owner
        self.id = instance_id
        pending, self._pending = self._pending, {}
        for rid, value in pending.items():
            self._values[rid] = self._typed(rid, value)

    def _typed(self, resource_id: int, value: object) -> ResourceValue:
        if self._object is None:
            raise ModelError("the instance is not part of an object yet")
        rdef = self._object.definition.resource(resource_id)
        if rdef is None:
            raise ModelError(f"/{self._object.object_id} has no resource {resource_id}")
        return resource_value(resource_node(rdef, value))

    @property
    def owner(self) -> SimpleObject | None:
        """The object this instance belongs to (None until added)."""
        return self._object

    # -- local (application) API ---------------------------------------------------------------

    def get(self, resource_id: int) -> ResourceValue | None:
        """The stored value of a resource, or None."""
        if self._object is None:
            return self._pending.get(resource_id)  # type: ignore[return-value]
        return self._values.get(resource_id)

    def set(self, resource_id: int, value: object) -> None:
        """Set a value from the device side (typed against the definition) and notify
        observers."""
        if self._object is None:
            self._pending[resource_id] = value
            return
        typed = self._typed(resource_id, value)
        if self._values.get(resource_id) != typed or resource_id not in self._values:
            self._values[resource_id] = typed
            self.changed(resource_id)

    def changed(self, *resource_ids: int) -> None:
        """Tell observers that these resources changed (none given: the whole instance)."""
        if self._object is not None:
            self._object.changed(self.id, *resource_ids)

    # -- overridable hooks ---------------------------------------------------------------------

    def resource_ids(self) -> Collection[int]:
        """The resources this instance has (for a full read)."""
        return self._values.keys()

    def read_resource(self, resource_id: int) -> ResourceValue:
        """The value of one resource; NotFound when it does not exist."""
        try:
            return self._values[resource_id]
        except KeyError:
            raise NotFound(f"no resource {resource_id}") from None

    def write_resource(self, resource_id: int, value: ResourceValue) -> None:
        """Store a value written by a server (already typed)."""
        self._values[resource_id] = value

    def remove_resource(self, resource_id: int) -> None:
        """Remove an optional resource (Write replace of the instance without it)."""
        self._values.pop(resource_id, None)

    def execute(self, resource_id: int, arguments: ExecuteArguments) -> None:
        """Execute a resource: the ``on_execute`` callback, else 4.05."""
        callback = self._on_execute.get(resource_id)
        if callback is None:
            raise MethodNotAllowed(f"resource {resource_id} has no Execute action")
        callback(arguments)

    def deleted(self) -> None:
        """Called when a server deletes the instance."""


class SimpleObject(ObjectEnabler):
    """An object whose instances are :class:`SimpleInstance` s.

    ``instances`` maps ids to instances or to plain value dicts. ``factory`` builds the instance
    for a Create (None: Create is refused with 4.05). ``deletable`` False refuses Delete (4.05):
    for device-intrinsic objects such as /3, /4, /6 (a Bootstrap-Delete of ``/`` skips them).

    >>> from lwm2m.model.registry import default_registry
    >>> loc = SimpleObject(default_registry().get(6), {0: {0: 45.0, 1: 5.5, 5: 0}})
    >>> loc.read(0).resources[0].value
    45.0
    """

    def __init__(
        self,
        definition: ObjectDefinition,
        instances: Mapping[int, SimpleInstance | Mapping[int, object]] | None = None,
        *,
        factory: Callable[[], SimpleInstance] | None = SimpleInstance,
        deletable: bool = True,
    ) -> None:
        super().__init__(definition)
        self._instances: dict[int, SimpleInstance] = {}
        self._factory = factory
        self._deletable = deletable
        for iid, instance in (instances or {}).items():
            self._add(iid, instance)

    def _add(self, instance_id: int, instance: SimpleInstance | Mapping[int, object]) -> None:
        inst = instance if isinstance(instance, SimpleInstance) else SimpleInstance(instance)
        if instance_id in self._instances:
            raise ModelError(f"/{self.object_id}/{instance_id} already exists")
        if not self.definition.multiple and self._instances:
            raise ModelError(f"/{self.object_id} is a single-instance object")
        inst._bind(self, instance_id)
        self._instances[instance_id] = inst

    # -- local API -----------------------------------------------------------------------------

    def add_instance(
        self, instance_id: int, instance: SimpleInstance | Mapping[int, object]
    ) -> SimpleInstance:
        """Add an instance from the device side (a Registration Update follows)."""
        self._add(instance_id, instance)
        self.instances_changed()
        return self._instances[instance_id]

    def remove_instance(self, instance_id: int) -> None:
        """Remove an instance from the device side (a Registration Update follows)."""
        self._get(instance_id)
        del self._instances[instance_id]
        self.instances_changed()

    def instance(self, instance_id: int) -> SimpleInstance:
        """The instance object (KeyError when absent)."""
        return self._instances[instance_id]

    def _get(self, instance_id: int) -> SimpleInstance:
        try:
            return self._instances[instance_id]
        except KeyError:
            raise NotFound(f"no instance /{self.object_id}/{instance_id}") from None

    # -- handler -------------------------------------------------------------------------------

    def instance_ids(self) -> Sequence[int]:
        return sorted(self._instances)

    def read(self, instance_id: int, resource_ids: Collection[int] | None = None) -> ObjectInstance:
        inst = self._get(instance_id)
        definitions = _readable_definitions(self.definition)
        wanted: Iterable[int] = inst.resource_ids() if resource_ids is None else resource_ids
        resources: list[Resource] = []
        for rid in sorted(set(wanted)):
            rdef = definitions.get(rid)
            if rdef is None:
                continue
            try:
                value = inst.read_resource(rid)
            except NotFound:
                continue
            resources.append(resource_node(rdef, value))
        return ObjectInstance(instance_id, resources)

    def write(
        self, instance_id: int, resources: Sequence[Resource], remove: Collection[int] = ()
    ) -> None:
        inst = self._get(instance_id)
        for resource in resources:
            inst.write_resource(resource.id, resource_value(resource))
        for rid in remove:
            inst.remove_resource(rid)

    def execute(self, instance_id: int, resource_id: int, arguments: ExecuteArguments) -> None:
        self._get(instance_id).execute(resource_id, arguments)

    def create(self, instance: ObjectInstance) -> None:
        if self._factory is None:
            raise MethodNotAllowed(f"instances of /{self.object_id} cannot be created")
        inst = self._factory()
        self._add(instance.id, inst)
        for resource in instance.resources.values():
            inst.write_resource(resource.id, resource_value(resource))

    def delete(self, instance_id: int) -> None:
        inst = self._get(instance_id)
        if not self._deletable:
            raise MethodNotAllowed(f"instances of /{self.object_id} cannot be deleted")
        inst.deleted()
        del self._instances[instance_id]

    def snapshot(self) -> object:
        return {iid: (inst, copy.deepcopy(inst._values)) for iid, inst in self._instances.items()}

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, dict)
        self._instances = {}
        for iid, (inst, values) in snapshot.items():
            inst._values = values
            self._instances[iid] = inst


# -- the storage seam ---------------------------------------------------------------------------


@runtime_checkable
class InstanceStore(Protocol):
    """Where whole object instances live: the seam for Secure Component storage (SCS-4/5).

    Instances are immutable :class:`~lwm2m.model.nodes.ObjectInstance` values. ``put`` replaces
    an instance atomically. A Secure Component backend may return key *references* instead of
    key bytes from ``get`` for secret resources, as long as ``put`` accepts them back.
    """

    def list(self, object_id: int) -> list[int]:
        """The instance ids of ``object_id``, ascending."""
        ...

    def get(self, object_id: int, instance_id: int) -> ObjectInstance | None:
        """The stored instance, or None."""
        ...

    def put(self, object_id: int, instance: ObjectInstance) -> None:
        """Store (create or replace) an instance."""
        ...

    def delete(self, object_id: int, instance_id: int) -> None:
        """Remove an instance (no error when absent)."""
        ...


class MemoryInstanceStore:
    """The in-memory :class:`InstanceStore` (the default). Its repr never shows values."""

    def __init__(self) -> None:
        self._objects: dict[int, dict[int, ObjectInstance]] = {}

    def list(self, object_id: int) -> list[int]:
        return sorted(self._objects.get(object_id, {}))

    def get(self, object_id: int, instance_id: int) -> ObjectInstance | None:
        return self._objects.get(object_id, {}).get(instance_id)

    def put(self, object_id: int, instance: ObjectInstance) -> None:
        self._objects.setdefault(object_id, {})[instance.id] = instance

    def delete(self, object_id: int, instance_id: int) -> None:
        self._objects.get(object_id, {}).pop(instance_id, None)

    def __repr__(self) -> str:
        counts = {oid: len(insts) for oid, insts in sorted(self._objects.items()) if insts}
        return f"<MemoryInstanceStore instances={counts}>"


class StoredObject(ObjectEnabler):
    """A handler whose instances live in an :class:`InstanceStore` (used for /0, /1, /2, /21)."""

    def __init__(self, definition: ObjectDefinition, store: InstanceStore) -> None:
        super().__init__(definition)
        self.store = store

    def instance_ids(self) -> Sequence[int]:
        return self.store.list(self.object_id)

    def _get(self, instance_id: int) -> ObjectInstance:
        instance = self.store.get(self.object_id, instance_id)
        if instance is None:
            raise NotFound(f"no instance /{self.object_id}/{instance_id}")
        return instance

    def read(self, instance_id: int, resource_ids: Collection[int] | None = None) -> ObjectInstance:
        instance = self._get(instance_id)
        if resource_ids is None:
            return instance
        wanted = set(resource_ids)
        return ObjectInstance(
            instance_id, [r for rid, r in instance.resources.items() if rid in wanted]
        )

    def write(
        self, instance_id: int, resources: Sequence[Resource], remove: Collection[int] = ()
    ) -> None:
        current = dict(self._get(instance_id).resources)
        for rid in remove:
            current.pop(rid, None)
        for resource in resources:
            current[resource.id] = resource
        self.store.put(self.object_id, ObjectInstance(instance_id, current))

    def create(self, instance: ObjectInstance) -> None:
        self.store.put(self.object_id, instance)

    def delete(self, instance_id: int) -> None:
        self._get(instance_id)
        self.store.delete(self.object_id, instance_id)

    def snapshot(self) -> object:
        oid = self.object_id
        return {iid: self.store.get(oid, iid) for iid in self.store.list(oid)}

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, dict)
        oid = self.object_id
        for iid in self.store.list(oid):
            if iid not in snapshot:
                self.store.delete(oid, iid)
        for instance in snapshot.values():
            self.store.put(oid, instance)

    # -- typed helpers for subclasses ----------------------------------------------------------

    def value(self, instance_id: int, resource_id: int, default: Value = None) -> Value:
        """The value of a single resource, or ``default``."""
        instance = self.store.get(self.object_id, instance_id)
        resource = instance.resources.get(resource_id) if instance is not None else None
        return resource.value if isinstance(resource, SingleResource) else default

    def values(self, instance_id: int, resource_id: int) -> dict[int, Value]:
        """The instances of a multiple resource (empty when absent)."""
        instance = self.store.get(self.object_id, instance_id)
        resource = instance.resources.get(resource_id) if instance is not None else None
        return resource.values if isinstance(resource, MultipleResource) else {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} /{self.object_id} instances={list(self.instance_ids())}>"
