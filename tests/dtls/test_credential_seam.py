"""The credential seam (LwM2M-SCS-4): the engine never holds a long-term secret.

- A PSK credential whose key cannot be read (it drives an HMAC "token" that holds only the RFC
  4279 premaster form, as a PKCS#11 token does with four CKM_SHA256_HMAC C_Sign calls) completes
  handshakes in both roles, with and without the extended master secret.
- A memory scan walks every object reachable from the engine (connection, demultiplexer,
  handshake state, record protection), stopping at the credential objects, and never finds the
  raw PSK, nor its hex, at any point of a handshake or after it.
"""

from __future__ import annotations

import gc
import hmac
import types
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from lwm2m.dtls import (
    DtlsConfiguration,
    DtlsConnection,
    DtlsCredentials,
    PskCredential,
    PskStore,
    SigningKey,
    SoftwarePsk,
    SoftwarePskStore,
)
from lwm2m.dtls.prf import psk_premaster

from .helpers import PSK, PSK_IDENTITY, PSK_SUITES, Datagram, Link, dtls_server, psk_client


class HmacToken:
    """Stands in for a Secure Element: HMAC-SHA256 under a key that no attribute exposes."""

    __slots__ = ("_sign",)

    def __init__(self, premaster: bytes) -> None:
        def sign(data: bytes) -> bytes:
            return hmac.digest(premaster, data, "sha256")

        self._sign: Callable[[bytes], bytes] = sign

    def hmac_sha256(self, data: bytes) -> bytes:
        return self._sign(data)


class TokenPsk:
    """A PSK credential that only asks its token for HMACs (P_SHA256 with 48 output bytes)."""

    __slots__ = ("_identity", "_token")

    key_log_permitted = False

    def __init__(self, identity: bytes, token: HmacToken) -> None:
        self._identity = identity
        self._token = token

    @property
    def identity(self) -> bytes:
        return self._identity

    def derive_master_secret(self, label: bytes, seed: bytes) -> bytes:
        sign = self._token.hmac_sha256
        data = label + seed
        a1 = sign(data)
        a2 = sign(a1)
        return (sign(a1 + data) + sign(a2 + data))[:48]


class TokenStore:
    __slots__ = ("_credential",)

    def __init__(self, credential: TokenPsk) -> None:
        self._credential = credential

    def lookup(self, identity: bytes) -> PskCredential | None:
        return self._credential if identity == self._credential.identity else None


def token_psk() -> TokenPsk:
    # Provisioning converts the PSK once into its premaster form; the raw PSK is then gone.
    return TokenPsk(PSK_IDENTITY, HmacToken(psk_premaster(PSK)))


def test_token_credential_has_no_readable_psk() -> None:
    credential = token_psk()
    assert isinstance(credential, PskCredential)
    assert not hasattr(credential, "psk")
    assert all(
        not (isinstance(value, bytes) and PSK in value) for value in gc.get_referents(credential)
    )
    # Same derivation as the software credential.
    assert credential.derive_master_secret(b"master secret", b"seed") == SoftwarePsk(
        PSK_IDENTITY, PSK
    ).derive_master_secret(b"master secret", b"seed")


@pytest.mark.parametrize("suite", PSK_SUITES)
@pytest.mark.parametrize(
    ("client_token", "server_token"), [(True, True), (True, False), (False, True)]
)
def test_handshakes_with_unreadable_psk(suite: int, client_token: bool, server_token: bool) -> None:
    client_credential: PskCredential = (
        token_psk() if client_token else SoftwarePsk(PSK_IDENTITY, PSK)
    )
    store: PskStore = (
        TokenStore(token_psk()) if server_token else SoftwarePskStore({PSK_IDENTITY: PSK})
    )
    client = DtlsConnection(
        configuration=DtlsConfiguration(cipher_suites=(suite,)),
        credentials=DtlsCredentials(psk=client_credential),
    )
    link = Link(client, dtls_server(DtlsCredentials(psk_store=store)))
    link.run()
    done = link.completed(link.client_events)
    assert done is not None
    assert done.extended_master_secret
    assert link.exchange() == (b"ping", b"gnip")
    # Resumption works from the master secret alone.
    again = Link(psk_client(session=done.session), link.server, address=("10.9.9.9", 1))
    again.run()
    resumed = again.completed(again.server_events)
    assert resumed is not None
    assert resumed.session_resumed


# -- memory scan ----------------------------------------------------------------------------------

_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType)
_SEAM = (PskCredential, PskStore, SigningKey)


def reachable_secrets(roots: Iterable[object], *, stop_at_credentials: bool = True) -> list[str]:
    """Descriptions of reachable bytes/str objects that contain the raw PSK or its hex."""
    needles_bytes = (PSK, PSK.hex().encode(), PSK.hex().upper().encode())
    needles_text = (PSK.hex(), PSK.hex().upper())
    seen: set[int] = set()
    stack: list[Any] = list(roots)
    found: list[str] = []
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, bytes | bytearray | memoryview):
            data = bytes(obj)
            if any(n in data for n in needles_bytes):
                found.append(f"bytes of length {len(data)}")
            continue
        if isinstance(obj, str):
            if any(n in obj for n in needles_text):
                found.append("str")
            continue
        if isinstance(obj, _OPAQUE) or obj is None or isinstance(obj, int | float | bool):
            continue
        if stop_at_credentials and not isinstance(obj, type) and isinstance(obj, _SEAM):
            continue  # the Secure Component side of the seam
        stack.extend(gc.get_referents(obj))
    return found


def test_memory_scan_finds_a_planted_psk() -> None:
    """The scanner itself works: without the credential boundary the PSK is found."""
    client = psk_client()
    assert reachable_secrets([client], stop_at_credentials=False)
    assert reachable_secrets([{"k": [PSK + b"x"]}])
    assert reachable_secrets([(PSK.hex(),)])
    assert not reachable_secrets([client])


@pytest.mark.parametrize("suite", PSK_SUITES)
def test_engine_objects_never_hold_the_psk(suite: int) -> None:
    scans: list[str] = []
    link: Link

    def scan(datagram: Datagram) -> list[Datagram]:
        connections = list(link.server)
        handshakes = [c._handshake for c in [link.client, *connections]]
        scans.extend(reachable_secrets([link.client, link.server, *connections, *handshakes]))
        return [datagram]

    link = Link(psk_client(cipher_suites=(suite,)), dtls_server(), mutate=scan)
    link.run()
    assert link.completed(link.server_events) is not None
    assert link.exchange() == (b"ping", b"gnip")
    link.client.close()
    link.pump()
    assert len(link.sent) >= 8
    assert scans == []
    assert (
        reachable_secrets([link.client, link.server, link.client_events, link.server_events]) == []
    )
