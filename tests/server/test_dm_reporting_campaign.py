"""Spec-conformance campaign, server side of Device Management (Core §6.3) and Information
Reporting (Core §6.4): the CoAP requests the server builds and what it makes of the answers.

Rules are cited as "Core §x" (OMA-TS-LightweightM2M_Core-V1_1_1), "Transport §x"
(OMA-TS-LightweightM2M_Transport-V1_1_1), RFC numbers, and "ref §x" for
``/work/shared/reference/spec-reference.md``. The peer is :class:`RawClient`, a UDP socket on
loopback speaking CoAP message by message, so every option, type and payload of the server's
requests is visible and every answer is chosen by the test. Each exchange is bounded by
``asyncio.timeout``; nothing sleeps. Known deviations are ``xfail(strict=True)`` naming the rule.

Observe / notifications are in ``test_dm_reporting_campaign_2.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from lwm2m.coap.message import Message, decode
from lwm2m.coap.numbers import Code, MessageType
from lwm2m.codec import codec_for, composite_codec_for
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Attributes
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.model import ObjectInstance, Path, ResourceType, SingleResource
from lwm2m.model.nodes import MultipleResource
from lwm2m.operations.responses import Response
from lwm2m.server.errors import ErrorResponse, InvalidResponse

from .devices import MODEL, device_instance, register_message

TIMEOUT = 5
INT, STR = ResourceType.INTEGER, ResourceType.STRING
ALL_FORMATS = '</>;ct="60 110 112 11542",</1/0>,</2>,</3/0>,</3>;ver=1.1,</5/0>'


# -- a CoAP peer driven message by message -------------------------------------------------------


class RawClient(asyncio.DatagramProtocol):
    """A UDP socket speaking CoAP one message at a time.

    Requests from the server queue up in :meth:`next_request`; :meth:`answer` sends a
    piggybacked response (ACK, same Message ID and token, RFC 7252 §5.2.1). ACK / RST messages
    from the server complete the waiters of :meth:`call` / :meth:`send_and_wait` by Message ID.
    """

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.requests: asyncio.Queue[Message] = asyncio.Queue()
        self.replies: dict[int, asyncio.Future[Message]] = {}
        self.stray: list[Message] = []
        self.server: tuple[str, int] = ("127.0.0.1", 0)
        self.location: tuple[str, ...] = ()
        self._mid = 0x2000
        self._token = 0

    async def start(self, server: tuple[str, int]) -> None:
        self.server = server
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0)
        )
        self.transport = transport

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = decode(data)
        if message.mtype in (MessageType.ACK, MessageType.RST):
            waiter = self.replies.pop(message.mid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
            else:
                self.stray.append(message)
        elif message.is_request():
            self.requests.put_nowait(message)
        else:
            self.stray.append(message)

    def next_mid(self) -> int:
        self._mid = (self._mid + 1) & 0xFFFF
        return self._mid

    def send(self, message: Message) -> None:
        assert self.transport is not None
        self.transport.sendto(message.encode(), self.server)

    async def send_and_wait(self, message: Message) -> Message:
        """Send a CON message and return the server's ACK or RST for it."""
        message.mtype = MessageType.CON
        message.mid = self.next_mid()
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.replies[message.mid] = waiter
        self.send(message)
        return await waiter

    async def call(self, request: Message) -> Message:
        self._token += 1
        request.token = self._token.to_bytes(2, "big")
        return await self.send_and_wait(request)

    async def register(self, name: str = "raw", **kwargs: Any) -> Message:
        answer = await self.call(register_message(name, **kwargs))
        assert answer.code == Code.CREATED, answer
        self.location = answer.location_path
        return answer

    async def next_request(self) -> Message:
        return await self.requests.get()

    def answer(self, request: Message, response: Message) -> None:
        response.mtype = MessageType.ACK
        response.mid = request.mid
        response.token = request.token
        self.send(response)


