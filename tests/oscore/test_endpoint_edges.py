"""OSCORE (RFC 8613) error paths of the endpoint and of :class:`OscoreLayer` that the campaigns
do not reach: Inner Block2 transfers that break off, an Inner Block1 upload table that is full,
handlers that answer later (or fail, or are cancelled), observations whose first response
is held or does not verify, ``close()`` in the middle of a registration, and the reload path of
``OscoreLayer.verify_request``.

Peers that misbehave are played by hand: a :class:`HandServer` (a :class:`RawPeer` with the
server's :class:`SecurityContext`) answers each protected request with what the test builds,
protected for real, so that only the property under test is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from lwm2m.coap.config import CoapConfig
from lwm2m.coap.errors import BlockwiseError, BodyTooLarge, ErrorResponse, RequestCancelled
from lwm2m.coap.message import Block, Message
from lwm2m.coap.numbers import Code
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest
from lwm2m.io.oscore import OscoreLayer
from lwm2m.oscore import (
    DecryptionFailed,
    NotProtected,
    OptionDecodeError,
    OscoreParameters,
    RequestBinding,
    SecurityContext,
    SoftwareMasterSecret,
    unprotect_request,
)

from .test_endpoint_rfc8613_campaign import (
    BIG,
    CON,
    RST,
    SALT,
    SECRET,
    TIMEOUT,
    Opt,
    RawPeer,
    client_context,
    header,
    is_request,
    observable,
    oscore_pair,
    reply_to,
    server_context,
    tamper,
)

SZX = 2  # 64-byte inner blocks
ETAG = b"\xe1"


def block2(num: int, more: bool, *, etag: bytes | None = ETAG, code: int = Code.CONTENT) -> Message:
    """An inner answer carrying block ``num`` (64 bytes of ``num``) of a representation."""
    answer = Message(code, bytes([num]) * 64)
    answer.block2 = Block(num, more, SZX)
    if etag is not None:
        answer.etag = etag
    return answer


class HandServer:
    """A :class:`RawPeer` playing the OSCORE server by hand: each request is verified with the
    server's context and answered with the inner response the test builds."""

    def __init__(self, raw: RawPeer) -> None:
        self.raw = raw
        self.context = server_context()
        self._taken: set[int] = set()

    @property
    def address(self) -> Any:
        return self.raw.address

    async def request(self) -> tuple[Message, Message, RequestBinding]:
        """The next request not taken yet: (outer, inner, binding); bounded by the log's wait."""
        outer = await self.raw.log.wait(lambda m: is_request(m) and m.mid not in self._taken)
        self._taken.add(outer.mid)
        inner, _, binding = unprotect_request(outer, lambda kid, kid_context: self.context)
        return outer, inner, binding

    def answer(self, outer: Message, binding: RequestBinding, response: Message) -> None:
        """Protect ``response`` and send it piggybacked on the ACK of ``outer``."""
        protected = self.context.protect_response(reply_to(outer, response), binding)
        self.raw.send(protected, self.raw.sender)

    def requests(self) -> int:
        return len(self.raw.log.matching(is_request))


@contextlib.asynccontextmanager
async def towards_hand_server(
    config: CoapConfig | None = None,
) -> AsyncIterator[tuple[CoapEndpoint, HandServer]]:
    """Our client endpoint (``config``) with an OSCORE context for a :class:`HandServer`."""
    layer = OscoreLayer()
    async with RawPeer() as raw, await CoapEndpoint.create(oscore=layer, config=config) as client:
        layer.add_peer(raw.address, client_context())
        yield client, HandServer(raw)


@contextlib.asynccontextmanager
async def running(awaitable: Awaitable[Any]) -> AsyncIterator[asyncio.Future[Any]]:
    """``awaitable`` as a task for the block; cancelled (and awaited, bounded) when it exits."""
    task = asyncio.ensure_future(awaitable)
    try:
        yield task
    finally:
        task.cancel()
        async with asyncio.timeout(TIMEOUT):
            await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the test looked at it, or does not care


