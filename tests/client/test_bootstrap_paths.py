"""Bootstrap paths not covered elsewhere: the Bootstrap-Finish consistency checks, what
Bootstrap-Delete keeps, Bootstrap-Read/-Write/-Discover targets, the session timers, rollback and
the bootstrap account purge (LwM2M-TS-Core 1.1 §5.2, §6.1; spec-reference §1.1)."""

from __future__ import annotations

import pytest

from lwm2m.client.bootstrap import (
    EXCHANGE_LIFETIME,
    BootstrapSession,
    BootstrapState,
    bootstrap_write,
    factory_objects,
    protected_paths,
)
from lwm2m.client.events import BootstrapFailed, BootstrapFinished, BootstrapStarted
from lwm2m.client.objects.security import OscoreObject
from lwm2m.client.tree import ObjectTree
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.codec.link import decode_links
from lwm2m.errors import BadRequest
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Path,
    ResourceType,
    SingleResource,
)
from lwm2m.operations.requests import BootstrapRequest, BootstrapWrite, Register

from .helpers import Harness, bs_table, code, config, encode, server
from .test_bootstrap import bootstrapping, security_instance, server_instance, write

OPQ = ResourceType.OPAQUE


def oscore_instance(iid: int) -> ObjectInstance:
    return ObjectInstance(
        iid,
        [
            SingleResource(0, OPQ, b"m" * 16),
            SingleResource(1, OPQ, b"salt"),
            SingleResource(2, OPQ, b"sender"),
        ],
    )


def with_oscore_link(instance: ObjectInstance, target: ObjectLink) -> ObjectInstance:
    return ObjectInstance(
        instance.id,
        [*instance.resources.values(), SingleResource(17, ResourceType.OBJLNK, target)],
    )


def oscore_client() -> Harness:
    """A client with /21 that only knows its bootstrap server, bootstrapping."""
    h = Harness(config(bootstrap=bs_table()), objects=[OscoreObject()])
    h.start()
    (request,) = h.take(BootstrapRequest)
    h.respond(request, Code.CHANGED)
    return h


def dm_account(h: Harness, ssid: int = 101, iid: int = 1) -> None:
    assert write(h, f"/0/{iid}", security_instance(iid, f"coap://127.0.0.1:{5600 + ssid}", ssid))
    assert write(h, f"/1/{iid - 1}", server_instance(iid - 1, ssid)) == "2.04"


# -- Bootstrap-Finish consistency (4.06) ---------------------------------------------------------


def finish(h: Harness) -> tuple[str, str]:
    response = h.bs(Code.POST, "/bs")
    return code(response), response.payload.decode()


def test_finish_refuses_a_second_bootstrap_account() -> None:
    h = bootstrapping()
    dm_account(h)
    assert write(h, "/0/5", security_instance(5, "coap://127.0.0.1:5705")) == "2.04"
    status, problems = finish(h)
    assert status == "4.06"
    assert "more than one bootstrap server account" in problems
    assert h.engine.bootstrap.state is BootstrapState.BOOTSTRAPPING


def test_finish_refuses_an_invalid_security_mode() -> None:
    h = bootstrapping()
    dm_account(h)
    # the Bootstrap-Write itself is refused (the resource's range is 0..4) ...
    response = h.bs(Code.PUT, "/0/1/2", payload=b"9", cf=CF.TEXT)
    assert code(response) == "4.00"
    assert response.payload == b"/0/*/2: 9 is outside the range '0..4'"
    # ... and a value that got there another way (the application) fails the Finish
    h.tree.handler(0).write(1, [SingleResource(2, ResourceType.INTEGER, 9)])
    status, problems = finish(h)
    assert (status, "/0/1: invalid security mode" in problems) == ("4.06", True)


def test_finish_refuses_a_server_security_instance_without_short_server_id() -> None:
    h = bootstrapping()
    dm_account(h)
    assert write(h, "/0/2", security_instance(2, "coap://127.0.0.1:5702", 0)) == "4.00"  # 1..65534
    assert write(h, "/0/2", security_instance(2, "coap://127.0.0.1:5702", 7)) == "2.04"
    h.tree.handler(0).write(2, [SingleResource(10, ResourceType.INTEGER, 0)])
    status, problems = finish(h)
    assert status == "4.06"
    assert "/0/2 has no valid Short Server ID" in problems


def test_finish_refuses_two_security_instances_with_one_short_server_id() -> None:
    h = bootstrapping()
    dm_account(h)
    assert write(h, "/0/2", security_instance(2, "coap://127.0.0.1:5702", 101)) == "2.04"
    status, problems = finish(h)
    assert status == "4.06"
    assert "/0/2: Short Server ID 101 is used twice" in problems


