"""Bootstrap from Smartcard on the client side (LwM2M-TS-Core 1.1 §5.2.3.2, §5.2.4 and
Appendix G; SCS-10; spec-reference §2.3). Pure: the card is read by the asyncio adapter
(:mod:`lwm2m.io.smartcard`, in a worker thread), which hands this module *readings*.

- :class:`SmartcardBootstrap` is the first :class:`~lwm2m.client.bootstrap.BootstrapSource`
  of the bootstrap sequence (before :class:`~lwm2m.client.bootstrap.FactoryBootstrap`). Given a
  valid :class:`CardData`, its :meth:`~SmartcardBootstrap.load` makes the card's /0 Security,
  /1 Server, /2 Access Control and /21 OSCORE instances the client's configuration: instances
  of those objects that are not on the card are deleted, the engine Bootstrap-Writes the card's
  objects. The file digest (SHA-256) is remembered; secrets are never kept here (with a Secure
  Component the client's instance store imports them, or the file holds ``sc-ref:``
  references to credentials already on the card).
- :meth:`SmartcardBootstrap.check` decides what a new reading means, at every Register and
  Update to a server the card provisioned (:data:`CardCheck`):

  ============================  ===========  ===============================================
  reading                       check        what :func:`apply_reading` does
  ============================  ===========  ===============================================
  same digest                   UNCHANGED    nothing
  new digest, valid data        CHANGED      the derived configuration is replaced and the
                                             provisioned servers register again with it
  card removed or disabled      REMOVED      the derived configuration is deleted (with a
                                             best-effort De-register)
  malformed file / bad data     REJECTED     nothing changes: the previous valid
                                             configuration is kept, never half-applied
  ============================  ===========  ===============================================

  Card data is validated on a scratch object tree (Bootstrap-Writes and the
  Bootstrap-Finish consistency check of :func:`~lwm2m.client.bootstrap.check_configuration`)
  before the client's tree is touched; a failure while writing restores the snapshot.

Events (emitted as :class:`~lwm2m.client.events.ObjectEvent` through the object tree, so they
reach ``next_event()`` like other application events): :class:`SmartcardApplied`,
:class:`SmartcardReplaced`, :class:`SmartcardRemoved`, :class:`SmartcardRejected`. None of them,
and no repr here, carries a secret: digests are shown in hex, objects by their ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, TypeAlias

from lwm2m.client.accounts import read_accounts
from lwm2m.client.bootstrap import apply_bootstrap_data
from lwm2m.client.objects.security import OscoreObject, SecurityObject
from lwm2m.client.objects.server import AccessControlObject, ServerObject
from lwm2m.client.tree import ObjectTree
from lwm2m.errors import Lwm2mError
from lwm2m.model.nodes import ObjectNode, SingleResource

if TYPE_CHECKING:
    from lwm2m.client.engine import ClientEngine

__all__ = [
    "SMARTCARD_OBJECTS",
    "CardAbsent",
    "CardCheck",
    "CardData",
    "CardReading",
    "CardUnreadable",
    "SmartcardApplied",
    "SmartcardBootstrap",
    "SmartcardEvent",
    "SmartcardRejected",
    "SmartcardRemoved",
    "SmartcardReplaced",
    "apply_reading",
    "validate_card_objects",
]

#: The objects a smartcard provisions (Appendix G: /0, /1, and /2, /21 when present).
SMARTCARD_OBJECTS: tuple[int, ...] = (0, 1, 2, 21)


# -- readings -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardData:
    """A successful read of EF LwM2M_Bootstrap: its objects and the SHA-256 of the file."""

    objects: tuple[ObjectNode, ...]
    digest: bytes

    def __repr__(self) -> str:  # /0 and /21 instances hold keys: ids only
        ids = {node.id: list(node.instances) for node in self.objects}
        return f"CardData(digest={self.digest.hex()[:16]}…, objects={ids})"


@dataclass(frozen=True, slots=True)
class CardAbsent:
    """The card was removed, reset or disabled (``card_present()`` False, CardRemoved)."""

    reason: str


@dataclass(frozen=True, slots=True)
class CardUnreadable:
    """The card answered, but its bootstrap data is unusable (PKCS #15, file format, SCP03,
    refused command)."""

    reason: str


CardReading: TypeAlias = CardData | CardAbsent | CardUnreadable


class CardCheck(Enum):
    """What a reading means for the smartcard-derived configuration."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    REMOVED = "removed"
    REJECTED = "rejected"


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmartcardApplied:
    """The card's bootstrap data became the configuration (at start-up)."""

    digest: str
    short_server_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SmartcardReplaced:
    """The card data changed: the derived configuration was replaced (servers re-register)."""

    previous_digest: str
    digest: str
    short_server_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SmartcardRemoved:
    """The card went away: the derived configuration (these servers) was deleted."""

    reason: str
    short_server_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SmartcardRejected:
    """Unusable card data: nothing was applied; the previous configuration (digest
    ``kept_digest``, None when there was none) stays."""

    reason: str
    kept_digest: str | None


