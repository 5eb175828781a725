"""``lwm2m sc write-bootstrap`` / ``read-bootstrap`` / ``info`` and ``lwm2m vse init``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lwm2m.cli.vse import nodes_from_description, sc, vse
from lwm2m.secure.pcsc import Layout, parse_bootstrap_file
from lwm2m.vse.state import load_state

DESCRIPTION = """
layout = "1.1"

[[security]]
uri = "coaps://bootstrap.example.com:5684"
bootstrap = true
mode = "psk"
psk_identity = "device-1"
psk_key_hex = "000102030405060708090a0b0c0d0e0f"

[[security]]
uri = "coaps://lwm2m.example.com:5684"
short_server_id = 101
mode = "psk"
psk_identity_hex = "6465762d31"
psk_key = "text-key"
client_hold_off = 1
bootstrap_account_timeout = 0

[[server]]
short_server_id = 101
lifetime = 300
binding = "UQ"
default_min_period = 1

[[object]]
id = 21
version = "1.0"
[[object.instance]]
id = 0
resources = { 0 = "master", 1 = "s", 2 = "r", 3 = 10 }
"""


@pytest.fixture
def description(tmp_path: Path) -> Path:
    path = tmp_path / "card.toml"
    path.write_text(DESCRIPTION)
    return path


def test_write_bootstrap_hex_and_file(description: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    # the file holds keys: printed only when asked (--hex), else it needs --out or --state
    refused = runner.invoke(sc, ["write-bootstrap", str(description)])
    assert refused.exit_code == 2
    assert "--out FILE, --state FILE, or --hex" in refused.output
    assert refused.stdout == ""  # the usage error goes to stderr, and no hex anywhere
    result = runner.invoke(sc, ["write-bootstrap", str(description), "--hex"])
    assert result.exit_code == 0, result.output
    raw = bytes.fromhex(result.stdout.strip())
    data = parse_bootstrap_file(raw)
    assert data.versions == {0: None, 1: None, 21: "1.0"}
    security = data[0].instances
    assert security[0].resources[5].value == bytes(range(16))
    assert security[1].resources[3].value == b"dev-1"
    assert security[1].resources[10].value == 101
    out = tmp_path / "bs.bin"
    result = runner.invoke(
        sc, ["write-bootstrap", str(description), "--out", str(out), "--layout", "1.0"]
    )
    assert result.exit_code == 0
    assert parse_bootstrap_file(out.read_bytes()).layout is Layout.V1_0
    assert "000102030405" not in result.stderr


def test_write_bootstrap_into_state(description: Path, tmp_path: Path) -> None:
    state_path = tmp_path / "vse.json"
    result = CliRunner().invoke(vse, ["init", "--state", str(state_path)])
    assert result.exit_code == 0
    assert CliRunner().invoke(vse, ["init", "--state", str(state_path)]).exit_code != 0
    result = CliRunner().invoke(
        sc,
        [
            "write-bootstrap",
            str(description),
            "--state",
            str(state_path),
            "--require-secure-channel",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "objects /0 (2 instances), /1 (1 instances), /21 (1 instances)" in result.stderr
    state = load_state(state_path)
    assert state.pkcs15.require_secure_channel
    assert parse_bootstrap_file(bytes.fromhex(state.pkcs15.bootstrap)).order == (0, 1, 21)
    assert state_path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("layout = '2.0'\n[[server]]\nshort_server_id = 1", "layout"),
        ("layout = 'auto'\n[[server]]\nshort_server_id = 1", "layout"),
        ("x = 1", "unknown top-level"),
        ("", "no objects"),
        ("[[security]]\nuri = 'coap://a'\nmode = 'psk'\nshort_server_id = 1", "PSK mode needs"),
        ("[[security]]\nuri = 'coap://a'\nmode = 'nosec'", "needs short_server_id"),
        ("[[security]]\nmode = 'nosec'", "uri is required"),
        ("[[security]]\nuri = 'coap://a'\nmode = 'magic'", "mode"),
        ("[[security]]\nuri = 'coap://a'\ncolour = 1", "unknown keys"),
        (
            "[[security]]\nuri = 'coap://a'\nbootstrap = true\npsk_identity_hex = 'zz'\n"
            "psk_key_hex = '00'",
            "not hexadecimal",
        ),
        ("[[server]]\nlifetime = 1", "short_server_id is required"),
        ("[[server]]\nshort_server_id = 1\ncolour = 2", "unknown keys"),
        ("[[server]]\nshort_server_id = 1\nlifetime = 'long'", "not a valid Integer"),
        ("[[object]]\nversion = '1.0'", "id is required"),
        ("[[object]]\nid = 4242", "not in the model"),
        ("[[object]]\nid = 21\n[[object.instance]]\nresources = { 99 = 1 }", "no resource 99"),
        (
            "[[object]]\nid = 21\n[[object.instance]]\nresources = { 0 = { hex = 'zz' } }",
            "not hexadecimal",
        ),
        ("[[object]]\nid = 21\n[[object.instance]]\nresources = { 0 = { text = 'a' } }", "hex ="),
        ("[[object]]\nid = 21\n[[object.instance]]\nid = 70000", "id"),
    ],
)
def test_description_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = CliRunner().invoke(sc, ["write-bootstrap", str(path)])
    assert result.exit_code != 0
    assert message in result.output


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[security]\n")
    result = CliRunner().invoke(sc, ["write-bootstrap", str(path)])
    assert result.exit_code != 0
    assert "bad.toml" in result.output


def test_multiple_resources_in_generic_objects() -> None:
    layout, objects = nodes_from_description(
        {
            "object": [
                {
                    "id": 2,
                    "instance": [
                        {"id": 0, "resources": {"0": 1, "1": 0, "2": {"101": 15, "0": 1}, "3": 101}}
                    ],
                }
            ],
        }
    )
    node, version = objects[0]
    acl = node.instances[0].resources[2]
    assert acl.values == {0: 1, 101: 15}  # type: ignore[union-attr]
    assert layout is Layout.V1_1
    assert version is None
    _, objects = nodes_from_description(
        {
            "object": [
                {"id": 2, "instance": [{"resources": {"0": 1, "1": 0, "2": [1, 2], "3": 1}}]}
            ],
        }
    )
    assert objects[0][0].instances[0].resources[2].values == {0: 1, 1: 2}  # type: ignore[union-attr]


def test_read_commands_through_pcscd(vse, description: Path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    result = runner.invoke(
        sc,
        [
            "write-bootstrap",
            str(description),
            "--state",
            str(vse.state_path),
            "--no-require-secure-channel",
        ],
    )
    assert result.exit_code == 0
    result = runner.invoke(sc, ["info", "--reader", "0"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["iccid"] == "8988211000000000003"
    # the VSE picks up the new file at the next reset: sc read-bootstrap connects afresh
    from vse.pcsc_env import open_transport

    transport = open_transport(vse.reader)
    transport.reset()
    transport.close()
    result = runner.invoke(
        sc,
        [
            "read-bootstrap",
            "--reader",
            vse.reader,
            "--scp03-key",
            "404142434445464748494A4B4C4D4E4F",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [o["id"] for o in summary["objects"]] == [0, 1, 21]
    assert summary["secured"] is True
    bad = runner.invoke(sc, ["read-bootstrap", "--scp03-key", "00", "--scp03-key", "00"])
    assert bad.exit_code != 0
    assert "once" in bad.output
    bad = runner.invoke(sc, ["read-bootstrap", "--scp03-key", "0011"])
    assert bad.exit_code != 0
    assert "SCP03 key" in bad.output
