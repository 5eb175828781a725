"""The pcsc: component's own logic against the VSE card OS in memory (no pcscd): capabilities
from the applet, issuer vs managed containers, the directory, PIN1, SCP03 on the applet
channel, full cards and error messages. The contract suite runs the same component through
pcscd (tests/secure)."""

from __future__ import annotations

import os
from collections.abc import Callable

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.secure import (
    AuthenticationError,
    Capability,
    ComponentNotFound,
    ComponentType,
    CredentialKind,
    KeyExists,
    KeyNotFound,
    ObjectLocked,
    OperationNotSupported,
    PinIncorrect,
    PinLocked,
    PinRequired,
    StorageCorrupted,
    secure_component_instance,
)
from lwm2m.secure.pcsc import CardMemoryFull, PcscComponent, StaticKeys, iotsafe
from lwm2m.secure.pcsc.component import DIRECTORY_ID, PEER_ID
from lwm2m.secure.pcsc.directory import Directory
from lwm2m.secure.pcsc.errors import SecurityStatusNotSatisfied
from lwm2m.secure.pcsc.session import CardSession
from lwm2m.vse.iotsafe_applet import tls12_prf
from lwm2m.vse.state import VseState
from lwm2m.vse.uicc import VirtualUicc

GP_KEYS = StaticKeys.from_hex(*["404142434445464748494A4B4C4D4E4F"] * 3)


def blank(**iot_safe: object) -> VseState:
    state = VseState()
    for name, value in iot_safe.items():
        setattr(state.iot_safe, name, value)
    return state


def default(**iot_safe: object) -> VseState:
    state = VseState.default()
    for name, value in iot_safe.items():
        setattr(state.iot_safe, name, value)
    return state


def counting(card: VirtualUicc) -> tuple[Callable[[bytes], bytes], list[bytes]]:
    sent: list[bytes] = []

    def transmit(apdu: bytes) -> bytes:
        sent.append(apdu)
        return card.process(apdu)

    return transmit, sent


def _verify(key: object, data: bytes, signature: bytes) -> None:
    key.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))  # type: ignore[attr-defined]


def test_capabilities_and_info() -> None:
    component = PcscComponent(VirtualUicc(blank()).process, component_type=ComponentType.ESE)
    wanted = (
        Capability.PSK
        | Capability.SIGN
        | Capability.ECDH
        | Capability.KEY_GENERATION
        | Capability.KEY_IMPORT
        | Capability.INSTANCE_STORE
        | Capability.SECRET_DATA
        | Capability.NON_EXTRACTABLE
        | Capability.OSCORE
        | Capability.REMOTE_ADMIN
    )
    assert component.capabilities == wanted
    info = component.info()
    assert info.type is ComponentType.ESE
    assert info.secure_hardware
    assert info.capabilities == wanted
    assert component.applet_info is not None
    assert component.applet_info.admin_extension == iotsafe.ADMIN_EXTENSION_VERSION
    assert secure_component_instance(info).resources[0].value == 3  # type: ignore[union-attr]
    assert "closed" not in repr(component)
    component.close()
    assert "closed" in repr(component)


def test_card_without_the_administrative_extension() -> None:
    """A plain IoT.05 card: issuer containers only, nothing to import into."""
    card = VirtualUicc(default(admin_extension=False))
    component = PcscComponent(card.process)
    caps = component.capabilities
    assert Capability.SIGN | Capability.PSK | Capability.KEY_GENERATION in caps
    assert not caps & (
        Capability.KEY_IMPORT
        | Capability.SECRET_DATA
        | Capability.INSTANCE_STORE
        | Capability.OSCORE
    )
    for call in (
        lambda: component.import_psk(b"id", bytes(16)),
        lambda: component.import_oscore_secret("o", bytes(16), b""),
        lambda: component.import_key("k", ec.generate_private_key(ec.SECP256R1())),
        lambda: component.put_secret("s", b"x"),
        lambda: component.put_instance(0, 0, b"x"),
        lambda: component.generate_key("new"),  # no empty issuer container of that label
    ):
        with pytest.raises(OperationNotSupported, match="cannot"):
            call()
    # the issuer's containers: GENERATE KEY PAIR fills an empty one, the PSK is the card's
    assert [c.label for c in component.credentials()] == ["psk"]
    key = component.generate_key("device")
    _verify(key, b"m", key.sign(b"m"))
    with pytest.raises(KeyExists):
        component.generate_key("device")
    peer = ec.generate_private_key(ec.SECP256R1())
    assert key.exchange(peer.public_key()) == peer.exchange(ec.ECDH(), key.public_key())
    listed = component.credentials()
    assert [(c.label, c.kind) for c in listed] == [
        ("device", CredentialKind.KEY_PAIR),
        ("psk", CredentialKind.PSK),
    ]
    assert listed[0].public_key == key.public_key()
    assert listed[1].identity == b"vse-device"
    psk = component.lookup(b"vse-device")
    assert psk is not None
    assert psk.label == "psk"
    seed = os.urandom(64)
    expected = tls12_prf(iotsafe.psk_premaster(bytes(range(16))), b"master secret" + seed, 48)
    assert psk.derive_master_secret(b"master secret", seed) == expected
    with pytest.raises(ObjectLocked, match="issuer container"):
        component.delete("psk")
    assert component.delete("spare") is False  # an empty container is no credential
    assert component.list_instances() == []
    assert component.get_instance(0, 0) is None


