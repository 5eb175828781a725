"""The GlobalPlatform SERAM 2.0 Local Agent over HTTP(S) (LwM2M-SCS-6): the asyncio adapter of
:class:`lwm2m.secure.seram.LocalAgent`, with httpx (the ``seram`` extra).

Spec: GitHub ``GlobalPlatform/SERAM``, ``spec/gpseram.yaml`` (paths ``/handshake`` and
``/remoteManagement``) and ``doc/GPSERAM__HTTP_REST_Binding.md`` ("Management Session and HTTP
messages", "HTTP Polling", "Transmission Errors"); the module docstring of
:mod:`lwm2m.secure.seram` says what was checked there.

:func:`run_seram_session` runs one management session against a Remote Agent whose base URL
(the *RA Endpoint*, e.g. ``https://ra.example/gp/seram``) it is given::

    outcome = await run_seram_session(
        "https://ra.example/gp/seram", component, ISD_AID, await asyncio.to_thread(component.info)
    )
    outcome.rounds, outcome.se_ram_commands, outcome.last_status

It POSTs the Handshake Command, then a Report per Order until the Stop Command, pausing between
an answer and the next request for the Order's ``delay`` (1 s when absent). SE RAM Commands run
through the component's script relay (``run_admin_script``, :mod:`lwm2m.secure.admin`: only
security-domain commands and a SELECT of ``target`` reach the card) in a worker thread; the
admin session's logical channel is closed when the management session ends, however it ends.

Transport rules (binding document): every request waits ``request_timeout`` seconds at most
for the whole answer (default 40 s: a Remote Agent may hold a long poll for 30 s); a connection
that cannot be established is retried with a growing pause (1, 2, 4 … 30 s) for ``retry_for``
seconds in all (default 5 minutes), the request never having been sent; an answer that does not
come, a connection lost after sending, an HTTP error status or a malformed body ends the session
with :class:`SeramSessionError`. HTTPS is chosen by the URL; pass ``client`` for other TLS settings
(a private CA, a client certificate). Cookies the Remote Agent sets are sent back (the binding's
SHOULD) by the session's ``httpx.AsyncClient``.

The logs name the session and the counts, never APDU data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from lwm2m.secure.admin import AdminScripts
from lwm2m.secure.interfaces import ComponentInfo, SecureComponentError
from lwm2m.secure.ram import CommandScript, ResponseScript
from lwm2m.secure.seram import (
    DEFAULT_DELAY_MS,
    DEFAULT_MAX_ROUNDS,
    MAX_MESSAGE_SIZE,
    LocalAgent,
    LocalAgentStatus,
    Run,
    SeramError,
    SeramStatusError,
    secure_element_for,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_TIMEOUT",
    "SeramOutcome",
    "SeramSessionError",
    "run_local_agent",
    "run_seram_session",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 40.0
"""Seconds to wait for an answer (binding doc: 40 s; a Remote Agent long-polls for up to 30)."""

DEFAULT_RETRY_FOR = 300.0
"""Seconds of retrying a connection that cannot be established (binding doc: 5 minutes)."""

_BACKOFF_MAX = 30.0

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SeramOutcome:
    """What a management session did: its ``session_id``, the /remoteManagement ``rounds``, the
    SE RAM Commands executed and the R-APDUs they returned, the errorMsg of each one that failed,
    the Device Application notifications received, the status of the last Report sent, and
    whether the Remote Agent ended it with the Stop Command (``completed``)."""

    session_id: str
    rounds: int
    se_ram_commands: int
    rapdus: int
    errors: tuple[str, ...]
    notifications: tuple[str, ...]
    last_status: LocalAgentStatus | None
    completed: bool


class SeramSessionError(SeramError):
    """The management session failed: the message says where and why; ``outcome`` is what was
    done until then (None when no session started), ``status`` the Remote Agent's HTTP status
    when it answered with an error."""

    def __init__(
        self, message: str, outcome: SeramOutcome | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status


def _import_httpx() -> ModuleType:
    try:
        import httpx
    except ImportError:
        raise SeramSessionError(
            "the SERAM Local Agent needs httpx: pip install 'lwm2m[seram]'"
        ) from None
    return httpx


def _outcome(agent: LocalAgent, notifications: list[str]) -> SeramOutcome:
    return SeramOutcome(
        session_id=agent.session_id,
        rounds=agent.rounds,
        se_ram_commands=agent.se_ram_commands,
        rapdus=agent.rapdus,
        errors=tuple(agent.errors),
        notifications=tuple(notifications),
        last_status=agent.last_status,
        completed=agent.done,
    )


class _Failed(Exception):
    """A transport failure, turned into SeramSessionError with the outcome."""


async def _post(
    hx: ModuleType,
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    step: str,
    request_timeout: float,
    retry_for: float,
    sleep: Sleep,
) -> tuple[int, bytes]:
    """POST ``body``; the status and the whole answer (at most MAX_MESSAGE_SIZE bytes)."""
    waited = 0.0
    pause = 1.0
    while True:
        try:
            async with asyncio.timeout(request_timeout):
                async with client.stream(
                    "POST",
                    url,
                    content=body,
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                    timeout=request_timeout,
                ) as response:
                    data = bytearray()
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) > MAX_MESSAGE_SIZE:
                            raise _Failed(f"{step}: the answer exceeds {MAX_MESSAGE_SIZE} bytes")
                    return response.status_code, bytes(data)
        except (hx.ConnectError, hx.ConnectTimeout) as exc:
            if waited + pause > retry_for:
                raise _Failed(
                    f"{step}: cannot connect to the Remote Agent ({type(exc).__name__}: {exc})"
                    + (f", retried for {waited:g} s" if waited else "")
                ) from None
            logger.info("SERAM %s: cannot connect, retrying in %g s", step, pause)
            await sleep(pause)
            waited += pause
            pause = min(pause * 2, _BACKOFF_MAX)
        except (TimeoutError, hx.TimeoutException):
            raise _Failed(
                f"{step}: no answer from the Remote Agent within {request_timeout:g} s"
            ) from None
        except hx.HTTPError as exc:
            raise _Failed(f"{step}: HTTP failure ({type(exc).__name__}: {exc})") from None


async def run_local_agent(
    base_url: str,
    agent: LocalAgent,
    run: Run,
    *,
    client: httpx.AsyncClient | None = None,
    request_timeout: float = DEFAULT_TIMEOUT,
    retry_for: float = DEFAULT_RETRY_FOR,
    sleep: Sleep = asyncio.sleep,
    on_notification: Callable[[str], None] | None = None,
) -> SeramOutcome:
    """Drive ``agent`` through one management session with the Remote Agent at ``base_url``.

    :param run: runs one SE RAM Command's C-APDUs (blocking: it is called in a worker thread).
    :param client: the HTTP client (default: a new ``httpx.AsyncClient``, closed at the end).
    :param request_timeout: seconds to wait for each answer.
    :param retry_for: seconds of retrying a connection that cannot be established.
    :param sleep: the pause between an Order and the next Report (``asyncio.sleep``; the
        Order's delay in seconds).
    :param on_notification: gets each deviceAppNotification, after the Order's SE RAM Commands
        ran (its exceptions propagate).
    :raises SeramSessionError: the session failed (HTTP error status, malformed or out-of-order
        message, transport failure, no Stop Command within the agent's rounds).
    """
    hx = _import_httpx()
    base = base_url.rstrip("/")
    notifications: list[str] = []
    own = client is None
    http: httpx.AsyncClient = hx.AsyncClient(timeout=request_timeout) if client is None else client

    async def exchange(path: str, body: bytes, step: str) -> tuple[int, bytes]:
        return await _post(
            hx, http, base + path, body,
            step=step, request_timeout=request_timeout, retry_for=retry_for, sleep=sleep,
        )  # fmt: skip

    logger.info("SERAM session %s with %s: handshake", agent.session_id, base)
    try:
        path, body = agent.handshake_request()
        status, answer = await exchange(path, body, "Handshake")
        agent.receive_handshake(status, answer)
        while True:
            path, body = agent.next_report()
            step = f"Order {agent.rounds}"
            status, answer = await exchange(path, body, step)
            action = agent.receive_order(status, answer)
            logger.debug(
                "SERAM session %s: round %d, %d SE RAM Commands, delay %g s%s",
                agent.session_id,
                agent.rounds,
                action.se_ram_commands,
                action.delay,
                ", stop" if action.done else "",
            )
            if action.se_ram_commands:
                await asyncio.to_thread(agent.execute, run)
            notifications.extend(action.notifications)
            if on_notification is not None:
                for text in action.notifications:
                    on_notification(text)
            if action.done:
                break
            await sleep(action.delay)
    except (SeramError, _Failed) as exc:
        logger.warning("SERAM session %s failed: %s", agent.session_id, exc)
        http_status = exc.status if isinstance(exc, SeramStatusError) else None
        raise SeramSessionError(str(exc), _outcome(agent, notifications), http_status) from None
    finally:
        if own:
            await http.aclose()
    outcome = _outcome(agent, notifications)
    logger.info(
        "SERAM session %s ended by the Remote Agent: %d rounds, %d SE RAM Commands, %d errors",
        agent.session_id,
        outcome.rounds,
        outcome.se_ram_commands,
        len(outcome.errors),
    )
    return outcome


async def run_seram_session(
    base_url: str,
    component: AdminScripts,
    target: bytes,
    info: ComponentInfo,
    *,
    client: httpx.AsyncClient | None = None,
    session_id: str | None = None,
    request_timeout: float = DEFAULT_TIMEOUT,
    retry_for: float = DEFAULT_RETRY_FOR,
    sleep: Sleep = asyncio.sleep,
    default_delay_ms: int = DEFAULT_DELAY_MS,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    extra_info: str | None = None,
    on_notification: Callable[[str], None] | None = None,
) -> SeramOutcome:
    """One SERAM management session for ``component``'s Secure Element, offered as
    :func:`~lwm2m.secure.seram.secure_element_for` ``(info)``; its SE RAM Commands run on the
    security domain ``target`` through the component's script relay.

    :param session_id: the session's identifier as shared with the Management Platform (the
        Initialization Step, out of SERAM's scope); a random UUID when None.
    :raises AdminScriptRefused: ``target`` may not be administered (checked first).
    :raises SeramSessionError: see :func:`run_local_agent`; also for a component that is no
        Secure Element or has no identifier.

    The other parameters are those of :func:`run_local_agent` and
    :class:`~lwm2m.secure.seram.LocalAgent`.
    """
    _import_httpx()
    component.check_admin_target(target)
    try:
        agent = LocalAgent(
            [secure_element_for(info, extra_info=extra_info)],
            session_id=session_id,
            default_delay_ms=default_delay_ms,
            max_rounds=max_rounds,
        )
    except SeramError as exc:
        raise SeramSessionError(str(exc)) from None

    def run(capdus: tuple[bytes, ...]) -> ResponseScript:
        return component.run_admin_script(CommandScript(capdus), target)

    try:
        return await run_local_agent(
            base_url,
            agent,
            run,
            client=client,
            request_timeout=request_timeout,
            retry_for=retry_for,
            sleep=sleep,
            on_notification=on_notification,
        )
    finally:
        with contextlib.suppress(SecureComponentError):
            await asyncio.to_thread(component.end_admin_session)
