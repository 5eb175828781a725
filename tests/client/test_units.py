"""Unit tests of the client's building blocks: Execute arguments, handlers, the instance store,
the tree's local API, accounts, formats and the configuration file."""

from __future__ import annotations

from pathlib import Path as FsPath

import pytest

from lwm2m.client import (
    ConfigError,
    ExecuteArguments,
    MemoryInstanceStore,
    Secret,
    SecurityMode,
    SimpleInstance,
    SimpleObject,
    StoredObject,
    load_config,
    parse_config,
)
from lwm2m.client.accounts import (
    ConnectionSecurity,
    Peer,
    ServerUri,
    UnsupportedSecurityMode,
    match_account,
    read_accounts,
)
from lwm2m.client.formats import FormatPolicy
from lwm2m.client.objects import (
    AccessRight,
    ConnectivityMonitoring,
    ConnectivityStatistics,
    Device,
    Location,
    ObjectEnabler,
)
from lwm2m.client.tree import ObjectTree
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.errors import (
    BadRequest,
    MethodNotAllowed,
    ModelError,
    NotAcceptable,
    NotFound,
    Unauthorized,
)
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import default_registry

from .test_dm import TEST_OBJECT

REG = default_registry()

# -- Execute arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("0", {0: None}),
        ("0='a',1", {0: "a", 1: None}),
        ("5='coap://h:1/x?y=z',9=''", {5: "coap://h:1/x?y=z", 9: ""}),
    ],
)
def test_execute_arguments(text: str, expected: dict[int, str | None]) -> None:
    args = ExecuteArguments.parse(text)
    assert dict(args) == expected
    assert ExecuteArguments.parse(str(args)) == args
    assert len(args) == len(expected)
    assert hash(args) == hash(ExecuteArguments(expected))
    assert repr(args).startswith("ExecuteArguments(")


@pytest.mark.parametrize(
    "text", ["a", "0=a", "0='a", "0,0", "0;1", "10", "0='a b'", "0='\"'", "0,", "0='x'y"]
)
def test_execute_arguments_malformed(text: str) -> None:
    with pytest.raises(BadRequest):
        ExecuteArguments.parse(text)


def test_execute_arguments_constructor_checks() -> None:
    with pytest.raises(BadRequest):
        ExecuteArguments({10: None})
    with pytest.raises(BadRequest):
        ExecuteArguments({1: "a'b"})
    assert ExecuteArguments() != object()


# -- handlers ------------------------------------------------------------------------------------


def test_simple_object_local_api() -> None:
    obj = SimpleObject(TEST_OBJECT, {0: {0: "a", 2: [5, 6], 4: 1}})
    instance = obj.instance(0)
    assert instance.owner is obj
    assert instance.get(2) == {0: 5, 1: 6}
    instance.set(0, "b")
    assert obj.read(0, [0]).resources[0].value == "b"
    with pytest.raises(ModelError):
        instance.set(99, 1)
    with pytest.raises(ModelError):
        instance.set(0, 5)
    with pytest.raises(ModelError):
        instance.set(2, 5)  # a multiple resource needs a mapping or a list
    pending = SimpleInstance({0: "x"})
    assert pending.get(0) == "x"
    pending.set(4, 3)
    pending.changed(0)  # not attached yet: nothing happens
    with pytest.raises(ModelError):
        pending._typed(0, "x")
    obj.add_instance(1, pending)
    assert obj.read(1).resources[4].value == 3
    with pytest.raises(ModelError):
        obj.add_instance(1, {})
    obj.remove_instance(1)
    with pytest.raises(NotFound):
        obj.remove_instance(1)
    with pytest.raises(MethodNotAllowed):
        obj.execute(0, 3, ExecuteArguments())
    no_create = SimpleObject(TEST_OBJECT, factory=None)
    with pytest.raises(MethodNotAllowed):
        no_create.create(ObjectInstance(0))


