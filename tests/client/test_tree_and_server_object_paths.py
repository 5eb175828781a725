"""Remaining data-model rules of the client's object tree (LwM2M-TS-Core 1.1 §6.3 Read / Write /
Execute / Create, §6.1.7 Bootstrap-Write, §5.1.2 numeric attributes) and of the LwM2M Server
object /1 (Appendix E.2: 4 Disable, 8 Registration Update Trigger, 9 Bootstrap-Request Trigger).

Each case states the response code the spec gives (4.00 Bad Request, 4.04 Not Found, 4.05
Method Not Allowed) and checks that a refused operation changed nothing."""

from __future__ import annotations

import pytest

from lwm2m.client import SimpleObject
from lwm2m.client.arguments import ExecuteArguments
from lwm2m.client.objects import Device
from lwm2m.client.objects.server import ServerObject
from lwm2m.client.tree import ObjectTree, numeric_resource
from lwm2m.coap.numbers import Code
from lwm2m.errors import BadRequest, MethodNotAllowed, NotFound
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectNode,
    Path,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import default_registry

from .test_dm import TEST_OBJECT

INT = ResourceType.INTEGER
STR = ResourceType.STRING
BOOL = ResourceType.BOOLEAN
OID = TEST_OBJECT.id  # 0 name RW str, 1 value R float, 2 setpoints RW multiple int,
# 3 reset E, 4 mode RW mandatory int, 5 blob RW opaque


def make_tree() -> ObjectTree:
    registry = default_registry().copy()
    registry.add(TEST_OBJECT)
    test = SimpleObject(TEST_OBJECT, {0: {0: "first", 1: 20.5, 2: [1, 2], 4: 1}})
    return ObjectTree([test, Device()], registry=registry)


# -- Read ----------------------------------------------------------------------------------------


def test_the_root_path_cannot_be_read() -> None:
    """Read targets an object, instance, resource or resource instance (§6.3.1): 4.05."""
    with pytest.raises(MethodNotAllowed) as info:
        make_tree().read(Path())
    assert Code(info.value.code).dotted == "4.05"


def test_a_resource_instance_of_a_single_resource_does_not_exist() -> None:
    tree = make_tree()
    with pytest.raises(NotFound) as info:
        tree.read(Path(OID, 0, 0, 0))  # "name" is a single resource
    assert Code(info.value.code).dotted == "4.04"
    assert not tree.exists(Path(OID, 0, 0, 0))
    assert tree.read(Path(OID, 0, 2, 1)) == MultipleResource.of(2, INT, {0: 1, 1: 2}).instances[1]


# -- Write (DM and bootstrap) ---------------------------------------------------------------------


def test_a_dm_write_to_an_object_is_refused_but_a_bootstrap_write_may_target_one() -> None:
    """§7.3.2.4 / §6.3.3: a DM Write never targets an object (4.05); a Bootstrap-Write to an
    object creates or updates each instance (§6.1.7.4)."""
    tree = make_tree()
    node = ObjectNode(OID, [ObjectInstance(7, [SingleResource(4, INT, 9)])])
    with pytest.raises(MethodNotAllowed):
        tree.write(Path(OID), node)
    assert tree.instance_ids(OID) == [0]
    tree.write(Path(OID), node, bootstrap=True)
    assert tree.instance_ids(OID) == [0, 7]
    assert tree.value(Path(OID, 7, 4)) == 9


def test_a_bootstrap_write_to_an_object_needs_object_content() -> None:
    tree = make_tree()
    with pytest.raises(BadRequest) as info:
        tree.write(Path(OID), ObjectInstance(7, [SingleResource(4, INT, 9)]), bootstrap=True)
    assert Code(info.value.code).dotted == "4.00"
    assert tree.instance_ids(OID) == [0]


