"""Degraded, not down (issue 19, item 1, realtime part): two ownbase processes share a Redis of
the test's own; Redis is killed (-9) under load, then started again empty.

While it is down, broadcasts, presence, joins and postgres_changes keep working within each
process (no phx_error, no closed channel) and the process logs that it is degraded; once Redis
is back, cross-process fan-out resumes by itself and presence is re-published, so a new joiner on
the other process sees the socket that stayed tracked through the outage."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import redis.asyncio as aioredis

from ownbase.embedded import free_port
from ownbase.realtime.bus import Broadcast, RedisBus
from tests.conftest import sql, wait_for_port
from tests.realtime.conftest import SCHEMA, Inbox, rt_client, run_sql, until

BAD_STATES = {"CHANNEL_ERROR", "CLOSED", "TIMED_OUT"}


class KillableRedis:
    """A redis-server of this test only, on a fixed port, that can be killed and started again
    (empty: no persistence)."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: the test command installs it (scripts/test)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture()
def killable_redis(tmp_root: Path) -> Iterator[KillableRedis]:
    redis = KillableRedis(tmp_root)
    redis.start()
    yield redis
    redis.stop()


async def subscribe(ch: Any, states: list[str]) -> None:
    """Subscribe through the official client, recording every status the channel reports."""
    await ch.subscribe(lambda status, err: states.append(str(getattr(status, "value", status))))
    await until(lambda: "SUBSCRIBED" in states)


@pytest.fixture()
def cluster(server_factory, killable_redis):
    # Rate limits would answer HTTP broadcasts 500 without Redis until the limiter degrades too
    # (another change); they are off here so this test sees realtime alone.
    env = {"OWNBASE_REDIS_URL": killable_redis.url, "OWNBASE_REALTIME_PROCESS_TTL": "3",
           "OWNBASE_RATE_LIMIT_IP_PER_MINUTE": "0", "OWNBASE_RATE_LIMIT_USER_PER_MINUTE": "0"}
    one = server_factory(env)
    two = server_factory(env)
    sql(one, SCHEMA.read_text())
    yield one, two
    one.stop()
    two.stop()


