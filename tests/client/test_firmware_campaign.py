"""Spec-conformance campaign on the Firmware Update object (/5), complementing test_firmware.py and
test_firmware_paths.py.

Rules cited:

* [E.6] LwM2M-TS-Core 1.1 Appendix E.6 and its Firmware Update state machine figure.
* [R n] the OMA registry text of resource n of object 5 v1.1
  (/work/shared/oma-lwm2m-registry/version_history/5-1_1.xml), e.g. [R 3] State: "Writing an
  empty string to Package URI Resource or setting the Package Resource to NULL ('\\0'), resets
  the Firmware Update State Machine: the State Resource value is set to Idle and the Update
  Result Resource value is set to 0"; [R 5] Update Result: "Once the updating process is
  initiated (Download /Update), this Resource MUST be reset to Initial value".
* [Obj] the object description: "A LwM2M Client MUST support block-wise transfer
  [CoAP_Blockwise] if it implements the Firmware Update object".
* [DM] Core §6.3 (Device Management interface) response codes; [BS] Core §6.1.7.5
  Bootstrap-Delete (2.02, 4.00; spec-reference.md §1.1).
* [7959] RFC 7959 §2.3, §2.5 (2.31 Continue, Block1 echo), §2.9.2 (4.08), §2.9.3 (4.13 + Size1).

The LwM2M side runs on the sans-IO harness (fake clock). Block1 push goes through the sans-IO CoAP
engine (:class:`lwm2m.coap.engine.CoapEngine`, the one the asyncio endpoint wraps) glued to the
client engine in memory. Pull downloads use the fake downloader of test_firmware.py, and
:class:`~lwm2m.io.lwm2m_client.CoapDownloader` on the in-memory network of
test_lwm2m_client_paths.py or on loopback (bounded by timeouts; nothing sleeps).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lwm2m.client.events import ObjectEvent, Registered
from lwm2m.client.objects.firmware import (
    FirmwareProgress,
    FirmwareUpdate,
    UpdateResult,
    UpdateState,
)
from lwm2m.coap.config import CoapConfig
from lwm2m.coap.engine import CoapEngine
from lwm2m.coap.errors import RequestTimeout
from lwm2m.coap.events import RequestReceived
from lwm2m.coap.message import Block, Message, decode
from lwm2m.coap.numbers import Code, MessageType
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.io.coap_endpoint import CoapEndpoint, Site
from lwm2m.io.lwm2m_client import CoapDownloader, LwM2MClient
from lwm2m.model import MultipleResource, ObjectInstance, Path, ResourceType, SingleResource
from lwm2m.operations.requests import BootstrapRequest

from .helpers import Harness, bs_table, code, config, encode, server
from .test_firmware import Downloader, Updater
from .test_lwm2m_client_paths import FakeConnector, Net, describe, lwm2m_server, net
from .test_lwm2m_client_paths import config as paths_config
from .test_runner import TinyServer, client_config

__all__ = ["net"]  # the fixture, re-exported for pytest

URI = b"coap://127.0.0.1:5683/fw.bin"
TIMEOUT = 5.0


# -- harness ---------------------------------------------------------------------------------


class Rig:
    """A registered client with /5 (fake updater and downloader)."""

    def __init__(self, **kw: Any) -> None:
        self.updater = Updater()
        self.downloader = Downloader()
        kw.setdefault("updater", self.updater)
        kw.setdefault("downloader", self.downloader)
        self.firmware = FirmwareUpdate(**kw)
        self.h = Harness(config(server(101)), objects=[self.firmware])
        self.h.register_all()

    def state(self) -> tuple[int, int]:
        tree = self.h.tree
        return tree.value(Path(5, 0, 3)), tree.value(Path(5, 0, 5))  # type: ignore[return-value]

    def put(self, rid: int, payload: bytes) -> str:
        cf = CF.OPAQUE if rid == 0 else CF.TEXT
        return code(self.h.request(Code.PUT, f"/5/0/{rid}", payload=payload, cf=cf))

    def execute(self, rid: int = 2) -> str:
        return code(self.h.request(Code.POST, f"/5/0/{rid}"))

    def sink(self) -> Any:
        return self.downloader.started[-1][1]

    def to(self, where: str) -> None:
        """Drive the state machine to ``where``."""
        if where == "idle":
            return
        if where == "idle-failed":
            self.put(1, URI)
            self.sink().download_failed(UpdateResult.CONNECTION_LOST)
            assert self.state() == (UpdateState.IDLE, UpdateResult.CONNECTION_LOST)
        elif where == "downloading":
            self.put(1, URI)
            assert self.state()[0] == UpdateState.DOWNLOADING
        elif where == "downloaded-push":
            self.put(0, b"pushed")
            assert self.state()[0] == UpdateState.DOWNLOADED
        elif where == "downloaded-pull":
            self.put(1, URI)
            self.sink().download_finished(b"pulled")
            assert self.state()[0] == UpdateState.DOWNLOADED
        elif where == "downloaded-failed":
            self.updater.update_result = UpdateResult.UPDATE_FAILED
            self.put(0, b"pushed")
            self.execute()
            assert self.state() == (UpdateState.DOWNLOADED, UpdateResult.UPDATE_FAILED)
        elif where == "updating":
            self.updater.update_result = None
            self.put(0, b"pushed")
            self.execute()
            assert self.state()[0] == UpdateState.UPDATING
        elif where == "idle-updated":
            self.put(0, b"pushed")
            self.execute()
            assert self.state() == (UpdateState.IDLE, UpdateResult.SUCCESS)
        else:  # pragma: no cover - a typo in a test
            raise AssertionError(where)


@pytest.fixture
def rig() -> Rig:
    return Rig(package_name="fw")


# -- the state machine ([E.6], [R 3]) ------------------------------------------------------------


def test_initial_state_is_idle_with_result_0(rig: Rig) -> None:
    """[R 3] "0: Idle (before downloading ...)"; [R 5] "0: Initial value"; Package URI (RW)
    reads back empty before any write."""
    assert rig.state() == (UpdateState.IDLE, UpdateResult.INITIAL)
    assert rig.h.tree.value(Path(5, 0, 1)) == ""


@pytest.mark.parametrize(
    "start", ["idle", "idle-failed", "downloaded-push", "downloaded-pull", "downloaded-failed"]
)
def test_push_write_from_every_non_updating_state_ends_downloaded_with_result_0(
    rig: Rig, start: str
) -> None:
    """[E.6] Write Package -> Downloading -> (package complete) Downloaded; [R 5] the result is
    reset to 0 when a download is initiated (also after a failed download or a failed update)."""
    rig.to(start)
    rig.h.take_events()
    assert rig.put(0, b"new package") == "2.04"
    assert rig.state() == (UpdateState.DOWNLOADED, UpdateResult.INITIAL)
    states = [e.event.state for e in rig.h.take_events(ObjectEvent)]
    assert states == [UpdateState.DOWNLOADING, UpdateState.DOWNLOADED]
    assert rig.firmware.package == b"new package"


@pytest.mark.parametrize("start", ["idle-failed", "downloaded-push", "downloaded-failed"])
def test_pull_write_from_idle_or_downloaded_starts_downloading_with_result_0(
    rig: Rig, start: str
) -> None:
    """[E.6] Write Package URI -> Downloading; [R 5] result reset to 0 at the download start;
    [R 1] the Package URI reads back as written."""
    rig.to(start)
    assert rig.put(1, b"coap://10.0.0.1/other.bin") == "2.04"
    assert rig.state() == (UpdateState.DOWNLOADING, UpdateResult.INITIAL)
    assert rig.h.tree.value(Path(5, 0, 1)) == "coap://10.0.0.1/other.bin"
    assert rig.downloader.started[-1][0] == "coap://10.0.0.1/other.bin"
    # [R 2] Update is not executable until the new download completes
    assert rig.execute() == "4.05"


def test_pull_download_completion_reaches_downloaded_and_update_succeeds(rig: Rig) -> None:
    """[E.6] Downloading -> Downloaded when the device has downloaded the package from the Package
    URI ([R 3]); Execute Update -> Updating -> Idle with result 1 ([R 5] "1: Firmware updated
    successfully"); [R 3] "0: Idle (... after successful updating)"."""
    rig.updater.update_result = None
    rig.to("downloaded-pull")
    assert rig.state() == (UpdateState.DOWNLOADED, UpdateResult.INITIAL)
    assert rig.execute() == "2.04"
    assert rig.state() == (UpdateState.UPDATING, UpdateResult.INITIAL)
    rig.firmware.update_finished(UpdateResult.SUCCESS)
    assert rig.state() == (UpdateState.IDLE, UpdateResult.SUCCESS)
    assert rig.updater.installed == [b"pulled"]
    # [R 3] "The device should remove the downloaded firmware image when the state is reset to
    # Idle": nothing left to update
    assert rig.firmware.package is None
    assert rig.execute() == "4.05"


def test_executing_update_again_after_a_failed_update_resets_the_result(rig: Rig) -> None:
    """[R 5] "Once the updating process is initiated (Download /Update), this Resource MUST be
    reset to Initial value": a second Execute Update after result 8 shows Updating with 0."""
    rig.to("downloaded-failed")
    rig.updater.update_result = None
    assert rig.execute() == "2.04"
    assert rig.state() == (UpdateState.UPDATING, UpdateResult.INITIAL)


@pytest.mark.parametrize(
    "start",
    [
        "idle",
        "idle-failed",
        "idle-updated",
        "downloading",
        "downloaded-push",
        "downloaded-pull",
        "downloaded-failed",
        "updating",
    ],
)
@pytest.mark.parametrize(
    ("rid", "payload"),
    [(0, b"\x00"), (0, b""), (1, b"")],
    ids=["package-NUL", "package-empty", "uri-empty"],
)
def test_empty_package_or_uri_resets_to_idle_with_result_0_from_any_state(
    rig: Rig, start: str, rid: int, payload: bytes
) -> None:
    """[R 3] writing an empty Package URI or a NULL ('\\0') Package resets the state machine:
    State = Idle, Update Result = 0; the downloaded image is removed; a running download is
    cancelled. (In Updating the registry text gives no exception; see the report.)"""
    rig.to(start)
    cancelled = rig.downloader.cancelled
    assert rig.put(rid, payload) == "2.04"
    assert rig.state() == (UpdateState.IDLE, UpdateResult.INITIAL)
    assert rig.firmware.package is None
    assert rig.h.tree.value(Path(5, 0, 1)) == ""
    assert rig.downloader.cancelled == cancelled + (start == "downloading")
    assert rig.execute() == "4.05"  # [R 2] nothing downloaded any more


@pytest.mark.parametrize(
    "start", ["idle", "idle-failed", "idle-updated", "downloading", "updating"]
)
def test_update_is_refused_with_4_05_outside_downloaded(rig: Rig, start: str) -> None:
    """[R 2] "This Resource is only executable when the value of the State Resource is
    Downloaded"; [DM] Execute on a target not allowed: 4.05 Method Not Allowed. The state and
    the result stay as they were."""
    rig.to(start)
    before = rig.state()
    installed = list(rig.updater.installed)
    assert rig.execute() == "4.05"
    assert rig.state() == before
    assert rig.updater.installed == installed


def test_late_update_completion_after_a_reset_is_ignored(rig: Rig) -> None:
    """[R 3] after a reset the state machine is Idle with result 0: an installer reporting later
    must not move it."""
    rig.to("updating")
    rig.put(1, b"")
    rig.firmware.update_finished(UpdateResult.SUCCESS)
    assert rig.state() == (UpdateState.IDLE, UpdateResult.INITIAL)


# -- Update Result codes ([R 5]) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        UpdateResult.NOT_ENOUGH_FLASH,
        UpdateResult.OUT_OF_RAM,
        UpdateResult.INTEGRITY_CHECK_FAILURE,
        UpdateResult.UNSUPPORTED_PACKAGE_TYPE,
    ],
)
def test_pushed_package_rejected_by_the_device_ends_idle_with_its_result(
    rig: Rig, failure: UpdateResult
) -> None:
    """[R 5] 2 not enough flash, 3 out of RAM, 5 integrity check failure, 6 unsupported package
    type; [E.6] a failed download returns to Idle; [R 3] the image is removed."""
    rig.updater.check_result = failure
    assert rig.put(0, b"pkg") == "2.04"
    assert rig.state() == (UpdateState.IDLE, failure)
    assert rig.firmware.package is None
    assert rig.execute() == "4.05"


