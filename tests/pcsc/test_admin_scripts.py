"""Remote APDU scripts relayed to a security domain (lwm2m.secure.admin, SCS-3/SCS-6): the relay
policy, the pcsc: component's admin session against the VSE card OS in memory (a secure channel
the "server" opens through two scripts, the stop at an error, the channel's life), and the
/33000 resources 30-35 of :class:`SecureComponentObject`."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from lwm2m.client.arguments import ExecuteArguments
from lwm2m.errors import BadRequest, MethodNotAllowed
from lwm2m.model.nodes import SingleResource
from lwm2m.model.values import ResourceType
from lwm2m.secure import Capability, ComponentUnavailable, open_component
from lwm2m.secure.admin import (
    ISD_AID,
    AdminScriptRefused,
    AdminScripts,
    AdminStatus,
    TargetNotSelectable,
    check_script,
    parse_aid,
)
from lwm2m.secure.object import SecureComponentObject, SeramStatus
from lwm2m.secure.pcsc import PcscComponent, StaticKeys
from lwm2m.secure.pcsc.apdu import CommandApdu, ResponseApdu
from lwm2m.secure.pcsc.errors import TransportError
from lwm2m.secure.pcsc.scp03 import Scp03Host
from lwm2m.secure.ram import CommandScript, ResponseScript
from lwm2m.vse.state import VseState
from lwm2m.vse.uicc import VirtualUicc

GP_KEYS = StaticKeys.from_hex(*["404142434445464748494A4B4C4D4E4F"] * 3)
SELECT_ISD = bytes.fromhex("00A4040008A000000151000000")
GET_CPLC = bytes.fromhex("80CA9F7F00")
GET_CARD_DATA = bytes.fromhex("80CA006600")
MISSING_DATA = bytes.fromhex("80CA00FE00")  # GET DATA of a tag the card does not have: 6A88
OTHER_AID = bytes.fromhex("A0000000871002FF")
NONE = ExecuteArguments(())


def script(*commands: bytes) -> CommandScript:
    return CommandScript(tuple(commands))


class Card:
    """The VSE card OS in memory, with every APDU it was sent."""

    def __init__(self) -> None:
        self.uicc = VirtualUicc(VseState.default())
        self.sent: list[bytes] = []
        self.fail_on: bytes | None = None

    def transmit(self, apdu: bytes) -> bytes:
        if self.fail_on is not None and apdu[1:2] == self.fail_on:
            raise TransportError("the reader lost the card")
        self.sent.append(apdu)
        return self.uicc.process(apdu)

    @property
    def channels(self) -> set[int]:
        return set(self.uicc.channels)


@pytest.fixture
def card() -> Card:
    return Card()


@pytest.fixture
def component(card: Card) -> PcscComponent:
    return PcscComponent(card.transmit)


def sw(r_apdu: bytes) -> int:
    return int.from_bytes(r_apdu[-2:], "big")


# -- the relay policy ---------------------------------------------------------------------------


def test_the_policy_lets_through_security_domain_commands_only() -> None:
    allowed = script(SELECT_ISD, GET_CPLC, bytes.fromhex("8450000008" + "11" * 8), MISSING_DATA)
    assert [c.ins for c in check_script(allowed, ISD_AID)] == [0xA4, 0xCA, 0x50, 0xCA]


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (
            "00A4040008A0000000871002FF",
            "command 2 (00 A4 04 00): a script may select only its target A000000151000000",
        ),
        (
            "00A40004023F00",
            "command 2 (00 A4 00 04): a script may select only its target A000000151000000",
        ),
        (
            "0070000001",
            "command 2 (00 70 00 00): only GlobalPlatform security-domain commands and SELECT "
            "of the target security domain are relayed",
        ),
        (
            "002000010831323334FFFFFFFF",
            "command 2 (00 20 00 01): only GlobalPlatform security-domain commands and SELECT "
            "of the target security domain are relayed",
        ),
        (
            "00B0000000",
            "command 2 (00 B0 00 00): only GlobalPlatform security-domain commands and SELECT "
            "of the target security domain are relayed",
        ),
        (
            "81CA9F7F00",
            "command 2 (81 CA 9F 7F): scripts are written for the basic channel; the client "
            "chooses the logical channel",
        ),
        ("80CA9F7F0000", "command 2 (80 CA 9F 7F): "),
    ],
)
def test_the_policy_refuses_everything_else(command: str, reason: str) -> None:
    with pytest.raises(AdminScriptRefused) as refused:
        check_script(script(GET_CPLC, bytes.fromhex(command)), ISD_AID)
    assert str(refused.value).startswith(reason)


def test_aids_are_parsed_strictly() -> None:
    assert parse_aid("a000000151000000") == ISD_AID
    for text, message in (("A0Z0", "is not hexadecimal"), ("A000", "5 to 16 bytes, not 2")):
        with pytest.raises(ValueError, match=message):
            parse_aid(text)


# -- the component's admin session --------------------------------------------------------------


def test_the_component_offers_scripts(component: PcscComponent) -> None:
    assert isinstance(component, AdminScripts)
    assert Capability.REMOTE_ADMIN in component.capabilities
    assert "gp-remote-apdu-scripts" in component.info().services


def test_a_script_runs_on_the_issuer_security_domain(card: Card, component: PcscComponent) -> None:
    cplc = component.identification().cplc
    assert cplc is not None
    before = card.channels
    response = component.run_admin_script(script(GET_CPLC, GET_CARD_DATA), ISD_AID)
    assert response.executed == 2
    first, second = response.responses
    encoded = cplc.encode()
    assert first == b"\x9f\x7f" + bytes([len(encoded)]) + encoded + b"\x90\x00"  # tag 9F7F
    assert sw(second) == 0x9000
    assert second[0] == 0x66
    (admin,) = card.channels - before  # its own logical channel, kept for the next script
    assert card.sent[-1][0] & 0x03 == admin  # moved to that channel
    again = component.run_admin_script(script(GET_CPLC), ISD_AID)
    assert again.responses == (first,)
    assert card.channels - before == {admin}
    component.end_admin_session()
    assert card.channels == before
    component.end_admin_session()  # idempotent


def test_a_script_stops_at_the_first_error(component: PcscComponent) -> None:
    response = component.run_admin_script(script(GET_CPLC, MISSING_DATA, GET_CPLC), ISD_AID)
    assert response.executed == 2
    assert sw(response.responses[-1]) == 0x6A88
    assert response.encode()[:1] == b"\xaf"  # the form of the script (indefinite)
    assert ResponseScript.decode(response.encode()) == response


def scp03_session() -> Generator[CommandScript, ResponseScript, bytes]:
    """What an admin server does through the relay, one script at a time (send it each
    response): SCP03 (level 33) with the ISD over three scripts, then GET DATA CPLC under it;
    returns the CPLC data as the server unwraps it."""
    host = Scp03Host(GP_KEYS, level=0x33, channel=0)
    first = yield script(SELECT_ISD, host.initialize_update().encode())
    assert first.executed == 2
    host.process_initialize_update(ResponseApdu.decode(first.responses[1]))
    second = yield script(host.external_authenticate().encode())
    host.process_external_authenticate(ResponseApdu.decode(second.responses[0]))
    get_cplc = host.wrap(CommandApdu.decode(GET_CPLC))
    assert get_cplc.encode()[:1] == b"\x84"  # MACed and encrypted: the client cannot read it
    third = yield script(get_cplc.encode())
    answer = host.unwrap(ResponseApdu.decode(third.responses[0]))
    assert answer.sw.value == 0x9000
    return answer.data


def scp03_through(run: Callable[[CommandScript], ResponseScript]) -> bytes:
    session = scp03_session()
    request = next(session)
    while True:
        try:
            request = session.send(run(request))
        except StopIteration as done:
            data: bytes = done.value
            return data


def test_the_server_runs_its_own_secure_channel_across_scripts(
    card: Card, component: PcscComponent
) -> None:
    """The admin server (here: Scp03Host) authenticates to the ISD through the relay; the
    client never sees a key, and the session's channel carries the secure channel."""
    data = scp03_through(lambda s: component.run_admin_script(s, ISD_AID))
    identification = component.identification().cplc
    assert identification is not None
    assert data.endswith(identification.encode())
    assert data[:2] == b"\x9f\x7f"


