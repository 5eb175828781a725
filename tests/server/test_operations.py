"""The request API of the server (LwM2M-TS-Core §6.3, §6.4) against a fake client on loopback:
every operation, decoded results, typed errors, observations and their notifications."""

from __future__ import annotations

import asyncio

import pytest

from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Attributes
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.model import ObjectInstance, Path, ResourceType, SingleResource
from lwm2m.operations.requests import (
    CancelObservation,
    Create,
    Discover,
    Execute,
    ObserveComposite,
    Read,
    ReadComposite,
    Write,
    WriteAttributes,
    WriteComposite,
)
from lwm2m.server.errors import (
    ErrorResponse,
    InvalidResponse,
    NotRegistered,
    RequestRejected,
    RequestTimeout,
)
from lwm2m.server.events import NotificationReceived, ObservationEnded, Registered
from lwm2m.store.memory import MemoryRegistrationStore

from .conftest import FAST_COAP
from .devices import FakeClient, device_instance

INT, STR = ResourceType.INTEGER, ResourceType.STRING
TIMEOUT = 5


async def test_read_decodes_with_the_registered_model(
    server: LwM2MServer, registered: FakeClient
) -> None:
    async with asyncio.timeout(TIMEOUT):
        response = await server.read("dev1", Path(3, 0))
        assert response.code == Code.CONTENT
        assert response.content == device_instance()
        # the client advertised SenML CBOR (</>;ct=...): the server asks for it
        assert response.content_format is ContentFormat.SENML_CBOR
        tlv = await server.read("dev1", Path(3, 0), accept=ContentFormat.TLV)
        assert tlv.content == device_instance()
        assert tlv.content_format is ContentFormat.TLV
        single = await server.read("dev1", "/3/0/9", accept=ContentFormat.TEXT)
        assert single.content == SingleResource(9, INT, 87)
        assert single.content_format is ContentFormat.TEXT
        senml = await server.read("dev1", "/3", accept=ContentFormat.SENML_JSON)
        assert senml.content is not None
    assert registered.received[0] == Read(Path(3, 0), ContentFormat.SENML_CBOR)


async def test_without_advertised_formats_the_client_chooses(server: LwM2MServer) -> None:
    plain = FakeClient("plain")
    await plain.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await plain.register(server.local_address, links="</3/0>,</3>;ver=1.1")
            registration = await server.registration("plain")
            assert registration is not None
            assert server.preferred_format(registration) is None
            response = await server.read("plain", "/3/0")
            assert response.content == device_instance()
            await server.observe("plain", "/3/0/9")
        assert plain.received[0] == Read(Path(3, 0))
        assert plain.received[1].accept is None  # type: ignore[union-attr]
    finally:
        await plain.stop()


async def test_every_dm_operation(server: LwM2MServer, registered: FakeClient) -> None:
    async with asyncio.timeout(TIMEOUT):
        discovered = await server.discover("dev1", "/3/0/6")
        assert discovered.links is not None
        assert discovered.links[0].dim == 1
        assert isinstance(registered.received[-1], Discover)

        node = SingleResource(14, STR, "+02:00")
        await server.write("dev1", "/3/0/14", SingleResource(14, STR, "+01:00"))
        write = registered.received[-1]
        assert isinstance(write, Write)
        assert (write.replace, write.content_format) == (True, ContentFormat.TLV)
        await server.write(
            "dev1",
            Path(3, 0),
            ObjectInstance(0, [node]),
            replace=False,
            content_format=ContentFormat.SENML_CBOR,
        )
        write = registered.received[-1]
        assert isinstance(write, Write)
        assert (write.replace, write.content_format) == (False, ContentFormat.SENML_CBOR)

        attributes = Attributes(pmin=10, pmax=60)
        assert (await server.write_attributes("dev1", "/3/0/9", attributes)).is_success
        assert registered.received[-1] == WriteAttributes(Path(3, 0, 9), attributes)

        assert (await server.execute("dev1", "/3/0/4", "0='x'")).code == Code.CHANGED
        assert registered.received[-1] == Execute(Path(3, 0, 4), "0='x'")

        acl = [SingleResource(0, INT, 3), SingleResource(1, INT, 0), SingleResource(3, INT, 1)]
        created = await server.create("dev1", Path(2), [ObjectInstance(7, acl)])
        assert created.code == Code.CREATED
        assert isinstance(registered.received[-1], Create)
        chosen = await server.create("dev1", "/2", resources=acl)
        assert chosen.location == ("2", "8")

        assert (await server.delete("dev1", "/2/7")).code == Code.DELETED
        with pytest.raises(ErrorResponse) as info:
            await server.delete("dev1", "/2/7")
        assert info.value.code == Code.NOT_FOUND
        assert info.value.endpoint == "dev1"


