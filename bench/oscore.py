"""OSCORE benchmark (RFC 8613): what object security costs, against plain CoAP and aiocoap.

What is measured, in one run:

- **Sans-IO exchange** (``exchange_us``): one whole protected exchange through
  :mod:`lwm2m.oscore` — the client protects a GET, the server verifies it, protects a 2.05 with
  a 20-byte payload, the client verifies that — in microseconds of CPU, best of several
  repeats. Its floor (``crypto_floor_us``) is the AEAD work alone: two AES-CCM-16-64-128
  encryptions and two decryptions of the same sizes with ``cryptography``; the ratio says what
  the OSCORE logic adds on top of the cipher.
- **GET round trips per second over loopback**, 64 requests in flight from one client to one
  server, both in this process: our :class:`~lwm2m.io.coap_endpoint.CoapEndpoint` with OSCORE
  (``oscore_get_per_s``) and without (``plain_get_per_s``), and aiocoap 0.4.17 with its own
  OSCORE (``aiocoap_oscore_get_per_s``) on the same machine. Ratios: ``oscore_vs_plain`` (ours)
  and ``oscore_vs_aiocoap``.

Run: ``.venv/bin/python bench/oscore.py [--seconds S]``. The last output line is a JSON object.
"""

# ruff: noqa: E402 - the package imports follow the sys.path fix below

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
# bench/lwm2m.py would shadow the package: drop this folder, put the source tree and the
# repository (for the aiocoap harness of the tests) first.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path[:0] = [os.path.join(_ROOT, "src"), _ROOT]

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest
from lwm2m.io.oscore import OscoreLayer
from lwm2m.oscore import OscoreParameters, SecurityContext, SoftwareMasterSecret, unprotect_request

SECRET = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
SALT = bytes.fromhex("9e7ca92223786340")
PAYLOAD = b"battery level = 87 %"  # 20 bytes
IN_FLIGHT = 64
REPEATS = 5
REFUSED = [0]  # aiocoap requests refused as replays (see aiocoap_oscore)


def contexts() -> tuple[SecurityContext, SecurityContext]:
    client = SecurityContext(
        SoftwareMasterSecret(SECRET), OscoreParameters(b"\x02", b"\x01", master_salt=SALT)
    )
    server = SecurityContext(
        SoftwareMasterSecret(SECRET), OscoreParameters(b"\x01", b"\x02", master_salt=SALT)
    )
    return client, server


def best_per_op(work: Callable[[], None], count: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.process_time()
        for _ in range(count):
            work()
        best = min(best, (time.process_time() - start) / count)
    return best


def sans_io(count: int = 5000) -> dict[str, float]:
    client, server = contexts()

    def find(kid: bytes, kid_context: bytes | None) -> SecurityContext:
        return server

    def exchange() -> None:
        request = Message(Code.GET, uri_path="/3/0/9", accept=0, token=b"\x01\x02")
        outer, binding = client.protect_request(request)
        _, context, server_binding = unprotect_request(outer, find)
        response = Message(Code.CONTENT, PAYLOAD, content_format=0, token=outer.token)
        protected = context.protect_response(response, server_binding)
        client.unprotect_response(protected, binding)

    aead, nonce, aad = AESCCM(bytes(16), tag_length=8), bytes(13), bytes(20)
    request_plain, response_plain = bytes(12), bytes(24)

    def floor() -> None:
        a = aead.encrypt(nonce, request_plain, aad)
        aead.decrypt(nonce, a, aad)
        b = aead.encrypt(nonce, response_plain, aad)
        aead.decrypt(nonce, b, aad)

    ours = best_per_op(exchange, count)
    crypto = best_per_op(floor, count)
    return {
        "exchange_us": round(ours * 1e6, 1),
        "crypto_floor_us": round(crypto * 1e6, 1),
        "exchange_vs_floor": round(ours / crypto, 1),
    }


async def rate(worker: Callable[[], Awaitable[None]], seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await worker()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(IN_FLIGHT)))
    return done / (time.perf_counter() - start)


def handler(request: CoapRequest) -> Message:
    return Message(Code.CONTENT, PAYLOAD, content_format=0)


async def ours(oscore: bool, seconds: float) -> float:
    client_ctx, server_ctx = contexts()
    server_layer = client_layer = None
    if oscore:
        server_layer, client_layer = OscoreLayer(), OscoreLayer()
        server_layer.add_context(server_ctx)
    async with await CoapEndpoint.create(oscore=server_layer) as server:
        server.site.add("3", handler)
        async with await CoapEndpoint.create(oscore=client_layer) as client:
            address = server.local_address
            if client_layer is not None:
                client_layer.add_peer(address, client_ctx)

            async def get() -> None:
                response = await client.request(Message(Code.GET, uri_path="/3/0/9"), address)
                assert response.payload == PAYLOAD

            await rate(get, 0.2)  # warm up
            return await rate(get, seconds)


async def aiocoap_oscore(seconds: float) -> float:
    import aiocoap
    import aiocoap.oscore
    import aiocoap.resource
    from tests.oscore.aiocoap_peer import (
        AiocoapOscoreClient,
        AiocoapOscoreServer,
        OscoreMaterial,
        mirrored,
    )

    class Battery(aiocoap.resource.Resource):  # type: ignore[misc]
        async def render_get(self, request: Any) -> Any:
            return aiocoap.Message(code=aiocoap.CONTENT, payload=PAYLOAD)

    site = aiocoap.resource.Site()
    site.add_resource(["3", "0", "9"], Battery())
    material = OscoreMaterial(SECRET, sender_id=b"\x01", recipient_id=b"\x02", master_salt=SALT)
    async with (
        AiocoapOscoreServer(material, site=site) as server,
        AiocoapOscoreClient(mirrored(material)) as client,
    ):
        host, port = server.address

        async def get() -> None:
            try:
                _, payload, _ = await client.request((host, port), "GET", "/3/0/9")
            except aiocoap.oscore.NotAProtectedMessage:
                # aiocoap's server refuses a Partial IV that fell more than its 32-entry replay
                # window behind (requests overtaking each other under load): counted, not done
                REFUSED[0] += 1
                return
            assert payload == PAYLOAD

        await rate(get, 0.2)
        return await rate(get, seconds)


async def endpoints(seconds: float) -> dict[str, float]:
    plain, protected, theirs = [], [], []
    for _ in range(3):  # interleaved, best of three
        plain.append(await ours(False, seconds))
        protected.append(await ours(True, seconds))
        theirs.append(await aiocoap_oscore(seconds))
    results = {
        "plain_get_per_s": round(max(plain)),
        "oscore_get_per_s": round(max(protected)),
        "aiocoap_oscore_get_per_s": round(max(theirs)),
    }
    results["aiocoap_refused"] = REFUSED[0]
    results["oscore_vs_plain"] = round(max(protected) / max(plain), 2)
    results["oscore_vs_aiocoap"] = round(max(protected) / max(theirs), 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measured case")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
    }
    results.update(sans_io())
    print(
        f"sans-IO exchange: {results['exchange_us']} us "
        f"(AES-CCM floor {results['crypto_floor_us']} us, x{results['exchange_vs_floor']})"
    )
    results.update(asyncio.run(endpoints(args.seconds)))
    print(
        f"GET/s, {IN_FLIGHT} in flight: plain {results['plain_get_per_s']}, "
        f"OSCORE {results['oscore_get_per_s']} (x{results['oscore_vs_plain']}), "
        f"aiocoap OSCORE {results['aiocoap_oscore_get_per_s']} "
        f"(ours x{results['oscore_vs_aiocoap']})"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
