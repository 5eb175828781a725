"""RFC 9175 (Echo) with RFC 8613 Appendix B.1.2 conformance campaign at the endpoint.

A server context without replay state (``OscoreLayer.add_context(..., fresh=True)``, what the
LwM2M server loads after a restart) must not serve a request before the client proved its
freshness with an Echo value; the client repeats a challenged request once with that value.
Written from the RFC texts; the harness is ``test_endpoint_rfc8613_campaign``'s. Deviations
are strict xfails naming the section; choices the RFC leaves open are pinned and documented.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.io.oscore import UnprotectedResponse
from lwm2m.oscore import SecurityContext, unprotect_request

from .test_endpoint_rfc8613_campaign import (
    TIMEOUT,
    Opt,
    RawPeer,
    client_context,
    header,
    is_request,
    numbers,
    oscore_pair,
    reply_to,
    server_context,
    spy,
    spy_plaintext,
    towards_raw_server,
)


class RawClient:
    """Protects requests with one client context and sends them straight to the server."""

    def __init__(self, raw: RawPeer, server: object, context: SecurityContext | None = None):
        self.raw = raw
        self.server = server
        self.context = context or client_context()
        self.mid = 0x3000

    def protect(self, echo: bytes | None = None) -> Message:
        self.mid += 1
        request = Message(
            Code.POST, b"act", mid=self.mid, token=self.mid.to_bytes(2, "big"), uri_path="/act"
        )
        if echo is not None:
            request.echo = echo
        outer, _ = self.context.protect_request(request)
        return outer

    async def send(self, outer: Message) -> tuple[Message, Message]:
        """Send a protected request: (the outer answer, the inner answer if protected)."""
        answer = await self.raw.exchange(outer, self.server)
        if answer.oscore is None:
            return answer, answer
        return answer, spy(answer, outer)

    async def challenge(self, echo: bytes | None = None) -> bytes:
        """A request (with ``echo``) that must be answered with a 4.01 + Echo: the new value."""
        _, inner = await self.send(self.protect(echo))
        assert inner.code == Code.UNAUTHORIZED
        value = inner.echo
        assert value is not None
        return value


async def test_the_challenge_is_a_protected_4_01_with_only_an_inner_echo() -> None:
    """RFC 8613 Appendix B.1.2: the first request on a context without replay state is answered
    with "an OSCORE protected 4.01 (Unauthorized), containing only the Echo option and no
    diagnostic payload"; RFC 9175 §2.2.1: "OSCORE servers MUST only produce Inner Echo
    options" (1 to 40 bytes); §2.3: the server "MUST NOT process the request further"; the
    client "SHOULD resend the original request with the addition of an Echo option" -- a new
    request, with a new Partial IV, the Echo value Inner (§2.3: values from Inner options go back
    in Inner options). The second request is served; the caller sees only its answer."""
    async with oscore_pair(fresh=True) as s:
        response = await s.request(Message(Code.POST, b"x", uri_path="/act"))
        assert response.code == Code.CONTENT
        first, second = s.relay.up.messages
        challenge, _ = s.relay.down.messages
        assert challenge.code == Code.CHANGED
        assert challenge.oscore is not None
        assert challenge.echo is None
        inner = spy(challenge, first)
        assert inner.code == Code.UNAUTHORIZED
        assert numbers(inner) == [Opt.ECHO]
        assert inner.payload == b""
        value = inner.echo
        assert value is not None
        assert 1 <= len(value) <= 40
        assert first.echo is None
        assert second.echo is None
        assert spy(first).echo is None
        assert spy(second).echo == value
        assert header(first).piv != header(second).piv
        assert len(s.seen) == 1
        assert s.server_layer.echo_challenges == 1


async def test_a_replay_to_a_restarted_server_is_answered_under_a_new_nonce() -> None:
    """RFC 8613 Appendix B.1.2: the challenge "MUST use its Partial IV when generating the AEAD
    nonce and MUST include the Partial IV in the response". The reason: a server that lost its
    replay window cannot tell a replay; answering with the request nonce would encrypt a second
    plaintext under the (key, nonce) of the answer it gave before the restart (§5.2, D.4).

    The server answers a request, "restarts" (its context is loaded again without replay
    state), and an attacker replays the request: the challenge must carry a Partial IV, and its
    keystream must differ from the first answer's."""
    async with oscore_pair() as s:
        s.respond = lambda request: Message(Code.CONTENT, b"the first answer, long enough")
        await s.request(Message(Code.GET, uri_path="/x"))
        (request,) = s.relay.up.messages
        (answer,) = s.relay.down.messages
        s.server_layer.forget(s.server_context.recipient_id)
        s.server_layer.add_context(server_context(1000), fresh=True)
        replay = request.copy()
        replay.mid, replay.token = (request.mid + 1) & 0xFFFF, b"replay"
        s.relay.inject_up(replay)
        challenge = await s.relay.down.wait(lambda m: m.token == b"replay")
        first_plain = spy_plaintext(answer, request)
        second_plain = spy_plaintext(challenge, request)
        length = min(len(first_plain), len(second_plain))
        cipher_xor = bytes(a ^ b for a, b in zip(answer.payload, challenge.payload, strict=False))
        plain_xor = bytes(a ^ b for a, b in zip(first_plain, second_plain, strict=False))
        assert cipher_xor[:length] != plain_xor[:length], "same keystream: nonce reused"
        assert header(challenge).piv is not None


