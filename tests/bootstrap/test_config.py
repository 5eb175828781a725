"""Bootstrap configurations (LwM2M-TS-Core Appendix E.1-E.3) and their TOML file format."""

from __future__ import annotations

import doctest
from pathlib import Path as FilePath

import pytest

from lwm2m.bootstrap import config as config_module
from lwm2m.bootstrap import config_file
from lwm2m.bootstrap.config import (
    AclInstance,
    BootstrapConfig,
    ConfigError,
    ObjectWrite,
    Secret,
    SecurityInstance,
    SecurityMode,
    ServerInstance,
)
from lwm2m.bootstrap.config_file import parse_bootstrap_toml, parse_bytes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.io.lwm2m_bootstrap import load_bootstrap_config
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Path,
    ResourceType,
    SingleResource,
)

REPO = FilePath(__file__).resolve().parents[2]
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
INT, STR, BOOL, OPAQUE = (
    ResourceType.INTEGER,
    ResourceType.STRING,
    ResourceType.BOOLEAN,
    ResourceType.OPAQUE,
)


@pytest.mark.parametrize("module", [config_module, config_file])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


def psk_account(**kwargs: object) -> SecurityInstance:
    values: dict[str, object] = {
        "instance_id": 1,
        "uri": "coaps://lwm2m.example.org:5684",
        "mode": SecurityMode.PSK,
        "public_key_or_identity": b"dev1",
        "secret_key": Secret(KEY),
        "short_server_id": 101,
    }
    values.update(kwargs)
    return SecurityInstance(**values)  # type: ignore[arg-type]


def test_secrets_never_show() -> None:
    secret = Secret(KEY)
    assert repr(secret) == str(secret) == "Secret(<16 bytes>)"
    assert secret == Secret(KEY)
    assert secret != Secret(b"other")
    assert secret != KEY
    assert hash(secret) == hash(Secret(KEY))
    assert bool(secret)
    assert not Secret(b"")
    account = psk_account()
    text = repr(account) + repr(BootstrapConfig(security=(account,)))
    assert KEY.hex() not in text
    assert repr(KEY) not in text
    with pytest.raises(ConfigError):
        Secret("text")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="secret_key must be a Secret"):
        psk_account(secret_key=KEY)


def test_instances_to_write() -> None:
    account = psk_account(client_hold_off_time=5, bootstrap_account_timeout=0)
    assert account.to_instance() == ObjectInstance(
        1,
        [
            SingleResource(0, STR, "coaps://lwm2m.example.org:5684"),
            SingleResource(1, BOOL, False),
            SingleResource(2, INT, 0),
            SingleResource(3, OPAQUE, b"dev1"),
            SingleResource(4, OPAQUE, b""),
            SingleResource(5, OPAQUE, KEY),
            SingleResource(10, INT, 101),
            SingleResource(11, INT, 5),
            SingleResource(12, INT, 0),
        ],
    )
    sms = psk_account(
        sms_security_mode=3,
        sms_binding_key_parameters=b"\x01" * 6,
        sms_binding_secret_keys=Secret(b"\x02" * 16),
        server_sms_number="3361",
    ).to_instance()
    assert [r for r in sms.resources if 6 <= r <= 9] == [6, 7, 8, 9]
    server = ServerInstance(0, 101, 300, 1, 60, 86400, False, "UQ", False).to_instance()
    assert server == ObjectInstance(
        0,
        [
            SingleResource(0, INT, 101),
            SingleResource(1, INT, 300),
            SingleResource(2, INT, 1),
            SingleResource(3, INT, 60),
            SingleResource(5, INT, 86400),
            SingleResource(6, BOOL, False),
            SingleResource(7, STR, "UQ"),
            SingleResource(23, BOOL, False),
        ],
    )
    acl = AclInstance(0, 3, 0, {101: 7}, owner=101)
    assert acl.to_instance() == ObjectInstance(
        0,
        [
            SingleResource(0, INT, 3),
            SingleResource(1, INT, 0),
            MultipleResource.of(2, INT, {101: 7}),
            SingleResource(3, INT, 101),
        ],
    )
    assert AclInstance(1, 3, 0).to_instance().resources.keys() == {0, 1, 3}
    assert acl == AclInstance(0, 3, 0, {101: 7}, owner=101)
    assert acl != AclInstance(0, 3, 0, {101: 1}, owner=101)
    assert acl != "acl"
    assert hash(acl) == hash(AclInstance(0, 3, 0, {101: 7}, owner=101))


