"""Sensitive object instances in a Secure Component (SCS-4): the client's InstanceStore seam,
secret resources turned into component credentials, CBOR serialisation."""

from __future__ import annotations

import os

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m.client.objects.base import InstanceStore, StoredObject
from lwm2m.errors import BadRequest
from lwm2m.model.nodes import MultipleResource, ObjectInstance, SingleResource
from lwm2m.model.registry import default_registry
from lwm2m.model.values import ObjectLink, ResourceType, Value
from lwm2m.secure import (
    CredentialKind,
    KeyNotFound,
    OperationNotSupported,
    SecureInstanceStore,
    StorageCorrupted,
    parse_secret_reference,
)
from lwm2m.secure.store import decode_instance, encode_instance

from .conftest import Backend, reference_master_secret

S, M, T = SingleResource, MultipleResource, ResourceType


def security(iid: int, mode: int, identity: bytes, secret: bytes, **extra: int) -> ObjectInstance:
    resources = [
        S(0, T.STRING, f"coaps://server{iid}.example:5684"),
        S(1, T.BOOLEAN, False),
        S(2, T.INTEGER, mode),
        S(3, T.OPAQUE, identity),
        S(4, T.OPAQUE, b""),
        S(5, T.OPAQUE, secret),
        S(10, T.INTEGER, 100 + iid),
    ]
    resources += [
        S(rid, T.INTEGER, value) for rid, value in ((int(k[1:]), v) for k, v in extra.items())
    ]
    return ObjectInstance(iid, resources)


def test_fits_the_client_instance_store(backend: Backend) -> None:
    store = SecureInstanceStore(backend.open())
    assert isinstance(store, InstanceStore)
    handler = StoredObject(default_registry().get(0), store)  # type: ignore[arg-type]
    handler.create(security(1, 3, b"", b""))
    assert handler.instance_ids() == [1]
    assert handler.value(1, 10) == 101
    assert "SecureInstanceStore" in repr(store)


def test_psk_security_instance(backend: Backend) -> None:
    psk = os.urandom(16)
    component = backend.open()
    store = SecureInstanceStore(component)
    store.put(0, security(1, 0, b"urn:imei:1", psk))
    # The blob in the component holds a reference, not the PSK.
    blob = component.get_instance(0, 1)
    assert blob is not None
    assert psk not in blob
    assert psk.hex().encode() not in blob
    stored = store.get(0, 1)
    assert stored is not None
    value = stored.resources[5].value  # type: ignore[union-attr]
    assert isinstance(value, bytes)
    label = parse_secret_reference(value)
    assert label is not None
    assert label.startswith("lwm2m:/0/1/5#")
    assert stored.resources[3].value == b"urn:imei:1"  # type: ignore[union-attr]
    handle = store.psk(1)
    assert handle is not None
    assert handle.identity == b"urn:imei:1"
    assert handle.derive_master_secret(b"master secret", b"r") == reference_master_secret(
        psk, b"master secret", b"r"
    )
    # Read-modify-write keeps the reference (the tree writes whole instances back).
    changed = ObjectInstance(1, {**stored.resources, 10: S(10, T.INTEGER, 7)})
    store.put(0, changed)
    assert store.reference(0, 1, 5) == label
    assert store.collect_garbage() == []
    # A reopened component still serves the PSK.
    component.close()
    again = SecureInstanceStore(backend.open())
    assert again.list(0) == [1]
    reopened = again.psk(1)
    assert reopened is not None
    assert reopened.label == label


def test_rpk_and_certificate_modes_import_the_private_key(backend: Backend) -> None:
    store = SecureInstanceStore(backend.open())
    private = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    sec1 = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    store.put(0, security(1, 1, b"spki", pkcs8))
    store.put(0, security(2, 2, b"cert", sec1))
    for iid in (1, 2):
        key = store.key(iid)
        assert key is not None
        assert key.public_key() == private.public_key()
        key.public_key().verify(key.sign(b"m"), b"m", ec.ECDSA(hashes.SHA256()))
    kinds = {c.kind for c in store.component.credentials()}
    assert kinds == {CredentialKind.KEY_PAIR}


