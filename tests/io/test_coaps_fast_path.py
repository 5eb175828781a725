"""The record fast path of :class:`~lwm2m.io.coaps.DtlsSecurityLayer` (no sockets, no loop).

Established sessions of both roles exchange records through ``DtlsConnection.open_record`` and
``seal`` (never ``receive_datagram``/``send``); a Connection-ID record to a server session goes
through ``DtlsServer.open_record`` from the session's current address, and through the general
path from a new one, which moves the session only after the record authenticated (RFC 9146 §6).
Replays and tampered records deliver nothing.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from lwm2m.dtls import DtlsConnection, DtlsCredentials, SoftwarePsk, SoftwarePskStore
from lwm2m.io.coaps import DtlsLayerConfig, DtlsSecurityLayer, SessionKey

IDENTITY = b"urn:dev:ops:fast-path"
KEY = os.urandom(16)
SERVER = ("127.0.0.1", 5684)
CLIENT = ("127.0.0.1", 40000)


def layers(cid_length: int) -> tuple[DtlsSecurityLayer, DtlsSecurityLayer]:
    server = DtlsSecurityLayer(
        server_credentials=DtlsCredentials(psk_store=SoftwarePskStore({IDENTITY: KEY})),
        config=DtlsLayerConfig(server_connection_id_length=cid_length),
    )
    client = DtlsSecurityLayer(client_credentials=DtlsCredentials(psk=SoftwarePsk(IDENTITY, KEY)))
    return client, server


def to_server(
    client: DtlsSecurityLayer,
    server: DtlsSecurityLayer,
    datagrams: list[tuple[bytes, Any]],
    at: Any,
) -> list[tuple[bytes, Any]]:
    received = []
    for data, _ in datagrams:
        received += server.unprotect(data, at, 1.0)
    return received


def handshake(client: DtlsSecurityLayer, server: DtlsSecurityLayer) -> tuple[Any, Any]:
    """Handshake and a first request/response; (client's peer key, server's peer key)."""
    peer = client.connect(SERVER, 1.0)
    assert client.protect(b"first", peer, 1.0) == []  # queued while the handshake runs
    got: list[tuple[bytes, Any]] = []
    for _ in range(10):
        got += to_server(client, server, client.datagrams_to_send(1.0), CLIENT)
        for data, _ in server.datagrams_to_send(1.0):
            assert client.unprotect(data, SERVER, 1.0) == []
    ((payload, key),) = got
    assert payload == b"first"
    ((record, address),) = server.protect(b"reply", key, 1.0)
    assert address == CLIENT
    assert client.unprotect(record, SERVER, 1.0) == [(b"reply", peer)]
    return peer, key


class Counting:
    """Counts the general-path calls of every DtlsConnection."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = {"receive_datagram": 0, "send": 0}
        for name in self.calls:
            original = getattr(DtlsConnection, name)

            def counted(
                self_: DtlsConnection, *args: Any, _o: Any = original, _n: str = name
            ) -> Any:
                self.calls[_n] += 1
                return _o(self_, *args)

            monkeypatch.setattr(DtlsConnection, name, counted)


@pytest.mark.parametrize("cid_length", [0, 4])
def test_established_sessions_take_the_fast_path(
    cid_length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, server = layers(cid_length)
    peer, key = handshake(client, server)
    assert isinstance(key, SessionKey) == bool(cid_length)
    counting = Counting(monkeypatch)
    for i in range(20):
        request = f"request {i}".encode()
        ((record, address),) = client.protect(request, peer, 1.0)
        assert address == SERVER
        assert record[0] == (25 if cid_length else 23)
        assert server.unprotect(record, CLIENT, 1.0) == [(request, key)]
        assert server.unprotect(record, CLIENT, 1.0) == []  # a replay delivers nothing
        tampered = record[:-1] + bytes([record[-1] ^ 0x40])
        assert server.unprotect(tampered, CLIENT, 1.0) == []
        ((answer, address),) = server.protect(request[::-1], key, 1.0)
        assert address == CLIENT
        assert client.unprotect(answer, SERVER, 1.0) == [(request[::-1], peer)]
        assert client.unprotect(answer, SERVER, 1.0) == []
    assert counting.calls["send"] == 0
    # Only the replayed and tampered records reached the general path (which dropped them).
    assert counting.calls["receive_datagram"] == 20 * 3
    assert client.datagrams_to_send(1.0) == []
    assert server.datagrams_to_send(1.0) == []


def test_cid_record_from_a_new_address_moves_the_session_once_authenticated() -> None:
    client, server = layers(4)
    peer, key = handshake(client, server)
    moved = ("192.0.2.7", 999)
    ((record, _),) = client.protect(b"after rebinding", peer, 1.0)
    tampered = record[:-1] + bytes([record[-1] ^ 1])
    assert server.unprotect(tampered, moved, 1.0) == []
    assert server.address_of(key) == CLIENT
    assert server.unprotect(record, moved, 1.0) == [(b"after rebinding", key)]
    assert server.address_of(key) == moved
    assert server.peer_for(moved) is key
    # A replay from a third address moves nothing.
    assert server.unprotect(record, ("203.0.113.1", 1), 1.0) == []
    assert server.address_of(key) == moved
    # Replies follow the session; the fast path serves the new address.
    ((answer, address),) = server.protect(b"back", key, 1.0)
    assert address == moved
    assert client.unprotect(answer, SERVER, 1.0) == [(b"back", peer)]
    ((record, _),) = client.protect(b"next", peer, 1.0)
    assert server.unprotect(record, moved, 1.0) == [(b"next", key)]
    assert server.address_of(key) == moved
    # A newer authenticated record from the old address moves the session back.
    ((record, _),) = client.protect(b"back home", peer, 1.0)
    assert server.unprotect(record, CLIENT, 1.0) == [(b"back home", key)]
    assert server.address_of(key) == CLIENT


@pytest.mark.parametrize("cid_length", [0, 4])
def test_a_record_too_short_for_its_cipher_delivers_nothing(cid_length: int) -> None:
    """A well-framed record of the current epoch whose fragment cannot hold the explicit nonce
    and the tag: the fast path declines it, the general path drops it, nothing changes."""
    client, server = layers(cid_length)
    peer, key = handshake(client, server)
    ((record, _),) = client.protect(b"whole", peer, 1.0)
    start = 13 + cid_length  # the fragment follows the length field
    short = record[: start - 2] + (10).to_bytes(2, "big") + record[start : start + 10]
    assert server.unprotect(short, CLIENT, 1.0) == []
    assert server.unprotect(record, CLIENT, 1.0) == [(b"whole", key)]
    ((answer, _),) = server.protect(b"reply", key, 1.0)
    short = answer[:11] + (15).to_bytes(2, "big") + answer[13:28]
    assert client.unprotect(short, SERVER, 1.0) == []
    assert client.unprotect(answer, SERVER, 1.0) == [(b"reply", peer)]
