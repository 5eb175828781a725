"""How ``lwm2m client`` builds its configuration from a file and flags, and the demo device."""

from __future__ import annotations

from pathlib import Path as FsPath

import pytest

from lwm2m.cli.client import DEFAULT_SERVER, DemoDevice, build_client_config, default_endpoint

EXAMPLE = FsPath(__file__).resolve().parents[2] / "examples" / "client.toml"


def test_flags_only() -> None:
    config = build_client_config()
    assert config.endpoint == default_endpoint()
    (server,) = config.servers
    assert (server.uri, server.short_server_id, server.lifetime) == (DEFAULT_SERVER, 101, 300)
    assert server.mute_send is False  # the demo device may Send
    assert config.bootstrap is None
    assert config.device.manufacturer == "lwm2m for Python"
    config = build_client_config(
        endpoint="ep",
        server="coap://10.0.0.1:5683",
        lifetime=60,
        queue_mode=True,
        bind="127.0.0.1:0",
    )
    assert config.endpoint == "ep"
    assert config.servers[0].uri == "coap://10.0.0.1:5683"
    assert config.servers[0].lifetime == 60
    assert config.queue_mode
    assert config.bind == ("127.0.0.1", 0)
    config = build_client_config(bootstrap="coap://127.0.0.1:5783")
    assert config.servers == ()
    assert config.bootstrap is not None
    assert config.bootstrap.uri == "coap://127.0.0.1:5783"


def test_the_example_file_and_overrides() -> None:
    config = build_client_config(config_file=EXAMPLE)
    assert config.endpoint == "urn:dev:demo-nosec"
    assert config.servers[0].uri == "coap://127.0.0.1:5683"
    assert config.servers[0].default_pmin == 1
    assert config.device.manufacturer == "ACME"  # the file wins over the demo identity
    assert config.device.device_type == "demo"  # what the file leaves out comes from the demo
    config = build_client_config(config_file=EXAMPLE, lifetime=42, endpoint="other")
    assert config.servers[0].lifetime == 42
    assert config.endpoint == "other"
    config = build_client_config(config_file=EXAMPLE, bootstrap="coap://127.0.0.1:5783")
    assert config.servers == ()
    config = build_client_config(config_file=EXAMPLE, server="coap://127.0.0.1:1")
    assert [s.uri for s in config.servers] == ["coap://127.0.0.1:1"]


@pytest.mark.parametrize("start", [100, 20])
def test_the_demo_device_drains_and_recharges(start: int) -> None:
    device = DemoDevice(build_client_config(), wall_clock=lambda: 1_000_000.0)
    assert [h.definition.id for h in device.handlers] == [3, 4, 5, 6, 7]
    device.set_battery(start)
    device.tick()
    assert device.battery == (99 if start == 100 else 100)
    assert device.device.read(0, [13]).resources[13].value == 1_000_000  # type: ignore[union-attr]
