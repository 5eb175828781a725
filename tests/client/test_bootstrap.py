"""Bootstrap: factory, client-initiated and server-initiated, the Bootstrap interface checks and
the rollback on timeout (LwM2M-TS-Core 1.1 §5.2, §6.1)."""

from __future__ import annotations

import pytest

from lwm2m.client import MemoryInstanceStore, Secret, SecurityMode
from lwm2m.client.bootstrap import (
    EXCHANGE_LIFETIME,
    BootstrapSession,
    BootstrapState,
    FactoryBootstrap,
    check_configuration,
)
from lwm2m.client.events import (
    BootstrapFailed,
    BootstrapFinished,
    BootstrapStarted,
    Registered,
)
from lwm2m.client.objects.security import SecurityObject
from lwm2m.client.tree import ObjectTree
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.codec.link import decode_links
from lwm2m.errors import LocalProtocolError, Unauthorized
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Path,
    ResourceType,
    SingleResource,
)
from lwm2m.operations.requests import BootstrapRequest, Register

from .helpers import Harness, bs_table, code, config, decode, encode, server

STR, INT, BOOL, OPQ = (
    ResourceType.STRING,
    ResourceType.INTEGER,
    ResourceType.BOOLEAN,
    ResourceType.OPAQUE,
)


def security_instance(
    iid: int, uri: str, ssid: int | None = None, *, mode: int = 3, key: bytes = b""
) -> ObjectInstance:
    resources = [
        SingleResource(0, STR, uri),
        SingleResource(1, BOOL, ssid is None),
        SingleResource(2, INT, mode),
        SingleResource(3, OPQ, b"identity" if key else b""),
        SingleResource(4, OPQ, b""),
        SingleResource(5, OPQ, key),
    ]
    if ssid is not None:
        resources.append(SingleResource(10, INT, ssid))
    return ObjectInstance(iid, resources)


def server_instance(iid: int, ssid: int, lifetime: int = 120) -> ObjectInstance:
    return ObjectInstance(
        iid,
        [
            SingleResource(0, INT, ssid),
            SingleResource(1, INT, lifetime),
            SingleResource(6, BOOL, False),
            SingleResource(7, STR, "U"),
        ],
    )


def bootstrapping(**bs: object) -> Harness:
    """A client that only knows its bootstrap server, after its Bootstrap-Request was
    accepted."""
    h = Harness(config(bootstrap=bs_table(**bs)))
    h.start()
    assert h.take_events(BootstrapStarted) == [BootstrapStarted(server_initiated=False)]
    (request,) = h.take(BootstrapRequest)
    h.respond(request, Code.CHANGED)
    return h


def write(h: Harness, path: str, node: object, cf: int = CF.TLV) -> str:
    return code(h.bs(Code.PUT, path, payload=encode(node, path, cf), cf=cf))  # type: ignore[arg-type]


def test_factory_bootstrap_configures_accounts() -> None:
    h = Harness(config(server(101, default_pmin=2), bootstrap=bs_table(hold_off=3)))
    h.start()
    assert h.take_events(BootstrapFinished) == [BootstrapFinished("factory")]
    assert h.tree.instance_ids(0) == [0, 1]
    assert h.tree.value(Path(0, 1, 10)) == 101
    assert h.tree.value(Path(0, 0, 11)) == 3
    assert h.tree.value(Path(1, 0, 2)) == 2
    assert len(h.take(Register)) == 1


def test_factory_bootstrap_skipped_with_a_configured_store() -> None:
    store = MemoryInstanceStore()
    store.put(0, security_instance(7, "coap://127.0.0.1:5701", 101))
    store.put(1, server_instance(3, 101))
    h = Harness(config(server(102)), store=store)
    h.start()
    assert h.take_events(BootstrapFinished) == []
    (register,) = h.take(Register)
    assert register.connection.short_server_id == 101
    assert FactoryBootstrap(h.engine.config).load(h.tree) is None
    assert "instances={0: 1, 1: 1}" in repr(store)


