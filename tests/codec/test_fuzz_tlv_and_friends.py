"""Decoders of untrusted bytes raise only CodecError (style-anchors §2.5, h11's fuzz invariant).

Every decoder of this group (TLV raw and mapped, plain text, opaque, CBOR, OMA JSON, link format
and Write-Attributes queries) gets random bytes and mutations of valid encodings from a seeded
``random.Random``: 20,000 inputs each in the normal run, ``LWM2M_FUZZ_ITERATIONS`` when set
(``make fuzz`` sets 1,000,000).

When a decode succeeds, the node must encode again and decode to the same node: what we accept
we can also write.
"""

from __future__ import annotations

import os
import random
import zlib
from collections.abc import Callable, Iterator

import pytest

from lwm2m.codec.cbor import CborCodec
from lwm2m.codec.link import Attributes, Link, decode_links, encode_links
from lwm2m.codec.oma_json import OmaJsonCodec
from lwm2m.codec.opaque import OpaqueCodec
from lwm2m.codec.text import TextCodec
from lwm2m.codec.tlv import TlvCodec, decode_tlvs, encode_tlvs
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
    Value,
)

from .conftest import make_core_model
from .strategies import TEST_OBJECT, load_vectors

pytestmark = pytest.mark.fuzz

ITERATIONS = int(os.environ.get("LWM2M_FUZZ_ITERATIONS") or 20_000)
MODEL = make_core_model()

SAMPLE_VALUES: dict[ResourceType, list[Value]] = {
    ResourceType.STRING: ["", "héllo €", "x" * 300],
    ResourceType.INTEGER: [0, -300, 2**40, -(2**63)],
    ResourceType.UNSIGNED_INTEGER: [0, 255, 2**64 - 1],
    ResourceType.FLOAT: [1.5, 0.1, -0.0, 1e300],
    ResourceType.BOOLEAN: [True, False],
    ResourceType.OPAQUE: [b"", b"\x00\xff\x10", bytes(range(40))],
    ResourceType.TIME: [1367491215, -1],
    ResourceType.OBJLNK: [ObjectLink(3, 0), ObjectLink(65535, 65535)],
    ResourceType.CORELNK: ['</1>;ver="1.1"'],
}

# (path, node) pairs of every node kind of the test object, each value type at least once.
SAMPLES: list[tuple[Path, Node]] = []
for _definition in TEST_OBJECT.resources.values():
    if _definition.type is ResourceType.NONE:
        continue
    for _index, _value in enumerate(SAMPLE_VALUES[_definition.type]):
        _at = Path(TEST_OBJECT.id, _index, _definition.id)
        if _definition.multiple:
            SAMPLES.append((_at.child(7), ResourceInstance(7, _definition.type, _value)))
            SAMPLES.append(
                (_at, MultipleResource.of(_definition.id, _definition.type, {0: _value}))
            )
        else:
            SAMPLES.append((_at, SingleResource(_definition.id, _definition.type, _value)))
_instance = ObjectInstance(
    1, [n for p, n in SAMPLES if p.ids[1] == 0 and isinstance(n, SingleResource | MultipleResource)]
)
SAMPLES.append((Path(TEST_OBJECT.id, 1), _instance))
SAMPLES.append((Path(TEST_OBJECT.id), ObjectNode(TEST_OBJECT.id, [_instance, ObjectInstance(2)])))
LEAF_SAMPLES = [(p, n) for p, n in SAMPLES if isinstance(n, SingleResource | ResourceInstance)]

# Paths to decode at: every level, with and without model trouble.
TREE_PATHS = [Path.parse(p) for p in ("/3", "/3/0", "/3/0/6", "/3/0/6/1", "/3/0/9", "/2", "/1/0")]
TREE_PATHS += sorted({p for p, _ in SAMPLES})
LEAF_PATHS = [*sorted({p for p, _ in LEAF_SAMPLES}), Path(3, 0, 0), Path(5, 0, 0), Path(3, 0, 6)]

# Fragments worth inserting: structure bytes of each format.
TOKENS = [
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\xc1",
    b"\x08\x00",
    b"\x86\x06",
    b"\xf9\x7c\x00",
    b"\x9f",
    b"\xbf",
    b"\xc0",
    b"\xd8\x01",
    b'{"',
    b"[",
    b'"',
    b",",
    b":",
    b";",
    b"<",
    b">",
    b"=",
    b"\\",
    b"1e400",
    b"-",
    b".",
    b"true",
    b"null",
    b'"n":"',
    b'"v":',
    b'"sv":"',
    b'"t":',
    b"/65535",
    b"\\ud800",
    b"%",
    b"&",
]


def _mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        choice = rng.randrange(8)
        pos = rng.randint(0, len(buf))
        if choice == 0 and buf:  # flip a bit
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif choice == 1 and buf:  # set a byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif choice == 2:  # insert random bytes
            buf[pos:pos] = rng.randbytes(rng.randint(1, 4))
        elif choice == 3 and buf:  # delete a span
            del buf[pos : pos + rng.randint(1, 8)]
        elif choice == 4:  # truncate
            del buf[pos:]
        elif choice == 5 and buf:  # duplicate a span
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start : start + rng.randint(1, 16)]
        elif choice == 6:  # splice another input
            other = rng.choice(corpus)
            buf[pos:] = other[rng.randint(0, len(other)) :]
        else:  # insert a structural token
            buf[pos:pos] = rng.choice(TOKENS)
    return bytes(buf)


Corpus = list[tuple[Path | None, bytes]]


