"""The DDF loader and writer (LwM2M-TS-Core §7.2, Appendix D): each rule of the module docstring."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwm2m.errors import DdfError, ModelError
from lwm2m.model import ObjectDefinition, Operations, ResourceDefinition, ResourceType
from lwm2m.model.ddf import dump_ddf, load_ddf, parse_ddf

from .ddfdocs import doc, item, obj

T = ResourceType


def parse_one(data: bytes) -> ObjectDefinition:
    (definition,) = parse_ddf(data, "test.xml")
    return definition


def rejects(data: bytes, element: str | None, match: str) -> DdfError:
    with pytest.raises(DdfError, match=match) as info:
        parse_ddf(data, "test.xml")
    assert info.value.file == "test.xml"
    assert info.value.element == element
    assert str(info.value).startswith("test.xml")
    return info.value


def test_minimal_document() -> None:
    d = parse_one(doc())
    assert (d.id, d.name, d.version, d.lwm2m_version) == (3, "Obj", "1.1", "1.1")
    assert (d.multiple, d.mandatory, d.urn, d.description) == (
        False,
        False,
        "urn:oma:lwm2m:oma:3:1.1",
        "",
    )
    assert d.resources[0] == ResourceDefinition(0, "Res", Operations.R, False, False, T.INTEGER)


def test_all_fields() -> None:
    data = doc(
        obj(
            item(
                "0",
                Name="A",
                Operations="RW",
                MultipleInstances="Multiple",
                Mandatory="Mandatory",
                Type="Unsigned Integer",
                RangeEnumeration="0..9",
                Units="s",
                Description="d0",
            ),
            item("7", Name="B", Operations="E", Type=""),
            item("1", Name="C", Operations="", Type="Opaque"),
            Name="Thing",
            Description1="first",
            ObjectID="10241",
            ObjectURN="urn:oma:lwm2m:x:10241:2.0",
            LWM2MVersion="1.1",
            ObjectVersion="2.0",
            MultipleInstances="Multiple",
            Mandatory="Mandatory",
        )
    )
    d = parse_one(data)
    assert (d.id, d.name, d.version, d.urn, d.multiple, d.mandatory) == (
        10241,
        "Thing",
        "2.0",
        "urn:oma:lwm2m:x:10241:2.0",
        True,
        True,
    )
    assert d.description == "first"
    assert list(d.resources) == [0, 1, 7]
    a, c, b = d.resources.values()
    assert (a.operations, a.multiple, a.mandatory, a.type) == (
        Operations.RW,
        True,
        True,
        T.UNSIGNED_INTEGER,
    )
    assert (a.range_enumeration, a.units, a.description) == ("0..9", "s", "d0")
    assert (b.operations, b.type) == (Operations.E, T.NONE)
    assert (c.operations, c.type) == (Operations.NONE, T.OPAQUE)


def test_several_objects_in_one_file() -> None:
    defs = parse_ddf(
        doc(obj(ObjectID="3"), obj(ObjectID="4"), obj(ObjectID="3", ObjectVersion="1.0"))
    )
    assert [(d.id, d.version) for d in defs] == [(3, "1.1"), (4, "1.1"), (3, "1.0")]


# --- lenient rules ------------------------------------------------------------------------------


def test_whitespace_is_stripped_and_names_collapsed() -> None:
    d = parse_one(
        doc(
            obj(
                item(
                    " 5 ",
                    Name="  LWM2M \n Server\tURI ",
                    Operations=" RW ",
                    Type="\n Integer \n",
                    RangeEnumeration="\n  ",
                    Description="  text\n  more  ",
                ),
                Name=" Dev  ice ",
                ObjectID=" 3 ",
            )
        )
    )
    assert d.name == "Dev ice"
    r = d.resources[5]
    assert (r.name, r.operations, r.type, r.range_enumeration) == (
        "LWM2M Server URI",
        Operations.RW,
        T.INTEGER,
        "",
    )
    assert r.description == "text\n  more"


def test_enumerations_are_case_insensitive() -> None:
    d = parse_one(
        doc(
            obj(
                item(
                    Operations="rw",
                    MultipleInstances="MULTIPLE",
                    Mandatory="mandatory",
                    Type="unsigned INTEGER",
                ),
                MultipleInstances="multiple",
                Mandatory="OPTIONAL",
            )
        )
    )
    r = d.resources[0]
    assert (d.multiple, d.mandatory) == (True, False)
    assert (r.operations, r.multiple, r.mandatory, r.type) == (
        Operations.RW,
        True,
        True,
        T.UNSIGNED_INTEGER,
    )


def test_executable_with_a_type_is_normalised() -> None:
    r = parse_one(doc(obj(item(Operations="E", Type="String")))).resources[0]
    assert (r.operations, r.type) == (Operations.E, T.NONE)


def test_empty_operations_means_none() -> None:
    assert parse_one(doc(obj(item(Operations="")))).resources[0].operations is Operations.NONE


@pytest.mark.parametrize(
    ("fields", "version", "lwm2m_version"),
    [
        ({"ObjectVersion": None, "LWM2MVersion": None}, "1.0", "1.0"),
        ({"ObjectVersion": "", "LWM2MVersion": " "}, "1.0", "1.0"),
        ({"ObjectVersion": "1", "LWM2MVersion": "1"}, "1.0", "1.0"),
        ({"ObjectVersion": "01.02", "LWM2MVersion": "1.1"}, "1.2", "1.1"),
        ({"ObjectVersion": "2.0", "LWM2MVersion": "1.2"}, "2.0", "1.2"),
    ],
)
def test_versions(fields: dict[str, str | None], version: str, lwm2m_version: str) -> None:
    d = parse_one(doc(obj(**fields)))
    assert (d.version, d.lwm2m_version) == (version, lwm2m_version)


@pytest.mark.parametrize(
    ("urn", "version", "expected"),
    [
        (None, "1.0", "urn:oma:lwm2m:oma:3"),
        ("", "1.1", "urn:oma:lwm2m:oma:3:1.1"),
        ("urn:oma:lwm2m:oma:3", "1.1", "urn:oma:lwm2m:oma:3"),  # version suffix is optional
        ("urn:oma:lwm2m:oma:3:1.0", "1.0", "urn:oma:lwm2m:oma:3:1.0"),  # like 10254.xml
        ("urn:oma:lwm2m:oma:3:1", "1.0", "urn:oma:lwm2m:oma:3:1"),
    ],
)
def test_urn(urn: str | None, version: str, expected: str) -> None:
    assert parse_one(doc(obj(ObjectURN=urn, ObjectVersion=version))).urn == expected


def test_missing_descriptive_elements_are_empty() -> None:
    data = doc(obj(item(RangeEnumeration=None, Units=None, Description=None), Description1=None))
    d = parse_one(data.replace(b"<Description2></Description2>", b""))
    r = d.resources[0]
    assert (d.description, r.range_enumeration, r.units, r.description) == ("", "", "", "")


def test_descriptions_are_joined() -> None:
    data = doc(obj(Description1="one")).replace(
        b"<Description2></Description2>", b"<Description2><![CDATA[two <b>]]></Description2>"
    )
    assert parse_one(data).description == "one\n\ntwo <b>"
    data = doc(obj(Description1="")).replace(
        b"<Description2></Description2>", b"<Description2>two</Description2>"
    )
    assert parse_one(data).description == "two"


def test_unknown_elements_namespaces_and_missing_object_type_are_ignored() -> None:
    data = doc(
        obj(item(extra="<Submitter>x</Submitter><TS/>"), attrs="", extra="<Future>1</Future>")
    )
    assert parse_one(data).resources[0].name == "Res"
    ns = doc(obj(), root='LWM2M xmlns="urn:example"').replace(
        b'</LWM2M xmlns="urn:example">', b"</LWM2M>"
    )
    assert parse_one(ns).id == 3
    # Non-Item children of <Resources> are ignored too.
    other = doc(obj(item("1"), "<Note>n</Note>"))
    assert list(parse_one(other).resources) == [1]


def test_leading_zeros_in_ids() -> None:
    d = parse_one(doc(obj(item("007"), ObjectID="0003")))
    assert (d.id, list(d.resources)) == (3, [7])


def test_comments_cdata_and_encodings() -> None:
    data = doc(obj(item(), Name="Obj"), prolog="<!-- a comment -->").replace(
        b"<Name>Obj</Name>", b"<Name><!-- c --><![CDATA[Obj]]></Name>"
    )
    assert parse_one(data).name == "Obj"
    utf16 = doc(obj(Name="Gerät")).decode().replace("UTF-8", "UTF-16").encode("utf-16")
    assert parse_one(utf16).name == "Gerät"
    bom = b"\xef\xbb\xbf" + doc(obj(Name="Gerät"))
    assert parse_one(bom).name == "Gerät"
    assert parse_one(bytearray(doc())).id == 3
    assert parse_one(memoryview(doc())).id == 3


def test_object_without_resources_element_items() -> None:
    d = parse_one(doc(obj(resources=False).replace("<Description2>", "<Resources/><Description2>")))
    assert d.resources == {}


# --- strict rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<",
        b"<LWM2M>",
        b"<LWM2M></lwm2m>",
        b"\xff\xfe\x00",
        b"<?xml version='1.0' encoding='nope'?><LWM2M/>",
        b"<LWM2M>\x00</LWM2M>",
        b"<LWM2M><Object></Object></LWM2M><x/>",
    ],
)
def test_malformed_xml(data: bytes) -> None:
    rejects(data, None, "malformed XML|forbidden")


def test_not_bytes() -> None:
    with pytest.raises(DdfError, match="expected bytes, got str"):
        parse_ddf("<LWM2M/>", "s.xml")  # type: ignore[arg-type]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<LWM2M><Object><Name>&lol3;</Name></Object></LWM2M>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]><LWM2M><Object><Name>&ext;</Name></Object></LWM2M>"""
