"""Bad input to ``lwm2m server`` / ``client`` / ``bootstrap-server``, checked in this process:
the parsers of the flags, the DTLS credentials (:func:`build_security`), the stores and the
client's TOML file. Each error is one specific line (a ClickException or a ConfigError, which
the command group turns into ``Error: ...`` and exit status 1), never a traceback, and never
repeats a key."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Coroutine
from pathlib import Path as FsPath
from typing import Any

import click
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from lwm2m.cli.client import build_client_config, read_psk_key
from lwm2m.cli.main import main
from lwm2m.cli.server import (
    DtlsOptions,
    bind_failed,
    build_security,
    load_registry,
    open_store,
    parse_address,
    parse_psk,
    parse_rpk,
    parse_store,
)
from lwm2m.client.config import ConfigError
from lwm2m.errors import Lwm2mError

SECRET = "5ec2e75ec2e7"


@pytest.fixture(autouse=True)
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command given bad input must fail before it serves (a served one would never end)."""

    def refuse(coroutine: Coroutine[Any, Any, Any]) -> None:
        coroutine.close()
        raise AssertionError("the command started instead of failing")

    for module in ("server", "client", "bootstrap"):
        monkeypatch.setattr(f"lwm2m.cli.{module}.asyncio.run", refuse)


def cli_error(args: list[str]) -> str:
    """The one ``Error:`` line of a command that must fail with exit status 1."""
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0]


# -- credentials on disk ------------------------------------------------------------------------


def _write_private(path: FsPath, key: Any) -> str:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)


def _write_public(path: FsPath, key: Any) -> str:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """PEM files: P-256, P-384 and RSA keys, a self-signed P-256 certificate, and junk."""
    folder = tmp_path_factory.mktemp("credentials")
    p256 = ec.generate_private_key(ec.SECP256R1())
    p384 = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(p256.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(p256, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.der").write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    (folder / "junk.pem").write_text("-----BEGIN NOTHING-----\nnot base64\n")
    return {
        "p256.key": _write_private(folder / "p256.key", p256),
        "p384.key": _write_private(folder / "p384.key", p384),
        "rsa.key": _write_private(folder / "rsa.key", rsa_key),
        "p256.pub": _write_public(folder / "p256.pub", p256),
        "p384.pub": _write_public(folder / "p384.pub", p384),
        "rsa.pub": _write_public(folder / "rsa.pub", rsa_key),
        "cert.pem": str(folder / "cert.pem"),
        "cert.der": str(folder / "cert.der"),
        "junk.pem": str(folder / "junk.pem"),
        "missing": str(folder / "missing.pem"),
        "folder": str(folder),
    }


# -- addresses and stores -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:5683", ("127.0.0.1", 5683)),
        ("[::1]:5684", ("::1", 5684)),
        (":0", ("0.0.0.0", 0)),
        (" localhost:65535 ", ("localhost", 65535)),
    ],
)
def test_parse_address_accepts_host_port(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["localhost", "h:", "h:65536", "h:-1", "h:port", "[::1]"])
def test_parse_address_names_the_option_and_the_value(text: str) -> None:
    with pytest.raises(click.ClickException) as error:
        parse_address(text, "--listen")
    assert error.value.message == (f"--listen: {text!r} is not HOST:PORT (e.g. 127.0.0.1:5683)")


def test_parse_store() -> None:
    assert parse_store("memory") is None
    assert parse_store("sqlite:/tmp/x.db") == "/tmp/x.db"
    assert parse_store("sqlite:C:/x.db") == "C:/x.db"  # only the first ':' separates
    for bad in ("sqlite", "sqlite:", "redis:localhost", "Memory", ""):
        with pytest.raises(click.ClickException) as error:
            parse_store(bad, "--security-store")
        assert error.value.message == (
            f"--security-store: {bad!r} is not 'memory', 'sqlite:PATH' or a Redis URL"
            " (redis://HOST:PORT)"
        )


async def test_open_store_errors_are_one_line(tmp_path: FsPath) -> None:
    assert await open_store(None) is None
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite" * 100)
    cases = {
        str(garbage): "file is not a database",
        str(tmp_path): "unable to open database file",  # a folder
        str(tmp_path / "no" / "such" / "dir.db"): "unable to open database file",
    }
    for path, reason in cases.items():
        with pytest.raises(click.ClickException) as error:
            await open_store(path)
        assert error.value.message == f"--store: cannot open {path}: {reason}"
    store = await open_store(str(tmp_path / "fresh.db"))
    assert store is not None
    await store.close()


def test_bind_failed_names_the_address_and_the_reason() -> None:
    exc = OSError(98, "Address already in use")
    assert bind_failed(("0.0.0.0", 5683), exc).message == (
        "cannot bind 0.0.0.0:5683: Address already in use"
    )
    assert bind_failed(("::1", 1), OSError("no strerror")).message == (
        "cannot bind ::1:1: no strerror"
    )


