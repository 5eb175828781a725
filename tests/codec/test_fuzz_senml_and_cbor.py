"""Decoders of untrusted bytes raise only CodecError (h11's fuzz invariant, style anchors §2.5).

Every SenML JSON, SenML CBOR and LwM2M CBOR decoder -- node decode and the composite
decoders -- gets ``LWM2M_FUZZ_ITERATIONS`` inputs (20,000 by default; ``make fuzz`` sets
1,000,000) from a seeded ``random.Random``: a third random bytes, a third byte-level mutations of
valid encodings (bit flips, splices, truncations, CBOR/JSON tokens), a third structural mutations
(records and maps changed as data, then serialized), so the deep paths are reached too.
"""

from __future__ import annotations

import json
import math
import os
import random
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import cbor2
import pytest

from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.lwm2m_cbor import Lwm2mCborCodec
from lwm2m.codec.senml import SenmlCodec
from lwm2m.codec.senml_cbor import SenmlCborCodec
from lwm2m.codec.senml_json import SenmlJsonCodec
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Path,
    ResourceType,
    SingleResource,
)

from .senml_strategies import SENML_MODEL

pytestmark = pytest.mark.fuzz

ITERATIONS = int(os.environ.get("LWM2M_FUZZ_ITERATIONS", "20000"))
MODEL = SENML_MODEL
RT = ResourceType

_TEST = ObjectInstance(
    0,
    [
        SingleResource(0, RT.STRING, "héllo"),
        SingleResource(1, RT.INTEGER, -(2**63)),
        SingleResource(2, RT.UNSIGNED_INTEGER, 2**64 - 1),
        SingleResource(3, RT.FLOAT, 1.5),
        SingleResource(4, RT.BOOLEAN, True),
        SingleResource(5, RT.OPAQUE, b"\x00\xff\x10"),
        SingleResource(6, RT.TIME, 1700000000),
        SingleResource(7, RT.OBJLNK, ObjectLink(3, 0)),
        SingleResource(8, RT.CORELNK, "</3/0>"),
        MultipleResource.of(11, RT.INTEGER, {0: 1, 7: -5}),
        MultipleResource.of(13, RT.FLOAT, {1: 2.25}),
        MultipleResource.of(16, RT.TIME, {0: 268435456}),
    ],
)
_DEVICE = ObjectInstance(
    0,
    [
        SingleResource(0, RT.STRING, "Open Mobile Alliance"),
        MultipleResource.of(6, RT.INTEGER, {0: 1, 1: 5}),
        SingleResource(9, RT.INTEGER, 100),
        SingleResource(13, RT.TIME, 1367491215),
    ],
)
#: (request path, node) pairs whose encodings seed the mutations.
NODES: list[tuple[Path, Node]] = [
    (Path(3441, 0), _TEST),
    (Path(3441), ObjectNode(3441, [_TEST, ObjectInstance(2, [SingleResource(0, RT.STRING, "")])])),
    (Path(3, 0), _DEVICE),
    (Path(3, 0, 6), _DEVICE.resources[6]),
    (Path(3, 0, 6, 1), _DEVICE.resources[6].instances[1]),  # type: ignore[union-attr]
    (Path(3441, 0, 5), _TEST.resources[5]),
]
COMPOSITE: dict[Path, Node | None] = {
    Path(3, 0, 9): _DEVICE.resources[9],
    Path(3441, 0): _TEST,
    Path(3, 0, 6, 0): None,
}
GROUPS = [
    TimestampedNodes(None, {Path(3, 0, 9): _DEVICE.resources[9]}),
    TimestampedNodes(1_700_000_000, {Path(3441, 0): _TEST}),
    TimestampedNodes(268_435_456.25, {Path(3, 0, 6): _DEVICE.resources[6]}),
]
PATHS = [Path(3, 0, 9), Path(1, 0), Path(3441), Path()]

_JSON_TOKENS = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"1e999", b"NaN", b"-", b"0", b"null",
                b'"bn"', b'"n"', b'"v"', b'"vs"', b'"vd"', b'"vlo"', b'"bt"', b'"t"', b"\\u0000",
                b"\xff", b"\xc3", b'"x_"', b"true", b"99999999999999999999999"]  # fmt: skip
_CBOR_HEADS = (0x00, 0x17, 0x18, 0x1B, 0x1C, 0x20, 0x3B, 0x40, 0x5B, 0x5F, 0x60, 0x7F, 0x80,
               0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xC4, 0xD8, 0xD9, 0xF4, 0xF5, 0xF6, 0xF7,
               0xF9, 0xFA, 0xFB, 0xFC, 0xFF)  # fmt: skip
