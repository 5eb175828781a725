"""Spec-conformance campaign for the client engine, written from OMA LwM2M 1.1 Core rules (not
from the code): Device Management & Service Enablement, Information Reporting, attributes,
access control and Send.

Section numbers are those of OMA-TS-LightweightM2M_Core-V1_1_1 ("Core"); where a rule was
checked in the text of the 1.1 Core draft (omadm/omaoriginal, TS_Core, 2017) that numbering is
given too ("draft §x"). Rules used:

- Core §5.1.1/§5.1.2 (draft §5.1.1, §5.1.2 Table 4): attributes are per server; precedence
  resource (instance) > object instance > object, then the server account defaults /1/x/2
  and /1/x/3; pmin/pmax/epmin/epmax apply to *readable* resources, gt/lt/st to numerical
  readable resources and are assigned at resource level only; "lt < gt" and "lt + 2*st < gt";
  pmax "MUST be not smaller than" pmin; the Observe response is the initial notification and
  every notification restarts the pmin/pmax timers; st compares with the last notified value
  (">= st"); gt/lt fire when the value crosses the threshold, "with respect to pmin".
- Core §6.3.2 (draft §5.4.2) Discover: object level reports the object's attributes and the
  instances and resources; instance level reports the instance's and each resource's
  assigned attributes and ``dim``; resource level reports the resource's attributes *including
  those inherited from the object and the object instance*; only the requesting server's
  attributes appear.
- Core §6.3.4 (draft §5.4.4) Write-Attributes: a parameter without value unsets it.
- Core §6.3.1 Read / RFC 7252 §5.10.4: an Accept the client cannot produce is 4.06.
- Core §6.3.3 (draft §5.4.3) Write: replace vs partial update; an unsupported format is
  rejected (4.15).
- Core §6.3.5 (draft §5.4.5) Execute: an error for a resource instance; argument ABNF.
- Core §6.3.6 (draft §5.4.6, §7.3.2.4) Create: nothing is created if any error occurs; an
  instance id in conflict rejects the whole request with 4.00; MAX_ID 65535 is reserved
  (Core §7.2 identifiers table, draft Table 20).
- Core §6.3.7 (draft §5.4.7) Delete: the Device instance is never deleted; §7.3.2.4 Write,
  Execute and Delete on an object are 4.05.
- Core §7.3.2 (draft §7.1.2) Authorization: minimum rights R for Read/Observe/Write-Attributes,
  W, E, D, none for Discover; the right is checked *before* whether the resource supports the
  operation (§7.3.2.2); owner without its own ACL instance has full rights, the server's own ACL
  instance wins, else the default instance 0, else 4.01; Create needs the C bit in the ACL
  instance *for that server* of the /2 instance targeting the object (§7.3.2.1).
- Core §6.4 Information Reporting / Send, registry 1-1_1.xml /1/x/23 Mute Send (absent or true
  = Send disabled); Send is a 1.1 operation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from lwm2m.client import SimpleInstance, SimpleObject
from lwm2m.client.accounts import Peer
from lwm2m.coap.numbers import Code
from lwm2m.codec import composite_codec_for
from lwm2m.codec.content_format import ContentFormat as CF
from lwm2m.codec.link import Link, decode_links
from lwm2m.model import (
    ObjectInstance,
    ObjectNode,
    Path,
)
from lwm2m.model.registry import default_registry
from lwm2m.operations.requests import Register

from .helpers import Harness, code, config, decode, server
from .test_dm import TEST_OBJECT

# TEST_OBJECT (33000): 0 name RW string, 1 value R float, 2 setpoints RW multiple int,
# 3 reset E, 4 mode RW int (mandatory), 5 blob RW opaque.


executions: list[dict[int, str | None]] = []
"""Arguments of every Execute of /33000/0/3 (reset by :func:`make`)."""


def make(*servers: Mapping[str, Any], acl: Sequence[Mapping[str, Any]] | None = None) -> Harness:
    """A registered client with /33000/0 = {0: "zero", 1: 20.0, 2: [1, 2], 4: 1}; executing
    /33000/0/3 records its arguments in :data:`executions`."""
    executions.clear()
    values = {0: "zero", 1: 20.0, 2: [1, 2], 4: 1}
    first = SimpleInstance(values, on_execute={3: lambda args: executions.append(dict(args))})
    test = SimpleObject(TEST_OBJECT, {0: first}, factory=SimpleInstance)
    registry = default_registry()
    registry.add(TEST_OBJECT)
    extra: dict[str, Any] = {"acl": list(acl)} if acl else {}
    harness = Harness(config(*(servers or (server(101),)), **extra), [test], registry=registry)
    harness.register_all()
    return harness


def instance(h: Harness, iid: int = 0) -> SimpleInstance:
    return h.tree[33000].instance(iid)  # type: ignore[no-any-return]


def observe(h: Harness, path: str, token: bytes = b"tok", ssid: int = 101) -> None:
    response = h.request(Code.GET, path, observe=0, token=token, ssid=ssid)
    assert code(response) == "2.05"
    assert response.observe == 0


def times(
    h: Harness, changes: Mapping[float, float], until: float, *, rid: int = 1, ssid: int = 101
) -> list[float]:
    """Apply ``changes`` (offset -> value of /33000/0/<rid>) and return the offsets at which
    server ``ssid`` got a notification."""
    start = h.now
    h.take_notifications()
    first = len(h.timeline)
    for offset in sorted({*changes, until}):
        h.advance(start + offset - h.now)
        if offset in changes:
            instance(h).set(rid, changes[offset])
            h.advance(0)
    return [t - start for t, n in h.timeline[first:] if n.short_server_id == ssid]


def discover(h: Harness, path: str, ssid: int = 101) -> dict[str, Link]:
    response = h.request(Code.GET, path, accept=CF.LINK, ssid=ssid)
    assert code(response) == "2.05"
    return {link.uri: link for link in decode_links(response.payload)}


def write_attributes(h: Harness, path: str, *query: str, ssid: int = 101) -> str:
    return code(h.request(Code.PUT, path, query=list(query), ssid=ssid))


# ================================================================================================
# Write-Attributes: validity of attribute sets (Core §5.1.2, §6.3.4)
# ================================================================================================


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/33000/0/1", ["lt=10", "gt=10"]),  # "lt" < "gt" (equal is a violation)
        ("/33000/0/1", ["lt=10", "gt=20", "st=5"]),  # lt + 2*st < gt (equal is a violation)
        ("/33000/0/1", ["lt=10", "gt=20", "st=6"]),
        ("/33000/0/1", ["st=-1"]),  # a negative step is no step
        ("/33000/0/1", ["pmin=-1"]),  # pmin/pmax are integer seconds
        ("/33000/0/1", ["pmin=1.5"]),
        ("/33000/0/1", ["pmax=abc"]),
        ("/33000/0/1", ["pmin=20", "pmax=10"]),  # pmax "MUST be not smaller than" pmin
        ("/33000/0/1", ["epmin=20", "epmax=10"]),
        ("/33000", ["gt=5"]),  # gt/lt/st: assignation level Resource only
        ("/33000/0", ["st=1"]),
        ("/33000", ["lt=1"]),
        ("/33000/0/0", ["gt=5"]),  # gt on a String resource: numerical resources only
        ("/33000/0/2", ["dim=5"]),  # dim and ver: access mode R, not writable
        ("/33000", ["ver=2.0"]),
        ("/33000/0/1", ["edge=1"]),  # 1.2-only attribute, unknown to a 1.1 client
    ],
)
def test_invalid_attribute_set_is_4_00_and_changes_nothing(path: str, query: list[str]) -> None:
    """Core §5.1.2 Table <NOTIFICATION> attributes and the two MUST rules under it; §6.3.4."""
    h = make()
    assert write_attributes(h, path, "pmin=3") == "2.04"
    assert write_attributes(h, path, *query) == "4.00"
    links = discover(h, path)
    assert links[path].get("pmin") == "3"
    for name in ("gt", "lt", "st", "pmax", "epmin", "epmax", "edge"):
        assert not links[path].has(name)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/33000/0/1", ["lt=10", "gt=20", "st=4.9"]),  # 10 + 9.8 < 20
        ("/33000/0/1", ["lt=-5.5", "gt=1e2"]),
        ("/33000/0/1", ["pmin=10", "pmax=10"]),  # pmax not smaller than pmin: equal is fine
        ("/33000/0/2/1", ["gt=5", "pmin=1"]),  # numeric resource instance
        ("/33000", ["pmin=1", "pmax=60", "epmin=1", "epmax=30"]),  # period attrs: any level
        ("/33000/0", ["pmin=1", "pmax=60", "epmin=1", "epmax=30"]),
    ],
)
def test_valid_attribute_sets_are_accepted(path: str, query: list[str]) -> None:
    """Core §5.1.2: the same rules, on their valid side."""
    h = make()
    assert write_attributes(h, path, *query) == "2.04"


def test_rules_apply_to_the_merged_set_across_requests() -> None:
    """Core §5.1.2 rules hold for what is attached, not only for one request: lt=30 after
    gt=25 makes "lt < gt" false (4.00) and nothing changes."""
    h = make()
    assert write_attributes(h, "/33000/0/1", "gt=25", "lt=10") == "2.04"
    assert write_attributes(h, "/33000/0/1", "lt=30") == "4.00"
    assert write_attributes(h, "/33000/0/1", "st=7.5") == "4.00"  # 10 + 15 = 25, not < 25
    link = discover(h, "/33000/0/1")["/33000/0/1"]
    assert (link.get("gt"), link.get("lt"), link.has("st")) == ("25", "10", False)


def test_attribute_without_value_is_unset_and_the_others_stay() -> None:
    """Core §6.3.4 (draft Table 13): "When an Attribute is specified without value, it means
    this Attribute value is unset at the level specified in the command"."""
    h = make()
    assert write_attributes(h, "/33000/0/1", "pmin=5", "pmax=50", "gt=40") == "2.04"
    assert write_attributes(h, "/33000/0/1", "pmin", "gt") == "2.04"
    link = discover(h, "/33000/0/1")["/33000/0/1"]
    assert not link.has("pmin")
    assert not link.has("gt")
    assert link.get("pmax") == "50"
    # unsetting what is not set is harmless
    assert write_attributes(h, "/33000/0/1", "st") == "2.04"


