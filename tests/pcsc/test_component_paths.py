"""Error and edge paths of the ``pcsc:`` component (:mod:`lwm2m.secure.pcsc.component`) and the
card layer (:mod:`lwm2m.secure.pcsc.card`): status words mid-operation, a card pulled out
mid-operation, malformed IoT SAFE responses, containers issued without labels, id collisions,
peer containers, identification gaps and the session sharing of ``open_uri``.

The card is the VSE card OS in memory (:class:`~lwm2m.vse.uicc.VirtualUicc`, no pcscd) behind a
transmit that can rewrite or refuse single commands; ``open_uri`` runs over a stand-in for
:class:`~lwm2m.secure.pcsc.transport.PcscTransport` serving the same in-memory card. Every error
must be a project error (rooted in ``Lwm2mError``) naming the command and credential, never the
key material."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.errors import Lwm2mError
from lwm2m.secure import (
    AuthenticationError,
    Capability,
    ComponentNotFound,
    CredentialKind,
    KeyExists,
    KeyNotFound,
    ObjectLocked,
    OperationNotSupported,
    PinIncorrect,
    PinRequired,
    StorageCorrupted,
)
from lwm2m.secure.pcsc import PcscComponent, iotsafe
from lwm2m.secure.pcsc import component as component_module
from lwm2m.secure.pcsc import transport as transport_module
from lwm2m.secure.pcsc.ber import encode_ber_tlv
from lwm2m.secure.pcsc.card import (
    Card,
    parse_card_recognition_data,
    parse_key_information,
    read_smartcard_bootstrap,
)
from lwm2m.secure.pcsc.component import DIRECTORY_ID, PEER_ID, PcscKeyHandle, open_uri
from lwm2m.secure.pcsc.errors import (
    CardMemoryFull,
    CardRemoved,
    IotSafeError,
    StatusWordError,
)
from lwm2m.secure.pcsc.iotsafe import ObjectRef
from lwm2m.secure.pcsc.pkcs15 import encode_oid
from lwm2m.secure.pcsc.session import CardSession
from lwm2m.vse.iotsafe_applet import tls12_prf
from lwm2m.vse.state import VseState
from lwm2m.vse.uicc import VirtualUicc

Rule = Callable[[bytes], bytes | None]

# IoT SAFE instructions (IoT.05) and the VSE administrative extension
GET_DATA, GENERATE, READ_PUBLIC_KEY = 0xCB, 0xB9, 0xCD
SIGN_INIT, SIGN_UPDATE, COMPUTE_DH, COMPUTE_PRF = 0x2A, 0x2B, 0x46, 0x48
GET_RANDOM, READ_FILE, CREATE, PUT, DELETE = 0x84, 0xB0, 0xE0, 0xE2, 0xE4
SCALAR = 0x3C8F1A2B4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F8


class FaultyCard:
    """The VSE card OS; each rule may answer a command in the card's place (or raise)."""

    def __init__(self, state: VseState | None = None) -> None:
        state = state if state is not None else VseState()
        state.t0_get_response = False  # whole responses: rules see and replace them at once
        self.state = state
        self.card = VirtualUicc(state)
        self.rules: list[Rule] = []
        self.sent: list[bytes] = []

    def __call__(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        for rule in self.rules:
            answer = rule(apdu)
            if answer is not None:
                return answer
        return self.card.process(apdu)

    def on(self, ins: int, answer: bytes | Exception, *, when: Rule | None = None) -> None:
        """Answer the applet command ``ins`` (proprietary class) with ``answer``."""

        def rule(apdu: bytes) -> bytes | None:
            if not apdu[0] & 0x80 or apdu[1] != ins or (when is not None and not when(apdu)):
                return None
            if isinstance(answer, Exception):
                raise answer
            return answer

        self.rules.append(rule)

    def sent_ins(self, ins: int) -> list[bytes]:
        return [a for a in self.sent if a[0] & 0x80 and a[1] == ins]


def scalar_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(SCALAR, ec.SECP256R1())


def assert_no_secret(error: BaseException, *secrets: bytes) -> None:
    for text in (str(error), repr(error), repr(error.args)):
        for secret in secrets:
            assert secret.hex() not in text.lower()
            assert secret.hex().upper() not in text


def verify(handle: Any, data: bytes, signature: bytes) -> None:
    handle.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))


