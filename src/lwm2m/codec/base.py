"""The codec seam: a node codec per content format, plus composite operations for SenML.

Two levels, as in LwM2M-TS-Core §7.4: raw framing (TLV records, SenML records, CBOR items)
knows nothing of the model; the mapping level takes the request ``path`` and an
:class:`~lwm2m.model.registry.ObjectModel` and builds typed nodes. Which node a payload holds
follows from the path: an object path holds an :class:`ObjectNode`, an instance path an
:class:`ObjectInstance`, a resource path a single or multiple resource (as the model says), a
resource-instance path a :class:`ResourceInstance`.

Decoders of untrusted bytes raise only :class:`lwm2m.errors.CodecError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from lwm2m.codec.content_format import ContentFormat
from lwm2m.model.nodes import Node
from lwm2m.model.path import Path
from lwm2m.model.registry import ObjectModel

__all__ = ["CompositeCodec", "NodeCodec", "TimestampedNodes"]


class NodeCodec(Protocol):
    """Encode and decode the node found at one path."""

    content_format: ContentFormat

    def encode(self, node: Node, path: Path, model: ObjectModel) -> bytes:
        """Encode ``node``, the content of ``path``.

        Raises CodecError when the format cannot carry this node kind or a value does not match
        its resource definition.
        """
        ...

    def decode(self, data: bytes, path: Path, model: ObjectModel) -> Node:
        """Decode ``data`` as the content of ``path``; raises only CodecError."""
        ...


@dataclass(frozen=True, slots=True)
class TimestampedNodes:
    """Nodes sharing one timestamp (Send, historical notifications; SenML ``bt``+``t``).

    ``timestamp`` is absolute Unix seconds, or None for records without time.
    """

    timestamp: float | None
    nodes: Mapping[Path, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimestampedNodes):
            return NotImplemented
        return self.timestamp == other.timestamp and dict(self.nodes) == dict(other.nodes)

    def __hash__(self) -> int:
        return hash((self.timestamp, tuple(sorted(self.nodes.items(), key=lambda kv: kv[0]))))


@runtime_checkable
class CompositeCodec(Protocol):
    """The composite operations of LwM2M 1.1 (SenML JSON and SenML CBOR only).

    - Read-Composite / Observe-Composite request bodies: a list of paths.
    - Read-Composite responses and Write-Composite requests: a path -> node map. A path in a
      Write-Composite may address a resource or a resource instance; a record without value
      decodes to None (LwM2M-TS-Core §6.3.8: delete that resource instance).
    - Send and historical notifications: time-stamped groups of nodes.
    """

    content_format: ContentFormat

    def encode_paths(self, paths: Sequence[Path]) -> bytes: ...

    def decode_paths(self, data: bytes) -> list[Path]: ...

    def encode_nodes(self, nodes: Mapping[Path, Node | None], model: ObjectModel) -> bytes: ...

    def decode_nodes(
        self, data: bytes, model: ObjectModel, *, paths: Sequence[Path] | None = None
    ) -> dict[Path, Node | None]:
        """Without ``paths`` each value is its own node (Write-Composite); with the paths of a
        Read-Composite request, each requested path maps to the node of the values below it."""
        ...

    def encode_timestamped(
        self, groups: Sequence[TimestampedNodes], model: ObjectModel
    ) -> bytes: ...

    def decode_timestamped(self, data: bytes, model: ObjectModel) -> list[TimestampedNodes]: ...
