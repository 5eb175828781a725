"""How fast can a PSK handshake be served in pure Python at all? A floor for issue #5.

``bench/dtls.py`` compares our server's CPU per full PSK handshake with Mbed TLS's. This
benchmark adds two reference servers to the same measurement (same driver, python-mbedtls's
DTLS client; same clock, ``time.process_time`` around the server's work only; same suite,
TLS_PSK_WITH_AES_128_CCM_8 with the extended master secret and the cookie round trip):

- **floor**: the PSK server flights written as straight-line Python, one generator, nothing
  but the bytes and the cryptography a server cannot skip: the cookie HMAC, the transcript hash,
  the extended master secret, the key block and both Finished through the engine's own PRF,
  and AES-CCM_8 from ``cryptography``. It is *not* a DTLS server: it trusts the bench client's
  layout and checks nothing else, keeps no retransmission state and sends no alerts;
- **floor + engine objects**: the floor plus the objects and bookkeeping our engine keeps per
  handshake: a :class:`~lwm2m.dtls.connection.DtlsConnection` (with its handshake), the
  server's address maps and timer entry, replay windows, the flight kept for retransmission,
  the PSK looked up and the master secret derived inside the credential (the seam of issue #5
  point 3), record protections from ``create_protections``, the session put in a
  :class:`~lwm2m.dtls.handshake.SessionCache`, and the events an application receives.

Beside them: our :class:`~lwm2m.dtls.server.DtlsServer` and Mbed TLS 2.28's server, as in
``bench/dtls.py``. A second pass counts the Python bytecode instructions each server executes
per client flight (``sys.settrace`` with opcode events), which, unlike time, is the same on a
busy machine.

What it shows: the distance to Mbed TLS is not the language. The floor serves about twice as
many handshakes per second of CPU as Mbed TLS, and still more than Mbed TLS with the engine's
objects added. Our server executed 4.5 times the floor's bytecode before the ninth session and about
2.6 times after the tenth (``ours_opcodes_vs_floor``), which took it from 0.63 to about 1.0 of
Mbed TLS: the gap was the server's code path (docs/performance.md, "Ninth session",
"Tenth session").

Run: ``python bench/dtls_floor.py [--seconds S]``. The last output line is a JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

import dtls as harness  # bench/dtls.py: the driver, the clock and the Mbed TLS server
from lwm2m.dtls.connection import DtlsConnection
from lwm2m.dtls.events import DtlsSession, HandshakeCompleted
from lwm2m.dtls.handshake import OutgoingMessage, SessionCache
from lwm2m.dtls.prf import HmacSha256, prf
from lwm2m.dtls.record import RawRecord, ReplayWindow, create_protections
from lwm2m.dtls.server import ServerEvent
from lwm2m.dtls.trust import PskIdentity

Serve = Callable[[int], Iterator[tuple[list[bytes], list[bytes], bool]]]

SUITE = 0xC0A8  # TLS_PSK_WITH_AES_128_CCM_8
#: ServerHello extensions: extended_master_secret, renegotiation_info (empty).
SERVER_HELLO_EXTENSIONS = bytes.fromhex("000900170000ff01000100")
SERVER_HELLO_DONE = bytes.fromhex("0e0000000002000000000000")  # message_seq 2, empty body
CHANGE_CIPHER_SPEC = bytes.fromhex("14fefd0000000000000003000101")  # epoch 0, seq 3


class EngineState:
    """What the engine keeps beside each handshake (for ``floor_server(objects=True)``)."""

    def __init__(self) -> None:
        server = harness.psk_setup()[2]
        self.configuration = server._configuration
        self.credentials = server._credentials
        self.cache = SessionCache(self.configuration.session_cache_size)
        self.by_address: dict[Any, DtlsConnection] = {}
        self.addresses: dict[DtlsConnection, Any] = {}
        self.queued: dict[DtlsConnection, tuple[float, tuple[int, int]]] = {}
        self.timers: dict[DtlsConnection, float] = {}
        self.flights: dict[DtlsConnection, list[OutgoingMessage]] = {}
        self.outgoing: list[tuple[bytes, Any]] = []
        self.events: list[ServerEvent] = []

    def take(self) -> list[bytes]:
        outgoing, self.outgoing = self.outgoing, []
        self.events = []
        return [datagram for datagram, _ in outgoing]


def floor_server(objects: bool) -> Serve:
    """The straight-line PSK server, with the engine's objects when ``objects``."""
    cookie_mac = HmacSha256(os.urandom(32))
    state = EngineState() if objects else None

    def serve(n: int) -> Iterator[tuple[list[bytes], list[bytes], bool]]:
        address = ("10.0.0.1", n)
        incoming = yield [], [], False
        # Flight 1: the stateless HelloVerifyRequest.
        data = incoming[0]
        if state is not None:
            state.by_address.get(address)
        client = repr(address).encode()
        cookie_at = 60 + data[59]  # record and handshake headers, version, random, session_id
        cookie = cookie_mac.digest(client + data[25:cookie_at] + data[cookie_at + 1 :])
        body = b"\xfe\xff\x20" + cookie
        message = struct.pack("!IHHI", (3 << 24) | len(body), 0, 0, len(body)) + body
        reply = b"\x16\xfe\xfd" + data[3:11] + len(message).to_bytes(2, "big") + message
        if state is not None:
            state.outgoing.append((reply, address))
            incoming = yield state.take(), [], False
        else:
            incoming = yield [reply], [], False
        # Flight 3: the ClientHello with the cookie; ServerHello and ServerHelloDone.
        data = incoming[0]
        client = repr(address).encode()
        cookie_at = 60 + data[59]
        cookie_end = cookie_at + 1 + data[cookie_at]
        expected = cookie_mac.digest(client + data[25:cookie_at] + data[cookie_end:])
        if expected != data[cookie_at + 1 : cookie_end]:
            raise AssertionError("cookie")
        client_random = data[27:59]
        pos = cookie_end
        suites_end = pos + 2 + int.from_bytes(data[pos : pos + 2], "big")
        if b"\xc0\xa8" not in data[pos + 2 : suites_end]:
            raise AssertionError("no PSK CCM_8 suite offered")
        pos = suites_end + 1 + data[suites_end]
        end = len(data)
        pos += 2
        seen: set[int] = set()
        ems = False
        while pos < end:
            ext_type = int.from_bytes(data[pos : pos + 2], "big")
            if ext_type in seen:
                raise AssertionError("duplicate extension")
            seen.add(ext_type)
            ems = ems or ext_type == 23
            pos += 4 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if not ems:
            raise AssertionError("no extended master secret")
        transcript = hashlib.sha256(data[13:])
        randoms = os.urandom(64)
        server_random, session_id = randoms[:32], randoms[32:]
        hello = (
            b"\xfe\xfd" + server_random + b"\x20" + session_id + b"\xc0\xa8\x00"
        ) + SERVER_HELLO_EXTENSIONS
        message = struct.pack("!IHHI", (2 << 24) | len(hello), 1, 0, len(hello)) + hello
        transcript.update(message)
        transcript.update(SERVER_HELLO_DONE)
        reply = (
            b"\x16\xfe\xfd"
            + bytes(7)
            + b"\x01"
            + len(message).to_bytes(2, "big")
            + message
            + b"\x16\xfe\xfd"
            + bytes(7)
            + b"\x02\x00\x0c"
            + SERVER_HELLO_DONE
        )
        connection = None
        window0 = window1 = None
        if state is not None:
            connection = DtlsConnection(
                configuration=state.configuration,
                credentials=state.credentials,
                session_cache=state.cache,
            )
            state.by_address[address] = connection
            state.addresses[connection] = address
            state.queued[connection] = (0.0, (0, -1))
            window0 = ReplayWindow()
            window0.mark(int.from_bytes(data[5:11], "big"))
            state.flights[connection] = [
                OutgoingMessage(22, 0, 2, 1, hello),
                OutgoingMessage(22, 0, 14, 2, b""),
            ]
            state.outgoing.append((reply, address))
            state.timers[connection] = 1.0
            incoming = yield state.take(), [], False
        else:
            incoming = yield [reply], [], False
        # Flight 5: ClientKeyExchange, ChangeCipherSpec, Finished; ChangeCipherSpec, Finished.
        data = b"".join(incoming)
        key_exchange_end = 13 + int.from_bytes(data[11:13], "big")
        key_exchange = data[13:key_exchange_end]
        identity = key_exchange[14:]
        transcript.update(key_exchange)
        finished = data[key_exchange_end + 14 :]
        session_hash = transcript.copy().digest()
        if state is not None:
            assert window0 is not None
            assert connection is not None
            window0.mark(int.from_bytes(data[5:11], "big"))
            window0.mark(int.from_bytes(data[key_exchange_end + 5 : key_exchange_end + 11], "big"))
            store = state.credentials.psk_store
            assert store is not None
            credential = store.lookup(identity)
            assert credential is not None
            master = credential.derive_master_secret(b"extended master secret", session_hash)
            master_mac = HmacSha256(master)
            read, write = create_protections(
                SUITE, master_mac, client_random, server_random, is_client=False
            )
            window1 = ReplayWindow()
            opened = read.decrypt(RawRecord(22, 0xFEFD, 1, 0, b"", finished[13:]))
            assert opened is not None
            plaintext = opened[1]
            window1.mark(0)
        else:
            psk = harness.PSK
            n = len(psk)
            premaster = n.to_bytes(2, "big") + bytes(n) + n.to_bytes(2, "big") + psk
            master = prf(premaster, b"extended master secret", session_hash, 48)
            master_mac = HmacSha256(master)
            block = prf(master_mac, b"key expansion", server_random + client_random, 40)
            aad = finished[3:11] + b"\x16\xfe\xfd" + (len(finished) - 29).to_bytes(2, "big")
            plaintext = AESCCM(block[:16], 8).decrypt(
                block[32:36] + finished[13:21], finished[21:], aad
            )
        client_verify = prf(master_mac, b"client finished", transcript.digest(), 12)
        if plaintext[12:] != client_verify:
            raise AssertionError("client Finished does not verify")
        transcript.update(plaintext)
        verify_data = prf(master_mac, b"server finished", transcript.digest(), 12)
        message = bytes.fromhex("1400000c000300000000000c") + verify_data
        if state is not None:
            assert connection is not None
            record = write.encrypt(22, 0xFEFD, 1, 0, message)
            state.flights[connection] = [
                OutgoingMessage(20, 0, 0, 0, b"\x01"),
                OutgoingMessage(22, 1, 20, 3, message),
            ]
            identity_object = PskIdentity(identity)
            session = DtlsSession(session_id, SUITE, master, True, identity_object, False)
            state.cache.put(session)
            completed = HandshakeCompleted(SUITE, identity_object, False, True)
            state.events.append(ServerEvent(address, connection, completed))
            state.outgoing.append((CHANGE_CIPHER_SPEC + record, address))
            state.timers.pop(connection, None)
            yield state.take(), [], True
            # untimed: forget the connection so that the maps do not grow
            del state.by_address[address], state.addresses[connection]
            del state.queued[connection], state.flights[connection]
        else:
            header = b"\x00\x01\x00\x00\x00\x00\x00\x00"
            aad = header + b"\x16\xfe\xfd\x00\x18"
            sealed = AESCCM(block[16:32], 8).encrypt(block[36:40] + header, message, aad)
            length = (8 + len(sealed)).to_bytes(2, "big")
            yield (
                [CHANGE_CIPHER_SPEC + b"\x16\xfe\xfd" + header + length + header + sealed],
                [],
                True,
            )
        while True:
            yield [], [], True

    return serve


