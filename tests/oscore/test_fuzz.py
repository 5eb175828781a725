"""Random and mutated inputs into the OSCORE decoders.

Invariants:

* :meth:`OscoreOption.decode` raises only :class:`OptionDecodeError`, and whatever it accepts
  re-encodes to the same bytes (the decoder is the exact inverse of the encoder).
* :func:`decode_plaintext` raises only :class:`MalformedPlaintext`.
* :func:`unprotect_request` and :meth:`SecurityContext.unprotect_response` raise only
  :class:`VerificationError` subclasses (each with a 4.xx ``response_code``) on random messages
  and on mutations of genuine ones, and never accept a message whose ciphertext, Partial IV,
  'kid' or binding was changed.

The seeded loops give at least 5,000 cases per decoder; hypothesis adds shrinking searches.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.coap.errors import MessageFormatError
from lwm2m.coap.message import Message, decode
from lwm2m.coap.numbers import Code, MessageType, OptionNumber
from lwm2m.oscore import (
    DecryptionFailed,
    OptionDecodeError,
    OscoreOption,
    OscoreParameters,
    RequestBinding,
    SecurityContext,
    SoftwareMasterSecret,
    VerificationError,
    oscore_option,
    unprotect_request,
)
from lwm2m.oscore.cose import decode_plaintext
from lwm2m.oscore.errors import MalformedPlaintext

pytestmark = pytest.mark.fuzz

SECRET = SoftwareMasterSecret(bytes(range(16)))
CLIENT = OscoreParameters(b"\x01", b"\x02", b"salt", b"\x77")
SERVER = OscoreParameters(b"\x02", b"\x01", b"salt", b"\x77")
CASES = 6000


def server_context() -> SecurityContext:
    return SecurityContext(SECRET, SERVER)


def check_option_value(value: bytes) -> None:
    try:
        option = OscoreOption.decode(value)
    except OptionDecodeError as exc:
        error: OptionDecodeError | None = exc
    else:
        error = None
        assert option.encode() == value
    assert error is None or error.response_code == Code.BAD_OPTION


def only(context: SecurityContext) -> Callable[[bytes, bytes | None], SecurityContext]:
    return lambda kid, kid_context: context


def test_option_decoder_random_bytes() -> None:
    rng = random.Random(8613)
    for _ in range(20_000):
        length = rng.choice((0, 1, 2, 3, rng.randrange(0, 300)))
        value = bytes(rng.getrandbits(8) for _ in range(length))
        if value and rng.random() < 0.5:
            value = bytes((value[0] & 0x1F,)) + value[1:]  # valid flag bits, more interesting
        check_option_value(value)


@given(st.binary(max_size=64))
@settings(max_examples=500, deadline=None)
def test_option_decoder_hypothesis(value: bytes) -> None:
    check_option_value(value)


@given(
    st.one_of(st.none(), st.binary(min_size=1, max_size=5)),
    st.one_of(st.none(), st.binary(max_size=20)),
    st.one_of(st.none(), st.binary(max_size=255)),
)
@settings(max_examples=300, deadline=None)
def test_option_round_trip(piv: bytes | None, kid: bytes | None, context: bytes | None) -> None:
    option = OscoreOption(piv, kid, context)
    assert OscoreOption.decode(option.encode()) == option


def test_plaintext_decoder_random_bytes() -> None:
    rng = random.Random(5)
    parsed = 0
    for _ in range(CASES):
        plaintext = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        try:
            decode_plaintext(plaintext)
        except MalformedPlaintext:
            continue
        parsed += 1
    assert parsed > 100  # the generator does reach valid plaintexts


def genuine_request(rng: random.Random, client: SecurityContext) -> Message:
    request = Message(
        rng.choice((Code.GET, Code.POST, Code.PUT, Code.DELETE, Code.FETCH)),
        bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 20))),
        mtype=rng.choice(list(MessageType)[:2]),
        mid=rng.randrange(0x10000),
        token=bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 9))),
        uri_path=["3", "0", str(rng.randrange(20))],
        observe=rng.choice((None, 0, 1)),
    )
    if rng.random() < 0.3:
        request.uri_host = "example.com"
    return client.protect_request(request)[0]


def mutate(rng: random.Random, data: bytes) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        action = rng.random()
        if action < 0.6 and buffer:
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
        elif action < 0.75 and buffer:
            del buffer[rng.randrange(len(buffer)) :]
        elif action < 0.9:
            buffer.insert(rng.randrange(len(buffer) + 1), rng.getrandbits(8))
        elif buffer:
            del buffer[rng.randrange(len(buffer))]
    return bytes(buffer)


def crypto_inputs(message: Message, *, request: bool) -> tuple[bytes, bytes | None, bytes | None]:
    """What the AEAD depends on: ciphertext, Partial IV and (for requests) the 'kid'. A 'kid' in a
    response, a dropped 'kid context' or header fields may change without consequence."""
    option = oscore_option(message)
    assert option is not None
    return message.payload, option.partial_iv, option.kid if request else None


def test_unprotect_request_mutated() -> None:
    rng = random.Random(7252)
    client = SecurityContext(SECRET, CLIENT)
    outcomes: dict[str, int] = {}
    codes: set[int] = set()
    for _ in range(CASES):
        original = genuine_request(rng, client)
        try:
            received = decode(mutate(rng, original.encode()))
        except MessageFormatError:
            outcomes["format"] = outcomes.get("format", 0) + 1
            continue
        server = server_context()
        try:
            _, context, binding = unprotect_request(received, only(server))
        except VerificationError as exc:
            codes.add(exc.response_code)
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
            continue
        # Accepted: then the protected parts were intact (only header/token/Class U changed).
        assert crypto_inputs(received, request=True) == crypto_inputs(original, request=True)
        assert context is server
        assert binding.kid == b"\x01"
        outcomes["accepted"] = outcomes.get("accepted", 0) + 1
    assert outcomes.get("DecryptionFailed", 0) > 100
    assert outcomes.get("OptionDecodeError", 0) > 10
    assert outcomes.get("accepted", 0) > 10
    assert codes == {Code.BAD_REQUEST, Code.UNAUTHORIZED, Code.BAD_OPTION}


def test_unprotect_request_random_messages() -> None:
    rng = random.Random(1)
    server = server_context()
    numbers = [3, 6, 7, 9, 9, 9, 11, 12, 15, 35, 39, 252, 258, 65000]
    for _ in range(CASES):
        options = []
        for _ in range(rng.randrange(0, 5)):
            number = rng.choice(numbers)
            value = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 8)))
            if number == 9 and rng.random() < 0.7:
                value = OscoreOption(
                    bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 6))),
                    rng.choice((b"\x01", b"\x02", b"", None)),
                    rng.choice((None, b"\x77", b"\x78")),
                ).encode()
            options.append((number, value))
        message = Message(
            rng.randrange(256),
            bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 30))),
            options=options,
        )
        with pytest.raises(VerificationError):
            unprotect_request(message, lambda k, c: server if k == b"\x01" else None)
    assert server.replay_window.highest is None  # nothing random ever decrypted


@given(st.binary(max_size=80))
@settings(max_examples=500, deadline=None)
def test_unprotect_request_hypothesis(data: bytes) -> None:
    try:
        message = decode(data)
    except MessageFormatError:
        return
    with pytest.raises(VerificationError):
        unprotect_request(message, only(server_context()))


def test_unprotect_response_mutated() -> None:
    rng = random.Random(7641)
    client = SecurityContext(SECRET, CLIENT)
    server = server_context()
    outcomes: dict[str, int] = {}
    for _ in range(CASES):
        request = Message(Code.GET, uri_path="/x", observe=rng.choice((None, 0)))
        outer, binding = client.protect_request(request)
        _, _, server_binding = unprotect_request(outer, only(server))
        response = Message(
            rng.choice((Code.CONTENT, Code.CHANGED, Code.NOT_FOUND)),
            bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 20))),
            token=outer.token,
            observe=rng.randrange(2, 100) if binding.observe else None,
        )
        protected = server.protect_response(
            response, server_binding, new_partial_iv=rng.random() < 0.5
        )
        try:
            received = decode(mutate(rng, protected.encode()))
        except MessageFormatError:
            continue
        if rng.random() < 0.1:  # a response to another request
            binding = RequestBinding(binding.kid, b"\x99", None, observe=binding.observe)
        try:
            client.unprotect_response(received, binding)
        except VerificationError as exc:
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
            continue
        assert crypto_inputs(received, request=False) == crypto_inputs(protected, request=False)
        assert binding.piv != b"\x99"
        outcomes["accepted"] = outcomes.get("accepted", 0) + 1
    assert outcomes.get("DecryptionFailed", 0) > 100
    assert outcomes.get("accepted", 0) > 10


def test_unprotect_response_random_payloads() -> None:
    rng = random.Random(2)
    client = SecurityContext(SECRET, CLIENT)
    for _ in range(CASES):
        binding = RequestBinding(b"\x01", bytes((rng.randrange(256),)), None, rng.random() < 0.5)
        option = rng.choice((b"", b"\x01\x05", b"\x09\x00\x02", b"\xff", b"\x02"))
        response = Message(
            rng.randrange(256),
            bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 30))),
            options=[(OptionNumber.OSCORE, option)],
        )
        with pytest.raises(VerificationError):
            client.unprotect_response(response, binding)
        assert binding.responses_accepted == 0


def test_mutated_ciphertext_never_verifies() -> None:
    """Every single-bit flip of the ciphertext (tag included) is caught by the AEAD."""
    client = SecurityContext(SECRET, CLIENT)
    outer, _ = client.protect_request(Message(Code.PUT, b"x" * 16, uri_path="/1/0/1"))
    server = server_context()
    assert oscore_option(outer) is not None
    for bit in range(len(outer.payload) * 8):
        tampered = outer.copy()
        flipped = bytearray(outer.payload)
        flipped[bit // 8] ^= 1 << (bit % 8)
        tampered.payload = bytes(flipped)
        with pytest.raises(DecryptionFailed):
            unprotect_request(tampered, only(server))
    assert unprotect_request(outer, only(server))[0].payload == b"x" * 16
