from lwm2m.coap import Code, Message, RequestReceived, ResponseReceived

from .helpers import CLIENT, SERVER, Net


def test_get_roundtrip() -> None:
    net = Net()
    client = net.add(CLIENT, seed=1)
    server = net.add(SERVER, seed=2)
    rid = client.send_request(Message(Code.GET, uri_path="/3/0/0"), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.path == "/3/0/0"
    server.send_response(ev.exchange, Message(Code.CONTENT, b"hello"), net.now)
    net.flush()
    (resp,) = net.take(CLIENT)
    assert isinstance(resp, ResponseReceived)
    assert resp.request_id == rid
    assert resp.response.payload == b"hello"
