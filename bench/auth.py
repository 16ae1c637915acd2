"""Auth benchmark (not a test): password sign-ins/s through ownbase vs raw bcrypt.checkpw/s at the
same cost on the same machine, refreshes/s, and event-loop responsiveness during sign-in load.

    python3 bench/auth.py [--seconds 10] [--cost 12]

Starts its own ownbase (embedded PostgreSQL in a temporary directory) with the default bcrypt cost.
The per-IP /token limit is disabled for the run (OWNBASE_AUTH_RATE_LIMIT_TOKEN=0): the benchmark
comes from one address and measures throughput, not the limiter.

Also prints the CPU seconds per sign-in (the ownbase process and PostgreSQL) against the CPU of one
raw bcrypt.checkpw, the load average, and the issue-16 target as a `TARGET` line (met / NOT MET):
on a shared machine the wall-clock ratio is noisy, the CPU cost per sign-in is not. On a quiet
machine: `python3 bench/auth.py --rounds 3`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import bcrypt
import httpx

from _load import CpuMeter, load_average, target_line  # noqa: E402 - bench/ is on sys.path when run as a script
from _load import start_server as shared_start_server  # noqa: E402

PASSWORD = "bench-password-123"


RAW_CPU: list[float] = []  # CPU seconds per raw checkpw, per round


def raw_bcrypt_rate(cost: int, seconds: float, threads: int) -> float:
    cpu0 = time.process_time()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=cost))
    count = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def work() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            assert bcrypt.checkpw(PASSWORD.encode(), hashed)
            with lock:
                count += 1

    start = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    RAW_CPU.append((time.process_time() - cpu0) / max(1, count))
    return count / (time.perf_counter() - start)


def start_server(tmp: Path, cost: int) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """The shared starter (bench/_load.py) with this benchmark's settings: the bcrypt cost under
    test, auto-confirmed sign-ups and no rate limits (one client address signs in thousands of times)."""
    return shared_start_server(tmp, {
        "OWNBASE_AUTH_BCRYPT_COST": str(cost), "OWNBASE_AUTH_RATE_LIMIT_TOKEN": "0",
        "OWNBASE_AUTH_RATE_LIMIT_SIGNUP": "0", "OWNBASE_AUTH_AUTOCONFIRM": "true"})


async def run_load(url: str, anon: str, seconds: float, concurrency: int, body_for, path: str) -> tuple[float, int]:
    headers = {"apikey": anon, "X-Supabase-Api-Version": "2024-01-01"}
    done = 0
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:

        async def worker(i: int) -> None:
            nonlocal done, errors
            state: dict[str, str] = {}
            while time.perf_counter() < stop:
                r = await client.post(path, json=body_for(i, state))
                if r.status_code == 200:
                    done += 1
                    state["refresh_token"] = r.json()["refresh_token"]
                else:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return done / (time.perf_counter() - start), errors


async def health_latency(url: str, seconds: float) -> list[float]:
    out = []
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while time.perf_counter() < stop:
            t = time.perf_counter()
            await client.get("/auth/v1/health")
            out.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.05)
    return out


async def main_async(args: argparse.Namespace) -> None:
    cpus = os.cpu_count() or 2
    tmp = Path(tempfile.mkdtemp(prefix="ownbase-bench-auth-"))
    proc, url, keys = start_server(tmp, args.cost)
    try:
        anon, service = keys["anon_key"], keys["service_role_key"]
        adm = {"apikey": service, "Authorization": f"Bearer {service}"}
        emails = [f"bench{i}@example.com" for i in range(args.concurrency)]
        for email in emails:
            r = httpx.post(url + "/auth/v1/admin/users", headers=adm, timeout=60,
                           json={"email": email, "password": PASSWORD, "email_confirm": True})
            r.raise_for_status()
        # warm-up
        httpx.post(url + "/auth/v1/token?grant_type=password", headers={"apikey": anon}, timeout=60,
                   json={"email": emails[0], "password": PASSWORD}).raise_for_status()

        # Interleave rounds so both sides see the same background load on a shared machine.
        raws: list[float] = []
        signin_rates: list[float] = []
        signin_errors = 0
        idle = await health_latency(url, 2)
        busy: list[float] = []
        meter = CpuMeter(proc.pid, tmp)
        signin_cpu = [0.0, 0.0]  # ownbase, PostgreSQL
        signed_in = 0
        for _ in range(args.rounds):
            raws.append(raw_bcrypt_rate(args.cost, args.seconds, cpus))
            c0 = meter.sample()
            signin_task = asyncio.create_task(run_load(
                url, anon, args.seconds, args.concurrency,
                lambda i, s: {"email": emails[i], "password": PASSWORD}, "/auth/v1/token?grant_type=password"))
            busy += await health_latency(url, args.seconds - 0.5)
            rate, errs = await signin_task
            c1 = meter.sample()
            signin_cpu = [signin_cpu[0] + c1[0] - c0[0], signin_cpu[1] + c1[1] - c0[1]]
            signed_in += round(rate * args.seconds)
            signin_rates.append(rate)
            signin_errors += errs
        raw = statistics.median(raws)
        signins = statistics.median(signin_rates)

        # each client's first refresh token, obtained before the timed load (a sign-in inside it
        # would be timed as part of the refresh rate, and blocked the loop here)
        first_tokens = []
        for email in emails:
            r = httpx.post(url + "/auth/v1/token?grant_type=password", headers={"apikey": anon}, timeout=120,
                           json={"email": email, "password": PASSWORD})
            r.raise_for_status()
            first_tokens.append(r.json()["refresh_token"])

        def refresh_body(i: int, state: dict[str, str]) -> dict[str, str]:
            return {"refresh_token": state.setdefault("refresh_token", first_tokens[i])}

        refreshes, refresh_errors = await run_load(url, anon, args.seconds, args.concurrency, refresh_body,
                                                   "/auth/v1/token?grant_type=refresh_token")
        print(f"machine: {cpus} CPUs, bcrypt cost {args.cost}, {args.rounds} interleaved rounds of {args.seconds:.0f} s,"
              f" {args.concurrency} concurrent clients")
        print(f"raw bcrypt.checkpw ({cpus} threads):   {raw:8.2f} /s   (median)")
        print(f"ownbase password sign-ins:          {signins:8.2f} /s   (median; errors: {signin_errors})")
        ratios = [a / b for a, b in zip(signin_rates, raws)]
        print(f"ratio sign-ins / raw bcrypt:        {statistics.median(ratios):8.3f}   (target >= 0.97; median of"
              " per-round ratios: " + ", ".join(f"{r:.2f}" for r in ratios) + ")")
        print(f"ratio of the medians:               {signins / raw:8.3f}")
        print(f"ownbase refresh_token grants:       {refreshes:8.2f} /s   (errors: {refresh_errors})")
        print(f"ratio refreshes / sign-ins:         {refreshes / max(signins, 1e-9):8.1f}")
        print(f"GET /auth/v1/health median latency: idle {statistics.median(idle):.1f} ms,"
              f" during sign-in load {statistics.median(busy):.1f} ms"
              f" (p95 {sorted(busy)[int(len(busy) * 0.95) - 1]:.1f} ms)")
        raw_cpu = statistics.median(RAW_CPU)
        own_cpu, pg_cpu = (x / max(1, signed_in) for x in signin_cpu)
        print(f"CPU per sign-in: ownbase {own_cpu * 1e3:.2f} ms + PostgreSQL {pg_cpu * 1e3:.2f} ms; one raw checkpw "
              f"{raw_cpu * 1e3:.2f} ms -> CPU-bound ratio {raw_cpu / (own_cpu + pg_cpu):.3f} (the ownbase figure "
              "includes the /health probes)")
        print(load_average())
        print(target_line("auth sign-ins >= 0.97 of raw bcrypt", f"{statistics.median(ratios):.3f}",
                          statistics.median(ratios) >= 0.97 and signin_errors == 0))
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cost", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2 * (os.cpu_count() or 2))
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
