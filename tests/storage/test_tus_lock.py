"""TUS: one PATCH at a time per upload, in one process and across processes (issue 10 item 3).

A client retry sends a second PATCH at the offset of one still streaming. Without a lock the two
wrote the same part blob and the loser deleted it after the winner had been acknowledged, so the
upload failed forever. Now the second PATCH gets 409 while the first holds the upload, and every
acknowledged byte ends up in the object.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Iterator

import httpx
import pytest

from tests.conftest import ServerHandle, sql
from tests.storage.conftest import StorageTarget, s3_env

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_TYPE = {"Content-Type": "application/offset+octet-stream"}


@pytest.fixture(scope="session")
def peers() -> dict[str, ServerHandle]:
    return {}


@pytest.fixture()
def peer(target: StorageTarget, peers: dict[str, ServerHandle], server_factory: Callable[..., ServerHandle]
         ) -> ServerHandle:
    """A second ownbase process on the same database and backend as ``target``."""
    if target.backend not in peers:
        peers[target.backend] = server_factory(s3_env(target.s3)) if target.s3 else server_factory()
    return peers[target.backend]


def _meta(bucket: str, name: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                    (("bucketName", bucket), ("objectName", name)))


def _create(url: str, headers: dict[str, str], bucket: str, name: str, length: int) -> str:
    r = httpx.post(url + "/storage/v1/upload/resumable",
                   headers={**headers, **TUS, "Upload-Length": str(length), "Upload-Metadata": _meta(bucket, name)})
    assert r.status_code == 201, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def _wait_locked(server: ServerHandle, upload_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if sql(server, "select 1 from ownbase.storage_tus_uploads where id = $1 and lock_token is not null",
               upload_id):
            return
        time.sleep(0.05)
    raise AssertionError("the first PATCH never took the upload")


@pytest.mark.parametrize("where", ["same-process", "two-processes"])
def test_second_patch_at_one_offset_gets_409_and_acknowledged_bytes_survive(
        target: StorageTarget, admin, bucket: str, peer: ServerHandle, where: str) -> None:
    data = os.urandom(300_000)
    key = target.server.service_key
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    upload_id = _create(target.url, headers, bucket, "raced.bin", len(data))
    first_url = f"{target.url}/storage/v1/upload/resumable/{upload_id}"
    retry_url = f"{(peer if where == 'two-processes' else target.server).url}/storage/v1/upload/resumable/{upload_id}"

    release = threading.Event()
    first: dict[str, httpx.Response] = {}

    def slow_body() -> Iterator[bytes]:
        yield data[:64 * 1024]
        release.wait(60)  # the connection "hangs": the client times out and retries
        yield data[64 * 1024:200_000]

    def send_first() -> None:
        first["r"] = httpx.patch(first_url, content=slow_body(), timeout=90,
                                 headers={**headers, **TUS, **OFFSET_TYPE, "Upload-Offset": "0"})

    thread = threading.Thread(target=send_first)
    thread.start()
    try:
        _wait_locked(target.server, upload_id)
        retry = httpx.patch(retry_url, content=data[:150_000], timeout=60,
                            headers={**headers, **TUS, **OFFSET_TYPE, "Upload-Offset": "0"})
        assert retry.status_code == 409, retry.text
    finally:
        release.set()
        thread.join(90)
    assert first["r"].status_code == 204, first["r"].text
    assert first["r"].headers["upload-offset"] == "200000"
    head = httpx.head(retry_url, headers={**headers, **TUS})
    assert head.headers["upload-offset"] == "200000"
    # The client resumes from there (through either process) and the object is whole.
    rest = httpx.patch(retry_url, content=data[200_000:], timeout=60,
                       headers={**headers, **TUS, **OFFSET_TYPE, "Upload-Offset": "200000"})
    assert rest.status_code == 204, rest.text
    assert admin.storage.from_(bucket).download("raced.bin") == data
    assert [k for k in target.blob_keys(bucket) if k.startswith(".tus/")] == []
    assert not sql(target.server, "select 1 from ownbase.storage_tus_uploads where id = $1", upload_id)
    assert not sql(target.server, "select 1 from ownbase.storage_pending_blobs where bucket_id = $1 "
                   "and name like '.tus/%'", bucket)


def test_lock_is_released_after_each_patch(target: StorageTarget, bucket: str) -> None:
    """Sequential PATCHes (the normal case) never see a lock left behind, also after a refusal."""
    key = target.server.service_key
    headers = {"apikey": key, "Authorization": f"Bearer {key}", **TUS, **OFFSET_TYPE}
    upload_id = _create(target.url, headers, bucket, "steps.bin", 30)
    url = f"{target.url}/storage/v1/upload/resumable/{upload_id}"
    assert httpx.patch(url, content=b"a" * 10, headers={**headers, "Upload-Offset": "0"}).status_code == 204
    # Past Upload-Length: refused, nothing kept, the upload not left locked.
    too_long = httpx.patch(url, content=b"b" * 25, headers={**headers, "Upload-Offset": "10"})
    assert too_long.status_code == 413
    assert httpx.patch(url, content=b"b" * 10, headers={**headers, "Upload-Offset": "10"}).status_code == 204
    assert httpx.patch(url, content=b"c" * 10, headers={**headers, "Upload-Offset": "20"}).status_code == 204
    r = httpx.get(f"{target.url}/storage/v1/object/{bucket}/steps.bin", headers=headers)
    assert r.content == b"a" * 10 + b"b" * 10 + b"c" * 10


def test_patch_of_a_killed_process_holds_the_upload_until_its_lease_lapses(
        target: StorageTarget, admin, bucket: str, server_factory: Callable[..., ServerHandle]) -> None:
    victim = server_factory(s3_env(target.s3)) if target.s3 else server_factory()
    data = os.urandom(4 * 1024 * 1024)
    key = target.server.service_key
    headers = {"apikey": key, "Authorization": f"Bearer {key}", **TUS, **OFFSET_TYPE}
    upload_id = _create(target.url, headers, bucket, "killed.bin", len(data))
    release = threading.Event()

    def stuck() -> Iterator[bytes]:
        yield data[:2 * 1024 * 1024]
        release.wait(60)

    def send() -> None:
        try:
            httpx.patch(f"{victim.url}/storage/v1/upload/resumable/{upload_id}", content=stuck(), timeout=90,
                        headers={**headers, "Upload-Offset": "0"})
        except httpx.HTTPError:
            pass  # the server is killed under it

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    _wait_locked(target.server, upload_id)
    victim.stop(signal.SIGKILL)
    release.set()
    thread.join(30)
    url = f"{target.url}/storage/v1/upload/resumable/{upload_id}"
    assert httpx.head(url, headers=headers).headers["upload-offset"] == "0"  # nothing acknowledged, nothing kept
    # The dead PATCH's lease still holds the upload (tus clients retry 409 with a back-off) ...
    assert httpx.patch(url, content=data, headers={**headers, "Upload-Offset": "0"}).status_code == 409
    # ... until it lapses (LEASE_SECONDS; made to pass here), then the client resumes.
    sql(target.server, "update ownbase.storage_tus_uploads set locked_until = now() - interval '1 second' "
        "where id = $1", upload_id)
    r = httpx.patch(url, content=data, headers={**headers, "Upload-Offset": "0"}, timeout=60)
    assert r.status_code == 204, r.text
    assert admin.storage.from_(bucket).download("killed.bin") == data
    # The killed PATCH's part was registered before its first byte: the sweep clears it.
    assert sql(target.server, "select 1 from ownbase.storage_pending_blobs where bucket_id = $1 "
               "and name like '.tus/%'", bucket)
    out = subprocess.run([sys.executable, "-m", "ownbase", "storage", "sweep", "--stale-seconds", "0",
                          "--bucket", bucket, "--data-dir", str(target.server.data_dir)],
                         env=target.server.env, capture_output=True, text=True, timeout=120,
                         cwd=str(target.server.data_dir.parent))
    assert out.returncode == 0, out.stderr
    assert not sql(target.server, "select 1 from ownbase.storage_pending_blobs where bucket_id = $1 "
                   "and name like '.tus/%'", bucket)
    assert [k for k in target.blob_keys(bucket) if k.startswith(".tus/")] == []