async def ping(raw: RawPeer, endpoint: CoapEndpoint, mid: int) -> None:
    """A CoAP ping from ``raw`` and its Reset: ``endpoint`` has processed (and flushed)
    everything that reached its socket before the ping."""
    raw.send(Message(Code.EMPTY, mtype=CON, mid=mid), endpoint.local_address)
    await raw.log.wait(lambda m: m.mtype == RST and m.mid == mid)


def big_observable(request: CoapRequest) -> Message:
    """Accepts a registration with a first response of three Outer Block2 blocks."""
    observe = 0 if request.message.observe == 0 else None
    return Message(Code.CONTENT, BIG, observe=observe, content_format=0)


def declining(request: CoapRequest) -> Message:
    return Message(Code.NOT_FOUND, b"no such resource")


# == client role: Inner Block1 / Block2 (RFC 8613 §4.1.3.4.1, RFC 7959) ========================


async def test_a_request_body_over_max_body_size_is_refused_before_anything_is_sent() -> None:
    """A body that would go in Inner Block1 blocks but exceeds ``max_body_size`` fails at once
    with :class:`BodyTooLarge`: no block of it goes out (the next request is the first one the
    server sees)."""
    async with towards_hand_server(CoapConfig(max_body_size=1000)) as (client, server):
        with pytest.raises(BodyTooLarge):
            async with asyncio.timeout(TIMEOUT):
                await client.request(
                    Message(Code.POST, bytes(2000), uri_path="/up"), server.address
                )
        async with running(client.request(Message(Code.GET, uri_path="/next"), server.address)):
            _, inner, _ = await server.request()
        assert inner.uri_path == ("next",)
        assert server.requests() == 1


async def test_an_inner_block2_fetch_keeps_the_body_of_a_fetch() -> None:
    """RFC 8132 §2.3.2 with RFC 7959 §2.4: a FETCH answered in Inner Block2 blocks asks for the
    next block with the same FETCH body (a GET or POST follow-up has none); the blocks are
    reassembled into one response without Block2."""
    async with towards_hand_server() as (client, server):
        request = Message(Code.FETCH, b"query", uri_path="/q")
        async with running(client.request(request, server.address)) as task:
            outer, _, binding = await server.request()
            server.answer(outer, binding, block2(0, True))
            outer, follow_up, binding = await server.request()
            assert follow_up.code == Code.FETCH
            assert follow_up.payload == b"query"
            assert follow_up.block2 == Block(1, False, SZX)
            server.answer(outer, binding, block2(1, False))
            async with asyncio.timeout(TIMEOUT):
                response = await task
        assert response.code == Code.CONTENT
        assert response.payload == bytes([0]) * 64 + bytes([1]) * 64
        assert response.block2 is None
        assert server.requests() == 2


async def test_an_inner_block2_answer_that_starts_past_block_0_is_refused() -> None:
    """RFC 7959 §2.4: a response's first block is block 0. An answer carrying Inner Block2
    block 1 (more to come) is not taken for the start of the body: the request fails with
    :class:`BlockwiseError` and no follow-up request is sent."""
    async with towards_hand_server() as (client, server):
        request = Message(Code.GET, uri_path="/big")
        async with running(client.request(request, server.address)) as task:
            outer, _, binding = await server.request()
            server.answer(outer, binding, block2(1, True))
            async with asyncio.timeout(TIMEOUT):
                with pytest.raises(BlockwiseError, match="not block 0"):
                    await task
        async with running(client.request(Message(Code.GET, uri_path="/next"), server.address)):
            _, inner, _ = await server.request()
        assert inner.uri_path == ("next",)  # no follow-up came in between


