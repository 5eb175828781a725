"""DDF XML: the object definition files of LwM2M-TS-Core 1.1 §7.2 and Appendix D.

Reads files written against either OMA schema — ``LWM2M.xsd`` (LwM2M 1.0) and
``LWM2M-v1_1.xsd`` (which adds ``<LWM2MVersion>``, ``<ObjectVersion>`` and the ``Unsigned
Integer`` and ``Corelnk`` types) — and writes the ``LWM2M-v1_1.xsd`` form.

* :func:`parse_ddf` parses bytes, :func:`load_ddf` a file, :func:`dump_ddf` writes definitions.
* Parsing goes through ``defusedxml`` with DTDs forbidden: DDF files never need a DTD, so any
  ``<!DOCTYPE`` (and with it every entity-expansion or external-entity trick) is rejected.
* Every problem raises :class:`lwm2m.errors.DdfError` naming the file (``source``), the element
  (``Object/ObjectID``, ``Item ID="5"/Type``; in files with several objects, those after the
  first are written ``Object[2]/ObjectID``, ``Object[2]/Item ID="5"/Type``) and the problem.
  Nothing else escapes, whatever the input bytes.

Leniency rules. The official registry is mostly clean, but not every file follows the schema to
the letter. The loader is lenient where the meaning is unambiguous and strict where it is not:

Lenient (accepted and normalised):

1. Surrounding whitespace in every text value is stripped (``<Type> Integer </Type>``, a
   ``<RangeEnumeration>`` holding only a line break); inside a ``<Name>`` every run of whitespace
   becomes one space (0-1_1.xml spells resource 0 ``LWM2M  Server URI``).
2. The enumerated values of ``MultipleInstances``, ``Mandatory``, ``Operations`` and ``Type`` are
   matched case-insensitively (``single``, ``rw``, ``unsigned integer``).
3. An executable resource (``E``) that also gives a ``<Type>`` is accepted and stored with type
   ``none``: executable resources carry no value (§7.2; e.g. 10260 v1.0 resource 3).
4. Empty ``<Operations>`` is valid (the schemas allow it): the resource is not reachable by a
   LwM2M Server (all of /0 Security, /21 OSCORE) and is :attr:`Operations.NONE`.
5. Missing ``<LWM2MVersion>`` / ``<ObjectVersion>`` (LwM2M.xsd files, and some 1.1 files) mean
   ``1.0``; an empty element is treated as missing. A bare major version ``1`` means ``1.0``;
   numeric parts are normalised (``01.0`` is ``1.0``).
6. Missing ``<ObjectURN>`` yields the URN of §7.2.2 (:func:`default_urn`). A URN with an explicit
   ``:1.0`` suffix (10254) is accepted: it names the same object and version.
7. Missing descriptive elements (``Description1``, ``Description2``, ``RangeEnumeration``,
   ``Units``, ``Description``) are empty strings. ``Description1`` and a non-empty
   ``Description2`` are joined with a blank line into :attr:`ObjectDefinition.description`.
8. Unknown child elements are ignored (the registry's ``Submitter``/``TS`` helpers, future
   additions); so is an XML namespace on the elements, and a missing ``ObjectType`` attribute.
9. Ids may carry leading zeros (``xs:unsignedShort`` allows them).

Strict (rejected with a :class:`DdfError`):

1. Malformed XML, any DTD or entity declaration, a root element other than ``<LWM2M>`` (the
   registry index ``DDF.xml`` has ``<DDFList>``), no ``<Object>``.
2. An ``ObjectType`` attribute other than ``MODefinition`` (the registry's ``Common.xml`` holds
   reusable resources, not an object).
3. A missing or empty mandatory element: ``Name``, ``ObjectID``, ``MultipleInstances``,
   ``Mandatory``, ``Resources``; per item the ``ID`` attribute, ``Name``, ``Operations``,
   ``MultipleInstances``, ``Mandatory`` and ``Type`` (the element, even when empty).
4. An element given twice (which of the two counts is ambiguous), or an element with child
   elements where text is expected.
5. Ids that are not decimal numbers in 0..65534 (65535 is MAX_ID, §7.1), duplicate resource ids,
   and the same object id and version twice in one file.
6. Values outside the enumerations (``Operations`` other than R, W, RW, E or empty; unknown types;
   ``MultipleInstances`` other than Single/Multiple; ``Mandatory`` other than
   Mandatory/Optional), versions that are not ``MAJOR[.MINOR]``.
7. A non-executable resource without a type (10482 resource 5 "Read data" is R with an empty
   type: is it a mis-marked executable or a value of unknown type? Either guess could be wrong).
8. An ``ObjectURN`` that contradicts the ``ObjectID``, the ``ObjectVersion`` or the oma/ext/x
   range of §7.2.2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any
from xml.etree import ElementTree as _xml_writer  # writing only; parsing is defusedxml's

import defusedxml
import defusedxml.ElementTree as _safe_xml

from lwm2m.errors import DdfError, ModelError
from lwm2m.model.definitions import (
    ObjectDefinition,
    Operations,
    ResourceDefinition,
    default_urn,
)
from lwm2m.model.values import ResourceType

__all__ = ["dump_ddf", "load_ddf", "parse_ddf"]

_SCHEMA_1_1 = "http://www.openmobilealliance.org/tech/profiles/LWM2M-v1_1.xsd"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"

_URN_RE = re.compile(r"urn:oma:lwm2m:(oma|ext|x):([0-9]+)(?::([0-9]+(?:\.[0-9]+)?))?", re.ASCII)
_VERSION_RE = re.compile(r"([0-9]{1,6})(?:\.([0-9]{1,6}))?", re.ASCII)
_ID_RE = re.compile(r"[0-9]{1,10}", re.ASCII)
# Characters XML 1.0 cannot carry (§2.2 of the XML spec), refused by dump_ddf.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def parse_ddf(data: bytes, source: str = "<ddf>") -> list[ObjectDefinition]:
    """Parse a DDF document into its object definitions (one per ``<Object>``).

    :param data: the XML bytes (untrusted: parsed with defusedxml, DTDs forbidden).
    :param source: how the document is named in error messages, usually its file name.
    :raises DdfError: on any problem, naming ``source`` and the offending element.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DdfError(f"expected bytes, got {type(data).__name__}", file=source)
    try:
        root = _safe_xml.fromstring(bytes(data), forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise DdfError(f"forbidden XML construct: {exc!r}", file=source) from None
    except (_safe_xml.ParseError, ValueError, LookupError) as exc:
        # ParseError: malformed XML; LookupError/ValueError: e.g. an unknown encoding name.
        raise DdfError(f"malformed XML: {exc}", file=source) from None
    root_tag = _local(root.tag)
    if root_tag != "LWM2M":
        hint = " (the registry index, not an object file)" if root_tag == "DDFList" else ""
        raise DdfError(f"root element is <{root_tag}>, expected <LWM2M>{hint}", file=source)
    objects = [child for child in root if _local(child.tag) == "Object"]
    if not objects:
        raise DdfError("no <Object> element", file=source, element="LWM2M")
    definitions: list[ObjectDefinition] = []
    seen: set[tuple[int, str]] = set()
    for index, element in enumerate(objects, start=1):
        where = "Object" if index == 1 else f"Object[{index}]"
        definition = _parse_object(element, source, where)
        key = (definition.id, definition.version)
        if key in seen:
            raise DdfError(
                f"object {definition.id} version {definition.version} defined twice",
                file=source,
                element=where,
            )
        seen.add(key)
        definitions.append(definition)
    return definitions


def load_ddf(path: str | os.PathLike[str]) -> list[ObjectDefinition]:
    """Read and parse the DDF file at ``path``.

    :raises DdfError: when the file cannot be read or parsed; names the file.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise DdfError(f"cannot read file: {exc.strerror or exc}", file=name) from None
    return parse_ddf(data, source=name)


def dump_ddf(definitions: ObjectDefinition | Iterable[ObjectDefinition]) -> bytes:
    """Write definitions as one DDF document of the ``LWM2M-v1_1.xsd`` schema (UTF-8).

    ``parse_ddf(dump_ddf(d)) == d`` for definitions whose texts have no surrounding whitespace
    and whose names no whitespace runs (which is what :func:`parse_ddf` produces). Description2
    is written empty: :func:`parse_ddf` folds it into the one ``description``. Executable
    resources are written with an empty ``<Type>``; :attr:`Operations.NONE` as an empty
    ``<Operations>``.

    :raises DdfError: when a text holds characters XML cannot carry, or nothing is given.
    """
    items = [definitions] if isinstance(definitions, ObjectDefinition) else list(definitions)
    if not items:
        raise DdfError("nothing to write: no object definitions")
    root = _xml_writer.Element(
        "LWM2M", {"xmlns:xsi": _XSI, "xsi:noNamespaceSchemaLocation": _SCHEMA_1_1}
    )
    for definition in items:
        obj = _xml_writer.SubElement(root, "Object", {"ObjectType": "MODefinition"})
        where = f"Object ID={definition.id}"
        _leaf(obj, "Name", definition.name, where)
        _leaf(obj, "Description1", definition.description, where)
        _leaf(obj, "ObjectID", str(definition.id), where)
        _leaf(obj, "ObjectURN", definition.urn, where)
        _leaf(obj, "LWM2MVersion", definition.lwm2m_version, where)
        _leaf(obj, "ObjectVersion", definition.version, where)
        _leaf(obj, "MultipleInstances", _multiple_text(definition.multiple), where)
        _leaf(obj, "Mandatory", _mandatory_text(definition.mandatory), where)
        resources = _xml_writer.SubElement(obj, "Resources")
        for res in definition.resources.values():
            item = _xml_writer.SubElement(resources, "Item", {"ID": str(res.id)})
            at = f'{where}/Item ID="{res.id}"'
            _leaf(item, "Name", res.name, at)
            _leaf(item, "Operations", res.operations.to_ddf(), at)
            _leaf(item, "MultipleInstances", _multiple_text(res.multiple), at)
            _leaf(item, "Mandatory", _mandatory_text(res.mandatory), at)
            type_text = "" if res.type is ResourceType.NONE else res.type.value
            _leaf(item, "Type", type_text, at)
            _leaf(item, "RangeEnumeration", res.range_enumeration, at)
            _leaf(item, "Units", res.units, at)
            _leaf(item, "Description", res.description, at)
        _leaf(obj, "Description2", "", where)
    _xml_writer.indent(root, space="  ")
    body: bytes = _xml_writer.tostring(
        root, encoding="utf-8", xml_declaration=False, short_empty_elements=False
    )
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"


# --- parsing helpers ---------------------------------------------------------------------------


def _local(tag: object) -> str:
    """An element's tag without its XML namespace."""
    return str(tag).rpartition("}")[2]


def _children(element: Any, source: str, where: str) -> dict[str, Any]:
    """The child elements by local name; a name given twice is an error."""
    found: dict[str, Any] = {}
    for child in element:
        name = _local(child.tag)
        if name in found:
            raise DdfError(f"<{name}> given twice", file=source, element=f"{where}/{name}")
        found[name] = child
    return found


def _text(element: Any, source: str, where: str) -> str:
    """The stripped text of a leaf element."""
    if len(element):
        raise DdfError("expected text, found child elements", file=source, element=where)
    return str(element.text or "").strip()


def _required(children: dict[str, Any], name: str, source: str, where: str) -> str:
    element = children.get(name)
    if element is None:
        raise DdfError(f"missing <{name}>", file=source, element=where)
    value = _text(element, source, f"{where}/{name}")
    if name == "Name":
        value = " ".join(value.split())
    if not value:
        raise DdfError("must not be empty", file=source, element=f"{where}/{name}")
    return value


def _optional(children: dict[str, Any], name: str, source: str, where: str) -> str:
    element = children.get(name)
    return "" if element is None else _text(element, source, f"{where}/{name}")


def _parse_id(text: str, what: str, source: str, where: str) -> int:
    if not _ID_RE.fullmatch(text):
        raise DdfError(f"{what} {text!r} is not a decimal number", file=source, element=where)
    value = int(text)
    if value >= 65535:
        raise DdfError(f"{what} {value} is not in 0..65534", file=source, element=where)
    return value


def _parse_choice(text: str, true: str, false: str, source: str, where: str) -> bool:
    key = text.lower()
    if key == true.lower():
        return True
    if key == false.lower():
        return False
    raise DdfError(f"{text!r} is neither {true} nor {false}", file=source, element=where)


def _parse_version(text: str, what: str, source: str, where: str) -> str:
    if not text:
        return "1.0"
    match = _VERSION_RE.fullmatch(text)
    if match is None:
        raise DdfError(f"{what} {text!r} is not MAJOR.MINOR", file=source, element=where)
    return f"{int(match[1])}.{int(match[2] or 0)}"


def _check_urn(urn: str, object_id: int, version: str, source: str, where: str) -> None:
    match = _URN_RE.fullmatch(urn)
    if match is None:
        raise DdfError(
            f"{urn!r} is not urn:oma:lwm2m:{{oma|ext|x}}:ID[:VERSION]", file=source, element=where
        )
    expected_kind = default_urn(object_id).split(":")[3]
    if match[1] != expected_kind:
        raise DdfError(
            f"{urn!r}: object {object_id} belongs to the {expected_kind!r} range (§7.2.2)",
            file=source,
            element=where,
        )
    if int(match[2]) != object_id:
        raise DdfError(
            f"{urn!r} names object {int(match[2])}, not ObjectID {object_id}",
            file=source,
            element=where,
        )
    if match[3] is not None:
        urn_version = _parse_version(match[3], "URN version", source, where)
        if urn_version != version:
            raise DdfError(
                f"{urn!r} names version {urn_version}, not ObjectVersion {version}",
                file=source,
                element=where,
            )


def _parse_object(element: Any, source: str, where: str) -> ObjectDefinition:
    object_type = element.get("ObjectType")
    if object_type is not None and object_type.strip() != "MODefinition":
        raise DdfError(
            f"ObjectType {object_type!r} is not MODefinition (not an object definition)",
            file=source,
            element=where,
        )
    children = _children(element, source, where)
    name = _required(children, "Name", source, where)
    object_id = _parse_id(
        _required(children, "ObjectID", source, where), "object id", source, f"{where}/ObjectID"
    )
    version = _parse_version(
        _optional(children, "ObjectVersion", source, where),
        "object version",
        source,
        f"{where}/ObjectVersion",
    )
    lwm2m_version = _parse_version(
        _optional(children, "LWM2MVersion", source, where),
        "LwM2M version",
        source,
        f"{where}/LWM2MVersion",
    )
    multiple = _parse_choice(
        _required(children, "MultipleInstances", source, where),
        "Multiple",
        "Single",
        source,
        f"{where}/MultipleInstances",
    )
    mandatory = _parse_choice(
        _required(children, "Mandatory", source, where),
        "Mandatory",
        "Optional",
        source,
        f"{where}/Mandatory",
    )
    urn = _optional(children, "ObjectURN", source, where)
    if urn:
        _check_urn(urn, object_id, version, source, f"{where}/ObjectURN")
    description = "\n\n".join(
        text
        for text in (
            _optional(children, "Description1", source, where),
            _optional(children, "Description2", source, where),
        )
        if text
    )
    if "Resources" not in children:
        raise DdfError("missing <Resources>", file=source, element=where)
    resources: dict[int, ResourceDefinition] = {}
    # Items of the first object are named 'Item ID="5"', of later ones 'Object[2]/Item ID="5"'.
    item_prefix = "" if where == "Object" else f"{where}/"
    for item in children["Resources"]:
        if _local(item.tag) != "Item":
            continue
        resource = _parse_item(item, source, item_prefix)
        if resource.id in resources:
            raise DdfError(
                f"resource id {resource.id} defined twice",
                file=source,
                element=f'{item_prefix}Item ID="{resource.id}"',
            )
        resources[resource.id] = resource
    try:
        return ObjectDefinition(
            id=object_id,
            name=name,
            version=version,
            lwm2m_version=lwm2m_version,
            multiple=multiple,
            mandatory=mandatory,
            urn=urn,
            description=description,
            resources=resources,
        )
    except ModelError as exc:  # pragma: no cover - every field is checked above
        raise DdfError(str(exc), file=source, element=where) from None


def _parse_item(item: Any, source: str, prefix: str) -> ResourceDefinition:
    raw_id = item.get("ID")
    if raw_id is None:
        raise DdfError("<Item> without ID attribute", file=source, element=f"{prefix}Item")
    where = f'{prefix}Item ID="{raw_id.strip()}"'
    resource_id = _parse_id(raw_id.strip(), "resource id", source, where)
    children = _children(item, source, where)
    name = _required(children, "Name", source, where)
    for required in ("Operations", "Type"):
        if required not in children:
            raise DdfError(f"missing <{required}>", file=source, element=where)
    operations_text = _text(children["Operations"], source, f"{where}/Operations")
    try:
        operations = Operations.from_ddf(operations_text)
    except ModelError as exc:
        raise DdfError(str(exc), file=source, element=f"{where}/Operations") from None
    multiple = _parse_choice(
        _required(children, "MultipleInstances", source, where),
        "Multiple",
        "Single",
        source,
        f"{where}/MultipleInstances",
    )
    mandatory = _parse_choice(
        _required(children, "Mandatory", source, where),
        "Mandatory",
        "Optional",
        source,
        f"{where}/Mandatory",
    )
    type_text = _text(children["Type"], source, f"{where}/Type")
    try:
        type_ = ResourceType.from_ddf(type_text)
    except ModelError as exc:
        raise DdfError(str(exc), file=source, element=f"{where}/Type") from None
    if type_ is ResourceType.NONE and not operations.executable:
        raise DdfError(
            f"a resource with operations {operations.to_ddf()!r} (not executable) needs a type",
            file=source,
            element=f"{where}/Type",
        )
    return ResourceDefinition(
        id=resource_id,
        name=name,
        operations=operations,
        multiple=multiple,
        mandatory=mandatory,
        type=type_,
        range_enumeration=_optional(children, "RangeEnumeration", source, where),
        units=_optional(children, "Units", source, where),
        description=_optional(children, "Description", source, where),
    )


# --- writing helpers ---------------------------------------------------------------------------


def _multiple_text(multiple: bool) -> str:
    return "Multiple" if multiple else "Single"


def _mandatory_text(mandatory: bool) -> str:
    return "Mandatory" if mandatory else "Optional"


def _leaf(parent: _xml_writer.Element, tag: str, value: str, where: str) -> None:
    if _XML_ILLEGAL.search(value):
        raise DdfError(f"<{tag}> holds a character XML cannot carry", element=f"{where}/{tag}")
    _xml_writer.SubElement(parent, tag).text = value
