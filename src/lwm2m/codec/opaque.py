"""Opaque (CoAP Content-Format 42, application/octet-stream): the raw bytes of one Opaque
resource or resource instance (LwM2M-TS-Core §7.4.2).

Firmware packages (/5/0/0) and other binary resources travel this way; any other type is refused.
"""

from __future__ import annotations

from lwm2m.codec._common import fail
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.text import _single_definition, _single_node, _single_value
from lwm2m.model.nodes import Node
from lwm2m.model.path import Path
from lwm2m.model.registry import ObjectModel
from lwm2m.model.values import ResourceType

__all__ = ["OpaqueCodec"]


class OpaqueCodec:
    """Opaque (CF 42) for a single Opaque resource or resource instance."""

    content_format = ContentFormat.OPAQUE

    def encode(self, node: Node, path: Path, model: ObjectModel) -> bytes:
        type_, value = _single_value(node, path, model, "opaque")
        if type_ is not ResourceType.OPAQUE:
            fail(path, f"opaque format carries only Opaque resources, not {type_.value}")
        assert isinstance(value, bytes)
        return value

    def decode(self, data: bytes, path: Path, model: ObjectModel) -> Node:
        definition = _single_definition(path, model, "opaque")
        if definition.type is not ResourceType.OPAQUE:
            fail(path, f"opaque format carries only Opaque resources, not {definition.type.value}")
        return _single_node(path, ResourceType.OPAQUE, bytes(data))
