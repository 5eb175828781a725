"""Spec-conformance campaign, part 2: DM operation result codes, Write semantics, Create and
Delete, access control with several server accounts, Send. Rules and section numbers are listed
in the docstring of ``test_spec_conformance_campaign``."""

from __future__ import annotations

import pytest

from lwm2m.client import AccessRight
from lwm2m.client.access import AccessControl
from lwm2m.coap.numbers import Code
from lwm2m.codec import composite_codec_for
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.errors import LocalProtocolError
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectNode,
    Path,
    ResourceType,
    SingleResource,
)
from lwm2m.operations.requests import Register, Send

from .helpers import WALL, Harness, code, config, decode, encode, server
from .test_spec_conformance_campaign import discover, executions, instance, make, write_attributes

# ================================================================================================
# Read (Core §6.3.1, §7.3.2.3)
# ================================================================================================


@pytest.mark.parametrize(("path", "observe"), [("/3/0", None), ("/3/0/0", None), ("/3/0/0", 0)])
def test_unsupported_accept_is_4_06(path: str, observe: int | None) -> None:
    h = make()
    response = h.request(Code.GET, path, accept=9999, observe=observe, token=b"t")
    assert code(response) == "4.06"


def test_accept_of_a_known_format_that_cannot_carry_the_content_is_4_06() -> None:
    """RFC 7252 §5.10.4 / Core §6.3.1: plain text carries one value; opaque is for Opaque."""
    h = make()
    assert code(h.request(Code.GET, "/33000/0", accept=CF.TEXT)) == "4.06"
    assert code(h.request(Code.GET, "/33000/0/0", accept=CF.OPAQUE)) == "4.06"


def test_read_instance_leaves_out_non_readable_resources() -> None:
    """Core §7.3.2.3: Read on an instance returns every resource except those that do not
    support Read (here the executable /33000/0/3)."""
    h = make()
    node = decode(h.request(Code.GET, "/33000/0", accept=CF.SENML_JSON), "/33000/0")
    assert isinstance(node, ObjectInstance)
    assert sorted(node.resources) == [0, 1, 2, 4]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/33000/0/3", "4.05"),  # executable: the resource does not support Read
        ("/33000/0/5", "4.04"),  # optional resource not instantiated
        ("/33000/0/2/7", "4.04"),  # resource instance absent
        ("/33000/1", "4.04"),
        ("/4444", "4.04"),  # object not supported
        ("/0", "4.01"),  # bootstrap-only objects
        ("/0/0/0", "4.01"),
        ("/21", "4.01"),
        ("/21/0/0", "4.01"),
    ],
)
def test_read_error_codes(path: str, expected: str) -> None:
    """Core §6.3.1 response codes, §7.3.2.2 (4.05 when the resource does not support the
    operation), spec-reference §1.1 (/0 and /21 from a DM server: 4.01)."""
    h = make()
    assert code(h.request(Code.GET, path)) == expected


def test_read_resource_instance() -> None:
    """Core §6.3.1 (1.1): Read may target /o/i/r/ri."""
    h = make()
    response = h.request(Code.GET, "/33000/0/2/1")
    assert (code(response), response.payload) == ("2.05", b"2")


# ================================================================================================
# Write (Core §6.3.3, §7.3.2.2-§7.3.2.4)
# ================================================================================================


def test_write_replace_instance_vs_partial_update() -> None:
    """Core §6.3.3: Replace (PUT on the instance) replaces the instance with the given values
    (optional writable resources not given are gone); Partial Update (POST) adds or updates
    the given resources and leaves the others unchanged."""
    h = make()
    partial = ObjectInstance(0, [SingleResource(0, ResourceType.STRING, "p")])
    response = h.request(Code.POST, "/33000/0", payload=encode(partial, "/33000/0"), cf=CF.TLV)
    assert code(response) == "2.04"
    assert h.tree.value(Path(33000, 0, 2)) == {0: 1, 1: 2}  # untouched
    assert h.tree.value(Path(33000, 0, 0)) == "p"
    replace = ObjectInstance(0, [SingleResource(4, ResourceType.INTEGER, 9)])
    response = h.request(Code.PUT, "/33000/0", payload=encode(replace, "/33000/0"), cf=CF.TLV)
    assert code(response) == "2.04"
    current = h.tree.read(Path(33000, 0))
    assert 0 not in current.resources  # type: ignore[union-attr]
    assert 2 not in current.resources  # type: ignore[union-attr]
    assert h.tree.value(Path(33000, 0, 4)) == 9
    assert h.tree.value(Path(33000, 0, 1)) == 20.0  # read-only: set by the client only


