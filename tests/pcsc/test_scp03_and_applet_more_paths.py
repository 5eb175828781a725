"""More paths of SCP03 (GP Card Spec Amd D) and of the VSE's IoT SAFE applet (IoT.05), in memory
(no pcscd): refused cryptograms and MACs, ICVs, padding failures that close the session, counters,
replays; applet status words, signatures, ECDH, PRF/HKDF vectors, secrets that never come back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lwm2m.secure.pcsc import iotsafe
from lwm2m.secure.pcsc.apdu import CommandApdu, ResponseApdu
from lwm2m.secure.pcsc.ber import decode_ber_tlvs, find_tlv
from lwm2m.secure.pcsc.errors import Scp03Error, SecureChannelClosed
from lwm2m.secure.pcsc.iotsafe import ObjectKind, ObjectRef, parse_public_key, psk_premaster
from lwm2m.secure.pcsc.scp03 import (
    Constant,
    Scp03Card,
    Scp03Host,
    SecureMessaging,
    SecurityLevel,
    SessionKeys,
    StaticKeys,
    aes_cmac,
    channel_for,
    derive_session_keys,
    scp03_kdf,
)
from lwm2m.vse.iotsafe_applet import IotSafeApplet, tls12_prf
from lwm2m.vse.state import IotSafeState, VseState
from lwm2m.vse.uicc import VirtualUicc

KEYS = StaticKeys(bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48)))
SD_AID = bytes.fromhex("A000000151000000")
SESSION = SessionKeys(bytes(range(3, 19)), bytes(range(1, 17)), bytes(range(2, 18)))
PRF = json.loads((Path(__file__).parents[1] / "vectors/dtls/prf_sha256.json").read_text())
SCALAR = 0x3C8F1A2B4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F8
PEER = ec.derive_private_key(SCALAR, ec.SECP256R1())
PEER_POINT = PEER.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def aes(key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    """AES-ECB (no ``iv``) or AES-CBC encryption, independent of the module under test."""
    enc = Cipher(algorithms.AES(key), modes.CBC(iv) if iv else modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def icv(counter: int, *, response: bool) -> bytes:
    """Amd D §6.2.6/§6.2.7: AES(S-ENC, counter), with the first byte 80 for responses."""
    block = bytearray(counter.to_bytes(16, "big"))
    if response:
        block[0] = 0x80
    return aes(SESSION.s_enc, bytes(block))


def pad80(data: bytes) -> bytes:
    return data + b"\x80" + bytes(-(len(data) + 1) % 16)


def sm(level: int, counter: int = 0) -> SecureMessaging:
    return SecureMessaging(SESSION, SecurityLevel(level), counter=counter)


def initialized(level: int, i: int = 0x70) -> tuple[Scp03Host, Scp03Card, SessionKeys, bytes]:
    """Host and card after INITIALIZE UPDATE; the session keys and host cryptogram by Amd D."""
    card = Scp03Card(KEYS, SD_AID, 41, i=i)
    host = Scp03Host(KEYS, level=level)
    host.process_initialize_update(card.initialize_update(host.initialize_update()))
    assert host.card_response is not None
    challenge = host.card_response.card_challenge
    keys = derive_session_keys(KEYS, host.host_challenge, challenge)
    context = host.host_challenge + challenge
    return host, card, keys, scp03_kdf(keys.s_mac, Constant.HOST_CRYPTOGRAM, context, 64)


def handshake(level: int, *, i: int = 0x70) -> tuple[Scp03Host, Scp03Card]:
    host, card, _keys, _cryptogram = initialized(level, i)
    host.process_external_authenticate(card.external_authenticate(host.external_authenticate()))
    return host, card


def mac_only(keys: SessionKeys, level: int, cryptogram: bytes) -> CommandApdu:
    """An EXTERNAL AUTHENTICATE with a valid C-MAC, whatever its P1 and cryptogram."""
    session = SecureMessaging(keys, SecurityLevel.C_MAC)
    return session.wrap_command(CommandApdu(0x80, 0x82, level, 0, cryptogram))


# -- SCP03: handshake ---------------------------------------------------------------------------


def test_external_authenticate_is_maced_never_encrypted_and_replay_is_refused() -> None:
    host, card, keys, cryptogram = initialized(0x33)
    command = host.external_authenticate()
    assert (command.cla, command.p1, command.data[:8]) == (0x84, 0x33, cryptogram)
    header = bytes.fromhex("8482330010")
    assert command.data[8:] == aes_cmac(keys.s_mac, bytes(16) + header + cryptogram)[:8]
    assert card.external_authenticate(command).sw.value == 0x9000
    session = card.session
    assert session is not None
    assert (session.level, session.counter) == (0x33, 0)
    # the same EXTERNAL AUTHENTICATE again: nothing pending, the session stays as it was
    assert card.external_authenticate(command).sw.value == 0x6985
    assert card.session is session
    assert card.active


def test_wrong_host_cryptogram_under_a_valid_c_mac_is_6300_and_consumes_the_handshake() -> None:
    host, card, keys, _cryptogram = initialized(0x33)
    assert card.external_authenticate(mac_only(keys, 0x33, bytes(8))).sw.value == 0x6300
    assert not card.active
    # the genuine command afterwards: the card challenge was used up
    assert card.external_authenticate(host.external_authenticate()).sw.value == 0x6985
    assert not card.active


def test_host_refuses_r_encryption_the_card_does_not_offer() -> None:
    card = Scp03Card(KEYS, SD_AID, 41, i=0x30)  # R-MAC, no R-ENC
    host = Scp03Host(KEYS, level=0x33)
    with pytest.raises(Scp03Error, match="R-ENCRYPTION"):
        host.process_initialize_update(card.initialize_update(host.initialize_update()))
    assert not host.established
    with pytest.raises(Scp03Error, match="before a verified"):
        host.external_authenticate()


def test_card_refuses_level_33_when_its_i_parameter_lacks_r_encryption() -> None:
    _host, card, keys, cryptogram = initialized(0x13, i=0x30)
    assert card.external_authenticate(mac_only(keys, 0x33, cryptogram)).sw.value == 0x6A86
    assert not card.active


def test_sequence_counter_advances_only_on_an_accepted_initialize_update() -> None:
    card = Scp03Card(KEYS, SD_AID, 41)
    assert card.initialize_update(CommandApdu(0x80, 0x50, 0x30, 0, bytes(7))).sw.value == 0x6700
    assert card.initialize_update(CommandApdu(0x80, 0x50, 0x31, 0, bytes(8))).sw.value == 0x6A88
    assert card.sequence_counter == 41
    first = card.initialize_update(CommandApdu(0x80, 0x50, 0x00, 0, bytes(8), le=256))
    assert (card.sequence_counter, first.data[-3:]) == (42, b"\x00\x00\x2a")
    # the same host challenge again: a new counter, card challenge and card cryptogram
    second = card.initialize_update(CommandApdu(0x80, 0x50, 0x30, 0, bytes(8), le=256))
    assert card.sequence_counter == 43
    assert first.data[13:29] != second.data[13:29]
    assert not any(key[:8] in first.data + second.data for key in (KEYS.enc, KEYS.mac, KEYS.dek))
    host, card = handshake(0x33)  # a new INITIALIZE UPDATE ends an established session
    card.initialize_update(host.initialize_update())
    assert not card.active


# -- SCP03: secure messaging --------------------------------------------------------------------


def test_counter_and_chain_advance_per_command_and_a_replay_ends_the_session() -> None:
    host, card = handshake(0x33)
    mcvs = [host.session.mcv]
    for counter, data in ((1, b""), (2, b"payload"), (3, b"")):
        wrapped = host.wrap(CommandApdu(0x80, 0xCA, 0, 0x66, data, le=256))
        assert host.session.counter == counter  # incremented for commands without data too
        assert card.unwrap(wrapped).data == data
        assert card.session is not None
        assert (card.session.counter, card.session.mcv) == (counter, host.session.mcv)
        mcvs.append(host.session.mcv)
    assert len(set(mcvs)) == 4
    with pytest.raises(Scp03Error, match="C-MAC"):
        card.unwrap(wrapped)
    assert not card.active
    with pytest.raises(Scp03Error, match="no secure channel"):
        card.unwrap(host.wrap(CommandApdu(0x80, 0xCA, 0, 0x66, le=256)))
    assert card.wrap(ResponseApdu.of(b"", 0x6982)) == ResponseApdu.of(b"", 0x6982)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01" * 5, "not whole blocks"),
        (aes(SESSION.s_enc, b"A" * 16, icv(1, response=False)), "decryption failed"),
        (aes(SESSION.s_enc, bytes(16), icv(1, response=False)), "decryption failed"),
    ],
)
def test_command_data_not_properly_encrypted_close_the_session(data: bytes, message: str) -> None:
    """The C-MAC is right (a C-MAC-only session accepts it); C-DECRYPTION fails and closes."""
    command = CommandApdu(0x80, 0xE2, 0x80, 0xC3, data)
    assert sm(0x01).unwrap_command(sm(0x01).wrap_command(command)) == command
    card = sm(0x03)
    with pytest.raises(Scp03Error, match=message):
        card.unwrap_command(sm(0x01).wrap_command(command))
    assert card.closed
    with pytest.raises(SecureChannelClosed):
        card.unwrap_command(command)
    good = aes(SESSION.s_enc, pad80(b"hello"), icv(1, response=False))  # ICV = AES(S-ENC, 1)
    wrapped = sm(0x01).wrap_command(CommandApdu(0x80, 0xE2, 0x80, 0xC3, good))
    assert sm(0x03).unwrap_command(wrapped).data == b"hello"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x01" * 5, "not whole blocks"),
        (aes(SESSION.s_enc, b"A" * 16, icv(5, response=True)), "decryption failed"),
    ],
)
def test_response_data_not_properly_encrypted_close_the_session(body: bytes, message: str) -> None:
    """The R-MAC is right (made by an R-MAC-only card); R-ENCRYPTION fails and closes."""
    card, host = sm(0x13, 5), sm(0x33, 5)
    with pytest.raises(Scp03Error, match=message):
        host.unwrap_response(card.wrap_response(ResponseApdu.of(body, 0x9000)))
    assert host.closed
    with pytest.raises(SecureChannelClosed):
        host.wrap_command(CommandApdu(0x80, 0xCA, 0, 0x66))
    good = aes(SESSION.s_enc, pad80(b"hi"), icv(5, response=True))  # AES(S-ENC, 80 || ctr)
    response = card.wrap_response(ResponseApdu.of(good, 0x9000))
    assert sm(0x33, 5).unwrap_response(response) == ResponseApdu.of(b"hi", 0x9000)


def test_error_status_words_carry_no_r_mac_warnings_do() -> None:
    host, card = handshake(0x33)
    card.unwrap(host.wrap(CommandApdu(0x80, 0xCA, 0, 0x66, le=256)))
    assert card.wrap(ResponseApdu.of(b"", 0x6A88)) == ResponseApdu.of(b"", 0x6A88)
    warning = card.wrap(ResponseApdu.of(b"", 0x6310))
    assert len(warning.data) == 8
    assert host.unwrap(warning) == ResponseApdu.of(b"", 0x6310)
    with pytest.raises(Scp03Error, match="R-MAC"):
        host.unwrap(ResponseApdu.of(bytes(8), 0x6310))


def test_the_mac_ignores_the_logical_channel() -> None:
    on_0 = sm(0x01).wrap_command(CommandApdu(0x80, 0xCA, 0, 0))
    on_5 = sm(0x01).wrap_command(CommandApdu(0xC1, 0xCA, 0, 0))
    assert (on_5.cla, on_5.data) == (0xE1, on_0.data)
    assert (channel_for(on_5), channel_for(CommandApdu(0x87, 0xCA, 0, 0))) == (5, 3)


def test_admin_commands_need_an_intact_level_33_session() -> None:
    """Through the card OS: the applet's administrative extension behind SCP03."""
    state = VseState.default()
    state.t0_get_response = False
    state.iot_safe.admin_secure_channel = True
    card = VirtualUicc(state)
    ch = card.process(bytes.fromhex("0070000001"))[0]
    card.process(iotsafe.select_applet(channel=ch).encode())
    keys = StaticKeys.from_hex(state.scp03.enc, state.scp03.mac, state.scp03.dek)

    def send(command: CommandApdu) -> ResponseApdu:
        return ResponseApdu.decode(card.process(command.encode()))

    def open_session(level: int) -> Scp03Host:
        host = Scp03Host(keys, level=level, channel=ch)
        host.process_initialize_update(send(host.initialize_update()))
        host.process_external_authenticate(send(host.external_authenticate()))
        return host

    host = open_session(0x33)
    create = iotsafe.create_object(ObjectKind.FILE, b"\x42", channel=ch)
    assert host.unwrap(send(host.wrap(create))).sw.value == 0x9000
    wrapped = host.wrap(iotsafe.create_object(ObjectKind.FILE, b"\x43", channel=ch))
    flipped = wrapped.data[:-1] + bytes([wrapped.data[-1] ^ 0x01])
    assert send(CommandApdu(wrapped.cla, 0xE0, 0xC3, 0, flipped)).sw.value == 0x6982
    assert send(host.wrap(create)).sw.value == 0x6982  # the card closed its session
    assert [f["id"] for f in state.iot_safe.files] == ["30", "31", "42"]
    host = open_session(0x13)  # R-MAC without encryption is not enough
    created = iotsafe.create_object(ObjectKind.FILE, b"\x44", channel=ch)
    assert host.unwrap(send(host.wrap(created))).sw.value == 0x6982
    assert (len(state.iot_safe.files), state.scp03.sequence_counter) == (3, 2)


