"""More handshake paths: defective or misplaced messages at each state, negotiation corner
cases and the LwM2M certificate-usage rules, each judged by what a peer sees: the fatal alert
(RFC 5246 §7.2), the state reached, the identity accepted."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lwm2m.buffer import Buffer
from lwm2m.dtls import (
    AlertDescription,
    CertificateIdentity,
    CertificateType,
    CertificateUsage,
    ConnectionClosed,
    DtlsConfiguration,
    DtlsConnection,
    DtlsCredentials,
    DtlsSession,
    HandshakeCompleted,
    MatchingType,
    PeerIdentity,
    PskIdentity,
    RawPublicKeyIdentity,
    SoftwarePsk,
    SoftwareSigningKey,
    X509Verifier,
)
from lwm2m.dtls import messages as m
from lwm2m.dtls.constants import CipherSuite, ContentType, ExtensionType, HandshakeType
from lwm2m.dtls.errors import Alert
from lwm2m.dtls.handshake import Handshake, HandshakeState, OutgoingMessage, SessionCache
from lwm2m.dtls.record import encode_record, parse_datagram
from lwm2m.dtls.trust import spki_der

from .helpers import (
    PSK,
    PSK_IDENTITY,
    Pki,
    make_certificate,
    make_pki,
    psk_server_credentials,
    rpk_pair,
    x509_client_credentials,
    x509_server_credentials,
)

AD, ET, _HT = AlertDescription, ExtensionType, HandshakeType
CH, SH, HVR, CERT = _HT.CLIENT_HELLO, _HT.SERVER_HELLO, _HT.HELLO_VERIFY_REQUEST, _HT.CERTIFICATE
SKE, CR, SHD = _HT.SERVER_KEY_EXCHANGE, _HT.CERTIFICATE_REQUEST, _HT.SERVER_HELLO_DONE
CV, CKE, FIN = _HT.CERTIFICATE_VERIFY, _HT.CLIENT_KEY_EXCHANGE, _HT.FINISHED
CCM8 = CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
ECDHE = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8
SCSV = CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV
DER = serialization.Encoding.DER
R = bytes(32)
NOW, DAY = datetime.datetime.now(datetime.UTC), datetime.timedelta(days=1)
C2S, S2C = True, False  # direction of a message: to the server / to the client


@cache
def pki() -> Pki:
    return make_pki()


class AnyRawKey:
    """A permissive custom verifier (the credential seam allows them): accepts any bytes."""

    certificate_types = (CertificateType.RAW_PUBLIC_KEY,)

    def verify(self, certificate_type: int, certificates: tuple[bytes, ...]) -> PeerIdentity:
        return RawPublicKeyIdentity(certificates[0])


def psk_client_credentials() -> DtlsCredentials:
    return DtlsCredentials(psk=SoftwarePsk(PSK_IDENTITY, PSK))


def key_only_server() -> DtlsCredentials:
    return DtlsCredentials(signing_key=SoftwareSigningKey.generate())  # no client authentication


def scenario(kind: str) -> tuple[DtlsCredentials, DtlsCredentials]:
    """(client, server) credentials."""
    if kind == "psk":
        return psk_client_credentials(), psk_server_credentials()
    if kind == "rpk":
        return rpk_pair()
    if kind == "x509":
        return x509_client_credentials(pki()), x509_server_credentials(pki())
    if kind == "any-key":
        return DtlsCredentials(peer_verifier=AnyRawKey()), key_only_server()
    if kind == "rpk-vs-psk":
        return rpk_pair()[0], psk_server_credentials()
    if kind == "psk+rpk-vs-rpk":
        rpk, server = rpk_pair()
        return replace(rpk, psk=SoftwarePsk(PSK_IDENTITY, PSK)), server
    anonymous = DtlsCredentials(peer_verifier=X509Verifier((pki().ca,)))  # no certificate
    return anonymous, x509_server_credentials(pki())


def connection(credentials: DtlsCredentials, **config: Any) -> DtlsConnection:
    return DtlsConnection(configuration=DtlsConfiguration(**config), credentials=credentials)


def opaque24(data: bytes) -> bytes:
    return len(data).to_bytes(3, "big") + data


def encoded(push: Callable[[Buffer, Any], None], message: object) -> bytes:
    buf = Buffer()
    push(buf, message)
    return buf.data


# -- on the wire: a client and a plain server connection, messages rewritten in flight ----------

Change = Callable[[bytes], bytes | tuple[int, bytes]]  # a new body, or a new type and body
Events = tuple[list[object], list[object]]


def splice(at: int, data: bytes) -> Callable[[bytes], bytes]:
    return lambda body: body[:at] + data + body[at + len(data) :]


def _rewrite(datagram: bytes, target: tuple[bool, int, Change], to_server: bool) -> bytes:
    direction, msg_type, change = target
    out = b""
    for r in parse_datagram(datagram):
        fragment = r.fragment
        if r.content_type == ContentType.HANDSHAKE and r.epoch == 0:
            buf, parts = Buffer(fragment), []
            while not buf.eof():
                f = m.pull_handshake_fragment(buf)
                assert len(f.fragment) == f.length  # whole messages: datagrams are large
                kind, body = f.msg_type, f.fragment
                if (to_server, kind) == (direction, msg_type):
                    new = change(body)
                    kind, body = new if isinstance(new, tuple) else (kind, new)
                parts.append(m.encode_handshake(kind, f.message_seq, body))
            fragment = b"".join(parts)
        out += encode_record(r.content_type, r.version, r.epoch, r.sequence_number, fragment)
    return out


def run(kind: str, target: tuple[bool, int, Change] | None = None) -> Events:
    """A whole handshake in memory, ``target`` rewritten; the events of (client, server)."""
    client_credentials, server_credentials = scenario(kind)
    ends = [connection(client_credentials, max_datagram_size=4000)]
    ends += [connection(server_credentials, is_client=False, max_datagram_size=4000)]
    ends[0].connect(0.0)
    for _ in range(6):
        for to_server, src, dst in ((C2S, *ends), (S2C, *ends[::-1])):
            for data in src.datagrams_to_send(0.0):
                dst.receive_datagram(_rewrite(data, target, to_server) if target else data, 0)
    events: Events = ([], [])
    for end, sink in zip(ends, events, strict=True):
        while (event := end.next_event()) is not None:
            sink.append(event)
    return events


SCHEME = 4 + 65  # ECDHE ServerKeyExchange: curve_type, named_curve, point<1>, then the scheme
ODD_REQUEST = b"\x01\x40\x00\x03\x04\x03\x00\x00\x00"  # signature_algorithms of odd length
P384 = spki_der(ec.generate_private_key(ec.SECP384R1()).public_key())


@pytest.mark.parametrize(
    ("kind", "direction", "msg_type", "change", "alert"),
    [
        ("psk", S2C, SHD, lambda b: b"\x00", AD.DECODE_ERROR),
        ("rpk", S2C, SKE, splice(0, b"\x01"), AD.DECODE_ERROR),  # explicit curve parameters
        ("rpk", S2C, SKE, splice(1, b"\x00\x18"), AD.ILLEGAL_PARAMETER),  # secp384r1
        ("rpk", S2C, SKE, splice(SCHEME, b"\x05\x03"), AD.ILLEGAL_PARAMETER),  # not offered
        ("rpk", S2C, SKE, lambda b: (SHD, b""), AD.UNEXPECTED_MESSAGE),  # SKE left out
        ("rpk", S2C, CERT, lambda b: opaque24(b""), AD.BAD_CERTIFICATE),
        ("x509", S2C, CERT, lambda b: opaque24(b""), AD.BAD_CERTIFICATE),
        ("x509", S2C, CERT, lambda b: opaque24(bytes(3)), AD.DECODE_ERROR),  # an empty entry
        ("rpk", S2C, CR, lambda b: ODD_REQUEST, AD.DECODE_ERROR),
        ("any-key", S2C, CERT, lambda b: opaque24(b"not a key"), AD.BAD_CERTIFICATE),
        ("any-key", S2C, CERT, lambda b: opaque24(P384), AD.UNSUPPORTED_CERTIFICATE),
        ("psk", C2S, CKE, lambda b: b + b"\x00", AD.DECODE_ERROR),
        ("rpk", C2S, CKE, lambda b: b"\x01\x04", AD.ILLEGAL_PARAMETER),  # not a point
        ("x509", C2S, CV, splice(0, b"\x05\x03"), AD.ILLEGAL_PARAMETER),
        ("x509", C2S, CERT, lambda b: opaque24(bytes(3)), AD.DECODE_ERROR),
        ("rpk-vs-psk", C2S, CH, None, AD.HANDSHAKE_FAILURE),  # no cipher suite in common
        # RFC 5246 §7.4.6: a client without a certificate sends an empty Certificate.
        ("anonymous", C2S, CERT, None, AD.HANDSHAKE_FAILURE),
    ],
)
def test_defective_message_is_refused_with_its_alert(
    kind: str, direction: bool, msg_type: int, change: Change | None, alert: int
) -> None:
    """The receiver of the (rewritten) message sends the fatal alert and closes; the sender
    receives it; neither side completes."""
    events = run(kind, (direction, msg_type, change) if change else None)
    receiver, sender = events[::-1] if direction == C2S else events
    for side, by_peer in ((receiver, False), (sender, True)):
        closed = [(e.alert, e.by_peer) for e in side if isinstance(e, ConnectionClosed)]
        assert closed == [(alert, by_peer)]
    assert not any(isinstance(e, HandshakeCompleted) for e in events[0] + events[1])


# -- negotiation ---------------------------------------------------------------------------------


def test_server_without_psk_store_skips_its_preferred_psk_suites() -> None:
    client_events, server_events = run("psk+rpk-vs-rpk")  # both prefer PSK suites by default
    (client_done,) = [e for e in client_events if isinstance(e, HandshakeCompleted)]
    (server_done,) = [e for e in server_events if isinstance(e, HandshakeCompleted)]
    assert client_done.cipher_suite == server_done.cipher_suite == ECDHE
    assert isinstance(server_done.peer_identity, RawPublicKeyIdentity)


def test_client_offers_only_known_suites_and_the_scsv_once() -> None:
    client = connection(psk_client_credentials(), cipher_suites=(0x1301, SCSV, CCM8))
    client.connect(0.0)
    (datagram,) = client.datagrams_to_send(0.0)
    fragment = m.pull_handshake_fragment(Buffer(parse_datagram(datagram)[0].fragment))
    assert m.parse_client_hello(fragment.fragment).cipher_suites == (CCM8, SCSV)


def answer(to_server: bool, msg_type: int, body: bytes) -> m.ServerHello | int:
    """A fresh server's (or started client's) answer to one hello: a ServerHello or an alert."""
    if to_server:
        end = connection(key_only_server(), is_client=False, connection_id=b"\x01\x02")
    else:
        end = connection(psk_client_credentials(), connection_id=b"")
        end.connect(0.0)
        end.datagrams_to_send(0.0)
    end.receive_datagram(encode_record(22, 0xFEFD, 0, 0, m.encode_handshake(msg_type, 0, body)), 0)
    first = parse_datagram(end.datagrams_to_send(0.0)[0])[0]
    if first.content_type == ContentType.ALERT:
        closed = end.next_event()
        assert isinstance(closed, ConnectionClosed)
        assert (2, closed.alert, closed.by_peer) == (*first.fragment, False)  # fatal, closed
        return first.fragment[1]
    fragment = m.pull_handshake_fragment(Buffer(first.fragment))
    assert fragment.msg_type == SH
    return m.pull_server_hello(Buffer(fragment.fragment))


def hello(*extensions: tuple[int, bytes], suites: tuple[int, ...] = (ECDHE,)) -> bytes:
    return encoded(m.push_client_hello, m.ClientHello(R, b"", b"", suites, b"\x00", extensions))


def server_hello(*extensions: tuple[int, bytes], session_id: bytes = b"") -> bytes:
    return encoded(m.push_server_hello, m.ServerHello(R, session_id, CCM8, 0, extensions))


def test_server_hello_extensions_answer_the_client() -> None:
    """RFC 8422 §5.2: no ec_point_formats unless the client sent it. RFC 5246 §7.4.1.4: unknown
    suites and extensions are ignored. RFC 7250 §4.2: the server takes the first certificate
    type of the client's list that it supports."""
    types = (ET.SERVER_CERTIFICATE_TYPE, b"\x02\xee\x02")
    reply = answer(C2S, CH, hello((0x0A0A, b"?"), types, suites=(0x1301, ECDHE)))
    assert isinstance(reply, m.ServerHello)
    assert reply.cipher_suite == ECDHE
    assert reply.extensions == ((ET.SERVER_CERTIFICATE_TYPE, b"\x02"),)


