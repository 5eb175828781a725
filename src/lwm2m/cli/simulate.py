"""``lwm2m simulate`` — a fleet of simulated devices (:mod:`lwm2m.sim`) registering to a server.

``--count N`` devices named ``PREFIX`` + zero-padded index (``sim-000`` … ``sim-999``), each an
LwM2M client with /0-/3 on its own UDP socket (``--bind HOST``, port 0), started at most
``--rate`` per second, registering to ``--server coap://HOST:PORT`` with ``--lifetime`` and
optionally ``--queue-mode``. With ``--server coaps://…`` the devices use DTLS-PSK, each with
its own random key and its endpoint as identity; ``--security-store`` (the server's: a SQLite
path or a Redis URL) receives those keys before the first device starts and loses them at the
end. A progress line every ``--progress`` seconds
(registered/failed/total), Ctrl-C (SIGINT / SIGTERM) de-registers every device, then a final
line. The open-file limit is raised for the sockets when the hard limit allows it.
"""

from __future__ import annotations

import asyncio
import contextlib

import click
from rich.console import Console

from lwm2m.cli.printing import info_line, make_console
from lwm2m.cli.server import open_security_store, parse_store, stop_on_signals
from lwm2m.sim import Fleet, FleetConfig, FleetError

__all__ = ["run_simulation", "simulate_command"]


async def run_simulation(
    config: FleetConfig,
    *,
    console: Console,
    progress: float = 1.0,
    stop: asyncio.Event | None = None,
    grace: float = 5.0,
    security_store: str | None = None,
) -> None:
    """Run the fleet until ``stop`` is set (or SIGINT / SIGTERM), then de-register it. A
    ``coaps://`` fleet's PSKs go into ``security_store`` (a SQLite path or Redis URL, as
    ``parse_store`` returns it, the server's ``--security-store``) before the first device
    starts, and are removed from it at the end."""
    stop = stop if stop is not None else asyncio.Event()
    fleet = Fleet(config)
    if config.psk and security_store is None:
        raise click.UsageError(
            "a coaps:// fleet needs --security-store: the server's store, where the devices' "
            "PSKs are put"
        )
    store = await open_security_store(security_store) if config.psk and security_store else None
    try:
        for entry in fleet.security_entries():
            assert store is not None
            await store.put(entry)
        await _simulate(fleet, config, console, progress, stop, grace)
    finally:
        if store is not None:
            for entry in fleet.security_entries():
                await store.delete(entry.endpoint)
            await store.close()


async def _simulate(
    fleet: Fleet,
    config: FleetConfig,
    console: Console,
    progress: float,
    stop: asyncio.Event,
    grace: float,
) -> None:
    queue = ", queue mode" if config.queue_mode else ""
    console.print(
        info_line(
            "simulate",
            f"{config.count} devices {fleet.endpoint(0)}..{fleet.endpoint(config.count - 1)}",
            f"-> {config.server} at {config.rate:g}/s, lifetime {config.lifetime}s{queue},",
            f"bound to {config.bind_host} — Ctrl-C to de-register",
        )
    )
    loop = asyncio.get_running_loop()
    with stop_on_signals(stop):
        starting = loop.create_task(fleet.start())
        failure: FleetError | None = None
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(progress):
                        await stop.wait()
                if starting.done() and starting.exception() is not None:
                    error = starting.exception()
                    assert isinstance(error, FleetError)
                    failure = error
                    break
                console.print(info_line("progress", fleet.stats().line()))
            console.print(info_line("stopping", "de-registering every device"))
        finally:
            await fleet.stop(grace)
            await asyncio.gather(starting, return_exceptions=True)
    console.print(info_line("stopped", fleet.stats().line()))
    if failure is not None:
        raise click.ClickException(str(failure))


@click.command("simulate")
@click.option(
    "--server",
    required=True,
    metavar="URI",
    help="The LwM2M server, coap://HOST:PORT, or coaps:// for DTLS-PSK devices.",
)
@click.option(
    "--security-store",
    default=None,
    metavar="STORE",
    help="coaps://: the server's security store (sqlite:PATH or a Redis URL) to put the "
    "devices' PSKs in (removed at the end).",
)
@click.option("--count", required=True, type=int, help="Number of devices.")
@click.option("--prefix", default="sim-", show_default=True, help="Endpoint name prefix.")
@click.option(
    "--rate", type=float, default=50.0, show_default=True, help="Registrations per second at most."
)
@click.option(
    "--lifetime", type=int, default=300, show_default=True, help="Registration lifetime (s)."
)
@click.option("--queue-mode", is_flag=True, help="Register in queue mode.")
@click.option(
    "--bind", default="127.0.0.1", show_default=True, metavar="HOST", help="Local address."
)
@click.option(
    "--progress",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Seconds between progress lines.",
)
def simulate_command(
    server: str,
    security_store: str | None,
    count: int,
    prefix: str,
    rate: float,
    lifetime: int,
    queue_mode: bool,
    bind: str,
    progress: float,
) -> None:
    """Simulate COUNT LwM2M devices registering to a server (Ctrl-C de-registers them)."""
    try:
        config = FleetConfig(
            server=server,
            count=count,
            prefix=prefix,
            rate=rate,
            lifetime=lifetime,
            queue_mode=queue_mode,
            bind_host=bind,
        )
    except FleetError as exc:
        raise click.ClickException(str(exc)) from None
    store = parse_store(security_store, "--security-store") if security_store else None
    if store is None and security_store is not None:
        raise click.BadParameter(
            "memory is not shared with a server", param_hint="--security-store"
        )
    asyncio.run(
        run_simulation(config, console=make_console(), progress=progress, security_store=store)
    )
