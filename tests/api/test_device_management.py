"""Device Management through the REST API against a real client: Read, Write, Execute, Create,
Delete, Discover, Write-Attributes, Read-Composite, and their error answers."""

from __future__ import annotations

import httpx
import pytest

from lwm2m.client.objects import Device

from .conftest import ENDPOINT, Stack, Thermometer

BASE = f"/api/clients/{ENDPOINT}"


async def test_list_and_get_clients(stack: Stack, api: httpx.AsyncClient) -> None:
    listed = await api.get("/api/clients")
    assert listed.status_code == 200
    (entry,) = listed.json()
    one = await api.get(BASE)
    assert one.status_code == 200
    assert one.json() == entry
    registration = await stack.server.registration(ENDPOINT)
    assert registration is not None
    assert entry["endpoint"] == ENDPOINT
    assert entry["registration_id"] == registration.id
    assert entry["location"] == f"/rd/{registration.id}"
    assert entry["address"] == {"host": "127.0.0.1", "port": registration.address[1]}
    assert (entry["lifetime"], entry["binding"], entry["lwm2m_version"]) == (300, "U", "1.1")
    assert (entry["queue_mode"], entry["awake"], entry["sms_number"]) == (False, True, None)
    assert entry["identity"] is None  # plain CoAP
    assert entry["registered_at"].endswith("Z")
    assert entry["updated_at"] == entry["registered_at"]
    assert entry["root_path"] == "/"
    assert 112 in entry["content_formats"]
    objects = {o["uri"]: o for o in entry["objects"]}
    assert objects["/3/0"] == {"uri": "/3/0", "object_id": 3, "instance_id": 0, "version": "1.1"}
    assert objects["/3303/0"]["version"] == "1.0"


@pytest.mark.parametrize(
    ("path", "query", "content", "cf"),
    [
        ("3/0/9", "", 100, "senml-cbor"),
        ("/3/0/0", "?format=text", "ACME", "text"),
        ("3/0/11", "?format=11542", {"0": 0}, "tlv"),
        ("3/0/11/0", "?format=senml-json", 0, "senml-json"),
        ("3303/0", "?format=application/senml%2Bjson", {"5700": 21.5, "5701": "Cel"}, None),
        ("3303", "", {"0": {"5700": 21.5, "5701": "Cel"}}, "senml-cbor"),
    ],
)
async def test_read(
    api: httpx.AsyncClient, path: str, query: str, content: object, cf: str | None
) -> None:
    answer = await api.get(f"{BASE}/{path}{query}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["path"] == "/" + path.lstrip("/")
    assert body["code"] == "2.05"
    assert body["content"] == content
    assert body["content_format"] == (cf or "senml-json")


async def test_write_replace_and_partial(api: httpx.AsyncClient) -> None:
    answer = await api.put(f"{BASE}/3/0/14", json={"content": "+02:00"})
    assert answer.status_code == 200
    assert answer.json() == {"path": "/3/0/14", "code": "2.04"}
    partial = {"content": {"14": "+03:00", "15": "Europe/Paris"}, "replace": False}
    answer = await api.put(f"{BASE}/3/0?format=senml-json", json=partial)
    assert answer.json() == {"path": "/3/0", "code": "2.04"}
    read = (await api.get(f"{BASE}/3/0")).json()["content"]
    assert (read["14"], read["15"], read["0"]) == ("+03:00", "Europe/Paris", "ACME")


async def test_write_a_resource_instance_reaches_the_client(api: httpx.AsyncClient) -> None:
    # /3/0/11 (error codes) is read-only: the request is well formed, the client says 4.05
    answer = await api.put(f"{BASE}/3/0/11/0", json={"content": 1})
    assert answer.status_code == 405
    assert answer.json()["coap_code"] == "4.05"


async def test_execute_with_and_without_arguments(stack: Stack, api: httpx.AsyncClient) -> None:
    thermometer = stack.clients[0].objects[3303]
    assert isinstance(thermometer, Thermometer)
    answer = await api.post(f"{BASE}/3303/0/5605/execute", json={"arguments": "0='x',1"})
    assert answer.status_code == 200
    assert answer.json() == {"path": "/3303/0/5605", "code": "2.04"}
    answer = await api.post(f"{BASE}/3303/0/5605/execute")
    assert answer.status_code == 200
    first, second = thermometer.executed
    assert dict(first) == {0: "x", 1: None}
    assert dict(second) == {}


async def test_create_and_delete(stack: Stack, api: httpx.AsyncClient) -> None:
    answer = await api.post(f"{BASE}/3303", json={"content": {"7": {"5750": "lab"}}})
    assert answer.status_code == 201
    assert answer.json() == {"path": "/3303", "code": "2.01", "location": "/3303/7"}
    read = await api.get(f"{BASE}/3303/7/5750")
    assert read.json()["content"] == "lab"
    answer = await api.post(f"{BASE}/3303", json={"resources": {"5750": "room"}})
    assert answer.status_code == 201
    location = answer.json()["location"]
    assert location is not None
    assert location.startswith("/3303/")
    assert (await api.get(f"{BASE}{location}/5750")).json()["content"] == "room"
    for path in ("/3303/7", location):
        deleted = await api.delete(f"{BASE}{path}")
        assert deleted.status_code == 200
        assert deleted.json() == {"path": path, "code": "2.02"}
    assert (await api.get(f"{BASE}/3303/7")).status_code == 404


async def test_discover_shows_written_attributes(api: httpx.AsyncClient) -> None:
    written = await api.put(
        f"{BASE}/3/0/9/attributes", json={"pmin": 10, "pmax": 60, "gt": 5.0, "st": 1}
    )
    assert written.status_code == 200
    assert written.json() == {"path": "/3/0/9", "code": "2.04"}
    answer = await api.get(f"{BASE}/3/0/discover")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["path"], body["code"]) == ("/3/0", "2.05")
    links = {link["uri"]: link["attributes"] for link in body["links"]}
    assert links["/3/0/9"] == {"pmin": "10", "pmax": "60", "gt": "5", "st": "1"}
    assert links["/3/0/11"] == {"dim": "1"}
    # unset removes an attribute
    unset = await api.put(f"{BASE}/3/0/9/attributes", json={"unset": ["gt", "st"]})
    assert unset.status_code == 200
    links = {
        x["uri"]: x["attributes"] for x in (await api.get(f"{BASE}/3/0/9/discover")).json()["links"]
    }
    assert links["/3/0/9"] == {"pmin": "10", "pmax": "60"}