async def test_composite_operations(server: LwM2MServer, registered: FakeClient) -> None:
    async with asyncio.timeout(TIMEOUT):
        response = await server.read_composite("dev1", ["/3/0/9", Path(3, 0, 0)])
        assert response.composite == {
            Path(3, 0, 9): SingleResource(9, INT, 87),
            Path(3, 0, 0): SingleResource(0, STR, "ACME"),
        }
        request = registered.received[-1]
        assert isinstance(request, ReadComposite)
        assert request.content_format is ContentFormat.SENML_CBOR  # advertised by the client

        nodes = {Path(3, 0, 14): SingleResource(14, STR, "+03:00")}
        assert (await server.write_composite("dev1", nodes)).code == Code.CHANGED
        assert registered.received[-1] == WriteComposite(nodes, ContentFormat.SENML_CBOR)
        assert (await server.read("dev1", "/3/0/14")).content == SingleResource(14, STR, "+03:00")


async def test_errors_are_typed(server: LwM2MServer, registered: FakeClient) -> None:
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(NotRegistered):
            await server.read("nobody", "/3/0")
        with pytest.raises(NotRegistered):
            await server.write("nobody", "/3/0/14", SingleResource(14, STR, "x"))
        with pytest.raises(ErrorResponse) as info:
            await server.read("dev1", "/4/0")
        assert info.value.dotted_code == "4.04"
        registered.errors[Read] = Code.UNAUTHORIZED
        with pytest.raises(ErrorResponse) as info:
            await server.read("dev1", "/0/0")
        assert info.value.code == Code.UNAUTHORIZED
        assert info.value.diagnostic == "forced error"


async def test_undecodable_and_rejected_responses() -> None:
    server = LwM2MServer(expiry_interval=None)
    await server.start(("127.0.0.1", 0))
    raw = FakeClient("raw")
    await raw.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await raw.register(server.local_address)
            assert raw.endpoint is not None
            from lwm2m.coap.message import Message

            raw.endpoint.site.add("/", lambda r: Message(Code.CONTENT, b"\xff", content_format=0))
            with pytest.raises(InvalidResponse, match="undecodable"):
                await server.read("raw", "/3/0/9")
            with pytest.raises(InvalidResponse):
                await server.observe("raw", "/3/0/9")
    finally:
        await raw.stop()
        await server.stop()


async def test_timeouts_and_resets() -> None:
    server = LwM2MServer(expiry_interval=None, coap_config=FAST_COAP)
    await server.start(("127.0.0.1", 0))
    mute = FakeClient("mute")
    await mute.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await mute.register(server.local_address)
            assert mute.endpoint is not None
            address = mute.address
            await mute.endpoint.close()  # the port answers ICMP unreachable / nothing
            with pytest.raises((RequestTimeout, RequestRejected)):
                await server.read("mute", "/3/0")
    finally:
        await server.stop()
    assert address


async def test_observe_notifications_and_proactive_cancel(
    server: LwM2MServer, registered: FakeClient
) -> None:
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            handle = await server.observe("dev1", "/3/0/9", accept=ContentFormat.TEXT)
            assert handle.active
            assert handle.response is not None
            assert handle.response.content == SingleResource(9, INT, 87)
            assert handle.registration.endpoint == "dev1"
            records = await server.observations("dev1")
            assert records == [handle.observation]
            assert server.observation_handle(handle.token) is handle

            for level in (50, 40):
                registered.set_resource(Path(3, 0, 9), level)
                assert registered.notify(Path(3, 0, 9)) == 1
                notification = await anext(handle)
                assert notification.content == SingleResource(9, INT, level)
                event = await events.wait_for(NotificationReceived)
                assert event.observation == handle.observation
                assert event.response == notification

            await handle.cancel()
            ended = await events.wait_for(ObservationEnded)
            assert ended.reason == "cancelled"
            assert not handle.active
            assert isinstance(registered.received[-1], CancelObservation)
            assert await server.observations("dev1") == []
            assert [n async for n in handle] == []
            assert await server.cancel_observation(handle.token) is None