DOCTYPE_ONLY = (
    b'<?xml version="1.0"?><!DOCTYPE LWM2M SYSTEM "http://example.invalid/x.dtd"><LWM2M/>'
)


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY, DOCTYPE_ONLY])
def test_dtds_and_entities_are_forbidden(data: bytes) -> None:
    rejects(data, None, "forbidden XML construct")


def test_wrong_root() -> None:
    rejects(doc(obj(), root="DDFList"), None, r"root element is <DDFList>.*registry index")
    rejects(doc(obj(), root="units"), None, r"root element is <units>, expected <LWM2M>$")


def test_no_object() -> None:
    rejects(b"<LWM2M><Other/></LWM2M>", "LWM2M", "no <Object> element")


def test_not_an_object_definition() -> None:
    rejects(
        doc(obj(attrs=' ObjectType="CommonResources"')), "Object", "ObjectType 'CommonResources'"
    )


@pytest.mark.parametrize("name", ["Name", "ObjectID", "MultipleInstances", "Mandatory"])
def test_missing_object_elements(name: str) -> None:
    rejects(doc(obj(**{name: None})), "Object", f"missing <{name}>")
    rejects(doc(obj(**{name: " "})), f"Object/{name}", "must not be empty")


def test_missing_resources() -> None:
    rejects(doc(obj(resources=False)), "Object", "missing <Resources>")