Reply = Message | Callable[[Message], Message]


async def exchange(
    raw: RawClient, operation: Awaitable[Any], reply: Reply
) -> tuple[Message, asyncio.Future[Any]]:
    """Start ``operation``, answer the request it sends with ``reply``; return the request and
    the finished operation (await it for the result or the error)."""
    task = asyncio.ensure_future(operation)
    request = await raw.next_request()
    raw.answer(request, reply(request) if callable(reply) else reply)
    await asyncio.wait([task])
    return request, task


def tlv(node: Any, path: Path) -> Message:
    payload = codec_for(ContentFormat.TLV).encode(node, path, MODEL)
    return Message(Code.CONTENT, payload, content_format=int(ContentFormat.TLV))


def senml_json(records: list[dict[str, Any]], code: int = Code.CONTENT) -> Message:
    return Message(code, json.dumps(records).encode(), content_format=110)


@pytest.fixture
async def raw(server: LwM2MServer) -> AsyncIterator[RawClient]:
    """A RawClient registered as ``raw`` with every format on its root link."""
    client = RawClient()
    await client.start(server.local_address)
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.register("raw", links=ALL_FORMATS)
        yield client
    finally:
        client.close()


async def registered_raw(server: LwM2MServer, name: str, **kwargs: Any) -> RawClient:
    client = RawClient()
    await client.start(server.local_address)
    async with asyncio.timeout(TIMEOUT):
        await client.register(name, **kwargs)
    return client


# -- Read (Core §6.3.1, Transport §6.3 Table "Read": GET [+Accept]) --------------------------------


@pytest.mark.parametrize(
    "path", [Path(3), Path(3, 0), Path(3, 0, 9), Path(3, 0, 6, 1)], ids=["o", "oi", "oir", "oiri"]
)
async def test_read_is_a_confirmable_get_with_the_path_in_uri_path(
    server: LwM2MServer, raw: RawClient, path: Path
) -> None:
    """Transport §6.3 (ref §1.1 table): Read = GET on /o[/i[/r[/ri]]] (the resource-instance
    level is new in 1.1), each id one Uri-Path option; RFC 7252 §4.2 / ref §1.1: every request
    but Notify is CON; no payload."""
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw, server.read("raw", path, accept=ContentFormat.SENML_JSON), Message(Code.NOT_FOUND)
        )
    assert request.code == Code.GET
    assert request.mtype == MessageType.CON
    assert request.uri_path == tuple(str(i) for i in path.ids)
    assert request.observe is None
    assert request.payload == b""
    assert request.accept == ContentFormat.SENML_JSON
    assert isinstance(task.exception(), ErrorResponse)