@pytest.mark.parametrize(
    "node",
    [
        SingleResource(4, INT, 5),  # another resource's content
        ObjectInstance(0, [SingleResource(0, STR, "x")]),  # an instance at a resource path
    ],
    ids=["other-resource", "instance"],
)
@pytest.mark.parametrize("bootstrap", [False, True])
def test_a_resource_write_needs_the_content_of_that_resource(
    node: SingleResource | ObjectInstance, bootstrap: bool
) -> None:
    tree = make_tree()
    with pytest.raises(BadRequest):
        tree.write(Path(OID, 0, 0), node, bootstrap=bootstrap)
    assert tree.value(Path(OID, 0, 0)) == "first"
    assert tree.value(Path(OID, 0, 4)) == 1


@pytest.mark.parametrize("bootstrap", [False, True])
def test_a_value_of_the_wrong_type_is_a_bad_request(bootstrap: bool) -> None:
    """Typed values (§6.3.3): an Integer for a String resource is refused with 4.00, on the
    bootstrap interface as well, and nothing is written."""
    tree = make_tree()
    with pytest.raises(BadRequest, match="String value is expected"):
        tree.write(Path(OID, 0, 0), SingleResource(0, INT, 5), bootstrap=bootstrap)
    assert tree.value(Path(OID, 0, 0)) == "first"
    instance = ObjectInstance(0, [SingleResource(4, INT, 2), SingleResource(0, BOOL, True)])
    with pytest.raises(BadRequest):
        tree.write(Path(OID, 0), instance, replace=False, bootstrap=bootstrap)
    assert tree.value(Path(OID, 0, 4)) == 1  # the valid resource of the same write not applied


# -- Create ---------------------------------------------------------------------------------------


def test_unknown_resources_are_ignored_by_a_dm_create_but_refused_by_a_bootstrap_one() -> None:
    """§7.3.2.4 DM Create ignores values of read-only or unknown resources; the bootstrap
    interface writes what it is given and refuses a resource the object lacks (4.04)."""
    tree = make_tree()
    values = [SingleResource(4, INT, 3), SingleResource(99, INT, 1)]
    assert tree.create(OID, values, 5) == 5
    assert tree.value(Path(OID, 5, 4)) == 3
    with pytest.raises(NotFound) as info:
        tree.create(OID, values, 6, bootstrap=True)
    assert Code(info.value.code).dotted == "4.04"
    assert tree.instance_ids(OID) == [0, 5]  # nothing half-created


def test_a_bootstrap_create_skips_the_mandatory_check_and_operations() -> None:
    tree = make_tree()
    read_only = [SingleResource(1, ResourceType.FLOAT, 1.5)]  # 1 "value" is R, 4 is missing
    with pytest.raises(BadRequest, match="mandatory resource 4"):
        tree.create(OID, read_only, 8)
    assert tree.create(OID, read_only, 8, bootstrap=True) == 8
    assert tree.value(Path(OID, 8, 1)) == 1.5


# -- snapshots ------------------------------------------------------------------------------------


def test_restore_skips_objects_whose_handler_is_gone() -> None:
    tree = make_tree()
    snapshot = tree.snapshot()
    assert set(snapshot) == {3, OID}
    tree.write(Path(3, 0, 13), SingleResource(13, ResourceType.TIME, 5))
    tree.create(OID, [SingleResource(4, INT, 2)], 3)
    tree.remove(3)
    tree.restore(snapshot)
    assert tree.object_ids() == [OID]  # a removed handler is not brought back
    assert tree.instance_ids(OID) == [0]  # the other one is restored


