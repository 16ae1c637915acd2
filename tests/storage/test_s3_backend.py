"""The S3 backend class against the real S3-compatible server, for paths too big to exercise
through HTTP in a test (multipart server-side copy of objects over CopyObject's 5 GB limit)."""

from __future__ import annotations

import asyncio
import os

import pytest

from ownbase.settings import Settings
from ownbase.storage.backends import s3 as s3mod
from tests.storage.conftest import S3_BUCKET, S3_KEY_ID, S3_SECRET, S3Server


def test_large_copy_goes_part_by_part(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    # Shrink the thresholds so a 12 MB object takes the > 5 GB path (3 parts of 5 MiB, 5 MiB, 2 MiB).
    monkeypatch.setattr(s3mod, "COPY_OBJECT_MAX", 1024)
    monkeypatch.setattr(s3mod, "COPY_PART_SIZE", 5 * 1024 * 1024)
    settings = Settings(storage_backend="s3", storage_s3_bucket=S3_BUCKET, storage_s3_endpoint_url=s3_server.endpoint,
                        storage_s3_force_path_style=True, storage_s3_prefix="unit")
    data = os.urandom(12 * 1024 * 1024)

    async def go() -> bytes:
        backend = s3mod.S3Backend(settings)
        await backend.start()
        try:
            async def chunks():
                for i in range(0, len(data), 1024 * 1024):
                    yield data[i:i + 1024 * 1024]

            await backend.write("copy-test", "src/v1", chunks(), "application/octet-stream")
            await backend.copy("copy-test", "src/v1", "copy-test", "dst/v2")
            out = bytearray()
            async for chunk in backend.read("copy-test", "dst/v2"):
                out += chunk
            await backend.delete("copy-test", ["src/v1", "dst/v2"])
            assert await backend.list_keys("copy-test", "") == []
            return bytes(out)
        finally:
            await backend.close()

    assert asyncio.run(go()) == data


def test_sweep_aborts_only_stale_multipart_uploads_under_the_prefix(s3_server: S3Server,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Other writers of a shared S3 bucket keep their multipart uploads; so do younger ones."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    settings = Settings(storage_backend="s3", storage_s3_bucket=S3_BUCKET, storage_s3_endpoint_url=s3_server.endpoint,
                        storage_s3_force_path_style=True, storage_s3_prefix="sweepunit")
    client = s3_server.client()
    ours = client.create_multipart_upload(Bucket=S3_BUCKET, Key="sweepunit/b1/dead.bin/v1")["UploadId"]
    foreign = client.create_multipart_upload(Bucket=S3_BUCKET, Key="sweepunit-other/b1/x/v1")["UploadId"]

    def uploads(prefix: str) -> set[str]:
        return {u["UploadId"] for u in client.list_multipart_uploads(Bucket=S3_BUCKET, Prefix=prefix)
                .get("Uploads", [])}

    async def go(older_than: float) -> int:
        backend = s3mod.S3Backend(settings)
        await backend.start()
        try:
            return await backend.sweep_leftovers(older_than)
        finally:
            await backend.close()

    try:
        assert asyncio.run(go(3600)) == 0  # younger than the threshold
        assert ours in uploads("sweepunit/")
        assert asyncio.run(go(0)) == 1
        assert uploads("sweepunit/") == set()
        assert foreign in uploads("sweepunit-other/")
    finally:
        client.abort_multipart_upload(Bucket=S3_BUCKET, Key="sweepunit-other/b1/x/v1", UploadId=foreign)
