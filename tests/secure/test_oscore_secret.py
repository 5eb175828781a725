"""OSCORE Master Secrets kept in a Secure Component (RFC 8613 §3.2.1, LwM2M-SCS-4): the handle
fits ``lwm2m.oscore``'s seam (checked by mypy), a Security Context over it protects and verifies
the RFC 8613 Appendix C.4 request byte for byte on every backend, /21/x/0 goes into the
component through ``SecureInstanceStore`` (bound to /21/x/5), older stores' secret data still
work, nothing shows the secret, and a process memory scan finds no copy of the Master Secret
(nor, on PKCS#11, of its PRK) after import and derivations on a token or a card.

The backend-independent contract of ``import_oscore_secret`` / ``oscore_secret`` is in
``test_contract.py``."""

from __future__ import annotations

import functools
import hmac
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lwm2m.coap.message import decode
from lwm2m.errors import BadRequest
from lwm2m.model.nodes import ObjectInstance, SingleResource
from lwm2m.model.values import ResourceType
from lwm2m.oscore import (
    HkdfAlgorithm,
    OscoreParameters,
    SecurityContext,
    SoftwareMasterSecret,
    derive_key_material,
    unprotect_request,
)
from lwm2m.secure import (
    Capability,
    KeyNotFound,
    KeySizeNotSupported,
    MechanismNotSupported,
    OperationNotSupported,
    SecureComponent,
    SecureInstanceStore,
    StorageCorrupted,
    open_component,
    parse_secret_reference,
    secret_reference,
)
from lwm2m.secure.hkdf import SoftwareOscoreSecret, expand, extract
from lwm2m.secure.soft import SoftComponent
from lwm2m.secure.store import encode_instance
from lwm2m.vse.state import save_state
from oscore.test_vectors import BY_NAME, MASTER_SALT, MASTER_SECRET, REQUESTS
from vse.pcsc_env import READER_0, script

from .conftest import CARD_PIN, CARD_PIN_ENV, Backend, _pkcs11_backend, blank_card, pcsc_uri, wipe
from .memscan import scan_for
from .softhsm import SoftHsm
from .test_secret_leak_audit import PSK2, assert_clean, exception_text, log_text, shown

S, T = SingleResource, ResourceType
SHA_256 = HkdfAlgorithm.HKDF_SHA_256
C11 = BY_NAME["C.1.1"]


def oscore_instance(
    iid: int, secret: bytes | None, salt: bytes | None, sender: bytes = b""
) -> ObjectInstance:
    """A /21 OSCORE instance: 0 Master Secret, 1 Sender ID, 2 Recipient ID, 5 Master Salt."""
    resources = [S(1, T.OPAQUE, sender), S(2, T.OPAQUE, b"\x01")]
    if secret is not None:
        resources.append(S(0, T.OPAQUE, secret))
    if salt is not None:
        resources.append(S(5, T.OPAQUE, salt))
    return ObjectInstance(iid, resources)


# -- the seam, statically ------------------------------------------------------------------------

_FITS = """
from lwm2m.oscore import MasterSecret
from lwm2m.secure import OscoreSecretHandle, SecureComponent
from lwm2m.secure.hkdf import SoftwareOscoreSecret
from lwm2m.secure.pcsc.component import PcscComponent, PcscOscoreSecretHandle
from lwm2m.secure.pkcs11 import Pkcs11Component, Pkcs11OscoreSecretHandle
from lwm2m.secure.soft import SoftComponent, SoftOscoreSecretHandle


def fits(
    soft: SoftComponent,
    pkcs11: Pkcs11Component,
    pcsc: PcscComponent,
    handles: tuple[
        SoftOscoreSecretHandle,
        Pkcs11OscoreSecretHandle,
        PcscOscoreSecretHandle,
        SoftwareOscoreSecret,
    ],
    any_component: SecureComponent,
) -> list[MasterSecret]:
    components: list[SecureComponent] = [soft, pkcs11, pcsc]
    protocols: list[OscoreSecretHandle] = list(handles)
    seams: list[MasterSecret] = [*handles, *protocols, any_component.oscore_secret("x")]
    return seams if components else []
"""

_DOES_NOT_FIT = """
from lwm2m.oscore import MasterSecret
from lwm2m.secure import KeyHandle


def wrong(key: KeyHandle) -> MasterSecret:
    return key
"""