def test_finish_accepts_a_security_instance_linking_an_existing_oscore_instance() -> None:
    h = oscore_client()
    assert write(h, "/21/3", oscore_instance(3)) == "2.04"
    sec = security_instance(1, "coap://127.0.0.1:5701", 101)
    assert write(h, "/0/1", with_oscore_link(sec, ObjectLink(21, 3))) == "2.04"
    assert write(h, "/1/0", server_instance(0, 101)) == "2.04"
    assert finish(h) == ("2.04", "")
    (register,) = h.take(Register)
    assert register.connection.oscore == ObjectLink(21, 3)


def test_finish_refuses_an_oscore_link_to_another_object() -> None:
    h = oscore_client()
    assert write(h, "/21/3", oscore_instance(3)) == "2.04"
    sec = security_instance(1, "coap://127.0.0.1:5701", 101)
    assert write(h, "/0/1", with_oscore_link(sec, ObjectLink(2, 3))) == "2.04"
    assert write(h, "/1/0", server_instance(0, 101)) == "2.04"
    status, problems = finish(h)
    assert status == "4.06"
    assert "/0/1/17 links to a missing OSCORE instance" in problems


# -- Bootstrap-Delete keeps the bootstrap account and what belongs to it -------------------------


def test_delete_root_keeps_the_bootstrap_account_and_its_oscore_instance() -> None:
    h = oscore_client()
    for iid in (0, 1):
        assert write(h, f"/21/{iid}", oscore_instance(iid)) == "2.04"
    assert code(h.bs(Code.PUT, "/0/0/17", payload=b"21:1", cf=CF.TEXT)) == "2.04"
    dm_account(h)
    assert code(h.bs(Code.DELETE, "/21/1")) == "4.00"  # the bootstrap account's OSCORE
    assert code(h.bs(Code.DELETE, "/")) == "2.02"
    assert h.tree.instance_ids(0) == [0]
    assert h.tree.instance_ids(1) == []
    assert h.tree.instance_ids(21) == [1]
    assert h.tree.instance_ids(3) == [0]


def test_delete_of_the_security_object_keeps_only_the_bootstrap_instance() -> None:
    h = bootstrapping()
    dm_account(h, 101, 1)
    dm_account(h, 102, 2)
    assert code(h.bs(Code.DELETE, "/0")) == "2.02"
    assert h.tree.instance_ids(0) == [0]
    assert h.tree.value(Path(0, 0, 1)) is True
    assert h.tree.instance_ids(1) == [0, 1]  # only /0 was addressed


def test_protected_paths_without_a_security_object() -> None:
    assert protected_paths(ObjectTree([])) == {Path(3, 0)}


# -- Bootstrap-Write / -Read / -Discover targets ---------------------------------------------------


def test_bootstrap_write_of_a_resource_instance_is_a_bad_request() -> None:
    h = bootstrapping()
    acl = MultipleResource.of(2, ResourceType.INTEGER, {101: 7})
    assert code(h.bs(Code.PUT, "/2/0/2", payload=encode(acl, "/2/0/2"), cf=CF.TLV)) == "2.04"
    request = BootstrapWrite(Path(2, 0, 2, 101), SingleResource(101, ResourceType.INTEGER, 1))
    with pytest.raises(BadRequest):
        bootstrap_write(h.tree, request)
    assert h.tree.value(Path(2, 0, 2, 101)) == 7  # unchanged


def test_bootstrap_write_of_the_root_is_refused() -> None:
    h = bootstrapping()
    assert code(h.bs(Code.PUT, "/", payload=b"\x00", cf=CF.TLV)) in ("4.00", "4.05")


def test_bootstrap_read_of_the_root_is_not_allowed() -> None:
    h = bootstrapping()
    response = h.bs(Code.GET, "/")
    assert code(response) == "4.05"
    assert b"/1 or /2" in response.payload


def test_bootstrap_read_of_an_instance_of_server_object() -> None:
    h = bootstrapping()
    dm_account(h)
    assert code(h.bs(Code.GET, "/1/0", accept=CF.TLV)) == "2.05"
    assert code(h.bs(Code.GET, "/1/7", accept=CF.TLV)) == "4.04"


def test_bootstrap_read_of_a_resource_is_refused() -> None:
    h = bootstrapping()
    dm_account(h)
    assert code(h.bs(Code.GET, "/1/0/1", accept=CF.TEXT)) == "4.00"