def test_an_unknown_target_is_reported_and_leaves_no_channel(
    card: Card, component: PcscComponent
) -> None:
    before = card.channels
    with pytest.raises(TargetNotSelectable, match="SELECT A0000000871002FF: the card answered"):
        component.run_admin_script(script(GET_CPLC), OTHER_AID)
    assert card.channels == before


def test_a_refused_script_never_reaches_the_card(card: Card, component: PcscComponent) -> None:
    sent = len(card.sent)
    with pytest.raises(AdminScriptRefused):
        component.run_admin_script(script(GET_CPLC, bytes.fromhex("00B0000000")), ISD_AID)
    assert len(card.sent) == sent


def test_a_card_lost_mid_script_ends_the_session(card: Card, component: PcscComponent) -> None:
    component.run_admin_script(script(GET_CPLC), ISD_AID)
    card.fail_on = b"\xca"
    with pytest.raises(ComponentUnavailable):
        component.run_admin_script(script(GET_CPLC), ISD_AID)
    assert not component.card_present()


def test_closing_the_component_closes_the_admin_channel(card: Card) -> None:
    component = PcscComponent(card.transmit)
    before = card.channels
    component.run_admin_script(script(GET_CPLC), ISD_AID)
    assert card.channels != before
    component.close()
    assert not card.channels - before


