"""Fake LwM2M clients for the server tests.

- :class:`AiocoapDevice` — aiocoap (an independent CoAP implementation) acting as a registering
  LwM2M client: it sends Register / Update / De-register / Send from its server context's port
  and answers reads and observes of /3/0 and /3/0/9 there. Used by the ``interop`` tests.
- :class:`FakeClient` — a small LwM2M client on our own CoAP endpoint: an in-memory object tree
  served through :func:`lwm2m.operations.coap_mapping.decode_downlink` / ``encode_response``,
  for the request API tests (every operation, errors, queue mode) without a peer dependency.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import Any

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.codec import codec_for, composite_codec_for
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Link
from lwm2m.errors import RequestError
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest, Site
from lwm2m.model import ObjectInstance, ObjectNode, Path, ResourceType, SingleResource
from lwm2m.model.nodes import MultipleResource, Node
from lwm2m.model.registry import default_registry
from lwm2m.operations.coap_mapping import decode_downlink, encode_request, encode_response
from lwm2m.operations.requests import (
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
    Send,
    Update,
    Write,
    WriteAttributes,
    WriteComposite,
)
from lwm2m.operations.responses import Response

MODEL = default_registry()
STR, INT = ResourceType.STRING, ResourceType.INTEGER


def device_instance(battery: int = 87) -> ObjectInstance:
    return ObjectInstance(
        0,
        [
            SingleResource(0, STR, "ACME"),
            SingleResource(1, STR, "Model 1"),
            SingleResource(2, STR, "SN-0001"),
            MultipleResource.of(6, INT, {0: 1, 1: 5}),
            SingleResource(9, INT, battery),
            MultipleResource.of(11, INT, {0: 0}),
            SingleResource(16, STR, "U"),
        ],
    )


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def register_message(
    endpoint: str,
    *,
    lifetime: int = 300,
    version: str = "1.1",
    binding: str = "U",
    queue: bool = False,
    links: str = '</>;ct="60 110 112 11542",</1/0>,</3/0>,</3>;ver=1.1',
) -> Message:
    query = [f"ep={endpoint}", f"lt={lifetime}", f"lwm2m={version}", f"b={binding}"]
    if queue:
        query.append("Q")
    return Message(Code.POST, links.encode(), uri_path="/rd", uri_query=query, content_format=40)


# -- aiocoap ------------------------------------------------------------------------------------


def aiocoap_device_class() -> Any:
    """Build the aiocoap-based device class (aiocoap imported lazily: tests skip without it)."""
    import aiocoap
    import aiocoap.resource as resource

    class DeviceResource(resource.ObservableResource):  # type: ignore[misc]
        """/3/0 as TLV."""

        def __init__(self, device: Any) -> None:
            super().__init__()
            self.device = device

        async def render_get(self, request: Any) -> Any:
            node = device_instance(self.device.battery)
            payload = codec_for(ContentFormat.TLV).encode(node, Path(3, 0), MODEL)
            return aiocoap.Message(payload=payload, content_format=int(ContentFormat.TLV))

    class BatteryResource(resource.ObservableResource):  # type: ignore[misc]
        """/3/0/9 as text."""

        def __init__(self, device: Any) -> None:
            super().__init__()
            self.device = device

        async def render_get(self, request: Any) -> Any:
            return aiocoap.Message(payload=str(self.device.battery).encode(), content_format=0)

    class AiocoapDevice:
        def __init__(self, name: str) -> None:
            self.name = name
            self.battery = 87
            self.location: str | None = None
            self.context: Any = None
            self.port = 0
            self.battery_resource = BatteryResource(self)

        async def start(self) -> None:
            site = resource.Site()
            site.add_resource(["3", "0"], DeviceResource(self))
            site.add_resource(["3", "0", "9"], self.battery_resource)
            self.port = free_udp_port()
            self.context = await aiocoap.Context.create_server_context(
                site, bind=("127.0.0.1", self.port), transports=["udp6"]
            )

        async def stop(self) -> None:
            if self.context is not None:
                await self.context.shutdown()

        def set_battery(self, level: int) -> None:
            self.battery = level
            self.battery_resource.updated_state()

        async def call(
            self,
            server: tuple[str, int],
            code: Any,
            path: str,
            query: str = "",
            payload: bytes = b"",
            content_format: int | None = None,
        ) -> Any:
            uri = f"coap://{server[0]}:{server[1]}{path}" + (f"?{query}" if query else "")
            message = aiocoap.Message(code=code, uri=uri, payload=payload)
            if content_format is not None:
                message.opt.content_format = content_format
            return await self.context.request(message).response

        async def register(
            self,
            server: tuple[str, int],
            *,
            query: str | None = None,
            links: bytes = b'</>;ct="60 110 112 11542",</1/0>,</3/0>,</3>;ver=1.1',
        ) -> Any:
            query = query or f"ep={self.name}&lt=300&lwm2m=1.1&b=U"
            response = await self.call(server, aiocoap.POST, "/rd", query, links, 40)
            if response.code == aiocoap.CREATED:
                self.location = "/" + "/".join(response.opt.location_path)
            return response

        async def update(self, server: tuple[str, int], query: str = "") -> Any:
            assert self.location is not None
            return await self.call(server, aiocoap.POST, self.location, query)

        async def deregister(self, server: tuple[str, int]) -> Any:
            assert self.location is not None
            return await self.call(server, aiocoap.DELETE, self.location)

        async def send(self, server: tuple[str, int], groups: list[TimestampedNodes]) -> Any:
            codec = composite_codec_for(ContentFormat.SENML_JSON)
            payload = codec.encode_timestamped(groups, MODEL)
            return await self.call(
                server, aiocoap.POST, "/dp", "", payload, int(ContentFormat.SENML_JSON)
            )

    return AiocoapDevice


# -- our own endpoint as a minimal LwM2M client -------------------------------------------------


class FakeClient:
    """A minimal LwM2M client: an object tree answering the server's requests.

    ``errors`` maps an operation class to the error code it is answered with; ``mute`` makes
    the client drop requests (never answer). Every request received lands in ``received``.
    """

    def __init__(self, name: str, *, model: Any = MODEL) -> None:
        self.name = name
        self.model = model
        self.objects: dict[int, dict[int, ObjectInstance]] = {
            1: {0: ObjectInstance(0, [SingleResource(0, INT, 1), SingleResource(1, INT, 300)])},
            3: {0: device_instance()},
        }
        self.received: list[DownlinkRequest] = []
        self.errors: dict[type, int] = {}
        self.endpoint: CoapEndpoint | None = None
        self.location: str | None = None
        self.observers: dict[bytes, DownlinkRequest] = {}
        self.request_seen = asyncio.Event()

    async def start(self) -> None:
        site = Site()
        site.add("/", self.handle)
        self.endpoint = await CoapEndpoint.create(site=site)

    async def stop(self) -> None:
        if self.endpoint is not None:
            await self.endpoint.close()

    @property
    def address(self) -> tuple[str, int]:
        assert self.endpoint is not None
        host, port = self.endpoint.local_address[:2]
        return host, port

    # -- uplink ---------------------------------------------------------------------------------

    async def uplink(self, server: tuple[str, int], message: Message) -> Message:
        assert self.endpoint is not None
        return await self.endpoint.request(message, server)

    async def register(self, server: tuple[str, int], **kwargs: Any) -> Message:
        response = await self.uplink(server, register_message(self.name, **kwargs))
        if response.code == Code.CREATED:
            self.location = "/" + "/".join(response.location_path)
        return response

    async def update(self, server: tuple[str, int], **kwargs: Any) -> Message:
        assert self.location is not None
        return await self.uplink(server, encode_request(Update(self.location, **kwargs), MODEL))

    async def deregister(self, server: tuple[str, int]) -> Message:
        assert self.location is not None
        return await self.uplink(server, encode_request(Deregister(self.location), MODEL))

    async def send(
        self, server: tuple[str, int], nodes: Mapping[Path, Node], timestamp: float | None = None
    ) -> Message:
        request = Send((TimestampedNodes(timestamp, nodes),), ContentFormat.SENML_CBOR)
        return await self.uplink(server, encode_request(request, self.model))

    # -- downlink -------------------------------------------------------------------------------

    def node(self, path: Path) -> Node | None:
        ids = path.ids
        instances = self.objects.get(ids[0]) if ids else None
        if instances is None:
            return None
        if len(ids) == 1:
            return ObjectNode(ids[0], list(instances.values()))
        instance = instances.get(ids[1])
        if instance is None or len(ids) == 2:
            return instance
        resource = instance.resources.get(ids[2])
        if resource is None or len(ids) == 3:
            return resource
        if isinstance(resource, MultipleResource):
            return resource.instances.get(ids[3])
        return None

    def set_resource(self, path: Path, value: Any) -> None:
        o, i, r = path.ids
        instance = self.objects[o][i]
        old = instance.resources.get(r)
        if old is None:
            definition = self.model.get(o).resource(r)
            type_ = definition.type
        else:
            type_ = old.type
        resources = dict(instance.resources)
        resources[r] = SingleResource(r, type_, value)
        self.objects[o][i] = ObjectInstance(i, resources)

    def notify(self, path: Path) -> int:
        """Send the current value of ``path`` to its observers."""
        assert self.endpoint is not None
        node = self.node(path)
        assert node is not None
        sent = 0
        for observation in self.endpoint.observations():
            request = self.observers.get(observation.token)
            if isinstance(request, Observe) and request.path == path:
                response = Response(Code.CONTENT, content=node, content_format=request.accept)
                self.endpoint.notify_observation(
                    observation, encode_response(request, response, self.model)
                )
                sent += 1
            elif isinstance(request, ObserveComposite) and path in request.paths:
                composite = {p: n for p in request.paths if (n := self.node(p)) is not None}
                response = Response(
                    Code.CONTENT, composite=composite, content_format=request.accept
                )
                self.endpoint.notify_observation(
                    observation, encode_response(request, response, self.model)
                )
                sent += 1
        return sent

    def handle(self, request: CoapRequest) -> Message:
        try:
            operation = decode_downlink(request.message, self.model)
        except RequestError as exc:
            return Message(exc.code)
        self.received.append(operation)
        self.request_seen.set()
        code = self.errors.get(type(operation))
        if code is not None:
            return Message(code, b"forced error")
        response = self.answer(operation)
        message = encode_response(operation, response, self.model)
        if isinstance(operation, Observe | ObserveComposite) and response.is_success:
            message.observe = 0
            self.observers[request.message.token] = operation
        return message

    def answer(self, operation: DownlinkRequest) -> Response:
        match operation:
            case Read(path, accept) | Observe(path, accept) | CancelObservation(path, accept):
                node = self.node(path)
                if node is None:
                    return Response(Code.NOT_FOUND)
                return Response(Code.CONTENT, content=node, content_format=accept)
            case ReadComposite(paths, _, accept) | ObserveComposite(paths, _, accept):
                composite = {p: n for p in paths if (n := self.node(p)) is not None}
                return Response(Code.CONTENT, composite=composite, content_format=accept)
            case CancelObserveComposite(paths, _, accept):
                composite = {p: n for p in paths if (n := self.node(p)) is not None}
                return Response(Code.CONTENT, composite=composite, content_format=accept)
            case Discover(path):
                links = (Link(str(path), {"dim": 1} if len(path.ids) == 3 else {}),)
                return Response(Code.CONTENT, links=links)
            case Write(path, node, _, _):
                if isinstance(node, SingleResource):
                    self.set_resource(path, node.value)
                return Response(Code.CHANGED)
            case WriteComposite(nodes, _):
                for path, node in nodes.items():
                    if isinstance(node, SingleResource):
                        self.set_resource(path, node.value)
                return Response(Code.CHANGED)
            case WriteAttributes():
                return Response(Code.CHANGED)
            case Execute():
                return Response(Code.CHANGED)
            case Create(path, instances, resources, _):
                mine = self.objects.setdefault(path.ids[0], {})
                if resources is not None:
                    new_id = max(mine, default=-1) + 1
                    mine[new_id] = ObjectInstance(new_id, resources)
                    return Response(Code.CREATED, location=(str(path.ids[0]), str(new_id)))
                for instance in instances:
                    mine[instance.id] = instance
                return Response(Code.CREATED)
            case Delete(path):
                removed = self.objects.get(path.ids[0], {}).pop(path.ids[1], None)
                return Response(Code.DELETED if removed is not None else Code.NOT_FOUND)
        return Response(Code.METHOD_NOT_ALLOWED)


__all__ = [
    "MODEL",
    "FakeClient",
    "aiocoap_device_class",
    "device_instance",
    "free_udp_port",
    "register_message",
]
