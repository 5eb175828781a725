"""CoAP registries as enums: message types, codes, option numbers (RFC 7252 §3, §5.9, §5.10, §12).

Registries (IANA "Constrained RESTful Environments (CoRE) Parameters"):

* message types — RFC 7252 §3 (closed: CON, NON, ACK, RST);
* codes — RFC 7252 §12.1 (methods §12.1.1, responses §12.1.2), RFC 8132 §6 (FETCH, PATCH,
  iPATCH), RFC 7959 §2.9 (2.31, 4.08, 4.13), RFC 8516 (4.29), RFC 8768 (5.08), RFC 9175 (4.01 Echo);
* option numbers — RFC 7252 §12.2 / §5.10, RFC 7641 §2 (Observe), RFC 7959 §2.1 (Block1/2, Size2),
  RFC 7967 §2 (No-Response), RFC 8613 §2 (OSCORE), RFC 9175 §2.2/§3.2 (Echo, Request-Tag),
  RFC 8768 (Hop-Limit).

Codes and options are open registries: decoded messages keep raw ``int`` values so that unknown
ones survive a round trip; the enums give names and behaviour. ``Code(x)`` and
``OptionNumber(x)`` accept unregistered values and return pseudo-members (named ``"2.07"`` or
``"OPTION_1234"``), so helper methods work on any value.

Content formats stay plain ints here (the model layer owns ``ContentFormat``); a few constants are
defined for the tests and defaults.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "CONTENT_FORMAT_CBOR",
    "CONTENT_FORMAT_JSON",
    "CONTENT_FORMAT_LINK",
    "CONTENT_FORMAT_OCTET_STREAM",
    "CONTENT_FORMAT_TEXT",
    "OPTION_FORMATS",
    "Code",
    "MessageType",
    "OptionFormat",
    "OptionNumber",
]


class MessageType(enum.IntEnum):
    """The 2-bit message type field (RFC 7252 §3, §4)."""

    CON = 0
    NON = 1
    ACK = 2
    RST = 3


class Code(enum.IntEnum):
    """Method and response codes, ``class << 5 | detail`` (RFC 7252 §3, §12.1).

    >>> Code.CONTENT.dotted, Code(0x45).is_success(), Code.GET.is_request()
    ('2.05', True, True)
    >>> Code(0x47).dotted, Code(0x47).is_success()
    ('2.07', True)
    """

    EMPTY = 0x00
    # methods (RFC 7252 §12.1.1, RFC 8132 §6)
    GET = 0x01
    POST = 0x02
    PUT = 0x03
    DELETE = 0x04
    FETCH = 0x05
    PATCH = 0x06
    IPATCH = 0x07
    # success 2.xx
    CREATED = 0x41
    DELETED = 0x42
    VALID = 0x43
    CHANGED = 0x44
    CONTENT = 0x45
    CONTINUE = 0x5F
    # client error 4.xx
    BAD_REQUEST = 0x80
    UNAUTHORIZED = 0x81
    BAD_OPTION = 0x82
    FORBIDDEN = 0x83
    NOT_FOUND = 0x84
    METHOD_NOT_ALLOWED = 0x85
    NOT_ACCEPTABLE = 0x86
    REQUEST_ENTITY_INCOMPLETE = 0x88
    CONFLICT = 0x89
    PRECONDITION_FAILED = 0x8C
    REQUEST_ENTITY_TOO_LARGE = 0x8D
    UNSUPPORTED_CONTENT_FORMAT = 0x8F
    UNPROCESSABLE_ENTITY = 0x96
    TOO_MANY_REQUESTS = 0x9D
    # server error 5.xx
    INTERNAL_SERVER_ERROR = 0xA0
    NOT_IMPLEMENTED = 0xA1
    BAD_GATEWAY = 0xA2
    SERVICE_UNAVAILABLE = 0xA3
    GATEWAY_TIMEOUT = 0xA4
    PROXYING_NOT_SUPPORTED = 0xA5
    HOP_LIMIT_REACHED = 0xA8

    @classmethod
    def _missing_(cls, value: object) -> Code | None:
        if isinstance(value, int) and 0 <= value <= 0xFF:
            member = int.__new__(cls, value)
            member._name_ = f"{value >> 5}.{value & 0x1F:02d}"
            member._value_ = value
            return member
        return None

    @property
    def code_class(self) -> int:
        """The class digit: 0 request, 2 success, 4 client error, 5 server error."""
        return self >> 5

    @property
    def detail(self) -> int:
        return self & 0x1F

    @property
    def dotted(self) -> str:
        """The ``c.dd`` form used in the RFCs (RFC 7252 §12.1)."""
        return f"{self >> 5}.{self & 0x1F:02d}"

    def is_request(self) -> bool:
        """A method code (class 0, not 0.00)."""
        return 0 < self < 0x20

    def is_response(self) -> bool:
        """A response code: classes 2, 4 and 5 (1, 3, 6 and 7 are reserved or not for UDP)."""
        return (self >> 5) in (2, 4, 5)

    def is_success(self) -> bool:
        return (self >> 5) == 2

    def is_error(self) -> bool:
        return (self >> 5) in (4, 5)

    def __str__(self) -> str:
        return f"{self.dotted} {self.name}" if "." not in self.name else self.dotted


class OptionFormat(enum.Enum):
    """Option value formats (RFC 7252 §3.2)."""

    EMPTY = "empty"
    OPAQUE = "opaque"
    UINT = "uint"
    STRING = "string"


class OptionNumber(enum.IntEnum):
    """Option numbers (RFC 7252 §5.10 and the RFCs named in the module docstring).

    The number encodes properties (RFC 7252 §5.4.6): bit 0 critical, bit 1 unsafe to forward, and
    ``number & 0x1e == 0x1c`` marks NoCacheKey.

    >>> OptionNumber.URI_PATH.is_critical(), OptionNumber.MAX_AGE.is_unsafe()
    (True, True)
    >>> OptionNumber.SIZE1.is_no_cache_key(), OptionNumber(2).is_critical()
    (True, False)
    """

    IF_MATCH = 1
    URI_HOST = 3
    ETAG = 4
    IF_NONE_MATCH = 5
    OBSERVE = 6
    URI_PORT = 7
    LOCATION_PATH = 8
    OSCORE = 9
    URI_PATH = 11
    CONTENT_FORMAT = 12
    MAX_AGE = 14
    URI_QUERY = 15
    HOP_LIMIT = 16
    ACCEPT = 17
    LOCATION_QUERY = 20
    BLOCK2 = 23
    BLOCK1 = 27
    SIZE2 = 28
    PROXY_URI = 35
    PROXY_SCHEME = 39
    SIZE1 = 60
    ECHO = 252
    NO_RESPONSE = 258
    REQUEST_TAG = 292

    @classmethod
    def _missing_(cls, value: object) -> OptionNumber | None:
        if isinstance(value, int) and 0 <= value <= 0xFFFF:
            member = int.__new__(cls, value)
            member._name_ = f"OPTION_{value}"
            member._value_ = value
            return member
        return None

    def is_critical(self) -> bool:
        """Critical options must be understood (RFC 7252 §5.4.1)."""
        return bool(self & 1)

    def is_elective(self) -> bool:
        return not self & 1

    def is_unsafe(self) -> bool:
        """Unsafe to forward by a proxy that does not understand it (RFC 7252 §5.4.2)."""
        return bool(self & 2)

    def is_no_cache_key(self) -> bool:
        """Not part of the cache key (RFC 7252 §5.4.6); only meaningful for safe options."""
        return (self & 0x1E) == 0x1C

    def is_cache_key(self) -> bool:
        return not self.is_no_cache_key()

    @property
    def format(self) -> OptionFormat:
        return OPTION_FORMATS[self][0] if self in OPTION_FORMATS else OptionFormat.OPAQUE


#: Format, minimum length, maximum length, repeatable — per known option (RFC 7252 §5.10 table,
#: RFC 7641 §2, RFC 7959 §2.1 / §4, RFC 7967 §2, RFC 8613 §2, RFC 8768 §3, RFC 9175 §2.2, §3.2).
#: Options not in this table are "unrecognized" for RFC 7252 §5.4.1.
OPTION_FORMATS: Final[dict[int, tuple[OptionFormat, int, int, bool]]] = {
    OptionNumber.IF_MATCH: (OptionFormat.OPAQUE, 0, 8, True),
    OptionNumber.URI_HOST: (OptionFormat.STRING, 1, 255, False),
    OptionNumber.ETAG: (OptionFormat.OPAQUE, 1, 8, True),
    OptionNumber.IF_NONE_MATCH: (OptionFormat.EMPTY, 0, 0, False),
    OptionNumber.OBSERVE: (OptionFormat.UINT, 0, 3, False),
    OptionNumber.URI_PORT: (OptionFormat.UINT, 0, 2, False),
    OptionNumber.LOCATION_PATH: (OptionFormat.STRING, 0, 255, True),
    OptionNumber.OSCORE: (OptionFormat.OPAQUE, 0, 255, False),
    OptionNumber.URI_PATH: (OptionFormat.STRING, 0, 255, True),
    OptionNumber.CONTENT_FORMAT: (OptionFormat.UINT, 0, 2, False),
    OptionNumber.MAX_AGE: (OptionFormat.UINT, 0, 4, False),
    OptionNumber.URI_QUERY: (OptionFormat.STRING, 0, 255, True),
    OptionNumber.HOP_LIMIT: (OptionFormat.UINT, 1, 1, False),
    OptionNumber.ACCEPT: (OptionFormat.UINT, 0, 2, False),
    OptionNumber.LOCATION_QUERY: (OptionFormat.STRING, 0, 255, True),
    OptionNumber.BLOCK2: (OptionFormat.UINT, 0, 3, False),
    OptionNumber.BLOCK1: (OptionFormat.UINT, 0, 3, False),
    OptionNumber.SIZE2: (OptionFormat.UINT, 0, 4, False),
    OptionNumber.PROXY_URI: (OptionFormat.STRING, 1, 1034, False),
    OptionNumber.PROXY_SCHEME: (OptionFormat.STRING, 1, 255, False),
    OptionNumber.SIZE1: (OptionFormat.UINT, 0, 4, False),
    OptionNumber.ECHO: (OptionFormat.OPAQUE, 1, 40, False),
    OptionNumber.NO_RESPONSE: (OptionFormat.UINT, 0, 1, False),
    OptionNumber.REQUEST_TAG: (OptionFormat.OPAQUE, 0, 8, True),
}

CONTENT_FORMAT_TEXT: Final = 0
CONTENT_FORMAT_LINK: Final = 40
CONTENT_FORMAT_OCTET_STREAM: Final = 42
CONTENT_FORMAT_JSON: Final = 50
CONTENT_FORMAT_CBOR: Final = 60
