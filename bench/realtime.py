"""Realtime benchmark (not a test): one ownbase process, N concurrent sockets each joined to a
channel.

Prints, for each N: server memory per idle joined socket, broadcast fan-out latency p50/p99 (send
to receipt, one sender, every socket receives), delivered broadcast messages per second (a burst),
and postgres_changes commit-to-client latency p50/p99 (every socket subscribed to a table; the
clock starts just before the INSERT's commit is requested).

    python bench/realtime.py                 # N = 1000 and 10000
    python bench/realtime.py --sizes 1000,5000 --rounds 20

Clients and server share this machine's cores, so the figures include the client's own work of
parsing N frames per message; everything runs on loopback only and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ownbase.embedded import free_port  # noqa: E402


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


class Server:
    """An embedded PostgreSQL plus one ownbase process served by uvicorn as ``ownbase start`` runs
    it (uvloop, httptools, no permessage-deflate), with a choice of websocket implementation."""

    def __init__(self, tmp: Path, ws_impl: str) -> None:
        from ownbase.embedded import EmbeddedPostgres
        from ownbase.keys import build_keyring, generate_private_key_pem
        from ownbase.settings import Settings

        self.tmp = tmp
        self.pg = EmbeddedPostgres(tmp / "pg")
        self.pg.start()
        self.db_url = self.pg.url()
        self.port = free_port()
        pem = generate_private_key_pem("RS256")
        self.anon = build_keyring(Settings(jwt_private_key=pem)).anon_key
        env = {**os.environ, "OWNBASE_LOG_LEVEL": "warning", "OWNBASE_RATE_LIMIT_IP_PER_MINUTE": "0",
               "OWNBASE_RATE_LIMIT_USER_PER_MINUTE": "0", "OWNBASE_DATABASE_URL": self.db_url,
               "OWNBASE_JWT_PRIVATE_KEY": pem, "OWNBASE_DATA_DIR": str(tmp / "data"),
               "OWNBASE_PORT": str(self.port)}
        launcher = (
            "import uvicorn; uvicorn.run('ownbase.app:create_app', factory=True, host='127.0.0.1', "
            f"port={self.port}, loop='uvloop', http='httptools', ws={ws_impl!r}, log_config=None, "
            "access_log=False, backlog=4096, ws_per_message_deflate=False)"
        )
        self.log = open(tmp / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", launcher], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=str(tmp))
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("server exited: " + (tmp / "server.log").read_text()[-3000:])
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)

    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/realtime/v1/websocket?vsn=1.0.0&apikey={self.anon}"

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.pg.stop()


def client_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Client:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.bcast: list[tuple[float, float]] = []  # (sent, received)
        self.changes: list[tuple[float, float]] = []
        self.task = asyncio.create_task(self.loop())

    async def loop(self) -> None:
        try:
            async for raw in self.ws:
                now = time.time()
                msg = json.loads(raw)
                ev = msg.get("event")
                if ev == "broadcast":
                    self.bcast.append((msg["payload"]["payload"]["t"], now))
                elif ev == "postgres_changes":
                    self.changes.append((msg["payload"]["data"]["record"]["t"], now))
        except websockets.ConnectionClosed:
            pass


async def open_clients(server: Server, n: int, topic: str, pg: bool, conc: int = 100,
                       into: list[Client] | None = None) -> list[Client]:
    clients: list[Client] = into if into is not None else []
    sem = asyncio.Semaphore(conc)
    config: dict = {"broadcast": {"self": False}}
    if pg:
        config["postgres_changes"] = [{"event": "INSERT", "schema": "public", "table": "bench_rows"}]

    async def one() -> None:
        async with sem:
            for attempt in range(5):
                try:
                    ws = await websockets.connect(server.ws(), ping_interval=None, max_queue=None,
                                                  open_timeout=60, close_timeout=1)
                    break
                except (OSError, websockets.InvalidHandshake, asyncio.TimeoutError):
                    await asyncio.sleep(0.5 * (attempt + 1))
            else:
                raise RuntimeError("could not connect")
            await ws.send(json.dumps({"join_ref": "1", "ref": "1", "topic": topic, "event": "phx_join",
                                      "payload": {"config": config}}))
            reply = json.loads(await ws.recv())
            assert reply["payload"]["status"] == "ok", reply
            clients.append(Client(ws))

    await asyncio.gather(*(one() for _ in range(n)))
    return clients


async def heartbeat(clients: list[Client], stop: asyncio.Event) -> None:
    """Keep every socket inside the server's heartbeat timeout, as real clients do (25 s)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 15)
        except asyncio.TimeoutError:
            for i, c in enumerate(list(clients)):
                try:
                    await c.ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": f"h{i}"}))
                except websockets.ConnectionClosed:
                    pass


