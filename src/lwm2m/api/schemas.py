"""The JSON shapes of the REST API as pydantic models (they make the OpenAPI document).

Request bodies are strict about unknown fields (``extra="forbid"``: a typo is a 400, not a
silently ignored option). Nodes travel as the plain JSON of :mod:`lwm2m.codec.node_json`, typed
by the client's object model on the way in, so their schema here is "any JSON". Secrets are
write-only: the PSK of a security entry is a :class:`~pydantic.SecretStr` in the request model
(its repr is masked) and no response model has a field that could carry one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "AddressModel",
    "AdminScriptAnswer",
    "AdminScriptBody",
    "AttributesBody",
    "CodeAnswer",
    "CompositeAnswer",
    "CompositeBody",
    "CompositeCodeAnswer",
    "CompositeObserveAnswer",
    "CompositeWriteBody",
    "ContentAnswer",
    "CreateAnswer",
    "CreateBody",
    "DiscoverAnswer",
    "ErrorAnswer",
    "ExecuteBody",
    "IdentityModel",
    "LinkModel",
    "ObjectLinkModel",
    "ObservationModel",
    "ObserveAnswer",
    "RApduModel",
    "RegistrationModel",
    "SecurityBody",
    "SecurityEntryModel",
    "WriteBody",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- answers -----------------------------------------------------------------------------------


class ErrorAnswer(BaseModel):
    """Every error: a specific message; ``coap_code`` when the client answered with an error
    code, ``diagnostic`` its diagnostic payload."""

    error: str
    coap_code: str | None = None
    diagnostic: str | None = None


class AddressModel(BaseModel):
    host: str
    port: int


class IdentityModel(BaseModel):
    """The identity the client's security session authenticated (public values only): a PSK
    identity, the SHA-256 of a raw public key (hex), a certificate name, an OSCORE Sender ID."""

    kind: Literal["psk", "rpk", "x509", "oscore"]
    value: str


class ObjectLinkModel(BaseModel):
    """An object or object instance the client registered, with the object's version."""

    uri: str = Field(examples=["/3/0"])
    object_id: int
    instance_id: int | None
    version: str = Field(examples=["1.1"])


class RegistrationModel(BaseModel):
    """One client's registration (LwM2M-TS-Core §6.2.1)."""

    endpoint: str
    registration_id: str
    location: str = Field(examples=["/rd/Xyz"])
    address: AddressModel
    lifetime: int = Field(description="seconds")
    binding: str = Field(examples=["U"])
    lwm2m_version: str = Field(examples=["1.1"])
    queue_mode: bool
    awake: bool = Field(description="queue mode: the client is reachable now")
    sms_number: str | None
    registered_at: datetime
    updated_at: datetime
    expires_at: datetime
    root_path: str
    content_formats: list[int]
    objects: list[ObjectLinkModel]
    identity: IdentityModel | None


class ContentAnswer(BaseModel):
    """A Read: the node as plain JSON (value, ``{"id": ...}`` maps by level)."""

    path: str
    code: str = Field(examples=["2.05"])
    content: Any = None
    content_format: str | None = Field(default=None, examples=["senml-cbor"])


class ObserveAnswer(ContentAnswer):
    """An Observe: the current content and the observation's token (hex); ``active`` is false
    when the client answered without establishing the observation."""

    token: str
    active: bool


class CodeAnswer(BaseModel):
    """An operation that carries no content (Write, Execute, Delete, Write-Attributes,
    cancelling an observation)."""

    path: str
    code: str = Field(examples=["2.04"])


class CreateAnswer(CodeAnswer):
    location: str | None = Field(description="the created instance", examples=["/3303/1"])


class LinkModel(BaseModel):
    uri: str
    attributes: dict[str, str | None]


class DiscoverAnswer(CodeAnswer):
    links: list[LinkModel]


class CompositeAnswer(BaseModel):
    code: str
    content: dict[str, Any] = Field(description="path -> node as plain JSON")
    content_format: str | None = None


class CompositeObserveAnswer(CompositeAnswer):
    """An Observe-Composite: the current values and the observation's token (hex)."""

    token: str
    active: bool