async def test_read_asks_for_a_format_the_client_advertised(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.2.1 (ref §1.1 "ct on </> advertises the content formats the client supports"):
    with ct="60 110 112 11542" the Accept of a Read is one of those (SenML CBOR, 112) and the
    2.05 in that format is decoded to the node."""
    async with asyncio.timeout(TIMEOUT):
        payload = codec_for(ContentFormat.SENML_CBOR).encode(device_instance(), Path(3, 0), MODEL)
        reply = Message(Code.CONTENT, payload, content_format=112)
        request, task = await exchange(raw, server.read("raw", "/3/0"), reply)
    assert request.accept in (60, 110, 112, 11542)
    assert request.accept == ContentFormat.SENML_CBOR
    response: Response = task.result()
    assert response.code == Code.CONTENT
    assert response.content == device_instance()
    assert response.content_format is ContentFormat.SENML_CBOR


@pytest.mark.parametrize(
    ("links", "version"),
    [('</>;ct="110",</3/0>', "1.1"), ("</3/0>", "1.1"), ("</3/0>", "1.0")],
    ids=["senml-json-only", "no-ct", "lwm2m-1.0"],
)
async def test_read_never_asks_for_a_format_the_client_did_not_advertise(
    server: LwM2MServer, links: str, version: str
) -> None:
    """Core §6.2.1 ct / RFC 7252 §5.10.4: the server does not put in Accept a format the client
    did not list (a 1.0 client lists none and answers in its default, TLV); without an Accept the
    client picks the format and the server decodes by Content-Format."""
    client = await registered_raw(server, "picky", links=links, version=version)
    try:
        async with asyncio.timeout(TIMEOUT):
            request, task = await exchange(
                client, server.read("picky", "/3/0"), tlv(device_instance(), Path(3, 0))
            )
        advertised = {110} if "110" in links else set()
        assert request.accept is None or request.accept in advertised
        assert task.result().content == device_instance()
    finally:
        client.close()


async def test_a_2_05_without_content_format_is_read_in_the_accepted_format(
    server: LwM2MServer, raw: RawClient
) -> None:
    """RFC 7252 §5.10.4: a 2.xx answer to a request with Accept is in that format (else the
    client answers 4.06), so a reply that omits Content-Format decodes as the Accept."""
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw,
            server.read("raw", "/3/0/9", accept=ContentFormat.TEXT),
            Message(Code.CONTENT, b"42"),
        )
    assert request.accept == ContentFormat.TEXT
    assert task.result().content == SingleResource(9, INT, 42)


# -- Discover (Core §6.3.2, Transport §6.3: GET with Accept 40) -----------------------------------


@pytest.mark.parametrize("path", ["/3", "/3/0", "/3/0/6"])
async def test_discover_is_a_get_accepting_link_format(
    server: LwM2MServer, raw: RawClient, path: str
) -> None:
    """Transport §6.3 / ref §1.1: Discover = GET on o, o/i or o/i/r with Accept:
    application/link-format (40); the 2.05 link list is decoded with its attributes."""
    links = b"</3/0/6>;dim=2;pmin=10,</3/0/9>"
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw, server.discover("raw", path), Message(Code.CONTENT, links, content_format=40)
        )
    assert request.code == Code.GET
    assert request.accept == 40
    assert request.observe is None
    assert request.uri_path == tuple(path.strip("/").split("/"))
    response: Response = task.result()
    assert response.links is not None
    assert [link.uri for link in response.links] == ["/3/0/6", "/3/0/9"]
    assert response.links[0].dim == 2


# -- Write (Core §6.3.3, Transport §6.3: PUT replace, POST partial update) ------------------------


async def test_write_replace_is_a_put_carrying_content_format_and_the_node(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Transport §6.3 / ref §1.1: Write (replace) = PUT o/i[/r[/ri]] with Content-Format; the
    payload holds the new value; 2.04 Changed is the success."""
    node = SingleResource(14, STR, "+02:00")
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw, server.write("raw", "/3/0/14", node), Message(Code.CHANGED)
        )
    assert request.code == Code.PUT
    assert request.mtype == MessageType.CON
    assert request.uri_path == ("3", "0", "14")
    assert request.content_format is not None
    assert request.uri_query == ()
    decoded = codec_for(ContentFormat(request.content_format)).decode(
        request.payload, Path(3, 0, 14), MODEL
    )
    assert decoded == node
    assert task.result().code == Code.CHANGED