# -- the /33000 resources 30-35 -----------------------------------------------------------------


def opaque(rid: int, value: bytes) -> SingleResource:
    return SingleResource(rid, ResourceType.OPAQUE, value)


def text(rid: int, value: str) -> SingleResource:
    return SingleResource(rid, ResourceType.STRING, value)


def values(handler: SecureComponentObject, *rids: int) -> dict[int, Any]:
    return {r.id: r.value for r in handler.read(0, rids).resources.values()}  # type: ignore[union-attr]


class Changes:
    def __init__(self) -> None:
        self.resources: list[tuple[int, int, tuple[int, ...]]] = []

    def resources_changed(self, oid: int, iid: int, rids: Any) -> None:
        self.resources.append((oid, iid, tuple(rids)))

    def instances_changed(self, oid: int) -> None:
        pass

    def object_event(self, event: object) -> None:
        pass


def test_the_object_runs_a_written_script(component: PcscComponent) -> None:
    handler = SecureComponentObject(component, admin_targets=[ISD_AID])
    changes = Changes()
    handler.attach(changes)  # type: ignore[arg-type]
    assert values(handler, 31, 33, 34) == {31: "A000000151000000", 33: b"", 34: 0}
    handler.write(0, [opaque(30, script(GET_CPLC).encode())])
    handler.execute(0, 32, NONE)
    assert values(handler, 34) == {34: AdminStatus.COMPLETED}
    response = ResponseScript.decode(values(handler, 33)[33])
    assert response.executed == 1
    assert response.responses[0][-2:] == b"\x90\x00"
    assert (33000, 0, (34,)) in changes.resources  # Running
    assert changes.resources[-1] == (33000, 0, (33, 34))
    handler.write(0, [opaque(30, script(GET_CPLC, MISSING_DATA).encode())])
    handler.execute(0, 32, NONE)
    assert values(handler, 34) == {34: AdminStatus.STOPPED}
    handler.execute(0, 35, NONE)  # End Admin Session
    identification = handler.read(0, [0, 2]).resources
    assert {rid: r.value for rid, r in identification.items()} == {0: 1, 2: "pcsc"}  # type: ignore[union-attr]


def test_the_object_reports_an_unselectable_target_and_a_lost_card(card: Card) -> None:
    component = PcscComponent(card.transmit)
    handler = SecureComponentObject(component, admin_targets=[ISD_AID, OTHER_AID])
    handler.write(0, [opaque(30, script(GET_CPLC).encode()), text(31, OTHER_AID.hex())])
    handler.execute(0, 32, NONE)
    assert values(handler, 31, 33, 34) == {
        31: OTHER_AID.hex().upper(),
        33: b"",
        34: AdminStatus.UNKNOWN_APPLICATION,
    }
    handler.write(0, [text(31, ISD_AID.hex())])
    card.fail_on = b"\xca"
    handler.execute(0, 32, NONE)
    assert values(handler, 34) == {34: AdminStatus.UNAVAILABLE}


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ([opaque(30, b"\xaa\x01")], "Admin Script: "),
        (
            [opaque(30, script(bytes.fromhex("00B0000000")).encode())],
            "Admin Script refused: command 1 (00 B0 00 00)",
        ),
        ([text(31, "A0000000871002FF")], "Admin Target A0000000871002FF is not allowed"),
        ([text(31, "nothex")], "Admin Target: AID 'nothex' is not hexadecimal"),
    ],
)
def test_bad_writes_are_refused_with_the_reason(
    component: PcscComponent, resources: list[SingleResource], message: str
) -> None:
    handler = SecureComponentObject(component, admin_targets=[ISD_AID])
    with pytest.raises(BadRequest) as refused:
        handler.write(0, resources)
    assert str(refused.value).startswith(message)
    assert values(handler, 31) == {31: "A000000151000000"}  # nothing changed


def test_execute_needs_a_script_and_one_run_at_a_time(component: PcscComponent) -> None:
    pending: list[Callable[[], None]] = []

    def later(work: Any, done: Any) -> None:
        pending.append(lambda: done(work(), None))

    handler = SecureComponentObject(component, admin_targets=[ISD_AID, OTHER_AID], offload=later)
    with pytest.raises(MethodNotAllowed, match="write /33000/x/30 first"):
        handler.execute(0, 32, NONE)
    handler.write(0, [opaque(30, script(GET_CPLC).encode())])
    handler.execute(0, 32, NONE)
    assert values(handler, 34) == {34: AdminStatus.RUNNING}
    with pytest.raises(MethodNotAllowed, match="a script or SERAM session is running"):
        handler.execute(0, 32, NONE)
    with pytest.raises(MethodNotAllowed, match="a script or SERAM session is running"):
        handler.execute(0, 35, NONE)  # End Admin Session waits for the run too
    with pytest.raises(BadRequest, match="cannot change while a script or SERAM session runs"):
        handler.write(0, [text(31, OTHER_AID.hex())])
    pending.pop()()
    assert values(handler, 34) == {34: AdminStatus.COMPLETED}
    handler.write(0, [opaque(30, b"")])  # an empty write clears the script
    with pytest.raises(MethodNotAllowed):
        handler.execute(0, 32, NONE)


