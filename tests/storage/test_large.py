"""A multi-part-sized object streams through both backends intact (S3 multipart path)."""

from __future__ import annotations

import hashlib
import os

from tests.storage.conftest import StorageTarget, http


def test_large_object_roundtrip(target: StorageTarget, bucket: str) -> None:
    block = os.urandom(1024 * 1024)
    size = 21 * 1024 * 1024 + 17  # three S3 parts, the last one short

    def body():
        sent = 0
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            sent += len(piece)
            yield piece

    md5 = hashlib.md5()
    for piece in body():
        md5.update(piece)
    with http(target, target.server.service_key) as c:
        r = c.post(f"/object/{bucket}/large.bin", content=body(), headers={"content-type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        got = hashlib.md5()
        n = 0
        with c.stream("GET", f"/object/{bucket}/large.bin") as resp:
            assert resp.headers["content-length"] == str(size)
            assert resp.headers["etag"] == c.get(f"/object/info/{bucket}/large.bin").json()["etag"]
            for chunk in resp.iter_raw():
                got.update(chunk)
                n += len(chunk)
        assert n == size and got.hexdigest() == md5.hexdigest()
        tail = c.get(f"/object/{bucket}/large.bin", headers={"range": f"bytes={size - 100}-"})
        assert tail.status_code == 206 and tail.content == block[-83:] + block[:17]
    assert len(target.blob_keys(bucket)) == 1
