"""The JSON serialisation of stored records (never pickle) and the SQLite backend's own rules:
schema version, corrupt rows, closed stores."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path as FilePath

import pytest

from lwm2m.bootstrap.config import BootstrapConfig
from lwm2m.model import (
    MultipleResource,
    ObjectInstance,
    ObjectLink,
    ObjectNode,
    ResourceInstance,
    ResourceType,
    SingleResource,
)
from lwm2m.server.security import IdentityKind, PeerIdentity
from lwm2m.store import serde
from lwm2m.store.serde import (
    SerdeError,
    bootstrap_config_from_json,
    bootstrap_config_to_json,
    dumps,
    loads,
    node_from_json,
    node_to_json,
    observation_from_json,
    observation_to_json,
    registration_from_json,
    registration_to_json,
)
from lwm2m.store.sqlite import (
    SCHEMA_VERSION,
    SqliteBootstrapConfigStore,
    SqliteRegistrationStore,
    StoreError,
)

from .test_contract import bootstrap_config, observation, registration

NODES = [
    ObjectNode(
        3,
        [
            ObjectInstance(
                0,
                [
                    SingleResource(0, ResourceType.STRING, "ACME"),
                    SingleResource(9, ResourceType.INTEGER, -5),
                    SingleResource(13, ResourceType.TIME, 1_700_000_000),
                    MultipleResource.of(6, ResourceType.INTEGER, {0: 1, 3: 5}),
                ],
            )
        ],
    ),
    SingleResource(5, ResourceType.OPAQUE, b"\x00\xff"),
    SingleResource(1, ResourceType.FLOAT, 2.0),
    SingleResource(2, ResourceType.BOOLEAN, True),
    SingleResource(3, ResourceType.UNSIGNED_INTEGER, 2**64 - 1),
    SingleResource(4, ResourceType.OBJLNK, ObjectLink(3, 0)),
    SingleResource(6, ResourceType.CORELNK, "</3/0>"),
    SingleResource(7, ResourceType.NONE, None),
    MultipleResource.of(8, ResourceType.OPAQUE, {0: b"a", 1: b""}),
    ResourceInstance(2, ResourceType.OBJLNK, ObjectLink(65535, 65535)),
]


@pytest.mark.parametrize("node", NODES, ids=lambda n: type(n).__name__)
def test_nodes_round_trip_through_json(node: object) -> None:
    document = loads(dumps(node_to_json(node)))  # type: ignore[arg-type]
    assert node_from_json(document) == node


def test_records_round_trip_through_json() -> None:
    reg = registration(identity=PeerIdentity(IdentityKind.RPK, "ab"), queue=True)
    assert registration_from_json(loads(dumps(registration_to_json(reg)))) == reg
    for obs in (observation(b"\x01"), observation(b"\x02", composite=True)):
        assert observation_from_json(loads(dumps(observation_to_json(obs)))) == obs
    config = bootstrap_config()
    assert bootstrap_config_from_json(loads(dumps(bootstrap_config_to_json(config)))) == config
    assert bootstrap_config_from_json(bootstrap_config_to_json(BootstrapConfig())) == (
        BootstrapConfig()
    )


def test_documents_carry_the_schema_version() -> None:
    document = registration_to_json(registration())
    assert document["v"] == serde.SCHEMA_VERSION == 1
    document["v"] = 2
    with pytest.raises(SerdeError, match="unknown schema version 2"):
        registration_from_json(document)
    with pytest.raises(SerdeError, match="schema version None"):
        observation_from_json({})
    with pytest.raises(SerdeError):
        bootstrap_config_from_json({"v": 0})


@pytest.mark.parametrize(
    ("function", "document"),
    [
        (registration_from_json, {"v": 1}),
        (registration_from_json, {**registration_to_json(registration()), "links": "<bad"}),
        (registration_from_json, {**registration_to_json(registration()), "address": 5}),
        (observation_from_json, {**observation_to_json(observation(b"\x01")), "token": "zz"}),
        (observation_from_json, {**observation_to_json(observation(b"\x01")), "paths": ["/x"]}),
        (bootstrap_config_from_json, {"v": 1, "security": "no"}),
        (
            bootstrap_config_from_json,
            {
                **bootstrap_config_to_json(bootstrap_config()),
                "security": [
                    {**bootstrap_config_to_json(bootstrap_config())["security"][1], "mode": 9}
                ],
            },
        ),
        (
            bootstrap_config_from_json,
            {
                **bootstrap_config_to_json(bootstrap_config()),
                "security": [
                    {
                        **bootstrap_config_to_json(bootstrap_config())["security"][1],
                        "secret_key": "!!",
                    }
                ],
            },
        ),
    ],
)
def test_malformed_documents_are_serde_errors(function: object, document: object) -> None:
    with pytest.raises(SerdeError):
        function(document)  # type: ignore[operator]


@pytest.mark.parametrize(
    "document",
    [
        {"instance": 0, "resources": [{"instance": 1, "resources": []}]},
        {"resource": 1, "type": "Nope", "value": 1},
        {"resource": 1, "type": "Integer", "value": "x"},
        {"resource": 1, "type": "Opaque", "value": 5},
    ],
)
def test_malformed_nodes(document: dict[str, object]) -> None:
    with pytest.raises(SerdeError):
        node_from_json(document)


def test_loads_rejects_non_objects() -> None:
    with pytest.raises(SerdeError, match="not valid JSON"):
        loads("{")
    with pytest.raises(SerdeError, match="JSON object"):
        loads("[1]")
    with pytest.raises(SerdeError, match="not valid JSON"):
        loads(b"\xff")


def test_secrets_are_stored_but_never_shown() -> None:
    config = bootstrap_config()
    assert "000102030405" not in repr(config)
    document = bootstrap_config_to_json(config)
    assert document["security"][1]["secret_key"] == "AAECAwQFBgcICQoLDA0ODw=="


async def test_sqlite_schema_version_is_checked(tmp_path: FilePath) -> None:
    path = tmp_path / "s.sqlite"
    store = await SqliteRegistrationStore.open(path)
    await store.close()
    with sqlite3.connect(path) as connection:
        stored = connection.execute("SELECT value FROM meta").fetchone()
        assert stored == (str(SCHEMA_VERSION),)
        connection.execute("UPDATE meta SET value = '99'")
    with pytest.raises(StoreError, match="schema version 99"):
        await SqliteRegistrationStore.open(path)
    with pytest.raises(StoreError, match="schema version 99"):
        await SqliteBootstrapConfigStore.open(path)


async def test_sqlite_skips_corrupt_rows(
    tmp_path: FilePath, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.sqlite"
    store = await SqliteRegistrationStore.open(path)
    await store.add(registration())
    await store.add(registration("dev2", "r2", address=("h", 2)))
    await store.add_observation(observation(b"\x01"))
    await store.add_observation(observation(b"\x02", "r2"))
    await store.close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE registrations SET data = '{\"v\": 7}' WHERE id = 'r2'")
        connection.execute("UPDATE observations SET data = 'nope' WHERE token = x'01'")
    with caplog.at_level(logging.WARNING, logger="lwm2m.store.sqlite"):
        store = await SqliteRegistrationStore.open(path)
    try:
        assert [r.id for r in await store.registrations()] == ["r1"]
        assert await store.all_observations() == []
        assert "registration r2 skipped" in caplog.text
        assert "observation 01 skipped" in caplog.text
    finally:
        await store.close()


async def test_a_closed_sqlite_store_refuses_work(tmp_path: FilePath) -> None:
    store = await SqliteBootstrapConfigStore.open(tmp_path / "b.sqlite")
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.get("x")
