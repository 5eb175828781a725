"""The pkcs11: backend on SoftHSM2: key attributes, the in-token PRF limits, error translation,
crash-safe updates, token selection and login, and a process memory scan for the PSK."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.secure import (
    AuthenticationError,
    Capability,
    ComponentClosed,
    ComponentType,
    ComponentUnavailable,
    KeyNotFound,
    KeySizeNotSupported,
    MechanismNotSupported,
    ModuleNotFound,
    ObjectLocked,
    PinIncorrect,
    PinLocked,
    PinRequired,
    SecureComponentError,
    StorageCorrupted,
    TokenNotFound,
    open_component,
)
from lwm2m.secure.interfaces import psk_premaster
from lwm2m.secure.soft import SoftComponent

from .conftest import Backend, _pkcs11_backend, reference_master_secret, wipe
from .memscan import provision as _provision
from .memscan import scan_for
from .softhsm import SoftHsm

if os.environ.get("CI") == "true":  # a missing python-pkcs11 must fail under CI
    import pkcs11
    import pkcs11.exceptions as p11e
else:
    pkcs11 = pytest.importorskip("pkcs11")
    p11e = pytest.importorskip("pkcs11.exceptions")
from lwm2m.secure.pkcs11 import (
    ENV_PKCS11_MODULE,
    Pkcs11Component,
    map_pkcs11_error,
)

Attribute, ObjectClass, KeyType = pkcs11.Attribute, pkcs11.ObjectClass, pkcs11.KeyType


@pytest.fixture
def component(pkcs11_backend: Backend) -> Pkcs11Component:
    opened = pkcs11_backend.open()
    assert isinstance(opened, Pkcs11Component)
    return opened


def _objects(component: Pkcs11Component, **attrs: Any) -> list[Any]:
    template = {getattr(Attribute, k.upper().rstrip("_")): v for k, v in attrs.items()}
    return list(component._connection.session.get_objects(template))


# -- what the token holds ------------------------------------------------------------------------


def test_generated_key_is_sensitive_and_not_extractable(component: Pkcs11Component) -> None:
    component.generate_key("device")
    (private,) = _objects(component, class_=ObjectClass.PRIVATE_KEY, label="device")
    assert private[Attribute.SENSITIVE] is True
    assert private[Attribute.EXTRACTABLE] is False
    assert private[Attribute.ALWAYS_SENSITIVE] is True
    assert private[Attribute.NEVER_EXTRACTABLE] is True
    assert private[Attribute.TOKEN] is True
    with pytest.raises(p11e.AttributeSensitive):
        private[Attribute.VALUE]
    (public,) = _objects(component, class_=ObjectClass.PUBLIC_KEY, label="device")
    assert public[Attribute.ID] == private[Attribute.ID]


def test_psk_is_stored_as_non_extractable_premaster(component: Pkcs11Component) -> None:
    component.import_psk(b"urn:imei:1", os.urandom(16), label="psk")
    (key,) = _objects(component, class_=ObjectClass.SECRET_KEY, label="psk")
    assert key[Attribute.KEY_TYPE] == KeyType.GENERIC_SECRET
    assert key[Attribute.SENSITIVE] is True
    assert key[Attribute.EXTRACTABLE] is False
    assert key[Attribute.SIGN] is True
    assert key[Attribute.DERIVE] is False
    assert key[Attribute.ID] == b"urn:imei:1"
    assert key[Attribute.VALUE_LEN] == 2 * 16 + 4  # the RFC 4279 premaster form
    with pytest.raises(p11e.AttributeSensitive):
        key[Attribute.VALUE]


def test_imported_key_is_sensitive(component: Pkcs11Component) -> None:
    component.import_key("rpk", ec.generate_private_key(ec.SECP256R1()))
    (private,) = _objects(component, class_=ObjectClass.PRIVATE_KEY, label="rpk")
    assert private[Attribute.SENSITIVE] is True
    assert private[Attribute.EXTRACTABLE] is False
    with pytest.raises(p11e.AttributeSensitive):
        private[Attribute.VALUE]


def test_instances_are_private_data_objects(component: Pkcs11Component) -> None:
    component.put_instance(0, 1, b"blob")
    (obj,) = _objects(component, class_=ObjectClass.DATA, label="/0/1")
    assert obj[Attribute.PRIVATE] is True
    assert obj[Attribute.APPLICATION] == "lwm2m-sc:instance"
    assert obj[Attribute.VALUE] == (1).to_bytes(8, "big") + b"blob"


# -- in-token PRF limits and mechanisms ----------------------------------------------------------


def test_short_psk_is_refused_with_the_limit(component: Pkcs11Component) -> None:
    with pytest.raises(KeySizeNotSupported, match=r"14\.\.254 bytes"):
        component.import_psk(b"id", os.urandom(13))
    with pytest.raises(KeySizeNotSupported):
        component.import_psk(b"id", os.urandom(255))
    assert component.credentials() == []
    handle = component.import_psk(b"id", os.urandom(14))  # premaster of 32 bytes: the minimum
    assert len(handle.derive_master_secret(b"master secret", b"s")) == 48


def test_token_key_size_limit_is_translated(
    component: Pkcs11Component, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(component._connection, "hmac_key_range", None)
    handle = component.import_psk(b"id", os.urandom(5))  # the token refuses only at C_Sign
    with pytest.raises(KeySizeNotSupported, match="KeySizeRange"):
        handle.derive_master_secret(b"master secret", b"s")


def test_missing_mechanisms(component: Pkcs11Component, monkeypatch: pytest.MonkeyPatch) -> None:
    assert component.tls12_mechanisms == ()  # SoftHSM 2.6 offers no TLS 1.2 derivation
    monkeypatch.setattr(component, "capabilities", Capability.INSTANCE_STORE)
    with pytest.raises(MechanismNotSupported, match="CKM_SHA256_HMAC"):
        component.import_psk(b"id", os.urandom(16))
    with pytest.raises(MechanismNotSupported, match="CKM_EC_KEY_PAIR_GEN"):
        component.generate_key("k")


def test_info_and_component_type_override(softhsm: SoftHsm) -> None:
    with open_component(softhsm.uri("second")) as plain:
        info = plain.info()
    assert info.type is ComponentType.SOFTWARE
    assert not info.secure_hardware  # SoftHSM's slot has no CKF_HW_SLOT
    assert info.label == "second"
    assert info.manufacturer == "SoftHSM project"
    assert {i.scheme for i in info.identifiers} >= {"pkcs11-token-serial", "pkcs11-library"}
    with open_component(softhsm.uri("second", extra=";x-component-type=tee")) as tee:
        info = tee.info()
    assert info.type is ComponentType.TEE
    assert info.secure_hardware


# -- updates that never lose data ----------------------------------------------------------------


class _FailingSession:
    """A session proxy whose create_object fails like a full token."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def create_object(self, attrs: Any) -> Any:
        raise p11e.DeviceMemory()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def test_failed_update_keeps_the_previous_instance(
    component: Pkcs11Component, monkeypatch: pytest.MonkeyPatch
) -> None:
    component.put_instance(0, 1, b"version 1")
    component.put_secret("s", b"secret 1")
    monkeypatch.setattr(
        component._connection, "session", _FailingSession(component._connection.session)
    )
    with pytest.raises(ComponentUnavailable, match="DeviceMemory"):
        component.put_instance(0, 1, b"version 2")
    with pytest.raises(ComponentUnavailable):
        component.put_secret("s", b"secret 2", replace=True)
    monkeypatch.undo()
    assert component.get_instance(0, 1) == b"version 1"
    assert component.get_secret("s") == b"secret 1"


