"""Spec-conformance campaign for the CLIENT side of the Bootstrap interface.

Rules are taken from the OMA LwM2M 1.1 Core text. The wording was checked in the public 2017 draft
(omadm/omaoriginal ``TS_Core/OMA-TS-LightweightM2M_Core-V1_1.md``), whose numbering is used here:

- §5.2.2 Bootstrap Information: at most one Bootstrap-Server Account; bootstrap information is
  accepted "without applying access control";
- §5.2.3.3 Client Initiated Bootstrap:
  - step #0 is the Bootstrap-Request;
  - step #2: no Bootstrap-Finish within EXCHANGE_LIFETIME after the last Bootstrap-Server command
    means the bootstrap failed;
  - step #3: a failed bootstrap leaves the Bootstrap-Server Account with the values it had
    before. After a *successful* one, the account is purged after /0/x/12 (0 or not instantiated
    = infinite). A replaced account must be in place before the Finish response;
- §5.2.3.4 Server Initiated Bootstrap = Execute of /1/x/9;
- §5.2.4 Bootstrap Sequence:
  - smartcard, then factory, then Register, then client-initiated bootstrap;
  - a server-initiated attempt is ignored until smartcard/factory were tried;
  - step 5: it is possible only while the account is kept;
- §5.2.6: inconsistencies are reported in the Bootstrap-Finish response; the Bootstrap-Server MAY
  correct them and send a new Finish;
- §5.2.7.1-5 Bootstrap-Request, -Finish, -Discover, -Write, -Delete;
- §5.3.1: after the bootstrap procedure, Register with every server that has a /1 instance.

The final 1.1.1 text moves the operations to §6.1 [U: numbering not checked in the final PDF].
Response codes come from spec-reference §1.1: the Bootstrap interface table and its notes. The
Client Hold Off Time (/0/x/11) and the account timeout (/0/x/12) come from Appendix E.1 / spec-ref
§1.8.

Already covered elsewhere and not repeated here: tests/client/test_bootstrap.py and
test_bootstrap_paths.py, plus the ACL bypass in test_access_paths.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lwm2m.client import MemoryInstanceStore, Peer, SimpleInstance, SimpleObject
from lwm2m.client.bootstrap import EXCHANGE_LIFETIME, FactoryBootstrap
from lwm2m.client.events import BootstrapFailed, BootstrapFinished, BootstrapStarted, Registered
from lwm2m.client.tree import ObjectTree
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.codec.link import Link, decode_links
from lwm2m.model import MultipleResource, ObjectInstance, ObjectNode, Path, ResourceType
from lwm2m.model.registry import default_registry
from lwm2m.operations.requests import BootstrapRequest, Register, Update

from .helpers import Harness, bs_table, code, config, decode, encode, server
from .test_bootstrap import bootstrapping, security_instance, server_instance, write
from .test_dm import TEST_OBJECT

BS_PEER = ("127.0.0.1", 5700)
APP = 33000  # TEST_OBJECT: 0 name RW string, 1 value R float, 2 RW multiple int, 4 mode RW int


def dm_account(h: Harness, ssid: int, security_iid: int, server_iid: int) -> None:
    uri = f"coap://127.0.0.1:{5600 + ssid}"
    assert write(h, f"/0/{security_iid}", security_instance(security_iid, uri, ssid)) == "2.04"
    assert write(h, f"/1/{server_iid}", server_instance(server_iid, ssid)) == "2.04"


def finish(h: Harness) -> str:
    return code(h.bs(Code.POST, "/bs"))


def with_app(*servers: dict[str, Any], **bs: Any) -> Harness:
    """A client with /33000/0 and a bootstrap account (and ``servers``), started and registered."""
    app = SimpleObject(
        TEST_OBJECT,
        {0: SimpleInstance({0: "zero", 1: 20.0, 2: [1, 2], 4: 1})},
        factory=SimpleInstance,
    )
    registry = default_registry()
    registry.add(TEST_OBJECT)
    h = Harness(config(*servers, bootstrap=bs_table(**bs)), [app], registry=registry)
    h.register_all()
    return h


def links_of(h: Harness, path: str) -> dict[str, Link]:
    response = h.bs(Code.GET, path, accept=CF.LINK)
    assert code(response) == "2.05"
    return {link.uri: link for link in decode_links(response.payload)}


# == Bootstrap-Request, Client Hold Off Time, retries (§5.2.3.3 step #0, §5.2.7.1) ===============


@pytest.mark.parametrize(
    ("preferred", "query"),
    [
        ("senml-cbor", ("ep=test-ep", "pct=112")),
        ("", ("ep=test-ep",)),
    ],
)
def test_bootstrap_request_is_post_bs_with_ep_and_the_configured_pct(
    preferred: str, query: tuple[str, ...]
) -> None:
    """§5.2.7.1 / spec-ref §1.1: ``POST /bs?ep={ep}[&pct={cf}]`` to the pre-provisioned
    Bootstrap-Server URI; ``pct`` is optional (1.1)."""
    h = Harness(config(bootstrap=bs_table(port=5710), formats={"bootstrap_preferred": preferred}))
    h.start()
    (request,) = h.take(BootstrapRequest)
    assert request.message.code == Code.POST
    assert request.message.uri_path == ("bs",)
    assert request.message.uri_query == query
    assert request.connection.bootstrap
    assert request.connection.uri.address == ("127.0.0.1", 5710)


def test_unanswered_bootstrap_request_fails_and_is_retried_after_back_off() -> None:
    """§5.2.3.3 step #0: a Bootstrap-Request without an answer (transport timeout) fails the
    attempt. The bootstrap module docstring says: REQUESTING --error/timeout--> WAITING_RETRY,
    then --timer (back-off)--> REQUESTING."""
    h = Harness(config(bootstrap=bs_table()))
    h.start()
    (request,) = h.take(BootstrapRequest)
    h.fail(request, "timeout")
    (failed,) = h.take_events(BootstrapFailed)
    assert failed.reason == "timeout"
    assert failed.retry_at == h.now + 60
    h.advance(59)
    assert h.take(BootstrapRequest) == []
    h.advance(1)
    assert len(h.take(BootstrapRequest)) == 1


def test_unsupported_pct_answer_is_retried_not_abandoned() -> None:
    """spec-ref §1.1: a Bootstrap-Server answers 4.15 when it does not support ``pct``. The
    client must not give up on bootstrapping (§5.2.4 step 4 still holds): it retries after the
    back-off."""
    h = Harness(config(bootstrap=bs_table()))
    h.start()
    (request,) = h.take(BootstrapRequest)
    h.respond(request, Code.UNSUPPORTED_CONTENT_FORMAT)
    (failed,) = h.take_events(BootstrapFailed)
    assert failed.reason.startswith("4.15")
    assert failed.retry_at is not None
    h.advance(failed.retry_at - h.now)
    assert len(h.take(BootstrapRequest)) == 1


def test_accepted_request_with_no_command_afterwards_fails_after_exchange_lifetime() -> None:
    """§5.2.3.3 step #2: no Bootstrap-Finish within EXCHANGE_LIFETIME (247 s, RFC 7252) means
    the bootstrap failed. Measured here from the 2.04 to the Bootstrap-Request, the last
    exchange with the Bootstrap-Server."""
    h = bootstrapping()
    h.advance(EXCHANGE_LIFETIME - 0.5)
    assert h.take_events(BootstrapFailed) == []
    h.advance(0.5)
    (failed,) = h.take_events(BootstrapFailed)
    assert "EXCHANGE_LIFETIME" in failed.reason
    assert failed.retry_at is not None


def test_client_hold_off_time_written_by_the_bootstrap_server_applies_next_time() -> None:
    """E.1 /0/x/11 Client Hold Off Time: the seconds to wait before a client-initiated
    bootstrap. A value provisioned by the Bootstrap-Server governs the next one (here started
    by /1/x/9, §5.2.3.4)."""
    h = bootstrapping()
    dm_account(h, 101, 1, 0)
    assert code(h.bs(Code.PUT, "/0/0/11", payload=b"45", cf=CF.TEXT)) == "2.04"
    assert finish(h) == "2.04"
    h.register_all()
    assert code(h.request(Code.POST, "/1/0/9")) == "2.04"
    h.advance(44.9)
    assert h.take(BootstrapRequest) == []
    h.advance(0.1)
    assert len(h.take(BootstrapRequest)) == 1


# == Bootstrap sequence (§5.2.4) ================================================================


class CardSource:
    """A start-up source standing for the smartcard (§5.2.3.2): returns ``data`` or None."""

    name = "card"

    def __init__(self, data: list[ObjectNode] | None) -> None:
        self.data = data
        self.asked = 0

    def load(self, tree: ObjectTree) -> list[ObjectNode] | None:
        self.asked += 1
        return self.data


def test_smartcard_data_wins_over_factory_then_client_initiated_bootstrap() -> None:
    """§5.2.4 steps 1-4. When the card gives data, the client is configured from it and not
    from the factory. With no DM server, the client then runs client-initiated bootstrap
    towards the card's Bootstrap-Server."""
    cfg = config(server(102), bootstrap=bs_table())
    card = CardSource([ObjectNode(0, [security_instance(0, "coap://127.0.0.1:5777")])])
    h = Harness(cfg, sources=[card, FactoryBootstrap(cfg)])
    h.start()
    assert card.asked == 1
    assert h.take_events(BootstrapFinished) == [BootstrapFinished("card")]
    assert h.tree.instance_ids(1) == []  # the factory's server 102 was not applied
    assert h.take(Register) == []
    (request,) = h.take(BootstrapRequest)
    assert request.connection.uri.address == ("127.0.0.1", 5777)