TLS_VERIFY = m.HelloVerifyRequest(0x0303, b"cookie")  # a TLS, not a DTLS, version


@pytest.mark.parametrize(
    ("to_server", "msg_type", "body", "alert"),
    [
        (C2S, CH, hello()[:-2] + b"\x00\x02\x00\x0d", AD.DECODE_ERROR),  # header cut short
        (C2S, CH, hello((ET.SUPPORTED_GROUPS, b"\x00\x02\x00\x17\x00")), AD.DECODE_ERROR),
        (C2S, CH, hello((ET.SIGNATURE_ALGORITHMS, b"\x00\x02\x04\x03\x00")), AD.DECODE_ERROR),
        (C2S, CH, hello((ET.EC_POINT_FORMATS, b"\x01\x00\x00")), AD.DECODE_ERROR),
        (C2S, CH, hello((ET.SERVER_CERTIFICATE_TYPE, b"\x03\x02")), AD.DECODE_ERROR),
        # A connection_id longer than its data, or followed by more (RFC 9146 §3).
        (C2S, CH, hello((ET.CONNECTION_ID, b"\x04\x01")), AD.DECODE_ERROR),
        (C2S, CH, hello((ET.CONNECTION_ID, b"\x01\x01\x02")), AD.DECODE_ERROR),
        (S2C, SH, server_hello((ET.CONNECTION_ID, b"\x04\x01")), AD.DECODE_ERROR),
        (S2C, SH, server_hello((ET.CONNECTION_ID, b"\x01\x01\x02")), AD.DECODE_ERROR),
        (S2C, SH, server_hello(session_id=bytes(33)), AD.DECODE_ERROR),  # at most 32 bytes
        (S2C, HVR, encoded(m.push_hello_verify_request, TLS_VERIFY), AD.PROTOCOL_VERSION),
    ],
)
def test_defective_hello_is_refused(
    to_server: bool, msg_type: int, body: bytes, alert: int
) -> None:
    assert answer(to_server, msg_type, body) == alert