@pytest.mark.parametrize(
    "build",
    [
        lambda: psk_account(uri=""),
        lambda: psk_account(uri="x" * 256),
        lambda: psk_account(mode=9),
        lambda: psk_account(short_server_id=None),
        lambda: psk_account(short_server_id=0),
        lambda: psk_account(client_hold_off_time=-1),
        lambda: psk_account(secret_key=Secret(b"")),
        lambda: psk_account(instance_id=65535),
        lambda: ServerInstance(0, 101, lifetime=0),
        lambda: ServerInstance(0, 101, binding="X"),
        lambda: ServerInstance(0, 65535),
        lambda: ServerInstance(0, 101, default_min_period=-1),
        lambda: AclInstance(0, 0, 0),
        lambda: AclInstance(0, 3, 0, {101: 32}),
        lambda: AclInstance(0, 3, 0, {65535: 1}),
        lambda: ObjectWrite(Path(), SingleResource(1, INT, 1)),
        lambda: ObjectWrite(Path(3, 0, 1, 0), SingleResource(0, INT, 1)),
        lambda: ObjectWrite(Path(3, 0, 1), SingleResource(2, INT, 1)),
        lambda: BootstrapConfig(servers=(ServerInstance(0, 101),)),  # no security for 101
        lambda: BootstrapConfig(security=(psk_account(), psk_account())),
        lambda: BootstrapConfig(delete=(Path(3, 0, 1),)),
    ],
)
def test_invalid_configurations(build: object) -> None:
    with pytest.raises(ConfigError):
        build()  # type: ignore[operator]


def test_writes_in_task_order() -> None:
    write = ObjectWrite(Path(3, 0, 14), SingleResource(14, STR, "+01:00"))
    assert repr(write) == "ObjectWrite(path=/3/0/14)"
    config = BootstrapConfig(
        security=(psk_account(), SecurityInstance(0, "coap://bs", bootstrap_server=True)),
        servers=(ServerInstance(0, 101),),
        acls=(AclInstance(0, 1, 0),),
        writes=(write,),
    )
    assert [str(p) for p, _ in config.writes_in_order()] == [
        "/0/1",
        "/0/0",
        "/1/0",
        "/2/0",
        "/3/0/14",
    ]
    assert config.delete == (Path(),)


# -- TOML ---------------------------------------------------------------------------------------

FULL = """
[endpoints."dev1"]
delete = ["/", "/3/0"]
discover = true
content_format = "senml-cbor"

[[endpoints."dev1".security]]
uri = "coap://bs.example.org"
bootstrap_server = true
instance = 0

[[endpoints."dev1".security]]
uri = "coaps://lwm2m.example.org:5684"
mode = "psk"
psk_identity = "dev1"
psk_key = "hex:000102030405060708090a0b0c0d0e0f"
short_server_id = 101
client_hold_off_time = 1
bootstrap_account_timeout = 0
sms_security_mode = 3
sms_binding_key_parameters = "hex:010101010101"
sms_binding_secret_keys = "base64:AAAAAAAAAAAAAAAAAAAAAA=="
server_sms_number = "3361"

[[endpoints."dev1".security]]
uri = "coaps://other.example.org:5684"
mode = "RPK"
public_key_or_identity = "base64:AQID"
server_public_key = "hex:0405"
secret_key = "hex:0607"
short_server_id = 102

[[endpoints."dev1".servers]]
short_server_id = 101
lifetime = 300
default_min_period = 1
default_max_period = 60
disable_timeout = 10
notification_storing = false
binding = "UT"
mute_send = false

[[endpoints."dev1".servers]]
short_server_id = 102

[[endpoints."dev1".acls]]
object_id = 3
object_instance_id = 0
acl = { "101" = "rwe", "0" = 1 }
owner = 101

[[endpoints."dev1".writes]]
path = "/3/0/14"
value = "+01:00"

[[endpoints."dev1".writes]]
path = "/3/0"
resources = { "13" = 1700000000, "15" = "Europe/Paris" }

[[endpoints."dev1".writes]]
path = "/3"
instances = { "0" = { "14" = "+02:00" } }

[[endpoints."dev1".writes]]
path = "/3/0/6"
value = [1, 5]

[[endpoints."dev1".writes]]
path = "/3/0/7"
value = { "0" = 3800, "4" = 5000 }

[[endpoints."dev1".writes]]
path = "/0/1/17"
value = "21:0"

[[endpoints."dev1".writes]]
path = "/1/0/2"
value = 5

[[endpoints."dev1".writes]]
path = "/0/1/3"
value = "base64:AQ=="

[endpoints."bare"]
"""


