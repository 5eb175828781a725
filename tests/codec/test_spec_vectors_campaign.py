"""Spec examples as test vectors, both directions: the ones tests/codec did not have yet.

Checked against what tests/codec already holds (tests/vectors/tlv, oma_json, senml/*), this file
adds only missing vectors or their missing direction, plus the spec examples that are wrong as
printed (each such test says why, with the evidence, and tests the corrected form).

Sources (facts only: bytes and values):

- [TS-1.1-draft] LwM2M TS 1.1 draft 2017-11-01, public markdown ``omadm/omaoriginal``
  ``TS_Core/OMA-TS-LightweightM2M_Core-V1_1.md``. Its section numbers are those of TS 1.0.x
  (§6.4 data formats = §7.4 of TS 1.1/1.1.1, §5.4.2 Discover, §5.3.1 Register, §5.2.7.3
  Bootstrap-Discover, §6.2.3 object versions).
- [TS-1.1] OMA-TS-LightweightM2M_Core-V1_1-20180710-A, SenML tables 7.4.4-2 .. 7.4.4-8, as
  Eclipse Wakaama copies them byte for byte (tests/senml_json_tests.c, senml_cbor_tests.c, each
  test naming its table). In TS 1.1.1 the same tables are in §7.4.5 (SenML JSON) and §7.4.6
  (SenML CBOR).
- RFC 6690 §5 (link format examples), RFC 8428 §5.1.1 and §5.1.4 (SenML), RFC 8949 Appendix A
  (= RFC 7049 Appendix A: CBOR encodings).
"""

from __future__ import annotations

import math
import re
from typing import Any

import cbor2
import pytest

from lwm2m.codec.base import TimestampedNodes
from lwm2m.codec.cbor import CborCodec
from lwm2m.codec.link import Link, format_links, parse_links
from lwm2m.codec.oma_json import OmaJsonCodec
from lwm2m.codec.senml import JSON_LABELS, Resolved, resolve
from lwm2m.codec.senml_cbor import SenmlCborCodec
from lwm2m.codec.senml_json import SenmlJsonCodec
from lwm2m.codec.tlv import TlvCodec
from lwm2m.errors import CodecError
from lwm2m.model import (
    MultipleResource,
    Node,
    ObjectDefinition,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    Operations,
    Path,
    ResourceDefinition,
    ResourceInstance,
    ResourceType,
    SingleResource,
    Value,
)
from lwm2m.model.registry import ModelRegistry

from .conftest import make_core_model
from .strategies import TEST_MODEL, load_vectors, node_from_content

RT = ResourceType


def _res(rid: int, type_: ResourceType) -> ResourceDefinition:
    return ResourceDefinition(rid, f"r{rid}", Operations.RW, False, False, type_)


def _model() -> ModelRegistry:
    """The core objects, 65/66 (conftest) and the other objects the TS examples use."""
    registry = make_core_model()
    for definition in (
        # Object 67 of the TS's Objlnk example (Figure 19): two String resources (IP addresses)
        ObjectDefinition(
            67, "object link tests 67", resources=[_res(0, RT.STRING), _res(1, RT.STRING)]
        ),
        # "hypothetical Object ID 72", Temperature Resource ID 2 (OMA JSON / SenML history)
        ObjectDefinition(72, "hypothetical 72", multiple=True, resources=[_res(2, RT.FLOAT)]),
        # IPSO Light Control (5850 On/Off Boolean, 5851 Dimmer Integer) and Set Point (5900
        # Set Point Value Float), the objects of the Write-Composite example (Table 7.4.4-8)
        ObjectDefinition(
            3311,
            "Light Control",
            multiple=True,
            resources=[_res(5850, RT.BOOLEAN), _res(5851, RT.INTEGER)],
        ),
        ObjectDefinition(3308, "Set Point", multiple=True, resources=[_res(5900, RT.FLOAT)]),
    ):
        registry.add(definition)
    return registry


MODEL = _model()
TLV = TlvCodec()
OMA_JSON = OmaJsonCodec()
SENML_JSON = SenmlJsonCodec()
SENML_CBOR = SenmlCborCodec()
CBOR = CborCodec()
NOW = 1_700_000_000  # the reference time for RFC 8428 relative times


def _single(path: str, type_: ResourceType, value: Value) -> tuple[Path, SingleResource]:
    at = Path.parse(path)
    assert at.resource_id is not None
    return at, SingleResource(at.resource_id, type_, value)


# == TLV: the examples the TS prints wrongly ======================================================
#
# tests/vectors/tlv already holds every TLV example of §7.4.3 (1.0.x §6.4.3) both ways, in their
# corrected form. Three of them are wrong as printed; these tests keep the printed bytes, show the
# evidence, and check that the corrected bytes are the ones the vectors hold.

_TLV_VECTORS = dict(load_vectors("tlv"))

#: [TS-1.1-draft] §6.4.3.1, the rows as printed: the Model Number reads "4C 69 67 68 74 77 65
#: 69 67 74" ("Lightweigt", no second "h"), yet its length byte says 0x16 = 22 and the table
#: says "Lightweight M2M Client" (22 characters) and a total of 121 bytes.
DEVICE_ROWS_AS_PRINTED = [
    "C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65",
    "C8 01 16 4C 69 67 68 74 77 65 69 67 74 20 4D 32 4D 20 43 6C 69 65 6E 74",
    "C8 02 09 33 34 35 30 30 30 31 32 33",
    "C3 03 31 2E 30",
    "86 06",
    "41 00 01",
    "41 01 05",
    "88 07 08",
    "42 00 0E D8",
    "42 01 13 88",
    "87 08",
    "41 00 7D",
    "42 01 03 84",
    "C1 09 64",
    "C1 0A 0F",
    "83 0B",
    "41 00 00",
    "C4 0D 51 82 42 8F",
    "C6 0E 2B 30 32 3A 30 30",
    "C1 10 55",
]

