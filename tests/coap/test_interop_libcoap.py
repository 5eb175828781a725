"""Interop with libcoap's coap-client (Debian libcoap3-bin) against our server: GET, PUT with
Block1, Observe. Missing binary: skip locally, fail when CI=true (see conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwm2m.coap import Code, Message, Observation
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest, Site

pytestmark = pytest.mark.interop


class Resources:
    def __init__(self) -> None:
        self.uploads: list[bytes] = []
        self.registered = asyncio.Event()
        self.removed: asyncio.Queue[str] = asyncio.Queue()

    def upload(self, req: CoapRequest) -> Message:
        self.uploads.append(req.payload)
        return Message(Code.CHANGED)

    def observable(self, req: CoapRequest) -> Message:
        self.registered.set()
        return Message(Code.CONTENT, b"n0", observe=0)

    def on_removed(self, observation: Observation, reason: str) -> None:
        self.removed.put_nowait(reason)


@pytest.fixture
async def server() -> AsyncIterator[tuple[CoapEndpoint, Resources]]:
    res = Resources()
    site = Site()
    site.add("/r", lambda req: Message(Code.CONTENT, b"hello", content_format=0))
    site.add("/up", res.upload)
    site.add("/obs", res.observable)
    async with await CoapEndpoint.create(site=site, on_observer_removed=res.on_removed) as ep:
        yield ep, res


async def run(binary: str, *args: str) -> tuple[bytes, int]:
    proc = await asyncio.create_subprocess_exec(
        binary, "-B", "10", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(20):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return out, proc.returncode


def url(ep: CoapEndpoint, path: str) -> str:
    return f"coap://127.0.0.1:{ep.local_address[1]}{path}"


async def test_libcoap_get(coap_client_binary: str, server: tuple[CoapEndpoint, Resources]) -> None:
    ep, _ = server
    out, rc = await run(coap_client_binary, url(ep, "/r"))
    assert rc == 0
    assert out.strip() == b"hello"


async def test_libcoap_put_with_block1(
    coap_client_binary: str, server: tuple[CoapEndpoint, Resources], tmp_path: Path
) -> None:
    ep, res = server
    body = bytes(range(256)) * 20  # 5120 bytes
    f = tmp_path / "body.bin"
    f.write_bytes(body)
    _, rc = await run(coap_client_binary, "-m", "put", "-b", "64", "-f", str(f), url(ep, "/up"))
    assert rc == 0
    assert res.uploads == [body]  # reassembled from 80 blocks, delivered once
    assert ep.engine.stats.datagrams_received >= 80


async def test_libcoap_observe(
    coap_client_binary: str, server: tuple[CoapEndpoint, Resources]
) -> None:
    ep, res = server
    proc = await asyncio.create_subprocess_exec(
        coap_client_binary,
        "-B", "10", "-s", "1", "-w", url(ep, "/obs"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(20):
        await res.registered.wait()
        ep.notify("/obs", Message(Code.CONTENT, b"n1"))
        ep.notify("/obs", Message(Code.CONTENT, b"n2"), confirmable=True)
        ep.notify("/obs", Message(Code.CONTENT, b"n3"))  # merged behind the CON until its ACK
        out, _ = await proc.communicate()
        reason = await res.removed.get()  # libcoap deregisters when -s runs out
    assert proc.returncode == 0
    assert out.split() == [b"n0", b"n1", b"n2", b"n3"]
    assert reason == "deregistered"
    assert ep.observations() == []