def test_ddf_errors_name_the_file(tmp_path: FsPath) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<LWM2M><Object>")
    with pytest.raises(Lwm2mError, match=r"bad\.xml"):
        load_registry((str(bad),))
    assert "bad.xml" in cli_error(["server", "--ddf", str(bad)])
    # the bundled objects plus the Secure Component object (read on register)
    assert load_registry(()).get(33000) is not None


# -- --psk / --rpk ------------------------------------------------------------------------------


def test_parse_psk_identity_and_endpoint() -> None:
    info = parse_psk("ep:id:00ff")
    assert info.endpoint == "ep"
    assert info.identity is not None
    assert info.identity.value == "id"
    # an empty identity is the endpoint name; the endpoint may contain ':'
    urn = parse_psk("urn:dev:os:x::0102")
    assert urn.endpoint == "urn:dev:os:x"
    assert urn.identity is not None
    assert urn.identity.value == "urn:dev:os:x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nokey", "--psk: expected ENDPOINT:IDENTITY:HEXKEY"),
        ("ep:" + SECRET, "--psk: expected ENDPOINT:IDENTITY:HEXKEY"),
        ("::" + SECRET, "--psk: expected ENDPOINT:IDENTITY:HEXKEY"),
        ("ep:id:", "--psk ep: the key is not (non-empty) hex"),
        ("ep:id:0", "--psk ep: the key is not (non-empty) hex"),
        ("ep:id:" + SECRET + "zz", "--psk ep: the key is not (non-empty) hex"),
    ],
)
def test_bad_psk_flags(text: str, message: str) -> None:
    with pytest.raises(click.ClickException) as error:
        parse_psk(text)
    assert error.value.message == message
    line = cli_error(["server", "--psk", text])
    assert line == f"Error: {message}"
    assert SECRET not in line


def test_parse_rpk_takes_public_keys_and_certificates(files: dict[str, str]) -> None:
    from_key = parse_rpk(f"urn:dev:x:{files['p256.pub']}")
    assert from_key.endpoint == "urn:dev:x"
    assert from_key.mode == "rpk"
    # the certificate of the same key: the same raw public key
    assert parse_rpk(f"urn:dev:x:{files['cert.pem']}").public_key == from_key.public_key
    assert parse_rpk(f"urn:dev:x:{files['cert.der']}").public_key == from_key.public_key


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing", "--rpk: cannot read {path}: No such file or directory"),
        ("folder", "--rpk: cannot read {path}: Is a directory"),
        ("junk.pem", "--rpk ep: {path}: not a public key or certificate (PEM or DER)"),
        ("p256.key", "--rpk ep: {path}: not a public key or certificate (PEM or DER)"),
    ],
)
def test_bad_rpk_files(files: dict[str, str], name: str, message: str) -> None:
    path = files[name]
    expected = message.format(path=path)
    with pytest.raises(click.ClickException) as error:
        parse_rpk(f"ep:{path}")
    assert error.value.message == expected
    assert cli_error(["server", "--rpk", f"ep:{path}"]) == f"Error: {expected}"


@pytest.mark.parametrize("text", ["ep", ":file.pem", "ep:"])
def test_rpk_flag_shape(text: str) -> None:
    with pytest.raises(click.ClickException, match=r"^--rpk: expected ENDPOINT:PEMFILE$"):
        parse_rpk(text)


@pytest.mark.parametrize("name", ["rsa.pub", "p384.pub"])
def test_rpk_of_a_key_type_dtls_cannot_use_is_rejected(files: dict[str, str], name: str) -> None:
    with pytest.raises(click.ClickException, match="P-256"):
        parse_rpk(f"ep:{files[name]}")


# -- --key / --cert / --trust-anchor / --security-store -----------------------------------------


async def security_error(options: DtlsOptions) -> str:
    """The message of the ClickException that ``build_security(options)`` must raise."""
    try:
        store, _, _, _ = await build_security(options)
    except click.ClickException as exc:
        return exc.message
    await store.close()
    raise AssertionError(f"build_security accepted {options}")


async def test_server_key_errors(files: dict[str, str]) -> None:
    for name in ("p384.key", "rsa.key"):
        assert await security_error(DtlsOptions(key=files[name])) == (
            "--key: only P-256 private keys are supported"
        )
    for name in ("junk.pem", "p256.pub", "cert.pem"):
        assert await security_error(DtlsOptions(key=files[name])) == (
            "--key: not a usable P-256 private key"
        )
    missing = files["missing"]
    assert await security_error(DtlsOptions(key=missing)) == (
        f"--key: cannot read {missing}: No such file or directory"
    )


