"""Registration, Update, De-register, retries and priorities with a fake clock
(LwM2M-TS-Core 1.1 §6.2; /1/x/13-20)."""

from __future__ import annotations

import pytest

from lwm2m.client.events import (
    BootstrapStarted,
    Deregistered,
    Registered,
    RegistrationFailed,
    RegistrationUpdated,
    ServerDisabled,
    Stopped,
)
from lwm2m.client.registration import (
    TRANSITIONS,
    Registration,
    RegistrationState,
    update_delay,
)
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.codec.link import Link, decode_links
from lwm2m.errors import LocalProtocolError
from lwm2m.operations.requests import BootstrapRequest, Deregister, Register, Update

from .helpers import START, Harness, bs_table, code, config, server


def test_register_request() -> None:
    h = Harness(config(server(101, lifetime=120, binding="U"), queue_mode=True))
    h.start()
    (request,) = h.take()
    message = request.message
    assert message.code == Code.POST
    assert message.uri_path == ("rd",)
    assert message.uri_query == ("ep=test-ep", "lt=120", "lwm2m=1.1", "b=U", "Q")
    assert message.content_format == CF.LINK
    links = decode_links(message.payload)
    root = links[0]
    assert (root.uri, root.resource_types) == ("/", ("oma.lwm2m",))
    assert set(root.content_formats) >= {0, 42, 110, 112, 11542}
    uris = {link.uri: link for link in links}
    assert uris["/3"].version == "1.1"
    assert "/3/0" in uris
    assert "/0" not in uris
    assert "/0/0" not in uris
    assert request.connection.short_server_id == 101
    h.respond(request, Code.CREATED, location=("rd", "abc"))
    assert h.take_events(Registered) == [Registered(101, "/rd/abc")]


def test_update_before_lifetime_expiry() -> None:
    assert update_delay(300) == 207.0
    h = Harness(config(server(101, lifetime=300)))
    h.register_all()
    h.advance(206)
    assert h.take() == []
    h.advance(1)
    (update,) = h.take(Update)
    assert update.message.uri_path == ("rd", "r101")
    assert update.message.uri_query == ()  # nothing changed: an empty Update
    assert update.message.payload == b""
    h.respond(update)
    assert h.take_events(RegistrationUpdated) == [RegistrationUpdated(101)]
    h.advance(207)
    assert len(h.take(Update)) == 1


def test_update_trigger_and_lifetime_change() -> None:
    h = Harness()
    h.register_all()
    assert code(h.request(Code.POST, "/1/0/8")) == "2.04"
    (update,) = h.take(Update)
    h.respond(update)
    assert code(h.request(Code.PUT, "/1/0/1", payload=b"600", cf=CF.TEXT)) == "2.04"
    (update,) = h.take(Update)
    assert update.message.uri_query == ("lt=600",)
    h.respond(update)
    # the new lifetime drives the next Update: 600 - 93
    h.advance(update_delay(600) - 1)
    assert h.take() == []
    h.advance(1)
    assert len(h.take(Update)) == 1


def test_update_failure_registers_again() -> None:
    h = Harness()
    h.register_all()
    h.engine.request_update(h.now)
    (update,) = h.take(Update)
    h.respond(update, Code.NOT_FOUND)
    (failed,) = h.take_events(RegistrationFailed)
    assert failed.retry_at == h.now
    (register,) = h.take(Register)
    h.respond(register, Code.CREATED, location=("rd", "again"))
    assert h.engine.registrations[101].location == "/rd/again"


def test_retries_with_exponential_backoff_then_sequences() -> None:
    srv = server(
        101,
        retry_count=3,
        retry_timer=10,
        sequence_delay=500,
        sequence_retry_count=2,
        bootstrap_on_failure=False,
    )
    h = Harness(config(srv))
    h.start()
    times = []
    for _ in range(6):
        (register,) = h.take(Register)
        times.append(h.now - START)
        h.fail(register)
        timer = h.engine.get_timer()
        if timer is None:
            break
        h.advance(timer - h.now)
    # attempts at 0, +10, +20 (10 * 2^1), then the sequence delay 500, then +10, +20
    assert times == [0, 10, 30, 530, 540, 560]
    failures = h.take_events(RegistrationFailed)
    assert failures[-1].retry_at is None
    assert h.engine.registrations[101].state is RegistrationState.FAILED
    assert h.engine.get_timer() is None