async def test_inconsistent_attributes(api: httpx.AsyncClient) -> None:
    await api.put(f"{BASE}/3/0/9/attributes", json={"pmax": 60})
    # consistent on its own, inconsistent with what the client has: the client's 4.00
    answer = await api.put(f"{BASE}/3/0/9/attributes", json={"pmin": 100})
    assert answer.status_code == 400
    body = answer.json()
    assert body["coap_code"] == "4.00"
    assert "pmin (100) must not exceed pmax (60)" in body["diagnostic"]
    # inconsistent in itself: refused before anything is sent
    answer = await api.put(f"{BASE}/3/0/9/attributes", json={"lt": 10, "gt": 5})
    assert answer.status_code == 400
    assert answer.json() == {"error": "attributes: lt (10.0) must be less than gt (5.0)"}
    answer = await api.put(f"{BASE}/3/0/9/attributes", json={"pmin": -1})
    assert answer.status_code == 400
    assert "body.pmin" in answer.json()["error"]


async def test_read_composite(api: httpx.AsyncClient) -> None:
    answer = await api.post(f"{BASE}/composite", json={"paths": ["/3/0/9", "1/0/1"]})
    assert answer.status_code == 200
    assert answer.json() == {
        "code": "2.05",
        "content": {"/3/0/9": 100, "/1/0/1": 300},
        "content_format": "senml-cbor",
    }
    answer = await api.post(f"{BASE}/composite?format=senml-json", json={"paths": ["/3/0/0"]})
    assert answer.json()["content"] == {"/3/0/0": "ACME"}
    assert answer.json()["content_format"] == "senml-json"


async def test_values_are_typed_by_the_clients_model(stack: Stack, api: httpx.AsyncClient) -> None:
    # /1/0/1 lifetime is an Integer, /1/0/6 Boolean, /1/0/22 a Time in LwM2M 1.1
    assert (await api.put(f"{BASE}/1/0/6", json={"content": True})).status_code == 200
    assert (await api.get(f"{BASE}/1/0/6")).json()["content"] is True
    device = stack.clients[0].objects[3]
    assert isinstance(device, Device)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/api/clients/nobody", None),
        ("GET", "/api/clients/nobody/3/0", None),
        ("PUT", "/api/clients/nobody/3/0/14", {"content": "x"}),
        ("POST", "/api/clients/nobody/3/0/4/execute", None),
        ("POST", "/api/clients/nobody/3303", {"content": {"1": {}}}),
        ("DELETE", "/api/clients/nobody/3303/0", None),
        ("GET", "/api/clients/nobody/3/0/discover", None),
        ("PUT", "/api/clients/nobody/3/0/9/attributes", {"pmin": 1}),
        ("POST", "/api/clients/nobody/3/0/9/observe", None),
        ("DELETE", "/api/clients/nobody/3/0/9/observe", None),
        ("GET", "/api/clients/nobody/observations", None),
        ("POST", "/api/clients/nobody/composite", {"paths": ["/3/0/9"]}),
    ],
)
async def test_unknown_client_is_404(
    api: httpx.AsyncClient, method: str, url: str, body: object
) -> None:
    answer = await api.request(method, url, json=body)
    assert answer.status_code == 404
    assert answer.json() == {"error": "client 'nobody' is not registered"}


