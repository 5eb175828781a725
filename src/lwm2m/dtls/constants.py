"""Wire numbers of DTLS 1.2, one ``IntEnum`` per IANA registry (RFC 6347, RFC 5246 §A).

Parsed messages keep raw ``int`` fields so that unknown values survive; code compares them with
these enums. Registries: "TLS ContentType", "TLS HandshakeType", "TLS Alerts", "TLS Cipher
Suites", "TLS ExtensionType Values", "TLS Supported Groups", "TLS SignatureScheme" and "TLS
Certificate Types" of https://www.iana.org/assignments/tls-parameters.
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import TypeVar, cast

__all__ = [
    "DTLS_1_0",
    "DTLS_1_2",
    "AlertDescription",
    "AlertLevel",
    "CertificateType",
    "CipherSuite",
    "ContentType",
    "ExtensionType",
    "HandshakeType",
    "NamedGroup",
    "SignatureScheme",
    "member_view",
]


_E = TypeVar("_E", bound=Enum)


def member_view(enum: type[_E]) -> type[_E]:
    """A plain class whose attributes are the members of ``enum`` (the same objects).

    CPython 3.11 resolves ``Enum.MEMBER`` through a descriptor (about 0.2 µs, as long as a small
    function call); hot paths (the record layer, the handshake ``match`` ladder) look members up
    in this view instead, a plain class-dict lookup. It is typed as the enum itself, so type
    checking sees the real members; only attribute access is valid on it (no iteration, no
    ``view(value)``). One binding serves the interpreter and mypyc alike (a ``TYPE_CHECKING``
    branch would be compiled as the only one).

    >>> view = member_view(ContentType)
    >>> view.HANDSHAKE is ContentType.HANDSHAKE
    True
    """
    return cast("type[_E]", type(f"{enum.__name__}Members", (), dict(enum.__members__)))


#: ProtocolVersion of DTLS 1.2 on the wire ({254, 253}, RFC 6347 §4.1).
DTLS_1_2 = 0xFEFD
#: ProtocolVersion of DTLS 1.0; used in HelloVerifyRequest (RFC 6347 §4.2.1).
DTLS_1_0 = 0xFEFF


class ContentType(IntEnum):
    """TLS ContentType (RFC 5246 §6.2.1; ``TLS12_CID`` from RFC 9146 §3)."""

    CHANGE_CIPHER_SPEC = 20
    ALERT = 21
    HANDSHAKE = 22
    APPLICATION_DATA = 23
    TLS12_CID = 25


class HandshakeType(IntEnum):
    """TLS HandshakeType (RFC 5246 §7.4; ``HELLO_VERIFY_REQUEST`` from RFC 6347 §4.3.2)."""

    HELLO_REQUEST = 0
    CLIENT_HELLO = 1
    SERVER_HELLO = 2
    HELLO_VERIFY_REQUEST = 3
    CERTIFICATE = 11
    SERVER_KEY_EXCHANGE = 12
    CERTIFICATE_REQUEST = 13
    SERVER_HELLO_DONE = 14
    CERTIFICATE_VERIFY = 15
    CLIENT_KEY_EXCHANGE = 16
    FINISHED = 20


class AlertLevel(IntEnum):
    """AlertLevel (RFC 5246 §7.2)."""

    WARNING = 1
    FATAL = 2


class AlertDescription(IntEnum):
    """AlertDescription (RFC 5246 §7.2; ``UNKNOWN_PSK_IDENTITY`` from RFC 4279 §2)."""

    CLOSE_NOTIFY = 0
    UNEXPECTED_MESSAGE = 10
    BAD_RECORD_MAC = 20
    RECORD_OVERFLOW = 22
    HANDSHAKE_FAILURE = 40
    BAD_CERTIFICATE = 42
    UNSUPPORTED_CERTIFICATE = 43
    CERTIFICATE_REVOKED = 44
    CERTIFICATE_EXPIRED = 45
    CERTIFICATE_UNKNOWN = 46
    ILLEGAL_PARAMETER = 47
    UNKNOWN_CA = 48
    ACCESS_DENIED = 49
    DECODE_ERROR = 50
    DECRYPT_ERROR = 51
    PROTOCOL_VERSION = 70
    INSUFFICIENT_SECURITY = 71
    INTERNAL_ERROR = 80
    USER_CANCELED = 90
    NO_RENEGOTIATION = 100
    UNSUPPORTED_EXTENSION = 110
    UNKNOWN_PSK_IDENTITY = 115


class CipherSuite(IntEnum):
    """The cipher suites LwM2M 1.1 requires (LwM2M-TS-Transport §5.2.8; RFC 6655, RFC 7251,
    RFC 5487, RFC 5289), plus the renegotiation SCSV of RFC 5746 §3.3.

    >>> CipherSuite.TLS_PSK_WITH_AES_128_CCM_8.is_psk, CipherSuite.TLS_PSK_WITH_AES_128_CCM_8.is_ccm
    (True, True)
    >>> CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256.is_psk
    False
    """

    TLS_PSK_WITH_AES_128_CBC_SHA256 = 0x00AE
    TLS_PSK_WITH_AES_128_CCM_8 = 0xC0A8
    TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 = 0xC023
    TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 = 0xC0AE
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF

    @property
    def is_psk(self) -> bool:
        """True for the plain PSK key exchange (RFC 4279 §2)."""
        return self in (
            CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256,
            CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,
        )

    @property
    def is_ccm(self) -> bool:
        """True for AES-128-CCM with an 8-byte tag (RFC 6655 §3)."""
        return self in (
            CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,
            CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
        )


class ExtensionType(IntEnum):
    """TLS ExtensionType values used here."""

    SERVER_NAME = 0
    MAX_FRAGMENT_LENGTH = 1
    SUPPORTED_GROUPS = 10
    EC_POINT_FORMATS = 11
    SIGNATURE_ALGORITHMS = 13
    CLIENT_CERTIFICATE_TYPE = 19
    SERVER_CERTIFICATE_TYPE = 20
    ENCRYPT_THEN_MAC = 22
    EXTENDED_MASTER_SECRET = 23
    SESSION_TICKET = 35
    CONNECTION_ID = 54
    RENEGOTIATION_INFO = 0xFF01


class NamedGroup(IntEnum):
    """Supported Groups (RFC 8422 §5.1.1); only secp256r1 is used."""

    SECP256R1 = 23


class SignatureScheme(IntEnum):
    """SignatureAndHashAlgorithm as a 16-bit value (RFC 5246 §7.4.1.4.1: hash 4 = sha256,
    signature 3 = ecdsa)."""

    ECDSA_SECP256R1_SHA256 = 0x0403


class CertificateType(IntEnum):
    """TLS Certificate Types (RFC 7250 §3)."""

    X509 = 0
    RAW_PUBLIC_KEY = 2


#: ClientCertificateType ecdsa_sign in CertificateRequest (RFC 8422 §5.5).
ECDSA_SIGN = 64
#: ECCurveType named_curve (RFC 8422 §5.4).
NAMED_CURVE = 3
#: ECPointFormat uncompressed (RFC 8422 §5.1.2).
POINT_FORMAT_UNCOMPRESSED = 0
