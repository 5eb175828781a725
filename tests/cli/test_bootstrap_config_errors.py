"""``lwm2m bootstrap-server --config FILE``: every way the file can be wrong is one line naming
the endpoint and field (never a key), from :func:`lwm2m.cli.bootstrap.load_file` and from the
command (exit status 1)."""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path as FsPath
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.bootstrap.config import ConfigError
from lwm2m.cli.bootstrap import load_file
from lwm2m.cli.main import main
from lwm2m.cli.server import load_registry

SECRET = "5ec2e75ec2e7"
EP = '[endpoints."e"]\n'
SEC = '[[endpoints."e".security]]\n'
SRV = '[[endpoints."e".servers]]\n'
ACL = '[[endpoints."e".acls]]\n'
WRITE = '[[endpoints."e".writes]]\n'
BS = '[endpoints."e".bootstrap_security]\n'


@pytest.fixture(autouse=True)
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(coroutine: Coroutine[Any, Any, Any]) -> None:
        coroutine.close()
        raise AssertionError("the command started instead of failing")

    monkeypatch.setattr("lwm2m.cli.bootstrap.asyncio.run", refuse)


CASES = [
    # the document
    ("[endpoints.\n", "not valid TOML"),
    ("colour = 1\n", "unknown top-level key 'colour' (expected [endpoints.NAME])"),
    ('endpoints = "e"\n', "endpoints: expected a table"),
    ('[endpoints.""]\n', "endpoints: an endpoint name is empty"),
    ("[endpoints]\ne = 5\n", "endpoints.e: expected a table"),
    # the endpoint table
    (EP + "nonsense = 1\n", "endpoints.e: unknown key 'nonsense'"),
    (EP + 'delete = "/"\n', "endpoints.e.delete: expected a list of paths"),
    (EP + 'delete = ["/x"]\n', "endpoints.e.delete: not an LwM2M path"),
    (EP + "discover = 1\n", "endpoints.e.discover: expected true or false"),
    (EP + 'content_format = "xml"\n', "endpoints.e.content_format: one of tlv, senml-json"),
    (EP + 'content_format = "text"\n', "endpoints.e.content_format: one of tlv, senml-json"),
    (EP + 'security = "x"\n', "endpoints.e.security: expected an array of tables"),
    (EP + "security = [1]\n", "endpoints.e.security[0]: expected a table"),
    # security instances
    (SEC + "short_server_id = 1\n", "endpoints.e.security[0]: uri is required"),
    (SEC + 'uri = "coap://h"\ncolour = 1\n', "endpoints.e.security[0]: unknown key 'colour'"),
    (SEC + 'uri = "coap://h"\nmode = "tls"\n', "endpoints.e.security[0].mode: one of psk, rpk"),
    (SEC + "uri = 5\n", "endpoints.e.security[0].uri: expected a string"),
    (
        SEC + 'uri = "coap://h"\nshort_server_id = "1"\n',
        "endpoints.e.security[0].short_server_id: expected an integer",
    ),
    (
        SEC + 'uri = "coap://h"\nbootstrap_server = "no"\n',
        "endpoints.e.security[0].bootstrap_server: expected true or false",
    ),
    (
        SEC + f'uri = "coaps://h"\nmode = "psk"\npsk_identity = "i"\npsk_key = "hex:{SECRET}z"\n',
        "endpoints.e.security[0].psk_key: not valid hex",
    ),
    (
        SEC + f'uri = "coaps://h"\nmode = "rpk"\nsecret_key = "base64:{SECRET}!"\n',
        "endpoints.e.security[0].secret_key: not valid base64",
    ),
    (
        SEC + 'uri = "coaps://h"\npsk_key = 5\n',
        "endpoints.e.security[0].psk_key: expected a string",
    ),
    (
        SEC + 'uri = "coaps://h"\npsk_identity = "a"\npublic_key_or_identity = "b"\n',
        "endpoints.e.security[0]: psk_identity and public_key_or_identity both given",
    ),
    (
        SEC + f'uri = "coaps://h"\npsk_key = "{SECRET}"\nsecret_key = "{SECRET}"\n',
        "endpoints.e.security[0]: psk_key and secret_key both given",
    ),
    # server instances
    (SRV + "lifetime = 60\n", "endpoints.e.servers[0]: short_server_id is required"),
    (SRV + "short_server_id = 1\nport = 1\n", "endpoints.e.servers[0]: unknown key 'port'"),
    (
        SRV + 'short_server_id = 1\nlifetime = "1h"\n',
        "endpoints.e.servers[0].lifetime: expected an integer",
    ),
    (
        SRV + "short_server_id = 1\nbinding = 1\n",
        "endpoints.e.servers[0].binding: expected a string",
    ),
    (
        SRV + "short_server_id = 1\nmute_send = 0\n",
        "endpoints.e.servers[0].mute_send: expected true or false",
    ),
    # ACL instances
    (ACL + "object_instance_id = 0\n", "endpoints.e.acls[0]: object_id is required"),
    (ACL + "object_id = 3\n", "endpoints.e.acls[0]: object_instance_id is required"),
    (
        ACL + 'object_id = 3\nobject_instance_id = 0\nacl = { "x" = 1 }\n',
        "endpoints.e.acls[0].acl: keys are Short Server IDs",
    ),
    (
        ACL + 'object_id = 3\nobject_instance_id = 0\nacl = { "1" = "RWX" }\n',
        "endpoints.e.acls[0].acl.1: rights are an integer 0..31 or letters of RWEDC",
    ),
    (
        ACL + 'object_id = 3\nobject_instance_id = 0\nacl = "RW"\n',
        "endpoints.e.acls[0].acl: expected a table",
    ),
    (ACL + "object_id = 3\nobject_instance_id = 0\nx = 1\n", "endpoints.e.acls[0]: unknown key"),
    # extra writes
    (WRITE + "value = 1\n", "endpoints.e.writes[0]: path is required"),
    (WRITE + 'path = "/3/0/14"\nvalue = 1\nx = 2\n', "endpoints.e.writes[0]: unknown key 'x'"),
    (
        WRITE + 'path = "/3/0/14"\nresources = {}\n',
        "endpoints.e.writes[0]: a resource path takes value, an instance path resources",
    ),
    (WRITE + 'path = "/3/x"\nvalue = 1\n', "endpoints.e.writes[0]: invalid path"),
    (WRITE + 'path = "/3/0/14"\nvalue = 1\n', "endpoints.e.writes[0].value: expected a String"),
    (
        WRITE + 'path = "/3/0/999"\nvalue = 1\n',
        "endpoints.e.writes[0].value: resource /3/0/999 is not in the object model",
    ),
    (
        WRITE + 'path = "/3/0/6"\nvalue = 1\n',
        "endpoints.e.writes[0].value: /3/0/6 is a multiple resource (a list or a table)",
    ),
    (
        WRITE + 'path = "/3/0/6"\nvalue = { "a" = 1 }\n',
        "endpoints.e.writes[0].value: resource instance ids are numbers",
    ),
    (
        WRITE + 'path = "/3/0/6"\nvalue = [1, "two"]\n',
        "endpoints.e.writes[0].value[1]: expected a Integer value",
    ),
    (
        WRITE + 'path = "/3/0"\nresources = { "x" = 1 }\n',
        "endpoints.e.writes[0].resources: resource ids are numbers",
    ),
    (
        WRITE + 'path = "/3"\ninstances = { "x" = {} }\n',
        "endpoints.e.writes[0].instances: instance ids are numbers",
    ),
    (
        WRITE + 'path = "/3/0/22"\nvalue = ["3-0"]\n',
        "endpoints.e.writes[0].value[0]: an Objlnk is written 'oid:iid'",
    ),
    (
        WRITE + 'path = "/0/1/5"\nvalue = 5\n',
        "endpoints.e.writes[0].value: expected a string",
    ),
    # bootstrap_security (how the client authenticates to this server)
    ('[endpoints."e"]\nbootstrap_security = 5\n', "endpoints.e.bootstrap_security: expected a"),
    (BS + "x = 1\n", "endpoints.e.bootstrap_security: unknown key 'x'"),
    (BS + 'mode = "tls"\n', "endpoints.e.bootstrap_security.mode: expected one of psk, rpk"),
    (
        BS + 'mode = "nosec"\npsk_key = "x"\n',
        "endpoints.e.bootstrap_security.psk_key: not used in nosec mode",
    ),
    (BS + 'mode = "psk"\n', "endpoints.e.bootstrap_security: psk mode needs psk_key"),
    (
        BS + f'mode = "psk"\npsk_key = "hex:{SECRET}zz"\n',
        "endpoints.e.bootstrap_security.psk_key: not valid hex",
    ),
    (
        BS + 'mode = "psk"\npsk_key = "hex:"\n',
        "endpoints.e.bootstrap_security: the PSK identity and key must not be empty",
    ),
    (BS + 'mode = "rpk"\n', "endpoints.e.bootstrap_security: rpk mode needs public_key"),
    (
        BS + f'mode = "rpk"\npublic_key = "base64:{SECRET}"\n',
        "endpoints.e.bootstrap_security.public_key: not a public key or certificate",
    ),
    (
        BS + 'mode = "x509"\ncertificate_name = ""\n',
        "endpoints.e.bootstrap_security.certificate_name: expected a name",
    ),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_bad_bootstrap_files(tmp_path: FsPath, text: str, message: str) -> None:
    path = tmp_path / "bootstrap.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_file(str(path), load_registry(()))
    assert message in str(error.value)
    assert SECRET not in str(error.value)
    result = CliRunner().invoke(main, ["bootstrap-server", "--config", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: {error.value}"]


def test_the_same_psk_identity_for_two_endpoints(tmp_path: FsPath) -> None:
    path = tmp_path / "bootstrap.toml"
    path.write_text(
        '[endpoints."a".bootstrap_security]\nmode = "psk"\npsk_identity = "same"\n'
        f'psk_key = "hex:{SECRET}"\n'
        '[endpoints."b".bootstrap_security]\nmode = "psk"\npsk_identity = "same"\n'
        'psk_key = "hex:01"\n'
    )
    loaded = load_file(str(path), load_registry(()))
    with pytest.raises(ConfigError) as error:
        loaded.security_store()
    assert str(error.value).startswith("endpoints.b.bootstrap_security: ")
    assert SECRET not in str(error.value)


def test_bootstrap_security_modes_become_entries(tmp_path: FsPath) -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    path = tmp_path / "bootstrap.toml"
    path.write_text(
        f'[endpoints."p".bootstrap_security]\nmode = "psk"\npsk_key = "hex:{SECRET}"\n'
        f'[endpoints."r".bootstrap_security]\nmode = "rpk"\npublic_key = """{pem}"""\n'
        '[endpoints."x".bootstrap_security]\nmode = "x509"\n'
        '[endpoints."n"]\n'
    )
    loaded = load_file(str(path), load_registry(()))
    modes = {info.endpoint: info.mode for info in loaded.security}
    assert modes == {"p": "psk", "r": "rpk", "x": "x509", "n": "nosec"}
    psk = next(info for info in loaded.security if info.endpoint == "p")
    assert psk.identity is not None
    assert psk.identity.value == "p"  # the identity defaults to the endpoint name
    assert sorted(loaded.configs) == ["n", "p", "r", "x"]
    assert (loaded.secured, loaded.plain) == (True, True)


@pytest.mark.parametrize(
    ("name", "reason"), [("missing.toml", "No such file or directory"), ("", "Is a directory")]
)
def test_unreadable_files(tmp_path: FsPath, name: str, reason: str) -> None:
    path = str(tmp_path / name) if name else str(tmp_path)
    result = CliRunner().invoke(main, ["bootstrap-server", "--config", path])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: cannot read {path}: {reason}"]


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: FsPath) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[endpoints."caf\xe9"]\n'.encode("latin-1"))
    result = CliRunner().invoke(main, ["bootstrap-server", "--config", str(path)])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1


def test_a_bootstrap_rpk_that_is_not_p256_is_refused(tmp_path: FsPath) -> None:
    """Only P-256 keys can authenticate in the DTLS stack's ECDHE_ECDSA suites."""
    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    path = tmp_path / "bootstrap.toml"
    path.write_text(f'[endpoints."r".bootstrap_security]\nmode = "rpk"\npublic_key = """{pem}"""\n')
    with pytest.raises(ConfigError, match=r"bootstrap_security\.public_key: not a P-256"):
        load_file(str(path), load_registry(()))
