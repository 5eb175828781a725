"""Secure Component benchmark: key operations per backend, against in-memory keys.

Measures, per backend — in-memory keys (``cryptography`` directly, the baseline), ``soft:``
(the encrypted-file software component), ``pkcs11:`` (SoftHSM2 2.6 in a temporary token
directory) and ``pcsc:`` (the virtual secure element, a separate process behind pcscd + vpcd,
reached through pyscard: every operation is IoT SAFE APDUs) — ECDSA P-256 signatures/s (SHA-256
of 64 bytes), static ECDH/s and TLS 1.2 PSK master-secret derivations/s (RFC 5246 §8.1, 64-byte
seed); and full DTLS 1.2 handshakes/s with the component's credentials on the client side
(PSK-CCM_8 with the master secret derived in the component; ECDHE-ECDSA with raw public keys,
signature made in the component), server in software, in memory. For ``pcsc:`` also the median
APDU round trip (READ BINARY of 10 bytes) through pcscd.

Run: ``python bench/secure.py [--seconds S] [--rounds R] [--no-pcsc]`` (best of R interleaved
rounds). The last output line is a JSON object with the rates and the ratios to in-memory keys.
SoftHSM2 missing: the pkcs11 row is skipped; pcscd, vsmartcard-vpcd or pyscard missing: the
pcsc row is skipped (``scripts/pcsc-env.sh`` starts and stops pcscd and the VSE).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

# Run as ``python bench/secure.py``, this directory comes first on sys.path, where
# bench/lwm2m.py would shadow the package: put the source tree first (as bench/coap.py does).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from lwm2m.secure import SecureComponent, open_component
from lwm2m.secure.interfaces import psk_premaster
from lwm2m.secure.soft import tls12_prf

REPO = Path(__file__).resolve().parent.parent
PCSC_ENV = REPO / "scripts" / "pcsc-env.sh"
PSK = bytes(range(16))
IDENTITY = b"bench-client"
MESSAGE = bytes(64)
SEED = bytes(64)


def rate(work: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``work`` over about ``seconds``."""
    work()  # warm-up
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        work()
        count += 1
    return count / elapsed


