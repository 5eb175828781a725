"""Spec-conformance campaign: the bootstrap server against LwM2M 1.1 Core / Transport rules.

Each test names the rule it checks (OMA-TS-LightweightM2M_Core-V1_1_1 "Core §x",
OMA-TS-LightweightM2M_Transport-V1_1_1 "Transport §x", and the reference notes in
``/work/shared/reference/spec-reference.md`` "ref §x"). The task list is driven sans-IO
(:class:`BootstrapSession`); the Bootstrap-Request handling goes through
``BootstrapServer.handle_bootstrap_request``, and whole sessions run over loopback sockets as the
other bootstrap tests do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from lwm2m.bootstrap.config import (
    AclInstance,
    BootstrapConfig,
    ObjectWrite,
    Secret,
    SecurityInstance,
    SecurityMode,
    ServerInstance,
)
from lwm2m.bootstrap.session import (
    BootstrapEvent,
    BootstrapFailed,
    BootstrapFinished,
    BootstrapSession,
    BootstrapStarted,
    BootstrapStep,
    BootstrapTask,
    SessionState,
)
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import parse_links
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest, Site
from lwm2m.io.lwm2m_bootstrap import BootstrapServer
from lwm2m.model import ObjectInstance, Path, ResourceType, SingleResource
from lwm2m.model.path import ROOT
from lwm2m.model.registry import default_registry
from lwm2m.operations.coap_mapping import decode_downlink, encode_request
from lwm2m.operations.requests import (
    BootstrapDelete,
    BootstrapDiscover,
    BootstrapFinish,
    BootstrapWrite,
)
from lwm2m.operations.responses import Response
from lwm2m.server.security import PeerIdentity, SecurityInfo
from lwm2m.store.memory import MemorySecurityStore

MODEL = default_registry()
KEY = Secret(bytes(range(16)))
EP = "urn:dev:campaign-1"
ADDRESS = ("192.0.2.20", 42000)
TIMEOUT = 10

SECURITY = SecurityInstance(
    1,
    "coaps://lwm2m.example.org:5684",
    mode=SecurityMode.PSK,
    public_key_or_identity=EP.encode(),
    secret_key=KEY,
    short_server_id=101,
)
SERVER = ServerInstance(0, 101, lifetime=300, mute_send=False)
ACL = AclInstance(0, 3, 0, {101: 1}, owner=101)
EXTRA = ObjectWrite(Path(3, 0, 14), SingleResource(14, ResourceType.STRING, "+01:00"))


def full_config(**kwargs: Any) -> BootstrapConfig:
    values: dict[str, Any] = {
        "security": (SECURITY,),
        "servers": (SERVER,),
        "acls": (ACL,),
        "writes": (EXTRA,),
        "delete": (ROOT,),
        "discover": True,
    }
    values.update(kwargs)
    return BootstrapConfig(**values)


def drain(session: BootstrapSession) -> list[BootstrapEvent]:
    out: list[BootstrapEvent] = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


def success_for(task: BootstrapTask) -> Response:
    match task:
        case BootstrapDiscover():
            return Response(Code.CONTENT, links=tuple(parse_links('</>;lwm2m="1.1",</1>;ver=1.1')))
        case BootstrapDelete():
            return Response(Code.DELETED)
    return Response(Code.CHANGED)


def run(
    session: BootstrapSession, answers: dict[type, Response] | None = None
) -> list[BootstrapTask]:
    """Answer every request of ``session`` (with ``answers`` per operation type, else success)
    until it ends; returns the requests in the order they were handed out."""
    sent: list[BootstrapTask] = []
    while requests := session.requests_to_send():
        assert len(requests) == 1  # one request at a time
        (task,) = requests
        assert session.requests_to_send() == []  # nothing more while it is in flight
        sent.append(task)
        answer = (answers or {}).get(type(task))
        session.receive_response(answer if answer is not None else success_for(task))
    return sent


# -- Bootstrap-Request (Core §6.1 / Transport §6.1 Table "Bootstrap Interface") --------------


def bs_request(query: list[str]) -> Message:
    return Message(Code.POST, uri_path="/bs", uri_query=query)


async def test_unknown_endpoint_is_4_00_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Transport §6.1 response codes: Bootstrap-Request 4.00 Bad Request = "Unknown Endpoint
    Client Name" (not 4.04); the server starts no session."""
    server = BootstrapServer(configs={EP: full_config()})
    with caplog.at_level(logging.WARNING, logger="lwm2m.bootstrap"):
        answer = await server.handle_bootstrap_request(bs_request(["ep=stranger"]), ADDRESS, None)
    assert answer.code == Code.BAD_REQUEST
    assert "'stranger'" in caplog.text
    assert server.session("stranger") is None


