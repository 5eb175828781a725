"""Errors of the DTLS layer, rooted in :class:`lwm2m.errors.DtlsError`.

Every :class:`Alert` subclass carries the wire description it is sent with (RFC 5246 §7.2), after
aioquic's ``tls.Alert``. Messages name the rule that was broken, never key material.
"""

from __future__ import annotations

from lwm2m.errors import DtlsError

from .constants import AlertDescription

__all__ = [
    "Alert",
    "AlertAccessDenied",
    "AlertBadCertificate",
    "AlertBadRecordMac",
    "AlertCertificateExpired",
    "AlertCertificateUnknown",
    "AlertDecodeError",
    "AlertDecryptError",
    "AlertHandshakeFailure",
    "AlertIllegalParameter",
    "AlertInsufficientSecurity",
    "AlertInternalError",
    "AlertNoRenegotiation",
    "AlertProtocolVersion",
    "AlertRecordOverflow",
    "AlertUnexpectedMessage",
    "AlertUnknownCa",
    "AlertUnknownPskIdentity",
    "AlertUnsupportedCertificate",
    "AlertUnsupportedExtension",
    "DtlsError",
    "DtlsStateError",
    "HandshakeTimeout",
]


class Alert(DtlsError):
    """A fatal protocol error; ``description`` is the alert sent to the peer."""

    description: AlertDescription = AlertDescription.INTERNAL_ERROR


class AlertUnexpectedMessage(Alert):
    description = AlertDescription.UNEXPECTED_MESSAGE


class AlertBadRecordMac(Alert):
    description = AlertDescription.BAD_RECORD_MAC


class AlertRecordOverflow(Alert):
    description = AlertDescription.RECORD_OVERFLOW


class AlertHandshakeFailure(Alert):
    description = AlertDescription.HANDSHAKE_FAILURE


class AlertBadCertificate(Alert):
    description = AlertDescription.BAD_CERTIFICATE


class AlertUnsupportedCertificate(Alert):
    description = AlertDescription.UNSUPPORTED_CERTIFICATE


class AlertCertificateExpired(Alert):
    description = AlertDescription.CERTIFICATE_EXPIRED


class AlertCertificateUnknown(Alert):
    description = AlertDescription.CERTIFICATE_UNKNOWN


class AlertIllegalParameter(Alert):
    description = AlertDescription.ILLEGAL_PARAMETER


class AlertUnknownCa(Alert):
    description = AlertDescription.UNKNOWN_CA


class AlertAccessDenied(Alert):
    description = AlertDescription.ACCESS_DENIED


class AlertDecodeError(Alert):
    description = AlertDescription.DECODE_ERROR


class AlertDecryptError(Alert):
    description = AlertDescription.DECRYPT_ERROR


class AlertProtocolVersion(Alert):
    description = AlertDescription.PROTOCOL_VERSION


class AlertInsufficientSecurity(Alert):
    description = AlertDescription.INSUFFICIENT_SECURITY


class AlertInternalError(Alert):
    description = AlertDescription.INTERNAL_ERROR


class AlertNoRenegotiation(Alert):
    description = AlertDescription.NO_RENEGOTIATION


class AlertUnsupportedExtension(Alert):
    description = AlertDescription.UNSUPPORTED_EXTENSION


class AlertUnknownPskIdentity(Alert):
    description = AlertDescription.UNKNOWN_PSK_IDENTITY


class HandshakeTimeout(DtlsError):
    """The peer did not answer a flight within the retransmission budget (RFC 6347 §4.2.4)."""


class DtlsStateError(DtlsError):
    """The local application called the engine in a state that does not allow it."""