#: [TS-1.1-draft] §6.4.3.2 C), as printed: the Object Instance TLV says 0x0D (13) bytes follow,
#: the rows after it are 3 + 6 + 3 + 3 = 15 bytes (0x0F), and the TS's own total is 18 = 3 + 15.
SERVER_ROWS_AS_PRINTED = ["08 00 0D", "C1 00 01", "C4 01 00 01 51 80", "C1 06 01", "C1 07 55"]

#: [TS-1.1-draft] §6.4.3.3 example 2), as printed: each Object Instance TLV says 0x23 (35) bytes,
#: its rows are 14 + 18 + 6 = 38 bytes (0x26).
OBJ66_ROWS_AS_PRINTED = [
    "08 00 23",
    "C8 00 0B 6D 79 53 65 72 76 69 63 65 20 31",
    "C8 01 0F 49 6E 74 65 72 6E 65 74 2E 31 35 2E 32 33 34",
    "C4 02 00 43 00 00",
    "08 01 23",
    "C8 00 0B 6D 79 53 65 72 76 69 63 65 20 32",
    "C8 01 0F 49 6E 74 65 72 6E 65 74 2E 31 35 2E 32 33 35",
    "C4 02 FF FF FF FF",
]


def _rows(rows: list[str]) -> bytes:
    return bytes.fromhex("".join(rows).replace(" ", ""))


def test_tlv_device_instance_as_printed_is_a_spec_error() -> None:
    """§6.4.3.1 (1.1: §7.4.3.1): the printed Model Number misses one byte ("Lightweigt")."""
    printed = _rows(DEVICE_ROWS_AS_PRINTED)
    model_number = _rows(DEVICE_ROWS_AS_PRINTED[1:2])
    # evidence: the length byte says 22, 21 bytes follow; the payload is 120 bytes, not 121
    assert model_number[2] == 0x16
    assert model_number[3:] == b"Lightweigt M2M Client"
    assert len(model_number) - 3 == 21
    assert len(printed) == 120
    with pytest.raises(
        CodecError,
        match=re.escape("/3/0: invalid TLV: unexpected Object Instance TLV at offset 50"),
    ):
        TLV.decode(printed, Path(3, 0), MODEL)
    # the corrected form ("Lightweight", 121 bytes) is the vector, and it decodes and encodes
    corrected = printed.replace(b"Lightweigt", b"Lightweight")
    vector = _TLV_VECTORS["device_instance.json"]
    assert corrected.hex().upper() == vector["hex"].upper()
    node = node_from_content(Path(3, 0), vector["content"], MODEL)
    assert TLV.decode(corrected, Path(3, 0), MODEL) == node
    assert TLV.encode(node, Path(3, 0), MODEL) == corrected
    # §6.4.3.2 A) prints the same rows behind 08 00 79: 0x79 = 121 counts the corrected form
    assert len(corrected) == 0x79


def test_tlv_server_object_as_printed_is_a_spec_error() -> None:
    """§6.4.3.2 C) (1.1: §7.4.3.2 C): the Object Instance length byte is 0x0D, not 0x0F."""
    printed = _rows(SERVER_ROWS_AS_PRINTED)
    assert len(printed) == 18  # the TS's total
    assert printed[2] == 0x0D
    assert len(printed) - 3 == 0x0F  # what really follows the Object Instance TLV header
    with pytest.raises(
        CodecError,
        match=re.escape("/1: invalid TLV: truncated TLV (need 1 bytes at offset 16, 0 left)"),
    ):
        TLV.decode(printed, Path(1), MODEL)
    corrected = printed[:2] + b"\x0f" + printed[3:]
    vector = _TLV_VECTORS["server_object.json"]
    assert corrected.hex().upper() == vector["hex"].upper()
    node = node_from_content(Path(1), vector["content"], MODEL)
    assert TLV.decode(corrected, Path(1), MODEL) == node
    assert TLV.encode(node, Path(1), MODEL) == corrected


def test_tlv_object_66_as_printed_is_a_spec_error() -> None:
    """§6.4.3.3 example 2) (1.1: §7.4.3.3): both Object Instance lengths are 0x23, not 0x26."""
    printed = _rows(OBJ66_ROWS_AS_PRINTED)
    first = _rows(OBJ66_ROWS_AS_PRINTED[1:4])
    second = _rows(OBJ66_ROWS_AS_PRINTED[5:8])
    assert len(first) == len(second) == 0x26
    assert printed[2] == printed[len(first) + 5] == 0x23
    with pytest.raises(
        CodecError,
        match=re.escape("/66: invalid TLV: truncated TLV (need 4 bytes at offset 37, 1 left)"),
    ):
        TLV.decode(printed, Path(66), MODEL)
    corrected = b"\x08\x00\x26" + first + b"\x08\x01\x26" + second
    vector = _TLV_VECTORS["objlnk_object.json"]
    assert corrected.hex().upper() == vector["hex"].upper()
    node = node_from_content(Path(66), vector["content"], MODEL)
    assert TLV.decode(corrected, Path(66), MODEL) == node
    assert TLV.encode(node, Path(66), MODEL) == corrected


# == OMA JSON (11543) =============================================================================

#: [TS-1.1-draft] §6.4.4 (1.1: §7.4.4): "a notification about a Resource containing multiple
#: historical representations of a Temperature Resource (ID:2) (e.g. Instance ID:1 of
#: hypothetical Object ID 72)". In OMA JSON a positive bt is absolute and t is relative to it.
OMA_JSON_HISTORY_72 = (
    '{"bn":"/72/","e":[{"n":"1/2","v":22.4,"t":-5},{"n":"1/2","v":22.9,"t":-30},'
    '{"n":"1/2","v":24.1,"t":-50}],"bt":25462634}'
)