@pytest.mark.parametrize(
    "uri",
    [b"not a uri", b"coap:///fw.bin", b"coap://[::1/fw", b"/fw.bin", b"coap//host/fw.bin"],
    ids=["words", "no-host", "bad-ipv6", "relative", "no-colon"],
)
def test_malformed_uri_gives_result_7_and_no_download(rig: Rig, uri: bytes) -> None:
    """[R 5] "7: Invalid URI"; [R 1] "The URI format is defined in RFC 3986"."""
    assert rig.put(1, uri) == "2.04"
    assert rig.state() == (UpdateState.IDLE, UpdateResult.INVALID_URI)
    assert rig.downloader.started == []


@pytest.mark.parametrize(
    ("protocols", "uri", "supported"),
    [
        ((0,), b"coap://h/fw", True),
        ((0,), b"COAP://h/fw", True),  # RFC 3986 §3.1: schemes are case-insensitive
        ((0,), b"coaps://h/fw", False),
        ((0,), b"http://h/fw", False),
        ((0,), b"ftp://h/fw", False),
        ((1,), b"coap://h/fw", False),
        ((1,), b"coaps://h/fw", True),
        ((2,), b"http://h/fw", True),
        ((3,), b"https://h/fw", True),
        ((2,), b"https://h/fw", False),
        ((4,), b"coap+tcp://h/fw", True),
        ((5,), b"coaps+tcp://h/fw", True),
        ((0, 1, 2, 3, 4, 5), b"gopher://h/fw", False),
    ],
)
def test_uri_scheme_against_protocol_support(
    protocols: tuple[int, ...], uri: bytes, supported: bool
) -> None:
    """[R 5] "9: Unsupported protocol ... when the URI contained a URI scheme unsupported by the
    client"; [R 8] the values 0 CoAP, 1 CoAPS, 2 HTTP, 3 HTTPS, 4 CoAP/TCP, 5 CoAP/TLS and
    [R 1] "The URI scheme determines the protocol to be used"."""
    rig = Rig(protocols=protocols)
    assert rig.put(1, uri) == "2.04"
    if supported:
        assert rig.state() == (UpdateState.DOWNLOADING, UpdateResult.INITIAL)
        assert rig.downloader.started[-1][0] == uri.decode()
    else:
        assert rig.state() == (UpdateState.IDLE, UpdateResult.UNSUPPORTED_PROTOCOL)
        assert rig.downloader.started == []


