"""``lwm2m demo`` — until the LwM2M engine lands: the object model and every content format.

It loads the bundled definitions, builds a Device object instance (/3/0), encodes it in every
content format that can carry it, decodes each payload back and checks the round trip.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from lwm2m.cli.main import _definition_table
from lwm2m.codec import ContentFormat, codec_for, composite_codec_for
from lwm2m.errors import CodecError
from lwm2m.model import MultipleResource, ObjectInstance, Path, ResourceType, SingleResource
from lwm2m.model.registry import default_registry

__all__ = ["device_instance", "run_demo"]


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


def run_demo(console: Console) -> None:
    registry = default_registry()
    console.rule("[bold]lwm2m demo — object model")
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