def test_single_instance_simple_object() -> None:
    location = Location(1.5, 2.5, timestamp=10)
    with pytest.raises(ModelError):
        location.add_instance(1, {})
    location.set_position(3.0, 4.0, 20, altitude=5.0, radius=1.0, speed=2.0)
    values = location.read(0).resources
    assert (values[0].value, values[2].value, values[6].value) == (3.0, 5.0, 2.0)
    with pytest.raises(MethodNotAllowed):
        location.delete(0)


def test_object_enabler_defaults() -> None:
    enabler = ObjectEnabler(TEST_OBJECT)
    assert enabler.instance_ids() == []
    assert enabler.snapshot() == {}
    for call in (
        lambda: enabler.read(0),
        lambda: enabler.write(0, []),
        lambda: enabler.execute(0, 3, ExecuteArguments()),
        lambda: enabler.create(ObjectInstance(0)),
        lambda: enabler.delete(0),
    ):
        with pytest.raises((NotFound, MethodNotAllowed)):
            call()


def test_object_enabler_restore_through_read_and_write() -> None:
    class Dict(ObjectEnabler):
        def __init__(self) -> None:
            super().__init__(TEST_OBJECT)
            self.data: dict[int, ObjectInstance] = {}

        def instance_ids(self):  # type: ignore[no-untyped-def]
            return sorted(self.data)

        def read(self, instance_id, resource_ids=None):  # type: ignore[no-untyped-def]
            return self.data[instance_id]

        def write(self, instance_id, resources, remove=()):  # type: ignore[no-untyped-def]
            current = dict(self.data[instance_id].resources)
            for rid in remove:
                current.pop(rid)
            current.update({r.id: r for r in resources})
            self.data[instance_id] = ObjectInstance(instance_id, current)

        def create(self, instance):  # type: ignore[no-untyped-def]
            self.data[instance.id] = instance

        def delete(self, instance_id):  # type: ignore[no-untyped-def]
            del self.data[instance_id]

    handler = Dict()
    handler.create(ObjectInstance(0, [SingleResource(0, ResourceType.STRING, "a")]))
    handler.create(ObjectInstance(1))
    state = handler.snapshot()
    handler.delete(1)
    handler.write(0, [SingleResource(4, ResourceType.INTEGER, 1)])
    handler.create(ObjectInstance(2))
    handler.restore(state)
    assert handler.instance_ids() == [0, 1]
    assert list(handler.read(0).resources) == [0]


def test_memory_store_and_stored_object() -> None:
    store = MemoryInstanceStore()
    obj = StoredObject(TEST_OBJECT, store)
    obj.create(ObjectInstance(3, [MultipleResource.of(2, ResourceType.INTEGER, {0: 1})]))
    assert obj.values(3, 2) == {0: 1}
    assert obj.values(4, 2) == {}
    assert obj.value(4, 0, "dflt") == "dflt"
    obj.write(3, [SingleResource(0, ResourceType.STRING, "s")], remove=[2])
    assert list(obj.read(3).resources) == [0]
    assert list(obj.read(3, [2]).resources) == []
    state = obj.snapshot()
    obj.create(ObjectInstance(5))
    obj.restore(state)
    assert obj.instance_ids() == [3]
    obj.delete(3)
    store.delete(TEST_OBJECT.id, 3)  # absent: no error
    with pytest.raises(NotFound):
        obj.delete(3)
    assert "instances=[]" in repr(obj)


def test_device_object() -> None:
    actions: list[str] = []
    clock = [1000.0]
    device = Device(
        manufacturer="M",
        wall_clock=lambda: clock[0],
        on_reboot=lambda: actions.append("reboot"),
        on_factory_reset=lambda: actions.append("reset"),
    )
    tree = ObjectTree([device])
    tree.write(Path(3, 0, 13), SingleResource(13, ResourceType.TIME, 5000))
    clock[0] += 10
    assert tree.value(Path(3, 0, 13)) == 5010
    tree.execute(Path(3, 0, 4))
    tree.execute(Path(3, 0, 5))
    assert actions == ["reboot", "reset"]
    device.add_error_code(1)
    device.add_error_code(4)
    device.add_error_code(4)
    assert device.error_codes == [1, 4]
    tree.execute(Path(3, 0, 12))
    assert device.error_codes == [0]
    with pytest.raises(MethodNotAllowed):
        device.instance(0).execute(16, ExecuteArguments())
    plain = Device()
    assert 13 not in plain.read(0).resources
    plain.write(0, [SingleResource(15, ResourceType.STRING, "UTC")])