async def test_write_partial_update_is_a_post_on_the_instance(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.3.3 / Transport §6.3: partial update = POST on o/i with Content-Format (the
    resources not in the payload stay); replace = PUT."""
    instance = ObjectInstance(0, [SingleResource(14, STR, "+01:00")])
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw,
            server.write("raw", "/3/0", instance, replace=False),
            Message(Code.CHANGED),
        )
        replace, _ = await exchange(
            raw, server.write("raw", "/3/0", instance), Message(Code.CHANGED)
        )
    assert request.code == Code.POST
    assert request.uri_path == ("3", "0")
    assert request.content_format is not None
    decoded = codec_for(ContentFormat(request.content_format)).decode(
        request.payload, Path(3, 0), MODEL
    )
    assert decoded == instance
    assert replace.code == Code.PUT
    assert task.result().code == Code.CHANGED


async def test_write_uses_a_format_the_client_advertised(server: LwM2MServer) -> None:
    """Core §6.2.1 ct: a client advertising only SenML CBOR (112) gets its Write payloads in
    SenML CBOR, not in TLV which it did not list."""
    client = await registered_raw(server, "cbor", links='</>;ct="112",</3/0>')
    try:
        async with asyncio.timeout(TIMEOUT):
            request, task = await exchange(
                client,
                server.write("cbor", "/3/0/14", SingleResource(14, STR, "x")),
                Message(Code.CHANGED),
            )
        assert request.content_format == ContentFormat.SENML_CBOR
        assert task.result().code == Code.CHANGED
    finally:
        client.close()


# -- Write-Attributes (Core §5.1.2, §6.3.4; Transport §6.3: PUT with query, no payload) ----------


async def test_write_attributes_is_a_put_with_one_query_option_per_attribute(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.3.4 / Transport §6.3 (ref §1.1): Write-Attributes = PUT on the path, no
    payload and no Content-Format, the attributes as Uri-Query ``pmin=&pmax=&gt=&lt=&st=&
    epmin=&epmax=``; integers for pmin/pmax/epmin/epmax; 2.04 is the success."""
    attributes = Attributes(pmin=10, pmax=60, gt=50, lt=20.5, st=2, epmin=1, epmax=30)
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw, server.write_attributes("raw", "/3/0/9", attributes), Message(Code.CHANGED)
        )
    assert request.code == Code.PUT
    assert request.uri_path == ("3", "0", "9")
    assert request.payload == b""
    assert request.content_format is None
    assert sorted(request.uri_query) == sorted(
        ["pmin=10", "pmax=60", "gt=50", "lt=20.5", "st=2", "epmin=1", "epmax=30"]
    )
    assert task.result().code == Code.CHANGED


@pytest.mark.parametrize("path", ["/3", "/3/0", "/3/0/6", "/3/0/6/1"])
async def test_write_attributes_at_every_level(
    server: LwM2MServer, raw: RawClient, path: str
) -> None:
    """Core §5.1.2 (ref §1.1 "any level"; precedence resource instance > resource > object
    instance > object): Write-Attributes addresses o, o/i, o/i/r and, in 1.1, o/i/r/ri."""
    async with asyncio.timeout(TIMEOUT):
        request, _ = await exchange(
            raw, server.write_attributes("raw", path, Attributes(pmax=5)), Message(Code.CHANGED)
        )
    assert request.uri_path == tuple(path.strip("/").split("/"))
    assert request.uri_query == ("pmax=5",)