def test_write_multiple_resource_replace_vs_partial_update() -> None:
    """Core §6.3.3: replacing a multiple resource replaces its instances; a partial update of
    the instance adds or updates resource instances and keeps the others."""
    h = make()
    multi = MultipleResource.of(2, ResourceType.INTEGER, {1: 10, 5: 50})
    partial = ObjectInstance(0, [multi])
    response = h.request(Code.POST, "/33000/0", payload=encode(partial, "/33000/0"), cf=CF.TLV)
    assert code(response) == "2.04"
    assert h.tree.value(Path(33000, 0, 2)) == {0: 1, 1: 10, 5: 50}
    response = h.request(Code.PUT, "/33000/0/2", payload=encode(multi, "/33000/0/2"), cf=CF.TLV)
    assert code(response) == "2.04"
    assert h.tree.value(Path(33000, 0, 2)) == {1: 10, 5: 50}
    # a single resource instance (1.1)
    assert code(h.request(Code.PUT, "/33000/0/2/5", payload=b"55", cf=CF.TEXT)) == "2.04"
    assert h.tree.value(Path(33000, 0, 2)) == {1: 10, 5: 55}


@pytest.mark.parametrize(
    ("path", "payload", "cf"),
    [
        ("/33000/0/1", b"3.5", CF.TEXT),  # read-only resource
        ("/3/0/11/0", b"1", CF.TEXT),  # instance of a read-only multiple resource
    ],
)
def test_write_on_resource_without_write_is_4_05(path: str, payload: bytes, cf: int) -> None:
    """Core §7.3.2.2: the operation is permitted but not supported by the resource: 4.05."""
    h = make()
    assert code(h.request(Code.PUT, path, payload=payload, cf=cf)) == "4.05"


@pytest.mark.parametrize("path", ["/33000/0/3", "/3/0/4"])
def test_write_on_executable_resource_is_4_05(path: str) -> None:
    h = make()
    assert code(h.request(Code.PUT, path, payload=b"1", cf=CF.TEXT)) == "4.05"


def test_write_on_instance_with_a_non_writable_resource_changes_nothing() -> None:
    """Core §7.3.2.3: a Write on an instance is performed only if every resource conveyed
    allows Write; otherwise "Operation is not supported" (4.05) and nothing changes."""
    h = make()
    node = ObjectInstance(
        0,
        [SingleResource(0, ResourceType.STRING, "x"), SingleResource(1, ResourceType.FLOAT, 1.0)],
    )
    for method in (Code.PUT, Code.POST):
        response = h.request(method, "/33000/0", payload=encode(node, "/33000/0"), cf=CF.TLV)
        assert code(response) == "4.05"
    assert h.tree.value(Path(33000, 0, 0)) == "zero"


@pytest.mark.parametrize(
    ("method", "path", "payload", "cf", "expected"),
    [
        (Code.PUT, "/33000/0/0", b"x", 9999, "4.15"),  # format not supported: rejected
        (Code.PUT, "/33000/0/4", b"abc", CF.TEXT, "4.00"),  # not an integer
        (Code.PUT, "/33000/9/0", b"x", CF.TEXT, "4.04"),  # instance absent
        (Code.PUT, "/33000/0/9", b"x", CF.TEXT, "4.04"),  # resource not defined
        (Code.PUT, "/0/0/0", b"coap://h", CF.TEXT, "4.01"),  # bootstrap-only object
        (Code.PUT, "/21/0/1", b"aa", CF.TEXT, "4.01"),
    ],
)
def test_write_error_codes(method: int, path: str, payload: bytes, cf: int, expected: str) -> None:
    """Core §6.3.3: "The Write request MUST be rejected when the specified data format is not
    supported" (4.15); 4.00 for a bad value, 4.04 for a missing target, 4.01 on /0 and /21."""
    h = make()
    assert code(h.request(method, path, payload=payload, cf=cf)) == expected
    assert h.tree.value(Path(33000, 0, 0)) == "zero"