def test_issuer_labels_are_taken() -> None:
    component = PcscComponent(VirtualUicc(default()).process)
    with pytest.raises(KeyExists):
        component.import_psk(b"x", bytes(16), label="psk")
    with pytest.raises(ObjectLocked, match="not replaced"):
        component.import_psk(b"x", bytes(16), label="psk", replace=True)
    with pytest.raises(KeyExists):
        component.put_secret("psk", b"data")
    # a managed credential next to the issuer's
    component.import_psk(b"vse-device", bytes(16), label="mine")
    found = component.lookup(b"vse-device")
    assert found is not None
    assert found.label == "mine"  # managed credentials first


def test_managed_containers_and_directory() -> None:
    card = VirtualUicc(blank())
    component = PcscComponent(card.process)
    component.import_psk(b"dev", bytes(16), label="p")
    component.generate_key("k")
    component.put_secret("s", b"secret")
    component.put_instance(0, 1, b"blob")
    ids = {
        bytes.fromhex(e["id"])
        for kind in ("private_keys", "files", "secrets")
        for e in getattr(card.state.iot_safe, kind)
    }
    assert all(i[:2] == b"LW" and len(i) == 8 for i in ids)
    assert DIRECTORY_ID in ids
    # the directory holds labels and references, no secret
    (directory,) = [e for e in card.state.iot_safe.files if e["id"] == DIRECTORY_ID.hex().upper()]
    doc = cbor2.loads(bytes.fromhex(directory["data"])[8:])  # after the 8-byte change tag
    assert sorted(doc["creds"]) == ["k", "p", "s"]
    assert doc["creds"]["p"][0] == "psk"
    assert doc["creds"]["p"][2] == b"dev"
    assert bytes(16).hex() not in directory["data"]
    assert b"secret".hex() not in directory["data"]
    assert Directory.decode(bytes.fromhex(directory["data"])).instances.keys() == {(0, 1)}
    # a second component (another session) reads the same directory from the card
    other = PcscComponent(card.process)
    assert [c.label for c in other.credentials()] == ["k", "p", "s"]
    assert other.get_instance(0, 1) == b"blob"
    # each session sees the other's changes (the directory's change tag)
    other.put_secret("t", b"2")
    assert component.get_secret("t") == b"2"
    assert component.delete("t") is True
    with pytest.raises(KeyNotFound):
        other.get_secret("t")
    # a peer key container was made for ECDH only when needed
    assert not card.state.iot_safe.public_keys
    peer = ec.generate_private_key(ec.SECP256R1())
    other.key("k").exchange(peer.public_key())
    assert [e["id"] for e in card.state.iot_safe.public_keys] == [PEER_ID.hex().upper()]


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\x00",
        bytes(8),
        bytes(8) + b"\xff\x00",
        cbor2.dumps({"v": 2, "creds": {}, "inst": []}),
        cbor2.dumps({"v": 1, "creds": {"x": ["key", b"\x01", None]}, "inst": []}),
        cbor2.dumps({"v": 1, "creds": {"x": ["nope", b"LW123456", None]}, "inst": []}),
        cbor2.dumps({"v": 1, "creds": {"": ["psk", b"LW123456", b"i"]}, "inst": []}),
        cbor2.dumps({"v": 1, "creds": {}, "inst": [[0, 65535, b"LW123456"]]}),
        cbor2.dumps({"v": 1, "creds": {}, "inst": [[0, 1, b"other"]]}),
        cbor2.dumps([1]),
    ],
)
def test_damaged_directory(data: bytes) -> None:
    state = blank()
    if len(data) > 8:
        data = b"change!!" + data
    state.iot_safe.files = [
        {"id": DIRECTORY_ID.hex(), "label": "", "data": data.hex(), "usage": 1, "admin": True}
    ]
    component = PcscComponent(VirtualUicc(state).process)
    with pytest.raises(StorageCorrupted, match="directory") as damaged:
        component.credentials()
    if len(data) > 8:
        assert data[8:].hex() not in str(damaged.value)
    with pytest.raises(StorageCorrupted):
        component.import_psk(b"i", bytes(16))
    assert bytes.fromhex(state.iot_safe.files[0]["data"]) == data  # left untouched