def _inputs(seed: str, corpus: Corpus) -> Iterator[tuple[Path | None, bytes]]:
    """(path, input) pairs: a quarter random bytes, the rest mutations of the corpus, decoded at
    their own path most of the time (None: the checker picks a path)."""
    rng = random.Random(zlib.crc32(seed.encode()))
    datas = [d for _, d in corpus]
    for i in range(ITERATIONS):
        if i % 4 == 0:
            yield None, rng.randbytes(rng.randint(0, 48))
        else:
            path, data = rng.choice(corpus)
            yield (path if rng.random() < 0.8 else None), _mutate(rng, data, datas)


def _same(a: Node, b: Node) -> bool:
    return a == b or repr(a) == repr(b)  # repr: NaN != NaN


def _fuzz(
    name: str,
    corpus: Corpus,
    check: Callable[[random.Random, Path | None, bytes], None],
) -> None:
    assert corpus
    rng = random.Random(name)
    for path, data in _inputs(name, corpus):
        try:
            check(rng, path, data)
        except CodecError:
            pass
        except Exception as exc:  # pragma: no cover - reported as a failure with the input
            pytest.fail(f"{name}: {type(exc).__name__}: {exc} for {path} input {data.hex()}")


NodeCodecs = TlvCodec | TextCodec | OpaqueCodec | CborCodec | OmaJsonCodec


def _node_codec_check(
    codec: NodeCodecs, paths: list[Path]
) -> Callable[[random.Random, Path | None, bytes], None]:
    def check(rng: random.Random, path: Path | None, data: bytes) -> None:
        at = path if path is not None else rng.choice(paths)
        node = codec.decode(data, at, MODEL)
        again = codec.decode(codec.encode(node, at, MODEL), at, MODEL)
        assert _same(again, node), (data.hex(), at, node, again)

    return check


def _corpus(codec: NodeCodecs) -> Corpus:
    samples = SAMPLES if isinstance(codec, TlvCodec | OmaJsonCodec) else LEAF_SAMPLES
    corpus: Corpus = []
    for path, node in samples:
        try:
            corpus.append((path, codec.encode(node, path, MODEL)))
        except CodecError:  # opaque refuses non-opaque values
            pass
    return corpus


def test_fuzz_tlv() -> None:
    codec = TlvCodec()
    vectors: Corpus = [
        (Path.parse(v["path"]), bytes.fromhex(v["hex"])) for _, v in load_vectors("tlv")
    ]
    _fuzz("tlv", _corpus(codec) + vectors, _node_codec_check(codec, TREE_PATHS))


def test_fuzz_tlv_raw_framing() -> None:
    corpus: Corpus = [(None, bytes.fromhex(v["hex"])) for _, v in load_vectors("tlv")]

    def check(rng: random.Random, path: Path | None, data: bytes) -> None:
        tlvs = decode_tlvs(data)
        assert decode_tlvs(encode_tlvs(tlvs)) == tlvs

    _fuzz("tlv-raw", corpus, check)


def test_fuzz_text() -> None:
    codec = TextCodec()
    _fuzz("text", _corpus(codec), _node_codec_check(codec, LEAF_PATHS))


def test_fuzz_opaque() -> None:
    codec = OpaqueCodec()
    _fuzz("opaque", _corpus(codec), _node_codec_check(codec, LEAF_PATHS))


def test_fuzz_cbor() -> None:
    codec = CborCodec()
    _fuzz("cbor", _corpus(codec), _node_codec_check(codec, LEAF_PATHS))


def test_fuzz_oma_json() -> None:
    codec = OmaJsonCodec()
    corpus = _corpus(codec)
    corpus += [(Path.parse(v["path"]), v["json"].encode()) for _, v in load_vectors("oma_json")]
    history = b'{"bn":"/3441/0/","bt":25462634,"e":[{"n":"3","v":22.9,"t":-30}]}'
    corpus.append((Path(3441, 0), history))
    _fuzz("oma-json", corpus, _node_codec_check(codec, TREE_PATHS))


def test_fuzz_link_format() -> None:
    corpus: Corpus = [
        (None, b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</5>;ver=1.1'),
        (None, b"</3/0>;pmin=10,</3/0/1>,</3/0/7>;dim=3;gt=50;lt=42.2;st=0.5;epmin=1;epmax=9"),
        (None, b'</>;lwm2m="1.1",</0/1>;ssid=101;uri="coaps://example.org:5684"'),
        (None, b'<a>;title="x, y; \\"z\\"";flag;ct="60 110"'),
    ]
    accessors = [
        "path", "version", "lwm2m_version", "dim", "ssid", "server_uri", "content_formats",
        "resource_types", "attributes", "pmin", "pmax", "gt", "lt", "st", "epmin", "epmax",
    ]  # fmt: skip

    def check(rng: random.Random, path: Path | None, data: bytes) -> None:
        links = decode_links(data)
        assert decode_links(encode_links(links)) == links
        for link in links:
            try:
                getattr(link, rng.choice(accessors))
            except CodecError:
                pass

    _fuzz("link", corpus, check)


def test_fuzz_attribute_queries() -> None:
    corpus: Corpus = [
        (None, b"pmin=10&pmax=60&gt=50&lt=20.5&st=5&epmin=1&epmax=30"),
        (None, b"pmin&gt=1e3&st=0"),
    ]

    def check(rng: random.Random, path: Path | None, data: bytes) -> None:
        query = data.decode("utf-8", errors="replace")
        attributes = Attributes.from_query(query, path=Path(3, 0, 7))
        assert Attributes.from_query(attributes.to_query()) == attributes
        assert Link("/3/0/7", attributes.to_params()).attributes == attributes

    _fuzz("attributes", corpus, check)
