"""The asyncio client adapter (:mod:`lwm2m.io.lwm2m_client`) on an in-memory network and a
virtual clock: registration retries (/1/x/17-20), bootstrap on registration failure (/1/x/16),
Update on lifetime expiry and on /1/x/8, queue mode, De-register on stop, 4.xx answers, network
errors, and the adapter's own glue (observer bookkeeping, event callbacks, the firmware
downloader).

The network: :class:`FakeEndpoint` replaces :class:`~lwm2m.io.coap_endpoint.CoapEndpoint` (the
seam the adapter creates in ``start``); each request the client sends is logged with the virtual
time and answered by the test's ``answer`` function. The clock: :class:`VirtualLoop` is an
asyncio loop whose ``time()`` jumps to the next timer whenever nothing is ready, so hours of
retries run in milliseconds and every timestamp is exact. Nothing sleeps in real time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from lwm2m.client import parse_config
from lwm2m.client.accounts import ConnectionSecurity
from lwm2m.client.config import ClientConfig
from lwm2m.client.events import (
    Awake,
    BootstrapFinished,
    BootstrapStarted,
    Deregistered,
    Registered,
    RegistrationFailed,
    RegistrationUpdated,
    Sleeping,
    Stopped,
)
from lwm2m.client.objects.firmware import UpdateResult
from lwm2m.client.objects.fixed import FixedObject
from lwm2m.client.objects.security import Credentials, OscoreObject
from lwm2m.coap.errors import RequestTimeout
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code, MessageType
from lwm2m.io import lwm2m_client
from lwm2m.io.coap_endpoint import CoapRequest
from lwm2m.io.coap_transport import PeerIdentity
from lwm2m.io.lwm2m_client import CoapDownloader, DtlsConnector, LwM2MClient, UdpConnector
from lwm2m.model import Path
from lwm2m.secure import ComponentUnavailable, open_component
from lwm2m.secure.object import secure_component_definition, secure_component_instance
from lwm2m.testing.loop import VirtualLoop

START = 1000.0
HOST = "127.0.0.1"
PORT = 5683
SERVER = (HOST, PORT)


# -- virtual clock --------------------------------------------------------------------------------


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    loop = VirtualLoop(START)
    try:
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def now() -> float:
    return asyncio.get_running_loop().time()


# -- in-memory network ----------------------------------------------------------------------------


Answer = Callable[[Message], "Message | BaseException | Awaitable[Message]"]


def created(location: str = "c1") -> Message:
    response = Message(Code.CREATED)
    response.location_path = ("rd", location)
    return response


def lwm2m_server(message: Message) -> Message:
    """A well-behaved server: 2.01 to Register, 2.04 to Update and /bs, 2.02 to De-register."""
    if message.code == Code.DELETE:
        return Message(Code.DELETED)
    if message.uri_path == ("rd",):
        return created()
    return Message(Code.CHANGED)


class FakeSecurity:
    def __init__(self) -> None:
        self.identity: PeerIdentity | None = None

    def peer_identity(self, remote: Any) -> PeerIdentity | None:
        return self.identity


class Net:
    """What the client sent (virtual time, remote, message) and how the server answers."""

    def __init__(self) -> None:
        self.log: list[tuple[float, Any, Message]] = []
        self.answer: Answer = lwm2m_server
        self.security = FakeSecurity()
        self.observations: list[Any] = []
        self.notified: list[tuple[Any, Message]] = []
        self.endpoint: FakeEndpoint | None = None

    def sent(self, kind: str | None = None) -> list[Message]:
        return [m for _, _, m in self.log if kind is None or describe(m) == kind]

    def times(self, kind: str) -> list[float]:
        return [t for t, _, m in self.log if describe(m) == kind]


def describe(message: Message) -> str:
    path = message.uri_path
    if message.code == Code.DELETE:
        return "deregister"
    if path == ("rd",):
        return "register"
    if path == ("bs",):
        return "bootstrap"
    if path[:1] == ("rd",):
        return "update"
    return "/".join(path)


class FakeEndpoint:
    def __init__(self, net: Net, site: Any, on_observer_removed: Any) -> None:
        self.net = net
        self.site = site
        self.on_observer_removed = on_observer_removed
        self.security = net.security
        self.local_address = (HOST, 56830)
        self.closed = False

    async def request(self, message: Message, remote: Any) -> Message:
        self.net.log.append((now(), remote, message))
        outcome = self.net.answer(message)
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, Message):
            return outcome
        return await outcome

    def observations(self) -> list[Any]:
        return list(self.net.observations)

    def notify_observation(self, observation: Any, message: Message) -> None:
        self.net.notified.append((observation, message))

    async def close(self) -> None:
        self.closed = True

    def serve(
        self, message: Message, remote: Any = SERVER, identity: PeerIdentity | None = None
    ) -> Message:
        """A request of the server arriving at the client."""
        route = self.site.route(message.uri_path)
        assert route is not None
        handler, rest = route
        response = handler(CoapRequest(message, remote, identity, rest))
        assert isinstance(response, Message)
        return response


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    network = Net()

    class Factory:
        @staticmethod
        async def create(
            bind: Any,
            *,
            site: Any,
            config: Any,
            security: Any,
            on_observer_removed: Any,
            oscore: Any = None,
        ) -> FakeEndpoint:
            network.endpoint = FakeEndpoint(network, site, on_observer_removed)
            return network.endpoint

    monkeypatch.setattr(lwm2m_client, "CoapEndpoint", Factory)
    return network


class FakeConnector:
    """Resolves every account to its URI's address without DNS; records DTLS-style resets."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.resets: list[Any] = []

    async def connect(
        self, connection: ConnectionSecurity, credentials: Callable[[], Credentials]
    ) -> Any:
        connection.check_supported()
        if self.error is not None:
            raise self.error
        return (connection.uri.host, connection.uri.port)

    def reset(self, remote: Any) -> None:
        self.resets.append(remote)