def test_without_card_data_the_factory_bootstrap_applies_and_the_client_registers() -> None:
    """§5.2.4 step 2-3: "If the LwM2M Client is not configured using the Bootstrap from
    Smartcard mode", factory bootstrap, then Register."""
    cfg = config(server(102), bootstrap=bs_table())
    card = CardSource(None)
    h = Harness(cfg, sources=[card, FactoryBootstrap(cfg)])
    h.start()
    assert card.asked == 1
    assert h.take_events(BootstrapFinished) == [BootstrapFinished("factory")]
    (register,) = h.take(Register)
    assert register.connection.short_server_id == 102
    assert h.take(BootstrapRequest) == []


def test_bootstrap_server_is_ignored_before_the_start_up_bootstrap() -> None:
    """§5.2.4 step 1/2: "Any Server Initiated Bootstrap attempt MUST be ignored by the LwM2M
    Client until it has tried to bootstrap via Smartcard or Factory Bootstrap mode"."""
    store = MemoryInstanceStore()
    store.put(0, security_instance(0, "coap://127.0.0.1:5700"))
    store.put(0, security_instance(1, "coap://127.0.0.1:5701", 101))
    store.put(1, server_instance(0, 101))
    h = Harness(config(server(102)), store=store)
    assert code(h.bs(Code.DELETE, "/")) == "4.01"
    assert h.tree.instance_ids(0) == [0, 1]
    assert h.tree.instance_ids(1) == [0]
    assert h.take_events(BootstrapStarted) == []


