from __future__ import annotations

import pytest

from lwm2m import errors


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_is_an_lwm2m_error(name: str) -> None:
    assert issubclass(getattr(errors, name), errors.Lwm2mError)


def test_codec_error_names_the_path() -> None:
    exc = errors.CodecError("truncated TLV", path="/3/0/1")
    assert str(exc) == "/3/0/1: truncated TLV"
    assert exc.path == "/3/0/1"
    assert str(errors.CodecError("bad")) == "bad"
    assert isinstance(exc, ValueError)


def test_ddf_error_names_file_and_element() -> None:
    exc = errors.DdfError("unknown type 'Foo'", file="x.xml", element='Item ID="5"/Type')
    assert str(exc) == "x.xml, element <Item ID=\"5\"/Type>: unknown type 'Foo'"
    assert (exc.file, exc.element) == ("x.xml", 'Item ID="5"/Type')
    assert str(errors.DdfError("bad", file="y.xml")) == "y.xml: bad"
    assert str(errors.DdfError("bad")) == "bad"
