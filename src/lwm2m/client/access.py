"""Access control: which DM server may do what (LwM2M-TS-Core 1.1 §7.3 "Access Control",
Appendix E.3 Access Control object).

Rules implemented (§7.3.1-§7.3.2):

- /0 Security and /21 OSCORE are never accessible to a DM server (4.01), whatever the ACLs.
- With a single server account (one /1 instance) that server has full rights: the Access Control
  object is not consulted ("single server context", §7.3.1.3).
- With several accounts the rights on ``/o/i`` come from the /2 instance targeting it:
  the ACL resource instance of the server's Short Server ID if present; else full rights when
  the server is the Access Control Owner; else the default ACL instance 0; else none.
- Create on ``/o`` needs the C bit in the /2 instance targeting ``/o/65535`` (owner 65535,
  written during bootstrap), for the server or in the default instance.
- A /2 instance itself is readable by every server and writable by its owner only.
- Project decision, documented in docs/design.md: a server's *own* /1 instance without a /2
  instance is readable, writable and executable by that server (Anjay does the same), so that a
  factory configuration with several servers keeps Registration Update Trigger usable.

When a server creates an instance the client creates its /2 instance with that server as owner;
when an instance is deleted its /2 instance goes too (§7.3.1.2.2).
"""

from __future__ import annotations

from lwm2m.client.objects.server import AccessRight, AclEntry, acl_instance
from lwm2m.client.tree import BOOTSTRAP_ONLY_OBJECTS, ObjectTree
from lwm2m.constants import MAX_ID
from lwm2m.errors import RequestError
from lwm2m.model.nodes import MultipleResource, SingleResource

__all__ = ["AccessControl"]

ACL_OBJECT = 2
SERVER_OBJECT = 1


class AccessControl:
    """Computes rights from the tree's /1 and /2 objects."""

    def __init__(self, tree: ObjectTree) -> None:
        self._tree = tree

    def server_count(self) -> int:
        """The number of DM server accounts (/1 instances)."""
        return len(self._tree.instance_ids(SERVER_OBJECT))

    @property
    def enforced(self) -> bool:
        """ACLs apply only with more than one server account."""
        return self.server_count() > 1

    def entries(self) -> list[AclEntry]:
        """Every /2 instance, read through its handler (whatever implements it)."""
        handler = self._tree.get(ACL_OBJECT)
        if handler is None:
            return []
        entries: list[AclEntry] = []
        for iid in handler.instance_ids():
            try:
                resources = handler.read(iid).resources
            except RequestError:
                continue
            oid, oiid, owner = resources.get(0), resources.get(1), resources.get(3)
            acl = resources.get(2)
            if not isinstance(oid, SingleResource) or not isinstance(oiid, SingleResource):
                continue
            if not isinstance(oid.value, int) or not isinstance(oiid.value, int):
                continue
            owner_id = owner.value if isinstance(owner, SingleResource) else MAX_ID
            rights = {}
            if isinstance(acl, MultipleResource):
                rights = {
                    ssid: AccessRight(v & 31)
                    for ssid, v in acl.values.items()
                    if isinstance(v, int)
                }
            entries.append(
                AclEntry(iid, oid.value, oiid.value, int(owner_id or 0), rights)  # type: ignore[arg-type]
            )
        return entries

    def entry_for(self, object_id: int, object_instance_id: int) -> AclEntry | None:
        for entry in self.entries():
            if entry.object_id == object_id and entry.object_instance_id == object_instance_id:
                return entry
        return None

    def rights(self, short_server_id: int, object_id: int, instance_id: int) -> AccessRight:
        """The rights of a server on ``/object_id/instance_id`` (§7.3.2.1)."""
        if object_id in BOOTSTRAP_ONLY_OBJECTS:
            return AccessRight.NONE
        if not self.enforced:
            return AccessRight.FULL
        if object_id == ACL_OBJECT:
            own = next((e for e in self.entries() if e.instance_id == instance_id), None)
            if own is not None and own.owner == short_server_id:
                return AccessRight.READ | AccessRight.WRITE
            return AccessRight.READ
        entry = self.entry_for(object_id, instance_id)
        if entry is None:
            if (
                object_id == SERVER_OBJECT
                and self._server_instance_of(short_server_id) == instance_id
            ):
                return AccessRight.READ | AccessRight.WRITE | AccessRight.EXECUTE
            return AccessRight.NONE
        if short_server_id in entry.acl:
            return entry.acl[short_server_id]
        if entry.owner == short_server_id:
            return AccessRight.FULL
        return entry.acl.get(0, AccessRight.NONE)

    def can_create(self, short_server_id: int, object_id: int) -> bool:
        """Whether a server may Create instances of ``object_id`` (§7.3.1.2.1)."""
        if object_id in BOOTSTRAP_ONLY_OBJECTS:
            return False
        if not self.enforced:
            return True
        entry = self.entry_for(object_id, MAX_ID)
        if entry is None:
            return False
        rights = entry.acl.get(short_server_id, entry.acl.get(0, AccessRight.NONE))
        return bool(rights & AccessRight.CREATE)

    def instance_created(self, short_server_id: int, object_id: int, instance_id: int) -> None:
        """Give a created instance its /2 instance, owned by the creating server."""
        handler = self._tree.get(ACL_OBJECT)
        if handler is None or object_id == ACL_OBJECT or not self.enforced:
            return
        stale = self.entry_for(object_id, instance_id)
        if stale is not None:  # left over from an instance removed locally: not the creator's
            self._tree.delete(ACL_OBJECT, stale.instance_id)
        used = set(handler.instance_ids())
        iid = next(i for i in range(MAX_ID) if i not in used)
        node = acl_instance(iid, object_id, instance_id, short_server_id)
        self._tree.create(ACL_OBJECT, node.resources.values(), iid, bootstrap=True)

    def instance_deleted(self, object_id: int, instance_id: int) -> None:
        """Remove the /2 instances of a deleted instance."""
        if object_id == ACL_OBJECT:
            return
        for entry in self.entries():
            if entry.object_id == object_id and entry.object_instance_id == instance_id:
                self._tree.delete(ACL_OBJECT, entry.instance_id)

    def _server_instance_of(self, short_server_id: int) -> int | None:
        handler = self._tree.get(SERVER_OBJECT)
        if handler is None:
            return None
        for iid in handler.instance_ids():
            ssid = handler.read(iid, [0]).resources.get(0)
            if isinstance(ssid, SingleResource) and ssid.value == short_server_id:
                return iid
        return None
