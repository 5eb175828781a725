"""HKDF (RFC 5869) for OSCORE Master Secrets held by a Secure Component (RFC 8613 §3.2.1).

An OSCORE Security Context needs its Master Secret only as the input keying material of
``HKDF(salt = Master Salt, IKM = Master Secret, info, L)``; the context's credential seam
(:class:`lwm2m.oscore.MasterSecret`) is one call, ``hkdf(algorithm, salt, info, length)``. The
backends implement it with what their hardware offers:

- ``soft:`` — the whole HKDF in software (SHA-256 and SHA-512);
- ``pkcs11:`` — PKCS#11 v2.40 has no HKDF, and HKDF-Extract uses the secret as HMAC *data*
  (``PRK = HMAC(salt, secret)``), which no v2.40 mechanism can do with a key object. So the
  import computes the PRK on the host — the one moment the host holds the secret anyway — and
  stores the PRK as a non-extractable HMAC key; HKDF-Expand then runs as in-token HMAC
  (:func:`expand`). The PRK fixes the salt (and the hash);
- ``pcsc:`` — IoT SAFE COMPUTE HKDF on the card, over the secret in a secret container.

Every handle serves the Master Salt it was imported with and refuses any other
(:class:`~lwm2m.secure.interfaces.OperationNotSupported`): the PRK-based backends cannot do
otherwise, and the contract is the same on every backend. A changed Master Salt needs the
Master Secret imported again.

Algorithms are the COSE HKDF identifiers (RFC 8152 §11.1, :class:`lwm2m.oscore.HkdfAlgorithm`):
:data:`HKDF_SHA_256` (-10, mandatory, RFC 8613 §3.2) and :data:`HKDF_SHA_512` (-11).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection

from lwm2m.oscore import HkdfAlgorithm, SoftwareMasterSecret
from lwm2m.secure.interfaces import OperationNotSupported, check_label

__all__ = [
    "ALL_ALGORITHMS",
    "HKDF_SHA_256",
    "HKDF_SHA_512",
    "SoftwareOscoreSecret",
    "check_master_secret",
    "check_request",
    "expand",
    "extract",
    "software_hkdf",
]

HKDF_SHA_256 = -10
"""COSE "HKDF SHA-256" (RFC 8152 §11.1)."""
HKDF_SHA_512 = -11
"""COSE "HKDF SHA-512" (RFC 8152 §11.1)."""
_HASHES = {HKDF_SHA_256: ("sha256", 32), HKDF_SHA_512: ("sha512", 64)}
_NAMES = {HKDF_SHA_256: "HKDF SHA-256", HKDF_SHA_512: "HKDF SHA-512"}
ALL_ALGORITHMS = frozenset(_HASHES)


def check_master_secret(master_secret: bytes, master_salt: bytes) -> tuple[bytes, bytes]:
    """``(master_secret, master_salt)`` as bytes, if they can be imported.

    :raises ValueError: an empty Master Secret (RFC 8613 §3.1 needs one) or values that are
        not bytes.
    """
    if not isinstance(master_secret, bytes | bytearray | memoryview) or not isinstance(
        master_salt, bytes | bytearray | memoryview
    ):
        raise TypeError("an OSCORE Master Secret and Master Salt are bytes")
    if not len(master_secret):
        raise ValueError("an OSCORE Master Secret must not be empty (RFC 8613 §3.1)")
    return bytes(master_secret), bytes(master_salt)


def check_request(
    label: str,
    bound_salt: bytes,
    algorithm: int,
    salt: bytes,
    length: int,
    supported: Collection[int] = ALL_ALGORITHMS,
) -> tuple[str, int]:
    """``(hash name, hash length)`` of an ``hkdf()`` call the handle ``label`` can serve.

    >>> check_request("m", b"s", -10, b"s", 16)
    ('sha256', 32)

    :raises OperationNotSupported: another algorithm than those ``supported``, or a Master
        Salt other than ``bound_salt`` (the one the secret was imported with).
    :raises ValueError: ``length`` outside 1..255 times the hash length (RFC 5869 §2.3).
    """
    try:
        name, hash_length = _HASHES[int(algorithm)]
    except (KeyError, TypeError, ValueError):
        raise OperationNotSupported(
            f"OSCORE Master Secret {label!r}: unknown HKDF algorithm {algorithm!r}"
        ) from None
    if int(algorithm) not in supported:
        offered = ", ".join(_NAMES[a] for a in sorted(supported, reverse=True))
        raise OperationNotSupported(
            f"OSCORE Master Secret {label!r}: this component derives with {offered} only, not "
            f"{_NAMES[int(algorithm)]}"
        )
    if bytes(salt) != bound_salt:
        differs = (
            f"{len(bound_salt)} bytes, not {len(salt)}"
            if len(salt) != len(bound_salt)
            else "other bytes of the same length"
        )
        raise OperationNotSupported(
            f"OSCORE Master Secret {label!r} was imported with another Master Salt ({differs}): "
            "it derives with that salt only; import the Master Secret again with the new salt"
        )
    if type(length) is not int or not 1 <= length <= 255 * hash_length:
        raise ValueError(f"an HKDF output has 1..{255 * hash_length} bytes, not {length!r}")
    return name, hash_length


def extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract: ``PRK = HMAC-Hash(salt, IKM)``; an empty salt is HashLen zeros (RFC 5869
    §2.2 — the same HMAC key, as HMAC pads keys with zeros).

    >>> extract("sha256", b"", b"k") == extract("sha256", bytes(32), b"k")
    True
    """
    return hmac.digest(bytes(salt), bytes(ikm), hash_name)