@pytest.mark.parametrize("query", [[], ["ep="], ["pct=110"]])
async def test_bootstrap_request_without_endpoint_name_is_4_00(query: list[str]) -> None:
    """Transport §6.1: the Bootstrap-Request is ``POST /bs?ep={Endpoint Client Name}``; without
    it the request is a bad request."""
    server = BootstrapServer(configs={EP: full_config()})
    answer = await server.handle_bootstrap_request(bs_request(query), ADDRESS, None)
    assert answer.code == Code.BAD_REQUEST


async def test_unsupported_preferred_content_format_is_4_15() -> None:
    """Transport 1.1 §6.1 Table "Bootstrap Interface": Bootstrap-Request failures are 4.00 and
    4.15 Unsupported content format (``pct`` the server does not know)."""
    server = BootstrapServer(configs={EP: full_config()})
    answer = await server.handle_bootstrap_request(bs_request([f"ep={EP}", "pct=9"]), ADDRESS, None)
    assert answer.code == Code.UNSUPPORTED_CONTENT_FORMAT
    malformed = await server.handle_bootstrap_request(
        bs_request([f"ep={EP}", "pct=abc"]), ADDRESS, None
    )
    assert malformed.code == Code.BAD_REQUEST


@pytest.mark.parametrize(
    ("pct", "expected"),
    [
        (None, ContentFormat.TLV),
        (ContentFormat.TLV, ContentFormat.TLV),
        (ContentFormat.SENML_JSON, ContentFormat.SENML_JSON),
        (ContentFormat.SENML_CBOR, ContentFormat.SENML_CBOR),
        (ContentFormat.JSON, ContentFormat.JSON),
        (ContentFormat.TEXT, ContentFormat.TLV),  # cannot carry object instances
        (ContentFormat.CBOR, ContentFormat.TLV),
    ],
)
def test_preferred_content_format_drives_the_writes(
    pct: ContentFormat | None, expected: ContentFormat
) -> None:
    """Core 1.1 §6.1 Bootstrap-Request ``pct`` (ref §1.1): the client's preferred format for
    the bootstrap writes; one that cannot carry object instances falls back to TLV, which
    every client supports."""
    session = BootstrapSession(EP, full_config(discover=False), preferred_format=pct)
    writes = [t for t in run(session) if isinstance(t, BootstrapWrite)]
    assert writes
    assert {w.content_format for w in writes} == {expected}
    for write in writes:
        assert encode_request(write, MODEL).content_format == int(expected)


def test_configured_format_overrides_pct() -> None:
    """Core 1.1 §6.1: ``pct`` is a preference; the operator's configured format wins."""
    config = full_config(content_format=ContentFormat.TLV)
    session = BootstrapSession(EP, config, preferred_format=ContentFormat.SENML_CBOR)
    assert session.content_format is ContentFormat.TLV


# -- the task list (Core §5.2.7 / §6.1.7, Transport §6.1) ---------------------------------------


def test_task_order_discover_delete_writes_finish() -> None:
    """Core §5.2.7 / Transport §6.1: after the 2.04 the Bootstrap-Server may Discover, Delete
    ("/" for initialisation, before the Writes), Write, and MUST end with Bootstrap-Finish
    once everything is written; one request at a time."""
    config = full_config(delete=(ROOT, Path(5)))
    session = BootstrapSession(EP, config, registry=MODEL)
    sent = run(session)
    assert [type(t).__name__ for t in sent] == [
        "BootstrapDiscover",
        "BootstrapDelete",
        "BootstrapDelete",
        "BootstrapWrite",
        "BootstrapWrite",
        "BootstrapWrite",
        "BootstrapWrite",
        "BootstrapFinish",
    ]
    paths = [getattr(t, "path", None) for t in sent]
    assert paths == [ROOT, ROOT, Path(5), Path(0, 1), Path(1, 0), Path(2, 0), Path(3, 0, 14), None]
    assert session.state is SessionState.SUCCEEDED
    assert isinstance(drain(session)[-1], BootstrapFinished)