class CompositeCodeAnswer(BaseModel):
    """A Write-Composite: the paths written and the client's code."""

    paths: list[str]
    code: str = Field(examples=["2.04"])


class ObservationModel(BaseModel):
    token: str
    paths: list[str]
    composite: bool
    accept: str | None
    created_at: datetime


class SecurityEntryModel(BaseModel):
    """A security entry without secrets: what the endpoint authenticates with."""

    endpoint: str
    mode: Literal["psk", "rpk", "x509", "oscore", "nosec"]
    psk_identity: str | None = None
    rpk_sha256: str | None = Field(default=None, description="SHA-256 of the public key (hex)")
    public_key_hex: str | None = Field(default=None, description="RPK: DER SPKI (public)")
    x509_name: str | None = Field(default=None, description="the certificate CN or SAN")
    oscore_sender_id: str | None = Field(default=None, description="hex")
    oscore_recipient_id: str | None = Field(default=None, description="hex")


# -- request bodies ----------------------------------------------------------------------------


class WriteBody(_Body):
    content: Any = Field(description="the node as plain JSON, typed by the client's model")
    replace: bool = Field(default=True, description="false: partial update (POST)")


class ExecuteBody(_Body):
    arguments: str = Field(default="", examples=["0='x',1"])


class CreateBody(_Body):
    """Either ``content``: instances keyed by their ids (``{"1": {"5700": 20.5}}``), or
    ``resources``: the resources of one new instance whose id the client picks."""

    content: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> CreateBody:
        if (self.content is None) == (self.resources is None):
            raise ValueError("give exactly one of 'content' and 'resources'")
        return self


class CompositeBody(_Body):
    paths: list[str] = Field(min_length=1, examples=[["/3/0/9", "/1/0/1"]])


class CompositeWriteBody(_Body):
    """Write-Composite: path -> node as plain JSON (typed by the client's model)."""

    content: dict[str, Any] = Field(min_length=1, examples=[{"/3/0/14": "+02:00", "/1/0/1": 300}])


NonNegative = Annotated[int, Field(ge=0)]


class AttributesBody(_Body):
    """Notification attributes (LwM2M-TS-Core §5.1.2); ``unset`` names attributes to remove."""

    pmin: NonNegative | None = None
    pmax: NonNegative | None = None
    gt: float | None = None
    lt: float | None = None
    st: float | None = None
    epmin: NonNegative | None = None
    epmax: NonNegative | None = None
    unset: list[Literal["pmin", "pmax", "gt", "lt", "st", "epmin", "epmax"]] = []


class SecurityBody(_Body):
    """A security entry: ``psk`` (``identity`` + ``key_hex``, write-only), ``rpk``
    (``public_key_hex``: DER SubjectPublicKeyInfo), ``x509`` (``name``: the certificate CN or
    subjectAltName, default the endpoint) or ``nosec``."""

    mode: Literal["psk", "rpk", "x509", "nosec"]
    identity: str | None = None
    key_hex: SecretStr | None = Field(default=None, description="write-only")
    public_key_hex: str | None = None
    name: str | None = None


# -- Secure Element scripts (lwm2m.io.se_admin) -------------------------------------------------

Hex = Annotated[str, Field(pattern=r"^([0-9A-Fa-f]{2})+$")]


class AdminScriptBody(_Body):
    """A remote APDU script for the client's card (/33000/x/30-35): C-APDUs in hex, for the
    basic channel; only proprietary-class commands and SELECT of the target are relayed."""

    commands: list[Hex] = Field(min_length=1, max_length=255, examples=[["80CA9F7F00"]])
    target: Hex | None = Field(
        default=None,
        description="AID of the security domain (default: the client's current target)",
        examples=["A000000151000000"],
    )
    instance: NonNegative = 0


class RApduModel(BaseModel):
    data: str = Field(description="response data (hex)")
    sw: str = Field(examples=["9000"])


class AdminScriptAnswer(BaseModel):
    """How the script ended: ``completed``, or ``stopped`` at the last R-APDU's error status."""

    status: Literal["completed", "stopped"]
    executed: int
    responses: list[RApduModel]