SmartcardEvent: TypeAlias = (
    SmartcardApplied | SmartcardReplaced | SmartcardRemoved | SmartcardRejected
)


# -- validation ---------------------------------------------------------------------------------


def _scratch_tree() -> ObjectTree:
    scratch = ObjectTree()
    for handler in (SecurityObject(), ServerObject(), AccessControlObject(), OscoreObject()):
        scratch.add(handler)
    return scratch


def validate_card_objects(objects: Sequence[ObjectNode]) -> list[str]:
    """The problems of applying ``objects`` as the whole configuration (empty: usable).

    Runs the Bootstrap-Writes and the Bootstrap-Finish check on a scratch tree with in-memory
    stores, so the client's tree and its Secure Component are not touched."""
    usable = [node for node in objects if node.id in SMARTCARD_OBJECTS]
    if not any(node.id == 0 and node.instances for node in usable):
        return ["the card holds no Security (/0) instance"]
    scratch = _scratch_tree()
    try:
        problems = apply_bootstrap_data(scratch, usable)
    except Lwm2mError as exc:
        return [f"invalid card data: {exc}"]
    if any(a.bootstrap for a in read_accounts(scratch)[0]):
        # a bootstrap server account on the card completes a configuration without DM servers
        problems = [p for p in problems if "no LwM2M server account" not in p]
    return problems


def _ssids(objects: Iterable[ObjectNode]) -> tuple[int, ...]:
    found: set[int] = set()
    for node in objects:
        rid = {0: 10, 1: 0}.get(node.id)
        if rid is None:
            continue
        for instance in node.instances.values():
            resource = instance.resources.get(rid)
            if isinstance(resource, SingleResource) and isinstance(resource.value, int):
                found.add(resource.value)
    return tuple(sorted(found))


# -- the source ---------------------------------------------------------------------------------


