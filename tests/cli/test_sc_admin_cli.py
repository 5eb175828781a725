"""``lwm2m client --sc-admin-aid AID``: the security domains servers may script through
/33000/x/30-35 (lwm2m.secure.admin), checked before anything starts."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from lwm2m.cli.client import parse_admin_aids
from lwm2m.cli.main import main
from lwm2m.secure.admin import ISD_AID


def test_aids_are_parsed_for_a_pcsc_component() -> None:
    assert parse_admin_aids((), None) == ()
    assert parse_admin_aids(("a000000151000000",), "pcsc:reader=1") == (ISD_AID,)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sc-admin-aid", "A000000151000000"], "--sc-admin-aid needs --secure-component pcsc:"),
        (
            ["--secure-component", "soft:x.sc", "--sc-admin-aid", "A000000151000000"],
            "--sc-admin-aid needs --secure-component pcsc:",
        ),
        (
            ["--secure-component", "pcsc:", "--sc-admin-aid", "A0Z1"],
            "Invalid value for --sc-admin-aid: AID 'A0Z1' is not hexadecimal",
        ),
        (
            ["--secure-component", "pcsc:", "--sc-admin-aid", "A000"],
            "Invalid value for --sc-admin-aid: an AID has 5 to 16 bytes, not 2",
        ),
    ],
)
def test_bad_admin_aids_are_usage_errors(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["client", "--endpoint", "x", *arguments])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "LwM2M client" not in result.output  # nothing started


def test_the_option_is_documented() -> None:
    command = main.commands["client"]
    assert isinstance(command, click.Command)
    (option,) = [p for p in command.params if p.name == "admin_aids"]
    assert option.multiple
    assert "A000000151000000" in (getattr(option, "help", "") or "")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--secure-component", "pcsc:", "--seram-agent", "https://ras.example/gp/seram"],
            "--seram-agent needs --sc-admin-aid",
        ),
        (
            [
                *("--secure-component", "pcsc:", "--sc-admin-aid", "A000000151000000"),
                *("--seram-agent", "ftp://ras.example/gp/seram"),
            ],
            "Invalid value for --seram-agent: 'ftp://ras.example/gp/seram' is not an http(s) URL",
        ),
    ],
)
def test_bad_seram_agents_are_usage_errors(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["client", "--endpoint", "x", *arguments])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
