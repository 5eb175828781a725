"""The OSCORE Security Context and message protection (RFC 8613 §3, §4, §5, §7, §8).

* :class:`OscoreParameters` — the public input parameters of a Security Context (§3.2) with the
  requirements of §3.3 (distinct Sender/Recipient IDs of at most nonce length - 6 bytes).
* :func:`derive_key_material` — Sender Key, Recipient Key and Common IV by HKDF (§3.2.1), run by
  the :class:`~lwm2m.oscore.secret.MasterSecret` capability.
* :class:`ReplayWindow` — the server's anti-replay sliding window (§3.2.2, §7.4; RFC 6347
  §4.1.2.6), 32 sequence numbers by default, updated only after a successful decryption.
* :class:`RequestBinding` — what a response is bound to: the request's 'kid' and Partial IV
  (§5.4 ``request_kid``/``request_piv``, §7.1, §8). It also carries the per-request state the
  RFC asks for: whether the request nonce was already used by a response (§5.2, Appendix D.4:
  the server never uses it twice) and, on the client, how many responses were accepted and the
  Notification Number of an observation (§4.1.3.5.2, §7.4.1, §8.4.2).
* :class:`SecurityContext` — Common, Sender and Recipient Context (§3.1): the client protects
  requests and verifies responses (§8.1, §8.4), the server protects responses (§8.3); the Sender
  Sequence Number with its optional persistence hook (§7.2, Appendix B.1.1).
* :func:`unprotect_request` — server side: find the context by 'kid'/'kid context' and verify the
  request (§8.2).

Protected (outer) messages (§4.2): the Outer Code is POST for requests (FETCH with Observe) and
2.04 Changed for responses (2.05 Content with Observe, §4.1.3.5); Token, Message ID and type are
copied from the given message (they are not protected); the payload is the ciphertext.

The module is sans-IO and single-threaded: a context is not safe for concurrent use (§7.2 asks
that reading and incrementing the Sender Sequence Number be atomic; callers serialize access).
Decoders of received messages raise only :class:`~lwm2m.errors.OscoreError` subclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from lwm2m.coap.message import Message, encode_uint
from lwm2m.coap.numbers import Code, OptionNumber

from .algorithms import Aead, AeadAlgorithm, HkdfAlgorithm, InvalidTag
from .cose import (
    CLASS_U_ONLY,
    aad,
    aead_nonce,
    decode_plaintext,
    encode_partial_iv,
    encode_plaintext,
    hkdf_info,
    split_options,
)
from .errors import (
    ContextExhausted,
    ContextNotFound,
    DecryptionFailed,
    InvalidParameters,
    MalformedPlaintext,
    NotProtected,
    OptionDecodeError,
    OscoreUsageError,
    ReplayDetected,
)
from .option import OscoreOption, oscore_option
from .secret import MasterSecret

__all__ = [
    "DEFAULT_REPLAY_WINDOW_SIZE",
    "DEFAULT_SEQUENCE_LIMIT_STEP",
    "MAX_SEQUENCE_NUMBER",
    "KeyMaterial",
    "OscoreParameters",
    "ReplayWindow",
    "RequestBinding",
    "SecurityContext",
    "derive_key_material",
    "unprotect_request",
]

#: The largest Sender Sequence Number (RFC 8613 §7.2.1, §12.6: less than 2^40).
MAX_SEQUENCE_NUMBER: Final = (1 << 40) - 1
#: The default replay window (RFC 8613 §3.2.2).
DEFAULT_REPLAY_WINDOW_SIZE: Final = 32
#: The default K of RFC 8613 Appendix B.1.1: how far ahead a persisted limit reaches.
DEFAULT_SEQUENCE_LIMIT_STEP: Final = 32

_OSCORE: Final = int(OptionNumber.OSCORE)
_OBSERVE: Final = int(OptionNumber.OBSERVE)


@dataclass(frozen=True, slots=True)
class OscoreParameters:
    """The public input of a Security Context (RFC 8613 §3.2); the Master Secret is separate.

    >>> OscoreParameters(sender_id=b"", recipient_id=b"\\x01").aead.name
    'AES_CCM_16_64_128'
    """

    sender_id: bytes
    recipient_id: bytes
    master_salt: bytes = b""
    id_context: bytes | None = None
    aead: AeadAlgorithm = AeadAlgorithm.AES_CCM_16_64_128
    hkdf: HkdfAlgorithm = HkdfAlgorithm.HKDF_SHA_256

    def __post_init__(self) -> None:
        try:
            aead = AeadAlgorithm(self.aead)
        except ValueError:
            raise InvalidParameters(f"unsupported AEAD algorithm {self.aead!r}") from None
        try:
            hkdf = HkdfAlgorithm(self.hkdf)
        except ValueError:
            raise InvalidParameters(f"unsupported HKDF algorithm {self.hkdf!r}") from None
        object.__setattr__(self, "aead", aead)
        object.__setattr__(self, "hkdf", hkdf)
        if self.sender_id == self.recipient_id:
            raise InvalidParameters(
                f"Sender ID and Recipient ID are both {self.sender_id.hex() or 'empty'}"
                " (RFC 8613 §3.3: one key per direction)"
            )
        for name, value in (("Sender ID", self.sender_id), ("Recipient ID", self.recipient_id)):
            if len(value) > aead.max_id_length:
                raise InvalidParameters(
                    f"{name} of {len(value)} bytes; {aead.name} allows at most"
                    f" {aead.max_id_length} (RFC 8613 §3.3)"
                )


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """The derived secrets of a Security Context (RFC 8613 §3.2.1); ``repr`` shows none."""

    sender_key: bytes = field(repr=False)
    recipient_key: bytes = field(repr=False)
    common_iv: bytes = field(repr=False)


def derive_key_material(secret: MasterSecret, parameters: OscoreParameters) -> KeyMaterial:
    """Sender Key, Recipient Key and Common IV (RFC 8613 §3.2.1)."""
    aead = parameters.aead

    def derive(identifier: bytes, kind: str, length: int) -> bytes:
        info = hkdf_info(identifier, parameters.id_context, aead, kind, length)
        output = secret.hkdf(parameters.hkdf, parameters.master_salt, info, length)
        if len(output) != length:
            raise InvalidParameters(f"the Master Secret derived {len(output)} bytes, not {length}")
        return output

    return KeyMaterial(
        sender_key=derive(parameters.sender_id, "Key", aead.key_length),
        recipient_key=derive(parameters.recipient_id, "Key", aead.key_length),
        common_iv=derive(b"", "IV", aead.nonce_length),
    )


class ReplayWindow:
    """Anti-replay sliding window over received Partial IVs (RFC 8613 §7.4; RFC 6347 §4.1.2.6).

    ``highest`` is the largest sequence number accepted so far (None before the first) and bit
    ``i`` of ``bitmap`` marks ``highest - i`` as received; both can be persisted and passed back
    to restore the window. A number more than ``size - 1`` below ``highest`` is refused.

    >>> w = ReplayWindow(); w.mark(5); w.is_fresh(5), w.is_fresh(4), w.is_fresh(6)
    (False, True, True)
    """

    __slots__ = ("_bitmap", "_highest", "size")

    def __init__(
        self, size: int = DEFAULT_REPLAY_WINDOW_SIZE, *, highest: int | None = None, bitmap: int = 0
    ) -> None:
        if size < 1:
            raise InvalidParameters(f"replay window of {size} entries")
        self.size = size
        self._highest = highest
        self._bitmap = bitmap & ((1 << size) - 1)

    @property
    def highest(self) -> int | None:
        return self._highest

    @property
    def bitmap(self) -> int:
        return self._bitmap

    def is_fresh(self, sequence_number: int) -> bool:
        """Whether ``sequence_number`` was not received before (and is not too old to tell)."""
        highest = self._highest
        if highest is None or sequence_number > highest:
            return True
        offset = highest - sequence_number
        return offset < self.size and not (self._bitmap >> offset) & 1

    def mark(self, sequence_number: int) -> None:
        """Record ``sequence_number`` as received (call after a successful decryption)."""
        highest = self._highest
        mask = (1 << self.size) - 1
        if highest is None or sequence_number > highest:
            shift = self.size if highest is None else sequence_number - highest
            self._bitmap = ((self._bitmap << min(shift, self.size)) | 1) & mask
            self._highest = sequence_number
        else:
            self._bitmap = (self._bitmap | (1 << (highest - sequence_number))) & mask

    def seal(self) -> None:
        """Treat every number up to ``highest`` as received: after a request proved its
        freshness (Echo, RFC 8613 Appendix B.1.2), nothing older may be accepted."""
        self._bitmap = (1 << self.size) - 1 if self._highest is not None else 0

    def __repr__(self) -> str:
        return f"ReplayWindow(size={self.size}, highest={self._highest})"


class _ExchangeState:
    """Mutable per-request state kept inside a :class:`RequestBinding`."""

    __slots__ = ("notification_number", "request_nonce_used", "responses")

    def __init__(self) -> None:
        self.responses = 0
        self.notification_number: int | None = None
        self.request_nonce_used = False


@dataclass(frozen=True, slots=True)
class RequestBinding:
    """What a response is bound to (RFC 8613 §5.4, §7.1, §8): the request's 'kid' (the client's
    Sender ID), its Partial IV as sent, and the 'kid context' it carried (None if none).

    ``observe`` is True when the request registered an observation (inner Observe 0).

    Keep the object returned by :meth:`SecurityContext.protect_request` /
    :func:`unprotect_request` for the whole exchange (RFC 8613 §8: the association Token →
    {context, request Partial IV} lives as long as the observation): it also carries the state
    that stops the server from using the request nonce twice and lets the client accept a single
    response, or notifications with increasing Partial IVs (§7.4.1).
    """

    kid: bytes
    piv: bytes
    kid_context: bytes | None
    observe: bool = False
    _state: _ExchangeState = field(
        default_factory=_ExchangeState, init=False, repr=False, compare=False
    )

    @property
    def notification_number(self) -> int | None:
        """Client side: the largest Partial IV of the accepted notifications (§4.1.3.5.2)."""
        return self._state.notification_number

    @property
    def responses_accepted(self) -> int:
        """Client side: how many responses to this request were verified."""
        return self._state.responses


class SecurityContext:
    """Common, Sender and Recipient Context of one OSCORE peer (RFC 8613 §3.1).

    The keys are derived once from ``secret`` (which is not kept). ``sender_sequence_number`` is
    the next Sender Sequence Number to use (§3.2.2; restore a persisted value here).

    Persistence (Appendix B.1.1): when ``on_sequence_limit`` is set, it is called with a new limit
    ``L`` *before* the first sequence number at or beyond the previous limit is used; the context
    then uses only numbers below ``L`` until it calls again. ``L`` is the number about to be used
    plus ``sequence_limit_step`` (K, 32 by default). The callback must store ``L`` durably before
    it returns; after a reboot, create the context with ``sender_sequence_number=L``, so that no
    number is used twice (this persists an upper bound, so the F of B.1.1 is not needed). If the
    callback raises, the exception propagates and no sequence number is consumed. The first
    limit is the starting ``sender_sequence_number``.

    ``send_kid_context``: include the ID Context as 'kid context' in requests (§5.1) when the
    context has one.
    """

    __slots__ = (
        "_aead",
        "_common_iv",
        "_limit",
        "_parameters",
        "_recipient",
        "_replay_window",
        "_sender",
        "_sequence_number",
        "on_sequence_limit",
        "send_kid_context",
        "sequence_limit_step",
    )

    on_sequence_limit: Callable[[int], None] | None

    def __init__(
        self,
        secret: MasterSecret,
        parameters: OscoreParameters,
        *,
        sender_sequence_number: int = 0,
        replay_window: ReplayWindow | None = None,
        on_sequence_limit: Callable[[int], None] | None = None,
        sequence_limit_step: int = DEFAULT_SEQUENCE_LIMIT_STEP,
        send_kid_context: bool = True,
    ) -> None:
        if not 0 <= sender_sequence_number <= MAX_SEQUENCE_NUMBER + 1:
            raise InvalidParameters(f"Sender Sequence Number {sender_sequence_number}")
        if sequence_limit_step < 1:
            raise InvalidParameters(f"sequence limit step {sequence_limit_step}")
        self._parameters = parameters
        self.on_sequence_limit = on_sequence_limit
        self.sequence_limit_step = sequence_limit_step
        self.send_kid_context = send_kid_context
        self._sequence_number = sender_sequence_number
        self._limit = sender_sequence_number
        self._replay_window = ReplayWindow() if replay_window is None else replay_window
        keys = derive_key_material(secret, parameters)
        self._aead = parameters.aead
        self._sender = Aead(parameters.aead, keys.sender_key)
        self._recipient = Aead(parameters.aead, keys.recipient_key)
        self._common_iv = keys.common_iv

    # -- public state ---------------------------------------------------------------------------

    @property
    def parameters(self) -> OscoreParameters:
        """The input parameters the keys were derived from (read-only)."""
        return self._parameters

    @property
    def sender_id(self) -> bytes:
        return self.parameters.sender_id

    @property
    def recipient_id(self) -> bytes:
        return self.parameters.recipient_id

    @property
    def id_context(self) -> bytes | None:
        return self.parameters.id_context

    @property
    def replay_window(self) -> ReplayWindow:
        """The Recipient Context's replay window (server role, §7.4)."""
        return self._replay_window

    @property
    def sender_sequence_number(self) -> int:
        """The next Sender Sequence Number to use."""
        return self._sequence_number

    @sender_sequence_number.setter
    def sender_sequence_number(self, value: int) -> None:
        # Going back would reuse nonces (RFC 8613 §7.2): only forward moves are allowed.
        if not self._sequence_number <= value <= MAX_SEQUENCE_NUMBER + 1:
            raise OscoreUsageError(
                f"Sender Sequence Number can only move forward ({self._sequence_number} -> "
                f"{value}) and stay at most 2^40"
            )
        self._sequence_number = value

    def __repr__(self) -> str:
        context = "" if self.id_context is None else f" id_context={self.id_context.hex()}"
        return (
            f"<SecurityContext sender_id={self.sender_id.hex()} recipient_id="
            f"{self.recipient_id.hex()}{context} {self._aead.name}"
            f" ssn={self._sequence_number}>"
        )

    # -- client role ----------------------------------------------------------------------------

    def protect_request(self, request: Message) -> tuple[Message, RequestBinding]:
        """The OSCORE request for ``request`` and what its responses are bound to (§8.1)."""
        if not request.is_request():
            raise OscoreUsageError(f"protect_request() of a {Code(request.code)} message")
        inner, outer = split_options(request)
        observe = request.observe
        kid = self.parameters.sender_id
        piv = self._next_partial_iv()
        ciphertext = self._sender.encrypt(
            aead_nonce(self._common_iv, kid, piv),
            encode_plaintext(request.code, inner, request.payload),
            aad(self._aead, kid, piv),
        )
        kid_context = self.parameters.id_context if self.send_kid_context else None
        outer.append((_OSCORE, OscoreOption(piv, kid, kid_context).encode()))
        protected = Message(
            Code.FETCH if observe is not None else Code.POST,
            ciphertext,
            mtype=request.mtype,
            mid=request.mid,
            token=request.token,
            options=outer,
        )
        return protected, RequestBinding(kid, piv, kid_context, observe=observe == 0)

    def unprotect_response(self, response: Message, binding: RequestBinding) -> Message:
        """Verify and decrypt an OSCORE response to the request of ``binding`` (§8.4).

        Accepts one response per request; for an Observe registration, at most one response
        without Partial IV (only as the first) and then only increasing Partial IVs (§7.4.1).
        The Observe option of a verified notification is set to ``(Partial IV + 1) mod 2^24``
        (0 for the notification without Partial IV) so that Observe ordering at the CoAP layer
        agrees with the Partial IV order (§4.1.3.5.2 allows deriving it from the Partial IV).
        A 'kid' or 'kid context' in a response is not used (§5: responses normally carry
        neither; the ID Context renewal of Appendix B.2 is not implemented). A response without
        OSCORE option (e.g. an unprotected OSCORE error, §8.3) raises :class:`NotProtected`.
        """
        if binding.kid != self.parameters.sender_id:
            raise OscoreUsageError("the binding belongs to a request of another context")
        option = oscore_option(response)
        if option is None:
            raise NotProtected("response without OSCORE option")
        if not response.payload:
            raise OptionDecodeError("OSCORE message without payload (RFC 8613 §2)")
        state = binding._state
        piv = option.partial_iv
        if piv is None:
            if state.responses:
                raise ReplayDetected("a second response reusing the request nonce")
            nonce = aead_nonce(self._common_iv, binding.kid, binding.piv)
            sequence_number = -1
        else:
            sequence_number = int.from_bytes(piv, "big")
            if binding.observe:
                number = state.notification_number
                if number is not None and sequence_number <= number:
                    raise ReplayDetected(f"notification Partial IV {sequence_number} <= {number}")
            elif state.responses:
                raise ReplayDetected("a second response to a non-Observe request")
            nonce = aead_nonce(self._common_iv, self.parameters.recipient_id, piv)
        plaintext = self._decrypt(nonce, response.payload, binding.kid, binding.piv)
        inner = _inner_message(plaintext, request=False)
        inner_observe = inner.get_option(_OBSERVE) is not None
        if inner_observe and not binding.observe:
            raise MalformedPlaintext("Inner Observe in a response to a non-Observe request")
        state.responses += 1
        if piv is not None and binding.observe:
            state.notification_number = sequence_number
        options = inner.options
        if inner_observe:
            value = encode_uint((sequence_number + 1) & 0xFF_FFFF)
            options = [(n, value if n == _OBSERVE else v) for n, v in options]
        return _outer_to_plain(response, inner.code, options, inner.payload)

    # -- server role ----------------------------------------------------------------------------

    def protect_response(
        self, response: Message, binding: RequestBinding, *, new_partial_iv: bool = False
    ) -> Message:
        """The OSCORE response for ``response`` to the request of ``binding`` (§8.3).

        Without ``new_partial_iv`` the request nonce is used and no Partial IV is sent — but only
        once per binding: any further response to the same request (e.g. every notification
        after the first) gets a new Partial IV from the Sender Sequence Number (§8.3.1,
        Appendix D.4). Pass ``new_partial_iv=True`` for Observe notifications (§4.1.3.5.2).
        """
        if not response.is_response():
            raise OscoreUsageError(f"protect_response() of a {Code(response.code)} message")
        if binding.kid != self.parameters.recipient_id or (
            binding.kid_context is not None and binding.kid_context != self.parameters.id_context
        ):
            raise OscoreUsageError("the binding belongs to a request of another context")
        inner, outer = split_options(response)
        observe = response.get_option(_OBSERVE) is not None
        if observe:
            # The Inner Observe of a notification is empty (§4.1.3.5.2); the Outer keeps the value.
            inner = [(n, b"" if n == _OBSERVE else v) for n, v in inner]
        state = binding._state
        if new_partial_iv or state.request_nonce_used:
            piv = self._next_partial_iv()
            nonce = aead_nonce(self._common_iv, self.parameters.sender_id, piv)
            option = OscoreOption(partial_iv=piv).encode()
        else:
            nonce = aead_nonce(self._common_iv, binding.kid, binding.piv)
            option = b""
            state.request_nonce_used = True
        ciphertext = self._sender.encrypt(
            nonce,
            encode_plaintext(response.code, inner, response.payload),
            aad(self._aead, binding.kid, binding.piv),
        )
        outer.append((_OSCORE, option))
        return Message(
            Code.CONTENT if observe else Code.CHANGED,
            ciphertext,
            mtype=response.mtype,
            mid=response.mid,
            token=response.token,
            options=outer,
        )

    def _unprotect_request(
        self, request: Message, kid: bytes, piv: bytes, kid_context: bytes | None
    ) -> tuple[Message, RequestBinding]:
        """Steps 3-7 of §8.2 once the Recipient Context is found."""
        sequence_number = int.from_bytes(piv, "big")
        if not self._replay_window.is_fresh(sequence_number):
            raise ReplayDetected(f"Partial IV {sequence_number}")
        nonce = aead_nonce(self._common_iv, kid, piv)
        plaintext = self._decrypt(nonce, request.payload, kid, piv)
        self._replay_window.mark(sequence_number)
        inner = _inner_message(plaintext, request=True)
        binding = RequestBinding(kid, piv, kid_context, observe=inner.observe == 0)
        return _outer_to_plain(request, inner.code, inner.options, inner.payload), binding

    # -- internals ------------------------------------------------------------------------------

    def _next_partial_iv(self) -> bytes:
        """Take the next Sender Sequence Number as Partial IV (§8.1 step 3, Appendix B.1.1)."""
        number = self._sequence_number
        if number > MAX_SEQUENCE_NUMBER:
            raise ContextExhausted(
                "Sender Sequence Number 2^40 reached (RFC 8613 §7.2.1): a new context is needed"
            )
        hook = self.on_sequence_limit
        if hook is not None and number >= self._limit:
            limit = min(number + self.sequence_limit_step, MAX_SEQUENCE_NUMBER + 1)
            hook(limit)
            self._limit = limit
        self._sequence_number = number + 1
        return encode_partial_iv(number)

    def _decrypt(self, nonce: bytes, ciphertext: bytes, kid: bytes, piv: bytes) -> bytes:
        """Decrypt with the Recipient Key; the AAD binds to the request ``kid``/``piv`` (§5.4)."""
        try:
            return self._recipient.decrypt(nonce, ciphertext, aad(self._aead, kid, piv))
        except InvalidTag:
            raise DecryptionFailed(
                f"request kid={kid.hex() or 'empty'} Partial IV={piv.hex()}"
            ) from None


