"""The card operating system of the virtual secure element: an emulated UICC (ETSI TS 102 221
activated in 3G mode) that answers command APDUs exactly as the host code expects a real card to.

* **File system** (ISO/IEC 7816-4 §5.3, TS 102 221 §8): MF ``3F00`` with EF.DIR ``2F00`` (linear
  fixed, the PKCS #15 application template) and EF.ICCID ``2FE2``; the PKCS #15 ADF (PKCS #15 /
  ISO/IEC 7816-15, LwM2M-TS-Core Appendix G) with EF.ODF, EF.DODF (one oidDO, OID 2.23.43.9.1)
  and EF LwM2M_Bootstrap. SELECT by file id (P1 00), by AID (04), by path from the MF (08, with
  ``7FFF`` for the channel's current ADF) and from the current DF (09); READ BINARY and READ
  RECORD with ``6282``/``6B00``/``6A83`` at the ends.
* **Logical channels** (ISO/IEC 7816-4 §5.4.1, §11.1.2): MANAGE CHANNEL open/close for 1..19;
  each channel has its own current file, application and secure channel.
* **Response chaining** (TS 102 221 §7.3.1.1.4, T=0 behaviour): a command with data and Le is
  answered ``61xx`` and served by GET RESPONSE; GET DATA with a wrong short Le gets ``6Cxx``.
* **GlobalPlatform issuer security domain** (GP Card Spec 2.3 §11, Amd D): SCP03 INITIALIZE
  UPDATE / EXTERNAL AUTHENTICATE (also offered by the PKCS #15 application, as Appendix H needs),
  C-MAC/C-DECRYPTION/R-MAC/R-ENCRYPTION on the secured channel, and GET DATA for CPLC (9F7F),
  Card Recognition Data (66), IIN (42), CIN (45) and key information (E0).
* **PIN1** (TS 102 221 §11.1.9 VERIFY PIN, key reference ``01``): 8-byte ``FF``-padded PIN,
  ``63Cx`` with the tries left, ``6983`` once blocked, ``6984`` when PIN1 is disabled; the
  verified state lasts until the next reset, a wrong PIN clears it. With PIN1 enabled the IoT
  SAFE applet serves only its applet information until PIN1 is verified.
* **GSMA IoT SAFE applet** (IoT.05): :mod:`lwm2m.vse.iotsafe_applet`, optionally behind an
  SCP03 session on its channel (INITIALIZE UPDATE / EXTERNAL AUTHENTICATE with the ISD keys).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from lwm2m.secure.pcsc.apdu import CommandApdu, ResponseApdu, channel_of
from lwm2m.secure.pcsc.ber import encode_ber_length, encode_ber_tlv
from lwm2m.secure.pcsc.card import encode_iccid
from lwm2m.secure.pcsc.errors import ApduError, Scp03Error
from lwm2m.secure.pcsc.pkcs15 import OdfEntry, OdfKind, encode_dodf_oid_do, encode_odf, encode_oid
from lwm2m.secure.pcsc.scp03 import Scp03Card, SecurityLevel, StaticKeys
from lwm2m.vse.iotsafe_applet import IotSafeApplet
from lwm2m.vse.state import VseState

__all__ = ["VirtualUicc"]

log = logging.getLogger(__name__)

_EF_DIR_RECORD = 0x30
_PIN_TRIES = 3


@dataclass(slots=True)
class _EF:
    fid: int
    data: bytes = b""
    records: list[bytes] | None = None
    record_length: int = 0
    secured: bool = False  # READ needs an SCP03 session at level 33

    def fcp(self) -> bytes:
        if self.records is not None:
            descriptor = (
                bytes([0x42, 0x21])
                + self.record_length.to_bytes(2, "big")
                + bytes([len(self.records)])
            )
            size = self.record_length * len(self.records)
        else:
            descriptor = bytes([0x41, 0x21])
            size = len(self.data)
        body = (
            encode_ber_tlv(0x82, descriptor)
            + encode_ber_tlv(0x83, self.fid.to_bytes(2, "big"))
            + encode_ber_tlv(0x8A, b"\x05")
            + encode_ber_tlv(0x80, size.to_bytes(2, "big"))
        )
        return encode_ber_tlv(0x62, body)


@dataclass(slots=True)
class _DF:
    fid: int
    aid: bytes | None = None
    children: dict[int, _EF] = field(default_factory=dict)

    def fcp(self) -> bytes:
        body = encode_ber_tlv(0x82, b"\x78\x21") + encode_ber_tlv(0x83, self.fid.to_bytes(2, "big"))
        if self.aid is not None:
            body += encode_ber_tlv(0x84, self.aid)
        body += encode_ber_tlv(0x8A, b"\x05")
        return encode_ber_tlv(0x62, body)


@dataclass(slots=True)
class _Channel:
    df: _DF
    ef: _EF | None = None
    app: str | None = None  # "pkcs15" | "iotsafe" | "isd"
    adf: _DF | None = None
    scp: Scp03Card | None = None
    pending: bytes = b""
    pending_sw: int = 0x9000


class VirtualUicc:
    """Processes command APDUs (bytes) into response APDUs (bytes) for one emulated card.

    ``save`` persists the state after changes the card makes itself (SCP03 sequence counter,
    generated keys). :meth:`reset` is a power cycle: channels close, sessions end.
    """

    def __init__(self, state: VseState, save: Callable[[VseState], None] | None = None) -> None:
        self._save = save
        self.load(state)

    def load(self, state: VseState) -> None:
        """(Re-)personalise from ``state`` and reset."""
        self.state = state
        self.atr = bytes.fromhex(state.atr)
        self.isd_aid = bytes.fromhex(state.isd_aid)
        p = state.pkcs15
        self.pkcs15_aid = bytes.fromhex(p.aid)
        bootstrap = bytes.fromhex(p.bootstrap)
        if p.file_size is not None and p.file_size > len(bootstrap):
            bootstrap += b"\xff" * (p.file_size - len(bootstrap))
        odf_fid, dodf_fid, bs_fid = (int(x, 16) for x in (p.odf_fid, p.dodf_fid, p.bootstrap_fid))
        dodf = encode_dodf_oid_do(
            bs_fid.to_bytes(2, "big"),
            label=p.label,
            misencoded_oid=p.misencoded_oid,
            private=p.private,
        )
        self.adf = _DF(
            0x7FF0,
            self.pkcs15_aid,
            {
                odf_fid: _EF(
                    odf_fid,
                    encode_odf([OdfEntry(OdfKind.DATA_OBJECTS, dodf_fid.to_bytes(2, "big"))]),
                ),
                dodf_fid: _EF(dodf_fid, dodf),
                bs_fid: _EF(bs_fid, bootstrap, secured=p.require_secure_channel),
            },
        )
        template = encode_ber_tlv(
            0x61,
            encode_ber_tlv(0x4F, self.pkcs15_aid)
            + encode_ber_tlv(0x50, b"PKCS#15")
            + encode_ber_tlv(0x51, b"\x3f\x00\x7f\xf0"),
        )
        record = template + b"\xff" * (_EF_DIR_RECORD - len(template))
        self.mf = _DF(
            0x3F00,
            None,
            {
                0x2F00: _EF(
                    0x2F00, records=[record, b"\xff" * _EF_DIR_RECORD], record_length=_EF_DIR_RECORD
                ),
                0x2FE2: _EF(0x2FE2, encode_iccid(state.iccid)),
            },
        )
        self.keys = StaticKeys.from_hex(
            state.scp03.enc, state.scp03.mac, state.scp03.dek, state.scp03.kvn
        )
        self.applet = IotSafeApplet(state.iot_safe, self._persist)
        self.iot_safe_aid = bytes.fromhex(state.iot_safe.aid)
        self.reset()

    def reset(self) -> None:
        self.channels: dict[int, _Channel] = {0: _Channel(self.mf)}
        self.applet.reset()
        self.pin1_verified = False

    def _persist(self) -> None:
        if self._save is not None:
            self._save(self.state)

    # -- entry ----------------------------------------------------------------------------------

    def process(self, raw: bytes) -> bytes:
        """One command APDU in, one response APDU out (never raises)."""
        try:
            command = CommandApdu.decode(raw)
        except ApduError:
            return b"\x67\x00"
        try:
            channel = channel_of(command.cla)
        except ApduError:
            return b"\x6e\x00"
        ch = self.channels.get(channel)
        if ch is None:
            return b"\x68\x81"
        if command.ins == 0xC0 and not command.cla & 0x80:
            return self._get_response(ch, command)
        ch.pending = b""
        secured = ch.scp is not None and ch.scp.active
        if secured and command.ins not in (0x50,) and not (command.ins == 0x70 and channel == 0):
            assert ch.scp is not None
            try:
                command = ch.scp.unwrap(command)
            except Scp03Error:
                log.info("channel %d: secure messaging check failed, session closed", channel)
                return b"\x69\x82"
        try:
            response = self._dispatch(ch, channel, command)
        except Exception:  # a card never crashes: report "no precise diagnosis"
            log.exception("unexpected error processing INS %02X", command.ins)
            response = ResponseApdu.of(b"", 0x6F00)
        if secured and ch.scp is not None and ch.scp.active:
            response = ch.scp.wrap(response)
        return self._deliver(ch, command, response)

    def _deliver(self, ch: _Channel, command: CommandApdu, response: ResponseApdu) -> bytes:
        data, sw = response.data, response.sw.value
        if not data:
            return sw.to_bytes(2, "big")
        short_le = command.le if command.le is not None and not command.extended else None
        wrong_le = short_le not in (None, 256) and short_le != len(data)
        if command.ins in (0xCA, 0xCB) and wrong_le and len(data) <= 256:
            return bytes([0x6C, len(data) & 0xFF])
        if self.state.t0_get_response and command.case == 4 and not command.extended:
            ch.pending, ch.pending_sw = data, sw
            return bytes([0x61, min(len(data), 256) & 0xFF])
        limit = command.le if command.le is not None else 256
        if len(data) > limit:
            ch.pending, ch.pending_sw = data[limit:], sw
            rest = len(ch.pending)
            return data[:limit] + bytes([0x61, min(rest, 256) & 0xFF])
        return data + sw.to_bytes(2, "big")

    def _get_response(self, ch: _Channel, command: CommandApdu) -> bytes:
        if not ch.pending:
            return b"\x69\x85"
        want = command.le or 256
        if want > len(ch.pending):
            return bytes([0x6C, len(ch.pending) & 0xFF])
        chunk, ch.pending = ch.pending[:want], ch.pending[want:]
        if ch.pending:
            return chunk + bytes([0x61, min(len(ch.pending), 256) & 0xFF])
        return chunk + ch.pending_sw.to_bytes(2, "big")

    # -- dispatch -------------------------------------------------------------------------------

    def _dispatch(self, ch: _Channel, channel: int, cmd: CommandApdu) -> ResponseApdu:
        ins, proprietary = cmd.ins, bool(cmd.cla & 0x80)
        if ins == 0x70 and not proprietary:
            return self._manage_channel(channel, cmd)
        if ins == 0xA4 and not proprietary:
            return self._select(ch, cmd)
        if ins == 0x20 and not proprietary:
            return self._verify(cmd)
        if ch.app == "iotsafe" and proprietary and ins not in (0x50, 0x82):
            return self.applet.process(
                cmd,
                user_verified=self.state.pin1 is None or self.pin1_verified,
                secured=self._secured_33(ch),
            )
        if ins == 0xB0 and not proprietary:
            return self._read_binary(ch, cmd)
        if ins == 0xB2 and not proprietary:
            return self._read_record(ch, cmd)
        if ins == 0x50 and proprietary and ch.app in ("isd", "pkcs15", "iotsafe"):
            return self._initialize_update(ch, cmd)
        if ins == 0x82 and proprietary and ch.app in ("isd", "pkcs15", "iotsafe"):
            if ch.scp is None:
                return ResponseApdu.of(b"", 0x6985)
            return ch.scp.external_authenticate(cmd)
        if ins == 0xCA and proprietary and ch.app == "isd":
            return self._get_data(cmd)
        if not proprietary and ins in (0xCA, 0xCB, 0xD6, 0xDC, 0xE2, 0x20, 0x88):
            return ResponseApdu.of(b"", 0x6985)
        return ResponseApdu.of(b"", 0x6D00 if not proprietary or ch.app else 0x6E00)

    def _verify(self, cmd: CommandApdu) -> ResponseApdu:
        """VERIFY PIN (TS 102 221 §11.1.9) of PIN1 (key reference 01)."""
        if cmd.p1 != 0x00 or cmd.p2 != 0x01:
            return ResponseApdu.of(b"", 0x6A86 if cmd.p1 else 0x6A88)
        pin = self.state.pin1
        if pin is None:
            return ResponseApdu.of(b"", 0x6984)  # PIN1 disabled
        tries = self.state.pin1_tries
        if not cmd.data:  # how many tries are left
            if self.pin1_verified:
                return ResponseApdu.of(b"", 0x9000)
            return ResponseApdu.of(b"", 0x6983 if tries <= 0 else 0x63C0 | tries)
        if len(cmd.data) != 8:
            return ResponseApdu.of(b"", 0x6700)
        if tries <= 0:
            return ResponseApdu.of(b"", 0x6983)
        if hmac.compare_digest(cmd.data, pin.encode().ljust(8, b"\xff")):
            self.pin1_verified = True
            if tries != _PIN_TRIES:
                self.state.pin1_tries = _PIN_TRIES
                self._persist()
            return ResponseApdu.of(b"", 0x9000)
        self.pin1_verified = False
        self.state.pin1_tries = tries - 1
        self._persist()
        return ResponseApdu.of(b"", 0x63C0 | (tries - 1))

    def _manage_channel(self, channel: int, cmd: CommandApdu) -> ResponseApdu:
        if cmd.p1 == 0x00:
            if channel != 0 or cmd.p2 != 0:
                return ResponseApdu.of(b"", 0x6A86)
            for n in range(1, self.state.max_channels + 1):
                if n not in self.channels:
                    self.channels[n] = _Channel(self.mf)
                    return ResponseApdu.of(bytes([n]), 0x9000)
            return ResponseApdu.of(b"", 0x6A81)
        if cmd.p1 == 0x80:
            target = cmd.p2 or channel
            if target == 0:
                return ResponseApdu.of(b"", 0x6A86)
            if target not in self.channels:
                return ResponseApdu.of(b"", 0x6A88)
            del self.channels[target]
            self.applet.reset(target)
            return ResponseApdu.of(b"", 0x9000)
        return ResponseApdu.of(b"", 0x6A86)

    def _fcp_response(self, cmd: CommandApdu, fcp: bytes) -> ResponseApdu:
        if cmd.p2 & 0x0C == 0x0C:
            return ResponseApdu.of(b"", 0x9000)
        return ResponseApdu.of(fcp, 0x9000)

    def _select(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        data = cmd.data
        if cmd.p1 == 0x04:
            if data and self.pkcs15_aid.startswith(data):
                ch.df = ch.adf = self.adf
                ch.ef, ch.app, ch.scp = None, "pkcs15", None
                return self._fcp_response(cmd, self.adf.fcp())
            for aid, app in ((self.iot_safe_aid, "iotsafe"), (self.isd_aid, "isd")):
                if data and aid.startswith(data):
                    ch.app, ch.ef, ch.scp = app, None, None
                    if app == "iotsafe":
                        self.applet.reset(channel_of(cmd.cla))
                    fci = encode_ber_tlv(0x6F, encode_ber_tlv(0x84, aid))
                    return ResponseApdu.of(b"" if cmd.p2 & 0x0C == 0x0C else fci, 0x9000)
            return ResponseApdu.of(b"", 0x6A82)
        if len(data) < 2 or len(data) % 2:
            return ResponseApdu.of(b"", 0x6A80 if cmd.p1 in (0x08, 0x09) else 0x6700)
        fids = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        if cmd.p1 == 0x00 and len(fids) == 1:
            return self._select_fid(ch, cmd, fids[0])
        if cmd.p1 in (0x08, 0x09):
            df = self.mf if cmd.p1 == 0x08 else ch.df
            for index, fid in enumerate(fids):
                last = index == len(fids) - 1
                if fid == 0x7FFF:
                    if ch.adf is None:
                        return ResponseApdu.of(b"", 0x6A82)
                    df = ch.adf
                    if last:
                        ch.df, ch.ef = df, None
                        return self._fcp_response(cmd, df.fcp())
                    continue
                if df is self.mf and self.adf.fid == fid:
                    df = self.adf
                    continue
                ef = df.children.get(fid)
                if ef is None or not last:
                    return ResponseApdu.of(b"", 0x6A82)
                ch.df, ch.ef = df, ef
                return self._fcp_response(cmd, ef.fcp())
            ch.df, ch.ef = df, None
            return self._fcp_response(cmd, df.fcp())
        return ResponseApdu.of(b"", 0x6A86)

    def _select_fid(self, ch: _Channel, cmd: CommandApdu, fid: int) -> ResponseApdu:
        if fid == 0x3F00:
            ch.df, ch.ef = self.mf, None
            return self._fcp_response(cmd, self.mf.fcp())
        if fid == 0x7FFF and ch.adf is not None:
            ch.df, ch.ef = ch.adf, None
            return self._fcp_response(cmd, ch.adf.fcp())
        for df in (ch.df, self.mf):
            ef = df.children.get(fid)
            if ef is not None:
                ch.df, ch.ef = df, ef
                return self._fcp_response(cmd, ef.fcp())
        return ResponseApdu.of(b"", 0x6A82)

    def _read_binary(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        ef = ch.ef
        if ef is None:
            return ResponseApdu.of(b"", 0x6986)
        if ef.records is not None:
            return ResponseApdu.of(b"", 0x6981)
        if cmd.p1 & 0x80:
            return ResponseApdu.of(b"", 0x6A81)  # short EF identifiers are not offered
        if ef.secured and not self._secured_33(ch):
            return ResponseApdu.of(b"", 0x6982)
        offset = (cmd.p1 << 8) | cmd.p2
        if offset > len(ef.data):
            return ResponseApdu.of(b"", 0x6B00)
        le = cmd.le or 256
        chunk = ef.data[offset : offset + le]
        if len(chunk) < le and le != 256 and not cmd.extended:
            return ResponseApdu.of(chunk, 0x6282)
        return ResponseApdu.of(chunk, 0x9000)

    @staticmethod
    def _secured_33(ch: _Channel) -> bool:
        scp = ch.scp
        return (
            scp is not None
            and scp.active
            and scp.session is not None
            and scp.session.level == SecurityLevel(0x33)
        )

    def _read_record(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        ef = ch.ef
        if ef is None:
            return ResponseApdu.of(b"", 0x6986)
        if ef.records is None:
            return ResponseApdu.of(b"", 0x6981)
        if cmd.p2 != 0x04:
            return ResponseApdu.of(b"", 0x6A86)
        if not 1 <= cmd.p1 <= len(ef.records):
            return ResponseApdu.of(b"", 0x6A83)
        return ResponseApdu.of(ef.records[cmd.p1 - 1], 0x9000)

    def _initialize_update(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        sd_aid = self.isd_aid
        state = self.state.scp03
        ch.scp = Scp03Card(self.keys, sd_aid, state.sequence_counter, i=state.i)
        response = ch.scp.initialize_update(cmd)
        if ch.scp.sequence_counter != state.sequence_counter:
            state.sequence_counter = ch.scp.sequence_counter
            self._persist()
        return response

    def _get_data(self, cmd: CommandApdu) -> ResponseApdu:
        tag = (cmd.p1 << 8) | cmd.p2
        s = self.state
        gp = bytes.fromhex("2A864886FC6B")
        values: dict[int, bytes] = {
            0x9F7F: bytes.fromhex(s.cplc),
            0x0042: bytes.fromhex(s.iin),
            0x0045: bytes.fromhex(s.cin),
            0x00C1: s.scp03.sequence_counter.to_bytes(3, "big"),
            0x0066: encode_ber_tlv(
                0x73,
                (
                    encode_ber_tlv(0x06, gp + b"\x01")
                    + encode_ber_tlv(
                        0x60, encode_ber_tlv(0x06, encode_oid("1.2.840.114283.2.2.3.1"))
                    )
                    + encode_ber_tlv(0x63, encode_ber_tlv(0x06, gp + b"\x03"))
                    + encode_ber_tlv(
                        0x64, encode_ber_tlv(0x06, gp + b"\x04" + bytes([0x03, s.scp03.i]))
                    )
                ),
            ),
            0x00E0: b"".join(
                encode_ber_tlv(0xC0, bytes([kid, s.scp03.kvn, 0x88, len(self.keys.enc)]))
                for kid in (1, 2, 3)
            ),
        }
        value = values.get(tag)
        if value is None:
            return ResponseApdu.of(b"", 0x6A88)
        tag_bytes = tag.to_bytes(2, "big").lstrip(b"\x00") or b"\x00"
        return ResponseApdu.of(tag_bytes + encode_ber_length(len(value)) + value, 0x9000)