async def test_certificate_and_trust_anchor_errors(files: dict[str, str]) -> None:
    key, missing = files["p256.key"], files["missing"]
    assert await security_error(DtlsOptions(key=key, cert=files["p256.pub"])) == (
        "--cert: not a DER or PEM certificate"
    )
    assert await security_error(DtlsOptions(cert=missing)) == (
        f"--cert: cannot read {missing}: No such file or directory"
    )
    assert await security_error(DtlsOptions(cert=files["cert.pem"])) == (
        "--cert needs --key (the certificate's private key)"
    )
    assert await security_error(DtlsOptions(key=key, trust_anchors=[files["junk.pem"]])) == (
        "--trust-anchor: not a DER or PEM certificate"
    )
    assert await security_error(DtlsOptions(trust_anchors=[missing])) == (
        f"--trust-anchor: cannot read {missing}: No such file or directory"
    )
    assert await security_error(DtlsOptions(trust_anchors=[files["cert.pem"]])) == (
        "--trust-anchor (X.509 clients) needs the server's --key"
    )
    rpk = parse_rpk(f"ep:{files['p256.pub']}")
    assert await security_error(DtlsOptions(entries=[rpk])) == (
        "RPK clients (--rpk) need the server's --key"
    )


async def test_security_store_errors(tmp_path: FsPath) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite" * 100)
    assert await security_error(DtlsOptions(security_store=str(garbage))) == (
        f"--security-store: cannot open {garbage}: file is not a database"
    )
    clash = [parse_psk(f"a:same:{SECRET}"), parse_psk("b:same:01")]
    message = await security_error(DtlsOptions(entries=clash))
    assert message.startswith("security entries: ")
    assert "already belongs to endpoint" in message
    assert SECRET not in message


async def test_what_the_security_line_says(files: dict[str, str], tmp_path: FsPath) -> None:
    key = files["p256.key"]
    options = DtlsOptions(
        entries=[parse_psk(f"a::{SECRET}"), parse_rpk(f"b:{files['p256.pub']}")],
        key=key,
        cert=files["cert.pem"],
        trust_anchors=[files["cert.pem"], files["cert.der"]],
        allow_plain=True,
        security_store=str(tmp_path / "security.db"),
    )
    assert options.enabled
    store, layer, allow_plain, described = await build_security(options)
    try:
        assert described == "DTLS: PSK 1, RPK 1, X.509 (2 trust anchors), plain CoAP too"
        assert allow_plain is True
        assert layer is not None
        assert len(await store.all()) == 2
    finally:
        await store.close()
    # the entries were kept in the SQLite store: a second run finds them without flags
    store, _, allow_plain, described = await build_security(
        DtlsOptions(security_store=str(tmp_path / "security.db"), key=key)
    )
    await store.close()
    assert (allow_plain, described) == (False, "DTLS: PSK 1, RPK 1")
    assert not DtlsOptions().enabled
    assert SECRET not in described


# -- lwm2m client -------------------------------------------------------------------------------


def test_a_malformed_client_toml_names_the_file_and_the_position(tmp_path: FsPath) -> None:
    path = tmp_path / "client.toml"
    path.write_text('endpoint = "x"\nlifetime = = 3\n')
    with pytest.raises(ConfigError) as error:
        build_client_config(config_file=path)
    assert str(error.value).startswith(f"{path}: not valid TOML (")
    assert "line 2" in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'endpoint = "x"\n[[servers]]\nuri = "coap://h:1"\nshort_server_id = 1\nport = 1\n',
            "unknown key 'port'",
        ),
        (
            'endpoint = "x"\n[[servers]]\nuri = "http://h:1"\nshort_server_id = 1\n',
            "servers[0].uri",
        ),
        ('endpoint = "x"\nservers = "coap://h:1"\n', "servers"),
        ('endpoint = 5\n[[servers]]\nuri = "coap://h:1"\nshort_server_id = 1\n', "endpoint"),
    ],
)
def test_bad_client_files_are_one_line(tmp_path: FsPath, text: str, expected: str) -> None:
    path = tmp_path / "client.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        build_client_config(config_file=path)
    assert expected in cli_error(["client", "--config", str(path)])


def test_a_client_file_that_is_a_folder(tmp_path: FsPath) -> None:
    with pytest.raises(click.ClickException) as error:
        build_client_config(config_file=tmp_path)
    assert error.value.message == f"cannot read {tmp_path}: Is a directory"


