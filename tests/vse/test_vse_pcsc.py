"""The virtual secure element through pcscd + pyscard: smartcard bootstrap (LwM2M-TS-Core
Appendix G/H), identification (SCS-2), IoT SAFE keys, channels and response chaining."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lwm2m.secure.pcsc import (
    Layout,
    PcscComponent,
    Scp03Error,
    StaticKeys,
    StatusWordError,
    iotsafe,
    parse_bootstrap_file,
    read_identification,
    read_smartcard_bootstrap,
)
from lwm2m.secure.pcsc.apdu import CommandApdu
from lwm2m.secure.pcsc.bootstrap_file import build_bootstrap_file
from lwm2m.secure.pcsc.card import Card
from lwm2m.secure.pcsc.component import KeyNotFound
from lwm2m.secure.pcsc.iso7816 import get_data, manage_channel_close, transceive
from lwm2m.vse.iotsafe_applet import tls12_prf
from lwm2m.vse.state import load_state, save_state

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "pcsc"
ANJAY = bytes.fromhex(json.loads((VECTORS / "anjay_bootstrap.json").read_text())["file"])
GP_TEST_KEYS = StaticKeys.from_hex(*["404142434445464748494A4B4C4D4E4F"] * 3)


def personalise(vse_state: Path, transport, **pkcs15) -> None:  # type: ignore[no-untyped-def]
    """Rewrite the card's personalisation and reset it through PC/SC (re-read at reset)."""
    state = load_state(vse_state)
    for key, value in pkcs15.items():
        setattr(state.pkcs15, key, value)
    save_state(state, vse_state)
    transport.reset()


@pytest.fixture
def anjay_card(vse_state: Path, transport):  # type: ignore[no-untyped-def]
    personalise(
        vse_state,
        transport,
        bootstrap=ANJAY.hex(),
        require_secure_channel=False,
        misencoded_oid=False,
        file_size=None,
    )
    return transport


def test_smartcard_bootstrap_1_1_layout(anjay_card) -> None:  # type: ignore[no-untyped-def]
    result = read_smartcard_bootstrap(anjay_card.transmit)
    assert result.data == parse_bootstrap_file(ANJAY)
    assert result.data.layout is Layout.V1_1
    assert result.file_path == bytes.fromhex("6432")
    assert result.label == "LwM2M Bootstrap"
    assert result.digest == hashlib.sha256(ANJAY).digest()
    security = result.data[0].instances[1]
    assert security.resources[0].value == "coaps://eu.iot.avsystem.cloud:5684"
    assert security.resources[3].value == b"example-psk-identity"
    # secrets never show up in the value's repr
    assert "3x@mpl3" not in repr(result)
    assert "3x@mpl3" not in repr(result.data)


def test_smartcard_bootstrap_1_0_layout_misencoded_oid_and_padding(
    vse_state: Path,
    transport,  # type: ignore[no-untyped-def]
) -> None:
    data = parse_bootstrap_file(ANJAY)
    legacy = build_bootstrap_file(list(data), layout=Layout.V1_0)
    personalise(
        vse_state,
        transport,
        bootstrap=legacy.hex(),
        misencoded_oid=True,
        file_size=len(legacy) + 40,
        require_secure_channel=False,
    )
    result = read_smartcard_bootstrap(transport.transmit)
    assert result.data.layout is Layout.V1_0
    assert [o.node for o in result.data] == [o.node for o in data]
    assert result.size == len(legacy) + 40


def test_secure_channel_appendix_h(vse_state: Path, transport) -> None:  # type: ignore[no-untyped-def]
    personalise(
        vse_state,
        transport,
        bootstrap=ANJAY.hex(),
        require_secure_channel=True,
        misencoded_oid=False,
        file_size=None,
    )
    with pytest.raises(StatusWordError) as refused:
        read_smartcard_bootstrap(transport.transmit)
    assert refused.value.sw == 0x6982
    wrong = StaticKeys.from_hex(*["00" * 16] * 3)
    with pytest.raises(Scp03Error, match="card cryptogram mismatch"):
        read_smartcard_bootstrap(transport.transmit, scp03_keys=wrong)
    result = read_smartcard_bootstrap(transport.transmit, scp03_keys=GP_TEST_KEYS)
    assert result.secured
    assert result.data == parse_bootstrap_file(ANJAY)
    # the sequence counter persisted by the card moved on with each INITIALIZE UPDATE
    assert load_state(vse_state).scp03.sequence_counter >= 2