def test_handles_fit_the_oscore_seam_for_mypy(tmp_path: Path) -> None:
    """mypy --strict: every backend's handle (and the Protocol) is a ``MasterSecret``, every
    backend a ``SecureComponent``; the control, a key handle, is not a ``MasterSecret``."""
    (tmp_path / "fits.py").write_text(textwrap.dedent(_FITS))
    (tmp_path / "does_not_fit.py").write_text(textwrap.dedent(_DOES_NOT_FIT))
    result = subprocess.run(  # not in this process: mypy's modules would slow the memory scans
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(tmp_path / "fits.py"),
            str(tmp_path / "does_not_fit.py"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = result.stdout
    lines = [line for line in out.splitlines() if ": error:" in line]
    assert result.returncode == 1, out + result.stderr
    assert len(lines) == 1, out
    assert "does_not_fit.py:7: error: Incompatible return value type" in lines[0]
    assert '"KeyHandle", expected "MasterSecret"' in lines[0]


# -- Security Contexts over the component --------------------------------------------------------


def test_security_context_protects_the_rfc_8613_request(component: SecureComponent) -> None:
    """C.4: the client context (C.1.1) over the component's Master Secret protects the request
    to the RFC's bytes; the server context (C.1.2), also over the component, verifies it."""
    vector = REQUESTS[0]
    assert vector.context == "C.1.1"
    client_secret = component.import_oscore_secret("client", MASTER_SECRET, MASTER_SALT)
    client = SecurityContext(client_secret, C11.parameters(), sender_sequence_number=20)
    protected, _ = client.protect_request(decode(bytes.fromhex(vector.unprotected)))
    assert protected.encode().hex() == vector.protected
    server_secret = component.import_oscore_secret("server", MASTER_SECRET, MASTER_SALT)
    server = SecurityContext(server_secret, BY_NAME["C.1.2"].parameters())
    request, found, _ = unprotect_request(protected, lambda kid, kid_context: server)
    assert found is server
    assert request == decode(bytes.fromhex(vector.unprotected))
    # a context with another Master Salt cannot be made from this secret
    with pytest.raises(OperationNotSupported, match="another Master Salt"):
        SecurityContext(client_secret, OscoreParameters(b"", b"\x01", master_salt=b"other"))


def test_expand_is_rfc_5869() -> None:
    """The HKDF-Expand the PKCS#11 backend runs with in-token HMAC: RFC 5869 A.1 and A.2."""
    for ikm, salt, info, length, okm in (
        (
            bytes([0x0B] * 22),
            bytes(range(13)),
            bytes(range(0xF0, 0xFA)),
            42,
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        ),
        (
            bytes(range(0x50)),
            bytes(range(0x60, 0xB0)),
            bytes(range(0xB0, 0x100)),
            82,
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb"
            "41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
        ),
    ):
        mac = functools.partial(hmac.digest, extract("sha256", salt, ikm), digest="sha256")
        assert expand(mac, info, length).hex() == okm


def test_software_oscore_secret_checks_its_input() -> None:
    secret = SoftwareOscoreSecret("label", bytearray(MASTER_SECRET), memoryview(MASTER_SALT))
    assert (secret.label, secret.master_salt) == ("label", MASTER_SALT)
    assert derive_key_material(secret, C11.parameters()).sender_key.hex() == C11.sender_key
    with pytest.raises(TypeError, match="bytes"):
        SoftwareOscoreSecret("label", "text", b"")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be empty"):
        SoftwareOscoreSecret("label", b"", b"")
    with pytest.raises(ValueError, match="label"):
        SoftwareOscoreSecret("", MASTER_SECRET)


# -- PKCS#11 specifics ---------------------------------------------------------------------------


def _prk_object(component: Any, label: str, ident: bytes, prk: bytes) -> None:
    from pkcs11 import Attribute, KeyType, ObjectClass  # (the pkcs11 fixtures need it anyway)

    component._connection.session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.SHA256_HMAC,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.LABEL: label,
            Attribute.ID: ident,
            Attribute.VALUE: prk,
        }
    )


def _objects_labelled(component: Any, label: str) -> list[Any]:
    from pkcs11 import Attribute

    return list(component._connection.session.get_objects({Attribute.LABEL: label}))


