"""The VSE's IoT SAFE administrative extension (CREATE / PUT / DELETE OBJECT — not IoT.05) and
PIN1 (VERIFY PIN), answered by the card OS in memory: status words as ISO/IEC 7816-4 and
TS 102 221 use them."""

from __future__ import annotations

import pytest

from lwm2m.secure.pcsc import iotsafe
from lwm2m.secure.pcsc.apdu import CommandApdu, ResponseApdu
from lwm2m.secure.pcsc.iotsafe import ObjectKind, ObjectRef
from lwm2m.vse.state import VseState
from lwm2m.vse.uicc import VirtualUicc


def card_on_channel(**iot_safe: object) -> tuple[VirtualUicc, int]:
    state = VseState.default()
    for name, value in iot_safe.items():
        setattr(state.iot_safe, name, value)
    card = VirtualUicc(state)
    channel = card.process(bytes.fromhex("0070000001"))[0]
    assert card.process(iotsafe.select_applet(channel=channel).encode())[-2:] == b"\x90\x00"
    return card, channel


def sw(card: VirtualUicc, command: CommandApdu) -> int:
    return ResponseApdu.decode(card.process(command.encode())).sw.value


def test_create_put_delete() -> None:
    card, ch = card_on_channel()
    files = card.state.iot_safe.files
    new = b"LW\x01\x02\x03\x04\x05\x06"
    assert sw(card, iotsafe.create_object(ObjectKind.FILE, new, channel=ch, label=b"f")) == 0x9000
    assert files[-1] == {
        "id": new.hex().upper(),
        "label": "f",
        "admin": True,
        "data": "",
        "usage": 1,
    }
    # same id or same label again: 6A89
    assert sw(card, iotsafe.create_object(ObjectKind.FILE, new, channel=ch)) == 0x6A89
    assert sw(card, iotsafe.create_object(ObjectKind.FILE, b"\x77", channel=ch, label=b"f")) == (
        0x6A89
    )
    content = bytes(range(256)) * 3
    for block in iotsafe.put_object(ObjectKind.FILE, ObjectRef(id=new), content, channel=ch):
        assert sw(card, block) == 0x9000
    assert bytes.fromhex(files[-1]["data"]) == content
    assert sw(card, iotsafe.delete_object(ObjectKind.FILE, ObjectRef(id=new), channel=ch)) == 0x9000
    assert sw(card, iotsafe.delete_object(ObjectKind.FILE, ObjectRef(id=new), channel=ch)) == 0x6A88


@pytest.mark.parametrize(
    ("kind", "content", "expected"),
    [
        (ObjectKind.PRIVATE_KEY, bytes(31) + b"\x01", 0x9000),
        (ObjectKind.PRIVATE_KEY, bytes(32), 0x6A80),  # zero is no private key
        (ObjectKind.PRIVATE_KEY, b"\xff" * 32, 0x6A80),  # not below the group order
        (ObjectKind.PRIVATE_KEY, b"\x01", 0x6A80),
        (ObjectKind.SECRET, b"\x01" * 255, 0x9000),
        (ObjectKind.SECRET, b"", 0x6A80),
        (ObjectKind.SECRET, b"\x01" * 256, 0x6A80),
        (ObjectKind.FILE, b"", 0x9000),
    ],
)
def test_put_values(kind: ObjectKind, content: bytes, expected: int) -> None:
    card, ch = card_on_channel()
    new = b"LW" + bytes(5) + b"\x09"
    assert sw(card, iotsafe.create_object(kind, new, channel=ch)) == 0x9000
    blocks = iotsafe.put_object(kind, ObjectRef(id=new), content, channel=ch)
    for block in blocks[:-1]:
        assert sw(card, block) == 0x9000
    assert sw(card, blocks[-1]) == expected


def test_refusals() -> None:
    card, ch = card_on_channel(max_secrets=1)
    issuer_file = ObjectRef(label=b"psk")
    # issuer containers are neither rewritten nor deleted
    (block,) = iotsafe.put_object(ObjectKind.FILE, issuer_file, b"x", channel=ch)
    assert sw(card, block) == 0x6985
    assert sw(card, iotsafe.delete_object(ObjectKind.FILE, issuer_file, channel=ch)) == 0x6985
    # full: the default card has one secret and room for one
    assert sw(card, iotsafe.create_object(ObjectKind.SECRET, b"\x55", channel=ch)) == 0x6A84
    # a continuation block without a first one; a block without content; the wrong kind
    assert sw(card, CommandApdu(0x80 | ch, 0xE2, 0x80, 0xC3, b"\xd0\x00")) == 0x6985
    no_content = CommandApdu(
        0x80 | ch, 0xE2, 0x80, 0xC3, ObjectRef(label=b"f").encode(ObjectKind.FILE)
    )
    assert sw(card, no_content) == 0x6A88  # unknown container first
    assert sw(card, CommandApdu(0x80 | ch, 0xE2, 0x80, 0xC2, b"\x85\x01\x10")) == 0x6A86
    assert sw(card, CommandApdu(0x80 | ch, 0xE0, 0x99, 0x00, b"\x83\x01\x01")) == 0x6A86
    # bad CREATE data: no id, oversized label, label not UTF-8
    assert sw(card, CommandApdu(0x80 | ch, 0xE0, 0xC3, 0x00, b"\x73\x01a")) == 0x6A80
    long_label = b"\x83\x01\x42\x73\x3d" + b"a" * 61
    assert sw(card, CommandApdu(0x80 | ch, 0xE0, 0xC3, 0x00, long_label)) == 0x6A80
    assert sw(card, CommandApdu(0x80 | ch, 0xE0, 0xC3, 0x00, b"\x83\x01\x42\x73\x01\xff")) == (
        0x6A80
    )


