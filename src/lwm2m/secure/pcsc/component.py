"""``pcsc:`` — a Secure Component on a UICC / eSE reached through PC/SC, its keys and secrets
held by a GSMA IoT SAFE (IoT.05) applet (ARCHITECTURE decision 4).

Key material never leaves the card: :class:`PcscKeyHandle` signs with COMPUTE SIGNATURE in
pre-hashed (pad-and-sign) mode and agrees keys with PUT PUBLIC KEY + COMPUTE DH;
:class:`PcscPskHandle` derives TLS 1.2 / DTLS 1.2 master secrets with COMPUTE PRF over the secret
container holding the PSK (RFC 4279 premaster formed on the card). :meth:`PcscComponent.info`
is the SCS-2 identification data read from the card; :meth:`PcscComponent.read_bootstrap` the
SCS-10 smartcard bootstrap (LwM2M-TS-Core Appendix G/H).

URI: ``pcsc:`` (first reader) or ``pcsc:?reader=Virtual%20PCD%2000%2000&aid=A0000005590010``;
``reader`` may be a full name, a substring or an index.

Conventions of this backend (IoT.05 leaves them to the issuer): the PSK identity of a secret
container is the content of the file container with the same label (else the label itself);
a key agreement writes the peer's public key into the public key container labelled
``peer_container`` (default ``"peer"``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lwm2m.model.registry import ModelRegistry
from lwm2m.secure.interfaces import (
    Capability,
    ComponentInfo,
    ComponentType,
    Identifier,
)
from lwm2m.secure.pcsc import iotsafe
from lwm2m.secure.pcsc.apdu import CommandApdu
from lwm2m.secure.pcsc.bootstrap_file import Layout
from lwm2m.secure.pcsc.card import (
    Card,
    CardIdentification,
    SmartcardBootstrap,
    read_identification,
    read_smartcard_bootstrap,
)
from lwm2m.secure.pcsc.errors import IotSafeError, PcscError, StatusWordError
from lwm2m.secure.pcsc.iotsafe import ObjectKind, ObjectRef
from lwm2m.secure.pcsc.iso7816 import Transmit
from lwm2m.secure.pcsc.scp03 import StaticKeys

__all__ = ["KeyNotFound", "PcscComponent", "PcscKeyHandle", "PcscPskHandle", "parse_pcsc_uri"]

_MASTER_SECRET_LENGTH = 48


class KeyNotFound(PcscError):
    """The IoT SAFE applet has no container with that id or label."""


@dataclass(frozen=True, slots=True)
class PcscUri:
    reader: str | int | None = None
    aid: bytes = iotsafe.IOT_SAFE_AID


def parse_pcsc_uri(uri: str) -> PcscUri:
    """``pcsc:[?reader=NAME|INDEX][&aid=HEX]``.

    >>> parse_pcsc_uri("pcsc:?reader=1").reader
    1
    """
    parts = urlsplit(uri)
    if parts.scheme != "pcsc":
        raise ValueError(f"not a pcsc: URI: {uri!r}")
    query = parse_qs(parts.query)
    reader: str | int | None = None
    if "reader" in query:
        text = unquote(query["reader"][0])
        reader = int(text) if text.isdigit() else text
    aid = bytes.fromhex(query["aid"][0]) if "aid" in query else iotsafe.IOT_SAFE_AID
    return PcscUri(reader, aid)


def _ref(ref: ObjectRef | str | bytes) -> ObjectRef:
    if isinstance(ref, ObjectRef):
        return ref
    return ObjectRef.by_label(ref)


class PcscComponent:
    """The ``pcsc:`` Secure Component backend over any ``Transmit`` callable.

    Calls block on the card: ``is_blocking`` tells the asyncio adapters to run them in a thread.
    One lock serialises every exchange, so handles may be shared between threads.
    """

    is_blocking = True

    def __init__(
        self,
        transmit: Transmit,
        *,
        atr: bytes = b"",
        aid: bytes = iotsafe.IOT_SAFE_AID,
        peer_container: ObjectRef | str = "peer",
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._card = Card(transmit)
        self._transmit = transmit
        self.atr = atr
        self.aid = aid
        self.peer_container = _ref(peer_container)
        self._on_close = on_close
        self._channel: int | None = None
        self._lock = threading.RLock()
        self._info: CardIdentification | None = None

    @classmethod
    def open(cls, uri: str = "pcsc:", *, timeout: float = 5.0) -> PcscComponent:
        """Connect through pcscd to the reader the URI names (waiting up to ``timeout``)."""
        from lwm2m.secure.pcsc.transport import PcscTransport  # the only pyscard user

        parsed = parse_pcsc_uri(uri)
        transport = PcscTransport(parsed.reader)
        transport.connect(timeout)
        return cls(transport.transmit, atr=transport.atr, aid=parsed.aid, on_close=transport.close)

    def __repr__(self) -> str:
        return f"PcscComponent(aid={self.aid.hex().upper()}, channel={self._channel})"

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                try:
                    self._card.close_channel(self._channel)
                except PcscError:
                    pass
                self._channel = None
            if self._on_close is not None:
                self._on_close()
                self._on_close = None

    def __enter__(self) -> PcscComponent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- IoT SAFE plumbing ----------------------------------------------------------------------

    def _applet_channel(self) -> int:
        if self._channel is None:
            channel = self._card.open_channel()
            try:
                self._card.send(
                    iotsafe.select_applet(channel=channel, aid=self.aid), "SELECT IoT SAFE"
                )
            except PcscError:
                self._card.close_channel(channel)
                raise
            self._channel = channel
        return self._channel

    def _call(self, build: Callable[[int], CommandApdu], name: str) -> bytes:
        with self._lock:
            channel = self._applet_channel()
            response = self._card.exchange(build(channel))
            if response.sw.value in (0x6A82, 0x6A88):
                raise KeyNotFound(f"{name}: no such container ({response.sw})")
            return response.check(name)

    # -- identification and bootstrap -----------------------------------------------------------

    def identification(self, *, refresh: bool = False) -> CardIdentification:
        """The card's identification data (SCS-2) as read from it, once and cached."""
        with self._lock:
            if self._info is None or refresh:
                self._info = read_identification(self._transmit, atr=self.atr)
            return self._info

    @property
    def capabilities(self) -> Capability:
        return (
            Capability.PSK
            | Capability.SIGN
            | Capability.ECDH
            | Capability.KEY_GENERATION
            | Capability.NON_EXTRACTABLE
        )

    def info(self) -> ComponentInfo:
        """:class:`~lwm2m.secure.interfaces.ComponentInfo` of the card (SCS-2): ICCID, CPLC,
        IIN/CIN as identifiers; CPLC fabricator/type/OS as manufacturer/model/platform."""
        ident = self.identification()
        ids: list[Identifier] = []
        if ident.iccid:
            ids.append(Identifier("iccid", ident.iccid))
        if ident.cplc is not None:
            ids.append(Identifier("cplc", ident.cplc.encode().hex().upper()))
        if ident.cin is not None:
            ids.append(Identifier("card-serial", ident.cin.hex().upper()))
        if ident.iin is not None:
            ids.append(Identifier("iin", ident.iin.hex().upper()))
        cplc = ident.cplc
        return ComponentInfo(
            type=ComponentType.UICC,
            secure_hardware=True,
            backend="pcsc",
            label=(ident.iot_safe.applet_id or b"").decode("ascii", "replace")
            if ident.iot_safe is not None
            else "",
            manufacturer=cplc.ic_fabricator.hex().upper() if cplc else "",
            model=cplc.ic_type.hex().upper() if cplc else "",
            serial_number=cplc.ic_serial_number.hex().upper() if cplc else "",
            platform_version=(
                f"{cplc.os_id.hex().upper()}-{cplc.os_release_level.hex().upper()}" if cplc else ""
            ),
            firmware_version=(ident.card_data.gp_version or "") if ident.card_data else "",
            identifiers=tuple(ids),
            capabilities=self.capabilities,
        )

    def read_bootstrap(
        self,
        *,
        scp03_keys: StaticKeys | None = None,
        registry: ModelRegistry | None = None,
        layout: Layout = Layout.AUTO,
    ) -> SmartcardBootstrap:
        """The smartcard bootstrap data (SCS-10), optionally over SCP03 (Appendix H)."""
        with self._lock:
            return read_smartcard_bootstrap(
                self._transmit, scp03_keys=scp03_keys, registry=registry, layout=layout
            )

    # -- keys and secrets -----------------------------------------------------------------------

    def objects(self) -> iotsafe.ObjectList:
        return iotsafe.parse_object_list(
            self._call(lambda ch: iotsafe.get_object_list(channel=ch), "IoT SAFE GET DATA")
        )

    def key(self, ref: ObjectRef | str | bytes) -> PcscKeyHandle:
        """A handle on a key pair container (by label, or an :class:`ObjectRef`)."""
        handle = PcscKeyHandle(self, _ref(ref))
        handle.public_key()  # fails now with KeyNotFound rather than at first use
        return handle

    def generate_key(self, ref: ObjectRef | str | bytes) -> PcscKeyHandle:
        """On-card P-256 key pair generation in the container ``ref``."""
        target = _ref(ref)
        data = self._call(
            lambda ch: iotsafe.generate_key_pair(target, channel=ch), "IoT SAFE GENERATE KEY PAIR"
        )
        handle = PcscKeyHandle(self, target)
        handle._public = _public_key(iotsafe.parse_public_key(data))
        return handle

    def psk(self, ref: ObjectRef | str | bytes) -> PcscPskHandle:
        """A handle on a secret container holding a PSK."""
        target = _ref(ref)
        identity = target.label or target.id or b""
        if target.label is not None:
            try:
                identity = self.read_file(ObjectRef(label=target.label))
            except KeyNotFound:
                pass
        self._call(
            lambda ch: iotsafe.get_object_info(ObjectKind.SECRET, target, channel=ch),
            "IoT SAFE GET DATA secret",
        )
        return PcscPskHandle(self, target, identity)

    def random(self, length: int) -> bytes:
        out = bytearray()
        while len(out) < length:
            want = min(256, length - len(out))

            def build(ch: int, n: int = want) -> CommandApdu:
                return iotsafe.get_random(n, channel=ch)

            out += self._call(build, "IoT SAFE GET RANDOM")
        return bytes(out[:length])

    def read_file(self, ref: ObjectRef | str | bytes) -> bytes:
        """The content of a file container (e.g. a certificate)."""
        target = _ref(ref)
        raw = self._call(
            lambda ch: iotsafe.get_object_info(ObjectKind.FILE, target, channel=ch),
            "IoT SAFE GET DATA file",
        )
        info = iotsafe.parse_object_info_data(raw)
        size = getattr(info, "size", None) or 0
        out = bytearray()
        while len(out) < size:
            want = min(0xE0, size - len(out))
            offset = len(out)

            def build_read(ch: int, at: int = offset, n: int = want) -> CommandApdu:
                return iotsafe.read_file(target, at, n, channel=ch)

            out += self._call(build_read, "IoT SAFE READ FILE")
        return bytes(out)


