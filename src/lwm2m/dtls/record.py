"""The DTLS 1.2 record layer: framing, protection and anti-replay.

- Record framing (RFC 6347 §4.1): ``type(1) version(2) epoch(2) sequence_number(6) length(2)
  fragment``, several records per datagram (§4.1.1); the connection-ID form with content type
  ``tls12_cid`` and the CID after the sequence number (RFC 9146 §4).
- Record protection: AES-128-CCM with an 8-byte tag (RFC 6655 §3; the explicit nonce is
  epoch||sequence_number, the AAD that of RFC 5246 §6.2.3.3) and AES-128-CBC with HMAC-SHA256
  (RFC 5246 §6.2.3.2, MAC-then-encrypt, explicit IV). With a connection ID the plaintext becomes
  ``DTLSInnerPlaintext`` and the AAD/MAC input follows RFC 9146 §5.
- The sliding anti-replay window of 64 records (RFC 6347 §4.1.2.6).
- The key block (RFC 5246 §6.3).

The handshake produces keys; this module turns them into :class:`RecordProtection` objects that
the connection uses per epoch (aioquic's ``CryptoPair`` split). Key material lives only inside the
cipher objects and never appears in a repr.
"""

from __future__ import annotations

import hmac
import os
import struct
from typing import ClassVar, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from .constants import DTLS_1_2, CipherSuite, ContentType, member_view
from .prf import KEY_EXPANSION_LABEL, HmacSha256, prf

__all__ = [
    "CCM8_AAD",
    "CCM8_EXPANSION",
    "CCM8_HEADER",
    "CCM8_NONCE",
    "MAX_CIPHERTEXT_EXPANSION",
    "MAX_FRAGMENT_LENGTH",
    "MAX_PLAINTEXT_LENGTH",
    "MAX_SEQUENCE_NUMBER",
    "RECORD_HEADER",
    "RECORD_HEADER_LENGTH",
    "CbcSha256Protection",
    "Ccm8Protection",
    "NullProtection",
    "RawRecord",
    "RecordProtection",
    "ReplayWindow",
    "create_protections",
    "encode_record",
    "parse_datagram",
]

_CT = member_view(ContentType)

#: Header length without CID (RFC 6347 §4.1).
RECORD_HEADER_LENGTH = 13
#: Largest plaintext fragment (RFC 5246 §6.2.1).
MAX_PLAINTEXT_LENGTH = 2**14
#: Largest expansion a cipher may add (RFC 5246 §6.2.3).
MAX_CIPHERTEXT_EXPANSION = 2048
#: Longest record fragment accepted: plaintext plus the largest expansion.
MAX_FRAGMENT_LENGTH = MAX_PLAINTEXT_LENGTH + MAX_CIPHERTEXT_EXPANSION
#: The last sequence number of an epoch (RFC 6347 §4.1: 48 bits).
MAX_SEQUENCE_NUMBER = 2**48 - 1
#: A record header without CID: type, version, epoch, seq_hi, seq_lo, length (RFC 6347 §4.1).
RECORD_HEADER = struct.Struct("!BHHHIH")
#: The 8-byte placeholder of the CID AAD and MAC input (RFC 9146 §5).
_SEQ_NUM_PLACEHOLDER = b"\xff" * 8
_CID_TYPE = bytes([_CT.TLS12_CID])

_HEADER = RECORD_HEADER
_AAD = struct.Struct("!HHIBHH")  # epoch, seq_hi, seq_lo, type, version, length
_U16 = struct.Struct("!H")
# The CCM_8 fast paths pack epoch||sequence_number as one 64-bit field: it is the record's
# sequence field, the explicit nonce (RFC 6655 §3) and the AAD's seq_num (RFC 5246 §6.2.3.3).
#: A CCM_8 record header and its explicit nonce: type, version, epoch+seq, length, epoch+seq.
CCM8_HEADER = struct.Struct("!BHQHQ")
_CCM_CID_PREFIX = struct.Struct("!BHQ")  # tls12_cid, version, epoch+seq (the CID follows)
#: The CCM_8 nonce: implicit IV, explicit nonce (RFC 6655 §3).
CCM8_NONCE = struct.Struct("!4sQ")
#: The CCM_8 AAD without CID: epoch+seq, type, version, length (RFC 5246 §6.2.3.3).
CCM8_AAD = struct.Struct("!QBHH")
#: What CCM_8 adds to a record's plaintext: the explicit nonce and the tag (RFC 6655 §3).
CCM8_EXPANSION = 16
_CCM_LENGTH_NONCE = struct.Struct("!HQ")  # a CID record's length, explicit nonce
_APPLICATION_DATA = int(ContentType.APPLICATION_DATA)
_APPLICATION_DATA_TYPE = bytes([_APPLICATION_DATA])  # the inner type byte of a CID record
#: The start of the CID AAD / MAC input by CID length: placeholder, tls12_cid, cid_length
#: (RFC 9146 §5); the record header up to the CID follows.
_CID_AAD_START = tuple(_SEQ_NUM_PLACEHOLDER + bytes([_CT.TLS12_CID, n]) for n in range(256))
_CCM_SUITES = frozenset(s for s in CipherSuite if s.is_ccm)


