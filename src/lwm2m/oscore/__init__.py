"""OSCORE, Object Security for Constrained RESTful Environments (RFC 8613): a sans-IO core.

Layer above :mod:`lwm2m.coap`: it turns CoAP :class:`~lwm2m.coap.message.Message` objects into
OSCORE messages and back, and knows nothing of sockets, asyncio or the LwM2M model.

* :mod:`~lwm2m.oscore.secret` — the :class:`MasterSecret` credential seam (§3.2.1, §12.3).
* :mod:`~lwm2m.oscore.algorithms` — COSE AEAD and HKDF algorithm registries (§3.2, §5).
* :mod:`~lwm2m.oscore.option` — the OSCORE option value (§2, §6.1).
* :mod:`~lwm2m.oscore.cose` — HKDF info, nonce, AAD, plaintext, option classes (§3.2.1, §4.1,
  §5.2-§5.4).
* :mod:`~lwm2m.oscore.context` — Security Context, replay window, request binding, protection
  and verification (§3, §7, §8, Appendix B.1.1).
* :mod:`~lwm2m.oscore.errors` — the error tree below :class:`~lwm2m.errors.OscoreError`.

Typical use — client::

    ctx = SecurityContext(SoftwareMasterSecret(secret), OscoreParameters(b"", b"\\x01"))
    outer, binding = ctx.protect_request(request)          # send outer
    response = ctx.unprotect_response(outer_response, binding)

server::

    request, ctx, binding = unprotect_request(outer_request, lookup)  # VerificationError → reply
    outer_response = ctx.protect_response(response, binding)          # error.error_response()
"""

from __future__ import annotations

from .algorithms import AeadAlgorithm, HkdfAlgorithm
from .context import (
    DEFAULT_REPLAY_WINDOW_SIZE,
    DEFAULT_SEQUENCE_LIMIT_STEP,
    MAX_SEQUENCE_NUMBER,
    KeyMaterial,
    OscoreParameters,
    ReplayWindow,
    RequestBinding,
    SecurityContext,
    derive_key_material,
    unprotect_request,
)
from .errors import (
    ContextExhausted,
    ContextNotFound,
    DecryptionFailed,
    InvalidParameters,
    MalformedPlaintext,
    NotProtected,
    OptionDecodeError,
    OscoreError,
    OscoreUsageError,
    ReplayDetected,
    VerificationError,
)
from .option import OscoreOption, oscore_option
from .secret import MasterSecret, SoftwareMasterSecret

__all__ = [
    "DEFAULT_REPLAY_WINDOW_SIZE",
    "DEFAULT_SEQUENCE_LIMIT_STEP",
    "MAX_SEQUENCE_NUMBER",
    "AeadAlgorithm",
    "ContextExhausted",
    "ContextNotFound",
    "DecryptionFailed",
    "HkdfAlgorithm",
    "InvalidParameters",
    "KeyMaterial",
    "MalformedPlaintext",
    "MasterSecret",
    "NotProtected",
    "OptionDecodeError",
    "OscoreError",
    "OscoreOption",
    "OscoreParameters",
    "OscoreUsageError",
    "ReplayDetected",
    "ReplayWindow",
    "RequestBinding",
    "SecurityContext",
    "SoftwareMasterSecret",
    "VerificationError",
    "derive_key_material",
    "oscore_option",
    "unprotect_request",
]
