"""Presence (join / leave / diff, cleanup when a client is killed) and tokens on an open socket
(refresh with set_auth, expiry closes the channel with a system error)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid

import websockets

from tests.realtime.conftest import Inbox, rt_client, run_sql, subscribed, ws_url


async def test_presence_join_diff_leave(rt_server):
    a = await rt_client(rt_server)
    b = await rt_client(rt_server)
    name = "lobby-" + uuid.uuid4().hex[:6]
    ca = a.channel(name, {"config": {"presence": {"key": "alice", "enabled": True}}})
    cb = b.channel(name, {"config": {"presence": {"key": "bob", "enabled": True}}})
    joins_b, leaves_b, sync_b = Inbox(), Inbox(), Inbox()
    cb.on_presence_join(lambda key, cur, new: joins_b((key, new)))
    cb.on_presence_leave(lambda key, cur, left: leaves_b((key, left)))
    cb.on_presence_sync(lambda: sync_b(dict(cb.presence_state())))
    await subscribed(ca)
    await subscribed(cb)
    await ca.track({"status": "online"})
    await joins_b.wait(lambda items: any(k == "alice" for k, _ in items))
    await sync_b.wait(lambda items: "alice" in items[-1])
    state = cb.presence_state()
    assert state["alice"][0]["status"] == "online" and "presence_ref" in state["alice"][0]
    # re-track replaces alice's meta: new one joins, the old one leaves
    await ca.track({"status": "away"})
    await leaves_b.wait(1)
    await sync_b.wait(lambda items: items[-1].get("alice", [{}])[0].get("status") == "away")
    assert len(cb.presence_state()["alice"]) == 1
    await ca.untrack()
    await sync_b.wait(lambda items: "alice" not in items[-1])
    # a late joiner gets the current state on join
    await cb.track({"status": "here"})
    c = await rt_client(rt_server)
    cc = c.channel(name, {"config": {"presence": {"key": "carol", "enabled": True}}})
    sync_c = Inbox()
    cc.on_presence_sync(lambda: sync_c(dict(cc.presence_state())))
    await subscribed(cc)
    await sync_c.wait(lambda items: "bob" in items[-1])
    for cl in (a, b, c):
        await cl.close()


async def test_presence_cleanup_after_killed_client(rt_server):
    name = "kill-" + uuid.uuid4().hex[:6]
    watcher = await rt_client(rt_server)
    ch = watcher.channel(name, {"config": {"presence": {"key": "watcher", "enabled": True}}})
    sync = Inbox()
    ch.on_presence_sync(lambda: sync(dict(ch.presence_state())))
    await subscribed(ch)
    script = textwrap.dedent(f"""
        import asyncio, json, websockets
        async def main():
            ws = await websockets.connect({ws_url(rt_server) + "/websocket?vsn=1.0.0&apikey=" + rt_server.anon_key!r})
            await ws.send(json.dumps({{"join_ref": "1", "ref": "1", "topic": "realtime:{name}", "event": "phx_join",
                                      "payload": {{"config": {{"presence": {{"key": "victim", "enabled": True}}}}}}}}))
            await ws.recv()
            await ws.send(json.dumps({{"join_ref": "1", "ref": "2", "topic": "realtime:{name}", "event": "presence",
                                      "payload": {{"type": "presence", "event": "track", "payload": {{"x": 1}}}}}}))
            print("tracked", flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        await sync.wait(lambda items: "victim" in items[-1], timeout=20)
        os.kill(proc.pid, signal.SIGKILL)  # no close frame, no leave: the TCP connection just drops
    finally:
        proc.wait(10)
    await sync.wait(lambda items: "victim" not in items[-1], timeout=20)
    await watcher.close()


async def test_token_refresh_on_open_socket_and_expiry(rt_server, mint):
    uid = str(uuid.uuid4())
    short = mint(uid, ttl=4)
    c = await rt_client(rt_server, token=short)
    ch = c.channel("tok-" + uuid.uuid4().hex[:6])
    box = Inbox()
    ch.on_postgres_changes("INSERT", box, table="rt_notes", filter=f"owner=eq.{uid}")
    await subscribed(ch)
    # refresh before expiry: the channel stays open and keeps delivering the user's rows
    await c.set_auth(mint(uid, ttl=3600))
    await asyncio.sleep(5)
    await run_sql(rt_server, f"insert into rt_notes(owner, body) values ('{uid}', 'still here')")
    assert (await box.wait(1))[0]["data"]["record"]["body"] == "still here"
    await c.close()

    # without a refresh, the channel is closed with a system error once the token expires
    url = ws_url(rt_server) + "/websocket?vsn=1.0.0&apikey=" + rt_server.anon_key
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"join_ref": "1", "ref": "1", "topic": "realtime:exp", "event": "phx_join",
                                  "payload": {"access_token": mint(uid, ttl=2)}}))
        assert json.loads(await ws.recv())["payload"]["status"] == "ok"
        system = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert system["event"] == "system"
        assert system["payload"]["status"] == "error" and system["payload"]["extension"] == "system"
        assert system["payload"]["message"].startswith("Token has expired")
        closed = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert closed["event"] == "phx_close" and closed["topic"] == "realtime:exp"
        # an expired token pushed on an open channel closes it the same way
        await ws.send(json.dumps({"join_ref": "2", "ref": "2", "topic": "realtime:exp2", "event": "phx_join",
                                  "payload": {"access_token": mint(uid, ttl=600)}}))
        assert json.loads(await ws.recv())["payload"]["status"] == "ok"
        await ws.send(json.dumps({"join_ref": "2", "ref": "3", "topic": "realtime:exp2", "event": "access_token",
                                  "payload": {"access_token": mint(uid, ttl=-10)}}))
        system = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert system["payload"]["message"].startswith("Token has expired")