class RawRecord(NamedTuple):
    """One record as framed on the wire; ``content_type`` is the wire value (25 for CID).

    A named tuple: one is made per received record, several times cheaper than a frozen dataclass.
    """

    content_type: int
    version: int
    epoch: int
    sequence_number: int
    connection_id: bytes
    fragment: bytes


def parse_datagram(data: bytes, cid_length: int = 0) -> list[RawRecord]:
    """Split a datagram into records (RFC 6347 §4.1.1).

    A ``tls12_cid`` record carries a CID of ``cid_length`` bytes (the length this endpoint chose,
    RFC 9146 §4). A truncated or oversize record ends the parse: the rest of the datagram is
    dropped silently (RFC 6347 §4.1.2.7).
    """
    records: list[RawRecord] = []
    pos = 0
    end = len(data)
    limit = MAX_FRAGMENT_LENGTH
    while end - pos >= RECORD_HEADER_LENGTH:
        content_type = data[pos]
        if content_type == _CT.TLS12_CID:
            if cid_length == 0 or end - pos < RECORD_HEADER_LENGTH + cid_length:
                break
            _, version, epoch, seq_hi, seq_lo = struct.unpack_from("!BHHHI", data, pos)
            cid_start = pos + 11
            cid = data[cid_start : cid_start + cid_length]
            (length,) = _U16.unpack_from(data, cid_start + cid_length)
            start = cid_start + cid_length + 2
        else:
            _, version, epoch, seq_hi, seq_lo, length = _HEADER.unpack_from(data, pos)
            cid = b""
            start = pos + RECORD_HEADER_LENGTH
        if length > limit or start + length > end:
            break
        records.append(
            RawRecord(
                content_type,
                version,
                epoch,
                (seq_hi << 32) | seq_lo,
                cid,
                data[start : start + length],
            )
        )
        pos = start + length
    return records


def encode_record(
    content_type: int, version: int, epoch: int, seq: int, fragment: bytes, cid: bytes = b""
) -> bytes:
    """Frame one record; ``cid`` is written (after the sequence number) only for ``tls12_cid``."""
    if content_type == _CT.TLS12_CID:
        return (
            struct.pack("!BHHHI", content_type, version, epoch, seq >> 32, seq & 0xFFFFFFFF)
            + cid
            + _U16.pack(len(fragment))
            + fragment
        )
    return (
        _HEADER.pack(content_type, version, epoch, seq >> 32, seq & 0xFFFFFFFF, len(fragment))
        + fragment
    )


_WINDOW_SIZE = 64
_WINDOW_MASK = (1 << _WINDOW_SIZE) - 1


class ReplayWindow:
    """Sliding window of the last 64 sequence numbers of one epoch (RFC 6347 §4.1.2.6).

    ``is_fresh`` is checked before decryption, ``mark`` only after a record authenticated.

    >>> w = ReplayWindow(); w.mark(5); w.is_fresh(5), w.is_fresh(4), w.is_fresh(6)
    (False, True, True)
    """

    __slots__ = ("bitmap", "highest")

    SIZE: ClassVar[int] = 64  # _WINDOW_SIZE

    def __init__(self) -> None:
        self.highest = -1
        self.bitmap = 0

    def is_fresh(self, seq: int) -> bool:
        highest = self.highest
        if seq > highest:
            return True
        offset = highest - seq
        return offset < _WINDOW_SIZE and not (self.bitmap >> offset) & 1

    def mark(self, seq: int) -> None:
        highest = self.highest
        if seq > highest:
            shift = seq - highest
            self.bitmap = (
                1 if shift >= _WINDOW_SIZE else ((self.bitmap << shift) | 1) & _WINDOW_MASK
            )
            self.highest = seq
        else:
            self.bitmap |= 1 << (highest - seq)