def config(*, bootstrap: bool = False, queue_mode: bool = False, **server: Any) -> ClientConfig:
    table: dict[str, Any] = {
        "uri": f"coap://{HOST}:{PORT}",
        "short_server_id": 101,
        "lifetime": 300,
        "mute_send": False,
    }
    table.update(server)
    data: dict[str, Any] = {
        "endpoint": "paths-ep",
        "bind": "127.0.0.1:0",
        "queue_mode": queue_mode,
        "device": {"manufacturer": "ACME", "model_number": "Paths"},
        "servers": [table],
    }
    if bootstrap:
        data["bootstrap"] = {"uri": f"coap://{HOST}:5783"}
    return parse_config(data)


async def wait(client: LwM2MClient, match: Any, within: float = 10**6) -> Any:
    """The next matching event, within ``within`` (virtual) seconds."""
    async with asyncio.timeout(within):
        return await client.wait_for(match)


async def idle(seconds: float) -> None:
    """Let ``seconds`` of virtual time pass (every timer due on the way runs)."""
    await asyncio.sleep(seconds)


def failed(final: bool) -> Callable[[Any], bool]:
    return lambda e: isinstance(e, RegistrationFailed) and (e.retry_at is None) is final


# -- registration retries (/1/x/17-20) ------------------------------------------------------------


def test_register_retries_follow_the_retry_timer_and_sequences(net: Net) -> None:
    """/1/x/17 = 3 attempts per sequence spaced 10 * 2^(n-1) s after each failure, /1/x/19 =
    1000 s between sequences, /1/x/20 = 2 sequences: 6 Registers, then the registration failed
    for good (bootstrap on failure is off) and nothing more is sent."""
    timeout_after = 93.0  # the CoAP layer gives up after MAX_TRANSMIT_WAIT

    async def no_answer(message: Message) -> Message:
        await asyncio.sleep(timeout_after)
        raise RequestTimeout("no answer")

    net.answer = no_answer
    connector = FakeConnector()
    cfg = config(
        retry_count=3,
        retry_timer=10,
        sequence_delay=1000,
        sequence_retry_count=2,
        bootstrap_on_failure=False,
    )

    async def main() -> list[Any]:
        async with LwM2MClient(cfg, connector=connector) as client:
            last = await wait(client, failed(final=True))
            await idle(10**6)
            return [last, list(client.history)]

    last, history = run(main)
    t = START
    expected = []
    for delay in (10, 20, 1000, 10, 20, None):
        expected.append(t)
        if delay is not None:
            t += timeout_after + delay
    assert net.times("register") == pytest.approx(expected)
    failures = [e for e in history if isinstance(e, RegistrationFailed)]
    assert [f.retry_at for f in failures[:-1]] == pytest.approx(expected[1:])
    assert last.retry_at is None
    assert all("no answer" in f.reason for f in failures)
    # every timed-out exchange drops the (DTLS) session of the server
    assert connector.resets == [SERVER] * 6
    assert not [e for e in history if isinstance(e, BootstrapStarted)]