class SmartcardBootstrap:
    """The smartcard step of the bootstrap sequence, and the state needed to re-check the card
    (see the module docstring).

    :param reading: what the card held when the client started (None or not
        :class:`CardData`: the source passes and the next source is consulted).
    """

    name = "smartcard"

    def __init__(self, reading: CardReading | None = None) -> None:
        self.reading = reading
        self.digest: bytes | None = None
        """SHA-256 of the applied file (None: nothing from the card is applied)."""
        self.derived: frozenset[tuple[int, int]] = frozenset()
        """``(object id, instance id)`` of every instance the card provisioned."""
        self.short_server_ids: tuple[int, ...] = ()
        """The servers the card provisioned."""

    def __repr__(self) -> str:
        digest = self.digest.hex()[:16] if self.digest is not None else None
        return f"SmartcardBootstrap(digest={digest}, servers={list(self.short_server_ids)})"

    @property
    def active(self) -> bool:
        """Whether a smartcard-derived configuration is in place."""
        return self.digest is not None

    @property
    def security_instance_ids(self) -> frozenset[int]:
        """The /0 instances the card provisioned (their connections are re-checked)."""
        return frozenset(iid for oid, iid in self.derived if oid == 0)

    def provisioned(self, security_instance_id: int) -> bool:
        """Whether requests over this account must re-check the card first."""
        return self.active and security_instance_id in self.security_instance_ids

    # -- BootstrapSource ------------------------------------------------------------------------

    def load(self, tree: ObjectTree) -> Sequence[ObjectNode] | None:
        reading = self.reading
        self.reading = None  # applied once; later readings go through check()
        if isinstance(reading, CardAbsent):
            return None
        if isinstance(reading, CardUnreadable):
            tree.object_event(SmartcardRejected(reading.reason, None))
            return None
        if reading is None:
            return None
        problems = validate_card_objects(reading.objects)
        if problems:
            tree.object_event(SmartcardRejected(problems[0], None))
            return None
        objects = [node for node in reading.objects if node.id in SMARTCARD_OBJECTS]
        self._delete_others(tree, objects)
        self._remember(reading, objects)
        tree.object_event(SmartcardApplied(reading.digest.hex(), self.short_server_ids))
        return objects

    # -- re-checks ------------------------------------------------------------------------------

    def check(self, reading: CardReading) -> CardCheck:
        """What ``reading`` means (no state changes; see the module docstring)."""
        match reading:
            case CardData(objects, digest):
                if digest == self.digest:
                    return CardCheck.UNCHANGED
                if validate_card_objects(objects):
                    return CardCheck.REJECTED
                return CardCheck.CHANGED
            case CardAbsent():
                return CardCheck.REMOVED if self.active else CardCheck.UNCHANGED
            case CardUnreadable():
                return CardCheck.REJECTED

    def replace(self, tree: ObjectTree, reading: CardData) -> None:
        """Replace the derived configuration with ``reading`` (all or nothing)."""
        previous = self.digest
        objects = [node for node in reading.objects if node.id in SMARTCARD_OBJECTS]
        snapshot = tree.snapshot(SMARTCARD_OBJECTS)
        try:
            self._delete_derived(tree)
            self._delete_others(tree, objects)
            problems = apply_bootstrap_data(tree, objects)
            if any(a.bootstrap for a in read_accounts(tree)[0]):
                problems = [p for p in problems if "no LwM2M server account" not in p]
            if problems:
                raise _Inconsistent(problems[0])
        except (Lwm2mError, _Inconsistent) as exc:
            tree.restore(snapshot)
            tree.object_event(SmartcardRejected(f"card data not applied: {exc}", _hex(previous)))
            return
        self._remember(reading, objects)
        tree.object_event(
            SmartcardReplaced(_hex(previous) or "", reading.digest.hex(), self.short_server_ids)
        )

    def remove(self, tree: ObjectTree, reason: str) -> None:
        """Delete the derived configuration (the card went away)."""
        servers = self.short_server_ids
        self._delete_derived(tree)
        self.digest = None
        self.derived = frozenset()
        self.short_server_ids = ()
        tree.object_event(SmartcardRemoved(reason, servers))

    # -- internals ------------------------------------------------------------------------------

    def _remember(self, reading: CardData, objects: Sequence[ObjectNode]) -> None:
        self.digest = reading.digest
        self.derived = frozenset((node.id, iid) for node in objects for iid in node.instances)
        self.short_server_ids = _ssids(objects)

    def _delete_derived(self, tree: ObjectTree) -> None:
        for oid, iid in sorted(self.derived, reverse=True):
            if oid in tree and iid in tree.instance_ids(oid):
                tree.delete(oid, iid)

    @staticmethod
    def _delete_others(tree: ObjectTree, objects: Sequence[ObjectNode]) -> None:
        """Instances of /0, /1, /2, /21 that the card does not hold: the card's data is the
        whole configuration."""
        keep = {(node.id, iid) for node in objects for iid in node.instances}
        for oid in SMARTCARD_OBJECTS:
            if oid not in tree:
                continue
            for iid in tree.instance_ids(oid):
                if (oid, iid) not in keep:
                    tree.delete(oid, iid)


class _Inconsistent(Exception):
    pass


def _hex(digest: bytes | None) -> str | None:
    return digest.hex() if digest is not None else None


def apply_reading(
    engine: ClientEngine, source: SmartcardBootstrap, reading: CardReading, now: float
) -> CardCheck:
    """Act on a card reading taken before a Register or Update to a provisioned server.

    CHANGED: the provisioned servers' registrations end, the configuration is replaced and the
    servers register again. REMOVED: the configuration is deleted after a best-effort
    De-register. REJECTED: a :class:`SmartcardRejected` event, nothing else changes."""
    outcome = source.check(reading)
    servers = source.short_server_ids
    match outcome:
        case CardCheck.CHANGED:
            assert isinstance(reading, CardData)
            engine.reprovision(now, servers, lambda tree: source.replace(tree, reading))
        case CardCheck.REMOVED:
            assert isinstance(reading, CardAbsent)
            engine.reprovision(
                now, servers, lambda tree: source.remove(tree, reading.reason), deregister=True
            )
        case CardCheck.REJECTED:
            reason = (
                reading.reason
                if isinstance(reading, CardAbsent | CardUnreadable)
                else "; ".join(validate_card_objects(reading.objects))
            )
            engine.tree.object_event(SmartcardRejected(reason, _hex(source.digest)))
            engine.handle_timer(now)  # deliver the event
        case CardCheck.UNCHANGED:
            pass
    return outcome
