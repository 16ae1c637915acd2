"""What a killed writer leaves behind is swept, and nothing in flight is touched (issue 10 item 4,
issue 19 item 3): local temp files, S3 incomplete multipart uploads; `ownbase storage sweep` says
what it removed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx
from supabase import create_client

from tests.conftest import ServerHandle
from tests.storage.conftest import S3_BUCKET, S3Server, s3_env, unique

MiB = 1024 * 1024


class StuckUpload:
    """An upload whose client sends ``first`` bytes and then stalls until released."""

    def __init__(self, server: ServerHandle, bucket: str, name: str, first: int, total: int) -> None:
        self.release = threading.Event()
        self.response: httpx.Response | None = None
        self.error: Exception | None = None
        self.data = bytes(range(256)) * (total // 256)
        url = f"{server.url}/storage/v1/object/{bucket}/{name}"
        headers = {"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}",
                   "Content-Type": "application/octet-stream"}

        def body() -> Iterator[bytes]:
            for i in range(0, first, MiB):
                yield self.data[i:i + MiB]
            self.release.wait(120)
            for i in range(first, len(self.data), MiB):
                yield self.data[i:i + MiB]

        def send() -> None:
            try:
                self.response = httpx.post(url, content=body(), headers=headers, timeout=120)
            except httpx.HTTPError as exc:
                self.error = exc

        self.thread = threading.Thread(target=send, daemon=True)
        self.thread.start()

    def finish(self) -> httpx.Response:
        self.release.set()
        self.thread.join(120)
        assert self.response is not None, self.error
        return self.response


def sweep(server: ServerHandle, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "ownbase", "storage", "sweep", *args,
                          "--data-dir", str(server.data_dir)],
                         env=server.env, capture_output=True, text=True, timeout=120, cwd=server.data_dir.parent)
    assert out.returncode == 0, out.stderr
    return out.stdout


def removed(report: str, what: str) -> int:
    match = re.search(rf"(\d+) {re.escape(what)}", report)
    assert match, report
    return int(match.group(1))


def wait_for(check: Callable[[], object], what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def new_temp_file(tmp: Path, before: set[str], size: int) -> Path:
    def check() -> Path | None:
        for p in tmp.iterdir():
            if p.name not in before and p.stat().st_size >= size:
                return p
        return None

    return wait_for(check, "the upload's temporary file")  # type: ignore[return-value]


def test_killed_upload_temp_file_is_swept_in_flight_one_is_not(
        server: ServerHandle, server_factory: Callable[..., ServerHandle]) -> None:
    bucket = unique()
    sb_admin = sb_for(server)
    sb_admin.storage.create_bucket(bucket)
    tmp = server.storage_root / ".tmp"
    victim = server_factory()  # another process on the same database and storage folder

    tmp.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in tmp.iterdir()}
    # Some of what was sent is still in buffers: the file on disk is smaller than ``first``.
    dead = StuckUpload(victim, bucket, "dead.bin", 3 * MiB, 4 * MiB)
    dead_path = new_temp_file(tmp, before, MiB)
    victim.stop(signal.SIGKILL)
    dead.release.set()
    assert dead_path.exists()  # the bytes of the killed upload stay behind

    before = {p.name for p in tmp.iterdir()}
    live = StuckUpload(server, bucket, "live.bin", 3 * MiB, 4 * MiB)
    live_path = new_temp_file(tmp, before, MiB)
    try:
        report = sweep(server, "--stale-seconds", "0", "--bucket", bucket)
        assert not dead_path.exists()
        assert live_path.exists()  # written right now by a live process: never swept
        assert removed(report, "stale temporary file(s)") >= 1
    finally:
        response = live.finish()
    assert response.status_code == 200, response.text
    assert sb_admin.storage.from_(bucket).download("live.bin") == live.data


def sb_for(server: ServerHandle):  # noqa: ANN201 - a supabase-py client

    return create_client(server.url, server.service_key)


def multipart_uploads(s3: S3Server, bucket: str) -> list[dict]:
    page = s3.client().list_multipart_uploads(Bucket=S3_BUCKET, Prefix=f"tenant/{bucket}/")
    return list(page.get("Uploads", []))


def test_killed_s3_upload_multipart_is_aborted(
        s3_server: S3Server, s3_storage_server: ServerHandle, server_factory: Callable[..., ServerHandle]) -> None:
    live_server = s3_storage_server
    bucket = unique()
    sb_for(live_server).storage.create_bucket(bucket)
    victim = server_factory(s3_env(s3_server))

    # More than one 8 MiB part sent, then the process is killed: S3 keeps the parts.
    dead = StuckUpload(victim, bucket, "dead.bin", 12 * MiB, 20 * MiB)
    wait_for(lambda: multipart_uploads(s3_server, bucket), "the multipart upload")
    victim.stop(signal.SIGKILL)
    dead.release.set()

    live = StuckUpload(live_server, bucket, "live.bin", 12 * MiB, 20 * MiB)
    wait_for(lambda: len(multipart_uploads(s3_server, bucket)) == 2, "the live multipart upload")
    try:
        # Younger than the threshold (24 h by default): neither is touched, the live one least of all.
        report = sweep(live_server, "--bucket", bucket)
        assert len(multipart_uploads(s3_server, bucket)) == 2
        assert removed(report, "stale incomplete multipart upload(s)") == 0
    finally:
        response = live.finish()
    assert response.status_code == 200, response.text
    assert len(multipart_uploads(s3_server, bucket)) == 1  # the live one completed; the dead one is left

    report = sweep(live_server, "--stale-seconds", "0", "--bucket", bucket)
    assert multipart_uploads(s3_server, bucket) == []
    assert removed(report, "stale incomplete multipart upload(s)") == 1
    assert sb_for(live_server).storage.from_(bucket).download("live.bin") == live.data