# -- IoT SAFE applet ----------------------------------------------------------------------------


def applet(**changes: Any) -> tuple[IotSafeApplet, IotSafeState, list[int]]:
    state = VseState.default().iot_safe
    for name, value in changes.items():
        setattr(state, name, value)
    changed: list[int] = []
    return IotSafeApplet(state, lambda: changed.append(1)), state, changed


def run(
    app: IotSafeApplet, ins: int, p1: int = 0, p2: int = 0, data: str = "", le: int | None = None
) -> ResponseApdu:
    return app.process(CommandApdu(0x81, ins, p1, p2, bytes.fromhex(data), le))


@pytest.mark.parametrize(
    ("ins", "p1", "p2", "data", "sw"),
    [
        (0xCB, 0x02, 0, "", 0x6A86),
        (0xCB, 0xC3, 0, "8305AA", 0x6A80),  # malformed BER-TLV
        (0xCB, 0xC3, 0, "830130 730370736B", 0x6A80),  # id and label at once
        (0xCB, 0xC3, 0, "", 0x6A80),  # neither
        (0xCD, 0, 0, "840101", 0x6985),  # empty private key container
        (0xCD, 0, 0, "850110", 0x6985),  # empty public key container
        (0xD8, 0x80, 0, "3400", 0x6985),  # PUT PUBLIC KEY UPDATE without INIT
        (0x2A, 0x00, 0x00, "", 0x6A86),  # signature session 0
        (0x2A, 0x00, 0x05, "", 0x6A86),  # signature session 5
        (0x2A, 0x02, 0x01, "", 0x6A86),
        (0x2A, 0x00, 0x01, "840101 A10103", 0x6985),  # no key generated yet
        (0x46, 0, 0, "840102 850110", 0x6985),
        (0x48, 0, 0, "860120 D3020030", 0x6A80),  # no label and seed
        (0x48, 0, 0, "860120 D2014C", 0x6A80),  # no output length
        (0x48, 0, 0, "860120 D2014C D303000030", 0x6A80),
        (0x4A, 0, 0, "860120 D3020000", 0x6A80),
        (0x4A, 0, 0, "860120 D3020401", 0x6A80),  # 1025 bytes
        (0x84, 0, 0, "", 0x6700),  # GET RANDOM without Le
        (0xB0, 0x00, 0x0B, "830130", 0x6B00),  # offset past the 10-byte file
        (0xEE, 0, 0, "", 0x6D00),
    ],
)
def test_applet_status_words(ins: int, p1: int, p2: int, data: str, sw: int) -> None:
    app, _state, changed = applet()
    assert run(app, ins, p1, p2, data).sw.value == sw
    assert not changed


