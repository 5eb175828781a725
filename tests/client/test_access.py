"""Access control with two DM servers (LwM2M-TS-Core 1.1 §7.3; ACL bits R=1 W=2 E=4 D=8 C=16)."""

from __future__ import annotations

import pytest

from lwm2m.client import AccessRight, SimpleInstance, SimpleObject
from lwm2m.client.access import AccessControl
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.model import ObjectInstance, ObjectNode, Path, ResourceType, SingleResource

from .helpers import Harness, code, config, decode, encode, server
from .test_dm import TEST_OBJECT


@pytest.fixture
def h() -> Harness:
    cfg = config(
        server(101),
        server(102),
        acl=[
            {"object": 3, "instance": 0, "owner": 101, "rights": {"102": "R"}},
            {"object": 33000, "instance": 0, "owner": 101, "rights": {"0": "R"}},
            {"object": 33000, "instance": 65535, "owner": 65535, "rights": {"102": "C"}},
            {"object": 1, "instance": 1, "owner": 102, "rights": {"101": "R"}},
        ],
    )
    test = SimpleObject(TEST_OBJECT, {0: SimpleInstance({0: "zero", 4: 1})})
    from lwm2m.model.registry import default_registry

    registry = default_registry()
    registry.add(TEST_OBJECT)
    harness = Harness(cfg, objects=[test], registry=registry)
    harness.register_all()
    return harness


def test_rights_table(h: Harness) -> None:
    access = AccessControl(h.tree)
    assert access.enforced
    assert access.rights(101, 3, 0) == AccessRight.FULL  # owner without its own ACL instance
    assert access.rights(102, 3, 0) == AccessRight.READ
    assert access.rights(102, 33000, 0) == AccessRight.READ  # default ACL instance 0
    assert access.rights(101, 4, 0) == AccessRight.NONE  # no /2 instance at all
    assert access.rights(101, 0, 0) == AccessRight.NONE
    assert access.can_create(102, 33000)
    assert not access.can_create(101, 33000)
    assert not access.can_create(101, 3)


def test_read_write_execute_per_server(h: Harness) -> None:
    assert code(h.request(Code.GET, "/3/0", ssid=101)) == "2.05"
    assert code(h.request(Code.GET, "/3/0", ssid=102)) == "2.05"
    assert code(h.request(Code.PUT, "/3/0/14", payload=b"+01", cf=CF.TEXT, ssid=102)) == "4.01"
    assert code(h.request(Code.PUT, "/3/0/14", payload=b"+01", cf=CF.TEXT, ssid=101)) == "2.04"
    assert code(h.request(Code.POST, "/3/0/12", ssid=102)) == "4.01"
    assert code(h.request(Code.POST, "/3/0/12", ssid=101)) == "2.04"
    assert code(h.request(Code.PUT, "/33000/0/0", payload=b"x", cf=CF.TEXT, ssid=102)) == "4.01"
    assert code(h.request(Code.PUT, "/33000/0/0", payload=b"x", cf=CF.TEXT, ssid=101)) == "2.04"
    # no /2 instance for /4/0... the object is absent here; /1 instances follow their own rule
    assert code(h.request(Code.GET, "/3/0", ssid=102, observe=0, token=b"o")) == "2.05"


def test_write_attributes_needs_read_and_discover_needs_nothing(h: Harness) -> None:
    assert code(h.request(Code.PUT, "/3/0", query=["pmin=5"], ssid=102)) == "2.04"
    h.tree[33000].add_instance(5, {4: 5})
    assert code(h.request(Code.PUT, "/33000/5", query=["pmin=5"], ssid=102)) == "4.01"
    assert code(h.request(Code.PUT, "/33000", query=["pmin=5"], ssid=102)) == "2.04"
    assert code(h.request(Code.GET, "/33000/5", accept=CF.LINK, ssid=102)) == "2.05"


def test_own_server_instance_and_other_server_instance(h: Harness) -> None:
    # /1/0 is 101's account (no /2 instance): readable, writable and executable by 101 only
    assert code(h.request(Code.GET, "/1/0", ssid=101)) == "2.05"
    assert code(h.request(Code.GET, "/1/0", ssid=102)) == "4.01"
    assert code(h.request(Code.POST, "/1/0/8", ssid=101)) == "2.04"
    # /1/1 has an ACL: 102 owns it, 101 may read it
    assert code(h.request(Code.GET, "/1/1", ssid=101)) == "2.05"
    assert code(h.request(Code.PUT, "/1/1/1", payload=b"60", cf=CF.TEXT, ssid=101)) == "4.01"
    assert code(h.request(Code.PUT, "/1/1/1", payload=b"60", cf=CF.TEXT, ssid=102)) == "2.04"


