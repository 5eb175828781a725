"""Self-check of the aiocoap OSCORE peer harness: aiocoap client against aiocoap server (mirrored
materials), before our own OSCORE implementation is plugged in on either side."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

try:
    import aiocoap
    import aiocoap.oscore
    import aiocoap.resource

    from .aiocoap_peer import (
        AiocoapOscoreClient,
        AiocoapOscoreServer,
        InMemorySecurityContext,
        OscoreMaterial,
        aiocoap_oscore_observe,
        aiocoap_oscore_request,
        aiocoap_plain_request,
        capture_protected_request,
        forget_client_state,
        mirrored,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip(
        f"aiocoap[oscore]==0.4.17 missing ({exc}); pip install 'aiocoap[oscore]==0.4.17'",
        allow_module_level=True,
    )

pytestmark = pytest.mark.interop

CONTENT, CHANGED, BAD_REQUEST, UNAUTHORIZED = 69, 68, 128, 129

# RFC 8613 Appendix C.1.1 / C.1.2, from the server's point of view.
RFC_SECRET = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
RFC_SALT = bytes.fromhex("9e7ca92223786340")
SERVER = OscoreMaterial(RFC_SECRET, sender_id=b"\x01", recipient_id=b"", master_salt=RFC_SALT)
CLIENT = mirrored(SERVER)
# RFC 8613 Appendix C.3 (C.1 plus an ID Context), server's point of view.
SERVER_CTX = OscoreMaterial(
    RFC_SECRET,
    sender_id=b"\x01",
    recipient_id=b"",
    master_salt=RFC_SALT,
    id_context=bytes.fromhex("37cbf3210017a2d3"),
)
CLIENT_CTX = mirrored(SERVER_CTX)


@pytest.fixture(autouse=True)
def _fresh_client_state() -> Iterator[None]:
    forget_client_state()
    yield
    forget_client_state()


def test_mirrored_swaps_ids_only() -> None:
    assert (CLIENT.sender_id, CLIENT.recipient_id) == (b"", b"\x01")
    assert (CLIENT.master_secret, CLIENT.master_salt, CLIENT.id_context) == (
        RFC_SECRET,
        RFC_SALT,
        None,
    )
    assert mirrored(CLIENT) == SERVER


def test_in_memory_context_derives_rfc8613_c1_keys() -> None:
    ctx = InMemorySecurityContext(CLIENT)
    assert ctx.sender_key.hex() == "f0910ed7295e6ad4b54fc793154302ff"
    assert ctx.recipient_key.hex() == "ffb14e093c94c9cac9471648b4f98710"
    assert ctx.common_iv.hex() == "4622d4dd6d944168eefb54987c"
    with_ctx = InMemorySecurityContext(CLIENT_CTX)
    assert with_ctx.sender_key.hex() == "af2a1300a5e95788b356336eeecd2b92"
    assert with_ctx.common_iv.hex() == "2ca58fb85ff1b81c0b7181b85e"


@pytest.mark.parametrize(
    ("material", "option", "ciphertext"),
    [
        pytest.param(CLIENT, "0914", "612f1092f1776f1c1668b3825e", id="C.4"),
        # C.2 material: no Master Salt, client Sender ID 0x00.
        pytest.param(
            OscoreMaterial(RFC_SECRET, sender_id=b"\x00", recipient_id=b"\x01"),
            "091400",
            "4ed339a5a379b0b8bc731fffb0",
            id="C.5",
        ),
    ],
)
async def test_wire_capture_reproduces_rfc8613_requests(
    material: OscoreMaterial, option: str, ciphertext: str
) -> None:
    """RFC 8613 C.4/C.5: GET coap://localhost/tv1, sequence number 20."""
    cap = await capture_protected_request(
        material, "GET", "/tv1", sender_sequence_number=20, uri_host="localhost"
    )
    assert cap.outer.code == aiocoap.POST
    assert cap.outer.mtype == aiocoap.CON
    assert [(int(o.number), o.value) for o in cap.outer.opt.option_list()] == [
        (3, "localhost"),
        (9, bytes.fromhex(option)),
    ]
    assert cap.ciphertext.hex() == ciphertext
    tkl = cap.datagram[0] & 0x0F
    # After header and token (MID and token are aiocoap's random choices) the datagram is the
    # RFC's: Uri-Host "localhost", OSCORE option, payload marker, ciphertext.
    assert cap.datagram[4 + tkl :] == (
        bytes.fromhex("396c6f63616c686f7374")
        + bytes([0x60 | len(bytes.fromhex(option))])
        + bytes.fromhex(option)
        + b"\xff"
        + bytes.fromhex(ciphertext)
    )