# -- status words and a pulled card in the middle of an operation --------------------------------


def test_a_refused_signature_update_closes_the_card_signing_session() -> None:
    card = FaultyCard()
    component = PcscComponent(card)
    key = component.generate_key("k")
    card.on(SIGN_UPDATE, b"\x6a\x80")
    with pytest.raises(
        StatusWordError, match=r"^IoT SAFE COMPUTE SIGNATURE 'k': card answered 6A80"
    ):
        key.sign(b"message")
    closes = [a for a in card.sent_ins(SIGN_INIT) if a[2] == 0x01]
    assert len(closes) == 1  # COMPUTE SIGNATURE Init P1 01: the session is closed again
    card.rules.clear()
    verify(key, b"message", key.sign(b"message"))  # the channel is usable again
    assert component.card_present()


@pytest.mark.parametrize(
    ("sw", "kind", "text"),
    [
        (0x6A88, KeyNotFound, "PSK 'psk' was deleted or replaced"),
        (0x6982, PinRequired, "needs PIN1"),
        (0x6983, AuthenticationError, "card answered 6983"),
        (0x6985, ObjectLocked, "card answered 6985"),
        (0x6D00, OperationNotSupported, "card answered 6D00"),
        (0x6A84, CardMemoryFull, "card answered 6A84"),
        (0x6F00, StatusWordError, "card answered 6F00"),
    ],
)
def test_status_words_of_compute_prf_map_onto_the_contract(
    sw: int, kind: type[Exception], text: str
) -> None:
    card = FaultyCard(VseState.default())
    component = PcscComponent(card)
    psk = component.psk("psk")
    seed = os.urandom(32)
    card.on(COMPUTE_PRF, sw.to_bytes(2, "big"))
    with pytest.raises(kind, match=text) as error:
        psk.derive_master_secret(b"master secret", seed)
    assert isinstance(error.value, Lwm2mError)
    assert "COMPUTE PRF 'psk'" in str(error.value) or sw == 0x6A88
    assert_no_secret(error.value, seed, bytes(range(16)))
    assert component.card_present()  # a status word does not end the session


def test_card_pulled_out_during_a_signature_ends_the_session() -> None:
    card = FaultyCard()
    component = PcscComponent(card)
    key = component.generate_key("k")
    card.on(SIGN_UPDATE, CardRemoved("the card was removed"))
    digest = hashlib.sha256(b"to sign").digest()
    with pytest.raises(CardRemoved, match=r"^IoT SAFE COMPUTE SIGNATURE 'k': the card was rem"):
        key.sign(b"to sign")
    assert not component.card_present()
    card.rules.clear()
    for call in (lambda: key.sign(b"x"), component.credentials, lambda: component.random(4)):
        with pytest.raises(CardRemoved, match="open the component again") as later:
            call()
        assert_no_secret(later.value, digest)
    # a new session (the card is back, reset) works and still holds the key
    card.card.reset()
    again = PcscComponent(card)
    verify(key, b"x", again.key("k").sign(b"x"))


def test_card_pulled_out_while_importing_a_key_leaves_no_credential_and_no_secret() -> None:
    card = FaultyCard()
    component = PcscComponent(card)
    private = scalar_key()
    scalar = SCALAR.to_bytes(32, "big")
    card.on(PUT, CardRemoved("reader gone"), when=lambda a: a[3] == 0xC1)
    with pytest.raises(CardRemoved, match=r"PUT OBJECT key pair 'k'") as error:
        component.import_key("k", private)
    assert_no_secret(error.value, scalar)
    assert error.value.__cause__ is None
    assert error.value.__suppress_context__
    card.rules.clear()
    card.card.reset()
    again = PcscComponent(card)
    assert again.credentials() == []
    orphans = [e for e in card.state.iot_safe.private_keys if e["id"].startswith("4C57")]
    assert len(orphans) == 1  # the created container survived the pulled card...
    again.put_secret("s", b"x")
    assert not [e for e in card.state.iot_safe.private_keys if e["id"].startswith("4C57")]
    # ...and the next session's first change collected it


