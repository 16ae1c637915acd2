"""Several ownbase processes joined by a real Redis — over TLS with AUTH (rediss://), as ElastiCache
runs it: broadcast, presence and postgres_changes reach clients on every process exactly once, and
a killed process's presence entries expire."""

from __future__ import annotations

import asyncio
import signal
import uuid

import httpx
import pytest

from tests.realtime.conftest import SCHEMA, Inbox, rt_client, run_sql, subscribed
from tests.conftest import sql


@pytest.fixture(scope="module")
def cluster(server_factory, tls_redis_url):
    env = {"OWNBASE_REDIS_URL": tls_redis_url, "OWNBASE_REALTIME_PROCESS_TTL": "3"}
    one = server_factory(env)
    two = server_factory(env)
    sql(one, SCHEMA.read_text())
    yield one, two
    one.stop()
    two.stop()


async def test_broadcast_presence_and_changes_across_processes(cluster, server_factory, tls_redis_url):
    one, two = cluster
    a = await rt_client(one)
    b = await rt_client(two)
    name = "multi-" + uuid.uuid4().hex[:6]
    ca = a.channel(name, {"config": {"presence": {"key": "a", "enabled": True}}})
    cb = b.channel(name, {"config": {"presence": {"key": "b", "enabled": True}}})
    got_a, got_b, chg_a, chg_b = Inbox(), Inbox(), Inbox(), Inbox()
    ca.on_broadcast("*", got_a)
    cb.on_broadcast("*", got_b)
    marker = uuid.uuid4().hex[:8]
    ca.on_postgres_changes("INSERT", chg_a, table="rt_items", filter=f"name=like.{marker}%")
    cb.on_postgres_changes("INSERT", chg_b, table="rt_items", filter=f"name=like.{marker}%")
    sync_a, sync_b = Inbox(), Inbox()
    ca.on_presence_sync(lambda: sync_a(dict(ca.presence_state())))
    cb.on_presence_sync(lambda: sync_b(dict(cb.presence_state())))
    await subscribed(ca)
    await subscribed(cb)

    # broadcast both ways, plus HTTP broadcast through process one
    await ca.send_broadcast("hello", {"from": "a"})
    await cb.send_broadcast("hello", {"from": "b"})
    async with httpx.AsyncClient(base_url=one.url, headers={"apikey": one.anon_key}) as http:
        r = await http.post("/realtime/v1/api/broadcast",
                            json={"messages": [{"topic": name, "event": "http", "payload": {"n": 1}}]})
        assert r.status_code == 202
    await got_a.wait(2)
    await got_b.wait(2)

    # presence both ways
    await ca.track({"p": "a"})
    await cb.track({"p": "b"})
    await sync_a.wait(lambda items: {"a", "b"} <= set(items[-1]))
    await sync_b.wait(lambda items: {"a", "b"} <= set(items[-1]))

    # changes: each subscriber gets each row exactly once, whichever process leads
    for i in range(5):
        await run_sql(one, f"insert into rt_items(name, qty) values ('{marker}-{i}', {i})")
    await chg_a.wait(5)
    await chg_b.wait(5)
    await asyncio.sleep(1.0)
    assert sorted(p["event"] for p in got_a.items) == ["hello", "http"]
    assert sorted(p["event"] for p in got_b.items) == ["hello", "http"]
    assert [d["data"]["record"]["qty"] for d in chg_a.items] == [0, 1, 2, 3, 4]
    assert [d["data"]["record"]["qty"] for d in chg_b.items] == [0, 1, 2, 3, 4]

    # a third process is killed (SIGKILL: no cleanup): its presence entries expire for the others
    three = server_factory({"OWNBASE_REDIS_URL": tls_redis_url, "OWNBASE_REALTIME_PROCESS_TTL": "3"})
    c = await rt_client(three)
    cc = c.channel(name, {"config": {"presence": {"key": "c", "enabled": True}}})
    await subscribed(cc)
    await cc.track({"p": "c"})
    await sync_a.wait(lambda items: "c" in items[-1])
    await sync_b.wait(lambda items: "c" in items[-1])
    c.auto_reconnect = False
    three.stop(signal.SIGKILL)
    await sync_a.wait(lambda items: "c" not in items[-1], timeout=30)
    await sync_b.wait(lambda items: "c" not in items[-1], timeout=30)
    assert {"a", "b"} <= set(sync_a.items[-1])
    for cl in (a, b):
        await cl.close()