# -- numeric resources (gt / lt / st) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "numeric"),
    [
        (Path(OID, 0, 1), True),  # single Float
        (Path(OID, 0, 4), True),  # single Integer
        (Path(OID, 0, 2, 0), True),  # an instance of a multiple Integer
        (Path(OID, 0, 2), False),  # the multiple resource as a whole
        (Path(OID, 0, 0), False),  # String
        (Path(OID, 0), False),  # not a resource
        (Path(OID, 0, 77), False),  # no such resource in the object
        (Path(4242, 0, 1), False),  # no such object
    ],
)
def test_numeric_attributes_apply_to_one_numeric_value_only(path: Path, numeric: bool) -> None:
    """§5.1.2: gt, lt and st apply to a numeric single resource or resource instance."""
    assert numeric_resource(make_tree(), path) is numeric


# -- /1 LwM2M Server -----------------------------------------------------------------------------


class Actions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, dict[int, str | None]]] = []

    def disable_server(self, short_server_id: int) -> None:
        self.calls.append(("disable", short_server_id, {}))

    def trigger_update(self, short_server_id: int, arguments: ExecuteArguments) -> None:
        self.calls.append(("update", short_server_id, dict(arguments)))

    def trigger_bootstrap(self, short_server_id: int) -> None:
        self.calls.append(("bootstrap", short_server_id, {}))


def server_instance(instance_id: int, ssid: int | None) -> ObjectInstance:
    resources = [
        SingleResource(1, INT, 300),
        SingleResource(6, BOOL, True),
        SingleResource(7, STR, "U"),
    ]
    if ssid is not None:
        resources.append(SingleResource(0, INT, ssid))
    return ObjectInstance(instance_id, resources)


def server_tree(actions: Actions | None) -> tuple[ObjectTree, ServerObject]:
    handler = ServerObject()
    handler.actions = actions
    tree = ObjectTree([handler])
    tree.write(Path(1, 0), server_instance(0, 101), bootstrap=True)
    tree.write(Path(1, 3), server_instance(3, 202), bootstrap=True)
    return tree, handler


@pytest.mark.parametrize(
    ("resource_id", "expected"),
    [(4, ("disable", 202, {})), (8, ("update", 202, {0: "x"})), (9, ("bootstrap", 202, {}))],
)
def test_server_executables_act_for_the_short_server_id_of_their_instance(
    resource_id: int, expected: tuple[str, int, dict[int, str | None]]
) -> None:
    actions = Actions()
    tree, _ = server_tree(actions)
    tree.execute(Path(1, 3, resource_id), "0='x'" if resource_id == 8 else "")
    assert actions.calls == [expected]


def test_server_execute_is_refused_without_engine_actions() -> None:
    """Until the engine wires its actions, Execute of /1/x/8 answers 4.05."""
    tree, _ = server_tree(None)
    with pytest.raises(MethodNotAllowed) as info:
        tree.execute(Path(1, 0, 8))
    assert Code(info.value.code).dotted == "4.05"


def test_server_execute_is_refused_for_an_account_without_short_server_id() -> None:
    """/1/x/0 is the account's identity: without it there is no server to act for (4.05)."""
    actions = Actions()
    tree, _ = server_tree(actions)
    tree.write(Path(1, 5), server_instance(5, None), bootstrap=True)
    for resource_id in (4, 8, 9):
        with pytest.raises(MethodNotAllowed):
            tree.execute(Path(1, 5, resource_id))
    assert actions.calls == []


def test_server_execute_of_a_non_executable_resource_or_missing_instance() -> None:
    """Even when the operation check is skipped (a local caller), only 4, 8 and 9 act;
    an instance that does not exist is 4.04."""
    actions = Actions()
    tree, handler = server_tree(actions)
    for resource_id in (1, 0, 7):
        with pytest.raises(MethodNotAllowed, match="not executable"):
            tree.execute(Path(1, 0, resource_id), check_operations=False)
    with pytest.raises(MethodNotAllowed):
        tree.execute(Path(1, 0, 1))  # the DM view: Lifetime is RW, not E
    with pytest.raises(NotFound):
        handler.execute(9, 8, ExecuteArguments())
    with pytest.raises(NotFound):
        tree.execute(Path(1, 9, 8))
    assert actions.calls == []
