"""The Secure Component end to end (issue #6): SCS-2 — a client with a component lists the Secure
Component object (/33000/0) in Register and the server keeps and shows its identification;
SCS-5 — an application object stored in the component is read, written, observed, discovered
and composite-read through the server API like any other (``soft:``, and ``pkcs11:`` on
SoftHSM2)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path as FsPath
from typing import Any

import pytest

from lwm2m.cli.printing import server_event_line
from lwm2m.client.objects import StoredObject
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.model import ObjectInstance, Path, ResourceType, SingleResource
from lwm2m.model.ddf import parse_ddf
from lwm2m.model.nodes import MultipleResource
from lwm2m.model.registry import ModelRegistry
from lwm2m.secure import SecureComponent, SecureInstanceStore, missing_modules, open_component
from lwm2m.secure.object import register_secure_component_object
from lwm2m.server.events import (
    ComponentIdentified,
    NotificationReceived,
    SecureComponentReader,
)

from .conftest import ENDPOINT, Stack, bounded, registry, require, start_server

PASSPHRASE_ENV = "LWM2M_E2E_SC_PASSPHRASE"
STR, INT = ResourceType.STRING, ResourceType.INTEGER

# A "sensitive configuration" object of the application, kept in the component (test-only id
# range of the OMNA registry, 42769-42800).
SENSITIVE_DDF = b"""<?xml version="1.0" encoding="UTF-8"?>
<LWM2M>
  <Object ObjectType="MODefinition">
    <Name>Sensitive Configuration</Name>
    <Description1>Application settings kept in the Secure Component.</Description1>
    <ObjectID>42770</ObjectID>
    <ObjectURN>urn:oma:lwm2m:x:42770</ObjectURN>
    <LWM2MVersion>1.1</LWM2MVersion>
    <ObjectVersion>1.0</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances>
    <Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="0"><Name>Endpoint</Name><Operations>RW</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory>
        <Type>String</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>Where the application reports.</Description></Item>
      <Item ID="1"><Name>Threshold</Name><Operations>RW</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>Integer</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>An alarm threshold.</Description></Item>
      <Item ID="2"><Name>Tags</Name><Operations>RW</Operations>
        <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>String</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>Labels.</Description></Item>
    </Resources>
  </Object>