def test_bootstrap_discover_lists_instances_of_a_1_0_object_without_an_object_link() -> None:
    h = oscore_client()
    assert write(h, "/21/4", oscore_instance(4)) == "2.04"
    links = [link.uri for link in decode_links(h.bs(Code.GET, "/", accept=CF.LINK).payload)]
    assert "/21/4" in links
    assert "/21" not in links  # version 1.0 with instances: no object link, no ver
    assert links[0] == "/"
    response = h.bs(Code.GET, "/21", accept=CF.LINK)
    assert [link.uri for link in decode_links(response.payload)] == ["/", "/21/4"]


def test_bootstrap_discover_of_an_unknown_object_is_not_found() -> None:
    h = bootstrapping()
    assert code(h.bs(Code.GET, "/77", accept=CF.LINK)) == "4.04"


# -- start-up sources ------------------------------------------------------------------------------


def test_factory_bootstrap_writes_the_ciphersuites() -> None:
    psk = {
        "security_mode": "psk",
        "psk_identity": "id",
        "psk_key_hex": "00112233",
        "ciphersuites": [49320, 168],
    }
    cfg = config(server(101, uri="coaps://127.0.0.1:5701", **psk))
    (security, *_rest) = factory_objects(cfg)
    suites = security.instances[0].resources[16]
    assert isinstance(suites, MultipleResource)
    assert [r.value for r in suites.instances.values()] == [49320, 168]
    h = Harness(cfg)
    h.start()
    assert h.take_events(BootstrapFinished) == [BootstrapFinished("factory")]
    assert h.tree.value(Path(0, 0, 16, 1)) == 168


class OscoreSource:
    """A source providing /21 data, data for an object the client has no handler for (32769),
    then the accounts."""

    name = "card"

    def load(self, tree: ObjectTree) -> list[ObjectNode]:
        return [
            ObjectNode(21, [oscore_instance(0)]),
            ObjectNode(32769, [ObjectInstance(0, [SingleResource(0, ResourceType.STRING, "x")])]),
            ObjectNode(0, [security_instance(0, "coap://127.0.0.1:5701", 101)]),
            ObjectNode(1, [server_instance(0, 101)]),
        ]


def test_source_data_for_objects_the_client_lacks_is_skipped() -> None:
    h = Harness(config(server(102)), sources=[OscoreSource()])  # the factory is not asked
    h.start()
    assert h.take_events(BootstrapFinished) == [BootstrapFinished("card")]
    assert 32769 not in h.tree
    # /21 is in every client's tree (what /0/x/17 links to): its data is applied
    assert h.tree.instance_ids(21) == [0]
    (register,) = h.take(Register)
    assert register.connection.short_server_id == 101


# -- the session: timers, hold-off, retry, rollback ------------------------------------------------


def test_session_start_while_waiting_retry_retries_at_once() -> None:
    session = BootstrapSession(retry_delay=30)
    session.start(0, hold_off=5)
    assert session.handle_timer(4).send_request is False  # hold-off not over
    assert session.handle_timer(5).send_request is True
    outcome = session.request_answered(6, False, "4.00")
    assert (outcome.failed, session.deadline) == ("4.00", 36)
    assert session.state is BootstrapState.WAITING_RETRY
    session.start(10, hold_off=5)
    assert session.deadline == 10
    assert session.handle_timer(10).send_request is True


def test_session_timer_while_requesting_does_nothing() -> None:
    session = BootstrapSession()
    session.start(0, hold_off=0)
    assert session.handle_timer(0).send_request
    session.deadline = 1.0  # a stale deadline while the request is in flight
    outcome = session.handle_timer(2)
    assert (outcome.send_request, outcome.failed) == (False, None)
    assert session.state is BootstrapState.REQUESTING


def test_back_off_is_capped() -> None:
    session = BootstrapSession(retry_delay=10, max_retry_delay=25)
    session.start(0, hold_off=0)
    retries = []
    for _ in range(3):
        session.handle_timer(session.deadline or 0)
        retries.append(session.request_answered(0, False).failed)
        retries.append(session.deadline)
    failed = "Bootstrap-Request failed"
    assert retries == [failed, 10, failed, 20, failed, 25]


def test_a_second_bootstrap_request_while_one_runs_is_ignored() -> None:
    h = Harness(config(bootstrap=bs_table(hold_off=10)))
    h.start()
    assert len(h.take_events(BootstrapStarted)) == 1
    h.engine.request_bootstrap(h.now + 1)
    assert h.take_events(BootstrapStarted) == []
    h.advance(10)
    assert len(h.take(BootstrapRequest)) == 1


def test_hold_off_is_respected_after_execute_of_bootstrap_trigger() -> None:
    h = Harness(config(server(101), bootstrap=bs_table(hold_off=30)))
    h.register_all()
    assert code(h.request(Code.POST, "/1/0/9")) == "2.04"
    h.advance(29)
    assert h.take(BootstrapRequest) == []
    h.advance(1)
    assert len(h.take(BootstrapRequest)) == 1