def test_client_initiated_bootstrap_end_to_end() -> None:
    h = Harness(config(bootstrap=bs_table(hold_off=10)))
    h.start()
    assert h.take(BootstrapRequest) == []
    h.advance(10)
    (request,) = h.take(BootstrapRequest)
    assert request.message.uri_path == ("bs",)
    assert request.message.uri_query == ("ep=test-ep", "pct=11542")
    h.respond(request, Code.CHANGED)
    # Bootstrap-Delete /, then write the accounts
    assert code(h.bs(Code.DELETE, "/")) == "2.02"
    assert h.tree.instance_ids(0) == [0]  # the bootstrap account survives
    assert h.tree.instance_ids(3) == [0]  # and so does the device
    key = bytes(range(16))
    node = ObjectNode(0, [security_instance(1, "coaps://127.0.0.1:5701", 101, mode=0, key=key)])
    assert write(h, "/0", node) == "2.04"
    assert write(h, "/1/0", server_instance(0, 101)) == "2.04"
    assert code(h.bs(Code.POST, "/bs")) == "2.04"
    assert h.take_events(BootstrapFinished) == [BootstrapFinished("factory"), BootstrapFinished()]
    (register,) = h.take(Register)
    assert register.connection.short_server_id == 101
    assert register.connection.mode is SecurityMode.PSK
    assert register.message.uri_query[1] == "lt=120"
    h.respond(register, Code.CREATED, location=("rd", "1"))
    assert h.take_events(Registered) == [Registered(101, "/rd/1")]
    # the secret key is write-only
    credentials = h.tree[0].credentials(1)
    assert credentials.secret_key == Secret(key)
    assert str(key) not in repr(credentials)
    assert code(h.bs(Code.GET, "/0/1")) == "4.01"
    assert code(h.request(Code.GET, "/0/1/5")) == "4.01"
    assert 5 not in h.tree.read(Path(0, 1), readable_only=False).resources
    with pytest.raises(Unauthorized):
        h.tree.read(Path(0, 1, 5), readable_only=False)


def test_bootstrap_read_and_discover() -> None:
    h = bootstrapping()
    write(h, "/0/1", security_instance(1, "coap://127.0.0.1:5701", 101))
    write(h, "/1/0", server_instance(0, 101))
    response = h.bs(Code.GET, "/1/0", accept=CF.SENML_JSON)
    assert code(response) == "2.05"
    assert decode(response, "/1/0").resources[0].value == 101  # type: ignore[union-attr]
    assert code(h.bs(Code.GET, "/1")) == "2.05"
    assert code(h.bs(Code.GET, "/2")) == "2.05"
    assert code(h.bs(Code.GET, "/0")) == "4.01"
    assert code(h.bs(Code.GET, "/3/0")) == "4.05"
    response = h.bs(Code.GET, "/", accept=CF.LINK)
    links = {link.uri: link for link in decode_links(response.payload)}
    assert links["/"].lwm2m_version == "1.1"
    assert links["/0/0"].server_uri == "coap://127.0.0.1:5700"
    assert links["/0/0"].ssid is None
    assert (links["/0/1"].ssid, links["/0/1"].server_uri) == (101, "coap://127.0.0.1:5701")
    assert links["/1/0"].ssid == 101
    assert links["/3"].version == "1.1"
    assert "/3/0" in links
    response = h.bs(Code.GET, "/1", accept=CF.LINK)
    assert [link.uri for link in decode_links(response.payload)] == ["/", "/1", "/1/0"]
    assert code(h.bs(Code.GET, "/1/0", accept=CF.LINK)) == "4.00"


@pytest.mark.parametrize(
    ("nodes", "problem"),
    [
        ([], "no LwM2M server account"),
        ([("/1/0", server_instance(0, 101))], "no /0 instance for Short Server ID 101"),
        (
            [("/0/1", security_instance(1, "coap://127.0.0.1:5701", 101))],
            "no /1 instance for Short Server ID 101",
        ),
        (
            [
                ("/0/1", security_instance(1, "coap://127.0.0.1:5701", 101, mode=0)),
                ("/1/0", server_instance(0, 101)),
            ],
            "needs /0/1/3",
        ),
        (
            [
                ("/0/1", security_instance(1, "coaps://127.0.0.1:5701", 101)),
                ("/1/0", server_instance(0, 101)),
            ],
            "does not fit security mode",
        ),
        (
            [
                ("/0/1", security_instance(1, "http://x", 101)),
                ("/1/0", server_instance(0, 101)),
            ],
            "invalid server URI",
        ),
    ],
)
def test_finish_refuses_inconsistent_configuration(
    nodes: list[tuple[str, ObjectInstance]], problem: str
) -> None:
    h = bootstrapping()
    for path, node in nodes:
        assert write(h, path, node) == "2.04"
    response = h.bs(Code.POST, "/bs")
    assert code(response) == "4.06"
    assert problem in response.payload.decode()
    assert h.engine.bootstrap.state is BootstrapState.BOOTSTRAPPING  # the server may fix it