@pytest.mark.parametrize(
    ("follow_up", "reason"),
    [
        (Message(Code.SERVICE_UNAVAILABLE, b"busy"), "broke off"),
        (block2(1, False, etag=None), "broke off"),
        (Message(Code.CONTENT, bytes(64), options=[(Opt.ETAG, ETAG)]), "broke off"),
        (block2(1, False, etag=b"\xe2"), "broke off"),
        (block2(2, False), "out of order"),
    ],
    ids=["error-code", "etag-dropped", "no-block2", "other-etag", "out-of-order"],
)
async def test_an_inner_block2_transfer_that_breaks_off_fails(
    follow_up: Message, reason: str
) -> None:
    """RFC 7959 §2.4: the blocks of one body come from one representation (the ETag, §2.4 and
    RFC 7252 §5.10.6) in order. When the answer to the follow-up is an error, lacks Block2,
    names another representation, or is another block than the one asked for, the request
    fails with :class:`BlockwiseError` instead of returning a spliced body."""
    async with towards_hand_server() as (client, server):
        async with running(client.request(Message(Code.GET, uri_path="/b"), server.address)) as t:
            outer, _, binding = await server.request()
            server.answer(outer, binding, block2(0, True))
            outer, inner, binding = await server.request()
            assert inner.block2 == Block(1, False, SZX)
            server.answer(outer, binding, follow_up.copy())
            async with asyncio.timeout(TIMEOUT):
                with pytest.raises(BlockwiseError, match=reason):
                    await t
        assert server.requests() == 2


async def test_an_inner_block2_body_over_max_body_size_is_not_fetched_further() -> None:
    """``max_body_size`` bounds an Inner Block2 body as it does an Outer one: once the blocks
    received exceed it, the request fails with :class:`BodyTooLarge` and no further block is
    asked for."""
    async with towards_hand_server(CoapConfig(max_body_size=100)) as (client, server):
        async with running(client.request(Message(Code.GET, uri_path="/b"), server.address)) as t:
            outer, _, binding = await server.request()
            server.answer(outer, binding, block2(0, True))  # 64 bytes: within the limit
            outer, _, binding = await server.request()
            server.answer(outer, binding, block2(1, True))  # 128 bytes
            async with asyncio.timeout(TIMEOUT):
                with pytest.raises(BodyTooLarge):
                    await t
        assert server.requests() == 2


# == client role: observations (RFC 8613 §4.1.3.5, §8.4, RFC 7641) =============================


async def test_observe_refuses_a_first_response_that_does_not_verify_and_forgets_it() -> None:
    """RFC 8613 §8.4: a first response that fails verification is not the server's answer:
    ``observe()`` raises the verification error, and the client keeps no observation behind
    it -- a notification that follows with the registration's token is answered with a Reset
    (RFC 7641 §3.6) instead of being delivered."""
    async with towards_hand_server() as (client, server):
        registration = Message(Code.GET, uri_path="/obs")
        async with running(client.observe(registration, server.address)) as task:
            outer, _, binding = await server.request()
            first = server.context.protect_response(
                reply_to(outer, Message(Code.CONTENT, b"v0", observe=0)), binding
            )
            server.raw.send(tamper(first), server.raw.sender)
            async with asyncio.timeout(TIMEOUT):
                with pytest.raises(DecryptionFailed):
                    await task
        genuine = server.context.protect_response(
            Message(Code.CONTENT, b"n1", mtype=CON, mid=0x6001, token=outer.token, observe=7),
            binding,
            new_partial_iv=True,
        )
        server.raw.send(genuine, server.raw.sender)
        reset = await server.raw.log.wait(lambda m: m.mid == 0x6001 and m.mtype == RST)
        assert reset.code == Code.EMPTY


async def test_a_notification_right_behind_the_first_response_is_held_until_it_verifies() -> None:
    """RFC 8613 §7.4.1, §8.4: the first response (request nonce, no Partial IV) and the first
    notification reach a busy client in one read. The notification is held until the first
    response is verified (once a notification is accepted, a response without Partial IV would
    no longer be), then verified and delivered: the client gets both, in order.

    A burst of pings first makes the client's endpoint read several datagrams per wake-up (its
    adaptive read budget), as under load; the relay then holds the first response back until
    the notification comes, and forwards the two back to back."""
    async with oscore_pair() as s, RawPeer() as raw:
        s.respond = observable
        held: list[Message] = []

        def hold_first(message: Message) -> Message | None:
            if message.observe is None:
                return message
            if not held:
                held.append(message)
                return None
            s.relay.inject_down(held[0])  # the first response, then the notification
            return message

        s.relay.rewrite_down = hold_first
        for mid in range(0x7000, 0x7000 + 30):
            raw.send(Message(Code.EMPTY, mtype=CON, mid=mid), s.client.local_address)
        await raw.log.wait(lambda m: m.mid == 0x7000 + 29)
        request = Message(Code.GET, uri_path="/obs")
        async with running(s.client.observe(request, s.relay.address)) as task:
            await s.relay.dropped.wait(lambda m: True)
            (observer,) = s.server.observations()
            s.server.notify_observation(observer, Message(Code.CONTENT, b"n1", observe=0))
            async with asyncio.timeout(TIMEOUT):
                observation = await task
                note = await anext(observation)
        assert observation.response is not None
        assert observation.response.payload == b"v0"
        assert note.payload == b"n1"
        first, notification = s.relay.down.messages
        assert header(first).piv is None
        assert header(notification).piv is not None
        assert observation.active


