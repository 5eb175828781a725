"""Firmware Update (/5) state machine: push, pull, update, cancel, results and progress events
(LwM2M-TS-Core 1.1 Appendix E.6)."""

from __future__ import annotations

import pytest

from lwm2m.client.events import ObjectEvent
from lwm2m.client.objects.firmware import (
    DownloadSink,
    FirmwareProgress,
    FirmwareUpdate,
    UpdateResult,
    UpdateState,
)
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.model import Path

from .helpers import Harness, code, config, server


class Updater:
    def __init__(self) -> None:
        self.check_result: UpdateResult | None = None
        self.update_result: UpdateResult | None = UpdateResult.SUCCESS
        self.installed: list[bytes] = []

    def check(self, package: bytes) -> UpdateResult | None:
        return self.check_result

    def update(self, package: bytes) -> UpdateResult | None:
        self.installed.append(package)
        return self.update_result


class Downloader:
    def __init__(self) -> None:
        self.started: list[tuple[str, DownloadSink]] = []
        self.cancelled = 0

    def start(self, uri: str, sink: DownloadSink) -> None:
        self.started.append((uri, sink))

    def cancel(self) -> None:
        self.cancelled += 1


@pytest.fixture
def parts() -> tuple[Harness, FirmwareUpdate, Updater, Downloader]:
    updater, downloader = Updater(), Downloader()
    firmware = FirmwareUpdate(updater=updater, downloader=downloader, package_name="fw")
    h = Harness(config(server(101)), objects=[firmware])
    h.register_all()
    return h, firmware, updater, downloader


def state(h: Harness) -> tuple[int, int]:
    return h.tree.value(Path(5, 0, 3)), h.tree.value(Path(5, 0, 5))  # type: ignore[return-value]


def test_push_then_update(parts) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, updater, _ = parts
    package = bytes(range(256)) * 40  # a Block1 transfer reassembled by the CoAP layer
    assert code(h.request(Code.PUT, "/5/0/0", payload=package, cf=CF.OPAQUE)) == "2.04"
    assert state(h) == (UpdateState.DOWNLOADED, UpdateResult.INITIAL)
    progress = [e.event for e in h.take_events(ObjectEvent)]
    assert [p.state for p in progress] == [UpdateState.DOWNLOADING, UpdateState.DOWNLOADED]
    assert progress[0].total == len(package)
    assert code(h.request(Code.POST, "/5/0/2")) == "2.04"
    assert updater.installed == [package]
    assert state(h) == (UpdateState.IDLE, UpdateResult.SUCCESS)
    assert code(h.request(Code.GET, "/5/0/0")) == "4.05"  # the package is write-only


def test_update_failure_returns_to_downloaded(parts) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, updater, _ = parts
    updater.update_result = UpdateResult.UPDATE_FAILED
    h.request(Code.PUT, "/5/0/0", payload=b"pkg", cf=CF.OPAQUE)
    h.request(Code.POST, "/5/0/2")
    assert state(h) == (UpdateState.DOWNLOADED, UpdateResult.UPDATE_FAILED)


def test_asynchronous_update(parts) -> None:  # type: ignore[no-untyped-def]
    h, firmware, updater, _ = parts
    updater.update_result = None
    h.request(Code.PUT, "/5/0/0", payload=b"pkg", cf=CF.OPAQUE)
    h.request(Code.POST, "/5/0/2")
    assert state(h)[0] == UpdateState.UPDATING
    assert code(h.request(Code.PUT, "/5/0/0", payload=b"new", cf=CF.OPAQUE)) == "4.00"
    firmware.update_finished(UpdateResult.SUCCESS)
    assert state(h) == (UpdateState.IDLE, UpdateResult.SUCCESS)
    firmware.update_finished(UpdateResult.SUCCESS)  # ignored outside Updating


def test_integrity_failure_and_reset(parts) -> None:  # type: ignore[no-untyped-def]
    h, _, updater, _ = parts
    updater.check_result = UpdateResult.INTEGRITY_CHECK_FAILURE
    h.request(Code.PUT, "/5/0/0", payload=b"bad", cf=CF.OPAQUE)
    assert state(h) == (UpdateState.IDLE, UpdateResult.INTEGRITY_CHECK_FAILURE)
    assert code(h.request(Code.POST, "/5/0/2")) == "4.05"  # not Downloaded
    updater.check_result = None
    h.request(Code.PUT, "/5/0/0", payload=b"good", cf=CF.OPAQUE)
    assert code(h.request(Code.PUT, "/5/0/0", payload=b"\x00", cf=CF.OPAQUE)) == "2.04"
    assert state(h) == (UpdateState.IDLE, UpdateResult.INITIAL)