def test_other_secrets_become_secret_data(backend: Backend) -> None:
    store = SecureInstanceStore(backend.open(), secret_resources={0: {5, 8}, 21: {0}, 3442: {1}})
    master = os.urandom(16)
    store.put(21, ObjectInstance(0, [S(0, T.OPAQUE, master), S(1, T.OPAQUE, b"\x01")]))
    with pytest.raises(OperationNotSupported, match="OSCORE Master Secret"):
        store.secret(21, 0, 0)  # an OSCORE Master Secret is never read back (test_oscore_secret)
    assert store.get(21, 0).resources[1].value == b"\x01"  # type: ignore[union-attr]
    # NoSec mode (3) with a secret key anyway, and a multiple secret resource.
    store.put(0, security(3, 3, b"", b"not empty"))
    assert store.secret(0, 3, 5) == b"not empty"
    store.put(3442, ObjectInstance(0, [M.of(1, T.STRING, {0: "alpha", 1: ""})]))
    stored = store.get(3442, 0)
    assert stored is not None
    values = stored.resources[1].values  # type: ignore[union-attr]
    assert values[1] == ""
    assert isinstance(values[0], str)
    label = parse_secret_reference(values[0].encode())
    assert label is not None
    assert store.component.get_secret(label) == b"alpha"
    with pytest.raises(KeyNotFound):
        store.psk(3)  # NoSec: the reference is to secret data, not a PSK
    assert store.reference(0, 99, 5) is None
    assert store.reference(3442, 0, 1) is None  # multiple resources are not single references
    assert store.psk(99) is None
    assert store.key(99) is None
    assert store.secret(21, 9, 0) is None


def test_snapshot_restore_and_garbage(backend: Backend) -> None:
    component = backend.open()
    store = SecureInstanceStore(component)
    old_psk, new_psk = os.urandom(16), os.urandom(16)
    store.put(0, security(1, 0, b"id", old_psk))
    snapshot = store.get(0, 1)
    assert snapshot is not None
    store.put(0, security(1, 0, b"id", new_psk))  # a new value: a new credential
    store.put(0, snapshot)  # a failed transaction restores the old instance
    restored = store.psk(1)
    assert restored is not None
    assert restored.derive_master_secret(b"x", b"y") == reference_master_secret(old_psk, b"x", b"y")
    component.put_secret("application", b"kept: not an lwm2m:/ label")
    removed = store.collect_garbage()
    assert len(removed) == 1
    assert removed[0].startswith("lwm2m:/0/1/5#")
    store.delete(0, 1)
    store.delete(0, 1)  # no error when absent
    assert store.get(0, 1) is None
    # The store collects garbage when it is created.
    assert len(SecureInstanceStore(component).component.credentials()) == 1


def test_bad_secret_values(backend: Backend) -> None:
    store = SecureInstanceStore(backend.open())
    with pytest.raises(BadRequest, match="DER"):
        store.put(0, security(1, 1, b"", b"not a key"))
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(BadRequest, match="P-256"):
        store.put(0, security(1, 2, b"", p384))
    with pytest.raises(BadRequest, match="identity"):
        store.put(0, security(1, 0, b"", os.urandom(16)))
    with pytest.raises(KeyNotFound, match="missing credential"):
        store.put(0, security(1, 0, b"id", b"sc-ref:lwm2m:/0/1/5#00000000"))
    # the reference form with an invalid label is an error, never imported as a literal key
    before = {c.label for c in store.component.credentials()}
    for bad in (b"sc-ref:", b"sc-ref:\xff", b"sc-ref:" + b"x" * 129, b"sc-ref:a\nb"):
        with pytest.raises(BadRequest, match="sc-ref: reference needs a credential label"):
            store.put(0, security(1, 0, b"id", bad))
    assert {c.label for c in store.component.credentials()} == before
    odd = SecureInstanceStore(store.component, secret_resources={9: {0}})
    with pytest.raises(BadRequest, match="Opaque or String"):
        odd.put(9, ObjectInstance(0, [S(0, T.INTEGER, 5)]))
    # String identities are accepted for PSK mode.
    store.put(
        0,
        ObjectInstance(
            4, [S(2, T.INTEGER, 0), S(3, T.STRING, "dev"), S(5, T.OPAQUE, os.urandom(16))]
        ),
    )
    handle = store.psk(4)
    assert handle is not None
    assert handle.identity == b"dev"