def test_class_and_administrative_access() -> None:
    app, state, changed = applet(admin_secure_channel=True)
    assert app.process(CommandApdu(0x01, 0xCB, 0, 0, le=256)).sw.value == 0x6E00
    assert len(run(app, 0x84, le=16).data) == 16  # GET RANDOM: Le bytes
    state.files.append({"label": "nameless", "data": "0102"})  # an issuer file without id
    files = [t for t in decode_ber_tlvs(run(app, 0xCB, 0x01, 0).data) if t.tag == 0xC3]
    assert [t.tag for t in files[-1].children()][:3] == [0x73, 0x4A, 0x20]  # label, no id
    create = CommandApdu(0x81, 0xE0, 0xC3, 0, b"\x83\x01\x42")
    assert app.process(create).sw.value == 0x6982
    assert (len(state.files), changed) == (3, [])
    assert app.process(create, secured=True).sw.value == 0x9000
    assert changed == [1]


def test_generated_key_signs_and_sessions_are_not_replayed() -> None:
    app, _state, changed = applet()
    generated = run(app, 0xB9, data="840101", le=256)
    assert (generated.sw.value, changed) == (0x9000, [1])
    public = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), parse_public_key(generated.data)
    )
    assert run(app, 0xCD, data="7406646576696365").data == generated.data  # by label
    for bad in ("A10102", "A10103 910102", "A10103 920101", "910101"):
        assert run(app, 0x2A, 0, 1, "840101" + bad).sw.value == 0x6A80
    # pad-and-sign: exactly one final 32-byte hash in the last block
    assert run(app, 0x2A, 0, 1, "840101 A10103 910101 920104").sw.value == 0x9000
    assert run(app, 0x2B, 0x00, 1, "9E20" + "11" * 32).sw.value == 0x6A80
    assert run(app, 0x2B, 0x80, 1, "9E1F" + "11" * 31).sw.value == 0x6A80
    signed = find_tlv(decode_ber_tlvs(run(app, 0x2B, 0x80, 1, "9E20" + "11" * 32).data), 0x33)
    assert signed is not None
    public.verify(signed.value, b"\x11" * 32, ec.ECDSA(Prehashed(hashes.SHA256())))
    assert run(app, 0x2B, 0x80, 1, "9E20" + "11" * 32).sw.value == 0x6985  # no replay
    # full text: blocks hashed on the card; a block without 9B is refused
    assert run(app, 0x2A, 0, 2, "840101 A10101").sw.value == 0x9000
    assert run(app, 0x2B, 0x00, 2, "9B03616263").data == b""
    assert run(app, 0x2B, 0x80, 2, "9E20" + "11" * 32).sw.value == 0x6A80
    signed = find_tlv(decode_ber_tlvs(run(app, 0x2B, 0x80, 2, "9B03646566").data), 0x33)
    assert signed is not None
    public.verify(signed.value, b"abcdef", ec.ECDSA(hashes.SHA256()))
    assert run(app, 0x2A, 0, 3, "840101 A10103").sw.value == 0x9000
    assert run(app, 0x2A, 0x01, 3).sw.value == 0x9000  # closed: signs nothing
    assert run(app, 0x2B, 0x80, 3, "9E20" + "11" * 32).sw.value == 0x6985
    assert changed == [1]


