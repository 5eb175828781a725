"""The client's CPU cost of a CoAP GET over DTLS against plain UDP, in instructions.

``bench/dtls.py`` measures ``get_vs_plain`` as a rate, which the host's load moves by ±10 %
between runs. This counts the user-space instructions the client executes per GET, under
valgrind's callgrind, for plain UDP (the baseline) and DTLS-PSK with AES-128-CCM_8, in the same
run: a figure that does not depend on the host's load (the same tree gives the same count within
about 0.5 %). What it does not see is time: cache misses, system calls and the kernel.

Each mode runs twice, with ``--short`` and with ``--short + --gets`` GETs per endpoint (8
endpoints, one request in flight each, against a server in another process that valgrind does
not trace); the difference divided by the extra GETs leaves start-up, handshakes and warm-up out.
The last line is a JSON object: ``plain_instructions_per_get``, ``coaps_instructions_per_get``
and their ratio ``plain_vs_coaps_instructions``. Needs valgrind (Debian's package).

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
    """Run ENDPOINTS client endpoints, ``gets`` GETs each, against a fresh server process."""
    import dtls as bench
    from lwm2m.coap import Code, Message
    from lwm2m.dtls import DtlsCredentials, SoftwarePsk
    from lwm2m.io.coap_endpoint import CoapEndpoint
    from lwm2m.io.coaps import DtlsSecurityLayer

    ctx = mp.get_context("spawn")
    conn, child = ctx.Pipe()
    server = ctx.Process(target=bench.coap_server_main, args=(secure, child), daemon=True)
    server.start()
    remote = ("127.0.0.1", conn.recv())

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

    try:
        asyncio.run(run())
    finally:
        conn.send("stop")
        server.join(10)


def instructions(secure: bool, gets: int, directory: str) -> int:
    """Total instructions of one client run under callgrind."""
    out = os.path.join(directory, f"callgrind.{int(secure)}.{gets}")
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        os.path.abspath(__file__),
        "--client",
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
    args = parser.parse_args()
    if args.client:
        client(args.client[0] == "coaps", int(args.client[1]))
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
    with tempfile.TemporaryDirectory() as directory:
        for secure, name in ((False, "plain"), (True, "coaps")):
            short = instructions(secure, args.short, directory)
            long = instructions(secure, args.short + args.gets, directory)
            per_get = (long - short) / (ENDPOINTS * args.gets)
            results[f"{name}_instructions_per_get"] = round(per_get)
            print(f"{name}: {per_get:,.0f} client instructions per GET", flush=True)
    plain = results["plain_instructions_per_get"]
    coaps = results["coaps_instructions_per_get"]
    assert isinstance(plain, int)
    assert isinstance(coaps, int)
    results["plain_vs_coaps_instructions"] = round(plain / coaps, 3)
    print(f"plain / coaps: {plain / coaps:.3f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
