"""The SERAM 2.0 Local Agent core (lwm2m.secure.seram, LwM2M-SCS-6): the spec's examples in both
directions, the messages against the OpenAPI schemas, every malformed answer with its message,
the state machine's order, the status of failed SE RAM Commands, the bounds, and a seeded fuzz
run of the four decoders (8,000 bodies each, ``LWM2M_FUZZ_ITERATIONS`` when set).

The examples and schemas are transcribed from GitHub GlobalPlatform/SERAM (MIT):
``spec/examples/*.json`` and ``spec/gpseram.yaml`` (commit dad5a25, ``components``)."""

from __future__ import annotations

import copy
import doctest
import json
import os
import random
from typing import Any

import jsonschema_rs
import pytest

import lwm2m.secure.seram as seram_module
from lwm2m.secure.admin import ISD_AID, AdminScriptRefused, TargetNotSelectable
from lwm2m.secure.interfaces import (
    ComponentInfo,
    ComponentNotFound,
    ComponentType,
    ComponentUnavailable,
    Identifier,
    OperationNotSupported,
    SecureComponentError,
)
from lwm2m.secure.pcsc import PcscComponent
from lwm2m.secure.ram import CommandScript, ResponseScript
from lwm2m.secure.seram import (
    MAX_DELAY_MS,
    MAX_MESSAGE_SIZE,
    MAX_RAM_COMMANDS,
    HandshakeCommand,
    HandshakeResponse,
    LocalAgent,
    LocalAgentStatus,
    NotificationCommand,
    Order,
    OrderAction,
    RamStartCommand,
    RamStopCommand,
    Report,
    SecureElement,
    SeRamCommand,
    SeramError,
    SeRamResponse,
    SeramStatusError,
    SeType,
    secure_element_for,
)
from pcsc.test_admin_scripts import GET_CPLC, Card

# -- the spec's examples (spec/examples/*.json) ---------------------------------------------------

EXAMPLE_SE = {"seType": "eSE", "seId": "89001012012341234012345678901224", "seExtraInfo": "SAM"}
HANDSHAKE_REQUEST = {
    "secureElements": [EXAMPLE_SE],
    "supportedTransportProtocols": ["HTTPS"],
    "supportedDataFormats": ["application/json"],
    "supportedVersion": ["2.0.0"],  # sic: the schema's member is supportedVersions
}
HANDSHAKE_RESPONSE = {
    "chosenTransportProtocol": "HTTPS",
    "chosenDataFormat": "application/json",
    "chosenVersion": "2.0.0",
}
POLLING_REQUEST = {"localAgentStatus": {"localAgentStatusEnum": "POLLING", "executeRamCommands": 0}}
SE_RAM_RESPONSE_REQUEST = {
    "localAgentStatus": {"localAgentStatusEnum": "PROCESSED", "executedSeRamCommands": 2},
    "ramResponses": [
        {"ramResponseType": "seRamResponse", "listOfRAPDU": ["9000", "9000"]},
        {"ramResponseType": "seRamResponse", "listOfRAPDU": ["9000"]},
    ],
}
BAD_EXAMPLE_CAPDU = "00A40400OA0001020304050607080900A"  # sic: a letter O, odd length
SCHEMA_EXAMPLE_CAPDU = "00A4040008A00000015100000000"  # seRamCommand.listOfCAPDU's example
START_RESPONSE = {"ramCommands": [{"ramCommandType": "startCommand"}]}
STOP_RESPONSE = {"ramCommands": [{"ramCommandType": "stopCommand"}]}
NOTIFICATION_RESPONSE = {
    "ramCommands": [
        {"ramCommandType": "notificationCommand", "deviceAppNotification": "step1/action2/OK"}
    ]
}
SE_RAM_COMMAND_RESPONSE = {
    "delay": 100,
    "chosenSecureElement": EXAMPLE_SE,
    "ramCommands": [{"ramCommandType": "seRamCommand", "listOfCAPDU": [BAD_EXAMPLE_CAPDU]}],
}
ALL_COMMANDS_RESPONSE = {
    "delay": 0,
    "chosenSecureElement": EXAMPLE_SE,
    "ramCommands": [
        {"ramCommandType": "startCommand"},
        {"ramCommandType": "seRamCommand", "listOfCAPDU": [BAD_EXAMPLE_CAPDU]},
        {"ramCommandType": "notificationCommand", "deviceAppNotification": "step1/action2/OK"},
        {"ramCommandType": "stopCommand"},
    ],
}
WITHOUT_COMMAND_RESPONSE = {"delay": 500}  # the yaml's withoutCommandOrder example

# -- the schemas (spec/gpseram.yaml components.schemas), as JSON Schema --------------------------
# Stricter than the yaml in two ways, to catch a misspelt member in what this code produces:
# additionalProperties false, and the apdu pattern anchored.

SE_TYPES = ["eSE", "iSE", "uicc", "euicc", "ieuicc", "undefined"]
SECURE_ELEMENT = {
    "type": "object",
    "required": ["seType", "seId"],
    "additionalProperties": False,
    "properties": {
        "seType": {"type": "string", "enum": SE_TYPES},
        "seId": {"type": "string"},
        "seExtraInfo": {"type": "string"},
    },
}
APDU = {"type": "string", "pattern": "^([0-9A-F]{2})*$"}
HANDSHAKE_COMMAND_SCHEMA = {
    "type": "object",
    "required": ["secureElements"],
    "additionalProperties": False,
    "properties": {
        "secureElements": {"type": "array", "items": SECURE_ELEMENT},
        "supportedTransportProtocols": {
            "type": "array",
            "items": {"type": "string", "enum": ["HTTPS"]},
        },
        "supportedDataFormats": {
            "type": "array",
            "items": {"type": "string", "enum": ["application/json"]},
        },
        "supportedVersions": {"type": "array", "items": {"type": "string"}},
    },
}
HANDSHAKE_RESPONSE_SCHEMA = {
    "type": "object",
    "required": ["chosenTransportProtocol", "chosenVersion"],
    "additionalProperties": False,
    "properties": {
        "chosenTransportProtocol": {"type": "string", "enum": ["HTTPS"]},
        "chosenDataFormat": {"type": "string", "enum": ["application/json"]},
        "chosenVersion": {"type": "string"},
    },
}
REPORT_SCHEMA = {
    "type": "object",
    "required": ["localAgentStatus"],
    "additionalProperties": False,
    "properties": {
        "localAgentStatus": {
            "type": "object",
            "required": ["localAgentStatusEnum"],
            "additionalProperties": False,
            "properties": {
                "localAgentStatusEnum": {
                    "type": "string",
                    "enum": [
                        "PROCESSED",
                        "POLLING",
                        "UNAVAILABLE_SE",
                        "UNKNOWN_FAILURE",
                        "UNGRANTED_ACCESS",
                    ],
                },
                "executedSeRamCommands": {"type": "integer"},
                "errorMsg": {"type": "string"},
            },
        },
        "ramResponses": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["ramResponseType", "listOfRAPDU"],
                "additionalProperties": False,
                "properties": {
                    "ramResponseType": {"type": "string", "enum": ["seRamResponse"]},
                    "listOfRAPDU": {"type": "array", "items": APDU},
                },
            },
        },
    },
}
COMMAND_TYPES = ["ramStartCommand", "seRamCommand", "notificationCommand", "ramStopCommand"]
ORDER_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "delay": {"type": "integer"},
        "chosenSecureElement": SECURE_ELEMENT,
        "ramCommands": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["ramCommandType"],
                "additionalProperties": False,
                "properties": {
                    "ramCommandType": {"type": "string", "enum": COMMAND_TYPES},
                    "listOfCAPDU": {"type": "array", "items": APDU},
                    "deviceAppNotification": {"type": "string"},
                },
            },
        },
    },
}


