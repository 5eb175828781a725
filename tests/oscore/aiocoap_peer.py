"""aiocoap 0.4.17's OSCORE (RFC 8613) as an independent interop peer for the tests.

Everything here runs aiocoap on 127.0.0.1 over its ``udp6`` transport, with security contexts
built in memory (:class:`InMemorySecurityContext`): no ``FilesystemSecurityContext``, so no lock
file, no ``sequence.json`` writes and no state that outlives the Python objects.

Pieces:

* :class:`OscoreMaterial` -- the RFC 8613 §3.2 input parameters, seen from the aiocoap side.
* :class:`AiocoapOscoreServer` -- an aiocoap server whose resources only answer OSCORE requests.
* :func:`aiocoap_oscore_request`, :func:`aiocoap_oscore_observe` -- one-shot aiocoap clients;
  :class:`AiocoapOscoreClient` keeps one client context for several requests.
* :func:`aiocoap_plain_request` -- an unprotected request (to check the 4.01 refusal).
* :func:`capture_protected_request` -- the datagram aiocoap puts on the wire for a request.

The coroutines take a ``timeout`` (seconds, applied with ``asyncio.timeout``) because every
exchange with the peer must be bounded; hence the ASYNC109 exemptions.

aiocoap behaviour worth knowing (0.4.17):

* A fresh server context with an *initialised* (empty) replay window accepts the first request
  without Echo (that is also what ``FilesystemSecurityContext`` does when no ``sequence.json``
  exists). Only a context whose replay window is *unknown* (``replay_window="unknown"`` here;
  in aiocoap, a restart from a ``sequence.json`` holding ``"received": "unknown"``) answers
  the first request with a protected 4.01 carrying an Echo option (RFC 8613 Appendix B.1.2);
  the aiocoap client answers that by itself, re-protecting the request with a new sequence
  number and the Echo value.
* The client side protects requests with outer code POST (FETCH with Observe); the server
  side protects responses with outer 2.04 (2.05 for notifications). Responses reuse the
  request's nonce (no Partial IV) except notifications, which carry the server's own sequence
  number.
* ``OscoreSiteWrapper`` itself enforces nothing: unprotected requests go straight to the site.
  The server here puts a gate under it that answers those with 4.01.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import aiocoap
import aiocoap.credentials
import aiocoap.error
import aiocoap.interfaces
import aiocoap.numbers.codes
import aiocoap.oscore
import aiocoap.resource
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper
from aiocoap.transports.oscore import OSCOREAddress

__all__ = [
    "AiocoapOscoreClient",
    "AiocoapOscoreServer",
    "CapturedRequest",
    "InMemorySecurityContext",
    "OscoreMaterial",
    "aiocoap_oscore_observe",
    "aiocoap_oscore_request",
    "aiocoap_plain_request",
    "capture_protected_request",
    "default_site",
    "forget_client_state",
    "mirrored",
]

#: COSE algorithm 10, the only one this harness sets up (RFC 8613 §3.2 default).
AEAD_ALGORITHM = "AES-CCM-16-64-128"
#: HKDF SHA-256 (RFC 8613 §3.2 default).
HKDF_HASH = "sha256"

ReplayWindowState = Literal["empty", "unknown"]


@dataclass(frozen=True)
class OscoreMaterial:
    """RFC 8613 §3.2 input parameters, from the point of view of the aiocoap side.

    ``sender_id`` is what aiocoap sends as 'kid' in its requests; ``recipient_id`` is the kid
    it expects from the peer. Use :func:`mirrored` for the peer's view.
    """

    master_secret: bytes
    sender_id: bytes
    recipient_id: bytes
    master_salt: bytes = b""
    id_context: bytes | None = None


def mirrored(material: OscoreMaterial) -> OscoreMaterial:
    """The same material from the other endpoint's point of view (sender and recipient swapped)."""
    return OscoreMaterial(
        master_secret=material.master_secret,
        sender_id=material.recipient_id,
        recipient_id=material.sender_id,
        master_salt=material.master_salt,
        id_context=material.id_context,
    )


