"""Shared pieces of the HTTP benchmarks: start an ownbase, run a closed-loop load, summarise it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import httpx

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
    def __init__(self, name: str, latencies: list[float], seconds: float, errors: int, unit: str = "req",
                 *, count: int | None = None, p50: float | None = None, p99: float | None = None) -> None:
        self.name = name
        self.latencies = latencies
        self.seconds = seconds
        self.count = len(latencies) if count is None else count
        self.rate = self.count / seconds if seconds else 0.0
        ordered = sorted(latencies) or [0.0]
        self.p50 = statistics.median(ordered) * 1000 if p50 is None else p50
        self.p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if p99 is None else p99
        self.errors = errors
        self.unit = unit

    def line(self, base: Result | None = None) -> str:
        ratio = f"{self.rate / base.rate:6.2f}x" if base and base.rate else "   1.00x" if base is None else ""
        return (f"  {self.name:<46} {self.rate:9.1f} {self.unit}/s  p50 {self.p50:7.2f} ms  "
                f"p99 {self.p99:7.2f} ms  {ratio}  errors {self.errors}")


def merge(name: str, parts: list[Result]) -> Result:
    if all(p.latencies for p in parts):
        return Result(name, [x for p in parts for x in p.latencies], sum(p.seconds for p in parts),
                      sum(p.errors for p in parts), parts[0].unit)
    # wrk rounds carry percentiles, not samples: weight them by request count
    count = sum(p.count for p in parts) or 1
    return Result(name, [], sum(p.seconds for p in parts), sum(p.errors for p in parts), parts[0].unit,
                  count=count, p50=sum(p.p50 * p.count for p in parts) / count,
                  p99=max(p.p99 for p in parts))


_WRK_SCRIPT = """
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body_file = os.getenv("WRK_BODY_FILE")
if body_file then
  local f = io.open(body_file, "rb"); wrk.body = f:read("*a"); f:close()
end
local template = os.getenv("WRK_PATH")  -- "{i}" becomes 1..990 in turn, like the direct loop's ids
local sent = 0
if template then
  request = function()
    sent = sent + 1
    return wrk.format(nil, (template:gsub("{i}", tostring(sent % 990 + 1))))
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT %d %d %d %f %f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_load(name: str, url: str, seconds: float, concurrency: int, headers: dict[str, str], *,
             method: str = "GET", body: bytes | None = None, unit: str = "req") -> Result:
    """A closed loop from `wrk` (C, one thread) for `seconds` (wrk counts time, not requests), so
    the load generator takes as little of this machine's CPU as possible from the server it
    measures."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "load.lua"
        script.write_text(_WRK_SCRIPT)
        env = {**os.environ, "WRK_METHOD": method}
        parts = urlsplit(url)
        if "{i}" in url:
            env["WRK_PATH"] = parts.path + ("?" + parts.query if parts.query else "")
            url = f"{parts.scheme}://{parts.netloc}/"
        if body is not None:
            (Path(tmp) / "body").write_bytes(body)
            env["WRK_BODY_FILE"] = str(Path(tmp) / "body")
        cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(script)]
        for k, v in headers.items():
            cmd += ["-H", f"{k}: {v}"]
        out = subprocess.run(cmd + [url], env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_RESULT"))
    requests, micros, errors, p50, p99 = line.split()[1:]
    return Result(name, [], int(micros) / 1e6, int(errors), unit, count=int(requests),
                  p50=float(p50) / 1000, p99=float(p99) / 1000)


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


# --- CPU time per request: the shared machine makes wall-clock ratios noisy, CPU seconds are not ---

def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(k) for t in Path(f"/proc/{p}/task").iterdir()
                    for k in (t / "children").read_text().split()]
        except OSError:
            continue
        out += kids
        todo += kids
    return out


class CpuMeter:
    """user+system CPU seconds of the ownbase process (`server_pid`), of its PostgreSQL (the
    postmaster whose command line names `data_dir`, daemonised away from ownbase, and its
    backends, which live as long as the pools keep them) and of this bench process (the direct
    asyncpg loop, or the Python HTTP client)."""

    def __init__(self, server_pid: int, data_dir: Path) -> None:
        self.server_pid, self.marker = server_pid, str(data_dir).encode()
        self.postmaster = 0

    def _postmaster(self) -> int:
        if self.postmaster and _comm(self.postmaster).startswith("postgres"):
            return self.postmaster
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _comm(int(entry.name)) == "postgres":
                try:
                    if self.marker in (entry / "cmdline").read_bytes():
                        self.postmaster = int(entry.name)
                        break
                except OSError:
                    continue
        return self.postmaster

    def sample(self) -> tuple[float, float, float]:
        root = self._postmaster()
        pg = sum(_cpu(p) for p in [root, *_descendants(root)]) if root else 0.0
        return _cpu(self.server_pid), pg, time.process_time()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} (1 / 5 min) on {os.cpu_count()} CPUs"


def target_line(target: str, measured: str, met: bool) -> str:
    """One line per issue target, in a fixed shape the integrator can grep: TARGET | measured | verdict."""
    return f"TARGET {target:<58} measured {measured:<28} {'met' if met else 'NOT MET'}"