def _softhsm_helper() -> Any:
    path = Path(__file__).resolve().parent.parent / "tests" / "secure" / "softhsm.py"
    spec = importlib.util.spec_from_file_location("_bench_softhsm", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# -- per-backend key operations -------------------------------------------------------------------


Work = dict[str, Callable[[], object]]


def in_memory() -> Work:
    from lwm2m.dtls import SoftwarePsk, SoftwareSigningKey

    key = ec.generate_private_key(ec.SECP256R1())
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    premaster = psk_premaster(PSK)
    work: Work = {
        "sign": lambda: key.sign(MESSAGE, ec.ECDSA(hashes.SHA256())),
        "ecdh": lambda: key.exchange(ec.ECDH(), peer),
        "psk": lambda: tls12_prf(premaster, b"master secret", SEED, 48),
    }
    work.update(handshakes(SoftwareSigningKey.generate(), SoftwarePsk(IDENTITY, PSK)))
    return work


def component_work(component: SecureComponent) -> Work:
    key = component.generate_key("bench-key")
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    psk = component.import_psk(IDENTITY, PSK, label="bench-psk")
    work: Work = {
        "sign": lambda: key.sign(MESSAGE),
        "ecdh": lambda: key.exchange(peer),
        "psk": lambda: psk.derive_master_secret(b"master secret", SEED),
    }
    work.update(handshakes(key, psk))
    return work


# -- DTLS handshakes ------------------------------------------------------------------------------


def handshakes(key: Any, psk: Any) -> Work:
    """Full client handshakes/s with the component's PSK and signing key (server in software)."""
    try:
        from lwm2m.dtls import (
            DtlsConfiguration,
            DtlsConnection,
            DtlsCredentials,
            DtlsServer,
            HandshakeCompleted,
            RawPublicKeyVerifier,
            SoftwarePskStore,
            SoftwareSigningKey,
        )
        from lwm2m.dtls.constants import CipherSuite
    except ImportError as exc:  # the DTLS engine is not there
        print(f"DTLS handshakes skipped: {exc}", file=sys.stderr)
        return {}

    def run(client_creds: Any, server: Any, suite: int) -> None:
        client = DtlsConnection(
            configuration=DtlsConfiguration(cipher_suites=(suite,)), credentials=client_creds
        )
        client.connect(0.0)
        address = os.urandom(4)
        for _ in range(10):
            for datagram in client.datagrams_to_send(0.0):
                server.receive_datagram(datagram, address, 0.0)
            replies = server.datagrams_to_send(0.0)
            if not replies:
                break
            for datagram, to in replies:
                if to == address:
                    client.receive_datagram(datagram, 0.0)
        if not isinstance(client.next_event(), HandshakeCompleted):
            raise RuntimeError("handshake failed")
        server.close(address)  # the close_notify is dropped
        server.datagrams_to_send(0.0)
        while server.next_event() is not None:
            pass

    psk_suite = CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
    psk_server = DtlsServer(
        configuration=DtlsConfiguration(is_client=False, cipher_suites=(psk_suite,)),
        credentials=DtlsCredentials(psk_store=SoftwarePskStore({IDENTITY: PSK})),
    )
    rpk_suite = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8
    server_key = SoftwareSigningKey.generate()
    rpk_server = DtlsServer(
        configuration=DtlsConfiguration(is_client=False, cipher_suites=(rpk_suite,)),
        credentials=DtlsCredentials(
            signing_key=server_key, peer_verifier=RawPublicKeyVerifier([key.public_key()])
        ),
    )
    psk_creds = DtlsCredentials(psk=psk)
    rpk_creds = DtlsCredentials(
        signing_key=key, peer_verifier=RawPublicKeyVerifier([server_key.public_key()])
    )
    work: Work = {
        "dtls_psk": lambda: run(psk_creds, psk_server, psk_suite),
        "dtls_rpk": lambda: run(rpk_creds, rpk_server, rpk_suite),
    }
    try:
        for call in work.values():
            call()
    except Exception as exc:  # an engine under construction must not hide the key figures
        print(f"DTLS handshakes skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {}
    return work


# -- pcsc: the virtual secure element behind pcscd -------------------------------------------------


@contextlib.contextmanager
def pcsc_card(tmp: str) -> Any:
    """pcscd and a VSE process (``Virtual PCD 00 00``) for the bench; yields the component's
    URI, or None when the PC/SC stack is missing. Stops what it started."""
    from lwm2m.secure.pcsc.transport import missing_modules as pcsc_missing

    if shutil.which("pcscd") is None or not Path("/etc/reader.conf.d/vpcd").exists():
        print("pcsc skipped: pcscd / vsmartcard-vpcd are not installed", file=sys.stderr)
        yield None
        return
    if pcsc_missing():
        print("pcsc skipped: pyscard is not installed", file=sys.stderr)
        yield None
        return
    from lwm2m.vse.state import VseState, save_state

    env = dict(os.environ, PCSC_ENV_DIR=f"{tmp}/pcsc-env", PYTHON=sys.executable)
    state = Path(tmp) / "bench-card.json"
    save_state(VseState(), state)  # a blank card: identification data, an empty IoT SAFE applet
    try:
        for command in (["start-pcscd"], ["start-vse", "--state", str(state)]):
            subprocess.run(["bash", str(PCSC_ENV), *command], env=env, check=True)
        yield "pcsc:reader=Virtual%20PCD%2000%2000"
    finally:
        subprocess.run(["bash", str(PCSC_ENV), "stop"], env=env, check=False)


def apdu_round_trip(component: Any, count: int = 2000) -> dict[str, float]:
    """Median and p99 of READ BINARY (10 bytes of EF.ICCID) through pcscd, in µs."""
    transmit = component._session.transmit
    transmit(bytes.fromhex("00A4000C022FE2"))
    command = bytes.fromhex("00B000000A")
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        transmit(command)
        samples.append(time.perf_counter() - start)
    samples.sort()
    return {
        "median_us": round(statistics.median(samples) * 1e6, 1),
        "p99_us": round(samples[int(len(samples) * 0.99) - 1] * 1e6, 1),
    }


# -- main -----------------------------------------------------------------------------------------


def measure(work: dict[str, Work], seconds: float, rounds: int) -> dict[str, dict[str, float]]:
    """Best rate of each (backend, operation) over ``rounds`` interleaved rounds: on a shared
    machine the best round is the least disturbed one, and interleaving exposes every backend
    to the same load."""
    best: dict[str, dict[str, float]] = {backend: {} for backend in work}
    for _ in range(rounds):
        for backend, operations in work.items():
            for op, call in operations.items():
                measured = rate(call, seconds / rounds)
                best[backend][op] = max(best[backend].get(op, 0.0), measured)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per rate")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (best of)")
    parser.add_argument("--no-pcsc", action="store_true", help="skip the pcsc: backend")
    args = parser.parse_args()
    apdu: dict[str, float] | None = None
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work: dict[str, Work] = {"memory": in_memory()}
        os.environ["LWM2M_BENCH_SC"] = "bench passphrase"
        uri = f"soft:{tmp}/bench.sc?passphrase-env=LWM2M_BENCH_SC"
        work["soft"] = component_work(stack.enter_context(open_component(uri, create=True)))
        softhsm = _softhsm_helper()
        if softhsm.find_module() and softhsm.find_util():
            hsm = softhsm.SoftHsm.create(Path(tmp) / "softhsm", ("bench",))
            os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
            token = stack.enter_context(open_component(hsm.uri("bench")))
            work["pkcs11"] = component_work(token)
        else:
            print("pkcs11 skipped: SoftHSM2 is not installed", file=sys.stderr)
        card_uri = None if args.no_pcsc else stack.enter_context(pcsc_card(tmp))
        if card_uri is not None:
            card = stack.enter_context(open_component(card_uri))
            work["pcsc"] = component_work(card)
            apdu = apdu_round_trip(card)
        results = measure(work, args.seconds, args.rounds)
    operations = list(results["memory"])
    print(f"{'per second':<12}" + "".join(f"{op:>12}" for op in operations))
    for backend, rates in results.items():
        row = "".join(f"{rates[op]:>12,.0f}" if op in rates else f"{'-':>12}" for op in operations)
        print(f"{backend:<12}{row}")
    ratios = {
        backend: {
            op: round(rates[op] / results["memory"][op], 3)
            for op in operations
            if op in rates and results["memory"].get(op)
        }
        for backend, rates in results.items()
        if backend != "memory"
    }
    summary = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rates_per_s": {b: {k: round(v, 1) for k, v in r.items()} for b, r in results.items()},
        "ratio_to_in_memory": ratios,
    }
    if apdu is not None:
        print(f"pcsc APDU round trip via pcscd + VSE: median {apdu['median_us']} µs")
        summary["pcsc_apdu_round_trip"] = apdu
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