async def test_reactive_cancel_and_observations_end_with_the_registration(
    server: LwM2MServer, registered: FakeClient
) -> None:
    async with asyncio.timeout(TIMEOUT):
        first = await server.observe("dev1", "/3/0/9")
        await first.cancel(proactive=False)
        assert not first.active
        second = await server.observe("dev1", "/3/0/0")
        await registered.register(server.local_address)  # a new Register ends observations
        assert [n async for n in second] == []
        assert second.end_reason == "client registered again"
        registration = await server.registration("dev1")
        assert registration is not None
        assert await server.observations("dev1") == []


async def test_observe_composite(server: LwM2MServer, registered: FakeClient) -> None:
    async with asyncio.timeout(TIMEOUT):
        handle = await server.observe_composite("dev1", ["/3/0/9", "/3/0/1"])
        assert handle.observation.composite
        assert handle.response is not None
        assert handle.response.composite == {
            Path(3, 0, 9): SingleResource(9, INT, 87),
            Path(3, 0, 1): SingleResource(1, STR, "Model 1"),
        }
        assert isinstance(registered.received[-1], ObserveComposite)
        registered.set_resource(Path(3, 0, 9), 11)
        assert registered.notify(Path(3, 0, 9)) == 1
        notification = await anext(handle)
        assert notification.composite is not None
        assert notification.composite[Path(3, 0, 9)] == SingleResource(9, INT, 11)
        await handle.cancel()
        assert not handle.active


async def test_an_observe_the_client_declines_gives_an_inactive_handle(
    server: LwM2MServer, registered: FakeClient
) -> None:
    assert registered.endpoint is not None
    original = registered.handle

    def no_observe(request):  # type: ignore[no-untyped-def]
        message = original(request)
        message.observe = None
        return message

    registered.endpoint.site.add("/", no_observe)
    async with asyncio.timeout(TIMEOUT):
        handle = await server.observe("dev1", "/3/0/9")
    assert not handle.active
    assert handle.end_reason is not None
    assert await server.observations("dev1") == []
    registered.errors[type(registered.received[-1])] = Code.NOT_FOUND
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(ErrorResponse):
            await server.observe("dev1", "/3/0/9")


async def test_the_client_ending_an_observation_is_published(
    server: LwM2MServer, registered: FakeClient
) -> None:
    assert registered.endpoint is not None
    with server.subscribe() as events:
        async with asyncio.timeout(TIMEOUT):
            handle = await server.observe("dev1", "/3/0/9")
            (observation,) = registered.endpoint.observations()
            from lwm2m.coap.message import Message

            registered.endpoint.notify_observation(observation, Message(Code.NOT_FOUND))
            ended = await events.wait_for(ObservationEnded)
    assert ended.observation == handle.observation
    assert ended.reason == "the client ended the observation"
    assert await server.observations("dev1") == []


async def test_a_restarted_server_recognises_stored_observations() -> None:
    """The restart seam without persistence: a second server on the same port and store."""
    store = MemoryRegistrationStore()
    first = LwM2MServer(store=store, expiry_interval=None)
    await first.start(("127.0.0.1", 0))
    address = first.local_address
    client = FakeClient("dev1")
    await client.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.register(address)
            handle = await first.observe("dev1", "/3/0/9")
            await first.stop()
            second = LwM2MServer(store=store, expiry_interval=None)
            await second.start(address)
            try:
                with second.subscribe() as events:
                    client.set_resource(Path(3, 0, 9), 5)
                    client.notify(Path(3, 0, 9))
                    event = await events.wait_for(NotificationReceived)
                assert event.observation.token == handle.token
                assert event.response.content == SingleResource(9, INT, 5)
                adopted = second.observation_handle(handle.token)
                assert adopted is not None
                assert adopted.response is None
                assert (await anext(adopted)).content == SingleResource(9, INT, 5)
                assert (await second.read("dev1", "/3/0/9")).content is not None
            finally:
                await second.stop()
    finally:
        await client.stop()