async def test_removing_an_attribute_sends_it_without_a_value(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.3.4 (ref §1.1 "parameter without value unsets it"): ``?pmin`` (no ``=``)
    removes pmin, while other attributes may be set in the same request."""
    attributes = Attributes(pmax=30, unset=frozenset({"pmin", "gt"}))
    async with asyncio.timeout(TIMEOUT):
        request, _ = await exchange(
            raw, server.write_attributes("raw", "/3/0/9", attributes), Message(Code.CHANGED)
        )
    assert sorted(request.uri_query) == ["gt", "pmax=30", "pmin"]
    assert request.payload == b""


@pytest.mark.parametrize(
    "attributes",
    [{"gt": 10, "lt": 20}, {"gt": 30, "lt": 20, "st": 5}, {"pmin": 60, "pmax": 10}],
    ids=["lt>=gt", "lt+2st>=gt", "pmin>pmax"],
)
def test_inconsistent_attributes_are_refused_before_anything_is_sent(
    attributes: dict[str, int],
) -> None:
    """Core §5.1.2 (ref §1.1 "lt < gt and lt + 2·st < gt; an inconsistent set gets 4.00"):
    the server does not build a Write-Attributes a conforming client must refuse."""
    from lwm2m.errors import CodecError

    with pytest.raises(CodecError):
        Attributes(**attributes)  # type: ignore[arg-type]


async def test_attribute_values_use_plain_decimal_notation(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §5.1.2 Table 5.1.2-2: gt / lt / st values are decimal numbers without exponent."""
    attributes = Attributes(gt=1e20, lt=1e-7)
    async with asyncio.timeout(TIMEOUT):
        request, _ = await exchange(
            raw, server.write_attributes("raw", "/3/0/9", attributes), Message(Code.CHANGED)
        )
    for option in request.uri_query:
        value = option.partition("=")[2]
        assert "e" not in value.lower(), option


# -- Execute (Core §5.4.3 / §6.3.5 argument grammar; Transport §6.3: POST o/i/r) -----------------


@pytest.mark.parametrize(
    "arguments", ["", "0", "0='a',1", "2='http://x.example/fw?v=1',5", "9='!#&(~[]'"]
)
async def test_execute_is_a_post_on_the_resource_with_the_argument_list_as_payload(
    server: LwM2MServer, raw: RawClient, arguments: str
) -> None:
    """Core §6.3.5 / Transport §6.3: Execute = POST o/i/r; the payload is the argument list
    ``arg *("," arg)`` with ``arg = DIGIT ["=" "'" *argchar "'"]`` (argchar %x21 / %x23-26 /
    %x28-5B / %x5D-7E), sent byte for byte; no arguments, no payload; 2.04 Changed."""
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw, server.execute("raw", "/3/0/4", arguments), Message(Code.CHANGED)
        )
    assert request.code == Code.POST
    assert request.uri_path == ("3", "0", "4")
    assert request.payload == arguments.encode()
    assert request.uri_query == ()
    assert task.result().code == Code.CHANGED


# -- Create (Core §6.3.6, Transport §6.3: POST /o + Content-Format, 2.01) ------------------------


def _acl(instance: int) -> ObjectInstance:
    return ObjectInstance(
        instance, [SingleResource(0, INT, 3), SingleResource(1, INT, 0), SingleResource(3, INT, 1)]
    )


async def test_create_with_an_instance_id_posts_the_instance_on_the_object(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.3.6 / Transport §6.3: Create = POST on /o with Content-Format; with the new
    instance id chosen by the server the payload carries it (TLV Object Instance wrapper, ref
    §1.3); success is 2.01 Created."""
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw,
            server.create("raw", "/2", [_acl(7)], content_format=ContentFormat.TLV),
            Message(Code.CREATED),
        )
    assert request.code == Code.POST
    assert request.uri_path == ("2",)
    assert request.content_format == ContentFormat.TLV
    assert request.payload[0] >> 6 == 0b00  # an Object Instance TLV
    decoded = codec_for(ContentFormat.TLV).decode(request.payload, Path(2), MODEL)
    assert decoded.instances[7] == _acl(7)  # type: ignore[union-attr]
    assert task.result().code == Code.CREATED


async def test_create_without_an_instance_id_takes_the_location_the_client_chose(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.3.6: without an instance id the client assigns it and answers 2.01 with
    Location-Path /o/i (ref §1.1 "2.01 (+Location if client chose the ID)"); the payload has
    no Object Instance wrapper."""
    reply = Message(Code.CREATED)
    reply.location_path = ("2", "8")
    resources = tuple(_acl(0).resources.values())
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw,
            server.create("raw", "/2", resources=resources, content_format=ContentFormat.TLV),
            reply,
        )
    assert request.code == Code.POST
    assert request.uri_path == ("2",)
    assert request.payload[0] >> 6 == 0b11  # resources directly, no instance wrapper
    assert task.result().location == ("2", "8")


# -- Delete (Core §6.3.7, Transport §6.3: DELETE o/i, 2.02) ---------------------------------------


