"""Firmware Update (/5) transitions and results not covered by test_firmware.py (OMA object 5
v1.1, /work/shared/oma-lwm2m-registry/version_history/5-1_1.xml: State, Update Result, Update
"only executable when the value of the State Resource is Downloaded", reset by an empty Package
URI or a NULL package)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lwm2m.client.arguments import ExecuteArguments
from lwm2m.client.events import ObjectEvent
from lwm2m.client.objects.firmware import FirmwareUpdate, UpdateResult, UpdateState
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.errors import BadRequest, MethodNotAllowed, NotFound
from lwm2m.model import MultipleResource, Path, ResourceType, SingleResource

from .helpers import Harness, code, config, server
from .test_firmware import Downloader, Updater, parts, state

__all__ = ["parts"]  # the fixture, re-exported for pytest

URI = b"coap://127.0.0.1:5683/fw.bin"


def test_package_version_is_readable_when_given() -> None:
    firmware = FirmwareUpdate(package_name="fw", package_version="2.1")
    instance = firmware.read(0)
    assert instance.resources[7].value == "2.1"  # type: ignore[union-attr]
    assert instance.resources[6].value == "fw"  # type: ignore[union-attr]
    assert 8 not in instance.resources  # push only: no protocol list
    assert instance.resources[9].value == 1  # type: ignore[union-attr]


def test_resources_missing_from_the_definition_are_left_out() -> None:
    full = FirmwareUpdate().definition
    reduced = replace(full, resources={k: v for k, v in full.resources.items() if k != 6})
    firmware = FirmwareUpdate(package_name="fw", definition=reduced)
    assert 6 not in firmware.read(0).resources
    assert firmware.read(0, [3, 5]).resources.keys() == {3, 5}


def test_other_instances_do_not_exist() -> None:
    firmware = FirmwareUpdate()
    with pytest.raises(NotFound):
        firmware.read(1)
    with pytest.raises(NotFound):
        firmware.execute(1, 2, ExecuteArguments())


def test_handler_refuses_writes_of_other_resources_and_multiple_resources() -> None:
    firmware = FirmwareUpdate(updater=Updater())
    with pytest.raises(MethodNotAllowed):
        firmware.write(0, [SingleResource(3, ResourceType.INTEGER, 2)])
    with pytest.raises(BadRequest):
        firmware.write(0, [MultipleResource.of(0, ResourceType.OPAQUE, {0: b"pkg"})])
    with pytest.raises(MethodNotAllowed):
        firmware.execute(0, 3, ExecuteArguments())
    assert (firmware.state, firmware.result) == (UpdateState.IDLE, UpdateResult.INITIAL)


def test_state_and_result_are_not_writable_by_a_server(parts) -> None:  # type: ignore[no-untyped-def]
    h, *_ = parts
    assert code(h.request(Code.PUT, "/5/0/3", payload=b"2", cf=CF.TEXT)) == "4.05"
    assert code(h.request(Code.PUT, "/5/0/5", payload=b"1", cf=CF.TEXT)) == "4.05"
    assert code(h.request(Code.POST, "/5/0/3")) == "4.05"
    assert state(h) == (UpdateState.IDLE, UpdateResult.INITIAL)


@pytest.mark.parametrize(
    "prepare",
    ["idle", "downloading", "failed"],
)
def test_update_is_executable_only_in_downloaded(parts, prepare: str) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, updater, _ = parts
    if prepare == "downloading":
        h.request(Code.PUT, "/5/0/1", payload=URI, cf=CF.TEXT)
    elif prepare == "failed":
        updater.check_result = UpdateResult.UNSUPPORTED_PACKAGE_TYPE
        h.request(Code.PUT, "/5/0/0", payload=b"pkg", cf=CF.OPAQUE)
    before = state(h)
    assert code(h.request(Code.POST, "/5/0/2")) == "4.05"
    assert state(h) == before
    assert updater.installed == []


def test_push_during_a_pull_download_cancels_the_download(parts) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, updater, downloader = parts
    h.request(Code.PUT, "/5/0/1", payload=URI, cf=CF.TEXT)
    (_, sink) = downloader.started[-1]
    assert code(h.request(Code.PUT, "/5/0/0", payload=b"pushed", cf=CF.OPAQUE)) == "2.04"
    assert downloader.cancelled == 1
    assert state(h) == (UpdateState.DOWNLOADED, UpdateResult.INITIAL)
    sink.download_progress(10, 20)  # late reports of the cancelled download are ignored
    sink.download_finished(b"pulled")
    assert state(h) == (UpdateState.DOWNLOADED, UpdateResult.INITIAL)
    h.request(Code.POST, "/5/0/2")
    assert updater.installed == [b"pushed"]


def test_uri_write_during_an_update_is_refused(parts) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, updater, downloader = parts
    updater.update_result = None
    h.request(Code.PUT, "/5/0/0", payload=b"pkg", cf=CF.OPAQUE)
    h.request(Code.POST, "/5/0/2")
    assert code(h.request(Code.PUT, "/5/0/1", payload=URI, cf=CF.TEXT)) == "4.00"
    assert downloader.started == []
    assert state(h) == (UpdateState.UPDATING, UpdateResult.INITIAL)
    assert code(h.request(Code.POST, "/5/0/10")) == "4.05"  # Cancel: MUST be Method Not Allowed


def test_malformed_uri_is_an_invalid_uri_result(parts) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, _, downloader = parts
    assert code(h.request(Code.PUT, "/5/0/1", payload=b"coap://[::1/fw", cf=CF.TEXT)) == "2.04"
    assert state(h) == (UpdateState.IDLE, UpdateResult.INVALID_URI)
    assert downloader.started == []


def test_pull_without_a_downloader_is_an_unsupported_protocol() -> None:
    firmware = FirmwareUpdate(updater=Updater())
    h = Harness(config(server(101)), objects=[firmware])
    h.register_all()
    assert h.tree.value(Path(5, 0, 9)) == 1  # push only
    h.request(Code.PUT, "/5/0/1", payload=URI, cf=CF.TEXT)
    assert state(h) == (UpdateState.IDLE, UpdateResult.UNSUPPORTED_PROTOCOL)


def test_a_new_download_resets_the_previous_result(parts) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, _, downloader = parts
    h.request(Code.PUT, "/5/0/1", payload=URI, cf=CF.TEXT)
    downloader.started[-1][1].download_failed(UpdateResult.OUT_OF_RAM)
    assert state(h) == (UpdateState.IDLE, UpdateResult.OUT_OF_RAM)
    h.request(Code.PUT, "/5/0/1", payload=URI, cf=CF.TEXT)
    assert state(h) == (UpdateState.DOWNLOADING, UpdateResult.INITIAL)


@pytest.mark.parametrize(
    "failure",
    [
        UpdateResult.NOT_ENOUGH_FLASH,
        UpdateResult.OUT_OF_RAM,
        UpdateResult.CONNECTION_LOST,
        UpdateResult.INTEGRITY_CHECK_FAILURE,
        UpdateResult.UNSUPPORTED_PACKAGE_TYPE,
    ],
)
def test_pulled_package_check_failures_end_in_idle(parts, failure: UpdateResult) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, updater, downloader = parts
    h.request(Code.PUT, "/5/0/1", payload=URI, cf=CF.TEXT)
    updater.check_result = failure
    downloader.started[-1][1].download_finished(b"bad")
    assert state(h) == (UpdateState.IDLE, failure)
    assert code(h.request(Code.POST, "/5/0/2")) == "4.05"


def test_progress_after_the_download_is_ignored(parts) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, _, downloader = parts
    h.request(Code.PUT, "/5/0/1", payload=URI, cf=CF.TEXT)
    sink = downloader.started[-1][1]
    sink.download_finished(b"fw")
    h.take_events()
    sink.download_progress(1, 2)
    sink.download_finished(b"other")
    assert h.take_events(ObjectEvent) == []
    assert state(h) == (UpdateState.DOWNLOADED, UpdateResult.INITIAL)


def test_asynchronous_update_failure_returns_to_downloaded_and_can_be_retried(parts) -> None:  # type: ignore[no-untyped-def]
    h, firmware, updater, _ = parts
    updater.update_result = None
    h.request(Code.PUT, "/5/0/0", payload=b"pkg", cf=CF.OPAQUE)
    h.request(Code.POST, "/5/0/2")
    firmware.update_finished(UpdateResult.UPDATE_FAILED)
    assert state(h) == (UpdateState.DOWNLOADED, UpdateResult.UPDATE_FAILED)
    updater.update_result = UpdateResult.SUCCESS
    assert code(h.request(Code.POST, "/5/0/2")) == "2.04"
    assert state(h) == (UpdateState.IDLE, UpdateResult.SUCCESS)
    assert updater.installed == [b"pkg", b"pkg"]


def test_update_without_an_updater_fails() -> None:
    firmware = FirmwareUpdate()
    h = Harness(config(server(101)), objects=[firmware])
    h.register_all()
    h.request(Code.PUT, "/5/0/0", payload=b"pkg", cf=CF.OPAQUE)
    assert code(h.request(Code.POST, "/5/0/2")) == "2.04"
    assert state(h) == (UpdateState.DOWNLOADED, UpdateResult.UPDATE_FAILED)


def test_empty_package_resets_from_downloaded_and_cancel_from_downloaded(parts) -> None:  # type: ignore[no-untyped-def]
    h, _firmware, _, downloader = parts
    h.request(Code.PUT, "/5/0/0", payload=b"pkg", cf=CF.OPAQUE)
    assert code(h.request(Code.PUT, "/5/0/1", payload=b"", cf=CF.TEXT)) == "2.04"
    assert state(h) == (UpdateState.IDLE, UpdateResult.INITIAL)
    assert code(h.request(Code.POST, "/5/0/2")) == "4.05"  # the package was removed
    h.request(Code.PUT, "/5/0/0", payload=b"pkg", cf=CF.OPAQUE)
    assert code(h.request(Code.POST, "/5/0/10")) == "2.04"
    assert state(h) == (UpdateState.IDLE, UpdateResult.CANCELLED)
    assert downloader.cancelled == 0  # nothing was downloading


def test_snapshot_and_restore_round_trip() -> None:
    firmware = FirmwareUpdate(updater=Updater(), downloader=Downloader())
    firmware.write(0, [SingleResource(0, ResourceType.OPAQUE, b"pkg")])
    saved = firmware.snapshot()
    firmware.write(0, [SingleResource(1, ResourceType.STRING, "")])
    assert firmware.state is UpdateState.IDLE
    firmware.restore(saved)
    assert (firmware.state, firmware.package) == (UpdateState.DOWNLOADED, b"pkg")
    assert "DOWNLOADED" in repr(firmware)
