"""Bootstrap over DTLS-PSK end to end on loopback: the bootstrap server (its clients' PSKs from the
``bootstrap_security`` tables of its TOML file) provisions a PSK account, and the client then
registers with the DM server over DTLS-PSK; a Bootstrap-Request whose ``ep`` is not the PSK
identity's endpoint gets 4.00; the TOML additions are checked field by field."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lwm2m.bootstrap.config import ConfigError
from lwm2m.bootstrap.session import BootstrapFinished as ServerBootstrapFinished
from lwm2m.client import ClientConfig, parse_config
from lwm2m.client.events import BootstrapFailed, ClientEvent
from lwm2m.coap import Code, Message
from lwm2m.io.lwm2m_bootstrap import BootstrapServer, parse_bootstrap_document
from lwm2m.io.lwm2m_client import LwM2MClient
from lwm2m.io.lwm2m_server import LwM2MServer, PlainOrDtls, dtls_layer_from_store
from lwm2m.server.events import Registered
from lwm2m.server.security import PeerIdentity, SecurityInfo
from lwm2m.store import MemorySecurityStore

TIMEOUT = 10.0
EP = "urn:dev:ops:dtls-bs-1"


def bootstrap_toml(dm_port: int, bs_key: bytes, dm_key: bytes) -> str:
    return f"""
[endpoints."{EP}"]
delete = ["/"]

[endpoints."{EP}".bootstrap_security]
mode = "psk"
psk_key = "hex:{bs_key.hex()}"

[[endpoints."{EP}".security]]
uri = "coaps://127.0.0.1:{dm_port}"
mode = "psk"
psk_identity = "{EP}"
psk_key = "hex:{dm_key.hex()}"
short_server_id = 101

[[endpoints."{EP}".servers]]
short_server_id = 101
lifetime = 60

[endpoints."urn:dev:plain"]
"""


def client_config(endpoint: str, bs_uri: str, key: bytes, identity: str = EP) -> ClientConfig:
    return parse_config(
        {
            "endpoint": endpoint,
            "bind": "127.0.0.1:0",
            "device": {"manufacturer": "ACME", "model_number": "BS"},
            "bootstrap": {
                "uri": bs_uri,
                "security_mode": "psk",
                "psk_identity": identity,
                "psk_key_hex": key.hex(),
            },
        }
    )


async def test_bootstrap_and_register_over_dtls_psk(caplog: pytest.LogCaptureFixture) -> None:
    bs_key, dm_key = os.urandom(16), os.urandom(16)
    dm_store = MemorySecurityStore([SecurityInfo.psk(EP, EP, dm_key)])
    dm = LwM2MServer(
        security_store=dm_store, security=dtls_layer_from_store(dm_store), expiry_interval=None
    )
    await dm.start(("127.0.0.1", 0))
    loaded = parse_bootstrap_document(bootstrap_toml(dm.local_address[1], bs_key, dm_key))
    assert loaded.secured
    assert loaded.plain
    bs_store = loaded.security_store()
    layer = dtls_layer_from_store(bs_store, allow_plain=loaded.plain)
    assert isinstance(layer, PlainOrDtls)
    bs = BootstrapServer(
        configs=loaded.configs, security_store=bs_store, security=layer, allow_plain=False
    )
    await bs.start(("127.0.0.1", 0))
    bs_uri = f"coaps://127.0.0.1:{bs.local_address[1]}"
    client = LwM2MClient(client_config(EP, bs_uri, bs_key))
    try:
        with dm.subscribe() as dm_events, bs.subscribe() as bs_events:
            async with asyncio.timeout(TIMEOUT):
                await client.start()
                finished = await bs_events.wait_for(ServerBootstrapFinished)
                registered = await dm_events.wait_for(Registered)
        assert finished.endpoint == EP
        assert registered.registration.endpoint == EP
        assert registered.registration.identity == PeerIdentity.psk(EP)

        # the same identity with another ep: 4.00, logged without the key
        impostor = await _raw_bootstrap_request(bs_uri, "urn:dev:other", bs_key, caplog)
        assert impostor == Code.BAD_REQUEST
        assert "'urn:dev:other'" in caplog.text
        assert bs_key.hex() not in caplog.text
        assert dm_key.hex() not in caplog.text
    finally:
        await client.stop()
        await bs.stop()
        await dm.stop()


async def _raw_bootstrap_request(
    bs_uri: str, endpoint: str, key: bytes, caplog: pytest.LogCaptureFixture
) -> Code:
    """A client whose ep is not its PSK identity's endpoint: its Bootstrap-Request fails."""
    failures: asyncio.Queue[BootstrapFailed] = asyncio.Queue()

    def on_event(event: ClientEvent) -> None:
        if isinstance(event, BootstrapFailed):
            failures.put_nowait(event)

    client = LwM2MClient(client_config(endpoint, bs_uri, key), on_event=on_event)
    try:
        with caplog.at_level(logging.WARNING):
            async with asyncio.timeout(TIMEOUT):
                await client.start()
                failed = await failures.get()
    finally:
        await client.stop()
    assert "4.00" in failed.reason or "Bad Request" in failed.reason
    return Code.BAD_REQUEST


