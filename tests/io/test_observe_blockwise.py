"""An observation whose first response is too large for one datagram (RFC 7641 §3.1 with
RFC 7959 §2.6), in plain CoAP: the registration holds, and later notifications are delivered.

Both were broken in the CoAP engine (found by the OSCORE edge tests): the reassembled first
response lost its Observe option (the follow-up blocks carry none), so the client took the
registration for declined while the server kept its observer.
"""

from __future__ import annotations

import asyncio

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest

BIG = bytes(range(256)) * 11 + b"tail"  # 2,820 bytes: three 1,024-byte blocks


async def test_a_block_wise_first_response_keeps_the_observation() -> None:
    def observable(request: CoapRequest) -> Message:
        observe = 0 if request.message.observe == 0 else None
        return Message(Code.CONTENT, BIG, observe=observe)

    async with (
        await CoapEndpoint.create() as server,
        await CoapEndpoint.create() as client,
    ):
        server.site.add("/obs", observable)
        async with asyncio.timeout(5):
            observation = await client.observe(
                Message(Code.GET, uri_path="/obs"), server.local_address
            )
            assert observation.active
            assert observation.response is not None
            assert observation.response.payload == BIG
            assert observation.response.observe is not None
            assert len(server.observations("/obs")) == 1
            assert server.notify("/obs", Message(Code.CONTENT, b"small")) == 1
            note = await anext(observation)
            assert note.payload == b"small"
            assert server.notify("/obs", Message(Code.CONTENT, BIG[::-1])) == 1
            note = await anext(observation)
            assert note.payload == BIG[::-1]  # a block-wise notification, reassembled
            await observation.cancel()
        assert not observation.active
