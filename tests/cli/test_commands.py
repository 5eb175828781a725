"""``lwm2m server``, ``bootstrap-server`` and ``client`` as subprocesses against each other."""

from __future__ import annotations

from pathlib import Path as FsPath

from .conftest import Spawn

LISTENING = r"listening on coap://127\.0\.0\.1:(\d+)"


async def test_server_and_client_register_notify_and_deregister(spawn: Spawn) -> None:
    server = await spawn("server", ["server", "--bind", "127.0.0.1:0", "--observe", "/3/0/9"])
    port = (await server.expect(LISTENING)).group(1)
    client = await spawn(
        "client",
        [
            "client",
            "--endpoint",
            "cli-test-1",
            "--server",
            f"coap://127.0.0.1:{port}",
            "--lifetime",
            "120",
            "--bind",
            "127.0.0.1:0",
            "--tick",
            "0.2",
        ],
    )
    await client.expect(r"LwM2M client cli-test-1 -> coap://127\.0\.0\.1:\d+ \(server 101\)")
    registered = await server.expect(r"registered\s+cli-test-1 (/rd/\S+) lifetime=120s (.*)")
    location = registered.group(1)
    assert "/3/0 /4/0 /5/0 /6/0 /7/0" in registered.group(2)
    await client.expect(rf"registered\s+server=101 {location}$")
    await server.expect(r"observing\s+cli-test-1 /3/0/9 2\.05 Content")
    await server.expect(rf"notification\s+cli-test-1 {location} /3/0/9 = \d+")
    # Ctrl-C de-registers the client
    assert await client.interrupt() == 0, client.transcript
    assert any("deregistered   server=101" in line for line in client.lines), client.transcript
    assert client.lines[-1] == "client stopped"
    await server.expect(rf"deregistered\s+cli-test-1 {location}")
    assert await server.interrupt() == 0, server.transcript
    assert server.lines[-1] == "server stopped"


async def test_bootstrap_server_configures_the_client(spawn: Spawn, tmp_path: FsPath) -> None:
    server = await spawn("server", ["server", "--bind", "127.0.0.1:0"])
    port = (await server.expect(LISTENING)).group(1)
    config = tmp_path / "bootstrap.toml"
    config.write_text(
        f"""
[endpoints."cli-test-bs"]
[[endpoints."cli-test-bs".security]]
uri = "coap://127.0.0.1:{port}"
short_server_id = 7
[[endpoints."cli-test-bs".servers]]
short_server_id = 7
lifetime = 99
"""
    )
    bootstrap = await spawn(
        "bootstrap", ["bootstrap-server", "--config", str(config), "--bind", "127.0.0.1:0"]
    )
    bs_port = (await bootstrap.expect(LISTENING + r" \(1 endpoints: cli-test-bs\)")).group(1)
    client = await spawn(
        "client",
        [
            "client",
            "--endpoint",
            "cli-test-bs",
            "--bootstrap",
            f"coap://127.0.0.1:{bs_port}",
            "--bind",
            "127.0.0.1:0",
            "--tick",
            "0",
        ],
    )
    await bootstrap.expect(
        r"session\s+cli-test-bs 4 steps: delete /, write /0/1, write /1/0, finish"
    )
    await bootstrap.expect(r"step 1/4\s+cli-test-bs delete / -> 2\.02 Deleted")
    await bootstrap.expect(r"step 4/4\s+cli-test-bs finish -> 2\.04 Changed")
    await bootstrap.expect(r"finished\s+cli-test-bs")
    await client.expect(r"bootstrapped\s+source=server")
    await client.expect(r"registered\s+server=7 /rd/")
    await server.expect(r"registered\s+cli-test-bs /rd/\S+ lifetime=99s")
    assert await client.interrupt() == 0, client.transcript
    await server.expect(r"deregistered\s+cli-test-bs")
    assert await bootstrap.interrupt() == 0, bootstrap.transcript
    assert bootstrap.lines[-1] == "bootstrap server stopped"
    assert await server.interrupt() == 0


async def test_server_with_sqlite_store_keeps_registrations(spawn: Spawn, tmp_path: FsPath) -> None:
    store = f"sqlite:{tmp_path / 'registrations.db'}"
    server = await spawn("server", ["server", "--bind", "127.0.0.1:0", "--store", store])
    port = (await server.expect(LISTENING + rf" \(store: {store}\)")).group(1)
    client = await spawn(
        "client",
        [
            "client",
            "--endpoint",
            "cli-test-db",
            "--server",
            f"coap://127.0.0.1:{port}",
            "--queue-mode",
            "--bind",
            "127.0.0.1:0",
            "--tick",
            "0",
        ],
    )
    await client.expect(r"LwM2M client cli-test-db, queue mode")
    location = (await server.expect(r"registered\s+cli-test-db (/rd/\S+) .*queue-mode")).group(1)
    assert await server.interrupt() == 0
    # the same store on the same port: the registration is back
    again = await spawn("server again", ["server", "--bind", f"127.0.0.1:{port}", "--store", store])
    await again.expect(LISTENING + rf" \(store: {store}, 1 registrations restored\)")
    assert await client.interrupt() == 0
    await again.expect(rf"deregistered\s+cli-test-db {location}")
    assert await again.interrupt() == 0
