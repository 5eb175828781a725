"""Notification attributes attached by each server (LwM2M-TS-Core 1.1 §5.1.2 "Attributes",
§6.3.4 Write-Attributes, §6.4 Information Reporting).

Attributes belong to a server account (its Short Server ID) and a path. A Write-Attributes
merges into what is attached at that path: given values replace, valueless parameters unset.
The merged set must stay consistent (``Attributes`` validates: pmin ≤ pmax, epmin ≤ epmax,
lt < gt, lt + 2·st < gt) or the request is a 4.00 and nothing changes. ``gt``, ``lt`` and ``st``
attach only to numeric single values (a resource or resource instance), also a 4.00 otherwise.

:meth:`AttributeStore.effective` applies the precedence of §5.1.2: for each attribute, the value
attached closest to the observed path wins (resource instance > resource > object instance >
object); pmin and pmax finally fall back to the server account's Default Minimum / Maximum
Period (/1/x/2, /1/x/3).
"""

from __future__ import annotations

from dataclasses import dataclass

from lwm2m.codec.link import Attributes
from lwm2m.errors import BadRequest, CodecError
from lwm2m.model.path import Path

__all__ = ["AttributeStore", "EffectiveAttributes"]

_NUMERIC_ONLY = ("gt", "lt", "st")


@dataclass(frozen=True, slots=True)
class EffectiveAttributes:
    """The attributes governing one observation, after precedence and defaults.

    Levels may disagree (pmin of an object above the pmax of a resource): the notification
    logic then ignores pmax, as §5.1.2 says for pmax < pmin. ``pmax`` None (or 0) means no
    maximum period; ``epmax`` None means no periodic evaluation.
    """

    pmin: int = 0
    pmax: int | None = None
    gt: float | None = None
    lt: float | None = None
    st: float | None = None
    epmin: int | None = None
    epmax: int | None = None

    @property
    def max_period(self) -> int | None:
        """pmax when it applies (set, positive and not below pmin)."""
        if self.pmax is None or self.pmax <= 0 or self.pmax < self.pmin:
            return None
        return self.pmax

    @property
    def has_change_conditions(self) -> bool:
        return self.gt is not None or self.lt is not None or self.st is not None


def _float(value: int | float | None) -> float | None:
    return None if value is None else float(value)


class AttributeStore:
    """Attributes per server and path."""

    def __init__(self) -> None:
        self._by_server: dict[int, dict[Path, Attributes]] = {}

    def attached(self, short_server_id: int, path: Path) -> Attributes | None:
        """What is attached exactly at ``path`` for this server."""
        return self._by_server.get(short_server_id, {}).get(path)

    def attached_below(self, short_server_id: int, prefix: Path) -> dict[Path, Attributes]:
        """Everything attached at ``prefix`` or below it."""
        return {
            path: attrs
            for path, attrs in self._by_server.get(short_server_id, {}).items()
            if prefix.is_prefix_of(path)
        }

    def write(
        self, short_server_id: int, path: Path, attributes: Attributes, *, numeric: bool
    ) -> Attributes:
        """Merge a Write-Attributes into what is attached at ``path``; returns the result.

        ``numeric`` says whether ``path`` addresses one numeric value. Raises BadRequest when a
        change-value attribute targets anything else or when the merged set is inconsistent.
        """
        if not numeric and any(getattr(attributes, n) is not None for n in _NUMERIC_ONLY):
            raise BadRequest(f"{path}: gt, lt and st apply to numeric resources only")
        current = self.attached(short_server_id, path) or Attributes()
        values = {name: getattr(current, name) for name in Attributes.NAMES}
        for name in Attributes.NAMES:
            value = getattr(attributes, name)
            if value is not None:
                values[name] = value
            elif name in attributes.unset:
                values[name] = None
        try:
            merged = Attributes(**values)
        except CodecError as exc:
            raise BadRequest(f"{path}: inconsistent attributes: {exc}") from None
        attached = self._by_server.setdefault(short_server_id, {})
        if merged.is_empty:
            attached.pop(path, None)
        else:
            attached[path] = merged
        return merged

    def effective(
        self,
        short_server_id: int,
        path: Path,
        *,
        default_pmin: int | None = None,
        default_pmax: int | None = None,
    ) -> EffectiveAttributes:
        """The attributes in force for an observation of ``path`` (precedence of §5.1.2)."""
        attached = self._by_server.get(short_server_id, {})
        values: dict[str, int | float | None] = dict.fromkeys(Attributes.NAMES)
        for depth in range(1, len(path.ids) + 1):
            attrs = attached.get(Path(*path.ids[:depth]))
            if attrs is None:
                continue
            for name in Attributes.NAMES:
                value = getattr(attrs, name)
                if value is not None:
                    values[name] = value
        pmin = values["pmin"] if values["pmin"] is not None else default_pmin
        pmax = values["pmax"] if values["pmax"] is not None else default_pmax
        return EffectiveAttributes(
            pmin=int(pmin or 0),
            pmax=int(pmax) if pmax else None,
            gt=_float(values["gt"]),
            lt=_float(values["lt"]),
            st=_float(values["st"]),
            epmin=int(values["epmin"]) if values["epmin"] is not None else None,
            epmax=int(values["epmax"]) if values["epmax"] else None,
        )

    def remove_below(self, prefix: Path) -> None:
        """Forget attributes at ``prefix`` or below (an instance was deleted), for all servers."""
        for attached in self._by_server.values():
            for path in [p for p in attached if prefix.is_prefix_of(p)]:
                del attached[path]

    def remove_server(self, short_server_id: int) -> None:
        """Forget every attribute of a server (its account is gone)."""
        self._by_server.pop(short_server_id, None)

    def clear(self) -> None:
        self._by_server.clear()