def _public_key(point: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise IotSafeError(
            "public key is not a P-256 point", offset=0, field="public key data"
        ) from None


class PcscKeyHandle:
    """A P-256 key pair in an IoT SAFE private key container."""

    def __init__(self, component: PcscComponent, ref: ObjectRef) -> None:
        self._component = component
        self.ref = ref
        self._public: ec.EllipticCurvePublicKey | None = None

    def __repr__(self) -> str:
        return f"PcscKeyHandle({self.ref})"

    @property
    def label(self) -> str:
        return (self.ref.label or self.ref.id or b"").decode("utf-8", "replace")

    @property
    def key_log_permitted(self) -> bool:
        return False

    def public_key(self) -> ec.EllipticCurvePublicKey:
        if self._public is None:
            data = self._component._call(
                lambda ch: iotsafe.read_public_key(self.ref, channel=ch), "IoT SAFE READ PUBLIC KEY"
            )
            self._public = _public_key(iotsafe.parse_public_key(data))
        return self._public

    def sign(self, data: bytes, *, prehashed: bool = False) -> bytes:
        """ECDSA-SHA256 over ``data`` (or over the given 32-byte digest), DER encoded."""
        digest = data if prehashed else hashlib.sha256(data).digest()
        if len(digest) != 32:
            raise ValueError("a pre-hashed SHA-256 digest has 32 bytes")
        comp = self._component
        with comp._lock:
            comp._call(
                lambda ch: iotsafe.compute_signature_init(self.ref, channel=ch),
                "IoT SAFE COMPUTE SIGNATURE INIT",
            )
            try:
                raw = comp._call(
                    lambda ch: iotsafe.compute_signature_update(channel=ch, final_hash=digest),
                    "IoT SAFE COMPUTE SIGNATURE UPDATE",
                )
            except StatusWordError:
                try:
                    comp._call(
                        lambda ch: iotsafe.compute_signature_close(channel=ch),
                        "IoT SAFE COMPUTE SIGNATURE close",
                    )
                except PcscError:
                    pass
                raise
        return iotsafe.parse_signature(raw)

    def exchange(self, peer: ec.EllipticCurvePublicKey) -> bytes:
        """ECDH (ECKA) with ``peer``: the shared secret's x-coordinate, computed on the card."""
        point = peer.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        comp = self._component
        with comp._lock:
            comp._call(
                lambda ch: iotsafe.put_public_key_init(comp.peer_container, channel=ch),
                "IoT SAFE PUT PUBLIC KEY INIT",
            )
            comp._call(
                lambda ch: iotsafe.put_public_key_update(point, channel=ch),
                "IoT SAFE PUT PUBLIC KEY UPDATE",
            )
            raw = comp._call(
                lambda ch: iotsafe.compute_dh(self.ref, comp.peer_container, channel=ch),
                "IoT SAFE COMPUTE DH",
            )
        return iotsafe.parse_secret(raw, 32)


class PcscPskHandle:
    """A PSK in an IoT SAFE secret container: the PSK never leaves the card."""

    def __init__(self, component: PcscComponent, ref: ObjectRef, identity: bytes) -> None:
        self._component = component
        self.ref = ref
        self.identity = identity

    def __repr__(self) -> str:
        return f"PcscPskHandle({self.ref}, identity of {len(self.identity)} bytes)"

    @property
    def label(self) -> str:
        return (self.ref.label or self.ref.id or b"").decode("utf-8", "replace")

    @property
    def key_log_permitted(self) -> bool:
        return False

    def derive_master_secret(
        self,
        label: bytes,
        seed: bytes,
        *,
        other_secret: bytes | None = None,
        length: int = _MASTER_SECRET_LENGTH,
    ) -> bytes:
        """PRF(premaster, label, seed)[:length] (RFC 5246 §8.1 with RFC 4279 §2 premaster):
        ``label`` is ``b"master secret"`` or ``b"extended master secret"``, ``seed`` the
        randoms or the session hash; ``other_secret`` the ECDHE share for ECDHE_PSK."""
        raw = self._component._call(
            lambda ch: iotsafe.compute_prf(
                self.ref, label + seed, length, channel=ch, other_secret=other_secret
            ),
            "IoT SAFE COMPUTE PRF",
        )
        return iotsafe.parse_secret(raw, length)