# == Bootstrap-Write (§5.2.7.4, §5.2.2) ==========================================================


@pytest.mark.parametrize("cf", [CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.JSON])
def test_bootstrap_write_of_an_object_creates_each_instance(cf: CF) -> None:
    """§5.2.7.4: "Only in Bootstrap Interface, the Write MAY target just an Object ID" so that
    one message carries several instances. The instances did not exist, and the client "MUST
    write the value ... regardless of an existence of the targeted Object Instance(s)". This
    holds for every multi-value format (TLV, SenML JSON/CBOR, and OMA JSON, which 1.1 still
    accepts)."""
    h = bootstrapping()
    node = ObjectNode(1, [server_instance(3, 103, lifetime=33), server_instance(4, 104)])
    response = h.bs(Code.PUT, "/1", payload=encode(node, "/1", cf), cf=cf)
    assert code(response) == "2.04"
    assert h.tree.instance_ids(1) == [3, 4]
    assert h.tree.value(Path(1, 3, 0)) == 103
    assert h.tree.value(Path(1, 3, 1)) == 33
    assert h.tree.value(Path(1, 4, 0)) == 104


def test_bootstrap_write_does_not_instantiate_optional_resources_missing_from_the_payload() -> None:
    """§5.2.7.4: "If the LwM2M Client supports optional resources not present in the payload,
    it MUST NOT instantiate these optional resources." /1 supports 2, 3, 5, 13-23 (all
    optional)."""
    h = bootstrapping()
    assert write(h, "/1/0", server_instance(0, 101)) == "2.04"
    resources = h.tree.read(Path(1, 0), readable_only=False).resources
    assert sorted(resources) == [0, 1, 6, 7]


def test_bootstrap_write_ignores_optional_resources_the_client_does_not_support() -> None:
    """§5.2.7.4: "When the Write operation targets an Object or an Object Instance, the LwM2M
    Client MUST ignore optional resources it does not support in the payload". Object
    versioning (§6.2): a later minor version only adds optional resources. A Bootstrap-Server
    that knows Security 1.2 may send /0/x/18 to a client that implements Security 1.1."""
    h = bootstrapping()
    records = [
        {"bn": "/0/1/", "n": "0", "vs": "coap://127.0.0.1:5701"},
        {"n": "1", "vb": False},
        {"n": "2", "v": 3},
        {"n": "3", "vd": ""},
        {"n": "4", "vd": ""},
        {"n": "5", "vd": ""},
        {"n": "10", "v": 101},
        {"n": "18", "v": 23},  # Security 1.2, optional: not supported by this client
    ]
    response = h.bs(Code.PUT, "/0/1", payload=json.dumps(records).encode(), cf=CF.SENML_JSON)
    assert code(response) == "2.04"
    assert h.tree.value(Path(0, 1, 10)) == 101
    assert 18 not in h.tree.read(Path(0, 1), readable_only=False).resources


