"""The persistent personalisation of the virtual secure element, as a JSON file.

The file is the card's non-volatile memory: identification data (ATR, ICCID, CPLC, IIN, CIN),
PIN1 and its retry counter, the issuer security domain's SCP03 key set and sequence counter,
the PKCS #15 application with its EF.ODF/EF.DODF/EF LwM2M_Bootstrap, and the IoT SAFE
containers (P-256 private keys generated on the card, public keys, files and secrets) with the
applet's capacity. It holds secrets in clear, like a card's EEPROM:
it is written with mode 0600, atomically (temporary file + rename), and never logged.

``lwm2m sc write-bootstrap --state FILE`` updates the bootstrap content offline; a running VSE
picks the change up at the next card reset (power cycle), like re-personalising a card.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_ATR",
    "DEFAULT_SCP03_KEY",
    "IotSafeState",
    "Pkcs15State",
    "Scp03State",
    "VseState",
    "load_state",
    "save_state",
]

#: A UICC-like ATR offering T=0 and T=1 (TS 102 221 §6.3).
DEFAULT_ATR = "3B9F96801FC78031E073FE211B633A204E83009000" + "31"
#: GlobalPlatform's well-known test key 40..4F (for the default, test-only key set).
DEFAULT_SCP03_KEY = "404142434445464748494A4B4C4D4E4F"


@dataclass(slots=True)
class Scp03State:
    kvn: int = 0x30
    enc: str = DEFAULT_SCP03_KEY
    mac: str = DEFAULT_SCP03_KEY
    dek: str = DEFAULT_SCP03_KEY
    sequence_counter: int = 0
    #: The "i" parameter: 70 = pseudo-random challenge, R-MAC and R-ENC supported.
    i: int = 0x70

    def __repr__(self) -> str:
        return f"Scp03State(kvn=0x{self.kvn:02X}, counter={self.sequence_counter}, keys redacted)"


@dataclass(slots=True)
class Pkcs15State:
    aid: str = "A000000063504B43532D3135"
    odf_fid: str = "5031"
    dodf_fid: str = "6430"
    bootstrap_fid: str = "6432"
    label: str = "LwM2M Bootstrap"
    #: Encode the DODF OID as the spec example does (``06 06 06 04 67 2B 09 01``).
    misencoded_oid: bool = False
    #: The DODF "private" flag (the file needs cardholder verification, Appendix G.2.4).
    private: bool = False
    #: Reading EF LwM2M_Bootstrap needs an SCP03 session at level 33 (Appendix H).
    require_secure_channel: bool = False
    #: The EF LwM2M_Bootstrap content, hex.
    bootstrap: str = ""
    #: The file size; content shorter than this is padded with FF. None: the content's size.
    file_size: int | None = None

    def __repr__(self) -> str:
        return (
            f"Pkcs15State(aid={self.aid}, bootstrap of {len(self.bootstrap) // 2} bytes, "
            f"secure channel required={self.require_secure_channel})"
        )


@dataclass(slots=True)
class IotSafeState:
    aid: str = "A0000005590010"
    applet_id: str = "4C574D324D2D565345"  # "LWM2M-VSE"
    #: Each: {"id": hex, "label": text, "key": hex scalar or null, "type": 0x13, "usage": 1}
    private_keys: list[dict[str, Any]] = field(default_factory=list)
    #: Each: {"id": hex, "label": text, "point": hex or null}
    public_keys: list[dict[str, Any]] = field(default_factory=list)
    #: Each: {"id": hex, "label": text, "data": hex, "usage": 1}
    files: list[dict[str, Any]] = field(default_factory=list)
    #: Each: {"id": hex, "label": text, "value": hex}
    secrets: list[dict[str, Any]] = field(default_factory=list)
    #: Capacity (GET DATA P1 00 tags B1..B4); containers made by the administrative extension
    #: (``"admin": true``) count against it like the issuer's.
    max_private_keys: int = 32
    max_public_keys: int = 8
    max_files: int = 128
    max_secrets: int = 32
    #: Largest file container (bytes) the administrative extension may write.
    max_file_size: int = 32768
    #: Key derivations offered (GET DATA tag 94: 01 TLS 1.2 PRF-SHA256, 02 HKDF); COMPUTE PRF
    #: and COMPUTE HKDF answer 6D00 when their bit is clear (a card without them).
    key_derivations: int = 0x03
    #: Offer the administrative extension (CREATE / PUT / DELETE OBJECT, not IoT.05).
    admin_extension: bool = True
    #: The administrative extension needs an SCP03 session at level 33 on the applet channel.
    admin_secure_channel: bool = False

    def __repr__(self) -> str:
        return (
            f"IotSafeState({len(self.private_keys)} private keys, {len(self.public_keys)} "
            f"public keys, {len(self.files)} files, {len(self.secrets)} secrets)"
        )


@dataclass(slots=True)
class VseState:
    atr: str = DEFAULT_ATR
    iccid: str = "8988211000000000003"
    isd_aid: str = "A000000151000000"
    cplc: str = (
        "479051674750500101005123001122330001479151244792512447935125000000014794512600000002"
    )
    iin: str = "89490001"
    cin: str = "0102030405060708"
    #: PIN1 (4..8 characters, TS 102 221 §9.5.1) or None when disabled. While it is enabled the
    #: IoT SAFE applet refuses its key commands (6982) until VERIFY PIN succeeded after the last
    #: reset — the VSE's stand-in for an access condition on the applet.
    pin1: str | None = None
    #: Tries left before PIN1 blocks (6983); reset to 3 by a correct VERIFY.
    pin1_tries: int = 3
    #: Answer ``61xx`` to commands with data and Le (T=0 behaviour, TS 102 221 §7.3.1.1.4).
    t0_get_response: bool = True
    max_channels: int = 19
    scp03: Scp03State = field(default_factory=Scp03State)
    pkcs15: Pkcs15State = field(default_factory=Pkcs15State)
    iot_safe: IotSafeState = field(default_factory=IotSafeState)

    @classmethod
    def default(cls) -> VseState:
        """A fresh card: empty bootstrap file, IoT SAFE key containers to generate into, a PSK
        secret with its identity file, and a writable public key container for peers."""
        state = cls()
        state.iot_safe.private_keys = [
            {"id": "01", "label": "device", "key": None, "type": 0x13, "usage": 0x02},
            {"id": "02", "label": "spare", "key": None, "type": 0x13, "usage": 0x01},
        ]
        state.iot_safe.public_keys = [{"id": "10", "label": "peer", "point": None}]
        state.iot_safe.secrets = [
            {"id": "20", "label": "psk", "value": "000102030405060708090A0B0C0D0E0F"},
        ]
        state.iot_safe.files = [
            {"id": "30", "label": "psk", "data": b"vse-device".hex(), "usage": 0x01},
            {"id": "31", "label": "certificate", "data": "", "usage": 0x02},
        ]
        return state

    def __repr__(self) -> str:
        pin = "disabled" if self.pin1 is None else "enabled"
        return (
            f"VseState(iccid={self.iccid}, PIN1 {pin}, {self.scp03!r}, {self.pkcs15!r}, "
            f"{self.iot_safe!r})"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VseState:
        data = dict(data)
        scp = Scp03State(**data.pop("scp03", {}))
        pkcs = Pkcs15State(**data.pop("pkcs15", {}))
        iot = IotSafeState(**data.pop("iot_safe", {}))
        return cls(**data, scp03=scp, pkcs15=pkcs, iot_safe=iot)


def load_state(path: str | os.PathLike[str]) -> VseState:
    """Read the state file; a missing file gives :meth:`VseState.default` (and is created)."""
    file = Path(path)
    if not file.exists():
        state = VseState.default()
        save_state(state, file)
        return state
    try:
        data = json.loads(file.read_text())
        if not isinstance(data, dict):  # dict([]) would be the default card
            raise TypeError("not a JSON object")
        return VseState.from_json(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{file}: not a VSE state file ({type(exc).__name__})") from None


def save_state(state: VseState, path: str | os.PathLike[str]) -> None:
    """Write atomically with mode 0600."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(state.to_json(), out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, file)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
