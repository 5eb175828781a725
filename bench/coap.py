"""CoAP benchmark: round trips/s, notifications/s and memory of lwm2m.coap vs raw UDP and aiocoap.

Run ``.venv/bin/python bench/coap.py`` (about 90 s). Every case starts a fresh server in a
separate process (multiprocessing, spawn) and drives it from this process, so client and server
each get one core of a 2-core machine. Cases:

* GET of a 5-byte resource, 1 request in flight and 64 in flight spread over 64 client endpoints
  (NSTART=1 per endpoint), for (a) a raw asyncio UDP echo (one future per request, like the
  CoAP clients), (b) aiocoap 0.4.x (64 client contexts against one server context) and (c) ours
  (64 CoapEndpoints against one), each under asyncio and, if installed, uvloop;
* Observe: one server, 64 observer endpoints, a resource changing every millisecond; CON
  notifications (merged while in flight, each observer gets the newest state when its ACK
  arrives) and NON (every change to every observer); counted as notifications delivered;
* memory: RSS growth of a sans-IO engine per 10,000 remembered exchanges (duplicate cache).

The headline cases run REPEATS times, interleaved, and medians are reported (the machine may be
shared). Next to every rate the benchmark prints the CPU time (user + system, psutil) per operation
of the server process and of this (client) process: on a shared machine that figure is much
steadier than the rate, which moves with the foreign load. The last line of output is a JSON
object with every figure, including ``vs_aiocoap_64`` (ours / aiocoap at 64 in flight,
asyncio), ``vs_raw_echo_64`` (ours / raw echo at 64, asyncio) and ``con_notifications_per_s``
(asyncio); ``*_uvloop`` keys hold the same figures under uvloop. ``bench/coap.py ours notif``
runs only the cases whose names contain a given substring.
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import json
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import psutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

WARMUP = 0.3
DURATION = 1.5
REPEATS = 3
CONCURRENCY = 64
PAYLOAD = b"hello"
PRODUCER_INTERVAL = 0.001  # the observed resource changes 1000 times a second

try:
    import uvloop

    UVLOOP: str | None = getattr(uvloop, "__version__", "present")
except ImportError:  # pragma: no cover - depends on the machine
    UVLOOP = None


def _run(coro_fn: Callable[[], Coroutine[Any, Any, Any]], use_uvloop: bool) -> Any:
    factory = asyncio.new_event_loop
    if use_uvloop:
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro_fn())


# ------------------------------------------------------------------------------------------------
# servers (child processes)
# ------------------------------------------------------------------------------------------------


def server_main(kind: str, use_uvloop: bool, conn: Any) -> None:
    os.environ["AIOCOAP_REUSE_PORT"] = "0"

    closers: list[Callable[[], Coroutine[Any, Any, Any]]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        producer: asyncio.Task[None] | None = None
        if kind == "raw":

            class Echo(asyncio.DatagramProtocol):
                def connection_made(self, transport: Any) -> None:
                    self.transport = transport

                def datagram_received(self, data: bytes, addr: Any) -> None:
                    self.transport.sendto(data, addr)

            transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
            port = transport.get_extra_info("sockname")[1]
            closers.append(_closer(transport))
        elif kind == "aiocoap":
            import socket

            import aiocoap
            import aiocoap.resource

            class Small(aiocoap.resource.Resource):  # type: ignore[misc]
                async def render_get(self, request: Any) -> Any:
                    return aiocoap.Message(payload=PAYLOAD, content_format=0)

            site = aiocoap.resource.Site()
            site.add_resource(["r"], Small())
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            ctx = await aiocoap.Context.create_server_context(
                site, bind=("127.0.0.1", port), transports=["udp6"]
            )
            closers.append(ctx.shutdown)
        else:
            from lwm2m.coap import CoapConfig, Code, Message
            from lwm2m.io.coap_endpoint import CoapEndpoint, Site

            site = Site()
            site.add("/r", lambda req: Message(Code.CONTENT, PAYLOAD, content_format=0))
            observing = asyncio.Event()

            def observable(req: Any) -> Message:
                observing.set()
                return Message(Code.CONTENT, b"0", observe=0)

            site.add("/obs", observable)
            confirmable = kind == "ours-observe-con"
            ep = await CoapEndpoint.create(
                site=site, config=CoapConfig(notification_confirmable=confirmable)
            )
            port = ep.local_address[1]
            closers.append(ep.close)
            if kind.startswith("ours-observe"):
                producer = loop.create_task(produce(ep, observing))
        conn.send(port)
        await loop.run_in_executor(None, conn.recv)  # until told to stop
        if producer is not None:
            producer.cancel()
        for close in closers:
            await close()
        conn.close()

    async def produce(ep: Any, observing: asyncio.Event) -> None:
        """The resource changes PRODUCER_INTERVAL apart. NON: every change goes to every observer.
        CON: each observer gets the newest state as soon as its previous notification is
        acknowledged (merging), so the rate measures the notification pipeline."""
        from lwm2m.coap import Code, Message

        await observing.wait()
        n = 0
        while True:
            n += 1
            ep.notify("/obs", Message(Code.CONTENT, str(n).encode()))
            await asyncio.sleep(PRODUCER_INTERVAL)

    _run(main, use_uvloop)


def _closer(transport: Any) -> Callable[[], Coroutine[Any, Any, None]]:
    async def close() -> None:
        transport.close()

    return close


class Server:
    """A server of ``kind`` in a fresh process; ``port`` is where it listens."""

    def __init__(self, kind: str, use_uvloop: bool) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=server_main, args=(kind, use_uvloop, child), daemon=True)
        self.proc.start()
        self.port: int = self.conn.recv()
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def stop(self) -> None:
        try:
            self.conn.send("stop")
        except OSError:
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


# ------------------------------------------------------------------------------------------------
# clients (this process)
# ------------------------------------------------------------------------------------------------


async def stop_workers(stop: list[bool], tasks: list[asyncio.Task[None]]) -> None:
    """Let every worker finish its request in flight (cancelling would leave aiocoap noise)."""
    stop[0] = True
    _, pending = await asyncio.wait(tasks, timeout=10)
    for t in pending:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


_ME = psutil.Process()


def _own_cpu() -> float:
    t = _ME.cpu_times()
    return float(t.user + t.system)


async def measure(counter: list[int], server: Server) -> tuple[float, float, float]:
    """Rate over DURATION after WARMUP, and server and client CPU seconds per operation."""
    await asyncio.sleep(WARMUP)
    c0, cpu0, own0, t0 = counter[0], server.cpu(), _own_cpu(), time.perf_counter()
    await asyncio.sleep(DURATION)
    c1, cpu1, own1, t1 = counter[0], server.cpu(), _own_cpu(), time.perf_counter()
    ops = max(c1 - c0, 1)
    return (c1 - c0) / (t1 - t0), (cpu1 - cpu0) / ops, (own1 - own0) / ops


async def client_raw(port: int, concurrency: int, server: Server) -> tuple[float, float, float]:
    """Raw asyncio UDP: one socket and one coroutine per "endpoint", a future per request."""
    loop = asyncio.get_running_loop()
    counter = [0]
    stop = [False]

    class Client(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.waiter: asyncio.Future[bytes] | None = None

        def datagram_received(self, data: bytes, addr: Any) -> None:
            w = self.waiter
            if w is not None and not w.done():
                w.set_result(data)

    async def worker() -> None:
        transport, proto = await loop.create_datagram_endpoint(
            Client, remote_addr=("127.0.0.1", port)
        )
        try:
            while not stop[0]:
                proto.waiter = loop.create_future()
                transport.sendto(b"GET /r ping 1234")
                await proto.waiter
                counter[0] += 1
        finally:
            transport.close()

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        return await measure(counter, server)
    finally:
        await stop_workers(stop, tasks)


async def client_aiocoap(port: int, concurrency: int, server: Server) -> tuple[float, float, float]:
    import aiocoap

    counter = [0]
    stop = [False]
    contexts = [
        await aiocoap.Context.create_client_context(transports=["udp6"]) for _ in range(concurrency)
    ]
    uri = f"coap://127.0.0.1:{port}/r"

    async def worker(ctx: Any) -> None:
        while not stop[0]:
            response = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri)).response
            assert response.payload == PAYLOAD
            counter[0] += 1

    tasks = [asyncio.create_task(worker(c)) for c in contexts]
    try:
        return await measure(counter, server)
    finally:
        await stop_workers(stop, tasks)
        for c in contexts:
            await c.shutdown()


async def client_ours(port: int, concurrency: int, server: Server) -> tuple[float, float, float]:
    from lwm2m.coap import Code, Message
    from lwm2m.io.coap_endpoint import CoapEndpoint

    counter = [0]
    stop = [False]
    remote = ("127.0.0.1", port)
    endpoints = [await CoapEndpoint.create() for _ in range(concurrency)]

    async def worker(ep: Any) -> None:
        request = ep.request
        while not stop[0]:
            response = await request(Message(Code.GET, uri_path=("r",)), remote)
            assert response.payload == PAYLOAD
            counter[0] += 1

    tasks = [asyncio.create_task(worker(ep)) for ep in endpoints]
    try:
        return await measure(counter, server)
    finally:
        await stop_workers(stop, tasks)
        for ep in endpoints:
            await ep.close()


async def client_observe(port: int, server: Server) -> tuple[float, float, float]:
    """64 observer endpoints; notifications counted by callback (no task wake-up each)."""
    from lwm2m.coap import Code, Message
    from lwm2m.io.coap_endpoint import CoapEndpoint

    counter = [0]
    remote = ("127.0.0.1", port)
    endpoints = [await CoapEndpoint.create() for _ in range(CONCURRENCY)]

    def count(_message: Any) -> None:
        counter[0] += 1

    async def subscribe(ep: Any) -> None:
        observation = await ep.observe(Message(Code.GET, uri_path=("obs",)), remote)
        observation.on_notification(count)

    await asyncio.gather(*(subscribe(ep) for ep in endpoints))
    try:
        return await measure(counter, server)
    finally:
        for ep in endpoints:
            await ep.close()


def run_case(kind: str, concurrency: int, use_uvloop: bool) -> dict[str, float]:
    server = Server(kind, use_uvloop)
    try:

        async def main() -> tuple[float, float, float]:
            if kind == "raw":
                return await client_raw(server.port, concurrency, server)
            if kind == "aiocoap":
                return await client_aiocoap(server.port, concurrency, server)
            if kind == "ours":
                return await client_ours(server.port, concurrency, server)
            return await client_observe(server.port, server)

        rate, cpu_per_op, own_per_op = _run(main, use_uvloop)
        return {
            "rate": rate,
            "server_us_per_op": cpu_per_op * 1e6,
            "client_us_per_op": own_per_op * 1e6,
            "server_rss": server.rss(),
        }
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------------
# memory
# ------------------------------------------------------------------------------------------------


def memory_main(conn: Any) -> None:
    """RSS growth per 10,000 remembered exchanges of a sans-IO engine (fresh process)."""
    from lwm2m.coap import CoapEngine, Code, Message, MessageType, RequestReceived

    engine = CoapEngine(rng=random.Random(1))
    rng = random.Random(2)
    peers = [(f"10.0.{i // 256}.{i % 256}", 5683) for i in range(200)]
    n = 100_000

    def serve(first: int, count: int) -> None:
        for i in range(first, first + count):
            addr = peers[i % len(peers)]
            req = Message(
                Code.GET,
                mtype=MessageType.CON,
                mid=(i // len(peers)) & 0xFFFF,
                token=rng.getrandbits(64).to_bytes(8, "big"),
                uri_path=("3", "0", "1"),
            )
            engine.receive_datagram(req.encode(), addr, 0.0)
            event = engine.next_event()
            assert isinstance(event, RequestReceived)
            response = Message(Code.CONTENT, PAYLOAD, content_format=0)
            engine.send_response(event.exchange, response, 0.0)
            engine.datagrams_to_send(0.0)
            engine.get_timer()  # as the asyncio adapter does after every datagram

    serve(0, 2000)
    gc.collect()
    before = psutil.Process().memory_info().rss
    serve(2000, n)
    gc.collect()
    after = psutil.Process().memory_info().rss
    per_10k = (after - before) * 10_000 / n
    conn.send({"rss_bytes_per_10k_exchanges": per_10k, "remembered": engine.remembered_exchanges})
    conn.close()


def run_memory() -> dict[str, float]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=memory_main, args=(child,))
    proc.start()
    result: dict[str, float] = parent.recv()
    proc.join()
    return result


# ------------------------------------------------------------------------------------------------


def main() -> None:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "uvloop": UVLOOP or "missing",
        "warmup_s": WARMUP,
        "duration_s": DURATION,
        "repeats": REPEATS,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    loops = [False] + ([True] if UVLOOP else [])
    only = sys.argv[1:]  # optional filters for development: case-name substrings
    cases: list[tuple[str, str, int, bool]] = []
    for use_uvloop in loops:
        tag = "uvloop" if use_uvloop else "asyncio"
        cases.extend(
            (f"{kind}_{concurrency}_{tag}", kind, concurrency, use_uvloop)
            for kind in ("raw", "aiocoap", "ours")
            for concurrency in (1, CONCURRENCY)
        )
        for mode in ("con", "non"):
            name = f"{mode}_notifications_per_s_{tag}"
            cases.append((name, f"ours-observe-{mode}", CONCURRENCY, use_uvloop))
    if only:
        cases = [c for c in cases if any(o in c[0] for o in only)]
    # The machine may be shared: repeat the headline cases, interleaved so that a burst of
    # foreign load hits every case alike, and report medians.
    samples: dict[str, list[tuple[float, float, float]]] = {}
    header = f"{'case':<34} {'rate/s':>10} {'server µs/op':>13} {'client µs/op':>13}"
    print(header, flush=True)
    for rep in range(REPEATS):
        for name, kind, concurrency, use_uvloop in cases:
            if concurrency == 1 and rep > 0:
                continue
            r = run_case(kind, concurrency, use_uvloop)
            sample = (r["rate"], r["server_us_per_op"], r["client_us_per_op"])
            samples.setdefault(name, []).append(sample)
            print(
                f"{name:<34} {sample[0]:>10.0f} {sample[1]:>13.1f} {sample[2]:>13.1f}", flush=True
            )
    print("medians:")
    for name, runs in samples.items():
        rate = statistics.median(x[0] for x in runs)
        cpu = statistics.median(x[1] for x in runs)
        own = statistics.median(x[2] for x in runs)
        results[name] = round(rate)
        results[name + "_server_us"] = round(cpu, 1)
        results[name + "_client_us"] = round(own, 1)
        if len(runs) > 1:
            results[name + "_runs"] = [round(x[0]) for x in runs]
        print(f"{name:<34} {rate:>10.0f} {cpu:>13.1f} {own:>13.1f}", flush=True)
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if only:
        print(json.dumps(results))
        return
    results.update(run_memory())
    print(f"RSS per 10,000 remembered exchanges: {results['rss_bytes_per_10k_exchanges']:.0f} B")
    for tag in ("asyncio", "uvloop") if UVLOOP else ("asyncio",):
        suffix = "" if tag == "asyncio" else "_uvloop"
        ours = results[f"ours_64_{tag}"]
        results["vs_aiocoap_64" + suffix] = round(ours / results[f"aiocoap_64_{tag}"], 2)
        results["vs_raw_echo_64" + suffix] = round(ours / results[f"raw_64_{tag}"], 2)
        # CPU per request is far less sensitive to foreign load than throughput:
        aio_cpu = results[f"aiocoap_64_{tag}_server_us"] + results[f"aiocoap_64_{tag}_client_us"]
        our_cpu = results[f"ours_64_{tag}_server_us"] + results[f"ours_64_{tag}_client_us"]
        raw_cpu = results[f"raw_64_{tag}_server_us"] + results[f"raw_64_{tag}_client_us"]
        results["cpu_vs_aiocoap_64" + suffix] = round(aio_cpu / our_cpu, 2)
        results["cpu_vs_raw_echo_64" + suffix] = round(raw_cpu / our_cpu, 2)
    # Headline figures: the default asyncio loop; the uvloop ones are reported next to them.
    results["con_notifications_per_s"] = results["con_notifications_per_s_asyncio"]
    results["non_notifications_per_s"] = results["non_notifications_per_s_asyncio"]
    results["total_runtime_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results))


if __name__ == "__main__":
    # Run through the importable module ``coap`` (this file, from sys.path[0]) so that the spawned
    # children unpickle their targets from it rather than from ``__mp_main__``: aiocoap's server
    # under uvloop lost its socket ("Connection loss was not expected") in the latter setup.
    import coap

    coap.main()
