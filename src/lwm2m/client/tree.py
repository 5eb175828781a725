"""The client's object tree: every path routed to its object handler, with the data-model rules
of LwM2M-TS-Core 1.1 §6.3 (Read, Write replace/partial update, Execute, Create, Delete) and §6.1
(Bootstrap-Write and Bootstrap-Delete semantics) applied on top of the handlers.

The tree knows resource definitions and enforces them: the operations a resource supports
(4.05 otherwise), mandatory resources on Create (4.00), typed values, instance ids. It never
returns a secret resource (/0/x/5, /0/x/8, /21/x/0 and whatever a handler lists in
``secret_resources``): those are write-only, through the bootstrap interface.

Access control (which server may do what) is *not* here: :mod:`lwm2m.client.dm` checks it before
calling the tree. Local callers (the application) use the tree directly with full rights.

Atomicity: a write that touches several resources of an instance is applied by one handler call;
if the handler fails half-way, the tree restores the handler's snapshot, so a failed Write leaves
nothing changed. :meth:`ObjectTree.snapshot` / :meth:`ObjectTree.restore` give the same for a
whole set of objects (Write-Composite, bootstrap rollback).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

from lwm2m.client.arguments import ExecuteArguments
from lwm2m.client.objects.base import ChangeListener, ObjectHandler, _NullListener
from lwm2m.constants import MAX_ID
from lwm2m.errors import (
    BadRequest,
    MethodNotAllowed,
    ModelError,
    NotFound,
    RequestError,
    Unauthorized,
)
from lwm2m.model.definitions import ObjectDefinition, ResourceDefinition
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
from lwm2m.model.ranges import value_range
from lwm2m.model.registry import ModelRegistry, default_registry
from lwm2m.model.values import ResourceType

__all__ = ["BOOTSTRAP_ONLY_OBJECTS", "SECRET_RESOURCES", "ObjectTree", "TreeModel"]

#: Objects only the bootstrap interface may touch; invisible to DM servers (E.1, E.9).
BOOTSTRAP_ONLY_OBJECTS = frozenset({0, 21})

#: Resources never read back over any interface (E.1 Secret Key and SMS Binding Secret Keys,
#: E.9 OSCORE Master Secret).
SECRET_RESOURCES: Mapping[int, frozenset[int]] = {0: frozenset({5, 8}), 21: frozenset({0})}

NUMERIC_TYPES = frozenset({ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.FLOAT})


class TreeModel:
    """The :class:`~lwm2m.model.registry.ObjectModel` of a tree: the definitions its handlers
    implement, then the registry for other objects."""

    __slots__ = ("_registry", "_tree")

    def __init__(self, tree: ObjectTree, registry: ModelRegistry) -> None:
        self._tree = tree
        self._registry = registry

    def object_definition(self, object_id: int) -> ObjectDefinition | None:
        handler = self._tree.get(object_id)
        if handler is not None:
            return handler.definition
        return self._registry.get(object_id)


class ObjectTree:
    """Handlers by object id, and the data-model operations over them.

    :param handlers: the objects of the client.
    :param registry: definitions used for objects without a handler (e.g. to decode a
        Bootstrap-Write for an object the client does not implement, which is then refused).
    """

    def __init__(
        self, handlers: Iterable[ObjectHandler] = (), *, registry: ModelRegistry | None = None
    ) -> None:
        self._handlers: dict[int, ObjectHandler] = {}
        self._registry = registry if registry is not None else default_registry()
        self.model = TreeModel(self, self._registry)
        self.listener: ChangeListener = _NullListener()
        """Receives every change notification of every handler (set by the engine)."""
        for handler in handlers:
            self.add(handler)

    # -- handlers --------------------------------------------------------------------------------

    def add(self, handler: ObjectHandler, *, replace: bool = False) -> None:
        """Register the handler of ``handler.definition.id``."""
        object_id = handler.definition.id
        if object_id in self._handlers and not replace:
            raise ModelError(f"object /{object_id} already has a handler")
        self._handlers[object_id] = handler
        handler.attach(self)
        self.instances_changed(object_id)

    def remove(self, object_id: int) -> None:
        """Unregister an object (a Registration Update follows)."""
        if self._handlers.pop(object_id, None) is not None:
            self.instances_changed(object_id)

    def get(self, object_id: int) -> ObjectHandler | None:
        return self._handlers.get(object_id)

    def handler(self, object_id: int) -> ObjectHandler:
        """The handler of ``object_id``; NotFound when the client does not implement it."""
        try:
            return self._handlers[object_id]
        except KeyError:
            raise NotFound(f"object /{object_id} is not supported") from None

    def __getitem__(self, object_id: int) -> ObjectHandler:
        return self._handlers[object_id]

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._handlers

    def __iter__(self) -> Iterator[ObjectHandler]:
        return iter(self._handlers[oid] for oid in sorted(self._handlers))

    def object_ids(self) -> list[int]:
        return sorted(self._handlers)

    def instance_ids(self, object_id: int) -> list[int]:
        handler = self._handlers.get(object_id)
        return list(handler.instance_ids()) if handler is not None else []

    def definition(self, object_id: int) -> ObjectDefinition:
        return self.handler(object_id).definition

    def resource_definition(self, path: Path) -> ResourceDefinition:
        """The definition of the resource ``path`` addresses (NotFound when unknown)."""
        assert path.object_id is not None
        assert path.resource_id is not None
        rdef = self.definition(path.object_id).resource(path.resource_id)
        if rdef is None:
            raise NotFound(f"{path}: no such resource in object /{path.object_id}")
        return rdef

    def secret_resources(self, object_id: int) -> frozenset[int]:
        handler = self._handlers.get(object_id)
        extra: frozenset[int] = getattr(handler, "secret_resources", frozenset())
        return SECRET_RESOURCES.get(object_id, frozenset()) | extra

    # -- ChangeListener (fan-in from the handlers) -------------------------------------------

    def resources_changed(
        self, object_id: int, instance_id: int, resource_ids: Collection[int]
    ) -> None:
        self.listener.resources_changed(object_id, instance_id, resource_ids)

    def instances_changed(self, object_id: int) -> None:
        self.listener.instances_changed(object_id)

    def object_event(self, event: object) -> None:
        self.listener.object_event(event)

    # -- queries ---------------------------------------------------------------------------------

    def exists(self, path: Path) -> bool:
        """Whether ``path`` addresses something that exists."""
        if path.is_root:
            return True
        assert path.object_id is not None
        handler = self._handlers.get(path.object_id)
        if handler is None:
            return False
        if path.level is PathLevel.OBJECT:
            return True
        if path.object_instance_id not in handler.instance_ids():
            return False
        if path.level is PathLevel.OBJECT_INSTANCE:
            return True
        try:
            self.read(path, readable_only=False)
        except RequestError:
            rdef = handler.definition.resource(path.resource_id or 0)
            return (
                path.level is PathLevel.RESOURCE and rdef is not None and rdef.operations.executable
            )
        return True

    def read(self, path: Path, *, readable_only: bool = True) -> Node:
        """The node at ``path``.

        ``readable_only`` (the DM view) leaves out resources without the R operation and
        refuses to read one directly (4.05). Secret resources are never returned (4.01 when
        addressed directly).
        """
        if path.is_root:
            raise MethodNotAllowed("the root path cannot be read")
        assert path.object_id is not None
        handler = self.handler(path.object_id)
        if path.level is PathLevel.OBJECT:
            return ObjectNode(
                path.object_id,
                [
                    self._read_instance(handler, iid, readable_only)
                    for iid in handler.instance_ids()
                ],
            )
        iid = path.object_instance_id
        assert iid is not None
        if path.level is PathLevel.OBJECT_INSTANCE:
            return self._read_instance(handler, iid, readable_only)
        rdef = self.resource_definition(path)
        if rdef.id in self.secret_resources(path.object_id):
            raise Unauthorized(f"{path} is a secret resource")
        if readable_only and not rdef.operations.readable:
            raise MethodNotAllowed(f"{path} is not readable")
        resource = handler.read(iid, [rdef.id]).resources.get(rdef.id)
        if resource is None:
            raise NotFound(f"{path} does not exist")
        if path.level is PathLevel.RESOURCE:
            return resource
        riid = path.resource_instance_id
        if not isinstance(resource, MultipleResource):
            raise NotFound(f"{path}: the resource has no instances")
        instance = resource.instances.get(riid) if riid is not None else None
        if instance is None:
            raise NotFound(f"{path} does not exist")
        return instance

    def _read_instance(
        self, handler: ObjectHandler, instance_id: int, readable_only: bool
    ) -> ObjectInstance:
        instance = handler.read(instance_id)
        definition = handler.definition
        hidden = self.secret_resources(definition.id)
        kept: list[Resource] = []
        for rid, resource in instance.resources.items():
            rdef = definition.resource(rid)
            if rid in hidden or rdef is None:
                continue
            if readable_only and not rdef.operations.readable:
                continue
            kept.append(resource)
        return ObjectInstance(instance_id, kept)

    def value(self, path: Path) -> object:
        """Local convenience: the value of a single resource or resource instance, the values of
        a multiple resource (a dict), with full read access (secrets excepted)."""
        node = self.read(path, readable_only=False)
        if isinstance(node, SingleResource | ResourceInstance):
            return node.value
        if isinstance(node, MultipleResource):
            return node.values
        raise ModelError(f"{path} does not address a resource")

    # -- writes ----------------------------------------------------------------------------------

    def write(
        self, path: Path, node: Node, *, replace: bool = True, bootstrap: bool = False
    ) -> None:
        """Write ``node`` at ``path``.

        DM semantics (``bootstrap=False``, LwM2M-TS-Core §6.3.3): ``replace`` on an instance
        writes the given resources and removes the optional writable ones not given; a partial
        update (``replace=False``) merges multiple resources instance by instance. Every
        written resource needs the W operation (4.05); the target instance must exist (4.04);
        a write to an object is refused (4.05, §7.3.2.4).

        Bootstrap semantics (§6.1.7.4): the target is created when missing, resources are
        replaced wholly, operations are not checked, an object-level write creates or updates
        each instance.
        """
        if path.is_root:
            raise MethodNotAllowed("the root path cannot be written")
        assert path.object_id is not None
        handler = self.handler(path.object_id)
        definition = handler.definition
        match path.level:
            case PathLevel.OBJECT:
                if not bootstrap:
                    raise MethodNotAllowed("a Write cannot target an object")
                if not isinstance(node, ObjectNode):
                    raise BadRequest(f"{path}: expected object content")
                new_instances = list(node.instances.values())

                def write_all() -> None:
                    for instance in new_instances:
                        self._bootstrap_instance(handler, instance)

                self._atomic(handler, write_all)
            case PathLevel.OBJECT_INSTANCE:
                if not isinstance(node, ObjectInstance) or node.id != path.object_instance_id:
                    raise BadRequest(f"{path}: expected the content of that instance")
                if bootstrap:
                    self._atomic(handler, lambda: self._bootstrap_instance(handler, node))
                else:
                    self._atomic(handler, lambda: self._dm_write_instance(handler, node, replace))
            case PathLevel.RESOURCE:
                iid = path.object_instance_id
                assert iid is not None
                rdef = self.resource_definition(path)
                if not isinstance(node, SingleResource | MultipleResource) or node.id != rdef.id:
                    raise BadRequest(f"{path}: expected the content of that resource")
                self._check_resource(definition, node, check_writable=not bootstrap)
                if iid not in handler.instance_ids():
                    if not bootstrap:
                        raise NotFound(f"{path.parent} does not exist")
                    self._create(handler, ObjectInstance(iid, [node]), bootstrap=True)
                    return
                handler.write(iid, [node])
                self.resources_changed(definition.id, iid, [rdef.id])
            case PathLevel.RESOURCE_INSTANCE:
                iid = path.object_instance_id
                riid = path.resource_instance_id
                assert iid is not None
                assert riid is not None
                rdef = self.resource_definition(path)
                if not rdef.multiple:
                    raise MethodNotAllowed(f"{path.parent} is a single resource")
                if not bootstrap and not rdef.operations.writable:
                    raise MethodNotAllowed(f"{path.parent} is not writable")
                if not isinstance(node, ResourceInstance) or node.id != riid:
                    raise BadRequest(f"{path}: expected the content of that resource instance")
                if node.type is not rdef.type:
                    raise BadRequest(f"{path}: a {rdef.type.value} value is expected")
                self._check_range(definition, rdef, (node.value,), str(path))
                if iid not in handler.instance_ids():
                    raise NotFound(f"{path.parent.parent} does not exist")
                current = handler.read(iid, [rdef.id]).resources.get(rdef.id)
                instances = dict(current.instances) if isinstance(current, MultipleResource) else {}
                instances[riid] = node
                handler.write(iid, [MultipleResource(rdef.id, rdef.type, instances)])
                self.resources_changed(definition.id, iid, [rdef.id])

    def delete_resource_instance(self, path: Path) -> None:
        """Remove one instance of a multiple resource (Write-Composite with a value-less
        record, §6.3.9). NotFound when it does not exist."""
        assert path.level is PathLevel.RESOURCE_INSTANCE
        assert path.object_id is not None
        handler = self.handler(path.object_id)
        rdef = self.resource_definition(path)
        iid = path.object_instance_id
        assert iid is not None
        current = handler.read(iid, [rdef.id]).resources.get(rdef.id)
        if not isinstance(current, MultipleResource) or path.resource_instance_id not in (
            current.instances
        ):
            raise NotFound(f"{path} does not exist")
        instances = {i: v for i, v in current.instances.items() if i != path.resource_instance_id}
        handler.write(iid, [MultipleResource(rdef.id, rdef.type, instances)])
        self.resources_changed(path.object_id, iid, [rdef.id])

    def _check_resource(
        self, definition: ObjectDefinition, resource: Resource, *, check_writable: bool
    ) -> ResourceDefinition:
        rdef = definition.resource(resource.id)
        where = f"/{definition.id}/*/{resource.id}"
        if rdef is None:
            raise NotFound(f"{where}: no such resource")
        if check_writable and not rdef.operations.writable:
            raise MethodNotAllowed(f"{where} is not writable")
        if rdef.multiple != isinstance(resource, MultipleResource):
            kind = "multiple" if rdef.multiple else "single"
            raise BadRequest(f"{where} is a {kind} resource")
        if resource.type is not rdef.type and rdef.type is not ResourceType.NONE:
            raise BadRequest(f"{where}: a {rdef.type.value} value is expected")
        if isinstance(resource, SingleResource):
            self._check_range(definition, rdef, (resource.value,), where)
        elif isinstance(resource, MultipleResource):
            values = [instance.value for instance in resource.instances.values()]
            self._check_range(definition, rdef, values, where)
        return rdef

    def _check_range(
        self,
        definition: ObjectDefinition,
        rdef: ResourceDefinition,
        values: Collection[object],
        where: str,
    ) -> None:
        """4.00 for a written value outside the resource's RangeEnumeration (Core §7.2), as
        far as :func:`~lwm2m.model.ranges.value_range` understands it. Secret resources are
        not checked: they may hold a Secure Component reference instead of the key."""
        allowed = value_range(rdef.range_enumeration, rdef.type)
        if allowed is None or rdef.id in self.secret_resources(definition.id):
            return
        for value in values:
            if not allowed.admits(value):
                raise BadRequest(f"{where}: {allowed.describe(value)}")

    def _dm_write_instance(
        self, handler: ObjectHandler, node: ObjectInstance, replace: bool
    ) -> None:
        definition = handler.definition
        iid = node.id
        if iid not in handler.instance_ids():
            raise NotFound(f"/{definition.id}/{iid} does not exist")
        for resource in node.resources.values():
            self._check_resource(definition, resource, check_writable=True)
        current = handler.read(iid)
        resources: list[Resource] = []
        for resource in node.resources.values():
            existing = current.resources.get(resource.id)
            if (
                not replace
                and isinstance(resource, MultipleResource)
                and isinstance(existing, MultipleResource)
            ):
                merged = {**existing.instances, **resource.instances}
                resource = MultipleResource(resource.id, resource.type, merged)
            resources.append(resource)
        remove: list[int] = []
        if replace:
            for rid in current.resources:
                rdef = definition.resource(rid)
                if (
                    rid not in node.resources
                    and rdef is not None
                    and rdef.operations.writable
                    and not rdef.mandatory
                ):
                    remove.append(rid)
        handler.write(iid, resources, remove)
        self.resources_changed(definition.id, iid, [*node.resources, *remove])

    def _bootstrap_instance(self, handler: ObjectHandler, node: ObjectInstance) -> None:
        definition = handler.definition
        for resource in node.resources.values():
            self._check_resource(definition, resource, check_writable=False)
        if node.id in handler.instance_ids():
            handler.write(node.id, list(node.resources.values()))
            self.resources_changed(definition.id, node.id, list(node.resources))
        else:
            self._create(handler, node, bootstrap=True)

    # -- create, delete, execute -------------------------------------------------------------------

    def create(
        self,
        object_id: int,
        resources: Iterable[Resource],
        instance_id: int | None = None,
        *,
        bootstrap: bool = False,
    ) -> int:
        """Create an instance and return its id (the lowest free one when ``instance_id`` is
        None).

        DM semantics (§7.3.2.4): an id already in use, a second instance of a single-instance
        object or a missing mandatory writable resource is a 4.00; values for read-only or
        unknown resources are ignored.
        """
        handler = self.handler(object_id)
        existing = set(handler.instance_ids())
        if instance_id is None:
            instance_id = next(i for i in range(MAX_ID) if i not in existing)
        elif instance_id in existing:
            raise BadRequest(f"/{object_id}/{instance_id} already exists")
        node = ObjectInstance(instance_id, list(resources))
        self._atomic(handler, lambda: self._create(handler, node, bootstrap=bootstrap))
        return instance_id

    def _create(self, handler: ObjectHandler, node: ObjectInstance, *, bootstrap: bool) -> None:
        definition = handler.definition
        if not definition.multiple and handler.instance_ids():
            raise BadRequest(f"/{definition.id} is a single-instance object")
        kept: list[Resource] = []
        for resource in node.resources.values():
            rdef = definition.resource(resource.id)
            if rdef is None or (not bootstrap and not rdef.operations.writable):
                if bootstrap:
                    raise NotFound(f"/{definition.id}/*/{resource.id}: no such resource")
                continue  # read-only or unsupported values in a Create are ignored
            self._check_resource(definition, resource, check_writable=False)
            kept.append(resource)
        if not bootstrap:
            given = {r.id for r in kept}
            missing = [
                rid
                for rid, rdef in definition.resources.items()
                if rdef.mandatory and rdef.operations.writable and rid not in given
            ]
            if missing:
                raise BadRequest(f"/{definition.id}: mandatory resource {missing[0]} missing")
        handler.create(ObjectInstance(node.id, kept))
        self.instances_changed(definition.id)

    def delete(self, object_id: int, instance_id: int) -> None:
        """Delete an instance (NotFound when absent)."""
        handler = self.handler(object_id)
        if instance_id not in handler.instance_ids():
            raise NotFound(f"/{object_id}/{instance_id} does not exist")
        handler.delete(instance_id)
        self.instances_changed(object_id)

    def execute(
        self, path: Path, arguments: ExecuteArguments | str = "", *, check_operations: bool = True
    ) -> None:
        """Execute the resource at ``path`` (4.05 when it is not executable)."""
        if path.level is not PathLevel.RESOURCE:
            raise MethodNotAllowed(f"{path}: Execute targets a resource")
        assert path.object_id is not None
        assert path.object_instance_id is not None
        handler = self.handler(path.object_id)
        rdef = self.resource_definition(path)
        if check_operations and not rdef.operations.executable:
            raise MethodNotAllowed(f"{path} is not executable")
        if path.object_instance_id not in handler.instance_ids():
            raise NotFound(f"{path.parent} does not exist")
        args = (
            arguments
            if isinstance(arguments, ExecuteArguments)
            else ExecuteArguments.parse(arguments)
        )
        handler.execute(path.object_instance_id, rdef.id, args)

    # -- snapshots -------------------------------------------------------------------------------

    def snapshot(self, object_ids: Iterable[int] | None = None) -> dict[int, object]:
        """Snapshots of the handlers of ``object_ids`` (all when None)."""
        ids = self.object_ids() if object_ids is None else object_ids
        return {oid: self._handlers[oid].snapshot() for oid in ids if oid in self._handlers}

    def restore(self, snapshot: Mapping[int, object]) -> None:
        """Restore handler snapshots taken by :meth:`snapshot`."""
        for oid, state in snapshot.items():
            handler = self._handlers.get(oid)
            if handler is not None:
                handler.restore(state)
                self.instances_changed(oid)

    def _atomic(self, handler: ObjectHandler, action: Callable[[], object]) -> None:
        state = handler.snapshot()
        try:
            action()
        except Exception:
            handler.restore(state)
            raise


def numeric_resource(tree: ObjectTree, path: Path) -> bool:
    """Whether ``path`` addresses one numeric value (gt/lt/st apply, §5.1.2)."""
    if path.level < PathLevel.RESOURCE:
        return False
    try:
        rdef = tree.resource_definition(path)
    except RequestError:
        return False
    if rdef.type not in NUMERIC_TYPES:
        return False
    return path.level is PathLevel.RESOURCE_INSTANCE or not rdef.multiple