def test_finish_checks_oscore_link_and_duplicates() -> None:
    h = bootstrapping()
    sec = security_instance(1, "coap://127.0.0.1:5701", 101)
    linked = ObjectInstance(
        1, [*sec.resources.values(), SingleResource(17, ResourceType.OBJLNK, ObjectLink(21, 0))]
    )
    write(h, "/0/1", linked)
    write(h, "/1/0", server_instance(0, 101))
    write(h, "/1/1", server_instance(1, 101))
    problems = check_configuration(h.tree)
    assert any("OSCORE" in p for p in problems)
    assert any("used twice" in p for p in problems)


def test_bootstrap_delete_rules() -> None:
    h = bootstrapping()
    write(h, "/0/1", security_instance(1, "coap://127.0.0.1:5701", 101))
    assert code(h.bs(Code.DELETE, "/0/0")) == "4.00"  # the bootstrap account
    assert code(h.bs(Code.DELETE, "/3/0")) == "4.00"
    assert code(h.bs(Code.DELETE, "/0/1")) == "2.02"
    assert code(h.bs(Code.DELETE, "/0/1")) == "2.02"  # idempotent
    write(h, "/0/1", security_instance(1, "coap://127.0.0.1:5701", 101))
    assert code(h.bs(Code.DELETE, "/0")) == "2.02"
    assert h.tree.instance_ids(0) == [0]
    assert code(h.bs(Code.DELETE, "/0/1/0")) == "4.00"
    assert code(h.bs(Code.DELETE, "/4444")) == "4.04"


def test_bootstrap_write_levels() -> None:
    h = bootstrapping()
    # a resource of a missing instance creates it; an instance write merges
    assert code(h.bs(Code.PUT, "/1/4/1", payload=b"90", cf=CF.TEXT)) == "2.04"
    assert h.tree.value(Path(1, 4, 1)) == 90
    assert write(h, "/1/4", ObjectInstance(4, [SingleResource(0, INT, 77)])) == "2.04"
    assert h.tree.value(Path(1, 4, 0)) == 77
    assert h.tree.value(Path(1, 4, 1)) == 90
    acl = MultipleResource.of(2, ResourceType.INTEGER, {0: 1})
    assert code(h.bs(Code.PUT, "/2/0/2", payload=encode(acl, "/2/0/2"), cf=CF.TLV)) == "2.04"
    assert code(h.bs(Code.PUT, "/4444/0", payload=b"\x00", cf=CF.TLV)) in ("4.00", "4.04")
    assert code(h.bs(Code.PUT, "/1/4", query=["pmin=1"])) == "4.00"
    assert code(h.bs(Code.POST, "/1/4/8")) == "4.05"


def test_timeout_rolls_back() -> None:
    h = bootstrapping()
    write(h, "/0/1", security_instance(1, "coap://127.0.0.1:5701", 101))
    h.advance(EXCHANGE_LIFETIME - 1)
    write(h, "/1/0", server_instance(0, 101))  # activity moves the deadline
    h.advance(EXCHANGE_LIFETIME - 1)
    assert h.take_events(BootstrapFailed) == []
    h.advance(1)
    (failed,) = h.take_events(BootstrapFailed)
    assert "EXCHANGE_LIFETIME" in failed.reason
    assert failed.retry_at == h.now + 60
    assert h.tree.instance_ids(0) == [0]
    assert h.tree.instance_ids(1) == []
    h.advance(60)
    assert len(h.take(BootstrapRequest)) == 1


def test_rejected_request_backs_off() -> None:
    """A 4.00 to the Bootstrap-Request with ``pct`` sends it again at once without (as 1.0
    defines it); a 4.00 to that one fails, with back-off."""
    h = Harness(config(bootstrap=bs_table()))
    h.start()
    delays = []
    for _ in range(3):
        (request,) = h.take(BootstrapRequest)
        assert request.message.uri_query == ("ep=test-ep", "pct=11542")
        h.respond(request, Code.BAD_REQUEST, payload=b"what is pct?")
        assert h.take_events(BootstrapFailed) == []
        (request,) = h.take(BootstrapRequest)
        assert request.message.uri_query == ("ep=test-ep",)
        h.respond(request, Code.BAD_REQUEST, payload=b"unknown endpoint")
        (failed,) = h.take_events(BootstrapFailed)
        assert "4.00" in failed.reason
        assert failed.retry_at is not None
        delays.append(failed.retry_at - h.now)
        h.advance(failed.retry_at - h.now)
    assert delays == [60, 120, 240]


