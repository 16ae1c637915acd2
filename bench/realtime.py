"""Realtime benchmark (not a test): ownbase started as ``ownbase start`` starts it, N concurrent
sockets each joined to one channel with a postgres_changes binding, and issue 16's targets.

    python bench/realtime.py                       # N = 1000 and 10000, then --workers 2 + Redis at 10000
    python bench/realtime.py --sizes 1000 --workers2 0 --profile /tmp/rt.prof   # one size, cProfile

For each N it measures: server memory per idle joined socket (RSS delta / N); broadcast fan-out
latency p50/p99 (send to receipt, one message at a time, every socket receives); postgres_changes
commit-to-client latency p50/p99 (the clock starts just before the INSERT's commit is requested);
server CPU per delivered message, for those one-at-a-time rounds ("paced": from each send until
every socket has it; and the same for changes) and for a burst of back-to-back broadcasts
("burst", how the issue's 13.5 us was measured); lost and duplicated deliveries. With
``--workers2 N`` it repeats the run with two processes behind a private redis-server and checks
that both processes hold sockets and that every message reached every socket exactly once.
It ends with one line per target: target, measured, met / NOT met.

The load client shares the machine's cores with the server, so it is kept cheap: a minimal
asyncio WebSocket client (one Protocol per socket, frames parsed in place, no task per socket).
CPU-time figures are much less sensitive to other load than latencies; the load average is
printed with each run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ownbase.embedded import free_port  # noqa: E402



def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))]


def load_avg() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- server ------------------------------------------------------------------------------------
class Server:
    """An embedded PostgreSQL, optionally a private redis-server, and ``ownbase start``."""

    def __init__(self, tmp: Path, workers: int = 1, profile: str | None = None) -> None:
        from ownbase.embedded import EmbeddedPostgres
        from ownbase.keys import build_keyring, generate_private_key_pem
        from ownbase.settings import Settings

        self.tmp = tmp
        self.pg = EmbeddedPostgres(tmp / "pg")
        self.pg.start()
        self.db_url = self.pg.url()
        self.redis: subprocess.Popen[bytes] | None = None
        self.port = free_port()
        pem = generate_private_key_pem("RS256")
        self.anon = build_keyring(Settings(jwt_private_key=pem)).anon_key
        env = {**os.environ, "OWNBASE_LOG_LEVEL": "warning", "OWNBASE_RATE_LIMIT_IP_PER_MINUTE": "0",
               "OWNBASE_RATE_LIMIT_USER_PER_MINUTE": "0", "OWNBASE_DATABASE_URL": self.db_url,
               "OWNBASE_JWT_PRIVATE_KEY": pem}
        if workers > 1:
            rport = free_port()
            self.redis = subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            env["OWNBASE_REDIS_URL"] = f"redis://127.0.0.1:{rport}/0"
        args = ["start", "--data-dir", str(tmp / "data"), "--port", str(self.port), "--workers", str(workers)]
        if profile:  # CPU time, not wall time: other processes on the machine do not count
            cmd = [sys.executable, "-c",
                   "import cProfile, runpy, sys, time; sys.argv = ['ownbase', *sys.argv[1:]]; "
                   "p = cProfile.Profile(time.process_time); p.enable()\n"
                   "try: runpy.run_module('ownbase', run_name='__main__')\n"
                   f"except SystemExit: pass\nfinally: p.disable(); p.dump_stats({profile!r})", *args]
        else:
            cmd = [sys.executable, "-m", "ownbase", *args]
        self.log = open(tmp / "server.log", "wb")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=str(tmp))
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("server did not start: " + (tmp / "server.log").read_text()[-3000:])
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        time.sleep(1.0 if workers > 1 else 0)  # every worker up, not only the first

    def pids(self) -> list[int]:
        """The processes serving sockets: the uvicorn workers, or the one process."""
        kids: list[int] = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            kids += [int(x) for x in (task / "children").read_text().split()]
        workers = [k for k in kids if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text()]
        return workers or [self.proc.pid]

    def cpu_s(self) -> float:
        """CPU seconds of the serving processes, every thread, at nanosecond resolution
        (schedstat's first field; /proc/<pid>/stat counts 10 ms ticks)."""
        total = 0
        for pid in set(self.pids()) | {self.proc.pid}:
            for task in Path(f"/proc/{pid}/task").iterdir():
                try:
                    total += int((task / "schedstat").read_text().split()[0])
                except (OSError, IndexError, ValueError):
                    pass
        return total / 1e9

    def rss_kb(self) -> int:
        total = 0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total

    def sockets_per_worker(self) -> list[int]:
        counts = []
        for pid in self.pids():
            n = 0
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    n += os.readlink(fd).startswith("socket:")
                except OSError:
                    pass
            counts.append(n)
        return counts

    def ws_path(self) -> str:
        return f"/realtime/v1/websocket?vsn=1.0.0&apikey={self.anon}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)
        self.pg.stop()


def client_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# --- a minimal websocket client ------------------------------------------------------------------
COUNTS = {"bcast": 0, "changes": 0}  # over every client, so waiting for N copies costs nothing
class WsClient(asyncio.Protocol):
    """One socket. Server frames are unmasked; ours use the all-zero mask key (legal, and the
    payload stays as is). Records (index, sent time, received time) per broadcast and change."""

    def __init__(self, path: str, port: int) -> None:
        self.path, self.port = path, port
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = asyncio.get_running_loop().create_future()
        self.upgraded = False
        self.closed_code: int | None = None
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.bcast: list[tuple[int, float, float]] = []
        self.changes: list[tuple[int, float, float]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(  # type: ignore[attr-defined]
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed_code is None:
            self.closed_code = 1006
        if not self.open.done():
            self.open.set_exception(ConnectionError("closed during the handshake"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:12])
            del buf[:end + 4]
            if b" 101" not in status:
                self.open.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self.upgraded = True
            self.open.set_result(None)
        off, size = 0, len(buf)
        while size - off >= 2:
            op, n = buf[off] & 0x0F, buf[off + 1] & 0x7F
            head = 2
            if n == 126:
                if size - off < 4:
                    break
                n, head = struct.unpack_from("!H", buf, off + 2)[0], 4
            elif n == 127:
                if size - off < 10:
                    break
                n, head = struct.unpack_from("!Q", buf, off + 2)[0], 10
            if size - off < head + n:
                break
            payload = bytes(buf[off + head:off + head + n])
            off += head + n
            if op == 1:
                self.message(payload, now)
            elif op == 8:
                self.closed_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            elif op == 9:
                self.write(payload, 0xA)
        del buf[:off]

    def message(self, raw: bytes, now: float) -> None:
        msg = orjson.loads(raw)
        ev = msg["event"]
        if ev == "broadcast":
            p = msg["payload"]["payload"]
            self.bcast.append((p["i"], p["t"], now))
            COUNTS["bcast"] += 1
        elif ev == "postgres_changes":
            r = msg["payload"]["data"]["record"]
            self.changes.append((r["id"], r["t"], now))
            COUNTS["changes"] += 1
        elif ev == "phx_reply" and msg["topic"] != "phoenix":
            self.replies.put_nowait(msg)

    def write(self, payload: bytes, op: int = 1) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | op, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | op, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | op, 0x80 | 127, n)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(head + b"\0\0\0\0" + payload)

    def send(self, obj: Any) -> None:
        self.write(orjson.dumps(obj))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_clients(server: Server, n: int, topic: str, pg: bool, into: list[WsClient],
                       conc: int = 100) -> None:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(conc)
    config: dict[str, Any] = {"broadcast": {"self": False}}
    if pg:
        config["postgres_changes"] = [{"event": "INSERT", "schema": "public", "table": "bench_rows"}]

    async def one() -> None:
        async with sem:
            for attempt in range(8):
                try:
                    _, c = await loop.create_connection(lambda: WsClient(server.ws_path(), server.port),
                                                        "127.0.0.1", server.port)
                    await asyncio.wait_for(c.open, 60)
                    break
                except (OSError, ConnectionError, asyncio.TimeoutError):
                    await asyncio.sleep(0.5 * (attempt + 1))
            else:
                raise RuntimeError("could not connect")
            c.send({"join_ref": "1", "ref": "1", "topic": topic, "event": "phx_join", "payload": {"config": config}})
            reply = await asyncio.wait_for(c.replies.get(), 60)
            assert reply["payload"]["status"] == "ok", reply
            into.append(c)

    await asyncio.gather(*(one() for _ in range(n)))


async def heartbeat(clients: list[WsClient], stop: asyncio.Event) -> None:
    """Keep every socket inside the server's heartbeat timeout (a heartbeat every 15 s), spread
    over the interval as independent clients' heartbeats are, not 10,000 at once."""
    tick = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1)
        except asyncio.TimeoutError:
            tick += 1
            for i, c in enumerate(list(clients)):
                if i % 15 == tick % 15:
                    c.send({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": f"h{i}"})


SLOWEST = {"settle_s": 0.0, "timeouts": 0}  # the slowest wait for all copies of one message


async def settle(count: Callable[[], int], expected: int, limit: float = 30.0) -> None:
    start = time.monotonic()
    deadline = start + limit
    while time.monotonic() < deadline and count() < expected:
        await asyncio.sleep(0.005)
    SLOWEST["settle_s"] = max(SLOWEST["settle_s"], time.monotonic() - start)
    SLOWEST["timeouts"] += count() < expected


def exactly_once(clients: list[WsClient], attr: str, ids: set[int]) -> tuple[int, int]:
    """(lost, duplicated) deliveries of the messages `ids` over all clients."""
    lost = dup = 0
    for c in clients:
        got = [i for i, _, _ in getattr(c, attr) if i in ids]
        seen = set(got)
        lost += len(ids - seen)
        dup += len(got) - len(seen)
    return lost, dup


async def run_size(server: Server, n: int, rounds: int, burst: int) -> dict[str, Any]:
    SLOWEST.update(settle_s=0.0, timeouts=0)
    COUNTS.update(bcast=0, changes=0)  # the previous size's clients counted here too
    topic = f"realtime:bench-{n}"
    base = server.rss_kb()
    t0 = time.monotonic()
    clients: list[WsClient] = []
    stop = asyncio.Event()
    hb = asyncio.create_task(heartbeat(clients, stop))  # also while the others are still connecting
    await open_clients(server, n, topic, pg=True, into=clients)
    connect_s = time.monotonic() - t0
    await asyncio.sleep(3.0)
    per_conn = (server.rss_kb() - base) * 1024 / n
    spread = server.sockets_per_worker()
    total = lambda attr: lambda: COUNTS[attr]  # noqa: E731

    def clear(attr: str) -> None:
        for c in clients:
            getattr(c, attr).clear()
        COUNTS[attr] = 0

    senders: list[WsClient] = []
    await open_clients(server, 1, topic, pg=False, into=senders)
    sender = senders[0]
    hb_sender = asyncio.create_task(heartbeat(senders, stop))

    def bcast(i: int) -> None:
        sender.send({"join_ref": "1", "ref": None, "topic": topic, "event": "broadcast",
                     "payload": {"type": "broadcast", "event": "b", "payload": {"t": time.time(), "i": i}}})

    # one warm-up message of each kind (first-use code paths, caches), not measured
    bcast(-1)
    await settle(total("bcast"), n)
    db = await asyncpg.connect(server.db_url)
    await db.execute("insert into bench_rows(t) values ($1)", time.time())
    await settle(total("changes"), n)
    clear("bcast")
    clear("changes")

    # the server's CPU while idle (sweeper, change-log polls, heartbeats), for reference
    cpu0, t_idle = server.cpu_s(), time.monotonic()
    await asyncio.sleep(3.0)
    idle_rate = (server.cpu_s() - cpu0) / (time.monotonic() - t_idle)

    # broadcast: one message at a time, the next once every socket has the previous one; the
    # "paced" CPU counts only from each send until every socket has the message
    busy = 0.0
    for i in range(rounds):
        cpu0 = server.cpu_s()
        bcast(i)
        await settle(total("bcast"), n * (i + 1))
        busy += server.cpu_s() - cpu0
        await asyncio.sleep(0.1)
    paced_us = busy / max(1, total("bcast")()) * 1e6
    lat = [(r - s) * 1000 for c in clients for _, s, r in c.bcast]
    b_lost, b_dup = exactly_once(clients, "bcast", set(range(rounds)))

    # postgres_changes: commit-to-client latency, one committed INSERT at a time
    ids = []
    busy = 0.0
    for i in range(rounds):
        cpu0 = server.cpu_s()
        ids.append(await db.fetchval("insert into bench_rows(t) values ($1) returning id", time.time()))
        await settle(total("changes"), n * (i + 1))
        busy += server.cpu_s() - cpu0
        await asyncio.sleep(0.1)
    pg_us = busy / max(1, total("changes")()) * 1e6
    await db.close()
    pg_lat = [(r - s) * 1000 for c in clients for _, s, r in c.changes]
    c_lost, c_dup = exactly_once(clients, "changes", set(ids))

    # throughput: a burst of messages, counted until every copy has arrived (bounded wait)
    clear("bcast")
    cpu_srv, cpu_cli = server.cpu_s(), client_cpu_s()
    start = time.time()
    for i in range(burst):
        bcast(rounds + i)
    await settle(total("bcast"), n * burst, 120)
    got = total("bcast")()
    last = max((r for c in clients for _, _, r in c.bcast), default=start)
    srv_us = (server.cpu_s() - cpu_srv) / max(1, got) * 1e6
    cli_us = (client_cpu_s() - cpu_cli) / max(1, got) * 1e6
    u_lost, u_dup = exactly_once(clients, "bcast", set(range(rounds, rounds + burst)))
    late = 0
    if b_lost + c_lost + u_lost:  # missing or only slow? give stragglers 15 s more
        await asyncio.sleep(15)
        late = (u_lost - exactly_once(clients, "bcast", set(range(rounds, rounds + burst)))[0]
                + c_lost - exactly_once(clients, "changes", set(ids))[0])
    closed = sum(1 for c in clients if c.closed_code is not None)
    short = sum(1 for c in clients if len(c.bcast) < burst)
    missing = [k for k, c in enumerate(clients) if len({i for i, _, _ in c.changes}) < rounds]

    stop.set()
    hb.cancel()
    hb_sender.cancel()
    for c in clients + senders:
        c.close()
    await asyncio.sleep(2.0)
    return {
        "n": n, "joined": len(clients), "connect_s": round(connect_s, 1), "kb_per_socket": round(per_conn / 1024, 1),
        "sockets_per_worker": spread,
        "bcast_p50": statistics.median(lat) if lat else float("nan"), "bcast_p99": pct(lat, 99),
        "pg_p50": statistics.median(pg_lat) if pg_lat else float("nan"), "pg_p99": pct(pg_lat, 99),
        "msgs_per_s": got / max(1e-6, last - start), "server_cpu_us_burst": srv_us,
        "server_cpu_us_paced": paced_us, "client_cpu_us_burst": cli_us, "server_idle_cpu_pct": idle_rate * 100,
        "server_cpu_us_pg": pg_us,
        "lost": b_lost + c_lost + u_lost, "duplicated": b_dup + c_dup + u_dup, "closed_by_server": closed,
        "lost_by_phase": {"paced": b_lost, "changes": c_lost, "burst": u_lost},
        "arrived_late": late, "sockets_short_of_burst": short, "slowest_settle_s": SLOWEST["settle_s"],
        "settle_timeouts": SLOWEST["timeouts"],
        "sockets_missing_changes": [len(missing), missing[:1], missing[-1:]],
        "load": load_avg(),
    }


async def run_server(tmp: Path, sizes: list[int], workers: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    server = Server(tmp, workers, args.profile if workers == 1 else None)
    results = []
    try:
        db = await asyncpg.connect(server.db_url)
        await db.execute("""
            create table if not exists bench_rows (id bigserial primary key, t double precision);
            alter publication supabase_realtime add table bench_rows;""")
        await db.close()
        for n in sizes:
            try:
                res = await run_size(server, n, args.rounds, args.burst)
            except Exception as exc:  # noqa: BLE001 - report the largest N that worked
                print(f"N={n} workers={workers}: failed: {exc!r}", flush=True)
                break
            res["workers"] = workers
            results.append(res)
            print(json.dumps(res), flush=True)
            if res["lost"] or res["closed_by_server"]:
                log = (tmp / "server.log").read_text(errors="replace")
                print("server log (tail):\n" + log[-4000:], flush=True)
    finally:
        server.stop()
    return results


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def targets(results: list[dict[str, Any]], sizes: list[int], workers2: int) -> list[tuple[str, str, str]]:
    one = {r["n"]: r for r in results if r["workers"] == 1}
    two = next((r for r in results if r["workers"] == 2), None)
    rows: list[tuple[str, str, str]] = []
    big, small = one.get(10_000), one.get(1_000)
    missing = ("not run", "-")
    rows.append(("10,000 sockets joined, one process",
                 *((f"{big['joined']}", verdict(big["joined"] == 10_000)) if big else missing)))
    rows.append(("broadcast p99 < 100 ms at 10,000 sockets",
                 *((f"{big['bcast_p99']:.1f} ms", verdict(big["bcast_p99"] < 100)) if big else missing)))
    rows.append(("postgres_changes p99 < 150 ms at 10,000 sockets",
                 *((f"{big['pg_p99']:.1f} ms", verdict(big["pg_p99"] < 150)) if big else missing)))
    rows.append(("broadcast p99 < 20 ms at 1,000 sockets",
                 *((f"{small['bcast_p99']:.1f} ms", verdict(small["bcast_p99"] < 20)) if small else missing)))
    for r in one.values():
        rows.append((f"server CPU per delivered message <= 4 us (burst, N={r['n']})",
                     f"{r['server_cpu_us_burst']:.2f} us (paced: {r['server_cpu_us_paced']:.2f} us)",
                     verdict(r["server_cpu_us_burst"] <= 4)))
    for r in one.values():
        rows.append((f"<= 30 KB per idle socket (N={r['n']})", f"{r['kb_per_socket']:.1f} KB",
                     verdict(r["kb_per_socket"] <= 30)))
    for r in one.values():
        rows.append((f"every message delivered exactly once (N={r['n']})",
                     f"lost {r['lost']}, duplicated {r['duplicated']}", verdict(r["lost"] == r["duplicated"] == 0)))
    if workers2:
        if two is None:
            rows.append((f"--workers 2 + Redis: {workers2:,} sockets, none lost or duplicated", "failed", "NOT met"))
        else:
            spread = two["sockets_per_worker"]
            ok = (two["joined"] == workers2 and two["lost"] == two["duplicated"] == 0 and len(spread) == 2
                  and min(spread) > 0)
            rows.append((f"--workers 2 + Redis: {workers2:,} sockets on both processes, none lost or duplicated",
                         f"joined {two['joined']}, sockets per worker {spread}, lost {two['lost']}, "
                         f"duplicated {two['duplicated']}", verdict(ok)))
    return rows


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000", help="socket counts for one process")
    ap.add_argument("--workers2", type=int, default=10_000, help="sockets for the --workers 2 + Redis run (0: skip)")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--burst", type=int, default=20)
    ap.add_argument("--profile", help="write a cProfile of the (one-process) server to this file")
    args = ap.parse_args()
    # The client keeps every received timestamp: full collections over them would stall it and
    # show up as server latency. Memory stays bounded by the run.
    gc.disable()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sizes = [int(x) for x in args.sizes.split(",") if x]
    print(f"start: {load_avg()}", flush=True)
    results: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="ownbase-bench-rt-"))
    try:
        if sizes:
            results += await run_server(tmp / "one", sizes, 1, args)
        if args.workers2:
            results += await run_server(tmp / "two", [args.workers2], 2, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"{'workers':>7} {'N':>6} {'KB/sock':>7} {'bcast p50':>9} {'bcast p99':>9} {'pg p50':>8} {'pg p99':>8} "
          f"{'msg/s':>8} {'us/msg burst':>12} {'us/msg paced':>12} {'us/change':>9}  load")
    for r in results:
        print(f"{r['workers']:>7} {r['n']:>6} {r['kb_per_socket']:>7.1f} {r['bcast_p50']:>7.1f}ms {r['bcast_p99']:>7.1f}ms "
              f"{r['pg_p50']:>6.1f}ms {r['pg_p99']:>6.1f}ms {r['msgs_per_s']:>8.0f} {r['server_cpu_us_burst']:>12.2f} "
              f"{r['server_cpu_us_paced']:>12.2f} {r['server_cpu_us_pg']:>9.2f}  {r['load']}")
    print()
    print("issue 16 targets (latencies are only meaningful on an otherwise quiet machine):")
    for name, measured, ok in targets(results, sizes, args.workers2):
        print(f"  {name:<78} {measured:<60} {ok}")
    print(f"end: {load_avg()}")


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
