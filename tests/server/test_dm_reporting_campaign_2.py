"""Spec-conformance campaign, server side of Information Reporting (Core §6.4, Transport §6.4,
RFC 7641): Observe / Observe-Composite requests, notifications (order, freshness, CON / NON,
timestamps), Reset of unknown notifications, reactive and proactive cancellation, and the
observation records of a registration.

Citations as in ``test_dm_reporting_campaign.py``, whose :class:`RawClient` (a CoAP peer driven
message by message on loopback) is reused. Bounded by ``asyncio.timeout``; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code, MessageType
from lwm2m.codec import composite_codec_for
from lwm2m.codec.content_format import ContentFormat
from lwm2m.io.lwm2m_server import LwM2MServer, ObservationHandle
from lwm2m.model import Path, ResourceType, SingleResource
from lwm2m.server.errors import ErrorResponse, InvalidResponse
from lwm2m.server.events import Deregistered, NotificationReceived, ObservationEnded

from .devices import MODEL
from .test_dm_reporting_campaign import ALL_FORMATS, RawClient, exchange, registered_raw

TIMEOUT = 5
INT, STR = ResourceType.INTEGER, ResourceType.STRING


@pytest.fixture
async def raw(server: LwM2MServer) -> AsyncIterator[RawClient]:
    client = await registered_raw(server, "raw", links=ALL_FORMATS)
    try:
        yield client
    finally:
        client.close()


def text_reply(value: int, seq: int | None) -> Message:
    return Message(Code.CONTENT, str(value).encode(), content_format=0, observe=seq)


async def observe_text(
    server: LwM2MServer, raw: RawClient, path: str = "/3/0/9", seq: int = 10, endpoint: str = "raw"
) -> tuple[Message, ObservationHandle]:
    """Observe ``path`` as text; the client establishes it with Observe ``seq``."""
    request, task = await exchange(
        raw, server.observe(endpoint, path, accept=ContentFormat.TEXT), text_reply(87, seq)
    )
    return request, task.result()


def notification(
    token: bytes, seq: int | None, value: int, *, confirmable: bool = False, code: int = 0x45
) -> Message:
    message = Message(code, str(value).encode(), token=token, observe=seq)
    if code >> 5 == 2:
        message.content_format = 0
    message.mtype = MessageType.CON if confirmable else MessageType.NON
    return message


def send_non(raw: RawClient, message: Message) -> int:
    message.mtype = MessageType.NON
    message.mid = raw.next_mid()
    raw.send(message)
    return message.mid


# -- the Observe requests (Core §6.4.1, §6.4.3; Transport §6.4; RFC 7641 §3.1) -------------------


async def test_observe_is_a_get_with_observe_0_and_a_token(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Transport §6.4 / RFC 7641 §3.1 (ref §1.1 "Observe = GET with Observe=0 and a fresh
    token"): a CON GET on the path with Observe 0, the Accept asked for, and a non-empty token;
    the first 2.05 with an Observe option establishes the observation, whose record is keyed by
    that token."""
    async with asyncio.timeout(TIMEOUT):
        request, handle = await observe_text(server, raw)
        records = await server.observations("raw")
    assert request.code == Code.GET
    assert request.mtype == MessageType.CON
    assert request.observe == 0
    assert request.uri_path == ("3", "0", "9")
    assert request.accept == ContentFormat.TEXT
    assert request.token != b""
    assert handle.active
    assert handle.response is not None
    assert handle.response.content == SingleResource(9, INT, 87)
    assert [r.token for r in records] == [request.token]
    assert records[0].paths == (Path(3, 0, 9),)


async def test_every_observation_has_its_own_token(server: LwM2MServer, raw: RawClient) -> None:
    """RFC 7641 §3.1 / RFC 7252 §5.3.1: notifications are matched by token, so two
    observations (even of the same path) must not share one."""
    async with asyncio.timeout(TIMEOUT):
        first, _ = await observe_text(server, raw)
        second, _ = await observe_text(server, raw)
        third, _ = await observe_text(server, raw, "/3/0/0")
    assert len({first.token, second.token, third.token}) == 3
    assert len(await server.observations("raw")) == 3