@pytest.mark.parametrize("code", [Code.BAD_REQUEST, Code.FORBIDDEN, Code.PRECONDITION_FAILED])
def test_register_refused_with_4xx_is_retried_then_bootstraps(net: Net, code: int) -> None:
    """4.xx to Register counts as a failed attempt (the back-off of /1/x/17-20 applies); once
    the sequences are exhausted, /1/x/16 (default true) starts client-initiated bootstrap. A
    4.12 to the first, 1.1 Register is the exception: the 1.0 Register follows at once; after a
    4.00 the 1.0 Register and then one with plain object links (the client's Device object is
    1.1: ``</3>;ver=1.1``) follow at once, and each attempt goes through the same steps."""

    def refuse(message: Message) -> Message:
        if describe(message) == "register":
            return Message(code, b"go away")
        return lwm2m_server(message)

    net.answer = refuse
    cfg = config(bootstrap=True, retry_count=2, retry_timer=30, sequence_retry_count=1)

    async def main() -> list[Any]:
        async with LwM2MClient(cfg, connector=FakeConnector()) as client:
            await wait(client, BootstrapStarted)
            await idle(1)
            return list(client.history)

    history = run(main)
    if code == Code.BAD_REQUEST:  # 1.1, 1.0, plain links; undone for the retry, which repeats it
        assert net.times("register") == [START] * 3 + [START + 30] * 3
    elif code == Code.PRECONDITION_FAILED:  # 1.1, then 1.0 at once; the retry stays at 1.0
        assert net.times("register") == [START] * 2 + [START + 30]
    else:
        assert net.times("register") == [START, START + 30]
    failures = [e for e in history if isinstance(e, RegistrationFailed)]
    assert [f.retry_at for f in failures] == [START + 30, None]
    assert failures[0].reason == f"{Code(code).dotted} go away"
    [request] = net.sent("bootstrap")
    assert request.code == Code.POST
    assert "ep=paths-ep" in request.uri_query


def test_no_bootstrap_when_bootstrap_on_failure_is_false(net: Net) -> None:
    net.answer = lambda m: Message(Code.FORBIDDEN) if describe(m) == "register" else Message()
    cfg = config(bootstrap=True, retry_count=1, bootstrap_on_failure=False)

    async def main() -> list[Any]:
        async with LwM2MClient(cfg, connector=FakeConnector()) as client:
            await wait(client, failed(final=True))
            await idle(10**5)
            return list(client.history)

    history = run(main)
    assert len(net.sent("register")) == 1
    assert net.sent("bootstrap") == []
    assert not [e for e in history if isinstance(e, BootstrapStarted)]


@pytest.mark.parametrize(
    "error", [OSError("cannot resolve nowhere.invalid"), ConnectionRefusedError("refused")]
)
def test_network_error_is_a_failed_attempt(net: Net, error: OSError) -> None:
    """The connector (resolution, socket) fails: no request goes out, the attempt failed with
    the error as reason, and the next one follows after the retry timer."""
    connector = FakeConnector()
    connector.error = error
    cfg = config(retry_count=2, retry_timer=7, bootstrap_on_failure=False)

    async def main() -> Any:
        async with LwM2MClient(cfg, connector=connector) as client:
            first = await wait(client, RegistrationFailed)
            connector.error = None  # the network is back for the retry
            await wait(client, Registered)
            return first

    first = run(main)
    assert str(error) in first.reason
    assert first.retry_at == START + 7
    assert net.times("register") == [START + 7]  # the failed attempt sent nothing
    assert connector.resets == []  # not a timeout: the session is kept


