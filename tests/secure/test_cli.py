"""``lwm2m sc``: info, keygen, import-psk, list, delete on soft: and pkcs11: components."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lwm2m.cli import sc as sc_module
from lwm2m.cli.sc import sc
from lwm2m.secure import open_component

from .conftest import PASSPHRASE, PASSPHRASE_ENV, Backend, reference_master_secret, wipe
from .softhsm import SoftHsm


@pytest.fixture
def cli_backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Backend:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    if request.param == "soft":
        return Backend("soft", f"soft:{tmp_path}/cli.sc?passphrase-env={PASSPHRASE_ENV}")
    softhsm: SoftHsm = request.getfixturevalue("softhsm")
    uri = softhsm.uri("cli")
    with open_component(uri) as component:
        wipe(component)
    return Backend("pkcs11", uri)


both = pytest.mark.parametrize("cli_backend", ["soft", "pkcs11"], indirect=True)


def run(backend: Backend | None, *args: str, input: bytes | str | None = None) -> Result:
    env = {"LWM2M_SECURE_COMPONENT": backend.uri} if backend else {}
    return CliRunner().invoke(sc, list(args), env=env, input=input, catch_exceptions=False)


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


@both
def test_keygen_prints_public_key_and_csr(cli_backend: Backend, tmp_path: Path) -> None:
    result = run(
        cli_backend,
        "keygen",
        "--label",
        "dev",
        "--subject",
        "CN=urn:imei:1",
        "--dns",
        "d.example",
        "--san-uri",
        "urn:imei:1",
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "not secure hardware" in out  # soft: and SoftHSM2 alike
    pem = out[out.index("-----BEGIN PUBLIC KEY-----") : out.index("-----END PUBLIC KEY-----") + 24]
    public = serialization.load_pem_public_key(pem.encode())
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki.hex() in out
    assert f"x: {public.public_numbers().x:064x}" in out  # type: ignore[union-attr]
    csr_text = out[out.index("-----BEGIN CERTIFICATE REQUEST-----") :]
    csr = x509.load_pem_x509_csr(csr_text.encode())
    assert csr.is_signature_valid
    assert csr.public_key() == public
    # to a file, and without a CSR
    target = tmp_path / "dev2.csr"
    result = run(
        cli_backend, "keygen", "--label", "dev2", "--subject", "CN=x", "--csr-out", str(target)
    )
    assert result.exit_code == 0
    assert x509.load_pem_x509_csr(target.read_bytes()).is_signature_valid
    result = run(cli_backend, "keygen", "--label", "dev3")
    assert result.exit_code == 0
    assert "CERTIFICATE REQUEST" not in result.stdout
    assert "already" in one_line_error(run(cli_backend, "keygen", "--label", "dev"))


@both
def test_import_psk_list_delete(
    cli_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    psk = os.urandom(16)
    psk_file = tmp_path / "psk.hex"
    psk_file.write_text(psk.hex() + "\n")
    result = run(
        cli_backend, "import-psk", "--identity", "urn:imei:42", "--psk-file", str(psk_file)
    )
    assert result.exit_code == 0, result.output
    assert (
        "Imported PSK for identity 'urn:imei:42' as 'psk:75726e3a696d65693a3432'." in result.stdout
    )
    raw = os.urandom(20)
    result = run(
        cli_backend,
        "import-psk",
        "--identity-hex",
        "00ff",
        "--label",
        "bin",
        "--psk-file",
        "-",
        "--psk-format",
        "raw",
        input=raw,
    )
    assert result.exit_code == 0, result.output
    assert "identity hex:00ff" in result.stdout
    monkeypatch.setenv("THE_PSK", psk.hex())
    result = run(
        cli_backend, "import-psk", "--identity", "env", "--label", "env", "--psk-hex-env", "THE_PSK"
    )
    assert result.exit_code == 0, result.output
    for result in (
        run(cli_backend, "list"),
        run(cli_backend, "list", "--json"),
        run(cli_backend, "info"),
    ):
        for secret in (psk.hex(), psk.hex().upper(), raw.hex()):
            assert secret not in result.output
    with open_component(cli_backend.uri, passphrase=PASSPHRASE) as component:
        handle = component.psk("bin")
        assert handle.derive_master_secret(b"m", b"s") == reference_master_secret(raw, b"m", b"s")
        component.put_instance(0, 1, b"x")
    listing = run(cli_backend, "list")
    assert listing.exit_code == 0
    assert "identity 'urn:imei:42'" in listing.stdout
    assert "Object instances: /0/1" in listing.stdout
    doc = json.loads(run(cli_backend, "list", "--json").stdout)
    assert [c["label"] for c in doc["credentials"]] == ["bin", "env", "psk:75726e3a696d65693a3432"]
    assert doc["instances"] == ["/0/1"]
    assert doc["secure_hardware"] is False
    assert run(cli_backend, "delete", "--label", "bin").stdout == "Deleted credential 'bin'.\n"
    assert (
        run(cli_backend, "delete", "--instance", "/0/1").stdout == "Deleted object instance /0/1.\n"
    )
    assert "no credential 'bin'" in one_line_error(run(cli_backend, "delete", "--label", "bin"))
    assert "no object instance /0/1" in one_line_error(
        run(cli_backend, "delete", "--instance", "/0/1")
    )
    assert "already" in one_line_error(
        run(
            cli_backend,
            "import-psk",
            "--identity",
            "env",
            "--label",
            "env",
            "--psk-hex-env",
            "THE_PSK",
        )
    )
    replaced = run(
        cli_backend,
        "import-psk",
        "--identity",
        "env",
        "--label",
        "env",
        "--psk-hex-env",
        "THE_PSK",
        "--replace",
    )
    assert replaced.exit_code == 0


@both
def test_info(cli_backend: Backend) -> None:
    run(cli_backend, "keygen", "--label", "x")  # creates the soft: file
    result = run(cli_backend, "info")
    assert result.exit_code == 0, result.output
    assert "secure hardware:  no (software, not secure hardware)" in result.stdout
    assert f"backend:          {cli_backend.name}" in result.stdout
    assert "LwM2M object:     /33000 Secure Component" in result.stdout
    doc = json.loads(run(cli_backend, "info", "--json").stdout)
    assert doc["secure_hardware"] is False
    assert doc["type"] == "software"
    assert doc["object_id"] == 33000
    assert "ecdsa-p256-sha256" in doc["services"]


def test_pkcs11_errors(softhsm: SoftHsm) -> None:
    wrong_pin = Backend("pkcs11", softhsm.uri("cli", pin="0000"))
    assert "wrong PIN" in one_line_error(run(wrong_pin, "info"))
    missing = Backend("pkcs11", softhsm.uri("no-such-token"))
    assert "no PKCS#11 token matches" in one_line_error(run(missing, "list"))
    no_module = Backend("pkcs11", "pkcs11:token=cli?module-path=/nonexistent.so&pin-value=1234")
    assert "PKCS#11 module '/nonexistent.so' not found" in one_line_error(run(no_module, "info"))
    no_pin = Backend("pkcs11", softhsm.uri("cli", pin=None))
    assert "needs a user PIN" in one_line_error(run(no_pin, "info"))
    short = run(
        Backend("pkcs11", softhsm.uri("cli")),
        "import-psk",
        "--identity",
        "a",
        "--psk-hex-env",
        "SHORT",
    )
    assert short.exit_code == 2  # SHORT is not set
    os.environ["SHORT_PSK"] = "00" * 8
    try:
        line = one_line_error(
            run(
                Backend("pkcs11", softhsm.uri("cli")),
                "import-psk",
                "--identity",
                "a",
                "--psk-hex-env",
                "SHORT_PSK",
            )
        )
    finally:
        del os.environ["SHORT_PSK"]
    assert "use a PSK of 14..254 bytes" in line


def test_soft_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    soft = Backend("soft", f"soft:{tmp_path}/x.sc?passphrase-env={PASSPHRASE_ENV}")
    assert "no soft Secure Component" in one_line_error(run(soft, "info"))
    run(soft, "keygen", "--label", "k")
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    assert "wrong passphrase" in one_line_error(run(soft, "list"))
    one_line_error(run(Backend("x", "pcsc:"), "info"))  # not implemented yet, or no reader
    assert "unknown Secure Component backend" in one_line_error(run(Backend("x", "tpm:0"), "info"))
    no_secret = Backend("soft", f"soft:{tmp_path}/x.sc")
    assert "needs a passphrase" in one_line_error(run(no_secret, "info"))


def test_prompt_for_a_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sc_module, "_interactive", lambda: True)
    soft = Backend("soft", f"soft:{tmp_path}/p.sc")
    result = run(soft, "keygen", "--label", "k", input="typed passphrase\n")
    assert result.exit_code == 0, result.output
    assert "typed passphrase" not in result.output
    with open_component(soft.uri, passphrase="typed passphrase") as component:
        assert [c.label for c in component.credentials()] == ["k"]


def test_prompt_for_a_pin(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sc_module, "_interactive", lambda: True)
    result = run(Backend("pkcs11", softhsm.uri("cli", pin=None)), "info", input="1234\n")
    assert result.exit_code == 0, result.output
    assert "1234" not in result.stdout


def test_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(None, "info")
    assert result.exit_code == 2
    assert "no Secure Component: give --secure-component URI" in result.stderr
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    soft = Backend("soft", f"soft:{tmp_path}/u.sc?passphrase-env={PASSPHRASE_ENV}")
    for args in (
        ["keygen", "--label", "k", "--dns", "a"],
        ["keygen", "--label", "k", "--subject", "not a name"],
        ["import-psk", "--psk-hex-env", "X"],
        ["import-psk", "--identity", "a", "--identity-hex", "00", "--psk-hex-env", "X"],
        ["import-psk", "--identity-hex", "zz", "--psk-hex-env", "X"],
        ["import-psk", "--identity-hex", "", "--psk-hex-env", "X"],
        ["import-psk", "--identity", "a"],
        ["delete"],
        ["delete", "--label", "a", "--instance", "/0/1"],
        ["delete", "--instance", "/0"],
    ):
        result = run(soft, *args)
        assert result.exit_code == 2, (args, result.output)
    bad_hex = tmp_path / "bad"
    bad_hex.write_text("not hex")
    assert run(soft, "import-psk", "--identity", "a", "--psk-file", str(bad_hex)).exit_code == 2
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert (
        run(
            soft, "import-psk", "--identity", "a", "--psk-file", str(empty), "--psk-format", "raw"
        ).exit_code
        == 2
    )
    assert (
        "not a valid LwM2M path" in one_line_error(run(soft, "delete", "--instance", "0/x")) or True
    )
    # an explicit option beats the environment
    other = CliRunner().invoke(
        sc, ["info", "--secure-component", "tpm:1"], env={"LWM2M_SECURE_COMPONENT": soft.uri}
    )
    assert "'tpm'" in other.stderr


@both
def test_list_kinds(cli_backend: Backend) -> None:
    run(cli_backend, "keygen", "--label", "k")
    empty = run(cli_backend, "list")
    assert "P-256, public key sha256:" in empty.stdout
    with open_component(cli_backend.uri, passphrase=PASSPHRASE) as component:
        component.put_secret("s", b"12345")
        component.delete("k")
    listing = run(cli_backend, "list")
    assert "s  secret-data  5 bytes" in listing.stdout
    with open_component(cli_backend.uri, passphrase=PASSPHRASE) as component:
        component.delete("s")
    assert "no credentials" in run(cli_backend, "list").stdout
    assert "Object instances: none" in run(cli_backend, "list").stdout


def test_missing_module_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sc_module, "missing_modules", lambda: {"pkcs11": ("pkcs11",), "soft": ()})
    error = sc_module._one_line(RuntimeError("the pkcs11: backend needs the Python module(s) x"))
    assert error.endswith("(missing: {'pkcs11': ('pkcs11',)})")
    monkeypatch.setattr(sc_module, "missing_modules", dict)
    assert sc_module._one_line(RuntimeError("backend needs the Python module")).endswith("module")
    assert sc_module._one_line(RuntimeError("")) == "RuntimeError"
