"""``--store`` and ``--security-store`` with a Redis URL: parsing, the password never shown, a
clear error when Redis is unreachable or redis-py is missing, and a server restarted on a
password-protected Redis restoring its registrations (the SQLite test's twin)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import click
import pytest

import lwm2m.store
from lwm2m.cli.client import run_client
from lwm2m.cli.server import (
    DtlsOptions,
    build_security,
    describe_store,
    load_registry,
    open_store,
    parse_psk,
    parse_store,
    run_server,
)
from redis_server import RedisServer, redis_server_binary

from .test_cli_inprocess import LISTENING, client_config, running  # noqa: F401

SECRET = "s3cret-redis-pw"


def test_parse_store_takes_redis_urls() -> None:
    for url in (
        "redis://127.0.0.1:6379/0",
        "rediss://redis.example:6380",
        "unix:///run/redis/redis.sock",
        f"redis://:{SECRET}@10.0.0.1:6379/2",
    ):
        assert parse_store(url) == url
    assert parse_store("sqlite:/tmp/x.db") == "/tmp/x.db"


@pytest.mark.parametrize(
    "bad",
    [
        "redis://",
        "redis://host:port",
        "unix://",
        "sqlite:redis://h:1",
        "redis:host",
        f"redis:/:{SECRET}@h",
    ],
)
def test_parse_store_refuses_other_forms_without_showing_a_password(bad: str) -> None:
    with pytest.raises(click.ClickException) as error:
        parse_store(bad, "--store")
    message = error.value.message
    assert message.startswith("--store: ")
    assert message.endswith("is not 'memory', 'sqlite:PATH' or a Redis URL (redis://HOST:PORT)")
    assert SECRET not in message


def test_describe_store_hides_the_password() -> None:
    assert describe_store(None) == "memory"
    assert describe_store("/tmp/r.db") == "sqlite:/tmp/r.db"
    assert describe_store("redis://h:1/0") == "redis://h:1/0"
    assert describe_store(f"redis://:{SECRET}@h:1/0") == "redis://:***@h:1/0"
    assert describe_store(f"redis://app:{SECRET}@h/3") == "redis://app:***@h/3"
    assert describe_store(f"unix://:{SECRET}@/run/r.sock") == "unix://:***@/run/r.sock"


async def test_an_unreachable_redis_is_a_one_line_error(tmp_path: Any) -> None:
    url = f"unix://:{SECRET}@{tmp_path}/nothing.sock"
    with pytest.raises(click.ClickException) as error:
        await open_store(url)
    message = error.value.message
    assert message.startswith(f"--store: cannot open unix://:***@{tmp_path}/nothing.sock: ")
    assert "cannot reach Redis" in message
    assert SECRET not in message
    with pytest.raises(click.ClickException) as error:
        await build_security(DtlsOptions(security_store=url))
    assert error.value.message.startswith("--security-store: cannot open unix://:***@")
    assert SECRET not in error.value.message


async def test_without_redis_py_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lwm2m.store.redis", None)  # the import fails
    monkeypatch.delattr(lwm2m.store, "redis", raising=False)
    with pytest.raises(click.ClickException) as error:
        await open_store("redis://127.0.0.1:1/0")
    assert error.value.message == (
        "--store: a Redis store needs redis-py: pip install 'lwm2m[redis]'"
    )


@pytest.fixture(scope="module")
def protected_redis() -> Iterator[RedisServer]:
    server = RedisServer(redis_server_binary(), "--requirepass", SECRET)
    try:
        yield server
    finally:
        server.stop()


async def test_redis_store_restores_registrations_and_hides_the_password(
    running: Any,  # noqa: F811
    protected_redis: RedisServer,
) -> None:
    with protected_redis.client() as client:
        client.flushall()
    url = f"unix://:{SECRET}@{protected_redis.socket}"
    shown = re.escape(f"unix://:***@{protected_redis.socket}")
    registry = load_registry(())
    first = running("server 1")
    first.start(
        run_server(
            ("127.0.0.1", 0),
            store_path=url,
            registry=registry,
            observe=(),
            console=first.screen.console,
            stop=first.stop,
        )
    )
    port = int((await first.screen.expect(LISTENING + rf" \(store: {shown}\)")).group(1))
    client = running("client")
    config = client_config("inproc-redis", server=f"coap://127.0.0.1:{port}")
    client.start(run_client(config, console=client.screen.console, tick=0, stop=client.stop))
    location = (await first.screen.expect(r"^registered +inproc-redis (/rd/\S+)")).group(1)
    await client.screen.expect(r"^registered +server=101")
    await first.finish()
    again = running("server 2")
    again.start(
        run_server(
            ("127.0.0.1", port),
            store_path=url,
            registry=registry,
            observe=(),
            console=again.screen.console,
            stop=again.stop,
        )
    )
    await again.screen.expect(LISTENING + rf" \(store: {shown}, 1 registrations restored\)")
    await client.finish()
    await again.screen.expect(rf"^deregistered +inproc-redis {location}$")
    await again.finish()
    for screen in (first.screen, again.screen, client.screen):
        assert SECRET not in screen.getvalue()


async def test_security_entries_kept_in_redis(protected_redis: RedisServer) -> None:
    with protected_redis.client() as client:
        client.flushall()
    url = f"unix://:{SECRET}@{protected_redis.socket}"
    key = "00112233445566778899aabbccddeeff"
    store, layer, _, described = await build_security(
        DtlsOptions(security_store=url, entries=[parse_psk(f"ep-redis:id-redis:{key}")])
    )
    await store.close()
    assert layer is not None
    # another server (or a restart) with no --psk finds the entry in Redis
    store, layer, _, described_again = await build_security(DtlsOptions(security_store=url))
    try:
        infos = await store.all()
        assert [(i.endpoint, i.mode) for i in infos] == [("ep-redis", "psk")]
        assert described_again == described
        assert key not in described_again
    finally:
        await store.close()
