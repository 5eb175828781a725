"""Security Context establishment (RFC 8613 §3), the credential seam, the replay window (§7.4),
Sender Sequence Numbers (§7.2) with the Appendix B.1.1 persistence hook, and secrecy of keys in
``repr``/``str``."""

from __future__ import annotations

import gc
import hashlib
import hmac
import pickle
from collections.abc import Iterator

import pytest

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code, OptionNumber
from lwm2m.errors import LocalProtocolError, OscoreError, RemoteProtocolError
from lwm2m.oscore import (
    MAX_SEQUENCE_NUMBER,
    AeadAlgorithm,
    ContextExhausted,
    ContextNotFound,
    DecryptionFailed,
    HkdfAlgorithm,
    InvalidParameters,
    KeyMaterial,
    MalformedPlaintext,
    MasterSecret,
    NotProtected,
    OptionDecodeError,
    OscoreOption,
    OscoreParameters,
    OscoreUsageError,
    ReplayDetected,
    ReplayWindow,
    RequestBinding,
    SecurityContext,
    SoftwareMasterSecret,
    VerificationError,
    derive_key_material,
    unprotect_request,
)
from lwm2m.oscore.algorithms import Aead

SECRET = bytes(range(0xA0, 0xB0))
SALT = b"\x11\x22"
CLIENT = OscoreParameters(sender_id=b"\x01", recipient_id=b"\x02", master_salt=SALT)
SERVER = OscoreParameters(sender_id=b"\x02", recipient_id=b"\x01", master_salt=SALT)


def client(**kwargs: object) -> SecurityContext:
    return SecurityContext(SoftwareMasterSecret(SECRET), CLIENT, **kwargs)  # type: ignore[arg-type]


def get() -> Message:
    return Message(Code.GET, uri_path="/3/0/1", token=b"\x07", mid=9)


# -- parameters (§3.2, §3.3) -------------------------------------------------------------------


def test_parameter_defaults() -> None:
    parameters = OscoreParameters(sender_id=b"", recipient_id=b"\x01")
    assert parameters.master_salt == b""
    assert parameters.id_context is None
    assert parameters.aead is AeadAlgorithm.AES_CCM_16_64_128
    assert parameters.hkdf is HkdfAlgorithm.HKDF_SHA_256


def test_parameters_accept_registry_ints() -> None:
    parameters = OscoreParameters(b"a", b"b", aead=30, hkdf=-11)  # type: ignore[arg-type]
    assert parameters.aead is AeadAlgorithm.AES_CCM_16_128_128
    assert parameters.hkdf is HkdfAlgorithm.HKDF_SHA_512


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sender_id": b"\x01", "recipient_id": b"\x01"}, "both 01"),
        ({"sender_id": b"", "recipient_id": b""}, "both empty"),
        ({"sender_id": bytes(8), "recipient_id": b""}, "Sender ID of 8 bytes"),
        ({"sender_id": b"", "recipient_id": bytes(8)}, "Recipient ID of 8 bytes"),
        (
            {"sender_id": bytes(7), "recipient_id": b"", "aead": AeadAlgorithm.A128GCM},
            "Sender ID of 7 bytes; A128GCM allows at most 6",
        ),
        ({"sender_id": b"", "recipient_id": b"\x01", "aead": 11}, "unsupported AEAD"),
        ({"sender_id": b"", "recipient_id": b"\x01", "hkdf": -12}, "unsupported HKDF"),
    ],
)
def test_parameters_are_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidParameters, match=match) as info:
        OscoreParameters(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, OscoreError)
    assert isinstance(info.value, ValueError)


def test_longest_ids_are_accepted() -> None:
    assert len(OscoreParameters(bytes(7), b"").sender_id) == 7
    assert len(OscoreParameters(b"", bytes(6), aead=AeadAlgorithm.A128GCM).recipient_id) == 6


def test_algorithm_registry_lengths() -> None:
    """Key, nonce and tag lengths of the COSE registry (RFC 8152 §10.1, §10.2)."""
    assert [
        (a.key_length, a.nonce_length, a.tag_length, a.max_id_length) for a in AeadAlgorithm
    ] == [(16, 12, 16, 6), (16, 13, 8, 7), (16, 13, 16, 7)]
    assert [int(a) for a in AeadAlgorithm] == [1, 10, 30]
    assert [int(a) for a in HkdfAlgorithm] == [-11, -10]


# -- the credential seam (§3.2.1) --------------------------------------------------------------