def test_oma_json_history_of_object_72_both_ways() -> None:
    at = Path(72, 1, 2)
    groups = [
        TimestampedNodes(25462634 + t, {at: SingleResource(2, RT.FLOAT, v)})
        for t, v in ((-5, 22.4), (-30, 22.9), (-50, 24.1))
    ]
    assert OMA_JSON.decode_timestamped(OMA_JSON_HISTORY_72.encode(), at, MODEL) == groups
    # a plain decode keeps the most recent value
    assert OMA_JSON.decode(OMA_JSON_HISTORY_72.encode(), at, MODEL) == groups[0].nodes[at]
    # our encoder writes absolute t without bt (Leshan's shape): not canonical, so round trip
    encoded = OMA_JSON.encode_timestamped(groups, at, MODEL)
    assert OMA_JSON.decode_timestamped(encoded, at, MODEL) == groups


#: [TS-1.1-draft] §6.4.4: "a request to Object 65 ... (Read /65/0) would return the following
#: JSON payload", the Objlnk hierarchy under bn "/" (objects 65, 66 and 67), as printed.
OMA_JSON_TREE_AS_PRINTED = (
    '{"bn":"/","e":['
    '{"n":"65/0/0/0","ov":"66:0"},{"n":"65/0/0/1","ov":"66:1"},'
    '{"n":"65/0/1","sv":"8613800755500"},{"n":"65/0/2","v":1},'
    '{"n":"66/0/0","sv":"myService1"},{"n":"66/0/1","sv":"Internet.15.234"},'
    '{"n":"66/0/2","ov":"67:0"},{"n":"66/1/0","sv":"myService2"},'
    '{"n":"66/1/1","sv":"Internet.15.235"},{"n":"66/1/2","ov":"FFFF:FFFF"},'
    '{"n":"67/0/0","sv":"85.76.76.84"},{"n":"67/0/1","sv":"85.76.255.255"}]}'
)
OMA_JSON_TREE = OMA_JSON_TREE_AS_PRINTED.replace("FFFF:FFFF", "65535:65535")

#: What the /65/0 part of the tree holds.
INSTANCE_65_0 = ObjectInstance(
    0,
    [
        MultipleResource.of(0, RT.OBJLNK, {0: ObjectLink(66, 0), 1: ObjectLink(66, 1)}),
        SingleResource(1, RT.STRING, "8613800755500"),
        SingleResource(2, RT.INTEGER, 1),
    ],
)


def test_oma_json_tree_null_link_in_hex_is_a_spec_error() -> None:
    """The printed "ov":"FFFF:FFFF" is hex; Objlnk text is decimal "oid:iid" (Appendix C), as the
    other links of the same payload ("66:0", "67:0") and the TS 1.1 SenML form of this example
    (Table 7.4.4-4, Wakaama: "Corrected /66/1/2 from hex to decimal") show."""
    with pytest.raises(CodecError, match=r"^/66/1/2: invalid Objlnk value: objlnk 'FFFF:FFFF'"):
        OMA_JSON.decode(OMA_JSON_TREE_AS_PRINTED.encode(), Path(66, 1, 2), MODEL)
    # the corrected entry is the null link
    entry = '{"bn":"/66/1/2","e":[{"ov":"65535:65535"}]}'
    null_link = SingleResource(2, RT.OBJLNK, ObjectLink(65535, 65535))
    assert OMA_JSON.decode(entry.encode(), Path(66, 1, 2), MODEL) == null_link
    assert OMA_JSON.encode(null_link, Path(66, 1, 2), MODEL).decode() == entry


def test_oma_json_tree_with_linked_instances_is_refused_naming_the_outside_path() -> None:
    """TS 1.0 §6.4.4 lets a client "return a hierarchy" for Read /65/0: the instances its
    Objlnk resources point at (/66/0, /66/1, /67/0) in the same payload. We do not take that
    optional form: a payload naming paths outside the request is refused with a CodecError that
    names the first one, rather than half-read (docs/design.md, "Codecs"). The /65/0 part alone
    decodes."""
    with pytest.raises(CodecError, match=r"^/66/0/0: lies outside the request path /65/0"):
        OMA_JSON.decode(OMA_JSON_TREE.encode(), Path(65, 0), MODEL)
    only_65 = OMA_JSON.encode(INSTANCE_65_0, Path(65, 0), MODEL)
    assert OMA_JSON.decode(only_65, Path(65, 0), MODEL) == INSTANCE_65_0


def test_oma_json_read_3_0_0_as_printed_is_a_spec_error() -> None:
    """[TS-1.1-draft] §6.4.4, Read /3/0/0 as printed: typographic quotes and no closing quote
    after "Open Mobile Alliance" (not JSON). Corrected, it decodes and encodes."""
    printed = (
        '{\u201cbn\u201d:\u201c/3/0/0\u201d,\u201ce\u201d:[{\u201csv":"Open Mobile Alliance}]}'
    )
    with pytest.raises(CodecError, match=r"^/3/0/0: invalid JSON"):
        OMA_JSON.decode(printed.encode(), Path(3, 0, 0), MODEL)
    corrected = '{"bn":"/3/0/0","e":[{"sv":"Open Mobile Alliance"}]}'
    at, node = _single("/3/0/0", RT.STRING, "Open Mobile Alliance")
    assert OMA_JSON.decode(corrected.encode(), at, MODEL) == node
    assert OMA_JSON.encode(node, at, MODEL).decode() == corrected


# == SenML JSON (110) and SenML CBOR (112): the TS 1.1 tables 7.4.4-3 .. 7.4.4-8 ==================
#
# Table 7.4.4-2 (Read /3/0) and 7.4.4-5 (Read /3/0/0) are already vectors of
# tests/vectors/senml/senml_json.json and senml_cbor.json (ts-read-device-instance,
# read-single-resource); 7.4.4-5 as printed lacks a closing quote (Wakaama: "Corrected for missing
# closing quote"), its corrected form is that vector.