def conforms(schema: dict[str, Any], body: bytes) -> None:
    errors = [
        str(error) for error in jsonschema_rs.validator_for(schema).iter_errors(json.loads(body))
    ]
    assert not errors, errors


def dumps(value: object) -> bytes:
    return json.dumps(value).encode()


UICC = SecureElement(SeType.UICC, "8988211000000000003")
ANSWER = HandshakeResponse().encode()


def started(agent: LocalAgent | None = None, **orders: Any) -> LocalAgent:
    """An agent after the handshake and a Start Command, ready to report."""
    agent = agent or LocalAgent([UICC], session_id="s")
    agent.handshake_request()
    agent.receive_handshake(200, ANSWER)
    agent.next_report()
    agent.receive_order(
        200, dumps({"delay": 0, "ramCommands": [{"ramCommandType": "ramStartCommand"}]})
    )
    return agent


def report_of(agent: LocalAgent) -> Report:
    return Report.decode(agent.next_report()[1])


def se_ram(*capdus: bytes, stop: bool = False, **extra: Any) -> bytes:
    commands: list[dict[str, Any]] = [
        {"ramCommandType": "seRamCommand", "listOfCAPDU": [c.hex().upper() for c in capdus]}
    ]
    if stop:
        commands.append({"ramCommandType": "ramStopCommand"})
    return dumps({"delay": 0, "ramCommands": commands, **extra})


# -- examples, both directions --------------------------------------------------------------------


def test_the_handshake_examples() -> None:
    command = HandshakeCommand.decode(dumps(HANDSHAKE_REQUEST))
    assert command.secure_elements == (
        SecureElement(SeType.ESE, "89001012012341234012345678901224", "SAM"),
    )
    # the example's "supportedVersion" is not the schema's member: the default applies
    assert command.supported_versions == ("2.0.0",)
    produced = json.loads(command.encode())
    assert produced == {
        "secureElements": [EXAMPLE_SE],
        "supportedTransportProtocols": ["HTTPS"],
        "supportedDataFormats": ["application/json"],
        "supportedVersions": ["2.0.0"],
    }
    conforms(HANDSHAKE_COMMAND_SCHEMA, command.encode())
    response = HandshakeResponse.decode(dumps(HANDSHAKE_RESPONSE))
    assert response == HandshakeResponse("HTTPS", "application/json", "2.0.0")
    assert json.loads(response.encode()) == HANDSHAKE_RESPONSE
    conforms(HANDSHAKE_RESPONSE_SCHEMA, response.encode())


def test_the_report_examples() -> None:
    polling = Report.decode(dumps(POLLING_REQUEST))  # "executeRamCommands" (sic) is ignored
    assert polling == Report(LocalAgentStatus.POLLING, 0)
    assert json.loads(polling.encode()) == {
        "localAgentStatus": {"localAgentStatusEnum": "POLLING", "executedSeRamCommands": 0}
    }
    report = Report.decode(dumps(SE_RAM_RESPONSE_REQUEST))
    assert report == Report(
        LocalAgentStatus.PROCESSED,
        2,
        (SeRamResponse((b"\x90\x00", b"\x90\x00")), SeRamResponse((b"\x90\x00",))),
    )
    assert json.loads(report.encode()) == SE_RAM_RESPONSE_REQUEST
    for message in (polling, report):
        conforms(REPORT_SCHEMA, message.encode())


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (START_RESPONSE, Order(None, None, (RamStartCommand(),))),
        (STOP_RESPONSE, Order(None, None, (RamStopCommand(),))),
        (NOTIFICATION_RESPONSE, Order(None, None, (NotificationCommand("step1/action2/OK"),))),
        (WITHOUT_COMMAND_RESPONSE, Order(500)),
    ],
)
def test_the_order_examples(example: dict[str, Any], expected: Order) -> None:
    order = Order.decode(dumps(example))
    assert order == expected
    conforms(ORDER_SCHEMA, order.encode())
    # produced with the discriminator's names (ramStartCommand, not the examples' startCommand)
    produced = json.dumps(example).replace('"startCommand"', '"ramStartCommand"')
    assert json.loads(order.encode()) == json.loads(
        produced.replace('"stopCommand"', '"ramStopCommand"')
    )


@pytest.mark.parametrize(
    ("example", "index"), [(SE_RAM_COMMAND_RESPONSE, 0), (ALL_COMMANDS_RESPONSE, 1)]
)
def test_the_examples_c_apdu_is_not_hexadecimal(example: dict[str, Any], index: int) -> None:
    with pytest.raises(SeramError) as caught:
        Order.decode(dumps(example))
    assert str(caught.value) == (
        f"Order.ramCommands[{index}].listOfCAPDU[0] is not hexadecimal (an even number of 0-9 A-F)"
    )
    fixed = copy.deepcopy(example)
    fixed["ramCommands"][index]["listOfCAPDU"] = [SCHEMA_EXAMPLE_CAPDU]
    order = Order.decode(dumps(fixed))
    assert order.chosen_secure_element == SecureElement(
        SeType.ESE, "89001012012341234012345678901224", "SAM"
    )
    assert order.ram_commands is not None
    assert order.ram_commands[index] == SeRamCommand((bytes.fromhex(SCHEMA_EXAMPLE_CAPDU),))
    assert Order.decode(order.encode()) == order
    conforms(ORDER_SCHEMA, order.encode())


