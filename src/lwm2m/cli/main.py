"""``lwm2m`` — the command line.

Subcommands: ``model show|check`` (object definitions), ``decode`` / ``encode`` (payloads in any
LwM2M content format), ``server`` (:mod:`lwm2m.cli.server`), ``bootstrap-server``
(:mod:`lwm2m.cli.bootstrap`), ``client`` (:mod:`lwm2m.cli.client`), ``demo``
(:mod:`lwm2m.cli.demo`: the three in one process) and ``sc`` (Secure Components). Errors are one
clear line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path as FsPath
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from lwm2m.codec import ContentFormat, codec_for
from lwm2m.codec.node_json import node_from_json, node_to_json
from lwm2m.errors import Lwm2mError
from lwm2m.model import ObjectDefinition, Path
from lwm2m.model.registry import ModelRegistry, default_registry

__all__ = ["main"]


class _Lwm2mGroup(click.Group):
    """Turns any :class:`Lwm2mError` into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Lwm2mError as exc:
            raise click.ClickException(str(exc)) from None


def _registry(ddf: tuple[str, ...]) -> ModelRegistry:
    registry = default_registry()
    for path in ddf:
        registry.load(path)
    return registry


_ddf_option = click.option(
    "--ddf",
    "ddf",
    multiple=True,
    type=click.Path(exists=True),
    help="Extra DDF XML file or folder (repeatable).",
)


@click.group(cls=_Lwm2mGroup)
@click.version_option(package_name="lwm2m")
def main() -> None:
    """LwM2M 1.1 client, server and bootstrap server with Secure Component support."""


# -- model ---------------------------------------------------------------------------------------


@main.group()
def model() -> None:
    """Object definitions (DDF)."""


def _definition_table(definition: ObjectDefinition) -> Table:
    table = Table(
        title=f"/{definition.id} {definition.name} — object {definition.version}, "
        f"LwM2M {definition.lwm2m_version}, "
        f"{'multiple' if definition.multiple else 'single'}, "
        f"{'mandatory' if definition.mandatory else 'optional'}\n{definition.urn}",
        title_justify="left",
    )
    for column in ("ID", "Name", "Ops", "Instances", "Mandatory", "Type", "Range", "Units"):
        table.add_column(column, overflow="fold")
    for res in definition.resources.values():
        table.add_row(
            str(res.id),
            res.name,
            res.operations.to_ddf() or "-",
            "Multiple" if res.multiple else "Single",
            "yes" if res.mandatory else "no",
            res.type.value,
            res.range_enumeration,
            res.units,
        )
    return table


@model.command("show")
@click.argument("object_ref")
@_ddf_option
def model_show(object_ref: str, ddf: tuple[str, ...]) -> None:
    """Print the definition of OBJECT[/VERSION], e.g. ``3`` or ``3/1.1``."""
    registry = _registry(ddf)
    object_text, _, version = object_ref.partition("/")
    if not object_text.isdigit():
        raise click.UsageError(f"{object_ref!r} is not OBJECT[/VERSION] (e.g. 3 or 3/1.1)")
    definition = registry.get(int(object_text), version or None)
    if definition is None:
        known = registry.versions(int(object_text))
        hint = f"; known versions: {', '.join(known)}" if known else ""
        raise click.ClickException(f"no definition of object {object_ref}{hint}")
    Console(width=140).print(_definition_table(definition))


@model.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def model_check(paths: tuple[str, ...]) -> None:
    """Validate DDF files (or folders of them) and print a summary."""
    from lwm2m.model.ddf import load_ddf

    files: list[FsPath] = []
    for path in map(FsPath, paths):
        files.extend(sorted(path.glob("*.xml")) if path.is_dir() else [path])
    ok = bad = 0
    for file in files:
        try:
            for definition in load_ddf(file):
                click.echo(
                    f"ok   {file}: /{definition.id} {definition.name} {definition.version} "
                    f"({len(definition.resources)} resources)"
                )
            ok += 1
        except Lwm2mError as exc:
            click.echo(f"FAIL {exc}")
            bad += 1
    click.echo(f"{ok} valid, {bad} invalid, {ok + bad} files")
    if bad:
        sys.exit(1)


# -- payloads ------------------------------------------------------------------------------------


def _content_format(text: str) -> ContentFormat:
    try:
        return ContentFormat.from_name(text)
    except ValueError as exc:
        raise click.ClickException(f"--format: {exc}") from None


def _path(text: str) -> Path:
    try:
        return Path.parse(text)
    except Lwm2mError as exc:
        raise click.ClickException(f"--path: {exc}") from None


def _read_input(source: str) -> str:
    if source.startswith("@"):
        try:
            return FsPath(source[1:]).read_text() if source != "@-" else sys.stdin.read()
        except OSError as exc:
            raise click.ClickException(f"cannot read {source[1:]}: {exc.strerror}") from None
    return source


_format_option = click.option(
    "--format", "fmt", required=True, help="Content format: name (tlv, senml-json, ...) or number."
)
_path_option = click.option("--path", "path", required=True, help="LwM2M path, e.g. /3/0.")


@main.command()
@_format_option
@_path_option
@_ddf_option
@click.argument("payload")
def decode(fmt: str, path: str, ddf: tuple[str, ...], payload: str) -> None:
    """Decode PAYLOAD (hex, or @FILE of hex; @FILE.bin for raw bytes) and print it as JSON."""
    cf, at, registry = _content_format(fmt), _path(path), _registry(ddf)
    if payload.startswith("@") and payload.endswith(".bin"):
        try:
            data = FsPath(payload[1:]).read_bytes()
        except OSError as exc:
            raise click.ClickException(f"cannot read {payload[1:]}: {exc.strerror}") from None
    else:
        text = "".join(_read_input(payload).split())
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise click.ClickException("payload is not hexadecimal") from None
    node = codec_for(cf).decode(data, at, registry)
    click.echo(json.dumps(node_to_json(node), indent=2, ensure_ascii=False))


@main.command()
@_format_option
@_path_option
@_ddf_option
@click.argument("payload")
def encode(fmt: str, path: str, ddf: tuple[str, ...], payload: str) -> None:
    """Encode PAYLOAD (JSON, or @FILE) as the node at --path and print it as hex."""
    cf, at, registry = _content_format(fmt), _path(path), _registry(ddf)
    try:
        data = json.loads(_read_input(payload))
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"payload is not JSON: {exc}") from None
    node = node_from_json(data, at, registry)
    click.echo(codec_for(cf).encode(node, at, registry).hex())


def _attach_subcommands() -> None:
    from lwm2m.cli.bootstrap import bootstrap_command
    from lwm2m.cli.client import client_command
    from lwm2m.cli.demo import demo_command
    from lwm2m.cli.sc import sc
    from lwm2m.cli.server import server_command
    from lwm2m.cli.simulate import simulate_command
    from lwm2m.cli.vse import sc as card_tools
    from lwm2m.cli.vse import vse

    for command in (server_command, bootstrap_command, client_command, demo_command, sc, vse):
        main.add_command(command)
    main.add_command(simulate_command)
    # the smart-card tools join `lwm2m sc`; their `info` (card identification) is `card-info`
    for name, command in card_tools.commands.items():
        sc.add_command(command, name if name not in sc.commands else f"card-{name}")


_attach_subcommands()

if __name__ == "__main__":  # pragma: no cover
    main()
