"""``/api/security``: entries without secrets, write-only keys, 409 for a duplicate identity,
404 without a store -- and an entry added through the API lets a PSK client register."""

from __future__ import annotations

import logging

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.api import create_app
from lwm2m.api.schemas import SecurityBody
from lwm2m.io.lwm2m_server import dtls_layer_from_store
from lwm2m.server.security import SecurityInfo
from lwm2m.store.memory import MemorySecurityStore

from .conftest import Stack, start_server

KEY = bytes.fromhex("5ec2e7a1b0c4d9f8e6a7b3c2d1e0f9a8")
KEY_HEX = KEY.hex()


def http(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")  # type: ignore[arg-type]


def spki() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


async def test_security_crud_never_returns_the_key(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = MemorySecurityStore()
    texts: list[str] = []
    async with http(create_app(stack.server, security_store=store)) as api:
        assert (await api.get("/api/security")).json() == []
        answer = await api.put(
            "/api/security/dev1", json={"mode": "psk", "identity": "dev1-id", "key_hex": KEY_HEX}
        )
        texts.append(answer.text)
        assert answer.status_code == 201
        assert answer.json() == {
            "endpoint": "dev1",
            "mode": "psk",
            "psk_identity": "dev1-id",
            "rpk_sha256": None,
            "public_key_hex": None,
            "x509_name": None,
            "oscore_sender_id": None,
            "oscore_recipient_id": None,
        }
        stored = await store.get_by_endpoint("dev1")
        assert stored is not None
        assert stored.psk_key is not None
        assert stored.psk_key.reveal() == KEY
        # replacing answers 200
        answer = await api.put(
            "/api/security/dev1", json={"mode": "psk", "identity": "dev1-id", "key_hex": KEY_HEX}
        )
        texts.append(answer.text)
        assert answer.status_code == 200
        public_key = spki()
        answer = await api.put(
            "/api/security/dev2", json={"mode": "rpk", "public_key_hex": public_key.hex()}
        )
        texts.append(answer.text)
        assert answer.status_code == 201
        rpk = SecurityInfo.rpk("dev2", public_key)
        assert answer.json()["rpk_sha256"] == rpk.identity.value  # type: ignore[union-attr]
        assert answer.json()["public_key_hex"] == public_key.hex()
        answer = await api.put("/api/security/dev3", json={"mode": "x509", "name": "dev3.example"})
        assert answer.json()["x509_name"] == "dev3.example"
        answer = await api.put("/api/security/dev4", json={"mode": "nosec"})
        assert answer.json()["mode"] == "nosec"
        await store.put(SecurityInfo.oscore_context("dev5", b"\x01", b"\x02", KEY))
        listed = await api.get("/api/security")
        texts.append(listed.text)
        entries = {e["endpoint"]: e for e in listed.json()}
        assert list(entries) == ["dev1", "dev2", "dev3", "dev4", "dev5"]
        assert entries["dev1"]["psk_identity"] == "dev1-id"
        assert (entries["dev5"]["oscore_sender_id"], entries["dev5"]["oscore_recipient_id"]) == (
            "01",
            "02",
        )
        deleted = await api.delete("/api/security/dev1")
        texts.append(deleted.text)
        assert deleted.status_code == 200
        assert deleted.json()["psk_identity"] == "dev1-id"
        assert await store.get_by_endpoint("dev1") is None
        missing = await api.delete("/api/security/dev1")
        assert (missing.status_code, missing.json()) == (
            404,
            {"error": "no security entry for 'dev1'"},
        )
        openapi = await api.get("/openapi.json")
        texts.append(openapi.text)
    for text in [*texts, caplog.text]:
        assert KEY_HEX not in text.lower()
        assert "5ec2e7a1" not in text.lower()


async def test_duplicate_identity_is_409(stack: Stack) -> None:
    store = MemorySecurityStore([SecurityInfo.psk("dev1", "shared", KEY)])
    async with http(create_app(stack.server, security_store=store)) as api:
        answer = await api.put(
            "/api/security/dev2", json={"mode": "psk", "identity": "shared", "key_hex": "00ff"}
        )
    assert answer.status_code == 409
    assert answer.json() == {"error": "identity psk:shared already belongs to endpoint 'dev1'"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mode": "psk", "key_hex": KEY_HEX}, "mode psk needs identity"),
        ({"mode": "psk", "identity": "x"}, "mode psk needs key_hex"),
        ({"mode": "psk", "identity": "x", "key_hex": KEY_HEX + "zz"}, "key_hex is not hexadecimal"),
        ({"mode": "psk", "identity": "x", "key_hex": ""}, "a secret key must not be empty"),
        ({"mode": "rpk"}, "mode rpk needs public_key_hex"),
        ({"mode": "rpk", "public_key_hex": "0011"}, "not a DER SubjectPublicKeyInfo"),
        ({"mode": "rpk", "key_hex": KEY_HEX}, "key_hex does not apply to mode rpk"),
        ({"mode": "nosec", "identity": "x", "name": "y"}, "identity, name does not apply"),
        ({"mode": "oscore"}, "body.mode: Input should be"),
        ({"mode": "psk", "identity": "x", "key_hex": 12345}, "body.key_hex: Input should be"),
        ({"mode": "psk", "identity": "x", "key_hex": KEY_HEX, "pin": 1}, "body.pin: Extra"),
    ],
)
async def test_bad_entries_are_400_without_echoing_the_key(
    stack: Stack, body: dict[str, object], message: str
) -> None:
    async with http(create_app(stack.server, security_store=MemorySecurityStore())) as api:
        answer = await api.put("/api/security/dev1", json=body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert KEY_HEX not in answer.text
    assert "12345" not in answer.text


async def test_no_security_store_is_404(stack: Stack) -> None:
    async with http(create_app(stack.server)) as api:
        for method, url, body in [
            ("GET", "/api/security", None),
            ("PUT", "/api/security/dev1", {"mode": "nosec"}),
            ("DELETE", "/api/security/dev1", None),
        ]:
            answer = await api.request(method, url, json=body)
            assert (answer.status_code, answer.json()) == (
                404,
                {"error": "this server has no security store"},
            )


def test_the_key_is_masked_in_the_request_model() -> None:
    body = SecurityBody(mode="psk", identity="x", key_hex=KEY_HEX)  # type: ignore[arg-type]
    assert KEY_HEX not in repr(body)
    assert KEY_HEX not in str(body)


async def test_a_psk_entry_added_through_the_api_lets_the_client_register() -> None:
    store = MemorySecurityStore()
    server = await start_server(security_store=store, security=dtls_layer_from_store(store))
    stack = Stack(server)
    try:
        async with http(create_app(server, security_store=store)) as api:
            answer = await api.put(
                "/api/security/urn:dev:psk",
                json={"mode": "psk", "identity": "psk-id", "key_hex": KEY_HEX},
            )
            assert answer.status_code == 201
            host, port = server.local_address
            config = stack.config(
                "urn:dev:psk",
                account={
                    "uri": f"coaps://{host}:{port}",
                    "security_mode": "psk",
                    "psk_identity": "psk-id",
                    "psk_key_hex": KEY_HEX,
                },
            )
            await stack.start_client(config)
            client = (await api.get("/api/clients/urn:dev:psk")).json()
            assert client["identity"] == {"kind": "psk", "value": "psk-id"}
            assert KEY_HEX not in (await api.get("/api/clients")).text
    finally:
        await stack.close()
        await server.stop()