def _inner_message(plaintext: bytes, *, request: bool) -> Message:
    """Parse and check a decrypted plaintext (§5.3, §4.1.3.7)."""
    inner = decode_plaintext(plaintext)
    if not (inner.is_request() if request else inner.is_response()):
        kind = "request" if request else "response"
        raise MalformedPlaintext(f"inner Code {Code(inner.code).dotted} in a {kind}")
    if inner.get_option(_OSCORE) is not None:
        raise MalformedPlaintext("nested OSCORE option (RFC 8613 §4.1.3.7)")
    return inner


def _outer_to_plain(
    outer: Message, code: int, inner_options: list[tuple[int, bytes]], payload: bytes
) -> Message:
    """The decrypted message: the received header, Token and Class U options plus the inner
    Code, options and payload; Outer Class E options and the OSCORE option are discarded
    (§8.2 steps 1 and 7, §8.4 steps 1 and 6)."""
    options = [option for option in outer.options if option[0] in CLASS_U_ONLY]
    options.extend(inner_options)
    return Message(
        code, payload, mtype=outer.mtype, mid=outer.mid, token=outer.token, options=options
    )


def unprotect_request(
    request: Message, find_context: Callable[[bytes, bytes | None], SecurityContext | None]
) -> tuple[Message, SecurityContext, RequestBinding]:
    """Verify and decrypt an OSCORE request (RFC 8613 §8.2).

    ``find_context(kid, kid_context)`` returns the context whose Recipient ID is ``kid`` (and,
    when ``kid_context`` is not None, whose ID Context equals it), or None. The returned binding
    is what :meth:`SecurityContext.protect_response` needs.

    Raises :class:`~lwm2m.oscore.errors.VerificationError` subclasses only, each with the
    ``response_code`` and ``diagnostic`` of the unprotected error response of §8.2: option or
    COSE decoding failed (4.02), context not found (4.01), replay (4.01), decryption failed
    (4.00). The replay window is updated only after a successful decryption.
    """
    option = oscore_option(request)
    if option is None:
        raise NotProtected("request without OSCORE option")
    if option.partial_iv is None or option.kid is None:
        raise OptionDecodeError("a request needs a Partial IV and a 'kid' (RFC 8613 §5)")
    if not request.payload:
        raise OptionDecodeError("OSCORE message without payload (RFC 8613 §2)")
    context = find_context(option.kid, option.kid_context)
    if (
        context is None
        or context.recipient_id != option.kid
        or (option.kid_context is not None and option.kid_context != context.id_context)
    ):
        raise ContextNotFound(f"kid={option.kid.hex() or 'empty'}")
    message, binding = context._unprotect_request(
        request, option.kid, option.partial_iv, option.kid_context
    )
    return message, context, binding
