"""Wire details the clients hide: both serializers, binary broadcast frames in both directions,
heartbeats, unknown topics, limits, heartbeat timeout."""

from __future__ import annotations

import asyncio
import json
import struct

import websockets

from tests.conftest import sql


def url(server, vsn: str, key: str | None = None) -> str:
    base = server.url.replace("http", "ws")
    return f"{base}/realtime/v1/websocket?vsn={vsn}&apikey={key or server.anon_key}"


async def recv_until(ws, pred, timeout: float = 5):
    async def go():
        while True:
            raw = await ws.recv()
            if pred(raw):
                return raw
    return await asyncio.wait_for(go(), timeout)


def push_frame(join_ref: str, ref: str, topic: str, event: str, payload: bytes, enc: int, meta: bytes = b"") -> bytes:
    parts = [join_ref.encode(), ref.encode(), topic.encode(), event.encode(), meta]
    return bytes([3, *map(len, parts), enc]) + b"".join(parts) + payload


def parse_broadcast(raw: bytes) -> tuple[str, str, bytes, int, bytes]:
    kind, tl, el, ml, enc = struct.unpack("5B", raw[:5])
    assert kind == 4
    off = 5
    topic = raw[off:off + tl].decode(); off += tl
    event = raw[off:off + el].decode(); off += el
    meta = raw[off:off + ml]; off += ml
    return topic, event, meta, enc, raw[off:]


async def test_v2_arrays_and_binary_frames(rt_server):
    topic = "realtime:bin-room"
    async with websockets.connect(url(rt_server, "2.0.0")) as a, websockets.connect(url(rt_server, "1.0.0")) as b:
        await a.send(json.dumps(["1", "1", topic, "phx_join", {"config": {"broadcast": {"self": True}}}]))
        reply = json.loads(await a.recv())
        assert reply[:4] == ["1", "1", topic, "phx_reply"] and reply[4]["status"] == "ok"
        assert reply[4]["response"] == {"postgres_changes": []}
        await b.send(json.dumps({"join_ref": "9", "ref": "9", "topic": topic, "event": "phx_join", "payload": {}}))
        rb = json.loads(await b.recv())
        assert rb["event"] == "phx_reply" and rb["ref"] == "9" and rb["payload"]["status"] == "ok"

        # JSON-encoded binary push (encoding 1) -> kind-4 frame to v2, JSON object to v1
        await a.send(push_frame("1", "2", topic, "ev", json.dumps({"k": "v"}).encode(), 1))
        raw = await recv_until(a, lambda r: isinstance(r, bytes))
        t, e, meta, enc, body = parse_broadcast(raw)
        assert (t, e, enc, json.loads(body), meta) == (topic, "ev", 1, {"k": "v"}, b"")
        msg = json.loads(await recv_until(b, lambda r: "broadcast" in r))
        assert msg["event"] == "broadcast" and msg["payload"] == {"type": "broadcast", "event": "ev", "payload": {"k": "v"}}

        # raw bytes (encoding 0) arrive as raw bytes
        await a.send(push_frame("1", "3", topic, "blob", b"\x00\x01\xff", 0))
        raw = await recv_until(a, lambda r: isinstance(r, bytes))
        assert parse_broadcast(raw)[3:] == (0, b"\x00\x01\xff")

        # heartbeat
        await a.send(json.dumps([None, "7", "phoenix", "heartbeat", {}]))
        hb = json.loads(await recv_until(a, lambda r: isinstance(r, str) and "phoenix" in r))
        assert hb == [None, "7", "phoenix", "phx_reply", {"status": "ok", "response": {}}]

        # a push to a topic the socket has not joined
        await a.send(json.dumps(["1", "8", "realtime:other", "broadcast", {"event": "x", "payload": {}}]))
        un = json.loads(await recv_until(a, lambda r: isinstance(r, str) and "other" in r))
        assert un[3] == "phx_reply" and un[4]["status"] == "error"

        # leave: ok reply then phx_close
        await a.send(json.dumps(["1", "9", topic, "phx_leave", {}]))
        left = json.loads(await recv_until(a, lambda r: isinstance(r, str) and '"9"' in r))
        assert left[3] == "phx_reply" and left[4]["status"] == "ok"
        closed = json.loads(await recv_until(a, lambda r: isinstance(r, str) and "phx_close" in r))
        assert closed[2] == topic


async def test_topic_required_and_bad_token_at_join(rt_server, mint):
    async with websockets.connect(url(rt_server, "1.0.0")) as ws:
        await ws.send(json.dumps({"join_ref": "1", "ref": "1", "topic": "realtime:", "event": "phx_join", "payload": {}}))
        r = json.loads(await ws.recv())
        assert r["payload"] == {"status": "error", "response": {"reason": "TopicNameRequired: You must provide a topic name"}}
        expired = mint(ttl=-30)
        await ws.send(json.dumps({"join_ref": "2", "ref": "2", "topic": "realtime:x", "event": "phx_join",
                                  "payload": {"access_token": expired}}))
        r = json.loads(await ws.recv())
        assert r["payload"]["status"] == "error"
        assert r["payload"]["response"]["reason"].startswith("InvalidJWTToken: Token has expired")