def test_initial_registration_delay() -> None:
    h = Harness(config(server(101, initial_delay=30)))
    h.start()
    assert h.take() == []
    h.advance(30)
    assert len(h.take(Register)) == 1


def test_bootstrap_on_registration_failure() -> None:
    srv = server(101, retry_count=1, sequence_retry_count=1)
    h = Harness(config(srv, bootstrap=bs_table(hold_off=5)))
    h.start()
    (register,) = h.take(Register)
    h.fail(register)
    assert h.take_events(BootstrapStarted) == [BootstrapStarted(server_initiated=False)]
    assert h.take(BootstrapRequest) == []  # Client Hold Off Time
    h.advance(5)
    (request,) = h.take(BootstrapRequest)
    assert request.message.uri_query == ("ep=test-ep", "pct=11542")
    assert request.connection.bootstrap


def test_priority_order_and_failure_block() -> None:
    first = server(101, priority=1, retry_count=1, bootstrap_on_failure=False)
    second = server(102, priority=2, bootstrap_on_failure=False)
    free = server(103, bootstrap_on_failure=False)
    h = Harness(config(first, second, free))
    h.start()
    started = sorted(r.connection.short_server_id for r in h.take(Register))
    assert started == [101, 103]  # 102 waits for 101
    h2 = Harness(config(first, second))
    h2.start()
    (reg101,) = h2.take(Register)
    h2.respond(reg101, Code.CREATED, location=("rd", "a"))
    (reg102,) = h2.take(Register)
    assert reg102.connection.short_server_id == 102
    # failure of the first server: with failure block the second never starts
    blocked = Harness(config(dict(first, failure_block=True), second))
    blocked.start()
    (reg,) = blocked.take(Register)
    blocked.fail(reg)
    assert blocked.take(Register) == []
    unblocked = Harness(config(first, second))
    unblocked.start()
    (reg,) = unblocked.take(Register)
    unblocked.fail(reg)
    assert [r.connection.short_server_id for r in unblocked.take(Register)] == [102]


def test_two_servers_register_independently() -> None:
    h = Harness(config(server(101), server(102, lifetime=1000)))
    h.start()
    requests = h.take(Register)
    assert sorted(r.connection.short_server_id for r in requests) == [101, 102]
    for request in requests:
        h.respond(request, Code.CREATED, location=("rd", str(request.connection.short_server_id)))
    h.advance(207)
    (update,) = h.take(Update)
    assert update.connection.short_server_id == 101


def test_stop_deregisters() -> None:
    h = Harness(config(server(101), server(102)))
    h.register_all()
    h.engine.stop(h.now)
    requests = h.take(Deregister)
    assert sorted(r.message.uri_path for r in requests) == [("rd", "r101"), ("rd", "r102")]
    assert all(r.message.code == Code.DELETE for r in requests)
    h.respond(requests[0], Code.DELETED)
    assert h.take_events(Stopped) == []
    h.fail(requests[1])
    assert h.take_events(Stopped) == [Stopped()]
    assert len(h.take_events(Deregistered)) == 2


def test_stop_before_registration_completes() -> None:
    """Stopped while the Register is on its way: a server that accepts it hears a De-register
    (no stale registration waits for its lifetime); Stopped follows that."""
    h = Harness()
    h.start()
    (register,) = h.take(Register)
    h.engine.stop(h.now)
    assert h.take_events(Stopped) == []
    h.respond(register, Code.CREATED, location=("rd", "late"))
    (deregister,) = h.take(Deregister)
    assert deregister.message.uri_path == ("rd", "late")
    h.respond(deregister, Code.DELETED)
    assert h.take_events(Stopped) == [Stopped()]


