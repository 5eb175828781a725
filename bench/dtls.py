"""DTLS engine benchmark (sans-IO, one process, in memory, no sockets).

What is measured:

- **Server-side handshake throughput** (the figures of issue #5, ``*_handshakes_per_s`` and the
  ``*_vs_mbedtls`` ratios): full handshakes per second of *server CPU time*. Both servers, our
  :class:`DtlsServer` and Mbed TLS 2.28's server through python-mbedtls (``wrap_buffers``), are
  driven by the same client, python-mbedtls's DTLS client (C code, so a cheap driver), over the
  same in-memory flights: ClientHello, HelloVerifyRequest, ClientHello with cookie, the server's
  flight, the client's key exchange + Finished, the server's Finished. ``time.process_time()``
  is read around the server calls only (ours: ``receive_datagram``, ``datagrams_to_send``,
  draining ``next_event``; Mbed TLS: creating the per-client context with its cookie parameter,
  ``receive_from_network``, stepping ``do_handshake`` and taking the output, including the
  session reset after its HelloVerifyRequest). The client's work is not counted. For PSK the
  two servers are measured in ``PAIRS`` interleaved pairs and the pair with the median ratio is
  reported (``psk_ratio_of_each_pair`` lists them all): the host is shared. Every
  handshake is a new client (new randoms, new cookie), and includes the stateless cookie round
  trip and the extended master secret. After each handshake our server is told to close the
  connection, outside the timed section, so the connection table does not grow. PSK is
  TLS_PSK_WITH_AES_128_CCM_8; ECDHE is TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 on P-256 with X.509
  chains and mutual authentication. Raw public keys (RFC 7250, which Mbed TLS 2.28 lacks) are
  measured on our server only, driven by our own client (still server time only).
- **Resumed PSK handshakes** (``psk_resumed_handshakes_per_s``, server CPU time as above): our
  client offering the session of an earlier full handshake (abbreviated handshake, RFC 5246
  §7.3, what the ``coaps`` layer does when it reconnects), our server resuming it from its
  session cache. No Mbed TLS figure: python-mbedtls offers no session resumption to drive.
- **Pair throughput** (``*_pair_handshakes_per_s``, for continuity with earlier reports): our
  client and our server against python-mbedtls's client and server, both ends in one process,
  wall-clock time of whole handshakes.
- Record protect/unprotect throughput, and the memory of an established server session
  (tracemalloc).
- **CoAP over DTLS** (``coaps_get_per_s``, ``plain_get_per_s``, ``get_vs_plain``): GET round trips
  per second through the asyncio :class:`~lwm2m.io.coap_endpoint.CoapEndpoint` with the
  :class:`~lwm2m.io.coaps.DtlsSecurityLayer` (TLS_PSK_WITH_AES_128_CCM_8), 64 requests in flight
  over 64 client endpoints, so 64 DTLS sessions, against the very same endpoints over plain UDP in
  the same run. The server runs in a separate process (multiprocessing, spawn), so client and
  server each get a core; the handshakes happen before the measured window. The two cases run
  in ``COAP_REPEATS`` interleaved pairs (plain, then coaps); ``get_vs_plain`` is the median of
  the pairs' ratios (``get_ratio_of_each_pair`` lists them), so that the host's drift from one
  pair to the next moves it less than a ratio of two separate medians; the rates and the server
  and client CPU per request (psutil) are medians.

Run: ``python bench/dtls.py [--seconds S] [--coap-only]``. The last output line is a JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import gc
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Run as ``python bench/dtls.py``, this directory comes first on sys.path, where bench/lwm2m.py
# would shadow the package: put the source tree first (as bench/coap.py does).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from lwm2m.dtls import (
    DtlsConfiguration,
    DtlsConnection,
    DtlsCredentials,
    DtlsServer,
    DtlsSession,
    HandshakeCompleted,
    RawPublicKeyVerifier,
    SoftwarePsk,
    SoftwarePskStore,
    SoftwareSigningKey,
    X509Verifier,
)
from lwm2m.dtls.constants import CipherSuite, ContentType
from lwm2m.dtls.record import create_protections, parse_datagram

#: Interleaved pairs of the PSK server comparison (the median pair is reported).
PAIRS = 5
PSK_ID = b"bench-client"
PSK = bytes(range(16))
CCM8_PSK = CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
CCM8_ECDHE = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8


def rate(work: Callable[[], None], seconds: float) -> float:
    """Calls per second of ``work`` over about ``seconds``."""
    work()  # warm-up
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        work()
        count += 1
    return count / elapsed


# -- our engine -----------------------------------------------------------------------------------


def our_handshake(
    client_config: DtlsConfiguration,
    client_creds: DtlsCredentials,
    server: DtlsServer,
    address: object,
) -> DtlsConnection:
    client = DtlsConnection(configuration=client_config, credentials=client_creds)
    client.connect(0.0)
    for _ in range(10):
        for datagram in client.datagrams_to_send(0.0):
            server.receive_datagram(datagram, address, 0.0)
        replies = server.datagrams_to_send(0.0)
        if not replies:
            break
        for datagram, _ in replies:
            client.receive_datagram(datagram, 0.0)
    assert isinstance(client.next_event(), HandshakeCompleted)
    while server.next_event() is not None:
        pass
    return client


def psk_setup() -> tuple[DtlsConfiguration, DtlsCredentials, DtlsServer]:
    server = DtlsServer(
        configuration=DtlsConfiguration(is_client=False, cipher_suites=(CCM8_PSK,)),
        credentials=DtlsCredentials(psk_store=SoftwarePskStore({PSK_ID: PSK})),
    )
    return (
        DtlsConfiguration(cipher_suites=(CCM8_PSK,)),
        DtlsCredentials(psk=SoftwarePsk(PSK_ID, PSK)),
        server,
    )


@dataclass
class Pki:
    ca: x509.Certificate
    server: x509.Certificate
    server_key: ec.EllipticCurvePrivateKey
    client: x509.Certificate
    client_key: ec.EllipticCurvePrivateKey


def make_pki() -> Pki:
    """A P-256 CA with a server leaf (DNS server.example) and a client leaf."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(cn: str, key: Any, issuer: Any, issuer_key: Any, ca: bool) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer.subject if issuer else name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
        )
        usage = dict.fromkeys(
            [
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "encipher_only",
                "decipher_only",
            ],
            False,
        )
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, **usage), True
        )
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = certificate("Bench CA", ca_key, None, ca_key, True)
    return Pki(
        ca,
        certificate("server.example", server_key, ca, ca_key, False),
        server_key,
        certificate("client.example", client_key, ca, ca_key, False),
        client_key,
    )


