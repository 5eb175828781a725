"""The Secure Component contract, run against every backend (soft, pkcs11 on SoftHSM2, pcsc on
the virtual secure element through pcscd).

Signatures are verified with ``cryptography``, ECDH compared with ``cryptography``'s, PSK master
secrets compared with a host-side TLS 1.2 PRF (RFC 5246 §5, §8.1; RFC 7627 §4; RFC 4279 §2),
OSCORE Master Secrets with ``lwm2m.oscore.SoftwareMasterSecret`` and the keys of RFC 8613
Appendix C.1-C.3.
"""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.dtls.credentials import PskCredential, PskStore, SigningKey
from lwm2m.oscore import HkdfAlgorithm, MasterSecret, SoftwareMasterSecret, derive_key_material
from lwm2m.secure import (
    Capability,
    ComponentClosed,
    CredentialKind,
    KeyExists,
    KeyHandle,
    KeyNotFound,
    OperationNotSupported,
    OscoreSecretHandle,
    PinIncorrect,
    PskHandle,
    SecureComponent,
)
from oscore.test_vectors import BY_NAME, MASTER_SALT, MASTER_SECRET

from .conftest import PASSPHRASE, Backend, reference_master_secret

LABELS = (b"master secret", b"extended master secret")


def _verify(key: KeyHandle, data: bytes, signature: bytes) -> None:
    key.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))


def test_is_a_secure_component(component: SecureComponent, backend: Backend) -> None:
    assert isinstance(component, SecureComponent)
    assert isinstance(component, PskStore)  # lookup(identity): a DTLS server's PSK store
    info = component.info()
    assert info.backend == backend.name
    assert info.type is backend.component_type  # SOFTWARE for soft: and SoftHSM2 alike
    assert info.secure_hardware is backend.secure_hardware
    assert ("not secure hardware" in info.description) is not backend.secure_hardware
    assert info.serial_number
    wanted = Capability.PSK | Capability.SIGN | Capability.ECDH | Capability.KEY_GENERATION
    assert wanted | Capability.INSTANCE_STORE | Capability.SECRET_DATA in component.capabilities
    assert info.capabilities == component.capabilities
    assert "ecdsa-p256-sha256" in info.services
    hardware_bound = backend.name in ("pkcs11", "pcsc")  # calls go to a token or a card
    assert component.is_blocking is hardware_bound
    assert (Capability.NON_EXTRACTABLE in component.capabilities) is hardware_bound


# -- key pairs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello", os.urandom(1000)])
def test_generate_sign_verify(component: SecureComponent, data: bytes) -> None:
    key = component.generate_key("device")
    assert isinstance(key, KeyHandle)
    assert isinstance(key, SigningKey)  # the DTLS engine's seam, structurally
    assert key.label == "device"
    assert isinstance(key.public_key().curve, ec.SECP256R1)
    _verify(key, data, key.sign(data))
    with pytest.raises(InvalidSignature):
        _verify(key, data + b"x", key.sign(data))


def test_key_survives_reopen(backend: Backend) -> None:
    with backend.open() as component:
        public = component.generate_key("device").public_key()
    with backend.open() as component:
        key = component.key("device")
        assert key.public_key() == public
        _verify(key, b"again", key.sign(b"again"))


def test_ecdh_matches_cryptography(component: SecureComponent) -> None:
    key = component.generate_key("agree")
    peer = ec.generate_private_key(ec.SECP256R1())
    shared = key.exchange(peer.public_key())
    assert shared == peer.exchange(ec.ECDH(), key.public_key())
    assert len(shared) == 32
    with pytest.raises(OperationNotSupported, match="P-256"):
        key.exchange(ec.generate_private_key(ec.SECP384R1()).public_key())


