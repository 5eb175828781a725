"""``lwm2m bootstrap-server --config FILE`` — a bootstrap server that prints each session step.

The configuration is the TOML format of :mod:`lwm2m.bootstrap.config_file` (one
``[endpoints."NAME"]`` table per client; ``examples/bootstrap.toml``). For each
Bootstrap-Request of a configured endpoint it prints the planned steps, then one line per step
with the client's answer (``step 2/4 urn:dev:x write /0/1 -> 2.04 Changed``), then finished or
failed. Written values are never printed: they include keys. Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import asyncio

import click
from rich.console import Console

from lwm2m.bootstrap.config import BootstrapConfig
from lwm2m.bootstrap.session import BootstrapEvent, BootstrapStarted
from lwm2m.cli.printing import bootstrap_event_line, make_console
from lwm2m.cli.server import load_registry, parse_address, stop_on_signals
from lwm2m.io.lwm2m_bootstrap import BootstrapServer, load_bootstrap_config
from lwm2m.model.registry import ModelRegistry

__all__ = ["BootstrapPrinter", "bootstrap_command", "load_configs", "run_bootstrap_server"]


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


def load_configs(path: str, registry: ModelRegistry) -> dict[str, BootstrapConfig]:
    """Read the TOML file; unreadable files are one-line errors (ConfigError is one already)."""
    try:
        return load_bootstrap_config(path, model=registry)
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from None


async def run_bootstrap_server(
    bind: tuple[str, int],
    configs: dict[str, BootstrapConfig],
    *,
    registry: ModelRegistry,
    console: Console,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGINT / SIGTERM when ``stop`` is None)."""
    stop = stop if stop is not None else asyncio.Event()
    server = BootstrapServer(configs=configs, registry=registry)
    server.add_listener(BootstrapPrinter(console))
    try:
        with stop_on_signals(stop):
            try:
                await server.start(bind)
            except OSError as exc:
                raise click.ClickException(
                    f"cannot bind {bind[0]}:{bind[1]}: {exc.strerror or exc}"
                ) from None
            host, port = server.local_address
            names = ", ".join(sorted(configs)) or "none"
            console.print(
                f"LwM2M bootstrap server listening on coap://{host}:{port} "
                f"({len(configs)} endpoints: {names}) — Ctrl-C to stop",
                markup=False,
            )
            await stop.wait()
            console.print("stopping", markup=False)
    finally:
        await server.stop()
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
    default="0.0.0.0:5783",
    show_default=True,
    help="UDP address to serve on, HOST:PORT (port 0: any free port).",
)
@click.option(
    "--ddf",
    "ddf",
    multiple=True,
    type=click.Path(),
    help="Extra DDF XML file or folder for the objects of extra writes (repeatable).",
)
def bootstrap_command(config: str, bind: str, ddf: tuple[str, ...]) -> None:
    """Run a bootstrap server that configures clients from a TOML file (Ctrl-C stops it)."""
    address = parse_address(bind)
    registry = load_registry(ddf)
    configs = load_configs(config, registry)
    asyncio.run(run_bootstrap_server(address, configs, registry=registry, console=make_console()))