def test_without_targets_the_admin_resources_do_not_exist(component: PcscComponent) -> None:
    handler = SecureComponentObject(component)
    assert not handler.admin_enabled
    assert not {30, 31, 32, 33, 34, 35} & set(handler.read(0).resources)
    with pytest.raises(MethodNotAllowed):
        handler.write(0, [opaque(30, script(GET_CPLC).encode())])
    with pytest.raises(MethodNotAllowed):
        handler.execute(0, 32, NONE)


def test_a_component_without_scripts_offers_none(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_TEST_PASSPHRASE", "pw")
    soft = open_component(
        f"soft:{tmp_path}/c.sc?passphrase-env=ADMIN_TEST_PASSPHRASE", create=True, scrypt_log2_n=10
    )
    try:
        handler = SecureComponentObject(soft, admin_targets=[ISD_AID])
        assert not handler.admin_enabled
        assert 34 not in handler.read(0).resources
    finally:
        soft.close()


# -- the SERAM resources 36-38 ------------------------------------------------------------------

AGENT = "https://ras.example/gp/seram"


class Starter:
    """A SeramStarter that keeps the sessions it was asked to start."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str | None, bytes]] = []
        self.done: list[Callable[[Exception | None], None]] = []

    def __call__(
        self, url: str, session_id: str | None, target: bytes, done: Callable[..., None]
    ) -> None:
        self.started.append((url, session_id, target))
        self.done.append(done)


def test_a_seram_session_is_started_and_reported(component: PcscComponent) -> None:
    starter = Starter()
    handler = SecureComponentObject(
        component, admin_targets=[ISD_AID], seram_agents=[AGENT], seram=starter
    )
    assert values(handler, 36, 38) == {36: AGENT, 38: SeramStatus.NONE}  # the only agent
    handler.execute(0, 37, ExecuteArguments({0: "session-1"}))
    assert starter.started == [(AGENT, "session-1", ISD_AID)]
    assert values(handler, 38) == {38: SeramStatus.RUNNING}
    handler.write(0, [opaque(30, script(GET_CPLC).encode())])
    for busy in (32, 35, 37):  # the session holds the admin channel
        with pytest.raises(MethodNotAllowed, match="running"):
            handler.execute(0, busy, NONE)
    starter.done[0](None)
    assert values(handler, 38) == {38: SeramStatus.COMPLETED}
    handler.execute(0, 37, NONE)  # no sessionId: the agent picks one
    assert starter.started[-1] == (AGENT, None, ISD_AID)
    starter.done[1](RuntimeError("the Remote Agent answered 500"))
    assert values(handler, 38) == {38: SeramStatus.FAILED}
    handler.execute(0, 32, NONE)  # scripts run again
    assert values(handler, 34) == {34: AdminStatus.COMPLETED}


def test_the_seram_agent_must_be_configured(component: PcscComponent) -> None:
    starter = Starter()
    other = "https://other.example/gp/seram"
    handler = SecureComponentObject(
        component, admin_targets=[ISD_AID], seram_agents=[AGENT, other], seram=starter
    )
    assert values(handler, 36) == {36: ""}  # two configured: the server chooses
    with pytest.raises(MethodNotAllowed, match="write /33000/x/36 first"):
        handler.execute(0, 37, NONE)
    with pytest.raises(BadRequest, match="not a URL this client is configured for"):
        handler.write(0, [text(36, "https://attacker.example/gp/seram")])
    handler.write(0, [text(36, other)])
    with pytest.raises(BadRequest, match="sessionId"):
        handler.execute(0, 37, ExecuteArguments({0: "x" * 129}))
    handler.execute(0, 37, ExecuteArguments({0: "s"}))
    assert starter.started == [(other, "s", ISD_AID)]
    assert handler.snapshot() == (None, ISD_AID, other)


def test_without_a_starter_or_agents_there_is_no_seram(component: PcscComponent) -> None:
    for options in ({"seram_agents": [AGENT]}, {"seram": Starter()}):
        handler = SecureComponentObject(component, admin_targets=[ISD_AID], **options)  # type: ignore[arg-type]
        assert not {36, 38} & set(handler.read(0).resources)
        with pytest.raises(MethodNotAllowed):
            handler.execute(0, 37, NONE)