def test_fragment_beyond_its_message_length_is_a_decode_error() -> None:
    # msg_type, length 4, message_seq 0, fragment_offset 2, fragment_length 3 (RFC 6347 §4.2.2)
    raw = bytes([CKE]) + b"\x00\x00\x04\x00\x00\x00\x00\x02\x00\x00\x03abc"
    with pytest.raises(Alert) as info:
        m.pull_handshake_fragment(Buffer(raw))
    assert info.value.description == AD.DECODE_ERROR


# -- the state machine itself: messages in, alerts out -------------------------------------------


def pair(kind: str) -> tuple[Handshake, Handshake]:
    client_credentials, server_credentials = scenario(kind)
    client = Handshake(configuration=DtlsConfiguration(), credentials=client_credentials)
    config = DtlsConfiguration(is_client=False)
    client.start()
    return client, Handshake(configuration=config, credentials=server_credentials)


def messages(handshake: Handshake) -> list[OutgoingMessage]:
    return [o for o in handshake.take_flight() if o.content_type == ContentType.HANDSHAKE]


def deliver(handshake: Handshake, flight: list[OutgoingMessage]) -> None:
    for o in flight:
        handshake.handle_message(o.msg_type, o.message_seq, o.body, o.epoch)


def pick(flight: list[OutgoingMessage], *types: int) -> list[OutgoingMessage]:
    return [next(o for o in flight if o.msg_type == t) for t in types]  # repeats allowed