def test_object_read_returns_only_readable_instances(h: Harness) -> None:
    h.tree[33000].add_instance(5, {4: 5})
    node = decode(h.request(Code.GET, "/33000", ssid=102), "/33000")
    assert isinstance(node, ObjectNode)
    assert list(node.instances) == [0]
    node = decode(h.request(Code.GET, "/33000", ssid=101), "/33000")
    assert list(node.instances) == [0]  # 101 owns /33000/0 only; /33000/5 has no ACL
    h.tree[33000].remove_instance(0)
    assert code(h.request(Code.GET, "/33000", ssid=101)) == "4.01"


def test_create_gives_the_creator_an_acl_instance(h: Harness) -> None:
    node = ObjectInstance(0, [SingleResource(4, ResourceType.INTEGER, 9)])
    payload = encode(node, "/33000/0")
    assert code(h.request(Code.POST, "/33000", payload=payload, cf=CF.TLV, ssid=101)) == "4.01"
    response = h.request(Code.POST, "/33000", payload=payload, cf=CF.TLV, ssid=102)
    assert code(response) == "2.01"
    iid = int(response.location_path[1])
    access = AccessControl(h.tree)
    entry = access.entry_for(33000, iid)
    assert entry is not None
    assert entry.owner == 102
    assert access.rights(102, 33000, iid) == AccessRight.FULL
    assert code(h.request(Code.GET, f"/33000/{iid}", ssid=101)) == "4.01"
    # the owner manages the ACL instance: grant 101 read access
    acl_path = f"/2/{entry.instance_id}/2/101"
    assert code(h.request(Code.PUT, acl_path, payload=b"1", cf=CF.TEXT, ssid=101)) == "4.01"
    assert code(h.request(Code.PUT, acl_path, payload=b"1", cf=CF.TEXT, ssid=102)) == "2.04"
    assert code(h.request(Code.GET, f"/33000/{iid}", ssid=101)) == "2.05"
    # deleting the instance removes its ACL instance
    assert code(h.request(Code.DELETE, f"/33000/{iid}", ssid=101)) == "4.01"
    assert code(h.request(Code.DELETE, f"/33000/{iid}", ssid=102)) == "2.02"
    assert access.entry_for(33000, iid) is None


def test_acl_object_is_readable_by_all(h: Harness) -> None:
    assert code(h.request(Code.GET, "/2", ssid=102)) == "2.05"
    entry = AccessControl(h.tree).entry_for(3, 0)
    assert entry is not None
    path = f"/2/{entry.instance_id}/2/102"
    assert code(h.request(Code.PUT, path, payload=b"3", cf=CF.TEXT, ssid=102)) == "4.01"
    assert code(h.request(Code.PUT, path, payload=b"3", cf=CF.TEXT, ssid=101)) == "2.04"
    assert code(h.request(Code.PUT, "/3/0/14", payload=b"+02", cf=CF.TEXT, ssid=102)) == "2.04"


def test_notification_stops_when_read_right_is_withdrawn(h: Harness) -> None:
    assert code(h.request(Code.GET, "/33000/0/0", observe=0, token=b"t", ssid=102)) == "2.05"
    entry = AccessControl(h.tree).entry_for(33000, 0)
    assert entry is not None
    h.request(Code.PUT, f"/2/{entry.instance_id}/2/0", payload=b"0", cf=CF.TEXT, ssid=101)
    h.tree[33000].instance(0).set(0, "changed")
    h.advance(1)
    (notification,) = h.take_notifications()
    assert code(notification.message) == "4.01"
    assert len(h.engine.observations) == 0


def test_single_server_has_full_access() -> None:
    h = Harness(config(server(101)))
    h.register_all()
    assert not AccessControl(h.tree).enforced
    assert code(h.request(Code.POST, "/3/0/12")) == "2.04"
    assert AccessControl(h.tree).can_create(101, 3)
    assert Path(3, 0)