def test_put_public_key_then_ecdh_matches_the_peer() -> None:
    app, state, _changed = applet()
    own = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), parse_public_key(run(app, 0xB9, data="840101").data)
    )
    data = iotsafe.encode_public_key_data(PEER_POINT).hex()
    assert run(app, 0x24, data="850110").sw.value == 0x9000
    off_curve = iotsafe.encode_public_key_data(b"\x04" + bytes(64)).hex()
    assert run(app, 0xD8, 0x80, 0, off_curve).sw.value == 0x6A80
    assert run(app, 0xD8, 0x00, 0, data).sw.value == 0x9000  # not the last block: not stored
    assert state.public_keys[0]["point"] is None
    assert run(app, 0xD8, 0x80, 0, data).sw.value == 0x9000
    assert run(app, 0xD8, 0x80, 0, data).sw.value == 0x6985  # the write is over
    assert parse_public_key(run(app, 0xCD, data="850110").data) == PEER_POINT
    assert run(app, 0x46, data="840101 850110").data == PEER.exchange(ec.ECDH(), own)


def test_prf_and_hkdf_match_their_rfc_vectors() -> None:
    label_seed = PRF["label"].encode() + bytes.fromhex(PRF["seed"])
    assert tls12_prf(bytes.fromhex(PRF["secret"]), label_seed, 100).hex() == PRF["output"]
    app, state, _changed = applet()
    psk = bytes.fromhex(state.secrets[0]["value"])
    for other, tlv in ((None, ""), (b"\x07" * 4, "D10407070707")):
        response = run(app, 0x48, data=f"860120 {tlv} D2024C53 D3020030", le=48)
        assert response.data == tls12_prf(psk_premaster(psk, other), b"LS", 48)
    # RFC 5869 A.1 and A.3 with IKM = 0B x 22 in the secret container
    state.secrets[0]["value"] = "0B" * 22
    salt_info = "D50D000102030405060708090A0B0C D60AF0F1F2F3F4F5F6F7F8F9"
    assert run(app, 0x4A, data=f"860120 {salt_info} D302002A").data.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    assert run(app, 0x4A, data="760370736B D302002A").data.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )
    # an empty (administrative, never written) secret container derives nothing
    assert run(app, 0xE0, 0xC4, 0, "860155").sw.value == 0x9000
    assert run(app, 0x48, data="860155 D2014C D3020020").sw.value == 0x6985
    assert run(app, 0x4A, data="860155 D3020020").sw.value == 0x6985


