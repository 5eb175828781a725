from __future__ import annotations

import pytest

from lwm2m.codec import ContentFormat, codec_for, composite_codec_for, default_codecs
from lwm2m.errors import CodecError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11542", ContentFormat.TLV),
        ("tlv", ContentFormat.TLV),
        ("senml-json", ContentFormat.SENML_JSON),
        ("SENML_CBOR", ContentFormat.SENML_CBOR),
        ("application/vnd.oma.lwm2m+cbor", ContentFormat.LWM2M_CBOR),
        ("text", ContentFormat.TEXT),
    ],
)
def test_from_name(text: str, expected: ContentFormat) -> None:
    assert ContentFormat.from_name(text) is expected


def test_from_name_rejects_unknown_with_the_known_list() -> None:
    with pytest.raises(ValueError, match=r"unknown content format 'xml'.*senml-json"):
        ContentFormat.from_name("xml")


def test_every_format_has_a_media_type() -> None:
    assert {cf.media_type for cf in ContentFormat} >= {"application/senml+json", "application/cbor"}
    assert len({cf.media_type for cf in ContentFormat}) == len(ContentFormat)


def test_registry_has_a_codec_for_every_node_format() -> None:
    codecs = default_codecs()
    assert set(codecs) == set(ContentFormat) - {ContentFormat.LINK}
    for cf, codec in codecs.items():
        assert codec.content_format is cf
        assert codec_for(int(cf)) is codec  # one instance per format


def test_registry_errors() -> None:
    with pytest.raises(CodecError, match="unsupported content format 1234"):
        codec_for(1234)
    with pytest.raises(CodecError, match="carries no nodes"):
        codec_for(ContentFormat.LINK)
    with pytest.raises(CodecError, match="no composite form"):
        composite_codec_for(ContentFormat.TLV)
    assert composite_codec_for(ContentFormat.SENML_CBOR).content_format is ContentFormat.SENML_CBOR
