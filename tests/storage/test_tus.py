"""TUS 1.0 resumable uploads with the tuspy client: interrupted, resumed, finished as a normal object."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from tusclient import client as tus_client

from tests.conftest import sql
from tests.storage.conftest import StorageTarget


def tus(target: StorageTarget, key: str, token: str | None = None, **headers: str) -> tus_client.TusClient:
    return tus_client.TusClient(target.url + "/storage/v1/upload/resumable",
                                headers={"apikey": key, "Authorization": f"Bearer {token or key}", **headers})


def test_tus_interrupted_and_resumed(target: StorageTarget, admin, bucket: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 123)
    client = tus(target, target.server.service_key)
    meta = {"bucketName": bucket, "objectName": "big/video.bin", "contentType": "video/mp4", "cacheControl": "60"}
    first = client.uploader(file_stream=io.BytesIO(data), chunk_size=1024 * 1024, metadata=meta)
    first.upload(stop_at=2 * 1024 * 1024)  # "the connection dropped" after two chunks
    assert first.url and first.offset == 2 * 1024 * 1024
    # Not an object yet.
    assert admin.storage.from_(bucket).exists("big/video.bin") is False
    head = httpx.head(first.url, headers=client.headers)
    assert head.status_code == 200 and head.headers["upload-offset"] == str(2 * 1024 * 1024)
    assert head.headers["upload-length"] == str(len(data))
    # A fresh uploader resumes from the server's offset.
    second = client.uploader(file_stream=io.BytesIO(data), chunk_size=1024 * 1024, metadata=meta, url=first.url)
    assert second.offset == 2 * 1024 * 1024
    second.upload()
    assert admin.storage.from_(bucket).download("big/video.bin") == data
    info = admin.storage.from_(bucket).info("big/video.bin")
    assert info["content_type"] == "video/mp4" and info["cache_control"] == "max-age=60"
    # Parts are gone; only the final object's blob is left.
    keys = target.blob_keys(bucket)
    assert len(keys) == 1 and keys[0].startswith("big/video.bin/")
    assert not sql(target.server, "select 1 from ownbase.storage_tus_uploads where bucket_id = $1", bucket)


def test_tus_client_disconnect_mid_patch_keeps_offset(target: StorageTarget, admin, bucket: str) -> None:
    data = os.urandom(256 * 1024)
    client = tus(target, target.server.service_key)
    up = client.uploader(file_stream=io.BytesIO(data), chunk_size=64 * 1024,
                         metadata={"bucketName": bucket, "objectName": "cut.bin"})
    up.upload(stop_at=64 * 1024)

    def broken():
        yield data[64 * 1024:96 * 1024]
        raise ConnectionError("cable pulled")

    with pytest.raises(Exception):
        httpx.patch(up.url, content=broken(), headers={**client.headers, "Tus-Resumable": "1.0.0",
                                                        "Upload-Offset": str(64 * 1024),
                                                        "Content-Type": "application/offset+octet-stream"})
    head = httpx.head(up.url, headers=client.headers)
    assert head.headers["upload-offset"] == str(64 * 1024)
    r = httpx.patch(up.url, content=b"x", headers={**client.headers, "Tus-Resumable": "1.0.0", "Upload-Offset": "1",
                                                   "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 409
    rest = client.uploader(file_stream=io.BytesIO(data), chunk_size=64 * 1024,
                           metadata={"bucketName": bucket, "objectName": "cut.bin"}, url=up.url)
    rest.upload()
    assert admin.storage.from_(bucket).download("cut.bin") == data


def test_tus_refusals(target: StorageTarget, admin, bucket: str, mint) -> None:
    admin.storage.from_(bucket).upload("exists.bin", b"x")
    client = tus(target, target.server.service_key)
    up = client.uploader(file_stream=io.BytesIO(b"abc"), metadata={"bucketName": bucket, "objectName": "exists.bin"})
    with pytest.raises(Exception) as err:
        up.upload()
    assert "409" in str(err.value) or "already exists" in str(err.value)
    # With x-upsert the same upload replaces the object.
    up2 = tus(target, target.server.service_key, **{"x-upsert": "true"}).uploader(
        file_stream=io.BytesIO(b"abc"), metadata={"bucketName": bucket, "objectName": "exists.bin"})
    up2.upload()
    assert admin.storage.from_(bucket).download("exists.bin") == b"abc"
    # Another user cannot continue someone else's upload.
    part = client.uploader(file_stream=io.BytesIO(b"0123456789"), chunk_size=4,
                           metadata={"bucketName": bucket, "objectName": f"p-{uuid.uuid4().hex}.bin"})
    part.upload(stop_at=4)
    token = mint()
    r = httpx.head(part.url, headers={"apikey": target.server.anon_key, "Authorization": f"Bearer {token}",
                                      "Tus-Resumable": "1.0.0"})
    assert r.status_code == 404
    # Termination removes the upload and its parts.
    r = httpx.delete(part.url, headers={**client.headers, "Tus-Resumable": "1.0.0"})
    assert r.status_code == 204
    assert httpx.head(part.url, headers=client.headers).status_code == 404
    assert all(not k.startswith(".tus/") for k in target.blob_keys(bucket))


def test_abandoned_uploads_expire(target: StorageTarget, bucket: str) -> None:
    client = tus(target, target.server.service_key)
    up = client.uploader(file_stream=io.BytesIO(b"0123456789" * 100), chunk_size=100,
                         metadata={"bucketName": bucket, "objectName": "abandoned.bin"})
    up.upload(stop_at=300)
    head = httpx.head(up.url, headers=client.headers)
    assert head.headers["upload-expires"].endswith("GMT")
    assert len([k for k in target.blob_keys(bucket) if k.startswith(".tus/")]) == 3
    # Time passes beyond Upload-Expires (OWNBASE_STORAGE_TUS_EXPIRY, 1 h by default).
    sql(target.server, "update ownbase.storage_tus_uploads set expires_at = now() - interval '1 second' "
        "where bucket_id = $1", bucket)
    assert httpx.head(up.url, headers=client.headers).status_code == 404
    out = subprocess.run([sys.executable, "-m", "ownbase", "storage", "sweep", "--bucket", bucket,
                          "--data-dir", str(target.server.data_dir)],
                         env=target.server.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # The server's own periodic sweeper may have claimed the upload a moment earlier and still be
    # deleting its parts: wait for the end state rather than for who did it.

    deadline = time.monotonic() + 20
    while [k for k in target.blob_keys(bucket) if k.startswith(".tus/")] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [k for k in target.blob_keys(bucket) if k.startswith(".tus/")] == []
    assert not sql(target.server, "select 1 from ownbase.storage_tus_uploads where bucket_id = $1", bucket)


def test_tus_signed_upload(target: StorageTarget, admin, bucket: str) -> None:
    token = admin.storage.from_(bucket).create_signed_upload_url("signed/tus.bin")["token"]
    data = os.urandom(200_000)
    client = tus_client.TusClient(target.url + "/storage/v1/upload/resumable/sign",
                                  headers={"apikey": target.server.anon_key, "x-signature": token})
    up = client.uploader(file_stream=io.BytesIO(data), chunk_size=64 * 1024,
                         metadata={"bucketName": bucket, "objectName": "signed/tus.bin"})
    up.upload(stop_at=64 * 1024)
    assert "/upload/resumable/sign/" in up.url
    # The token only opens its own path.
    bad = tus_client.TusClient(target.url + "/storage/v1/upload/resumable/sign",
                               headers={"apikey": target.server.anon_key, "x-signature": token})
    with pytest.raises(Exception):
        bad.uploader(file_stream=io.BytesIO(b"x"), metadata={"bucketName": bucket, "objectName": "other.bin"}).upload()
    client.uploader(file_stream=io.BytesIO(data), chunk_size=64 * 1024, url=up.url,
                    metadata={"bucketName": bucket, "objectName": "signed/tus.bin"}).upload()
    assert admin.storage.from_(bucket).download("signed/tus.bin") == data
