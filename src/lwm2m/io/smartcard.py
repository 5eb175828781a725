"""Bootstrap from Smartcard for the asyncio client (SCS-10; LwM2M-TS-Core 1.1 §5.2.3.2 and
Appendix G): the card I/O around the pure :mod:`lwm2m.client.smartcard`.

Every card call blocks (pcscd round trips), so it runs in a worker thread
(:func:`asyncio.to_thread`), never in the engine:

- :func:`read_card` turns ``component.read_bootstrap()`` / ``card_present()`` into a
  :data:`~lwm2m.client.smartcard.CardReading`: data and digest; :class:`CardAbsent` for a card
  removed, reset or not present (``CardRemoved``, ``CardNotPresent``, a transport failure after
  which ``card_present()`` is False); :class:`CardUnreadable` for a malformed file
  (``Pkcs15Error``, ``BootstrapFileError``, ``Scp03Error``, refused commands).
- :class:`SmartcardMonitor` reads the card before the client starts (the
  :class:`~lwm2m.client.smartcard.SmartcardBootstrap` source is then the first step of the
  bootstrap sequence) and is the client's ``request_check``: before each Register and Update to a
  server the card provisioned it reads the card again and applies the outcome
  (:func:`~lwm2m.client.smartcard.apply_reading`): unchanged or rejected data let the request
  go; changed data drop it (the servers register again with the new configuration); a removed
  card drops it and deletes the derived configuration.
- :class:`CardBoundStore` keeps the /0 and /21 instances in the card's
  :class:`~lwm2m.secure.SecureInstanceStore` and, once the card is gone, serves an empty
  in-memory store instead, so the client can delete the derived configuration and go on.

:func:`open_smartcard_client` wires it all: a client started with nothing but a ``pcsc:`` URI
and an endpoint name boots from the card. Secret resources on the card are either
``sc-ref:LABEL`` references to credentials already in the card (an issuer PSK container: the
PSK never leaves the card) or values the instance store imports into the card.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from lwm2m.client.bootstrap import BootstrapSource, FactoryBootstrap
from lwm2m.client.config import ClientConfig
from lwm2m.client.engine import OutgoingRequest
from lwm2m.client.objects.base import InstanceStore, MemoryInstanceStore, ObjectHandler
from lwm2m.client.objects.security import OscoreObject, SecurityObject
from lwm2m.client.smartcard import (
    CardAbsent,
    CardCheck,
    CardData,
    CardReading,
    CardUnreadable,
    SmartcardBootstrap,
    apply_reading,
)
from lwm2m.errors import Lwm2mError
from lwm2m.io.lwm2m_client import LwM2MClient
from lwm2m.model.nodes import ObjectInstance
from lwm2m.model.registry import ModelRegistry
from lwm2m.operations.requests import Register, Update
from lwm2m.secure import SecureComponent, SecureInstanceStore, open_component
from lwm2m.secure.pcsc.card import SmartcardBootstrap as CardBootstrapFile
from lwm2m.secure.pcsc.errors import CardNotPresent, CardRemoved, TransportError
from lwm2m.secure.pcsc.scp03 import StaticKeys

__all__ = [
    "BootstrapCard",
    "CardBoundStore",
    "SmartcardMonitor",
    "open_smartcard_client",
    "read_card",
]

logger = logging.getLogger(__name__)


class BootstrapCard(Protocol):
    """What the monitor needs of a card (:class:`~lwm2m.secure.pcsc.PcscComponent`)."""

    def read_bootstrap(
        self, *, scp03_keys: StaticKeys | None = ..., registry: ModelRegistry | None = ...
    ) -> CardBootstrapFile: ...

    def card_present(self) -> bool: ...


def read_card(
    card: BootstrapCard,
    *,
    scp03_keys: StaticKeys | None = None,
    registry: ModelRegistry | None = None,
) -> CardReading:
    """Read EF LwM2M_Bootstrap (blocking: call it in a worker thread)."""
    try:
        if not card.card_present():
            return CardAbsent("the card is not present")
        result = card.read_bootstrap(scp03_keys=scp03_keys, registry=registry)
    except (CardRemoved, CardNotPresent) as exc:
        return CardAbsent(f"card removed: {exc}")
    except TransportError as exc:
        if not _present(card):
            return CardAbsent(f"card removed: {exc}")
        return CardUnreadable(f"{type(exc).__name__}: {exc}")
    except Lwm2mError as exc:  # Pkcs15Error, BootstrapFileError, Scp03Error, status words
        return CardUnreadable(f"{type(exc).__name__}: {exc}")
    return CardData(tuple(obj.node for obj in result.data), result.digest)


def _present(card: BootstrapCard) -> bool:
    try:
        return card.card_present()
    except Lwm2mError:
        return False


class CardBoundStore:
    """An :class:`~lwm2m.client.objects.base.InstanceStore` on the card, until
    :meth:`detach` (the card went away): then an empty in-memory store."""

    def __init__(self, inner: InstanceStore) -> None:
        self.inner = inner
        self.detached = False
        self._memory = MemoryInstanceStore()

    def detach(self) -> None:
        self.detached = True

    @property
    def _store(self) -> InstanceStore:
        return self._memory if self.detached else self.inner

    def list(self, object_id: int) -> list[int]:
        return self._store.list(object_id)

    def get(self, object_id: int, instance_id: int) -> ObjectInstance | None:
        return self._store.get(object_id, instance_id)

    def put(self, object_id: int, instance: ObjectInstance) -> None:
        self._store.put(object_id, instance)

    def delete(self, object_id: int, instance_id: int) -> None:
        self._store.delete(object_id, instance_id)

    def __repr__(self) -> str:
        return f"<CardBoundStore detached={self.detached} inner={self.inner!r}>"


class SmartcardMonitor:
    """Reads the card in worker threads and re-checks it at every Register and Update to a
    server it provisioned (see the module docstring).

    :param card: the card (a ``pcsc:`` component).
    :param store: the card-bound store of /0 and /21, detached when the card goes away.
    :param scp03_keys: read the file over SCP03 (Appendix H).
    """

    def __init__(
        self,
        card: BootstrapCard,
        *,
        store: CardBoundStore | None = None,
        scp03_keys: StaticKeys | None = None,
        registry: ModelRegistry | None = None,
    ) -> None:
        self.card = card
        self.store = store
        self.scp03_keys = scp03_keys
        self.registry = registry
        self.source = SmartcardBootstrap()
        self.client: LwM2MClient | None = None
        self.outcomes: list[CardCheck] = []
        """The outcome of every re-check, in order."""
        self._lock: asyncio.Lock | None = None

    async def read(self) -> CardReading:
        return await asyncio.to_thread(
            read_card, self.card, scp03_keys=self.scp03_keys, registry=self.registry
        )

    async def load(self) -> SmartcardBootstrap:
        """Read the card for start-up: the returned source goes first in ``sources``."""
        reading = await self.read()
        if isinstance(reading, CardUnreadable):
            logger.warning("smartcard bootstrap data rejected: %s", reading.reason)
        self.source.reading = reading
        return self.source

    def attach(self, client: LwM2MClient) -> None:
        """Become ``client``'s request check."""
        self.client = client
        client.request_check = self.check_request

    async def check_request(self, request: OutgoingRequest) -> bool:
        """Before ``request`` goes out: False drops it (the engine no longer waits for it)."""
        client = self.client
        if client is None or not isinstance(request.operation, Register | Update):
            return True
        if not self.source.provisioned(request.connection.security_instance_id):
            return True
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            engine = client.engine
            if not engine.is_pending(request.request_id):
                return False  # superseded by a re-provisioning while waiting
            reading = await self.read()
            if not engine.is_pending(request.request_id):
                return False
            outcome = self.source.check(reading)
            if outcome is CardCheck.REJECTED:
                logger.warning("smartcard data rejected, previous configuration kept: %s", reading)
            elif outcome is CardCheck.REMOVED and self.store is not None:
                self.store.detach()
            apply_reading(engine, self.source, reading, asyncio.get_running_loop().time())
            self.outcomes.append(outcome)
        if outcome is not CardCheck.UNCHANGED:
            logger.info("smartcard re-check: %s", outcome.value)
        return outcome in (CardCheck.UNCHANGED, CardCheck.REJECTED)