def test_the_module_docstring() -> None:
    result = doctest.testmod(seram_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# -- every message shape --------------------------------------------------------------------------


def test_every_se_type_and_the_optional_extra_info() -> None:
    for se_type in SeType:
        for extra in (None, "", "SAM,X"):
            element = SecureElement(se_type, "id-1", extra)
            assert SecureElement.from_json(element.to_json(), "x") == element
            conforms(SECURE_ELEMENT, dumps(element.to_json()))
    assert [t.value for t in SeType] == SE_TYPES


def test_every_report_status_with_responses_and_error() -> None:
    for status in LocalAgentStatus:
        report = Report(
            status, 1, (SeRamResponse((bytes.fromhex("6A82"), b"\x01\x90\x00")),), "why"
        )
        assert Report.decode(report.encode()) == report
        conforms(REPORT_SCHEMA, report.encode())
    empty = Report.decode(dumps({"localAgentStatus": {"localAgentStatusEnum": "PROCESSED"},
                                 "ramResponses": [{"ramResponseType": "seRamResponse",
                                                   "listOfRAPDU": ["", "9000"]}]}))  # fmt: skip
    assert empty.ram_responses == (SeRamResponse((b"", b"\x90\x00")),)
    assert "ramResponses" not in json.loads(Report(LocalAgentStatus.POLLING).encode())


def test_an_order_with_every_command_round_trips() -> None:
    order = Order(
        0,
        UICC,
        (
            RamStartCommand(),
            SeRamCommand((GET_CPLC, bytes.fromhex("80CA006600"))),
            SeRamCommand(()),
            NotificationCommand(""),
            NotificationCommand("étape 1 ✓"),
            RamStopCommand(),
        ),
    )
    assert Order.decode(order.encode()) == order
    conforms(ORDER_SCHEMA, order.encode())
    assert Order.decode(b"{}") == Order()
    assert Order.decode(b'{"unknown": [1, {"x": null}], "delay": 7}') == Order(7)  # ignored


def test_lower_case_hex_is_accepted_upper_case_produced() -> None:
    order = Order.decode(se_ram(GET_CPLC).replace(b"80CA9F7F00", b"80ca9f7f00"))
    assert order.ram_commands == (SeRamCommand((GET_CPLC,)),)
    assert b"80CA9F7F00" in order.encode()


def test_handshake_command_defaults_and_lists() -> None:
    command = HandshakeCommand.decode(dumps({"secureElements": [EXAMPLE_SE]}))
    assert command.supported_transport_protocols == ("HTTPS",)
    assert command.supported_data_formats == ("application/json",)
    assert command.supported_versions == ("2.0.0",)
    other = HandshakeCommand.decode(
        dumps({"secureElements": [EXAMPLE_SE], "supportedVersions": ["2.0.0", "2.1.0"]})
    )
    assert other.supported_versions == ("2.0.0", "2.1.0")
    assert HandshakeCommand.decode(other.encode()) == other
    assert (
        HandshakeResponse.decode(b'{"chosenTransportProtocol": "HTTPS", "chosenVersion": "2.0.0"}')
        == HandshakeResponse()
    )


def test_reprs_hide_apdu_data() -> None:
    key = bytes.fromhex("80D8000112" + "404142434445464748494A4B4C4D4E4F" * 1 + "0011")
    command = SeRamCommand((key,))
    assert "4041424344" not in repr(command)
    assert repr(command) == "SeRamCommand([80 D8 00 01])"
    response = SeRamResponse((bytes.fromhex("0102039000"), b""))
    assert repr(response) == "SeRamResponse([9000, -])"


# -- malformed answers, each with its message -----------------------------------------------------

MALFORMED_ORDERS = [
    (b"", "Order: the body is not JSON (Expecting value: line 1 column 1)"),
    (b"<html>", "Order: the body is not JSON (Expecting value: line 1 column 1)"),
    (b"\xff{}", "Order: the body is not UTF-8 (byte 0)"),
    (b"[]", "Order: a JSON object expected, not an array"),
    (b"null", "Order: a JSON object expected, not null"),
    (b'"x"', "Order: a JSON object expected, not a string"),
    (b'{"delay": 1, "delay": 2}', "Order: member 'delay' appears twice in one object"),
    (b'{"delay": NaN}', "Order: NaN is not a JSON number"),
    (b'{"delay": Infinity}', "Order: Infinity is not a JSON number"),
    (b'{"delay": "100"}', "Order.delay must be an integer, not a string"),
    (b'{"delay": 1.5}', "Order.delay must be an integer, not a number"),
    (b'{"delay": true}', "Order.delay must be an integer, not a boolean"),
    (b'{"delay": -1}', f"Order.delay is -1, outside 0..{MAX_DELAY_MS}"),
    (b'{"delay": 300001}', f"Order.delay is 300001, outside 0..{MAX_DELAY_MS}"),
    (b'{"delay": ' + b"9" * 5000 + b"}", "Order: the body is not usable JSON (Exceeds the limit"),
    (b'{"chosenSecureElement": []}', "Order.chosenSecureElement must be an object, not an array"),
    (b'{"chosenSecureElement": {"seId": "1"}}', "Order.chosenSecureElement.seType is missing"),
    (b'{"chosenSecureElement": {"seType": "uicc"}}', "Order.chosenSecureElement.seId is missing"),
    (
        b'{"chosenSecureElement": {"seType": "sim", "seId": "1"}}',
        "Order.chosenSecureElement.seType 'sim' is not one of eSE, iSE, uicc, euicc, ieuicc, "
        "undefined",
    ),
    (
        b'{"chosenSecureElement": {"seType": "uicc", "seId": ""}}',
        "Order.chosenSecureElement.seId must not be empty",
    ),
    (
        b'{"chosenSecureElement": {"seType": "uicc", "seId": 1}}',
        "Order.chosenSecureElement.seId must be a string, not a number",
    ),
    (
        b'{"chosenSecureElement": {"seType": "uicc", "seId": "1", "seExtraInfo": 2}}',
        "Order.chosenSecureElement.seExtraInfo must be a string, not a number",
    ),
    (b'{"ramCommands": {}}', "Order.ramCommands must be an array, not an object"),
    (b'{"ramCommands": []}', "Order.ramCommands must hold at least one Command"),
    (b'{"ramCommands": [1]}', "Order.ramCommands[0] must be an object, not a number"),
    (b'{"ramCommands": [{}]}', "Order.ramCommands[0].ramCommandType is missing"),
    (
        b'{"ramCommands": [{"ramCommandType": "redirectCommand"}]}',
        "Order.ramCommands[0].ramCommandType 'redirectCommand' is not ramStartCommand, "
        "seRamCommand, notificationCommand or ramStopCommand",
    ),
    (
        b'{"ramCommands": [{"ramCommandType": "seRamCommand"}]}',
        "Order.ramCommands[0].listOfCAPDU is missing",
    ),
    (
        b'{"ramCommands": [{"ramCommandType": "seRamCommand", "listOfCAPDU": "80CA9F7F00"}]}',
        "Order.ramCommands[0].listOfCAPDU must be an array, not a string",
    ),
    (
        b'{"ramCommands": [{"ramCommandType": "seRamCommand", "listOfCAPDU": [null]}]}',
        "Order.ramCommands[0].listOfCAPDU[0] must be a string, not null",
    ),
    (
        b'{"ramCommands": [{"ramCommandType": "seRamCommand", "listOfCAPDU": ["80 CA 9F 7F"]}]}',
        "Order.ramCommands[0].listOfCAPDU[0] is not hexadecimal",
    ),
    (
        b'{"ramCommands": [{"ramCommandType": "seRamCommand", "listOfCAPDU": ["80CA9F"]}]}',
        "Order.ramCommands[0].listOfCAPDU: C-APDU 1 has 3 bytes, fewer than CLA INS P1 P2",
    ),
    (
        b'{"ramCommands": [{"ramCommandType": "seRamCommand", "listOfCAPDU": [""]}]}',
        "Order.ramCommands[0].listOfCAPDU: C-APDU 1 has 0 bytes, fewer than CLA INS P1 P2",
    ),
    (
        b'{"ramCommands": [{"ramCommandType": "notificationCommand"}]}',
        "Order.ramCommands[0].deviceAppNotification is missing",
    ),
    (
        b'{"ramCommands": [{"ramCommandType": "notificationCommand", '
        b'"deviceAppNotification": ["x"]}]}',
        "Order.ramCommands[0].deviceAppNotification must be a string, not an array",
    ),
    (
        b'{"ramCommands": [{"ramCommandType": "notificationCommand", '
        b'"deviceAppNotification": "\\ud800"}]}',
        "Order.ramCommands[0].deviceAppNotification is not valid Unicode (character 0)",
    ),
    (b"[" * 100_000 + b"]" * 100_000, "Order: the JSON is nested too deeply"),
]


@pytest.mark.parametrize(("body", "message"), MALFORMED_ORDERS)
def test_malformed_orders(body: bytes, message: str) -> None:
    with pytest.raises(SeramError) as caught:
        Order.decode(body)
    assert str(caught.value).startswith(message), str(caught.value)


MALFORMED_HANDSHAKE_RESPONSES = [
    (b"{", "HandshakeResponse: the body is not JSON (Expecting property name enclosed in double"),
    (b"1", "HandshakeResponse: a JSON object expected, not a number"),
    (b'{"chosenVersion": "2.0.0"}', "HandshakeResponse.chosenTransportProtocol is missing"),
    (b'{"chosenTransportProtocol": "HTTPS"}', "HandshakeResponse.chosenVersion is missing"),
    (
        b'{"chosenTransportProtocol": "HTTPS", "chosenVersion": 2}',
        "HandshakeResponse.chosenVersion must be a string, not a number",
    ),
    (
        b'{"chosenTransportProtocol": ["HTTPS"], "chosenVersion": "2.0.0"}',
        "HandshakeResponse.chosenTransportProtocol must be a string, not an array",
    ),
    (
        b'{"chosenTransportProtocol": "HTTPS", "chosenVersion": "2.0.0", "chosenDataFormat": null}',
        "HandshakeResponse.chosenDataFormat must be a string, not null",
    ),
]


@pytest.mark.parametrize(("body", "message"), MALFORMED_HANDSHAKE_RESPONSES)
def test_malformed_handshake_responses(body: bytes, message: str) -> None:
    with pytest.raises(SeramError) as caught:
        HandshakeResponse.decode(body)
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        (
            {"chosenTransportProtocol": "HTTP"},
            "HandshakeResponse.chosenTransportProtocol 'HTTP' is not one offered (HTTPS)",
        ),
        (
            {"chosenDataFormat": "application/cbor"},
            "HandshakeResponse.chosenDataFormat 'application/cbor' is not one offered "
            "(application/json)",
        ),
        (
            {"chosenVersion": "1.0.0"},
            "HandshakeResponse.chosenVersion '1.0.0' is not one offered (2.0.0)",
        ),
    ],
)
def test_a_choice_not_offered_fails_the_handshake(choice: dict[str, str], message: str) -> None:
    agent = LocalAgent([UICC])
    agent.handshake_request()
    with pytest.raises(SeramError, match=message.replace("(", r"\(").replace(")", r"\)")):
        agent.receive_handshake(200, dumps(HANDSHAKE_RESPONSE | choice))
    assert agent.failed
    with pytest.raises(SeramError, match="the session is failed, not ready to report"):
        agent.next_report()