def _cid_header(version: int, epoch: int, seq: int, cid: bytes, inner_length: int) -> bytes:
    # RFC 9146 §5: seq_num_placeholder || tls12_cid || cid_length || tls12_cid ||
    # version || epoch || sequence_number || cid || length_of_DTLSInnerPlaintext
    return (
        _SEQ_NUM_PLACEHOLDER
        + _CID_TYPE
        + bytes([len(cid)])
        + _CID_TYPE
        + struct.pack("!HHHI", version, epoch, seq >> 32, seq & 0xFFFFFFFF)
        + cid
        + _U16.pack(inner_length)
    )


def _inner_type(inner: bytes) -> tuple[int, bytes]:
    """Split a DTLSInnerPlaintext into (real type, content); 0 type means malformed."""
    stripped = inner.rstrip(b"\x00")
    if not stripped:
        return 0, b""
    return stripped[-1], stripped[:-1]


class RecordProtection:
    """Protects and unprotects the records of one epoch in one direction.

    ``cid`` is the connection ID written into (write side) or expected in (read side) records;
    empty means the plain record format.
    """

    __slots__ = ("cid",)

    #: Most bytes a protected fragment is longer than its plaintext (+1 for a CID inner type).
    overhead: int = 0

    def __init__(self, cid: bytes = b"") -> None:
        self.cid = cid

    def encrypt(
        self, content_type: int, version: int, epoch: int, seq: int, plaintext: bytes
    ) -> bytes:
        """The whole protected record, header included."""
        return encode_record(content_type, version, epoch, seq, plaintext)

    def decrypt(self, record: RawRecord) -> tuple[int, bytes] | None:
        """``(content type, plaintext)``, or None when the record does not authenticate."""
        if record.content_type == _CT.TLS12_CID:
            return None
        return record.content_type, record.fragment

    def seal_application_data(self, epoch: int, seq: int, plaintext: bytes) -> bytes:
        """The whole protected application-data record of DTLS 1.2 (what ``encrypt`` gives);
        subclasses build it in fewer steps. The caller checked the size and the sequence."""
        return self.encrypt(_APPLICATION_DATA, DTLS_1_2, epoch, seq, plaintext)

    def open_application_data(self, data: bytes, epoch: int, seq: int) -> bytes | None:
        """The plaintext of ``data``, one whole record of this protection's format (type
        ``application_data`` without a CID, ``tls12_cid`` with ``self.cid``, version DTLS 1.2,
        header fields ``epoch`` and ``seq``, a length that matches, all checked by the caller),
        or None when it does not authenticate or its real content type is another one.

        Agrees with :meth:`decrypt` of the same record (subclasses skip the :class:`RawRecord`).
        """
        cid = self.cid
        start = RECORD_HEADER_LENGTH + len(cid)
        wire_type = _CT.TLS12_CID if cid else _APPLICATION_DATA
        result = self.decrypt(RawRecord(wire_type, DTLS_1_2, epoch, seq, cid, data[start:]))
        if result is None or result[0] != _APPLICATION_DATA:
            return None
        return result[1]

    def open_fragment(
        self, content_type: int, epoch: int, seq: int, fragment: bytes
    ) -> bytes | None:
        """The plaintext of the record without a CID that has these header fields (version
        DTLS 1.2) and ``fragment``, or None when it does not authenticate, its real content
        type is another one, or this protection writes CIDs.

        Agrees with :meth:`decrypt` of the same record (subclasses skip the :class:`RawRecord`).
        """
        result = self.decrypt(RawRecord(content_type, DTLS_1_2, epoch, seq, b"", fragment))
        if result is None or result[0] != content_type:
            return None
        return result[1]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} cid={self.cid.hex()}>"


class NullProtection(RecordProtection):
    """Epoch 0: records travel in the clear (RFC 5246 §6.1, TLS_NULL_WITH_NULL_NULL)."""

    __slots__ = ()