def stage(kind: str, delivered: int) -> tuple[Handshake, list[OutgoingMessage]]:
    """After ``delivered`` whole flights, the endpoint the next flight is for, and that flight."""
    ends = pair(kind)[::-1]  # server, client: the first flight goes to the server
    for n in range(delivered):
        deliver(ends[n % 2], messages(ends[1 - n % 2]))
    return ends[delivered % 2], messages(ends[1 - delivered % 2])


def test_second_start_is_refused_and_queues_nothing() -> None:
    client, _ = pair("psk")
    assert [o.msg_type for o in messages(client)] == [CH]
    with pytest.raises(Alert) as info:
        client.start()
    assert info.value.description == AD.UNEXPECTED_MESSAGE
    assert client.take_flight() == []
    assert client.state is HandshakeState.CLIENT_EXPECT_SERVER_HELLO


@pytest.mark.parametrize(
    ("kind", "delivered", "order"),
    [
        ("rpk", 1, (SH, SKE)),  # Certificate skipped
        ("rpk", 1, (SH, SH)),
        ("rpk", 1, (SH, CERT, SKE, CR, CR)),
        ("x509", 1, (SH, CERT, CERT)),
        ("psk", 1, (SH, SHD, SHD)),
        ("rpk", 2, (CKE,)),  # Certificate requested but skipped (RFC 5246 §7.4.6)
        ("rpk", 2, (CERT, CKE, CKE)),
        ("rpk", 2, (CERT, CKE, FIN)),  # CertificateVerify skipped: no proof of the key
        ("psk", 2, (CKE, CKE)),
    ],
)
def test_misplaced_message_is_unexpected(kind: str, delivered: int, order: tuple[int, ...]) -> None:
    receiver, flight = stage(kind, delivered)
    with pytest.raises(Alert) as info:
        deliver(receiver, pick(flight, *order))
    assert info.value.description == AD.UNEXPECTED_MESSAGE
    assert receiver.completed is None