class InMemorySecurityContext(
    aiocoap.oscore.CanProtect,  # type: ignore[misc]
    aiocoap.oscore.CanUnprotect,  # type: ignore[misc]
    aiocoap.oscore.SecurityContextUtils,  # type: ignore[misc]
):
    """An RFC 8613 security context held in memory only (AES-CCM-16-64-128, HKDF SHA-256).

    Built from the same aiocoap mixins as ``FilesystemSecurityContext``, minus the files:
    ``post_seqnoincrease`` persists nothing, and the replay window is either initialised empty
    (``replay_window="empty"``, a brand-new context) or left uninitialised with Echo recovery
    armed (``replay_window="unknown"``, a context whose replay state was lost: the first
    request is answered 4.01 + Echo, RFC 8613 Appendix B.1.2).
    """

    def __init__(
        self,
        material: OscoreMaterial,
        *,
        sender_sequence_number: int = 0,
        replay_window: ReplayWindowState = "empty",
        window_size: int = aiocoap.oscore.DEFAULT_WINDOWSIZE,
    ) -> None:
        self.alg_aead = aiocoap.oscore.algorithms[AEAD_ALGORITHM]
        self.hashfun = aiocoap.oscore.hashfunctions[HKDF_HASH]
        max_id = self.alg_aead.iv_bytes - 6
        if max(len(material.sender_id), len(material.recipient_id)) > max_id:
            raise ValueError(f"sender/recipient id longer than {max_id} bytes")
        self.material = material
        self.sender_id = material.sender_id
        self.recipient_id = material.recipient_id
        self.id_context = material.id_context
        self.derive_keys(material.master_salt, material.master_secret)
        self.sender_sequence_number = sender_sequence_number
        # As in FilesystemSecurityContext: always armed; used only while the window is unknown.
        self.echo_recovery = secrets.token_bytes(8)
        self.recipient_replay_window = aiocoap.oscore.ReplayWindow(window_size, lambda: None)
        if replay_window == "empty":
            self.recipient_replay_window.initialize_empty()
        elif replay_window != "unknown":
            raise ValueError(f"replay_window must be 'empty' or 'unknown', not {replay_window!r}")

    def post_seqnoincrease(self) -> None:
        """Nothing to persist: the sequence number lives in this object only."""

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} sender_id={self.sender_id.hex()!r} "
            f"recipient_id={self.recipient_id.hex()!r} "
            f"id_context={None if self.id_context is None else self.id_context.hex()!r} "
            f"ssn={self.sender_sequence_number}>"
        )


# -- server ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_reuse_port() -> Iterator[None]:
    """aiocoap binds servers with SO_REUSEPORT unless AIOCOAP_REUSE_PORT=0; with it, a port-0
    bind may land on a port another same-user socket holds. Scoped to the bind only."""
    if "AIOCOAP_REUSE_PORT" in os.environ:
        yield
        return
    os.environ["AIOCOAP_REUSE_PORT"] = "0"
    try:
        yield
    finally:
        os.environ.pop("AIOCOAP_REUSE_PORT", None)


def _bound_port(ctx: Any) -> int:
    """The UDP port the (single udp6) transport of an aiocoap context is bound to."""
    for tman in ctx.request_interfaces:
        mman = getattr(tman, "token_interface", None)
        iface = getattr(mman, "message_interface", None)
        transport = getattr(iface, "transport", None)
        if transport is not None:
            port: int = transport.get_extra_info("socket").getsockname()[1]
            return port
    raise RuntimeError("no udp6 transport in the aiocoap context")


class _Gate(aiocoap.interfaces.Resource):  # type: ignore[misc]
    """Sits between ``OscoreSiteWrapper`` and the site: refuses unprotected requests with 4.01
    (when ``require_oscore``) and records (method, path) of each request it lets through."""

    def __init__(self, site: Any, seen: list[tuple[str, str]], *, require_oscore: bool) -> None:
        self._site = site
        self._seen = seen
        self._require_oscore = require_oscore

    def get_resources_as_linkheader(self) -> Any:
        return self._site.get_resources_as_linkheader()

    async def needs_blockwise_assembly(self, request: Any) -> bool:
        raise RuntimeError("only used through render_to_pipe")

    async def render(self, request: Any) -> Any:
        raise RuntimeError("only used through render_to_pipe")

    async def render_to_pipe(self, pipe: Any) -> None:
        request = pipe.request
        if self._require_oscore and not isinstance(request.remote, OSCOREAddress):
            raise aiocoap.error.Unauthorized("OSCORE required")
        self._seen.append((str(request.code), "/" + "/".join(request.opt.uri_path)))
        await self._site.render_to_pipe(pipe)


class _Hello(aiocoap.resource.Resource):  # type: ignore[misc]
    async def render_get(self, request: Any) -> Any:
        return aiocoap.Message(payload=b"hello oscore", content_format=0)


class _Echo(aiocoap.resource.Resource):  # type: ignore[misc]
    async def render_post(self, request: Any) -> Any:
        return aiocoap.Message(
            code=aiocoap.CHANGED, payload=request.payload, content_format=request.opt.content_format
        )