_CBOR_TOKENS = [bytes([b]) for b in _CBOR_HEADS] + [
    b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff",  # the largest uint
    b"\x9b\x7f\xff\xff\xff\xff\xff\xff\xff",  # an array claiming 2**63 items
    b"\xd8\x1c",  # tag 28 (shareable)
    b"\xd8\x1d\x00",  # tag 29 (shared reference)
    b"\xc4\x82",  # a decimal fraction
]


def _random_item(rng: random.Random, depth: int = 0) -> Any:
    """A random CBOR-able item, biased to what the decoders look at."""
    kinds = 13 if depth < 3 else 10
    match rng.randrange(kinds):
        case 0:
            return rng.choice([0, 1, -1, 2, 3, 65534, 65535, 2**63, -(2**63) - 1, 2**64, 2**100])
        case 1:
            return rng.choice([1.5, -0.0, math.inf, -math.inf, math.nan, 1e308, 268435456.5])
        case 2:
            return rng.choice(["", "/", "/3/0/", "0", "9", "6/0", "/3/0/9", "/65535", "3:0",
                               "65536:0", "x_", "/3441/0/", "00", "+/8=", "q83v"])  # fmt: skip
        case 3:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(5)))
        case 4:
            return rng.choice([True, False, None])
        case 5:
            return Decimal(rng.choice(["1E+999999", "4.5", "-1E-999", "268435456", "1E+20"]))
        case 6:
            return cbor2.CBORTag(rng.choice([0, 1, 2, 4, 5, 30, 99, 258]), _random_item(rng, 3))
        case 7:
            return datetime(2020, 1, 1, tzinfo=UTC)
        case 8:
            return cbor2.CBORSimpleValue(rng.choice([0, 19, 32, 255]))
        case 9:
            return rng.choice([-2, -3, 0, 2, 3, 4, 6, 8, "vlo", -1, -5, "bn", "n"])
        case 10 | 11:
            return [_random_item(rng, depth + 1) for _ in range(rng.randrange(4))]
        case _:
            return {_random_key(rng): _random_item(rng, depth + 1) for _ in range(rng.randrange(4))}


def _random_key(rng: random.Random) -> Any:
    return rng.choice([-2, -3, 0, 2, 3, 4, 6, 8, "vlo", -1, -5, 1, 5, "x_", 3, 9, 65534,
                       (3, 0), (3441, 0, 11), (), (1, 2, 3, 4, 5), 2.0, True])  # fmt: skip


def _mutate_structure(rng: random.Random, item: Any, depth: int = 0) -> Any:
    """A copy of a decoded item with one random change somewhere inside."""
    if isinstance(item, list) and item and depth < 4:
        item = list(item)
        i = rng.randrange(len(item))
        match rng.randrange(5):
            case 0:
                item[i] = _mutate_structure(rng, item[i], depth + 1)
            case 1:
                item.insert(i, item[rng.randrange(len(item))])
            case 2:
                del item[i]
            case 3:
                item[i] = _random_item(rng)
            case _:
                rng.shuffle(item)
        return item
    if isinstance(item, dict) and item and depth < 5:
        item = dict(item)
        key = rng.choice(list(item))
        match rng.randrange(5):
            case 0:
                item[key] = _mutate_structure(rng, item[key], depth + 1)
            case 1:
                del item[key]
            case 2:
                item[_random_key(rng)] = _random_item(rng)
            case 3:
                item[key] = _random_item(rng)
            case _:
                item[_random_key(rng)] = item.pop(key)
        return item
    return _random_item(rng)


def _mutate_bytes(
    rng: random.Random, data: bytes, corpus: list[bytes], tokens: list[bytes]
) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        if not buf:
            buf.extend(rng.choice(tokens))
            continue
        i = rng.randrange(len(buf))
        match rng.randrange(8):
            case 0:
                buf[i] ^= 1 << rng.randrange(8)
            case 1:
                buf[i] = rng.randrange(256)
            case 2:
                buf[i:i] = rng.choice(tokens)
            case 3:
                del buf[i : i + rng.randrange(1, 8)]
            case 4:
                j = rng.randrange(len(buf))
                buf[i:i] = buf[j : j + rng.randrange(1, 16)]
            case 5:
                del buf[i:]
            case 6:
                other = rng.choice(corpus)
                buf[i:] = other[rng.randrange(len(other) + 1) :]
            case _:
                buf[i : i + 1] = rng.choice(tokens)
    return bytes(buf)


