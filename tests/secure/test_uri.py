"""Backend selection by URI: RFC 7512 PKCS#11 URIs, soft: URIs, lazy backends, redaction."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from lwm2m.secure import (
    BackendNotAvailable,
    ComponentType,
    InvalidSecureComponentUri,
    PinRequired,
    SecureComponentError,
    log_secret,
    missing_modules,
    open_component,
    redact_uri,
)
from lwm2m.secure import uri as uri_module
from lwm2m.secure.uri import Pkcs11Uri, SoftUri, scheme_of

# -- RFC 7512 ------------------------------------------------------------------------------------

# Examples in the style of RFC 7512 §3.3.
RFC_EXAMPLES = [
    ("pkcs11:", {}),
    ("pkcs11:object=my-pubkey;type=public", {"object": "my-pubkey", "type": "public"}),
    (
        "pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
        {"object": "my-key", "type": "private", "pin_source": "file:/etc/token"},
    ),
    (
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;"
        "manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;"
        "id=%69%95%3E%5C%F4%BD%EC%91;serial=",
        {
            "token": "The Software PKCS#11 Softtoken",
            "manufacturer": "Snake Oil, Inc.",
            "model": "1.0",
            "object": "my-certificate",
            "type": "cert",
            "id": bytes.fromhex("69953e5cf4bdec91"),
            "serial": "",
        },
    ),
    (
        "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
        {
            "token": "Software PKCS#11 softtoken",
            "manufacturer": "Snake Oil, Inc.",
            "pin_value": "the-pin",
        },
    ),
    ("pkcs11:slot-description=Sun%20Metaslot", {"slot_description": "Sun Metaslot"}),
    (
        "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token;"
        "library-version=1.23",
        {
            "library_manufacturer": "Snake Oil, Inc.",
            "library_description": "Soft Token",
            "library_version": "1.23",
        },
    ),
    (
        "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
        {"token": "A name with a substring %;", "object": "my-certificate", "type": "cert"},
    ),
    (
        "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;"
        "type=cert",
        {"token": "Name with a small A with acute: á", "object": "my-certificate", "type": "cert"},
    ),
    (
        "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token&vendor-bbb=value-b",
        None,
    ),
    (
        "pkcs11:slot-id=2;slot-manufacturer=Snake?module-name=mypkcs11&module-path=/usr/lib/p.so",
        {
            "slot_id": 2,
            "slot_manufacturer": "Snake",
            "module_name": "mypkcs11",
            "module_path": "/usr/lib/p.so",
        },
    ),
    ("PKCS11:TOKEN=x", {"token": "x"}),
]


@pytest.mark.parametrize(("text", "expected"), RFC_EXAMPLES)
def test_parse(text: str, expected: dict[str, object] | None) -> None:
    if expected is None:  # vendor attributes must start with x- (RFC 7512 §2.3)
        with pytest.raises(InvalidSecureComponentUri, match="vendor-aaa"):
            Pkcs11Uri.parse(text)
        return
    uri = Pkcs11Uri.parse(text)
    for name, value in expected.items():
        assert getattr(uri, name) == value
    again = Pkcs11Uri.parse(str(uri).replace("pin-value=REDACTED", "pin-value=the-pin"))
    assert again == uri


def test_vendor_attributes_and_format() -> None:
    uri = Pkcs11Uri.parse("pkcs11:token=t;x-component-type=TEE?x-note=a%20b")
    assert uri.vendor == {"x-component-type": "TEE", "x-note": "a b"}
    assert uri.component_type is ComponentType.TEE
    assert Pkcs11Uri.parse("pkcs11:token=t").component_type is None
    assert str(uri) == "pkcs11:token=t;x-component-type=TEE;x-note=a%20b"
    assert "pin-value=REDACTED" in str(Pkcs11Uri(pin_value="secret"))
    assert "secret" not in repr(Pkcs11Uri(pin_value="secret"))
    assert repr(Pkcs11Uri.parse("pkcs11:x-pin=4321")) == "Pkcs11Uri('pkcs11:x-pin=REDACTED')"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("pkcs11:token=a;token=b", "twice"),
        ("pkcs11:token=a?pin-value=1&pin-value=2", "twice"),
        ("pkcs11:x-a=1;x-a=2", "twice"),
        ("pkcs11:x-a=1?x-a=2", "twice"),
        ("pkcs11:tokn=a", "unknown PKCS#11 URI path attribute 'tokn'"),
        ("pkcs11:?pin=1", "unknown PKCS#11 URI query attribute 'pin'"),
        ("pkcs11:token", "name=value"),
        ("pkcs11:=a", "name=value"),
        ("pkcs11:type=key", "type must be one of"),
        ("pkcs11:slot-id=abc", "slot-id"),
        ("pkcs11:library-version=v1", "library-version"),
        ("pkcs11:token=%zz", "percent-encoding"),
        ("pkcs11:token=%ff", "UTF-8"),
        ("pkcs11:?pin-source=file:/p&pin-value=1", "not both"),
        ("pkcs11:x-component-type=toaster", "x-component-type"),
        ("soft:x", "not a pkcs11: URI"),
        ("no scheme", "not a Secure Component URI"),
    ],
)
def test_parse_errors(text: str, match: str) -> None:
    with pytest.raises(InvalidSecureComponentUri, match=match):
        Pkcs11Uri.parse(text)


def test_resolve_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("4321\r\n")
    assert Pkcs11Uri(pin_value="1").resolve_pin("explicit") == "explicit"
    assert Pkcs11Uri(pin_value="1").resolve_pin() == "1"
    assert Pkcs11Uri(pin_source=f"file:{pin_file}").resolve_pin() == "4321"
    assert Pkcs11Uri(pin_source=str(pin_file)).resolve_pin() == "4321"
    assert Pkcs11Uri(pin_source=f"file://{pin_file}").resolve_pin() == "4321"
    monkeypatch.setenv("THE_PIN", "777")
    assert Pkcs11Uri(pin_source="env:THE_PIN").resolve_pin() == "777"
    with pytest.raises(PinRequired):
        Pkcs11Uri().resolve_pin()


# -- soft: ---------------------------------------------------------------------------------------


def test_soft_uri(tmp_path: Path) -> None:
    assert SoftUri.parse("soft:sc.bin") == SoftUri(Path("sc.bin"))
    parsed = SoftUri.parse(f"soft:{tmp_path}/a%20b.sc?key-env=K")
    assert parsed.path == tmp_path / "a b.sc"
    assert parsed.key_env == "K"
    assert SoftUri.parse("soft:~/x.sc").path == Path.home() / "x.sc"
    for text, match in [
        ("soft:", "needs a file path"),
        ("soft:?passphrase-env=X", "needs a file path"),
        ("soft:a?passphrase-env=X&key-env=Y", "not both"),
        ("soft:a?passphrase=secret", "unknown soft: attribute"),
        ("soft:a?passphrase-env=", "environment variable name"),
        ("pkcs11:token=a", "not a soft: URI"),
    ]:
        with pytest.raises(InvalidSecureComponentUri, match=match):
            SoftUri.parse(text)


# -- dispatch ------------------------------------------------------------------------------------


def test_dispatch_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert scheme_of("Soft:x") == "soft"
    with pytest.raises(InvalidSecureComponentUri, match="unknown Secure Component backend 'tpm'"):
        open_component("tpm:0")
    with pytest.raises(InvalidSecureComponentUri, match="not a Secure Component URI"):
        open_component("/just/a/path")
    # pcsc: without a card (or without pcscd, or without pyscard) fails inside the error tree.
    with pytest.raises(SecureComponentError):
        open_component("pcsc:")


def test_backend_without_opener_is_not_implemented(monkeypatch: pytest.MonkeyPatch) -> None:
    backends = {**uri_module.BACKENDS, "pcsc": ("lwm2m.secure.no_such_backend", ())}
    monkeypatch.setattr(uri_module, "BACKENDS", backends)
    with pytest.raises(
        BackendNotAvailable, match=r"pcsc: backend .*GSMA IoT SAFE.* not implemented"
    ):
        open_component("pcsc:")
    backends["soft"] = ("lwm2m.secure.redact", ())  # a module without open_uri
    with pytest.raises(BackendNotAvailable, match="soft: backend is not implemented"):
        open_component("soft:x")


def test_missing_python_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "pkcs11" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert missing_modules()["pkcs11"] == ("pkcs11",)
    with pytest.raises(BackendNotAvailable, match=r"pip install 'lwm2m\[pkcs11\]'"):
        open_component("pkcs11:token=a")


def test_missing_module_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend whose import fails on a missing dependency reports the dependency."""
    backends = {**uri_module.BACKENDS, "pkcs11": ("lwm2m.secure.pkcs11", ("no_such_dep",))}
    monkeypatch.setattr(uri_module, "BACKENDS", backends)

    def failing(name: str) -> object:
        raise ModuleNotFoundError("No module named 'no_such_dep'", name="no_such_dep")

    monkeypatch.setattr(importlib, "import_module", failing)
    with pytest.raises(BackendNotAvailable, match="no_such_dep"):
        open_component("pkcs11:token=a")


