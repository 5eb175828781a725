"""``lwm2m demo`` — an LwM2M server, a bootstrap server and a client in one process.

Everything runs on loopback with ephemeral ports and embedded defaults (no file is read):

1. the client, whose only factory account is the bootstrap server, bootstraps (client-initiated):
   the bootstrap server deletes ``/`` and writes the DM server account (/0/1, /1/0);
2. it registers with the LwM2M server;
3. the server reads /3/0 (a table of resources), writes /1/0/1 (lifetime) and reads it back
   (the client follows with an Update), executes /3/0/4 (Reboot: the device reports it),
   observes /3/0/9 (battery level) while the device changes it twice, reads /3/0/9 and /1/0/1
   with one Read-Composite;
4. the client sends /3/0/9 and /3/0/13 (Send) and the server shows the time-stamped values;
5. the client de-registers.

Each step prints the operation, the CoAP request and response (code, content format) and the
decoded content. Every wait is bounded (:data:`STEP_TIMEOUT`); a failing step ends the demo with
one line and exit status 1.

**Transport security is one switch** (``--security``): :class:`Transport` decides the URI scheme,
the security mode of the client's bootstrap account and of the DM account the bootstrap server
writes, and the security layers of the three endpoints. ``nosec`` is plain CoAP; ``psk`` is
DTLS 1.2 with a pre-shared key on both links (the client's DTLS connector takes the key from
/0, the servers' DTLS layers know it). The DTLS transport is looked up at run time: ``auto``
(the default) uses ``psk`` when it is there, and ``psk`` without it is a one-line error.
``oscore`` is OSCORE (RFC 8613) over plain UDP on both links: the client's bootstrap account
and the DM account the bootstrap server writes link a /21 instance (/0/x/17), and both servers
know the client from their security stores.

``lwm2m demo --formats`` is the offline tour of the object model and the content formats.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from lwm2m.bootstrap.config import (
    BootstrapConfig,
    OscoreInstance,
    Secret,
    SecurityInstance,
    SecurityMode,
    ServerInstance,
)
from lwm2m.cli.bootstrap import BootstrapPrinter
from lwm2m.cli.client import DemoDevice
from lwm2m.cli.printing import (
    client_event_line,
    code_text,
    composite_table,
    content_format_text,
    make_console,
    node_inline,
    node_table,
    request_text,
    response_text,
    server_event_line,
    timestamped_table,
)
from lwm2m.client import ClientConfig, parse_config
from lwm2m.client import events as client_events
from lwm2m.client.objects import DeviceAction
from lwm2m.codec import ContentFormat, codec_for, composite_codec_for
from lwm2m.errors import CodecError, Lwm2mError
from lwm2m.io.coap_transport import SecurityLayer
from lwm2m.io.lwm2m_bootstrap import BootstrapServer
from lwm2m.io.lwm2m_client import LwM2MClient
from lwm2m.io.lwm2m_server import LwM2MServer, Subscription
from lwm2m.model import MultipleResource, ObjectInstance, Path, ResourceType, SingleResource
from lwm2m.model.registry import default_registry
from lwm2m.operations.coap_mapping import encode_request
from lwm2m.operations.requests import (
    CancelObservation,
    DownlinkRequest,
    Execute,
    Observe,
    Read,
    ReadComposite,
    Write,
)
from lwm2m.operations.responses import Response
from lwm2m.server import events as server_events
from lwm2m.server.security import SecurityInfo
from lwm2m.store.memory import MemorySecurityStore

__all__ = [
    "ENDPOINT",
    "STEP_TIMEOUT",
    "TRANSPORTS",
    "DemoError",
    "Transport",
    "demo_command",
    "device_instance",
    "run_demo",
    "run_formats_tour",
]

T = TypeVar("T")

ENDPOINT = "urn:dev:os:lwm2m-demo"
SHORT_SERVER_ID = 101
STEP_TIMEOUT = 5.0
"""Bound on every wait of the demo, in seconds."""
DEMO_TIMEOUT = 30.0
"""Bound on the whole demo (start-up, every step and the shutdown)."""

LIFETIME = 300
NEW_LIFETIME = 120
READ_PATH = Path(3, 0)
WRITE_PATH = Path(1, 0, 1)
EXECUTE_PATH = Path(3, 0, 4)
OBSERVE_PATH = Path(3, 0, 9)
BATTERY_LEVELS = (80, 65)
COMPOSITE_PATHS = (Path(3, 0, 9), Path(1, 0, 1))
SEND_PATHS = (Path(3, 0, 9), Path(3, 0, 13))


class DemoError(Exception):
    """A step failed: the message is the one line the command prints."""


# -- transport security: the one switch --------------------------------------------------------


@dataclass(frozen=True)
class Transport:
    """The security of every link of the demo (client ↔ bootstrap server, client ↔ server).

    ``mode`` is what the client's bootstrap account and the DM account written by the bootstrap
    server say (/0/x/2); ``psk_identity`` / ``psk_key`` their /0/x/3 and /0/x/5 (PSK only).
    ``layer`` builds the endpoint security layer of a server (None: plain UDP);
    ``client_options`` the extra :class:`LwM2MClient` arguments (a DTLS connector).
    """

    name: str
    scheme: str
    mode: SecurityMode
    description: str
    psk_identity: bytes = b""
    psk_key: bytes = field(default=b"", repr=False)
    layer: Callable[[str], SecurityLayer | None] = lambda role: None
    client_options: Callable[[], dict[str, Any]] = dict
    available: Callable[[], str | None] = lambda: None
    """None when usable, else why not (one line)."""
    oscore: OscoreInstance | None = None
    """OSCORE on both links (the /21 instance of each account, the client's view)."""

    def security_store(self) -> MemorySecurityStore | None:
        """What the servers know of the client: its OSCORE parameters (None otherwise)."""
        oscore = self.oscore
        if oscore is None:
            return None
        info = SecurityInfo.oscore_context(
            ENDPOINT,
            oscore.sender_id,
            oscore.recipient_id,
            oscore.master_secret.reveal(),
            master_salt=oscore.master_salt,
        )
        return MemorySecurityStore([info])

    def security_instance(self, instance_id: int, uri: str, ssid: int) -> SecurityInstance:
        """The /0 instance the bootstrap server writes for the DM server account."""
        return SecurityInstance(
            instance_id=instance_id,
            uri=uri,
            mode=self.mode,
            public_key_or_identity=self.psk_identity,
            secret_key=Secret(self.psk_key),
            short_server_id=ssid,
            client_hold_off_time=0,
            oscore=self.oscore,
        )

    def client_account(self, uri: str) -> dict[str, Any]:
        """The client's factory ``[bootstrap]`` table."""
        table: dict[str, Any] = {"uri": uri}
        if self.mode is SecurityMode.PSK:
            table.update(
                security_mode="psk",
                psk_identity_hex=self.psk_identity.hex(),
                psk_key_hex=self.psk_key.hex(),
            )
        if self.oscore is not None:
            table.update(
                oscore_sender_id_hex=self.oscore.sender_id.hex(),
                oscore_recipient_id_hex=self.oscore.recipient_id.hex(),
                oscore_master_secret_hex=self.oscore.master_secret.reveal().hex(),
                oscore_master_salt_hex=self.oscore.master_salt.hex(),
            )
        return table


PSK_IDENTITY = ENDPOINT.encode()
PSK_KEY = bytes(range(16))  # a demo key, never a real one


@functools.cache
def _dtls_api() -> dict[str, Any] | None:
    """The DTLS transport (server security layer, PSK store, client connector), looked up at
    run time: the demo works with or without it, and names what is missing."""
    try:
        coaps = importlib.import_module("lwm2m.io.coaps")
        dtls = importlib.import_module("lwm2m.dtls")
        credentials = importlib.import_module("lwm2m.dtls.credentials")
        client_io = importlib.import_module("lwm2m.io.lwm2m_client")
        return {
            "layer": coaps.DtlsSecurityLayer,
            "credentials": dtls.DtlsCredentials,
            "psk_store": credentials.SoftwarePskStore,
            "connector": client_io.DtlsConnector,
        }
    except (ImportError, AttributeError):
        return None


def _psk_unavailable() -> str | None:
    if _dtls_api() is not None:
        return None
    return (
        "--security psk needs the DTLS transport (lwm2m.io.coaps.DtlsSecurityLayer and "
        "lwm2m.io.lwm2m_client.DtlsConnector), which this build lacks; use --security nosec"
    )


def _psk_layer(role: str) -> SecurityLayer | None:
    """A DTLS server layer knowing the demo client's PSK (the server and the bootstrap server)."""
    api = _dtls_api()
    assert api is not None
    store = api["psk_store"]({PSK_IDENTITY: PSK_KEY})
    layer: SecurityLayer = api["layer"](server_credentials=api["credentials"](psk_store=store))
    return layer


def _psk_client_options() -> dict[str, Any]:
    """The client's DTLS connector: it takes the PSK from each account's /0 instance."""
    api = _dtls_api()
    assert api is not None
    return {"connector": api["connector"]()}


TRANSPORTS: dict[str, Transport] = {
    "nosec": Transport("nosec", "coap", SecurityMode.NOSEC, "plain CoAP over UDP (NoSec)"),
    "psk": Transport(
        "psk",
        "coaps",
        SecurityMode.PSK,
        "DTLS 1.2 with a pre-shared key (identity = endpoint name)",
        psk_identity=PSK_IDENTITY,
        psk_key=PSK_KEY,
        layer=_psk_layer,
        client_options=_psk_client_options,
        available=_psk_unavailable,
    ),
    "oscore": Transport(
        "oscore",
        "coap",
        SecurityMode.NOSEC,
        "OSCORE (RFC 8613) over UDP: AES-CCM-16-64-128, HKDF SHA-256",
        # a demo secret, never a real one; the client's Sender ID is its kid
        oscore=OscoreInstance(b"\xc1", b"\x5e", Secret(bytes(range(16, 32))), b"demo-salt"),
    ),
}


# -- the demo ------------------------------------------------------------------------------------


def _bootstrap_config(transport: Transport, server_uri: str) -> BootstrapConfig:
    return BootstrapConfig(
        security=(transport.security_instance(1, server_uri, SHORT_SERVER_ID),),
        servers=(
            ServerInstance(
                instance_id=0,
                short_server_id=SHORT_SERVER_ID,
                lifetime=LIFETIME,
                default_min_period=0,
                default_max_period=60,
                binding="U",
                mute_send=False,
            ),
        ),
    )


def _client_config(transport: Transport, bootstrap_uri: str) -> ClientConfig:
    return parse_config(
        {
            "endpoint": ENDPOINT,
            "bind": "127.0.0.1:0",
            "bootstrap": transport.client_account(bootstrap_uri),
        }
    )


class _Demo:
    def __init__(self, console: Console, transport: Transport) -> None:
        self.console = console
        self.transport = transport
        self.registry = default_registry()
        self.step_number = 0
        self.server: LwM2MServer
        self.bootstrap: BootstrapServer
        self.client: LwM2MClient
        self.device: DemoDevice
        self.events: Subscription[server_events.ServerEvent]

    # -- output --------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.console.print(text, markup=False)

    def event(self, who: str, line: str) -> None:
        self.console.print(f"  [bold]{who:<9}[/bold] {line}")

    def request(self, operation: DownlinkRequest) -> None:
        message = encode_request(operation, self.registry)
        self.say(f"  -> {request_text(message)}")

    def response(self, response: Response, extra: str = "") -> None:
        self.say(f"  <- {response_text(response)}{extra}")

    def named(self, path: Path) -> str:
        """``/3/0/9 (Battery Level)``: the path and its name in the model."""
        definition = self.registry.get(path.ids[0])
        name = definition.name if definition is not None else ""
        if definition is not None and len(path.ids) >= 3:
            resource = definition.resource(path.ids[2])
            name = resource.name if resource is not None else ""
        return f"{path} ({name})" if name else str(path)

    def heading(self, title: str) -> str:
        self.step_number += 1
        name = f"step {self.step_number} ({title})"
        self.console.print()
        self.console.rule(f"[bold]{self.step_number}. {title}", align="left")
        return name

    # -- plumbing ------------------------------------------------------------------------------

    async def bounded(self, awaitable: Awaitable[T], what: str) -> T:
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                return await awaitable
        except TimeoutError:
            raise DemoError(f"{what}: no answer within {STEP_TIMEOUT:g} s") from None
        except (StopAsyncIteration, LookupError):  # an observation or a subscription ended
            raise DemoError(f"{what}: it ended before the answer came") from None

    def _server_event(self, event: server_events.ServerEvent) -> None:
        # Notifications and Send are shown in detail by their steps.
        if not isinstance(event, server_events.NotificationReceived | server_events.SendReceived):
            self.event("server", server_event_line(event))

    def _client_event(self, event: client_events.ClientEvent) -> None:
        if not isinstance(event, client_events.SendCompleted):
            self.event("client", client_event_line(event))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Start the three parties (the client bootstraps and registers on its own)."""
        transport = self.transport
        self.server = LwM2MServer(
            registry=self.registry,
            security=transport.layer("server"),
            security_store=transport.security_store(),
            expiry_interval=None,
        )
        self.server.add_listener(self._server_event)
        await self.server.start(("127.0.0.1", 0))
        try:
            self.events = self.server.subscribe()
            host, port = self.server.local_address
            server_uri = f"{transport.scheme}://{host}:{port}"
            self.bootstrap = BootstrapServer(
                configs={ENDPOINT: _bootstrap_config(transport, server_uri)},
                registry=self.registry,
                security=transport.layer("bootstrap"),
                security_store=transport.security_store(),
            )
            self.bootstrap.add_listener(BootstrapPrinter(self.console, "  [bold]bootstrap[/bold] "))
            await self.bootstrap.start(("127.0.0.1", 0))
            try:
                bs_host, bs_port = self.bootstrap.local_address
                bootstrap_uri = f"{transport.scheme}://{bs_host}:{bs_port}"
                config = _client_config(transport, bootstrap_uri)
                self.device = DemoDevice(config)
                self.client = LwM2MClient(
                    config,
                    objects=self.device.handlers,
                    on_event=self._client_event,
                    **transport.client_options(),
                )
                self.say(f"LwM2M server      {server_uri}")
                self.say(f"bootstrap server  {bootstrap_uri} (configures {ENDPOINT})")
                self.say(
                    f"client            {ENDPOINT}, objects /0-/7, "
                    f"factory account: the bootstrap server only"
                )
                self.say(f"security          {transport.description}")
                await self.client.start()
                try:
                    yield
                finally:
                    await self.client.stop(grace=STEP_TIMEOUT)
            finally:
                await self.bootstrap.stop()
        finally:
            await self.server.stop()

    # -- steps ---------------------------------------------------------------------------------

    async def bootstrap_and_register(self) -> None:
        name = self.heading("Bootstrap (client-initiated) and Register")
        registered = await self.bounded(
            self.events.wait_for(server_events.Registered), f"{name}: registration"
        )
        # The server publishes Registered before its 2.01 reaches the client: wait for the
        # client too, so that the first request does not overtake the registration.
        await self.bounded(self.client.wait_registered(), f"{name}: client registration")
        registration = registered.registration
        self.say(
            f"  registered at {registration.location}, lifetime {registration.lifetime} s, "
            f"LwM2M {registration.version}, "
            f"content formats {' '.join(str(cf) for cf in registration.content_formats)}"
        )

    async def call(self, name: str, operation: DownlinkRequest) -> Response:
        self.request(operation)
        try:
            response = await self.bounded(self.server.request(ENDPOINT, operation), name)
        except Lwm2mError as exc:
            raise DemoError(f"{name}: {exc}") from None
        return response

    async def read(self) -> None:
        name = self.heading(f"Read {self.named(READ_PATH)}")
        operation = Read(READ_PATH, ContentFormat.SENML_CBOR)
        response = await self.call(name, operation)
        self.response(response)
        if response.content is None:
            raise DemoError(f"{name}: the response has no content")
        self.console.print(node_table(READ_PATH, response.content, self.registry))

    async def write(self) -> None:
        name = self.heading(f"Write {self.named(WRITE_PATH)} and read it back")
        node = SingleResource(WRITE_PATH.ids[2], ResourceType.INTEGER, NEW_LIFETIME)
        response = await self.call(name, Write(WRITE_PATH, node, True, ContentFormat.TLV))
        self.response(response)
        response = await self.call(name, Read(WRITE_PATH, ContentFormat.TEXT))
        content = response.content
        self.response(response, f": {node_inline(WRITE_PATH, content)}" if content else "")
        if content is None or not isinstance(content, SingleResource):
            raise DemoError(f"{name}: the read-back has no value")
        if content.value != NEW_LIFETIME:
            raise DemoError(f"{name}: read back {content.value!r}, wrote {NEW_LIFETIME}")
        # The subscription keeps the events published meanwhile: the Update may be in already.
        updated = await self.bounded(
            self.events.wait_for(server_events.Updated, lambda e: e.new.lifetime == NEW_LIFETIME),
            f"{name}: the Update with the new lifetime",
        )
        self.say(
            f"  effect: the client sent an Update with lt={updated.new.lifetime} "
            f"(was {updated.old.lifetime})"
        )

    async def execute(self) -> None:
        name = self.heading(f"Execute {self.named(EXECUTE_PATH)}")
        action = asyncio.ensure_future(
            self.client.wait_for(
                lambda e: (
                    isinstance(e, client_events.ObjectEvent) and isinstance(e.event, DeviceAction)
                )
            )
        )
        try:
            response = await self.call(name, Execute(EXECUTE_PATH, ""))
            self.response(response)
            event = await self.bounded(action, f"{name}: the device action")
        finally:
            action.cancel()
        assert isinstance(event, client_events.ObjectEvent)
        assert isinstance(event.event, DeviceAction)
        self.say(
            f"  effect: the device was asked to {event.event.action.replace('_', ' ')} "
            "(the demo device only reports it)"
        )

    async def observe(self) -> None:
        name = self.heading(f"Observe {self.named(OBSERVE_PATH)}, two notifications")
        operation = Observe(OBSERVE_PATH, ContentFormat.SENML_CBOR)
        self.request(operation)
        try:
            handle = await self.bounded(
                self.server.observe(ENDPOINT, OBSERVE_PATH, accept=ContentFormat.SENML_CBOR), name
            )
        except Lwm2mError as exc:
            raise DemoError(f"{name}: {exc}") from None
        first = handle.response
        if first is None or first.content is None or not handle.active:
            raise DemoError(f"{name}: the client did not establish the observation")
        self.response(first, f": {node_inline(OBSERVE_PATH, first.content)}")
        try:
            for number, level in enumerate(BATTERY_LEVELS, 1):
                before = self.device.battery
                self.say(f"  device: battery level {before} % -> {level} %")
                self.device.set_battery(level)
                notification = await self.bounded(anext(handle), f"{name}: notification {number}")
                shown = (
                    node_inline(OBSERVE_PATH, notification.content)
                    if notification.content is not None
                    else "(no content)"
                )
                self.say(
                    f"  <- notification {number}: {code_text(notification.code)}, "
                    f"{content_format_text(notification.content_format)}: {shown}"
                )
                value = getattr(notification.content, "value", None)
                if value != level:
                    raise DemoError(f"{name}: notification {number} carries {value!r}")
        finally:
            if self.transport.oscore is None:
                self.request(CancelObservation(OBSERVE_PATH, ContentFormat.SENML_CBOR))
            with contextlib.suppress(Lwm2mError, TimeoutError):
                await self.bounded(handle.cancel(), f"{name}: cancel")
        if self.transport.oscore is None:
            self.say("  observation cancelled")
        else:  # a GET Observe=1 would resend the protected registration: a replay
            self.say("  observation cancelled (OSCORE: forgotten, the next notification gets RST)")

    async def read_composite(self) -> None:
        paths = " + ".join(str(p) for p in COMPOSITE_PATHS)
        name = self.heading(f"Read-Composite {paths}")
        senml = ContentFormat.SENML_JSON
        operation = ReadComposite(COMPOSITE_PATHS, senml, senml)
        response = await self.call(name, operation)
        self.response(response)
        if response.composite is None:
            raise DemoError(f"{name}: the response has no content")
        self.console.print(composite_table(response.composite, self.registry))

    async def send(self) -> None:
        paths = " + ".join(str(p) for p in SEND_PATHS)
        name = self.heading(f"Send {paths} (client -> server)")
        send_format = self.client.config.formats.send
        self.say(f"  client -> POST /dp, Content-Format: {content_format_text(send_format)}")
        try:
            results = await self.bounded(self.client.send(list(SEND_PATHS)), name)
        except Lwm2mError as exc:
            raise DemoError(f"{name}: {exc}") from None
        for result in results:
            outcome = "no answer" if result.code is None else code_text(result.code)
            self.say(f"  client <- {outcome} from server {result.short_server_id}")
            if not result.success:
                raise DemoError(f"{name}: the server answered {outcome}")
        event = await self.bounded(
            self.events.wait_for(server_events.SendReceived), f"{name}: the server's Send event"
        )
        self.say(
            f"  server received {sum(len(g.nodes) for g in event.groups)} values "
            f"({content_format_text(event.content_format)}):"
        )
        self.console.print(timestamped_table(event.groups))

    async def deregister(self) -> None:
        name = self.heading("De-register")
        await self.client.stop(grace=STEP_TIMEOUT)
        await self.bounded(self.events.wait_for(server_events.Deregistered), name)


async def run_demo(console: Console, transport: Transport = TRANSPORTS["nosec"]) -> float:
    """Run every step; returns the duration. Raises :class:`DemoError` (one line) on failure."""
    problem = transport.available()
    if problem is not None:
        raise DemoError(problem)
    demo = _Demo(console, transport)
    start = time.perf_counter()
    console.rule(
        "[bold]lwm2m demo — LwM2M server, bootstrap server and client in one process", align="left"
    )
    try:
        async with asyncio.timeout(DEMO_TIMEOUT), demo.running():
            await demo.bootstrap_and_register()
            await demo.read()
            await demo.write()
            await demo.execute()
            await demo.observe()
            await demo.read_composite()
            await demo.send()
            await demo.deregister()
    except TimeoutError:
        raise DemoError(f"the demo did not finish within {DEMO_TIMEOUT:g} s") from None
    except OSError as exc:
        raise DemoError(f"network error: {exc}") from None
    return time.perf_counter() - start


# -- the offline tour (``--formats``) ------------------------------------------------------------


def device_instance() -> ObjectInstance:
    """A Device (/3/0) as a small sensor would report it."""
    s, i = ResourceType.STRING, ResourceType.INTEGER
    return ObjectInstance(
        0,
        [
            SingleResource(0, s, "Open Mobile Alliance"),
            SingleResource(1, s, "Lightweight M2M Client"),
            SingleResource(2, s, "345000123"),
            SingleResource(3, s, "1.0"),
            MultipleResource.of(6, i, {0: 1, 1: 5}),
            MultipleResource.of(7, i, {0: 3800, 1: 5000}),
            MultipleResource.of(8, i, {0: 125, 1: 900}),
            SingleResource(9, i, 100),
            SingleResource(10, i, 15),
            MultipleResource.of(11, i, {0: 0}),
            SingleResource(13, ResourceType.TIME, 1367491215),
            SingleResource(14, s, "+02:00"),
            SingleResource(16, s, "U"),
        ],
    )


def run_formats_tour(console: Console) -> None:
    """The object model and every content format, offline."""
    from lwm2m.cli.main import _definition_table

    registry = default_registry()
    console.rule("[bold]lwm2m demo --formats — object model")
    objects = Table(title="Bundled object definitions", title_justify="left")
    for column in ("Object", "Name", "Versions", "Resources"):
        objects.add_column(column)
    for object_id in registry.object_ids():
        latest = registry.get(object_id)
        assert latest is not None
        objects.add_row(
            f"/{object_id}",
            latest.name,
            ", ".join(registry.versions(object_id)),
            str(len(latest.resources)),
        )
    console.print(objects)
    device = registry.get(3, "1.1")
    if device is not None:
        console.print(_definition_table(device))

    console.rule("[bold]content formats — /3/0 encoded and decoded back")
    path, node = Path(3, 0), device_instance()
    formats = Table(title_justify="left")
    for column in ("Format", "CF", "Bytes", "Round trip", "Payload (start)"):
        formats.add_column(column)
    for cf in (
        ContentFormat.TLV,
        ContentFormat.SENML_JSON,
        ContentFormat.SENML_CBOR,
        ContentFormat.LWM2M_CBOR,
        ContentFormat.JSON,
    ):
        codec = codec_for(cf)
        data = codec.encode(node, path, registry)
        same = codec.decode(data, path, registry) == node
        shown = (
            data.decode() if cf in (ContentFormat.SENML_JSON, ContentFormat.JSON) else data.hex()
        )
        formats.add_row(
            cf.short_name, str(int(cf)), str(len(data)), "ok" if same else "MISMATCH", shown[:60]
        )
    console.print(formats)

    single = Path(3, 0, 9)
    battery = node.resources[9]
    for cf in (ContentFormat.TEXT, ContentFormat.CBOR):
        data = codec_for(cf).encode(battery, single, registry)
        console.print(f"{single} as {cf.short_name}: {data!r}")

    console.rule("[bold]Read-Composite request (SenML CBOR)")
    composite = composite_codec_for(ContentFormat.SENML_CBOR)
    body = composite.encode_paths([Path(3, 0, 9), Path(1, 0, 1)])
    console.print(f"paths -> {body.hex()} -> {composite.decode_paths(body)}")

    console.rule("[bold]bad input gives a clear error")
    try:
        codec_for(ContentFormat.TLV).decode(bytes.fromhex("c8000548656c"), path, registry)
    except CodecError as exc:
        console.print(f"CodecError: {exc}")


@click.command("demo")
@click.option(
    "--formats",
    is_flag=True,
    help="Instead: the offline tour of the object model and the content formats.",
)
@click.option(
    "--security",
    type=click.Choice(["auto", *sorted(TRANSPORTS)]),
    default="auto",
    show_default=True,
    help="Transport security of every link; auto: psk when the DTLS transport is there.",
)
def demo_command(formats: bool, security: str) -> None:
    """Server, bootstrap server and client in one process: bootstrap, register, Read, Write,
    Execute, Observe, Read-Composite and Send, each printed readably."""
    if formats:
        run_formats_tour(Console(width=120))
        return
    if security == "auto":
        security = "psk" if TRANSPORTS["psk"].available() is None else "nosec"
    console = make_console()
    try:
        elapsed = asyncio.run(run_demo(console, TRANSPORTS[security]))
    except DemoError as exc:
        raise click.ClickException(f"demo failed: {exc}") from None
    console.print()
    console.print(f"[bold green]demo OK[/bold green]: every step succeeded in {elapsed:.2f} s")
