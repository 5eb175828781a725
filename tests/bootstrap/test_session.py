"""The bootstrap session's task list and its outcomes, sans-IO (LwM2M-TS-Core §5.2.7, §6.1.7)."""

from __future__ import annotations

import pytest

from lwm2m.bootstrap.config import (
    BootstrapConfig,
    ObjectWrite,
    Secret,
    SecurityInstance,
    SecurityMode,
    ServerInstance,
)
from lwm2m.bootstrap.session import (
    BootstrapFailed,
    BootstrapFinished,
    BootstrapSession,
    BootstrapStarted,
    BootstrapStep,
    SessionState,
    write_format,
)
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Link
from lwm2m.errors import LocalProtocolError
from lwm2m.model import Path, ResourceType, SingleResource
from lwm2m.model.registry import default_registry
from lwm2m.operations.requests import (
    BootstrapDelete,
    BootstrapDiscover,
    BootstrapFinish,
    BootstrapWrite,
)
from lwm2m.operations.responses import Response

KEY = Secret(bytes(range(16)))


def config(**kwargs: object) -> BootstrapConfig:
    values: dict[str, object] = {
        "security": (
            SecurityInstance(
                1,
                "coaps://lwm2m.example.org",
                mode=SecurityMode.PSK,
                public_key_or_identity=b"dev1",
                secret_key=KEY,
                short_server_id=101,
            ),
        ),
        "servers": (ServerInstance(0, 101, lifetime=300),),
    }
    values.update(kwargs)
    return BootstrapConfig(**values)  # type: ignore[arg-type]


def events(session: BootstrapSession) -> list[object]:
    out = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


def run(session: BootstrapSession, answer: dict[type, int] | None = None) -> list[object]:
    """Answer every request (2.xx unless ``answer`` says otherwise); the events seen."""
    answer = answer or {}
    seen = events(session)
    while requests := session.requests_to_send():
        (request,) = requests
        assert session.requests_to_send() == []  # one at a time
        code = answer.get(type(request))
        if code is None:
            code = Code.DELETED if isinstance(request, BootstrapDelete) else Code.CHANGED
            if isinstance(request, BootstrapDiscover):
                code = Code.CONTENT
        links = (Link("/", {"lwm2m": "1.1"}), Link("/0/0")) if code == Code.CONTENT else None
        session.receive_response(Response(code, links=links, diagnostic="why"))
        seen.extend(events(session))
    return seen


def test_the_task_list_in_order() -> None:
    extra = ObjectWrite(Path(3, 0, 14), SingleResource(14, ResourceType.STRING, "+01"))
    session = BootstrapSession("dev1", config(writes=(extra,), discover=True))
    assert [type(t) for t in session.tasks] == [
        BootstrapDiscover,
        BootstrapDelete,
        BootstrapWrite,
        BootstrapWrite,
        BootstrapWrite,
        BootstrapFinish,
    ]
    seen = run(session)
    started = seen[0]
    assert isinstance(started, BootstrapStarted)
    assert started.steps == (
        "discover /",
        "delete /",
        "write /0/1",
        "write /1/0",
        "write /3/0/14",
        "finish",
    )
    steps = [e for e in seen if isinstance(e, BootstrapStep)]
    assert [(s.index, s.operation, s.dotted_code) for s in steps] == [
        (0, "discover", "2.05"),
        (1, "delete", "2.02"),
        (2, "write", "2.04"),
        (3, "write", "2.04"),
        (4, "write", "2.04"),
        (5, "finish", "2.04"),
    ]
    assert all(s.ok for s in steps)
    assert steps[0].links is not None
    assert session.discovered == steps[0].links
    assert isinstance(seen[-1], BootstrapFinished)
    assert session.state is SessionState.SUCCEEDED
    assert session.current is None
    assert session.requests_to_send() == []


def test_events_never_carry_written_values() -> None:
    session = BootstrapSession("dev1", config())
    seen = run(session)
    assert KEY.reveal().hex() not in repr(seen)
    assert repr(KEY.reveal()) not in repr(seen)


def test_failed_discover_and_delete_are_reported_and_skipped() -> None:
    session = BootstrapSession("dev1", config(discover=True))
    seen = run(session, {BootstrapDiscover: Code.NOT_FOUND, BootstrapDelete: Code.BAD_REQUEST})
    steps = [e for e in seen if isinstance(e, BootstrapStep)]
    assert [(s.operation, s.ok) for s in steps[:2]] == [("discover", False), ("delete", False)]
    assert session.state is SessionState.SUCCEEDED
    assert session.discovered is None


def test_a_failed_write_ends_the_session_without_finish() -> None:
    session = BootstrapSession("dev1", config(delete=()))
    seen = run(session, {BootstrapWrite: Code.BAD_REQUEST})
    failed = seen[-1]
    assert isinstance(failed, BootstrapFailed)
    assert failed.reason == "write /0/1 answered 4.00 (why)"
    assert failed.step == 0
    assert session.state is SessionState.FAILED
    sent = [e.operation for e in seen if isinstance(e, BootstrapStep)]
    assert sent == ["write"]


def test_a_rejected_finish_fails_the_session() -> None:
    session = BootstrapSession("dev1", config())
    seen = run(session, {BootstrapFinish: Code.NOT_ACCEPTABLE})
    failed = seen[-1]
    assert isinstance(failed, BootstrapFailed)
    assert failed.reason.startswith("finish answered 4.06")