def test_a_full_toml_document() -> None:
    configs = parse_bootstrap_toml(FULL)
    assert configs["bare"] == BootstrapConfig()
    config = configs["dev1"]
    assert config.delete == (Path(), Path(3, 0))
    assert config.discover
    assert config.content_format is ContentFormat.SENML_CBOR
    bs, dm, rpk = config.security
    assert (bs.instance_id, bs.bootstrap_server, bs.mode) == (0, True, SecurityMode.NOSEC)
    assert dm.instance_id == 2  # default: position + 1
    assert dm.mode is SecurityMode.PSK
    assert dm.public_key_or_identity == b"dev1"
    assert dm.secret_key == Secret(KEY)
    assert (dm.client_hold_off_time, dm.bootstrap_account_timeout) == (1, 0)
    assert dm.sms_binding_secret_keys == Secret(bytes(16))
    assert rpk.mode is SecurityMode.RPK
    assert rpk.public_key_or_identity == b"\x01\x02\x03"
    assert (rpk.server_public_key, rpk.secret_key) == (b"\x04\x05", Secret(b"\x06\x07"))
    first, second = config.servers
    assert first == ServerInstance(0, 101, 300, 1, 60, 10, False, "UT", False)
    assert second == ServerInstance(1, 102)
    assert config.acls == (AclInstance(0, 3, 0, {101: 7, 0: 1}, owner=101),)
    writes = {str(w.path): w.node for w in config.writes}
    assert writes["/3/0/14"] == SingleResource(14, STR, "+01:00")
    assert writes["/3/0"] == ObjectInstance(
        0,
        [
            SingleResource(13, ResourceType.TIME, 1_700_000_000),
            SingleResource(15, STR, "Europe/Paris"),
        ],
    )
    assert writes["/3"] == ObjectNode(3, [ObjectInstance(0, [SingleResource(14, STR, "+02:00")])])
    assert writes["/3/0/6"] == MultipleResource.of(6, INT, {0: 1, 1: 5})
    assert writes["/3/0/7"] == MultipleResource.of(7, INT, {0: 3800, 4: 5000})
    assert writes["/0/1/17"] == SingleResource(17, ResourceType.OBJLNK, ObjectLink(21, 0))
    assert writes["/0/1/3"] == SingleResource(3, OPAQUE, b"\x01")


