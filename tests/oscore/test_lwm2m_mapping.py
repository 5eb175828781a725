"""OSCORE in the LwM2M layers, without a network: the client configuration keys, the /21
instance and /0/x/17, the credentials the client engine hands to its connector, the server's
security entry and its store form, the context loader, and the layer's bookkeeping."""

from __future__ import annotations

import asyncio
from typing import Any

import cbor2
import pytest

from lwm2m.client.accounts import ConnectionSecurity, ServerUri, UnsupportedSecurityMode
from lwm2m.client.bootstrap import factory_objects
from lwm2m.client.config import ConfigError, parse_config
from lwm2m.client.objects.security import Credentials, OscoreMaterial, Secret, SecurityMode
from lwm2m.coap.message import Message
from lwm2m.coap.numbers import Code
from lwm2m.io.lwm2m_client import LwM2MClient, OscoreAccounts, oscore_context
from lwm2m.io.oscore import (
    OscoreLayer,
    UnprotectedResponse,
    context_loader,
    echo_request,
    open_response,
    sequence_floor,
    with_echo,
)
from lwm2m.model.values import ObjectLink
from lwm2m.oscore import (
    AeadAlgorithm,
    DecryptionFailed,
    OscoreParameters,
    SecurityContext,
    SoftwareMasterSecret,
    unprotect_request,
)
from lwm2m.oscore.cose import aad
from lwm2m.server.security import OscoreInfo, SecretKey, SecurityInfo
from lwm2m.store.serde import security_info_from_json, security_info_to_json

SECRET = bytes.fromhex("00112233445566778899aabbccddeeff")
SALT = bytes.fromhex("a1b2")


def keys(**extra: Any) -> dict[str, Any]:
    table = {
        "uri": "coap://127.0.0.1:5683",
        "short_server_id": 1,
        "oscore_sender_id_hex": "c1",
        "oscore_recipient_id_hex": "51",
        "oscore_master_secret_hex": SECRET.hex(),
        "oscore_master_salt_hex": SALT.hex(),
    }
    table.update(extra)
    return table


def config(**extra: Any) -> Any:
    return parse_config({"endpoint": "ep", "servers": [keys(**extra)]})


# -- client configuration and factory objects ------------------------------------------------------


def test_configuration_keys_make_a_21_instance_linked_from_0_x_17() -> None:
    made = config(oscore_aead=10, oscore_hkdf=-10)
    oscore = made.servers[0].security.oscore
    assert oscore is not None
    assert (oscore.sender_id, oscore.recipient_id, oscore.master_salt) == (b"\xc1", b"Q", SALT)
    assert SECRET.hex() not in repr(made)
    objects = {node.id: node for node in factory_objects(made)}
    link = objects[0].instances[0].resources[17]
    assert link.value == ObjectLink(21, 0)  # type: ignore[union-attr]
    instance = objects[21].instances[0]
    values = {rid: r.value for rid, r in instance.resources.items()}  # type: ignore[union-attr]
    assert values == {0: SECRET, 1: b"\xc1", 2: b"Q", 3: 10, 4: -10, 5: SALT}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"oscore_master_secret_hex": None}, "OSCORE needs oscore_master_secret_hex"),
        ({"oscore_recipient_id_hex": "c1"}, "sender and recipient ids must differ"),
        ({"oscore_master_secret_hex": ""}, "must not be empty"),
        ({"oscore_aead": "ccm"}, "oscore_aead: a COSE algorithm number"),
        ({"security_mode": "psk"}, "over coap:// (security_mode nosec) only"),
        ({"oscore_master_secret_hex": "zz"}, "oscore_master_secret_hex: not valid hex"),
    ],
)
def test_configuration_errors_name_the_key_and_never_the_secret(
    extra: dict[str, Any], message: str
) -> None:
    table = keys(**{k: v for k, v in extra.items() if v is not None})
    for key in [k for k, v in extra.items() if v is None]:
        del table[key]
    if table.get("security_mode") == "psk":
        table["uri"] = "coaps://127.0.0.1:5684"
        table.update(psk_identity="x", psk_key_hex="00")
    with pytest.raises(ConfigError) as refused:
        parse_config({"endpoint": "ep", "servers": [table]})
    assert message in str(refused.value)
    assert SECRET.hex() not in str(refused.value)