def test_bootstrap_write_ignores_access_control_and_resource_operations() -> None:
    """§5.2.2: bootstrap information is accepted "without applying access control". Bootstrap-
    Write writes what DM Write may not: read-only resources (/1/x/0 Short Server ID,
    /3/0/0 Manufacturer, /33000/0/1). Compare a DM server's Write (4.05)."""
    h = with_app(server(101))
    assert code(h.request(Code.PUT, f"/{APP}/0/1", payload=b"1.5", cf=CF.TEXT)) == "4.05"
    assert code(h.request(Code.PUT, "/3/0/0", payload=b"X", cf=CF.TEXT)) == "4.05"
    assert code(h.bs(Code.PUT, f"/{APP}/0/1", payload=b"99.5", cf=CF.TEXT)) == "2.04"
    assert code(h.bs(Code.PUT, "/3/0/0", payload=b"Other", cf=CF.TEXT)) == "2.04"
    assert code(h.bs(Code.PUT, "/1/0/0", payload=b"101", cf=CF.TEXT)) == "2.04"
    assert h.tree.value(Path(APP, 0, 1)) == 99.5
    assert h.tree.value(Path(3, 0, 0)) == "Other"


def test_bootstrap_write_of_a_resource_in_another_object_creates_the_instance() -> None:
    """§5.2.7.4: written "regardless of an existence of the targeted Object Instance(s) or
    Resource(s)". This applies to any object, not only /0 and /1 (§5.2.2: "further Object
    Instances")."""
    h = with_app(server(101))
    assert code(h.bs(Code.PUT, f"/{APP}/7/0", payload=b"new", cf=CF.TEXT)) == "2.04"
    assert h.tree.instance_ids(APP) == [0, 7]
    assert h.tree.value(Path(APP, 7, 0)) == "new"


def test_bootstrap_write_of_a_multiple_resource_replaces_all_its_instances() -> None:
    """§5.2.7.4 (Resource ID parameter): "The payload is the new value for the Resource". For a
    multiple resource (/0/x/16 ciphersuites), the old resource instances do not survive."""
    h = bootstrapping()
    dm_account(h, 101, 1, 0)
    first = MultipleResource.of(16, ResourceType.UNSIGNED_INTEGER, {0: 49320, 1: 168})
    again = MultipleResource.of(16, ResourceType.UNSIGNED_INTEGER, {5: 49326})
    for node in (first, again):
        payload = encode(node, "/0/1/16")
        assert code(h.bs(Code.PUT, "/0/1/16", payload=payload, cf=CF.TLV)) == "2.04"
    assert h.tree.value(Path(0, 1, 16)) == {5: 49326}


@pytest.mark.parametrize(
    ("path", "payload", "cf", "expected"),
    [
        ("/1/5", b"\x00", 9999, {"4.15"}),  # unknown content format
        ("/1/5", b"\xc8\x00\x05\x01", CF.TLV, {"4.00"}),  # TLV shorter than its length
        ("/1/5/1", b"sixty", CF.TEXT, {"4.00"}),  # not an integer
        ("/0/5/2", b"7", CF.TEXT, {"4.00"}),  # outside the range 0..4
        ("/1/5/99", b"1", CF.TEXT, {"4.00", "4.04"}),  # no such resource [ambiguous code]
    ],
)
def test_bootstrap_write_errors_change_nothing(
    path: str, payload: bytes, cf: int, expected: set[str]
) -> None:
    """spec-ref §1.1 table: Bootstrap-Write fails with 4.00 (bad request) or 4.15 (unsupported
    content format). A refused write must not create its target instance."""
    h = bootstrapping()
    assert code(h.bs(Code.PUT, path, payload=payload, cf=cf)) in expected
    assert h.tree.instance_ids(1) == []
    assert h.tree.instance_ids(0) == [0]


# == Bootstrap-Delete (§5.2.7.5) =================================================================


def test_delete_root_removes_every_instance_but_the_bootstrap_account_and_device() -> None:
    """§5.2.7.5: a Delete without Object ID removes "all Instances of all Objects". The
    exceptions are the Bootstrap-Server Account and the single Device instance. That includes
    /2 ACL instances and application objects."""
    h = with_app(server(101), server(102))
    assert write(h, "/2/4", ObjectInstance(4, [])) == "2.04"
    assert h.tree.instance_ids(2) == [4]
    assert code(h.bs(Code.DELETE, "/")) == "2.02"
    assert h.tree.instance_ids(0) == [0]
    assert h.tree.value(Path(0, 0, 1)) is True
    assert h.tree.instance_ids(1) == []
    assert h.tree.instance_ids(2) == []
    assert h.tree.instance_ids(APP) == []
    assert h.tree.instance_ids(3) == [0]


