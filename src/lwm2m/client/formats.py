"""Content-format negotiation of the client (LwM2M-TS-Core 1.1 §7.4 "Data Formats",
Transport §6.x Accept / Content-Format).

Supported formats: text/plain (0), opaque (42), CBOR (60), SenML JSON (110), SenML CBOR (112),
LwM2M TLV (11542) and the legacy OMA JSON (11543). LwM2M CBOR (11544) is LwM2M 1.2 and is not
offered.

Defaults when the server sends no Accept (a project decision, see docs/design.md):

- one value (a single resource or a resource instance): **text/plain**, or **opaque** for
  Opaque resources — every 1.0 and 1.1 server understands them;
- several values (object, object instance, multiple resource): **TLV**, the one multi-value
  format every 1.0 and 1.1 server supports;
- Read-Composite / Observe-Composite: the request's own format (SenML JSON or CBOR);
- Send: **SenML CBOR**.

An Accept the client does not support, or one that cannot carry the node (text/plain, CBOR or
opaque for several values), is a 4.06 Not Acceptable.
"""

from __future__ import annotations

from dataclasses import dataclass

from lwm2m.codec.content_format import ContentFormat
from lwm2m.errors import NotAcceptable
from lwm2m.model.nodes import Node, ResourceInstance, SingleResource
from lwm2m.model.values import ResourceType

__all__ = ["COMPOSITE_FORMATS", "SUPPORTED_FORMATS", "FormatPolicy"]

SUPPORTED_FORMATS: tuple[ContentFormat, ...] = (
    ContentFormat.TEXT,
    ContentFormat.OPAQUE,
    ContentFormat.CBOR,
    ContentFormat.SENML_JSON,
    ContentFormat.SENML_CBOR,
    ContentFormat.TLV,
    ContentFormat.JSON,
)
COMPOSITE_FORMATS = (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR)
_SINGLE_ONLY = (ContentFormat.TEXT, ContentFormat.CBOR, ContentFormat.OPAQUE)


@dataclass(frozen=True, slots=True)
class FormatPolicy:
    """Which content format the client answers with."""

    single: ContentFormat = ContentFormat.TEXT
    """Default for one non-opaque value."""
    multiple: ContentFormat = ContentFormat.TLV
    """Default for several values."""
    composite: ContentFormat = ContentFormat.SENML_CBOR
    """Default for composite responses when the request format is not a composite one."""
    send: ContentFormat = ContentFormat.SENML_CBOR
    """Format of Send (``POST /dp``)."""
    supported: tuple[ContentFormat, ...] = SUPPORTED_FORMATS
    """Formats accepted in Accept and advertised in the Register ``ct`` attribute."""

    def for_node(self, node: Node, accept: int | None) -> ContentFormat:
        """The format of a Read/Observe response carrying ``node``."""
        one_value = isinstance(node, SingleResource | ResourceInstance)
        opaque = one_value and node.type is ResourceType.OPAQUE  # type: ignore[union-attr]
        if accept is None:
            if not one_value:
                return self.multiple
            if opaque and self.single is ContentFormat.TEXT:
                return ContentFormat.OPAQUE
            return self.single
        if accept not in self.supported:
            raise NotAcceptable(f"content format {accept} is not supported")
        cf = ContentFormat(accept)
        if cf in _SINGLE_ONLY and not one_value:
            raise NotAcceptable(f"{cf.short_name} carries one value only")
        if cf is ContentFormat.OPAQUE and not opaque:
            raise NotAcceptable("application/octet-stream carries Opaque values only")
        return cf

    def for_composite(self, accept: int | None, request_format: int) -> ContentFormat:
        """The format of a Read-Composite / Observe-Composite response."""
        if accept is None:
            if request_format in COMPOSITE_FORMATS:
                return ContentFormat(request_format)
            return self.composite
        if accept not in COMPOSITE_FORMATS or accept not in self.supported:
            raise NotAcceptable(f"content format {accept} cannot carry a composite response")
        return ContentFormat(accept)

    def content_formats_attribute(self) -> str:
        """The ``ct`` value of the Register ``</>`` link: the supported formats, space separated."""
        return " ".join(str(int(cf)) for cf in sorted(self.supported))
