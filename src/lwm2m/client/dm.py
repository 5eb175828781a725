"""The Device Management and Service Enablement interface as the client serves it
(LwM2M-TS-Core 1.1 §6.3: Read, Discover, Write, Write-Attributes, Execute, Create, Delete,
Read-Composite, Write-Composite), with access control (§7.3) applied before the object tree.

Order of checks for a request from server ``ssid``:

1. /0 and /21 are invisible: 4.01 (and absent from Discover and Register).
2. The object must be implemented: 4.04.
3. Access rights (§7.3.2): 4.01 when the operation is not granted.
4. The data-model rules of the tree: 4.05 (operation not supported by the resource), 4.04,
   4.00.

Write-Composite (§6.3.9) is atomic: every record is validated first (target exists, resource
writable, right granted, value typed), then all are applied; a handler failure during the
application restores the snapshots of every touched object.
"""

from __future__ import annotations

from collections.abc import Mapping

from lwm2m.client.access import AccessControl
from lwm2m.client.attributes import AttributeStore
from lwm2m.client.formats import FormatPolicy
from lwm2m.client.objects.server import AccessRight
from lwm2m.client.tree import BOOTSTRAP_ONLY_OBJECTS, ObjectTree, numeric_resource
from lwm2m.coap.numbers import Code
from lwm2m.codec.link import Attributes, Link
from lwm2m.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    RequestError,
    Unauthorized,
)
from lwm2m.model.nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectNode,
    ResourceInstance,
    SingleResource,
)
from lwm2m.model.path import Path, PathLevel
from lwm2m.operations.requests import (
    Create,
    Delete,
    Discover,
    Execute,
    Read,
    ReadComposite,
    Write,
    WriteAttributes,
    WriteComposite,
)
from lwm2m.operations.responses import Response

__all__ = ["DeviceManagement", "DmRequest"]

DmRequest = (
    Read | Discover | Write | WriteAttributes | Execute | Create | Delete | ReadComposite
) | WriteComposite