MALFORMED_REPORTS = [
    (b"{}", "Report.localAgentStatus is missing"),
    (b'{"localAgentStatus": 1}', "Report.localAgentStatus must be an object, not a number"),
    (b'{"localAgentStatus": {}}', "Report.localAgentStatus.localAgentStatusEnum is missing"),
    (
        b'{"localAgentStatus": {"localAgentStatusEnum": "OK"}}',
        "Report.localAgentStatus.localAgentStatusEnum 'OK' is not one of PROCESSED, POLLING, "
        "UNAVAILABLE_SE, UNKNOWN_FAILURE, UNGRANTED_ACCESS",
    ),
    (
        b'{"localAgentStatus": {"localAgentStatusEnum": "POLLING", "executedSeRamCommands": -1}}',
        "Report.localAgentStatus.executedSeRamCommands is -1, outside 0..64",
    ),
    (
        b'{"localAgentStatus": {"localAgentStatusEnum": "POLLING", "errorMsg": 3}}',
        "Report.localAgentStatus.errorMsg must be a string, not a number",
    ),
    (
        b'{"localAgentStatus": {"localAgentStatusEnum": "POLLING"}, "ramResponses": [{}]}',
        "Report.ramResponses[0].ramResponseType is missing",
    ),
    (
        b'{"localAgentStatus": {"localAgentStatusEnum": "POLLING"}, '
        b'"ramResponses": [{"ramResponseType": "x", "listOfRAPDU": []}]}',
        "Report.ramResponses[0].ramResponseType 'x' is not seRamResponse",
    ),
    (
        b'{"localAgentStatus": {"localAgentStatusEnum": "POLLING"}, '
        b'"ramResponses": [{"ramResponseType": "seRamResponse"}]}',
        "Report.ramResponses[0].listOfRAPDU is missing",
    ),
    (
        b'{"localAgentStatus": {"localAgentStatusEnum": "POLLING"}, '
        b'"ramResponses": [{"ramResponseType": "seRamResponse", "listOfRAPDU": ["9"]}]}',
        "Report.ramResponses[0].listOfRAPDU[0] is not hexadecimal",
    ),
]


@pytest.mark.parametrize(("body", "message"), MALFORMED_REPORTS)
def test_malformed_reports(body: bytes, message: str) -> None:
    with pytest.raises(SeramError) as caught:
        Report.decode(body)
    assert str(caught.value).startswith(message), str(caught.value)


