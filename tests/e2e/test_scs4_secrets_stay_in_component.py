"""LwM2M-SCS-4 acceptance (issue #6, point 2): with a Secure Component, the secrets that a
bootstrap server writes into /0 become component-held keys at write time, never come back out,
and the DTLS handshakes use them through the credential seam.

The bootstrap server and the DM server run in a **subprocess** (this file run as a script,
``python THIS_FILE serve MODE ENDPOINT BS_KEY_HEX``): it generates the DM account's secret
itself — the PSK (mode 0), or for RPK (mode 1) the client's P-256 key pair and the server's — and
hands the test only ``mask`` and ``mask XOR secret``. So the pytest process, which runs the
client with its component, is the only process scanned, and the only Python objects in it that
could hold the secret are the client's.

Per mode (DTLS-PSK; DTLS-ECDSA with raw public keys, where bootstrap writes /0/x/3 the client's
public key, /0/x/4 the server's and /0/x/5 the client's private key):

- ``pkcs11:`` (SoftHSM2): the client bootstraps over DTLS-PSK, registers with the DM server over
  the written account, the handshake used the component's handle (``from_component``);
  then no object reachable from ``gc.get_objects()`` or a running frame holds the secret (raw,
  hex, base64, integer; the RPK key both as the written PKCS#8 DER and as its 32-byte scalar) —
  a control keeps a reference and the same scan finds it; the token's key object behind
  /0/1/5 is CKA_SENSITIVE and not CKA_EXTRACTABLE (read with python-pkcs11);
- ``soft:``: the secret is found only in objects reachable from the component (its key store);
- in both: a DM-server Read of /0, /0/1 and /0/1/5 gets 4.01 (the bootstrap server of this
  stack plans no Bootstrap-Read, so that variant is not exercised) and the stored /0/1/5 is a
  ``sc-ref:`` reference.

Missing SoftHSM2 or python-pkcs11 skips the pkcs11 cases (fails them under CI=true).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = 10.0
SSID = 101
TOKENS = ("psk", "rpk", "control")

# -- the servers' process ---------------------------------------------------------------------


def _bootstrap_toml(endpoint: str, bs_key_hex: str, security: str) -> str:
    return f"""
[endpoints."{endpoint}"]
delete = ["/"]

[endpoints."{endpoint}".bootstrap_security]
mode = "psk"
psk_key = "hex:{bs_key_hex}"

[[endpoints."{endpoint}".security]]
{security}
short_server_id = {SSID}

