"""Keeping secrets out of logs, reprs, exceptions and CLI output.

- :func:`redact_uri` hides inline credentials of a Secure Component URI (the RFC 7512
  ``pin-value`` query attribute, and anything vendor-specific named like a secret) so a URI can
  be logged or shown in a ``repr``.
- :func:`log_secret` stands in for a secret in a log line: its length only, never its value
  (after aiocoap's ``log_secret``).
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "log_secret", "redact_uri"]

REDACTED = "REDACTED"

# Attribute names whose values are secrets: RFC 7512's pin-value, and vendor attributes (x-...)
# that carry a PIN, passphrase, password or key inline. Names of environment variables
# (passphrase-env, key-env) and files (pin-source) are not secrets.
_SECRET_ATTR = re.compile(
    r"(?P<name>(?<=[:?&;])(?:pin-value|x-[a-z0-9-]*(?:pin|passphrase|password|secret|key))"
    r"(?<!-env)(?<!-file)(?<!-source))=(?P<value>[^&;]*)",
    re.IGNORECASE,
)


def redact_uri(uri: str) -> str:
    """``uri`` with inline secrets replaced by ``REDACTED``.

    >>> redact_uri("pkcs11:token=a;object=k?module-path=/lib/p.so&pin-value=1234")
    'pkcs11:token=a;object=k?module-path=/lib/p.so&pin-value=REDACTED'
    >>> redact_uri("soft:/var/lib/sc.bin?passphrase-env=SC_PASS")
    'soft:/var/lib/sc.bin?passphrase-env=SC_PASS'
    """
    return _SECRET_ATTR.sub(lambda m: f"{m['name']}={REDACTED}", uri)


def log_secret(value: bytes | bytearray | str | None) -> str:
    """A placeholder for a secret in log messages.

    >>> log_secret(bytes(16)), log_secret(None)
    ('<secret: 16 bytes>', '<no secret>')
    """
    if value is None:
        return "<no secret>"
    unit = "characters" if isinstance(value, str) else "bytes"
    return f"<secret: {len(value)} {unit}>"
