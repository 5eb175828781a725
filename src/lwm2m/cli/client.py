"""``lwm2m client`` — a demo device: objects 0-7, lifecycle events printed, Ctrl-C deregisters.

Configured by a TOML file (``--config``, the format of :mod:`lwm2m.client.config`, e.g.
``examples/client.toml``), by flags, or both (flags win; a problem in the file is one line
naming it):

- ``--server URI`` registers with that LwM2M server (replaces the file's accounts);
- ``--bootstrap URI`` bootstraps from that bootstrap server first (replaces the file's accounts);
- neither, and no file: ``coap://127.0.0.1:5683`` (a file must name its accounts);
- ``--secure-component URI`` keeps /0 and /21 in a Secure Component; with a ``pcsc:`` URI the
  smart card's EF LwM2M_Bootstrap is the first bootstrap step (SCS-10, :mod:`lwm2m.io.smartcard`)
  and no server flag is needed;
- ``--sc-admin-aid AID`` (repeatable, with a ``pcsc:`` component) lets servers send remote APDU
  scripts to that security domain of the card through /33000/x/30-35 (:mod:`lwm2m.secure.admin`;
  e.g. ``A000000151000000``, the Issuer Security Domain); without it the relay is off;
  ``--seram-agent URL`` (repeatable, with it) lets servers start a GlobalPlatform SERAM 2.0
  session with that Remote Agent through /33000/x/36-38 (:mod:`lwm2m.io.seram_agent`);
- ``--endpoint``, ``--lifetime`` (of the ``--server`` / file accounts; a bootstrap server sets
  its own), ``--queue-mode``, ``--bind HOST:PORT``;
- ``--psk-identity ID`` with ``--psk-key-hex-env VAR`` (the key, in hex, in an environment
  variable) or ``--psk-key-file FILE`` (the key in hex in a file): the ``--server`` /
  ``--bootstrap`` account uses DTLS-PSK (a ``coaps://`` URI). A key is never taken from the
  command line itself (it would show in ``ps`` and shell histories).

The device (:class:`DemoDevice`) has /0 Security, /1 Server, /2 Access Control, /3 Device (with
a battery that drains every ``--tick`` seconds, so observers get notifications), /4 Connectivity
Monitoring, /5 Firmware Update (push or CoAP pull), /6 Location and /7 Connectivity Statistics.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import click
from rich.console import Console

from lwm2m.cli.files import read_toml
from lwm2m.cli.printing import client_event_line, make_console
from lwm2m.cli.server import bind_failed, stop_on_signals
from lwm2m.client import ClientConfig, parse_config
from lwm2m.client.config import ConfigError
from lwm2m.client.objects import (
    ConnectivityMonitoring,
    ConnectivityStatistics,
    Device,
    FirmwareUpdate,
    Location,
    ObjectHandler,
)
from lwm2m.io.lwm2m_client import CoapDownloader, LwM2MClient
from lwm2m.io.smartcard import open_smartcard_client
from lwm2m.secure.admin import parse_aid

__all__ = [
    "DEFAULT_SERVER",
    "DemoDevice",
    "build_client_config",
    "client_command",
    "default_endpoint",
    "run_client",
]

DEFAULT_SERVER = "coap://127.0.0.1:5683"
DEFAULT_SSID = 101

_DEMO_IDENTITY = {
    "manufacturer": "lwm2m for Python",
    "model_number": "Demo Device",
    "serial_number": "LWM2M-0001",
    "firmware_version": "1.0.0",
    "device_type": "demo",
    "hardware_version": "1.0",
    "software_version": "0.1.0",
}


def default_endpoint() -> str:
    """``urn:dev:os:lwm2m-demo-<host>``: unique enough on one network."""
    return f"urn:dev:os:lwm2m-demo-{socket.gethostname() or 'host'}"


class DemoDevice:
    """The objects of the demo device (see the module docstring). ``tick()`` drains the
    battery by one percent (recharged to 100 below 20) and counts the time."""

    def __init__(self, config: ClientConfig, wall_clock: Callable[[], float] = time.time) -> None:
        identity = config.device
        firmware_version = identity.firmware_version or _DEMO_IDENTITY["firmware_version"]
        self.device = Device(
            manufacturer=identity.manufacturer or _DEMO_IDENTITY["manufacturer"],
            model_number=identity.model_number or _DEMO_IDENTITY["model_number"],
            serial_number=identity.serial_number or _DEMO_IDENTITY["serial_number"],
            firmware_version=firmware_version,
            device_type=identity.device_type or _DEMO_IDENTITY["device_type"],
            hardware_version=identity.hardware_version or _DEMO_IDENTITY["hardware_version"],
            software_version=identity.software_version or _DEMO_IDENTITY["software_version"],
            supported_bindings="UQ",
            wall_clock=wall_clock,
            values={
                6: [1, 5],  # power sources: internal battery, USB
                7: [3800, 5000],  # mV
                8: [125, 900],  # mA
                9: 100,  # battery level, %
                10: 15_000,  # memory free, KiB
                14: "+00:00",
                15: "Etc/UTC",
                20: 0,  # battery status: normal
                21: 65_536,  # memory total, KiB
            },
        )
        self.connectivity = ConnectivityMonitoring(
            ip_addresses=("127.0.0.1",), values={2: -70, 3: 95}
        )
        self.firmware = FirmwareUpdate(package_name="lwm2m-demo", package_version=firmware_version)
        self.location = Location(48.8584, 2.2945, timestamp=int(wall_clock()))
        self.statistics = ConnectivityStatistics()

    @property
    def handlers(self) -> list[ObjectHandler]:
        """Objects 3-7 (the client creates /0, /1 and /2)."""
        return [self.device, self.connectivity, self.firmware, self.location, self.statistics]

    def attach(self, client: LwM2MClient) -> None:
        """Let the Firmware Update object pull packages over CoAP through ``client``."""
        self.firmware.downloader = CoapDownloader(client)

    @property
    def battery(self) -> int:
        value = self.device.instance(0).get(9)
        return value if isinstance(value, int) else 0

    def set_battery(self, level: int) -> None:
        """Set /3/0/9 (observers are notified)."""
        self.device.set(9, level)

    def tick(self) -> None:
        level = self.battery - 1
        self.set_battery(100 if level < 20 else level)


def build_client_config(
    *,
    config_file: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    server: str | None = None,
    bootstrap: str | None = None,
    lifetime: int | None = None,
    queue_mode: bool = False,
    bind: str | None = None,
    short_server_id: int = DEFAULT_SSID,
    smartcard: bool = False,
    psk_identity: str | None = None,
    psk_key: bytes | None = None,
) -> ClientConfig:
    """The client configuration from an optional TOML file and the flags (see the module
    docstring). Raises ConfigError (one line) for invalid values; one in the file's part of
    the configuration names the file."""
    if server is not None and bootstrap is not None:
        raise click.ClickException("give --server or --bootstrap, not both")
    psk = _psk_table(psk_identity, psk_key, server if server is not None else bootstrap)
    path = os.fspath(config_file) if config_file else None
    data: dict[str, Any] = read_toml(path, ConfigError) if path else {}
    flags = {  # the top-level keys the flags set
        key
        for key, value in (
            ("endpoint", endpoint),
            ("servers", server),
            ("bootstrap", bootstrap),
            ("bind", bind),
        )
        if value is not None
    }
    if endpoint is not None:
        data["endpoint"] = endpoint
    data.setdefault("endpoint", default_endpoint())
    if server is not None:
        data.pop("bootstrap", None)
        data["servers"] = [{"uri": server, "short_server_id": short_server_id, **psk}]
    elif bootstrap is not None:
        data.pop("servers", None)
        data["bootstrap"] = {"uri": bootstrap, **psk}
    elif config_file is None:
        data["servers"] = [{"uri": DEFAULT_SERVER, "short_server_id": short_server_id}]
    servers = data.get("servers")
    if isinstance(servers, list):
        for table in servers:
            if isinstance(table, dict):
                if lifetime is not None:
                    table["lifetime"] = lifetime
                if config_file is None or server is not None:
                    table.setdefault("lifetime", 300)
                    table.setdefault("mute_send", False)  # the demo device may Send
    if queue_mode:
        data["queue_mode"] = True
    if bind is not None:
        data["bind"] = bind
    device = data.setdefault("device", {})
    if isinstance(device, Mapping):
        data["device"] = {**_DEMO_IDENTITY, **device}
    try:
        config = parse_config(data)
    except ConfigError as exc:
        if path is None or _set_by_flags(str(exc), flags, lifetime is not None):
            raise
        raise ConfigError(f"{path}: {exc}") from None
    if smartcard and server is None and bootstrap is None and config_file is None:
        config = dataclasses.replace(config, servers=())  # the card provisions the accounts
    return config


def _set_by_flags(message: str, flags: set[str], lifetime: bool) -> bool:
    """Whether the ConfigError ``message`` is about a value a flag gave (its key, the start
    of the message, is one of ``flags``, or a server's lifetime when ``--lifetime`` was
    given)."""
    key = re.match(r"[a-z_]*", message)
    if key is not None and key.group() in flags:
        return True
    return lifetime and re.match(r"servers\[\d+\]\.lifetime:", message) is not None


def _psk_table(identity: str | None, key: bytes | None, uri: str | None) -> dict[str, str]:
    """The PSK keys of the flag account's table (empty without PSK flags)."""
    if identity is None and key is None:
        return {}
    if identity is None or key is None:
        raise click.ClickException(
            "--psk-identity needs --psk-key-hex-env or --psk-key-file (and they need it)"
        )
    if uri is None:
        raise click.ClickException("--psk-identity applies to a --server or --bootstrap URI")
    if not uri.lower().startswith("coaps://"):
        raise click.ClickException("--psk-identity needs a coaps:// URI")
    if not identity:
        raise click.ClickException("--psk-identity: the identity must not be empty")
    return {"security_mode": "psk", "psk_identity": identity, "psk_key_hex": key.hex()}


