"""Shared pieces of the HTTP benchmarks: start an ownbase, run a closed-loop load, summarise it."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from ownbase.embedded import free_port
from ownbase.keys import build_keyring
from ownbase.settings import Settings


def start_server(tmp: Path, extra_env: dict[str, str] | None = None
                 ) -> tuple[subprocess.Popen[bytes], str, dict[str, Any]]:
    """`ownbase start` on an embedded PostgreSQL in `tmp`, with shipped defaults except the general
    rate limits (one client address would hit them) and quieter logs."""
    port = free_port()
    env = {**os.environ, "OWNBASE_RATE_LIMIT_IP_PER_MINUTE": "0", "OWNBASE_RATE_LIMIT_USER_PER_MINUTE": "0",
           "OWNBASE_LOG_LEVEL": "warning", **(extra_env or {})}
    env.pop("OWNBASE_DATABASE_URL", None)
    data = tmp / "data"
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen([sys.executable, "-m", "ownbase", "start", "--data-dir", str(data), "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp))
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit((tmp / "server.log").read_text()[-3000:])
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    out = subprocess.run([sys.executable, "-m", "ownbase", "keys", "--json", "--data-dir", str(data)],
                         env=env, capture_output=True, text=True, check=True, cwd=str(tmp))
    info = json.loads(out.stdout)
    pem = (data / "keys" / "jwt-rs256.pem").read_text()
    info["keys"] = build_keyring(Settings(jwt_private_key=pem))
    return proc, url, info


class Result:
    def __init__(self, name: str, latencies: list[float], seconds: float, errors: int, unit: str = "req") -> None:
        self.name = name
        self.latencies = latencies
        self.seconds = seconds
        self.rate = len(latencies) / seconds if seconds else 0.0
        ordered = sorted(latencies) or [0.0]
        self.p50 = statistics.median(ordered) * 1000
        self.p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        self.errors = errors
        self.unit = unit

    def line(self, base: Result | None = None) -> str:
        ratio = f"{self.rate / base.rate:6.2f}x" if base and base.rate else "   1.00x" if base is None else ""
        return (f"  {self.name:<46} {self.rate:9.1f} {self.unit}/s  p50 {self.p50:7.2f} ms  "
                f"p99 {self.p99:7.2f} ms  {ratio}  errors {self.errors}")


def merge(name: str, parts: list[Result]) -> Result:
    return Result(name, [x for p in parts for x in p.latencies], sum(p.seconds for p in parts),
                  sum(p.errors for p in parts), parts[0].unit)


async def run_load(name: str, total: int, concurrency: int, op: Callable[[int], Awaitable[bool]],
                   unit: str = "req") -> Result:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            t0 = time.perf_counter()
            ok = await op(i)
            latencies.append(time.perf_counter() - t0)
            errors += 0 if ok else 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, latencies, time.perf_counter() - start, errors, unit)
