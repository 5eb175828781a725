"""Review of the SenML CBOR C accelerator (``lwm2m.codec._senml_cbor_fast``).

Two tests pin the defects the review found (fixed: a non-bool ``multiple`` flag in the model,
and the node classes shared by every interpreter of the process); the others pin corner cases
that were checked and found sound: CBOR encodings the accelerator must read exactly
as cbor2 does, float bit patterns, and reference counting on the MemoryError and Python-error
paths (fault injection with ``_testcapi.set_nomemory``).
"""

from __future__ import annotations

import gc
import math
import struct
import subprocess
import sys
import textwrap
from pathlib import Path as FsPath

import cbor2
import pytest

from lwm2m.codec import senml_cbor
from lwm2m.codec.senml import SenmlCodec
from lwm2m.codec.senml_cbor import SenmlCborCodec
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    ObjectDefinition,
    ObjectInstance,
    ObjectNode,
    Operations,
    Path,
    ResourceDefinition,
    ResourceInstance,
    ResourceType,
    SingleResource,
)
from lwm2m.model.registry import ModelRegistry

from .test_senml_cbor_fast import CODEC, MODEL, SEEDS, fast, reference, same

if not senml_cbor.ACCELERATED:  # pragma: no cover - the build always has it
    pytest.skip("the C accelerator is not built here", allow_module_level=True)

RT = ResourceType
P = Path(3441, 0)
BN = b"\x68/3441/0/"  # text(8) "/3441/0/"


def _record(name: bytes, label: bytes, value: bytes, bn: bytes = b"\x21" + BN) -> bytes:
    """One-record pack: a map of bn, n and one value (all items given as raw CBOR)."""
    return b"\x81\xa3" + bn + b"\x00" + bytes([0x60 | len(name)]) + name + label + value


def _agree(data: bytes, path: Path = P) -> object:
    """The accelerator's node, which must be the Python decoder's (value types included)."""
    got = fast(data, path)
    expected = reference(data, path)
    assert got is not None, data.hex()
    assert not isinstance(expected, CodecError), expected
    assert same(got, expected)
    assert repr(got) == repr(expected)  # True vs 1, 1 vs 1.0, -0.0 vs 0.0
    return got


# -- defects -------------------------------------------------------------------------------------


def test_non_bool_multiple_flag_agrees_with_python() -> None:
    # ResourceDefinition does not validate `multiple` (annotated bool); 1 is a natural spelling
    definition = ObjectDefinition(
        40000,
        "X",
        resources=[ResourceDefinition(1, "M", Operations.R, 1, False, RT.INTEGER)],  # type: ignore[arg-type]
    )
    model = ModelRegistry()
    model.add(definition)
    data = cbor2.dumps([{-2: "/40000/0/", 0: "1", 2: 5}])
    with pytest.raises(CodecError, match="multiple-instance resource"):
        SenmlCodec.decode(CODEC, data, Path(40000, 0), model)  # the reference refuses it
    with pytest.raises(CodecError, match="multiple-instance resource"):
        SenmlCborCodec().decode(data, Path(40000, 0), model)  # the accelerator takes it


