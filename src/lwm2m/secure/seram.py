"""A GlobalPlatform SERAM 2.0 *Local Agent* (LwM2M-SCS-6): the messages, their strict JSON
codec and the agent's state machine, sans I/O.

Sources (GitHub ``GlobalPlatform/SERAM``, MIT): the OpenAPI description ``spec/gpseram.yaml``
("GP SERAM" 2.0.0: paths ``/handshake`` and ``/remoteManagement``, ``components/schemas`` and
``components/examples``), ``spec/examples/*.json``, ``doc/GPSERAM__Overview.md`` (sections
"Protocol Steps details", "Local Agent Behaviour") and ``doc/GPSERAM__HTTP_REST_Binding.md``
(sections "HTTP REST Endpoints", "HTTP Polling", "Transmission Errors").

The device's *Local Agent* is an HTTP client; a *Remote Agent* (the HTTP server under
``…/gp/seram``) manages the Secure Element through it. One management session, named by its
``sessionId`` (a query parameter of every request)::

    POST /handshake?sessionId=…         Handshake Command  -> Handshake Response
    POST /remoteManagement?sessionId=…  Report (POLLING)   -> Order {ramStartCommand}
    POST /remoteManagement?sessionId=…  Report (PROCESSED) -> Order {seRamCommand [C-APDU…]}
    POST /remoteManagement?sessionId=…  Report {seRamResponse [R-APDU…]} -> Order {ramStopCommand}

:class:`LocalAgent` produces the requests (:meth:`~LocalAgent.handshake_request`,
:meth:`~LocalAgent.next_report`) and digests the answers (:meth:`~LocalAgent.receive_handshake`,
:meth:`~LocalAgent.receive_order`); the caller does the HTTP (:mod:`lwm2m.io.seram_agent`) and
the pause the Order asks for. An Order's SE RAM Commands run through a callable
(:meth:`~LocalAgent.execute`), normally the script relay of :mod:`lwm2m.secure.admin`
(``component.run_admin_script(CommandScript(capdus), target)``), so its policy
(:func:`~lwm2m.secure.admin.check_script`: only security-domain commands and a SELECT of the
target) applies to SERAM exactly as to the /33000 scripts. A refused list reaches the card not at
all and is reported ``UNGRANTED_ACCESS``; a card gone ``UNAVAILABLE_SE``; any other component
error ``UNKNOWN_FAILURE``; each with an ``errorMsg`` that never holds APDU data.

Every decoder (:meth:`HandshakeResponse.decode`, :meth:`Order.decode`, and, for a Remote Agent
or a test, :meth:`HandshakeCommand.decode` and :meth:`Report.decode`) raises only
:class:`SeramError`, whose message names the member (``Order.ramCommands[1].listOfCAPDU[0]``).
Members the schema does not define are ignored (the schemas do not forbid them); the defined
ones are checked for type, value and size.

>>> agent = LocalAgent([SecureElement(SeType.UICC, "8988211000000000003")], session_id="s1")
>>> agent.handshake_request()[0]
'/handshake?sessionId=s1'
>>> agent.receive_handshake(200, b'{"chosenTransportProtocol": "HTTPS", '
...     b'"chosenDataFormat": "application/json", "chosenVersion": "2.0.0"}').chosen_version
'2.0.0'
>>> agent.next_report()[1]
b'{"localAgentStatus":{"localAgentStatusEnum":"POLLING","executedSeRamCommands":0}}'
>>> agent.receive_order(200, b'{"delay": 0, "ramCommands": [{"ramCommandType": "startCommand"}]}')
OrderAction(delay=0.0, se_ram_commands=0, notifications=(), done=False)
"""

