"""The private Redis server of the store tests: one per session (started only when a test asks
for it), emptied before every test that uses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from redis_server import RedisServer, redis_server_binary


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(redis_server_binary())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server's URL, on an empty database."""
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url