async def test_a_block_wise_first_response_keeps_the_observation() -> None:
    """RFC 7959 §2.6 with RFC 7641 §3.1: a first response too large for one datagram comes as
    Block2 block 0 with the Observe option; the client fetches the rest without Observe. The
    registration succeeded: the observation is active and later notifications are delivered."""
    async with oscore_pair() as s:
        s.respond = big_observable
        async with asyncio.timeout(TIMEOUT):
            observation = await s.client.observe(
                Message(Code.GET, uri_path="/obs"), s.relay.address
            )
        assert observation.response is not None
        assert observation.response.payload == BIG
        assert observation.active
        s.notify(b"n1")
        async with asyncio.timeout(TIMEOUT):
            assert (await anext(observation)).payload == b"n1"


async def test_a_notification_during_a_block_wise_first_response_does_not_lose_it() -> None:
    """RFC 7641 §3.4 orders notifications among themselves; the first response is not a
    notification to be superseded. A notification that the server sends while the client is
    still fetching block 1 of the first response must not make the registration hang: by the
    time the last block is processed, ``observe()`` has returned."""
    async with oscore_pair() as s, RawPeer() as raw:
        s.respond = big_observable
        notified: list[Message] = []

        def notify_first(message: Message) -> Message:
            block = message.block2
            if is_request(message) and block is not None and block.num == 1 and not notified:
                notified.append(message)
                (observer,) = s.server.observations()
                s.server.notify_observation(observer, Message(Code.CONTENT, b"n1", observe=0))
            return message

        s.relay.rewrite_up = notify_first
        request = Message(Code.GET, uri_path="/obs")
        async with running(s.client.observe(request, s.relay.address)) as task:
            await s.relay.down.wait(lambda m: m.block2 is not None and not m.block2.more)
            await ping(raw, s.client, 0x7100)  # the client has processed the last block
            assert task.done()


async def test_an_unverifiable_final_response_is_not_taken_for_the_servers_answer() -> None:
    """RFC 8613 §8.4: what does not verify is discarded. The endpoint never deregisters an
    OSCORE observation proactively (it would re-send the stored request); an application that
    does so through ``endpoint.engine`` gets the stored protected request re-sent with Observe=1
    (RFC 7641 §3.6), which the server refuses as a replay with an unprotected 4.01 (§7.4). The
    observation ends (the deregistration is the client's own decision), but the unprotected
    answer is not exposed as the server's final response."""
    async with oscore_pair() as s, RawPeer() as raw:
        observation = await s.observe()
        s.client.engine.cancel_observation(
            observation.request_id, asyncio.get_running_loop().time()
        )
        await ping(raw, s.client, 0x7200)  # the endpoint flushes what its engine queued
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(StopAsyncIteration):
                await anext(observation)
        refusal = await s.relay.down.wait(lambda m: m.code == Code.UNAUTHORIZED)
        assert refusal.payload == b"Replay detected"
        assert refusal.oscore is None
        assert not observation.active
        assert observation.final_response is None
        assert s.server.observations() == []


# == client role: close() during a registration ===============================================


async def test_closing_while_a_block_wise_first_response_is_fetched_fails_observe() -> None:
    """``close()`` fails what is pending: a registration whose first response is still being
    fetched block-wise (block 1 lost on the way) fails with :class:`RequestCancelled` at once,
    instead of waiting for the retransmission."""
    async with oscore_pair() as s:
        s.respond = big_observable

        def lose_block_1(message: Message) -> Message | None:
            block = message.block2
            return None if is_request(message) and block is not None else message

        s.relay.rewrite_up = lose_block_1
        request = Message(Code.GET, uri_path="/obs")
        async with running(s.client.observe(request, s.relay.address)) as task:
            await s.relay.dropped.wait(lambda m: True)
            async with asyncio.timeout(TIMEOUT):
                await s.client.close()
                with pytest.raises(RequestCancelled):
                    await task


