"""Registrations: validation of Register / Update and the immutable :class:`Registration` record.

Implements the server side of the Client Registration interface (LwM2M-TS-Core 1.1 §6.2,
LwM2M-TS-Transport 1.1 §6.2 "Registration Interface"):

- **Register** (§6.2.1) — ``ep`` present and sane (4.00), ``lt`` a positive number of seconds
  (4.00), ``lwm2m`` a version this server supports (**4.12 Precondition Failed** otherwise; 1.0
  and 1.1 by default — a 1.2 client gets 4.12 and may fall back, see :class:`ServerConfig`),
  ``b`` a valid binding for that version (4.00), object links well formed (4.00): ``</o>``
  and ``</o/i>`` below the root or the alternate path that ``rt="oma.lwm2m"`` declares, ``ver``
  as ``MAJOR.MINOR`` and consistent per object, ``ct`` on the root link listing the content
  formats the client supports.
- **Update** (§6.2.2) — the same checks on whatever the Update changes.
- **Lifetime** — a registration expires ``lt`` seconds (plus a configurable grace) after the
  Register or the last Update (§6.2.1, §6.2.2); :meth:`Registration.expires_at`.

This is store state, not a state machine (style anchors §2.7): a :class:`Registration` is never
mutated; :func:`apply_update` returns a new one and stores answer ``(old, new)``.

Memory: a server keeps one record per client, so the record is lean: ``__slots__``, interned
strings, and object links / version maps shared between clients that registered the same links
(:class:`LinkCache`). The per-client model is a :class:`~lwm2m.model.registry.ModelView` shared
by every client with the same object versions (:class:`ModelViews`).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from lwm2m.codec.link import Link
from lwm2m.errors import BadRequest, CodecError, PreconditionFailed
from lwm2m.model.nodes import MultipleResource, Node, ObjectInstance, SingleResource
from lwm2m.model.path import Path
from lwm2m.model.registry import ModelRegistry, ModelView
from lwm2m.operations.requests import Register, Update
from lwm2m.server.security import PeerIdentity

__all__ = [
    "SECURE_COMPONENT_OBJECT_ID",
    "Address",
    "ComponentIdentification",
    "ComponentIdentities",
    "LinkCache",
    "ModelViews",
    "ObjectLinks",
    "Registration",
    "ServerConfig",
    "apply_update",
    "component_identification",
    "new_registration",
    "parse_binding",
    "parse_object_links",
    "secure_component_instances",
]

Address = tuple[str, int]
"""A peer's transport address: ``(host, port)``."""

