"""Image transformations, checked by decoding the output."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from storage3.exceptions import StorageApiError

from ownbase.storage import errors, transform
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


def jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (30, 120, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def varies_on_accept(r: httpx.Response) -> bool:
    return "accept" in [v.strip().lower() for v in r.headers.get("vary", "").split(",")]


BROWSER_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def test_format_follows_accept_without_explicit_format(target: StorageTarget, image_bucket: str) -> None:
    with http(target, target.server.service_key) as c:
        c.post(f"/object/{image_bucket}/img/photo.jpg", content=jpeg(300, 300), headers={"content-type": "image/jpeg"})
        url = f"/render/image/authenticated/{image_bucket}/img/pic.png"
        # A browser's Accept: WebP (Supabase converts to WebP, never to AVIF on its own).
        r = c.get(url, params={"width": 80, "height": 40}, headers={"accept": BROWSER_ACCEPT})
        assert r.status_code == 200 and r.headers["content-type"] == "image/webp" and varies_on_accept(r)
        img = decode(r.content)
        assert img.format == "WEBP" and img.size == (80, 40)
        # Without image/webp in Accept (wildcards do not count, nor q=0) or with no Accept at all:
        # the source format, still marked as depending on Accept.
        for accept in ("*/*", "image/*", "image/png,image/webp;q=0", None):
            req = c.build_request("GET", url, params={"width": 80, "height": 40})
            del req.headers["accept"]
            if accept is not None:
                req.headers["accept"] = accept
            assert ("accept" in req.headers) == (accept is not None)
            r = c.send(req)
            assert r.status_code == 200 and r.headers["content-type"] == "image/png" and varies_on_accept(r), accept
            img = decode(r.content)
            assert img.format == "PNG" and img.size == (80, 40), accept
        r = c.get(f"/render/image/authenticated/{image_bucket}/img/photo.jpg", params={"width": 30},
                  headers={"accept": "text/html, image/webp"})
        assert decode(r.content).format == "WEBP" and varies_on_accept(r)
        r = c.get(f"/render/image/authenticated/{image_bucket}/img/photo.jpg", params={"width": 30},
                  headers={"accept": "*/*"})
        img = decode(r.content)
        assert img.format == "JPEG" and img.size == (30, 30) and r.headers["content-type"] == "image/jpeg"
        # format=origin keeps the source format whatever Accept says; an explicit format ignores Accept.
        for ext, source in (("png", "PNG"), ("jpg", "JPEG")):
            path = "img/pic.png" if ext == "png" else "img/photo.jpg"
            r = c.get(f"/render/image/authenticated/{image_bucket}/{path}", params={"width": 20, "format": "origin"},
                      headers={"accept": BROWSER_ACCEPT})
            assert r.status_code == 200 and decode(r.content).format == source and not varies_on_accept(r)
        r = c.get(url, params={"width": 20, "format": "webp"}, headers={"accept": "image/png"})
        assert decode(r.content).format == "WEBP" and not varies_on_accept(r)


def test_public_url_negotiates_too(target: StorageTarget, admin, image_bucket: str) -> None:
    url = admin.storage.from_(image_bucket).get_public_url("img/pic.png", {"transform": {"width": 40, "height": 40}})
    r = httpx.get(url, headers={"accept": BROWSER_ACCEPT})
    assert r.status_code == 200 and decode(r.content).format == "WEBP" and varies_on_accept(r)
    r = httpx.get(url, headers={"accept": "*/*"})
    assert r.status_code == 200 and decode(r.content).format == "PNG"


def test_avif_output(target: StorageTarget, image_bucket: str) -> None:
    with http(target, target.server.service_key) as c:
        r = c.get(f"/render/image/authenticated/{image_bucket}/img/pic.png",
                  params={"width": 64, "height": 32, "format": "AVIF", "quality": 60}, headers={"accept": "*/*"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/avif" and not varies_on_accept(r)
        img = decode(r.content)
        assert img.format == "AVIF" and img.size == (64, 32)
        # The red source survives the round trip (roughly: AVIF is lossy).
        red, green, blue = img.convert("RGB").getpixel((32, 16))
        assert red > 150 and green < 80 and blue < 80


def test_bad_format_is_refused(target: StorageTarget, image_bucket: str) -> None:
    with http(target, target.server.service_key) as c:
        for bad in ("jpeg", "heic", "gif", "png", "web p"):
            r = c.get(f"/render/image/authenticated/{image_bucket}/img/pic.png", params={"width": 10, "format": bad})
            body = r.json()
            assert r.status_code == 400 and body["statusCode"] == "400" and body["error"] == "InvalidRequest", bad
            assert "format" in body["message"]


def test_avif_without_pillow_support_is_a_clear_400(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Pillow built without AVIF: the option is refused as InvalidRequest (400), both when parsed
    and, as a backstop, when rendering. The server runs in its own process, so this checks the
    functions the route calls rather than going through HTTP."""
    assert transform.parse_transform({"format": "avif"}).format == "avif"  # supported here
    monkeypatch.setattr(transform, "avif_supported", lambda: False)
    with pytest.raises(errors.StorageError) as err:
        transform.parse_transform({"width": "10", "format": "avif"})
    assert err.value.status == 400 and err.value.code == "InvalidRequest" and "avif" in err.value.message
    with pytest.raises(errors.StorageError) as err:
        transform.parse_token_transform("width:10,resize:cover,quality:80,format:avif")
    assert err.value.status == 400 and "avif" in err.value.message
    with pytest.raises(errors.StorageError) as err:
        transform._render(png(20, 20), transform.Transform(width=10, format="avif"), 10_000)
    assert err.value.status == 400 and "avif" in err.value.message
    # WebP and origin are unaffected.
    assert transform.parse_transform({"format": "webp"}).format == "webp"


def test_signed_url_formats(target: StorageTarget, admin, image_bucket: str) -> None:
    files = admin.storage.from_(image_bucket)
    # No format in the token's transform: negotiated from the Accept of whoever fetches the URL.
    auto = files.create_signed_url("img/pic.png", 60, {"transform": {"width": 50, "height": 25}})["signedURL"]
    r = httpx.get(auto, headers={"accept": BROWSER_ACCEPT})
    assert r.status_code == 200 and varies_on_accept(r)
    img = decode(r.content)
    assert img.format == "WEBP" and img.size == (50, 25)
    r = httpx.get(auto, headers={"accept": "*/*"})
    assert r.status_code == 200 and decode(r.content).format == "PNG" and varies_on_accept(r)
    # format origin is kept in the token and wins over Accept.
    origin = files.create_signed_url("img/pic.png", 60, {"transform": {"width": 50, "format": "origin"}})["signedURL"]
    r = httpx.get(origin, headers={"accept": BROWSER_ACCEPT})
    assert r.status_code == 200 and decode(r.content).format == "PNG" and not varies_on_accept(r)
    avif = files.create_signed_url("img/pic.png", 60, {"transform": {"width": 50, "format": "avif"}})["signedURL"]
    r = httpx.get(avif, headers={"accept": "*/*"})
    img = decode(r.content)
    assert r.status_code == 200 and img.format == "AVIF" and img.size == (50, 25)
    # A bad format is refused when the URL is made, not baked into a token.
    with pytest.raises(StorageApiError) as err:
        files.create_signed_url("img/pic.png", 60, {"transform": {"width": 50, "format": "tiff"}})
    assert str(err.value.status) == "400"
