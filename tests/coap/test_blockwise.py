"""RFC 7959 block-wise transfers in both roles (and RFC 8132 methods), in memory."""

from __future__ import annotations

import pytest

from lwm2m.coap import (
    Block,
    BlockwiseError,
    CoapEngine,
    Code,
    Message,
    MessageType,
    NotificationReceived,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    decode,
)

from .helpers import CLIENT, SERVER, Net, exact_config

CON, NON, ACK = MessageType.CON, MessageType.NON, MessageType.ACK
BODY = bytes(range(256)) * 40  # 10240 bytes


def setup(client_kw: dict[str, object] | None = None, server_kw: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    net = Net()
    client = net.add(CLIENT, exact_config(**(client_kw or {})), seed=1)  # type: ignore[arg-type]
    server = net.add(SERVER, exact_config(**(server_kw or {})), seed=2)  # type: ignore[arg-type]
    return net, client, server


def auto_serve(
    net: Net, server: CoapEngine, body: bytes, code: int = Code.CONTENT
) -> list[Message]:
    """Answer every request with ``body`` until quiet; returns the requests the app saw."""
    seen = []
    while True:
        net.flush()
        evs = [e for e in net.take(SERVER) if isinstance(e, RequestReceived)]
        if not evs:
            return seen
        for ev in evs:
            seen.append(ev.exchange.request)
            server.send_response(ev.exchange, Message(code, body), net.now)


def blocks(msgs: list[Message], option: str) -> list[tuple[int, int, int] | None]:
    out = []
    for m in msgs:
        b = getattr(m, option)
        out.append(None if b is None else (b.num, int(b.more), b.size))
    return out


def test_rfc7959_figure2_block2_get() -> None:
    """Figure 2: GET /status answered in three 128-byte blocks."""
    net, client, server = setup(server_kw={"block_szx": 3})
    body = b"s" * 300
    rid = client.send_request(Message(Code.GET, uri_path="/status"), SERVER, net.now)
    seen = auto_serve(net, server, body)
    assert len(seen) == 1  # later blocks come from the engine's cache
    requests = [w.msg for w in net.sent_by(CLIENT)]
    responses = [w.msg for w in net.sent_by(SERVER)]
    assert blocks(requests, "block2") == [None, (1, 0, 128), (2, 0, 128)]
    assert blocks(responses, "block2") == [(0, 1, 128), (1, 1, 128), (2, 0, 128)]
    assert all(r.size2 == 300 for r in responses)
    (ev,) = net.take(CLIENT)
    assert isinstance(ev, ResponseReceived)
    assert ev.request_id == rid
    assert ev.response.payload == body
    assert ev.response.block2 is None


def test_follow_up_blocks_are_served_from_the_cache() -> None:
    net, client, server = setup()
    client.send_request(Message(Code.GET, uri_path="/big"), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    server.send_response(ev.exchange, Message(Code.CONTENT, BODY), net.now)  # type: ignore[union-attr]
    net.flush()
    assert net.take(SERVER) == []  # the application rendered it once
    (resp,) = net.take(CLIENT)
    assert isinstance(resp, ResponseReceived)
    assert resp.response.payload == BODY
    assert len(net.sent_by(CLIENT)) == 10  # 10 x 1024


def test_rfc7959_figure3_early_negotiation_of_block2_size() -> None:
    net, client, server = setup(client_kw={"request_block2_szx": 2})
    client.send_request(Message(Code.GET, uri_path="/status"), SERVER, net.now)
    auto_serve(net, server, b"x" * 150)
    requests = [w.msg for w in net.sent_by(CLIENT)]
    responses = [w.msg for w in net.sent_by(SERVER)]
    assert blocks(requests, "block2") == [(0, 0, 64), (1, 0, 64), (2, 0, 64)]
    assert blocks(responses, "block2") == [(0, 1, 64), (1, 1, 64), (2, 0, 64)]
    assert net.take(CLIENT)[0].response.payload == b"x" * 150  # type: ignore[union-attr]


def test_small_response_with_block2_num0_request_is_not_blocked() -> None:
    net, client, server = setup(client_kw={"request_block2_szx": 2})
    client.send_request(Message(Code.GET, uri_path="/s"), SERVER, net.now)
    auto_serve(net, server, b"tiny")
    assert net.sent_by(SERVER)[0].msg.block2 is None
    assert net.take(CLIENT)[0].response.payload == b"tiny"  # type: ignore[union-attr]


def test_rfc7959_figure5_block1_put() -> None:
    """Figure 5: PUT in 128-byte blocks, 2.31 Continue, final 2.04 echoes Block1."""
    net, client, server = setup(client_kw={"block_szx": 3})
    body = b"p" * 300
    rid = client.send_request(Message(Code.PUT, body, uri_path="/options"), SERVER, net.now)
    seen = auto_serve(net, server, b"", Code.CHANGED)
    assert len(seen) == 1
    assert seen[0].payload == body
    assert seen[0].block1 is None
    assert seen[0].size1 is None
    requests = [w.msg for w in net.sent_by(CLIENT)]
    responses = [w.msg for w in net.sent_by(SERVER)]
    assert blocks(requests, "block1") == [(0, 1, 128), (1, 1, 128), (2, 0, 128)]
    assert requests[0].size1 == 300
    assert [r.code for r in responses] == [Code.CONTINUE, Code.CONTINUE, Code.CHANGED]
    assert blocks(responses, "block1") == [(0, 1, 128), (1, 1, 128), (2, 0, 128)]
    (ev,) = net.take(CLIENT)
    assert isinstance(ev, ResponseReceived)
    assert ev.request_id == rid
    assert ev.response.code == Code.CHANGED


def test_rfc7959_figure6_block1_early_negotiation() -> None:
    """Figure 6: the server answers 1:0/1/32 to a 128-byte block; the client continues at 4."""
    net, client, server = setup(client_kw={"block_szx": 3}, server_kw={"block_szx": 1})
    body = bytes(range(200))
    client.send_request(Message(Code.PUT, body, uri_path="/options"), SERVER, net.now)
    seen = auto_serve(net, server, b"", Code.CHANGED)
    assert seen[0].payload == body
    requests = [w.msg for w in net.sent_by(CLIENT)]
    responses = [w.msg for w in net.sent_by(SERVER)]
    assert blocks(requests, "block1")[:3] == [(0, 1, 128), (4, 1, 32), (5, 1, 32)]
    assert blocks(requests, "block1")[-1] == (6, 0, 32)
    assert blocks(responses, "block1")[0] == (0, 1, 32)


def test_block1_5kb_upload_with_block2_answer() -> None:
    net, client, server = setup()
    upload = bytes(range(250)) * 20  # 5000
    client.send_request(Message(Code.POST, upload, uri_path="/big"), SERVER, net.now)
    seen = auto_serve(net, server, BODY, Code.CHANGED)
    assert [s.payload for s in seen] == [upload]
    (ev,) = net.take(CLIENT)
    assert isinstance(ev, ResponseReceived)
    assert ev.response.payload == BODY
    follow_ups = [w.msg for w in net.sent_by(CLIENT)][5:]
    assert all(m.code == Code.POST and not m.payload for m in follow_ups)


def craft(num: int, more: bool, szx: int, payload: bytes, mid: int, **kw: object) -> bytes:
    m = Message(Code.PUT, payload, mtype=CON, mid=mid, token=b"t", uri_path="/u")
    m.block1 = Block(num, more, szx)
    for k, v in kw.items():
        setattr(m, k, v)
    return m.encode()


def answer(server: CoapEngine, data: bytes, now: float = 0.0) -> Message:
    server.receive_datagram(data, CLIENT, now)
    out = server.datagrams_to_send(now)
    assert len(out) == 1
    return decode(out[0][0])


def test_4_08_for_a_block_that_continues_nothing() -> None:
    server = CoapEngine(exact_config())
    assert answer(server, craft(2, True, 2, b"x" * 64, 1)).code == Code.REQUEST_ENTITY_INCOMPLETE
    assert answer(server, craft(0, True, 2, b"x" * 64, 2)).code == Code.CONTINUE
    # skipping block 1 breaks the transfer
    assert answer(server, craft(2, True, 2, b"x" * 64, 3)).code == Code.REQUEST_ENTITY_INCOMPLETE
    assert answer(server, craft(1, False, 2, b"x", 4)).code == Code.REQUEST_ENTITY_INCOMPLETE
    assert server.next_event() is None


def test_4_13_with_size1_when_the_body_is_too_large() -> None:
    server = CoapEngine(exact_config(max_body_size=100))
    too_big = answer(server, craft(0, True, 2, b"x" * 64, 1, size1=5000))
    assert too_big.code == Code.REQUEST_ENTITY_TOO_LARGE
    assert too_big.size1 == 100
    assert answer(server, craft(0, True, 2, b"x" * 64, 2)).code == Code.CONTINUE
    over = answer(server, craft(1, True, 2, b"x" * 64, 3))  # 128 > 100
    assert over.code == Code.REQUEST_ENTITY_TOO_LARGE
    assert over.size1 == 100


def test_client_sees_4_13_as_the_final_response() -> None:
    net, client, _server = setup(server_kw={"max_body_size": 2000})
    client.send_request(Message(Code.PUT, b"z" * 5000, uri_path="/u"), SERVER, net.now)
    net.flush()
    (ev,) = net.take(CLIENT)
    assert isinstance(ev, ResponseReceived)
    assert ev.response.code == Code.REQUEST_ENTITY_TOO_LARGE
    assert ev.response.size1 == 2000


def test_bad_block_options_get_4_00() -> None:
    server = CoapEngine(exact_config())
    assert answer(server, craft(0, True, 7, b"x" * 16, 1)).code == Code.BAD_REQUEST  # SZX 7
    assert answer(server, craft(0, True, 2, b"x" * 10, 2)).code == Code.BAD_REQUEST  # short
    assert answer(server, craft(0, False, 0, b"x" * 17, 3)).code == Code.BAD_REQUEST  # long
    get = Message(Code.GET, mtype=CON, mid=4, uri_path="/g")
    get.block2 = Block(0, False, 7)
    assert answer(server, get.encode()).code == Code.BAD_REQUEST


def test_reassemblies_are_bounded_and_time_out() -> None:
    server = CoapEngine(exact_config(max_reassemblies=2, reassembly_timeout=30.0))
    for i, path in enumerate(("a", "b")):
        m = Message(Code.PUT, b"x" * 16, mtype=CON, mid=10 + i, uri_path=path)
        m.block1 = Block(0, True, 0)
        assert answer(server, m.encode()).code == Code.CONTINUE
    third = Message(Code.PUT, b"x" * 16, mtype=CON, mid=20, uri_path="c")
    third.block1 = Block(0, True, 0)
    busy = answer(server, third.encode())
    assert busy.code == Code.SERVICE_UNAVAILABLE
    assert busy.max_age == 30
    t = 0.0
    while (deadline := server.get_timer()) is not None and deadline <= 31:
        t = deadline
        server.handle_timer(t)
    assert server.stats.reassembly_timeouts == 2
    late = Message(Code.PUT, b"x" * 16, mtype=CON, mid=30, uri_path="a")
    late.block1 = Block(1, True, 0)
    assert answer(server, late.encode(), 31.0).code == Code.REQUEST_ENTITY_INCOMPLETE
    assert answer(server, third.encode().replace(b"\x00\x14", b"\x00\x15", 1), 31.0).code == (
        Code.CONTINUE
    )


def test_request_tag_separates_concurrent_uploads() -> None:
    """RFC 9175 §3.3: blocks with different Request-Tags belong to different operations."""
    server = CoapEngine(exact_config())
    assert answer(server, craft(0, True, 0, b"A" * 16, 1, request_tag=b"\x01")).code == (
        Code.CONTINUE
    )
    assert answer(server, craft(0, True, 0, b"B" * 16, 2, request_tag=b"\x02")).code == (
        Code.CONTINUE
    )
    server.receive_datagram(craft(1, False, 0, b"a", 3, request_tag=b"\x01"), CLIENT, 0.0)
    ev = server.next_event()
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.payload == b"A" * 16 + b"a"
    server.send_response(ev.exchange, Message(Code.CHANGED), 0.0)
    server.datagrams_to_send(0.0)
    server.receive_datagram(craft(1, False, 0, b"b", 4, request_tag=b"\x02"), CLIENT, 0.0)
    ev = server.next_event()
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.payload == b"B" * 16 + b"b"
    # without a tag the operation is a third, unrelated one
    assert answer(server, craft(1, False, 0, b"c", 5)).code == Code.REQUEST_ENTITY_INCOMPLETE


def test_client_tags_a_concurrent_upload_to_the_same_resource() -> None:
    net, client, _server = setup()
    client.send_request(Message(Code.PUT, b"1" * 3000, uri_path="/fw"), SERVER, net.now)
    client.send_request(Message(Code.PUT, b"2" * 3000, uri_path="/fw"), SERVER, net.now)
    client.send_request(Message(Code.PUT, b"3" * 3000, uri_path="/other"), SERVER, net.now)
    assert client.pending_requests == 3
    first = client._requests[1].template  # the queued templates carry their tags
    second = client._requests[2].template
    third = client._requests[3].template
    assert first.request_tag is None
    assert second.request_tag is not None
    assert third.request_tag is None


def test_large_notifications_are_fetched_block_wise() -> None:
    """RFC 7959 §2.6: the notification carries block 0; the rest comes by GET without Observe."""
    net, client, server = setup()
    rid = client.send_request(Message(Code.GET, uri_path="/fw", observe=0), SERVER, net.now)
    net.flush()
    (ev,) = net.take(SERVER)
    obs = server.send_response(ev.exchange, Message(Code.CONTENT, BODY, observe=0), net.now)  # type: ignore[union-attr]
    assert obs is not None
    net.flush()
    assert net.take(SERVER) == []  # follow-ups are served from the block cache
    (first,) = net.take(CLIENT)
    assert isinstance(first, ResponseReceived)
    assert first.request_id == rid
    assert first.response.payload == BODY
    big = bytes(reversed(BODY))
    server.notify(obs, Message(Code.CONTENT, big), net.now)
    net.flush()
    (note,) = net.take(CLIENT)
    assert isinstance(note, NotificationReceived)
    assert note.response.payload == big
    follow_ups = [w.msg for w in net.sent_by(CLIENT) if w.msg.block2 is not None]
    assert all(m.observe is None and m.token != obs.token for m in follow_ups)
    assert net.take(SERVER) == []


def test_changed_etag_fails_the_transfer() -> None:
    net, client, server = setup(server_kw={"block2_cache_entries": 0})
    rid = client.send_request(Message(Code.GET, uri_path="/v"), SERVER, net.now)
    bodies = iter([b"a" * 2000, b"b" * 2000])
    while True:
        net.flush()
        evs = [e for e in net.take(SERVER) if isinstance(e, RequestReceived)]
        if not evs:
            break
        for e in evs:
            server.send_response(e.exchange, Message(Code.CONTENT, next(bodies)), net.now)
    (ev,) = net.take(CLIENT)
    assert isinstance(ev, RequestFailed)
    assert ev.request_id == rid
    assert isinstance(ev.error, BlockwiseError)
    assert "ETag" in str(ev.error)


def test_client_limits_the_reassembled_body() -> None:
    net, client, server = setup(client_kw={"max_body_size": 3000})
    client.send_request(Message(Code.GET, uri_path="/v"), SERVER, net.now)
    auto_serve(net, server, BODY)
    (ev,) = net.take(CLIENT)
    assert isinstance(ev, RequestFailed)
    assert isinstance(ev.error, BlockwiseError)


def test_block_beyond_the_end_is_4_02() -> None:
    net, client, server = setup()
    req = Message(Code.GET, uri_path="/v")
    req.block2 = Block(50, False, 6)
    rid = client.send_request(req, SERVER, net.now)
    auto_serve(net, server, BODY)
    (ev,) = net.take(CLIENT)
    assert isinstance(ev, ResponseReceived)
    assert ev.request_id == rid
    assert ev.response.code == Code.BAD_OPTION
    # a request for a middle block is answered with just that block (no auto-reassembly)
    req = Message(Code.GET, uri_path="/v")
    req.block2 = Block(3, False, 6)
    client.send_request(req, SERVER, net.now)
    auto_serve(net, server, BODY)
    (ev,) = net.take(CLIENT)
    assert ev.response.block2 == Block(3, True, 6)  # type: ignore[union-attr]
    assert ev.response.payload == BODY[3072:4096]  # type: ignore[union-attr]
    # and a cached representation answers out-of-range blocks with 4.02 too
    server.receive_datagram(
        Message(
            Code.GET, mtype=CON, mid=999, token=b"q", uri_path="/v", options=[(23, b"\xf6")]
        ).encode(),
        CLIENT,
        net.now,
    )
    ((data, _),) = server.datagrams_to_send(net.now)
    assert decode(data).code in (Code.BAD_OPTION, Code.CONTENT)


def test_block2_cache_is_bounded_and_expires() -> None:
    net, client, server = setup(server_kw={"block2_cache_entries": 2, "block2_cache_timeout": 10.0})
    for path in ("a", "b", "c"):
        client.send_request(Message(Code.GET, uri_path=path), SERVER, net.now)
    seen = auto_serve(net, server, BODY)
    assert [m.path for m in seen] == ["/a", "/b", "/c"]
    assert len(server._block2_cache) == 2  # a was evicted
    assert len([e for e in net.take(CLIENT) if isinstance(e, ResponseReceived)]) == 3
    net.run_until(net.now + 11)
    assert len(server._block2_cache) == 0


@pytest.mark.parametrize("code", [Code.FETCH, Code.PATCH, Code.IPATCH])
def test_rfc8132_methods(code: Code) -> None:
    net, client, server = setup()
    rid = client.send_request(
        Message(code, b'["/3/0/1"]', uri_path="/", content_format=60), SERVER, net.now
    )
    net.flush()
    (ev,) = net.take(SERVER)
    assert isinstance(ev, RequestReceived)
    assert ev.exchange.request.code == code
    assert ev.exchange.request.payload == b'["/3/0/1"]'
    server.send_response(
        ev.exchange,
        Message(
            Code.CONTENT if code == Code.FETCH else Code.CHANGED,
            BODY if code == Code.FETCH else b"",
        ),
        net.now,
    )
    net.flush()
    (resp,) = net.take(CLIENT)
    assert isinstance(resp, ResponseReceived)
    assert resp.request_id == rid
    if code == Code.FETCH:
        assert resp.response.payload == BODY
        follow = [w.msg for w in net.sent_by(CLIENT)][1:]
        assert all(m.code == Code.FETCH and m.payload == b'["/3/0/1"]' for m in follow)


def test_non_block1_upload() -> None:
    net, client, server = setup()
    client.send_request(Message(Code.PUT, b"n" * 3000, mtype=NON, uri_path="/n"), SERVER, net.now)
    seen = auto_serve(net, server, b"", Code.CHANGED)
    assert [len(s.payload) for s in seen] == [3000]
    assert {w.msg.mtype for w in net.sent_by(SERVER)} == {NON}
    assert isinstance(net.take(CLIENT)[0], ResponseReceived)