# -- Update --------------------------------------------------------------------------------------


def test_update_before_the_lifetime_expires(net: Net) -> None:
    """lifetime 300 s: an Update 207 s after the registration, then 207 s after each Update,
    without parameters (nothing changed)."""

    async def main() -> None:
        async with LwM2MClient(config(lifetime=300), connector=FakeConnector()) as client:
            await wait(client, Registered)
            await idle(500)

    run(main)
    assert net.times("register") == [START]
    assert net.times("update") == [START + 207, START + 414]
    for update in net.sent("update"):
        assert update.uri_path == ("rd", "c1")
        assert update.uri_query == ()
        assert update.payload == b""


def test_update_trigger_resource_sends_an_update_at_once(net: Net) -> None:
    """Execute /1/0/8 (Registration Update Trigger) from the server: 2.04, then an Update."""

    async def main() -> Message:
        async with LwM2MClient(config(), connector=FakeConnector()) as client:
            await wait(client, Registered)
            await idle(50)
            assert net.endpoint is not None
            response = net.endpoint.serve(Message(Code.POST, uri_path="/1/0/8"))
            await wait(client, RegistrationUpdated, within=1)
            return response

    response = run(main)
    assert response.code == Code.CHANGED
    assert net.times("update") == [START + 50]


@pytest.mark.parametrize("code", [Code.NOT_FOUND, Code.BAD_REQUEST])
def test_update_refused_registers_again_at_once(net: Net, code: int) -> None:
    """4.04 (the server lost the registration) or 4.00 to an Update: the client registers
    again right away (§6.2.2) with a full Register."""

    def refuse_updates(message: Message) -> Message:
        if describe(message) == "update":
            return Message(code)
        return lwm2m_server(message)

    net.answer = refuse_updates

    async def main() -> list[Any]:
        async with LwM2MClient(config(), connector=FakeConnector()) as client:
            await wait(client, Registered)
            await idle(10)
            client.update()
            await wait(client, RegistrationFailed, within=1)
            await idle(1)
            assert client.engine.registrations[101].registered
            return list(client.history)

    history = run(main)
    assert net.times("register") == [START, START + 10]
    assert net.times("update") == [START + 10]
    [failure] = [e for e in history if isinstance(e, RegistrationFailed)]
    assert failure.reason.startswith(Code(code).dotted)
    register = net.sent("register")[1]
    assert "lt=300" in register.uri_query
    assert b"</3/0>" in register.payload


# -- queue mode ------------------------------------------------------------------------------------


def test_queue_mode_sleeps_after_the_awake_window_and_wakes_with_a_con_update(net: Net) -> None:
    """Register with Q; asleep MAX_TRANSMIT_WAIT (93 s) after the 2.01; a Send wakes the client
    with a CON Update first, and Awake follows its 2.04."""

    async def main() -> list[Any]:
        cfg = config(queue_mode=True, lifetime=3600)
        async with LwM2MClient(cfg, connector=FakeConnector()) as client:
            await wait(client, Registered)
            await wait(client, Sleeping)
            slept_at = now()
            await idle(100)
            client.objects[3].set(9, 50)
            await client.send([Path(3, 0, 9)])
            return [slept_at, list(client.history)]

    slept_at, history = run(main)
    [register] = net.sent("register")
    assert "Q" in register.uri_query
    assert slept_at == START + 93
    assert [describe(m) for m in net.sent()][:3] == ["register", "update", "dp"]
    [update] = net.sent("update")
    assert update.mtype == MessageType.CON
    assert net.times("update") == [START + 193]
    kinds = [type(e) for e in history if isinstance(e, Sleeping | Awake | RegistrationUpdated)]
    assert kinds == [Sleeping, RegistrationUpdated, Awake]