def test_an_interrupted_first_directory_write_does_not_brick_the_card() -> None:
    card = FaultyCard(VseState.default())
    component = PcscComponent(card)
    card.on(PUT, CardRemoved("card pulled"), when=lambda a: DIRECTORY_ID in a)
    with pytest.raises(CardRemoved):
        component.put_secret("s", b"0123456789")
    card.rules.clear()
    card.card.reset()
    again = PcscComponent(card)
    assert [c.label for c in again.credentials()] == ["psk"]  # the issuer PSK is still usable
    again.put_secret("t", b"x")
    assert again.get_secret("t") == b"x"


def test_a_failed_directory_write_keeps_the_replaced_psk() -> None:
    card = FaultyCard()
    component = PcscComponent(card)
    old = os.urandom(16)
    handle = component.import_psk(b"ep", old, label="p")
    secrets_before = list(card.state.iot_safe.secrets)
    card.on(PUT, b"\x6a\x84", when=lambda a: DIRECTORY_ID in a)
    new = os.urandom(16)
    with pytest.raises(CardMemoryFull, match=r"^PUT OBJECT directory") as error:
        component.import_psk(b"ep", new, label="p", replace=True)
    assert_no_secret(error.value, old, new)
    assert card.state.iot_safe.secrets == secrets_before  # the new container was deleted
    card.rules.clear()
    seed = os.urandom(32)
    n = (16).to_bytes(2, "big")
    wanted = tls12_prf(n + bytes(16) + n + old, b"master secret" + seed, 48)
    assert handle.derive_master_secret(b"master secret", seed) == wanted
    found = component.lookup(b"ep")
    assert found is not None
    assert found.derive_master_secret(b"master secret", seed) == wanted


# -- malformed IoT SAFE responses -----------------------------------------------------------------


def test_a_generated_key_off_the_curve_is_refused_and_its_container_removed() -> None:
    card = FaultyCard()
    component = PcscComponent(card)
    off_curve = b"\x04" + bytes(31) + b"\x01" + bytes(31) + b"\x01"
    card.on(GENERATE, iotsafe.encode_public_key_data(off_curve) + b"\x90\x00")
    with pytest.raises(IotSafeError, match="public key is not a P-256 point") as error:
        component.generate_key("k")
    assert isinstance(error.value, Lwm2mError)
    managed = [e for e in card.state.iot_safe.private_keys if e["id"].startswith("4C57")]
    assert managed == []  # the new container was discarded
    card.rules.clear()
    with pytest.raises(KeyNotFound):
        component.key("k")
    verify(component.generate_key("k"), b"m", component.key("k").sign(b"m"))


@pytest.mark.parametrize(
    ("ins", "answer", "call", "text"),
    [
        (COMPUTE_PRF, bytes(47), "prf", "expected 48 bytes, got 47"),
        (COMPUTE_DH, bytes(31), "dh", "expected 32 bytes, got 31"),
        (SIGN_UPDATE, encode_ber_tlv(0x34, b"\x00"), "sign", r"no computed signature \(33\)"),
        (SIGN_UPDATE, b"\x33\x05\x01", "sign", "malformed BER-TLV"),
        (GET_DATA, b"\xc1\x10\x84", "list", "malformed BER-TLV"),
    ],
)
def test_malformed_responses_are_iot_safe_errors(
    ins: int, answer: bytes, call: str, text: str
) -> None:
    state = VseState.default()
    state.iot_safe.private_keys[0]["key"] = format(SCALAR, "064x")
    card = FaultyCard(state)
    component = PcscComponent(card)
    key = component.key("device")
    psk = component.psk("psk")
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    when = (lambda a: a[2] == 0x01) if ins == GET_DATA else None  # P1 01: the object list
    card.on(ins, answer + b"\x90\x00", when=when)
    component._session.issuer = None  # read the object list again
    calls: dict[str, Callable[[], object]] = {
        "prf": lambda: psk.derive_master_secret(b"master secret", b"seed"),
        "dh": lambda: key.exchange(peer),
        "sign": lambda: key.sign(b"m"),
        "list": component.credentials,
    }
    with pytest.raises(IotSafeError, match=text) as error:
        calls[call]()
    assert_no_secret(error.value, SCALAR.to_bytes(32, "big"), bytes(range(16)))


