"""Image transformations, checked by decoding the output."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from storage3.exceptions import StorageApiError

from tests.storage.conftest import StorageTarget, http


def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.fixture()
def image_bucket(admin, bucket: str) -> str:
    admin.storage.update_bucket(bucket, {"public": True})
    admin.storage.from_(bucket).upload("img/pic.png", png(400, 200), {"content-type": "image/png"})
    admin.storage.from_(bucket).upload("notes.txt", b"not an image", {"content-type": "text/plain"})
    return bucket


def test_resize_modes(admin, image_bucket: str) -> None:
    files = admin.storage.from_(image_bucket)
    cover = decode(files.download("img/pic.png", {"transform": {"width": 100, "height": 100}}))
    assert cover.size == (100, 100) and cover.format == "PNG"
    contain = decode(files.download("img/pic.png", {"transform": {"width": 100, "height": 100, "resize": "contain"}}))
    assert contain.size == (100, 50)
    fill = decode(files.download("img/pic.png", {"transform": {"width": 100, "height": 100, "resize": "fill"}}))
    assert fill.size == (100, 100)
    width_only = decode(files.download("img/pic.png", {"transform": {"width": 200}}))
    assert width_only.size == (200, 100)


def test_webp_public_and_signed(target: StorageTarget, admin, image_bucket: str) -> None:
    files = admin.storage.from_(image_bucket)
    url = files.get_public_url("img/pic.png", {"transform": {"width": 40, "height": 20, "format": "webp"}})
    assert "/render/image/public/" in url
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    img = decode(r.content)
    assert img.format == "WEBP" and img.size == (40, 20)
    signed = files.create_signed_url("img/pic.png", 60, {"transform": {"width": 50, "height": 50, "quality": 50}})
    assert "/render/image/sign/" in signed["signedURL"]
    img = decode(httpx.get(signed["signedURL"]).content)
    assert img.size == (50, 50)


def test_non_images_and_bad_options_are_refused(target: StorageTarget, admin, image_bucket: str) -> None:
    with pytest.raises(StorageApiError) as err:
        admin.storage.from_(image_bucket).download("notes.txt", {"transform": {"width": 10}})
    assert str(err.value.status) == "415"
    with http(target, target.server.service_key) as c:
        r = c.get(f"/render/image/authenticated/{image_bucket}/img/pic.png", params={"resize": "stretch"})
        assert r.status_code == 400 and r.json()["code"] == "InvalidRequest"
        r = c.get(f"/render/image/authenticated/{image_bucket}/img/pic.png", params={"width": "99999"})
        assert r.status_code == 200 and decode(r.content).size[0] <= 2500
        # Bytes that claim to be an image but are not.
        c.post(f"/object/{image_bucket}/fake.png", content=b"garbage", headers={"content-type": "image/png"})
        r = c.get(f"/render/image/authenticated/{image_bucket}/fake.png", params={"width": "10"})
        assert r.status_code == 400 and r.json()["statusCode"] == "415"