def test_interrupted_update_is_resolved_by_generation(component: Pkcs11Component) -> None:
    component.put_instance(0, 1, b"version 1")
    # A crash between "create generation 2" and "destroy generation 1" leaves both.
    component._connection.session.create_object(
        {
            Attribute.CLASS: ObjectClass.DATA,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.APPLICATION: "lwm2m-sc:instance",
            Attribute.LABEL: "/0/1",
            Attribute.VALUE: (2).to_bytes(8, "big") + b"version 2",
        }
    )
    assert component.get_instance(0, 1) == b"version 2"
    assert component.list_instances() == [(0, 1)]
    component.put_instance(0, 1, b"version 3")
    assert len(_objects(component, class_=ObjectClass.DATA, label="/0/1")) == 1
    assert component.get_instance(0, 1) == b"version 3"
    assert component.delete_instance(0, 1)
    assert not _objects(component, class_=ObjectClass.DATA, label="/0/1")


def test_interrupted_key_replacement_is_found(component: Pkcs11Component) -> None:
    # A crash after destroying the old PSK, before relabelling the new one.
    psk = os.urandom(16)
    component._connection.session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.LABEL: "p~pending",
            Attribute.ID: b"dev",
            Attribute.VALUE: psk_premaster(psk),
        }
    )
    assert [c.label for c in component.credentials()] == ["p"]
    handle = component.psk("p")
    assert handle.derive_master_secret(b"a", b"b") == reference_master_secret(psk, b"a", b"b")
    found = component.lookup(b"dev")
    assert found is not None
    assert found.label == "p"
    assert component.delete("p") is True
    assert component.credentials() == []