def test_malformed_applet_information_closes_the_channel_again() -> None:
    card = FaultyCard()
    card.on(GET_DATA, b"\x10\x02\x01\x90\x00", when=lambda a: a[2] == 0x00)
    with pytest.raises(IotSafeError, match="applet info"):
        PcscComponent(card)
    assert card.card.channels.keys() == {0}


def test_a_malformed_issuer_public_key_is_refused() -> None:
    state = VseState.default()
    state.iot_safe.private_keys[0]["key"] = format(SCALAR, "064x")
    card = FaultyCard(state)
    card.on(READ_PUBLIC_KEY, encode_ber_tlv(0x34, b"\x04\x01") + b"\x90\x00")
    component = PcscComponent(card)
    with pytest.raises(IotSafeError, match="not an uncompressed EC point"):
        component.key("device")


# -- issuer containers without labels, stale caches, kinds -----------------------------------------


def test_issuer_containers_without_labels_or_identity_files() -> None:
    state = VseState()
    state.iot_safe.private_keys = [
        {"id": "05", "label": "", "key": format(SCALAR, "064x"), "type": 0x13, "usage": 1}
    ]
    state.iot_safe.secrets = [
        {"id": "21", "label": "", "value": "11" * 16},
        {"id": "22", "label": "lonely", "value": "22" * 16},
    ]
    card = FaultyCard(state)
    component = PcscComponent(card)
    listed = {c.label: c for c in component.credentials()}
    assert sorted(listed) == ["iot-safe-id:05", "iot-safe-id:21", "lonely"]
    assert listed["iot-safe-id:05"].kind is CredentialKind.KEY_PAIR
    assert listed["iot-safe-id:05"].public_key == scalar_key().public_key()
    assert listed["iot-safe-id:21"].identity == b"\x21"  # no label: the container id
    assert listed["lonely"].identity == b"lonely"  # no identity file: the label
    assert len(card.sent_ins(READ_PUBLIC_KEY)) == 1  # the issuer key's public half, read once
    key = component.key("iot-safe-id:05")
    assert key.ref == ObjectRef(id=b"\x05")
    verify(key, b"m", key.sign(b"m"))
    psk = component.lookup(b"\x21")
    assert psk is not None
    assert psk.label == "iot-safe-id:21"
    n = (16).to_bytes(2, "big")
    wanted = tls12_prf(n + bytes(16) + n + b"\x11" * 16, b"master secret" + b"s", 48)
    assert psk.derive_master_secret(b"master secret", b"s") == wanted
    with pytest.raises(ObjectLocked, match="issuer container"):
        component.delete("iot-safe-id:05")


def test_key_handle_repr_shows_a_fingerprint_only_once_known() -> None:
    state = VseState.default()
    state.iot_safe.private_keys[0]["key"] = format(SCALAR, "064x")
    card = FaultyCard(state)
    component = PcscComponent(card)
    handle = PcscKeyHandle(component, ObjectRef(label=b"device"))
    assert handle.label == "device"
    assert "public_sha256" not in repr(handle)  # nothing read from the card yet
    assert not card.sent_ins(READ_PUBLIC_KEY)
    assert handle.public_key() == scalar_key().public_key()
    assert "public_sha256=" in repr(handle)
    assert format(SCALAR, "064x") not in repr(handle).lower()


def test_generate_key_into_an_issuer_container_filled_meanwhile() -> None:
    card = FaultyCard(VseState.default())
    mine = PcscComponent(card)
    assert [c.label for c in mine.credentials()] == ["psk"]  # 'device' cached as empty
    other = PcscComponent(card)  # another session (process) fills it
    filled = other.generate_key("device")
    with pytest.raises(KeyExists, match="'device' exists already"):
        mine.generate_key("device")
    assert mine.key("device").public_key() == filled.public_key()