@pytest.mark.parametrize(
    "failure",
    [
        UpdateResult.NOT_ENOUGH_FLASH,
        UpdateResult.OUT_OF_RAM,
        UpdateResult.CONNECTION_LOST,
        UpdateResult.INVALID_URI,
        UpdateResult.UNSUPPORTED_PROTOCOL,
    ],
)
def test_download_failures_reported_by_the_downloader_end_idle(
    rig: Rig, failure: UpdateResult
) -> None:
    """[E.6] Downloading -> Idle on a failed download with the failure in Update Result
    ([R 5] 2, 3, 4, 7, 9); the Package URI stays readable."""
    rig.to("downloading")
    rig.sink().download_failed(failure)
    assert rig.state() == (UpdateState.IDLE, failure)
    assert rig.h.tree.value(Path(5, 0, 1)) == URI.decode()
    assert rig.execute() == "4.05"


def test_update_failing_its_integrity_check_returns_to_idle(rig: Rig) -> None:
    rig.updater.update_result = UpdateResult.INTEGRITY_CHECK_FAILURE
    rig.put(0, b"pkg")
    assert rig.execute() == "2.04"
    assert rig.state() == (UpdateState.IDLE, UpdateResult.INTEGRITY_CHECK_FAILURE)


def test_update_failure_8_keeps_the_package_for_a_retry(rig: Rig) -> None:
    """[E.6] figure: Updating -> Downloaded with Update Result 8 "Firmware update failed"."""
    rig.to("downloaded-failed")
    assert rig.firmware.package == b"pushed"
    rig.updater.update_result = UpdateResult.SUCCESS
    assert rig.execute() == "2.04"
    assert rig.state() == (UpdateState.IDLE, UpdateResult.SUCCESS)


