"""The C accelerator of SenML CBOR decoding agrees with the Python decoder, and never breaks.

``lwm2m.codec._senml_cbor_fast`` decodes an object or instance payload written the usual way
straight into nodes and answers None for anything else; ``SenmlCborCodec.decode`` then runs the
Python decoder (``SenmlCodec.decode``), the reference. These tests hold it to that:

- generated nodes of every type, encoded by our encoder: the accelerator takes every one it
  should (no object link) and builds exactly the Python decoder's node;
- hand-made payloads of every shape it must leave to Python: None from the accelerator, and the
  codec's answer (node or CodecError) is the Python decoder's;
- random and mutated bytes: the accelerator answers None or the Python decoder's node;
- repeated decodes, accepted and refused, leak nothing (tracemalloc);
- the same file compiled with AddressSanitizer and UndefinedBehaviorSanitizer runs the mutation
  fuzz in a subprocess: an out-of-bounds read of the input or a use-after-free aborts it.

Under CI=true the accelerator must be built (``make test`` builds it with the package); without it
elsewhere these tests are skipped, with the reason.
"""

from __future__ import annotations

import ctypes
import math
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tracemalloc
from pathlib import Path as FsPath
from types import ModuleType
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings

import lwm2m.codec
from lwm2m.codec import senml_cbor
from lwm2m.codec.senml import SenmlCodec
from lwm2m.codec.senml_cbor import SenmlCborCodec
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectNode,
    Path,
    ResourceInstance,
    ResourceType,
    SingleResource,
)

from .senml_strategies import SENML_MODEL, senml_paths_and_nodes

RT = ResourceType
MODEL = SENML_MODEL
CODEC = SenmlCborCodec()
SOURCE = FsPath(senml_cbor.__file__).with_name("_senml_cbor_fast.c")
ITERATIONS = int(os.environ.get("LWM2M_FUZZ_ITERATIONS") or 20_000)


def test_built_under_ci() -> None:
    """CI must measure and test the accelerated decoder, not silently the Python one."""
    if os.environ.get("CI") != "true":
        pytest.skip("only required under CI=true")
    assert senml_cbor.ACCELERATED, "lwm2m.codec._senml_cbor_fast was not built"


if not senml_cbor.ACCELERATED:  # pragma: no cover - the build always has it (test above)
    pytest.skip("the C accelerator is not built here", allow_module_level=True)

FAST: ModuleType = senml_cbor._FAST  # type: ignore[assignment]


EXACT_BUFFERS = False
"""Set by the AddressSanitizer run: hand the accelerator each input in an allocation of exactly
its size (a bytes object carries a NUL after its data, which would hide a read one past the end).
"""


def fast(data: bytes, path: Path) -> Node | None:
    """The accelerator's answer alone."""
    if EXACT_BUFFERS and len(data) > 16:  # ctypes keeps up to 16 bytes inside its object
        data = memoryview((ctypes.c_char * len(data)).from_buffer_copy(data))  # type: ignore[assignment]
    ids = path.ids
    definition = MODEL.object_definition(ids[0])
    assert definition is not None
    info = senml_cbor._fast_info(definition.resources)
    return FAST.decode(data, ids[0], ids[1] if len(ids) == 2 else -1, info)  # type: ignore[no-any-return]


def reference(data: bytes, path: Path) -> Node | CodecError:
    """The Python decoder's answer (its node or its error)."""
    try:
        return SenmlCodec.decode(CODEC, data, path, MODEL)
    except CodecError as exc:
        return exc


def same(a: object, b: object) -> bool:
    """Node equality that also holds for NaN values (nodes compare their values with ==)."""
    return a == b or _nan_key(a) == _nan_key(b)


def _nan_key(node: object) -> object:
    if isinstance(node, ObjectNode):
        return ("O", node.id, tuple((k, _nan_key(v)) for k, v in node.instances.items()))
    if isinstance(node, ObjectInstance):
        return ("I", node.id, tuple((k, _nan_key(v)) for k, v in node.resources.items()))
    if isinstance(node, MultipleResource):
        return ("M", node.id, node.type, tuple((k, _nan_key(v)) for k, v in node.instances.items()))
    value = getattr(node, "value", None)
    if isinstance(value, float) and math.isnan(value):
        value = "nan"
    return (type(node).__name__, getattr(node, "id", None), getattr(node, "type", None), value)


def has_objlnk(node: Node) -> bool:
    if isinstance(node, ObjectNode):
        return any(has_objlnk(i) for i in node.instances.values())
    if isinstance(node, ObjectInstance):
        return any(has_objlnk(r) for r in node.resources.values())
    return getattr(node, "type", None) is RT.OBJLNK


# -- what the accelerator takes ------------------------------------------------------------------