def test_import_key(component: SecureComponent) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = component.import_key("rpk", private)
    assert key.public_key() == private.public_key()
    _verify(key, b"data", key.sign(b"data"))
    peer = ec.generate_private_key(ec.SECP256R1())
    assert key.exchange(peer.public_key()) == private.exchange(ec.ECDH(), peer.public_key())
    with pytest.raises(KeyExists):
        component.import_key("rpk", ec.generate_private_key(ec.SECP256R1()))
    other = ec.generate_private_key(ec.SECP256R1())
    replaced = component.import_key("rpk", other, replace=True)
    assert replaced.public_key() == other.public_key()
    assert component.key("rpk").public_key() == other.public_key()
    assert [c.label for c in component.credentials()] == ["rpk"]
    with pytest.raises(KeyNotFound):
        key.sign(b"the replaced key")
    with pytest.raises(OperationNotSupported):
        component.import_key("p384", ec.generate_private_key(ec.SECP384R1()))


def test_labels_are_unique_across_kinds(component: SecureComponent) -> None:
    component.generate_key("taken")
    with pytest.raises(KeyExists):
        component.generate_key("taken")
    with pytest.raises(KeyExists):
        component.import_psk(b"id", bytes(16), label="taken")
    with pytest.raises(KeyExists):
        component.import_psk(b"id", bytes(16), label="taken", replace=True)  # another kind
    with pytest.raises(KeyExists):
        component.put_secret("taken", b"data")
    with pytest.raises(ValueError, match="label"):
        component.generate_key("")
    with pytest.raises(ValueError, match="label"):
        component.generate_key("x" * 129)


def test_missing_credentials(component: SecureComponent) -> None:
    for call in (component.key, component.psk, component.get_secret):
        with pytest.raises(KeyNotFound, match="nothing"):
            call("nothing")
    assert component.lookup(b"nobody") is None
    assert component.delete("nothing") is False


# -- PSKs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [14, 16, 32, 64])
@pytest.mark.parametrize("label", LABELS)
def test_psk_master_secret_matches_reference(
    component: SecureComponent, length: int, label: bytes
) -> None:
    psk = os.urandom(length)
    handle = component.import_psk(b"urn:imei:490154203237518", psk)
    assert isinstance(handle, PskHandle)
    assert isinstance(handle, PskCredential)  # the DTLS engine's seam, structurally
    assert handle.identity == b"urn:imei:490154203237518"
    seed = os.urandom(64) if label == b"master secret" else os.urandom(32)  # randoms | hash
    assert handle.derive_master_secret(label, seed) == reference_master_secret(psk, label, seed)


def test_psk_survives_reopen_and_lookup(backend: Backend) -> None:
    psk = os.urandom(16)
    with backend.open() as component:
        handle = component.import_psk(b"dev1", psk)
        assert handle.label == "psk:64657631"
        component.import_psk(b"dev2", os.urandom(16), label="second")
    with backend.open() as component:
        for found in (component.psk("psk:64657631"), component.lookup(b"dev1")):
            assert found is not None
            assert found.identity == b"dev1"
            assert found.label == "psk:64657631"
            assert found.derive_master_secret(b"master secret", b"s") == reference_master_secret(
                psk, b"master secret", b"s"
            )
        second = component.lookup(b"dev2")
        assert second is not None
        assert second.label == "second"


def test_psk_replace(component: SecureComponent) -> None:
    old = component.import_psk(b"dev", os.urandom(16), label="p")
    with pytest.raises(KeyExists):
        component.import_psk(b"dev", os.urandom(16), label="p")
    psk = os.urandom(20)
    new = component.import_psk(b"dev-2", psk, label="p", replace=True)
    assert component.psk("p").identity == b"dev-2"
    assert component.psk("p").derive_master_secret(b"a", b"b") == reference_master_secret(
        psk, b"a", b"b"
    )
    assert new.derive_master_secret(b"a", b"b") == reference_master_secret(psk, b"a", b"b")
    with pytest.raises(KeyNotFound):
        old.derive_master_secret(b"a", b"b")
    assert [(c.label, c.identity) for c in component.credentials()] == [("p", b"dev-2")]