def test_cancel_sets_result_10_and_is_refused_while_updating(rig: Rig) -> None:
    """[R 10] Cancel: State 0, Update Result 10; "If the device is in the process of installing
    the firmware ... it MUST respond with Method Not Allowed"."""
    rig.to("downloaded-pull")
    assert rig.execute(10) == "2.04"
    assert rig.state() == (UpdateState.IDLE, UpdateResult.CANCELLED)
    rig.to("updating")
    assert rig.execute(10) == "4.05"
    assert rig.state() == (UpdateState.UPDATING, UpdateResult.INITIAL)


# -- resources 1, 6, 7, 8, 9 reflect the configuration ----------------------------------------


def test_package_uri_range_is_0_to_255_bytes(rig: Rig) -> None:
    """[R 1] range 0..255: a 255-byte URI is taken, a 256-byte one refused (4.00 Bad Request,
    [DM] Write), leaving the state machine as it was."""
    head = b"coap://h/"
    ok = head + b"a" * (255 - len(head))
    assert rig.put(1, ok) == "2.04"
    assert rig.h.tree.value(Path(5, 0, 1)) == ok.decode()
    before = rig.state()
    assert rig.put(1, ok + b"a") == "4.00"
    assert rig.state() == before
    assert len(rig.downloader.started) == 1


def test_pkg_name_and_version_reflect_the_configuration() -> None:
    """[R 6] PkgName, [R 7] PkgVersion: readable (R) when the device provides them; absent
    otherwise (optional resources: 4.04 on Read)."""
    rig = Rig(package_name="acme-fw", package_version="3.2.1")
    assert code(rig.h.request(Code.GET, "/5/0/6")) == "2.05"
    assert rig.h.request(Code.GET, "/5/0/6").payload == b"acme-fw"
    assert rig.h.request(Code.GET, "/5/0/7").payload == b"3.2.1"
    bare = Rig()
    assert code(bare.h.request(Code.GET, "/5/0/6")) == "4.04"
    assert code(bare.h.request(Code.GET, "/5/0/7")) == "4.04"


@pytest.mark.parametrize("protocols", [(0,), (1,), (0, 1), (0, 1, 2, 3, 4, 5)])
def test_protocol_support_lists_the_configured_protocols(protocols: tuple[int, ...]) -> None:
    """[R 8] Firmware Update Protocol Support (multiple, R) lists what the client implements."""
    rig = Rig(protocols=protocols)
    resource = rig.h.tree.read(Path(5, 0, 8))
    assert isinstance(resource, MultipleResource)
    assert sorted(resource.values.values()) == sorted(protocols)
    response = rig.h.request(Code.GET, "/5/0/8", accept=CF.SENML_JSON)
    assert code(response) == "2.05"
    for value in protocols:
        assert f'"v":{value}'.encode() in response.payload


def test_delivery_method_reflects_push_and_pull_support() -> None:
    """[R 9] 1 push only (no downloader), 2 both (push and a downloader)."""
    assert Rig().h.tree.value(Path(5, 0, 9)) == 2
    assert Rig(downloader=None).h.tree.value(Path(5, 0, 9)) == 1


# -- Observe: the server learns the progress ([E.6], Core §6.4.2) -----------------------------


def observe(rig: Rig, path: str) -> None:
    response = rig.h.request(Code.GET, path, observe=0, token=path.encode())
    assert code(response) == "2.05"
    assert response.observe == 0


def notes(rig: Rig) -> list[tuple[str, bytes]]:
    rig.h.advance(0)  # what the asyncio adapter does on engine.on_change
    return [(n.token.decode(), n.message.payload) for n in rig.h.take_notifications()]