def test_connectivity_objects() -> None:
    monitoring = ConnectivityMonitoring(ip_addresses=("192.0.2.1",))
    monitoring.set(2, -70)
    assert monitoring.read(0).resources[4].values == {0: "192.0.2.1"}
    stats = ConnectivityStatistics()
    stats.record(tx_bytes=100)  # not collecting yet
    stats.execute(0, 6, ExecuteArguments())
    stats.record(tx_bytes=2048, rx_bytes=1024, sms_tx=1)
    stats.record(rx_bytes=0)
    values = stats.read(0).resources
    assert (values[2].value, values[3].value, values[0].value) == (2, 1, 1)
    assert values[4].value == 3072
    stats.execute(0, 7, ExecuteArguments())
    stats.record(tx_bytes=10_000)
    assert stats.read(0).resources[2].value == 2
    with pytest.raises(MethodNotAllowed):
        stats.execute(0, 8, ExecuteArguments())


# -- tree ----------------------------------------------------------------------------------------


def test_tree_local_api() -> None:
    test = SimpleObject(TEST_OBJECT, {0: {0: "a", 2: [1], 4: 1}})
    tree = ObjectTree([test, Device()], registry=REG)
    assert 33000 in tree
    assert 1 not in tree
    assert [h.definition.id for h in tree] == [3, 33000]
    with pytest.raises(ModelError):
        tree.add(test)
    tree.add(test, replace=True)
    assert tree.model.object_definition(1) is not None  # from the registry
    assert tree.exists(Path())
    assert tree.exists(Path(33000, 0, 3))
    assert not tree.exists(Path(7))
    assert not tree.exists(Path(33000, 0, 5))
    assert tree.value(Path(33000, 0, 2, 0)) == 1
    with pytest.raises(ModelError):
        tree.value(Path(33000, 0))
    tree.write(Path(33000, 0, 2, 3), ResourceInstance(3, ResourceType.INTEGER, 3))
    with pytest.raises(MethodNotAllowed):
        tree.write(Path(33000, 0, 0, 1), ResourceInstance(1, ResourceType.STRING, "x"))
    with pytest.raises(BadRequest):
        tree.write(Path(33000, 0, 2, 3), ResourceInstance(4, ResourceType.INTEGER, 3))
    with pytest.raises(BadRequest):
        tree.write(Path(33000, 0, 2, 3), ResourceInstance(3, ResourceType.STRING, "3"))
    with pytest.raises(BadRequest):
        tree.write(Path(33000, 0, 0), MultipleResource.of(0, ResourceType.STRING, {}))
    with pytest.raises(BadRequest):
        tree.write(Path(33000, 0), SingleResource(0, ResourceType.STRING, "x"))
    with pytest.raises(MethodNotAllowed):
        tree.write(Path(), SingleResource(0, ResourceType.STRING, "x"))
    with pytest.raises(NotFound):
        tree.delete_resource_instance(Path(33000, 0, 2, 9))
    with pytest.raises(MethodNotAllowed):
        tree.execute(Path(33000, 0))
    tree.remove(33000)
    tree.remove(33000)
    assert tree.object_ids() == [3]


def test_tree_rolls_back_a_failing_handler() -> None:
    class Fragile(SimpleInstance):
        def write_resource(self, resource_id, value):  # type: ignore[no-untyped-def]
            if resource_id == 4:
                raise BadRequest("no")
            super().write_resource(resource_id, value)

    test = SimpleObject(TEST_OBJECT, {0: Fragile({0: "a", 4: 1})})
    tree = ObjectTree([test], registry=REG)
    node = ObjectInstance(
        0, [SingleResource(0, ResourceType.STRING, "b"), SingleResource(4, ResourceType.INTEGER, 2)]
    )
    with pytest.raises(BadRequest):
        tree.write(Path(33000, 0), node, replace=False)
    assert tree.value(Path(33000, 0, 0)) == "a"


