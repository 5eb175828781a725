"""Registries as enums (RFC 7252 §12, RFC 8132, RFC 7959, RFC 7641, RFC 7967, RFC 9175)."""

import pytest

from lwm2m.coap import Code, MessageType, OptionNumber
from lwm2m.coap.numbers import OPTION_FORMATS, OptionFormat


def test_message_types_are_the_two_bit_values() -> None:
    assert [int(t) for t in MessageType] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("code", "dotted", "is_req", "success", "error"),
    [
        (Code.GET, "0.01", True, False, False),
        (Code.FETCH, "0.05", True, False, False),
        (Code.PATCH, "0.06", True, False, False),
        (Code.IPATCH, "0.07", True, False, False),
        (Code.CONTENT, "2.05", False, True, False),
        (Code.CONTINUE, "2.31", False, True, False),
        (Code.REQUEST_ENTITY_INCOMPLETE, "4.08", False, False, True),
        (Code.REQUEST_ENTITY_TOO_LARGE, "4.13", False, False, True),
        (Code.HOP_LIMIT_REACHED, "5.08", False, False, True),
        (Code.EMPTY, "0.00", False, False, False),
    ],
)
def test_code_helpers(code: Code, dotted: str, is_req: bool, success: bool, error: bool) -> None:
    assert code.dotted == dotted
    assert code.is_request() is is_req
    assert code.is_success() is success
    assert code.is_error() is error
    assert code.is_response() is (success or error)
    assert code.code_class * 32 + code.detail == code


def test_unknown_codes_become_pseudo_members() -> None:
    c = Code(0x47)
    assert c.dotted == "2.07"
    assert c.is_success()
    assert str(c) == "2.07"
    assert str(Code.NOT_FOUND) == "4.04 NOT_FOUND"
    assert Code(0x3F).code_class == 1
    assert not Code(0x3F).is_response()
    with pytest.raises(ValueError, match="256"):
        Code(256)


def test_option_properties_follow_the_number_bits() -> None:
    # RFC 7252 §5.10 table: C = critical, U = unsafe, N = NoCacheKey.
    assert OptionNumber.IF_MATCH.is_critical()
    assert OptionNumber.ETAG.is_elective()
    assert OptionNumber.URI_HOST.is_unsafe()
    assert OptionNumber.URI_HOST.is_critical()
    assert not OptionNumber.CONTENT_FORMAT.is_critical()
    assert OptionNumber.SIZE1.is_no_cache_key()
    assert not OptionNumber.SIZE1.is_cache_key()
    assert OptionNumber.BLOCK1.is_critical()
    assert OptionNumber.BLOCK1.is_unsafe()
    assert OptionNumber.OSCORE.is_critical()
    assert OptionNumber.NO_RESPONSE.is_no_cache_key() is False  # 258: U set, N not meaningful
    assert OptionNumber.ECHO.is_no_cache_key()  # 252 = 0b11111100 -> N
    assert OptionNumber.REQUEST_TAG.is_elective()
    assert not OptionNumber.REQUEST_TAG.is_unsafe()
    unknown = OptionNumber(2048)
    assert unknown.name == "OPTION_2048"
    assert unknown.is_elective()
    assert unknown.format is OptionFormat.OPAQUE
    assert OptionNumber.URI_PATH.format is OptionFormat.STRING
    with pytest.raises(ValueError, match="70000"):
        OptionNumber(70000)


def test_every_registered_option_has_a_format() -> None:
    assert set(OPTION_FORMATS) == {int(o) for o in OptionNumber}