async def test_closing_right_when_a_declined_registration_is_answered() -> None:
    """The endpoint closes in the loop pass right after it read the server's answer declining
    a registration (RFC 7641 §3.1: no Observe, here a protected 4.04), before ``observe()``
    resumed: ``close()`` ends the observation it still lists, and ``observe()`` still returns
    it ended, with the verified answer as its final response."""
    async with oscore_pair() as s:
        s.respond = declining
        loop = asyncio.get_running_loop()
        closing: list[asyncio.Task[None]] = []

        def close_soon() -> None:
            closing.append(asyncio.ensure_future(s.client.close()))

        def answered(message: Message) -> Message:
            # Forwarded now, read by the client in the next loop pass; close_soon runs in that
            # pass too, so the close task starts in the pass after, before observe() resumes.
            s.relay.rewrite_down = None
            loop.call_soon(close_soon)
            return message

        s.relay.rewrite_down = answered
        async with asyncio.timeout(TIMEOUT):
            observation = await s.client.observe(
                Message(Code.GET, uri_path="/obs"), s.relay.address
            )
            await closing[0]
        assert not observation.active
        assert observation.final_response is not None
        assert observation.final_response.code == Code.NOT_FOUND
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(StopAsyncIteration):
                await anext(observation)


# == server role ==============================================================================


async def test_the_oldest_inner_block1_upload_gives_way_to_a_new_one() -> None:
    """RFC 7959 §2.5, §2.9.2 after OSCORE verification: the server reassembles at most 64
    Inner Block1 uploads at once. A 65th upload (another Request-Tag, RFC 9175 §3) makes the
    oldest give way: its next block is answered 4.08 Request Entity Incomplete (protected),
    while the others, the newest included, complete."""
    async with oscore_pair() as s, RawPeer() as raw:
        s.respond = lambda request: Message(Code.CHANGED)
        context = client_context()

        async def send_block(tag: int, num: int, mid: int) -> Message:
            inner = Message(
                Code.POST, bytes([tag]) * 16, mid=mid, token=mid.to_bytes(2, "big"), uri_path="/up"
            )
            inner.block1 = Block(num, num == 0, 0)
            inner.request_tag = tag.to_bytes(2, "big")
            outer, binding = context.protect_request(inner)
            answer = await raw.exchange(outer, s.server.local_address)
            return context.unprotect_response(answer, binding)

        for tag in range(65):
            assert (await send_block(tag, 0, 0x4000 + tag)).code == Code.CONTINUE
        assert (await send_block(0, 1, 0x4100)).code == Code.REQUEST_ENTITY_INCOMPLETE
        assert (await send_block(1, 1, 0x4101)).code == Code.CHANGED
        assert (await send_block(64, 1, 0x4102)).code == Code.CHANGED
        assert [seen.message.payload for seen in s.seen] == [bytes([1]) * 32, bytes([64]) * 32]


async def _forbidden_later(request: CoapRequest) -> Message:
    raise ErrorResponse(Code.FORBIDDEN, "not now")


async def _broken_later(request: CoapRequest) -> Message:
    raise RuntimeError("handler bug (expected by the test)")


async def test_errors_of_a_handler_that_answers_later_go_back_protected() -> None:
    """RFC 8613 §8.3: CoAP errors from processing a verified request are protected -- also when
    the handler answers through an awaitable: its :class:`ErrorResponse` keeps its code, any
    other exception becomes 5.00 (and is counted), both inside the OSCORE response."""
    async with oscore_pair() as s:
        s.server.site.add("/forbidden", _forbidden_later)
        s.server.site.add("/broken", _broken_later)
        forbidden = await s.request(Message(Code.GET, uri_path="/forbidden"))
        broken = await s.request(Message(Code.GET, uri_path="/broken"))
        assert (forbidden.code, forbidden.payload) == (Code.FORBIDDEN, b"not now")
        assert broken.code == Code.INTERNAL_SERVER_ERROR
        assert s.server.stats.handler_errors == 1
        assert [m.code for m in s.relay.down.messages] == [Code.CHANGED, Code.CHANGED]
        assert all(header(m).piv is None for m in s.relay.down.messages)


