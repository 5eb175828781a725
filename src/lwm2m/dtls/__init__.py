"""A sans-IO DTLS 1.2 engine (RFC 6347) whose long-term keys stay in their Secure Component.

Public API:

- :class:`DtlsConnection` (client or server association) and :class:`DtlsServer` (the server
  demultiplexer: stateless cookies, routing by address or connection ID);
- :class:`DtlsConfiguration`, :class:`DtlsCredentials` and the credential protocols
  (:class:`PskCredential`, :class:`PskStore`, :class:`SigningKey`) with software
  implementations; peer verification (:class:`RawPublicKeyVerifier`, :class:`X509Verifier`);
- events (:class:`HandshakeCompleted`, :class:`ApplicationData`, :class:`AlertReceived`,
  :class:`ConnectionClosed`) and identity values.

See ``docs/design.md`` (DTLS) for the credential seam.
"""

from __future__ import annotations

from .config import DEFAULT_CIPHER_SUITES, DtlsConfiguration, KeyLogWriter
from .connection import ConnectionState, DtlsConnection
from .constants import AlertDescription, AlertLevel, CertificateType, CipherSuite, ContentType
from .cookie import CookieGenerator
from .credentials import (
    DtlsCredentials,
    PskCredential,
    PskStore,
    SigningKey,
    SoftwarePsk,
    SoftwarePskStore,
    SoftwareSigningKey,
)
from .errors import Alert, DtlsError, DtlsStateError, HandshakeTimeout
from .events import (
    AlertReceived,
    ApplicationData,
    ConnectionClosed,
    DtlsEvent,
    DtlsSession,
    HandshakeCompleted,
    PeerAddressChanged,
)
from .server import DtlsServer, ServerEvent
from .trust import (
    CertificateIdentity,
    CertificateUsage,
    MatchingType,
    PeerIdentity,
    PeerVerifier,
    PskIdentity,
    RawPublicKeyIdentity,
    RawPublicKeyVerifier,
    X509Verifier,
)

__all__ = [
    "DEFAULT_CIPHER_SUITES",
    "Alert",
    "AlertDescription",
    "AlertLevel",
    "AlertReceived",
    "ApplicationData",
    "CertificateIdentity",
    "CertificateType",
    "CertificateUsage",
    "CipherSuite",
    "ConnectionClosed",
    "ConnectionState",
    "ContentType",
    "CookieGenerator",
    "DtlsConfiguration",
    "DtlsConnection",
    "DtlsCredentials",
    "DtlsError",
    "DtlsEvent",
    "DtlsServer",
    "DtlsSession",
    "DtlsStateError",
    "HandshakeCompleted",
    "HandshakeTimeout",
    "KeyLogWriter",
    "MatchingType",
    "PeerAddressChanged",
    "PeerIdentity",
    "PeerVerifier",
    "PskCredential",
    "PskIdentity",
    "PskStore",
    "RawPublicKeyIdentity",
    "RawPublicKeyVerifier",
    "ServerEvent",
    "SigningKey",
    "SoftwarePsk",
    "SoftwarePskStore",
    "SoftwareSigningKey",
    "X509Verifier",
]
