"""The one-line event formats and the node tables of the command line."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from lwm2m.bootstrap import session as bs
from lwm2m.cli.printing import (
    bootstrap_event_line,
    client_event_line,
    code_text,
    composite_table,
    content_format_text,
    format_value,
    info_line,
    node_inline,
    node_table,
    request_text,
    response_text,
    server_event_line,
    timestamped_table,
)
from lwm2m.client import events as ce
from lwm2m.client.objects import DeviceAction
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.codec.link import Link
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import default_registry
from lwm2m.operations.requests import Observe
from lwm2m.operations.responses import Response
from lwm2m.server import events as se
from lwm2m.server.observation import Observation
from lwm2m.server.registration import ObjectLinks, Registration

INT, STR = ResourceType.INTEGER, ResourceType.STRING


def plain(markup: str) -> str:
    console = Console(width=300, no_color=True, highlight=False, record=True)
    with console.capture() as capture:
        console.print(markup)
    text = capture.get().rstrip("\n")
    return re.sub(r"^\d\d:\d\d:\d\d\.\d{3} ", "", text)


def registration(**changes: object) -> Registration:
    values: dict[str, object] = {
        "id": "abc",
        "endpoint": "dev-1",
        "address": ("127.0.0.1", 5555),
        "identity": None,
        "lifetime": 300,
        "binding": "U",
        "queue_mode": False,
        "version": "1.1",
        "links": ObjectLinks((Link("/"), Link("/1"), Link("/1/0"), Link("/3/0"))),
        "registered_at": 0.0,
        "updated_at": 0.0,
    }
    values.update(changes)
    return Registration(**values)  # type: ignore[arg-type]


OBSERVATION = Observation.from_request(b"\x01", "abc", Observe(Path(3, 0, 9)), now=0.0)


def test_server_event_lines() -> None:
    reg = registration()
    assert plain(server_event_line(se.Registered(reg))) == (
        "registered     dev-1 /rd/abc lifetime=300s binding=U lwm2m=1.1 from=127.0.0.1:5555 "
        "objects: /1/0 /3/0"
    )
    again = plain(server_event_line(se.Registered(reg, registration(id="old"))))
    assert again.endswith("(replaces /rd/old)")
    new = registration(
        lifetime=60,
        address=("127.0.0.1", 6666),
        queue_mode=True,
        links=ObjectLinks((Link("/3/0"),)),
    )
    updated = plain(server_event_line(se.Updated(reg, new)))
    assert updated.startswith("updated        dev-1 /rd/abc lifetime=60s binding=U queue-mode")
    assert updated.endswith("(lifetime 300s -> 60s; address -> 127.0.0.1:6666; objects changed)")
    assert plain(server_event_line(se.Updated(reg, reg))).endswith("objects: /1/0 /3/0")
    assert plain(server_event_line(se.Deregistered(reg))) == "deregistered   dev-1 /rd/abc"
    assert plain(server_event_line(se.Expired(reg))) == "expired        dev-1 /rd/abc lifetime=300s"
    single = Response(0x45, content=SingleResource(9, INT, 80), content_format=CF.SENML_CBOR)
    assert plain(server_event_line(se.NotificationReceived(reg, OBSERVATION, single))) == (
        "notification   dev-1 /rd/abc /3/0/9 = 80 [senml-cbor (112)]"
    )
    composite = Response(0x45, composite={Path(3, 0, 9): SingleResource(9, INT, 7)})
    assert "/3/0/9 = 7 [-]" in plain(
        server_event_line(se.NotificationReceived(reg, OBSERVATION, composite))
    )
    empty = plain(server_event_line(se.NotificationReceived(reg, OBSERVATION, Response(0x45))))
    assert "(no content)" in empty
    assert plain(server_event_line(se.ObservationEnded(reg, OBSERVATION, "cancelled"))) == (
        "observe-ended  dev-1 /rd/abc /3/0/9 cancelled"
    )
    groups = (
        TimestampedNodes(0.0, {Path(3, 0, 9): SingleResource(9, INT, 5)}),
        TimestampedNodes(None, {Path(3, 0, 0): SingleResource(0, STR, "A")}),
    )
    assert plain(server_event_line(se.SendReceived(reg, groups, CF.SENML_JSON))) == (
        "send           dev-1 /rd/abc /3/0/9 = 5 @1970-01-01T00:00:00Z; /3/0/0 = 'A' "
        "[senml-json (110)]"
    )
    assert plain(server_event_line(se.Awake(reg))) == "awake          dev-1 /rd/abc"
    assert plain(server_event_line(se.Sleeping(reg))) == "sleeping       dev-1 /rd/abc"


def test_markup_in_values_is_not_interpreted() -> None:
    reg = registration(endpoint="[bold]x[/bold]")
    assert "[bold]x[/bold]" in plain(server_event_line(se.Deregistered(reg)))


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (ce.BootstrapStarted(False), "bootstrapping  client-initiated"),
        (ce.BootstrapStarted(True), "bootstrapping  server-initiated"),
        (ce.BootstrapFinished("factory"), "bootstrapped   source=factory"),
        (ce.BootstrapFailed("no answer", 5.0), "bootstrap-fail no answer (will retry)"),
        (ce.BootstrapFailed("refused", None), "bootstrap-fail refused"),
        (ce.Registered(101, "/rd/x"), "registered     server=101 /rd/x"),
        (ce.RegistrationUpdated(101), "updated        server=101"),
        (ce.RegistrationFailed(1, "timeout", 3.0), "register-fail  server=1 timeout (will retry)"),
        (ce.RegistrationFailed(1, "timeout", None), "register-fail  server=1 timeout (gave up)"),
        (ce.Deregistered(101), "deregistered   server=101"),
        (ce.ServerDisabled(101, 9.0), "disabled       server=101"),
        (ce.Sleeping(101), "sleeping       server=101"),
        (ce.Awake(101), "awake          server=101"),
        (ce.SendCompleted(1, 101, 0x44), "sent           server=101 2.04 Changed"),
        (ce.SendCompleted(1, 101, None), "sent           server=101 no answer"),
        (ce.ObjectEvent(DeviceAction("factory_reset")), "object-event   factory reset requested"),
        (ce.ObjectEvent("other"), "object-event   'other'"),
        (ce.Stopped(), "stopped"),
    ],
)
def test_client_event_lines(event: ce.ClientEvent, text: str) -> None:
    assert plain(client_event_line(event)) == text


def test_bootstrap_event_lines() -> None:
    started = bs.BootstrapStarted("ep", ("delete /", "finish"))
    assert plain(bootstrap_event_line(started)) == "session        ep 2 steps: delete /, finish"
    step = bs.BootstrapStep("ep", 0, "delete", Path(), 0x42)
    assert plain(bootstrap_event_line(step, 2)) == "step 1/2       ep delete / -> 2.02 Deleted"
    failed = bs.BootstrapStep("ep", 1, "finish", None, None, "RequestTimeout")
    assert (
        plain(bootstrap_event_line(failed)) == "step 2         ep finish -> failed: RequestTimeout"
    )
    found = bs.BootstrapStep("ep", 0, "discover", Path(), 0x45, links=(Link("/0/1"),))
    assert plain(bootstrap_event_line(found, 3)).endswith("-> 2.05 Content (1 links)")
    fitted = bs.BootstrapStep("ep", 3, "write", Path(1, 0), 0x44, omitted=(Path(1, 0, 23),))
    assert plain(bootstrap_event_line(fitted, 5)) == (
        "step 4/5       ep write /1/0 -> 2.04 Changed "
        "(left out /1/0/23: not in the client's object version)"
    )
    assert plain(bootstrap_event_line(bs.BootstrapFinished("ep"))).startswith("finished       ep")
    assert plain(bootstrap_event_line(bs.BootstrapFailed("ep", "4.06"))) == "failed         ep 4.06"
    assert plain(info_line("observing", "ep", "/3/0/9")) == "observing      ep /3/0/9"


def test_values_codes_and_formats() -> None:
    assert format_value(b"\x01\x02") == "0x0102"
    assert format_value(bytes(20)) == "0x" + "00" * 16 + "…(20 bytes)"
    assert format_value(True) == "true"
    assert format_value("x") == "'x'"
    assert format_value(0, ResourceType.TIME) == "0 (1970-01-01T00:00:00Z)"
    assert format_value(10**20, ResourceType.TIME) == "100000000000000000000 (?)"
    assert format_value(None) == "-"
    assert format_value(ObjectLink(3, 0)) == "3:0"
    assert format_value(1.5) == "1.5"
    assert code_text(0x45) == "2.05 Content"
    assert code_text(0x86) == "4.06 Not Acceptable"
    assert code_text(0x47) == "2.07"
    assert content_format_text(None) == "-"
    assert content_format_text(11542) == "tlv (11542)"
    assert content_format_text(1234) == "1234"


def test_request_and_response_summaries() -> None:
    message = Message(Code.GET, uri_path="/3/0/9", accept=CF.TLV)
    message.observe = 0
    assert request_text(message) == "GET /3/0/9, Observe: 0, Accept: tlv (11542)"
    post = Message(Code.POST, b"abc", uri_path="/rd", content_format=CF.LINK)
    post.uri_query = ("ep=x", "lt=60")
    assert request_text(post) == ("POST /rd?ep=x&lt=60, Content-Format: link (40), 3 bytes")
    answer = Response(0x84, diagnostic="no such object")
    assert response_text(answer) == "4.04 Not Found (no such object)"
    assert response_text(Response(0x45, content_format=CF.TEXT)) == "2.05 Content, text (0)"


def test_nodes_inline_and_as_tables() -> None:
    model = default_registry()
    instance = ObjectInstance(
        0,
        [
            SingleResource(0, STR, "ACME"),
            MultipleResource.of(11, INT, {0: 0, 1: 5}),
            SingleResource(9, INT, 80),
        ],
    )
    assert (
        node_inline(Path(3, 0), instance)
        == "/3/0/0 = 'ACME', /3/0/9 = 80, /3/0/11/0 = 0, /3/0/11/1 = 5"
    )
    many = ObjectInstance(
        0,
        [SingleResource(i, INT, i) for i in (9, 10, 20, 21)]
        + [SingleResource(i, STR, "x") for i in (0, 1, 2, 3)],
    )
    assert node_inline(Path(3, 0), many).endswith(", … (8 values)")
    assert node_inline(Path(3, 0, 11), MultipleResource.of(11, INT, {})) == "/3/0/11 (empty)"
    assert node_inline(Path(3, 0, 11, 1), ResourceInstance(1, INT, 5)) == "/3/0/11/1 = 5"
    console = Console(width=120, no_color=True, record=True)
    console.print(node_table(Path(3), ObjectNode(3, [instance]), model, title="Device"))
    console.print(composite_table({Path(3, 0, 9): SingleResource(9, INT, 80)}, model))
    console.print(composite_table({Path(42, 0, 1): SingleResource(1, INT, 1)}, model))
    console.print(node_table(Path(3, 0, 11), MultipleResource.of(11, INT, {0: 1})))
    groups = [TimestampedNodes(None, {Path(3, 0, 9): SingleResource(9, INT, 1)})]
    console.print(timestamped_table(groups, title="Send"))
    text = console.export_text()
    assert re.search(r"/3/0/11/1 +│ Error Code \[1\] +│ 5", text)
    assert re.search(r"/3/0/9 +│ Battery Level +│ 80", text)
    assert re.search(r"/42/0/1 +│ +│ 1", text)
    assert re.search(r"- +│ /3/0/9 +│ 1", text)
