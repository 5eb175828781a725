"""The OSCORE option value (RFC 8613 §2, §6.1, §6.3) and the package's docstring examples."""

from __future__ import annotations

import doctest
import importlib

import pytest

from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code, OptionNumber
from lwm2m.oscore import OptionDecodeError, OscoreOption, OscoreUsageError, oscore_option

h = bytes.fromhex


@pytest.mark.parametrize(
    ("value", "option"),
    [
        # RFC 8613 §6.3, examples 1-5
        ("090525", OscoreOption(partial_iv=b"\x05", kid=b"\x25")),
        ("0900", OscoreOption(partial_iv=b"\x00", kid=b"")),
        ("19050544616c656b", OscoreOption(partial_iv=b"\x05", kid=b"", kid_context=b"Dalek")),
        ("", OscoreOption()),
        ("0107", OscoreOption(partial_iv=b"\x07")),
        # Appendix C
        ("0914", OscoreOption(partial_iv=b"\x14", kid=b"")),
        ("091400", OscoreOption(partial_iv=b"\x14", kid=b"\x00")),
        ("19140837cbf3210017a2d3", OscoreOption(b"\x14", b"", h("37cbf3210017a2d3"))),
        ("0100", OscoreOption(partial_iv=b"\x00")),
        # kid only, kid context only, empty kid context, 5-byte Partial IV
        ("08", OscoreOption(kid=b"")),
        ("08abcd", OscoreOption(kid=b"\xab\xcd")),
        ("1003414243", OscoreOption(kid_context=b"ABC")),
        ("1800", OscoreOption(kid=b"", kid_context=b"")),
        ("05ffffffffff", OscoreOption(partial_iv=b"\xff" * 5)),
        ("020014", OscoreOption(partial_iv=b"\x00\x14")),  # leading zeros are kept as sent
    ],
)
def test_encode_and_decode(value: str, option: OscoreOption) -> None:
    assert option.encode().hex() == value
    assert OscoreOption.decode(h(value)) == option


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("20", "reserved flag"),
        ("4001", "reserved flag"),
        ("8900", "reserved flag"),
        ("00", "flag byte 0x00"),
        ("0000", "flag byte 0x00"),
        ("06000000000000", "reserved Partial IV length 6"),
        ("07", "reserved Partial IV length 7"),
        ("02aa", "truncated Partial IV"),
        ("05aabbccdd", "truncated Partial IV"),
        ("10", "missing 'kid context' length"),
        ("1114", "missing 'kid context' length"),
        ("1002aa", "truncated 'kid context'"),
        ("1a000003aa", "truncated 'kid context'"),
        ("0114ff", "1 bytes after the last field"),
        ("1000aa", "1 bytes after the last field"),
    ],
)
def test_decode_rejects(value: str, reason: str) -> None:
    with pytest.raises(OptionDecodeError, match=reason) as info:
        OscoreOption.decode(h(value))
    assert info.value.response_code == Code.BAD_OPTION
    assert info.value.diagnostic == "Failed to decode COSE"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"partial_iv": b""},
        {"partial_iv": bytes(6)},
        {"kid_context": bytes(256)},
    ],
)
def test_construction_rejects_unencodable_values(kwargs: dict[str, bytes]) -> None:
    with pytest.raises(OscoreUsageError):
        OscoreOption(**kwargs)


def test_longest_kid_context_round_trips() -> None:
    option = OscoreOption(partial_iv=b"\x01", kid=b"k", kid_context=bytes(range(255)))
    assert OscoreOption.decode(option.encode()) == option
    assert option.encode()[:3] == b"\x19\x01\xff"


def test_oscore_option_of_a_message() -> None:
    plain = Message(Code.GET, uri_path="/a")
    assert oscore_option(plain) is None
    empty = Message(Code.CHANGED, b"x", options=[(OptionNumber.OSCORE, b"")])
    assert oscore_option(empty) == OscoreOption()
    request = Message(Code.POST, b"x", options=[(OptionNumber.OSCORE, h("0914"))])
    assert oscore_option(request) == OscoreOption(partial_iv=b"\x14", kid=b"")
    bad = Message(Code.POST, b"x", options=[(OptionNumber.OSCORE, h("e0"))])
    with pytest.raises(OptionDecodeError):
        oscore_option(bad)


def test_repeated_oscore_option_is_malformed() -> None:
    twice = Message(
        Code.POST, b"x", options=[(OptionNumber.OSCORE, h("0914")), (OptionNumber.OSCORE, b"")]
    )
    with pytest.raises(OptionDecodeError, match="2 OSCORE options"):
        oscore_option(twice)


def test_option_is_a_frozen_value() -> None:
    option = OscoreOption(partial_iv=b"\x01")
    with pytest.raises(AttributeError):
        option.kid = b"x"  # type: ignore[misc]
    assert option == OscoreOption(partial_iv=b"\x01")
    assert hash(option) == hash(OscoreOption(partial_iv=b"\x01"))


MODULES = [
    "lwm2m.oscore.algorithms",
    "lwm2m.oscore.context",
    "lwm2m.oscore.cose",
    "lwm2m.oscore.option",
    "lwm2m.oscore.secret",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