def test_no_answer_fails_the_session() -> None:
    session = BootstrapSession("dev1", config())
    events(session)
    session.requests_to_send()
    session.request_failed("RequestTimeout")
    step, failed = events(session)
    assert isinstance(step, BootstrapStep)
    assert (step.code, step.error, step.dotted_code, step.ok) == (
        None,
        "RequestTimeout",
        None,
        False,
    )
    assert isinstance(failed, BootstrapFailed)
    assert failed.reason == "delete /: RequestTimeout"
    with pytest.raises(LocalProtocolError):
        session.request_failed("again")


def test_abort() -> None:
    session = BootstrapSession("dev1", config())
    events(session)
    session.requests_to_send()
    session.abort("replaced")
    (failed,) = events(session)
    assert isinstance(failed, BootstrapFailed)
    assert failed.reason == "replaced"
    session.abort("twice")
    assert events(session) == []
    with pytest.raises(LocalProtocolError):
        session.receive_response(Response(Code.CHANGED))


@pytest.mark.parametrize(
    ("configured", "preferred", "expected"),
    [
        (None, None, ContentFormat.TLV),
        (None, ContentFormat.SENML_CBOR, ContentFormat.SENML_CBOR),
        (None, ContentFormat.TEXT, ContentFormat.TLV),  # cannot carry instances
        (None, ContentFormat.LWM2M_CBOR, ContentFormat.TLV),  # 1.2 only
        (ContentFormat.JSON, ContentFormat.SENML_CBOR, ContentFormat.JSON),
    ],
)
def test_write_format(
    configured: ContentFormat | None, preferred: ContentFormat | None, expected: ContentFormat
) -> None:
    chosen = write_format(config(content_format=configured), preferred)
    assert chosen is expected
    session = BootstrapSession("d", config(content_format=configured), preferred_format=preferred)
    writes = [t for t in session.tasks if isinstance(t, BootstrapWrite)]
    assert {w.content_format for w in writes} == {expected}


# -- writes fitted to the object versions a Bootstrap-Discover reports --------------------------


def fitted_writes(links: tuple[Link, ...] | None, **kwargs: object) -> list[object]:
    """Run a session whose Discover answers ``links`` (None: the Discover fails, 4.04); the
    Bootstrap-Writes it sent and its write steps."""
    session = BootstrapSession("dev1", config(discover=True, **kwargs), registry=default_registry())
    sent: list[object] = []
    while requests := session.requests_to_send():
        (request,) = requests
        if isinstance(request, BootstrapDiscover):
            code = Code.CONTENT if links is not None else Code.NOT_FOUND
            session.receive_response(Response(code, links=links))
            continue
        if isinstance(request, BootstrapWrite):
            sent.append(request)
        session.receive_response(Response(Code.CHANGED))
    steps = [e for e in events(session) if isinstance(e, BootstrapStep)]
    return sent + [s for s in steps if s.operation == "write"]


ONE_OH = (Link("/", {"lwm2m": "1.0"}), Link("/0/1"), Link("/1/0"), Link("/3/0"))


def test_writes_leave_out_what_the_clients_object_version_lacks() -> None:
    """A 1.0 client (no ``ver``: object version 1.0) gets /1/0 without 1.1's Mute Send
    (/1/x/23), and the step names what was left out; the Security instance loses nothing."""
    servers = (ServerInstance(0, 101, lifetime=300, mute_send=False),)
    security_write, server_write, security_step, server_step = fitted_writes(
        ONE_OH, servers=servers
    )
    assert isinstance(security_write, BootstrapWrite)
    assert isinstance(server_write, BootstrapWrite)
    assert security_write.node == config().security[0].to_instance()
    assert set(server_write.node.resources) == {0, 1, 6, 7}  # type: ignore[union-attr]
    assert isinstance(security_step, BootstrapStep)
    assert isinstance(server_step, BootstrapStep)
    assert security_step.omitted == ()
    assert server_step.omitted == (Path(1, 0, 23),)
    assert server_step.ok


@pytest.mark.parametrize(
    "links",
    [
        (Link("/", {"lwm2m": "1.1"}), Link("/1", {"ver": "1.1"}), Link("/1/0")),
        None,  # the Discover failed: nothing is known, the writes go as configured
        (Link("/1", {"ver": "9.9"}), Link("/1/0")),  # a version the registry lacks
    ],
)
def test_writes_go_as_configured_when_the_version_has_them_or_is_unknown(
    links: tuple[Link, ...] | None,
) -> None:
    servers = (ServerInstance(0, 101, lifetime=300, mute_send=False),)
    _, server_write, _, server_step = fitted_writes(links, servers=servers)
    assert isinstance(server_write, BootstrapWrite)
    assert 23 in server_write.node.resources  # type: ignore[union-attr]
    assert isinstance(server_step, BootstrapStep)
    assert server_step.omitted == ()


def test_a_failed_fitted_write_still_names_what_it_left_out() -> None:
    servers = (ServerInstance(0, 101, lifetime=300, mute_send=False),)
    session = BootstrapSession(
        "dev1", config(discover=True, servers=servers), registry=default_registry()
    )
    answers = iter(
        [Response(Code.CONTENT, links=ONE_OH), Response(Code.DELETED), Response(Code.CHANGED)]
    )
    while True:
        (request,) = session.requests_to_send()
        if isinstance(request, BootstrapWrite) and request.path == Path(1, 0):
            session.request_failed("timeout")
            break
        session.receive_response(next(answers))
    (step,) = [e for e in events(session) if isinstance(e, BootstrapStep) and e.error]
    assert step.omitted == (Path(1, 0, 23),)
    assert session.state is SessionState.FAILED