def test_orphans_are_collected_before_the_first_change() -> None:
    state = default()
    orphan = {"id": "4C57AABBCCDDEEFF", "label": "", "data": "00", "usage": 1, "admin": True}
    state.iot_safe.files.append(orphan)
    card = VirtualUicc(state)
    component = PcscComponent(card.process)
    assert component.list_instances() == []  # reading changes nothing
    assert orphan in state.iot_safe.files
    component.put_instance(3, 0, b"x")
    assert orphan not in state.iot_safe.files
    assert {e["label"] for e in state.iot_safe.files} >= {"psk", "certificate"}  # issuer's kept


def test_card_full_and_file_too_big() -> None:
    state = blank(max_files=1, max_file_size=100)
    component = PcscComponent(VirtualUicc(state).process)
    secret = os.urandom(200)
    with pytest.raises(CardMemoryFull, match="PUT OBJECT secret data 's'") as too_big:
        component.put_secret("s", secret)
    assert isinstance(too_big.value, OperationNotSupported)
    assert secret.hex() not in str(too_big.value).lower()
    assert state.iot_safe.files == []  # the new container was removed again
    with pytest.raises(CardMemoryFull, match="CREATE OBJECT directory"):
        component.put_instance(0, 1, b"x")  # the instance fits, the directory does not
    assert state.iot_safe.files == []
    assert component.list_instances() == []


def test_interrupted_put_keeps_the_old_value() -> None:
    card = VirtualUicc(blank())
    component = PcscComponent(card.process)
    component.put_instance(0, 1, b"old" * 200)
    container = component._session.directory.instances[0, 1]  # type: ignore[union-attr]
    channel = component._session.channel
    assert channel is not None
    blocks = iotsafe.put_object(
        iotsafe.ObjectKind.FILE, iotsafe.ObjectRef(id=container), b"new" * 200, channel=channel
    )
    assert len(blocks) == 3
    for block in blocks[:-1]:  # the last block never arrives
        assert card.process(block.encode()) == b"\x90\x00"
    component.close()
    card.reset()  # power cycle: the write in progress is gone
    again = PcscComponent(card.process)
    assert again.get_instance(0, 1) == b"old" * 200


def test_stale_handles() -> None:
    component = PcscComponent(VirtualUicc(blank()).process)
    key = component.generate_key("k")
    psk = component.import_psk(b"i", bytes(16), label="p")
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    component.import_key("k", ec.generate_private_key(ec.SECP256R1()), replace=True)
    component.import_psk(b"i", bytes(16), label="p", replace=True)
    with pytest.raises(KeyNotFound, match="'k' was deleted or replaced"):
        key.sign(b"x")
    with pytest.raises(KeyNotFound, match="'k' was deleted or replaced"):
        key.exchange(peer)
    with pytest.raises(KeyNotFound, match="'p' was deleted or replaced"):
        psk.derive_master_secret(b"a", b"b")
    with pytest.raises(ValueError, match="32 bytes"):
        component.key("k").sign(b"short", prehashed=True)
    with pytest.raises(KeyNotFound):
        component.read_file("nothing")


def test_psk_sizes() -> None:
    component = PcscComponent(VirtualUicc(blank()).process)
    handle = component.import_psk(b"i", bytes(255))
    assert len(handle.derive_master_secret(b"master secret", b"s")) == 48
    with pytest.raises(OperationNotSupported, match=r"1\.\.255 bytes"):
        component.import_psk(b"i", bytes(256), label="big")
    with pytest.raises(OperationNotSupported, match=r"1\.\.255 bytes"):
        component.import_psk(b"i", b"", label="empty")