@pytest.mark.parametrize("trigger", ["client.update()", "lifetime timer"])
def test_any_update_sent_while_asleep_is_a_wake_up(net: Net, trigger: str) -> None:
    async def main() -> list[Any]:
        cfg = config(queue_mode=True, lifetime=300)
        async with LwM2MClient(cfg, connector=FakeConnector()) as client:
            await wait(client, Sleeping)
            if trigger == "client.update()":
                client.update()
            await wait(client, RegistrationUpdated)
            await idle(1)
            return list(client.history)

    history = run(main)
    assert [describe(m) for m in net.sent()][:2] == ["register", "update"]
    assert not client_is_sleeping(history)


def client_is_sleeping(history: list[Any]) -> bool:
    """Whether the last of the Sleeping / Awake events says asleep."""
    marks = [e for e in history if isinstance(e, Sleeping | Awake)]
    return bool(marks) and isinstance(marks[-1], Sleeping)


# -- stop ------------------------------------------------------------------------------------------


def test_stop_deregisters_and_closes(net: Net) -> None:
    async def main() -> tuple[list[Any], float]:
        client = LwM2MClient(config(), connector=FakeConnector())
        await client.start()
        await wait(client, Registered)
        await idle(20)
        await client.stop()
        return list(client.history), now()

    history, stopped_at = run(main)
    [deregister] = net.sent("deregister")
    assert deregister.uri_path == ("rd", "c1")
    assert net.times("deregister") == [START + 20]
    assert stopped_at == START + 20
    assert [type(e) for e in history[-2:]] == [Deregistered, Stopped]
    assert net.endpoint is not None
    assert net.endpoint.closed


def test_stop_with_a_silent_server_is_bounded_by_grace_and_cancels_waiters(net: Net) -> None:
    """The De-register is never answered: stop() returns after ``grace`` (virtual) seconds,
    reporting Stopped, and a task still waiting for an event is cancelled, not left hanging."""
    hold: list[asyncio.Future[Message]] = []

    def answer(message: Message) -> Message | Awaitable[Message]:
        if describe(message) == "deregister":
            hold.append(asyncio.get_running_loop().create_future())
            return hold[-1]
        return lwm2m_server(message)

    net.answer = answer

    async def main() -> tuple[float, bool, list[Any]]:
        client = LwM2MClient(config(), connector=FakeConnector())
        await client.start()
        await wait(client, Registered)
        waiting = asyncio.ensure_future(client.wait_for(lambda e: False))
        await asyncio.sleep(0)
        began = now()
        await client.stop(grace=3.0)
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return now() - began, waiting.cancelled(), list(client.history)

    took, cancelled, history = run(main)
    assert took == pytest.approx(3.0)
    assert cancelled
    assert len(net.sent("deregister")) == 1
    # the client is stopped when stop() returns: Stopped is reported once, unanswered or not
    assert len([e for e in history if isinstance(e, Stopped)]) == 1


def test_before_start_and_after_stop(net: Net) -> None:
    async def main() -> None:
        client = LwM2MClient(config(), connector=FakeConnector())
        with pytest.raises(RuntimeError, match="not started"):
            client.endpoint  # noqa: B018 - the property raises
        await client.start()
        await wait(client, Registered)
        await client.stop()
        await client.stop()  # idempotent
        count = len(net.log)
        client.update()  # after stop: nothing goes out any more
        await idle(1000)
        assert len(net.log) == count

    run(main)


# -- observations ----------------------------------------------------------------------------------


class CoapObservation:
    def __init__(self, remote: Any, token: bytes) -> None:
        self.remote = remote
        self.token = token


