"""The LwM2M client engine: sans-IO, driven by ``now`` (LwM2M-TS-Core 1.1 §5 and §6: bootstrap,
registration, device management, information reporting; Transport §6.4 queue mode).

Theory of operation (the aioquic/h11 shape; ARCHITECTURE.md decision 1):

Inputs

- :meth:`ClientEngine.start` / :meth:`ClientEngine.stop` (API calls);
- :meth:`ClientEngine.handle_request` — a CoAP request from a server, attributed by the adapter
  to a :class:`~lwm2m.client.accounts.Peer`; returns the response message at once (the engine
  never blocks);
- :meth:`ClientEngine.handle_response` — the outcome of one of our requests (a response
  message, or None with a reason when the transport gave up);
- :meth:`ClientEngine.handle_timer` — when :meth:`ClientEngine.get_timer` says so;
- :meth:`ClientEngine.observation_cancelled` — the CoAP layer saw a Reset to a notification;
- :meth:`ClientEngine.send` — the application sends data (``POST /dp``).

Outputs

- :meth:`ClientEngine.requests_to_send` — Register, Update, De-register, Bootstrap-Request and
  Send requests as CoAP messages with the connection they need;
- :meth:`ClientEngine.notifications_to_send` — notifications for observations, by ``(ssid,
  token)``;
- :meth:`ClientEngine.next_event` — :mod:`lwm2m.client.events`;
- :meth:`ClientEngine.get_timer` — the next deadline.

After every input, drain the outputs and re-arm one timer.

Start-up follows the bootstrap order (spec-reference §2.3): bootstrap sources (smartcard hook,
then factory) → register with every DM account (priority order, /1/x/13-16) → client-initiated
bootstrap when there is no account or registrations failed (/1/x/16).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections import deque
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass

from lwm2m.client.access import AccessControl
from lwm2m.client.accounts import (
    ConnectionSecurity,
    Peer,
    PeerCredential,
    ServerAccount,
    UnsupportedSecurityMode,
    match_account,
    read_accounts,
)
from lwm2m.client.arguments import ExecuteArguments
from lwm2m.client.attributes import AttributeStore, EffectiveAttributes
from lwm2m.client.bootstrap import (
    BootstrapSession,
    BootstrapSource,
    FactoryBootstrap,
    apply_bootstrap_data,
    bootstrap_delete,
    bootstrap_discover,
    bootstrap_read,
    bootstrap_write,
    check_configuration,
)
from lwm2m.client.config import ClientConfig
from lwm2m.client.dm import DeviceManagement
from lwm2m.client.events import (
    Awake,
    BootstrapFailed,
    BootstrapFinished,
    BootstrapStarted,
    ClientEvent,
    Deregistered,
    ObjectEvent,
    Registered,
    RegistrationFailed,
    RegistrationUpdated,
    SendCompleted,
    Stopped,
)
from lwm2m.client.formats import FormatPolicy
from lwm2m.client.notify import Content, Observation, ObservationRegistry
from lwm2m.client.objects.base import InstanceStore, MemoryInstanceStore, ObjectHandler
from lwm2m.client.objects.device import Device
from lwm2m.client.objects.security import Credentials, OscoreObject, SecurityObject
from lwm2m.client.objects.server import AccessControlObject, ServerObject
from lwm2m.client.registration import (
    Effect,
    Registration,
    RegistrationParameters,
    RegistrationState,
    Send,
)
from lwm2m.client.tree import BOOTSTRAP_ONLY_OBJECTS, ObjectTree
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.link import Link, format_links
from lwm2m.constants import LWM2M_VERSION
from lwm2m.errors import (
    CodecError,
    LocalProtocolError,
    MethodNotAllowed,
    NotFound,
    RequestError,
    SecureComponentUnavailable,
    ServiceUnavailable,
    Unauthorized,
)
from lwm2m.model.nodes import Node
from lwm2m.model.path import Path
from lwm2m.model.registry import ModelRegistry
from lwm2m.operations.coap_mapping import decode_downlink, encode_request, encode_response
from lwm2m.operations.requests import (
    BootstrapDelete,
    BootstrapDiscover,
    BootstrapFinish,
    BootstrapRead,
    BootstrapRequest,
    BootstrapWrite,
    CancelObservation,
    CancelObserveComposite,
    Deregister,
    DownlinkRequest,
    Observe,
    ObserveComposite,
    Read,
    ReadComposite,
    Register,
    Update,
    UplinkRequest,
    WriteAttributes,
)
from lwm2m.operations.requests import Send as SendRequest
from lwm2m.operations.responses import Response

__all__ = ["ClientEngine", "OutgoingNotification", "OutgoingRequest"]

#: Notifications kept per observation while its server is unreachable.
MAX_STORED_NOTIFICATIONS = 64


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A request the adapter must send, then report with ``handle_response(request_id, ...)``."""

    request_id: int
    message: Message
    connection: ConnectionSecurity
    """Which account, at which URI, in which security mode (the adapter's connector opens it)."""
    operation: UplinkRequest


@dataclass(frozen=True, slots=True)
class OutgoingNotification:
    """A notification for the observation ``(short_server_id, token)``."""

    short_server_id: int
    token: bytes
    message: Message
    """Code and payload; the CoAP layer adds token, type and the Observe sequence number."""
    connection: ConnectionSecurity


@dataclass(frozen=True, slots=True)
class _Pending:
    kind: str
    ssid: int | None
    operation: UplinkRequest


