"""libcoap's ``coap-client-notls`` as a raw CoAP peer against the client's object tree.

The client registers with our server; the server stops and coap-client takes over its UDP port,
so the client answers it as its registered server. The payloads are decoded with our codecs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path as FsPath

import pytest

from lwm2m.codec import codec_for
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.model import ObjectInstance, Path, ResourceType, SingleResource

from .conftest import Stack, registry, require

BINARY = "coap-client-notls"


def coap_client() -> str:
    """The libcoap client; skips when missing (fails under CI=true)."""
    found = shutil.which(BINARY)
    require(found is not None, f"libcoap's {BINARY} (Debian libcoap3-bin)")
    assert found is not None
    return found


@pytest.mark.interop
@pytest.mark.parametrize(("accept", "cf"), [("11542", CF.TLV), ("110", CF.SENML_JSON)])
async def test_coap_client_reads_the_device(
    stack: Stack, tmp_path: FsPath, accept: str, cf: CF
) -> None:
    binary = coap_client()
    client = await stack.start_client(battery=64)
    host, port = stack.server.local_address
    await stack.server.stop()  # coap-client takes over the server's port
    client_port = client.local_address[1]
    output = tmp_path / "payload"
    process = await asyncio.create_subprocess_exec(
        binary,
        "-a",
        host,
        "-p",
        str(port),
        "-A",
        accept,
        "-B",
        "5",
        "-o",
        os.fspath(output),
        f"coap://127.0.0.1:{client_port}/3/0",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(10):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:  # pragma: no cover - only on a timeout
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode(errors="replace")
    node = codec_for(cf).decode(output.read_bytes(), Path(3, 0), registry())
    assert isinstance(node, ObjectInstance)
    assert node.resources[0] == SingleResource(0, ResourceType.STRING, "ACME")
    assert node.resources[9] == SingleResource(9, ResourceType.INTEGER, 64)
    await client.stop(grace=0.1)  # its server is gone: do not wait for the De-register


def test_missing_binary_skips_or_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        coap_client()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        coap_client()