# What was checked in the spec files ([V]) and what stays open ([U]); commits of
# GlobalPlatform/SERAM as stored by the project's search tool: spec/gpseram.yaml dad5a25 and
# 20412ac, doc/GPSERAM__HTTP_REST_Binding.md 529d59b, doc/GPSERAM__Overview.md b635d58/20412ac,
# doc/plantuml/*.puml, spec/examples/*.json, spec/parts/*.yaml.
#
# - [V] Paths /handshake and /remoteManagement under {protocol}://{domain}/gp/seram, both POST,
#   both with the required query parameter sessionId (a string; example a UUID), JSON bodies.
# - [V] Status codes: /handshake 200, 404 "sessionId not found", 406 "HTTP Server could not
#   fulfill the client proposal", 500 "Unknown server error"; /remoteManagement 200, 404
#   "Session id not found", 500. Anything else is refused here as unexpected.
# - [V] ramHandshakeCommand: secureElements (required; array of secureElement {seType, seId
#   required; seExtraInfo "a comma separated list of features"}), supportedTransportProtocols
#   (enum HTTPS; absent = HTTPS), supportedDataFormats (enum application/json; absent = it),
#   supportedVersions (absent = 2.0.0). seType enum eSE, iSE, uicc, euicc, ieuicc, undefined
#   (undefined only in the newer yaml).
# - [V] ramHandshakeResponse: chosenTransportProtocol, chosenDataFormat, chosenVersion, each "one
#   supported by the Local Agent". Discrepancy: its `required` list names chosenDataProtocol,
#   a property that does not exist; chosenTransportProtocol and chosenVersion are required here,
#   chosenDataFormat is optional (application/json when absent, as in the Handshake Command).
# - [V] remoteManagementReport: localAgentStatus (required) {localAgentStatusEnum (required;
#   PROCESSED, POLLING, UNAVAILABLE_SE, UNKNOWN_FAILURE, UNGRANTED_ACCESS), executedSeRamCommands
#   (integer, "zero during polling", "the number of SE RAM command executed" — counted in SE RAM
#   Commands, not APDUs: the yaml example reports 2 with two seRamResponses), errorMsg}, and
#   ramResponses [{ramResponseType: seRamResponse, listOfRAPDU: [hex]}]. Discrepancies: the
#   older yaml requires "executedRamCommands", the polling example sends "executeRamCommands";
#   both are typos of executedSeRamCommands, which is always sent here (and optional, default 0,
#   on input).
# - [V] remoteManagementOrder: all optional: delay (integer ms, "default: 100", 0 = none),
#   chosenSecureElement, ramCommands (the list "SHALL contain at least one Command", handled one
#   by one). ramCommandType discriminator: ramStartCommand, seRamCommand {listOfCAPDU},
#   notificationCommand {deviceAppNotification, a UTF-8 string}, ramStopCommand. Discrepancy:
#   every example (yaml and spec/examples) writes "startCommand" and "stopCommand"; both
#   spellings are accepted, the discriminator's are produced.
# - [V] apdu: "hexadecimal encoded APDU", pattern ([0-9A-F]{2})*: produced in upper case;
#   lower case is accepted. The examples' C-APDU "00A40400OA0001020304050607080900A" is not
#   hexadecimal (a letter O, odd length) and is refused.
# - [V] Local Agent behaviour: POLLING for the first report and after an Order without commands,
#   PROCESSED when at least one command was executed, one of the three error statuses on an error
#   (with errorMsg, "SHOULD be provided"); Start first, Stop last, Notifications need no Response
#   (state machine GP_SERAM__Messages_State_Machine.puml: wait_for_start -> wait_for_command ->
#   do_seram -> wait_for_command; Stop -> do_finalize). After the Stop Command the agent "SHALL
#   NOT send any new Report Message and SHALL discard any remaining Response". On an error
#   transmitting a C-APDU the agent "shall discard all the remaining C-APDU and shall not include
#   any R-APDU … for the faulty transmission"; error status words are valid R-APDUs.
# - [V] HTTP polling: the pause between an answer and the next request is the Order's delay;
#   "if the Remote Agent doesn't specify any delay, the Local Agent SHALL make a pause of 1
#   second" (binding doc) against the yaml's "default: 100". The binding document is the one
#   about polling: the default here is 1000 ms (DEFAULT_DELAY_MS), configurable.
# - [U] Choices where the documents are silent: which status a refused list gets (UNGRANTED_ACCESS
#   is the closest: the Local Agent does not grant access to those commands); an SE RAM Command
#   after an error in the same Order is skipped (its predecessor failed) while Notifications and
#   Stop after it are still handled; an SE RAM Command before the Start Command, a second Start,
#   anything after Stop in an Order, or an empty ramCommands list end the session (SeramError);
#   a Stop Command before Start is accepted; the chosen Secure Element persists across Orders and
#   one that was not offered fails the Order's SE RAM Commands with UNAVAILABLE_SE; with one
#   Secure Element offered, no choice is needed.
# - [U] Deviation kept on purpose: the relay stops a list at the first error status word (the
#   rule of lwm2m.secure.ram.run_script), where SERAM would send every C-APDU. The listOfRAPDU is
#   then shorter than the listOfCAPDU (no empty strings for commands never sent): the Remote
#   Agent sees where the list stopped. Sending C-APDUs one by one would lose the relay's guarantee
#   that a refused list reaches the card not at all.

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, Final
from urllib.parse import quote

from lwm2m.secure.admin import AdminScriptRefused, TargetNotSelectable
from lwm2m.secure.interfaces import (
    ComponentInfo,
    ComponentType,
    ComponentUnavailable,
    SecureComponentError,
)
from lwm2m.secure.ram import CommandScript, ResponseScript, ScriptFormatError

__all__ = [
    "DATA_FORMAT_JSON",
    "DEFAULT_DELAY_MS",
    "DEFAULT_MAX_ROUNDS",
    "HANDSHAKE_PATH",
    "MAX_DELAY_MS",
    "MAX_MESSAGE_SIZE",
    "MAX_RAM_COMMANDS",
    "REMOTE_MANAGEMENT_PATH",
    "SERAM_VERSION",
    "TRANSPORT_HTTPS",
    "HandshakeCommand",
    "HandshakeResponse",
    "LocalAgent",
    "LocalAgentStatus",
    "NotificationCommand",
    "Order",
    "OrderAction",
    "RamCommand",
    "RamStartCommand",
    "RamStopCommand",
    "Report",
    "Run",
    "SeRamCommand",
    "SeRamResponse",
    "SeType",
    "SecureElement",
    "SeramError",
    "SeramStatusError",
    "secure_element_for",
]

SERAM_VERSION: Final = "2.0.0"
TRANSPORT_HTTPS: Final = "HTTPS"
DATA_FORMAT_JSON: Final = "application/json"
HANDSHAKE_PATH: Final = "/handshake"
REMOTE_MANAGEMENT_PATH: Final = "/remoteManagement"

#: The pause before the next request when an Order gives no delay (binding doc: 1 second).
DEFAULT_DELAY_MS: Final = 1000
#: The longest delay an Order may ask for: the Remote Agent itself gives a Local Agent up for
#: lost after 5 minutes (binding doc, "Transmission Errors").
MAX_DELAY_MS: Final = 300_000
#: The most /remoteManagement exchanges of one session (LocalAgent's default bound).
DEFAULT_MAX_ROUNDS: Final = 1000
#: The largest message decoded, in bytes (a 64 KiB script is 128 KiB of hex).
MAX_MESSAGE_SIZE: Final = 2 * 1024 * 1024
#: The most Commands in one Order.
MAX_RAM_COMMANDS: Final = 64
#: The most Secure Elements in a Handshake Command.
MAX_SECURE_ELEMENTS: Final = 16
#: The most characters of an identifier (seId, seExtraInfo, versions, protocol names).
MAX_NAME_LENGTH: Final = 256
#: The most characters of a notification or an errorMsg.
MAX_TEXT_LENGTH: Final = 1024

