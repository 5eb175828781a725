"""A process memory scan for a PSK: after a PSK went into a component and was used, is any
copy of it (bytes, hex, base64, integer) still reachable from the objects of this process?"""

from __future__ import annotations

import base64
import gc
import os
import sys
import types
from typing import Any

from .conftest import reference_master_secret

__all__ = ["holders", "provision", "reachable_data", "scan_for"]


def _needles(psk: bytes) -> tuple[list[bytes], list[str], set[int]]:
    encoded = [base64.b64encode(psk), base64.urlsafe_b64encode(psk)]
    texts = [psk.hex(), psk.hex().upper(), *(e.decode() for e in encoded)]
    binary = [psk, *(t.encode() for t in texts[:2]), *encoded]
    return binary, texts, {int.from_bytes(psk, "big"), int.from_bytes(psk, "little")}


def _stack_locals() -> list[dict[str, Any]]:
    """Locals of every running frame: they are not in ``gc.get_objects()``."""
    frames = [sys._getframe(), *sys._current_frames().values()]
    found: list[dict[str, Any]] = []
    for frame in frames:
        while frame is not None:
            found.append(frame.f_locals)
            frame = frame.f_back  # type: ignore[assignment]
    return found


def holders(mask: bytes, masked: bytes) -> list[Any]:
    """Objects reachable from ``gc.get_objects()`` and the running frames that hold the PSK
    (``masked`` XOR ``mask``), its hex or base64, or its integer value. The walk follows
    ``gc.get_referents`` transitively (untracked containers, e.g. dicts of bytes, included);
    the scanner's own needles are skipped by identity."""
    psk = bytes(a ^ b for a, b in zip(mask, masked, strict=True))
    binary, texts, numbers = _needles(psk)
    gc.collect()
    roots: list[Any] = [*gc.get_objects(), *_stack_locals()]
    seen = {id(psk), *map(id, binary), *map(id, texts), id(binary), id(texts), id(numbers)}
    seen |= {id(n) for n in numbers} | {id(roots)}
    found: list[Any] = []
    stack = roots[:]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, bytes | bytearray | memoryview):
            if any(n in bytes(obj) for n in binary):
                found.append(obj)
        elif isinstance(obj, str):
            if any(n in obj for n in texts):
                found.append(obj)
        elif type(obj) is int:
            if obj in numbers:
                found.append(obj)
        else:
            stack.extend(gc.get_referents(obj))
    del psk, binary, texts, numbers, roots, stack
    return found


def scan_for(mask: bytes, masked: bytes) -> list[str]:
    """:func:`holders`, described (type and size) rather than returned."""
    described: list[str] = []
    for obj in holders(mask, masked):
        if isinstance(obj, str):
            described.append(f"str of {len(obj)} characters")
        elif type(obj) is int:
            described.append("int")
        else:
            described.append(f"{type(obj).__name__} of {len(bytes(obj))} bytes")
    return described


_CODE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def reachable_data(root: object) -> set[int]:
    """Ids of the data reachable from ``root`` (instances and containers; not classes, modules
    or functions, through which everything is reachable)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _CODE):
            continue
        seen.add(id(obj))
        stack.extend(gc.get_referents(obj))
    return seen


def provision(component: Any) -> tuple[bytes, bytes, Any]:
    """Import a fresh PSK, derive with it, return only a masked copy (and the handle)."""
    psk = os.urandom(32)
    mask = os.urandom(32)
    masked = bytes(a ^ b for a, b in zip(mask, psk, strict=True))
    handle = component.import_psk(b"scan", psk, label="scan", replace=True)
    for label, seed in ((b"master secret", os.urandom(64)), (b"extended master secret", b"h")):
        expected = reference_master_secret(psk, label, seed)
        if handle.derive_master_secret(label, seed) != expected:
            raise AssertionError("master secret mismatch")
    del psk, expected
    return mask, masked, handle
