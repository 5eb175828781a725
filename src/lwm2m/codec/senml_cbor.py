"""SenML CBOR (CF 112, ``application/senml+cbor``): LwM2M-TS-Core 1.1.1 §7.4.6 on RFC 8428 §6.

The mapping to nodes is :class:`lwm2m.codec.senml.SenmlCodec`; this module only serializes
records with cbor2. Labels are RFC 8428's integers (bn -2, bt -3, n 0, v 2, vs 3, vb 4, t 6,
vd 8) and LwM2M's text key ``"vlo"``; Opaque is a byte string; floats are encoded as doubles.
The decoder also accepts half/single floats, decimal fractions (tag 4) and, for Time, the CBOR
date/time tags. Decoding raises only CodecError: cbor2's own errors, and the ValueError,
TypeError, OverflowError, RecursionError, ... it lets through on hostile input, are wrapped.

An object or instance payload written the usual way (what a Read of ``/3/0`` returns) is decoded
by the optional C accelerator ``_senml_cbor_fast`` when it is built: straight from the bytes to
the nodes. It only accelerates: for any other payload, valid or not, it answers None and the
Python decoder here, the reference, decides (tests/codec/test_senml_cbor_fast.py checks that both
agree). ``LWM2M_PURE_PYTHON=1`` in the environment leaves it out.

>>> from lwm2m.model import Path, SingleResource, ResourceType
>>> from lwm2m.model.registry import ModelRegistry
>>> SenmlCborCodec().encode(SingleResource(3, ResourceType.OPAQUE, b"\\xab\\xcd\\xef"),
...                         Path(0, 0, 3), ModelRegistry()).hex()
'81a221662f302f302f330843abcdef'
"""

from __future__ import annotations

import io
import os
from collections.abc import Hashable, Mapping, Sequence
from types import ModuleType

import cbor2

from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.senml import CBOR_LABELS, SenmlCodec, per_definition
from lwm2m.errors import CodecError
from lwm2m.model.definitions import ResourceDefinition
from lwm2m.model.nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    ObjectNode,
    ResourceInstance,
    SingleResource,
)
from lwm2m.model.path import Path
from lwm2m.model.registry import ObjectModel
from lwm2m.model.values import ResourceType

__all__ = ["ACCELERATED", "CBOR_DECODE_ERRORS", "SenmlCborCodec", "loads"]


def _accelerator() -> ModuleType | None:
    """The C accelerator, set up with the node classes; None when it is not built or
    ``LWM2M_PURE_PYTHON`` is set."""
    if os.environ.get("LWM2M_PURE_PYTHON"):
        return None
    try:
        from lwm2m.codec import _senml_cbor_fast as module
    except ImportError:
        return None
    module.setup(ObjectNode, ObjectInstance, SingleResource, MultipleResource, ResourceInstance)
    return module


_FAST = _accelerator()
ACCELERATED = _FAST is not None
"""Whether SenML CBOR object and instance payloads are decoded by the C accelerator."""

# The accelerator's kinds of resource type (its K_* constants): the type whose Python values it
# builds, and so the value label it expects. Object links (text "vlo" to convert) and executable
# resources are not among them: records of those go to the Python decoder.
_FAST_KIND: dict[str, int] = {
    ResourceType.STRING.value: 0,
    ResourceType.CORELNK.value: 0,
    ResourceType.INTEGER.value: 1,
    ResourceType.TIME.value: 1,
    ResourceType.UNSIGNED_INTEGER.value: 2,
    ResourceType.FLOAT.value: 3,
    ResourceType.BOOLEAN.value: 4,
    ResourceType.OPAQUE.value: 5,
}

_FastInfo = dict[int, tuple[bool, int, ResourceType]]


def _fast_info(resources: Mapping[int, ResourceDefinition]) -> _FastInfo:
    """What the accelerator needs of an object's resources: rid -> (multiple, kind, type)."""
    # bool(): the accelerator takes the flag for True only when it is True itself, while the
    # Python decoder tests its truth (a hand-built definition may say multiple=1)
    return {
        rid: (bool(d.multiple), _FAST_KIND.get(d.type._value_, -1), d.type)
        for rid, d in resources.items()
    }


CBOR_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    cbor2.CBORDecodeError,
    ValueError,  # includes UnicodeDecodeError
    TypeError,  # e.g. an unhashable map key
    OverflowError,
    RecursionError,
    LookupError,
    EOFError,
    MemoryError,  # a length claim larger than memory; cbor2 allocates before reading
)
"""What ``cbor2.loads`` may raise on hostile input (found by fuzzing); all become CodecError."""


def loads(data: bytes, what: str) -> object:
    """Decode exactly one CBOR item filling ``data``, raising only CodecError.

    Duplicate map keys are errors (a record naming ``n`` twice is ambiguous), nesting is
    bounded by cbor2's ``max_depth``, and trailing bytes are an error (``cbor2.loads`` would
    ignore them).
    """
    stream = io.BytesIO(data)
    try:
        # cbor2.load is CBORDecoder(stream, ...).decode() without building the decoder from
        # Python (measurably cheaper per payload); it leaves the stream right after the item.
        item = cbor2.load(stream, allow_duplicate_keys=False)
    except CBOR_DECODE_ERRORS as exc:
        raise CodecError(f"invalid {what}: {type(exc).__name__}: {str(exc)[:200]}") from None
    if stream.tell() != len(data):
        raise CodecError(f"invalid {what}: {len(data) - stream.tell()} bytes after the item")
    return item


class SenmlCborCodec(SenmlCodec):
    """SenML CBOR node and composite codec (see :mod:`lwm2m.codec.senml` for the rules)."""

    content_format = ContentFormat.SENML_CBOR
    labels = CBOR_LABELS

    def __init__(self) -> None:
        super().__init__()
        # per object definition (keyed by the identity of its resources mapping, which the
        # entry holds, so the id cannot be reused): what the accelerator needs to know
        self._fast: dict[int, tuple[object, _FastInfo]] = {}

    def decode(self, data: bytes, path: Path, model: ObjectModel) -> Node:
        """Decode the content of ``path``; the C accelerator first, when it is built and
        ``path`` is an object or an instance (see the module docstring)."""
        ids = path.ids
        if _FAST is not None and 0 < len(ids) <= 2:
            definition = model.object_definition(ids[0])
            if definition is not None:
                info = per_definition(self._fast, definition.resources, _fast_info)
                want_iid = ids[1] if len(ids) == 2 else -1
                node: Node | None = _FAST.decode(data, ids[0], want_iid, info)
                if node is not None:
                    return node
        return super().decode(data, path, model)

    def encode_pack(self, records: Sequence[Mapping[Hashable, object]]) -> bytes:
        try:
            return cbor2.dumps(records)
        except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
            raise CodecError(f"cannot serialize SenML CBOR records: {exc}") from None

    def decode_pack(self, data: bytes) -> object:
        if not data:
            return []
        return loads(data, "SenML CBOR")