_EMPTY: Mapping[str, str | None] = MappingProxyType({})
_BINDINGS_1_1 = frozenset("UTSN")
# LwM2M 1.0 binding modes (Core 1.0 §5.3.1.1): the queue flag was part of ``b``.
_BINDINGS_1_0 = {"U": False, "UQ": True, "S": False, "SQ": True, "US": False, "UQS": True}
_MAX_ENDPOINT = 255


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Registration policy and queue-mode timing of an LwM2M server."""

    supported_versions: frozenset[str] = frozenset({"1.0", "1.1"})
    """``lwm2m=`` values accepted; others get 4.12 (Core §6.2.1). 1.2 is off by default: this
    server implements 1.1, and a 1.2 client answered 4.12 falls back to 1.1 (Core 1.2 §6.2.1)."""
    min_lifetime: int = 1
    """Smallest ``lt`` accepted (seconds); smaller is 4.00."""
    max_lifetime: int | None = None
    """Largest ``lt`` accepted, None for no bound; larger is 4.00."""
    lifetime_grace: float = 0.0
    """Seconds a registration survives past ``lt`` (network delays of the Update)."""
    awake_time: float = 93.0
    """Queue mode: how long a client stays reachable after its last message (Transport §6.5:
    the client's MAX_TRANSMIT_WAIT, 93 s with the RFC 7252 defaults). The client's CoAP
    parameters are what count and the server cannot know them, so the default is the RFC's
    93 s whatever the server's own ``coap_config``; set it for a fleet that uses others."""
    hold_requests: bool = True
    """Queue mode: hold requests to a sleeping client until it wakes (True) or fail them at once
    with :class:`~lwm2m.server.errors.ClientSleeping` (False)."""
    max_held_requests: int = 64
    """Queue mode: requests held per sleeping client; beyond it new ones fail ClientSleeping."""
    hold_timeout: float = 120.0
    """Queue mode: how long a request waits for a sleeping client before failing with
    :class:`~lwm2m.server.errors.ClientSleeping`."""

    def __post_init__(self) -> None:
        if self.min_lifetime < 1:
            raise ValueError("min_lifetime must be at least 1 second")
        if self.max_lifetime is not None and self.max_lifetime < self.min_lifetime:
            raise ValueError("max_lifetime must not be below min_lifetime")
        if self.awake_time <= 0 or self.hold_timeout <= 0 or self.lifetime_grace < 0:
            raise ValueError("awake_time and hold_timeout must be > 0, lifetime_grace >= 0")


@dataclass(frozen=True, slots=True)
class ObjectLinks:
    """What a Register / Update payload says: the links, the root path, the object versions and
    the content formats the client supports."""

    links: tuple[Link, ...]
    root: str = "/"
    """``"/"`` or the alternate path declared with ``rt="oma.lwm2m"`` (Transport §6.2.1)."""
    versions: tuple[tuple[int, str], ...] = ()
    """``(object id, "M.m")`` for every object listed, sorted; no ``ver`` means 1.0."""
    content_formats: tuple[int, ...] = ()
    """From ``ct`` on the root link: the formats the client supports (Core §6.2.1, 1.1)."""

    @property
    def object_versions(self) -> dict[int, str]:
        return dict(self.versions)

    @property
    def instances(self) -> tuple[Path, ...]:
        """Every ``/o`` and ``/o/i`` the client listed (relative to the root)."""
        out: list[Path] = []
        for link in self.links:
            path = _relative_path(link.uri, self.root)
            if path is not None and not path.is_root:
                out.append(path)
        return tuple(out)


_NO_LINKS = ObjectLinks(())


def _relative_path(uri: str, root: str) -> Path | None:
    if root != "/":
        if uri == root or not uri.startswith(root + "/"):
            return None
        uri = uri[len(root) :]
    try:
        return Path.parse(uri)
    except ValueError:  # InvalidPathError
        return None


def parse_object_links(links: tuple[Link, ...]) -> ObjectLinks:
    """Validate and summarise the object links of a Register / Update (raises BadRequest)."""
    if not links:
        return _NO_LINKS
    root = "/"
    content_formats: tuple[int, ...] = ()
    try:
        for link in links:
            if "oma.lwm2m" in link.resource_types:
                if root != "/":
                    raise BadRequest('more than one link with rt="oma.lwm2m"')
                uri = link.uri.rstrip("/") or "/"
                if not uri.startswith("/"):
                    raise BadRequest(f"alternate path {link.uri[:60]!r} is not absolute")
                root = uri
        versions: dict[int, str] = {}
        listed: set[int] = set()
        for link in links:
            uri = link.uri
            if uri in (root, root + "/") or (root != "/" and uri == "/"):
                if link.has("ct"):
                    content_formats = link.content_formats
                continue
            path = _relative_path(uri, root)
            if path is None or path.is_root:
                raise BadRequest(f"link <{uri[:60]}> is not an object or object instance")
            if len(path.ids) > 2:
                raise BadRequest(f"link <{uri[:60]}> goes deeper than an object instance")
            object_id = path.ids[0]
            listed.add(object_id)
            # ``ver`` belongs on object links (Core §6.2.1); absent means 1.0.
            version = link.version if len(path.ids) == 1 else None
            if version is None:
                continue
            known = versions.get(object_id)
            if known is not None and known != version:
                raise BadRequest(f"object {object_id} listed with versions {known} and {version}")
            versions[object_id] = sys.intern(version)
        for object_id in listed - versions.keys():
            versions[object_id] = "1.0"
    except CodecError as exc:
        raise BadRequest(f"bad object links: {exc}") from None
    return ObjectLinks(
        links, sys.intern(root), tuple(sorted(versions.items())), tuple(content_formats)
    )


class LinkCache:
    """Shares the parsed object links of identical payloads between registrations.

    Fleets register with the same few link lists; keeping one :class:`ObjectLinks` per distinct
    list instead of one per client is most of a registration's memory. Bounded (LRU).
    """

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int = 1024) -> None:
        self._entries: OrderedDict[tuple[Link, ...], ObjectLinks] = OrderedDict()
        self._size = size

    def get(self, links: tuple[Link, ...]) -> ObjectLinks:
        """The (shared) summary of ``links``; raises BadRequest when they are invalid."""
        entries = self._entries
        found = entries.get(links)
        if found is not None:
            entries.move_to_end(links)
            return found
        parsed = parse_object_links(links)
        entries[parsed.links] = parsed
        if len(entries) > self._size:
            entries.popitem(last=False)
        return parsed

    def __len__(self) -> int:
        return len(self._entries)