def test_a_client_file_that_is_not_utf8_is_one_line(tmp_path: FsPath) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('endpoint = "caf\xe9"\n'.encode("latin-1"))
    assert "not UTF-8 text" in cli_error(["client", "--config", str(path)])


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"server": "coap://h:99999"}, "servers[0].uri"),
        ({"server": "coap://"}, "servers[0].uri"),
        ({"bootstrap": "ftp://h:1"}, "bootstrap.uri"),
        ({"endpoint": ""}, "endpoint"),
        ({"bind": "nowhere"}, "bind"),
    ],
)
def test_bad_client_flags(flags: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        build_client_config(**flags)
    assert expected in str(error.value)
    args = ["client"]
    for name, value in flags.items():
        args += [f"--{name}", value]
    assert expected in cli_error(args)


def test_a_smart_card_provisions_the_accounts() -> None:
    assert build_client_config(smartcard=True).servers == ()
    # an explicit server flag (or file) still wins over the card
    assert len(build_client_config(smartcard=True, server="coap://h:1").servers) == 1


def test_psk_flags_become_the_account_keys() -> None:
    config = build_client_config(
        server="coaps://h:5684", psk_identity="dev-1", psk_key=bytes.fromhex(SECRET)
    )
    (server,) = config.servers
    assert server.uri == "coaps://h:5684"
    assert SECRET not in repr(config)  # the key is kept as a secret, never shown


@pytest.mark.parametrize(
    ("identity", "key", "uri", "message"),
    [
        ("id", None, "coaps://h:1", "--psk-identity needs --psk-key-hex-env or --psk-key-file"),
        (None, b"\x01", "coaps://h:1", "--psk-identity needs --psk-key-hex-env or --psk-key-file"),
        ("id", b"\x01", None, "--psk-identity applies to a --server or --bootstrap URI"),
        ("id", b"\x01", "coap://h:1", "--psk-identity needs a coaps:// URI"),
        ("", b"\x01", "coaps://h:1", "--psk-identity: the identity must not be empty"),
    ],
)
def test_psk_flag_errors(
    identity: str | None, key: bytes | None, uri: str | None, message: str
) -> None:
    with pytest.raises(click.ClickException) as error:
        build_client_config(bootstrap=uri, psk_identity=identity, psk_key=key)
    assert error.value.message.startswith(message)


def test_read_psk_key(tmp_path: FsPath, monkeypatch: pytest.MonkeyPatch) -> None:
    assert read_psk_key(None, None) is None
    monkeypatch.setenv("LWM2M_TEST_PSK", f"  {SECRET}\n")
    assert read_psk_key("LWM2M_TEST_PSK", None) == bytes.fromhex(SECRET)
    key_file = tmp_path / "psk.hex"
    key_file.write_text(SECRET + "\n")
    assert read_psk_key(None, str(key_file)) == bytes.fromhex(SECRET)
    binary = tmp_path / "psk.bin"
    binary.write_bytes(b"\xff" + SECRET.encode())
    monkeypatch.setenv("LWM2M_TEST_BAD", SECRET + "-not-hex")
    monkeypatch.setenv("LWM2M_TEST_EMPTY", "   ")
    cases = [
        (("LWM2M_TEST_PSK", str(key_file)), "give --psk-key-hex-env or --psk-key-file, not both"),
        (("LWM2M_TEST_UNSET_" + os.urandom(4).hex(), None), "is not set"),
        (("LWM2M_TEST_BAD", None), "--psk-key-hex-env: LWM2M_TEST_BAD does not hold a key in hex"),
        (("LWM2M_TEST_EMPTY", None), "--psk-key-hex-env: LWM2M_TEST_EMPTY holds an empty key"),
        ((None, str(binary)), f"--psk-key-file: {binary} does not hold a key in hex"),
        ((None, str(tmp_path)), f"--psk-key-file: cannot read {tmp_path}: Is a directory"),
    ]
    for (env, file), message in cases:
        with pytest.raises(click.ClickException) as error:
            read_psk_key(env, file)
        assert message in error.value.message
        assert SECRET not in error.value.message


def test_client_flags_reach_the_config_through_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``lwm2m client`` builds its configuration from the flags, then runs it."""
    seen: dict[str, Any] = {}

    def capture(coroutine: Coroutine[Any, Any, Any]) -> None:
        frame = coroutine.cr_frame
        assert frame is not None
        seen.update(frame.f_locals)
        coroutine.close()

    monkeypatch.setattr("lwm2m.cli.client.asyncio.run", capture)
    monkeypatch.setenv("LWM2M_TEST_PSK", SECRET)
    result = CliRunner().invoke(
        main,
        [
            "client",
            "--endpoint",
            "flags-1",
            "--server",
            "coaps://127.0.0.1:5684",
            "--psk-identity",
            "flags-1",
            "--psk-key-hex-env",
            "LWM2M_TEST_PSK",
            "--lifetime",
            "77",
            "--queue-mode",
            "--tick",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.endpoint, config.queue_mode, seen["tick"]) == ("flags-1", True, 0.0)
    assert config.servers[0].lifetime == 77
    assert seen["secure_component"] is None
    assert SECRET not in result.output