@pytest.mark.parametrize("query", ["pmin=5", "epmax=5"])
def test_notification_attributes_refused_on_executable_resource(query: str) -> None:
    h = make()
    assert write_attributes(h, "/33000/0/3", query) == "4.05"


def test_write_attributes_on_missing_targets() -> None:
    """Core §6.3.4: the target must exist (4.04); the root is not a Write-Attributes target."""
    h = make()
    assert write_attributes(h, "/33000/7", "pmin=1") == "4.04"
    assert write_attributes(h, "/33000/0/2/9", "pmin=1") == "4.04"
    assert write_attributes(h, "/4444", "pmin=1") == "4.04"
    assert write_attributes(h, "/33000/0/9", "pmin=1") == "4.04"


# ================================================================================================
# Discover (Core §6.3.2)
# ================================================================================================


def _attach_example(h: Harness) -> None:
    """The attributes of the spec's Discover example: pmin on the object, pmax on the
    instance, gt/lt on the resource."""
    assert write_attributes(h, "/33000", "pmin=10") == "2.04"
    assert write_attributes(h, "/33000/0", "pmax=60") == "2.04"
    assert write_attributes(h, "/33000/0/1", "gt=50", "lt=42.2") == "2.04"
    assert write_attributes(h, "/33000/0/2", "pmax=30") == "2.04"


