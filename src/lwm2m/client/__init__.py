"""The LwM2M 1.1 client (layer L2: pure, sans-IO; LwM2M-TS-Core 1.1 §5-§7, Transport §6).

- :class:`ClientEngine` — the state machine: bootstrap, registration, DM, information
  reporting, queue mode, Send (:mod:`lwm2m.client.engine`).
- :class:`ObjectTree` and the handler API (:mod:`lwm2m.client.objects`): application objects
  plug in as :class:`ObjectHandler` s (:class:`SimpleObject` / :class:`SimpleInstance` for quick
  ones); /0 and /21 keep their instances behind the :class:`InstanceStore` seam.
- :class:`ClientConfig` and :func:`load_config` — the TOML factory configuration.
- :mod:`lwm2m.client.events` — what the engine reports.

The asyncio runner is :class:`lwm2m.io.lwm2m_client.LwM2MClient`.
"""

from lwm2m.client.accounts import (
    ConnectionSecurity,
    Peer,
    PeerCredential,
    ServerAccount,
    ServerUri,
    UnsupportedSecurityMode,
)
from lwm2m.client.arguments import ExecuteArguments
from lwm2m.client.bootstrap import BootstrapSource, FactoryBootstrap
from lwm2m.client.config import (
    AclConfig,
    BootstrapServerConfig,
    ClientConfig,
    ConfigError,
    DeviceConfig,
    SecurityConfig,
    ServerConfig,
    load_config,
    parse_config,
)
from lwm2m.client.engine import ClientEngine, OutgoingNotification, OutgoingRequest
from lwm2m.client.formats import FormatPolicy
from lwm2m.client.objects import (
    AccessRight,
    ChangeListener,
    Credentials,
    Device,
    FirmwareUpdate,
    InstanceStore,
    MemoryInstanceStore,
    ObjectEnabler,
    ObjectHandler,
    Secret,
    SecurityMode,
    SimpleInstance,
    SimpleObject,
    StoredObject,
)
from lwm2m.client.tree import ObjectTree

__all__ = [
    "AccessRight",
    "AclConfig",
    "BootstrapServerConfig",
    "BootstrapSource",
    "ChangeListener",
    "ClientConfig",
    "ClientEngine",
    "ConfigError",
    "ConnectionSecurity",
    "Credentials",
    "Device",
    "DeviceConfig",
    "ExecuteArguments",
    "FactoryBootstrap",
    "FirmwareUpdate",
    "FormatPolicy",
    "InstanceStore",
    "MemoryInstanceStore",
    "ObjectEnabler",
    "ObjectHandler",
    "ObjectTree",
    "OutgoingNotification",
    "OutgoingRequest",
    "Peer",
    "PeerCredential",
    "Secret",
    "SecurityConfig",
    "SecurityMode",
    "ServerAccount",
    "ServerConfig",
    "ServerUri",
    "SimpleInstance",
    "SimpleObject",
    "StoredObject",
    "UnsupportedSecurityMode",
    "load_config",
    "parse_config",
]
