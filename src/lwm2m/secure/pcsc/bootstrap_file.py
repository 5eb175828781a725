"""EF LwM2M_Bootstrap: the bootstrap data stored on a smartcard (LwM2M-TS-Core 1.1
Appendix G.3.3 / 1.1.1 §G.3.4; SCS-10 asks for the LwM2M 1.0 smartcard bootstrap too).

Two levels, as the TLV codec:

* **Framing** (:func:`decode_framing` / :func:`encode_framing`) knows nothing of the model.
  All integers are big-endian::

      bootstrap_data = nb_objects:u16  size:u16  object*        ; size = bytes of object*
      object (1.1)   = object_id:u16  version  length:u16  tlv ; version = 00 (implicit:
                                                                 ; 1.0 or the enabler's) or
                                                                 ; major(01..FF) minor(00..FF)
      object (1.0)   = object_id:u16  length:u16  tlv           ; no version field

  ``tlv`` is LwM2M TLV (CF 11542) of the object's instances. The file may be longer than
  ``4 + size`` (its size comes from the FCP): the rest must be ``FF`` or ``00`` padding.
  :data:`Layout.AUTO` reads the 1.1 layout and falls back to 1.0 when the 1.1 framing does not
  add up (counts, sizes, TLV framing).
* **Mapping** (:func:`parse_bootstrap_file` / :func:`build_bootstrap_file`) decodes each
  object with :class:`lwm2m.codec.tlv.TlvCodec` at the object's version from the model registry.

Every error is a :class:`~lwm2m.secure.pcsc.errors.BootstrapFileError` naming the byte offset and
the field (``object[1].length``); values never appear in messages or reprs — the file carries
PSKs and private keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from lwm2m.buffer import Buffer
from lwm2m.codec.tlv import TlvCodec, decode_tlvs
from lwm2m.errors import BufferReadError, CodecError
from lwm2m.model.nodes import ObjectNode
from lwm2m.model.path import Path
from lwm2m.model.registry import ModelRegistry, default_registry
from lwm2m.secure.pcsc.errors import BootstrapFileError

__all__ = [
    "MAX_FILE_SIZE",
    "BootstrapData",
    "BootstrapObject",
    "Layout",
    "RawObject",
    "build_bootstrap_file",
    "decode_framing",
    "encode_framing",
    "parse_bootstrap_file",
]

#: "This file size is limited to 32KB" (Appendix G.3.3).
MAX_FILE_SIZE = 32 * 1024


class Layout(Enum):
    """The two layouts of the object header."""

    V1_1 = "1.1"  #: with the object version byte(s)
    V1_0 = "1.0"  #: without (LwM2M 1.0)
    AUTO = "auto"  #: read 1.1, fall back to 1.0


@dataclass(frozen=True, slots=True)
class RawObject:
    """One object of the file before TLV decoding."""

    object_id: int
    #: "M.m", or None for the implicit version (byte 00, and every object of the 1.0 layout).
    version: str | None
    tlv: bytes
    #: Offset of the object header in the file.
    offset: int

    def __repr__(self) -> str:
        return (
            f"RawObject(object_id={self.object_id}, version={self.version!r}, "
            f"{len(self.tlv)} TLV bytes at {self.offset})"
        )


def _fail(message: str, offset: int, field: str) -> BootstrapFileError:
    return BootstrapFileError(message, offset=offset, field=field)


def _pull_objects(data: bytes, layout: Layout) -> list[RawObject]:
    buf = Buffer(data)
    field = "header"
    try:
        field = "header.nb_objects"
        count = buf.pull_uint16()
        field = "header.size"
        size = buf.pull_uint16()
    except BufferReadError:
        raise _fail(f"file of {len(data)} bytes has no 4-byte header", 0, field) from None
    if 4 + size > len(data):
        raise _fail(f"size {size} runs past the end of the {len(data)}-byte file", 2, "header.size")
    objects: list[RawObject] = []
    end = 4 + size
    for index in range(count):
        start = buf.tell()
        name = f"object[{index}]"
        if start >= end:
            raise _fail(
                f"header announces {count} objects, the data end after {index}",
                start,
                f"{name}.object_id",
            )
        try:
            field = f"{name}.object_id"
            object_id = buf.pull_uint16()
            version = None
            if layout is Layout.V1_1:
                field = f"{name}.version"
                major = buf.pull_uint8()
                if major:
                    version = f"{major}.{buf.pull_uint8()}"
            field = f"{name}.length"
            length_at = buf.tell()
            length = buf.pull_uint16()
            if buf.tell() + length > end:
                raise _fail(
                    f"length {length} runs past the end of the data (size {size})",
                    length_at,
                    field,
                )
            tlv = buf.pull_bytes(length)
        except BufferReadError:
            raise _fail("truncated object header", buf.tell(), field) from None
        if object_id == 0xFFFF:
            raise _fail("object id 65535 is reserved", start, f"{name}.object_id")
        objects.append(RawObject(object_id, version, tlv, start))
    if buf.tell() != end:
        raise _fail(
            f"{end - buf.tell()} bytes after the {count} objects but inside size {size}",
            buf.tell(),
            "header.size",
        )
    for pos in range(end, len(data)):
        if data[pos] not in (0x00, 0xFF):
            raise _fail("non-padding byte after the bootstrap data", pos, "padding")
    return objects


def _check_tlv_framing(objects: Iterable[RawObject], layout: Layout) -> None:
    for index, obj in enumerate(objects):
        header = 4 if layout is Layout.V1_0 else 5 if obj.version is None else 6
        try:
            decode_tlvs(obj.tlv)
        except CodecError as exc:
            raise _fail(
                f"invalid LwM2M TLV: {exc}", obj.offset + header, f"object[{index}].instances"
            ) from None


def decode_framing(data: bytes, layout: Layout = Layout.AUTO) -> tuple[Layout, list[RawObject]]:
    """The layout found and the objects of ``data``, TLV not yet decoded (but TLV framing
    checked, which is what tells the layouts apart)."""
    data = bytes(data)
    if len(data) > MAX_FILE_SIZE:
        raise _fail(f"file of {len(data)} bytes exceeds {MAX_FILE_SIZE}", MAX_FILE_SIZE, "file")
    if layout is not Layout.AUTO:
        objects = _pull_objects(data, layout)
        _check_tlv_framing(objects, layout)
        return layout, objects
    try:
        objects = _pull_objects(data, Layout.V1_1)
        _check_tlv_framing(objects, Layout.V1_1)
        return Layout.V1_1, objects
    except BootstrapFileError as first:
        try:
            objects = _pull_objects(data, Layout.V1_0)
            _check_tlv_framing(objects, Layout.V1_0)
        except BootstrapFileError:
            raise first from None
        return Layout.V1_0, objects


def encode_framing(objects: Iterable[tuple[int, str | None, bytes]], layout: Layout) -> bytes:
    """Frame ``(object_id, version, tlv)`` triples; ``version`` None is the implicit version."""
    if layout is Layout.AUTO:
        raise ValueError("choose Layout.V1_1 or Layout.V1_0 to build a file")
    body = Buffer()
    count = 0
    for object_id, version, tlv in objects:
        count += 1
        body.push_uint16(object_id)
        if layout is Layout.V1_1:
            if version is None:
                body.push_uint8(0)
            else:
                major, minor = _split_version(version)
                body.push_uint8(major)
                body.push_uint8(minor)
        elif version is not None and version != "1.0":
            raise ValueError(f"object {object_id} version {version}: the 1.0 layout has no version")
        if len(tlv) > 0xFFFF:
            raise ValueError(f"object {object_id}: {len(tlv)} bytes of TLV exceed 65535")
        body.push_uint16(len(tlv))
        body.push_bytes(tlv)
    payload = body.data
    out = Buffer()
    out.push_uint16(count)
    out.push_uint16(len(payload))
    out.push_bytes(payload)
    data = out.data
    if len(data) > MAX_FILE_SIZE:
        raise ValueError(f"bootstrap file of {len(data)} bytes exceeds {MAX_FILE_SIZE}")
    return data


def _split_version(version: str) -> tuple[int, int]:
    major_text, _, minor_text = version.partition(".")
    try:
        major, minor = int(major_text), int(minor_text)
    except ValueError:
        raise ValueError(f"object version {version!r} is not M.m") from None
    if not (1 <= major <= 0xFF and 0 <= minor <= 0xFF):
        raise ValueError(f"object version {version!r} is not in 1.0..255.255")
    return major, minor


# -- mapping -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BootstrapObject:
    """One decoded object: its id, its version ("M.m" or None = implicit) and its instances."""

    object_id: int
    version: str | None
    node: ObjectNode

    def __repr__(self) -> str:
        # Instances of /0 and /21 hold keys: show their ids only.
        return (
            f"BootstrapObject(object_id={self.object_id}, version={self.version!r}, "
            f"instances={list(self.node.instances)})"
        )


@dataclass(frozen=True, slots=True, eq=False)
class BootstrapData:
    """The content of EF LwM2M_Bootstrap as a frozen value: object id -> version -> node.

    ``objects`` maps each object id to its :class:`BootstrapObject` (file order is kept in
    :attr:`order`); ``layout`` tells which header layout the file used.
    """

    layout: Layout
    objects: Mapping[int, BootstrapObject]

    @property
    def order(self) -> tuple[int, ...]:
        return tuple(self.objects)

    def __getitem__(self, object_id: int) -> ObjectNode:
        return self.objects[object_id].node

    def __contains__(self, object_id: object) -> bool:
        return object_id in self.objects

    def __iter__(self) -> Iterator[BootstrapObject]:
        return iter(self.objects.values())

    def __len__(self) -> int:
        return len(self.objects)

    def version(self, object_id: int) -> str | None:
        return self.objects[object_id].version

    @property
    def versions(self) -> dict[int, str | None]:
        return {oid: obj.version for oid, obj in self.objects.items()}

    def _key(self) -> tuple[object, ...]:
        return (self.layout, tuple((o.object_id, o.version, o.node) for o in self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BootstrapData):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"BootstrapData(layout={self.layout.value}, objects={list(self)!r})"


def parse_bootstrap_file(
    data: bytes,
    *,
    registry: ModelRegistry | None = None,
    layout: Layout = Layout.AUTO,
) -> BootstrapData:
    """Decode EF LwM2M_Bootstrap into a :class:`BootstrapData`.

    Each object is decoded at its version: an explicit ``M.m`` must be known to ``registry``
    (default: the bundled definitions); the implicit version uses the registry's latest
    definition of the object, i.e. the one of the enabler. Raises :class:`BootstrapFileError`.
    """
    registry = registry if registry is not None else default_registry()
    found, raw = decode_framing(data, layout)
    codec = TlvCodec()
    objects: dict[int, BootstrapObject] = {}
    for index, obj in enumerate(raw):
        field = f"object[{index}]"
        if obj.object_id in objects:
            raise _fail(f"object {obj.object_id} appears twice", obj.offset, f"{field}.object_id")
        if obj.version is not None:
            definition = registry.get(obj.object_id, obj.version)
            if definition is None:
                known = ", ".join(registry.versions(obj.object_id)) or "none"
                raise _fail(
                    f"object {obj.object_id} version {obj.version} is not in the model "
                    f"registry (known versions: {known})",
                    obj.offset + 2,
                    f"{field}.version",
                )
            model = registry.view({obj.object_id: obj.version})
        else:
            if registry.get(obj.object_id) is None:
                raise _fail(
                    f"object {obj.object_id} has no definition in the model registry",
                    obj.offset,
                    f"{field}.object_id",
                )
            model = registry.view()
        header = 4 if found is Layout.V1_0 else 5 if obj.version is None else 6
        try:
            node = codec.decode(obj.tlv, Path(obj.object_id), model)
        except CodecError as exc:
            raise _fail(
                f"invalid object content: {exc}", obj.offset + header, f"{field}.instances"
            ) from None
        assert isinstance(node, ObjectNode)  # an object path decodes to an ObjectNode
        objects[obj.object_id] = BootstrapObject(obj.object_id, obj.version, node)
    return BootstrapData(found, MappingProxyType(objects))


def build_bootstrap_file(
    objects: Iterable[ObjectNode | tuple[ObjectNode, str | None] | BootstrapObject],
    *,
    layout: Layout = Layout.V1_1,
    registry: ModelRegistry | None = None,
) -> bytes:
    """Encode objects (each an :class:`ObjectNode`, a ``(node, version)`` pair or a
    :class:`BootstrapObject`) into an EF LwM2M_Bootstrap file, in the given order."""
    registry = registry if registry is not None else default_registry()
    codec = TlvCodec()
    triples: list[tuple[int, str | None, bytes]] = []
    for item in objects:
        if isinstance(item, BootstrapObject):
            node, version = item.node, item.version
        elif isinstance(item, ObjectNode):
            node, version = item, None
        else:
            node, version = item
        model = registry.view({node.id: version} if version else None)
        triples.append((node.id, version, codec.encode(node, Path(node.id), model)))
    return encode_framing(triples, layout)