def read_psk_key(env: str | None, file: str | None) -> bytes | None:
    """The PSK of ``--psk-key-hex-env VAR`` / ``--psk-key-file FILE`` (hex text); one-line
    errors that never repeat the value."""
    if env is not None and file is not None:
        raise click.ClickException("give --psk-key-hex-env or --psk-key-file, not both")
    if env is not None:
        text = os.environ.get(env)
        if text is None:
            raise click.ClickException(f"--psk-key-hex-env: environment variable {env} is not set")
        where = f"--psk-key-hex-env: {env}"
    elif file is not None:
        try:
            with open(file, encoding="ascii", errors="replace") as handle:
                text = handle.read()
        except OSError as exc:
            raise click.ClickException(
                f"--psk-key-file: cannot read {file}: {exc.strerror or exc}"
            ) from None
        where = f"--psk-key-file: {file}"
    else:
        return None
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise click.ClickException(f"{where} does not hold a key in hex") from None
    if not key:
        raise click.ClickException(f"{where} holds an empty key")
    return key


def _targets(config: ClientConfig) -> str:
    if config.servers:
        return ", ".join(f"{s.uri} (server {s.short_server_id})" for s in config.servers)
    if config.bootstrap is None:
        return "the smart card's bootstrap data"
    return f"{config.bootstrap.uri} (bootstrap)"


