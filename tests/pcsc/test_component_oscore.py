"""OSCORE Master Secrets on the pcsc: backend, against the in-memory virtual UICC: the COMPUTE
HKDF command the handle sends, the directory entry, cards without HKDF, size limits and a
secret container that disappeared (the contract suite, through pcscd, is in tests/secure)."""

from __future__ import annotations

import os

import cbor2
import pytest

from lwm2m.model.nodes import ObjectInstance, SingleResource
from lwm2m.model.values import ResourceType
from lwm2m.oscore import HkdfAlgorithm, SoftwareMasterSecret
from lwm2m.secure import (
    Capability,
    CredentialKind,
    KeyNotFound,
    KeySizeNotSupported,
    OperationNotSupported,
    SecureInstanceStore,
    StorageCorrupted,
)
from lwm2m.secure.hkdf import SoftwareOscoreSecret
from lwm2m.secure.pcsc import PcscComponent, iotsafe
from lwm2m.secure.pcsc.apdu import CommandApdu
from lwm2m.secure.pcsc.directory import Directory, Entry, oscore_extra
from lwm2m.secure.pcsc.errors import StatusWordError
from lwm2m.vse.uicc import VirtualUicc

from .test_component import blank, counting, default

S, T = SingleResource, ResourceType
SHA_256 = HkdfAlgorithm.HKDF_SHA_256
SECRET = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
SALT = bytes.fromhex("9e7ca92223786340")
INFO = bytes.fromhex("8540f60a634b657910")  # RFC 8613 C.1.1, the Sender Key's info


def test_compute_hkdf_command_and_result() -> None:
    """The Sender Key of RFC 8613 C.1.1 from the card: INS 4A, the secret container's id,
    ``D5`` salt, ``D6`` info, ``D3`` length (two bytes), Le = length."""
    card = VirtualUicc(blank())
    transmit, sent = counting(card)
    component = PcscComponent(transmit)
    assert Capability.OSCORE in component.capabilities
    handle = component.import_oscore_secret("oscore", SECRET, SALT)
    [entry] = card.state.iot_safe.secrets
    assert bytes.fromhex(entry["value"]) == SECRET  # on the card, in a secret container
    ident = bytes.fromhex(entry["id"])
    sent.clear()
    assert handle.hkdf(SHA_256, SALT, INFO, 16).hex() == "f0910ed7295e6ad4b54fc793154302ff"
    [apdu] = [a for a in map(CommandApdu.decode, sent) if a.ins == iotsafe.Ins.COMPUTE_HKDF]
    assert (apdu.cla & 0xF0, apdu.ins, apdu.p1, apdu.p2, apdu.le) == (0x80, 0x4A, 0, 0, 16)
    assert apdu.data == (
        bytes([0x86, len(ident)])
        + ident
        + b"\xd5\x08"
        + SALT
        + b"\xd6\x09"
        + INFO
        + b"\xd3\x02\x00\x10"
    )
    # the empty Master Salt travels as an empty D5 (RFC 5869: HashLen zeros)
    unsalted = component.import_oscore_secret("unsalted", SECRET, b"")
    assert unsalted.hkdf(SHA_256, b"", INFO, 16) == SoftwareMasterSecret(SECRET).hkdf(
        SHA_256, b"", INFO, 16
    )


def test_directory_records_the_salt_not_the_secret() -> None:
    card = VirtualUicc(blank())
    component = PcscComponent(card.process)
    component.import_oscore_secret("oscore", SECRET, SALT)
    directory = Directory.decode(component.read_file(iotsafe.ObjectRef(id=b"LW" + bytes(6))))
    entry = directory.creds["oscore"]
    assert entry.oscore
    assert entry.kind is CredentialKind.SECRET_DATA
    assert entry.object_kind is iotsafe.ObjectKind.SECRET
    assert (entry.secret_length, entry.master_salt) == (16, SALT)
    assert SECRET not in directory.encode()
    again = Directory.decode(directory.encode())
    assert again.creds == directory.creds


