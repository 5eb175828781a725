"""Registration store benchmark: memory, SQLite and Redis, against a bare Redis round trip.

What is measured, per backend, with 2,000 registrations of the same 7 object links:

- ``add``: sequential adds (a new registration each);
- ``lookup``: sequential ``get_by_endpoint`` of known endpoints (what every request of the
  server's API does first), after one pass so that parsed records are warm;
- ``lookup_64``: the same, 64 at a time (``asyncio.gather``), per lookup;
- ``update``: sequential updates (a registration Update).

Baseline, in the same run on the same Redis server: redis-py's ``HGET`` of one registration
record, sequential and 64 at a time: the floor of any Redis-backed look-up from Python.
``redis_lookup_vs_hget`` (sequential, our look-up time / HGET time) says what the Lua script, the
index hop and the record's parsing add on top of one round trip. Redis runs on a Unix socket of
a private ``redis-server`` (no persistence) started and stopped by this script.

Run: ``.venv/bin/python bench/stores.py`` (about 10 s). The last line is a JSON object.
"""

# ruff: noqa: E402 - the package imports follow the sys.path fix below

from __future__ import annotations

import asyncio
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import redis
import redis.asyncio

from lwm2m.codec.link import parse_links
from lwm2m.operations.requests import Register
from lwm2m.server.registration import Registration, new_registration
from lwm2m.store.base import RegistrationStore
from lwm2m.store.memory import MemoryRegistrationStore
from lwm2m.store.redis import RedisRegistrationStore
from lwm2m.store.sqlite import SqliteRegistrationStore

COUNT = 2000
LINKS = tuple(
    parse_links('</>;ct="60 110 112 11542",</1/0>,</3/0>,</3>;ver=1.1,</4/0>;ver=1.3,</5/0>,</6/0>')
)


def registration(i: int, now: float = 1000.0) -> Registration:
    return new_registration(
        Register(f"urn:dev:bench-{i}", 86400, "1.1", "U", False, None, LINKS, {}),
        registration_id=f"r{i}",
        address=("10.0.0.1", 1024 + i),
        identity=None,
        now=now,
    )


async def per_op(count: int, make: Callable[[int], Awaitable[object]]) -> float:
    """µs per operation, sequential."""
    start = time.perf_counter()
    for i in range(count):
        await make(i)
    return (time.perf_counter() - start) / count * 1e6


async def per_op_64(count: int, make: Callable[[int], Awaitable[object]]) -> float:
    """µs per operation, 64 at a time."""
    start = time.perf_counter()
    for base in range(0, count, 64):
        await asyncio.gather(*(make(i) for i in range(base, min(base + 64, count))))
    return (time.perf_counter() - start) / count * 1e6


async def measure(store: RegistrationStore) -> dict[str, float]:
    add = await per_op(COUNT, lambda i: store.add(registration(i)))
    await per_op(COUNT, lambda i: store.get_by_endpoint(f"urn:dev:bench-{i}"))  # warm
    lookup = await per_op(COUNT, lambda i: store.get_by_endpoint(f"urn:dev:bench-{i}"))
    lookup_64 = await per_op_64(COUNT, lambda i: store.get_by_endpoint(f"urn:dev:bench-{i}"))
    update = await per_op(COUNT, lambda i: store.update(registration(i, now=2000.0)))
    found = await store.get_by_endpoint("urn:dev:bench-7")
    assert found is not None
    assert found.updated_at == 2000.0
    return {
        "add_us": round(add, 1),
        "lookup_us": round(lookup, 1),
        "lookup_64_us": round(lookup_64, 1),
        "update_us": round(update, 1),
    }


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    socket = os.path.join(directory, "redis.sock")
    process = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", socket, "--save", "", "--appendonly", "no",
         "--dir", directory],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(unix_socket_path=socket)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # polling for the server to start
    client.close()
    return process, f"unix://{socket}"


async def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lwm2m-bench-") as directory:
        results["memory"] = await measure(MemoryRegistrationStore())
        sqlite = await SqliteRegistrationStore.open(os.path.join(directory, "r.sqlite"))
        try:
            results["sqlite"] = await measure(sqlite)
        finally:
            await sqlite.close()
        process, url = start_redis(directory)
        try:
            store = await RedisRegistrationStore.open(url)
            try:
                results["redis"] = await measure(store)
            finally:
                await store.close()
            client = redis.asyncio.Redis.from_url(url)
            try:
                await client.hset("bench:reg", "r7", b"x" * 700)  # about a record's size
                results["redis_hget_us"] = round(
                    await per_op(COUNT, lambda i: client.hget("bench:reg", "r7")), 1
                )
                results["redis_hget_64_us"] = round(
                    await per_op_64(COUNT, lambda i: client.hget("bench:reg", "r7")), 1
                )
            finally:
                await client.aclose()
        finally:
            process.terminate()
            process.wait()
    results["redis_lookup_vs_hget"] = round(
        results["redis"]["lookup_us"] / results["redis_hget_us"], 2
    )
    return results


if __name__ == "__main__":
    figures = asyncio.run(main())
    for backend in ("memory", "sqlite", "redis"):
        row = figures[backend]
        print(
            f"{backend:<7} add {row['add_us']:>7} µs   lookup {row['lookup_us']:>7} µs   "
            f"64 in flight {row['lookup_64_us']:>7} µs/lookup   update {row['update_us']:>7} µs"
        )
    print(
        f"redis-py HGET (baseline) {figures['redis_hget_us']} µs, 64 in flight "
        f"{figures['redis_hget_64_us']} µs; lookup / HGET {figures['redis_lookup_vs_hget']}"
    )
    figures["date"] = datetime.date.today().isoformat()
    figures["machine"] = (
        f"{platform.machine()} {os.cpu_count()} CPU, {platform.system()} {platform.release()}, "
        f"CPython {platform.python_version()}, redis-py {redis.__version__}"
    )
    print(json.dumps(figures, sort_keys=True))