async def open_smartcard_client(
    config: ClientConfig,
    component: SecureComponent | str,
    objects: Iterable[ObjectHandler] = (),
    *,
    scp03_keys: StaticKeys | None = None,
    sources: Iterable[BootstrapSource] | None = None,
    **options: Any,
) -> tuple[LwM2MClient, SmartcardMonitor]:
    """A client that bootstraps from the card of ``component`` (a ``pcsc:`` URI or an open
    component) first, then from ``sources`` (default: the factory bootstrap of ``config``).

    /0 and /21 live in the card (:class:`CardBoundStore` over a
    :class:`~lwm2m.secure.SecureInstanceStore`), /1 and /2 in memory. The caller closes the
    component after ``client.stop()`` when it passed an open one; a URI is opened here and
    closed by ``client.stop()``. ``options`` go to :class:`LwM2MClient`."""
    owned = isinstance(component, str)
    if isinstance(component, str):
        component = await asyncio.to_thread(open_component, component)
    try:
        secure = await asyncio.to_thread(SecureInstanceStore, component)
        bound = CardBoundStore(secure)
        card: Any = component
        monitor = SmartcardMonitor(card, store=bound, scp03_keys=scp03_keys)
        source = await monitor.load()
        handlers = [*objects, SecurityObject(bound), OscoreObject(bound)]
        rest = list(sources) if sources is not None else [FactoryBootstrap(config)]
        client = LwM2MClient(
            config,
            handlers,
            store=options.pop("store", MemoryInstanceStore()),
            sources=[source, *rest],
            secure_component=component,
            **options,
        )
    except BaseException:
        if owned:
            component.close()
        raise
    client._owns_component = owned
    monitor.attach(client)
    return client, monitor