def test_bootstrap_messages_map_to_the_transport_table() -> None:
    """Transport §6.1 Table "Bootstrap Interface": Discover = GET Accept
    application/link-format; Delete = DELETE (``/`` allowed); Write = PUT with a
    Content-Format; Finish = POST ``/bs`` with an empty payload; all confirmable."""
    session = BootstrapSession(EP, full_config(), registry=MODEL)
    messages = [encode_request(task, MODEL) for task in run(session)]
    discover, delete, write, *_, finish = messages
    assert (discover.code, discover.uri_path, discover.accept) == (Code.GET, (), 40)
    assert (delete.code, delete.uri_path, delete.payload) == (Code.DELETE, (), b"")
    assert (write.code, write.uri_path) == (Code.PUT, ("0", "1"))
    assert write.content_format == int(ContentFormat.TLV)
    assert write.payload
    assert (finish.code, finish.uri_path, finish.payload) == (Code.POST, ("bs",), b"")
    assert all(m.mtype == 0 for m in messages)  # CON
    # The client side of the mapping reads them back as the bootstrap operations.
    kinds = [type(decode_downlink(m, MODEL, from_bootstrap_server=True)) for m in messages[:3]]
    assert kinds == [BootstrapDiscover, BootstrapDelete, BootstrapWrite]


def test_every_step_is_reported() -> None:
    """Core §5.2.7 (the Bootstrap-Server decides on each response): each task's outcome is
    reported — operation, path, the client's code — then the session's result."""
    session = BootstrapSession(EP, full_config(), registry=MODEL)
    sent = run(session)
    events = drain(session)
    started, *steps, finished = events
    assert isinstance(started, BootstrapStarted)
    assert started.steps == (
        "discover /",
        "delete /",
        "write /0/1",
        "write /1/0",
        "write /2/0",
        "write /3/0/14",
        "finish",
    )
    assert isinstance(finished, BootstrapFinished)
    assert len(steps) == len(sent)
    assert all(isinstance(s, BootstrapStep) and s.ok for s in steps)
    codes = [s.dotted_code for s in steps if isinstance(s, BootstrapStep)]
    assert codes == ["2.05", "2.02", "2.04", "2.04", "2.04", "2.04", "2.04"]
    assert [s.index for s in steps if isinstance(s, BootstrapStep)] == list(range(7))
    discover = steps[0]
    assert isinstance(discover, BootstrapStep)
    assert discover.links is not None
    assert [link.uri for link in discover.links] == ["/", "/1"]


def test_finish_answered_4_06_fails_the_session() -> None:
    """Core §6.1.7.6 / Transport §6.1 response codes: Bootstrap-Finish 4.06 Not Acceptable =
    "Inconsistent loaded configuration": the bootstrap did not succeed, and it is reported."""
    session = BootstrapSession(EP, full_config(discover=False))
    sent = run(session, {BootstrapFinish: Response(Code.NOT_ACCEPTABLE, diagnostic="no ssid")})
    assert isinstance(sent[-1], BootstrapFinish)
    assert session.state is SessionState.FAILED
    events = drain(session)
    step, failed = events[-2:]
    assert isinstance(step, BootstrapStep)
    assert (step.operation, step.dotted_code, step.ok) == ("finish", "4.06", False)
    assert isinstance(failed, BootstrapFailed)
    assert "4.06" in failed.reason
    assert "no ssid" in failed.reason
    assert failed.step == len(sent) - 1
    assert not any(isinstance(e, BootstrapFinished) for e in events)


def test_finish_answered_4_00_fails_the_session() -> None:
    """Transport §6.1 response codes: Bootstrap-Finish 4.00 Bad Request is a failure too."""
    session = BootstrapSession(EP, full_config(discover=False))
    run(session, {BootstrapFinish: Response(Code.BAD_REQUEST)})
    assert session.state is SessionState.FAILED
    failed = drain(session)[-1]
    assert isinstance(failed, BootstrapFailed)
    assert failed.reason == "finish answered 4.00"


def test_failed_discover_and_delete_are_reported_and_the_session_goes_on() -> None:
    """Transport §6.1: Discover 4.04 / Delete 4.00 are the client's answers to optional
    preparatory steps; they are reported and the writes and the Finish still go out."""
    session = BootstrapSession(EP, full_config(), registry=MODEL)
    sent = run(
        session,
        {
            BootstrapDiscover: Response(Code.NOT_FOUND),
            BootstrapDelete: Response(Code.BAD_REQUEST),
        },
    )
    assert isinstance(sent[-1], BootstrapFinish)
    assert session.state is SessionState.SUCCEEDED
    steps = [e for e in drain(session) if isinstance(e, BootstrapStep)]
    assert [(s.operation, s.dotted_code) for s in steps[:2]] == [
        ("discover", "4.04"),
        ("delete", "4.00"),
    ]


