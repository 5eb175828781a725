"""Engine, registration and account paths not covered elsewhere: API misuse, Send targeting,
reprovisioning, Server-object changes seen by observations, De-register/Disable corners and the
account checks (LwM2M-TS-Core 1.1 §6.2, §6.4; spec-reference §1.1, §1.8)."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from lwm2m.client.accounts import Peer, read_accounts
from lwm2m.client.events import Deregistered, ServerDisabled, Stopped
from lwm2m.client.objects.security import SecurityObject
from lwm2m.client.objects.server import ServerObject
from lwm2m.client.registration import RegistrationState
from lwm2m.client.tree import ObjectTree
from lwm2m.coap.numbers import Code
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.errors import LocalProtocolError, NotFound
from lwm2m.model import ObjectInstance, Path
from lwm2m.operations.requests import Deregister, Register, Update
from lwm2m.operations.requests import Send as SendRequest

from .helpers import Harness, code, config, server
from .test_bootstrap import security_instance, server_instance


def two_servers() -> Harness:
    """Servers 101 and 102, both allowed to read /3/0 (ACL owned by 101)."""
    acl = {"object": 3, "instance": 0, "owner": 101, "rights": {"102": "R"}}
    h = Harness(config(server(101), server(102), acl=[acl]))
    h.register_all()
    return h


# -- API -------------------------------------------------------------------------------------------


def test_start_twice_is_refused_and_properties() -> None:
    h = Harness()
    h.start()
    with pytest.raises(LocalProtocolError, match="already started"):
        h.engine.start(h.now)
    assert h.engine.endpoint == "test-ep"
    assert h.engine.objects is h.tree


def test_start_after_stop_registers_again() -> None:
    h = Harness()
    h.register_all()
    h.engine.stop(h.now)
    (deregister,) = h.take(Deregister)
    h.respond(deregister, Code.DELETED)
    assert h.take_events(Stopped) == [Stopped()]
    h.start()
    h.advance(1)
    assert len(h.take(Register)) == 1


def test_send_to_one_server_only() -> None:
    h = two_servers()
    (request_id,) = h.engine.send([Path(3, 0, 0)], h.now, short_server_id=102)
    (request,) = h.take(SendRequest)
    assert request.request_id == request_id
    assert request.connection.short_server_id == 102


def test_send_of_unreadable_paths_only_is_refused() -> None:
    h = two_servers()
    with pytest.raises(LocalProtocolError, match="no registered server"):
        h.engine.send([Path(3, 7, 0), Path(0, 0, 0)], h.now)
    assert h.take(SendRequest) == []


def test_request_update_of_one_server() -> None:
    h = two_servers()
    h.engine.request_update(h.now, short_server_id=102)
    (update,) = h.take(Update)
    assert update.connection.short_server_id == 102


def test_trigger_update_of_an_unregistered_server_is_ignored() -> None:
    h = two_servers()
    h.engine.trigger_update(999, None)  # type: ignore[arg-type]
    h.advance(0)
    assert h.take(Update) == []


def test_reprovision_before_start_loads_accounts_but_registers_at_start() -> None:
    h = Harness(config(server(102)))

    def provision(tree: ObjectTree) -> None:
        tree.create(
            0,
            security_instance(0, "coap://127.0.0.1:5701", 101).resources.values(),
            0,
            bootstrap=True,
        )
        tree.create(1, server_instance(0, 101).resources.values(), 0, bootstrap=True)

    h.engine.reprovision(h.now, (555,), provision)
    assert [a.short_server_id for a in h.engine.accounts.values()] == [101]
    assert h.take(Register) == []
    assert h.engine.registrations == {}
    h.start()  # the factory source sees a configured /0 and passes
    (register,) = h.take(Register)
    assert register.connection.short_server_id == 101
    assert "lt=120" in register.message.uri_query


def test_reprovision_of_an_unknown_server_keeps_the_others() -> None:
    h = two_servers()
    h.engine.reprovision(h.now, (555,), lambda tree: None)
    assert set(h.engine.registrations) == {101, 102}
    assert all(r.registered for r in h.engine.registrations.values())


def test_observation_cancelled_by_an_unknown_peer_is_ignored() -> None:
    h = Harness()
    h.register_all()
    h.request(Code.GET, "/3/0/0", observe=0, token=b"t")
    h.engine.observation_cancelled(Peer(("10.9.9.9", 1)), b"t", h.now)
    assert len(list(h.engine.observations)) == 1
    h.engine.observation_cancelled(h.peer(101), b"t", h.now)
    assert list(h.engine.observations) == []


def test_default_min_period_written_by_the_server_applies_to_observations() -> None:
    h = Harness()
    h.register_all()
    assert code(h.request(Code.GET, "/3/0/13", observe=0, token=b"t")) == "2.05"
    (observation,) = h.engine.observations
    assert observation.attributes.pmin == 0
    assert code(h.request(Code.PUT, "/1/0/2", payload=b"30", cf=CF.TEXT)) == "2.04"
    assert observation.attributes.pmin == 30


def test_disable_of_a_server_without_registration_is_ignored() -> None:
    h = Harness()
    h.register_all()
    h.engine.disable_server(555)
    assert h.take(Deregister) == []
    assert h.engine.registrations[101].registered


def test_disable_while_waiting_to_register() -> None:
    h = Harness(config(server(101, initial_delay=100, disable_timeout=500)))
    h.start()
    assert h.engine.registrations[101].state is RegistrationState.WAITING
    h.engine.disable_server(101)
    h._drain()
    assert h.take_events(ServerDisabled) == [ServerDisabled(101, h.now + 500)]
    assert h.take(Deregister) == []
    h.advance(100)
    assert h.take(Register) == []  # disabled: the initial delay no longer registers
    h.advance(400)
    assert len(h.take(Register)) == 1


def test_stop_twice_while_deregistering_sends_one_deregister() -> None:
    h = Harness()
    h.register_all()
    h.engine.stop(h.now)
    h.engine.stop(h.now)
    (deregister,) = h.take(Deregister)
    assert h.take_events(Stopped) == []
    h.respond(deregister, Code.DELETED)
    assert h.take_events(Deregistered) == [Deregistered(101)]
    assert h.take_events(Stopped) == [Stopped()]


def test_stop_before_registering_stops_at_once() -> None:
    h = Harness(config(server(101, initial_delay=100)))
    h.start()
    h.engine.stop(h.now)
    h.engine.stop(h.now)
    assert h.take(Deregister) == []
    assert h.take_events(Stopped) == [Stopped(), Stopped()]
    assert h.engine.registrations[101].state is RegistrationState.DEREGISTERED
    h.advance(200)
    assert h.take(Register) == []


# -- accounts --------------------------------------------------------------------------------------


def test_accounts_without_a_server_object() -> None:
    security = SecurityObject()
    security.create(security_instance(0, "coap://127.0.0.1:5701", 101))
    accounts, problems = read_accounts(ObjectTree([security]))
    assert accounts == []
    assert problems == ["/0/0: no /1 instance for Short Server ID 101"]


class Unreadable(SecurityObject):
    def __init__(self, bad: Collection[int]) -> None:
        super().__init__()
        self.bad = set(bad)

    def read(self, instance_id: int, resource_ids: Collection[int] | None = None) -> ObjectInstance:
        if instance_id in self.bad:
            raise NotFound(f"/{self.definition.id}/{instance_id} vanished")
        return super().read(instance_id, resource_ids)


class UnreadableServers(ServerObject):
    def __init__(self, bad: Collection[int]) -> None:
        super().__init__()
        self.bad = set(bad)

    def read(self, instance_id: int, resource_ids: Collection[int] | None = None) -> ObjectInstance:
        if instance_id in self.bad:
            raise NotFound(f"/1/{instance_id} vanished")
        return super().read(instance_id, resource_ids)


def test_unreadable_instances_are_skipped() -> None:
    security = Unreadable({1})
    security.create(security_instance(0, "coap://127.0.0.1:5701", 101))
    security.create(security_instance(1, "coap://127.0.0.1:5702", 102))
    servers = UnreadableServers({1})
    servers.create(server_instance(0, 101))
    servers.create(server_instance(1, 103))
    accounts, problems = read_accounts(ObjectTree([security, servers]))
    assert [a.short_server_id for a in accounts] == [101]
    assert problems == []
