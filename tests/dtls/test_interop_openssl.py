"""Interop with OpenSSL's command line over loopback UDP: ``openssl s_server -dtls1_2`` with our
client and ``openssl s_client -dtls1_2`` with our server, for PSK (CCM_8 and CBC-SHA256) and
ECDHE-ECDSA with X.509 and client certificates. Each exchange is bounded by timeouts.

A missing ``openssl`` binary skips on a developer machine and fails under CI=true.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from lwm2m.dtls import (
    ApplicationData,
    CertificateIdentity,
    ConnectionState,
    DtlsConfiguration,
    DtlsConnection,
    DtlsServer,
    HandshakeCompleted,
    PskIdentity,
)

from .helpers import (
    PSK,
    PSK_IDENTITY,
    Pki,
    dtls_server,
    make_pki,
    psk_client,
    require,
    x509_client_credentials,
    x509_server_credentials,
)

pytestmark = pytest.mark.interop

OPENSSL = shutil.which("openssl")
DEADLINE = 8.0
CASES = {
    "psk-ccm8": ("PSK-AES128-CCM8", 0xC0A8),
    "psk-cbc": ("PSK-AES128-CBC-SHA256", 0x00AE),
    "ecdhe-ccm8": ("ECDHE-ECDSA-AES128-CCM8", 0xC0AE),
    "ecdhe-cbc": ("ECDHE-ECDSA-AES128-SHA256", 0xC023),
}


class OpenSsl:
    """An ``openssl`` child process whose output is collected by a thread."""

    def __init__(self, args: list[str]) -> None:
        assert OPENSSL is not None
        self.process = subprocess.Popen(
            [OPENSSL, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read1(4096):
            with self._lock:
                self._output += chunk

    @property
    def output(self) -> bytes:
        with self._lock:
            return bytes(self._output)

    def wait_for(self, needle: bytes, timeout: float = DEADLINE) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.output:
                return True
            if self.process.poll() is not None and needle not in self.output:
                time.sleep(0.05)
                return needle in self.output
            time.sleep(0.01)
        return False

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)
        self._reader.join(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture
def pem_files(tmp_path: Path, pki: Pki) -> dict[str, str]:
    pem = serialization.Encoding.PEM
    files = {}
    for name, item in [("ca", pki.ca), ("server", pki.server), ("client", pki.client)]:
        path = tmp_path / f"{name}.pem"
        path.write_bytes(item.public_bytes(pem))
        files[name] = str(path)
    for name, key in [("server_key", pki.server_key), ("client_key", pki.client_key)]:
        path = tmp_path / f"{name}.pem"
        path.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        files[name] = str(path)
    return files


@pytest.fixture
def udp_socket() -> Iterator[socket.socket]:
    require(OPENSSL is not None, "openssl command line tool")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    try:
        yield sock
    finally:
        sock.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _credentials_args(name: str, files: dict[str, str], *, server: bool) -> list[str]:
    cipher = CASES[name][0]
    if name.startswith("psk"):
        args = ["-psk", PSK.hex(), "-psk_identity", PSK_IDENTITY.decode(), "-cipher", cipher]
        return [*args, "-nocert"] if server else args
    if server:
        return [
            "-cert",
            files["server"],
            "-key",
            files["server_key"],
            "-CAfile",
            files["ca"],
            "-Verify",
            "1",
            "-cipher",
            cipher,
        ]
    return [
        "-cert",
        files["client"],
        "-key",
        files["client_key"],
        "-CAfile",
        files["ca"],
        "-verify_return_error",
        "-verify_hostname",
        "server.example",
        "-cipher",
        cipher,
    ]


def _drive_client(
    client: DtlsConnection, sock: socket.socket, until: float, wanted: type
) -> list[object]:
    """Run ``client`` over ``sock`` until an event of type ``wanted`` or a close."""
    events: list[object] = []
    while time.monotonic() < until:
        for datagram in client.datagrams_to_send(time.monotonic()):
            sock.send(datagram)
        try:
            client.receive_datagram(sock.recv(65536), time.monotonic())
        except TimeoutError:
            client.handle_timer(time.monotonic())
        while (event := client.next_event()) is not None:
            events.append(event)
        if client.state is ConnectionState.CLOSED or any(isinstance(e, wanted) for e in events):
            break
    for datagram in client.datagrams_to_send(time.monotonic()):
        sock.send(datagram)
    return events


@pytest.mark.parametrize("name", list(CASES))
def test_our_client_with_openssl_s_server(
    name: str, udp_socket: socket.socket, pem_files: dict[str, str], pki: Pki
) -> None:
    port = _free_port()
    peer = OpenSsl(
        [
            "s_server",
            "-dtls1_2",
            "-accept",
            f"127.0.0.1:{port}",
            "-naccept",
            "1",
            *_credentials_args(name, pem_files, server=True),
        ]
    )
    try:
        assert peer.wait_for(b"ACCEPT"), peer.output
        udp_socket.connect(("127.0.0.1", port))
        suite = CASES[name][1]
        if name.startswith("psk"):
            client = psk_client(cipher_suites=(suite,))
        else:
            client = DtlsConnection(
                configuration=DtlsConfiguration(cipher_suites=(suite,)),
                credentials=x509_client_credentials(pki, server_name="server.example"),
            )
        client.connect(time.monotonic())
        events = _drive_client(client, udp_socket, time.monotonic() + DEADLINE, HandshakeCompleted)
        done = next((e for e in events if isinstance(e, HandshakeCompleted)), None)
        assert done is not None, (events, peer.output)
        assert done.cipher_suite == suite
        assert done.extended_master_secret
        if name.startswith("ecdhe"):
            assert isinstance(done.peer_identity, CertificateIdentity)
        client.send(b"hello openssl\n")
        for datagram in client.datagrams_to_send(time.monotonic()):
            udp_socket.send(datagram)
        assert peer.wait_for(b"hello openssl"), peer.output
        peer.write(b"hello lwm2m\n")
        events = _drive_client(client, udp_socket, time.monotonic() + DEADLINE, ApplicationData)
        assert ApplicationData(b"hello lwm2m\n") in events, peer.output
        client.close()
        for datagram in client.datagrams_to_send(time.monotonic()):
            udp_socket.send(datagram)
    finally:
        peer.close()


@pytest.mark.parametrize("name", list(CASES))
def test_openssl_s_client_with_our_server(
    name: str, udp_socket: socket.socket, pem_files: dict[str, str], pki: Pki
) -> None:
    port = udp_socket.getsockname()[1]
    server: DtlsServer
    server = dtls_server() if name.startswith("psk") else dtls_server(x509_server_credentials(pki))
    peer = OpenSsl(
        [
            "s_client",
            "-dtls1_2",
            "-connect",
            f"127.0.0.1:{port}",
            "-quiet",
            *_credentials_args(name, pem_files, server=False),
        ]
    )
    try:
        events: list[object] = []
        address = None
        end = time.monotonic() + DEADLINE

        def serve_until(condition: object) -> None:
            nonlocal address
            while time.monotonic() < end and not condition():  # type: ignore[operator]
                try:
                    data, address = udp_socket.recvfrom(65536)
                    server.receive_datagram(data, address, time.monotonic())
                except TimeoutError:
                    server.handle_timer(time.monotonic())
                for datagram, to in server.datagrams_to_send(time.monotonic()):
                    udp_socket.sendto(datagram, to)  # type: ignore[arg-type]
                while (event := server.next_event()) is not None:
                    events.append(event.event)

        serve_until(lambda: any(isinstance(e, HandshakeCompleted) for e in events))
        done = next((e for e in events if isinstance(e, HandshakeCompleted)), None)
        assert done is not None, peer.output
        assert done.cipher_suite == CASES[name][1]
        assert done.extended_master_secret
        if name.startswith("psk"):
            assert done.peer_identity == PskIdentity(PSK_IDENTITY)
        else:
            assert isinstance(done.peer_identity, CertificateIdentity)
            assert done.peer_identity.common_name == "urn:imei:490154203237518"
        peer.write(b"hello lwm2m\n")
        serve_until(lambda: any(isinstance(e, ApplicationData) for e in events))
        assert ApplicationData(b"hello lwm2m\n") in events, peer.output
        server.send(address, b"hello openssl\n")
        for datagram, to in server.datagrams_to_send(time.monotonic()):
            udp_socket.sendto(datagram, to)  # type: ignore[arg-type]
        assert peer.wait_for(b"hello openssl"), peer.output
    finally:
        peer.close()