def test_stored_instance_mismatch(backend: Backend) -> None:
    component = backend.open()
    store = SecureInstanceStore(component)
    component.put_instance(0, 1, encode_instance(0, ObjectInstance(2)))
    with pytest.raises(StorageCorrupted, match="another instance"):
        store.get(0, 1)


# -- serialisation -------------------------------------------------------------------------------

_VALUES: dict[ResourceType, st.SearchStrategy[Value]] = {
    T.STRING: st.text(max_size=20),
    T.INTEGER: st.integers(-(2**63), 2**63 - 1),
    T.UNSIGNED_INTEGER: st.integers(0, 2**64 - 1),
    T.FLOAT: st.floats(allow_nan=False),
    T.BOOLEAN: st.booleans(),
    T.OPAQUE: st.binary(max_size=40),
    T.TIME: st.integers(-(2**63), 2**63 - 1),
    T.OBJLNK: st.builds(ObjectLink, st.integers(0, 65535), st.integers(0, 65535)),
    T.CORELNK: st.just("</3/0>"),
    T.NONE: st.none(),
}


@st.composite
def resources(draw: st.DrawFn, rid: int) -> SingleResource | MultipleResource:
    type_ = draw(st.sampled_from(list(_VALUES)))
    if draw(st.booleans()):
        return S(rid, type_, draw(_VALUES[type_]))
    values = draw(st.dictionaries(st.integers(0, 65534), _VALUES[type_], max_size=3))
    return M.of(rid, type_, values)


@st.composite
def instances(draw: st.DrawFn) -> ObjectInstance:
    ids = draw(st.sets(st.integers(0, 65534), max_size=6))
    return ObjectInstance(draw(st.integers(0, 65534)), [draw(resources(rid)) for rid in ids])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 65534), instances())
def test_encoding_roundtrip(object_id: int, instance: ObjectInstance) -> None:
    assert decode_instance(encode_instance(object_id, instance)) == (object_id, instance)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        cbor2.dumps([2, 0, 0, []]),
        cbor2.dumps([1, "0", 0, []]),
        cbor2.dumps([1, 0, 0, [[0, "Nope", 0, 1]]]),
        cbor2.dumps([1, 0, 0, [[0, "Integer", 0, "text"]]]),
        cbor2.dumps([1, 0, 0, [[0, "Objlnk", 0, [1]]]]),
        cbor2.dumps([1, 0, 0, [[0, "Integer", 1, [1]]]]),
        cbor2.dumps([1, 0, 70000, []]),
        cbor2.dumps({"a": 1}),
    ],
)
def test_damaged_instances(data: bytes) -> None:
    with pytest.raises(StorageCorrupted):
        decode_instance(data)


def test_string_secret_reference(backend: Backend) -> None:
    store = SecureInstanceStore(backend.open(), secret_resources={9: {0}})
    store.put(9, ObjectInstance(0, [S(0, T.STRING, "token")]))
    label = store.reference(9, 0, 0)
    assert label is not None
    assert store.secret(9, 0, 0) == b"token"
    stored = store.get(9, 0)
    assert stored is not None
    store.put(9, stored)  # the string reference is accepted back
    assert store.reference(9, 0, 0) == label