# -- secret data and listing ---------------------------------------------------------------------


def test_secret_data(backend: Backend) -> None:
    with backend.open() as component:
        component.put_secret("oscore", b"\x00master secret\xff")
        with pytest.raises(KeyExists):
            component.put_secret("oscore", b"other")
        component.put_secret("oscore", b"replaced", replace=True)
        component.put_secret("empty", b"")
    with backend.open() as component:
        assert component.get_secret("oscore") == b"replaced"
        assert component.get_secret("empty") == b""
        assert component.delete("oscore") is True
        with pytest.raises(KeyNotFound):
            component.get_secret("oscore")


def test_credentials_and_delete(component: SecureComponent) -> None:
    key = component.generate_key("k")
    component.import_psk(b"\x00\xff", os.urandom(16), label="p")
    component.put_secret("s", b"12345")
    listed = component.credentials()
    assert [(c.label, c.kind) for c in listed] == [
        ("k", CredentialKind.KEY_PAIR),
        ("p", CredentialKind.PSK),
        ("s", CredentialKind.SECRET_DATA),
    ]
    assert listed[0].public_key == key.public_key()
    assert listed[1].identity == b"\x00\xff"
    assert listed[2].size == 5
    assert component.delete("k") is True
    assert component.delete("k") is False
    with pytest.raises(KeyNotFound):
        component.key("k")
    with pytest.raises(KeyNotFound):
        key.sign(b"deleted")
    assert component.delete("p") is True
    assert component.delete("s") is True
    assert component.credentials() == []


# -- object instances ----------------------------------------------------------------------------


def test_instances(backend: Backend) -> None:
    with backend.open() as component:
        assert component.list_instances() == []
        assert component.get_instance(0, 1) is None
        component.put_instance(0, 1, b"security 1")
        component.put_instance(0, 0, b"security 0")
        component.put_instance(21, 0, b"oscore")
        component.put_instance(0, 1, b"security 1, updated")
        component.put_instance(3442, 65534, bytes(5000))
        assert component.list_instances() == [(0, 0), (0, 1), (21, 0), (3442, 65534)]
        assert component.list_instances(0) == [(0, 0), (0, 1)]
        assert component.list_instances(7) == []
    with backend.open() as component:
        assert component.get_instance(0, 1) == b"security 1, updated"
        assert component.get_instance(3442, 65534) == bytes(5000)
        assert component.delete_instance(0, 0) is True
        assert component.delete_instance(0, 0) is False
        assert component.list_instances(0) == [(0, 1)]
        with pytest.raises(ValueError, match="65534"):
            component.put_instance(0, 65535, b"")
        with pytest.raises(ValueError, match="object id"):
            component.put_instance(-1, 0, b"")
        with pytest.raises(TypeError):
            component.put_instance(0, 2, "text")  # type: ignore[arg-type]


# -- life cycle and secrets ----------------------------------------------------------------------


def test_wrong_secret(backend: Backend) -> None:
    backend.open().close()  # exists (soft: created)
    with pytest.raises(PinIncorrect, match="wrong"):
        backend.open(**backend.wrong_secret())


def test_closed(backend: Backend) -> None:
    component = backend.open()
    key = component.generate_key("k")
    psk = component.import_psk(b"i", os.urandom(16))
    with component:
        pass
    component.close()  # idempotent
    assert "closed" in repr(component)
    for call in (
        component.info,
        component.credentials,
        component.list_instances,
        lambda: component.key("k"),
        lambda: key.sign(b"x"),
        lambda: psk.derive_master_secret(b"a", b"b"),
        lambda: component.put_instance(0, 0, b""),
    ):
        with pytest.raises(ComponentClosed):
            call()