async def test_the_server_keeps_challenging_with_unpredictable_values() -> None:
    """RFC 9175 §2.3: while a request is not shown fresh the server "MUST NOT process the request
    further" and keeps answering 4.01 with an Echo option; Appendix A item 1: an unpredictable
    value, at most 40 bytes (§2.2.1). Once a request returns the value, it is served.

    Our choice (Appendix A item 1, one value per context, so s = 64 bits): each challenge is a
    new 8-byte random value."""
    async with oscore_pair(fresh=True) as s, RawPeer() as raw:
        client = RawClient(raw, s.server.local_address)
        values = [await client.challenge() for _ in range(5)]
        assert len(set(values)) == 5
        assert all(len(value) == 8 for value in values)
        assert s.seen == []
        _, inner = await client.send(client.protect(values[-1]))
        assert inner.code == Code.CONTENT
        assert len(s.seen) == 1
        assert s.server_layer.echo_challenges == 5


async def test_a_wrong_echo_is_challenged_again() -> None:
    """RFC 9175 §2.3: "If the server cannot verify that the request is fresh, the request is not
    processed further, and an error message MAY be sent. The error message SHOULD include a new
    Echo option." Our choice: it is sent, with a new value."""
    async with oscore_pair(fresh=True) as s, RawPeer() as raw:
        client = RawClient(raw, s.server.local_address)
        issued = await client.challenge()
        forged = secrets.token_bytes(8)
        again = await client.challenge(forged)
        assert again not in (issued, forged)
        assert s.seen == []
        _, inner = await client.send(client.protect(again))
        assert inner.code == Code.CONTENT


async def test_the_latest_four_echo_values_are_accepted() -> None:
    """RFC 9175 §2.3 lets the server decide what it accepts as fresh ("The server MAY include the
    same Echo option value in several different response messages"; Appendix A item 1 keeps a
    list of n values).

    Our choice: the latest four challenges of a context stay valid (n = 4), so requests
    challenged together (an LwM2M client's Update and Send after a server restart) each come
    back with their own value, and the first back proves freshness. A value five challenges
    old is challenged again."""
    async with oscore_pair(fresh=True) as s, RawPeer() as raw:
        client = RawClient(raw, s.server.local_address)
        values = [await client.challenge() for _ in range(5)]
        assert len(set(values)) == 5
        _, inner = await client.send(client.protect(values[0]))  # too old: challenged again
        assert inner.code == Code.UNAUTHORIZED
        _, inner = await client.send(client.protect(values[2]))  # among the latest four
        assert inner.code == Code.CONTENT


