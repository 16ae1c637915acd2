from __future__ import annotations

import asyncio

from realtime import AsyncRealtimeClient

from tests.conftest import sql
from tests.realtime.conftest import Inbox, subscribed, ws_url


async def test_smoke(rt_server):
    a = AsyncRealtimeClient(ws_url(rt_server), rt_server.anon_key)
    b = AsyncRealtimeClient(ws_url(rt_server), rt_server.anon_key)
    await a.connect(); await b.connect()
    ca = a.channel("room1")
    cb = b.channel("room1")
    inbox = Inbox()
    cb.on_broadcast("msg", inbox)
    changes = Inbox()
    cb.on_postgres_changes("*", changes, table="rt_items")
    await subscribed(ca); await subscribed(cb)
    await ca.send_broadcast("msg", {"hello": 1})
    got = await inbox.wait(1)
    print(got)
    await asyncio.to_thread(sql, rt_server, "insert into rt_items(name, qty) values ('a', 1)")
    got = await changes.wait(1)
    print(got)
    await a.close(); await b.close()
