"""RangeEnumeration as a check on written values (lwm2m.model.ranges; Core §7.2).

The forms come from the OMA registry (test data, loaded below): the parser must understand the
unambiguous ones and answer None, never an exception or a guess, for the rest."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m.errors import DdfError
from lwm2m.model.ddf import load_ddf
from lwm2m.model.ranges import ValueRange, value_range
from lwm2m.model.values import ResourceType

RT = ResourceType
INT, UINT, FLOAT, STRING, OPAQUE = (
    RT.INTEGER,
    RT.UNSIGNED_INTEGER,
    RT.FLOAT,
    RT.STRING,
    RT.OPAQUE,
)


@pytest.mark.parametrize(
    ("text", "type_", "inside", "outside"),
    [
        ("0..100", INT, [0, 50, 100], [-1, 101]),
        ("-24..24", INT, [-24, 0, 24], [-25, 25]),
        ("1..65534", INT, [1, 65534], [0, 65535]),
        ("0..18446744073709551615", UINT, [0, 2**64 - 1], [2**64, -1]),
        ("0..247, 255", INT, [0, 247, 255], [248, 254, 256]),
        ("1...15", INT, [1, 15], [0, 16]),  # three dots, as some registry files write it
        ("0.000001..1.0", FLOAT, [0.000001, 0.5, 1.0], [0.0, 1.0000001]),
        ("0; 3.8..20.5", FLOAT, [0.0, 3.8, 20.5], [1.0, 20.6]),
        ("-100.0..100.0", FLOAT, [-100.0, 100], [-100.5, 100.01]),
        ("0..255 bytes", STRING, ["", "a" * 255], ["a" * 256, "é" * 128]),  # UTF-8 bytes
        ("1..64 Bytes", OPAQUE, [b"x", bytes(64)], [b"", bytes(65)]),
        ("0..255", STRING, ["x" * 255], ["x" * 256]),  # a string's range is its length
        ("6 bytes", OPAQUE, [bytes(6)], [bytes(5), bytes(7)]),
        ("16, 32 or 48 bytes", OPAQUE, [bytes(16), bytes(32), bytes(48)], [bytes(24), b""]),
    ],
)
def test_understood_forms(
    text: str, type_: ResourceType, inside: list[object], outside: list[object]
) -> None:
    allowed = value_range(text, type_)
    assert isinstance(allowed, ValueRange)
    assert allowed.text == text
    assert [v for v in inside if not allowed.admits(v)] == []
    assert [v for v in outside if allowed.admits(v)] == []


@pytest.mark.parametrize(
    ("text", "type_"),
    [
        ("", INT),
        ("8-Bits", INT),
        ("16-bit", INT),
        ("2 Instances", INT),
        ("255", INT),  # a maximum, or the only value?
        ("0, 1, 2", INT),  # an enumeration without interval: left to the application
        ("0: RELEASED\n\t1: PRESSED\n\t2: FAULT", UINT),
        ("ON;OFF", FLOAT),
        ("The possible values are those listed in the LwM2M Core Specification", STRING),
        ("64", STRING),  # a length, a maximum?
        ("10,26", STRING),
        ("0..10 bytes", INT),  # a unit on a number
        ("0.5..3", INT),  # a decimal bound on an integer
        ("0.5..3 bytes", OPAQUE),
        ("5..1", INT),  # reversed: not guessed at
        ("-30..-120", INT),
        ("0..100", RT.BOOLEAN),  # no range check for these types
        ("0..100", RT.TIME),
        ("0..100", RT.OBJLNK),
        ("-1..10", STRING),  # a negative length
    ],
)
def test_other_forms_are_not_checked(text: str, type_: ResourceType) -> None:
    assert value_range(text, type_) is None


def test_values_of_another_kind_pass_to_the_type_check() -> None:
    numbers = value_range("0..10", INT)
    lengths = value_range("0..2 bytes", OPAQUE)
    assert numbers is not None
    assert lengths is not None
    assert numbers.admits("500")  # not a number: the type check's business
    assert numbers.admits(True) is True  # a bool is not an Integer value
    assert lengths.admits(12345)


def test_describe_names_the_value_or_only_the_length() -> None:
    numbers = value_range("0..4", INT)
    lengths = value_range("16, 32 or 48 bytes", OPAQUE)
    assert numbers is not None
    assert lengths is not None
    assert numbers.describe(9) == "9 is outside the range '0..4'"
    secret = b"\x13\x37" * 10
    message = lengths.describe(secret)
    assert message == "20 bytes is outside the range '16, 32 or 48 bytes'"
    assert secret.hex() not in message
    assert lengths.describe("abc") == "3 bytes is outside the range '16, 32 or 48 bytes'"


@given(st.text(max_size=40), st.sampled_from(list(RT)))
def test_any_text_gives_a_range_or_none(text: str, type_: ResourceType) -> None:
    allowed = value_range(text, type_)
    if allowed is not None:
        assert allowed.intervals
        assert all(lo <= hi for lo, hi in allowed.intervals)


def test_every_range_of_the_oma_registry(oma_registry: Path) -> None:
    """All RangeEnumerations of the registry's loadable files: numeric ranges of numeric
    resources are understood (but for prose), and nothing raises."""
    seen: Counter[str] = Counter()
    numeric_missed: set[str] = set()
    for path in sorted(oma_registry.glob("**/*.xml")):
        try:
            definitions = load_ddf(path)
        except DdfError:
            continue
        for definition in definitions:
            for rdef in definition.resources.values():
                text = rdef.range_enumeration.strip()
                if not text:
                    continue
                allowed = value_range(text, rdef.type)
                seen["understood" if allowed is not None else "not checked"] += 1
                if allowed is None and rdef.type in (INT, UINT, FLOAT) and ".." in text:
                    numeric_missed.add(text)
    assert seen["understood"] > 1000, seen
    # the numeric ranges with ".." that are not understood are prose, or reversed
    prose = {t for t in numeric_missed if any(c.isalpha() for c in t) or ":" in t or "=" in t}
    assert numeric_missed - prose == {"-30..-120"}
