"""``lwm2m server --psk`` / ``bootstrap-server`` with ``bootstrap_security`` and ``lwm2m client
--psk-identity --psk-key-hex-env`` over ``coaps://`` as subprocesses (bounded waits), and the
one-line errors of the DTLS options (never repeating a key)."""

from __future__ import annotations

import os
from pathlib import Path as FsPath

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.cli.main import main

from .conftest import Spawn

SECURE_LISTENING = r"listening on coaps://127\.0\.0\.1:(\d+)"
KEY = os.urandom(16).hex()


async def test_psk_server_and_client_register_over_coaps(
    spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LWM2M_TEST_PSK", KEY)
    server = await spawn(
        "server", ["server", "--bind", "127.0.0.1:0", "--psk", f"cli-dtls-1::{KEY}"]
    )
    port = (await server.expect(SECURE_LISTENING + r".*DTLS: PSK 1")).group(1)
    client = await spawn(
        "client",
        [
            "client",
            "--endpoint",
            "cli-dtls-1",
            "--server",
            f"coaps://127.0.0.1:{port}",
            "--psk-identity",
            "cli-dtls-1",
            "--psk-key-hex-env",
            "LWM2M_TEST_PSK",
            "--bind",
            "127.0.0.1:0",
            "--tick",
            "0",
        ],
    )
    registered = await server.expect(r"registered\s+cli-dtls-1 (/rd/\S+)")
    await client.expect(rf"registered\s+server=101 {registered.group(1)}$")
    assert await client.interrupt() == 0, client.transcript
    await server.expect(r"deregistered\s+cli-dtls-1")
    assert await server.interrupt() == 0, server.transcript
    for process in (server, client):
        assert KEY not in process.transcript


async def test_bootstrap_over_coaps_then_register_over_coaps(
    spawn: Spawn, tmp_path: FsPath
) -> None:
    bs_key, dm_key = os.urandom(16).hex(), os.urandom(16).hex()
    server = await spawn(
        "server", ["server", "--bind", "127.0.0.1:0", "--psk", f"cli-dtls-bs:bs-id:{dm_key}"]
    )
    port = (await server.expect(SECURE_LISTENING)).group(1)
    config = tmp_path / "bootstrap.toml"
    config.write_text(
        f"""
[endpoints."cli-dtls-bs".bootstrap_security]
mode = "psk"
psk_identity = "bs-id"
psk_key = "hex:{bs_key}"
[[endpoints."cli-dtls-bs".security]]
uri = "coaps://127.0.0.1:{port}"
mode = "psk"
psk_identity = "bs-id"
psk_key = "hex:{dm_key}"
short_server_id = 7
[[endpoints."cli-dtls-bs".servers]]
short_server_id = 7
lifetime = 99
"""
    )
    bootstrap = await spawn(
        "bootstrap", ["bootstrap-server", "--config", str(config), "--bind", "127.0.0.1:0"]
    )
    bs_port = (await bootstrap.expect(SECURE_LISTENING + r" \(1 endpoints: cli-dtls-bs")).group(1)
    key_file = tmp_path / "bs.key"
    key_file.write_text(bs_key + "\n")
    client = await spawn(
        "client",
        [
            "client",
            "--endpoint",
            "cli-dtls-bs",
            "--bootstrap",
            f"coaps://127.0.0.1:{bs_port}",
            "--psk-identity",
            "bs-id",
            "--psk-key-file",
            str(key_file),
            "--bind",
            "127.0.0.1:0",
            "--tick",
            "0",
        ],
    )
    await bootstrap.expect(r"finished\s+cli-dtls-bs")
    await client.expect(r"registered\s+server=7 /rd/")
    await server.expect(r"registered\s+cli-dtls-bs /rd/\S+ lifetime=99s")
    assert await client.interrupt() == 0, client.transcript
    assert await bootstrap.interrupt() == 0, bootstrap.transcript
    assert await server.interrupt() == 0, server.transcript
    for process in (server, bootstrap, client):
        assert bs_key not in process.transcript
        assert dm_key not in process.transcript


def one_line_error(args: list[str], expected: str, secret: str | None = None) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]
    if secret is not None:
        assert secret not in result.stderr