async def test_wire_capture_hello_vector() -> None:
    """The extra cross-implementation vector: GET coap://127.0.0.1:<port>/hello, RFC C.1 client
    material, sequence number 0 (no Uri-Host: aiocoap sends none for an IP literal)."""
    cap = await capture_protected_request(CLIENT, "GET", "/hello")
    assert cap.outer.code == aiocoap.POST
    assert [(int(o.number), o.value) for o in cap.outer.opt.option_list()] == [
        (9, bytes.fromhex("0900"))
    ]
    assert cap.ciphertext.hex() == "ae8c36107d8042d4a1cae956657ec0"
    server_side = InMemorySecurityContext(SERVER)
    cap.outer.direction = aiocoap.message.Direction.INCOMING
    inner, _ = server_side.unprotect(cap.outer)
    assert inner.code == aiocoap.GET
    assert inner.opt.uri_path == ("hello",)
    assert [int(o.number) for o in inner.opt.option_list()] == [11]


async def test_get_hello() -> None:
    async with AiocoapOscoreServer(SERVER) as server:
        got = await aiocoap_oscore_request(server.address, CLIENT, "GET", "/hello")
        assert got == (CONTENT, b"hello oscore", 0)
        assert server.requests_seen == [("GET", "/hello")]


async def test_post_echo_keeps_payload_and_content_format() -> None:
    async with AiocoapOscoreServer(SERVER) as server:
        got = await aiocoap_oscore_request(
            server.address, CLIENT, "POST", "/echo", b"\x01\x02payload", content_format=60
        )
        assert got == (CHANGED, b"\x01\x02payload", 60)
        got = await aiocoap_oscore_request(server.address, CLIENT, "POST", "/echo", b"plain")
        assert got == (CHANGED, b"plain", None)
        assert server.requests_seen == [("POST", "/echo"), ("POST", "/echo")]


async def test_uri_query_and_accept_arrive_inside() -> None:
    async with AiocoapOscoreServer(SERVER) as server:
        got = await aiocoap_oscore_request(
            server.address, CLIENT, "GET", "/query", query=["ep=node-1", "lt=300", "b"], accept=0
        )
        assert got == (CONTENT, b"ep=node-1&lt=300&b", 0)


async def test_observe_gets_two_notifications() -> None:
    async with AiocoapOscoreServer(SERVER) as server:

        async def next_value(index: int, payload: bytes) -> None:
            await server.notify(f"value-{index + 1}")

        got = await aiocoap_oscore_observe(
            server.address, CLIENT, "/obs", count=3, after_each=next_value
        )
        assert got == [b"0", b"value-1", b"value-2"]
        assert server.requests_seen == [("GET", "/obs")]
        # Notifications carry the server's own sequence numbers (first response reused the
        # request's nonce).
        assert server.security_context.sender_sequence_number == 2


async def test_client_observe_iterator_and_sequence_numbers() -> None:
    async with (
        AiocoapOscoreServer(SERVER) as server,
        AiocoapOscoreClient(CLIENT) as client,
        asyncio.timeout(10),
    ):
        assert await client.request(server.address, "GET", "/hello") == (
            CONTENT,
            b"hello oscore",
            0,
        )
        stream = client.observe(server.address, "/obs")
        try:
            assert await anext(stream) == (CONTENT, b"0", 0)
            await server.wait_observers(1)
            await server.notify("x")
            assert await anext(stream) == (CONTENT, b"x", 0)
        finally:
            await stream.aclose()
        assert client.security_context.sender_sequence_number == 2


async def test_plain_request_is_refused_with_4_01() -> None:
    async with AiocoapOscoreServer(SERVER) as server:
        code, payload, _ = await aiocoap_plain_request(server.address, "GET", "/hello")
        assert (code, payload) == (UNAUTHORIZED, b"OSCORE required")
        assert server.requests_seen == []


async def test_wrong_master_secret_gets_unprotected_4_00() -> None:
    """aiocoap's server answers a request that fails to decrypt with an *unprotected* 4.00
    "Decryption failed"; aiocoap's client surfaces that as NotAProtectedMessage."""
    wrong = OscoreMaterial(
        bytes(16),
        sender_id=CLIENT.sender_id,
        recipient_id=CLIENT.recipient_id,
        master_salt=RFC_SALT,
    )
    async with AiocoapOscoreServer(SERVER) as server:
        with pytest.raises(aiocoap.oscore.NotAProtectedMessage) as err:
            await aiocoap_oscore_request(server.address, wrong, "GET", "/hello")
        plain = err.value.plain_message
        assert (int(plain.code), plain.payload) == (BAD_REQUEST, b"Decryption failed")
        assert plain.opt.oscore is None
        assert server.requests_seen == []
        # The failed request did not touch the replay window: the right client still gets in.
        got = await aiocoap_oscore_request(server.address, CLIENT, "GET", "/hello")
        assert got[0] == CONTENT


async def test_unknown_kid_gets_unprotected_4_01() -> None:
    stranger = OscoreMaterial(RFC_SECRET, sender_id=b"\x42", recipient_id=b"\x01")
    async with AiocoapOscoreServer(SERVER) as server:
        with pytest.raises(aiocoap.oscore.NotAProtectedMessage) as err:
            await aiocoap_oscore_request(server.address, stranger, "GET", "/hello")
        plain = err.value.plain_message
        assert (int(plain.code), plain.payload) == (UNAUTHORIZED, b"Security context not found")