def test_delete_of_the_device_object_keeps_its_single_instance() -> None:
    """§5.2.7.5: the Device instance is "not affected by any Delete operation", including a
    Delete of /3 itself."""
    h = bootstrapping()
    assert code(h.bs(Code.DELETE, "/3")) == "2.02"
    assert h.tree.instance_ids(3) == [0]


def test_deleted_server_account_is_not_registered_after_finish() -> None:
    """§5.2.7.5 + §5.3.1: after the bootstrap, the client registers with each server that has
    a Server Object instance, and only those. A deleted account's server is no longer served
    (4.01)."""
    h = Harness(config(server(101), bootstrap=bs_table()))
    h.register_all()
    assert code(h.bs(Code.DELETE, "/0/1")) == "2.02"
    assert code(h.bs(Code.DELETE, "/1/0")) == "2.02"
    dm_account(h, 102, 2, 1)
    assert finish(h) == "2.04"
    registers = h.take(Register)
    assert [r.connection.short_server_id for r in registers] == [102]
    assert code(h.request(Code.GET, "/1/1/1", accept=CF.TEXT, ssid=101)) == "4.01"
    assert code(h.request(Code.GET, "/1/1/1", accept=CF.TEXT, ssid=102)) == "2.05"


# == Bootstrap-Discover and Bootstrap-Read (§5.2.7.3; spec-ref §1.1) =============================


def test_bootstrap_discover_of_an_object_gives_ssid_and_uri_of_account_instances() -> None:
    """§5.2.7.3: instances of /0 and /1 carry the Short Server ID, and the Bootstrap-Server
    Security instance has none. Per spec-ref §1.1 (1.1), /0 instances carry ``uri`` too. /1
    instances get ``ssid`` only."""
    h = bootstrapping()
    dm_account(h, 101, 1, 0)
    security = links_of(h, "/0")
    assert (security["/0/0"].ssid, security["/0/0"].server_uri) == (None, "coap://127.0.0.1:5700")
    assert (security["/0/1"].ssid, security["/0/1"].server_uri) == (101, "coap://127.0.0.1:5701")
    servers = links_of(h, "/1")
    assert (servers["/1/0"].ssid, servers["/1/0"].server_uri) == (101, None)


def test_bootstrap_discover_of_the_root_lists_uninstantiated_objects() -> None:
    """§5.2.7.3 example ``</5>,</4>``: objects "which are not instantiated yet" are listed
    alone; an object with instances is listed by its instances (plus ``ver`` when not 1.0)."""
    h = with_app(server(101))
    assert code(h.bs(Code.DELETE, f"/{APP}")) == "2.02"
    links = links_of(h, "/")
    assert links["/"].lwm2m_version == "1.1"
    assert f"/{APP}" in links  # version 1.0, no instances: listed alone
    assert not any(uri.startswith(f"/{APP}/") for uri in links)
    assert "/1/0" in links
    assert "/3/0" in links


def test_bootstrap_discover_of_an_object_carries_the_enabler_version() -> None:
    """§5.2.7.3: "The returned payload is a list of ... CoRE Links containing the LwM2M Enabler
    Version and for each targeted Object ... a sub-list of its Object Instances". The example
    for a Discover of Object 0 starts with the enabler version."""
    h = bootstrapping()
    links = links_of(h, "/0")
    assert "/" in links
    assert links["/"].lwm2m_version == "1.1"


@pytest.mark.parametrize(
    ("path", "accept", "expected"),
    [
        ("/2/3", CF.TLV, "2.05"),
        ("/2/99", CF.TLV, "4.04"),  # no such instance
        ("/1", CF.TEXT, "4.06"),  # text cannot carry an object
        (f"/{APP}", CF.TLV, "4.05"),  # not a Bootstrap-Read target
        ("/21", CF.TLV, "4.01"),  # OSCORE keys are never read back
    ],
)
def test_bootstrap_read_targets_and_codes(path: str, accept: int, expected: str) -> None:
    """spec-ref §1.1: Bootstrap-Read (1.1) targets /1 or /2 only; codes 2.05, 4.00, 4.01, 4.04,
    4.05, 4.06."""
    h = with_app(server(101))
    acl = ObjectInstance(3, [MultipleResource.of(2, ResourceType.INTEGER, {101: 1})])
    assert write(h, "/2/3", acl) == "2.04"
    response = h.bs(Code.GET, path, accept=accept)
    assert code(response) == expected
    if expected == "2.05":
        node = decode(response, path)
        assert isinstance(node, ObjectInstance)
        assert node.resources[2].values == {101: 1}  # type: ignore[union-attr]