DEVICE = ObjectInstance(
    0,
    [
        SingleResource(0, RT.STRING, "Open Mobile Alliance"),
        MultipleResource.of(6, RT.INTEGER, {0: 1, 1: 5}),
        SingleResource(9, RT.INTEGER, 100),
        SingleResource(13, RT.TIME, 1367491215),
    ],
)


def test_device_instance_and_object() -> None:
    data = CODEC.encode(DEVICE, Path(3, 0), MODEL)
    node = fast(data, Path(3, 0))
    assert node == DEVICE
    assert type(node) is ObjectInstance
    assert type(node.resources) is type(DEVICE.resources)  # a read-only mapping, as Python's
    with pytest.raises(TypeError):
        node.resources[1] = node.resources[0]  # type: ignore[index]
    obj = ObjectNode(3, [DEVICE])
    assert fast(CODEC.encode(obj, Path(3), MODEL), Path(3)) == obj
    assert CODEC.decode(data, Path(3, 0), MODEL) == DEVICE


@settings(max_examples=400, deadline=None)
@given(senml_paths_and_nodes())
def test_generated_nodes_agree(path_and_node: tuple[Path, Node]) -> None:
    path, node = path_and_node
    if len(path.ids) > 2:
        return  # resources go to the Python decoder without asking the accelerator
    data = CODEC.encode(node, path, MODEL)
    expected = reference(data, path)
    got = fast(data, path)
    if has_objlnk(node) or not data or data == b"\x80":
        assert got is None  # object links are converted from text: left to Python
    else:
        assert got is not None, cbor2.loads(data)
        assert same(got, expected)
        assert type(got) is type(expected)
    assert same(CODEC.decode(data, path, MODEL), expected)


def test_every_float_width_and_integer_bound() -> None:
    records = [
        {-2: "/3441/0/", 0: "1", 2: -(2**63)},
        {0: "2", 2: 2**64 - 1},
        {0: "13/0", 2: 1.5},
    ]
    data = cbor2.dumps(records)
    assert fast(data, Path(3441, 0)) == reference(data, Path(3441, 0))
    # the same float as half, single and double precision
    for head in (b"\xf9\x3e\x00", b"\xfa\x3f\xc0\x00\x00", b"\xfb\x3f\xf8\x00\x00\x00\x00\x00\x00"):
        raw = b"\x81\xa3\x21\x68/3441/0/\x00\x613\x02" + head
        node = fast(raw, Path(3441, 0))
        assert isinstance(node, ObjectInstance)
        assert node.resources[3].value == 1.5  # type: ignore[union-attr]
        assert node == reference(raw, Path(3441, 0))


# -- what it leaves to Python --------------------------------------------------------------------

BN = "/3441/0/"


def _c(records: Any) -> bytes:
    return cbor2.dumps(records)


LEFT_TO_PYTHON: dict[str, bytes] = {
    "empty": b"",
    "empty array": b"\x80",
    "not an array": _c({0: "1"}),
    "indefinite array": b"\x9f" + _c({-2: BN, 0: "1", 2: 1})[1:] + b"\xff",
    "trailing bytes": _c([{-2: BN, 0: "1", 2: 1}]) + b"\x00",
    "truncated": _c([{-2: BN, 0: "0", 3: "abc"}])[:-1],
    "a record before bn": _c([{0: "1", 2: 1}, {-2: BN, 0: "2", 2: 1}]),
    "bn of another object": _c([{-2: "/3/0/", 0: "1", 2: 1}]),
    "bn not canonical": _c([{-2: "/3441/00/", 0: "1", 2: 1}]),
    "bn without the slash": _c([{-2: "/3441/0", 0: "1", 2: 1}]),
    "bn bytes": _c([{-2: BN.encode(), 0: "1", 2: 1}]),
    "name not canonical": _c([{-2: BN, 0: "01", 2: 1}]),
    "name of three ids": _c([{-2: BN, 0: "11/0/1", 2: 1}]),
    "name too large": _c([{-2: BN, 0: "65535", 2: 1}]),
    "unknown resource": _c([{-2: BN, 0: "99", 2: 1}]),
    "multiple without instance": _c([{-2: BN, 0: "11", 2: 1}]),
    "single with instance": _c([{-2: BN, 0: "1/0", 2: 1}]),
    "duplicate resource": _c([{-2: BN, 0: "1", 2: 1}, {0: "1", 2: 2}]),
    "resources out of order": _c([{-2: BN, 0: "2", 2: 1}, {0: "1", 2: 2}]),
    "instances out of order": _c([{-2: BN, 0: "11/1", 2: 1}, {0: "11/0", 2: 2}]),
    "a multiple split in two runs": _c(
        [{-2: BN, 0: "11/0", 2: 1}, {0: "12/0", 2: 1.0}, {0: "11/1", 2: 2}]
    ),
    "time field": _c([{-2: BN, 0: "1", 2: 1, 6: 5}]),
    "base time": _c([{-2: BN, -3: 5, 0: "1", 2: 1}]),
    "a text key": _c([{-2: BN, 0: "1", "v": 1}]),
    "wrong value label": _c([{-2: BN, 0: "1", 3: "1"}]),
    "no value": _c([{-2: BN, 0: "1"}, {0: "2"}]),
    "two values": _c([{-2: BN, 0: "1", 2: 1}, {0: "2", 2: 1, 3: "x"}]),
    "integer too large": _c([{-2: BN, 0: "1", 2: 2**63}]),
    "integer too small": _c([{-2: BN, 0: "1", 2: -(2**63) - 1}]),
    "negative unsigned": _c([{-2: BN, 0: "2", 2: -1}]),
    "integer for a float": _c([{-2: BN, 0: "3", 2: 1}]),
    "float for an integer": _c([{-2: BN, 0: "1", 2: 1.0}]),
    "invalid UTF-8": b"\x81\xa3\x21\x68/3441/0/\x00\x610\x03\x62\xc3\x28",
    "object link": _c([{-2: BN, 0: "7", "vlo": "3:0"}]),
    "tagged value": _c([{-2: BN, 0: "6", 2: cbor2.CBORTag(1, 5)}]),
    "simple value for a boolean": b"\x81\xa3\x21\x68/3441/0/\x00\x614\x04\xf0",
    "null for a boolean": b"\x81\xa3\x21\x68/3441/0/\x00\x614\x04\xf6",
    "a second instance for an instance path": _c(
        [{-2: BN, 0: "1", 2: 1}, {-2: "/3441/1/", 0: "1", 2: 1}]
    ),
    "the same instance twice": _c([{-2: BN, 0: "1", 2: 1}, {-2: BN, 0: "2", 2: 1}]),
    "an array as a record": _c([[BN, "1", 1]]),
    "duplicate key": b"\x81\xa3\x21\x68/3441/0/\x00\x611\x00\x611",
}