def test_lookups_of_the_wrong_kind_are_key_not_found() -> None:
    component = PcscComponent(FaultyCard())
    component.import_psk(b"ep", bytes(16), label="p")
    component.generate_key("k")
    component.put_secret("s", b"data")
    for call, text in (
        (lambda: component.key("p"), "no key pair labelled 'p'"),
        (lambda: component.key("s"), "no key pair labelled 's'"),
        (lambda: component.psk("k"), "no PSK labelled 'k'"),
        (lambda: component.get_secret("k"), "no secret data labelled 'k'"),
    ):
        with pytest.raises(KeyNotFound, match=text):
            call()


@pytest.mark.parametrize("extra", [None, b"\x04" + bytes(64)], ids=["missing", "off-curve"])
def test_a_key_entry_without_a_usable_point_is_a_damaged_directory(extra: bytes | None) -> None:
    state = VseState()
    doc = {"v": 1, "creds": {"k": ["key", b"LW123456", extra]}, "inst": []}
    data = b"change!!" + cbor2.dumps(doc)
    state.iot_safe.files = [
        {"id": DIRECTORY_ID.hex(), "label": "", "data": data.hex(), "usage": 1, "admin": True}
    ]
    component = PcscComponent(FaultyCard(state))
    with pytest.raises(StorageCorrupted, match="directory"):
        component.credentials()


# -- files, ids, peers ---------------------------------------------------------------------------


def test_a_file_read_ending_with_6b00_at_a_block_boundary() -> None:
    card = FaultyCard()
    component = PcscComponent(card)
    data = os.urandom(0xE0)
    component.put_secret("s", data)
    card.on(READ_FILE, b"\x6b\x00", when=lambda a: a[2:4] == b"\x00\xe0")
    assert component.get_secret("s") == data
    card.rules.clear()
    container = component._session.directory.creds["s"].container  # type: ignore[union-attr]
    card.on(READ_FILE, b"\x6b\x00", when=lambda a: a[2:4] == b"\x00\x00" and container in a)
    with pytest.raises(StatusWordError, match=r"READ FILE secret data 's': card answered 6B00"):
        component.get_secret("s")


@pytest.mark.parametrize("call", ["read_file", "random"])
def test_a_card_answering_without_data_does_not_hang_the_host(call: str) -> None:
    card = FaultyCard(VseState.default())
    component = PcscComponent(card)
    answered: list[int] = []

    def empty(apdu: bytes) -> bytes | None:
        if apdu[0] & 0x80 and apdu[1] in (READ_FILE, GET_RANDOM):
            answered.append(1)
            if len(answered) > 100:  # the host would loop for ever: stop it here
                raise CardRemoved("stopped after 100 empty answers")
            return b"\x90\x00"
        return None

    card.rules.append(empty)
    with pytest.raises(IotSafeError):
        component.read_file("psk") if call == "read_file" else component.random(16)


def test_create_object_id_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    card = FaultyCard()
    component = PcscComponent(card)
    # another process made the directory between our read and our CREATE OBJECT
    made: list[bytes] = []

    def directory_race(apdu: bytes) -> bytes | None:
        if apdu[0] & 0x80 and apdu[1] == CREATE and DIRECTORY_ID in apdu and not made:
            made.append(apdu)
            assert card.card.process(apdu)[-2:] == b"\x90\x00"
            return b"\x6a\x89"
        return None

    card.rules.append(directory_race)
    component.put_secret("a", b"1")
    assert made
    assert component.get_secret("a") == b"1"
    # a random id already taken, then one equal to the directory's: drawn again
    card.rules.clear()
    taken: list[bytes] = []

    def first_taken(apdu: bytes) -> bytes | None:
        if apdu[0] & 0x80 and apdu[1] == CREATE and DIRECTORY_ID not in apdu and not taken:
            taken.append(apdu)
            return b"\x6a\x89"
        return None

    card.rules.append(first_taken)
    draws = iter([bytes(6), os.urandom(6), os.urandom(6)])
    real = os.urandom
    monkeypatch.setattr(
        component_module.os, "urandom", lambda n: next(draws) if n == 6 else real(n)
    )
    component.put_secret("b", b"2")
    creates = card.sent_ins(CREATE)[-2:]
    assert creates[0] == taken[0]
    assert creates[0] != creates[1]
    assert DIRECTORY_ID not in creates[1]  # the all-zero draw was skipped, not sent
    assert component.get_secret("b") == b"2"
    # every draw taken: no free id
    card.rules[:] = [lambda a: b"\x6a\x89" if a[0] & 0x80 and a[1] == CREATE else None]
    monkeypatch.setattr(component_module.os, "urandom", real)
    with pytest.raises(StorageCorrupted, match="no free container id"):
        component.put_secret("c", b"3")


