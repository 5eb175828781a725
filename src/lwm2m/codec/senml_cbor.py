"""SenML CBOR (CF 112, ``application/senml+cbor``): LwM2M-TS-Core 1.1.1 §7.4.6 on RFC 8428 §6.

The mapping to nodes is :class:`lwm2m.codec.senml.SenmlCodec`; this module only serializes
records with cbor2. Labels are RFC 8428's integers (bn -2, bt -3, n 0, v 2, vs 3, vb 4, t 6,
vd 8) and LwM2M's text key ``"vlo"``; Opaque is a byte string; floats are encoded as doubles.
The decoder also accepts half/single floats, decimal fractions (tag 4) and, for Time, the CBOR
date/time tags. Decoding raises only CodecError: cbor2's own errors, and the ValueError,
TypeError, OverflowError, RecursionError, ... it lets through on hostile input, are wrapped.

>>> from lwm2m.model import Path, SingleResource, ResourceType
>>> from lwm2m.model.registry import ModelRegistry
>>> SenmlCborCodec().encode(SingleResource(3, ResourceType.OPAQUE, b"\\xab\\xcd\\xef"),
...                         Path(0, 0, 3), ModelRegistry()).hex()
'81a221662f302f302f330843abcdef'
"""

from __future__ import annotations

import io
from collections.abc import Hashable, Mapping, Sequence

import cbor2

from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.senml import CBOR_LABELS, SenmlCodec
from lwm2m.errors import CodecError

__all__ = ["CBOR_DECODE_ERRORS", "SenmlCborCodec", "loads"]

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

    def encode_pack(self, records: Sequence[Mapping[Hashable, object]]) -> bytes:
        try:
            return cbor2.dumps(records)
        except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
            raise CodecError(f"cannot serialize SenML CBOR records: {exc}") from None

    def decode_pack(self, data: bytes) -> object:
        if not data:
            return []
        return loads(data, "SenML CBOR")