def _senml_corpus(codec: SenmlCodec) -> list[bytes]:
    corpus = [codec.encode(node, path, MODEL) for path, node in NODES]
    corpus.append(codec.encode_nodes(COMPOSITE, MODEL))
    corpus.append(codec.encode_timestamped(GROUPS, MODEL))
    corpus.append(codec.encode_paths(PATHS))
    return corpus


def _lwm2m_cbor_corpus() -> list[bytes]:
    codec = Lwm2mCborCodec()
    corpus = [codec.encode(node, path, MODEL) for path, node in NODES]
    corpus.append(codec.encode_nodes(COMPOSITE, MODEL))
    corpus.append(bytes.fromhex("bf9f0dffbf9f181affbf9f01ff01ffff9f0effbf9f181bffbf9f02ff02ffffff"))
    return corpus


def _run(
    name: str,
    decode: Callable[[bytes], object],
    corpus: list[bytes],
    *,
    tokens: list[bytes],
    loads: Callable[[bytes], Any],
    dumps: Callable[[Any], bytes],
    seed: int,
) -> None:
    for data in corpus:  # the seeds themselves decode (for the decoders they were made for)
        try:
            decode(data)
        except CodecError:
            pass
    structured = [loads(data) for data in corpus if data]
    rng = random.Random(seed)
    for n in range(ITERATIONS):
        kind = n % 3
        if kind == 0:
            data = rng.randbytes(rng.randrange(0, 64))
            if rng.random() < 0.5:
                data = rng.choice(tokens) + data
        elif kind == 1:
            data = _mutate_bytes(rng, rng.choice(corpus), corpus, tokens)
        else:
            try:
                data = dumps(_mutate_structure(rng, rng.choice(structured)))
            except (TypeError, ValueError, cbor2.CBOREncodeError):
                continue
        try:
            decode(data)
        except CodecError:
            pass
        except Exception as exc:
            pytest.fail(f"{name}: {type(exc).__name__}: {exc} for input {data.hex()}")


def _json_dumps(item: Any) -> bytes:
    return json.dumps(item, default=str).encode()


_SENML = [SenmlJsonCodec(), SenmlCborCodec()]
_DECODERS: list[tuple[str, Callable[[SenmlCodec], Callable[[bytes], object]]]] = [
    ("decode /3441/0", lambda c: lambda d: c.decode(d, Path(3441, 0), MODEL)),
    ("decode /3441", lambda c: lambda d: c.decode(d, Path(3441), MODEL)),
    ("decode_paths", lambda c: c.decode_paths),
    ("decode_nodes", lambda c: lambda d: c.decode_nodes(d, MODEL)),
    ("decode_nodes(paths)", lambda c: lambda d: c.decode_nodes(d, MODEL, paths=list(COMPOSITE))),
    ("decode_timestamped", lambda c: lambda d: c.decode_timestamped(d, MODEL, now=1e9)),
]


@pytest.mark.parametrize("codec", _SENML, ids=["senml-json", "senml-cbor"])
@pytest.mark.parametrize(("name", "make"), _DECODERS, ids=[d[0] for d in _DECODERS])
def test_senml_decoders_raise_only_codec_error(
    codec: SenmlCodec, name: str, make: Callable[[SenmlCodec], Callable[[bytes], object]]
) -> None:
    is_json = isinstance(codec, SenmlJsonCodec)
    _run(
        f"{type(codec).__name__}.{name}",
        make(codec),
        _senml_corpus(codec),
        tokens=_JSON_TOKENS if is_json else _CBOR_TOKENS,
        loads=json.loads if is_json else cbor2.loads,
        dumps=_json_dumps if is_json else cbor2.dumps,
        seed=zlib.crc32(f"{name}/{is_json}".encode()),
    )


_LWM2M_CBOR = Lwm2mCborCodec()


@pytest.mark.parametrize(
    ("name", "decode"),
    [
        ("decode /3441/0", lambda d: _LWM2M_CBOR.decode(d, Path(3441, 0), MODEL)),
        ("decode /3/0/6", lambda d: _LWM2M_CBOR.decode(d, Path(3, 0, 6), MODEL)),
        ("decode_nodes", lambda d: _LWM2M_CBOR.decode_nodes(d, MODEL)),
        (
            "decode_nodes(paths)",
            lambda d: _LWM2M_CBOR.decode_nodes(d, MODEL, paths=list(COMPOSITE)),
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_lwm2m_cbor_decoders_raise_only_codec_error(
    name: str, decode: Callable[[bytes], object]
) -> None:
    _run(
        f"Lwm2mCborCodec.{name}",
        decode,
        _lwm2m_cbor_corpus(),
        tokens=_CBOR_TOKENS,
        loads=cbor2.loads,
        dumps=cbor2.dumps,
        seed=zlib.crc32(name.encode()),
    )