def test_pin() -> None:
    state = blank()
    state.pin1 = "2468"
    card = VirtualUicc(state)
    no_pin = PcscComponent(card.process)
    no_pin.info()  # identification and applet information need no PIN
    with pytest.raises(PinRequired, match="needs PIN1"):
        no_pin.credentials()
    for left in (2, 1):
        with pytest.raises(PinIncorrect, match=f"{left} tries left"):
            PcscComponent(card.process, pin="1111")
        assert state.pin1_tries == left
    good = PcscComponent(card.process, pin="2468")
    assert state.pin1_tries == 3  # a correct PIN resets the counter
    assert good.credentials() == []
    assert no_pin.credentials() == []  # PIN1 is verified for the card, not the channel
    for _ in range(2):
        with pytest.raises(PinIncorrect):
            PcscComponent(card.process, pin="1111")
    with pytest.raises(PinLocked, match="now blocked"):
        PcscComponent(card.process, pin="1111")
    with pytest.raises(PinLocked, match="blocked"):
        PcscComponent(card.process, pin="2468")
    with pytest.raises(PinIncorrect, match=r"4\.\.8"):
        PcscComponent(card.process, pin="12")
    with pytest.raises(AuthenticationError, match="disabled"):
        PcscComponent(VirtualUicc(blank()).process, pin="2468")
    # wrong PINs never show up in messages
    with pytest.raises(PinLocked) as locked:
        PcscComponent(card.process, pin="97531")
    assert "97531" not in str(locked.value)


def test_scp03_on_the_applet_channel() -> None:
    state = blank(admin_secure_channel=True)
    card = VirtualUicc(state)
    transmit, sent = counting(card)
    plain = PcscComponent(transmit)
    with pytest.raises(AuthenticationError, match=r"CREATE OBJECT.*SCP03 session"):
        plain.import_psk(b"i", bytes(16))
    state.pin1 = "2468"  # with PIN1 verified, 6982 can only mean the secure channel
    with pytest.raises(SecurityStatusNotSatisfied, match="CREATE OBJECT key pair 'k'"):
        PcscComponent(transmit, pin="2468").import_key("k", ec.generate_private_key(ec.SECP256R1()))
    state.pin1 = None
    secured = PcscComponent(transmit, scp03_keys=GP_KEYS)
    psk = os.urandom(16)
    handle = secured.import_psk(b"i", psk)
    key = secured.generate_key("k")
    _verify(key, b"m", key.sign(b"m"))
    # the PSK crossed the interface encrypted (C-DECRYPTION), and every command was MACed
    assert not any(psk in apdu for apdu in sent)
    seed = os.urandom(64)
    expected = tls12_prf(iotsafe.psk_premaster(psk), b"master secret" + seed, 48)
    assert handle.derive_master_secret(b"master secret", seed) == expected
    # crypto on the plain channel still works; only administration needs the secure channel
    assert plain.psk(handle.label).derive_master_secret(b"master secret", seed) == expected
    wrong = StaticKeys.from_hex(*["00" * 16] * 3)
    with pytest.raises(AuthenticationError, match="SCP03"):
        PcscComponent(transmit, scp03_keys=wrong)


def test_no_applet() -> None:
    state = blank()
    state.iot_safe.aid = "A0000005590011"
    card = VirtualUicc(state)
    with pytest.raises(ComponentNotFound, match="no IoT SAFE applet with AID A0000005590010"):
        PcscComponent(card.process)
    assert card.channels.keys() == {0}  # the channel was closed again
    component = PcscComponent(_session=CardSession(card.process, require_applet=False))
    assert component.capabilities == Capability.REMOTE_ADMIN  # the security domains remain
    assert component.applet_info is None
    info = component.info()
    assert info.firmware_version.startswith("OS ")
    assert "iot-safe-applet" not in {i.scheme for i in info.identifiers}
    with pytest.raises(ComponentNotFound, match="no IoT SAFE applet"):
        component.credentials()
    component.close()


def test_closed_session_calls() -> None:
    component = PcscComponent(VirtualUicc(blank()).process)
    session = component._session
    component.close()
    with pytest.raises(Exception, match="closed"):
        session.call(lambda ch: iotsafe.get_applet_info(channel=ch), "GET DATA")
    with pytest.raises(TypeError):
        PcscComponent()