def test_errors_in_later_objects_name_them() -> None:
    rejects(doc(obj(), obj(ObjectID="x")), "Object[2]/ObjectID", "object id 'x' is not a decimal")


@pytest.mark.parametrize("name", ["Name", "Operations", "MultipleInstances", "Mandatory", "Type"])
def test_missing_item_elements(name: str) -> None:
    rejects(doc(obj(item("5", **{name: None}))), 'Item ID="5"', f"missing <{name}>")


@pytest.mark.parametrize("name", ["Name", "MultipleInstances", "Mandatory"])
def test_empty_item_elements(name: str) -> None:
    rejects(doc(obj(item("5", **{name: ""}))), f'Item ID="5"/{name}', "must not be empty")


def test_item_without_id() -> None:
    rejects(doc(obj(item(None))), "Item", "without ID attribute")
    rejects(doc(obj(), obj(item(None), ObjectID="4")), "Object[2]/Item", "without ID")
    rejects(doc(obj(), obj(item("x"), ObjectID="4")), 'Object[2]/Item ID="x"', "resource id")
    rejects(doc(obj(), obj(item("1"), item("1"), ObjectID="4")), 'Object[2]/Item ID="1"', "twice")


def test_duplicate_elements() -> None:
    rejects(doc(obj(extra="<Name>again</Name>")), "Object/Name", "<Name> given twice")
    rejects(doc(obj(item("5", extra="<Type>String</Type>"))), 'Item ID="5"/Type', "given twice")