def ecdhe_setup(material: Any, raw: bool) -> tuple[DtlsConfiguration, DtlsCredentials, DtlsServer]:
    if raw:
        client_key, server_key = SoftwareSigningKey.generate(), SoftwareSigningKey.generate()
        client = DtlsCredentials(
            signing_key=client_key, peer_verifier=RawPublicKeyVerifier([server_key.public_key()])
        )
        server_creds = DtlsCredentials(
            signing_key=server_key, peer_verifier=RawPublicKeyVerifier([client_key.public_key()])
        )
    else:
        client = DtlsCredentials(
            signing_key=SoftwareSigningKey(material.client_key),
            certificate_chain=(material.client,),
            peer_verifier=X509Verifier(trust_anchors=(material.ca,), server_name="server.example"),
        )
        server_creds = DtlsCredentials(
            signing_key=SoftwareSigningKey(material.server_key),
            certificate_chain=(material.server,),
            peer_verifier=X509Verifier(trust_anchors=(material.ca,)),
        )
    server = DtlsServer(
        configuration=DtlsConfiguration(is_client=False, cipher_suites=(CCM8_ECDHE,)),
        credentials=server_creds,
    )
    return DtlsConfiguration(cipher_suites=(CCM8_ECDHE,)), client, server


def our_rate(setup: tuple[DtlsConfiguration, DtlsCredentials, DtlsServer], seconds: float) -> float:
    config, creds, server = setup
    counter = [0]

    def one() -> None:
        counter[0] += 1
        address = ("10.0.0.1", counter[0])
        client = our_handshake(config, creds, server, address)
        client.close()
        for datagram in client.datagrams_to_send(0.0):
            server.receive_datagram(datagram, address, 0.0)
        server.datagrams_to_send(0.0)
        while server.next_event() is not None:
            pass

    return rate(one, seconds)


# -- python-mbedtls -------------------------------------------------------------------------------


