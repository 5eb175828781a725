"""The COSE_Encrypt0 pieces of OSCORE, as pure functions (RFC 8613 §3.2.1, §4.1, §5.2-§5.4).

* :func:`hkdf_info` — the CBOR ``info`` array of the key derivation (§3.2.1).
* :func:`aead_nonce` — the AEAD nonce from Common IV, ID_PIV and Partial IV (§5.2).
* :func:`aad` — the Enc_structure ``["Encrypt0", h'', external_aad]`` whose external_aad is the
  bstr-wrapped ``[1, [alg_aead], request_kid, request_piv, h'']`` (§5.4; no Class I options are
  defined, so ``options`` is always empty).
* :func:`encode_plaintext` / :func:`decode_plaintext` — Code, Class E options and payload (§5.3).
* :func:`encode_partial_iv` — a sequence number as a Partial IV (§6.1: minimal big-endian, with
  0 as one zero byte).
* :func:`split_options` — which options of an original message are Inner (Class E) and which are
  Outer (Class U) (§4.1, Figure 5; §4.1.3.3 Proxy-Uri decomposition; §4.1.3.5 Observe;
  §4.1.3.6 No-Response; RFC 9175 §2.3, §3.4: Echo and Request-Tag are Class E; options unknown
  to RFC 8613, Hop-Limit included, default to Class E).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote_to_bytes, urlsplit

import cbor2

from lwm2m.coap.errors import MessageFormatError
from lwm2m.coap.message import Message, decode
from lwm2m.coap.numbers import OptionNumber

from .algorithms import AeadAlgorithm
from .errors import MalformedPlaintext, OscoreUsageError

__all__ = [
    "CLASS_U_ONLY",
    "aad",
    "aead_nonce",
    "decode_plaintext",
    "encode_partial_iv",
    "encode_plaintext",
    "hkdf_info",
    "split_options",
]

#: Options that are only Outer (Class U, column U without E in RFC 8613 Figure 5): a sender keeps
#: them in the OSCORE message, a receiver keeps the received Outer ones (§8.2 step 1, §8.4 step 1).
#: Every other option is Inner (Class E); Observe is both (§4.1.3.5), the OSCORE option is special.
CLASS_U_ONLY: Final = frozenset(
    {
        OptionNumber.URI_HOST,
        OptionNumber.URI_PORT,
        OptionNumber.PROXY_URI,
        OptionNumber.PROXY_SCHEME,
    }
)

_OSCORE: Final = int(OptionNumber.OSCORE)
_OBSERVE: Final = int(OptionNumber.OBSERVE)
_URI_PATH: Final = int(OptionNumber.URI_PATH)
_URI_QUERY: Final = int(OptionNumber.URI_QUERY)
_PROXY_URI: Final = int(OptionNumber.PROXY_URI)
_OSCORE_VERSION: Final = 1


def hkdf_info(
    identifier: bytes, id_context: bytes | None, aead: AeadAlgorithm, kind: str, length: int
) -> bytes:
    """The ``info`` of RFC 8613 §3.2.1: ``[id, id_context / nil, alg_aead, "Key"/"IV", L]``.

    >>> hkdf_info(b"", None, AeadAlgorithm.AES_CCM_16_64_128, "Key", 16).hex()  # C.1.1
    '8540f60a634b657910'
    """
    return cbor2.dumps([identifier, id_context, int(aead), kind, length])


def aead_nonce(common_iv: bytes, id_piv: bytes, partial_iv: bytes) -> bytes:
    """The AEAD nonce of RFC 8613 §5.2: ``S || pad(ID_PIV) || pad(PIV)`` XOR Common IV, where S
    is the length of ID_PIV, ID_PIV is padded to nonce length - 6 bytes and PIV to 5 bytes."""
    length = len(common_iv)
    partial = int.from_bytes(partial_iv, "big")
    block = (len(id_piv) << ((length - 1) * 8)) | (int.from_bytes(id_piv, "big") << 40) | partial
    return (block ^ int.from_bytes(common_iv, "big")).to_bytes(length, "big")


def aad(aead: AeadAlgorithm, request_kid: bytes, request_piv: bytes) -> bytes:
    """The AAD, ``Enc_structure = ["Encrypt0", h'', external_aad]`` (RFC 8613 §5.4).

    >>> aad(AeadAlgorithm.AES_CCM_16_64_128, b"\\x00", b"\\x25").hex()  # the §5.4 example
    '8368456e63727970743040498501810a4100412540'
    """
    # The CBOR is written out by hand (a fixed shape; cbor2.dumps twice cost as much as the
    # whole AEAD of a small message); _bstr falls back to cbor2 for long byte strings.
    external_aad = b"".join(
        (b"\x85\x01\x81", _ALGORITHM[aead], _bstr(request_kid), _bstr(request_piv), b"\x40")
    )
    return b"\x83\x68Encrypt0\x40" + _bstr(external_aad)


_ALGORITHM: Final = {algorithm: cbor2.dumps(int(algorithm)) for algorithm in AeadAlgorithm}


def _bstr(data: bytes) -> bytes:
    """A CBOR byte string (RFC 8949 §3.1, major type 2)."""
    length = len(data)
    if length < 24:
        return bytes((0x40 | length,)) + data
    encoded: bytes = cbor2.dumps(data)
    return encoded


def encode_partial_iv(sequence_number: int) -> bytes:
    """A Sender Sequence Number as Partial IV: big-endian without leading zero bytes, 0 as b"\\0"
    (RFC 8613 §5, §6.1).

    >>> encode_partial_iv(0), encode_partial_iv(20), encode_partial_iv(256)
    (b'\\x00', b'\\x14', b'\\x01\\x00')
    """
    return sequence_number.to_bytes(max(1, (sequence_number.bit_length() + 7) >> 3), "big")


def encode_plaintext(code: int, options: Iterable[tuple[int, bytes]], payload: bytes) -> bytes:
    """Code, Class E options and payload (with its marker), RFC 8613 §5.3 / Figure 9."""
    inner = Message(code, payload, options=options, token=b"", mid=0)
    return bytes((code,)) + inner.encode()[4:]


def decode_plaintext(plaintext: bytes) -> Message:
    """Parse a §5.3 plaintext into a Message (token empty, Message ID 0); raises
    :class:`MalformedPlaintext` only."""
    try:
        return decode(b"\x40" + plaintext[:1] + b"\x00\x00" + plaintext[1:])
    except MessageFormatError as exc:
        raise MalformedPlaintext(str(exc)) from None


def split_options(
    message: Message,
) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """``(inner, outer)`` options of an original message (RFC 8613 §4.1).

    Observe goes to both lists unchanged (the caller empties the inner value of notifications,
    §4.1.3.5.2). A Proxy-Uri is decomposed (§4.1.3.3): its path and query become Inner Uri-Path
    and Uri-Query, and the Outer Proxy-Uri keeps only scheme and authority. Raises
    :class:`OscoreUsageError` for an OSCORE option (nested OSCORE, §4.1.3.7) or a Proxy-Uri that
    cannot be decomposed.
    """
    inner: list[tuple[int, bytes]] = []
    outer: list[tuple[int, bytes]] = []
    for number, value in message.options:
        if number == _OSCORE:
            raise OscoreUsageError("the message already has an OSCORE option (RFC 8613 §4.1.3.7)")
        if number == _PROXY_URI:
            scheme_authority, path_and_query = _decompose_proxy_uri(message, value)
            outer.append((number, scheme_authority))
            inner.extend(path_and_query)
        elif number in CLASS_U_ONLY:
            outer.append((number, value))
        else:
            inner.append((number, value))
            if number == _OBSERVE:
                outer.append((number, value))
    inner.sort(key=_number)
    outer.sort(key=_number)
    return inner, outer


def _number(option: tuple[int, bytes]) -> int:
    return option[0]


def _decompose_proxy_uri(message: Message, value: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """RFC 8613 §4.1.3.3 with the decomposition of RFC 7252 §6.4."""
    if message.has_option(_URI_PATH) or message.has_option(_URI_QUERY):
        raise OscoreUsageError("Proxy-Uri together with Uri-Path/Uri-Query (RFC 7252 §5.10.2)")
    try:
        parts = urlsplit(value.decode())
    except (UnicodeDecodeError, ValueError):
        raise OscoreUsageError("Proxy-Uri is not a URI (RFC 7252 §6.4)") from None
    if not parts.scheme or not parts.netloc or parts.fragment:
        raise OscoreUsageError("Proxy-Uri needs a scheme, an authority and no fragment (§6.4)")
    options = [(_URI_PATH, unquote_to_bytes(s)) for s in parts.path.split("/")[1:]]
    if options == [(_URI_PATH, b"")]:
        options = []  # "/" is the empty path (RFC 7252 §6.4 step 8)
    if parts.query:
        options.extend((_URI_QUERY, unquote_to_bytes(q)) for q in parts.query.split("&"))
    return f"{parts.scheme}://{parts.netloc}".encode(), options