def test_written_secrets_and_keys_never_come_back() -> None:
    app, state, changed = applet()
    secret, scalar = b"\x5a" * 24, SCALAR.to_bytes(32, "big")
    for kind, ident, content in (
        (ObjectKind.SECRET, b"\x66", secret),
        (ObjectKind.PRIVATE_KEY, b"\x67", scalar),
    ):
        assert app.process(iotsafe.create_object(kind, ident, channel=1)).sw.value == 0x9000
        for block in iotsafe.put_object(kind, ObjectRef(id=ident), content, channel=1):
            assert app.process(block).sw.value == 0x9000
    assert (changed, state.secrets[-1]["value"]) == ([1, 1, 1, 1], secret.hex())
    responses = [run(app, 0xCB, p1, 0, le=256) for p1 in (0x00, 0x01)]
    responses += [run(app, 0xCB, 0xC4, 0, "860166"), run(app, 0xCB, 0xC1, 0, "840167")]
    responses += [run(app, 0xB0, 0, 0, f"83013{n}", le=256) for n in (0, 1)]
    responses.append(run(app, 0xCD, data="840167"))
    assert all(r.sw.value == 0x9000 for r in responses)
    assert not any(secret[:8] in r.data or scalar[:8] in r.data for r in responses)
    assert parse_public_key(responses[-1].data) == PEER_POINT