_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")


class SeramError(SecureComponentError, ValueError):
    """A SERAM message that is malformed or unexpected (the message names the member), an
    answer out of the protocol's order, or a session the Remote Agent ended with an error."""


class SeramStatusError(SeramError):
    """The Remote Agent answered with an HTTP error status (``status``)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class SeType(StrEnum):
    """seType of a secureElement."""

    ESE = "eSE"
    ISE = "iSE"
    UICC = "uicc"
    EUICC = "euicc"
    IEUICC = "ieuicc"
    UNDEFINED = "undefined"


class LocalAgentStatus(StrEnum):
    """localAgentStatusEnum of a Report."""

    PROCESSED = "PROCESSED"
    POLLING = "POLLING"
    UNAVAILABLE_SE = "UNAVAILABLE_SE"
    UNKNOWN_FAILURE = "UNKNOWN_FAILURE"
    UNGRANTED_ACCESS = "UNGRANTED_ACCESS"


# -- strict JSON reading --------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise SeramError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise SeramError(f"member {key!r} appears twice in one object")
        result[key] = value
    return result


def _load(body: bytes, what: str) -> dict[str, Any]:
    """The JSON object ``body`` must be (UTF-8, no duplicate members, no NaN/Infinity)."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise SeramError(f"{what}: the body must be bytes, not {type(body).__name__}")
    data = bytes(body)
    if len(data) > MAX_MESSAGE_SIZE:
        raise SeramError(f"{what}: {len(data)} bytes exceed the {MAX_MESSAGE_SIZE}-byte limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeramError(f"{what}: the body is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except SeramError as exc:
        raise SeramError(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SeramError(
            f"{what}: the body is not JSON ({exc.msg}: line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise SeramError(f"{what}: the JSON is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer beyond the interpreter's digit limit
        raise SeramError(f"{what}: the body is not usable JSON ({exc})") from None
    if not isinstance(value, dict):
        raise SeramError(f"{what}: a JSON object expected, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeramError(f"{where} must be an object, not {_kind(value)}")
    return value


def _array(value: object, where: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise SeramError(f"{where} must be an array, not {_kind(value)}")
    if len(value) > limit:
        raise SeramError(f"{where} has {len(value)} items, at most {limit} are accepted")
    return value


def _string(value: object, where: str, limit: int = MAX_NAME_LENGTH, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise SeramError(f"{where} must be a string, not {_kind(value)}")
    if len(value) > limit:
        raise SeramError(f"{where} has {len(value)} characters, at most {limit} are accepted")
    if not value and not empty:
        raise SeramError(f"{where} must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SeramError(f"{where} is not valid Unicode (character {exc.start})") from None
    return value


def _integer(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SeramError(f"{where} must be an integer, not {_kind(value)}")
    if not low <= value <= high:
        raise SeramError(f"{where} is {value}, outside {low}..{high}")
    return value


def _hex(value: object, where: str, limit: int) -> bytes:
    text = _string(value, where, limit, empty=True)
    if not _HEX.fullmatch(text):
        raise SeramError(f"{where} is not hexadecimal (an even number of 0-9 A-F)")
    return bytes.fromhex(text)


def _strings(value: object, where: str, limit: int = 16) -> tuple[str, ...]:
    items = _array(value, where, limit)
    if not items:
        raise SeramError(f"{where} must not be empty")
    return tuple(_string(item, f"{where}[{index}]") for index, item in enumerate(items))


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# -- the messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecureElement:
    """secureElement: its type, its identifier and, optionally, seExtraInfo (a comma separated
    list of features, e.g. ``SAM``)."""

    se_type: SeType
    se_id: str
    se_extra_info: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "se_type", SeType(self.se_type))
        _string(self.se_id, "seId")
        if self.se_extra_info is not None:
            _string(self.se_extra_info, "seExtraInfo", empty=True)

    def same_element(self, other: SecureElement) -> bool:
        """Whether ``other`` names the same Secure Element (seType and seId)."""
        return (self.se_type, self.se_id) == (other.se_type, other.se_id)

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"seType": self.se_type.value, "seId": self.se_id}
        if self.se_extra_info is not None:
            value["seExtraInfo"] = self.se_extra_info
        return value

    @classmethod
    def from_json(cls, value: object, where: str) -> SecureElement:
        member = _object(value, where)
        if "seType" not in member:
            raise SeramError(f"{where}.seType is missing")
        if "seId" not in member:
            raise SeramError(f"{where}.seId is missing")
        se_type = _string(member["seType"], f"{where}.seType")
        try:
            kind = SeType(se_type)
        except ValueError:
            raise SeramError(
                f"{where}.seType {se_type!r} is not one of {', '.join(t.value for t in SeType)}"
            ) from None
        se_id = _string(member["seId"], f"{where}.seId")
        extra = member.get("seExtraInfo")
        if extra is not None:
            extra = _string(extra, f"{where}.seExtraInfo", empty=True)
        return cls(kind, se_id, extra)


@dataclass(frozen=True, slots=True)
class HandshakeCommand:
    """ramHandshakeCommand, the Local Agent's first message: the Secure Elements it offers, in
    order of preference, and what it supports."""

    secure_elements: tuple[SecureElement, ...]
    supported_transport_protocols: tuple[str, ...] = (TRANSPORT_HTTPS,)
    supported_data_formats: tuple[str, ...] = (DATA_FORMAT_JSON,)
    supported_versions: tuple[str, ...] = (SERAM_VERSION,)

    def __post_init__(self) -> None:
        elements = tuple(self.secure_elements)
        object.__setattr__(self, "secure_elements", elements)
        if not elements:
            raise SeramError("a Handshake Command offers at least one Secure Element")
        if len(elements) > MAX_SECURE_ELEMENTS:
            raise SeramError(f"at most {MAX_SECURE_ELEMENTS} Secure Elements can be offered")
        for name in (
            "supported_transport_protocols",
            "supported_data_formats",
            "supported_versions",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def to_json(self) -> dict[str, Any]:
        return {
            "secureElements": [element.to_json() for element in self.secure_elements],
            "supportedTransportProtocols": list(self.supported_transport_protocols),
            "supportedDataFormats": list(self.supported_data_formats),
            "supportedVersions": list(self.supported_versions),
        }

    def encode(self) -> bytes:
        return _dump(self.to_json())

    @classmethod
    def decode(cls, body: bytes) -> HandshakeCommand:
        """A Handshake Command as a Remote Agent receives it (absent lists take the spec's
        defaults)."""
        what = "HandshakeCommand"
        value = _load(body, what)
        if "secureElements" not in value:
            raise SeramError(f"{what}.secureElements is missing")
        items = _array(value["secureElements"], f"{what}.secureElements", MAX_SECURE_ELEMENTS)
        if not items:
            raise SeramError(f"{what}.secureElements must not be empty")
        elements = tuple(
            SecureElement.from_json(item, f"{what}.secureElements[{index}]")
            for index, item in enumerate(items)
        )
        lists = [
            _strings(value[member], f"{what}.{member}") if member in value else default
            for member, default in (
                ("supportedTransportProtocols", (TRANSPORT_HTTPS,)),
                ("supportedDataFormats", (DATA_FORMAT_JSON,)),
                ("supportedVersions", (SERAM_VERSION,)),
            )
        ]
        return cls(elements, *lists)


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    """ramHandshakeResponse: what the Remote Agent chose."""

    chosen_transport_protocol: str = TRANSPORT_HTTPS
    chosen_data_format: str = DATA_FORMAT_JSON
    chosen_version: str = SERAM_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "chosenTransportProtocol": self.chosen_transport_protocol,
            "chosenDataFormat": self.chosen_data_format,
            "chosenVersion": self.chosen_version,
        }

    def encode(self) -> bytes:
        return _dump(self.to_json())

    @classmethod
    def decode(cls, body: bytes) -> HandshakeResponse:
        """chosenTransportProtocol and chosenVersion are required, chosenDataFormat defaults to
        application/json (the schema's ``required`` names a non-existent chosenDataProtocol)."""
        what = "HandshakeResponse"
        value = _load(body, what)
        for member in ("chosenTransportProtocol", "chosenVersion"):
            if member not in value:
                raise SeramError(f"{what}.{member} is missing")
        return cls(
            _string(value["chosenTransportProtocol"], f"{what}.chosenTransportProtocol"),
            _string(value.get("chosenDataFormat", DATA_FORMAT_JSON), f"{what}.chosenDataFormat"),
            _string(value["chosenVersion"], f"{what}.chosenVersion"),
        )


@dataclass(frozen=True, slots=True)
class RamStartCommand:
    """ramStartCommand: the Remote Agent starts the Command Exchange."""

    TYPE = "ramStartCommand"

    def to_json(self) -> dict[str, Any]:
        return {"ramCommandType": self.TYPE}


@dataclass(frozen=True, slots=True)
class RamStopCommand:
    """ramStopCommand: the session ends; no further Report is sent."""

    TYPE = "ramStopCommand"

    def to_json(self) -> dict[str, Any]:
        return {"ramCommandType": self.TYPE}


@dataclass(frozen=True, slots=True)
class SeRamCommand:
    """seRamCommand: C-APDUs for the chosen Secure Element, in order.

    The C-APDUs were checked to make a valid script (:class:`~lwm2m.secure.ram.CommandScript`:
    1 to 255 commands of at least 4 bytes, 64 KiB in all) — or the list is empty, answered with
    an empty seRamResponse without reaching the card. The repr shows headers only (PUT KEY and
    STORE DATA carry keys)."""

    TYPE = "seRamCommand"

    capdus: tuple[bytes, ...]

    def __post_init__(self) -> None:
        capdus = tuple(bytes(capdu) for capdu in self.capdus)
        object.__setattr__(self, "capdus", capdus)
        if capdus:
            try:
                CommandScript(capdus)
            except ScriptFormatError as exc:
                raise SeramError(f"listOfCAPDU: {exc}") from None

    def __repr__(self) -> str:
        headers = ", ".join(capdu[:4].hex(" ").upper() for capdu in self.capdus)
        return f"SeRamCommand([{headers}])"

    def to_json(self) -> dict[str, Any]:
        return {
            "ramCommandType": self.TYPE,
            "listOfCAPDU": [capdu.hex().upper() for capdu in self.capdus],
        }


@dataclass(frozen=True, slots=True)
class NotificationCommand:
    """notificationCommand: a UTF-8 string for the Device Application."""

    TYPE = "notificationCommand"

    notification: str

    def to_json(self) -> dict[str, Any]:
        return {"ramCommandType": self.TYPE, "deviceAppNotification": self.notification}


RamCommand = RamStartCommand | SeRamCommand | NotificationCommand | RamStopCommand

#: ramCommandType values accepted: the discriminator's, and the examples' start/stopCommand.
_COMMAND_TYPES: Final[dict[str, type[RamCommand]]] = {
    "ramStartCommand": RamStartCommand,
    "startCommand": RamStartCommand,
    "seRamCommand": SeRamCommand,
    "notificationCommand": NotificationCommand,
    "ramStopCommand": RamStopCommand,
    "stopCommand": RamStopCommand,
}

#: The hex characters of the longest C-APDU a script can hold.
_MAX_CAPDU_HEX = 2 * 65_545


def _ram_command(value: object, where: str) -> RamCommand:
    member = _object(value, where)
    if "ramCommandType" not in member:
        raise SeramError(f"{where}.ramCommandType is missing")
    name = _string(member["ramCommandType"], f"{where}.ramCommandType")
    kind = _COMMAND_TYPES.get(name)
    if kind is None:
        raise SeramError(
            f"{where}.ramCommandType {name!r} is not ramStartCommand, seRamCommand, "
            "notificationCommand or ramStopCommand"
        )
    if kind is SeRamCommand:
        if "listOfCAPDU" not in member:
            raise SeramError(f"{where}.listOfCAPDU is missing")
        items = _array(member["listOfCAPDU"], f"{where}.listOfCAPDU", 255)
        capdus = tuple(
            _hex(item, f"{where}.listOfCAPDU[{index}]", _MAX_CAPDU_HEX)
            for index, item in enumerate(items)
        )
        try:
            return SeRamCommand(capdus)
        except SeramError as exc:
            raise SeramError(f"{where}.{exc}") from None
    if kind is NotificationCommand:
        if "deviceAppNotification" not in member:
            raise SeramError(f"{where}.deviceAppNotification is missing")
        text = _string(
            member["deviceAppNotification"],
            f"{where}.deviceAppNotification",
            MAX_TEXT_LENGTH,
            empty=True,
        )
        return NotificationCommand(text)
    return RamStartCommand() if kind is RamStartCommand else RamStopCommand()


@dataclass(frozen=True, slots=True)
class Order:
    """remoteManagementOrder, the Remote Agent's answer to a Report; every member optional.
    ``delay`` is in milliseconds (None: not given); ``ram_commands`` None means absent (a void
    Order, for polling)."""

    delay: int | None = None
    chosen_secure_element: SecureElement | None = None
    ram_commands: tuple[RamCommand, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {}
        if self.delay is not None:
            value["delay"] = self.delay
        if self.chosen_secure_element is not None:
            value["chosenSecureElement"] = self.chosen_secure_element.to_json()
        if self.ram_commands is not None:
            value["ramCommands"] = [command.to_json() for command in self.ram_commands]
        return value

    def encode(self) -> bytes:
        return _dump(self.to_json())

    @classmethod
    def decode(cls, body: bytes) -> Order:
        what = "Order"
        value = _load(body, what)
        delay = None
        if "delay" in value:
            delay = _integer(value["delay"], f"{what}.delay", 0, MAX_DELAY_MS)
        chosen = None
        if "chosenSecureElement" in value:
            chosen = SecureElement.from_json(
                value["chosenSecureElement"], f"{what}.chosenSecureElement"
            )
        commands = None
        if "ramCommands" in value:
            items = _array(value["ramCommands"], f"{what}.ramCommands", MAX_RAM_COMMANDS)
            if not items:
                raise SeramError(f"{what}.ramCommands must hold at least one Command")
            commands = tuple(
                _ram_command(item, f"{what}.ramCommands[{index}]")
                for index, item in enumerate(items)
            )
        return cls(delay, chosen, commands)


@dataclass(frozen=True, slots=True)
class SeRamResponse:
    """seRamResponse: the R-APDUs of one SE RAM Command (data and status word), in order. The
    repr shows the status words only."""

    TYPE = "seRamResponse"

    rapdus: tuple[bytes, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rapdus", tuple(bytes(rapdu) for rapdu in self.rapdus))

    def __repr__(self) -> str:
        words = ", ".join(rapdu[-2:].hex().upper() or "-" for rapdu in self.rapdus)
        return f"SeRamResponse([{words}])"

    def to_json(self) -> dict[str, Any]:
        return {
            "ramResponseType": self.TYPE,
            "listOfRAPDU": [rapdu.hex().upper() for rapdu in self.rapdus],
        }


@dataclass(frozen=True, slots=True)
class Report:
    """remoteManagementReport, the Local Agent's request on /remoteManagement: its status, the
    number of SE RAM Commands of the previous Order executed, their responses and, after an
    error, a message."""

    status: LocalAgentStatus
    executed_se_ram_commands: int = 0
    ram_responses: tuple[SeRamResponse, ...] = ()
    error_msg: str | None = None

    def to_json(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "localAgentStatusEnum": LocalAgentStatus(self.status).value,
            "executedSeRamCommands": self.executed_se_ram_commands,
        }
        if self.error_msg is not None:
            status["errorMsg"] = self.error_msg
        value: dict[str, Any] = {"localAgentStatus": status}
        if self.ram_responses:
            value["ramResponses"] = [response.to_json() for response in self.ram_responses]
        return value

    def encode(self) -> bytes:
        return _dump(self.to_json())

    @classmethod
    def decode(cls, body: bytes) -> Report:
        """A Report as a Remote Agent receives it (an absent executedSeRamCommands is 0; an R-APDU
        may be the empty string the spec allows)."""
        what = "Report"
        value = _load(body, what)
        if "localAgentStatus" not in value:
            raise SeramError(f"{what}.localAgentStatus is missing")
        where = f"{what}.localAgentStatus"
        status = _object(value["localAgentStatus"], where)
        if "localAgentStatusEnum" not in status:
            raise SeramError(f"{where}.localAgentStatusEnum is missing")
        name = _string(status["localAgentStatusEnum"], f"{where}.localAgentStatusEnum")
        try:
            kind = LocalAgentStatus(name)
        except ValueError:
            raise SeramError(
                f"{where}.localAgentStatusEnum {name!r} is not one of "
                f"{', '.join(s.value for s in LocalAgentStatus)}"
            ) from None
        executed = 0
        if "executedSeRamCommands" in status:
            executed = _integer(
                status["executedSeRamCommands"],
                f"{where}.executedSeRamCommands",
                0,
                MAX_RAM_COMMANDS,
            )
        error = None
        if "errorMsg" in status:
            error = _string(status["errorMsg"], f"{where}.errorMsg", MAX_TEXT_LENGTH, empty=True)
        responses: list[SeRamResponse] = []
        if "ramResponses" in value:
            items = _array(value["ramResponses"], f"{what}.ramResponses", MAX_RAM_COMMANDS)
            for index, item in enumerate(items):
                at = f"{what}.ramResponses[{index}]"
                member = _object(item, at)
                if "ramResponseType" not in member:
                    raise SeramError(f"{at}.ramResponseType is missing")
                name = _string(member["ramResponseType"], f"{at}.ramResponseType")
                if name != SeRamResponse.TYPE:
                    raise SeramError(f"{at}.ramResponseType {name!r} is not seRamResponse")
                if "listOfRAPDU" not in member:
                    raise SeramError(f"{at}.listOfRAPDU is missing")
                rapdus = _array(member["listOfRAPDU"], f"{at}.listOfRAPDU", 255)
                responses.append(
                    SeRamResponse(
                        tuple(
                            _hex(r, f"{at}.listOfRAPDU[{n}]", 2 * 65_538)
                            for n, r in enumerate(rapdus)
                        )
                    )
                )
        return cls(kind, executed, tuple(responses), error)


# -- the Secure Element offered -------------------------------------------------------------------

_SE_TYPES: Final = {
    ComponentType.UICC: SeType.UICC,
    ComponentType.EUICC: SeType.EUICC,
    ComponentType.ESE: SeType.ESE,
}

#: Identifier schemes (lwm2m.secure.interfaces.Identifier) tried for seId, in order.
_ID_SCHEMES: Final = {
    SeType.UICC: ("iccid", "eid", "cin"),
    SeType.EUICC: ("eid", "iccid", "cin"),
    SeType.ESE: ("cin", "eid", "iccid"),
}


def secure_element_for(info: ComponentInfo, *, extra_info: str | None = None) -> SecureElement:
    """The secureElement a component is offered as: seType from its type (UICC ``uicc``, eUICC
    ``euicc``, eSE ``eSE``), seId from its identifiers — for a UICC the ICCID, for an eUICC the
    EID, for an eSE the GlobalPlatform Card Image Number (CIN), each falling back to the
    others, then to the CPLC's IC fabricator, IC type and IC serial number (hex, concatenated),
    then to the component's serial number.

    :raises SeramError: a component that is no Secure Element (software, TEE, HSM), or one
        without any identifier.
    """
    se_type = _SE_TYPES.get(info.type)
    if se_type is None:
        raise SeramError(
            f"a {info.type.label} component is not a Secure Element SERAM manages "
            "(UICC, eUICC or eSE)"
        )
    ids: dict[str, str] = {}
    for identifier in info.identifiers:
        ids.setdefault(identifier.scheme, identifier.value)
    for scheme in _ID_SCHEMES[se_type]:
        if ids.get(scheme):
            return SecureElement(se_type, ids[scheme][:MAX_NAME_LENGTH], extra_info)
    cplc = [ids.get(f"cplc-{name}") for name in ("ic-fabricator", "ic-type", "ic-serial")]
    if all(cplc):
        return SecureElement(se_type, "".join(cplc), extra_info)  # type: ignore[arg-type]
    if info.serial_number:
        return SecureElement(se_type, info.serial_number[:MAX_NAME_LENGTH], extra_info)
    raise SeramError(f"the {info.type.label} has no identifier to offer as seId")


# -- the Local Agent ------------------------------------------------------------------------------

Run = Callable[[tuple[bytes, ...]], ResponseScript]
"""Runs one SE RAM Command's C-APDUs on the Secure Element (blocking) and returns their
R-APDUs; raises :class:`~lwm2m.secure.admin.AdminScriptRefused`, ``ComponentUnavailable`` or
another ``SecureComponentError``."""


class _Phase(Enum):
    HANDSHAKE = "handshake"
    AWAIT_HANDSHAKE = "awaiting the Handshake Response"
    REPORT = "ready to report"
    AWAIT_ORDER = "awaiting an Order"
    EXECUTE = "executing an Order"
    DONE = "ended"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OrderAction:
    """What an Order asks of the caller: wait ``delay`` seconds before the next request, run
    ``se_ram_commands`` SE RAM Commands first (:meth:`LocalAgent.execute`; 0: nothing to run),
    hand ``notifications`` to the Device Application; ``done`` once the Stop Command came (no
    further request)."""

    delay: float
    se_ram_commands: int
    notifications: tuple[str, ...]
    done: bool


def _error_message(exc: SecureComponentError) -> str:
    """errorMsg for a failed SE RAM Command: the relay's refusal and an unselectable target are
    explained (their messages name a command header or an AID, never APDU data); other errors
    only by their class."""
    if isinstance(exc, AdminScriptRefused):
        text = f"refused by the Local Agent's relay policy: {exc}"
    elif isinstance(exc, TargetNotSelectable):
        text = f"the target security domain cannot be selected: {exc}"
    elif isinstance(exc, ComponentUnavailable):
        text = f"the Secure Element is unavailable ({type(exc).__name__})"
    else:
        text = f"the Secure Element command failed ({type(exc).__name__})"
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text[:MAX_TEXT_LENGTH]


def _status_for(exc: SecureComponentError) -> LocalAgentStatus:
    if isinstance(exc, AdminScriptRefused):
        return LocalAgentStatus.UNGRANTED_ACCESS
    if isinstance(exc, ComponentUnavailable):
        return LocalAgentStatus.UNAVAILABLE_SE
    return LocalAgentStatus.UNKNOWN_FAILURE


_HTTP_MEANING: Final = {
    404: "the Remote Agent does not know the session id",
    406: "the Remote Agent cannot fulfil the Local Agent's proposal",
    500: "unknown server error",
}


class LocalAgent:
    """One management session of a SERAM Local Agent (see the module docstring).

    :param secure_elements: the Secure Elements offered, by preference (:func:`secure_element_for`).
    :param session_id: the session's identifier, shared with the Management Platform in the
        Initialization Step; a random UUID when None.
    :param default_delay_ms: the pause when an Order gives none.
    :param max_rounds: the most /remoteManagement exchanges before the session fails.

    The calls must follow the protocol: :meth:`handshake_request`, :meth:`receive_handshake`,
    then :meth:`next_report` and :meth:`receive_order` in turn (with :meth:`execute` in between
    when an Order has SE RAM Commands) until :attr:`done`. Any :class:`SeramError` ends the
    session (:attr:`failed`).
    """

    def __init__(
        self,
        secure_elements: Iterable[SecureElement],
        *,
        session_id: str | None = None,
        default_delay_ms: int = DEFAULT_DELAY_MS,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
    ) -> None:
        self.handshake = HandshakeCommand(tuple(secure_elements))
        self.session_id = str(uuid.uuid4()) if session_id is None else session_id
        _string(self.session_id, "sessionId")
        _integer(default_delay_ms, "default_delay_ms", 0, MAX_DELAY_MS)
        _integer(max_rounds, "max_rounds", 1, 10**9)
        self.default_delay_ms = default_delay_ms
        self.max_rounds = max_rounds
        self._query = "?sessionId=" + quote(self.session_id, safe="")
        self._phase = _Phase.HANDSHAKE
        self._started = False
        self._chosen: SecureElement | None = (
            self.handshake.secure_elements[0] if len(self.handshake.secure_elements) == 1 else None
        )
        self._pending: tuple[RamCommand, ...] = ()
        self._report = Report(LocalAgentStatus.POLLING)
        #: The Remote Agent's choices (after :meth:`receive_handshake`).
        self.response: HandshakeResponse | None = None
        #: /remoteManagement exchanges so far.
        self.rounds = 0
        #: SE RAM Commands executed without error, and the R-APDUs they returned.
        self.se_ram_commands = 0
        self.rapdus = 0
        #: errorMsg of every failed SE RAM Command reported.
        self.errors: list[str] = []
        #: The status of the last Report sent.
        self.last_status: LocalAgentStatus | None = None

    # -- state ---------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """The Remote Agent ended the session with the Stop Command."""
        return self._phase is _Phase.DONE

    @property
    def failed(self) -> bool:
        return self._phase is _Phase.FAILED

    @property
    def chosen_secure_element(self) -> SecureElement | None:
        return self._chosen

    def _expect(self, phase: _Phase, call: str) -> None:
        if self._phase is not phase:
            raise SeramError(f"{call}: the session is {self._phase.value}, not {phase.value}")

    def _fail(self, exc: SeramError) -> SeramError:
        self._phase = _Phase.FAILED
        return exc

    # -- handshake -----------------------------------------------------------------------------

    def handshake_request(self) -> tuple[str, bytes]:
        """The Handshake Command: the path (with its query) and the JSON body to POST."""
        self._expect(_Phase.HANDSHAKE, "handshake_request")
        self._phase = _Phase.AWAIT_HANDSHAKE
        return HANDSHAKE_PATH + self._query, self.handshake.encode()

    def receive_handshake(self, status: int, body: bytes) -> HandshakeResponse:
        """The Remote Agent's answer to the Handshake Command; it must choose what was offered.

        :raises SeramStatusError: the answer is 404, 406, 500 or another non-200 status.
        :raises SeramError: a malformed Handshake Response or a choice not offered.
        """
        self._expect(_Phase.AWAIT_HANDSHAKE, "receive_handshake")
        try:
            self._check_status(status, "Handshake")
            response = HandshakeResponse.decode(body)
            for name, chosen, offered in (
                (
                    "chosenTransportProtocol",
                    response.chosen_transport_protocol,
                    self.handshake.supported_transport_protocols,
                ),
                (
                    "chosenDataFormat",
                    response.chosen_data_format,
                    self.handshake.supported_data_formats,
                ),
                ("chosenVersion", response.chosen_version, self.handshake.supported_versions),
            ):
                if chosen not in offered:
                    raise SeramError(
                        f"HandshakeResponse.{name} {chosen!r} is not one offered "
                        f"({', '.join(offered)})"
                    )
        except SeramError as exc:
            raise self._fail(exc) from None
        self.response = response
        self._phase = _Phase.REPORT
        return response

    def _check_status(self, status: int, step: str) -> None:
        if status == 200:
            return
        allowed = (404, 406, 500) if step == "Handshake" else (404, 500)
        meaning = _HTTP_MEANING[status] if status in allowed else "an unexpected status"
        raise SeramStatusError(f"{step}: HTTP {status}, {meaning}", status)

    # -- command exchange ----------------------------------------------------------------------

    def next_report(self) -> tuple[str, bytes]:
        """The Report to POST next: POLLING at first and after a void Order, else the outcome of
        the previous Order.

        :raises SeramError: the session reached :attr:`max_rounds` without a Stop Command.
        """
        self._expect(_Phase.REPORT, "next_report")
        if self.rounds >= self.max_rounds:
            raise self._fail(
                SeramError(
                    f"no Stop Command within {self.max_rounds} rounds: the session is abandoned"
                )
            )
        self.rounds += 1
        report = self._report
        self.last_status = report.status
        self._phase = _Phase.AWAIT_ORDER
        return REMOTE_MANAGEMENT_PATH + self._query, report.encode()

    def receive_order(self, status: int, body: bytes) -> OrderAction:
        """The Remote Agent's answer to a Report.

        :raises SeramStatusError: the answer is 404, 500 or another non-200 status.
        :raises SeramError: a malformed Order, or Commands out of the protocol's order (an SE RAM
            or Notification Command before the Start Command, a second Start, a Command after the
            Stop Command). Nothing of such an Order is executed.
        """
        self._expect(_Phase.AWAIT_ORDER, "receive_order")
        try:
            self._check_status(status, "Order")
            order = Order.decode(body)
            commands = order.ram_commands or ()
            self._check_sequence(commands)
        except SeramError as exc:
            raise self._fail(exc) from None
        if order.chosen_secure_element is not None:
            self._chosen = order.chosen_secure_element
        delay_ms = self.default_delay_ms if order.delay is None else order.delay
        if any(isinstance(command, RamStartCommand) for command in commands):
            self._started = True
        stop = any(isinstance(command, RamStopCommand) for command in commands)
        notifications = tuple(
            c.notification for c in commands if isinstance(c, NotificationCommand)
        )
        se_ram = sum(isinstance(command, SeRamCommand) for command in commands)
        if se_ram:
            self._pending = commands
            self._phase = _Phase.EXECUTE
        else:
            self._report = Report(
                LocalAgentStatus.PROCESSED if commands else LocalAgentStatus.POLLING
            )
            self._phase = _Phase.DONE if stop else _Phase.REPORT
        return OrderAction(delay_ms / 1000, se_ram, notifications, stop)

    def _check_sequence(self, commands: Sequence[RamCommand]) -> None:
        started = self._started
        for index, command in enumerate(commands):
            where = f"Order.ramCommands[{index}]"
            if isinstance(command, RamStopCommand):
                if index != len(commands) - 1:
                    raise SeramError(f"{where}: Commands follow the Stop Command")
            elif isinstance(command, RamStartCommand):
                if started:
                    raise SeramError(f"{where}: a second Start Command")
                started = True
            elif not started:
                raise SeramError(f"{where}: a {command.TYPE} before the Start Command")

    def execute(self, run: Run) -> None:
        """Run the pending Order's SE RAM Commands through ``run``, in order (this blocks as long
        as ``run`` does), and prepare the next Report.

        The first failing SE RAM Command sets the Report's status (``UNGRANTED_ACCESS`` for a
        list the relay refuses, ``UNAVAILABLE_SE`` for a card gone or a Secure Element not
        offered, ``UNKNOWN_FAILURE`` otherwise) and errorMsg; the SE RAM Commands after it are
        skipped. Exceptions other than ``SecureComponentError`` propagate (the session fails).
        """
        self._expect(_Phase.EXECUTE, "execute")
        commands, self._pending = self._pending, ()
        self._phase = _Phase.FAILED  # until the Report is ready
        responses: list[SeRamResponse] = []
        error: tuple[LocalAgentStatus, str] | None = None
        for command in commands:
            if not isinstance(command, SeRamCommand) or error is not None:
                continue
            error = self._unavailable()
            if error is not None:
                continue
            if not command.capdus:
                responses.append(SeRamResponse(()))
                continue
            try:
                result = run(command.capdus)
            except SecureComponentError as exc:
                error = (_status_for(exc), _error_message(exc))
                continue
            responses.append(SeRamResponse(result.responses))
            self.rapdus += len(result.responses)
        self.se_ram_commands += len(responses)
        if error is None:
            self._report = Report(LocalAgentStatus.PROCESSED, len(responses), tuple(responses))
        else:
            self.errors.append(error[1])
            self._report = Report(error[0], len(responses), tuple(responses), error[1])
        stop = any(isinstance(command, RamStopCommand) for command in commands)
        self._phase = _Phase.DONE if stop else _Phase.REPORT

    def _unavailable(self) -> tuple[LocalAgentStatus, str] | None:
        chosen = self._chosen
        if chosen is None:
            return (
                LocalAgentStatus.UNAVAILABLE_SE,
                "no chosenSecureElement: this Local Agent offered several",
            )
        if not any(chosen.same_element(se) for se in self.handshake.secure_elements):
            return (
                LocalAgentStatus.UNAVAILABLE_SE,
                f"chosenSecureElement {chosen.se_type.value} {chosen.se_id[:64]!r} was not offered",
            )
        return None
