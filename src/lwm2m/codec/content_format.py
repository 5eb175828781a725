"""CoAP Content-Format numbers used by LwM2M (IANA "CoAP Content-Formats" registry;
LwM2M-TS-Core 1.1 §7.4, LwM2M 1.2 for 11544)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ContentFormat"]


class ContentFormat(IntEnum):
    """The content formats of LwM2M payloads.

    >>> ContentFormat.from_name("senml-cbor")
    <ContentFormat.SENML_CBOR: 112>
    >>> ContentFormat.TLV.media_type
    'application/vnd.oma.lwm2m+tlv'
    """

    TEXT = 0
    LINK = 40
    OPAQUE = 42
    CBOR = 60
    SENML_JSON = 110
    SENML_CBOR = 112
    TLV = 11542
    JSON = 11543
    LWM2M_CBOR = 11544

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]

    @property
    def short_name(self) -> str:
        """A CLI-friendly name, e.g. ``senml-json``."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def from_name(cls, text: str) -> ContentFormat:
        """Parse a number, a short name (``tlv``, ``senml-json``) or a media type."""
        key = text.strip().lower()
        if key.isdigit():
            return cls(int(key))
        for member in cls:
            if key in (member.short_name, member.name.lower(), member.media_type):
                return member
        names = ", ".join(m.short_name for m in cls)
        raise ValueError(f"unknown content format {text!r} (known: {names})")


_MEDIA_TYPES = {
    ContentFormat.TEXT: "text/plain;charset=utf-8",
    ContentFormat.LINK: "application/link-format",
    ContentFormat.OPAQUE: "application/octet-stream",
    ContentFormat.CBOR: "application/cbor",
    ContentFormat.SENML_JSON: "application/senml+json",
    ContentFormat.SENML_CBOR: "application/senml+cbor",
    ContentFormat.TLV: "application/vnd.oma.lwm2m+tlv",
    ContentFormat.JSON: "application/vnd.oma.lwm2m+json",
    ContentFormat.LWM2M_CBOR: "application/vnd.oma.lwm2m+cbor",
}