# -- the client engine and its connector -----------------------------------------------------------


async def test_the_engine_gives_the_connector_the_21_material_of_the_account() -> None:
    client = LwM2MClient(config())
    client.engine.start(0.0)  # the factory bootstrap writes /0, /1 and /21
    credentials = client.engine.credentials(0)
    assert credentials.oscore == OscoreMaterial(Secret(SECRET), b"\xc1", b"Q", None, None, SALT)
    assert SECRET.hex() not in repr(credentials)


async def test_a_0_x_17_link_to_a_missing_instance_is_refused_by_name() -> None:
    client = LwM2MClient(config())
    client.engine.start(0.0)
    oscore = client.engine.tree.get(21)
    assert oscore is not None
    oscore.store.delete(21, 0)  # type: ignore[attr-defined]
    with pytest.raises(UnsupportedSecurityMode, match=r"/0/0/17 links to 21:0, which does not"):
        client.engine.credentials(0)


def connection(mode: SecurityMode = SecurityMode.NO_SEC) -> ConnectionSecurity:
    uri = ServerUri.parse("coap://127.0.0.1:5683")
    return ConnectionSecurity(0, uri, mode, False, 1, ObjectLink(21, 0))


def material(**changes: Any) -> OscoreMaterial:
    values: dict[str, Any] = {
        "master_secret": Secret(SECRET),
        "sender_id": b"\xc1",
        "recipient_id": b"Q",
        "master_salt": SALT,
    }
    values.update(changes)
    return OscoreMaterial(**values)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"master_secret": Secret(b"sc-ref:oscore-1")}, "but the client has no Secure Component"),
        ({"master_secret": Secret(b"sc-ref:")}, "sc-ref: form but no valid label"),
        ({"master_secret": Secret(b"")}, "no Master Secret"),
        ({"aead": 99}, "99 is not a valid AeadAlgorithm"),
        ({"hkdf": 5}, "5 is not a valid HkdfAlgorithm"),
        ({"recipient_id": b"\xc1"}, "OSCORE for coap://127.0.0.1:5683"),
    ],
)
def test_unusable_material_is_refused_with_a_reason(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedSecurityMode, match=message):
        oscore_context(material(**changes), connection())


def test_oscore_inside_dtls_is_refused() -> None:
    uri = ServerUri.parse("coaps://127.0.0.1:5684")
    dtls = ConnectionSecurity(0, uri, SecurityMode.PSK, False, 1, ObjectLink(21, 0))
    with pytest.raises(UnsupportedSecurityMode, match="only OSCORE over coap://"):
        dtls.check_supported((SecurityMode.PSK,), oscore=True)
    with pytest.raises(UnsupportedSecurityMode, match="not supported yet"):
        connection().check_supported()


async def test_the_connector_keeps_a_context_while_the_material_is_unchanged() -> None:
    """Deriving again would restart the sequence numbers: the same material keeps its context,
    a new one gets a new context, and an account without OSCORE unbinds the address."""
    accounts = OscoreAccounts()
    address = ("127.0.0.1", 5683)

    def give(m: OscoreMaterial | None) -> Any:
        return lambda: Credentials(0, SecurityMode.NO_SEC, oscore=m)

    await accounts.connect(connection(), give(material()), address)
    first = accounts.layer.context_for(address)
    assert first is not None
    assert first.sender_sequence_number >= sequence_floor() - 60_000
    await accounts.connect(connection(), give(material()), address)
    assert accounts.layer.context_for(address) is first
    await accounts.connect(connection(), give(material(master_salt=b"")), address)
    second = accounts.layer.context_for(address)
    assert second is not None
    assert second is not first
    plain = ConnectionSecurity(0, connection().uri, SecurityMode.NO_SEC, False, 1, None)
    await accounts.connect(plain, give(None), address)
    assert accounts.layer.context_for(address) is None
    assert address not in accounts.layer.required