def test_put_object_block_without_content_abandons_the_write() -> None:
    app, state, changed = applet()
    assert run(app, 0xE0, 0xC3, 0, "830142").sw.value == 0x9000
    assert run(app, 0xE2, 0x00, 0xC3, "830142 D0020102").sw.value == 0x9000
    assert run(app, 0xE2, 0x80, 0xC3, "830142").sw.value == 0x6A80
    assert run(app, 0xE2, 0x80, 0xC3, "D0020304").sw.value == 0x6985  # nothing to continue
    assert (state.files[-1]["data"], changed) == ("", [1])


def test_delete_ends_a_put_public_key_and_a_signature_session() -> None:
    app, state, _changed = applet()
    assert run(app, 0xE0, 0xC2, 0, "850111").sw.value == 0x9000
    assert run(app, 0x24, data="850111").sw.value == 0x9000
    assert run(app, 0xE4, 0xC2, 0, "850111").sw.value == 0x9000
    data = iotsafe.encode_public_key_data(PEER_POINT).hex()
    assert run(app, 0xD8, 0x80, 0, data).sw.value == 0x6985
    assert [k["id"] for k in state.public_keys] == ["10"]
    assert run(app, 0xE0, 0xC1, 0, "840105").sw.value == 0x9000
    assert run(app, 0xB9, data="840105").sw.value == 0x9000
    assert run(app, 0x2A, 0, 1, "840105 A10103").sw.value == 0x9000
    assert run(app, 0xE4, 0xC1, 0, "840105").sw.value == 0x9000
    assert run(app, 0x2B, 0x80, 1, "9E20" + "00" * 32).sw.value == 0x6985


def test_an_empty_label_addresses_no_container() -> None:
    app, state, _changed = applet()
    assert run(app, 0xE0, 0xC3, 0, "830142").sw.value == 0x9000  # no label
    assert run(app, 0xE4, 0xC3, 0, "7300").sw.value in (0x6A80, 0x6A88)
    assert [f["id"] for f in state.files] == ["30", "31", "42"]