def test_discover_object_instance() -> None:
    """Core §6.3.2 (draft §5.4.2, 2nd bullet): the instance with its assigned attributes, then
    the instantiated resources with their assigned attributes and ``dim``."""
    h = make()
    _attach_example(h)
    links = discover(h, "/33000/0")
    assert next(iter(links)) == "/33000/0"
    assert links["/33000/0"].get("pmax") == "60"
    assert not links["/33000/0"].has("pmin")  # the object's pmin is not assigned here
    assert (links["/33000/0/1"].get("gt"), links["/33000/0/1"].get("lt")) == ("50", "42.2")
    assert links["/33000/0/2"].dim == 2
    assert links["/33000/0/2"].get("pmax") == "30"
    # instantiated resources are listed (3 is executable), absent optional ones are not (5)
    assert {"/33000/0/0", "/33000/0/1", "/33000/0/3", "/33000/0/4"} <= set(links)
    assert "/33000/0/5" not in links


def test_discover_object_lists_object_attributes_instances_and_resources() -> None:
    """Core §6.3.2 (draft §5.4.2, 1st bullet): "the list of Object Instances and the list of
    their respective instantiated Resources" plus the attributes assigned at object level."""
    h = make()
    _attach_example(h)
    h.tree[33000].add_instance(4, {4: 2})
    links = discover(h, "/33000")
    assert next(iter(links)) == "/33000"
    assert links["/33000"].get("pmin") == "10"
    assert {"/33000/0", "/33000/4", "/33000/0/1", "/33000/4/4"} <= set(links)
    assert "/33000/4/0" not in links