def test_reprs_show_no_secret(backend: Backend) -> None:
    psk = os.urandom(16)
    private = ec.generate_private_key(ec.SECP256R1())
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    component = backend.open()
    handles = [
        component.import_psk(b"dev", psk),
        component.generate_key("k"),
        component.import_key("imported", private),
    ]
    component.put_secret("s", psk)
    texts = [repr(component), str(component), *map(repr, handles), repr(component.info())]
    texts += map(repr, component.credentials())
    forbidden = [psk.hex(), psk.hex().upper(), repr(psk), scalar.hex(), PASSPHRASE, "1234"]
    for text in texts:
        for secret in forbidden:
            assert secret not in text, text
    assert "label=" in repr(handles[0])
    assert "public_sha256=" in repr(handles[1])
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki.hex() not in repr(handles[2])  # a fingerprint, not the key


# -- OSCORE Master Secrets (RFC 8613 §3.2.1) ----------------------------------------------------

#: HKDF SHA-256 / SHA-512 (COSE, RFC 8152 §11.1).
SHA_256, SHA_512 = HkdfAlgorithm.HKDF_SHA_256, HkdfAlgorithm.HKDF_SHA_512


@pytest.mark.parametrize("name", ["C.1.1", "C.1.2", "C.2.1", "C.3.1"])
def test_oscore_secret_derives_the_rfc_8613_keys(component: SecureComponent, name: str) -> None:
    """RFC 8613 Appendix C.1-C.3 (salted, unsalted, with an ID Context): the handle's HKDF is
    SoftwareMasterSecret's, and the derived Sender Key, Recipient Key and Common IV are the
    RFC's."""
    vector = BY_NAME[name]
    assert Capability.OSCORE in component.capabilities
    assert "oscore-master-secret" in component.info().services
    handle = component.import_oscore_secret("oscore", MASTER_SECRET, vector.master_salt)
    assert isinstance(handle, OscoreSecretHandle)
    assert isinstance(handle, MasterSecret)  # lwm2m.oscore's credential seam, structurally
    assert handle.label == "oscore"
    assert handle.master_salt == vector.master_salt
    info = bytes.fromhex(vector.info_sender_key)
    software = SoftwareMasterSecret(MASTER_SECRET)
    for length in (16, 13, 32, 33, 100):
        assert handle.hkdf(SHA_256, vector.master_salt, info, length) == software.hkdf(
            SHA_256, vector.master_salt, info, length
        )
    keys = derive_key_material(component.oscore_secret("oscore"), vector.parameters())
    assert keys.sender_key.hex() == vector.sender_key
    assert keys.recipient_key.hex() == vector.recipient_key
    assert keys.common_iv.hex() == vector.common_iv


def test_oscore_secret_is_bound_to_its_salt_and_algorithm(
    component: SecureComponent, backend: Backend
) -> None:
    handle = component.import_oscore_secret("oscore", MASTER_SECRET, MASTER_SALT)
    info = bytes.fromhex(BY_NAME["C.1.1"].info_sender_key)
    for salt in (b"", MASTER_SALT[:-1], MASTER_SALT + b"\x00", bytes(8)):
        with pytest.raises(OperationNotSupported, match="another Master Salt"):
            handle.hkdf(SHA_256, salt, info, 16)
    with pytest.raises(OperationNotSupported, match="unknown HKDF algorithm"):
        handle.hkdf(-12, MASTER_SALT, info, 16)
    with pytest.raises(ValueError, match="8160"):
        handle.hkdf(SHA_256, MASTER_SALT, info, 255 * 32 + 1)
    with pytest.raises(ValueError, match="HKDF output"):
        handle.hkdf(SHA_256, MASTER_SALT, info, 0)
    expected = SoftwareMasterSecret(MASTER_SECRET).hkdf(SHA_512, MASTER_SALT, info, 16)
    if backend.name == "soft":  # the secret is in memory: any hash
        assert handle.hkdf(SHA_512, MASTER_SALT, info, 16) == expected
    else:  # a PRK of HKDF SHA-256 on the token; IoT SAFE's HKDF is SHA-256
        with pytest.raises(OperationNotSupported, match="HKDF SHA-256 only"):
            handle.hkdf(SHA_512, MASTER_SALT, info, 16)


