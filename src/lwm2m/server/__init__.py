"""The LwM2M server's pure logic (LwM2M-TS-Core 1.1 §6.2-§6.4, Transport §6):

- :mod:`~lwm2m.server.registration` — Register / Update validation, the :class:`Registration`
  record, shared model views;
- :mod:`~lwm2m.server.observation` — observation records;
- :mod:`~lwm2m.server.queue` — queue-mode awake windows and held requests;
- :mod:`~lwm2m.server.security` — peer identities, the endpoint/identity rule, the authorizer
  hook;
- :mod:`~lwm2m.server.requests` — success codes and response checking;
- :mod:`~lwm2m.server.events` and :mod:`~lwm2m.server.errors`.

The asyncio service is :class:`lwm2m.io.lwm2m_server.LwM2MServer`; stores are in
:mod:`lwm2m.store`.
"""

from __future__ import annotations

from lwm2m.server.errors import (
    ClientSleeping,
    ErrorResponse,
    InvalidResponse,
    NotRegistered,
    PeerSleeping,
    RequestCancelled,
    RequestFailed,
    RequestRejected,
    RequestTimeout,
)
from lwm2m.server.events import (
    Awake,
    Deregistered,
    Expired,
    NotificationReceived,
    ObservationEnded,
    Registered,
    SendReceived,
    ServerEvent,
    Sleeping,
    Updated,
)
from lwm2m.server.observation import Observation
from lwm2m.server.queue import QueueFull, QueueMode
from lwm2m.server.registration import (
    Address,
    LinkCache,
    ModelViews,
    ObjectLinks,
    Registration,
    ServerConfig,
    apply_update,
    new_registration,
    parse_binding,
    parse_object_links,
)
from lwm2m.server.security import (
    Authorizer,
    IdentityKind,
    PeerIdentity,
    RequestContext,
    SecurityInfo,
    check_endpoint_identity,
)

__all__ = [
    "Address",
    "Authorizer",
    "Awake",
    "ClientSleeping",
    "Deregistered",
    "ErrorResponse",
    "Expired",
    "IdentityKind",
    "InvalidResponse",
    "LinkCache",
    "ModelViews",
    "NotRegistered",
    "NotificationReceived",
    "ObjectLinks",
    "Observation",
    "ObservationEnded",
    "PeerIdentity",
    "PeerSleeping",
    "QueueFull",
    "QueueMode",
    "Registered",
    "Registration",
    "RequestCancelled",
    "RequestContext",
    "RequestFailed",
    "RequestRejected",
    "RequestTimeout",
    "SecurityInfo",
    "SendReceived",
    "ServerConfig",
    "ServerEvent",
    "Sleeping",
    "Updated",
    "apply_update",
    "check_endpoint_identity",
    "new_registration",
    "parse_binding",
    "parse_object_links",
]