class Ccm8Protection(RecordProtection):
    """AES-128-CCM_8 (RFC 6655 §3): nonce = 4-byte implicit IV || 8-byte epoch+sequence."""

    __slots__ = ("_aead", "_iv")

    overhead = 8 + 8 + 1

    def __init__(self, key: bytes, iv: bytes, cid: bytes = b"") -> None:
        self.cid = cid
        self._aead = AESCCM(key, 8)  # tag_length
        self._iv = iv

    def encrypt(
        self, content_type: int, version: int, epoch: int, seq: int, plaintext: bytes
    ) -> bytes:
        cid = self.cid
        if cid:
            explicit = struct.pack("!HHI", epoch, seq >> 32, seq & 0xFFFFFFFF)
            inner = plaintext + bytes([content_type])
            aad = _cid_header(version, epoch, seq, cid, len(inner))
            ciphertext = self._aead.encrypt(self._iv + explicit, inner, aad)
            return encode_record(_CT.TLS12_CID, version, epoch, seq, explicit + ciphertext, cid)
        # Header, nonce and AAD each one struct pack, as in seal_application_data.
        number = (epoch << 48) | seq
        length = len(plaintext)
        return CCM8_HEADER.pack(content_type, version, number, length + CCM8_EXPANSION, number) + (
            self._aead.encrypt(
                CCM8_NONCE.pack(self._iv, number),
                plaintext,
                CCM8_AAD.pack(number, content_type, version, length),
            )
        )

    def decrypt(self, record: RawRecord) -> tuple[int, bytes] | None:
        fragment = record.fragment
        if len(fragment) < CCM8_EXPANSION:
            return None
        explicit = fragment[:8]
        nonce = self._iv + explicit
        seq = record.sequence_number
        try:
            if record.content_type == _CT.TLS12_CID:
                if record.connection_id != self.cid:
                    return None
                aad = _cid_header(
                    record.version, record.epoch, seq, self.cid, len(fragment) - CCM8_EXPANSION
                )
                content_type, plaintext = _inner_type(self._aead.decrypt(nonce, fragment[8:], aad))
                return (content_type, plaintext) if content_type else None
            if self.cid:
                return None
            aad = _AAD.pack(
                record.epoch,
                seq >> 32,
                seq & 0xFFFFFFFF,
                record.content_type,
                record.version,
                len(fragment) - CCM8_EXPANSION,
            )
            return record.content_type, self._aead.decrypt(nonce, fragment[8:], aad)
        except InvalidTag:
            return None

    def seal_application_data(self, epoch: int, seq: int, plaintext: bytes) -> bytes:
        # epoch||seq in one 64-bit field (the caller keeps seq below 2**48): header, explicit
        # nonce, nonce and AAD are each one struct pack.
        number = (epoch << 48) | seq
        length = len(plaintext)
        cid = self.cid
        if cid:
            prefix = _CCM_CID_PREFIX.pack(_CT.TLS12_CID, DTLS_1_2, number) + cid
            aad = _CID_AAD_START[len(cid)] + prefix + _U16.pack(length + 1)
            ciphertext = self._aead.encrypt(
                CCM8_NONCE.pack(self._iv, number), plaintext + _APPLICATION_DATA_TYPE, aad
            )
            return prefix + _CCM_LENGTH_NONCE.pack(length + 17, number) + ciphertext
        return CCM8_HEADER.pack(
            _APPLICATION_DATA, DTLS_1_2, number, length + CCM8_EXPANSION, number
        ) + self._aead.encrypt(
            CCM8_NONCE.pack(self._iv, number),
            plaintext,
            CCM8_AAD.pack(number, _APPLICATION_DATA, DTLS_1_2, length),
        )

    def open_application_data(self, data: bytes, epoch: int, seq: int) -> bytes | None:
        # The explicit nonce comes from the fragment, as in decrypt(). The AAD: without a CID it
        # is built from the header fields (the caller checked them against the wire), with one
        # from the wire header.
        cid = self.cid
        start = RECORD_HEADER_LENGTH + len(cid)
        length = len(data) - start - CCM8_EXPANSION  # plaintext (CID: DTLSInnerPlaintext) length
        if length < 0:
            return None
        try:
            if cid:
                aad = _CID_AAD_START[len(cid)] + data[: start - 2] + _U16.pack(length)
                inner = self._aead.decrypt(
                    self._iv + data[start : start + 8], data[start + 8 :], aad
                )
                content_type, plaintext = _inner_type(inner)
                return plaintext if content_type == _APPLICATION_DATA else None
            return self._aead.decrypt(
                self._iv + data[13:21],
                data[21:],
                CCM8_AAD.pack((epoch << 48) | seq, _APPLICATION_DATA, DTLS_1_2, length),
            )
        except InvalidTag:
            return None

    def open_fragment(
        self, content_type: int, epoch: int, seq: int, fragment: bytes
    ) -> bytes | None:
        length = len(fragment) - CCM8_EXPANSION
        if length < 0 or self.cid:
            return None
        try:
            return self._aead.decrypt(
                self._iv + fragment[:8],
                fragment[8:],
                CCM8_AAD.pack((epoch << 48) | seq, content_type, DTLS_1_2, length),
            )
        except InvalidTag:
            return None


