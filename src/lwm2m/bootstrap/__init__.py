"""The bootstrap server's pure logic (LwM2M-TS-Core 1.1 §5.2.7, §6.1): per-endpoint
configurations (:mod:`~lwm2m.bootstrap.config`, TOML format in
:mod:`~lwm2m.bootstrap.config_file`) and the per-session task list
(:mod:`~lwm2m.bootstrap.session`). The asyncio service is :mod:`lwm2m.io.lwm2m_bootstrap`.
"""

from __future__ import annotations

from lwm2m.bootstrap.config import (
    AclInstance,
    BootstrapConfig,
    ConfigError,
    ObjectWrite,
    Secret,
    SecurityInstance,
    SecurityMode,
    ServerInstance,
)
from lwm2m.bootstrap.config_file import parse_bootstrap_toml, parse_endpoint_config
from lwm2m.bootstrap.session import (
    BootstrapEvent,
    BootstrapFailed,
    BootstrapFinished,
    BootstrapSession,
    BootstrapStarted,
    BootstrapStep,
    SessionState,
)

__all__ = [
    "AclInstance",
    "BootstrapConfig",
    "BootstrapEvent",
    "BootstrapFailed",
    "BootstrapFinished",
    "BootstrapSession",
    "BootstrapStarted",
    "BootstrapStep",
    "ConfigError",
    "ObjectWrite",
    "Secret",
    "SecurityInstance",
    "SecurityMode",
    "ServerInstance",
    "SessionState",
    "parse_bootstrap_toml",
    "parse_endpoint_config",
]