def mbedtls_rate(kind: str, material: Any, seconds: float) -> float | None:
    """Pair throughput of python-mbedtls: its client and server, wall clock."""
    contexts = mbedtls_contexts(kind, material)
    if contexts is None:
        return None
    tls, client_ctx, server_ctx = contexts

    def one() -> None:
        server = server_ctx.wrap_buffers()
        server.setcookieparam(b"10.0.0.1:1")
        client = client_ctx.wrap_buffers("server.example")
        client_done = server_done = False
        for _ in range(20):
            out, client_done = mbedtls_advance(client, tls)
            if out:
                server.receive_from_network(out)
            out, server_done = mbedtls_advance(server, tls, b"10.0.0.1:1")
            if out:
                client.receive_from_network(out)
            if client_done and server_done:
                return
        raise AssertionError("mbedtls handshake did not finish")

    return rate(one, seconds)


# -- server-side throughput ----------------------------------------------------------------------


class HandshakeDriver(Protocol):
    """One client handshake, flight by flight: ``step(incoming)`` returns the datagrams the
    client sends next and whether the client finished."""

    def step(self, incoming: list[bytes]) -> tuple[list[bytes], bool]: ...


def mbedtls_take(buffer: Any) -> bytes:
    data = buffer.peek_outgoing(65536) or b""
    if data:
        buffer.consume_outgoing(len(data))
    return bytes(data)


def mbedtls_advance(buffer: Any, tls: Any, cookie: bytes | None = None) -> tuple[bytes, bool]:
    """Step an Mbed TLS handshake until it needs input: ``(output, finished)``."""
    out = b""
    while True:
        if buffer._handshake_state is tls.HandshakeStep.HANDSHAKE_OVER:
            return out + mbedtls_take(buffer), True
        try:
            buffer.do_handshake()
        except tls.WantReadError:
            return out + mbedtls_take(buffer), False
        except tls.WantWriteError:
            pass
        except tls.HelloVerifyRequest:
            out += mbedtls_take(buffer)
            buffer._reset()
            buffer.setcookieparam(cookie)
            return out, False
        out += mbedtls_take(buffer)


class MbedtlsClient:
    """python-mbedtls's DTLS client as a driver."""

    def __init__(self, context: Any, tls: Any) -> None:
        self._buffer = context.wrap_buffers("server.example")
        self._tls = tls

    def step(self, incoming: list[bytes]) -> tuple[list[bytes], bool]:
        for datagram in incoming:
            self._buffer.receive_from_network(datagram)
        out, done = mbedtls_advance(self._buffer, self._tls)
        return ([out] if out else []), done