@pytest.mark.parametrize("extra", [None, b"", b"\x00salt"])
def test_damaged_oscore_directory_entry(extra: bytes | None) -> None:
    doc = {"v": 1, "creds": {"o": ["oscore", b"LW" + bytes(5) + b"\x09", extra]}, "inst": []}
    with pytest.raises(StorageCorrupted, match="damaged"):
        Directory.decode(bytes(8) + cbor2.dumps(doc))
    assert (
        Entry(CredentialKind.SECRET_DATA, b"LW" + bytes(6), oscore_extra(1, b"")).extra == b"\x01"
    )


def test_card_without_hkdf() -> None:
    """An applet whose key derivations lack HKDF (tag 94 = 01): no OSCORE capability; the VSE
    answers COMPUTE HKDF with 6D00."""
    card = VirtualUicc(default(key_derivations=0x01))
    component = PcscComponent(card.process)
    assert component.applet_info is not None
    assert component.applet_info.key_derivations == iotsafe.KeyDerivation.PRF_SHA256
    assert Capability.PSK in component.capabilities
    assert Capability.OSCORE not in component.capabilities
    with pytest.raises(OperationNotSupported, match="OSCORE Master Secret"):
        component.import_oscore_secret("oscore", SECRET, SALT)
    with pytest.raises(StatusWordError) as raised:
        component._call(
            lambda ch: iotsafe.compute_hkdf(
                iotsafe.ObjectRef(label=b"psk"), b"", b"", 16, channel=ch
            ),
            "COMPUTE HKDF",
        )
    assert raised.value.sw == 0x6D00
    psk = component.psk("psk")
    assert len(psk.derive_master_secret(b"master secret", bytes(64))) == 48
    no_kdf = PcscComponent(VirtualUicc(default(key_derivations=0)).process)
    assert not no_kdf.capabilities & (Capability.PSK | Capability.OSCORE)
    assert no_kdf.applet_info is not None
    assert not no_kdf.applet_info.supports(iotsafe.CryptoFunction.KEY_DERIVATION)
    with pytest.raises(StatusWordError) as raised:
        no_kdf.psk("psk").derive_master_secret(b"master secret", bytes(64))
    assert raised.value.sw == 0x6D00


def test_secret_sizes_and_a_vanished_container() -> None:
    card = VirtualUicc(blank())
    component = PcscComponent(card.process)
    with pytest.raises(KeySizeNotSupported, match=r"1\.\.255"):
        component.import_oscore_secret("big", os.urandom(256), b"")
    longest = os.urandom(255)
    handle = component.import_oscore_secret("longest", longest, b"s")
    assert handle.hkdf(SHA_256, b"s", INFO, 32) == SoftwareMasterSecret(longest).hkdf(
        SHA_256, b"s", INFO, 32
    )
    assert [(c.label, c.size, c.oscore) for c in component.credentials()] == [
        ("longest", 255, True)
    ]
    card.state.iot_safe.secrets.clear()  # the container is gone (e.g. wiped by the issuer)
    with pytest.raises(KeyNotFound, match="deleted or replaced"):
        handle.hkdf(SHA_256, b"s", INFO, 16)


def test_store_on_a_card_without_hkdf_keeps_secret_data() -> None:
    """Without Capability.OSCORE the store keeps /21/x/0 as secret data (as it did before) and
    serves it with a software HKDF: a Bootstrap-Write of /21 still works on such a card."""
    component = PcscComponent(VirtualUicc(default(key_derivations=0x01)).process)
    store = SecureInstanceStore(component)
    store.put(
        21,
        ObjectInstance(
            0,
            [
                S(0, T.OPAQUE, SECRET),
                S(1, T.OPAQUE, b""),
                S(2, T.OPAQUE, b"\x01"),
                S(5, T.OPAQUE, SALT),
            ],
        ),
    )
    [listed] = [c for c in component.credentials() if c.label.startswith("lwm2m:/21/0/0#")]
    assert (listed.kind, listed.oscore) == (CredentialKind.SECRET_DATA, False)
    handle = store.oscore_secret(0)
    assert isinstance(handle, SoftwareOscoreSecret)
    assert handle.hkdf(SHA_256, SALT, INFO, 16).hex() == "f0910ed7295e6ad4b54fc793154302ff"
