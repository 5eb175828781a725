"""LwM2M content formats (LwM2M-TS-Core §7.4): one codec per CoAP Content-Format number.

>>> from lwm2m.codec import codec_for, ContentFormat
>>> codec_for(ContentFormat.TLV).content_format
<ContentFormat.TLV: 11542>
"""

from __future__ import annotations

from importlib import import_module

from lwm2m.codec.base import CompositeCodec, NodeCodec, TimestampedNodes
from lwm2m.codec.content_format import ContentFormat
from lwm2m.errors import CodecError

__all__ = [
    "CompositeCodec",
    "ContentFormat",
    "NodeCodec",
    "TimestampedNodes",
    "codec_for",
    "composite_codec_for",
    "default_codecs",
]

# content format -> (module, class); modules are imported on first use.
_CODECS: dict[ContentFormat, tuple[str, str]] = {
    ContentFormat.TEXT: ("lwm2m.codec.text", "TextCodec"),
    ContentFormat.OPAQUE: ("lwm2m.codec.opaque", "OpaqueCodec"),
    ContentFormat.CBOR: ("lwm2m.codec.cbor", "CborCodec"),
    ContentFormat.SENML_JSON: ("lwm2m.codec.senml_json", "SenmlJsonCodec"),
    ContentFormat.SENML_CBOR: ("lwm2m.codec.senml_cbor", "SenmlCborCodec"),
    ContentFormat.TLV: ("lwm2m.codec.tlv", "TlvCodec"),
    ContentFormat.JSON: ("lwm2m.codec.oma_json", "OmaJsonCodec"),
    ContentFormat.LWM2M_CBOR: ("lwm2m.codec.lwm2m_cbor", "Lwm2mCborCodec"),
}

_instances: dict[int, NodeCodec] = {}  # keyed by ContentFormat members, found by plain ints too


def codec_for(content_format: int) -> NodeCodec:
    """The node codec of ``content_format``; CodecError for formats that carry no nodes."""
    # The usual call first: a plain dict look-up (an int finds its member, IntEnum hashes as
    # int), no Enum call (the dearer part of this function, and it runs per payload).
    try:
        codec = _instances.get(content_format)
    except TypeError:  # unhashable: the Enum call below names the error
        codec = None
    if codec is not None:
        return codec
    try:
        cf = ContentFormat(content_format)
    except ValueError:
        raise CodecError(f"unsupported content format {content_format}") from None
    codec = _instances.get(cf)
    if codec is None:
        if cf not in _CODECS:
            raise CodecError(f"content format {cf.short_name} ({int(cf)}) carries no nodes")
        module, name = _CODECS[cf]
        codec = getattr(import_module(module), name)()
        _instances[cf] = codec
    return codec


def composite_codec_for(content_format: int) -> CompositeCodec:
    """The composite codec (SenML JSON or CBOR) of ``content_format``."""
    codec = codec_for(content_format)
    if not isinstance(codec, CompositeCodec):
        raise CodecError(f"content format {int(content_format)} has no composite form")
    return codec


def default_codecs() -> dict[ContentFormat, NodeCodec]:
    """Every node codec, keyed by content format."""
    return {cf: codec_for(cf) for cf in _CODECS}
