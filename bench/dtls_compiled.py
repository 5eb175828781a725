"""What compiling the DTLS engine with mypyc would buy: an experiment, not a shipped build.

Issue #5 asks for PSK handshakes at least as fast as Mbed TLS's server (``bench/dtls.py``,
server CPU per handshake); the pure-Python engine reaches about two thirds. Its cost is spread
over a few hundred small Python operations per flight, not one hot spot. mypyc compiles
type-annotated modules to C extensions from the same source; this measures what that gives
before anyone decides to ship it.

It copies ``src/lwm2m`` into a temporary directory, compiles the engine's modules there with
mypyc (``MODULES``; ``credentials`` is left out because its Protocol classes cannot be native
classes, and it is the seam where other credential sources plug in; ``errors`` because its
exception classes set class attributes that native classes treat differently), then runs the
PSK server-side comparison of ``bench/dtls.py`` (``server_rate`` with python-mbedtls's client;
TLS_PSK_WITH_AES_128_CCM_8, extended master secret, cookie round trip) twice, each in its own
process: on the source tree as it is, and on the compiled copy. Each run measures Mbed TLS's
server in the same process as its baseline.

Run: ``python bench/dtls_compiled.py [--seconds S]``. The last output line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "src")
BENCH = os.path.join(ROOT, "bench", "dtls.py")

#: The modules compiled: the record layer, messages, handshake, connection and server, and what
#: they call per record (PRF, cookies, events, constants, configuration, the Buffer).
MODULES = (
    "lwm2m/buffer.py",
    "lwm2m/dtls/config.py",
    "lwm2m/dtls/connection.py",
    "lwm2m/dtls/constants.py",
    "lwm2m/dtls/cookie.py",
    "lwm2m/dtls/events.py",
    "lwm2m/dtls/handshake.py",
    "lwm2m/dtls/messages.py",
    "lwm2m/dtls/prf.py",
    "lwm2m/dtls/record.py",
    "lwm2m/dtls/server.py",
)

#: Runs in a child process whose sys.path starts with the tree to measure: lwm2m.dtls is
#: imported from there before bench/dtls.py (which would put the source tree first) is loaded.
CHILD = """
import importlib.util, json, sys
tree, bench, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
sys.path.insert(0, tree)
import lwm2m.dtls.connection as connection
spec = importlib.util.spec_from_file_location("dtls_bench", bench)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert module.DtlsServer.__module__ == "lwm2m.dtls.server"
material = module.make_pki()
tls, client_ctx, server_ctx = module.mbedtls_contexts("psk", material)
_, _, server = module.psk_setup()
client = lambda: module.MbedtlsClient(client_ctx, tls)
ours_flights, theirs_flights = [], []
ours = module.server_rate(client, module.our_server_handshakes(server), seconds, ours_flights)
theirs = module.server_rate(
    client, module.mbedtls_server_handshakes(tls, server_ctx), seconds, theirs_flights
)
print(json.dumps({
    "compiled": connection.__file__.endswith(".so"),
    "ours": ours, "mbedtls": theirs, "ours_flights": ours_flights,
    "mbedtls_flights": theirs_flights,
}))
"""


def compile_copy(target: str) -> float:
    """Copy the package to ``target`` and compile MODULES there; the build's seconds."""
    shutil.copytree(os.path.join(SOURCE, "lwm2m"), os.path.join(target, "lwm2m"))
    for leftover in ("_senml_cbor_fast",):  # built in place in src; harmless, but not ours
        for name in os.listdir(os.path.join(target, "lwm2m", "codec")):
            if name.startswith(leftover) and name.endswith(".so"):
                os.remove(os.path.join(target, "lwm2m", "codec", name))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mypyc", *MODULES],
        cwd=target,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return time.perf_counter() - start


def measure(tree: str, seconds: float) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, tree, BENCH, str(seconds)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each rate")
    args = parser.parse_args()
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="lwm2m-mypyc-") as target:
        results["mypyc_build_s"] = round(compile_copy(target), 1)
        pure = measure(SOURCE, args.seconds)
        compiled = measure(target, args.seconds)
    if pure["compiled"] or not compiled["compiled"]:
        raise SystemExit("the two runs did not load the trees they were meant to")
    for name, run in (("pure", pure), ("compiled", compiled)):
        ours, theirs = float(run["ours"]), float(run["mbedtls"])  # type: ignore[arg-type]
        results[f"{name}_psk_handshakes_per_s"] = round(ours, 1)
        results[f"{name}_mbedtls_psk_handshakes_per_s"] = round(theirs, 1)
        results[f"{name}_psk_handshakes_vs_mbedtls"] = round(ours / theirs, 2)
        results[f"{name}_psk_server_flight_us"] = run["ours_flights"]
        results[f"{name}_mbedtls_psk_server_flight_us"] = run["mbedtls_flights"]
    results["compiled_vs_pure"] = round(
        float(compiled["ours"]) / float(pure["ours"]),  # type: ignore[arg-type]
        2,
    )
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
