"""Every operation mapped to CoAP and back (LwM2M-TS-Transport 1.1 §6), both directions."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from lwm2m.coap.message import Message, decode
from lwm2m.coap.numbers import Code
from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Attributes, Link
from lwm2m.errors import (
    BadRequest,
    CodecError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    RequestError,
    UnsupportedContentFormat,
)
from lwm2m.model import ObjectInstance, Path, ResourceType, SingleResource
from lwm2m.model.registry import default_registry
from lwm2m.operations.coap_mapping import (
    decode_downlink,
    decode_response,
    decode_uplink,
    encode_request,
    encode_response,
    parse_query,
)
from lwm2m.operations.requests import (
    BootstrapDelete,
    BootstrapDiscover,
    BootstrapFinish,
    BootstrapRead,
    BootstrapRequest,
    BootstrapWrite,
    CancelObservation,
    CancelObserveComposite,
    Create,
    Delete,
    Deregister,
    Discover,
    Execute,
    Observe,
    ObserveComposite,
    Read,
    ReadComposite,
    Register,
    Send,
    Update,
    Write,
    WriteAttributes,
    WriteComposite,
)
from lwm2m.operations.responses import Response, content_response

MODEL = default_registry()
INT = ResourceType.INTEGER
LIFETIME = SingleResource(1, INT, 300)
SERVER_0 = ObjectInstance(0, [SingleResource(0, INT, 101), LIFETIME])


def wire(message: Message) -> Message:
    """Through the wire format and back, so nothing relies on object identity."""
    return decode(message.encode())


DOWNLINK = [
    Read(Path(3, 0, 1)),
    Read(Path(3, 0), ContentFormat.SENML_JSON),
    Discover(Path(3)),
    Observe(Path(3, 0, 9), ContentFormat.TLV),
    CancelObservation(Path(3, 0, 9)),
    Write(Path(1, 0, 1), LIFETIME, True, ContentFormat.TLV),
    Write(Path(1, 0), SERVER_0, False, ContentFormat.SENML_CBOR),
    Write(Path(1, 0), SERVER_0, True, ContentFormat.TLV),
    Execute(Path(3, 0, 4)),
    Execute(Path(1, 0, 8), "0='U'"),
    Create(Path(1), (SERVER_0,), None, ContentFormat.TLV),
    Delete(Path(1, 0)),
    ReadComposite((Path(3, 0, 9), Path(1, 0, 1)), ContentFormat.SENML_JSON, None),
    ObserveComposite((Path(3, 0, 9),), ContentFormat.SENML_CBOR, ContentFormat.SENML_CBOR),
    CancelObserveComposite((Path(3, 0, 9),), ContentFormat.SENML_CBOR, None),
    WriteComposite({Path(1, 0, 1): LIFETIME}, ContentFormat.SENML_CBOR),
]

BOOTSTRAP = [
    BootstrapWrite(Path(1, 0), SERVER_0, ContentFormat.TLV),
    BootstrapRead(Path(1, 0), ContentFormat.TLV),
    BootstrapDiscover(Path()),
    BootstrapDiscover(Path(1)),
    BootstrapDelete(Path()),
    BootstrapDelete(Path(1, 0)),
    BootstrapFinish(),
]


@pytest.mark.parametrize("request_", DOWNLINK, ids=lambda r: type(r).__name__)
def test_downlink_round_trip(request_) -> None:
    assert decode_downlink(wire(encode_request(request_, MODEL)), MODEL) == request_


@pytest.mark.parametrize("request_", BOOTSTRAP, ids=lambda r: type(r).__name__)
def test_bootstrap_round_trip(request_) -> None:
    message = wire(encode_request(request_, MODEL))
    assert decode_downlink(message, MODEL, from_bootstrap_server=True) == request_


def test_write_attributes_round_trip() -> None:
    attributes = Attributes.from_query(["pmin=10", "pmax=60", "gt=30.5"])
    request = WriteAttributes(Path(3, 0, 9), attributes)
    message = wire(encode_request(request, MODEL))
    assert message.code == Code.PUT
    assert not message.payload
    assert decode_downlink(message, MODEL) == request


def test_create_without_instance_id_lets_the_client_choose() -> None:
    request = Create(Path(1), (), (SingleResource(0, INT, 102), LIFETIME), ContentFormat.TLV)
    assert decode_downlink(wire(encode_request(request, MODEL)), MODEL) == request


def test_methods_per_transport_table() -> None:
    # LwM2M-TS-Transport §6.x: the CoAP method of each operation.
    expected = {
        Read: Code.GET,
        Discover: Code.GET,
        Observe: Code.GET,
        CancelObservation: Code.GET,
        Execute: Code.POST,
        Create: Code.POST,
        Delete: Code.DELETE,
        ReadComposite: Code.FETCH,
        ObserveComposite: Code.FETCH,
        CancelObserveComposite: Code.FETCH,
        WriteComposite: Code.IPATCH,
    }
    for request in DOWNLINK:
        if type(request) in expected:
            assert encode_request(request, MODEL).code == expected[type(request)], request
    discover = encode_request(Discover(Path(3)), MODEL)
    assert discover.accept == ContentFormat.LINK
    assert encode_request(Observe(Path(3)), MODEL).observe == 0
    assert encode_request(CancelObservation(Path(3)), MODEL).observe == 1


UPLINK = [
    BootstrapRequest("urn:imei:123", ContentFormat.SENML_CBOR),
    BootstrapRequest("dev"),
    Register(
        "dev",
        300,
        "1.1",
        "U",
        True,
        None,
        (Link("/", {"rt": '"oma.lwm2m"', "ct": "110"}), Link("/1/0"), Link("/3/0")),
    ),
    Register("dev", sms_number="4412345", additional={"custom": "x"}),
    Update("/rd/5a3f", 300, None, None, None),
    Update("/rd/5a3f", None, "U", None, (Link("/1/0"), Link("/3/0"))),
    Deregister("/rd/5a3f"),
    Send(
        (
            TimestampedNodes(1_700_000_000, {Path(3, 0, 9): SingleResource(9, INT, 87)}),
            TimestampedNodes(1_700_000_010, {Path(3, 0, 9): SingleResource(9, INT, 86)}),
        ),
        ContentFormat.SENML_CBOR,
    ),
]


@pytest.mark.parametrize("request_", UPLINK, ids=lambda r: type(r).__name__)
def test_uplink_round_trip(request_) -> None:
    assert decode_uplink(wire(encode_request(request_, MODEL)), MODEL) == request_


def test_register_query_matches_the_spec_example() -> None:
    # LwM2M-TS-Transport §6.2.1: POST /rd?ep=…&lt=…&lwm2m=1.1&b=U&Q with link-format objects.
    request = Register("epname", 60, "1.1", "U", True, None, (Link("/1/0"), Link("/3/0")))
    message = encode_request(request, MODEL)
    assert message.uri_path == ("rd",)
    assert message.uri_query == ("ep=epname", "lt=60", "lwm2m=1.1", "b=U", "Q")
    assert message.content_format == ContentFormat.LINK
    assert message.payload == b"</1/0>,</3/0>"


@pytest.mark.parametrize(
    ("message", "error", "text"),
    [
        (Message(Code.POST, uri_path="rd", uri_query=["lt=60"]), BadRequest, "endpoint"),
        (Message(Code.POST, uri_path="rd", uri_query=["ep=a", "ep=b"]), BadRequest, "twice"),
        (Message(Code.POST, uri_path="rd", uri_query=["ep=a", "lt=x"]), BadRequest, "lt=x"),
        (Message(Code.GET, uri_path="rd"), MethodNotAllowed, "POST"),
        (Message(Code.PUT, uri_path="rd/1"), MethodNotAllowed, "POST and DELETE"),
        (Message(Code.POST, uri_path="bs"), BadRequest, "endpoint"),
        (Message(Code.GET, uri_path="bs"), MethodNotAllowed, "POST"),
        (Message(Code.GET, uri_path="dp"), MethodNotAllowed, "POST"),
        (Message(Code.POST, uri_path="dp"), BadRequest, "Content-Format"),
        (Message(Code.POST, b"x", uri_path="dp", content_format=110), BadRequest, "Send"),
        (Message(Code.POST, uri_path="nope"), NotFound, "no such"),
        (Message(Code.POST), NotFound, "no such"),
        (
            Message(Code.POST, b"<", uri_path="rd", uri_query=["ep=a"], content_format=0),
            UnsupportedContentFormat,
            "link-format",
        ),
        (
            Message(Code.POST, uri_path="bs", uri_query=["ep=a", "pct=99999"]),
            UnsupportedContentFormat,
            "99999",
        ),
    ],
)
def test_bad_uplink(message: Message, error: type[RequestError], text: str) -> None:
    with pytest.raises(error, match=text):
        decode_uplink(message, MODEL)


@pytest.mark.parametrize(
    ("message", "error", "text"),
    [
        (Message(Code.GET, uri_path="3/x"), NotFound, "not an LwM2M path"),
        (Message(Code.GET, uri_path="3/0", accept=9999), NotAcceptable, "9999"),
        (Message(Code.PUT, b"\x00", uri_path="3/0/1"), BadRequest, "Content-Format"),
        (Message(Code.PUT, b"\xff", uri_path="1/0/1", content_format=11542), BadRequest, "payload"),
        (Message(Code.PUT, b"1", uri_path="", content_format=0), MethodNotAllowed, "root"),
        (Message(Code.POST, b"\xff", uri_path="3/0/4"), BadRequest, "UTF-8"),
        (Message(Code.POST, uri_path="3/0/4/0"), MethodNotAllowed, "POST"),
        (Message(Code.DELETE, uri_path="3"), MethodNotAllowed, "instance"),
        (Message(Code.FETCH, b"", uri_path="3"), MethodNotAllowed, "root"),
        (Message(Code.PATCH, uri_path="3"), MethodNotAllowed, "not an LwM2M"),
        (Message(Code.PUT, uri_path="3/0/9", uri_query=["pmin=x"]), BadRequest, "attributes"),
    ],
)
def test_bad_downlink(message: Message, error: type[RequestError], text: str) -> None:
    with pytest.raises(error, match=text):
        decode_downlink(message, MODEL)


def test_bad_bootstrap_downlink() -> None:
    with pytest.raises(MethodNotAllowed):
        decode_downlink(Message(Code.POST, uri_path="1/0/8"), MODEL, from_bootstrap_server=True)
    with pytest.raises(BadRequest, match="addresses"):
        decode_downlink(Message(Code.DELETE, uri_path="1/0/1"), MODEL, from_bootstrap_server=True)
    with pytest.raises(BadRequest, match="without payload"):
        decode_downlink(Message(Code.PUT, uri_path="1/0"), MODEL, from_bootstrap_server=True)


def test_parse_query() -> None:
    assert parse_query(["ep=x", "Q", "b="]) == {"ep": "x", "Q": None, "b": ""}
    with pytest.raises(BadRequest, match="empty"):
        parse_query(["=x"])


@pytest.mark.parametrize(
    ("request_", "response"),
    [
        (Read(Path(1, 0, 1)), Response(0x45, content=LIFETIME, content_format=ContentFormat.TLV)),
        (
            Read(Path(1, 0)),
            Response(0x45, content=SERVER_0, content_format=ContentFormat.SENML_JSON),
        ),
        (
            Observe(Path(1, 0, 1)),
            Response(0x45, content=LIFETIME, content_format=ContentFormat.TLV),
        ),
        (
            Discover(Path(3)),
            Response(0x45, links=(Link("/3"), Link("/3/0")), content_format=ContentFormat.LINK),
        ),
        (
            ReadComposite((Path(1, 0, 1),)),
            Response(
                0x45, composite={Path(1, 0, 1): LIFETIME}, content_format=ContentFormat.SENML_CBOR
            ),
        ),
        (Create(Path(1), (SERVER_0,)), Response(0x41, location=("1", "0"))),
        (
            Register("dev"),
            Response(0x41, location=("rd", "5a3f"), links=(), content_format=ContentFormat.LINK),
        ),
        (Write(Path(1, 0, 1), LIFETIME), Response(0x44)),
        (Delete(Path(1, 0)), Response(0x84, diagnostic="no such instance")),
    ],
    ids=lambda x: type(x).__name__,
)
def test_response_round_trip(request_, response: Response) -> None:
    message = wire(encode_response(request_, response, MODEL))
    assert decode_response(request_, message, MODEL) == response


def test_response_properties() -> None:
    assert Response(0x45).is_success
    assert Response(0x84).dotted_code == "4.04"
    assert not Response(0x84).is_success


def test_response_constructor_freezes_its_containers() -> None:
    """The hand-written constructor keeps the dataclass's positional order and copies the
    containers it is given (a caller's list or dict cannot change the response later)."""
    composite = {Path(1, 0, 1): LIFETIME}
    location = ["rd", "x"]
    response = Response(0x45, None, composite, [Link("/3")], location, ContentFormat.LINK, "d")
    composite.clear()
    location.append("y")
    assert response.composite == {Path(1, 0, 1): LIFETIME}
    assert response.links == (Link("/3"),)
    assert response.location == ("rd", "x")
    assert (response.content_format, response.diagnostic) == (ContentFormat.LINK, "d")
    with pytest.raises(dataclasses.FrozenInstanceError):
        response.code = 0x44  # type: ignore[misc]
    assert Response(0x44) == Response(code=0x44, diagnostic="")
    assert hash(Response(0x44)) == hash(Response(0x44))


def test_content_response_equals_the_constructor() -> None:
    fast = content_response(0x45, LIFETIME, ContentFormat.TLV)
    slow = Response(0x45, content=LIFETIME, content_format=ContentFormat.TLV)
    assert type(fast) is Response
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    assert copy.deepcopy(fast) == slow
    assert pickle.loads(pickle.dumps(fast)) == slow
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.code = 0x44  # type: ignore[misc]


@pytest.mark.parametrize(
    "request_",
    [
        Read(Path(3, 0), ContentFormat.SENML_CBOR),
        Read(Path(3, 0, 1)),
        Read(Path()),
        Read(Path(3000, 65534, 1023, 1024), ContentFormat.TLV),
        Read(Path(3, 0), 9999),  # type: ignore[arg-type]  # no ready-made Accept option
    ],
)
def test_read_request_equals_the_keyword_construction(request_: Read) -> None:
    """The Read fast path of encode_request builds the options list itself: the same message
    as the Message keywords build, and a list of its own per message."""
    segments = [str(i) for i in request_.path.ids]
    expected = Message(Code.GET, uri_path=segments, accept=request_.accept)
    message = encode_request(request_, MODEL)
    assert message.encode() == expected.encode()
    assert message.options == expected.options
    assert message.code == Code.GET
    assert encode_request(request_, MODEL).options is not message.options


def test_a_response_without_content_format_is_in_the_accepted_format() -> None:
    """RFC 7252 §5.10.4: a 2.05 answer to an Accept is in that format, so a response that
    leaves the option out (lwm2m-node-lib's client) decodes with the request's Accept; a
    payload that is not in that format is still an error naming it."""
    bare = Message(Code.CONTENT, b"300")
    for request in (
        Read(Path(1, 0, 1), ContentFormat.TEXT),
        Observe(Path(1, 0, 1), ContentFormat.TEXT),
        BootstrapRead(Path(1, 0, 1), ContentFormat.TEXT),
    ):
        response = decode_response(request, bare, MODEL)
        assert response.content == LIFETIME
        assert response.content_format is ContentFormat.TEXT
    with pytest.raises(CodecError):
        decode_response(Read(Path(1, 0, 1), ContentFormat.TLV), bare, MODEL)
    senml = Message(Code.CONTENT, b'[{"n":"/1/0/1","v":300}]')
    for composite in (
        ReadComposite((Path(1, 0, 1),), accept=ContentFormat.SENML_JSON),
        ObserveComposite((Path(1, 0, 1),), accept=ContentFormat.SENML_JSON),
    ):
        response = decode_response(composite, senml, MODEL)
        assert response.composite == {Path(1, 0, 1): LIFETIME}
        assert response.content_format is ContentFormat.SENML_JSON
    with pytest.raises(CodecError, match="composite response without Content-Format"):
        decode_response(ReadComposite((Path(1, 0, 1),)), senml, MODEL)


def test_decode_response_rejects_unknown_content_formats() -> None:
    message = Message(Code.CONTENT, b"\x00", content_format=9999)
    with pytest.raises(CodecError, match="unsupported content format 9999"):
        decode_response(Read(Path(3, 0)), message, MODEL)
    message = Message(Code.CONTENT, b"\x00")
    with pytest.raises(CodecError, match="response without Content-Format"):
        decode_response(Read(Path(3, 0)), message, MODEL)
    text = Message(Code.CONTENT, b"300", content_format=0)  # TEXT is 0: a falsy member
    response = decode_response(Read(Path(1, 0, 1)), text, MODEL)
    assert response.content == LIFETIME
    assert response.content_format is ContentFormat.TEXT


# -- historical notifications (several times in one SenML pack) ---------------------------------


def _pack(records: list[dict[str, object]]) -> bytes:
    import json

    return json.dumps(records).encode()


def test_a_notification_with_several_times_keeps_them_all_and_the_newest_as_content() -> None:
    """Core §7.4 (time-stamped SenML records; a client stores notifications while the server is
    unreachable): every group is in ``history``, the newest values in ``content``; a record
    without time is "now" (RFC 8428 §4.5.3) and so the newest."""
    observe = Observe(Path(3, 0, 9), ContentFormat.SENML_JSON)
    records = [
        {"bn": "/3/0/9", "v": 10},  # no time: now
        {"bt": 1_700_000_000, "v": 50},
        {"t": 60, "v": 40},  # the base time goes on: 1_700_000_060
    ]
    message = Message(Code.CONTENT, _pack(records), content_format=110, observe=5)
    response = decode_response(observe, message, MODEL)
    assert response.content == SingleResource(9, INT, 10)
    assert response.history is not None
    assert [g.timestamp for g in response.history] == [None, 1_700_000_000, 1_700_000_060]
    # a Read answered with several times is not a notification: still an error
    with pytest.raises(CodecError, match="different times"):
        decode_response(Read(Path(3, 0, 9), ContentFormat.SENML_JSON), message, MODEL)


def test_an_observe_composite_notification_with_history() -> None:
    paths = (Path(3, 0, 9), Path(3, 0, 7))
    observe = ObserveComposite(paths, ContentFormat.SENML_JSON, ContentFormat.SENML_JSON)
    records = [
        {"n": "/3/0/9", "bt": 1_700_000_000, "v": 50},
        {"n": "/3/0/9", "bt": 1_700_000_100, "v": 45},
        {"n": "/3/0/7/0", "bt": 1_700_000_100, "v": 3800},
    ]
    message = Message(Code.CONTENT, _pack(records), content_format=110, observe=6)
    response = decode_response(observe, message, MODEL)
    assert response.composite is not None
    assert response.composite[Path(3, 0, 9)] == SingleResource(9, INT, 45)
    assert response.history is not None
    assert len(response.history) == 2
    # a relative time cannot be placed without the reception time: an error, as before
    relative = _pack([{"n": "/3/0/9", "t": -60, "v": 1}, {"n": "/3/0/9", "v": 2}])
    with pytest.raises(CodecError, match="relative time"):
        decode_response(observe, Message(Code.CONTENT, relative, content_format=110), MODEL)