def test_sequence_floor_counts_milliseconds_from_2023_11_14() -> None:
    assert sequence_floor(lambda: 1_700_000_000.0) == 0
    assert sequence_floor(lambda: 1_700_000_001.5) == 1500
    assert sequence_floor(lambda: 0.0) == 0
    # 5-byte Partial IVs for decades: 2^40 ms after 2023-11-14 is in 2058
    assert sequence_floor(lambda: 2_799_000_000.0) < 2**40


# -- the server's security entry -------------------------------------------------------------------


def test_security_entry_round_trips_through_the_store_form_and_hides_the_secret() -> None:
    info = SecurityInfo.oscore_context("ep", b"\xc1", b"Q", SECRET, master_salt=SALT, aead=30)
    assert info.mode == "oscore"
    assert info.identity is not None
    assert info.identity.value == "c1"
    assert SECRET.hex() not in repr(info)
    assert repr(SECRET) not in repr(info)
    assert security_info_from_json(security_info_to_json(info)) == info


def test_an_entry_whose_identity_is_not_its_sender_id_is_refused() -> None:
    good = SecurityInfo.oscore_context("ep", b"\xc1", b"Q", SECRET)
    with pytest.raises(ValueError, match="OSCORE identity is not the Sender ID"):
        SecurityInfo("ep", SecurityInfo.psk("ep", "ep", SECRET).identity, oscore=good.oscore)
    with pytest.raises(ValueError, match="must differ"):
        OscoreInfo(b"\x01", b"\x01", SecretKey(SECRET))


async def test_the_loader_builds_the_server_side_context_or_none() -> None:
    """The server's Sender ID is the client's Recipient ID; an ID Context, an unknown kid or
    unusable parameters give no context."""
    info = SecurityInfo.oscore_context("ep", b"\xc1", b"Q", SECRET, master_salt=SALT)
    bad = SecurityInfo.oscore_context("bad", b"\xc2", b"Q", SECRET, aead=99)
    table = {b"\xc1": info.oscore, b"\xc2": bad.oscore}

    async def lookup(kid: bytes) -> OscoreInfo | None:
        return table.get(kid)

    load = context_loader(lookup)
    context = await load(b"\xc1", None)
    assert context is not None
    assert (context.sender_id, context.recipient_id) == (b"Q", b"\xc1")
    assert context.sender_sequence_number > 0  # from the clock
    assert await load(b"\xc1", b"ctx") is None
    assert await load(b"\x77", None) is None
    assert await load(b"\xc2", None) is None


# -- the layer -------------------------------------------------------------------------------------


def pair() -> tuple[SecurityContext, SecurityContext]:
    client = SecurityContext(SoftwareMasterSecret(SECRET), OscoreParameters(b"\xc1", b"Q"))
    server = SecurityContext(SoftwareMasterSecret(SECRET), OscoreParameters(b"Q", b"\xc1"))
    return client, server


async def test_a_context_that_fails_to_decrypt_is_replaced_only_by_new_keys() -> None:
    """A loaded context that fails to decrypt: the store is read again. A forged request (the
    stored keys do not decrypt it either) changes nothing: the context, its replay state and
    its verified freshness stay. A client re-provisioned with a new Master Secret (the store
    holds it too) is taken: the new context replaces the old one, wherever it was bound, and
    must prove its freshness with Echo."""
    loads = 0
    secret = [SECRET]

    async def loader(kid: bytes, kid_context: bytes | None) -> SecurityContext:
        nonlocal loads
        loads += 1
        return SecurityContext(SoftwareMasterSecret(secret[0]), OscoreParameters(b"Q", b"\xc1"))

    layer = OscoreLayer(loader)
    client, _ = pair()
    request, _ = client.protect_request(Message(Code.GET, uri_path="/x"))
    inner, context, bound = await layer.verify_request(request)
    assert layer.freshness_challenge(context, inner, bound) is not None
    layer.bind(("c", 1), context)
    forger = SecurityContext(
        SoftwareMasterSecret(bytes(16)), OscoreParameters(b"\xc1", b"Q"), sender_sequence_number=9
    )
    forged = forger.protect_request(Message(Code.GET))[0]
    assert layer.verify_held(forged) is None  # the store is to be read again
    with pytest.raises(DecryptionFailed):
        await layer.verify_request(forged)
    assert loads == 2
    assert await layer.find(b"\xc1", None) is context  # nothing changed
    secret[0] = bytes(16)  # re-provisioned: the store and the client hold another secret
    renewed = SecurityContext(
        SoftwareMasterSecret(bytes(16)), OscoreParameters(b"\xc1", b"Q"), sender_sequence_number=10
    )
    again, _ = renewed.protect_request(Message(Code.GET, uri_path="/x"))
    inner, reloaded, bound = await layer.verify_request(again)
    assert loads == 3
    assert reloaded is not context
    assert await layer.find(b"\xc1", None) is reloaded
    assert layer.context_for(("c", 1)) is reloaded
    assert layer.freshness_challenge(reloaded, inner, bound) is not None  # Echo again
    assert layer.echo_challenges == 2