def test_a_failed_write_ends_the_session_without_finish() -> None:
    """Core §5.2.7: the Bootstrap-Server sends Bootstrap-Finish "after it has sent all object
    instances"; when a write is refused the configuration is incomplete, so no Finish is sent
    (the client discards the partial configuration) and the failure names the write."""
    session = BootstrapSession(EP, full_config(discover=False))
    sent = run(session, {BootstrapWrite: Response(Code.BAD_REQUEST)})
    assert not any(isinstance(t, BootstrapFinish) for t in sent)
    assert session.state is SessionState.FAILED
    failed = drain(session)[-1]
    assert isinstance(failed, BootstrapFailed)
    assert failed.reason == "write /0/1 answered 4.00"


def test_no_answer_is_reported_as_a_failed_step() -> None:
    """Core §5.2.7: a request the client never answers fails the bootstrap; the step is
    reported without a code but with the error."""
    session = BootstrapSession(EP, full_config(discover=False))
    (task,) = session.requests_to_send()
    assert isinstance(task, BootstrapDelete)
    session.request_failed("RequestTimeout")
    events = drain(session)
    step, failed = events[-2:]
    assert isinstance(step, BootstrapStep)
    assert (step.code, step.error, step.ok) == (None, "RequestTimeout", False)
    assert isinstance(failed, BootstrapFailed)
    assert failed.reason == "delete /: RequestTimeout"
    assert session.requests_to_send() == []


@pytest.mark.parametrize(("links", "omitted"), [("</1>", True), ("</1>;ver=1.1", False)])
def test_writes_fit_the_object_versions_the_client_discovered(links: str, omitted: bool) -> None:
    """Core 1.1 §6.1.7.3 Bootstrap-Discover (ref §1.1: ``</>;lwm2m="1.1"``, ``ver`` on object
    links, absent = 1.0): /1/x/23 Mute Send exists in Server object 1.1 only, so a write of
    /1/0 to a client at Server 1.0 leaves it out (and the step says so)."""
    discovered = Response(Code.CONTENT, links=tuple(parse_links(f'</>;lwm2m="1.1",{links}')))
    session = BootstrapSession(EP, full_config(acls=(), writes=()), registry=MODEL)
    sent = run(session, {BootstrapDiscover: discovered})
    (server_write,) = [t for t in sent if isinstance(t, BootstrapWrite) and t.path == Path(1, 0)]
    assert isinstance(server_write.node, ObjectInstance)
    resources = server_write.node.resources
    assert (23 not in resources) is omitted
    step = next(
        e
        for e in drain(session)
        if isinstance(e, BootstrapStep) and e.operation == "write" and e.path == Path(1, 0)
    )
    assert step.omitted == ((Path(1, 0, 23),) if omitted else ())


def test_abort_ends_a_running_session() -> None:
    """A second Bootstrap-Request from the same client restarts bootstrapping (Core §5.2.7:
    the client starts over); the running session ends as failed and says why."""
    session = BootstrapSession(EP, full_config(discover=False))
    session.requests_to_send()
    session.abort("a new Bootstrap-Request arrived")
    assert session.state is SessionState.FAILED
    assert session.requests_to_send() == []
    failed = drain(session)[-1]
    assert isinstance(failed, BootstrapFailed)
    assert failed.reason == "a new Bootstrap-Request arrived"


# -- endpoint name vs authenticated identity (Transport §5.2 "Endpoint Client Name") ------------


async def test_endpoint_name_not_matching_the_identity_is_4_00_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Transport §5.2 (ref §1.6 "Endpoint binding"): the Bootstrap-Server MUST check ``ep``
    against the (D)TLS identity and answer 4.00 on a mismatch; the refusal is logged."""
    server = BootstrapServer(configs={EP: full_config()})
    with caplog.at_level(logging.WARNING):
        answer = await server.handle_bootstrap_request(
            bs_request([f"ep={EP}"]), ADDRESS, PeerIdentity.psk("someone-else")
        )
    assert answer.code == Code.BAD_REQUEST
    assert f"'{EP}'" in caplog.text
    assert "psk:someone-else" in caplog.text
    assert server.session(EP) is None


async def test_a_secured_endpoint_cannot_bootstrap_in_plain_coap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Transport §5.2: an endpoint whose security entry requires DTLS is refused (4.00,
    logged) when it comes without an authenticated identity."""
    table = MemorySecurityStore([SecurityInfo.psk(EP, EP, bytes(16))])
    server = BootstrapServer(configs={EP: full_config()}, security_store=table)
    with caplog.at_level(logging.WARNING):
        answer = await server.handle_bootstrap_request(bs_request([f"ep={EP}"]), ADDRESS, None)
    assert answer.code == Code.BAD_REQUEST
    assert "NoSec" in caplog.text
    looked_up = await server.handle_bootstrap_request(
        bs_request([f"ep={EP}"]), ADDRESS, PeerIdentity.psk("intruder")
    )
    assert looked_up.code == Code.BAD_REQUEST


