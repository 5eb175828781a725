"""PC/SC benchmark: APDU round trips through pcscd + vpcd + the virtual secure element, against
a raw TCP echo of the same frame sizes, and IoT SAFE sign/s and PRF/s (keys on the card).

Needs pcscd, vsmartcard-vpcd and pyscard (scripts/pcsc-env.sh starts pcscd and the VSE).
The last line of output is JSON.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "pcsc-env.sh"
N_APDU = int(os.environ.get("BENCH_APDUS", "2000"))
N_CRYPTO = int(os.environ.get("BENCH_CRYPTO", "200"))

ECHO_SERVER = r"""
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(1); print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept(); conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
reply = bytes(int(sys.argv[1]))
while True:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    head = conn.recv(2)
    if not head:
        break
    n = int.from_bytes(head, "big"); data = b""
    while len(data) < n:
        data += conn.recv(n - len(data))
    conn.sendall(len(reply).to_bytes(2, "big") + reply)
"""


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 1),
    }


def tcp_echo(command: bytes, response_size: int) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER, str(response_size)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        frame = len(command).to_bytes(2, "big") + command
        samples = []
        for _ in range(N_APDU):
            start = time.perf_counter()
            sock.sendall(frame)
            need, got = 2 + response_size, b""
            while len(got) < need:
                got += sock.recv(need - len(got))
            samples.append(time.perf_counter() - start)
        sock.close()
        return percentiles(samples)
    finally:
        proc.wait(10)


def main() -> None:
    sys.path.insert(0, str(REPO / "src"))
    from lwm2m.secure.pcsc import PcscComponent
    from lwm2m.secure.pcsc.transport import PcscTransport

    env_dir = tempfile.mkdtemp(prefix="bench-pcsc-")
    env = dict(os.environ, PCSC_ENV_DIR=env_dir, PYTHON=sys.executable)
    state = Path(env_dir) / "vse.json"
    subprocess.run(["bash", str(SCRIPT), "start-pcscd"], env=env, check=True)
    subprocess.run(["bash", str(SCRIPT), "start-vse", "--state", str(state)], env=env, check=True)
    try:
        transport = PcscTransport("Virtual PCD 00 00")
        transport.connect(10)
        # SELECT EF.ICCID then READ BINARY 10 bytes: 5-byte command, 12-byte response
        transport.transmit(bytes.fromhex("00A4000C022FE2"))
        command = bytes.fromhex("00B000000A")
        samples = []
        for _ in range(N_APDU):
            start = time.perf_counter()
            transport.transmit(command)
            samples.append(time.perf_counter() - start)
        apdu = percentiles(samples)
        component = PcscComponent(transport.transmit)
        key = component.generate_key("device")
        start = time.perf_counter()
        for i in range(N_CRYPTO):
            key.sign(i.to_bytes(4, "big"))
        sign_rate = N_CRYPTO / (time.perf_counter() - start)
        psk = component.psk("psk")
        start = time.perf_counter()
        for i in range(N_CRYPTO):
            psk.derive_master_secret(b"master secret", i.to_bytes(64, "big"))
        prf_rate = N_CRYPTO / (time.perf_counter() - start)
        component.close()
        transport.close()
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, check=False)
    echo = tcp_echo(command, 12)
    result = {
        "bench": "pcsc",
        "apdu_roundtrip": apdu,
        "tcp_echo_same_sizes": echo,
        "iot_safe_sign_per_s": round(sign_rate, 1),
        "iot_safe_prf_per_s": round(prf_rate, 1),
        "apdus": N_APDU,
        "crypto_ops": N_CRYPTO,
    }
    print(f"APDU round trip via pcscd+VSE: median {apdu['median_us']} us, p99 {apdu['p99_us']} us")
    print(f"raw TCP echo, same sizes:      median {echo['median_us']} us, p99 {echo['p99_us']} us")
    print(f"IoT SAFE sign: {sign_rate:.0f}/s, PRF (master secret): {prf_rate:.0f}/s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
