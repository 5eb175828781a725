"""Object handlers: the handler API (:mod:`~lwm2m.client.objects.base`) and the standard objects
of LwM2M-TS-Core 1.1 Appendix E (0 Security, 1 Server, 2 Access Control, 3 Device,
4 Connectivity Monitoring, 5 Firmware Update, 6 Location, 7 Connectivity Statistics, 21 OSCORE).
"""

from lwm2m.client.objects.base import (
    ChangeListener,
    InstanceStore,
    MemoryInstanceStore,
    ObjectEnabler,
    ObjectHandler,
    ResourceValue,
    SimpleInstance,
    SimpleObject,
    StoredObject,
    resource_node,
    resource_value,
)
from lwm2m.client.objects.device import (
    ConnectivityMonitoring,
    ConnectivityStatistics,
    Device,
    DeviceAction,
    ErrorCode,
    Location,
)
from lwm2m.client.objects.firmware import (
    DownloadSink,
    FirmwareDownloader,
    FirmwareProgress,
    FirmwareUpdate,
    FirmwareUpdater,
    UpdateResult,
    UpdateState,
)
from lwm2m.client.objects.security import (
    Credentials,
    OscoreObject,
    Secret,
    SecurityMode,
    SecurityObject,
)
from lwm2m.client.objects.server import (
    AccessControlObject,
    AccessRight,
    AclEntry,
    ServerActions,
    ServerObject,
    acl_instance,
)

__all__ = [
    "AccessControlObject",
    "AccessRight",
    "AclEntry",
    "ChangeListener",
    "ConnectivityMonitoring",
    "ConnectivityStatistics",
    "Credentials",
    "Device",
    "DeviceAction",
    "DownloadSink",
    "ErrorCode",
    "FirmwareDownloader",
    "FirmwareProgress",
    "FirmwareUpdate",
    "FirmwareUpdater",
    "InstanceStore",
    "Location",
    "MemoryInstanceStore",
    "ObjectEnabler",
    "ObjectHandler",
    "OscoreObject",
    "ResourceValue",
    "Secret",
    "SecurityMode",
    "SecurityObject",
    "ServerActions",
    "ServerObject",
    "SimpleInstance",
    "SimpleObject",
    "StoredObject",
    "UpdateResult",
    "UpdateState",
    "acl_instance",
    "resource_node",
    "resource_value",
]