async def test_registered_event_precedes_requests(server: LwM2MServer, client: FakeClient) -> None:
    """A read issued from the Registered callback reaches the client."""
    results: list[object] = []
    done = asyncio.Event()

    async def on_event(event: object) -> None:
        if isinstance(event, Registered):
            results.append((await server.read(event.registration.endpoint, "/3/0/9")).content)
            done.set()

    server.add_listener(on_event)
    async with asyncio.timeout(TIMEOUT):
        await client.register(server.local_address)
        await done.wait()
    assert results == [SingleResource(9, INT, 87)]


async def test_write_format_follows_the_client(server: LwM2MServer) -> None:
    senml_only = FakeClient("senml")
    await senml_only.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await senml_only.register(
                server.local_address, links='</>;ct="110",</3/0>,</3>;ver=1.1'
            )
            await server.write("senml", "/3/0/14", SingleResource(14, STR, "x"))
            write = senml_only.received[-1]
            assert isinstance(write, Write)
            assert write.content_format is ContentFormat.SENML_JSON
            await server.read_composite("senml", ["/3/0/14"])
            read = senml_only.received[-1]
            assert isinstance(read, ReadComposite)
            assert read.content_format is ContentFormat.SENML_JSON
    finally:
        await senml_only.stop()


def test_coap_failures_map_to_server_errors() -> None:
    from lwm2m.coap.errors import BlockwiseError, RequestCancelled, RequestRejected
    from lwm2m.coap.errors import RequestTimeout as CoapTimeout
    from lwm2m.io.lwm2m_server import _request_failed
    from lwm2m.server import errors

    assert isinstance(_request_failed(CoapTimeout("x"), "d"), errors.RequestTimeout)
    assert isinstance(_request_failed(RequestRejected("x"), "d"), errors.RequestRejected)
    assert isinstance(_request_failed(RequestCancelled("x"), "d"), errors.RequestCancelled)
    failed = _request_failed(BlockwiseError("too big"), "d")
    assert type(failed) is errors.RequestFailed
    assert "BlockwiseError" in str(failed)


async def test_undecodable_notifications_are_skipped(
    server: LwM2MServer, registered: FakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    from lwm2m.coap.message import Message

    assert registered.endpoint is not None
    async with asyncio.timeout(TIMEOUT):
        handle = await server.observe("dev1", "/3/0/9", accept=ContentFormat.TEXT)
        (observation,) = registered.endpoint.observations()
        registered.endpoint.notify_observation(
            observation, Message(Code.CONTENT, b"not a number", content_format=0)
        )
        registered.set_resource(Path(3, 0, 9), 1)
        registered.notify(Path(3, 0, 9))
        assert (await anext(handle)).content == SingleResource(9, INT, 1)
    assert "undecodable notification" in caplog.text
    model = server.model_for(handle.registration)
    assert model.object_definition(3) is not None


async def test_explicit_composite_format(server: LwM2MServer, registered: FakeClient) -> None:
    async with asyncio.timeout(TIMEOUT):
        await server.read_composite(
            "dev1",
            ["/3/0/9"],
            content_format=ContentFormat.SENML_JSON,
            accept=ContentFormat.SENML_CBOR,
        )
    request = registered.received[-1]
    assert isinstance(request, ReadComposite)
    assert (request.content_format, request.accept) == (
        ContentFormat.SENML_JSON,
        ContentFormat.SENML_CBOR,
    )


async def test_a_restarted_server_treats_queue_clients_as_asleep() -> None:
    store = MemoryRegistrationStore()
    first = LwM2MServer(store=store, expiry_interval=None)
    from .devices import register_message

    await first.handle_uplink(register_message("q", queue=True), ("192.0.2.1", 1), None)
    second = LwM2MServer(store=store, expiry_interval=None)
    await second.start(("127.0.0.1", 0))
    try:
        registration = await second.registration("q")
        assert registration is not None
        assert not second.is_awake(registration)
    finally:
        await second.stop()