def test_dtls_option_errors(tmp_path: FsPath, monkeypatch: pytest.MonkeyPatch) -> None:
    server = ["server", "--bind", "127.0.0.1:0"]
    one_line_error([*server, "--psk", "nokey"], "ENDPOINT:IDENTITY:HEXKEY")
    one_line_error([*server, "--psk", "ep:id:zz-secret-ish"], "not (non-empty) hex", "secret")
    one_line_error([*server, "--rpk", "ep"], "ENDPOINT:PEMFILE")
    one_line_error([*server, "--rpk", f"ep:{tmp_path / 'missing.pem'}"], "cannot read")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("nothing")
    one_line_error([*server, "--rpk", f"ep:{garbage}"], "not a public key")
    key = ec.generate_private_key(ec.SECP256R1())
    public = tmp_path / "client.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    one_line_error([*server, "--rpk", f"ep:{public}"], "need the server's --key")
    one_line_error([*server, "--cert", str(public), "--key", str(garbage)], "--key")
    private = tmp_path / "server.key.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    one_line_error([*server, "--cert", str(garbage), "--key", str(private)], "--cert")
    one_line_error([*server, "--security-store", "redis:x"], "--security-store")
    one_line_error(
        [*server, "--psk", "a:same:00", "--psk", "b:same:01"], "already belongs to endpoint"
    )
    one_line_error(
        [*server, "--security-store", f"sqlite:{tmp_path / 'no' / 'dir.sqlite'}"],
        "--security-store: cannot open",
    )
    client = ["client", "--bind", "127.0.0.1:0", "--endpoint", "e"]
    one_line_error([*client, "--server", "coaps://h:1", "--psk-identity", "i"], "--psk-key-hex-env")
    one_line_error(
        [*client, "--server", "coap://h:1", "--psk-identity", "i", "--psk-key-file", str(public)],
        "does not hold a key in hex",
    )
    monkeypatch.setenv("LWM2M_TEST_BAD", "nothex-secret")
    one_line_error(
        [*client, "--server", "coaps://h:1", "--psk-identity", "i", "--psk-key-hex-env", "X_UNSET"],
        "X_UNSET is not set",
    )
    one_line_error(
        [
            *client,
            "--server",
            "coaps://h:1",
            "--psk-identity",
            "i",
            "--psk-key-hex-env",
            "LWM2M_TEST_BAD",
        ],
        "does not hold a key in hex",
        "secret",
    )
    monkeypatch.setenv("LWM2M_TEST_KEY", "00ff")
    with_key = ["--psk-identity", "i", "--psk-key-hex-env", "LWM2M_TEST_KEY"]
    one_line_error([*client, "--server", "coap://h:1", *with_key], "needs a coaps:// URI")
    one_line_error([*client, *with_key], "applies to a --server or --bootstrap URI")
    one_line_error(
        [
            *client,
            "--server",
            "coaps://h:1",
            "--psk-identity",
            "",
            "--psk-key-hex-env",
            "LWM2M_TEST_KEY",
        ],
        "must not be empty",
    )
    one_line_error(
        [*client, "--server", "coaps://h:1", *with_key, "--psk-key-file", str(public)],
        "not both",
    )
    one_line_error(
        [
            *client,
            "--server",
            "coaps://h:1",
            "--psk-identity",
            "i",
            "--psk-key-file",
            str(tmp_path / "missing"),
        ],
        "cannot read",
    )
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    one_line_error(
        [*client, "--server", "coaps://h:1", "--psk-identity", "i", "--psk-key-file", str(empty)],
        "empty key",
    )
    toml = tmp_path / "bs.toml"
    toml.write_text(
        f'[endpoints."e".bootstrap_security]\nmode = "rpk"\npublic_key = """'
        f'{public.read_text()}"""\n'
    )
    one_line_error(["bootstrap-server", "--config", str(toml)], "need the server's --key")
