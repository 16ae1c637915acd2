"""Storage benchmark (not a test): upload and download of one large file through ownbase vs a
plain copy on the same disk (local backend) and vs boto3 straight to S3 (s3 backend, against a
local SeaweedFS), with the server's peak RSS growth sampled from /proc.

    python3 bench/storage.py                 # 1 GiB, local and s3
    python3 bench/storage.py --size-mb 256 --backends local

Targets (issue 16): local upload >= 0.9 of a durable copy, local download >= 1.0 of a plain copy,
S3 upload >= 0.9 of boto3 (issue 5's: peak RSS growth < 100 MB whatever the file size). Each is
printed as a `TARGET` line (met / NOT MET) at the end, with the load average: on a shared machine
the wall-clock ratios are noisy, the server CPU seconds per GiB are not. On a quiet machine:
`python3 bench/storage.py --repeat 3`. For the local backend "direct" is the same bytes copied on the same disk: for the
upload a copy made durable (fsync), because ownbase answers an upload only once its blob is on disk
(a committed row must never point at bytes a crash could lose); for the download a plain copy,
against a client that splices the socket into the file (curl's 16 KiB writes would measure curl).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import boto3
import httpx
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ownbase.embedded import free_port  # noqa: E402

CHUNK = 1024 * 1024
S3_KEY_ID, S3_SECRET, S3_BUCKET = "bench-key", "bench-secret-0123456789", "ownbase-bench"


def rss_kb(pid: int) -> int:
    total = 0
    pids = [pid]
    # The server may run uvicorn in a child process: count the whole tree.
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> "RssSampler":
        self.peak = rss_kb(self.pid)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self.thread.join()


def cpu_seconds(pid: int) -> float:
    """user+system CPU time of the server process tree (load-independent cost)."""
    total = 0.0
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    tick = os.sysconf("SC_CLK_TCK")
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


REPEAT = 2  # best of N: the machine is shared, single runs are noisy (set by --repeat)


def timed(fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        os.sync()  # every run starts with nothing dirty in the page cache (not timed)
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def make_file(path: Path, size: int) -> None:
    block = os.urandom(CHUNK)
    with open(path, "wb") as fh:
        for i in range(size // CHUNK):
            fh.write(block[i % 7:] + block[:i % 7])  # not all-identical blocks


def start_weed(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    weed = Path(sys.executable).parent / "weed"
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    ports = {name: free_port() for name in ("master", "filer", "volume", "admin", "webdav")}
    args = [str(weed), "mini", f"-dir={work / 'weed'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={port}",
            "-master.telemetry=false", *[f"-{n}.port={p}" for n, p in ports.items()],
            *[f"-{n}.port.grpc={free_port()}" for n in ("master", "filer", "volume", "admin", "s3")]]
    (work / "weed").mkdir()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3_client(endpoint)
    for _ in range(180):
        try:
            s3.create_bucket(Bucket=S3_BUCKET)
            return proc, endpoint
        except Exception:  # noqa: BLE001
            time.sleep(0.5)
    raise RuntimeError("weed did not start")


def boto3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=S3_KEY_ID,
                        aws_secret_access_key=S3_SECRET, config=Config(s3={"addressing_style": "path"}))


def start_ownbase(work: Path, env: dict[str, str], procs: list[subprocess.Popen[bytes]]
                  ) -> tuple[subprocess.Popen[bytes], str, str]:
    data = work / "server-data"
    port = free_port()
    full_env = {**os.environ, "OWNBASE_LOG_LEVEL": "warning", **env}
    proc = subprocess.Popen([sys.executable, "-m", "ownbase", "start", "--data-dir", str(data), "--port", str(port)],
                            env=full_env, stdout=open(work / "ownbase.log", "wb"), stderr=subprocess.STDOUT,
                            cwd=str(work), start_new_session=True)
    procs.append(proc)  # stopped by main() whatever happens next
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError((work / "ownbase.log").read_text()[-3000:])
        time.sleep(0.2)
    out = subprocess.run([sys.executable, "-m", "ownbase", "keys", "--json", "--data-dir", str(data)],
                         env=full_env, capture_output=True, text=True, cwd=str(work))
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    keys = json.loads(out.stdout)
    return proc, url, keys["service_role_key"]


def server_pid(proc: subprocess.Popen[bytes]) -> int:
    return proc.pid


def splice_get(url: str, headers: dict[str, str], dst: Path) -> int:
    """HTTP/1.1 GET whose body goes socket -> pipe -> file with splice(2): no copy through user
    space, the nearest an HTTP client gets to the kernel's own file copy (curl writes 16 KiB at a
    time and is the bottleneck of a download to disk). Linux only; needs a Content-Length."""
    u = urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port))
    request = f"GET {u.path}{'?' + u.query if u.query else ''} HTTP/1.1\r\nHost: {u.netloc}\r\n" \
              "Connection: close\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(65536)
        if not data:
            raise EOFError("connection closed in the response head")
        head += data
    raw, _, rest = head.partition(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    if int(lines[0].split()[1]) not in (200, 206):
        raise RuntimeError(lines[0])
    fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(fields["content-length"])
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ: 1 MiB per splice
        os.write(fd, rest)
        left = length - len(rest)
        while left > 0:
            n = os.splice(sock.fileno(), w, min(left, 1 << 20))
            if n == 0:
                raise EOFError("connection closed in the body")
            left -= n
            while n:
                n -= os.splice(r, fd, n)
    finally:
        for x in (r, w, fd):
            os.close(x)
        sock.close()
    return length


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def durable_copy(src: Path, dst: Path) -> None:
    """The direct baseline: the same bytes copied to the same disk, finished when they are on it."""
    shutil.copyfile(src, dst)
    fsync_file(dst)


def through_ownbase(url: str, key: str, src: Path, size: int, pid: int, dst: Path,
                    durable: bool = False) -> dict[str, float]:
    """Upload then download through ownbase's HTTP API. curl is the client when installed (a
    Python client would be the bottleneck on a small machine), httpx otherwise. With `durable`,
    a download counts until the client's copy is on disk (fsync), like the durable-copy baseline;
    an upload always counts until ownbase answers, which the local backend does once the blob is
    on disk."""
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    target = f"{url}/storage/v1/object/bench/big.bin"
    curl = shutil.which("curl")
    hdr_args = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
    with httpx.Client(base_url=url + "/storage/v1", headers=headers, timeout=600) as c:
        c.post("/bucket", json={"name": "bench"})

        def upload() -> None:
            if curl:
                subprocess.run([curl, "-sf", "-T", str(src), target, *hdr_args, "-H",
                                "content-type: application/octet-stream", "-o", os.devnull], check=True)
            else:
                c.put("/object/bench/big.bin", content=file_chunks(src),
                      headers={"content-type": "application/octet-stream",
                               "content-length": str(size)}).raise_for_status()

        def download() -> None:
            if hasattr(os, "splice"):
                splice_get(target, headers, dst)
            elif curl:
                subprocess.run([curl, "-sf", target, *hdr_args, "-o", str(dst)], check=True)
            else:
                with c.stream("GET", "/object/bench/big.bin") as r, open(dst, "wb") as out:
                    r.raise_for_status()
                    for chunk in r.iter_raw(CHUNK):
                        out.write(chunk)
            if durable:
                fsync_file(dst)
            assert dst.stat().st_size == size

        def download_discarded() -> None:
            if curl:
                subprocess.run([curl, "-sf", target, *hdr_args, "-o", os.devnull], check=True)

        base_up, cpu0 = rss_kb(pid), cpu_seconds(pid)
        with RssSampler(pid) as up_rss:
            up = timed(upload)
        base_down, cpu1 = rss_kb(pid), cpu_seconds(pid)
        with RssSampler(pid) as down_rss:
            down = timed(download)
        cpu2 = cpu_seconds(pid)
        discarded = timed(download_discarded) if curl else float("nan")
    return {"up_s": up, "down_s": down, "down_discarded_s": discarded, "up_cpu": cpu1 - cpu0, "down_cpu": cpu2 - cpu1, "up_rss_growth_mb": (up_rss.peak - base_up) / 1024,
            "down_rss_growth_mb": (down_rss.peak - base_down) / 1024, "rss_mb": max(up_rss.peak, down_rss.peak) / 1024}


BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

BLOCK = bytes(1024 * 1024)


async def sink(request):
    n = 0
    async for chunk in request.stream():
        n += len(chunk)
    return PlainTextResponse(str(n))


async def source(request):
    size = int(request.query_params["size"])

    async def gen():
        for _ in range(size // len(BLOCK)):
            yield BLOCK

    return StreamingResponse(gen(), headers={"content-length": str(size)})


app = Starlette(routes=[Route("/sink", sink, methods=["PUT"]), Route("/source", source)])
"""


