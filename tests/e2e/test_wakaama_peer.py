"""Interop with Eclipse Wakaama (C, LwM2M 1.0): its example client against our server and our
bootstrap server.

``make test`` builds Wakaama's example ``lwm2mclient`` and ``lwm2mserver`` into
``build/wakaama`` (``scripts/build-wakaama.sh``: the Wakaama tree carried by an npm package,
checked against its SHA-256). The client is driven through its command line on stdin (``change
URI VALUE``, ``quit``) and read back from its output.

* **Our server manages Wakaama's client**: Register (a 1.0 client with a test object 31024),
  Read in TLV, text and of a multiple resource, a Read asking for SenML JSON that Wakaama
  answers in OMA JSON (11543, the JSON of 1.0), Write and read-back, Write-Attributes, Discover,
  Observe with a notification after the device changed the value, Execute, De-register.
* **Our bootstrap server provisions Wakaama's client**: Bootstrap-Request, Delete, the Security
  and Server instances, Finish; the client then registers with our server.
* **Wakaama's DTLS client** (its own tinydtls) registers with our server over DTLS with a PSK,
  and is provisioned over DTLS by our bootstrap server with the PSK it then registers with.
* **Wakaama's bootstrap server provisions our client**, which then registers with our server.

* **Wakaama's server manages our client**: it refuses every object link carrying attributes
  (``</3>;ver=1.1``, which LwM2M 1.0 §5.3.1 allows) with 4.00 before it looks at the version;
  our client registers again as 1.0 and then with plain links (docs/design.md, "LwM2M
  client"), and the server reads, writes, executes and discovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path as FsPath

import pytest

from lwm2m.bootstrap.config import BootstrapConfig, SecurityInstance, ServerInstance
from lwm2m.bootstrap.session import BootstrapFinished, BootstrapStarted, BootstrapStep
from lwm2m.client.events import Registered as ClientRegistered
from lwm2m.codec.content_format import ContentFormat
from lwm2m.codec.link import Attributes
from lwm2m.io.lwm2m_bootstrap import BootstrapServer, parse_bootstrap_document
from lwm2m.io.lwm2m_client import LwM2MClient
from lwm2m.io.lwm2m_server import LwM2MServer, dtls_layer_from_store
from lwm2m.model import MultipleResource, ObjectInstance, Path, ResourceType, SingleResource
from lwm2m.model.ddf import parse_ddf
from lwm2m.model.registry import default_registry
from lwm2m.server.errors import ErrorResponse
from lwm2m.server.events import Deregistered, NotificationReceived, Registered
from lwm2m.server.security import PeerIdentity, SecurityInfo
from lwm2m.store import MemorySecurityStore

from .conftest import (
    SSID,
    Stack,
    bounded,
    client_config,
    free_udp_port,
    require,
    running_bootstrap_server,
)

BUILD = FsPath(__file__).resolve().parents[2] / "build" / "wakaama"
ENDPOINT = "urn:dev:os:wakaama-interop"

pytestmark = pytest.mark.interop


def wakaama_client(name: str = "lwm2mclient") -> str:
    """A Wakaama example program (``lwm2mclient``, ``lwm2mclient-dtls`` with DTLS,
    ``bootstrap_server``); skips when it is not built (fails under CI=true)."""
    binary = BUILD / name
    require(binary.is_file(), "Wakaama's lwm2mclient (make test runs scripts/build-wakaama.sh)")
    require(shutil.which("stdbuf") is not None, "stdbuf (coreutils)")
    return os.fspath(binary)


class WakaamaClient:
    """The running client: ``command`` types a line at its prompt, ``output`` waits for a line
    of its output matching a pattern."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.put_nowait(line.decode("utf-8", "replace").strip())

    async def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def output(self, pattern: str) -> str:
        """The next output line matching ``pattern`` (earlier lines are skipped)."""
        async with asyncio.timeout(5):
            while True:
                line = await self.lines.get()
                if re.search(pattern, line):
                    return line


