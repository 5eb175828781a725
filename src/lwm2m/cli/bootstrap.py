"""``lwm2m bootstrap-server --config FILE`` — a bootstrap server that prints each session step.

The configuration is the TOML format of :mod:`lwm2m.bootstrap.config_file` (one
``[endpoints."NAME"]`` table per client; ``examples/bootstrap.toml``); a problem in it is one
line naming the file, and each security instance's URI must be one the client takes (a
``coap://`` URI for nosec, ``coaps://`` for the other modes). For each
Bootstrap-Request of a configured endpoint it prints the planned steps, then one line per step
with the client's answer (``step 2/4 urn:dev:x write /0/1 -> 2.04 Changed``), then finished or
failed. Written values are never printed: they include keys. Ctrl-C (or SIGTERM) stops it.

**DTLS.** How each client authenticates to the bootstrap server is the optional
``bootstrap_security`` table of its endpoint (PSK identity and key, RPK public key, or the X.509
certificate name; see :mod:`lwm2m.io.lwm2m_bootstrap` and ``examples/bootstrap.toml``). When
some endpoint has one, the server serves ``coaps://`` (default port 5784) and endpoints without
one are served in plain CoAP on the same socket; a Bootstrap-Request whose ``ep`` does not match
the authenticated identity gets 4.00. RPK and X.509 clients need the server's ``--key`` (and
``--cert``), X.509 clients a ``--trust-anchor``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import click
from rich.console import Console

from lwm2m.bootstrap.config import BootstrapConfig, ConfigError
from lwm2m.bootstrap.session import BootstrapEvent, BootstrapStarted
from lwm2m.cli.files import read_text
from lwm2m.cli.printing import bootstrap_event_line, make_console
from lwm2m.cli.server import (
    DtlsOptions,
    bind_failed,
    build_security,
    dtls_options,
    load_registry,
    parse_address,
    stop_on_signals,
)
from lwm2m.client.config import ConfigError as ClientConfigError
from lwm2m.client.config import check_server_uri
from lwm2m.client.objects.security import SecurityMode as ClientSecurityMode
from lwm2m.io.coap_transport import SecurityLayer
from lwm2m.io.lwm2m_bootstrap import BootstrapFile, BootstrapServer, parse_bootstrap_document
from lwm2m.model.registry import ModelRegistry
from lwm2m.store.base import SecurityStore

__all__ = [
    "BootstrapPrinter",
    "bootstrap_command",
    "check_uris",
    "load_configs",
    "load_file",
    "run_bootstrap_server",
]


class BootstrapPrinter:
    """A bootstrap-server listener printing one line per event (with ``step i/n`` counts)."""

    def __init__(self, console: Console, prefix: str = "") -> None:
        self.console = console
        self.prefix = prefix
        self._totals: dict[str, int] = {}

    def __call__(self, event: BootstrapEvent) -> None:
        if isinstance(event, BootstrapStarted):
            self._totals[event.endpoint] = len(event.steps)
        line = bootstrap_event_line(event, self._totals.get(event.endpoint))
        self.console.print(self.prefix + line)


def load_file(path: str, registry: ModelRegistry) -> BootstrapFile:
    """Read the TOML file: every problem is one line naming the file (a ConfigError for its
    content, which also checks the server URIs as the client does: see :func:`check_uris`)."""
    text = read_text(path)
    try:
        loaded = parse_bootstrap_document(text, model=registry)
        check_uris(loaded.configs)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return loaded


def check_uris(configs: Mapping[str, BootstrapConfig]) -> None:
    """Raise ConfigError unless every security instance's URI is one the client takes: a
    ``coap[s]://host[:port]`` URI whose scheme fits its mode (the client's
    :func:`~lwm2m.client.config.check_server_uri`)."""
    for name, config in configs.items():
        for index, security in enumerate(config.security):
            try:
                check_server_uri(
                    f"endpoints.{name}.security[{index}].uri",
                    security.uri,
                    ClientSecurityMode(int(security.mode)),
                )
            except ClientConfigError as exc:
                raise ConfigError(str(exc)) from None


def load_configs(path: str, registry: ModelRegistry) -> dict[str, BootstrapConfig]:
    """The configurations of the TOML file (see :func:`load_file`)."""
    return load_file(path, registry).configs


async def run_bootstrap_server(
    bind: tuple[str, int],
    configs: dict[str, BootstrapConfig],
    *,
    registry: ModelRegistry,
    console: Console,
    stop: asyncio.Event | None = None,
    dtls: DtlsOptions | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGINT / SIGTERM when ``stop`` is None). With ``dtls``
    enabled (a secured ``bootstrap_security`` entry, or a server key), clients connect over
    ``coaps://`` as their entries say."""
    stop = stop if stop is not None else asyncio.Event()
    security_store: SecurityStore | None = None
    layer: SecurityLayer | None = None
    allow_plain = True
    described = ""
    if dtls is not None and dtls.enabled:
        security_store, layer, allow_plain, described = await build_security(dtls)
    server = BootstrapServer(
        configs=configs,
        registry=registry,
        security=layer,
        security_store=security_store,
        allow_plain=allow_plain,
    )
    server.add_listener(BootstrapPrinter(console))
    try:
        with stop_on_signals(stop):
            try:
                await server.start(bind)
            except OSError as exc:
                raise bind_failed(bind, exc) from None
            host, port = server.local_address
            names = ", ".join(sorted(configs)) or "none"
            scheme = "coap" if layer is None else "coaps"
            console.print(
                f"LwM2M bootstrap server listening on {scheme}://{host}:{port} "
                f"({len(configs)} endpoints: {names}"
                f"{'; ' + described if described else ''}) — Ctrl-C to stop",
                markup=False,
            )
            await stop.wait()
            console.print("stopping", markup=False)
    finally:
        await server.stop()
        if security_store is not None:
            await security_store.close()
    console.print("bootstrap server stopped", markup=False)


@click.command("bootstrap-server")
@click.option(
    "--config",
    "config",
    required=True,
    metavar="FILE",
    help="Bootstrap configuration (TOML, see examples/bootstrap.toml).",
)
@click.option(
    "--bind",
    default=None,
    help="UDP address to serve on, HOST:PORT (port 0: any free port). "
    "[default: 0.0.0.0:5783, or 0.0.0.0:5784 with DTLS]",
)
@click.option(
    "--ddf",
    "ddf",
    multiple=True,
    type=click.Path(),
    help="Extra DDF XML file or folder for the objects of extra writes (repeatable).",
)
@dtls_options
def bootstrap_command(
    config: str,
    bind: str | None,
    ddf: tuple[str, ...],
    key: str | None,
    cert: str | None,
    trust_anchors: tuple[str, ...],
    allow_plain: bool,
) -> None:
    """Run a bootstrap server that configures clients from a TOML file (Ctrl-C stops it)."""
    given = parse_address(bind) if bind is not None else None
    registry = load_registry(ddf)
    loaded = load_file(config, registry)
    dtls = DtlsOptions(
        entries=list(loaded.security),
        trust_anchors=trust_anchors,
        cert=cert,
        key=key,
        allow_plain=allow_plain,
    )
    address = given or parse_address("0.0.0.0:5784" if dtls.dtls else "0.0.0.0:5783")
    asyncio.run(
        run_bootstrap_server(
            address, loaded.configs, registry=registry, console=make_console(), dtls=dtls
        )
    )
