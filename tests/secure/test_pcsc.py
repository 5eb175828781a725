"""The pcsc: backend through pcscd and the virtual secure element: opening by URI (reader, ATR
pattern, type), shared sessions, the SCS-2 identification read from the card, SCP03 keys from
the environment, a card without the applet, a card pulled out mid-session, and a process memory
scan for the PSK (the contract suite itself runs in test_contract.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.codec import ContentFormat, codec_for
from lwm2m.model.path import Path as LwPath
from lwm2m.model.registry import default_registry
from lwm2m.secure import (
    SECURE_COMPONENT_OBJECT_ID,
    AuthenticationError,
    ComponentNotFound,
    ComponentType,
    ComponentUnavailable,
    PinIncorrect,
    open_component,
    register_secure_component_object,
    secure_component_instance,
)
from lwm2m.secure.pcsc import CardRemoved, PcscComponent
from lwm2m.vse.state import load_state, save_state
from vse.pcsc_env import READER_0, RunningVse, script, start_vse

from .conftest import CARD_PIN, CARD_PIN_ENV, Backend, blank_card, pcsc_uri, personalise
from .memscan import provision, scan_for

GP_KEY = "404142434445464748494A4B4C4D4E4F"


def test_open_by_uri(pcsc_backend: Backend, pcsc_card: RunningVse) -> None:
    reader = quote(pcsc_card.reader)
    uris = [
        f"pcsc:reader={reader};type=ese?pin-value={CARD_PIN}",
        f"pcsc:reader=1?pin-value={CARD_PIN}",  # by index
        f"pcsc:?atr=3B9F*&pin-value={CARD_PIN}",  # by ATR among the readers
        f"pcsc:pin-value={CARD_PIN}",  # the first reader holding a card
    ]
    for uri in uris:
        with open_component(uri) as component:
            assert isinstance(component, PcscComponent)
            assert pcsc_card.reader in repr(component)
            kind = ComponentType.ESE if "type=ese" in uri else ComponentType.UICC
            assert component.info().type is kind
            assert component.card_present()
        assert not component.card_present()
    with pytest.raises(ComponentNotFound, match="ATR matching '3B00\\*'"):
        open_component("pcsc:atr=3B00*")
    with pytest.raises(ComponentNotFound):
        open_component("pcsc:reader=No%20such%20reader")


def test_components_share_one_session(pcsc_backend: Backend) -> None:
    first = pcsc_backend.open()
    second = pcsc_backend.open()
    assert isinstance(first, PcscComponent)
    assert isinstance(second, PcscComponent)
    assert first._session is second._session
    key = first.generate_key("shared")
    assert second.key("shared").public_key() == key.public_key()
    # a different PIN is refused without a VERIFY that would cost a try
    with pytest.raises(PinIncorrect, match="differs"):
        pcsc_backend.open(pin="4321")
    first.close()
    signature = second.key("shared").sign(b"still open")
    key.public_key().verify(signature, b"still open", ec.ECDSA(hashes.SHA256()))
    second.close()
    with PcscComponent.open(pcsc_backend.uri) as third:  # the session was closed: a new one
        assert third._session is not first._session
        assert [c.label for c in third.credentials()] == ["shared"]


def test_info_is_read_from_the_card(pcsc_backend: Backend, pcsc_card: RunningVse) -> None:
    """SCS-2: the identification data come from the card and match its personalisation."""
    state = load_state(pcsc_card.state_path)
    with pcsc_backend.open() as component:
        info = component.info()
    assert info.type is ComponentType.UICC
    assert info.secure_hardware
    assert info.backend == "pcsc"
    assert "(secure hardware)" in info.description
    ids = {i.scheme: i.value for i in info.identifiers}
    cplc = bytes.fromhex(state.cplc)
    assert ids["iccid"] == state.iccid == info.serial_number
    assert ids["cplc"] == state.cplc.upper()
    assert ids["cplc-ic-fabricator"] == cplc[0:2].hex().upper()
    assert ids["cplc-ic-type"] == cplc[2:4].hex().upper()
    assert ids["cplc-os-id"] == cplc[4:6].hex().upper()
    assert ids["cplc-os-release-level"] == cplc[8:10].hex().upper()
    assert ids["cplc-ic-serial"] == cplc[12:16].hex().upper()
    assert ids["iin"] == state.iin.upper()
    assert ids["cin"] == state.cin.upper()
    assert ids["atr"] == state.atr.upper()
    applet = bytes.fromhex(state.iot_safe.applet_id).decode()
    assert ids["iot-safe-applet"] == f"{applet} v1"
    assert info.label == applet
    assert info.platform_version == f"GlobalPlatform 2.3.1, SCP03 i={state.scp03.i:02X}"
    assert info.firmware_version == (
        f"OS {cplc[4:6].hex().upper()} release {cplc[8:10].hex().upper()}, IoT SAFE {applet} v1"
    )
    # ... and become an instance of the Secure Component object
    instance = secure_component_instance(info)
    values = {rid: getattr(res, "value", None) for rid, res in instance.resources.items()}
    assert values[0] == ComponentType.UICC.value
    assert values[1] is True
    assert values[2] == "pcsc"
    assert values[6] == state.iccid
    identifiers = instance.resources[7].values  # type: ignore[union-attr]
    assert f"iccid:{state.iccid}" in identifiers.values()
    assert f"cplc:{state.cplc.upper()}" in identifiers.values()
    assert "ecdsa-p256-sha256" in instance.resources[10].values.values()  # type: ignore[union-attr]
    registry = default_registry()
    register_secure_component_object(registry)
    path = LwPath(SECURE_COMPONENT_OBJECT_ID, 0)
    codec = codec_for(ContentFormat.TLV)
    assert codec.decode(codec.encode(instance, path, registry), path, registry) == instance


def test_scp03_keys_from_the_environment(
    pcsc_backend: Backend, pcsc_card: RunningVse, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = blank_card()
    state.iot_safe.admin_secure_channel = True
    personalise(pcsc_card, state)
    monkeypatch.setenv("LWM2M_TEST_SCP03", GP_KEY)
    secured = pcsc_uri(pin_source=f"env:{CARD_PIN_ENV}", scp03_key_env="LWM2M_TEST_SCP03")
    with open_component(secured) as component:
        psk = os.urandom(16)
        handle = component.import_psk(b"dev", psk)
        key = component.generate_key("k")
        key.public_key().verify(key.sign(b"m"), b"m", ec.ECDSA(hashes.SHA256()))
        derived = handle.derive_master_secret(b"master secret", bytes(64))
    with pcsc_backend.open() as plain:  # no secure channel: use, but no administration
        assert plain.psk(handle.label).derive_master_secret(b"master secret", bytes(64)) == derived
        with pytest.raises(AuthenticationError, match="6982"):
            plain.import_psk(b"other", os.urandom(16))
    monkeypatch.setenv("LWM2M_TEST_SCP03", "00" * 16)
    with pytest.raises(AuthenticationError, match="SCP03"):
        open_component(secured)


def test_card_without_the_applet(pcsc_backend: Backend, pcsc_card: RunningVse) -> None:
    state = blank_card()
    state.iot_safe.aid = "A0000005590011"
    personalise(pcsc_card, state)
    with pytest.raises(ComponentNotFound, match="no IoT SAFE applet"):
        pcsc_backend.open()
    uri = pcsc_uri(pin_source=f"env:{CARD_PIN_ENV}", aid="A0000005590011")
    with open_component(uri) as component:  # the AID override
        assert component.info().label == "LWM2M-VSE"
    # card tools still identify the card and read its bootstrap file
    with PcscComponent.open(pcsc_backend.uri) as tool:
        assert tool.applet_info is None
        assert tool.identification().iccid == state.iccid
        with pytest.raises(ComponentNotFound):
            tool.credentials()


@pytest.fixture
def card_0(pcscd: None, tmp_path: Path) -> Iterator[RunningVse]:
    """A second card, on ``Virtual PCD 00 00``, that a test may pull out."""
    path = tmp_path / "card0.json"
    save_state(blank_card(), path)
    card = start_vse(path, 35963)
    yield card
    card.stop()


def test_card_removed_mid_session(card_0: RunningVse, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CARD_PIN_ENV, CARD_PIN)
    component = open_component(pcsc_uri(READER_0, pin_source=f"env:{CARD_PIN_ENV}"))
    key = component.generate_key("k")
    psk = component.import_psk(b"dev", os.urandom(16))
    assert component.card_present()
    card_0.stop()  # the card is pulled out
    card_0.wait_absent()
    assert not component.card_present()
    with pytest.raises(CardRemoved, match=r"COMPUTE SIGNATURE 'k': .*removed"):
        key.sign(b"x")
    assert isinstance(CardRemoved("x"), ComponentUnavailable)
    with pytest.raises(CardRemoved, match="open the component again"):
        psk.derive_master_secret(b"master secret", bytes(64))
    with pytest.raises(CardRemoved):
        component.credentials()
    component.close()  # no card needed to close
    with pytest.raises(ComponentNotFound):
        open_component(pcsc_uri(READER_0))


def test_memory_scan_pcsc(
    pcscd: None, pcsc_env_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After import_psk and derivations on the card, no copy of the PSK (bytes, hex, base64,
    integer) is reachable in this process. The card runs in its own process here (a card
    served from a thread of this process would hold the PSK in this process's memory)."""
    path = tmp_path / "scan.json"
    save_state(blank_card(), path)
    script("start-vse", "--port", "35963", "--state", str(path), env_dir=pcsc_env_dir)
    try:
        monkeypatch.setenv(CARD_PIN_ENV, CARD_PIN)
        component = open_component(pcsc_uri(READER_0, pin_source=f"env:{CARD_PIN_ENV}"))
        mask, masked, handle = provision(component)
        assert scan_for(mask, masked) == []
        assert len(handle.derive_master_secret(b"master secret", bytes(64))) == 48
        assert scan_for(mask, masked) == []
        # the control: a reference kept on the host is found
        kept = [bytes(a ^ b for a, b in zip(mask, masked, strict=True)).hex()]
        assert scan_for(mask, masked) == ["str of 64 characters"]
        kept.clear()  # (not `del`: the frame's f_locals snapshot would keep the list)
        assert scan_for(mask, masked) == []
        component.close()
    finally:
        script("stop-vse", "--port", "35963", env_dir=pcsc_env_dir)
