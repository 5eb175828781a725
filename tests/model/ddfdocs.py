"""Builders of small DDF documents for the loader tests.

``item()`` and ``obj()`` take element texts as keyword arguments; ``None`` leaves an element out,
and ``extra`` appends raw XML inside the element. Defaults give a minimal valid document.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

ITEM_DEFAULTS: dict[str, str | None] = {
    "Name": "Res",
    "Operations": "R",
    "MultipleInstances": "Single",
    "Mandatory": "Optional",
    "Type": "Integer",
    "RangeEnumeration": "",
    "Units": "",
    "Description": "",
}
OBJECT_DEFAULTS: dict[str, str | None] = {
    "Name": "Obj",
    "Description1": "",
    "ObjectID": "3",
    "ObjectURN": None,
    "LWM2MVersion": "1.1",
    "ObjectVersion": "1.1",
    "MultipleInstances": "Single",
    "Mandatory": "Optional",
}


def _leaves(fields: dict[str, str | None]) -> str:
    return "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items() if v is not None)


def item(id_: str | None = "0", extra: str = "", **fields: str | None) -> str:
    attr = "" if id_ is None else f' ID="{id_}"'
    return f"<Item{attr}>{_leaves({**ITEM_DEFAULTS, **fields})}{extra}</Item>"


def obj(
    *items: str,
    resources: bool = True,
    attrs: str = ' ObjectType="MODefinition"',
    extra: str = "",
    **fields: str | None,
) -> str:
    body = _leaves({**OBJECT_DEFAULTS, **fields})
    if resources:
        body += "<Resources>" + "".join(items or (item(),)) + "</Resources>"
    return f"<Object{attrs}>{body}<Description2></Description2>{extra}</Object>"


def doc(*objects: str, root: str = "LWM2M", prolog: str = "") -> bytes:
    inner = "".join(objects or (obj(),))
    text = f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}<{root}>{inner}</{root}>'
    return text.encode()