def expand(mac: Callable[[bytes], bytes], info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3) with ``mac(data) = HMAC-Hash(PRK, data)`` — which may run
    inside a token: ``T(i) = HMAC(PRK, T(i-1) | info | i)``, the first ``length`` bytes of
    ``T(1) | T(2) | …``."""
    out = bytearray()
    block = b""
    counter = 0
    while len(out) < length:
        counter += 1
        block = bytes(mac(block + bytes(info) + bytes([counter])))
        out += block
    return bytes(out[:length])


def software_hkdf(
    master_secret: bytes, algorithm: int, salt: bytes, info: bytes, length: int
) -> bytes:
    """The whole HKDF in this process (``soft:`` and the store's fallback): the OSCORE
    layer's own software Master Secret does it."""
    secret = SoftwareMasterSecret(master_secret)
    return secret.hkdf(HkdfAlgorithm(algorithm), salt, info, length)


class SoftwareOscoreSecret:
    """An OSCORE Master Secret held in process memory and bound to its Master Salt: the
    :class:`~lwm2m.secure.store.SecureInstanceStore` fallback for a /21/x/0 kept as plain
    secret data (``put_secret``) by earlier versions. Software: the secret is in this
    process's memory. Never shows the secret.

    >>> s = SoftwareOscoreSecret("m", bytes(16), b"salt")
    >>> s
    SoftwareOscoreSecret(label='m', software, salt_length=4)
    >>> len(s.hkdf(-10, b"salt", b"info", 16))
    16
    """

    __slots__ = ("_label", "_salt", "_secret")

    def __init__(self, label: str, master_secret: bytes, master_salt: bytes = b"") -> None:
        self._label = check_label(label)
        self._secret, self._salt = check_master_secret(master_secret, master_salt)

    @property
    def label(self) -> str:
        return self._label

    @property
    def master_salt(self) -> bytes:
        return self._salt

    def hkdf(self, algorithm: int, salt: bytes, info: bytes, length: int) -> bytes:
        check_request(self._label, self._salt, algorithm, salt, length)
        return software_hkdf(self._secret, algorithm, self._salt, info, length)

    def __repr__(self) -> str:
        return (
            f"SoftwareOscoreSecret(label={self._label!r}, software, salt_length={len(self._salt)})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an OSCORE Master Secret cannot be pickled")