# == Bootstrap-Finish (§5.2.6, §5.2.3.3 step #3, §5.3.1) =========================================


def test_no_register_during_bootstrap_then_every_account_registers_after_finish() -> None:
    """§5.3.1: the client registers with each server that has a Server Object instance "after
    ... the bootstrap procedure has been completed". No Register goes out while the
    configuration is still being written."""
    h = bootstrapping()
    dm_account(h, 101, 1, 0)
    dm_account(h, 102, 2, 1)
    h.advance(30)
    assert h.take(Register) == []
    assert finish(h) == "2.04"
    registers = {r.connection.short_server_id: r for r in h.take(Register)}
    assert sorted(registers) == [101, 102]
    assert registers[102].connection.uri.address == ("127.0.0.1", 5702)
    for ssid, request in registers.items():
        h.respond(request, Code.CREATED, location=("rd", str(ssid)))
    assert sorted(e.short_server_id for e in h.take_events(Registered)) == [101, 102]


def test_finish_refused_with_4_06_accepts_a_corrected_configuration() -> None:
    """§5.2.6: an inconsistency is reported in the Finish response (4.06, diagnostic
    payload). "The Bootstrap-Server MAY take corrective actions before issuing a new
    BOOTSTRAP-FINISH command". The second Finish succeeds and the client registers."""
    h = bootstrapping()
    assert write(h, "/1/0", server_instance(0, 101)) == "2.04"  # no /0 instance for 101
    response = h.bs(Code.POST, "/bs")
    assert code(response) == "4.06"
    assert b"101" in response.payload
    assert h.take(Register) == []
    assert write(h, "/0/1", security_instance(1, "coap://127.0.0.1:5701", 101)) == "2.04"
    assert finish(h) == "2.04"
    (register,) = h.take(Register)
    assert register.connection.short_server_id == 101
    assert h.take_events(BootstrapFailed) == []


def test_unsuccessful_bootstrap_leaves_the_bootstrap_account_as_it_was() -> None:
    """§5.2.3.3 step #3: bootstrapping is unsuccessful when there is no Finish with 2.04. Then
    "the Bootstrap-Server Account MUST retain the values it had before the unsuccessful
    Bootstrapping sequence starts". The account's URI and its /0/x/12 are restored, so it is
    not purged (step #3's purge follows only a successful bootstrap). The retry goes to the old
    URI."""
    h = Harness(config(server(101), bootstrap=bs_table()))
    h.register_all()
    assert code(h.bs(Code.PUT, "/0/0/0", payload=b"coap://127.0.0.1:5799", cf=CF.TEXT)) == "2.04"
    assert code(h.bs(Code.PUT, "/0/0/12", payload=b"5", cf=CF.TEXT)) == "2.04"
    assert code(h.bs(Code.DELETE, "/1/0")) == "2.02"
    assert finish(h) == "4.06"
    h.advance(EXCHANGE_LIFETIME)
    (failed,) = h.take_events(BootstrapFailed)
    assert h.tree.value(Path(0, 0, 0)) == "coap://127.0.0.1:5700"
    assert h.tree.value(Path(0, 0, 12)) == 0
    assert h.tree.instance_ids(1) == [0]
    assert failed.retry_at is not None
    h.advance(failed.retry_at - h.now)
    (request,) = h.take(BootstrapRequest)
    assert request.connection.uri.address == BS_PEER
    assert h.tree.instance_ids(0) == [0, 1]


def test_timeout_rolls_back_every_object_the_bootstrap_server_wrote() -> None:
    """bootstrap module docstring: "The configuration is snapshotted when bootstrapping starts;
    without a Finish within EXCHANGE_LIFETIME ... the snapshot is restored". This covers
    objects beyond /0 and /1 too: /3/0/14 UTC Offset and an application object."""
    h = with_app(server(101))
    assert code(h.bs(Code.PUT, f"/{APP}/0/0", payload=b"bs", cf=CF.TEXT)) == "2.04"
    assert code(h.bs(Code.PUT, f"/{APP}/9/0", payload=b"x", cf=CF.TEXT)) == "2.04"
    assert code(h.bs(Code.PUT, "/3/0/14", payload=b"+05:00", cf=CF.TEXT)) == "2.04"
    h.advance(EXCHANGE_LIFETIME)
    assert len(h.take_events(BootstrapFailed)) == 1
    assert h.tree.value(Path(APP, 0, 0)) == "zero"
    assert h.tree.instance_ids(APP) == [0]
    assert 14 not in h.tree.read(Path(3, 0), readable_only=False).resources


