"""LwM2M operations to and from CoAP messages (LwM2M-TS-Transport 1.1 §6, Tables 6.x).

One module holds both directions of every mapping, so the server's encoder and the client's
decoder cannot drift apart:

- :func:`encode_request` — an operation as a CoAP request (server side for downlink, client side
  for uplink).
- :func:`decode_downlink` — what a client makes of a request from a server or the bootstrap
  server. Malformed requests raise :class:`lwm2m.errors.RequestError` subclasses carrying the
  4.xx code to answer with.
- :func:`decode_uplink` — what a server makes of ``/bs``, ``/rd``, ``/rd/{id}`` and ``/dp``.
- :func:`encode_response` / :func:`decode_response` — the answer to an operation.

Mapping rules (Transport §6): GET with Accept link-format is Discover; GET with Observe 0/1 is
Observe / Cancel Observation; PUT without payload but with query is Write-Attributes; POST on an
object is Create, on an instance a partial-update Write, on a resource Execute; FETCH ``/`` is
Read-Composite (Observe-Composite with Observe 0); iPATCH ``/`` is Write-Composite; ``POST /bs``
from the bootstrap server is Bootstrap-Finish.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from lwm2m.coap.message import Message, encode_uint
from lwm2m.coap.numbers import Code, OptionNumber
from lwm2m.codec import codec_for, composite_codec_for
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Attributes, Link, decode_links, encode_links
from lwm2m.codec.senml import SenmlCodec
from lwm2m.codec.tlv import TlvCodec
from lwm2m.errors import (
    BadRequest,
    CodecError,
    Lwm2mError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    UnsupportedContentFormat,
)
from lwm2m.model.nodes import Node, ObjectInstance, ObjectNode
from lwm2m.model.path import Path, PathLevel
from lwm2m.model.registry import ObjectModel
from lwm2m.operations.requests import (
    BootstrapDelete,
    BootstrapDiscover,
    BootstrapFinish,
    BootstrapRead,
    BootstrapRequest,
    BootstrapWrite,
    CancelObservation,
    CancelObserveComposite,
    Create,
    Delete,
    Deregister,
    Discover,
    DownlinkRequest,
    Execute,
    Observe,
    ObserveComposite,
    Read,
    ReadComposite,
    Register,
    Send,
    Update,
    UplinkRequest,
    Write,
    WriteAttributes,
    WriteComposite,
)
from lwm2m.operations.responses import Response, content_response

__all__ = [
    "decode_downlink",
    "decode_response",
    "decode_uplink",
    "encode_request",
    "encode_response",
    "parse_query",
]

_LINK = int(ContentFormat.LINK)
_URI_PATH = int(OptionNumber.URI_PATH)
_ACCEPT = int(OptionNumber.ACCEPT)
_FORMATS: dict[int, ContentFormat] = {int(cf): cf for cf in ContentFormat}
"""Content-Format number -> member: a dict look-up instead of an Enum call (several times
dearer) on every request and response."""


# -- helpers ---------------------------------------------------------------------------------


def _path_segments(path: Path) -> list[str]:
    return [str(i) for i in path.ids]


_SEGMENT_BYTES = tuple((_URI_PATH, str(i).encode()) for i in range(1024))
"""The Uri-Path option of each small id, ready made (ids are mostly small)."""

_ACCEPT_OPTIONS = {int(cf): (_ACCEPT, encode_uint(cf)) for cf in ContentFormat}
"""The Accept option of each known content format, ready made."""

_GET = int(Code.GET)


def _get(path: Path, accept: int | None) -> Message:
    """``Message(Code.GET, uri_path=_path_segments(path), accept=accept)``, with the options
    list built directly (in option-number order, as ``Message.options`` requires: Uri-Path 11
    before Accept 17) rather than by the keyword conversions and the sort. Every message gets
    its own list; the tuples in it are immutable."""
    message = Message(_GET)
    options = [_SEGMENT_BYTES[i] if i < 1024 else (_URI_PATH, str(i).encode()) for i in path.ids]
    if accept is not None:
        option = _ACCEPT_OPTIONS.get(accept)
        options.append(option if option is not None else (_ACCEPT, encode_uint(accept)))
    message.options = options
    return message


def _path_of(message: Message) -> Path:
    segments = message.uri_path
    try:
        return Path.parse("/" + "/".join(segments))
    except Lwm2mError:
        raise NotFound(f"not an LwM2M path: /{'/'.join(segments)}") from None


def _format(number: int | None, default: ContentFormat | None = None) -> ContentFormat | None:
    if number is None:
        return default
    cf = _FORMATS.get(number)
    if cf is None:
        raise UnsupportedContentFormat(f"unsupported content format {number}")
    return cf


def _accept(number: int | None) -> ContentFormat | None:
    """The Accept option: a format this stack does not know is 4.06 Not Acceptable (RFC 7252
    §5.10.4; 4.15 is about a request's own payload)."""
    if number is None:
        return None
    cf = _FORMATS.get(number)
    if cf is None:
        raise NotAcceptable(f"content format {number} is not supported")
    return cf


def _required_format(message: Message) -> ContentFormat:
    cf = _format(message.content_format)
    if cf is None:
        raise BadRequest("the payload has no Content-Format")
    return cf


def parse_query(items: Sequence[str]) -> dict[str, str | None]:
    """``("ep=x", "Q")`` -> ``{"ep": "x", "Q": None}``; a repeated key is a 4.00."""
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise BadRequest(f"empty query parameter name in {item!r}")
        if key in out:
            raise BadRequest(f"query parameter {key!r} given twice")
        out[key] = value if sep else None
    return out


def _query(params: dict[str, str | None]) -> list[str]:
    return [key if value is None else f"{key}={value}" for key, value in params.items()]


def _int_param(params: dict[str, str | None], key: str) -> int | None:
    value = params.get(key)
    if key not in params:
        return None
    if value is None or not value.isascii() or not value.isdigit():
        raise BadRequest(f"{key}={value} is not a non-negative integer")
    return int(value)


# -- requests to messages -----------------------------------------------------------------------


def encode_request(request: DownlinkRequest | UplinkRequest, model: ObjectModel) -> Message:
    """The CoAP request of ``request`` (Message ID and token are left to the CoAP layer)."""
    if type(request) is Read:  # a server's most frequent request: no pattern matching
        return _get(request.path, request.accept)
    match request:
        case Read(path, accept) | BootstrapRead(path, accept):
            return Message(Code.GET, uri_path=_path_segments(path), accept=accept)
        case Discover(path) | BootstrapDiscover(path):
            return Message(Code.GET, uri_path=_path_segments(path), accept=_LINK)
        case Observe(path, accept):
            return Message(Code.GET, uri_path=_path_segments(path), accept=accept, observe=0)
        case CancelObservation(path, accept):
            return Message(Code.GET, uri_path=_path_segments(path), accept=accept, observe=1)
        case Write(path, node, _, cf) | BootstrapWrite(path, node, cf):
            replace = not isinstance(request, Write) or request.replace
            return Message(
                Code.PUT if replace else Code.POST,
                codec_for(cf).encode(node, path, model),
                uri_path=_path_segments(path),
                content_format=int(cf),
            )
        case WriteAttributes(path, attributes):
            return Message(
                Code.PUT, uri_path=_path_segments(path), uri_query=attributes.query_options()
            )
        case Execute(path, arguments):
            return Message(Code.POST, arguments.encode(), uri_path=_path_segments(path))
        case Create(path, instances, resources, cf):
            if resources is not None:
                # The client picks the instance id: resources without an instance wrapper are
                # encoded as the content of a placeholder instance path.
                node = ObjectInstance(0, resources)
                payload = codec_for(cf).encode(node, path.child(0), model)
            else:
                payload = codec_for(cf).encode(ObjectNode(path.ids[0], instances), path, model)
            return Message(
                Code.POST, payload, uri_path=_path_segments(path), content_format=int(cf)
            )
        case Delete(path) | BootstrapDelete(path):
            return Message(Code.DELETE, uri_path=_path_segments(path))
        case BootstrapFinish():
            return Message(Code.POST, uri_path=["bs"])
        case ReadComposite(paths, cf, accept):
            body = composite_codec_for(cf).encode_paths(paths)
            return Message(Code.FETCH, body, content_format=int(cf), accept=accept)
        case ObserveComposite(paths, cf, accept) | CancelObserveComposite(paths, cf, accept):
            body = composite_codec_for(cf).encode_paths(paths)
            observe = 0 if isinstance(request, ObserveComposite) else 1
            return Message(Code.FETCH, body, content_format=int(cf), accept=accept, observe=observe)
        case WriteComposite(nodes, cf):
            body = composite_codec_for(cf).encode_nodes(nodes, model)
            return Message(Code.IPATCH, body, content_format=int(cf))
        case BootstrapRequest(endpoint, pct):
            params: dict[str, str | None] = {"ep": endpoint}
            if pct is not None:
                params["pct"] = str(int(pct))
            return Message(Code.POST, uri_path=["bs"], uri_query=_query(params))
        case Register():
            params = {"ep": request.endpoint, "lt": str(request.lifetime)}
            params["lwm2m"] = request.lwm2m_version
            params["b"] = request.binding
            if request.sms_number is not None:
                params["sms"] = request.sms_number
            if request.queue_mode:
                params["Q"] = None
            params.update(request.additional)
            return Message(
                Code.POST,
                encode_links(request.objects),
                uri_path=["rd"],
                uri_query=_query(params),
                content_format=_LINK,
            )
        case Update():
            params = {}
            if request.lifetime is not None:
                params["lt"] = str(request.lifetime)
            if request.binding is not None:
                params["b"] = request.binding
            if request.sms_number is not None:
                params["sms"] = request.sms_number
            params.update(request.additional)
            payload = b"" if request.objects is None else encode_links(request.objects)
            return Message(
                Code.POST,
                payload,
                uri_path=request.location.strip("/").split("/"),
                uri_query=_query(params),
                content_format=_LINK if request.objects is not None else None,
            )
        case Deregister(location):
            return Message(Code.DELETE, uri_path=location.strip("/").split("/"))
        case Send(groups, cf):
            body = composite_codec_for(cf).encode_timestamped(groups, model)
            return Message(Code.POST, body, uri_path=["dp"], content_format=int(cf))
    raise TypeError(f"not an LwM2M request: {request!r}")  # pragma: no cover


# -- messages to requests (client side) --------------------------------------------------------


def decode_downlink(
    message: Message, model: ObjectModel, *, from_bootstrap_server: bool = False
) -> DownlinkRequest:
    """The operation a server's CoAP request stands for, as the client sees it.

    Raises a :class:`lwm2m.errors.RequestError` subclass carrying the code to answer with:
    4.00 for malformed requests and payloads, 4.04 for non-LwM2M paths, 4.05 for methods that
    mean nothing at that path, 4.15 for unknown content formats.
    """
    try:
        return _decode_downlink(message, model, from_bootstrap_server)
    except CodecError as exc:
        raise BadRequest(f"bad payload: {exc}") from None


def _decode_downlink(message: Message, model: ObjectModel, bootstrap: bool) -> DownlinkRequest:
    code = message.code
    segments = message.uri_path
    if bootstrap and code == Code.POST and segments == ("bs",):
        return BootstrapFinish()
    if code in (Code.FETCH, Code.IPATCH):
        if segments:
            raise MethodNotAllowed("composite operations address the root path")
        cf = _required_format(message)
        if code == Code.IPATCH:
            nodes = composite_codec_for(cf).decode_nodes(message.payload, model)
            return WriteComposite(nodes, cf)
        paths = tuple(composite_codec_for(cf).decode_paths(message.payload))
        accept = _accept(message.accept)
        match message.observe:
            case 0:
                return ObserveComposite(paths, cf, accept)
            case 1:
                return CancelObserveComposite(paths, cf, accept)
        return ReadComposite(paths, cf, accept)
    path = _path_of(message)
    match code:
        case Code.GET:
            if message.accept == _LINK:
                return BootstrapDiscover(path) if bootstrap else Discover(path)
            accept = _accept(message.accept)
            if bootstrap:
                return BootstrapRead(path, accept)
            match message.observe:
                case 0:
                    return Observe(path, accept)
                case 1:
                    return CancelObservation(path, accept)
            return Read(path, accept)
        case Code.PUT:
            if not message.payload and message.content_format is None:
                if bootstrap:
                    raise BadRequest("Bootstrap-Write without payload")
                return WriteAttributes(path, _attributes(message))
            if path.is_root:
                raise MethodNotAllowed("cannot write the root path")
            if path.level >= PathLevel.RESOURCE:
                _not_executable(path, model)
            cf = _required_format(message)
            codec = codec_for(cf)
            if (
                bootstrap
                and path.level <= PathLevel.OBJECT_INSTANCE
                and isinstance(codec, TlvCodec | SenmlCodec)
            ):
                # Core §6.1.7.4: optional resources the client does not support are ignored (a
                # newer minor object version only adds optional ones)
                node, _ = codec.decode_known(message.payload, path, model)
                return BootstrapWrite(path, node, cf)
            node = codec.decode(message.payload, path, model)
            return BootstrapWrite(path, node, cf) if bootstrap else Write(path, node, True, cf)
        case Code.POST:
            if bootstrap:
                raise MethodNotAllowed("the bootstrap server can only POST /bs")
            match path.level:
                case PathLevel.OBJECT:
                    return _create(message, path, model)
                case PathLevel.OBJECT_INSTANCE:
                    cf = _required_format(message)
                    node = codec_for(cf).decode(message.payload, path, model)
                    return Write(path, node, False, cf)
                case PathLevel.RESOURCE:
                    try:
                        arguments = message.payload.decode("utf-8")
                    except UnicodeDecodeError:
                        raise BadRequest("Execute arguments are not UTF-8 text") from None
                    return Execute(path, arguments)
            raise MethodNotAllowed(f"POST is not an operation on {path}")
        case Code.DELETE:
            if bootstrap:
                if path.level > PathLevel.OBJECT_INSTANCE:
                    raise BadRequest("Bootstrap-Delete addresses /, an object or an instance")
                return BootstrapDelete(path)
            if path.level is not PathLevel.OBJECT_INSTANCE:
                raise MethodNotAllowed("Delete addresses an object instance")
            return Delete(path)
    raise MethodNotAllowed(f"method {Code(code).dotted} is not an LwM2M operation")


def _not_executable(path: Path, model: ObjectModel) -> None:
    """A Write to an Execute resource is 4.05 (Core §7.3.2.2: the operation is not supported
    by the resource), decided before its payload, which cannot carry a value for it (4.00)."""
    assert path.object_id is not None
    assert path.resource_id is not None
    definition = model.object_definition(path.object_id)
    rdef = definition.resource(path.resource_id) if definition is not None else None
    if rdef is not None and rdef.operations.executable:
        raise MethodNotAllowed(f"{path} is an executable resource")


def _attributes(message: Message) -> Attributes:
    try:
        return Attributes.from_query(message.uri_query)
    except (Lwm2mError, ValueError) as exc:
        raise BadRequest(f"bad attributes: {exc}") from None


def _create(message: Message, path: Path, model: ObjectModel) -> Create:
    cf = _required_format(message)
    codec = codec_for(cf)
    try:
        node = codec.decode(message.payload, path, model)
    except CodecError as first:
        # No instance wrapper: the client chooses the id (decode as a placeholder instance).
        try:
            instance = codec.decode(message.payload, path.child(0), model)
        except CodecError:
            raise first from None
        assert isinstance(instance, ObjectInstance)
        return Create(path, (), tuple(instance.resources.values()), cf)
    assert isinstance(node, ObjectNode)
    return Create(path, tuple(node.instances.values()), None, cf)


# -- messages to requests (server side) --------------------------------------------------------


def decode_uplink(message: Message, model: ObjectModel | None = None) -> UplinkRequest:
    """The operation a client's CoAP request stands for, as a server sees it.

    ``model`` is needed only to decode a Send. Raises RequestError subclasses as
    :func:`decode_downlink` does.
    """
    segments = message.uri_path
    code = message.code
    if not segments:
        raise NotFound("no such resource")
    head = segments[0]
    if head == "bs" and len(segments) == 1:
        if code != Code.POST:
            raise MethodNotAllowed("Bootstrap-Request is a POST")
        params = parse_query(message.uri_query)
        endpoint = params.get("ep")
        if not endpoint:
            raise BadRequest("Bootstrap-Request without endpoint name (ep)")
        pct = _int_param(params, "pct")
        return BootstrapRequest(endpoint, _format(pct) if pct is not None else None)
    if head == "dp" and len(segments) == 1:
        if code != Code.POST:
            raise MethodNotAllowed("Send is a POST")
        if model is None:  # pragma: no cover - programming error
            raise TypeError("decoding a Send needs the client's model")
        cf = _required_format(message)
        try:
            groups = composite_codec_for(cf).decode_timestamped(message.payload, model)
        except CodecError as exc:
            raise BadRequest(f"bad Send payload: {exc}") from None
        return Send(tuple(groups), cf)
    if head == "rd":
        if len(segments) == 1:
            if code != Code.POST:
                raise MethodNotAllowed("Register is a POST")
            return _register(message)
        location = "/" + "/".join(segments)
        if code == Code.DELETE:
            return Deregister(location)
        if code == Code.POST:
            return _update(message, location)
        raise MethodNotAllowed("registration resources accept POST and DELETE")
    raise NotFound("no such resource")


def _links(message: Message) -> tuple[Link, ...]:
    if message.content_format not in (None, _LINK):
        raise UnsupportedContentFormat("object links must be application/link-format")
    try:
        return tuple(decode_links(message.payload))
    except (Lwm2mError, ValueError) as exc:
        raise BadRequest(f"bad object links: {exc}") from None


def _register(message: Message) -> Register:
    params = parse_query(message.uri_query)
    endpoint = params.pop("ep", None)
    if not endpoint:
        raise BadRequest("Register without endpoint name (ep)")
    lifetime = _int_param(params, "lt")
    params.pop("lt", None)
    version = params.pop("lwm2m", None) or "1.0"
    binding = params.pop("b", None) or "U"
    sms = params.pop("sms", None)
    queue = "Q" in params
    params.pop("Q", None)
    return Register(
        endpoint,
        86400 if lifetime is None else lifetime,
        version,
        binding,
        queue,
        sms,
        _links(message),
        params,
    )


def _update(message: Message, location: str) -> Update:
    params = parse_query(message.uri_query)
    lifetime = _int_param(params, "lt")
    params.pop("lt", None)
    binding = params.pop("b", None)
    sms = params.pop("sms", None)
    objects = _links(message) if message.payload else None
    return Update(location, lifetime, binding, sms, objects, params)


# -- responses ---------------------------------------------------------------------------------


def encode_response(
    request: DownlinkRequest | UplinkRequest, response: Response, model: ObjectModel
) -> Message:
    """The CoAP response (code, options, payload) for ``response`` to ``request``.

    The caller (the CoAP layer) sets type, Message ID, token and Observe.
    """
    message = Message(response.code)
    if not response.is_success:
        message.payload = response.diagnostic.encode()
        return message
    if response.location is not None:
        message.location_path = response.location
    cf = response.content_format
    if response.links is not None:
        message.payload = encode_links(response.links)
        message.content_format = _LINK
    elif response.composite is not None:
        fmt = cf if cf is not None else ContentFormat.SENML_CBOR
        message.payload = composite_codec_for(fmt).encode_nodes(response.composite, model)
        message.content_format = int(fmt)
    elif response.content is not None:
        path = _content_path(request)
        fmt = cf if cf is not None else ContentFormat.TLV
        message.payload = codec_for(fmt).encode(response.content, path, model)
        message.content_format = int(fmt)
    return message


def _content_path(request: DownlinkRequest | UplinkRequest) -> Path:
    if isinstance(request, Read | Observe | BootstrapRead | CancelObservation):
        return request.path
    raise TypeError(f"{type(request).__name__} responses carry no node")  # pragma: no cover


def decode_response(
    request: DownlinkRequest | UplinkRequest, message: Message, model: ObjectModel
) -> Response:
    """What ``message`` answers to ``request``; raises CodecError on a bad payload."""
    code = message.code
    if code >> 5 != 2:
        return Response(code, diagnostic=message.payload.decode("utf-8", "replace"))
    cf = message.content_format
    fmt = None
    if cf is not None:
        fmt = _FORMATS.get(cf)
        if fmt is None:
            raise CodecError(f"unsupported content format {cf}")
    elif type(request) in _ACCEPTING:
        # RFC 7252 §5.10.4: a 2.xx answer to an Accept is in the accepted format (a server that
        # cannot return it must answer 4.06), so the Accept names the format of a response
        # that leaves the Content-Format option out (lwm2m-node-lib's client does).
        fmt = request.accept  # type: ignore[union-attr]
    payload = message.payload
    # The usual answer first: a node for a Read / Observe / Bootstrap-Read. The exact-type test
    # spares the isinstance check on that hot path; the request classes are disjoint (slotted,
    # they cannot share a subclass), so the order of the branches does not matter.
    if payload and (
        type(request) in _NODE_REQUESTS or isinstance(request, Read | Observe | BootstrapRead)
    ):
        path = request.path  # type: ignore[union-attr]
        if fmt is None:
            raise CodecError("response without Content-Format (and no Accept)", path=str(path))
        try:
            node = codec_for(fmt).decode(payload, path, model)
        except CodecError:
            if type(request) is not Observe or fmt not in _SENML:
                raise
            return _historical(code, payload, fmt, model, (path,), composite=False)
        return content_response(code, node, fmt)
    if isinstance(request, Discover | BootstrapDiscover | Register):
        links = tuple(decode_links(payload)) if payload else ()
        location = message.location_path or None
        return Response(code, links=links, location=location, content_format=fmt)
    if isinstance(request, ReadComposite | ObserveComposite) and payload:
        if fmt is None:
            raise CodecError("composite response without Content-Format (and no Accept)")
        try:
            composite = composite_codec_for(fmt).decode_nodes(payload, model, paths=request.paths)
        except CodecError:
            if not isinstance(request, ObserveComposite) or fmt not in _SENML:
                raise
            return _historical(code, payload, fmt, model, request.paths, composite=True)
        if any(node is None for node in composite.values()):
            raise CodecError("composite response with a value-less record")
        return Response(code, composite=cast(dict[Path, "Node"], composite), content_format=fmt)
    return Response(code, location=message.location_path or None, content_format=fmt)


def _historical(
    code: int,
    payload: bytes,
    fmt: ContentFormat,
    model: ObjectModel,
    paths: tuple[Path, ...],
    *,
    composite: bool,
) -> Response:
    """A notification whose SenML records carry several times: historical values (Core §7.4,
    time-stamped records; a client stores notifications while the server is unreachable,
    /1/x/6). ``history`` keeps every group; ``content`` (``composite``) the newest values, the
    group without a time counting as "now" (RFC 8428 §4.5.3). Raises CodecError when even
    that reading fails (a relative time, which would need the reception time)."""
    codec = composite_codec_for(fmt)
    assert isinstance(codec, SenmlCodec)
    groups = codec.decode_timestamped(payload, model, paths=paths)
    if len(groups) < 2:
        raise CodecError("notification records do not fit the observation")
    newest = max(groups, key=lambda g: _INF if g.timestamp is None else g.timestamp).nodes
    if any(node is None for node in newest.values()):
        raise CodecError("notification with a value-less record")
    nodes: Mapping[Path, Node] = newest
    if composite:
        return Response(code, composite=nodes, content_format=fmt, history=tuple(groups))
    return Response(code, content=nodes.get(paths[0]), content_format=fmt, history=tuple(groups))


_SENML = frozenset({ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR})
_INF = float("inf")
_NODE_REQUESTS = frozenset({Read, Observe, BootstrapRead})
_ACCEPTING = frozenset({Read, Observe, BootstrapRead, ReadComposite, ObserveComposite})