def test_identification(transport) -> None:  # type: ignore[no-untyped-def]
    info = read_identification(transport.transmit, atr=transport.atr)
    assert info.iccid == "8988211000000000003"
    assert info.iccid_valid
    assert info.cplc is not None
    assert info.cplc.ic_serial_number == bytes.fromhex("00112233")
    assert info.card_data is not None
    assert info.card_data.gp_version == "2.3.1"
    assert info.card_data.secure_channels == ((0x03, 0x70),)
    assert info.iin == bytes.fromhex("89490001")
    assert info.cin == bytes.fromhex("0102030405060708")
    assert [k.kid for k in info.key_information] == [1, 2, 3]
    assert info.iot_safe is not None
    assert info.iot_safe.applet_id == b"LWM2M-VSE"
    assert info.as_dict()["iccid"] == "8988211000000000003"


def test_iot_safe_keys_and_secrets(transport) -> None:  # type: ignore[no-untyped-def]
    component = PcscComponent(transport.transmit, atr=transport.atr)
    info = component.info()
    assert info.backend == "pcsc"
    assert info.secure_hardware
    assert "iccid:8988211000000000003" in [str(i) for i in info.identifiers]
    assert component.identification() is component.identification()
    key = component.generate_key("device")
    assert key.label == "device"
    assert not key.key_log_permitted
    signature = key.sign(b"to be signed")
    key.public_key().verify(signature, b"to be signed", ec.ECDSA(hashes.SHA256()))
    prehashed = hashlib.sha256(b"x").digest()
    key.public_key().verify(key.sign(prehashed, prehashed=True), b"x", ec.ECDSA(hashes.SHA256()))
    # a second handle on the same container sees the same key
    assert component.key("device").public_key() == key.public_key()
    peer = ec.generate_private_key(ec.SECP256R1())
    assert key.exchange(peer.public_key()) == peer.exchange(ec.ECDH(), key.public_key())
    psk = component.psk("psk")
    assert psk.identity == b"vse-device"
    assert psk.label == "psk"
    assert not psk.key_log_permitted
    seed = bytes(range(64))
    expected = tls12_prf(iotsafe.psk_premaster(bytes(range(16))), b"master secret" + seed, 48)
    assert psk.derive_master_secret(b"master secret", seed) == expected
    assert len(component.random(300)) == 300
    assert component.read_file("psk") == b"vse-device"
    with pytest.raises(KeyNotFound):
        component.key("no-such-key")
    objects = component.objects()
    assert [k.label for k in objects.private_keys] == [b"device", b"spare"]
    assert repr(psk) == "PcscPskHandle(label='psk', identity=b'vse-device')"  # no secret
    component.close()


def test_hkdf_on_card(transport) -> None:  # type: ignore[no-untyped-def]
    card = Card(transport.transmit)
    channel = card.open_channel()
    card.send(iotsafe.select_applet(channel=channel), "SELECT")
    out = card.send(
        iotsafe.compute_hkdf(
            iotsafe.ObjectRef.by_label("psk"), b"salt", b"info", 42, channel=channel
        ),
        "HKDF",
    )
    expected = HKDF(hashes.SHA256(), 42, b"salt", b"info").derive(bytes(range(16)))
    assert out == expected
    card.close_channel(channel)


def test_logical_channels_up_to_19(transport) -> None:  # type: ignore[no-untyped-def]
    card = Card(transport.transmit)
    opened = [card.open_channel() for _ in range(19)]
    assert sorted(opened) == list(range(1, 20))
    with pytest.raises(StatusWordError):
        card.open_channel()
    # channels 4..19 use the further interindustry class (CLA 4x / Cx)
    card.send(iotsafe.select_applet(channel=17), "SELECT")
    info = iotsafe.parse_applet_info(card.send(iotsafe.get_applet_info(channel=17), "GET DATA"))
    assert info.applet_id == b"LWM2M-VSE"
    for channel in opened:
        card.close_channel(channel)
    with pytest.raises(StatusWordError):
        card.send(manage_channel_close(5), "close")


def test_get_response_and_wrong_le(transport) -> None:  # type: ignore[no-untyped-def]
    card = Card(transport.transmit)
    card.send(CommandApdu(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A000000151000000")), "SELECT")
    # 6Cxx: re-issued with the exact Le
    raw = transceive(transport.transmit, get_data(0x9F7F, le=5))
    assert raw.sw.is_success
    assert len(raw.data) == 45
    # 61xx: an object list longer than one short response is fetched by GET RESPONSE
    channel = card.open_channel()
    card.send(iotsafe.select_applet(channel=channel), "SELECT")
    raw_list = card.send(iotsafe.get_object_list(channel=channel), "GET DATA")
    assert len(iotsafe.parse_object_list(raw_list).files) == 2
    card.close_channel(channel)


def test_extended_length_read(anjay_card) -> None:  # type: ignore[no-untyped-def]
    card = Card(anjay_card.transmit)
    card.select_mf()
    card.select_fid(0x2FE2)
    response = card.exchange(CommandApdu(0x00, 0xB0, 0, 0, le=10, extended=True))
    assert response.sw.is_success
    assert len(response.data) == 10