async def test_a_plain_request_for_a_secured_endpoint_is_refused() -> None:
    loaded = parse_bootstrap_document(bootstrap_toml(5684, bytes(16), bytes(16)))
    bs = BootstrapServer(
        configs=loaded.configs, security_store=loaded.security_store(), allow_plain=False
    )
    await bs.start(("127.0.0.1", 0))
    try:
        request = Message(Code.POST, uri_path="/bs", uri_query=[f"ep={EP}"])
        answer = await bs.handle_bootstrap_request(request, ("127.0.0.1", 9), None)
        assert answer.code == Code.BAD_REQUEST
        plain = Message(Code.POST, uri_path="/bs", uri_query=["ep=urn:dev:plain"])
        answer = await bs.handle_bootstrap_request(plain, ("127.0.0.1", 9), None)
        assert answer.code == Code.CHANGED
        unknown = Message(Code.POST, uri_path="/bs", uri_query=["ep=urn:dev:unknown"])
        answer = await bs.handle_bootstrap_request(unknown, ("127.0.0.1", 9), None)
        assert answer.code == Code.BAD_REQUEST
    finally:
        await bs.stop()


def test_bootstrap_security_tables() -> None:
    def entry(table: str) -> SecurityInfo:
        text = f'[endpoints."e"]\n[endpoints."e".bootstrap_security]\n{table}\n'
        return parse_bootstrap_document(text).security[0]

    assert entry('mode = "psk"\npsk_identity = "id"\npsk_key = "hex:0011"') == SecurityInfo.psk(
        "e", "id", bytes.fromhex("0011")
    )
    assert entry('mode = "psk"\npsk_key = "k"').identity == PeerIdentity.psk("e")
    assert entry('mode = "x509"').identity == SecurityInfo.x509("e").identity
    assert entry('mode = "x509"\ncertificate_name = "cn"') == SecurityInfo.x509("e", "cn")
    assert entry('mode = "nosec"') == SecurityInfo.nosec("e")
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    assert entry(f'mode = "rpk"\npublic_key = """{pem}"""') == SecurityInfo.rpk(
        "e", key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    no_table = parse_bootstrap_document('[endpoints."e"]\n')
    assert no_table.security == (SecurityInfo.nosec("e"),)
    assert not no_table.secured
    errors = {
        'mode = "psk"': "needs psk_key",
        'mode = "rpk"': "needs public_key",
        'mode = "rpk"\npublic_key = "base64:AAAA"': "not a public key",
        'mode = "oscore"': "mode",
        'mode = "psk"\npsk_key = "hex:zz"': "not valid hex",
        'mode = "psk"\npsk_key = ""': "must not be empty",
        'mode = "nosec"\npsk_key = "hex:00"': "not used in nosec mode",
        "typo = 1": "unknown key 'typo'",
        'mode = "x509"\ncertificate_name = 1': "certificate_name",
    }
    for table, message in errors.items():
        with pytest.raises(ConfigError, match=message) as info:
            entry(table)
        assert "0011" not in str(info.value)
    with pytest.raises(ConfigError, match="expected a table"):
        parse_bootstrap_document('[endpoints."e"]\nbootstrap_security = 1\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_bootstrap_document("[[")
    with pytest.raises(ConfigError, match="top-level"):
        parse_bootstrap_document("x = 1")
    with pytest.raises(ConfigError, match="expected a table"):
        parse_bootstrap_document("endpoints = 1")
    with pytest.raises(ConfigError, match="expected a table"):
        parse_bootstrap_document('[endpoints]\n"e" = 1')
    with pytest.raises(ConfigError, match="empty"):
        parse_bootstrap_document('[endpoints.""]\n')
    twice = parse_bootstrap_document(
        '[endpoints."a".bootstrap_security]\nmode = "psk"\npsk_identity = "same"\npsk_key = "k"\n'
        '[endpoints."b".bootstrap_security]\nmode = "psk"\npsk_identity = "same"\npsk_key = "k"\n'
    )
    with pytest.raises(ConfigError, match="already belongs"):
        twice.security_store()