#: Table 7.4.4-6: Read-Composite request body.
READ_COMPOSITE_REQUEST = {
    "json": '[{"n":"/3/0/0"},{"n":"/3/0/9"},{"n":"/1/0/1"}]',
    "cbor": "83a100662f332f302f30a100662f332f302f39a100662f312f302f31",
}
#: Table 7.4.4-7: Read-Composite response (JSON spacing as Wakaama copies it).
READ_COMPOSITE_RESPONSE = {
    "json": '[{"n":"/3/0/0", "vs":"Open Mobile Alliance"},{"n" :"/3/0/9", "v":95},'
    '{"n":"/1/0/1", "v":86400}]',
    "cbor": "83a200662f332f302f3003744f70656e204d6f62696c6520416c6c69616e6365a200662f332f302f39"
    "02185fa200662f312f302f31021a00015180",
}
#: Table 7.4.4-8: Write-Composite request.
WRITE_COMPOSITE = {
    "json": '[{"n":"/3311/0/5850", "vb":false},{"n":"/3311/1/5850", "vb":false},'
    '{"n":"/3311/2/5851", "v":20},{"n":"/3308/0/5900", "v":18}]',
    "cbor": "84a2006c2f333331312f302f3538353004f4a2006c2f333331312f312f3538353004f4a2006c2f3333"
    "31312f322f353835310214a2006c2f333330382f302f353930300212",
}
#: Table 7.4.4-4: Read /65/0 with the linked instances under bn "/" (null link corrected to
#: decimal, see test_oma_json_tree_null_link_in_hex_is_a_spec_error).
OBJLNK_TREE = {
    "json": '[{"bn":"/","n":"65/0/0/0","vlo":"66:0"},{"n":"65/0/0/1","vlo":"66:1"},'
    '{"n":"65/0/1","vs":"8613800755500"},{"n":"65/0/2","v":1},'
    '{"n":"66/0/0","vs":"myService1"},{"n":"66/0/1","vs":"Internet.15.234"},'
    '{"n":"66/0/2","vlo":"67:0"},{"n":"66/1/0","vs":"myService2"},'
    '{"n":"66/1/1","vs":"Internet.15.235"},{"n":"66/1/2","vlo":"65535:65535"},'
    '{"n":"67/0/0","vs":"85.76.76.84"},{"n":"67/0/1","vs":"85.76.255.255"}]',
    "cbor": "8ca321612f006836352f302f302f3063766c6f6436363a30a2006836352f302f302f3163766c6f64363"
    "63a31a2006636352f302f31036d38363133383030373535353030a2006636352f302f320201a20066363"
    "62f302f30036a6d795365727669636531a2006636362f302f31036f496e7465726e65742e31352e32333"
    "4a2006636362f302f3263766c6f6436373a30a2006636362f312f30036a6d795365727669636532a2006"
    "636362f312f31036f496e7465726e65742e31352e323335a2006636362f312f3263766c6f6b363535333"
    "53a3635353335a2006636372f302f30036b38352e37362e37362e3834a2006636372f302f31036d38352e"
    "37362e3235352e323535",
}
#: Table 7.4.4-3: the historical notification of /72/1/2 (bt 25462634, t -5, -30, -50).
HISTORY_72 = {
    "json": '[{"bn":"/72/","bt":25462634,"n":"1/2","v":22.4,"t":-5},'
    '{"n":"1/2","v":22.9,"t":-30},{"n":"1/2","v":24.1,"t":-50}]',
    "cbor": "83a521642f37322f221a0184876a0063312f3202fb40366666666666660624a30063312f3202fb4036e6"
    "666666666606381da30063312f3202fb403819999999999a063831",
}

_SENML = [("json", SENML_JSON), ("cbor", SENML_CBOR)]


def _payload(vector: dict[str, str], kind: str) -> bytes:
    return vector["json"].encode() if kind == "json" else bytes.fromhex(vector["cbor"])


def _leaves(*items: tuple[Path, Node]) -> dict[Path, Node | None]:
    return dict(items)


READ_COMPOSITE_NODES = _leaves(
    _single("/3/0/0", RT.STRING, "Open Mobile Alliance"),
    _single("/3/0/9", RT.INTEGER, 95),
    _single("/1/0/1", RT.INTEGER, 86400),
)
WRITE_COMPOSITE_NODES = _leaves(
    _single("/3311/0/5850", RT.BOOLEAN, False),
    _single("/3311/1/5850", RT.BOOLEAN, False),
    _single("/3311/2/5851", RT.INTEGER, 20),
    _single("/3308/0/5900", RT.FLOAT, 18.0),  # "v":18 for a Float resource
)


def test_senml_cbor_vectors_are_the_json_tables() -> None:
    """The CBOR hex above is each JSON table with the RFC 8428 §6 labels (Wakaama's bytes)."""
    labels = {"bn": -2, "bt": -3, "n": 0, "v": 2, "vs": 3, "vb": 4, "t": 6}
    for vector in (
        READ_COMPOSITE_REQUEST,
        READ_COMPOSITE_RESPONSE,
        WRITE_COMPOSITE,
        OBJLNK_TREE,
        HISTORY_72,
    ):
        records = SENML_JSON.decode_pack(vector["json"].encode())
        relabelled = [{labels.get(k, k): v for k, v in r.items()} for r in records]  # type: ignore[union-attr]
        assert cbor2.dumps(relabelled).hex() == vector["cbor"]