async def run_size(server: Server, n: int, rounds: int, burst: int) -> dict:
    topic = f"realtime:bench-{n}"
    base = rss_kb(server.proc.pid)
    t0 = time.monotonic()
    clients: list[Client] = []
    stop = asyncio.Event()
    hb = asyncio.create_task(heartbeat(clients, stop))  # also while the others are still connecting
    await open_clients(server, n, topic, pg=True, into=clients)
    connect_s = time.monotonic() - t0
    await asyncio.sleep(2.0)
    joined = rss_kb(server.proc.pid)
    per_conn = (joined - base) * 1024 / n

    async def settle(count, expected: int, limit: float = 15.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and count() < expected:
            await asyncio.sleep(0.01)

    # broadcast fan-out latency: one message at a time; the next one is sent once every socket
    # has the previous one (so the figure is fan-out time, not queueing behind earlier rounds)
    sender = (await open_clients(server, 1, topic, pg=False))[0]
    # one warm-up message of each kind (first-use code paths, caches), not measured
    await sender.ws.send(json.dumps({"join_ref": "1", "ref": None, "topic": topic, "event": "broadcast",
                                     "payload": {"type": "broadcast", "event": "b", "payload": {"t": time.time(), "i": -1}}}))
    await settle(lambda: sum(len(c.bcast) for c in clients), n)
    warm = await asyncpg.connect(server.db_url)
    await warm.execute("insert into bench_rows(t) values ($1)", time.time())
    await warm.close()
    await settle(lambda: sum(len(c.changes) for c in clients), n)
    for c in clients:
        c.bcast.clear()
        c.changes.clear()
    for i in range(rounds):
        await sender.ws.send(json.dumps({"join_ref": "1", "ref": None, "topic": topic, "event": "broadcast",
                                         "payload": {"type": "broadcast", "event": "b", "payload": {"t": time.time(), "i": i}}}))
        await settle(lambda: sum(len(c.bcast) for c in clients), n * (i + 1))
        await asyncio.sleep(0.1)
    lat = [(r - s) * 1000 for c in clients for s, r in c.bcast]
    delivered_ok = sum(len(c.bcast) for c in clients) == n * rounds

    # postgres_changes: commit-to-client latency, one committed INSERT at a time
    conn = await asyncpg.connect(server.db_url)
    for i in range(rounds):
        t = time.time()
        await conn.execute("insert into bench_rows(t) values ($1)", t)
        await settle(lambda: sum(len(c.changes) for c in clients), n * (i + 1))
        await asyncio.sleep(0.1)
    await conn.close()
    pg_lat = [(r - s) * 1000 for c in clients for s, r in c.changes]
    pg_ok = sum(len(c.changes) for c in clients) == n * rounds

    # throughput: a burst of messages, counted until every copy has arrived (bounded wait)
    for c in clients:
        c.bcast.clear()
    cpu_srv, cpu_cli = server.cpu_s(), client_cpu_s()
    start = time.time()
    for i in range(burst):
        await sender.ws.send(json.dumps({"join_ref": "1", "ref": None, "topic": topic, "event": "broadcast",
                                         "payload": {"type": "broadcast", "event": "b", "payload": {"t": time.time(), "i": i}}}))
    await settle(lambda: sum(len(c.bcast) for c in clients), n * burst, 120)
    got = sum(len(c.bcast) for c in clients)
    last = max((r for c in clients for _, r in c.bcast), default=start)
    rate = got / max(1e-6, last - start)
    srv_us = (server.cpu_s() - cpu_srv) / max(1, got) * 1e6
    cli_us = (client_cpu_s() - cpu_cli) / max(1, got) * 1e6
    dropped = sum(1 for c in clients if c.task.done())

    stop.set()
    hb.cancel()
    for c in clients + [sender]:
        await c.ws.close()
        c.task.cancel()
    await asyncio.sleep(1.0)
    return {
        "n": n, "connect_s": connect_s, "bytes_per_socket": per_conn,
        "bcast_p50": statistics.median(lat) if lat else float("nan"), "bcast_p99": pct(lat, 99),
        "bcast_complete": delivered_ok, "msgs_per_s": rate, "burst_delivered": got, "burst_expected": n * burst,
        "server_cpu_us_per_msg": srv_us, "sockets_closed_by_server": dropped, "client_cpu_us_per_msg": cli_us,
        "pg_p50": statistics.median(pg_lat) if pg_lat else float("nan"), "pg_p99": pct(pg_lat, 99),
        "pg_complete": pg_ok,
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--burst", type=int, default=20)
    ap.add_argument("--ws", default="websockets", help="uvicorn websocket implementation (ownbase start: websockets)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = Path(tempfile.mkdtemp(prefix="ownbase-bench-rt-"))
    server = Server(tmp, args.ws)
    results = []
    try:
        conn = await asyncpg.connect(server.db_url)
        await conn.execute("""
            create table if not exists bench_rows (id bigserial primary key, t double precision);
            alter publication supabase_realtime add table bench_rows;""")
        await conn.close()
        for n in [int(x) for x in args.sizes.split(",")]:
            try:
                res = await run_size(server, n, args.rounds, args.burst)
            except Exception as exc:  # noqa: BLE001 - report the largest N that worked
                print(f"N={n}: failed: {exc!r}")
                break
            results.append(res)
            print(json.dumps(res), flush=True)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"{'N':>7} {'connect s':>9} {'KB/socket':>9} {'bcast p50':>9} {'bcast p99':>9} {'msg/s':>9} "
          f"{'pg p50':>8} {'pg p99':>8}  complete")
    for r in results:
        print(f"{r['n']:>7} {r['connect_s']:>9.1f} {r['bytes_per_socket'] / 1024:>9.1f} {r['bcast_p50']:>8.1f}ms "
              f"{r['bcast_p99']:>7.1f}ms {r['msgs_per_s']:>9.0f} {r['pg_p50']:>6.1f}ms {r['pg_p99']:>6.1f}ms  "
              f"bcast={r['bcast_complete']} pg={r['pg_complete']} burst={r['burst_delivered']}/{r['burst_expected']}")
    for r in results:
        print(f"N={r['n']}: server CPU {r['server_cpu_us_per_msg']:.1f} us and client CPU "
              f"{r['client_cpu_us_per_msg']:.1f} us per delivered message (both on this machine's 2 cores)")
    print(f"uvicorn websocket implementation: {args.ws}")
    print("targets: 1,000 sockets with broadcast p99 < 50 ms, postgres_changes p99 < 100 ms, < 50 KB per idle socket")


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