MALFORMED_HANDSHAKE_COMMANDS = [
    (b"{}", "HandshakeCommand.secureElements is missing"),
    (b'{"secureElements": []}', "HandshakeCommand.secureElements must not be empty"),
    (
        b'{"secureElements": [{"seType": "eSE", "seId": "1"}], "supportedVersions": []}',
        "HandshakeCommand.supportedVersions must not be empty",
    ),
    (
        b'{"secureElements": [{"seType": "eSE", "seId": "1"}], "supportedDataFormats": [1]}',
        "HandshakeCommand.supportedDataFormats[0] must be a string, not a number",
    ),
    (
        b'{"secureElements": [' + b",".join([b'{"seType": "eSE", "seId": "1"}'] * 17) + b"]}",
        "HandshakeCommand.secureElements has 17 items, at most 16 are accepted",
    ),
]


@pytest.mark.parametrize(("body", "message"), MALFORMED_HANDSHAKE_COMMANDS)
def test_malformed_handshake_commands(body: bytes, message: str) -> None:
    with pytest.raises(SeramError) as caught:
        HandshakeCommand.decode(body)
    assert str(caught.value).startswith(message), str(caught.value)


def test_decoders_take_bytes_only() -> None:
    with pytest.raises(SeramError, match="Order: the body must be bytes, not str"):
        Order.decode("{}")  # type: ignore[arg-type]


# -- the state machine ----------------------------------------------------------------------------


def test_a_whole_session_in_order() -> None:
    agent = LocalAgent([UICC], session_id="a b/c")
    path, body = agent.handshake_request()
    assert path == "/handshake?sessionId=a%20b%2Fc"
    conforms(HANDSHAKE_COMMAND_SCHEMA, body)
    assert json.loads(body)["secureElements"] == [{"seType": "uicc", "seId": "8988211000000000003"}]
    agent.receive_handshake(200, ANSWER)
    assert agent.response == HandshakeResponse()
    path, body = agent.next_report()
    assert path == "/remoteManagement?sessionId=a%20b%2Fc"
    assert Report.decode(body) == Report(LocalAgentStatus.POLLING, 0)
    # a void Order: the default delay (1 s), then POLLING again
    assert agent.receive_order(200, b"{}") == OrderAction(1.0, 0, (), False)
    assert report_of(agent) == Report(LocalAgentStatus.POLLING)
    start = dumps({"delay": 250, "ramCommands": [{"ramCommandType": "ramStartCommand"}]})
    assert agent.receive_order(200, start) == OrderAction(0.25, 0, (), False)
    assert report_of(agent) == Report(LocalAgentStatus.PROCESSED, 0)  # a command was executed
    action = agent.receive_order(200, se_ram(GET_CPLC, bytes.fromhex("80CA006600")))
    assert action == OrderAction(0.0, 1, (), False)
    with pytest.raises(SeramError, match="next_report: the session is executing an Order"):
        agent.next_report()
    calls: list[tuple[bytes, ...]] = []

    def run(capdus: tuple[bytes, ...]) -> ResponseScript:
        calls.append(capdus)
        return ResponseScript(2, (b"\x01\x90\x00", b"\x6a\x88"))

    agent.execute(run)
    assert calls == [(GET_CPLC, bytes.fromhex("80CA006600"))]
    report = report_of(agent)
    assert report == Report(
        LocalAgentStatus.PROCESSED, 1, (SeRamResponse((b"\x01\x90\x00", b"\x6a\x88")),)
    )
    conforms(REPORT_SCHEMA, report.encode())
    notify = dumps({"ramCommands": [
        {"ramCommandType": "notificationCommand", "deviceAppNotification": "n1"},
        {"ramCommandType": "notificationCommand", "deviceAppNotification": "n2"},
    ]})  # fmt: skip
    assert agent.receive_order(200, notify) == OrderAction(1.0, 0, ("n1", "n2"), False)
    assert report_of(agent) == Report(LocalAgentStatus.PROCESSED, 0)
    assert agent.receive_order(200, dumps(STOP_RESPONSE)) == OrderAction(1.0, 0, (), True)
    assert agent.done
    assert (agent.rounds, agent.se_ram_commands, agent.rapdus) == (5, 1, 2)
    with pytest.raises(SeramError, match="the session is ended, not ready to report"):
        agent.next_report()


def test_start_se_ram_and_stop_in_one_order() -> None:
    agent = LocalAgent([UICC])
    agent.handshake_request()
    agent.receive_handshake(200, ANSWER)
    agent.next_report()
    order = dumps({"ramCommands": [
        {"ramCommandType": "startCommand"},
        {"ramCommandType": "seRamCommand", "listOfCAPDU": ["80CA9F7F00"]},
        {"ramCommandType": "stopCommand"},
    ]})  # fmt: skip
    action = agent.receive_order(200, order)
    assert action.done
    assert action.se_ram_commands == 1
    agent.execute(lambda capdus: ResponseScript(1, (b"\x90\x00",)))
    assert agent.done  # the Stop Command: its response is discarded, no Report follows
    assert agent.se_ram_commands == 1


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ([{"ramCommandType": "seRamCommand", "listOfCAPDU": ["80CA9F7F00"]}],
         "Order.ramCommands[0]: a seRamCommand before the Start Command"),
        ([{"ramCommandType": "notificationCommand", "deviceAppNotification": "x"}],
         "Order.ramCommands[0]: a notificationCommand before the Start Command"),
        ([{"ramCommandType": "ramStartCommand"}, {"ramCommandType": "ramStartCommand"}],
         "Order.ramCommands[1]: a second Start Command"),
        ([{"ramCommandType": "ramStopCommand"}, {"ramCommandType": "ramStartCommand"}],
         "Order.ramCommands[0]: Commands follow the Stop Command"),
    ],
)  # fmt: skip
def test_commands_out_of_order_fail_the_session(commands: list[Any], message: str) -> None:
    agent = LocalAgent([UICC])
    agent.handshake_request()
    agent.receive_handshake(200, ANSWER)
    agent.next_report()
    with pytest.raises(SeramError) as caught:
        agent.receive_order(200, dumps({"ramCommands": commands}))
    assert str(caught.value) == message
    assert agent.failed


def test_a_second_start_in_a_later_order_and_commands_after_stop() -> None:
    agent = started()
    agent.next_report()
    with pytest.raises(SeramError, match=r"Order.ramCommands\[0\]: a second Start Command"):
        agent.receive_order(200, dumps(START_RESPONSE))
    agent = started()
    agent.next_report()
    with pytest.raises(SeramError, match="Commands follow the Stop Command"):
        agent.receive_order(200, dumps({"ramCommands": [
            {"ramCommandType": "stopCommand"},
            {"ramCommandType": "seRamCommand", "listOfCAPDU": ["80CA9F7F00"]},
        ]}))  # fmt: skip