class DeviceManagement:
    """Serves DM requests of one server at a time (see the module docstring)."""

    def __init__(
        self,
        tree: ObjectTree,
        access: AccessControl,
        attributes: AttributeStore,
        formats: FormatPolicy,
    ) -> None:
        self.tree = tree
        self.access = access
        self.attributes = attributes
        self.formats = formats

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, request: DmRequest, ssid: int) -> Response:
        """Serve ``request`` for server ``ssid``; RequestError subclasses carry the error code."""
        match request:
            case Read(path, accept):
                node = self.read(ssid, path)
                return Response(
                    Code.CONTENT, content=node, content_format=self.formats.for_node(node, accept)
                )
            case Discover(path):
                return Response(Code.CONTENT, links=tuple(self.discover(ssid, path)))
            case Write(path, node, replace, _):
                self.write(ssid, path, node, replace=replace)
                return Response(Code.CHANGED)
            case WriteAttributes(path, attributes):
                self.write_attributes(ssid, path, attributes)
                return Response(Code.CHANGED)
            case Execute(path, arguments):
                self.execute(ssid, path, arguments)
                return Response(Code.CHANGED)
            case Create():
                ids = self.create(ssid, request)
                location = (str(request.path.object_id), str(ids[0])) if len(ids) == 1 else None
                return Response(Code.CREATED, location=location)
            case Delete(path):
                self.delete(ssid, path)
                return Response(Code.DELETED)
            case ReadComposite(paths, cf, accept):
                content = self.read_composite(ssid, paths)
                fmt = self.formats.for_composite(accept, cf)
                return Response(Code.CONTENT, composite=content, content_format=fmt)
            case WriteComposite(nodes, _):
                self.write_composite(ssid, nodes)
                return Response(Code.CHANGED)
        raise MethodNotAllowed(
            f"{type(request).__name__} is not a DM operation"
        )  # pragma: no cover

    # -- checks --------------------------------------------------------------------------------

    def _visible(self, path: Path) -> int:
        if path.is_root:
            raise MethodNotAllowed("the root path is not a DM target")
        object_id = path.object_id
        assert object_id is not None
        if object_id in BOOTSTRAP_ONLY_OBJECTS:
            raise Unauthorized(f"/{object_id} is reserved to the bootstrap server")
        self.tree.handler(object_id)
        return object_id

    def _require(self, ssid: int, path: Path, right: AccessRight) -> None:
        object_id = path.object_id
        instance_id = path.object_instance_id
        assert object_id is not None
        assert instance_id is not None
        if not self.access.rights(ssid, object_id, instance_id) & right:
            raise Unauthorized(f"server {ssid} has no {right.name} right on {path.parent}")

    # -- operations ----------------------------------------------------------------------------

    def read(self, ssid: int, path: Path) -> Node:
        """Read (§6.3.1) with the access rights of §7.3.2.2-§7.3.2.4."""
        object_id = self._visible(path)
        if path.level is PathLevel.OBJECT:
            if not self.access.enforced:
                return self.tree.read(path)
            ids = self.tree.instance_ids(object_id)
            allowed = [
                iid for iid in ids if self.access.rights(ssid, object_id, iid) & AccessRight.READ
            ]
            if ids and not allowed:
                raise Unauthorized(f"server {ssid} may read no instance of /{object_id}")
            return ObjectNode(
                object_id, [self._instance(self.tree.read(Path(object_id, i))) for i in allowed]
            )
        self._require(ssid, path, AccessRight.READ)
        return self.tree.read(path)

    @staticmethod
    def _instance(node: Node) -> ObjectInstance:
        assert isinstance(node, ObjectInstance)
        return node

    def readable(self, ssid: int, path: Path) -> bool:
        """Whether a notification of ``path`` may go to ``ssid`` (§7.3.2.5)."""
        try:
            self.read(ssid, path)
        except RequestError:
            return False
        return True

    def write(self, ssid: int, path: Path, node: Node, *, replace: bool) -> None:
        """Write (§6.3.3)."""
        self._visible(path)
        if path.level is PathLevel.OBJECT:
            raise MethodNotAllowed("a Write cannot target an object")
        self._require(ssid, path, AccessRight.WRITE)
        self.tree.write(path, node, replace=replace)

    def execute(self, ssid: int, path: Path, arguments: str) -> None:
        """Execute (§6.3.5)."""
        self._visible(path)
        if path.level is not PathLevel.RESOURCE:
            raise MethodNotAllowed(f"{path}: Execute targets a resource")
        self._require(ssid, path, AccessRight.EXECUTE)
        self.tree.execute(path, arguments)

    def create(self, ssid: int, request: Create) -> list[int]:
        """Create (§6.3.6): all instances of the request or none."""
        object_id = self._visible(request.path)
        if not self.access.can_create(ssid, object_id):
            raise Unauthorized(f"server {ssid} may not create instances of /{object_id}")
        state = self.tree.snapshot([object_id, 2])
        created: list[int] = []
        try:
            if request.resources is not None:
                created.append(self.tree.create(object_id, request.resources))
            else:
                if not request.instances:
                    raise BadRequest("Create without content")
                created.extend(
                    self.tree.create(object_id, instance.resources.values(), instance.id)
                    for instance in request.instances
                )
            for iid in created:
                self.access.instance_created(ssid, object_id, iid)
        except Exception:
            self.tree.restore(state)
            raise
        return created

    def delete(self, ssid: int, path: Path) -> None:
        """Delete (§6.3.7): the instance, its /2 instance and its attributes."""
        object_id = self._visible(path)
        if path.level is not PathLevel.OBJECT_INSTANCE:
            raise MethodNotAllowed(f"{path}: Delete targets an object instance")
        self._require(ssid, path, AccessRight.DELETE)
        instance_id = path.object_instance_id
        assert instance_id is not None
        self.tree.delete(object_id, instance_id)
        self.access.instance_deleted(object_id, instance_id)
        self.attributes.remove_below(path)

    def write_attributes(self, ssid: int, path: Path, attributes: Attributes) -> None:
        """Write-Attributes (§6.3.4): needs R on instances and below, nothing on an object."""
        self._visible(path)
        if path.level is not PathLevel.OBJECT:
            self._require(ssid, path, AccessRight.READ)
        if not self.tree.exists(path):
            raise NotFound(f"{path} does not exist")
        if (
            path.level is PathLevel.RESOURCE
            and self.tree.resource_definition(path).operations.executable
        ):
            # Core §5.1.2: notification attributes apply to readable resources; an Execute
            # resource has no value to observe
            raise MethodNotAllowed(f"{path} is an executable resource: it takes no attributes")
        numeric = numeric_resource(self.tree, path)
        self.attributes.write(ssid, path, attributes, numeric=numeric)

    def discover(self, ssid: int, path: Path) -> list[Link]:
        """Discover (§6.3.2): the object, instances and resources below ``path`` with the
        attributes this server attached, ``dim`` for multiple resources and ``ver`` for objects
        whose version is not 1.0. No access right is needed: the 1.0 and 1.1 definitions of
        object 2 grant Read, Observe and Write-Attributes with the R bit, not Discover (checked
        in the OMA registry's 2.xml, both versions)."""
        object_id = self._visible(path)
        if path.level is PathLevel.RESOURCE_INSTANCE:
            raise BadRequest("Discover addresses an object, an instance or a resource")
        if not self.tree.exists(path):
            raise NotFound(f"{path} does not exist")
        definition = self.tree.definition(object_id)
        links: list[Link] = []

        def params(at: Path) -> list[tuple[str, str | int | float | None]]:
            attrs = self.attributes.attached(ssid, at)
            return list(attrs.to_params()) if attrs is not None else []

        if path.level is PathLevel.OBJECT:
            head: list[tuple[str, str | int | float | None]] = []
            if definition.version != "1.0":
                head.append(("ver", definition.version))
            links.append(Link(str(path), head + params(path)))
            instance_ids = self.tree.instance_ids(object_id)
        elif path.level is PathLevel.OBJECT_INSTANCE:
            instance_ids = [path.object_instance_id or 0]
        else:
            instance_ids = []
        for iid in instance_ids:
            at = Path(object_id, iid)
            links.append(Link(str(at), params(at)))
            links.extend(self._resource_links(ssid, at, None))
        if path.level is PathLevel.RESOURCE:
            links.extend(self._resource_links(ssid, path.parent, path.resource_id))
        return links

    def _inherited(self, ssid: int, path: Path) -> list[tuple[str, str | int | float | None]]:
        """The attributes of ``path`` with those it inherits from its object and instance, the
        deeper level winning (Core §6.3.2: a Discover of a resource reports "the assigned
        R-Attributes and the R-Attributes inherited from the Object and Object Instance")."""
        merged: dict[str, str | None] = {}
        for depth in range(1, len(path.ids) + 1):
            attrs = self.attributes.attached(ssid, Path(*path.ids[:depth]))
            if attrs is not None:
                merged.update((name, value) for name, value in attrs.to_params() if value)
        return [(name, merged[name]) for name in Attributes.NAMES if name in merged]

    def _resource_links(self, ssid: int, instance: Path, only: int | None) -> list[Link]:
        object_id = instance.ids[0]
        definition = self.tree.definition(object_id)
        node = self.tree.read(instance, readable_only=False)
        assert isinstance(node, ObjectInstance)
        hidden = self.tree.secret_resources(object_id)
        links: list[Link] = []
        for rid, rdef in definition.resources.items():
            if only is not None and rid != only:
                continue
            resource = node.resources.get(rid)
            if rid in hidden or (resource is None and not rdef.operations.executable):
                continue
            at = instance.child(rid)
            params: list[tuple[str, str | int | float | None]] = []
            if isinstance(resource, MultipleResource):
                params.append(("dim", len(resource.instances)))
            if only is not None:  # the Discover targets this resource: inherited ones too
                params.extend(self._inherited(ssid, at))
            else:
                attrs = self.attributes.attached(ssid, at)
                if attrs is not None:
                    params.extend(attrs.to_params())
            links.append(Link(str(at), params))
            if isinstance(resource, MultipleResource):
                for riid in resource.instances:
                    ri_attrs = self.attributes.attached(ssid, at.child(riid))
                    if ri_attrs is not None:
                        links.append(Link(str(at.child(riid)), ri_attrs.to_params()))
        return links

    def read_composite(self, ssid: int, paths: tuple[Path, ...]) -> dict[Path, Node]:
        """Read-Composite (§6.3.8): best effort — paths that fail are left out; if every path
        fails, the first error is the answer.

        Overlapping paths (``/3/0`` with ``/3/0/11/0``, or a path twice) are merged: the wider
        path is read once and covers the narrower ones (a composite payload must not carry a
        value twice); a narrower path is read on its own only when the wider one failed."""
        read: dict[Path, Node] = {}
        errors: dict[Path, RequestError] = {}
        for path in sorted(set(paths), key=lambda p: len(p.ids)):  # wider paths first
            if any(done.is_prefix_of(path) for done in read):
                continue
            try:
                read[path] = self.read(ssid, path)
            except RequestError as exc:
                errors[path] = exc
        if not read:
            first = next((errors[p] for p in paths if p in errors), None)
            if first is not None:
                raise first
        return {path: read[path] for path in dict.fromkeys(paths) if path in read}

    def write_composite(self, ssid: int, nodes: Mapping[Path, Node | None]) -> None:
        """Write-Composite (§6.3.9): validate every record, then apply all or nothing."""
        if not nodes:
            raise BadRequest("Write-Composite without records")
        for path, node in nodes.items():
            self._validate_composite_record(ssid, path, node)
        touched = sorted({p.object_id for p in nodes if p.object_id is not None})
        state = self.tree.snapshot(touched)
        try:
            for path, node in nodes.items():
                if node is None:
                    self.tree.delete_resource_instance(path)
                else:
                    self.tree.write(path, node, replace=True)
        except Exception:
            self.tree.restore(state)
            raise

    def _validate_composite_record(self, ssid: int, path: Path, node: Node | None) -> None:
        self._visible(path)
        if path.level < PathLevel.RESOURCE:
            raise BadRequest(f"{path}: Write-Composite records address resources")
        self._require(ssid, path, AccessRight.WRITE)
        rdef = self.tree.resource_definition(path)
        if not rdef.operations.writable:
            raise MethodNotAllowed(f"{path} is not writable")
        if not self.tree.exists(Path(*path.ids[:2])):
            raise NotFound(f"{Path(*path.ids[:2])} does not exist")
        if node is None:
            if path.level is not PathLevel.RESOURCE_INSTANCE:
                raise BadRequest(f"{path}: only a resource instance can be removed")
            if not self.tree.exists(path):
                raise NotFound(f"{path} does not exist")
            return
        expected = (
            ResourceInstance
            if path.level is PathLevel.RESOURCE_INSTANCE
            else (MultipleResource if rdef.multiple else SingleResource)
        )
        if not isinstance(node, expected):
            raise BadRequest(f"{path}: the value does not match the resource")
        if node.type is not rdef.type:
            raise BadRequest(f"{path}: a {rdef.type.value} value is expected")