async def test_delete_is_a_delete_on_the_instance(server: LwM2MServer, raw: RawClient) -> None:
    """Transport §6.3 / ref §1.1: Delete = DELETE o/i, no payload; success 2.02 Deleted."""
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(raw, server.delete("raw", "/2/7"), Message(Code.DELETED))
    assert request.code == Code.DELETE
    assert request.uri_path == ("2", "7")
    assert request.payload == b""
    assert task.result().code == Code.DELETED


# -- Read-Composite / Write-Composite (Core §6.3.8, §6.3.9; Transport §6.3: FETCH / iPATCH) -------


@pytest.mark.parametrize("cf", [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR])
async def test_read_composite_is_a_fetch_on_the_root_with_senml_names(
    server: LwM2MServer, raw: RawClient, cf: ContentFormat
) -> None:
    """Core §6.3.8 / Transport §6.3 (ref §1.1, Leshan CoapRequestBuilder): Read-Composite =
    FETCH (0.05) on ``/`` (no Uri-Path), Content-Format 110/112 for a body of SenML records
    holding names only, Accept 110/112; the 2.05 maps each path to its node."""
    paths = [Path(3, 0, 9), Path(3, 0, 0), Path(1, 0)]
    composite = {
        Path(3, 0, 9): SingleResource(9, INT, 87),
        Path(3, 0, 0): SingleResource(0, STR, "ACME"),
    }
    body = composite_codec_for(cf).encode_nodes(composite, MODEL)
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw,
            server.read_composite("raw", paths, content_format=cf, accept=cf),
            Message(Code.CONTENT, body, content_format=int(cf)),
        )
    assert request.code == Code.FETCH
    assert request.uri_path == ()
    assert request.content_format == cf
    assert request.accept == cf
    assert request.observe is None
    assert composite_codec_for(cf).decode_paths(request.payload) == paths
    records = json.loads(request.payload) if cf is ContentFormat.SENML_JSON else None
    if records is not None:
        assert all(set(r) <= {"n", "bn"} for r in records)  # names only, no values
    assert dict(task.result().composite) == composite


@pytest.mark.parametrize("cf", [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR])
async def test_write_composite_is_an_ipatch_on_the_root_with_senml_values(
    server: LwM2MServer, raw: RawClient, cf: ContentFormat
) -> None:
    """Core §6.3.9 / Transport §6.3 (ref §1.1): Write-Composite = iPATCH (0.07) on ``/``,
    Content-Format 110/112, SenML records carrying the values; 2.04 Changed."""
    nodes = {
        Path(3, 0, 14): SingleResource(14, STR, "+03:00"),
        Path(1, 0, 1): SingleResource(1, INT, 600),
    }
    async with asyncio.timeout(TIMEOUT):
        request, task = await exchange(
            raw, server.write_composite("raw", nodes, content_format=cf), Message(Code.CHANGED)
        )
    assert request.code == Code.IPATCH
    assert request.uri_path == ()
    assert request.content_format == cf
    assert composite_codec_for(cf).decode_nodes(request.payload, MODEL) == nodes
    assert task.result().code == Code.CHANGED


# -- responses: success codes and errors (Core §6.3 response tables, Transport §6.3) -------------


def _operations(server: LwM2MServer) -> dict[str, Callable[[], Awaitable[Response]]]:
    node = SingleResource(14, STR, "x")
    return {
        "read": lambda: server.read("raw", "/3/0/9", accept=ContentFormat.TEXT),
        "discover": lambda: server.discover("raw", "/3/0"),
        "write": lambda: server.write("raw", "/3/0/14", node),
        "write-attributes": lambda: server.write_attributes("raw", "/3/0/9", Attributes(pmin=1)),
        "execute": lambda: server.execute("raw", "/3/0/4"),
        "create": lambda: server.create("raw", "/2", [_acl(3)]),
        "delete": lambda: server.delete("raw", "/2/3"),
        "read-composite": lambda: server.read_composite("raw", ["/3/0/9"]),
        "write-composite": lambda: server.write_composite("raw", {Path(3, 0, 14): node}),
    }