@pytest.mark.parametrize(("kind", "codec"), _SENML, ids=[k for k, _ in _SENML])
def test_senml_read_composite_request_both_ways(kind: str, codec: Any) -> None:
    """Table 7.4.4-6: canonical (full names, no bn), so both directions compare bytes."""
    data = _payload(READ_COMPOSITE_REQUEST, kind)
    paths = [Path(3, 0, 0), Path(3, 0, 9), Path(1, 0, 1)]
    assert codec.decode_paths(data) == paths
    assert codec.encode_paths(paths) == (
        READ_COMPOSITE_REQUEST["json"].encode() if kind == "json" else data
    )


@pytest.mark.parametrize(("kind", "codec"), _SENML, ids=[k for k, _ in _SENML])
def test_senml_read_composite_response(kind: str, codec: Any) -> None:
    """Table 7.4.4-7: names in n (we write bn): decode, then decode(encode(x)) == x."""
    data = _payload(READ_COMPOSITE_RESPONSE, kind)
    assert codec.decode_nodes(data, MODEL) == READ_COMPOSITE_NODES
    requested = [Path(3, 0, 0), Path(3, 0, 9), Path(1, 0, 1)]  # the Table 7.4.4-6 request
    assert codec.decode_nodes(data, MODEL, paths=requested) == READ_COMPOSITE_NODES
    encoded = codec.encode_nodes(READ_COMPOSITE_NODES, MODEL)
    assert codec.decode_nodes(encoded, MODEL) == READ_COMPOSITE_NODES


@pytest.mark.parametrize(("kind", "codec"), _SENML, ids=[k for k, _ in _SENML])
def test_senml_write_composite(kind: str, codec: Any) -> None:
    """Table 7.4.4-8 (IPSO 3311 and 3308): decode, then decode(encode(x)) == x."""
    data = _payload(WRITE_COMPOSITE, kind)
    decoded = codec.decode_nodes(data, MODEL)
    assert decoded == WRITE_COMPOSITE_NODES
    set_point = decoded[Path(3308, 0, 5900)]
    assert type(set_point.value) is float  # type: ignore[union-attr]
    encoded = codec.encode_nodes(WRITE_COMPOSITE_NODES, MODEL)
    assert codec.decode_nodes(encoded, MODEL) == WRITE_COMPOSITE_NODES


@pytest.mark.parametrize(("kind", "codec"), _SENML, ids=[k for k, _ in _SENML])
def test_senml_objlnk_tree(kind: str, codec: Any) -> None:
    """Table 7.4.4-4: one pack holding /65/0 and the instances it links to. Read as a composite
    with the three paths it covers; our encoder writes one bn per instance, so round trip."""
    data = _payload(OBJLNK_TREE, kind)
    paths = [Path(65, 0), Path(66), Path(67, 0)]
    expected: dict[Path, Node | None] = {
        Path(65, 0): INSTANCE_65_0,
        Path(66): ObjectNode(
            66,
            [
                ObjectInstance(
                    0,
                    [
                        SingleResource(0, RT.STRING, "myService1"),
                        SingleResource(1, RT.STRING, "Internet.15.234"),
                        SingleResource(2, RT.OBJLNK, ObjectLink(67, 0)),
                    ],
                ),
                ObjectInstance(
                    1,
                    [
                        SingleResource(0, RT.STRING, "myService2"),
                        SingleResource(1, RT.STRING, "Internet.15.235"),
                        SingleResource(2, RT.OBJLNK, ObjectLink(65535, 65535)),
                    ],
                ),
            ],
        ),
        Path(67, 0): ObjectInstance(
            0,
            [
                SingleResource(0, RT.STRING, "85.76.76.84"),
                SingleResource(1, RT.STRING, "85.76.255.255"),
            ],
        ),
    }
    assert codec.decode_nodes(data, MODEL, paths=paths) == expected
    leaves = codec.decode_nodes(data, MODEL)
    assert len(leaves) == 12
    assert leaves[Path(65, 0, 0, 1)] == ResourceInstance(1, RT.OBJLNK, ObjectLink(66, 1))
    assert leaves[Path(66, 1, 2)] == SingleResource(2, RT.OBJLNK, ObjectLink(65535, 65535))
    encoded = codec.encode_nodes(expected, MODEL)
    assert codec.decode_nodes(encoded, MODEL, paths=paths) == expected
    assert codec.decode_nodes(encoded, MODEL) == leaves


@pytest.mark.parametrize(("kind", "codec"), _SENML, ids=[k for k, _ in _SENML])
def test_senml_history_of_object_72(kind: str, codec: Any) -> None:
    """Table 7.4.4-3. The TS carries bt 25462634 over from OMA JSON, where a positive bt is
    absolute; under RFC 8428 §4.5.3 (which SenML follows) a time below 2**28 is relative to now,
    so bt + t = 25462629 s is about 295 days in the future: the example contradicts its own
    format. Decoded as RFC 8428 says (with a reference time), then round trip."""
    data = _payload(HISTORY_72, kind)
    assert 25462634 < 2**28
    with pytest.raises(CodecError, match=r"^/72/1/2: relative time 25462629 \(below 2\*\*28\)"):
        codec.decode_timestamped(data, MODEL)
    at = Path(72, 1, 2)
    groups = [
        TimestampedNodes(NOW + 25462634 + t, {at: SingleResource(2, RT.FLOAT, v)})
        for t, v in ((-5, 22.4), (-30, 22.9), (-50, 24.1))
    ]
    assert codec.decode_timestamped(data, MODEL, now=NOW) == groups
    encoded = codec.encode_timestamped(groups, MODEL)
    assert codec.decode_timestamped(encoded, MODEL) == groups


# == RFC 8428 (SenML) examples at the resolution layer ============================================
#
# §5.1.2 and its §6 CBOR form are in test_senml.py; these names are URNs, not LwM2M paths, so only
# the RFC 8428 layer (resolve) applies to them.


