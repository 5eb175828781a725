"""``lwm2m vse`` (the virtual secure element) and ``lwm2m sc`` (smart-card tools) commands.

``vse`` and ``sc`` are click groups the main CLI attaches::

    lwm2m vse run --port 35963 --state vse.json     # serve the emulated UICC on vpcd
    lwm2m vse init --state vse.json                 # a fresh personalisation file
    lwm2m sc write-bootstrap card.toml --state vse.json   # or --hex / --out FILE
    lwm2m sc read-bootstrap [--reader N] [--scp03-key HEX]
    lwm2m sc info [--reader N]

The bootstrap description (TOML) lists server accounts; every other object can be given by
resource id. A problem in it is one line naming the file, the table and the key; a security
``uri`` must be one the client takes (``coap://`` for nosec, ``coaps://`` for the other modes).
Secret values (PSK keys) go into the file and nowhere else: the commands print object ids,
instance ids and sizes, never keys::

    layout = "1.1"                         # or "1.0" (no object version bytes)

    [[security]]                           # /0 instances, in order (instance = position)
    uri = "coaps://bootstrap.example.com:5684"
    bootstrap = true
    mode = "psk"                           # psk | rpk | certificate | nosec | est | 0..4
    psk_identity = "device-1"              # or psk_identity_hex
    psk_key_hex = "000102030405060708090a0b0c0d0e0f"   # or psk_key (text)

    [[security]]
    uri = "coaps://lwm2m.example.com:5684"
    short_server_id = 101
    mode = "psk"
    psk_identity = "device-1"
    psk_key_hex = "0f0e0d0c0b0a09080706050403020100"

    [[server]]                             # /1 instances
    short_server_id = 101
    lifetime = 86400
    binding = "U"

    [[object]]                             # anything else, typed by the model
    id = 21
    version = "1.0"                        # optional: the object version byte(s)
    [[object.instance]]
    id = 0
    resources = { 0 = { hex = "00112233" }, 1 = { hex = "01" }, 2 = { hex = "02" } }
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path as FsPath
from typing import Any

import click

from lwm2m.cli.files import read_toml
from lwm2m.client.config import ConfigError as ClientConfigError
from lwm2m.client.config import check_server_uri
from lwm2m.client.objects.security import SecurityMode
from lwm2m.errors import Lwm2mError
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectNode,
    Resource,
    ResourceInstance,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import ModelRegistry, default_registry
from lwm2m.secure.pcsc.bootstrap_file import Layout, build_bootstrap_file, parse_bootstrap_file

__all__ = ["DescriptionError", "nodes_from_description", "sc", "vse"]

_MODES = {"psk": 0, "rpk": 1, "certificate": 2, "x509": 2, "nosec": 3, "est": 4}


class DescriptionError(click.ClickException):
    """The TOML description is invalid; the message names the table and key."""


def _fail(where: str, message: str) -> DescriptionError:
    return DescriptionError(f"{where}: {message}")


def _tables(value: object, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _fail(where, f"an array of tables ([[{where}]]) is expected")
    return value


def _known(table: dict[str, Any], known: set[str], where: str) -> None:
    unknown = set(table) - known
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")


def _id(table: dict[str, Any], key: str, where: str, default: int | None, low: int = 0) -> int:
    """An object, instance or Short Server ID: an integer in ``low``..65534."""
    value = table.get(key, default)
    if type(value) is not int or not low <= value <= 65534:
        raise _fail(f"{where}.{key}", f"an integer in {low}..65534 is expected")
    return value


def _opaque(table: dict[str, Any], name: str, where: str) -> bytes | None:
    if f"{name}_hex" in table:
        value = table[f"{name}_hex"]
        if not isinstance(value, str):
            raise _fail(where, f"{name}_hex: a string of hex digits is expected")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise _fail(where, f"{name}_hex is not hexadecimal") from None
    if name in table:
        value = table[name]
        if not isinstance(value, str):
            raise _fail(where, f"{name}: a string is expected")
        return value.encode()
    return None


def _single(rid: int, type_: ResourceType, value: Any, where: str) -> SingleResource:
    """The resource, or a DescriptionError naming ``where`` (the model checks the type)."""
    try:
        return SingleResource(rid, type_, value)
    except Lwm2mError as exc:
        raise _fail(where, str(exc)) from None


def _security(index: int, table: dict[str, Any]) -> ObjectInstance:
    where = f"security[{index}]"
    known = {
        "instance",
        "uri",
        "bootstrap",
        "mode",
        "psk_identity",
        "psk_identity_hex",
        "psk_key",
        "psk_key_hex",
        "short_server_id",
        "client_hold_off",
        "bootstrap_account_timeout",
        "public_key_hex",
        "server_public_key_hex",
        "secret_key_hex",
    }
    _known(table, known, where)
    if "uri" not in table:
        raise _fail(where, "uri is required")
    mode_value = table.get("mode", "psk")
    mode = _MODES.get(mode_value.lower()) if isinstance(mode_value, str) else mode_value
    if type(mode) is not int or not 0 <= mode <= 4:
        raise _fail(where, f"mode {mode_value!r} is not psk, rpk, certificate, nosec, est or 0..4")
    bootstrap = table.get("bootstrap", False)
    if not isinstance(bootstrap, bool):
        raise _fail(f"{where}.bootstrap", "true or false is expected")
    identity = _opaque(table, "psk_identity", where) or _opaque(table, "public_key", where)
    secret = _opaque(table, "psk_key", where) or _opaque(table, "secret_key", where)
    if mode == 0 and (not identity or not secret):
        raise _fail(where, "PSK mode needs psk_identity(_hex) and psk_key(_hex)")
    try:  # the URI the client will read: checked as the client checks its own file
        check_server_uri(f"{where}.uri", table["uri"], SecurityMode(mode))
    except ClientConfigError as exc:
        raise DescriptionError(str(exc)) from None
    resources: list[Resource] = [
        _single(0, ResourceType.STRING, table["uri"], f"{where}.uri"),
        _single(1, ResourceType.BOOLEAN, bootstrap, f"{where}.bootstrap"),
        _single(2, ResourceType.INTEGER, mode, f"{where}.mode"),
        _single(3, ResourceType.OPAQUE, identity or b"", where),
        _single(4, ResourceType.OPAQUE, _opaque(table, "server_public_key", where) or b"", where),
        _single(5, ResourceType.OPAQUE, secret or b"", where),
    ]
    if "short_server_id" in table:
        ssid = _id(table, "short_server_id", where, None, low=1)
        resources.append(_single(10, ResourceType.INTEGER, ssid, f"{where}.short_server_id"))
    elif not bootstrap:
        raise _fail(where, "a DM server account (bootstrap = false) needs short_server_id")
    for key, rid in (("client_hold_off", 11), ("bootstrap_account_timeout", 12)):
        if key in table:
            resources.append(_single(rid, ResourceType.INTEGER, table[key], f"{where}.{key}"))
    return ObjectInstance(_id(table, "instance", where, index), resources)


def _server(index: int, table: dict[str, Any]) -> ObjectInstance:
    where = f"server[{index}]"
    fields = {
        "short_server_id": (0, ResourceType.INTEGER),
        "lifetime": (1, ResourceType.INTEGER),
        "default_min_period": (2, ResourceType.INTEGER),
        "default_max_period": (3, ResourceType.INTEGER),
        "disable_timeout": (5, ResourceType.INTEGER),
        "notification_storing": (6, ResourceType.BOOLEAN),
        "binding": (7, ResourceType.STRING),
    }
    _known(table, set(fields) | {"instance"}, where)
    if "short_server_id" not in table:
        raise _fail(where, "short_server_id is required")
    _id(table, "short_server_id", where, None, low=1)
    values = {"lifetime": 86400, "notification_storing": False, "binding": "U", **table}
    resources = [
        _single(rid, type_, values[name], f"{where}.{name}")
        for name, (rid, type_) in fields.items()
        if name in values
    ]
    return ObjectInstance(_id(table, "instance", where, index), resources)


def _typed(value: Any, type_: ResourceType, where: str) -> Any:
    if isinstance(value, dict):
        if set(value) != {"hex"}:
            raise _fail(where, 'a table value must be {hex = "..."}')
        if not isinstance(value["hex"], str):
            raise _fail(where, "hex value: a string of hex digits is expected")
        try:
            return bytes.fromhex(value["hex"])
        except ValueError:
            raise _fail(where, "hex value is not hexadecimal") from None
    if type_ is ResourceType.OPAQUE and isinstance(value, str):
        return value.encode()
    return value


def _number(key: object, where: str, what: str) -> int:
    text = str(key)
    if not text.isascii() or not text.isdigit():
        raise _fail(where, f"{what} {text!r} is not a number")
    return int(text)


def _generic(
    index: int, table: dict[str, Any], registry: ModelRegistry
) -> tuple[ObjectNode, str | None]:
    where = f"object[{index}]"
    _known(table, {"id", "version", "instance"}, where)
    if "id" not in table:
        raise _fail(where, "id is required")
    object_id = table["id"]
    if type(object_id) is not int:  # its range: the model knows which objects exist
        raise _fail(f"{where}.id", "an integer is expected")
    version = table.get("version")
    if version is not None and not isinstance(version, str):
        raise _fail(f"{where}.version", 'a string such as "1.1" is expected')
    definition = registry.get(object_id, version) if version else registry.get(object_id)
    if definition is None:
        raise _fail(where, f"object {object_id} version {version or 'latest'} is not in the model")
    instances = []
    for n, inst in enumerate(_tables(table.get("instance", []), f"{where}.instance")):
        at = f"{where}.instance[{n}]"
        _known(inst, {"id", "resources"}, at)
        values = inst.get("resources", {})
        if not isinstance(values, dict):
            raise _fail(f"{at}.resources", "a table of resource id = value is expected")
        resources: list[Resource] = []
        for key, value in values.items():
            rid = _number(key, at, "resource id")
            res = definition.resource(rid)
            if res is None:
                raise _fail(at, f"object {object_id} has no resource {rid}")
            if not res.multiple:
                resources.append(
                    _single(rid, res.type, _typed(value, res.type, f"{at}/{rid}"), f"{at}/{rid}")
                )
                continue
            items = (
                value.items()
                if isinstance(value, dict) and "hex" not in value
                else enumerate(value if isinstance(value, list) else [value])
            )
            members = []
            for i, item in items:
                riid = _number(i, f"{at}/{rid}", "resource instance id")
                try:
                    members.append(
                        ResourceInstance(
                            riid, res.type, _typed(item, res.type, f"{at}/{rid}/{riid}")
                        )
                    )
                except Lwm2mError as exc:
                    raise _fail(f"{at}/{rid}/{riid}", str(exc)) from None
            resources.append(MultipleResource(rid, res.type, members))
        instances.append(ObjectInstance(_id(inst, "id", at, n), resources))
    return ObjectNode(object_id, instances), (version or None)


def nodes_from_description(
    description: dict[str, Any], registry: ModelRegistry | None = None
) -> tuple[Layout, list[tuple[ObjectNode, str | None]]]:
    """The layout and the objects a TOML bootstrap description asks for (a DescriptionError
    names the table and key of a problem)."""
    registry = registry or default_registry()
    layout_text = str(description.get("layout", "1.1"))
    try:
        layout = Layout(layout_text)
    except ValueError:
        raise _fail("layout", f"{layout_text!r} is not 1.1 or 1.0") from None
    if layout is Layout.AUTO:
        raise _fail("layout", "choose 1.1 or 1.0")
    unknown = set(description) - {"layout", "security", "server", "object"}
    if unknown:
        raise _fail("description", f"unknown top-level keys {sorted(unknown)}")
    objects: list[tuple[ObjectNode, str | None]] = []
    try:
        tables = _tables(description.get("security", []), "security")
        security = [_security(i, t) for i, t in enumerate(tables)]
        if security:
            objects.append((ObjectNode(0, security), None))
        tables = _tables(description.get("server", []), "server")
        servers = [_server(i, t) for i, t in enumerate(tables)]
        if servers:
            objects.append((ObjectNode(1, servers), None))
        for i, table in enumerate(_tables(description.get("object", []), "object")):
            objects.append(_generic(i, table, registry))
    except Lwm2mError as exc:  # model checks of whole objects (e.g. an instance id twice)
        raise DescriptionError(str(exc)) from None
    if not objects:
        raise _fail("description", "no objects")
    return layout, objects


# -- commands ----------------------------------------------------------------------------------


@click.group()
def vse() -> None:
    """The virtual secure element (an emulated UICC on the vpcd reader of pcscd)."""


@vse.command("run")
@click.option(
    "--state",
    "state_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Personalisation file (created with defaults if missing).",
)
@click.option("--port", default=35963, show_default=True, help="vpcd port (35964: 2nd reader).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--ready-file", type=click.Path(dir_okay=False), help="Written once pcscd sees it.")
@click.option("--connect-timeout", default=10.0, show_default=True)
@click.option("-v", "--verbose", is_flag=True)
def vse_run(
    state_path: str,
    port: int,
    host: str,
    ready_file: str | None,
    connect_timeout: float,
    verbose: bool,
) -> None:
    """Serve the emulated card until pcscd goes away or SIGTERM."""
    from lwm2m.vse.server import VpcdUnreachable, run

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="vse: %(levelname)s %(message)s"
    )
    try:
        run(
            state_path=state_path,
            host=host,
            port=port,
            connect_timeout=connect_timeout,
            ready_file=ready_file,
        )
    except VpcdUnreachable as exc:  # one line, the reason included, not logged as well
        raise click.ClickException(str(exc)) from None
    except (ValueError, OSError) as exc:  # the state file: one line, the file untouched
        raise click.ClickException(_file_error(state_path, exc)) from None


@vse.command("init")
@click.option("--state", "state_path", required=True, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def vse_init(state_path: str, force: bool) -> None:
    """Write a fresh personalisation file (test keys: never for production)."""
    from lwm2m.vse.state import VseState, save_state

    if FsPath(state_path).exists() and not force:
        raise click.ClickException(f"{state_path} exists (use --force)")
    try:
        save_state(VseState.default(), state_path)
    except OSError as exc:
        raise click.ClickException(_file_error(state_path, exc)) from None
    click.echo(f"wrote {state_path}")


def _file_error(path: str, exc: Exception) -> str:
    """One line for a state or output file that cannot be used (ValueError from load_state
    already names the file)."""
    if isinstance(exc, OSError):
        return f"{path}: {exc.strerror or type(exc).__name__}"
    return str(exc)


@click.group()
def sc() -> None:
    """Smart-card tools: bootstrap files (LwM2M-TS-Core Appendix G) and identification."""


@sc.command("write-bootstrap")
@click.argument("description", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False),
    help="Write into this VSE personalisation file.",
)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write the raw file.")
@click.option(
    "--hex", "as_hex", is_flag=True, help="Print the file as hex (it holds the keys in clear)."
)
@click.option("--layout", type=click.Choice(["1.1", "1.0"]), help="Override the description.")
@click.option(
    "--require-secure-channel/--no-require-secure-channel",
    default=None,
    help="With --state: reading needs SCP03 level 33 (Appendix H).",
)
def sc_write_bootstrap(
    description: str,
    state_path: str | None,
    out_path: str | None,
    as_hex: bool,
    layout: str | None,
    require_secure_channel: bool | None,
) -> None:
    """Build EF LwM2M_Bootstrap from a TOML DESCRIPTION (into --out, --state, or printed with
    --hex: the file carries the Security objects' keys, so it is printed only when asked)."""
    parsed = read_toml(description)
    try:
        found_layout, objects = nodes_from_description(parsed)
        if layout is not None:
            found_layout = Layout(layout)
        data = build_bootstrap_file(objects, layout=found_layout)
        parse_bootstrap_file(data, layout=found_layout)  # what we write must read back
    except DescriptionError as exc:
        raise DescriptionError(f"{description}: {exc.message}") from None
    except (ValueError, Lwm2mError) as exc:
        raise DescriptionError(f"{description}: {exc}") from None
    if not (state_path or out_path or as_hex):  # checked after the description: its errors first
        raise click.UsageError(
            "say where the file goes: --out FILE, --state FILE, or --hex to print it "
            "(it holds the keys in clear)"
        )
    summary = f"{len(data)} bytes, layout {found_layout.value}, objects " + ", ".join(
        f"/{node.id} ({len(node.instances)} instances)" for node, _ in objects
    )
    if out_path:  # first: a bad --out must not leave the state file half-updated
        try:
            FsPath(out_path).write_bytes(data)
        except OSError as exc:
            raise click.ClickException(_file_error(out_path, exc)) from None
        click.echo(f"wrote {summary} to {out_path}", err=True)
    if state_path:
        from lwm2m.vse.state import load_state, save_state

        try:
            state = load_state(state_path)
            state.pkcs15.bootstrap = data.hex()
            if require_secure_channel is not None:
                state.pkcs15.require_secure_channel = require_secure_channel
            save_state(state, state_path)
        except (ValueError, OSError) as exc:
            raise click.ClickException(_file_error(state_path, exc)) from None
        click.echo(f"wrote {summary} to {state_path}", err=True)
    if as_hex:
        click.echo(data.hex().upper())


def _keys(values: tuple[str, ...], kvn: int) -> Any:
    from lwm2m.secure.pcsc.scp03 import StaticKeys

    if not values:
        return None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise click.ClickException("give --scp03-key once (ENC=MAC=DEK) or three times")
    try:
        return StaticKeys.from_hex(*values, kvn=kvn)
    except ValueError as exc:
        raise click.ClickException(f"SCP03 key: {exc}") from None


_reader_option = click.option(
    "--reader", default="0", show_default=True, help="Reader name, part of it, or index."
)


def _component(reader: str) -> Any:
    from lwm2m.secure.pcsc.component import PcscComponent

    selector = f"pcsc:?reader={reader}"
    return PcscComponent.open(selector, timeout=5.0)


@sc.command("read-bootstrap")
@_reader_option
@click.option(
    "--scp03-key",
    "scp03_keys",
    multiple=True,
    help="SCP03 key (hex), once for ENC=MAC=DEK or three times (Appendix H).",
)
@click.option("--kvn", default=0x30, show_default=True, help="SCP03 key version number.")
def sc_read_bootstrap(reader: str, scp03_keys: tuple[str, ...], kvn: int) -> None:
    """Read and decode EF LwM2M_Bootstrap from the card (values are not printed)."""
    keys = _keys(scp03_keys, kvn)
    with _component(reader) as component:
        result = component.read_bootstrap(scp03_keys=keys)
    out = {
        "aid": result.aid.hex().upper(),
        "file": result.file_path.hex().upper(),
        "size": result.size,
        "layout": result.data.layout.value,
        "secured": result.secured,
        "sha256": result.digest.hex(),
        "objects": [
            {"id": o.object_id, "version": o.version, "instances": list(o.node.instances)}
            for o in result.data
        ],
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


@sc.command("info")
@_reader_option
def sc_info(reader: str) -> None:
    """Print the card's identification data (ICCID, CPLC, IIN/CIN, key info) as JSON."""
    with _component(reader) as component:
        info = component.identification()
    json.dump(info.as_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