async def _ticker(device: DemoDevice, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        device.tick()


async def run_client(
    config: ClientConfig,
    *,
    console: Console,
    tick: float = 10.0,
    stop: asyncio.Event | None = None,
    secure_component: str | None = None,
    admin_targets: tuple[bytes, ...] = (),
    seram_agents: tuple[str, ...] = (),
) -> None:
    """Run the demo device until ``stop`` is set (or SIGINT / SIGTERM), then deregister;
    ``admin_targets``: the security domains servers may script (:mod:`lwm2m.secure.admin`)."""
    stop = stop if stop is not None else asyncio.Event()
    device = DemoDevice(config)
    on_event = lambda event: console.print(client_event_line(event))  # noqa: E731
    if secure_component is not None and secure_component.startswith("pcsc:"):
        client, _ = await open_smartcard_client(
            config,
            secure_component,
            device.handlers,
            on_event=on_event,
            admin_targets=admin_targets,
            seram_agents=seram_agents,
        )
    else:
        client = LwM2MClient(
            config,
            objects=device.handlers,
            on_event=on_event,
            secure_component=secure_component,
        )
    device.attach(client)
    ticker: asyncio.Task[None] | None = None
    mode = ", queue mode" if config.queue_mode else ""
    console.print(
        f"LwM2M client {config.endpoint}{mode} -> {_targets(config)}; "
        "objects /0 /1 /2 /3 /4 /5 /6 /7",
        markup=False,
    )
    with stop_on_signals(stop):
        try:
            await client.start()
        except OSError as exc:
            raise bind_failed(config.bind, exc) from None
        try:
            host, port = client.local_address[:2]
            console.print(f"on udp {host}:{port} — Ctrl-C to deregister", markup=False)
            if tick > 0:
                ticker = asyncio.get_running_loop().create_task(_ticker(device, tick))
            await stop.wait()
            console.print("deregistering", markup=False)
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
            await client.stop()
    console.print("client stopped", markup=False)


@click.command("client")
@click.option("--config", "config_file", metavar="FILE", help="Client configuration (TOML).")
@click.option("--endpoint", help="Endpoint Client Name (default: from the file, or per host).")
@click.option("--server", metavar="URI", help="Register with this LwM2M server (coap://...).")
@click.option("--bootstrap", metavar="URI", help="Bootstrap from this bootstrap server first.")
@click.option(
    "--lifetime", type=click.IntRange(1), help="Registration lifetime in seconds (default 300)."
)
@click.option(
    "--secure-component",
    metavar="URI",
    help="Keep /0 and /21 in this Secure Component; pcsc:... boots from the card first.",
)
@click.option(
    "--sc-admin-aid",
    "admin_aids",
    multiple=True,
    metavar="AID",
    help="Let servers send remote APDU scripts (/33000/x/30-35) to this security domain of the "
    "pcsc: card (hex, repeatable; A000000151000000 is the Issuer Security Domain).",
)
@click.option(
    "--seram-agent",
    "seram_agents",
    multiple=True,
    metavar="URL",
    help="Let servers start a GP SERAM 2.0 session with this Remote Agent "
    "(https://.../gp/seram; repeatable; needs --sc-admin-aid and the seram extra).",
)
@click.option(
    "--psk-identity",
    metavar="ID",
    help="DTLS-PSK identity for the --server / --bootstrap account (a coaps:// URI).",
)
@click.option(
    "--psk-key-hex-env",
    metavar="VAR",
    help="Environment variable holding the PSK in hex (never give a key on the command line).",
)
@click.option(
    "--psk-key-file",
    metavar="FILE",
    help="File holding the PSK in hex (instead of --psk-key-hex-env).",
)
@click.option("--queue-mode", is_flag=True, help="Use queue mode (sleep between exchanges).")
@click.option("--bind", metavar="HOST:PORT", help="Local UDP address (default 0.0.0.0:0).")
@click.option(
    "--tick",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Seconds between battery level changes (/3/0/9); 0 keeps it still.",
)
def client_command(
    config_file: str | None,
    endpoint: str | None,
    server: str | None,
    bootstrap: str | None,
    lifetime: int | None,
    secure_component: str | None,
    admin_aids: tuple[str, ...],
    seram_agents: tuple[str, ...],
    psk_identity: str | None,
    psk_key_hex_env: str | None,
    psk_key_file: str | None,
    queue_mode: bool,
    bind: str | None,
    tick: float,
) -> None:
    """Run a demo LwM2M device (objects 0-7) and print its lifecycle (Ctrl-C deregisters)."""
    admin_targets = parse_admin_aids(admin_aids, secure_component)
    check_seram_agents(seram_agents, admin_targets)
    config = build_client_config(
        config_file=config_file,
        endpoint=endpoint,
        server=server,
        bootstrap=bootstrap,
        lifetime=lifetime,
        queue_mode=queue_mode,
        bind=bind,
        smartcard=secure_component is not None and secure_component.startswith("pcsc:"),
        psk_identity=psk_identity,
        psk_key=read_psk_key(psk_key_hex_env, psk_key_file),
    )
    asyncio.run(
        run_client(
            config,
            console=make_console(),
            tick=tick,
            secure_component=secure_component,
            admin_targets=admin_targets,
            seram_agents=seram_agents,
        )
    )


def parse_admin_aids(texts: tuple[str, ...], secure_component: str | None) -> tuple[bytes, ...]:
    """The ``--sc-admin-aid`` values; a usage error names a bad one."""
    if texts and not (secure_component or "").startswith("pcsc:"):
        raise click.UsageError("--sc-admin-aid needs --secure-component pcsc:...")
    aids = []
    for text in texts:
        try:
            aids.append(parse_aid(text))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--sc-admin-aid") from None
    return tuple(aids)


def check_seram_agents(urls: tuple[str, ...], admin_targets: tuple[bytes, ...]) -> None:
    """The ``--seram-agent`` values: http(s) URLs, with the relay on; a usage error otherwise."""
    if urls and not admin_targets:
        raise click.UsageError("--seram-agent needs --sc-admin-aid (the sessions use the relay)")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--seram-agent")