async def test_id_context() -> None:
    async with AiocoapOscoreServer(SERVER_CTX) as server:
        got = await aiocoap_oscore_request(server.address, CLIENT_CTX, "GET", "/hello")
        assert got == (CONTENT, b"hello oscore", 0)
        got = await aiocoap_oscore_request(server.address, CLIENT_CTX, "POST", "/echo", b"ctx")
        assert got == (CHANGED, b"ctx", None)
        # Same keys' ids but no kid context in the request: aiocoap finds no context for it.
        no_ctx = OscoreMaterial(
            RFC_SECRET, sender_id=b"", recipient_id=b"\x01", master_salt=RFC_SALT
        )
        with pytest.raises(aiocoap.oscore.NotAProtectedMessage) as err:
            await aiocoap_oscore_request(server.address, no_ctx, "GET", "/hello")
        assert int(err.value.plain_message.code) == UNAUTHORIZED
        assert server.requests_seen == [("GET", "/hello"), ("POST", "/echo")]


async def test_wire_capture_reproduces_rfc8613_c6_request_with_kid_context() -> None:
    """RFC 8613 C.6: as C.4 but with the C.3 ID Context, which the request carries."""
    cap = await capture_protected_request(
        CLIENT_CTX, "GET", "/tv1", sender_sequence_number=20, uri_host="localhost"
    )
    # flags h (0x10) | k (0x08) | n=1; PIV 0x14; s=8 + kid context; kid empty
    assert cap.oscore_option.hex() == "19140837cbf3210017a2d3"
    assert cap.ciphertext.hex() == "72cd7273fd331ac45cffbe55c3"


async def test_replayed_sequence_number_gets_unprotected_4_01() -> None:
    async with AiocoapOscoreServer(SERVER) as server:
        assert (await aiocoap_oscore_request(server.address, CLIENT, "GET", "/hello"))[0] == CONTENT
        forget_client_state(CLIENT)  # the next request uses sequence number 0 again
        with pytest.raises(aiocoap.oscore.NotAProtectedMessage) as err:
            await aiocoap_oscore_request(server.address, CLIENT, "GET", "/hello")
        plain = err.value.plain_message
        assert (int(plain.code), plain.payload) == (UNAUTHORIZED, b"Replay detected")
        assert server.requests_seen == [("GET", "/hello")]


async def test_fresh_server_context_needs_no_echo() -> None:
    async with AiocoapOscoreServer(SERVER) as server, AiocoapOscoreClient(CLIENT) as client:
        assert (await client.request(server.address, "GET", "/hello"))[0] == CONTENT
        assert client.security_context.sender_sequence_number == 1  # one request, no retry
        assert server.security_context.sender_sequence_number == 0  # response reused the nonce


async def test_unknown_replay_window_demands_echo_and_aiocoap_client_answers() -> None:
    """RFC 8613 Appendix B.1.2: the first request is answered 4.01 + Echo (protected), the
    aiocoap client re-sends it with the Echo under a new sequence number by itself."""
    async with (
        AiocoapOscoreServer(SERVER, replay_window="unknown") as server,
        AiocoapOscoreClient(CLIENT) as client,
    ):
        assert not server.security_context.recipient_replay_window.is_initialized()
        assert await client.request(server.address, "GET", "/hello") == (
            CONTENT,
            b"hello oscore",
            0,
        )
        assert client.security_context.sender_sequence_number == 2  # original + Echo retry
        assert server.requests_seen == [("GET", "/hello")]  # the resource saw it once
        window = server.security_context.recipient_replay_window
        assert window.is_initialized()
        assert not window.is_valid(0)
        assert not window.is_valid(1)
        # Both the 4.01 + Echo and the answer to the retry carried server sequence numbers.
        assert server.security_context.sender_sequence_number == 2
        assert (await client.request(server.address, "GET", "/hello"))[0] == CONTENT
        assert client.security_context.sender_sequence_number == 3


class _Teapot(aiocoap.resource.Resource):  # type: ignore[misc]
    async def render_put(self, request: Any) -> Any:
        return aiocoap.Message(code=aiocoap.CHANGED, payload=b"put:" + request.payload)


async def test_serves_any_site() -> None:
    site = aiocoap.resource.Site()
    site.add_resource(["a", "b"], _Teapot())
    async with AiocoapOscoreServer(SERVER, site=site) as server:
        got = await aiocoap_oscore_request(server.address, CLIENT, "PUT", "/a/b", b"x")
        assert got == (CHANGED, b"put:x", None)
        got = await aiocoap_oscore_request(server.address, CLIENT, "GET", "/a/b")
        assert got[0] == 133  # 4.05, protected
        got = await aiocoap_oscore_request(server.address, CLIENT, "GET", "/nope")
        assert got[0] == 132  # 4.04, protected
        assert server.requests_seen == [("PUT", "/a/b"), ("GET", "/a/b"), ("GET", "/nope")]