def test_stop_before_a_register_that_fails() -> None:
    """A refused Register after stop(): nothing to De-register, Stopped at once, no retry and
    none of the Register fallbacks (4.12 or 4.00 would resend it)."""
    for refusal in (Code.BAD_REQUEST, Code.PRECONDITION_FAILED, Code.FORBIDDEN):
        h = Harness()
        h.start()
        (register,) = h.take(Register)
        h.engine.stop(h.now)
        h.respond(register, refusal)
        assert h.take(Register) == []
        assert h.take_events(Stopped) == [Stopped()]
        h.advance(10_000)
        assert h.take() == []


def test_stop_now_gives_up_a_register_in_flight() -> None:
    h = Harness()
    h.start()
    h.take(Register)
    h.engine.stop(h.now)
    h.engine.stop_now()  # the adapter's grace ran out
    assert h.take_events(Stopped) == [Stopped()]


def test_disable_deregisters_for_the_disable_timeout() -> None:
    h = Harness(config(server(101, disable_timeout=100)))
    h.register_all()
    assert code(h.request(Code.POST, "/1/0/4")) == "2.04"
    (dereg,) = h.take(Deregister)
    assert h.take_events(ServerDisabled) == [ServerDisabled(101, h.now + 100)]
    h.respond(dereg, Code.DELETED)
    h.advance(99)
    assert h.take(Register) == []
    h.advance(1)
    assert len(h.take(Register)) == 1


def test_objects_change_sends_update_with_links() -> None:
    from lwm2m.client import SimpleObject
    from lwm2m.model.registry import default_registry

    h = Harness()
    h.register_all()
    location = SimpleObject(default_registry().get(6), {})  # type: ignore[arg-type]
    h.tree.add(location)  # a local change: the driver runs the engine (on_change)
    h.advance(0)
    (update,) = h.take(Update)
    assert "</6>" in update.message.payload.decode()
    h.respond(update)
    location.add_instance(0, {0: 1.0, 1: 2.0, 5: 0})
    h.advance(0)
    (update,) = h.take(Update)
    assert "</6/0>" in update.message.payload.decode()


def test_transition_table_is_enforced() -> None:
    registration = Registration(
        Harness().engine.accounts.get(0) or _account(), queue_mode=False, awake_time=93
    )
    assert RegistrationState.REGISTERED not in TRANSITIONS[RegistrationState.IDLE]
    with pytest.raises(LocalProtocolError):
        registration._move(RegistrationState.REGISTERED)
    # outcomes that do not fit the state are ignored
    assert registration.register_done(0, success=True, location="/rd/x") == []
    assert registration.update_done(0, success=True) == []
    assert registration.deregister_done(0) == []


def _account():  # type: ignore[no-untyped-def]
    from lwm2m.client.accounts import ServerAccount, ServerUri
    from lwm2m.client.objects.security import SecurityMode

    return ServerAccount(1, ServerUri.parse("coap://h"), False, SecurityMode.NO_SEC, 5)


def test_account_removed_and_added_at_runtime() -> None:
    h = Harness(config(server(101), server(102)))
    h.register_all()
    # 102's /1 instance is deleted (101 has no right on it: the application does it locally)
    h.tree.delete(1, 1)
    h.advance(0)
    assert sorted(h.engine.registrations) == [101]
    from lwm2m.model import ObjectInstance, ResourceType, SingleResource

    h.tree.create(
        1,
        ObjectInstance(
            1,
            [
                SingleResource(0, ResourceType.INTEGER, 102),
                SingleResource(1, ResourceType.INTEGER, 300),
                SingleResource(6, ResourceType.BOOLEAN, True),
                SingleResource(7, ResourceType.STRING, "U"),
            ],
        ).resources.values(),
        1,
        bootstrap=True,  # the Short Server ID is read-only for a DM Create
    )
    h.advance(0)
    (register,) = h.take(Register)
    assert register.connection.short_server_id == 102


# -- enabler version fallback (Core §6.2.1: a server refuses a version it does not support) -----