def test_peer_containers() -> None:
    # an explicit peer container
    card = FaultyCard(VseState.default())
    component = PcscComponent(card, peer_container="peer")
    key = component.generate_key("device")
    peer = ec.generate_private_key(ec.SECP256R1())
    shared = peer.exchange(ec.ECDH(), key.public_key())
    assert key.exchange(peer.public_key()) == shared
    assert key.exchange(peer.public_key()) == shared  # again, through the cached choice
    assert card.state.iot_safe.public_keys[0]["point"] is not None
    # the managed peer container another session made is found by its id
    blank = FaultyCard()
    first = PcscComponent(blank)
    first.generate_key("k").exchange(peer.public_key())
    second = PcscComponent(blank)
    wanted = peer.exchange(ec.ECDH(), second.key("k").public_key())
    assert second.key("k").exchange(peer.public_key()) == wanted
    assert second.key("k").exchange(peer.public_key()) == wanted  # the container, cached
    assert [e["id"] for e in blank.state.iot_safe.public_keys] == [PEER_ID.hex().upper()]
    # a plain IoT.05 card without any public key container cannot do ECDH
    state = VseState.default()
    state.iot_safe.public_keys = []
    state.iot_safe.admin_extension = False
    plain = PcscComponent(FaultyCard(state))
    device = plain.generate_key("device")
    with pytest.raises(OperationNotSupported, match="peer=LABEL"):
        device.exchange(peer.public_key())
    # a peer container named in the URI that the card lacks
    missing = PcscComponent(FaultyCard(VseState.default()), peer_container="nope")
    with pytest.raises(KeyNotFound, match="COMPUTE DH 'device'"):
        missing.generate_key("device").exchange(peer.public_key())


# -- identification, PIN, plumbing ---------------------------------------------------------------


def test_info_of_a_card_with_little_identification_data() -> None:
    card = FaultyCard()
    no_iccid = lambda a: b"\x6a\x82" if a[1] == 0xA4 and a[5:7] == b"\x2f\xe2" else None  # noqa: E731
    no_cin = lambda a: b"\x6a\x88" if a[1] == 0xCA and a[2:4] == b"\x00\x45" else None  # noqa: E731
    card.rules += [no_iccid, no_cin]
    info = PcscComponent(card).info()
    cplc = bytes.fromhex(card.state.cplc)
    assert info.serial_number == cplc[12:16].hex().upper()  # the CPLC IC serial number
    schemes = [i.scheme for i in info.identifiers]
    assert "iccid" not in schemes
    assert "cin" not in schemes
    assert "iin" in schemes
    # a card without ICCID, issuer security domain or ATR: hardly anything to report
    bare = FaultyCard()
    isd = bytes.fromhex("A000000151000000")
    no_isd = lambda a: b"\x6a\x82" if a[1] == 0xA4 and a[5:13] == isd else None  # noqa: E731
    bare.rules += [no_iccid, no_isd]
    component = PcscComponent(bare)
    assert component.atr == b""
    assert component.aid == iotsafe.IOT_SAFE_AID
    info = component.info()
    assert [i.scheme for i in info.identifiers] == ["iot-safe-applet"]
    assert (info.serial_number, info.manufacturer, info.model, info.platform_version) == (
        "",
        "",
        "",
        "",
    )
    assert info.firmware_version.startswith("IoT SAFE ")