def bare_asgi_ceiling(work: Path, src: Path, size: int) -> tuple[float, float]:
    """The same transfers against a bare uvicorn + Starlette app that only counts/produces bytes:
    the ceiling of any Python ASGI server on this machine, for context."""
    curl = shutil.which("curl")
    if not curl:
        return float("nan"), float("nan")
    (work / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--log-level",
                             "warning"], cwd=str(work), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/nope", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        up = timed(lambda: subprocess.run([curl, "-sf", "-T", str(src), f"http://127.0.0.1:{port}/sink", "-o",
                                           os.devnull], check=True))
        dst = work / "bare.bin"
        source = f"http://127.0.0.1:{port}/source?size={size}"
        if hasattr(os, "splice"):  # the same download client as for ownbase
            down = timed(lambda: splice_get(source, {}, dst))
        else:
            down = timed(lambda: subprocess.run([curl, "-sf", source, "-o", str(dst)], check=True))
        dst.unlink()
        return up, down
    finally:
        proc.terminate()
        proc.wait(10)


def mbps(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


TARGETS: list[str] = []


def target(name: str, ratio: float, goal: float) -> None:
    TARGETS.append(f"TARGET {name + f' >= {goal}':<58} measured {ratio:<28.2f} "
                   f"{'met' if ratio >= goal else 'NOT MET'}")


def report(label: str, size: int, direct: tuple[float, float], own: dict[str, float], direct_name: str) -> None:
    du, dd = direct
    print(f"\n== {label} ({size / 2**20:.0f} MiB) ==")
    print(f"{'':14}{direct_name:>18}{'ownbase':>12}{'ratio':>8}   (best of {REPEAT})")
    print(f"{'upload MB/s':14}{mbps(size, du):>18.0f}{mbps(size, own['up_s']):>12.0f}{du / own['up_s']:>8.2f}")
    print(f"{'download MB/s':14}{mbps(size, dd):>18.0f}{mbps(size, own['down_s']):>12.0f}{dd / own['down_s']:>8.2f}")
    print(f"server CPU per GiB: upload {own['up_cpu'] * 2**30 / size / REPEAT:.2f} s, download "
          f"{own['down_cpu'] * 2**30 / size / REPEAT:.2f} s (load-independent cost; the machine is shared)")
    print(f"server peak RSS {own['rss_mb']:.0f} MB; growth during upload {own['up_rss_growth_mb']:.1f} MB, "
          f"during download {own['down_rss_growth_mb']:.1f} MB (target < 100 MB)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--backends", default="local,s3")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs per measurement")
    args = ap.parse_args()
    global REPEAT
    REPEAT = max(1, args.repeat)
    size = args.size_mb * CHUNK
    work = Path(tempfile.mkdtemp(prefix="ownbase-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        print(f"client: {'curl' if shutil.which('curl') else 'httpx'}; machine: {os.cpu_count()} CPUs; "
              f"load average {os.getloadavg()[0]:.1f}")
        src = work / "source.bin"
        make_file(src, size)
        if "local" in args.backends:
            proc, url, key = start_ownbase(work, {}, procs)
            dst = work / "copy.bin"
            # The direct baselines: the same bytes copied to the same disk. An upload is compared
            # with a copy made durable (fsync), because ownbase answers an upload only once its blob
            # is on disk; a download (the client writes the file, nothing is fsynced) with a plain
            # copy (copy_file_range in the kernel, the page cache as destination).
            up = timed(lambda: durable_copy(src, dst))
            down = cached = timed(lambda: shutil.copyfile(src, dst))
            dst.unlink()
            own = through_ownbase(url, key, src, size, proc.pid, dst)
            dst.unlink()
            report("local backend vs copying on the same disk", size, (up, down), own,
                   "copy (up: +fsync)")
            target("storage local upload vs a durable copy", up / own["up_s"], 0.9)
            target("storage local download vs a plain copy", down / own["down_s"], 1.0)
            print(f"context: without fsync (the page-cache copy, {mbps(size, cached):.0f} MB/s) the upload ratio "
                  f"would be {cached / own['up_s']:.2f}")
            print(f"context: ownbase's download to a discarding client (curl -o /dev/null) runs at "
                  f"{mbps(size, own['down_discarded_s']):.0f} MB/s; the download client is "
                  f"{'splice(2) socket -> file' if hasattr(os, 'splice') else 'curl'}")
            bare_up, bare_down = bare_asgi_ceiling(work, src, size)
            print(f"context: bare uvicorn+Starlette (no storage at all) upload {mbps(size, bare_up):.0f} MB/s, "
                  f"download {mbps(size, bare_down):.0f} MB/s -> ownbase reaches "
                  f"{bare_up / own['up_s']:.2f} / {bare_down / own['down_s']:.2f} of that ceiling")
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
            procs.remove(proc)
            shutil.rmtree(work / "server-data", ignore_errors=True)
        if "s3" in args.backends:
            weed, endpoint = start_weed(work)
            procs.append(weed)
            s3 = boto3_client(endpoint)
            up = timed(lambda: s3.upload_file(str(src), S3_BUCKET, "direct/big.bin"))
            dst = work / "copy.bin"
            down = timed(lambda: s3.download_file(S3_BUCKET, "direct/big.bin", str(dst)))
            dst.unlink()
            s3.delete_object(Bucket=S3_BUCKET, Key="direct/big.bin")
            proc, url, key = start_ownbase(work, {
                "OWNBASE_STORAGE_BACKEND": "s3", "OWNBASE_STORAGE_S3_BUCKET": S3_BUCKET,
                "OWNBASE_STORAGE_S3_ENDPOINT_URL": endpoint, "OWNBASE_STORAGE_S3_FORCE_PATH_STYLE": "true",
                "AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET}, procs)
            own = through_ownbase(url, key, src, size, proc.pid, dst)
            dst.unlink()
            report("s3 backend (SeaweedFS) vs boto3 directly", size, (up, down), own, "boto3 direct")
            target("storage S3 upload vs boto3", up / own["up_s"], 0.9)
        print(f"\nload average {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} (1 / 5 min) on {os.cpu_count()} CPUs")
        print("\n".join(TARGETS))
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(60)
            except Exception:  # noqa: BLE001
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