def test_discover_resource_reports_inherited_attributes() -> None:
    h = make()
    _attach_example(h)
    link = discover(h, "/33000/0/1")["/33000/0/1"]
    assert (link.get("gt"), link.get("lt")) == ("50", "42.2")
    assert link.get("pmin") == "10"  # inherited from /33000
    assert link.get("pmax") == "60"  # inherited from /33000/0


def test_discover_resource_own_attributes_and_dim() -> None:
    """Core §6.3.2 (3rd bullet): the resource's assigned attributes and ``dim`` for a
    multiple resource; a resource attribute hides the inherited value (precedence §5.1.1)."""
    h = make()
    _attach_example(h)
    links = discover(h, "/33000/0/2")
    assert links["/33000/0/2"].dim == 2
    assert links["/33000/0/2"].get("pmax") == "30"  # its own, not the instance's 60


def test_discover_shows_only_the_requesting_servers_attributes() -> None:
    """Core §6.3.2 (draft §5.4.2, 4th bullet) and §5.1.1 ("The value of an Attribute is
    LwM2M Server specific")."""
    h = make(
        server(101),
        server(102),
        acl=[{"object": 33000, "instance": 0, "owner": 101, "rights": {"102": "R"}}],
    )
    assert write_attributes(h, "/33000/0/1", "gt=50", "lt=42.2", ssid=101) == "2.04"
    assert write_attributes(h, "/33000/0/1", "pmax=300", "gt=80", ssid=102) == "2.04"
    one = discover(h, "/33000/0/1", ssid=101)["/33000/0/1"]
    two = discover(h, "/33000/0/1", ssid=102)["/33000/0/1"]
    assert (one.get("gt"), one.get("lt"), one.has("pmax")) == ("50", "42.2", False)
    assert (two.get("gt"), two.get("pmax"), two.has("lt")) == ("80", "300", False)


def test_discover_errors() -> None:
    """Core §6.3.2: missing targets are 4.04; /0 and /21 are not visible to a DM server
    (4.01, spec-reference §1.1)."""
    h = make()
    assert code(h.request(Code.GET, "/33000/9", accept=CF.LINK)) == "4.04"
    assert code(h.request(Code.GET, "/4444", accept=CF.LINK)) == "4.04"
    assert code(h.request(Code.GET, "/0", accept=CF.LINK)) == "4.01"
    assert code(h.request(Code.GET, "/21", accept=CF.LINK)) == "4.01"


# ================================================================================================
# Notification timing and attribute precedence (Core §5.1.2, §6.4)
# ================================================================================================


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ({}, 100),  # the server account's Default Maximum Period /1/x/3
        ({"/33000": 80}, 80),
        ({"/33000": 80, "/33000/0": 60}, 60),
        ({"/33000": 80, "/33000/0": 60, "/33000/0/2": 40}, 40),
        ({"/33000": 80, "/33000/0": 60, "/33000/0/2": 40, "/33000/0/2/0": 20}, 20),
        ({"/33000/0/2/0": 20, "/33000": 80}, 20),
        ({"/33000/0": 60, "/33000": 80}, 60),  # the order of the writes does not matter
        ({"/33000/0/2/1": 10, "/33000/0/2": 40}, 40),  # another resource instance's value
    ],
)
def test_pmax_precedence(levels: dict[str, int], expected: int) -> None:
    """Core §5.1.1 precedence rules (resource instance > resource > object instance > object)
    and §5.1.2 (absent pmax: the Default Maximum Period of the server account)."""
    h = make(server(101, default_pmax=100))
    for path, value in levels.items():
        assert write_attributes(h, path, f"pmax={value}") == "2.04"
    observe(h, "/33000/0/2/0")
    assert times(h, {}, until=expected * 2 + 1) == [expected, expected * 2]