def test_observers_of_state_and_result_learn_every_step_of_a_pull_update(rig: Rig) -> None:
    """Observe /5/0/3 and /5/0/5 (Core §6.4.2: Notify on change): the server sees State 1, 2, 3,
    0 and Update Result 1 at the end; progress within Downloading changes neither."""
    observe(rig, "/5/0/3")
    observe(rig, "/5/0/5")
    rig.updater.update_result = None
    rig.put(1, URI)
    assert notes(rig) == [("/5/0/3", b"1")]
    rig.sink().download_progress(100, 1000)
    assert notes(rig) == []
    rig.sink().download_finished(b"p" * 1000)
    assert notes(rig) == [("/5/0/3", b"2")]
    rig.execute()
    assert notes(rig) == [("/5/0/3", b"3")]
    rig.firmware.update_finished(UpdateResult.SUCCESS)
    assert sorted(notes(rig)) == [("/5/0/3", b"0"), ("/5/0/5", b"1")]


def test_observers_learn_failures_resets_and_the_result_reset_of_a_new_download(rig: Rig) -> None:
    """Notify on change of /5/0/3 and /5/0/5 through a failed download (result 4), a new
    download (result back to 0, [R 5]), a reset by an empty URI, and a Cancel (result 10)."""
    observe(rig, "/5/0/3")
    observe(rig, "/5/0/5")
    rig.put(1, URI)
    notes(rig)
    rig.sink().download_failed(UpdateResult.CONNECTION_LOST)
    assert sorted(notes(rig)) == [("/5/0/3", b"0"), ("/5/0/5", b"4")]
    rig.put(1, URI)
    assert sorted(notes(rig)) == [("/5/0/3", b"1"), ("/5/0/5", b"0")]
    rig.put(1, b"")
    assert notes(rig) == [("/5/0/3", b"0")]
    rig.put(1, URI)
    notes(rig)
    rig.execute(10)
    assert sorted(notes(rig)) == [("/5/0/3", b"0"), ("/5/0/5", b"10")]


def test_observer_of_the_instance_is_notified_on_state_changes(rig: Rig) -> None:
    """Observe /5/0 (Core §6.4.2, object-instance level): each state change is notified with the
    new State inside the instance representation."""
    response = rig.h.request(Code.GET, "/5/0", observe=0, token=b"i", accept=CF.SENML_JSON)
    assert code(response) == "2.05"
    rig.put(0, b"pkg")
    rig.h.advance(0)
    (note,) = rig.h.take_notifications()
    assert b'"n":"3","v":2' in note.message.payload
    rig.execute()
    rig.h.advance(0)
    (note,) = rig.h.take_notifications()
    assert b'"n":"3","v":0' in note.message.payload
    assert b'"n":"5","v":1' in note.message.payload


# -- operations the object does not allow ([DM]) ----------------------------------------------


@pytest.mark.parametrize("rid", [6, 7, 9])
def test_write_to_a_read_only_resource_is_4_05(rid: int) -> None:
    """[DM] Write: 4.05 "Target is not allowed for Write operation" (PkgName, PkgVersion and
    Delivery Method are R; State and Update Result: test_firmware_paths.py)."""
    rig = Rig(package_name="fw", package_version="1")
    before = rig.state()
    assert code(rig.h.request(Code.PUT, f"/5/0/{rid}", payload=b"1", cf=CF.TEXT)) == "4.05"
    assert rig.state() == before


def test_write_to_protocol_support_is_4_05(rig: Rig) -> None:
    """[DM] Write of the read-only multiple resource /5/0/8: 4.05."""
    node = MultipleResource.of(8, ResourceType.INTEGER, {0: 2})
    response = rig.h.request(Code.PUT, "/5/0/8", payload=encode(node, "/5/0/8"), cf=CF.TLV)
    assert code(response) == "4.05"
    assert rig.h.tree.read(Path(5, 0, 8)).values == {0: 0}  # type: ignore[union-attr]


def test_write_replace_of_the_instance_with_a_read_only_resource_is_4_05(rig: Rig) -> None:
    """[DM] a Write carrying a read-only resource (State) is refused as a whole: no download
    starts."""
    instance = ObjectInstance(
        0,
        [
            SingleResource(1, ResourceType.STRING, URI.decode()),
            SingleResource(3, ResourceType.INTEGER, 2),
        ],
    )
    response = rig.h.request(Code.PUT, "/5/0", payload=encode(instance, "/5/0"), cf=CF.TLV)
    assert code(response) == "4.05"
    assert rig.state() == (UpdateState.IDLE, UpdateResult.INITIAL)
    assert rig.downloader.started == []


def test_write_of_the_instance_carrying_the_package_uri_starts_a_download(rig: Rig) -> None:
    """[E.6] Write Package URI, here through a Write of /5/0 (TLV), starts the download."""
    instance = ObjectInstance(0, [SingleResource(1, ResourceType.STRING, URI.decode())])
    response = rig.h.request(Code.PUT, "/5/0", payload=encode(instance, "/5/0"), cf=CF.TLV)
    assert code(response) == "2.04"
    assert rig.state() == (UpdateState.DOWNLOADING, UpdateResult.INITIAL)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        (Code.PUT, "/5/0/2", "4.05"),  # Update is E only
        (Code.GET, "/5/0/2", "4.05"),
        (Code.GET, "/5/0/10", "4.05"),  # Cancel is E only
        (Code.POST, "/5/0/0", "4.05"),  # Package is W only
        (Code.POST, "/5/0/1", "4.05"),
        (Code.POST, "/5/0/9", "4.05"),
        (Code.DELETE, "/5/0", "4.05"),  # the single instance cannot be deleted
    ],
)
def test_operations_not_allowed_on_object_5(
    rig: Rig, method: int, path: str, expected: str
) -> None:
    """[DM] 4.05 Method Not Allowed for an operation the target does not support."""
    assert code(rig.h.request(method, path)) == expected
    assert rig.state() == (UpdateState.IDLE, UpdateResult.INITIAL)
    assert rig.h.tree.instance_ids(5) == [0]


