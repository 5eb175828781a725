"""Known-answer vectors for the PRF and AES-CCM_8, and the record layer (RFC 6347 §4.1)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.dtls.constants import DTLS_1_2, CipherSuite, ContentType
from lwm2m.dtls.prf import (
    EXTENDED_MASTER_SECRET_LABEL,
    MASTER_SECRET_LABEL,
    HmacSha256,
    finished_verify_data,
    master_secret_seed,
    p_sha256,
    prf,
    psk_premaster,
)
from lwm2m.dtls.record import (
    CbcSha256Protection,
    Ccm8Protection,
    NullProtection,
    RawRecord,
    ReplayWindow,
    create_protections,
    encode_record,
    parse_datagram,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "dtls"


def test_prf_known_answer() -> None:
    vector = json.loads((VECTORS / "prf_sha256.json").read_text())
    out = prf(
        bytes.fromhex(vector["secret"]),
        vector["label"].encode(),
        bytes.fromhex(vector["seed"]),
        len(vector["output"]) // 2,
    )
    assert out.hex() == vector["output"]
    # Every prefix is the same stream (P_hash is truncated, RFC 5246 §5).
    assert p_sha256(b"k", b"seed", 7) == p_sha256(b"k", b"seed", 64)[:7]


@pytest.mark.parametrize(
    "vector",
    json.loads((VECTORS / "aes_ccm_8.json").read_text())["vectors"],
    ids=lambda v: v["name"],
)
def test_aes_ccm_8_known_answer(vector: dict[str, str]) -> None:
    aead = AESCCM(bytes.fromhex(vector["key"]), tag_length=8)
    nonce, aad = bytes.fromhex(vector["nonce"]), bytes.fromhex(vector["aad"])
    sealed = aead.encrypt(nonce, bytes.fromhex(vector["plaintext"]), aad)
    assert sealed.hex() == vector["ciphertext_and_tag"]
    assert aead.decrypt(nonce, sealed, aad).hex() == vector["plaintext"]


def test_psk_premaster_and_master_secret_labels() -> None:
    # RFC 4279 §2: uint16 N, N zeros, uint16 N, psk.
    assert psk_premaster(b"\xaa" * 3) == b"\x00\x03" + b"\x00" * 3 + b"\x00\x03" + b"\xaa" * 3
    assert master_secret_seed(b"c" * 32, b"s" * 32, None) == (
        MASTER_SECRET_LABEL,
        b"c" * 32 + b"s" * 32,
    )
    assert master_secret_seed(b"c", b"s", b"h" * 32) == (EXTENDED_MASTER_SECRET_LABEL, b"h" * 32)


def test_ccm8_record_matches_rfc6655_construction() -> None:
    key, iv = bytes(range(16)), b"\x01\x02\x03\x04"
    protection = Ccm8Protection(key, iv)
    wire = protection.encrypt(ContentType.APPLICATION_DATA, 0xFEFD, 1, 5, b"hello")
    (record,) = parse_datagram(wire)
    explicit = struct.pack("!HHI", 1, 0, 5)
    # RFC 6655 §3: nonce = salt || epoch+seq; RFC 5246 §6.2.3.3 AAD: seq || type || version || len
    aad = explicit + bytes([23]) + b"\xfe\xfd" + (5).to_bytes(2, "big")
    expected = explicit + AESCCM(key, 8).encrypt(iv + explicit, b"hello", aad)
    assert record.fragment == expected
    assert Ccm8Protection(key, iv).decrypt(record) == (ContentType.APPLICATION_DATA, b"hello")


@pytest.mark.parametrize("cid", [b"", b"\x01\x02\x03\x04"])
@pytest.mark.parametrize("suite", list(CipherSuite)[:4])
def test_protections_roundtrip_and_reject_tampering(suite: CipherSuite, cid: bytes) -> None:
    master, cr, sr = bytes(48), b"c" * 32, b"s" * 32
    c_read, c_write = create_protections(
        suite, master, cr, sr, is_client=True, read_cid=b"", write_cid=cid
    )
    s_read, s_write = create_protections(
        suite, master, cr, sr, is_client=False, read_cid=cid, write_cid=b""
    )
    for size in (0, 1, 15, 16, 100, 1000):
        payload = bytes(range(256)) * 4
        wire = c_write.encrypt(ContentType.APPLICATION_DATA, 0xFEFD, 1, size, payload[:size])
        (record,) = parse_datagram(wire, len(cid))
        assert record.connection_id == cid
        assert record.content_type == (
            ContentType.TLS12_CID if cid else ContentType.APPLICATION_DATA
        )
        assert len(wire) - size <= 13 + len(cid) + c_write.overhead
        assert s_read.decrypt(record) == (ContentType.APPLICATION_DATA, payload[:size])
        # The other direction's keys, a flipped bit, another sequence number: rejected.
        assert c_read.decrypt(record) is None
        flipped = RawRecord(
            record.content_type,
            record.version,
            record.epoch,
            record.sequence_number,
            record.connection_id,
            record.fragment[:-1] + bytes([record.fragment[-1] ^ 1]),
        )
        assert s_read.decrypt(flipped) is None
        moved = RawRecord(
            record.content_type,
            record.version,
            record.epoch,
            record.sequence_number + 1,
            record.connection_id,
            record.fragment,
        )
        assert s_read.decrypt(moved) is None
    reply = s_write.encrypt(ContentType.ALERT, 0xFEFD, 1, 0, b"\x01\x00")
    assert c_read.decrypt(parse_datagram(reply)[0]) == (ContentType.ALERT, b"\x01\x00")


def test_cid_inner_plaintext_and_aad() -> None:
    """RFC 9146 §5: DTLSInnerPlaintext = content || real_type, AAD with the 0xff placeholder."""
    key, iv, cid = bytes(16), bytes(4), b"\xaa\xbb"
    wire = Ccm8Protection(key, iv, cid).encrypt(ContentType.APPLICATION_DATA, 0xFEFD, 1, 9, b"xy")
    (record,) = parse_datagram(wire, 2)
    inner = b"xy" + bytes([ContentType.APPLICATION_DATA])
    aad = (
        b"\xff" * 8
        + bytes([25, 2, 25])
        + b"\xfe\xfd"
        + struct.pack("!HHI", 1, 0, 9)
        + cid
        + len(inner).to_bytes(2, "big")
    )
    explicit = struct.pack("!HHI", 1, 0, 9)
    assert record.fragment == explicit + AESCCM(key, 8).encrypt(iv + explicit, inner, aad)
    # A CID record that decrypts to all-zero padding has no content type: rejected.
    bad = AESCCM(key, 8).encrypt(iv + explicit, b"\x00\x00", aad[:-2] + b"\x00\x02")
    forged = RawRecord(25, 0xFEFD, 1, 9, cid, explicit + bad)
    assert Ccm8Protection(key, iv, cid).decrypt(forged) is None
    # Wrong CID or a CID-less record for a CID reader: rejected.
    assert Ccm8Protection(key, iv, b"\x00\x00").decrypt(record) is None
    plain = Ccm8Protection(key, iv).encrypt(23, 0xFEFD, 1, 9, b"xy")
    assert Ccm8Protection(key, iv, cid).decrypt(parse_datagram(plain)[0]) is None


def test_cbc_rejects_bad_padding_and_short_fragments() -> None:
    protection = CbcSha256Protection(bytes(32), bytes(16))
    wire = protection.encrypt(23, 0xFEFD, 1, 1, b"abc")
    (record,) = parse_datagram(wire)
    for fragment in (record.fragment[:48], record.fragment[:-1], record.fragment[:16] + bytes(48)):
        assert protection.decrypt(RawRecord(23, 0xFEFD, 1, 1, b"", fragment)) is None
    assert protection.decrypt(RawRecord(25, 0xFEFD, 1, 1, b"x", record.fragment)) is None


def test_null_protection_rejects_cid_records() -> None:
    null = NullProtection()
    assert null.decrypt(RawRecord(22, 0xFEFD, 0, 0, b"", b"x")) == (22, b"x")
    assert null.decrypt(RawRecord(25, 0xFEFD, 0, 0, b"", b"x")) is None
    assert "cid=" in repr(null)


def test_parse_datagram_stops_at_truncation_and_oversize() -> None:
    one = encode_record(22, 0xFEFD, 0, 1, b"abc")
    two = encode_record(23, 0xFEFD, 1, 2**40, b"")
    records = parse_datagram(one + two + one[:-1])
    assert [(r.content_type, r.sequence_number, r.fragment) for r in records] == [
        (22, 1, b"abc"),
        (23, 2**40, b""),
    ]
    huge = struct.pack("!BHHHIH", 23, 0xFEFD, 1, 0, 0, 2**14 + 2049) + bytes(2**14 + 2049)
    assert parse_datagram(huge) == []
    assert parse_datagram(encode_record(25, 0xFEFD, 1, 0, b"zz", b"ab")) == []  # no CID expected
    assert parse_datagram(b"\x19" + bytes(12), 4) == []


def test_replay_window_slides() -> None:
    window = ReplayWindow()
    for seq in (0, 1, 5, 3):
        assert window.is_fresh(seq)
        window.mark(seq)
        assert not window.is_fresh(seq)
    assert window.is_fresh(2)
    assert window.is_fresh(4)
    window.mark(100)
    assert not window.is_fresh(36)  # fell out of the 64-record window
    assert window.is_fresh(37)
    assert not window.is_fresh(100)
    window.mark(40)
    assert not window.is_fresh(40)


@settings(max_examples=300, deadline=None)
@given(
    suite=st.sampled_from(
        [CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256]
    ),
    sealed_type=st.sampled_from(
        [ContentType.HANDSHAKE, ContentType.ALERT, ContentType.APPLICATION_DATA]
    ),
    asked_type=st.sampled_from([ContentType.HANDSHAKE, ContentType.APPLICATION_DATA]),
    epoch=st.integers(1, 3),
    seq=st.integers(0, 2**48 - 1),
    plaintext=st.binary(max_size=80),
    flip=st.one_of(st.none(), st.integers(0, 200)),
    cut=st.one_of(st.just(0), st.integers(1, 40)),
    cid=st.sampled_from([b"", b"\x01\x02"]),
)
def test_open_fragment_agrees_with_decrypt(
    suite: int,
    sealed_type: int,
    asked_type: int,
    epoch: int,
    seq: int,
    plaintext: bytes,
    flip: int | None,
    cut: int,
    cid: bytes,
) -> None:
    """``open_fragment`` (the PSK lane's Finished) gives what ``decrypt`` of the same plain
    record gives when its content type is the one asked for, and None otherwise: tampered and
    cut fragments, other types, and a protection that reads CIDs included."""
    secret = HmacSha256(bytes(range(48)))
    _, write = create_protections(suite, secret, bytes(32), bytes(range(32)), is_client=True)
    read, _ = create_protections(suite, secret, bytes(32), bytes(range(32)), is_client=False)
    read.cid = cid
    fragment = bytearray(write.encrypt(sealed_type, DTLS_1_2, epoch, seq, plaintext)[13:])
    if flip is not None and flip < len(fragment):
        fragment[flip] ^= 0x40
    if cut:
        del fragment[-cut:]
    record = RawRecord(asked_type, DTLS_1_2, epoch, seq, b"", bytes(fragment))
    result = read.decrypt(record)
    expected = result[1] if result is not None and result[0] == asked_type else None
    assert read.open_fragment(asked_type, epoch, seq, bytes(fragment)) == expected
    if flip is None and not cut and not cid and sealed_type == asked_type:
        assert expected == plaintext


@settings(max_examples=100, deadline=None)
@given(secret=st.binary(min_size=1, max_size=80), label=st.binary(max_size=20), digest=st.binary())
def test_finished_verify_data_is_the_prf_truncated(
    secret: bytes, label: bytes, digest: bytes
) -> None:
    """The Finished lanes' written-out first PRF block gives the PRF's first 12 bytes (RFC 5246
    §7.4.9)."""
    mac = HmacSha256(secret)
    assert finished_verify_data(mac, label, digest) == prf(secret, label, digest, 12)
