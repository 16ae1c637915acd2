"""Settings that change behaviour, each on a server of its own: S3 download redirects (presigned
URLs, CloudFront), the image pixel bound, the global object size limit."""

from __future__ import annotations

import io
import uuid
from typing import Any, Callable

import httpx
import pytest
from PIL import Image

from tests.conftest import ServerHandle
from tests.storage.conftest import S3Server, s3_env, sb


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def presigned_server(server_factory: Callable[..., ServerHandle], s3_server: S3Server) -> ServerHandle:
    return server_factory(s3_env(s3_server, OWNBASE_STORAGE_DOWNLOAD_REDIRECT="presigned"))


def _admin(server: ServerHandle) -> Any:
    class T:
        url = server.url
    return sb(T(), server.service_key)  # type: ignore[arg-type]


def test_presigned_redirect_downloads_straight_from_s3(presigned_server: ServerHandle, s3_server: S3Server) -> None:
    admin = _admin(presigned_server)
    bucket = f"pre-{uuid.uuid4().hex[:8]}"
    admin.storage.create_bucket(bucket)
    admin.storage.from_(bucket).upload("f.txt", b"from s3 directly", {"content-type": "text/plain"})
    headers = {"apikey": presigned_server.service_key, "Authorization": f"Bearer {presigned_server.service_key}"}
    r = httpx.get(f"{presigned_server.url}/storage/v1/object/{bucket}/f.txt", headers=headers)
    assert r.status_code == 302
    location = r.headers["location"]
    assert location.startswith(s3_server.endpoint) and "X-Amz-Signature" in location
    direct = httpx.get(location)  # SeaweedFS checks the signature
    assert direct.status_code == 200 and direct.content == b"from s3 directly"
    tampered = httpx.get(location.replace("f.txt", "g.txt"))
    assert tampered.status_code == 403
    # The client libraries follow the redirect transparently.
    assert admin.storage.from_(bucket).download("f.txt") == b"from s3 directly"
    # Access is still decided by ownbase first: anon gets no redirect to a private object.
    anon = {"apikey": presigned_server.anon_key}
    r = httpx.get(f"{presigned_server.url}/storage/v1/object/{bucket}/f.txt", headers=anon)
    assert r.status_code == 400 and r.json()["statusCode"] == "404"


def test_cloudfront_redirect_and_server_side_encryption(server_factory: Callable[..., ServerHandle],
                                                        s3_server: S3Server) -> None:
    server = server_factory(s3_env(s3_server, OWNBASE_STORAGE_DOWNLOAD_REDIRECT="cloudfront",
                                   OWNBASE_STORAGE_CLOUDFRONT_DOMAIN="cdn.example.com",
                                   OWNBASE_STORAGE_S3_SSE="AES256"))
    admin = _admin(server)
    bucket = f"cf-{uuid.uuid4().hex[:8]}"
    admin.storage.create_bucket(bucket, options={"public": True})
    admin.storage.from_(bucket).upload("a b.png", b"x", {"content-type": "image/png"})
    r = httpx.get(f"{server.url}/storage/v1/object/public/{bucket}/a b.png")
    assert r.status_code == 302
    assert r.headers["location"].startswith(f"https://cdn.example.com/tenant/{bucket}/a%20b.png/")
    # Stored with SSE-S3.
    client = s3_server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="ownbase-storage-test",
                                                      Prefix=f"tenant/{bucket}/").get("Contents", [])]
    assert len(keys) == 1
    assert client.head_object(Bucket="ownbase-storage-test", Key=keys[0]).get("ServerSideEncryption") == "AES256"


def test_image_pixel_bound_and_global_size_limit(server_factory: Callable[..., ServerHandle]) -> None:
    server = server_factory({"OWNBASE_STORAGE_IMAGE_MAX_PIXELS": "1000", "OWNBASE_STORAGE_MAX_FILE_SIZE": "5000"})
    admin = _admin(server)
    bucket = f"px-{uuid.uuid4().hex[:8]}"
    admin.storage.create_bucket(bucket, options={"file_size_limit": "1gb"})
    files = admin.storage.from_(bucket)
    files.upload("small.png", _png(40, 20), {"content-type": "image/png"})
    files.upload("large.png", _png(100, 100), {"content-type": "image/png"})
    small = Image.open(io.BytesIO(files.download("small.png", {"transform": {"width": 10}})))
    assert small.size == (10, 5)
    headers = {"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}"}
    r = httpx.get(f"{server.url}/storage/v1/render/image/authenticated/{bucket}/large.png?width=10", headers=headers)
    assert r.status_code == 400 and "too large" in r.json()["message"]
    # The global limit wins over a larger bucket limit.
    r = httpx.post(f"{server.url}/storage/v1/object/{bucket}/big.bin", content=b"x" * 5001,
                   headers={**headers, "content-type": "application/octet-stream"})
    assert r.status_code == 400 and r.json()["statusCode"] == "413"

