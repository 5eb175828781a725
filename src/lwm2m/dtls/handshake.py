"""The DTLS 1.2 handshake state machine: messages in, flights and keys out.

Theory of operation. The connection hands over complete, in-order handshake messages
(``handle_message``); the handshake checks each against its state in one ``match`` ladder, which
accepts only the expected message and raises ``AlertUnexpectedMessage`` otherwise. In reply it
queues outgoing messages (``take_flight()``), produces record protections for epoch 1
(``read_protection``/``write_protection``), and finally a ``completed`` event. It knows nothing of
records, fragmentation or retransmission (that is :mod:`.connection`).

Flights (RFC 6347 §4.2.4, RFC 5246 §7.3)::

    client                                        server
    ClientHello                 -------->                           flight 1
                                <--------   HelloVerifyRequest      flight 2 (stateless)
    ClientHello + cookie        -------->                           flight 3
                                               ServerHello          flight 4
                                              [Certificate]
                                        [ServerKeyExchange]
                                       [CertificateRequest]
                                <--------   ServerHelloDone
    [Certificate] ClientKeyExchange
    [CertificateVerify] [ChangeCipherSpec] Finished  -------->      flight 5
                                <--------   [ChangeCipherSpec] Finished   flight 6

Resumption (abbreviated): ClientHello(session_id) → ServerHello, CCS, Finished → CCS, Finished.

Key exchanges: PSK (RFC 4279 §2; the master secret comes from the credential, never from a PSK
held here) and ECDHE_ECDSA on secp256r1 (RFC 8422 §5), with X.509 or raw public keys (RFC 7250).
Extensions: extended_master_secret (RFC 7627), renegotiation_info / SCSV (RFC 5746, the initial
handshake only: renegotiation is refused), connection_id (RFC 9146 §3), supported_groups,
ec_point_formats (RFC 8422 §5.1), signature_algorithms (RFC 5246 §7.4.1.4.1), client/server
certificate types (RFC 7250 §4).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import struct
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum, auto
from typing import NamedTuple, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.buffer import Buffer

from . import messages as m
from .config import DtlsConfiguration
from .constants import (
    DTLS_1_2,
    ECDSA_SIGN,
    POINT_FORMAT_UNCOMPRESSED,
    CertificateType,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
    member_view,
)
from .credentials import DtlsCredentials, PskCredential, SigningKey
from .errors import (
    AlertBadCertificate,
    AlertDecodeError,
    AlertDecryptError,
    AlertHandshakeFailure,
    AlertIllegalParameter,
    AlertInsufficientSecurity,
    AlertProtocolVersion,
    AlertUnexpectedMessage,
    AlertUnknownPskIdentity,
    AlertUnsupportedCertificate,
    AlertUnsupportedExtension,
)
from .events import DtlsSession, HandshakeCompleted
from .prf import (
    CLIENT_FINISHED_LABEL,
    MASTER_SECRET_LENGTH,
    SERVER_FINISHED_LABEL,
    HmacSha256,
    finished_verify_data,
    master_secret_seed,
    prf,
)
from .record import RecordProtection, create_protections
from .trust import PeerIdentity, PskIdentity, spki_der

__all__ = ["Handshake", "HandshakeState", "OutgoingMessage", "SessionCache"]

_CT = member_view(ContentType)
_HT = member_view(HandshakeType)
_ET = member_view(ExtensionType)
_SUITE = member_view(CipherSuite)
_CERT = member_view(CertificateType)
_NG = member_view(NamedGroup)
_SS = member_view(SignatureScheme)

logger = logging.getLogger(__name__)

_M = TypeVar("_M")

#: A whole (unfragmented) handshake header: msg_type+length, message_seq, then
#: fragment_offset (0) + fragment_length (= length) as 2 + 4 bytes.
_HANDSHAKE_HEADER = struct.Struct("!IHHI")

_EMPTY_RENEGOTIATION_INFO = b"\x00"
_PSK_SUITES = frozenset(s for s in CipherSuite if s.is_psk)
_EXTENSION_HEADER = struct.Struct("!HH")
_EMS = int(ExtensionType.EXTENDED_MASTER_SECRET)
_RENEGOTIATION_INFO = int(ExtensionType.RENEGOTIATION_INFO)
#: Suites with a key exchange (every known one but the renegotiation SCSV).
_USABLE_SUITES = frozenset(CipherSuite) - {CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV}
_UNCOMPRESSED = bytes([1, POINT_FORMAT_UNCOMPRESSED])


class HandshakeState(Enum):
    CLIENT_START = auto()
    CLIENT_EXPECT_SERVER_HELLO = auto()
    CLIENT_EXPECT_CERTIFICATE = auto()
    CLIENT_EXPECT_SERVER_KEY_EXCHANGE = auto()
    CLIENT_EXPECT_SERVER_HELLO_DONE = auto()
    CLIENT_EXPECT_FINISHED = auto()
    SERVER_EXPECT_CLIENT_HELLO = auto()
    SERVER_EXPECT_CERTIFICATE = auto()
    SERVER_EXPECT_CLIENT_KEY_EXCHANGE = auto()
    SERVER_EXPECT_CERTIFICATE_VERIFY = auto()
    SERVER_EXPECT_FINISHED = auto()
    POST_HANDSHAKE = auto()


_HS = member_view(HandshakeState)


class OutgoingMessage(NamedTuple):
    """One item of a flight: a handshake message or a ChangeCipherSpec, with its epoch (a named
    tuple: cheap to make, immutable)."""

    content_type: int
    epoch: int
    msg_type: int
    message_seq: int
    body: bytes


#: The ChangeCipherSpec of a flight (RFC 5246 §7.1).
_CHANGE_CIPHER_SPEC_MESSAGE = OutgoingMessage(int(ContentType.CHANGE_CIPHER_SPEC), 0, 0, 0, b"\x01")


class SessionCache:
    """Server-side sessions for resumption, least recently used evicted (RFC 5246 §7.3)."""

    __slots__ = ("_capacity", "_sessions")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._sessions: OrderedDict[bytes, DtlsSession] = OrderedDict()

    def get(self, session_id: bytes) -> DtlsSession | None:
        session = self._sessions.get(session_id)
        if session is not None:
            self._sessions.move_to_end(session_id)
        return session

    def put(self, session: DtlsSession) -> None:
        if self._capacity <= 0:
            return
        sessions = self._sessions
        session_id = session.session_id
        if session_id in sessions:
            sessions.move_to_end(session_id)
        sessions[session_id] = session  # a new key goes to the end
        if len(sessions) > self._capacity:
            sessions.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sessions)

    def __repr__(self) -> str:
        return f"SessionCache({len(self._sessions)}/{self._capacity})"


def _sha256(data: bytes | bytearray) -> bytes:
    return hashlib.sha256(data).digest()


def _load_point(public: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    except ValueError as exc:
        raise AlertIllegalParameter("invalid ECDH point") from exc


def _uncompressed(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class Handshake:
    """One handshake of one endpoint (client or server role).

    It lives only while the handshake runs (the connection keeps the outcome), so it has no
    ``__slots__``: the fields most handshakes never change are class-level defaults, and
    making one sets only the rest, which every server handshake pays for.
    """

    # Defaults, overridden per instance as the handshake goes.
    _peer_connection_id: bytes | None = None
    flight_final = False
    read_protection: RecordProtection | None = None
    write_protection: RecordProtection | None = None
    completed: HandshakeCompleted | None = None
    cipher_suite = 0
    client_random = b""
    server_random = b""
    _client_hello: m.ClientHello | None = None
    _session_id = b""
    _master_secret = b""
    _master_mac: HmacSha256 | None = None
    _ems = False
    _resumed = False
    _ecdh_key: ec.EllipticCurvePrivateKey | None = None
    _peer_key: ec.EllipticCurvePublicKey | None = None
    _peer_ecdh: ec.EllipticCurvePublicKey | None = None
    _peer_identity: PeerIdentity | None = None
    _psk_hint: bytes | None = None
    _server_cert_type: int = _CERT.X509
    _client_cert_type: int = _CERT.X509
    _certificate_requested = False
    _client_auth = False
    _signed_certificate = False
    _key_log_ok = False

    def __init__(
        self,
        *,
        configuration: DtlsConfiguration,
        credentials: DtlsCredentials,
        session_cache: SessionCache | None = None,
        connection_id: bytes | None = None,
        first_message_seq: int = 0,
    ) -> None:
        self._configuration = configuration
        self._credentials = credentials
        self._session_cache = session_cache
        self._connection_id = connection_id
        self.is_client = is_client = configuration.is_client
        self._state = _HS.CLIENT_START if is_client else _HS.SERVER_EXPECT_CLIENT_HELLO
        self._send_seq = first_message_seq
        # The transcript's bytes, kept for signatures (CertificateVerify), and its running
        # hash, whose copies give the session hash and the Finished inputs.
        self._transcript = bytearray()
        self._transcript_hash = hashlib.sha256()
        self._flight: list[OutgoingMessage] = []
        if configuration.key_log is not None:  # asked of the credentials only then
            self._key_log_ok = all(c.key_log_permitted for c in credentials.local_credentials())

    # -- public ------------------------------------------------------------------------------

    @property
    def state(self) -> HandshakeState:
        return self._state

    def take_flight(self) -> list[OutgoingMessage]:
        """The messages queued since the last call (a whole flight, or nothing)."""
        flight, self._flight = self._flight, []
        return flight

    def start(self) -> None:
        """Client: queue the first ClientHello (flight 1)."""
        if self._state != _HS.CLIENT_START:
            raise AlertUnexpectedMessage("handshake already started")
        self.client_random = os.urandom(32)
        session = self._configuration.session
        suites = self._client_suites()
        if (
            session is not None
            and session.cipher_suite in suites
            # a session made without RFC 7627 cannot satisfy require_extended_master_secret
            and (
                session.extended_master_secret
                or not self._configuration.require_extended_master_secret
            )
        ):
            self._session_id = session.session_id
        extensions: list[tuple[int, bytes]] = []
        if any(not CipherSuite(s).is_psk for s in suites):
            extensions += [
                m.supported_groups_extension(),
                (_ET.EC_POINT_FORMATS, _UNCOMPRESSED),
                (
                    _ET.SIGNATURE_ALGORITHMS,
                    m.encode_uint16_list((_SS.ECDSA_SECP256R1_SHA256,)),
                ),
            ]
            creds = self._credentials
            if creds.signing_key is not None and not creds.certificate_chain:
                extensions.append(
                    (
                        _ET.CLIENT_CERTIFICATE_TYPE,
                        bytes([1, _CERT.RAW_PUBLIC_KEY]),
                    )
                )
            verifier = creds.peer_verifier
            if verifier is not None and tuple(verifier.certificate_types) != (_CERT.X509,):
                types = bytes(verifier.certificate_types)
                extensions.append((_ET.SERVER_CERTIFICATE_TYPE, bytes([len(types)]) + types))
        extensions.append((_ET.EXTENDED_MASTER_SECRET, b""))
        if self._connection_id is not None:
            extensions.append(m.connection_id_extension(self._connection_id))
        self._client_hello = m.ClientHello(
            random=self.client_random,
            session_id=self._session_id,
            cookie=b"",
            cipher_suites=(*suites, _SUITE.TLS_EMPTY_RENEGOTIATION_INFO_SCSV),
            extensions=tuple(extensions),
        )
        self._send(_HT.CLIENT_HELLO, self._client_hello, m.push_client_hello)
        self._set_state(_HS.CLIENT_EXPECT_SERVER_HELLO)

    def handle_message(self, msg_type: int, message_seq: int, body: bytes, epoch: int) -> None:
        """Process one complete handshake message (in order, RFC 6347 §4.2.2).

        Raises an ``Alert`` subclass when the message is unexpected or invalid.
        """
        if msg_type == _HT.HELLO_REQUEST:
            return  # RFC 5246 §7.4.1.1: ignored during a handshake; not in the transcript
        # Finished is the only message protected by the new epoch (RFC 5246 §7.4.9).
        if (epoch != 0) != (msg_type == _HT.FINISHED):
            raise AlertUnexpectedMessage("handshake message in the wrong epoch")
        buf = Buffer(body)
        state = self._state
        match state, msg_type:
            case _HS.SERVER_EXPECT_CLIENT_HELLO, _HT.CLIENT_HELLO:
                self._add_transcript(msg_type, message_seq, body)
                self._server_handle_client_hello(m.pull_client_hello(buf))
            case _HS.SERVER_EXPECT_CERTIFICATE, _HT.CERTIFICATE:
                self._add_transcript(msg_type, message_seq, body)
                raw = self._client_cert_type == _CERT.RAW_PUBLIC_KEY
                self._server_handle_certificate(m.pull_certificate(buf, raw))
            case (
                _HS.SERVER_EXPECT_CLIENT_KEY_EXCHANGE,
                _HT.CLIENT_KEY_EXCHANGE,
            ):
                is_psk = self.cipher_suite in _PSK_SUITES
                exchange = m.pull_client_key_exchange(buf, is_psk)
                if buf.remaining():
                    raise AlertDecodeError("trailing bytes in ClientKeyExchange")
                self._add_transcript(msg_type, message_seq, body)
                self._server_handle_client_key_exchange(exchange)
            case _HS.SERVER_EXPECT_CERTIFICATE_VERIFY, _HT.CERTIFICATE_VERIFY:
                verify = m.pull_certificate_verify(buf)
                self._check_signature(verify.signature_scheme, verify.signature, self._transcript)
                self._add_transcript(msg_type, message_seq, body)
                self._set_state(_HS.SERVER_EXPECT_FINISHED)
            case _HS.SERVER_EXPECT_FINISHED, _HT.FINISHED:
                self._server_handle_finished(m.pull_finished(buf), message_seq)
            case _HS.CLIENT_EXPECT_SERVER_HELLO, _HT.HELLO_VERIFY_REQUEST:
                self._client_handle_hello_verify_request(m.pull_hello_verify_request(buf))
            case _HS.CLIENT_EXPECT_SERVER_HELLO, _HT.SERVER_HELLO:
                self._add_transcript(msg_type, message_seq, body)
                self._client_handle_server_hello(m.pull_server_hello(buf))
            case _HS.CLIENT_EXPECT_CERTIFICATE, _HT.CERTIFICATE:
                self._add_transcript(msg_type, message_seq, body)
                raw = self._server_cert_type == _CERT.RAW_PUBLIC_KEY
                self._client_handle_certificate(m.pull_certificate(buf, raw))
            case (
                _HS.CLIENT_EXPECT_SERVER_KEY_EXCHANGE,
                _HT.SERVER_KEY_EXCHANGE,
            ):
                self._add_transcript(msg_type, message_seq, body)
                if self.cipher_suite in _PSK_SUITES:
                    self._psk_hint = m.pull_server_key_exchange_psk(buf).identity_hint
                else:
                    self._client_handle_ecdhe_key_exchange(m.pull_server_key_exchange_ecdhe(buf))
                self._set_state(_HS.CLIENT_EXPECT_SERVER_HELLO_DONE)
            case (
                _HS.CLIENT_EXPECT_SERVER_HELLO_DONE,
                _HT.CERTIFICATE_REQUEST,
            ) if self.cipher_suite not in _PSK_SUITES and not self._certificate_requested:
                self._add_transcript(msg_type, message_seq, body)
                request = m.pull_certificate_request(buf)
                self._certificate_requested = True
                # RFC 5246 §7.4.8: CertificateVerify must use a listed scheme, and we sign
                # with one only; else an empty Certificate (§7.4.6)
                self._client_auth = (
                    ECDSA_SIGN in request.certificate_types
                    and _SS.ECDSA_SECP256R1_SHA256 in request.signature_algorithms
                )
            case (
                (_HS.CLIENT_EXPECT_SERVER_HELLO_DONE | _HS.CLIENT_EXPECT_SERVER_KEY_EXCHANGE),
                _HT.SERVER_HELLO_DONE,
            ) if self.cipher_suite in _PSK_SUITES or state == (_HS.CLIENT_EXPECT_SERVER_HELLO_DONE):
                self._add_transcript(msg_type, message_seq, body)
                if buf.remaining():
                    raise AlertDecodeError("ServerHelloDone is empty")
                self._client_send_key_exchange()
            case _HS.CLIENT_EXPECT_FINISHED, _HT.FINISHED:
                self._client_handle_finished(m.pull_finished(buf), message_seq)
            case _:
                raise AlertUnexpectedMessage(
                    f"handshake message type {msg_type} unexpected in state {state.name}"
                )
        if not buf.eof():
            raise AlertDecodeError("trailing bytes in handshake message")

    # The server's plain PSK handshake, straight from the datagrams, is in .psk_lane: it reads
    # and writes this state directly, and moves the intermediate states without _set_state's
    # debug line (the completion is logged as here).

    # -- helpers -----------------------------------------------------------------------------

    def _set_state(self, state: HandshakeState) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s -> %s", self._state.name, state.name)
        self._state = state

    def _add_transcript(self, msg_type: int, message_seq: int, body: bytes) -> None:
        # Hashed as if unfragmented, with the DTLS header (RFC 6347 §4.2.6).
        length = len(body)
        header = _HANDSHAKE_HEADER.pack((msg_type << 24) | length, message_seq, 0, length)
        self._transcript += header
        self._transcript += body
        self._transcript_hash.update(header)
        self._transcript_hash.update(body)

    def _reset_transcript(self) -> None:
        self._transcript.clear()
        self._transcript_hash = hashlib.sha256()

    def _transcript_digest(self) -> bytes:
        return self._transcript_hash.copy().digest()

    def _send(self, msg_type: int, message: _M, push: Callable[[Buffer, _M], None]) -> None:
        buf = Buffer()
        push(buf, message)
        self._send_body(msg_type, buf.data)

    def _send_body(self, msg_type: int, body: bytes, epoch: int = 0) -> None:
        seq = self._send_seq
        self._send_seq += 1
        self._add_transcript(msg_type, seq, body)
        self._flight.append(OutgoingMessage(_CT.HANDSHAKE, epoch, msg_type, seq, body))

    def _send_change_cipher_spec_and_finished(self, label: bytes) -> None:
        self._flight.append(_CHANGE_CIPHER_SPEC_MESSAGE)
        verify_data = finished_verify_data(self._master_key(), label, self._transcript_digest())
        self._send_body(_HT.FINISHED, verify_data, epoch=1)

    def _check_finished(self, verify_data: bytes, label: bytes) -> None:
        expected = finished_verify_data(self._master_key(), label, self._transcript_digest())
        if not _constant_time_equal(verify_data, expected):
            raise AlertDecryptError("Finished verify_data mismatch")

    def _client_suites(self) -> tuple[int, ...]:
        creds = self._credentials
        suites: list[int] = []
        for suite in self._configuration.cipher_suites:
            try:
                known = CipherSuite(suite)
            except ValueError:
                continue
            if known == _SUITE.TLS_EMPTY_RENEGOTIATION_INFO_SCSV:
                continue
            if known.is_psk and creds.psk is None:
                continue
            if not known.is_psk and creds.peer_verifier is None:
                continue
            suites.append(suite)
        if not suites:
            raise AlertHandshakeFailure("no cipher suite usable with these credentials")
        return tuple(suites)

    def _derive_keys(
        self,
        session_hash: bytes | None,
        psk: PskCredential | None = None,
        premaster: bytes | None = None,
    ) -> None:
        label, seed = master_secret_seed(self.client_random, self.server_random, session_hash)
        if psk is not None:
            self._master_secret = psk.derive_master_secret(label, seed)
        else:
            assert premaster is not None
            self._master_secret = prf(premaster, label, seed, MASTER_SECRET_LENGTH)
        self._install_keys()

    def _install_keys(self) -> None:
        read_cid = self._connection_id if self._peer_connection_id is not None else None
        self._master_mac = None
        self.read_protection, self.write_protection = create_protections(
            self.cipher_suite,
            self._master_key(),
            self.client_random,
            self.server_random,
            is_client=self.is_client,
            read_cid=read_cid or b"",
            write_cid=self._peer_connection_id or b"",
        )
        key_log = self._configuration.key_log
        if key_log is not None and self._key_log_ok:
            # NSS key log format, as read by Wireshark (SSLKEYLOGFILE).
            key_log.write(f"CLIENT_RANDOM {self.client_random.hex()} {self._master_secret.hex()}\n")

    def _session_hash(self) -> bytes | None:
        return self._transcript_digest() if self._ems else None

    def _master_key(self) -> HmacSha256:
        """The master secret as a keyed PRF state, one key schedule for the key block and both
        Finished messages."""
        if self._master_mac is None:
            self._master_mac = HmacSha256(self._master_secret)
        return self._master_mac

    def _finish(self) -> None:
        session = None
        if self._session_id:
            session = DtlsSession(
                self._session_id,
                self.cipher_suite,
                self._master_secret,
                self._ems,
                self._peer_identity,
                self._key_log_ok,
            )
            if not self.is_client and self._session_cache is not None and not self._resumed:
                self._session_cache.put(session)
        negotiated_cid = self._peer_connection_id is not None
        self.completed = HandshakeCompleted(  # positional: the field order of the class
            self.cipher_suite,
            self._peer_identity,
            self._resumed,
            self._ems,
            (self._connection_id or b"") if negotiated_cid else None,
            self._peer_connection_id,
            session if self.is_client else None,
            self._psk_hint,
        )
        self._set_state(_HS.POST_HANDSHAKE)

    def _check_signature(self, scheme: int, signature: bytes, data: bytes | bytearray) -> None:
        if scheme != _SS.ECDSA_SECP256R1_SHA256:
            raise AlertIllegalParameter("unsupported signature scheme")
        assert self._peer_key is not None  # set with the peer's Certificate
        try:
            self._peer_key.verify(signature, bytes(data), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise AlertDecryptError("signature does not verify") from exc

    def _verify_peer(self, certificate_type: int, certificates: tuple[bytes, ...]) -> None:
        verifier = self._credentials.peer_verifier
        assert verifier is not None  # ECDHE is offered / a certificate requested only with one
        identity = verifier.verify(certificate_type, certificates)
        der = certificates[0]
        key: object
        try:
            if certificate_type == _CERT.X509:
                key = x509.load_der_x509_certificate(der).public_key()
            else:
                key = serialization.load_der_public_key(der)
        except (ValueError, UnsupportedAlgorithm) as exc:  # a verifier accepted an unusable key
            raise AlertBadCertificate("peer key cannot be loaded") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise AlertUnsupportedCertificate("peer key is not on secp256r1")
        self._peer_key = key
        self._peer_identity = identity

    def _certificate_message(self, certificate_type: int) -> m.Certificate:
        creds = self._credentials
        key = creds.signing_key
        if key is None:
            return m.Certificate((), certificate_type == _CERT.RAW_PUBLIC_KEY)
        if certificate_type == _CERT.RAW_PUBLIC_KEY:
            return m.Certificate((spki_der(key.public_key()),), True)
        return m.Certificate(
            tuple(c.public_bytes(serialization.Encoding.DER) for c in creds.certificate_chain)
        )

    # -- client ------------------------------------------------------------------------------

    def _client_handle_hello_verify_request(self, request: m.HelloVerifyRequest) -> None:
        # RFC 6347 §4.2.1: resend the same ClientHello with the cookie; neither the first
        # ClientHello nor the HelloVerifyRequest enter the transcript.
        if request.version >> 8 != 0xFE:
            raise AlertProtocolVersion("HelloVerifyRequest is not DTLS")
        hello = self._client_hello
        assert hello is not None
        if hello.cookie:
            raise AlertUnexpectedMessage("second HelloVerifyRequest")
        self._client_hello = m.ClientHello(
            random=hello.random,
            session_id=hello.session_id,
            cookie=request.cookie,
            cipher_suites=hello.cipher_suites,
            compression_methods=hello.compression_methods,
            extensions=hello.extensions,
        )
        self._reset_transcript()
        self._send(_HT.CLIENT_HELLO, self._client_hello, m.push_client_hello)

    def _client_handle_server_hello(self, hello: m.ServerHello) -> None:
        if hello.version != DTLS_1_2:
            raise AlertProtocolVersion("server did not choose DTLS 1.2")
        sent = self._client_hello
        assert sent is not None
        if (
            hello.cipher_suite not in sent.cipher_suites
            or hello.cipher_suite == _SUITE.TLS_EMPTY_RENEGOTIATION_INFO_SCSV
        ):
            raise AlertIllegalParameter("server chose a cipher suite that was not offered")
        if hello.compression_method != 0:
            raise AlertIllegalParameter("server chose compression")
        offered = {kind for kind, _ in sent.extensions or ()} | {_ET.RENEGOTIATION_INFO}
        for kind, data in hello.extensions or ():
            if kind not in offered:
                raise AlertUnsupportedExtension(f"unsolicited extension {kind}")
            match kind:
                case _ET.RENEGOTIATION_INFO if data != _EMPTY_RENEGOTIATION_INFO:
                    raise AlertHandshakeFailure("non-empty renegotiation_info")
                case _ET.EXTENDED_MASTER_SECRET if data:
                    raise AlertDecodeError("extended_master_secret is empty")
                case _ET.CONNECTION_ID:
                    self._peer_connection_id = m.decode_opaque8(data)
                case _ET.SERVER_CERTIFICATE_TYPE:
                    self._server_cert_type = self._single_type(data, sent, kind)
                case _ET.CLIENT_CERTIFICATE_TYPE:
                    self._client_cert_type = self._single_type(data, sent, kind)
        self.server_random = hello.random
        self.cipher_suite = hello.cipher_suite
        self._ems = m.find_extension(hello.extensions, _ET.EXTENDED_MASTER_SECRET) is not None
        # before resumption too: a resumed session without it is no better (RFC 7627 §5.3)
        if self._configuration.require_extended_master_secret and not self._ems:
            raise AlertHandshakeFailure("peer does not support the extended master secret")
        session = self._configuration.session
        if session is not None and hello.session_id and hello.session_id == self._session_id:
            # Abbreviated handshake (RFC 5246 §7.3); RFC 7627 §5.3 forbids mixing EMS states.
            if hello.cipher_suite != session.cipher_suite:
                raise AlertIllegalParameter("resumed session with another cipher suite")
            if session.extended_master_secret != self._ems:
                raise AlertHandshakeFailure("resumption changed extended_master_secret")
            self._resumed = True
            self._master_secret = session.master_secret
            self._peer_identity = session.peer_identity
            self._key_log_ok = self._key_log_ok and session.key_log_permitted
            self._install_keys()
            self._set_state(_HS.CLIENT_EXPECT_FINISHED)
            return
        self._session_id = hello.session_id
        if hello.cipher_suite in _PSK_SUITES:
            self._set_state(_HS.CLIENT_EXPECT_SERVER_KEY_EXCHANGE)
        else:
            self._set_state(_HS.CLIENT_EXPECT_CERTIFICATE)

    @staticmethod
    def _single_type(data: bytes, sent: m.ClientHello, kind: int) -> int:
        if len(data) != 1:
            raise AlertDecodeError("certificate type extension")
        offered = m.find_extension(sent.extensions, kind)
        assert offered is not None
        if data[0] not in offered[1:]:
            raise AlertIllegalParameter("certificate type was not offered")
        return data[0]

    def _client_handle_certificate(self, certificate: m.Certificate) -> None:
        if not certificate.certificates:
            raise AlertBadCertificate("server sent no certificate")
        self._verify_peer(self._server_cert_type, certificate.certificates)
        self._set_state(_HS.CLIENT_EXPECT_SERVER_KEY_EXCHANGE)

    def _client_handle_ecdhe_key_exchange(self, exchange: m.ServerKeyExchangeEcdhe) -> None:
        if exchange.named_curve != _NG.SECP256R1:
            raise AlertIllegalParameter("server chose an unsupported curve")
        signed = self.client_random + self.server_random + exchange.params
        self._check_signature(exchange.signature_scheme, exchange.signature, signed)
        self._peer_ecdh = _load_point(exchange.public)

    def _client_send_key_exchange(self) -> None:
        creds = self._credentials
        signer: SigningKey | None = None
        if self._certificate_requested:
            usable = creds.signing_key is not None and (
                self._client_cert_type == _CERT.RAW_PUBLIC_KEY or bool(creds.certificate_chain)
            )
            signer = creds.signing_key if usable and self._client_auth else None
            certificate = (
                self._certificate_message(self._client_cert_type)
                if signer is not None
                else m.Certificate((), self._client_cert_type == _CERT.RAW_PUBLIC_KEY)
            )
            self._send(_HT.CERTIFICATE, certificate, m.push_certificate)
        if self.cipher_suite in _PSK_SUITES:
            psk = creds.psk
            assert psk is not None  # PSK suites are offered only with a PSK
            self._send(
                _HT.CLIENT_KEY_EXCHANGE,
                m.ClientKeyExchange(psk_identity=psk.identity),
                m.push_client_key_exchange,
            )
            self._peer_identity = PskIdentity(psk.identity)
            self._derive_keys(self._session_hash(), psk=psk)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            self._send(
                _HT.CLIENT_KEY_EXCHANGE,
                m.ClientKeyExchange(ecdh_public=_uncompressed(key.public_key())),
                m.push_client_key_exchange,
            )
            assert self._peer_ecdh is not None  # ServerKeyExchange is required for ECDHE
            premaster = key.exchange(ec.ECDH(), self._peer_ecdh)
            self._derive_keys(self._session_hash(), premaster=premaster)
            if signer is not None:
                signature = signer.sign(bytes(self._transcript))
                self._send(
                    _HT.CERTIFICATE_VERIFY,
                    m.CertificateVerify(_SS.ECDSA_SECP256R1_SHA256, signature),
                    m.push_certificate_verify,
                )
        self._send_change_cipher_spec_and_finished(CLIENT_FINISHED_LABEL)
        self.flight_final = False
        self._set_state(_HS.CLIENT_EXPECT_FINISHED)

    def _client_handle_finished(self, finished: m.Finished, message_seq: int) -> None:
        self._check_finished(finished.verify_data, SERVER_FINISHED_LABEL)
        self._add_transcript(_HT.FINISHED, message_seq, finished.verify_data)
        if self._resumed:
            self._send_change_cipher_spec_and_finished(CLIENT_FINISHED_LABEL)
            self.flight_final = True
        self._finish()

    # -- server ------------------------------------------------------------------------------

    def _server_handle_client_hello(self, hello: m.ClientHello) -> None:
        # RFC 6347 §4.1: any DTLS version is acceptable in the record; the hello's version is
        # the highest the client supports (numerically lowest), DTLS 1.2 or better is needed.
        if hello.version >> 8 != 0xFE or hello.version > DTLS_1_2:
            raise AlertProtocolVersion("client does not offer DTLS 1.2")
        if 0 not in hello.compression_methods:
            raise AlertIllegalParameter("client does not offer null compression")
        self._client_hello = hello
        self.client_random = hello.random
        randoms = os.urandom(64)  # server random and, for a new session, its session_id
        self.server_random = randoms[:32]
        # One dict for the look-ups below (the parser rejected duplicate extensions).
        extensions = dict(hello.extensions) if hello.extensions else {}
        reneg = extensions.get(_ET.RENEGOTIATION_INFO)
        if reneg is not None and reneg != _EMPTY_RENEGOTIATION_INFO:
            raise AlertHandshakeFailure("renegotiation is not supported")
        secure_reneg = (
            reneg is not None or _SUITE.TLS_EMPTY_RENEGOTIATION_INFO_SCSV in hello.cipher_suites
        )
        ems_data = extensions.get(_ET.EXTENDED_MASTER_SECRET)
        if ems_data:
            raise AlertDecodeError("extended_master_secret is empty")
        self._ems = ems_data is not None
        cid_data = extensions.get(_ET.CONNECTION_ID)
        if cid_data is not None and self._connection_id is not None:
            self._peer_connection_id = m.decode_opaque8(cid_data)
        reply: list[tuple[int, bytes]] = []
        if secure_reneg:
            reply.append((_ET.RENEGOTIATION_INFO, _EMPTY_RENEGOTIATION_INFO))
        if self._ems:
            reply.append((_ET.EXTENDED_MASTER_SECRET, b""))
        if self._peer_connection_id is not None:
            assert self._connection_id is not None
            reply.append(m.connection_id_extension(self._connection_id))

        # RFC 7627 required: checked before resumption, which would skip it otherwise.
        if self._configuration.require_extended_master_secret and not self._ems:
            raise AlertHandshakeFailure("client does not support the extended master secret")
        # Resumption (RFC 5246 §7.3) unless the EMS state changed (RFC 7627 §5.3).
        cache = self._session_cache
        session = cache.get(hello.session_id) if cache is not None and hello.session_id else None
        if (
            session is not None
            and session.cipher_suite in hello.cipher_suites
            and session.extended_master_secret == self._ems
            and session.cipher_suite in self._configuration.cipher_suites
        ):
            self._resumed = True
            self._session_id = session.session_id
            self.cipher_suite = session.cipher_suite
            self._master_secret = session.master_secret
            self._peer_identity = session.peer_identity
            # the session's own credentials decide, not this handshake's (a PSK server's are
            # known only at a ClientKeyExchange, which a resumption does not have)
            self._key_log_ok = self._key_log_ok and session.key_log_permitted
            self._send(
                _HT.SERVER_HELLO,
                m.ServerHello(
                    self.server_random, self._session_id, self.cipher_suite, 0, tuple(reply)
                ),
                m.push_server_hello,
            )
            self._install_keys()
            self._send_change_cipher_spec_and_finished(SERVER_FINISHED_LABEL)
            self._set_state(_HS.SERVER_EXPECT_FINISHED)
            return

        suite, cert_types = self._server_choose_suite(hello)
        self.cipher_suite = suite
        self._session_id = (
            randoms[32:] if cache is not None and self._configuration.session_cache_size else b""
        )
        is_psk = suite in _PSK_SUITES
        if not is_psk:
            server_type, client_type = cert_types
            if _ET.EC_POINT_FORMATS in extensions:
                reply.append((_ET.EC_POINT_FORMATS, _UNCOMPRESSED))
            if _ET.SERVER_CERTIFICATE_TYPE in extensions:
                reply.append((_ET.SERVER_CERTIFICATE_TYPE, bytes([server_type])))
            if client_type is not None and _ET.CLIENT_CERTIFICATE_TYPE in extensions:
                reply.append((_ET.CLIENT_CERTIFICATE_TYPE, bytes([client_type])))
            self._server_cert_type = server_type
            self._client_cert_type = client_type if client_type is not None else 0
            self._certificate_requested = client_type is not None
        self._send_body(
            _HT.SERVER_HELLO,
            m.server_hello_body(self.server_random, self._session_id, suite, reply),
        )
        creds = self._credentials
        if is_psk:
            if creds.psk_identity_hint:
                self._send(
                    _HT.SERVER_KEY_EXCHANGE,
                    m.ServerKeyExchangePsk(creds.psk_identity_hint),
                    m.push_server_key_exchange_psk,
                )
        else:
            key = creds.signing_key
            assert key is not None
            self._send(
                _HT.CERTIFICATE,
                self._certificate_message(self._server_cert_type),
                m.push_certificate,
            )
            self._ecdh_key = ec.generate_private_key(ec.SECP256R1())
            params = m.ecdh_params(_NG.SECP256R1, _uncompressed(self._ecdh_key.public_key()))
            signature = key.sign(self.client_random + self.server_random + params)
            self._send(
                _HT.SERVER_KEY_EXCHANGE,
                m.ServerKeyExchangeEcdhe(
                    _NG.SECP256R1,
                    _uncompressed(self._ecdh_key.public_key()),
                    _SS.ECDSA_SECP256R1_SHA256,
                    signature,
                ),
                m.push_server_key_exchange_ecdhe,
            )
            if self._certificate_requested:
                self._send(
                    _HT.CERTIFICATE_REQUEST,
                    m.CertificateRequest(bytes([ECDSA_SIGN]), (_SS.ECDSA_SECP256R1_SHA256,)),
                    m.push_certificate_request,
                )
        self._send_body(_HT.SERVER_HELLO_DONE, b"")
        self._set_state(
            _HS.SERVER_EXPECT_CERTIFICATE
            if self._certificate_requested
            else _HS.SERVER_EXPECT_CLIENT_KEY_EXCHANGE
        )

    def _server_choose_suite(self, hello: m.ClientHello) -> tuple[int, tuple[int, int | None]]:
        creds = self._credentials
        offered = hello.cipher_suites
        ecdhe_types: tuple[int, int | None] | None = None
        ecdhe_checked = False
        for suite in self._configuration.cipher_suites:
            if suite not in offered or suite not in _USABLE_SUITES:
                continue
            if suite in _PSK_SUITES:
                if creds.psk_store is not None:
                    return int(suite), (0, None)
                continue
            if not ecdhe_checked:  # the ECDHE negotiation only when an ECDHE suite is in play
                ecdhe_types = self._ecdhe_certificate_types(hello)
                ecdhe_checked = True
            if ecdhe_types is not None:
                return int(suite), ecdhe_types
        raise AlertHandshakeFailure("no cipher suite in common")

    def _ecdhe_certificate_types(self, hello: m.ClientHello) -> tuple[int, int | None] | None:
        creds = self._credentials
        if creds.signing_key is None:
            return None
        extensions = hello.extensions
        groups = m.find_extension(extensions, _ET.SUPPORTED_GROUPS)
        if groups is not None and _NG.SECP256R1 not in m.decode_uint16_list(groups):
            return None
        formats = m.find_extension(extensions, _ET.EC_POINT_FORMATS)
        if formats is not None and POINT_FORMAT_UNCOMPRESSED not in m.decode_uint8_list(formats):
            return None
        schemes = m.find_extension(extensions, _ET.SIGNATURE_ALGORITHMS)
        if schemes is not None and (
            _SS.ECDSA_SECP256R1_SHA256 not in m.decode_uint16_list(schemes)
        ):
            return None
        own_types = [_CERT.RAW_PUBLIC_KEY]
        if creds.certificate_chain:
            own_types.insert(0, _CERT.X509)
        wanted = m.find_extension(extensions, _ET.SERVER_CERTIFICATE_TYPE)
        acceptable = m.decode_uint8_list(wanted) if wanted is not None else bytes([0])
        server_type = next((t for t in acceptable if t in own_types), None)
        if server_type is None:
            return None
        verifier = creds.peer_verifier
        if verifier is None:
            return server_type, None
        offered = m.find_extension(extensions, _ET.CLIENT_CERTIFICATE_TYPE)
        can_send = m.decode_uint8_list(offered) if offered is not None else bytes([0])
        client_type = next((t for t in can_send if t in verifier.certificate_types), None)
        if client_type is None:
            return None
        return server_type, client_type

    def _server_handle_certificate(self, certificate: m.Certificate) -> None:
        if not certificate.certificates:
            # A certificate was requested because the server authenticates its clients.
            raise AlertHandshakeFailure("client sent no certificate")
        self._verify_peer(self._client_cert_type, certificate.certificates)
        self._signed_certificate = True
        self._set_state(_HS.SERVER_EXPECT_CLIENT_KEY_EXCHANGE)

    def _server_handle_client_key_exchange(self, exchange: m.ClientKeyExchange) -> None:
        if exchange.psk_identity is not None:
            identity = exchange.psk_identity
            store = self._credentials.psk_store
            assert store is not None  # PSK suites are chosen only with a store
            self._server_psk_key_exchange(identity, store.lookup(identity))
        else:
            assert self._ecdh_key is not None
            assert exchange.ecdh_public is not None
            peer = _load_point(exchange.ecdh_public)
            premaster = self._ecdh_key.exchange(ec.ECDH(), peer)
            self._ecdh_key = None
            self._derive_keys(self._session_hash(), premaster=premaster)
        self._set_state(
            _HS.SERVER_EXPECT_CERTIFICATE_VERIFY
            if self._signed_certificate
            else _HS.SERVER_EXPECT_FINISHED
        )

    def _server_psk_key_exchange(self, identity: bytes, credential: PskCredential | None) -> None:
        if credential is None:
            if not self._configuration.hide_unknown_psk_identity:
                raise AlertUnknownPskIdentity("unknown PSK identity")
            # RFC 4279 §2: carry on with a random secret; Finished fails as decrypt_error.
            self._master_secret = os.urandom(MASTER_SECRET_LENGTH)
            self._key_log_ok = False
            self._install_keys()
        else:
            self._key_log_ok = self._key_log_ok and credential.key_log_permitted
            # The master secret is derived inside the credential (the PSK never leaves it).
            label, seed = master_secret_seed(
                self.client_random,
                self.server_random,
                self._transcript_hash.copy().digest() if self._ems else None,
            )
            self._master_secret = credential.derive_master_secret(label, seed)
            self._install_keys()
        self._peer_identity = PskIdentity(identity)

    def _server_handle_finished(self, finished: m.Finished, message_seq: int) -> None:
        if self._certificate_requested and not self._signed_certificate and not self._resumed:
            raise AlertInsufficientSecurity("client was not authenticated")
        self._check_finished(finished.verify_data, CLIENT_FINISHED_LABEL)
        self._add_transcript(_HT.FINISHED, message_seq, finished.verify_data)
        if not self._resumed:
            self._send_change_cipher_spec_and_finished(SERVER_FINISHED_LABEL)
            self.flight_final = True
        self._finish()


def _constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