def test_pin_verification_edge_cases() -> None:
    state = VseState()
    state.pin1 = "2468"
    card = FaultyCard(state)
    card.rules.append(lambda a: b"\x6a\x86" if a[1] == 0x20 else None)
    with pytest.raises(AuthenticationError, match=r"^VERIFY PIN: card answered 6A86") as error:
        PcscComponent(card, pin="2468")
    assert "2468" not in str(error.value)
    assert card.card.channels.keys() == {0}  # the failed opener released its channel
    card.rules.clear()
    session = CardSession(card)
    first = PcscComponent(pin="2468", _session=session)
    session.users += 1  # a second user of the same session, as open_uri shares it
    with pytest.raises(PinIncorrect, match="differs from the PIN this process verified") as other:
        PcscComponent(pin="1357", _session=session)
    assert "1357" not in str(other.value)
    assert first.credentials() == []  # the session stays usable for the first user
    first.close()


# -- open_uri: session sharing over a transport stand-in ------------------------------------------


class FakeTransport:
    """Serves the in-memory card where pcscd would (what ``open_uri`` needs of a transport)."""

    cards: list[FaultyCard] = []
    opened: list[FakeTransport] = []

    def __init__(self, reader: object = None, *, atr: object = None, atr_text: str = "") -> None:
        self.card = self.cards[0]
        self.reader: str | None = None
        self.atr = b""
        self.closed = False
        self.opened.append(self)

    def connect(self, timeout: float) -> None:
        self.reader = "Fake PCD 00 00"
        self.atr = self.card.card.atr

    def transmit(self, apdu: bytes) -> bytes:
        return self.card(apdu)

    def present(self) -> bool:
        return not self.closed

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_pcscd(monkeypatch: pytest.MonkeyPatch) -> type[FakeTransport]:
    monkeypatch.setattr(transport_module, "PcscTransport", FakeTransport)
    monkeypatch.setattr(FakeTransport, "cards", [])
    monkeypatch.setattr(FakeTransport, "opened", [])
    return FakeTransport


def test_open_uri_refuses_a_shared_session_without_the_applet(
    fake_pcscd: type[FakeTransport],
) -> None:
    state = VseState()
    state.iot_safe.aid = "A0000005590011"
    fake_pcscd.cards.append(FaultyCard(state))
    tool = PcscComponent.open("pcsc:", require_applet=False)
    assert tool.capabilities == Capability.REMOTE_ADMIN  # scripts need no applet
    # an applet-less session has no channel, so it is never shared: the opener that needs
    # the applet makes its own session, which refuses (and releases its connection)
    with pytest.raises(ComponentNotFound, match="no IoT SAFE applet with AID A0000005590010"):
        open_uri("pcsc:")
    assert tool._session.users == 1
    assert fake_pcscd.opened[1].closed
    assert tool.identification().iccid == state.iccid
    tool.close()
    assert all(t.closed for t in fake_pcscd.opened)