async def test_observe_composite_is_a_fetch_with_observe_0_and_a_path_list(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.4.3 / Transport §6.4 (ref §1.1, Leshan): Observe-Composite = FETCH ``/`` with
    Observe 0, Content-Format 110/112 and a SenML body of names; the 2.05 carries the values of
    every path; the record holds all the paths."""
    cf = ContentFormat.SENML_JSON
    paths = [Path(3, 0, 9), Path(3, 0, 0)]
    values = {Path(3, 0, 9): SingleResource(9, INT, 87), Path(3, 0, 0): SingleResource(0, STR, "A")}
    body = composite_codec_for(cf).encode_nodes(values, MODEL)
    reply = Message(Code.CONTENT, body, content_format=int(cf), observe=3)
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw, server.observe_composite("raw", paths, content_format=cf, accept=cf), reply
        )
    assert request.code == Code.FETCH
    assert request.uri_path == ()
    assert request.observe == 0
    assert request.content_format == cf
    assert request.accept == cf
    assert composite_codec_for(cf).decode_paths(request.payload) == paths
    handle: ObservationHandle = task.result()
    assert handle.response is not None
    assert dict(handle.response.composite or {}) == values
    assert handle.observation.composite
    assert handle.observation.paths == tuple(paths)


async def test_an_observe_answered_with_an_error_stores_nothing(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.4.1 response codes (4.04, 4.05, 4.01 ...) / RFC 7641 §3.1: an error answer
    establishes nothing: ErrorResponse with the code, no observation record."""
    async with asyncio.timeout(TIMEOUT):
        _, task = await exchange(
            raw, server.observe("raw", "/3/0/9"), Message(Code.METHOD_NOT_ALLOWED)
        )
        assert isinstance(task.exception(), ErrorResponse)
        assert task.exception().code == Code.METHOD_NOT_ALLOWED  # type: ignore[union-attr]
        assert await server.observations("raw") == []


async def test_an_undecodable_observe_answer_is_forgotten_and_its_notifications_reset(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.4.1 (the first answer is the value of the observed path) and RFC 7641 §3.6: a
    2.05 that does not fit the path is an InvalidResponse, nothing is stored, and the client's
    next (CON) notification on that token is answered with a Reset, which ends the observation
    at the client."""
    bad = Message(Code.CONTENT, b"not a number", content_format=0, observe=1)
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw, server.observe("raw", "/3/0/9", accept=ContentFormat.TEXT), bad
        )
        assert isinstance(task.exception(), InvalidResponse)
        assert await server.observations("raw") == []
        answer = await raw.send_and_wait(notification(request.token, 2, 5, confirmable=True))
    assert answer.mtype == MessageType.RST


# -- notifications: order, freshness, CON / NON (RFC 7641 §3.3, §3.4, §4.5) --------------------


async def test_stale_notifications_are_dropped(server: LwM2MServer, raw: RawClient) -> None:
    """RFC 7641 §3.4: a notification whose Observe value is older than the newest one seen
    (V1 > V2, V1 - V2 < 2^23, within 128 s) is out of order and must not replace the newer
    value: the caller sees 50 then 30, never the stale 40."""
    async with asyncio.timeout(TIMEOUT):
        request, handle = await observe_text(server, raw, seq=10)
        for seq, value in ((12, 50), (11, 40), (12, 45), (13, 30)):
            send_non(raw, notification(request.token, seq, value))
        first = await anext(handle)
        second = await anext(handle)
    assert first.content == SingleResource(9, INT, 50)
    assert second.content == SingleResource(9, INT, 30)


async def test_a_notification_older_than_the_first_response_is_dropped(
    server: LwM2MServer, raw: RawClient
) -> None:
    """RFC 7641 §3.4: the first response's Observe value counts too: a notification numbered
    before it is stale."""
    async with asyncio.timeout(TIMEOUT):
        request, handle = await observe_text(server, raw, seq=100)
        send_non(raw, notification(request.token, 99, 1))
        send_non(raw, notification(request.token, 101, 2))
        assert (await anext(handle)).content == SingleResource(9, INT, 2)


async def test_sequence_numbers_wrap_around(server: LwM2MServer, raw: RawClient) -> None:
    """RFC 7641 §3.4 / §4.4: Observe values are 24-bit and wrap; 0xFFFFFF → 0 → 1 is in
    order (V1 > V2 and V1 - V2 > 2^23)."""
    async with asyncio.timeout(TIMEOUT):
        request, handle = await observe_text(server, raw, seq=0xFFFFFE)
        for seq, value in ((0xFFFFFF, 1), (0, 2), (1, 3)):
            send_non(raw, notification(request.token, seq, value))
        values = [(await anext(handle)).content for _ in range(3)]
    assert values == [SingleResource(9, INT, v) for v in (1, 2, 3)]


async def test_a_con_notification_is_acknowledged(server: LwM2MServer, raw: RawClient) -> None:
    """RFC 7252 §4.2 / RFC 7641 §4.5: a confirmable notification is acknowledged with an
    empty ACK of the same Message ID, and delivered."""
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            request, handle = await observe_text(server, raw)
            message = notification(request.token, 11, 64, confirmable=True)
            answer = await raw.send_and_wait(message)
            assert (await anext(handle)).content == SingleResource(9, INT, 64)
            event = await events.wait_for(NotificationReceived)
    assert answer.mtype == MessageType.ACK
    assert answer.mid == message.mid
    assert answer.code == Code.EMPTY
    assert event.observation.token == request.token
    assert event.response.content == SingleResource(9, INT, 64)


async def test_a_non_notification_is_delivered_without_ack(
    server: LwM2MServer, raw: RawClient
) -> None:
    """RFC 7252 §4.3 / RFC 7641 §4.5 (ref §1.1 "Notify may be NON"): a non-confirmable
    notification is delivered and not acknowledged."""
    async with asyncio.timeout(TIMEOUT):
        request, handle = await observe_text(server, raw)
        non_mid = send_non(raw, notification(request.token, 11, 33))
        assert (await anext(handle)).content == SingleResource(9, INT, 33)
        # a CON notification after it: its ACK shows the server has read both datagrams
        await raw.send_and_wait(notification(request.token, 12, 34, confirmable=True))
        assert (await anext(handle)).content == SingleResource(9, INT, 34)
    assert all(m.mid != non_mid for m in raw.stray)


async def test_a_duplicate_con_notification_is_delivered_once(
    server: LwM2MServer, raw: RawClient
) -> None:
    """RFC 7252 §4.5: a retransmitted CON (same Message ID) is acknowledged again but
    processed once."""
    async with asyncio.timeout(TIMEOUT):
        request, handle = await observe_text(server, raw)
        message = notification(request.token, 11, 70, confirmable=True)
        await raw.send_and_wait(message)
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        raw.replies[message.mid] = waiter
        raw.send(message)  # the retransmission, same Message ID
        again = await waiter
        send_non(raw, notification(request.token, 12, 71))
        values = [(await anext(handle)).content for _ in range(2)]
    assert again.mtype == MessageType.ACK
    assert values == [SingleResource(9, INT, 70), SingleResource(9, INT, 71)]


# -- Reset and cancellation (RFC 7641 §3.6; Core §6.4.2, §6.4.4) ---------------------------------


async def test_a_con_notification_with_an_unknown_token_is_reset(
    server: LwM2MServer, raw: RawClient
) -> None:
    """RFC 7641 §3.6 / RFC 7252 §4.2: a confirmable notification the server cannot match to
    an observation is rejected with a Reset of the same Message ID."""
    async with asyncio.timeout(TIMEOUT):
        message = notification(b"\xde\xad", 5, 1, confirmable=True)
        answer = await raw.send_and_wait(message)
    assert answer.mtype == MessageType.RST
    assert answer.mid == message.mid


async def test_reactive_cancel_forgets_and_resets_the_next_notification(
    server: LwM2MServer, raw: RawClient
) -> None:
    """RFC 7641 §3.6 (Core §6.4.2, ref §1.1 "RST in reply to a Notify"): cancelling
    reactively sends nothing; the record is removed and the client's next notification is
    answered with a Reset."""
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            request, handle = await observe_text(server, raw)
            await handle.cancel(proactive=False)
            ended = await events.wait_for(ObservationEnded)
            assert await server.observations("raw") == []
            answer = await raw.send_and_wait(notification(request.token, 11, 1, confirmable=True))
    assert ended.reason == "cancelled"
    assert not handle.active
    assert answer.mtype == MessageType.RST
    assert raw.requests.empty()  # no GET Observe=1 was sent


async def test_proactive_cancel_is_a_get_with_observe_1_and_the_same_token(
    server: LwM2MServer, raw: RawClient
) -> None:
    """RFC 7641 §3.6 / Core §6.4.2 (ref §1.1 "Cancel = GET with Observe=1 and the same
    token"): a GET on the same path, with the same token, Observe 1 and the same Accept; the
    client's 2.05 completes it, the record is removed and later notifications are reset."""
    async with asyncio.timeout(TIMEOUT):
        request, handle = await observe_text(server, raw)
        cancel, task = await exchange(raw, handle.cancel(), text_reply(87, None))
        task.result()
        records = await server.observations("raw")
        answer = await raw.send_and_wait(notification(request.token, 11, 1, confirmable=True))
    assert cancel.code == Code.GET
    assert cancel.mtype == MessageType.CON
    assert cancel.observe == 1
    assert cancel.token == request.token
    assert cancel.uri_path == request.uri_path
    assert cancel.accept == request.accept
    assert records == []
    assert not handle.active
    assert answer.mtype == MessageType.RST


async def test_proactive_cancel_of_observe_composite_is_a_fetch_with_observe_1(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.4.4 (ref §1.1 "Cancel-Composite = FETCH with Observe=1 and the same list",
    Leshan): FETCH ``/``, Observe 1, the same token and the same path-list body."""
    cf = ContentFormat.SENML_JSON
    values = {Path(3, 0, 9): SingleResource(9, INT, 87)}
    reply = composite_codec_for(cf).encode_nodes(values, MODEL)
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw,
            server.observe_composite("raw", ["/3/0/9"], content_format=cf, accept=cf),
            Message(Code.CONTENT, reply, content_format=int(cf), observe=1),
        )
        handle: ObservationHandle = task.result()
        cancel, done = await exchange(
            raw, handle.cancel(), Message(Code.CONTENT, reply, content_format=int(cf))
        )
        done.result()
        assert await server.observations("raw") == []
    assert cancel.code == Code.FETCH
    assert cancel.observe == 1
    assert cancel.token == request.token
    assert cancel.uri_path == ()
    assert cancel.content_format == request.content_format
    assert cancel.payload == request.payload


@pytest.mark.parametrize(
    "ending",
    [
        Message(Code.NOT_FOUND, b"gone"),
        Message(Code.CONTENT, b"5", content_format=0),  # 2.05 without Observe
    ],
    ids=["4.04", "2.05-without-observe"],
)
async def test_a_final_response_from_the_client_ends_the_observation(
    server: LwM2MServer, raw: RawClient, ending: Message
) -> None:
    """RFC 7641 §3.2 / §4.2: a notification with an error code, or a response without the
    Observe option, tells the observer it is no longer on the list: the observation ends
    (ObservationEnded), its record is removed and the handle stops."""
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            request, handle = await observe_text(server, raw)
            message = ending.copy()
            message.token = request.token
            await raw.send_and_wait(message)
            ended = await events.wait_for(ObservationEnded)
            assert [n async for n in handle] == []
            assert await server.observations("raw") == []
    assert ended.observation.token == request.token
    assert not handle.active


# -- timestamped notifications (Core §7.4.4 / §7.4.5 SenML; RFC 8428 §4.5.3) ---------------------


def senml_notification(token: bytes, seq: int, records: list[dict[str, Any]]) -> Message:
    message = Message(
        Code.CONTENT, json.dumps(records).encode(), token=token, content_format=110, observe=seq
    )
    return message


async def test_a_notification_with_one_timestamp_is_delivered(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §7.4.4 SenML JSON / RFC 8428 §4.5.3: bt + t give the time of a value (absolute
    when ≥ 2^28); a notification whose records share one time is the current value."""
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw,
            server.observe("raw", "/3/0/9", accept=ContentFormat.SENML_JSON),
            senml_notification(b"", 1, [{"bn": "/3/0/9", "bt": 1_700_000_000, "v": 87}]),
        )
        handle: ObservationHandle = task.result()
        records = [{"bn": "/3/0/", "bt": 1_700_000_100, "n": "9", "v": 12}]
        await raw.send_and_wait(senml_notification(request.token, 2, records))
        assert (await anext(handle)).content == SingleResource(9, INT, 12)


async def test_a_historical_notification_is_not_dropped(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §7.4.4 (SenML time values; historical notifications, ref §1.4 "Send and historical
    notifications carry timestamps"): a notification carrying several timestamped values of
    the observed resource reaches the caller (it is not skipped as undecodable)."""
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw,
            server.observe("raw", "/3/0/9", accept=ContentFormat.SENML_JSON),
            senml_notification(b"", 1, [{"n": "/3/0/9", "v": 87}]),
        )
        handle: ObservationHandle = task.result()
        history: list[dict[str, Any]] = [
            {"bn": "/3/0/9", "bt": 1_700_000_000, "v": 50},
            {"t": 60, "v": 40},
            {"t": 120, "v": 30},
        ]
        await raw.send_and_wait(senml_notification(request.token, 2, history))
        await raw.send_and_wait(senml_notification(request.token, 3, [{"n": "/3/0/9", "v": 20}]))
        first = await anext(handle)
        after = await anext(handle)
    assert first.content == SingleResource(9, INT, 30)  # the newest of the stored values
    assert first.history is not None
    assert [(g.timestamp, g.nodes[Path(3, 0, 9)]) for g in first.history] == [
        (1_700_000_000, SingleResource(9, INT, 50)),
        (1_700_000_060, SingleResource(9, INT, 40)),
        (1_700_000_120, SingleResource(9, INT, 30)),
    ]
    assert after.content == SingleResource(9, INT, 20)
    assert after.history is None


# -- Observe-Composite notifications (Core §6.4.3) -----------------------------------------------


async def test_observe_composite_notifications_carry_every_observed_path(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.4.3: each notification of an Observe-Composite holds the values of the observed
    paths; one naming a path that was not observed does not fit the observation and is not
    delivered, later ones still are."""
    cf = ContentFormat.SENML_JSON
    paths = [Path(3, 0, 9), Path(3, 0, 0)]
    codec = composite_codec_for(cf)

    def body(battery: int) -> bytes:
        values = {
            Path(3, 0, 9): SingleResource(9, INT, battery),
            Path(3, 0, 0): SingleResource(0, STR, "A"),
        }
        return codec.encode_nodes(values, MODEL)

    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw,
            server.observe_composite("raw", paths, content_format=cf, accept=cf),
            Message(Code.CONTENT, body(87), content_format=110, observe=1),
        )
        handle: ObservationHandle = task.result()
        stray = [{"n": "/5/0/1", "vs": "coap://x"}]
        await raw.send_and_wait(senml_notification(request.token, 2, stray))
        update = Message(Code.CONTENT, body(61), token=request.token, content_format=110, observe=3)
        await raw.send_and_wait(update)
        received = await anext(handle)
    assert received.composite is not None
    assert dict(received.composite) == {
        Path(3, 0, 9): SingleResource(9, INT, 61),
        Path(3, 0, 0): SingleResource(0, STR, "A"),
    }


# -- observation records per registration (Core §6.2.1, §6.2.2, §6.2.3, §6.4) --------------------


async def test_observations_belong_to_their_registration(server: LwM2MServer) -> None:
    """Core §6.4 / ref §1.1: observations are kept per registration; a new Register of one
    client (Core §6.2.1, ref §1.1 "a server must re-establish its observations after every
    Register") ends that client's observations only, and its old token is then unknown
    (Reset, RFC 7641 §3.6) while the other client's notifications still arrive."""
    a = await registered_raw(server, "a", links=ALL_FORMATS)
    b = await registered_raw(server, "b", links=ALL_FORMATS)
    try:
        async with asyncio.timeout(TIMEOUT):
            request_a, handle_a = await observe_text(server, a, endpoint="a")
            request_b, handle_b = await observe_text(server, b, endpoint="b")
            assert [r.token for r in await server.observations("a")] == [request_a.token]
            assert [r.token for r in await server.observations("b")] == [request_b.token]
            await a.register("a", links=ALL_FORMATS)  # registers again
            assert await server.observations("a") == []
            assert [r.token for r in await server.observations("b")] == [request_b.token]
            reset = await a.send_and_wait(notification(request_a.token, 11, 1, confirmable=True))
            await b.send_and_wait(notification(request_b.token, 11, 2, confirmable=True))
            assert (await anext(handle_b)).content == SingleResource(9, INT, 2)
        assert reset.mtype == MessageType.RST
        assert not handle_a.active
        assert handle_a.end_reason == "client registered again"
        assert handle_b.active
    finally:
        a.close()
        b.close()


async def test_an_update_keeps_the_observations(server: LwM2MServer, raw: RawClient) -> None:
    """Core §6.2.2: Update refreshes the registration; unlike a Register it does not end the
    observations (they are re-established only after a Register, ref §1.1)."""
    async with asyncio.timeout(TIMEOUT):
        request, handle = await observe_text(server, raw)
        update = Message(Code.POST, uri_path=raw.location, uri_query=["lt=600"])
        assert (await raw.call(update)).code == Code.CHANGED
        assert [r.token for r in await server.observations("raw")] == [request.token]
        answer = await raw.send_and_wait(notification(request.token, 11, 9, confirmable=True))
        assert (await anext(handle)).content == SingleResource(9, INT, 9)
    assert answer.mtype == MessageType.ACK


async def test_a_deregister_drops_the_observations(server: LwM2MServer, raw: RawClient) -> None:
    """Core §6.2.3: De-register ends the registration and with it its observations: the
    Deregistered event lists them, the handle ends and a later notification is reset
    (RFC 7641 §3.6)."""
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            request, handle = await observe_text(server, raw)
            gone = await raw.call(Message(Code.DELETE, uri_path=raw.location))
            assert gone.code == Code.DELETED
            event = await events.wait_for(Deregistered)
            assert [n async for n in handle] == []
            reset = await raw.send_and_wait(notification(request.token, 11, 1, confirmable=True))
    assert [o.token for o in event.observations] == [request.token]
    assert not handle.active
    assert reset.mtype == MessageType.RST
    assert await server.registration("raw") is None
