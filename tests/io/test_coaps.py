"""CoAP over our DTLS between two of our endpoints on loopback (``lwm2m.io.coaps``): PSK, raw
public keys and X.509 with the identity reaching the handler; GET, PUT (Block1), Observe and
server-initiated requests over the session a client opened; handshake failures surfacing on the
pending request; close_notify; Connection IDs; blocking credentials in a worker thread; the NSS key
log; plain peers beside DTLS ones; the asynchronous PSK loader."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from dtls.helpers import Pki, make_pki
from lwm2m.coap import Code, Message, MessageType
from lwm2m.coap.errors import RequestFailedError
from lwm2m.dtls import (
    CertificateIdentity,
    CipherSuite,
    DtlsConfiguration,
    DtlsCredentials,
    DtlsSession,
    PskCredential,
    RawPublicKeyIdentity,
    RawPublicKeyVerifier,
    SoftwarePsk,
    SoftwarePskStore,
    SoftwareSigningKey,
    X509Verifier,
)
from lwm2m.dtls.trust import spki_der
from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest, Site
from lwm2m.io.coap_transport import OutputFlagLayer, SecurityLayer, SessionLayer
from lwm2m.io.coaps import (
    DtlsLayerConfig,
    DtlsSecurityLayer,
    DtlsSessionError,
    PeerSecurity,
    SessionKey,
    transport_identity,
)

TIMEOUT = 5.0
IDENTITY = b"urn:dev:ops:test-1"
KEY = os.urandom(16)


class Resources:
    """A site that records requests and exposes an observable resource."""

    def __init__(self) -> None:
        self.requests: list[CoapRequest] = []
        self.uploads: list[bytes] = []
        self.observed = asyncio.Event()
        self.site = Site()
        self.site.add("/who", self.who)
        self.site.add("/up", self.upload)
        self.site.add("/obs", self.observable)

    def who(self, request: CoapRequest) -> Message:
        self.requests.append(request)
        identity = request.peer_identity
        assert identity is not None
        value = identity.value
        text = value if isinstance(value, str) else value.hex()
        return Message(Code.CONTENT, f"{identity.kind}:{text}".encode())

    def upload(self, request: CoapRequest) -> Message:
        self.uploads.append(request.payload)
        return Message(Code.CHANGED)

    def observable(self, request: CoapRequest) -> Message:
        self.observed.set()
        return Message(Code.CONTENT, b"v0", observe=0)


class CheckedLayer(DtlsSecurityLayer):
    """A DtlsSecurityLayer that checks the ``output_pending`` contract every time the endpoint
    reads the flag: while it is False, ``datagrams_to_send`` has nothing and ``get_timer`` would
    return what it returned last (the endpoint skips both calls then)."""

    quiet_reads = 0

    @property  # type: ignore[override]
    def output_pending(self) -> bool:
        flag: bool = self._flag
        if not flag:
            CheckedLayer.quiet_reads += 1
            server = self._server
            assert not self._out
            assert server is None or not server._outgoing
            assert not self._server_timer_dirty
            assert not self._client_timer_dirty
            fresh = [t for t in (server and server.get_timer(), *self._timers.values()) if t]
            assert min(fresh, default=None) == self._last
        return flag

    @output_pending.setter
    def output_pending(self, value: bool) -> None:
        self._flag = value

    def get_timer(self) -> float | None:
        self._last = deadline = super().get_timer()
        return deadline


def psk_server(**layer: Any) -> DtlsSecurityLayer:
    return CheckedLayer(
        server_credentials=DtlsCredentials(psk_store=SoftwarePskStore({IDENTITY: KEY})), **layer
    )


def psk_client(key: bytes = KEY, identity: bytes = IDENTITY, **layer: Any) -> DtlsSecurityLayer:
    return CheckedLayer(client_credentials=DtlsCredentials(psk=SoftwarePsk(identity, key)), **layer)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[CoapEndpoint, CoapEndpoint, Resources]]:
    resources = Resources()
    async with (
        await CoapEndpoint.create(site=resources.site, security=psk_server()) as server,
        await CoapEndpoint.create(site=Resources().site, security=psk_client()) as client,
    ):
        yield server, client, resources


def get(path: str) -> Message:
    return Message(Code.GET, uri_path=path)


async def test_psk_get_put_observe_and_identity(
    pair: tuple[CoapEndpoint, CoapEndpoint, Resources],
) -> None:
    server, client, resources = pair
    assert isinstance(server.security, SessionLayer)
    assert isinstance(server.security, SecurityLayer)
    assert isinstance(server.security, OutputFlagLayer)
    quiet = CheckedLayer.quiet_reads
    remote = server.local_address
    # several requests before the handshake completed: queued, then released in order
    responses = await asyncio.wait_for(
        asyncio.gather(*(client.request(get("/who"), remote) for _ in range(3))), TIMEOUT
    )
    assert {r.payload for r in responses} == {b"psk:" + IDENTITY.hex().encode()}
    identity = resources.requests[0].peer_identity
    assert identity is not None
    assert identity.kind == "psk"
    assert identity.value == IDENTITY
    assert resources.requests[0].remote == client.local_address  # keyed by address (no CID)
    result = client.security.handshake_result(remote)  # type: ignore[attr-defined]
    assert result is not None
    assert result.cipher_suite == CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
    seen = client.security.peer_identity(remote)  # the server proved it holds that PSK
    assert seen is not None
    assert (seen.kind, seen.value) == ("psk", IDENTITY)
    # PUT with Block1 (5 kB in 1 kB blocks, each in its own record)
    body = os.urandom(5000)
    changed = await asyncio.wait_for(
        client.request(Message(Code.PUT, body, uri_path="/up"), remote), TIMEOUT
    )
    assert changed.code == Code.CHANGED
    assert resources.uploads == [body]
    # Observe
    observation = await asyncio.wait_for(client.observe(get("/obs"), remote), TIMEOUT)
    assert observation.response is not None
    assert observation.response.payload == b"v0"
    assert server.notify("/obs", Message(Code.CONTENT, b"v1")) == 1
    notification = await asyncio.wait_for(anext(aiter(observation)), TIMEOUT)
    assert notification.payload == b"v1"
    await asyncio.wait_for(observation.cancel(), TIMEOUT)
    assert server.observations() == []
    # the server reaches the client over the session the client opened (LwM2M downlink)
    back = await asyncio.wait_for(
        server.request(Message(Code.PUT, b"x", uri_path="/up"), resources.requests[0].remote),
        TIMEOUT,
    )
    assert back.code == Code.CHANGED
    assert client.security.stats.handshakes == 1  # type: ignore[attr-defined]
    assert server.security.stats.handshakes == 1  # type: ignore[attr-defined]
    assert CheckedLayer.quiet_reads > quiet  # the flag let the endpoints skip the layer


async def test_datagrams_of_one_flush_are_protected_each_and_requests_leave_no_state() -> None:
    """Two observers notified at once: the endpoint protects the engine's two datagrams of one
    flush (each for its own session). A finished request leaves no per-peer entry behind."""
    resources = Resources()
    async with (
        await CoapEndpoint.create(site=resources.site, security=psk_server()) as server,
        await CoapEndpoint.create(security=psk_client()) as first,
        await CoapEndpoint.create(security=psk_client()) as second,
    ):
        remote = server.local_address
        observations = [
            await asyncio.wait_for(client.observe(get("/obs"), remote), TIMEOUT)
            for client in (first, second)
        ]
        assert server.notify("/obs", Message(Code.CONTENT, b"v1")) == 2
        for observation in observations:
            notification = await asyncio.wait_for(anext(aiter(observation)), TIMEOUT)
            assert notification.payload == b"v1"
        response = await asyncio.wait_for(first.request(get("/who"), remote), TIMEOUT)
        assert response.code == Code.CONTENT
        assert first._pending == {}
        assert list(first._peer_of) == [observations[0].request_id]  # the observation only


async def test_wrong_psk_fails_the_request_at_once() -> None:
    wrong = os.urandom(16)
    async with (
        await CoapEndpoint.create(site=Resources().site, security=psk_server()) as server,
        await CoapEndpoint.create(security=psk_client(key=wrong)) as client,
    ):
        with pytest.raises(DtlsSessionError) as failure:
            await asyncio.wait_for(
                client.request(get("/who"), server.local_address), TIMEOUT
            )  # far below the CoAP timeout: the handshake failure ends it
        error = failure.value
        assert isinstance(error, RequestFailedError)
        assert "DTLS handshake with 127.0.0.1" in str(error)
        assert "decrypt_error" in str(error)
        assert error.by_peer
        for secret in (KEY, wrong):
            assert secret.hex() not in str(error)
            assert secret.hex() not in repr(error)
        assert client.security.stats.handshake_failures == 1  # type: ignore[attr-defined]
        # an unknown identity fails the same way
        async with await CoapEndpoint.create(security=psk_client(identity=b"nobody")) as stranger:
            with pytest.raises(DtlsSessionError, match="handshake"):
                await asyncio.wait_for(stranger.request(get("/who"), server.local_address), TIMEOUT)


async def test_handshake_timeout_fails_observation_and_request() -> None:
    quick = DtlsLayerConfig(
        dtls=DtlsConfiguration(initial_retransmit_timeout=0.05, max_retransmissions=2)
    )
    async with (
        await CoapEndpoint.create() as silent,  # plain CoAP: drops DTLS records
        await CoapEndpoint.create(security=psk_client(config=quick)) as client,
    ):
        observing = asyncio.create_task(client.observe(get("/obs"), silent.local_address))
        with pytest.raises(DtlsSessionError, match="handshake timeout"):
            await asyncio.wait_for(client.request(get("/who"), silent.local_address), TIMEOUT)
        with pytest.raises(DtlsSessionError):
            await asyncio.wait_for(observing, TIMEOUT)


def rpk_layers() -> tuple[DtlsSecurityLayer, DtlsSecurityLayer, SoftwareSigningKey]:
    client_key, server_key = SoftwareSigningKey.generate(), SoftwareSigningKey.generate()
    server = DtlsSecurityLayer(
        server_credentials=DtlsCredentials(
            signing_key=server_key,
            peer_verifier=RawPublicKeyVerifier(),  # any key: app decides
        )
    )
    client = DtlsSecurityLayer(
        client_credentials=DtlsCredentials(
            signing_key=client_key, peer_verifier=RawPublicKeyVerifier([server_key.public_key()])
        )
    )
    return server, client, client_key


def x509_layers(pki: Pki) -> tuple[DtlsSecurityLayer, DtlsSecurityLayer, None]:
    server = DtlsSecurityLayer(
        server_credentials=DtlsCredentials(
            signing_key=SoftwareSigningKey(pki.server_key),
            certificate_chain=(pki.server,),
            peer_verifier=X509Verifier(trust_anchors=(pki.ca,)),
        )
    )
    client = DtlsSecurityLayer(
        client_credentials=DtlsCredentials(
            signing_key=SoftwareSigningKey(pki.client_key),
            certificate_chain=(pki.client,),
            peer_verifier=X509Verifier(trust_anchors=(pki.ca,), server_name="server.example"),
        )
    )
    return server, client, None


@pytest.mark.parametrize("kind", ["rpk", "x509"])
async def test_certificate_kinds_carry_the_identity(kind: str) -> None:
    pki = make_pki()
    server_layer, client_layer, client_key = rpk_layers() if kind == "rpk" else x509_layers(pki)
    resources = Resources()
    async with (
        await CoapEndpoint.create(site=resources.site, security=server_layer) as server,
        await CoapEndpoint.create(security=client_layer) as client,
    ):
        response = await asyncio.wait_for(
            client.request(get("/who"), server.local_address), TIMEOUT
        )
        identity = resources.requests[0].peer_identity
        assert identity is not None
        assert identity.kind == kind
        if kind == "rpk":
            assert isinstance(client_key, SoftwareSigningKey)
            assert identity.value == spki_der(client_key.public_key())
            assert isinstance(identity.details, RawPublicKeyIdentity)
        else:
            assert identity.value == "urn:imei:490154203237518"  # the client's CN
            assert isinstance(identity.details, CertificateIdentity)
            assert identity.details.subject_alt_names == ("client.example",)
            assert response.payload == b"x509:urn:imei:490154203237518"
            seen = client.security.peer_identity(server.local_address)
            assert seen is not None
            assert seen.value == "server.example"
        result = client.security.handshake_result(server.local_address)  # type: ignore[attr-defined]
        assert result.cipher_suite == CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8


async def test_untrusted_server_certificate_fails_clearly() -> None:
    pki, other = make_pki(), make_pki()
    server_layer, _, _ = x509_layers(pki)
    _, client_layer, _ = x509_layers(other)  # trusts another CA
    async with (
        await CoapEndpoint.create(site=Resources().site, security=server_layer) as server,
        await CoapEndpoint.create(security=client_layer) as client,
    ):
        with pytest.raises(DtlsSessionError, match=r"trust anchor|unknown_ca"):
            await asyncio.wait_for(client.request(get("/who"), server.local_address), TIMEOUT)


async def test_close_notify_on_endpoint_close() -> None:
    resources = Resources()
    server_layer = psk_server()
    arrived = asyncio.Event()

    def hang(request: CoapRequest) -> asyncio.Future[Message]:
        arrived.set()
        return asyncio.get_running_loop().create_future()  # never answered

    client_site = Site()
    client_site.add("/hang", hang)
    async with await CoapEndpoint.create(site=resources.site, security=server_layer) as server:
        client = await CoapEndpoint.create(site=client_site, security=psk_client())
        await asyncio.wait_for(client.request(get("/who"), server.local_address), TIMEOUT)
        assert server_layer.session_count == 1
        peer = resources.requests[0].remote
        pending = asyncio.create_task(server.request(get("/hang"), peer))
        await asyncio.wait_for(arrived.wait(), TIMEOUT)
        await client.close()
        # the server learns of the close_notify: its pending request fails with it at once
        with pytest.raises(DtlsSessionError, match="close_notify"):
            await asyncio.wait_for(pending, TIMEOUT)
        assert server_layer.session_count == 0
        assert server_layer.peer_identity(peer) is None


async def test_connection_id_sessions_are_keyed_by_session() -> None:
    resources = Resources()
    server_layer = psk_server(config=DtlsLayerConfig(server_connection_id_length=4))
    async with (
        await CoapEndpoint.create(site=resources.site, security=server_layer) as server,
        await CoapEndpoint.create(site=Resources().site, security=psk_client()) as client,
    ):
        await asyncio.wait_for(client.request(get("/who"), server.local_address), TIMEOUT)
        key = resources.requests[0].remote
        assert isinstance(key, SessionKey)
        assert key != client.local_address  # a session, not an address
        assert tuple(key) == client.local_address
        assert server_layer.address_of(key) == client.local_address
        assert server_layer.peer_for(client.local_address) is key
        result = client.security.handshake_result(server.local_address)  # type: ignore[attr-defined]
        assert result is not None
        assert result.peer_connection_id is not None  # the client writes the server's CID
        back = await asyncio.wait_for(
            server.request(Message(Code.PUT, b"y", uri_path="/up"), key), TIMEOUT
        )
        assert back.code == Code.CHANGED


class BlockingPsk:
    """A PSK credential that blocks until released, like a token: proves the handshake step
    runs outside the event loop (run inline, it would deadlock the loop until its timeout)."""

    key_log_permitted = False

    def __init__(self, identity: bytes, key: bytes) -> None:
        self._psk = SoftwarePsk(identity, key)
        self.release = threading.Event()
        self.threads: list[int] = []
        self.loop = asyncio.get_running_loop()
        self.started = asyncio.Event()

    @property
    def identity(self) -> bytes:
        return self._psk.identity

    def derive_master_secret(self, label: bytes, seed: bytes) -> bytes:
        self.threads.append(threading.get_ident())
        self.loop.call_soon_threadsafe(self.started.set)
        if not self.release.wait(TIMEOUT):
            raise TimeoutError("not released")
        return self._psk.derive_master_secret(label, seed)


async def test_blocking_credentials_run_in_a_worker_thread() -> None:
    psk = BlockingPsk(IDENTITY, KEY)
    assert isinstance(psk, PskCredential)
    layer = DtlsSecurityLayer()
    async with (
        await CoapEndpoint.create(site=Resources().site, security=psk_server()) as server,
        await CoapEndpoint.create(security=layer) as client,
    ):
        layer.set_peer(server.local_address, PeerSecurity(DtlsCredentials(psk=psk), blocking=True))
        request = asyncio.create_task(client.request(get("/who"), server.local_address))
        # the loop keeps running while the credential blocks (inline it would deadlock)
        await asyncio.wait_for(psk.started.wait(), TIMEOUT)
        psk.release.set()
        response = await asyncio.wait_for(request, TIMEOUT)
    assert response.code == Code.CONTENT
    assert psk.threads
    assert threading.get_ident() not in psk.threads
    assert layer.stats.offloaded >= 1


class ForbiddenLog(SoftwarePsk):
    key_log_permitted = False


@pytest.mark.parametrize("permitted", [True, False])
async def test_key_log_only_for_software_credentials(tmp_path: Path, permitted: bool) -> None:
    log = tmp_path / "keys.log"
    psk = (SoftwarePsk if permitted else ForbiddenLog)(IDENTITY, KEY)
    layer = DtlsSecurityLayer(
        client_credentials=DtlsCredentials(psk=psk), config=DtlsLayerConfig(key_log_path=log)
    )
    async with (
        await CoapEndpoint.create(site=Resources().site, security=psk_server()) as server,
        await CoapEndpoint.create(security=layer) as client,
    ):
        await asyncio.wait_for(client.request(get("/who"), server.local_address), TIMEOUT)
    lines = log.read_text().splitlines()
    if permitted:
        assert len(lines) == 1
        label, client_random, master = lines[0].split()
        assert label == "CLIENT_RANDOM"
        assert len(bytes.fromhex(client_random)) == 32
        assert len(bytes.fromhex(master)) == 48
    else:
        assert lines == []


async def test_plain_peers_beside_dtls_and_no_plaintext_from_others() -> None:
    resources = Resources()
    mixed = psk_client()
    async with (
        await CoapEndpoint.create(site=resources.site) as plain_server,
        await CoapEndpoint.create(site=Resources().site, security=psk_server()) as dtls_server,
        await CoapEndpoint.create(site=resources.site, security=mixed) as client,
        await CoapEndpoint.create() as stranger,
    ):
        mixed.allow_plain(plain_server.local_address)
        plain = await asyncio.wait_for(
            client.request(Message(Code.PUT, b"p", uri_path="/up"), plain_server.local_address),
            TIMEOUT,
        )
        assert plain.code == Code.CHANGED
        secured = await asyncio.wait_for(
            client.request(get("/who"), dtls_server.local_address), TIMEOUT
        )
        assert secured.code == Code.CONTENT
        # the plain server may query the client in plain CoAP...
        answer = await asyncio.wait_for(
            plain_server.request(Message(Code.PUT, b"q", uri_path="/up"), client.local_address),
            TIMEOUT,
        )
        assert answer.code == Code.CHANGED
        # ...a stranger may not: its plaintext is dropped (NON: no retransmission to wait for)
        before = client.engine.stats.datagrams_received
        stray = asyncio.create_task(
            stranger.request(
                Message(Code.PUT, b"s", uri_path="/up", mtype=MessageType.NON),
                client.local_address,
            )
        )
        await asyncio.wait_for(
            client.request(get("/who"), dtls_server.local_address), TIMEOUT
        )  # a round trip later the stray datagram has long arrived
        assert client.engine.stats.datagrams_received == before + 1
        assert resources.uploads == [b"p", b"q"]
        stray.cancel()
        # without credentials for a remote there is no session to open
        with pytest.raises(DtlsSessionError, match="no client credentials"):
            DtlsSecurityLayer().connect(stranger.local_address, 0.0)


async def test_psk_loader_feeds_unknown_identities() -> None:
    loaded: list[bytes] = []
    resources = Resources()

    async def loader(identity: bytes) -> PskCredential | None:
        loaded.append(identity)
        await asyncio.sleep(0)  # a store round trip
        return SoftwarePsk(identity, KEY) if identity == b"late" else None

    layer = DtlsSecurityLayer(
        server_credentials=DtlsCredentials(psk_store=SoftwarePskStore()), psk_loader=loader
    )
    async with (
        await CoapEndpoint.create(site=resources.site, security=layer) as server,
        await CoapEndpoint.create(security=psk_client(identity=b"late")) as client,
        await CoapEndpoint.create(security=psk_client(identity=b"never")) as other,
    ):
        response = await asyncio.wait_for(
            client.request(get("/who"), server.local_address), TIMEOUT
        )
        assert response.payload == b"psk:" + b"late".hex().encode()
        with pytest.raises(DtlsSessionError):
            await asyncio.wait_for(other.request(get("/who"), server.local_address), TIMEOUT)
    assert loaded == [b"late", b"never"]


def test_identity_conversion() -> None:
    assert transport_identity(None) is None
    no_cn = CertificateIdentity((b"",), None, ("a.example",))
    converted = transport_identity(no_cn)
    assert converted is not None
    assert (converted.kind, converted.value) == ("x509", "a.example")
    key: Callable[[], Any] = SoftwareSigningKey.generate
    spki = spki_der(key().public_key())
    rpk = transport_identity(RawPublicKeyIdentity(spki))
    assert rpk is not None
    assert rpk.value == spki
    assert "spki" not in repr(rpk)  # the details stay out of the repr


def test_docstring_examples() -> None:
    import doctest

    import lwm2m.io.coaps

    result = doctest.testmod(lwm2m.io.coaps, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


async def test_reset_peer_opens_a_new_session(
    pair: tuple[CoapEndpoint, CoapEndpoint, Resources],
) -> None:
    server, client, resources = pair
    layer = client.security
    assert isinstance(layer, DtlsSecurityLayer)
    await asyncio.wait_for(client.request(get("/who"), server.local_address), TIMEOUT)
    layer.reset_peer(server.local_address)  # e.g. after a timeout: the server may have restarted
    assert layer.session_count == 0
    await asyncio.wait_for(client.request(get("/who"), server.local_address), TIMEOUT)
    assert layer.stats.handshakes == 2
    assert len(resources.requests) == 2
    # credentials changed for the remote: the session is replaced too
    layer.set_peer(
        server.local_address, PeerSecurity(DtlsCredentials(psk=SoftwarePsk(IDENTITY, KEY)))
    )
    await asyncio.wait_for(client.request(get("/who"), server.local_address), TIMEOUT)
    assert layer.stats.handshakes == 3
    layer.forget_peer(server.local_address)  # back to the default credentials
    assert layer.session_count == 0


async def test_a_new_session_to_the_same_server_resumes_the_last_one(
    pair: tuple[CoapEndpoint, CoapEndpoint, Resources],
) -> None:
    server, client, resources = pair
    layer, server_layer = client.security, server.security
    assert isinstance(layer, DtlsSecurityLayer)
    assert isinstance(server_layer, DtlsSecurityLayer)
    remote = server.local_address
    await asyncio.wait_for(client.request(get("/who"), remote), TIMEOUT)
    first = layer.handshake_result(layer.peer_for(remote))
    assert first is not None
    assert not first.session_resumed
    layer.reset_peer(remote)
    response = await asyncio.wait_for(client.request(get("/who"), remote), TIMEOUT)
    assert response.payload == b"psk:" + IDENTITY.hex().encode()  # identity kept by the session
    second = layer.handshake_result(layer.peer_for(remote))
    assert second is not None
    assert second.session_resumed
    assert (layer.stats.handshakes, layer.stats.resumed) == (2, 1)
    assert server_layer.stats.resumed == 1
    # other credentials for the remote: never the old session
    layer.set_peer(remote, PeerSecurity(DtlsCredentials(psk=SoftwarePsk(IDENTITY, KEY))))
    await asyncio.wait_for(client.request(get("/who"), remote), TIMEOUT)
    third = layer.handshake_result(layer.peer_for(remote))
    assert third is not None
    assert not third.session_resumed
    assert len(resources.requests) == 3


async def test_a_server_that_lost_the_session_answers_with_a_full_handshake() -> None:
    resources = Resources()
    async with (
        await CoapEndpoint.create(site=resources.site, security=psk_server()) as server,
        await CoapEndpoint.create(security=psk_client()) as client,
    ):
        layer = client.security
        assert isinstance(layer, DtlsSecurityLayer)
        remote = server.local_address
        await asyncio.wait_for(client.request(get("/who"), remote), TIMEOUT)
        server_layer = server.security
        assert isinstance(server_layer, DtlsSecurityLayer)
        demultiplexer = server_layer._server
        assert demultiplexer is not None
        demultiplexer.session_cache._sessions.clear()  # as after a server restart
        layer.reset_peer(remote)
        await asyncio.wait_for(client.request(get("/who"), remote), TIMEOUT)
        result = layer.handshake_result(layer.peer_for(remote))
        assert result is not None
        assert not result.session_resumed
        assert layer.stats.resumed == 0
        assert len(resources.requests) == 2


@pytest.mark.parametrize("setting", [{"resume_sessions": False}, {"max_resumable": 0}])
async def test_resumption_can_be_turned_off(setting: dict[str, Any]) -> None:
    async with (
        await CoapEndpoint.create(site=Resources().site, security=psk_server()) as server,
        await CoapEndpoint.create(security=psk_client(config=DtlsLayerConfig(**setting))) as client,
    ):
        layer = client.security
        assert isinstance(layer, DtlsSecurityLayer)
        for _ in range(2):
            await asyncio.wait_for(client.request(get("/who"), server.local_address), TIMEOUT)
            layer.reset_peer(server.local_address)
        assert (layer.stats.handshakes, layer.stats.resumed) == (2, 0)
        assert layer._resumable == {}


async def test_a_failed_handshake_forgets_the_resumable_session() -> None:
    store = SoftwarePskStore({IDENTITY: KEY})
    server_layer = DtlsSecurityLayer(server_credentials=DtlsCredentials(psk_store=store))
    async with (
        await CoapEndpoint.create(site=Resources().site, security=server_layer) as server,
        await CoapEndpoint.create(security=psk_client()) as client,
    ):
        layer = client.security
        assert isinstance(layer, DtlsSecurityLayer)
        remote = server.local_address
        await asyncio.wait_for(client.request(get("/who"), remote), TIMEOUT)
        assert len(layer._resumable) == 1
        # as after a server restart that also lost our identity: the next handshake fails
        demultiplexer = server_layer._server
        assert demultiplexer is not None
        demultiplexer.session_cache._sessions.clear()
        store._credentials.clear()
        layer.reset_peer(remote)
        with pytest.raises(DtlsSessionError, match="unknown_psk_identity"):
            await asyncio.wait_for(client.request(get("/who"), remote), TIMEOUT)
        assert layer._resumable == {}


def test_resumable_sessions_are_bounded_oldest_first() -> None:
    layer = psk_client(config=DtlsLayerConfig(max_resumable=2))
    security = PeerSecurity(DtlsCredentials(psk=SoftwarePsk(IDENTITY, KEY)))
    for port in (1, 2, 3):
        session = DtlsSession(bytes([port]) * 32, 0xC0A8, b"\x5a" * 48, True, None)
        layer._keep_resumable(("10.0.0.9", port), security, session)
    assert list(layer._resumable) == [("10.0.0.9", 2), ("10.0.0.9", 3)]
    shown = repr(layer._resumable)
    assert "ZZZZ" not in shown
    assert "\\x5a" not in shown
