"""The answer to an LwM2M operation (LwM2M-TS-Core §6, response codes per operation)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Link
from lwm2m.model.nodes import Node
from lwm2m.model.path import Path

__all__ = ["Response"]


@dataclass(frozen=True, slots=True, init=False)
class Response:
    """A response: its CoAP code and, by operation, the content it carries.

    - ``content``: the node of a Read, Observe (and each notification) or Bootstrap-Read;
    - ``composite``: path -> node of a Read-Composite or Observe-Composite;
    - ``links``: the link list of a Discover, Bootstrap-Discover (or a Register's objects);
    - ``location``: Location-Path of a Register (``("rd", "x")``) or a Create (``("3303", "1")``);
    - ``diagnostic``: the text of an error response, if any;
    - ``history``: the time-stamped groups of a notification whose SenML records carry several
      times (historical values, e.g. stored while the server was unreachable, /1/x/6), oldest
      first as sent; ``content`` / ``composite`` then hold the newest group's values.
    """

    code: int
    content: Node | None = None
    composite: Mapping[Path, Node] | None = None
    links: tuple[Link, ...] | None = None
    location: tuple[str, ...] | None = None
    content_format: ContentFormat | None = None
    diagnostic: str = ""
    history: tuple[TimestampedNodes, ...] | None = None

    def __init__(
        self,
        code: int,
        content: Node | None = None,
        composite: Mapping[Path, Node] | None = None,
        links: tuple[Link, ...] | None = None,
        location: tuple[str, ...] | None = None,
        content_format: ContentFormat | None = None,
        diagnostic: str = "",
        history: tuple[TimestampedNodes, ...] | None = None,
    ) -> None:
        # Hand-written rather than the dataclass __init__ (object.__setattr__ per field, then a
        # __post_init__): the slot setters cost a fraction of that, and a server builds one
        # Response per request. The containers are copied, so a caller's dict or list cannot
        # change the frozen response afterwards.
        _CODE(self, code)
        _CONTENT(self, content)
        _COMPOSITE(self, None if composite is None else MappingProxyType(dict(composite)))
        _LINKS(self, None if links is None else tuple(links))
        _LOCATION(self, None if location is None else tuple(location))
        _CONTENT_FORMAT(self, content_format)
        _DIAGNOSTIC(self, diagnostic)
        _HISTORY(self, None if history is None else tuple(history))

    @property
    def is_success(self) -> bool:
        return self.code >> 5 == 2

    @property
    def dotted_code(self) -> str:
        return f"{self.code >> 5}.{self.code & 0x1F:02d}"


_Setter = Callable[[object, object], None]


def _setter(name: str) -> _Setter:
    setter: _Setter = vars(Response)[name].__set__
    return setter


_CODE, _CONTENT, _COMPOSITE, _LINKS, _LOCATION, _CONTENT_FORMAT, _DIAGNOSTIC, _HISTORY = (
    _setter(f.name) for f in fields(Response)
)


def _builder() -> type:
    """A plain slots class with the layout of :class:`Response` (see :func:`content_response`);
    the probe makes a layout change fail at import."""
    names = tuple(f.name for f in fields(Response))
    builder = type("_ResponseBuilder", (), {"__slots__": names, "__module__": __name__})
    probe = builder()
    for name in names:
        setattr(probe, name, None)
    probe.__class__ = Response  # TypeError here if the layouts ever diverge
    return builder


_ResponseBuilder = _builder()


def content_response(code: int, content: Node, content_format: ContentFormat | None) -> Response:
    """``Response(code, content=content, content_format=content_format)``, built for the hot
    path of a server's Read: the fields are stored on an instance of a class with the same slot
    layout, which then becomes a genuine Response by ``__class__`` assignment (as the trusted
    node constructors of :mod:`lwm2m.model.nodes` do) -- a quarter of the constructor's cost.
    Internal to the lwm2m package."""
    response = _ResponseBuilder()
    response.code = code
    response.content = content
    response.composite = None
    response.links = None
    response.location = None
    response.content_format = content_format
    response.diagnostic = ""
    response.history = None
    response.__class__ = Response
    return response  # type: ignore[no-any-return]
