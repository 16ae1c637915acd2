"""S3 keys stop at 1,024 bytes; ownbase adds its prefix, the bucket and a version to the object
name, so a name within ownbase's own limit can still be too long for S3. That answers 400 in
Storage's shape before any byte is sent, never S3's KeyTooLongError as a 500 (issue 19 item 3)."""

from __future__ import annotations

import base64

import httpx

from tests.conftest import ServerHandle
from tests.storage.conftest import unique

VERSION_LENGTH = 36  # a uuid


def name_of(length: int) -> str:
    """A valid object name of exactly ``length`` bytes (segments under 255 bytes)."""
    k = (length - 1) // 200
    return ("x" * 199 + "/") * k + "y" * (length - 200 * k)


def longest_name(bucket: str) -> int:
    # <prefix "tenant">/<bucket>/<name>/<version>
    return 1024 - len("tenant/") - len(bucket) - 1 - 1 - VERSION_LENGTH


def test_name_that_overflows_the_s3_key_gets_400(s3_storage_server: ServerHandle) -> None:
    server = s3_storage_server
    key = server.service_key
    client = httpx.Client(base_url=server.url + "/storage/v1", timeout=60,
                          headers={"apikey": key, "Authorization": f"Bearer {key}"})
    bucket = unique()
    assert client.post("/bucket", json={"name": bucket}).status_code == 200
    fits, too_long = name_of(longest_name(bucket)), name_of(longest_name(bucket) + 1)
    assert len(too_long.encode()) < 1024  # within ownbase's own name limit

    r = client.post(f"/object/{bucket}/{fits}", content=b"fits", headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert client.get(f"/object/{bucket}/{fits}").content == b"fits"

    r = client.post(f"/object/{bucket}/{too_long}", content=b"no", headers={"content-type": "text/plain"})
    assert r.status_code == 400, r.text
    assert r.json()["statusCode"] == "400" and r.json()["error"] == "KeyTooLong"

    # Copy to such a name, and a resumable upload of one, are refused the same way.
    r = client.post("/object/copy", json={"bucketId": bucket, "sourceKey": fits, "destinationKey": too_long})
    assert r.status_code == 400 and r.json()["error"] == "KeyTooLong", r.text
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                    (("bucketName", bucket), ("objectName", too_long)))
    r = client.post("/upload/resumable", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "2",
                                                  "Upload-Metadata": meta})
    assert r.status_code == 400 and "too long" in r.text
    listed = client.post(f"/object/list-v2/{bucket}", json={"prefix": ""}).json()
    assert [o["name"] for o in listed["objects"]] == [fits]
