"""`lwm2m model show|check`, `lwm2m decode` and `lwm2m encode` (foundation issue, point 6)."""

from __future__ import annotations

import json
from pathlib import Path as FsPath

import pytest
from click.testing import CliRunner

from lwm2m.cli.main import main

# LwM2M-TS-Core §7.4.3: /3/0/0 "Open Mobile Alliance" as a TLV resource.
MANUFACTURER_TLV = "c8001" + "44f70656e204d6f62696c6520416c6c69616e6365"


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def test_model_show_prints_the_definition_as_a_table(run) -> None:
    result = run("model", "show", "3/1.1")
    assert result.exit_code == 0, result.output
    assert "/3 Device" in result.output
    assert "object 1.1" in result.output
    for fragment in ("Manufacturer", "Reboot", "Error Code", "Multiple", "Integer"):
        assert fragment in result.output
    latest = run("model", "show", "1")
    assert latest.exit_code == 0
    assert "Lifetime" in latest.output


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("3/9.9", "no definition of object 3/9.9; known versions: 1.0, 1.1"),
        ("4242", "no definition of object 4242"),
        ("x", "is not OBJECT[/VERSION]"),
    ],
)
def test_model_show_errors_are_one_line(run, ref: str, message: str) -> None:
    result = run("model", "show", ref)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_model_check_summarises_good_and_bad_files(run, tmp_path: FsPath) -> None:
    bundled = FsPath(__file__).resolve().parents[2] / "src/lwm2m/model/objects"
    good = run("model", "check", str(bundled))
    assert good.exit_code == 0, good.output
    assert "13 valid, 0 invalid, 13 files" in good.output
    bad = tmp_path / "bad.xml"
    bad.write_text("<LWM2M><Object><Name>x</Name></Object></LWM2M>")
    result = run("model", "check", str(bundled / "3-1_1.xml"), str(bad))
    assert result.exit_code == 1
    assert "1 valid, 1 invalid, 2 files" in result.output
    assert "FAIL" in result.output
    assert "bad.xml" in result.output


def test_decode_tlv_resource(run) -> None:
    result = run("decode", "--format", "tlv", "--path", "/3/0/0", MANUFACTURER_TLV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == "Open Mobile Alliance"


def test_encode_then_decode_an_instance_in_every_format(run) -> None:
    node = {"0": "ACME", "9": 87, "6": {"0": 1, "1": 5}, "13": 1700000000}
    for fmt in ("tlv", "senml-json", "senml-cbor", "lwm2m-cbor", "json", "11542"):
        encoded = run("encode", "--format", fmt, "--path", "/3/0", json.dumps(node))
        assert encoded.exit_code == 0, (fmt, encoded.output)
        payload = encoded.output.strip()
        decoded = run("decode", "--format", fmt, "--path", "/3/0", payload)
        assert decoded.exit_code == 0, (fmt, decoded.output)
        assert json.loads(decoded.output) == node, fmt


def test_payloads_from_files(run, tmp_path: FsPath) -> None:
    hex_file = tmp_path / "payload.hex"
    hex_file.write_text(MANUFACTURER_TLV + "\n")
    assert json.loads(run("decode", "--format", "tlv", "--path", "/3/0/0", f"@{hex_file}").output)
    raw = tmp_path / "payload.bin"
    raw.write_bytes(bytes.fromhex(MANUFACTURER_TLV))
    result = run("decode", "--format", "tlv", "--path", "/3/0/0", f"@{raw}")
    assert json.loads(result.output) == "Open Mobile Alliance"
    json_file = tmp_path / "node.json"
    json_file.write_text('"ACME"')
    encoded = run("encode", "--format", "text", "--path", "/3/0/0", f"@{json_file}")
    assert encoded.output.strip() == b"ACME".hex()


def test_opaque_and_objlnk_values_round_trip_as_hex_and_text(run) -> None:
    encoded = run("encode", "--format", "senml-json", "--path", "/0/1", '{"3": "0a0b", "0": "x"}')
    assert encoded.exit_code == 0, encoded.output
    decoded = run("decode", "--format", "senml-json", "--path", "/0/1", encoded.output.strip())
    assert json.loads(decoded.output) == {"0": "x", "3": "0a0b"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("decode", "--format", "xml", "--path", "/3/0", "00"), "unknown content format 'xml'"),
        (("decode", "--format", "tlv", "--path", "/3/x", "00"), "invalid path"),
        (("decode", "--format", "tlv", "--path", "/3/0", "zz"), "payload is not hexadecimal"),
        (("decode", "--format", "tlv", "--path", "/3/0", "c80005"), "/3/0"),
        (("decode", "--format", "tlv", "--path", "/3/0", "@/nonexistent.hex"), "cannot read"),
        (("encode", "--format", "tlv", "--path", "/3/0", "{"), "payload is not JSON"),
        (("encode", "--format", "tlv", "--path", "/3/0", '{"9": "high"}'), "/3/0/9"),
        (("encode", "--format", "tlv", "--path", "/3/0", '{"999": 1}'), "unknown resource"),
        (("encode", "--format", "text", "--path", "/3/0", '{"9": 1}'), "/3/0"),
        (("encode", "--format", "tlv", "--path", "/0/1", '{"5": "secret-zz"}'), "/0/1/5"),
    ],
)
def test_errors_are_one_clear_line(run, args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "secret-zz" not in result.output  # an Opaque value (maybe a key) is never echoed
