"""Broadcast through the official Python clients (supabase-py / realtime), plus HTTP broadcast and
private channels authorised by RLS on realtime.messages."""

from __future__ import annotations

import uuid

import httpx
import websockets
from supabase import acreate_client

from tests.realtime.conftest import Inbox, rt_client, subscribed


def topic() -> str:
    return "room-" + uuid.uuid4().hex[:8]


async def test_broadcast_between_two_supabase_clients(rt_server):
    a = await acreate_client(rt_server.url, rt_server.anon_key)
    b = await acreate_client(rt_server.url, rt_server.anon_key)
    name = topic()
    ca, cb = a.channel(name), b.channel(name)
    got_a, got_b = Inbox(), Inbox()
    ca.on_broadcast("chat", got_a)
    cb.on_broadcast("chat", got_b)
    await subscribed(ca)
    await subscribed(cb)
    await ca.send_broadcast("chat", {"text": "hi", "n": 1})
    items = await got_b.wait(1)
    assert items[0]["event"] == "chat" and items[0]["payload"] == {"text": "hi", "n": 1}
    # self defaults to false: the sender does not hear itself
    assert await got_a.quiet(0.3) == []
    await a.remove_all_channels()
    await b.remove_all_channels()


async def test_self_and_ack(rt_server):
    a = await rt_client(rt_server)
    b = await rt_client(rt_server)
    name = topic()
    ca = a.channel(name, {"config": {"broadcast": {"self": True, "ack": True}, "private": False}})
    cb = b.channel(name)
    got_a, got_b = Inbox(), Inbox()
    ca.on_broadcast("*", got_a)
    cb.on_broadcast("*", got_b)
    await subscribed(ca)
    await subscribed(cb)
    acks = Inbox()
    push = await ca.push("broadcast", {"type": "broadcast", "event": "ping", "payload": {"x": 1}})
    push.receive("ok", acks)
    await acks.wait(1)
    assert (await got_a.wait(1))[0]["payload"] == {"x": 1}
    assert (await got_b.wait(1))[0]["payload"] == {"x": 1}
    # with ack off, no reply comes back for a broadcast push
    silent = Inbox()
    push = await cb.push("broadcast", {"type": "broadcast", "event": "pong", "payload": {}})
    push.receive("ok", silent)
    await got_a.wait(2)
    assert await silent.quiet(0.3) == []
    await a.close()
    await b.close()