#: The answer for a request or notification that needs a Secure Component that is gone (a card
#: holding /0, /1 and /2 that went away: access rights cannot be decided, so nothing is served
#: until it is back). The message names no component detail.
_COMPONENT_UNAVAILABLE = ServiceUnavailable("the Secure Component is unavailable")


def _error_message(exc: RequestError) -> Message:
    return Message(exc.code, str(exc).encode())


def component_unavailable_response() -> Message:
    """The 5.03 for what needs a Secure Component that is gone (also what the I/O client
    answers when such a failure reaches it outside the engine's request handling)."""
    return _error_message(_COMPONENT_UNAVAILABLE)


class ClientEngine:
    """The LwM2M client state machine (see the module docstring).

    :param config: endpoint name, factory accounts, queue mode, formats.
    :param objects: application object handlers (e.g. a :class:`~lwm2m.client.objects.
        firmware.FirmwareUpdate`); /0, /1, /2 and /3 are created when not given.
    :param store: where /0, /1 and /2 keep their instances (default: in memory) — the
        Secure Component seam.
    :param sources: start-up bootstrap sources, consulted in order (default: the factory
        bootstrap of ``config``); put a smartcard source first.
    :param wall_clock: the device's wall clock for /3/0/13 when this engine creates /3
        (the asyncio runner passes :func:`time.time`; never read by the engine itself).
    """

    def __init__(
        self,
        config: ClientConfig,
        objects: Iterable[ObjectHandler] = (),
        *,
        store: InstanceStore | None = None,
        sources: Sequence[BootstrapSource] | None = None,
        registry: ModelRegistry | None = None,
        wall_clock: Callable[[], float] | None = None,
        bootstrap_retry_delay: float = 60.0,
    ) -> None:
        self.config = config
        self.formats: FormatPolicy = config.formats
        self.tree = ObjectTree(registry=registry)
        store = store if store is not None else MemoryInstanceStore()
        given = {h.definition.id: h for h in objects}
        defaults: dict[int, ObjectHandler] = {
            0: SecurityObject(store),
            1: ServerObject(store),
            2: AccessControlObject(store),
            21: OscoreObject(store),  # what /0/x/17 links to (RFC 8613 over coap://)
        }
        if 3 not in given:
            device = config.device
            defaults[3] = Device(
                manufacturer=device.manufacturer,
                model_number=device.model_number,
                serial_number=device.serial_number,
                firmware_version=device.firmware_version,
                device_type=device.device_type,
                hardware_version=device.hardware_version,
                software_version=device.software_version,
                supported_bindings="UQ",
                wall_clock=wall_clock,
            )
        for handler in {**defaults, **given}.values():
            self.tree.add(handler)
        server = self.tree.get(1)
        if isinstance(server, ServerObject):
            server.actions = self
        self.tree.listener = self
        self.sources: list[BootstrapSource] = (
            list(sources) if sources is not None else [FactoryBootstrap(config)]
        )
        self.attributes = AttributeStore()
        self.access = AccessControl(self.tree)
        self.dm = DeviceManagement(self.tree, self.access, self.attributes, self.formats)
        self.observations = ObservationRegistry()
        self.bootstrap = BootstrapSession(retry_delay=bootstrap_retry_delay)
        self.accounts: dict[int, ServerAccount] = {}
        self.registrations: dict[int, Registration] = {}
        self._addresses: dict[int, Hashable] = {}
        self._identities: dict[int, PeerCredential] = {}
        self._pending: dict[int, _Pending] = {}
        self._request_ids = itertools.count(1)
        self._requests: list[OutgoingRequest] = []
        self._notifications: list[OutgoingNotification] = []
        self._events: deque[ClientEvent] = deque()
        self._now = 0.0
        self._started = False
        self._stopping = False
        self._chain: list[int] = []
        self._known_links: dict[tuple[str, bool], tuple[Link, ...]] = {}
        self._accounts_dirty = False
        self._objects_dirty = False
        self._update_servers: set[int] = set()
        self._refresh_attributes = False
        self._bootstrap_wanted = False
        self._purge_at: float | None = None
        self._purge_deferred = False  # the purge fell due during a bootstrap
        self.on_change: Callable[[], None] | None = None
        """Called when an object changes outside an engine input (the application set a
        value): the driver should call :meth:`handle_timer` soon so that observers are
        notified."""

    # ==========================================================================================
    # outputs
    # ==========================================================================================

    def requests_to_send(self) -> list[OutgoingRequest]:
        """Requests produced since the last call (send each, then report its outcome)."""
        out, self._requests = self._requests, []
        return out

    def notifications_to_send(self) -> list[OutgoingNotification]:
        """Notifications produced since the last call."""
        out, self._notifications = self._notifications, []
        return out

    def next_event(self) -> ClientEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must be called next (None: only after another input)."""
        times = [
            t
            for t in (
                self.bootstrap.deadline,
                self._purge_at,
                self.observations.deadline(),
                *(r.next_timer() for r in self.registrations.values()),
            )
            if t is not None
        ]
        return min(times) if times else None

    # ==========================================================================================
    # API
    # ==========================================================================================

    @property
    def objects(self) -> ObjectTree:
        """The object tree (application access: read, write, handlers)."""
        return self.tree

    @property
    def endpoint(self) -> str:
        return self.config.endpoint

    def start(self, now: float) -> None:
        """Apply the start-up bootstrap sources and begin registering (or bootstrapping)."""
        if self._started:
            raise LocalProtocolError("the client engine is already started")
        self._now = now
        self._started = True
        self._stopping = False
        for source in self.sources:
            data = source.load(self.tree)
            if data is None:
                continue
            problems = apply_bootstrap_data(self.tree, data)
            if any(a.bootstrap for a in read_accounts(self.tree)[0]):
                # client-initiated bootstrap completes a configuration without DM servers
                problems = [p for p in problems if "no LwM2M server account" not in p]
            if problems:
                self._events.append(BootstrapFailed(f"{source.name}: {problems[0]}", None))
            else:
                self._events.append(BootstrapFinished(source.name))
            break
        self._accounts_dirty = False
        self._load_accounts()
        self._begin(now)
        self._after_input(now)

    def stop(self, now: float) -> None:
        """De-register from every server; :class:`~lwm2m.client.events.Stopped` follows."""
        self._now = now
        self._stopping = True
        self.bootstrap.cancel()
        for registration in list(self.registrations.values()):
            self._apply(registration, registration.stop(now), now)
        self._check_stopped()
        self._after_input(now)

    def stop_now(self) -> None:
        """The adapter stops waiting (its grace ran out): registrations still registering or
        de-registering are forgotten without an answer, and :class:`Stopped` follows."""
        if not self._stopping:
            return
        for registration in self.registrations.values():
            if registration.stopping or registration.state is RegistrationState.DEREGISTERING:
                registration.abandon()
        self._check_stopped()

    def bind_address(
        self,
        security_instance_id: int,
        address: Hashable,
        identity: PeerCredential | None = None,
    ) -> None:
        """The adapter connected an account: its URI resolved to ``address`` and, over DTLS,
        the server authenticated as ``identity``. Requests from that address (and identity) are
        attributed to the account."""
        self._addresses[security_instance_id] = address
        if identity is not None:
            self._identities[security_instance_id] = identity
        else:
            self._identities.pop(security_instance_id, None)

    def credentials(self, security_instance_id: int) -> Credentials:
        """The keying material of an account, for the transport (the DTLS issue). Raises
        UnsupportedSecurityMode when the Security handler cannot provide it."""
        handler = self.tree.get(0)
        provider = getattr(handler, "credentials", None)
        if provider is None:
            raise UnsupportedSecurityMode("the Security object provides no credentials")
        credentials: Credentials = provider(security_instance_id)
        link = getattr(handler, "oscore_link", None)
        oscore_link = link(security_instance_id) if link is not None else None
        if oscore_link is None:
            return credentials
        # /0/x/17 OSCORE Security Mode names the /21 instance of this account (Core E.1)
        oscore = self.tree.get(21)
        material = getattr(oscore, "material", None)
        if oscore_link.object_id != 21 or material is None:
            raise UnsupportedSecurityMode(
                f"/0/{security_instance_id}/17 links to {oscore_link}, not an OSCORE instance"
            )
        try:
            found = material(oscore_link.instance_id)
        except NotFound:
            raise UnsupportedSecurityMode(
                f"/0/{security_instance_id}/17 links to {oscore_link}, which does not exist"
            ) from None
        return dataclasses.replace(credentials, oscore=found)

    def address_of(self, connection: ConnectionSecurity) -> Hashable:
        """The transport address of an account (bound by the adapter, else from its URI)."""
        return self._addresses.get(connection.security_instance_id, connection.uri.address)

    def account_for(self, peer: Peer) -> ServerAccount | None:
        """The server account a peer stands for (None: unknown peer, answered 4.01)."""
        return match_account(list(self.accounts.values()), peer, self._addresses, self._identities)

    def send(
        self,
        paths: Sequence[Path],
        now: float,
        *,
        timestamp: float | None = None,
        short_server_id: int | None = None,
    ) -> list[int]:
        """Send the current values of ``paths`` (``POST /dp``, §6.4.6) to every registered
        server that does not mute Send (/1/x/23; absent or true = muted), or to one.

        ``timestamp`` is the wall-clock time of the values (the engine reads no clock).
        Returns the request ids; :class:`~lwm2m.client.events.SendCompleted` follows for each.
        Raises LocalProtocolError when no server may receive it.
        """
        self._now = now
        ids: list[int] = []
        for registration in self.registrations.values():
            ssid = registration.ssid
            if short_server_id is not None and ssid != short_server_id:
                continue
            if not registration.registered or registration.account.mute_send:
                continue
            if registration.legacy:  # Send is a 1.1 operation (Core §6.4.6)
                continue
            nodes: dict[Path, Node] = {}
            for path in paths:
                try:
                    nodes[path] = self.dm.read(ssid, path)
                except RequestError:
                    continue
            if not nodes:
                continue
            op = SendRequest((TimestampedNodes(timestamp, nodes),), self.formats.send)
            self._apply(registration, registration.wake(now), now)
            ids.append(self._send(op, "send", registration.account))
        if not ids:
            raise LocalProtocolError("no registered server accepts Send for these paths")
        self._after_input(now)
        return ids

    def request_bootstrap(self, now: float) -> None:
        """Start client-initiated bootstrap (as /1/x/9 does)."""
        self._now = now
        self._bootstrap_wanted = True
        self._after_input(now)

    def request_update(self, now: float, short_server_id: int | None = None) -> None:
        """Send a Registration Update to one server or all."""
        self._now = now
        for registration in self.registrations.values():
            if short_server_id is None or registration.ssid == short_server_id:
                self._apply(registration, registration.request_update(now), now)
        self._after_input(now)

    def reprovision(
        self,
        now: float,
        short_server_ids: Collection[int],
        change: Callable[[ObjectTree], object],
        *,
        deregister: bool = False,
    ) -> None:
        """Replace accounts outside a bootstrap session (smartcard bootstrap re-check,
        spec-reference §2.3): the registrations with ``short_server_ids`` end (a De-register is
        sent first when ``deregister``; best effort, its outcome is not awaited) and their
        pending requests are dropped, ``change(tree)`` rewrites the configuration, then the
        accounts are reloaded and every DM account without a registration registers at once."""
        self._now = now
        for ssid in short_server_ids:
            registration = self.registrations.pop(ssid, None)
            if registration is None:
                continue
            if deregister and registration.registered and registration.location is not None:
                self._send(Deregister(registration.location), "deregister", registration.account)
            for request_id, pending in list(self._pending.items()):
                if pending.ssid == ssid and pending.kind != "deregister":
                    del self._pending[request_id]
            registration.abandon()
            self.observations.remove_server(ssid)
            self.attributes.remove_server(ssid)
        self._chain = [s for s in self._chain if s not in short_server_ids]
        change(self.tree)
        self._accounts_dirty = False
        self._load_accounts()
        if self._started and not self._stopping:
            self._start_new_accounts(now)
        self._after_input(now)

    def is_pending(self, request_id: int) -> bool:
        """Whether the engine still waits for the outcome of ``request_id`` (False once
        :meth:`reprovision` dropped it)."""
        return request_id in self._pending

    # ==========================================================================================
    # requests from servers
    # ==========================================================================================

    def handle_request(self, message: Message, peer: Peer, now: float) -> Message:
        """Serve a request of a server or the bootstrap server; returns the response (code,
        options and payload — the CoAP layer sets type, Message ID and token). An Observe
        that succeeds carries an Observe option, so the CoAP layer records the observer."""
        self._now = now
        account = self.account_for(peer)
        if account is None:
            return Message(Code.UNAUTHORIZED, b"unknown peer")
        if account.bootstrap:
            response = self._bootstrap_request(message, now)
        else:
            response = self._dm_request(message, account, now)
        self._after_input(now)
        return response

    def _dm_request(self, message: Message, account: ServerAccount, now: float) -> Message:
        ssid = account.short_server_id
        assert ssid is not None
        registration = self.registrations.get(ssid)
        if registration is not None:
            self._apply(registration, registration.activity(now), now)
        segments = message.uri_path
        if segments and segments[0].isdigit() and len(segments[0]) <= 5:
            object_id = int(segments[0])
            if object_id in BOOTSTRAP_ONLY_OBJECTS:
                return _error_message(Unauthorized(f"/{object_id} is not accessible"))
            if object_id not in self.tree:
                return _error_message(NotFound(f"object /{object_id} is not supported"))
            rid = segments[2] if len(segments) > 2 else ""
            definition = self.tree.definition(object_id)
            if rid.isdigit() and len(rid) <= 5 and definition.resource(int(rid)) is None:
                return _error_message(NotFound(f"/{object_id}/*/{rid} is not defined"))
        try:
            op = decode_downlink(message, self.tree.model)
            response_op: DownlinkRequest = op
            match op:
                case Observe(path, accept):
                    response = self._observe(ssid, message.token, (path,), accept, None, now)
                    response_op = Read(path, accept)
                case ObserveComposite(paths, cf, accept):
                    response = self._observe(ssid, message.token, paths, accept, cf, now)
                    response_op = ReadComposite(paths, cf, accept)
                case CancelObservation(path, accept):
                    self._cancel(ssid, message.token, (path,))
                    response = self.dm.handle(Read(path, accept), ssid)
                case CancelObserveComposite(paths, cf, accept):
                    self._cancel(ssid, message.token, paths)
                    response = self.dm.handle(ReadComposite(paths, cf, accept), ssid)
                    response_op = ReadComposite(paths, cf, accept)
                case (
                    BootstrapWrite()
                    | BootstrapRead()
                    | BootstrapDiscover()
                    | BootstrapDelete()
                    | BootstrapFinish()
                ):  # pragma: no cover - decode_downlink never yields these for a DM server
                    raise Unauthorized("bootstrap operations come from the bootstrap server")
                case _:
                    response = self.dm.handle(op, ssid)
                    if isinstance(op, WriteAttributes):
                        self._refresh_attributes = True
            reply = encode_response(response_op, response, self.tree.model)
        except RequestError as exc:
            return _error_message(exc)
        except SecureComponentUnavailable:
            return component_unavailable_response()
        except CodecError as exc:
            return Message(Code.INTERNAL_SERVER_ERROR, f"cannot encode: {exc}".encode())
        if isinstance(op, Observe | ObserveComposite):
            reply.observe = 0
        return reply

    def _observe(
        self,
        ssid: int,
        token: bytes,
        paths: tuple[Path, ...],
        accept: int | None,
        composite_format: int | None,
        now: float,
    ) -> Response:
        composite = composite_format is not None
        if composite:
            values = self.dm.read_composite(ssid, paths)
            cf = self.formats.for_composite(accept, composite_format or 0)
            content: Content = values
            response = Response(Code.CONTENT, composite=values, content_format=cf)
        else:
            node = self.dm.read(ssid, paths[0])
            cf = self.formats.for_node(node, accept)
            content = node
            response = Response(Code.CONTENT, content=node, content_format=cf)
        observation = Observation(
            ssid,
            token,
            paths,
            cf,
            self._effective(ssid, paths, composite),
            now,
            composite=composite,
        )
        observation.sent(content, now)
        self.observations.add(observation)
        return response

    def _cancel(self, ssid: int, token: bytes, paths: tuple[Path, ...]) -> None:
        if self.observations.remove(ssid, token) is None:
            self.observations.remove_path(ssid, paths)

    def observation_cancelled(self, peer: Peer, token: bytes, now: float) -> None:
        """The server answered a notification with Reset (RFC 7641 §3.6) or the CoAP layer
        dropped the observer."""
        self._now = now
        account = self.account_for(peer)
        if account is not None and account.short_server_id is not None:
            self.observations.remove(account.short_server_id, token)

    def _effective(
        self, ssid: int, paths: tuple[Path, ...], composite: bool
    ) -> EffectiveAttributes:
        account = self._account_by_ssid(ssid)
        pmin = account.default_pmin if account is not None else 0
        pmax = account.default_pmax if account is not None else None
        if composite:
            return EffectiveAttributes(pmin=pmin, pmax=pmax)
        return self.attributes.effective(ssid, paths[0], default_pmin=pmin, default_pmax=pmax)

    def _account_by_ssid(self, ssid: int) -> ServerAccount | None:
        registration = self.registrations.get(ssid)
        return registration.account if registration is not None else None

    # -- bootstrap interface ---------------------------------------------------------------------

    def _bootstrap_request(self, message: Message, now: float) -> Message:
        try:
            op = decode_downlink(message, self.tree.model, from_bootstrap_server=True)
            if not isinstance(op, _BOOTSTRAP_OPERATIONS):
                # FETCH / iPATCH from the bootstrap server: not a bootstrap operation, and no
                # reason to start (or prolong) a server-initiated bootstrap session
                raise MethodNotAllowed(f"{type(op).__name__} is not a bootstrap operation")
        except RequestError as exc:
            return _error_message(exc)
        if self.bootstrap.operation(now):
            self.bootstrap.snapshot = self.tree.snapshot()
            self._events.append(BootstrapStarted(server_initiated=True))
        elif self.bootstrap.snapshot is None:
            self.bootstrap.snapshot = self.tree.snapshot()
        try:
            match op:
                case BootstrapFinish():
                    problems = check_configuration(self.tree)
                    if problems:
                        return Message(Code.NOT_ACCEPTABLE, "; ".join(problems).encode())
                    self._bootstrap_finished(now)
                    return Message(Code.CHANGED)
                case BootstrapWrite():
                    response = bootstrap_write(self.tree, op)
                case BootstrapRead():
                    response = bootstrap_read(self.tree, op, self.formats)
                case BootstrapDiscover():
                    response = bootstrap_discover(self.tree, op)
                case BootstrapDelete():
                    response = bootstrap_delete(self.tree, op)
            return encode_response(op, response, self.tree.model)
        except RequestError as exc:
            return _error_message(exc)
        except CodecError as exc:
            return Message(Code.INTERNAL_SERVER_ERROR, f"cannot encode: {exc}".encode())

    def _bootstrap_finished(self, now: float) -> None:
        self.bootstrap.finished()
        self._events.append(BootstrapFinished())
        for registration in self.registrations.values():
            registration.abandon()
            self.observations.remove_server(registration.ssid)
        self.registrations.clear()
        self._chain = []
        self._accounts_dirty = False
        self._load_accounts()
        bs = self._bootstrap_account()
        self._purge_at = now + bs.account_timeout if bs and bs.account_timeout > 0 else None
        self._purge_deferred = False
        self._begin(now, after_bootstrap=True)

    def _bootstrap_account(self) -> ServerAccount | None:
        return next((a for a in self.accounts.values() if a.bootstrap), None)

    def _start_bootstrap(self, now: float, reason: str) -> None:
        account = self._bootstrap_account()
        if account is None:
            self._events.append(BootstrapFailed(f"{reason}; no bootstrap server account", None))
            return
        if self.bootstrap.active:
            return
        self.bootstrap.snapshot = self.tree.snapshot()
        self.bootstrap.start(now, account.hold_off)
        self._events.append(BootstrapStarted(server_initiated=False))

    def _send_bootstrap_request(self) -> None:
        account = self._bootstrap_account()
        if account is None:  # the account vanished (rolled back): give up quietly
            self.bootstrap.cancel()
            return
        op = BootstrapRequest(self.config.endpoint, self.config.bootstrap_preferred_format)
        self._send(op, "bootstrap", account)
        self.bootstrap.request_sent()

    def _bootstrap_without_pct(self, sent: UplinkRequest, response: Message | None) -> bool:
        """A 4.00 to a Bootstrap-Request that carried ``pct`` (a 1.1 parameter, Core §6.1.3):
        with ``minimum_lwm2m_version`` 1.0 it goes again at once without it, as 1.0 defines
        it, since a 1.0 bootstrap server may refuse any parameter but ``ep`` (Wakaama's
        does). Returns True when the request was sent again."""
        if (
            response is None
            or response.code != Code.BAD_REQUEST
            or not isinstance(sent, BootstrapRequest)
            or sent.preferred_content_format is None
            or self.config.minimum_lwm2m_version != "1.0"
        ):
            return False
        account = self._bootstrap_account()
        if account is None:
            return False
        self._send(BootstrapRequest(self.config.endpoint), "bootstrap", account)
        return True

    def _bootstrap_failed(self, reason: str) -> None:
        snapshot = self.bootstrap.snapshot
        if snapshot is not None:
            self.tree.restore(snapshot)
            self.bootstrap.snapshot = None
        if self._purge_deferred:  # the BS Account Timeout (/0/x/12) passed meanwhile
            self._purge_deferred = False
            self._purge_at = self._now
        self._accounts_dirty = False
        self._load_accounts()
        self._events.append(BootstrapFailed(reason, self.bootstrap.deadline))

    # ==========================================================================================
    # responses and timers
    # ==========================================================================================

    def handle_response(
        self, request_id: int, response: Message | None, now: float, *, reason: str = ""
    ) -> None:
        """The outcome of a request from :meth:`requests_to_send`: its response, or None when
        it failed (timeout, Reset, unsupported security mode: ``reason`` says which)."""
        self._now = now
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return
        success = response is not None and response.code >> 5 == 2
        if response is not None and not success:
            detail = response.payload.decode("utf-8", "replace")[:100]
            reason = f"{Code(response.code).dotted} {detail}".strip()
        reason = reason or "no response"
        registration = self.registrations.get(pending.ssid) if pending.ssid is not None else None
        if registration is not None and response is not None:
            self._apply(registration, registration.activity(now), now)
        match pending.kind:
            case "bootstrap":
                if self._bootstrap_without_pct(pending.operation, response):
                    self._after_input(now)
                    return
                outcome = self.bootstrap.request_answered(now, success, reason)
                if outcome.failed:
                    self._bootstrap_failed(outcome.failed)
            case "send":
                assert pending.ssid is not None
                code = response.code if response is not None else None
                self._events.append(SendCompleted(request_id, pending.ssid, code))
            case "register" if registration is not None:
                if response is not None and response.code in _SIMPLER_REGISTER:
                    minimum = self.config.minimum_lwm2m_version
                    if response.code == Code.PRECONDITION_FAILED:
                        effects = registration.version_refused(minimum)
                    else:
                        sent = pending.operation
                        assert isinstance(sent, Register)
                        attributes = any(link.params for link in sent.objects if link.uri != "/")
                        effects = registration.form_refused(minimum, attributes=attributes)
                    if effects:
                        self._apply(registration, effects, now)
                        self._after_input(now)
                        return
                location = None
                if success and response is not None:
                    location = "/" + "/".join(response.location_path)
                    registration.sent = registration.in_flight
                effects = registration.register_done(
                    now,
                    success=success and location not in (None, "/"),
                    location=location,
                    reason=reason,
                )
                self._apply(registration, effects, now)
                self._check_stopped()  # stopped while it was in flight (Registration.stopping)
            case "update" if registration is not None:
                if success:
                    registration.sent = registration.in_flight
                self._apply(
                    registration, registration.update_done(now, success=success, reason=reason), now
                )
            case "deregister" if registration is not None:
                self._apply(registration, registration.deregister_done(now), now)
                self._check_stopped()
        self._after_input(now)

    def handle_timer(self, now: float) -> None:
        """Run everything that is due at ``now``."""
        self._now = now
        self._bootstrap_timer(now)
        if self._purge_at is not None and now >= self._purge_at:
            self._purge_at = None
            if self.bootstrap.exchanging:  # purged if this bootstrap fails (a success re-arms)
                self._purge_deferred = True
            else:
                bs = self._bootstrap_account()
                if bs is not None:
                    self.tree.delete(0, bs.security_instance_id)
        for registration in list(self.registrations.values()):
            self._apply(registration, registration.handle_timer(now), now)
        self._after_input(now)

    def _bootstrap_timer(self, now: float) -> None:
        outcome = self.bootstrap.handle_timer(now)
        if outcome.send_request:
            self._send_bootstrap_request()
        if outcome.failed:
            self._bootstrap_failed(outcome.failed)

    # ==========================================================================================
    # ChangeListener (from the object tree)
    # ==========================================================================================

    def _wake_driver(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def resources_changed(
        self, object_id: int, instance_id: int, resource_ids: Collection[int]
    ) -> None:
        self._wake_driver()
        self.observations.changed(object_id, instance_id, resource_ids, self._now)
        if object_id in (0, 1):
            self._accounts_dirty = True
        if object_id == 1:
            ids = set(resource_ids)
            if not ids or ids & {2, 3}:
                self._refresh_attributes = True
            if not ids or ids & {1, 7}:
                handler = self.tree.get(1)
                try:
                    resources = handler.read(instance_id, [0]).resources if handler else {}
                except RequestError:
                    resources = {}
                value = getattr(resources.get(0), "value", None)
                if isinstance(value, int):
                    self._update_servers.add(value)

    def instances_changed(self, object_id: int) -> None:
        self._wake_driver()
        self.observations.changed(object_id, None, (), self._now)
        if object_id in (0, 1):
            self._accounts_dirty = True
        self._objects_dirty = True

    def object_event(self, event: object) -> None:
        self._wake_driver()
        self._events.append(ObjectEvent(event))

    # ServerActions (/1/x/4, /1/x/8, /1/x/9)

    def disable_server(self, short_server_id: int) -> None:
        registration = self.registrations.get(short_server_id)
        if registration is not None:
            self._apply(registration, registration.disable(self._now), self._now)

    def trigger_update(self, short_server_id: int, arguments: ExecuteArguments) -> None:
        self._update_servers.add(short_server_id)

    def trigger_bootstrap(self, short_server_id: int) -> None:
        self._bootstrap_wanted = True

    # ==========================================================================================
    # internals
    # ==========================================================================================

    def _load_accounts(self) -> None:
        """Read the accounts from /0 and /1 and align the registrations with them."""
        accounts, _ = read_accounts(self.tree)
        self.accounts = {a.security_instance_id: a for a in accounts}
        by_ssid = {a.short_server_id: a for a in accounts if a.short_server_id is not None}
        for ssid, registration in list(self.registrations.items()):
            account = by_ssid.get(ssid)
            if account is None:
                registration.abandon()
                del self.registrations[ssid]
                self.observations.remove_server(ssid)
                self.attributes.remove_server(ssid)
            else:
                registration.account = account

    def _begin(self, now: float, *, after_bootstrap: bool = False) -> None:
        """Create and start the registrations (priority order, §6.2.1.1)."""
        dm_accounts = [a for a in self.accounts.values() if not a.bootstrap]
        if not dm_accounts:
            if not after_bootstrap:
                self._start_bootstrap(now, "no LwM2M server account")
            return
        ordered = sorted(
            (a for a in dm_accounts if a.priority is not None), key=lambda a: a.priority or 0
        )
        self._chain = [a.short_server_id for a in ordered if a.short_server_id is not None]
        for account in dm_accounts:
            ssid = account.short_server_id
            assert ssid is not None
            existing = self.registrations.get(ssid)
            if existing is not None and existing.state is not RegistrationState.DEREGISTERED:
                continue
            registration = Registration(
                account, queue_mode=self.config.queue_mode, awake_time=self.config.awake_time
            )
            self.registrations[ssid] = registration
            if account.priority is None or (self._chain and self._chain[0] == ssid):
                self._apply(registration, registration.start(now), now)

    def _start_new_accounts(self, now: float) -> None:
        for account in self.accounts.values():
            ssid = account.short_server_id
            if account.bootstrap or ssid is None or ssid in self.registrations:
                continue
            registration = Registration(
                account, queue_mode=self.config.queue_mode, awake_time=self.config.awake_time
            )
            self.registrations[ssid] = registration
            self._apply(registration, registration.start(now, delay=0), now)

    def _next_in_chain(self, ssid: int, now: float) -> None:
        if ssid not in self._chain:
            return
        index = self._chain.index(ssid) + 1
        if index < len(self._chain):
            registration = self.registrations.get(self._chain[index])
            if registration is not None and registration.state is RegistrationState.IDLE:
                self._apply(registration, registration.start(now), now)

    def _apply(self, registration: Registration, effects: list[Effect], now: float) -> None:
        """Carry out the effects of a registration step."""
        for effect in effects:
            match effect:
                case Send.REGISTER:
                    self._send_register(registration)
                case Send.UPDATE:
                    self._send_update(registration)
                case Send.DEREGISTER:
                    assert registration.location is not None
                    self._send(
                        Deregister(registration.location), "deregister", registration.account
                    )
                case Registered():
                    # observations were cleared when the Register was sent: one accepted
                    # before this 2.01 was processed belongs to the new registration
                    self._events.append(effect)
                    self._next_in_chain(registration.ssid, now)
                case RegistrationFailed(ssid, _, None):
                    self._events.append(effect)
                    account = registration.account
                    if not account.failure_block:
                        self._next_in_chain(ssid, now)
                    if account.bootstrap_on_failure and not self._stopping:
                        self._bootstrap_wanted = True
                case Awake() | RegistrationUpdated():
                    self._events.append(effect)
                    self._flush_stored(registration)
                case Deregistered():
                    self.observations.remove_server(registration.ssid)
                    self._events.append(effect)
                case _:
                    self._events.append(effect)

    def _object_links(
        self, version: str = LWM2M_VERSION, *, plain: bool = False
    ) -> tuple[Link, ...]:
        """The Register payload (§6.2.1): ``</>;rt="oma.lwm2m";ct=...`` then every object and
        instance except /0 and /21, with ``ver`` for objects whose version is not 1.0. For a
        1.0 server the root link has no ``ct`` (a 1.1 attribute); ``plain`` leaves out ``ver``
        too (:meth:`Registration.form_refused`).

        When a Secure Component holding instances is gone (a card removed), the list last made
        is used: nothing on the component can be created or deleted meanwhile, and so a
        registration update keeps the registration alive through the outage."""
        try:
            links = self._make_object_links(version, plain)
        except SecureComponentUnavailable:
            known = self._known_links.get((version, plain))
            if known is None:
                raise
            return known
        self._known_links[(version, plain)] = links
        return links

    def _make_object_links(self, version: str, plain: bool) -> tuple[Link, ...]:
        root: list[tuple[str, str]] = [("rt", "oma.lwm2m")]
        if version != "1.0":
            root.append(("ct", self.formats.content_formats_attribute()))
        links = [Link("/", root)]
        for handler in self.tree:
            definition = handler.definition
            if definition.id in BOOTSTRAP_ONLY_OBJECTS:
                continue
            ids = list(handler.instance_ids())
            version = definition.version
            versioned = version != "1.0" and not plain
            if versioned or not ids:
                links.append(Link(f"/{definition.id}", {"ver": version} if versioned else {}))
            links.extend(Link(f"/{definition.id}/{iid}") for iid in ids)
        return tuple(links)

    def _send_register(self, registration: Registration) -> None:
        account = registration.account
        # a new registration starts without observations (§6.2.1); cleared now, not at its 2.01,
        # because the server may observe before the 2.01 reaches us
        self.observations.remove_server(registration.ssid)
        links = self._object_links(registration.version, plain=registration.plain_links)
        binding = _binding(registration)
        registration.in_flight = RegistrationParameters(
            account.lifetime, binding, format_links(links)
        )
        op = Register(
            self.config.endpoint,
            lifetime=account.lifetime,
            lwm2m_version=registration.version,
            binding=binding,
            queue_mode=registration.queue_mode and not registration.legacy,
            objects=links,
        )
        self._send(op, "register", account)

    def _send_update(self, registration: Registration) -> None:
        account = registration.account
        assert registration.location is not None
        links = self._object_links(registration.version, plain=registration.plain_links)
        current = RegistrationParameters(
            account.lifetime, _binding(registration), format_links(links)
        )
        sent = registration.sent
        registration.in_flight = current
        op = Update(
            registration.location,
            lifetime=current.lifetime
            if sent is None or sent.lifetime != current.lifetime
            else None,
            binding=current.binding if sent is None or sent.binding != current.binding else None,
            objects=links if sent is None or sent.objects != current.objects else None,
        )
        self._send(op, "update", account)

    def _send(self, op: UplinkRequest, kind: str, account: ServerAccount) -> int:
        request_id = next(self._request_ids)
        message = encode_request(op, self.tree.model)
        self._pending[request_id] = _Pending(kind, account.short_server_id, op)
        self._requests.append(OutgoingRequest(request_id, message, account.connection, op))
        return request_id

    def _check_stopped(self) -> None:
        if not self._stopping:
            return
        if any(
            r.state is RegistrationState.DEREGISTERING or r.stopping
            for r in self.registrations.values()
        ):
            return
        self._stopping = False
        self._started = False
        self._events.append(Stopped())

    def _after_input(self, now: float) -> None:
        """Follow-up work common to every input: account changes, Updates, notifications."""
        if self._accounts_dirty and not self.bootstrap.active:
            self._accounts_dirty = False
            self._load_accounts()
            if self._started and not self._stopping:
                self._start_new_accounts(now)
        if self._bootstrap_wanted:
            self._bootstrap_wanted = False
            if not self._stopping:
                self._start_bootstrap(now, "bootstrap requested")
        self._bootstrap_timer(now)
        if self._objects_dirty and not self.bootstrap.active:
            # not while a bootstrap runs: its writes and deletes are not the client's state until
            # it finishes (then every server is registered again) or is rolled back
            self._objects_dirty = False
            forms: dict[tuple[str, bool], str] = {}  # the links in each registration's form
            for registration in self.registrations.values():
                version, plain = form = (registration.version, registration.plain_links)
                links = forms.get(form)
                if links is None:
                    links = forms[form] = format_links(self._object_links(version, plain=plain))
                sent = registration.sent
                if registration.registered and (sent is None or sent.objects != links):
                    self._apply(registration, registration.request_update(now), now)
        if self._update_servers:
            servers, self._update_servers = self._update_servers, set()
            for ssid in sorted(servers):
                target = self.registrations.get(ssid)
                if target is not None:
                    self._apply(target, target.request_update(now), now)
        for registration in list(self.registrations.values()):
            due = registration.next_timer()
            if due is not None and now >= due:
                self._apply(registration, registration.handle_timer(now), now)
        if self._refresh_attributes:
            self._refresh_attributes = False
            for observation in self.observations:
                observation.attributes = self._effective(
                    observation.ssid, observation.paths, observation.composite
                )
        self._run_observations(now)

    def _run_observations(self, now: float) -> None:
        for observation in self.observations:
            deadline = observation.deadline()
            if deadline is None or now < deadline:
                continue
            try:
                content = observation.step(now, functools.partial(self._read, observation))
            except (RequestError, SecureComponentUnavailable) as exc:
                error = exc if isinstance(exc, RequestError) else _COMPONENT_UNAVAILABLE
                self.observations.remove(*observation.key)
                self._deliver(observation, _error_message(error), now)
                continue
            if content is not None:
                self._deliver(observation, self._notification(observation, content), now)

    def _read(self, observation: Observation) -> Content:
        if observation.composite:
            return self.dm.read_composite(observation.ssid, observation.paths)
        return self.dm.read(observation.ssid, observation.path)

    def _notification(self, observation: Observation, content: Content) -> Message:
        if isinstance(content, dict):
            request: DownlinkRequest = ReadComposite(observation.paths)
            response = Response(
                Code.CONTENT, composite=content, content_format=observation.content_format
            )
        else:
            request = Read(observation.path)
            response = Response(
                Code.CONTENT, content=content, content_format=observation.content_format
            )
        return encode_response(request, response, self.tree.model)

    def _deliver(self, observation: Observation, message: Message, now: float) -> None:
        registration = self.registrations.get(observation.ssid)
        if registration is None:
            return
        account = registration.account
        if registration.registered and not registration.sleeping:
            self._notifications.append(
                OutgoingNotification(
                    observation.ssid, observation.token, message, account.connection
                )
            )
            self._apply(registration, registration.activity(now), now)
            return
        if account.notification_storing:
            stored = observation.stored
            stored.append(message)
            del stored[:-MAX_STORED_NOTIFICATIONS]
        self._apply(registration, registration.wake(now), now)

    def _flush_stored(self, registration: Registration) -> None:
        if not registration.registered or registration.sleeping:
            return
        for observation in self.observations.of_server(registration.ssid):
            for message in observation.stored:
                self._notifications.append(
                    OutgoingNotification(
                        observation.ssid,
                        observation.token,
                        message,
                        registration.account.connection,
                    )
                )
            observation.stored.clear()


_BOOTSTRAP_OPERATIONS = (
    BootstrapWrite,
    BootstrapRead,
    BootstrapDiscover,
    BootstrapDelete,
    BootstrapFinish,
)

_SIMPLER_REGISTER = (Code.PRECONDITION_FAILED, Code.BAD_REQUEST)
"""Answers to a Register after which it may go again at once in a simpler form."""


def _binding(registration: Registration) -> str:
    """The ``b`` parameter: 1.1 letters, with the 1.0 queue flag ``Q`` appended for a 1.0
    server (1.1 sends queue mode as its own ``Q`` parameter instead)."""
    letters = registration.account.binding_letters
    if registration.legacy and registration.queue_mode:
        return letters + "Q"
    return letters
