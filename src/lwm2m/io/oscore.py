"""OSCORE (RFC 8613) on the asyncio CoAP endpoint: which Security Context protects what.

The protection itself is sans-IO (:mod:`lwm2m.oscore`); an :class:`OscoreLayer` given to a
:class:`~lwm2m.io.coap_endpoint.CoapEndpoint` keeps the contexts and the per-exchange state:

- **Client role.** Requests and observations to a remote address registered with
  :meth:`OscoreLayer.add_peer` are protected with that context (§8.1) and their responses and
  notifications verified (§8.4, §4.1.3.5.2). A response that comes back unprotected is never
  taken for the answer: it raises :class:`UnprotectedResponse`, which names its code (a server
  that lost the context answers 4.01 "Security context not found" in the clear, §8.2).
- **Server role.** A request carrying the OSCORE option is verified with the context whose
  Recipient ID is its ``kid`` (§8.2): a context added with :meth:`~OscoreLayer.add_peer` /
  :meth:`~OscoreLayer.add_context`, or one that ``loader`` returns (an LwM2M server loads them
  from its security store). Verification failures are answered in the clear with the codes of
  §8.2 (4.02, 4.01, 4.00); the handler's answer, errors included, goes back protected (§8.3),
  notifications each with a Partial IV of their own. Handlers see the inner request and the
  identity ``oscore`` with the Recipient ID (the client's Sender ID).
- **Freshness (RFC 9175 §2, RFC 8613 Appendix B.1.2).** A context this process has not used
  yet (a loaded one, e.g. after a restart) has no replay state: the server answers its first
  request with a protected 4.01 Unauthorized carrying an Echo option and serves only a request
  that returns that Echo value. The client role repeats a request once with the Echo value it
  was given. The LwM2M server needs this for the first Register (spec-reference §1.6).

Sequence numbers across restarts (RFC 8613 Appendix B.1.1). A context must never reuse a
Partial IV under the same keys, and a restarted peer's replay window must not take its new
requests for replays. Rather than a file per context, contexts made here start their Sender
Sequence Number from the clock (:func:`sequence_floor`: milliseconds since 2023-11-14): the
clock is the persisted value of B.1.1. It holds as long as a context sends fewer than 1,000
messages per second on average over its life, which an LwM2M client or server does not approach
(its Partial IVs are 5 bytes instead of 1). A context the server loads again in the same process
continues from the one it replaces.

What the endpoint does not do over OSCORE: a proactive Observe cancellation or a
re-registration would re-send the stored protected request, which the server must refuse as a
replay, so OSCORE observations are cancelled reactively (the next notification is answered with
RST, RFC 7641 §3.6) and are not re-registered; ``CoapEndpoint.notify(path)`` does not reach
OSCORE observers (their outer request has no Uri-Path): notify them one by one with
``notify_observation``, as the LwM2M client does.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Protocol

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code, OptionNumber
from lwm2m.errors import OscoreError
from lwm2m.oscore import (
    AeadAlgorithm,
    DecryptionFailed,
    HkdfAlgorithm,
    OscoreParameters,
    RequestBinding,
    SecurityContext,
    SoftwareMasterSecret,
    VerificationError,
    oscore_option,
    unprotect_request,
)

__all__ = [
    "ContextLoader",
    "OscoreLayer",
    "UnprotectedResponse",
    "context_loader",
    "sequence_floor",
]

logger = logging.getLogger(__name__)

ContextLoader = Callable[[bytes, "bytes | None"], Awaitable["SecurityContext | None"]]
"""``await loader(kid, kid_context)``: the server-role context whose Recipient ID is ``kid``
(and whose ID Context is ``kid_context``), or None for an unknown one."""

_ECHO = int(OptionNumber.ECHO)
_FLOOR_EPOCH = 1_700_000_000  # 2023-11-14T22:13:20Z: sequence_floor fits 5 bytes until 2058


def sequence_floor(clock: Callable[[], float] = time.time) -> int:
    """A Sender Sequence Number no earlier run of this context can have reached: milliseconds
    of ``clock`` since 2023-11-14 (see the module docstring)."""
    return max(0, int((clock() - _FLOOR_EPOCH) * 1000))


_ECHO_BYTES = 8  # RFC 9175 §2.3: an unpredictable value; 8 bytes as RFC 9175 Appendix A's
_ECHO_KEPT = 4  # outstanding Echo values per context


class UnprotectedResponse(OscoreError):
    """A response to a protected request came back without OSCORE protection."""

    def __init__(self, code: int, diagnostic: str) -> None:
        self.code = code
        self.diagnostic = diagnostic
        detail = f" ({diagnostic})" if diagnostic else ""
        super().__init__(
            f"the peer answered {code >> 5}.{code & 31:02d} without OSCORE protection{detail}"
        )


class OscoreLayer:
    """The OSCORE contexts of one CoAP endpoint (see the module docstring).

    :param loader: server role: loads the context of a ``kid`` this layer does not hold; loaded
        contexts are kept (their replay windows live in them) until :meth:`forget`.
    """

    def __init__(self, loader: ContextLoader | None = None) -> None:
        self.loader = loader
        self._peers: dict[Hashable, SecurityContext] = {}
        self._recipients: dict[tuple[bytes, bytes | None], SecurityContext] = {}
        self._loaded: set[int] = set()
        self._sent: dict[tuple[bytes, bytes | None], int] = {}
        """The next Sender Sequence Number of each forgotten context (a reload continues)."""
        """Contexts the loader gave (ids): dropped when they fail to verify a request."""
        self._unverified: dict[int, list[bytes]] = {}
        """Contexts without replay state (id -> the Echo value sent, None before one was)."""
        self.echo_challenges = 0
        """4.01 + Echo answers sent (RFC 9175 freshness challenges)."""
        self.required: dict[Hashable, SecurityContext] = {}
        """Peers added with :meth:`add_peer`: their plain requests are refused."""
        self.observers: dict[tuple[bytes, Hashable], tuple[SecurityContext, RequestBinding]] = {}
        """Server role: the context and request of each OSCORE observer (token, peer)."""

    # -- contexts -------------------------------------------------------------------------------

    def add_peer(self, remote: Hashable, context: SecurityContext, *, fresh: bool = False) -> None:
        """Protect requests to ``remote`` with ``context`` and accept its requests, protected
        only: the endpoint answers a plain request from ``remote`` with 4.01 (an LwM2M client
        account with OSCORE, /0/x/17, "MUST" use it). ``fresh``: the context has no replay
        state (derived anew, e.g. after a restart): the peer's first request must prove its
        freshness with Echo (RFC 8613 Appendix B.1.2)."""
        self._peers[remote] = context
        self.required[remote] = context
        self.add_context(context, fresh=fresh)

    def remove_peer(self, remote: Hashable) -> None:
        self.required.pop(remote, None)
        context = self._peers.pop(remote, None)
        if context is not None and context not in self._peers.values():
            self.forget(context.recipient_id, context.id_context)

    def bind(self, remote: Hashable, context: SecurityContext, *, replace: bool = False) -> None:
        """Protect requests to ``remote`` with ``context``. The endpoint binds a peer whose
        request verified with it (a bootstrap server's requests to its client go protected),
        but never over another context's binding: a peer that sends from someone else's
        address must not take over what is protected for them. ``replace``: the caller knows
        better (an LwM2M server, from the registration's identity)."""
        bound = self._peers.get(remote)
        if bound is None or replace:
            self._peers[remote] = context

    def unbind(self, remote: Hashable) -> None:
        """Requests to ``remote`` go without OSCORE again (its context stays accepted)."""
        self._peers.pop(remote, None)

    def context_for(self, remote: Hashable) -> SecurityContext | None:
        """The context protecting requests to ``remote`` (None: plain CoAP)."""
        return self._peers.get(remote)

    def add_context(self, context: SecurityContext, *, fresh: bool = False) -> None:
        """Accept requests protected with ``context`` (server role). ``fresh``: the context has
        no replay state, its first request must prove freshness with Echo (RFC 9175)."""
        self._recipients[(context.recipient_id, context.id_context)] = context
        if fresh:
            self._unverified[id(context)] = []

    def forget(self, kid: bytes, kid_context: bytes | None = None) -> None:
        """Drop the server-role context of ``kid`` (a loader will load it again, fresh)."""
        context = self._recipients.pop((kid, kid_context), None)
        if context is not None:
            self._unverified.pop(id(context), None)
            self._loaded.discard(id(context))
            self._sent[(kid, kid_context)] = context.sender_sequence_number

    async def find(self, kid: bytes, kid_context: bytes | None) -> SecurityContext | None:
        """The server-role context of ``kid``: held, or loaded (and then held, fresh)."""
        key = (kid, kid_context)
        context = self._recipients.get(key)
        if context is not None or self.loader is None:
            return context
        loaded = await self.loader(kid, kid_context)
        if loaded is None:
            return None
        context = self._recipients.get(key)  # loaded meanwhile by a concurrent request
        if context is None:
            context = loaded
            previous = self._sent.pop(key, 0)
            if context.sender_sequence_number < previous:  # never reuse a Partial IV
                context.sender_sequence_number = previous
            self.add_context(context, fresh=True)
            self._loaded.add(id(context))
        return context

    # -- server role ----------------------------------------------------------------------------

    async def verify_request(
        self, request: Message
    ) -> tuple[Message, SecurityContext, RequestBinding]:
        """Verify a protected request (§8.2): the inner request, its context and binding.

        A held context loaded from the store that fails to decrypt is checked against the
        store again: when the entry's keys changed (a new Master Secret or salt under the same
        Sender ID), the new context replaces it (fresh: Echo first), else the failure stands
        and nothing changes, so a forged datagram cannot make the server drop a context.

        :raises VerificationError: with ``response_code`` and a diagnostic for the unprotected
            error response (4.02 option, 4.01 unknown context or replay, 4.00 decryption).
        """
        option = oscore_option(request)  # raises on a malformed option (4.02)
        if option is None or option.kid is None:
            return self._verify(request, None)
        key = (option.kid, option.kid_context)
        held = self._recipients.get(key)
        if held is None:
            return self._verify(request, await self.find(option.kid, option.kid_context))
        try:
            return self._verify(request, held)
        except DecryptionFailed:
            if id(held) not in self._loaded or self.loader is None:
                raise
            reloaded = await self.loader(option.kid, option.kid_context)
            if reloaded is None or self._recipients.get(key) is not held:
                raise
            try:
                verified = self._verify(request, reloaded)
            except VerificationError:
                raise DecryptionFailed("the stored keys do not decrypt it either") from None
        self._replace(key, held, verified[1])
        return verified

    def verify_held(
        self, request: Message
    ) -> tuple[Message, SecurityContext, RequestBinding] | None:
        """:meth:`verify_request` without waiting: None when that must wait (the context of
        the request's ``kid`` is to be loaded, or a loaded one failed to decrypt and the store
        is to be read again)."""
        option = oscore_option(request)  # raises on a malformed option (4.02)
        kid = None if option is None else option.kid
        context = None
        if kid is not None:
            context = self._recipients.get((kid, option.kid_context))  # type: ignore[union-attr]
            if context is None and self.loader is not None:
                return None
        try:
            return self._verify(request, context)
        except DecryptionFailed:
            if context is not None and id(context) in self._loaded and self.loader is not None:
                return None
            raise

    def _verify(
        self, request: Message, context: SecurityContext | None
    ) -> tuple[Message, SecurityContext, RequestBinding]:
        def found(k: bytes, c: bytes | None) -> SecurityContext | None:
            return context

        return unprotect_request(request, found)

    def _replace(
        self, key: tuple[bytes, bytes | None], old: SecurityContext, new: SecurityContext
    ) -> None:
        """``new`` (other keys) takes the place of ``old``: held, fresh, and bound wherever
        ``old`` was (no nonce of ``old`` is reused: the keys differ)."""
        self._recipients[key] = new
        self._unverified.pop(id(old), None)
        self._loaded.discard(id(old))
        self._unverified[id(new)] = []
        self._loaded.add(id(new))
        for remote, bound in list(self._peers.items()):
            if bound is old:
                self._peers[remote] = new

    def freshness_challenge(
        self, context: SecurityContext, inner: Message, binding: RequestBinding
    ) -> Message | None:
        """The protected 4.01 + Echo to answer instead of serving ``inner``, or None to serve
        it (RFC 9175 §2.4): only a context without replay state asks, until a request brings
        back the value it was sent."""
        key = id(context)
        if key not in self._unverified:
            return None
        sent = self._unverified[key]
        if inner.get_option(_ECHO) in sent:
            del self._unverified[key]
            context.replay_window.seal()  # nothing older than this request is accepted now
            return None
        self.echo_challenges += 1
        value = secrets.token_bytes(_ECHO_BYTES)
        # the latest few stay valid: requests challenged together each come back with theirs
        # (the first one back proves freshness; RFC 9175 §2.4 lets a server keep several)
        sent.append(value)
        del sent[:-_ECHO_KEPT]
        challenge = Message(Code.UNAUTHORIZED, options=[(_ECHO, value)])
        # With a Partial IV of its own: the request may be a replay (that is why it is
        # challenged), and answering under its nonce would encrypt a second plaintext under a
        # nonce the original answer used (RFC 8613 Appendix B.1.2, D.4).
        return context.protect_response(challenge, binding, new_partial_iv=True)


def context_loader(
    lookup: Callable[[bytes], Awaitable[OscoreInfoLike | None]],
) -> ContextLoader:
    """A server's :data:`ContextLoader` over ``lookup(kid)``, which returns the client's
    OSCORE parameters (named from the client's side, as in its /21 instance) or None."""

    async def load(kid: bytes, kid_context: bytes | None) -> SecurityContext | None:
        if kid_context is not None:  # /21 1.0 has no ID Context: no client sends one
            logger.info("OSCORE request with an ID Context: no context")
            return None
        info = await lookup(kid)
        if info is None:
            logger.info("OSCORE request with unknown kid %s", kid.hex())
            return None
        try:
            parameters = OscoreParameters(
                sender_id=info.recipient_id,
                recipient_id=info.sender_id,
                master_salt=info.master_salt,
                aead=AeadAlgorithm(info.aead),
                hkdf=HkdfAlgorithm(info.hkdf),
            )
            secret = SoftwareMasterSecret(info.master_secret.reveal())
            return SecurityContext(secret, parameters, sender_sequence_number=sequence_floor())
        except (ValueError, OscoreError) as exc:
            logger.warning("OSCORE parameters of kid %s are unusable: %s", kid.hex(), exc)
            return None

    return load


class OscoreInfoLike(Protocol):
    """What :func:`context_loader` needs of a client's OSCORE entry
    (:class:`lwm2m.server.security.OscoreInfo`)."""

    @property
    def sender_id(self) -> bytes: ...
    @property
    def recipient_id(self) -> bytes: ...
    @property
    def master_salt(self) -> bytes: ...
    @property
    def aead(self) -> int: ...
    @property
    def hkdf(self) -> int: ...
    @property
    def master_secret(self) -> _Revealing: ...


class _Revealing(Protocol):
    def reveal(self) -> bytes: ...


def open_response(context: SecurityContext, binding: RequestBinding, response: Message) -> Message:
    """Verify the response to a protected request (§8.4): the inner response.

    :raises UnprotectedResponse: the response carries no OSCORE option.
    :raises OscoreError: it does not verify.
    """
    if response.get_option(OptionNumber.OSCORE) is None:
        raise UnprotectedResponse(response.code, response.payload.decode("utf-8", "replace"))
    return context.unprotect_response(response, binding)


def with_echo(message: Message, echo: bytes) -> Message:
    """A copy of ``message`` carrying the Echo option ``echo`` (RFC 9175 §2.3)."""
    copy = message.copy()
    copy.set_option(_ECHO, echo)
    return copy


def echo_request(response: Message) -> bytes | None:
    """The Echo value of a 4.01 Unauthorized that asks for one, else None."""
    if response.code != Code.UNAUTHORIZED:
        return None
    return response.get_option(_ECHO)