def test_a_1_0_bootstrap_server_gets_the_request_without_pct() -> None:
    """A 1.0 bootstrap server may refuse ``pct`` (1.1) with 4.00: the request without it is
    answered 2.04 and the bootstrap goes on. Not with ``minimum_lwm2m_version = "1.1"``, and
    not for other refusals."""
    h = Harness(config(bootstrap=bs_table()))
    h.start()
    (request,) = h.take(BootstrapRequest)
    h.respond(request, Code.BAD_REQUEST)
    (request,) = h.take(BootstrapRequest)
    h.respond(request, Code.CHANGED)
    assert code(h.bs(Code.DELETE, "/")) == "2.02"
    assert write(h, "/1/0", server_instance(0, 101)) == "2.04"
    assert h.take_events(BootstrapFailed) == []

    strict = Harness(config(bootstrap=bs_table(), minimum_lwm2m_version="1.1"))
    strict.start()
    (request,) = strict.take(BootstrapRequest)
    strict.respond(request, Code.BAD_REQUEST)
    assert strict.take(BootstrapRequest) == []
    assert len(strict.take_events(BootstrapFailed)) == 1

    forbidden = Harness(config(bootstrap=bs_table()))
    forbidden.start()
    (request,) = forbidden.take(BootstrapRequest)
    forbidden.respond(request, Code.FORBIDDEN)
    assert forbidden.take(BootstrapRequest) == []
    assert len(forbidden.take_events(BootstrapFailed)) == 1


def test_server_initiated_bootstrap_via_execute() -> None:
    h = Harness(config(server(101), bootstrap=bs_table()))
    h.register_all()
    assert code(h.request(Code.POST, "/1/0/9")) == "2.04"
    assert h.take_events(BootstrapStarted) == [BootstrapStarted(server_initiated=False)]
    (request,) = h.take(BootstrapRequest)
    h.respond(request, Code.CHANGED)
    write(h, "/1/0", server_instance(0, 101, lifetime=999))
    assert code(h.bs(Code.POST, "/bs")) == "2.04"
    (register,) = h.take(Register)
    assert "lt=999" in register.message.uri_query


def test_bootstrap_server_may_start_on_its_own() -> None:
    h = Harness(config(server(101), bootstrap=bs_table()))
    h.register_all()
    assert write(h, "/1/0", server_instance(0, 101, lifetime=500)) == "2.04"
    assert h.take_events(BootstrapStarted) == [BootstrapStarted(server_initiated=True)]
    assert code(h.bs(Code.POST, "/bs")) == "2.04"
    assert "lt=500" in h.take(Register)[0].message.uri_query


def test_no_bootstrap_account() -> None:
    h = Harness(config(server(101, retry_count=1)))
    h.start()
    h.fail(h.take(Register)[0])
    (failed,) = h.take_events(BootstrapFailed)
    assert "no bootstrap server account" in failed.reason


def test_bootstrap_account_timeout_purges_it() -> None:
    h = bootstrapping(account_timeout=100)
    write(h, "/0/1", security_instance(1, "coap://127.0.0.1:5701", 101))
    write(h, "/1/0", server_instance(0, 101))
    assert code(h.bs(Code.POST, "/bs")) == "2.04"
    h.advance(99)
    assert h.tree.instance_ids(0) == [0, 1]
    h.advance(1)
    assert h.tree.instance_ids(0) == [1]


def test_session_table_and_misuse() -> None:
    session = BootstrapSession()
    with pytest.raises(LocalProtocolError):
        session.finished()
    assert session.handle_timer(0).send_request is False
    assert session.request_answered(0, True).failed is None
    session.start(0, hold_off=0)
    session.start(0, hold_off=5)  # already started: no effect
    assert session.handle_timer(0).send_request
    session.request_sent()
    session.cancel()
    assert session.state is BootstrapState.IDLE


def test_unknown_bootstrap_peer_and_secrets_never_logged() -> None:
    store = MemoryInstanceStore()
    security = SecurityObject(store)
    security.create(security_instance(0, "coaps://h", 1, mode=0, key=b"supersecretkey!!"))
    assert "supersecretkey" not in repr(store) + repr(security) + repr(security.credentials(0))
    assert security.credentials(0).mode is SecurityMode.PSK
    tree = ObjectTree([security])
    with pytest.raises(Unauthorized):
        tree.read(Path(0, 0, 5))