def test_create_of_a_second_instance_is_refused(rig: Rig) -> None:
    """[DM] Create on a single-instance object that already has its instance: 4.00 Bad Request
    (Core 1.1 Create: "Target (i.e. Object) already has an Instance (in Single Instance
    Object)")."""
    node = encode(ObjectInstance(1, [SingleResource(1, ResourceType.STRING, "")]), "/5/1", CF.TLV)
    assert code(rig.h.request(Code.POST, "/5", payload=node, cf=CF.TLV)) == "4.00"
    assert rig.h.tree.instance_ids(5) == [0]


@pytest.mark.parametrize("rid", [11, 13])
def test_write_to_an_unimplemented_optional_resource_is_4_04(rig: Rig, rid: int) -> None:
    assert code(rig.h.request(Code.GET, f"/5/0/{rid}")) == "4.04"
    assert code(rig.h.request(Code.PUT, f"/5/0/{rid}", payload=b"1", cf=CF.TEXT)) == "4.04"


def bootstrapping() -> tuple[Harness, FirmwareUpdate]:
    firmware = FirmwareUpdate(updater=Updater(), downloader=Downloader())
    h = Harness(config(bootstrap=bs_table()), objects=[firmware])
    h.start()
    (request,) = h.take(BootstrapRequest)
    h.respond(request, Code.CHANGED)
    firmware.write(0, [SingleResource(0, ResourceType.OPAQUE, b"pkg")])
    return h, firmware


def test_bootstrap_delete_of_everything_answers_2_02() -> None:
    """[BS] Bootstrap-Delete / answers 2.02; the device-provided /5/0 stays (see the report)."""
    h, firmware = bootstrapping()
    assert code(h.bs(Code.DELETE, "/")) == "2.02"
    assert code(h.bs(Code.DELETE, "/5")) == "2.02"
    assert h.tree.instance_ids(5) == [0]
    assert firmware.state is UpdateState.DOWNLOADED


def test_bootstrap_delete_of_the_firmware_instance_answers_a_bootstrap_code() -> None:
    h, _ = bootstrapping()
    assert code(h.bs(Code.DELETE, "/5/0")) in ("2.02", "4.00")


# -- push through CoAP block-wise transfer ([Obj], [7959]) --------------------------------------

SERVER_ADDR = ("127.0.0.1", 5701)  # where Harness.peer(101) is


class BlockWire:
    """The server's requests through the sans-IO CoAP engine into the client engine: Block1
    reassembly (and its 2.31 / 4.08 / 4.13 answers) happen in the CoAP layer, as in the asyncio
    endpoint."""

    def __init__(self, rig: Rig, coap_config: CoapConfig | None = None) -> None:
        self.rig = rig
        self.coap = CoapEngine(coap_config, rng=random.Random(5))
        self.mid = 100

    def send(self, request: Message) -> Message:
        h = self.rig.h
        self.mid += 1
        request.mid = self.mid
        request.mtype = MessageType.CON
        request.token = b"fw"
        self.coap.receive_datagram(request.encode(), SERVER_ADDR, h.now)
        while (event := self.coap.next_event()) is not None:
            if isinstance(event, RequestReceived):
                response = h.engine.handle_request(event.exchange.request, h.peer(101), h.now)
                h._drain()
                self.coap.send_response(event.exchange, response, h.now)
        ((datagram, remote),) = self.coap.datagrams_to_send(h.now)
        assert remote == SERVER_ADDR
        return decode(datagram)

    def block(self, package: bytes, num: int, szx: int = 6, *, size1: int | None = None) -> Message:
        size = 1 << (szx + 4)
        chunk = package[num * size : (num + 1) * size]
        more = (num + 1) * size < len(package)
        request = Message(Code.PUT, chunk, uri_path="/5/0/0", content_format=CF.OPAQUE)
        request.block1 = Block(num, more, szx)
        if size1 is not None:
            request.size1 = size1
        return self.send(request)

    def advance(self, seconds: float) -> None:
        self.rig.h.advance(seconds)
        self.coap.handle_timer(self.rig.h.now)


PACKAGE = bytes(range(256)) * 18 + b"tail"  # 4612 bytes: 5 blocks of 1024