def test_stop_before_start_ends_the_session() -> None:
    agent = LocalAgent([UICC])
    agent.handshake_request()
    agent.receive_handshake(200, ANSWER)
    agent.next_report()
    assert agent.receive_order(200, dumps(STOP_RESPONSE)).done
    assert agent.done


def test_calls_out_of_order_are_refused() -> None:
    agent = LocalAgent([UICC])
    with pytest.raises(SeramError, match="receive_handshake: the session is handshake, not"):
        agent.receive_handshake(200, ANSWER)
    with pytest.raises(SeramError, match="next_report: the session is handshake"):
        agent.next_report()
    agent.handshake_request()
    with pytest.raises(SeramError, match="handshake_request: the session is awaiting"):
        agent.handshake_request()
    agent.receive_handshake(200, ANSWER)
    with pytest.raises(SeramError, match="receive_order: the session is ready to report"):
        agent.receive_order(200, b"{}")
    with pytest.raises(SeramError, match="execute: the session is ready to report"):
        agent.execute(lambda capdus: ResponseScript(0, ()))


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "Handshake: HTTP 404, the Remote Agent does not know the session id"),
        (406, "Handshake: HTTP 406, the Remote Agent cannot fulfil the Local Agent's proposal"),
        (500, "Handshake: HTTP 500, unknown server error"),
        (204, "Handshake: HTTP 204, an unexpected status"),
        (302, "Handshake: HTTP 302, an unexpected status"),
    ],
)
def test_handshake_http_errors(status: int, message: str) -> None:
    agent = LocalAgent([UICC])
    agent.handshake_request()
    with pytest.raises(SeramStatusError) as caught:
        agent.receive_handshake(status, ANSWER)
    assert (str(caught.value), caught.value.status) == (message, status)
    assert agent.failed


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "Order: HTTP 404, the Remote Agent does not know the session id"),
        (500, "Order: HTTP 500, unknown server error"),
        (406, "Order: HTTP 406, an unexpected status"),  # not one of /remoteManagement's
        (204, "Order: HTTP 204, an unexpected status"),
    ],
)
def test_order_http_errors(status: int, message: str) -> None:
    agent = started()
    agent.next_report()
    with pytest.raises(SeramStatusError) as caught:
        agent.receive_order(status, b"{}")
    assert (str(caught.value), caught.value.status) == (message, status)
    assert agent.failed


# -- the Secure Element chosen --------------------------------------------------------------------

ESE = SecureElement(SeType.ESE, "0102030405060708")


def run_ok(capdus: tuple[bytes, ...]) -> ResponseScript:
    return ResponseScript(len(capdus), tuple(b"\x90\x00" for _ in capdus))


def test_with_several_secure_elements_one_must_be_chosen() -> None:
    agent = started(LocalAgent([UICC, ESE]))
    agent.next_report()
    agent.receive_order(200, se_ram(GET_CPLC))
    agent.execute(run_ok)
    assert report_of(agent) == Report(
        LocalAgentStatus.UNAVAILABLE_SE, 0, (),
        "no chosenSecureElement: this Local Agent offered several",
    )  # fmt: skip
    agent.receive_order(200, se_ram(GET_CPLC, chosenSecureElement=ESE.to_json()))
    agent.execute(run_ok)
    assert report_of(agent).status is LocalAgentStatus.PROCESSED
    assert agent.chosen_secure_element == ESE
    agent.receive_order(200, se_ram(GET_CPLC))  # the choice persists
    agent.execute(run_ok)
    assert report_of(agent).status is LocalAgentStatus.PROCESSED


def test_a_secure_element_not_offered_is_unavailable() -> None:
    agent = started()
    agent.next_report()
    calls: list[object] = []
    chosen = {"seType": "uicc", "seId": "other", "seExtraInfo": "SAM"}
    agent.receive_order(200, se_ram(GET_CPLC, chosenSecureElement=chosen))
    agent.execute(lambda capdus: calls.append(capdus) or run_ok(capdus))  # type: ignore[func-returns-value]
    assert calls == []
    assert report_of(agent) == Report(
        LocalAgentStatus.UNAVAILABLE_SE, 0, (), "chosenSecureElement uicc 'other' was not offered"
    )
    # seExtraInfo does not matter, seType and seId do
    offered = {**UICC.to_json(), "seExtraInfo": "anything"}
    agent.receive_order(200, se_ram(GET_CPLC, chosenSecureElement=offered))
    agent.execute(run_ok)
    assert report_of(agent).status is LocalAgentStatus.PROCESSED


# -- the status of failed SE RAM Commands --------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (AdminScriptRefused("command 1 (00 B0 00 00): no"), LocalAgentStatus.UNGRANTED_ACCESS,
         "refused by the Local Agent's relay policy: command 1 (00 B0 00 00): no"),
        (ComponentUnavailable("reader 0x1234 gone"), LocalAgentStatus.UNAVAILABLE_SE,
         "the Secure Element is unavailable (ComponentUnavailable)"),
        (ComponentNotFound("x"), LocalAgentStatus.UNAVAILABLE_SE,
         "the Secure Element is unavailable (ComponentNotFound)"),
        (TargetNotSelectable("SELECT A000000151000000: the card answered 6A82"),
         LocalAgentStatus.UNKNOWN_FAILURE,
         "the target security domain cannot be selected: SELECT A000000151000000: the card "
         "answered 6A82"),
        (OperationNotSupported("data 0011223344"), LocalAgentStatus.UNKNOWN_FAILURE,
         "the Secure Element command failed (OperationNotSupported)"),
        (SecureComponentError("x"), LocalAgentStatus.UNKNOWN_FAILURE,
         "the Secure Element command failed (SecureComponentError)"),
    ],
)  # fmt: skip
def test_error_statuses(
    error: SecureComponentError, status: LocalAgentStatus, message: str
) -> None:
    agent = started()
    agent.next_report()
    order = dumps({"ramCommands": [
        {"ramCommandType": "seRamCommand", "listOfCAPDU": ["80CA9F7F00"]},
        {"ramCommandType": "seRamCommand", "listOfCAPDU": ["80CA006600"]},
        {"ramCommandType": "notificationCommand", "deviceAppNotification": "after"},
        {"ramCommandType": "seRamCommand", "listOfCAPDU": ["80CA00E000"]},
    ]})  # fmt: skip
    action = agent.receive_order(200, order)
    assert action.notifications == ("after",)
    calls: list[tuple[bytes, ...]] = []

    def run(capdus: tuple[bytes, ...]) -> ResponseScript:
        calls.append(capdus)
        if len(calls) == 2:
            raise error
        return ResponseScript(1, (b"\x90\x00",))

    agent.execute(run)
    assert len(calls) == 2  # the third SE RAM Command is skipped after the error
    report = report_of(agent)
    assert report == Report(status, 1, (SeRamResponse((b"\x90\x00",)),), message)
    conforms(REPORT_SCHEMA, report.encode())
    assert agent.errors == [message]
    # the session goes on: the Remote Agent decides
    agent.receive_order(200, se_ram(GET_CPLC))
    agent.execute(run)
    assert report_of(agent).status is LocalAgentStatus.PROCESSED