# -- accounts and formats ------------------------------------------------------------------------


def test_server_uri() -> None:
    assert ServerUri.parse("coaps://example.org").address == ("example.org", 5684)
    uri = ServerUri.parse("coap://[::1]:1234")
    assert str(uri) == "coap://[::1]:1234"
    assert uri.is_ip_literal
    assert not uri.secure
    assert not ServerUri.parse("coap://host").is_ip_literal
    for bad in ("http://h", "coap://", "coap:///x"):
        with pytest.raises(ValueError, match=r"scheme|host"):
            ServerUri.parse(bad)


def test_connection_security_modes() -> None:
    nosec = ConnectionSecurity(0, ServerUri.parse("coap://h"), SecurityMode.NO_SEC, False)
    nosec.check_supported()
    for mode in (SecurityMode.PSK, SecurityMode.RPK, SecurityMode.CERTIFICATE):
        connection = ConnectionSecurity(0, ServerUri.parse("coaps://h"), mode, False)
        with pytest.raises(UnsupportedSecurityMode, match="not supported yet"):
            connection.check_supported()
    mismatch = ConnectionSecurity(0, ServerUri.parse("coaps://h"), SecurityMode.NO_SEC, False)
    with pytest.raises(UnsupportedSecurityMode, match="does not match"):
        mismatch.check_supported()
    from lwm2m.model import ObjectLink

    oscore = ConnectionSecurity(
        0, ServerUri.parse("coap://h"), SecurityMode.NO_SEC, False, 1, ObjectLink(21, 0)
    )
    with pytest.raises(UnsupportedSecurityMode, match="OSCORE"):
        oscore.check_supported()
    assert SecurityMode.parse("x509") is SecurityMode.CERTIFICATE
    assert SecurityMode.parse("3") is SecurityMode.NO_SEC
    with pytest.raises(ValueError, match="unknown security mode"):
        SecurityMode.parse("tls")


def test_match_account_by_address() -> None:
    from .helpers import Harness, config, server

    h = Harness(config(server(101, port=5683)))
    h.start()
    account = h.engine.accounts[0]
    assert match_account([account], Peer(("127.0.0.1", 5683)), {}) is account
    assert match_account([account], Peer(("::ffff:127.0.0.1", 5683)), {}) is None
    assert match_account([account], Peer("not-a-tuple"), {}) is None
    assert match_account([account], Peer(("localhost", 5683)), {}) is None
    h.engine.bind_address(0, ("10.1.1.1", 9))
    assert h.engine.account_for(Peer(("10.1.1.1", 9))) is account
    accounts, problems = read_accounts(ObjectTree([]))
    assert accounts == []
    assert problems


def test_format_policy() -> None:
    policy = FormatPolicy()
    text = SingleResource(0, ResourceType.STRING, "x")
    blob = SingleResource(0, ResourceType.OPAQUE, b"x")
    instance = ObjectInstance(0, [text])
    assert policy.for_node(text, None) is CF.TEXT
    assert policy.for_node(blob, None) is CF.OPAQUE
    assert policy.for_node(instance, None) is CF.TLV
    assert policy.for_node(blob, CF.OPAQUE) is CF.OPAQUE
    assert FormatPolicy(single=CF.SENML_JSON).for_node(blob, None) is CF.SENML_JSON
    for node, accept in ((instance, CF.CBOR), (text, CF.OPAQUE), (text, CF.LINK)):
        with pytest.raises(NotAcceptable):
            policy.for_node(node, accept)
    assert policy.for_composite(None, CF.TLV) is CF.SENML_CBOR
    with pytest.raises(NotAcceptable):
        policy.for_composite(CF.TLV, CF.SENML_JSON)
    assert policy.content_formats_attribute().split()[0] == "0"


def test_secret() -> None:
    secret = Secret(b"k" * 16)
    assert repr(secret) == str(secret) == "<Secret 16 bytes>"
    assert secret == Secret(b"k" * 16)
    assert secret != Secret(b"x")
    assert secret != b"k" * 16
    assert len(secret) == 16
    assert bool(secret)
    assert not Secret(b"")
    assert hash(secret) == hash(Secret(b"j" * 16))
    assert AccessRight.parse(31) == AccessRight.FULL | AccessRight.CREATE
    with pytest.raises(ValueError, match="unknown access right"):
        AccessRight.parse("X")