SUCCESS = {
    "read": Message(Code.CONTENT, b"87", content_format=0),
    "discover": Message(Code.CONTENT, b"</3/0/9>", content_format=40),
    "write": Message(Code.CHANGED),
    "write-attributes": Message(Code.CHANGED),
    "execute": Message(Code.CHANGED),
    "create": Message(Code.CREATED),
    "delete": Message(Code.DELETED),
    "read-composite": Message(
        Code.CONTENT,
        composite_codec_for(ContentFormat.SENML_CBOR).encode_nodes(
            {Path(3, 0, 9): SingleResource(9, INT, 87)}, MODEL
        ),
        content_format=112,
    ),
    "write-composite": Message(Code.CHANGED),
}


@pytest.mark.parametrize("operation", list(SUCCESS))
async def test_each_success_code_is_a_typed_response(
    server: LwM2MServer, raw: RawClient, operation: str
) -> None:
    """Core §6.3 operation tables / Transport §6.3: Read, Discover, Read-Composite → 2.05;
    Write, Write-Attributes, Execute, Write-Composite → 2.04; Create → 2.01; Delete → 2.02. The
    caller gets a Response carrying that code (and the decoded content)."""
    reply = SUCCESS[operation]
    async with asyncio.timeout(TIMEOUT):
        _, task = await exchange(raw, _operations(server)[operation](), reply.copy())
    response = task.result()
    assert isinstance(response, Response)
    assert response.code == reply.code
    if operation == "read":
        assert response.content == SingleResource(9, INT, 87)
    if operation == "discover":
        assert response.links is not None
        assert response.links[0].uri == "/3/0/9"
    if operation == "read-composite":
        assert response.composite == {Path(3, 0, 9): SingleResource(9, INT, 87)}


@pytest.mark.parametrize("operation", list(SUCCESS))
@pytest.mark.parametrize(
    "code",
    [
        Code.BAD_REQUEST,
        Code.UNAUTHORIZED,
        Code.NOT_FOUND,
        Code.METHOD_NOT_ALLOWED,
        Code.NOT_ACCEPTABLE,
        Code.REQUEST_ENTITY_INCOMPLETE,
        Code.REQUEST_ENTITY_TOO_LARGE,
        Code.UNSUPPORTED_CONTENT_FORMAT,
        Code.INTERNAL_SERVER_ERROR,
        Code.SERVICE_UNAVAILABLE,
    ],
    ids=lambda c: Code(c).dotted,
)
async def test_each_error_code_is_an_error_response_with_that_code(
    server: LwM2MServer, raw: RawClient, operation: str, code: int
) -> None:
    """Transport §6.3 response codes (4.00, 4.01, 4.04, 4.05, 4.06, 4.08, 4.13, 4.15) and
    RFC 7252 §5.9.3 (5.xx): any error answer reaches the caller as ErrorResponse with the
    exact code, the client's diagnostic payload and the endpoint name."""
    async with asyncio.timeout(TIMEOUT):
        _, task = await exchange(raw, _operations(server)[operation](), Message(code, b"why"))
    error = task.exception()
    assert isinstance(error, ErrorResponse)
    assert error.code == code
    assert error.diagnostic == "why"
    assert error.endpoint == "raw"


# -- a 2.05 whose payload does not fit the request or the model → InvalidResponse ---------------