async def test_a_request_returning_the_echo_value_is_served_and_seals_the_window() -> None:
    layer = OscoreLayer()
    client, server = pair()
    layer.add_context(server, fresh=True)
    first, first_binding = client.protect_request(Message(Code.GET, uri_path="/x"))
    inner, context, binding = await layer.verify_request(first)
    challenge = layer.freshness_challenge(context, inner, binding)
    assert challenge is not None
    # the client reads the challenge and repeats the request with the Echo value
    echo = echo_request(client.unprotect_response(challenge, first_binding))
    assert echo is not None
    assert len(echo) == 8
    second, _ = client.protect_request(with_echo(Message(Code.GET, uri_path="/x"), echo))
    inner2, context2, binding2 = await layer.verify_request(second)
    assert layer.freshness_challenge(context2, inner2, binding2) is None
    assert layer.echo_challenges == 1
    # sealed: everything up to the verified request counts as seen
    assert context2.replay_window.bitmap == (1 << context2.replay_window.size) - 1
    # a served context asks no more
    third, _ = client.protect_request(Message(Code.GET, uri_path="/x"))
    inner3, context3, binding3 = await layer.verify_request(third)
    assert layer.freshness_challenge(context3, inner3, binding3) is None


def test_open_response_refuses_an_unprotected_answer_naming_its_code() -> None:
    client, _ = pair()
    _, binding = client.protect_request(Message(Code.GET))
    with pytest.raises(UnprotectedResponse) as refused:
        open_response(client, binding, Message(Code.UNAUTHORIZED, b"Security context not found"))
    assert refused.value.code == Code.UNAUTHORIZED
    assert str(refused.value) == (
        "the peer answered 4.01 without OSCORE protection (Security context not found)"
    )
    assert echo_request(Message(Code.CONTENT)) is None


def test_peers_bind_unbind_and_removal() -> None:
    layer = OscoreLayer()
    client, server = pair()
    layer.add_peer(("a", 1), client)
    layer.add_peer(("b", 2), client)
    layer.remove_peer(("a", 1))  # still used for ("b", 2): its context stays accepted
    assert asyncio.run(layer.find(b"Q", None)) is client
    layer.remove_peer(("b", 2))
    assert asyncio.run(layer.find(b"Q", None)) is None
    layer.bind(("c", 3), server)
    assert layer.context_for(("c", 3)) is server
    assert ("c", 3) not in layer.required
    layer.unbind(("c", 3))
    assert layer.context_for(("c", 3)) is None
    layer.remove_peer(("never", 0))  # nothing to remove: no error


async def test_concurrent_loads_keep_one_context_and_unknown_kids_none() -> None:
    """Two requests of one client arrive together: both load, the first load is kept (one
    replay window); an unknown kid loads nothing; forgetting an unknown kid does nothing."""
    gate = asyncio.Event()

    async def loader(kid: bytes, kid_context: bytes | None) -> SecurityContext | None:
        if kid != b"\xc1":
            return None
        await gate.wait()
        return pair()[1]

    layer = OscoreLayer(loader)
    first = asyncio.ensure_future(layer.find(b"\xc1", None))
    second = asyncio.ensure_future(layer.find(b"\xc1", None))
    await asyncio.sleep(0)
    gate.set()
    a, b = await asyncio.gather(first, second)
    assert a is b
    assert a is not None
    assert await layer.find(b"\x09", None) is None
    layer.forget(b"\x09")
    assert await layer.find(b"\xc1", None) is a