def test_unsetting_a_level_falls_back_to_the_next_one() -> None:
    """Core §6.3.4 (unset) with §5.1.1 precedence: removing the resource's pmin makes the
    instance's apply; removing that makes the server default /1/x/2 apply."""
    h = make(server(101, default_pmin=5))
    assert write_attributes(h, "/33000/0", "pmin=30") == "2.04"
    assert write_attributes(h, "/33000/0/1", "pmin=50") == "2.04"
    observe(h, "/33000/0/1")
    assert times(h, {1: 21.0}, until=50) == [50]  # ends at the notification
    assert write_attributes(h, "/33000/0/1", "pmin") == "2.04"
    assert times(h, {1: 22.0}, until=30) == [30]
    assert write_attributes(h, "/33000/0", "pmin") == "2.04"
    assert times(h, {1: 23.0}, until=10) == [5]


def test_server_default_periods_written_at_runtime_apply() -> None:
    """Core §5.1.2: without attributes pmin/pmax are /1/x/2 and /1/x/3 of the observing
    server's account, including after the server changed them."""
    h = make(server(101, default_pmax=40))
    observe(h, "/33000/0/1")
    assert times(h, {}, until=81) == [40, 80]  # counted from the Observe response
    assert code(h.request(Code.PUT, "/1/0/3", payload=b"25", cf=CF.TEXT)) == "2.04"
    # the last notification was 1 s ago: the next one falls 25 s after it
    assert times(h, {}, until=50) == [24, 49]
    h = make(server(101))
    observe(h, "/33000/0/1")
    assert code(h.request(Code.PUT, "/1/0/2", payload=b"10", cf=CF.TEXT)) == "2.04"
    assert times(h, {1: 30.0, 3: 31.0}, until=20) == [10]


def test_initial_response_starts_the_periods_and_pmin_defers() -> None:
    """Core §5.1.2 (draft Table 4 notes): the Observe response is the initial notification;
    each notification restarts pmin and pmax; a change during pmin is sent when it expires,
    and several changes merge into one notification carrying the last value."""
    h = make()
    assert write_attributes(h, "/33000/0/1", "pmin=10", "pmax=25") == "2.04"
    observe(h, "/33000/0/1")
    seen = times(h, {2: 21.0, 4: 22.0, 17: 23.0}, until=60)
    assert seen == [10, 20, 45]
    payloads = [n.message.payload for _, n in h.timeline[-3:]]
    assert payloads == [b"22.0", b"23.0", b"23.0"]


def test_pmin_equal_to_pmax_gives_periodic_notifications() -> None:
    """Core §5.1.2: pmax equal to pmin is allowed ("not smaller than") and is then a period."""
    h = make()
    assert write_attributes(h, "/33000/0/1", "pmin=10", "pmax=10") == "2.04"
    observe(h, "/33000/0/1")
    assert times(h, {3: 30.0}, until=35) == [10, 20, 30]


@pytest.mark.parametrize(
    ("query", "changes", "expected"),
    [
        # gt: a notification each time the value crosses it, both ways; not when it stays
        (["gt=50"], {1: 45, 2: 55, 3: 60, 4: 45, 5: 40}, [2, 4]),
        # lt likewise
        (["lt=10"], {1: 15, 2: 5, 3: 8, 4: 12, 5: 30}, [2, 4]),
        # st: variation since the *last notification* >= st (accumulates; equality counts)
        (["st=5"], {1: 22, 2: 24, 3: 25, 4: 27, 5: 30}, [3, 5]),
        (["st=5"], {1: 16, 2: 15}, [2]),
        # combined: any of the conditions
        (["gt=50", "lt=10", "st=15"], {1: 30, 2: 45, 3: 55, 4: 52, 5: 9}, [2, 3, 5]),
    ],
)
def test_change_value_conditions(
    query: list[str], changes: dict[float, float], expected: list[float]
) -> None:
    """Core §5.1.2 gt/lt/st notes (draft Table 4)."""
    h = make()
    assert write_attributes(h, "/33000/0/1", *query) == "2.04"
    observe(h, "/33000/0/1")
    assert times(h, changes, until=10) == expected