def parse_binding(binding: str, version: str) -> tuple[str, bool]:
    """Validate ``b`` for enabler ``version``; returns ``(binding, queue mode from b)``.

    LwM2M 1.1 (Core §6.2.1, Table 6.2.1-1): any non-empty set of U, T, S, N, each at most once;
    the queue flag is the separate ``Q`` parameter. LwM2M 1.0: U, UQ, S, SQ, US or UQS.

    >>> parse_binding("UQ", "1.0"), parse_binding("UT", "1.1")
    (('U', True), ('UT', False))
    """
    if version == "1.0":
        if binding not in _BINDINGS_1_0:
            raise BadRequest(f"binding {binding[:20]!r} is not a LwM2M 1.0 binding mode")
        return sys.intern(binding.replace("Q", "")), _BINDINGS_1_0[binding]
    if (
        not binding
        or any(c not in _BINDINGS_1_1 for c in binding)
        or len(set(binding)) != len(binding)
    ):
        raise BadRequest(f"binding {binding[:20]!r} is not a set of U, T, S, N")
    return sys.intern(binding), False


def _check_lifetime(lifetime: int, config: ServerConfig) -> None:
    if lifetime < config.min_lifetime:
        raise BadRequest(f"lifetime {lifetime} is below {config.min_lifetime} s")
    if config.max_lifetime is not None and lifetime > config.max_lifetime:
        raise BadRequest(f"lifetime {lifetime} is above {config.max_lifetime} s")