def test_other_exceptions_fail_the_session() -> None:
    agent = started()
    agent.next_report()
    agent.receive_order(200, se_ram(GET_CPLC))

    def run(capdus: tuple[bytes, ...]) -> ResponseScript:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        agent.execute(run)
    assert agent.failed


def test_an_empty_list_of_c_apdus_is_answered_without_the_card() -> None:
    agent = started()
    agent.next_report()
    agent.receive_order(200, se_ram())
    agent.execute(lambda capdus: pytest.fail("the card was called"))
    assert report_of(agent) == Report(LocalAgentStatus.PROCESSED, 1, (SeRamResponse(()),))


def test_through_the_relay_on_the_in_memory_card() -> None:
    """The real relay: GET DATA CPLC answered, READ BINARY refused before reaching the card, and
    a PUT KEY's key data never in the errorMsg."""
    card = Card()
    component = PcscComponent(card.transmit)

    def run(capdus: tuple[bytes, ...]) -> ResponseScript:
        return component.run_admin_script(CommandScript(capdus), ISD_AID)

    agent = started(LocalAgent([secure_element_for(component.info())]))
    agent.next_report()
    agent.receive_order(200, se_ram(GET_CPLC))
    agent.execute(run)
    report = report_of(agent)
    assert report.status is LocalAgentStatus.PROCESSED
    (rapdu,) = report.ram_responses[0].rapdus
    assert rapdu[:2] == b"\x9f\x7f"
    assert rapdu[-2:] == b"\x90\x00"
    sent = len(card.sent)
    key = bytes.fromhex("00D8000112" + "5A" * 16 + "01")  # class 00: not a GP command here
    agent.receive_order(200, se_ram(bytes.fromhex("00B0000000"), key))
    agent.execute(run)
    report = report_of(agent)
    assert len(card.sent) == sent  # nothing reached the card
    assert report.status is LocalAgentStatus.UNGRANTED_ACCESS
    assert report.executed_se_ram_commands == 0
    assert report.error_msg is not None
    assert report.error_msg.startswith(
        "refused by the Local Agent's relay policy: command 1 (00 B0 00 00): only GlobalPlatform"
    )
    agent.receive_order(200, se_ram(key))
    agent.execute(run)
    report = report_of(agent)
    assert report.error_msg is not None
    assert "5A5A" not in report.error_msg.upper().replace(" ", "")
    component.end_admin_session()


# -- the Secure Element offered -------------------------------------------------------------------


def info(kind: ComponentType, *ids: tuple[str, str], serial: str = "") -> ComponentInfo:
    return ComponentInfo(
        kind, True, "pcsc", serial_number=serial,
        identifiers=tuple(Identifier(scheme, value) for scheme, value in ids),
    )  # fmt: skip


CPLC_IDS = (
    ("cplc-ic-fabricator", "4790"),
    ("cplc-ic-type", "5167"),
    ("cplc-ic-serial", "00112233"),
)


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        (info(ComponentType.UICC, ("cin", "C1"), ("iccid", "8988"), ("eid", "E1")),
         SecureElement(SeType.UICC, "8988")),
        (info(ComponentType.UICC, ("cin", "C1")), SecureElement(SeType.UICC, "C1")),
        (info(ComponentType.EUICC, ("iccid", "8988"), ("eid", "89049")),
         SecureElement(SeType.EUICC, "89049")),
        (info(ComponentType.EUICC, ("iccid", "8988")), SecureElement(SeType.EUICC, "8988")),
        (info(ComponentType.ESE, ("iccid", "8988"), ("cin", "0102")),
         SecureElement(SeType.ESE, "0102")),
        (info(ComponentType.ESE, *CPLC_IDS), SecureElement(SeType.ESE, "4790516700112233")),
        (info(ComponentType.ESE, ("cplc-ic-serial", "00112233"), serial="S-1"),
         SecureElement(SeType.ESE, "S-1")),
    ],
)  # fmt: skip
def test_secure_element_for(component: ComponentInfo, expected: SecureElement) -> None:
    assert secure_element_for(component) == expected


def test_secure_element_for_refuses_what_is_no_secure_element() -> None:
    for kind in (ComponentType.SOFTWARE, ComponentType.TEE, ComponentType.HSM):
        with pytest.raises(SeramError, match="component is not a Secure Element SERAM manages"):
            secure_element_for(info(kind, ("iccid", "1")))
    with pytest.raises(SeramError, match="the eSE has no identifier to offer as seId"):
        secure_element_for(info(ComponentType.ESE))
    assert secure_element_for(info(ComponentType.UICC, ("iccid", "1")), extra_info="SAM") == (
        SecureElement(SeType.UICC, "1", "SAM")
    )


def test_the_in_memory_card_is_offered_by_its_iccid() -> None:
    component = PcscComponent(Card().transmit)
    assert secure_element_for(component.info()) == SecureElement(SeType.UICC, "8988211000000000003")


# -- bounds ---------------------------------------------------------------------------------------


def test_bounds() -> None:
    too_many = dumps(
        {"ramCommands": [{"ramCommandType": "ramStartCommand"}] * (MAX_RAM_COMMANDS + 1)}
    )
    with pytest.raises(SeramError, match=f"Order.ramCommands has {MAX_RAM_COMMANDS + 1} items"):
        Order.decode(too_many)
    capdus = ["80CA9F7F00"] * 256
    with pytest.raises(SeramError, match=r"Order.ramCommands\[0\].listOfCAPDU has 256 items"):
        Order.decode(
            dumps({"ramCommands": [{"ramCommandType": "seRamCommand", "listOfCAPDU": capdus}]})
        )
    big = "80E2000000FFFF" + "00" * 65_535  # 65 542 bytes: over the 64 KiB script limit
    with pytest.raises(
        SeramError, match=r"listOfCAPDU: Command Scripting Template of \d+ bytes exceeds"
    ):
        Order.decode(
            dumps({"ramCommands": [{"ramCommandType": "seRamCommand", "listOfCAPDU": [big]}]})
        )
    with pytest.raises(SeramError, match=f"Order: {MAX_MESSAGE_SIZE + 1} bytes exceed"):
        Order.decode(b" " * (MAX_MESSAGE_SIZE + 1))
    long_text = "x" * 1025
    with pytest.raises(SeramError, match="deviceAppNotification has 1025 characters, at most 1024"):
        Order.decode(dumps({"ramCommands": [
            {"ramCommandType": "notificationCommand", "deviceAppNotification": long_text}
        ]}))  # fmt: skip
    with pytest.raises(SeramError, match="seId has 257 characters, at most 256"):
        Order.decode(dumps({"chosenSecureElement": {"seType": "eSE", "seId": "1" * 257}}))
    with pytest.raises(SeramError, match="a Handshake Command offers at least one"):
        LocalAgent([])
    with pytest.raises(SeramError, match="at most 16 Secure Elements"):
        LocalAgent([UICC] * 17)