def test_notifications_go_to_the_matching_coap_observer_only(net: Net) -> None:
    """A notification is handed to the CoAP observation with its token and remote; with no
    such observation (the CoAP layer dropped it) nothing is sent. An observer removed by the
    CoAP layer ends the LwM2M observation, unless it was merely replaced by a re-registration."""

    async def main() -> None:
        async with LwM2MClient(config(), connector=FakeConnector()) as client:
            await wait(client, Registered)
            endpoint = net.endpoint
            assert endpoint is not None
            client.objects[3].set(9, 80)
            observe = Message(Code.GET, uri_path="/3/0/9", token=b"\x01\x02", observe=0)
            response = endpoint.serve(observe)
            assert response.code == Code.CONTENT
            assert response.observe is not None
            other = CoapObservation(SERVER, b"\x09")
            mine = CoapObservation(SERVER, b"\x01\x02")

            # no CoAP observation for the token: nothing is sent
            net.observations = [other]
            client.objects[3].set(9, 81)
            await idle(1)
            assert net.notified == []

            net.observations = [other, mine]
            client.objects[3].set(9, 82)
            await idle(1)
            [(target, message)] = net.notified
            assert target is mine
            assert message.code == Code.CONTENT

            endpoint.on_observer_removed(mine, "replaced")  # still observed
            client.objects[3].set(9, 83)
            await idle(1)
            assert len(net.notified) == 2

            endpoint.on_observer_removed(mine, "reset")  # the server cancelled with RST
            await idle(0)
            client.objects[3].set(9, 84)
            await idle(1000)
            assert len(net.notified) == 2

    run(main)


def test_no_notification_after_stop_even_when_pmax_elapses(net: Net) -> None:
    """An observation with pmax keeps a timer armed; stop() disarms it: nothing is notified
    after the client stopped."""

    async def main() -> int:
        client = LwM2MClient(config(), connector=FakeConnector())
        await client.start()
        await wait(client, Registered)
        endpoint = net.endpoint
        assert endpoint is not None
        client.objects[3].set(9, 80)
        attributes = Message(Code.PUT, uri_path="/3/0/9", uri_query=["pmax=10"])
        assert endpoint.serve(attributes).code == Code.CHANGED
        observe = Message(Code.GET, uri_path="/3/0/9", token=b"\x07", observe=0)
        assert endpoint.serve(observe).code == Code.CONTENT
        net.observations = [CoapObservation(SERVER, b"\x07")]
        await idle(15)
        before = len(net.notified)
        await client.stop()
        await idle(100)
        assert len(net.notified) == before
        return before

    assert run(main) == 1  # the pmax notification while running


# -- identity binding ------------------------------------------------------------------------------


def test_update_before_start_raises_a_clear_error(net: Net) -> None:
    async def main() -> None:
        client = LwM2MClient(config(), connector=FakeConnector())
        with pytest.raises(RuntimeError, match="not started"):
            client.update()

    run(main)


def test_account_binding_follows_the_latest_authenticated_identity(net: Net) -> None:
    """After an exchange over a session authenticated as X, a request from the server's
    address under identity Y is not the server's (4.01); once an exchange completes without an
    authenticated identity, the binding to X is dropped."""
    x = PeerIdentity("psk", b"server-x")
    y = PeerIdentity("psk", b"server-y")
    read = Message(Code.GET, uri_path="/3/0/0")

    async def main() -> tuple[int, int]:
        async with LwM2MClient(config(), connector=FakeConnector()) as client:
            net.security.identity = x
            await wait(client, Registered)
            assert net.endpoint is not None
            before = net.endpoint.serve(read, identity=y).code
            net.security.identity = None
            client.update()
            await wait(client, RegistrationUpdated, within=1)
            after = net.endpoint.serve(read, identity=y).code
            return before, after

    assert run(main) == (Code.UNAUTHORIZED, Code.CONTENT)


# -- event callback and Secure Component ---------------------------------------------------------


def test_a_failing_on_event_callback_does_not_stop_the_client(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Any] = []

    def on_event(event: Any) -> None:
        seen.append(event)
        raise RuntimeError("application bug")

    async def main() -> None:
        client = LwM2MClient(config(), connector=FakeConnector(), on_event=on_event)
        async with client:
            await wait(client, Registered)

    with caplog.at_level(logging.ERROR, logger="lwm2m.io.lwm2m_client"):
        run(main)
    assert any(isinstance(e, Registered) for e in seen)
    assert any(isinstance(e, Stopped) for e in seen)
    assert "on_event callback failed" in caplog.text