# -- whole sessions over loopback ----------------------------------------------------------------


class RecordingClient:
    """A bootstrapping client on our endpoint: records every request (operation and raw
    message); ``hang`` leaves requests unanswered."""

    def __init__(self) -> None:
        self.operations: list[object] = []
        self.messages: list[Message] = []
        self.hang = False
        self.endpoint: CoapEndpoint | None = None

    async def start(self) -> None:
        site = Site()
        site.add("/", self.handle)
        self.endpoint = await CoapEndpoint.create(site=site)

    def handle(self, request: CoapRequest) -> Message | Awaitable[Message]:
        self.messages.append(request.message)
        operation = decode_downlink(request.message, MODEL, from_bootstrap_server=True)
        self.operations.append(operation)
        if self.hang:
            return self._never()
        if isinstance(operation, BootstrapDelete):
            return Message(Code.DELETED)
        if isinstance(operation, BootstrapDiscover):
            return Message(Code.CONTENT, b'</>;lwm2m="1.1",</1>;ver=1.1', content_format=40)
        return Message(Code.CHANGED)

    @staticmethod
    async def _never() -> Message:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")  # pragma: no cover

    async def bootstrap(self, server: BootstrapServer, query: list[str]) -> Message:
        assert self.endpoint is not None
        return await self.endpoint.request(bs_request(query), server.local_address)


@pytest.fixture
async def running() -> AsyncIterator[tuple[BootstrapServer, RecordingClient]]:
    server = BootstrapServer(configs={EP: full_config()})
    await server.start(("127.0.0.1", 0))
    client = RecordingClient()
    await client.start()
    try:
        yield server, client
    finally:
        assert client.endpoint is not None
        await client.endpoint.close()
        await server.stop()


async def test_a_whole_session_over_loopback(
    running: tuple[BootstrapServer, RecordingClient],
) -> None:
    """Core §5.2.7 / Transport §6.1: 2.04 to the Bootstrap-Request, then Discover, Delete,
    Writes in the ``pct`` format, Finish; every step is published."""
    server, client = running
    seen: list[BootstrapEvent] = []
    server.add_listener(seen.append)
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            answer = await client.bootstrap(server, [f"ep={EP}", "pct=112"])
            assert answer.code == Code.CHANGED
            await events.wait_for(BootstrapFinished)
    assert [type(op).__name__ for op in client.operations] == [
        "BootstrapDiscover",
        "BootstrapDelete",
        "BootstrapWrite",
        "BootstrapWrite",
        "BootstrapWrite",
        "BootstrapWrite",
        "BootstrapFinish",
    ]
    writes = [m for m in client.messages if m.code == Code.PUT]
    assert {m.content_format for m in writes} == {int(ContentFormat.SENML_CBOR)}
    steps = [e for e in seen if isinstance(e, BootstrapStep)]
    assert len(steps) == 7
    assert all(s.ok for s in steps)
    assert isinstance(seen[0], BootstrapStarted)
    assert isinstance(seen[-1], BootstrapFinished)


async def test_a_second_bootstrap_request_replaces_the_running_session(
    running: tuple[BootstrapServer, RecordingClient],
) -> None:
    """Core §5.2.7: a client that sends a new Bootstrap-Request starts bootstrapping over; the
    server answers it 2.04, ends the old session (reported as failed) and runs the new one to
    its Finish."""
    server, client = running
    client.hang = True
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            assert (await client.bootstrap(server, [f"ep={EP}"])).code == Code.CHANGED
            await events.wait_for(BootstrapStarted)
            first = server.session(EP)
            client.hang = False
            assert (await client.bootstrap(server, [f"ep={EP}"])).code == Code.CHANGED
            failed = await events.wait_for(BootstrapFailed)
            await events.wait_for(BootstrapFinished)
    assert failed.reason == "a new Bootstrap-Request arrived"
    second = server.session(EP)
    assert first is not None
    assert second is not None
    assert second is not first
    assert (first.state, second.state) == (SessionState.FAILED, SessionState.SUCCEEDED)
    assert isinstance(client.operations[-1], BootstrapFinish)
