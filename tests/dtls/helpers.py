"""In-memory DTLS peers on a fake clock: credentials, certificates and a lossy link."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lwm2m.dtls import (
    ConnectionClosed,
    DtlsConfiguration,
    DtlsConnection,
    DtlsCredentials,
    DtlsEvent,
    DtlsServer,
    HandshakeCompleted,
    RawPublicKeyVerifier,
    SoftwarePsk,
    SoftwarePskStore,
    SoftwareSigningKey,
    X509Verifier,
)
from lwm2m.dtls.constants import CipherSuite
from lwm2m.testing import require_component

CLIENT_ADDRESS: Hashable = ("10.0.0.1", 40000)
PSK_IDENTITY = b"urn:imei:490154203237518"
PSK = bytes.fromhex("00112233445566778899aabbccddeeff")

PSK_SUITES = (CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256)
ECDHE_SUITES = (
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
)


class FakeClock:
    """Time that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- credentials ----------------------------------------------------------------------------------


def psk_client(**config: Any) -> DtlsConnection:
    suites = config.pop("cipher_suites", PSK_SUITES)
    return DtlsConnection(
        configuration=DtlsConfiguration(is_client=True, cipher_suites=suites, **config),
        credentials=DtlsCredentials(psk=SoftwarePsk(PSK_IDENTITY, PSK)),
    )


def psk_server_credentials() -> DtlsCredentials:
    return DtlsCredentials(psk_store=SoftwarePskStore({PSK_IDENTITY: PSK}))


def dtls_server(credentials: DtlsCredentials | None = None, **config: Any) -> DtlsServer:
    return DtlsServer(
        configuration=DtlsConfiguration(is_client=False, **config),
        credentials=credentials or psk_server_credentials(),
    )