def test_crossing_is_reported_with_respect_to_pmin() -> None:
    """Core §5.1.2: gt fires "with respect to pmin"; the notification carries the current
    value when pmin expires (a crossing back is still a change worth notifying)."""
    h = make()
    assert write_attributes(h, "/33000/0/1", "gt=50", "pmin=10") == "2.04"
    observe(h, "/33000/0/1")
    assert times(h, {1: 60, 2: 40}, until=30) == [10]
    assert h.timeline[-1][1].message.payload == b"40.0"


def test_pmax_applies_even_with_change_conditions() -> None:
    """Core §5.1.2: "When this Maximum Period expires after the last notification, a new
    notification MUST be sent" whatever gt/lt/st say."""
    h = make()
    assert write_attributes(h, "/33000/0/1", "gt=50", "pmax=20") == "2.04"
    observe(h, "/33000/0/1")
    assert times(h, {5: 30}, until=41) == [20, 40]


def test_resource_instance_observation_uses_resource_instance_attributes() -> None:
    """Core §5.1.1 (1.1 adds the resource-instance level) and §6.4.1 Observe on /o/i/r/ri:
    gt on the resource instance governs it; a change of another instance does not notify."""
    h = make()
    assert write_attributes(h, "/33000/0/2/0", "gt=10") == "2.04"
    observe(h, "/33000/0/2/0")
    inst = instance(h)
    h.take_notifications()
    inst.set(2, [5, 2])  # instance 0: 1 -> 5, below gt: no crossing
    h.advance(1)
    assert h.take_notifications() == []
    inst.set(2, [15, 2])  # crosses gt
    h.advance(1)
    (notification,) = h.take_notifications()
    assert notification.message.payload == b"15"


def test_attributes_of_one_server_do_not_govern_another_servers_observation() -> None:
    """Core §5.1.1: attribute values are LwM2M Server specific."""
    h = make(
        server(101),
        server(102),
        acl=[{"object": 33000, "instance": 0, "owner": 101, "rights": {"102": "R"}}],
    )
    assert write_attributes(h, "/33000/0/1", "pmin=50", ssid=101) == "2.04"
    observe(h, "/33000/0/1", token=b"a", ssid=101)
    observe(h, "/33000/0/1", token=b"b", ssid=102)
    start = h.now
    instance(h).set(1, 33.0)
    h.advance(60)
    first = {}
    for t, n in h.timeline:
        first.setdefault(n.short_server_id, t - start)
    assert first == {101: 50, 102: 0}


def test_server_defaults_are_per_account() -> None:
    """Core §5.1.2: the defaults are those of the server account of the observing server."""
    h = make(
        server(101, default_pmin=20),
        server(102, default_pmin=5),
        acl=[{"object": 33000, "instance": 0, "owner": 101, "rights": {"102": "R"}}],
    )
    observe(h, "/33000/0/1", token=b"a", ssid=101)
    observe(h, "/33000/0/1", token=b"b", ssid=102)
    start = h.now
    instance(h).set(1, 44.0)
    h.advance(30)
    got = {n.short_server_id: t - start for t, n in h.timeline}
    assert got == {101: 20, 102: 5}


def test_observe_object_instance_reports_readable_resources_on_any_change() -> None:
    """Core §6.4.1/§6.4.2 with §7.3.2.3: observing an instance notifies on a change of any of
    its resources and carries every readable resource (not the executable one)."""
    h = make()
    response = h.request(Code.GET, "/33000/0", observe=0, token=b"i", accept=CF.SENML_JSON)
    assert code(response) == "2.05"
    h.take_notifications()
    instance(h).set(0, "renamed")
    h.advance(0)
    (notification,) = h.take_notifications()
    node = decode(notification.message, "/33000/0")
    assert isinstance(node, ObjectInstance)
    assert node.resources[0].value == "renamed"  # type: ignore[union-attr]
    assert 3 not in node.resources


