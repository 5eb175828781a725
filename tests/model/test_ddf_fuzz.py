"""Fuzzing the DDF loader: whatever the bytes, parse_ddf returns definitions or raises DdfError.

Four sources of input: random bytes, byte-level mutations of valid documents (hypothesis and a
seeded loop), XML token soup, and structurally valid documents with random element texts. Any
other exception (KeyError, ValueError, RecursionError, ...) fails the test.
"""

from __future__ import annotations

import random
from importlib import resources

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwm2m.errors import DdfError
from lwm2m.model import ObjectDefinition
from lwm2m.model.ddf import parse_ddf

from .ddfdocs import ITEM_DEFAULTS, OBJECT_DEFAULTS, doc, item, obj

pytestmark = pytest.mark.fuzz

SEEDS: list[bytes] = [
    entry.read_bytes()
    for entry in sorted(
        (resources.files("lwm2m.model") / "objects").iterdir(), key=lambda e: e.name
    )
    if entry.name.endswith(".xml")
] + [doc(), doc(obj(item("0"), item("4", Operations="E", Type="")), obj(ObjectID="9"))]

FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_reject(data: bytes) -> None:
    error: DdfError | None = None
    try:
        result = parse_ddf(data, "fuzz.xml")
    except DdfError as exc:
        error = exc
    if error is not None:
        assert error.file == "fuzz.xml"
        assert str(error).startswith("fuzz.xml")
    else:
        assert result
        assert all(isinstance(d, ObjectDefinition) for d in result)


def mutate(data: bytes, rnd: random.Random, rounds: int) -> bytes:
    buf = bytearray(data)
    for _ in range(rounds):
        op = rnd.randrange(6)
        pos = rnd.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a byte
            buf[min(pos, len(buf) - 1)] = rnd.randrange(256)
        elif op == 1:  # delete a slice
            del buf[pos : pos + rnd.randrange(1, 64)]
        elif op == 2:  # insert random bytes
            buf[pos:pos] = rnd.randbytes(rnd.randrange(1, 16))
        elif op == 3:  # duplicate a slice elsewhere
            start = rnd.randrange(len(buf) + 1)
            buf[pos:pos] = buf[start : start + rnd.randrange(1, 200)]
        elif op == 4:  # insert a DDF-ish token
            buf[pos:pos] = rnd.choice(TOKENS)
        else:  # truncate
            del buf[pos:]
    return bytes(buf)


TOKENS = [
    b'<Item ID="1">',
    b"</Item>",
    b"<Resources>",
    b"</Resources>",
    b"<Object>",
    b"</Object>",
    b"<Name>x</Name>",
    b"<Type>",
    b"</Type>",
    b"Integer",
    b"E",
    b"RW",
    b"65535",
    b"-1",
    b"&amp;",
    b"&lol;",
    b"&#0;",
    b"&#x10FFFF;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b'<!DOCTYPE x [<!ENTITY a "b">]>',
    b'<?xml version="1.0" encoding="latin-1"?>',
    b"<?pi data?>",
    b'xmlns="urn:x"',
    b"\xef\xbb\xbf",
    b"\x00",
    b"\xff",
]


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    parse_or_reject(data)


@FUZZ
@given(st.sampled_from(SEEDS), st.randoms(use_true_random=False), st.integers(1, 8))
def test_mutated_documents(seed: bytes, rnd: random.Random, rounds: int) -> None:
    parse_or_reject(mutate(seed, rnd, rounds))


@FUZZ
@given(st.lists(st.sampled_from(TOKENS) | st.binary(max_size=8), max_size=40))
def test_token_soup(tokens: list[bytes]) -> None:
    parse_or_reject(b"<LWM2M>" + b"".join(tokens) + b"</LWM2M>")
    parse_or_reject(b"".join(tokens))


texts = (
    st.none()
    | st.sampled_from(["", " ", "1", "65535", "R", "E", "Single", "x"])
    | st.text(max_size=12)
)
safe_texts = texts.map(
    lambda t: (
        t
        if t is None
        else "".join(c for c in t if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF)
    )
)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.none() | st.sampled_from(["0", "5", "65534", "65535", "x", " 7 "]),
            st.fixed_dictionaries(dict.fromkeys(ITEM_DEFAULTS, safe_texts)),
        ),
        max_size=4,
    ),
    st.fixed_dictionaries(dict.fromkeys(OBJECT_DEFAULTS, safe_texts)),
    st.integers(1, 3),
)
def test_structured_documents(
    items: list[tuple[str | None, dict[str, str | None]]],
    fields: dict[str, str | None],
    copies: int,
) -> None:
    body = obj(*[item(id_, **item_fields) for id_, item_fields in items], **fields)
    parse_or_reject(doc(*[body] * copies))


def test_seeded_mutations() -> None:
    """A fixed, reproducible batch of 3000 mutated documents (no hypothesis overhead)."""
    rnd = random.Random(20240611)
    for _ in range(3000):
        parse_or_reject(mutate(rnd.choice(SEEDS), rnd, rnd.randrange(1, 6)))
