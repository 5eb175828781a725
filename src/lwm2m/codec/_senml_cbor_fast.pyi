"""Type stub of the optional C accelerator (see _senml_cbor_fast.c and senml_cbor.py)."""

from lwm2m.model.nodes import ObjectInstance, ObjectNode
from lwm2m.model.values import ResourceType

def decode(
    data: bytes | bytearray | memoryview,
    oid: int,
    want_iid: int,
    rinfo: dict[int, tuple[bool, int, ResourceType]],
) -> ObjectNode | ObjectInstance | None: ...
def setup(
    object_node: type, object_instance: type, single: type, multiple: type, instance: type
) -> None: ...