def rfc5869_hkdf(digest: str, salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 §2.2/§2.3 written out with hmac, independent of the package."""
    size = hashlib.new(digest).digest_size
    prk = hmac.new(salt or bytes(size), ikm, digest).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes((counter,)), digest).digest()
        okm += block
        counter += 1
    return okm[:length]


@pytest.mark.parametrize(
    ("algorithm", "digest"),
    [(HkdfAlgorithm.HKDF_SHA_256, "sha256"), (HkdfAlgorithm.HKDF_SHA_512, "sha512")],
)
@pytest.mark.parametrize("salt", [b"", b"salt"])
@pytest.mark.parametrize("length", [13, 16, 70])
def test_software_secret_is_rfc5869_hkdf(
    algorithm: HkdfAlgorithm, digest: str, salt: bytes, length: int
) -> None:
    secret = SoftwareMasterSecret(SECRET)
    assert secret.hkdf(algorithm, salt, b"info", length) == rfc5869_hkdf(
        digest, salt, SECRET, b"info", length
    )


def test_software_secret_is_a_master_secret() -> None:
    assert isinstance(SoftwareMasterSecret(SECRET), MasterSecret)
    with pytest.raises(InvalidParameters, match="must not be empty"):
        SoftwareMasterSecret(b"")


def test_software_secret_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(SoftwareMasterSecret(SECRET))


class CountingSecret:
    """A MasterSecret whose bytes are unreachable (it stands in for a Secure Element)."""

    def __init__(self) -> None:
        self._inner = SoftwareMasterSecret(SECRET)
        self.calls: list[tuple[HkdfAlgorithm, bytes, bytes, int]] = []

    def hkdf(self, algorithm: HkdfAlgorithm, salt: bytes, info: bytes, length: int) -> bytes:
        self.calls.append((algorithm, salt, info, length))
        return self._inner.hkdf(algorithm, salt, info, length)


def test_context_derives_through_the_seam() -> None:
    secret = CountingSecret()
    context = SecurityContext(secret, CLIENT)
    assert [(c[0], c[1], c[3]) for c in secret.calls] == [
        (HkdfAlgorithm.HKDF_SHA_256, SALT, 16),
        (HkdfAlgorithm.HKDF_SHA_256, SALT, 16),
        (HkdfAlgorithm.HKDF_SHA_256, SALT, 13),
    ]
    # A context from the seam talks to one from the software secret.
    server = SecurityContext(SoftwareMasterSecret(SECRET), SERVER)
    outer, _ = context.protect_request(get())
    assert unprotect_request(outer, lambda kid, ctx: server)[0] == get()


class ShortSecret:
    def hkdf(self, algorithm: HkdfAlgorithm, salt: bytes, info: bytes, length: int) -> bytes:
        return bytes(length - 1)


def test_misbehaving_master_secret_is_refused() -> None:
    with pytest.raises(InvalidParameters, match="derived 15 bytes, not 16"):
        SecurityContext(ShortSecret(), CLIENT)


def test_parameters_are_read_only() -> None:
    context = client()
    assert context.parameters is CLIENT
    with pytest.raises(AttributeError):
        context.parameters = SERVER  # type: ignore[misc]


@pytest.mark.parametrize("aead", list(AeadAlgorithm))
@pytest.mark.parametrize("hkdf", list(HkdfAlgorithm))
def test_key_material_lengths(aead: AeadAlgorithm, hkdf: HkdfAlgorithm) -> None:
    parameters = OscoreParameters(b"\x01", b"\x02", aead=aead, hkdf=hkdf)
    keys = derive_key_material(SoftwareMasterSecret(SECRET), parameters)
    assert len(keys.sender_key) == len(keys.recipient_key) == aead.key_length
    assert len(keys.common_iv) == aead.nonce_length
    assert keys.sender_key != keys.recipient_key
    swapped = derive_key_material(
        SoftwareMasterSecret(SECRET), OscoreParameters(b"\x02", b"\x01", aead=aead, hkdf=hkdf)
    )
    assert (swapped.sender_key, swapped.recipient_key) == (keys.recipient_key, keys.sender_key)
    assert swapped.common_iv == keys.common_iv
    default = derive_key_material(SoftwareMasterSecret(SECRET), OscoreParameters(b"\x01", b"\x02"))
    assert (keys == default) == (
        aead is AeadAlgorithm.AES_CCM_16_64_128 and hkdf is HkdfAlgorithm.HKDF_SHA_256
    )


def test_id_context_changes_every_derived_value() -> None:
    plain = derive_key_material(SoftwareMasterSecret(SECRET), CLIENT)
    with_context = derive_key_material(
        SoftwareMasterSecret(SECRET),
        OscoreParameters(b"\x01", b"\x02", master_salt=SALT, id_context=b"ctx"),
    )
    assert plain.sender_key != with_context.sender_key
    assert plain.recipient_key != with_context.recipient_key
    assert plain.common_iv != with_context.common_iv


# -- replay window (§7.4) ----------------------------------------------------------------------


def test_replay_window_fresh_and_duplicates() -> None:
    assert ReplayWindow().highest is None
    window = ReplayWindow()
    assert window.size == 32
    assert window.is_fresh(0)
    window.mark(5)
    assert (window.highest, window.bitmap) == (5, 1)
    assert not window.is_fresh(5)
    assert window.is_fresh(4)
    assert window.is_fresh(0)
    window.mark(3)
    assert not window.is_fresh(3)
    assert window.bitmap == 0b101
    window.mark(7)
    assert (window.highest, window.bitmap) == (7, 0b10101)
    assert [n for n in range(10) if window.is_fresh(n)] == [0, 1, 2, 4, 6, 8, 9]


def test_replay_window_slides() -> None:
    window = ReplayWindow()
    window.mark(100)
    assert window.is_fresh(69)  # 31 below: inside the window, not received
    assert not window.is_fresh(68)  # 32 below: too old to tell, refused
    window.mark(69)
    assert not window.is_fresh(69)
    window.mark(131)  # 69 slides out
    assert window.bitmap == (1 << 31) | 1
    assert not window.is_fresh(100)
    assert not window.is_fresh(99)  # now too old
    window.mark(1000)  # a jump larger than the window forgets everything else
    assert (window.highest, window.bitmap) == (1000, 1)
    window.mark(500)  # too old: marking it must not corrupt the window
    assert (window.highest, window.bitmap) == (1000, 1)


def test_replay_window_restore_and_size() -> None:
    window = ReplayWindow(64, highest=40, bitmap=0b11)
    assert not window.is_fresh(40)
    assert not window.is_fresh(39)
    assert window.is_fresh(38)
    assert not window.is_fresh(40 - 64)
    assert window.is_fresh(40 - 63)
    assert ReplayWindow(4, highest=3, bitmap=0xFF).bitmap == 0xF
    assert repr(window) == "ReplayWindow(size=64, highest=40)"
    with pytest.raises(InvalidParameters):
        ReplayWindow(0)


# -- sender sequence numbers (§7.2, Appendix B.1.1) --------------------------------------------


def partial_ivs(context: SecurityContext, count: int) -> Iterator[bytes]:
    for _ in range(count):
        _, binding = context.protect_request(get())
        yield binding.piv


def test_sequence_numbers_count_up_from_the_start() -> None:
    context = client()
    assert context.sender_sequence_number == 0
    assert list(partial_ivs(context, 3)) == [b"\x00", b"\x01", b"\x02"]
    assert context.sender_sequence_number == 3
    restored = client(sender_sequence_number=0x1234)
    assert list(partial_ivs(restored, 1)) == [b"\x12\x34"]


def test_sequence_number_only_moves_forward() -> None:
    context = client(sender_sequence_number=10)
    context.sender_sequence_number = 10
    context.sender_sequence_number = 50
    assert next(partial_ivs(context, 1)) == b"\x32"
    with pytest.raises(OscoreUsageError, match="only move forward"):
        context.sender_sequence_number = 50
    with pytest.raises(OscoreUsageError):
        context.sender_sequence_number = MAX_SEQUENCE_NUMBER + 2
    assert context.sender_sequence_number == 51


@pytest.mark.parametrize("start", [-1, MAX_SEQUENCE_NUMBER + 2])
def test_invalid_start_sequence_number(start: int) -> None:
    with pytest.raises(InvalidParameters):
        client(sender_sequence_number=start)


def test_invalid_limit_step() -> None:
    with pytest.raises(InvalidParameters):
        client(sequence_limit_step=0)


def test_context_exhaustion() -> None:
    context = client(sender_sequence_number=MAX_SEQUENCE_NUMBER)
    outer, binding = context.protect_request(get())
    assert binding.piv == b"\xff" * 5
    assert context.sender_sequence_number == MAX_SEQUENCE_NUMBER + 1
    with pytest.raises(ContextExhausted, match="2\\^40"):
        context.protect_request(get())
    assert context.sender_sequence_number == MAX_SEQUENCE_NUMBER + 1
    # The peer verifies the last Partial IV (5 bytes, §6.1).
    server = SecurityContext(SoftwareMasterSecret(SECRET), SERVER)
    assert unprotect_request(outer, lambda kid, ctx: server)[0] == get()
    exhausted = client(sender_sequence_number=MAX_SEQUENCE_NUMBER + 1)
    with pytest.raises(ContextExhausted):
        exhausted.protect_request(get())


def test_sequence_limit_hook_is_called_before_crossing_the_limit() -> None:
    calls: list[tuple[int, int]] = []
    context = client(sequence_limit_step=4)

    def persist(limit: int) -> None:
        # Called before the number is used: the context has not advanced yet.
        calls.append((limit, context.sender_sequence_number))

    context.on_sequence_limit = persist
    assert list(partial_ivs(context, 9)) == [bytes((n,)) for n in range(9)]
    assert calls == [(4, 0), (8, 4), (12, 8)]


def test_sequence_limit_after_restore_and_default_step() -> None:
    calls: list[int] = []
    context = client(sender_sequence_number=100, on_sequence_limit=calls.append)
    list(partial_ivs(context, 33))
    assert calls == [132, 164]
    # What a reboot does: restart at the persisted limit; no number is ever used twice.
    rebooted = client(sender_sequence_number=calls[-1], on_sequence_limit=calls.append)
    assert next(partial_ivs(rebooted, 1)) == (164).to_bytes(1, "big")
    assert calls[-1] == 196


def test_sequence_limit_counts_responses_with_partial_iv() -> None:
    calls: list[int] = []
    server = SecurityContext(
        SoftwareMasterSecret(SECRET), SERVER, on_sequence_limit=calls.append, sequence_limit_step=2
    )
    binding = RequestBinding(b"\x01", b"\x00", None)
    response = Message(Code.CONTENT, b"x")
    server.protect_response(response, binding)  # request nonce: no sequence number used
    assert calls == []
    for _ in range(3):
        server.protect_response(response, binding, new_partial_iv=True)
    assert calls == [2, 4]
    assert server.sender_sequence_number == 3


def test_sequence_limit_is_capped_at_the_maximum() -> None:
    calls: list[int] = []
    context = client(sender_sequence_number=MAX_SEQUENCE_NUMBER - 1, on_sequence_limit=calls.append)
    list(partial_ivs(context, 2))
    assert calls == [MAX_SEQUENCE_NUMBER + 1]


def test_failing_hook_consumes_no_sequence_number() -> None:
    def fail(limit: int) -> None:
        raise OSError("flash write failed")

    context = client(on_sequence_limit=fail)
    with pytest.raises(OSError, match="flash write failed"):
        context.protect_request(get())
    assert context.sender_sequence_number == 0
    calls: list[int] = []
    context.on_sequence_limit = calls.append
    assert next(partial_ivs(context, 1)) == b"\x00"
    assert calls == [32]


# -- public state and repr ---------------------------------------------------------------------


def test_context_properties() -> None:
    context = SecurityContext(
        SoftwareMasterSecret(SECRET),
        OscoreParameters(b"\x01", b"\x02", id_context=b"\xca\xfe"),
        sender_sequence_number=7,
    )
    assert (context.sender_id, context.recipient_id, context.id_context) == (
        b"\x01",
        b"\x02",
        b"\xca\xfe",
    )
    assert context.parameters.id_context == b"\xca\xfe"
    assert isinstance(context.replay_window, ReplayWindow)
    assert repr(context) == (
        "<SecurityContext sender_id=01 recipient_id=02 id_context=cafe AES_CCM_16_64_128 ssn=7>"
    )
    assert repr(client()) == (
        "<SecurityContext sender_id=01 recipient_id=02 AES_CCM_16_64_128 ssn=0>"
    )
    window = ReplayWindow(64)
    assert client(replay_window=window).replay_window is window


def test_error_tree() -> None:
    assert issubclass(OscoreUsageError, LocalProtocolError)
    assert issubclass(VerificationError, RemoteProtocolError)
    for cls in (
        InvalidParameters,
        OscoreUsageError,
        ContextExhausted,
        VerificationError,
        NotProtected,
        OptionDecodeError,
        ContextNotFound,
        ReplayDetected,
        DecryptionFailed,
        MalformedPlaintext,
    ):
        assert issubclass(cls, OscoreError)
    codes = {
        NotProtected: (Code.UNAUTHORIZED, "OSCORE required"),
        OptionDecodeError: (Code.BAD_OPTION, "Failed to decode COSE"),
        ContextNotFound: (Code.UNAUTHORIZED, "Security context not found"),
        ReplayDetected: (Code.UNAUTHORIZED, "Replay detected"),
        DecryptionFailed: (Code.BAD_REQUEST, "Decryption failed"),
        MalformedPlaintext: (Code.BAD_REQUEST, "Malformed plaintext"),
    }
    for cls, (code, text) in codes.items():
        error = cls("detail")
        assert (error.response_code, error.diagnostic, error.detail) == (code, text, "detail")
        assert str(error) == f"{text}: detail"
    assert str(ReplayDetected()) == "Replay detected"


def test_error_response() -> None:
    request = Message(Code.POST, b"x", token=b"\x01\x02", mid=5)
    response = ContextNotFound("kid=01").error_response(request)
    assert response.code == Code.UNAUTHORIZED
    assert response.payload == b"Security context not found"
    assert response.token == b"\x01\x02"
    assert response.get_option(OptionNumber.MAX_AGE) == b""  # Outer Max-Age 0 (§4.1.3.1)
    assert response.get_option(OptionNumber.OSCORE) is None  # unprotected (§8.3)


# -- secrets never show ------------------------------------------------------------------------


def secret_renderings(value: bytes) -> list[str]:
    return [value.hex(), repr(value), value.hex().upper(), str(value)]


def test_no_secret_in_any_repr_or_str() -> None:
    master = SoftwareMasterSecret(SECRET)
    keys = derive_key_material(master, CLIENT)
    secrets = [SECRET, keys.sender_key, keys.recipient_key, keys.common_iv]
    client_context = SecurityContext(master, CLIENT)
    server_context = SecurityContext(master, SERVER)
    outer, binding = client_context.protect_request(get())
    _, _, server_binding = unprotect_request(outer, lambda kid, ctx: server_context)
    response = server_context.protect_response(Message(Code.CONTENT, b"v"), server_binding)
    errors: list[BaseException] = []
    for attempt in (
        lambda: unprotect_request(outer, lambda kid, ctx: server_context),  # replay
        lambda: client_context.unprotect_response(
            Message(Code.CHANGED, b"garbage!!", options=[(OptionNumber.OSCORE, b"")]), binding
        ),
        lambda: OscoreOption.decode(b"\xff"),
        lambda: SecurityContext(master, CLIENT, sender_sequence_number=-1),
        lambda: OscoreParameters(b"\x01", b"\x01"),
    ):
        with pytest.raises(OscoreError) as info:
            attempt()
        errors.append(info.value)
    objects: list[object] = [
        master,
        keys,
        client_context,
        server_context,
        binding,
        server_binding,
        outer,
        response,
        CLIENT,
        client_context.replay_window,
        Aead(AeadAlgorithm.AES_CCM_16_64_128, keys.sender_key),
        OscoreOption(b"\x00", b"\x01"),
        *errors,
    ]
    for obj in objects:
        for text in (repr(obj), str(obj)):
            for secret in secrets:
                for rendering in secret_renderings(secret):
                    assert rendering not in text, f"{type(obj).__name__} shows a secret"
    assert repr(keys) == "KeyMaterial()"
    assert repr(master) == "SoftwareMasterSecret(<16 bytes>)"


def reachable(root: object) -> Iterator[object]:
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        yield obj
        stack.extend(gc.get_referents(obj))


def test_context_does_not_keep_the_master_secret() -> None:
    """RFC 8613 §3.1 lets the Master Secret go once the keys are derived; the context does."""
    context = SecurityContext(SoftwareMasterSecret(SECRET), CLIENT)
    common_iv = derive_key_material(SoftwareMasterSecret(SECRET), CLIENT).common_iv
    assert any(obj == common_iv for obj in reachable(context))  # the scan does see bytes
    found = [
        obj
        for obj in reachable(context)
        if isinstance(obj, SoftwareMasterSecret) or (isinstance(obj, bytes) and SECRET in obj)
    ]
    assert found == []
    assert isinstance(KeyMaterial(b"a", b"b", b"c"), KeyMaterial)
