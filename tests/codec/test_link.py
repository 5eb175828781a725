"""CoRE Link Format (CF 40, RFC 6690) and the LwM2M attributes: TS examples both ways, quoting,
typed access, attribute validation and query conversion."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.codec import link as link_module
from lwm2m.codec.link import (
    Attributes,
    Link,
    decode_links,
    encode_links,
    format_links,
    parse_links,
)
from lwm2m.errors import CodecError
from lwm2m.model import Path

# -- the LwM2M examples, both ways ----------------------------------------------------------------

EXAMPLES = [
    # LwM2M-TS-Core 1.1 §5.3.1 Register payload (spec-reference §1.1 "Register payload rules")
    (
        '</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</5>;ver=1.1',
        [
            Link("/", [("rt", "oma.lwm2m"), ("ct", "110")]),
            Link("/1/0"),
            Link("/3/0"),
            Link("/5", {"ver": "1.1"}),
        ],
    ),
    # LwM2M-TS-Core 1.1 §5.4.2 Discover response (with pmin at the instance, dim of a resource)
    (
        "</3/0>;pmin=10,</3/0/1>,</3/0/7>;dim=3",
        [Link("/3/0", {"pmin": 10}), Link("/3/0/1"), Link("/3/0/7", {"dim": 3})],
    ),
    # LwM2M-TS-Core 1.1 §5.2.7 Bootstrap-Discover response (spec-reference §1.1 Bootstrap notes)
    (
        '</>;lwm2m="1.1",</0/1>;ssid=101;uri="coaps://example.org:5684"',
        [
            Link("/", {"lwm2m": "1.1"}),
            Link("/0/1", [("ssid", "101"), ("uri", "coaps://example.org:5684")]),
        ],
    ),
    # Discover with notification attributes at several levels and a valueless flag
    (
        "</3/0/7>;dim=2;pmin=10;pmax=60;gt=50;lt=42.2;st=0.5,</3/0/8>;obs",
        [
            Link(
                "/3/0/7",
                [("dim", 2), ("pmin", 10), ("pmax", 60), ("gt", 50.0), ("lt", 42.2), ("st", 0.5)],
            ),
            Link("/3/0/8", [("obs", None)]),
        ],
    ),
    ("", []),
]


@pytest.mark.parametrize(("text", "links"), EXAMPLES)
def test_examples_both_ways(text: str, links: list[Link]) -> None:
    assert parse_links(text) == links
    assert format_links(links) == text
    assert encode_links(links) == text.encode()
    assert decode_links(text.encode()) == links


def test_register_payload_typed_access() -> None:
    root, _, device, firmware = parse_links('</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</5>;ver=1.1')
    assert root.path == Path()
    assert root.resource_types == ("oma.lwm2m",)
    assert root.content_formats == (110,)
    assert device.path == Path(3, 0)
    assert device.version is None
    assert firmware.version == "1.1"
    assert Link("/", {"ct": "60 110 112 11542"}).content_formats == (60, 110, 112, 11542)
    assert Link("/").content_formats == ()
    assert Link("/").resource_types == ()


def test_discover_typed_access() -> None:
    instance, _, resource = parse_links("</3/0>;pmin=10,</3/0/1>,</3/0/7>;dim=3")
    assert instance.pmin == 10
    assert instance.pmax is None
    assert resource.dim == 3
    assert instance.attributes == Attributes(pmin=10)
    full = Link.parse("</3/0/7>;pmin=1;pmax=5;epmin=2;epmax=9;gt=50;lt=42.2;st=0.5")
    assert (full.pmin, full.pmax, full.epmin, full.epmax) == (1, 5, 2, 9)
    assert (full.gt, full.lt, full.st) == (50.0, 42.2, 0.5)
    assert full.attributes == Attributes(pmin=1, pmax=5, gt=50, lt=42.2, st=0.5, epmin=2, epmax=9)


def test_bootstrap_discover_typed_access() -> None:
    root, security = parse_links('</>;lwm2m="1.1",</0/1>;ssid=101;uri="coaps://example.org:5684"')
    assert root.lwm2m_version == "1.1"
    assert security.ssid == 101
    assert security.server_uri == "coaps://example.org:5684"
    assert security.path == Path(0, 1)


def test_quoted_strings_hold_separators_and_escapes() -> None:
    text = '<a>;title="x, y; \\"z\\" \\\\";flag,<b>;rt="a b"'
    links = parse_links(text)
    assert links == [
        Link("a", [("title", 'x, y; "z" \\'), ("flag", None)]),
        Link("b", {"rt": "a b"}),
    ]
    assert links[1].resource_types == ("a", "b")
    assert format_links(links) == text
    assert Link("a", {"x": ""}).get("x") == ""
    assert str(Link("a", {"x": ""})) == '<a>;x=""'
    assert str(Link("a", {"title": "plain"})) == '<a>;title="plain"'


def test_parse_is_lenient_about_whitespace_and_case() -> None:
    links = parse_links(" </1/0> ,\n</3/0>;VER=1.1 ")
    assert links == [Link("/1/0"), Link("/3/0", {"ver": "1.1"})]
    assert links[1].get("Ver") == "1.1"
    assert links[1].has("VER")
    assert not links[1].has("dim")
    assert Link.parse('<x>;ct="40"').content_formats == (40,)  # quoted single value


def test_link_path_of_non_lwm2m_uris() -> None:
    assert Link("coap://example.org/x").path is None
    assert Link("/3/x").path is None
    assert Link("/rd").path is None


# -- hypothesis: format and parse are inverse ------------------------------------------------------

_uri = st.text(
    st.characters(codec="utf-8", exclude_characters='<>"\x7f', min_codepoint=0x21), max_size=20
)
_name = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~*"), min_size=1)
_value = st.none() | st.text(st.characters(codec="utf-8"), max_size=20)
_links = st.lists(st.builds(Link, _uri, st.lists(st.tuples(_name, _value), max_size=4)), max_size=5)


@settings(max_examples=300, deadline=None)
@given(_links)
def test_round_trip(links: list[Link]) -> None:
    assert decode_links(encode_links(links)) == links


# -- link errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/1/0", r"^invalid link format at offset 0: a link starts with '<'$"),
        ("</1/0", r"^invalid link format at offset 0: unterminated '<'$"),
        ("</1 0>", r"^invalid link format at offset 0: link URI '/1 0' contains ' '$"),
        ("</1/0>;", r"^invalid link format at offset 7: expected a parameter name$"),
        ("</1/0>;=3", r"expected a parameter name"),
        ("</1/0>;pmin=", r"^invalid link format at offset 12: parameter pmin has an empty value$"),
        ("</1/0>;pmin=1 2", r"^invalid link format at offset 14: expected ',' between links"),
        ('</1/0>;rt="abc', r"unterminated quoted string$"),
        ('</1/0>;rt="abc\\', r"unterminated quoted string$"),
        ("</1/0>,", r"^invalid link format at offset 7: a link starts with '<'$"),
        ("</1/0>;a=b,c", r"a link starts with '<'$"),
        ("</1/0> </3/0>", r"expected ',' between links, found '<'$"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        parse_links(text)


def test_decode_errors() -> None:
    with pytest.raises(CodecError, match=r"^link format is not valid UTF-8 \(byte 2\)$"):
        decode_links(b"</\xff>")
    with pytest.raises(CodecError, match=r"^expected one link, found 2$"):
        Link.parse("</1>,</2>")


@pytest.mark.parametrize(
    ("uri", "params", "message"),
    [
        ("a>b", (), r"^link URI 'a>b' contains '>'$"),
        ("a\x00", (), r"contains '\\x00'$"),
        (3, (), r"^link URI must be text, got int$"),
        ("a", [("bad name", "x")], r"^invalid link parameter name 'bad name'$"),
        ("a", [("", "x")], r"^invalid link parameter name ''$"),
        ("a", {"x": True}, r"^link parameter x: unsupported value True$"),
        ("a", {"x": b"1"}, r"^link parameter x: unsupported value b'1'$"),
    ],
)
def test_link_construction_errors(uri: object, params: object, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        Link(uri, params)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "accessor", "message"),
    [
        ("</5>;ver=1", "version", r"^link </5>: ver='1' is not a MAJOR.MINOR version$"),
        ("</5>;ver", "version", r"^link </5>: attribute ver has no value$"),
        ("</>;lwm2m=v1.1", "lwm2m_version", r"lwm2m='v1.1' is not a MAJOR.MINOR version$"),
        ("</3/0/7>;dim=-1", "dim", r"^link </3/0/7>: dim='-1' is not a non-negative integer$"),
        ("</3/0/7>;dim=70000", "dim", r"^link </3/0/7>: dim=70000 is above 65535$"),
        ("</0/1>;ssid=x", "ssid", r"ssid='x' is not a non-negative integer$"),
        ("</>;ct=abc", "content_formats", r"ct='abc' is not a non-negative integer$"),
        ("</>;ct=70000", "content_formats", r"ct='70000' holds a number above 65535$"),
        ("</3/0>;pmin=1.5", "pmin", r"^link </3/0>: pmin='1.5' is not a non-negative integer$"),
        ("</3/0>;gt=abc", "gt", r"^link </3/0>: gt='abc' is not a number$"),
        ("</3/0>;gt=1e999", "gt", r"^link </3/0>: gt='1e999' is out of range$"),
        ("</3/0>;lt=5;gt=1", "attributes", r"^link </3/0>: lt \(5.0\) must be less than gt"),
        ("</3/0>;pmin=1;pmin=2", "attributes", r"^link </3/0>: attribute pmin given twice$"),
    ],
)
def test_typed_access_errors(text: str, accessor: str, message: str) -> None:
    link = Link.parse(text)
    with pytest.raises(CodecError, match=message):
        getattr(link, accessor)


# -- notification attributes ----------------------------------------------------------------------


def test_attributes_query_both_ways() -> None:
    attributes = Attributes(pmin=10, pmax=60, gt=50, lt=20.5, st=5, epmin=1, epmax=30)
    query = "pmin=10&pmax=60&gt=50&lt=20.5&st=5&epmin=1&epmax=30"
    assert attributes.to_query() == query
    assert Attributes.from_query(query) == attributes
    assert Attributes.from_query(query.split("&")) == attributes
    assert attributes.query_options()[0] == "pmin=10"
    assert attributes.to_params()[2] == ("gt", "50")
    assert not attributes.is_empty


def test_attributes_unset_with_valueless_parameter() -> None:
    # Write-Attributes: a parameter without value removes the attribute (LwM2M-TS-Core §5.4.4)
    attributes = Attributes.from_query(["pmin=5", "gt", "st"])
    assert attributes == Attributes(pmin=5, unset=frozenset({"gt", "st"}))
    assert attributes.to_query() == "pmin=5&gt&st"
    assert Attributes.from_query("") == Attributes()
    assert Attributes().is_empty
    assert not Attributes(unset=frozenset({"pmin"})).is_empty
    assert Link("/3/0", [("pmin", None)]).attributes.unset == {"pmin"}


def test_attributes_numbers() -> None:
    a = Attributes(gt=1, lt=-2.5, st=0)
    assert a.gt == 1.0
    assert isinstance(a.gt, float)
    assert a.to_query() == "gt=1&lt=-2.5&st=0"
    assert Attributes(gt=1e20).to_query() == "gt=100000000000000000000"  # no exponent (§5.1.2)
    assert Attributes(lt=-2.5e-7).to_query() == "lt=-0.00000025"
    assert Attributes.from_query("gt=1e+20").gt == 1e20
    assert Attributes(pmin=5, pmax=5).pmax == 5  # equal periods are allowed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gt": 10, "lt": 20}, r"^attributes: lt \(20.0\) must be less than gt \(10.0\)$"),
        ({"gt": 10, "lt": 10}, r"lt \(10.0\) must be less than gt \(10.0\)"),
        (
            {"gt": 10, "lt": 4, "st": 3},
            r"^attributes: lt \+ 2\*st \(4.0 \+ 2\*3.0\) must be less than gt \(10.0\)$",
        ),
        ({"pmin": 60, "pmax": 10}, r"^attributes: pmin \(60\) must not exceed pmax \(10\)$"),
        ({"epmin": 60, "epmax": 10}, r"^attributes: epmin \(60\) must not exceed epmax \(10\)$"),
        ({"pmin": -1}, r"^attributes: pmin must be a non-negative integer, got -1$"),
        ({"pmin": 1.0}, r"^attributes: pmin must be a non-negative integer, got 1.0$"),
        ({"pmax": True}, r"^attributes: pmax must be a non-negative integer, got True$"),
        ({"gt": math.inf}, r"^attributes: gt must be a finite number, got inf$"),
        ({"gt": "1"}, r"^attributes: gt must be a finite number, got '1'$"),
        ({"st": -1}, r"^attributes: st must not be negative, got -1$"),
        ({"unset": frozenset({"xx"})}, r"^attributes: unknown attribute 'xx' to unset$"),
        ({"pmin": 1, "unset": frozenset({"pmin"})}, r"attribute pmin is both set and unset$"),
    ],
)
def test_attributes_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CodecError, match=message):
        Attributes(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("pmin=10&edge=1", r"^/3/0/7: attributes: unknown attribute 'edge'$"),
        ("pmin=", r"^/3/0/7: attributes: attribute pmin has an empty value$"),
        ("pmin=ten", r"^/3/0/7: attributes: pmin='ten' is not a non-negative integer$"),
        ("gt=1,5", r"^/3/0/7: attributes: gt='1,5' is not a number$"),
        ("lt=30&gt=20", r"^/3/0/7: attributes: lt \(30.0\) must be less than gt \(20.0\)$"),
        ("gt=20&lt=10&st=5", r"^/3/0/7: attributes: lt \+ 2\*st"),
        ("pmin=1&pmin=2", r"^/3/0/7: attributes: attribute pmin given twice$"),
        ("pmin&pmin=2", r"attribute pmin given twice$"),
    ],
)
def test_attributes_query_errors_name_the_path(query: str, message: str) -> None:
    with pytest.raises(CodecError, match=message) as info:
        Attributes.from_query(query, path=Path(3, 0, 7))
    assert info.value.path == "/3/0/7"


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        dict,
        pmin=st.none() | st.integers(0, 10**6),
        gt=st.none() | st.floats(-1e6, 1e6),
        st=st.none() | st.floats(0, 1e3),
        epmax=st.none() | st.integers(0, 10**6),
    )
)
def test_attributes_round_trip(values: dict[str, object]) -> None:
    try:
        attributes = Attributes(**values)  # type: ignore[arg-type]
    except CodecError:
        return
    assert Attributes.from_query(attributes.to_query()) == attributes
    assert Link("/1", attributes.to_params()).attributes == attributes


def test_docstring_examples() -> None:
    result = doctest.testmod(link_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