@dataclass
class Pki:
    """A CA with a server and a client leaf, all P-256 (fixture material)."""

    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    server_key: ec.EllipticCurvePrivateKey
    server: x509.Certificate
    client_key: ec.EllipticCurvePrivateKey
    client: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey | None = None
    intermediate: x509.Certificate | None = None


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    san: str | None = None,
    eku: x509.ObjectIdentifier | None = None,
    not_after: datetime.datetime | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        if san is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
            )
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(intermediate: bool = False) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_certificate("Test Root CA", ca_key, None, ca_key, ca=True)
    issuer, issuer_key = ca, ca_key
    inter_key = inter = None
    if intermediate:
        inter_key = ec.generate_private_key(ec.SECP256R1())
        inter = make_certificate("Test Intermediate", inter_key, ca, ca_key, ca=True)
        issuer, issuer_key = inter, inter_key
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = make_certificate(
        "server.example",
        server_key,
        issuer,
        issuer_key,
        ca=False,
        san="server.example",
        eku=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = make_certificate(
        "urn:imei:490154203237518",
        client_key,
        issuer,
        issuer_key,
        ca=False,
        san="client.example",
        eku=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    return Pki(ca_key, ca, server_key, server, client_key, client, inter_key, inter)


def x509_client_credentials(pki: Pki, **verifier: Any) -> DtlsCredentials:
    chain = (pki.client,) + ((pki.intermediate,) if pki.intermediate else ())
    return DtlsCredentials(
        signing_key=SoftwareSigningKey(pki.client_key),
        certificate_chain=chain,
        peer_verifier=X509Verifier(**({"trust_anchors": (pki.ca,)} | verifier)),
    )


def x509_server_credentials(pki: Pki, *, client_auth: bool = True, **extra: Any) -> DtlsCredentials:
    chain = (pki.server,) + ((pki.intermediate,) if pki.intermediate else ())
    return DtlsCredentials(
        signing_key=SoftwareSigningKey(pki.server_key),
        certificate_chain=chain,
        peer_verifier=X509Verifier(trust_anchors=(pki.ca,)) if client_auth else None,
        **extra,
    )


def rpk_pair() -> tuple[DtlsCredentials, DtlsCredentials]:
    """(client, server) credentials authenticating each other by raw public keys."""
    client_key = SoftwareSigningKey.generate()
    server_key = SoftwareSigningKey.generate()
    client = DtlsCredentials(
        signing_key=client_key,
        peer_verifier=RawPublicKeyVerifier([server_key.public_key()]),
    )
    server = DtlsCredentials(
        signing_key=server_key,
        peer_verifier=RawPublicKeyVerifier([client_key.public_key()]),
    )
    return client, server


# -- the link -------------------------------------------------------------------------------------


@dataclass
class Datagram:
    index: int
    to_server: bool
    data: bytes


Mutation = Callable[[Datagram], list[Datagram]]


@dataclass
class Link:
    """A client connection and a server demultiplexer joined by an in-memory network.

    ``mutate`` sees every datagram (numbered in order of sending) and returns what is
    delivered instead: ``[]`` drops it, two copies duplicate it. ``hold`` delays one datagram
    index until after the next datagram has been delivered (reordering).
    """

    client: DtlsConnection
    server: DtlsServer
    clock: FakeClock = field(default_factory=FakeClock)
    address: Hashable = CLIENT_ADDRESS
    mutate: Mutation | None = None
    hold: int | None = None
    sent: list[Datagram] = field(default_factory=list)
    client_events: list[DtlsEvent] = field(default_factory=list)
    server_events: list[DtlsEvent] = field(default_factory=list)
    _in_flight: list[Datagram] = field(default_factory=list)
    _held: Datagram | None = None

    def _collect(self) -> None:
        now = self.clock.now
        for data in self.client.datagrams_to_send(now):
            self._queue(True, data)
        for data, _address in self.server.datagrams_to_send(now):
            self._queue(False, data)
        while (event := self.client.next_event()) is not None:
            self.client_events.append(event)
        while (server_event := self.server.next_event()) is not None:
            self.server_events.append(server_event.event)  # type: ignore[arg-type]

    def _queue(self, to_server: bool, data: bytes) -> None:
        datagram = Datagram(len(self.sent), to_server, data)
        self.sent.append(datagram)
        delivered = self.mutate(datagram) if self.mutate else [datagram]
        if self.hold == datagram.index:
            self._held = datagram
            return
        self._in_flight.extend(delivered)

    def _deliver(self, datagram: Datagram) -> None:
        if datagram.to_server:
            self.server.receive_datagram(datagram.data, self.address, self.clock.now)
        else:
            self.client.receive_datagram(datagram.data, self.clock.now)

    def pump(self) -> None:
        """Deliver until nothing is in flight (no time passes)."""
        self._collect()
        for _ in range(10000):
            if not self._in_flight:
                if self._held is None:
                    return
                self._in_flight.append(self._held)
                self._held = None
            datagram = self._in_flight.pop(0)
            self._deliver(datagram)
            if self._held is not None and self._held is not datagram:
                held, self._held = self._held, None
                self._collect()
                self._deliver(held)
            self._collect()
        raise AssertionError("datagram storm")

    def timers(self) -> list[float]:
        return [t for t in (self.client.get_timer(), self.server.get_timer()) if t is not None]

    def run(self, *, connect: bool = True, max_time: float = 400.0) -> None:
        """Handshake until both sides completed (or failed), firing timers on the clock."""
        start = self.clock.now
        if connect:
            self.client.connect(self.clock.now)
        self.pump()
        while not self.done() and self.clock.now - start < max_time:
            timers = self.timers()
            if not timers:
                break
            self.clock.now = max(self.clock.now, min(timers))
            self.client.handle_timer(self.clock.now)
            self.server.handle_timer(self.clock.now)
            self.pump()

    def done(self) -> bool:
        return (
            self.completed(self.client_events) is not None
            and self.completed(self.server_events) is not None
        ) or any(isinstance(e, ConnectionClosed) for e in self.client_events + self.server_events)

    @staticmethod
    def completed(events: list[DtlsEvent]) -> HandshakeCompleted | None:
        return next((e for e in events if isinstance(e, HandshakeCompleted)), None)

    def exchange(self, payload: bytes = b"ping") -> tuple[bytes, bytes]:
        """Application data both ways; returns what each side received."""
        from lwm2m.dtls import ApplicationData

        self.client.send(payload)
        self.pump()
        self.server.send(self.address, payload[::-1])
        self.pump()
        at_server = [e.data for e in self.server_events if isinstance(e, ApplicationData)]
        at_client = [e.data for e in self.client_events if isinstance(e, ApplicationData)]
        return (at_server[-1] if at_server else b""), (at_client[-1] if at_client else b"")


require = require_component