def test_a_4_12_to_a_1_1_register_registers_again_as_1_0() -> None:
    """A 1.0 server answers lwm2m=1.1 with 4.12 (Transport Table 6.7-2): the client registers
    again at once as 1.0, without counting a retry. The 1.0 Register has no 1.1 parts: no
    ``ct`` on the root link, and queue mode as the binding letter ``Q``, not the ``Q``
    parameter. Its Updates carry the same binding, and so does a later Register of the same
    registration (the server will not have learnt 1.1 meanwhile); a restart tries 1.1."""
    h = Harness(config(server(101, lifetime=120, binding="U"), queue_mode=True))
    h.start()
    (first,) = h.take(Register)
    assert "lwm2m=1.1" in first.message.uri_query
    h.respond(first, Code.PRECONDITION_FAILED)
    assert h.take_events(RegistrationFailed) == []
    (second,) = h.take(Register)
    assert second.message.uri_query == ("ep=test-ep", "lt=120", "lwm2m=1.0", "b=UQ")
    root = decode_links(second.message.payload)[0]
    assert (root.uri, root.content_formats) == ("/", ())
    assert root.resource_types == ("oma.lwm2m",)
    h.respond(second, Code.CREATED, location=("rd", "v10"))
    assert h.take_events(Registered) == [Registered(101, "/rd/v10", "1.0")]
    assert code(h.request(Code.PUT, "/1/0/1", payload=b"600", cf=CF.TEXT)) == "2.04"
    (update,) = h.take(Update)
    assert update.message.uri_query == ("lt=600",)  # the binding did not change: not sent
    h.respond(update)
    # the server forgets the client: it registers again, still as 1.0
    h.engine.request_update(h.now)
    (update,) = h.take(Update)
    h.respond(update, Code.NOT_FOUND)
    (again,) = h.take(Register)
    assert "lwm2m=1.0" in again.message.uri_query
    h.respond(again, Code.CREATED, location=("rd", "v10b"))
    # a stopped and restarted client starts from 1.1 again
    h.engine.stop(h.now)
    (deregister,) = h.take()
    h.respond(deregister, Code.DELETED)
    h.engine.start(h.now)
    (restart,) = h.take(Register)
    assert "lwm2m=1.1" in restart.message.uri_query


def test_a_4_12_to_the_1_0_register_is_an_ordinary_failure() -> None:
    h = Harness(config(server(101, retry_timer=10, bootstrap_on_failure=False)))
    h.start()
    (first,) = h.take(Register)
    h.respond(first, Code.PRECONDITION_FAILED)
    (second,) = h.take(Register)
    h.respond(second, Code.PRECONDITION_FAILED)
    (failed,) = h.take_events(RegistrationFailed)
    assert failed.reason.startswith("4.12")
    assert failed.retry_at == h.now + 10
    assert h.take(Register) == []
    h.advance(10)
    (retry,) = h.take(Register)
    assert "lwm2m=1.0" in retry.message.uri_query  # retries keep the version reached


def _links(message: Message) -> dict[str, Link]:
    return {link.uri: link for link in decode_links(message.payload)}