_SUBINTERPRETER_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import cbor2
    try:
        import _interpreters as interpreters  # 3.13
        make = lambda: interpreters.create("legacy")
    except ImportError:
        import _xxsubinterpreters as interpreters
        if sys.version_info >= (3, 12):
            make = lambda: interpreters.create(isolated=False)
        else:
            make = interpreters.create
    from lwm2m.codec.senml_cbor import ACCELERATED, SenmlCborCodec
    from lwm2m.model import ObjectInstance, Path
    from tests.codec.senml_strategies import SENML_MODEL
    assert ACCELERATED
    data = cbor2.dumps([{-2: "/3441/0/", 0: "1", 2: 5}])
    codec = SenmlCborCodec()
    assert type(codec.decode(data, Path(3441, 0), SENML_MODEL)) is ObjectInstance
    sub = make()
    interpreters.run_string(sub, "import lwm2m.codec.senml_cbor")
    node = codec.decode(data, Path(3441, 0), SENML_MODEL)
    print("main-classes" if type(node) is ObjectInstance else "foreign-classes", flush=True)
    os._exit(0)  # the main interpreter now holds objects of the other one: no teardown
    """
)


def test_subinterpreter_import_keeps_main_interpreter_classes() -> None:
    if sys.version_info < (3, 12):
        pytest.importorskip("_xxsubinterpreters")
    root = FsPath(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _SUBINTERPRETER_SCRIPT],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
        check=False,
    )
    if "ModuleNotFoundError: No module named '_" in done.stderr:  # pragma: no cover
        pytest.skip("no subinterpreter module in this Python")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "main-classes"


# -- pinned: what was checked and found sound ----------------------------------------------------

CORNER_CASES: dict[str, bytes] = {
    "integer in 8 bytes": _record(b"1", b"\x02", b"\x1b" + (5).to_bytes(8, "big")),
    "bn label -2 in long form": _record(b"1", b"\x02", b"\x05", bn=b"\x38\x01" + BN),
    "bn label -2 in 8 bytes": _record(
        b"1", b"\x02", b"\x05", bn=b"\x3b" + b"\0" * 7 + b"\x01" + BN
    ),
    "value label in long form": _record(b"1", b"\x18\x02", b"\x05"),
    "bn length in long form": b"\x81\xa3\x21\x78\x08/3441/0/\x00\x611\x02\x05",
    "map count in long form": b"\x81\xb8\x03\x21" + BN + b"\x00\x611\x02\x05",
    "array count in long form": b"\x98\x01\xa3\x21" + BN + b"\x00\x611\x02\x05",
    "value before bn and n": b"\x81\xa3\x02\x05\x21" + BN + b"\x00\x611",
    "int64 min": _record(b"1", b"\x02", b"\x3b" + b"\x7f" + b"\xff" * 7),
    "uint64 max": _record(b"2", b"\x02", b"\x1b" + b"\xff" * 8),
    "negative time": _record(b"6", b"\x02", b"\x20"),
    "empty string": _record(b"0", b"\x03", b"\x60"),
    "NUL in a string": _record(b"0", b"\x03", b"\x61\x00"),
    "string length in long form": _record(b"0", b"\x03", b"\x78\x01a"),
    "empty opaque": _record(b"5", b"\x08", b"\x40"),
    "false": _record(b"4", b"\x04", b"\xf4"),
    "half -0.0": _record(b"3", b"\x02", b"\xf9\x80\x00"),
    "single -0.0": _record(b"3", b"\x02", b"\xfa\x80\x00\x00\x00"),
    "double -inf": _record(b"3", b"\x02", b"\xfb\xff\xf0" + b"\0" * 6),
    "half subnormal": _record(b"3", b"\x02", b"\xf9\x00\x01"),
    "ids 65534": _record(b"65534/65534", b"\x02", b"\x01"),
    "corelnk text": _record(b"8", b"\x03", b"\x63</>"),
}


@pytest.mark.parametrize("case", sorted(CORNER_CASES))
def test_corner_case_encodings_agree(case: str) -> None:
    _agree(CORNER_CASES[case])
    assert same(CODEC.decode(CORNER_CASES[case], P, MODEL), reference(CORNER_CASES[case], P))


def test_objects_of_large_ids_agree() -> None:
    records = [
        {-2: "/3441/300/", 0: "300", 3: "x"},
        {0: "65534/1000", 2: 7},
        {0: "65534/65533", 2: -7},
        {-2: "/3441/65534/", 0: "0", 3: ""},
        {0: "11/0", 2: 1},
        {0: "12/0", 2: 2},
        {0: "12/3", 2: 3},
    ]
    node = _agree(cbor2.dumps(records), Path(3441))
    assert type(node) is ObjectNode
    assert list(node.instances) == [300, 65534]


@pytest.mark.parametrize(
    ("name", "records"),
    [
        (
            "multiple interrupted by a single",
            [{0: "11/0", 2: 1}, {0: "300", 3: "x"}, {0: "11/1", 2: 2}],
        ),
        (
            "multiple resumed after a multiple",
            [{0: "11/0", 2: 1}, {0: "12/0", 2: 1}, {0: "11/1", 2: 2}],
        ),
        ("resource instance repeated", [{0: "11/0", 2: 1}, {0: "11/0", 2: 2}]),
        ("resource instances descending", [{0: "11/1", 2: 1}, {0: "11/0", 2: 2}]),
        ("an integer for a Float", [{0: "3", 2: 1}]),
        ("a float for a Time", [{0: "6", 2: 1.0}]),
        ("a date tag for a Time", [{0: "6", 2: cbor2.CBORTag(1, 5)}]),
        ("a bytes name", [{0: b"1", 2: 1}]),
        ("text for an Opaque", [{0: "5", 8: "AA"}]),
        ("bytes for a String", [{0: "0", 3: b"a"}]),
        ("an ignored label", [{0: "1", 2: 1, 1: "unit"}]),
    ],
)
def test_left_to_python_after_a_first_record(
    name: str, records: list[dict[object, object]]
) -> None:
    """The first record is valid; the accelerator must still give the whole pack up."""
    data = cbor2.dumps([{-2: "/3441/0/", 0: "0", 3: "a"}, *records])
    assert fast(data, P) is None, name
    assert fast(data, Path(3441)) is None
    assert fast(cbor2.dumps([{-2: "/3441/0/", 0: "0", 3: "a"}]), P) is not None


def test_every_half_float_is_bit_exact() -> None:
    """Half floats are unpacked as cbor2 does, to the bit (sign of zero, infinities,
    subnormals); only NaN payloads may differ, and NaN never compares equal anyway."""
    for bits in range(0, 1 << 16, 7):
        data = _record(b"3", b"\x02", b"\xf9" + bits.to_bytes(2, "big"))
        got = fast(data, P)
        expected = reference(data, P)
        assert isinstance(got, ObjectInstance)
        assert isinstance(expected, ObjectInstance)
        a, b = got.resources[3].value, expected.resources[3].value  # type: ignore[union-attr]
        assert type(a) is float
        assert type(b) is float
        if math.isnan(b):
            assert math.isnan(a)
            assert math.copysign(1, a) == math.copysign(1, b)
        else:
            assert struct.pack(">d", a) == struct.pack(">d", b), hex(bits)


_COUNTED = (
    ObjectNode,
    ObjectInstance,
    SingleResource,
    MultipleResource,
    ResourceInstance,
    RT.STRING,
    RT.INTEGER,
    RT.OPAQUE,
)


def _refcounts() -> list[int]:
    gc.collect()
    return [sys.getrefcount(c) for c in _COUNTED]


def _payloads() -> list[tuple[bytes, Path]]:
    large = cbor2.dumps(
        [
            {-2: "/3441/300/", 0: "15/1000", 8: b"y" * 40},
            {0: "300", 3: "x" * 40},
            {0: "65534/1000", 2: 2**40},
            {0: "65534/65533", 2: -(2**40)},
        ]
    )
    seed = CODEC.encode(SEEDS[2][1], P, MODEL)
    return [(seed, P), (seed, Path(3441)), (large, Path(3441)), (large, Path(3441, 300))]


def test_memory_errors_leak_nothing() -> None:
    """Every allocation of a decode failing in turn: MemoryError or a node, no leak, no crash."""
    testcapi = pytest.importorskip("_testcapi")
    for data, path in _payloads():
        assert fast(data, path) is not None
        before = _refcounts()
        failures = 0
        for start in range(300):
            testcapi.set_nomemory(start, start + 1)
            try:
                fast(data, path)
            except MemoryError:
                failures += 1
            finally:
                testcapi.remove_mem_hooks()
        assert failures > 10
        assert _refcounts() == before


def test_python_errors_mid_payload_leak_nothing() -> None:
    """A malformed rinfo entry met after nodes were built: the error path frees them once."""
    data = CODEC.encode(SEEDS[2][1], P, MODEL)
    definition = MODEL.object_definition(3441)
    assert definition is not None
    info = senml_cbor._fast_info(definition.resources)
    bad_infos = [
        {**info, rid: bad}
        for rid in (3, 11, 15)
        for bad in ((True, 1), (True, 2**70, RT.INTEGER), (True, "1", RT.INTEGER))
    ]
    before = _refcounts()
    for bad_info in bad_infos:
        for iid in (0, -1):
            with pytest.raises((TypeError, OverflowError)):
                senml_cbor._FAST.decode(data, 3441, iid, bad_info)  # type: ignore[union-attr]
    assert _refcounts() == before