def test_observe_object_reports_all_instances() -> None:
    """Core §6.4.1 (draft §5.5.1): an Observe of an object reports all its instances."""
    h = make()
    h.tree[33000].add_instance(3, {4: 3, 0: "three"})
    observe(h, "/33000", token=b"o")
    h.take_notifications()
    instance(h, 3).set(0, "changed")
    h.advance(0)
    (notification,) = h.take_notifications()
    node = decode(notification.message, "/33000")
    assert isinstance(node, ObjectNode)
    assert sorted(node.instances) == [0, 3]


def test_observe_targets_that_cannot_be_read() -> None:
    """Core §6.4.1: Observe needs a readable target (4.05 on an executable resource, 4.04 on
    a missing one, 4.01 on /0 and /21); no observation is created."""
    h = make()
    assert code(h.request(Code.GET, "/33000/0/3", observe=0, token=b"x")) == "4.05"
    assert code(h.request(Code.GET, "/33000/0/5", observe=0, token=b"x")) == "4.04"
    assert code(h.request(Code.GET, "/0/0", observe=0, token=b"x")) == "4.01"
    assert code(h.request(Code.GET, "/21", observe=0, token=b"x")) == "4.01"
    assert len(h.engine.observations) == 0


def test_cancel_observation_by_token_leaves_other_observations() -> None:
    """Core §6.4.3 Cancel Observation (RFC 7641 §3.6: GET with Observe=1 and the token of the
    observation): the other observation of the same path keeps notifying."""
    h = make()
    observe(h, "/33000/0/1", token=b"a")
    observe(h, "/33000/0/1", token=b"b")
    response = h.request(Code.GET, "/33000/0/1", observe=1, token=b"a")
    assert code(response) == "2.05"
    assert response.observe is None
    h.take_notifications()
    instance(h).set(1, 77.0)
    h.advance(0)
    assert [n.token for n in h.take_notifications()] == [b"b"]


def test_reset_to_a_notification_cancels_it() -> None:
    """Core §6.4.3 / spec-reference §1.1: a RST in reply to a notification cancels."""
    h = make()
    observe(h, "/33000/0/1", token=b"r")
    h.engine.observation_cancelled(Peer(("127.0.0.1", 5701)), b"r", h.now)
    instance(h).set(1, 1.0)
    h.advance(5)
    assert h.take_notifications() == []


def test_observe_composite_uses_server_default_pmin_and_cancels() -> None:
    """Core §6.4 Observe-Composite (FETCH + Observe=0) and Cancel (Observe=1, same token):
    notifies on a change of any of its paths, no earlier than the server's default pmin."""
    h = make(server(101, default_pmin=10))
    codec = composite_codec_for(CF.SENML_JSON)
    body = codec.encode_paths([Path(33000, 0, 1), Path(3, 0, 0)])
    response = h.request(Code.FETCH, "", payload=body, cf=CF.SENML_JSON, observe=0, token=b"c")
    assert (code(response), response.observe) == ("2.05", 0)
    assert times(h, {1: 90.0}, until=12) == [10]
    response = h.request(Code.FETCH, "", payload=body, cf=CF.SENML_JSON, observe=1, token=b"c")
    assert code(response) == "2.05"
    assert times(h, {1: 91.0}, until=30) == []


def test_requests_before_the_registration_ack_are_served_on_purpose() -> None:
    """A deliberate deviation (docs/design.md, "LwM2M client"): the 2017 Core draft (§5.4,
    §5.5) says the client MUST ignore a server's DM and Information Reporting requests until
    the Registration acknowledgement arrived. A server only sends them after its 2.01, so one
    that overtakes the 2.01 (reordering, or the 2.01 lost) comes from a server that holds the
    registration: serving it spares the server a timeout, and the Observe belongs to the new
    registration (the client cleared its observations when it sent the Register)."""
    h = Harness(config(server(101)))
    h.start()
    (register,) = h.take(Register)  # sent, not answered yet
    response = h.request(Code.GET, "/3/0/0", observe=0, token=b"early")
    assert code(response) == "2.05"
    assert len(h.engine.observations) == 1
    h.respond(register, Code.CREATED, location=("rd", "x"))
    assert len(h.engine.observations) == 1  # kept by the registration it was made for