def test_bootstrap_account_removed_during_hold_off_gives_up_quietly() -> None:
    h = Harness(config(bootstrap=bs_table(hold_off=10)))
    h.start()
    h.engine.reprovision(h.now, (), lambda tree: tree.delete(0, 0))
    h.advance(10)
    assert h.take(BootstrapRequest) == []
    assert h.engine.bootstrap.state is BootstrapState.IDLE
    assert h.engine.get_timer() is None


def test_a_retry_after_rollback_snapshots_again_and_rolls_back_again() -> None:
    h = bootstrapping()
    dm_account(h)
    h.advance(EXCHANGE_LIFETIME)
    (failed,) = h.take_events(BootstrapFailed)
    assert h.tree.instance_ids(0) == [0]
    assert failed.retry_at is not None
    h.advance(failed.retry_at - h.now)
    (request,) = h.take(BootstrapRequest)
    h.respond(request, Code.CHANGED)
    assert write(h, "/1/0", server_instance(0, 101)) == "2.04"
    assert h.tree.instance_ids(1) == [0]
    h.advance(EXCHANGE_LIFETIME)
    assert len(h.take_events(BootstrapFailed)) == 1
    assert h.tree.instance_ids(1) == []  # the second attempt was rolled back too


def test_server_initiated_bootstrap_timeout_restores_the_previous_configuration() -> None:
    h = Harness(config(server(101), bootstrap=bs_table()))
    h.register_all()
    assert code(h.bs(Code.DELETE, "/")) == "2.02"
    assert h.take_events(BootstrapStarted) == [BootstrapStarted(server_initiated=True)]
    assert h.tree.instance_ids(1) == []
    h.advance(EXCHANGE_LIFETIME)
    (failed,) = h.take_events(BootstrapFailed)
    assert "EXCHANGE_LIFETIME" in failed.reason
    assert h.tree.instance_ids(0) == [0, 1]
    assert h.tree.instance_ids(1) == [0]
    assert h.engine.registrations[101].registered
    assert code(h.request(Code.GET, "/1/0/1", accept=CF.TEXT)) == "2.05"


def test_bootstrap_account_purge_deferred_by_a_failed_bootstrap_still_happens() -> None:
    h = bootstrapping(account_timeout=100)
    dm_account(h)
    assert finish(h) == ("2.04", "")
    h.register_all()
    h.advance(50)
    assert write(h, "/1/0", server_instance(0, 101, lifetime=600)) == "2.04"  # server-initiated
    h.advance(50)
    assert h.tree.instance_ids(0) == [0, 1]  # not purged while the bootstrap runs
    h.advance(EXCHANGE_LIFETIME)
    assert len(h.take_events(BootstrapFailed)) == 1
    h.advance(1)
    assert h.tree.instance_ids(0) == [1]


def test_a_tlv_bootstrap_write_ignores_resources_the_client_does_not_know() -> None:
    """Core §6.1.7.4: a Bootstrap-Write of an object or instance ignores the optional resources
    the client does not support; in TLV at both levels (a bare instance and the Object
    Instance TLVs of an object write)."""
    from lwm2m.codec.tlv import Tlv, TlvType, encode_tlvs

    h = bootstrapping()
    unknown = encode_tlvs([Tlv(TlvType.RESOURCE_VALUE, 18, b"\x17")])
    instance = encode(security_instance(1, "coap://127.0.0.1:5701", 101), "/0/1") + unknown
    assert code(h.bs(Code.PUT, "/0/1", payload=instance, cf=CF.TLV)) == "2.04"
    assert h.tree.value(Path(0, 1, 10)) == 101
    whole = encode_tlvs(
        [
            Tlv(
                TlvType.OBJECT_INSTANCE,
                2,
                children=(
                    Tlv(TlvType.RESOURCE_VALUE, 0, b"coap://127.0.0.1:5702"),
                    Tlv(TlvType.RESOURCE_VALUE, 1, b"\x00"),
                    Tlv(TlvType.RESOURCE_VALUE, 2, b"\x03"),
                    Tlv(TlvType.RESOURCE_VALUE, 10, b"\x66"),
                    Tlv(
                        TlvType.MULTIPLE_RESOURCE,
                        99,
                        children=(Tlv(TlvType.RESOURCE_INSTANCE, 0, b"\x01"),),
                    ),
                ),
            )
        ]
    )
    assert code(h.bs(Code.PUT, "/0", payload=whole, cf=CF.TLV)) == "2.04"
    assert h.tree.value(Path(0, 2, 10)) == 102
    assert 99 not in h.tree.read(Path(0, 2), readable_only=False).resources