@pytest.mark.parametrize(
    ("method", "path"),
    [(Code.PUT, "/33000"), (Code.DELETE, "/33000"), (Code.DELETE, "/3")],
)
def test_write_and_delete_on_an_object_are_4_05(method: int, path: str) -> None:
    """Core §7.3.2.4: "If a given LwM2M Server targets an Object with a Write, Execute, or
    Delete operation, the LwM2M Client ... MUST send a Method Not Allowed"."""
    h = make()
    node = ObjectNode(33000, [ObjectInstance(0, [SingleResource(0, ResourceType.STRING, "o")])])
    payload = encode(node, "/33000") if method == Code.PUT else b""
    response = h.request(method, path, payload=payload, cf=CF.TLV if payload else None)
    assert code(response) == "4.05"
    assert h.tree.value(Path(33000, 0, 0)) == "zero"
    assert h.tree.instance_ids(33000) == [0]


# ================================================================================================
# Execute (Core §6.3.5)
# ================================================================================================


def test_execute_codes() -> None:
    """Core §6.3.5: Execute targets a resource that supports it (4.05 otherwise, §7.3.2.2);
    "A LwM2M Client MUST return an error when the Execute operation is received for ...
    Resource Instance(s)"; 4.04 for a missing instance."""
    h = make()
    assert code(h.request(Code.POST, "/33000/0/3")) == "2.04"
    assert code(h.request(Code.POST, "/33000/0/0")) == "4.05"  # readable, not executable
    assert code(h.request(Code.POST, "/3/0/4/0")).startswith("4.")
    assert code(h.request(Code.POST, "/33000/6/3")) == "4.04"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (b"5", {5: None}),  # the spec's examples of valid argument lists
        (b"2='10.3'", {2: "10.3"}),
        (b"7,0='https://www.oma.org'", {7: None, 0: "https://www.oma.org"}),
        (b"0,1,2,3,4", dict.fromkeys(range(5))),
        (b"10", None),  # an argument name is one DIGIT
        (b"0=on", None),  # values are quoted
        (b"0='a',", None),
    ],
)
def test_execute_argument_syntax(arguments: bytes, expected: dict[int, str | None] | None) -> None:
    """Core §6.3.5 argument ABNF: arglist = arg *("," arg); arg = DIGIT ["=" "'" *CHAR "'"];
    a malformed list is a 4.00 and nothing is executed."""
    h = make()
    response = h.request(Code.POST, "/33000/0/3", payload=arguments)
    if expected is None:
        assert code(response) == "4.00"
        assert executions == []
    else:
        assert code(response) == "2.04"
        assert executions == [expected]


# ================================================================================================
# Create and Delete (Core §6.3.6, §6.3.7, §7.3.2.4)
# ================================================================================================


def test_create_without_and_with_instance_id() -> None:
    """Core §6.3.6: without an instance id in the payload the client assigns one (and says
    which, 2.01 + Location-Path); with one, that id is used."""
    h = make()
    anonymous = ObjectInstance(0, [SingleResource(4, ResourceType.INTEGER, 2)])
    response = h.request(Code.POST, "/33000", payload=encode(anonymous, "/33000/0"), cf=CF.TLV)
    assert code(response) == "2.01"
    assigned = int(response.location_path[-1])
    assert assigned != 0
    assert h.tree.value(Path(33000, assigned, 4)) == 2
    explicit = ObjectNode(33000, [ObjectInstance(42, [SingleResource(4, ResourceType.INTEGER, 3)])])
    response = h.request(Code.POST, "/33000", payload=encode(explicit, "/33000"), cf=CF.TLV)
    assert code(response) == "2.01"
    assert h.tree.value(Path(33000, 42, 4)) == 3


def test_create_with_a_conflicting_id_creates_nothing() -> None:
    """Core §7.3.2.4: an instance id in conflict rejects the complete request with 4.00;
    §6.3.6: "If any error occurs, nothing MUST be created"."""
    h = make()
    node = ObjectNode(
        33000,
        [
            ObjectInstance(5, [SingleResource(4, ResourceType.INTEGER, 5)]),
            ObjectInstance(0, [SingleResource(4, ResourceType.INTEGER, 0)]),
        ],
    )
    response = h.request(Code.POST, "/33000", payload=encode(node, "/33000"), cf=CF.TLV)
    assert code(response) == "4.00"
    assert h.tree.instance_ids(33000) == [0]
    assert h.tree.value(Path(33000, 0, 4)) == 1