[[endpoints."{endpoint}".servers]]
short_server_id = {SSID}
lifetime = 60
"""


def _masked(secret: bytes) -> list[str]:
    mask = os.urandom(len(secret))
    return [mask.hex(), bytes(a ^ b for a, b in zip(mask, secret, strict=True)).hex()]


async def _serve(mode: str, endpoint: str, bs_key_hex: str) -> None:
    """Bootstrap server + DM server; one JSON line per milestone on stdout; stops at EOF."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from lwm2m.bootstrap.session import BootstrapFinished
    from lwm2m.dtls import SoftwareSigningKey
    from lwm2m.dtls.trust import spki_der
    from lwm2m.io.lwm2m_bootstrap import BootstrapServer, parse_bootstrap_document
    from lwm2m.io.lwm2m_server import LwM2MServer, dtls_layer_from_store
    from lwm2m.server.errors import RequestFailed
    from lwm2m.server.events import Registered
    from lwm2m.server.security import SecurityInfo
    from lwm2m.store import MemorySecurityStore

    def emit(**fields: Any) -> None:
        print(json.dumps(fields), flush=True)

    signing_key = None
    if mode == "psk":
        secret = os.urandom(16)
        secrets = [_masked(secret)]
        info = SecurityInfo.psk(endpoint, endpoint, secret)
        security = f'mode = "psk"\npsk_identity = "{endpoint}"\npsk_key = "hex:{secret.hex()}"'
    else:
        client_key = ec.generate_private_key(ec.SECP256R1())
        secret = client_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        scalar = client_key.private_numbers().private_value.to_bytes(32, "big")
        secrets = [_masked(secret), _masked(scalar)]
        signing_key = SoftwareSigningKey.generate()
        client_spki = spki_der(client_key.public_key())
        info = SecurityInfo.rpk(endpoint, client_spki)
        security = (
            f'mode = "rpk"\npublic_key_or_identity = "hex:{client_spki.hex()}"\n'
            f'server_public_key = "hex:{spki_der(signing_key.public_key()).hex()}"\n'
            f'secret_key = "hex:{secret.hex()}"'
        )
    dm_store = MemorySecurityStore([info])
    dm = LwM2MServer(
        security_store=dm_store,
        security=dtls_layer_from_store(dm_store, signing_key=signing_key),
        expiry_interval=None,
    )
    await dm.start(("127.0.0.1", 0))
    uri = f'uri = "coaps://127.0.0.1:{dm.local_address[1]}"'
    loaded = parse_bootstrap_document(_bootstrap_toml(endpoint, bs_key_hex, f"{uri}\n{security}"))
    bs_store = loaded.security_store()
    bs = BootstrapServer(
        configs=loaded.configs,
        security_store=bs_store,
        security=dtls_layer_from_store(bs_store),
        allow_plain=False,
    )
    await bs.start(("127.0.0.1", 0))
    del loaded, security, secret  # the servers keep what they need
    try:
        with dm.subscribe() as dm_events, bs.subscribe() as bs_events:
            emit(bs_port=bs.local_address[1], dm_port=dm.local_address[1], secrets=secrets)
            eof = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
            async with asyncio.timeout(3 * TIMEOUT):
                finished = await bs_events.wait_for(BootstrapFinished)
                emit(bootstrap_finished=finished.endpoint)
                registered = await dm_events.wait_for(Registered)
            identity = registered.registration.identity
            emit(
                registered=registered.registration.endpoint,
                identity=None if identity is None else str(identity.kind.value),
            )
            reads: dict[str, str] = {}
            for path in ("/3/0/0", "/0", "/0/1", "/0/1/5"):
                try:
                    async with asyncio.timeout(TIMEOUT):
                        response = await dm.read(endpoint, path)
                    code = response.code
                except RequestFailed as exc:
                    code = exc.code
                reads[path] = "-" if code is None else f"{code >> 5}.{code & 0x1F:02d}"
                emit(read=path, code=reads[path])
            emit(reads=reads)
            await eof
    finally:
        await bs.stop()
        await dm.stop()


# -- the client's process (pytest) --------------------------------------------------------------


class Servers:
    """The servers' subprocess: what it announced, and its next JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        self.process = process
        self.bs_uri = f"coaps://127.0.0.1:{ready['bs_port']}"
        self.secrets: list[tuple[bytes, bytes]] = [
            (bytes.fromhex(mask), bytes.fromhex(masked)) for mask, masked in ready["secrets"]
        ]
        self.seen: list[dict[str, Any]] = []

    async def line(self, key: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"the servers exited before {key!r}")
                data: dict[str, Any] = json.loads(raw)
                self.seen.append(data)
                if key in data:
                    return data


@pytest.fixture
async def servers_factory(tmp_path: Path) -> AsyncIterator[Any]:
    started: list[asyncio.subprocess.Process] = []

    async def start(mode: str, endpoint: str, bs_key: bytes) -> Servers:
        stderr = open(tmp_path / f"servers-{len(started)}.log", "wb")  # noqa: ASYNC230, SIM115
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "serve",
                mode,
                endpoint,
                bs_key.hex(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        finally:
            stderr.close()
        started.append(process)
        assert process.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            raw = await process.stdout.readline()
        if not raw:
            raise AssertionError((tmp_path / f"servers-{len(started) - 1}.log").read_text())
        return Servers(process, json.loads(raw))

    try:
        yield start
    finally:
        for process in started:
            assert process.stdin is not None
            process.stdin.close()  # EOF: the servers stop
            try:
                async with asyncio.timeout(TIMEOUT):
                    await process.communicate()
            except TimeoutError:
                process.kill()
                await process.wait()


def _require(condition: bool, what: str) -> None:
    from .conftest import require

    require(condition, what)


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A SoftHSM2 with a token per test (see tests/secure/softhsm.py)."""
    from lwm2m.secure import missing_modules
    from secure.softhsm import SoftHsm, find_module, find_util

    _require(find_module() is not None and find_util() is not None, "SoftHSM2 (Debian softhsm2)")
    _require(not missing_modules()["pkcs11"], "python-pkcs11")
    hsm = SoftHsm.create(tmp_path_factory.mktemp("softhsm-scs4"), TOKENS)
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
    import pkcs11

    loaded = pkcs11._loaded.get(hsm.module)  # loaded earlier in this process: re-read the config
    if loaded is not None:
        loaded.reinitialize()
    yield hsm
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous
    loaded = pkcs11._loaded.get(hsm.module)
    if loaded is not None:
        loaded.reinitialize()


