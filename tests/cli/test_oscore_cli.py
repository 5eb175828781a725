"""OSCORE from the command line: ``lwm2m server --oscore``, the client's ``oscore_*`` keys in
its TOML file, and the bootstrap file's ``oscore`` tables, run in this process.

The server's OSCORE clients alone keep it on ``coap://``; the client registers over OSCORE and
the server prints it; the master secret never appears on a screen or in a log.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path as FsPath
from typing import Any

import click
import pytest

from lwm2m.bootstrap.config import ConfigError
from lwm2m.cli.bootstrap import load_file
from lwm2m.cli.client import build_client_config, run_client
from lwm2m.cli.server import DtlsOptions, build_security, load_registry, parse_oscore, run_server
from lwm2m.server.security import IdentityKind

from .test_cli_inprocess import LISTENING, running  # noqa: F401 - the fixture

SECRET = os.urandom(16)


def client_file(tmp_path: FsPath, port: str, secret: bytes = SECRET) -> FsPath:
    path = tmp_path / "client.toml"
    path.write_text(
        f"""endpoint = "cli-oscore"
bind = "127.0.0.1:0"
[[servers]]
uri = "coap://127.0.0.1:{port}"
short_server_id = 101
lifetime = 120
oscore_sender_id_hex = "c1"
oscore_recipient_id_hex = "51"
oscore_master_secret_hex = "{secret.hex()}"
oscore_master_salt_hex = ""
"""
    )
    return path


async def test_server_with_oscore_clients_registers_one_over_coap(
    running: Any,  # noqa: F811 - the fixture
    tmp_path: FsPath,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = running("server")
    dtls = DtlsOptions(entries=[parse_oscore(f"cli-oscore:c1:51:{SECRET.hex()}:")])
    assert dtls.enabled
    assert not dtls.dtls
    server.start(
        run_server(
            ("127.0.0.1", 0),
            store_path=None,
            registry=load_registry(()),
            observe=(),
            console=server.screen.console,
            stop=server.stop,
            dtls=dtls,
        )
    )
    port = (await server.screen.expect(LISTENING + r" .*; OSCORE 1\)")).group(1)
    client = running("client")
    config = build_client_config(config_file=client_file(tmp_path, port))
    client.start(run_client(config, console=client.screen.console, tick=0, stop=client.stop))
    await server.screen.expect(r"^registered +cli-oscore /rd/")
    await client.screen.expect(r"^registered +server=101 /rd/")
    await client.finish()
    await server.screen.expect(r"^deregistered +cli-oscore ")
    await server.finish()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for text in (server.screen.getvalue(), client.screen.getvalue(), logged):
        assert SECRET.hex() not in text.lower()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ep:c1:51", "expected ENDPOINT:SENDER:RECIPIENT:SECRET:SALT"),
        (":c1:51:00:", "expected ENDPOINT:SENDER:RECIPIENT:SECRET:SALT"),
        ("ep:zz:51:00:", "the sender id is not hex"),
        ("ep:c1:51:secret!:", "the master secret is not hex"),
        ("ep:c1:51::", "the master secret is empty"),
        ("ep:c1:c1:00:", "must differ"),
    ],
)
def test_bad_oscore_flags(text: str, message: str) -> None:
    with pytest.raises(click.ClickException) as refused:
        parse_oscore(text)
    assert message in refused.value.message


def test_an_endpoint_name_with_colons_and_a_salt() -> None:
    info = parse_oscore(f"urn:dev:os:1:c1:51:{SECRET.hex()}:9e7c")
    assert info.endpoint == "urn:dev:os:1"
    assert info.identity is not None
    assert (info.identity.kind, info.identity.value) == (IdentityKind.OSCORE, "c1")
    assert info.oscore is not None
    assert info.oscore.master_salt == bytes.fromhex("9e7c")


async def test_oscore_and_dtls_clients_share_one_coaps_socket() -> None:
    """With a PSK client too the server serves coaps://, and plain datagrams still reach it
    for the OSCORE clients."""
    from lwm2m.cli.server import parse_psk

    options = DtlsOptions(
        entries=[parse_oscore(f"a:c1:51:{SECRET.hex()}:"), parse_psk(f"b:b:{SECRET.hex()}")]
    )
    assert options.dtls
    store, layer, allow_plain, described = await build_security(options)
    try:
        assert layer is not None
        assert type(layer).__name__ == "PlainOrDtls"
        assert not allow_plain  # NoSec clients without an entry still may not register
        assert described == "DTLS: PSK 1, RPK 0; OSCORE 1 (coap://)"
    finally:
        await store.close()


def test_bootstrap_file_oscore_tables(tmp_path: FsPath) -> None:
    path = tmp_path / "bootstrap.toml"
    path.write_text(
        f"""