def test_open_uri_race_keeps_the_session_registered_first(
    fake_pcscd: type[FakeTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    card = FaultyCard()
    fake_pcscd.cards.append(card)
    first = open_uri("pcsc:")
    # another thread registered its session just after this one found none
    monkeypatch.setattr(component_module, "join", lambda key: None)
    second = open_uri("pcsc:")
    assert second._session is first._session
    assert first._session.users == 2
    loser = fake_pcscd.opened[1]
    assert loser.closed  # the duplicate connection was released...
    assert card.card.channels.keys() == {0, first._session.channel}  # ...with its channel
    second.close()
    assert not fake_pcscd.opened[0].closed
    first.close()
    assert fake_pcscd.opened[0].closed


# -- the card layer (lwm2m.secure.pcsc.card) -----------------------------------------------------


def test_card_select_path_and_reads() -> None:
    sent: list[bytes] = []

    def transmit(apdu: bytes) -> bytes:
        sent.append(apdu)
        return b"\x90\x00"

    Card(transmit).select_path(b"\x3f\x00\x2f\x00")
    assert (
        sent[-1][5 : 5 + sent[-1][4]] == b"\x2f\x00"
    )  # from the MF: the MF's own id is not repeated
    # the end of a file of unknown size: 6B00 after data, or a 6282 short read
    answers = iter([b"\x01\x02\x90\x00", b"\x6b\x00"])
    assert Card(lambda a: next(answers), read_chunk=2).read_binary_all(None) == b"\x01\x02"
    answers = iter([b"\x01\x02\x62\x82"])
    assert Card(lambda a: next(answers), read_chunk=4).read_binary_all(None) == b"\x01\x02"
    with pytest.raises(StatusWordError, match="READ BINARY: card answered 6B00"):
        Card(lambda a: b"\x6b\x00").read_binary_all(None)
    # a linear fixed file of unknown record count stops at 254 records
    assert len(Card(lambda a: b"\x01\x90\x00").read_records(None)) == 254
    # GET DATA with several objects is returned as is
    two = encode_ber_tlv(0x42, b"\x01") + encode_ber_tlv(0x45, b"\x02")
    assert Card(lambda a: two + b"\x90\x00").get_data(0x0042) == two


def test_bootstrap_read_errors_are_status_words_even_if_closing_fails() -> None:
    # EF.DIR refused with a status word other than 6A82: reported, not guessed around
    with pytest.raises(StatusWordError, match=r"SELECT 2F00: card answered 6982"):
        read_smartcard_bootstrap(
            lambda a: b"\x69\x82" if a[1] == 0xA4 and a[5:7] == b"\x2f\x00" else b"\x90\x00"
        )

    # the ODF read fails, and closing the channel afterwards fails with a foreign exception
    def transmit(apdu: bytes) -> bytes:
        if apdu[1] == 0xA4 and apdu[5:7] == b"\x2f\x00":
            return b"\x6a\x82"  # no EF.DIR: the default PKCS#15 AID
        if apdu[1] == 0x70 and apdu[2] == 0x00:
            return b"\x01\x90\x00"
        if apdu[1] == 0x70:
            raise RuntimeError("reader driver crashed")
        if apdu[1] == 0xB0:
            return b"\x69\x82"
        return b"\x90\x00"

    with pytest.raises(StatusWordError, match="READ BINARY: card answered 6982"):
        read_smartcard_bootstrap(transmit)


def test_a_transparent_ef_dir_names_the_pkcs15_application() -> None:
    aid = bytes.fromhex("A000000063504B43532D3135")
    template = encode_ber_tlv(0x61, encode_ber_tlv(0x4F, aid))
    fcp = encode_ber_tlv(
        0x62, encode_ber_tlv(0x82, b"\x01") + encode_ber_tlv(0x80, len(template).to_bytes(2, "big"))
    )
    sent: list[bytes] = []

    def transmit(apdu: bytes) -> bytes:
        sent.append(apdu)
        if apdu[1] == 0xA4 and apdu[5:7] == b"\x2f\x00":
            return fcp + b"\x90\x00"
        if apdu[1] == 0xB0:
            return template + b"\x90\x00"
        if apdu[1] == 0x70:
            return (b"\x01" if apdu[2] == 0x00 else b"") + b"\x90\x00"
        if apdu[1] == 0xA4 and apdu[2] == 0x04:
            return b"\x6a\x82"  # the application is gone: the read fails after EF.DIR
        return b"\x90\x00"

    with pytest.raises(
        StatusWordError, match=f"SELECT AID {aid.hex().upper()}: card answered 6A82"
    ):
        read_smartcard_bootstrap(transmit)
    assert sent[-1][1] == 0x70  # the channel was closed again


def test_card_recognition_data_and_key_information_edge_cases() -> None:
    plain = encode_ber_tlv(
        0x73,
        encode_ber_tlv(0x60, encode_ber_tlv(0x06, encode_oid("1.2.3.4")))  # not GP's arc
        + encode_ber_tlv(0x64, encode_ber_tlv(0x04, b"\x00"))  # no OID inside
        + encode_ber_tlv(0x64, encode_ber_tlv(0x06, encode_oid("1.2.3")))  # not an SCP OID
        + encode_ber_tlv(0x64, encode_ber_tlv(0x06, bytes.fromhex("2A864886FC6B0403"))),
    )
    crd = parse_card_recognition_data(plain)
    assert crd.gp_version is None
    assert crd.secure_channels == ()
    assert crd.card_id_scheme is None
    assert crd.configuration is None
    keys = parse_key_information(bytes.fromhex("C00401308810") + encode_ber_tlv(0xC1, b"\x00"))
    assert [(k.kid, k.kvn) for k in keys] == [(1, 0x30)]