async def test_http_broadcast_batch_and_single(rt_server):
    c = await rt_client(rt_server)
    name = topic()
    ch = c.channel(name)
    got = Inbox()
    ch.on_broadcast("*", got)
    await subscribed(ch)
    headers = {"apikey": rt_server.anon_key, "Authorization": f"Bearer {rt_server.anon_key}"}
    async with httpx.AsyncClient(base_url=rt_server.url, headers=headers) as http:
        r = await http.post("/realtime/v1/api/broadcast",
                            json={"messages": [{"topic": name, "event": "e1", "payload": {"a": 1}},
                                               {"topic": name, "event": "e2", "payload": {"b": 2}, "id": "m-1"}]})
        assert r.status_code == 202 and r.content == b""
        await ch.http_send("e3", {"c": 3})
        items = await got.wait(3)
        assert [i["event"] for i in items] == ["e1", "e2", "e3"]
        assert items[1]["meta"] == {"id": "m-1"}
        assert items[2]["payload"] == {"c": 3}
        # validation and auth errors in Supabase's shapes
        r = await http.post("/realtime/v1/api/broadcast", json={"messages": [{"topic": name}]})
        assert r.status_code == 422 and "errors" in r.json()
        # A bad API key is the gateway's to refuse (as Supabase's gateway does, before Realtime)...
        r = await http.post("/realtime/v1/api/broadcast", json={"messages": []},
                            headers={"apikey": "nope", "Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()["message"] == "Invalid API key"
        # ...a good key with a bad token is Realtime's own 401.
        r = await http.post("/realtime/v1/api/broadcast", json={"messages": []},
                            headers={"apikey": rt_server.anon_key, "Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}
        r = await http.post(f"/realtime/v1/api/broadcast/{name}/events/x", content=b"hi",
                            headers={"content-type": "text/plain"})
        assert r.status_code == 415
    await c.close()


async def test_payload_size_limit(rt_server):
    headers = {"apikey": rt_server.anon_key}
    big = "x" * (rt_server.settings.realtime_max_message_bytes + 10)
    async with httpx.AsyncClient(base_url=rt_server.url, headers=headers) as http:
        r = await http.post("/realtime/v1/api/broadcast",
                            json={"messages": [{"topic": "t", "event": "e", "payload": {"big": big}}]})
    assert r.status_code == 422
    assert "Payload size exceeds tenant limit" in r.text


async def test_private_channel_allowed_and_refused(rt_server, mint):
    user = mint()
    allowed = await rt_client(rt_server, token=user)
    refused = await rt_client(rt_server, token=user)
    anon = await rt_client(rt_server)
    ok_ch = allowed.channel("room-ok-1", {"config": {"private": True, "broadcast": {"self": True}}})
    got = Inbox()
    ok_ch.on_broadcast("*", got)
    await subscribed(ok_ch)

    states = Inbox()
    bad = refused.channel("room-secret", {"config": {"private": True}})
    await bad.subscribe(lambda status, err: states((status, err)))
    status, err = (await states.wait(1))[0]
    assert status.value == "CHANNEL_ERROR"
    assert "Unauthorized: You do not have permissions to read from this Channel topic: room-secret" in str(err)

    # anon has no policy at all
    states2 = Inbox()
    anon_ch = anon.channel("room-ok-1", {"config": {"private": True}})
    await anon_ch.subscribe(lambda status, err: states2((status, err)))
    assert (await states2.wait(1))[0][0].value == "CHANNEL_ERROR"

    # read is allowed on room-ok-1 but the INSERT policy only allows sending on room-ok-write:
    await ok_ch.send_broadcast("x", {"dropped": True})
    assert await got.quiet(0.5) == []
    w = allowed.channel("room-ok-write", {"config": {"private": True, "broadcast": {"self": True}}})
    got_w = Inbox()
    w.on_broadcast("*", got_w)
    await subscribed(w)
    await w.send_broadcast("x", {"sent": True})
    assert (await got_w.wait(1))[0]["payload"] == {"sent": True}

    # HTTP private broadcast: dropped silently without the INSERT policy, delivered with it
    async with httpx.AsyncClient(base_url=rt_server.url,
                                 headers={"apikey": rt_server.anon_key, "Authorization": f"Bearer {user}"}) as http:
        r = await http.post("/realtime/v1/api/broadcast", json={"messages": [
            {"topic": "room-ok-1", "event": "h", "payload": {"n": 1}, "private": True},
            {"topic": "room-ok-write", "event": "h", "payload": {"n": 2}, "private": True}]})
        assert r.status_code == 202
    assert (await got_w.wait(2))[1]["payload"] == {"n": 2}
    assert await got.quiet(0.3) == []
    # a public channel of the same name is a different channel
    pub = anon.channel("room-ok-write")
    got_pub = Inbox()
    pub.on_broadcast("*", got_pub)
    await subscribed(pub)
    await w.send_broadcast("x", {"private": 1})
    await got_w.wait(3)
    assert await got_pub.quiet(0.3) == []
    for c in (allowed, refused, anon):
        await c.close()


async def test_handshake_rejects_bad_apikey(rt_server):
    url = rt_server.url.replace("http", "ws") + "/realtime/v1/websocket?vsn=1.0.0&apikey=garbage"
    try:
        async with websockets.connect(url):
            raise AssertionError("connected with a bad key")
    except websockets.InvalidStatus as exc:
        assert exc.response.status_code == 401
        assert b"not a valid JWT" in exc.response.body