# -- redaction -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("pkcs11:token=a?pin-value=1234", "pkcs11:token=a?pin-value=REDACTED"),
        ("pkcs11:x-pin=1;token=a", "pkcs11:x-pin=REDACTED;token=a"),
        (
            "pkcs11:token=a?x-so-password=s&module-path=/m",
            "pkcs11:token=a?x-so-password=REDACTED&module-path=/m",
        ),
        (
            "pkcs11:token=a?x-key-env=V&pin-source=file:/p",
            "pkcs11:token=a?x-key-env=V&pin-source=file:/p",
        ),
        ("soft:/a?passphrase-env=P", "soft:/a?passphrase-env=P"),
        ("pkcs11:object=pin-value=1", "pkcs11:object=pin-value=1"),
    ],
)
def test_redact_uri(uri: str, expected: str) -> None:
    assert redact_uri(uri) == expected


def test_log_secret() -> None:
    assert log_secret(b"\x01\x02") == "<secret: 2 bytes>"
    assert log_secret("abc") == "<secret: 3 characters>"
    assert log_secret(None) == "<no secret>"


def test_broken_backend_import_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(name: str) -> object:
        raise ModuleNotFoundError("No module named 'other'", name="other")

    monkeypatch.setattr(importlib, "import_module", failing)
    with pytest.raises(ModuleNotFoundError, match="other"):
        open_component("soft:x")


def test_secret_reference_values() -> None:
    from lwm2m.secure import parse_secret_reference, secret_reference
    from lwm2m.secure.interfaces import psk_premaster

    assert parse_secret_reference(secret_reference("a")) == "a"
    assert parse_secret_reference(b"sc-ref:\xff") is None
    assert parse_secret_reference(b"sc-ref:") is None
    from lwm2m.secure.interfaces import is_reference_form

    assert is_reference_form(b"sc-ref:")
    assert not is_reference_form(b"sc-re")
    with pytest.raises(ValueError, match=r"1\.\.65535"):
        psk_premaster(b"")