@pytest.mark.parametrize("kid_length", [0, 1, 7, 23, 24, 40, 300])
@pytest.mark.parametrize("algorithm", list(AeadAlgorithm))
def test_the_hand_written_aad_is_the_cbor_of_rfc8613_section_5_4(
    kid_length: int, algorithm: AeadAlgorithm
) -> None:
    kid, piv = bytes(range(kid_length % 256))[:kid_length], b"\x01\x02\x03\x04\x05"
    external = cbor2.dumps([1, [int(algorithm)], kid, piv, b""])
    assert aad(algorithm, kid, piv) == cbor2.dumps(["Encrypt0", b"", external])


class _Component:
    """A component holding one OSCORE secret (label ``o``) bound to ``salt``."""

    is_blocking = False

    def __init__(self, salt: bytes) -> None:
        from lwm2m.secure.hkdf import SoftwareOscoreSecret

        self.handle = SoftwareOscoreSecret("o", SECRET, salt)

    def oscore_secret(self, label: str) -> Any:
        from lwm2m.secure import KeyNotFound

        if label != "o":
            raise KeyNotFound(f"no OSCORE secret {label!r}")
        return self.handle


def test_a_component_reference_derives_inside_the_component() -> None:
    """/21/x/0 = sc-ref:o: the context comes from the component's handle and equals the one
    made from the secret itself; a changed Master Salt and an unknown label are refused by
    name, never showing the secret."""
    reference = material(master_secret=Secret(b"sc-ref:o"))
    made = oscore_context(reference, connection(), _Component(SALT))  # type: ignore[arg-type]
    direct = oscore_context(material(), connection())
    request, _ = made.protect_request(Message(Code.GET, uri_path="/x"))
    verify = SecurityContext(SoftwareMasterSecret(SECRET), OscoreParameters(b"Q", b"\xc1", SALT))
    inner, _, _ = unprotect_request(request, lambda kid, ctx: verify)
    assert inner.uri_path == ("x",)
    assert direct.sender_id == made.sender_id
    with pytest.raises(UnsupportedSecurityMode, match=r"Master Salt .* changed"):
        oscore_context(reference, connection(), _Component(b"other"))  # type: ignore[arg-type]
    unknown = material(master_secret=Secret(b"sc-ref:nope"))
    with pytest.raises(UnsupportedSecurityMode, match="no OSCORE secret 'nope'") as refused:
        oscore_context(unknown, connection(), _Component(SALT))  # type: ignore[arg-type]
    assert SECRET.hex() not in str(refused.value)


def test_no_object_that_carries_a_master_secret_shows_it() -> None:
    """Every object of the LwM2M layers that carries an OSCORE Master Secret (client
    configuration, /21 material, credentials, server entry, bootstrap instance, contexts,
    handles): neither repr nor str shows the secret in any common rendering."""
    from lwm2m.bootstrap.config import OscoreInstance
    from lwm2m.bootstrap.config import Secret as BootstrapSecret
    from lwm2m.client.config import OscoreConfig
    from lwm2m.secure.hkdf import SoftwareOscoreSecret

    made = config()
    objects: list[object] = [
        made,
        made.servers[0],
        made.servers[0].security,
        OscoreConfig(b"\xc1", b"Q", Secret(SECRET)),
        material(),
        Credentials(0, SecurityMode.NO_SEC, oscore=material()),
        SecurityInfo.oscore_context("ep", b"\xc1", b"Q", SECRET),
        OscoreInfo(b"\xc1", b"Q", SecretKey(SECRET)),
        OscoreInstance(b"\xc1", b"Q", BootstrapSecret(SECRET)),
        oscore_context(material(), connection()),
        SoftwareMasterSecret(SECRET),
        SoftwareOscoreSecret("o", SECRET, SALT),
    ]
    renderings = [SECRET.hex(), SECRET.hex().upper(), repr(SECRET), str(list(SECRET))[1:-1]]
    for obj in objects:
        for text in (repr(obj), str(obj)):
            for rendering in renderings:
                assert rendering not in text, f"{type(obj).__name__} shows the Master Secret"