class _Query(aiocoap.resource.Resource):  # type: ignore[misc]
    async def render_get(self, request: Any) -> Any:
        return aiocoap.Message(payload="&".join(request.opt.uri_query).encode(), content_format=0)


class _Observable(aiocoap.resource.ObservableResource):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.value = "0"
        self.observers = 0
        self.observers_changed = asyncio.Event()

    def update_observation_count(self, newcount: int) -> None:
        self.observers = newcount
        self.observers_changed.set()

    async def render_get(self, request: Any) -> Any:
        return aiocoap.Message(payload=self.value.encode(), content_format=0)


def default_site() -> tuple[Any, _Observable]:
    """The test site: /hello, /echo, /obs (observable), /query. Returns (site, obs resource)."""
    site = aiocoap.resource.Site()
    obs = _Observable()
    site.add_resource(["hello"], _Hello())
    site.add_resource(["echo"], _Echo())
    site.add_resource(["obs"], obs)
    site.add_resource(["query"], _Query())
    return site, obs


class AiocoapOscoreServer:
    """aiocoap server on 127.0.0.1:<free port> whose resources answer only OSCORE requests
    protected with ``material`` (seen from the server: ``material.sender_id`` is the kid of the
    server's responses' nonces, ``material.recipient_id`` the kid the client must send).

    Unprotected requests get 4.01 (from the gate under aiocoap's ``OscoreSiteWrapper``); an
    unknown kid gets an unprotected 4.01 "Security context not found"; a request that fails
    to decrypt gets an unprotected 4.00 "Decryption failed"; a replayed one an unprotected
    4.01 "Replay detected".

    Default site (pass ``site=`` to serve any aiocoap ``Site``/resource instead):

    * ``GET /hello`` -> 2.05 ``b"hello oscore"`` (content-format 0)
    * ``POST /echo`` -> 2.04 with the request's payload and content-format
    * ``GET /obs`` (observable) -> 2.05 current value; ``await server.notify(value)`` pushes
    * ``GET /query`` -> 2.05 the Uri-Query options joined with ``&``

    ``replay_window="unknown"`` starts the server context as after a loss of replay state, so
    the first request from each client is answered 4.01 + Echo (RFC 8613 Appendix B.1.2).
    """

    address: tuple[str, int]
    requests_seen: list[tuple[str, str]]
    security_context: InMemorySecurityContext

    def __init__(
        self,
        material: OscoreMaterial,
        *,
        site: Any | None = None,
        require_oscore: bool = True,
        replay_window: ReplayWindowState = "empty",
        sender_sequence_number: int = 0,
    ) -> None:
        self.material = material
        self.security_context = InMemorySecurityContext(
            material, sender_sequence_number=sender_sequence_number, replay_window=replay_window
        )
        self._obs: _Observable | None = None
        if site is None:
            site, self._obs = default_site()
        self.site = site
        self.requests_seen = []
        self._require_oscore = require_oscore
        self._ctx: Any = None

    async def __aenter__(self) -> AiocoapOscoreServer:
        credentials = aiocoap.credentials.CredentialsMap()
        credentials[":peer"] = self.security_context
        gate = _Gate(self.site, self.requests_seen, require_oscore=self._require_oscore)
        with _no_reuse_port():
            self._ctx = await aiocoap.Context.create_server_context(
                OscoreSiteWrapper(gate, credentials),
                bind=("127.0.0.1", 0),
                transports=["udp6"],
                server_credentials=credentials,
            )
        try:
            self.address = ("127.0.0.1", _bound_port(self._ctx))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            await ctx.shutdown()

    @property
    def uri_base(self) -> str:
        return f"coap://{self.address[0]}:{self.address[1]}"

    @property
    def observers(self) -> int:
        """Number of observations currently registered on /obs."""
        return self._obs_resource().observers

    def _obs_resource(self) -> _Observable:
        if self._obs is None:
            raise RuntimeError("notify()/observers need the default site")
        return self._obs

    async def notify(self, value: str) -> None:
        """Set /obs to ``value`` and trigger a notification to every observer."""
        obs = self._obs_resource()
        obs.value = value
        obs.updated_state()

    async def wait_observers(self, count: int, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Wait until exactly ``count`` observations are registered on /obs."""
        obs = self._obs_resource()
        async with asyncio.timeout(timeout):
            while obs.observers != count:
                obs.observers_changed.clear()
                await obs.observers_changed.wait()


# -- clients ---------------------------------------------------------------------------------------


def _code(method: str) -> Any:
    try:
        return getattr(aiocoap.numbers.codes.Code, method.upper())
    except AttributeError:
        raise ValueError(f"unknown CoAP method {method!r}") from None


def _build_request(
    address: tuple[str, int],
    method: str,
    path: str,
    payload: bytes = b"",
    *,
    content_format: int | None = None,
    query: Iterable[str] = (),
    accept: int | None = None,
    observe: bool = False,
    uri_host: str | None = None,
) -> Any:
    host, port = address
    msg = aiocoap.Message(code=_code(method), uri=f"coap://{host}:{port}", payload=payload)
    msg.opt.uri_path = tuple(p for p in path.split("/") if p)
    msg.opt.uri_query = tuple(query)
    if content_format is not None:
        msg.opt.content_format = content_format
    if accept is not None:
        msg.opt.accept = accept
    if observe:
        msg.opt.observe = 0
    if uri_host is not None:
        msg.opt.uri_host = uri_host
    return msg


def _result(response: Any) -> tuple[int, bytes, int | None]:
    cf = response.opt.content_format
    return int(response.code), bytes(response.payload), None if cf is None else int(cf)


class AiocoapOscoreClient:
    """One aiocoap client context (transports ``oscore`` + ``udp6``) that protects every
    request with one :class:`InMemorySecurityContext`, so sequence numbers keep counting up
    across requests. Pass ``security_context`` to share sender state between clients."""

    def __init__(
        self,
        material: OscoreMaterial,
        *,
        security_context: InMemorySecurityContext | None = None,
        sender_sequence_number: int = 0,
    ) -> None:
        self.security_context = security_context or InMemorySecurityContext(
            material, sender_sequence_number=sender_sequence_number
        )
        self._ctx: Any = None

    async def __aenter__(self) -> AiocoapOscoreClient:
        self._ctx = await aiocoap.Context.create_client_context(transports=["oscore", "udp6"])
        self._ctx.client_credentials["coap://*"] = self.security_context
        return self

    async def __aexit__(self, *exc: object) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            await ctx.shutdown()

    async def request_message(self, msg: Any, timeout: float = 10) -> Any:  # noqa: ASYNC109
        """Send an aiocoap ``Message`` (with ``uri`` set); return the unprotected response."""
        async with asyncio.timeout(timeout):
            return await self._ctx.request(msg).response

    async def request(
        self,
        address: tuple[str, int],
        method: str,
        path: str,
        payload: bytes = b"",
        *,
        content_format: int | None = None,
        query: Iterable[str] = (),
        accept: int | None = None,
        timeout: float = 10,  # noqa: ASYNC109
    ) -> tuple[int, bytes, int | None]:
        """One protected request; returns (code as int, payload, content-format)."""
        msg = _build_request(
            address,
            method,
            path,
            payload,
            content_format=content_format,
            query=query,
            accept=accept,
        )
        return _result(await self.request_message(msg, timeout))

    async def observe(
        self, address: tuple[str, int], path: str, *, query: Iterable[str] = ()
    ) -> AsyncGenerator[tuple[int, bytes, int | None], None]:
        """Observe ``path``: yields the first response, then each notification. Closing the
        iterator cancels the observation locally (aiocoap forgets it; no deregistration)."""
        msg = _build_request(address, "GET", path, query=query, observe=True)
        req = self._ctx.request(msg)
        try:
            yield _result(await req.response)
            if req.observation is None:
                return
            async for notification in req.observation:
                yield _result(notification)
        finally:
            if req.observation is not None and not req.observation.cancelled:
                req.observation.cancel()


#: Sender state of the one-shot helpers, per material: a fresh context starting again at
#: sequence number 0 would be a replay to any server that already saw this material.
_client_contexts: dict[OscoreMaterial, InMemorySecurityContext] = {}


def _client_context(material: OscoreMaterial) -> InMemorySecurityContext:
    ctx = _client_contexts.get(material)
    if ctx is None:
        ctx = _client_contexts[material] = InMemorySecurityContext(material)
    return ctx


def forget_client_state(material: OscoreMaterial | None = None) -> None:
    """Drop the one-shot helpers' sender state (for ``material``, or all): the next request
    with it starts at sequence number 0 again."""
    if material is None:
        _client_contexts.clear()
    else:
        _client_contexts.pop(material, None)


async def aiocoap_oscore_request(
    address: tuple[str, int],
    material: OscoreMaterial,
    method: str,
    path: str,
    payload: bytes = b"",
    *,
    content_format: int | None = None,
    query: Iterable[str] = (),
    accept: int | None = None,
    timeout: float = 10,  # noqa: ASYNC109
) -> tuple[int, bytes, int | None]:
    """One OSCORE-protected request from a fresh aiocoap client context; returns (code as int,
    payload, content-format). The sender sequence number continues per ``material`` across
    calls (see :func:`forget_client_state`). Raises what aiocoap raises when the response is
    not a valid protected one (e.g. ``aiocoap.oscore.NotAProtectedMessage`` for an unprotected
    4.00/4.01 error, ``aiocoap.oscore.ProtectionInvalid`` when it fails to decrypt)."""
    async with AiocoapOscoreClient(material, security_context=_client_context(material)) as c:
        return await c.request(
            address,
            method,
            path,
            payload,
            content_format=content_format,
            query=query,
            accept=accept,
            timeout=timeout,
        )


async def aiocoap_oscore_observe(
    address: tuple[str, int],
    material: OscoreMaterial,
    path: str,
    count: int,
    timeout: float = 10,  # noqa: ASYNC109
    *,
    after_each: Callable[[int, bytes], Awaitable[None]] | None = None,
) -> list[bytes]:
    """Observe ``path`` over OSCORE and return the payloads of the first response and of the
    following ``count - 1`` notifications. ``after_each(index, payload)`` is awaited after each
    one except the last -- the place to trigger the next notification (e.g. with
    ``server.notify``) without racing the registration."""
    payloads: list[bytes] = []
    async with (
        AiocoapOscoreClient(material, security_context=_client_context(material)) as client,
        asyncio.timeout(timeout),
    ):
        stream = client.observe(address, path)
        try:
            async for code, payload, _ in stream:
                if code != int(aiocoap.CONTENT):
                    raise AssertionError(f"observe got code {code}: {payload!r}")
                payloads.append(payload)
                if len(payloads) >= count:
                    break
                if after_each is not None:
                    await after_each(len(payloads) - 1, payload)
        finally:
            await stream.aclose()
    return payloads


async def aiocoap_plain_request(
    address: tuple[str, int],
    method: str,
    path: str,
    payload: bytes = b"",
    timeout: float = 10,  # noqa: ASYNC109
) -> tuple[int, bytes, int | None]:
    """An unprotected request from an aiocoap client context without the oscore transport."""
    ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
    try:
        async with asyncio.timeout(timeout):
            response = await ctx.request(_build_request(address, method, path, payload)).response
        return _result(response)
    finally:
        await ctx.shutdown()


# -- wire capture ----------------------------------------------------------------------------------


@dataclass
class CapturedRequest:
    """A protected request as aiocoap sent it, plus the decoded outer message."""

    datagram: bytes
    sender_sequence_number: int
    outer: Any = field(repr=False)

    @property
    def oscore_option(self) -> bytes:
        return bytes(self.outer.opt.oscore)

    @property
    def ciphertext(self) -> bytes:
        return bytes(self.outer.payload)


async def capture_protected_request(
    material: OscoreMaterial,
    method: str,
    path: str,
    payload: bytes = b"",
    *,
    sender_sequence_number: int = 0,
    content_format: int | None = None,
    query: Iterable[str] = (),
    observe: bool = False,
    uri_host: str | None = None,
    timeout: float = 10,  # noqa: ASYNC109
) -> CapturedRequest:
    """Let an aiocoap client protect a request (with a fresh context at
    ``sender_sequence_number``) towards a plain UDP socket, and return the first datagram.
    Message ID and token are aiocoap's random choices; the OSCORE option and ciphertext are
    deterministic for given material, sequence number and inner message."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        address = ("127.0.0.1", sink.getsockname()[1])
        msg = _build_request(
            address,
            method,
            path,
            payload,
            content_format=content_format,
            query=query,
            observe=observe,
            uri_host=uri_host,
        )
        async with AiocoapOscoreClient(
            material, sender_sequence_number=sender_sequence_number
        ) as client:
            request = client._ctx.request(msg)
            async with asyncio.timeout(timeout):
                datagram, client_address = await loop.sock_recvfrom(sink, 2048)
                # End the exchange through aiocoap's ordinary error path with an unprotected
                # piggybacked 4.00 (cancelling the request instead makes aiocoap log an error
                # from a done-callback; a Reset makes it log a "please report" warning).
                tkl = datagram[0] & 0x0F
                answer = bytes([0x60 | tkl, 0x80]) + datagram[2 : 4 + tkl]
                await loop.sock_sendto(sink, answer, client_address)
                with contextlib.suppress(aiocoap.oscore.NotAProtectedMessage):
                    await request.response
    return CapturedRequest(
        datagram=datagram,
        sender_sequence_number=sender_sequence_number,
        outer=aiocoap.Message.decode(datagram),
    )