def test_create_errors() -> None:
    """Core §7.3.2.4: missing mandatory resource → 4.00; identifiers table: MAX_ID 65535 is
    reserved for instance ids (4.00); a single-instance object cannot get a second instance."""
    h = make()
    missing = ObjectInstance(0, [SingleResource(0, ResourceType.STRING, "no mode")])
    response = h.request(Code.POST, "/33000", payload=encode(missing, "/33000/0"), cf=CF.TLV)
    assert code(response) == "4.00"
    resource = bytes([0xC1, 0x04, 0x03])  # TLV: resource 4 = 3
    reserved = bytes([0x28, 0xFF, 0xFF, len(resource)]) + resource  # object instance 65535
    assert code(h.request(Code.POST, "/33000", payload=reserved, cf=CF.TLV)) == "4.00"
    device = ObjectInstance(0, [SingleResource(14, ResourceType.STRING, "+01")])
    response = h.request(Code.POST, "/3", payload=encode(device, "/3/0"), cf=CF.TLV)
    assert code(response) in ("4.00", "4.05")
    assert h.tree.instance_ids(33000) == [0]
    assert h.tree.instance_ids(3) == [0]


def test_delete_codes() -> None:
    """Core §6.3.7: Delete targets an object instance (4.05 for a resource, §7.3.2.4 for an
    object); the Device instance "SHALL NOT be affected by any Delete"; 4.04 when absent."""
    h = make()
    assert code(h.request(Code.DELETE, "/3/0")) == "4.05"
    assert code(h.request(Code.DELETE, "/33000/0/0")) == "4.05"
    assert code(h.request(Code.DELETE, "/33000/0/2/0")) == "4.05"
    assert code(h.request(Code.DELETE, "/33000/8")) == "4.04"
    assert code(h.request(Code.DELETE, "/0/0")) == "4.01"
    assert h.tree.instance_ids(3) == [0]
    assert code(h.request(Code.DELETE, "/33000/0")) == "2.02"
    assert h.tree.instance_ids(33000) == []


def test_delete_forgets_the_instance_attributes() -> None:
    """Core §6.3.7 with §5.1.1: attributes belong to what they are attached to; an instance
    created again with the same id starts without the old ones."""
    h = make()
    assert write_attributes(h, "/33000/0", "pmin=7") == "2.04"
    assert write_attributes(h, "/33000/0/1", "gt=5") == "2.04"
    assert code(h.request(Code.DELETE, "/33000/0")) == "2.02"
    node = ObjectNode(33000, [ObjectInstance(0, [SingleResource(4, ResourceType.INTEGER, 1)])])
    assert code(h.request(Code.POST, "/33000", payload=encode(node, "/33000"), cf=CF.TLV)) == (
        "2.01"
    )
    links = discover(h, "/33000/0")
    assert not links["/33000/0"].has("pmin")
    assert not links["/33000/0/4"].has("gt")


# ================================================================================================
# Access control with several server accounts (Core §7.3)
# ================================================================================================

ACL = [
    {"object": 3, "instance": 0, "owner": 101, "rights": {"102": "R"}},
    {"object": 33000, "instance": 0, "owner": 101, "rights": {"102": "W"}},
    {"object": 33000, "instance": 65535, "owner": 65535, "rights": {"102": "C"}},
]


def two_servers(acl: list[dict[str, object]] | None = None) -> Harness:
    return make(server(101), server(102), acl=ACL if acl is None else acl)


def test_right_is_checked_before_the_operation_support() -> None:
    """Core §7.3.2 (two-step check) and §7.3.2.2: without the right the answer is 4.01 even
    when the resource would not support the operation; with it, 4.05."""
    h = two_servers()
    # 102 has R only on /3/0
    assert code(h.request(Code.PUT, "/3/0/13", payload=b"5", cf=CF.TEXT, ssid=102)) == "4.01"
    assert code(h.request(Code.PUT, "/3/0/0", payload=b"x", cf=CF.TEXT, ssid=102)) == "4.01"
    assert code(h.request(Code.POST, "/3/0/4", ssid=102)) == "4.01"
    assert code(h.request(Code.POST, "/3/0/0", ssid=102)) == "4.01"
    # 101 is the owner (full rights): now the resource decides
    assert code(h.request(Code.PUT, "/3/0/0", payload=b"x", cf=CF.TEXT, ssid=101)) == "4.05"
    assert code(h.request(Code.POST, "/3/0/0", ssid=101)) == "4.05"
    assert code(h.request(Code.PUT, "/3/0/13", payload=b"5", cf=CF.TEXT, ssid=101)) == "2.04"