def test_element_with_children() -> None:
    data = doc(obj(item("5", Units=None, extra="<Units><b>s</b></Units>")))
    rejects(data, 'Item ID="5"/Units', "expected text, found child elements")


@pytest.mark.parametrize(
    ("object_id", "match"),
    [
        ("65535", "object id 65535 is not in 0..65534"),
        ("70000", "not in 0..65534"),
        ("-1", "not a decimal"),
        ("3.0", "not a decimal"),
        ("0x3", "not a decimal"),
        ("\u0663", "not a decimal"),
        ("9" * 11, "not a decimal"),
    ],
)
def test_bad_object_ids(object_id: str, match: str) -> None:
    rejects(doc(obj(ObjectID=object_id)), "Object/ObjectID", match)


@pytest.mark.parametrize("resource_id", ["65535", "-1", "x", ""])
def test_bad_resource_ids(resource_id: str) -> None:
    rejects(doc(obj(item(resource_id))), f'Item ID="{resource_id}"', "resource id")


def test_duplicate_resource_ids() -> None:
    rejects(doc(obj(item("5"), item("05"))), 'Item ID="5"', "resource id 5 defined twice")


def test_duplicate_object_in_one_file() -> None:
    rejects(doc(obj(), obj()), "Object[2]", "object 3 version 1.1 defined twice")


@pytest.mark.parametrize("ops", ["WR", "RWE", "X", "R,W"])
def test_unknown_operations(ops: str) -> None:
    rejects(doc(obj(item("2", Operations=ops))), 'Item ID="2"/Operations', "unknown operations")


@pytest.mark.parametrize("type_", ["Int", "Unsigned", "Integer64", "Objlink"])
def test_unknown_types(type_: str) -> None:
    rejects(doc(obj(item("2", Type=type_))), 'Item ID="2"/Type', "unknown resource type")


@pytest.mark.parametrize("ops", ["R", "W", "RW", ""])
def test_non_executable_without_type(ops: str) -> None:
    rejects(
        doc(obj(item("5", Operations=ops, Type=""))),
        'Item ID="5"/Type',
        "not executable.*needs a type",
    )


@pytest.mark.parametrize(
    ("where", "fields", "match"),
    [
        ("Object/MultipleInstances", {"MultipleInstances": "Many"}, "neither Multiple nor Single"),
        ("Object/Mandatory", {"Mandatory": "Yes"}, "neither Mandatory nor Optional"),
        (
            "Object/ObjectVersion",
            {"ObjectVersion": "1.0.1"},
            "object version '1.0.1' is not MAJOR.MINOR",
        ),
        ("Object/ObjectVersion", {"ObjectVersion": "v1"}, "not MAJOR.MINOR"),
        ("Object/LWM2MVersion", {"LWM2MVersion": "1.x"}, "LwM2M version"),
    ],
)
def test_bad_object_values(where: str, fields: dict[str, str], match: str) -> None:
    rejects(doc(obj(**fields)), where, match)


def test_bad_item_values() -> None:
    rejects(doc(obj(item("1", MultipleInstances="2"))), 'Item ID="1"/MultipleInstances', "neither")
    rejects(doc(obj(item("1", Mandatory="M"))), 'Item ID="1"/Mandatory', "neither")