def test_damaged_objects(component: Pkcs11Component) -> None:
    component._connection.session.create_object(
        {
            Attribute.CLASS: ObjectClass.DATA,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.APPLICATION: "lwm2m-sc:instance",
            Attribute.LABEL: "/0/9",
            Attribute.VALUE: b"short",
        }
    )
    with pytest.raises(StorageCorrupted, match="damaged"):
        component.get_instance(0, 9)
    wipe_data = _objects(component, class_=ObjectClass.DATA, label="/0/9")
    wipe_data[0].destroy()
    component.generate_key("k")
    (public,) = _objects(component, class_=ObjectClass.PUBLIC_KEY, label="k")
    public.destroy()
    with pytest.raises(StorageCorrupted, match="public key"):
        component.key("k")
    assert component.delete("k")


# -- modules, tokens, PINs -----------------------------------------------------------------------


def test_module_errors(softhsm: SoftHsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PKCS11_MODULE, raising=False)
    with pytest.raises(ModuleNotFound, match="no PKCS#11 module"):
        open_component("pkcs11:token=contract?pin-value=1234")
    with pytest.raises(ModuleNotFound, match="not found"):
        open_component("pkcs11:token=contract?module-path=/nonexistent.so&pin-value=1234")
    bogus = tmp_path / "bogus.so"
    bogus.write_bytes(b"not a shared library")
    with pytest.raises(ModuleNotFound, match="cannot load"):
        open_component(f"pkcs11:token=contract?module-path={bogus}&pin-value=1234")
    with pytest.raises(ModuleNotFound, match="module-name 'nothing-here'"):
        open_component("pkcs11:token=contract?module-name=nothing-here&pin-value=1234")
    with open_component("pkcs11:token=contract?module-name=softhsm2&pin-value=1234") as byname:
        assert byname.info().label == "contract"
    monkeypatch.setenv(ENV_PKCS11_MODULE, softhsm.module)
    with open_component("pkcs11:token=contract?pin-value=1234") as byenv:
        assert byenv.info().label == "contract"


def test_token_selection(softhsm: SoftHsm, component: Pkcs11Component) -> None:
    serial = component.info().serial_number
    module = f"module-path={softhsm.module}&pin-value=1234"
    with open_component(f"pkcs11:serial={serial};model=SoftHSM%20v2?{module}") as byserial:
        assert byserial.info().label == "contract"
    with pytest.raises(TokenNotFound, match=r"initialised tokens: .*'contract'"):
        open_component(f"pkcs11:token=nope?{module}")
    with pytest.raises(TokenNotFound, match="add token= or serial="):
        open_component(f"pkcs11:manufacturer=SoftHSM%20project?{module}")
    with pytest.raises(TokenNotFound):
        open_component(f"pkcs11:token=contract;slot-id=424242?{module}")
    with pytest.raises(TokenNotFound, match="module is"):
        open_component(f"pkcs11:token=contract;library-manufacturer=ACME?{module}")
    with pytest.raises(TokenNotFound, match="version"):
        open_component(f"pkcs11:token=contract;library-version=9.9?{module}")
    ok = "library-manufacturer=SoftHSM;library-version=2.6"
    with open_component(f"pkcs11:token=contract;{ok}?{module}") as matched:
        assert matched.info().label == "contract"