def test_minimum_rights_per_operation() -> None:
    """Core §7.3.2 table: Read/Observe/Write-Attributes need R, Write W, Execute E, Delete D,
    Discover nothing. 102 has W only on /33000/0."""
    h = two_servers()
    assert code(h.request(Code.PUT, "/33000/0/0", payload=b"w", cf=CF.TEXT, ssid=102)) == "2.04"
    assert code(h.request(Code.GET, "/33000/0/0", ssid=102)) == "4.01"
    assert code(h.request(Code.GET, "/33000/0/0", observe=0, token=b"o", ssid=102)) == "4.01"
    assert write_attributes(h, "/33000/0/1", "pmin=5", ssid=102) == "4.01"
    assert write_attributes(h, "/33000/0", "pmin=5", ssid=102) == "4.01"
    assert code(h.request(Code.POST, "/33000/0/3", ssid=102)) == "4.01"
    assert code(h.request(Code.DELETE, "/33000/0", ssid=102)) == "4.01"
    assert "/33000/0/1" in discover(h, "/33000/0", ssid=102)
    assert len(h.engine.observations) == 0
    assert h.tree.instance_ids(33000) == [0]


def test_object_level_discover_and_write_attributes_need_no_right() -> None:
    """Core §7.3.2.4: on an Object, Discover needs no access right and Write-Attributes is
    performed."""
    h = two_servers([{"object": 3, "instance": 0, "owner": 101, "rights": {}}])
    assert code(h.request(Code.GET, "/33000/0", ssid=102)) == "4.01"
    assert write_attributes(h, "/33000", "pmin=5", ssid=102) == "2.04"
    assert discover(h, "/33000", ssid=102)["/33000"].get("pmin") == "5"


@pytest.mark.parametrize(
    ("rights", "who", "expected"),
    [
        # owner without its own ACL instance: full rights (default instance 0 is not for it)
        ({"0": "R"}, 101, AccessRight.FULL),
        # the owner's own ACL resource instance wins over ownership
        ({"101": "R", "0": "RW"}, 101, AccessRight.READ),
        # a server with its own ACL resource instance: exactly that
        ({"102": "E", "0": "RWD"}, 102, AccessRight.EXECUTE),
        # otherwise the default ACL resource instance 0
        ({"0": "RW"}, 102, AccessRight.READ | AccessRight.WRITE),
        # no instance for the server and no default: no right
        ({"101": "RWED"}, 102, AccessRight.NONE),
    ],
)
def test_obtaining_access_right(rights: dict[str, str], who: int, expected: AccessRight) -> None:
    """Core §7.3.2.1 steps 1-4, observed through Read and Write."""
    acl = [{"object": 33000, "instance": 0, "owner": 101, "rights": rights}]
    h = two_servers(acl)
    assert AccessControl(h.tree).rights(who, 33000, 0) == expected
    read = code(h.request(Code.GET, "/33000/0/0", ssid=who))
    write = code(h.request(Code.PUT, "/33000/0/0", payload=b"n", cf=CF.TEXT, ssid=who))
    assert read == ("2.05" if expected & AccessRight.READ else "4.01")
    assert write == ("2.04" if expected & AccessRight.WRITE else "4.01")


def test_create_needs_an_acl_instance_for_the_object() -> None:
    """Core §7.3.2: Create is authorised "only if the associated Access Control Object Instance
    exists and contains an ACL Resource Instance for that LwM2M Server set with ... Create"."""
    h = two_servers([{"object": 3, "instance": 0, "owner": 101, "rights": {"102": "R"}}])
    node = ObjectInstance(0, [SingleResource(4, ResourceType.INTEGER, 2)])
    for ssid in (101, 102):
        response = h.request(
            Code.POST, "/33000", payload=encode(node, "/33000/0"), cf=CF.TLV, ssid=ssid
        )
        assert code(response) == "4.01"
    assert h.tree.instance_ids(33000) == [0]