class OurClient:
    """Our DtlsConnection as a driver (for raw public keys, which Mbed TLS 2.28 lacks)."""

    def __init__(
        self, config: DtlsConfiguration, creds: DtlsCredentials, *, expect_resumed: bool = False
    ) -> None:
        self._connection = DtlsConnection(configuration=config, credentials=creds)
        self._started = False
        self._expect_resumed = expect_resumed
        self.session: DtlsSession | None = None

    def step(self, incoming: list[bytes]) -> tuple[list[bytes], bool]:
        connection = self._connection
        if not self._started:
            connection.connect(0.0)
            self._started = True
        for datagram in incoming:
            connection.receive_datagram(datagram, 0.0)
        done = False
        while (event := connection.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                done = True
                self.session = event.session
                if self._expect_resumed and not event.session_resumed:
                    raise AssertionError("the server did not resume the session")
        return connection.datagrams_to_send(0.0), done


def server_rate(
    new_client: Callable[[], HandshakeDriver],
    serve: Callable[[int], Iterator[tuple[list[bytes], list[bytes], bool]]],
    seconds: float,
    per_flight: list[float] | None = None,
) -> float:
    """Handshakes per second of server CPU time.

    ``serve(n)`` is a generator for handshake ``n``: sent the client's datagrams, it yields
    ``(server datagrams, [], server finished)``; only its own work is timed. ``per_flight``,
    when given, receives the mean server CPU time in µs of each client flight handled, in
    order: the ClientHello answered with a HelloVerifyRequest, the ClientHello with the cookie,
    the key exchange with Finished, and what follows.
    """
    clock = time.process_time
    server_time = 0.0
    flights = [0.0] * 20
    count = 0
    start = time.perf_counter()
    n = 0
    while True:
        n += 1
        client = new_client()
        server = serve(n)
        next(server)
        outgoing, client_done = client.step([])
        server_done = False
        for step in range(20):
            t0 = clock()
            replies, _, server_done = server.send(outgoing)
            spent = clock() - t0
            server_time += spent
            flights[step] += spent
            if client_done and server_done:
                break
            outgoing, client_done = client.step(replies)
        else:
            raise AssertionError("handshake did not finish")
        server.close()
        if n > 20:  # the first handshakes warm up caches and are not counted
            count += 1
            if time.perf_counter() - start >= seconds:
                if per_flight is not None:
                    per_flight[:] = [round(t / count * 1e6, 1) for t in flights if t]
                return count / server_time
        else:
            server_time = 0.0
            flights = [0.0] * 20
            start = time.perf_counter()


def our_server_handshakes(
    server: DtlsServer,
) -> Callable[[int], Iterator[tuple[list[bytes], list[bytes], bool]]]:
    def serve(n: int) -> Iterator[tuple[list[bytes], list[bytes], bool]]:
        address = ("10.0.0.1", n)
        done = False
        incoming: list[bytes] = yield [], [], False
        try:
            while True:
                for datagram in incoming:
                    server.receive_datagram(datagram, address, 0.0)
                replies = [datagram for datagram, _ in server.datagrams_to_send(0.0)]
                while (event := server.next_event()) is not None:
                    done = done or isinstance(event.event, HandshakeCompleted)
                incoming = yield replies, [], done
        finally:  # untimed: forget the connection so that the table does not grow
            server.close(address)
            server.datagrams_to_send(0.0)
            while server.next_event() is not None:
                pass

    return serve


def mbedtls_contexts(kind: str, material: Pki) -> tuple[Any, Any, Any] | None:
    """``(tls module, client context, server context)`` of python-mbedtls, or None."""
    try:
        from mbedtls import pk, tls
        from mbedtls import x509 as mbedtls_x509
    except ImportError:
        return None
    der = serialization.Encoding.DER

    def key(k: Any) -> Any:
        return pk.ECC.from_DER(
            k.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )

    if kind == "psk":
        cipher = ["TLS-PSK-WITH-AES-128-CCM-8"]
        server_conf = tls.DTLSConfiguration(
            pre_shared_key_store={PSK_ID.decode(): PSK}, ciphers=cipher, validate_certificates=False
        )
        client_conf = tls.DTLSConfiguration(
            pre_shared_key=(PSK_ID.decode(), PSK), ciphers=cipher, validate_certificates=False
        )
    else:
        cipher = ["TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8"]
        trust = tls.TrustStore([mbedtls_x509.CRT.from_DER(material.ca.public_bytes(der))])

        def conf(cert: x509.Certificate, private: Any) -> Any:
            return tls.DTLSConfiguration(
                certificate_chain=(
                    (mbedtls_x509.CRT.from_DER(cert.public_bytes(der)),),
                    key(private),
                ),
                trust_store=trust,
                validate_certificates=True,
                ciphers=cipher,
            )

        server_conf = conf(material.server, material.server_key)
        client_conf = conf(material.client, material.client_key)
    return tls, tls.ClientContext(client_conf), tls.ServerContext(server_conf)


def mbedtls_server_handshakes(
    tls: Any, server_ctx: Any
) -> Callable[[int], Iterator[tuple[list[bytes], list[bytes], bool]]]:
    def serve(n: int) -> Iterator[tuple[list[bytes], list[bytes], bool]]:
        cookie = f"10.0.0.1:{n}".encode()
        incoming: list[bytes] = yield [], [], False
        # Timed from the first client flight on, like our server's connection set-up.
        server = server_ctx.wrap_buffers()
        server.setcookieparam(cookie)
        while True:
            for datagram in incoming:
                server.receive_from_network(datagram)
            out, done = mbedtls_advance(server, tls, cookie)
            incoming = yield ([out] if out else []), [], done

    return serve


def server_side_rates(material: Pki, seconds: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for kind, setup in (
        ("psk", psk_setup()),
        ("ecdhe_x509", ecdhe_setup(material, False)),
    ):
        contexts = mbedtls_contexts("psk" if kind == "psk" else "ecdhe", material)
        if contexts is None:
            config, creds, _ = setup
            ours = server_rate(
                lambda c=config, k=creds: OurClient(c, k), our_server_handshakes(setup[2]), seconds
            )
            results[f"{kind}_handshakes_per_s"] = round(ours, 1)
            results[f"mbedtls_{kind}_handshakes_per_s"] = None
            results[f"{kind}_handshakes_vs_mbedtls"] = None
            continue
        tls, client_ctx, server_ctx = contexts

        def mbedtls_client(tls: Any = tls, ctx: Any = client_ctx) -> HandshakeDriver:
            return MbedtlsClient(ctx, tls)

        # PSK: PAIRS interleaved pairs (ours, then Mbed TLS), the median of their ratios, so
        # that a burst of load on a shared host moves the figure less than one pair would.
        pairs = PAIRS if kind == "psk" else 1
        runs: list[tuple[float, float, list[float], list[float]]] = []
        for _ in range(pairs):
            our_flights: list[float] = []
            their_flights: list[float] = []
            ours = server_rate(
                mbedtls_client, our_server_handshakes(setup[2]), seconds / pairs, our_flights
            )
            theirs = server_rate(
                mbedtls_client,
                mbedtls_server_handshakes(tls, server_ctx),
                seconds / pairs,
                their_flights,
            )
            runs.append((ours, theirs, our_flights, their_flights))
        runs.sort(key=lambda run: run[0] / run[1])
        ours, theirs, our_flights, their_flights = runs[(len(runs) - 1) // 2]  # the median pair
        results[f"{kind}_server_flight_us"] = our_flights
        results[f"mbedtls_{kind}_server_flight_us"] = their_flights
        results[f"{kind}_handshakes_per_s"] = round(ours, 1)
        results[f"mbedtls_{kind}_handshakes_per_s"] = round(theirs, 1)
        results[f"{kind}_handshakes_vs_mbedtls"] = round(ours / theirs, 2)
        if pairs > 1:
            results[f"{kind}_ratio_of_each_pair"] = [round(o / t, 2) for o, t, _, _ in runs]
    results["ecdhe_handshakes_vs_mbedtls"] = results.pop("ecdhe_x509_handshakes_vs_mbedtls")
    config, creds, server = ecdhe_setup(material, True)
    results["ecdhe_rpk_handshakes_per_s"] = round(
        server_rate(lambda: OurClient(config, creds), our_server_handshakes(server), seconds), 1
    )
    results["psk_resumed_handshakes_per_s"] = round(resumed_psk_rate(seconds), 1)
    return results


def resumed_psk_rate(seconds: float) -> float:
    """Abbreviated PSK handshakes per second of server CPU (see the module docstring)."""
    config, creds, server = psk_setup()
    first = OurClient(config, creds)
    serve = our_server_handshakes(server)
    steps = serve(0)  # one full handshake: the server caches its session
    next(steps)
    outgoing, client_done = first.step([])
    server_done = False
    while not (client_done and server_done):
        replies, _, server_done = steps.send(outgoing)
        outgoing, client_done = first.step(replies)
    steps.close()
    session = first.session
    assert session is not None
    resuming = dataclasses.replace(config, session=session)
    return server_rate(lambda: OurClient(resuming, creds, expect_resumed=True), serve, seconds)


# -- records and memory ---------------------------------------------------------------------------


def record_rates(seconds: float) -> dict[str, float]:
    results = {}
    for suite in (
        CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,
        CipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA256,
    ):
        _, write = create_protections(suite, bytes(48), b"c" * 32, b"s" * 32, is_client=True)
        read, _ = create_protections(suite, bytes(48), b"c" * 32, b"s" * 32, is_client=False)
        for size in (64, 1024):
            payload = bytes(size)
            seq = [0]

            def protect(payload: bytes = payload, write: Any = write, seq: list[int] = seq) -> None:
                seq[0] += 1
                write.encrypt(ContentType.APPLICATION_DATA, 0xFEFD, 1, seq[0], payload)

            wire = write.encrypt(ContentType.APPLICATION_DATA, 0xFEFD, 1, 1, payload)
            record = parse_datagram(wire)[0]

            def unprotect(record: Any = record, read: Any = read) -> None:
                read.decrypt(record)

            name = CipherSuite(suite).name.replace("TLS_PSK_WITH_", "").lower()
            results[f"protect_{name}_{size}B_per_s"] = round(rate(protect, seconds))
            results[f"unprotect_{name}_{size}B_per_s"] = round(rate(unprotect, seconds))
    return results


def bytes_per_session(sessions: int = 500) -> dict[str, float]:
    """Traced memory per established session: server side (connection, demultiplexer maps,
    session-cache entry) and, separately, client side. ``tracemalloc`` sees Python allocations
    only; key schedules inside ``cryptography``'s Rust objects are not counted."""
    config, creds, server = psk_setup()
    for n in range(50):  # warm-up: interpreter free lists and caches
        our_handshake(config, creds, server, ("warm", n))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(sessions):
        address = ("10.1.0.1", n)
        client = our_handshake(config, creds, server, address)
        # One datagram from the client shows it has the server's last flight, which the server
        # then releases (RFC 6347 §4.2.4); the client object is dropped.
        client.send(b"x")
        for datagram in client.datagrams_to_send(0.0):
            server.receive_datagram(datagram, address, 0.0)
        while server.next_event() is not None:
            pass
        del client
    gc.collect()
    server_bytes = (tracemalloc.get_traced_memory()[0] - before) / sessions
    tracemalloc.stop()
    assert len(server) == sessions + 50

    kept = []
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(sessions):
        _, _, lone_server = psk_setup()
        kept.append(our_handshake(config, creds, lone_server, ("10.2.0.1", n)))
        del lone_server
    gc.collect()
    client_bytes = (tracemalloc.get_traced_memory()[0] - before) / sessions
    tracemalloc.stop()
    return {
        "bytes_per_session": round(server_bytes),
        "bytes_per_client_connection": round(client_bytes),
        "sessions_measured": sessions,
    }


# -- CoAP over DTLS through the asyncio endpoint -----------------------------------------------

COAP_CONCURRENCY = 64
COAP_WARMUP = 0.3
COAP_REPEATS = 5
COAP_PAYLOAD = b"hello"


def coap_server_main(secure: bool, conn: Any) -> None:
    """A CoAP server endpoint (plain or DTLS-PSK) in this fresh process, until told to stop."""
    from lwm2m.coap import Code, Message
    from lwm2m.io.coap_endpoint import CoapEndpoint, Site
    from lwm2m.io.coaps import DtlsSecurityLayer

    async def main() -> None:
        site = Site()
        site.add("/r", lambda request: Message(Code.CONTENT, COAP_PAYLOAD, content_format=0))
        security = None
        if secure:
            security = DtlsSecurityLayer(
                server_credentials=DtlsCredentials(psk_store=SoftwarePskStore({PSK_ID: PSK}))
            )
        endpoint = await CoapEndpoint.create(("127.0.0.1", 0), site=site, security=security)
        conn.send(endpoint.local_address[1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await endpoint.close()
        conn.close()

    asyncio.run(main())


async def coap_client_rate(
    port: int, secure: bool, seconds: float, server: Any
) -> tuple[float, float, float]:
    """GET rate with COAP_CONCURRENCY endpoints (one request in flight each), and server and
    client CPU microseconds per request."""
    import psutil

    from lwm2m.coap import Code, Message
    from lwm2m.io.coap_endpoint import CoapEndpoint
    from lwm2m.io.coaps import DtlsSecurityLayer

    me = psutil.Process()
    remote = ("127.0.0.1", port)
    endpoints = []
    for _ in range(COAP_CONCURRENCY):
        security = None
        if secure:
            security = DtlsSecurityLayer(
                client_credentials=DtlsCredentials(psk=SoftwarePsk(PSK_ID, PSK)),
                config=None,
            )
        endpoints.append(await CoapEndpoint.create(security=security))
    # Handshakes (and the first exchange) before the measured window.
    await asyncio.gather(
        *(ep.request(Message(Code.GET, uri_path=("r",)), remote) for ep in endpoints)
    )
    counter = [0]
    stop = [False]

    async def worker(endpoint: Any) -> None:
        request = endpoint.request
        while not stop[0]:
            response = await request(Message(Code.GET, uri_path=("r",)), remote)
            assert response.payload == COAP_PAYLOAD
            counter[0] += 1

    def cpu(process: Any) -> float:
        times = process.cpu_times()
        return float(times.user + times.system)

    tasks = [asyncio.create_task(worker(ep)) for ep in endpoints]
    try:
        await asyncio.sleep(COAP_WARMUP)
        c0, s0, o0, t0 = counter[0], cpu(server), cpu(me), time.perf_counter()
        await asyncio.sleep(seconds)
        c1, s1, o1, t1 = counter[0], cpu(server), cpu(me), time.perf_counter()
    finally:
        stop[0] = True
        await asyncio.wait(tasks, timeout=10)
        for endpoint in endpoints:
            await endpoint.close()
    ops = max(c1 - c0, 1)
    return (c1 - c0) / (t1 - t0), (s1 - s0) / ops * 1e6, (o1 - o0) / ops * 1e6


def coap_case(secure: bool, seconds: float) -> tuple[float, float, float]:
    import psutil

    ctx = mp.get_context("spawn")
    conn, child = ctx.Pipe()
    process = ctx.Process(target=coap_server_main, args=(secure, child), daemon=True)
    process.start()
    try:
        port = conn.recv()
        server = psutil.Process(process.pid)
        return asyncio.run(coap_client_rate(port, secure, seconds, server))
    finally:
        conn.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


def coap_rates(seconds: float) -> dict[str, Any]:
    """CoAP GET over DTLS against plain UDP: interleaved pairs, the median pair ratio."""
    samples: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    for _ in range(COAP_REPEATS):
        for secure in (False, True):
            sample = coap_case(secure, seconds)
            samples[secure].append(sample)
            name = "coaps" if secure else "plain"
            print(
                f"{name} GET {COAP_CONCURRENCY} in flight: {sample[0]:,.0f}/s, server "
                f"{sample[1]:.0f} µs/req, client {sample[2]:.0f} µs/req",
                flush=True,
            )
    results: dict[str, Any] = {}
    for secure, name in ((False, "plain"), (True, "coaps")):
        runs = samples[secure]
        results[f"{name}_get_per_s"] = round(statistics.median(r[0] for r in runs))
        results[f"{name}_get_server_us"] = round(statistics.median(r[1] for r in runs), 1)
        results[f"{name}_get_client_us"] = round(statistics.median(r[2] for r in runs), 1)
        results[f"{name}_get_runs"] = [round(r[0]) for r in runs]
    ratios = [
        coaps[0] / plain[0] for plain, coaps in zip(samples[False], samples[True], strict=True)
    ]
    results["get_vs_plain"] = round(statistics.median(ratios), 2)
    results["get_ratio_of_each_pair"] = sorted(round(r, 2) for r in ratios)
    results["coap_concurrency"] = COAP_CONCURRENCY
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each rate")
    parser.add_argument(
        "--coap-only", action="store_true", help="only the CoAP-over-DTLS GET comparison"
    )
    args = parser.parse_args()
    seconds = args.seconds
    material = make_pki()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    if args.coap_only:
        results.update(coap_rates(seconds))
        print(json.dumps(results))
        return
    results.update(server_side_rates(material, seconds))
    # Pair throughput: both ends in one process, wall clock (the figures reported before the
    # server-side measurement).
    results["psk_pair_handshakes_per_s"] = round(our_rate(psk_setup(), seconds / 2), 1)
    results["ecdhe_x509_pair_handshakes_per_s"] = round(
        our_rate(ecdhe_setup(material, False), seconds / 2), 1
    )
    mbedtls_psk = mbedtls_rate("psk", material, seconds / 2)
    mbedtls_ecdhe = mbedtls_rate("ecdhe", material, seconds / 2)
    results["mbedtls_psk_pair_handshakes_per_s"] = round(mbedtls_psk, 1) if mbedtls_psk else None
    results["mbedtls_ecdhe_x509_pair_handshakes_per_s"] = (
        round(mbedtls_ecdhe, 1) if mbedtls_ecdhe else None
    )
    results.update(record_rates(seconds / 4))
    results.update(bytes_per_session())
    results.update(coap_rates(seconds))
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print_results(results)


def print_results(results: dict[str, Any]) -> None:
    """One ``key  value`` line per figure, then the whole as one JSON line (the last line)."""
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    # Run through the importable module ``dtls`` (this file, from sys.path) so that the spawned
    # server processes unpickle their target from it rather than from ``__mp_main__`` (as
    # bench/coap.py does).
    import dtls

    dtls.main()