def test_a_verified_request_never_rebinds_an_address_bound_to_another_context() -> None:
    """A peer sending from someone else's address must not take over what is protected for
    them: ``bind`` keeps an existing binding to another context unless ``replace`` (the LwM2M
    server, from the registration's identity)."""
    layer = OscoreLayer()
    client, server = pair()
    layer.bind(("v", 1), server)
    layer.bind(("v", 1), client)
    assert layer.context_for(("v", 1)) is server
    layer.bind(("v", 1), client, replace=True)
    assert layer.context_for(("v", 1)) is client


async def test_an_answer_that_cannot_be_protected_is_a_plain_5_00_not_a_crash() -> None:
    """The server's context has used its last sequence number (RFC 8613 §7.2.1) and must
    challenge with Echo, which needs one: the endpoint answers an unprotected 5.00 instead of
    raising out of its datagram callback; and a registration whose outer Observe was
    stripped (an on-path change) leaves no observer record behind."""
    from lwm2m.coap.numbers import OptionNumber
    from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest
    from lwm2m.oscore import MAX_SEQUENCE_NUMBER

    def resource(request: CoapRequest) -> Message:
        return Message(Code.CONTENT, b"v", observe=0 if request.message.observe == 0 else None)

    client, server = pair()
    exhausted = SecurityContext(
        SoftwareMasterSecret(SECRET),
        OscoreParameters(b"Q", b"\xc1"),
        sender_sequence_number=MAX_SEQUENCE_NUMBER + 1,
    )
    layer = OscoreLayer()
    layer.add_context(exhausted, fresh=True)
    async with (
        await CoapEndpoint.create(oscore=layer) as endpoint,
        await CoapEndpoint.create() as raw,
    ):
        endpoint.site.add("r", resource)
        request, _ = client.protect_request(Message(Code.GET, uri_path="/r"))
        answer = await asyncio.wait_for(
            raw.request(request, endpoint.local_address, _protected=True), 5
        )
        assert answer.code == Code.INTERNAL_SERVER_ERROR
        assert endpoint.stats.handler_errors == 1
        layer.add_context(server)  # a usable context from now on
        registration, _ = client.protect_request(Message(Code.GET, uri_path="/r", observe=0))
        registration.remove_option(OptionNumber.OBSERVE)  # the outer one
        answer = await asyncio.wait_for(
            raw.request(registration, endpoint.local_address, _protected=True), 5
        )
        assert answer.has_option(OptionNumber.OSCORE)
        assert endpoint.observations() == []
        assert layer.observers == {}


async def test_a_remade_context_behind_its_predecessor_jumps_ahead_once_refused() -> None:
    """A sender context made anew (a restart sooner than its clock-based start allows for)
    repeats Partial IVs the peer saw: the peer refuses with "Replay detected" (in the clear);
    the sender skips 2^16 numbers and asks again once, and is served."""
    from lwm2m.io.coap_endpoint import CoapEndpoint, CoapRequest

    def resource(request: CoapRequest) -> Message:
        return Message(Code.CONTENT, b"ok")

    client, server = pair()
    server_layer, client_layer = OscoreLayer(), OscoreLayer()
    server_layer.add_context(server)
    async with (
        await CoapEndpoint.create(oscore=server_layer) as peer,
        await CoapEndpoint.create(oscore=client_layer) as endpoint,
    ):
        peer.site.add("r", resource)
        client_layer.add_peer(peer.local_address, client)
        for _ in range(5):
            answer = await asyncio.wait_for(
                endpoint.request(Message(Code.GET, uri_path="/r"), peer.local_address), 5
            )
            assert answer.payload == b"ok"
        remade, _ = pair()  # the same keys, numbers from 0 again
        client_layer.add_peer(peer.local_address, remade)
        answer = await asyncio.wait_for(
            endpoint.request(Message(Code.GET, uri_path="/r"), peer.local_address), 5
        )
        assert answer.payload == b"ok"
        assert remade.sender_sequence_number > 1 << 16