def test_create_with_the_servers_own_create_right() -> None:
    """Core §7.3.2 and §6.3.6: the C right of the server's ACL resource instance allows the
    Create; the new instance gets an ACL instance owned by the creator with full rights."""
    h = two_servers()
    node = ObjectInstance(0, [SingleResource(4, ResourceType.INTEGER, 2)])
    payload = encode(node, "/33000/0")
    assert code(h.request(Code.POST, "/33000", payload=payload, cf=CF.TLV, ssid=101)) == "4.01"
    response = h.request(Code.POST, "/33000", payload=payload, cf=CF.TLV, ssid=102)
    assert code(response) == "2.01"
    iid = int(response.location_path[-1])
    entry = AccessControl(h.tree).entry_for(33000, iid)
    assert entry is not None
    assert entry.owner == 102
    assert AccessControl(h.tree).rights(102, 33000, iid) == AccessRight.FULL


def test_default_acl_instance_grants_create_as_documented() -> None:
    """An ambiguity, decided as lwm2m.client.access documents it: Core §7.3.2 grants Create when
    the /2 instance targeting /o/65535 "contains an ACL Resource Instance for that LwM2M Server
    set with the Access Right Create", while the ACL's instance 0 holds the default rights of
    servers that have no instance of their own (Appendix E.3). We apply the default to Create
    as to every other operation, as the rule for instance 0 reads; a server with an instance of
    its own gets only what that instance grants."""
    acl = {"object": 33000, "instance": 65535, "owner": 65535, "rights": {"0": "C", "102": "R"}}
    h = two_servers([acl])
    node = ObjectInstance(1, [SingleResource(4, ResourceType.INTEGER, 2)])
    payload = encode(node, "/33000/1")
    assert code(h.request(Code.POST, "/33000", payload=payload, cf=CF.TLV, ssid=101)) == "2.01"
    node = ObjectInstance(2, [SingleResource(4, ResourceType.INTEGER, 2)])
    payload = encode(node, "/33000/2")
    assert code(h.request(Code.POST, "/33000", payload=payload, cf=CF.TLV, ssid=102)) == "4.01"
    assert h.tree.instance_ids(33000) == [0, 1]


def test_acl_instance_is_managed_by_its_owner_only() -> None:
    """Core §7.3.1 (draft §7.1.1.2.2): through the DM interface an ACL instance "MUST only be
    managed by the LwM2M Server declared as the Access Control Owner in it"."""
    h = two_servers()
    entry = AccessControl(h.tree).entry_for(33000, 0)
    assert entry is not None
    path = f"/2/{entry.instance_id}/2/102"
    assert code(h.request(Code.PUT, path, payload=b"1", cf=CF.TEXT, ssid=102)) == "4.01"
    assert code(h.request(Code.GET, "/33000/0/0", ssid=102)) == "4.01"
    assert code(h.request(Code.PUT, path, payload=b"1", cf=CF.TEXT, ssid=101)) == "2.04"
    assert code(h.request(Code.GET, "/33000/0/0", ssid=102)) == "2.05"


def test_owner_delete_removes_the_acl_instance() -> None:
    """Core §7.3.1 (draft §7.1.1.2.2): when the owner deletes the instance, its ACL instance
    is removed by the client."""
    h = two_servers()
    assert code(h.request(Code.DELETE, "/33000/0", ssid=101)) == "2.02"
    assert AccessControl(h.tree).entry_for(33000, 0) is None


def test_composite_operations_apply_the_rights() -> None:
    """Core §6.3.8 Read-Composite (best effort: unauthorised paths left out) and §6.3.9
    Write-Composite (atomic: one record without W right refuses the whole request)."""
    h = two_servers()
    codec = composite_codec_for(CF.SENML_JSON)
    body = codec.encode_paths([Path(3, 0, 0), Path(33000, 0, 0)])
    response = h.request(Code.FETCH, "", payload=body, cf=CF.SENML_JSON, ssid=102)
    assert code(response) == "2.05"
    assert set(codec.decode_nodes(response.payload, h.tree.model)) == {Path(3, 0, 0)}  # type: ignore[arg-type]
    records = b'[{"n":"/33000/0/0","vs":"y"},{"n":"/3/0/14","vs":"+05"}]'
    response = h.request(Code.IPATCH, "", payload=records, cf=CF.SENML_JSON, ssid=102)
    assert code(response) == "4.01"
    assert h.tree.value(Path(33000, 0, 0)) == "zero"


