"""Wire format (RFC 7252 §3) and option values: vectors, malformed inputs, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m.coap import (
    BadOptionError,
    Block,
    CoapUsageError,
    Code,
    Message,
    MessageFormatError,
    MessageType,
    OptionNumber,
    check_options,
    decode,
    decode_uint,
    encode_uint,
)

# RFC 7252 Appendix A, Figure 16: CON [0x7d34] GET /temperature, no token.
FIG16_REQUEST = bytes.fromhex("40017d34") + b"\xbbtemperature"
# ... answered by ACK [0x7d34] 2.05 "22.3 C".
FIG16_RESPONSE = bytes.fromhex("60457d34") + b"\xff22.3 C"
# Figure 17: the same with token 0x71 (TKL 1).
FIG17_REQUEST = bytes.fromhex("4101bc9071") + b"\xbbtemperature"


def test_rfc7252_figure16_vectors() -> None:
    req = decode(FIG16_REQUEST)
    assert (req.mtype, req.code, req.mid, req.token) == (MessageType.CON, Code.GET, 0x7D34, b"")
    assert req.uri_path == ("temperature",)
    assert Message(Code.GET, mid=0x7D34, uri_path="/temperature").encode() == FIG16_REQUEST
    resp = Message(Code.CONTENT, b"22.3 C", mtype=MessageType.ACK, mid=0x7D34)
    assert resp.encode() == FIG16_RESPONSE
    assert decode(FIG16_RESPONSE) == resp


def test_rfc7252_figure17_token() -> None:
    req = decode(FIG17_REQUEST)
    assert req.token == b"\x71"
    assert req.mid == 0xBC90
    assert req.encode() == FIG17_REQUEST


def test_extended_option_delta_and_length() -> None:
    # delta 13..268 uses nibble 13, 269.. nibble 14; the same for lengths (RFC 7252 §3.1).
    m = Message(Code.POST, token=b"ab")
    m.set_option(OptionNumber.NO_RESPONSE, b"\x02")  # delta 258 -> 13 + 245
    m.set_option(OptionNumber.REQUEST_TAG, b"\x01")  # delta 34
    m.set_option(OptionNumber.PROXY_URI, b"x" * 300)  # length 300 -> 14
    m.set_option(OptionNumber.URI_PATH, [b"y" * 20])  # length 20 -> 13
    m.set_option(1000, b"z")  # delta 708 from 292 -> 14
    data = m.encode()
    assert decode(data) == m
    assert decode(data).encode() == data
    assert m.proxy_uri == "x" * 300


def test_decode_keeps_unknown_options_and_repeats_in_order() -> None:
    m = Message(Code.GET, options=[(11, b"a"), (2048, b"?"), (11, b"b"), (11, b"c")])
    assert m.uri_path == ("a", "b", "c")
    again = decode(m.encode())
    assert again.get_option(2048) == b"?"
    assert again.get_options(11) == [b"a", b"b", b"c"]


@pytest.mark.parametrize(
    ("data", "has_mid"),
    [
        (b"", False),
        (b"\x40\x01\x00", False),  # shorter than the header
        (b"\x80\x01\x00\x01", False),  # version 2: silently ignore
        (b"\x49\x01\x00\x01" + b"x" * 9, True),  # TKL 9
        (b"\x48\x01\x00\x01abc", True),  # truncated token
        (b"\x40\x00\x00\x01\xff", True),  # Empty with bytes
        (b"\x41\x00\x00\x01\x01", True),  # Empty with a token
        (b"\x40\x01\x00\x01\xff", True),  # payload marker without payload
        (b"\x40\x01\x00\x01\xf1x", True),  # delta nibble 15
        (b"\x40\x01\x00\x01\x1f", True),  # length nibble 15
        (b"\x40\x01\x00\x01\xd1", True),  # truncated 1-byte delta
        (b"\x40\x01\x00\x01\xe1\x00", True),  # truncated 2-byte delta
        (b"\x40\x01\x00\x01\x1d", True),  # truncated 1-byte length
        (b"\x40\x01\x00\x01\x1e\x00", True),  # truncated 2-byte length
        (b"\x40\x01\x00\x01\x13ab", True),  # truncated value
        (b"\x40\x01\x00\x01\xe0\xff\xff\xe0\xff\xff", True),  # option number > 65535
        (b"\x40\x01\x00\x01\xe0\xfe\xed\xc0", True),  # 65530, then a 1-byte delta of 12
    ],
)
def test_malformed(data: bytes, has_mid: bool) -> None:
    with pytest.raises(MessageFormatError) as info:
        decode(data)
    assert (info.value.mid is not None) is has_mid
    if has_mid:
        assert info.value.mtype == data[0] >> 4 & 3


def test_check_options_rules() -> None:
    # unknown critical -> error; unknown elective -> dropped (RFC 7252 §5.4.1)
    bad = Message(Code.GET, options=[(2049, b"x")])
    err = check_options(bad)
    assert isinstance(err, BadOptionError)
    assert err.number == 2049
    elective = Message(Code.GET, options=[(2048, b"x"), (11, b"a")])
    assert check_options(elective) is None
    assert elective.options == [(11, b"a")]
    # wrong length (§5.4.3): critical If-Match of 9 bytes; elective Max-Age of 5 bytes dropped
    assert check_options(Message(Code.GET, options=[(1, b"123456789")])) is not None
    long_age = Message(Code.CONTENT, options=[(14, b"12345")])
    assert check_options(long_age) is None
    assert long_age.max_age is None
    # repeated non-repeatable (§5.4.5): critical Uri-Port twice -> error; Content-Format elective
    assert check_options(Message(Code.GET, options=[(7, b"\x01"), (7, b"\x02")])) is not None
    two_cf = Message(Code.CONTENT, options=[(12, b""), (12, b"\x28")])
    assert check_options(two_cf) is None
    assert two_cf.content_format == 0
    # all known options are accepted, OSCORE opaque
    fine = Message(Code.POST, uri_path="/a", options=[(9, b"\x09\x00"), (292, b""), (252, b"e")])
    assert check_options(fine) is None
    assert fine.oscore == b"\x09\x00"


def test_typed_accessors_round_trip() -> None:
    m = Message(Code.GET, uri_path=["3", "0"], uri_query=["a=1", "b"], accept=11542)
    m.content_format = 60
    m.max_age = 30
    m.etag = b"\x01\x02"
    m.if_match = [b"\xaa", b""]
    m.if_none_match = True
    m.observe = 0x123456
    m.block1 = Block(3, True, 2)
    m.block2 = Block(1, False, 6)
    m.size1 = 5000
    m.size2 = 10240
    m.location_path = "/rd/abc"
    m.location_query = ["x=y"]
    m.proxy_uri = "coap://h/p"
    m.proxy_scheme = "coap"
    m.echo = b"\x05\x06"
    m.request_tag = b"\x07"
    m.no_response = 26
    m.oscore = b""
    m.uri_host = "example"
    m.uri_port = 5683
    d = decode(m.encode())
    assert d == m
    assert d.uri_path == ("3", "0")
    assert d.path == "/3/0"
    assert d.uri_query == ("a=1", "b")
    assert d.accept == 11542
    assert d.content_format == 60
    assert d.max_age == 30
    assert d.etag == b"\x01\x02"
    assert d.etags == [b"\x01\x02"]
    assert d.if_match == [b"\xaa", b""]
    assert d.if_none_match
    assert d.observe == 0x123456
    assert d.block1 == Block(3, True, 2)
    assert d.block2 == Block(1, False, 6)
    assert d.size1 == 5000
    assert d.size2 == 10240
    assert d.location_path == ("rd", "abc")
    assert d.location_query == ("x=y",)
    assert d.proxy_uri == "coap://h/p"
    assert d.proxy_scheme == "coap"
    assert d.echo == b"\x05\x06"
    assert d.request_tag == b"\x07"
    assert d.no_response == 26
    assert d.oscore == b""
    assert d.uri_host == "example"
    assert d.uri_port == 5683
    assert check_options(d) is None
    # clearing
    m.if_none_match = False
    m.if_match = []
    m.observe = None
    m.block2 = None
    assert not m.if_none_match
    assert m.if_match == []
    assert m.observe is None
    assert m.block2 is None
    m.remove_option(OptionNumber.URI_QUERY)
    assert not m.has_option(OptionNumber.URI_QUERY)
    m.add_option(OptionNumber.URI_PATH, b"9")
    assert m.uri_path == ("3", "0", "9")
    assert "GET" in repr(m)
    assert "URI_PATH" in repr(m)


def test_root_path_and_empty_message() -> None:
    assert Message(Code.GET, uri_path="/").uri_path == ()
    assert Message(Code.GET).path == "/"
    empty = Message(mtype=MessageType.ACK, mid=7)
    assert empty.encode() == b"\x60\x00\x00\x07"
    assert empty.is_empty()
    assert not empty.is_request()
    assert not empty.is_response()
    assert Message(Code.CONTENT).is_response()
    assert Message(Code.GET) != "GET"
    assert "9 0.01" in repr(Message(Code.GET, mtype=9))


def test_encode_rejects_bad_fields() -> None:
    with pytest.raises(CoapUsageError, match="token"):
        Message(Code.GET, token=b"123456789").encode()
    with pytest.raises(CoapUsageError, match="header"):
        Message(Code.GET, mid=70000).encode()
    with pytest.raises(CoapUsageError, match="negative"):
        encode_uint(-1)
    with pytest.raises(CoapUsageError, match="too long"):
        Message(Code.GET, options=[(11, b"x" * 70000)]).encode()


def test_uint_and_block() -> None:
    assert encode_uint(0) == b""
    assert decode_uint(b"") == 0
    assert encode_uint(0x10000) == b"\x01\x00\x00"
    assert decode_uint(b"\x00\x05") == 5
    b = Block(5, True, 4)
    assert b.size == 256
    assert b.start == 1280
    assert Block.decode(b.encode()) == b


def test_copy_is_independent() -> None:
    m = Message(Code.PUT, b"x", uri_path="/a")
    c = m.copy()
    c.uri_path = "/b"
    assert m.uri_path == ("a",)
    assert c.uri_path == ("b",)
    assert c.payload == b"x"


def test_operation_key_ignores_block_options_but_not_request_tag() -> None:
    a = Message(Code.PUT, uri_path="/a")
    b = a.copy()
    b.block1 = Block(1, True, 6)
    b.size1 = 9
    assert a.operation_key() == b.operation_key()
    b.request_tag = b"\x01"
    assert a.operation_key() != b.operation_key()


options_st = st.lists(
    st.tuples(
        st.integers(0, 65535),
        st.binary(max_size=300),
    ),
    max_size=8,
)


@given(
    mtype=st.integers(0, 3),
    code=st.integers(1, 255),
    mid=st.integers(0, 0xFFFF),
    token=st.binary(max_size=8),
    options=options_st,
    payload=st.binary(max_size=200),
)
def test_roundtrip_hypothesis(
    mtype: int, code: int, mid: int, token: bytes, options: list[tuple[int, bytes]], payload: bytes
) -> None:
    m = Message(code, payload, mtype=mtype, mid=mid, token=token, options=options)
    data = m.encode()
    d = decode(data)
    assert d == m
    assert d.encode() == data