async def test_requests_from_before_the_proof_of_freshness_are_replays_afterwards() -> None:
    """RFC 8613 Appendix B.1.2: once a request is verified fresh with Echo, "the Partial IV of
    the second request is set as the lower limit of the Replay Window": a request protected
    earlier (a lower Partial IV, never seen) and the challenged request itself, replayed, are
    refused with 4.01 "Replay detected"."""
    async with oscore_pair(fresh=True) as s, RawPeer() as raw:
        client = RawClient(raw, s.server.local_address)
        first = client.protect()
        delayed = client.protect()  # protected, held back by an attacker
        _, inner = await client.send(first)
        value = inner.echo
        assert value is not None
        _, inner = await client.send(client.protect(value))
        assert inner.code == Code.CONTENT
        for old in (delayed, first):
            replay = old.copy()
            replay.mid, replay.token = replay.mid + 0x100, b"r" + replay.token
            answer, _ = await client.send(replay)
            assert answer.code == Code.UNAUTHORIZED
            assert answer.payload == b"Replay detected"
        assert len(s.seen) == 1


async def test_the_client_repeats_a_challenged_request_once() -> None:
    """RFC 9175 §2.3: the client "SHOULD resend the original request with the addition of an
    Echo option with the received Echo option value" (Inner, as received, §2.3).

    Our choice: it does so once per request; a server that challenges the repeated request too
    gets no third request, and the caller gets that 4.01 (with its Echo) as the answer."""
    async with towards_raw_server() as (client, raw):
        server = server_context()
        task = asyncio.ensure_future(client.request(Message(Code.GET, uri_path="/x"), raw.address))
        sent_values = []
        for index in range(2):
            request = await raw.log.wait(is_request, index)
            inner, _, binding = unprotect_request(request, lambda kid, kid_context: server)
            if index:
                assert inner.echo == sent_values[0]
                assert request.echo is None
            value = secrets.token_bytes(8)
            sent_values.append(value)
            challenge = reply_to(request, Message(Code.UNAUTHORIZED))
            challenge.echo = value
            raw.send(server.protect_response(challenge, binding), raw.sender)
        async with asyncio.timeout(TIMEOUT):
            result = await task
        assert result.code == Code.UNAUTHORIZED
        assert result.echo == sent_values[1]
        assert len(raw.log.matching(is_request)) == 2


async def test_an_unprotected_echo_is_not_returned_inside_the_protected_request() -> None:
    """RFC 9175 §2.3: "A client MUST only send Echo values to endpoints it received them from
    ... sending Echo values from Outer options (or from non-OSCORE responses) back in Outer
    options". An unprotected 4.01 with an Echo answering a protected request is not taken for a
    freshness challenge: the request fails (RFC 8613 §8.4) and is not repeated."""
    async with towards_raw_server() as (client, raw):
        task = asyncio.ensure_future(client.request(Message(Code.GET, uri_path="/x"), raw.address))
        request = await raw.log.wait(is_request)
        challenge = reply_to(request, Message(Code.UNAUTHORIZED))
        challenge.echo = b"outer-echo"
        raw.send(challenge, raw.sender)
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(UnprotectedResponse) as refused:
                await task
        assert refused.value.code == Code.UNAUTHORIZED
        assert len(raw.log.matching(is_request)) == 1


async def test_an_observe_registration_proves_freshness_first() -> None:
    """RFC 9175 §2.3 with RFC 8613 §4.1.3.5.1: a challenged registration is repeated as a new
    request (new Partial IV) with the Inner Echo; the challenge registered nothing (a 4.01 is no
    2.xx with Observe, RFC 7641 §4.1), the repeated registration is the one observer, and its
    notifications are verified against the repeated request."""
    async with oscore_pair(fresh=True) as s:
        observation = await s.observe()
        first, second = s.relay.up.messages
        assert spy(first).echo is None
        assert spy(second).echo is not None
        assert len(s.server.observations()) == 1
        s.notify(b"n1")
        async with asyncio.timeout(TIMEOUT):
            note = await anext(observation)
        assert note.payload == b"n1"
        challenge = spy(s.relay.down[0], first)
        assert challenge.code == Code.UNAUTHORIZED
        assert challenge.observe is None
