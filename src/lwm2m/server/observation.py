"""Observation records: what a server remembers about each Observe / Observe-Composite it made.

LwM2M-TS-Core 1.1 §6.4.1 (Observe), §6.4.3 (Observe-Composite), §6.4.2/§6.4.4 (cancel);
LwM2M-TS-Transport §6.4 (GET / FETCH with Observe=0, RFC 7641). The CoAP token identifies the
observation: notifications carry it, and a server that restarts with a persistent store still
recognises notifications by looking the token up (the record holds everything needed to decode
them: the registration, the path(s) and the formats).

A new Register ends every observation of the previous registration (Core §6.4.1: "the server
re-establishes its observations after a Register"); stores remove them with the registration.
"""

from __future__ import annotations

from dataclasses import dataclass

from lwm2m.codec.content_format import ContentFormat
from lwm2m.model.path import Path
from lwm2m.operations.requests import (
    CancelObservation,
    CancelObserveComposite,
    Observe,
    ObserveComposite,
)

__all__ = ["Observation"]


@dataclass(frozen=True, slots=True)
class Observation:
    """One established observation, immutable.

    >>> obs = Observation.from_request(b"\\x01", "r1", Observe(Path(3, 0, 9)), now=0.0)
    >>> obs.path, obs.composite, obs.request()
    (Path('/3/0/9'), False, Observe(path=Path('/3/0/9'), accept=None))
    """

    token: bytes
    """The CoAP token of the Observe request (and of every notification)."""
    registration_id: str
    """The registration this observation belongs to."""
    paths: tuple[Path, ...]
    """The observed path (one) or, for Observe-Composite, the observed paths."""
    composite: bool
    """True for Observe-Composite (FETCH)."""
    accept: ContentFormat | None
    """The Accept of the request (notifications normally use it), None when not given."""
    created_at: float
    """When the observation was established."""
    content_format: ContentFormat = ContentFormat.SENML_CBOR
    """Observe-Composite: the format of the request body (the path list)."""

    def __post_init__(self) -> None:
        if not self.paths:
            raise ValueError("an observation needs at least one path")
        if not self.composite and len(self.paths) != 1:
            raise ValueError("a single observation has exactly one path")

    @property
    def path(self) -> Path:
        """The observed path (the first one for a composite observation)."""
        return self.paths[0]

    @classmethod
    def from_request(
        cls, token: bytes, registration_id: str, request: Observe | ObserveComposite, now: float
    ) -> Observation:
        if isinstance(request, ObserveComposite):
            return cls(
                token,
                registration_id,
                tuple(request.paths),
                True,
                request.accept,
                now,
                request.content_format,
            )
        return cls(token, registration_id, (request.path,), False, request.accept, now)

    def request(self) -> Observe | ObserveComposite:
        """The operation this observation answers (what its notifications decode against)."""
        if self.composite:
            return ObserveComposite(self.paths, self.content_format, self.accept)
        return Observe(self.paths[0], self.accept)

    def cancel_request(self) -> CancelObservation | CancelObserveComposite:
        """The proactive cancellation (GET / FETCH with Observe=1, Core §6.4.2, §6.4.4)."""
        if self.composite:
            return CancelObserveComposite(self.paths, self.content_format, self.accept)
        return CancelObservation(self.paths[0], self.accept)

    def __repr__(self) -> str:
        paths = ",".join(str(p) for p in self.paths)
        return (
            f"Observation(token={self.token.hex()}, registration={self.registration_id}, "
            f"paths={paths}{', composite' if self.composite else ''})"
        )