class CbcSha256Protection(RecordProtection):
    """AES-128-CBC with HMAC-SHA256, MAC-then-encrypt with an explicit IV (RFC 5246 §6.2.3.2).

    The padding check avoids early exits (the MAC is always computed), but Python gives no
    constant-time guarantee: prefer the CCM_8 suites where timing side channels matter.
    """

    __slots__ = ("_cipher_key", "_mac_key")

    overhead = 16 + 32 + 16 + 1

    def __init__(self, mac_key: bytes, key: bytes, cid: bytes = b"") -> None:
        super().__init__(cid)
        self._mac_key = mac_key
        self._cipher_key = algorithms.AES(key)

    def encrypt(
        self, content_type: int, version: int, epoch: int, seq: int, plaintext: bytes
    ) -> bytes:
        cid = self.cid
        wire_type = content_type
        if cid:
            wire_type = _CT.TLS12_CID
            plaintext = plaintext + bytes([content_type])
            mac_input = _cid_header(version, epoch, seq, cid, len(plaintext)) + plaintext
        else:
            mac_input = (
                _AAD.pack(epoch, seq >> 32, seq & 0xFFFFFFFF, content_type, version, len(plaintext))
                + plaintext
            )
        mac = hmac.digest(self._mac_key, mac_input, "sha256")
        pad = 15 - (len(plaintext) + 32) % 16
        iv = os.urandom(16)
        encryptor = Cipher(self._cipher_key, modes.CBC(iv)).encryptor()
        body = encryptor.update(plaintext + mac + bytes([pad]) * (pad + 1)) + encryptor.finalize()
        return encode_record(wire_type, version, epoch, seq, iv + body, cid)

    def decrypt(self, record: RawRecord) -> tuple[int, bytes] | None:
        fragment = record.fragment
        if len(fragment) < 64 or len(fragment) % 16:
            return None
        is_cid = record.content_type == _CT.TLS12_CID
        if is_cid != bool(self.cid) or (is_cid and record.connection_id != self.cid):
            return None
        decryptor = Cipher(self._cipher_key, modes.CBC(fragment[:16])).decryptor()
        data = decryptor.update(fragment[16:]) + decryptor.finalize()
        pad = data[-1]
        good = pad + 33 <= len(data)
        if good:
            good = data[-pad - 1 :] == bytes([pad]) * (pad + 1)
        else:
            pad = 0
        plaintext = data[: len(data) - pad - 33]
        mac = data[len(data) - pad - 33 : len(data) - pad - 1]
        seq = record.sequence_number
        if is_cid:
            mac_input = (
                _cid_header(record.version, record.epoch, seq, self.cid, len(plaintext)) + plaintext
            )
        else:
            mac_input = (
                _AAD.pack(
                    record.epoch,
                    seq >> 32,
                    seq & 0xFFFFFFFF,
                    record.content_type,
                    record.version,
                    len(plaintext),
                )
                + plaintext
            )
        expected = hmac.digest(self._mac_key, mac_input, "sha256")
        if not (hmac.compare_digest(mac, expected) and good):
            return None
        if is_cid:
            content_type, plaintext = _inner_type(plaintext)
            return (content_type, plaintext) if content_type else None
        return record.content_type, plaintext


def create_protections(
    cipher_suite: int,
    master_secret: bytes | HmacSha256,
    client_random: bytes,
    server_random: bytes,
    *,
    is_client: bool,
    read_cid: bytes = b"",
    write_cid: bytes = b"",
) -> tuple[RecordProtection, RecordProtection]:
    """``(read, write)`` protections from the key block (RFC 5246 §6.3).

    CCM_8: client/server write keys (16) and implicit IVs (4), RFC 6655 §3. CBC-SHA256: MAC keys
    (32) then cipher keys (16); TLS 1.2 derives no IVs for block ciphers.
    """
    seed = server_random + client_random
    client: RecordProtection
    server: RecordProtection
    if cipher_suite in _CCM_SUITES:
        block = prf(master_secret, KEY_EXPANSION_LABEL, seed, 40)
        client = Ccm8Protection(block[0:16], block[32:36])
        server = Ccm8Protection(block[16:32], block[36:40])
    else:
        block = prf(master_secret, KEY_EXPANSION_LABEL, seed, 96)
        client = CbcSha256Protection(block[0:32], block[64:80])
        server = CbcSha256Protection(block[32:64], block[80:96])
    read, write = (server, client) if is_client else (client, server)
    read.cid = read_cid
    write.cid = write_cid
    return read, write
