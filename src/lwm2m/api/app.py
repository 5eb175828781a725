"""The REST API of an LwM2M server: :func:`create_app` wraps a running
:class:`~lwm2m.io.lwm2m_server.LwM2MServer` in a FastAPI app (layer L4, decision 6 of
ARCHITECTURE.md; uvicorn serves it in the event loop of the CoAP endpoint).

A thin adapter: each route parses its input (path, content format, node JSON typed by the
client's object model through :mod:`lwm2m.codec.node_json`), makes one call on the server and
maps the :class:`~lwm2m.operations.responses.Response` (or the failure,
:mod:`lwm2m.api.errors`) to JSON.
All routes are under ``/api``:

=========================================================  =======================================
``GET    /api/clients``                                    registrations
``GET    /api/clients/{endpoint}``                         one registration
``GET    /api/clients/{endpoint}/observations``            its observations
``GET    /api/clients/{endpoint}/{path}?format=``          Read
``PUT    /api/clients/{endpoint}/{path}``                  Write (``replace`` false: partial)
``POST   /api/clients/{endpoint}/{path}/execute``          Execute
``POST   /api/clients/{endpoint}/{object_id}``             Create
``DELETE /api/clients/{endpoint}/{path}``                  Delete
``GET    /api/clients/{endpoint}/{path}/discover``         Discover
``PUT    /api/clients/{endpoint}/{path}/attributes``       Write-Attributes
``POST   /api/clients/{endpoint}/{path}/observe?format=``  Observe
``DELETE /api/clients/{endpoint}/{path}/observe``          cancel the observations of ``path``
``POST   /api/clients/{endpoint}/composite?format=``       Read-Composite
``PUT    /api/clients/{endpoint}/composite?format=``       Write-Composite (null: no value)
``POST   /api/clients/{endpoint}/composite/observe``       Observe-Composite
``DELETE /api/clients/{endpoint}/composite/observe``       cancel the composite observations
``POST   /api/clients/{endpoint}/admin-script``            run an APDU script on its Secure Element
``GET    /api/events``                                     Server-Sent Events (:mod:`.events`)
``GET    /api/security``                                   security entries, without secrets
``PUT    /api/security/{endpoint}``                        add / replace an entry (key write-only)
``DELETE /api/security/{endpoint}``                        remove an entry
=========================================================  =======================================

``{path}`` is ``3/0/9`` (1 to 4 ids); ``format`` a content format by name (``senml-json``) or
number. Endpoint names travel as one URL path segment (percent-encode what needs it; an endpoint
name containing ``/`` cannot be addressed). Without a security store every ``/api/security``
route answers 404. The web UI (:mod:`lwm2m.api.ui`) is served at ``/`` unless ``ui=False``.
With ``tokens``, every ``/api`` route and the OpenAPI document need a bearer token
(:mod:`lwm2m.api.auth`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from cryptography.hazmat.primitives.serialization import load_der_public_key
from fastapi import APIRouter, FastAPI, Query, Response
from pydantic import SecretStr
from starlette.middleware.trustedhost import TrustedHostMiddleware

from lwm2m.api.auth import ApiTokens, BearerAuth, declare_bearer
from lwm2m.api.errors import ApiError, failure, install_handlers
from lwm2m.api.events import EventStreamResponse, EventStreams
from lwm2m.api.guard import DEFAULT_MAX_BODY, RequestGuard
from lwm2m.api.schemas import (
    AddressModel,
    AdminScriptAnswer,
    AdminScriptBody,
    AttributesBody,
    CodeAnswer,
    CompositeAnswer,
    CompositeBody,
    CompositeCodeAnswer,
    CompositeObserveAnswer,
    CompositeWriteBody,
    ContentAnswer,
    CreateAnswer,
    CreateBody,
    DiscoverAnswer,
    ErrorAnswer,
    ExecuteBody,
    IdentityModel,
    LinkModel,
    ObjectLinkModel,
    ObservationModel,
    ObserveAnswer,
    RApduModel,
    RegistrationModel,
    SecurityBody,
    SecurityEntryModel,
    WriteBody,
)
from lwm2m.api.ui import mount_ui
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Attributes
from lwm2m.codec.node_json import node_from_json, node_to_json
from lwm2m.errors import CodecError, ModelError
from lwm2m.io.lwm2m_server import LwM2MServer
from lwm2m.io.se_admin import run_admin_script
from lwm2m.model import Node, ObjectInstance, ObjectNode, Path
from lwm2m.model.registry import ObjectModel
from lwm2m.operations.responses import Response as Lwm2mResponse
from lwm2m.secure.admin import AdminStatus
from lwm2m.secure.ram import CommandScript, ScriptFormatError
from lwm2m.server.observation import Observation
from lwm2m.server.registration import Registration
from lwm2m.server.security import SecurityInfo
from lwm2m.store.base import NonUniqueSecurityInfo, SecurityStore

__all__ = ["create_app"]

T = TypeVar("T")

FormatQuery = Annotated[
    str | None, Query(description="content format by name (senml-json) or number (110)")
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorAnswer, "description": text}
    for status, text in {
        400: "bad input, or the client answered 4.00",
        403: "the client answered 4.01 / 4.03",
        404: "unknown client, or the client answered 4.04",
        405: "the client answered 4.05",
        406: "the client answered 4.06",
        413: "the request body is over the limit, or the client answered 4.13",
        415: "a POST or PUT without Content-Type: application/json",
        502: "another error answer, a Reset or an undecodable answer",
        503: "queue mode: the client is asleep",
        504: "no answer in time",
    }.items()
}
_SECURITY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorAnswer, "description": "bad entry"},
    413: {"model": ErrorAnswer, "description": "the request body is over the limit"},
    415: {"model": ErrorAnswer, "description": "a PUT without Content-Type: application/json"},
    404: {"model": ErrorAnswer, "description": "no such entry, or no security store"},
    409: {"model": ErrorAnswer, "description": "the identity belongs to another endpoint"},
}


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _registration_model(registration: Registration, awake: bool) -> RegistrationModel:
    versions = registration.object_versions
    objects = [
        ObjectLinkModel(
            uri=str(path),
            object_id=path.ids[0],
            instance_id=path.ids[1] if len(path.ids) > 1 else None,
            version=versions.get(path.ids[0], "1.0"),
        )
        for path in registration.links.instances
    ]
    identity = registration.identity
    host, port = registration.address
    return RegistrationModel(
        endpoint=registration.endpoint,
        registration_id=registration.id,
        location=registration.location,
        address=AddressModel(host=host, port=port),
        lifetime=registration.lifetime,
        binding=registration.binding,
        lwm2m_version=registration.version,
        queue_mode=registration.queue_mode,
        awake=awake,
        sms_number=registration.sms_number,
        registered_at=_time(registration.registered_at),
        updated_at=_time(registration.updated_at),
        expires_at=_time(registration.expires_at()),
        root_path=registration.root_path,
        content_formats=list(registration.content_formats),
        objects=objects,
        identity=None
        if identity is None
        else IdentityModel(kind=identity.kind.value, value=identity.value),
    )


def _path(text: str) -> Path:
    """``3/0/9`` (a leading ``/`` allowed) as a Path of 1-4 ids, or a 400."""
    try:
        path = Path.parse(text if text.startswith("/") else "/" + text)
    except ModelError as exc:
        raise ApiError(400, str(exc)) from None
    if path.is_root:
        raise ApiError(400, "the path must name at least an object, e.g. 3/0/9")
    return path


def _format(text: str | None) -> ContentFormat | None:
    if text is None:
        return None
    try:
        return ContentFormat.from_name(text)
    except ValueError as exc:
        raise ApiError(400, f"format: {exc}") from None


def _format_name(cf: int | None) -> str | None:
    return None if cf is None else ContentFormat(cf).short_name


def _node(data: Any, path: Path, model: ObjectModel) -> Node:
    try:
        return node_from_json(data, path, model)
    except (CodecError, ModelError) as exc:
        raise ApiError(400, f"bad node JSON: {exc}") from None


def _content(path: Path, response: Lwm2mResponse) -> ContentAnswer:
    return ContentAnswer(
        path=str(path),
        code=response.dotted_code,
        content=None if response.content is None else node_to_json(response.content),
        content_format=_format_name(response.content_format),
    )


def _composite(response: Lwm2mResponse) -> CompositeAnswer:
    """A Read-Composite or Observe-Composite answer: path -> node as plain JSON."""
    composite = response.composite or {}
    return CompositeAnswer(
        code=response.dotted_code,
        content={str(p): node_to_json(n) for p, n in composite.items()},
        content_format=_format_name(response.content_format),
    )


def _observation(observation: Observation) -> ObservationModel:
    return ObservationModel(
        token=observation.token.hex(),
        paths=[str(p) for p in observation.paths],
        composite=observation.composite,
        accept=_format_name(observation.accept),
        created_at=_time(observation.created_at),
    )


def _entry(info: SecurityInfo) -> SecurityEntryModel:
    """A security entry without its secrets (PSK key, OSCORE master secret)."""
    entry = SecurityEntryModel(endpoint=info.endpoint, mode=info.mode)  # type: ignore[arg-type]
    identity = info.identity
    match info.mode:
        case "psk":
            assert identity is not None
            entry.psk_identity = identity.value
        case "rpk":
            assert identity is not None
            entry.rpk_sha256 = identity.value
            entry.public_key_hex = info.public_key.hex()
        case "x509":
            assert identity is not None
            entry.x509_name = identity.value
        case "oscore":
            assert info.oscore is not None
            entry.oscore_sender_id = info.oscore.sender_id.hex()
            entry.oscore_recipient_id = info.oscore.recipient_id.hex()
    return entry


def _hex(value: str | SecretStr | None, name: str, mode: str) -> bytes:
    """Required hex bytes of a security body; the value is never repeated in an error."""
    if value is None:
        raise ApiError(400, f"mode {mode} needs {name}")
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ApiError(400, f"{name} is not hexadecimal") from None


_FIELDS_OF_MODE = {
    "psk": {"identity", "key_hex"},
    "rpk": {"public_key_hex"},
    "x509": {"name"},
    "nosec": set(),
}


def _security_info(endpoint: str, body: SecurityBody) -> SecurityInfo:
    mode = body.mode
    extra = sorted(body.model_fields_set - {"mode"} - _FIELDS_OF_MODE[mode])
    if extra:
        raise ApiError(400, f"{', '.join(extra)} does not apply to mode {mode}")
    try:
        match mode:
            case "psk":
                if not body.identity:
                    raise ApiError(400, "mode psk needs identity")
                key = _hex(body.key_hex, "key_hex", mode)
                return SecurityInfo.psk(endpoint, body.identity, key)
            case "rpk":
                public_key = _hex(body.public_key_hex, "public_key_hex", mode)
                try:
                    load_der_public_key(public_key)
                except (ValueError, TypeError):
                    raise ApiError(
                        400, "public_key_hex is not a DER SubjectPublicKeyInfo"
                    ) from None
                return SecurityInfo.rpk(endpoint, public_key)
            case "x509":
                return SecurityInfo.x509(endpoint, body.name)
        return SecurityInfo.nosec(endpoint)
    except ValueError as exc:  # e.g. an empty key: messages name fields, never values
        raise ApiError(400, str(exc)) from None


def create_app(
    server: LwM2MServer,
    *,
    security_store: SecurityStore | None = None,
    request_timeout: float | None = None,
    event_queue_size: int = 1000,
    event_keepalive: float = 15.0,
    ui: bool = True,
    max_body: int = DEFAULT_MAX_BODY,
    max_event_streams: int = 64,
    allowed_hosts: Sequence[str] | None = None,
    tokens: ApiTokens | None = None,
) -> FastAPI:
    """The REST API of ``server`` (see the module docstring).

    :param security_store: the store behind ``/api/security`` (None: those routes answer 404).
    :param request_timeout: a bound in seconds on every request to a client (504 when it
        passes); None leaves it to the server (CoAP retransmissions, queue-mode hold time).
    :param event_queue_size: events buffered per ``/api/events`` subscriber; a slower one
        loses the oldest.
    :param event_keepalive: idle seconds before an event stream sends a keep-alive comment.
    :param ui: also serve the web UI (:mod:`lwm2m.api.ui`) at ``/``.
    :param max_body: the largest request body read, in bytes (413 above; :mod:`.guard`).
    :param max_event_streams: open ``/api/events`` streams at most (503 above).
    :param allowed_hosts: the host names accepted in the ``Host`` header (400 otherwise; the
        port is not compared), e.g. ``["127.0.0.1", "localhost"]`` for an API on loopback: a
        web page whose DNS name is re-bound to a loopback address then cannot reach the API
        through the operator's browser. None: any host.
    :param tokens: the bearer tokens the API and its OpenAPI document require
        (:mod:`lwm2m.api.auth`; 401 without one of them). None: no authentication, for an API
        on a trusted address or behind a proxy that authenticates.
    """
    streams = EventStreams(event_queue_size, event_keepalive)
    app = FastAPI(
        title="LwM2M server",
        summary="OMA LwM2M 1.1 server: registrations, device management, observations, events",
        version="1.1",
        # FastAPI's /docs and /redoc pages load their scripts from a CDN, which would run in
        # the API's origin: only the OpenAPI document is served
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(RequestGuard, max_body=max_body)
    if tokens is not None:  # outside the guard: nothing is read before the token is checked
        app.add_middleware(BearerAuth, tokens=tokens)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.state.server = server
    app.state.event_streams = streams
    install_handlers(app)
    api = APIRouter(prefix="/api")

    async def call(endpoint: str, operation: Awaitable[T]) -> T:
        """``await operation`` bounded by ``request_timeout``; failures become ApiErrors."""
        try:
            if request_timeout is None:
                return await operation
            async with asyncio.timeout(request_timeout):
                return await operation
        except Exception as exc:
            raise failure(exc, endpoint) from None

    async def registration(endpoint: str) -> Registration:
        found = await server.registration(endpoint)
        if found is None:
            raise ApiError(404, f"client {endpoint!r} is not registered")
        return found

    async def cancel(
        endpoint: str, matches: Callable[[Observation], bool], none: str
    ) -> list[ObservationModel]:
        """Cancel (proactively) the client's observations that ``matches``; the cancelled
        ones, or a 404 saying ``none``."""
        observations = await call(endpoint, server.observations(endpoint))
        matching = [o for o in observations if matches(o)]
        if not matching:
            raise ApiError(404, f"{endpoint}: {none}")
        for observation in matching:
            await call(endpoint, server.cancel_observation(observation.token))
        return [_observation(o) for o in matching]

    def describe(found: Registration) -> RegistrationModel:
        return _registration_model(found, server.is_awake(found))

    def describe_json(found: Registration) -> dict[str, Any]:
        return describe(found).model_dump(mode="json")

    # -- registrations -------------------------------------------------------------------------

    @api.get("/clients", response_model=list[RegistrationModel], tags=["clients"])
    async def list_clients() -> list[RegistrationModel]:
        """Every registered client."""
        return [describe(r) for r in await server.registrations()]

    @api.get(
        "/clients/{endpoint}", response_model=RegistrationModel, responses=_ERRORS, tags=["clients"]
    )
    async def get_client(endpoint: str) -> RegistrationModel:
        """One client's registration."""
        return describe(await registration(endpoint))

    @api.get(
        "/clients/{endpoint}/observations",
        response_model=list[ObservationModel],
        responses=_ERRORS,
        tags=["information reporting"],
    )
    async def list_observations(endpoint: str) -> list[ObservationModel]:
        """The client's active observations."""
        return [_observation(o) for o in await call(endpoint, server.observations(endpoint))]

    # -- device management (specific suffixes before the plain path routes) ----------------------

    # the composite and admin-script routes come before the ones taking a {path}, which
    # "composite" or "admin-script" would match

    @api.post(
        "/clients/{endpoint}/admin-script",
        response_model=AdminScriptAnswer,
        responses={
            **_ERRORS,
            422: {"model": ErrorAnswer, "description": "the target could not be selected"},
        },
        tags=["secure element"],
    )
    async def admin_script(endpoint: str, body: AdminScriptBody) -> AdminScriptAnswer:
        """Run a remote APDU script on the client's Secure Element (/33000/x/30-35; see
        docs/secure-component.md): 422 when the target security domain cannot be selected,
        503 when the card is unavailable, 400 with the client's reason for a script or target
        it does not relay."""
        try:
            script = CommandScript(tuple(bytes.fromhex(c) for c in body.commands))
        except ScriptFormatError as exc:
            raise ApiError(400, f"commands: {exc}") from None
        target = bytes.fromhex(body.target) if body.target is not None else None
        outcome = await call(
            endpoint,
            run_admin_script(server, endpoint, script, target=target, instance=body.instance),
        )
        return AdminScriptAnswer(
            status="completed" if outcome.status is AdminStatus.COMPLETED else "stopped",
            executed=outcome.response.executed,
            responses=[
                RApduModel(data=r[:-2].hex().upper(), sw=r[-2:].hex().upper())
                for r in outcome.response.responses
            ],
        )

    @api.put(
        "/clients/{endpoint}/composite",
        response_model=CompositeCodeAnswer,
        responses=_ERRORS,
        tags=["device management"],
    )
    async def write_composite(
        endpoint: str,
        body: CompositeWriteBody,
        format: FormatQuery = None,
    ) -> CompositeCodeAnswer:
        """Write-Composite: several paths in one request, atomic at the client (SenML)."""
        model = server.model_for(await registration(endpoint))
        nodes: dict[Path, Node | None] = {}
        for text, data in body.content.items():
            at = _path(text)
            nodes[at] = None if data is None else _node(data, at, model)
        cf = _format(format)
        response = await call(endpoint, server.write_composite(endpoint, nodes, content_format=cf))
        return CompositeCodeAnswer(paths=[str(p) for p in nodes], code=response.dotted_code)

    @api.post(
        "/clients/{endpoint}/composite/observe",
        response_model=CompositeObserveAnswer,
        responses=_ERRORS,
        tags=["information reporting"],
    )
    async def observe_composite(
        endpoint: str,
        body: CompositeBody,
        format: FormatQuery = None,
    ) -> CompositeObserveAnswer:
        """Observe-Composite: the current values of several paths; notifications arrive on
        ``/api/events``; cancel with ``DELETE /api/clients/{endpoint}/composite/observe``."""
        paths = [_path(p) for p in body.paths]
        handle = await call(
            endpoint, server.observe_composite(endpoint, paths, accept=_format(format))
        )
        assert handle.response is not None  # None only for observations re-adopted at start
        answer = _composite(handle.response)
        return CompositeObserveAnswer(
            **answer.model_dump(), token=handle.token.hex(), active=handle.active
        )

    @api.delete(
        "/clients/{endpoint}/composite/observe",
        response_model=list[ObservationModel],
        responses=_ERRORS,
        tags=["information reporting"],
    )
    async def cancel_composite_observations(endpoint: str) -> list[ObservationModel]:
        """Cancel the client's Observe-Composite observations; the cancelled ones."""
        return await cancel(endpoint, lambda o: o.composite, "no composite observation")

    @api.get(
        "/clients/{endpoint}/{path:path}/discover",
        response_model=DiscoverAnswer,
        responses=_ERRORS,
        tags=["device management"],
    )
    async def discover(endpoint: str, path: str) -> DiscoverAnswer:
        """Discover: the links below ``path`` with their attributes, ``dim`` and ``ver``."""
        at = _path(path)
        response = await call(endpoint, server.discover(endpoint, at))
        links = [
            LinkModel(uri=link.uri, attributes=dict(link.params)) for link in response.links or ()
        ]
        return DiscoverAnswer(path=str(at), code=response.dotted_code, links=links)

    @api.put(
        "/clients/{endpoint}/{path:path}/attributes",
        response_model=CodeAnswer,
        responses=_ERRORS,
        tags=["device management"],
    )
    async def write_attributes(endpoint: str, path: str, body: AttributesBody) -> CodeAnswer:
        """Write-Attributes: the given attributes are set, those in ``unset`` removed."""
        at = _path(path)
        values = body.model_dump(exclude={"unset"}, exclude_none=True)
        try:
            attributes = Attributes(**values, unset=frozenset(body.unset))
        except CodecError as exc:
            raise ApiError(400, str(exc)) from None
        response = await call(endpoint, server.write_attributes(endpoint, at, attributes))
        return CodeAnswer(path=str(at), code=response.dotted_code)

    @api.post(
        "/clients/{endpoint}/{path:path}/execute",
        response_model=CodeAnswer,
        responses=_ERRORS,
        tags=["device management"],
    )
    async def execute(endpoint: str, path: str, body: ExecuteBody | None = None) -> CodeAnswer:
        """Execute a resource, with optional arguments (``0='x',1``)."""
        at = _path(path)
        arguments = "" if body is None else body.arguments
        response = await call(endpoint, server.execute(endpoint, at, arguments))
        return CodeAnswer(path=str(at), code=response.dotted_code)

    @api.post(
        "/clients/{endpoint}/{path:path}/observe",
        response_model=ObserveAnswer,
        responses=_ERRORS,
        tags=["information reporting"],
    )
    async def observe(
        endpoint: str,
        path: str,
        format: FormatQuery = None,
    ) -> ObserveAnswer:
        """Observe: the current content; notifications arrive on ``/api/events``."""
        at = _path(path)
        handle = await call(endpoint, server.observe(endpoint, at, accept=_format(format)))
        assert handle.response is not None  # None only for observations re-adopted at start
        answer = _content(at, handle.response)
        return ObserveAnswer(**answer.model_dump(), token=handle.token.hex(), active=handle.active)

    @api.delete(
        "/clients/{endpoint}/{path:path}/observe",
        response_model=list[ObservationModel],
        responses=_ERRORS,
        tags=["information reporting"],
    )
    async def cancel_observation(endpoint: str, path: str) -> list[ObservationModel]:
        """Cancel the client's observations of ``path`` (proactively); the cancelled ones."""
        at = _path(path)
        return await cancel(
            endpoint, lambda o: not o.composite and o.path == at, f"no observation of {at}"
        )

    @api.post(
        "/clients/{endpoint}/composite",
        response_model=CompositeAnswer,
        responses=_ERRORS,
        tags=["device management"],
    )
    async def read_composite(
        endpoint: str,
        body: CompositeBody,
        format: FormatQuery = None,
    ) -> CompositeAnswer:
        """Read-Composite: several paths in one request (SenML)."""
        paths = [_path(p) for p in body.paths]
        cf = _format(format)
        response = await call(endpoint, server.read_composite(endpoint, paths, accept=cf))
        return _composite(response)

    @api.post(
        "/clients/{endpoint}/{object_id:path}",
        response_model=CreateAnswer,
        status_code=201,
        responses=_ERRORS,
        tags=["device management"],
    )
    async def create(endpoint: str, object_id: str, body: CreateBody) -> CreateAnswer:
        """Create instances (``content``, keyed by instance id) or one instance whose id the
        client picks (``resources``)."""
        at = _path(object_id)
        if len(at.ids) != 1:
            raise ApiError(400, f"Create addresses an object, not {at}")
        model = server.model_for(await registration(endpoint))
        if body.content is not None:
            node = _node(body.content, at, model)
            assert isinstance(node, ObjectNode)
            operation = server.create(endpoint, at, node.instances.values())
        else:
            instance = _node(body.resources, at.child(0), model)
            assert isinstance(instance, ObjectInstance)
            operation = server.create(endpoint, at, resources=instance.resources.values())
        response = await call(endpoint, operation)
        location = None if response.location is None else "/" + "/".join(response.location)
        return CreateAnswer(path=str(at), code=response.dotted_code, location=location)

    @api.get(
        "/clients/{endpoint}/{path:path}",
        response_model=ContentAnswer,
        responses=_ERRORS,
        tags=["device management"],
    )
    async def read(
        endpoint: str,
        path: str,
        format: FormatQuery = None,
    ) -> ContentAnswer:
        """Read: the node at ``path`` as plain JSON."""
        at = _path(path)
        response = await call(endpoint, server.read(endpoint, at, accept=_format(format)))
        return _content(at, response)

    @api.put(
        "/clients/{endpoint}/{path:path}",
        response_model=CodeAnswer,
        responses=_ERRORS,
        tags=["device management"],
    )
    async def write(
        endpoint: str,
        path: str,
        body: WriteBody,
        format: FormatQuery = None,
    ) -> CodeAnswer:
        """Write: replace (default) or partially update (``"replace": false``) the node."""
        at = _path(path)
        cf = _format(format)
        node = _node(body.content, at, server.model_for(await registration(endpoint)))
        response = await call(
            endpoint, server.write(endpoint, at, node, replace=body.replace, content_format=cf)
        )
        return CodeAnswer(path=str(at), code=response.dotted_code)

    @api.delete(
        "/clients/{endpoint}/{path:path}",
        response_model=CodeAnswer,
        responses=_ERRORS,
        tags=["device management"],
    )
    async def delete(endpoint: str, path: str) -> CodeAnswer:
        """Delete an object instance."""
        at = _path(path)
        response = await call(endpoint, server.delete(endpoint, at))
        return CodeAnswer(path=str(at), code=response.dotted_code)

    # -- events ---------------------------------------------------------------------------------

    @api.get(
        "/events",
        response_class=EventStreamResponse,
        status_code=200,
        tags=["events"],
        responses={
            200: {
                "description": "one SSE event per server event (``event:`` kind, ``data:`` JSON)",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            503: {"model": ErrorAnswer, "description": "too many open event streams"},
        },
    )
    async def events() -> EventStreamResponse:
        """Server-Sent Events: registrations, notifications, Send, queue-mode presence."""
        if len(streams.active) >= max_event_streams:
            raise ApiError(503, f"too many open event streams (at most {max_event_streams})")
        subscription = server.subscribe(streams.queue_size)
        streams.active.add(subscription)
        return EventStreamResponse(
            streams.frames(subscription, describe_json), subscription, streams
        )

    # -- security -------------------------------------------------------------------------------

    def store() -> SecurityStore:
        if security_store is None:
            raise ApiError(404, "this server has no security store")
        return security_store

    @api.get(
        "/security",
        response_model=list[SecurityEntryModel],
        responses=_SECURITY_ERRORS,
        tags=["security"],
    )
    async def list_security() -> list[SecurityEntryModel]:
        """Every security entry, without secrets."""
        entries = await store().all()
        return [_entry(info) for info in sorted(entries, key=lambda i: i.endpoint)]

    @api.put(
        "/security/{endpoint}",
        response_model=SecurityEntryModel,
        responses={201: {"model": SecurityEntryModel}, **_SECURITY_ERRORS},
        tags=["security"],
    )
    async def put_security(
        endpoint: str, body: SecurityBody, response: Response
    ) -> SecurityEntryModel:
        """Add (201) or replace (200) the endpoint's entry; the key is write-only."""
        target = store()
        info = _security_info(endpoint, body)
        try:
            replaced = await target.put(info)
        except NonUniqueSecurityInfo as exc:
            raise ApiError(409, str(exc)) from None
        if replaced is None:
            response.status_code = 201
        return _entry(info)

    @api.delete(
        "/security/{endpoint}",
        response_model=SecurityEntryModel,
        responses=_SECURITY_ERRORS,
        tags=["security"],
    )
    async def delete_security(endpoint: str) -> SecurityEntryModel:
        """Remove the endpoint's entry; the removed entry, without secrets."""
        removed = await store().delete(endpoint)
        if removed is None:
            raise ApiError(404, f"no security entry for {endpoint!r}")
        return _entry(removed)

    app.include_router(api)
    if ui:
        mount_ui(app)
    if tokens is not None:
        declare_bearer(app)
    return app