# -- configuration -------------------------------------------------------------------------------

TOML = """
endpoint = "urn:dev:ops:acme-1"
queue_mode = true
awake_time = 30
bind = "127.0.0.1:0"

[formats]
single = "senml-json"
multiple = "senml-cbor"
send = "senml-json"
bootstrap_preferred = ""

[device]
manufacturer = "ACME"

[bootstrap]
uri = "coaps://bs.example.org"
security_mode = "psk"
psk_identity = "dev-1"
psk_key_hex = "00112233445566778899aabbccddeeff"
hold_off = 5

[[servers]]
uri = "coap://127.0.0.1:5683"
short_server_id = 101
lifetime = 120
default_pmin = 1
default_pmax = 10
priority = 1
retry_count = 2

[[servers]]
uri = "coaps://127.0.0.1:5684"
short_server_id = 102
security_mode = "rpk"
public_key_hex = "0102"
server_public_key_hex = "0304"
private_key_hex = "0506"
sni = "example"
ciphersuites = [49320]

[[acl]]
object = 3
instance = 0
owner = 101
rights = { "101" = "RWE", "0" = 1 }
"""


def test_load_config(tmp_path: FsPath) -> None:
    file = tmp_path / "client.toml"
    file.write_text(TOML)
    config = load_config(file)
    assert config.endpoint == "urn:dev:ops:acme-1"
    assert (config.queue_mode, config.awake_time, config.bind) == (True, 30.0, ("127.0.0.1", 0))
    assert config.formats.single is CF.SENML_JSON
    assert config.bootstrap_preferred_format is None
    assert config.bootstrap is not None
    assert config.bootstrap.security.mode is SecurityMode.PSK
    assert config.bootstrap.security.secret_key.reveal() == bytes.fromhex(
        "00112233445566778899aabbccddeeff"
    )
    assert "0011223344" not in repr(config)
    second = config.servers[1]
    assert (second.security.mode, second.security.ciphersuites) == (SecurityMode.RPK, (49320,))
    assert config.acls[0].rights == {
        101: AccessRight.READ | AccessRight.WRITE | AccessRight.EXECUTE,
        0: AccessRight.READ,
    }
    bad = tmp_path / "bad.toml"
    bad.write_text("endpoint = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "endpoint"),
        ({"endpoint": "e"}, "at least one"),
        ({"endpoint": "e", "x": 1}, "unknown key"),
        ({"endpoint": "e", "servers": {}}, "array of tables"),
        ({"endpoint": "e", "servers": [{"uri": "coap://h"}]}, "short_server_id"),
        ({"endpoint": "e", "servers": [{"uri": "http://h", "short_server_id": 1}]}, "scheme"),
        ({"endpoint": "e", "servers": [{"short_server_id": 1}]}, "URI is required"),
        (
            {
                "endpoint": "e",
                "servers": [{"uri": "coap://h", "short_server_id": 1, "binding": "X"}],
            },
            "binding",
        ),
        (
            {
                "endpoint": "e",
                "servers": [{"uri": "coap://h", "short_server_id": 1, "lifetime": -1}],
            },
            "lifetime",
        ),
        (
            {
                "endpoint": "e",
                "servers": [
                    {"uri": "coap://h", "short_server_id": 1},
                    {"uri": "coap://h", "short_server_id": 1},
                ],
            },
            "unique",
        ),
        (
            {
                "endpoint": "e",
                "servers": [{"uri": "coaps://h", "short_server_id": 1, "security_mode": "psk"}],
            },
            "PSK mode needs",
        ),
        (
            {
                "endpoint": "e",
                "servers": [{"uri": "coaps://h", "short_server_id": 1, "psk_identity": 5}],
            },
            "psk_identity",
        ),
        (
            {"endpoint": "e", "bootstrap": {"uri": "coap://h", "psk_key_hex": "zz-secret"}},
            "not valid hex",
        ),
        ({"endpoint": "e", "bootstrap": "coap://h"}, "a table"),
        (
            {"endpoint": "e", "bootstrap": {"uri": "coap://h", "security_mode": "foo"}},
            "security_mode",
        ),
        ({"endpoint": "e", "bootstrap": {"uri": "coap://h", "sni": 1}}, "sni"),
        (
            {"endpoint": "e", "bootstrap": {"uri": "coap://h", "ciphersuites": ["a"]}},
            "ciphersuites",
        ),
        ({"endpoint": "e", "bootstrap": {"uri": "coap://h"}, "device": []}, "device"),
        (
            {"endpoint": "e", "bootstrap": {"uri": "coap://h"}, "device": {"model_number": 1}},
            "string",
        ),
        ({"endpoint": "e", "bootstrap": {"uri": "coap://h"}, "queue_mode": 1}, "true or false"),
        ({"endpoint": "e", "bootstrap": {"uri": "coap://h"}, "awake_time": "x"}, "number"),
        ({"endpoint": "e", "bootstrap": {"uri": "coap://h"}, "bind": "nope"}, "host:port"),
        ({"endpoint": "e", "bootstrap": {"uri": "coap://h"}, "bind": 5}, "host:port"),
        (
            {"endpoint": "e", "bootstrap": {"uri": "coap://h"}, "minimum_lwm2m_version": 1.0},
            "minimum_lwm2m_version",
        ),
        (
            {"endpoint": "e", "bootstrap": {"uri": "coap://h"}, "minimum_lwm2m_version": "1.2"},
            '"1.0" or "1.1"',
        ),
        ({"endpoint": "e", "bootstrap": {"uri": "coap://h"}, "formats": []}, "formats"),
        (
            {"endpoint": "e", "bootstrap": {"uri": "coap://h"}, "formats": {"single": "gif"}},
            "formats.single",
        ),
        (
            {
                "endpoint": "e",
                "bootstrap": {"uri": "coap://h"},
                "acl": [{"object": 3, "instance": 0, "rights": []}],
            },
            "rights",
        ),
        (
            {
                "endpoint": "e",
                "bootstrap": {"uri": "coap://h"},
                "acl": [{"object": 3, "instance": 0, "rights": {"x": "R"}}],
            },
            "short server id",
        ),
        (
            {
                "endpoint": "e",
                "bootstrap": {"uri": "coap://h"},
                "acl": [{"object": 3, "instance": 0, "rights": {"1": "Q"}}],
            },
            "access right",
        ),
    ],
)
def test_config_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(data)
    assert "zz-secret" not in str(info.value)