def opcodes_per_flight(new_client: Callable[[], Any], serve: Serve) -> list[int]:
    """Python bytecode instructions the server executes per client flight (one handshake)."""
    count = Counter[int]()
    flight = [0]  # the client flight being served

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "opcode":
            count[flight[0]] += 1
        return local

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        frame.f_trace_opcodes = True
        return local

    for n in (1, 2):  # the first handshake warms caches and specialisation
        count.clear()
        client = new_client()
        server = serve(n)
        next(server)
        outgoing, client_done = client.step([])
        for step in range(20):
            flight[0] = step
            sys.settrace(trace)
            try:
                replies, _, server_done = server.send(outgoing)
            finally:
                sys.settrace(None)
            if client_done and server_done:
                break
            outgoing, client_done = client.step(replies)
        server.close()
    return [count[i] for i in sorted(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each rate")
    seconds = parser.parse_args().seconds
    contexts = harness.mbedtls_contexts("psk", harness.make_pki())
    if contexts is None:
        raise SystemExit("python-mbedtls is not installed (pip install -e '.[bench]')")
    tls, client_context, server_context = contexts

    def new_client() -> harness.MbedtlsClient:
        return harness.MbedtlsClient(client_context, tls)

    servers: dict[str, Callable[[], Serve]] = {
        "mbedtls": lambda: harness.mbedtls_server_handshakes(tls, server_context),
        "floor": lambda: floor_server(objects=False),
        "floor_objects": lambda: floor_server(objects=True),
        "ours": lambda: harness.our_server_handshakes(harness.psk_setup()[2]),
    }
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    rates: dict[str, float] = {}
    for name, make in servers.items():
        flights: list[float] = []
        rates[name] = harness.server_rate(new_client, make(), seconds, flights)
        results[f"{name}_psk_handshakes_per_s"] = round(rates[name], 1)
        results[f"{name}_server_flight_us"] = flights
    for name, make in servers.items():
        if name != "mbedtls":
            results[f"{name}_vs_mbedtls"] = round(rates[name] / rates["mbedtls"], 2)
            results[f"{name}_opcodes_per_flight"] = opcodes_per_flight(new_client, make())
    results["ours_opcodes_vs_floor"] = round(
        sum(results["ours_opcodes_per_flight"]) / sum(results["floor_opcodes_per_flight"]), 2
    )
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    harness.print_results(results)


if __name__ == "__main__":
    main()