class FailingGarbageCollection:
    """A Secure Component whose credential listing fails (the card went away after the
    bootstrap wrote /0)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.failing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def credentials(self) -> Any:
        if self.failing:
            raise ComponentUnavailable("component gone while collecting garbage")
        return self._inner.credentials()


def test_secure_component_gc_failure_is_logged_and_the_client_goes_on(
    net: Net, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    inner = open_component(f"soft:{tmp_path}/gc.sc", passphrase="p", create=True, scrypt_log2_n=10)
    component: Any = FailingGarbageCollection(inner)

    async def main() -> list[Any]:
        client = LwM2MClient(config(), connector=FakeConnector(), secure_component=component)
        component.failing = True  # from the start-up (factory) bootstrap on
        async with client:
            await wait(client, Registered)
            return list(client.history)

    try:
        with caplog.at_level(logging.ERROR, logger="lwm2m.io.lwm2m_client"):
            history = run(main)
    finally:
        inner.close()
    assert BootstrapFinished("factory") in history
    assert "garbage collection failed" in caplog.text
    assert len(net.sent("register")) == 1


def test_given_oscore_and_secure_component_handlers_are_kept(tmp_path: Any) -> None:
    component = open_component(
        f"soft:{tmp_path}/kept.sc", passphrase="p", create=True, scrypt_log2_n=10
    )
    try:
        oscore = OscoreObject()
        identification = FixedObject(
            secure_component_definition(), [secure_component_instance(component.info())]
        )
        client = LwM2MClient(config(), [oscore, identification], secure_component=component)
        assert client.objects.get(21) is oscore
        assert client.objects.get(secure_component_definition().id) is identification
        assert isinstance(client.connector, DtlsConnector)
        assert client.connector.component is component
    finally:
        component.close()


# -- connectors ------------------------------------------------------------------------------------


def test_dtls_connector_resets_the_session_after_a_timeout(net: Net) -> None:
    resets: list[Any] = []
    connector = DtlsConnector()
    connector.security_layer.reset_peer = resets.append  # type: ignore[method-assign]

    def timeout(message: Message) -> BaseException:
        return RequestTimeout("no answer")

    net.answer = timeout
    cfg = config(retry_count=1, bootstrap_on_failure=False)

    async def main() -> None:
        async with LwM2MClient(cfg, connector=connector) as client:
            await wait(client, failed(final=True))

    run(main)
    assert resets == [SERVER]


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        # a valid reference, but the client has no Secure Component
        (b"sc-ref:psk", "no Secure Component"),
        # the reference form with an invalid label: not a literal key either (it would fail
        # much later, as a handshake with the wrong PSK)
        (b"sc-ref:\x00", "no valid credential label"),
    ],
)
def test_a_secure_component_reference_the_client_cannot_use_fails_the_attempt(
    net: Net, secret: bytes, reason: str
) -> None:
    """/0/x/5 holds an ``sc-ref:`` value the client cannot use: the attempt fails with a clear
    reason, nothing is sent."""
    cfg = config(
        uri=f"coaps://{HOST}:5684",
        security_mode="psk",
        psk_identity="paths-ep",
        psk_key_hex=secret.hex(),
        retry_count=1,
        bootstrap_on_failure=False,
    )

    async def main() -> Any:
        async with LwM2MClient(cfg) as client:
            return await wait(client, RegistrationFailed)

    failure = run(main)
    assert reason in failure.reason
    assert net.sent() == []


def test_udp_connector_plain_coap_only(net: Net) -> None:
    async def main() -> tuple[Any, Any]:
        async with LwM2MClient(
            config(retry_count=1, bootstrap_on_failure=False), connector=UdpConnector()
        ) as client:
            await wait(client, Registered)
        psk = config(
            uri=f"coaps://{HOST}:5684",
            security_mode="psk",
            psk_identity="paths-ep",
            psk_key_hex="00112233445566778899aabbccddeeff",
            retry_count=1,
            bootstrap_on_failure=False,
        )
        async with LwM2MClient(psk, connector=UdpConnector(family=socket.AF_INET)) as client:
            return net.log[0][1], await wait(client, RegistrationFailed)

    remote, failure = run(main)
    assert remote == SERVER
    assert "PSK" in failure.reason
    assert failure.retry_at is None


# -- firmware downloader ---------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.done = asyncio.Event()

    def download_progress(self, received: int, total: int | None) -> None:
        self.calls.append(("progress", (received, total)))

    def download_finished(self, package: bytes) -> None:
        self.calls.append(("finished", package))
        self.done.set()

    def download_failed(self, result: UpdateResult) -> None:
        self.calls.append(("failed", result))
        self.done.set()


def holding(
    held: asyncio.Future[Message], requested: asyncio.Event, then: list[Message] | None = None
) -> Answer:
    """Firmware GETs: the first is answered when ``held`` resolves, later ones from ``then``."""
    later = iter(then or [])

    def answer(message: Message) -> Message | Awaitable[Message]:
        if describe(message) != "fw":
            return lwm2m_server(message)
        if requested.is_set():
            return next(later)
        requested.set()
        return held

    return answer


async def started_client(net: Net) -> LwM2MClient:
    client = LwM2MClient(config(), connector=FakeConnector())
    await client.start()
    await wait(client, Registered, within=5)
    return client


async def downloaded(sink: Sink) -> None:
    async with asyncio.timeout(5):
        await sink.done.wait()


async def requested(event: asyncio.Event) -> None:
    async with asyncio.timeout(5):
        await event.wait()


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Message(Code.CONTENT, b"firmware"), ("finished", b"firmware")),
        (Message(Code.NOT_FOUND), ("failed", UpdateResult.INVALID_URI)),
        (Message(Code.INTERNAL_SERVER_ERROR), ("failed", UpdateResult.CONNECTION_LOST)),
        (Message(Code.FORBIDDEN), ("failed", UpdateResult.CONNECTION_LOST)),
        (OSError("network unreachable"), ("failed", UpdateResult.CONNECTION_LOST)),
        (RequestTimeout("no answer"), ("failed", UpdateResult.CONNECTION_LOST)),
    ],
)
async def test_firmware_download_outcomes(net: Net, answer: Any, outcome: Any) -> None:
    net.answer = lambda m: answer if describe(m) == "fw" else lwm2m_server(m)
    client = await started_client(net)
    try:
        sink = Sink()
        CoapDownloader(client).start(f"coap://{HOST}:{PORT}/fw", sink)
        await downloaded(sink)
        assert sink.calls[-1] == outcome
        [get] = net.sent("fw")
        assert get.code == Code.GET
    finally:
        await client.stop(grace=1)


async def test_firmware_download_of_a_malformed_uri_fails_without_a_request(net: Net) -> None:
    client = await started_client(net)
    try:
        sink = Sink()
        CoapDownloader(client).start("coap://[::1/fw", sink)
        await downloaded(sink)
        assert sink.calls == [("failed", UpdateResult.CONNECTION_LOST)]
        assert net.sent("fw") == []
    finally:
        await client.stop(grace=1)


async def test_restarting_a_download_cancels_the_running_one(net: Net) -> None:
    held: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
    first_get = asyncio.Event()
    net.answer = holding(held, first_get, [Message(Code.CONTENT, b"second")])
    client = await started_client(net)
    try:
        downloader = CoapDownloader(client)
        first, second = Sink(), Sink()
        downloader.start(f"coap://{HOST}:{PORT}/fw", first)
        await requested(first_get)
        downloader.start(f"coap://{HOST}:{PORT}/fw", second)
        await downloaded(second)
        assert second.calls[-1] == ("finished", b"second")
        assert first.calls == []  # cancelled: no report at all
        downloader.cancel()  # nothing running: harmless
    finally:
        held.cancel()
        await client.stop(grace=1)


async def test_a_download_ending_after_stop_sends_nothing(net: Net) -> None:
    """The download's answer arrives after the client stopped: the sink gets it, and whatever
    the engine wants to send then is dropped (the socket is closed)."""
    held: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
    get = asyncio.Event()
    net.answer = holding(held, get)
    client = await started_client(net)
    sink = Sink()
    CoapDownloader(client).start(f"coap://{HOST}:{PORT}/fw", sink)
    await requested(get)
    await client.stop(grace=1)
    count = len(net.log)
    held.set_result(Message(Code.CONTENT, b"late"))
    await downloaded(sink)
    assert sink.calls[-1] == ("finished", b"late")
    assert len(net.log) == count