def test_notification_needs_the_read_right_at_notify_time() -> None:
    """Core §7.3.2.5: before a Notify the client checks the Read right; without it no value is
    sent to that server."""
    acl = [{"object": 33000, "instance": 0, "owner": 101, "rights": {"102": "R"}}]
    h = two_servers(acl)
    assert code(h.request(Code.GET, "/33000/0/1", observe=0, token=b"n", ssid=102)) == "2.05"
    entry = AccessControl(h.tree).entry_for(33000, 0)
    assert entry is not None
    path = f"/2/{entry.instance_id}/2/102"
    assert code(h.request(Code.PUT, path, payload=b"2", cf=CF.TEXT, ssid=101)) == "2.04"
    h.take_notifications()
    instance(h).set(1, 99.0)
    h.advance(1)
    assert all(b"99" not in n.message.payload for n in h.take_notifications())


# ================================================================================================
# Send (Core §6.4, /1/x/23 Mute Send)
# ================================================================================================


@pytest.mark.parametrize("mute", [None, True])
def test_send_is_disabled_when_mute_send_is_absent_or_true(mute: bool | None) -> None:
    """Registry 1-1_1.xml /1/x/23: "If true or the Resource is not present, the LwM2M Client
    Send command capability is de-activated"."""
    h = Harness(config(server(101, mute_send=mute)))
    h.register_all()
    with pytest.raises(LocalProtocolError):
        h.engine.send([Path(3, 0, 0)], h.now, timestamp=WALL)
    assert h.take(Send) == []


def test_mute_send_written_by_the_server_takes_effect() -> None:
    """/1/x/23 is RW: the server enables Send by writing false and disables it again."""
    h = Harness(config(server(101, mute_send=True)))
    h.register_all()
    assert code(h.request(Code.PUT, "/1/0/23", payload=b"0", cf=CF.TEXT)) == "2.04"
    h.engine.send([Path(3, 0, 0)], h.now, timestamp=WALL)
    (request,) = h.take(Send)
    message = request.message
    assert (message.code, message.uri_path) == (Code.POST, ("dp",))
    assert message.content_format in (CF.SENML_JSON, CF.SENML_CBOR)
    assert code(h.request(Code.PUT, "/1/0/23", payload=b"1", cf=CF.TEXT)) == "2.04"
    with pytest.raises(LocalProtocolError):
        h.engine.send([Path(3, 0, 0)], h.now, timestamp=WALL)


def test_send_is_not_used_with_a_1_0_server() -> None:
    """Send is an LwM2M 1.1 operation: a server registered as 1.0 (it refused 1.1 with 4.12)
    never receives it, even with Mute Send false."""
    h = Harness(config(server(101, mute_send=False)))
    h.start()
    (register,) = h.take(Register)
    h.respond(register, Code.PRECONDITION_FAILED)
    (register,) = h.take(Register)
    assert "lwm2m=1.0" in register.message.uri_query
    h.respond(register, Code.CREATED, location=("rd", "x"))
    with pytest.raises(LocalProtocolError):
        h.engine.send([Path(3, 0, 0)], h.now, timestamp=WALL)
    assert h.take(Send) == []


def test_send_carries_only_what_the_server_may_read() -> None:
    """Core §6.4 Send with §7.3.2: values the server has no Read right on are not sent
    (and /0 never is)."""
    h = two_servers(
        [
            {"object": 3, "instance": 0, "owner": 101, "rights": {}},
            {"object": 33000, "instance": 0, "owner": 101, "rights": {"102": "R"}},
        ]
    )
    h.engine.send(
        [Path(3, 0, 0), Path(33000, 0, 1), Path(0, 0, 0)],
        h.now,
        timestamp=WALL,
        short_server_id=102,
    )
    (request,) = h.take(Send)
    (group,) = composite_codec_for(request.message.content_format).decode_timestamped(  # type: ignore[arg-type]
        request.message.payload, h.tree.model
    )
    assert set(group.nodes) == {Path(33000, 0, 1)}
    assert group.timestamp == WALL