def test_pkcs11_interrupted_replacement_and_damaged_id(
    pkcs11_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    component: Any = pkcs11_backend.open()
    # a crash after destroying the old PRK, before relabelling the new one
    prk = extract("sha256", MASTER_SALT, MASTER_SECRET)
    _prk_object(component, "o~pending", b"lwm2m-oscore\x01\x00\x10" + MASTER_SALT, prk)
    handle = component.oscore_secret("o")
    assert handle.master_salt == MASTER_SALT
    assert derive_key_material(handle, C11.parameters()).sender_key.hex() == C11.sender_key
    assert [(c.label, c.size, c.oscore) for c in component.credentials()] == [("o", 16, True)]
    # an HMAC key of another application is not taken for an OSCORE Master Secret
    _prk_object(component, "foreign", b"not ours", os.urandom(32))
    with pytest.raises(KeyNotFound):
        component.oscore_secret("foreign")
    assert component.delete("foreign") is False
    assert [c.label for c in component.credentials()] == ["o"]
    # ours, damaged
    _prk_object(component, "damaged", b"lwm2m-oscore\x01\x00", os.urandom(32))
    with pytest.raises(StorageCorrupted, match="damaged CKA_ID"):
        component.oscore_secret("damaged")
    with pytest.raises(StorageCorrupted):
        component.credentials()
    assert component.delete("damaged") is True
    for leftover in _objects_labelled(component, "foreign"):
        leftover.destroy()
    # tokens whose HMAC keys cannot be 32 bytes, or without CKM_SHA256_HMAC
    monkeypatch.setattr(component._connection, "hmac_key_range", (64, 512))
    with pytest.raises(KeySizeNotSupported, match="32-byte HKDF-SHA256 PRK"):
        component.import_oscore_secret("p", MASTER_SECRET, b"")
    monkeypatch.setattr(component, "capabilities", component.capabilities & ~Capability.OSCORE)
    with pytest.raises(MechanismNotSupported, match="CKM_SHA256_HMAC"):
        component.import_oscore_secret("p", MASTER_SECRET, b"")


# -- SecureInstanceStore -------------------------------------------------------------------------


def test_store_seals_the_master_secret_into_the_component(backend: Backend) -> None:
    component = backend.open()
    store = SecureInstanceStore(component)
    store.put(21, oscore_instance(0, MASTER_SECRET, MASTER_SALT))
    blob = component.get_instance(21, 0)
    assert blob is not None
    assert MASTER_SECRET not in blob
    assert MASTER_SECRET.hex().encode() not in blob
    label = store.reference(21, 0, 0)
    assert label is not None
    assert label.startswith("lwm2m:/21/0/0#")
    [listed] = component.credentials()
    assert (listed.label, listed.oscore, listed.size) == (label, True, 16)
    with pytest.raises(OperationNotSupported):
        store.secret(21, 0, 0)  # not read back
    handle = store.oscore_secret(0)
    assert handle is not None
    assert handle.label == label
    assert handle.master_salt == MASTER_SALT
    assert derive_key_material(handle, C11.parameters()).sender_key.hex() == C11.sender_key
    # no /21/x/5: the empty Master Salt (RFC 8613 §3.2; C.2.1)
    store.put(21, oscore_instance(1, MASTER_SECRET, None, sender=b"\x00"))
    unsalted = store.oscore_secret(1)
    assert unsalted is not None
    assert unsalted.master_salt == b""
    c21 = BY_NAME["C.2.1"]
    assert derive_key_material(unsalted, c21.parameters()).sender_key.hex() == c21.sender_key
    # reopened: the same credentials
    component.close()
    again = SecureInstanceStore(backend.open())
    reopened = again.oscore_secret(0)
    assert reopened is not None
    assert derive_key_material(reopened, C11.parameters()).recipient_key.hex() == (
        C11.recipient_key
    )
    assert again.oscore_secret(9) is None  # no such instance
    again.put(21, oscore_instance(2, None, MASTER_SALT))
    assert again.oscore_secret(2) is None  # no /21/x/0


def test_store_binds_the_salt_and_collects_garbage(backend: Backend) -> None:
    component = backend.open()
    store = SecureInstanceStore(component)
    store.put(21, oscore_instance(0, MASTER_SECRET, MASTER_SALT))
    stored = store.get(21, 0)
    assert stored is not None
    first = store.reference(21, 0, 0)
    # read-modify-write with the reference and the same salt keeps the credential
    store.put(21, ObjectInstance(0, {**stored.resources, 1: S(1, T.OPAQUE, b"\x07")}))
    assert store.reference(21, 0, 0) == first
    # a new salt with the old secret's reference: refused, the stored instance unchanged
    changed_salt = ObjectInstance(0, {**stored.resources, 5: S(5, T.OPAQUE, b"new salt")})
    with pytest.raises(BadRequest, match="another Master Salt than /21/0/5"):
        store.put(21, changed_salt)
    assert store.get(21, 0).resources[1].value == b"\x07"  # type: ignore[union-attr]
    # a new secret with the new salt: a new credential; the old one is garbage
    secret = os.urandom(32)
    store.put(21, oscore_instance(0, secret, b"new salt"))
    second = store.reference(21, 0, 0)
    assert second not in (None, first)
    assert store.collect_garbage() == [first]
    assert [c.label for c in component.credentials()] == [second]
    handle = store.oscore_secret(0)
    assert handle is not None
    info = bytes.fromhex(C11.info_sender_key)
    expected = SoftwareMasterSecret(secret).hkdf(SHA_256, b"new salt", info, 16)
    assert handle.hkdf(SHA_256, b"new salt", info, 16) == expected
    store.delete(21, 0)
    assert store.collect_garbage() == [second]
    assert component.credentials() == []


def test_store_serves_older_secret_data_in_software(backend: Backend) -> None:
    """A /21/x/0 that an older store kept with put_secret: served by a software HKDF over
    get_secret (documented fallback), not bound to a salt, kept by the garbage collector."""
    component = backend.open()
    label = "lwm2m:/21/0/0#01020304"
    component.put_secret(label, MASTER_SECRET)
    instance = oscore_instance(0, secret_reference(label), MASTER_SALT)
    component.put_instance(21, 0, encode_instance(21, instance))
    store = SecureInstanceStore(component)  # collects garbage: the secret data is referenced
    handle = store.oscore_secret(0)
    assert isinstance(handle, SoftwareOscoreSecret)
    assert "software" in repr(handle)
    assert MASTER_SECRET.hex() not in repr(handle)
    assert derive_key_material(handle, C11.parameters()).sender_key.hex() == C11.sender_key
    with pytest.raises(TypeError, match="pickled"):
        handle.__reduce__()
    # its salt is not bound: the instance may change /21/x/5 and keep the reference
    store.put(21, oscore_instance(0, secret_reference(label), b""))
    unsalted = store.oscore_secret(0)
    assert unsalted is not None
    assert unsalted.master_salt == b""
    assert [c.label for c in component.credentials()] == [label]
    # a reference to nothing at all
    component.put_instance(
        21, 1, encode_instance(21, oscore_instance(1, secret_reference("lwm2m:/21/1/0#0"), b""))
    )
    with pytest.raises(KeyNotFound):
        store.oscore_secret(1)


def test_store_string_salt_and_parsed_reference(backend: Backend) -> None:
    store = SecureInstanceStore(backend.open())
    instance = ObjectInstance(
        0, [S(0, T.OPAQUE, MASTER_SECRET), S(1, T.OPAQUE, b""), S(5, T.STRING, "salt")]
    )
    store.put(21, instance)
    stored = store.get(21, 0)
    assert stored is not None
    reference = stored.resources[0].value  # type: ignore[union-attr]
    assert isinstance(reference, bytes)
    assert parse_secret_reference(reference) == store.reference(21, 0, 0)
    handle = store.oscore_secret(0)
    assert handle is not None
    assert handle.master_salt == b"salt"


# -- nothing shows the secret --------------------------------------------------------------------


def test_oscore_secret_audit(backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    """The audit's recognisable secret as the Master Secret: reprs, listings, stored instances,
    every error and the debug log show neither it nor (PKCS#11) its PRK."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="lwm2m")
    salt = b"audit salt"
    prk = extract("sha256", salt, PSK2)
    component = backend.open()
    handle = component.import_oscore_secret("audit-oscore", PSK2, salt)
    store = SecureInstanceStore(component)
    store.put(21, oscore_instance(3, PSK2, salt))
    from_store = store.oscore_secret(3)
    stored = store.get(21, 3)
    assert stored is not None
    reference = stored.resources[0].value
    assert isinstance(reference, bytes)
    texts = [
        shown(v)
        for v in (
            component,
            handle,
            from_store,
            store,
            stored,
            *component.credentials(),
            SoftwareOscoreSecret("software", PSK2, salt),
        )
    ]
    info = bytes.fromhex(C11.info_sender_key)
    for call in (
        lambda: component.import_oscore_secret("audit-oscore", PSK2, salt),
        lambda: component.get_secret("audit-oscore"),
        lambda: component.oscore_secret("missing"),
        lambda: handle.hkdf(SHA_256, PSK2, info, 16),  # the secret passed as a (wrong) salt
        lambda: handle.hkdf(-99, salt, info, 16),
        lambda: handle.hkdf(SHA_256, salt, info, 10**6),
        lambda: store.put(21, oscore_instance(3, reference, b"another salt")),
    ):
        with pytest.raises(Exception) as raised:  # noqa: PT011 - each error is audited
            call()
        texts.append(exception_text(raised.value))
    texts.append(log_text(caplog))
    secrets = [PSK2, prk]
    assert_clean("\n".join(texts), secrets)
    assert sum("another Master Salt" in t for t in texts) == 2  # the errors were raised


# -- process memory scans ------------------------------------------------------------------------


def provision_oscore(component: SecureComponent) -> tuple[bytes, bytes, bytes, Any]:
    """Import a fresh Master Secret, derive with it (checked against lwm2m.oscore's software
    HKDF), return only masked copies of the secret and of its HKDF-SHA256 PRK (and the handle)."""
    secret, salt = os.urandom(16), os.urandom(8)
    mask = os.urandom(32)
    masked_secret = bytes(a ^ b for a, b in zip(mask[:16], secret, strict=True))
    masked_prk = bytes(a ^ b for a, b in zip(mask, extract("sha256", salt, secret), strict=True))
    parameters = OscoreParameters(b"\x01", b"\x02", master_salt=salt)
    expected = derive_key_material(SoftwareMasterSecret(secret), parameters)
    handle = component.import_oscore_secret("scan", secret, salt, replace=True)
    del secret
    if derive_key_material(handle, parameters) != expected:
        raise AssertionError("OSCORE key material mismatch")
    SecurityContext(handle, parameters)
    return mask, masked_secret, masked_prk, handle


def _assert_nothing_reachable(mask: bytes, masked_secret: bytes, masked_prk: bytes) -> None:
    assert scan_for(mask[:16], masked_secret) == []
    assert scan_for(mask, masked_prk) == []


def test_memory_scan_control(tmp_path: Path) -> None:
    """The soft backend keeps the Master Secret in memory (by design): the scanner finds it."""
    with SoftComponent(tmp_path / "s.sc", passphrase="p", create=True, scrypt_log2_n=10) as soft:
        mask, masked_secret, _, _ = provision_oscore(soft)
        assert scan_for(mask[:16], masked_secret)


@pytest.fixture
def memscan(softhsm: SoftHsm) -> Iterator[Backend]:
    yield from _pkcs11_backend(softhsm, "memscan")


def test_memory_scan_pkcs11(memscan: Backend) -> None:
    """After import_oscore_secret + derivations on a token, neither the Master Secret nor the
    PRK the import computed is reachable in this process."""
    component = memscan.open()
    mask, masked_secret, masked_prk, handle = provision_oscore(component)
    _assert_nothing_reachable(mask, masked_secret, masked_prk)
    assert len(handle.hkdf(SHA_256, handle.master_salt, b"info", 16)) == 16
    _assert_nothing_reachable(mask, masked_secret, masked_prk)
    component.close()
    wipe(open_component(memscan.uri))


def test_memory_scan_pcsc(
    pcscd: None, pcsc_env_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After import_oscore_secret and COMPUTE HKDF on the card, no copy of the Master Secret is
    reachable in this process (the card runs in its own process, as in test_pcsc.py)."""
    path = tmp_path / "scan.json"
    save_state(blank_card(), path)
    script("start-vse", "--port", "35963", "--state", str(path), env_dir=pcsc_env_dir)
    try:
        monkeypatch.setenv(CARD_PIN_ENV, CARD_PIN)
        component = open_component(pcsc_uri(READER_0, pin_source=f"env:{CARD_PIN_ENV}"))
        mask, masked_secret, masked_prk, handle = provision_oscore(component)
        _assert_nothing_reachable(mask, masked_secret, masked_prk)
        assert len(handle.hkdf(SHA_256, handle.master_salt, b"info", 16)) == 16
        _assert_nothing_reachable(mask, masked_secret, masked_prk)
        # the control: a reference kept on the host is found
        kept = [bytes(a ^ b for a, b in zip(mask[:16], masked_secret, strict=True)).hex()]
        assert scan_for(mask[:16], masked_secret) == ["str of 32 characters"]
        kept.clear()  # (not `del`: the frame's f_locals snapshot would keep the list)
        assert scan_for(mask[:16], masked_secret) == []
        component.close()
    finally:
        script("stop-vse", "--port", "35963", env_dir=pcsc_env_dir)
