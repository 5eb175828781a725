"""Bootstrap on the client side (LwM2M-TS-Core 1.1 §5.2 "Bootstrap", §6.1 Bootstrap interface).

Three parts:

1. **Sources consulted at start-up** (the bootstrap order of §5.2.3.2/§5.2.4, spec-reference
   §2.3): :class:`BootstrapSource` s are asked in order — a smartcard source (a later issue)
   first, then :class:`FactoryBootstrap` from the configuration file. The first that returns
   data is applied as Bootstrap-Writes followed by the Finish consistency check. Then the client
   registers; with no usable server, or when every registration fails, it runs client-initiated
   bootstrap with the bootstrap server account.
2. **The Bootstrap interface operations** served to the bootstrap server: Bootstrap-Write
   (no access control, targets created when missing), Bootstrap-Read (/1 and /2 only; /0 and
   /21 are 4.01), Bootstrap-Discover (``</>;lwm2m="1.1"``, ``ssid`` and ``uri`` of accounts),
   Bootstrap-Delete (``/`` keeps the bootstrap server account, its OSCORE instance and /3/0;
   objects whose handler cannot delete are skipped) and Bootstrap-Finish, answered 4.06 when
   :func:`check_configuration` finds an inconsistent configuration (e.g. a /1 instance without
   its /0 instance, no DM server account).
3. **The client-initiated bootstrap state machine** :class:`BootstrapSession`, table-driven
   (style of h11's ``_state.py``: every transition is listed in ``TRANSITIONS``)::

       IDLE --start--> HOLD_OFF --timer (Client Hold Off Time /0/x/11)--> REQUESTING
       REQUESTING --2.04--> BOOTSTRAPPING    REQUESTING --error/timeout--> WAITING_RETRY
       BOOTSTRAPPING --operation--> BOOTSTRAPPING (the deadline moves)
       BOOTSTRAPPING --Finish 2.04--> IDLE   BOOTSTRAPPING --timer--> WAITING_RETRY (rollback)
       WAITING_RETRY --timer (exponential back-off)--> REQUESTING
       IDLE --operation from the bootstrap server--> BOOTSTRAPPING (server-initiated)

   The configuration is snapshotted when bootstrapping starts; without a Finish within
   EXCHANGE_LIFETIME (247 s) of the last bootstrap message the snapshot is restored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from lwm2m.client.accounts import read_accounts
from lwm2m.client.config import ClientConfig, OscoreConfig, SecurityConfig
from lwm2m.client.formats import FormatPolicy
from lwm2m.client.objects.security import SecurityMode
from lwm2m.client.objects.server import acl_instance
from lwm2m.client.tree import BOOTSTRAP_ONLY_OBJECTS, ObjectTree
from lwm2m.coap.numbers import Code
from lwm2m.codec.link import Link
from lwm2m.constants import LWM2M_VERSION
from lwm2m.errors import (
    BadRequest,
    LocalProtocolError,
    MethodNotAllowed,
    Unauthorized,
)
from lwm2m.model.nodes import MultipleResource, ObjectInstance, ObjectNode, Resource, SingleResource
from lwm2m.model.path import Path, PathLevel
from lwm2m.model.values import ObjectLink, ResourceType, Value
from lwm2m.operations.requests import (
    BootstrapDelete,
    BootstrapDiscover,
    BootstrapRead,
    BootstrapWrite,
)
from lwm2m.operations.responses import Response

__all__ = [
    "EXCHANGE_LIFETIME",
    "TRANSITIONS",
    "BootstrapSession",
    "BootstrapSource",
    "BootstrapState",
    "FactoryBootstrap",
    "apply_bootstrap_data",
    "bootstrap_delete",
    "bootstrap_discover",
    "bootstrap_read",
    "bootstrap_write",
    "check_configuration",
    "factory_objects",
    "protected_paths",
]

EXCHANGE_LIFETIME = 247.0
"""RFC 7252 §4.8.2 with default parameters: the bootstrap timeout of §5.2.3.3."""


# -- sources ----------------------------------------------------------------------------------


class BootstrapSource(Protocol):
    """Bootstrap information available without a bootstrap server (smartcard, factory)."""

    name: str

    def load(self, tree: ObjectTree) -> Sequence[ObjectNode] | None:
        """The objects to write (as Bootstrap-Write of each object), or None to pass."""
        ...


class FactoryBootstrap:
    """Factory bootstrap from the configuration file (§5.2.3.1).

    It applies only while the tree holds no Security instance, so that a persistent
    :class:`~lwm2m.client.objects.base.InstanceStore` keeps what a bootstrap server wrote.
    """

    name = "factory"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config

    def load(self, tree: ObjectTree) -> Sequence[ObjectNode] | None:
        if tree.instance_ids(0):
            return None
        return factory_objects(self.config)


def _security_resources(security: SecurityConfig) -> list[Resource]:
    resources: list[Resource] = [
        SingleResource(2, ResourceType.INTEGER, int(security.mode)),
        SingleResource(3, ResourceType.OPAQUE, security.identity),
        SingleResource(4, ResourceType.OPAQUE, security.server_public_key),
        SingleResource(5, ResourceType.OPAQUE, security.secret_key.reveal()),
    ]
    if security.matching_type is not None:
        resources.append(SingleResource(13, ResourceType.UNSIGNED_INTEGER, security.matching_type))
    if security.sni is not None:
        resources.append(SingleResource(14, ResourceType.STRING, security.sni))
    if security.certificate_usage is not None:
        resources.append(
            SingleResource(15, ResourceType.UNSIGNED_INTEGER, security.certificate_usage)
        )
    if security.ciphersuites:
        resources.append(
            MultipleResource.of(
                16, ResourceType.UNSIGNED_INTEGER, dict(enumerate(security.ciphersuites))
            )
        )
    return resources


def _oscore_instance(iid: int, oscore: OscoreConfig) -> ObjectInstance:
    """A /21 instance (Core E.9: 0 Master Secret, 1 Sender ID, 2 Recipient ID, 3 AEAD
    Algorithm, 4 HMAC Algorithm, 5 Master Salt)."""
    resources: list[Resource] = [
        SingleResource(0, ResourceType.OPAQUE, oscore.master_secret.reveal()),
        SingleResource(1, ResourceType.OPAQUE, oscore.sender_id),
        SingleResource(2, ResourceType.OPAQUE, oscore.recipient_id),
        SingleResource(5, ResourceType.OPAQUE, oscore.master_salt),
    ]
    if oscore.aead is not None:
        resources.append(SingleResource(3, ResourceType.INTEGER, oscore.aead))
    if oscore.hkdf is not None:
        resources.append(SingleResource(4, ResourceType.INTEGER, oscore.hkdf))
    return ObjectInstance(iid, resources)


def factory_objects(config: ClientConfig) -> list[ObjectNode]:
    """/0, /1 (and /2, /21) as the configuration describes them."""
    security: list[ObjectInstance] = []
    servers: list[ObjectInstance] = []
    oscore: list[ObjectInstance] = []

    def oscore_link(settings: SecurityConfig) -> list[Resource]:
        if settings.oscore is None:
            return []
        iid = len(oscore)
        oscore.append(_oscore_instance(iid, settings.oscore))
        return [SingleResource(17, ResourceType.OBJLNK, ObjectLink(21, iid))]

    if config.bootstrap is not None:
        bs = config.bootstrap
        resources = [
            SingleResource(0, ResourceType.STRING, bs.uri),
            SingleResource(1, ResourceType.BOOLEAN, True),
            SingleResource(11, ResourceType.INTEGER, bs.hold_off),
            SingleResource(12, ResourceType.INTEGER, bs.account_timeout),
            *_security_resources(bs.security),
            *oscore_link(bs.security),
        ]
        security.append(ObjectInstance(0, resources))
    for index, server in enumerate(config.servers):
        resources = [
            SingleResource(0, ResourceType.STRING, server.uri),
            SingleResource(1, ResourceType.BOOLEAN, False),
            SingleResource(10, ResourceType.INTEGER, server.short_server_id),
            *_security_resources(server.security),
            *oscore_link(server.security),
        ]
        security.append(ObjectInstance(len(security), resources))
        values: dict[int, tuple[ResourceType, Value]] = {
            0: (ResourceType.INTEGER, server.short_server_id),
            1: (ResourceType.INTEGER, server.lifetime),
            2: (ResourceType.INTEGER, server.default_pmin),
            3: (ResourceType.INTEGER, server.default_pmax),
            5: (ResourceType.INTEGER, server.disable_timeout),
            6: (ResourceType.BOOLEAN, server.notification_storing),
            7: (ResourceType.STRING, server.binding),
            13: (ResourceType.UNSIGNED_INTEGER, server.priority),
            14: (ResourceType.UNSIGNED_INTEGER, server.initial_delay),
            15: (ResourceType.BOOLEAN, server.failure_block),
            16: (ResourceType.BOOLEAN, server.bootstrap_on_failure),
            17: (ResourceType.UNSIGNED_INTEGER, server.retry_count),
            18: (ResourceType.UNSIGNED_INTEGER, server.retry_timer),
            19: (ResourceType.UNSIGNED_INTEGER, server.sequence_delay),
            20: (ResourceType.UNSIGNED_INTEGER, server.sequence_retry_count),
            23: (ResourceType.BOOLEAN, server.mute_send),
        }
        servers.append(
            ObjectInstance(
                index,
                [
                    SingleResource(rid, type_, value)
                    for rid, (type_, value) in values.items()
                    if value is not None
                ],
            )
        )
    objects = [ObjectNode(0, security), ObjectNode(1, servers)]
    if oscore:
        objects.append(ObjectNode(21, oscore))
    if config.acls:
        acls = [
            acl_instance(i, a.object_id, a.instance_id, a.owner, dict(a.rights))
            for i, a in enumerate(config.acls)
        ]
        objects.append(ObjectNode(2, acls))
    return objects


def apply_bootstrap_data(tree: ObjectTree, objects: Sequence[ObjectNode]) -> list[str]:
    """Write ``objects`` as Bootstrap-Writes; returns the Finish check's problems (the data stays
    written either way, the caller decides)."""
    for node in objects:
        if node.id in tree:
            tree.write(Path(node.id), node, bootstrap=True)
    return check_configuration(tree)


# -- the Bootstrap interface -------------------------------------------------------------------


def protected_paths(tree: ObjectTree) -> set[Path]:
    """What Bootstrap-Delete keeps: the bootstrap server's /0 instance and its /21 instance,
    and /3/0."""
    kept = {Path(3, 0)}
    security = tree.get(0)
    if security is None:
        return kept
    for iid in security.instance_ids():
        instance = security.read(iid, [1, 17])
        flag = instance.resources.get(1)
        if isinstance(flag, SingleResource) and flag.value is True:
            kept.add(Path(0, iid))
            link = instance.resources.get(17)
            if isinstance(link, SingleResource) and isinstance(link.value, ObjectLink):
                kept.add(Path(link.value.object_id, link.value.instance_id))
    return kept


def bootstrap_write(tree: ObjectTree, request: BootstrapWrite) -> Response:
    """Bootstrap-Write (§6.1.7.4)."""
    if request.path.is_root or request.path.level > PathLevel.RESOURCE:
        raise BadRequest("Bootstrap-Write addresses an object, an instance or a resource")
    tree.write(request.path, request.node, bootstrap=True)
    return Response(Code.CHANGED)


def bootstrap_read(tree: ObjectTree, request: BootstrapRead, formats: FormatPolicy) -> Response:
    """Bootstrap-Read (§6.1.7.2): the Server and Access Control objects only."""
    object_id = request.path.object_id
    if object_id is None:
        raise MethodNotAllowed("Bootstrap-Read addresses /1 or /2")
    if object_id in BOOTSTRAP_ONLY_OBJECTS:
        raise Unauthorized(f"/{object_id} cannot be read")
    if object_id not in (1, 2):
        raise MethodNotAllowed("Bootstrap-Read addresses /1 or /2")
    if request.path.level > PathLevel.OBJECT_INSTANCE:
        raise BadRequest("Bootstrap-Read addresses an object or an object instance")
    node = tree.read(request.path)
    return Response(
        Code.CONTENT, content=node, content_format=formats.for_node(node, request.accept)
    )


def bootstrap_discover(tree: ObjectTree, request: BootstrapDiscover) -> Response:
    """Bootstrap-Discover (§6.1.7.3): the payload starts with the enabler version
    (``</>;lwm2m="1.1"``) whatever the target, as the spec's example of a Discover of /0 does
    (and Leshan's client)."""
    path = request.path
    if path.level > PathLevel.OBJECT:
        raise BadRequest("Bootstrap-Discover addresses / or an object")
    links = [Link("/", {"lwm2m": LWM2M_VERSION})]
    object_ids = (
        tree.object_ids() if path.is_root else [tree.handler(path.object_id or 0).definition.id]
    )
    for oid in object_ids:
        handler = tree.handler(oid)
        version = handler.definition.version
        instance_ids = list(handler.instance_ids())
        if version != "1.0" or not instance_ids:
            links.append(Link(f"/{oid}", {"ver": version} if version != "1.0" else {}))
        links.extend(
            Link(f"/{oid}/{iid}", _discover_params(tree, oid, iid)) for iid in instance_ids
        )
    return Response(Code.CONTENT, links=tuple(links))


def _discover_params(tree: ObjectTree, oid: int, iid: int) -> dict[str, str | int]:
    params: dict[str, str | int] = {}
    if oid not in (0, 1):
        return params
    resources = tree.handler(oid).read(iid, [0, 1, 10]).resources
    ssid = resources.get(10 if oid == 0 else 0)
    if isinstance(ssid, SingleResource) and isinstance(ssid.value, int):
        params["ssid"] = ssid.value
    uri = resources.get(0)
    if oid == 0 and isinstance(uri, SingleResource) and isinstance(uri.value, str):
        params["uri"] = uri.value
    return params


def bootstrap_delete(tree: ObjectTree, request: BootstrapDelete) -> Response:
    """Bootstrap-Delete (§6.1.7.5)."""
    path = request.path
    kept = protected_paths(tree)
    if path.level is PathLevel.OBJECT_INSTANCE:
        if path in kept:
            raise BadRequest(f"{path} cannot be deleted by the bootstrap server")
        assert path.object_id is not None
        assert path.object_instance_id is not None
        if path.object_instance_id in tree.instance_ids(path.object_id):
            try:
                tree.delete(path.object_id, path.object_instance_id)
            except MethodNotAllowed:
                # an instance the device provides (/5/0 Firmware Update): Bootstrap-Delete
                # answers only 2.02 or 4.00 (Core §6.1.7.5), as for /3/0
                raise BadRequest(f"{path} cannot be deleted by the bootstrap server") from None
        return Response(Code.DELETED)
    object_ids = tree.object_ids() if path.is_root else [path.object_id or 0]
    for oid in object_ids:
        tree.handler(oid)
        for iid in tree.instance_ids(oid):
            if Path(oid, iid) in kept:
                continue
            try:
                tree.delete(oid, iid)
            except MethodNotAllowed:
                break  # an object whose instances the device provides: left as is
    return Response(Code.DELETED)


def check_configuration(tree: ObjectTree) -> list[str]:
    """The consistency problems Bootstrap-Finish answers 4.06 for (empty: consistent)."""
    accounts, problems = read_accounts(tree)
    if not any(not a.bootstrap for a in accounts):
        problems.append("no LwM2M server account is configured")
    security = tree.get(0)
    for account in accounts:
        if security is None:  # pragma: no cover - read_accounts found accounts
            break
        iid = account.security_instance_id
        needs = {
            SecurityMode.PSK: (3, 5),
            SecurityMode.RPK: (3, 4, 5),
            SecurityMode.CERTIFICATE: (3, 4, 5),
            SecurityMode.CERTIFICATE_EST: (4,),
        }.get(account.security_mode, ())
        if needs:
            present = security.read(iid, list(needs)).resources
            for rid in needs:
                resource = present.get(rid)
                if not isinstance(resource, SingleResource) or not resource.value:
                    problems.append(
                        f"/0/{iid}: security mode {account.security_mode.name} needs /0/{iid}/{rid}"
                    )
        if account.oscore is not None:
            link = account.oscore
            if link.object_id != 21 or link.instance_id not in tree.instance_ids(21):
                problems.append(f"/0/{iid}/17 links to a missing OSCORE instance")
    return problems


# -- the client-initiated bootstrap state machine ----------------------------------------------


class BootstrapState(Enum):
    IDLE = "idle"
    HOLD_OFF = "hold-off"
    REQUESTING = "requesting"
    BOOTSTRAPPING = "bootstrapping"
    WAITING_RETRY = "waiting-retry"


class _Input(Enum):
    START = "start"
    TIMER = "timer"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    OPERATION = "operation"
    FINISHED = "finished"
    CANCEL = "cancel"


_S = BootstrapState
TRANSITIONS: dict[BootstrapState, dict[_Input, BootstrapState]] = {
    _S.IDLE: {_Input.START: _S.HOLD_OFF, _Input.OPERATION: _S.BOOTSTRAPPING},
    _S.HOLD_OFF: {
        _Input.TIMER: _S.REQUESTING,
        _Input.OPERATION: _S.BOOTSTRAPPING,
        _Input.CANCEL: _S.IDLE,
    },
    _S.REQUESTING: {
        _Input.ACCEPTED: _S.BOOTSTRAPPING,
        _Input.REJECTED: _S.WAITING_RETRY,
        _Input.OPERATION: _S.BOOTSTRAPPING,
        _Input.CANCEL: _S.IDLE,
    },
    _S.BOOTSTRAPPING: {
        _Input.OPERATION: _S.BOOTSTRAPPING,
        _Input.ACCEPTED: _S.BOOTSTRAPPING,
        _Input.REJECTED: _S.BOOTSTRAPPING,
        _Input.FINISHED: _S.IDLE,
        _Input.TIMER: _S.WAITING_RETRY,
        _Input.CANCEL: _S.IDLE,
    },
    _S.WAITING_RETRY: {
        _Input.TIMER: _S.REQUESTING,
        _Input.OPERATION: _S.BOOTSTRAPPING,
        _Input.CANCEL: _S.IDLE,
    },
}
"""Every allowed transition; anything else is a :class:`~lwm2m.errors.LocalProtocolError`."""


@dataclass(frozen=True, slots=True)
class BootstrapOutcome:
    """What a step of the session asks the engine to do."""

    send_request: bool = False
    """Send a Bootstrap-Request now."""
    failed: str | None = None
    """Bootstrapping failed: roll back (reason given)."""


class BootstrapSession:
    """Timing of client-initiated bootstrap (see the module docstring).

    :param retry_delay: first back-off after a failure; doubled per failure up to
        ``max_retry_delay``.
    """

    def __init__(
        self,
        *,
        timeout: float = EXCHANGE_LIFETIME,
        retry_delay: float = 60.0,
        max_retry_delay: float = 3600.0,
    ) -> None:
        self.state = BootstrapState.IDLE
        self.timeout = timeout
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.deadline: float | None = None
        self.failures = 0
        self.snapshot: dict[int, object] | None = None

    @property
    def active(self) -> bool:
        """Between the decision to bootstrap and Finish (or giving up)."""
        return self.state is not BootstrapState.IDLE

    @property
    def exchanging(self) -> bool:
        """A Bootstrap-Request is out or the bootstrap server is writing (not waiting)."""
        return self.state in (BootstrapState.REQUESTING, BootstrapState.BOOTSTRAPPING)

    def _move(self, event: _Input) -> BootstrapState:
        target = TRANSITIONS[self.state].get(event)
        if target is None:
            raise LocalProtocolError(f"bootstrap: {event.value} is not valid in {self.state.value}")
        self.state = target
        return target

    def start(self, now: float, hold_off: float) -> None:
        """Begin client-initiated bootstrap after the Client Hold Off Time."""
        if self.state is BootstrapState.IDLE:
            self._move(_Input.START)
            self.deadline = now + hold_off
        elif self.state is BootstrapState.WAITING_RETRY:
            self.deadline = now  # retry at once

    def handle_timer(self, now: float) -> BootstrapOutcome:
        if self.deadline is None or now < self.deadline:
            return BootstrapOutcome()
        if self.state in (BootstrapState.HOLD_OFF, BootstrapState.WAITING_RETRY):
            self._move(_Input.TIMER)
            self.deadline = None
            return BootstrapOutcome(send_request=True)
        if self.state is BootstrapState.BOOTSTRAPPING:
            self._move(_Input.TIMER)
            return self._failed(now, "no Bootstrap-Finish within EXCHANGE_LIFETIME")
        return BootstrapOutcome()

    def request_sent(self) -> None:
        """The Bootstrap-Request is on its way (no deadline: its response or failure comes)."""
        self.deadline = None

    def request_answered(self, now: float, success: bool, reason: str = "") -> BootstrapOutcome:
        """The answer to the Bootstrap-Request (2.04) or its failure."""
        if self.state is not BootstrapState.REQUESTING:
            return BootstrapOutcome()
        if success:
            self._move(_Input.ACCEPTED)
            self.deadline = now + self.timeout
            return BootstrapOutcome()
        self._move(_Input.REJECTED)
        return self._failed(now, reason or "Bootstrap-Request failed")

    def operation(self, now: float) -> bool:
        """A bootstrap interface request arrived; returns True when it starts a
        (server-initiated) bootstrap. A Bootstrap-Request in flight counts as bootstrapping:
        the bootstrap server may start writing before its 2.04 reaches the client."""
        started = self.state not in (BootstrapState.BOOTSTRAPPING, BootstrapState.REQUESTING)
        self._move(_Input.OPERATION)
        self.deadline = now + self.timeout
        return started

    def finished(self) -> None:
        """Bootstrap-Finish succeeded."""
        self._move(_Input.FINISHED)
        self.deadline = None
        self.failures = 0
        self.snapshot = None

    def cancel(self) -> None:
        if self.state is not BootstrapState.IDLE:
            self._move(_Input.CANCEL)
        self.deadline = None

    def _failed(self, now: float, reason: str) -> BootstrapOutcome:
        self.failures += 1
        delay = min(self.retry_delay * 2 ** (self.failures - 1), self.max_retry_delay)
        self.deadline = now + delay
        return BootstrapOutcome(failed=reason)
