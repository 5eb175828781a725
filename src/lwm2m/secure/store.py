"""Sensitive object instances kept in a Secure Component (LwM2M-SCS-4, -5).

:class:`SecureInstanceStore` is the client's ``InstanceStore`` (``lwm2m.client.objects.base``:
``list / get / put / delete`` of whole :class:`~lwm2m.model.nodes.ObjectInstance` values) on top
of a :class:`~lwm2m.secure.interfaces.SecureComponent`. The client routes /0 Security, /21 OSCORE
and any sensitive application object to a ``StoredObject`` over this store, so a server
addresses those instances like any other (SCS-5) while they live in the component (SCS-4).

**Secret resources never enter the instance blob.** On :meth:`SecureInstanceStore.put`, each
secret resource (by default /0/x/5 Secret Key, /0/x/8 SMS Binding Secret Keys, /21/x/0 OSCORE
Master Secret) is imported into the component as its own credential and replaced in the stored
instance by a :func:`~lwm2m.secure.interfaces.secret_reference` to it:

- /0/x/5 with Security Mode 0 (PSK): :meth:`import_psk` with /0/x/3 as the identity — the PSK
  becomes the RFC 4279 premaster form inside the component at once;
- /0/x/5 with mode 1 (RPK) or 2 (certificate): :meth:`import_key` (a DER PKCS#8 or SEC 1 P-256
  private key, LwM2M-TS-Core 1.1 Appendix E.1);
- /21/x/0 OSCORE Master Secret: :meth:`import_oscore_secret`, bound to the Master Salt /21/x/5
  of the same instance (``b""`` when absent) — the component derives the OSCORE keys and never
  gives the secret back (:meth:`SecureInstanceStore.oscore_secret`). Because the secret is bound
  to its salt, an instance whose /21/x/5 changed while /21/x/0 still refers to the old secret is
  refused (:class:`~lwm2m.errors.BadRequest`): the Master Secret must be written again with it;
- anything else: :meth:`put_secret`.

Stores written before OSCORE Master Secrets had their own kind hold /21/x/0 as secret data
(:meth:`put_secret`), and so does a component without :attr:`Capability.OSCORE` (e.g. a card
whose IoT SAFE applet lacks COMPUTE HKDF); :meth:`SecureInstanceStore.oscore_secret` serves
those with a software HKDF over :meth:`get_secret` — the secret is then in this process's
memory while the context is derived, as it was before.

``get`` returns instances with the references, and ``put`` accepts them back (read-modify-write
by the object tree, snapshot/restore of a transaction). Credential labels are
``lwm2m:/OID/IID/RID#NONCE``: a new value gets a new label, so restoring a snapshot still finds
the old credential. Credentials no stored instance refers to any more are deleted by
:meth:`~SecureInstanceStore.collect_garbage` — when the store is created, and by the client
after a bootstrap session or a committed transaction.

Instances are serialised as CBOR (RFC 8949): ``[1, object_id, instance_id, [[rid, type, 0,
value] | [rid, type, 1, {riid: value}], ...]]`` with the DDF type name and Objlnk as
``[oid, iid]``.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable, Mapping
from typing import Any

import cbor2
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.errors import BadRequest, ModelError
from lwm2m.model.nodes import MultipleResource, ObjectInstance, Resource, SingleResource
from lwm2m.model.values import ObjectLink, ResourceType, Value
from lwm2m.secure.hkdf import SoftwareOscoreSecret
from lwm2m.secure.interfaces import (
    Capability,
    KeyHandle,
    KeyNotFound,
    OscoreSecretHandle,
    PskHandle,
    SecureComponent,
    StorageCorrupted,
    is_reference_form,
    parse_secret_reference,
    secret_reference,
)

__all__ = [
    "DEFAULT_SECRET_RESOURCES",
    "SecureInstanceStore",
    "decode_instance",
    "encode_instance",
]

#: Secret resources per object id: /0 Security 5 (Secret Key) and 8 (SMS Binding Secret Keys),
#: /21 OSCORE 0 (Master Secret).
DEFAULT_SECRET_RESOURCES: Mapping[int, frozenset[int]] = {
    0: frozenset({5, 8}),
    21: frozenset({0}),
}
_LABEL_PREFIX = "lwm2m:/"
_SECURITY = 0
_SECURITY_MODE, _IDENTITY, _SECRET_KEY = 2, 3, 5
_OSCORE = 21
_MASTER_SECRET, _MASTER_SALT = 0, 5
_MODE_PSK, _MODE_RPK, _MODE_CERT = 0, 1, 2
_FORMAT = 1


# --- serialisation -----------------------------------------------------------------------------


def _encode_value(value: Value) -> Any:
    return [value.object_id, value.instance_id] if isinstance(value, ObjectLink) else value


def _decode_value(type_: ResourceType, raw: Any) -> Value:
    if type_ is ResourceType.OBJLNK:
        oid, iid = raw
        return ObjectLink(oid, iid)
    return raw  # type: ignore[no-any-return]  # checked by the node constructors


def encode_instance(object_id: int, instance: ObjectInstance) -> bytes:
    """Serialise ``instance`` of ``object_id`` (CBOR; see the module docstring).

    >>> from lwm2m.model.nodes import SingleResource as S
    >>> blob = encode_instance(3, ObjectInstance(0, [S(0, ResourceType.STRING, "ACME")]))
    >>> oid, inst = decode_instance(blob); oid, inst.resources[0].value
    (3, 'ACME')
    """
    resources: list[list[Any]] = []
    for res in instance.resources.values():
        if isinstance(res, SingleResource):
            resources.append([res.id, res.type.value, 0, _encode_value(res.value)])
        else:
            values = {riid: _encode_value(v) for riid, v in res.values.items()}
            resources.append([res.id, res.type.value, 1, values])
    encoded: bytes = cbor2.dumps([_FORMAT, object_id, instance.id, resources])
    return encoded


def decode_instance(data: bytes) -> tuple[int, ObjectInstance]:
    """``(object_id, instance)`` from :func:`encode_instance` output.

    :raises StorageCorrupted: ``data`` is not such a serialisation.
    """
    try:
        version, object_id, instance_id, items = cbor2.loads(data)
        if version != _FORMAT:
            raise ValueError(f"unknown format {version!r}")
        resources: list[Resource] = []
        for rid, type_name, multiple, raw in items:
            type_ = ResourceType(type_name)
            if multiple:
                resources.append(
                    MultipleResource.of(
                        rid, type_, {riid: _decode_value(type_, v) for riid, v in raw.items()}
                    )
                )
            else:
                resources.append(SingleResource(rid, type_, _decode_value(type_, raw)))
        if type(object_id) is not int:
            raise ValueError("bad object id")
        return object_id, ObjectInstance(instance_id, resources)
    except (cbor2.CBORDecodeError, ValueError, TypeError, AttributeError, ModelError) as exc:
        raise StorageCorrupted(f"a stored object instance is damaged ({exc})") from None


# --- the store ---------------------------------------------------------------------------------


class SecureInstanceStore:
    """The client's ``InstanceStore`` over a Secure Component (see the module docstring).

    :param component: where instances and their secrets live.
    :param secret_resources: object id -> ids of its secret resources; defaults to
        :data:`DEFAULT_SECRET_RESOURCES`. Add sensitive application objects here.
    """

    def __init__(
        self,
        component: SecureComponent,
        *,
        secret_resources: Mapping[int, Iterable[int]] | None = None,
    ) -> None:
        self.component = component
        table = DEFAULT_SECRET_RESOURCES if secret_resources is None else secret_resources
        self._secret = {oid: frozenset(rids) for oid, rids in table.items()}
        self.collect_garbage()

    # -- InstanceStore --------------------------------------------------------------------------

    def list(self, object_id: int) -> list[int]:
        return [iid for _, iid in self.component.list_instances(object_id)]

    def get(self, object_id: int, instance_id: int) -> ObjectInstance | None:
        blob = self.component.get_instance(object_id, instance_id)
        if blob is None:
            return None
        stored_oid, instance = decode_instance(blob)
        if stored_oid != object_id or instance.id != instance_id:
            raise StorageCorrupted(f"/{object_id}/{instance_id} holds another instance")
        return instance

    def put(self, object_id: int, instance: ObjectInstance) -> None:
        """Store ``instance``: secrets go into the component first, then the instance blob.

        :raises BadRequest: a secret resource holds an unusable value (e.g. /0/x/5 in RPK
            mode that is not a P-256 private key).
        :raises KeyNotFound: a secret resource holds a reference to a missing credential.
        """
        secret_ids = self._secret.get(object_id, frozenset())
        resources: builtins.list[Resource] = []
        for res in instance.resources.values():
            if res.id not in secret_ids:
                resources.append(res)
            elif isinstance(res, SingleResource):
                value = self._seal(object_id, instance, res.id, None, res.type, res.value)
                resources.append(SingleResource(res.id, res.type, value))
            else:
                sealed = {
                    riid: self._seal(object_id, instance, res.id, riid, res.type, v)
                    for riid, v in res.values.items()
                }
                resources.append(MultipleResource.of(res.id, res.type, sealed))
        sealed_instance = ObjectInstance(instance.id, resources)
        self.component.put_instance(
            object_id, instance.id, encode_instance(object_id, sealed_instance)
        )

    def delete(self, object_id: int, instance_id: int) -> None:
        self.component.delete_instance(object_id, instance_id)

    # -- credentials of stored instances --------------------------------------------------------

    def reference(self, object_id: int, instance_id: int, resource_id: int) -> str | None:
        """The label of the credential behind a secret resource, or None."""
        instance = self.get(object_id, instance_id)
        return None if instance is None else _reference_in(instance, resource_id)

    def psk(self, security_instance_id: int) -> PskHandle | None:
        """The PSK of Security instance ``/0/iid`` (mode PSK), for the DTLS engine."""
        label = self.reference(_SECURITY, security_instance_id, _SECRET_KEY)
        return None if label is None else self.component.psk(label)

    def key(self, security_instance_id: int) -> KeyHandle | None:
        """The private key of Security instance ``/0/iid`` (RPK/certificate mode)."""
        label = self.reference(_SECURITY, security_instance_id, _SECRET_KEY)
        return None if label is None else self.component.key(label)

    def secret(self, object_id: int, instance_id: int, resource_id: int) -> bytes | None:
        """Secret data behind a resource (:meth:`put_secret`; not an OSCORE Master Secret,
        which is never read back: see :meth:`oscore_secret`)."""
        label = self.reference(object_id, instance_id, resource_id)
        return None if label is None else self.component.get_secret(label)

    def oscore_secret(self, oscore_instance_id: int) -> OscoreSecretHandle | None:
        """The Master Secret of OSCORE instance ``/21/iid`` (bound to its /21/iid/5 Master
        Salt), for ``lwm2m.oscore.SecurityContext``; None when /21/iid/0 holds no reference.

        A /21/x/0 kept as plain secret data by an older store is served by a software HKDF
        over :meth:`get_secret` (:class:`~lwm2m.secure.hkdf.SoftwareOscoreSecret`).

        :raises KeyNotFound: the reference names no credential.
        """
        instance = self.get(_OSCORE, oscore_instance_id)
        label = None if instance is None else _reference_in(instance, _MASTER_SECRET)
        if instance is None or label is None:
            return None
        try:
            return self.component.oscore_secret(label)
        except KeyNotFound:
            data = self.component.get_secret(label)  # KeyNotFound when it is not there either
            return SoftwareOscoreSecret(label, data, _master_salt(instance))

    def collect_garbage(self) -> builtins.list[str]:
        """Delete ``lwm2m:/…`` credentials that no stored instance refers to; their labels."""
        referenced: set[str] = set()
        for object_id, instance_id in self.component.list_instances():
            instance = self.get(object_id, instance_id)
            assert instance is not None
            for res in instance.resources.values():
                values = [res.value] if isinstance(res, SingleResource) else res.values.values()
                for value in values:
                    raw = value.encode() if isinstance(value, str) else value
                    if isinstance(raw, bytes) and (label := parse_secret_reference(raw)):
                        referenced.add(label)
        removed = [
            c.label
            for c in self.component.credentials()
            if c.label.startswith(_LABEL_PREFIX) and c.label not in referenced
        ]
        for label in removed:
            self.component.delete(label)
        return removed

    # -- internals ------------------------------------------------------------------------------

    def _seal(
        self,
        object_id: int,
        instance: ObjectInstance,
        resource_id: int,
        resource_instance_id: int | None,
        type_: ResourceType,
        value: Value,
    ) -> Value:
        """Import one secret value; return the reference that replaces it."""
        path = f"/{object_id}/{instance.id}/{resource_id}"
        if resource_instance_id is not None:
            path += f"/{resource_instance_id}"
        if isinstance(value, str):
            raw = value.encode()
        elif isinstance(value, bytes):
            raw = value
        else:
            raise BadRequest(f"{path}: a secret resource must be Opaque or String")
        if not raw:
            return value  # no secret (e.g. /0/x/5 in NoSec mode)
        label = parse_secret_reference(raw)
        if label is None and is_reference_form(raw):
            # not imported as a literal secret: a mistyped reference would become a wrong key
            raise BadRequest(
                f"{path}: an sc-ref: reference needs a credential label "
                "of 1..128 printable characters"
            )
        oscore = (object_id, resource_id, resource_instance_id) == (_OSCORE, _MASTER_SECRET, None)
        if label is not None:
            if label not in {c.label for c in self.component.credentials()}:
                raise KeyNotFound(f"{path} refers to a missing credential {label!r}")
            if oscore:
                self._check_master_salt(path, label, _master_salt(instance))
            return value
        label = f"lwm2m:{path}#{os.urandom(4).hex()}"
        if object_id == _SECURITY and resource_id == _SECRET_KEY:
            mode = _single_value(instance, _SECURITY_MODE)
            if mode == _MODE_PSK:
                identity = _single_value(instance, _IDENTITY)
                if isinstance(identity, str):
                    identity = identity.encode()
                if not isinstance(identity, bytes) or not identity:
                    raise BadRequest(f"{path}: PSK mode needs the PSK identity in resource 3")
                self.component.import_psk(identity, raw, label=label)
            elif mode in (_MODE_RPK, _MODE_CERT):
                self.component.import_key(label, _load_private_key(raw, path))
            else:
                self.component.put_secret(label, raw)
        elif oscore and Capability.OSCORE in self.component.capabilities:
            self.component.import_oscore_secret(label, raw, _master_salt(instance))
        else:
            self.component.put_secret(label, raw)
        reference = secret_reference(label)
        return reference if type_ is ResourceType.OPAQUE else reference.decode()

    def _check_master_salt(self, path: str, label: str, salt: bytes) -> None:
        """Refuse an OSCORE instance whose Master Salt is not the one its Master Secret was
        imported with (the component derives with that salt only)."""
        try:
            bound = self.component.oscore_secret(label).master_salt
        except KeyNotFound:
            return  # secret data of an older store: not bound to a salt
        if bound != salt:
            instance = path.rsplit("/", 1)[0]
            raise BadRequest(
                f"{path} refers to an OSCORE Master Secret imported with another Master Salt "
                f"than {instance}/{_MASTER_SALT}: write the Master Secret again with the new salt"
            )

    def __repr__(self) -> str:
        return f"<SecureInstanceStore component={self.component!r}>"


def _single_value(instance: ObjectInstance, resource_id: int) -> Value:
    res = instance.resources.get(resource_id)
    return res.value if isinstance(res, SingleResource) else None


def _reference_in(instance: ObjectInstance, resource_id: int) -> str | None:
    res = instance.resources.get(resource_id)
    if not isinstance(res, SingleResource):
        return None
    value = res.value
    if isinstance(value, str):
        value = value.encode()
    return parse_secret_reference(value) if isinstance(value, bytes) else None


def _master_salt(instance: ObjectInstance) -> bytes:
    """/21/x/5 Master Salt of an OSCORE instance (``b""`` when absent, RFC 8613 §3.2)."""
    salt = _single_value(instance, _MASTER_SALT)
    if isinstance(salt, str):
        return salt.encode()
    return salt if isinstance(salt, bytes) else b""


def _load_private_key(raw: bytes, path: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadRequest(f"{path}: not a DER (PKCS#8 or SEC 1) private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise BadRequest(f"{path}: only P-256 private keys are supported")
    return key
