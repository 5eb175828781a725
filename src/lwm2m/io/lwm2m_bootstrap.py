"""The LwM2M bootstrap server as an asyncio service on the CoAP endpoint (layer L3).

Implements the server side of client-initiated bootstrap (LwM2M-TS-Core 1.1 §5.2.7, §6.1;
Transport §6.1): ``POST /bs?ep=…[&pct=…]`` (Bootstrap-Request) is answered

- **4.00** when the endpoint has no configuration in the
  :class:`~lwm2m.store.base.BootstrapConfigStore` (logged), or when its name does not match the
  identity its security session authenticated (Transport §5.2.x);
- **2.04** otherwise, and only then the session starts: the task list of
  :class:`~lwm2m.bootstrap.session.BootstrapSession` (optional Bootstrap-Discover,
  Bootstrap-Delete, Bootstrap-Writes, Bootstrap-Finish), one request at a time, each step's
  outcome published as a :class:`~lwm2m.bootstrap.session.BootstrapStep` event, then
  :class:`~lwm2m.bootstrap.session.BootstrapFinished` or
  :class:`~lwm2m.bootstrap.session.BootstrapFailed`.

A second Bootstrap-Request from an endpoint whose session still runs aborts the old session.
Configurations come from a store, or from a TOML file (:func:`load_bootstrap_config`, format in
:mod:`lwm2m.bootstrap.config_file`). Events never carry the written values (they include keys).

**DTLS.** With a ``security_store`` (and a layer from
:func:`~lwm2m.io.lwm2m_server.dtls_layer_from_store`), clients connect over DTLS-PSK, RPK or
X.509 (the BS server MUST support all three) and the ``ep`` of a Bootstrap-Request must match the
authenticated identity per the store (4.00 and one WARNING line otherwise; NoSec clients pass
when ``ep`` has a NoSec entry, or none and ``allow_plain``). In the TOML file, how each client
authenticates *to the bootstrap server* is the optional ``bootstrap_security`` table of its
endpoint (read by :func:`load_bootstrap_file`; an endpoint without one is NoSec)::

    [endpoints."urn:imei:004999010640000".bootstrap_security]
    mode = "psk"                 # psk | rpk | x509 | nosec (default nosec)
    psk_identity = "urn:imei:004999010640000"        # PSK: identity (default: the endpoint)
    psk_key = "hex:000102030405060708090a0b0c0d0e0f" # PSK: key (secret, never printed)
    # public_key = "base64:<DER SubjectPublicKeyInfo>" or a PEM public key / certificate (RPK)
    # certificate_name = "urn:imei:..."  # X.509: the CN / subjectAltName (default: endpoint)
    # mode = "oscore" (OSCORE over coap://, RFC 8613), named from the client's side as in
    # its /21 instance: sender_id = "hex:c1", recipient_id = "hex:51",
    # master_secret = "hex:…" (secret), master_salt = "hex:…" (optional)

Byte strings are ``"hex:…"``, ``"base64:…"`` or text, as elsewhere in the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lwm2m.bootstrap.config import BootstrapConfig, ConfigError
from lwm2m.bootstrap.config_file import parse_bytes, parse_endpoint_config
from lwm2m.bootstrap.session import BootstrapEvent, BootstrapSession, SessionState
from lwm2m.coap.config import CoapConfig
from lwm2m.coap.errors import CoapError
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.errors import BadRequest, CodecError, RequestError
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest
from lwm2m.io.coap_transport import SecurityLayer
from lwm2m.io.lwm2m_server import (
    EventHub,
    Subscription,
    check_endpoint,
    oscore_layer_from_store,
    peer_identity,
    public_key_spki,
    remote_address,
)
from lwm2m.model.registry import ModelRegistry, ObjectModel, default_registry
from lwm2m.operations.coap_mapping import decode_response, decode_uplink, encode_request
from lwm2m.operations.requests import BootstrapRequest
from lwm2m.server.registration import Address
from lwm2m.server.security import PeerIdentity, SecurityInfo
from lwm2m.store.base import BootstrapConfigStore, SecurityStore
from lwm2m.store.memory import MemoryBootstrapConfigStore, MemorySecurityStore

__all__ = [
    "BootstrapFile",
    "BootstrapServer",
    "load_bootstrap_config",
    "load_bootstrap_file",
    "parse_bootstrap_document",
]

log = logging.getLogger("lwm2m.bootstrap")


def load_bootstrap_config(
    path: str | os.PathLike[str], *, model: ObjectModel | None = None
) -> dict[str, BootstrapConfig]:
    """Read a bootstrap TOML file (:mod:`lwm2m.bootstrap.config_file`): endpoint → config
    (the ``bootstrap_security`` tables are checked and left out, see :func:`load_bootstrap_file`).

    Raises :class:`~lwm2m.bootstrap.config.ConfigError` (names the field, never a secret) or
    OSError when the file cannot be read.
    """
    return load_bootstrap_file(path, model=model).configs


@dataclass(frozen=True, slots=True)
class BootstrapFile:
    """What a bootstrap TOML file holds: the configurations and, per endpoint, how the client
    authenticates to the bootstrap server (a NoSec entry when the file says nothing)."""

    configs: dict[str, BootstrapConfig]
    security: tuple[SecurityInfo, ...]

    @property
    def secured(self) -> bool:
        """Whether some endpoint connects over DTLS (the server then needs ``coaps://``)."""
        return any(info.identity is not None for info in self.security)

    @property
    def plain(self) -> bool:
        """Whether some endpoint connects in plain CoAP."""
        return any(info.identity is None for info in self.security)

    def security_store(self) -> MemorySecurityStore:
        """The entries in a memory store (raises ConfigError for an identity used twice)."""
        store = MemorySecurityStore()
        for info in self.security:
            try:
                store.add(info)
            except ValueError as exc:
                raise ConfigError(f"endpoints.{info.endpoint}.bootstrap_security: {exc}") from None
        return store


def load_bootstrap_file(
    path: str | os.PathLike[str], *, model: ObjectModel | None = None
) -> BootstrapFile:
    """Read a bootstrap TOML file: configurations and ``bootstrap_security`` entries."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    return parse_bootstrap_document(text, model=model)


_BS_SECURITY_KEYS = frozenset({"mode", "psk_identity", "psk_key", "public_key", "certificate_name"})
_BS_SECURITY_KEYS |= {"sender_id", "recipient_id", "master_secret", "master_salt"}
_BS_SECURITY_MODES = ("psk", "rpk", "x509", "oscore", "nosec")


def _bootstrap_security(endpoint: str, table: object, where: str) -> SecurityInfo:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table")
    unknown = sorted(set(table) - _BS_SECURITY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    mode = table.get("mode", "nosec")
    if mode not in _BS_SECURITY_MODES:
        raise ConfigError(f"{where}.mode: expected one of {', '.join(_BS_SECURITY_MODES)}")
    allowed = {
        "psk": {"mode", "psk_identity", "psk_key"},
        "rpk": {"mode", "public_key"},
        "x509": {"mode", "certificate_name"},
        "oscore": {"mode", "sender_id", "recipient_id", "master_secret", "master_salt"},
        "nosec": {"mode"},
    }[mode]
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigError(f"{where}.{extra[0]}: not used in {mode} mode")
    try:
        if mode == "psk":
            if "psk_key" not in table:
                raise ConfigError(f"{where}: psk mode needs psk_key")
            identity = parse_bytes(table.get("psk_identity", endpoint), f"{where}.psk_identity")
            key = parse_bytes(table["psk_key"], f"{where}.psk_key")
            if not identity or not key:
                raise ConfigError(f"{where}: the PSK identity and key must not be empty")
            return SecurityInfo.psk(endpoint, identity, key)
        if mode == "rpk":
            if "public_key" not in table:
                raise ConfigError(f"{where}: rpk mode needs public_key")
            data = parse_bytes(table["public_key"], f"{where}.public_key")
            try:
                spki = public_key_spki(data)
            except ValueError as exc:
                raise ConfigError(f"{where}.public_key: {exc}") from None
            return SecurityInfo.rpk(endpoint, spki)
        if mode == "x509":
            name = table.get("certificate_name", endpoint)
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{where}.certificate_name: expected a name")
            return SecurityInfo.x509(endpoint, name)
        if mode == "oscore":
            for needed in ("sender_id", "recipient_id", "master_secret"):
                if needed not in table:
                    raise ConfigError(f"{where}: oscore mode needs {needed}")
            secret = parse_bytes(table["master_secret"], f"{where}.master_secret")
            if not secret:
                raise ConfigError(f"{where}.master_secret: must not be empty")
            return SecurityInfo.oscore_context(
                endpoint,
                parse_bytes(table["sender_id"], f"{where}.sender_id"),
                parse_bytes(table["recipient_id"], f"{where}.recipient_id"),
                secret,
                master_salt=parse_bytes(table.get("master_salt", ""), f"{where}.master_salt"),
            )
        return SecurityInfo.nosec(endpoint)
    except ValueError as exc:  # SecurityInfo checks; messages name no secret
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from None


def parse_bootstrap_document(text: str, *, model: ObjectModel | None = None) -> BootstrapFile:
    """A bootstrap TOML document (the format of :mod:`lwm2m.bootstrap.config_file` plus the
    ``bootstrap_security`` tables of the module docstring). Raises ConfigError."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    unknown = sorted(set(document) - {"endpoints"})
    if unknown:
        raise ConfigError(f"unknown top-level key {unknown[0]!r} (expected [endpoints.NAME])")
    endpoints = document.get("endpoints", {})
    if not isinstance(endpoints, Mapping):
        raise ConfigError("endpoints: expected a table")
    model = model if model is not None else default_registry()
    configs: dict[str, BootstrapConfig] = {}
    security: list[SecurityInfo] = []
    for name, table in endpoints.items():
        if not name:
            raise ConfigError("endpoints: an endpoint name is empty")
        where = f"endpoints.{name}"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: expected a table")
        rest = dict(table)
        entry = rest.pop("bootstrap_security", {})
        security.append(_bootstrap_security(name, entry, f"{where}.bootstrap_security"))
        configs[name] = parse_endpoint_config(rest, where=where, model=model)
    return BootstrapFile(configs, tuple(security))


class BootstrapServer:
    """A bootstrap server: serves ``/bs`` and runs one session per Bootstrap-Request.

    :param store: configurations by endpoint (memory by default, see ``configs``).
    :param configs: initial configurations for the default memory store.
    :param registry: the model used to encode the writes (the bundled objects by default).
    :param coap_config: configuration of the CoAP engine the server creates.
    :param security: the CoAP endpoint's security layer (plain UDP by default).
    :param security_store: optional endpoint → identity table for the endpoint/identity check
        (otherwise an authenticated identity must carry the endpoint name), and the clients'
        DTLS credentials through :func:`~lwm2m.io.lwm2m_server.dtls_layer_from_store`.
    :param allow_plain: with a ``security_store``: whether a NoSec client without an entry may
        bootstrap (one with a NoSec entry always may, one with a secured entry never does).
    """

    def __init__(
        self,
        *,
        store: BootstrapConfigStore | None = None,
        configs: dict[str, BootstrapConfig] | None = None,
        registry: ModelRegistry | None = None,
        coap_config: CoapConfig | None = None,
        security: SecurityLayer | None = None,
        security_store: SecurityStore | None = None,
        allow_plain: bool = True,
    ) -> None:
        if store is not None and configs:
            raise ValueError("give either a store or configs for the memory store")
        self.store: BootstrapConfigStore = (
            store if store is not None else MemoryBootstrapConfigStore(configs)
        )
        self.registry = registry if registry is not None else default_registry()
        self.events: EventHub[BootstrapEvent] = EventHub()
        self.security_store = security_store
        self.allow_plain = allow_plain
        self._coap_config = coap_config
        self._security = security
        self._endpoint: CoapEndpoint | None = None
        self._sessions: dict[str, BootstrapSession] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @classmethod
    def from_config_file(
        cls,
        path: str | os.PathLike[str],
        *,
        registry: ModelRegistry | None = None,
        coap_config: CoapConfig | None = None,
        security: SecurityLayer | None = None,
    ) -> BootstrapServer:
        """A server with the configurations of a TOML file in a memory store (and its
        ``bootstrap_security`` entries in a memory security store, NoSec only for endpoints
        without one); ``security`` is the layer, e.g. from
        :func:`~lwm2m.io.lwm2m_server.dtls_layer_from_store` over :attr:`security_store`."""
        loaded = load_bootstrap_file(path, model=registry)
        return cls(
            configs=loaded.configs,
            registry=registry,
            coap_config=coap_config,
            security=security,
            security_store=loaded.security_store(),
            allow_plain=False,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def endpoint(self) -> CoapEndpoint:
        if self._endpoint is None:
            raise RuntimeError("the bootstrap server is not started")
        return self._endpoint

    @property
    def local_address(self) -> Address:
        host, port = self.endpoint.local_address[:2]
        return (str(host), int(port))

    async def start(self, bind: tuple[str, int] = ("127.0.0.1", 5683)) -> None:
        """Bind the UDP socket and serve ``/bs``."""
        if self._endpoint is not None:
            raise RuntimeError("the bootstrap server is already started")
        store = self.security_store
        endpoint = await CoapEndpoint.create(
            bind,
            config=self._coap_config,
            security=self._security,
            oscore=None if store is None else oscore_layer_from_store(store),
        )
        endpoint.site.add("bs", self._handle_request)
        self._endpoint = endpoint

    async def stop(self) -> None:
        """Abort running sessions (each fails, and subscribers get its BootstrapFailed), close
        the socket, end subscriptions."""
        if self._endpoint is None:
            return
        running = list(self._tasks.items())
        for _, task in running:
            task.cancel()
        for endpoint, task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            session = self._sessions.get(endpoint)
            if session is not None and session.state is SessionState.RUNNING:
                session.abort("the bootstrap server stopped")
                self._publish(session)
        await self._endpoint.close()
        self._endpoint = None
        self.events.close()

    async def __aenter__(self) -> BootstrapServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- events ---------------------------------------------------------------------------------

    def subscribe(self, maxsize: int = 10_000) -> Subscription[BootstrapEvent]:
        """Bootstrap events from now on, as an async iterator."""
        return self.events.subscribe(maxsize)

    def add_listener(self, callback: Callable[[BootstrapEvent], object]) -> Callable[[], None]:
        return self.events.add_listener(callback)

    def session(self, endpoint: str) -> BootstrapSession | None:
        """The running (or last) session of ``endpoint``."""
        return self._sessions.get(endpoint)

    # -- /bs ------------------------------------------------------------------------------------

    async def _handle_request(self, request: CoapRequest) -> Message:
        address = remote_address(self.endpoint, request.remote)
        return await self.handle_bootstrap_request(
            request.message, address, peer_identity(request.peer_identity)
        )

    async def handle_bootstrap_request(
        self, message: Message, address: Address, identity: PeerIdentity | None
    ) -> Message:
        """Answer a Bootstrap-Request and, on 2.04, schedule its session right after the
        response (public for tests and other transports)."""
        try:
            operation = decode_uplink(message)
            if not isinstance(operation, BootstrapRequest):
                raise BadRequest("the bootstrap server serves Bootstrap-Request only")
            await check_endpoint(
                self.security_store,
                operation.endpoint,
                identity,
                plain_allowed=self.allow_plain or self.security_store is None,
            )
            config = await self.store.get(operation.endpoint)
            if config is None:
                log.warning("Bootstrap-Request from unknown endpoint %r: 4.00", operation.endpoint)
                raise BadRequest("unknown endpoint")
        except RequestError as exc:
            return Message(exc.code, str(exc).encode())
        # The 2.04 goes out when this handler returns (from the handler task's done callback).
        # call_soon runs before that callback; the session task it creates takes its first
        # step after it — so the client sees the 2.04 before the first bootstrap request.
        loop = asyncio.get_running_loop()
        loop.call_soon(self._start_session, operation, config, address)
        return Message(Code.CHANGED)

    def _start_session(
        self, request: BootstrapRequest, config: BootstrapConfig, address: Address
    ) -> None:
        if self._endpoint is None:
            return  # stopped between the answer and the start
        endpoint = request.endpoint
        old = self._tasks.pop(endpoint, None)
        if old is not None:
            old.cancel()
            previous = self._sessions.get(endpoint)
            if previous is not None:
                previous.abort("a new Bootstrap-Request arrived")
                self._publish(previous)
        session = BootstrapSession(
            endpoint,
            config,
            preferred_format=request.preferred_content_format,
            registry=self.registry,
        )
        self._sessions[endpoint] = session
        task = asyncio.get_running_loop().create_task(self._run(session, address))
        self._tasks[endpoint] = task
        task.add_done_callback(functools.partial(self._session_done, endpoint))

    def _session_done(self, endpoint: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(endpoint) is task:
            del self._tasks[endpoint]
        if not task.cancelled() and task.exception() is not None:
            log.error("bootstrap session of %s crashed", endpoint, exc_info=task.exception())
            session = self._sessions.get(endpoint)
            if session is not None:  # subscribers learn of it too, not only the log
                session.abort(f"internal error: {type(task.exception()).__name__}")
                self._publish(session)

    def _publish(self, session: BootstrapSession) -> None:
        while (event := session.next_event()) is not None:
            self.events.publish(event)

    async def _run(self, session: BootstrapSession, address: Address) -> None:
        model = self.registry
        self._publish(session)
        while requests := session.requests_to_send():
            task = requests[0]
            try:
                message = encode_request(task, model)
            except CodecError as exc:
                session.request_failed(f"cannot encode the request: {exc}")
                self._publish(session)
                break
            try:
                answer = await self.endpoint.request(message, address)
            except CoapError as exc:
                session.request_failed(type(exc).__name__)
            else:
                try:
                    response = decode_response(task, answer, model)
                except CodecError as exc:
                    session.request_failed(f"undecodable response: {exc}")
                else:
                    session.receive_response(response)
            self._publish(session)
        if session.state is SessionState.SUCCEEDED:
            log.info("bootstrap of %s finished", session.endpoint)
        elif session.state is SessionState.FAILED:
            log.warning("bootstrap of %s failed", session.endpoint)
