"""The admin-server side of the Secure Element script relay (LwM2M-SCS-3, SCS-6): one call runs a
remote APDU script on a client's card through /33000/x/30-35 (see :mod:`lwm2m.secure.admin`).

:func:`run_admin_script` writes the script (and the target, when given), observes Admin Status,
executes Run Admin Script, waits for the status to leave Running, cancels the observation and
reads the Response Scripting Template::

    script = CommandScript((bytes.fromhex("80CA9F7F00"),))  # GET DATA CPLC on the ISD
    outcome = await run_admin_script(server, "urn:dev:1", script)
    outcome.status, outcome.response.responses

Scripts of one client's admin session run on the same logical channel of the card, so an SCP03
secure channel the caller opens (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, then wrapped
commands) carries over from one call to the next; :func:`end_admin_session` closes it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from lwm2m.codec.content_format import ContentFormat
from lwm2m.io.lwm2m_server import LwM2MServer, ObservationHandle
from lwm2m.model.nodes import SingleResource
from lwm2m.model.values import ResourceType
from lwm2m.secure.admin import AdminStatus
from lwm2m.secure.object import SECURE_COMPONENT_OBJECT_ID, SecureComponentResource
from lwm2m.secure.ram import CommandScript, ResponseScript, ScriptFormatError
from lwm2m.server.errors import RequestFailed, RequestTimeout

__all__ = ["AdminOutcome", "AdminScriptFailed", "end_admin_session", "run_admin_script"]

_R = SecureComponentResource


@dataclass(frozen=True, slots=True)
class AdminOutcome:
    """How a script ended: :attr:`status` Completed or Stopped (at an error status word, the
    last R-APDU of :attr:`response`)."""

    status: AdminStatus
    response: ResponseScript


class AdminScriptFailed(RequestFailed):
    """The client ran no script: the target could not be selected (Unknown application), the
    card is unavailable, or the Admin Response could not be decoded. ``status`` says which."""

    def __init__(self, message: str, status: AdminStatus, *, endpoint: str) -> None:
        super().__init__(message, endpoint=endpoint)
        self.status = status


def _path(instance: int, resource: SecureComponentResource, object_id: int) -> str:
    return f"/{object_id}/{instance}/{int(resource)}"


async def run_admin_script(
    server: LwM2MServer,
    endpoint: str,
    script: CommandScript,
    *,
    target: bytes | None = None,
    instance: int = 0,
    within: float = 60.0,
    object_id: int = SECURE_COMPONENT_OBJECT_ID,
) -> AdminOutcome:
    """Run ``script`` on the card of ``endpoint`` (see the module docstring).

    :param target: the security domain's AID (written to Admin Target first); None keeps the
        client's current target (the ISD by default).
    :param within: seconds to wait for the run to end (the card may be slow).
    :raises AdminScriptFailed: the script did not run (status Unknown application or
        Unavailable), or its response is not a Response Scripting Template.
    :raises ErrorResponse: the client refused a write or the execute (4.00 with the reason for a
        script it does not relay or a target it does not allow; 4.05 while another runs; 4.04
        without the relay).
    :raises RequestFailed: the other failures of the underlying requests.
    """
    if target is not None:
        await server.write(
            endpoint,
            _path(instance, _R.ADMIN_TARGET, object_id),
            SingleResource(int(_R.ADMIN_TARGET), ResourceType.STRING, target.hex().upper()),
        )
    await server.write(
        endpoint,
        _path(instance, _R.ADMIN_SCRIPT, object_id),
        SingleResource(int(_R.ADMIN_SCRIPT), ResourceType.OPAQUE, script.encode()),
    )
    # Observed before the execute, so that the end of the run cannot be missed.
    handle = await server.observe(
        endpoint, _path(instance, _R.ADMIN_STATUS, object_id), accept=ContentFormat.SENML_CBOR
    )
    try:
        await server.execute(endpoint, _path(instance, _R.RUN_ADMIN_SCRIPT, object_id))
        status = await _outcome(handle, within, endpoint)
    finally:
        if handle.active:
            await handle.cancel()
    if status not in (AdminStatus.COMPLETED, AdminStatus.STOPPED):
        reason = (
            "the target security domain could not be selected"
            if status is AdminStatus.UNKNOWN_APPLICATION
            else "the Secure Element is unavailable"
        )
        raise AdminScriptFailed(reason, status, endpoint=endpoint)
    answer = await server.read(endpoint, _path(instance, _R.ADMIN_RESPONSE, object_id))
    raw = answer.content.value if isinstance(answer.content, SingleResource) else None
    try:
        if not isinstance(raw, bytes):
            raise ScriptFormatError("Admin Response is not opaque")
        response = ResponseScript.decode(raw)
    except ScriptFormatError as exc:
        raise AdminScriptFailed(
            f"Admin Response: {exc}", AdminStatus.UNAVAILABLE, endpoint=endpoint
        ) from None
    return AdminOutcome(status, response)


async def _outcome(handle: ObservationHandle, within: float, endpoint: str) -> AdminStatus:
    """The first Admin Status after Running that the observation reports."""
    try:
        async with asyncio.timeout(within):
            async for notification in handle:
                content = notification.content
                if isinstance(content, SingleResource) and isinstance(content.value, int):
                    status = AdminStatus(content.value)
                    if status is not AdminStatus.RUNNING:
                        return status
    except TimeoutError:
        raise RequestTimeout(
            f"the admin script did not end within {within:g} s", endpoint=endpoint
        ) from None
    raise AdminScriptFailed(
        "the observation of Admin Status ended before the run did",
        AdminStatus.UNAVAILABLE,
        endpoint=endpoint,
    )


async def end_admin_session(
    server: LwM2MServer,
    endpoint: str,
    *,
    instance: int = 0,
    object_id: int = SECURE_COMPONENT_OBJECT_ID,
) -> None:
    """Close the client's admin session (its logical channel, and any secure channel on it)."""
    await server.execute(endpoint, _path(instance, _R.END_ADMIN_SESSION, object_id))
