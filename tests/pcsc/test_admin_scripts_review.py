"""Independent security review of the /33000 remote APDU script relay (lwm2m.secure.admin,
lwm2m.secure.ram, PcscComponent.run_admin_script, SecureComponentObject 30-35).

Threat: a server with Write/Execute on /33000 tries to reach, through the relay, what the card
holds for the client itself (the IoT SAFE applet and its channel, PIN1, the file system, the
other logical channels, the applet session's SCP03 state) or to crash or wedge the client.

The first part pins attacks that are refused today (they must stay refused); the second part
(``xfail(strict=True)``) demonstrates the defects found. Everything runs on the VSE card OS in
memory (no pcscd), deterministically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lwm2m.client.arguments import ExecuteArguments
from lwm2m.errors import BadRequest, MethodNotAllowed
from lwm2m.secure.admin import ISD_AID, AdminScriptRefused, AdminStatus, check_script
from lwm2m.secure.interfaces import SecureComponentError
from lwm2m.secure.object import SecureComponentObject
from lwm2m.secure.pcsc import PcscComponent, StaticKeys, iotsafe
from lwm2m.secure.pcsc.apdu import CommandApdu, ResponseApdu, channel_of, with_channel
from lwm2m.secure.pcsc.errors import CardRemoved, TransportError
from lwm2m.secure.pcsc.scp03 import Scp03Host
from lwm2m.secure.ram import CommandScript, ResponseScript
from lwm2m.vse.state import VseState
from lwm2m.vse.uicc import VirtualUicc

from .test_admin_scripts import opaque, text, values

GP_KEYS = StaticKeys.from_hex(*["404142434445464748494A4B4C4D4E4F"] * 3)
GET_CPLC = bytes.fromhex("80CA9F7F00")
IOT_SAFE_AID = iotsafe.IOT_SAFE_AID
APPLET_INFO = iotsafe.get_applet_info(channel=0).encode()  # IoT SAFE GET DATA, class 80
OPEN_CHANNEL = bytes.fromhex("0070000001")
NONE = ExecuteArguments(())
PIN = "1234"


def script(*commands: bytes) -> CommandScript:
    return CommandScript(tuple(commands))


def sw(r_apdu: bytes) -> int:
    return int.from_bytes(r_apdu[-2:], "big")


def select(aid: bytes, *, cla: int = 0x00, p2: int = 0x00) -> bytes:
    return bytes([cla, 0xA4, 0x04, p2, len(aid)]) + aid


class Card:
    """The VSE card OS in memory, every APDU it was sent, and a hook that may answer (or fail)
    in its place."""

    def __init__(self, state: VseState | None = None) -> None:
        self.uicc = VirtualUicc(state or VseState.default())
        self.sent: list[bytes] = []
        self.hook: Callable[[bytes], bytes | None] | None = None

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        if self.hook is not None:
            answer = self.hook(apdu)
            if answer is not None:
                return answer
        return self.uicc.process(apdu)

    @property
    def channels(self) -> set[int]:
        return set(self.uicc.channels)

    def occupy(self, count: int) -> None:
        """Open ``count`` logical channels behind the client's back (another user of the card),
        so that the admin session gets a high channel number."""
        for _ in range(count):
            assert self.uicc.process(OPEN_CHANNEL)[-2:] == b"\x90\x00"


@pytest.fixture
def card() -> Card:
    return Card()


@pytest.fixture
def component(card: Card) -> PcscComponent:
    return PcscComponent(card.transmit)


def pin_card() -> tuple[Card, PcscComponent]:
    state = VseState.default()
    state.pin1 = PIN
    card = Card(state)
    component = PcscComponent(card.transmit, pin=PIN)
    assert card.uicc.pin1_verified
    return card, component


def admin_channel(card: Card, before: set[int]) -> int:
    (channel,) = card.channels - before
    return channel


# == attacks that are refused (must stay so) ====================================================

REFUSED = {
    # the IoT SAFE applet: by full AID, by partial AID, with extra bytes, as the script's SELECT
    "select the IoT SAFE applet": select(IOT_SAFE_AID),
    "select the IoT SAFE applet by a partial AID": select(IOT_SAFE_AID[:5]),
    "select a partial target": select(ISD_AID[:5]),
    "select the target plus a suffix": select(ISD_AID + b"\x01"),
    "select the applet, extended Lc": bytes.fromhex("00A404000000") + bytes([7]) + IOT_SAFE_AID,
    "select the target by FID (P1 00)": bytes.fromhex("00A4000008") + ISD_AID,
    "select the target as a child DF (P1 01)": bytes.fromhex("00A4010008") + ISD_AID,
    # the file system (EF LwM2M_Bootstrap holds PSKs)
    "select the MF": bytes.fromhex("00A40004023F00"),
    "select by path": bytes.fromhex("00A40804047FF06F01"),
    "read binary": bytes.fromhex("00B0000000"),
    "read binary, extended Le": bytes.fromhex("00B0000000FFFF"),
    "read binary with SM bits": bytes.fromhex("0CB0000000"),
    "read record": bytes.fromhex("00B2010400"),
    "update binary": bytes.fromhex("00D6000001FF"),
    # PIN1
    "verify PIN": bytes.fromhex("0020000108FFFFFFFFFFFFFFFF"),
    "change PIN": bytes.fromhex("002400011031323334FFFFFFFF35363738FFFFFFFF"),
    "disable PIN": bytes.fromhex("002600010831323334FFFFFFFF"),
    "enable PIN": bytes.fromhex("002800010831323334FFFFFFFF"),
    "unblock PIN": bytes.fromhex("002C00011031323334353637383132333435363738"),
    # logical channels: open, close the applet's channel, close "this" channel
    "manage channel open": OPEN_CHANNEL,
    "manage channel close 1": bytes.fromhex("0070800100"),
    "manage channel close 1 (case 1)": bytes.fromhex("00708001"),
    "manage channel close self": bytes.fromhex("00708000"),
    # response chaining belongs to the client
    "get response": bytes.fromhex("00C0000000"),
    # addressing another channel directly (the applet's channel is 1)
    "proprietary, channel 1": bytes.fromhex("81CA9F7F00"),
    "proprietary, channel 3 with SM": bytes.fromhex("87CA9F7F00"),
    "proprietary, channel 4": bytes.fromhex("C0CA9F7F00"),
    "proprietary, channel 5 with SM": bytes.fromhex("E1CA9F7F00"),
    "IoT SAFE GET DATA on the applet's channel": bytes([0x81]) + APPLET_INFO[1:],
    "interindustry, channel 4": bytes.fromhex("40A4040008") + ISD_AID,
    "interindustry, channel 19": bytes.fromhex("4F70800100"),
    # invalid class, malformed lengths
    "CLA FF": bytes.fromhex("FFCA9F7F00"),
    "CLA FF, 4 bytes": bytes.fromhex("FF000000"),
    "short Lc too long": bytes.fromhex("80E2000005AABB"),
    "extended Lc 0": bytes.fromhex("80E2000000000000"),
    "extended Lc mismatch": bytes.fromhex("80E2000000000501"),
    "truncated extended length": bytes.fromhex("80CA9F7F0001"),
}


@pytest.mark.parametrize("command", list(REFUSED.values()), ids=list(REFUSED))
def test_refused_commands_never_reach_the_card(
    card: Card, component: PcscComponent, command: bytes
) -> None:
    handler = SecureComponentObject(component, admin_targets=[ISD_AID])
    sent = len(card.sent)
    for position in ((command,), (GET_CPLC, command), (select(ISD_AID), command)):
        with pytest.raises(AdminScriptRefused):
            check_script(script(*position), ISD_AID)
        with pytest.raises(AdminScriptRefused):
            component.run_admin_script(script(*position), ISD_AID)
        with pytest.raises(BadRequest, match="Admin Script refused"):
            handler.write(0, [opaque(30, script(*position).encode())])
    assert len(card.sent) == sent  # the whole script is refused before anything is sent
    with pytest.raises(MethodNotAllowed):  # and nothing was stored to execute
        handler.execute(0, 32, NONE)


def test_a_refused_target_write_keeps_the_old_script_checked(component: PcscComponent) -> None:
    """A script checked for one target is checked again when the target changes (its SELECT of
    the first target is not a SELECT of the second)."""
    other = bytes.fromhex("A0000000871002FF")
    handler = SecureComponentObject(component, admin_targets=[ISD_AID, other])
    handler.write(0, [opaque(30, script(select(ISD_AID)).encode())])
    with pytest.raises(BadRequest, match="may select only its target A0000000871002FF"):
        handler.write(0, [text(31, other.hex())])
    assert values(handler, 31) == {31: ISD_AID.hex().upper()}


LOOKALIKES = {
    # proprietary-class copies of interindustry commands pass the policy; the security domain
    # on the admin channel must not treat them as the interindustry commands
    "proprietary SELECT of the IoT SAFE applet": select(IOT_SAFE_AID, cla=0x80),
    "GSM-class SELECT of the IoT SAFE applet": select(IOT_SAFE_AID, cla=0xA0),
    "GSM-class SELECT of the MF": bytes.fromhex("A0A40000023F00"),
    "proprietary VERIFY PIN, wrong PIN": bytes.fromhex("80200001083939393939393939"),
    "GSM-class VERIFY CHV1, wrong PIN": bytes.fromhex("A0200001083939393939393939"),
    "proprietary CHANGE PIN": bytes.fromhex("802400011031323334FFFFFFFF39393939FFFFFFFF"),
    "proprietary DISABLE PIN": bytes.fromhex("802600010831323334FFFFFFFF"),
    "proprietary MANAGE CHANNEL close 1": bytes.fromhex("8070800100"),
    "proprietary MANAGE CHANNEL open": bytes.fromhex("8070000001"),
    "proprietary READ BINARY": bytes.fromhex("80B0000000"),
    "GSM-class READ BINARY": bytes.fromhex("A0B0000000"),
    "proprietary GET RESPONSE": bytes.fromhex("80C0000000"),
    "IoT SAFE GET DATA (applet information)": APPLET_INFO,
    "IoT SAFE GET RANDOM": iotsafe.get_random(16, channel=0).encode(),
    "IoT SAFE COMPUTE SIGNATURE INIT": iotsafe.compute_signature_init(
        iotsafe.ObjectRef(id=b"\x01"), channel=0
    ).encode(),
}


def test_proprietary_lookalikes_reach_neither_the_applet_nor_pin_nor_files_nor_channels() -> None:
    card, component = pin_card()
    applet_channel = component._session.channel
    assert applet_channel is not None
    for name, command in LOOKALIKES.items():
        try:
            response = component.run_admin_script(script(command), ISD_AID)
        except AdminScriptRefused:
            continue  # not a security-domain command: never sent
        (answer,) = response.responses
        assert sw(answer) != 0x9000, name
        assert len(answer) == 2, name  # no data: no FCI, no file content, no applet data
    assert card.uicc.state.pin1 == PIN
    assert card.uicc.state.pin1_tries == 3
    assert card.uicc.pin1_verified
    assert applet_channel in card.channels
    assert card.uicc.channels[applet_channel].app == "iotsafe"
    assert len(component.random(8)) == 8  # the client's own session still works
    # the admin channel still has the target selected
    (answer,) = component.run_admin_script(script(GET_CPLC), ISD_AID).responses
    assert sw(answer) == 0x9000


@pytest.mark.parametrize("occupied", [0, 3])
def test_the_applet_session_and_its_scp03_survive_admin_traffic(occupied: int) -> None:
    """INITIALIZE UPDATE, a failed EXTERNAL AUTHENTICATE and a whole SCP03 session of the server
    on the admin channel (also on a channel >= 4) leave the client's SCP03 session with the
    applet working."""
    card = Card()
    component = PcscComponent(card.transmit, scp03_keys=GP_KEYS)
    card.occupy(occupied)
    before = card.channels
    applet_channel = component._session.channel
    host = Scp03Host(GP_KEYS, level=0x33, channel=0)
    first = component.run_admin_script(script(host.initialize_update().encode()), ISD_AID)
    assert sw(first.responses[0]) == 0x9000
    bad = bytes.fromhex("8482330010") + bytes(16)  # EXTERNAL AUTHENTICATE, wrong cryptogram
    second = component.run_admin_script(script(bad), ISD_AID)
    assert sw(second.responses[0]) != 0x9000
    channel = admin_channel(card, before)
    assert channel != applet_channel
    assert channel >= 4 if occupied else channel <= 3
    assert len(component.random(8)) == 8
    host = Scp03Host(GP_KEYS, level=0x33, channel=0)
    third = component.run_admin_script(script(host.initialize_update().encode()), ISD_AID)
    host.process_initialize_update(ResponseApdu.decode(third.responses[0]))
    fourth = component.run_admin_script(script(host.external_authenticate().encode()), ISD_AID)
    host.process_external_authenticate(ResponseApdu.decode(fourth.responses[0]))
    wrapped = host.wrap(CommandApdu.decode(GET_CPLC)).encode()
    fifth = component.run_admin_script(script(wrapped), ISD_AID)
    assert host.unwrap(ResponseApdu.decode(fifth.responses[0])).sw.value == 0x9000
    assert len(component.random(8)) == 8
    component.end_admin_session()
    assert card.channels == before
    assert len(component.random(8)) == 8


FORMS = {
    "case 1": "80CA9F7F",
    "case 2 short, Le 256": "80CA9F7F00",
    "case 2 short, Le 0x2D": "80CA9F7F2D",
    "case 2 extended, Le 65536": "80CA9F7F000000",
    "case 2 extended, Le 256": "80CA9F7F000100",
    "case 3 short": "80E2000003AABBCC",
    "case 3 extended": "80E20000000003AABBCC",
    "case 4 short": "80E2000003AABBCC00",
    "case 4 extended": "80E20000000003AABBCC0000",
    "SM class": "84CA9F7F00",
    "SM class b4-b3 11": "8CCA9F7F00",
    "chaining": "90CA9F7F00",
    "SM and chaining": "94E2000003AABBCC",
    "select the target, no FCI": "00A4040C08A000000151000000",
    "select the target, FCP, Le": "00A4040408A00000015100000000",
    "select the target, extended Lc": "00A40400000008A000000151000000",
}


@pytest.mark.parametrize("occupied", [0, 3], ids=["channel 2", "channel 5"])
def test_what_reaches_the_card_is_what_was_checked(occupied: int) -> None:
    """No parse differential: each command reaches the card byte for byte as written, with only
    the logical channel coded into CLA (GlobalPlatform's coding for channels 4-19)."""
    card = Card()
    component = PcscComponent(card.transmit)
    card.occupy(occupied)
    before = card.channels
    component.run_admin_script(script(GET_CPLC), ISD_AID)
    channel = admin_channel(card, before)
    for name, hexa in FORMS.items():
        raw = bytes.fromhex(hexa)
        (checked,) = check_script(script(raw), ISD_AID)
        sent = len(card.sent)
        component.run_admin_script(script(raw), ISD_AID)
        first = card.sent[sent]
        assert first == bytes([with_channel(raw[0], channel)]) + raw[1:], name
        assert channel_of(first[0]) == channel, name
        moved = CommandApdu.decode(first)
        assert (moved.ins, moved.p1, moved.p2, moved.data, moved.le) == (
            checked.ins,
            checked.p1,
            checked.p2,
            checked.data,
            checked.le,
        ), name
        assert moved.secure_messaging == checked.secure_messaging, name
        assert moved.cla & 0x80 == checked.cla & 0x80, name
        # the client's own GET RESPONSEs stay on the admin channel
        for extra in card.sent[sent + 1 :]:
            assert extra[1] == 0xC0, name
            assert channel_of(extra[0]) == channel, name


def test_no_command_with_cla_ff_reaches_the_card(card: Card, component: PcscComponent) -> None:
    """GlobalPlatform's coding of channel 19 with secure messaging and chaining is FF (PPS,
    and PC/SC readers' own pseudo-APDUs): it never reaches the card (see the xfail below for how
    the script fails)."""
    card.occupy(17)  # the applet's channel is 1: the admin session gets 19
    with pytest.raises(SecureComponentError, match="CLA FF"):
        component.run_admin_script(script(bytes.fromhex("9CCA9F7F00")), ISD_AID)
    assert all(apdu[0] != 0xFF for apdu in card.sent)


def failing(card: Card, how: str) -> None:
    def hook(apdu: bytes) -> bytes | None:
        if apdu[1] == 0xCA and apdu[0] & 0x80:
            if how == "exception":
                raise RuntimeError("driver bug")
            if how == "transport":
                raise TransportError("the reader lost the card")
            if how == "one byte":
                return b"\x90"
            if how == "6C loop":
                return b"\x6c\x10"
        if apdu[1] == 0xC0 and how == "61 loop":
            return b"\x00\x61\x01"
        if apdu[1] == 0xCA and how == "61 loop":
            return b"\x61\x01"
        return None

    card.hook = hook


@pytest.mark.parametrize("how", ["exception", "transport", "one byte", "6C loop", "61 loop"])
def test_card_failures_end_in_status_5_never_in_an_exception(card: Card, how: str) -> None:
    component = PcscComponent(card.transmit)
    handler = SecureComponentObject(component, admin_targets=[ISD_AID])
    handler.write(0, [opaque(30, script(GET_CPLC).encode())])
    handler.execute(0, 32, NONE)
    assert values(handler, 34) == {34: AdminStatus.COMPLETED}
    failing(card, how)
    handler.execute(0, 32, NONE)  # run_now: the runner's exceptions must not escape
    assert values(handler, 33, 34) == {33: b"", 34: AdminStatus.UNAVAILABLE}
    assert len(card.sent) < 1000  # bounded: no endless chaining
    handler.execute(0, 35, NONE)  # ending the session never raises either


def test_target_changes_and_unknown_targets_leave_no_channel_behind(
    card: Card, component: PcscComponent
) -> None:
    other = bytes.fromhex("A0000000871002FF")
    handler = SecureComponentObject(component, admin_targets=[ISD_AID, other])
    before = card.channels
    handler.write(0, [opaque(30, script(GET_CPLC).encode())])
    for _ in range(25):  # more than the card has channels
        handler.write(0, [text(31, other.hex())])
        handler.execute(0, 32, NONE)
        assert values(handler, 34) == {34: AdminStatus.UNKNOWN_APPLICATION}
        assert card.channels == before
        handler.write(0, [text(31, ISD_AID.hex())])
        handler.execute(0, 32, NONE)
        assert values(handler, 34) == {34: AdminStatus.COMPLETED}
        assert len(card.channels - before) == 1
    handler.execute(0, 35, NONE)
    assert card.channels == before
    component.close()
    assert card.channels == {0}


def test_a_reset_card_stops_the_script_without_crashing(card: Card) -> None:
    component = PcscComponent(card.transmit)
    handler = SecureComponentObject(component, admin_targets=[ISD_AID])
    handler.write(0, [opaque(30, script(GET_CPLC).encode())])
    handler.execute(0, 32, NONE)
    card.uicc.reset()  # a power cycle the transport does not report
    handler.execute(0, 32, NONE)
    assert values(handler, 34) == {34: AdminStatus.STOPPED}
    (answer,) = ResponseScript.decode(values(handler, 33)[33]).responses
    assert answer == b"\x68\x81"  # the admin channel is gone: nothing went to another channel


def test_one_run_at_a_time(component: PcscComponent) -> None:
    pending: list[Callable[[], None]] = []

    def later(work: Any, done: Any) -> None:
        pending.append(lambda: done(work(), None))

    handler = SecureComponentObject(component, admin_targets=[ISD_AID], offload=later)
    handler.write(0, [opaque(30, script(GET_CPLC).encode())])
    handler.execute(0, 32, NONE)
    for _ in range(3):
        with pytest.raises(MethodNotAllowed, match="a script or SERAM session is running"):
            handler.execute(0, 32, NONE)
    assert len(pending) == 1
    pending.pop()()
    assert values(handler, 34) == {34: AdminStatus.COMPLETED}


def test_errors_and_reprs_name_no_apdu_data(component: PcscComponent) -> None:
    secret = b"SECRET-KEY-BYTES"
    put_key = bytes([0x80, 0xD8, 0x01, 0x81, len(secret)]) + secret
    assert "SECRET" not in repr(CommandApdu.decode(put_key))
    refused = script(put_key, bytes([0x00, 0xD8, 0x01, 0x81, len(secret)]) + secret)
    with pytest.raises(AdminScriptRefused) as caught:
        check_script(refused, ISD_AID)
    assert "SECRET" not in str(caught.value)
    handler = SecureComponentObject(component, admin_targets=[ISD_AID])
    with pytest.raises(BadRequest) as bad:
        handler.write(0, [opaque(30, refused.encode())])
    assert "SECRET" not in str(bad.value)
    assert "SECRET" not in repr(handler)


# == defects ====================================================================================


def applet_reachable(component: PcscComponent, target: bytes) -> bool:
    """Whether a server, through /33000 on a client configured with ``target``, gets the IoT
    SAFE applet to answer its GET DATA (any IoT SAFE command would do: COMPUTE SIGNATURE with
    the client's key, ...)."""
    try:
        handler = SecureComponentObject(component, admin_targets=[target])
        handler.write(0, [opaque(30, script(APPLET_INFO).encode()), text(31, target.hex())])
    except (ValueError, BadRequest, MethodNotAllowed, SecureComponentError):
        return False  # refused as a target
    handler.execute(0, 32, NONE)
    raw = values(handler, 33)[33]
    if not raw:
        return False
    return any(sw(r) == 0x9000 and len(r) > 2 for r in ResponseScript.decode(raw).responses)


def test_the_iot_safe_applet_is_never_an_admin_target(component: PcscComponent) -> None:
    assert not applet_reachable(component, IOT_SAFE_AID)


def test_a_target_that_prefixes_the_applet_aid_does_not_reach_the_applet(
    component: PcscComponent,
) -> None:
    target = IOT_SAFE_AID[:5]  # A000000559, 5 bytes: a valid AID length for parse_aid
    assert target != IOT_SAFE_AID
    assert not applet_reachable(component, target)


UICC_CLASS_80 = {
    # ETSI TS 102 221 commands in class 80: card-wide, not the security domain's command set
    "TERMINAL PROFILE": "80100000021122",
    "FETCH": "8012000010",
    "TERMINAL RESPONSE": "801400000C810301130082028281830100",
    "ENVELOPE (SMS-PP download)": "80C2000009D1070202828183818100",
    "SUSPEND UICC": "807600000480008000",
}


@pytest.mark.parametrize("command", list(UICC_CLASS_80.values()), ids=list(UICC_CLASS_80))
def test_uicc_class_80_commands_are_not_relayed(command: str) -> None:
    with pytest.raises(AdminScriptRefused):
        check_script(script(bytes.fromhex(command)), ISD_AID)


SELECT_VARIANTS = {
    "chaining bit (CLA 10)": select(ISD_AID, cla=0x10),
    "secure messaging (CLA 0C)": select(ISD_AID, cla=0x0C),
    "RFU class (CLA 20)": select(ISD_AID, cla=0x20),
    "next occurrence (P2 02)": select(ISD_AID, p2=0x02),
    "last occurrence (P2 01)": select(ISD_AID, p2=0x01),
    "previous occurrence (P2 03)": select(ISD_AID, p2=0x03),
}


@pytest.mark.parametrize("command", list(SELECT_VARIANTS.values()), ids=list(SELECT_VARIANTS))
def test_the_target_select_is_plain_and_first_occurrence(command: bytes) -> None:
    with pytest.raises(AdminScriptRefused):
        check_script(script(command), ISD_AID)


@pytest.mark.parametrize("cla", [0xA0, 0xB0, 0xA4])
def test_the_relay_changes_only_the_channel_bits(
    card: Card, component: PcscComponent, cla: int
) -> None:
    raw = bytes([cla]) + GET_CPLC[1:]
    try:
        component.run_admin_script(script(raw), ISD_AID)
    except AdminScriptRefused:
        return  # refusing such a class is a fix too
    sent = [apdu for apdu in card.sent if apdu[1:] == raw[1:]][-1]
    assert sent[0] & ~0x03 == cla & ~0x03


def test_a_script_that_cannot_be_sent_on_the_admin_channel_is_refused_whole(
    card: Card, component: PcscComponent
) -> None:
    card.occupy(17)  # the admin session gets channel 19
    sent = len(card.sent)
    with pytest.raises(AdminScriptRefused):
        component.run_admin_script(script(GET_CPLC, bytes.fromhex("9CCA9F7F00")), ISD_AID)
    assert not [apdu for apdu in card.sent[sent:] if apdu[1:] == GET_CPLC[1:]]


def test_a_failed_target_select_leaves_no_half_open_session(
    card: Card, component: PcscComponent
) -> None:
    before = card.channels

    def garbled(apdu: bytes) -> bytes | None:
        if apdu[1] == 0xA4 and channel_of(apdu[0]) != 0 and ISD_AID in apdu:
            return b"\x6c\x10"  # the card keeps asking for another Le: the chain gives up
        return None

    card.hook = garbled
    with pytest.raises(SecureComponentError):  # which one does not matter
        component.run_admin_script(script(GET_CPLC), ISD_AID)
    card.hook = None
    assert card.channels == before  # no channel left open
    sent = len(card.sent)
    component.run_admin_script(script(GET_CPLC), ISD_AID)
    assert any(apdu[1] == 0xA4 and ISD_AID in apdu for apdu in card.sent[sent:])


def test_after_an_unreported_reset_admin_commands_are_not_wrapped_with_the_applet_keys(
    card: Card,
) -> None:
    component = PcscComponent(card.transmit, scp03_keys=GP_KEYS)
    component.run_admin_script(script(GET_CPLC), ISD_AID)
    card.uicc.reset()  # e.g. a modem's REFRESH behind an AT+CSIM transport
    component.end_admin_session()
    sent = len(card.sent)
    # The card hands out the applet session's channel again: the reset is noticed, the session
    # ends (the client opens the component again), and nothing more goes to the card.
    with pytest.raises(CardRemoved, match="the card was reset"):
        component.run_admin_script(script(GET_CPLC), ISD_AID)
    assert not [apdu for apdu in card.sent[sent:] if apdu[1] == 0xA4]  # no SELECT, wrapped or not
    assert not component.card_present()


def test_a_script_repr_shows_no_apdu_data() -> None:
    secret = b"SECRET-KEY-BYTES"
    put_key = bytes([0x80, 0xD8, 0x01, 0x81, len(secret)]) + secret
    assert "SECRET" not in repr(script(put_key))