</LWM2M>
"""
(SENSITIVE,) = parse_ddf(SENSITIVE_DDF, "sensitive.xml")
OID = SENSITIVE.id


def sc_registry() -> ModelRegistry:
    """The e2e registry plus the Secure Component object and the sensitive object."""
    model = registry()
    register_secure_component_object(model)
    model.add(SENSITIVE)
    return model


@pytest.fixture
async def sc_stack() -> AsyncIterator[tuple[Stack, SecureComponentReader]]:
    server = await start_server(registry=sc_registry())
    stack = Stack(server)
    reader = SecureComponentReader(server.read, server.events.publish)
    server.add_listener(reader)
    try:
        yield stack, reader
    finally:
        await stack.close()
        await server.stop()


@pytest.fixture
def soft_component(tmp_path: FsPath, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv(PASSPHRASE_ENV, "e2e passphrase")
    uri = f"soft:{tmp_path}/component.sc?passphrase-env={PASSPHRASE_ENV}"
    opened: list[SecureComponent] = []

    def open_it(create: bool = False) -> SecureComponent:
        component = open_component(uri, create=create, scrypt_log2_n=10)
        opened.append(component)
        return component

    yield open_it
    for component in opened:
        component.close()


@pytest.fixture
def pkcs11_component(tmp_path: FsPath) -> Iterator[Any]:
    """A fresh SoftHSM2 token (skips without SoftHSM2 / python-pkcs11; fails under CI=true)."""
    from secure.softhsm import SoftHsm, find_module, find_util

    require(find_module() is not None and find_util() is not None, "SoftHSM2 (Debian softhsm2)")
    require(not missing_modules()["pkcs11"], "python-pkcs11 (pip install 'lwm2m[pkcs11]')")
    hsm = SoftHsm.create(tmp_path / "softhsm", ("e2e-sc",))
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
    import pkcs11

    loaded = pkcs11._loaded.get(hsm.module)
    if loaded is not None:
        loaded.reinitialize()
    opened: list[SecureComponent] = []

    def open_it(create: bool = False) -> SecureComponent:
        component = open_component(hsm.uri("e2e-sc"))
        opened.append(component)
        return component

    try:
        yield open_it
    finally:
        for component in opened:
            component.close()
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


# -- SCS-2 ----------------------------------------------------------------------------------------


async def test_the_server_keeps_and_shows_the_component_identification(
    sc_stack: tuple[Stack, SecureComponentReader], soft_component: Any
) -> None:
    stack, reader = sc_stack
    component = soft_component(create=True)
    with stack.server.subscribe() as events:
        client = await stack.start_client(secure_component=component)
        event = await bounded(events.wait_for(ComponentIdentified))
    registration = await stack.server.registration(ENDPOINT)
    assert registration is not None
    assert "/33000/0" in [link.uri for link in registration.objects]
    assert event.registration.id == registration.id
    (found,) = reader.identities.get(registration.id)
    info = component.info()
    assert (found.component_type, found.secure_hardware, found.backend) == (0, False, "soft")
    assert found.identifiers == tuple(str(i) for i in info.identifiers)
    line = server_event_line(event)
    assert "sc-identified" in line
    assert "software (soft)" in line
    assert "software, not secure hardware" in line
    # the object is read-only on the client
    assert 33000 in client.objects
    with pytest.raises(Exception, match=r"4\.05"):
        await bounded(stack.server.write(ENDPOINT, "/33000/0/3", SingleResource(3, STR, "x")))


async def test_a_client_without_component_is_not_read(
    sc_stack: tuple[Stack, SecureComponentReader],
) -> None:
    stack, reader = sc_stack
    await stack.start_client()
    registration = await stack.server.registration(ENDPOINT)
    assert registration is not None
    assert reader.identities.get(registration.id) == ()
    assert len(reader.identities) == 0


# -- SCS-5 ----------------------------------------------------------------------------------------


async def check_sensitive_object(stack: Stack, open_it: Any) -> None:
    component = open_it(create=True)
    store = SecureInstanceStore(component)
    store.put(
        OID,
        ObjectInstance(
            0,
            [
                SingleResource(0, STR, "https://report.example"),
                SingleResource(1, INT, 10),
                MultipleResource.of(2, STR, {0: "a"}),
            ],
        ),
    )
    handler = StoredObject(SENSITIVE, store)
    await stack.start_client(objects=[handler], secure_component=component)
    server = stack.server
    registration = await server.registration(ENDPOINT)
    assert registration is not None
    assert f"/{OID}/0" in [link.uri for link in registration.objects]
    # read
    read = await bounded(server.read(ENDPOINT, f"/{OID}/0"))
    assert read.content is not None
    assert read.content.resources[0] == SingleResource(0, STR, "https://report.example")
    # discover
    discovered = await bounded(server.discover(ENDPOINT, f"/{OID}/0"))
    uris = [link.uri for link in discovered.links or ()]
    assert f"/{OID}/0/1" in uris
    assert f"/{OID}/0/2" in uris
    # observe, then a write by the server notifies
    handle = await bounded(server.observe(ENDPOINT, f"/{OID}/0/1"))
    assert handle.response is not None
    notified = asyncio.ensure_future(
        stack.events.wait_for(
            NotificationReceived,
            lambda e: e.response.content == SingleResource(1, INT, 25),
        )
    )
    written = await bounded(server.write(ENDPOINT, f"/{OID}/0/1", SingleResource(1, INT, 25)))
    assert written.dotted_code == "2.04"
    await bounded(notified)
    # composite read across the component's object and an ordinary one
    composite = await bounded(
        server.read_composite(
            ENDPOINT, [f"/{OID}/0/1", f"/{OID}/0/2", "/3/0/9"], content_format=CF.SENML_CBOR
        )
    )
    assert dict(composite.composite or {}) == {
        Path(OID, 0, 1): SingleResource(1, INT, 25),
        Path(OID, 0, 2): MultipleResource.of(2, STR, {0: "a"}),
        Path(3, 0, 9): SingleResource(9, INT, 100),
    }
    # the instance lives in the component: a reopened component holds the written value
    await stack.close()
    stack.clients.clear()
    again = SecureInstanceStore(open_it())
    stored = again.get(OID, 0)
    assert stored is not None
    assert stored.resources[1] == SingleResource(1, INT, 25)


async def test_an_application_object_in_a_soft_component(
    sc_stack: tuple[Stack, SecureComponentReader], soft_component: Any
) -> None:
    await check_sensitive_object(sc_stack[0], soft_component)


async def test_an_application_object_in_a_pkcs11_component(
    sc_stack: tuple[Stack, SecureComponentReader], pkcs11_component: Any
) -> None:
    await check_sensitive_object(sc_stack[0], pkcs11_component)