@pytest.mark.parametrize("case", sorted(LEFT_TO_PYTHON))
def test_left_to_python(case: str) -> None:
    data = LEFT_TO_PYTHON[case]
    assert fast(data, Path(3441, 0)) is None
    expected = reference(data, Path(3441, 0))
    try:
        got: Node | CodecError = CODEC.decode(data, Path(3441, 0), MODEL)
    except CodecError as exc:
        got = exc
    if isinstance(expected, CodecError):
        assert isinstance(got, CodecError)
        assert str(got) == str(expected)
    else:
        assert got == expected


def test_instance_path_mismatch() -> None:
    data = _c([{-2: BN, 0: "1", 2: 1}])
    assert fast(data, Path(3441, 1)) is None
    assert fast(data, Path(3441, 0)) is not None


def test_setup_checks_the_node_classes() -> None:
    class Plain:  # ids as class attributes, not slots
        id = 0
        instances = None

    with pytest.raises(TypeError, match=r"Plain\.id is not an object slot"):
        FAST.setup(Plain, ObjectInstance, SingleResource, MultipleResource, ResourceInstance)
    # a failed setup refuses to decode until set up again
    with pytest.raises(RuntimeError, match="setup"):
        FAST.decode(b"\x80", 3441, 0, {})
    senml_cbor._accelerator()  # sets it up again, as at import
    assert fast(_c([{-2: BN, 0: "1", 2: 1}]), Path(3441, 0)) is not None


def test_rinfo_must_be_well_formed() -> None:
    with pytest.raises(TypeError):
        FAST.decode(_c([{-2: BN, 0: "1", 2: 1}]), 3441, 0, {1: (False, 1)})


# -- fuzz ----------------------------------------------------------------------------------------

SEEDS = [
    (Path(3, 0), DEVICE),
    (Path(3), ObjectNode(3, [DEVICE, ObjectInstance(1, [SingleResource(0, RT.STRING, "x")])])),
    (
        Path(3441, 0),
        ObjectInstance(
            0,
            [
                SingleResource(0, RT.STRING, "héllo"),
                SingleResource(1, RT.INTEGER, -5),
                SingleResource(2, RT.UNSIGNED_INTEGER, 2**64 - 1),
                SingleResource(3, RT.FLOAT, 1.5),
                SingleResource(4, RT.BOOLEAN, True),
                SingleResource(5, RT.OPAQUE, b"\x00\xff"),
                MultipleResource.of(11, RT.INTEGER, {0: 1, 7: -5}),
                MultipleResource.of(15, RT.OPAQUE, {1: b"", 2: b"z"}),
            ],
        ),
    ),
]


HEADS = (0x00, 0x17, 0x18, 0x1B, 0x1F, 0x3B, 0x5B, 0x7B, 0x9B, 0xBB, 0xF5, 0xF9, 0xFB, 0xFF)


