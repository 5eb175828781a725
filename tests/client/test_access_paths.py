"""Access Control (object 2) edge cases, through the engine as CoAP messages (LwM2M-TS-Core 1.1
§7.3; spec-reference §1.8 "/2 Access Control 1.1": ACL resource instances keyed by Short Server
ID, instance 0 = default, bits R=1 W=2 E=4 D=8 C=16; owner 65535 = bootstrap only).

The rules under test are those of the module docstring of :mod:`lwm2m.client.access`: the
server's own ACL entry, else full rights for the Access Control Owner, else the default entry 0,
else nothing; no /2 instance means no right (own /1 instance excepted); Create needs the C bit
of the /2 instance targeting ``/o/65535``; ACLs are only consulted with several /1 instances.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import pytest

from lwm2m.client import AccessRight, SimpleInstance, SimpleObject
from lwm2m.client.access import AccessControl
from lwm2m.client.objects.base import MemoryInstanceStore
from lwm2m.client.objects.server import AccessControlObject, ServerObject, acl_instance
from lwm2m.client.tree import ObjectTree
from lwm2m.coap.numbers import Code
from lwm2m.codec import composite_codec_for
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.errors import BadRequest, NotFound
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectNode,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import default_registry
from lwm2m.operations.requests import Register

from .helpers import REGISTRY, Harness, bs_table, code, config, decode, encode, server
from .test_dm import TEST_OBJECT

INT = ResourceType.INTEGER
OID = TEST_OBJECT.id  # 33000: 0 name RW, 1 value R, 2 setpoints RW multiple, 3 reset E, 4 mode RW


def make(acls: list[dict[str, Any]], *, ssids: Collection[int] = (101, 102), **extra: Any) -> Any:
    """A registered client with DM servers ``ssids``, the ACLs given and /33000 instances 0-4
    (resource 3 records executions in ``h.executed``)."""
    executed: list[int] = []

    def instance(iid: int) -> SimpleInstance:
        return SimpleInstance(
            {0: f"i{iid}", 1: 1.5, 2: [1, 2], 4: 1}, on_execute={3: lambda _a: executed.append(iid)}
        )

    test = SimpleObject(TEST_OBJECT, {i: instance(i) for i in range(5)})
    registry = default_registry()
    registry.add(TEST_OBJECT)
    h = Harness(
        config(*(server(s) for s in ssids), acl=acls, **extra), objects=[test], registry=registry
    )
    h.register_all()
    h.executed = executed  # type: ignore[attr-defined]
    return h


def acl(instance: int, owner: int, rights: Mapping[str, str] | None = None) -> dict[str, Any]:
    table: dict[str, Any] = {"object": OID, "instance": instance, "owner": owner}
    if rights is not None:
        table["rights"] = dict(rights)
    return table


def text(h: Harness, method: int, path: str, ssid: int, payload: bytes = b"") -> str:
    cf = CF.TEXT if payload else None
    return code(h.request(method, path, payload=payload, cf=cf, ssid=ssid))


def operations(h: Harness, iid: int, ssid: int) -> dict[str, str]:
    """Read, Write, Execute on /33000/iid for ``ssid`` (Delete is tested separately: it is
    destructive)."""
    return {
        "read": text(h, Code.GET, f"/{OID}/{iid}/0", ssid),
        "write": text(h, Code.PUT, f"/{OID}/{iid}/0", ssid, b"w"),
        "execute": text(h, Code.POST, f"/{OID}/{iid}/3", ssid),
    }


ALLOWED = {"read": "2.05", "write": "2.04", "execute": "2.04"}
DENIED = {"read": "4.01", "write": "4.01", "execute": "4.01"}


# -- how rights are obtained -------------------------------------------------------------------


def test_each_bit_grants_exactly_its_operation() -> None:
    h = make(
        [
            acl(0, 101, {"102": "R"}),
            acl(1, 101, {"102": "W"}),
            acl(2, 101, {"102": "E"}),
            acl(3, 101, {"102": "D"}),
        ]
    )
    assert operations(h, 0, 102) == {"read": "2.05", "write": "4.01", "execute": "4.01"}
    assert operations(h, 1, 102) == {"read": "4.01", "write": "2.04", "execute": "4.01"}
    assert operations(h, 2, 102) == {"read": "4.01", "write": "4.01", "execute": "2.04"}
    assert operations(h, 3, 102) == DENIED
    assert h.executed == [2]  # type: ignore[attr-defined]
    # D alone allows Delete, R/W/E do not
    for iid in (0, 1, 2):
        assert text(h, Code.DELETE, f"/{OID}/{iid}", 102) == "4.01"
    assert text(h, Code.DELETE, f"/{OID}/3", 102) == "2.02"
    assert h.tree.instance_ids(OID) == [0, 1, 2, 4]


def test_server_entry_takes_precedence_over_default_entry() -> None:
    h = make([acl(0, 101, {"0": "RWE", "102": "R"})])
    assert operations(h, 0, 102) == {"read": "2.05", "write": "4.01", "execute": "4.01"}


def test_default_entry_applies_to_servers_without_their_own() -> None:
    h = make([acl(0, 101, {"0": "RW"})], ssids=(101, 102, 103))
    for ssid in (102, 103):
        assert operations(h, 0, ssid) == {"read": "2.05", "write": "2.04", "execute": "4.01"}
    assert text(h, Code.DELETE, f"/{OID}/0", 103) == "4.01"


def test_owner_without_own_entry_has_full_rights_but_not_create() -> None:
    h = make([acl(0, 101, {"0": "R"})])
    assert operations(h, 0, 101) == ALLOWED
    assert AccessControl(h.tree).rights(101, OID, 0) == AccessRight.FULL
    assert not AccessControl(h.tree).rights(101, OID, 0) & AccessRight.CREATE
    assert text(h, Code.DELETE, f"/{OID}/0", 101) == "2.02"


def test_owner_own_entry_is_used_instead_of_full_rights() -> None:
    # the module docstring: "the ACL resource instance of the server's Short Server ID if
    # present; else full rights when the server is the Access Control Owner"
    h = make([acl(0, 101, {"101": "R", "102": "RWE"})])
    assert operations(h, 0, 101) == {"read": "2.05", "write": "4.01", "execute": "4.01"}
    assert operations(h, 0, 102) == ALLOWED


def test_empty_acl_leaves_only_the_owner() -> None:
    h = make([acl(0, 102, {})])
    assert operations(h, 0, 102) == ALLOWED
    assert operations(h, 0, 101) == DENIED


def test_acl_instance_without_acl_resource_leaves_only_the_owner() -> None:
    """The ACL resource (/2/x/2) is optional: a /2 instance written by the bootstrap server
    without it gives the owner full rights and nobody else anything."""
    h = make([], bootstrap=bs_table())
    node = ObjectInstance(
        7,
        [SingleResource(0, INT, OID), SingleResource(1, INT, 4), SingleResource(3, INT, 102)],
    )
    assert code(h.bs(Code.PUT, "/2/7", payload=encode(node, "/2/7"), cf=CF.TLV)) == "2.04"
    assert code(h.bs(Code.POST, "/bs")) == "2.04"
    h.register_all()
    assert 2 not in h.tree.read(Path(2, 7)).resources
    assert operations(h, 4, 102) == ALLOWED
    assert operations(h, 4, 101) == DENIED


def test_reserved_acl_bits_grant_nothing() -> None:
    h = make([acl(0, 101, {})])
    entry = AccessControl(h.tree).entry_for(OID, 0)
    assert entry is not None
    # 33 = 32 (a reserved bit) | 1 (R): a Write is refused (the ACL's range is 0..31), so the
    # application stores it through the handler, as a 1.0 ACL ("16-bit") would let it be
    path = Path(2, entry.instance_id, 2, 102)
    with pytest.raises(BadRequest, match=r"33 is outside the range '0\.\.31'"):
        h.tree.write(path, ResourceInstance(102, INT, 33))
    handler = h.tree.handler(2)
    current = handler.read(entry.instance_id, [2]).resources[2]
    assert isinstance(current, MultipleResource)
    acl_values = {**current.instances, 102: ResourceInstance(102, INT, 33)}
    handler.write(entry.instance_id, [MultipleResource(2, INT, acl_values)])
    assert AccessControl(h.tree).rights(102, OID, 0) == AccessRight.READ
    assert operations(h, 0, 102) == {"read": "2.05", "write": "4.01", "execute": "4.01"}


def test_instance_without_acl_instance_is_closed_to_every_server() -> None:
    h = make([acl(0, 101, {"0": "RWED"})])
    for ssid in (101, 102):
        assert operations(h, 4, ssid) == DENIED
        assert text(h, Code.DELETE, f"/{OID}/4", ssid) == "4.01"
        assert code(h.request(Code.PUT, f"/{OID}/4/0", query=["pmin=5"], ssid=ssid)) == "4.01"
        response = h.request(Code.GET, f"/{OID}/4", observe=0, token=b"t", ssid=ssid)
        assert code(response) == "4.01"
        assert response.observe is None
    assert len(h.engine.observations) == 0
    # and the object-level read shows only the instance the server may read
    node = decode(h.request(Code.GET, f"/{OID}", ssid=102), f"/{OID}")
    assert isinstance(node, ObjectNode)
    assert list(node.instances) == [0]


def test_unknown_instance_is_unauthorized_before_not_found_when_enforced() -> None:
    """dm.py docstring order: access rights (4.01) come before the data-model 4.04; an
    undefined resource id is a 4.04 before any right (the engine checks it first)."""
    h = make([acl(0, 101, {"0": "R"})])
    assert text(h, Code.GET, f"/{OID}/9", 101) == "4.01"
    assert text(h, Code.GET, f"/{OID}/0/99", 102) == "4.04"
    assert text(h, Code.GET, "/4444/0", 102) == "4.04"
    assert text(h, Code.GET, "/0/0", 101) == "4.01"
    single = make([], ssids=(101,))
    assert text(single, Code.GET, f"/{OID}/9", 101) == "4.04"


def test_rights_checked_before_operation_support() -> None:
    """A server without the E right gets 4.01 even on a resource that is not executable; with
    the right, the data-model answer (4.05) comes through."""
    h = make([acl(0, 101, {"102": "R"})])
    assert text(h, Code.POST, f"/{OID}/0/0", 102) == "4.01"
    assert text(h, Code.POST, f"/{OID}/0/0", 101) == "4.05"
    assert text(h, Code.PUT, f"/{OID}/0/1", 102, b"2.5") == "4.01"
    assert text(h, Code.PUT, f"/{OID}/0/1", 101, b"2.5") == "4.05"


# -- Create (object-level ACL instance /o/65535) ------------------------------------------------


def _create(h: Harness, ssid: int) -> Any:
    payload = encode(ObjectInstance(0, [SingleResource(4, INT, 9)]), f"/{OID}/0")
    return h.request(Code.POST, f"/{OID}", payload=payload, cf=CF.TLV, ssid=ssid)


def test_create_needs_the_c_bit_at_object_level() -> None:
    h = make([acl(65535, 65535, {"0": "C", "102": "RWED"})])
    assert code(_create(h, 102)) == "4.01"  # own entry without C overrides the default C
    response = _create(h, 101)  # default entry grants C
    assert code(response) == "2.01"
    assert response.location_path == (str(OID), "5")
    assert h.tree.instance_ids(OID) == [0, 1, 2, 3, 4, 5]


def test_create_without_object_level_acl_is_refused() -> None:
    h = make([acl(0, 101, {"0": "RWEDC"})])  # C on an instance-level ACL means nothing
    assert code(_create(h, 101)) == "4.01"
    assert h.tree.instance_ids(OID) == [0, 1, 2, 3, 4]


def test_owner_of_object_level_acl_gets_no_implicit_create() -> None:
    h = make([acl(65535, 101, {"102": "C"})])
    assert code(_create(h, 101)) == "4.01"
    assert code(_create(h, 102)) == "2.01"


def test_created_instance_acl_is_owned_by_creator_and_others_have_nothing() -> None:
    h = make([acl(65535, 65535, {"0": "C"})])
    response = _create(h, 102)
    iid = int(response.location_path[1])
    entry = AccessControl(h.tree).entry_for(OID, iid)
    assert entry is not None
    assert (entry.owner, dict(entry.acl)) == (102, {})
    assert text(h, Code.GET, f"/{OID}/{iid}/4", 102) == "2.05"
    assert text(h, Code.GET, f"/{OID}/{iid}/4", 101) == "4.01"
    assert text(h, Code.PUT, f"/{OID}/{iid}/4", 101, b"3") == "4.01"
    assert text(h, Code.DELETE, f"/{OID}/{iid}", 101) == "4.01"
    assert text(h, Code.DELETE, f"/{OID}/{iid}", 102) == "2.02"
    assert AccessControl(h.tree).entry_for(OID, iid) is None


def test_create_reusing_an_id_with_a_stale_acl_makes_the_creator_owner() -> None:
    h = make([acl(0, 101, {}), acl(65535, 65535, {"0": "C"})])
    h.tree[OID].remove_instance(0)  # removed locally: its /2 instance stays behind
    assert AccessControl(h.tree).entry_for(OID, 0) is not None
    response = _create(h, 102)
    assert response.location_path == (str(OID), "0")  # the lowest free id is reused
    entry = AccessControl(h.tree).entry_for(OID, 0)
    assert entry is not None
    assert entry.owner == 102
    assert text(h, Code.GET, f"/{OID}/0/4", 102) == "2.05"
    assert text(h, Code.GET, f"/{OID}/0/4", 101) == "4.01"


def test_create_of_acl_instances_is_refused() -> None:
    h = make([acl(0, 101, {})])
    node = acl_instance(0, OID, 4, 101)
    payload = encode(node, "/2/0")
    assert code(h.request(Code.POST, "/2", payload=payload, cf=CF.TLV, ssid=101)) == "4.01"


# -- the Access Control object itself ----------------------------------------------------------


def test_only_the_owner_changes_an_acl_instance_and_nobody_deletes_it() -> None:
    h = make([acl(0, 101, {"102": "R"})])
    entry = AccessControl(h.tree).entry_for(OID, 0)
    assert entry is not None
    at = f"/2/{entry.instance_id}"
    for ssid in (101, 102):
        assert text(h, Code.GET, at, ssid) == "2.05"
        assert code(h.request(Code.PUT, at, query=["pmin=5"], ssid=ssid)) == "2.04"
    assert text(h, Code.PUT, f"{at}/2/102", 102, b"31") == "4.01"
    assert text(h, Code.PUT, f"{at}/0", 101, b"3") == "4.05"  # Object ID is read-only
    assert text(h, Code.DELETE, at, 101) == "4.01"
    assert text(h, Code.DELETE, at, 102) == "4.01"
    # the owner hands the instance over: 102 now manages it and has full rights
    assert text(h, Code.PUT, f"{at}/3", 101, b"102") == "2.04"
    assert text(h, Code.PUT, f"{at}/2/101", 101, b"1") == "4.01"
    assert text(h, Code.PUT, f"{at}/2/102", 102, b"0") == "2.04"
    assert operations(h, 0, 102) == DENIED  # its own entry (0) beats its owner rights
    assert text(h, Code.PUT, f"{at}/2/102", 102, b"1") == "2.04"  # still manages the ACL
    assert operations(h, 0, 102)["read"] == "2.05"
    assert operations(h, 0, 101) == DENIED  # neither owner nor listed, and no default


def test_bootstrap_owned_acl_instance_is_read_only_for_dm_servers() -> None:
    h = make([acl(0, 65535, {"0": "RWE"})])
    entry = AccessControl(h.tree).entry_for(OID, 0)
    assert entry is not None
    for ssid in (101, 102):
        assert text(h, Code.PUT, f"/2/{entry.instance_id}/2/0", ssid, b"31") == "4.01"
        assert operations(h, 0, ssid) == ALLOWED


# -- composite operations and observations -------------------------------------------------------


def test_read_composite_leaves_out_paths_without_read_right() -> None:
    h = make([acl(0, 101, {"102": "R"}), acl(1, 101, {})])
    codec = composite_codec_for(CF.SENML_JSON)
    body = codec.encode_paths([Path(OID, 0, 0), Path(OID, 1, 0), Path(OID, 4)])
    response = h.request(Code.FETCH, "", payload=body, cf=CF.SENML_JSON, ssid=102)
    assert code(response) == "2.05"
    assert set(codec.decode_nodes(response.payload, REGISTRY)) == {Path(OID, 0, 0)}
    only_closed = codec.encode_paths([Path(OID, 1, 0), Path(OID, 4)])
    assert code(h.request(Code.FETCH, "", payload=only_closed, cf=CF.SENML_JSON, ssid=102)) == (
        "4.01"
    )
    # Observe-Composite follows the same rule and registers nothing when all paths fail
    response = h.request(
        Code.FETCH, "", payload=only_closed, cf=CF.SENML_JSON, observe=0, token=b"c", ssid=102
    )
    assert code(response) == "4.01"
    assert len(h.engine.observations) == 0
    response = h.request(
        Code.FETCH, "", payload=body, cf=CF.SENML_JSON, observe=0, token=b"c", ssid=102
    )
    assert (code(response), response.observe) == ("2.05", 0)
    assert len(h.engine.observations) == 1


def test_write_composite_needs_write_right_on_every_path() -> None:
    h = make([acl(0, 101, {"102": "RW"}), acl(1, 101, {"102": "R"})])
    body = f'[{{"n":"/{OID}/0/0","vs":"a"}},{{"n":"/{OID}/1/0","vs":"b"}}]'.encode()
    assert code(h.request(Code.IPATCH, "", payload=body, cf=CF.SENML_JSON, ssid=102)) == "4.01"
    assert h.tree.value(Path(OID, 0, 0)) == "i0"  # nothing applied
    assert h.tree.value(Path(OID, 1, 0)) == "i1"
    assert code(h.request(Code.IPATCH, "", payload=body, cf=CF.SENML_JSON, ssid=101)) == "2.04"
    assert (h.tree.value(Path(OID, 0, 0)), h.tree.value(Path(OID, 1, 0))) == ("a", "b")


def test_observe_needs_read_right() -> None:
    h = make([acl(0, 101, {"102": "W"}), acl(1, 101, {"102": "R"})])
    response = h.request(Code.GET, f"/{OID}/0/0", observe=0, token=b"a", ssid=102)
    assert (code(response), response.observe) == ("4.01", None)
    response = h.request(Code.GET, f"/{OID}/1/0", observe=0, token=b"b", ssid=102)
    assert (code(response), response.observe) == ("2.05", 0)
    assert len(h.engine.observations) == 1


def test_write_attributes_needs_read_below_the_object_only() -> None:
    h = make([acl(0, 101, {"102": "W"})])
    for path in (f"/{OID}/0", f"/{OID}/0/1"):
        assert code(h.request(Code.PUT, path, query=["pmin=5"], ssid=102)) == "4.01"
        assert code(h.request(Code.PUT, path, query=["pmin=5"], ssid=101)) == "2.04"
    assert code(h.request(Code.PUT, f"/{OID}", query=["pmin=5"], ssid=102)) == "2.04"


# -- enforcement only with several accounts; the bootstrap server bypasses ACLs ------------------


def test_single_server_ignores_acls() -> None:
    h = make([acl(0, 102, {"101": ""}), acl(65535, 65535, {})], ssids=(101,))
    assert not AccessControl(h.tree).enforced
    assert operations(h, 0, 101) == ALLOWED
    assert text(h, Code.DELETE, f"/{OID}/0", 101) == "2.02"
    response = _create(h, 101)
    assert code(response) == "2.01"
    # no /2 instance is made for the created instance in a single-server context
    assert AccessControl(h.tree).entry_for(OID, int(response.location_path[1])) is None
    # nor is an ACL instance's deletion cascaded to anything
    entry = AccessControl(h.tree).entry_for(OID, 65535)
    assert entry is not None
    assert text(h, Code.DELETE, f"/2/{entry.instance_id}", 101) == "2.02"
    assert h.tree.instance_ids(OID) == [0, 1, 2, 3, 4]
    assert AccessControl(h.tree).entry_for(OID, 65535) is None


def test_bootstrap_account_does_not_count_as_a_server() -> None:
    h = make([acl(0, 102, {})], ssids=(101,), bootstrap=bs_table())
    assert AccessControl(h.tree).server_count() == 1
    assert operations(h, 0, 101) == ALLOWED


def test_bootstrap_server_bypasses_acls_and_provisions_them() -> None:
    h = make([acl(0, 101, {})], bootstrap=bs_table())
    assert text(h, Code.PUT, f"/{OID}/0/0", 102, b"dm") == "4.01"
    # the bootstrap server writes what no DM server may, and reads /2
    assert code(h.bs(Code.PUT, f"/{OID}/0/0", payload=b"bs", cf=CF.TEXT)) == "2.04"
    assert h.tree.value(Path(OID, 0, 0)) == "bs"
    assert code(h.bs(Code.GET, "/2")) == "2.05"
    # a /2 instance written by the bootstrap server grants 102 write access to /33000/4
    node = acl_instance(9, OID, 4, 65535, {102: int(AccessRight.WRITE)})
    assert code(h.bs(Code.PUT, "/2/9", payload=encode(node, "/2/9"), cf=CF.TLV)) == "2.04"
    assert code(h.bs(Code.POST, "/bs")) == "2.04"
    for request in h.take(Register):
        h.respond(request, Code.CREATED, location=("rd", "x"))
    assert text(h, Code.PUT, f"/{OID}/4/0", 102, b"dm") == "2.04"
    assert text(h, Code.GET, f"/{OID}/4/0", 102) == "4.01"
    assert text(h, Code.PUT, f"/{OID}/4/0", 101, b"dm") == "4.01"


# -- the server's own /1 instance (project decision in the access module docstring) ------------


def test_own_server_instance_without_acl_cannot_be_deleted() -> None:
    h = make([])
    access = AccessControl(h.tree)
    own = AccessRight.READ | AccessRight.WRITE | AccessRight.EXECUTE
    assert access.rights(101, 1, 0) == own
    assert access.rights(102, 1, 1) == own
    assert access.rights(101, 1, 1) == AccessRight.NONE
    assert access.rights(103, 1, 0) == AccessRight.NONE  # no account with that SSID
    assert text(h, Code.DELETE, "/1/0", 101) == "4.01"
    assert text(h, Code.GET, "/1/1", 101) == "4.01"
    assert h.tree.instance_ids(1) == [0, 1]


# -- AccessControl over odd /2 contents (fail closed) ------------------------------------------


def _servers(*ssids: int) -> ServerObject:
    servers = ServerObject(MemoryInstanceStore())
    for iid, ssid in enumerate(ssids):
        servers.create(
            ObjectInstance(
                iid,
                [
                    SingleResource(0, INT, ssid),
                    SingleResource(1, INT, 60),
                    SingleResource(6, ResourceType.BOOLEAN, False),
                    SingleResource(7, ResourceType.STRING, "U"),
                ],
            )
        )
    return servers


def test_without_access_control_object_everything_is_denied() -> None:
    access = AccessControl(ObjectTree([_servers(101, 102)]))
    assert access.enforced
    assert access.entries() == []
    assert access.rights(101, OID, 0) == AccessRight.NONE
    assert not access.can_create(101, OID)
    access.instance_created(101, OID, 0)  # nothing to record it in: no error
    assert access.entries() == []


def test_bootstrap_only_objects_are_never_granted() -> None:
    access = AccessControl(ObjectTree([_servers(101)]))
    assert not access.enforced
    for object_id in (0, 21):
        assert access.rights(101, object_id, 0) == AccessRight.NONE
        assert not access.can_create(101, object_id)
    assert access.rights(101, OID, 0) == AccessRight.FULL


class _Unreadable(AccessControlObject):
    """A /2 handler whose instance 1 cannot be read."""

    def read(self, instance_id: int, resource_ids: Collection[int] | None = None) -> Any:
        if instance_id == 1:
            raise NotFound("gone")
        return super().read(instance_id, resource_ids)


def test_malformed_or_unreadable_acl_instances_are_ignored() -> None:
    acls = _Unreadable(MemoryInstanceStore())
    str_ = ResourceType.STRING
    good = acl_instance(0, OID, 0, 101, {102: 1})
    acls.create(good)
    acls.create(acl_instance(1, OID, 1, 101, {102: 31}))  # unreadable
    # resource 0 missing, resource 1 missing, ids of the wrong type
    acls.create(ObjectInstance(2, [SingleResource(1, INT, 2), SingleResource(3, INT, 101)]))
    acls.create(ObjectInstance(3, [SingleResource(0, INT, OID), SingleResource(3, INT, 101)]))
    acls.create(ObjectInstance(4, [SingleResource(0, str_, "x"), SingleResource(1, INT, 4)]))
    acls.create(ObjectInstance(5, [SingleResource(0, INT, OID), SingleResource(1, str_, "y")]))
    # no owner resource: owner 65535 (bootstrap), so nobody gets the owner's full rights
    acls.create(ObjectInstance(6, [SingleResource(0, INT, OID), SingleResource(1, INT, 6)]))
    access = AccessControl(ObjectTree([_servers(101, 102), acls]))
    assert [(e.instance_id, e.object_instance_id) for e in access.entries()] == [(0, 0), (6, 6)]
    assert access.rights(102, OID, 0) == AccessRight.READ
    for iid in range(1, 7):
        assert access.rights(101, OID, iid) == AccessRight.NONE
        assert access.rights(102, OID, iid) == AccessRight.NONE
    entry = access.entry_for(OID, 6)
    assert entry is not None
    assert entry.owner == 65535