def test_oscore_secret_survives_reopen_replace_and_delete(backend: Backend) -> None:
    info = bytes.fromhex(BY_NAME["C.1.1"].info_sender_key)
    with backend.open() as component:
        component.import_oscore_secret("o", MASTER_SECRET, MASTER_SALT)
        with pytest.raises(KeyExists):
            component.import_oscore_secret("o", os.urandom(16), MASTER_SALT)
    with backend.open() as component:
        reopened = component.oscore_secret("o")
        assert reopened.master_salt == MASTER_SALT
        assert reopened.hkdf(SHA_256, MASTER_SALT, info, 16).hex() == BY_NAME["C.1.1"].sender_key
        other = os.urandom(35)
        new = component.import_oscore_secret("o", other, b"new salt", replace=True)
        expected = SoftwareMasterSecret(other).hkdf(SHA_256, b"new salt", info, 16)
        assert new.hkdf(SHA_256, b"new salt", info, 16) == expected
        assert component.oscore_secret("o").hkdf(SHA_256, b"new salt", info, 16) == expected
        with pytest.raises(KeyNotFound):
            reopened.hkdf(SHA_256, MASTER_SALT, info, 16)  # a handle of the replaced secret
        listed = component.credentials()
        assert [(c.label, c.kind, c.size, c.oscore) for c in listed] == [
            ("o", CredentialKind.SECRET_DATA, 35, True)
        ]
        with pytest.raises(OperationNotSupported, match="not read back"):
            component.get_secret("o")  # never read back, unlike put_secret data
        assert component.delete("o") is True
        assert component.credentials() == []
        with pytest.raises(KeyNotFound):
            new.hkdf(SHA_256, b"new salt", info, 16)
        with pytest.raises(KeyNotFound, match="nothing"):
            component.oscore_secret("nothing")


def test_oscore_secret_labels_and_kinds(component: SecureComponent) -> None:
    component.put_secret("data", b"plain secret data")
    component.import_psk(b"id", os.urandom(16), label="psk")
    for label in ("data", "psk"):
        with pytest.raises(KeyExists):
            component.import_oscore_secret(label, MASTER_SECRET, b"", replace=True)
        with pytest.raises(KeyNotFound):
            component.oscore_secret(label)  # another kind of credential
    component.import_oscore_secret("oscore", MASTER_SECRET, b"")
    with pytest.raises(KeyExists, match="OSCORE"):
        component.put_secret("oscore", b"x", replace=True)
    with pytest.raises(KeyExists):
        component.import_psk(b"id2", os.urandom(16), label="oscore", replace=True)
    with pytest.raises(KeyNotFound):
        component.psk("oscore")
    assert component.get_secret("data") == b"plain secret data"
    with pytest.raises(ValueError, match="must not be empty"):
        component.import_oscore_secret("empty", b"", b"")
    with pytest.raises(ValueError, match="label"):
        component.import_oscore_secret("", MASTER_SECRET, b"")
    assert [c.label for c in component.credentials()] == ["data", "oscore", "psk"]


def test_oscore_secret_closed_and_repr(backend: Backend) -> None:
    secret, salt = os.urandom(16), os.urandom(8)
    component = backend.open()
    handle = component.import_oscore_secret("oscore", secret, salt)
    texts = [repr(handle), str(handle), repr(component), *map(repr, component.credentials())]
    try:
        handle.hkdf(SHA_256, b"wrong salt", b"info", 16)
    except OperationNotSupported as exc:
        texts.append(str(exc))
    for text in texts:
        for shown in (secret.hex(), secret.hex().upper(), repr(secret), salt.hex(), repr(salt)):
            assert shown not in text, text
    assert "label='oscore'" in repr(handle)
    component.close()
    with pytest.raises(ComponentClosed):
        handle.hkdf(SHA_256, salt, b"info", 16)
    with pytest.raises(ComponentClosed):
        component.oscore_secret("oscore")
