"""Protecting and verifying requests, responses and notifications (RFC 8613 §4, §7, §8).

A client and a server context are made from the same Master Secret with swapped IDs; every test
goes through the wire format (``encode``/``decode``) between them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lwm2m.coap.message import Block, Message, decode
from lwm2m.coap.numbers import Code, MessageType, OptionNumber
from lwm2m.oscore import (
    AeadAlgorithm,
    ContextNotFound,
    DecryptionFailed,
    HkdfAlgorithm,
    MalformedPlaintext,
    NotProtected,
    OptionDecodeError,
    OscoreOption,
    OscoreParameters,
    OscoreUsageError,
    ReplayDetected,
    RequestBinding,
    SecurityContext,
    SoftwareMasterSecret,
    VerificationError,
    derive_key_material,
    oscore_option,
    unprotect_request,
)
from lwm2m.oscore.algorithms import Aead
from lwm2m.oscore.cose import aad, aead_nonce, encode_partial_iv, encode_plaintext

SECRET = bytes.fromhex("00112233445566778899aabbccddeeff")
SALT = b"salt"
Opt = OptionNumber


def pair(
    *,
    id_context: bytes | None = None,
    aead: AeadAlgorithm = AeadAlgorithm.AES_CCM_16_64_128,
    hkdf: HkdfAlgorithm = HkdfAlgorithm.HKDF_SHA_256,
    send_kid_context: bool = True,
) -> tuple[SecurityContext, SecurityContext]:
    def make(sender: bytes, recipient: bytes, send_kid_context: bool = True) -> SecurityContext:
        parameters = OscoreParameters(sender, recipient, SALT, id_context, aead, hkdf)
        return SecurityContext(
            SoftwareMasterSecret(SECRET), parameters, send_kid_context=send_kid_context
        )

    return make(b"\xc1", b"\x5e", send_kid_context), make(b"\x5e", b"\xc1")


@pytest.fixture
def contexts() -> tuple[SecurityContext, SecurityContext]:
    return pair()


def wire(message: Message) -> Message:
    return decode(message.encode())


def finder(*candidates: SecurityContext) -> Callable[[bytes, bytes | None], SecurityContext | None]:
    def find(kid: bytes, kid_context: bytes | None) -> SecurityContext | None:
        for context in candidates:
            if context.recipient_id == kid and kid_context in (None, context.id_context):
                return context
        return None

    return find


def rich_request() -> Message:
    request = Message(
        Code.PUT,
        b'{"bn":"/3/0/"}',
        mtype=MessageType.CON,
        mid=0x1234,
        token=b"\xaa\xbb",
        uri_path="/3/0/1",
        uri_query=["ep=dev", "lt=60"],
        content_format=110,
        accept=112,
    )
    request.uri_host = "device.example"
    request.uri_port = 5684
    return request


def test_request_round_trip(contexts: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = contexts
    request = rich_request()
    outer, binding = client.protect_request(request)
    # Outer message (§4): POST, Class U options and the OSCORE option only, ciphertext payload.
    assert outer.code == Code.POST
    assert (outer.mtype, outer.mid, outer.token) == (MessageType.CON, 0x1234, b"\xaa\xbb")
    assert [n for n, _ in outer.options] == [Opt.URI_HOST, Opt.URI_PORT, Opt.OSCORE]
    assert outer.uri_host == "device.example"
    assert outer.uri_port == 5684
    assert oscore_option(outer) == OscoreOption(partial_iv=b"\x00", kid=b"\xc1")
    assert b"ep=dev" not in outer.encode()
    assert b'"bn"' not in outer.encode()
    inner = [o for o in request.options if o[0] not in (Opt.URI_HOST, Opt.URI_PORT)]
    assert len(outer.payload) == len(encode_plaintext(request.code, inner, request.payload)) + 8
    assert binding == RequestBinding(b"\xc1", b"\x00", None)
    # Verified by the server: the original message, outer-only options included.
    plain, found, server_binding = unprotect_request(wire(outer), finder(server))
    assert plain == request
    assert found is server
    assert server_binding == binding
    assert not server_binding.observe


def test_class_e_options_are_inner_and_unknown_ones_default_to_class_e(
    contexts: tuple[SecurityContext, SecurityContext],
) -> None:
    client, server = contexts
    request = Message(Code.POST, b"data", uri_path="/5/0/1", token=b"\x01")
    request.if_match = [b"\x01"]
    request.etag = b"\x02"
    request.if_none_match = True
    request.block1 = Block(1, True, 2)
    request.block2 = Block(0, False, 2)
    request.size1 = 300
    request.size2 = 0
    request.echo = b"\xec\x40"
    request.no_response = 26
    request.request_tag = b"\x07"
    request.max_age = 10
    request.add_option(16, b"\x10")  # Hop-Limit: not in RFC 8613's table, so Class E
    request.add_option(65000, b"unknown")
    request.add_option(Opt.PROXY_SCHEME, b"coap")
    outer, _ = client.protect_request(request)
    assert [n for n, _ in outer.options] == [Opt.OSCORE, Opt.PROXY_SCHEME]
    plain, _, _ = unprotect_request(wire(outer), finder(server))
    assert plain == request


def test_outer_class_e_options_are_discarded(
    contexts: tuple[SecurityContext, SecurityContext],
) -> None:
    """§8.2 step 1: Code and Class E options of the outer message are not used; Class U are."""
    client, server = contexts
    outer, _ = client.protect_request(Message(Code.GET, uri_path="/a", token=b"\x01"))
    outer.code = Code.DELETE
    outer.add_option(Opt.URI_PATH, b"evil")
    outer.add_option(Opt.MAX_AGE, b"\x05")
    outer.add_option(Opt.BLOCK2, b"\x06")  # an outer (proxy) Block2 after reassembly
    outer.add_option(Opt.URI_HOST, b"proxy")
    plain, _, _ = unprotect_request(wire(outer), finder(server))
    assert plain.code == Code.GET
    assert plain.uri_path == ("a",)
    assert plain.uri_host == "proxy"
    assert [n for n, _ in plain.options] == [Opt.URI_HOST, Opt.URI_PATH]


def test_observe_registration_and_notifications(
    contexts: tuple[SecurityContext, SecurityContext],
) -> None:
    client, server = contexts
    register = Message(Code.GET, uri_path="/3/0/13", observe=0, token=b"\x0b", accept=112)
    outer, binding = client.protect_request(register)
    # §4.1.3.5: FETCH, and the Observe value both Inner and Outer.
    assert outer.code == Code.FETCH
    assert outer.observe == 0
    assert binding.observe
    plain, _, server_binding = unprotect_request(wire(outer), finder(server))
    assert plain == register
    assert server_binding.observe

    def notify(value: int, seq: int, *, new_partial_iv: bool = True) -> Message:
        notification = Message(
            Code.CONTENT, str(value).encode(), token=b"\x0b", observe=seq, content_format=0
        )
        protected = server.protect_response(
            notification, server_binding, new_partial_iv=new_partial_iv
        )
        assert protected.code == Code.CONTENT  # §4.2 with Observe
        assert protected.observe == seq  # the Outer Observe keeps the value for proxies
        return wire(protected)

    first = notify(1, 2, new_partial_iv=False)
    assert oscore_option(first) == OscoreOption()  # the first may reuse the request nonce
    second = notify(2, 3)
    assert oscore_option(second) == OscoreOption(partial_iv=b"\x00")
    third = notify(3, 4)
    fourth = notify(4, 5, new_partial_iv=False)  # request nonce used once already: new PIV
    assert oscore_option(fourth) == OscoreOption(partial_iv=b"\x02")

    got = client.unprotect_response(first, binding)
    assert (got.code, got.payload, got.observe, got.content_format) == (Code.CONTENT, b"1", 0, 0)
    assert binding._state.notification_number is None
    got = client.unprotect_response(second, binding)
    assert (got.payload, got.observe) == (b"2", 1)  # Observe = Partial IV + 1
    assert binding.responses_accepted == 2
    assert binding.notification_number == 0
    got = client.unprotect_response(fourth, binding)  # reordered: the newest arrives first
    assert (got.payload, got.observe) == (b"4", 3)
    with pytest.raises(ReplayDetected, match="Partial IV 1 <= 2"):
        client.unprotect_response(third, binding)  # older than the Notification Number
    with pytest.raises(ReplayDetected):
        client.unprotect_response(fourth, binding)  # replayed
    with pytest.raises(ReplayDetected, match="reusing the request nonce"):
        client.unprotect_response(first, binding)
    assert binding.notification_number == 2
    assert binding.responses_accepted == 3


def test_notification_without_partial_iv_after_one_with(
    contexts: tuple[SecurityContext, SecurityContext],
) -> None:
    """§7.4.1: the notification without Partial IV is the oldest; once a newer one was accepted
    it is refused (and at most one is ever accepted)."""
    client, server = contexts
    outer, binding = client.protect_request(Message(Code.GET, uri_path="/x", observe=0))
    _, _, server_binding = unprotect_request(wire(outer), finder(server))
    with_piv = server.protect_response(
        Message(Code.CONTENT, b"new", observe=3), server_binding, new_partial_iv=True
    )
    without_piv = server.protect_response(Message(Code.CONTENT, b"old", observe=2), server_binding)
    assert oscore_option(without_piv) == OscoreOption()
    assert client.unprotect_response(wire(with_piv), binding).payload == b"new"
    with pytest.raises(ReplayDetected):
        client.unprotect_response(wire(without_piv), binding)


def test_observe_cancellation_and_final_response(
    contexts: tuple[SecurityContext, SecurityContext],
) -> None:
    client, server = contexts
    cancel = Message(Code.GET, uri_path="/x", observe=1)
    outer, binding = client.protect_request(cancel)
    assert outer.code == Code.FETCH
    assert outer.observe == 1
    assert not binding.observe
    plain, _, server_binding = unprotect_request(wire(outer), finder(server))
    assert plain.observe == 1
    assert not server_binding.observe
    response = server.protect_response(Message(Code.CONTENT, b"v"), server_binding)
    assert response.code == Code.CHANGED
    assert client.unprotect_response(wire(response), binding).payload == b"v"


def test_registration_answered_without_observe(
    contexts: tuple[SecurityContext, SecurityContext],
) -> None:
    """§4.1.3.5.2: a response without Inner Observe to a registration is a normal response."""
    client, server = contexts
    outer, binding = client.protect_request(Message(Code.GET, uri_path="/x", observe=0))
    _, _, server_binding = unprotect_request(wire(outer), finder(server))
    response = server.protect_response(Message(Code.NOT_FOUND), server_binding)
    assert response.code == Code.CHANGED
    got = client.unprotect_response(wire(response), binding)
    assert (got.code, got.observe) == (Code.NOT_FOUND, None)


def test_response_round_trip(contexts: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = contexts
    outer, binding = client.protect_request(rich_request())
    _, _, server_binding = unprotect_request(wire(outer), finder(server))
    response = Message(
        Code.CONTENT,
        b"21.5",
        mtype=MessageType.ACK,
        mid=0x1234,
        token=b"\xaa\xbb",
        content_format=0,
    )
    response.max_age = 30
    response.etag = b"\x01\x02"
    response.location_path = "rd/4521"
    protected = server.protect_response(response, server_binding)
    # §4.2: 2.04 Changed outer, an empty OSCORE option, header and token copied.
    assert protected.code == Code.CHANGED
    assert protected.options == [(Opt.OSCORE, b"")]
    assert (protected.mtype, protected.mid, protected.token) == (
        MessageType.ACK,
        0x1234,
        b"\xaa\xbb",
    )
    assert server.sender_sequence_number == 0
    assert client.unprotect_response(wire(protected), binding) == response


def test_response_with_new_partial_iv(contexts: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = contexts
    server.sender_sequence_number = 300
    outer, binding = client.protect_request(Message(Code.POST, b"x", uri_path="/1/0/8"))
    _, _, server_binding = unprotect_request(wire(outer), finder(server))
    protected = server.protect_response(Message(Code.CHANGED), server_binding, new_partial_iv=True)
    assert oscore_option(protected) == OscoreOption(partial_iv=b"\x01\x2c")
    assert client.unprotect_response(wire(protected), binding).code == Code.CHANGED
    assert binding.notification_number is None  # not an observation


def test_only_one_response_per_request(contexts: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = contexts
    outer, binding = client.protect_request(Message(Code.GET, uri_path="/x"))
    _, _, server_binding = unprotect_request(wire(outer), finder(server))
    first = wire(server.protect_response(Message(Code.CONTENT, b"1"), server_binding))
    second = wire(server.protect_response(Message(Code.CONTENT, b"2"), server_binding))
    assert oscore_option(second) == OscoreOption(partial_iv=b"\x00")  # never the nonce twice
    assert client.unprotect_response(first, binding).payload == b"1"
    with pytest.raises(ReplayDetected, match="non-Observe"):
        client.unprotect_response(second, binding)
    with pytest.raises(ReplayDetected, match="reusing the request nonce"):
        client.unprotect_response(first, binding)


def test_inner_observe_in_response_to_non_observe_request(
    contexts: tuple[SecurityContext, SecurityContext],
) -> None:
    client, server = contexts
    outer, binding = client.protect_request(Message(Code.GET, uri_path="/x"))
    _, _, server_binding = unprotect_request(wire(outer), finder(server))
    response = server.protect_response(Message(Code.CONTENT, b"v", observe=5), server_binding)
    with pytest.raises(MalformedPlaintext, match="non-Observe request"):
        client.unprotect_response(wire(response), binding)
    assert binding.responses_accepted == 0


def test_replayed_request_is_refused(contexts: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = contexts
    outer, _ = client.protect_request(Message(Code.POST, b"on", uri_path="/3311/0/5850"))
    unprotect_request(wire(outer), finder(server))
    with pytest.raises(ReplayDetected) as info:
        unprotect_request(wire(outer), finder(server))
    assert info.value.response_code == Code.UNAUTHORIZED
    assert info.value.diagnostic == "Replay detected"
    response = info.value.error_response(outer)
    assert (response.code, response.payload) == (Code.UNAUTHORIZED, b"Replay detected")
    # Later requests still pass; reordered ones inside the window too.
    later = [client.protect_request(Message(Code.GET, uri_path="/a"))[0] for _ in range(3)]
    for message in (later[2], later[0], later[1]):
        unprotect_request(wire(message), finder(server))
    assert server.replay_window.highest == 3


def test_tampered_ciphertext_is_refused_and_does_not_move_the_window(
    contexts: tuple[SecurityContext, SecurityContext],
) -> None:
    client, server = contexts
    outer, _ = client.protect_request(Message(Code.DELETE, uri_path="/3/0"))
    for index in range(len(outer.payload)):
        tampered = wire(outer)
        tampered.payload = (
            outer.payload[:index]
            + bytes((outer.payload[index] ^ 0x01,))
            + outer.payload[index + 1 :]
        )
        with pytest.raises(DecryptionFailed) as info:
            unprotect_request(tampered, finder(server))
        assert (info.value.response_code, info.value.diagnostic) == (
            Code.BAD_REQUEST,
            "Decryption failed",
        )
    truncated = wire(outer)
    truncated.payload = outer.payload[:7]  # shorter than the tag
    with pytest.raises(DecryptionFailed):
        unprotect_request(truncated, finder(server))
    assert server.replay_window.highest is None  # updated only after a successful decryption
    plain, _, _ = unprotect_request(wire(outer), finder(server))
    assert plain.code == Code.DELETE


def test_tampered_option_is_refused(contexts: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = contexts
    outer, _ = client.protect_request(Message(Code.GET, uri_path="/x"))
    other_piv = wire(outer)
    other_piv.oscore = OscoreOption(partial_iv=b"\x01", kid=b"\xc1").encode()
    with pytest.raises(DecryptionFailed):
        unprotect_request(other_piv, finder(server))
    other_kid = wire(outer)
    other_kid.oscore = OscoreOption(partial_iv=b"\x00", kid=b"\xc2").encode()
    with pytest.raises(ContextNotFound) as info:
        unprotect_request(other_kid, finder(server))
    assert (info.value.response_code, info.value.diagnostic) == (
        Code.UNAUTHORIZED,
        "Security context not found",
    )
    garbage = wire(outer)
    garbage.oscore = b"\xff"
    with pytest.raises(OptionDecodeError) as decode_info:
        unprotect_request(garbage, finder(server))
    assert decode_info.value.response_code == Code.BAD_OPTION


def test_tampered_response_is_refused(contexts: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = contexts
    outer, binding = client.protect_request(Message(Code.GET, uri_path="/x"))
    _, _, server_binding = unprotect_request(wire(outer), finder(server))
    response = wire(server.protect_response(Message(Code.CONTENT, b"value"), server_binding))
    tampered = wire(response)
    tampered.payload = bytes((response.payload[0] ^ 0x80,)) + response.payload[1:]
    with pytest.raises(DecryptionFailed):
        client.unprotect_response(tampered, binding)
    with_piv = wire(response)
    with_piv.oscore = OscoreOption(partial_iv=b"\x00").encode()  # claims another nonce
    with pytest.raises(DecryptionFailed):
        client.unprotect_response(with_piv, binding)
    assert binding.responses_accepted == 0
    assert client.unprotect_response(response, binding).payload == b"value"


def test_response_bound_to_another_request_is_refused(
    contexts: tuple[SecurityContext, SecurityContext],
) -> None:
    client, server = contexts
    outer1, binding1 = client.protect_request(Message(Code.GET, uri_path="/door"))
    outer2, _ = client.protect_request(Message(Code.GET, uri_path="/window"))
    unprotect_request(wire(outer1), finder(server))
    _, _, server_binding2 = unprotect_request(wire(outer2), finder(server))
    for new_partial_iv in (False, True):
        response = wire(
            server.protect_response(
                Message(Code.CONTENT, b"open"), server_binding2, new_partial_iv=new_partial_iv
            )
        )
        with pytest.raises(DecryptionFailed):
            client.unprotect_response(response, binding1)
    assert binding1.responses_accepted == 0


def test_id_context_round_trip() -> None:
    client, server = pair(id_context=b"\x37\xcb")
    seen: list[tuple[bytes, bytes | None]] = []

    def find(kid: bytes, kid_context: bytes | None) -> SecurityContext | None:
        seen.append((kid, kid_context))
        return server

    outer, binding = client.protect_request(Message(Code.GET, uri_path="/x"))
    assert oscore_option(outer) == OscoreOption(b"\x00", b"\xc1", b"\x37\xcb")
    assert outer.oscore is not None
    assert outer.oscore[0] & 0x10  # the 'h' flag
    plain, _, server_binding = unprotect_request(wire(outer), find)
    assert seen == [(b"\xc1", b"\x37\xcb")]
    assert server_binding.kid_context == b"\x37\xcb"
    assert binding.kid_context == b"\x37\xcb"
    response = server.protect_response(Message(Code.CONTENT, b"v"), server_binding)
    assert client.unprotect_response(wire(response), binding).payload == b"v"
    assert plain.uri_path == ("x",)


def test_id_context_not_sent() -> None:
    client, server = pair(id_context=b"\x37\xcb", send_kid_context=False)
    outer, binding = client.protect_request(Message(Code.GET, uri_path="/x"))
    assert oscore_option(outer) == OscoreOption(b"\x00", b"\xc1", None)
    assert binding.kid_context is None
    _, _, server_binding = unprotect_request(wire(outer), finder(server))
    response = server.protect_response(Message(Code.CONTENT, b"v"), server_binding)
    assert client.unprotect_response(wire(response), binding).payload == b"v"


def test_context_lookup_failures() -> None:
    client, server = pair(id_context=b"\x01")
    other_client, _ = pair(id_context=b"\x02")
    outer, _ = client.protect_request(Message(Code.GET, uri_path="/x"))
    with pytest.raises(ContextNotFound):
        unprotect_request(wire(outer), lambda kid, ctx: None)
    with pytest.raises(ContextNotFound):  # find_context returned a context of another kid
        unprotect_request(wire(outer), lambda kid, ctx: client)
    with pytest.raises(ContextNotFound):  # kid matches but the ID Context does not
        unprotect_request(wire(outer), lambda kid, ctx: pair(id_context=b"\x09")[1])
    other, _ = other_client.protect_request(Message(Code.GET, uri_path="/x"))
    with pytest.raises(ContextNotFound):
        unprotect_request(wire(other), finder(server))


def test_messages_without_oscore(contexts: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = contexts
    with pytest.raises(NotProtected) as info:
        unprotect_request(Message(Code.GET, uri_path="/x"), finder(server))
    assert info.value.response_code == Code.UNAUTHORIZED
    _, binding = client.protect_request(Message(Code.GET, uri_path="/x"))
    error = Message(Code.UNAUTHORIZED, b"Security context not found")  # OSCORE errors are plain
    with pytest.raises(NotProtected):
        client.unprotect_response(error, binding)


@pytest.mark.parametrize(
    ("option", "payload", "match"),
    [
        (OscoreOption(kid=b"\xc1"), b"ciphertext", "Partial IV and a 'kid'"),
        (OscoreOption(partial_iv=b"\x00"), b"ciphertext", "Partial IV and a 'kid'"),
        (OscoreOption(partial_iv=b"\x00", kid=b"\xc1"), b"", "without payload"),
    ],
)
def test_incomplete_requests(
    contexts: tuple[SecurityContext, SecurityContext],
    option: OscoreOption,
    payload: bytes,
    match: str,
) -> None:
    _, server = contexts
    request = Message(Code.POST, payload, options=[(Opt.OSCORE, option.encode())])
    with pytest.raises(OptionDecodeError, match=match):
        unprotect_request(request, finder(server))


def test_response_without_payload(contexts: tuple[SecurityContext, SecurityContext]) -> None:
    client, _ = contexts
    _, binding = client.protect_request(Message(Code.GET, uri_path="/x"))
    with pytest.raises(OptionDecodeError, match="without payload"):
        client.unprotect_response(Message(Code.CHANGED, options=[(Opt.OSCORE, b"")]), binding)


def test_usage_errors(contexts: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = contexts
    with pytest.raises(OscoreUsageError, match="protect_request"):
        client.protect_request(Message(Code.CONTENT))
    with pytest.raises(OscoreUsageError, match=r"4\.01"):
        client.protect_request(Message(Code.UNAUTHORIZED))
    with pytest.raises(OscoreUsageError, match="already has an OSCORE option"):  # §4.1.3.7
        client.protect_request(Message(Code.POST, b"x", options=[(Opt.OSCORE, b"")]))
    assert client.sender_sequence_number == 0  # nothing consumed by refused calls
    outer, binding = client.protect_request(Message(Code.GET, uri_path="/x"))
    _, _, server_binding = unprotect_request(wire(outer), finder(server))
    with pytest.raises(OscoreUsageError, match="protect_response"):
        server.protect_response(Message(Code.GET), server_binding)
    with pytest.raises(OscoreUsageError, match="already has an OSCORE option"):
        server.protect_response(Message(Code.CONTENT, options=[(Opt.OSCORE, b"")]), server_binding)
    with pytest.raises(OscoreUsageError, match="another context"):
        client.protect_response(Message(Code.CONTENT), server_binding)
    with pytest.raises(OscoreUsageError, match="another context"):
        server.unprotect_response(wire(outer), binding)
    with pytest.raises(OscoreUsageError, match="another context"):
        server.protect_response(
            Message(Code.CONTENT), RequestBinding(b"\xc1", b"\x00", kid_context=b"other")
        )


def test_proxy_uri_is_decomposed(contexts: tuple[SecurityContext, SecurityContext]) -> None:
    """§4.1.3.3: only scheme and authority stay outer; path and query are encrypted."""
    client, server = contexts
    request = Message(Code.GET, token=b"\x01")
    request.proxy_uri = "coap://example.com:5683/resource/a%20b?q=1&r"
    outer, _ = client.protect_request(request)
    assert outer.proxy_uri == "coap://example.com:5683"
    assert b"resource" not in outer.encode()
    plain, _, _ = unprotect_request(wire(outer), finder(server))
    assert plain.proxy_uri == "coap://example.com:5683"
    assert plain.uri_path == ("resource", "a b")
    assert plain.uri_query == ("q=1", "r")


@pytest.mark.parametrize(
    ("uri", "path", "query"),
    [
        ("coap://h", (), ()),
        ("coap://h/", (), ()),
        ("coaps://[2001:db8::1]/a/", ("a", ""), ()),
        ("coap://h?x", (), ("x",)),
    ],
)
def test_proxy_uri_paths(
    contexts: tuple[SecurityContext, SecurityContext],
    uri: str,
    path: tuple[str, ...],
    query: tuple[str, ...],
) -> None:
    client, server = contexts
    request = Message(Code.GET)
    request.proxy_uri = uri
    outer, _ = client.protect_request(request)
    plain, _, _ = unprotect_request(wire(outer), finder(server))
    assert (plain.uri_path, plain.uri_query) == (path, query)


@pytest.mark.parametrize(
    ("uri", "extra", "match"),
    [
        (b"coap://h/a", [(Opt.URI_PATH, b"b")], "together with Uri-Path"),
        (b"coap://h/a", [(Opt.URI_QUERY, b"b")], "together with Uri-Path"),
        (b"/relative", [], "scheme, an authority"),
        (b"coap://h/a#frag", [], "no fragment"),
        (b"coap://[::1/a", [], "not a URI"),
        (b"coap://h/\xff", [], "not a URI"),
    ],
)
def test_proxy_uri_that_cannot_be_decomposed(
    contexts: tuple[SecurityContext, SecurityContext],
    uri: bytes,
    extra: list[tuple[int, bytes]],
    match: str,
) -> None:
    client, _ = contexts
    request = Message(Code.GET, options=[(Opt.PROXY_URI, uri), *extra])
    with pytest.raises(OscoreUsageError, match=match):
        client.protect_request(request)
    assert client.sender_sequence_number == 0


@pytest.mark.parametrize("aead", list(AeadAlgorithm))
@pytest.mark.parametrize("hkdf", list(HkdfAlgorithm))
def test_every_algorithm_round_trips(aead: AeadAlgorithm, hkdf: HkdfAlgorithm) -> None:
    client, server = pair(aead=aead, hkdf=hkdf)
    outer, binding = client.protect_request(rich_request())
    request = rich_request()
    inner = [o for o in request.options if o[0] not in (Opt.URI_HOST, Opt.URI_PORT)]
    plaintext = encode_plaintext(request.code, inner, request.payload)
    assert len(outer.payload) == len(plaintext) + aead.tag_length
    plain, _, server_binding = unprotect_request(wire(outer), finder(server))
    assert plain == rich_request()
    response = server.protect_response(Message(Code.CHANGED, b"ok"), server_binding)
    assert client.unprotect_response(wire(response), binding).payload == b"ok"
    mismatched, _ = pair(
        aead=AeadAlgorithm.AES_CCM_16_128_128
        if aead is AeadAlgorithm.AES_CCM_16_64_128
        else AeadAlgorithm.AES_CCM_16_64_128
    )
    mismatched.sender_sequence_number = 5  # a fresh Partial IV: only the algorithm differs
    with pytest.raises(DecryptionFailed):
        unprotect_request(wire(mismatched.protect_request(Message(Code.GET))[0]), finder(server))


# -- authentic but malformed plaintexts (§5.3) -------------------------------------------------


def forge_request(plaintext: bytes, piv: int = 0) -> Message:
    """A request encrypted with the client's real key: it decrypts, whatever it contains."""
    keys = derive_key_material(
        SoftwareMasterSecret(SECRET), OscoreParameters(b"\xc1", b"\x5e", SALT)
    )
    partial_iv = encode_partial_iv(piv)
    aead = AeadAlgorithm.AES_CCM_16_64_128
    ciphertext = Aead(aead, keys.sender_key).encrypt(
        aead_nonce(keys.common_iv, b"\xc1", partial_iv), plaintext, aad(aead, b"\xc1", partial_iv)
    )
    option = OscoreOption(partial_iv, b"\xc1").encode()
    return Message(Code.POST, ciphertext, options=[(Opt.OSCORE, option)])