def test_file_size_limit_and_pending_write() -> None:
    card, ch = card_on_channel(max_file_size=300)
    new = b"\x42"
    assert sw(card, iotsafe.create_object(ObjectKind.FILE, new, channel=ch)) == 0x9000
    blocks = iotsafe.put_object(ObjectKind.FILE, ObjectRef(id=new), bytes(400), channel=ch)
    assert [sw(card, b) for b in blocks] == [0x9000, 0x6A84]
    # a write whose container is deleted before its last block
    blocks = iotsafe.put_object(ObjectKind.FILE, ObjectRef(id=new), bytes(250), channel=ch)
    assert sw(card, blocks[0]) == 0x9000
    assert sw(card, iotsafe.delete_object(ObjectKind.FILE, ObjectRef(id=new), channel=ch)) == 0x9000
    assert sw(card, blocks[1]) == 0x6A88


def test_extension_off_or_behind_scp03() -> None:
    card, ch = card_on_channel(admin_extension=False)
    assert sw(card, iotsafe.create_object(ObjectKind.FILE, b"\x42", channel=ch)) == 0x6D00
    info = iotsafe.parse_applet_info(
        card.process(iotsafe.get_applet_info(channel=ch).encode())[:-2]
    )
    assert info.admin_extension is None
    card, ch = card_on_channel(admin_secure_channel=True)
    assert sw(card, iotsafe.create_object(ObjectKind.FILE, b"\x42", channel=ch)) == 0x6982


def test_verify_pin() -> None:
    state = VseState.default()
    state.pin1 = "1234"
    saved: list[int] = []
    card = VirtualUicc(state, save=lambda s: saved.append(s.pin1_tries))
    ch = card.process(bytes.fromhex("0070000001"))[0]
    card.process(iotsafe.select_applet(channel=ch).encode())
    list_objects = iotsafe.get_object_list(channel=ch).encode()
    assert card.process(list_objects) == b"\x69\x82"  # PIN1 not verified
    # the applet information needs no PIN
    assert card.process(iotsafe.get_applet_info(channel=ch).encode())[-2:] == b"\x90\x00"

    def verify(data: str) -> bytes:
        return card.process(bytes.fromhex("00200001" + (f"08{data}" if data else "")))

    pin = b"1234".hex() + "FF" * 4
    assert verify("") == b"\x63\xc3"
    assert verify("31313131FFFFFFFF") == b"\x63\xc2"
    assert saved == [2]
    assert verify(pin) == b"\x90\x00"
    assert saved == [2, 3]
    assert verify("") == b"\x90\x00"
    assert card.process(list_objects)[-2:] == b"\x90\x00"
    assert card.process(bytes.fromhex("0020000104 31323334")) == b"\x67\x00"
    assert card.process(bytes.fromhex("00200002")) == b"\x6a\x88"
    assert card.process(bytes.fromhex("00200101")) == b"\x6a\x86"
    card.reset()
    assert verify("") == b"\x63\xc3"  # verification ends with the reset
    for left in (2, 1, 0):
        assert verify("30303030FFFFFFFF") == bytes([0x63, 0xC0 | left])
    assert verify(pin) == b"\x69\x83"
    assert verify("") == b"\x69\x83"
    state.pin1 = None
    assert verify(pin) == b"\x69\x84"


def test_channels_keep_their_own_applet_state() -> None:
    """A second channel selecting the applet (e.g. an identification read) does not end a
    signature session or a write in progress on the first."""
    card, one = card_on_channel()
    new = b"\x42"
    assert sw(card, iotsafe.create_object(ObjectKind.PRIVATE_KEY, new, channel=one)) == 0x9000
    assert card.process(iotsafe.generate_key_pair(ObjectRef(id=new), channel=one).encode())[:1]
    init = iotsafe.compute_signature_init(ObjectRef(id=new), channel=one)
    assert sw(card, init) == 0x9000
    two = card.process(bytes.fromhex("0070000001"))[0]
    assert card.process(iotsafe.select_applet(channel=two).encode())[-2:] == b"\x90\x00"
    update = iotsafe.compute_signature_update(channel=one, final_hash=bytes(32))
    assert card.process(update.encode())[:1] == b"\x61"  # the signature is ready
    # closing a channel ends its own state only
    assert sw(card, iotsafe.compute_signature_init(ObjectRef(id=new), channel=two)) == 0x9000
    assert card.process(bytes([0x00, 0x70, 0x80, two])) == b"\x90\x00"
    update = iotsafe.compute_signature_update(channel=one, final_hash=bytes(32))
    assert sw(card, update) == 0x6985  # channel one had no session left (it was used above)