def test_pins(softhsm: SoftHsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = f"pkcs11:token=second?module-path={softhsm.module}"
    with pytest.raises(PinRequired, match="pin-source"):
        open_component(base)
    with pytest.raises(PinIncorrect, match="wrong PIN"):
        open_component(base + "&pin-value=0000")
    pin_file = tmp_path / "pin"
    pin_file.write_text("1234\n")
    with open_component(f"{base}&pin-source=file:{pin_file}") as first:
        monkeypatch.setenv("SECOND_PIN", "1234")
        # A second component on the same token shares the logged-in session...
        with open_component(base + "&pin-source=env:SECOND_PIN") as second:
            second.put_secret("shared", b"x")
            assert first.get_secret("shared") == b"x"
            assert second.delete("shared")
        # ...but only with the same PIN.
        with pytest.raises(PinIncorrect, match="open session"):
            open_component(base, pin="4321")
        assert first.credentials() == []  # still logged in after the second closed
    with pytest.raises(PinRequired, match="NO_SUCH_VARIABLE"):
        open_component(base + "&pin-source=env:NO_SUCH_VARIABLE")
    with pytest.raises(PinRequired, match="cannot read"):
        open_component(f"{base}&pin-source={tmp_path / 'missing'}")
    with open_component(f"{base}&pin-source=file://localhost{pin_file}") as local:
        assert local.credentials() == []
    with pytest.raises(PinRequired, match="host"):
        open_component(f"{base}&pin-source=file://elsewhere{pin_file}")


def test_closed_component(component: Pkcs11Component) -> None:
    component.close()
    with pytest.raises(ComponentClosed):
        component.psk("x")
    assert "closed" in repr(component)


# -- error translation ---------------------------------------------------------------------------

_CASES = [
    ("PinIncorrect", PinIncorrect),
    ("PinInvalid", PinIncorrect),
    ("PinLenRange", PinIncorrect),
    ("PinLocked", PinLocked),
    ("PinExpired", AuthenticationError),
    ("UserPinNotInitialized", AuthenticationError),
    ("UserNotLoggedIn", PinRequired),
    ("UserAlreadyLoggedIn", ObjectLocked),
    ("NoSuchToken", TokenNotFound),
    ("TokenNotPresent", TokenNotFound),
    ("DeviceRemoved", TokenNotFound),
    ("MechanismInvalid", MechanismNotSupported),
    ("FunctionNotSupported", MechanismNotSupported),
    ("KeySizeRange", KeySizeNotSupported),
    ("NoSuchKey", KeyNotFound),
    ("ObjectHandleInvalid", KeyNotFound),
    ("AttributeReadOnly", ObjectLocked),
    ("AttributeSensitive", ObjectLocked),
    ("TokenWriteProtected", ObjectLocked),
    ("SessionClosed", ComponentClosed),
    ("DeviceError", ComponentUnavailable),
    ("GeneralError", ComponentUnavailable),
]


@pytest.mark.parametrize(("name", "expected"), _CASES)
def test_error_translation(name: str, expected: type[SecureComponentError]) -> None:
    error = map_pkcs11_error(getattr(p11e, name)("detail with no secrets"), "sign 'k'")
    assert type(error) is expected
    assert str(error).startswith("sign 'k': ")
    assert name in str(error)
    assert not isinstance(error, p11e.PKCS11Error)


def test_unknown_errors_stay_in_the_tree() -> None:
    error = map_pkcs11_error(p11e.DataInvalid(), "sign")
    assert type(error) is SecureComponentError
    assert str(error) == "sign: PKCS#11 error DataInvalid"


# -- memory scan ---------------------------------------------------------------------------------


@pytest.fixture
def memscan(softhsm: SoftHsm) -> Iterator[Backend]:
    yield from _pkcs11_backend(softhsm, "memscan")


def test_memory_scan_control(tmp_path: Path) -> None:
    """The scanner finds the PSK when a reference is kept — and in a software component."""
    psk = os.urandom(32)
    mask = os.urandom(32)
    masked = bytes(a ^ b for a, b in zip(mask, psk, strict=True))
    kept = {"psk": psk}
    del psk
    assert scan_for(mask, masked)
    kept["psk"] = kept["psk"].hex().encode()  # its hex, as bytes
    assert scan_for(mask, masked)
    del kept
    assert scan_for(mask, masked) == []
    # The soft backend keeps the premaster (which contains the PSK) in memory, by design.
    with SoftComponent(tmp_path / "s.sc", passphrase="p", create=True, scrypt_log2_n=10) as soft:
        mask, masked, _ = _provision(soft)
        assert scan_for(mask, masked)


def test_memory_scan_pkcs11(memscan: Backend) -> None:
    """After import_psk + derive on a token, no PSK bytes remain reachable in the process."""
    component = memscan.open()
    mask, masked, handle = _provision(component)
    assert scan_for(mask, masked) == []
    assert len(handle.derive_master_secret(b"master secret", bytes(64))) == 48
    assert scan_for(mask, masked) == []
    component.close()
    wipe(open_component(memscan.uri))