def test_pull_download(parts) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, _, downloader = parts
    uri = b"coap://127.0.0.1:5683/fw.bin"
    assert code(h.request(Code.PUT, "/5/0/1", payload=uri, cf=CF.TEXT)) == "2.04"
    assert state(h) == (UpdateState.DOWNLOADING, UpdateResult.INITIAL)
    assert h.tree.value(Path(5, 0, 1)) == uri.decode()
    ((started_uri, sink),) = downloader.started
    assert started_uri == uri.decode()
    h.take_events()
    sink.download_progress(512, 1024)
    (event,) = h.take_events(ObjectEvent)
    assert event.event == FirmwareProgress(UpdateState.DOWNLOADING, UpdateResult.INITIAL, 512, 1024)
    sink.download_finished(b"x" * 1024)
    assert state(h) == (UpdateState.DOWNLOADED, UpdateResult.INITIAL)
    sink.download_failed(UpdateResult.CONNECTION_LOST)  # late report: ignored
    assert state(h)[0] == UpdateState.DOWNLOADED


def test_pull_failures(parts) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, _, downloader = parts
    h.request(Code.PUT, "/5/0/1", payload=b"not a uri", cf=CF.TEXT)
    assert state(h) == (UpdateState.IDLE, UpdateResult.INVALID_URI)
    h.request(Code.PUT, "/5/0/1", payload=b"ftp://h/fw", cf=CF.TEXT)
    assert state(h) == (UpdateState.IDLE, UpdateResult.UNSUPPORTED_PROTOCOL)
    h.request(Code.PUT, "/5/0/1", payload=b"coap://h/fw", cf=CF.TEXT)
    (_, sink) = downloader.started[-1]
    sink.download_failed(UpdateResult.CONNECTION_LOST)
    assert state(h) == (UpdateState.IDLE, UpdateResult.CONNECTION_LOST)
    # an empty URI resets, cancelling a running download
    h.request(Code.PUT, "/5/0/1", payload=b"coap://h/fw", cf=CF.TEXT)
    h.request(Code.PUT, "/5/0/1", payload=b"", cf=CF.TEXT)
    assert downloader.cancelled == 1
    assert state(h) == (UpdateState.IDLE, UpdateResult.INITIAL)


def test_cancel(parts) -> None:  # type: ignore[no-untyped-def]
    h, _, _, downloader = parts
    assert code(h.request(Code.POST, "/5/0/10")) == "4.05"
    h.request(Code.PUT, "/5/0/1", payload=b"coap://h/fw", cf=CF.TEXT)
    assert code(h.request(Code.POST, "/5/0/10")) == "2.04"
    assert state(h) == (UpdateState.IDLE, UpdateResult.CANCELLED)
    assert downloader.cancelled == 1


def test_read_and_protocol_support(parts) -> None:  # type: ignore[no-untyped-def]
    h, firmware, _, _ = parts
    instance = h.tree.read(Path(5, 0))
    assert instance.resources[9].value == 2  # push and pull
    assert instance.resources[8].values == {0: 0}
    assert instance.resources[6].value == "fw"
    assert "state=IDLE" in repr(firmware)
    push_only = FirmwareUpdate()
    assert push_only.read(0).resources[9].value == 1
    push_only.write(0, [])
    assert code(h.request(Code.PUT, "/5/0/3", payload=b"1", cf=CF.TEXT)) == "4.05"


def test_without_updater_update_fails() -> None:
    firmware = FirmwareUpdate()
    h = Harness(objects=[firmware])
    h.register_all()
    h.request(Code.PUT, "/5/0/0", payload=b"p", cf=CF.OPAQUE)
    h.request(Code.POST, "/5/0/2")
    assert state(h) == (UpdateState.DOWNLOADED, UpdateResult.UPDATE_FAILED)
    h.request(Code.PUT, "/5/0/1", payload=b"coap://h/x", cf=CF.TEXT)
    assert state(h) == (UpdateState.IDLE, UpdateResult.UNSUPPORTED_PROTOCOL)
    snapshot = firmware.snapshot()
    firmware.restore(snapshot)
    assert code(h.request(Code.GET, "/5/1")) == "4.04"