def test_a_4_00_registers_again_as_1_0_then_with_plain_links() -> None:
    """Wakaama's 1.0 server of 2018 answers 4.00 to any object link with attributes other than
    the root's (``</>;ct="..."``, even ``</3>;ver=1.1`` of LwM2M 1.0 §5.3.1), before it looks
    at ``lwm2m=``: the Register goes again at once as 1.0, then with plain links, without
    counting retries. Updates keep the plain links; a restart starts from the full form."""
    from lwm2m.client import SimpleObject
    from lwm2m.model.registry import default_registry

    h = Harness(config(server(101, lifetime=120, binding="U")))
    h.start()
    (first,) = h.take(Register)
    assert "lwm2m=1.1" in first.message.uri_query
    assert _links(first.message)["/3"].version == "1.1"
    h.respond(first, Code.BAD_REQUEST)
    (second,) = h.take(Register)
    assert "lwm2m=1.0" in second.message.uri_query
    links = _links(second.message)
    assert links["/"].content_formats == ()
    assert links["/3"].version == "1.1"
    h.respond(second, Code.BAD_REQUEST)
    (third,) = h.take(Register)
    assert "lwm2m=1.0" in third.message.uri_query
    links = _links(third.message)
    assert "/3" not in links  # Device has an instance: no object link needed
    assert "/3/0" in links
    assert [uri for uri, link in links.items() if link.params and uri != "/"] == []
    assert h.take_events(RegistrationFailed) == []
    h.respond(third, Code.CREATED, location=("rd", "old"))
    assert h.take_events(Registered) == [Registered(101, "/rd/old", "1.0")]
    # a new object (version 1.0 here) and the Update: still the plain form
    h.tree.add(SimpleObject(default_registry().get(6), {}))  # type: ignore[arg-type]
    h.advance(0)
    (update,) = h.take(Update)
    assert b"</6>" in update.message.payload
    assert b"ver=" not in update.message.payload
    h.respond(update)
    h.engine.stop(h.now)
    (deregister,) = h.take()
    h.respond(deregister, Code.DELETED)
    h.engine.start(h.now)
    (restart,) = h.take(Register)
    assert "lwm2m=1.1" in restart.message.uri_query
    assert b"ver=1.1" in restart.message.payload


def test_a_4_00_to_every_form_is_an_ordinary_failure_and_the_retry_starts_over() -> None:
    """The simplest form refused as well: the 4.00 was about something else (an unknown
    endpoint, say), so the retry after the back-off goes through the forms again."""
    h = Harness(config(server(101, retry_timer=10, bootstrap_on_failure=False)))
    h.start()
    versions = []
    for _ in range(3):
        (request,) = h.take(Register)
        versions.append((request.message.uri_query[2], b"ver=" in request.message.payload))
        h.respond(request, Code.BAD_REQUEST, payload=b"no")
    assert versions == [("lwm2m=1.1", True), ("lwm2m=1.0", True), ("lwm2m=1.0", False)]
    (failed,) = h.take_events(RegistrationFailed)
    assert failed.reason == "4.00 no"
    assert failed.retry_at == h.now + 10
    assert h.take(Register) == []
    h.advance(10)
    (retry,) = h.take(Register)
    assert "lwm2m=1.1" in retry.message.uri_query
    assert b"ver=1.1" in retry.message.payload


def test_a_4_00_after_a_4_12_keeps_1_0_for_the_retry() -> None:
    """A 4.12 says the server is 1.0: undoing the steps of a 4.00 keeps that version."""
    h = Harness(config(server(101, retry_timer=10, bootstrap_on_failure=False)))
    h.start()
    (first,) = h.take(Register)
    h.respond(first, Code.PRECONDITION_FAILED)
    (second,) = h.take(Register)
    h.respond(second, Code.BAD_REQUEST)
    (third,) = h.take(Register)
    assert b"ver=" not in third.message.payload
    h.respond(third, Code.BAD_REQUEST)
    assert len(h.take_events(RegistrationFailed)) == 1
    h.advance(10)
    (retry,) = h.take(Register)
    assert "lwm2m=1.0" in retry.message.uri_query
    assert b"ver=1.1" in retry.message.payload


def test_a_4_00_with_minimum_1_1_fails_at_once() -> None:
    h = Harness(config(server(101, bootstrap_on_failure=False), minimum_lwm2m_version="1.1"))
    h.start()
    (first,) = h.take(Register)
    h.respond(first, Code.BAD_REQUEST)
    (failed,) = h.take_events(RegistrationFailed)
    assert failed.reason.startswith("4.00")
    assert h.take(Register) == []


def test_minimum_version_1_1_disables_the_fallback() -> None:
    h = Harness(config(server(101, bootstrap_on_failure=False), minimum_lwm2m_version="1.1"))
    h.start()
    (first,) = h.take(Register)
    h.respond(first, Code.PRECONDITION_FAILED)
    (failed,) = h.take_events(RegistrationFailed)
    assert failed.reason.startswith("4.12")
    assert h.take(Register) == []