@pytest.mark.parametrize(
    ("plaintext", "match"),
    [
        (b"", "shorter than the 4-byte header"),
        (b"\x01\xff", "payload marker without payload"),
        (b"\x00\xb1a", "bytes after an Empty message"),
        (b"\x45", "inner Code 2.05 in a request"),
        (b"\x00", "inner Code 0.00 in a request"),
        (b"\x01\x90", "nested OSCORE option"),
        (b"\x01\xf0", "option delta nibble 15"),
    ],
)
def test_malformed_request_plaintext(
    contexts: tuple[SecurityContext, SecurityContext], plaintext: bytes, match: str
) -> None:
    _, server = contexts
    with pytest.raises(MalformedPlaintext, match=match) as info:
        unprotect_request(forge_request(plaintext), finder(server))
    assert (info.value.response_code, info.value.diagnostic) == (
        Code.BAD_REQUEST,
        "Malformed plaintext",
    )
    # The message was authentic: its Partial IV is now used up.
    assert not server.replay_window.is_fresh(0)


@pytest.mark.parametrize(
    ("plaintext", "match"),
    [
        (b"\x01", "inner Code 0.01 in a response"),
        (b"\x00", "inner Code 0.00 in a response"),
        (b"\x65", "inner Code 3.05 in a response"),
        (b"\x45\x90", "nested OSCORE option"),
        (b"\x45\xff", "payload marker without payload"),
    ],
)
def test_malformed_response_plaintext(
    contexts: tuple[SecurityContext, SecurityContext], plaintext: bytes, match: str
) -> None:
    client, _ = contexts
    _, binding = client.protect_request(Message(Code.GET, uri_path="/x"))
    keys = derive_key_material(
        SoftwareMasterSecret(SECRET), OscoreParameters(b"\x5e", b"\xc1", SALT)
    )
    aead = AeadAlgorithm.AES_CCM_16_64_128
    ciphertext = Aead(aead, keys.sender_key).encrypt(
        aead_nonce(keys.common_iv, b"\xc1", b"\x00"), plaintext, aad(aead, b"\xc1", b"\x00")
    )
    response = Message(Code.CHANGED, ciphertext, options=[(Opt.OSCORE, b"")])
    with pytest.raises(MalformedPlaintext, match=match):
        client.unprotect_response(response, binding)
    assert binding.responses_accepted == 0


def test_every_verification_error_is_a_verification_error() -> None:
    for cls in (NotProtected, OptionDecodeError, ContextNotFound, ReplayDetected):
        assert issubclass(cls, VerificationError)