def test_rfc8428_5_1_1_single_datapoint() -> None:
    pack = SENML_JSON.decode_pack(b'[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]')
    assert resolve(pack, JSON_LABELS) == [Resolved("urn:dev:ow:10e2073a01080063", 0, "v", 23.1)]


#: RFC 8428 §5.1.2 "Multiple Data Points" (the base values) and §5.1.4 "Resolved Data", the same
#: pack after resolution.
RFC8428_5_1_2 = (
    '[{"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,"bu":"A","bver":5,'
    '"n":"voltage","u":"V","v":120.1},{"n":"current","t":-5,"v":1.2},'
    '{"n":"current","t":-4,"v":1.3},{"n":"current","t":-3,"v":1.4},'
    '{"n":"current","t":-2,"v":1.5},{"n":"current","t":-1,"v":1.6},{"n":"current","v":1.7}]'
)
RFC8428_5_1_4 = (
    '[{"n":"urn:dev:ow:10e2073a0108006:voltage","u":"V","v":120.1,"t":1.276020076001e+09},'
    '{"n":"urn:dev:ow:10e2073a0108006:current","u":"A","v":1.2,"t":1.276020071001e+09},'
    '{"n":"urn:dev:ow:10e2073a0108006:current","u":"A","v":1.3,"t":1.276020072001e+09},'
    '{"n":"urn:dev:ow:10e2073a0108006:current","u":"A","v":1.4,"t":1.276020073001e+09},'
    '{"n":"urn:dev:ow:10e2073a0108006:current","u":"A","v":1.5,"t":1.276020074001e+09},'
    '{"n":"urn:dev:ow:10e2073a0108006:current","u":"A","v":1.6,"t":1.276020075001e+09},'
    '{"n":"urn:dev:ow:10e2073a0108006:current","u":"A","v":1.7,"t":1.276020076001e+09}]'
)


def test_rfc8428_5_1_4_resolved_data() -> None:
    """Resolving §5.1.2 gives §5.1.4; a resolved pack resolves to itself."""
    base = resolve(SENML_JSON.decode_pack(RFC8428_5_1_2.encode()), JSON_LABELS)
    resolved = resolve(SENML_JSON.decode_pack(RFC8428_5_1_4.encode()), JSON_LABELS)
    assert base == resolved
    assert [r.time for r in resolved] == [1.276020076001e09] + [
        1.276020071001e09 + i for i in range(6)
    ]


# == CoRE Link Format (40): Register, Discover and Bootstrap-Discover examples ====================
#
# test_link.py holds four LwM2M examples (Register with rt/ct/ver, Discover with pmin/dim, a
# Bootstrap-Discover with ssid/uri, one attribute list); these are the TS's other printed ones.

#: (section, text as printed, the links). Texts with ", " separators are not canonical: they
#: decode, and the links format back to the same text without the spaces.
LINK_EXAMPLES: list[tuple[str, str, list[Link]]] = [
    (
        "§5.3.1 Register, objects only",
        "</1>, </2>, </3>, </4>, </5>",
        [Link("/1"), Link("/2"), Link("/3"), Link("/4"), Link("/5")],
    ),
    (
        "§5.3.1 Register, the example client's instances",
        "</1/0>,</1/1>,</2/0>,</2/1>,</2/2>,</2/3>,</2/4>,</3/0>,</4/0>,</5>",
        [Link(u) for u in ("/1/0", "/1/1", "/2/0", "/2/1", "/2/2", "/2/3", "/2/4", "/3/0")]
        + [Link("/4/0"), Link("/5")],
    ),
    (
        "§5.3.1 Register with ct=11543 on the root link",
        "</>;ct=11543, </1/0>,</1/1>,</2/0>,</2/1>,</2/2>,</2/3>,</2/4>,</3/0>,</4/0>,</5>",
        [Link("/", {"ct": 11543})]
        + [Link(u) for u in ("/1/0", "/1/1", "/2/0", "/2/1", "/2/2", "/2/3", "/2/4", "/3/0")]
        + [Link("/4/0"), Link("/5")],
    ),
    (
        "§5.4.2 Discover /3",
        "</3>;pmin=10,</3/0>,</3/0/1>, </3/0/2>, </3/0/3>, </3/0/4>, </3/0/6>,</3/0/7>,"
        "</3/0/8>,</3/0/11>,</3/0/16>",
        [Link("/3", {"pmin": 10}), Link("/3/0")]
        + [Link(f"/3/0/{r}") for r in (1, 2, 3, 4, 6, 7, 8, 11, 16)],
    ),
    (
        "§5.4.2 Discover /3/0",
        "</3/0>;pmax=60, </3/0/1>, </3/0/2>, </3/0/3>, </3/0/4>, </3/0/6>;dim=8,"
        "</3/0/7>;dim=8;gt=50;lt=42.2,</3/0/8>;dim=8,</3/0/11>,</3/0/16>",
        [Link("/3/0", {"pmax": 60})]
        + [Link(f"/3/0/{r}") for r in (1, 2, 3, 4)]
        + [
            Link("/3/0/6", {"dim": 8}),
            Link("/3/0/7", [("dim", 8), ("gt", 50.0), ("lt", 42.2)]),
            Link("/3/0/8", {"dim": 8}),
            Link("/3/0/11"),
            Link("/3/0/16"),
        ],
    ),
    (
        "§5.4.2 Discover /3/0/7 (inherited pmin and pmax)",
        "</3/0/7>;dim=8;pmin=10;pmax=60;gt=50;lt=42.2",
        [Link("/3/0/7", [("dim", 8), ("pmin", 10), ("pmax", 60), ("gt", 50.0), ("lt", 42.2)])],
    ),
    (
        "§5.4.2 Discover /3/0/7 from Server 1",
        "</3/0/7>;dim=8;gt=50;lt=42.2",
        [Link("/3/0/7", [("dim", 8), ("gt", 50.0), ("lt", 42.2)])],
    ),
    (
        "§5.4.2 Discover /3/0/7 from Server 2",
        "</3/0/7>;dim=8;pmax=300;gt=80;lt=75.5",
        [Link("/3/0/7", [("dim", 8), ("pmax", 300), ("gt", 80.0), ("lt", 75.5)])],
    ),
    (
        "§6.1 Discover /1 (two Server instances)",
        "</1/0/0>,</1/0/1>,</1/0/6>,</1/0/7>, </1/0/8>, </1/1/0>,</1/1/1>,</1/1/2>,</1/1/4>,"
        "</1/1/6>,</1/1/7>, </1/1/8>",
        [Link(f"/1/0/{r}") for r in (0, 1, 6, 7, 8)]
        + [Link(f"/1/1/{r}") for r in (0, 1, 2, 4, 6, 7, 8)],
    ),
    # RFC 6690 §5: the /.well-known/core examples
    (
        "RFC 6690 §5 (first example)",
        '</sensors/temp>;if="sensor",</sensors/light>;if="sensor"',
        [Link("/sensors/temp", {"if": "sensor"}), Link("/sensors/light", {"if": "sensor"})],
    ),
    (
        "RFC 6690 §5 (anchor, rel, title, ct)",
        '</sensors>;ct=40;title="Sensor Index",'
        '</sensors/temp>;rt="temperature-c";if="sensor",'
        '</sensors/light>;rt="light-lux";if="sensor",'
        '<http://www.example.com/sensors/t123>;anchor="/sensors/temp";rel="describedby",'
        '</t>;anchor="/sensors/temp";rel="alternate"',
        [
            Link("/sensors", [("ct", 40), ("title", "Sensor Index")]),
            Link("/sensors/temp", [("rt", "temperature-c"), ("if", "sensor")]),
            Link("/sensors/light", [("rt", "light-lux"), ("if", "sensor")]),
            Link(
                "http://www.example.com/sensors/t123",
                [("anchor", "/sensors/temp"), ("rel", "describedby")],
            ),
            Link("/t", [("anchor", "/sensors/temp"), ("rel", "alternate")]),
        ],
    ),
]