MISMATCHED: dict[str, tuple[str, Message]] = {
    "other-object": ("/3/0/9", senml_json([{"n": "/5/0/1", "vs": "coap://x"}])),
    "other-resource": ("/3/0/9", senml_json([{"n": "/3/0/0", "vs": "ACME"}])),
    "other-instance": ("/3/0", senml_json([{"n": "/3/1/0", "vs": "ACME"}])),
    "unknown-resource-tlv": (
        "/3/0",
        Message(Code.CONTENT, bytes([0xC1, 200, 7]), content_format=11542),
    ),
    "wrong-type-text": ("/3/0/9", Message(Code.CONTENT, b"ninety", content_format=0)),
    "wrong-type-senml": ("/3/0/9", senml_json([{"n": "/3/0/9", "vs": "full"}])),
    "unknown-content-format": ("/3/0/9", Message(Code.CONTENT, b"87", content_format=9999)),
    "link-format-for-a-read": ("/3/0/9", Message(Code.CONTENT, b"</3/0/9>", content_format=40)),
    "truncated-tlv": ("/3/0", Message(Code.CONTENT, bytes([0xC8, 0, 9]), content_format=11542)),
    "no-content-format-no-accept": ("/3/0/9", Message(Code.CONTENT, b"87")),
}


@pytest.mark.parametrize("case", list(MISMATCHED))
async def test_a_2_05_that_does_not_fit_the_request_is_an_invalid_response(
    server: LwM2MServer, case: str
) -> None:
    """Core §6.3.1 (the Read answer is the value of the requested path), Core §7.4 (the
    content formats), and the object model the client registered (Core §6.2.1 ``ver``): a
    2.05 whose payload names another path, has a value of the wrong type, is in a format the
    server cannot read or does not decode raises InvalidResponse (a RequestFailed), never
    another exception and never a wrong node."""
    path, reply = MISMATCHED[case]
    client = await registered_raw(server, "bad", links="</3/0>,</5/0>")  # no ct: no Accept
    try:
        async with asyncio.timeout(TIMEOUT):
            _, task = await exchange(client, server.read("bad", path), reply)
        error = task.exception()
        assert isinstance(error, InvalidResponse), repr(error)
        assert error.endpoint == "bad"
        # the server is still usable for this client
        _, again = await exchange(
            client, server.read("bad", "/3/0/9"), Message(Code.CONTENT, b"5", content_format=0)
        )
        assert again.result().content == SingleResource(9, INT, 5)
    finally:
        client.close()


async def test_a_read_composite_answer_with_an_unrequested_path_is_an_invalid_response(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.3.8: the Read-Composite answer holds the values of the requested paths; a
    record outside every requested path is not an answer to this request → InvalidResponse."""
    reply = senml_json([{"n": "/3/0/9", "v": 87}, {"n": "/5/0/1", "vs": "coap://x"}])
    async with asyncio.timeout(TIMEOUT):
        _, task = await exchange(
            raw,
            server.read_composite("raw", ["/3/0/9"], content_format=ContentFormat.SENML_JSON),
            reply,
        )
    assert isinstance(task.exception(), InvalidResponse)


async def test_a_discover_answer_that_is_not_a_link_list_is_an_invalid_response(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.3.2: Discover answers with a CoRE link list (RFC 6690); a 2.05 whose payload
    is not link-format is an InvalidResponse."""
    async with asyncio.timeout(TIMEOUT):
        _, task = await exchange(
            raw, server.discover("raw", "/3/0"), Message(Code.CONTENT, b"<<<", content_format=40)
        )
    assert isinstance(task.exception(), InvalidResponse)


async def test_a_multiple_resource_is_read_with_its_instances(
    server: LwM2MServer, raw: RawClient
) -> None:
    """Core §6.3.1 / ref §1.3: a multiple resource read at o/i/r comes back with all its
    instances (TLV Multiple Resource); /o/i/r/ri addresses one instance (new in 1.1)."""
    resource = MultipleResource.of(6, INT, {0: 1, 1: 5})
    async with asyncio.timeout(TIMEOUT):
        _, task = await exchange(
            raw,
            server.read("raw", "/3/0/6", accept=ContentFormat.TLV),
            tlv(resource, Path(3, 0, 6)),
        )
    assert task.result().content == resource
