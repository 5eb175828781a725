"""GlobalPlatform SCP03 (GP Card Spec 2.3 Amd D): AES-CMAC (RFC 4493), the SP 800-108 KDF
(GlobalPlatformPro), KCVs and whole sessions from real card traces (pySim) at levels 11, 03 and
33 with AES-128/192/256; host against card; wrong MACs and keys close the session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lwm2m.secure.pcsc.apdu import CommandApdu, ResponseApdu, StatusWord
from lwm2m.secure.pcsc.errors import ApduError, Scp03Error, SecureChannelClosed
from lwm2m.secure.pcsc.scp03 import (
    InitializeUpdateResponse,
    Scp03Card,
    Scp03Host,
    SecureMessaging,
    SecurityLevel,
    SessionKeys,
    StaticKeys,
    aes_cmac,
    card_challenge,
    kcv,
    kdf_counter,
)

from .fuzzing import ITERATIONS, fuzz

VECTORS = Path(__file__).parents[1] / "vectors" / "pcsc"
CMAC = json.loads((VECTORS / "rfc4493_aes_cmac.json").read_text())
KDF = json.loads((VECTORS / "scp03_kdf_gppro.json").read_text())
PYSIM = json.loads((VECTORS / "scp03_pysim.json").read_text())
OK = StatusWord(0x9000)


def keyset(name: str) -> StaticKeys:
    k = PYSIM["keysets"][name]
    return StaticKeys.from_hex(k["enc"], k["mac"], k["dek"], k["kvn"])


@pytest.mark.parametrize("case", CMAC["cases"])
def test_aes_cmac_rfc4493(case: dict[str, str]) -> None:
    assert aes_cmac(bytes.fromhex(CMAC["key"]), bytes.fromhex(case["message"])).hex() == case["mac"]


def test_kdf_globalplatformpro() -> None:
    out = kdf_counter(
        bytes.fromhex(KDF["master"]),
        bytes.fromhex(KDF["prefix"]),
        bytes.fromhex(KDF["suffix"]),
        KDF["length"],
    )
    assert out.hex().upper() == KDF["output"]
    with pytest.raises(ValueError, match=r"."):
        kdf_counter(b"\x00" * 16, b"", b"", 0)


def test_kcv_pysim() -> None:
    keys = keyset("aes128")
    expected = PYSIM["kcv"]["aes128"]
    assert [kcv(k).hex().upper() for k in (keys.enc, keys.mac, keys.dek)] == [
        expected["enc"],
        expected["mac"],
        expected["dek"],
    ]


@pytest.mark.parametrize(
    "session", PYSIM["sessions"], ids=lambda s: f"{s['keyset']}-{s['level']:02X}"
)
def test_pysim_sessions(session: dict[str, Any]) -> None:
    init_cmd = bytes.fromhex(session["init_upd_cmd"])
    host = Scp03Host(
        keyset(session["keyset"]), level=session["level"], host_challenge=init_cmd[5:13]
    )
    assert host.initialize_update().encode() == init_cmd
    host.process_initialize_update(ResponseApdu(bytes.fromhex(session["init_upd_rsp"]), OK))
    assert host.external_authenticate().encode().hex() == session["ext_auth_cmd"]
    host.process_external_authenticate(ResponseApdu(b"", OK))
    plain = PYSIM["plain"]
    wrapped = host.wrap(CommandApdu.decode(bytes.fromhex(plain["get_eid_cmd"])))
    assert wrapped.encode().hex() == session["get_eid_cmd"]
    response = host.unwrap(ResponseApdu(bytes.fromhex(session["get_eid_rsp"]), OK))
    assert response.data.hex() == plain["get_eid_rsp"]
    for command, expected in zip(plain["cases"], session["cases"], strict=True):
        assert host.wrap(CommandApdu.decode(bytes.fromhex(command))).encode().hex() == expected


def test_pseudo_random_card_challenge_matches_pysim_trace() -> None:
    """i = 70: the card challenge is KDF(K-ENC, 02, 64, counter || ISD-R AID)."""
    for session in PYSIM["sessions"]:
        response = InitializeUpdateResponse.decode(bytes.fromhex(session["init_upd_rsp"]))
        assert response.sequence_counter is not None
        assert (
            card_challenge(
                keyset(session["keyset"]).enc,
                response.sequence_counter,
                bytes.fromhex(PYSIM["isd_r_aid"]),
            )
            == response.card_challenge
        )
        assert response.encode().hex() == session["init_upd_rsp"]


def handshake(
    level: int, *, channel: int = 0, card_keys: StaticKeys | None = None
) -> tuple[Scp03Host, Scp03Card]:
    keys = keyset("aes128")
    card = Scp03Card(card_keys or keys, bytes.fromhex("A000000151000000"), 41)
    host = Scp03Host(keys, level=level, channel=channel)
    host.process_initialize_update(card.initialize_update(host.initialize_update()))
    host.process_external_authenticate(card.external_authenticate(host.external_authenticate()))
    return host, card


@pytest.mark.parametrize("level", [0x00, 0x01, 0x03, 0x11, 0x13, 0x33])
@pytest.mark.parametrize("channel", [0, 2, 7])
def test_host_and_card_agree(level: int, channel: int) -> None:
    host, card = handshake(level, channel=channel)
    assert card.sequence_counter == 42
    for data, le in ((b"", 256), (bytes(range(200)), None), (b"x" * 300, 256)):
        command = CommandApdu(
            0x80 | channel if channel < 4 else 0xC0 | (channel - 4), 0xCA, 0, 0x66, data, le
        )
        wrapped = host.wrap(command)
        assert wrapped.secure_messaging == bool(level & 1)
        assert card.unwrap(wrapped) == CommandApdu(
            command.cla, command.ins, command.p1, command.p2, data, le
        )
        reply = ResponseApdu.of(bytes(range(50)), 0x9000)
        assert host.unwrap(card.wrap(reply)) == reply
        error = ResponseApdu.of(b"", 0x6A88)
        assert host.unwrap(card.wrap(error)) == error


def test_wrong_keys_fail_with_cryptogram_mismatch() -> None:
    with pytest.raises(Scp03Error, match="card cryptogram mismatch"):
        handshake(0x33, card_keys=StaticKeys.from_hex(*["11" * 16] * 3))


def test_tampered_mac_closes_the_session() -> None:
    host, card = handshake(0x33)
    wrapped = host.wrap(CommandApdu(0x80, 0xCA, 0, 0x66, le=256))
    bad = CommandApdu(
        wrapped.cla,
        wrapped.ins,
        wrapped.p1,
        wrapped.p2,
        wrapped.data[:-1] + bytes([wrapped.data[-1] ^ 1]),
        wrapped.le,
    )
    with pytest.raises(Scp03Error, match="C-MAC"):
        card.unwrap(bad)
    assert not card.active
    host2, _card2 = handshake(0x33)
    host2.wrap(CommandApdu(0x80, 0xCA, 0, 0x66, le=256))
    response = ResponseApdu.of(bytes(24), 0x9000)
    with pytest.raises(Scp03Error, match="R-MAC"):
        host2.unwrap(response)
    with pytest.raises(SecureChannelClosed):
        host2.wrap(CommandApdu(0x80, 0xCA, 0, 0x66))
    with pytest.raises(SecureChannelClosed):
        host2.unwrap(response)


def test_protocol_errors() -> None:
    keys = keyset("aes128")
    host = Scp03Host(keys)
    with pytest.raises(Scp03Error, match="before"):
        host.external_authenticate()
    with pytest.raises(Scp03Error, match="refused"):
        host.process_initialize_update(ResponseApdu.of(b"", 0x6A88))
    with pytest.raises(Scp03Error, match="not established"):
        host.wrap(CommandApdu(0x80, 0xCA, 0, 0))
    with pytest.raises(Scp03Error, match="before the command"):
        host.process_external_authenticate(ResponseApdu.of(b"", 0x9000))
    for level in (0x02, 0x31, 0x100):
        with pytest.raises(ValueError, match=r"."):
            Scp03Host(keys, level=level)
    with pytest.raises(ValueError, match=r"."):
        Scp03Host(keys, s_mode=12)
    with pytest.raises(ValueError, match=r"."):
        Scp03Host(keys, host_challenge=b"short")
    rsp = bytes.fromhex(PYSIM["sessions"][0]["init_upd_rsp"])
    other_kvn = Scp03Host(StaticKeys(keys.enc, keys.mac, keys.dek, 0x31))
    with pytest.raises(Scp03Error, match="key version"):
        other_kvn.process_initialize_update(ResponseApdu(rsp, OK))
    no_rmac = Scp03Host(keys, level=0x11, host_challenge=bytes.fromhex("b13e5f938fc108c4"))
    with pytest.raises(Scp03Error, match="R-MAC"):
        no_rmac.process_initialize_update(ResponseApdu(rsp[:12] + b"\x10" + rsp[13:], OK))
    host = Scp03Host(keys, level=0x33, host_challenge=bytes.fromhex("b13e5f938fc108c4"))
    host.process_initialize_update(ResponseApdu(rsp, OK))
    host.external_authenticate()
    with pytest.raises(Scp03Error, match="EXTERNAL AUTHENTICATE refused"):
        host.process_external_authenticate(ResponseApdu.of(b"", 0x6300))
    with pytest.raises(ApduError):
        SecureMessaging(
            SessionKeys(bytes(16), bytes(16), bytes(16)), SecurityLevel(1)
        ).wrap_command(CommandApdu(0x84, 0xCA, 0, 0))


def test_card_side_refusals() -> None:
    keys = keyset("aes128")
    card = Scp03Card(keys, b"\xa0\x00\x00\x01\x51", 0, i=0x00)
    assert (
        card.external_authenticate(CommandApdu(0x84, 0x82, 0x33, 0, bytes(16))).sw.value == 0x6985
    )
    assert card.initialize_update(CommandApdu(0x80, 0x50, 0x30, 0, b"short")).sw.value == 0x6700
    assert card.initialize_update(CommandApdu(0x80, 0x50, 0x7F, 0, bytes(8))).sw.value == 0x6A88
    assert card.initialize_update(CommandApdu(0x80, 0x50, 0x30, 0, bytes(8))).sw.is_success
    assert (
        card.external_authenticate(CommandApdu(0x84, 0x82, 0x33, 0, bytes(16))).sw.value == 0x6A86
    )
    card.initialize_update(CommandApdu(0x80, 0x50, 0x30, 0, bytes(8)))
    assert (
        card.external_authenticate(CommandApdu(0x84, 0x82, 0x05, 0, bytes(16))).sw.value == 0x6A86
    )
    card.initialize_update(CommandApdu(0x80, 0x50, 0x30, 0, bytes(8)))
    assert (
        card.external_authenticate(CommandApdu(0x84, 0x82, 0x01, 0, bytes(16))).sw.value == 0x6982
    )
    with pytest.raises(Scp03Error):
        card.unwrap(CommandApdu(0x84, 0xCA, 0, 0))
    assert card.wrap(ResponseApdu.of(b"x", 0x9000)) == ResponseApdu.of(b"x", 0x9000)
    host, card = handshake(0x01)
    with pytest.raises(Scp03Error, match="without secure messaging"):
        card.unwrap(CommandApdu(0x80, 0xCA, 0, 0))
    host, card = handshake(0x01)
    with pytest.raises(Scp03Error, match="without C-MAC"):
        card.unwrap(CommandApdu(0x84, 0xCA, 0, 0, b"\x01"))
    assert "redacted" in repr(keys)
    assert "0001" not in repr(keys)
    assert "redacted" in repr(SessionKeys(bytes(16), bytes(16), bytes(16)))
    assert "established=True" in repr(host)
    assert "active=" in repr(card)
    with pytest.raises(ValueError, match=r"."):
        StaticKeys(bytes(16), bytes(24), bytes(16))
    with pytest.raises(ValueError, match=r"."):
        StaticKeys(bytes(15), bytes(15), bytes(15))
    with pytest.raises(ValueError, match=r"."):
        StaticKeys(bytes(16), bytes(16), bytes(16), kvn=300)


def test_initialize_update_response_errors() -> None:
    for bad in (
        bytes(28),
        bytes(10) + b"\x30\x02\x70" + bytes(16),
        bytes(10) + b"\x30\x03\x70" + bytes(16),
    ):
        with pytest.raises(Scp03Error):
            InitializeUpdateResponse.decode(bad)


@pytest.mark.fuzz
def test_fuzz_scp03_responses() -> None:
    seeds = [bytes.fromhex(s["init_upd_rsp"]) for s in PYSIM["sessions"]]
    accepted, rejected = fuzz(InitializeUpdateResponse.decode, Scp03Error, seeds, seed=41)
    assert accepted + rejected == ITERATIONS
    assert accepted
    assert rejected

    session_keys = SessionKeys(bytes(range(16)), bytes(range(1, 17)), bytes(range(2, 18)))

    def fresh() -> SecureMessaging:
        return SecureMessaging(session_keys, SecurityLevel(0x33), mcv=bytes(16), counter=1)

    def unwrap(data: bytes) -> object:
        return fresh().unwrap_response(ResponseApdu.of(data, 0x9000))

    good = fresh().wrap_response(ResponseApdu.of(b"response data", 0x9000)).data
    assert unwrap(good) == ResponseApdu.of(b"response data", 0x9000)
    accepted, rejected = fuzz(unwrap, Scp03Error, [good], seed=42)
    assert accepted + rejected == ITERATIONS
    assert rejected