@pytest.mark.parametrize(
    ("section", "text", "links"), LINK_EXAMPLES, ids=[s for s, _, _ in LINK_EXAMPLES]
)
def test_link_examples_both_ways(section: str, text: str, links: list[Link]) -> None:
    assert parse_links(text) == links, section
    canonical = text.replace(", ", ",")
    assert format_links(links) == canonical
    assert parse_links(canonical) == links


def test_link_discover_typed_access() -> None:
    """§5.4.2: the attributes of the Discover examples read back typed and valid."""
    links = parse_links(LINK_EXAMPLES[4][1])
    assert links[0].pmax == 60
    resource_7 = links[6]
    assert (resource_7.dim, resource_7.gt, resource_7.lt) == (8, 50.0, 42.2)
    assert [link.dim for link in links if link.dim is not None] == [8, 8, 8]
    full = parse_links(LINK_EXAMPLES[5][1])[0]
    assert (full.pmin, full.pmax, full.gt, full.lt) == (10, 60, 50.0, 42.2)
    server_2 = parse_links(LINK_EXAMPLES[7][1])[0]
    assert (server_2.pmax, server_2.gt, server_2.lt) == (300, 80.0, 75.5)
    assert parse_links(LINK_EXAMPLES[2][1])[0].content_formats == (11543,)
    assert parse_links(LINK_EXAMPLES[3][1])[0].pmin == 10


#: [TS-1.1-draft] §5.2.7.3 Bootstrap-Discover responses as printed. The leading lwm2m="1.0" is
#: no link (RFC 6690: a link-value starts with "<"); TS 1.1 carries it on the root link
#: (</>;lwm2m="1.1", as test_link.py's example). "</0/1/>" has a trailing slash.
BOOTSTRAP_DISCOVER_AS_PRINTED = [
    'lwm2m="1.0",</0/0>;ssid=101, </0/1/>, </0/2>;ssid=102',
    'lwm2m="1.0",</0/0>;ssid=101,</0/1>, </1/0/>;ssid=101, </3/0>,</5>,</4>',
    'lwm2m="2.0",</0/0>,</0/1>;ssid=101, </1/0/>;ssid=101, </3/0>,</5>,</4>,</55>;ver=1.9, </55/0>',
]


@pytest.mark.parametrize("printed", BOOTSTRAP_DISCOVER_AS_PRINTED)
def test_link_bootstrap_discover_as_printed_is_a_spec_error(printed: str) -> None:
    with pytest.raises(CodecError, match=r"at offset 0: a link starts with '<'$"):
        parse_links(printed)
    corrected = parse_links("</>;" + printed)
    root, *objects = corrected
    assert root.path == Path()
    assert root.lwm2m_version == printed[7:10]
    assert all(link.path is not None for link in objects)
    by_path = {str(link.path): link for link in objects}
    assert by_path["/0/0"].ssid in (101, None)
    if "/55" in by_path:
        assert by_path["/55"].version == "1.9"
    assert parse_links(format_links(corrected)) == corrected


def test_link_bootstrap_discover_corrected_values() -> None:
    first = parse_links("</>;" + BOOTSTRAP_DISCOVER_AS_PRINTED[0])
    assert [(str(link.path), link.ssid) for link in first] == [
        ("/", None),
        ("/0/0", 101),
        ("/0/1", None),  # "</0/1/>": the trailing slash names the same instance
        ("/0/2", 102),
    ]