async def test_closing_the_server_cancels_a_protected_request_still_being_handled() -> None:
    """``close()`` cancels the handler of a verified OSCORE request that has not answered yet:
    the handler sees the cancellation, ``close()`` returns, and no answer (protected or not)
    goes out for that request."""
    async with oscore_pair() as s:
        started = asyncio.Event()
        cancelled: list[bool] = []

        async def slow(request: CoapRequest) -> Message:
            started.set()
            try:
                await asyncio.Event().wait()  # until cancelled
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            raise AssertionError("unreachable")

        s.server.site.add("/slow", slow)
        request = Message(Code.GET, uri_path="/slow")
        async with running(s.client.request(request, s.relay.address)) as task:
            async with asyncio.timeout(TIMEOUT):
                await started.wait()
                await s.server.close()
            assert cancelled == [True]
            assert s.relay.down.matching(lambda m: m.code != Code.EMPTY) == []
            assert not task.done()


async def test_an_oscore_option_without_kid_is_refused_as_undecodable() -> None:
    """RFC 8613 §5, §8.2 step 2: a request's OSCORE option must carry a 'kid'; one with only a
    Partial IV cannot be verified and is answered 4.02 "Failed to decode COSE", unprotected."""
    async with oscore_pair() as s, RawPeer() as raw:
        outer, _ = client_context().protect_request(
            Message(Code.GET, mid=0x4300, token=b"nokid", uri_path="/x")
        )
        outer.oscore = b"\x01\x05"  # Partial IV 5, no kid
        answer = await raw.exchange(outer, s.server.local_address)
        assert answer.code == Code.BAD_OPTION
        assert answer.payload == b"Failed to decode COSE"
        assert answer.oscore is None
        assert s.seen == []


# == OscoreLayer: loading and reloading server-role contexts ===================================


def server_side(secret: bytes = SECRET, sequence_number: int = 0) -> SecurityContext:
    """A server-role context for the client of :func:`client_context` (keys from ``secret``)."""
    parameters = OscoreParameters(server_context().sender_id, client_context().sender_id, SALT)
    return SecurityContext(
        SoftwareMasterSecret(secret), parameters, sender_sequence_number=sequence_number
    )


def client_side(secret: bytes = SECRET, sequence_number: int = 0) -> SecurityContext:
    parameters = OscoreParameters(client_context().sender_id, server_context().sender_id, SALT)
    return SecurityContext(
        SoftwareMasterSecret(secret), parameters, sender_sequence_number=sequence_number
    )


NEW_SECRET = bytes(range(16))


class Store:
    """A loader over a one-entry store: counts its reads; ``gate`` (if set) holds them."""

    def __init__(self) -> None:
        self.secret: bytes | None = SECRET
        self.sequence_number = 0
        self.loads = 0
        self.gate: asyncio.Event | None = None
        self._read = asyncio.Event()

    async def __call__(self, kid: bytes, kid_context: bytes | None) -> SecurityContext | None:
        self.loads += 1
        self._read.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.secret is None:
            return None
        return server_side(self.secret, self.sequence_number)

    async def wait_loads(self, count: int) -> None:
        """Until the store has been read ``count`` times (bounded)."""
        async with asyncio.timeout(TIMEOUT):
            while self.loads < count:
                self._read.clear()
                await self._read.wait()


def protected(context: SecurityContext, path: str = "/x") -> Message:
    return context.protect_request(Message(Code.GET, uri_path=path))[0]


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (Message(Code.GET, uri_path="/x"), NotProtected),
        (Message(Code.POST, bytes(9), options=[(Opt.OSCORE, b"\x01\x05")]), OptionDecodeError),
    ],
    ids=["no-oscore-option", "no-kid"],
)
async def test_verify_request_without_a_kid_fails_without_asking_the_store(
    request_: Message, error: type[Exception]
) -> None:
    """RFC 8613 §8.2: a request with no OSCORE option (§2), or whose option has no 'kid' (§5),
    names no context: ``verify_request`` raises at once, and the store is not read."""
    store = Store()
    layer = OscoreLayer(store)
    with pytest.raises(error):
        await layer.verify_request(request_)
    assert store.loads == 0