def client_config(endpoint: str, bs_uri: str, bs_key: bytes) -> Any:
    """The factory configuration: only the bootstrap account (its PSK is not the secret under
    test; the DM account comes from the bootstrap server)."""
    from lwm2m.client import parse_config

    return parse_config(
        {
            "endpoint": endpoint,
            "bind": "127.0.0.1:0",
            "device": {"manufacturer": "ACME", "model_number": "SCS4"},
            "bootstrap": {
                "uri": bs_uri,
                "security_mode": "psk",
                "psk_identity": endpoint,
                "psk_key_hex": bs_key.hex(),
            },
        }
    )


async def bootstrap_and_register(
    servers: Servers, endpoint: str, bs_key: bytes, component: Any
) -> tuple[Any, dict[str, Any]]:
    """Start the client; return it (registered) and the DM server's report (its reads)."""
    from lwm2m.io.lwm2m_client import LwM2MClient

    client = LwM2MClient(
        client_config(endpoint, servers.bs_uri, bs_key), secure_component=component
    )
    await client.start()
    try:
        finished = await servers.line("bootstrap_finished")
        assert finished["bootstrap_finished"] == endpoint
        report = await servers.line("registered")
        report |= await servers.line("reads")
        async with asyncio.timeout(TIMEOUT):
            await client.wait_registered()
    except BaseException as exc:
        history = [repr(e)[:300] for e in client.history]
        await client.stop(grace=1.0)
        raise AssertionError(f"client events: {history}; servers: {servers.seen}") from exc
    return client, report


def check_account(client: Any, report: dict[str, Any], mode: str) -> str:
    """The DTLS session used the component's handle; /0/1/5 is a reference; DM reads of the
    Security object are refused. Returns the label of the credential behind /0/1/5."""
    from lwm2m.io.lwm2m_client import DtlsConnector
    from lwm2m.secure.interfaces import parse_secret_reference

    assert report["identity"] == mode
    assert report["reads"] == {"/3/0/0": "2.05", "/0": "4.01", "/0/1": "4.01", "/0/1/5": "4.01"}
    store = client.secure_store
    assert store is not None
    label = store.reference(0, 1, 5)
    assert label is not None
    assert label.startswith("lwm2m:/0/1/5#")
    instance = store.get(0, 1)
    assert instance is not None
    assert parse_secret_reference(instance.resources[5].value) == label
    assert instance.resources[2].value == (0 if mode == "psk" else 1)
    connector = client.connector
    assert isinstance(connector, DtlsConnector)
    used = [entry[2] for iid, entry in connector._accounts.items() if iid == 1]
    assert used, "the DM account was not opened through the DTLS connector"
    credentials = used[0].credentials
    handle = credentials.psk if mode == "psk" else credentials.signing_key
    assert type(handle).__module__ == type(client.secure_component).__module__
    return label


