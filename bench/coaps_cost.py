"""The CPU cost of a CoAP GET over DTLS against plain UDP, in instructions, client and server.

``bench/dtls.py`` measures ``get_vs_plain`` as a rate, which the host's load moves by ±10 %
between runs. This counts the user-space instructions executed per GET, under valgrind's
callgrind, for plain UDP (the baseline) and DTLS-PSK with AES-128-CCM_8, in the same run: a
figure that does not depend on the host's load (the same tree gives the same count within about
0.5 %). What it does not see is time: cache misses, system calls and the kernel.

Each side is measured in its own runs, the other side running natively in another process
(valgrind does not trace it): 8 client endpoints, one request in flight each. Each mode runs
twice, with ``--short`` and with ``--short + --gets`` GETs per endpoint; the difference divided by
the extra GETs leaves start-up, handshakes and warm-up out. The last line is a JSON object with
``{client,server}_{plain,coaps}_instructions_per_get`` and the ratios
``{client,server}_plain_vs_coaps`` and ``plain_vs_coaps_instructions`` (both sides together, the
closest of these to what bounds the rate). Needs valgrind (Debian's package).

    python bench/coaps_cost.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

# Run as ``python bench/coaps_cost.py``: the source tree first (as bench/dtls.py does).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

ENDPOINTS = 8
SHORT = 50
GETS = 250


def client(secure: bool, gets: int) -> None:
    """The clients here, the server endpoint of bench/dtls.py in a fresh process."""
    import dtls as bench

    ctx = mp.get_context("spawn")
    conn, child = ctx.Pipe()
    process = ctx.Process(target=bench.coap_server_main, args=(secure, child), daemon=True)
    process.start()
    try:
        client_main(secure, conn.recv(), gets)
    finally:
        conn.send("stop")
        process.join(10)


def client_main(secure: bool, port: int, gets: int) -> None:
    """ENDPOINTS client endpoints, ``gets`` GETs each, to the server at ``port``."""
    import dtls as bench
    from lwm2m.coap import Code, Message
    from lwm2m.dtls import DtlsCredentials, SoftwarePsk
    from lwm2m.io.coap_endpoint import CoapEndpoint
    from lwm2m.io.coaps import DtlsSecurityLayer

    remote = ("127.0.0.1", port)

    async def run() -> None:
        endpoints = []
        for _ in range(ENDPOINTS):
            security = None
            if secure:
                credentials = DtlsCredentials(psk=SoftwarePsk(bench.PSK_ID, bench.PSK))
                security = DtlsSecurityLayer(client_credentials=credentials, config=None)
            endpoints.append(await CoapEndpoint.create(security=security))

        async def worker(endpoint: CoapEndpoint) -> None:
            for _ in range(gets):
                response = await endpoint.request(Message(Code.GET, uri_path=("r",)), remote)
                assert response.payload == bench.COAP_PAYLOAD

        await asyncio.gather(*(worker(endpoint) for endpoint in endpoints))
        for endpoint in endpoints:
            await endpoint.close()

    asyncio.run(run())


def server(secure: bool, gets: int) -> None:
    """The server endpoint of bench/dtls.py here, the clients in a fresh process."""
    import dtls as bench
    from lwm2m.coap import Code, Message
    from lwm2m.dtls import DtlsCredentials, SoftwarePskStore
    from lwm2m.io.coap_endpoint import CoapEndpoint, Site
    from lwm2m.io.coaps import DtlsSecurityLayer

    async def run() -> None:
        site = Site()
        site.add("/r", lambda request: Message(Code.CONTENT, bench.COAP_PAYLOAD, content_format=0))
        security = None
        if secure:
            store = SoftwarePskStore({bench.PSK_ID: bench.PSK})
            security = DtlsSecurityLayer(server_credentials=DtlsCredentials(psk_store=store))
        endpoint = await CoapEndpoint.create(("127.0.0.1", 0), site=site, security=security)
        clients = mp.get_context("spawn").Process(
            target=client_main, args=(secure, endpoint.local_address[1], gets)
        )
        clients.start()
        await asyncio.get_running_loop().run_in_executor(None, clients.join)
        await endpoint.close()
        if clients.exitcode != 0:
            raise RuntimeError(f"the clients failed (exit code {clients.exitcode})")

    asyncio.run(run())


def instructions(side: str, secure: bool, gets: int, directory: str) -> int:
    """Total instructions of one run of ``side`` ("client" or "server") under callgrind."""
    out = os.path.join(directory, f"callgrind.{side}.{int(secure)}.{gets}")
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        os.path.abspath(__file__),
        f"--{side}",
        "coaps" if secure else "plain",
        str(gets),
    ]
    subprocess.run(command, check=True, capture_output=True)
    with open(out) as file:
        for line in file:
            match = re.match(r"summary: (\d+)", line)
            if match:
                return int(match.group(1))
    raise RuntimeError(f"no summary line in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gets", type=int, default=GETS, help="extra GETs per endpoint")
    parser.add_argument("--short", type=int, default=SHORT, help="GETs per endpoint, short run")
    parser.add_argument("--client", nargs=2, metavar=("MODE", "GETS"), help=argparse.SUPPRESS)
    parser.add_argument("--server", nargs=2, metavar=("MODE", "GETS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client[0] == "coaps", int(args.client[1]))
        return
    if args.server:
        server(args.server[0] == "coaps", int(args.server[1]))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (apt-get install valgrind)")
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "endpoints": ENDPOINTS,
        "gets_measured": ENDPOINTS * args.gets,
    }
    per_get: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as directory:
        for side in ("client", "server"):
            for secure, name in ((False, "plain"), (True, "coaps")):
                short = instructions(side, secure, args.short, directory)
                long = instructions(side, secure, args.short + args.gets, directory)
                per_get[side, name] = value = (long - short) / (ENDPOINTS * args.gets)
                results[f"{side}_{name}_instructions_per_get"] = round(value)
                print(f"{side}, {name}: {value:,.0f} instructions per GET", flush=True)
            ratio = per_get[side, "plain"] / per_get[side, "coaps"]
            results[f"{side}_plain_vs_coaps"] = round(ratio, 3)
            print(f"{side}, plain / coaps: {ratio:.3f}", flush=True)
    both = {name: per_get["client", name] + per_get["server", name] for name in ("plain", "coaps")}
    results["plain_vs_coaps_instructions"] = round(both["plain"] / both["coaps"], 3)
    print(f"both sides, plain / coaps: {both['plain'] / both['coaps']:.3f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
