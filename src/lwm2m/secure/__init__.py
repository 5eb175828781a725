"""Secure Components: credentials held in a Secure Element, TEE or HSM (LwM2M-SCS-1…11).

- :mod:`lwm2m.secure.interfaces` — the contract: :class:`SecureComponent`, :class:`PskHandle`,
  :class:`KeyHandle`, :class:`OscoreSecretHandle`, :class:`ComponentInfo` and the
  :class:`SecureComponentError` tree.
- :func:`open_component` — a backend chosen by URI (:mod:`lwm2m.secure.uri`): ``soft:PATH``
  (software, encrypted file; :mod:`lwm2m.secure.soft`), ``pkcs11:`` (RFC 7512;
  :mod:`lwm2m.secure.pkcs11`), ``pcsc:`` (a smart card through pcscd,
  :mod:`lwm2m.secure.pcsc`). Backends are imported only when used.
- :class:`SecureInstanceStore` — sensitive object instances (/0, /21, …) kept in a component,
  their secret resources as credentials referenced by label (SCS-4, SCS-5).
- :mod:`lwm2m.secure.object` — the Secure Component LwM2M object (SCS-2).
- :func:`build_csr` — PKCS#10 requests signed inside the component (on-board enrolment).
"""

from lwm2m.errors import SecureComponentError
from lwm2m.secure.csr import build_csr, csr_pem
from lwm2m.secure.interfaces import (
    AuthenticationError,
    BackendNotAvailable,
    Capability,
    ComponentClosed,
    ComponentInfo,
    ComponentNotFound,
    ComponentType,
    ComponentUnavailable,
    CredentialInfo,
    CredentialKind,
    DloaReference,
    Identifier,
    InvalidSecureComponentUri,
    KeyExists,
    KeyHandle,
    KeyNotFound,
    KeySizeNotSupported,
    MechanismNotSupported,
    ModuleNotFound,
    ObjectLocked,
    OperationNotSupported,
    OscoreSecretHandle,
    PinIncorrect,
    PinLocked,
    PinRequired,
    PskHandle,
    SecureComponent,
    StorageCorrupted,
    TokenNotFound,
    parse_secret_reference,
    secret_reference,
)
from lwm2m.secure.object import (
    SECURE_COMPONENT_OBJECT_ID,
    register_secure_component_object,
    secure_component_definition,
    secure_component_instance,
)
from lwm2m.secure.redact import log_secret, redact_uri
from lwm2m.secure.store import SecureInstanceStore
from lwm2m.secure.uri import ENV_SECURE_COMPONENT, missing_modules, open_component

__all__ = [
    "ENV_SECURE_COMPONENT",
    "SECURE_COMPONENT_OBJECT_ID",
    "AuthenticationError",
    "BackendNotAvailable",
    "Capability",
    "ComponentClosed",
    "ComponentInfo",
    "ComponentNotFound",
    "ComponentType",
    "ComponentUnavailable",
    "CredentialInfo",
    "CredentialKind",
    "DloaReference",
    "Identifier",
    "InvalidSecureComponentUri",
    "KeyExists",
    "KeyHandle",
    "KeyNotFound",
    "KeySizeNotSupported",
    "MechanismNotSupported",
    "ModuleNotFound",
    "ObjectLocked",
    "OperationNotSupported",
    "OscoreSecretHandle",
    "PinIncorrect",
    "PinLocked",
    "PinRequired",
    "PskHandle",
    "SecureComponent",
    "SecureComponentError",
    "SecureInstanceStore",
    "StorageCorrupted",
    "TokenNotFound",
    "build_csr",
    "csr_pem",
    "log_secret",
    "missing_modules",
    "open_component",
    "parse_secret_reference",
    "redact_uri",
    "register_secure_component_object",
    "secret_reference",
    "secure_component_definition",
    "secure_component_instance",
]
