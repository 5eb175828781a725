"""GlobalPlatform Secure Channel Protocol '03' (GP Card Specification 2.3 Amendment D), both
sides as sans-IO state machines: :class:`Scp03Host` for the device and :class:`Scp03Card` for the
virtual secure element. LwM2M-TS-Core Appendix H uses it to protect the smartcard bootstrap:
static KEY_ENC/KEY_MAC/KEY_DEK shared out of band, INITIALIZE UPDATE on the channel of the
selected PKCS #15 application (CLA 80..83), EXTERNAL AUTHENTICATE with security level ``33``
(C-MAC, C-DECRYPTION, R-MAC, R-ENCRYPTION).

* **KDF** (Amd D §4.1.5): NIST SP 800-108 in counter mode with PRF = AES-CMAC (NIST SP 800-38B,
  RFC 4493), in GP's field order: ``label = 00*11 || constant``, then ``00`` separator,
  ``L`` (2 bytes, bits), counter ``i`` (1 byte, from 1), ``context``. Constants: 00 card
  cryptogram, 01 host cryptogram, 02 card challenge, 04 S-ENC, 06 S-MAC, 07 S-RMAC.
* **Handshake** (§6.2, §7.1): the host sends an 8-byte challenge; the card answers key
  diversification data (10), KVN, ``03``, ``i``, card challenge, card cryptogram and, with a
  pseudo-random challenge (i b5), the 3-byte sequence counter. Session keys use the context
  ``host challenge || card challenge``. A pseudo-random card challenge is
  ``KDF(K-ENC, 02, 64, sequence counter || SD AID)``.
* **Secure messaging** (§6.2.4-§6.2.7): the MAC chaining value starts at 16 zero bytes;
  C-MAC = CMAC(S-MAC, MCV || CLA INS P1 P2 Lc || data) with the SM bit set and the logical
  channel bits zeroed in CLA and Lc counting the 8 MAC bytes; the full 16-byte CMAC is the next
  MCV. C-DECRYPTION pads ``80 00..`` and AES-CBC-encrypts the data under S-ENC with the ICV
  AES(S-ENC, counter) — the counter starts at 1 and counts every wrapped command.
  R-MAC = CMAC(S-RMAC, MCV || data || SW)[:8] for 9000/62xx/63xx; R-ENCRYPTION uses the ICV
  AES(S-ENC, 80 || counter[1:]).

Keys never appear in reprs or messages. A MAC or cryptogram failure closes the session for good.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from lwm2m.buffer import Buffer
from lwm2m.secure.pcsc.apdu import (
    CommandApdu,
    ResponseApdu,
    StatusWord,
    channel_of,
    with_channel,
    with_secure_messaging,
)
from lwm2m.secure.pcsc.errors import ApduError, Scp03Error, SecureChannelClosed

__all__ = [
    "ALLOWED_LEVELS",
    "Constant",
    "InitializeUpdateResponse",
    "Scp03Card",
    "Scp03Host",
    "SecureMessaging",
    "SecurityLevel",
    "SessionKeys",
    "StaticKeys",
    "aes_cmac",
    "card_challenge",
    "derive_session_keys",
    "kcv",
    "kdf_counter",
    "scp03_kdf",
]


class Constant(IntEnum):
    """Derivation constants of Amd D Table 4-1."""

    CARD_CRYPTOGRAM = 0x00
    HOST_CRYPTOGRAM = 0x01
    CARD_CHALLENGE = 0x02
    S_ENC = 0x04
    S_MAC = 0x06
    S_RMAC = 0x07


class SecurityLevel(IntFlag):
    """P1 of EXTERNAL AUTHENTICATE (Amd D Table 7-5)."""

    NONE = 0x00
    C_MAC = 0x01
    C_DECRYPTION = 0x02
    R_MAC = 0x10
    R_ENCRYPTION = 0x20


#: The combinations Amd D allows (C-DEC needs C-MAC, R-ENC needs R-MAC and C-DEC).
ALLOWED_LEVELS = frozenset({0x00, 0x01, 0x03, 0x11, 0x13, 0x33})

_SM_STATUS_OK = (0x90, 0x62, 0x63)


# -- primitives --------------------------------------------------------------------------------


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B, RFC 4493), 16 bytes."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _aes_ecb_block(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _aes_cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(data) + ctx.finalize()


def kdf_counter(key: bytes, prefix: bytes, suffix: bytes, length: int) -> bytes:
    """NIST SP 800-108 KDF in counter mode, PRF = AES-CMAC, an 8-bit counter ``i`` (from 1)
    placed between ``prefix`` and ``suffix``; ``length`` output bytes."""
    if not 1 <= length <= 255 * 16:
        raise ValueError(f"KDF output length {length} out of range")
    out = bytearray()
    i = 1
    while len(out) < length:
        out += aes_cmac(key, prefix + bytes([i]) + suffix)
        i += 1
    return bytes(out[:length])


def scp03_kdf(key: bytes, constant: int, context: bytes, bits: int) -> bytes:
    """The SCP03 data derivation of Amd D §4.1.5 (``bits`` = L, the output length in bits)."""
    prefix = bytes(11) + bytes([constant]) + b"\x00" + bits.to_bytes(2, "big")
    return kdf_counter(key, prefix, context, bits // 8)


def kcv(key: bytes) -> bytes:
    """The AES key check value: the first 3 bytes of AES(key, 16 x 01) (GP Card Spec §B.6)."""
    return _aes_ecb_block(key, b"\x01" * 16)[:3]


def _pad80(data: bytes) -> bytes:
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % 16)


def _unpad80(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) > 15:
        raise Scp03Error("encrypted data are not padded with 80 00..")
    return stripped[:-1]


def _check_key(name: str, key: bytes) -> bytes:
    key = bytes(key)
    if len(key) not in (16, 24, 32):
        raise ValueError(f"{name} must be an AES-128/192/256 key, not {len(key)} bytes")
    return key


# -- keys --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class StaticKeys:
    """The static key set of a security domain: K-ENC, K-MAC, K-DEK and its version number."""

    enc: bytes
    mac: bytes
    dek: bytes
    kvn: int = 0x30

    def __post_init__(self) -> None:
        object.__setattr__(self, "enc", _check_key("K-ENC", self.enc))
        object.__setattr__(self, "mac", _check_key("K-MAC", self.mac))
        object.__setattr__(self, "dek", _check_key("K-DEK", self.dek))
        if not 0 <= self.kvn <= 0xFF:
            raise ValueError(f"KVN {self.kvn} is not a byte")
        if not len(self.enc) == len(self.mac) == len(self.dek):
            raise ValueError("K-ENC, K-MAC and K-DEK must have the same length")

    @classmethod
    def from_hex(cls, enc: str, mac: str, dek: str, kvn: int = 0x30) -> StaticKeys:
        return cls(bytes.fromhex(enc), bytes.fromhex(mac), bytes.fromhex(dek), kvn)

    def __repr__(self) -> str:
        return f"StaticKeys(kvn=0x{self.kvn:02X}, AES-{len(self.enc) * 8}, keys redacted)"


@dataclass(frozen=True, slots=True, repr=False)
class SessionKeys:
    s_enc: bytes
    s_mac: bytes
    s_rmac: bytes

    def __repr__(self) -> str:
        return "SessionKeys(redacted)"


def derive_session_keys(keys: StaticKeys, host_challenge: bytes, card_chal: bytes) -> SessionKeys:
    context = host_challenge + card_chal
    bits = len(keys.enc) * 8
    return SessionKeys(
        scp03_kdf(keys.enc, Constant.S_ENC, context, bits),
        scp03_kdf(keys.mac, Constant.S_MAC, context, bits),
        scp03_kdf(keys.mac, Constant.S_RMAC, context, bits),
    )


def _cryptogram(s_mac: bytes, constant: int, host: bytes, card: bytes, s_mode: int) -> bytes:
    return scp03_kdf(s_mac, constant, host + card, s_mode * 8)


def card_challenge(k_enc: bytes, sequence_counter: bytes, sd_aid: bytes, s_mode: int = 8) -> bytes:
    """The pseudo-random card challenge ``KDF(K-ENC, 02, 64, counter || AID)`` (Amd D §6.2.2.1)."""
    return scp03_kdf(k_enc, Constant.CARD_CHALLENGE, sequence_counter + sd_aid, s_mode * 8)


# -- INITIALIZE UPDATE response ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InitializeUpdateResponse:
    """The data of the INITIALIZE UPDATE response (Amd D Table 7-3)."""

    key_diversification_data: bytes
    kvn: int
    i: int
    card_challenge: bytes
    card_cryptogram: bytes
    sequence_counter: bytes | None = None

    @classmethod
    def decode(cls, data: bytes, s_mode: int = 8) -> InitializeUpdateResponse:
        """Parse; raises :class:`Scp03Error` on a wrong length or protocol identifier."""
        data = bytes(data)
        base = 10 + 3 + 2 * s_mode
        if len(data) not in (base, base + 3):
            raise Scp03Error(
                f"INITIALIZE UPDATE response of {len(data)} bytes, expected {base} or {base + 3}"
            )
        buf = Buffer(data)
        kdd = buf.pull_bytes(10)
        kvn = buf.pull_uint8()
        scp = buf.pull_uint8()
        if scp != 0x03:
            raise Scp03Error(f"INITIALIZE UPDATE response names SCP{scp:02X}, not SCP03")
        i = buf.pull_uint8()
        challenge = buf.pull_bytes(s_mode)
        cryptogram = buf.pull_bytes(s_mode)
        counter = buf.pull_bytes(3) if not buf.eof() else None
        if i & 0x10 and counter is None:
            raise Scp03Error("pseudo-random card challenge without the sequence counter")
        return cls(kdd, kvn, i, challenge, cryptogram, counter)

    def encode(self) -> bytes:
        return (
            self.key_diversification_data
            + bytes([self.kvn, 0x03, self.i])
            + self.card_challenge
            + self.card_cryptogram
            + (self.sequence_counter or b"")
        )


# -- secure messaging --------------------------------------------------------------------------


def _mac_header(cla: int, ins: int, p1: int, p2: int, lc: int, extended: bool) -> bytes:
    cla = with_secure_messaging(with_channel(cla, 0))
    return bytes([cla, ins, p1, p2]) + (
        b"\x00" + lc.to_bytes(2, "big") if extended else bytes([lc])
    )


@dataclass(slots=True)
class SecureMessaging:
    """The per-session state of secure messaging, shared by both sides: the MAC chaining value
    and the encryption counter. The host calls :meth:`wrap_command` / :meth:`unwrap_response`,
    the card :meth:`unwrap_command` / :meth:`wrap_response`."""

    keys: SessionKeys
    level: SecurityLevel
    mcv: bytes = field(default=bytes(16))
    counter: int = 0
    closed: bool = False

    def _check_open(self) -> None:
        if self.closed:
            raise SecureChannelClosed("the secure channel was closed after an error")

    def _close(self, message: str) -> Scp03Error:
        self.closed = True
        return Scp03Error(message)

    def _icv(self, response: bool) -> bytes:
        block = bytearray(self.counter.to_bytes(16, "big"))
        if response:
            block[0] = 0x80
        return _aes_ecb_block(self.keys.s_enc, bytes(block))

    # host side

    def wrap_command(self, command: CommandApdu) -> CommandApdu:
        """Protect a command (C-DECRYPTION, then C-MAC), as :attr:`level` says."""
        self._check_open()
        if command.secure_messaging:
            raise ApduError("the command already indicates secure messaging")
        self.counter += 1
        if not self.level & SecurityLevel.C_MAC:
            return command
        data = command.data
        if self.level & SecurityLevel.C_DECRYPTION and data:
            data = _aes_cbc(self.keys.s_enc, self._icv(False), _pad80(data))
        lc = len(data) + 8
        extended = command.extended or lc > 255
        mac = aes_cmac(
            self.keys.s_mac,
            self.mcv
            + _mac_header(command.cla, command.ins, command.p1, command.p2, lc, extended)
            + data,
        )
        self.mcv = mac
        cla = with_secure_messaging(command.cla)
        return CommandApdu(
            cla, command.ins, command.p1, command.p2, data + mac[:8], command.le, extended
        )

    def unwrap_response(self, response: ResponseApdu) -> ResponseApdu:
        """Check the R-MAC and decrypt (R-ENCRYPTION), as :attr:`level` says."""
        self._check_open()
        if not self.level & SecurityLevel.R_MAC or response.sw.sw1 not in _SM_STATUS_OK:
            return response
        if len(response.data) < 8:
            raise self._close(f"response of {len(response.data)} bytes has no R-MAC")
        body, mac = response.data[:-8], response.data[-8:]
        expected = aes_cmac(
            self.keys.s_rmac, self.mcv + body + response.sw.value.to_bytes(2, "big")
        )
        if not hmac.compare_digest(mac, expected[:8]):
            raise self._close("R-MAC verification failed")
        if self.level & SecurityLevel.R_ENCRYPTION and body:
            if len(body) % 16:
                raise self._close(f"encrypted response of {len(body)} bytes is not whole blocks")
            try:
                body = _unpad80(_aes_cbc(self.keys.s_enc, self._icv(True), body, decrypt=True))
            except Scp03Error:
                raise self._close("response decryption failed") from None
        return ResponseApdu(body, response.sw)

    # card side

    def unwrap_command(self, command: CommandApdu) -> CommandApdu:
        """Verify the C-MAC and decrypt; raises :class:`Scp03Error` (and closes) on failure."""
        self._check_open()
        self.counter += 1
        if not self.level & SecurityLevel.C_MAC:
            return command
        if not command.secure_messaging:
            raise self._close("command without secure messaging in a C-MAC session")
        if len(command.data) < 8:
            raise self._close("command without C-MAC")
        data, mac = command.data[:-8], command.data[-8:]
        expected = aes_cmac(
            self.keys.s_mac,
            self.mcv
            + _mac_header(
                command.cla,
                command.ins,
                command.p1,
                command.p2,
                len(command.data),
                command.extended,
            )
            + data,
        )
        if not hmac.compare_digest(mac, expected[:8]):
            raise self._close("C-MAC verification failed")
        self.mcv = expected
        if self.level & SecurityLevel.C_DECRYPTION and data:
            if len(data) % 16:
                raise self._close("encrypted command data are not whole blocks")
            try:
                data = _unpad80(_aes_cbc(self.keys.s_enc, self._icv(False), data, decrypt=True))
            except Scp03Error:
                raise self._close("command decryption failed") from None
        cla = with_secure_messaging(command.cla, False)
        return CommandApdu(cla, command.ins, command.p1, command.p2, data, command.le)

    def wrap_response(self, response: ResponseApdu) -> ResponseApdu:
        """Encrypt (R-ENCRYPTION) and append the R-MAC, as :attr:`level` says."""
        self._check_open()
        if not self.level & SecurityLevel.R_MAC or response.sw.sw1 not in _SM_STATUS_OK:
            return response
        body = response.data
        if self.level & SecurityLevel.R_ENCRYPTION and body:
            body = _aes_cbc(self.keys.s_enc, self._icv(True), _pad80(body))
        mac = aes_cmac(self.keys.s_rmac, self.mcv + body + response.sw.value.to_bytes(2, "big"))
        return ResponseApdu(body + mac[:8], response.sw)


# -- host --------------------------------------------------------------------------------------


class Scp03Host:
    """The off-card entity of SCP03, sans-IO.

    Call order: :meth:`initialize_update` -> send -> :meth:`process_initialize_update` ->
    :meth:`external_authenticate` -> send -> :meth:`process_external_authenticate`; then
    :meth:`wrap` each command and :meth:`unwrap` each (complete) response.
    """

    def __init__(
        self,
        keys: StaticKeys,
        *,
        level: int = 0x33,
        channel: int = 0,
        host_challenge: bytes | None = None,
        s_mode: int = 8,
    ) -> None:
        if level not in ALLOWED_LEVELS:
            raise ValueError(f"security level {level:02X} is not one of Amd D's")
        if s_mode not in (8, 16):
            raise ValueError("S-mode is 8 or 16")
        self.keys = keys
        self.level = SecurityLevel(level)
        self.channel = channel
        self.s_mode = s_mode
        self.host_challenge = host_challenge if host_challenge is not None else os.urandom(s_mode)
        if len(self.host_challenge) != s_mode:
            raise ValueError(f"the host challenge has {s_mode} bytes")
        self.card_response: InitializeUpdateResponse | None = None
        self._session: SecureMessaging | None = None
        self._host_cryptogram: bytes | None = None
        self.established = False

    def __repr__(self) -> str:
        return (
            f"Scp03Host(kvn=0x{self.keys.kvn:02X}, level={self.level.value:02X}, "
            f"channel={self.channel}, established={self.established})"
        )

    def initialize_update(self) -> CommandApdu:
        return CommandApdu(
            with_channel(0x80, self.channel),
            0x50,
            self.keys.kvn,
            0x00,
            self.host_challenge,
            le=256,
        )

    def process_initialize_update(self, response: ResponseApdu) -> None:
        """Derive the session keys and check the card cryptogram (wrong keys fail here)."""
        if not response.sw.is_success:
            raise Scp03Error(f"INITIALIZE UPDATE refused: {response.sw} ({response.sw.meaning})")
        parsed = InitializeUpdateResponse.decode(response.data, self.s_mode)
        if self.keys.kvn and parsed.kvn != self.keys.kvn:
            raise Scp03Error(
                f"card answered with key version {parsed.kvn:02X}, not {self.keys.kvn:02X}"
            )
        keys = derive_session_keys(self.keys, self.host_challenge, parsed.card_challenge)
        expected = _cryptogram(
            keys.s_mac,
            Constant.CARD_CRYPTOGRAM,
            self.host_challenge,
            parsed.card_challenge,
            self.s_mode,
        )
        if not hmac.compare_digest(expected, parsed.card_cryptogram):
            raise Scp03Error(
                "card cryptogram mismatch: wrong static keys, or not the expected card"
            )
        if self.level & SecurityLevel.R_MAC and not parsed.i & 0x20:
            raise Scp03Error("the card does not support R-MAC (i parameter)")
        if self.level & SecurityLevel.R_ENCRYPTION and not parsed.i & 0x40:
            raise Scp03Error("the card does not support R-ENCRYPTION (i parameter)")
        self.card_response = parsed
        self._host_cryptogram = _cryptogram(
            keys.s_mac,
            Constant.HOST_CRYPTOGRAM,
            self.host_challenge,
            parsed.card_challenge,
            self.s_mode,
        )
        self._session = SecureMessaging(keys, SecurityLevel.C_MAC)

    def external_authenticate(self) -> CommandApdu:
        if self._session is None or self._host_cryptogram is None:
            raise Scp03Error("EXTERNAL AUTHENTICATE before a verified INITIALIZE UPDATE")
        command = CommandApdu(
            with_channel(0x80, self.channel), 0x82, self.level.value, 0x00, self._host_cryptogram
        )
        wrapped = self._session.wrap_command(command)
        self._session.counter = 0  # the encryption counter starts with the first protected command
        return wrapped

    def process_external_authenticate(self, response: ResponseApdu) -> None:
        if self._session is None:
            raise Scp03Error("EXTERNAL AUTHENTICATE response before the command")
        if not response.sw.is_success:
            self._session.closed = True
            raise Scp03Error(
                f"EXTERNAL AUTHENTICATE refused: {response.sw} ({response.sw.meaning})"
            )
        self._session.level = self.level
        self.established = True

    @property
    def session(self) -> SecureMessaging:
        if self._session is None or not self.established:
            raise Scp03Error("the secure channel is not established")
        return self._session

    def wrap(self, command: CommandApdu) -> CommandApdu:
        return self.session.wrap_command(command)

    def unwrap(self, response: ResponseApdu) -> ResponseApdu:
        return self.session.unwrap_response(response)


# -- card --------------------------------------------------------------------------------------


class Scp03Card:
    """The card side of SCP03 for one logical channel, sans-IO (used by the virtual secure
    element). ``sequence_counter`` is the card's persistent counter, incremented per INITIALIZE
    UPDATE; read it back after each call to persist it."""

    def __init__(
        self,
        keys: StaticKeys,
        sd_aid: bytes,
        sequence_counter: int,
        *,
        i: int = 0x70,
        key_diversification_data: bytes = bytes(10),
        s_mode: int = 8,
    ) -> None:
        self.keys = keys
        self.sd_aid = sd_aid
        self.sequence_counter = sequence_counter
        self.i = i
        self.kdd = key_diversification_data
        self.s_mode = s_mode
        self._pending: tuple[SessionKeys, bytes, bytes] | None = None
        self.session: SecureMessaging | None = None

    def __repr__(self) -> str:
        return f"Scp03Card(kvn=0x{self.keys.kvn:02X}, active={self.active})"

    @property
    def active(self) -> bool:
        return self.session is not None and not self.session.closed

    def reset(self) -> None:
        self._pending = None
        self.session = None

    def initialize_update(self, command: CommandApdu) -> ResponseApdu:
        self.reset()
        if len(command.data) != self.s_mode:
            return ResponseApdu.of(b"", 0x6700)
        if command.p1 not in (0, self.keys.kvn):
            return ResponseApdu.of(b"", 0x6A88)
        self.sequence_counter = (self.sequence_counter + 1) & 0xFFFFFF
        counter = self.sequence_counter.to_bytes(3, "big")
        if self.i & 0x10:
            challenge = card_challenge(self.keys.enc, counter, self.sd_aid, self.s_mode)
        else:
            challenge = os.urandom(self.s_mode)
        host = bytes(command.data)
        keys = derive_session_keys(self.keys, host, challenge)
        cryptogram = _cryptogram(keys.s_mac, Constant.CARD_CRYPTOGRAM, host, challenge, self.s_mode)
        self._pending = (keys, host, challenge)
        parsed = InitializeUpdateResponse(
            self.kdd,
            self.keys.kvn,
            self.i,
            challenge,
            cryptogram,
            counter if self.i & 0x10 else None,
        )
        return ResponseApdu(parsed.encode(), StatusWord(0x9000))

    def external_authenticate(self, command: CommandApdu) -> ResponseApdu:
        if self._pending is None:
            return ResponseApdu.of(b"", 0x6985)
        keys, host, challenge = self._pending
        self._pending = None
        level = command.p1
        if level not in ALLOWED_LEVELS:
            return ResponseApdu.of(b"", 0x6A86)
        if level & SecurityLevel.R_MAC and not self.i & 0x20:
            return ResponseApdu.of(b"", 0x6A86)
        if level & SecurityLevel.R_ENCRYPTION and not self.i & 0x40:  # as for R-MAC above
            return ResponseApdu.of(b"", 0x6A86)
        session = SecureMessaging(keys, SecurityLevel.C_MAC)
        try:
            plain = session.unwrap_command(command)
        except Scp03Error:
            return ResponseApdu.of(b"", 0x6982)
        expected = _cryptogram(keys.s_mac, Constant.HOST_CRYPTOGRAM, host, challenge, self.s_mode)
        if not hmac.compare_digest(plain.data, expected):
            return ResponseApdu.of(b"", 0x6300)
        session.level = SecurityLevel(level)
        session.counter = 0
        self.session = session
        return ResponseApdu.of(b"", 0x9000)

    def unwrap(self, command: CommandApdu) -> CommandApdu:
        if self.session is None:
            raise Scp03Error("no secure channel session")
        try:
            return self.session.unwrap_command(command)
        except Scp03Error:
            self.session = None
            raise

    def wrap(self, response: ResponseApdu) -> ResponseApdu:
        if self.session is None:
            return response
        return self.session.wrap_response(response)


def channel_for(command: CommandApdu) -> int:
    """The logical channel of a (possibly secured) command."""
    try:
        return channel_of(command.cla)
    except ApduError as exc:  # pragma: no cover - CommandApdu validates CLA
        raise Scp03Error(str(exc)) from None