@contextlib.asynccontextmanager
async def wakaama(
    server: tuple[str, int], *, bootstrap: bool = False, psk: tuple[str, bytes] | None = None
) -> AsyncIterator[WakaamaClient]:
    host, port = server
    arguments = ["-4", "-h", host, "-p", str(port), "-n", ENDPOINT, "-l", str(free_udp_port())]
    if bootstrap:
        arguments.append("-b")
    if psk is not None:
        arguments += ["-i", psk[0], "-s", psk[1].hex()]
    process = await asyncio.create_subprocess_exec(
        "stdbuf",
        "-oL",  # its prints are line-buffered, not held until exit
        wakaama_client("lwm2mclient" if psk is None else "lwm2mclient-dtls"),
        *arguments,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    client = WakaamaClient(process)
    try:
        yield client
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        client._reader.cancel()


@contextlib.asynccontextmanager
async def wakaama_program(name: str, *arguments: str) -> AsyncIterator[WakaamaClient]:
    """One of Wakaama's example servers (``lwm2mserver``, ``bootstrap_server``), driven on its
    command line like the client."""
    process = await asyncio.create_subprocess_exec(
        "stdbuf",
        "-oL",
        wakaama_client(name),
        *arguments,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    program = WakaamaClient(process)
    try:
        yield program
    finally:
        process.kill()
        await process.wait()
        program._reader.cancel()


TEXT, TLV = ContentFormat.TEXT, ContentFormat.TLV
STRING, INTEGER = ResourceType.STRING, ResourceType.INTEGER


async def test_our_server_manages_the_wakaama_client(stack: Stack) -> None:
    server = stack.server
    async with wakaama(server.local_address) as client:
        registered = await bounded(stack.events.wait_for(Registered))
        registration = registered.registration
        assert registration.endpoint == ENDPOINT
        assert registration.version == "1.0"
        assert registration.binding == "U"
        assert registration.lifetime == 300
        uris = [link.uri for link in registration.links.links]
        assert {"/1/0", "/3/0", "/31024/10"} <= set(uris)

        # Read: the instance in the client's choice of format (TLV), one resource as text, a
        # multiple resource
        response = await server.read(ENDPOINT, "/3/0")
        assert response.content_format is TLV
        device = response.content
        assert isinstance(device, ObjectInstance)
        assert device.resources[0] == SingleResource(0, STRING, "Open Mobile Alliance")
        assert device.resources[9] == SingleResource(9, INTEGER, 100)
        response = await server.read(ENDPOINT, "/3/0/0", accept=TEXT)
        assert response.content_format is TEXT
        assert response.content == SingleResource(0, STRING, "Open Mobile Alliance")
        response = await server.read(ENDPOINT, "/3/0/7")
        assert response.content == MultipleResource.of(7, INTEGER, {0: 3800, 1: 5000})
        # asked for SenML JSON, Wakaama answers in the JSON of LwM2M 1.0: read all the same
        response = await server.read(ENDPOINT, "/3/0", accept=ContentFormat.SENML_JSON)
        assert response.content_format is ContentFormat.JSON
        assert response.content == device

        # Write, then read back (TLV for a 1.0 client)
        lifetime = SingleResource(1, INTEGER, 600)
        assert (await server.write(ENDPOINT, "/1/0/1", lifetime)).code == 0x44
        assert (await server.read(ENDPOINT, "/1/0/1")).content == lifetime
        offset = SingleResource(14, STRING, "+02:00")
        assert (await server.write(ENDPOINT, "/3/0/14", offset, content_format=TEXT)).code == 0x44
        assert (await server.read(ENDPOINT, "/3/0/14", accept=TEXT)).content == offset

        # Write-Attributes and Discover
        response = await server.write_attributes(ENDPOINT, "/3/0/9", Attributes(pmin=0, pmax=600))
        assert response.code == 0x44
        response = await server.discover(ENDPOINT, "/3/0")
        assert response.links is not None
        found = [link.uri for link in response.links]
        assert found[0] == "/3/0"
        assert {"/3/0/0", "/3/0/4", "/3/0/9", "/3/0/13"} <= set(found)

        # Observe the battery level; the device changes it: a notification
        observation = await server.observe(ENDPOINT, "/3/0/9")
        assert observation.response is not None
        assert observation.response.content == SingleResource(9, INTEGER, 100)
        await client.command("change /3/0/9 42")
        notification = await bounded(anext(observation))
        assert notification.content == SingleResource(9, INTEGER, 42)
        published = await bounded(stack.events.wait_for(NotificationReceived))
        assert published.response.content == notification.content

        # Execute Reboot: the device says so
        assert (await server.execute(ENDPOINT, "/3/0/4")).code == 0x44
        assert "REBOOT" in await client.output("REBOOT")

        # quit de-registers
        await client.command("quit")
        deregistered = await bounded(stack.events.wait_for(Deregistered))
        assert deregistered.registration.endpoint == ENDPOINT
        assert await server.registrations() == []


# Wakaama's test object 31024 (examples/client/test_object.c), as a DDF of ours: test data.
TEST_OBJECT_DDF = b"""<?xml version="1.0" encoding="UTF-8"?>
<LWM2M><Object ObjectType="MODefinition"><Name>Wakaama test object</Name>
<Description1>The example client's test object.</Description1><ObjectID>31024</ObjectID>
<ObjectURN>urn:oma:lwm2m:x:31024</ObjectURN><MultipleInstances>Multiple</MultipleInstances>
<Mandatory>Optional</Mandatory><Resources>
<Item ID="1"><Name>test</Name><Operations>RW</Operations><MultipleInstances>Single
</MultipleInstances><Mandatory>Mandatory</Mandatory><Type>Integer</Type><RangeEnumeration>0..255
</RangeEnumeration><Units></Units><Description>An integer.</Description></Item>
<Item ID="2"><Name>exec</Name><Operations>E</Operations><MultipleInstances>Single
</MultipleInstances><Mandatory>Mandatory</Mandatory><Type></Type><RangeEnumeration>
</RangeEnumeration><Units></Units><Description>Executable.</Description></Item>
<Item ID="3"><Name>dec</Name><Operations>RW</Operations><MultipleInstances>Single
</MultipleInstances><Mandatory>Mandatory</Mandatory><Type>Float</Type><RangeEnumeration>
</RangeEnumeration><Units></Units><Description>A float.</Description></Item>
</Resources></Object></LWM2M>"""


async def test_our_server_creates_and_deletes_wakaama_instances() -> None:
    """Create (TLV) and Delete of instances of Wakaama's test object, with the object's
    definition given to our server as a DDF."""
    model = default_registry().copy()
    (test_object,) = parse_ddf(TEST_OBJECT_DDF, "31024.xml")
    model.add(test_object)
    server = LwM2MServer(registry=model, expiry_interval=None)
    await server.start(("127.0.0.1", 0))
    try:
        with server.subscribe() as events:
            async with wakaama(server.local_address):
                await bounded(events.wait_for(Registered))
                new = ObjectInstance(
                    20,
                    [SingleResource(1, INTEGER, 42), SingleResource(3, ResourceType.FLOAT, 1.5)],
                )
                assert (await server.create(ENDPOINT, "/31024", [new])).code == 0x41
                assert (await server.read(ENDPOINT, "/31024/20")).content == new
                # the object's own range check: 256 is refused, the instance keeps its value
                too_big = SingleResource(1, INTEGER, 256)
                with pytest.raises(ErrorResponse) as refused:
                    await server.write(ENDPOINT, "/31024/20/1", too_big)
                assert refused.value.code == 0x80  # 4.00
                assert (await server.delete(ENDPOINT, "/31024/20")).code == 0x42
                with pytest.raises(ErrorResponse) as gone:
                    await server.read(ENDPOINT, "/31024/20")
                assert gone.value.code == 0x84  # 4.04
    finally:
        await server.stop()


async def test_our_bootstrap_server_provisions_the_wakaama_client(stack: Stack) -> None:
    server = stack.server
    host, port = server.local_address
    # /1/0 without 1.1-only resources (Mute Send): Wakaama's 1.0 Server object would answer 4.04
    # to it, and it cannot tell its versions (it answers Bootstrap-Discover with 4.00)
    config = BootstrapConfig(
        security=(SecurityInstance(1, f"coap://{host}:{port}", short_server_id=SSID),),
        servers=(ServerInstance(0, SSID, lifetime=300),),
    )
    async with running_bootstrap_server({ENDPOINT: config}) as bootstrap:
        with bootstrap.subscribe() as session:
            async with wakaama(bootstrap.local_address, bootstrap=True):
                started = await bounded(session.wait_for(BootstrapStarted))
                assert started.steps == ("delete /", "write /0/1", "write /1/0", "finish")
                steps = [await bounded(session.wait_for(BootstrapStep)) for _ in started.steps]
                assert [(s.operation, s.dotted_code) for s in steps] == [
                    ("delete", "2.02"),
                    ("write", "2.04"),
                    ("write", "2.04"),
                    ("finish", "2.04"),
                ]
                await bounded(session.wait_for(BootstrapFinished))
                registered = await bounded(stack.events.wait_for(Registered))
                assert registered.registration.endpoint == ENDPOINT
                assert registered.registration.lifetime == 300  # from the bootstrap config
                response = await server.read(ENDPOINT, "/3/0/0", accept=TEXT)
                assert response.content == SingleResource(0, STRING, "Open Mobile Alliance")


async def test_wakaama_psk_client_registers_over_dtls() -> None:
    """Wakaama's DTLS client (tinydtls of its tree, older than 0.8) with PSK against our DTLS
    server: the handshake, Register with the PSK identity bound to the endpoint, a Read over
    DTLS, De-register. Old tinydtls drops records whose version is not DTLS 1.2, the
    HelloVerifyRequest included, so before our server sent it as a 1.2 record this client never
    got past the cookie exchange."""
    key = bytes(range(16))
    store = MemorySecurityStore([SecurityInfo.psk(ENDPOINT, "wakaama-id", key)])
    server = LwM2MServer(
        security_store=store, security=dtls_layer_from_store(store), expiry_interval=None
    )
    await server.start(("127.0.0.1", 0))
    try:
        with server.subscribe() as events:
            async with wakaama(server.local_address, psk=("wakaama-id", key)) as client:
                registered = await bounded(events.wait_for(Registered))
                assert registered.registration.endpoint == ENDPOINT
                assert registered.registration.identity == PeerIdentity.psk("wakaama-id")
                response = await server.read(ENDPOINT, "/3/0/0", accept=TEXT)
                assert response.content == SingleResource(0, STRING, "Open Mobile Alliance")
                await client.command("quit")
                deregistered = await bounded(events.wait_for(Deregistered))
                assert deregistered.registration.endpoint == ENDPOINT
    finally:
        await server.stop()


async def test_wakaama_bootstrap_server_provisions_our_client(
    stack: Stack, tmp_path: FsPath
) -> None:
    """Wakaama's bootstrap server (its ini file names our server) provisions our client: it
    refuses the 1.1 ``pct`` parameter with 4.00, our client asks again as 1.0 defines the
    Bootstrap-Request, takes the Delete and the TLV writes of /0 and /1, and registers with our
    server at the lifetime the bootstrap server wrote."""
    host, port = stack.server.local_address
    ini = tmp_path / "bootstrap_server.ini"
    ini.write_text(
        f"[Server]\nid={SSID}\nuri=coap://{host}:{port}\nbootstrap=no\nlifetime=240\n"
        f"security=NoSec\n\n[Endpoint]\nName={ENDPOINT}\nDelete=/\nServer={SSID}\n"
    )
    bootstrap_port = free_udp_port()
    arguments = ("-4", "-l", str(bootstrap_port), "-f", os.fspath(ini))
    async with wakaama_program("bootstrap_server", *arguments) as output:
        assert "listening" in await output.output("listening on port")
        config = client_config(ENDPOINT, bootstrap={"uri": f"coap://127.0.0.1:{bootstrap_port}"})
        client = LwM2MClient(config)
        stack.clients.append(client)
        await bounded(client.start())
        registered = await bounded(stack.events.wait_for(Registered))
        assert registered.registration.endpoint == ENDPOINT
        assert registered.registration.lifetime == 240
        assert registered.registration.version == "1.1"
        assert "Received status 2.04" in await output.output(r"status 2\.04.* for URI / ")
        # Wakaama numbers the instances after the short server id
        response = await stack.server.read(ENDPOINT, f"/1/{SSID}/1")
        assert response.content == SingleResource(1, INTEGER, 240)


async def test_our_client_registers_with_the_wakaama_server() -> None:
    """Wakaama's server of this tree answers 4.00 to our 1.1 Register and to its 1.0 form,
    whose links carry ``</3>;ver=1.1`` (it accepts no attribute but the root's): our client
    falls back to plain object links and registers as 1.0. The server then reads from it (text
    and TLV), writes the lifetime (our client sends an Update with it), executes, discovers,
    and sees it de-register."""
    port = free_udp_port()
    async with wakaama_program("lwm2mserver", "-4", "-l", str(port)) as server:
        servers = [{"uri": f"coap://127.0.0.1:{port}", "short_server_id": SSID, "lifetime": 300}]
        client = LwM2MClient(client_config(ENDPOINT, servers))
        try:
            await bounded(client.start())
            registered = await bounded(client.wait_for(ClientRegistered))
            assert isinstance(registered, ClientRegistered)
            assert registered.lwm2m_version == "1.0"
            assert "New client #0 registered" in await server.output("New client")
            await server.command("list")
            assert '"urn:dev:os:wakaama-interop"' in await server.output("name:")
            assert "/3/0" in await server.output("objects:")
            await server.command("read 0 /3/0/0")
            assert "2.05" in await server.output(r"Client #0 /3/0/0 : ")
            # no Accept: our client answers a single resource in TLV, as Wakaama's client does
            assert "6 bytes" in await server.output("bytes received of type")
            assert "ACME" in await server.output("ACME")
            await server.command("read 0 /3/0")
            assert "2.05" in await server.output(r"Client #0 /3/0 : ")
            assert "tlv" in await server.output("bytes received of type")
            await server.command("write 0 /1/0/1 120")
            assert "2.04" in await server.output(r"Client #0 /1/0/1 : ")
            assert "updated" in await server.output("Client #0 updated")
            assert client.objects.value(Path(1, 0, 1)) == 120
            await server.command("exec 0 /3/0/12")  # Reset Error Code
            assert "2.04" in await server.output(r"Client #0 /3/0/12 : ")
            await server.command("disc 0 /3/0")
            assert "2.05" in await server.output(r"Client #0 /3/0 : ")
            assert "<" in await server.output("</3/0/")
        finally:
            await client.stop()
        assert "unregistered" in await server.output("Client #0 unregistered")


async def test_wakaama_dtls_client_is_provisioned_and_registers_over_dtls() -> None:
    """The whole secure path with an independent client: Wakaama's DTLS client bootstraps from
    our bootstrap server over DTLS-PSK (its bootstrap PSK), gets a Security instance with a
    second PSK for our DM server (an Opaque key in TLV), and registers with that server over
    DTLS under the new identity."""
    bs_key, dm_key = bytes(range(16)), bytes(range(16, 32))
    dm_store = MemorySecurityStore([SecurityInfo.psk(ENDPOINT, "wakaama-dm", dm_key)])
    dm = LwM2MServer(
        security_store=dm_store, security=dtls_layer_from_store(dm_store), expiry_interval=None
    )
    await dm.start(("127.0.0.1", 0))
    document = f"""
[endpoints."{ENDPOINT}"]
delete = ["/"]
[endpoints."{ENDPOINT}".bootstrap_security]
mode = "psk"
psk_key = "hex:{bs_key.hex()}"
[[endpoints."{ENDPOINT}".security]]
uri = "coaps://127.0.0.1:{dm.local_address[1]}"
mode = "psk"
psk_identity = "wakaama-dm"
psk_key = "hex:{dm_key.hex()}"
short_server_id = {SSID}
[[endpoints."{ENDPOINT}".servers]]
short_server_id = {SSID}
lifetime = 120
"""
    loaded = parse_bootstrap_document(document)
    bs_store = loaded.security_store()
    bs = BootstrapServer(
        configs=loaded.configs,
        security_store=bs_store,
        security=dtls_layer_from_store(bs_store),
        allow_plain=False,
    )
    await bs.start(("127.0.0.1", 0))
    try:
        with dm.subscribe() as dm_events, bs.subscribe() as bs_events:
            async with wakaama(bs.local_address, bootstrap=True, psk=(ENDPOINT, bs_key)):
                finished = await bounded(bs_events.wait_for(BootstrapFinished))
                assert finished.endpoint == ENDPOINT
                registered = await bounded(dm_events.wait_for(Registered))
                assert registered.registration.endpoint == ENDPOINT
                assert registered.registration.identity == PeerIdentity.psk("wakaama-dm")
                assert registered.registration.lifetime == 120
                response = await dm.read(ENDPOINT, "/3/0/0", accept=TEXT)
                assert response.content == SingleResource(0, STRING, "Open Mobile Alliance")
    finally:
        await bs.stop()
        await dm.stop()


def test_missing_build_skips_or_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FsPath, "is_file", lambda self: False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        wakaama_client()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        wakaama_client()