async def test_realtime_survives_a_redis_outage(cluster, killable_redis):
    one, two = cluster
    name = "outage-" + uuid.uuid4().hex[:6]
    marker = uuid.uuid4().hex[:8]
    states: list[str] = []

    # a (tracked) and a2 on process one, b on process two: all on one channel
    a, a2, b = await rt_client(one), await rt_client(one), await rt_client(two)
    ca = a.channel(name, {"config": {"broadcast": {"self": True}, "presence": {"key": "a", "enabled": True}}})
    ca2 = a2.channel(name, {"config": {}})
    cb = b.channel(name, {"config": {"presence": {"key": "b", "enabled": True}}})
    got_a2, got_b, chg_a, chg_b = Inbox(), Inbox(), Inbox(), Inbox()
    ca.on_broadcast("*", Inbox())
    ca2.on_broadcast("*", got_a2)
    cb.on_broadcast("*", got_b)
    ca.on_postgres_changes("INSERT", chg_a, table="rt_items", filter=f"name=like.{marker}%")
    cb.on_postgres_changes("INSERT", chg_b, table="rt_items", filter=f"name=like.{marker}%")
    for ch in (ca, ca2, cb):
        await subscribe(ch, states)
    await ca.track({"p": "a"})

    # shared mode first: a broadcast from process one reaches process two
    await ca.send_broadcast("before", {"n": 0})
    await got_b.wait(lambda items: any(i["event"] == "before" for i in items))

    # load: one broadcast every 20 ms from process one, through the kill and the restart
    sent = 0
    stop = asyncio.Event()

    async def load() -> None:
        nonlocal sent
        while not stop.is_set():
            sent += 1
            await ca.send_broadcast("load", {"n": sent})
            await asyncio.sleep(0.02)

    loader = asyncio.create_task(load())
    await asyncio.sleep(0.3)
    killable_redis.kill()
    await asyncio.sleep(1.5)  # every process has noticed

    # --- Redis down -----------------------------------------------------------------------------
    # broadcasts still reach the sockets of the same process
    for i in range(5):
        await ca.send_broadcast("down", {"i": i})
    await got_a2.wait(lambda items: sum(1 for x in items if x["event"] == "down") == 5)
    # HTTP broadcast is accepted and delivered in-process
    async with httpx.AsyncClient(base_url=one.url, headers={"apikey": one.anon_key}) as http:
        r = await http.post("/realtime/v1/api/broadcast",
                            json={"messages": [{"topic": name, "event": "http-down", "payload": {}}]})
        assert r.status_code == 202, r.text
    await got_a2.wait(lambda items: any(x["event"] == "http-down" for x in items))
    # new joins (with presence) and tracks work on either process
    c2 = await rt_client(two)
    cc = c2.channel(name, {"config": {"presence": {"key": "c", "enabled": True}}})
    sync_c = Inbox()
    cc.on_presence_sync(lambda: sync_c(dict(cc.presence_state())))
    await subscribe(cc, states)
    await cc.track({"p": "c"})
    await sync_c.wait(lambda items: "c" in items[-1])
    # postgres_changes reach subscribers on both processes (each reads the log for itself)
    await run_sql(one, f"insert into rt_items(name, qty) values ('{marker}-down', 1)")
    await chg_a.wait(lambda items: any(d["data"]["record"]["name"] == f"{marker}-down" for d in items))
    await chg_b.wait(lambda items: any(d["data"]["record"]["name"] == f"{marker}-down" for d in items))
    assert "Redis unreachable" in one.log() and "Redis unreachable" in two.log()

    # --- Redis back, empty ----------------------------------------------------------------------
    killable_redis.start()
    await until(lambda: "Redis reachable again" in one.log() and "Redis reachable again" in two.log(),
                timeout=30)
    stop.set()
    await loader

    # cross-process fan-out resumed by itself: process two hears process one, and back
    async def crossed() -> bool:
        await ca.send_broadcast("after", {"from": "a"})
        await asyncio.sleep(0.2)
        return any(i["event"] == "after" for i in got_b.items)

    await until(crossed, timeout=30)
    await cb.send_broadcast("after-b", {"from": "b"})
    await got_a2.wait(lambda items: any(x["event"] == "after-b" for x in items))

    # presence re-published: a new joiner on process two sees `a` (tracked on process one since
    # before the outage, still connected) and `c` (tracked on process two during the outage)
    d = await rt_client(two)
    cd = d.channel(name, {"config": {"presence": {"key": "d", "enabled": True}}})
    sync_d = Inbox()
    cd.on_presence_sync(lambda: sync_d(dict(cd.presence_state())))
    await subscribe(cd, states)
    await sync_d.wait(lambda items: {"a", "c"} <= set(items[-1]))

    # changes are shared again: one insert, delivered exactly once on each process
    await asyncio.sleep(1.0)
    await run_sql(one, f"insert into rt_items(name, qty) values ('{marker}-after', 2)")
    await chg_a.wait(lambda items: any(x["data"]["record"]["name"] == f"{marker}-after" for x in items))
    await chg_b.wait(lambda items: any(x["data"]["record"]["name"] == f"{marker}-after" for x in items))
    await chg_b.quiet(1.0)
    for box in (chg_a, chg_b):
        assert [x["data"]["record"]["name"] for x in box.items].count(f"{marker}-after") == 1

    assert sent > 20
    assert not BAD_STATES & set(states), states  # no phx_error, no closed or refused join
    for client in (a, a2, b, c2, d):
        await client.close()


async def test_bus_reports_degraded_and_recovers(killable_redis):
    """The flag /ready reads (``Hub.degraded`` combines the bus's and presence's): set while Redis
    is unreachable, cleared by itself when it is back; messages are delivered locally meanwhile."""
    client = aioredis.from_url(killable_redis.url)
    got: list[Broadcast] = []
    transitions: list[bool] = []

    async def handler(message: Any) -> None:
        got.append(message)

    bus = RedisBus(client, "ownbase:test:" + uuid.uuid4().hex, on_change=transitions.append)
    await bus.start(handler)
    try:
        assert bus.degraded is False
        await bus.publish(Broadcast("pub:x", {"n": 1}))
        await until(lambda: len(got) == 1)
        killable_redis.kill()
        await until(lambda: bus.degraded)
        await bus.publish(Broadcast("pub:x", {"n": 2}, "sender"))
        assert got[-1] == Broadcast("pub:x", {"n": 2}, "sender") and bus.local_deliveries == 1
        killable_redis.start()
        await until(lambda: not bus.degraded, timeout=15)
        await bus.publish(Broadcast("pub:x", {"n": 3}))
        await until(lambda: len(got) == 3)
        assert [m.payload["n"] for m in got] == [1, 2, 3] and bus.local_deliveries == 1
        assert transitions == [True, False]
    finally:
        await bus.close()
        await client.aclose()