def mutations(rng: random.Random, seeds: list[bytes], count: int) -> list[bytes]:
    """Random bytes, and valid payloads with bytes flipped, set, inserted, dropped or cut."""
    out: list[bytes] = []
    for i in range(count):
        if i % 4 == 0:
            out.append(rng.randbytes(rng.randrange(1, 64)))
            continue
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            op = rng.randrange(5)
            at = rng.randrange(len(data)) if data else 0
            if op == 0 and data:
                data[at] ^= 1 << rng.randrange(8)
            elif op == 1 and data:
                data[at] = rng.choice((*HEADS, rng.randrange(256)))
            elif op == 2:
                data[at:at] = rng.randbytes(rng.randrange(1, 4))
            elif op == 3 and data:
                del data[at : at + rng.randrange(1, 4)]
            else:
                del data[rng.randrange(len(data) + 1) :]
        out.append(bytes(data))
    return out


@pytest.mark.fuzz
def test_fuzz_agrees_with_python() -> None:
    rng = random.Random(0x5E4D1)
    seeds = {path: CODEC.encode(node, path, MODEL) for path, node in SEEDS}
    accepted = 0
    for path, seed in seeds.items():
        for data in mutations(rng, [seed], ITERATIONS // len(seeds)):
            got = fast(data, path)
            if got is None:
                continue
            accepted += 1
            expected = reference(data, path)
            assert not isinstance(expected, CodecError), (data.hex(), expected)
            assert same(got, expected), data.hex()
    assert accepted > ITERATIONS // 50  # the mutations keep reaching the building code


def test_no_leak() -> None:
    """Accepted and refused payloads, and Python-level failures, leave no memory behind."""
    good = CODEC.encode(SEEDS[2][1], Path(3441, 0), MODEL)
    payloads = [good, good[:-1], LEFT_TO_PYTHON["resources out of order"]]
    payloads += [LEFT_TO_PYTHON["invalid UTF-8"], CODEC.encode(SEEDS[1][1], Path(3), MODEL)]

    def run() -> None:
        for _ in range(500):
            for data in payloads:
                fast(data, Path(3441, 0))
                fast(data, Path(3))

    run()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 20_000  # 5,000 decodes; a leak of one object each would be ~250 KB


# -- AddressSanitizer build ----------------------------------------------------------------------

ASAN_SCRIPT = textwrap.dedent(
    """
    import importlib.machinery, importlib.util, sys
    sys.path[:0] = [sys.argv[2]]
    spec = importlib.util.spec_from_file_location("_senml_cbor_fast", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from lwm2m.codec import senml_cbor
    senml_cbor._FAST = module
    from tests.codec import test_senml_cbor_fast as t
    t.FAST = module
    t.EXACT_BUFFERS = True
    module.setup(*t.NODE_CLASSES)
    t.test_device_instance_and_object()
    for case in t.LEFT_TO_PYTHON:
        t.test_left_to_python(case)
    t.test_fuzz_agrees_with_python()
    print("asan-ok")
    """
)
NODE_CLASSES = (ObjectNode, ObjectInstance, SingleResource, MultipleResource, ResourceInstance)


def _runtime(name: str) -> str | None:
    found = subprocess.run(
        ["gcc", f"-print-file-name={name}"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


def test_fuzz_under_address_sanitizer(tmp_path: FsPath) -> None:
    if shutil.which("gcc") is None:  # pragma: no cover - make test's machines have gcc
        pytest.fail("gcc is needed to build the accelerator with AddressSanitizer")
    asan = _runtime("libasan.so")
    assert asan is not None, "gcc has no AddressSanitizer runtime (libasan)"
    so = tmp_path / ("_senml_cbor_fast" + sysconfig.get_config_var("EXT_SUFFIX"))
    include = sysconfig.get_paths()["include"]
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{include}",
         str(SOURCE), "-o", str(so)],
        check=True,
    )  # fmt: skip
    env = {
        **os.environ,
        "LD_PRELOAD": asan,
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "PYTHONMALLOC": "malloc",  # every object its own allocation: over-reads are caught
        "LWM2M_FUZZ_ITERATIONS": str(min(ITERATIONS, 20_000)),
    }
    root = FsPath(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", ASAN_SCRIPT, str(so), str(root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "asan-ok" in done.stdout


def test_left_out_on_request_or_when_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LWM2M_PURE_PYTHON", "1")
    assert senml_cbor._accelerator() is None
    monkeypatch.delenv("LWM2M_PURE_PYTHON")
    monkeypatch.setitem(sys.modules, "lwm2m.codec._senml_cbor_fast", None)  # import fails
    monkeypatch.delattr(lwm2m.codec, "_senml_cbor_fast")
    assert senml_cbor._accelerator() is None
    monkeypatch.undo()
    assert senml_cbor._accelerator() is FAST  # and set up again, as at import