async def test_channel_and_join_rate_limits_and_message_size(server_factory, rt_server):
    srv = server_factory({"OWNBASE_REALTIME_MAX_CHANNELS_PER_SOCKET": "3",
                          "OWNBASE_REALTIME_MAX_JOINS_PER_SECOND": "2",
                          "OWNBASE_REALTIME_MAX_MESSAGE_BYTES": "4000"})
    async with websockets.connect(url(srv, "1.0.0")) as ws:
        async def join(i: int) -> dict:
            await ws.send(json.dumps({"join_ref": str(i), "ref": str(i), "topic": f"realtime:c{i}",
                                      "event": "phx_join", "payload": {}}))
            return json.loads(await ws.recv())["payload"]

        first = [await join(0), await join(1), await join(2)]
        assert [r["status"] for r in first] == ["ok", "ok", "error"]
        assert first[2]["response"]["reason"] == "ClientJoinRateLimitReached: Too many joins per second"
        await asyncio.sleep(1.2)
        assert (await join(2))["status"] == "ok"
        over = await join(3)
        assert over == {"status": "error", "response": {"reason": "ChannelRateLimitReached: Too many channels"}}

    async with websockets.connect(url(srv, "1.0.0")) as ws:
        # a broadcast over the size limit is refused (ack'ed channels hear why)
        await ws.send(json.dumps({"join_ref": "1", "ref": "1", "topic": "realtime:big", "event": "phx_join",
                                  "payload": {"config": {"broadcast": {"ack": True, "self": True},
                                                         "postgres_changes": [{"event": "INSERT", "schema": "public", "table": "rt_items"}]}}}))
        assert json.loads(await ws.recv())["payload"]["status"] == "ok"
        await recv_until(ws, lambda r: "Subscribed to PostgreSQL" in r)
        await ws.send(json.dumps({"join_ref": "1", "ref": "2", "topic": "realtime:big", "event": "broadcast",
                                  "payload": {"type": "broadcast", "event": "e", "payload": {"x": "y" * 5000}}}))
        reply = json.loads(await recv_until(ws, lambda r: '"ref": "2"' in r or '"ref":"2"' in r))
        assert reply["payload"] == {"status": "error", "response": {"reason": "Payload size exceeds tenant limit"}}
        # a change bigger than the limit keeps its small values and reports 413 in `errors`
        marker = "big-" + json.dumps(asyncio.get_running_loop().time())[-6:]
        await asyncio.to_thread(sql, srv, f"insert into rt_items(name, qty, meta) values ('{marker}', 7, "
                                          f"jsonb_build_object('blob', repeat('z', 6000)))")
        change = json.loads(await recv_until(ws, lambda r: marker in r))["payload"]["data"]
        assert change["errors"] == ["Error 413: Payload Too Large"]
        assert change["record"]["name"] == marker and change["record"]["qty"] == 7 and "meta" not in change["record"]
    srv.stop()


async def test_silent_socket_is_closed(server_factory):
    srv = server_factory({"OWNBASE_REALTIME_HEARTBEAT_TIMEOUT": "2"})
    async with websockets.connect(url(srv, "1.0.0"), ping_interval=None) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 10)
            raise AssertionError("expected the server to close the idle socket")
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 1000
    srv.stop()


async def test_slow_consumer_is_disconnected(server_factory):
    srv = server_factory({"OWNBASE_REALTIME_MAX_PENDING_MESSAGES": "5"})
    topic = "realtime:flood"
    # max_queue=1 and a tiny read buffer: this client stops reading, so the server's queue fills.
    slow = await websockets.connect(url(srv, "1.0.0"), max_queue=1)
    await slow.send(json.dumps({"join_ref": "1", "ref": "1", "topic": topic, "event": "phx_join", "payload": {}}))
    await slow.recv()
    big = "y" * 200_000
    async with websockets.connect(url(srv, "1.0.0")) as fast:
        await fast.send(json.dumps({"join_ref": "1", "ref": "1", "topic": topic, "event": "phx_join", "payload": {}}))
        await fast.recv()
        for i in range(200):
            await fast.send(json.dumps({"join_ref": "1", "ref": None, "topic": topic, "event": "broadcast",
                                        "payload": {"type": "broadcast", "event": "e", "payload": {"b": big}}}))
    code = None
    try:
        for _ in range(400):
            await asyncio.wait_for(slow.recv(), 10)
    except websockets.ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else None
    assert code == 1013
    srv.stop()


async def test_graceful_shutdown_closes_sockets_with_a_close_code(server_factory):
    srv = server_factory()
    ws = await websockets.connect(url(srv, "1.0.0"))
    await ws.send(json.dumps({"join_ref": "1", "ref": "1", "topic": "realtime:bye", "event": "phx_join", "payload": {}}))
    await ws.recv()
    stopper = asyncio.get_running_loop().run_in_executor(None, srv.stop)
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 30)
    except websockets.ConnectionClosed as exc:
        # 1012 "service restart": clients reconnect (to another process behind the balancer)
        assert exc.rcvd is not None and exc.rcvd.code in (1001, 1012)
    assert await stopper == 0