def test_block1_push_continues_each_block_then_completes(rig: Rig) -> None:
    """[Obj] block-wise Write of Package; [7959] §2.5 each non-final block gets 2.31 Continue
    echoing Block1 (num, M=1); §2.3 the final 2.04 echoes Block1 (num, M=0); [E.6] the
    reassembled package moves the state to Downloaded and can be installed."""
    wire = BlockWire(rig)
    blocks = -(-len(PACKAGE) // 1024)
    for num in range(blocks - 1):
        response = wire.block(PACKAGE, num, size1=len(PACKAGE) if num == 0 else None)
        assert Code(response.code) == Code.CONTINUE
        assert response.block1 == Block(num, True, 6)
    final = wire.block(PACKAGE, blocks - 1)
    assert Code(final.code) == Code.CHANGED
    assert final.block1 == Block(blocks - 1, False, 6)
    assert rig.state() == (UpdateState.DOWNLOADED, UpdateResult.INITIAL)
    assert rig.firmware.package == PACKAGE
    assert rig.execute() == "2.04"
    assert rig.updater.installed == [PACKAGE]


def test_block1_push_with_smaller_blocks(rig: Rig) -> None:
    """[7959] §2.5 any block size the server picks (here 64 bytes, SZX 2) is reassembled."""
    wire = BlockWire(rig)
    package = PACKAGE[:1000]
    blocks = -(-len(package) // 64)
    codes = [Code(wire.block(package, num, szx=2).code) for num in range(blocks)]
    assert codes == [Code.CONTINUE] * (blocks - 1) + [Code.CHANGED]
    assert rig.firmware.package == package


def test_block1_push_with_a_missing_block_is_4_08_and_the_package_is_not_taken(rig: Rig) -> None:
    """[7959] §2.9.2 4.08 Request Entity Incomplete for a block that does not continue the
    transfer; the object never sees a partial package (still Idle, result 0) and a transfer
    restarted from block 0 succeeds."""
    wire = BlockWire(rig)
    assert Code(wire.block(PACKAGE, 0).code) == Code.CONTINUE
    assert Code(wire.block(PACKAGE, 2).code) == Code.REQUEST_ENTITY_INCOMPLETE  # 1 is missing
    assert rig.state() == (UpdateState.IDLE, UpdateResult.INITIAL)
    assert rig.firmware.package is None
    # the transfer is gone: block 1 now gets 4.08 too
    assert Code(wire.block(PACKAGE, 1).code) == Code.REQUEST_ENTITY_INCOMPLETE
    codes = [Code(wire.block(PACKAGE, num).code) for num in range(5)]
    assert codes[-1] == Code.CHANGED
    assert rig.firmware.package == PACKAGE


def test_block1_continuation_without_its_first_block_is_4_08(rig: Rig) -> None:
    """[7959] §2.9.2: a block of no known transfer gets 4.08; nothing changes on /5."""
    wire = BlockWire(rig)
    assert Code(wire.block(PACKAGE, 3).code) == Code.REQUEST_ENTITY_INCOMPLETE
    assert rig.state() == (UpdateState.IDLE, UpdateResult.INITIAL)


def test_block1_transfer_abandoned_past_the_reassembly_timeout_is_4_08(rig: Rig) -> None:
    """[7959] §2.9.2 with the client's bounded reassembly (CoapConfig.reassembly_timeout): a
    block arriving after the transfer was dropped gets 4.08 (fake clock, no sleep)."""
    wire = BlockWire(rig, CoapConfig(reassembly_timeout=30.0))
    assert Code(wire.block(PACKAGE, 0).code) == Code.CONTINUE
    wire.advance(31.0)
    assert Code(wire.block(PACKAGE, 1).code) == Code.REQUEST_ENTITY_INCOMPLETE
    assert rig.state() == (UpdateState.IDLE, UpdateResult.INITIAL)


def test_block1_package_announced_too_large_is_4_13_with_size1(rig: Rig) -> None:
    """[7959] §2.9.3 / §4: a body larger than the client can take gets 4.13 Request Entity Too
    Large with Size1 = the largest it accepts, at block 0 when Size1 announces it, else at the
    block that overflows. The object is left Idle (see the report about result 2)."""
    wire = BlockWire(rig, CoapConfig(max_body_size=2048))
    response = wire.block(PACKAGE, 0, size1=len(PACKAGE))
    assert Code(response.code) == Code.REQUEST_ENTITY_TOO_LARGE
    assert response.size1 == 2048
    assert Code(wire.block(PACKAGE, 0).code) == Code.CONTINUE  # no Size1: found out later
    assert Code(wire.block(PACKAGE, 1).code) == Code.CONTINUE
    response = wire.block(PACKAGE, 2)
    assert Code(response.code) == Code.REQUEST_ENTITY_TOO_LARGE
    assert response.size1 == 2048
    assert rig.state() == (UpdateState.IDLE, UpdateResult.INITIAL)
    assert rig.firmware.package is None


def test_block1_push_rejected_for_flash_after_reassembly_is_result_2(rig: Rig) -> None:
    """[R 5] "2: Not enough flash memory for the new firmware package" when the device says so
    (FirmwareUpdater.check) after the block-wise Write completed: Idle, result 2."""
    rig.updater.check_result = UpdateResult.NOT_ENOUGH_FLASH
    wire = BlockWire(rig)
    codes = [Code(wire.block(PACKAGE, num).code) for num in range(5)]
    assert codes[-1] == Code.CHANGED
    assert rig.state() == (UpdateState.IDLE, UpdateResult.NOT_ENOUGH_FLASH)
    assert rig.firmware.package is None


def test_a_block1_push_shows_the_previous_state_until_the_package_is_whole(rig: Rig) -> None:
    """A documented limitation (docs/design.md, "LwM2M client"): [R 3] has "1: Downloading
    (The data sequence is on the way)", but a push arrives block by block in the CoAP layer
    (RFC 7959 reassembly, below the LwM2M layer), and the object sees the Write of /5/0/0 only
    when the package is whole. Between blocks /5/0/3 and /5/0/5 keep their previous values (a
    pull, which the object drives, does show Downloading)."""
    rig.updater.check_result = UpdateResult.INTEGRITY_CHECK_FAILURE
    rig.put(0, b"bad")
    rig.updater.check_result = None
    before = rig.state()
    wire = BlockWire(rig)
    assert Code(wire.block(PACKAGE, 0).code) == Code.CONTINUE
    assert Code(wire.block(PACKAGE, 1).code) == Code.CONTINUE
    assert rig.state() == before


# -- pull delivery through CoapDownloader ------------------------------------------------------


def finished(event: object) -> bool:
    return (
        isinstance(event, ObjectEvent)
        and isinstance(event.event, FirmwareProgress)
        and event.event.state is not UpdateState.DOWNLOADING
    )


@pytest.mark.parametrize(
    "error",
    [RequestTimeout("no answer"), OSError("network unreachable")],
    ids=["timeout", "unreachable"],
)
async def test_pull_from_an_unreachable_server_is_result_4(net: Net, error: Exception) -> None:
    """[R 5] "4: Connection lost during downloading process": the CoAP GET of the Package URI
    times out or the network refuses it -> Idle with result 4 (in-memory network)."""
    net.answer = lambda m: error if describe(m) == "fw" else lwm2m_server(m)
    firmware = FirmwareUpdate(updater=Updater())
    client = LwM2MClient(paths_config(), objects=[firmware], connector=FakeConnector())
    firmware.downloader = CoapDownloader(client)
    await client.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await client.wait_for(Registered)
        assert net.endpoint is not None
        put = Message(
            Code.PUT, b"coap://127.0.0.1:5683/fw", uri_path="/5/0/1", content_format=CF.TEXT
        )
        assert net.endpoint.serve(put).code == Code.CHANGED
        async with asyncio.timeout(TIMEOUT):
            done = await client.wait_for(finished)
        assert done.event == FirmwareProgress(UpdateState.IDLE, UpdateResult.CONNECTION_LOST)  # type: ignore[attr-defined]
        assert (firmware.state, firmware.result) == (UpdateState.IDLE, UpdateResult.CONNECTION_LOST)
        assert [m.code for m in net.sent("fw")] == [Code.GET]
    finally:
        await client.stop(grace=1)


class FileServer:
    """A CoAP file server on loopback (its own endpoint) answering /fw with ``body``."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.endpoint: CoapEndpoint

    async def start(self) -> None:
        site = Site()
        site.add("/fw", lambda request: Message(Code.CONTENT, self.body))
        self.endpoint = await CoapEndpoint.create(("127.0.0.1", 0), site=site)

    @property
    def port(self) -> int:
        port: int = self.endpoint.local_address[1]
        return port


@pytest.fixture
async def lwm2m_server_loop() -> AsyncIterator[TinyServer]:
    tiny = TinyServer()
    await tiny.start()
    yield tiny
    await tiny.endpoint.close()


async def pull_on_loopback(
    tiny: TinyServer, body: bytes, coap_config: CoapConfig | None = None
) -> FirmwareUpdate:
    files = FileServer(body)
    await files.start()
    firmware = FirmwareUpdate(updater=Updater())
    client = LwM2MClient(client_config(tiny.port), objects=[firmware], coap_config=coap_config)
    firmware.downloader = CoapDownloader(client)
    try:
        async with client:
            await asyncio.wait_for(client.wait_registered(), TIMEOUT)
            uri = f"coap://127.0.0.1:{files.port}/fw".encode()
            response = await tiny.endpoint.request(
                Message(Code.PUT, uri, uri_path="/5/0/1", content_format=CF.TEXT),
                client.local_address,
            )
            assert response.code == Code.CHANGED
            await asyncio.wait_for(client.wait_for(finished), TIMEOUT)
    finally:
        await files.endpoint.close()
    return firmware


async def test_pull_of_a_large_package_uses_block2_and_reaches_downloaded(
    lwm2m_server_loop: TinyServer,
) -> None:
    """[Obj] pull over CoAP with block-wise transfer ([R 8] value 0 "CoAP ... with the
    additional support for block-wise transfer"): a 20 KiB package arrives whole."""
    body = bytes(random.Random(7).randbytes(20 * 1024))
    firmware = await pull_on_loopback(lwm2m_server_loop, body)
    assert (firmware.state, firmware.result) == (UpdateState.DOWNLOADED, UpdateResult.INITIAL)
    assert firmware.package == body


async def test_pull_of_a_package_too_large_for_the_client_is_result_2_or_3(
    lwm2m_server_loop: TinyServer,
) -> None:
    body = bytes(8 * 1024)
    firmware = await pull_on_loopback(lwm2m_server_loop, body, CoapConfig(max_body_size=4096))
    assert firmware.state is UpdateState.IDLE
    assert firmware.result in (UpdateResult.NOT_ENOUGH_FLASH, UpdateResult.OUT_OF_RAM)
