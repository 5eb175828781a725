"""The Firmware Update object (/5) and its state machine (LwM2M-TS-Core 1.1 Appendix E.6,
"Firmware Update State Machine"; Transport §6 block-wise transfer).

States (/5/0/3): 0 Idle, 1 Downloading, 2 Downloaded, 3 Updating. Results (/5/0/5): 0 initial,
1 success, 2 not enough flash, 3 out of RAM, 4 connection lost, 5 integrity check failure,
6 unsupported package type, 7 invalid URI, 8 update failed, 9 unsupported protocol (1.1 adds
10 cancelled via /5/0/10 Cancel).

Transitions (errors are reported *only* through the Update Result, E.6.1)::

    Idle --Write /5/0/0 (push, Block1 reassembled by CoAP)--> Downloading --check ok--> Downloaded
    Idle --Write /5/0/1 (pull)--> Downloading --downloader done, check ok--> Downloaded
    Downloading --failure--> Idle (result 2..7, 9)
    Downloaded --Execute /5/0/2--> Updating --success--> Idle (result 1)
                                           --failure--> Downloaded (result 8)
    any --Write empty package / empty URI, or Execute Cancel--> Idle (result 0, or 10 on Cancel)

Two seams keep the object pure: a :class:`FirmwareDownloader` performs the pull download (the
asyncio runner provides one doing a block-wise CoAP GET) and reports to a :class:`DownloadSink`;
a :class:`FirmwareUpdater` checks packages and installs them (synchronously, or later through
:meth:`FirmwareUpdate.update_finished`). Progress goes out as :class:`FirmwareProgress` events.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol
from urllib.parse import urlsplit

from lwm2m.client.arguments import ExecuteArguments
from lwm2m.client.objects.base import ObjectEnabler, resource_node
from lwm2m.client.objects.security import _definition
from lwm2m.errors import BadRequest, MethodNotAllowed, NotFound
from lwm2m.model.definitions import ObjectDefinition
from lwm2m.model.nodes import ObjectInstance, Resource, SingleResource

__all__ = [
    "DownloadSink",
    "FirmwareDownloader",
    "FirmwareProgress",
    "FirmwareUpdate",
    "FirmwareUpdater",
    "UpdateResult",
    "UpdateState",
]

_PACKAGE, _URI, _UPDATE, _STATE, _RESULT = 0, 1, 2, 3, 5
_NAME, _VERSION, _PROTOCOLS, _DELIVERY, _CANCEL = 6, 7, 8, 9, 10

#: Package URI schemes per /5/0/8 Firmware Update Protocol Support value.
PROTOCOL_SCHEMES = {0: "coap", 1: "coaps", 2: "http", 3: "https", 4: "coap+tcp", 5: "coaps+tcp"}


class UpdateState(IntEnum):
    """/5/0/3 State."""

    IDLE = 0
    DOWNLOADING = 1
    DOWNLOADED = 2
    UPDATING = 3


class UpdateResult(IntEnum):
    """/5/0/5 Update Result."""

    INITIAL = 0
    SUCCESS = 1
    NOT_ENOUGH_FLASH = 2
    OUT_OF_RAM = 3
    CONNECTION_LOST = 4
    INTEGRITY_CHECK_FAILURE = 5
    UNSUPPORTED_PACKAGE_TYPE = 6
    INVALID_URI = 7
    UPDATE_FAILED = 8
    UNSUPPORTED_PROTOCOL = 9
    CANCELLED = 10


@dataclass(frozen=True, slots=True)
class FirmwareProgress:
    """An event: the state machine moved, or a download progressed."""

    state: UpdateState
    result: UpdateResult
    received: int = 0
    """Bytes of the package received so far."""
    total: int | None = None
    """The package size when known (Size2 / the pushed payload)."""


class DownloadSink(Protocol):
    """Where a :class:`FirmwareDownloader` reports (implemented by :class:`FirmwareUpdate`)."""

    def download_progress(self, received: int, total: int | None) -> None: ...

    def download_finished(self, package: bytes) -> None: ...

    def download_failed(self, result: UpdateResult) -> None: ...


class FirmwareDownloader(Protocol):
    """Fetches a package from a URI (pull delivery); reports to the sink, possibly later."""

    def start(self, uri: str, sink: DownloadSink) -> None: ...

    def cancel(self) -> None: ...


class FirmwareUpdater(Protocol):
    """The device side of an update."""

    def check(self, package: bytes) -> UpdateResult | None:
        """Validate a received package: None if acceptable, else the failure result."""
        ...

    def update(self, package: bytes) -> UpdateResult | None:
        """Install the package: the result, or None if it completes later (then call
        :meth:`FirmwareUpdate.update_finished`)."""
        ...


class FirmwareUpdate(ObjectEnabler):
    """/5 Firmware Update, instance 0 (see the module docstring for the state machine).

    Without a ``downloader`` only push delivery is offered (/5/0/9 = 1); with one, both (2).
    ``protocols`` are the /5/0/8 values the downloader supports (default CoAP, 0).
    """

    def __init__(
        self,
        *,
        updater: FirmwareUpdater | None = None,
        downloader: FirmwareDownloader | None = None,
        protocols: Sequence[int] = (0,),
        package_name: str | None = None,
        package_version: str | None = None,
        definition: ObjectDefinition | None = None,
    ) -> None:
        super().__init__(definition or _definition(5))
        self.updater = updater
        self.downloader = downloader
        self.protocols = tuple(protocols)
        self.state = UpdateState.IDLE
        self.result = UpdateResult.INITIAL
        self.package: bytes | None = None
        self.package_uri = ""
        self.package_name = package_name
        self.package_version = package_version
        self._received = 0
        self._total: int | None = None

    # -- handler -------------------------------------------------------------------------------

    def instance_ids(self) -> Sequence[int]:
        return [0]

    def _check_instance(self, instance_id: int) -> None:
        if instance_id != 0:
            raise NotFound(f"no instance /5/{instance_id}")

    def read(self, instance_id: int, resource_ids: Collection[int] | None = None) -> ObjectInstance:
        self._check_instance(instance_id)
        values: dict[int, object] = {
            _URI: self.package_uri,
            _STATE: int(self.state),
            _RESULT: int(self.result),
            _DELIVERY: 2 if self.downloader is not None else 1,
        }
        if self.downloader is not None:
            values[_PROTOCOLS] = list(self.protocols)
        if self.package_name is not None:
            values[_NAME] = self.package_name
        if self.package_version is not None:
            values[_VERSION] = self.package_version
        wanted = values.keys() if resource_ids is None else set(resource_ids) & values.keys()
        resources: list[Resource] = []
        for rid in sorted(wanted):
            rdef = self.definition.resource(rid)
            if rdef is not None:
                resources.append(resource_node(rdef, values[rid]))
        return ObjectInstance(0, resources)

    def write(
        self, instance_id: int, resources: Sequence[Resource], remove: Collection[int] = ()
    ) -> None:
        self._check_instance(instance_id)
        for resource in resources:
            if not isinstance(resource, SingleResource):
                raise BadRequest(f"/5/0/{resource.id} is a single resource")
            if resource.id == _PACKAGE:
                assert isinstance(resource.value, bytes)
                self._write_package(resource.value)
            elif resource.id == _URI:
                assert isinstance(resource.value, str)
                self._write_uri(resource.value)
            elif self._writable_in_definition(resource.id):
                # an optional writable resource this object does not implement (Severity,
                # Maximum Defer Period): it does not exist here, as a Read of it says
                raise NotFound(f"/5/0/{resource.id} is not implemented")
            else:
                raise MethodNotAllowed(f"/5/0/{resource.id} cannot be written")

    def _writable_in_definition(self, resource_id: int) -> bool:
        rdef = self.definition.resource(resource_id)
        return rdef is not None and rdef.operations.writable

    def execute(self, instance_id: int, resource_id: int, arguments: ExecuteArguments) -> None:
        self._check_instance(instance_id)
        if resource_id == _UPDATE:
            self._start_update()
        elif resource_id == _CANCEL:
            if self.state not in (UpdateState.DOWNLOADING, UpdateState.DOWNLOADED):
                raise MethodNotAllowed("nothing to cancel")
            self._reset(UpdateResult.CANCELLED)
        else:
            raise MethodNotAllowed(f"/5/0/{resource_id} is not executable")

    def snapshot(self) -> object:
        return (self.state, self.result, self.package, self.package_uri)

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, tuple)
        self.state, self.result, self.package, self.package_uri = snapshot

    # -- state machine -------------------------------------------------------------------------

    def _set(self, state: UpdateState, result: UpdateResult) -> None:
        self.state = state
        self.result = result
        self.emit(FirmwareProgress(state, result, self._received, self._total))
        self.changed(0, _STATE, _RESULT)

    def _reset(self, result: UpdateResult = UpdateResult.INITIAL) -> None:
        if self.state is UpdateState.DOWNLOADING and self.downloader is not None:
            self.downloader.cancel()
        self.package = None
        self.package_uri = ""
        self._received = 0
        self._total = None
        self._set(UpdateState.IDLE, result)

    def _write_package(self, package: bytes) -> None:
        if package in (b"", b"\x00"):
            self._reset()
            return
        if self.state is UpdateState.UPDATING:
            raise BadRequest("an update is in progress")
        if self.state is UpdateState.DOWNLOADING and self.downloader is not None:
            self.downloader.cancel()
        self._received = self._total = len(package)
        self._set(UpdateState.DOWNLOADING, UpdateResult.INITIAL)
        self._downloaded(package)

    def _write_uri(self, uri: str) -> None:
        if not uri:
            self._reset()
            return
        if self.state is UpdateState.UPDATING:
            raise BadRequest("an update is in progress")
        self.package_uri = uri
        self.package = None
        self._received = 0
        self._total = None
        try:
            parts = urlsplit(uri)
            valid = bool(parts.scheme and parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            self._set(UpdateState.IDLE, UpdateResult.INVALID_URI)
            return
        schemes = {PROTOCOL_SCHEMES.get(p) for p in self.protocols}
        if self.downloader is None or parts.scheme.lower() not in schemes:
            self._set(UpdateState.IDLE, UpdateResult.UNSUPPORTED_PROTOCOL)
            return
        self._set(UpdateState.DOWNLOADING, UpdateResult.INITIAL)
        self.downloader.start(uri, self)

    def _downloaded(self, package: bytes) -> None:
        failure = self.updater.check(package) if self.updater is not None else None
        if failure is not None:
            self.package = None
            self._set(UpdateState.IDLE, failure)
            return
        self.package = package
        self._set(UpdateState.DOWNLOADED, UpdateResult.INITIAL)

    def _start_update(self) -> None:
        if self.state is not UpdateState.DOWNLOADED or self.package is None:
            raise MethodNotAllowed("Update is executable only in the Downloaded state")
        self._set(UpdateState.UPDATING, UpdateResult.INITIAL)
        outcome = self.updater.update(self.package) if self.updater is not None else None
        if self.updater is None:
            outcome = UpdateResult.UPDATE_FAILED
        if outcome is not None:
            self.update_finished(outcome)

    # -- completion API ------------------------------------------------------------------------

    def update_finished(self, result: UpdateResult) -> None:
        """Report the outcome of an update that :meth:`FirmwareUpdater.update` left running."""
        if self.state is not UpdateState.UPDATING:
            return
        result = UpdateResult(result)  # a plain int from the application is welcome too
        if result is UpdateResult.SUCCESS:
            self.package = None
            self.package_uri = ""
            self._set(UpdateState.IDLE, UpdateResult.SUCCESS)
        elif result is UpdateResult.INTEGRITY_CHECK_FAILURE:
            # /5/0/3: "Integrity Check Failure results in the client moving to the Idle state"
            # (the package is not worth another Update)
            self.package = None
            self._set(UpdateState.IDLE, result)
        else:
            self._set(UpdateState.DOWNLOADED, result)

    # DownloadSink

    def download_progress(self, received: int, total: int | None) -> None:
        if self.state is not UpdateState.DOWNLOADING:
            return
        self._received = received
        self._total = total
        self.emit(FirmwareProgress(self.state, self.result, received, total))

    def download_finished(self, package: bytes) -> None:
        if self.state is not UpdateState.DOWNLOADING:
            return
        self._received = len(package)
        self._downloaded(package)

    def download_failed(self, result: UpdateResult) -> None:
        if self.state is not UpdateState.DOWNLOADING:
            return
        self._set(UpdateState.IDLE, result)

    def __repr__(self) -> str:
        return f"<FirmwareUpdate state={self.state.name} result={self.result.name}>"