def test_link_register_ver_as_printed_is_a_spec_error() -> None:
    """[TS-1.1-draft] §6.2.3 a): "ver= “2.2”" (a space and typographic quotes) is no
    link-param; the corrected </44>;ver=2.2 reads version 2.2 and formats back."""
    printed = "</1/0>,</1/1>,</3/0>,</44>;ver= \u201c2.2\u201d,</44/0>"
    with pytest.raises(CodecError, match="parameter ver has an empty value"):
        parse_links(printed)
    corrected = "</1/0>,</1/1>,</3/0>,</44>;ver=2.2,</44/0>"
    links = parse_links(corrected)
    expected = [
        Link("/1/0"),
        Link("/1/1"),
        Link("/3/0"),
        Link("/44", {"ver": "2.2"}),
        Link("/44/0"),
    ]
    assert links == expected
    assert links[3].version == "2.2"
    assert format_links(links) == corrected


# == CBOR (60): RFC 8949 Appendix A (= RFC 7049 Appendix A) ======================================
#
# The TEST_OBJECT (tests/codec/strategies.py) resources: 0 String, 1 Integer, 2 Unsigned Integer,
# 3 Float, 4 Boolean, 5 Opaque, 6 Time. test_cbor.py has a few of these encodings; this is the
# appendix's list for every type our single-value CBOR carries, in preferred serialization (which
# our encoder writes), so both directions compare bytes.

_S, _I, _U, _F, _B, _O, _T = (f"/3441/0/{r}" for r in range(7))

RFC8949_APPENDIX_A: list[tuple[str, str, Value]] = [
    (_I, "00", 0),
    (_I, "01", 1),
    (_I, "0a", 10),
    (_I, "17", 23),
    (_I, "1818", 24),
    (_I, "1819", 25),
    (_I, "1864", 100),
    (_I, "1903e8", 1000),
    (_I, "1a000f4240", 1000000),
    (_I, "1b000000e8d4a51000", 1000000000000),
    (_U, "1bffffffffffffffff", 18446744073709551615),
    (_I, "20", -1),
    (_I, "29", -10),
    (_I, "3863", -100),
    (_I, "3903e7", -1000),
    (_F, "f90000", 0.0),
    (_F, "f98000", -0.0),
    (_F, "f93c00", 1.0),
    (_F, "fb3ff199999999999a", 1.1),
    (_F, "f93e00", 1.5),
    (_F, "f97bff", 65504.0),
    (_F, "fa47c35000", 100000.0),
    (_F, "fa7f7fffff", 3.4028234663852886e38),
    (_F, "fb7e37e43c8800759c", 1.0e300),
    (_F, "f90001", 5.960464477539063e-8),
    (_F, "f90400", 0.00006103515625),
    (_F, "f9c400", -4.0),
    (_F, "fbc010666666666666", -4.1),
    (_F, "f97c00", math.inf),
    (_F, "f9fc00", -math.inf),
    (_B, "f4", False),
    (_B, "f5", True),
    (_O, "40", b""),
    (_O, "4401020304", b"\x01\x02\x03\x04"),
    (_S, "60", ""),
    (_S, "6161", "a"),
    (_S, "6449455446", "IETF"),
    (_S, "62225c", '"\\'),
    (_S, "62c3bc", "\u00fc"),
    (_S, "63e6b0b4", "\u6c34"),
    (_S, "64f0908591", "\U00010151"),
    (_T, "c11a514b67b0", 1363896240),  # 1(1363896240)
]


@pytest.mark.parametrize(("path", "hex_", "value"), RFC8949_APPENDIX_A)
def test_rfc8949_appendix_a_both_ways(path: str, hex_: str, value: Value) -> None:
    at = Path.parse(path)
    node = CBOR.decode(bytes.fromhex(hex_), at, TEST_MODEL)
    assert isinstance(node, SingleResource)
    assert node.value == value
    assert type(node.value) is type(value)
    if isinstance(value, float):
        assert math.copysign(1.0, node.value) == math.copysign(1.0, value)  # type: ignore[arg-type]
    assert CBOR.encode(node, at, TEST_MODEL).hex() == hex_


def test_rfc8949_appendix_a_nan() -> None:
    node = CBOR.decode(bytes.fromhex("f97e00"), Path.parse(_F), TEST_MODEL)
    assert isinstance(node, SingleResource)
    assert isinstance(node.value, float)
    assert math.isnan(node.value)
    assert CBOR.encode(node, Path.parse(_F), TEST_MODEL).hex() == "f97e00"


@pytest.mark.parametrize(
    ("path", "hex_", "value", "preferred"),
    [
        # indefinite-length strings: decode only, we write the definite form
        (_O, "5f42010243030405ff", b"\x01\x02\x03\x04\x05", "450102030405"),
        (_S, "7f657374726561646d696e67ff", "streaming", "6973747265616d696e67"),
        # 0("2013-03-21T20:04:00Z"): we write Time as 1(epoch seconds)
        (_T, "c074323031332d30332d32315432303a30343a30305a", 1363896240, "c11a514b67b0"),
    ],
)
def test_rfc8949_appendix_a_decode_only(path: str, hex_: str, value: Value, preferred: str) -> None:
    at = Path.parse(path)
    node = CBOR.decode(bytes.fromhex(hex_), at, TEST_MODEL)
    assert node.value == value  # type: ignore[union-attr]
    assert CBOR.encode(node, at, TEST_MODEL).hex() == preferred
    assert CBOR.decode(bytes.fromhex(preferred), at, TEST_MODEL) == node


def test_rfc8949_appendix_a_fractional_epoch_is_no_time() -> None:
    """1(1363896240.5) is valid CBOR, but an LwM2M Time is whole seconds (Appendix C)."""
    with pytest.raises(CodecError, match=r"^/3441/0/6: Time must be a whole number of seconds$"):
        CBOR.decode(bytes.fromhex("c1fb41d452d9ec200000"), Path.parse(_T), TEST_MODEL)
