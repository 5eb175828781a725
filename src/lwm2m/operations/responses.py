"""The answer to an LwM2M operation (LwM2M-TS-Core §6, response codes per operation)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Link
from lwm2m.model.nodes import Node
from lwm2m.model.path import Path

__all__ = ["Response"]


@dataclass(frozen=True, slots=True)
class Response:
    """A response: its CoAP code and, by operation, the content it carries.

    - ``content``: the node of a Read, Observe (and each notification) or Bootstrap-Read;
    - ``composite``: path -> node of a Read-Composite or Observe-Composite;
    - ``links``: the link list of a Discover, Bootstrap-Discover (or a Register's objects);
    - ``location``: Location-Path of a Register (``("rd", "x")``) or a Create (``("3303", "1")``);
    - ``diagnostic``: the text of an error response, if any.
    """

    code: int
    content: Node | None = None
    composite: Mapping[Path, Node] | None = None
    links: tuple[Link, ...] | None = None
    location: tuple[str, ...] | None = None
    content_format: ContentFormat | None = None
    diagnostic: str = ""

    def __post_init__(self) -> None:
        if self.composite is not None:
            object.__setattr__(self, "composite", MappingProxyType(dict(self.composite)))
        if self.links is not None:
            object.__setattr__(self, "links", tuple(self.links))
        if self.location is not None:
            object.__setattr__(self, "location", tuple(self.location))

    @property
    def is_success(self) -> bool:
        return self.code >> 5 == 2

    @property
    def dotted_code(self) -> str:
        return f"{self.code >> 5}.{self.code & 0x1F:02d}"