async def test_a_reloaded_context_continues_the_sequence_numbers_of_the_forgotten_one() -> None:
    """RFC 8613 §7.2.1, Appendix B.1.1: a context forgotten and loaded again in the same process
    must not reuse a Partial IV: the new context starts where the forgotten one stopped, even
    when the store gives it a lower Sender Sequence Number."""
    store = Store()
    layer = OscoreLayer(store)
    first = await layer.find(client_context().sender_id, None)
    assert first is not None
    _, _, binding = unprotect_request(protected(client_side()), lambda kid, kc: first)
    for _ in range(5):
        first.protect_response(Message(Code.CONTENT), binding, new_partial_iv=True)
    layer.forget(client_context().sender_id)
    again = await layer.find(client_context().sender_id, None)
    assert again is not None
    assert again is not first
    assert store.loads == 2
    assert again.sender_sequence_number == first.sender_sequence_number == 5
    _, _, binding = unprotect_request(protected(client_side(), "/y"), lambda kid, kc: again)
    note = again.protect_response(Message(Code.CONTENT), binding, new_partial_iv=True)
    assert header(note).piv == b"\x05"


async def test_a_context_added_by_hand_is_not_reloaded_when_a_request_fails() -> None:
    """A context the application added (not loaded from the store) is the only truth: a request
    that does not decrypt with it fails with :class:`DecryptionFailed`, and the store is not
    read for other keys (a forged datagram costs no store lookup)."""
    store = Store()
    layer = OscoreLayer(store)
    held = server_side()
    layer.add_context(held)
    with pytest.raises(DecryptionFailed):
        await layer.verify_request(protected(client_side(NEW_SECRET)))
    assert store.loads == 0
    assert await layer.find(held.recipient_id, None) is held


async def test_a_failing_request_of_a_context_deleted_from_the_store_changes_nothing() -> None:
    """A loaded context fails to decrypt a request and the store no longer has the entry (the
    client was removed): the request fails with :class:`DecryptionFailed` and the held context
    stays as it was (only a successful reload replaces it)."""
    store = Store()
    layer = OscoreLayer(store)
    inner, held, _ = await layer.verify_request(protected(client_side()))
    assert inner.uri_path == ("x",)
    store.secret = None
    with pytest.raises(DecryptionFailed):
        await layer.verify_request(protected(client_side(NEW_SECRET, 1)))
    assert store.loads == 2
    assert await layer.find(held.recipient_id, None) is held


async def test_concurrent_reloads_install_one_new_context() -> None:
    """Two requests of a re-provisioned client (new Master Secret) reach the server together;
    both fail with the held context and both read the store. The first reload replaces the
    context (wherever it was bound; other bindings stay); the second finds it replaced and
    fails rather than installing a second new context over the first (whose replay window and
    freshness state it would lose)."""
    store = Store()
    layer = OscoreLayer(store)
    _, held, _ = await layer.verify_request(protected(client_side()))
    layer.bind(("client", 1), held)
    other = server_side(NEW_SECRET)
    layer.bind(("other", 2), other)
    store.secret = NEW_SECRET
    store.gate = asyncio.Event()
    renewed = client_side(NEW_SECRET, 10)
    async with (
        running(layer.verify_request(protected(renewed, "/a"))) as first,
        running(layer.verify_request(protected(renewed, "/b"))) as second,
    ):
        await store.wait_loads(3)  # the initial load, then one reload per request (held)
        store.gate.set()
        async with asyncio.timeout(TIMEOUT):
            await asyncio.wait([first, second])
        inner, installed, _ = first.result()
        with pytest.raises(DecryptionFailed):
            second.result()
    assert inner.uri_path == ("a",)
    assert installed is not held
    assert await layer.find(held.recipient_id, None) is installed
    assert layer.context_for(("client", 1)) is installed
    assert layer.context_for(("other", 2)) is other