def test_replacing_the_bootstrap_account_takes_effect_after_finish() -> None:
    """§5.2.3.3 step #3: the Bootstrap-Server Account may be replaced before the Finish
    response. Here it is rewritten in place. The old address is no longer the Bootstrap-Server
    (4.01), and the next bootstrap goes to the new URI."""
    h = bootstrapping()
    dm_account(h, 101, 1, 0)
    assert code(h.bs(Code.PUT, "/0/0/0", payload=b"coap://127.0.0.1:5799", cf=CF.TEXT)) == "2.04"
    assert finish(h) == "2.04"
    h.register_all()
    assert code(h.request(Code.POST, "/1/0/9")) == "2.04"
    (request,) = h.take(BootstrapRequest)
    assert request.connection.uri.address == ("127.0.0.1", 5799)
    h.respond(request, Code.CHANGED)
    assert code(h.bs(Code.GET, "/1")) == "4.01"
    assert code(h.request(Code.GET, "/1", peer=Peer(("127.0.0.1", 5799)))) == "2.05"


# == Bootstrap-Server Account Timeout /0/x/12 (E.1; §5.2.3.3 step #3) ============================


def test_account_timeout_zero_means_the_account_is_kept_forever() -> None:
    """E.1 /0/x/12: "If the value is set to 0 ... the Bootstrap-Server Account lifetime is
    infinite"."""
    h = bootstrapping(account_timeout=0)
    dm_account(h, 101, 1, 0)
    assert finish(h) == "2.04"
    h.register_all()
    h.advance(10**7)
    assert h.tree.instance_ids(0) == [0, 1]


def test_account_timeout_not_instantiated_means_the_account_is_kept_forever() -> None:
    """E.1 /0/x/12: "... or if this resource is not instantiated, the Bootstrap-Server Account
    lifetime is infinite"."""
    store = MemoryInstanceStore()
    store.put(0, security_instance(0, "coap://127.0.0.1:5700"))  # no /0/0/12
    store.put(0, security_instance(1, "coap://127.0.0.1:5701", 101))
    store.put(1, server_instance(0, 101))
    h = Harness(config(server(101)), store=store)
    h.register_all()
    assert code(h.request(Code.POST, "/1/0/9")) == "2.04"
    (request,) = h.take(BootstrapRequest)
    h.respond(request, Code.CHANGED)
    assert finish(h) == "2.04"
    h.register_all()
    h.advance(10**7)
    assert h.tree.instance_ids(0) == [0, 1]


def test_purged_bootstrap_account_ends_bootstrapping() -> None:
    """E.1 /0/x/12 and §5.2.4 step 5: after the timeout the account is purged. A server-
    initiated bootstrap "remains possible, but only if the LwM2M Client retains the
    corresponding LwM2M Bootstrap-Server Account". The old Bootstrap-Server is unknown (4.01)
    and /1/x/9 sends no Bootstrap-Request."""
    h = bootstrapping(account_timeout=10)
    dm_account(h, 101, 1, 0)
    assert finish(h) == "2.04"
    h.register_all()
    h.advance(10)
    assert h.tree.instance_ids(0) == [1]
    assert code(h.bs(Code.GET, "/", accept=CF.LINK)) == "4.01"
    h.take_events()
    assert code(h.request(Code.POST, "/1/0/9")) == "2.04"
    assert h.take(BootstrapRequest) == []
    (failed,) = h.take_events(BootstrapFailed)
    assert "no bootstrap server account" in failed.reason
    assert failed.retry_at is None


def test_factory_provisioned_account_timeout_starts_only_after_a_bootstrap() -> None:
    """§5.2.3.3 step #3 ("Clean-up after successful Bootstrapping") purges the account after
    /0/x/12. It is a step of client-initiated bootstrap, so a factory-provisioned account
    is not purged while no such bootstrap happened [reading of the step; see the report]."""
    h = Harness(config(server(101), bootstrap=bs_table(account_timeout=10)))
    h.register_all()
    h.advance(1000)
    assert h.tree.instance_ids(0) == [0, 1]


# == Refusals across interfaces ===================================================================


def test_dm_operations_from_the_bootstrap_server_are_refused() -> None:
    """The Bootstrap-Server may use only the Bootstrap interface operations (§5.2.7:
    Request/Finish/Discover/Write/Delete, plus Read in 1.1). DM Execute, Create,
    Write-Attributes and Write-Composite from it are refused and change nothing."""
    h = bootstrapping()
    dm_account(h, 101, 1, 0)
    instance = encode(ObjectNode(1, [server_instance(5, 105)]), "/1")
    composite = b'[{"n":"/1/0/1","v":5}]'
    assert code(h.bs(Code.POST, "/1/0/8")) == "4.05"  # Execute
    assert code(h.bs(Code.POST, "/1", payload=instance, cf=CF.TLV)) == "4.05"  # Create
    assert code(h.bs(Code.POST, "/1/0", payload=instance, cf=CF.TLV)) == "4.05"  # partial upd.
    assert code(h.bs(Code.PUT, "/1/0", query=["pmin=3"])) == "4.00"  # Write-Attributes
    assert code(h.bs(Code.IPATCH, "/", payload=composite, cf=CF.SENML_JSON)).startswith("4.")
    assert h.tree.instance_ids(1) == [0]
    assert h.tree.value(Path(1, 0, 1)) == 120