def test_unauthorized_is_raised_for_secret_resources() -> None:
    from lwm2m.client.objects import SecurityObject

    tree = ObjectTree([SecurityObject()])
    with pytest.raises(Unauthorized):
        tree.read(Path(0, 0, 5))


def test_peer_identity_and_credentials_seam() -> None:
    from lwm2m.client import PeerCredential, StoredObject
    from lwm2m.client.accounts import UnsupportedSecurityMode

    from .helpers import Harness, config, server

    h = Harness(config(server(101)))
    h.start()
    account = h.engine.accounts[0]
    address = ("127.0.0.1", 5701)
    h.engine.bind_address(0, address, PeerCredential("psk", b"server-1"))
    assert h.engine.account_for(Peer(address, PeerCredential("psk", b"server-1"))) is account
    assert h.engine.account_for(Peer(address, PeerCredential("psk", b"intruder"))) is None
    assert h.engine.account_for(Peer(address)) is account
    h.engine.bind_address(0, address)
    assert h.engine.account_for(Peer(address, PeerCredential("psk", b"intruder"))) is account
    assert h.engine.credentials(0).mode is SecurityMode.NO_SEC
    assert h.engine.address_of(account.connection) == address
    plain = StoredObject(REG.get(0), MemoryInstanceStore())  # type: ignore[arg-type]
    other = Harness(config(server(101)), objects=[plain])
    with pytest.raises(UnsupportedSecurityMode):
        other.engine.credentials(0)