def _check_endpoint(endpoint: str) -> None:
    if not endpoint or len(endpoint) > _MAX_ENDPOINT:
        raise BadRequest("endpoint name is empty or longer than 255 characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in endpoint):
        raise BadRequest("endpoint name contains control characters")


def _check_sms(number: str | None) -> None:
    if number is not None and (not number.isascii() or not number.isdigit()):
        raise BadRequest("sms is not an MSISDN (digits without '+')")


@dataclass(frozen=True, slots=True)
class Registration:
    """One client's registration (LwM2M-TS-Core §6.2.1), immutable.

    Times are seconds on the server's clock (wall-clock seconds in the asyncio service, so they
    survive a restart with a persistent store).
    """

    id: str
    """The registration id: the location is ``/rd/{id}``."""
    endpoint: str
    """The endpoint client name (``ep``)."""
    address: Address
    """Where the client's last Register / Update came from (requests go there)."""
    identity: PeerIdentity | None
    """The authenticated identity of the client's security session (None for plain UDP)."""
    lifetime: int
    """``lt`` in seconds."""
    binding: str
    """``b`` without the queue flag, e.g. ``"U"``."""
    queue_mode: bool
    """The client uses queue mode (``Q``, or a 1.0 ``UQ`` binding)."""
    version: str
    """The enabler version (``lwm2m=``)."""
    links: ObjectLinks
    """The object links, alternate root, object versions and content formats."""
    registered_at: float
    """When the Register was accepted."""
    updated_at: float
    """When the Register or the last Update was accepted (the lifetime counts from here)."""
    sms_number: str | None = None
    """``sms``: the client's MSISDN."""
    additional: Mapping[str, str | None] = field(default_factory=lambda: _EMPTY)
    """Other query parameters of the Register (Core §6.2.1 allows extensions)."""

    @property
    def location(self) -> str:
        """The registration's location path, ``/rd/{id}``."""
        return f"/rd/{self.id}"

    @property
    def objects(self) -> tuple[Link, ...]:
        return self.links.links

    @property
    def object_versions(self) -> dict[int, str]:
        return self.links.object_versions

    @property
    def content_formats(self) -> tuple[int, ...]:
        return self.links.content_formats

    @property
    def root_path(self) -> str:
        return self.links.root

    def expires_at(self, grace: float = 0.0) -> float:
        """When the registration expires if no Update arrives."""
        return self.updated_at + self.lifetime + grace

    def is_expired(self, now: float, grace: float = 0.0) -> bool:
        return now > self.expires_at(grace)

    def accepts(self, identity: PeerIdentity | None) -> bool:
        """Whether a request with ``identity`` may update or end this registration: any
        request for a plain one, only the same identity for an authenticated one (a plain
        request, which has none, included)."""
        return self.identity is None or identity == self.identity

    def supports(self, content_format: int) -> bool:
        """Whether the client advertised ``content_format`` (always true when it listed none)."""
        return not self.links.content_formats or content_format in self.links.content_formats


def _intern_host(address: Address) -> Address:
    return (sys.intern(address[0]), address[1])


def _additional(params: Mapping[str, str | None]) -> Mapping[str, str | None]:
    return MappingProxyType(dict(params)) if params else _EMPTY


def new_registration(
    request: Register,
    *,
    registration_id: str,
    address: Address,
    identity: PeerIdentity | None,
    now: float,
    config: ServerConfig | None = None,
    links: LinkCache | None = None,
) -> Registration:
    """Validate a Register and build its record.

    Raises BadRequest (4.00: endpoint, lifetime, binding, links, sms) or PreconditionFailed
    (4.12: unsupported ``lwm2m`` version). The endpoint/identity check is
    :func:`~lwm2m.server.security.check_endpoint_identity`, done by the caller with its
    security store.
    """
    config = config or ServerConfig()
    _check_endpoint(request.endpoint)
    version = request.lwm2m_version
    if version not in config.supported_versions:
        supported = ", ".join(sorted(config.supported_versions))
        raise PreconditionFailed(f"LwM2M version {version[:10]!r} not supported ({supported})")
    _check_lifetime(request.lifetime, config)
    binding, queue_in_binding = parse_binding(request.binding, version)
    _check_sms(request.sms_number)
    object_links = links.get(request.objects) if links is not None else None
    if object_links is None:
        object_links = parse_object_links(request.objects)
    return Registration(
        id=registration_id,
        endpoint=request.endpoint,
        address=_intern_host(address),
        identity=identity,
        lifetime=request.lifetime,
        binding=binding,
        queue_mode=request.queue_mode or queue_in_binding,
        version=sys.intern(version),
        links=object_links,
        registered_at=now,
        updated_at=now,
        sms_number=request.sms_number,
        additional=_additional(request.additional),
    )


def apply_update(
    registration: Registration,
    update: Update,
    *,
    address: Address,
    identity: PeerIdentity | None,
    now: float,
    config: ServerConfig | None = None,
    links: LinkCache | None = None,
) -> Registration:
    """The registration after ``update`` (Core §6.2.2); raises BadRequest for invalid fields.

    A request the registration does not :meth:`~Registration.accepts` (another identity, or
    none for an authenticated registration) is a 4.00: it does not come from the client that
    registered.
    """
    config = config or ServerConfig()
    if not registration.accepts(identity):
        raise BadRequest("Update from another identity than the registration's")
    lifetime = registration.lifetime
    if update.lifetime is not None:
        _check_lifetime(update.lifetime, config)
        lifetime = update.lifetime
    binding, queue = registration.binding, registration.queue_mode
    if update.binding is not None:
        binding, queue_in_binding = parse_binding(update.binding, registration.version)
        if registration.version == "1.0":
            queue = queue_in_binding
    _check_sms(update.sms_number)
    object_links = registration.links
    if update.objects is not None:
        object_links = (
            links.get(update.objects) if links is not None else parse_object_links(update.objects)
        )
    additional = registration.additional
    if update.additional:
        merged = dict(additional)
        merged.update(update.additional)
        additional = _additional(merged)
    return Registration(
        id=registration.id,
        endpoint=registration.endpoint,
        address=_intern_host(address),
        identity=identity if identity is not None else registration.identity,
        lifetime=lifetime,
        binding=binding,
        queue_mode=queue,
        version=registration.version,
        links=object_links,
        registered_at=registration.registered_at,
        updated_at=now,
        sms_number=(
            update.sms_number if update.sms_number is not None else registration.sms_number
        ),
        additional=additional,
    )


class ModelViews:
    """One :class:`ModelView` per distinct set of object versions, shared by every client that
    registered with that set (no per-registration model copies)."""

    __slots__ = ("_registry", "_views")

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry
        self._views: dict[tuple[tuple[int, str], ...], ModelView] = {}

    @property
    def registry(self) -> ModelRegistry:
        return self._registry

    def for_versions(self, versions: tuple[tuple[int, str], ...]) -> ModelView:
        view = self._views.get(versions)
        if view is None:
            view = self._registry.view(dict(versions))
            self._views[versions] = view
        return view

    def for_registration(self, registration: Registration) -> ModelView:
        """The model to decode ``registration``'s payloads with (its registered versions)."""
        return self.for_versions(registration.links.versions)

    def __len__(self) -> int:
        return len(self._views)


# -- Secure Component identification (LwM2M-SCS-2) ----------------------------------------------

SECURE_COMPONENT_OBJECT_ID = 33000
"""The project's Secure Component object (``lwm2m.secure.object``; the server layer does not
import the component backends, so the id is repeated here; every function takes ``object_id=``)."""

_COMPONENT_TYPES = {0: "software", 1: "UICC", 2: "eUICC", 3: "eSE", 4: "TEE", 5: "HSM"}


@dataclass(frozen=True, slots=True)
class ComponentIdentification:
    """What a client's Secure Component object instance says about the component (resources
    0-13 of /33000/x): kept by the server next to the registration, not in it."""

    instance_id: int
    component_type: int | None = None
    secure_hardware: bool | None = None
    backend: str = ""
    label: str = ""
    manufacturer: str = ""
    model: str = ""
    serial_number: str = ""
    identifiers: tuple[str, ...] = ()
    platform_version: str = ""
    firmware_version: str = ""
    services: tuple[str, ...] = ()
    dloa: tuple[tuple[str, str, str], ...] = ()
    """``(registrar URL, platform id, application id)`` per DLOA reference."""

    @property
    def type_name(self) -> str:
        """``software``, ``UICC``, ``eUICC``, ``eSE``, ``TEE``, ``HSM`` (or ``type N``)."""
        if self.component_type is None:
            return "unknown type"
        return _COMPONENT_TYPES.get(self.component_type, f"type {self.component_type}")

    @property
    def summary(self) -> str:
        """One line: type, backend, the secure-hardware flag, main identifiers, DLOA.

        >>> ComponentIdentification(0, 0, False, "soft", identifiers=("soft-id:ab",)).summary
        '/33000/0 software (soft) — software, not secure hardware; ids: soft-id:ab; dloa: -'
        """
        what = f"/{SECURE_COMPONENT_OBJECT_ID}/{self.instance_id} {self.type_name}"
        if self.backend:
            what += f" ({self.backend})"
        if self.label:
            what += f" {self.label!r}"
        maker = " ".join(t for t in (self.manufacturer, self.model) if t)
        if maker:
            what += f" {maker}"
        if self.serial_number:
            what += f" serial={self.serial_number}"
        if self.secure_hardware:
            what += " — secure hardware"
        elif self.secure_hardware is False:
            what += " — software, not secure hardware"
        else:
            what += " — secure hardware: not stated"
        ids = ", ".join(self.identifiers[:4]) + (", …" if len(self.identifiers) > 4 else "")
        dloa = ", ".join(" ".join(t for t in ref if t) for ref in self.dloa)
        return f"{what}; ids: {ids or '-'}; dloa: {dloa or '-'}"


def _text(instance: ObjectInstance, rid: int) -> str:
    resource = instance.resources.get(rid)
    if isinstance(resource, SingleResource) and isinstance(resource.value, str):
        return resource.value
    return ""


def _texts(instance: ObjectInstance, rid: int) -> tuple[str, ...]:
    resource = instance.resources.get(rid)
    if isinstance(resource, MultipleResource):
        return tuple(str(v) for _, v in sorted(resource.values.items()) if v is not None)
    if isinstance(resource, SingleResource) and resource.value is not None:
        return (str(resource.value),)
    return ()


def component_identification(node: Node, instance_id: int = 0) -> ComponentIdentification:
    """The identification in a read Secure Component object instance (an ObjectInstance, or
    an object node whose instance ``instance_id`` is taken); missing resources stay empty."""
    if not isinstance(node, ObjectInstance):
        instances = getattr(node, "instances", {})
        found = instances.get(instance_id)
        if not isinstance(found, ObjectInstance):
            raise ValueError(f"no Secure Component instance {instance_id} in the node")
        node = found
    kind = node.resources.get(0)
    flag = node.resources.get(1)
    registrars, platforms, applications = (_texts(node, rid) for rid in (11, 12, 13))
    dloa = tuple(
        (
            registrar,
            platforms[i] if i < len(platforms) else "",
            applications[i] if i < len(applications) else "",
        )
        for i, registrar in enumerate(registrars)
    )
    return ComponentIdentification(
        instance_id=node.id,
        component_type=(
            kind.value if isinstance(kind, SingleResource) and isinstance(kind.value, int) else None
        ),
        secure_hardware=(
            flag.value
            if isinstance(flag, SingleResource) and isinstance(flag.value, bool)
            else None
        ),
        backend=sys.intern(_text(node, 2)),
        label=_text(node, 3),
        manufacturer=_text(node, 4),
        model=_text(node, 5),
        serial_number=_text(node, 6),
        identifiers=_texts(node, 7),
        platform_version=_text(node, 8),
        firmware_version=_text(node, 9),
        services=_texts(node, 10),
        dloa=dloa,
    )


def secure_component_instances(
    registration: Registration, object_id: int = SECURE_COMPONENT_OBJECT_ID
) -> tuple[int, ...]:
    """The Secure Component object instances a client listed in its Register / Update."""
    return tuple(
        path.ids[1]
        for path in registration.links.instances
        if len(path.ids) == 2 and path.ids[0] == object_id
    )


class ComponentIdentities:
    """The Secure Component identification of registered clients, by registration id: kept
    beside the registration records (which stay lean; a client without a component costs
    nothing here). Bounded: the oldest entries go first beyond ``size``."""

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int = 100_000) -> None:
        self._entries: OrderedDict[str, tuple[ComponentIdentification, ...]] = OrderedDict()
        self._size = size

    def set(self, registration_id: str, found: tuple[ComponentIdentification, ...]) -> None:
        self._entries[registration_id] = found
        self._entries.move_to_end(registration_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def get(self, registration_id: str) -> tuple[ComponentIdentification, ...]:
        """The identification read for a registration (empty: none, or not read yet)."""
        return self._entries.get(registration_id, ())

    def discard(self, registration_id: str) -> None:
        self._entries.pop(registration_id, None)

    def __len__(self) -> int:
        return len(self._entries)
