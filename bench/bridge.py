"""Bridge benchmark (not a test): `upstream` mode against calling the upstream directly.

    python3 bench/bridge.py [--seconds 8] [--rounds 3] [--concurrency 10]

Starts two ownbase processes, each on its own embedded PostgreSQL in a temporary directory: one
plays the live Supabase project (a small table), the other runs in bridge mode with every
service `upstream` (shipped defaults otherwise, except the general rate limits, which one client
address would hit). Then, in interleaved rounds so background load hits both sides alike:

* added latency: one request at a time, GET one row by primary key, through the bridge vs direct
  (p50/p99; the issue's target is < 2 ms added at p50);
* throughput: --concurrency requests in flight, same request (target: bridge >= 0.8x direct);
* a 1 MiB object download through the bridge vs direct (streamed; req/s and p50);
* the bridge process's own CPU time per forwarded request (from /proc): the cost that stays when
  the upstream is another machine, as a live Supabase project is.

On this machine the upstream, the bridge and the load generator share the same two cores, so the
throughput ratio also counts the upstream's work twice over against the bridge; the CPU figure is
the number that does not depend on that.

The machine's load average is printed with the numbers: other work on the machine moves them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import Result, merge, start_server  # noqa: E402

SCHEMA = """
create table if not exists public.bench_items (id bigint primary key, name text not null);
insert into public.bench_items select g, 'item ' || g from generate_series(1, 1000) g on conflict do nothing;
grant select on public.bench_items to anon, authenticated, service_role;
insert into storage.buckets (id, name, public) values ('bench', 'bench', true) on conflict do nothing;
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed_loop(name: str, session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                     seconds: float, concurrency: int) -> Result:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop:
            i += 1
            t0 = time.perf_counter()
            async with session.get(url.replace("{i}", str(i % 1000 + 1)), headers=headers) as r:
                await r.read()
                errors += 0 if r.status == 200 else 1
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker(n * 97) for n in range(concurrency)))
    return Result(name, latencies, time.perf_counter() - start, errors)


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        (tmp / "up").mkdir()
        up_proc, up_url, up = start_server(tmp / "up")
        procs.append(up_proc)
        conn = await asyncpg.connect(up["db_url"])
        await conn.execute(SCHEMA)
        await conn.close()
        (tmp / "bridge").mkdir()
        br_proc, br_url, br = start_server(tmp / "bridge", {
            "OWNBASE_BRIDGE_URL": up_url, "OWNBASE_BRIDGE_ANON_KEY": up["anon_key"],
            "OWNBASE_BRIDGE_SERVICE_KEY": up["service_role_key"]})
        procs.append(br_proc)
        up_h = {"apikey": up["anon_key"], "Authorization": f"Bearer {up['anon_key']}"}
        br_h = {"apikey": br["anon_key"], "Authorization": f"Bearer {br['anon_key']}"}
        path = "/rest/v1/bench_items?id=eq.{i}&select=id,name"
        blob = os.urandom(1024 * 1024)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as s:
            async with s.post(f"{up_url}/storage/v1/object/bench/one.bin", data=blob,
                              headers={"apikey": up["service_role_key"], "x-upsert": "true",
                                       "Authorization": f"Bearer {up['service_role_key']}"}) as r:
                assert r.status == 200, await r.text()
            for base, h in ((up_url, up_h), (br_url, br_h)):  # warm up both paths
                await timed_loop("warm", s, base + path, h, 1.5, 4)
            results: dict[str, list[Result]] = {}
            cpu: dict[str, list[float]] = {}  # CPU ms the bridge process spent per forwarded request
            for _ in range(args.rounds):
                for label, base, h in (("direct", up_url, up_h), ("bridge", br_url, br_h)):
                    for kind, url, conc in (("1 at a time", base + path, 1),
                                            (f"{args.concurrency} in flight", base + path, args.concurrency),
                                            ("1 MiB download, 4 in flight",
                                             base + "/storage/v1/object/public/bench/one.bin", 4)):
                        before = cpu_seconds(br_proc.pid)
                        res = await timed_loop(f"{label}: {kind}", s, url, h, args.seconds, conc)
                        results.setdefault(res.name, []).append(res)
                        if label == "bridge":
                            cpu.setdefault(kind, []).append((cpu_seconds(br_proc.pid) - before) * 1000 / res.count)
        merged = {name: merge(name, parts) for name, parts in results.items()}
        print(f"load average before/after: {LOAD0} / {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
              f"({os.cpu_count()} cores)")
        for kind in ("1 at a time", f"{args.concurrency} in flight", "1 MiB download, 4 in flight"):
            direct, bridge = merged[f"direct: {kind}"], merged[f"bridge: {kind}"]
            print(direct.line())
            print(bridge.line(direct))
            print(f"    added latency p50 {bridge.p50 - direct.p50:+.2f} ms, p99 {bridge.p99 - direct.p99:+.2f} ms; "
                  f"throughput ratio {bridge.rate / direct.rate:.2f}; bridge CPU "
                  f"{sum(cpu[kind]) / len(cpu[kind]):.3f} ms per request")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


LOAD0 = " ".join(f"{x:.2f}" for x in os.getloadavg())

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
