"""SenML JSON (CF 110, ``application/senml+json``): LwM2M-TS-Core 1.1.1 §7.4.5 on RFC 8428 §4-§5.

The mapping to nodes is :class:`lwm2m.codec.senml.SenmlCodec`; this module only serializes
records. Output is compact UTF-8 JSON (no spaces, keys in the order ``bn, bt, n, value``), as in
the TS and Leshan examples. Opaque ``vd`` is base64url without padding; the decoder also accepts
padding and the standard alphabet. Input must be UTF-8; NaN/Infinity, numbers that overflow to
infinity and duplicate keys in a record are rejected. Decoding raises only CodecError.

>>> from lwm2m.model import Path, SingleResource, ResourceType
>>> from lwm2m.model.registry import ModelRegistry
>>> SenmlJsonCodec().encode(SingleResource(0, ResourceType.STRING, "OMA"), Path(3, 0, 0),
...                         ModelRegistry())
b'[{"bn":"/3/0/0","vs":"OMA"}]'
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping, Sequence

from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.senml import JSON_LABELS, SenmlCodec
from lwm2m.errors import CodecError

__all__ = ["SenmlJsonCodec"]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} overflows a double")
    return value


def _record(pairs: list[tuple[str, object]]) -> dict[str, object]:
    record = dict(pairs)
    if len(record) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return record


_decoder = json.JSONDecoder(
    parse_float=_finite_float, parse_constant=_reject_constant, object_pairs_hook=_record
)
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class SenmlJsonCodec(SenmlCodec):
    """SenML JSON node and composite codec (see :mod:`lwm2m.codec.senml` for the rules)."""

    content_format = ContentFormat.SENML_JSON
    labels = JSON_LABELS

    def encode_pack(self, records: Sequence[Mapping[Hashable, object]]) -> bytes:
        try:
            return _encoder.encode(records).encode("utf-8")
        except (TypeError, ValueError) as exc:  # a caller's non-JSON value in raw records
            raise CodecError(f"cannot serialize SenML JSON records: {exc}") from None

    def decode_pack(self, data: bytes) -> object:
        if not data:
            return []
        try:
            return _decoder.decode(bytes(data).decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
            raise CodecError(f"invalid SenML JSON: {str(exc)[:200]}") from None