@pytest.mark.parametrize("delivered", [2, 3])  # the client's Finished, the server's
def test_finished_with_wrong_verify_data_is_a_decrypt_error(delivered: int) -> None:
    receiver, flight = stage("psk", delivered)
    finished = flight[-1]
    assert (finished.msg_type, finished.epoch) == (FIN, 1)
    wrong = encoded(m.push_finished, m.Finished(bytes(b ^ 0x80 for b in finished.body)))
    with pytest.raises(Alert) as info:
        deliver(receiver, [*flight[:-1], finished._replace(body=wrong)])
    assert info.value.description == AD.DECRYPT_ERROR
    assert receiver.completed is None
    assert receiver.take_flight() == []  # no Finished of its own in reply


@pytest.mark.parametrize("is_client", [True, False])
def test_required_ems_is_not_bypassed_by_resuming_a_legacy_session(is_client: bool) -> None:
    """DtlsConfiguration: require_extended_master_secret aborts handshakes whose peer does not
    negotiate RFC 7627 (see also RFC 7627 §5.3-5.4); a resumed legacy session is one."""
    legacy = DtlsSession(b"s" * 32, CCM8, bytes(48), False, PskIdentity(PSK_IDENTITY))
    cache = SessionCache(4)
    cache.put(legacy)
    credentials = psk_client_credentials() if is_client else psk_server_credentials()
    config = DtlsConfiguration(is_client, require_extended_master_secret=True, session=legacy)
    handshake = Handshake(configuration=config, credentials=credentials, session_cache=cache)
    if is_client:
        handshake.start()
        body = encoded(m.push_server_hello, m.ServerHello(R, legacy.session_id, CCM8))
    else:
        body = encoded(m.push_client_hello, m.ClientHello(R, legacy.session_id, b"", (CCM8,)))
    with pytest.raises(Alert) as info:  # neither hello carries extended_master_secret
        handshake.handle_message(SH if is_client else CH, 0, body, 0)
    assert info.value.description == AD.HANDSHAKE_FAILURE