@pytest.mark.parametrize(
    ("urn", "match"),
    [
        ("urn:oma:lwm2m:oma:4", "names object 4, not ObjectID 3"),
        ("urn:oma:lwm2m:oma:3:1.2", "names version 1.2, not ObjectVersion 1.1"),
        ("urn:oma:lwm2m:ext:3:1.1", "'oma' range"),
        ("urn:oma:lwm2m:oma:3:1.x", "is not urn:oma:lwm2m"),
        ("urn:example:3", "is not urn:oma:lwm2m"),
        ("urn:oma:lwm2m:oma:3:1.1 extra", "is not urn:oma:lwm2m"),
    ],
)
def test_contradicting_urn(urn: str, match: str) -> None:
    rejects(doc(obj(ObjectURN=urn)), "Object/ObjectURN", match)


def test_ddf_error_is_a_model_error() -> None:
    error = rejects(doc(obj(ObjectID="x")), "Object/ObjectID", "not a decimal")
    assert isinstance(error, ModelError)
    assert str(error).startswith("test.xml, element <Object/ObjectID>: ")


# --- files --------------------------------------------------------------------------------------


def test_load_ddf(tmp_path: Path) -> None:
    file = tmp_path / "3.xml"
    file.write_bytes(doc())
    assert load_ddf(file)[0].id == 3
    assert load_ddf(str(file))[0].id == 3
    file.write_bytes(doc(obj(ObjectID="x")))
    with pytest.raises(DdfError) as info:
        load_ddf(file)
    assert (info.value.file, info.value.element) == (str(file), "Object/ObjectID")


@pytest.mark.parametrize("name", ["missing.xml", "."])
def test_load_ddf_unreadable(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(DdfError, match="cannot read file") as info:
        load_ddf(path)
    assert info.value.file == str(path)


# --- writing ------------------------------------------------------------------------------------


def test_dump_round_trip_and_shape() -> None:
    definition = parse_one(
        doc(obj(item("0"), item("1", Operations="E", Type="Opaque"), item("2", Operations="")))
    )
    data = dump_ddf(definition)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<LWM2M ')
    assert b"LWM2M-v1_1.xsd" in data
    assert b'<Object ObjectType="MODefinition">' in data
    assert b"<Type></Type>" in data
    assert b"<Operations></Operations>" in data
    assert parse_ddf(data) == [definition]
    assert parse_ddf(dump_ddf([definition, ObjectDefinition(4, "Four")])) == [
        definition,
        ObjectDefinition(4, "Four"),
    ]


def test_dump_keeps_element_order_of_the_schema() -> None:
    text = dump_ddf(parse_one(doc())).decode()
    order = [
        "<Name>",
        "<Description1>",
        "<ObjectID>",
        "<ObjectURN>",
        "<LWM2MVersion>",
        "<ObjectVersion>",
        "<MultipleInstances>",
        "<Mandatory>",
        "<Resources>",
        "<Description2>",
    ]
    positions = [text.index(tag) for tag in order]
    assert positions == sorted(positions)
    item_order = [
        "<Item ID=",
        "<Operations>",
        "<Type>",
        "<RangeEnumeration>",
        "<Units>",
        "<Description>",
    ]
    positions = [text.index(tag) for tag in item_order]
    assert positions == sorted(positions)


def test_dump_escapes_markup() -> None:
    definition = ObjectDefinition(5, "A & <B>", description="]]> and </Description1>")
    assert parse_ddf(dump_ddf(definition)) == [definition]


def test_dump_rejects() -> None:
    with pytest.raises(DdfError, match="nothing to write"):
        dump_ddf([])
    with pytest.raises(DdfError, match="character XML cannot carry") as info:
        dump_ddf(ObjectDefinition(5, "bell\x07"))
    assert info.value.element == "Object ID=5/Name"
    res = ResourceDefinition(1, "r", Operations.R, False, False, T.STRING, units="\x00")
    with pytest.raises(DdfError, match="cannot carry") as info:
        dump_ddf(ObjectDefinition(5, "x", resources={1: res}))
    assert info.value.element == 'Object ID=5/Item ID="1"/Units'