def test_observe_from_the_bootstrap_server_sets_up_no_observation() -> None:
    """Observe is an Information Reporting operation (§5.4), not a Bootstrap one. An Observe
    from the Bootstrap-Server is answered at most as a Bootstrap-Read, with no Observe option
    (RFC 7641 §4.1: then no observation exists) and nothing recorded."""
    h = bootstrapping()
    dm_account(h, 101, 1, 0)
    response = h.bs(Code.GET, "/1/0", observe=0, token=b"t", accept=CF.TLV)
    assert response.observe is None
    assert list(h.engine.observations) == []


@pytest.mark.parametrize(
    ("method", "path", "kw", "expected"),
    [
        (Code.POST, "/bs", {}, "4.04"),  # Bootstrap-Finish
        (Code.DELETE, "/", {}, "4.05"),  # Bootstrap-Delete of everything
        (Code.DELETE, "/1", {}, "4.05"),  # Bootstrap-Delete of an object
        (Code.DELETE, "/0/0", {}, "4.01"),  # Security is bootstrap-only
        (Code.PUT, "/0/0/0", {"payload": b"coap://evil", "cf": CF.TEXT}, "4.01"),
        (Code.GET, "/0", {"accept": CF.LINK}, "4.01"),  # Bootstrap-Discover of /0
        (Code.PUT, "/1/0/0", {"payload": b"7", "cf": CF.TEXT}, "4.05"),  # read-only for DM
    ],
)
def test_bootstrap_operations_from_a_dm_server_are_refused(
    method: int, path: str, kw: dict[str, Any], expected: str
) -> None:
    """Bootstrap operations belong to the Bootstrap-Server (§5.2.7). From a DM server,
    Bootstrap-Finish/-Delete of / or an object are not operations (4.04/4.05), and /0 is not
    accessible (E.1: no operations; spec-ref §1.1: 4.01). Nothing changes and no bootstrap
    starts."""
    h = Harness(config(server(101), bootstrap=bs_table()))
    h.register_all()
    h.take_events()
    assert code(h.request(method, path, **kw)) == expected
    assert h.tree.instance_ids(0) == [0, 1]
    assert h.tree.value(Path(0, 0, 0)) == "coap://127.0.0.1:5700"
    assert h.tree.value(Path(1, 0, 0)) == 101
    assert h.take_events(BootstrapStarted) == []
    assert not h.engine.bootstrap.active


def test_a_refused_request_from_the_bootstrap_server_starts_no_bootstrap() -> None:
    """Server-initiated bootstrap (§5.2.3.2) starts with a Bootstrap operation; FETCH and
    iPATCH from the Bootstrap-Server are no such operation (4.05): no session starts (so no
    rollback and no Bootstrap-Request later), a registered client stays registered. A
    Bootstrap-Discover afterwards does start one."""
    h = Harness(config(server(101), bootstrap=bs_table()))
    h.register_all()
    composite = b'[{"n":"/1/0/1","v":5}]'
    assert code(h.bs(Code.IPATCH, "/", payload=composite, cf=CF.SENML_JSON)) == "4.05"
    assert code(h.bs(Code.FETCH, "/", payload=b'[{"n":"/1/0/1"}]', cf=CF.SENML_JSON)) == "4.05"
    assert h.take_events(BootstrapStarted) == []
    assert not h.engine.bootstrap.active
    assert code(h.bs(Code.GET, "/", accept=CF.LINK)) == "2.05"
    assert h.take_events(BootstrapStarted) == [BootstrapStarted(server_initiated=True)]


def test_no_update_goes_out_while_a_bootstrap_changes_the_objects() -> None:
    """A server-initiated bootstrap (/1/x/9) deletes and writes instances: those are not the
    client's state until Finish (§5.2.6), so no Update with a half-written object list goes to
    the registered server meanwhile; after Finish the client registers anew."""
    h = Harness(config(server(101), bootstrap=bs_table()))
    h.register_all()
    assert code(h.bs(Code.DELETE, "/")) == "2.02"
    dm_account(h, 101, 1, 0)
    h.advance(1)
    assert h.take(Update) == []
    assert finish(h) == "2.04"
    (register,) = h.take(Register)
    assert register.connection.short_server_id == 101