@pytest.mark.parametrize(
    ("method", "url", "body", "message"),
    [
        ("GET", f"{BASE}/3/x", None, "invalid path '/3/x': 'x' is not a decimal id"),
        ("GET", f"{BASE}/3/0/1/2/3", None, "invalid path '/3/0/1/2/3': a path has at most 4 ids"),
        ("GET", f"{BASE}/3/01", None, "invalid path '/3/01': '01' has a leading zero"),
        ("GET", f"{BASE}/", None, "the path must name at least an object, e.g. 3/0/9"),
        ("GET", f"{BASE}/3/0/9?format=foo", None, "format: unknown content format 'foo'"),
        ("GET", f"{BASE}/3/0/9?format=999", None, "format: 999 is not a valid ContentFormat"),
        ("POST", f"{BASE}/3/0/9/observe?format=x", None, "format: unknown content format 'x'"),
        ("PUT", f"{BASE}/3/0/14", {"content": 5}, "bad node JSON: /3/0/14: bad String value 5"),
        ("PUT", f"{BASE}/3/0/x", {"content": 5}, "invalid path '/3/0/x'"),
        ("PUT", f"{BASE}/3/0/1", {"content": None}, "bad node JSON: /3/0/1: bad String value"),
        (
            "PUT",
            f"{BASE}/3/0",
            {"content": [1, 2]},
            "bad node JSON: /3/0: expected a JSON object keyed by ids, got an array",
        ),
        (
            "PUT",
            f"{BASE}/3/0",
            {"content": {"x": 1}},
            "bad node JSON: /3/0: key 'x' is not an id",
        ),
        (
            "PUT",
            f"{BASE}/3/0/11",
            {"content": "text"},
            "bad node JSON: /3/0/11: expected a JSON object keyed by ids, got a string",
        ),
        (
            "PUT",
            f"{BASE}/3/0/9/0",
            {"content": 5},
            "bad node JSON: /3/0/9/0: resource instance of a single-instance resource",
        ),
        ("PUT", f"{BASE}/3/0/14", {"contnt": 5}, "invalid request: body.content: Field required"),
        ("PUT", f"{BASE}/3/0/14", None, "invalid request: body: Field required"),
        ("POST", f"{BASE}/3303/0", {"content": {}}, "Create addresses an object, not /3303/0"),
        (
            "POST",
            f"{BASE}/3303",
            {"content": {}, "resources": {}},
            "give exactly one of 'content' and 'resources'",
        ),
        (
            "POST",
            f"{BASE}/3303",
            {"content": {"1": True}},
            "bad node JSON: /3303/1: expected a JSON object keyed by ids, got a boolean",
        ),
        (
            "POST",
            f"{BASE}/3303",
            {"resources": {"5700": "hot"}},
            "bad node JSON: /3303/0/5700: bad Float value 'hot'",
        ),
        ("POST", f"{BASE}/composite", {"paths": []}, "body.paths: List should have at least 1"),
        ("POST", f"{BASE}/composite", {"paths": ["/3/a"]}, "invalid path '/3/a'"),
        ("POST", f"{BASE}/3/0/4/execute", {"arguments": 7}, "body.arguments: Input should be"),
        ("PUT", f"{BASE}/3/0/9/attributes", {"unset": ["foo"]}, "body.unset.0: Input should be"),
        ("PUT", f"{BASE}/3/0/9/attributes", {"pmin": 1, "unset": ["pmin"]}, "both set and unset"),
    ],
)
async def test_bad_input_is_400_naming_the_problem(
    api: httpx.AsyncClient, method: str, url: str, body: object, message: str
) -> None:
    answer = await api.request(method, url, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json"
    (key,) = answer.json()
    assert key == "error"
    assert message in answer.json()["error"]


async def test_malformed_json_body_is_400(api: httpx.AsyncClient) -> None:
    answer = await api.put(
        f"{BASE}/3/0/14", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("invalid request: body")


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "coap"),
    [
        ("GET", f"{BASE}/42", None, 404, "4.04"),
        ("GET", f"{BASE}/3/7", None, 404, "4.04"),
        ("GET", f"{BASE}/0/0", None, 403, "4.01"),  # Security: not for a DM server
        ("POST", f"{BASE}/3/0/0/execute", None, 405, "4.05"),
        ("PUT", f"{BASE}/3/0/0", {"content": "x"}, 405, "4.05"),
        ("DELETE", f"{BASE}/3/0", None, 405, "4.05"),
        ("GET", f"{BASE}/3/0?format=text", None, 406, "4.06"),
        ("GET", f"{BASE}/42/discover", None, 404, "4.04"),
        ("PUT", f"{BASE}/3/0/0/attributes", {"gt": 5.0}, 400, "4.00"),
    ],
)
async def test_client_error_codes_map_to_http(
    api: httpx.AsyncClient, method: str, url: str, body: object, status: int, coap: str | None
) -> None:
    answer = await api.request(method, url, json=body)
    assert answer.status_code == status, answer.text
    data = answer.json()
    assert data["error"].startswith(f"{ENDPOINT}: error response ")
    if coap is not None:
        assert data["coap_code"] == coap


async def test_unknown_route_and_method_are_json(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/nothing")
    assert (answer.status_code, answer.json()) == (404, {"error": "Not Found"})
    answer = await api.patch(f"{BASE}/3/0")
    assert (answer.status_code, answer.json()) == (405, {"error": "Method Not Allowed"})
