"""The Secure Component LwM2M object: its definition, the value of its instances (LwM2M-SCS-2)
and its handler on the client, :class:`SecureComponentObject`, which also relays remote APDU
scripts to a security domain of the card when the client enables it (SCS-3, SCS-6; resources
30-35, :mod:`lwm2m.secure.admin`).

No registered OMA object covers a Secure Element, TEE or secure boot, so the project defines
its own (``objects/33000-1_0.xml``, loadable with :func:`lwm2m.model.ddf.parse_ddf`). Its id is
:data:`SECURE_COMPONENT_OBJECT_ID`, in the range the OMNA LwM2M registry leaves for private
objects that are not published (32769-42768, "Company Reserved", allocated to a company as a
bulk reservation of up to 50 ids). Reserve a block with OMA before shipping; until then the id
can be changed by passing ``object_id=`` to every function here.

One instance per component; resources 0-13 are the identification data a server needs to
check the component through GlobalPlatform DLOA (Digital Letter of Approval v1.0): type,
secure-hardware flag, backend, label, manufacturer, model, serial, ``scheme:value``
identifiers (ICCID, EID, CPLC, token serial…), platform and firmware versions, supported
services and the DLOA references as three parallel multiple resources (registrar URL, platform
id, application id — resource instance *i* of each belongs together). Resource ids 14-19 are
kept for identification data; 30-35 are the remote administration resources, 36-39 kept for
that service; 20-29 and 40-79 for the management resources planned per requirement (see the
DDF description and ``docs/secure-component.md``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Sequence
from enum import IntEnum
from functools import cache
from importlib import resources
from typing import Protocol

from lwm2m.client.arguments import ExecuteArguments
from lwm2m.client.objects.base import ObjectEnabler
from lwm2m.errors import BadRequest, MethodNotAllowed, NotFound
from lwm2m.model.ddf import parse_ddf
from lwm2m.model.definitions import ObjectDefinition, default_urn
from lwm2m.model.nodes import MultipleResource, ObjectInstance, Resource, SingleResource
from lwm2m.model.registry import ModelRegistry
from lwm2m.model.values import ResourceType
from lwm2m.secure.admin import (
    ISD_AID,
    AdminScriptRefused,
    AdminScripts,
    AdminStatus,
    TargetNotSelectable,
    check_script,
    parse_aid,
)
from lwm2m.secure.interfaces import ComponentInfo, ComponentUnavailable, SecureComponent
from lwm2m.secure.ram import CommandScript, ResponseScript, ScriptFormatError, continues

__all__ = [
    "SECURE_COMPONENT_OBJECT_ID",
    "Offload",
    "SecureComponentObject",
    "SecureComponentResource",
    "SeramStarter",
    "SeramStatus",
    "register_secure_component_object",
    "secure_component_definition",
    "secure_component_instance",
]

SECURE_COMPONENT_OBJECT_ID = 33000
"""The object id of the Secure Component object (OMNA private range 32769-42768)."""

_DDF_FILE = "33000-1_0.xml"


class SecureComponentResource(IntEnum):
    """Resource ids of the Secure Component object."""

    COMPONENT_TYPE = 0
    SECURE_HARDWARE = 1
    BACKEND = 2
    LABEL = 3
    MANUFACTURER = 4
    MODEL = 5
    SERIAL_NUMBER = 6
    IDENTIFIERS = 7
    PLATFORM_VERSION = 8
    FIRMWARE_VERSION = 9
    SUPPORTED_SERVICES = 10
    DLOA_REGISTRAR = 11
    DLOA_PLATFORM_ID = 12
    DLOA_APPLICATION_ID = 13
    ADMIN_SCRIPT = 30
    ADMIN_TARGET = 31
    RUN_ADMIN_SCRIPT = 32
    ADMIN_RESPONSE = 33
    ADMIN_STATUS = 34
    END_ADMIN_SESSION = 35
    SERAM_REMOTE_AGENT = 36
    START_SERAM_SESSION = 37
    SERAM_STATUS = 38


class SeramStatus(IntEnum):
    """/33000/x/38 SERAM Status."""

    NONE = 0
    RUNNING = 1
    COMPLETED = 2
    FAILED = 3


@cache
def _bundled() -> ObjectDefinition:
    data = (resources.files("lwm2m.secure") / "objects" / _DDF_FILE).read_bytes()
    (definition,) = parse_ddf(data, source=f"lwm2m/secure/objects/{_DDF_FILE}")
    return definition


def secure_component_definition(
    object_id: int = SECURE_COMPONENT_OBJECT_ID,
) -> ObjectDefinition:
    """The object definition, under ``object_id`` (the DDF's id unless overridden).

    >>> d = secure_component_definition(); d.id, d.urn, d.name
    (33000, 'urn:oma:lwm2m:x:33000', 'Secure Component')
    >>> secure_component_definition(42769).urn
    'urn:oma:lwm2m:x:42769'
    """
    definition = _bundled()
    if object_id == definition.id:
        return definition
    return dataclasses.replace(
        definition, id=object_id, urn=default_urn(object_id, definition.version)
    )


def register_secure_component_object(
    registry: ModelRegistry, object_id: int = SECURE_COMPONENT_OBJECT_ID
) -> ObjectDefinition:
    """Add the Secure Component object to ``registry``; return its definition.

    >>> from lwm2m.model.registry import default_registry
    >>> registry = default_registry()
    >>> register_secure_component_object(registry).id in registry.object_ids()
    True
    """
    definition = secure_component_definition(object_id)
    registry.add(definition)
    return definition


def secure_component_instance(info: ComponentInfo, instance_id: int = 0) -> ObjectInstance:
    """The read-only instance describing a component, from its :class:`ComponentInfo`.

    Empty texts and empty lists are left out (the resources are optional).

    >>> from lwm2m.secure.interfaces import ComponentType
    >>> inst = secure_component_instance(ComponentInfo(ComponentType.SOFTWARE, False, "soft"))
    >>> {rid: r.value for rid, r in inst.resources.items()}
    {0: 0, 1: False, 2: 'soft'}
    """
    r = SecureComponentResource
    items: list[Resource] = [
        SingleResource(int(r.COMPONENT_TYPE), ResourceType.INTEGER, info.type.value),
        SingleResource(int(r.SECURE_HARDWARE), ResourceType.BOOLEAN, info.secure_hardware),
        SingleResource(int(r.BACKEND), ResourceType.STRING, info.backend),
    ]
    for rid, text in (
        (r.LABEL, info.label),
        (r.MANUFACTURER, info.manufacturer),
        (r.MODEL, info.model),
        (r.SERIAL_NUMBER, info.serial_number),
        (r.PLATFORM_VERSION, info.platform_version),
        (r.FIRMWARE_VERSION, info.firmware_version),
    ):
        if text:
            items.append(SingleResource(int(rid), ResourceType.STRING, text))
    for rid, texts in (
        (r.IDENTIFIERS, [str(i) for i in info.identifiers]),
        (r.SUPPORTED_SERVICES, list(info.services)),
        (r.DLOA_REGISTRAR, [d.registrar for d in info.dloa]),
        (r.DLOA_PLATFORM_ID, [d.platform_id for d in info.dloa]),
        (r.DLOA_APPLICATION_ID, [d.application_id for d in info.dloa]),
    ):
        if texts:
            items.append(MultipleResource.of(int(rid), ResourceType.STRING, dict(enumerate(texts))))
    return ObjectInstance(instance_id, items)


# -- the client's handler -----------------------------------------------------------------------

logger = logging.getLogger(__name__)

_R = SecureComponentResource


class Offload(Protocol):
    """Runs ``work`` (blocking card I/O) away from the engine and hands its outcome to ``done``
    back in the engine's thread: the result, or the exception it raised."""

    def __call__(
        self,
        work: Callable[[], ResponseScript | None],
        done: Callable[[ResponseScript | None, Exception | None], None],
    ) -> None: ...


class SeramStarter(Protocol):
    """Starts a SERAM 2.0 session (:func:`lwm2m.io.seram_agent.run_seram_session`) with the
    Remote Agent at ``url`` for ``target`` in the background, and calls ``done`` in the engine's
    thread when it ends: None when the Remote Agent stopped it, else the failure."""

    def __call__(
        self,
        url: str,
        session_id: str | None,
        target: bytes,
        done: Callable[[Exception | None], None],
    ) -> None: ...


def run_now(
    work: Callable[[], ResponseScript | None],
    done: Callable[[ResponseScript | None, Exception | None], None],
) -> None:
    """The synchronous :class:`Offload` (for sans-IO use and tests)."""
    try:
        result = work()
    except Exception as exc:
        done(None, exc)
    else:
        done(result, None)


class SecureComponentObject(ObjectEnabler):
    """/33000 on the client: instance ``instance_id`` describes ``component`` (resources 0-13,
    read-only) and, with ``admin_targets`` and a component that runs scripts
    (:class:`~lwm2m.secure.admin.AdminScripts`), relays remote APDU scripts (30-35):

    * Write 30 a Command Scripting Template: decoded and checked at once
      (:func:`~lwm2m.secure.admin.check_script`; 4.00 with the reason otherwise);
    * Write 31 a target AID among ``admin_targets`` (default: the Issuer Security Domain when
      allowed, else the first);
    * Execute 32: 34 becomes Running, the script runs through ``offload``; then 33 holds the
      Response Scripting Template and 34 the outcome (observers are notified). 4.05 while a
      script runs or before one was written;
    * Execute 35 closes the admin session's channel;
    * with ``seram_agents`` and a ``seram`` starter (the asyncio client provides one): Write 36
      one of those Remote Agent URLs, Execute 37 (argument 0: the sessionId) runs a SERAM 2.0
      session whose SE RAM Commands go through the same relay to Admin Target, and 38 tells its
      outcome. A SERAM session and a script run exclude each other (they share the channel).

    Without ``admin_targets`` (the default) resources 30-35 do not exist on this client.

    :raises AdminScriptRefused: a target overlaps an application holding the client's
        credentials (:meth:`~lwm2m.secure.admin.AdminScripts.check_admin_target`).
    """

    def __init__(
        self,
        component: SecureComponent,
        definition: ObjectDefinition | None = None,
        *,
        admin_targets: Collection[bytes] = (),
        offload: Offload = run_now,
        seram_agents: Collection[str] = (),
        seram: SeramStarter | None = None,
        instance_id: int = 0,
    ) -> None:
        super().__init__(definition or secure_component_definition())
        self._component = component
        self._iid = instance_id
        self._identification = secure_component_instance(component.info(), instance_id)
        self._runner = component if isinstance(component, AdminScripts) else None
        self._targets = tuple(admin_targets) if self._runner is not None else ()
        for target in self._targets:  # a configuration error: raised at construction
            assert self._runner is not None
            self._runner.check_admin_target(target)
        self._offload = offload
        self._script: CommandScript | None = None
        self._target = (
            (ISD_AID if ISD_AID in self._targets else self._targets[0]) if self._targets else b""
        )
        self._response = b""
        self._status = AdminStatus.NONE
        self._agents = tuple(seram_agents) if self._targets and seram is not None else ()
        self._seram = seram
        self._agent = self._agents[0] if len(self._agents) == 1 else ""
        self._seram_status = SeramStatus.NONE

    @property
    def admin_enabled(self) -> bool:
        return bool(self._targets)

    @property
    def admin_status(self) -> AdminStatus:
        return self._status

    def instance_ids(self) -> Sequence[int]:
        return [self._iid]

    def _check_instance(self, instance_id: int) -> None:
        if instance_id != self._iid:
            raise NotFound(f"no instance /{self.object_id}/{instance_id}")

    def read(self, instance_id: int, resource_ids: Collection[int] | None = None) -> ObjectInstance:
        self._check_instance(instance_id)
        items: list[Resource] = list(self._identification.resources.values())
        if self._targets:
            items += [
                SingleResource(
                    int(_R.ADMIN_TARGET), ResourceType.STRING, self._target.hex().upper()
                ),
                SingleResource(int(_R.ADMIN_RESPONSE), ResourceType.OPAQUE, self._response),
                SingleResource(int(_R.ADMIN_STATUS), ResourceType.INTEGER, int(self._status)),
            ]
        if self._agents:
            items += [
                SingleResource(int(_R.SERAM_REMOTE_AGENT), ResourceType.STRING, self._agent),
                SingleResource(int(_R.SERAM_STATUS), ResourceType.INTEGER, int(self._seram_status)),
            ]
        if resource_ids is not None:
            wanted = set(resource_ids)
            items = [r for r in items if r.id in wanted]
        return ObjectInstance(instance_id, items)

    def write(
        self, instance_id: int, resources: Sequence[Resource], remove: Collection[int] = ()
    ) -> None:
        self._check_instance(instance_id)
        script, target = self._script, self._target
        agent = self._agent
        for resource in resources:
            if self._agents and resource.id == _R.SERAM_REMOTE_AGENT:
                if not isinstance(resource, SingleResource) or resource.value not in self._agents:
                    raise BadRequest("SERAM Remote Agent: not a URL this client is configured for")
                agent = str(resource.value)
                continue
            if not self._targets or resource.id not in (_R.ADMIN_SCRIPT, _R.ADMIN_TARGET):
                raise MethodNotAllowed(
                    f"/{self.object_id}/{instance_id}/{resource.id} cannot be written"
                )
            if not isinstance(resource, SingleResource):
                raise BadRequest(f"resource {resource.id} is single")
            if resource.id == _R.ADMIN_TARGET:
                target = self._parse_target(resource.value)
            else:
                script = self._parse_script(resource.value)
        if script is not None and (script is not self._script or target != self._target):
            try:
                check_script(script, target)
            except AdminScriptRefused as exc:
                raise BadRequest(f"Admin Script refused: {exc}") from None
        if target != self._target and self._busy():
            raise BadRequest("Admin Target cannot change while a script or SERAM session runs")
        changed_target = target != self._target
        self._script, self._target = script, target
        if changed_target:
            self.changed(instance_id, int(_R.ADMIN_TARGET))
        if agent != self._agent:
            self._agent = agent
            self.changed(instance_id, int(_R.SERAM_REMOTE_AGENT))

    def _busy(self) -> bool:
        return self._status is AdminStatus.RUNNING or self._seram_status is SeramStatus.RUNNING

    def _parse_target(self, value: object) -> bytes:
        if not isinstance(value, str):
            raise BadRequest("Admin Target is an AID in hexadecimal")
        try:
            aid = parse_aid(value)
        except ValueError as exc:
            raise BadRequest(f"Admin Target: {exc}") from None
        if aid not in self._targets:
            raise BadRequest(f"Admin Target {aid.hex().upper()} is not allowed on this client")
        return aid

    @staticmethod
    def _parse_script(value: object) -> CommandScript | None:
        if not isinstance(value, bytes):
            raise BadRequest("Admin Script is opaque")
        if not value:
            return None  # an empty write clears it
        try:
            return CommandScript.decode(value)
        except ScriptFormatError as exc:
            raise BadRequest(f"Admin Script: {exc}") from None

    def execute(self, instance_id: int, resource_id: int, arguments: ExecuteArguments) -> None:
        self._check_instance(instance_id)
        runner = self._runner
        if not self._targets or runner is None:
            raise MethodNotAllowed(
                f"/{self.object_id}/{instance_id}/{resource_id} cannot be executed"
            )
        if resource_id == _R.END_ADMIN_SESSION:
            if self._busy():
                raise MethodNotAllowed("a script or SERAM session is running")
            self._offload(lambda: runner.end_admin_session(), _ignore)
            return
        if resource_id == _R.START_SERAM_SESSION and self._agents:
            self._start_seram(instance_id, arguments)
            return
        if resource_id != _R.RUN_ADMIN_SCRIPT:
            raise MethodNotAllowed(
                f"/{self.object_id}/{instance_id}/{resource_id} cannot be executed"
            )
        script, target = self._script, self._target
        if script is None:
            raise MethodNotAllowed("no Admin Script: write /33000/x/30 first")
        if self._busy():
            raise MethodNotAllowed("a script or SERAM session is running: wait for its status")
        self._status = AdminStatus.RUNNING
        self.changed(instance_id, int(_R.ADMIN_STATUS))
        self._offload(
            lambda: runner.run_admin_script(script, target),
            lambda result, error: self._finished(script, result, error),
        )

    def _start_seram(self, instance_id: int, arguments: ExecuteArguments) -> None:
        seram = self._seram
        assert seram is not None
        if not self._agent:
            raise MethodNotAllowed("no SERAM Remote Agent: write /33000/x/36 first")
        if self._busy():
            raise MethodNotAllowed("a script or SERAM session is running: wait for its status")
        session_id = arguments.get(0)
        if session_id is not None and not 1 <= len(session_id) <= 128:
            raise BadRequest("Start SERAM Session: argument 0, the sessionId, has 1-128 characters")
        self._seram_status = SeramStatus.RUNNING
        self.changed(instance_id, int(_R.SERAM_STATUS))

        def done(error: Exception | None) -> None:
            if error is not None:
                logger.warning("SERAM session failed: %s", type(error).__name__)
            self._seram_status = SeramStatus.FAILED if error else SeramStatus.COMPLETED
            self.changed(self._iid, int(_R.SERAM_STATUS))

        seram(self._agent, session_id, self._target, done)

    def _finished(
        self, script: CommandScript, result: ResponseScript | None, error: Exception | None
    ) -> None:
        if result is not None:
            self._response = result.encode()
            last = result.responses[-1] if result.responses else b""
            complete = result.executed == len(script.commands) and (
                len(last) >= 2 and continues(int.from_bytes(last[-2:], "big"))
            )
            self._status = AdminStatus.COMPLETED if complete else AdminStatus.STOPPED
        else:
            self._response = b""
            if isinstance(error, TargetNotSelectable):
                self._status = AdminStatus.UNKNOWN_APPLICATION
            else:
                if not isinstance(error, ComponentUnavailable):
                    logger.error("admin script failed: %s", type(error).__name__)
                self._status = AdminStatus.UNAVAILABLE
        self.changed(self._iid, int(_R.ADMIN_RESPONSE), int(_R.ADMIN_STATUS))

    def snapshot(self) -> object:
        return (self._script, self._target, self._agent)

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, tuple)
        self._script, self._target, self._agent = snapshot

    def __repr__(self) -> str:
        admin = f", admin targets {len(self._targets)}" if self._targets else ""
        return f"<SecureComponentObject /{self.object_id}/{self._iid}{admin}>"


def _ignore(result: ResponseScript | None, error: Exception | None) -> None:
    if error is not None and not isinstance(error, ComponentUnavailable):
        logger.error("ending the admin session failed: %s", type(error).__name__)