def test_client_does_not_sign_with_a_scheme_the_server_did_not_request() -> None:
    """RFC 5246 §7.4.8: the CertificateVerify algorithm MUST be one the CertificateRequest lists;
    §7.4.6: without a suitable certificate the client sends an empty Certificate."""
    client, flight = stage("rpk", 1)
    rsa_only = encoded(m.push_certificate_request, m.CertificateRequest(b"\x40", (0x0401,)))
    deliver(client, [o._replace(body=rsa_only) if o.msg_type == CR else o for o in flight])
    sent = messages(client)
    assert CV not in [o.msg_type for o in sent]
    assert pick(sent, CERT)[0].body == opaque24(b"")


# -- certificate usage (LwM2M /0/x/15) and names -------------------------------------------------


def judge(verifier: X509Verifier, *chain: x509.Certificate) -> CertificateIdentity | int:
    """The identity accepted, or the alert of the refusal."""
    try:
        identity = verifier.verify(CertificateType.X509, tuple(c.public_bytes(DER) for c in chain))
    except Alert as exc:
        return exc.description
    assert isinstance(identity, CertificateIdentity)
    return identity


def test_ip_address_names_are_reported_and_checked() -> None:
    key, ca, ca_key = ec.generate_private_key(ec.SECP256R1()), pki().ca, pki().ca_key
    names = [
        x509.DNSName("node.example"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.10")),
        x509.UniformResourceIdentifier("coaps://node.example"),
        x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not reported")])),
    ]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node")])
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    node = (
        x509.CertificateBuilder(ca.subject, subject, key.public_key(), 7, NOW - DAY, NOW + DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(aki, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    identity = judge(X509Verifier((ca,), server_name="192.0.2.10"), node)
    assert isinstance(identity, CertificateIdentity)
    assert identity.common_name == "node"
    assert identity.subject_alt_names == ("node.example", "192.0.2.10", "coaps://node.example")
    for other in ("192.0.2.11", "2001:db8::10"):
        assert judge(X509Verifier((ca,), server_name=other), node) == AD.CERTIFICATE_UNKNOWN


def test_usage_3_needs_only_the_match_but_pkix_needs_validity_and_server_auth() -> None:
    """RFC 7671 §5.1 (DANE-EE): no validity period or name check; usage 1 validates the path."""
    ca, ca_key, key = pki().ca, pki().ca_key, pki().server_key
    expired = make_certificate(
        "n", key, ca, ca_key, ca=False, san="n.example", not_after=NOW - DAY / 24
    )
    association = expired.public_bytes(DER)
    identity = judge(X509Verifier(certificate_association=association, server_name="x.y"), expired)
    assert isinstance(identity, CertificateIdentity)
    assert identity.subject_alt_names == ("n.example",)
    usage_1 = CertificateUsage.SERVICE_CERTIFICATE_CONSTRAINT
    assert judge(X509Verifier((ca,), association, usage_1), expired) == AD.CERTIFICATE_UNKNOWN
    # A certificate for TLS clients only (RFC 5280 §4.2.1.12) serves no server name.
    eku = ExtendedKeyUsageOID.CLIENT_AUTH
    client_only = make_certificate("n", key, ca, ca_key, ca=False, san="n.example", eku=eku)
    verifier = X509Verifier((ca,), server_name="n.example")
    assert judge(verifier, client_only) == AD.CERTIFICATE_UNKNOWN
    assert isinstance(judge(X509Verifier((ca,)), client_only), CertificateIdentity)


@pytest.mark.parametrize(
    ("association", "matching", "accepted"),
    [
        (lambda: pki().ca.public_bytes(DER), MatchingType.EXACT, True),  # rebuilt from /0/x/4
        (lambda: hashlib.sha256(pki().ca.public_bytes(DER)).digest(), MatchingType.SHA256, False),
        (lambda: b"not a certificate", MatchingType.EXACT, False),
    ],
)
def test_usage_2_with_an_anchor_the_peer_did_not_send(
    association: Callable[[], bytes], matching: MatchingType, accepted: bool
) -> None:
    """Only a full certificate association can stand in for an anchor the peer leaves out; a
    hash (or garbage) leaves no trust anchor: unknown_ca."""
    usage = CertificateUsage.TRUST_ANCHOR_ASSERTION
    result = judge(X509Verifier((), association(), usage, matching), pki().server)
    assert isinstance(result, CertificateIdentity) if accepted else result == AD.UNKNOWN_CA
