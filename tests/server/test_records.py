"""Observation records, identities, errors, response typing and events of the server core."""

from __future__ import annotations

import doctest
import logging

import pytest

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat
from lwm2m.errors import BadRequest, Lwm2mError
from lwm2m.model import Path, ResourceType, SingleResource
from lwm2m.model.registry import default_registry
from lwm2m.operations.requests import (
    CancelObservation,
    CancelObserveComposite,
    Delete,
    Observe,
    ObserveComposite,
    Read,
)
from lwm2m.operations.responses import Response
from lwm2m.server import errors as server_errors
from lwm2m.server import observation as observation_module
from lwm2m.server import security as security_module
from lwm2m.server.errors import (
    ClientSleeping,
    ErrorResponse,
    InvalidResponse,
    PeerSleeping,
    RequestFailed,
    RequestTimeout,
)
from lwm2m.server.observation import Observation
from lwm2m.server.requests import (
    SUCCESS_CODES,
    check_response,
    decode_client_response,
    operation_name,
)
from lwm2m.server.security import (
    IdentityKind,
    PeerIdentity,
    SecurityInfo,
    check_endpoint_identity,
)

MODEL = default_registry()


@pytest.mark.parametrize("module", [observation_module, security_module])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


# -- observations -------------------------------------------------------------------------------


def test_single_observation_record() -> None:
    obs = Observation.from_request(b"\x01\x02", "r1", Observe(Path(3, 0, 9), ContentFormat.TLV), 5)
    assert (obs.token, obs.registration_id, obs.path, obs.composite) == (
        b"\x01\x02",
        "r1",
        Path(3, 0, 9),
        False,
    )
    assert obs.accept is ContentFormat.TLV
    assert obs.created_at == 5
    assert obs.request() == Observe(Path(3, 0, 9), ContentFormat.TLV)
    assert obs.cancel_request() == CancelObservation(Path(3, 0, 9), ContentFormat.TLV)
    assert "0102" in repr(obs)
    assert "/3/0/9" in repr(obs)


def test_composite_observation_record() -> None:
    request = ObserveComposite(
        (Path(3, 0, 9), Path(3, 0, 0)), ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR
    )
    obs = Observation.from_request(b"\xaa", "r1", request, 0)
    assert obs.composite
    assert obs.paths == (Path(3, 0, 9), Path(3, 0, 0))
    assert obs.path == Path(3, 0, 9)
    assert obs.content_format is ContentFormat.SENML_JSON
    assert obs.request() == request
    assert obs.cancel_request() == CancelObserveComposite(
        request.paths, ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR
    )
    assert "composite" in repr(obs)


def test_observation_needs_consistent_paths() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Observation(b"t", "r", (), False, None, 0)
    with pytest.raises(ValueError, match="exactly one"):
        Observation(b"t", "r", (Path(3), Path(4)), False, None, 0)


# -- identities ---------------------------------------------------------------------------------


def test_peer_identities() -> None:
    assert PeerIdentity.psk(b"dev") == PeerIdentity(IdentityKind.PSK, "dev")
    assert PeerIdentity.psk(b"\xff\x00").value == "ff00"
    assert PeerIdentity.psk("text").name == "text"
    assert PeerIdentity(IdentityKind.X509, "CN").name == "CN"
    assert PeerIdentity(IdentityKind.OSCORE, "01").name is None
    assert str(PeerIdentity.psk("dev")) == "psk:dev"


def test_endpoint_must_match_the_authenticated_identity(caplog: pytest.LogCaptureFixture) -> None:
    check_endpoint_identity("dev", None)  # plain UDP
    check_endpoint_identity("dev", PeerIdentity.psk("dev"))
    rpk = PeerIdentity(IdentityKind.RPK, "ab")
    check_endpoint_identity("dev", rpk, SecurityInfo("dev", rpk))
    with (
        caplog.at_level(logging.WARNING, logger="lwm2m.server.security"),
        pytest.raises(BadRequest) as info,
    ):
        check_endpoint_identity("dev", PeerIdentity.psk("other"))
    assert info.value.code == 0x80
    assert "'dev'" in caplog.text
    assert "psk:other" in caplog.text
    with pytest.raises(BadRequest):
        check_endpoint_identity("dev", rpk)  # an RPK needs the lookup table
    with pytest.raises(BadRequest):
        check_endpoint_identity("dev", rpk, SecurityInfo("dev", PeerIdentity.psk("dev")))
    with pytest.raises(BadRequest):
        check_endpoint_identity("dev", rpk, SecurityInfo("other", rpk))


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", server_errors.__all__)
def test_every_server_error_is_a_request_failed(name: str) -> None:
    cls = getattr(server_errors, name)
    assert issubclass(cls, RequestFailed)
    assert issubclass(cls, Lwm2mError)


def test_error_texts_and_codes() -> None:
    error = ErrorResponse(0x84, "no such object", endpoint="dev")
    assert error.code == 0x84
    assert error.dotted_code == "4.04"
    assert str(error) == "dev: error response 4.04 (no such object)"
    assert ErrorResponse(0xA0).dotted_code == "5.00"
    timeout = RequestTimeout(endpoint="dev")
    assert timeout.code is None
    assert timeout.dotted_code is None
    assert str(timeout) == "dev: RequestTimeout"
    assert PeerSleeping is ClientSleeping
    assert RequestFailed("x", code=0x80).code == 0x80


# -- response typing ----------------------------------------------------------------------------


def test_success_codes_cover_every_downlink_operation() -> None:
    from lwm2m.operations import requests

    downlink = set(requests.DownlinkRequest.__args__)  # type: ignore[attr-defined]
    assert set(SUCCESS_CODES) == downlink


def test_check_and_decode_responses() -> None:
    read = Read(Path(3, 0, 9))
    ok = Response(Code.CONTENT, content=SingleResource(9, ResourceType.INTEGER, 5))
    assert check_response(read, ok) is ok
    with pytest.raises(ErrorResponse) as info:
        check_response(read, Response(Code.NOT_FOUND, diagnostic="gone"), endpoint="dev")
    assert (info.value.code, info.value.diagnostic, info.value.endpoint) == (0x84, "gone", "dev")
    message = Message(Code.CONTENT, b"42", content_format=0)
    decoded = decode_client_response(read, message, MODEL)
    assert decoded.content == SingleResource(9, ResourceType.INTEGER, 42)
    with pytest.raises(InvalidResponse, match="Read /3/0/9"):
        decode_client_response(read, Message(Code.CONTENT, b"x", content_format=0), MODEL)
    with pytest.raises(ErrorResponse):
        decode_client_response(read, Message(Code.METHOD_NOT_ALLOWED), MODEL)
    assert operation_name(Delete(Path(3, 1))) == "Delete /3/1"
    from lwm2m.operations.requests import BootstrapFinish

    assert operation_name(BootstrapFinish()) == "BootstrapFinish"