[endpoints."bs-oscore".bootstrap_security]
mode = "oscore"
sender_id = "hex:c1"
recipient_id = "hex:51"
master_secret = "hex:{SECRET.hex()}"
[[endpoints."bs-oscore".security]]
uri = "coap://127.0.0.1:5683"
short_server_id = 7
[endpoints."bs-oscore".security.oscore]
sender_id = "hex:c2"
recipient_id = "hex:52"
master_secret = "hex:{SECRET.hex()}"
aead = 10
[[endpoints."bs-oscore".servers]]
short_server_id = 7
"""
    )
    loaded = load_file(str(path), load_registry(()))
    (entry,) = loaded.security
    assert entry.mode == "oscore"
    assert entry.identity is not None
    assert entry.identity.value == "c1"
    writes = loaded.configs["bs-oscore"].writes_in_order()
    assert [str(p) for p, _ in writes] == ["/21/1", "/0/1", "/1/0"]
    oscore = writes[0][1]
    assert oscore.resources[1].value == b"\xc2"  # type: ignore[union-attr]
    assert oscore.resources[3].value == 10  # type: ignore[union-attr]
    assert writes[1][1].resources[17].value.instance_id == 1  # type: ignore[union-attr]
    assert SECRET.hex() not in repr(loaded.configs)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('{ sender_id = "hex:c2" }', "recipient_id is required"),
        ('{ sender_id = "hex:c2", recipient_id = "hex:c2", master_secret = "x" }', "must differ"),
        ('{ sender_id = "a", recipient_id = "b", master_secret = "x", colour = 1 }', "colour"),
        ('{ sender_id = "12345678", recipient_id = "b", master_secret = "x" }', "longer than 7"),
        ('{ sender_id = "a", recipient_id = "b", master_secret = "" }', "master_secret"),
    ],
)
def test_bootstrap_file_oscore_errors_name_the_field(
    tmp_path: FsPath, table: str, message: str
) -> None:
    path = tmp_path / "bootstrap.toml"
    path.write_text(
        f"""
[[endpoints.x.security]]
uri = "coap://127.0.0.1:5683"
short_server_id = 7
oscore = {table}
"""
    )
    with pytest.raises((ConfigError, click.ClickException)) as refused:
        load_file(str(path), load_registry(()))
    assert message in str(refused.value)


def test_oscore_needs_mode_nosec_in_the_bootstrap_file(tmp_path: FsPath) -> None:
    path = tmp_path / "bootstrap.toml"
    path.write_text(
        """
[[endpoints.x.security]]
uri = "coaps://127.0.0.1:5684"
mode = "psk"
psk_identity = "x"
psk_key = "hex:00"
short_server_id = 7
oscore = { sender_id = "a", recipient_id = "b", master_secret = "x" }
"""
    )
    with pytest.raises((ConfigError, click.ClickException)) as refused:
        load_file(str(path), load_registry(()))
    assert "oscore needs mode nosec" in str(refused.value)


async def test_the_example_oscore_client_registers_with_the_readme_server_command(
    running: Any,  # noqa: F811 - the fixture
    tmp_path: FsPath,
) -> None:
    """``examples/client-oscore.toml`` against the ``--oscore`` entry its header gives (on a
    free port: the file is copied with the server's port; ``--server`` would replace the
    account, OSCORE keys included)."""
    example = FsPath(__file__).parents[2] / "examples" / "client-oscore.toml"
    header = example.read_text().splitlines()[2]
    entry = header.split("--oscore ")[1].strip()
    server = running("server")
    server.start(
        run_server(
            ("127.0.0.1", 0),
            store_path=None,
            registry=load_registry(()),
            observe=(),
            console=server.screen.console,
            stop=server.stop,
            dtls=DtlsOptions(entries=[parse_oscore(entry)]),
        )
    )
    port = (await server.screen.expect(LISTENING + r" .*; OSCORE 1\)")).group(1)
    client = running("client")
    copy = tmp_path / "client-oscore.toml"
    copy.write_text(example.read_text().replace("127.0.0.1:5683", f"127.0.0.1:{port}"))
    config = build_client_config(config_file=copy, bind="127.0.0.1:0")
    client.start(run_client(config, console=client.screen.console, tick=0, stop=client.stop))
    await server.screen.expect(r"^registered +urn:dev:demo-oscore /rd/")
    await client.finish()
    await server.finish()


def test_sc_list_names_an_oscore_master_secret_without_showing_it(tmp_path: FsPath) -> None:
    from click.testing import CliRunner

    from lwm2m.cli.main import main
    from lwm2m.secure import open_component

    path = tmp_path / "device.sc"
    with open_component(f"soft:{path}", passphrase="pw", create=True, scrypt_log2_n=10) as sc:
        sc.import_oscore_secret("lwm2m:/21/0/0", SECRET, b"salt")
    result = CliRunner().invoke(
        main,
        ["sc", "list"],
        env={"LWM2M_SECURE_COMPONENT": f"soft:{path}?passphrase-env=P", "P": "pw"},
    )
    assert result.exit_code == 0, result.output
    assert "OSCORE Master Secret, 16 bytes (HKDF in the component)" in result.stdout
    assert SECRET.hex() not in result.output
