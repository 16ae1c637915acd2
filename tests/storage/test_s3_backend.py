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