def test_the_rounds_are_bounded() -> None:
    agent = started(LocalAgent([UICC], max_rounds=3))
    agent.next_report()
    agent.receive_order(200, b'{"delay": 0}')
    agent.next_report()
    agent.receive_order(200, b'{"delay": 0}')
    with pytest.raises(SeramError, match="no Stop Command within 3 rounds"):
        agent.next_report()
    assert agent.failed
    assert agent.rounds == 3


def test_the_agents_parameters_are_checked() -> None:
    with pytest.raises(SeramError, match="default_delay_ms is -1"):
        LocalAgent([UICC], default_delay_ms=-1)
    with pytest.raises(SeramError, match="max_rounds is 0"):
        LocalAgent([UICC], max_rounds=0)
    with pytest.raises(SeramError, match="sessionId must not be empty"):
        LocalAgent([UICC], session_id="")
    first, second = LocalAgent([UICC]), LocalAgent([UICC])
    assert first.session_id != second.session_id  # random per session
    assert LocalAgent([UICC], default_delay_ms=0).default_delay_ms == 0


# -- fuzz -----------------------------------------------------------------------------------------

#: Bodies per fuzz run (each to the four decoders); ``make fuzz`` sets more.
ITERATIONS = int(os.environ.get("LWM2M_FUZZ_ITERATIONS") or 8_000)

DECODERS = (HandshakeCommand.decode, HandshakeResponse.decode, Order.decode, Report.decode)

_ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, 2**64, "", "x", "9000", "ZZ", "\u00e9", [], {}, [1], {"a": 1},
    "uicc", "POLLING", "seRamCommand", "ramStopCommand", ["80CA9F7F00"], MAX_DELAY_MS + 1,
]  # fmt: skip
_TOKENS = [b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"null", b"NaN", b"-Infinity",
           b"1e999", b"\\ud800", b"\xff", b"\x00", b'"a":', b"[" * 50, b"0" * 30]  # fmt: skip


def _random_response(rng: random.Random) -> SeRamResponse:
    return SeRamResponse(tuple(rng.randbytes(rng.randint(0, 6)) for _ in range(rng.randint(0, 3))))


def _random_message(rng: random.Random) -> Any:
    kind = rng.randrange(5)
    if kind == 0:
        return copy.deepcopy(rng.choice([HANDSHAKE_REQUEST, {"secureElements": [EXAMPLE_SE]}]))
    if kind == 1:
        return dict(HANDSHAKE_RESPONSE)
    if kind == 2:
        return json.loads(
            Report(
                rng.choice(list(LocalAgentStatus)),
                rng.randint(0, 3),
                tuple(_random_response(rng) for _ in range(rng.randint(0, 3))),
                rng.choice([None, "", "why"]),
            ).encode()
        )  # fmt: skip
    commands: list[dict[str, Any]] = []
    for _ in range(rng.randint(0, 4)):
        choice = rng.randrange(4)
        if choice == 0:
            commands.append({"ramCommandType": rng.choice(["ramStartCommand", "startCommand"])})
        elif choice == 1:
            commands.append(
                {
                    "ramCommandType": "seRamCommand",
                    "listOfCAPDU": [
                        rng.randbytes(rng.randint(4, 12)).hex() for _ in range(rng.randint(0, 3))
                    ],
                }
            )
        elif choice == 2:
            commands.append(
                {
                    "ramCommandType": "notificationCommand",
                    "deviceAppNotification": rng.choice(["", "step1", "é✓"]),
                }
            )
        else:
            commands.append({"ramCommandType": rng.choice(["ramStopCommand", "stopCommand"])})
    order: dict[str, Any] = {}
    if rng.random() < 0.6:
        order["delay"] = rng.choice([0, 100, 500, MAX_DELAY_MS])
    if rng.random() < 0.4:
        order["chosenSecureElement"] = dict(EXAMPLE_SE)
    if commands or rng.random() < 0.2:
        order["ramCommands"] = commands
    return order  # fmt: skip


def _odd(rng: random.Random) -> Any:
    return copy.deepcopy(rng.choice(_ODD_VALUES))


def _mutate_value(rng: random.Random, value: Any) -> Any:
    """Replace, delete or add one member somewhere in ``value``."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        action = rng.randrange(3)
        if action == 0:
            del value[key]
        elif action == 1:
            value[key] = _odd(rng)
        else:
            value[key] = _mutate_value(rng, value[key])
        return value
    if isinstance(value, list) and value and rng.random() < 0.7:
        index = rng.randrange(len(value))
        if rng.random() < 0.5:
            value[index] = _odd(rng)
        else:
            value[index] = _mutate_value(rng, value[index])
        return value
    if isinstance(value, dict) and rng.random() < 0.5:
        value[rng.choice(["delay", "seId", "ramCommands", "localAgentStatus", "zz"])] = rng.choice(
            _ODD_VALUES
        )
        return value
    return _odd(rng)


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randint(0, len(buf))
        choice = rng.randrange(4)
        if choice == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif choice == 1:
            del buf[pos:]
        elif choice == 2:
            buf[pos:pos] = rng.choice(_TOKENS)
        elif buf:
            del buf[pos : pos + rng.randint(1, 8)]
    return bytes(buf)


def _fuzz_body(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 40))
    if kind == 1:
        return b"".join(rng.choice(_TOKENS) for _ in range(rng.randint(0, 12)))
    message = _random_message(rng)
    if kind == 2:
        return dumps(message)
    if kind == 3:
        for _ in range(rng.randint(1, 3)):
            message = _mutate_value(rng, message)
        return dumps(message)
    return _mutate_bytes(rng, dumps(message))


@pytest.mark.fuzz
def test_fuzz_decoders_raise_only_seram_error() -> None:
    rng = random.Random(0x5E4A)
    decoded = dict.fromkeys(DECODERS, 0)
    refused = dict.fromkeys(DECODERS, 0)
    for _ in range(ITERATIONS):
        body = _fuzz_body(rng)
        for decode in DECODERS:
            try:
                message = decode(body)
            except SeramError:
                refused[decode] += 1
                continue
            decoded[decode] += 1
            assert decode(message.encode()) == message, body  # what was accepted re-encodes
    for decode in DECODERS:  # both the success paths and the refusals are reached
        assert decoded[decode] > ITERATIONS // 40, decoded
        assert refused[decode] > ITERATIONS // 4, refused