@pytest.mark.parametrize("mode", ["psk", "rpk"])
async def test_pkcs11_secret_never_in_client_memory(
    softhsm: Any, servers_factory: Any, mode: str
) -> None:
    import pkcs11

    from secure.memscan import scan_for

    endpoint = f"urn:dev:ops:scs4-pkcs11-{mode}"
    bs_key = os.urandom(16)
    servers = await servers_factory(mode, endpoint, bs_key)
    client, report = await bootstrap_and_register(servers, endpoint, bs_key, softhsm.uri(mode))
    try:
        label = check_account(client, report, mode)
        for mask, masked in servers.secrets:
            assert scan_for(mask, masked) == []

        # the token's key behind /0/1/5, read with python-pkcs11 directly
        session = client.secure_component._connection.session
        kind = pkcs11.ObjectClass.SECRET_KEY if mode == "psk" else pkcs11.ObjectClass.PRIVATE_KEY
        attr = pkcs11.Attribute
        (key,) = session.get_objects({attr.CLASS: kind, attr.LABEL: label})
        assert key[attr.SENSITIVE] is True
        assert key[attr.EXTRACTABLE] is False
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[attr.VALUE]
        if mode == "psk":
            assert key[attr.ID] == endpoint.encode()
        # every key the client holds (the bootstrap PSK too) is sensitive and not extractable
        keys = [
            *session.get_objects({attr.CLASS: pkcs11.ObjectClass.SECRET_KEY}),
            *session.get_objects({attr.CLASS: pkcs11.ObjectClass.PRIVATE_KEY}),
        ]
        assert len(keys) >= 2
        assert all(k[attr.SENSITIVE] and not k[attr.EXTRACTABLE] for k in keys)
        del key, keys, session
    finally:
        await client.stop(grace=1.0)
    for mask, masked in servers.secrets:
        assert scan_for(mask, masked) == []


def _scan_keeping(mask: bytes, masked: bytes, form: str) -> list[str]:
    """Scan while this frame keeps the secret in ``form`` (as a leaky client would)."""
    from secure.memscan import scan_for

    clear = bytes(a ^ b for a, b in zip(mask, masked, strict=True))
    held: Any = {
        "raw": [clear],
        "hex": {"k": clear.hex()},
        "base64": [base64.b64encode(clear).decode()],
        "int": [int.from_bytes(clear, "big")],
        "embedded": [bytearray(b"prefix" + clear + b"suffix")],
    }[form]
    del clear
    found = scan_for(mask, masked)
    del held
    return found


@pytest.mark.parametrize("form", ["raw", "hex", "base64", "int", "embedded"])
def test_control_the_scan_finds_a_kept_reference(softhsm: Any, form: str) -> None:
    """The scan is not blind: with the secret imported into a pkcs11 component *and* a copy
    kept in ``form``, the same scan as above finds the copy."""
    from lwm2m.secure import open_component

    secret = os.urandom(16)
    mask = os.urandom(16)
    masked = bytes(a ^ b for a, b in zip(mask, secret, strict=True))
    with open_component(softhsm.uri("control")) as component:
        component.import_psk(b"control", secret, label=f"control-{form}")
        del secret
        assert _scan_keeping(mask, masked, form)


@pytest.mark.parametrize("mode", ["psk", "rpk"])
async def test_soft_secret_only_in_the_key_store(
    tmp_path: Path, servers_factory: Any, mode: str
) -> None:
    from lwm2m.secure import open_component
    from secure.memscan import holders, reachable_data

    endpoint = f"urn:dev:ops:scs4-soft-{mode}"
    bs_key = os.urandom(16)
    servers = await servers_factory(mode, endpoint, bs_key)
    component = open_component(
        f"soft:{tmp_path}/client.sc", passphrase="p", create=True, scrypt_log2_n=10
    )
    try:
        client, report = await bootstrap_and_register(servers, endpoint, bs_key, component)
        try:
            check_account(client, report, mode)
            inside = reachable_data(component)
            for mask, masked in servers.secrets:
                found = holders(mask, masked)
                outside = [type(h).__name__ for h in found if id(h) not in inside]
                assert outside == []
                if mode == "psk":
                    assert found  # the soft key store does hold the PSK (premaster form)
                del found
        finally:
            await client.stop(grace=1.0)
    finally:
        component.close()


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "serve":
        sys.exit(f"usage: {sys.argv[0]} serve psk|rpk ENDPOINT BS_KEY_HEX")
    status = 0
    try:
        asyncio.run(_serve(*sys.argv[2:]))
    except BaseException:
        import traceback

        traceback.print_exc()
        status = 1
    # not waiting for the stdin reader thread when the servers failed
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