def test_the_example_file_loads(tmp_path: FilePath) -> None:
    configs = load_bootstrap_config(REPO / "examples" / "bootstrap.toml")
    assert set(configs) == {"urn:dev:demo-nosec", "urn:imei:004999010640000"}
    psk = configs["urn:imei:004999010640000"].security[0]
    assert psk.mode is SecurityMode.PSK
    assert psk.instance_id == 1
    with pytest.raises(FileNotFoundError):
        load_bootstrap_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[endpoints.a", "not valid TOML"),
        ("[other]", "unknown top-level key 'other'"),
        ('endpoints = "x"', "endpoints: expected a table"),
        ('[endpoints.""]', "endpoint name is empty"),
        ("[endpoints.a]\nbogus = 1", "endpoints.a: unknown key 'bogus'"),
        ('[endpoints.a]\ndelete = "/"', "delete: expected a list"),
        ('[endpoints.a]\ndelete = ["/x"]', "not an LwM2M path"),
        ('[endpoints.a]\ndelete = ["/3/0/1"]', "delete paths"),
        ('[endpoints.a]\ndiscover = "yes"', "discover: expected true or false"),
        ('[endpoints.a]\ncontent_format = "text"', "content_format: one of"),
        ('[endpoints.a]\ncontent_format = "nope"', "content_format: one of"),
        ("[endpoints.a]\nsecurity = 1", "security: expected an array of tables"),
        ("[endpoints.a]\nsecurity = [1]", "security[0]: expected a table"),
        ("[[endpoints.a.security]]\nmode='nosec'", "uri is required"),
        ("[[endpoints.a.security]]\nuri='coap://x'\nmode='magic'", "mode: one of"),
        ("[[endpoints.a.security]]\nuri=1", "uri: expected a string"),
        ("[[endpoints.a.security]]\nuri='coap://x'\nshort_server_id='a'", "expected an integer"),
        ("[[endpoints.a.security]]\nuri='coap://x'", "short_server_id is required"),
        (
            "[[endpoints.a.security]]\nuri='coap://x'\nmode='psk'\nshort_server_id=1",
            "PSK mode needs",
        ),
        (
            "[[endpoints.a.security]]\nuri='coap://x'\npsk_identity='a'\n"
            "public_key_or_identity='b'\nshort_server_id=1",
            "both given",
        ),
        (
            "[[endpoints.a.security]]\nuri='coap://x'\npsk_key='a'\nsecret_key='b'\n"
            "short_server_id=1",
            "both given",
        ),
        ("[[endpoints.a.security]]\nuri='coap://x'\npsk_key=5", "psk_key: expected a string"),
        ("[[endpoints.a.servers]]\nlifetime = 5", "short_server_id is required"),
        ("[[endpoints.a.servers]]\nshort_server_id = 1\nx = 1", "unknown key 'x'"),
        ("[[endpoints.a.servers]]\nshort_server_id = 1", "no security entry"),
        (
            "[[endpoints.a.acls]]\nobject_id = 3\nobject_instance_id = 0\nacl = 5",
            "expected a table",
        ),
        ("[[endpoints.a.acls]]\nobject_id=3\nobject_instance_id=0\nacl={x=1}", "Short Server"),
        ("[[endpoints.a.acls]]\nobject_id=3\nobject_instance_id=0\nacl={1='Z'}", "RWEDC"),
        ("[[endpoints.a.acls]]\nobject_id=3\nobject_instance_id=0\nacl={1=99}", "0..31"),
        ("[[endpoints.a.acls]]\nobject_instance_id = 0", "object_id is required"),
        ("[[endpoints.a.writes]]\nvalue = 1", "path is required"),
        ("[[endpoints.a.writes]]\npath='/3/0/14'\nnope=1", "unknown key"),
        ("[[endpoints.a.writes]]\npath='/3/0/14'", "a resource path takes value"),
        ("[[endpoints.a.writes]]\npath='/3/0/14'\nresources={}", "a resource path takes"),
        ("[[endpoints.a.writes]]\npath='/x'\nvalue=1", "writes[0]"),
        ("[[endpoints.a.writes]]\npath='/3/0/14'\nvalue=5", "expected a String value"),
        ("[[endpoints.a.writes]]\npath='/3/0/9'\nvalue=1.5", "expected a Integer value"),
        ("[[endpoints.a.writes]]\npath='/3/0/999'\nvalue=1", "not in the object model"),
        ("[[endpoints.a.writes]]\npath='/3/0/6'\nvalue=1", "multiple resource"),
        ("[[endpoints.a.writes]]\npath='/3/0/6'\nvalue={x=1}", "instance ids are numbers"),
        ("[[endpoints.a.writes]]\npath='/3/0'\nresources={x=1}", "resource ids are numbers"),
        ("[[endpoints.a.writes]]\npath='/3'\ninstances={x={}}", "instance ids are numbers"),
        ("[[endpoints.a.writes]]\npath='/0/1/17'\nvalue='nope'", "Objlnk"),
        ("[[endpoints.a.writes]]\npath='/0/1/17'\nvalue=5", "Objlnk"),
        ("[[endpoints.a.writes]]\npath='/0/1/3'\nvalue='hex:zz'", "not valid hex"),
        ("[[endpoints.a.writes]]\npath='/0/1/3'\nvalue='base64:!'", "not valid base64"),
        ("[[endpoints.a.writes]]\npath='/3/0/9'\nvalue=99999999999999999999", "64 signed bits"),
    ],
)
def test_toml_errors_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_bootstrap_toml(text)
    assert message in str(info.value)


def test_errors_never_repeat_secret_values() -> None:
    text = (
        "[[endpoints.a.security]]\nuri='coap://x'\nmode='psk'\npsk_identity='id'\n"
        "psk_key='hex:SECRETSECRET'\nshort_server_id=1"
    )
    with pytest.raises(ConfigError) as info:
        parse_bootstrap_toml(text)
    assert "SECRET" not in str(info.value)
    assert "psk_key" in str(info.value)


def test_parse_bytes() -> None:
    assert parse_bytes("hex:", "k") == b""
    assert parse_bytes("plain:text", "k") == b"plain:text"
    with pytest.raises(ConfigError, match="k: expected a string"):
        parse_bytes(b"x", "k")


def test_float_values_accept_integers() -> None:
    from lwm2m.model import ObjectDefinition, Operations, ResourceDefinition
    from lwm2m.model.registry import ModelRegistry

    registry = ModelRegistry(
        [
            ObjectDefinition(
                3303,
                "Temperature",
                resources={
                    5700: ResourceDefinition(
                        5700, "Value", Operations.R, False, True, ResourceType.FLOAT
                    )
                },
            )
        ]
    )
    text = "[[endpoints.a.writes]]\npath='/3303/0/5700'\nvalue=21"
    (write,) = parse_bootstrap_toml(text, model=registry)["a"].writes
    assert write.node == SingleResource(5700, ResourceType.FLOAT, 21.0)
